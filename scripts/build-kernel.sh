#!/usr/bin/env bash
# Build a guest kernel for one architecture, with this repo's rust/ abstractions applied,
# then the rtmirror module against it. Outputs live in a cache outside the clone, keyed by
# kernel version, architecture and config, so a second run is incremental.
#
# usage: build-kernel.sh <x86_64|s390x> [module|builtin|debug]
#   module  (default): CONFIG_DM_RTMIRROR=n in the kernel, rtmirror built out of tree (Kbuild)
#   builtin: CONFIG_DM_RTMIRROR=y, rtmirror compiled into the kernel image
#   debug:   like module, plus lock, atomic-sleep, list, object and memory checking and KASAN
#            (qemu-tests/kconfig/<arch>-debug.config), built with clang (LLVM=-19): with
#            CONFIG_RUST, KASAN needs a clang-built kernel
# Prints the build directory on the last line of stdout; the kernel image built from this
# checkout is <dir>/image-<checkout key> (the build tree is shared with other checkouts).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"

arch=${1:?usage: build-kernel.sh <x86_64|s390x> [module|builtin]}
mode=${2:-module}
case $arch in
x86_64) karch=x86_64; cross=""; image=arch/x86/boot/bzImage
	fragments=("$here/qemu-tests/kconfig/common.config" "$here/qemu-tests/kconfig/x86_64.config") ;;
s390x) karch=s390; cross=s390x-linux-gnu-; image=arch/s390/boot/bzImage
	fragments=("$here/qemu-tests/kconfig/common.config" "$here/s390x-configs/s390x.config") ;;
*) die "unknown architecture '$arch' (x86_64 or s390x)" ;;
esac
case $mode in
module | builtin) ;;
debug) [ -e "$here/qemu-tests/kconfig/$arch-debug.config" ] || die "no debug config for $arch"
	fragments+=("$here/qemu-tests/kconfig/$arch-debug.config") ;;
*) die "unknown mode '$mode' (module, builtin or debug)" ;;
esac

# One kernel source tree is shared by every build and checkout: one build at a time, from
# extracting the tree and applying this checkout's rust/ to the module, so no build sees a
# half-extracted tree or another checkout's files.
mkdir -p "$RTMIRROR_CACHE"
exec 9>"$RTMIRROR_CACHE/.kernel-tree-lock"
flock 9
src=$(kernel_source_tree)
apply_rust_abstractions "$src"

extra=$(mktemp); trap 'rm -f "$extra"' EXIT
if [ "$mode" = builtin ]; then echo CONFIG_DM_RTMIRROR=y >"$extra"; else echo "# CONFIG_DM_RTMIRROR is not set" >"$extra"; fi
key=$( (cat "${fragments[@]}" "$extra"; if [ "$mode" = debug ]; then echo clang-19; fi) | sha256sum | cut -c1-12)
out="$RTMIRROR_CACHE/build/$(basename "$src")-$arch-$mode-$key"
mkdir -p "$out"

if [ "$mode" = debug ]; then
	toolchain=(LLVM=-19 CC="ccache clang-19" HOSTCC=clang-19)
else
	toolchain=(${cross:+CROSS_COMPILE=$cross} CC="ccache ${cross}gcc")
fi
kmake() {
	make -C "$src" O="$out" ARCH="$karch" "${toolchain[@]}" \
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=/usr/local/bin/bindgen \
		CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver \
		-j"$(( $(nproc) + 1 ))" "$@"
}

if [ ! -e "$out/.config-done" ]; then
	log "configuring $arch ($mode) in $out"
	kmake tinyconfig >/dev/null
	(cd "$out" && KCONFIG_CONFIG=.config "$src/scripts/kconfig/merge_config.sh" -m -O "$out" .config "${fragments[@]}" "$extra" >/dev/null)
	kmake olddefconfig >/dev/null
	grep -q '^CONFIG_RUST=y' "$out/.config" || { kmake rustavailable || true; die "CONFIG_RUST did not stick: Rust toolchain not usable"; }
	for f in "${fragments[@]}" "$extra"; do
		while read -r line; do
			case $line in CONFIG_*=y) grep -qx "$line" "$out/.config" || log "warning: $line did not stick" ;; esac
		done <"$f"
	done
	touch "$out/.config-done"
fi

log "building $arch kernel ($mode)"
if ! kmake "$(basename "$image")" modules >"$out/build.log" 2>&1; then
	grep -E -B2 -A12 'error(\[|:)|Error [0-9]' "$out/build.log" | head -n 150 >&2
	die "kernel build failed; full log in $out/build.log"
fi
# Our Rust (abstractions and target) must build without rustc or clippy warnings.
ours='--> .*(rust/kernel/(device_mapper|random|crc32|block/bio)\.rs|dm_rtmirror/)'
if grep -A3 -E '^(warning|error)' "$out/build.log" | grep -qE -e "$ours"; then
	grep -B2 -A12 -E '^warning' "$out/build.log" >&2
	die "warnings in our Rust code (see above)"
fi
[ -e "$out/$image" ] || die "kernel image $out/$image missing"
# Another checkout may rebuild this tree while our scenarios boot: they use their own copy.
cp "$out/$image" "$out/image-$(checkout_key).new" && mv "$out/image-$(checkout_key).new" "$out/image-$(checkout_key)"

if [ "$mode" != builtin ]; then
	log "building rtmirror module for $arch"
	mo="$out/rtmirror-module-$(checkout_key)"
	mkdir -p "$mo"
	if ! kmake M="$here" MO="$mo" modules >"$mo/module.log" 2>&1; then
		cat "$mo/module.log" >&2
		die "module build failed"
	fi
	if grep -A3 -E '^(warning|error)' "$mo/module.log" | grep -qE -e "$ours"; then
		cat "$mo/module.log" >&2
		die "warnings building the rtmirror module"
	fi
	# objtool does not know every noreturn panic helper of this rustc; report, do not fail.
	grep 'objtool' "$mo/module.log" >&2 || true
	[ -e "$mo/dm_rtmirror/dm_rtmirror.ko" ] || die "module not built"
fi
echo "$out"
