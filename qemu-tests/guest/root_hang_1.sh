#!/bin/sh
# Root on rtmirror with subsystem b holding every request to its partitions from the start:
# the log copy read times out at activation (F), the first write to leg 1 times out (D); the
# system is up read-write within the I/O timeout. Write, then the host releases the held I/O:
# the leg answers again and resyncs by itself (differential); rejoin_log; shut down cleanly.
. /scenarios/lib.sh
st=$(status_of root)
result status "$st"
root_is_rw || fail "root is not mounted read-write"
root_write_files h 4
wait_leg_state root 1 D 60 >/dev/null || fail "leg 1 not Degraded: $(status_of root)"
st=$(status_of root)
result status_degraded "$st"
case "$st" in "2 AD "*" 2 AF degraded "*) ;; *) fail "leg 1 and log copy 1 not out of service: '$st'" ;; esac
host heal 1
wait_leg_state root 1 A 300 >/dev/null || fail "leg 1 did not come back: $(status_of root)"
expect "rejoin log copy 1" dmsetup message root 0 rejoin_log 1
wait_in_sync root 600
sync
st=$(status_of root)
result status_after "$st"
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root mirror after the resync: '$st'" ;; esac
result resync "$(dmesg | grep 'resync done' | tail -n 1)"
# Read back through the mirror (the host compares with what was written).
root_report_files
kernel_log_clean
root_clean_shutdown
