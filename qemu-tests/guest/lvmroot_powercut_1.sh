#!/bin/sh
# Root on an lvm rtmirror LV, subsystem b hanging from the start (its PV left out by the
# initramfs, leg 1 missing): write and fsync files while degraded, then the power fails (the
# host kills QEMU; the disks' caches lose a seeded part of their unflushed writes).
. /scenarios/lib.sh
lvmroot_boot_report
st=$(status_of $LVMROOT_DM)
case "$st" in "2 AM "*" 2 AF degraded "*) ;; *) fail "root LV with leg 1 left out: '$st'" ;; esac
root_write_files p 4
result status_degraded "$(status_of $LVMROOT_DM)"
host powercut
