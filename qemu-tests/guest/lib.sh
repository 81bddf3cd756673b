# Shared guest-side helpers, sourced by every scenario (busybox sh).
# Reporting: "@@RESULT key value" lines and "@@FAIL text" lines go to the host, which decides.
MB=1048576
# They write to fd 3, the console the scenario started with: a failure reported inside a
# command substitution or a helper called with '>/dev/null' (wait_leg_state prints what it
# measured) must still reach the host. Writing to stdout lost those.
exec 3>&1
result() { echo "@@RESULT $*" >&3; }
fail() { echo "@@FAIL $*" >&3; }
note() { echo "@@NOTE $*" >&3; }
# Ask the host to do something (inject a fault, report counters); the reply is in $HOST_REPLY.
host() { echo "@@HOST $*"; read -r HOST_REPLY; }
expect() { # <description> <command...>: the command must succeed
	local what=$1; shift
	if "$@"; then note "ok: $what"; else fail "$what"; fi
}
expect_fail() { # <description> <command...>: the command must fail
	local what=$1; shift
	if "$@"; then fail "$what (unexpectedly succeeded)"; else note "ok: $what"; fi
}
load_rtmirror() { # no-op when the target is built in or already loaded
	dmsetup targets | grep -q '^rtmirror' || insmod /modules/dm_rtmirror.ko || fail "insmod dm_rtmirror"
}
# Run <command...>, which must fail, and find <text> in the kernel log it produced.
expect_rejected() { # <description> <text> <command...>
	local what=$1 text=$2; shift 2
	dmesg -c >/dev/null
	if "$@" 2>/dev/null; then fail "accepted: $what"; return 1; fi
	if dmesg | grep -q -F -- "$text"; then
		note "rejected: $what -> $(dmesg | grep -F -- "$text" | tail -n 1)"
	else
		fail "$what: kernel log lacks '$text': $(dmesg | tail -n 3 | tr '\n' '|')"; return 1
	fi
}
sectors_of() { blockdev --getsz "/dev/${1#/dev/}"; }
devnum_of() { # major:minor of a device node, in decimal
	set -- $(stat -L -c '%t %T' "/dev/${1#/dev/}")
	echo "$((0x$1)):$((0x$2))"
}
dev_of() { echo "/dev/mapper/$1"; }
# Write <count> MiB of fresh random data at MiB offset <seek> of <dev>; print its md5.
write_random() { # <dev> <seek MiB> <count MiB>
	dd if=/dev/urandom of=/tmp/pattern bs=$MB count=$3 2>/dev/null
	dd if=/tmp/pattern of=$1 bs=$MB seek=$2 conv=fsync,notrunc 2>/dev/null || { fail "write to $1"; return 1; }
	md5sum </tmp/pattern | cut -d' ' -f1
}
md5_of() { # <dev> <skip MiB> <count MiB>, read with O_DIRECT so the device answers, not the cache
	dd if=$1 bs=$MB skip=$2 count=$3 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}
