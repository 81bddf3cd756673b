#!/bin/sh
# lvm2 with the rtmirror segment type (lvm2-patches/, docs/lvm.md): lvcreate --type rtmirror
# with each log kind, the table lvm loads, sync reporting, deactivate/activate keeping the data,
# lvremove.
. /scenarios/lib.sh
load_rtmirror
[ -x /sbin/lvm ] || { fail "no /sbin/lvm in the guest image (scripts/build-initramfs.sh)"; exit 1; }
mkdir -p /run/lock/lvm /run/lvm
lvs_note() { lvm lvs -a -o name,attr,size,devices,copy_percent,lv_health_status vg 2>&1 |
	while IFS= read -r l; do note "lvs: $l"; done; }

expect "pvcreate" lvm pvcreate -q -y /dev/vda /dev/vdb /dev/vdc /dev/vdd
expect "vgcreate" lvm vgcreate -q -s 1m vg /dev/vda /dev/vdb /dev/vdc /dev/vdd
# Two legs and two log copies (leg i and log copy i on PV i).
expect "lvcreate --mirrorlog mirrored" lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored \
	--regionsize 512k -L 32m -n rm vg /dev/vda /dev/vdb
lvs_note
tbl=$(dmsetup table vg-rm)
result table "$tbl"
a=$(devnum_of mapper/vg-rm_rimage_0); b=$(devnum_of mapper/vg-rm_rimage_1)
la=$(devnum_of mapper/vg-rm_rlog_0); lb=$(devnum_of mapper/vg-rm_rlog_1)
want="0 65536 rtmirror 2 $a $b 2 $la $lb 4 region_size 1024 log_uuid "
case $tbl in "$want"????????????????????????????????) ;; *) fail "table '$tbl', expected '$want<32 hex>'" ;; esac
for d in vg-rm_rimage_0 vg-rm_rimage_1 vg-rm_rlog_0 vg-rm_rlog_1; do
	dmsetup info "$d" >/dev/null 2>&1 || fail "sub-LV $d not active"
done
sum=$(write_random /dev/vg/rm 4 8)
wait_in_sync vg-rm 120
result status "$(status_of vg-rm)"
pct=$(lvm lvs --noheadings -o copy_percent vg/rm | tr -d ' ')
result copy_percent "$pct"
[ "$pct" = "100.00" ] || fail "copy_percent '$pct' after sync"
health=$(lvm lvs --noheadings -o lv_health_status vg/rm | tr -d ' ')
[ -z "$health" ] || fail "health '$health' of a healthy mirror"
attr=$(lvm lvs --noheadings -o attr vg/rm | tr -d ' ')
result attr "$attr"
case $attr in m*) ;; *) fail "attr '$attr' does not start with m" ;; esac
lvs_note
# Cpy%Sync and health follow the target: a throttled full resync, then a failed leg.
expect "message resync_kbps" dmsetup message vg-rm 0 resync_kbps 512
expect "message resync" dmsetup message vg-rm 0 resync
pct=$(lvm lvs --noheadings -o copy_percent vg/rm | tr -d ' ')
health=$(lvm lvs --noheadings -o lv_health_status vg/rm | tr -d ' ')
result resyncing "status '$(status_of vg-rm)' copy_percent $pct health '$health'"
case $pct in 100.00|"") fail "copy_percent '$pct' during a resync" ;; esac
[ "$health" = degraded ] || fail "health '$health' during a resync"
lvs_note
expect "message resync_kbps 0" dmsetup message vg-rm 0 resync_kbps 0
wait_in_sync vg-rm 120
expect "message fail 1" dmsetup message vg-rm 0 fail 1
health=$(lvm lvs --noheadings -o lv_health_status vg/rm | tr -d ' ')
result failed_leg "status '$(status_of vg-rm)' health '$health'"
[ "$health" = degraded ] || fail "health '$health' with leg 1 failed"
out=$(lvm lvchange --refresh vg/rm 2>&1) || fail "lvchange --refresh with leg 1 failed: $out"
case $out in *"Rejoining leg 1 (I)"*) note "ok: $out" ;; *) fail "refresh did not rejoin leg 1: $out" ;; esac
wait_in_sync vg-rm 120
[ "$(md5_of /dev/vg/rm 4 8)" = "$sum" ] || fail "data changed by resync/fail/rejoin"
# The messages changed the live table (resync_kbps 0 is the default again): a refresh
# reloads lvm's table, and a second refresh finds it identical and does not reload.
expect "lvchange --refresh" lvm lvchange --refresh vg/rm
[ "$(dmsetup table vg-rm)" = "$tbl" ] || fail "table after refresh '$(dmsetup table vg-rm)'"
lvm lvchange --refresh -vvvv vg/rm >/tmp/refresh.log 2>&1 || fail "second lvchange --refresh"
if grep -q "Suppressed vg-rm .*identical table reload" /tmp/refresh.log; then
	note "ok: identical table reload suppressed"
