#!/bin/sh
# The paper's two-layer LVM layout (two_layer_lib.sh, docs/lvm-two-layer.md): one lower VG per
# storage subsystem (A: vda+vdb, B: vdc+vdd), an upper VG on their LVs, rtmirror LVs with leg i
# and log copy i on subsystem i. ext4 with files; deactivate upper then lower, activate lower
# then upper through the devices file, data kept. Faults through both layers: subsystem A hangs
# (leg 0 Degraded after the 2 s timeout, the file system goes on, lvs restricted to subsystem
# B answers while an unrestricted lvs is blocked), release (differential resync, legs
# identical), then subsystem B returns write errors (leg 1 Inactive), heal, lvchange --refresh
# rejoins it (full resync), legs identical, data kept across a last deactivate/activate.
. /scenarios/lib.sh
. /scenarios/two_layer_lib.sh
load_rtmirror
two_layer_conf
two_layer_create || exit 0
two_layer_check_placement lv stripe
two_layer_check_placement raw linear
lvm lvs -a -o vg_name,name,attr,size,devices,copy_percent upper lowerA lowerB 2>&1 | sed "s/WARNING:/warning:/g" |
	while IFS= read -r l; do note "lvs: $l"; done
wait_in_sync upper-lv 300
wait_in_sync upper-raw 120
LVDEV=$(devnum_of mapper/upper-lv)
RAWDEV=$(devnum_of mapper/upper-raw)
# Kernel lines of one mirror (its messages start with its major:minor).
klog_of() { dmesg | grep -F "$1: "; }
regions_copied_of() { klog_of "$1" | grep "resync done" | tail -n 1 | sed -n 's/.*done: \([0-9]*\) regions copied.*/\1/p'; }
legs_identical() { # <lv>: the two legs (sub-LV devices, through the lower LVs) hold the same bytes
	local a b
	a=$(dd if=/dev/mapper/upper-$1_rimage_0 bs=$MB iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	b=$(dd if=/dev/mapper/upper-$1_rimage_1 bs=$MB iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	result "legs_md5_$1_$2" "$a $b"
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "$2: legs of upper/$1 differ: $a $b"
}

# ext4: the empty file system build-initramfs.sh made on the host (no mkfs.ext4 in the guest).
[ -e /lib/rtm/ext4-96m.img.gz ] || { fail "no /lib/rtm/ext4-96m.img.gz in the guest image"; exit 0; }
# O_DIRECT, 1 MiB at a time: buffered, the block device's page cache writes back 4 KiB requests.
zcat /lib/rtm/ext4-96m.img.gz >/tmp/ext4.img || fail "unpack the ext4 image"
dd if=/tmp/ext4.img of=/dev/upper/lv bs=$MB oflag=direct 2>/dev/null || fail "write the ext4 image"
rm -f /tmp/ext4.img
mkdir -p /mnt
expect "mount" mount -t ext4 /dev/upper/lv /mnt
# Files: name md5, in /tmp/files.
: >/tmp/files
write_file() { # <name> <KiB>
	dd if=/dev/urandom of=/mnt/$1 bs=1024 count=$2 conv=fsync 2>/dev/null || { fail "write /mnt/$1"; return 1; }
	echo "$1 $(md5sum </mnt/$1 | cut -d' ' -f1)" >>/tmp/files
}
verify_files() { # <when>
	local n=0 name sum
	while read -r name sum; do
		[ "$(md5sum </mnt/$name 2>/dev/null | cut -d' ' -f1)" = "$sum" ] || fail "$1: /mnt/$name reads back wrong"
		n=$((n + 1))
	done </tmp/files
	result "files_verified" "$n ($1)"
}
for i in 0 1 2 3; do write_file base$i 1024; done
raw_sum=$(write_random /dev/upper/raw 0 4)
sync

# Deactivate upper then lower, activate lower then upper: with the devices file, as the
# cluster scripts do (docs/lvm-two-layer.md).
expect "umount" umount /mnt
lvm_ok "vgchange -an upper" vgchange --devicesfile $DEVFILE -an upper
lvm_ok "vgchange -an lower" vgchange --devicesfile $DEVFILE -an lowerA lowerB
left=$(dmsetup ls | grep -E '^(upper|lower)' | tr '\n' ' ')
[ -z "$left" ] || fail "devices left after deactivation: $left"
lvm_ok "vgchange -ay lower" vgchange --devicesfile $DEVFILE -ay lowerA lowerB
lvm_ok "vgchange -ay upper" vgchange --devicesfile $DEVFILE -ay upper
two_layer_check_placement lv stripe
expect "mount after reactivation" mount -t ext4 /dev/upper/lv /mnt
verify_files "after deactivate/activate"
[ "$(md5_of /dev/upper/raw 0 4)" = "$raw_sum" ] || fail "upper/raw changed across deactivate/activate"
case $(status_of upper-lv) in "2 AA "*" 2 AA healthy idle") ;; *) fail "status after activation: $(status_of upper-lv)" ;; esac
LVDEV=$(devnum_of mapper/upper-lv)
RAWDEV=$(devnum_of mapper/upper-raw)

