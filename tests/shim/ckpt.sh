#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoints of a running job through the shim's handlers (drain/, rebuild/)
# with the test's own coordinator (tests/integration/ckpt_stream.c; the
# integration tier runs its default: 40 checkpoints, a new incarnation of
# both nodes every third).  Here: many more, new incarnations every time,
# a delayed wire.  Every message exactly once each time.
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
stream "200 checkpoints, nodes reincarnated every third" \
	CKST_REINC_EVERY=3 -- 200
stream "60 checkpoints, nodes reincarnated every time" \
	CKST_REINC_EVERY=1 -- 60
stream "60 checkpoints, 20 us wire delay" CKST_REINC_EVERY=2 \
	IBSNAP_FAKE_FAULTS=delay_us=20 -- 60
stream "40 checkpoints, IB link (LIDs)" IBSNAP_FAKE_LINK=ib -- 40
finish
