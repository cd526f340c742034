#!/bin/bash
# SPDX-License-Identifier: MIT
# rxe conformance of the shim (in the guest): unmodified ibverbs-utils and
# perftest on rxe0 under "ibsnap run" (real backend), also in remap mode
# (every ID translated), and the shim's own API test.  Both ends of each
# pair use rxe0; they meet over TCP on 127.0.0.1.
#   tests/lab/conformance.sh BUILD_DIR
set -u
. "$(dirname "$0")/../shim/lib.sh"

RUN_OPTS=
# a pair takes 2-10 s in the guest (more when the host is loaded); a
# broken one fails by this limit
PAIR_TIMEOUT=${PAIR_TIMEOUT:-120}
G="-d rxe0 -g 1"
X="-d rxe0 -x 1"

out="$LOGDIR/out"
"$IBSNAP" run -- ibv_devices >"$out" 2>&1 && grep -q rxe0 "$out"
ok "ibv_devices lists rxe0 (real backend by default)" $? "$out"
ibv_devinfo -v >"$LOGDIR/native" 2>&1
"$IBSNAP" run -- ibv_devinfo -v >"$out" 2>&1 &&
	grep -q PORT_ACTIVE "$out" && diff "$LOGDIR/native" "$out" >"$LOGDIR/d"
ok "ibv_devinfo -v under the shim = natively" $? "$LOGDIR/d" "$out"
for prog in ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong ibv_srq_pingpong; do
	pair "rxe $prog" -p "$prog $G -n 100"
	pair "rxe $prog -e" -p "$prog $G -n 100 -e"
done
pair "rxe ibv_rc_pingpong -s 1" -p "ibv_rc_pingpong $G -n 100 -s 1"
pair "rxe ibv_rc_pingpong -s 65536" -p "ibv_rc_pingpong $G -n 100 -s 65536"
for t in send write read atomic; do
	pair_ok "rxe ib_${t}_lat" -p "ib_${t}_lat $X -n 100"
	pair_ok "rxe ib_${t}_bw" -p "ib_${t}_bw $X -n 100"
done
pair_ok "rxe ib_send_lat -c UD" -p "ib_send_lat $X -c UD -n 100"
pair_ok "rxe ib_send_bw -c UC" -p "ib_send_bw $X -c UC -n 100"
pair_ok "rxe ib_write_lat -c UC" -p "ib_write_lat $X -c UC -n 100"
pair_ok "rxe ib_send_lat -e" -p "ib_send_lat $X -e -n 100"
pair_ok "rxe ib_write_bw -q 8" -p "ib_write_bw $X -q 8 -n 100"
# the largest size of perftest's -a, 8 MiB (a multi-packet READ): the
# sweep of every size took 23 s in the guest, this 13-16 s (same boot), the
# rest perftest's own (at each size it reads /proc/cpuinfo and samples the
# clock); the shim forwards each size's posts alike, and smaller sizes run
# above
pair_ok "rxe ib_read_lat -s 8 MiB" -p "ib_read_lat $X -s 8388608 -n 5"
RUN_ENV="IBSNAP_TEST_REMAP=1"
pair "rxe remap ibv_rc_pingpong" -p "ibv_rc_pingpong $G -n 100"
pair "rxe remap ibv_ud_pingpong" -p "ibv_ud_pingpong $G -n 100"
pair "rxe remap ibv_srq_pingpong" -p "ibv_srq_pingpong $G -n 100"
pair_ok "rxe remap ib_write_bw" -p "ib_write_bw $X -n 100"
pair_ok "rxe remap ib_read_lat" -p "ib_read_lat $X -n 100"
pair_ok "rxe remap ib_atomic_lat" -p "ib_atomic_lat $X -n 100"
pair_ok "rxe remap ib_send_lat -c UD" -p "ib_send_lat $X -c UD -n 100"
RUN_ENV=
API=$(cd "$BUILD" && pwd)/tests/shim/verbs_api
for mode in "" "IBSNAP_TEST_REMAP=1"; do
	env $mode timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run -- "$API" \
		>"$out" 2>&1
	ok "rxe verbs_api ${mode:-(plain)}" $? "$out"
done
finish
