#!/bin/bash
# SPDX-License-Identifier: MIT
# fork() in a process that uses verbs through the shim (fork_child.c): the
# child opens the device afresh and gets completion events (its own event
# thread), the parent goes on, and fork + exec of a verbs program works.
#   tests/shim/fork.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

FC=$(cd "$BUILD" && pwd)/tests/shim/fork_child
for env in "" "IBSNAP_TEST_REMAP=1" "IBSNAP_FAKE_LINK=ib"; do
	env $env timeout -k 5 60 "$IBSNAP" run --fake -- "$FC" 200 \
		>"$LOGDIR/fork.log" 2>&1
	ok "fork: parent and child both use verbs${env:+ ($env)}" $? \
		"$LOGDIR/fork.log"
done
finish
