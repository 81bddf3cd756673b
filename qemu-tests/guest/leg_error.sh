#!/bin/sh
# A leg returns EIO on writes: it is detached at once (Inactive), writes go on with the other
# leg without an error, reads come from the surviving leg. Also the demo's guest side.
. /scenarios/lib.sh
load_rtmirror
size=$(sectors_of vda)
expect "create m0" dmsetup create m0 --table "0 $size rtmirror 2 /dev/vda /dev/vdb 0 0"
echo "demo: new mirror, initial resync: $(dmsetup status m0)"
wait_in_sync m0
echo "demo: status before the fault: $(dmsetup status m0)"
a=$(write_random /dev/mapper/m0 2 2)
host error 0 write
echo "demo: leg 0's storage now fails every write"
b=$(write_random /dev/mapper/m0 6 2) || fail "write after the leg fault returned an error"
result pattern_b_md5 "$b"
st=$(status_of m0)
echo "demo: status after the fault: $(dmsetup status m0)"
result status "$st"
# Leg 0 is Inactive; the regions written since are out of sync (resynced when it rejoins).
case $st in "2 IA "*"/16 0 - degraded idle") ;; *) fail "status after leg error: '$st'" ;; esac
[ "$(echo "$st" | cut -d' ' -f3)" != "16/16" ] || fail "regions written after the leg failed are not counted out of sync"
dmesg | grep -q 'leg 0 failed with error' || fail "no kernel message naming the failed leg"
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5_of /dev/mapper/m0 6 2)" = "$b" ] || fail "read back after the fault"
[ "$(md5_of /dev/mapper/m0 2 2)" = "$a" ] || fail "read back of data written before the fault"
c=$(write_random /dev/mapper/m0 10 1) || fail "later write failed"
host heal 0
echo "demo: mirror survived: data written after the fault reads back intact"
expect "remove m0" dmsetup remove m0
kernel_log_clean
