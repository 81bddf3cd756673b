#!/bin/sh
# Both log copies torn, phase 2: every backend healed. Activate the same table, let the resync
# finish and read back, through the mirror, the data acknowledged before the cut (the host
# compares it with phase 1's and checks leg 1's backing file).
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
dmesg | grep 'log copy' | while read -r l; do note "$l"; done
wait_in_sync m0 300
result final_status "$(status_of m0)"
result mirror_a "$(md5_of /dev/mapper/m0 4 1)"
result mirror_b "$(md5_of /dev/mapper/m0 20 2)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
