#!/bin/sh
# Scenario 6: the primary (leg 0) returns EIO on reads only. Reads fail over to leg 1 with the
# right data and no error; leg 0 becomes Inactive (any I/O error detaches a leg; see
# docs/fault-handling.md), and `rejoin 0` after the heal resyncs it fully.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
a=$(write_random /dev/mapper/m0 8 2)
host error 0 read
got=$(md5_of /dev/mapper/m0 8 2) || fail "read while the primary fails reads"
[ "$got" = "$a" ] || fail "read failover returned wrong data"
st=$(status_of m0)
case $st in "2 IA "*) ;; *) fail "status after the primary failed a read: '$st'" ;; esac
b=$(write_random /dev/mapper/m0 12 1) || fail "write after the read failover"
host heal 0
expect "rejoin 0" dmsetup message m0 0 rejoin 0
wait_in_sync m0 300
[ "$(md5_of /dev/mapper/m0 12 1)" = "$b" ] || fail "read after rejoin"
expect "remove m0" dmsetup remove m0
kernel_log_clean
