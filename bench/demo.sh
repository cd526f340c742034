#!/bin/bash
# SPDX-License-Identifier: MIT
# The README's first command (make demo): everything on the embedded default,
# the fake HCA, with no RDMA hardware.
#   1. the fake HCA on its own: a program of ours, two processes, RC ping-pong
#      with checksums plus an RDMA WRITE and READ;
#   2. an unmodified ibv_rc_pingpong (ibverbs-utils) under "ibsnap run --fake".
# Checkpointing it mid-run joins this demo when issue 6 lands.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)

"$BUILD/bin/fake_demo"

export IBSNAP_FABRIC
IBSNAP_FABRIC=$(mktemp -d /dev/shm/ibsnap-demo.XXXXXX)
logs=$(mktemp -d)
trap 'rm -rf "$IBSNAP_FABRIC" "$logs"; kill "${srv:-0}" 2>/dev/null || true' EXIT
port=$((20000 + RANDOM % 20000))
echo
echo "ibsnap run --fake -- ibv_rc_pingpong -d fake0 -g 0 -p $port [server, client]"
timeout 60 "$BUILD/bin/ibsnap" run --fake -- \
	ibv_rc_pingpong -d fake0 -g 0 -p "$port" -n 10000 >"$logs/server" 2>&1 &
srv=$!
for _ in $(seq 100); do
	ss -ltnH "sport = :$port" | grep -q . && break
	sleep 0.1
done
timeout 60 "$BUILD/bin/ibsnap" run --fake -- \
	ibv_rc_pingpong -d fake0 -g 0 -p "$port" -n 10000 127.0.0.1 >"$logs/client" 2>&1
wait "$srv"
sed 's/^/  server: /' "$logs/server"
sed 's/^/  client: /' "$logs/client"
echo "demo: OK"
