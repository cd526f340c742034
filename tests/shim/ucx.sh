#!/bin/bash
# SPDX-License-Identifier: MIT
# UCX over the shim (ucx-bridge/, docs/ucx.md): ucx_info -d lists the fake
# HCA's device with rc_verbs and ud_verbs, and ucx_perftest (tag, put, get,
# am; UCP and UCT) runs between two processes on rc_verbs and on ud_verbs,
# also with remapped IDs.
#   tests/shim/ucx.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

if ! command -v ucx_info >/dev/null; then
	echo "FAIL: ucx-utils is not installed (make deps installs it)"
	exit 1
fi
export UCX_NET_DEVICES=fake0:1 UCX_IB_GID_INDEX=0

# ucx_info -d must show fake0 with both verbs transports
devinfo() { # NAME ENV...
	local name=$1
	shift
	env "$@" timeout -k 5 60 "$IBSNAP" run --fake -- ucx_info -d \
		>"$LOGDIR/info.log" 2>&1
	awk '/Memory domain: fake0/ { md = 1 } md && /Transport: rc_verbs/ { rc = 1 }
	     md && /Transport: ud_verbs/ { ud = 1 }
	     END { exit !(rc && ud) }' "$LOGDIR/info.log"
	ok "$name" $? "$LOGDIR/info.log"
}
devinfo "ucx_info -d: fake0 with rc_verbs and ud_verbs"
devinfo "ucx_info -d (IB link): fake0 with rc_verbs and ud_verbs" \
	IBSNAP_FAKE_LINK=ib

# ucx_perftest between two processes (bounded iteration counts); the
# client's endpoint must use TL: tag(), rma(), am(), rma_am() ... lanes
perftest() { # NAME TL TLS [PERFTEST ARGS]
	local name=$1 tl=$2 tls=$3 before=$failures
	shift 3
	local args=${*:--t tag_lat -n 2000 -s 64}
	RUN_ENV="${RUN_ENV:-} UCX_TLS=$tls UCX_LOG_LEVEL=info" \
		pair "$name" -p "ucx_perftest $args"
	[[ $failures -eq $before ]] || return
	grep -q "ep_cfg\[0\]: .*($tl/fake0:1)" "$LOGDIR/cli.log"
	ok "$name: the endpoint uses $tl" $? "$LOGDIR/cli.log"
}
RC=rc_verbs,ud_verbs,self
UD=ud_verbs,self
perftest "ucx_perftest tag_lat over rc_verbs" rc_verbs $RC
perftest "ucx_perftest tag_lat over ud_verbs" ud_verbs $UD
RUN_ENV="IBSNAP_TEST_REMAP=1" \
	perftest "ucx_perftest tag_lat over rc_verbs, remapped IDs" rc_verbs $RC
RUN_ENV="IBSNAP_FAKE_LINK=ib" \
	perftest "ucx_perftest tag_lat over rc_verbs, IB link" rc_verbs $RC
# UCP bandwidth, put (RDMA WRITE on rc_verbs, emulated over AM on ud_verbs)
# and active messages over each transport
for t in tag_bw ucp_put_lat ucp_put_bw ucp_am_lat ucp_am_bw; do
	perftest "ucx_perftest $t over rc_verbs" rc_verbs $RC -t $t -n 2000 -s 64
	perftest "ucx_perftest $t over ud_verbs" ud_verbs $UD -t $t -n 2000 -s 64
done
# rendezvous (RDMA READ of the sender's buffer: rcache registrations), get
# and remapped IDs under the one-sided ops; UCT's own AM and put
perftest "ucx_perftest tag_bw 1 MiB (rendezvous) over rc_verbs" rc_verbs $RC \
	-t tag_bw -n 50 -s 1048576
perftest "ucx_perftest tag_bw 64 KiB over ud_verbs" ud_verbs $UD \
	-t tag_bw -n 100 -s 65536
perftest "ucx_perftest ucp_get over rc_verbs" rc_verbs $RC -t ucp_get -n 1000 -s 4096
RUN_ENV="IBSNAP_TEST_REMAP=1" \
	perftest "ucx_perftest ucp_put_bw over rc_verbs, remapped IDs" rc_verbs \
	$RC -t ucp_put_bw -n 2000 -s 4096
for t in rc_verbs:am_lat rc_verbs:put_lat rc_verbs:am_bw ud_verbs:am_lat \
	ud_verbs:am_bw; do
	RUN_ENV="UCX_TLS=${t%:*}" pair "ucx_perftest ${t#*:} (UCT) over ${t%:*}" \
		-p "ucx_perftest -t ${t#*:} -x ${t%:*} -d fake0:1 -n 1000"
done
finish
