#!/bin/sh
# Root on an lvm rtmirror LV, second boot after a clean shutdown: the activation found the clean
# shutdown (the host checks the kernel line), the mirror is healthy, the first boot's files are
# there; write more, shut down cleanly.
. /scenarios/lib.sh
lvmroot_boot_report
st=$(status_of $LVMROOT_DM)
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root LV at boot: '$st'" ;; esac
root_report_files
root_write_files b 2
kernel_log_clean
root_clean_shutdown
