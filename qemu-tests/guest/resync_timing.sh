#!/bin/sh
# Measurement, run on demand (not a pass/fail test of speed): time of a full resync of the
# whole device with the region size given as rtm.region=<sectors> on the kernel command line.
. /scenarios/lib.sh
load_rtmirror
region=$(sed -n 's/.*rtm\.region=\([0-9]*\).*/\1/p' /proc/cmdline)
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 2 region_size $region"
t0=$(uptime_cs)
wait_in_sync m0 1800
t1=$(uptime_cs)
result region_sectors "$region"
result resync_cs $((t1 - t0))
result final_status "$(status_of m0)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
