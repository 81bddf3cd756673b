#!/bin/sh
# Root on rtmirror with one subsystem's disk not attached (rtm.outleg=<leg> names the absent
# leg): the mirror starts read-write with that leg missing (M) and its log copy failed (F);
# write and fsync files, shut down.
. /scenarios/lib.sh
out=$(sed -n 's/.*rtm\.outleg=\([0-9]\).*/\1/p' /proc/cmdline)
st=$(status_of root)
result status "$st"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
case "$out:$st" in
1:"2 AM "*" 2 AF degraded "*|0:"2 MA "*" 2 FA degraded "*) ;;
*) fail "root mirror with leg $out absent: '$st'" ;;
esac
dmesg | grep -q "does not exist.*taken as absent (allow_missing)" || fail "no allow_missing message"
root_is_rw || fail "root is not mounted read-write"
root_write_files d 4
result status_after "$(status_of root)"
kernel_log_clean
root_clean_shutdown
