#!/usr/bin/env bash
# Build librtmirror_ffi.a (dm_rtmirror/ffi, release) for one architecture, for lvm2 to link.
# The output goes to a cache outside the clone, with a copy of the header:
#   $RTMIRROR_CACHE/ffi-<arch>/<checkout>/{librtmirror_ffi.a,rtmirror.h}
# and that directory is printed on the last line of stdout.
#
# usage: build-ffi.sh <x86_64|s390x>
#   x86_64: the default (rustup) toolchain, whose core is prebuilt.
#   s390x:  no prebuilt core for s390x-unknown-linux-gnu here, so core is built from source
#           (cargo -Zbuild-std=core) with Debian's rustc (rustc-web) and its sources
#           (rust-web-src), both installed by scripts/install-deps.sh. RTMIRROR_FFI_RUSTC
#           names another rustc; its sysroot must hold lib/rustlib/src/rust/library.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"

arch=${1:?usage: build-ffi.sh <x86_64|s390x>}
cargo_args=(build --release --locked -p rtmirror-ffi --manifest-path "$here/Cargo.toml")
env_args=()
case $arch in
x86_64)
	triple=x86_64-unknown-linux-gnu ;;
s390x)
	triple=s390x-unknown-linux-gnu
	rustc=${RTMIRROR_FFI_RUSTC:-/usr/bin/rustc}
	[ -x "$rustc" ] || die "$rustc not found: install rustc-web and rust-web-src (scripts/install-deps.sh)"
	"$rustc" --print target-list | grep -qx "$triple" || die "$rustc has no $triple target"
	lib_src="$("$rustc" --print sysroot)/lib/rustlib/src/rust/library"
	[ -e "$lib_src/core/Cargo.toml" ] || die "no Rust library sources in $lib_src: install rust-web-src"
	# -Zbuild-std is unstable: RUSTC_BOOTSTRAP lets this stable rustc and cargo accept it.
	# core is built with this workspace's release profile (panic = abort, LTO).
	env_args=(RUSTC="$rustc" RUSTC_BOOTSTRAP=1)
	cargo_args+=(-Zbuild-std=core) ;;
*) die "unknown architecture '$arch' (x86_64 or s390x)" ;;
esac

base="$RTMIRROR_CACHE/ffi-$arch"
out="$base/$(checkout_key)"
mkdir -p "$base" "$out"
# Checkouts share the target directory; build and copy under one lock, so the archive copied
# is the one built from this checkout.
exec 8>"$base/.lock"
flock 8
log "building librtmirror_ffi.a for $triple"
env ${env_args[@]+"${env_args[@]}"} cargo "${cargo_args[@]}" --target "$triple" \
	--target-dir "$base/target" >&2
cp "$base/target/$triple/release/librtmirror_ffi.a" "$out/librtmirror_ffi.a"
cp "$here/dm_rtmirror/ffi/include/rtmirror.h" "$out/rtmirror.h"
flock -u 8
echo "$out"
