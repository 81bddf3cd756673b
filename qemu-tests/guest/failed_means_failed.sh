#!/bin/sh
# Data-safety issue, defect 9: with no in-sync leg the mirror is failed, and a failed mirror
# acknowledges nothing. Leg 1 is rejoined after `fail 1` and resyncs slowly (R); then leg 0,
# the only in-sync leg, fails every I/O. Status says `failed`, and a write must fail although
# leg 1 (Resyncing, lacking the regions not copied yet) took it. Before the fix the write was
# acknowledged while status said failed.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 3 region_size 1024 nosync"
wait_in_sync m0
a=$(write_random /dev/mapper/m0 0 1)
# Slow, so that leg 1 is still resyncing when leg 0 fails.
expect "resync_kbps 256" dmsetup message m0 0 resync_kbps 256
expect "fail 1" dmsetup message m0 0 fail 1
expect "rejoin 1" dmsetup message m0 0 rejoin 1
st=$(status_of m0)
case $st in "2 AR "*) ;; *) fail "leg 1 not resyncing after rejoin: $st" ;; esac
host error 0 all
dd if=/dev/urandom of=/tmp/b bs=65536 count=1 2>/dev/null
dd if=/tmp/b of=/dev/mapper/m0 bs=65536 seek=500 oflag=direct conv=notrunc 2>/dev/null && w=ok || w=failed
st=$(status_of m0)
result status_after_error "$st"
case $st in "2 IR "*" failed "*) ;; *) fail "not failed with leg 0 Inactive and leg 1 resyncing: $st" ;; esac
result write_without_in_sync_leg "$w"
[ "$w" = failed ] || fail "a write was acknowledged while no leg was in sync"
dd if=/dev/mapper/m0 of=/dev/null bs=65536 count=1 iflag=direct 2>/dev/null && fail "a read succeeded while no leg was in sync"
host heal 0
expect "remove m0" dmsetup remove m0
kernel_log_clean
