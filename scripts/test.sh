#!/usr/bin/env bash
# The test command (README, .ci/run): installs what it needs, builds both guest kernels and the
# module, runs the host tests (cargo test, rustfmt, clippy) and the QEMU scenarios on x86_64
# and s390x. Ends with one line "N passed, N failed"; exits non-zero when anything failed.
#   RTMIRROR_ARCHES="x86_64 s390x"  architectures to run (default both)
#   RTMIRROR_ONLY=a,b               run only these scenarios
#   RTMIRROR_DEBUG_KERNEL=0         skip the x86_64 debug kernel and its scenario set
#                                   (run.py --debug-set: the scenarios listed in DEBUG_SET)
#   RTMIRROR_SOAK=0                 skip the short fixed-seed fault soak (docs/soak.md)
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
# The counts of the last "N passed, N failed" line of a log, as "N N"; false if there is none.
counts_of() {
	local line f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
	[ -n "$line" ] || return 1
	f=${line#*passed, }
	echo "${line%% passed*} ${f%% failed}"
}
# Add the counts of the last "N passed, N failed" line of a log; false if there is none.
add_counts() {
	local c
	c=$(counts_of "$1") || return 1
	passed=$((passed + ${c% *})); failed=$((failed + ${c#* }))
}

step "install prerequisites"
if ! bash scripts/install-deps.sh; then
	echo "prerequisites could not be installed"; echo "0 passed, 1 failed"; exit 1
fi

# Guest kernels and scenario sets, as pipelines that run at the same time, started before the
# host tests so that the kernel builds overlap them: kernel builds take turns
# (scripts/build-kernel.sh holds a lock on the shared kernel tree), and each scenario set
# starts as soon as its kernel is built, so QEMU (one CPU, often waiting on timeouts) overlaps
# the next build. Each pipeline writes its own log, printed when it ended; its last line is
# "N passed, N failed".
#   pipeline <name> <arch> <mode> <label> <only>
pipeline() {
	local name=$1 arch=$2 mode=$3 label=$4 only=$5 out image initrd p=0 f=0 c
	local started=$(date +%s)
	echo "--- $name: build $arch kernel ($mode) ($(( started - t_start ))s)"
	if ! out=$(bash scripts/build-kernel.sh "$arch" "$mode" | tail -n 1) || [ ! -d "$out" ]; then
		echo "FAIL $label: kernel/module build"; echo "0 passed, 1 failed"; return
	fi
	echo "PASS $label: kernel build ($mode)"; p=1
	image=$out/image-$(checkout_key)
	initrd=$out/initramfs-$(checkout_key).cpio.gz rootfs=$out/rootfs-$(checkout_key).ext4
	if ! bash scripts/build-initramfs.sh "$arch" "$out" "$initrd" "$rootfs"; then
		echo "FAIL $label: initramfs"; echo "$p passed, 1 failed"; return
	fi
	echo "--- $name: QEMU scenarios ($(( $(date +%s) - t_start ))s)"
	# The debug kernel's set is the slowest (KASAN under TCG) and s390x comes last (its
	# kernel is built after the others): two guests share each, so the second CPU is used
	# once the other pipelines are done.
	local shards=1 k
	{ [ "$mode" = debug ] || [ "$arch" = s390x ]; } && shards=2
	for k in $(seq 1 $shards); do
		python3 qemu-tests/run.py --arch "$arch" --label "$label" --kernel "$image" --initrd "$initrd" \
			--rootfs "$rootfs" ${only:+--only "$only"} $([ "$mode" = builtin ] && echo --builtin) $([ "$mode" = debug ] && echo --slow-kernel --debug-set) \
			--shard "$k/$shards" >"$work/$name.scen$k" 2>&1 &
	done
	wait
	# The short fixed-seed fault soak (docs/soak.md) after the scenarios, on the x86_64 kernel
	# with the target built in.
	if [ "${RTMIRROR_SOAK:-1}" = 1 ] && [ "$arch" = x86_64 ] && [ "$mode" = builtin ] && [ -z "$only" ]; then
		python3 qemu-tests/soak.py --arch "$arch" --label "$label" --kernel "$image" \
			--initrd "$initrd" --seed 1 --epochs 3 --epoch-seconds 40 >"$work/$name.soak" 2>&1
		cat "$work/$name.soak"
		if c=$(counts_of "$work/$name.soak"); then p=$((p + ${c% *})); f=$((f + ${c#* }))
		else echo "FAIL $label: soak crashed"; f=$((f + 1)); fi
	fi
	# The bench's smoke run, so it cannot rot: every configuration runs and the legs of every
	# mirror are identical afterwards (never a speed; docs/benchmarks.md).
	if [ "$arch" = x86_64 ] && [ "$mode" = builtin ] && [ -z "$only" ]; then
		RTMIRROR_BENCH_WORK="$work/bench-$arch" bash scripts/bench.sh --smoke --arch "$arch" --kernel "$image" >"$work/$name.bench" 2>&1
		grep -E '^(PASS|FAIL)' "$work/$name.bench"
		if c=$(counts_of "$work/$name.bench"); then p=$((p + ${c% *})); f=$((f + ${c#* }))
		else echo "FAIL $label: bench smoke crashed"; tail -n 20 "$work/$name.bench"; f=$((f + 1)); fi
	fi
	for k in $(seq 1 $shards); do
		cat "$work/$name.scen$k"
		if c=$(counts_of "$work/$name.scen$k"); then p=$((p + ${c% *})); f=$((f + ${c#* }))
		else echo "FAIL $label: scenario runner $k crashed"; f=$((f + 1)); fi
	done
	echo "--- $name: done in $(( $(date +%s) - started ))s"
	echo "$p passed, $f failed"
}
work=$(mktemp -d)
names=()
# Started in this order, so the longest scenario set (debug) gets its kernel early; builds then
# take turns on the kernel-tree lock.
launch() { # <name> <arch> <mode> <only>
	names+=("$1"); pipeline "$1" "$2" "$3" "$1" "$4" >"$work/$1.log" 2>&1 &
	sleep 2
}
# x86_64 and s390x run on kernels with the target built in (as for a root file system on
# rtmirror); the debug kernel loads it as a module, so both forms are tested.
if [[ " $arches " == *" x86_64 "* ]]; then
	# The debug kernel's scenario set (run.py DEBUG_SET) on a kernel with lock, atomic-sleep,
	# list, object and memory checking and KASAN: any splat fails the scenario
	# (RTMIRROR_DEBUG_KERNEL=0 skips it). Started first: its kernel build is the longest.
	[ "${RTMIRROR_DEBUG_KERNEL:-1}" = 1 ] && launch x86_64-debug x86_64 debug "${RTMIRROR_ONLY:-}"
	launch x86_64 x86_64 builtin "${RTMIRROR_ONLY:-}"
fi
[[ " $arches " == *" s390x "* ]] && launch s390x s390x builtin "${RTMIRROR_ONLY:-}"
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
if rustfmt --edition 2021 --check rust/kernel/device_mapper.rs rust/kernel/block/bio.rs rust/kernel/crc32.rs rust/kernel/random.rs dm_rtmirror/dm_rtmirror.rs >/dev/null 2>&1; then
	pass "rustfmt (kernel code)"; else failx "rustfmt (kernel code)"; fi

step "C interface for lvm2 (dm_rtmirror/ffi: header, x86_64 and s390x archives, C test)"
log=$(mktemp)
bash scripts/check-ffi.sh >"$log" 2>&1
grep -E '^(FAIL|SKIP)' "$log"; tail -n 1 "$log"
add_counts "$log" || { failx "check-ffi.sh crashed"; tail -n 20 "$log"; }
rm -f "$log"

step "fuzzing (table, message, status, log decoder; 10 s per target)"
log=$(mktemp)
bash scripts/fuzz.sh --seconds 10 >"$log" 2>&1
grep -E '^(PASS|FAIL)' "$log"; tail -n 1 "$log"
add_counts "$log" || { failx "fuzz.sh crashed"; tail -n 20 "$log"; }
rm -f "$log"

step "fault backend self-test (host, qemu-io)"
log=$(mktemp)
python3 qemu-tests/selftest_nbd.py | tee "$log" | tail -n 3
add_counts "$log" || failx "NBD fault server self-test crashed"
rm -f "$log"

step "guest kernels and QEMU scenarios: ${names[*]} (started before the host tests)"
wait
for n in "${names[@]}"; do
	step "$n"
	cat "$work/$n.log"
	add_counts "$work/$n.log" || failx "$n: pipeline crashed"
done
rm -rf "$work"

step "done"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
