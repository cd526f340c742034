#!/bin/bash
# SPDX-License-Identifier: MIT
# The exchange through PMIx (issue 9, coord/client_pmix.c): 4 coordinator
# peers started by Open MPI's mpirun (a PMIx server) under ibsnap run, with
# IBSNAP_PMIX=1, through two checkpoints --no-dump: every peer gets all 4
# blobs intact in DRAIN and REBUILD (coord_peer checks each byte), and each
# exchange went through PMIx_Put/Fence/Get, none of the blobs through
# ibsnapd.  Without IBSNAP_PMIX the same job exchanges through ibsnapd.
# Then the real thing: tests/shim/mpi_ring (Open MPI over UCX rc_verbs on
# the fake HCA, under the shim) through two checkpoints whose DRAIN and
# REBUILD exchanges go through PMIx: it ends with the right checksum.
source "$(dirname "$0")/lib.sh"

if ! command -v mpirun >/dev/null; then
	ok "mpirun (openmpi-bin) is installed: it is the PMIx server here" 1
	finish
	exit 1
fi
# one host: no rsh agent needed
export OMPI_MCA_plm_rsh_agent=

# mpi_job DIR PMIX: 4 coord_peers under mpirun under ibsnap run
mpi_job() {
	mkdir -p "$1"
	PEER_DIR=$1 IBSNAP_PMIX=$2 "$IBSNAP" run --no-preload --job "${1##*/}" -- \
		mpirun --allow-run-as-root --oversubscribe -np 4 -x IBSNAP_PMIX \
		-x PEER_DIR "$PEER" >"$1/run.out" 2>&1 &
	RUN_PIDS+=("$!")
}

P=$T/peers-pmix
mpi_job "$P" 1
wait_for 300 has_procs peers-pmix 4
ok "4 peers under mpirun registered" $? "$P/run.out"
"$IBSNAP" checkpoint --job peers-pmix --no-dump >"$T/ck1" 2>&1 &&
	"$IBSNAP" checkpoint --job peers-pmix --no-dump >"$T/ck2" 2>&1
ok "two checkpoints --no-dump succeed" $? "$T/ck1" "$T/ck2"
wait_for 50 all_logs "$P" "rebuild ok n=4 inc=0" 4 &&
	[[ $(grep -c "drain ok n=4" "$P"/peer-*.log | grep -c ':2$') -eq 4 ]] &&
	[[ $(grep -c "rebuild ok n=4" "$P"/peer-*.log | grep -c ':2$') -eq 4 ]] &&
	! grep -q BAD "$P"/peer-*.log
ok "every peer got all 4 blobs intact, in both exchanges of both" $? "$P/run.out"
wait_for 50 eval '[[ $(grep -c "through PMIx: 4 blobs, 0 through ibsnapd" "$P/run.out") -eq 16 ]]'
ok "all 16 exchanges went through PMIx, no blob through ibsnapd" $? "$P/run.out"
touch "$P/stop"

Q=$T/peers-coord
mpi_job "$Q" 0
wait_for 300 has_procs peers-coord 4
"$IBSNAP" checkpoint --job peers-coord --no-dump >"$T/ck3" 2>&1 &&
	wait_for 50 all_logs "$Q" "rebuild ok n=4 inc=0" 4 &&
	! grep -q "through PMIx" "$Q/run.out"
ok "without IBSNAP_PMIX=1 the same job exchanges through ibsnapd" $? "$T/ck3" "$Q/run.out"
touch "$Q/stop"

RING=$B/tests/shim/mpi_ring
[[ -x $RING ]]
ok "tests/shim/mpi_ring is built (libopenmpi-dev)" $?
R=$T/ring
mkdir -p "$R"
IBSNAP_PMIX=1 UCX_NET_DEVICES=fake0:1 UCX_IB_GID_INDEX=0 \
	UCX_TLS=rc_verbs,ud_verbs,self timeout -k 5 200 "$IBSNAP" run --fake \
	--job ring -- mpirun --allow-run-as-root --oversubscribe -np 4 \
	--mca pml ucx --mca btl self -x UCX_TLS -x UCX_NET_DEVICES \
	-x UCX_IB_GID_INDEX -x IBSNAP_PMIX "$RING" -n 4000 -r "$R/ready" \
	>"$R/mpi.log" 2>&1 &
RPID=$!
RUN_PIDS+=("$RPID")
wait_for 1200 test -e "$R/ready" && wait_for 600 has_procs ring 4 &&
	"$IBSNAP" checkpoint --job ring --no-dump >"$T/ck4" 2>&1 &&
	"$IBSNAP" checkpoint --job ring --no-dump >>"$T/ck4" 2>&1
ok "mpi_ring under the shim: two checkpoints mid-run" $? "$T/ck4" "$R/mpi.log"
wait "$RPID" && grep -q "iterations in .* checksum .* ok" "$R/mpi.log"
ok "... it ends with the right checksum, exit 0" $? "$R/mpi.log"
[[ $(grep -c "through PMIx: 4 blobs, 0 through ibsnapd" "$R/mpi.log") -eq 16 ]]
ok "... every rank's drain and rebuild exchange went through PMIx" $? "$R/mpi.log"
finish
