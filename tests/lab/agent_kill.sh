#!/bin/bash
# SPDX-License-Identifier: MIT
# The namespace init's parent-death signal with real CRIU (in the guest, one
# boot; not in make test):
#   tests/lab/guest.sh run --rw DIR -- tests/lab/agent_kill.sh BUILD_DIR DIR
#  1. a job (a shell that builds a 30 MB string, then sleeps, under ibsnap
#     run) is checkpointed; its agent killed outside a dump ends the tree;
#     ibsnap restart restores it in this boot: the restored init (dumped
#     with a parent-death signal it handles) outlives criu's exit and is
#     armed by restart; killing restart then ends the restored tree;
#  2. the agent of such a job is killed while criu dumps its tree: the
#     checkpoint fails, and the tree ends once criu lets it run again.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

BUILD=$(cd "${1:?usage: agent_kill.sh BUILD_DIR STATE_DIR}" && pwd)
D=$(cd "${2:?}" && pwd)/agent_kill
IBSNAP=$BUILD/bin/ibsnap
rm -rf "$D" && mkdir -p "$D" && cd "$D" || exit 1
export IBSNAP_COORD_SOCK=/run/ibsnap-ak/ibsnapd.sock # not on 9p
JOB=(bash -c 'x=$(head -c 30000000 /dev/zero | tr "\0" x); sleep 1000')

# init_of PID: the namespace init whose parent is PID
init_of() { pgrep -P "$1" '^ibsnap-init'; }
# tree_gone PID...: none of them running (a zombie waits to be reaped)
tree_gone() {
	! ps -o stat= -p "$(echo "$@" | tr ' ' ,)" | grep -qv '^Z'
}
# started AGENT: its job holds its memory and sleeps
started() {
	local i
	i=$(init_of "$1") && [[ -n $i ]] &&
		proc_tree "$i" | xargs -r ps -o comm= -p 2>/dev/null | grep -qx sleep
}

# --- 1. checkpoint, the agent killed outside a dump, restart
setsid "$IBSNAP" run --no-preload --job ak1 -- "${JOB[@]}" \
	</dev/null >/dev/null 2>"$D/run1.err" &
A=$!
wait_for 120 started "$A" && wait_for 60 "$IBSNAP" status --job ak1
ok "a job under ibsnap run" $? "$D/run1.err"
"$IBSNAP" checkpoint --job ak1 --dir "$D/img1" >"$D/ck1" 2>&1
ok "checkpoint 1 written by criu" $? "$D/ck1" "$D/img1/$(hostname)"/*/dump.log
INIT=$(init_of "$A")
TREE=$(proc_tree "$INIT")
[[ $(cat "/proc/$INIT/comm") == ibsnap-init && $(wc -w <<<"$TREE") -ge 2 ]]
ok "after the dump the init is armed again" $? <(ps -o pid,ppid,comm -p "$(echo $TREE | tr ' ' ,)")
ps -eo pid,ppid,stat,comm >"$D/ps1"
kill -9 "$A"
wait_for 30 tree_gone $TREE
ok "outside a dump, the agent killed: its tree ends" $? "$D/ps1"
"$IBSNAP" restart --dir "$D/img1" </dev/null >"$D/restart.log" 2>&1 &
R=$!
wait_for 120 eval '[[ -n $(init_of '"$R"') ]]' && sleep 3
RINIT=$(init_of "$R")
TREE=$(proc_tree $RINIT)
[[ -n $RINIT && $(cat "/proc/$RINIT/comm" 2>/dev/null) == ibsnap-init ]] &&
	! pgrep -x criu >/dev/null && [[ -n $(pgrep -P "$RINIT") ]]
ok "restarted: the restored tree outlived criu's exit and is armed" $? \
	"$D/restart.log" "$D/img1/$(hostname)"/*/restore.log
kill -9 "$R"
wait_for 30 tree_gone $TREE
ok "... and ends with its new agent" $?

# --- 2. the agent killed while criu dumps
setsid "$IBSNAP" run --no-preload --job ak2 -- "${JOB[@]}" \
	</dev/null >/dev/null 2>"$D/run2.err" &
A=$!
wait_for 120 started "$A"
# the daemon of case 1 may have exited idle under the agent: it comes back
wait_for 60 "$IBSNAP" status --job ak2
TREE=$(proc_tree "$(init_of "$A")")
"$IBSNAP" checkpoint --job ak2 --dir "$D/img2" >"$D/ck2" 2>&1 &
ck=$!
wait_for 60 pgrep -f '^criu dump'
ok "criu is dumping the job" $? "$D/ck2"
kill -9 "$A"
wait "$ck"
[[ $? -eq 1 ]] && grep -q "was lost" "$D/ck2"
ok "the agent killed mid-dump: the checkpoint fails" $? "$D/ck2"
wait_for 60 tree_gone $TREE
ok "... and the tree ends once criu lets it go" $? "$D/ck2" \
	<(ps -eo pid,ppid,stat,comm)
kill -9 $TREE 2>/dev/null
finish
