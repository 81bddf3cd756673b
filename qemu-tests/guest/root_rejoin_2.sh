#!/bin/sh
# Root on rtmirror, both subsystems attached again after a degraded boot (or a power cut while
# degraded): the log names the stale leg; it rejoins and the resync copies to it from the other
# leg while the system runs; report the files this boot reads, wait until in sync, shut down
# cleanly.
. /scenarios/lib.sh
result status "$(status_of root)"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
root_is_rw || fail "root is not mounted read-write"
root_report_files
# What the boot scripts of a root mirror do (docs/boot.md): a leg the log calls missing that is
# present now rejoins (differential when the log knows the regions written meanwhile), a log
# copy that was absent rejoins the log.
st=$(status_of root)
legs=$(echo "$st" | cut -d' ' -f2) logs=$(echo "$st" | cut -d' ' -f5)
i=0; for l in $(echo "$legs" | sed 's/./& /g'); do
	[ "$l" = M ] && expect "rejoin leg $i" dmsetup message root 0 rejoin $i
	i=$((i + 1))
done
i=0; for l in $(echo "$logs" | sed 's/./& /g'); do
	[ "$l" = F ] && expect "rejoin log copy $i" dmsetup message root 0 rejoin_log $i
	i=$((i + 1))
done
result status_rejoined "$(status_of root)"
wait_in_sync root 600
st=$(status_of root)
result status_after "$st"
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root mirror after the resync: '$st'" ;; esac
result resync "$(dmesg | grep 'resync done' | tail -n 1)"
kernel_log_clean
root_clean_shutdown
