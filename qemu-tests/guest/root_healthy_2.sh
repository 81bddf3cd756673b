#!/bin/sh
# Root on rtmirror, second boot after a clean shutdown: the activation finds the clean shutdown,
# the mirror is healthy, the first boot's files are there; write more, shut down cleanly.
. /scenarios/lib.sh
st=$(status_of root)
result status "$st"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root mirror at boot: '$st'" ;; esac
root_is_rw || fail "root is not mounted read-write"
root_report_files
root_write_files b 2
kernel_log_clean
root_clean_shutdown