# --- Subsystem A hangs (vda and vdb: both lower LVs of A, leg 0 and log copy 0 of each mirror).
dmesg -c >/dev/null
host hang 0,1
t_hang=$(uptime_cs)
# The file system goes on: this write waits at most for the timeout.
write_file hang0 512 &
wpid=$!
waited=$(wait_leg_state upper-lv 0 D 60) || exit 0
result degraded_after_cs "$waited"
wait $wpid || fail "write during the hang"
klog_of "$LVDEV" | grep -q "leg 0 did not answer within 2000 ms (.*): Degraded" ||
	fail "no kernel line for upper/lv's leg 0 Degraded: $(dmesg | tail -n 3 | tr '\n' '|')"
# An unrestricted lvs scans every device, vda among them: it blocks while A hangs. In the
# background; its end is recorded in /tmp/lvs_full.rc.
host now; t_full=${HOST_REPLY#ok }
( lvm lvs upper >/tmp/lvs_full.out 2>&1; echo $? >/tmp/lvs_full.rc ) &
# lvs of the upper VG restricted to subsystem B's LVs answers (A's PVs are missing to it).
host now; t0=${HOST_REPLY#ok }
lvm lvs --devices /dev/lowerB/stripe,/dev/lowerB/linear -o name,attr,copy_percent,lv_health_status \
	upper >/tmp/lvs_b.out 2>/tmp/lvs_b.err
rc=$?
host now; t1=${HOST_REPLY#ok }
result restricted_lvs_ms $((t1 - t0))
# (lvm's "WARNING:" would read as a kernel warning to the host: notes say "warning:".)
sed 's/WARNING:/warning:/g' /tmp/lvs_b.out | while IFS= read -r l; do note "restricted lvs: $l"; done
sed 's/WARNING:/warning:/g' /tmp/lvs_b.err | while IFS= read -r l; do note "restricted lvs (stderr): $l"; done
grep -q '^ *lv ' /tmp/lvs_b.out || fail "lvs --devices <subsystem B> upper did not report upper/lv (rc $rc)"
# The lower VG of the healthy subsystem, restricted to its disks, answers too.
host now; t0=${HOST_REPLY#ok }
out=$(lvm lvs --devices /dev/vdc,/dev/vdd --noheadings -o name lowerB 2>&1) || fail "lvs lowerB during the hang: $out"
host now; t1=${HOST_REPLY#ok }
result restricted_lvs_lowerB_ms $((t1 - t0))
echo "$out" | grep -q stripe || fail "lvs --devices /dev/vdc,/dev/vdd lowerB: $out"
# More I/O while A hangs: files, and the raw mirror (its leg 0 is Degraded by this write).
write_file hang1 2048
write_file hang2 256
raw_sum=$(write_random /dev/upper/raw 4 2)
wait_leg_state upper-raw 0 D 60 >/dev/null
st=$(status_of upper-lv)
result status_hung "$st"
case $st in "2 DA "*" 2 FA degraded "*) ;; *) fail "upper/lv while A hangs: '$st'" ;; esac
# The unrestricted lvs is still blocked (checked 10 s after it started, at least).
host now
while [ $(( ${HOST_REPLY#ok } - t_full )) -lt 10000 ]; do sleep 1; host now; done
if [ -e /tmp/lvs_full.rc ]; then
	fail "unrestricted lvs returned ($(cat /tmp/lvs_full.rc)) while vda/vdb hang: $(tr '\n' '|' </tmp/lvs_full.out)"
else
	host now
	result unrestricted_lvs_blocked_s $(( (${HOST_REPLY#ok } - t_full) / 1000 ))
fi
dirty_files=$(wc -l </tmp/files)

# --- Release: the held I/O completes, leg 0 answers again, the regions written meanwhile are
# copied (differential resync).
host release 0,1
wait_leg_state upper-lv 0 A 120 >/dev/null
wait_in_sync upper-lv 300
wait_in_sync upper-raw 120
klog_of "$LVDEV" | grep -q "leg 0 answers again: resyncing" || fail "no kernel line for leg 0 answering again"
copied=$(regions_copied_of "$LVDEV")
total=$(status_of upper-lv | cut -d' ' -f3); total=${total#*/}
result regions_copied "$copied"
result regions_total "$total"
[ -n "$copied" ] && [ "$copied" -gt 0 ] && [ "$copied" -lt "$total" ] ||
	fail "resync after the hang copied '$copied' of $total regions: not a differential resync"
# The unrestricted lvs ends once the disks answer.
i=0
while [ ! -e /tmp/lvs_full.rc ] && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
if [ -e /tmp/lvs_full.rc ]; then
	host now
	result unrestricted_lvs_total_ms $(( ${HOST_REPLY#ok } - t_full ))
	[ "$(cat /tmp/lvs_full.rc)" = 0 ] || fail "unrestricted lvs after the release: $(tr '\n' '|' </tmp/lvs_full.out)"
else
	fail "unrestricted lvs did not end within 60 s of the release"
fi
# Log copy 0 timed out during the hang (F): lvchange --refresh rejoins it.
result status_released "$(status_of upper-lv)"
out=$(lvm lvchange --devicesfile $DEVFILE --refresh upper/lv upper/raw 2>&1) || fail "lvchange --refresh after the release: $out"
note "refresh: $(echo "$out" | sed 's/WARNING:/warning:/g' | tr '\n' '|')"
wait_in_sync upper-lv 300
case $(status_of upper-lv) in "2 AA "*" 2 AA healthy idle") ;; *) fail "upper/lv after release and refresh: '$(status_of upper-lv)'" ;; esac
case $(status_of upper-raw) in "2 AA "*" 2 AA healthy idle") ;; *) fail "upper/raw after release and refresh: '$(status_of upper-raw)'" ;; esac
sync
legs_identical lv after_hang
legs_identical raw after_hang
verify_files "after the hang"
[ "$(md5_of /dev/upper/raw 4 2)" = "$raw_sum" ] || fail "upper/raw lost the write made during the hang"

# --- Subsystem B returns write errors: leg 1 Inactive at once, the file system goes on.
dmesg -c >/dev/null
host error 2,3 write
write_file err0 1024
wait_leg_state upper-lv 1 I 60 >/dev/null || exit 0
write_file err1 1024
st=$(status_of upper-lv)
result status_error "$st"
case $st in "2 AI "*" degraded "*) ;; *) fail "upper/lv with B failing writes: '$st'" ;; esac
klog_of "$LVDEV" | grep -q "leg 1 failed with error" || fail "no kernel line for leg 1 failed"
sleep 3
case $(status_of upper-lv) in "2 AI "*) ;; *) fail "an Inactive leg came back by itself: '$(status_of upper-lv)'" ;; esac
host heal 2,3
out=$(lvm lvchange --devicesfile $DEVFILE --refresh upper/lv 2>&1) || fail "lvchange --refresh after heal: $out"
case $out in *"Rejoining leg 1 (I)"*) note "ok: $(echo "$out" | sed 's/WARNING:/warning:/g')" ;; *) fail "refresh did not rejoin leg 1: $out" ;; esac
wait_in_sync upper-lv 300
copied=$(regions_copied_of "$LVDEV")
result regions_copied_error "$copied"
[ "$copied" = "$total" ] || fail "rejoin after an error copied '$copied' regions, not all $total"
case $(status_of upper-lv) in "2 AA "*" 2 AA healthy idle") ;; *) fail "upper/lv after heal and refresh: '$(status_of upper-lv)'" ;; esac
sync
legs_identical lv after_error
verify_files "after the error"

# --- Last cycle: deactivate upper then lower, activate lower then upper, data kept.
expect "umount (end)" umount /mnt
lvm_ok "vgchange -an upper (end)" vgchange --devicesfile $DEVFILE -an upper
lvm_ok "vgchange -an lower (end)" vgchange --devicesfile $DEVFILE -an lowerA lowerB
lvm_ok "vgchange -ay lower (end)" vgchange --devicesfile $DEVFILE -ay lowerA lowerB
lvm_ok "vgchange -ay upper (end)" vgchange --devicesfile $DEVFILE -ay upper
expect "mount (end)" mount -t ext4 /dev/upper/lv /mnt
verify_files "at the end"
[ "$(md5_of /dev/upper/raw 4 2)" = "$raw_sum" ] || fail "upper/raw changed at the end"
case $(status_of upper-lv) in "2 AA "*" 2 AA healthy idle") ;; *) fail "status at the end: $(status_of upper-lv)" ;; esac
expect "umount (last)" umount /mnt
if command -v e2fsck >/dev/null; then
	out=$(e2fsck -fn /dev/upper/lv 2>&1) || fail "e2fsck -fn after the faults: $(echo "$out" | tail -n 5 | tr '\n' '|')"
	result e2fsck "$(echo "$out" | tail -n 1)"
else
	note "e2fsck not in this guest image (s390x): the file system is not checked, only its files"
fi
lvm_ok "vgchange -an upper (last)" vgchange --devicesfile $DEVFILE -an upper
lvm_ok "vgchange -an lower (last)" vgchange --devicesfile $DEVFILE -an lowerA lowerB
kernel_log_clean
