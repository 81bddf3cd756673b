#!/bin/sh
# Scenario 10: leg 0 hangs (Degraded), then leg 1 returns write errors (Inactive): no in-sync
# leg is left, so writes fail and status says failed. When leg 0 answers again it is NOT
# brought back (its data is older than leg 1's), and reads fail rather than serve it.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
wait_in_sync m0
host hang 0
dd if=/dev/urandom of=/dev/mapper/m0 bs=65536 count=1 seek=10 oflag=direct 2>/dev/null || fail "write while leg 0 hangs"
wait_leg_state m0 0 D 60 >/dev/null || exit 0
b=$(write_random /dev/mapper/m0 2 1) || fail "write with leg 0 Degraded"
host error 1 write
dd if=/dev/urandom of=/dev/mapper/m0 bs=65536 count=1 seek=100 oflag=direct 2>/dev/null &&
	fail "a write succeeded with no in-sync leg"
st=$(status_of m0)
result status_failed "$st"
case $st in "2 DI "*" failed "*) ;; *) fail "status with no in-sync leg: '$st'" ;; esac
host release 0
sleep 4
st=$(status_of m0)
result status_after_release "$st"
case $st in "2 DI "*" failed "*) ;; *) fail "the stale leg 0 came back: '$st'" ;; esac
dmesg | grep -q "leg 0 answers again" && fail "stale leg 0 was resynced"
dd if=/dev/mapper/m0 of=/dev/null bs=65536 count=1 skip=32 iflag=direct 2>/dev/null &&
	fail "a read was served with no in-sync leg"
expect_fail "rejoin 0 without a source" dmsetup message m0 0 rejoin 0
host heal 1
expect "remove m0" dmsetup remove m0
kernel_log_clean
