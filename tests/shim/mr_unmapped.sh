#!/bin/bash
# SPDX-License-Identifier: MIT
# An MR whose memory the program unmapped before deregistering it (UCX's
# registration cache does: it deregisters lazily, after the munmap), with a
# checkpoint in between (mr_unmapped.c).  The rebuild cannot register that
# range again; it must leave the MR unbacked instead of failing the
# checkpoint, and the program must deregister it and go on.  A loaded lab
# run of tests/lab/ucx.sh found it: "rebuild: mr: Cannot allocate memory",
# then the rank died (exit 139).
#   tests/shim/mr_unmapped.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

PROG=$(cd "$BUILD" && pwd)/tests/shim/mr_unmapped
dir=$(mktemp -d -p "$LOGDIR")
job=mu$$x$RANDOM
timeout -k 5 "$PAIR_TIMEOUT" "$IBSNAP" run --fake --job "$job" -- \
	"$PROG" "$dir" >"$LOGDIR/prog.log" 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do
	[[ -e $dir/ready ]] && break
	sleep 0.1
done
"$IBSNAP" checkpoint --job "$job" --no-dump >"$LOGDIR/ck.log" 2>&1
ok "a checkpoint of a process with an MR over unmapped memory is done" $? \
	"$LOGDIR/ck.log" "$LOGDIR/prog.log"
printf 'go!!' >"$dir/go"
wait $pid
rc=$?
grep -q "^mr_unmapped: ok" "$LOGDIR/prog.log"
ok "the program deregisters it and a SEND works after it (exit $rc)" $? "$LOGDIR/prog.log"
grep -q "unmapped before ibv_dereg_mr" "$LOGDIR/prog.log"
ok "the shim says so" $? "$LOGDIR/prog.log"
finish
