# SPDX-License-Identifier: MIT
# Helpers for tests/coord/*.sh (sourced).  $1 of the script: the build dir.
# Every script gets a private coordinator socket (so its own implicit
# ibsnapd), a scratch directory, and checks counted like tests/shim's.
# Waits poll for a condition with a bound; nothing asserts on time.

BUILD=${1:?usage: $0 BUILD_DIR}
B=$(cd "$BUILD" && pwd)
IBSNAP=$B/bin/ibsnap
PEER=$B/tests/coord/coord_peer
for f in "$IBSNAP" "$B/bin/ibsnapd" "$PEER"; do
	[[ -x $f ]] || { echo "FAIL: $f is not built"; exit 1; }
done
FAKE_CRIU=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fake-criu
T=$(mktemp -d /tmp/ibsnap-coord.XXXXXX)
export IBSNAP_COORD_SOCK=$T/ibsnapd.sock
unset IBSNAP_COORD IBSNAP_JOB IBSNAP_TOKEN IBSNAP_AGENT IBSNAP_CRIU
# jobs in their own PID namespace, also in sanitized builds
export IBSNAP_PIDNS=1
# LeakSanitizer reads /proc/<getpid()>, which is another process inside a
# PID namespace (the job sees the host's /proc): leaks are checked in
# join.sh, whose jobs run with --no-pidns
export ASAN_OPTIONS=detect_leaks=0
HOST=$(hostname)
RUN_PIDS=()

cleanup() {
	local p
	for p in "${RUN_PIDS[@]+"${RUN_PIDS[@]}"}"; do
		kill "$p" 2>/dev/null
	done
	for d in "$T"/peers*; do
		[[ -d $d ]] && touch "$d/stop" "$d/go"
	done
	wait 2>/dev/null
	[[ -f $IBSNAP_COORD_SOCK.lock ]] &&
		kill "$(cat "$IBSNAP_COORD_SOCK.lock")" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "${BASH_SOURCE[0]}")/../checks.sh" # ok, rc, finish
# a failure shows the daemon's log too
ok_more() {
	[[ -f $T/ibsnapd.log ]] && tail -15 "$T/ibsnapd.log" | sed 's/^/    d: /'
	return 0
}

# wait_for TRIES CMD...: run CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# start_job PEERDIR N [ibsnap run options...]: N peers under one ibsnap run.
start_job() {
	local dir=$1 n=$2
	shift 2
	mkdir -p "$dir"
	PEER_DIR=$dir "$IBSNAP" run --no-preload "$@" -- "$PEER" --spawn "$n" \
		>"$dir/run.out" 2>&1 &
	JOB_PID=$!
	RUN_PIDS+=("$JOB_PID")
}

# procs JOB: how many processes ibsnapd lists for JOB.
procs() {
	"$IBSNAP" status --json --job "$1" 2>/dev/null | grep -o '"rank"' | wc -l
}

has_procs() { [[ $(procs "$1") -eq $2 ]]; }

# logs_with DIR PATTERN: how many peer logs of DIR match PATTERN.
logs_with() {
	grep -l -- "$2" "$1"/peer-*.log 2>/dev/null | wc -l
}

all_logs() { [[ $(logs_with "$1" "$2") -eq $3 ]]; }

# phases DIR: each peer's events (no "-enter", rank or exit lines), one
# line per peer, sorted and counted.
phases() {
	local f
	for f in "$1"/peer-*.log; do
		grep -v -e '-enter$' -e '^rank' -e '^exit' "$f" | tr '\n' ' '
		echo
	done | sort | uniq -c
}

daemon_pid() { cat "$IBSNAP_COORD_SOCK.lock" 2>/dev/null; }

# stop_job DIR: end the peers; the exit status of their ibsnap run.
stop_job() {
	touch "$1/stop"
	wait "$JOB_PID"
}
