#!/bin/bash
# SPDX-License-Identifier: MIT
# Run the libFuzzer targets of BUILD/fuzz one after the other, each for
# SECONDS, from the corpus in tests/fuzz/corpus/TARGET (its seeds and the
# regression inputs of past findings, all replayed first); new inputs go to
# a scratch corpus in BUILD/fuzz, never into the repository.
#   tests/fuzz/run.sh BUILD SECONDS [REPORT]
# Prints one line per target: "TARGET: N execs in S s, F findings"; with
# REPORT, appends those lines to it.  Exit status: 0 if no target found
# anything (a crash, a sanitizer report, a leak, a failed check, a timeout).
set -u
cd "$(dirname "$0")/../.."
B=${1:?usage: $0 BUILD SECONDS [REPORT]}
SECS=${2:?usage: $0 BUILD SECONDS [REPORT]}
REPORT=${3:-}
bad=0
for t in fuzz_proto fuzz_image; do
	bin=$B/fuzz/$t
	seeds=tests/fuzz/corpus/${t#fuzz_}
	if [[ ! -x $bin ]]; then
		echo "FAIL: $bin is not built"
		exit 1
	fi
	work=$B/fuzz/work-$t
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts"
	log=$work/log
	# -timeout: a single input slower than 10 s counts as a finding
	nice -n 19 "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
		"$work/corpus" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	found=$(ls "$work/artifacts" | wc -l)
	if [[ $rc -ne 0 && $found -eq 0 ]]; then
		found=1 # it stopped without an artifact: still a finding
	fi
	line="$t: ${execs:-0} execs in $SECS s (${secs:-0}/s), $(ls "$seeds" | wc -l) corpus inputs replayed, $found findings"
	echo "$line"
	[[ -n $REPORT ]] && echo "$line" >>"$REPORT"
	if [[ $found -ne 0 ]]; then
		bad=1
		grep -m1 -A25 -E 'ERROR|SUMMARY|check failed|runtime error' "$log" |
			sed 's/^/    /'
		ls "$work/artifacts" | sed "s|^|    artifact: $work/artifacts/|"
	fi
done
exit $bad
