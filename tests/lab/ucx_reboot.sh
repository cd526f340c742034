#!/bin/bash
# SPDX-License-Identifier: MIT
# UCX and Open MPI jobs through a CRIU dump, a reboot and ibsnap restart on
# rxe0 (in the guest):
#   ucx_reboot.sh dump BUILD_DIR STATE_DIR [WHAT]     boot 1: each job runs
#       under "ibsnap run"; mid-run "ibsnap checkpoint --stop" dumps it into
#       STATE_DIR/ucx/NAME/img and ends it.
#   ucx_reboot.sh restore BUILD_DIR STATE_DIR [WHAT]  boot 2: "ibsnap
#       restart" brings it back; it finishes with its full count (mpi_ring:
#       the right checksum) and exit 0.
# Jobs: "mpi", the 4-rank tests/shim/mpi_ring under mpirun (pml ucx over
# rc_verbs, btl self): mpirun's session directory in /tmp (hwloc's segment
# every rank maps, its FIFOs) is gone after the reboot, and ibsnap carries
# it (cli/tmpfs.c); "rc" and "ud", a ucx_perftest tag_lat pair over
# rc_verbs, over ud_verbs.
# WHAT (or IBSNAP_LAB_UCX_JOBS): a comma list, default "mpi" (the lab tier's
# time budget; e.g. "mpi,rc,ud" for all).  STATE_DIR must outlive the guest.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

stage=${1:?usage: ucx_reboot.sh dump|restore BUILD_DIR STATE_DIR [WHAT]}
BUILD=$(cd "${2:?}" && pwd)
D=$(cd "${3:?}" && pwd)/ucx
WHAT=,${4:-${IBSNAP_LAB_UCX_JOBS:-mpi}},
IBSNAP=$BUILD/bin/ibsnap
T=${IBSNAP_LAB_UCX_TIMEOUT:-240}
# iterations; mpi_ring's large message 32 KiB (rendezvous), not 128: the
# run after the restart goes at rxe's pace under TCG
MPI_N=600 MPI_WORDS=4096
RC_N=30000
export UCX_NET_DEVICES=rxe0:1 UCX_IB_GID_INDEX=0
export OMPI_MCA_plm_rsh_agent=
unset IBSNAP_BACKEND IBSNAP_FAKE_FAULTS

if ! command -v mpirun >/dev/null || ! command -v ucx_perftest >/dev/null; then
	ok "ucx_reboot: Open MPI and ucx-utils are installed (make deps)" 1
	finish
fi

running() { "$IBSNAP" status --job "$1" 2>/dev/null | grep -q ": $2 processes"; }
listening() { ss -ltnH "sport = :$1" | grep -q .; }
progressed() { [[ -s $1 ]] && (($(cat "$1") >= $2)); }