else
	fail "identical table not suppressed: $(grep -i 'table\|reload' /tmp/refresh.log | grep 'vg-rm ' | tail -n 3 | tr '\n' '|')"
fi
# The I/O timeout is kept in the metadata and reloaded into the table.
expect "lvchange --iotimeout 2000" lvm lvchange --iotimeout 2000 vg/rm
case $(dmsetup table vg-rm) in *" io_timeout_ms 2000 "*) ;; *) fail "table after --iotimeout: $(dmsetup table vg-rm)" ;; esac
result table_iotimeout "$(dmsetup table vg-rm)"
expect "lvchange --iotimeout 0" lvm lvchange --iotimeout 0 vg/rm
[ "$(dmsetup table vg-rm)" = "$tbl" ] || fail "table after --iotimeout 0 '$(dmsetup table vg-rm)'"
# lvchange -ay of an active LV changes nothing.
expect "lvchange -ay (active)" lvm lvchange -ay vg/rm
expect "lvchange -an" lvm lvchange -an vg/rm
for d in vg-rm vg-rm_rimage_0 vg-rm_rimage_1 vg-rm_rlog_0 vg-rm_rlog_1; do
	dmsetup info "$d" >/dev/null 2>&1 && fail "$d still active after lvchange -an"
done
expect "lvchange -ay" lvm lvchange -ay vg/rm
[ "$(md5_of /dev/vg/rm 4 8)" = "$sum" ] || fail "data changed across lvchange -an/-ay"
wait_in_sync vg-rm 120
result status_reactivated "$(status_of vg-rm)"
case $(status_of vg-rm) in "2 AA "*" 2 AA healthy idle") ;; *) fail "status after -ay: $(status_of vg-rm)" ;; esac
# vdb (leg 1, log copy 1) missing: lvm sees only the other PVs and activates the LV degraded
# (the default activation_mode), with the missing leg and log copy absent ("-") in the table.
# lvm's warnings about the missing PV go to a file (the host flags console WARNINGs).
expect "lvchange -an before degraded" lvm lvchange -an vg/rm
without_vdb="--devices /dev/vda,/dev/vdc,/dev/vdd"
lvm lvchange -ay $without_vdb vg/rm >/tmp/degraded.log 2>&1 || fail "degraded activation: $(tr '\n' '|' </tmp/degraded.log)"
tbl_deg=$(dmsetup table vg-rm)
result table_degraded "$tbl_deg"
a_deg=$(devnum_of mapper/vg-rm_rimage_0); la_deg=$(devnum_of mapper/vg-rm_rlog_0)
case $tbl_deg in "0 65536 rtmirror 2 $a_deg - 2 $la_deg - 4 region_size 1024 log_uuid "*) ;;
	*) fail "degraded table '$tbl_deg'" ;; esac
result status_degraded "$(status_of vg-rm)"
case $(status_of vg-rm) in "2 AM "*" 2 AF degraded "*) ;; *) fail "degraded status '$(status_of vg-rm)'" ;; esac
health=$(lvm lvs $without_vdb --noheadings -o lv_health_status vg/rm 2>/dev/null | tr -d ' ')
result health_degraded "$health"
[ -n "$health" ] || fail "empty health with a missing PV"
[ "$(md5_of /dev/vg/rm 4 8)" = "$sum" ] || fail "degraded mirror reads other data"
for d in vg-rm_rimage_1 vg-rm_rlog_1; do
	dmsetup info "$d" >/dev/null 2>&1 && fail "$d active although its PV is missing"
done
lvm lvchange -an $without_vdb vg/rm >>/tmp/degraded.log 2>&1 || fail "deactivate degraded: $(tr '\n' '|' </tmp/degraded.log)"
dmsetup ls | grep -q '^vg-rm' && fail "devices left after degraded -an: $(dmsetup ls | tr '\n' ' ')"
expect "lvchange -ay (vdb back)" lvm lvchange -ay vg/rm
a=$(devnum_of mapper/vg-rm_rimage_0); b=$(devnum_of mapper/vg-rm_rimage_1)
la=$(devnum_of mapper/vg-rm_rlog_0); lb=$(devnum_of mapper/vg-rm_rlog_1)
case $(dmsetup table vg-rm) in "0 65536 rtmirror 2 $a $b 2 $la $lb 4 region_size 1024 log_uuid "*) ;;
	*) fail "table with vdb back '$(dmsetup table vg-rm)'" ;; esac
