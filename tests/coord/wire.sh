#!/bin/bash
# SPDX-License-Identifier: MIT
# Coordinator messages dropped, sent twice or delayed (IBSNAP_COORD_FAULT,
# coord/wfault.h), with the stand-in criu.  Each case is a job of N peers
# under one ibsnap run with its own ibsnapd, every process of it (daemon,
# agent, peers) started with the fault, limited to the first matching
# message of each process (n=1), so the job's first checkpoint meets it and
# its second does not:
#  - a dropped message: the checkpoint fails after the phase (or dump)
#    timeout, naming who did not finish what; no image restart would take
#    (or, after the commit, the complete image only); the peers roll back,
#    come back, and the second checkpoint works;
#  - a message sent twice is ignored by its receiver (a handler never runs
#    twice, a dump is not done twice): both checkpoints work;
#  - every message delayed: both checkpoints work;
#  - a lost CKPT_END: ibsnap checkpoint gives up after a silence derived
#    from the daemon's timeouts (or its --timeout), saying the outcome is
#    unknown and to see ibsnap status;
#  - a spec not understood injects nothing and says so;
#  - a job of two trees (two ibsnap run) whose WAKE is lost to one: the
#    other tree is committed alone, and restart takes no checkpoint with a
#    tree missing or at another checkpoint (it takes an older whole one,
#    or refuses naming the tree).
# Then the job ends with every peer's checks passed (exit status 0).
# Cases run a few at a time: most of the time is spent in timeouts.
source "$(dirname "$0")/lib.sh"

N=2
# short enough for a quick test, long enough for a clean phase on a
# loaded host
export IBSNAP_CRIU=$FAKE_CRIU IBSNAP_PHASE_TIMEOUT=2 IBSNAP_DUMP_TIMEOUT=3
# a process nobody can wake (its agent lost CKPT_BEGIN) tries the daemon
export IBSNAP_WAKE_TIMEOUT=4
TMO="within 2 s"

