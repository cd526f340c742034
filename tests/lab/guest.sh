#!/bin/bash
# SPDX-License-Identifier: MIT
# The lab guest: a QEMU (TCG) machine running Debian's own kernel, which has
# Soft-RoCE and what CRIU needs, over this machine's root filesystem.
#
#   guest.sh prepare      fetch the kernel package, build the initramfs (once,
#                         into IBSNAP_LAB_CACHE; make deps runs this)
#   guest.sh run [--rw DIR]... [--no-rxe] [--timeout S] [--keep] [--quiet]
#                [--] CMD [ARGS...]
#                         boot, run CMD as root, power off; exit with CMD's
#                         status, or 124 (timed out) / 125 (the guest failed:
#                         no boot, no mount, no rxe0), each with the cause
#
# In the guest: the host's / read-only; /tmp, /run, /var/tmp, /dev/shm empty
# tmpfs; each --rw DIR writable at its own path (it outlives the guest, so a
# second run with the same --rw DIR is a reboot that sees only those dirs);
# rxe0 on veth0 (192.168.77.1/24, peer veth1 .2), lo up, no NIC at all to
# the outside; the cwd is the caller's.  CMD's output is streamed live.  A
# control dir holds console.log (ttyS0: CMD's output), kernel.log (ttyS1:
# the kernel's console), setup.log, and is kept (and named) when anything
# goes wrong, or with --keep.
# Environment: IBSNAP_LAB_CACHE (default /var/cache/ibsnap-lab for root),
# IBSNAP_LAB_MEM (MiB, 2048), IBSNAP_LAB_SMP (2), IBSNAP_LAB_TIMEOUT (s, 600).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${IBSNAP_LAB_CACHE:-/var/cache/ibsnap-lab}
if [[ -z ${IBSNAP_LAB_CACHE:-} && ! -w /var/cache ]]; then
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ibsnap-lab # not root
fi
# Top-level modules (their dependencies come from the kernel package):
# crc32_generic is a soft dependency of rdma_rxe ("failed to init crc32
# algorithm" without it); nf_tables and the *_diag modules are what CRIU
# needs to dump sockets and lock the network.
MODS="virtio_pci 9pnet_virtio 9p crc32_generic crc32c_generic rdma_rxe
rdma_ucm veth tun nf_tables unix_diag inet_diag tcp_diag udp_diag raw_diag
netlink_diag af_packet_diag"

die() { # status message...
	local rc=$1
	shift
	echo "lab: ERROR: $*" >&2
	exit "$rc"
}

# Cache layout: kernel-VER/{vmlinuz,mods/*.ko,order}, initrd-HASH.cpio,
# current (the kernel version in use).
kernel_ver() {
	[[ -s $CACHE/current ]] && cat "$CACHE/current"
}

fetch_kernel() {
	local pkg ver tmp m f order=()
	for t in apt-get apt-cache dpkg-deb depmod modprobe xz zstd; do
		command -v "$t" >/dev/null ||
			die 125 "'$t' is missing (make deps installs it)"
	done
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [[ -z $pkg ]]; then
		apt-get update -q >&2 || true
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	[[ -n $pkg ]] || die 125 "apt knows no linux-image-amd64 to run in the guest"
	ver=${pkg#linux-image-}
	echo "lab: fetching $pkg for the guest" >&2
	tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
	chmod 755 "$tmp" # apt-get's sandbox user writes there
	(cd "$tmp" && apt-get download -q "$pkg" >&2) ||
		die 125 "apt-get download $pkg failed"
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root"
	depmod -b "$tmp/root" "$ver"
	mkdir -p "$tmp/k/mods"
	cp "$tmp/root/boot/vmlinuz-$ver" "$tmp/k/vmlinuz"
	for m in $MODS; do
		while read -r _ f _; do
			m=$(basename "${f%%.ko*}")
			[[ " ${order[*]} " == *" $m "* ]] && continue
			case $f in
			*.xz) xz -dc "$f" >"$tmp/k/mods/$m.ko" ;;
			*.zst) zstd -qdc "$f" >"$tmp/k/mods/$m.ko" ;;
			*) cp "$f" "$tmp/k/mods/$m.ko" ;;
			esac
			order+=("$m")
		done < <(modprobe -d "$tmp/root" -S "$ver" --show-depends "$m" |
			grep '^insmod')
	done
	echo "${order[*]}" >"$tmp/k/mods/order"
	rm -rf "$CACHE/kernel-$ver"
	mv "$tmp/k" "$CACHE/kernel-$ver"
	rm -rf "$tmp"
	echo "$ver" >"$CACHE/current"
}

