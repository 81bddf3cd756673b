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
# The packages and their whole dependency closure (Depends and Pre-Depends only), for s390x.
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances fio:s390x mdadm:s390x e2fsprogs:s390x dmsetup:s390x \
	busybox-static:s390x libc6:s390x 2>/dev/null |
	awk '/^[a-z0-9]/ { sub(/:s390x$/, ""); print } /Depends: [a-z0-9]/ { p = $2; sub(/:s390x$/, "", p); print p }' |
	grep -v '[<>]' | sort -u)
# Virtual packages and ones with no s390x build (arch: all) are skipped by apt-get download.
(cd "$root/debs" && for p in $pkgs; do apt-get download -q "$p:s390x" >/dev/null 2>&1 || true; done)
for d in "$root"/debs/*.deb; do dpkg-deb -x "$d" "$root/root"; done
[ -e "$root/root/usr/bin/fio" ] || die "fio:s390x not unpacked"
touch "$root/.done"
