#!/usr/bin/env bash
# Install what the benchmark (scripts/bench.sh) needs beyond scripts/install-deps.sh, as root.
# Idempotent. usage: install-bench-deps.sh [x86_64|s390x]
#   host: fio, mdadm, e2fsprogs (their x86_64 binaries go into the guest), python3-matplotlib
#   s390x: fio, mdadm, e2fsprogs, busybox, dmsetup for s390x and every library they need,
#          unpacked from Debian's s390x packages (apt-get download) into
#          $RTMIRROR_CACHE/s390x-bench-userland/root
set -euo pipefail
arch=${1:-x86_64}
log() { printf 'install-bench-deps: %s\n' "$*" >&2; }
die() { printf 'install-bench-deps: error: %s\n' "$*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in fio mdadm e2fsprogs python3-matplotlib binutils gcc; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
	log "installing: ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || {
		apt-get update -q >&2; apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
fi
[ "$arch" = s390x ] || exit 0

root=${RTMIRROR_CACHE:-$HOME/.cache/dm-rtmirror}/s390x-bench-userland
[ -e "$root/.done" ] && exit 0
dpkg --print-foreign-architectures | grep -qx s390x || die "s390x is not a dpkg foreign architecture: run scripts/install-deps.sh"
dpkg -s gcc-s390x-linux-gnu >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends gcc-s390x-linux-gnu >&2
log "fetching the s390x bench userland"
rm -rf "$root"; mkdir -p "$root/debs"
# The s390x builds of the packages whose x86_64 builds provide the binaries and every library
# they load here (dpkg -S on the host's copies): the same closure without guessing.
pkgs="fio mdadm e2fsprogs dmsetup busybox-static libc6 libatomic1"   # libatomic: s390x only
for lib in $(for b in /usr/bin/fio /sbin/mdadm /sbin/mke2fs /sbin/dmsetup; do ldd "$b"; done |
	awk '/=>/ { print $3 }' | sort -u); do
	real=$(readlink -f "$lib")
	pkg=$( { dpkg -S "$lib" || dpkg -S "$real" || dpkg -S "/usr$lib" || dpkg -S "${real#/usr}"; } 2>/dev/null |
		head -n 1 | cut -d: -f1)
	[ -n "$pkg" ] || die "no package owns $lib"
	pkgs="$pkgs $pkg"
done
pkgs=$(echo $pkgs | tr ' ' '\n' | sort -u)
(cd "$root/debs" && for p in $pkgs; do apt-get download -q "$p:s390x" >/dev/null 2>&1 || log "warning: no $p:s390x"; done)
for d in "$root"/debs/*.deb; do dpkg-deb -x "$d" "$root/root"; done
[ -e "$root/root/usr/bin/fio" ] || die "fio:s390x not unpacked"
touch "$root/.done"
