#!/bin/sh
# Benchmark guest (run by qemu-tests/bench.py, see docs/benchmarks.md). The same fio jobs on
# each configuration (a single leg, dm-linear, rtmirror, dm-mirror, dm-raid raid1, md raid1),
# all built in turn on the same four virtio disks: legs /dev/vda and /dev/vdb, log or metadata
# devices /dev/vdc and /dev/vdd. Rounds are interleaved: every round runs every configuration,
# each round in another (rotated) order.
#
# Parameters (kernel command line): bench.phases=main,flush,resync,logio  bench.configs=a,b,...
# bench.jobs=a,b,...  bench.rounds=N  bench.runtime=<s per job>  bench.region=<sectors>
# bench.resync_regions=<sectors>,...  bench.resync_dmraid=<sectors>,...  bench.logio_configs=a,b
#
# Reports (one line each; the host decodes and decides):
#   @@RESULT fio.<config>.<job>.<round> <base64 line>   fio's JSON output, gzip, base64 (many lines)
#   @@RESULT st.<config>.<job>.<round> <disk>:<reads>,<read sectors>,<writes>,<write sectors>,<flushes> ...
#            requests completed by each disk during the job (/sys/block/*/stat), disks vda vdb
#            vdc vdd and "top", the device the job ran on
#   @@RESULT ran.<config>.<round> ok|<error>
#   @@RESULT resync.<target>.<region sectors> <ms>      host clock, resume to in sync
#   @@RESULT logio.<config>.<workload> <stat deltas as st.>
#   @@RESULT flush.<config>.fsync|dsync <stat deltas as st.>   200 writes + fsync / O_DSYNC writes
# Between configurations the host compares (or, after a single-leg configuration, re-syncs) the
# legs' image files: "@@HOST compare <tag>" / "@@HOST syncleg <tag>".
. /scenarios/lib.sh
dmesg -n 1          # nothing from the kernel in the middle of a report line; dmesg checked at the end
load_rtmirror
# fio with System V shared memory and timerfd, which the guest kernel lacks (fioshim.c)
fio() { LD_PRELOAD=/lib/libfioshim.so /bin/fio "$@"; }
host_now() { host now; NOW=${HOST_REPLY#ok }; }   # sets NOW: the host's clock in ms
arg() { sed -n "s/.*bench\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
PHASES=$(arg phases | tr , ' '); PHASES=${PHASES:-main}
CONFIGS=$(arg configs | tr , ' ')
JOBS=$(arg jobs | tr , ' ')
ROUNDS=$(arg rounds); ROUNDS=${ROUNDS:-3}
RUNTIME=$(arg runtime); RUNTIME=${RUNTIME:-5}
REGION=$(arg region); REGION=${REGION:-8192}
LEG_SECTORS=$(sectors_of vda)
LOG_MIB=$(($(blockdev --getsize64 /dev/vdc) / MB))
MNT=/mnt/bench
mkdir -p $MNT
result leg_sectors $LEG_SECTORS
result kernel "$(uname -r) $(uname -v | tr ' ' '_')"
result fio_version "$(fio --version)"
result clocksource "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
# the guest's clock against the host's, over the whole run (fio's latencies use the guest's)
host_now; CLOCK_T0_HOST=$NOW; CLOCK_T0_GUEST=$(uptime_cs)

wipe_logs() { # log/metadata devices blank before every configuration
	local d
	for d in vdc vdd; do
		dd if=/dev/zero of=/dev/$d bs=$MB count=$LOG_MIB oflag=direct 2>/dev/null || fail "wipe /dev/$d"
	done
}

# Create configuration $1 on the disks; sets DEV (what the jobs use) and TOP (its /sys/block
# name). Every mirror starts in sync: the legs are identical (the host checked or made them so)
# and blank logs, so the targets are told so (nosync, --assume-clean) instead of copying.
# $2: extra rtmirror options (words) for the resync phase, which wants the copy.
create_config() {
	local cfg=$1 S=$LEG_SECTORS R=$REGION
	wipe_logs
	DEV=/dev/mapper/bench
	case $cfg in
	single) DEV=/dev/vda ;;
	linear) dmsetup create bench --table "0 $S linear /dev/vda 0" ;;
	rtm2) dmsetup create bench --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 3 region_size $R nosync" ;;
	rtm1) dmsetup create bench --table "0 $S rtmirror 2 /dev/vda /dev/vdb 1 /dev/vdc 3 region_size $R nosync" ;;
	rtm0) dmsetup create bench --table "0 $S rtmirror 2 /dev/vda /dev/vdb 0 3 region_size $R nosync" ;;
	rtm2t) dmsetup create bench --table "0 $S rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 5 region_size $R io_timeout_ms 15000 nosync" ;;
	dmm_disk) dmsetup create bench --table "0 $S mirror disk 3 /dev/vdc $R nosync 2 /dev/vda 0 /dev/vdb 0 1 handle_errors" ;;
	dmm_core) dmsetup create bench --table "0 $S mirror core 2 $R nosync 2 /dev/vda 0 /dev/vdb 0 1 handle_errors" ;;
	dmraid) dmsetup create bench --table "0 $S raid raid1 4 0 region_size $R nosync 2 /dev/vdc /dev/vda /dev/vdd /dev/vdb" ;;
	md) DEV=/dev/md0
		mdadm --create /dev/md0 --level=1 --raid-devices=2 --metadata=1.2 --bitmap=internal \
			--bitmap-chunk=$((R / 2)) --assume-clean --run --force --quiet /dev/vda /dev/vdb </dev/null ;;
	*) fail "unknown configuration $cfg"; return 1 ;;
	esac || { fail "create $cfg: $(dmesg | tail -n 3 | tr '\n' '|')"; return 1; }
	case $cfg in
	single) TOP=vda ;;
	md) TOP=md0 ;;
	*) TOP=dm-$(dmsetup info -c --noheadings -o minor bench | tr -d ' ') ;;
	esac
	wait_synced $cfg 600
}

