#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every host test tier of one or more builds and print a grand total.
#   tests/run-tests.sh [--lab LAB_BUILD_DIR] BUILD_DIR...
# --lab: then the lab tier (tests/lab/tier.sh, a QEMU guest) on that build;
# its checks count in the total.
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

# --- coordinator (issue 6): ibsnap run joins (and starts) the ibsnapd of
# IBSNAP_COORD_SOCK; give this run a private one, removed at the end
if [[ -z ${IBSNAP_COORD_SOCK:-} ]]; then
	IBSNAP_COORD_SOCK=$(mktemp -d /tmp/ibsnap-run.XXXXXX)/ibsnapd.sock
	export IBSNAP_COORD_SOCK
	trap 'kill $(cat "$IBSNAP_COORD_SOCK.lock" 2>/dev/null) 2>/dev/null
	      rm -rf "${IBSNAP_COORD_SOCK%/*}"' EXIT
fi
# --- end of coordinator setup
# --- lab tier (issue 5): --lab BUILD
lab=
if [[ ${1:-} == --lab ]]; then
	lab=${2:?--lab needs a build dir}
	shift 2
fi
# --- end of lab tier

run_one() { # label binary [args...]
	local label=$1 bin=$2 out fab rc t0=$SECONDS
	shift 2
	fab=$(mktemp -d /dev/shm/ibsnap-test.XXXXXX)
	out=$(mktemp)
	IBSNAP_FABRIC=$fab timeout -k 5 "$TIMEOUT" "$bin" "$@" >"$out" 2>&1
	rc=$?
	rm -rf "$fab"
	local took="($((SECONDS - t0)) s)"
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
			echo "$label: $took"
		fi
	else
		if [[ $rc -eq 0 ]]; then
			passed=$((passed + 1))
			echo "PASS $label $took"
		else
			failed=$((failed + 1))
			failures+=("$label (exit $rc)")
			echo "FAIL $label (exit $rc) $took"
			tail -40 "$out" | sed 's/^/    /'
		fi
	fi
	rm -f "$out"
}

# --- short forms: a sanitized build (its libibsnap.so needs libasan) run
# beside a normal one gets IBSNAP_TEST_SHORT=1, and the long suites run a
# short form there (docs/testing.md, "What each build runs"): their long
# runs, which prove sizes and timing, are made on the normal build; the
# sanitized pass keeps every shim path they drive.  Alone, a sanitized
# build runs them whole; IBSNAP_TEST_SHORT=0 or 1 overrides.
sanitized() { readelf -d "$1/lib/libibsnap.so" 2>/dev/null | grep -q 'NEEDED.*libasan'; }
have_plain=
for build in "$@"; do
	sanitized "$build" || have_plain=1
done
user_short=${IBSNAP_TEST_SHORT:-}
# --- end of short forms
for build in "$@"; do
	tag=$(basename "$build")
	if [[ -n $user_short ]]; then
		export IBSNAP_TEST_SHORT=$user_short
	elif [[ -n $have_plain ]] && sanitized "$build"; then
		export IBSNAP_TEST_SHORT=1
		echo "[$tag] sanitized, beside a normal build: short forms (IBSNAP_TEST_SHORT=1)"
	else
		export IBSNAP_TEST_SHORT=0
	fi
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
	# --- coordinator tier (issue 6): tests/coord/*.sh BUILD_DIR
	for t in tests/coord/*.sh; do
		[[ -x $t ]] || continue
		run_one "[$tag] coord/$(basename "$t")" "$t" "$build"
	done
	# --- end of coordinator tier
done
unset IBSNAP_TEST_SHORT

# --- lab tier (issue 5): after the host tiers; its checks count
if [[ -n $lab ]]; then
	out=$(mktemp)
	tests/lab/tier.sh "$lab" 2>&1 | tee "$out"
	counts=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out" | tail -1)
	if [[ -z $counts ]]; then
		counts="0 1"
		failures+=("[lab] tests/lab/tier.sh printed no total")
	fi
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
	while read -r line; do
		failures+=("${line#FAIL }")
	done < <(grep '^FAIL \[lab\]' "$out")
	rm -f "$out"
fi
# --- end of lab tier

if [[ $((passed + failed)) -eq 0 ]]; then
	echo "no test found in: $*" >&2
	failed=1
fi
for f in "${failures[@]+"${failures[@]}"}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
