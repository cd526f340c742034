#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoints of a running job through the shim's handlers (drain/, rebuild/)
# with the test's own coordinator (tests/integration/ckpt_stream.c; the
# integration tier runs its default: 40 checkpoints, a new incarnation of
# both nodes every third).  Here: many more, new incarnations every time,
# a delayed wire, an IB link.  Every message exactly once each time, and
# the messages an RNR holds up at a drain (Q_RNR) caught and delivered in
# order (drain/early.c).
#   tests/shim/ckpt.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

CS=$(cd "$BUILD" && pwd)/tests/integration/ckpt_stream
stream() { # NAME ENV... -- ARGS
	local name=$1 env=()
	shift
	while [[ $# -gt 0 && $1 != -- ]]; do
		env+=("$1")
		shift
	done
	shift
	env "${env[@]}" timeout -k 5 240 "$CS" "$@" >"$LOGDIR/cs.log" 2>&1
	ok "$name" $? "$LOGDIR/cs.log"
	grep -a "checkpoints\|exactly once" "$LOGDIR/cs.log" | sed 's/^/     /'
}
# a sanitized build runs fewer: the time is bounded
if [[ $SHIM_PRELOAD != "$SHIM" ]]; then
	N=(60 20 20 20)
else
	N=(200 200 60 40)
fi
# issue 6's acceptance: 200 checkpoints at random points with fault
# injection on (2 % of packets dropped: retransmits across drains), and the
# same with new incarnations each time (every ID remapped)
s=$RANDOM
stream "${N[0]} checkpoints, 2 % drops (seed $s), reincarnated every third" \
	CKST_REINC_EVERY=3 IBSNAP_FAKE_FAULTS=drop=0.02,seed=$s -- "${N[0]}"
# issue 10: the copies of the ID maps that a change replaced (every
# reincarnation remaps QPNs, keys, LIDs, GIDs) are freed at the end of each
# checkpoint (drain/driver.c), not kept until the process ends (~7 kB per
# reincarnating checkpoint before); each rank logs at exit what is still
# kept and what the checkpoints freed (drain/testdrv.c)
vid=$(sed -n 's/.*ID-map copies retired and kept: [0-9]* (\([0-9]*\) bytes); freed by checkpoints: \([0-9]*\) .*/\1 \2/p' "$LOGDIR/cs.log")
echo "$vid" | awk 'NF == 2 && $1 <= 16384 && $2 > 0 { n++ } END { exit n != 2 }'
ok "ID-map copies: both ranks keep <= 16 kB after ${N[0]} checkpoints, the checkpoints freed the rest (kept bytes, copies freed: $(echo $vid))" $? "$LOGDIR/cs.log"
s=$RANDOM
stream "${N[1]} checkpoints, 2 % drops (seed $s), reincarnated every time" \
	CKST_REINC_EVERY=1 IBSNAP_FAKE_FAULTS=drop=0.02,seed=$s -- "${N[1]}"
stream "${N[2]} checkpoints, 20 us wire delay" CKST_REINC_EVERY=2 \
	IBSNAP_FAKE_FAULTS=delay_us=20 -- "${N[2]}"
stream "${N[3]} checkpoints, IB link (LIDs)" IBSNAP_FAKE_LINK=ib -- "${N[3]}"

# Unmodified programs under ibsnap run, checkpointed mid-run by the
# coordinator: server and client are two ibsnap run of one job (two PID
# namespaces), and ibsnap checkpoint --no-dump takes them through quiesce,
# drain, release, rebuild and resume K times while they ping-pong.  Each
# must end with its full iteration count.  A 100 us wire delay puts a floor
# under the time a run takes, so the K checkpoints fall inside it however
# idle the host is (a loaded host only makes the run longer).
coordinated() { # NAME K ITERS PROG ARGS...
	local name=$1 k=$2 iters=$3 job=ck$$x$RANDOM i n=0 rc=0 spid cpid
	shift 3
	next_port
	: >"$LOGDIR/ck.log"
	IBSNAP_FAKE_FAULTS=delay_us=100 timeout -k 5 "$PAIR_TIMEOUT" \
		"$IBSNAP" run --fake --job "$job" -- "$@" -n "$iters" -p $PORT \
		>"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	if ! wait_listen $PORT; then
		kill $spid 2>/dev/null
		wait $spid
		ok "$name" 124 "$LOGDIR/srv.log"
		return
	fi
	IBSNAP_FAKE_FAULTS=delay_us=100 timeout -k 5 "$PAIR_TIMEOUT" \
		"$IBSNAP" run --fake --job "$job" -- "$@" -n "$iters" -p $PORT \
		127.0.0.1 >"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	# both registered (at their first ibv_get_device_list), then a moment
	# for the QPs to connect: the checkpoints fall in the ping-pong
	joined "$job" 2
	sleep 0.2
	checkpoints "$job" "$k"
	wait $cpid || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $n -eq $k ]] || rc=$((rc | 64))
	grep -q "^$iters iters in" "$LOGDIR/srv.log" || rc=$((rc | 32))
	grep -q "^$iters iters in" "$LOGDIR/cli.log" || rc=$((rc | 32))
	ok "$name: $n of $k checkpoints mid-run, $iters iterations" $rc \
		"$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log" ||
		grep -hv "address:" "$LOGDIR/srv.log" "$LOGDIR/cli.log" |
		tail -20 | sed 's/^/    = /'
	grep -a "^checkpoint .* done" "$LOGDIR/ck.log" | sed 's/^/     /'
}
if [[ -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	coordinated "ibv_rc_pingpong" 5 6000 ibv_rc_pingpong -d fake0 -g 0
	coordinated "ibv_ud_pingpong" 5 6000 ibv_ud_pingpong -d fake0 -g 0
	coordinated "ibv_srq_pingpong" 5 100000 ibv_srq_pingpong -d fake0 -g 0
	# CQ events; and a send queue of one WR, full while a SEND is out
	# (the drain must wait for room to post its marker)
	coordinated "ibv_rc_pingpong -e" 5 6000 \
		ibv_rc_pingpong -d fake0 -g 0 -e
fi
finish
