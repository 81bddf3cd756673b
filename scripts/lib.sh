# Shared shell helpers for scripts/*.sh (sourced, not executed).
RTMIRROR_CACHE=${RTMIRROR_CACHE:-$HOME/.cache/dm-rtmirror}
export RTMIRROR_CACHE CCACHE_DIR=${CCACHE_DIR:-$RTMIRROR_CACHE/ccache}
log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# Several checkouts share one kernel build; the module and guest image built from a checkout
# live under a name keyed by its path, so they do not overwrite each other.
checkout_key() { printf '%s' "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" | sha256sum | cut -c1-8; }

# Extract Debian's linux-source-7.x (7.3 preferred) into the cache; print the tree's path.
kernel_source_tree() {
	local tarball ver tree
	tarball=$(ls /usr/src/linux-source-7.3.tar.xz 2>/dev/null || ls /usr/src/linux-source-7.*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$tarball" ] || die "no /usr/src/linux-source-7.x.tar.xz: run scripts/install-deps.sh"
	ver=$(basename "$tarball" .tar.xz)
	tree="$RTMIRROR_CACHE/$ver"
	if [ ! -e "$tree/.extracted" ]; then
		log "extracting $tarball"
		rm -rf "$tree"; mkdir -p "$RTMIRROR_CACHE"
		tar -C "$RTMIRROR_CACHE" -xf "$tarball"
		touch "$tree/.extracted"
	fi
	echo "$tree"
}

# Copy $1 to $2 only when the content differs, so make sees no change otherwise.
sync_file() { cmp -s "$1" "$2" || { mkdir -p "$(dirname "$2")"; cp "$1" "$2"; }; }

# Add line $2 to file $1 after the first line matching regex $3 (or at the end), once.
add_line_once() {
	local file=$1 line=$2 after=${3:-}
	grep -qxF -- "$line" "$file" && return 0
	if [ -n "$after" ] && grep -q -- "$after" "$file"; then
		awk -v l="$line" -v a="$after" '{ print } !done && $0 ~ a { print l; done = 1 }' "$file" >"$file.tmp"
		mv "$file.tmp" "$file"
	else
		echo "$line" >>"$file"
	fi
}

# Apply this repo's rust/ abstractions and the in-tree rtmirror wiring to a kernel tree.
apply_rust_abstractions() {
	local tree=$1 f rel
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	while IFS= read -r f; do
		rel=${f#"$repo"/}
		sync_file "$f" "$tree/$rel"
	done < <(find "$repo/rust" -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' \))
	if ! grep -q '^pub mod device_mapper;$' "$tree/rust/kernel/lib.rs"; then
		sed -i 's/^pub mod device;$/pub mod device;\n#[cfg(CONFIG_BLK_DEV_DM)]\npub mod device_mapper;/' "$tree/rust/kernel/lib.rs"
	fi
	add_line_once "$tree/rust/bindings/bindings_helper.h" '#include <linux/device-mapper.h>' '^#include <linux/blkdev.h>$'
	add_line_once "$tree/rust/bindings/bindings_helper.h" '#include <linux/bio.h>' '^#include <linux/device-mapper.h>$'
	add_line_once "$tree/rust/bindings/bindings_helper.h" 'const gfp_t RUST_CONST_HELPER_GFP_NOIO = GFP_NOIO;' '^const gfp_t RUST_CONST_HELPER_GFP_KERNEL_ACCOUNT'
	add_line_once "$tree/rust/helpers/helpers.c" '#include "bio.c"' '^#include "blk.c"$'
	add_line_once "$tree/rust/helpers/helpers.c" '#include "list_del.c"' '^#include "list.c"$'
	add_line_once "$tree/rust/kernel/block.rs" 'pub mod bio;' '^pub mod mq;$'
	add_line_once "$tree/rust/kernel/alloc.rs" '    pub const GFP_NOIO: Flags = Flags(bindings::GFP_NOIO);' '^    pub const GFP_NOWAIT: Flags'
	add_line_once "$tree/rust/kernel/alloc.rs" '    /// Like [`GFP_KERNEL`], but reclaim does not start I/O (for the block I/O path).' '^    pub const GFP_NOWAIT: Flags'
	add_line_once "$tree/rust/kernel/lib.rs" 'pub mod random;' '^pub mod pwm;$'
	add_line_once "$tree/rust/bindings/bindings_helper.h" '#include <linux/random.h>' '^#include <linux/bio.h>$'
	add_line_once "$tree/rust/kernel/lib.rs" 'pub mod crc32;' '^pub mod cred;$'
	add_line_once "$tree/rust/bindings/bindings_helper.h" '#include <linux/crc32.h>' '^#include <linux/random.h>$'
	# In-tree build of the target (CONFIG_DM_RTMIRROR), for root-on-rtmirror kernels.
	local dst="$tree/drivers/md/rtmirror"
	while IFS= read -r f; do
		rel=${f#"$repo"/dm_rtmirror/}
		sync_file "$f" "$dst/$rel"
	done < <(find "$repo/dm_rtmirror" -path "$repo/dm_rtmirror/core/target" -prune -o -type f -name '*.rs' -print)
	sync_file "$repo/dm_rtmirror/Kconfig" "$dst/Kconfig"
	printf 'obj-$(CONFIG_DM_RTMIRROR) += dm_rtmirror.o\n' >"$dst/Makefile.new"
	sync_file "$dst/Makefile.new" "$dst/Makefile"; rm -f "$dst/Makefile.new"
	if ! grep -q 'drivers/md/rtmirror/Kconfig' "$tree/drivers/md/Kconfig"; then
		sed -i 's|^endif # MD$|source "drivers/md/rtmirror/Kconfig"\n\nendif # MD|' "$tree/drivers/md/Kconfig"
	fi
	add_line_once "$tree/drivers/md/Makefile" 'obj-$(CONFIG_DM_RTMIRROR)	+= rtmirror/'
	# dm-mod.create= accepts only the targets on dm-init's list (those that need no userspace
	# to start): rtmirror is one of them (docs/boot.md).
	add_line_once "$tree/drivers/md/dm-init.c" '	"rtmirror",' '^	"linear",$'
}

# The Debian mirror URI comes from this machine's own apt configuration (install-deps.sh, build-lvm2.sh).
debian_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
		if [ -n "$uri" ] && grep -q '^Suites:.*bookworm' "$f"; then
			echo "$uri"; return
		fi
	done
	uri=$(awk '$1 == "deb" && $0 !~ /security/ && $0 ~ /bookworm/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
		/etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] && { echo "$uri"; return; }
	die "no Debian bookworm source found in /etc/apt; cannot derive the mirror URI"
}
