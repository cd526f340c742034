#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-shim: what the shim costs.  In ONE lab boot, perftest natively
# and under the shim on rxe0, alternating, ROUNDS times each: ib_send_lat
# and ib_write_lat at 2 B (perftest's t_typical, a median), ib_write_bw at
# 64 KiB (BW average); the median of the rounds, and shim/native.  On the
# host, tests/shim/fastpath.sh's callgrind count of the instructions the
# shim adds per post_send + poll_cq on the fake HCA.  Writes OUT (markdown).
#   tests/lab/bench.sh BUILD_DIR OUT.md
#   tests/lab/bench.sh --guest BUILD_DIR RAW_DIR     (what runs in the guest)
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${IBSNAP_BENCH_ROUNDS:-7}
LAT_N=${IBSNAP_BENCH_LAT_N:-2000}
BW_N=${IBSNAP_BENCH_BW_N:-2000}
X="-d rxe0 -x 1 -F"
# name | label | perftest command | column of the client's result | unit
BENCHES=(
	"send_lat|ib_send_lat 2 B|ib_send_lat $X -s 2 -n $LAT_N|5|us"
	"write_lat|ib_write_lat 2 B|ib_write_lat $X -s 2 -n $LAT_N|5|us"
	"write_bw|ib_write_bw 64 KiB|ib_write_bw $X -s 65536 -n $BW_N|4|MB/s"
)

