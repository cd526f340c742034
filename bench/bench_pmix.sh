#!/bin/bash
# SPDX-License-Identifier: MIT
# The exchange through ibsnapd vs through PMIx on this host (issue 9): N
# coordinator peers (tests/coord/coord_peer: checksummed blobs of up to
# 0.5 KiB) started by Open MPI's mpirun under ibsnap run, K checkpoints
# --no-dump each with and without IBSNAP_PMIX=1.  Prints a Markdown
# fragment (bench/bench_scale.sh puts it in docs/perf.md).
#   bench/bench_pmix.sh BUILD_DIR
# IBSNAP_BENCH_PMIX_N ("16 64"), IBSNAP_BENCH_PMIX_K (5).
set -uo pipefail
cd "$(dirname "$0")/.."

B=$(cd "${1:?usage: bench_pmix.sh BUILD_DIR}" && pwd)
NS=${IBSNAP_BENCH_PMIX_N:-16 64}
K=${IBSNAP_BENCH_PMIX_K:-5}
if ! command -v mpirun >/dev/null; then
	echo "Not measured: no mpirun (openmpi-bin)."
	exit 0
fi
tmp=$(mktemp -d /tmp/ibsnap-pmix.XXXXXX)
export IBSNAP_COORD_SOCK=$tmp/ibsnapd.sock OMPI_MCA_plm_rsh_agent=
unset IBSNAP_COORD IBSNAP_JOB IBSNAP_TOKEN IBSNAP_AGENT
trap 'touch "$tmp"/p*/stop 2>/dev/null; sleep 1
      [[ -f $IBSNAP_COORD_SOCK.lock ]] && kill "$(cat "$IBSNAP_COORD_SOCK.lock")" 2>/dev/null
      rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); else print "–" }'; }

# one N PMIX: medians of the checkpoint's total and its drain and rebuild
one() {
	local n=$1 pmix=$2 d=$tmp/p$1-$2 job=p$1x$2 i
	mkdir -p "$d"
	PEER_DIR=$d IBSNAP_PMIX=$pmix "$B/bin/ibsnap" run --no-preload --job "$job" -- \
		mpirun --allow-run-as-root --oversubscribe -np "$n" -x IBSNAP_PMIX \
		-x PEER_DIR "$B/tests/coord/coord_peer" >"$d/run.out" 2>&1 &
	for ((i = 0; i < 600; i++)); do
		[[ $("$B/bin/ibsnap" status --json --job "$job" 2>/dev/null |
			grep -o '"rank"' | wc -l) -eq $n ]] && break
		sleep 0.1
	done
	: >"$d/ck"
	for ((i = 0; i < K; i++)); do
		"$B/bin/ibsnap" checkpoint --job "$job" --no-dump >>"$d/ck" 2>&1
	done
	touch "$d/stop"
	wait
	local ok=yes
	[[ $(grep -c "done (no dump)" "$d/ck") -eq $K ]] || ok=NO
	[[ $(cat "$d"/peer-*.log | grep -c "rebuild ok n=$n ") -eq $((n * K)) ]] || ok=NO
	printf '| %d | %s | %s | %s | %s | %s |\n' "$n" \
		"$([[ $pmix == 1 ]] && echo PMIx || echo ibsnapd)" \
		"$(sed -n 's/^checkpoint [0-9]* done (no dump) (\([0-9.]*\) ms)$/\1/p' "$d/ck" | median)" \
		"$(awk '$1 == "drain" { print $2 }' "$d/ck" | median)" \
		"$(awk '$1 == "rebuild" { print $2 }' "$d/ck" | median)" "$ok"
}

cat <<END
### The exchange through ibsnapd or through PMIx (one host)

\`bench/bench_pmix.sh\`: N \`tests/coord/coord_peer\` processes (checksummed
blobs of 16–515 bytes, every one checked by every process) started by Open
MPI's \`mpirun\` under \`ibsnap run --no-preload\`, $K \`ibsnap checkpoint
--no-dump\` each, without and with \`IBSNAP_PMIX=1\` (mpirun's PMIx server
does the fence). Times are ibsnapd's (the checkpoint's total, its DRAIN and
REBUILD steps, which hold the two exchanges), medians of $K; "ok": every
checkpoint done and every process got all N blobs each time. On one host
PMIx's fence is a local gather; its point is a batch system's tree across
hosts, which this machine cannot show.

| processes | exchange | checkpoint ms | drain ms | rebuild ms | ok |
|---|---|---|---|---|---|
END
for n in $NS; do
	one "$n" 0
	one "$n" 1
done
echo
