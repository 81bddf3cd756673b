#!/bin/sh
# A new mirror over a leg with data (vda, filled by the host) and an empty leg (vdb): the
# new log makes every region out of sync, and the resync copies each region once from the
# primary; the host checks the counts and that the legs end identical. A 2 MiB write lands
# while the resync runs (slowed down by resync_kbps): it must survive the copy.
. /scenarios/lib.sh
load_rtmirror
S=$(sectors_of vda)
host reset-stats 0
host reset-stats 1
expect "create m0" dmsetup create m0 --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 2 resync_kbps 8192"
result initial_status "$(status_of m0)"
dd if=/dev/urandom of=/tmp/p bs=$MB count=2 2>/dev/null
dd if=/tmp/p of=/dev/mapper/m0 bs=$MB seek=30 oflag=direct conv=notrunc 2>/dev/null || fail "write during resync"
result during_md5 "$(md5sum </tmp/p | cut -d' ' -f1)"
result status_after_write "$(status_of m0)"
case $(status_of m0) in *" resync") ;; *) fail "the write did not overlap the resync: $(status_of m0)" ;; esac
expect "lift the rate limit" dmsetup message m0 0 resync_kbps 0
t0=$(uptime_cs)
wait_in_sync m0 600
t1=$(uptime_cs)
result resync_cs $((t1 - t0))
result final_status "$(status_of m0)"
host stats 0
result leg0_stats "$HOST_REPLY"
host stats 1
result leg1_stats "$HOST_REPLY"
expect "remove m0" dmsetup remove m0
kernel_log_clean
