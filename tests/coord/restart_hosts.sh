#!/bin/bash
# SPDX-License-Identifier: MIT
# Restart of a job of two hosts: the hosts restore one checkpoint.  The
# second host is a UTS namespace named $HB (unshare -u: needs root, as CI
# has); both hosts' ibsnap run and restart use this script's ibsnapd.  The
# stand-in criu restores nothing: a restart opens the restore at ibsnapd,
# runs "criu restore" on the trees it chose (their restore.log shows which)
# and fails; while $ctl/hold-restore exists that restore waits, so a host's
# restore stays under way while the other host restarts.
#  - a host whose restart comes second takes the checkpoint the job is being
#    restored from (not its own newest);
#  - a host without that checkpoint whole refuses, naming it, its own
#    newest whole one and what to do (restart every host with --ckpt);
#  - --ckpt N (and --dry-run) takes exactly N or refuses with the reason;
#  - a restore whose restarts all ended ends at once (not at the dump
#    timeout), so the hosts can restart with --ckpt.
source "$(dirname "$0")/lib.sh"

HB=ibsnap-hostb
if ! unshare -u true 2>"$T/unshare"; then
	echo "FAIL: cannot make a UTS namespace for the second host (unshare -u needs root): $(cat "$T/unshare")"
	exit 1
fi
# on_b CMD...: CMD on host $HB
on_b() { unshare -u sh -c 'hostname "$0" && exec "$@"' "$HB" "$@"; }
N=2
J=mh
D=$T/img
CA=$T/ca # the stand-in criu's control directory of each host
CB=$T/cb
mkdir -p "$CA" "$CB" "$T/a" "$T/b"
export IBSNAP_CRIU=$FAKE_CRIU
# the restore's wait for its ranks outlasts every wait of this script
export IBSNAP_DUMP_TIMEOUT=300

# --- one job on two hosts, checkpoints 1, 2, 3 of both
FAKE_CRIU_CTL=$CA start_job "$T/a" $N --job $J
A=$JOB_PID
wait_for 300 has_procs $J $N
PEER_DIR=$T/b FAKE_CRIU_CTL=$CB on_b "$IBSNAP" run --no-preload --job $J -- \
	"$PEER" --spawn $N >"$T/b/run.out" 2>&1 &
B=$!
RUN_PIDS+=("$B")
wait_for 300 has_procs $J $((2 * N)) &&
	[[ $(cut -d' ' -f1 <<<"$(hostname; on_b hostname)" | sort -u | wc -l) -eq 2 ]]
ok "one job on two hosts ($HOST, $HB): $((2 * N)) peers" $? "$T/a/run.out" "$T/b/run.out"
for c in 1 2 3; do
	mkdir -p "$D/ckpt-$c"
	"$IBSNAP" checkpoint --job $J --dir "$D/ckpt-$c" >"$T/ck$c" 2>&1 || break
done
TA=$(ls "$D/ckpt-3/$HOST" 2>/dev/null)
TB=$(ls "$D/ckpt-3/$HB" 2>/dev/null)
[[ -n $TA && -n $TB ]] &&
	grep -qx "ckpt=3" "$D/ckpt-3/$HOST/$TA/ibsnap.meta" &&
	grep -qx "ckpt=3" "$D/ckpt-3/$HB/$TB/ibsnap.meta" &&
	grep -qx "ckpt=1" "$D/ckpt-1/$HB/$TB/ibsnap.meta"
ok "checkpoints 1-3 written for both hosts (DIR/ckpt-N/HOST/TREE)" $? "$T/ck3" <(ls -R "$D")
touch "$T/a/stop" "$T/b/stop"
wait "$A" && wait "$B"
ok "the job ends on both hosts" $? "$T/a/run.out" "$T/b/run.out"
wait_for 100 eval '! "$IBSNAP" status --job $J >/dev/null 2>&1'

# each host's own storage: host A's with checkpoints 1, 2 only, host B's
# likewise (as an agent that missed checkpoint 3's WAKE leaves it)
mkdir -p "$T/a2" "$T/b2"
cp -a "$D/ckpt-1" "$D/ckpt-2" "$T/a2/"
cp -a "$D/ckpt-1" "$D/ckpt-2" "$T/b2/"

# restore_under_way DIR [options]: host A restores from DIR, held in criu
restore_under_way() {
	touch "$CA/hold-restore"
	: >"$T/ra" # now: the background job's redirection comes late
	FAKE_CRIU_CTL=$CA "$IBSNAP" restart "$@" >>"$T/ra" 2>&1 &
	RA=$!
	RUN_PIDS+=("$RA")
	wait_for 100 grep -q "^ibsnap restart: job '$J', checkpoint" "$T/ra"
}
# restore_end: host A's restart fails (its criu), the restore ends
restore_end() {
	rm -f "$CA/hold-restore"
	wait "$RA"
	wait_for 100 eval '! "$IBSNAP" status --job $J >/dev/null 2>&1'
}
# restart_b NAME [options]: host B's restart; its output in $T/rb
restart_b() {
	FAKE_CRIU_CTL=$CB on_b "$IBSNAP" restart "$@" >"$T/rb" 2>&1
}

# --- host A restores checkpoint 2 (its newest): host B takes 2, not its 3
restore_under_way --dir "$T/a2"
grep -q "^ibsnap restart: job '$J', checkpoint 2, $((2 * N)) ranks" "$T/ra"
ok "host A (checkpoints 1, 2) restores 2" $? "$T/ra"
restart_b --dir "$D"
rc=$?
[[ $rc -eq 1 ]] &&
	grep -q "job '$J' is being restored from checkpoint 2 (started from host $HOST): this host takes it too (newest whole here: 3)" "$T/rb" &&
	grep -q "^ibsnap restart: job '$J', checkpoint 2, $((2 * N)) ranks" "$T/rb" &&
	grep -q "cannot restore on this host" "$D/ckpt-2/$HB/$TB/restore.log" &&
	[[ ! -e $D/ckpt-3/$HB/$TB/restore.log ]]
