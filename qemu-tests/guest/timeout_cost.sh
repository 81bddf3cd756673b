#!/bin/sh
# Measurement, run on demand (not a pass/fail test of speed): what the timeout's bounce copies
# cost. The same mirror writes and reads 32 MiB with O_DIRECT (1 MiB requests) with
# io_timeout_ms 0 and 1000, alternately, three times each, in one guest run.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 2 region_size 1024"
wait_in_sync m0
dd if=/dev/urandom of=/tmp/src bs=1M count=32 2>/dev/null
run() { # <timeout> -> "write_cs read_cs"
	dmsetup message m0 0 io_timeout_ms $1
	local t0=$(uptime_cs)
	dd if=/tmp/src of=/dev/mapper/m0 bs=1M count=32 oflag=direct conv=fsync 2>/dev/null
	local t1=$(uptime_cs)
	dd if=/dev/mapper/m0 of=/dev/null bs=1M count=32 iflag=direct 2>/dev/null
	local t2=$(uptime_cs)
	echo "$((t1 - t0)) $((t2 - t1))"
}
w0=0; r0=0; w1=0; r1=0
for i in 1 2 3; do
	set -- $(run 0); w0=$((w0 + $1)); r0=$((r0 + $2))
	set -- $(run 1000); w1=$((w1 + $1)); r1=$((r1 + $2))
done
result write_cs_no_timeout $w0
result write_cs_timeout $w1
result read_cs_no_timeout $r0
result read_cs_timeout $r1
expect "remove m0" dmsetup remove m0
kernel_log_clean
