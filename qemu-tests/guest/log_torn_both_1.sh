#!/bin/sh
# Both log copies torn by one log write, phase 1. Leg 0 (the primary) hangs and goes Degraded;
# writes go on to leg 1 and are acknowledged (with a flush). Then both log backends hold writes,
# a write to a clean region starts the log write that marks it dirty, the host applies only the
# first 4 KiB of that log write on both copies and cuts the power.
. /scenarios/lib.sh
load_rtmirror
TABLE="0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
expect "create m0" dmsetup create m0 --table "$TABLE"
wait_in_sync m0
sleep 2
host hang 0
# 1 MiB at 4 MiB (regions 8-9) and 2 MiB at 20 MiB (regions 40-43), each flushed.
a=$(write_random /dev/mapper/m0 4 1) || fail "write while leg 0 hangs"
wait_leg_state m0 0 D 60 >/dev/null
b=$(write_random /dev/mapper/m0 20 2) || fail "write with leg 0 Degraded"
result acked_a "$a"
result acked_b "$b"
result status_before_tear "$(status_of m0)"
host hang 2,3 write
# 40 MiB is region 80, never written: this write needs a log write first.
dd if=/dev/urandom of=/dev/mapper/m0 bs=65536 seek=640 count=1 oflag=direct conv=notrunc 2>/dev/null &
host wait-held 2,3 1
[ "${HOST_REPLY%% *}" = ok ] || fail "log write not held on both copies: $HOST_REPLY"
host apply-partial 2,3 4096
result torn "$HOST_REPLY"
host powercut
sleep 60
fail "still running after the power cut"
