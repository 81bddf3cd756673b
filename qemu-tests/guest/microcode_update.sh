#!/bin/sh
# Reliability issue, section 0 (paper 3.4): a storage subsystem's microcode update. Leg 0's
# subsystem goes away (hang: Degraded) and comes back (differential resync, R); while that
# resync runs, leg 1's subsystem, the resync source, is slow (every request 1.5 s, beyond the
# 1 s timeout) for a while. A verifying writer runs throughout: no write fails, leg 1 is never
# taken out of service while leg 0 is not in sync, the resync completes, every acknowledged
# write reads back from each leg as primary, and the legs end identical (host).
# resync_kbps 512 (1 s per 512 KiB region) and 2 MiB written while leg 0 is out: on a loaded
# guest the writer alone wrote so few regions that the resync was over before the status
# showed 'R'.
. /scenarios/lib.sh
load_rtmirror
expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 6 region_size 1024 io_timeout_ms 1000 resync_kbps 512"
wait_in_sync m0
vwriter_start /dev/mapper/m0 w 0 256
sleep 2
host hang 0
wait_leg_state m0 0 D 60 >/dev/null || exit 0
# Regions written while leg 0 is out, whatever the writer managed on a slow guest: the
# resync after its return has something to copy (else it was over before the status
# showed 'R').
d=$(write_random /dev/mapper/m0 32 2)
sleep 3
host release 0
wait_leg_state m0 0 R 60 >/dev/null || exit 0
host delay 1 1500
i=0
while [ $i -lt 8 ]; do
	legs=$(status_of m0 | cut -d' ' -f2)
	# Leg 1 is the last in-sync leg until leg 0's resync is done; after that a slow leg 1
	# may be timed out like any other (a slow guest finishes the resync within this loop).
	case $legs in ?A | A?) ;; *) fail "leg 1 left service while leg 0 was not in sync: $(status_of m0)"; break ;; esac
	sleep 1; i=$((i + 1))
done
host heal 1
wait_leg_state m0 0 A 180 >/dev/null
vwriter_stop w
wait_in_sync m0 180
result writes "$(vwriter_count w)"
vwriter_verify /dev/mapper/m0 w
[ "$(md5_of /dev/mapper/m0 32 2)" = "$d" ] || fail "data written while leg 0 was out"
expect "primary 0" dmsetup message m0 0 primary 0
vwriter_verify /dev/mapper/m0 w
[ "$(md5_of /dev/mapper/m0 32 2)" = "$d" ] || fail "leg 0 lacks the data written while it was out"
expect "remove m0" dmsetup remove m0
kernel_log_clean
