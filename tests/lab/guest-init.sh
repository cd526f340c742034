#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: MIT
# /init of the lab guest's initramfs (busybox).  Loads the modules, mounts the
# host's root read-only over 9p with tmpfs on its scratch dirs, mounts the
# control dir and the writable dirs, runs the control dir's setup and cmd
# scripts in the host root, records cmd's status and powers off.  Every
# failure of its own ends with a line "IBSNAP-LAB-ERROR: cause" on ttyS0,
# which tests/lab/guest.sh reports.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# ttyS0 carries this script's and the command's output, ttyS1 (the kernel's
# console) the kernel's messages
exec </dev/null >/dev/ttyS0 2>&1
echo IBSNAP-LAB-INIT

fail() {
	echo "IBSNAP-LAB-ERROR: $*"
	sync
	poweroff -f
	sleep 60
}

read -r mods </mods/order
for m in $mods; do
	insmod "/mods/$m.ko" || fail "insmod $m failed"
done

O=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /ctl /host
mount -t 9p -o $O,cache=none ibsnapctl /ctl || fail "cannot mount the control dir (9p)"
mount -t 9p -o $O,cache=loose,ro hostroot /host || fail "cannot mount the host's root (9p)"
mount -t proc proc /host/proc || fail "cannot mount /proc"
mount -t sysfs sys /host/sys || fail "cannot mount /sys"
mount -t devtmpfs dev /host/dev || fail "cannot mount /dev"
mkdir -p /host/dev/pts /host/dev/shm 2>/dev/null
mount -t devpts pts /host/dev/pts || fail "cannot mount /dev/pts"
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
for d in tmp run var/tmp dev/shm; do
	mount -t tmpfs -o mode=1777 tmp "/host/$d" || fail "cannot mount tmpfs on /$d"
done
mkdir -p /host/run/ibsnap-lab
mount --bind /ctl /host/run/ibsnap-lab || fail "cannot bind the control dir"
i=0
while read -r p; do
	[ -n "$p" ] || continue
	mkdir -p "/host$p" 2>/dev/null # inside one of the tmpfs above
	mount -t 9p -o $O,cache=none "rw$i" "/host$p" || fail "cannot mount writable dir $p"
	i=$((i + 1))
done </ctl/rw
hostname lab

chroot /host /bin/bash /run/ibsnap-lab/setup >/ctl/setup.log 2>&1 ||
	fail "guest setup failed: $(tail -3 /ctl/setup.log | tr '\n' ' ')"
echo IBSNAP-LAB-READY
chroot /host /bin/bash /run/ibsnap-lab/cmd
rc=$?
echo "$rc" >/ctl/status
sync
echo
echo "IBSNAP-LAB-EXIT=$rc"
poweroff -f
