#!/bin/sh
# One log copy (vdc) fails every write: writes to new regions (which need log writes) go on
# without error, the copy is reported failed in the status, and an event is raised.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
# Let the lazy clean run, so that the regions written next are clean and need a log write.
sleep 3
ev0=$(dmsetup info -c --noheadings -o events m0)
host error 2 write
sum=$(write_random /dev/mapper/m0 20 4) || fail "write with a failed log copy"
st=$(status_of m0)
result status "$st"
case $st in "2 AA "*" 2 FA "*) ;; *) fail "status does not show log copy 0 failed: '$st'" ;; esac
ev1=$(dmsetup info -c --noheadings -o events m0)
result events "$ev0 $ev1"
[ "$ev1" -gt "$ev0" ] || fail "no device-mapper event for the failed log copy ($ev0 -> $ev1)"
dmesg | grep -q 'log copy 0 failed' || fail "no kernel message naming the failed log copy"
more=$(write_random /dev/mapper/m0 40 2) || fail "later write with one log copy"
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5_of /dev/mapper/m0 20 4)" = "$sum" ] || fail "read back"
host heal 2
expect "remove m0" dmsetup remove m0
kernel_log_clean
