#!/bin/bash
# SPDX-License-Identifier: MIT
# What the lab tier runs inside the guest, one boot at a time:
#   tests/lab/boot.sh N BUILD_DIR STATE_DIR
# runs boot N's suites (below), each under a time limit, with its output
# shown and kept in STATE_DIR/logs/, and appends "PASS name" / "FAIL name"
# lines to STATE_DIR/results (which tests/lab/tier.sh counts).  STATE_DIR
# outlives the guest: boot 2 is a reboot that sees only it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

# Suites per boot: "script args" (BUILD_DIR and STATE_DIR are appended, or
# put where BUILD and STATE stand).  A checkpoint test dumps in boot 1 and
# restores in boot 2 (ckpt.sh: unmodified programs; ucx_reboot.sh: Open
# MPI over UCX).
BOOT1=(
	"criu.sh dump BUILD STATE"
	"conformance.sh BUILD"
	"rdmacm.sh BUILD"
	"rdmacm.sh dump BUILD STATE"
	"diff.sh BUILD STATE/diff"
	"ckpt.sh dump BUILD STATE"
	"stream.sh start BUILD STATE"
	"downtime.sh dump BUILD STATE"
	"ucx.sh BUILD"
	"ucx_reboot.sh dump BUILD STATE"
)
BOOT2=(
	"criu.sh restore BUILD STATE"
	"rdmacm.sh restore BUILD STATE"
	"ckpt.sh restore BUILD STATE"
	"stream.sh step BUILD STATE"
	"downtime.sh restore BUILD STATE"
	"ucx_reboot.sh restore BUILD STATE"
)
# Boots 3 and later: the stream program's further reboot restarts
BOOTN=(
	"stream.sh step BUILD STATE"
)
SUITE_TIMEOUT=${IBSNAP_LAB_SUITE_TIMEOUT:-420}

n=${1:?usage: boot.sh N BUILD_DIR STATE_DIR}
BUILD=$(cd "${2:?}" && pwd)
STATE=$(cd "${3:?}" && pwd)
mkdir -p "$STATE/logs"
case $n in
1) suites=("${BOOT1[@]}") ;;
2) suites=("${BOOT2[@]}") ;;
[3-9] | [1-9][0-9]) suites=("${BOOTN[@]}") ;;
*) echo "boot.sh: no boot $n" >&2 && exit 2 ;;
esac

i=0
for s in "${suites[@]}"; do
	read -r -a argv <<<"$s"
	argv=("${argv[@]/#BUILD/$BUILD}")
	argv=("${argv[@]/#STATE/$STATE}")
	name=${argv[0]%.sh}
	i=$((i + 1))
	log=$STATE/logs/boot$n.$i.$name.log
	echo "== boot $n: $s"
	t0=$SECONDS
	rc=0
	timeout -k 10 "$SUITE_TIMEOUT" "$HERE/${argv[0]}" "${argv[@]:1}" 2>&1 |
		tee "$log" || rc=$?
	echo "== boot $n: $s: exit $rc, $((SECONDS - t0)) s"
	{
		sed -n -e 's/^ok \{1,\}/PASS /p' -e 's/^FAIL /FAIL /p' "$log"
		if [[ $rc -eq 124 || $rc -eq 137 ]]; then
			echo "FAIL $name: timed out after $SUITE_TIMEOUT s, its later checks did not run"
		elif [[ $rc -ne 0 ]] && ! grep -q '^FAIL ' "$log"; then
			echo "FAIL $name: exit $rc"
		fi
	} | sed "s/^\(PASS\|FAIL\) /&[lab] /" >>"$STATE/results"
done
