#!/bin/sh
# Lazy clean, then a power cut, phase 1. The backends have a volatile write cache, except leg 0's
# (it writes through). O_DIRECT writes without a flush to 6 regions; the target marks them
# dirty in the log, writes both legs, and 5 to 10 s later clears them in the log. Once the
# log copies on the backends' media say clean, the host cuts the power; leg 1's cache loses every
# write not covered by a flush. A target that flushes the legs before a log write that clears
# bits has nothing left in leg 1's cache for those regions.
. /scenarios/lib.sh
load_rtmirror
create_logged_m0
wait_in_sync m0
stat_of() { echo "$HOST_REPLY" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
# 64 KiB blocks in regions 2, 10, 30, 48, 76 and 125 (512 KiB regions).
for blk in 17 80 243 390 611 1000; do
	dd if=/dev/urandom of=/tmp/w bs=65536 count=1 2>/dev/null
	dd if=/tmp/w of=/dev/mapper/m0 bs=65536 seek=$blk count=1 oflag=direct conv=notrunc 2>/dev/null ||
		fail "write at 64 KiB block $blk"
	result written "$blk $(md5sum </tmp/w | cut -d' ' -f1)"
done
result status_after_writes "$(status_of m0)"
# Log writes from now on (reported, not required: the clean may already have happened).
host stats 2; base2=$(stat_of writes)
host stats 3; base3=$(stat_of writes)
i=0
while :; do
	host stats 2; w2=$(stat_of writes)
	host stats 3; w3=$(stat_of writes)
	host log-state 2; s2=$HOST_REPLY
	host log-state 3; s3=$HOST_REPLY
	regions=$(status_of m0 | cut -d' ' -f3)
	clean=1
	for st in "$s2" "$s3"; do
		# Wait until the copy on the media (v1 or v2, decoded by the host) says clean.
		case $st in *" dirty=0 "*) ;; *) clean=0 ;; esac
	done
	# Every write waited for a log write marking its region dirty on both copies, and a region
	# is cleaned only after its writes completed: "dirty=0" on the media of both copies means a
	# clean log write landed after the data writes (it may have landed before the log write
	# counters above were read, on a slow guest).
	if [ $clean = 1 ] && [ "${regions%/*}" = "${regions#*/}" ]; then
		break
	fi
	i=$((i + 1))
	[ $i -lt 600 ] || { fail "log not cleaned within 60 s: $s2 | $s3 | $(status_of m0)"; break; }
	usleep 100000
done
result log_copy0 "$s2"
result log_copy1 "$s3"
result log_writes_since "$((w2 - base2)) $((w3 - base3))"
host stats 1
result leg1_stats "$HOST_REPLY"
result status_before_cut "$(status_of m0)"
host powercut
sleep 60
fail "still running after the power cut"
