#!/bin/busybox sh
# The initramfs's part of a boot from a root file system on an lvm rtmirror LV (docs/boot.md,
# "Root on an lvm rtmirror LV"). Run by /init as PID 1 with rtm.lvmroot=<vg>/<lv> on the kernel
# command line; /proc, /sys, /dev and /tmp are mounted, the disks named.
#   1. The candidate PVs: the partitions whose GPT name starts with rtm.pvlabel= (default
#      "rtm-pv-"), found in sysfs (no I/O).
#   2. Each is probed with one 4 KiB O_DIRECT read, all at once in the background; those that
#      answer within rtm.pvwait_ms= (default 2000) are the devices lvm may read. A hung
#      subsystem never answers and the read stays blocked (uninterruptibly), so it must not be
#      lvm's read: an lvm scan of a hung disk never ends (docs/lvm-two-layer.md).
#   3. vgchange -ay --activationmode degraded --devices <those> <vg>: legs and log copies on
#      the PVs left out are absent ("-") in the table, the target starts with them missing.
#   4. Mount the LV read-write, switch_root to it, its /init runs the scenario.
# Nothing here may end PID 1: a failure is reported and the guest powers off.
export PATH=/bin:/sbin DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1
. /scenarios/lib.sh
lvpath=${1:?vg/lv}
vg=${lvpath%/*} lv=${lvpath#*/}
arg() { sed -n "s/.*rtm\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
give_up() {
	fail "initramfs: $*"
	dmesg | tail -n 30 | while IFS= read -r l; do note "kernel: $l"; done
	echo "@@DONE"
	case $(uname -m) in s390x) poweroff -f ;; *) reboot -f ;; esac
	sleep 3600
}
read -r up _ </proc/uptime
result initramfs_s "$up"
t0=$(uptime_cs)
label=$(arg pvlabel); label=${label:-rtm-pv-}
wait_ms=$(arg pvwait_ms); wait_ms=${wait_ms:-2000}

cands=""
for u in /sys/class/block/*/uevent; do
	grep -q "^PARTNAME=$label" "$u" || continue
	cands="$cands $(sed -n 's/^DEVNAME=//p' "$u")"
done
[ -n "$cands" ] || give_up "no partition named $label*"
mkdir -p /tmp/probe
for n in $cands; do
	(
		if dd if=/dev/$n of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then r=ok; else r=error; fi
		echo $r >/tmp/probe/$n.tmp && mv /tmp/probe/$n.tmp /tmp/probe/$n
	) 2>/dev/null &
done
deadline=$(($(uptime_cs) + wait_ms / 10))
while :; do
	left=0
	for n in $cands; do [ -e /tmp/probe/$n ] || left=1; done
	[ $left = 0 ] || [ $(uptime_cs) -ge $deadline ] && break
	usleep 20000
done
devices="" probe=""
for n in $cands; do
	r=$(cat /tmp/probe/$n 2>/dev/null); r=${r:-no answer}
	probe="$probe $n:$(echo $r | tr ' ' _)"
	[ "$r" = ok ] && devices="$devices${devices:+,}/dev/$n"
done
result pv_probe "${probe# }"
result pv_probe_cs $(($(uptime_cs) - t0))
[ -n "$devices" ] || give_up "no PV answered within $wait_ms ms:$probe"

mkdir -p /run/lock/lvm /run/lvm
t1=$(uptime_cs)
out=$(lvm vgchange -ay --activationmode degraded --devices "$devices" "$vg" 2>&1) ||
	give_up "vgchange -ay $vg failed: $(echo "$out" | tr '\n' '|')"
result vgchange "$(echo "$out" | sed 's/WARNING:/warning:/g' | tr '\n' '|')"
result vgchange_cs $(($(uptime_cs) - t1))
dm=$vg-$lv
result initramfs_table "$(dmsetup table "$dm")"
result initramfs_status "$(dmsetup status "$dm" | cut -d' ' -f4-)"
mkdir -p /newroot
mount -t ext4 -o rw "/dev/mapper/$dm" /newroot || give_up "mount /dev/mapper/$dm"
[ -x /newroot/init ] || give_up "no /init on $lvpath"
read -r up _ </proc/uptime
result switch_root_s "$up"
# The new root's /init mounts its own /proc, /sys and /tmp; /dev (devtmpfs, with lvm's
# /dev/mapper nodes) moves over.
umount /tmp /sys /proc
mount --move /dev /newroot/dev
export RTM_SWITCHED=1
exec switch_root /newroot /init
