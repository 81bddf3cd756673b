#!/usr/bin/env bash
# Build the guest initramfs for one architecture: busybox, dmsetup with its libraries, lvm
# (scripts/build-lvm2.sh), the rtmirror module and the guest side of the scenarios
# (qemu-tests/guest/).
# usage: build-initramfs.sh <x86_64|s390x> <kernel build dir> <output.cpio.gz> [<rootfs.ext4>]
# With a fourth argument, the same tree is also written as an ext4 image (64 MiB): the root file
# system of the root-on-rtmirror boots (qemu-tests/run.py, docs/boot.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
arch=${1:?arch}; kbuild=${2:?kernel build dir}; out=${3:?output}; rootfs=${4:-}

root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,lib,lib64,etc,scenarios,modules}

copy_with_libs() { # <sysroot> <binary> <dest in root>
	local sysroot=$1 bin=$2 dest=$3 lib
	cp -L "$sysroot$bin" "$root$dest"
	case $arch in
	x86_64) for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
			mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done ;;
	s390x) for lib in lib/ld64.so.1 lib/s390x-linux-gnu/libc.so.6 lib/s390x-linux-gnu/libm.so.6 \
			lib/s390x-linux-gnu/libdevmapper.so.1.02.1 lib/s390x-linux-gnu/libselinux.so.1 \
			usr/lib/s390x-linux-gnu/libudev.so.1 usr/lib/s390x-linux-gnu/libpcre2-8.so.0 \
			lib/s390x-linux-gnu/libcap.so.2; do
			[ -e "$sysroot/$lib" ] || continue
			mkdir -p "$root/$(dirname "$lib")"; cp -L "$sysroot/$lib" "$root/$lib"; done ;;
	esac
}

case $arch in
x86_64) cp /bin/busybox "$root/bin/busybox"; copy_with_libs "" /sbin/dmsetup /sbin/dmsetup ;;
s390x) s390=$RTMIRROR_CACHE/s390x-userland/root
	[ -e "$s390/bin/busybox" ] || die "s390x userland missing: run scripts/install-deps.sh"
	cp "$s390/bin/busybox" "$root/bin/busybox"; copy_with_libs "$s390" /sbin/dmsetup /sbin/dmsetup ;;
*) die "unknown arch $arch" ;;
esac

# lvm2 with the rtmirror segment type (lvm2-patches/, docs/lvm.md), for the lvm scenarios.
lvm=$(bash "$here/scripts/build-lvm2.sh" "$arch" | tail -n 1)
[ -x "$lvm" ] || die "no lvm.static from build-lvm2.sh"
mkdir -p "$root"/{etc/lvm,run/lvm,run/lock/lvm}
cp "$lvm" "$root/sbin/lvm"
for c in pvcreate pvremove pvs pvscan vgcreate vgremove vgs vgchange vgscan lvcreate lvremove \
	lvs lvchange lvdisplay lvscan lvmconfig; do
	ln -s lvm "$root/sbin/$c"
done
cp "$here/qemu-tests/guest/lvm.conf" "$root/etc/lvm/lvm.conf"
# An empty ext4 file system of 96 MiB, made here (neither guest has mkfs.ext4; e2fsprogs is not
# in the s390x userland): lvm_two_layer writes it onto its rtmirror LV. x86_64 also gets e2fsck.
mkdir -p "$root/lib/rtm"
truncate -s 96M "$root/lib/rtm/ext4-96m.img"
mkfs.ext4 -q -F -b 4096 -L two_layer "$root/lib/rtm/ext4-96m.img"
gzip -9 "$root/lib/rtm/ext4-96m.img"
case $arch in x86_64) copy_with_libs "" /sbin/e2fsck /sbin/e2fsck ;; esac

# The soak's workload and oracle (qemu-tests/soak.py), linked statically: no libraries to copy.
case $arch in x86_64) cc=gcc ;; s390x) cc=s390x-linux-gnu-gcc ;; esac
$cc -O2 -Wall -static -pthread -o "$root/bin/rtm-stress" "$here/qemu-tests/soak/rtm_stress.c"
# Write-zeroes from the scenarios (busybox's blkdiscard has no -z).
$cc -O2 -Wall -static -o "$root/sbin/blkzeroout" "$here/qemu-tests/tools/blkzeroout.c"

ko="$kbuild/rtmirror-module-$(checkout_key)/dm_rtmirror/dm_rtmirror.ko"
[ -e "$ko" ] && cp "$ko" "$root/modules/"
cp "$here"/qemu-tests/guest/*.sh "$root/scenarios/"
# lvm2's own tests of the segment type (lvm_shell_tests): test/shell/rtmirror-*.sh exactly as
# lvm2-patches/ carries them (each patch's part under test/shell/ applied in turn), beside the
# guest's port of lvm2's test harness (qemu-tests/guest/lvm2-test-lib/).
mkdir -p "$root/scenarios/lvm2-test/lib" "$root/scenarios/lvm2-test/shell"
cp "$here"/qemu-tests/guest/lvm2-test-lib/* "$root/scenarios/lvm2-test/lib/"
lvm2_tests=$(mktemp -d)
for p in "$here"/lvm2-patches/*.patch; do
	grep -q '^+++ b/test/shell/rtmirror-' "$p" || continue
	git -C "$lvm2_tests" apply --include='test/shell/rtmirror-*' "$p" ||
		die "$(basename "$p"): its test/shell/rtmirror-* part does not apply"
done
ls "$lvm2_tests"/test/shell/rtmirror-*.sh >/dev/null 2>&1 || die "no test/shell/rtmirror-*.sh in lvm2-patches/"
cp "$lvm2_tests"/test/shell/rtmirror-*.sh "$root/scenarios/lvm2-test/shell/"
rm -rf "$lvm2_tests"
cp "$here/qemu-tests/guest/init" "$root/init"
chmod +x "$root/init" "$root"/scenarios/*.sh "$root"/scenarios/lvm2-test/lib/* \
	"$root"/scenarios/lvm2-test/shell/*.sh
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$out.tmp")
mv "$out.tmp" "$out"
if [ -n "$rootfs" ]; then
	rm -f "$rootfs.tmp"
	mkfs.ext4 -q -F -L rtmroot -E root_owner=0:0 -d "$root" "$rootfs.tmp" 64M
	mv "$rootfs.tmp" "$rootfs"
fi
