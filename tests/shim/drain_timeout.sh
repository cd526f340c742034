#!/bin/bash
# SPDX-License-Identifier: MIT
# A drain that times out leaves its marker on the send queue (drain/qp.c);
# ibv_rc_pingpong's send queue has one WR, so the marker fills it.  Here
# the wire is slow and the drain's window short (IBSNAP_DRAIN_MS), so most
# drains time out, and the checkpoints come back to back; each pair must
# still finish every iteration and exit 0, and no marker completion may
# reach it (make soak found ibv_rc_pingpong dying of "Completion for
# unknown wr_id" after "drain: 1 QP(s) still busy" on a loaded host).
#   tests/shim/drain_timeout.sh BUILD_DIR
# What it checks besides:
# - a send queued during a checkpoint that finds the queue still full of
#   the old marker waits for the marker's completion (it was lost at
#   resume, and the pair hung: 6dcde5a), and so does a send the program
#   posts after the checkpoint while the marker is still there (it failed
#   with ENOMEM, "Couldn't post send": on the second pair's 30 ms wire the
#   marker of a drain that timed out can still be out when the peer's
#   answer arrives; without the fix that pair failed so in 1 of 3 runs of
#   this script, and in 3 of 6 runs with 16 checkpoints and 24 ms drains:
#   it depends on timing);
# - a drain that finds the old marker still out and nothing posted after
#   it takes that marker for its own ("... counts for this one") instead
#   of failing to post another ("no marker: Cannot allocate memory");
# - a destroyed QP's shim receive buffers (drain/early.c, posted when a
#   drain found a stuck marker) no longer keep its PD busy ("Couldn't
#   deallocate PD").
# Whether a checkpoint after a timed-out drain succeeds depends on the
# timing of the wire against the window here, so it is counted, not
# checked.
set -u
. "$(dirname "$0")/lib.sh"

if [[ ! -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	echo "FAIL: ibsnapd is not built"
	exit 1
fi

# pair NAME ITERS K DELAY_US DRAIN_MS: a ping-pong through K checkpoints
pair() {
	local name=$1 iters=$2 k=$3 job=dt$$x$RANDOM spid cpid i rc=0 res=
	export IBSNAP_FAKE_FAULTS=delay_us=$4 IBSNAP_DRAIN_MS=$5
	next_port
	: >"$LOGDIR/ck.log"
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		ibv_rc_pingpong -d fake0 -g 0 -n "$iters" -p $PORT >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	wait_listen $PORT
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		ibv_rc_pingpong -d fake0 -g 0 -n "$iters" -p $PORT 127.0.0.1 >"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	joined "$job" 2
	sleep 0.3
	for ((i = 0; i < k; i++)); do
		if "$IBSNAP" checkpoint --job "$job" --no-dump >>"$LOGDIR/ck.log" 2>&1; then
			res+=o
		else
			res+=x
		fi
	done
	wait $cpid || rc=$?
	wait $spid || rc=$((rc | $?))
	unset IBSNAP_FAKE_FAULTS IBSNAP_DRAIN_MS
	count() { grep -h "$1" "$LOGDIR/srv.log" "$LOGDIR/cli.log" | wc -l; }
	busy=$(count "still busy")
	adopted=$(count "counts for this one")
	grep -q "^$iters iters in" "$LOGDIR/srv.log" && grep -q "^$iters iters in" "$LOGDIR/cli.log" &&
		! grep -q "unknown wr_id\|Couldn't" "$LOGDIR/srv.log" "$LOGDIR/cli.log" && [[ $rc -eq 0 ]]
	ok "$name: ibv_rc_pingpong through $k checkpoints (done o, failed x: $res; $busy drains timed out, $adopted took an old marker): all $iters iterations" $? \
		"$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log"
	[[ $busy -gt 0 ]]
	ok "... drains did time out (the case is exercised)" $? "$LOGDIR/cli.log"
}

pair "5 ms wire, 6 ms drains" 200 10 5000 1
pair "30 ms wire, 12 ms drains" 60 40 30000 2
[[ $adopted -gt 0 ]]
ok "... a drain took the old marker still out for its own" $? "$LOGDIR/srv.log" "$LOGDIR/cli.log"
finish
