#!/bin/bash
# SPDX-License-Identifier: MIT
# Short-downtime checkpoints with real CRIU in the lab guest (issue 11): the
# downtime job (tests/lab/memjob.c: two ranks, each under its own ibsnap
# run of one job, R MiB each that they keep rewriting at RATE MiB/s, RC
# SENDs carrying checksums in lockstep) checkpointed mid-run
#   (a) straight to DIR (STATE, the guest's 9p disk),
#   (b) staged: --stage FAST (the guest's tmpfs), copied to DIR in the
#       background,
#   (c) --predump --stage FAST: pre-dumped while it runs, then only the
#       pages dirtied since,
# then killed and restarted from FAST in the same boot, and from DIR after
# a reboot; every restarted run must end with every page and every message
# checked ("ok" in both ranks' result files).
#   downtime.sh dump BUILD_DIR STATE_DIR      boot 1 of the lab tier: on
#       rxe0, R = 8 MiB, case (c) as periodic checkpoints (ibsnap run --dir
#       --stage --predump --interval 1s): two, ckpt-2 chained on ckpt-1;
#       each image holds its pre-dump; killed
#   downtime.sh restore BUILD_DIR STATE_DIR   boot 2: restart from the
#       newest chained image in DIR (FAST is gone), the job ends with every
#       check passed
#   downtime.sh bench BUILD_DIR STATE_DIR     boot 1 of make bench-downtime:
#       rxe0 and the fake HCA, R = 64 and 256 MiB (IBSNAP_DT_SIZES): one job
#       per backend and size, checkpointed (a), (b), (c) in turn; their
#       times go to STATE_DIR/downtime/rows; then killed and restarted from
#       FAST; once (the first fake job) a staged checkpoint 4 whose flusher
#       is killed mid-copy: restart from DIR must take 3, never 4
#   downtime.sh bench-restore BUILD_DIR STATE_DIR   boot 2: restart each
#       from DIR (IBSNAP_DT_ONLY=RE: only the jobs whose name matches)
#   downtime.sh chain BUILD_DIR STATE_DIR     periodic chained checkpoints
#       (boot 1 of make bench-downtime too): on rxe0, R = 64 MiB (IBSNAP_DT_CHAIN_MIB)
#       rewritten at 1 MiB/s, rank 0 under ibsnap run --dir --stage
#       --predump --interval 40s (IBSNAP_DT_CHAIN_T): three checkpoints,
#       ckpt-1 full, 2 and 3 chained, each writing < half of ckpt-1; killed
#   downtime.sh chain-restore BUILD_DIR STATE_DIR   boot 2: restart from
#       the newest chained image in DIR, every page checked
#   downtime.sh calib BUILD_DIR STATE_DIR     a copy on tmpfs and a hash,
#       timed (the guest's against the host's: how much slower TCG is)
# STATE_DIR must outlive the guest (guest.sh --rw).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

stage=${1:?usage: downtime.sh dump|restore|bench|bench-restore|calib BUILD STATE}
BUILD=$(cd "${2:?}" && pwd)
D=$(cd "${3:?}" && pwd)/downtime
IBSNAP=$BUILD/bin/ibsnap
MEMJOB=$BUILD/tests/lab/memjob
FAST=/tmp/ibsnap-stage # tmpfs in the guest, empty after a reboot
RATE=${IBSNAP_DT_RATE:-2} # MiB/s per rank
T=${IBSNAP_DT_TIMEOUT:-600}
# steps the job runs before its first checkpoint (written every 20)
WARM=20
[[ $stage = dump ]] && WARM=0 # make test: as soon as it steps
HOST=$(hostname)

# backend NAME: the environment and device of rxe0 or the fake HCA
backend() {
	case $1 in
	rxe)
		export IBSNAP_BACKEND=real
		DEV=rxe0 GIDX=1
		;;
	fake)
		export IBSNAP_BACKEND=fake IBSNAP_FABRIC=/dev/shm/dt-fabric
		DEV=fake0 GIDX=0
		;;
	esac
	unset IBSNAP_FAKE_FAULTS
}

