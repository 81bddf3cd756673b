#!/bin/sh
# Fault-handling issue: a Degraded leg that answers again and then times out again during its
# differential resync goes back to Degraded without losing the dirty set: once it answers for
# good, the resync copies every region written while it was out, and the legs end identical
# (host). The resync is slowed (resync_kbps 2048) so the second hang falls inside it.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 6 region_size 1024 io_timeout_ms 1000 resync_kbps 2048"
wait_in_sync m0
host hang 1
a=$(write_random /dev/mapper/m0 0 16) || fail "write while leg 1 hangs"
wait_leg_state m0 1 D 60 >/dev/null || exit 0
dirty=$(status_of m0 | cut -d' ' -f3)
result dirty_while_degraded "$dirty"
host release 1
wait_leg_state m0 1 R 60 >/dev/null || exit 0
sleep 2
host hang 1
wait_leg_state m0 1 D 60 >/dev/null || exit 0
left=$(status_of m0 | cut -d' ' -f3)
result in_sync_after_second_hang "$left"
[ "${left%/*}" -lt 128 ] || fail "the dirty set was lost when leg 1 timed out again: $left"
host release 1
wait_leg_state m0 1 A 120 >/dev/null
wait_in_sync m0 120
[ "$(md5_of /dev/mapper/m0 0 16)" = "$a" ] || fail "data written while leg 1 was out"
expect "remove m0" dmsetup remove m0
kernel_log_clean
