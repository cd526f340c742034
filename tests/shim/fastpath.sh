#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions the shim adds to the data path, counted by callgrind (exact
# counts, not time): the inclusive cost of the shim's post_send and poll_cq
# (everything they call, out-of-line helpers too) minus the inclusive cost
# of the fake HCA's own ops they call, per post_send (poll_cq: per
# completion, the empty polls included), against the issue's budget of 60
# per post_send + poll_cq pair.
#   tests/shim/fastpath.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

FP=$(cd "$BUILD" && pwd)/tests/shim/fastpath
N=10000
if ! command -v valgrind >/dev/null; then
	echo "FAIL: valgrind is not installed (make deps installs it)"
	exit 1
fi
# instructions are counted on the plain build; the sanitized one adds its own
if [[ $SHIM_PRELOAD != "$SHIM" ]]; then
	echo "not run on a sanitized build (counted on the plain one)"
	exit 0
fi
out="$LOGDIR/cg.out"
timeout -k 5 300 "$IBSNAP" run --fake -- valgrind --tool=callgrind \
	--callgrind-out-file="$out" "$FP" $N >"$LOGDIR/vg.log" 2>&1
ok "fastpath under callgrind" $? "$LOGDIR/vg.log" || { finish; exit; }

# inclusive cost of a function (file:function lines; the first one counts)
incl() {
	callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$out" 2>/dev/null |
		awk -v f="$1" '$0 ~ ":" f "( |$)" { gsub(",", "", $1); print $1 + 0; exit }
			END { print 0 }' | head -1
}
post=$(($(incl isn_post_send) - $(incl fk_post_send)))
poll=$(($(incl isn_poll_cq) - $(incl fk_poll_cq)))
per_post=$(((post + N / 2) / N))
per_poll=$(((poll + N / 2) / N))
echo "shim instructions: post_send $per_post, poll_cq $per_poll," \
	"per post_send + poll_cq pair $((per_post + per_poll))"
[[ $post -gt 0 && $poll -gt 0 && $((per_post + per_poll)) -le 60 ]]
ok "at most 60 instructions added per post_send + poll_cq" $?
finish
