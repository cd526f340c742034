#!/bin/bash
# SPDX-License-Identifier: MIT
# Periodic checkpoints and checkpoints on a signal (ibsnap run --dir DIR
# --interval T --keep K [--stage FAST] [--predump] [--stop-on-signal]) with
# the stand-in criu: the checkpoints happen on the timer, one at a time,
# into DIR/ckpt-N (and FAST/ckpt-N); exactly K complete ones stay in each
# tier and restart takes the newest; a dump killed mid-way or refused
# leaves nothing restart would take, the job goes on and the next interval
# works; SIGUSR1 checkpoints now (and is not passed on to the job); a copy
# under way is never removed (nor a dead one's, until K newer are
# complete); with --stop-on-signal the job ends after a complete dump that
# restart accepts (exit 75), with --predump a pre-dump first; SIGTERM goes
# to the job as without --dir.
source "$(dirname "$0")/lib.sh"

N=2
P=$T/peers
DIR=$T/dir
FAST=$T/fast
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T

start_job "$P" $N --job per --interval 1s --keep 2 --dir "$DIR" --stage "$FAST"
RUN1=$JOB_PID
start_job "$T/p2" $N --job per2 --dir "$T/dir2" --stage "$T/fast2" --stop-on-signal --predump
RUN2=$JOB_PID
start_job "$T/p3" 1 --job per3
RUN3=$JOB_PID
# job 4's flusher waits after its first file while $T/hold-flush exists
IBSNAP_FLUSH_HOLD=$T/hold-flush start_job "$T/p4" 1 --job per4 --dir "$T/dir4" \
	--stage "$T/fast4" --keep 2
RUN4=$JOB_PID
wait_for 300 has_procs per $N && wait_for 300 has_procs per2 $N &&
	wait_for 300 has_procs per3 1 && wait_for 300 has_procs per4 1
ok "four jobs registered" $? "$P/run.out" "$T/p2/run.out" "$T/p3/run.out" \
	"$T/p4/run.out"

