#!/bin/sh
# lvm_shell_tests with lvm2's tests of create, lvs, faults and remove only (s390x: lvm commands
# under TCG take seconds each).
export LVM_SHELL_TESTS="rtmirror-create rtmirror-fault"
exec /scenarios/lvm_shell_tests.sh
