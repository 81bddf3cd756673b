#!/bin/sh
# Scenario 7: log copy 0 hangs, then returns errors: writes go on without an error (the log
# write to the hung copy is given up after io_timeout_ms), status marks the copy failed.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
wait_in_sync m0
sleep 2
host hang 2
# Writes to many regions need log writes.
vwriter_start /dev/mapper/m0 w 0 1024
i=0
while [ $i -lt 300 ]; do
	case $(status_of m0) in *" 2 FA "*) break ;; esac
	usleep 100000; i=$((i + 1))
done
st=$(status_of m0)
result status_log_hung "$st"
case $st in "2 AA "*" 2 FA "*) ;; *) fail "status with a hung log copy: '$st'" ;; esac
host error 2 all
host release 2
n0=$(vwriter_count w)
while [ "$(vwriter_count w)" -lt $((n0 + 20)) ]; do usleep 100000; done
vwriter_stop w
vwriter_verify /dev/mapper/m0 w
dmesg | grep -q "log copy 0 failed (error -110)" || fail "no kernel message for the timed-out log copy"
host heal 2
expect "rejoin_log 0" dmsetup message m0 0 rejoin_log 0
a=$(write_random /dev/mapper/m0 30 1) || fail "write after rejoin_log"
st=$(status_of m0)
case $st in *" 2 AA "*) ;; *) fail "log copy 0 not alive after rejoin_log: '$st'" ;; esac
expect_fail "rejoin_log of a healthy copy" dmsetup message m0 0 rejoin_log 0
# The suspend in remove writes the log to both copies: the host compares them.
expect "remove m0" dmsetup remove m0
kernel_log_clean
