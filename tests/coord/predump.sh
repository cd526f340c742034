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
	>"$T/ck2" 2>&1 &&
	wait_for 300 eval 'grep -qx "$TREE 2 complete" "$DIR/$HOST/.manifest" 2>/dev/null' &&
	wait_for 300 no_flusher &&
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

# ---- chains: ibsnap run --dir --predump (periodic): checkpoint N+1 of a
# tree pre-dumps on top of its checkpoint N (relative parent link), at most
# --full-every 3 images a chain; --keep 2 never removes a parent a kept
# image needs; a failed checkpoint or a killed copy mid-chain; restart
# takes no image whose chain is not whole in its tier and says why.
CD=$T/cdir
CF=$T/cfast
PC=$T/pc
: >"$T/args"
IBSNAP_FLUSH_HOLD=$T/hold-flush start_job "$PC" 1 --job ch --dir "$CD" \
	--stage "$CF" --predump --keep 2 --full-every 3
RUNC=$JOB_PID
# a second tree of the job, without --dir: it chains on its own images
start_job "$T/pc2" 1 --job ch
wait_for 300 has_procs ch 2
ok "chain job: two trees registered" $? "$PC/run.out" "$T/pc2/run.out"
cdone() { grep -c "^ibsnap run: checkpoint (SIGUSR1) into .* done$" "$PC/run.out"; }
cfail() { grep -c "^ibsnap run: checkpoint (SIGUSR1) into .* failed" "$PC/run.out"; }
ended() { [[ $(($(cdone) + $(cfail))) -ge $WANT ]]; }
usr1() { # usr1 N: SIGUSR1, then wait for checkpoint N to end (done or failed)
	WANT=$1
	kill -USR1 "$RUNC" && wait_for 300 ended
}
agentc() { pgrep -P "$RUNC" -x ibsnap-agent; }
flusherc() { pgrep -P "$(agentc)" -x ibsnap-flush; }
# pre N: criu pre-dump's arguments for ckpt-N (the tree of job ch's driver)
pre() { grep "^pre-dump .* -D $CF/ckpt-$1/$HOST/.$TC.tmp-" "$T/args"; }
pre2() { grep "^pre-dump .* -D $CF/ckpt-$1/$HOST/.$TC2.tmp-" "$T/args"; }
link() { readlink "$1/$HOST/$TC/predump/parent"; }
whole() { # whole TIER N: ckpt-N's two trees complete in TIER's manifest
	[[ $(grep -c " complete$" "$1/ckpt-$2/$HOST/.manifest" 2>/dev/null) -eq 2 ]]
}
cpick() { # cpick WANT-DIR-OF-FIRST-TREE restart-options...
	local want=$1
	shift
	"$IBSNAP" restart --dry-run "$@" >"$T/cpick" 2>&1 &&
		[[ $(sed -n 2p "$T/cpick") == "$want/$HOST/"* ]]
}
ls_ck() { ls "$1" | tr '\n' ' '; }

usr1 1 && wait_for 300 eval 'whole "$CD" 1'
# the driver's tree: the one whose init (criu -t) is its agent's child
ipid=$(pgrep -P "$(agentc)" -x ibsnap-init)
TC=$(grep "^pre-dump -t $ipid " "$T/args" | head -1 |
	sed -n "s|.* -D $CF/ckpt-1/$HOST/\.\([0-9a-f]*\)\.tmp-.*|\1|p")
TC2=$(ls "$CF/ckpt-1/$HOST" | grep -vx "$TC" | head -1)
[[ -n $TC && -n $TC2 && -f $CD/ckpt-1/.chain ]] && pre 1 | grep -vq -- --prev-images-dir &&
	pre2 1 | grep -vq -- --prev-images-dir &&
	grep -q "^image .* MiB written (memory pages .* MiB), 2 trees, full$" "$PC/run.out"
ok "ckpt-1: full (no parent); ibsnap checkpoint prints what it wrote" $? "$T/args" \
	"$PC/run.out"
C1=$(sed -n 's/^ckpt=//p' "$CF/ckpt-1/$HOST/$TC/ibsnap.meta")
usr1 2 && wait_for 300 eval 'whole "$CD" 2'
pre 2 | grep -q -- "--prev-images-dir ../../../../ckpt-1/$HOST/$TC\( \|$\)" &&
	pre2 2 | grep -q -- "--prev-images-dir ../../../../ckpt-1/$HOST/$TC2\( \|$\)" &&
	[[ $(link "$CF/ckpt-2") == ../../../../ckpt-1/$HOST/$TC ]] &&
	[[ $(stat -c %s "$CF/ckpt-2/$HOST/$TC/predump/pages-1.img") -eq 4096 ]] &&
	grep -qx "parent_ckpt=$C1" "$CF/ckpt-2/$HOST/$TC/ibsnap.meta" &&
	grep -q "^image .*, 2 trees, 2 chained on checkpoint $C1 (only what changed since)$" "$PC/run.out"
ok "ckpt-2: each tree's pre-dump chains on its own ckpt-1 (relative link), writes 4 KiB" $? \
	"$T/args" "$PC/run.out" <(ls -lR "$CF/ckpt-2")
[[ $(link "$CD/ckpt-2") == ../../../../ckpt-1/$HOST/$TC && -f $CD/ckpt-2/$HOST/$TC/predump/parent/pages-1.img ]] &&
	cpick "$CD/ckpt-2" --dir "$CD" && cpick "$CF/ckpt-2" --dir "$CD" --stage "$CF"
