#!/bin/sh
# Data-safety issue, defect 2: a write-zeroes that one leg refuses (EOPNOTSUPP) while the
# other carried it out must not be acknowledged as done with the region clean: that leg would
# keep its old data. Leg 1 is a dm-linear device that is reloaded as dm-delay (which takes no
# write-zeroes: device-mapper answers BLK_STS_NOTSUPP) after the mirror stacked its limits.
# The write-zeroes then fails on leg 1 only: it must fail (BLKZEROOUT falls back to writing
# zero pages), leg 1 must stay in service, the region is resynced, both legs read zeros and
# the host finds them identical. Before the fix leg 1 kept the old data.
. /scenarios/lib.sh
load_rtmirror
sz=$(sectors_of vda)
expect "lin0" dmsetup create lin0 --table "0 $sz linear /dev/vda 0"
expect "lin1" dmsetup create lin1 --table "0 $sz linear /dev/vdb 0"
expect "create m0" dmsetup create m0 --table "0 $sz rtmirror 2 /dev/mapper/lin0 /dev/mapper/lin1 2 /dev/vdc /dev/vdd 2 region_size 1024"
a=$(write_random /dev/mapper/m0 0 8)
wait_in_sync m0
dm=dm-$(dmsetup info -c --noheadings -o minor m0)
wz=$(cat /sys/block/$dm/queue/write_zeroes_max_bytes)
result write_zeroes_max_bytes "$wz"
[ "$wz" -gt 0 ] || { fail "the mirror does not offer write-zeroes: nothing to test"; exit 0; }
expect "lin1 becomes dm-delay" dmsetup reload lin1 --table "0 $sz delay /dev/vdb 0 0"
expect "suspend lin1" dmsetup suspend lin1
expect "resume lin1" dmsetup resume lin1
dmesg -c >/dev/null
expect "zero 1 MiB at 2 MiB" blkzeroout /dev/mapper/m0 $((2 * MB)) $MB
st=$(status_of m0)
result status_after "$st"
case $st in "2 AA "*) ;; *) fail "a leg left service for an unsupported write-zeroes: $st" ;; esac
wait_in_sync m0 60
zero=$(dd if=/dev/zero bs=$MB count=1 2>/dev/null | md5sum | cut -d' ' -f1)
for p in 0 1; do
	expect "primary $p" dmsetup message m0 0 primary $p
	[ "$(md5_of /dev/mapper/m0 2 1)" = "$zero" ] || fail "leg $p does not read zeros after write-zeroes"
done
expect "remove m0" dmsetup remove m0
expect "remove lin0 lin1" dmsetup remove lin0 lin1
kernel_log_clean