# Wait until configuration $1 is in sync and idle (at most $2 seconds).
wait_synced() {
	local cfg=$1 i=0 st ratio
	case $cfg in single|linear) return 0 ;; esac
	while [ $i -lt $(($2 * 10)) ]; do
		if [ $cfg = md ]; then
			[ "$(cat /sys/block/md0/md/sync_action)" = idle ] && return 0
		else
			st=$(dmsetup status bench)
			ratio=$(echo "$st" | tr ' ' '\n' | grep -m 1 -E '^[0-9]+/[0-9]+$')
			if [ -n "$ratio" ] && [ "${ratio%/*}" = "${ratio#*/}" ]; then
				case $cfg in
				rtm*|dmraid) case " $st " in *" idle "*) return 0 ;; esac ;;
				*) return 0 ;;
				esac
			fi
		fi
		usleep 100000; i=$((i + 1))
	done
	fail "$cfg not in sync after $2 s: $(dmsetup status bench 2>/dev/null; cat /proc/mdstat 2>/dev/null)"
	return 1
}

# Remove configuration $1; leave the legs identical for the next one and have the host check
# (mirrors) or make (single leg, dm-linear) them so. $2: tag for the host's record.
remove_config() {
	local cfg=$1 tag=$2 off
	case $cfg in
	single) ;;
	md) off=$(cat /sys/block/md0/md/dev-vda/offset 2>/dev/null)
		mdadm --stop /dev/md0 --quiet || fail "mdadm --stop"
		# md's superblock and bitmap (before the data offset) differ between the legs: zero them.
		[ -n "$off" ] || { fail "md data offset unknown"; off=65536; }
		for d in vda vdb; do
			dd if=/dev/zero of=/dev/$d bs=512 count=$off oflag=direct 2>/dev/null || fail "zero md head of $d"
		done ;;
	*) dmsetup remove bench || fail "remove $cfg" ;;
	esac
	blockdev --flushbufs /dev/vda; blockdev --flushbufs /dev/vdb
	case $cfg in
	single|linear) host syncleg "$tag" ;;
	*) host compare "$tag" ;;
	esac
	blockdev --flushbufs /dev/vdb
	case $HOST_REPLY in ok*) ;; *) fail "host $tag: $HOST_REPLY" ;; esac
}

# Requests completed per disk: "<disk> <reads> <read sectors> <writes> <write sectors> <flushes>"
snap() {
	local d
	for d in vda vdb vdc vdd $TOP; do
		set -- $(cat /sys/block/$d/stat)
		echo "$d $1 $3 $5 $7 ${16:-0}"
	done
}
# Deltas between two snap outputs, as "vda:r,rs,w,ws,f ... top:..." (the last line is TOP).
delta() { # <before file> <after file>
	awk 'NR == FNR { b[FNR] = $0; next }
		{ split(b[FNR], o); name = (FNR == 5) ? "top" : $1
		  printf "%s%s:%d,%d,%d,%d,%d", (FNR > 1 ? " " : ""), name, $2 - o[2], $3 - o[3], $4 - o[4], $5 - o[5], $6 - o[6] }
		END { print "" }' "$1" "$2"
}

