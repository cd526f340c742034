#!/bin/bash
# SPDX-License-Identifier: MIT
# UCX jobs checkpointed mid-run (docs/ucx.md): unmodified ucx_perftest,
# server and client each under ibsnap run --fake in one job, taken through
# ibsnap checkpoint --no-dump K times over rc_verbs and ud_verbs; then a
# checkpoint whose dump (the stand-in criu, tests/coord/fake-criu) holds
# the job longer than UCX's own timers run: keepalive, and UD's endpoint
# timeout, which ibsnap run raises (IBSNAP_UCX_UD_TIMEOUT).
#   tests/shim/ucx_ckpt.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

if ! command -v ucx_perftest >/dev/null; then
	echo "FAIL: ucx-utils is not installed (make deps installs it)"
	exit 1
fi
if [[ ! -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	echo "FAIL: no ibsnapd in $BUILD"
	exit 1
fi
export UCX_NET_DEVICES=fake0:1 UCX_IB_GID_INDEX=0 UCX_LOG_LEVEL=info
# a 1 ms wire delay bounds how fast a run goes (2 ms per round trip at
# least): the checkpoints fall inside it however idle the host is
export IBSNAP_FAKE_FAULTS=delay_us=1000
RC=rc_verbs,ud_verbs,self
UD=ud_verbs,self
FAKE_CRIU=$(cd "$(dirname "$0")/../coord" && pwd)/fake-criu

# ckjob NAME TLS TL K HOLD_S ARGS...: ucx_perftest ARGS between two
# processes of one job; K checkpoints --no-dump, or with HOLD_S > 0 one
# checkpoint whose dump holds for HOLD_S seconds.  Both must exit 0, the
# client with its full iteration count (-n) over TL, and every checkpoint
# must succeed.
ckjob() {
	local name=$1 tls=$2 tl=$3 k=$4 hold=$5 job=uc$$x$RANDOM
	local i n=0 rc=0 spid cpid iters ctl t0=$SECONDS
	shift 5
	iters=$(sed -n 's/.*-n \([0-9]*\).*/\1/p' <<<"$*")
	next_port
	: >"$LOGDIR/ck.log"
	ctl=$(mktemp -d)
	(
		cd "$ctl" || exit 1
		export UCX_TLS=$tls IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$ctl
		timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" \
			-- ucx_perftest "$@" -p $PORT >"$LOGDIR/srv.log" 2>&1 &
		spid=$!
		if ! wait_listen $PORT; then
			kill $spid 2>/dev/null
			wait $spid
			exit 124
		fi
		timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" \
			-- ucx_perftest "$@" -p $PORT 127.0.0.1 \
			>"$LOGDIR/cli.log" 2>&1 &
		cpid=$!
		joined "$job" 2
		# the client's endpoint exists: the checkpoints fall in the run
		for ((i = 0; i < 200; i++)); do
			grep -q "ep_cfg\[0\]" "$LOGDIR/cli.log" && break
			sleep 0.05
		done
		sleep 0.2
		if ((hold > 0)); then
			touch "$ctl/hold"
			(
				sleep "$hold"
				rm -f "$ctl/hold"
			) &
			"$IBSNAP" checkpoint --job "$job" --dir "$ctl/img" \
				>>"$LOGDIR/ck.log" 2>&1 && n=1
			k=1
		else
			checkpoints "$job" "$k"
		fi
		wait $cpid || rc=$?
		wait $spid || rc=$((rc | $?))
		[[ $n -eq $k ]] || rc=$((rc | 64))
		grep -q "^Final: *$iters " "$LOGDIR/cli.log" || rc=$((rc | 32))
		grep -q "ep_cfg\[0\]: .*($tl/fake0:1)" "$LOGDIR/cli.log" ||
			rc=$((rc | 16))
		exit $rc
	)
	rc=$?
	rm -rf "$ctl"
	if [[ ${EXPECT_FAIL:-0} = 1 ]]; then
		[[ $rc -ne 0 ]]
		ok "$name" $? "$LOGDIR/cli.log" "$LOGDIR/ck.log"
		return
	fi
	ok "$name" $rc "$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log" ||
		grep -h "UCX  ERROR\|Fatal" "$LOGDIR/srv.log" "$LOGDIR/cli.log" |
		head -5 | sed 's/^/    = /'
	grep -a "^checkpoint .* done\|^  dump  *[0-9]" "$LOGDIR/ck.log" |
		sed 's/^/     /'
	echo "     ($((SECONDS - t0)) s)"
}

# 1500 round trips: 3 s at least (more on a loaded host, where the ends
# and their progress threads spin on 2 cores)
N=1500
# The short form (IBSNAP_TEST_SHORT=1: a sanitized build beside a normal
# one, tests/run-tests.sh): every job checkpointed --no-dump, over 1000
# round trips (2 s at least; 3 checkpoints take well under 1 s with a
# sanitized shim), and one held dump (UD with keepalive: the shim's side of
# a held dump is the same over RC); the UCX_UD_TIMEOUT=1s control (UCX's
# own timeout, which the shim does not change) and the RC held dump run on
# the normal build.
SHORT=${IBSNAP_TEST_SHORT:-0}
if [[ $SHORT = 1 ]]; then
	N=1000
	echo "short form (IBSNAP_TEST_SHORT=1): $N round trips, the" \
		"UCX_UD_TIMEOUT=1s control and the RC held dump left to the" \
		"normal build"
fi
ckjob "tag_lat over rc_verbs, 3 checkpoints" $RC rc_verbs 3 0 \
	-t tag_lat -n $N -s 64
ckjob "tag_lat over ud_verbs, 3 checkpoints" $UD ud_verbs 3 0 \
	-t tag_lat -n $N -s 64
ckjob "ucp_am_lat over ud_verbs, 3 checkpoints" $UD ud_verbs 3 0 \
	-t ucp_am_lat -n $N -s 64
ckjob "ucp_put_lat over rc_verbs, 3 checkpoints" $RC rc_verbs 3 0 \
	-t ucp_put_lat -n $N -s 64
# one send out at a time: RTS, the receiver's RDMA READ (a registration of
# UCX's rcache, re-created at its address by the rebuild), ATS
ckjob "tag_bw 64 KiB (rendezvous) over rc_verbs, 3 checkpoints" $RC \
	rc_verbs 3 0 -t tag_bw -n $((N * 3)) -s 65536 -O 1
IBSNAP_TEST_REMAP=1 \
	ckjob "tag_lat over rc_verbs, remapped IDs, 3 checkpoints" $RC \
	rc_verbs 3 0 -t tag_lat -n $N -s 64

# The job held 3 s in the dump.  UD endpoints time out when a packet stays
# unacknowledged for UCX_UD_TIMEOUT: shorter than the hold, they fail (the
# check that this test can see it); ibsnap run's default (10 min) holds.
# Keepalive every second meanwhile, over both transports.
export UCX_KEEPALIVE_INTERVAL=1s
if [[ $SHORT != 1 ]]; then
	EXPECT_FAIL=1 IBSNAP_UCX_UD_TIMEOUT=1s \
		ckjob "ud_verbs, dump held 3 s, UCX_UD_TIMEOUT=1s: endpoints time out" \
		$UD ud_verbs 0 3 -t tag_lat -n $N -s 64
	grep -q "unhandled timeout error" "$LOGDIR/cli.log" "$LOGDIR/srv.log"
	ok "  ... as UD's endpoint timeout" $? "$LOGDIR/cli.log"
fi
ckjob "ud_verbs, dump held 3 s, keepalive 1 s" $UD ud_verbs 0 3 \
	-t tag_lat -n $N -s 64
grep -q "UCX_UD_TIMEOUT=10m" "$LOGDIR/cli.log"
ok "  ... ibsnap run set UCX_UD_TIMEOUT=10m" $? "$LOGDIR/cli.log"
[[ $SHORT = 1 ]] ||
	ckjob "rc_verbs, dump held 3 s, keepalive 1 s" $RC rc_verbs 0 3 \
		-t tag_lat -n $N -s 64
finish
