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
# - shim receive buffers a failed checkpoint leaves posted on the live
#   queue take no room from the program's receives and catch no message
#   out of turn: ibv_rc_pingpong -r 8 (8 receives) failed with "Couldn't
#   post receive"; rc_order (a stream whose receiver keeps 4-8 receives
#   posted, through ibv_poll_cq, an ibv_cq_ex and an SRQ) got messages in
#   the wrong receive, or with the shim's wr_id, on the old code.
# Whether a checkpoint after a timed-out drain succeeds depends on the
# timing of the wire against the window here, so it is counted, not
# checked.
set -u
. "$(dirname "$0")/lib.sh"

if [[ ! -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	echo "FAIL: ibsnapd is not built"
	exit 1
fi

RO=$(cd "$BUILD" && pwd)/tests/shim/rc_order

# ckpt_run JOB K: once JOB's 2 processes are in, K checkpoints back to
# back (output appended to $LOGDIR/ck.log); prints o for each done, x for
# each failed
ckpt_run() {
	local i
	joined "$1" 2
	sleep 0.3
	for ((i = 0; i < $2; i++)); do
		if "$IBSNAP" checkpoint --job "$1" --no-dump >>"$LOGDIR/ck.log" 2>&1; then
			printf o
		else
			printf x
		fi
	done
}

# pair NAME ITERS K DELAY_US DRAIN_MS [ARGS]: a ping-pong through K
# checkpoints, ARGS given to both sides
pair() {
	local name=$1 iters=$2 k=$3 job=dt$$x$RANDOM spid cpid rc=0 res
	local -a args=(${6:-})
	export IBSNAP_FAKE_FAULTS=delay_us=$4 IBSNAP_DRAIN_MS=$5
	next_port
	: >"$LOGDIR/ck.log"
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		ibv_rc_pingpong -d fake0 -g 0 -n "$iters" "${args[@]}" -p $PORT >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	wait_listen $PORT
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		ibv_rc_pingpong -d fake0 -g 0 -n "$iters" "${args[@]}" -p $PORT 127.0.0.1 >"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	res=$(ckpt_run "$job" "$k")
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

# kept LOG...: how many times a failed checkpoint left shim buffers posted
kept() { cat "$@" | grep -c "keeps .* shim receive buffers posted"; }

# order MODE: rc_order (300 messages, 16 in flight, the receiver's queue 8
# deep) through 15 checkpoints on a 30 ms wire with 12 ms drains
order() {
	local mode=$1 job=ro$$x$RANDOM dir rpid spid rc=0 res
	dir=$(mktemp -d -p "$LOGDIR")
	export IBSNAP_FAKE_FAULTS=delay_us=30000 IBSNAP_DRAIN_MS=2
	: >"$LOGDIR/ck.log"
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		"$RO" recv "$dir" 300 8 "$mode" >"$LOGDIR/recv.log" 2>&1 &
	rpid=$!
	timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		"$RO" send "$dir" 300 16 >"$LOGDIR/send.log" 2>&1 &
	spid=$!
	res=$(ckpt_run "$job" 15)
	wait $rpid || rc=$?
	wait $spid || rc=$((rc | $?))
	unset IBSNAP_FAKE_FAULTS IBSNAP_DRAIN_MS
	grep -q "^rc_order: 300 messages in order" "$LOGDIR/recv.log" && [[ $rc -eq 0 ]]
	ok "rc_order ($mode) through 15 checkpoints (o/x: $res): every message in its receive, in order" $? \
		"$LOGDIR/recv.log" "$LOGDIR/send.log" "$LOGDIR/ck.log"
	[[ $(kept "$LOGDIR/recv.log") -gt 0 ]]
	ok "... failed checkpoints left shim buffers posted ($(kept "$LOGDIR/recv.log") times: the case is exercised)" $? \
		"$LOGDIR/recv.log"
}

pair "5 ms wire, 6 ms drains" 200 10 5000 1
pair "30 ms wire, 12 ms drains" 60 40 30000 2
[[ $adopted -gt 0 ]]
ok "... a drain took the old marker still out for its own" $? "$LOGDIR/srv.log" "$LOGDIR/cli.log"
pair "5 ms wire, 6 ms drains, 8 receives (-r 8)" 200 10 5000 1 "-r 8"
[[ $(kept "$LOGDIR/srv.log" "$LOGDIR/cli.log") -gt 0 ]]
ok "... failed checkpoints left shim buffers posted (the case is exercised)" $? "$LOGDIR/srv.log" "$LOGDIR/cli.log"
for mode in cq ex srq; do
	order $mode
done
finish
