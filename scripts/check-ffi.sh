#!/usr/bin/env bash
# Check the C interface of dm_rtmirror/ffi: the checked-in header is what cbindgen generates
# now, librtmirror_ffi.a builds (release), and the C test (dm_rtmirror/ffi/tests/c) compiles
# with gcc -Wall -Wextra -Werror against the header and the archive and passes.
#
# usage: check-ffi.sh [x86_64] [s390x]    (default: both)
#   s390x: the archive is built with scripts/build-ffi.sh, the C test linked with
#   s390x-linux-gnu-gcc (needs libc6-dev-s390x-cross) and run under qemu-s390x (qemu-user);
#   without those two packages the link or the run is skipped (SKIP, not counted).
# Prints one PASS/FAIL/SKIP line per check and "N passed, N failed" last; exits 1 if
# anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
cd "$here"

# cbindgen's output differs between versions: the header is generated with this one.
CBINDGEN_VERSION=0.29.4
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 s390x)
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
failx() { failed=$((failed + 1)); echo "FAIL $*"; }
skip() { echo "SKIP $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The pinned cbindgen: from PATH if it is that version, else installed into the cache.
cbindgen_bin() {
	local root="$RTMIRROR_CACHE/cbindgen-$CBINDGEN_VERSION"
	if [ "$(cbindgen --version 2>/dev/null)" = "cbindgen $CBINDGEN_VERSION" ]; then
		command -v cbindgen
		return
	fi
	if [ ! -x "$root/bin/cbindgen" ]; then
		log "installing cbindgen $CBINDGEN_VERSION into $root"
		cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$root" >&2 || return 1
	fi
	echo "$root/bin/cbindgen"
}

if cbindgen=$(cbindgen_bin); then
	if (cd dm_rtmirror/ffi && "$cbindgen" --config cbindgen.toml --crate rtmirror-ffi \
		--output "$work/rtmirror.h") >"$work/cbindgen.log" 2>&1; then
		if diff -u dm_rtmirror/ffi/include/rtmirror.h "$work/rtmirror.h" >"$work/header.diff"; then
			pass "header dm_rtmirror/ffi/include/rtmirror.h is current"
		else
			failx "header dm_rtmirror/ffi/include/rtmirror.h is stale; regenerate it (see its top):"
			head -n 40 "$work/header.diff"
		fi
	else
		failx "cbindgen failed"; grep -v 'WARN: Skip' "$work/cbindgen.log" | tail -n 20
	fi
else
	failx "cbindgen $CBINDGEN_VERSION could not be installed"
fi

test_src=dm_rtmirror/ffi/tests/c/test_rtmirror.c
cflags=(-std=gnu99 -O2 -Wall -Wextra -Werror)
for arch in "${arches[@]}"; do
	case $arch in
	x86_64) cc=gcc; run=() ;;
	s390x) cc=s390x-linux-gnu-gcc; run=(qemu-s390x -L /usr/s390x-linux-gnu) ;;
	*) failx "unknown architecture '$arch'"; continue ;;
	esac
	if ! out=$(bash scripts/build-ffi.sh "$arch" 2>"$work/build-$arch.log" | tail -n 1) || [ ! -e "$out/librtmirror_ffi.a" ]; then
		failx "$arch: build librtmirror_ffi.a"; tail -n 30 "$work/build-$arch.log"; continue
	fi
	pass "$arch: build librtmirror_ffi.a"
	if [ "$arch" = s390x ] && [ ! -e /usr/s390x-linux-gnu/include/stdio.h ]; then
		skip "$arch: C test (no s390x C library headers: apt-get install libc6-dev-s390x-cross)"
		continue
	fi
	bin="$work/test_rtmirror-$arch"
	if ! "$cc" "${cflags[@]}" -Idm_rtmirror/ffi/include "$test_src" "$out/librtmirror_ffi.a" \
		-o "$bin" >"$work/cc-$arch.log" 2>&1; then
		failx "$arch: compile the C test ($cc ${cflags[*]})"; head -n 30 "$work/cc-$arch.log"; continue
	fi
	pass "$arch: compile the C test ($cc ${cflags[*]})"
	if [ ${#run[@]} -gt 0 ] && ! command -v "${run[0]}" >/dev/null; then
		skip "$arch: run the C test (no ${run[0]}: apt-get install qemu-user)"
		continue
	fi
	"${run[@]}" "$bin" >"$work/run-$arch.log" 2>&1
	rc=$?
	sed "s/^\(PASS\|FAIL\) /\1 $arch: /" "$work/run-$arch.log" | grep -Ev '^[0-9]+ passed, [0-9]+ failed$'
	p=$(grep -c '^PASS ' "$work/run-$arch.log")
	f=$(grep -c '^FAIL ' "$work/run-$arch.log")
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failx "$arch: C test exited with $rc"; fi
	[ "$p" -gt 0 ] || failx "$arch: C test ran no check"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
