#!/bin/sh
# Scenario 13: `split 1`, write to a few regions, `rejoin 1`: only the regions written while
# leg 1 was split are copied; the legs end identical (host).
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
sleep 2
expect "split 1" dmsetup message m0 0 split 1
st=$(status_of m0)
case $st in "2 AS "*) ;; *) fail "status after split: '$st'" ;; esac
# 3 MiB at 8 MiB and 1 MiB at 40 MiB: regions 16-21 and 80-81, 8 regions of 512 KiB.
a=$(write_random /dev/mapper/m0 8 3)
b=$(write_random /dev/mapper/m0 40 1)
expect_fail "split of the last in-sync leg" dmsetup message m0 0 split 0
dmesg -c >/dev/null
expect "rejoin 1" dmsetup message m0 0 rejoin 1
wait_in_sync m0 120
copied=$(resync_regions_of m0)
result regions_copied "$copied"
[ "$copied" = 8 ] || fail "rejoin after split copied $copied regions, 8 were written"
expect "remove m0" dmsetup remove m0
kernel_log_clean
