#!/bin/bash
# SPDX-License-Identifier: MIT
# The shim's rdma_cm on rxe0 (the real backend; docs/rdma_cm.md), in the
# lab guest: rdmacm-utils unmodified under ibsnap run against rxe0's
# address, and rping checkpointed in place mid-run.
# With dump/restore: rping dumped mid-run with CRIU (ibsnap checkpoint
# --stop) in one boot, restarted after the reboot (ibsnap restart), both
# ends finishing their count.
#   tests/lab/rdmacm.sh BUILD_DIR        (inside the guest: tests/lab/boot.sh)
#   tests/lab/rdmacm.sh dump|restore BUILD_DIR STATE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
stage=run
if [[ ${1:-} = dump || ${1:-} = restore ]]; then
	stage=$1
	shift
	STATE=$(cd "${2:?usage: rdmacm.sh dump|restore BUILD_DIR STATE_DIR}" &&
		pwd)
fi
BUILD=$(cd "${1:?usage: rdmacm.sh BUILD_DIR}" && pwd)
IBSNAP=$BUILD/bin/ibsnap
ADDR=${IBSNAP_LAB_ADDR:-192.168.77.1}
T=${IBSNAP_LAB_CM_TIMEOUT:-120}
LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT

# Wait until a listener of the shim's rdma_cm is bound on port $1 (~30 s).
wait_cm() {
	local i
	for ((i = 0; i < 300; i++)); do
		ss -xaH 2>/dev/null | grep -q "@ibsnap-cm/[0-9a-f]*/[0-9a-f]*/[^/]*/$1 " &&
			return 0
		sleep 0.1
	done
	return 1
}

# cm_pair NAME PORT "SERVER CMD" "CLIENT CMD" REGEX (in the client's log)
cm_pair() {
	local name=$1 port=$2 scmd=$3 ccmd=$4 want=$5 spid rc=0
	timeout -k 5 "$T" "$IBSNAP" run -- $scmd >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	if ! wait_cm "$port"; then
		kill $spid 2>/dev/null
		wait $spid
		ok "$name: the server listens" 124 "$LOGDIR/srv.log"
		return
	fi
	timeout -k 5 "$T" "$IBSNAP" run -- $ccmd >"$LOGDIR/cli.log" 2>&1 || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $rc -ne 0 ]] || grep -q -- "$want" "$LOGDIR/cli.log" || rc=32
	ok "$name" $rc "$LOGDIR/srv.log" "$LOGDIR/cli.log"
}

# dump: rping mid-run, stopped and dumped; restore: restarted after the
# reboot, both ends must end with their full count
ITERS=5000
if [[ $stage = dump ]]; then
	D=$STATE/rdmacm && rm -rf "$D" && mkdir -p "$D" && cd "$D" || exit 1
	job=cmck rc=0 src=0 crc=0
	timeout -k 5 240 "$IBSNAP" run --job $job -- rping -s -a $ADDR -p 7305 \
		-C $ITERS </dev/null >"$D/srv.log" 2>&1 &
	spid=$!
	wait_cm 7305 || rc=124
	timeout -k 5 240 "$IBSNAP" run --job $job -- rping -c -a $ADDR \
		-p 7305 -C $ITERS -v </dev/null >"$D/cli.log" 2>&1 &
	cpid=$!
	for ((i = 0; i < 600 && rc == 0; i++)); do
		grep -q "rdma-ping-200:" "$D/cli.log" 2>/dev/null && break
		sleep 0.1
	done
	ok "rxe0 rping: connected, pings flow" $rc "$D/srv.log" "$D/cli.log"
	"$IBSNAP" checkpoint --job $job --stop --dir "$D/img" >"$D/ck.log" 2>&1 ||
		rc=$?
	ok "rxe0 rping: ibsnap checkpoint --stop mid-run" $rc "$D/ck.log" \
		"$D"/img/*/*.dump-failed.log
	wait $spid || src=$?
	wait $cpid || crc=$?
	ok "rxe0 rping: stopped before its end" \
		"$(rc test "$src" = 137 -a "$crc" = 137)" "$D/srv.log" "$D/cli.log" &&
		touch "$D/dumped"
	finish
	exit
fi
if [[ $stage = restore ]]; then
	D=$STATE/rdmacm
	ok "rxe0 rping: dumped in the previous boot" "$(rc test -e "$D/dumped")" ||
		{
			finish
			exit
		}
	cd "$D" || exit 1
	rc=0
	timeout -k 5 240 "$IBSNAP" restart --dir "$D/img" </dev/null \
		>"$D/restart.log" 2>&1 || rc=$?
	grep -q "rdma-ping-$((ITERS - 1)):" "$D/cli.log" || rc=$((rc | 32))
	ok "rxe0 rping: restarted after the reboot, both ends finish $ITERS pings" \
		$rc "$D/restart.log" "$D/srv.log" "$D/cli.log" \
		"$D"/img/*/*/restore.log
	finish
	exit
