#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions the shim adds to the data path, counted by callgrind (exact
# counts, not time): self cost of the shim's post_send and poll_cq per call,
# against the issue's budget of 60 per post_send + poll_cq pair.
#   tests/shim/fastpath.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

FP=$(cd "$BUILD" && pwd)/tests/shim/fastpath
N=10000
if [[ $SHIM_PRELOAD != "$SHIM" ]] || ! command -v valgrind >/dev/null; then
	echo "skipped: needs valgrind and a build without sanitizers"
	exit 0
fi
out="$LOGDIR/cg.out"
timeout -k 5 300 "$IBSNAP" run --fake -- valgrind --tool=callgrind \
	--callgrind-out-file="$out" "$FP" $N >"$LOGDIR/vg.log" 2>&1
ok "fastpath under callgrind" $? "$LOGDIR/vg.log" || { finish; exit; }

# self cost per function, inlined helpers included (file:function lines)
self() {
	callgrind_annotate --auto=no --inclusive=no --threshold=100 "$out" 2>/dev/null |
		awk -v f="$1" '$0 ~ ":" f "( |$)" { gsub(",", "", $1); s += $1 }
			END { print s + 0 }'
}
post=$(self isn_post_send)
poll=$(self isn_poll_cq)
per_post=$(((post + N / 2) / N))
per_poll=$(((poll + N / 2) / N))
echo "shim instructions: post_send $per_post, poll_cq $per_poll," \
	"per post_send + poll_cq pair $((per_post + per_poll))"
[[ $post -gt 0 && $poll -gt 0 && $((per_post + per_poll)) -le 60 ]]
ok "at most 60 instructions added per post_send + poll_cq" $?
finish
