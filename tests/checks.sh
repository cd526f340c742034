# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# The check protocol every shell test tier speaks (sourced by
# tests/{shim,coord,lab}/lib.sh): one line per check, "ok   NAME" or
# "FAIL NAME (exit RC)" with the tails of its logs, then "P/N checks
# passed"; tests/run-tests.sh and tests/lab/tier.sh count these lines.
# A tier may define ok_more (called after a failure's logs) to add its own
# context; OK_TAIL is how many lines of each log a failure shows.

checks=0
failures=0
OK_TAIL=${OK_TAIL:-25}

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
		[[ -s $log || -p $log ]] && tail -"$OK_TAIL" "$log" | sed 's/^/    /'
	done
	if declare -F ok_more >/dev/null; then
		ok_more
	fi
	return 1
}

# rc CMD...: print CMD's exit status (ok's second argument), whatever it
# is, without tripping set -e; its output is discarded
rc() {
	local s=0
	"$@" >/dev/null 2>&1 || s=$?
	echo "$s"
}

finish() {
	echo "$((checks - failures))/$checks checks passed"
	[[ $failures -eq 0 ]]
}

# proc_tree PID...: these processes and all their descendants, one pid a
# line (tests that check a whole tree ended with its agent)
proc_tree() {
	local p
	for p in "$@"; do
		echo "$p"
		proc_tree $(pgrep -P "$p")
	done
}