registered() { "$IBSNAP" status --job "$1" | grep -q ": 2 processes"; }
stepped() { # DIR N: both ranks past step N
	local r s
	for r in 0 1; do
		s=$(cat "$1/step.$r" 2>/dev/null) || return 1
		((s >= $2)) || return 1
	done
}
results_ok() { # DIR: both ranks ended with every check passed
	grep -q ': ok$' "$1/result.0" 2>/dev/null &&
		grep -q ': ok$' "$1/result.1" 2>/dev/null
}
# complete DIR K: both trees of checkpoint K complete in DIR's manifest
complete() {
	[[ $(grep -c " $2 complete\$" "$1/$HOST/.manifest" 2>/dev/null) -eq 2 ]]
}
num() { # PATTERN FILE: the first number captured by PATTERN
	sed -n "s/$1/\\1/p" "$2" | head -1
}

# case_dir CASE BACKEND MIB: a new D/CASE (the ranks' cwd, where CRIU
# mounts a proc) and FAST/CASE; cd there, the backend set, RPID emptied
case_dir() {
	local dir=$D/$1
	rm -rf "$dir" "${FAST:?}/$1" && mkdir -p "$dir/run" "$FAST" &&
		cd "$dir" || return 1
	backend "$2"
	echo "$2 $3" >"$dir/params"
	RPID=()
}

# ranks_up CASE: both ranks of job dt-CASE ready and registered
ranks_up() {
	wait_for 300 test -e "$D/$1/run/ready.0" -a -e "$D/$1/run/ready.1" &&
		wait_for 60 registered "dt-$1"
}

# start CASE BACKEND MIB: the two ranks in D/CASE, job dt-CASE; RPID holds
# the two ibsnap run
start() {
	local c=$1 dir=$D/$1 r
	case_dir "$1" "$2" "$3" || return 1
	for r in 0 1; do
		IBSNAP_FAKE_NODE=n$r timeout -k 5 "$T" "$IBSNAP" run --job "dt-$c" \
			-- "$MEMJOB" "$r" "$dir/run" "$3" "$RATE" "$DEV" "$GIDX" \
			</dev/null >"$dir/rank$r.log" 2>&1 &
		RPID+=($!)
	done
	ranks_up "$c" && wait_for 60 stepped "$dir/run" "$WARM"
}

# kill_job [nowait]: the job dies (its inits, children of the ibsnap run
# under each timeout, are killed); the agents exit (waited for unless
# nowait: a dying rxe job took 14 s under TCG)
kill_job() {
	local p a
	for p in "${RPID[@]}"; do
		for a in $(pgrep -P "$p"); do
			kill -9 $(pgrep -P "$a" -x ibsnap-init) 2>/dev/null
		done
	done
	[[ ${1:-} = nowait ]] || wait "${RPID[@]}" 2>/dev/null
}

# checkpoint CASE MODE K: checkpoint K of the job in mode a, b or c; its
# output in D/CASE/ck.MODE; waits for the copy to DIR; appends a row
# "backend MiB mode downtime total predump dump flush image-MiB" to
# D/rows (ms; flush: from the checkpoint's end until DIR's manifest calls
# both trees complete, polled every 0.2 s)
checkpoint() {
	local c=$1 m=$2 k=$3 dir=$D/$1 out=$D/$1/ck.$2 opts=() rc=0 t0 fl=0
	case $m in
	b) opts=(--stage "$FAST/$c") ;;
	c) opts=(--stage "$FAST/$c" --predump) ;;
	esac
	"$IBSNAP" checkpoint --job "dt-$c" --dir "$dir/img" "${opts[@]}" \
		>"$out" 2>&1 || rc=$?
	t0=$(date +%s%N)
	ok "$c ($m): checkpoint $k mid-run ${opts[*]}" $rc "$out" \
		"$dir"/img/*/*failed.log "$FAST/$c"/*/*failed.log || return 1
	ok "$c ($m): checkpoint $k complete in DIR" \
		"$(rc wait_for "$T" complete "$dir/img" "$k")" "$out" \
		"$dir/rank0.log" || return 1
	[[ $m = a ]] || fl=$((($(date +%s%N) - t0) / 1000000))
	logs_dumped "$dir" "$k"
	# one word per field ("-": none), so that the columns stay in place
	echo "$(cat "$dir/params") $m $(num '^downtime \([0-9.]*\) ms$' "$out")" \
		"$(num '.*(\([0-9.]*\) ms)$' "$out")" \
		"$(num '^  predump *\([0-9.]*\) ms.*' "$out")" \
		"$(num '^  dump *\([0-9.]*\) ms$' "$out")" "$fl" \
		"$([[ $stage = bench ]] && du -sm "$dir/img/$HOST" | cut -f1)" |
		awk '{ $0 = $0; gsub(/  +/, " - "); print }' >>"$D/rows"
}

