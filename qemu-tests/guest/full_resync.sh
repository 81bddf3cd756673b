#!/bin/sh
# A new mirror over a leg with data (vda, filled by the host) and an empty leg (vdb): the
# new log makes every region out of sync, and the resync copies each region once from the
# primary; the host checks the counts and that the legs end identical.
. /scenarios/lib.sh
load_rtmirror
S=$(sectors_of vda)
host reset-stats 0
host reset-stats 1
expect "create m0" dmsetup create m0 --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 0"
result initial_status "$(status_of m0)"
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
