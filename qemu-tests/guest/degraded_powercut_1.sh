#!/bin/sh
# Scenario 11, phase 1: leg 1 hangs and becomes Degraded; writes go on (acknowledged with a
# flush); then the power is cut (SIGKILL) while leg 1 is still Degraded.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
wait_in_sync m0
sleep 2
host hang 1
# 1 MiB at 4 MiB (regions 8-9) and 2 MiB at 20 MiB (regions 40-43).
a=$(write_random /dev/mapper/m0 4 1) || fail "write while leg 1 hangs"
wait_leg_state m0 1 D 60 >/dev/null
b=$(write_random /dev/mapper/m0 20 2) || fail "write with leg 1 Degraded"
result acked_a "$a"
result acked_b "$b"
result status_before_cut "$(status_of m0)"
host powercut
sleep 60
fail "still running after the power cut"
