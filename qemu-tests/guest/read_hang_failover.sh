#!/bin/sh
# Scenario 4: the primary (leg 0) hangs during reads: they are served by leg 1 once the
# timeout (1000 ms) expires, with the right data; leg 0 becomes Degraded and comes back by
# itself after the host releases it.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
wait_in_sync m0
a=$(write_random /dev/mapper/m0 4 4)
# Both legs in sync again before the hang: on a loaded guest a slow write can time a healthy
# leg out (it comes back and resyncs); leg 0 would then be the last in-sync leg, kept by design.
wait_in_sync m0
host reset-stats 1
host hang 0
t0=$(uptime_cs)
# In the background, bounded: a read that never fails over is reported with the kernel's view
# of the blocked tasks (seen once on the KASAN guest: no read reached leg 1, no kernel line).
(md5_of /dev/mapper/m0 4 4 >/tmp/got; uptime_cs >/tmp/got.t) &
reader=$!
if ! wait_or_dump $reader 120 "read did not fail over" m0; then
	host release 0
	wait $reader
	exit 0
fi
got=$(cat /tmp/got)
t1=$(cat /tmp/got.t)
result read_latency_cs $((t1 - t0))
[ "$got" = "$a" ] || fail "read during the primary's hang returned wrong data"
st=$(status_of m0)
case $st in "2 DA "*) ;; *) fail "status after the primary hung on reads: '$st'" ;; esac
host stats 1
case "$HOST_REPLY" in *" reads=0 "*) fail "leg 1 served no read: $HOST_REPLY" ;; esac
host release 0
wait_leg_state m0 0 A 120 >/dev/null
wait_in_sync m0 120
st=$(status_of m0)
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "status after the primary came back: '$st'" ;; esac
[ "$(md5_of /dev/mapper/m0 4 4)" = "$a" ] || fail "read after the primary came back"
expect "remove m0" dmsetup remove m0
kernel_log_clean