# no tree of DIR that restart would take
no_image() {
	[[ -z $(ls "$1/$HOST" 2>/dev/null | grep -v dump-failed) ]] &&
		! "$IBSNAP" restart --dry-run --dir "$1" >/dev/null 2>&1
}
# the image of checkpoint $2 in DIR, taken by restart
image_of() {
	"$IBSNAP" restart --dry-run --dir "$1" >/dev/null 2>&1 &&
		grep -qx "ckpt=$2" "$1/$HOST"/*/ibsnap.meta
}
# the job's one agent is attached (after a REGISTER or JOB_OPEN sent twice,
# refused as unexpected, its sender reconnects)
has_agent() {
	"$IBSNAP" status --json --job "$1" 2>/dev/null | grep -q '"agents":1,'
}
# no peer ran a phase's handler more often than the job ran that phase
no_handler_twice() {
	local f p
	for f in "$1"/peer-*.log; do
		for p in quiesce drain release rebuild resume; do
			[[ $(grep -c "^$p-enter$" "$f") -le 2 ]] || return 1
		done
	done
}

# what a case's processes must not log: the lost WAKE's processes are woken
# by their agent at the failed CKPT_END, and those of an agent that lost
# CKPT_BEGIN by their agent at the WAKE (which names them), not by their
# own wake timeout
declare -A NOT_LOGGED=([wake-drop]="no wake came" [begin-drop]="no wake came")
# how a case's first checkpoint is asked for: the controller's own view of
# the daemon's timeouts (its wait is derived from them: 1.5 * 1 s + 1 s),
# or its --timeout
declare -A CK_ENV=([ckpt-end-drop]="IBSNAP_PHASE_TIMEOUT=1 IBSNAP_DUMP_TIMEOUT=1")
declare -A CK_ARGS=([ckpt-end-drop-t]="--timeout 1.5")
declare -A CK_WAIT=([ckpt-end-drop]=2.5 [ckpt-end-drop-t]=1.5)

# one NAME SPEC OUTCOME [TEXT]: OUTCOME is ok, fail (TEXT in the failed
# checkpoint's report, no image), fail-committed (TEXT, and the image
# was committed before the failure) or unknown (the controller gives up
# waiting, saying the outcome is unknown and where to see it; the
# checkpoint was done).  Check lines go to stdout.
one() {
	local name=$1 spec=$2 outcome=$3 text=$4
	local d=$T/peers-$name job=w-$name rc
	mkdir -p "$d"
	export IBSNAP_COORD_SOCK=$d/ibsnapd.sock FAKE_CRIU_CTL=$d
	local logs=("$d/ck1" "$d/run.out" "$d/ibsnapd.log")
	ok_more() { :; }
	IBSNAP_COORD_FAULT=$spec start_job "$d" $N --job "$job"
	wait_for 300 has_procs "$job" $N && wait_for 300 has_agent "$job"
	ok "[$name] $N peers and the agent registered" $? "${logs[@]}"
	# shellcheck disable=SC2086 # the words of CK_ENV, CK_ARGS
	env ${CK_ENV[$name]:-} "$IBSNAP" checkpoint --job "$job" --dir "$d/img" \
		${CK_ARGS[$name]:-} >"$d/ck1" 2>&1
	rc=$?
	case $outcome in
	ok)
		[[ $rc -eq 0 ]] && image_of "$d/img" 1
		ok "[$name] the checkpoint works" $? "${logs[@]}"
		;;
	fail)
		[[ $rc -eq 1 ]] && grep -q -- "$text" "$d/ck1" &&
			grep -q "the job goes on" "$d/ck1" && no_image "$d/img"
		ok "[$name] the checkpoint fails: '$text'; no image" $? \
			"${logs[@]}" <(ls -lAR "$d/img")
		;;
	fail-committed)
		[[ $rc -eq 1 ]] && grep -q -- "$text" "$d/ck1" &&
			image_of "$d/img" 1
		ok "[$name] the checkpoint fails after its commit: '$text'; the image is whole" $? \
			"${logs[@]}" <(ls -lAR "$d/img")
		;;
	unknown)
		[[ $rc -eq 1 ]] &&
			grep -q "no word from the coordinator for ${CK_WAIT[$name]} s .*: the outcome is unknown: see ibsnap status --job $job$" "$d/ck1" &&
			image_of "$d/img" 1 &&
			"$IBSNAP" status --job "$job" | grep -q "last checkpoint: 1 at .*, ok"
		ok "[$name] ibsnap checkpoint gives up after ${CK_WAIT[$name]} s: outcome unknown, see ibsnap status (which says checkpoint 1 ok; the image is whole)" $? \
			"${logs[@]}" <("$IBSNAP" status --job "$job")
		;;
	esac
	local what=""
	[[ $spec == *type=* ]] && what=${spec##*type=} && what=${what/:/(} &&
		[[ $what == *"("* ]] && what+=")"
	grep -q "wire fault\[[0-9]*\]: .*$what" "$d/run.out" "$d/ibsnapd.log"
	ok "[$name] the fault was injected" $? "$d/run.out" "$d/ibsnapd.log"
	wait_for 300 has_procs "$job" $N && wait_for 300 has_agent "$job" &&
		kill -0 "$JOB_PID"
	ok "[$name] the job runs on, its $N peers registered" $? "${logs[@]}"
	"$IBSNAP" checkpoint --job "$job" --dir "$d/img" >"$d/ck2" 2>&1 &&
		image_of "$d/img" 2
	ok "[$name] the next checkpoint works" $? "$d/ck2" "$d/run.out" "$d/ibsnapd.log"
	stop_job "$d" && [[ $(logs_with "$d" "^exit$") -eq $N ]] &&
		no_handler_twice "$d" && [[ $(grep -c '^dump ' "$d/args") -le 2 ]] &&
		! grep -q "cannot move" "$d/run.out" &&
		{ [[ -z ${NOT_LOGGED[$name]:-} ]] ||
			! grep -q "${NOT_LOGGED[$name]}" "$d/run.out"; }
	ok "[$name] the job ends, its peers' checks passed; no handler or dump ran twice" $? \
		"$d/run.out" <(phases "$d") "$d/args"
	[[ -f $IBSNAP_COORD_SOCK.lock ]] && kill "$(cat "$IBSNAP_COORD_SOCK.lock")" 2>/dev/null
	return 0
}

CASES=(
	# registration: refused as unexpected, the sender comes back
	"register-dup      dup=1,n=1,type=REGISTER      ok"
	"job-open-dup      dup=1,n=1,type=JOB_OPEN      ok"
	"quiesce-drop      drop=1,n=1,type=PHASE:quiesce fail did not finish quiesce $TMO"
	# DRAIN
	"drain-phase-drop  drop=1,n=1,type=PHASE:drain  fail  did not finish drain $TMO"
	"drain-ack-drop    drop=1,n=1,type=ACK:drain    fail  did not finish drain $TMO"
	"drain-phase-dup   dup=1,n=1,type=PHASE:drain   ok"
	"drain-ack-dup     dup=1,n=1,type=ACK:drain     ok"
	"drain-put-dup     dup=1,n=1,type=PUT           ok"
	"drain-all-dup     dup=1,n=1,type=ALL           ok"
	# RELEASE and the dump
	"begin-drop        drop=1,n=1,type=CKPT_BEGIN   fail  the dump on .* failed: no CKPT_BEGIN came for checkpoint 1"
	"release-drop      drop=1,n=1,type=PHASE:release fail did not finish release $TMO"
	"detach-drop       drop=1,n=1,type=DETACH       fail  did not finish release $TMO"
	"release-dup       dup=1,n=1,type=PHASE:release ok"
	"dump-drop         drop=1,n=1,type=DUMP         fail  did not finish dump within 3 s"
	"dump-done-drop    drop=1,n=1,type=DUMP_DONE    fail  did not finish dump within 3 s"
	"dump-dup          dup=1,n=1,type=DUMP          ok"
	"dump-done-dup     dup=1,n=1,type=DUMP_DONE     ok"
	# WAKE
	"wake-drop         drop=1,n=1,type=WAKE         fail  did not finish rejoin $TMO"
	"wake-done-drop    drop=1,n=1,type=WAKE_DONE    fail-committed did not finish rejoin $TMO"
	"wake-dup          dup=1,n=1,type=WAKE          ok"
	# REBUILD
	"rebuild-drop      drop=1,n=1,type=PHASE:rebuild fail-committed did not finish rebuild $TMO during rebuild; its image in .* was committed before"
	"rebuild-dup       dup=1,n=1,type=PHASE:rebuild ok"
	# RESUME
	"resume-drop       drop=1,n=1,type=PHASE:resume fail-committed did not finish resume $TMO during resume; its image in .* was committed before"
	"resume-ack-drop   drop=1,n=1,type=ACK:resume   fail-committed did not finish resume $TMO during resume; its image in .* was committed before"
	"resume-dup        dup=1,n=1,type=PHASE:resume  ok"
	# CKPT_END (the controller's, sent first)
	"ckpt-end-drop     drop=1,n=1,type=CKPT_END     unknown"
	"ckpt-end-drop-t   drop=1,n=1,type=CKPT_END     unknown"
	# every message of every process, 20 ms late
	"delay             delay_us=20000               ok"
)

# two trees of one job (two ibsnap run) and a WAKE lost to one of them: the
# other commits its tree alone.  Restart takes no checkpoint with a tree of
# the job missing or at another checkpoint (each image names the job's
# trees on its host): it falls back to an older whole one, or refuses.
trees_case() {
	local d=$T/peers-trees job=w-trees a b x y rc
	mkdir -p "$d/a" "$d/b" "$d/img/ckpt-1" "$d/img/ckpt-2" "$d/img/ckpt-3"
	export IBSNAP_COORD_SOCK=$d/ibsnapd.sock FAKE_CRIU_CTL=$d
	ok_more() { :; }
	IBSNAP_COORD_FAULT=drop=1,n=1,type=WAKE start_job "$d/a" $N --job "$job"
	a=$JOB_PID
	wait_for 300 has_procs "$job" $N
	IBSNAP_COORD_FAULT=drop=1,n=1,type=WAKE start_job "$d/b" $N --job "$job"
	b=$JOB_PID
	wait_for 300 has_procs "$job" $((2 * N)) &&
		wait_for 300 eval "\"$IBSNAP\" status --json --job $job | grep -q '\"agents\":2,'"
	ok "[trees] two ibsnap run of one job: $((2 * N)) peers, 2 agents" $? \
		"$d/a/run.out" "$d/b/run.out"
	"$IBSNAP" checkpoint --job "$job" --dir "$d/img/ckpt-1" >"$d/ck1" 2>&1
	rc=$?
	x=$(ls "$d/img/ckpt-1/$HOST" 2>/dev/null | grep -v dump-failed)
	[[ $rc -eq 1 ]] && grep -q "did not finish rejoin" "$d/ck1" &&
		[[ $(wc -w <<<"$x") -eq 1 ]] && grep -qx "job_tree=$x" "$d/img/ckpt-1/$HOST/$x/ibsnap.meta" &&
		[[ $(grep -c "^job_tree=" "$d/img/ckpt-1/$HOST/$x/ibsnap.meta") -eq 2 ]]
	ok "[trees] a lost WAKE: the checkpoint fails, one tree committed alone (its image names both)" $? \
		"$d/ck1" <(ls -lAR "$d/img") "$d/ibsnapd.log"
	y=$(grep "^job_tree=" "$d/img/ckpt-1/$HOST/$x/ibsnap.meta" | grep -v "=$x$" | cut -d= -f2)
	"$IBSNAP" restart --dry-run --dir "$d/img" >"$d/rs1" 2>&1
	rc=$?
	[[ $rc -eq 1 ]] &&
		grep -q "checkpoint 1 in $d/img/ckpt-1/$HOST: tree $y of it has no complete image there: not taken" "$d/rs1"
	ok "[trees] restart refuses that checkpoint, naming the missing tree" $? "$d/rs1"
	wait_for 300 has_procs "$job" $((2 * N))
	"$IBSNAP" checkpoint --job "$job" --dir "$d/img/ckpt-2" >"$d/ck2" 2>&1 &&
		"$IBSNAP" checkpoint --job "$job" --dir "$d/img/ckpt-3" >"$d/ck3" 2>&1
	ok "[trees] the next two checkpoints work" $? "$d/ck2" "$d/ck3"
	# checkpoint 3 as the lost WAKE left checkpoint 1: tree y missing
	rm -rf "${d:?}/img/ckpt-3/$HOST/$y"
	sed -i "/^$y /d" "$d/img/ckpt-3/$HOST/.manifest"
	"$IBSNAP" restart --dry-run --dir "$d/img" >"$d/rs2" 2>&1 &&
		grep -qx "checkpoint 2 from $d/img (dir)" "$d/rs2" &&
		grep -qx "$d/img/ckpt-2/$HOST/$x" "$d/rs2" && grep -qx "$d/img/ckpt-2/$HOST/$y" "$d/rs2" &&
		grep -q "checkpoint 3 in $d/img/ckpt-3/$HOST: tree $y of it has no complete image there: not taken" "$d/rs2"
	ok "[trees] ... the newest whole checkpoint is taken (2, both trees), 3 passed over, saying why" $? "$d/rs2"
	# one directory: tree x at checkpoint 3, tree y at 2
	mkdir -p "$d/flat/$HOST"
	cp -a "$d/img/ckpt-3/$HOST/$x" "$d/img/ckpt-2/$HOST/$y" "$d/flat/$HOST/"
	printf '%s 3 complete\n%s 2 complete\n' "$x" "$y" >"$d/flat/$HOST/.manifest"
	"$IBSNAP" restart --dry-run --dir "$d/flat" >"$d/rs3" 2>&1
	rc=$?
	[[ $rc -eq 1 ]] &&
		grep -q "checkpoint 3 in $d/flat/$HOST: tree $y of it is at checkpoint 2 there: not taken" "$d/rs3" &&
		grep -q "checkpoint 2 in $d/flat/$HOST: tree $x of it is at checkpoint 3 there: not taken" "$d/rs3" &&
		grep -q "$d/flat/$HOST/$x: checkpoint 3 is not whole in $d/flat/$HOST: .*: refused" "$d/rs3"
	ok "[trees] trees at checkpoints 3 and 2 in one directory: refused, saying which is where" $? "$d/rs3"
	# an image from before the job_tree lines: taken alone, as before
	sed -i '/^job_tree=/d' "$d/flat/$HOST"/*/ibsnap.meta
	"$IBSNAP" restart --dry-run --dir "$d/flat" >"$d/rs4" 2>&1 &&
		grep -qx "$d/flat/$HOST/$x" "$d/rs4"
	ok "[trees] ... images without job_tree lines (older): the newest tree taken, as before" $? "$d/rs4"
	touch "$d/a/stop" "$d/b/stop"
	wait "$a" && wait "$b"
	ok "[trees] the job's two trees end, their peers' checks passed" $? "$d/a/run.out" "$d/b/run.out"
	[[ -f $IBSNAP_COORD_SOCK.lock ]] && kill "$(cat "$IBSNAP_COORD_SOCK.lock")" 2>/dev/null
	return 0
}