# done WHY: how many checkpoints for WHY ibsnap run reports done
done_n() { grep -c "^ibsnap run: checkpoint ($1) into .* done$" "$P/run.out"; }
at_least() { [[ $(done_n "$1") -ge $2 ]]; }
# seq_of LINE-PATTERN: N of the last ckpt-N in run.out's lines matching it
seq_of() { grep "$1" "$P/run.out" | tail -1 | sed -n 's|.*/ckpt-\([0-9]*\).*|\1|p'; }
# complete CKDIR: this host's part is a tree its manifest calls complete
complete() {
	local m=$1/$HOST/.manifest
	[[ -f $m && -n $(ls "$1/$HOST" 2>/dev/null) ]] &&
		grep -q ' complete$' "$m" 2>/dev/null &&
		! grep -v '^#' "$m" 2>/dev/null | grep -qv ' complete$'
}
# complete_list TIER: the N of TIER's complete ckpt-N, ascending
complete_list() {
	local c
	for c in "$1"/ckpt-*; do
		complete "$c" && echo "${c##*/ckpt-}"
	done | sort -n | tr '\n' ' '
}
agent() { pgrep -P "$1" -x ibsnap-agent; }
no_flush() { [[ -z $(pgrep -P "$(agent "$RUN1")" -x ibsnap-flush) ]]; }
# resumes/quiesces of every peer of job 1 equal to $1
peers_saw() { [[ $(grep -c "^$1\$" "$P"/peer-*.log | grep -c ":$2\$") -eq $N ]]; }
# trees CKDIR: this host's trees in CKDIR (directories under a final name)
trees() { find "$1/$HOST" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null; }
tree_ckpt() { sed -n 's/^ckpt=//p' "$1"/*/ibsnap.meta 2>/dev/null | head -1; }
picks() { # picks EXPECTED-FIRST-LINE restart-options...
	local want=$1
	shift
	"$IBSNAP" restart --dry-run "$@" >"$T/pick" 2>&1 &&
		[[ $(head -1 "$T/pick") == "$want" ]]
}

# --- the job's exit status passes through (no checkpoint taken: none kept)
"$IBSNAP" run --no-preload --job per5 --dir "$T/dir5" --interval 1h -- sh -c 'exit 7' \
	>"$T/run5.out" 2>&1
[[ $? -eq 7 && -z $(ls -A "$T/dir5") ]]
ok "a job that ends before any checkpoint: ibsnap run exits with its status (7)" $? "$T/run5.out"

# --- SIGUSR1 with --stop-on-signal: a complete checkpoint, then the end
kill -USR1 "$RUN2"
wait "$RUN2"
rc2=$?
[[ $rc2 -eq 75 ]] && grep -q "^ibsnap run: the job was checkpointed into $T/dir2/ckpt-1 and stopped (SIGUSR1, --stop-on-signal)" "$T/p2/run.out" &&
	complete "$T/dir2/ckpt-1" && complete "$T/fast2/ckpt-1"
ok "--stop-on-signal: SIGUSR1 checkpoints (DIR and FAST complete), ends the job, exit 75" $? "$T/p2/run.out"
wait_for 100 eval '[[ $(procs per2) -eq 0 ]]'
ok "... no process of that job is left" $? "$T/p2/run.out"
picks "checkpoint 1 from $T/dir2 (dir)" --dir "$T/dir2" &&
	[[ $(sed -n 2p "$T/pick") == "$T/dir2/ckpt-1/$HOST/"* ]]
ok "... ibsnap restart takes that checkpoint (DIR/ckpt-1)" $? "$T/pick"
# the stand-in criu logs its calls; only job 2 pre-dumps
grep -q "^pre-dump .*-D $T/fast2/ckpt-1/$HOST/" "$T/args" &&
	grep -q "^dump .*-D $T/fast2/ckpt-1/$HOST/.*--prev-images-dir" "$T/args"
ok "... --predump: pre-dumped, then a dump on top of it" $? "$T/args"

# --- a copy under way is never removed (job 4: SIGUSR1 only, --keep 2)
D4=$T/dir4
flusher4() { pgrep -P "$(agent "$RUN4")" -x ibsnap-flush; }
usr1_done() { # usr1_done N: SIGUSR1 to job 4, wait for its Nth checkpoint
	kill -USR1 "$RUN4" &&
		wait_for 300 eval '[[ $(grep -c "^ibsnap run: checkpoint (SIGUSR1) into .* done$" "$T/p4/run.out") -ge $1 ]]'
}
usr1_done 1 && wait_for 300 eval 'complete "$D4/ckpt-1"' && touch "$T/hold-flush" &&
	usr1_done 2 && wait_for 100 eval '[[ -n $(flusher4) && -d $(echo "$D4"/ckpt-2/"$HOST"/.*.flush-*) ]]' &&
	complete "$D4/ckpt-1" && [[ -d $T/fast4/ckpt-1 && -d $T/fast4/ckpt-2 ]]
ok "job 4: ckpt-2's copy held in DIR/ckpt-2; ckpt-1 complete; both in FAST" $? \
	"$T/p4/run.out" <(ls -aR "$D4")
kill -9 "$(flusher4)"
rm -f "$T/hold-flush"
wait_for 100 eval '[[ -z $(flusher4) ]]' && usr1_done 3 &&
	wait_for 300 eval 'complete "$D4/ckpt-3"' &&
	[[ -d $D4/ckpt-2 && $(complete_list "$D4") == "1 3 " ]] &&
	grep -q ' copying$' "$D4/ckpt-2/$HOST/.manifest"
ok "its flusher killed: ckpt-3 complete, ckpt-2 (copying) kept while newer than the 2nd complete" $? \
	"$T/p4/run.out" <(ls -aR "$D4")
usr1_done 4 && wait_for 300 eval '[[ $(complete_list "$D4") == "3 4 " ]]' &&
	[[ $(ls -A "$D4") == "$(printf 'ckpt-3\nckpt-4')" ]]
ok "... gone with ckpt-1 once ckpt-4 is complete: exactly ckpt-3, ckpt-4 left" $? \
	"$T/p4/run.out" <(ls -aR "$D4")
kill -TERM "$RUN4"
wait "$RUN4"

# --- the timer: three checkpoints, then one held in its dump
wait_for 300 at_least interval 3
ok "interval checkpoints happen (3 in a bounded wait)" $? "$P/run.out"
touch "$T/hold"
# held: the stand-in criu sleeps in its hold loop (a dump under way when
# the file came is not held)
held() {
	local c
	c=$(pgrep -P "$(agent "$RUN1")" -x fake-criu) && [[ -n $c ]] &&
		pgrep -P "$c" -x sleep >/dev/null
}
wait_for 300 held
ok "a checkpoint is held in its dump" $? "$P/run.out"
M=$(done_n interval)
H=$(seq_of 'checkpoint (interval) into')
wait_for 300 no_flush
[[ $H -eq $((M + 1)) && $(seq_of ' done$') -eq $M ]] && peers_saw resume "$M" &&
	peers_saw quiesce $((M + 1)) && [[ $(pgrep -P "$(agent "$RUN1")" -c -x fake-criu) -eq 1 ]]
ok "checkpoints ckpt-1..ckpt-$M done in turn, every peer resumed $M times; one dump at a time" $? \
	"$P/run.out"
wait_for 300 eval 'grep -q "still under way: this interval.s is skipped" "$P/run.out"'
ok "an interval that comes during a checkpoint is skipped, not overlapped" $? "$P/run.out"
# ibsnap run prunes DIR once it sees the copy complete
wait_for 300 eval '[[ $(complete_list "$DIR") == "$((M - 1)) $M " ]]' &&
	[[ $(complete_list "$FAST") == "$((M - 1)) $M " ]]
ok "--keep 2: exactly ckpt-$((M - 1)) and ckpt-$M complete in DIR and in FAST" $? \
	<(ls -R "$DIR" "$FAST")
[[ $(ls -d "$DIR"/ckpt-* "$FAST"/ckpt-* | wc -l) -eq 6 ]] &&
	[[ $(grep -c "^ibsnap run: removed $DIR/ckpt-" "$P/run.out") -eq $((M - 2)) ]] &&
	[[ $(grep -c "^ibsnap run: removed $FAST/ckpt-" "$P/run.out") -eq $((M - 2)) ]] &&
	[[ -z $(ls -A "$DIR" "$FAST" | grep '^\.') ]]
ok "the older $((M - 2)) removed from each tier, nothing half-removed left" $? \
	<(ls -aR "$DIR" "$FAST")
C=$(tree_ckpt "$FAST/ckpt-$M/$HOST")
picks "checkpoint $C from $FAST (stage)" --dir "$DIR" --stage "$FAST" &&
	[[ $(sed -n 2p "$T/pick") == "$FAST/ckpt-$M/$HOST/"* ]] &&
	picks "checkpoint $C from $DIR (dir)" --dir "$DIR" &&
	[[ $(sed -n 2p "$T/pick") == "$DIR/ckpt-$M/$HOST/"* ]]
ok "restart takes the newest ($C, ckpt-$M), from FAST, and from DIR alone" $? "$T/pick"

# --- the held dump killed mid-way: nothing to take, the job goes on
kill -9 "$(pgrep -P "$(agent "$RUN1")" -x fake-criu)"
wait_for 300 eval 'grep -q "^ibsnap run: checkpoint (interval) into $DIR/ckpt-$H failed (exit 1): the job goes on" "$P/run.out"'
ok "the killed dump: ibsnap run reports the checkpoint failed, the job goes on" $? "$P/run.out"
rm -f "$T/hold"
[[ -z $(trees "$FAST/ckpt-$H") && -z $(trees "$DIR/ckpt-$H") ]] &&
	picks "checkpoint $C from $FAST (stage)" --dir "$DIR" --stage "$FAST" &&
	picks "checkpoint $C from $DIR (dir)" --dir "$DIR"
ok "... no tree of ckpt-$H anywhere: restart still takes $C" $? "$T/pick" \
	<(ls -aR "$FAST/ckpt-$H" "$DIR/ckpt-$H")
wait_for 300 at_least interval $((M + 1)) && wait_for 300 no_flush &&
	[[ $(seq_of ' done$') -eq $((H + 1)) ]] && kill -0 "$RUN1" &&
	wait_for 300 eval '[[ $(complete_list "$DIR") == "$M $((H + 1)) " ]]' &&
	[[ ! -e $DIR/ckpt-$H && ! -e $FAST/ckpt-$H ]]
ok "the next interval works (ckpt-$((H + 1))); the failed ckpt-$H is gone" $? \
	"$P/run.out" <(ls -R "$DIR")
C2=$(tree_ckpt "$DIR/ckpt-$((H + 1))/$HOST")
picks "checkpoint $C2 from $DIR (dir)" --dir "$DIR" && [[ $C2 -gt $C ]]
ok "restart takes it ($C2)" $? "$T/pick"

# --- a dump criu refuses
touch "$T/fail"
wait_for 300 eval 'grep -q "^ibsnap run: checkpoint (interval) into .* failed (exit 1): the job goes on" <(sed -n "/ckpt-$((H + 1)) done/,\$p" "$P/run.out")'
ok "a refused dump: reported, the job goes on" $? "$P/run.out"
rm -f "$T/fail"
D=$(done_n interval)
wait_for 300 at_least interval $((D + 1)) && wait_for 300 no_flush &&
	wait_for 300 eval '[[ $(complete_list "$DIR" | wc -w) -eq 2 ]]' &&
	[[ $(complete_list "$FAST" | wc -w) -eq 2 ]]
ok "... the next interval works; still 2 complete per tier" $? "$P/run.out"

# --- SIGUSR1 checkpoints now; it does not reach the job
kill -USR1 "$RUN1"
wait_for 300 eval 'grep -q "^ibsnap run: checkpoint (SIGUSR1) into .* done$" "$P/run.out"'
ok "SIGUSR1: a checkpoint now" $? "$P/run.out"
kill -0 "$RUN1" && has_procs per $N && ! grep -q '^exit' "$P"/peer-*.log
ok "... and the job never saw the signal" $? "$P/run.out"

# --- SIGTERM goes to the job, as without --dir
kill -TERM "$RUN1"
wait "$RUN1"
rc1=$?
kill -TERM "$RUN3"
wait "$RUN3"
rc3=$?
[[ $rc1 -eq 143 && $rc3 -eq 143 ]]
ok "SIGTERM: the job ends by it (143), as a plain ibsnap run's (143)" $? "$P/run.out" "$T/p3/run.out"
# (the newest may be one SIGTERM cut short after its commit: not "done")
S=$(complete_list "$DIR" | awk '{ print $NF }')
[[ $(complete_list "$DIR" | wc -w) -eq 2 && $(complete_list "$FAST" | wc -w) -eq 2 ]] &&
	[[ $S -ge $(seq_of ' done$') ]] &&
	picks "checkpoint $(tree_ckpt "$DIR/ckpt-$S/$HOST") from $DIR (dir)" --dir "$DIR"
ok "at exit: 2 complete per tier, the newest in DIR; restart takes it" $? \
	"$T/pick" <(ls -R "$DIR")

finish
