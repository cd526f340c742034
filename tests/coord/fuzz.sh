#!/bin/bash
# SPDX-License-Identifier: MIT
# A short run of the libFuzzer targets (tests/fuzz/): the coordinator's
# wire input and the image directory's manifest and meta files, each from
# its corpus in the repository (seeds and the regression inputs of every
# past finding) and then 5 s of new inputs.  make fuzz runs them longer.
# The targets are built the same (clang, libFuzzer, ASan+UBSan) in every
# build: the short form (IBSNAP_TEST_SHORT=1, the sanitized build run
# beside a normal one, tests/run-tests.sh) replays the corpus and fuzzes
# 1 s; the 5 s run is the normal build's.
source "$(dirname "$0")/lib.sh"

secs=${IBSNAP_FUZZ_SECS:-5}
if [[ ${IBSNAP_TEST_SHORT:-0} = 1 && -z ${IBSNAP_FUZZ_SECS:-} ]]; then
	secs=1
	echo "short form (IBSNAP_TEST_SHORT=1): 1 s per target, the 5 s run" \
		"is the normal build's (the same binaries)"
fi
"$(dirname "$0")/../fuzz/run.sh" "$B" "$secs" >"$T/fuzz" 2>&1
ok "the corpus replays and $secs s of fuzzing per target find nothing" $? "$T/fuzz"
grep -q '^fuzz_proto: [1-9][0-9]* execs' "$T/fuzz" &&
	grep -q '^fuzz_image: [1-9][0-9]* execs' "$T/fuzz"
ok "both targets ran inputs" $? "$T/fuzz"
cat "$T/fuzz"
finish
