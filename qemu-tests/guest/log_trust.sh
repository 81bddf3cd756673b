#!/bin/sh
# Log format version 2 at activation: a clean shutdown resyncs nothing; a log bound to another
# mirror (log_uuid) is never trusted, so the mirror comes up failed (I/O fails, no leg guessed)
# until `trust <leg>` names the leg to resync from.
. /scenarios/lib.sh
load_rtmirror
U1=0123456789abcdef0123456789abcdef
U2=fedcba9876543210fedcba9876543210
table() { echo "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 4 region_size 1024 log_uuid $1"; }
expect "create m0" dmsetup create m0 --table "$(table $U1)"
wait_in_sync m0
sum=$(write_random /dev/mapper/m0 4 2)
dmsetup table m0 | grep -q " log_uuid $U1\$" || fail "table does not show log_uuid: $(dmsetup table m0)"
expect "remove m0" dmsetup remove m0

dmesg -c >/dev/null
expect "create m0 after a clean shutdown" dmsetup create m0 --table "$(table $U1)"
line=$(dmesg | grep 'activated:' | tail -n 1)
result clean_activation "$line"
case $line in *"clean shutdown"*" 0 of 128 regions out of sync"*) ;; *) fail "activation after a clean shutdown: '$line'" ;; esac
st=$(status_of m0)
case $st in "2 AA 128/128 2 AA healthy idle") ;; *) fail "status after a clean shutdown: '$st'" ;; esac
[ "$(md5_of /dev/mapper/m0 4 2)" = "$sum" ] || fail "read back after a clean shutdown"
# A write after resume waits for a log write that clears the clean mark.
sum2=$(write_random /dev/mapper/m0 10 1)
expect "remove m0" dmsetup remove m0

dmesg -c >/dev/null
expect "create m0 bound to another uuid" dmsetup create m0 --table "$(table $U2)"
dmesg | grep -q 'log copy 0: not used: foreign' || fail "foreign log copy not reported"
result foreign_activation "$(dmesg | grep 'activated:' | tail -n 1)"
st=$(status_of m0)
result untrusted_status "$st"
case $st in *" failed idle") ;; *) fail "status without a trusted leg: '$st'" ;; esac
dd if=/dev/mapper/m0 of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null &&
	fail "a read was served although no leg is known to hold the newest data"
dd if=/dev/urandom of=/dev/mapper/m0 bs=4096 count=1 seek=100 oflag=direct conv=notrunc 2>/dev/null &&
	fail "a write was accepted although no leg is known to hold the newest data"
expect_fail "trust of a leg out of range" dmsetup message m0 0 trust 2
expect "trust 1" dmsetup message m0 0 trust 1
expect_fail "trust once a source is known" dmsetup message m0 0 trust 0
wait_in_sync m0
result trusted_status "$(status_of m0)"
[ "$(md5_of /dev/mapper/m0 4 2)" = "$sum" ] || fail "read back after trust"
[ "$(md5_of /dev/mapper/m0 10 1)" = "$sum2" ] || fail "read back of the write after resume"
expect "remove m0" dmsetup remove m0
kernel_log_clean
