#!/bin/sh
# rtmirror compiled into the kernel (CONFIG_DM_RTMIRROR=y): the target exists at boot without
# loading a module (the precondition for a root file system on rtmirror), then it mirrors
# exactly as in mirror_pattern.
. /scenarios/lib.sh
dmsetup targets | grep -q '^rtmirror' || fail "rtmirror target not registered at boot"
[ -e /modules/dm_rtmirror.ko ] && fail "built-in image must not carry the module"
grep -q '^dm_rtmirror ' /proc/modules && fail "dm_rtmirror shows up as a loaded module"
exec /scenarios/mirror_pattern.sh