mkfs_mount() {
	mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 $DEV || { fail "mkfs $DEV"; return 1; }
	mount -t ext4 -o noatime $DEV $MNT || { fail "mount $DEV"; return 1; }
}

# fio job $1 on $DEV; writes /tmp/fio.json.
run_job() {
	local job=$1 rt=$2
	# --invalidate=0: the kernel has no fadvise (CONFIG_ADVISE_SYSCALLS); direct I/O needs none
	local raw="--ioengine=libaio --direct=1 --invalidate=0 --filename=$DEV --time_based --runtime=$rt --randseed=42"
	case $job in
	seqwrite) set -- $raw --rw=write --bs=1M --iodepth=4 ;;
	randwrite1) set -- $raw --rw=randwrite --bs=4k --iodepth=1 ;;
	randwrite16) set -- $raw --rw=randwrite --bs=4k --iodepth=16 ;;
	randread1) set -- $raw --rw=randread --bs=4k --iodepth=1 ;;
	randread16) set -- $raw --rw=randread --bs=4k --iodepth=16 ;;
	randrw) set -- $raw --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 ;;
	fsync) # small files on ext4: create, write 16 KiB, fsync, next file
		set -- --ioengine=sync --invalidate=0 --directory=$MNT --rw=write --bs=16k --filesize=16k --nrfiles=20000 \
			--openfiles=1 --file_service_type=sequential --create_on_open=1 --fsync=1 --runtime=$rt ;;
	*) fail "unknown job $job"; return 1 ;;
	esac
	fio --name=$job --output-format=json --output=/tmp/fio.json "$@" >/tmp/fio.err 2>&1
}

# Run job $2 on configuration $1 (created), round $3; report fio's JSON and the disk counters.
measure() {
	local cfg=$1 job=$2 round=$3 key=$1.$2.$3 rc
	if [ $job = fsync ]; then mkfs_mount || return 1; fi
	sync; snap >/tmp/before
	run_job $job $RUNTIME; rc=$?
	if [ $rc != 0 ]; then
		fail "fio $key: exit $rc: $(tail -n 3 /tmp/fio.err | tr '\n' '|') $(grep -v '^ *[{}"]' /tmp/fio.json | head -n 3 | tr '\n' '|')"
		[ $job = fsync ] && umount $MNT
		return 1
	fi
	snap >/tmp/after
	[ $job = fsync ] && { umount $MNT || fail "umount $MNT"; }
	result st.$key "$(delta /tmp/before /tmp/after)"
	gzip -9c /tmp/fio.json | base64 -w 76 | while read -r l; do echo "@@RESULT fio.$key $l"; done
}

