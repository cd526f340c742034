#!/bin/bash
# SPDX-License-Identifier: MIT
# A short run of the libFuzzer targets (tests/fuzz/): the coordinator's
# wire input and the image directory's manifest and meta files, each from
# its corpus in the repository (seeds and the regression inputs of every
# past finding) and then 5 s of new inputs.  make fuzz runs them longer.
source "$(dirname "$0")/lib.sh"

"$(dirname "$0")/../fuzz/run.sh" "$B" "${IBSNAP_FUZZ_SECS:-5}" >"$T/fuzz" 2>&1
ok "the corpus replays and 5 s of fuzzing per target find nothing" $? "$T/fuzz"
grep -q '^fuzz_proto: [1-9][0-9]* execs' "$T/fuzz" &&
	grep -q '^fuzz_image: [1-9][0-9]* execs' "$T/fuzz"
ok "both targets ran inputs" $? "$T/fuzz"
cat "$T/fuzz"
finish
