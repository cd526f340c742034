#!/bin/bash
# SPDX-License-Identifier: MIT
# UCX over the shim (ucx-bridge/, docs/ucx.md): ucx_info -d lists the fake
# HCA's device with rc_verbs and ud_verbs, and ucx_perftest tag_lat runs
# between two processes on rc_verbs and on ud_verbs, also with remapped IDs.
#   tests/shim/ucx.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

if ! command -v ucx_info >/dev/null; then
	echo "skipped: ucx-utils is not installed"
	exit 0
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

# tag_lat between two processes; the client's endpoint must use TL
perftest() { # NAME TL
	local name=$1 tl=$2 before=$failures
	RUN_ENV="${RUN_ENV:-} UCX_TLS=$3 UCX_LOG_LEVEL=info" \
		pair "$name" -p "ucx_perftest -t tag_lat -n 2000 -s 64"
	[[ $failures -eq $before ]] || return
	grep -q "tag($tl/fake0:1)" "$LOGDIR/cli.log"
	ok "$name: the endpoint uses $tl" $? "$LOGDIR/cli.log"
}
perftest "ucx_perftest tag_lat over rc_verbs" rc_verbs rc_verbs,ud_verbs,self
perftest "ucx_perftest tag_lat over ud_verbs" ud_verbs ud_verbs,self
RUN_ENV="IBSNAP_TEST_REMAP=1" \
	perftest "ucx_perftest tag_lat over rc_verbs, remapped IDs" rc_verbs \
	rc_verbs,ud_verbs,self
RUN_ENV="IBSNAP_FAKE_LINK=ib" \
	perftest "ucx_perftest tag_lat over rc_verbs, IB link" rc_verbs \
	rc_verbs,ud_verbs,self
finish
