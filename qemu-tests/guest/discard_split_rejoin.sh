#!/bin/sh
# Data-safety issue, defect 1: a discard or write-zeroes spanning several regions must mark
# every region it changes. Leg 1 is split, a 4 MiB discard and a 4 MiB write-zeroes (8 regions
# of 512 KiB each) go to leg 0 only, then `rejoin 1` copies the regions written meanwhile: all
# 16 must be copied, and the host finds the legs identical. Before the fix only the first
# region of each request was tracked.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
a=$(write_random /dev/mapper/m0 0 8)
wait_in_sync m0
dm=dm-$(dmsetup info -c --noheadings -o minor m0)
result discard_max_bytes "$(cat /sys/block/$dm/queue/discard_max_bytes)"
result write_zeroes_max_bytes "$(cat /sys/block/$dm/queue/write_zeroes_max_bytes)"
sleep 2
expect "split 1" dmsetup message m0 0 split 1
# Both start inside a region, so they span 9 regions each: 0.25 MiB .. 4.25 MiB and
# 4.25 MiB .. 8.25 MiB.
expect "discard 4 MiB over 9 regions" blkdiscard -o $((MB / 4)) -l $((4 * MB)) /dev/mapper/m0
expect "write-zeroes 4 MiB over 9 regions" blkzeroout /dev/mapper/m0 $((17 * MB / 4)) $((4 * MB))
want=17
dmesg -c >/dev/null
expect "rejoin 1" dmsetup message m0 0 rejoin 1
wait_in_sync m0 120
copied=$(resync_regions_of m0)
result regions_copied "$copied"
[ "$copied" = "$want" ] || fail "rejoin copied $copied regions, the discard/write-zeroes changed $want"
expect "remove m0" dmsetup remove m0
kernel_log_clean
