#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-ckpt: what a checkpoint without dump costs (bench_ckpt.c), for
# 2 ranks x 1 QP x 1 MR and 2 ranks x 64 QPs x 16 MRs, on the fake HCA on
# this host and (IBSNAP_BENCH_LAB=1) on rxe0 in ONE lab guest boot with the
# real backend.  Replaces the block between the bench-ckpt markers of DOC
# (the "Numbers" section of docs/checkpoint.md).
#   bench/bench_ckpt.sh BUILD_DIR DOC.md
#   bench/bench_ckpt.sh --guest BUILD_DIR OUT.md K   (what runs in the guest)
# IBSNAP_BENCH_CKPT_K: cycles per configuration (host 200);
# IBSNAP_BENCH_CKPT_LAB_K: in the guest (40).
set -euo pipefail
cd "$(dirname "$0")/.."

BEGIN='<!-- bench-ckpt: begin (bench/bench_ckpt.sh writes this block) -->'
END='<!-- bench-ckpt: end -->'

machine() {
	local model hyp
	model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
	hyp=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
	echo "$(nproc) × $model${hyp:+ (a $hyp guest)}, kernel $(uname -r)"
}

configs() { # BIN OUT K BACKEND LABEL
	local bin=$1 out=$2 k=$3 be=$4 label=$5
	"$bin" -b "$be" -q 1 -m 1 -k "$k" -l "$label" -o "$out" >/dev/null
	"$bin" -b "$be" -q 64 -m 16 -k "$k" -l "$label" -o "$out" >/dev/null
}

if [[ ${1:-} == --guest ]]; then
	build=$2 out=$3 k=$4
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	{
		echo "### rxe0 in the lab guest (real backend)"
		echo
		echo "$(machine); rxe0 on a veth pair; guest load average $load0 before."
	} >"$out"
	configs "$build/bin/bench_ckpt" "$out" "$k" real rxe0
	echo >>"$out"
	exit 0
fi

build=${1:?usage: bench_ckpt.sh BUILD_DIR DOC.md} doc=${2:?DOC.md}
k=${IBSNAP_BENCH_CKPT_K:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
configs "$build/bin/bench_ckpt" "$tmp/host.md" "$k" fake fake
load1=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
{
	echo "$BEGIN"
	echo
	echo "Written by \`make bench-ckpt\` (\`bench/bench_ckpt.sh $build $doc\`)"
	echo "on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, in $(($(date +%s) - t0)) s."
	echo
	echo "### fake HCA on the host"
	echo
	echo "$(machine); load average $load0 before, $load1 after"
	echo "(other engineers' tests share the 2 cores). $k cycles per configuration"
	echo "(half busy, half paused), after one warm-up cycle."
	cat "$tmp/host.md"
	echo
} >"$tmp/block.md"
if [[ ${IBSNAP_BENCH_LAB:-0} == 1 ]]; then
	mkdir -p "$tmp/lab"
	g0=$(date +%s)
	if tests/lab/guest.sh run --rw "$tmp/lab" --timeout 1800 -- \
		bench/bench_ckpt.sh --guest "$build" "$tmp/lab/guest.md" \
		"${IBSNAP_BENCH_CKPT_LAB_K:-40}"; then
		cat "$tmp/lab/guest.md" >>"$tmp/block.md"
		echo "(one boot, $(($(date +%s) - g0)) s; QEMU TCG: compare only ratios within this boot)" \
			>>"$tmp/block.md"
		echo >>"$tmp/block.md"
	else
		echo "The lab run failed (status $?); no rxe0 numbers." >>"$tmp/block.md"
	fi
fi
echo "$END" >>"$tmp/block.md"
cat "$tmp/block.md"
if grep -qF "$BEGIN" "$doc"; then
	awk -v b="$BEGIN" -v e="$END" -v f="$tmp/block.md" '
		$0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
		$0 == e { skip = 0; next }
		!skip' "$doc" >"$tmp/doc"
else
	{ cat "$doc"; echo; echo "## Numbers"; echo; cat "$tmp/block.md"; } >"$tmp/doc"
fi
cat "$tmp/doc" >"$doc"
