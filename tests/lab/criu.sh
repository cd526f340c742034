#!/bin/bash
# SPDX-License-Identifier: MIT
# CRIU in the guest, across a reboot (in the guest):
#   criu.sh dump BUILD_DIR STATE_DIR      boot 1: criu check; start
#       criu_probe (a verbs process that released its RDMA resources) and
#       dump it into STATE_DIR/criu
#   criu.sh restore BUILD_DIR STATE_DIR   boot 2: restore it from there, let
#       it go on: same PID and memory, and it uses rxe0 again
# STATE_DIR must be a writable dir that outlives the guest (guest.sh --rw).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

stage=${1:?usage: criu.sh dump|restore BUILD_DIR STATE_DIR}
BUILD=$(cd "${2:?}" && pwd)
D=$(cd "${3:?}" && pwd)/criu
PROBE=$BUILD/tests/lab/criu_probe
LOG=$(mktemp -d)

# wait_file FILE SECONDS
wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.1
	done
	return 1
}

dump() {
	local pid token rc=0
	rm -rf "$D" && mkdir -p "$D/img"
	criu check >"$LOG/check" 2>&1 || true
	ok "criu check: Looks good" "$(rc grep -q '^Looks good' "$LOG/check")" \
		"$LOG/check" || return 0
	# restored PIDs must be free in the next boot, which starts low again
	echo 20000 >/proc/sys/kernel/ns_last_pid
	setsid "$PROBE" rxe0 "$D" </dev/null >/dev/null 2>&1 &
	disown # the dump kills it: no "Killed" from this shell
	ok "criu_probe ran verbs on rxe0 and released them" \
		"$(rc wait_file "$D/ready" 60)" "$D/error" || return 0
	read -r _ pid token <"$D/ready"
	echo "$pid $token" >"$D/dumped"
	{ ls -l "/proc/$pid/fd" && cat "/proc/$pid/maps"; } >"$LOG/fds" 2>&1
	ok "no /dev/infiniband fd or mapping left in the probe" \
		"$(rc not grep -q infiniband "$LOG/fds")" "$LOG/fds" || true
	criu dump -t "$pid" -D "$D/img" -o dump.log -v4 >"$LOG/dump" 2>&1 || rc=$?
	ok "criu dump of the probe (pid $pid)" $rc "$D/img/dump.log" || return 0
	ok "the probe is gone after the dump" "$(rc not kill -0 "$pid")" || true
}

restore() {
	local pid token rpid rtoken count rc=0
	ok "a dump from the previous boot is there" "$(rc test -s "$D/dumped")" ||
		return 0
	read -r pid token <"$D/dumped"
	ok "pid $pid is free in this boot" "$(rc not kill -0 "$pid")" || return 0
	criu restore -D "$D/img" -d -o restore.log -v4 >"$LOG/restore" 2>&1 || rc=$?
	ok "criu restore after the reboot" $rc "$D/img/restore.log" || return 0
	touch "$D/go"
	ok "the restored probe reopened rxe0 and ran verbs again" \
		"$(rc wait_file "$D/result" 60)" "$D/error" || return 0
	read -r _ rpid rtoken count <"$D/result"
	ok "same pid ($rpid), same memory (token), counted on ($count)" \
		"$(rc test "$rpid" = "$pid" -a "$rtoken" = "$token" -a "$count" -gt 0)" \
		"$D/result" || true
}

case $stage in
dump) dump ;;
restore) restore ;;
*) echo "criu.sh: unknown stage $stage" >&2 && exit 2 ;;
esac
rm -rf "$LOG"
finish