# logs_dumped DIR K: keep the ranks' log files as checkpoint K dumped them.
# CRIU restores a file by its path and refuses one whose size changed ("has
# bad size"), and a restarted run appends to them (the fake HCA's
# "reclaiming port slot" lines): before each restart they are put back.
logs_dumped() {
	local r
	for r in 0 1; do
		cp "$1/rank$r.log" "$1/rank$r.log.ck$2"
	done
}

# logs_as_dumped DIR K FROM: the ranks' logs as checkpoint K dumped them
# (what the last run wrote kept as rankR.log.before-FROM)
logs_as_dumped() {
	local r
	for r in 0 1; do
		[[ -e $1/rank$r.log.ck$2 ]] || continue
		mv "$1/rank$r.log" "$1/rank$r.log.before-$3"
		cp "$1/rank$r.log.ck$2" "$1/rank$r.log"
	done
}

# restart CASE FROM [OPTS...]: restart the job's newest complete
# checkpoint; FROM (stage or dir) is where restart must take it from; the
# job runs on, is told to stop and must end with every check passed
restart() {
	local c=$1 from=$2 dir=$D/$1 rc=0 pid log
	shift 2
	log=$dir/restart.$from.log
	cd "$dir" || return 1
	backend "$(cut -d' ' -f1 "$dir/params")"
	rm -f "$dir"/run/{stop,result.0,result.1}
	"$IBSNAP" restart --dry-run --dir "$dir/img" "$@" >"$log.pick" 2>&1
	ok "$c: restart takes the checkpoint from the $from" \
		"$(rc grep -q "^checkpoint [0-9]* from .* ($from)\$" "$log.pick")" \
		"$log.pick" || return 1
	logs_as_dumped "$dir" "$(head -1 "$log.pick" | cut -d' ' -f2)" "$from"
	timeout -k 5 "$T" "$IBSNAP" restart --dir "$dir/img" "$@" </dev/null \
		>"$log" 2>&1 &
	pid=$!
	ok "$c: restarted from the $from, both ranks back and stepping" \
		"$(rc wait_for 300 registered "dt-$c")" "$log" || {
		kill "$pid"
		return 1
	}
	wait_for 60 stepped "$dir/run" "$(($(cat "$dir/run/step.0") + 20))"
	[[ -n ${AFTER_RESTART:-} ]] && "$AFTER_RESTART" "$c"
	touch "$dir/run/stop"
	wait "$pid" || rc=$?
	ok "$c: after the restart from the $from both ranks end: every page and message checked" \
		"$(rc test "$rc" = 0 -a "$(rc results_ok "$dir/run")" = 0)" \
		"$log" "$dir"/run/result.* "$dir/rank0.log" "$dir/rank1.log"
	cat "$dir"/run/result.* 2>/dev/null | sed 's/^/     /'
}

# the flusher killed mid-copy: DIR keeps the older checkpoint, restart
# from DIR never takes the half copy
flusher_killed() {
	local c=$1 k=$2 dir=$D/$1 out=$D/$1/ck.killed fl
	export IBSNAP_FLUSH_HOLD=$D/hold
	touch "$IBSNAP_FLUSH_HOLD"
	"$IBSNAP" checkpoint --job "dt-$c" --dir "$dir/img" --stage "$FAST/$c" \
		>"$out" 2>&1
	logs_dumped "$dir" "$k"
	wait_for 60 eval '[[ -n $(pgrep -x ibsnap-flush) ]]'
	fl=$(pgrep -x ibsnap-flush)
	[[ -n $fl ]] && kill -9 $fl
	rm -f "$IBSNAP_FLUSH_HOLD"
	unset IBSNAP_FLUSH_HOLD
	"$IBSNAP" restart --dry-run --dir "$dir/img" >"$out.pick" 2>&1
	ok "$c: a flusher killed mid-copy: restart from DIR takes checkpoint $((k - 1)), never $k" \
		"$(rc test -n "$fl" -a "$(head -1 "$out.pick")" = \
			"checkpoint $((k - 1)) from $dir/img (dir)")" \
		"$out" "$out.pick" "$dir/img/$HOST/.manifest"
}