status_of() { dmsetup status "$1" | cut -d' ' -f4-; }
# Wait until <dev>'s resync finished (every region in sync, no resync running); fail after
# <seconds> (default 300).
wait_in_sync() {
	local i=0 st
	while [ $i -lt $((${2:-300} * 10)) ]; do
		st=$(status_of "$1") && [ -n "$st" ] || { fail "$1: no status"; return 1; }
		case " $st " in *" idle "*)
			local regions=$(echo "$st" | cut -d' ' -f3)
			[ "${regions%/*}" = "${regions#*/}" ] && return 0 ;;
		esac
		usleep 100000; i=$((i + 1))
	done
	fail "$1 not in sync after ${2:-300} s: $(status_of "$1")"; return 1
}
# Waits up to <seconds> for the background job <pid>. If it still runs: fails with "<what>
# within <seconds> s" and <dev>'s status, records the blocked tasks (sysrq w) and the end of
# the kernel log, and returns 1 (the caller releases what it held and stops).
wait_or_dump() { # <pid> <seconds> <what> <dev>
	local i=0
	while kill -0 $1 2>/dev/null && [ $i -lt $2 ]; do sleep 1; i=$((i + 1)); done
	kill -0 $1 2>/dev/null || return 0
	fail "$3 within $2 s: $(status_of $4)"
	echo w >/proc/sysrq-trigger
	dmesg | tail -n 80 | while IFS= read -r l; do note "kernel: $l"; done
	return 1
}
# The lvm scenarios (lvm_demo, lvm_repair, lvm_split): the target, /sbin/lvm and its run
# directories. lvm's output goes to $OUT through run(), never to the console (the host flags
# console WARNINGs); said() gives it on one line.
lvm_setup() {
	load_rtmirror
	[ -x /sbin/lvm ] || { fail "no /sbin/lvm in the guest image (scripts/build-initramfs.sh)"; exit 1; }
	mkdir -p /run/lock/lvm /run/lvm
	export LVM_SUPPRESS_FD_WARNINGS=1
}
run() { OUT=$("$@" 2>&1); }
said() { echo "$OUT" | sed 's/WARNING:/warning:/g' | tr '\n' '|'; }
table_of() { dmsetup table "$1" | cut -d' ' -f3-; }
kernel_log_clean() {
	if dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace|general protection|refcount_t'; then
		fail "kernel log has warnings"
	fi
}
# The mirror most log scenarios use: vda+vdb, log copies on vdc and vdd, 512 KiB regions.
LOGGED_TABLE_ARGS="2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 2 region_size 1024"
create_logged_m0() {
	expect "create m0" dmsetup create m0 --table "0 $(sectors_of vda) rtmirror $LOGGED_TABLE_ARGS"
}
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
# Verifying writer, run in the background: writes 64 KiB blocks of fresh random data with
# O_DIRECT to <dev> at block offsets <first> .. <first>+<span>-1 (stride 7, so offsets are
# rewritten), until /tmp/<tag>.stop exists. Logs "offset md5 uptime_cs" per acknowledged write
# to /tmp/<tag>.log, failed offsets to /tmp/<tag>.err, the longest write latency (cs) to
# /tmp/<tag>.max.
vwriter() { # <dev> <tag> <first block> <span>
	local dev=$1 tag=$2 first=$3 span=$4 i=0 max=0 off t0 t1 lat sum
	rm -f /tmp/$tag.stop /tmp/$tag.log /tmp/$tag.err; echo 0 >/tmp/$tag.max
	while [ ! -e /tmp/$tag.stop ]; do
		off=$((first + (i * 7) % span))
		dd if=/dev/urandom of=/tmp/$tag.blk bs=65536 count=1 2>/dev/null
		sum=$(md5sum </tmp/$tag.blk | cut -d' ' -f1)
		t0=$(uptime_cs)
		if dd if=/tmp/$tag.blk of=$dev bs=65536 seek=$off count=1 oflag=direct conv=notrunc 2>/dev/null; then
			t1=$(uptime_cs)
			echo "$off $sum $t1" >>/tmp/$tag.log
		else
			t1=$(uptime_cs)
			echo "$off" >>/tmp/$tag.err
		fi
		lat=$((t1 - t0))
		[ $lat -gt $max ] && { max=$lat; echo $max >/tmp/$tag.max; }
		i=$((i + 1))
	done
}
vwriter_start() { vwriter "$@" & VWRITER_PID=$!; }
vwriter_stop() { # <tag>: stop the writer started last and wait for it
	touch /tmp/$1.stop; wait $VWRITER_PID
}
vwriter_count() { [ -e /tmp/$1.log ] && wc -l </tmp/$1.log || echo 0; }
# Check that every block the writer <tag> acknowledged reads back from <dev> with the data
# of its last acknowledged write; reports <tag>_errors and <tag>_verified.
vwriter_verify() { # <dev> <tag>
	local dev=$1 tag=$2 bad=0 n=0 off sum got
	[ -s /tmp/$tag.err ] && { fail "$tag: writes failed at blocks $(tr '\n' ' ' </tmp/$tag.err)"; bad=1; }
	awk '{ last[$1] = $2 } END { for (o in last) print o, last[o] }' /tmp/$tag.log >/tmp/$tag.last
	while read -r off sum; do
		got=$(dd if=$dev bs=65536 skip=$off count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
		[ "$got" = "$sum" ] || { fail "$tag: block $off reads back wrong"; bad=1; }
		n=$((n + 1))
	done </tmp/$tag.last
	result ${tag}_verified $n
	result ${tag}_max_latency_cs "$(cat /tmp/$tag.max)"
	return $bad
}
# Distinct regions of <region_bytes> written by writer <tag> at or after uptime <from_cs>.
vwriter_regions_since() { # <tag> <from_cs> <region_bytes>
	awk -v from=$2 -v rb=$3 '$3 >= from { r[int($1 * 65536 / rb)] = 1 } END { n = 0; for (x in r) n++; print n }' /tmp/$1.log
}
# Wait until leg <i> of <dev> shows state letter <letter>; prints the centiseconds waited.
wait_leg_state() { # <dev> <leg> <letter> <max seconds>
	local t0=$(uptime_cs) legs
	while :; do
		legs=$(status_of "$1" | cut -d' ' -f2)
		[ "$(echo "$legs" | cut -c$(($2 + 1)))" = "$3" ] && { echo $(($(uptime_cs) - t0)); return 0; }
		[ $(($(uptime_cs) - t0)) -gt $(($4 * 100)) ] && { fail "$1: leg $2 not '$3' after $4 s: $(status_of "$1")"; return 1; }
		usleep 50000
	done
}
# Bytes (regions) copied by the last resync, from its kernel message (one mirror per scenario).
resync_bytes_of() { dmesg | grep "resync done" | tail -n 1 | sed -n 's/.*regions copied, \([0-9]*\) bytes.*/\1/p'; }
resync_regions_of() { dmesg | grep "resync done" | tail -n 1 | sed -n 's/.*done: \([0-9]*\) regions copied.*/\1/p'; }
timeout_ms_arg() { sed -n 's/.*rtm\.timeout=\([0-9]*\).*/\1/p' /proc/cmdline; }

# Root on rtmirror (root_* scenarios): the mirror is "root", created by dm-mod.create=.
root_clean_shutdown() { touch /tmp/clean-shutdown; }
# Write <n> files of 256 KiB random data under /data with prefix <tag>, fsync each, and report
# each file's md5 as "@@RESULT file_<tag><i> <md5>" (the host reads them back from the legs).
root_write_files() { # <tag> <n>
	local i=0 f
	mkdir -p /data
	while [ $i -lt $2 ]; do
		f=/data/$1$i
		dd if=/dev/urandom of=$f bs=65536 count=4 conv=fsync 2>/dev/null || { fail "write $f"; return 1; }
		result "file_$1$i" "$(md5sum <$f | cut -d' ' -f1)"
		i=$((i + 1))
	done
	sync
}
# Every file this boot finds under /data, with its md5, as "@@RESULT seen_<name> <md5>".
root_report_files() {
	local f
	for f in /data/*; do
		[ -e "$f" ] || continue
		result "seen_${f##*/}" "$(md5sum <$f | cut -d' ' -f1)"
	done
}
root_is_rw() { grep -q '^/dev/root / ext4 rw\|^/dev/dm-0 / ext4 rw\|^/dev/mapper/[^ ]* / ext4 rw' /proc/mounts; }

