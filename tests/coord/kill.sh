#!/bin/bash
# SPDX-License-Identifier: MIT
# A process that dies in the middle of a checkpoint fails it with a clear
# message; the others are rolled back and go on.  Died in DRAIN: the others
# get their exchange cancelled, then RESUME.  Died in RELEASE: the others
# have detached already, so their agent wakes them, they rejoin, REBUILD
# and RESUME.  Either way the next checkpoint works without the dead one.
source "$(dirname "$0")/lib.sh"

N=16

# die_in PHASE RANK: one job, one failed and one good checkpoint.
die_in() {
	local ph=$1 r=$2 P=$T/peers-$1 out=$T/ck-$1
	PEER_DIE=$r:$ph start_job "$P" $N --job "k$ph"
	wait_for 300 has_procs "k$ph" $N
	ok "[$ph] $N processes registered" $? "$P/run.out"

	"$IBSNAP" checkpoint --job "k$ph" --no-dump >"$out" 2>&1
	rc=$?
	[[ $rc -eq 1 ]] && grep -q "FAILED: rank $r (pid [0-9]* on $HOST) lost its connection during $ph" "$out" &&
		grep -q "failed: .*; the job goes on" "$out"
	ok "[$ph] rank $r dies: the checkpoint fails and says why" $? "$out"

	all_logs "$P" "^resume$" $((N - 1))
	ok "[$ph] the $((N - 1)) others were rolled back (resume)" $? "$out"
	if [[ $ph == drain ]]; then
		all_logs "$P" "drain xfail" $((N - 1)) && all_logs "$P" "^release$" 0
	else
		all_logs "$P" "rebuild ok n=$((N - 1))" $((N - 1))
	fi
	ok "[$ph] ... the $ph way (no double release, exchange among survivors)" $? "$out"

	wait_for 100 has_procs "k$ph" $((N - 1))
	ok "[$ph] the job goes on with $((N - 1)) processes" $? "$out"
	"$IBSNAP" checkpoint --job "k$ph" --no-dump >"$out.2" 2>&1 &&
		all_logs "$P" "drain ok n=$((N - 1))" $((N - 1))
	ok "[$ph] the next checkpoint succeeds" $? "$out.2"
	stop_job "$P"
	ok "[$ph] the survivors exit cleanly" $? "$P/run.out"
}

die_in drain 5
die_in release 3

finish
