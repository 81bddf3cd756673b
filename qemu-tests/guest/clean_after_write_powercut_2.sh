#!/bin/sh
# Lazy clean, then a power cut, phase 2: activate the same table, let any resync finish,
# remove. The host then compares the legs' backing files byte for byte.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
result activation_log "$(dmesg | grep 'activated:' | tail -n 1)"
dmesg | grep 'log copy' | while read -r l; do note "$l"; done
wait_in_sync m0
result final_status "$(status_of m0)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