phase_main() {
	local n=0 c round=1 k order i cfg job ok
	for c in $CONFIGS; do n=$((n + 1)); done
	while [ $round -le $ROUNDS ]; do
		# rotate the order: round r starts (r-1)*n/rounds configurations further on
		k=$(( (round - 1) * n / ROUNDS ))
		order=$(echo $CONFIGS | tr ' ' '\n' | awk -v k=$k -v n=$n '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
		for cfg in $order; do
			note "round $round: $cfg"
			ok=ok
			create_config $cfg || { result ran.$cfg.$round "create failed"; dmsetup remove bench 2>/dev/null; continue; }
			for job in $JOBS; do
				measure $cfg $job $round || ok="job $job failed"
			done
			remove_config $cfg $cfg.$round
			result ran.$cfg.$round "$ok"
		done
		round=$((round + 1))
	done
}

# Full resync of the legs against the region size: a new rtmirror (blank logs, no nosync) copies
# every region; time from creation to in sync, on the host's clock.
phase_resync() {
	local R t0 t1
	for R in $(arg resync_regions | tr , ' '); do
		wipe_logs
		host_now; t0=$NOW
		dmsetup create bench --table "0 $LEG_SECTORS rtmirror 2 /dev/vda /dev/vdb 2 /dev/vdc /dev/vdd 2 region_size $R" \
			|| { fail "resync: create with region $R"; continue; }
		wait_in_sync bench 1800
		host_now; t1=$NOW
		result resync.rtm2.$R $((t1 - t0))
		dmsetup remove bench || fail "resync: remove"
		blockdev --flushbufs /dev/vda; blockdev --flushbufs /dev/vdb
		host compare resync.rtm2.$R
	done
	for R in $(arg resync_dmraid | tr , ' '); do
		wipe_logs
		host_now; t0=$NOW
		dmsetup create bench --table "0 $LEG_SECTORS raid raid1 3 0 region_size $R 2 /dev/vdc /dev/vda /dev/vdd /dev/vdb" \
			|| { fail "resync: create dm-raid with region $R"; continue; }
		wait_synced dmraid 1800
		host_now; t1=$NOW
		result resync.dmraid.$R $((t1 - t0))
		dmsetup remove bench || fail "resync: remove dm-raid"
		blockdev --flushbufs /dev/vda; blockdev --flushbufs /dev/vdb
		host compare resync.dmraid.$R
	done
}

# Log I/O per leg I/O (the paper's figure): requests on the log devices against requests on a
# leg, for raw writes to the device, synchronous writes on ext4 (O_SYNC) and buffered writes
# on ext4 written back by a final fsync.
phase_logio() {
	local cfg w
	for cfg in $(arg logio_configs | tr , ' '); do
		for w in raw ext4sync ext4async; do
			create_config $cfg || continue
			case $w in ext4*) mkfs_mount || continue ;; esac
			sync; snap >/tmp/before
			case $w in
			raw) fio --name=raw --filename=$DEV --ioengine=libaio --direct=1 --invalidate=0 --rw=write --bs=1M --iodepth=1 \
				--size=256M --output=/tmp/fio.json --output-format=json >/tmp/fio.err 2>&1 ;;
			ext4sync) fio --name=sync --directory=$MNT --ioengine=sync --invalidate=0 --sync=1 --rw=write --bs=64k \
				--nrfiles=8 --filesize=4M --output=/tmp/fio.json --output-format=json >/tmp/fio.err 2>&1 ;;
			ext4async) fio --name=async --directory=$MNT --ioengine=sync --invalidate=0 --rw=write --bs=64k \
				--nrfiles=8 --filesize=16M --end_fsync=1 --output=/tmp/fio.json --output-format=json >/tmp/fio.err 2>&1 ;;
			esac || fail "logio $cfg $w: $(tail -n 3 /tmp/fio.err | tr '\n' '|')"
			snap >/tmp/after
			result logio.$cfg.$w "$(delta /tmp/before /tmp/after)"
			case $w in ext4*) umount $MNT || fail "umount" ;; esac
			remove_config $cfg logio.$cfg.$w
		done
	done
}

# What a flush costs (phase flush): on each configuration, 200 O_DIRECT 4 KiB writes each
# followed by fsync() of the device (an empty REQ_PREFLUSH bio), and 200 O_DIRECT|O_DSYNC 4 KiB
# writes (REQ_FUA writes); the requests each disk completed, per operation.
phase_flush() {
	local cfg w
	for cfg in $CONFIGS; do
		create_config $cfg || { result flush.$cfg.fsync "create failed"; continue; }
		for w in fsync dsync; do
			sync; snap >/tmp/before
			case $w in
			fsync) fio --name=fsync --filename=$DEV --ioengine=sync --direct=1 --invalidate=0 --rw=write \
				--bs=4k --size=800k --fsync=1 --output=/tmp/fio.json --output-format=json >/tmp/fio.err 2>&1 ;;
			dsync) fio --name=dsync --filename=$DEV --ioengine=sync --direct=1 --invalidate=0 --rw=write \
				--bs=4k --size=800k --sync=dsync --output=/tmp/fio.json --output-format=json >/tmp/fio.err 2>&1 ;;
			esac || fail "flush $cfg $w: $(tail -n 3 /tmp/fio.err | tr '\n' '|')"
			snap >/tmp/after
			result flush.$cfg.$w "$(delta /tmp/before /tmp/after)"
		done
		remove_config $cfg flush.$cfg
	done
}

for p in $PHASES; do
	note "phase $p"
	phase_$p
done
host_now
result clock_check "host_ms=$((NOW - CLOCK_T0_HOST)) guest_ms=$(( ($(uptime_cs) - CLOCK_T0_GUEST) * 10 ))"
dmesg -n 7
kernel_log_clean
result bench_done 1
