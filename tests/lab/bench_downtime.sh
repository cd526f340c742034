#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-downtime: the downtime of (a) a checkpoint straight to disk,
# (b) a staged one (tmpfs, background copy), (c) a pre-dumped + staged one,
# against the job's memory, in the lab guest with real CRIU
# (tests/lab/downtime.sh bench: rxe0 and the fake HCA, 64 and 256 MiB per
# rank), then the restarts from DIR after a reboot; writes the table into
# DOC between its markers.  Each boot also runs the periodic chained
# checkpoints (downtime.sh chain, chain-restore): their sizes are in the
# boot logs (STATE/downtime/chain/chain.rows), not in the table.
#   tests/lab/bench_downtime.sh BUILD_DIR DOC
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(cd "${1:?usage: bench_downtime.sh BUILD_DIR DOC}" && pwd)
DOC=${2:?}
STATE=$BUILD/lab-downtime
# the jobs (2 x 256 MiB), the stage on tmpfs and CRIU's buffers
export IBSNAP_LAB_MEM=${IBSNAP_LAB_MEM:-4096}
t0=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# IBSNAP_DT_RENDER=1: only the table again, from the last run's STATE
if [[ ${IBSNAP_DT_RENDER:-0} != 1 ]]; then
	rm -rf "$STATE" && mkdir -p "$STATE"
	# the host's side of the calibration (the guest's runs after the
	# restarts)
	tests/lab/downtime.sh calib "$BUILD" "$STATE" >/dev/null
fi
for b in "bench 1" "bench-restore 2"; do
	[[ ${IBSNAP_DT_RENDER:-0} = 1 ]] && break
	set -- $b
	echo "== bench-downtime: boot $2 ($1)"
	tests/lab/guest.sh run --rw "$STATE" --timeout 5400 -- \
		bash -c "tests/lab/downtime.sh $1 $BUILD $STATE; s=\$?;
			c=chain; [[ $1 = bench-restore ]] && c=chain-restore
			tests/lab/downtime.sh \$c $BUILD $STATE || s=1
			[[ $1 = bench-restore ]] && tests/lab/downtime.sh calib $BUILD $STATE
			exit \$s" | tee "$STATE/boot$2.log" || true
done
secs=$((SECONDS - t0))
rows=$STATE/downtime/rows
[[ -s $rows ]] || {
	echo "bench-downtime: no numbers (see $STATE/boot1.log)" >&2
	exit 1
}
passed=$(cat "$STATE"/boot*.log | grep -c '^ok ' || true)
failed=$(cat "$STATE"/boot*.log | grep -c '^FAIL ' || true)

table() {
	echo "| backend | MiB per rank | case | downtime, ms | total, ms | pre-dump, ms (job runs) | dump, ms | copy to DIR, ms (job runs) | image in DIR, MiB |"
	echo "|---|---|---|---|---|---|---|---|---|"
	# rows: backend MiB case downtime total predump dump flush image ("-": none)
	awk '{
		name = $3 == "a" ? "(a) to disk" : $3 == "b" ? "(b) staged" : "(c) pre-dump + staged"
		printf "| %s | %s | %s | %.0f | %.0f | %s | %.0f | %s | %s |\n", $1, $2, name,
			$4, $5, $6 == "-" ? "–" : sprintf("%.0f", $6), $7,
			$3 == "a" ? "–" : $8, $9
	}' "$rows"
	echo
	echo "Downtime ratios in this run, (c) / (a) and (b) / (a):"
	echo
	awk '{ d[$1 " " $2 " " $3] = $4; k[$1 " " $2] = 1 }
	END { for (x in k) if (d[x " a"] > 0)
		printf "- %s MiB per rank: (c)/(a) = **%.3f**, (b)/(a) = %.3f\n",
			x, d[x " c"] / d[x " a"], d[x " b"] / d[x " a"] }' "$rows" | sort
	[[ -s $STATE/downtime/calib ]] || return 0
	echo
	echo "Calibration (\`tests/lab/downtime.sh calib\`, best of 3; host first):"
	echo
	sed 's/^calib /- /' "$STATE/downtime/calib"
}

block=$(
	echo "<!-- bench-downtime: begin (tests/lab/bench_downtime.sh writes this block) -->"
	echo
	echo "Written by \`make bench-downtime\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
		"${IBSNAP_BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}, in $secs s (two boots); its checks:" \
		"$passed passed, $failed failed."
	echo "QEMU TCG guest (2 vCPUs, $IBSNAP_LAB_MEM MiB), kernel $(sed -n 's/^calib lab (\(.*\)) cp256.*/\1/p' "$STATE/downtime/calib" 2>/dev/null | head -1);"
	echo "host load average before and after: $LOAD0; $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "CRIU $(criu --version | sed -n 's/^Version: //p'); each rank rewrites at most ${IBSNAP_DT_RATE:-2} MiB/s;"
	echo "DIR is the guest's 9p disk, FAST its tmpfs. One job per backend and size,"
	echo "checkpointed (a), (b), (c) in turn, ~1 s of steps apart."
	echo
	table
	echo
	echo "<!-- bench-downtime: end -->"
)
if grep -q '<!-- bench-downtime: begin' "$DOC"; then
	awk -v b="$block" '
		/<!-- bench-downtime: begin/ { print b; skip = 1; next }
		/<!-- bench-downtime: end -->/ { skip = 0; next }
		!skip' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
else
	printf '\n%s\n' "$block" >>"$DOC"
fi
echo "$block"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
