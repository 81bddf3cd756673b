#!/bin/sh
# Scenario 2: status shows healthy legs; the table re-creates an identical device; reload keeps data.
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda /dev/vdb 0 4 region_size 1024 io_timeout_ms 5000"
result initial_status "$(status_of m0)"
wait_in_sync m0
st=$(status_of m0)
result status "$st"
regions=$(( (size + 1023) / 1024 ))
[ "$st" = "2 AA $regions/$regions 0 - healthy idle" ] || fail "status '$st'"
tbl=$(table_of m0)
result table "$tbl"
sum=$(write_random /dev/mapper/m0 3 2)
expect "create m1 from m0's table" dmsetup create m1 --table "0 $size $tbl"
[ "$(table_of m1)" = "$tbl" ] || fail "m1 table '$(table_of m1)' differs from '$tbl'"
[ "$(md5_of /dev/mapper/m1 3 2)" = "$sum" ] || fail "m1 does not read m0's data"
expect "remove m1" dmsetup remove m1
expect "reload m0" dmsetup reload m0 --table "0 $size $tbl"
expect "resume m0" dmsetup resume m0
[ "$(table_of m0)" = "$tbl" ] || fail "table changed by reload"
[ "$(md5_of /dev/mapper/m0 3 2)" = "$sum" ] || fail "data changed by reload"
expect "message io_timeout_ms" dmsetup message m0 0 io_timeout_ms 7000
case $(table_of m0) in *"io_timeout_ms 7000"*) ;; *) fail "io_timeout_ms message not in table" ;; esac
expect "message primary 1" dmsetup message m0 0 primary 1
[ "$(md5_of /dev/mapper/m0 3 2)" = "$sum" ] || fail "reads from primary 1 differ"
expect "remove m0" dmsetup remove m0
kernel_log_clean
