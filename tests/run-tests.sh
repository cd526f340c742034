#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every host test tier of one or more builds and print a grand total.
#   tests/run-tests.sh BUILD_DIR...
# Unit tests are cmocka binaries (their own summaries are printed); each
# integration test is one program whose exit status is its verdict.  Every
# test gets a fabric directory of its own.  The last line is
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
TIMEOUT=${IBSNAP_TEST_TIMEOUT:-300}

run_one() { # label binary [args...]
	local label=$1 bin=$2 out fab rc
	shift 2
	fab=$(mktemp -d /dev/shm/ibsnap-test.XXXXXX)
	out=$(mktemp)
	IBSNAP_FABRIC=$fab timeout -k 5 "$TIMEOUT" "$bin" "$@" >"$out" 2>&1
	rc=$?
	rm -rf "$fab"
	if [[ $bin == */unit/* ]]; then
		# cmocka: count its test cases, show its summary lines
		local p f
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
		p=${p:-0}
		f=${f:-0}
		if [[ $rc -ne 0 && $f -eq 0 ]]; then
			f=1 # crashed or timed out before cmocka's summary
		fi
		passed=$((passed + p))
		failed=$((failed + f))
		if [[ $f -ne 0 ]]; then
			cat "$out"
			failures+=("$label (exit $rc)")
		else
			grep -E '^\[==========\]|^\[  PASSED  \]' "$out" | tail -2 |
				sed "s|^|$label: |"
		fi
	else
		if [[ $rc -eq 0 ]]; then
			passed=$((passed + 1))
			echo "PASS $label"
		else
			failed=$((failed + 1))
			failures+=("$label (exit $rc)")
			echo "FAIL $label (exit $rc)"
			tail -40 "$out" | sed 's/^/    /'
		fi
	fi
	rm -f "$out"
}

for build in "$@"; do
	tag=$(basename "$build")
	for t in "$build"/tests/unit/test_*; do
		[[ -x $t ]] || continue
		run_one "[$tag] unit/$(basename "$t")" "$t"
	done
	for t in "$build"/tests/integration/*; do
		[[ -x $t ]] || continue
		run_one "[$tag] integration/$(basename "$t")" "$t"
	done
	# --- shim tier (issue 4): tests/shim/*.sh BUILD_DIR, exit status = verdict
	for t in tests/shim/*.sh; do
		[[ -x $t ]] || continue
		run_one "[$tag] shim/$(basename "$t")" "$t" "$build"
	done
	# --- end of shim tier
done

if [[ $((passed + failed)) -eq 0 ]]; then
	echo "no test found in: $*" >&2
	failed=1
fi
for f in "${failures[@]+"${failures[@]}"}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
