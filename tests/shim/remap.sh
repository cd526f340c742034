#!/bin/bash
# SPDX-License-Identifier: MIT
# IBSNAP_TEST_REMAP=1 on both ends: every ID the shim hands out is offset,
# so these pass only if every translation (lkey, rkey, QPN, LID, GID, AH,
# WC fields) is done.  tests/shim/remap.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

G="-d fake0 -g 0"
X="-d fake0 -x 0"
RUN_ENV="IBSNAP_TEST_REMAP=1"
for prog in ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong ibv_srq_pingpong; do
	pair "remap $prog" -p "$prog $G"
done
pair "remap ibv_rc_pingpong -e" -p "ibv_rc_pingpong $G -e"
for t in send write read atomic; do
	pair "remap ib_${t}_bw" -p "ib_${t}_bw $X"
done
pair "remap ib_send_lat -c UD" -p "ib_send_lat $X -c UD"
pair "remap ib_write_lat" -p "ib_write_lat $X"
RUN_ENV="IBSNAP_TEST_REMAP=1 IBSNAP_FAKE_LINK=ib"
pair "remap ibv_rc_pingpong (IB link, LIDs)" -p "ibv_rc_pingpong -d fake0"
pair "remap ibv_ud_pingpong (IB link, LIDs)" -p "ibv_ud_pingpong -d fake0"
pair "remap ib_send_bw -c UD (IB link)" -p "ib_send_bw -d fake0 -c UD"

# the shim really remaps: QPNs handed out are offset by 0x1000
RUN_ENV="IBSNAP_TEST_REMAP=1"
pair "remap visible" -p "ibv_rc_pingpong $G -n 1"
grep -q "local address:.*QPN 0x001" "$LOGDIR/cli.log"
ok "remap: QPNs handed out are virtual" $? "$LOGDIR/cli.log"

# negative control: one end remapped, the other not, cannot connect
RUN_ENV= SERVER_ENV="IBSNAP_TEST_REMAP=1" EXPECT_FAIL=1 PAIR_TIMEOUT=10 \
	pair "remap on one end only fails" -p "ibv_rc_pingpong $G"
finish
