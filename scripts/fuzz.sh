#!/usr/bin/env bash
# Coverage-guided fuzzing of rtmirror-core (docs/testing.md, "Fuzzing"): builds the cargo-fuzz
# targets in dm_rtmirror/core/fuzz and runs each for a fixed time on a temporary copy of its
# committed corpus. One line "PASS fuzz/<target>" or "FAIL fuzz/<target>" per target, then
# "N passed, N failed"; exits non-zero when a target failed (crash, failed assertion, build).
#   scripts/fuzz.sh [--seconds N] [--update-corpus] [target...]
#     --seconds N        run each target N seconds (default 20)
#     --update-corpus    merge the inputs that add coverage into the committed corpus
#     target...          only these targets (default: all)
#   RTMIRROR_CACHE       cache directory (default ~/.cache/dm-rtmirror): cargo-fuzz, build
#   RTMIRROR_FUZZ_JOBS   cargo build jobs (default 2)
# A crashing input is kept in $RTMIRROR_CACHE/fuzz-artifacts/<target>/ (the path is printed);
# after minimising it (cargo fuzz tmin), add it to the target's corpus as a regression input.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fuzzdir=$here/dm_rtmirror/core/fuzz
all_targets=(table message status log_raw log_build)
CARGO_FUZZ_VERSION=0.13.2

seconds=20 update=0 targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
	--seconds=*) seconds=${1#*=}; shift ;;
	--update-corpus) update=1; shift ;;
	-h | --help) sed -n '2,13p' "$0"; exit 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: --seconds needs a whole number" >&2; exit 2 ;; esac
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
	case " ${all_targets[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target $t (${all_targets[*]})" >&2; exit 2 ;; esac
done

cache=${RTMIRROR_CACHE:-$HOME/.cache/dm-rtmirror}
mkdir -p "$cache"
passed=0 failed=0
summary() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; }
fail_all() {
	echo "fuzz.sh: $*"
	for t in "${targets[@]}"; do failed=$((failed + 1)); echo "FAIL fuzz/$t"; done
	summary; exit 1
}

# Toolchain: cargo (rustup's if present; the host tests need it too), a C++ compiler for
# libFuzzer, and cargo-fuzz, installed once into the cache.
[ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH
command -v cargo >/dev/null || fail_all "cargo not found (install a Rust toolchain first)"
if ! command -v c++ >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "fuzz.sh: installing a C++ compiler for libFuzzer"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++ >/dev/null ||
		fail_all "could not install g++"
fi
command -v c++ >/dev/null || fail_all "no C++ compiler (c++) to build libFuzzer"
fuzzroot=$cache/cargo-fuzz-$CARGO_FUZZ_VERSION
if cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
	: # this version is already installed
elif ! "$fuzzroot/bin/cargo-fuzz" --version >/dev/null 2>&1; then
	echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $fuzzroot"
	cargo install --root "$fuzzroot" --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz ||
		fail_all "could not install cargo-fuzz"
fi
[ -d "$fuzzroot/bin" ] && PATH=$fuzzroot/bin:$PATH

# cargo-fuzz needs nightly compiler flags (-Z sanitizer, coverage instrumentation):
# RUSTC_BOOTSTRAP=1 lets the stable compiler accept them. No sanitizer (core has no unsafe
# code; bounds and overflow are checked by Rust itself, with debug assertions on).
export RUSTC_BOOTSTRAP=1
fuzz_flags=(--fuzz-dir "$fuzzdir" --target-dir "$cache/fuzz-target" --sanitizer none --debug-assertions)
export CARGO_BUILD_JOBS=${RTMIRROR_FUZZ_JOBS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "=== building fuzz targets"
if ! (cd "$fuzzdir/.." && cargo fuzz build "${fuzz_flags[@]}" >"$tmp/build.log" 2>&1); then
	tail -n 30 "$tmp/build.log"
	fail_all "build failed"
fi

for t in "${targets[@]}"; do
	echo "=== fuzz/$t (${seconds}s)"
	repo_corpus=$fuzzdir/corpus/$t
	work=$tmp/corpus/$t artifacts=$cache/fuzz-artifacts/$t
	mkdir -p "$work" "$artifacts"
	[ -d "$repo_corpus" ] && cp -r "$repo_corpus/." "$work/"
	log=$tmp/$t.log
	(cd "$fuzzdir/.." && cargo fuzz run "${fuzz_flags[@]}" "$t" "$work" -- \
		-max_total_time="$seconds" -max_len=32768 -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 -artifact_prefix="$artifacts/") >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)
	echo "fuzz/$t: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-no coverage line}, corpus $(find "$work" -type f | wc -l) inputs"
	if [ $rc = 0 ] && grep -q '^Done [0-9]* runs' "$log"; then
		passed=$((passed + 1)); echo "PASS fuzz/$t"
	else
		failed=$((failed + 1))
		grep -E -A12 "panicked at|^==[0-9]+==|ERROR: libFuzzer|^Test unit written" "$log" | head -n 40 ||
			tail -n 20 "$log"
		echo "FAIL fuzz/$t (rc $rc; crashing input in $artifacts/)"
	fi
	if [ $update = 1 ] && [ $rc = 0 ]; then
		mkdir -p "$repo_corpus"
		before=$(find "$repo_corpus" -type f | wc -l)
		(cd "$fuzzdir/.." && cargo fuzz run "${fuzz_flags[@]}" "$t" "$repo_corpus" "$work" -- \
			-set_cover_merge=1 -max_len=32768 -timeout=10 -rss_limit_mb=1024) >"$log.merge" 2>&1 ||
			{ tail -n 5 "$log.merge"; echo "fuzz/$t: corpus merge failed"; }
		echo "fuzz/$t: corpus $before -> $(find "$repo_corpus" -type f | wc -l) inputs (merged)"
	fi
done
summary
