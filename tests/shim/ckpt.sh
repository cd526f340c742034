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
	N=(200 60 60 40)
fi
stream "${N[0]} checkpoints, nodes reincarnated every third" \
	CKST_REINC_EVERY=3 -- "${N[0]}"
stream "${N[1]} checkpoints, nodes reincarnated every time" \
	CKST_REINC_EVERY=1 -- "${N[1]}"
stream "${N[2]} checkpoints, 20 us wire delay" CKST_REINC_EVERY=2 \
	IBSNAP_FAKE_FAULTS=delay_us=20 -- "${N[2]}"
stream "${N[3]} checkpoints, IB link (LIDs)" IBSNAP_FAKE_LINK=ib -- "${N[3]}"
finish
