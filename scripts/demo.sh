#!/usr/bin/env bash
# The main job (README): install, build the x86_64 guest kernel with rtmirror built in, boot the
# guest, create a mirror over two disks whose backends the host controls, make one leg's storage
# fail every write, and show the mirror carrying on. Prints the guest console.
#   --degraded-root   instead: boot from a root file system on rtmirror while one storage
#                     subsystem hangs, run degraded, release it, resync (docs/boot.md)
#   --lvm             instead: lvcreate --type rtmirror, one subsystem's disk fails, lvs,
#                     lvconvert --repair onto a spare PV, resync (docs/lvm.md)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/lib.sh
scenario=leg_error
case ${1:-} in
"") ;;
--degraded-root) scenario=root_hang ;;
--lvm) scenario=lvm_demo ;;
*) die "usage: demo.sh [--degraded-root | --lvm]" ;;
esac
bash scripts/install-deps.sh
out=$(bash scripts/build-kernel.sh x86_64 builtin | tail -n 1)
bash scripts/build-initramfs.sh x86_64 "$out" "$out/initramfs-$(checkout_key).cpio.gz" "$out/rootfs-$(checkout_key).ext4"
python3 qemu-tests/run.py --arch x86_64 --builtin --kernel "$out/image-$(checkout_key)" \
	--initrd "$out/initramfs-$(checkout_key).cpio.gz" --rootfs "$out/rootfs-$(checkout_key).ext4" \
	--only "$scenario" --verbose