wait_listen() {
	local i
	for ((i = 0; i < 200; i++)); do
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# In the guest: RAW_DIR/raw.tsv gets "name mode round value" lines.
guest() {
	local build=$1 raw=$2 port=18515 r b name cmd col mode modes pre srv cli v
	local ibsnap
	ibsnap=$(cd "$build" && pwd)/bin/ibsnap
	mkdir -p "$raw"
	: >"$raw/raw.tsv"
	for ((r = 1; r <= ROUNDS; r++)); do
		for b in "${BENCHES[@]}"; do
			IFS='|' read -r name _ cmd col _ <<<"$b"
			# alternate who goes first, against drift
			modes=(native shim)
			((r % 2)) || modes=(shim native)
			for mode in "${modes[@]}"; do
				pre=()
				[[ $mode == shim ]] && pre=("$ibsnap" run --)
				port=$((port + 1))
				srv=$raw/$name.$mode.$r.srv
				cli=$raw/$name.$mode.$r.cli
				# shellcheck disable=SC2086 # cmd is a word list
				timeout -k 5 120 "${pre[@]}" $cmd -p "$port" >"$srv" 2>&1 &
				wait_listen "$port" || true
				# shellcheck disable=SC2086
				timeout -k 5 120 "${pre[@]}" $cmd -p "$port" 127.0.0.1 \
					>"$cli" 2>&1 || true
				wait || true
				v=$(awk -v c="$col" '$1 ~ /^[0-9]+$/ && NF >= c { v = $c }
					END { print v }' "$cli")
				echo "$name $mode $r ${v:-NA}" | tee -a "$raw/raw.tsv"
			done
		done
	done
}

median() { # values on stdin
	sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "NA"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

host() {
	local build=$1 out=$2 raw b name label unit nat shim ratio target met
	local fp per_post per_poll per_pair rc=0 t0=$SECONDS
	raw=$(cd "$build" && pwd)/lab-bench
	rm -rf "$raw" && mkdir -p "$raw"
	tests/lab/guest.sh run --rw "$raw" --timeout 1800 -- \
		env IBSNAP_BENCH_ROUNDS="$ROUNDS" IBSNAP_BENCH_LAT_N="$LAT_N" \
		IBSNAP_BENCH_BW_N="$BW_N" tests/lab/bench.sh --guest "$build" "$raw" ||
		rc=$?
	[[ $rc -eq 0 ]] || {
		echo "bench: the guest run failed ($rc)" >&2
		exit 1
	}
	local took=$((SECONDS - t0))
	fp=$(tests/shim/fastpath.sh "$build" 2>&1 | tee "$raw/fastpath.log" |
		sed -n 's/^shim instructions: //p') || true
	per_post=$(sed -n 's/^post_send \([0-9]*\),.*/\1/p' <<<"$fp")
	per_poll=$(sed -n 's/.*poll_cq \([0-9]*\),.*/\1/p' <<<"$fp")
	per_pair=$(sed -n 's/.*pair \([0-9]*\)$/\1/p' <<<"$fp")
	{
		cat <<EOF
# Performance of the shim (\`make bench-shim\`)

Written by \`tests/lab/bench.sh\`; numbers from $(date -u +%Y-%m-%d), one lab
boot of $took s (QEMU TCG guest, Debian kernel $(cat "${IBSNAP_LAB_CACHE:-/var/cache/ibsnap-lab}/current" 2>/dev/null),
rxe0 on a veth pair, 2 vCPUs) on a host with $(nproc) × $(lscpu | sed -n 's/^Model name: *//p' | head -1),
kernel $(uname -r).

**How.** perftest 4.5, \`$(cut -d'|' -f3 <<<"${BENCHES[0]}")\` and the like
(\`-p PORT\` on the server, \`-p PORT 127.0.0.1\` on the client; both
on rxe0), natively and under
\`ibsnap run\` (real backend), alternating native/shim, $ROUNDS rounds of
each in the same boot. Latency: perftest's t_typical (the median of
$LAT_N iterations) per run; bandwidth: BW average of $BW_N × 64 KiB WRITEs
per run; the table holds the median over the rounds. Only ratios measured
in one boot compare: TCG runs the whole guest 10–50× slower than the host
and its timing drifts between boots, so absolute numbers mean little.
Instructions: \`tests/shim/fastpath.sh\` (callgrind, exact counts) on the
fake HCA on the host: the self cost of the shim's post_send and poll_cq.

| what | native | shim | shim/native | target | met |
|---|---|---|---|---|---|
EOF
		for b in "${BENCHES[@]}"; do
			IFS='|' read -r name label _ _ unit <<<"$b"
			nat=$(awk -v n="$name" '$1 == n && $2 == "native" && $4 != "NA" { print $4 }' "$raw/raw.tsv" | median)
			shim=$(awk -v n="$name" '$1 == n && $2 == "shim" && $4 != "NA" { print $4 }' "$raw/raw.tsv" | median)
			ratio=$(awk -v a="$shim" -v b="$nat" 'BEGIN {
				if (a == "NA" || b == "NA" || b == 0) print "NA"
				else printf "%.3f", a / b }')
			if [[ $unit == us ]]; then
				target="≤ 1.02"
				met=$(awk -v r="$ratio" 'BEGIN { print (r != "NA" && r <= 1.02) ? "yes" : "no" }')
			else
				target="≥ 0.99"
				met=$(awk -v r="$ratio" 'BEGIN { print (r != "NA" && r >= 0.99) ? "yes" : "no" }')
			fi
			echo "| $label, $unit | $nat | $shim | $ratio | $target | $met |"
		done
		if [[ -n $per_pair ]]; then
			met=$([[ $per_pair -le 60 ]] && echo yes || echo no)
			echo "| instructions the shim adds per post_send + poll_cq (fake HCA) | – | $per_post + $per_poll | $per_pair | ≤ 60 | $met |"
		else
			echo "| instructions the shim adds per post_send + poll_cq (fake HCA) | – | not measured (see \`$raw/fastpath.log\`) | – | ≤ 60 | no |"
		fi
		echo
		echo "Every round (native, shim; value per run):"
		echo
		echo '```'
		awk '{ k = $1 " " $2; v[k] = v[k] " " $4 } END {
			for (k in v) print k ":" v[k] }' "$raw/raw.tsv" | sort
		echo '```'
	} >"$out"
	cat "$out"
}

if [[ ${1:-} == --guest ]]; then
	guest "${2:?}" "${3:?}"
else
	host "${1:?usage: bench.sh BUILD_DIR OUT.md}" "${2:?usage: bench.sh BUILD_DIR OUT.md}"
fi
