#!/bin/bash
# SPDX-License-Identifier: MIT
# Checkpoint and restart of unmodified verbs programs, with real CRIU,
# across a reboot (in the guest):
#   ckpt.sh dump BUILD_DIR STATE_DIR [RE]     boot 1: each case's server
#       and client run under two "ibsnap run" of one job; once traffic
#       flows, "ibsnap checkpoint --stop" dumps both trees into
#       STATE_DIR/ckpt/CASE and ends the job.  Also checkpoint-and-continue:
#       a dump mid-run, then the job finishes in place.
#   ckpt.sh restore BUILD_DIR STATE_DIR [RE]  boot 2: "ibsnap restart"
#       brings each dumped job back; both ends finish with the right
#       iteration count and exit 0.
# RE (or IBSNAP_LAB_CKPT_ONLY): only the cases whose name matches.  The
# cases run on rxe0 (IBSNAP_BACKEND=real) and on the fake HCA;
# IBSNAP_LAB_CKPT_EXTRA=1 adds ib_send_bw and ib_write_lat on rxe0.
# STATE_DIR must outlive the guest (guest.sh --rw).
# A case's dir is the cwd of its processes: CRIU mounts a proc there.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

stage=${1:?usage: ckpt.sh dump|restore BUILD_DIR STATE_DIR}
BUILD=$(cd "${2:?}" && pwd)
D=$(cd "${3:?}" && pwd)/ckpt
IBSNAP=$BUILD/bin/ibsnap
# a run of a case's remaining iterations after the restart, or a
# checkpoint: a few seconds to a minute in the guest
T=${IBSNAP_LAB_CKPT_TIMEOUT:-240}

# name|backend|iterations|server command (the client adds 127.0.0.1).
# Iterations: a run of 4-10 s in the guest before the checkpoint (so that
# it falls inside the run), less after it.
CASES=(
	"rxe-rc|real|5000|ibv_rc_pingpong -d rxe0 -g 1"
	"rxe-ud|real|12000|ibv_ud_pingpong -d rxe0 -g 1"
	"rxe-srq|real|12000|ibv_srq_pingpong -d rxe0 -g 1"
	"rxe-srq-e|real|12000|ibv_srq_pingpong -d rxe0 -g 1 -e"
	"rxe-write-lat|real|4000|ib_write_lat -d rxe0 -x 1 -s 65536"
)
# checkpoint-and-continue: dumped mid-run, the job goes on to its end
CONT_CASES=(
	"rxe-rc-cont|real|5000|ibv_rc_pingpong -d rxe0 -g 1"
)
# The same programs on the fake HCA in the guest (its fabric in /dev/shm
# is gone after the reboot: the rebuild maps a new one)
CASES+=(
	"fake-rc|fake|4000|ibv_rc_pingpong -d fake0 -g 0"
	"fake-ud|fake|4000|ibv_ud_pingpong -d fake0 -g 0"
	"fake-srq|fake|20000|ibv_srq_pingpong -d fake0 -g 0"
	"fake-srq-e|fake|20000|ibv_srq_pingpong -d fake0 -g 0 -e"
	"fake-send-bw|fake|20000|ib_send_bw -d fake0 -x 0"
	"fake-write-lat|fake|4000|ib_write_lat -d fake0 -x 0"
)
CONT_CASES+=("fake-rc-cont|fake|4000|ibv_rc_pingpong -d fake0 -g 0")
# a checkpoint to a full disk fails cleanly and the job goes on
FULL_CASES=("fake-rc-full|fake|4000|ibv_rc_pingpong -d fake0 -g 0")
# Not reliable yet, so not in the tier (docs/checkpoint.md, "Checkpoint,
# reboot, restart"): ib_send_bw on rxe0 (after the restart its client's
# CPU clock calibration failed once in two under TCG, "r^2 < 0.9: can't
# produce a report"); IBSNAP_LAB_CKPT_EXTRA=1 adds it.
if [[ ${IBSNAP_LAB_CKPT_EXTRA:-0} = 1 ]]; then
	CASES+=("rxe-send-bw|real|2500|ib_send_bw -d rxe0 -x 1")
