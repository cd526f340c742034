#!/bin/bash
# SPDX-License-Identifier: MIT
# The shim on the real backend: Soft-RoCE (rxe0) in the lab guest.  Not part
# of make test yet (issue 5 adds the lab tier); run by hand:
#   ../shared/lab/lab run --rw /var/tmp/x -- $PWD/tests/shim/lab/rxe.sh $PWD/build
# (the build dir must be readable in the guest: the host's / is mounted).
set -u
. "$(dirname "$0")/../lib.sh"

RUN_OPTS=
PAIR_TIMEOUT=${PAIR_TIMEOUT:-180}
G="-d rxe0 -g 1"
X="-d rxe0 -x 1"

out="$LOGDIR/out"
"$IBSNAP" run -- ibv_devices >"$out" 2>&1 && grep -q rxe0 "$out"
ok "ibv_devices lists rxe0 (real backend by default)" $? "$out"
"$IBSNAP" run -- ibv_devinfo -v >"$out" 2>&1 && grep -q PORT_ACTIVE "$out"
ok "ibv_devinfo -v" $? "$out"
for prog in ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong ibv_srq_pingpong; do
	pair "rxe $prog" -p "$prog $G -n 100"
	pair "rxe $prog -e" -p "$prog $G -n 100 -e"
done
pair "rxe ibv_rc_pingpong -s 65536" -p "ibv_rc_pingpong $G -n 100 -s 65536"
for t in send write read atomic; do
	pair "rxe ib_${t}_lat" -p "ib_${t}_lat $X -n 100"
	pair "rxe ib_${t}_bw" -p "ib_${t}_bw $X -n 100"
done
pair "rxe ib_send_lat -c UD" -p "ib_send_lat $X -c UD -n 100"
RUN_ENV="IBSNAP_TEST_REMAP=1"
pair "rxe remap ibv_rc_pingpong" -p "ibv_rc_pingpong $G -n 100"
pair "rxe remap ibv_ud_pingpong" -p "ibv_ud_pingpong $G -n 100"
pair "rxe remap ib_write_bw" -p "ib_write_bw $X -n 100"
RUN_ENV=
API=$(cd "$BUILD" && pwd)/tests/shim/verbs_api
for mode in "" "IBSNAP_TEST_REMAP=1"; do
	env $mode timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run -- "$API" \
		>"$out" 2>&1
	ok "rxe verbs_api ${mode:-(plain)}" $? "$out"
done
finish
