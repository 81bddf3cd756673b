#!/bin/sh
# Power cut, phase 2: the same table on the same disks after the cut. Activation must find
# the dirty regions in a log copy, resync only those, and end with identical legs.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
result activation_status "$(status_of m0)"
result activation_log "$(dmesg | grep 'activated:' | tail -n 1)"
dmesg | grep 'log copy' | while read -r l; do note "$l"; done
result copy_messages "$(dmesg | grep -c 'log copy')"
wait_in_sync m0
result final_status "$(status_of m0)"
result resync_log "$(dmesg | grep 'resync done' | tail -n 1)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
