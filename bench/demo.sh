#!/bin/bash
# SPDX-License-Identifier: MIT
# The README's first command (make demo): everything on the embedded default,
# the fake HCA, with no RDMA hardware.
#   1. the fake HCA on its own: a program of ours, two processes, RC ping-pong
#      with checksums plus an RDMA WRITE and READ;
#   2. an unmodified ibv_rc_pingpong (ibverbs-utils), server and client each
#      under "ibsnap run --fake", checkpointed mid-run with "ibsnap
#      checkpoint": where CRIU can run, twice in place with a dump, then a
#      third time with --stop (the job ends) and "ibsnap restart" brings it
#      back from its image to finish; where CRIU cannot (as on this
#      project's hosts) it says so and runs three cycles without a dump.
#   demo.sh [BUILD_DIR]
# make demo-lab runs the same ping-pong in the lab guest, where CRIU works,
# across a reboot (tests/lab/guest.sh, two boots sharing STATE_DIR):
#   demo.sh BUILD_DIR dump STATE_DIR      boot 1: run, checkpoint, --stop
#   demo.sh BUILD_DIR restore STATE_DIR   boot 2: ibsnap restart, finish
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
stage=${2:-all}
IBSNAP=$BUILD/bin/ibsnap
ITERS=5000
export IBSNAP_FABRIC IBSNAP_COORD_SOCK
IBSNAP_FABRIC=/dev/shm/ibsnap-demo.$$
# a 100 us wire: 5000 round trips take a second or more, whatever the host
# (1 ms in the slow lab guest, so that the checkpoints land mid-run)
export IBSNAP_FAKE_FAULTS=delay_us=100

if [[ $stage = all ]]; then
	"$BUILD/bin/fake_demo"
	logs=$(mktemp -d)
	trap 'kill "${srv:-0}" "${cli:-0}" 2>/dev/null || true
	      rm -rf "$IBSNAP_FABRIC" "$logs"' EXIT
else
	logs=$(cd "${3:?demo.sh BUILD dump|restore STATE_DIR}" && pwd)/demo
	IBSNAP_FABRIC=/dev/shm/ibsnap-demo
	IBSNAP_FAKE_FAULTS=delay_us=1000
fi
# a coordinator of the demo's own (ibsnap run starts it; it exits when idle)
IBSNAP_COORD_SOCK=/tmp/ibsnap-demo.$$.sock
job=demo

why_no_criu() {
	if ! command -v criu >/dev/null; then
		echo "criu is not installed"
	elif ! criu check >/dev/null 2>&1; then
		echo "criu check fails on kernel $(uname -r)"
	fi
}

# both ends report every iteration
finished() {
	sed 's/^/  server: /' "$logs/server"
	sed 's/^/  client: /' "$logs/client"
	grep -q "^$ITERS iters" "$logs/server" &&
		grep -q "^$ITERS iters" "$logs/client"
}

restart() {
	echo "ibsnap restart --dir $logs/images"
	(cd "$logs" && timeout 300 "$IBSNAP" restart --dir "$logs/images") |
		sed 's/^/  /'
}

if [[ $stage = restore ]]; then
	restart
	finished
	echo "demo: OK (dumped mid-run, the guest rebooted, restarted from" \
		"the image: all $ITERS iterations done)"
	exit 0
fi

port=$((20000 + RANDOM % 20000))
rm -rf "$logs/images"
mkdir -p "$logs"
# the job's cwd: CRIU mounts a proc there at a dump, and the output files
# must outlive the job to be restored
cd "$logs"
run=("$IBSNAP" run --fake --job "$job" -- ibv_rc_pingpong -d fake0 -g 0
	-n "$ITERS" -p "$port")
echo
echo "${run[*]} [server, then client 127.0.0.1]"
timeout 300 "${run[@]}" </dev/null >"$logs/server" 2>&1 &
srv=$!
for _ in $(seq 100); do
	ss -ltnH "sport = :$port" | grep -q . && break
	sleep 0.1
done
timeout 300 "${run[@]}" 127.0.0.1 </dev/null >"$logs/client" 2>&1 &
cli=$!
for _ in $(seq 200); do
	"$IBSNAP" status --job "$job" 2>/dev/null | grep -q ": 2 processes" &&
		break
	sleep 0.05
done
sleep 0.2

why=$(why_no_criu)
if [[ -n $why ]]; then
	[[ $stage = all ]] || { echo "demo: $why" >&2 && exit 1; }
	echo "CRIU cannot run here ($why): checkpoints without a dump" \
		"(--no-dump), no restart"
	modes=("--no-dump" "--no-dump" "--no-dump")
else
	modes=("--dir $logs/images" "--dir $logs/images"
		"--stop --dir $logs/images")
fi
for m in "${modes[@]}"; do
	echo "ibsnap checkpoint --job $job $m"
	# shellcheck disable=SC2086
	"$IBSNAP" checkpoint --job "$job" $m | sed 's/^/  /'
done
st=0
wait "$cli" || st=$?
wait "$srv" || st=$?
if [[ -n $why ]]; then
	finished
	echo "demo: OK (3 checkpoints mid-run, all $ITERS iterations done)"
	exit 0
fi
# --stop: both trees were killed after the commit
[[ $st = 137 ]] || { echo "demo: the job was not stopped ($st)" >&2 && exit 1; }
echo "the job was stopped after its third checkpoint"
[[ $stage = dump ]] && exit 0
rm -rf "$IBSNAP_FABRIC"
restart
finished
echo "demo: OK (2 checkpoints in place, a third with --stop, restarted from" \
	"the image: all $ITERS iterations done)"
