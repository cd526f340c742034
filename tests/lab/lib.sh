# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Helpers for the lab tier's guest scripts (sourced): one line per check,
# "ok   NAME" or "FAIL NAME (why)", as tests/shim/lib.sh prints them, which
# tests/lab/tier.sh counts.

checks=0
failures=0

# ok NAME RC [LOG...]: count a check; show the logs' tails on failure.
ok() {
	local name=$1 rc=$2 log
	shift 2
	checks=$((checks + 1))
	if [[ $rc -eq 0 ]]; then
		echo "ok   $name"
		return 0
	fi
	failures=$((failures + 1))
	echo "FAIL $name (exit $rc)"
	for log in "$@"; do
		[[ -s $log ]] && tail -25 "$log" | sed 's/^/    /'
	done
	return 1
}

# rc CMD...: print CMD's exit status (ok's second argument), whatever it
# is, without tripping set -e; its output is discarded
rc() {
	local s=0
	"$@" >/dev/null 2>&1 || s=$?
	echo "$s"
}

# wait_for SECONDS CMD...: until CMD succeeds (polled every 0.2 s)
wait_for() {
	local i t=$1
	shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# not CMD...: succeed when CMD fails
not() {
	! "$@"
}

finish() {
	echo "$((checks - failures))/$checks checks passed"
	[[ $failures -eq 0 ]]
}