ok "host B (checkpoints 1-3) takes checkpoint 2, the one being restored, and says so" $? "$T/rb"
kill -0 "$RA" && grep -q "restoring checkpoint 2 (from $HOST)" "$T/ibsnapd.log"
ok "... host A's restore of 2 goes on" $? "$T/ra"
restore_end
ok "once every host's restart ended, the restore ends at once (not at the dump timeout)" $? \
	"$T/ra" <("$IBSNAP" status --job $J 2>&1)

# --- host A restores 3: host B, without 3, refuses and says what to do
restore_under_way --dir "$D"
restart_b --dir "$T/b2"
rc=$?
[[ $rc -eq 1 ]] &&
	grep -q "job '$J' is being restored from checkpoint 3 (started from host $HOST); this host has no whole image of checkpoint 3 (newest whole here: 2): stop the job's restarts on the other hosts, then restart every host with --ckpt 2" "$T/rb" &&
	! grep -q "is running" "$T/rb" &&
	[[ -z $(find "$T/b2" -name restore.log) ]]
ok "host B (checkpoints 1, 2) refuses checkpoint 3: names it, its newest (2) and --ckpt 2; restores nothing" $? "$T/rb"
restart_b --dir "$T/b2" --ckpt 2
rc=$?
[[ $rc -eq 1 ]] &&
	grep -q "job '$J' is being restored from checkpoint 3 (started from host $HOST), not from checkpoint 2 (--ckpt): stop the job's restarts on the other hosts" "$T/rb" &&
	[[ -z $(find "$T/b2" -name restore.log) ]]
ok "... with --ckpt 2 while 3 is restored: refused, naming both" $? "$T/rb"
kill -0 "$RA"
ok "... host A's restore of 3 goes on" $? "$T/ra"
# the advice followed: host A's restart ends, every host with --ckpt 2
restore_end
ok "host A's restart ended: the restore of 3 ends" $? "$T/ra"
find "$D" "$T/b2" -name restore.log -delete
restore_under_way --dir "$D" --ckpt 2
grep -q "^ibsnap restart: job '$J', checkpoint 2, $((2 * N)) ranks" "$T/ra"
ok "--ckpt 2: host A (checkpoints 1-3) restores 2" $? "$T/ra"
restart_b --dir "$T/b2" --ckpt 2
rc=$?
[[ $rc -eq 1 ]] && grep -q "^ibsnap restart: job '$J', checkpoint 2, $((2 * N)) ranks" "$T/rb" &&
	grep -q "cannot restore on this host" "$T/b2/ckpt-2/$HB/$TB/restore.log"
ok "--ckpt 2: host B restores 2 with it" $? "$T/rb"
restore_end
[[ ! -e $D/ckpt-3/$HOST/$TA/restore.log ]] &&
	grep -q "cannot restore on this host" "$D/ckpt-2/$HOST/$TA/restore.log"
ok "... host A ran criu on checkpoint 2's tree, not on 3's" $? <(find "$D" -name restore.log)

# --- --ckpt N, --dry-run: exactly N, or refused with the reason
"$IBSNAP" restart --dry-run --dir "$D" --ckpt 2 >"$T/dr" 2>&1 &&
	grep -qx "checkpoint 2 from $D (dir)" "$T/dr" && grep -qx "$D/ckpt-2/$HOST/$TA" "$T/dr" &&
	[[ $(grep -c "^/" "$T/dr") -eq 1 ]]
ok "--dry-run --ckpt 2: checkpoint 2's tree, not the newest (3)" $? "$T/dr"
restart_b --dry-run --dir "$T/b2" --ckpt 3
[[ $? -eq 1 ]] &&
	grep -q "no image of checkpoint 3 of host $HB in $T/b2 (newest whole here: 2): refused" "$T/rb"
ok "--dry-run --ckpt 3 where it is missing: refused, saying so" $? "$T/rb"
sed -i "s/^$TA 3 complete$/$TA 3 copying/" "$D/ckpt-3/$HOST/.manifest"
"$IBSNAP" restart --dry-run --dir "$D" --ckpt 3 >"$T/dr" 2>&1
[[ $? -eq 1 ]] &&
	grep -q "checkpoint 3 is not whole for host $HOST in $D (see above; newest whole here: 2): refused" "$T/dr"
ok "--dry-run --ckpt 3 where its copy is not complete: refused, not whole" $? "$T/dr"
"$IBSNAP" restart --dir "$D" --ckpt 3 >"$T/dr" 2>&1
[[ $? -eq 1 ]] && grep -q "checkpoint 3 is not whole for host $HOST" "$T/dr" &&
	[[ ! -e $D/ckpt-3/$HOST/$TA/restore.log ]]
ok "... without --dry-run too, restoring nothing" $? "$T/dr"
bad_ok=0
for bad in 0 x -1 4294967296; do
	"$IBSNAP" restart --dry-run --dir "$D" --ckpt $bad >"$T/dr" 2>&1
	[[ $? -eq 2 ]] && grep -q -- "--ckpt $bad: not a checkpoint id" "$T/dr" || bad_ok=1
done
ok "--ckpt 0, x, -1, 2^32: usage errors (exit 2)" $bad_ok "$T/dr"
finish
