#!/bin/sh
# Scenario 4: start with one leg absent; reads and writes work on the other.
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vdb)
expect "create m0 with leg 0 absent" dmsetup create m0 --table "0 $size rtmirror 2 - /dev/vdb 0 0"
st=$(status_of m0)
result status "$st"
case $st in "2 MA 0/"*" 0 - degraded idle") ;; *) fail "status '$st'" ;; esac
sum=$(write_random /dev/mapper/m0 1 2)
result pattern_md5 "$sum"
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5_of /dev/mapper/m0 1 2)" = "$sum" ] || fail "read back"
expect_fail "primary 0 refused (absent)" dmsetup message m0 0 primary 0
expect "remove m0" dmsetup remove m0
kernel_log_clean
