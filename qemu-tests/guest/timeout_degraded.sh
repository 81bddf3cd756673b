#!/bin/sh
# Scenarios 2 and 9 of the fault-handling issue: leg 1 hangs longer than io_timeout_ms (1000,
# or rtm.timeout=<ms>) under a verifying writer. Leg 1 must become Degraded no earlier than
# the timeout, the writer goes on without an error while the backend holds leg 1's I/O, and it
# rewrites the blocks whose writes are held (reusing its buffers). After the host releases the
# held I/O (old data lands on leg 1 then), leg 1 answers again, resyncs by itself only the
# regions written meanwhile and is in sync; the host compares the legs' backing files.
# The state change raises a device-mapper event: a pending `dmsetup wait` returns.
. /scenarios/lib.sh
load_rtmirror
T=$(timeout_ms_arg); T=${T:-1000}
RB=524288
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms $T"
wait_in_sync m0
# 16 MiB of blocks: 32 regions of 512 KiB out of 128.
vwriter_start /dev/mapper/m0 w 0 256
while [ "$(vwriter_count w)" -lt 5 ]; do usleep 100000; done
ev=$(dmsetup info m0 | sed -n 's/^Event number: *//p')
dmsetup wait m0 "$ev" && touch /tmp/woke &
t_hang=$(uptime_cs)
host hang 1
waited=$(wait_leg_state m0 1 D $((T * 30 / 1000 + 30))) || exit 0
usleep 500000
[ -e /tmp/woke ] || fail "dmsetup wait (event $ev) did not wake when leg 1 became Degraded"
result timeout_ms $T
result degraded_after_cs $waited
[ $((waited * 10)) -ge $((T * 9 / 10)) ] || fail "leg 1 Degraded after $waited cs, before the timeout of $T ms"
dmesg | grep -q "leg 1 did not answer within $T ms (.*): Degraded" || fail "no kernel message for the Degraded leg"
n0=$(vwriter_count w)
# Keep writing while leg 1 is held: blocks are rewritten (stride 7 over 256 blocks).
while [ "$(vwriter_count w)" -lt $((n0 + 40)) ]; do usleep 100000; done
st=$(status_of m0)
result status_degraded "$st"
case $st in "2 AD "*" 2 AA degraded idle") ;; *) fail "status while Degraded: '$st'" ;; esac
vwriter_stop w
t_stop=$(uptime_cs)
dirty=$(vwriter_regions_since w $t_hang $RB)
result regions_written_since_hang "$dirty"
host release 1
wait_leg_state m0 1 A 120 >/dev/null
wait_in_sync m0 120
st=$(status_of m0)
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "status after the automatic resync: '$st'" ;; esac
dmesg | grep -q "leg 1 answers again: resyncing" || fail "no kernel message for the returning leg"
copied=$(resync_regions_of m0)
result regions_copied "$copied"
# Every region written since the hang, plus at most the one whose write was in flight then.
[ -n "$copied" ] && [ "$copied" -ge "$dirty" ] && [ "$copied" -le $((dirty + 1)) ] ||
	fail "resync copied $copied regions, $dirty were written while leg 1 was out"
vwriter_verify /dev/mapper/m0 w
result writer_latency_cs "$(cat /tmp/w.max)"
expect "remove m0" dmsetup remove m0
kernel_log_clean
