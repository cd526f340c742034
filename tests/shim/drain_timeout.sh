#!/bin/bash
# SPDX-License-Identifier: MIT
# A drain that times out leaves its marker on the send queue; the next
# checkpoint posts another.  Both completions are the shim's: none may
# reach the program (make soak found ibv_rc_pingpong dying of "Completion
# for unknown wr_id" after "drain: 1 QP(s) still busy" on a loaded host).
# Here the wire is slow (5 ms each way) and the drain's window short
# (IBSNAP_DRAIN_MS=1: 6 ms in all), so most drains time out, and the
# checkpoints come back to back; the pair must still finish every
# iteration and exit 0.
#   tests/shim/drain_timeout.sh BUILD_DIR
# It also checks two fixes: a send queued during a checkpoint that finds
# the one-WR send queue still full of the old marker waits for the
# marker's completion (it was lost at resume, and the pair hung), and a
# destroyed QP's shim receive buffers (drain/early.c, posted when a drain
# found a stuck marker) no longer keep its PD busy ("Couldn't deallocate
# PD").
set -u
. "$(dirname "$0")/lib.sh"

if [[ ! -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	echo "FAIL: ibsnapd is not built"
	exit 1
fi
ITERS=400
K=12
job=dt$$x$RANDOM
next_port
export IBSNAP_FAKE_FAULTS=delay_us=5000 IBSNAP_DRAIN_MS=1
timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
	ibv_rc_pingpong -d fake0 -g 0 -n $ITERS -p $PORT >"$LOGDIR/srv.log" 2>&1 &
spid=$!
wait_listen $PORT
timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
	ibv_rc_pingpong -d fake0 -g 0 -n $ITERS -p $PORT 127.0.0.1 >"$LOGDIR/cli.log" 2>&1 &
cpid=$!
joined "$job" 2
sleep 0.3
n=0
failed=0
for ((i = 0; i < K; i++)); do
	if "$IBSNAP" checkpoint --job "$job" --no-dump >>"$LOGDIR/ck.log" 2>&1; then
		n=$((n + 1))
	else
		failed=$((failed + 1))
	fi
done
rc=0
wait $cpid || rc=$?
wait $spid || rc=$((rc | $?))
busy=$(grep -hc "still busy" "$LOGDIR/srv.log" "$LOGDIR/cli.log" | awk '{ s += $1 } END { print s + 0 }')
grep -q "^$ITERS iters in" "$LOGDIR/srv.log" && grep -q "^$ITERS iters in" "$LOGDIR/cli.log" &&
	! grep -q "unknown wr_id" "$LOGDIR/srv.log" "$LOGDIR/cli.log" && [[ $rc -eq 0 ]]
ok "ibv_rc_pingpong through $K checkpoints ($n done, $failed failed, $busy drains timed out): all $ITERS iterations, no marker completion reaches it" $? \
	"$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log"
[[ $busy -gt 0 ]]
ok "... drains did time out (the case is exercised)" $? "$LOGDIR/cli.log"
finish
