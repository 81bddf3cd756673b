#!/bin/sh
# Root on an lvm rtmirror LV with one storage subsystem's PV left out by the initramfs (disk not
# attached, failing, or hanging: rtm.outleg=<leg> names the leg on it): the LV runs read-write
# with that leg missing (M) and its log copy failed (F). Write and fsync files. With rtm.heal=1
# the subsystem then comes back in this boot (the host heals disk <leg>: errors off, held
# requests released): lvchange --refresh rejoins the leg and the log copy, the resync runs, and
# the boot shuts down cleanly in sync; without it, it shuts down cleanly degraded.
. /scenarios/lib.sh
out=$(sed -n 's/.*rtm\.outleg=\([0-9]\).*/\1/p' /proc/cmdline)
heal=$(sed -n 's/.*rtm\.heal=\([0-9]\).*/\1/p' /proc/cmdline)
lvm_setup
lvmroot_boot_report
st=$(status_of $LVMROOT_DM)
case "$out:$st" in
1:"2 AM "*" 2 AF degraded "*|0:"2 MA "*" 2 FA degraded "*) ;;
*) fail "root LV with leg $out left out: '$st'" ;;
esac
root_write_files d 4
result status_degraded "$(status_of $LVMROOT_DM)"
if [ "$heal" = 1 ]; then
	host heal $out
	result heal "$HOST_REPLY"
	lvmroot_rejoin $out
	root_report_files
fi
kernel_log_clean
root_clean_shutdown
