#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-ucx: what the shim costs UCX, and what a checkpoint of an Open
# MPI job costs.  In ONE lab boot: ucx_perftest natively and under
# "ibsnap run" on rxe0 (rc_verbs), alternating, ROUNDS times each: tag_lat
# (8 B, the median latency), tag_bw and ucp_put_bw (64 KiB, the overall
# bandwidth); the median of the rounds and shim/native.  Then the 4-rank
# mpi_ring (tests/shim/mpi_ring, pml ucx over rc_verbs) under ibsnap run:
# CKPTS checkpoints in place (--no-dump), then one CRIU dump (--stop): the
# phase times ibsnap checkpoint prints.  Writes the section between the
# markers in OUT (docs/ucx.md).
#   tests/lab/bench_ucx.sh BUILD_DIR OUT.md
#   tests/lab/bench_ucx.sh --guest BUILD_DIR RAW_DIR   (what runs in the guest)
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${IBSNAP_BENCH_ROUNDS:-7}
LAT_N=${IBSNAP_BENCH_LAT_N:-3000}
BW_N=${IBSNAP_BENCH_BW_N:-1000}
CKPTS=${IBSNAP_BENCH_CKPTS:-5}
CACHE_DIR=${IBSNAP_LAB_CACHE:-/var/cache/ibsnap-lab}
NICE=${IBSNAP_BENCH_NICE:--10}
TLS=rc_verbs,ud_verbs,self
# name | label | ucx_perftest arguments | column of "Final:" | unit
BENCHES=(
	"tag_lat|tag_lat 8 B|-t tag_lat -s 8 -n $LAT_N -w 200|3|us"
	"tag_bw|tag_bw 64 KiB|-t tag_bw -s 65536 -n $BW_N -w 50|7|MB/s"
	"put_bw|ucp_put_bw 64 KiB|-t ucp_put_bw -s 65536 -n $BW_N -w 50|7|MB/s"
)
BEGIN_MARK='<!-- bench-ucx: begin (tests/lab/bench_ucx.sh writes this part) -->'
END_MARK='<!-- bench-ucx: end -->'

