#!/bin/bash
# SPDX-License-Identifier: MIT
# The lab tier: boots of the lab guest (tests/lab/guest.sh) that share one
# writable dir, BUILD_DIR/lab.  Boot 1 runs the CRIU dump, the shim's rxe
# conformance, the differential suite and the checkpoints of unmodified
# programs and of the stream program; boot 2, a reboot, the CRIU restore
# and their restart; boots 3 and later the stream program's further reboot
# restarts (IBSNAP_LAB_STREAM_RESTARTS, 3: R restarts take R + 1 boots;
# tests/lab/boot.sh lists the suites).  Prints every check, the boots'
# times, and last "N passed, N failed"; a guest that does not boot or times
# out is a failure with its cause, never a skip.
#   tests/lab/tier.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=$(cd "${1:?usage: tests/lab/tier.sh BUILD_DIR}" && pwd)
STATE=$BUILD/lab
BOOT_TIMEOUT=(0 "${IBSNAP_LAB_BOOT1_TIMEOUT:-1800}" "${IBSNAP_LAB_BOOT2_TIMEOUT:-720}")
# the stream program's reboot restarts (tests/lab/stream.sh): one boot each
RESTARTS=${IBSNAP_LAB_STREAM_RESTARTS:-3}
BOOTS=$((RESTARTS + 1 > 2 ? RESTARTS + 1 : 2))

for f in bin/ibsnap lib/libibsnap.so tests/lab/vdiff_dp tests/lab/criu_probe; do
	[[ -e $BUILD/$f ]] || {
		echo "lab: $BUILD/$f is missing (make build)" >&2
		echo "0 passed, 1 failed"
		exit 1
	}
done
rm -rf "$STATE"
mkdir -p "$STATE"
: >"$STATE/results"
echo "$RESTARTS" >"$STATE/stream.restarts"
t_all=$SECONDS
times=()
for ((n = 1; n <= BOOTS; n++)); do
	echo "== lab: boot $n"
	t0=$SECONDS
	rc=0
	tests/lab/guest.sh run --rw "$STATE" --timeout "${BOOT_TIMEOUT[n]:-300}" -- \
		tests/lab/boot.sh "$n" "$BUILD" "$STATE" || rc=$?
	times+=("boot $n $((SECONDS - t0)) s")
	case $rc in
	0) ;;
	124 | 125) echo "FAIL [lab] boot $n: the guest failed (cause above)" >>"$STATE/results" ;;
	*) echo "FAIL [lab] boot $n: boot.sh exit $rc" >>"$STATE/results" ;;
	esac
done
passed=$(grep -c '^PASS ' "$STATE/results" || true)
failed=$(grep -c '^FAIL ' "$STATE/results" || true)
echo "== lab: ${times[*]}, $((SECONDS - t_all)) s in all; logs in $STATE/logs"
grep '^FAIL ' "$STATE/results" || true
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