# a spec with a typo injects nothing, and says so (a test must not pass
# for want of its fault)
mkdir -p "$T/peers-typo"
IBSNAP_COORD_SOCK=$T/peers-typo/ibsnapd.sock IBSNAP_COORD_FAULT=drop=1,type=PHAZE \
	"$IBSNAP" run --no-preload --job typo -- true >"$T/typo" 2>&1
rc=$?
[[ $rc -eq 0 ]] && grep -q "IBSNAP_COORD_FAULT=drop=1,type=PHAZE: not understood, no faults" "$T/typo" &&
	! grep -q "dropped" "$T/typo"
ok "a fault spec not understood: said so, no fault injected" $? "$T/typo"
[[ -f $T/peers-typo/ibsnapd.sock.lock ]] && kill "$(cat "$T/peers-typo/ibsnapd.sock.lock")" 2>/dev/null
n_usage=0
for t in 0 x -1; do
	"$IBSNAP" checkpoint --no-dump --timeout "$t" >>"$T/tmo" 2>&1
	[[ $? -eq 2 ]] && n_usage=$((n_usage + 1))
done
[[ $n_usage -eq 3 ]]
ok "ibsnap checkpoint --timeout 0, x or -1: a usage error" $? "$T/tmo"

# at most PAR cases at a time (they mostly wait for timeouts); WIRE_ONLY:
# a regex of the names of the cases to run (all by default)
PAR=${WIRE_PAR:-8}
if [[ trees =~ ${WIRE_ONLY:-.} ]]; then
	(trees_case >"$T/result-trees" 2>&1) &
fi
for c in "${CASES[@]}"; do
	read -r name spec outcome text <<<"$c"
	[[ $name =~ ${WIRE_ONLY:-.} ]] || continue
	while (($(jobs -rp | wc -l) >= PAR)); do
		wait -n
	done
	(one "$name" "$spec" "$outcome" "$text" >"$T/result-$name" 2>&1) &
done
wait
for c in "${CASES[@]}" trees; do
	read -r name _ <<<"$c"
	[[ -f $T/result-$name ]] || continue
	cat "$T/result-$name"
	n_ok=$(grep -c '^ok ' "$T/result-$name")
	n_fail=$(grep -c '^FAIL ' "$T/result-$name")
	checks=$((checks + n_ok + n_fail))
	failures=$((failures + n_fail))
done
finish
