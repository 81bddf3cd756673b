#!/bin/sh
# Log copy 0 hangs before the mirror is created: with io_timeout_ms set, activation gives up
# reading it after the timeout, marks it failed and goes on with copy 1; writes work; after
# the host releases and heals the copy, rejoin_log rewrites it (host compares the copies).
. /scenarios/lib.sh
load_rtmirror
host hang 2
t0=$(uptime_cs)
expect "create m0 with log copy 0 hung" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 io_timeout_ms 1000"
result create_cs $(($(uptime_cs) - t0))
st=$(status_of m0)
result status "$st"
case $st in *" 2 FA "*) ;; *) fail "status after activation with a hung log copy: '$st'" ;; esac
dmesg | grep -q "log copy 0: read failed (error -110)" || fail "no kernel message for the timed-out log read"
wait_in_sync m0
a=$(write_random /dev/mapper/m0 4 2) || fail "write with log copy 0 failed"
host release 2
sleep 2
expect "rejoin_log 0" dmsetup message m0 0 rejoin_log 0
b=$(write_random /dev/mapper/m0 12 1) || fail "write after rejoin_log"
[ "$(md5_of /dev/mapper/m0 4 2)" = "$a" ] || fail "read back"
expect "remove m0" dmsetup remove m0
kernel_log_clean
