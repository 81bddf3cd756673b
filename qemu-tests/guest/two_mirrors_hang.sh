#!/bin/sh
# Scenario 14: two mirrors, m0 on vda+vdb and m1 on vdc+vdd (in-memory logs); m0's leg 0
# hangs for good. m1 keeps writing during the hang, before m0 even notices it, and its state
# never changes.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 0 4 region_size 1024 io_timeout_ms 5000"
expect "create m1" dmsetup create m1 --table "0 $(sectors_of vdc) rtmirror 2 /dev/vdc /dev/vdd 0 4 region_size 1024 io_timeout_ms 5000"
wait_in_sync m0; wait_in_sync m1
vwriter_start /dev/mapper/m0 w0 0 256
p0=$VWRITER_PID
vwriter_start /dev/mapper/m1 w1 0 256
while [ "$(vwriter_count w1)" -lt 5 ]; do usleep 100000; done
host hang 0
n1=$(vwriter_count w1)
sleep 3
# m0's timeout (5 s) has not expired: m0's writer is stuck, m1's must not be.
result m1_writes_during_hang $(($(vwriter_count w1) - n1))
[ $(($(vwriter_count w1) - n1)) -ge 3 ] || fail "m1 stalled while m0's leg hangs"
wait_leg_state m0 0 D 60 >/dev/null
touch /tmp/w0.stop; wait $p0
vwriter_stop w1
st=$(status_of m1)
case $st in "2 AA "*" healthy idle") ;; *) fail "m1's state changed: '$st'" ;; esac
vwriter_verify /dev/mapper/m1 w1
vwriter_verify /dev/mapper/m0 w0
host release 0
wait_leg_state m0 0 A 120 >/dev/null
wait_in_sync m0 120
expect "remove m0" dmsetup remove m0
expect "remove m1" dmsetup remove m1
kernel_log_clean