# ---- periodic chained checkpoints (ibsnap run --dir --predump --interval):
# rank 0's ibsnap run is the driver, checkpoint N+1 of each tree chains on
# its checkpoint N (only the pages dirtied since)

# start_periodic CASE BACKEND MIB INTERVAL: as start, but rank 0's ibsnap
# run takes the checkpoints: --dir D/CASE/img --stage FAST/CASE --predump
# --interval INTERVAL --keep 3.  Each rank's output reaches rankR.log
# through a pipe (the guest has no /dev/fd for a process substitution):
# the driver writes its reports after each dump, and CRIU refuses to
# restore a file whose size changed, while a pipe to the old agent is
# replaced by restart's own.  RPID: the timeout of each ibsnap run.
start_periodic() {
	local c=$1 dir=$D/$1 r per
	case_dir "$1" "$2" "$3" || return 1
	for r in 0 1; do
		per=()
		[[ $r = 0 ]] && per=(--dir "$dir/img" --stage "$FAST/$c"
			--predump --interval "$4" --keep 3)
		(
			IBSNAP_FAKE_NODE=n$r timeout -k 5 "$T" "$IBSNAP" run \
				--job "dt-$c" "${per[@]}" -- "$MEMJOB" "$r" \
				"$dir/run" "$3" "$RATE" "$DEV" "$GIDX" </dev/null 2>&1 &
			echo $! >"$dir/rpid.$r"
			wait
		) | cat >"$dir/rank$r.log" &
		wait_for 10 test -s "$dir/rpid.$r"
		RPID+=("$(cat "$dir/rpid.$r")")
	done
	ranks_up "$c"
}

# inits PID: the job inits (ibsnap-init) under PID, at any depth
inits() {
	local k
	for k in $(pgrep -P "$1"); do
		if [[ $(cat "/proc/$k/comm" 2>/dev/null) == ibsnap-init* ]]; then
			echo "$k"
		else
			inits "$k"
		fi
	done
}

