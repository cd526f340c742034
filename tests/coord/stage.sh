#!/bin/bash
# SPDX-License-Identifier: MIT
# Staged checkpoints (ibsnap checkpoint --stage FAST --dir DIR) with the
# stand-in criu: the dump lands in FAST and the job resumes before the
# background copy to DIR ends; the copy is renamed into place when complete
# and the manifests say which checkpoint is complete where; a flusher killed
# mid-copy leaves no copy that restart would take; a newer checkpoint (staged
# or not) gives an older copy up; --stop waits for the copy.  Restart's choice of image
# (ibsnap restart --dry-run): the newest complete checkpoint, from the
# fastest tier that has it.
source "$(dirname "$0")/lib.sh"

N=4
P=$T/peers
FAST=$T/fast
DIR=$T/dir
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
# the flusher waits after its first file while this file exists
export IBSNAP_FLUSH_HOLD=$T/hold-flush
start_job "$P" $N --job stg
wait_for 300 has_procs stg $N
ok "$N processes registered" $? "$P/run.out"

flusher() { pgrep -P "$JOB_PID" -x ibsnap-flush; }
no_flusher() { [[ -z $(flusher) ]]; }
meta_ckpt() { sed -n 's/^ckpt=//p' "$1/ibsnap.meta" 2>/dev/null; }
# resumed K: every peer has run resume K times
resumed() {
	[[ $(grep -c '^resume$' "$P"/peer-*.log | grep -c ":$1\$") -eq $N ]]
}
picks() { # picks EXPECTED-FIRST-LINE restart-options...
	local want=$1
	shift
	"$IBSNAP" restart --dry-run "$@" >"$T/pick" 2>&1 &&
		[[ $(head -1 "$T/pick") == "$want" ]]
}

# --- a staged checkpoint; its copy held half-way
touch "$T/hold-flush"
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck1" 2>&1
rc=$?
TREE=$(ls "$FAST/$HOST" 2>/dev/null | head -1)
[[ $rc -eq 0 && -n $TREE && $(meta_ckpt "$FAST/$HOST/$TREE") == 1 ]] &&
	[[ -f $FAST/$HOST/$TREE/pages-1.img ]] &&
	grep -q "^checkpoint 1 written to $FAST, copied to $DIR in the background" "$T/ck1" &&
	grep -q '^downtime [0-9.]* ms$' "$T/ck1"
ok "the dump lands in FAST/HOST/TREE; checkpoint says so, with its downtime" $? "$T/ck1"
grep -qx "$TREE 1 complete" "$FAST/$HOST/.manifest"
ok "FAST's manifest: checkpoint 1 complete" $? "$FAST/$HOST/.manifest"
wait_for 100 eval '[[ -n $(flusher) && -d $DIR/$HOST/.$TREE.flush-1 ]]' &&
	[[ ! -e $DIR/$HOST/$TREE ]] && resumed 1
ok "the job resumed while the copy to DIR is under way" $? "$T/ck1" "$P/run.out"
grep -qx "$TREE 1 copying" "$DIR/$HOST/.manifest"
ok "DIR's manifest: checkpoint 1 copying" $? "$DIR/$HOST/.manifest"
picks "checkpoint 1 from $FAST (stage)" --dir "$DIR" --stage "$FAST"
ok "restart would take checkpoint 1 from the stage" $? "$T/pick"
"$IBSNAP" restart --dry-run --dir "$DIR" >"$T/pick" 2>&1
[[ $? -eq 1 ]] && grep -q "no complete image of host $HOST in $DIR" "$T/pick"
ok "... and nothing from DIR alone yet" $? "$T/pick"

rm -f "$T/hold-flush"
wait_for 300 no_flusher && [[ $(meta_ckpt "$DIR/$HOST/$TREE") == 1 ]] &&
	diff -r "$FAST/$HOST/$TREE" "$DIR/$HOST/$TREE" >"$T/diff" &&
	[[ -z $(ls -A "$DIR/$HOST" | grep flush) ]]
ok "the copy completes: DIR/HOST/TREE, identical, no temporary left" $? "$T/diff"
grep -qx "$TREE 1 complete" "$DIR/$HOST/.manifest"
ok "DIR's manifest: checkpoint 1 complete" $? "$DIR/$HOST/.manifest"
picks "checkpoint 1 from $DIR (dir)" --dir "$DIR"
ok "restart from DIR alone takes it" $? "$T/pick"

# --- the flusher killed mid-copy
touch "$T/hold-flush"
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck2" 2>&1
rc=$?
wait_for 100 eval '[[ -n $(flusher) && -d $DIR/$HOST/.$TREE.flush-2 ]]'
pid=$(flusher)
[[ $rc -eq 0 && -n $pid ]] && kill -9 "$pid"
wait_for 100 no_flusher
ok "checkpoint 2 staged, its flusher killed mid-copy" $? "$T/ck2"
rm -f "$T/hold-flush"
[[ $(meta_ckpt "$DIR/$HOST/$TREE") == 1 && -d $DIR/$HOST/.$TREE.flush-2 ]] &&
	grep -qx "$TREE 2 copying" "$DIR/$HOST/.manifest" &&
	grep -qx "$TREE 1 complete" "$DIR/$HOST/.manifest"
