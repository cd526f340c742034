#!/bin/bash
# SPDX-License-Identifier: MIT
# 64 processes of one job through whole checkpoints: every phase in order,
# the exchange (each process gets all 64 blobs, intact, in rank order), the
# detach and wake around the dump; with a stand-in criu: the image written
# under a temporary name and renamed into place, replaced by the next one,
# kept when a dump fails (rollback, the job goes on), and --stop.
source "$(dirname "$0")/lib.sh"

N=64
P=$T/peers
export IBSNAP_CRIU=$FAKE_CRIU FAKE_CRIU_CTL=$T
IMG=$T/img
start_job "$P" $N --job cyc
wait_for 300 has_procs cyc $N
ok "$N processes registered (ranks 0..$((N - 1)))" $? "$P/run.out"

"$IBSNAP" checkpoint --job cyc --no-dump >"$T/ck1" 2>&1
ok "checkpoint --no-dump exits 0" $? "$T/ck1"
for ph in quiesce drain release dump rejoin rebuild resume; do
	grep -q "^  $ph " "$T/ck1" || break
done
ok "it prints every phase's time" $? "$T/ck1"
# the downtime is quiesce to resume: the sum of the steps' times (that of
# the step without a dump is not printed), within the checkpoint's total
awk '/^  (quiesce|drain|release|dump|rejoin|rebuild|resume) / && $3 == "ms" { s += $2 }
     /^downtime [0-9.]+ ms$/ { d = $2; n++ }
     /^checkpoint 1 done/ { t = substr($(NF - 1), 2) + 0.1 }
     END { exit !(n == 1 && d > 0 && s - d < 0.01 && d <= t) }' "$T/ck1"
ok "then the downtime, the sum of the phase times" $? "$T/ck1"
"$IBSNAP" status --job cyc >"$T/st1" 2>&1 &&
	grep -q "last checkpoint: 1 at .*, ok (.* ms, downtime [0-9.]* ms)" "$T/st1" &&
	"$IBSNAP" status --job cyc --json | grep -q '"downtime_usec":[1-9][0-9]*,'
ok "ibsnap status shows the last downtime (table and JSON)" $? "$T/st1"
all_logs "$P" "drain ok n=$N" $N && all_logs "$P" "rebuild ok n=$N" $N
ok "every process got all $N blobs intact, twice" $? "$T/ck1"
[[ $(phases "$P") == *"$N quiesce drain ok n=$N inc=0 release rebuild ok n=$N inc=0 resume "* ]]
ok "every process ran quiesce, drain, release, rebuild, resume" $? "$T/ck1"

"$IBSNAP" checkpoint --job cyc --dir "$IMG" >"$T/ck2" 2>&1
rc=$?
TREE=$(ls "$IMG/$HOST" 2>/dev/null | head -1)
TD=$IMG/$HOST/$TREE
[[ $rc -eq 0 && -f $TD/ibsnap.meta && -f $TD/core-fake.img ]]
ok "a dump lands in DIR/HOST/TREE" $? "$T/ck2"
grep -q '^ckpt=2$' "$TD/ibsnap.meta" &&
	grep -q "^nranks=$N\$" "$TD/ibsnap.meta" &&
	[[ $(grep -c '^client=' "$TD/ibsnap.meta") -eq $N ]]
ok "its meta file names the checkpoint and its $N processes" $? "$TD/ibsnap.meta"
[[ -z $(ls -A "$IMG/$HOST" | grep tmp) ]]
ok "no temporary directory is left" $? "$T/ck2"

"$IBSNAP" checkpoint --job cyc --dir "$IMG" >"$T/ck3" 2>&1 &&
	grep -q '^ckpt=3$' "$TD/ibsnap.meta" &&
	[[ -z $(ls -A "$IMG/$HOST" | grep tmp) && $(ls "$IMG/$HOST" | wc -l) -eq 1 ]]
ok "the next image replaces it" $? "$T/ck3"

touch "$T/fail"
"$IBSNAP" checkpoint --job cyc --dir "$IMG" >"$T/ck4" 2>&1
rc=$?
rm -f "$T/fail"
[[ $rc -eq 1 ]] && grep -q "the dump on $HOST failed: Error (fake-criu)" "$T/ck4" &&
	grep -q "the job goes on" "$T/ck4"
ok "a failed dump fails the checkpoint, clearly" $? "$T/ck4"
grep -q '^ckpt=3$' "$TD/ibsnap.meta" && [[ -f $TD.dump-failed.log ]] &&
	[[ -z $(ls -A "$IMG/$HOST" | grep tmp) ]]
ok "the last good image stays; the failed dump's log is kept" $? "$T/ck4"
first=$(ls "$P"/peer-*.log | head -1)
has_procs cyc $N && [[ $(grep -c "rebuild ok n=$N" "$first") -eq 4 ]] &&
	[[ $(phases "$P" | wc -l) -eq 1 && $(phases "$P") == *" $N quiesce "*" resume " ]]
ok "the processes were woken, rebuilt and resumed" $? "$T/ck4"

"$IBSNAP" checkpoint --job cyc --dir "$IMG" --stop >"$T/ck5" 2>&1
rc=$?
wait "$JOB_PID"
jrc=$?
[[ $rc -eq 0 && $jrc -eq 137 ]] && grep -q "the job was stopped" "$T/ck5" &&
	grep -q '^ckpt=5$' "$TD/ibsnap.meta" && ! grep -q '^downtime' "$T/ck5"
ok "--stop writes the image and ends the job" $? "$T/ck5" "$P/run.out"
wait_for 100 eval '[[ $(procs cyc) -eq 0 ]]'
ok "the stopped job is gone from the coordinator" $?

finish
