#!/bin/bash
# SPDX-License-Identifier: MIT
# The README's first command (make demo): everything on the embedded default,
# the fake HCA, with no RDMA hardware.
#   1. the fake HCA on its own: a program of ours, two processes, RC ping-pong
#      with checksums plus an RDMA WRITE and READ;
#   2. an unmodified ibv_rc_pingpong (ibverbs-utils), server and client each
#      under "ibsnap run --fake", checkpointed three times mid-run with
#      "ibsnap checkpoint" (CRIU dumps the job where CRIU can run; elsewhere,
#      as on this project's hosts, the cycle runs without a dump).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
IBSNAP=$BUILD/bin/ibsnap

"$BUILD/bin/fake_demo"

export IBSNAP_FABRIC IBSNAP_COORD_SOCK
IBSNAP_FABRIC=$(mktemp -d /dev/shm/ibsnap-demo.XXXXXX)
logs=$(mktemp -d)
# a coordinator of the demo's own (ibsnap run starts it; it exits when idle)
IBSNAP_COORD_SOCK=$logs/ibsnapd.sock
trap 'kill "${srv:-0}" "${cli:-0}" 2>/dev/null || true
      rm -rf "$IBSNAP_FABRIC" "$logs"' EXIT
port=$((20000 + RANDOM % 20000))
job=demo$$
# a 100 us wire: 5000 round trips take a second or more, whatever the host
export IBSNAP_FAKE_FAULTS=delay_us=100
run=("$IBSNAP" run --fake --job "$job" -- ibv_rc_pingpong -d fake0 -g 0
	-n 5000 -p "$port")
echo
echo "${run[*]} [server, then client 127.0.0.1]"
timeout 300 "${run[@]}" >"$logs/server" 2>&1 &
srv=$!
for _ in $(seq 100); do
	ss -ltnH "sport = :$port" | grep -q . && break
	sleep 0.1
done
timeout 300 "${run[@]}" 127.0.0.1 >"$logs/client" 2>&1 &
cli=$!
for _ in $(seq 200); do
	"$IBSNAP" status --job "$job" 2>/dev/null | grep -q ": 2 processes" &&
		break
	sleep 0.05
done
sleep 0.2

if ! command -v criu >/dev/null; then
	why="criu is not installed"
elif ! criu check >/dev/null 2>&1; then
	why="criu check fails on kernel $(uname -r)"
fi
if [[ -n ${why:-} ]]; then
	echo "CRIU cannot run here ($why): checkpoints without a dump (--no-dump)"
	mode=(--no-dump)
else
	mode=(--dir "$logs/images")
fi
for i in 1 2 3; do
	echo "ibsnap checkpoint --job $job ${mode[*]}"
	"$IBSNAP" checkpoint --job "$job" "${mode[@]}" | sed 's/^/  /'
done
wait "$cli"
wait "$srv"
sed 's/^/  server: /' "$logs/server"
sed 's/^/  client: /' "$logs/client"
grep -q "^5000 iters" "$logs/server"
grep -q "^5000 iters" "$logs/client"
echo "demo: OK (3 checkpoints mid-run, all 5000 iterations done)"
