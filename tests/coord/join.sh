#!/bin/bash
# SPDX-License-Identifier: MIT
# Who may join a job.  Two ibsnap run on one host (no --job, no --coord)
# form one job on the host's default ibsnapd, as DMTCP's coordinator does.
# Over TCP a job's token is required: a wrong one is refused, the right
# one (IBSNAP_TOKEN) admits; ibsnapd listens on loopback only unless told.
# Where criu check fails, checkpoint and restart say so plainly.
source "$(dirname "$0")/lib.sh"

# --- two ibsnap run, one job (with leak checks: no PID namespace)
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
P=$T/peers-two
ASAN_OPTIONS=detect_leaks=1 start_job "$P" 1 --no-pidns
first=$JOB_PID
wait_for 300 has_procs default 1
ASAN_OPTIONS=detect_leaks=1 start_job "$P" 1 --no-pidns
second=$JOB_PID
wait_for 300 has_procs default 2
ok "two ibsnap run form one job" $? "$P/run.out"
"$IBSNAP" status >"$T/st" 2>&1 && grep -q "job default: 2 processes, 2 agents" "$T/st"
ok "status shows it: 2 processes, 2 agents" $? "$T/st"
"$IBSNAP" checkpoint --no-dump >"$T/ck" 2>&1 && all_logs "$P" "drain ok n=2" 2 &&
	all_logs "$P" "rebuild ok n=2" 2
ok "a checkpoint spans both (each got both blobs)" $? "$T/ck"
"$IBSNAP" checkpoint --dir "$T/two" >"$T/ck" 2>&1 &&
	[[ $(ls "$T/two/$HOST" | wc -l) -eq 2 ]] &&
	[[ $(cat "$T/two/$HOST"/*/ibsnap.meta | grep -c '^ckpt=2$') -eq 2 ]] &&
	[[ $(cat "$T/two/$HOST"/*/ibsnap.meta | grep -c '^client=') -eq 2 ]]
ok "each ibsnap run dumps its own tree (DIR/HOST/TREE), same checkpoint" $? "$T/ck"
unset IBSNAP_CRIU
touch "$P/stop"
wait $first && wait $second
ok "both exit 0" $? "$P/run.out"

# --- CRIU where it cannot run
if ! criu check >/dev/null 2>&1; then
	P=$T/peers-criu
	start_job "$P" 2 --job nocriu
	wait_for 300 has_procs nocriu 2
	"$IBSNAP" checkpoint --job nocriu --dir "$T/img" >"$T/ck" 2>&1
	rc=$?
	[[ $rc -eq 3 ]] && grep -q "CRIU cannot run on this host" "$T/ck" &&
		grep -q "done (no dump)" "$T/ck" && all_logs "$P" "rebuild ok n=2" 2
	ok "checkpoint says CRIU cannot run here and does the cycle (exit 3)" $? "$T/ck"
	"$IBSNAP" restart --dir "$T/img" >"$T/rs" 2>&1
	[[ $? -eq 1 ]] && grep -q "CRIU cannot run on this host.*a restart needs CRIU" "$T/rs"
	ok "restart says plainly that it needs CRIU" $? "$T/rs"
	stop_job "$P"
fi

# --- TCP and tokens: a private daemon on a loopback port
D=$T/tcp.sock
for try in 1 2 3 4 5; do
	PORT=$((20000 + (RANDOM % 20000)))
	"$B/bin/ibsnapd" -f --sock "$D" --listen 127.0.0.1:$PORT --log "$T/tcp.log" &
	dpid=$!
	wait_for 50 eval "ss -ltnH 'sport = :$PORT' | grep -q ." && break
	kill $dpid 2>/dev/null
	wait $dpid 2>/dev/null
done
"$B/bin/ibsnapd" -f --sock "$T/x.sock" --listen 0.0.0.0:$((PORT + 1)) >"$T/any" 2>&1
[[ $? -eq 1 ]] && grep -q "not a loopback address" "$T/any"
ok "ibsnapd refuses a non-loopback --listen" $? "$T/any"

C=127.0.0.1:$PORT
P=$T/peers-tcp
start_job "$P" 1 --coord $C --job tj
owner=$JOB_PID
wait_for 300 eval "IBSNAP_COORD_SOCK=$D has_procs tj 1"
ok "a job over TCP" $? "$P/run.out"
"$IBSNAP" run --coord $C --job tj -- true >"$T/j1" 2>&1
[[ $? -eq 1 ]] && grep -q "its token is required" "$T/j1"
ok "joining it over TCP without the token is refused" $? "$T/j1"
IBSNAP_TOKEN=0123456789abcdef0123456789abcdef "$IBSNAP" run --coord $C --job tj -- true >"$T/j2" 2>&1
[[ $? -eq 1 ]] && grep -q "token mismatch" "$T/j2"
ok "... and with a wrong token" $? "$T/j2"
PEER_DIR=$P IBSNAP_COORD=$C IBSNAP_JOB=tj IBSNAP_TOKEN=0123456789abcdef0123456789abcdef \
	"$PEER" >"$T/j3" 2>&1
[[ $? -eq 3 ]] && grep -q "token mismatch" "$T/j3"
ok "a process with a wrong token is refused" $? "$T/j3"
"$IBSNAP" status --coord $C --job tj >"$T/j4" 2>&1
[[ $? -eq 1 ]] && grep -q "token required" "$T/j4"
ok "status over TCP needs the token" $? "$T/j4"

init=$(pgrep -P "$owner" | head -1)
TOKEN=$(tr '\0' '\n' <"/proc/$init/environ" | sed -n 's/^IBSNAP_TOKEN=//p')
export IBSNAP_TOKEN=$TOKEN
start_job "$P" 1 --coord $C --job tj
joined=$JOB_PID
wait_for 300 eval "IBSNAP_COORD_SOCK=$D has_procs tj 2"
ok "with the right token another ibsnap run joins" $? "$P/run.out"
"$IBSNAP" checkpoint --coord $C --job tj --no-dump >"$T/j5" 2>&1 &&
	"$IBSNAP" status --coord $C --job tj --json >"$T/j6" 2>&1 &&
	grep -q '"procs":2' "$T/j6" && all_logs "$P" "rebuild ok n=2" 2
ok "checkpoint and status over TCP with the token" $? "$T/j5" "$T/j6"
unset IBSNAP_TOKEN
touch "$P/stop"
wait $owner && wait $joined
ok "the TCP job exits 0" $? "$P/run.out"
kill $dpid
wait $dpid
ok "ibsnapd exits cleanly on SIGTERM" $? "$T/tcp.log"

finish
