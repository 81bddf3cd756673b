#!/bin/sh
# Scenario 1: data written through the mirror lands on both legs at the right offsets.
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda /dev/vdb 0 0"
sum=$(write_random /dev/mapper/m0 8 4)
result pattern_md5 "$sum"
result pattern_offset_mib 8
result pattern_mib 4
# A second, small write at an odd 4 KiB offset with O_DIRECT and FUA-like fsync.
dd if=/dev/urandom of=/tmp/small bs=4096 count=3 2>/dev/null
dd if=/tmp/small of=/dev/mapper/m0 bs=4096 seek=5001 oflag=direct conv=fsync,notrunc 2>/dev/null || fail "small write"
result small_md5 "$(md5sum </tmp/small | cut -d' ' -f1)"
result small_offset_bytes $((5001 * 4096))
echo 3 >/proc/sys/vm/drop_caches
back=$(md5_of /dev/mapper/m0 8 4)
[ "$back" = "$sum" ] || fail "read back through the mirror: $back != $sum"
for leg in vda vdb; do
	[ "$(md5_of /dev/$leg 8 4)" = "$sum" ] || fail "leg $leg does not hold the pattern (guest view)"
done
# Discard reaches every leg (both support it): 1 MiB at 32 MiB, after writing data there.
write_random /dev/mapper/m0 32 1 >/dev/null
dm=$(basename "$(readlink -f /dev/mapper/m0)")
result discard_max_bytes "$(cat /sys/block/$dm/queue/discard_max_bytes)"
for i in 0 1; do host stats $i; result data_stats_$i "$HOST_REPLY"; host reset-stats $i; done
expect "discard 1 MiB" blkdiscard -o $((32 * MB)) -l $MB /dev/mapper/m0
host stats 0
result discard_stats_0 "$HOST_REPLY"
host stats 1
result discard_stats_1 "$HOST_REPLY"
wait_in_sync m0
expect "remove m0" dmsetup remove m0
kernel_log_clean
