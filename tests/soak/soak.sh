#!/bin/bash
# SPDX-License-Identifier: MIT
# make soak: the long runs behind docs/reliability.md's figures (not in the
# default make test, whose shim tier runs the short ones).
#  1. ckpt_stream (RC + UD + SRQ, SEND, WRITE with immediate, READ,
#     FETCH_ADD, CMP_SWP) through SOAK_CKPTS (1,000) consecutive checkpoints
#     at random points on the fake HCA with faults injected on every packet
#     (2 % dropped, 1 % duplicated, 20 us delay), a new incarnation of both
#     nodes every third checkpoint.  Each rank checks that every message
#     and every atomic of its peer arrived exactly once (a loss leaves it
#     waiting: the run fails; a double fails it at once), so a passing run
#     is lost 0, doubled 0.  The ranks' RSS (the shim's) after a tenth of
#     the checkpoints (warm) and after the last.
#  2. ibsnapd: ibv_rc_pingpong's two processes under ibsnap run --fake,
#     SOAK_CKPTS ibsnap checkpoint --no-dump through the coordinator; the
#     RSS of ibsnapd and of both processes after a tenth of the
#     checkpoints and after the last.
#   tests/soak/soak.sh BUILD [DOC]   (DOC: rewrite its figures table)
set -u
cd "$(dirname "$0")/../.."
B=$(cd "${1:?usage: $0 BUILD [DOC]}" && pwd)
DOC=${2:-}
K=${SOAK_CKPTS:-1000}
FAULTS=drop=0.02,dup=0.01,delay_us=20,seed=${SOAK_SEED:-$RANDOM}
T=$(mktemp -d /tmp/ibsnap-soak.XXXXXX)
export IBSNAP_COORD_SOCK=$T/ibsnapd.sock
unset IBSNAP_COORD IBSNAP_JOB IBSNAP_TOKEN
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[[ -f $IBSNAP_COORD_SOCK.lock ]] &&
		kill "$(cat "$IBSNAP_COORD_SOCK.lock")" 2>/dev/null
	rm -rf "$T" /dev/shm/ibsnap-soak.$$
}
trap cleanup EXIT
. tests/checks.sh
# private resident memory (RssAnon), as ckpt_stream reads it: VmRSS also
# counts the fake fabric's shared rings, mapped anew by each rebuild
rss() { sed -n "s/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }

# --- 1. the exactly-once stream
mkdir -p /dev/shm/ibsnap-soak.$$
t0=$SECONDS
IBSNAP_FABRIC=/dev/shm/ibsnap-soak.$$ IBSNAP_FAKE_FAULTS=$FAULTS \
	CKST_REINC_EVERY=3 CKST_SECS=$((K * 3 + 120)) CKST_RSS_GROWTH_KB=4096 \
	nice -n 19 "$B/tests/integration/ckpt_stream" "$K" >"$T/cs.log" 2>&1
rc=$?
secs=$((SECONDS - t0))
grep -q "^ckpt_stream: $K checkpoints" "$T/cs.log" &&
	[[ $(grep -c "exactly once" "$T/cs.log") -eq 2 ]] && [[ $rc -eq 0 ]]
ok "ckpt_stream: $K checkpoints with $FAULTS, every message exactly once, RSS grew < 4 MiB" $? "$T/cs.log"
cat "$T/cs.log"
# a rank prints its "exactly once" line only once every message and atomic
# of its peer was counted once: a loss leaves it waiting, a double fails it
eo=$(grep -c "exactly once" "$T/cs.log")
msgs=$(grep "exactly once" "$T/cs.log" | sed 's/;.*//' | grep -o '[0-9]* [A-Z_-]*' |
	awk '{ s += $1 } END { print s + 0 }')
ud=$(grep -o '[0-9]*/[0-9]* UD' "$T/cs.log" | tr '/' ' ' |
	awk '{ g += $1; s += $2 } END { printf "%d of %d", g, s }')
r0=$(sed -n 's/^rss rank 0: \([0-9]*\) kB after checkpoint [0-9]*, \([0-9]*\) kB.*/\1 \2/p' "$T/cs.log")
r1=$(sed -n 's/^rss rank 1: \([0-9]*\) kB after checkpoint [0-9]*, \([0-9]*\) kB.*/\1 \2/p' "$T/cs.log")
# after half of the checkpoints: growth per checkpoint would show in both halves
m0=$(sed -n 's/^rss rank 0 after half: \([0-9]*\) kB.*/\1/p' "$T/cs.log")
m1=$(sed -n 's/^rss rank 1 after half: \([0-9]*\) kB.*/\1/p' "$T/cs.log")
rc_=$(sed -n 's/^rss coordinator: \([0-9]*\) kB after checkpoint [0-9]*, \([0-9]*\) kB.*/\1 \2/p' "$T/cs.log")

# --- 2. ibsnapd through K checkpoints of a ping-pong
PORT=$((20000 + RANDOM % 20000))
export IBSNAP_FABRIC=/dev/shm/ibsnap-soak.$$
job=soak$$
IBSNAP_FAKE_FAULTS=delay_us=100 "$B/bin/ibsnap" run --fake --job $job -- \
	ibv_rc_pingpong -d fake0 -g 0 -n 100000000 -p $PORT >"$T/srv.log" 2>&1 &
PIDS+=($!)
sleep 1
IBSNAP_FAKE_FAULTS=delay_us=100 "$B/bin/ibsnap" run --fake --job $job -- \
	ibv_rc_pingpong -d fake0 -g 0 -n 100000000 -p $PORT 127.0.0.1 >"$T/cli.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 200; i++)); do
	"$B/bin/ibsnap" status --job $job 2>/dev/null | grep -q ": 2 processes" && break
	sleep 0.05
done
sleep 0.5
procs=()
for p in $(pgrep -x ibv_rc_pingpong); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-p $PORT" && procs+=("$p")
done
d=$(cat "$IBSNAP_COORD_SOCK.lock" 2>/dev/null)
n=0
pm=
t1=$SECONDS
for ((i = 1; i <= K; i++)); do
	"$B/bin/ibsnap" checkpoint --job $job --no-dump >>"$T/ck.log" 2>&1 && n=$((n + 1))
	if [[ $i -eq $(((K >= 20 ? K / 10 : 1))) ]]; then
		d0=$(rss "$d")
		p0=$(for p in "${procs[@]}"; do rss "$p"; done | tr '\n' ' ')
	fi
	[[ $i -eq $((K / 2)) ]] &&
		pm=$(for p in "${procs[@]}"; do rss "$p"; done | tr '\n' ' ')
done
secs2=$((SECONDS - t1))
d1=$(rss "$d")
p1=$(for p in "${procs[@]}"; do rss "$p"; done | tr '\n' ' ')
[[ $n -eq $K && ${#procs[@]} -eq 2 && -n $d0 && -n $d1 ]]
ok "ibsnapd: $n of $K checkpoints of a ping-pong pair (daemon pid $d, processes ${procs[*]})" $? \
	"$T/ck.log" "$T/srv.log" "$T/cli.log"
K0=$((K >= 20 ? K / 10 : 1))
echo "ibsnapd RSS: $d0 kB after checkpoint $K0, $d1 kB after checkpoint $K"
echo "ping-pong RSS: $p0 kB after checkpoint $K0, $p1 kB after checkpoint $K"
# flat: no more than 4 MiB of growth over the run (a leak of a few hundred
# bytes per checkpoint would be more)
[[ -n $d0 && -n $d1 ]] && ((d1 - d0 <= 4096))
ok "ibsnapd's RSS is flat ($d0 -> $d1 kB)" $?
set -- $p0 $p1 x
[[ $# -eq 5 ]] && (($3 - $1 <= 4096 && $4 - $2 <= 4096))
ok "the shim's RSS in both processes is flat ($p0 -> $p1 kB)" $?

if [[ -n $DOC ]]; then
	tbl=$T/table
	{
		echo "<!-- soak: generated by make soak (tests/soak/soak.sh) -->"
		echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, \`nice -n 19\`."
		echo
		echo "| figure | value |"
		echo "| --- | --- |"
		echo "| ckpt_stream: consecutive checkpoints at random points | $(sed -n 's/^ckpt_stream: \([0-9]*\) checkpoints (\([0-9]*\) with.*/\1 (\2 with new incarnations)/p' "$T/cs.log") in $secs s |"
		echo "| fault injection on every packet | \`$FAULTS\` |"
		echo "| reliable messages, WRITEs, READs and atomics checked | $msgs |"
		echo "| lost | $([[ $eo -eq 2 ]] && echo 0 || echo "not checked: a rank failed") |"
		echo "| doubled | $([[ $eo -eq 2 ]] && echo 0 || echo "not checked: a rank failed") |"
		echo "| UD datagrams received of sent (UD may lose) | $ud |"
		echo "| ckpt_stream's verdict (exit status; RssAnon growth > 4 MiB fails it) | $rc |"
		set -- $r0 $r1
		echo "| shim RssAnon, rank 0 (kB, after checkpoint $K0 -> $((K / 2)) -> $K) | ${1:-} -> $m0 -> ${2:-} |"
		echo "| shim RssAnon, rank 1 (kB) | ${3:-} -> $m1 -> ${4:-} |"
		echo "| the test's coordinator RssAnon (kB) | ${rc_/ / -> } |"
		echo "| ibsnapd: checkpoints of an ibv_rc_pingpong pair | $n of $K in $secs2 s |"
		echo "| ibsnapd RssAnon (kB, after checkpoint $K0 -> after checkpoint $K) | $d0 -> $d1 |"
		echo "| shim RssAnon in the pair (kB, after checkpoint $K0 -> $((K / 2)) -> $K) | $(echo "${p0% }" | sed "s/ / \/ /") -> $(echo "${pm% }" | sed "s/ / \/ /") -> $(echo "${p1% }" | sed "s/ / \/ /") |"
		echo "<!-- end of soak -->"
	} >"$tbl"
	if grep -q '^<!-- soak:' "$DOC"; then
		awk -v tbl="$tbl" '
			/^<!-- soak:/ { while ((getline l < tbl) > 0) print l; skip = 1; next }
			/^<!-- end of soak -->/ { skip = 0; next }
			!skip' "$DOC" >"$DOC.new" && mv "$DOC.new" "$DOC"
	else
		cat "$tbl" >>"$DOC"
	fi
	echo "figures written to $DOC"
fi
finish
