#!/bin/sh
# Root on an lvm rtmirror LV (qemu-tests/lvm_root.py), healthy: the initramfs activated rootvg
# with lvm (both PVs answered its probe), mounted rootvg/root read-write and switched to it.
# Write and fsync files, shut down cleanly (the host checks that both log copies say so).
. /scenarios/lib.sh
lvmroot_boot_report
st=$(status_of $LVMROOT_DM)
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root LV at boot: '$st'" ;; esac
root_write_files a 4
kernel_log_clean
root_clean_shutdown
