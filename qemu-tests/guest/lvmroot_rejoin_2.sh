#!/bin/sh
# Root on an lvm rtmirror LV, both subsystems there again after a degraded boot (or a power cut
# while degraded): the log copy that ran names the leg that was left out as missing (M); the
# other log copy, of an older generation, is not used for the state (the target writes it anew
# with the next log write, so it shows A). Report the files this boot reads; lvchange --refresh
# rejoins the leg, the resync copies to it from the other leg while the system runs; wait until
# in sync, shut down cleanly.
. /scenarios/lib.sh
lvm_setup
lvmroot_boot_report
root_report_files
st=$(status_of $LVMROOT_DM)
case "$st" in "2 AM "*" degraded "*|"2 MA "*" degraded "*) ;;
*) fail "root LV after a degraded boot: '$st' (a leg missing expected)" ;;
esac
lvmroot_rejoin any
kernel_log_clean
root_clean_shutdown
