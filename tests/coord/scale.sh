#!/bin/bash
# SPDX-License-Identifier: MIT
# The coordinator's exchange at a small scale, checked map by map (issue 9;
# make bench-scale runs the same generator at 32,768 ranks, docs/perf.md):
# bench/coord_load drives 1,024 simulated ranks x 8 QPs x 4 MRs through a
# whole checkpoint (--no-dump) of a real ibsnapd, every byte of every peer
# map compared with what its rank put:
#   one connection per rank, plain PUT and ALL (what the shim does);
#   8 connections of 128 ranks (host agents), keyed PUTK and ALL;
#   the same with the sparse exchange (FENCED, GET of the peers, PART),
#   ring and random peers;
# and a key put twice fails the checkpoint, a GET before the put and a
# PUTK whose record count lies are refused (XFAIL), and the daemon goes on.
source "$(dirname "$0")/lib.sh"

LOAD=$B/bin/coord_load
[[ -x $LOAD ]] || { echo "FAIL: $LOAD is not built"; exit 1; }
"$B/bin/ibsnapd" -f --sock "$IBSNAP_COORD_SOCK" --log "$T/ibsnapd.log" &
RUN_PIDS+=("$!")
DPID=$!
wait_for 100 test -S "$IBSNAP_COORD_SOCK"
ok "ibsnapd listens" $?

# load NAME EXPECTED_MAPS ARGS...: one run; its result line must say ok=1
# and that EXPECTED_MAPS maps were received and checked
load() {
	local name=$1 maps=$2
	shift 2
	"$LOAD" --coord "unix:$IBSNAP_COORD_SOCK" --daemon-pid "$DPID" \
		--job "$name" --check -n 1024 -q 8 -m 4 "$@" >"$T/$name" 2>&1 &&
		grep -q " ok=1 .* maps_checked=$maps " "$T/$name"
}

# every rank gets every rank's map: 1024 x 1024
load flat 1048576 -r 1 --mode all
ok "1,024 connections, PUT/ALL: every map to every rank, intact" $? "$T/flat"
# each of the 8 hosts gets all 1,024 once
load hostall 8192 -r 128 --mode all
ok "8 host connections, PUTK/ALL: all 1,024 maps to each host" $? "$T/hostall"
# ring: a host's 128 ranks need ranks first+1 .. first+135: 135 maps each
load ring 1080 -r 128 --mode sparse --peers ring
ok "8 hosts, sparse, ring peers: 135 maps each, every peer's" $? "$T/ring"
load random 0 -r 128 --mode sparse --peers random
grep -q " ok=1 " "$T/random" && ! grep -q " maps_checked=0 " "$T/random"
ok "8 hosts, sparse, random peers: every peer's map" $? "$T/random"
# the sparse exchange sends a host its peers' maps, not everybody's
rebuild_bytes() { sed -n 's/.* rebuild_from_daemon_bytes=\([0-9]*\) .*/\1/p' "$1"; }
(($(rebuild_bytes "$T/ring") * 5 < $(rebuild_bytes "$T/hostall")))
ok "sparse (ring) sends under a fifth of ALL's bytes" $? "$T/ring" "$T/hostall"

load dup 0 -r 128 --mode sparse --dupkey
[[ $? -ne 0 ]] && grep -q "put twice" "$T/dup"
ok "a key put twice fails the checkpoint" $? "$T/dup"
load early 0 -r 128 --mode sparse --fault early-get
[[ $? -ne 0 ]] && grep -q "XFAIL .*GET before FENCED" "$T/early"
ok "a GET before the PUTK is refused" $? "$T/early"
load badrecs 0 -r 128 --mode sparse --fault bad-recs
[[ $? -ne 0 ]] && grep -q "XFAIL .*malformed records" "$T/badrecs"
ok "a PUTK whose record count lies is refused" $? "$T/badrecs"
load after 1080 -r 128 --mode sparse --peers ring
ok "the daemon goes on: the next job's exchange is intact" $? "$T/after"
kill -0 "$DPID"
ok "ibsnapd is alive" $?
finish
