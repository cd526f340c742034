#!/bin/bash
# SPDX-License-Identifier: MIT
# Translations that depend on the sending peer (ud_peers.c): one UD receiver,
# two senders on other simulated nodes.  With IBSNAP_TEST_REMAP=node every
# node offsets its IDs differently (the two senders' QPNs by 0x1000 * k with
# different k), so src_qp comes out right for both only when it is
# translated with each sender's own table (a fabric-wide table would get at
# most one right; test_virt_ids checks the tables themselves); the GRH in
# the receive buffer must carry virtual GIDs.  tests/shim/peers.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

UP=$(cd "$BUILD" && pwd)/tests/shim/ud_peers
N=20

# trio NAME [ex]: receiver on node r, senders on nodes a and b
trio() {
	local name=$1 ex=${2:-} dir rc=0 pids=() p
	dir=$(mktemp -d)
	env ${RUN_ENV:-} IBSNAP_FAKE_NODE=r timeout -k 5 60 "$IBSNAP" run --fake -- \
		"$UP" recv "$dir" 2 $N $ex >"$LOGDIR/r.log" 2>&1 &
	local rpid=$!
	for p in a b; do
		env ${RUN_ENV:-} IBSNAP_FAKE_NODE=$p timeout -k 5 60 \
			"$IBSNAP" run --fake -- "$UP" send "$dir" $p $N \
			>"$LOGDIR/$p.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=$?
	done
	wait $rpid || rc=$?
	rm -rf "$dir"
	ok "$name" $rc "$LOGDIR/r.log" "$LOGDIR/a.log" "$LOGDIR/b.log"
}

trio "ud from two nodes (identity)"
RUN_ENV="IBSNAP_TEST_REMAP=1" trio "ud from two nodes, remap"
RUN_ENV="IBSNAP_TEST_REMAP=node" trio "ud from two nodes, remap per node"
RUN_ENV="IBSNAP_TEST_REMAP=node" trio "ud from two nodes, remap per node, cq_ex" ex
RUN_ENV="IBSNAP_TEST_REMAP=node IBSNAP_FAKE_LINK=ib" \
	trio "ud from two nodes, remap per node, IB link (slid)"
RUN_ENV="IBSNAP_TEST_REMAP=node IBSNAP_FAKE_LINK=ib" \
	trio "ud from two nodes, remap per node, IB link, cq_ex" ex
finish
