#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental checkpoints (ibsnap checkpoint --predump) with the stand-in
# criu: every agent pre-dumps its tree while the job still runs (no process
# is quiesced until the pre-dump is done; it is not part of the downtime),
# then the final dump gets --track-mem --prev-images-dir and the image holds
# its pre-dump inside (TREE/predump, TREE/parent -> predump, relative), so
# it stays whole when renamed into place and when the flusher copies it
# from the stage to DIR.  A failed pre-dump ends the checkpoint with CRIU's
# error, before anything was stopped; nothing is left that restart would
# take, and the job goes on.
source "$(dirname "$0")/lib.sh"

N=2
P=$T/peers
DIR=$T/dir
FAST=$T/fast
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
start_job "$P" $N --job pd
wait_for 300 has_procs pd $N
ok "$N processes registered" $? "$P/run.out"

meta_ckpt() { sed -n 's/^ckpt=//p' "$1/ibsnap.meta" 2>/dev/null; }
count() { cat "$P"/peer-*.log 2>/dev/null | grep -c "^$1\$"; }
no_flusher() { [[ -z $(pgrep -P "$JOB_PID" -x ibsnap-flush) ]]; }

# --- a pre-dumped checkpoint, the pre-dump held: nothing quiesced meanwhile
touch "$T/hold"
"$IBSNAP" checkpoint --job pd --dir "$DIR" --predump >"$T/ck1" 2>&1 &
ck=$!
TREE=
wait_for 100 eval '[[ -s $T/args ]]' && sleep 0.5 &&
	[[ $(count quiesce) -eq 0 ]] && grep -q '^pre-dump ' "$T/args" &&
	! grep -q '^dump ' "$T/args" &&
	"$IBSNAP" status --job pd | grep -q predump
ok "while the trees are pre-dumped no process is quiesced (status: predump)" $? \
	"$T/args" "$P/run.out"
rm -f "$T/hold"
wait "$ck"
rc=$?
TREE=$(ls "$DIR/$HOST" 2>/dev/null | grep -v '\.log$' | head -1)
I=$DIR/$HOST/$TREE
[[ $rc -eq 0 && -n $TREE && $(meta_ckpt "$I") == 1 ]] &&
	grep -q '^  predump  .* ms  (the job ran)$' "$T/ck1" &&
	grep -q '^downtime [0-9.]* ms$' "$T/ck1" &&
	[[ $(count quiesce) -eq $N && $(count resume) -eq $N ]]
ok "checkpoint --predump succeeds; prints the pre-dump apart from the downtime" $? \
	"$T/ck1" "$P/run.out"
pre=$(grep '^pre-dump ' "$T/args")
dump=$(grep '^dump ' "$T/args")
[[ $pre == *" -D $DIR/$HOST/.$TREE.tmp-1/predump "* && $pre == *" --track-mem"* ]] &&
	[[ $dump == *" -D $DIR/$HOST/.$TREE.tmp-1 "* ]] &&
	[[ $dump == *" --track-mem --prev-images-dir predump"* ]] &&
	[[ $(grep -n . "$T/args" | sed -n 1p) == 1:pre-dump* ]]
ok "criu pre-dump --track-mem into TMP/predump, then dump --track-mem --prev-images-dir predump" $? \
	"$T/args"
[[ -f $I/predump/inventory.img && -L $I/parent ]] &&
	[[ $(readlink "$I/parent") == predump && -f $I/parent/inventory.img ]] &&
	[[ $(stat -c %s "$I/pages-1.img") -eq 4096 ]] &&
	[[ -z $(ls -A "$DIR/$HOST" | grep tmp) ]]
ok "the image holds its parent: TREE/predump, TREE/parent -> predump" $? "$T/args"
"$IBSNAP" restart --dry-run --dir "$DIR" >"$T/pick" 2>&1 &&
	[[ $(head -1 "$T/pick") == "checkpoint 1 from $DIR (dir)" ]]
ok "restart would take it" $? "$T/pick"

# --- pre-dump + stage: the flusher copies the image with its parent
: >"$T/args"
"$IBSNAP" checkpoint --job pd --dir "$DIR" --stage "$FAST" --predump \
	>"$T/ck2" 2>&1 && wait_for 300 no_flusher &&
	[[ $(meta_ckpt "$DIR/$HOST/$TREE") == 2 ]] &&
	grep -q " -D $FAST/$HOST/.$TREE.tmp-2/predump " "$T/args" &&
	[[ -L $DIR/$HOST/$TREE/parent && $(readlink "$DIR/$HOST/$TREE/parent") == predump ]] &&
	diff -r "$FAST/$HOST/$TREE" "$DIR/$HOST/$TREE" >"$T/diff" &&
	grep -qx "$TREE 2 complete" "$DIR/$HOST/.manifest"
ok "--predump --stage: pre-dump in FAST; DIR gets the image and its parent link" $? \
	"$T/ck2" "$T/args" "$T/diff"

# --- a pre-dump that fails: CRIU's error, nothing stopped, nothing left
touch "$T/fail-predump"
q=$(count quiesce)
"$IBSNAP" checkpoint --job pd --dir "$DIR" --predump >"$T/ck3" 2>&1
rc=$?
[[ $rc -eq 1 ]] &&
	grep -q "pre-dump on $HOST failed: Error (fake-criu): pre-dump of [0-9]* refused" "$T/ck3" &&
	grep -q "^checkpoint 3 failed: .*; the job goes on" "$T/ck3" &&
	! grep -q '^downtime' "$T/ck3" && [[ $(count quiesce) -eq $q ]]
ok "a failed pre-dump: the checkpoint fails with criu's error, no process quiesced" $? \
	"$T/ck3"
[[ -z $(ls -A "$DIR/$HOST" | grep tmp) && $(meta_ckpt "$DIR/$HOST/$TREE") == 2 ]] &&
	grep -q refused "$DIR/$HOST/$TREE.predump-failed.log" &&
	"$IBSNAP" restart --dry-run --dir "$DIR" >"$T/pick" 2>&1 &&
	[[ $(head -1 "$T/pick") == "checkpoint 2 from $DIR (dir)" ]]
ok "... no temporary image left, CRIU's log kept, restart still takes 2" $? \
	"$T/pick"
rm -f "$T/fail-predump"
"$IBSNAP" checkpoint --job pd --dir "$DIR" --predump >"$T/ck4" 2>&1 &&
	[[ $(meta_ckpt "$DIR/$HOST/$TREE") == 4 && $(count resume) -eq $((3 * N)) ]]
ok "the job goes on: the next --predump checkpoint succeeds" $? "$T/ck4" \
	"$P/run.out"
"$IBSNAP" checkpoint --job pd --predump --no-dump >"$T/ck5" 2>&1
[[ $? -eq 2 ]] && grep -q "needs a dump" "$T/ck5"
ok "--predump with --no-dump is refused" $? "$T/ck5"
stop_job "$P"
ok "the job ends normally" $? "$P/run.out"
finish
