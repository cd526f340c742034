# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Helpers for the lab tier's guest scripts (sourced): one line per check,
# "ok   NAME" or "FAIL NAME (why)", as tests/shim/lib.sh prints them, which
# tests/lab/tier.sh counts.

. "$(dirname "${BASH_SOURCE[0]}")/../checks.sh"

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

