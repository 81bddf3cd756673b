#!/bin/sh
# One boot of the fault soak (qemu-tests/soak.py, docs/soak.md). Disks: vda, vdb legs, vdc,
# vdd log copies, vde the journal of acknowledged writes (never faulted).
#   rtm.soak=<epoch>,<seconds>,<seed>,<verify>,<final>
# Activate the mirror, check what the last boot left against the journal (<verify>: exact
# after a clean end, cut after a power cut), then run rtm-stress for <seconds> while the host
# injects faults and this script plays the operator: print the status every 2 s (the host's
# nemesis reads it), rejoin failed legs and log copies every 10 s, switch the primary leg now
# and then. At the end ask the host to heal, bring every leg back, wait in sync and remove the
# mirror (clean shutdown). The host may cut the power at any moment instead.
# <final>=1: no workload; verify reading from each leg as primary.
. /scenarios/lib.sh
load_rtmirror
IFS=, read -r epoch secs seed verify final <<EOF
$(sed -n 's/.*rtm\.soak=\([^ ]*\).*/\1/p' /proc/cmdline)
EOF
[ -n "$final" ] || { fail "no rtm.soak= parameters"; exit 1; }
S=$(sectors_of vda)
opts="4 region_size 1024 io_timeout_ms 3000"
# First boot: new zeroed legs, nothing to copy.
[ "$epoch" = 1 ] && opts="5 region_size 1024 io_timeout_ms 3000 nosync"
expect "create the mirror" dmsetup create m0 --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd $opts"
dmesg | grep 'rtmirror.*activated' | tail -n 1 | sed 's/^/rtm-soak activation: /'
echo "rtm-soak status $(status_of m0)"
operator_heal() { # every leg and log copy back in service, then in sync
	for i in 0 1; do
		case $(status_of m0 | cut -d' ' -f2 | cut -c$((i + 1))) in I|S) dmsetup message m0 0 rejoin $i ;; esac
		case $(status_of m0 | cut -d' ' -f5 | cut -c$((i + 1))) in F) dmsetup message m0 0 rejoin_log $i ;; esac
	done
	wait_in_sync m0 300
	echo "rtm-soak status $(status_of m0)"
}
verify() { # <tag>
	if rtm-stress verify /dev/mapper/m0 /dev/vde "$verify" >/tmp/verify.log 2>&1; then
		result "verified_$1" "$(tail -n 1 /tmp/verify.log)"
	else
		cat /tmp/verify.log
		fail "verify ($1, $verify) found bad blocks: $(tail -n 1 /tmp/verify.log)"
	fi
}
verify activation
if [ "$final" = 1 ]; then
	operator_heal
	for p in 0 1; do
		expect "primary $p" dmsetup message m0 0 primary $p
		verify "primary$p"
	done
	case "$(status_of m0)" in "2 AA "*" 2 AA healthy "*) ;; *) fail "not healthy at the end: $(status_of m0)" ;; esac
	expect "remove" dmsetup remove m0
	kernel_log_clean
	exit 0
fi
echo "rtm-soak workload started"
rtm-stress run /dev/mapper/m0 /dev/vde "$secs" "$epoch" "$seed" >/tmp/stress.log 2>&1 &
pid=$!
tail -f /tmp/stress.log &
tailpid=$!
t=0
while kill -0 $pid 2>/dev/null; do
	st=$(status_of m0)
	echo "rtm-soak status $st"
	if [ $((t % 10)) = 0 ] && [ $t -gt 0 ]; then
		legs=$(echo "$st" | cut -d' ' -f2) logs=$(echo "$st" | cut -d' ' -f5)
		for i in 0 1; do
			case $(echo "$legs" | cut -c$((i + 1))) in
			I) dmsetup message m0 0 rejoin $i && echo "rtm-soak operator: rejoin $i" ;;
			esac
			case $(echo "$logs" | cut -c$((i + 1))) in
			F) dmsetup message m0 0 rejoin_log $i && echo "rtm-soak operator: rejoin_log $i" ;;
			esac
		done
		if [ $((t % 30)) = 0 ] && [ "$legs" = AA ]; then
			dmsetup message m0 0 primary $(((t / 30) % 2)) && echo "rtm-soak operator: primary $(((t / 30) % 2))"
		fi
	fi
	sleep 2
	t=$((t + 2))
done
wait $pid
rc=$?
sleep 1
kill $tailpid 2>/dev/null
line=$(grep 'rtm-stress: done' /tmp/stress.log | tail -n 1)
[ -n "$line" ] || fail "rtm-stress did not finish (exit $rc): $(tail -n 3 /tmp/stress.log)"
result stress "${line#rtm-stress: done }"
[ "$rc" = 0 ] || fail "rtm-stress: a read returned a wrong version (exit $rc)"
echo "rtm-soak workload ended"
host soak-heal
operator_heal
expect "remove (clean shutdown)" dmsetup remove m0
kernel_log_clean
