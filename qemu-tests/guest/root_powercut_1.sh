#!/bin/sh
# Root on rtmirror with subsystem b hanging from the start: write and fsync files while leg 1 is
# Degraded, then the power fails (the host kills QEMU; the disks' caches lose unflushed data).
. /scenarios/lib.sh
root_is_rw || fail "root is not mounted read-write"
root_write_files p 4
wait_leg_state root 1 D 60 >/dev/null || fail "leg 1 not Degraded: $(status_of root)"
result status_degraded "$(status_of root)"
host powercut
