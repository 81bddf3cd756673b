#!/bin/sh
# Both log copies fail: writes go on (unprotected), every region counts as out of sync, the
# status shows both copies failed; a write that then misses a leg fails instead of being
# acknowledged, since that fact can no longer be recorded (never wrong data).
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
sleep 3
host error 2 write
host error 3 write
sum=$(write_random /dev/mapper/m0 20 2) || fail "write with both log copies failing"
st=$(status_of m0)
result status "$st"
case $st in "2 AA 0/128 2 FF degraded "*) ;; *) fail "status with both log copies failed: '$st'" ;; esac
dmesg | grep -q 'every log copy failed' || fail "no kernel message for the lost log"
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5_of /dev/mapper/m0 20 2)" = "$sum" ] || fail "read back"
host error 1 write
dd if=/dev/urandom of=/dev/mapper/m0 bs=4096 count=1 seek=9000 oflag=direct conv=notrunc 2>/dev/null &&
	fail "a write that missed a leg was acknowledged although the log is lost"
result after_leg_error "$(status_of m0)"
for i in 1 2 3; do host heal $i; done
expect "remove m0" dmsetup remove m0
kernel_log_clean