ok "... copied to DIR, where its link finds DIR's ckpt-1; restart takes it from both" $? \
	"$T/cpick" <(ls -lR "$CD")
usr1 3 && usr1 4 && wait_for 300 eval 'whole "$CD" 4' &&
	pre 3 | grep -q -- "--prev-images-dir ../../../../ckpt-2/" &&
	pre 4 | grep -vq -- --prev-images-dir && pre2 4 | grep -vq -- --prev-images-dir &&
	[[ $(ls_ck "$CD") == "ckpt-1 ckpt-2 ckpt-3 ckpt-4 " && $(ls_ck "$CF") == "ckpt-1 ckpt-2 ckpt-3 ckpt-4 " ]]
ok "--full-every 3: ckpt-3 chains on 2, ckpt-4 is full; --keep 2 keeps 3's parents 1, 2" $? \
	"$T/args" "$PC/run.out" <(ls "$CD" "$CF")
usr1 5 && wait_for 300 eval 'whole "$CD" 5' &&
	wait_for 100 eval '[[ $(ls_ck "$CD") == "ckpt-4 ckpt-5 " && $(ls_ck "$CF") == "ckpt-4 ckpt-5 " ]]' && pre 5 | grep -q -- "--prev-images-dir ../../../../ckpt-4/" &&
	cpick "$CD/ckpt-5" --dir "$CD"
ok "ckpt-5 chains on 4: 1-3 go (no kept image needs them); restart takes 5" $? \
	"$PC/run.out" <(ls "$CD" "$CF") "$T/cpick"

# a checkpoint that fails after its pre-dump (which reset the soft-dirty
# bits): the next one cannot chain on ckpt-5
touch "$T/fail"
usr1 6
rm -f "$T/fail"
usr1 7 && wait_for 300 eval 'whole "$CD" 7' && [[ $(cfail) -eq 1 ]] &&
	pre 6 | grep -q -- "--prev-images-dir ../../../../ckpt-5/" &&
	pre 7 | grep -vq -- --prev-images-dir && pre2 7 | grep -vq -- --prev-images-dir &&
	cpick "$CD/ckpt-7" --dir "$CD"
ok "a dump that fails mid-chain (ckpt-6): ckpt-7 starts a new chain, full" $? \
	"$T/args" "$PC/run.out"

# a copy killed mid-chain: ckpt-8's flusher dies; ckpt-9's copies 8 too
touch "$T/hold-flush"
usr1 8 && wait_for 100 eval '[[ -n $(flusherc) ]]' && kill -9 $(flusherc)
rm -f "$T/hold-flush"
wait_for 100 eval '[[ -z $(flusherc) ]]' && ! whole "$CD" 8 && cpick "$CD/ckpt-7" --dir "$CD"
ok "ckpt-8's copy killed: restart from DIR takes 7" $? "$T/cpick" "$PC/run.out"
usr1 9 && wait_for 300 eval 'whole "$CD" 9' && whole "$CD" 8 &&
	pre 9 | grep -q -- "--prev-images-dir ../../../../ckpt-8/" &&
	grep -q "^ibsnap: checkpoint [0-9]* (a parent of [0-9]*) is not whole in $CD/ckpt-8/$HOST: copied too$" "$PC/run.out" &&
	cpick "$CD/ckpt-9" --dir "$CD" &&
	wait_for 100 eval '[[ $(ls_ck "$CD") == "ckpt-7 ckpt-8 ckpt-9 " ]]'
ok "... ckpt-9 (on 8): its flusher copies 8 first; DIR whole; restart takes 9; 7 kept for 8" $? \
	"$T/cpick" "$PC/run.out" <(ls -R "$CD")

# a chain not whole in a tier: restart falls back, says why
M8=$CD/ckpt-8/$HOST/.manifest
cp "$M8" "$T/m8"
sed -i 's/ complete$/ incomplete/' "$M8"
cpick "$CD/ckpt-7" --dir "$CD" &&
	grep -q "^ibsnap restart: $CD/ckpt-9/$HOST/$TC (checkpoint [0-9]*): its parent $CD/ckpt-8/$HOST/$TC (checkpoint [0-9]*) is not complete in $CD/ckpt-8/$HOST/.manifest: not taken$" "$T/cpick" &&
	cpick "$CF/ckpt-9" --dir "$CD" --stage "$CF"
ok "DIR's ckpt-8 incomplete: restart from DIR takes 7 and says why; from FAST 9" $? "$T/cpick"
cp "$T/m8" "$M8"
rm -rf "$CD/ckpt-8"
cpick "$CD/ckpt-7" --dir "$CD" &&
	grep -q "^ibsnap restart: $CD/ckpt-9/$HOST/$TC (checkpoint [0-9]*): its chain is broken: .*/parent leads nowhere: not taken$" "$T/cpick"
ok "DIR's ckpt-8 gone: restart from DIR takes 7, says the chain is broken" $? "$T/cpick"
kill -TERM "$RUNC"
wait "$RUNC"
touch "$T/pc2/stop"
"$IBSNAP" run --no-preload --full-every 2 -- true >"$T/fe1" 2>&1
r1=$?
"$IBSNAP" run --no-preload --dir "$T/fe" --predump --full-every 0 -- true >"$T/fe2" 2>&1
r2=$?
[[ $r1 -eq 2 && $r2 -eq 2 ]] && grep -q "^ibsnap run: --full-every needs --dir DIR$" "$T/fe1" &&
	grep -q "^ibsnap run: bad --full-every '0'$" "$T/fe2"
ok "--full-every without --dir, or below 1: usage errors (2)" $? "$T/fe1" "$T/fe2"
finish