fi

cm_pair "rxe0: rping -v -C 10" 7301 "rping -s -a $ADDR -p 7301 -C 10 -v" \
	"rping -c -a $ADDR -p 7301 -C 10 -v" "ping data: rdma-ping-9:"
cm_pair "rxe0: ucmatose" 7302 "ucmatose -p 7302" "ucmatose -s $ADDR -p 7302" \
	"return status 0"
cm_pair "rxe0: udaddy" 7174 "udaddy" "udaddy -s $ADDR" "return status 0"
cm_pair "rxe0: rdma_server / rdma_client" 7303 "rdma_server -p 7303" \
	"rdma_client -s $ADDR -p 7303" "rdma_client: end 0"

# libfabric's verbs provider over the shim's rdma_cm (control over TCP 7310)
if command -v fi_pingpong >/dev/null; then
	rc=0
	timeout -k 5 "$T" "$IBSNAP" run -- fi_pingpong -p verbs -e msg -I 100 \
		-c -B 7310 >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	for ((i = 0; i < 300; i++)); do
		ss -ltnH "sport = :7310" | grep -q . && break
		sleep 0.1
	done
	timeout -k 5 "$T" "$IBSNAP" run -- fi_pingpong -p verbs -e msg -I 100 \
		-c -P 7310 $ADDR >"$LOGDIR/cli.log" 2>&1 || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $rc -ne 0 ]] || grep -q "^1m .*=100" "$LOGDIR/cli.log" || rc=32
	ok "rxe0: fi_pingpong -p verbs -e msg -c (libfabric)" $rc \
		"$LOGDIR/srv.log" "$LOGDIR/cli.log"
else
	# make deps installs it: its absence is a failure, never a skip
	ok "rxe0: fi_pingpong (libfabric-bin is not installed: make deps)" 127
fi

# rping checkpointed in place (no dump) K times while it runs
k=3 n=0 rc=0 job=cmlab$$
timeout -k 5 "$T" "$IBSNAP" run --job $job -- rping -s -a $ADDR -p 7304 \
	-C 1500 >"$LOGDIR/srv.log" 2>&1 &
spid=$!
if wait_cm 7304; then
	timeout -k 5 "$T" "$IBSNAP" run --job $job -- rping -c -a $ADDR \
		-p 7304 -C 1500 -v >"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	for ((i = 0; i < 300; i++)); do
		"$IBSNAP" status --job $job 2>/dev/null | grep -q ": 2 processes" &&
			break
		sleep 0.1
	done
	sleep 1
	for ((i = 0; i < k; i++)); do
		"$IBSNAP" checkpoint --job $job --no-dump >>"$LOGDIR/ck.log" 2>&1 &&
			n=$((n + 1))
	done
	wait $cpid || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $n -eq $k ]] || rc=$((rc | 64))
	grep -q "ping data: rdma-ping-1499:" "$LOGDIR/cli.log" || rc=$((rc | 32))
else
	kill $spid 2>/dev/null
	wait $spid
	rc=124
fi
ok "rxe0: rping -C 1500 checkpointed in place $n of $k times" $rc \
	"$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log"
grep -a "^checkpoint .* done" "$LOGDIR/ck.log" 2>/dev/null | sed 's/^/     /'
finish
