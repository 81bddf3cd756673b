#!/bin/sh
# Scenario 5: leg 1 returns EIO on writes: Inactive at once, the writer sees no error; after
# the host heals it, `rejoin 1` runs a full resync (every region copied) and the legs end
# identical (checked by the host).
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
dmsetup message m0 0 io_timeout_ms 1000 || fail "set io_timeout_ms"
vwriter_start /dev/mapper/m0 w 0 256
while [ "$(vwriter_count w)" -lt 5 ]; do usleep 100000; done
host error 1 write
wait_leg_state m0 1 I 60 >/dev/null
n0=$(vwriter_count w)
while [ "$(vwriter_count w)" -lt $((n0 + 10)) ]; do usleep 100000; done
vwriter_stop w
dmesg | grep -q "leg 1 failed with error" || fail "no kernel message for the failed leg"
sleep 2
st=$(status_of m0)
case $st in "2 AI "*) ;; *) fail "an Inactive leg came back by itself: '$st'" ;; esac
host heal 1
dmesg -c >/dev/null
expect "rejoin 1" dmsetup message m0 0 rejoin 1
wait_in_sync m0 300
copied=$(resync_regions_of m0)
result regions_copied "$copied"
[ "$copied" = 128 ] || fail "rejoin after an error copied $copied regions, not all 128"
vwriter_verify /dev/mapper/m0 w
expect "remove m0" dmsetup remove m0
kernel_log_clean
