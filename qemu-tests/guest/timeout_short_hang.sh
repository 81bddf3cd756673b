#!/bin/sh
# Scenario 1: leg 1 hangs for less than io_timeout_ms (5000): no state change, the writes wait
# for the leg and go on when the host releases it; nothing is out of sync afterwards.
. /scenarios/lib.sh
load_rtmirror
create_args="2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 5000"
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror $create_args"
wait_in_sync m0
vwriter_start /dev/mapper/m0 w 0 256
while [ "$(vwriter_count w)" -lt 5 ]; do usleep 100000; done
host hang 1
sleep 1
st=$(status_of m0)
host release 1
while [ "$(vwriter_count w)" -lt 30 ]; do usleep 100000; done
vwriter_stop w
result status_during_hang "$st"
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "status during a short hang: '$st'" ;; esac
st=$(status_of m0)
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "status after a short hang: '$st'" ;; esac
dmesg | grep -q "did not answer" && fail "a hang shorter than the timeout changed the leg's state"
vwriter_verify /dev/mapper/m0 w
# The held write waited for the release: the hang was felt, and survived without error.
[ "$(cat /tmp/w.max)" -ge 90 ] || fail "no write waited for the held leg (max latency $(cat /tmp/w.max) cs)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
