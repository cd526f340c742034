#!/bin/bash
# SPDX-License-Identifier: MIT
# Old binaries bound to libibverbs' IBVERBS_1.0 ABI (abi_1_0.c): they reach
# rdma-core's compat layer, which wraps the shim's virtual objects, so they
# see the shim's devices and move data.  tests/shim/abi.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

AB=$(cd "$BUILD" && pwd)/tests/shim/abi_1_0
# the 1.0 functions are defined at their default version, the rest unversioned
n=$(objdump -T "$SHIM" | awk '$4 == ".text" && $(NF-1) == "IBVERBS_1.1"' | wc -l)
[[ $n -eq 33 ]]
ok "the 33 functions with a 1.0 ABI are defined at IBVERBS_1.1 ($n)" $?
for env in "" "IBSNAP_TEST_REMAP=1" "IBSNAP_FAKE_LINK=ib IBSNAP_TEST_REMAP=1"; do
	env $env timeout -k 5 30 "$IBSNAP" run --fake -- "$AB" >"$LOGDIR/abi.log" 2>&1 &&
		grep -q "first fake0" "$LOGDIR/abi.log" &&
		grep -q "hello from 2005" "$LOGDIR/abi.log"
	ok "IBVERBS_1.0 binary: shim devices, SEND${env:+ ($env)}" $? \
		"$LOGDIR/abi.log"
done
finish
