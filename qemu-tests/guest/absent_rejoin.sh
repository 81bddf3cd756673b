#!/bin/sh
# Scenario 12: activation with leg 1 absent: read-write at once. Then the table is reloaded
# with leg 1 present and `rejoin 1` resyncs it fully (legs identical: host).
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vda)
expect "create m0 without leg 1" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda - 2 /dev/vdc /dev/vdd 2 region_size 1024"
a=$(write_random /dev/mapper/m0 4 2) || fail "write with a leg absent"
st=$(status_of m0)
case $st in "2 AM "*) ;; *) fail "status with leg 1 absent: '$st'" ;; esac
expect "reload with leg 1" dmsetup reload m0 --table "0 $size rtmirror $LOGGED_TABLE_ARGS"
expect "resume" dmsetup resume m0
st=$(status_of m0)
result status_reloaded "$st"
expect "rejoin 1" dmsetup message m0 0 rejoin 1
wait_in_sync m0 300
[ "$(md5_of /dev/mapper/m0 4 2)" = "$a" ] || fail "data written while leg 1 was absent"
expect "remove m0" dmsetup remove m0
kernel_log_clean
