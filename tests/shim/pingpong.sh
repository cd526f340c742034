#!/bin/bash
# SPDX-License-Identifier: MIT
# ibverbs-utils (unmodified Debian binaries) on the fake HCA under ibsnap run.
#   tests/shim/pingpong.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

G="-d fake0 -g 0"
for prog in ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong ibv_srq_pingpong; do
	pair "$prog" -p "$prog $G"
	pair "$prog -e" -p "$prog $G -e"
done
for s in 1 4096 65536; do
	pair "ibv_rc_pingpong -s $s -n 1000" -p "ibv_rc_pingpong $G -s $s -n 1000"
done
pair "ibv_rc_pingpong -e -s 65536" -p "ibv_rc_pingpong $G -e -s 65536"
pair "ibv_ud_pingpong -s 1" -p "ibv_ud_pingpong $G -s 1"
pair "ibv_srq_pingpong -q 4 -s 1" -p "ibv_srq_pingpong $G -q 4 -s 1"
RUN_ENV="IBSNAP_FAKE_LINK=ib" pair "ibv_rc_pingpong (IB link, LIDs)" -p \
	"ibv_rc_pingpong -d fake0"
RUN_ENV="IBSNAP_FAKE_LINK=ib" pair "ibv_ud_pingpong (IB link, LIDs)" -p \
	"ibv_ud_pingpong -d fake0"
finish
