#!/bin/sh
# lvm2's own tests of the rtmirror segment type: test/shell/rtmirror-*.sh as lvm2-patches/
# carries them (extracted by scripts/build-initramfs.sh into /scenarios/lvm2-test/shell/), run
# one after the other by the guest's port of lvm2's test harness (lvm2-test-lib/: inittest,
# aux, check, get, not) on test PVs carved from vda..vdd. One line per test, PASS or FAIL; a
# failed or skipped test fails the scenario and its output's end is shown.
# $LVM_SHELL_TESTS (names without .sh) picks some; lvm_shell_basic.sh sets it for s390x.
. /scenarios/lib.sh
lvm_setup
cd /scenarios/lvm2-test || { fail "no /scenarios/lvm2-test in the guest image"; exit 1; }
export LVM_TEST_DISKS="/dev/vda /dev/vdb /dev/vdc /dev/vdd"
tests=
for n in ${LVM_SHELL_TESTS:-$(cd shell && ls rtmirror-*.sh | sed 's/\.sh$//')}; do
	[ -e "shell/$n.sh" ] || { fail "lvm2 test $n is not in the image"; continue; }
	tests="$tests $n"
done
[ -n "$tests" ] || { fail "no lvm2 tests to run"; exit 1; }
passed=0
for n in $tests; do
	t0=$(uptime_cs)
	timeout ${LVM_SHELL_TIMEOUT:-400} sh "shell/$n.sh" >/tmp/$n.log 2>&1 </dev/null
	st=$?
	dt=$(( ($(uptime_cs) - t0) / 100 ))
	case $st in
	0)
		note "PASS $n (${dt}s)"
		result "lvm2_test_$n" "pass ${dt}s"
		passed=$((passed + 1)) ;;
	*)
		case $st in 200) what="skipped" ;; 143) what="killed after ${LVM_SHELL_TIMEOUT:-400} s" ;; *) what="exit $st" ;; esac
		result "lvm2_test_$n" "fail ($what) ${dt}s"
		fail "lvm2 test $n: $what after ${dt}s"
		tail -n 40 /tmp/$n.log | sed 's/WARNING:/warning:/g' | while IFS= read -r l; do note "  $n: $l"; done ;;
	esac
done
result lvm2_tests_passed "$passed of $(echo $tests | wc -w)"
# The harness removes what a test left (its own teardown reports leaks): nothing of them stays.
dmsetup ls | grep -q '^LVMTEST' && fail "devices left by the lvm2 tests: $(dmsetup ls | grep '^LVMTEST' | tr '\n' ' ')"
kernel_log_clean
