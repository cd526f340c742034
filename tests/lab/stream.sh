#!/bin/bash
# SPDX-License-Identifier: MIT
# The exactly-once stream program (tests/integration/ckpt_stream.c, its two
# ranks: RC + SRQ + UD, SEND/WRITE/READ/atomics, checksums and sequence
# numbers) through R reboot restarts, one boot each, with real CRIU on the
# fake HCA in the guest:
#   stream.sh start BUILD_DIR STATE_DIR   boot 1: the ranks run under two
#       "ibsnap run" of one job; a moment later "ibsnap checkpoint --stop"
#   stream.sh step BUILD_DIR STATE_DIR    each later boot: "ibsnap restart";
#       the job runs a moment; then checkpoint --stop again, or, after the
#       R-th restart, the ranks are told to finish: each must have received
#       everything its peer sent exactly once, and exit 0.
# R: STATE_DIR/stream.restarts (tests/lab/tier.sh writes it; 3 if absent).
# STATE_DIR must outlive the guest (guest.sh --rw).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

stage=${1:?usage: stream.sh start|step BUILD_DIR STATE_DIR}
BUILD=$(cd "${2:?}" && pwd)
S=$(cd "${3:?}" && pwd)/stream
IBSNAP=$BUILD/bin/ibsnap
CS=$BUILD/tests/integration/ckpt_stream
JOB=stream
T=${IBSNAP_LAB_STREAM_TIMEOUT:-180}
# how long the job runs between a start or restart and the next checkpoint
RUN_S=3

export IBSNAP_BACKEND=fake IBSNAP_FABRIC=/dev/shm/stream
unset IBSNAP_FAKE_FAULTS

running() { "$IBSNAP" status --job "$JOB" | grep -q ": 2 processes"; }

# checkpoint K: --stop, into the one image dir (a newer checkpoint replaces
# the trees of the older); the job must end by the agents' kill
checkpoint() {
	local k=$1 rc=0
	sleep "$RUN_S"
	"$IBSNAP" checkpoint --job "$JOB" --stop --dir "$S/img" \
		>"$S/ck.$k.log" 2>&1 || rc=$?
	ok "stream: checkpoint $k --stop, mid-run" $rc "$S/ck.$k.log" \
		"$S"/img/*/*.dump-failed.log
	return "$rc"
}

case $stage in
start)
	rm -rf "$S" && mkdir -p "$S/dir"
	echo 0 >"$S/done"
	cd "$S" || exit 1
	for r in 0 1; do
		IBSNAP_FAKE_NODE=n$r timeout -k 5 "$T" "$IBSNAP" run --job "$JOB" \
			-- "$CS" rank "$r" "$S/dir" </dev/null >"$S/rank$r.log" 2>&1 &
	done
	ok "stream: both ranks registered" "$(rc wait_for 60 running)" \
		"$S/rank0.log" "$S/rank1.log" || exit 1
	# traffic flows once both are ready
	ok "stream: the ranks connected" \
		"$(rc wait_for 60 test -e "$S/dir/ready.1" -a -e "$S/dir/ready.0")" \
		"$S/rank0.log" "$S/rank1.log" || exit 1
	checkpoint 1 && touch "$S/dumped"
	wait
	;;
step)
	R=$(cat "$S.restarts" 2>/dev/null || echo 3)
	k=$(($(cat "$S/done") + 1))
	ok "stream: restart $k of $R: dumped in the previous boot" \
		"$(rc test -e "$S/dumped")" || exit 1
	rm -f "$S/dumped"
	cd "$S" || exit 1
	timeout -k 5 "$T" "$IBSNAP" restart --dir "$S/img" </dev/null \
		>"$S/restart.$k.log" 2>&1 &
	rpid=$!
	ok "stream: restart $k of $R: both ranks back" \
		"$(rc wait_for 90 running)" "$S/restart.$k.log" || exit 1
	echo "$k" >"$S/done"
	if ((k < R)); then
		checkpoint $((k + 1)) && touch "$S/dumped"
		wait "$rpid"
	else
		sleep "$RUN_S"
		touch "$S/dir/stop"
		wait_for 120 test -e "$S/dir/done.0" -a -e "$S/dir/done.1"
		touch "$S/dir/exit"
		rc=0
		wait "$rpid" || rc=$?
		ok "stream: after $R reboot restarts both ranks exit 0" $rc \
			"$S/restart.$k.log" "$S/rank0.log" "$S/rank1.log"
		ok "stream: every message exactly once, every atomic once" \
			"$(rc test "$(grep -c 'exactly once' "$S/rank0.log" \
				"$S/rank1.log" | grep -c ':1$')" = 2)" \
			"$S/rank0.log" "$S/rank1.log"
		grep -h "exactly once" "$S/rank0.log" "$S/rank1.log" |
			sed 's/^/     /'
	fi
	;;
*) echo "stream.sh: unknown stage $stage" >&2 && exit 2 ;;
esac
finish