fi
ONLY=${4:-${IBSNAP_LAB_CKPT_ONLY:-.}}

PORT=18600

listening() { ss -ltnH "sport = :$1" | grep -q .; }
registered() { "$IBSNAP" status --job "$1" | grep -q ": 2 processes"; }
rxe_sent() { cat /sys/class/infiniband/rxe0/ports/1/hw_counters/sent_pkts; }
rxe_past() { (($(rxe_sent) >= $1)); }

# counted NAME ITERS: both ends report ITERS iterations
counted() {
	local f
	for f in srv.log cli.log; do
		grep -q "^$2 iters in " "$1/$f" ||
			awk -v n="$2" '$1 ~ /^[0-9]+$/ && $2 == n { f = 1 } END { exit !f }' \
				"$1/$f" || return 1
	done
}

# start NAME BACKEND ITERS CMD...: server and client under ibsnap run (job
# ck-NAME) in the case's dir, the cwd of both (CRIU mounts a proc there);
# sets SPID, CPID.  Waits until both registered and traffic flows.
start() {
	local name=$1 backend=$2 n=$3 dir=$D/$1 base
	shift 3
	PORT=$((PORT + 1))
	rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || return 1
	echo "$n" >"$dir/iters"
	export IBSNAP_BACKEND=$backend IBSNAP_FABRIC=/dev/shm/ck-$name
	# the fake HCA is fast enough to end a run before the checkpoint comes:
	# a 1 ms wire delay paces it (4000 round trips: 8 s at least)
	if [[ $backend = fake ]]; then
		export IBSNAP_FAKE_FAULTS=delay_us=1000
	else
		unset IBSNAP_FAKE_FAULTS
	fi
	base=$(rxe_sent)
	timeout -k 5 "$T" "$IBSNAP" run --job "ck-$name" -- "$@" -n "$n" \
		-p "$PORT" </dev/null >"$dir/srv.log" 2>&1 &
	SPID=$!
	wait_for 30 listening "$PORT" || return 1
	timeout -k 5 "$T" "$IBSNAP" run --job "ck-$name" -- "$@" -n "$n" \
		-p "$PORT" 127.0.0.1 </dev/null >"$dir/cli.log" 2>&1 &
	CPID=$!
	wait_for 60 registered "ck-$name" || return 1
	if [[ $backend = real ]]; then
		wait_for 60 rxe_past $((base + 50)) || return 1
	else
		sleep 2
	fi
}

# stop_pair: end what is left of a case
stop_pair() {
	kill "$SPID" "$CPID" 2>/dev/null
	wait "$SPID" "$CPID" 2>/dev/null
}

# started NAME BACKEND ITERS CMD...: start, and check that it did (else
# end what is left and fail)
started() {
	start "$@"
	ok "$1: both ends registered, traffic flows" $? "$D/$1/srv.log" \
		"$D/$1/cli.log" && return 0
	stop_pair
	return 1
}

