#!/bin/sh
# Scenario 5: malformed tables and messages are rejected with a readable reason in the kernel
# log (dmsetup itself only learns the errno), and the kernel log stays free of warnings.
# Disks: vda, vdb 64 MiB; vdc 16 MiB (too small for a 64 MiB target); vdd 8 MiB (log).
. /scenarios/lib.sh
load_rtmirror
S=$(sectors_of vda)
rejected=0
reject() { # <table args after "rtmirror"> <text the kernel log must show>
	expect_rejected "table '$1'" "$2" dmsetup create bad --table "0 $S rtmirror $1" &&
		rejected=$((rejected + 1))
	dmsetup remove bad 2>/dev/null
}
reject "" "missing leg count"
reject "x /dev/vda /dev/vdb 0 0" "leg count 'x'"
reject "1 /dev/vda 0 0" "leg count '1' out of range"
reject "5 /dev/vda /dev/vdb /dev/vdc /dev/vdd - 0 0" "leg count '5' out of range"
reject "2 /dev/vda" "expected 2 legs, found only 1"
reject "2 - - 0 0" "all legs are '-'"
reject "2 /dev/vda /dev/vda 0 0" "device '/dev/vda' given more than once"
reject "2 /dev/vda /dev/vdb" "missing log count"
reject "2 /dev/vda /dev/vdb 3 /dev/vdd 0" "log count '3' out of range"
reject "2 /dev/nonexistent1 /dev/nonexistent2 0 1 allow_missing" "no leg device exists"
reject "2 /dev/vda /dev/vdb 1 /dev/vda 0" "device '/dev/vda' given more than once"
reject "2 /dev/vda /dev/vdb 0" "missing optional argument count"
reject "2 /dev/vda /dev/vdb 0 -1" "optional argument count '-1'"
reject "2 /dev/vda /dev/vdb 0 2 region_size" "expected 2"
reject "2 /dev/vda /dev/vdb 0 0 nosync" "nosync"
reject "2 /dev/vda /dev/vdb 0 1 bogus" "unknown option 'bogus'"
reject "2 /dev/vda /dev/vdb 0 1 region_size" "option 'region_size' is missing its value"
reject "2 /dev/vda /dev/vdb 0 2 nosync nosync" "option 'nosync' given more than once"
reject "2 /dev/vda /dev/vdb 0 2 region_size 1000" "region_size 1000 is not a power of two"
reject "2 /dev/vda /dev/vdb 0 2 region_size 4" "region_size 4"
reject "2 /dev/vda /dev/vdb 0 2 region_size 4194304" "region_size 4194304"
reject "2 /dev/vda /dev/vdb 0 2 region_size 12abc" "'12abc' is not a valid decimal number"
reject "2 /dev/vda /dev/vdb 0 2 region_size 099" "'099' is not a valid decimal number"
reject "2 /dev/vda /dev/vdb 0 2 io_timeout_ms 99999999" "io_timeout_ms 99999999"
reject "2 /dev/vda /dev/vdb 0 2 primary 2" "primary"
reject "2 - /dev/vdb 0 2 primary 0" "primary leg 0 is absent"
reject "2 /dev/vda /dev/vdc 0 0" "leg 1 '/dev/vdc' has"
reject "2 /dev/vda /dev/nonexistent 0 0" "leg 1 '/dev/nonexistent': cannot open"
reject "2 /dev/vda /dev/vdb 1 /dev/nonexistent 0" "log 0 '/dev/nonexistent': cannot open"
# allow_missing: a leg or log device that does not exist is taken as absent, the table loads
# and prints '-' for it.
expect "allow_missing takes missing devices as absent" \
	dmsetup create am --table "0 $S rtmirror 2 /dev/vda /dev/nonexistent 2 /dev/vdd /dev/nonexistent2 1 allow_missing"
t=$(table_of am) st=$(status_of am)
result allow_missing_table "$t"
case "$t" in "rtmirror 2 "*" - 2 "*" - 1 allow_missing") ;; *) fail "table with allow_missing: '$t'" ;; esac
case "$st" in "2 AM "*" 2 AF degraded "*) ;; *) fail "status with allow_missing: '$st'" ;; esac
dmesg | grep -q "leg 1 '/dev/nonexistent' does not exist.*taken as absent" || fail "no allow_missing warning"
expect "remove am" dmsetup remove am
reject "2 /dev/vda /dev/vdb 1 $(devnum_of vda) 0" "is a device already used"
result rejected_tables $rejected

# Messages on a good device.
expect "create m0" dmsetup create m0 --table "0 $S rtmirror 2 /dev/vda /dev/vdb 0 0"
bad_msg() { # <message words> <text the kernel log must show>
	expect_rejected "message '$1'" "$2" dmsetup message m0 0 $1 && rejected=$((rejected + 1))
}
bad_msg "frobnicate" "unknown message 'frobnicate'"
bad_msg "fail" "message 'fail' is missing its argument"
bad_msg "fail 7" "leg 7 out of range"
bad_msg "fail 0 1" "unexpected extra argument '1'"
bad_msg "primary x" "'x'"
bad_msg "io_timeout_ms 99999999" "io_timeout_ms 99999999"
bad_msg "resync_kbps 5x" "'5x'"
bad_msg "rejoin_log 5" "log copy 5 out of range"
bad_msg "rejoin_log 0" "rejoin_log 0: the table has 0 log devices"
bad_msg "rejoin 1" "rejoin 1: leg is already in service"
bad_msg "split 1 now" "unexpected extra argument 'now'"
dmsetup message m0 0 fail 0 || fail "fail 0 refused"
bad_msg "fail 1" "it would leave no in-sync leg"
bad_msg "split 1" "split 1: refused, it would leave no in-sync leg"
bad_msg "primary 0" "primary 0: leg is not in sync"
bad_msg "split 0" "split 0: leg is not in sync"
result rejected_total $rejected
expect "remove m0" dmsetup remove m0
kernel_log_clean
