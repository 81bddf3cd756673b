#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): one guest boot runs the same fio jobs on a single leg,
# dm-linear, rtmirror (2/1/0 log copies, and with io_timeout_ms), dm-mirror (disk and core log),
# dm-raid raid1 and md raid1, interleaved rounds; writes docs/benchmarks/<arch>-<commit>.md,
# .json and .png (commit: the one whose dm_rtmirror/ sources the kernel was built from).
#
# usage: bash scripts/bench.sh [--smoke] [--arch x86_64|s390x] [--kernel IMAGE] [--module KO]
#                              [--build] [--out DIR] [-- <more qemu-tests/bench.py options>]
#   --smoke    a few seconds per configuration: checks that every configuration ran and that
#              the legs of every mirror are byte-identical afterwards; last line
#              "N passed, N failed"; exit status non-zero on a failure; writes nothing to docs/
#   --kernel   guest kernel image (default: the newest kernel with the target built in from
#              scripts/build-kernel.sh <arch> builtin in the cache; --build builds it first)
#   --module   dm_rtmirror.ko to load, for a kernel without the target built in
# Work files (disk images, console log): $RTMIRROR_BENCH_WORK (default /tmp/rtmirror-bench-<arch>).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/lib.sh
arch=x86_64 smoke="" kernel="" module="" build=0 out="" extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=--smoke ;;
	--arch) arch=$2; shift ;;
	--arch=*) arch=${1#--arch=} ;;
	--kernel) kernel=$2; shift ;;
	--module) module=$2; shift ;;
	--build) build=1 ;;
	--out) out=$2; shift ;;
	--) shift; extra=("$@"); break ;;
	*) die "unknown option $1 (see the usage at the top of $0)" ;;
	esac
	shift
done
case $arch in
x86_64) image_rel=arch/x86/boot/bzImage ;;
s390x) image_rel=arch/s390/boot/bzImage ;;
*) die "unknown architecture $arch" ;;
esac

bash scripts/install-bench-deps.sh "$arch"

if [ -z "$kernel" ]; then
	if [ $build = 1 ]; then
		kdir=$(bash scripts/build-kernel.sh "$arch" builtin | tail -n 1)
		kernel=$kdir/image-$(checkout_key)
	else
		# newest builtin image: this checkout's copy, else any build's
		kernel=$(ls -t "$RTMIRROR_CACHE"/build/*-"$arch"-builtin-*/image-"$(checkout_key)" 2>/dev/null | head -n 1 || true)
		[ -n "$kernel" ] || kernel=$(ls -t "$RTMIRROR_CACHE"/build/*-"$arch"-builtin-*/"$image_rel" 2>/dev/null | head -n 1 || true)
		[ -n "$kernel" ] || die "no $arch kernel with the target built in: pass --kernel, or --build"
	fi
fi
[ -e "$kernel" ] || die "kernel $kernel missing"
work=${RTMIRROR_BENCH_WORK:-/tmp/rtmirror-bench-$arch}
mkdir -p "$work"
# A private copy: the shared build tree may be rebuilt while the guest runs.
cp "$kernel" "$work/kernel.new" && mv "$work/kernel.new" "$work/kernel"
log "kernel: $kernel"

# Which commit's dm_rtmirror/ the kernel was built from: the kernel build's source tree holds the
# target's files (drivers/md/rtmirror, synced from a checkout by scripts/build-kernel.sh); find
# the newest commit of this repository whose dm_rtmirror/*.rs are the same files.
kernel_commit() {
	local kdir src c f ok newer
	kdir=$(dirname "$kernel")
	case $kernel in */"$image_rel") kdir=${kernel%/"$image_rel"} ;; esac
	src=$(readlink -f "$kdir/source" 2>/dev/null || true)
	[ -n "$src" ] && [ -d "$src/drivers/md/rtmirror" ] || { echo "unknown"; return; }
	local tmp; tmp=$(mktemp)
	# the files the kernel compiles: dm_rtmirror/*.rs and dm_rtmirror/core/src/ (not the host
	# crates' tests, fuzzing or FFI)
	(cd "$src/drivers/md/rtmirror" && find . -name '*.rs' | sed 's|^\./||' | grep -E '^([^/]*|core/src/.*)\.rs$' | sort | while read -r f; do
		echo "$(git hash-object "$f") $f"; done) >"$tmp"
	newer=$(find "$src/drivers/md/rtmirror" -maxdepth 1 -name '*.rs' -newer "$kernel" | head -n 1)
	[ -n "$newer" ] || newer=$(find "$src/drivers/md/rtmirror/core/src" -name '*.rs' -newer "$kernel" 2>/dev/null | head -n 1)
	for c in $(git rev-list --max-count=400 --all); do
		if git ls-tree -r "$c" dm_rtmirror | awk '$4 ~ /^dm_rtmirror\/([^\/]*|core\/src\/.*)\.rs$/ { sub(/^dm_rtmirror\//, "", $4); print $3, $4 }' |
			sort -k2 | cmp -s - <(sort -k2 "$tmp"); then
			# name it after the commit that last changed dm_rtmirror/ (the code measured)
			echo "$(git log -1 --format=%h --abbrev=12 "$c" -- ':(glob)dm_rtmirror/*.rs' ':(glob)dm_rtmirror/core/src/**')${newer:+ (the source tree changed after the image was built: unsure)}"
			rm -f "$tmp"; return
		fi
	done
	rm -f "$tmp"
	echo "unknown"
}
kc=$(if [ -n "$module" ]; then echo "module $(basename "$module")"; else kernel_commit; fi)
head=$(git rev-parse --short=12 HEAD)
commit=${kc%% *}
case $commit in unknown|module) commit=$head ;; esac
log "rtmirror in the kernel: $kc; bench code: $head"

initrd=$work/bench.cpio.gz
bash scripts/build-bench-initramfs.sh "$arch" "$initrd" ${module:+"$module"}

py=python3
if ! $py -c 'import matplotlib' 2>/dev/null && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
	py=/usr/bin/python3
fi
[ -n "$out" ] || if [ -n "$smoke" ]; then out=$work/results; else out=$here/docs/benchmarks; fi
exec $py qemu-tests/bench.py --arch "$arch" --kernel "$work/kernel" --initrd "$initrd" \
	--workdir "$work" --out "$out" --commit "$commit" \
	--kernel-commit "rtmirror from $kc; bench scripts at $head" $smoke "${extra[@]}"
