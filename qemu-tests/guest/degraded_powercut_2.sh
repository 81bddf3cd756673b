#!/bin/sh
# Scenario 11, phase 2: both legs healthy again (the host healed leg 1's backend). Activation
# finds leg 1 Degraded in the log and leg 0 as the source; leg 1 answers its probe and gets a
# differential resync of exactly the regions written while it was out; the data acknowledged
# before the cut reads back, and the host finds the legs identical.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
act=$(dmesg | grep "activated:" | tail -n 1)
result activation "$act"
out=$(echo "$act" | sed -n 's/.*, \([0-9]*\) of 128 regions out of sync, source leg \([0-9-]*\).*/\1/p')
src=$(echo "$act" | sed -n 's/.*source leg \([0-9-]*\).*/\1/p')
[ "$src" = 0 ] || fail "resync source is leg '$src', not leg 0 (leg 1 was Degraded before the cut)"
[ -n "$out" ] && [ "$out" -ge 6 ] && [ "$out" -le 8 ] || fail "$out regions out of sync at activation, 6 were written while leg 1 was out"
wait_leg_state m0 1 A 120 >/dev/null
wait_in_sync m0 120
copied=$(resync_regions_of m0)
result regions_copied "$copied"
[ "$copied" = "$out" ] || fail "resync copied $copied regions, $out were out of sync"
expect "remove m0" dmsetup remove m0
kernel_log_clean
