#!/bin/sh
# Scenario 6: the host-controlled backend of a raw disk (vdb) returns EIO, hangs until
# released, and adds latency, as seen from the guest.
. /scenarios/lib.sh
rd() { dd if=/dev/vdb of=/dev/null bs=4096 count=1 skip=$1 iflag=direct 2>/dev/null; }
wr() { dd if=/dev/zero of=/dev/vdb bs=4096 count=1 seek=$1 oflag=direct conv=notrunc 2>/dev/null; }
expect "read before faults" rd 1
host error 1 read
expect_fail "read with read errors on" rd 2
expect "write with read errors on" wr 3
host error 1 write
expect_fail "write with write errors on" wr 4
expect "read with write errors on" rd 5
host error 1 off
expect "read after heal" rd 6
expect "write after heal" wr 7

host hang 1
rd 8 & pid=$!
sleep 2
if kill -0 $pid 2>/dev/null; then note "ok: read held while hung"; else fail "read finished while the disk hung"; fi
host stats 1
result held_stats "$HOST_REPLY"
host release 1
if wait $pid; then note "ok: held read completed after release"; else fail "held read failed after release"; fi

host delay 1 300
# Timed on the host's clock: the guest's can run slow under TCG on a loaded host.
host now; t0=${HOST_REPLY#ok }
for i in 1 2 3 4 5; do rd $((20 + i)); done
host now; t1=${HOST_REPLY#ok }
host delay 1 0
result delayed_5_reads_ms $((t1 - t0))
# 5 x 300 ms: the backend must have held each read that long
[ $((t1 - t0)) -ge 1500 ] || fail "5 reads with 300 ms latency took only $((t1 - t0)) ms (host clock)"
t0=$(uptime_cs)
for i in 1 2 3 4 5; do rd $((30 + i)); done
t1=$(uptime_cs)
result plain_5_reads_cs $((t1 - t0))
kernel_log_clean_except_io() {
	if dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace|general protection'; then fail "kernel log has warnings"; fi
}
kernel_log_clean_except_io
