#!/usr/bin/env bash
# Build the initramfs of the benchmark guest (qemu-tests/bench.py, docs/benchmarks.md): the test
# guest's init and lib.sh, the bench scripts (qemu-tests/bench/guest/), busybox, dmsetup, fio,
# mdadm and mke2fs with their shared libraries. Kept apart from the test initramfs
# (scripts/build-initramfs.sh), which stays small.
# usage: build-bench-initramfs.sh <x86_64|s390x> <output.cpio.gz> [<dm_rtmirror.ko>]
# With a module, the guest loads it (for kernels without the target built in).
# x86_64 takes the host's binaries (apt-get install fio mdadm e2fsprogs); s390x takes them from
# Debian's s390x packages, unpacked into $RTMIRROR_CACHE/s390x-bench-userland (apt-get download).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
arch=${1:?arch}; out=${2:?output}; ko=${3:-}

root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,lib,lib64,etc,scenarios,modules,mnt}

case $arch in
x86_64) sysroot="" ;;
s390x) sysroot=$RTMIRROR_CACHE/s390x-bench-userland/root
	[ -e "$sysroot/usr/bin/fio" ] || die "s390x bench userland missing: run scripts/install-bench-deps.sh s390x" ;;
*) die "unknown arch $arch" ;;
esac

# Copy <binary> (a path inside the sysroot) to <dest> in the image, with every library it needs
# (recursively, found by their DT_NEEDED names in the sysroot's library directories).
libdirs() {
	case $arch in
	x86_64) echo /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/ceph /lib64 ;;
	s390x) echo "$sysroot/lib/s390x-linux-gnu" "$sysroot/usr/lib/s390x-linux-gnu" \
		"$sysroot/usr/lib/s390x-linux-gnu/ceph" "$sysroot/lib" ;;
	esac
}
copied=" "
copy_lib() { # <soname>
	local name=$1 d f
	case $copied in *" $name "*) return 0 ;; esac
	copied="$copied$name "
	for d in $(libdirs); do
		f=$d/$name
		[ -e "$f" ] || continue
		local rel=${f#"$sysroot"}
		mkdir -p "$root$(dirname "$rel")"; cp -L "$f" "$root$rel"
		copy_needed "$f"
		return 0
	done
	die "library $name not found for $arch"
}
copy_needed() { # <elf file>
	local lib
	for lib in $(readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do copy_lib "$lib"; done
}
copy_bin() { # <path in sysroot> <dest in image>
	[ -e "$sysroot$1" ] || die "$sysroot$1 missing (install fio mdadm e2fsprogs dmsetup)"
	mkdir -p "$root$(dirname "$2")"
	cp -L "$sysroot$1" "$root$2"
	copy_needed "$sysroot$1"
}

case $arch in
x86_64) cp /bin/busybox "$root/bin/busybox"; copy_lib ld-linux-x86-64.so.2
	mkdir -p "$root/lib64"; ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2" ;;
s390x) cp "$sysroot/bin/busybox" "$root/bin/busybox"; copy_lib ld64.so.1
	[ -e "$root/lib/ld64.so.1" ] || { mkdir -p "$root/lib"; ln -sf s390x-linux-gnu/ld64.so.1 "$root/lib/ld64.so.1"; } ;;
esac
copy_bin /sbin/dmsetup /sbin/dmsetup
copy_bin /usr/bin/fio /bin/fio
copy_bin /sbin/mdadm /sbin/mdadm
copy_bin /sbin/mke2fs /sbin/mke2fs
ln -s mke2fs "$root/sbin/mkfs.ext4"
cp "$sysroot/etc/mke2fs.conf" "$root/etc/mke2fs.conf" 2>/dev/null || cp /etc/mke2fs.conf "$root/etc/mke2fs.conf"
# The guest kernels lack System V IPC and timerfd, which fio needs: emulated (see fioshim.c).
case $arch in x86_64) cc=gcc ;; s390x) cc=s390x-linux-gnu-gcc ;; esac
$cc -shared -fPIC -O2 -Wall -o "$root/lib/libfioshim.so" "$here/qemu-tests/bench/shim/fioshim.c" -lpthread
[ -n "$ko" ] && cp "$ko" "$root/modules/dm_rtmirror.ko"
cp "$here/qemu-tests/guest/lib.sh" "$here"/qemu-tests/bench/guest/*.sh "$root/scenarios/"
cp "$here/qemu-tests/guest/init" "$root/init"
chmod +x "$root/init" "$root"/scenarios/*.sh
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$out.tmp")
mv "$out.tmp" "$out"
log "$out: $(du -h "$out" | cut -f1)"
