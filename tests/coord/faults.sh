#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults in the middle of a checkpoint that the other coordinator tests do
# not cover (kill.sh: a rank dies; daemon.sh: ibsnapd killed; cycle.sh:
# criu fails; stage.sh: the flusher killed), with the stand-in criu:
#  - a host agent (one of a job's two ibsnap run) killed during the dump:
#    the checkpoint fails naming it, no image restart would take is left,
#    the other tree rolls back and goes on, and the next checkpoint works;
#    the killed agent's own tree ends, as it does when its agent is killed
#    outside a dump (the init's parent-death signal, disarmed for CRIU
#    around a dump, is then one the init handles: cli/init.c); an init
#    whose agent is gone before it armed itself ends at once;
#  - ibsnapd stopped (SIGSTOP) during the dump and continued: a stall
#    delays the checkpoint, which then completes; the job goes on;
#  - restart from a damaged or mismatched image is refused with a clear
#    error: a truncated manifest, a missing or damaged ibsnap.meta, trees of
#    two jobs in one directory, an image whose job is running, an image
#    with a file missing (criu's error is passed on).
source "$(dirname "$0")/lib.sh"

N=4
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
IMG=$T/img
# the dump is under way: a temporary image directory exists
dumping() { [[ -n $(ls -A "$IMG/$HOST" 2>/dev/null | grep tmp) ]]; }
# no image restart would take: no tree under its final name (a killed
# agent's half dump stays under its hidden temporary name)
no_image() {
	[[ -z $(ls "$IMG/$HOST" 2>/dev/null | grep -v dump-failed) ]] &&
		! "$IBSNAP" restart --dry-run --dir "$IMG" >/dev/null 2>&1
}

# --- a host agent killed during the dump
PA=$T/peers-a
PB=$T/peers-b
start_job "$PA" $N --job fa
A_PID=$JOB_PID
start_job "$PB" $N --job fa
B_PID=$JOB_PID
wait_for 300 has_procs fa $((2 * N))
ok "two agents, $((2 * N)) processes of job fa registered" $? "$PA/run.out" "$PB/run.out"
touch "$T/hold"
"$IBSNAP" checkpoint --job fa --dir "$IMG" >"$T/ck1" 2>&1 &
ck=$!
wait_for 300 dumping
ok "the dump is under way" $? "$T/ck1"
A_TREE=$(proc_tree $(pgrep -P "$A_PID" '^ibsnap-init'))
A_CSV=$(tr '\n' , <<<"$A_TREE" | sed 's/,$//')
# any of them still running (a zombie waits for whoever reaps orphans here)
alive() { ps -o stat= -p "$A_CSV" | grep -qv '^Z'; }
A_N=$(wc -w <<<"$A_TREE")
[[ $A_N -ge $((N + 2)) ]]
ok "the killed agent's tree: init, launcher and $N peers ($A_N processes)" $? \
	<(ps -o pid,ppid,comm -p "$A_CSV")
kill -9 "$A_PID"
rm -f "$T/hold"
wait $ck
rc=$?
[[ $rc -eq 1 ]] && grep -q "the host agent on $HOST (pid $A_PID) was lost" "$T/ck1" &&
	grep -q "the job goes on" "$T/ck1"
ok "agent killed: the checkpoint fails and names the lost agent" $? "$T/ck1"
wait_for 100 no_image
ok "... no image is left that restart would take" $? <(ls -lA "$IMG/$HOST")
wait_for 300 all_logs "$PB" "^resume$" $N && wait_for 300 has_procs fa $N &&
	kill -0 "$B_PID"
ok "... the other tree rolled back and runs on with its $N processes" $? \
	"$PB/run.out" <(phases "$PB")
"$IBSNAP" checkpoint --job fa --dir "$IMG" >"$T/ck2" 2>&1 &&
	[[ $(ls "$IMG/$HOST" | grep -vc dump-failed) -eq 1 ]]
ok "... and the next checkpoint works" $? "$T/ck2"
wait_for 100 eval '! alive'
ok "... the killed agent's tree ended with it (none of its $A_N processes is left)" $? \
	<(ps -o pid,ppid,stat,comm -p "$A_CSV")

