#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-sweep: what a checkpoint without dump costs one process as its
# resources grow (issue 9): bench_ckpt (2 ranks under the shim on the fake
# HCA, this host) swept over QPs, MRs and registered memory, one knob at a
# time.  Writes the block between the bench-sweep markers of DOC
# (docs/perf.md), docs/perf/ckpt_sweep.tsv and docs/img/ckpt_*.png.
#   bench/bench_sweep.sh BUILD_DIR DOC.md
# IBSNAP_BENCH_SWEEP_K: cycles per configuration (20, half busy).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:?usage: bench_sweep.sh BUILD_DIR DOC.md} doc=${2:?DOC.md}
BIN=$(cd "$build" && pwd)/bin/bench_ckpt
K=${IBSNAP_BENCH_SWEEP_K:-20}
DATA=docs/perf
IMG=docs/img
[[ -x $BIN ]] || { echo "bench_sweep: $BIN is not built" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "bench_sweep: gnuplot is missing (make deps)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/ibsnap-sweep.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$DATA" "$IMG"

# one NAME Q M KIB: a bench_ckpt run; the busy medians as a TSV line
one() {
	local name=$1 q=$2 m=$3 kib=$4 out=$tmp/$1-$2-$3-$4.md
	if ! "$BIN" -q "$q" -m "$m" -s "$kib" -k "$K" -l "$name" -o "$out" \
		>/dev/null 2>"$tmp/err"; then
		echo "bench_sweep: bench_ckpt -q $q -m $m -s $kib failed: $(tail -2 "$tmp/err")" >&2
		return 0
	fi
	awk -v name="$name" -v q="$q" -v m="$m" -F' *\\| *' '
		/registered per rank/ { match($0, /\([0-9]+ KiB/); kib = substr($0, RSTART + 1, RLENGTH - 5) + 0 }
		/^Programs busy/ { busy = 1 } /^Programs blocked/ { busy = 0 }
		busy && $2 ~ /^(quiesce|drain|release|rebuild|resume)$/ { v[$2] = $3 }
		busy && $2 == "**quiesce→rebuild**" { v["total"] = $3 }
		$2 ~ /^\*\*create\*\*/ { create = $3 }
		END { printf "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, q, m, kib,
			v["quiesce"], v["drain"], v["release"], v["rebuild"], v["resume"], v["total"], create }' \
		"$out" >>"$DATA/ckpt_sweep.tsv"
	tail -1 "$DATA/ckpt_sweep.tsv"
}

t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
printf '#name\tqps\tmrs\tregistered_kib\tquiesce_ms\tdrain_ms\trelease_ms\trebuild_ms\tresume_ms\tquiesce_to_rebuild_ms\tnative_create_ms\n' \
	>"$DATA/ckpt_sweep.tsv"
# registered memory fixed at 64 MiB per rank while QPs or MRs vary
for q in 1 4 16 64 256; do one qps "$q" 1 65536; done
for m in 1 4 16 64 256; do one mrs 16 "$m" 65536; done
for s in 4096 32768 131072 524288; do one regmem 16 4 "$s"; done
took=$((SECONDS - t0))
load1=$(cut -d' ' -f1-3 /proc/loadavg)

gp() { gnuplot -e "set terminal pngcairo size 800,480 font ',10' noenhanced" "$@"; }
for kind in qps mrs regmem; do
	awk -F'\t' -v n="$kind" '$1 == n' "$DATA/ckpt_sweep.tsv" >"$tmp/$kind"
done
plot3() { # KIND XCOL XLABEL TITLE PNG
	gp - <<END
set output '$IMG/$5'
set title '$4'
set logscale x
set xlabel '$3'
set ylabel 'ms (median of the busy cycles)'
set key top left
set grid
plot '$tmp/$1' u $2:10 w lp t 'quiesce..rebuild (the job stopped)', \
     '$tmp/$1' u $2:8 w lp t 'rebuild', \
     '$tmp/$1' u $2:7 w lp t 'release', \
     '$tmp/$1' u $2:6 w lp t 'drain', \
     '$tmp/$1' u $2:11 w lp dt 2 t 'native creation of the same (no shim)'
END
}
plot3 qps 2 'RC QPs per rank' 'a checkpoint of 2 ranks (fake HCA) vs QPs; 1 MR, 64 MiB registered' ckpt_qps.png
plot3 mrs 3 'MRs per rank' 'a checkpoint of 2 ranks (fake HCA) vs MRs; 16 QPs, 64 MiB registered' ckpt_mrs.png
gp - <<END
set output '$IMG/ckpt_regmem.png'
set title 'a checkpoint of 2 ranks (fake HCA) vs registered memory; 16 QPs, 4 MRs'
set logscale x
set xlabel 'MiB registered per rank'
set ylabel 'ms (median of the busy cycles)'
set key top left
set grid
plot '$tmp/regmem' u (\$4/1024):10 w lp t 'quiesce..rebuild (the job stopped)', \
     '$tmp/regmem' u (\$4/1024):8 w lp t 'rebuild', \
     '$tmp/regmem' u (\$4/1024):7 w lp t 'release', \
     '$tmp/regmem' u (\$4/1024):11 w lp dt 2 t 'native creation of the same (no shim)'
END

{
	cat <<END
<!-- bench-sweep: begin (bench/bench_sweep.sh writes this block) -->

Written by \`make bench-sweep\` (\`bench/bench_sweep.sh $build $doc\`) on
$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe --always --dirty 2>/dev/null || echo unknown), in $took s, on
$(nproc) × $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average $load0 before,
$load1 after.

**How.** \`bench_ckpt -q Q -m M -s KIB -k $K\` (see \`docs/checkpoint.md\`,
"Numbers", for what it does): 2 ranks under the shim on the fake HCA of
this host, streaming SENDs and RDMA WRITEs to each other, $K checkpoints
without dump driven by the test driver (no ibsnapd: the phases' own cost);
each phase timed from the PHASE message to the last rank's ACK. The numbers
are the medians of the cycles with the programs busy ($((K / 2))); "native
create" is the same resources created by the backend directly, no shim. One
knob at a time: QPs and MRs with 64 MiB registered per rank, registered
memory with 16 QPs and 4 MRs. The fake HCA registers memory without
pinning it: on a real HCA, registration (in rebuild) grows with the pages
pinned; the lab's rxe0 numbers are in \`docs/checkpoint.md\`.

| knob | QPs | MRs | registered MiB | quiesce ms | drain ms | release ms | rebuild ms | resume ms | quiesce→rebuild ms | native create ms |
|---|---|---|---|---|---|---|---|---|---|---|
END
	grep -v '^#' "$DATA/ckpt_sweep.tsv" | awk -F'\t' '{
		printf "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | **%s** | %s |\n",
			$1, $2, $3, $4 / 1024, $5, $6, $7, $8, $9, $10, $11 }'
	cat <<END

![vs QPs](img/ckpt_qps.png)
![vs MRs](img/ckpt_mrs.png)
![vs registered memory](img/ckpt_regmem.png)

Data: \`docs/perf/ckpt_sweep.tsv\`.

<!-- bench-sweep: end -->
END
} >"$tmp/block.md"
bench/splice.sh "$doc" bench-sweep "$tmp/block.md"
cat "$tmp/block.md"
