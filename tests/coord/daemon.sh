#!/bin/bash
# SPDX-License-Identifier: MIT
# The coordinator is killed in the middle of a checkpoint.  In DRAIN: the
# processes see it go, undo alone (resume) and go on.  During the dump,
# after RELEASE: they have closed their connections; the host agent sees
# the coordinator go and wakes them ("lost"), they rebuild and resume
# alone.  Both times the agent starts a new ibsnapd, everybody reattaches
# with the same ranks, and the next checkpoint works.
source "$(dirname "$0")/lib.sh"

N=16
P=$T/peers
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
PEER_HOLD=drain start_job "$P" $N --job dk
wait_for 300 has_procs dk $N
ok "$N processes registered" $? "$P/run.out"

# --- killed while the processes are in DRAIN
"$IBSNAP" checkpoint --job dk --no-dump >"$T/ck1" 2>&1 &
ck=$!
wait_for 300 all_logs "$P" "drain-enter" $N
ok "all $N are in drain" $? "$T/ck1"
old=$(daemon_pid)
kill -9 "$old"
touch "$P/go"
wait $ck
rc=$?
[[ $rc -eq 1 ]] && grep -q "lost the coordinator" "$T/ck1"
ok "checkpoint reports the lost coordinator" $? "$T/ck1"
wait_for 300 all_logs "$P" "^resume$" $N && all_logs "$P" "^release$" 0
ok "every process rolled back alone (resume, no release)" $? "$P/run.out"
kill -0 "$JOB_PID"
ok "the job is still running" $?
wait_for 300 has_procs dk $N && [[ $(daemon_pid) != "$old" ]]
ok "a new ibsnapd took the job back with all $N ranks" $? "$P/run.out"
"$IBSNAP" checkpoint --job dk --no-dump >"$T/ck2" 2>&1 &&
	all_logs "$P" "drain ok n=$N" $N
ok "the next checkpoint works" $? "$T/ck2"

# --- killed during the dump (the processes have detached)
touch "$T/hold"
"$IBSNAP" checkpoint --job dk --dir "$T/img" >"$T/ck3" 2>&1 &
ck=$!
wait_for 300 eval '[[ -n $(ls -A "$T/img/$HOST" 2>/dev/null | grep tmp) ]]'
ok "the dump is under way" $? "$T/ck3"
old=$(daemon_pid)
kill -9 "$old"
rm -f "$T/hold"
wait $ck
[[ $? -eq 1 ]]
ok "checkpoint reports the failure" $? "$T/ck3"
wait_for 300 all_logs "$P" "rebuild xfail -107" $N &&
	wait_for 300 eval '[[ $(grep -c "^resume$" "$P"/peer-*.log | grep -c ":3$") -eq $N ]]'
ok "the agent woke them: each rebuilt (no exchange) and resumed alone" $? \
	"$P/run.out" <(phases "$P")
[[ -z $(ls -A "$T/img/$HOST" | grep -v dump-failed) ]]
ok "no image and no temporary directory is left" $?
wait_for 300 has_procs dk $N && "$IBSNAP" checkpoint --job dk --no-dump >"$T/ck4" 2>&1
ok "they are back with the new ibsnapd; the next checkpoint works" $? "$T/ck4"

stop_job "$P"
ok "the job exits cleanly" $? "$P/run.out"
finish