ok "DIR keeps checkpoint 1; 2 is a temporary name, not complete in the manifest" $? \
	"$DIR/$HOST/.manifest"
picks "checkpoint 2 from $FAST (stage)" --dir "$DIR" --stage "$FAST"
ok "restart takes 2 from the stage" $? "$T/pick"
picks "checkpoint 1 from $DIR (dir)" --dir "$DIR"
ok "restart from DIR takes 1, never the half copy of 2" $? "$T/pick"
# a whole tree of checkpoint 2 put into DIR behind the manifest's back
cp -r "$FAST/$HOST/$TREE" "$DIR/$HOST/ffffffffffffffff"
picks "checkpoint 1 from $DIR (dir)" --dir "$DIR" &&
	! grep -q ffffffffffffffff "$T/pick"
ok "a tree the manifest does not call complete is not taken" $? "$T/pick"
rm -rf "$DIR/$HOST/ffffffffffffffff"
mv "$FAST" "$FAST.gone" # a reboot empties the stage
picks "checkpoint 1 from $DIR (dir)" --dir "$DIR" --stage "$FAST"
ok "stage gone: restart falls back to DIR's checkpoint 1" $? "$T/pick"
mv "$FAST.gone" "$FAST"

# --- the next copy completes and clears the leftovers
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck3" 2>&1 &&
	wait_for 300 no_flusher && [[ $(meta_ckpt "$DIR/$HOST/$TREE") == 3 ]] &&
	[[ -z $(ls -A "$DIR/$HOST" | grep flush) ]] &&
	grep -qx "$TREE 3 complete" "$DIR/$HOST/.manifest" &&
	! grep -q "^$TREE [12] " "$DIR/$HOST/.manifest"
ok "checkpoint 3 reaches DIR; the manifest forgets 1 and 2" $? "$T/ck3" \
	"$DIR/$HOST/.manifest"

# --- a newer checkpoint while a copy is under way gives that copy up
touch "$T/hold-flush"
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck4" 2>&1 &&
	wait_for 100 eval '[[ -n $(flusher) ]]' &&
	"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck5" 2>&1 &&
	wait_for 100 eval '[[ -d $DIR/$HOST/.$TREE.flush-5 ]]' &&
	grep -qx "$TREE 4 incomplete" "$DIR/$HOST/.manifest" &&
	[[ ! -e $DIR/$HOST/.$TREE.flush-4 ]]
ok "checkpoint 5 gives up the copy of 4 (incomplete in the manifest)" $? \
	"$T/ck5" "$P/run.out"
rm -f "$T/hold-flush"
wait_for 300 no_flusher && [[ $(meta_ckpt "$DIR/$HOST/$TREE") == 5 ]] &&
	grep -qx "$TREE 5 complete" "$DIR/$HOST/.manifest"
ok "... and copies 5" $? "$DIR/$HOST/.manifest"
all_logs "$P" "rebuild ok n=$N" $N && resumed 5
ok "the job went through every checkpoint" $? "$P/run.out"

# --- a checkpoint straight to DIR while a copy runs: the copy is given up
# (it would put the older image over the newer one)
touch "$T/hold-flush"
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" >"$T/ck6" 2>&1 &&
	wait_for 100 eval '[[ -n $(flusher) ]]' &&
	"$IBSNAP" checkpoint --job stg --dir "$DIR" >"$T/ck7" 2>&1 &&
	no_flusher && [[ $(meta_ckpt "$DIR/$HOST/$TREE") == 7 ]] &&
	[[ -z $(ls -A "$DIR/$HOST" | grep flush) ]] &&
	grep -qx "$TREE 7 complete" "$DIR/$HOST/.manifest" &&
	! grep -q "^$TREE 6 " "$DIR/$HOST/.manifest"
ok "checkpoint 7 straight to DIR gives up the copy of 6 (7 complete, 6 gone)" $? "$T/ck7" \
	"$DIR/$HOST/.manifest"
rm -f "$T/hold-flush"
picks "checkpoint 7 from $DIR (dir)" --stage "$FAST" --dir "$DIR"
ok "restart takes 7 from DIR: newer than the stage's 6" $? "$T/pick"

# --- --stop: ibsnap run waits for the copy before it exits
touch "$T/hold-flush"
"$IBSNAP" checkpoint --job stg --dir "$DIR" --stage "$FAST" --stop >"$T/ck8" 2>&1
rc=$?
(sleep 1 && rm -f "$T/hold-flush") &
wait "$JOB_PID"
jrc=$?
[[ $rc -eq 0 && $jrc -eq 137 && $(meta_ckpt "$DIR/$HOST/$TREE") == 8 ]] &&
	grep -qx "$TREE 8 complete" "$DIR/$HOST/.manifest" &&
	grep -q "waiting for the copy of checkpoint 8" "$P/run.out"
ok "--stop: the job ends, ibsnap run exits once DIR has the image" $? \
	"$T/ck8" "$P/run.out"
picks "checkpoint 8 from $FAST (stage)" --stage "$FAST" --dir "$DIR" &&
	[[ $(sed -n 2p "$T/pick") == "$FAST/$HOST/$TREE" ]]
ok "restart --dry-run lists the trees it would restore" $? "$T/pick"

finish
