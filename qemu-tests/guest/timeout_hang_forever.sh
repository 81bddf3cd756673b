#!/bin/sh
# Scenario 3: leg 1 hangs for good. It becomes Degraded, the writer goes on; with the hung I/O
# still held the device is suspended, resumed, reloaded and removed. Then the host releases
# the held I/O: the late completions must cause no error and no kernel warning, and the module
# (when it is one) then unloads at once (nothing given up is left in flight).
. /scenarios/lib.sh
load_rtmirror
args="2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror $args"
wait_in_sync m0
vwriter_start /dev/mapper/m0 w 0 256
while [ "$(vwriter_count w)" -lt 5 ]; do usleep 100000; done
host hang 1
wait_leg_state m0 1 D 60 >/dev/null || exit 0
n0=$(vwriter_count w)
while [ "$(vwriter_count w)" -lt $((n0 + 20)) ]; do usleep 100000; done
vwriter_stop w
vwriter_verify /dev/mapper/m0 w
expect "suspend with hung I/O outstanding" dmsetup suspend m0
expect "resume" dmsetup resume m0
expect "reload" dmsetup reload m0 --table "0 $(sectors_of vda) rtmirror $args"
expect "resume the reloaded table" dmsetup resume m0
st=$(status_of m0)
result status_after_reload "$st"
# The log says leg 1 is Degraded; the new table keeps that (its abandoned I/O is still out).
case $st in "2 AD "*) ;; *) fail "status after reload: '$st'" ;; esac
a=$(write_random /dev/mapper/m0 40 1) || fail "write to the reloaded table"
expect "remove with hung I/O outstanding" dmsetup remove m0
host release 1
sleep 3
host stats 1
result leg1_stats "$HOST_REPLY"
# Every given-up bio came back: the module unloads without waiting (a kernel with the target
# built in has nothing to unload; the module kernels run this step).
if grep -q '^dm_rtmirror ' /proc/modules; then
	expect "unload after the held I/O completed" rmmod dm_rtmirror
	dmesg | grep -q "unload waits" && fail "unload had to wait for given-up I/O"
	result unloaded yes
fi
kernel_log_clean