initrd_path() {
	local ver=$1 h
	h=$( (cat "$HERE/guest-init.sh" "$CACHE/kernel-$ver/mods/order" &&
		sha256sum /bin/busybox) | sha256sum | cut -c1-16)
	echo "$CACHE/initrd-$ver-$h.cpio"
}

build_initrd() {
	local ver=$1 out=$2 tmp
	[[ -x /bin/busybox ]] || die 125 "/bin/busybox is missing (make deps installs busybox-static)"
	if readelf -l /bin/busybox 2>/dev/null | grep -q 'INTERP'; then
		die 125 "/bin/busybox is not static (install busybox-static)"
	fi
	command -v cpio >/dev/null || die 125 "cpio is missing (make deps installs it)"
	tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
	mkdir -p "$tmp"/{bin,mods,proc,sys,dev,tmp}
	cp /bin/busybox "$tmp/bin/busybox"
	cp "$CACHE/kernel-$ver"/mods/* "$tmp/mods/"
	install -m 755 "$HERE/guest-init.sh" "$tmp/init"
	(cd "$tmp" && find . | cpio -o -H newc --quiet) >"$tmp.cpio"
	rm -f "$CACHE"/initrd-"$ver"-*.cpio
	mv "$tmp.cpio" "$out"
	rm -rf "$tmp"
}

prepare() {
	local ver out
	mkdir -p "$CACHE" || die 125 "cannot create the cache dir $CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	ver=$(kernel_ver) || true
	if [[ -z $ver || ! -s $CACHE/kernel-$ver/vmlinuz ]]; then
		fetch_kernel
		ver=$(kernel_ver)
	fi
	out=$(initrd_path "$ver")
	[[ -s $out ]] || build_initrd "$ver" "$out"
	flock -u 9
}

# The tail of the console log, without escape sequences.
console_tail() {
	tr -d '\r' <"$1" | sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' |
		{ grep -av '^$' || true; } | tail -"${2:-20}" | sed 's/^/    | /' >&2
}

run() {
	local rw=() rxe=1 timeout=${IBSNAP_LAB_TIMEOUT:-600} keep=0 quiet=0 p
	while (($#)); do
		case $1 in
		--rw)
			[[ -d ${2:-} ]] || die 2 "--rw ${2:-}: not a directory"
			rw+=("$(realpath "$2")")
			shift 2
			;;
		--no-rxe) rxe=0 && shift ;;
		--timeout) timeout=$2 && shift 2 ;;
		--keep) keep=1 && shift ;;
		--quiet) quiet=1 && shift ;;
		--) shift && break ;;
		-*) die 2 "unknown option $1" ;;
		*) break ;;
		esac
	done
	(($#)) || die 2 "usage: guest.sh run [--rw DIR]... [--no-rxe] [--timeout S] -- CMD [ARGS...]"
	command -v qemu-system-x86_64 >/dev/null ||
		die 125 "qemu-system-x86_64 is missing (make deps installs qemu-system-x86)"
	prepare
	local ver ctl
	ver=$(kernel_ver)
	ctl=$(mktemp -d "${TMPDIR:-/tmp}/ibsnap-lab.XXXXXX")
	# The guest lays tmpfs over /tmp, /run, /var/tmp and /dev/shm: a
	# working directory under one of them (a CI clone in /tmp) is mounted
	# from the host first, so the command finds its files where they are.
	case $PWD/ in
	/tmp/* | /run/* | /var/tmp/* | /dev/shm/*) rw=("$PWD" "${rw[@]+"${rw[@]}"}") ;;
	esac
	printf '%s\n' "${rw[@]+"${rw[@]}"}" >"$ctl/rw"
	cat >"$ctl/setup" <<EOF
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
if [ $rxe = 1 ]; then
	ip link add veth0 type veth peer name veth1
	ip addr add 192.168.77.1/24 dev veth0
	ip addr add 192.168.77.2/24 dev veth1
	ip link set veth0 up
	ip link set veth1 up
	rdma link add rxe0 type rxe netdev veth0
	for i in \$(seq 50); do
		grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state && exit 0
		sleep 0.1
	done
	echo "rxe0 did not become ACTIVE"
	exit 1
fi
EOF
	{
		echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
		echo 'export HOME=/root LANG=C.UTF-8 TERM=dumb'
		printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
		printf 'exec </dev/null\n'
		printf '%q ' "$@"
		echo
	} >"$ctl/cmd"
	local dev=() i=0
	for p in "${rw[@]+"${rw[@]}"}"; do
		dev+=(-virtfs "local,path=$p,mount_tag=rw$i,security_model=passthrough,multidevs=remap")
		i=$((i + 1))
	done
	: >"$ctl/console.log"
	local t0=$SECONDS qpid rc=0
	timeout -k 10 "$timeout" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -m "${IBSNAP_LAB_MEM:-2048}" \
		-smp "${IBSNAP_LAB_SMP:-2}" -nodefaults -no-user-config \
		-display none -nic none -no-reboot \
		-serial "file:$ctl/console.log" -serial "file:$ctl/kernel.log" \
		-kernel "$CACHE/kernel-$ver/vmlinuz" -initrd "$(initrd_path "$ver")" \
		-append "console=ttyS1 loglevel=4 panic=-1 oops=panic" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$ctl,mount_tag=ibsnapctl,security_model=none,multidevs=remap" \
		"${dev[@]+"${dev[@]}"}" </dev/null >"$ctl/qemu.log" 2>&1 &
	qpid=$!
	if ((quiet)); then
		wait "$qpid" || rc=$?
	else
		# the command's output: what follows the READY marker
		tail -n +1 -s 0.2 -f --pid="$qpid" "$ctl/console.log" |
			tr -d '\r' | awk '/IBSNAP-LAB-EXIT=/ { exit }
				go { print; fflush() } /IBSNAP-LAB-READY/ { go = 1 }' ||
			true
		wait "$qpid" || rc=$?
	fi
	local took=$((SECONDS - t0)) cause=
	if [[ -s $ctl/status ]] && grep -aq 'IBSNAP-LAB-EXIT=' "$ctl/console.log"; then
		rc=$(cat "$ctl/status")
		if ((keep)); then
			echo "lab: guest files kept in $ctl" >&2
		else
			rm -rf "$ctl"
		fi
		return "$rc"
	fi
	if ((rc == 124 || rc == 137)); then
		if grep -aq IBSNAP-LAB-READY "$ctl/console.log"; then
			cause="timed out after ${timeout} s while running: $*"
		elif grep -aq IBSNAP-LAB-INIT "$ctl/console.log"; then
			cause="timed out after ${timeout} s while setting up (modules, mounts, rxe0)"
		else
			cause="timed out after ${timeout} s before the kernel reached /init"
		fi
		rc=124
	else
		cause=$(tr -d '\r' <"$ctl/console.log" |
			sed -n 's/.*IBSNAP-LAB-ERROR: //p' | head -1)
		if [[ -z $cause ]] && grep -aq 'Kernel panic' "$ctl/kernel.log"; then
			cause=$(grep -a -m1 'Kernel panic' "$ctl/kernel.log" | tr -d '\r')
		fi
		[[ -n $cause ]] || {
			if [[ -s $ctl/qemu.log ]]; then
				cause="qemu exited ($rc): $(head -3 "$ctl/qemu.log" | tr '\n' ' ')"
			else
				cause="the guest stopped without reporting a status (qemu exit $rc)"
			fi
		}
		rc=125
	fi
	echo "lab: ERROR: guest failed after ${took} s: $cause" >&2
	echo "lab: console.log, kernel.log, setup.log kept in $ctl" >&2
	echo "lab: console.log ends:" >&2
	console_tail "$ctl/console.log" 12
	echo "lab: kernel.log ends:" >&2
	console_tail "$ctl/kernel.log" 12
	return "$rc"
}

case ${1:-} in
prepare) prepare && echo "lab: guest kernel $(kernel_ver) ready in $CACHE" >&2 ;;
run) shift && run "$@" ;;
*)
	sed -n '3,22s/^# \{0,1\}//p' "$0"
	exit 2
	;;
esac