tbl=$(dmsetup table vg-rm)
# The log remembers that leg 1 was missing: it stays out of service (M) until lvchange
# --refresh rejoins it.
result status_vdb_back "$(status_of vg-rm)"
out=$(lvm lvchange --refresh vg/rm 2>&1) || fail "lvchange --refresh with vdb back: $out"
case $out in *"Rejoining leg 1 (M)"*) note "ok: $out" ;; *) fail "refresh did not rejoin leg 1: $out" ;; esac
wait_in_sync vg-rm 120
case $(status_of vg-rm) in "2 AA "*" 2 AA healthy idle") ;; *) fail "status after rejoin: $(status_of vg-rm)" ;; esac
[ "$(md5_of /dev/vg/rm 4 8)" = "$sum" ] || fail "data changed across the degraded activation"
# One log copy (disk) and no log (core), on the small PVs.
expect "lvcreate --mirrorlog disk --iotimeout" lvm lvcreate --type rtmirror -m 1 --mirrorlog disk \
	--iotimeout 5000 -L 8m -n rd vg /dev/vdc /dev/vdd
case $(dmsetup table vg-rd) in *" rtmirror 2 "*" 1 "*" io_timeout_ms 5000 "*) ;; *) fail "disk log table: $(dmsetup table vg-rd)" ;; esac
result table_disk "$(dmsetup table vg-rd)"
expect "lvcreate --mirrorlog core" lvm lvcreate --type rtmirror -m 1 --mirrorlog core \
	-L 4m -n rc vg /dev/vdc /dev/vdd
case $(dmsetup table vg-rc) in *" rtmirror 2 "*" 0 "*) ;; *) fail "core log table: $(dmsetup table vg-rc)" ;; esac
result table_core "$(dmsetup table vg-rc)"
wait_in_sync vg-rd 120; wait_in_sync vg-rc 120
lvs_note
# --nosync: the table carries nosync, the new log starts with every region in sync (the
# activation line: 0 out of sync), lvs shows 'M' until lvchange --resync copies every region.
out=$(lvm lvcreate --type rtmirror -m 1 --nosync -L 8m -n rn vg /dev/vda /dev/vdb 2>&1) ||
	fail "lvcreate --nosync: $out"
# (lvm's warning is kept off the console, where the harness takes "WARNING:" for the kernel's.)
case $out in *"won't be synchronised"*) ;; *) fail "lvcreate --nosync did not warn: $out" ;; esac
tbl=$(dmsetup table vg-rn)
case "$tbl " in *" nosync "*) ;; *) fail "--nosync not in the table: $tbl" ;; esac
result table_nosync "$tbl"
dev=$(dmsetup info -c --noheadings -o major,minor vg-rn | tr -d ' ')
act=$(dmesg | grep "$dev: activated:" | tail -n 1)
result activation_nosync "$act"
case $act in *" 0 of "*" regions out of sync"*) ;; *) fail "--nosync LV activated with regions to resync: $act" ;; esac
case $(lvm lvs --noheadings -o attr vg/rn | tr -d ' ') in M*) ;; *) fail "lvs attr of the --nosync LV: $(lvm lvs --noheadings -o attr vg/rn)" ;; esac
expect "lvchange --resync rn" lvm lvchange --resync vg/rn
wait_in_sync vg-rn 120
case $(lvm lvs --noheadings -o attr vg/rn | tr -d ' ') in m*) ;; *) fail "lvs attr after --resync: $(lvm lvs --noheadings -o attr vg/rn)" ;; esac
expect "lvremove rn" lvm lvremove -y vg/rn
out=$(lvm lvcreate --type rtmirror -m 1 --nosync --mirrorlog core -L 4m -n rbad vg 2>&1) && fail "--nosync with a core log accepted"
note "--nosync with a core log refused: $out"
# Refusals say why.
out=$(lvm lvcreate --type rtmirror -m 1 -L 8m -n rbad vg /dev/vda 2>&1) && fail "lvcreate with one PV succeeded"
note "one PV refused: $out"
out=$(lvm lvcreate --type rtmirror -m 1 --regionsize 12k -L 8m -n rbad vg 2>&1) && fail "bad region size accepted"
note "bad region size refused: $out"
out=$(lvm lvchange --iotimeout 100 vg/rc_rimage_0 2>&1) && fail "--iotimeout on a leg accepted"
note "--iotimeout on a leg refused: $out"
out=$(lvm lvextend -L +4m vg/rc 2>&1) && fail "lvextend of an rtmirror LV accepted"
note "lvextend refused: $out"
out=$(lvm lvremove -y vg/rd_rlog_0 2>&1) && fail "lvremove of a log copy accepted"
note "lvremove of a log copy refused: $out"
dmsetup info vg-rd_rlog_0 >/dev/null 2>&1 || fail "log copy vg-rd_rlog_0 gone"
expect "lvremove rm" lvm lvremove -y vg/rm
expect "lvremove rd rc" lvm lvremove -y vg/rd vg/rc
left=$(lvm lvs -a --noheadings -o name vg | tr -d ' ')
[ -z "$left" ] || fail "LVs left after lvremove: $left"
dmsetup ls | grep -q '^vg-' && fail "dm devices left: $(dmsetup ls | tr '\n' ' ')"
expect "vgremove" lvm vgremove -y vg
kernel_log_clean
