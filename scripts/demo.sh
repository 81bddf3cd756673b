#!/usr/bin/env bash
# The main job (README): install, build the x86_64 guest kernel and rtmirror, boot the guest,
# create a mirror over two disks whose backends the host controls, make one leg's storage fail
# every write, and show the mirror carrying on. Prints the guest console.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/lib.sh
bash scripts/install-deps.sh
out=$(bash scripts/build-kernel.sh x86_64 | tail -n 1)
bash scripts/build-initramfs.sh x86_64 "$out" "$out/initramfs-$(checkout_key).cpio.gz"
python3 qemu-tests/run.py --arch x86_64 --kernel "$out/arch/x86/boot/bzImage" \
	--initrd "$out/initramfs-$(checkout_key).cpio.gz" --only leg_error --verbose
