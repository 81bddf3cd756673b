#!/bin/sh
# Root on rtmirror, both subsystems attached again after a degraded boot (or a power cut while
# degraded): the log names the stale leg, the resync copies to it from the other leg while the
# system runs; report the files this boot reads, wait until in sync, shut down cleanly.
. /scenarios/lib.sh
result status "$(status_of root)"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
root_is_rw || fail "root is not mounted read-write"
root_report_files
wait_in_sync root 600
st=$(status_of root)
result status_after "$st"
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root mirror after the resync: '$st'" ;; esac
result resync "$(dmesg | grep 'resync done' | tail -n 1)"
kernel_log_clean
root_clean_shutdown
