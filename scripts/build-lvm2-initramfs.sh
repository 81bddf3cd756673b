#!/usr/bin/env bash
# Build the guest initramfs of scripts/build-initramfs.sh with lvm2 added: the static lvm of
# scripts/build-lvm2.sh (rtmirror segment type), its command links and a minimal
# /etc/lvm/lvm.conf (qemu-tests/guest/lvm.conf), appended as a second cpio archive (the kernel unpacks both).
# usage: build-lvm2-initramfs.sh <x86_64|s390x> <kernel build dir> <output.cpio.gz>
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
arch=${1:?arch}; kbuild=${2:?kernel build dir}; out=${3:?output}

lvm=$("$here/scripts/build-lvm2.sh" "$arch" | tail -n 1)
[ -x "$lvm" ] || die "no lvm.static from build-lvm2.sh"
"$here/scripts/build-initramfs.sh" "$arch" "$kbuild" "$out.base"

root=$(mktemp -d); trap 'rm -rf "$root" "$out.base" "$out.lvm"' EXIT
mkdir -p "$root"/{sbin,etc/lvm,run/lvm,run/lock/lvm}
cp "$lvm" "$root/sbin/lvm"
for c in pvcreate pvremove pvs pvscan vgcreate vgremove vgs vgchange vgscan lvcreate lvremove \
	lvs lvchange lvdisplay lvscan lvmconfig; do
	ln -s lvm "$root/sbin/$c"
done
cp "$here/qemu-tests/guest/lvm.conf" "$root/etc/lvm/lvm.conf"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$out.lvm")
cat "$out.base" "$out.lvm" >"$out.tmp"
mv "$out.tmp" "$out"
log "initramfs with lvm: $out"
echo "$out"
