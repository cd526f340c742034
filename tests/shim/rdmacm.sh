#!/bin/bash
# SPDX-License-Identifier: MIT
# librdmacm programs (rdmacm-utils), unmodified, under ibsnap run --fake:
# the shim's rdma_cm (verbs-shim/cm_*.c, docs/rdma_cm.md).  Server and
# client are two ibsnap run; the CM's wire is scoped to this test's fabric,
# so fixed ports (udaddy has no option for one) never meet another test's.
#   tests/shim/rdmacm.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

CM_TIMEOUT=${CM_TIMEOUT:-60}

# Wait until a listener of the shim's rdma_cm is bound on port $1 (~10 s).
wait_cm() {
	local i
	for ((i = 0; i < 100; i++)); do
		ss -xaH 2>/dev/null | grep -q "@ibsnap-cm/[0-9a-f]*/[0-9a-f]*/[^/]*/$1 " &&
			return 0
		sleep 0.1
	done
	return 1
}

# cm_pair NAME PORT "SERVER CMD" "CLIENT CMD" [REGEX the logs must show]
cm_pair() {
	local name=$1 port=$2 scmd=$3 ccmd=$4 want=${5:-} spid rc=0
	env ${CM_ENV:-} timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- \
		$scmd >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	if ! wait_cm "$port"; then
		kill $spid 2>/dev/null
		wait $spid
		ok "$name: the server listens" 124 "$LOGDIR/srv.log"
		return
	fi
	env ${CM_ENV:-} timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- \
		$ccmd >"$LOGDIR/cli.log" 2>&1 || rc=$?
	wait $spid || rc=$((rc | $?))
	if [[ $rc -eq 0 && -n $want ]]; then
		cat "$LOGDIR/srv.log" "$LOGDIR/cli.log" | grep -q -- "$want" || rc=32
	fi
	ok "$name" $rc "$LOGDIR/srv.log" "$LOGDIR/cli.log"
}

P=$((21000 + ($$ % 20000)))
cm_pair "rping -v -C 10" $P "rping -s -a 127.0.0.1 -p $P -C 10 -v" \
	"rping -c -a 127.0.0.1 -p $P -C 10 -v" "ping data: rdma-ping-9:"
P=$((P + 1))
cm_pair "rping -C 200 -S 4000 (RDMA READ/WRITE of 4000 bytes)" $P \
	"rping -s -a 127.0.0.1 -p $P -C 200 -S 4000" \
	"rping -c -a 127.0.0.1 -p $P -C 200 -S 4000"
P=$((P + 1))
cm_pair "rping -q (QP made by the program, rdma_init_qp_attr, rdma_establish)" \
	$P "rping -s -q -a 127.0.0.1 -p $P -C 10 -v" \
	"rping -c -q -a 127.0.0.1 -p $P -C 10 -v" "ping data: rdma-ping-9:"
P=$((P + 1))
cm_pair "ucmatose (2 connections, private data, disconnect)" $P \
	"ucmatose -p $P -c 2" "ucmatose -s 127.0.0.1 -p $P -c 2" \
	"data transfers complete"
P=$((P + 1))
cm_pair "udaddy (UD: SIDR, Q_Key, AH from the event)" 7174 "udaddy" \
	"udaddy -s 127.0.0.1" "data transfers complete"
cm_pair "rdma_server / rdma_client (synchronous ids, rdma_verbs.h)" $P \
	"rdma_server -p $P" "rdma_client -s 127.0.0.1 -p $P" "rdma_client: end 0"

# every ID remapped on both ends (IBSNAP_TEST_REMAP=1: as after a restart),
# and an IB link (LIDs, no GRH)
P=$((P + 1))
CM_ENV=IBSNAP_TEST_REMAP=1 cm_pair "rping, IDs remapped" $P \
	"rping -s -a 127.0.0.1 -p $P -C 50" "rping -c -a 127.0.0.1 -p $P -C 50"
P=$((P + 1))
CM_ENV=IBSNAP_TEST_REMAP=1 cm_pair "rdma_server / rdma_client, IDs remapped" \
	$P "rdma_server -p $P" "rdma_client -s 127.0.0.1 -p $P" "rdma_client: end 0"
# (udaddy -C 1: its receives share one buffer, whose GRH the shim's
# remapping cannot rewrite for each of several messages)
CM_ENV=IBSNAP_TEST_REMAP=1 cm_pair "udaddy -C 1, IDs remapped" 7174 \
	"udaddy -C 1" "udaddy -s 127.0.0.1 -C 1" "data transfers complete"
P=$((P + 1))
CM_ENV=IBSNAP_FAKE_LINK=ib cm_pair "rping, IB link" $P \
	"rping -s -a 127.0.0.1 -p $P -C 50" "rping -c -a 127.0.0.1 -p $P -C 50"
