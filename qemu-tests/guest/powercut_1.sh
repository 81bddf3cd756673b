#!/bin/sh
# Power cut, phase 1: a mirror with two log copies carries a verified write load; the host
# kills QEMU (SIGKILL) in the middle of it. Each write is O_DIRECT and followed by a flush
# (conv=fsync) before it is reported acknowledged. The backends have a volatile write cache
# (run.py POWERCUT): the cut comes while a write's flush is held on the legs.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
result synced_status "$(status_of m0)"
writer() {
	i=0
	while :; do
		# 4 KiB blocks spread over the first 16 MiB (32 of the 128 regions).
		off=$(( (i * 7919) % 4096 ))
		dd if=/dev/urandom of=/tmp/b bs=4096 count=1 2>/dev/null
		echo "@@RESULT writing $off"
		dd if=/tmp/b of=/dev/mapper/m0 bs=4096 seek=$off oflag=direct conv=fsync,notrunc 2>/dev/null || fail "write $i at block $off"
		echo "@@RESULT acked $off $(md5sum </tmp/b | cut -d' ' -f1)"
		i=$((i + 1))
	done
}
writer &
sleep 4
# Cut the power while a write is only in the legs' volatile caches: hold the legs' flushes and
# wait until one holds the fsync after a write (the other leg may have executed its flush just
# before its hang started: that write is durable there and cached on the first).
host hang 0,1 flush
host wait-held 0,1 1 any
[ "${HOST_REPLY%% *}" = ok ] || fail "no flush held on the legs: $HOST_REPLY"
result cut_at "$HOST_REPLY"
host powercut
sleep 60
fail "still running after the power cut"