wait_listen() {
	local i
	for ((i = 0; i < 200; i++)); do
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# the 4-rank job: CKPTS in place, then a dump with --stop; RAW/ck.N.log
mpi_ckpt() { # IBSNAP RAW
	local ibsnap=$1 raw=$2 job=benchmpi pid i
	local prog
	prog=$(cd "$BUILD" && pwd)/tests/shim/mpi_ring
	mkdir -p "$raw/mpi" && cd "$raw/mpi"
	rm -f ready
	UCX_TLS=$TLS timeout -k 5 900 "$ibsnap" run --job "$job" -- \
		mpirun --allow-run-as-root --oversubscribe -np 4 --mca pml ucx \
		--mca btl self -x UCX_TLS -x UCX_NET_DEVICES -x UCX_IB_GID_INDEX \
		"$prog" -n 1000000 -r "$raw/mpi/ready" </dev/null >mpi.log 2>&1 &
	pid=$!
	for ((i = 0; i < 900; i++)); do
		[[ -e ready ]] && "$ibsnap" status --job "$job" 2>/dev/null |
			grep -q ": 4 processes" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.2
	done
	sleep 2
	for ((i = 1; i <= CKPTS; i++)); do
		"$ibsnap" checkpoint --job "$job" --no-dump >"$raw/ck.$i.log" 2>&1 ||
			echo "checkpoint $i failed" >>"$raw/ck.$i.log"
		sleep 1
	done
	"$ibsnap" checkpoint --job "$job" --stop --dir "$raw/mpi/img" \
		>"$raw/ck.dump.log" 2>&1 || echo "the dump failed" >>"$raw/ck.dump.log"
	kill $pid 2>/dev/null || true
	wait $pid || true
	du -sm "$raw/mpi/img" | cut -f1 >"$raw/img.mb"
	cd - >/dev/null
}

# In the guest: RAW_DIR/raw.tsv gets "name mode round value" lines.
guest() {
	local build=$1 raw=$2 port=18715 r b name args col mode modes pre srv cli v
	local ibsnap
	BUILD=$build
	ibsnap=$(cd "$build" && pwd)/bin/ibsnap
	export UCX_NET_DEVICES=rxe0:1 UCX_IB_GID_INDEX=0 UCX_TLS=$TLS
	export OMPI_MCA_plm_rsh_agent=
	mkdir -p "$raw"
	: >"$raw/raw.tsv"
	for ((r = 1; r <= ROUNDS; r++)); do
		for b in "${BENCHES[@]}"; do
			IFS='|' read -r name _ args col _ <<<"$b"
			# alternate who goes first, against drift
			modes=(native shim)
			((r % 2)) || modes=(shim native)
			for mode in "${modes[@]}"; do
				pre=()
				[[ $mode == shim ]] && pre=("$ibsnap" run --)
				port=$((port + 1))
				srv=$raw/$name.$mode.$r.srv
				cli=$raw/$name.$mode.$r.cli
				# shellcheck disable=SC2086 # args is a word list
				timeout -k 5 120 "${pre[@]}" ucx_perftest $args -p "$port" \
					</dev/null >"$srv" 2>&1 &
				wait_listen "$port" || true
				# shellcheck disable=SC2086
				timeout -k 5 120 "${pre[@]}" ucx_perftest 127.0.0.1 $args \
					-p "$port" </dev/null >"$cli" 2>&1 || true
				wait || true
				v=$(awk -v c="$col" '$1 == "Final:" && NF >= c { v = $c }
					END { print v }' "$cli")
				[[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || v=NA
				echo "$name $mode $r $v" | tee -a "$raw/raw.tsv"
			done
		done
	done
	mpi_ckpt "$ibsnap" "$raw"
	cat "$raw"/ck.*.log
}

median() { # values on stdin
	sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "NA"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

quartiles() { # "Q1 Q3" of the values on stdin
	sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "NA NA"; exit }
		printf "%.3f %.3f\n", v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)] }'
}

values() { # NAME MODE: one per round
	awk -v n="$1" -v m="$2" '$1 == n && $2 == m && $4 != "NA" { print $4 }' \
		"$RAW/raw.tsv"
}

ratios() { # NAME: shim/native of each round
	awk -v n="$1" '$1 == n && $4 != "NA" { v[$3 " " $2] = $4; r[$3] }
		END { for (i in r) if ((i " native") in v && (i " shim") in v &&
			v[i " native"] > 0) print v[i " shim"] / v[i " native"] }' \
		"$RAW/raw.tsv"
}

row() { # BENCHES-ENTRY
	local name label unit nat shim ratio pmed q1 q3
	IFS='|' read -r name label _ _ unit <<<"$1"
	nat=$(values "$name" native | median)
	shim=$(values "$name" shim | median)
	ratio=$(awk -v a="$shim" -v b="$nat" 'BEGIN {
		if (a == "NA" || b == "NA" || b == 0) print "NA"
		else printf "%.3f", a / b }')
	pmed=$(ratios "$name" | median |
		awk '{ if ($1 == "NA") print $1; else printf "%.3f\n", $1 }')
	read -r q1 q3 < <(ratios "$name" | quartiles)
	echo "| $label, $unit | $nat | $shim | $ratio | $pmed ($q1–$q3) |"
}

# phase NAME FILES...: the phase's times in ms, one per file
phase() {
	local p=$1
	shift
	awk -v p="$p" '$1 == p && $3 == "ms" { print $2 }
		p == "downtime" && $1 == "downtime" { print $2 }
		p == "whole" && /^checkpoint / && match($0, /\([0-9.]+ ms\)$/) {
			print substr($0, RSTART + 1, RLENGTH - 5) }' "$@"
}

phase_rows() {
	local p inplace=() dump="$RAW/ck.dump.log" med max d
	for f in "$RAW"/ck.[0-9]*.log; do
		[[ -e $f ]] && inplace+=("$f")
	done
	for p in quiesce drain release dump rejoin rebuild resume downtime whole; do
		if ((${#inplace[@]})); then
			med=$(phase "$p" "${inplace[@]}" | median)
			max=$(phase "$p" "${inplace[@]}" | sort -g | tail -1)
		else
			med=NA max=NA
		fi
		[[ $p == dump ]] && med="–" max="–"
		d=$(phase "$p" "$dump" | head -1)
		echo "| $p | $med | ${max:-NA} | ${d:-–} |"
	done
}

machine() {
	local model hyp
	model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
	hyp=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
	echo "$(nproc) × $model${hyp:+ (a $hyp guest)}, kernel $(uname -r)"
}

report() { # TOOK LOAD_BEFORE
	local took=$1 load0=$2 b name m n_ok
	n_ok=$(grep -l "done" "$RAW"/ck.[0-9]*.log 2>/dev/null | wc -l)
	cat <<END
$BEGIN_MARK
## Benchmark on rxe0 (\`make bench-ucx\`)

Written by \`tests/lab/bench_ucx.sh\` on $(date -u +%Y-%m-%d), commit ${COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}:
one lab boot of $took s (QEMU TCG guest at nice $NICE, Debian kernel
$(cat "$CACHE_DIR/current" 2>/dev/null), 2 vCPUs, rxe0 on a veth pair) on a host with
$(machine); host load average $load0 before,
$(cut -d' ' -f1-3 /proc/loadavg) after.

**ucx_perftest.** UCX 1.13, server and client on rxe0
(\`UCX_TLS=$TLS UCX_NET_DEVICES=rxe0:1 UCX_IB_GID_INDEX=0\`), natively and
under \`ibsnap run\` (real backend): \`tag_lat -s 8 -n $LAT_N\` (the 50th
percentile latency of the run), \`tag_bw\` and \`ucp_put_bw -s 65536 -n
$BW_N\` (overall bandwidth; put is RDMA WRITE on rc_verbs). $ROUNDS rounds in
the one boot, each a native and a shim run back to back (which goes first
alternates). "shim/native" is the ratio of the medians over the rounds,
"per round" the median of the rounds' own ratios and their interquartile
range (the noise: TCG's timing drifts with the host's load; only ratios
from one boot compare).

| what | native | shim | shim/native | per round (IQR) |
|---|---|---|---|---|
END
	for b in "${BENCHES[@]}"; do
		row "$b"
	done
	cat <<END

Every run, round 1 first (NA: no number):

\`\`\`
END
	for b in "${BENCHES[@]}"; do
		IFS='|' read -r name _ <<<"$b"
		for m in native shim; do
			echo "$name $m: $(awk -v n="$name" -v m="$m" \
				'$1 == n && $2 == m { printf "%s ", $4 }' "$RAW/raw.tsv")"
		done
	done
	cat <<END
\`\`\`

**Checkpoint of the 4-rank Open MPI job.** \`mpi_ring\` (pml ucx over
$TLS on rxe0, btl self, 4 ranks and mpirun in one \`ibsnap run\`),
$CKPTS checkpoints in place (\`ibsnap checkpoint --no-dump\`, 1 s apart;
$n_ok done), then one \`ibsnap checkpoint --stop --dir\` (a CRIU dump of
mpirun and the 4 ranks into the guest's 9p state directory), in the same
boot after the ucx_perftest rounds; the image: $(cat "$RAW/img.mb" 2>/dev/null || echo "?") MB. Phases
as \`ibsnap checkpoint\` prints them (ms; "whole": the checkpoint as the
command timed it):

| phase | in place, median | in place, max | with the CRIU dump |
|---|---|---|---|
END
	phase_rows
	echo
	echo "$END_MARK"
}

host() {
	local build=$1 out=$2 rc=0 t0=$SECONDS load0 sec
	RAW=$(cd "$build" && pwd)/lab-bench-ucx
	rm -rf "$RAW" && mkdir -p "$RAW"
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	nice -n "$NICE" tests/lab/guest.sh run --rw "$RAW" --timeout 2400 -- \
		env IBSNAP_BENCH_ROUNDS="$ROUNDS" IBSNAP_BENCH_LAT_N="$LAT_N" \
		IBSNAP_BENCH_BW_N="$BW_N" IBSNAP_BENCH_CKPTS="$CKPTS" \
		tests/lab/bench_ucx.sh --guest "$build" "$RAW" || rc=$?
	if [[ $rc -ne 0 ]]; then
		echo "bench-ucx: the guest run failed ($rc)" >&2
		exit 1
	fi
	sec=$RAW/section.md
	report $((SECONDS - t0)) "$load0" >"$sec"
	# replace the section between the markers, or append it
	if grep -qF "$BEGIN_MARK" "$out"; then
		awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v f="$sec" '
			$0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
			$0 == e { skip = 0; next }
			!skip' "$out" >"$out.tmp"
	else
		{ cat "$out"; echo; cat "$sec"; } >"$out.tmp"
	fi
	mv "$out.tmp" "$out"
	cat "$sec"
}

if [[ ${1:-} == --guest ]]; then
	guest "${2:?}" "${3:?}"
else
	host "${1:?usage: bench_ucx.sh BUILD_DIR OUT.md}" "${2:?usage: bench_ucx.sh BUILD_DIR OUT.md}"
fi