CM_ENV=IBSNAP_FAKE_LINK=ib cm_pair "udaddy, IB link" 7174 "udaddy" \
	"udaddy -s 127.0.0.1" "data transfers complete"

# libfabric's verbs provider (FI_EP_MSG: rdma_getaddrinfo, rdma_create_ep,
# its own event channel), fi_pingpong with data checks; its control
# connection is TCP on PORT
if command -v fi_pingpong >/dev/null; then
	next_port
	timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- fi_pingpong -p verbs \
		-e msg -I 200 -c -B $PORT >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	rc=0
	wait_listen $PORT || rc=124
	[[ $rc -ne 0 ]] || timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- \
		fi_pingpong -p verbs -e msg -I 200 -c -P $PORT 127.0.0.1 \
		>"$LOGDIR/cli.log" 2>&1 || rc=$?
	[[ $rc -eq 124 ]] && kill $spid 2>/dev/null
	wait $spid || rc=$((rc | $?))
	[[ $rc -ne 0 ]] || grep -q "^1m .*=200" "$LOGDIR/cli.log" || rc=32
	ok "fi_pingpong -p verbs -e msg -c (libfabric over the shim's rdma_cm)" \
		$rc "$LOGDIR/srv.log" "$LOGDIR/cli.log"
else
	# make deps installs it: its absence is a failure, never a skip
	ok "fi_pingpong -p verbs (libfabric-bin is not installed: make deps)" 127
fi

# the API's semantics (cm_api.c, cmocka): private data, reject, accept,
# disconnect, timeouts, ports, a non-blocking channel, errnos; our own
# program: leaks (under ASan) are the shim's
API=$(cd "$BUILD" && pwd)/tests/shim/cm_api
for mode in "" "IBSNAP_TEST_REMAP=1"; do
	env ASAN_OPTIONS=detect_leaks=1 CM_API_PORT=$((P + 100)) $mode \
		timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- "$API" \
		>"$LOGDIR/api.log" 2>&1
	ok "cm_api ${mode:-(plain)}" $? "$LOGDIR/api.log"
	grep -E '^\[  (FAILED|ERROR)|^\[  PASSED' "$LOGDIR/api.log" | sed 's/^/    /'
done

# a peer that exits without disconnecting: its shim sends the DREQ the
# kernel's CM would send when the process's rdma_cm fd closes
P=$((P + 1))
cm_pair "a peer exits connected: DISCONNECTED" $P "$API exit-server $P" \
	"$API exit-peer $P" "PASSED"

# fake0's address from IBSNAP_FAKE_ADDR
P=$((P + 1))
CM_ENV=IBSNAP_FAKE_ADDR=10.77.0.1 cm_pair "rping on IBSNAP_FAKE_ADDR=10.77.0.1" \
	$P "rping -s -a 10.77.0.1 -p $P -C 10" \
	"rping -c -a 10.77.0.1 -p $P -C 10 -v" "ping data: rdma-ping-9:"

# errors as librdmacm gives them
P=$((P + 1))
out="$LOGDIR/out"
timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- ucmatose -s 127.0.0.1 \
	-p $P >"$out" 2>&1
[[ $? -eq 8 ]] && grep -q "RDMA_CM_EVENT_REJECTED, error: 8" "$out"
ok "nobody listens: REJECTED, status 8 (invalid service ID)" $? "$out"
timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- rping -c -a 127.0.0.1 \
	-p $P -C 1 >"$out" 2>&1
[[ $? -ne 0 ]] && grep -q "RDMA_CM_EVENT_REJECTED, error 8" "$out"
ok "rping to nobody fails with REJECTED" $? "$out"
timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- rping -s -a 10.77.0.2 \
	-p $P -C 1 >"$out" 2>&1
[[ $? -ne 0 ]] && grep -q "rdma_bind_addr: Cannot assign requested address" "$out"
ok "binding an address no device has: EADDRNOTAVAIL" $? "$out"

# rsockets cannot run over the shim's ids: a clear failure
for prog in rstream riostream; do
	timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- $prog \
		-s 127.0.0.1 -p $P >"$out" 2>&1
	[[ $? -ne 0 ]] && grep -q "rsocket.*not supported under ibsnap" "$out"
	ok "$prog fails clearly (rsockets not supported)" $? "$out"
