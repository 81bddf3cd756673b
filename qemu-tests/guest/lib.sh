# Shared guest-side helpers, sourced by every scenario (busybox sh).
# Reporting: "@@RESULT key value" lines and "@@FAIL text" lines go to the host, which decides.
MB=1048576
result() { echo "@@RESULT $*"; }
fail() { echo "@@FAIL $*"; }
note() { echo "@@NOTE $*"; }
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
