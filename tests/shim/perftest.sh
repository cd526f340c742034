#!/bin/bash
# SPDX-License-Identifier: MIT
# perftest 4.5 (unmodified Debian binaries) on the fake HCA under ibsnap run.
#   tests/shim/perftest.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

X="-d fake0 -x 0"
for t in send write read atomic; do
	pair_ok "ib_${t}_lat" -p "ib_${t}_lat $X"
	pair_ok "ib_${t}_bw" -p "ib_${t}_bw $X"
done
pair_ok "ib_send_lat -c UC" -p "ib_send_lat $X -c UC"
pair_ok "ib_send_lat -c UD" -p "ib_send_lat $X -c UD"
pair_ok "ib_send_bw -c UD" -p "ib_send_bw $X -c UD"
pair_ok "ib_write_bw -c UC" -p "ib_write_bw $X -c UC"
pair_ok "ib_send_bw -q 8" -p "ib_send_bw $X -q 8"
pair_ok "ib_write_bw -q 8" -p "ib_write_bw $X -q 8"
pair_ok "ib_send_lat -e" -p "ib_send_lat $X -e"
pair_ok "ib_send_bw -e" -p "ib_send_bw $X -e"
# every size up to 8 MiB: ~20 s, most of it perftest's own (it reads
# /proc/cpuinfo and samples the clock at each size).  The short form
# (IBSNAP_TEST_SHORT=1: a sanitized build beside a normal one,
# tests/run-tests.sh) runs the largest size only, the same shim code; the
# sweeps run on the normal build.
if [[ ${IBSNAP_TEST_SHORT:-0} = 1 ]]; then
	echo "short form (IBSNAP_TEST_SHORT=1): 8 MiB only, the -a sweeps" \
		"left to the normal build"
	pair_ok "ib_write_lat -s 8 MiB" -p "ib_write_lat $X -s 8388608 -n 20"
	pair_ok "ib_read_bw -s 8 MiB" -p "ib_read_bw $X -s 8388608 -n 20"
else
	pair_ok "ib_write_lat -a" -p "ib_write_lat $X -a -n 100"
	pair_ok "ib_read_bw -a" -p "ib_read_bw $X -a -n 100"
fi
finish
