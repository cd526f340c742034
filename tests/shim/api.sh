#!/bin/bash
# SPDX-License-Identifier: MIT
# The shim's verbs API (tests/shim/verbs_api.c) under ibsnap run --fake,
# normally, in remap mode, and on an InfiniBand link (LIDs).
#   tests/shim/api.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

API=$(cd "$BUILD" && pwd)/tests/shim/verbs_api
for mode in "" "IBSNAP_TEST_REMAP=1" "IBSNAP_FAKE_LINK=ib" \
	"IBSNAP_FAKE_LINK=ib IBSNAP_TEST_REMAP=1"; do
	# our own program: leaks (under ASan) are the shim's
	env ASAN_OPTIONS=detect_leaks=1 $mode \
		timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake -- "$API" \
		>"$LOGDIR/api.log" 2>&1
	ok "verbs_api ${mode:-(plain)}" $? "$LOGDIR/api.log"
	grep -E '^\[  (FAILED|ERROR)|^\[  PASSED' "$LOGDIR/api.log" | sed 's/^/    /'
done
finish
