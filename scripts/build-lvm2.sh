#!/usr/bin/env bash
# Build a static lvm (tools/lvm.static) from Debian's lvm2 2.03.31 with the rtmirror segment type
# (lvm2-patches/*.patch) linked against librtmirror_ffi.a (scripts/build-ffi.sh).
# The result goes to a cache outside the clone, keyed by the patches and the FFI sources:
#   $RTMIRROR_CACHE/lvm2-<arch>/<key>/lvm.static
# and its path is printed on the last line of stdout.
#
# usage: build-lvm2.sh <x86_64|s390x>
#   Needs root the first time (a trixie deb-src entry, pinned low, and libaio-dev), as
#   scripts/install-deps.sh adds suites. See docs/lvm.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"

arch=${1:?usage: build-lvm2.sh <x86_64|s390x>}
case $arch in x86_64|s390x) ;; *) die "unknown architecture '$arch' (x86_64 or s390x)" ;; esac
lvm_ver=2.03.31
deb_ver=2.03.31-2
base="$RTMIRROR_CACHE/lvm2"
mkdir -p "$base"

# Sources only (deb-src) of trixie, pinned low: nothing is ever installed from it.
add_trixie_src() {
	local src=/etc/apt/sources.list.d/rtmirror-trixie-src.sources pin=/etc/apt/preferences.d/rtmirror-trixie-src
	[ -e "$src" ] && return 0
	# Another entry (e.g. from scripts/install-deps.sh) may already give the source.
	apt-cache showsrc lvm2 2>/dev/null | grep -qx "Version: $deb_ver" && return 0
	[ "$(id -u)" = 0 ] || die "lvm2 $deb_ver source not available: run once as root (adds a trixie deb-src entry)"
	log "adding deb-src for trixie from $(debian_uri) (pinned low)"
	printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
		"$(debian_uri)" /usr/share/keyrings/debian-archive-keyring.gpg >"$src"
	printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$pin"
	apt-get update -q >&2
}

# The orig tarball (equal to upstream's v2_03_31), downloaded once.
orig="$base/src/lvm2_$lvm_ver.orig.tar.xz"
if [ ! -e "$orig" ]; then
	add_trixie_src
	mkdir -p "$base/src"
	(cd "$base/src" && apt-get source -q --download-only "lvm2=$deb_ver" >&2)
	[ -e "$orig" ] || die "apt-get source did not give $orig"
fi

if ! dpkg -s libaio-dev >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || die "libaio-dev is missing: apt-get install libaio-dev"
	log "installing libaio-dev"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libaio-dev >&2
fi

ffi=$("$here/scripts/build-ffi.sh" "$arch" | tail -n 1)
[ -e "$ffi/librtmirror_ffi.a" ] || die "no $ffi/librtmirror_ffi.a"

key=$( (cd "$here" && cat lvm2-patches/*.patch dm_rtmirror/ffi/include/rtmirror.h scripts/build-lvm2.sh;
	sha256sum "$ffi/librtmirror_ffi.a") | sha256sum | cut -c1-12)
out="$base/$arch-$key"
if [ -e "$out/lvm.static" ]; then
	log "cached: $out/lvm.static"
	echo "$out/lvm.static"
	exit 0
fi

exec 8>"$base/.lock-$arch"
flock 8
# Another pipeline may have built it while we waited.
if [ -e "$out/lvm.static" ]; then
	echo "$out/lvm.static"
	exit 0
fi
tree="$base/build-$arch-$key"
rm -rf "$tree"; mkdir -p "$tree"
tar -C "$tree" --strip-components=1 -xf "$orig"
log "applying $(ls "$here"/lvm2-patches/*.patch | wc -l) patches"
for p in "$here"/lvm2-patches/*.patch; do
	patch -d "$tree" -p1 -s --no-backup-if-mismatch <"$p" || die "patch $(basename "$p") does not apply"
done
cp "$ffi/rtmirror.h" "$tree/include/rtmirror.h"

conf=(--enable-static_link --disable-shared --disable-readline --without-blkid --disable-blkid_wiping
	--without-systemd --without-udev --disable-udev_sync --disable-udev_rules --without-libnvme
	--disable-nvme-wwid --disable-selinux --disable-dmeventd --disable-lvmpolld --disable-use-lvmpolld
	--disable-use-lvmlockd --disable-cmdlib --disable-fsadm --disable-lvmimportvdo
	--disable-blkdeactivate --disable-sd-notify --disable-systemd-journal --disable-app-machineid
	--disable-nls --with-thin=none --with-cache=none --with-vdo=none --with-integrity=none
	--with-default-run-dir=/run/lvm --with-default-locking-dir=/run/lock/lvm)
cflags="-O2 -g -I$tree/include"
ldflags=""
case $arch in
s390x)
	sysroot="$base/s390x-sysroot"
	if [ ! -e "$sysroot/.done" ]; then
		rm -rf "$sysroot"; mkdir -p "$sysroot/debs"
		(cd "$sysroot/debs" && apt-get download -q libaio-dev:s390x libaio1:s390x >&2)
		for d in "$sysroot"/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
		ln -sf libaio.so.1 "$sysroot/usr/lib/s390x-linux-gnu/libaio.so" 2>/dev/null || true
		touch "$sysroot/.done"
	fi
	mkdir -p "$tree/.pkgconfig-empty"
	cflags="$cflags -I$sysroot/usr/include"
	ldflags="-L$sysroot/usr/lib/s390x-linux-gnu"
	conf+=(--host=s390x-linux-gnu CC=s390x-linux-gnu-gcc AR=s390x-linux-gnu-ar RANLIB=s390x-linux-gnu-ranlib
		PKG_CONFIG_LIBDIR="$tree/.pkgconfig-empty"
		ac_cv_func_malloc_0_nonnull=yes ac_cv_func_realloc_0_nonnull=yes) ;;
esac
log "configuring lvm2 $lvm_ver for $arch"
(cd "$tree" && ./configure -q "${conf[@]}" CFLAGS="$cflags" LDFLAGS="$ldflags" \
	LIBS="$ffi/librtmirror_ffi.a" >"$tree/configure.log" 2>&1) || die "configure failed: $tree/configure.log"
log "building lvm.static (log: $tree/build.log)"
# The man page generator fails when cross compiling; only tools/lvm.static matters.
(cd "$tree" && make -j"${JOBS:-2}" -C tools lvm.static >"$tree/build.log" 2>&1 ||
	make -j"${JOBS:-2}" >>"$tree/build.log" 2>&1 || true)
[ -e "$tree/tools/lvm.static" ] || { tail -n 30 "$tree/build.log" >&2; die "build failed: $tree/build.log"; }
mkdir -p "$out.tmp"
cp "$tree/tools/lvm.static" "$out.tmp/lvm.static"
case $arch in x86_64) strip "$out.tmp/lvm.static" ;; s390x) s390x-linux-gnu-strip "$out.tmp/lvm.static" ;; esac
rm -rf "$out"; mv "$out.tmp" "$out"
flock -u 8
log "built $out/lvm.static"
echo "$out/lvm.static"