# Root on an lvm rtmirror LV (lvmroot_* scenarios, qemu-tests/lvm_root.py): VG rootvg, LV root,
# one PV per storage subsystem on the GPT partition named rtm-pv-<subsystem>.
LVMROOT_VG=rootvg LVMROOT_LV=root LVMROOT_DM=rootvg-root
# The partition whose GPT name is <name> (/dev/<kernel name>), from sysfs.
part_named() { # <name>
	local u
	for u in /sys/class/block/*/uevent; do
		grep -q "^PARTNAME=$1\$" "$u" && { echo "/dev/$(sed -n 's/^DEVNAME=//p' "$u")"; return 0; }
	done
	return 1
}
# Report what the initramfs found and how the LV came up, and fail unless the root is the LV,
# read-write. The initramfs (initramfs_lvm_root.sh) reported the probe and vgchange itself.
lvmroot_boot_report() {
	result status "$(status_of $LVMROOT_DM)"
	result table "$(table_of $LVMROOT_DM)"
	result activation "$(dmesg | grep 'activated:' | tail -n 1)"
	grep -q "^/dev/mapper/$LVMROOT_DM / ext4 rw" /proc/mounts ||
		fail "root is not $LVMROOT_DM read-write: $(grep ' / ' /proc/mounts | tr '\n' '|')"
}
# lvchange --refresh of the root LV (rejoins legs out of service and failed log copies whose PVs
# are there, docs/lvm.md); its output goes to the host as "refresh".
lvmroot_refresh() {
	run lvm lvchange --refresh $LVMROOT_VG/$LVMROOT_LV || fail "lvchange --refresh: $(said)"
	result refresh "$(said)"
}
# lvmroot_rejoin <leg|any>: lvchange --refresh must rejoin the leg, the resync must end with
# both legs and log copies in service and every region in sync.
lvmroot_rejoin() {
	lvmroot_refresh
	case "$1:$OUT" in any:*"Rejoining leg "*|*:*"Rejoining leg $1"*) ;; *) fail "refresh did not rejoin leg $1: $(said)" ;; esac
	result status_rejoined "$(status_of $LVMROOT_DM)"
	wait_in_sync $LVMROOT_DM 600
	local st=$(status_of $LVMROOT_DM)
	result status_after "$st"
	case "$st" in "2 AA "*" 2 AA healthy idle") ;; *) fail "root LV after the resync: '$st'" ;; esac
	result resync "$(dmesg | grep 'resync done' | tail -n 1)"
}