# --- the init checks that its parent is still the agent that started it
# (IBSNAP_INIT_PARENT: the agent may die before the parent-death signal
# is set)
IBSNAP_INIT_PARENT=1 "$IBSNAP" __init -- touch "$T/ran1"
rc=$?
[[ $rc -eq 137 && ! -e $T/ran1 ]]
ok "an init whose agent is gone ends (137) before its command starts" $?
IBSNAP_INIT_PARENT=$$ "$IBSNAP" __init -- touch "$T/ran2"
rc=$?
[[ $rc -eq 0 && -e $T/ran2 ]]
ok "... and runs it when that agent is its parent" $?

# --- ibsnapd stopped during the dump, then continued
touch "$T/hold"
"$IBSNAP" checkpoint --job fa --dir "$IMG" >"$T/ck3" 2>&1 &
ck=$!
wait_for 300 dumping
d=$(daemon_pid)
kill -STOP "$d"
rm -f "$T/hold"
sleep 1
kill -0 "$ck" 2>/dev/null
stalled=$?
kill -CONT "$d"
wait $ck
rc=$?
[[ $stalled -eq 0 && $rc -eq 0 ]] && grep -q "^checkpoint 3 " "$T/ck3" &&
	grep -q '^ckpt=3$' "$IMG/$HOST"/*/ibsnap.meta
ok "ibsnapd stalled mid-dump: the checkpoint waits, then completes" $? "$T/ck3"
has_procs fa $N && kill -0 "$B_PID" && [[ $(daemon_pid) == "$d" ]]
ok "... the job and the same ibsnapd go on" $?

# --- restart from damaged or mismatched images (--dry-run: the choice)
TREE=$(ls "$IMG/$HOST" | grep -v dump-failed | head -1)
TD=$IMG/$HOST/$TREE
cp -a "$IMG" "$T/good"
reset_img() { rm -rf "$IMG" && cp -a "$T/good" "$IMG"; }
restart_refused() { # NAME PATTERN [restart options]: rc 1 and PATTERN
	local name=$1 pat=$2
	shift 2
	"$IBSNAP" restart --dir "$IMG" "$@" >"$T/rs" 2>&1
	local rc=$?
	[[ $rc -eq 1 ]] && grep -q -- "$pat" "$T/rs"
	ok "$name" $? "$T/rs"
}
"$IBSNAP" restart --dry-run --dir "$IMG" >"$T/rs" 2>&1 &&
	grep -qx "$TD" "$T/rs"
ok "the good image is taken" $? "$T/rs"

head -c 20 "$T/good/$HOST/.manifest" >"$IMG/$HOST/.manifest"
restart_refused "a truncated manifest: refused, saying the tree is not complete" \
	"$TD: checkpoint 3 is not complete in $IMG/$HOST/.manifest: refused" --dry-run
reset_img

rm "$TD/ibsnap.meta"
restart_refused "a missing ibsnap.meta: refused" \
	"$TD: no valid ibsnap.meta (damaged, or not an image): refused" --dry-run
reset_img
sed -i '/^token=/d' "$TD/ibsnap.meta"
restart_refused "an ibsnap.meta without the job's token: refused" \
	"$TD: no valid ibsnap.meta" --dry-run
reset_img
head -c 7 "$T/good/$HOST/$TREE/ibsnap.meta" >"$TD/ibsnap.meta"
restart_refused "a truncated ibsnap.meta: refused" "$TD: no valid ibsnap.meta" --dry-run
reset_img

# another job's tree at the same checkpoint, beside this one
OT=$IMG/$HOST/00000000000000ff
cp -a "$TD" "$OT"
sed -i 's/^job=.*/job=other/' "$OT/ibsnap.meta"
echo "00000000000000ff 3 complete" >>"$IMG/$HOST/.manifest"
restart_refused "trees of two jobs in one directory: refused" \
	"of job '\(fa\|other\)', .* of job '\(fa\|other\)': refused" --dry-run
sed -i 's/^job=.*/job=fa/; s/^token=.*/token=00112233445566778899aabbccddeeff/' \
	"$OT/ibsnap.meta"
restart_refused "... of one name but another token: refused" \
	"with another token: refused" --dry-run
reset_img

OK_TAIL=60 restart_refused "an image of a job that is running: refused by ibsnapd" \
	"job 'fa' is running: cannot restore checkpoint 3 into it"
has_procs fa $N && kill -0 "$B_PID"
ok "... and the running job is untouched" $?

stop_job "$PB"
ok "the job exits cleanly" $? "$PB/run.out"
wait_for 100 eval '[[ $(procs fa) -eq 0 ]]'
rm "$TD/pages-1.img"
restart_refused "an image with a file missing: criu's error is passed on" \
	"Unable to open pages-1.img: No such file or directory"
finish
