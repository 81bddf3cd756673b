#!/usr/bin/env bash
# The test command (README, .ci/run): installs what it needs, builds both guest kernels and the
# module, runs the host tests (cargo test, rustfmt, clippy) and the QEMU scenarios on x86_64
# and s390x. Ends with one line "N passed, N failed"; exits non-zero when anything failed.
#   RTMIRROR_ARCHES="x86_64 s390x"  architectures to run (default both)
#   RTMIRROR_ONLY=a,b               run only these scenarios
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/lib.sh
arches=${RTMIRROR_ARCHES:-x86_64 s390x}
passed=0 failed=0
t_start=$(date +%s)
pass() { passed=$((passed + 1)); echo "PASS $*"; }
failx() { failed=$((failed + 1)); echo "FAIL $*"; }
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - t_start ))"; }
# Add the counts of the last "N passed, N failed" line of a log; false if there is none.
add_counts() {
	local line f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
	[ -n "$line" ] || return 1
	passed=$((passed + ${line%% passed*})); f=${line#*passed, }; failed=$((failed + ${f%% failed}))
}

step "install prerequisites"
if ! bash scripts/install-deps.sh; then
	echo "prerequisites could not be installed"; echo "0 passed, 1 failed"; exit 1
fi

step "host tests (cargo test)"
log=$(mktemp)
if cargo test --workspace 2>&1 | tee "$log" | grep -E '^test result|^test .* FAILED|panicked'; then :; fi
if grep -q '^test result' "$log"; then
	p=$(awk '/^test result/ { s += $4 } END { print s + 0 }' "$log")
	f=$(awk '/^test result/ { s += $6 } END { print s + 0 }' "$log")
	passed=$((passed + p)); failed=$((failed + f))
	echo "cargo test: $p passed, $f failed"
fi
grep -qE '^error(\[|:)' "$log" && failx "cargo test: build error" && grep -E -A5 '^error' "$log" | head -n 30
rm -f "$log"
if cargo fmt --all --check >/dev/null 2>&1; then pass "rustfmt (host crates)"; else failx "rustfmt (host crates)"; fi
if cargo clippy --workspace --all-targets -q -- -D warnings >/dev/null 2>&1; then pass "clippy (host crates)"; else failx "clippy (host crates)"; fi
if rustfmt --edition 2021 --check rust/kernel/device_mapper.rs rust/kernel/block/bio.rs dm_rtmirror/dm_rtmirror.rs >/dev/null 2>&1; then
	pass "rustfmt (kernel code)"; else failx "rustfmt (kernel code)"; fi

step "fault backend self-test (host, qemu-io)"
log=$(mktemp)
python3 qemu-tests/selftest_nbd.py | tee "$log" | tail -n 3
add_counts "$log" || failx "NBD fault server self-test crashed"
rm -f "$log"

for arch in $arches; do
	step "build $arch kernel and module"
	if ! out=$(bash scripts/build-kernel.sh "$arch" | tail -n 1) || [ ! -d "$out" ]; then
		failx "$arch: kernel/module build"; continue
	fi
	pass "$arch: kernel and module build"
	case $arch in x86_64) image=$out/arch/x86/boot/bzImage ;; s390x) image=$out/arch/s390/boot/bzImage ;; esac
	initrd=$out/initramfs-$(checkout_key).cpio.gz
	if ! bash scripts/build-initramfs.sh "$arch" "$out" "$initrd"; then failx "$arch: initramfs"; continue; fi
	step "QEMU scenarios on $arch"
	log=$(mktemp)
	python3 qemu-tests/run.py --arch "$arch" --kernel "$image" --initrd "$initrd" \
		${RTMIRROR_ONLY:+--only "$RTMIRROR_ONLY"} | tee "$log"
	add_counts "$log" || failx "$arch: scenario runner crashed"
	rm -f "$log"
done

if [[ " $arches " == *" x86_64 "* ]] && { [ -z "${RTMIRROR_ONLY:-}" ] || [[ ",$RTMIRROR_ONLY," == *",builtin_target,"* ]]; }; then
	step "build x86_64 kernel with rtmirror built in"
	if out=$(bash scripts/build-kernel.sh x86_64 builtin | tail -n 1) && [ -d "$out" ] &&
		bash scripts/build-initramfs.sh x86_64 "$out" "$out/initramfs-$(checkout_key).cpio.gz"; then
		pass "x86_64: kernel build with CONFIG_DM_RTMIRROR=y"
		log=$(mktemp)
		python3 qemu-tests/run.py --arch x86_64 --kernel "$out/arch/x86/boot/bzImage" \
			--initrd "$out/initramfs-$(checkout_key).cpio.gz" --only builtin_target | tee "$log"
		add_counts "$log" || failx "x86_64: scenario runner crashed (built-in)"
		rm -f "$log"
	else
		failx "x86_64: kernel build with CONFIG_DM_RTMIRROR=y"
	fi
fi

# The whole x86_64 scenario set again on a kernel with lock, atomic-sleep, list, object and
# memory checking: any splat fails the scenario (RTMIRROR_DEBUG_KERNEL=0 skips this stage).
if [[ " $arches " == *" x86_64 "* ]] && [ "${RTMIRROR_DEBUG_KERNEL:-1}" = 1 ]; then
	step "build x86_64 debug kernel and module"
	if out=$(bash scripts/build-kernel.sh x86_64 debug | tail -n 1) && [ -d "$out" ] &&
		bash scripts/build-initramfs.sh x86_64 "$out" "$out/initramfs-$(checkout_key).cpio.gz"; then
		pass "x86_64: debug kernel and module build"
		step "QEMU scenarios on the x86_64 debug kernel"
		log=$(mktemp)
		python3 qemu-tests/run.py --arch x86_64 --label x86_64-debug --kernel "$out/arch/x86/boot/bzImage" \
			--initrd "$out/initramfs-$(checkout_key).cpio.gz" ${RTMIRROR_ONLY:+--only "$RTMIRROR_ONLY"} | tee "$log"
		add_counts "$log" || failx "x86_64-debug: scenario runner crashed"
		rm -f "$log"
	else
		failx "x86_64: debug kernel and module build"
	fi
fi

step "done"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
