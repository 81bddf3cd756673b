#!/bin/sh
# rtmirror compiled into the kernel (CONFIG_DM_RTMIRROR=y): the target exists at boot without
# loading a module (the precondition for a root file system on rtmirror), and it mirrors.
. /scenarios/lib.sh
dmsetup targets | grep -q '^rtmirror' || fail "rtmirror target not registered at boot"
[ -e /modules/dm_rtmirror.ko ] && fail "built-in image must not carry the module"
grep -q '^dm_rtmirror ' /proc/modules && fail "dm_rtmirror shows up as a loaded module"
size=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda /dev/vdb 0 0"
sum=$(write_random /dev/mapper/m0 8 4)
result pattern_md5 "$sum"
result pattern_offset_mib 8
result pattern_mib 4
dd if=/dev/urandom of=/tmp/small bs=4096 count=3 2>/dev/null
dd if=/tmp/small of=/dev/mapper/m0 bs=4096 seek=5001 oflag=direct conv=fsync,notrunc 2>/dev/null || fail "small write"
result small_md5 "$(md5sum </tmp/small | cut -d' ' -f1)"
result small_offset_bytes $((5001 * 4096))
[ "$(md5_of /dev/mapper/m0 8 4)" = "$sum" ] || fail "read back"
expect "remove m0" dmsetup remove m0
kernel_log_clean
