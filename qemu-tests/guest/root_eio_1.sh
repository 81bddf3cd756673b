#!/bin/sh
# Root on rtmirror with subsystem b failing every request to its partitions from the start:
# the log copy there fails its read at activation (F), the first write to leg 1 fails and
# detaches it (I); the system is up read-write. Write, then the subsystem is repaired: rejoin
# (full resync: an Inactive leg's regions are unknown) and rejoin_log; shut down cleanly.
. /scenarios/lib.sh
st=$(status_of root)
result status "$st"
root_is_rw || fail "root is not mounted read-write"
root_write_files e 4
st=$(status_of root)
result status_degraded "$st"
case "$st" in "2 AI "*" 2 AF degraded "*) ;; *) fail "leg 1 and log copy 1 not failed: '$st'" ;; esac
host heal 1
expect "rejoin leg 1" dmsetup message root 0 rejoin 1
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