done
# Checkpoints in place (ibsnap checkpoint --no-dump: quiesce, drain,
# release, rebuild, resume) while the programs run: server and client are
# two ibsnap run of one job; the connected ids' QPs drain like any QP, the
# CM's sockets are closed at release and bound again at rebuild.  A 100 us
# wire delay makes a run outlast the K checkpoints.  Each end must finish
# its full count.
# cm_ckpt NAME K PORT "SERVER CMD" "CLIENT CMD" SERVER-REGEX CLIENT-REGEX
# (the logs must show them; empty: not checked)
cm_ckpt() {
	local name=$1 k=$2 port=$3 scmd=$4 ccmd=$5 swant=$6 cwant=$7
	local job=cm$$x$RANDOM
	local i n=0 rc=0 spid cpid
	: >"$LOGDIR/ck.log"
	env IBSNAP_FAKE_FAULTS=delay_us=100 ${CK_ENV:-} timeout -k 5 \
		"$CM_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- $scmd \
		>"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	if ! wait_cm "$port"; then
		kill $spid 2>/dev/null
		wait $spid
		ok "$name: the server listens" 124 "$LOGDIR/srv.log"
		return
	fi
	env IBSNAP_FAKE_FAULTS=delay_us=100 ${CK_ENV:-} timeout -k 5 \
		"$CM_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- $ccmd \
		>"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	joined "$job" 2
	sleep "${CK_SETTLE:-0.3}"
	checkpoints "$job" "$k"
	wait $cpid || rc=$?
	wait $spid || rc=$((rc | $?))
	# CK_MIN: a program that ends while a checkpoint runs makes that one
	# fail ("left the job", "lost its connection", its agent "was lost");
	# any other failure counts
	[[ $n -ge ${CK_MIN:-$k} ]] || rc=$((rc | 64))
	grep "^checkpoint .* failed" "$LOGDIR/ck.log" |
		grep -qv "left the job\|lost its connection\|agent .* was lost" &&
		rc=$((rc | 64))
	[[ -z $swant ]] || grep -q -- "$swant" "$LOGDIR/srv.log" || rc=$((rc | 32))
	[[ -z $cwant ]] || grep -q -- "$cwant" "$LOGDIR/cli.log" || rc=$((rc | 32))
	ok "$name: $n of $k checkpoints mid-run" $rc "$LOGDIR/srv.log" \
		"$LOGDIR/cli.log" "$LOGDIR/ck.log"
	grep -a "^checkpoint .* done" "$LOGDIR/ck.log" | sed 's/^/     /'
}

# A listening id alone, checkpointed: its port is bound again and a client
# connects afterwards.  cm_listen_ckpt NAME PORT "SERVER CMD" "CLIENT CMD"
cm_listen_ckpt() {
	local name=$1 port=$2 scmd=$3 ccmd=$4 job=cl$$x$RANDOM i n=0 rc=0 spid
	: >"$LOGDIR/ck.log"
	timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
		$scmd >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	if ! wait_cm "$port"; then
		kill $spid 2>/dev/null
		wait $spid
		ok "listener: the server listens" 124 "$LOGDIR/srv.log"
		return
	fi
	checkpoints "$job" 3
	timeout -k 5 "$CM_TIMEOUT" "$IBSNAP" run --fake -- $ccmd \
		>"$LOGDIR/cli.log" 2>&1 || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $n -eq 3 ]] || rc=$((rc | 64))
	ok "$name: listening, checkpointed 3 times, then connected to" $rc \
		"$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log"
}

if [[ -x $(dirname "$IBSNAP")/ibsnapd ]]; then
	P=$((P + 1))
	cm_ckpt "rping -C 4000" 5 $P "rping -s -a 127.0.0.1 -p $P -C 4000" \
		"rping -c -a 127.0.0.1 -p $P -C 4000 -v" "" \
		"ping data: rdma-ping-3999:"
	P=$((P + 1))
	# the data phase is short: the last checkpoints may meet the end;
	# ucmatose posts all its sends at once (20000 per QP): a drain waits
	# for the backlog longer than the default window (IBSNAP_DRAIN_MS)
	CK_SETTLE=0 CK_MIN=2 CK_ENV=IBSNAP_DRAIN_MS=1000 cm_ckpt \
		"ucmatose -c 10 -C 20000 (connections set up across checkpoints)" \
		4 $P "ucmatose -p $P -c 10 -C 20000" \
		"ucmatose -s 127.0.0.1 -p $P -c 10 -C 20000" "return status 0" \
		"return status 0"
	P=$((P + 1))
	cm_listen_ckpt ucmatose $P "ucmatose -p $P" "ucmatose -s 127.0.0.1 -p $P"
	# a synchronous listener: blocked in rdma_get_request meanwhile
	P=$((P + 1))
	cm_listen_ckpt "rdma_server" $P "rdma_server -p $P" \
		"rdma_client -s 127.0.0.1 -p $P"
fi
finish
