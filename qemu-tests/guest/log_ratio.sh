#!/bin/sh
# Log I/O cost: sequential writes, then the same regions written again. Log writes happen
# when a region turns dirty (and for batched cleaning), not per data write.
. /scenarios/lib.sh
load_rtmirror
S=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 0"
wait_in_sync m0
for i in 0 1 2 3; do host reset-stats $i; done
dd if=/dev/urandom of=/tmp/p bs=$MB count=4 2>/dev/null
for pass in 1 2 3; do
	for mib in 0 4 8 12 16 20 24 28 32 36 40 44; do
		dd if=/tmp/p of=/dev/mapper/m0 bs=$MB seek=$mib oflag=direct conv=notrunc 2>/dev/null || fail "write"
	done
done
sync
for i in 0 1 2 3; do host stats $i; result stats_$i "$HOST_REPLY"; done
expect "remove m0" dmsetup remove m0
kernel_log_clean