# dumped NAME JOB PIDS...: checkpoint --stop mid-run; the job's processes
# end by the agents' kill (137), not by themselves
dumped() {
	local name=$1 job=$2 dir=$D/$1 rc=0 p prc bad=
	shift 2
	"$IBSNAP" checkpoint --job "$job" --stop --dir "$dir/img" \
		>"$dir/ck.log" 2>&1 || rc=$?
	ok "$name: ibsnap checkpoint --stop mid-run" $rc "$dir/ck.log" \
		"$dir"/img/*/*.dump-failed.log
	sed 's/^/     /' "$dir/ck.log"
	for p in "$@"; do
		prc=0
		wait "$p" || prc=$?
		[[ $prc = 137 ]] || bad="$bad $prc"
	done
	[[ $rc = 0 ]] || return
	ok "$name: the job was stopped before its end" "$(rc test -z "$bad")" \
		"$dir"/*.log && touch "$dir/dumped"
}

dump_mpi() {
	local dir=$D/mpi job=ucxr-mpi pid
	rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || return
	echo $MPI_N >"$dir/iters"
	# receive queues of 1024, not 4096, 8 KiB each: a quarter of the
	# image (~70 MB a rank by default, 85 s to dump onto 9p under TCG)
	UCX_TLS=rc_verbs,ud_verbs,self UCX_RC_VERBS_RX_QUEUE_LEN=1024 \
		UCX_UD_VERBS_RX_QUEUE_LEN=1024 timeout -k 5 "$T" "$IBSNAP" run \
		--job "$job" -- mpirun --allow-run-as-root --oversubscribe -np 4 \
		--mca pml ucx --mca btl self -x UCX_TLS -x UCX_NET_DEVICES \
		-x UCX_IB_GID_INDEX -x UCX_RC_VERBS_RX_QUEUE_LEN \
		-x UCX_UD_VERBS_RX_QUEUE_LEN "$BUILD/tests/shim/mpi_ring" -n $MPI_N \
		-s $MPI_WORDS -r "$dir/ready" -p "$dir/progress" </dev/null \
		>"$dir/mpi.log" 2>&1 &
	pid=$!
	# rank 0 creates the file once the ranks are connected
	ok "mpi: 4 ranks registered and connected" \
		"$(rc wait_for 120 test -e "$dir/ready")" "$dir/mpi.log" &&
		ok "mpi: 4 ranks registered" \
			"$(rc wait_for 30 running "$job" 4)" "$dir/mpi.log" || {
		kill $pid
		wait $pid
		return
	}
	# 20 iterations at least: past any wire-up
	wait_for 60 progressed "$dir/progress" 20
	dumped mpi "$job" $pid
	echo "     dumped at iteration $(cat "$dir/progress") of $MPI_N"
}

dump_pair() { # NAME TL TLS
	local name=$1 tl=$2 dir=$D/$1 job=ucxr-$1 spid cpid port=18791
	[[ $name = rc ]] || port=18792
	rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || return
	echo $RC_N >"$dir/iters"
	# UCX prints the endpoint's transports at info level
	export UCX_TLS=$3 UCX_LOG_LEVEL=info
	timeout -k 5 "$T" "$IBSNAP" run --job "$job" -- ucx_perftest \
		-t tag_lat -n $RC_N -p $port </dev/null >"$dir/srv.log" 2>&1 &
	spid=$!
	wait_for 60 listening $port
	timeout -k 5 "$T" "$IBSNAP" run --job "$job" -- ucx_perftest 127.0.0.1 \
		-t tag_lat -n $RC_N -p $port </dev/null >"$dir/cli.log" 2>&1 &
	cpid=$!
	unset UCX_TLS UCX_LOG_LEVEL
	ok "$name: ucx_perftest pair registered, endpoint over $tl" \
		"$(rc wait_for 90 grep -q "ep_cfg\[0\]: .*($tl/rxe0:1)" \
			"$dir/cli.log")" "$dir/srv.log" "$dir/cli.log" || {
		kill $spid $cpid
		wait $spid $cpid
		return
	}
	sleep 2
	dumped "$name" "$job" $spid $cpid
}

# restore NAME: ibsnap restart of the job dumped in the previous boot
restore() {
	local name=$1 dir=$D/$1 rc=0 n
	ok "$name: dumped in the previous boot" "$(rc test -e "$dir/dumped")" ||
		return 1
	n=$(cat "$dir/iters")
	cd "$dir" || return 1
	timeout -k 5 "$T" "$IBSNAP" restart --dir "$dir/img" </dev/null \
		>"$dir/restart.log" 2>&1 || rc=$?
	ok "$name: ibsnap restart after the reboot, the job exits 0" $rc \
		"$dir/restart.log" "$dir"/*.log "$dir"/img/*/*/restore.log
	sed 's/^/     /' "$dir/restart.log"
	return $rc
}

case $stage in
dump)
	mkdir -p "$D"
	[[ $WHAT != *,mpi,* ]] || dump_mpi
	[[ $WHAT != *,rc,* ]] || dump_pair rc rc_verbs rc_verbs,ud_verbs,self
	[[ $WHAT != *,ud,* ]] || dump_pair ud ud_verbs ud_verbs,self
	;;
restore)
	if [[ $WHAT == *,mpi,* ]] && restore mpi; then
		n=$(cat "$D/mpi/iters")
		ok "mpi: $n iterations, the right checksum" \
			"$(rc grep -q "^mpi_ring: $n iterations in .* ok$" \
				"$D/mpi/mpi.log")" "$D/mpi/mpi.log"
		grep -h "^mpi_ring: .*iterations" "$D/mpi/mpi.log" | sed 's/^/     /'
	fi
	for p in rc ud; do
		if [[ $WHAT == *,$p,* ]] && restore $p; then
			n=$(cat "$D/$p/iters")
			ok "$p: the client's full count, $n iterations" \
				"$(rc grep -q "^Final: *$n " "$D/$p/cli.log")" \
				"$D/$p/cli.log"
		fi
	done
	;;
*) echo "ucx_reboot.sh: unknown stage $stage" >&2 && exit 2 ;;
esac
finish
