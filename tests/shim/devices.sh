#!/bin/bash
# SPDX-License-Identifier: MIT
# Devices and the interposed symbol set.  tests/shim/devices.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

LIBIBVERBS=$(ldconfig -p | awk '/libibverbs.so.1 .*x86-64/ {print $NF; exit}')

# every public function of libibverbs is defined by the shim
missing=$(comm -23 \
	<(objdump -T "$LIBIBVERBS" | awk '$4 == ".text" && $6 !~ /PRIVATE/ {print $NF}' | sort -u) \
	<(objdump -T "$SHIM" | awk '$4 == ".text" {print $NF}' | sort -u))
[[ -z $missing ]]
ok "every public libibverbs function is defined${missing:+ (missing: $missing)}" $?
# ... exported, and nothing else leaks but librdmacm's API (the shim's
# rdma_cm, rsocket failing clearly), the libc calls ucx-bridge serves
# and write() (rebuild/cred.c: device commands after a CRIU restore)
LIBC_RE='^(write|open|open64|openat|openat64|__open_2|__open64_2|fopen|fopen64|stat|stat64|lstat|lstat64|fstatat|fstatat64|__xstat|__xstat64|__lxstat|__lxstat64|access|faccessat)$'
leaked=$(objdump -T "$SHIM" | awk -v libc="$LIBC_RE" '$4 == ".text" && $NF !~ /^(_?ibv_|mlx5dv_|mbps_to_ibv_rate|mult_to_ibv_rate|rdma_|rsocket$)/ && $NF !~ libc {print $NF}')
[[ -z $leaked ]]
ok "only the verbs API (and ucx-bridge's and rebuild's libc calls) is exported${leaked:+ (also: $leaked)}" $?

out="$LOGDIR/out"
"$IBSNAP" run --fake -- ibv_devices >"$out" 2>&1 && grep -q "fake0" "$out"
ok "ibv_devices lists fake0" $? "$out"
RUN_ENV= env IBSNAP_FAKE_DEVICES=3 "$IBSNAP" run --fake -- ibv_devices >"$out" 2>&1 &&
	[[ $(grep -c "fake[0-9]" "$out") -eq 3 ]]
ok "ibv_devices lists 3 fake devices" $? "$out"
"$IBSNAP" run --fake -- ibv_devinfo -v >"$out" 2>&1 &&
	grep -q "PORT_ACTIVE" "$out" && grep -q "GID\[  0\]" "$out"
ok "ibv_devinfo -v" $? "$out"
env IBSNAP_TEST_REMAP=1 "$IBSNAP" run --fake -- ibv_devinfo -v >"$out" 2>&1 &&
	grep -q "GID\[  0\]:.*fe80::2fa:4eff:fe00:54" "$out"
ok "ibv_devinfo -v shows virtual GIDs in remap mode" $? "$out"
env IBSNAP_FAKE_LINK=ib IBSNAP_TEST_REMAP=1 "$IBSNAP" run --fake -- \
	ibv_devinfo >"$out" 2>&1 && grep -q "port_lid:.*101" "$out"
ok "ibv_devinfo shows virtual LIDs in remap mode" $? "$out"

# the real backend on a host without RDMA: exactly as without the shim
native="$LOGDIR/native"
ibv_devices >"$native" 2>&1
nrc=$?
env IBSNAP_BACKEND=real "$IBSNAP" run -- ibv_devices >"$out" 2>&1
rc=$?
if [[ -z $(ls /sys/class/infiniband 2>/dev/null) ]]; then
	[[ $rc -eq $nrc ]] && cmp -s "$out" "$native"
	ok "IBSNAP_BACKEND=real ibv_devices: as native (exit $nrc)" $? "$out" "$native"
	env IBSNAP_BACKEND=real LD_PRELOAD="$SHIM_PRELOAD" ibv_devinfo >"$out" 2>&1
	rc=$?
	ibv_devinfo >"$native" 2>&1
	[[ $rc -eq $? ]] && cmp -s "$out" "$native"
	ok "IBSNAP_BACKEND=real ibv_devinfo: as native" $? "$out" "$native"
fi
env IBSNAP_BACKEND=bogus "$IBSNAP" run -- ibv_devices >"$out" 2>&1
[[ $? -ne 0 ]] && grep -q "IBSNAP_BACKEND=bogus" "$out"
ok "a bad IBSNAP_BACKEND is reported" $? "$out"

# the CLI
"$IBSNAP" --version | grep -q "^ibsnap [0-9]"
ok "ibsnap --version" $?
"$IBSNAP" help | grep -q "run"
ok "ibsnap help" $?
help=$("$IBSNAP" run --help)
for v in IBSNAP_BACKEND IBSNAP_FABRIC IBSNAP_FAKE_DEVICES IBSNAP_FAKE_NODE \
	IBSNAP_FAKE_LINK IBSNAP_FAKE_MTU IBSNAP_FAKE_FAULTS IBSNAP_FAKE_SPIN_US \
	IBSNAP_TEST_REMAP; do
	grep -q "$v" <<<"$help"
	ok "ibsnap run --help documents $v" $?
done
pre=$(env LD_PRELOAD=/nonexistent.so "$IBSNAP" run -- sh -c 'echo $LD_PRELOAD' 2>/dev/null)
[[ $pre == *"$SHIM:/nonexistent.so" ]]
ok "ibsnap run prepends the shim to LD_PRELOAD ($pre)" $?
be=$("$IBSNAP" run --fake -- sh -c 'echo $IBSNAP_BACKEND')
[[ $be == fake ]]
ok "ibsnap run --fake sets IBSNAP_BACKEND=fake" $?
"$IBSNAP" run -- /nonexistent/cmd 2>/dev/null
[[ $? -eq 127 ]]
ok "ibsnap run: a missing command exits 127" $?
finish