dump_case() { # NAME BACKEND ITERS CMD...
	local name=$1 dir=$D/$1 rc=0 src=0 crc=0
	started "$@" || return
	"$IBSNAP" checkpoint --job "ck-$name" --stop --dir "$dir/img" \
		>"$dir/ck.log" 2>&1 || rc=$?
	ok "$name: ibsnap checkpoint --stop mid-run" $rc "$dir/ck.log" \
		"$dir"/img/*/*.dump-failed.log || {
		stop_pair
		return
	}
	wait "$SPID" || src=$?
	wait "$CPID" || crc=$?
	# killed after the dump (SIGKILL: 137), before their end
	ok "$name: the job was stopped before its end" \
		"$(rc test "$src" = 137 -a "$crc" = 137)" "$dir/srv.log" \
		"$dir/cli.log" && touch "$dir/dumped"
}

cont_case() { # NAME BACKEND ITERS CMD...
	local name=$1 n=$3 dir=$D/$1 rc=0 src=0 crc=0
	started "$@" || return
	"$IBSNAP" checkpoint --job "ck-$name" --dir "$dir/img" \
		>"$dir/ck.log" 2>&1 || rc=$?
	ok "$name: ibsnap checkpoint mid-run (the job goes on)" $rc \
		"$dir/ck.log" "$dir"/img/*/*.dump-failed.log || {
		stop_pair
		return
	}
	wait "$SPID" || src=$?
	wait "$CPID" || crc=$?
	ok "$name: both ends finished, exit 0, $n iterations" \
		"$(rc test "$src$crc" = 00 -a "$(rc counted "$dir" "$n")" = 0)" \
		"$dir/srv.log" "$dir/cli.log"
}

# A full disk: the images go to a 256 KiB tmpfs, far too small for them.
# The checkpoint must fail with a clear error, leave no image (nothing
# that restart would take), and the job must go on to its end.
full_case() { # NAME BACKEND ITERS CMD...
	local name=$1 n=$3 dir=$D/$1 rc=0 src=0 crc=0
	started "$@" || return
	mkdir -p "$dir/img" && mount -t tmpfs -o size=256k tmpfs "$dir/img"
	"$IBSNAP" checkpoint --job "ck-$name" --dir "$dir/img" \
		>"$dir/ck.log" 2>&1 || rc=$?
	ok "$name: ibsnap checkpoint to a full disk fails, and says why" \
		"$(rc test "$rc" != 0 -a "$(rc grep -qi 'space' "$dir/ck.log")" = 0)" \
		"$dir/ck.log"
	ok "$name: no image is left that restart would take" \
		"$(rc test -z "$(find "$dir/img" -name ibsnap.meta)")" "$dir/ck.log"
	wait "$SPID" || src=$?
	wait "$CPID" || crc=$?
	umount "$dir/img"
	ok "$name: the job went on: both ends exit 0, $n iterations" \
		"$(rc test "$src$crc" = 00 -a "$(rc counted "$dir" "$n")" = 0)" \
		"$dir/srv.log" "$dir/cli.log"
}

restore_case() { # NAME
	local name=$1 dir=$D/$1 n rc=0
	ok "$name: dumped in the previous boot" "$(rc test -e "$dir/dumped")" ||
		return
	n=$(cat "$dir/iters")
	cd "$dir" || return
	timeout -k 5 "$T" "$IBSNAP" restart --dir "$dir/img" \
		</dev/null >"$dir/restart.log" 2>&1 || rc=$?
	ok "$name: ibsnap restart after the reboot, both ends exit 0" $rc \
		"$dir/restart.log" "$dir/srv.log" "$dir/cli.log" \
		"$dir"/img/*/*/restore.log || return
	ok "$name: $n iterations on both ends" "$(rc counted "$dir" "$n")" \
		"$dir/srv.log" "$dir/cli.log"
}

for_cases() { # FUNCTION CASE...
	local f=$1 c name backend n cmd
	shift
	for c in "$@"; do
		IFS='|' read -r name backend n cmd <<<"$c"
		[[ $name =~ $ONLY ]] || continue
		if [[ $f = restore_case ]]; then
			$f "$name"
		else
			# shellcheck disable=SC2086
			$f "$name" "$backend" "$n" $cmd
		fi
	done
}

case $stage in
dump)
	mkdir -p "$D"
	for_cases dump_case "${CASES[@]}"
	for_cases cont_case "${CONT_CASES[@]}"
	for_cases full_case "${FULL_CASES[@]}"
	;;
restore) for_cases restore_case "${CASES[@]}" ;;
*) echo "ckpt.sh: unknown stage $stage" >&2 && exit 2 ;;
esac
finish
