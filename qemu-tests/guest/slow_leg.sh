#!/bin/sh
# Scenario 8: leg 1 is slow (bandwidth limited to 256 KiB/s: a 64 KiB write takes about
# 250 ms) but each I/O finishes within io_timeout_ms (2000): it is never marked Degraded.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 2000"
wait_in_sync m0
host bandwidth 1 262144
vwriter_start /dev/mapper/m0 w 0 256
while [ "$(vwriter_count w)" -lt 30 ]; do usleep 100000; done
vwriter_stop w
host heal 1
st=$(status_of m0)
result status "$st"
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "slow leg changed state: '$st'" ;; esac
dmesg | grep -q "did not answer" && fail "slow leg was taken for hung"
vwriter_verify /dev/mapper/m0 w
[ "$(cat /tmp/w.max)" -ge 20 ] || fail "the bandwidth limit was not felt (max latency $(cat /tmp/w.max) cs)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
