#!/bin/sh
# Scenario 3: remove the device and unload the module cleanly.
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda /dev/vdb 0 0"
write_random /dev/mapper/m0 0 2 >/dev/null
expect "rmmod refused while in use" sh -c '! rmmod dm_rtmirror 2>/dev/null'
expect "remove m0" dmsetup remove m0
expect "rmmod" rmmod dm_rtmirror
grep -q '^dm_rtmirror ' /proc/modules && fail "module still loaded"
dmsetup targets | grep -q rtmirror && fail "target type still registered"
expect "insmod again" insmod /modules/dm_rtmirror.ko
dmsetup targets | grep -q '^rtmirror' || fail "target type not registered after reload"
expect "rmmod again" rmmod dm_rtmirror
kernel_log_clean
