#!/bin/sh
# Root on rtmirror, healthy (docs/boot.md): the kernel created the mirror from dm-mod.create=
# and mounted it as the root file system read-write. Write and fsync files, then shut down
# cleanly: the host checks that both log copies record the clean shutdown.
. /scenarios/lib.sh
st=$(status_of root)
result status "$st"
result table "$(table_of root)"
result activation "$(dmesg | grep 'activated:' | tail -n 1)"
case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root mirror at boot: '$st'" ;; esac
root_is_rw || fail "root is not mounted read-write: $(grep ' / ' /proc/mounts)"
root_write_files a 4
kernel_log_clean
root_clean_shutdown