# done_n CASE: periodic checkpoints the driver reports done
done_n() {
	grep -c '^ibsnap run: checkpoint (interval) into .* done$' \
		"$D/$1/rank0.log" 2>/dev/null
}
whole() { complete "$D/$1/img/ckpt-$2" "$(ckpt_of "$1" "$2")"; }
ckpt_of() { # CASE N: the coordinator's checkpoint of ckpt-N
	sed -n 's/^ckpt=//p' "$D/$1/img/ckpt-$2/$HOST"/*/ibsnap.meta 2>/dev/null |
		head -1
}

# chain_rows CASE: one line per periodic checkpoint that was done, from the
# driver's reports: "N downtime predump dump MiB-written MiB-pages full|on-K"
chain_rows() {
	awk '
	/^ibsnap run: checkpoint \(interval\) into .*ckpt-[0-9]+$/ {
		n = $NF; sub(/.*ckpt-/, "", n); down = pre = dump = mib = pg = kind = "-" }
	/^  predump / { pre = $2 }
	/^  dump / { dump = $2 }
	/^downtime / { down = $2 }
	/^image .* MiB written/ { mib = $2; pg = $7
		kind = $0 ~ /chained on checkpoint/ ? "on-" $(NF - 4) : "full" }
	/^ibsnap run: checkpoint \(interval\) into .* done$/ {
		print n, down, pre, dump, mib, pg, kind }' "$D/$1/rank0.log"
}

# chain CASE BACKEND MIB INTERVAL K [sizes]: the job checkpointed by its
# driver until ckpt-K is whole in DIR; ckpt-1 full, 2..K each chained on
# the one before (with "sizes": each writing less than half of ckpt-1);
# killed
chain() {
	local c=$1 dir=$D/$1 k=$5 n img rows kinds links want
	start_periodic "$c" "$2" "$3" "$4"
	ok "$c: both ranks of the $3 MiB job run on $2 (rank 0 checkpointed every $4)" $? \
		"$dir/rank0.log" "$dir/rank1.log" || {
		kill_chain
		return 1
	}
	ok "$c: $k periodic checkpoints, ckpt-$k whole in DIR" \
		"$(rc wait_for "$T" eval '[[ $(done_n "$c") -ge $k ]] && whole "$c" $k')" \
		"$dir/rank0.log" || {
		kill_chain
		return 1
	}
	kill_chain nowait
	rows=$dir/chain.rows
	chain_rows "$c" | tee "$rows" | sed 's/^/     ckpt-/'
	img=$dir/img
	ok "$c: each image holds its pre-dump (TREE/parent -> predump)" \
		"$(rc test "$(for ((n = 1; n <= k; n++)); do
			readlink "$img/ckpt-$n/$HOST"/*/parent; done | sort -u)" = predump)" \
		"$dir/rank0.log"
	kinds=full links=ok
	for ((n = 2; n <= k; n++)); do
		kinds="$kinds on-$(ckpt_of "$c" $((n - 1)))"
		want=$(cd "$img/ckpt-$((n - 1))/$HOST" && for t in *; do
			echo "../../../../ckpt-$((n - 1))/$HOST/$t"; done | sort -u)
		[[ $(readlink "$img/ckpt-$n/$HOST"/*/predump/parent | sort -u) == "$want" ]] ||
			links=bad
	done
	ok "$c: ckpt-1 full; ckpt-2..$k each chained on the one before (relative links, in DIR too)" \
		"$(rc test "$(awk -v k="$k" '$1 <= k { printf "%s ", $7 }' "$rows")" = \
			"$kinds " -a "$links" = ok)" "$rows" "$dir/rank0.log"
	if [[ ${6:-} = sizes ]]; then
		ok "$c: ckpt-2..$k each write less than half of ckpt-1" \
			"$(rc awk -v k="$k" '$1 == 1 { f = $5 } $1 >= 2 && $1 <= k { n++; if ($5 * 2 >= f) bad++ }
				END { exit !(f > 0 && n == k - 1 && !bad) }' "$rows")" "$rows"
		for ((n = 1; n <= k; n++)); do
			echo "     ckpt-$n in DIR: $(du -sm "$img/ckpt-$n/$HOST" | cut -f1) MiB (du, its own files)"
		done | tee -a "$dir/chain.du"
	fi
	echo "$k" >"$dir/dumped"
}

# kill_chain [nowait]: the job's inits (under rank 0's driver and agent, or
# rank 1's ibsnap run) killed; the ibsnap runs end
kill_chain() {
	local p
	for p in "${RPID[@]}"; do
		kill -9 $(inits "$p") 2>/dev/null
	done
	[[ ${1:-} = nowait ]] || wait_for 120 gone "${RPID[@]}"
}
gone() { # PID...: none of them runs
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}

# picked_chained PICK DIR K: restart --dry-run's choice (PICK) is from DIR,
# ckpt-K or later, an image with a parent
picked_chained() {
	local t n
	grep -q "^checkpoint [0-9]* from $2 (dir)\$" "$1" || return 1
	t=$(sed -n 2p "$1")
	n=${t#"$2"/ckpt-}
	n=${n%%/*}
	[[ $n =~ ^[0-9]+$ ]] && ((n >= $3)) && grep -q '^parent_ckpt=' "$t/ibsnap.meta"
}

# full_after_restart CASE: the restored job (its agents are ibsnap
# restart's: no chain of their own) checkpointed into a ckpt-N with a
# chain file, staged: a full image, a new chain
full_after_restart() {
	local c=$1 dir=$D/$1 out=$D/$1/ck.after n
	n=$(ls "$dir/img" | sed -n 's/^ckpt-//p' | sort -n | tail -1)
	n=$((n + 1))
	mkdir -p "$dir/img/ckpt-$n" "$FAST/$c" &&
		echo "max 4" >"$dir/img/ckpt-$n/.chain"
	"$IBSNAP" checkpoint --job "dt-$c" --dir "$dir/img/ckpt-$n" \
		--stage "$FAST/$c/ckpt-$n" --predump >"$out" 2>&1
	ok "$c: after the restart a --predump checkpoint (chain file there) is full: a new chain" \
		"$(rc grep -q '^image .*, 2 trees, full$' "$out")" "$out"
}

# chain_restore CASE: after the reboot, restart takes the newest chained
# image in DIR (FAST is gone) and the job ends with every page checked
chain_restore() {
	local c=$1 dir=$D/$1 pick k
	ok "$c: checkpointed in the previous boot" "$(rc test -e "$dir/dumped")" ||
		return 1
	cd "$dir" || return 1
	pick=$dir/chain.pick
	"$IBSNAP" restart --dry-run --dir "$dir/img" --stage "$FAST/$c" >"$pick" 2>&1
	k=$(cat "$dir/dumped")
	ok "$c: restart takes a chained image from DIR (ckpt-$k or later: parent_ckpt in its meta)" \
		"$(rc picked_chained "$pick" "$dir/img" "$k")" "$pick"
	# (make test's small form: no further checkpoint, for its time)
	if [[ $c = chain ]]; then
		AFTER_RESTART=full_after_restart restart "$c" dir --stage "$FAST/$c"
	else
		restart "$c" dir --stage "$FAST/$c"
	fi
}

case $stage in
chain)
	mkdir -p "$D"
	RATE=${IBSNAP_DT_RATE:-1}
	chain chain rxe "${IBSNAP_DT_CHAIN_MIB:-64}" "${IBSNAP_DT_CHAIN_T:-40s}" 3 sizes
	;;
chain-restore)
	chain_restore chain
	;;
dump)
	# the periodic chained checkpoints, small: R = 8 MiB at 2 MiB/s, two
	# back to back (one every second: an interval that comes during a
	# checkpoint is skipped), the second chained on the first; sizes not
	# compared (between two the job rewrites its 8 MiB)
	mkdir -p "$D"
	chain rxe8 rxe 8 1s 2
	;;
restore)
	chain_restore rxe8
	;;
bench)
	mkdir -p "$D"
	: >"$D/rows"
	for be in rxe fake; do
		for mib in ${IBSNAP_DT_SIZES:-64 256}; do
			c=$be$mib
			start "$c" "$be" "$mib"
			ok "$c: both ranks of the $mib MiB job run" $? \
				"$D/$c/rank0.log" "$D/$c/rank1.log" || {
				kill_job
				continue
			}
			checkpoint "$c" a 1 && wait_for 120 stepped "$D/$c/run" \
				"$(($(cat "$D/$c/run/step.0") + 20))" &&
				checkpoint "$c" b 2 && wait_for 120 stepped "$D/$c/run" \
				"$(($(cat "$D/$c/run/step.0") + 20))" &&
				checkpoint "$c" c 3 && touch "$D/$c/dumped"
			# once: a staged checkpoint 4 whose flusher is killed
			[[ -e $D/$c/dumped && $be = fake && ! -e $D/killed ]] &&
				touch "$D/killed" && flusher_killed "$c" 4
			kill_job
			[[ -e $D/$c/dumped ]] && restart "$c" stage --stage "$FAST/$c"
		done
	done
	;;
calib)
	# how much slower this machine is than another: the same copy of
	# 256 MiB within tmpfs (what a staged dump writes) and sha256 of
	# 64 MiB (CPU), each the best of 3, in seconds
	mkdir -p "$D" && cal=$(mktemp -d /tmp/ibsnap-calib.XXXXXX)
	head -c $((256 << 20)) /dev/urandom >"$cal/src"
	best() {
		local i t b=
		for i in 1 2 3; do
			t=$(date +%s%N)
			"$@" >/dev/null
			t=$((($(date +%s%N) - t) / 1000000))
			[[ -z $b || $t -lt $b ]] && b=$t
			rm -f "$cal/dst"
		done
		echo "$b"
	}
	cp_ms=$(best cp "$cal/src" "$cal/dst")
	sha_ms=$(best eval "head -c $((64 << 20)) $cal/src | sha256sum")
	rm -rf "$cal"
	echo "calib $(uname -n) ($(uname -r)) cp256 ${cp_ms} ms sha64 ${sha_ms} ms" |
		tee -a "$D/calib"
	ok "calibration: cp of 256 MiB on tmpfs ${cp_ms} ms, sha256 of 64 MiB ${sha_ms} ms" 0
	;;
bench-restore)
	for d in "$D"/*/; do
		c=$(basename "$d")
		# (chain: its own stage, chain-restore)
		[[ -e $d/dumped && $c != chain && $c =~ ${IBSNAP_DT_ONLY:-.} ]] ||
			continue
		restart "$c" dir --stage "$FAST/$c"
	done
	;;
*) echo "downtime.sh: unknown stage $stage" >&2 && exit 2 ;;
esac
finish
