#!/usr/bin/env bash
# Install everything the build and the tests need on a Debian 12 (bookworm) host, as root.
# Idempotent: a second run only checks. Extra suites are pinned low (priority 100) so that
# nothing already installed is upgraded from them.
set -euo pipefail

# debian_uri and the cache location; the log and die below are this script's own.
. "$(dirname "$0")/lib.sh"
log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || log "warning: tested on Debian bookworm, this is ${PRETTY_NAME:-unknown}"

add_suite() { # <name> <suite> <architectures>
	local name=$1 suite=$2 arches=$3 uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	local src=/etc/apt/sources.list.d/rtmirror-$name.sources pin=/etc/apt/preferences.d/rtmirror-$name
	uri=$(debian_uri)
	if [ ! -e "$src" ]; then
		log "adding suite $suite from $uri (pinned low)"
		printf 'Types: deb deb-src\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: %s\nSigned-By: %s\n' \
			"$uri" "$suite" "$arches" "$keyring" >"$src"
	fi
	printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$suite" >"$pin"
}

# Only the host architecture from the newer suites: s390x comes from bookworm itself.
host_arch=$(dpkg --print-architecture)
add_suite trixie-backports trixie-backports "$host_arch"
add_suite bookworm-backports bookworm-backports "$host_arch"
dpkg --print-foreign-architectures | grep -qx s390x || dpkg --add-architecture s390x

export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/rtmirror-updated
if [ ! -e "$stamp" ] || [ -n "$(find /etc/apt/sources.list.d -newer "$stamp" 2>/dev/null)" ]; then
	apt-get update -q
	touch "$stamp"
fi

pkgs=(build-essential bc flex bison libelf-dev libssl-dev cpio kmod xz-utils ccache python3
      rustc-web rust-web-src rust-web-clippy libclang-19-dev gcc-s390x-linux-gnu
      busybox-static dmsetup file e2fsprogs fdisk clang-19 lld-19 llvm-19 libc6-dev-s390x-cross libaio-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# QEMU from bookworm-backports: s390x needs it, and both must match qemu-utils' version.
# qemu-user runs the s390x build of the C interface test (scripts/check-ffi.sh).
if ! dpkg -s qemu-system-s390x qemu-system-x86 qemu-user >/dev/null 2>&1; then
	log "installing QEMU from bookworm-backports"
	apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-system-s390x qemu-user
fi

# Kernel source: 7.3 preferred, else the newest 7.x >= 7.2.
if [ -z "$(ls /usr/src/linux-source-7.*.tar.xz 2>/dev/null)" ]; then
	ksrc=""
	for v in 7.3 $(apt-cache pkgnames linux-source-7. 2>/dev/null | sed 's/linux-source-//' | sort -rV); do
		case $v in 7.[0-1]) continue ;; esac
		if apt-cache show "linux-source-$v" >/dev/null 2>&1; then ksrc=$v; break; fi
	done
	[ -n "$ksrc" ] || die "no linux-source-7.x (>= 7.2) package found in any configured suite"
	[ "$ksrc" = 7.3 ] || log "NOTE: linux-source-7.3 is gone, using linux-source-$ksrc"
	apt-get install -y -q --no-install-recommends "linux-source-$ksrc"
fi

# bindgen from crates.io, built with the machine's cargo.
BINDGEN_VERSION=0.72.1
if ! { [ -x /usr/local/bin/bindgen ] && /usr/local/bin/bindgen --version | grep -q "$BINDGEN_VERSION"; }; then
	log "building bindgen-cli $BINDGEN_VERSION"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --root /usr/local bindgen-cli --version "$BINDGEN_VERSION" --locked
fi

# s390x guest userland: static busybox and dmsetup with its libraries, unpacked from Debian's s390x packages.
s390root=${RTMIRROR_CACHE:-$HOME/.cache/dm-rtmirror}/s390x-userland
if [ ! -e "$s390root/.done" ]; then
	log "fetching s390x userland packages"
	rm -rf "$s390root"; mkdir -p "$s390root/debs"
	( cd "$s390root/debs" && apt-get download -q busybox-static:s390x dmsetup:s390x libdevmapper1.02.1:s390x \
		libc6:s390x libudev1:s390x libselinux1:s390x libpcre2-8-0:s390x libcap2:s390x libgcc-s1:s390x )
	for d in "$s390root"/debs/*.deb; do dpkg-deb -x "$d" "$s390root/root"; done
	touch "$s390root/.done"
fi
log "all prerequisites present"
