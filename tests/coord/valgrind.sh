#!/bin/bash
# SPDX-License-Identifier: MIT
# ibsnapd, the CLI's agent and the coordinator client under valgrind: a
# checkpoint with detach and wake, a failed one (a process killed in
# DRAIN), status; no error and no leak in any of them.
# (Not for sanitized builds: valgrind and ASan do not mix.)
source "$(dirname "$0")/lib.sh"

if readelf -d "$B/bin/ibsnapd" | grep -q 'NEEDED.*libasan'; then
	echo "skipped: a sanitized build"
	exit 0
fi
command -v valgrind >/dev/null || { echo "FAIL: no valgrind"; exit 1; }
VG=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect
	--error-exitcode=99 --child-silent-after-fork=yes)

"${VG[@]}" --log-file="$T/vg-daemon.log" "$B/bin/ibsnapd" -f \
	--sock "$IBSNAP_COORD_SOCK" --log "$T/ibsnapd.log" &
dpid=$!
wait_for 300 test -S "$IBSNAP_COORD_SOCK"
ok "ibsnapd starts under valgrind" $? "$T/vg-daemon.log"

N=4
P=$T/peers
mkdir -p "$P"
PEER_DIR=$P PEER_DIE=2:drain "${VG[@]}" --log-file="$T/vg-agent.log" \
	"$IBSNAP" run --no-pidns --no-preload --job vg -- \
	"${VG[@]}" --trace-children=yes --log-file="$T/vg-peer.%p.log" \
	"$PEER" --spawn $N \
	>"$P/run.out" 2>&1 &
job=$!
wait_for 600 has_procs vg $N
ok "$N peers under valgrind registered" $? "$P/run.out"

"$IBSNAP" checkpoint --job vg --no-dump >"$T/ck1" 2>&1
[[ $? -eq 1 ]] && grep -q "rank 2 .*lost its connection during drain" "$T/ck1"
ok "a process killed in DRAIN fails the checkpoint" $? "$T/ck1"
"$IBSNAP" checkpoint --job vg --no-dump >"$T/ck2" 2>&1 &&
	all_logs "$P" "rebuild ok n=$((N - 1))" $((N - 1))
ok "the next one, with detach and wake, succeeds" $? "$T/ck2"
"$IBSNAP" status --json >/dev/null && "$IBSNAP" status --job nosuch >/dev/null 2>&1
[[ $? -eq 1 ]]
ok "status answered" $?

touch "$P/stop"
wait $job
ok "the job exits 0" $? "$P/run.out"
kill $dpid
wait $dpid
ok "ibsnapd exits 0 on SIGTERM" $? "$T/vg-daemon.log"
cat "$T"/vg-*.log >"$T/vg.all"
[[ ! -s $T/vg.all ]]
ok "valgrind has nothing to say (daemon, agent, peers)" $? "$T/vg.all"

finish
