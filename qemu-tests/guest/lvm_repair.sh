#!/bin/sh
# lvm2 commands that resync and repair rtmirror LVs (docs/lvm.md): lvchange --resync (online,
# the target's resync message), lvconvert --repair of a leg failed on a healthy PV (I), of a leg
# whose PV fails every I/O while the target still has it in sync (A: failed first; replaced on a
# free PV with its log copy) and of a leg missing at activation (M, leg 0), and the refusals. Every repair is checked by the data (md5), by the two legs being
# identical byte for byte, by the kernel status and by lvs.
. /scenarios/lib.sh
lvm_setup
ok() { run "$@" && note "ok: $*" || fail "$*: $(said)"; }
lvs_note() { lvm lvs -a $1 -o name,attr,size,devices,copy_percent,lv_health_status vg 2>/dev/null |
	while IFS= read -r l; do note "lvs: $l"; done; }
devices_of() { lvm lvs -a --noheadings -o devices $2 "vg/$1" 2>/dev/null | tr -d ' '; }
legs_identical() { # <when>: the two legs hold the same bytes
	local a b
	a=$(md5_of /dev/mapper/vg-rm_rimage_0 0 32); b=$(md5_of /dev/mapper/vg-rm_rimage_1 0 32)
	if [ "$a" = "$b" ]; then note "ok: legs identical $1 ($a)"; else fail "legs differ $1: $a $b"; fi
}
data_ok() { # <when>
	[ "$(md5_of /dev/vg/rm 4 8)" = "$sum" ] || fail "data at 4 MiB changed $1"
	[ -z "$sum2" ] || [ "$(md5_of /dev/vg/rm 12 4)" = "$sum2" ] || fail "data at 12 MiB changed $1"
	[ -z "$sum3" ] || [ "$(md5_of /dev/vg/rm 20 4)" = "$sum3" ] || fail "data at 20 MiB changed $1"
}
healthy() { # <when>
	local st
	st=$(status_of vg-rm)
	case $st in "2 AA 64/64 2 AA healthy idle") ;; *) fail "status $1: $st" ;; esac
}
sum2= sum3=

expect "pvcreate" lvm pvcreate -q -y /dev/vda /dev/vdb /dev/vdc /dev/vdd
expect "vgcreate" lvm vgcreate -q -s 1m vg /dev/vda /dev/vdb /dev/vdc /dev/vdd
expect "lvcreate" lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored --regionsize 512k \
	-L 32m -n rm vg /dev/vda /dev/vdb
sum=$(write_random /dev/vg/rm 4 8)
wait_in_sync vg-rm 120

# --- lvchange --resync: online, every region copied again (throttled so that it shows).
expect "message resync_kbps 512" dmsetup message vg-rm 0 resync_kbps 512
run lvm lvchange --resync vg/rm || fail "lvchange --resync: $(said)"
case $OUT in *"Resynchronizing all 64 regions of vg/rm."*) note "ok: $(said)" ;;
	*) fail "lvchange --resync said: $(said)" ;; esac
st=$(status_of vg-rm)
result resync_status "$st"
case $st in "2 AR "*" 2 AA degraded resync") ;; *) fail "status after lvchange --resync: $st" ;; esac
pct=$(lvm lvs --noheadings -o copy_percent vg/rm 2>/dev/null | tr -d ' ')
case $pct in 100.00|"") fail "copy_percent '$pct' during lvchange --resync" ;; esac
dmesg | grep -q "full resync from leg 0 requested" || fail "no 'full resync' kernel line"
expect "message resync_kbps 0" dmsetup message vg-rm 0 resync_kbps 0
wait_in_sync vg-rm 120
healthy "after lvchange --resync"
legs_identical "after lvchange --resync"
data_ok "by lvchange --resync"

# Refused: inactive LV; one leg in service only.
expect "lvchange -an" lvm lvchange -an vg/rm
run lvm lvchange --resync vg/rm && fail "lvchange --resync of an inactive LV succeeded"
case $OUT in *"Unable to resync rtmirror LV vg/rm: it is not active."*) note "ok: refused: $(said)" ;;
	*) fail "inactive resync said: $(said)" ;; esac
expect "lvchange -ay" lvm lvchange -ay vg/rm
expect "message fail 1" dmsetup message vg-rm 0 fail 1
run lvm lvchange --resync vg/rm && fail "lvchange --resync with one leg in service succeeded"
case $OUT in *"only one leg is in service"*) note "ok: refused: $(said)" ;;
	*) fail "one-leg resync said: $(said)" ;; esac
case $OUT in *"Leg 1 of vg/rm is out of service (I)"*) ;; *) fail "no warning for leg 1: $(said)" ;; esac
run lvm lvchange --refresh vg/rm || fail "refresh: $(said)"
wait_in_sync vg-rm 120

# --- lvconvert --repair refusals and no-op.
run lvm lvconvert --repair -y vg/rm || fail "repair of a healthy LV: $(said)"
case $OUT in *"vg/rm has no failed leg or log copy: nothing to repair."*) note "ok: $(said)" ;;
	*) fail "repair of a healthy LV said: $(said)" ;; esac
expect "lvchange -an" lvm lvchange -an vg/rm
run lvm lvconvert --repair -y vg/rm && fail "repair of an inactive LV succeeded"
case $OUT in *"Unable to repair rtmirror LV vg/rm: it is not active."*) note "ok: refused: $(said)" ;;
	*) fail "inactive repair said: $(said)" ;; esac
expect "lvchange -ay" lvm lvchange -ay vg/rm
wait_in_sync vg-rm 120

# --- Repair 0: leg 1 of a second LV fails (the fail message: I) while its PV is healthy. The new
# leg goes to the PV given (vda); the old leg, still in the table, is renamed *_extracted through
# the reload, then removed; log copy 1 (alive on vdd) stays.
expect "lvcreate rt" lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored --regionsize 512k \
	-L 8m -n rt vg /dev/vdc /dev/vdd
rsum=$(write_random /dev/vg/rt 0 8)
wait_in_sync vg-rt 120
expect "message fail 1 (rt)" dmsetup message vg-rt 0 fail 1
run lvm lvconvert --repair -y vg/rt /dev/vda || fail "lvconvert --repair vg/rt /dev/vda: $(said)"
note "repair 0: $(said)"
case $OUT in *"Replaced leg 1 of vg/rt with rt_rimage_1 on /dev/vda."*) ;;
	*) fail "repair 0 did not replace leg 1 on vda: $(said)" ;; esac
case $OUT in *"Replaced log copy"*) fail "repair 0 replaced a log copy that is alive: $(said)" ;; esac
l=$(dmesg | grep "$(devnum_of mapper/vg-rt): leg 1 rejoined" | tail -n 1); result rejoin_rt "$l"
case $l in *"leg 1 rejoined (I): full resync"*) ;; *) fail "no full resync of rt's new leg 1: '$l'" ;; esac
wait_in_sync vg-rt 120
st=$(status_of vg-rt); result status_rt_repaired "$st"
case $st in "2 AA 16/16 2 AA healthy idle") ;; *) fail "rt status after repair 0: $st" ;; esac
a=$(md5_of /dev/mapper/vg-rt_rimage_0 0 8); b=$(md5_of /dev/mapper/vg-rt_rimage_1 0 8)
[ "$a" = "$b" ] && note "ok: rt legs identical ($a)" || fail "rt legs differ after repair 0: $a $b"
[ "$(md5_of /dev/vg/rt 0 8)" = "$rsum" ] || fail "rt data changed by repair 0"
d=$(devices_of rt_rimage_1); result rt_leg1_devices "$d"
case $d in /dev/vda\(*) ;; *) fail "rt_rimage_1 on '$d', expected /dev/vda" ;; esac
d=$(devices_of rt_rlog_1); result rt_log1_devices "$d"
case $d in /dev/vdd\(*) ;; *) fail "rt_rlog_1 on '$d', expected /dev/vdd (unchanged)" ;; esac
lvm lvs -a vg 2>/dev/null | grep -q extracted && fail "extracted sub-LVs left: $(lvm lvs -a vg 2>/dev/null | tr '\n' '|')"
dmsetup ls | grep -q extracted && fail "extracted devices left: $(dmsetup ls | tr '\n' ' ')"
# Then log copy 1 of rt alone fails (its device errors every write: the target marks it F); the
# repair replaces it on the PV of leg 1 (vda, which has room and not the other copy) and leaves the
# legs alone. The new copy is written in full by the next log write: after a reactivation it is
# used (no "log copy 1: not used").
expect "suspend rt_rlog_1" dmsetup suspend vg-rt_rlog_1
expect "load error rt_rlog_1" dmsetup load vg-rt_rlog_1 --table "0 $(sectors_of mapper/vg-rt_rlog_1) error"
expect "resume rt_rlog_1" dmsetup resume vg-rt_rlog_1
rsum=$(write_random /dev/vg/rt 2 2)
rsum_all=$(md5_of /dev/vg/rt 0 8)
st=$(status_of vg-rt); result status_rt_log1_failed "$st"
case $st in "2 AA "*" 2 AF "*) ;; *) fail "rt status with log copy 1 erroring: $st" ;; esac
run lvm lvconvert --repair -y vg/rt || fail "lvconvert --repair vg/rt (log copy 1): $(said)"
note "repair 0 (log): $(said)"
case $OUT in *"Replaced log copy 1 of vg/rt with rt_rlog_1 on /dev/vda."*) ;;
	*) fail "repair did not replace log copy 1 of rt on vda: $(said)" ;; esac
case $OUT in *"Replaced leg"*) fail "log repair replaced a leg: $(said)" ;; esac
st=$(status_of vg-rt); result status_rt_log_repaired "$st"
case $st in "2 AA 16/16 2 AA healthy idle") ;; *) fail "rt status after the log repair: $st" ;; esac
d=$(devices_of rt_rlog_1); result rt_new_log1_devices "$d"
case $d in /dev/vda\(*) ;; *) fail "new rt_rlog_1 on '$d', expected /dev/vda" ;; esac
lvm lvs -a vg 2>/dev/null | grep -q extracted && fail "extracted sub-LVs left: $(lvm lvs -a vg 2>/dev/null | tr '\n' '|')"
dmsetup ls | grep -q extracted && fail "extracted devices left: $(dmsetup ls | tr '\n' ' ')"
write_random /dev/vg/rt 6 1 >/dev/null
rsum_all=$(md5_of /dev/vg/rt 0 8)
ok lvm lvchange -an vg/rt
dmesg -c >/dev/null
ok lvm lvchange -ay vg/rt
act=$(dmesg | grep "dm_rtmirror" | tr '\n' '|'); result rt_reactivated "$act"
case $act in *"log copy 1: not used"*|*"log copy 0: not used"*) fail "a log copy of rt is not used after the log repair: $act" ;; esac
case $act in *"activated: log found"*) ;; *) fail "rt's log not found at reactivation: $act" ;; esac
case $(status_of vg-rt) in "2 AA 16/16 2 AA healthy idle") ;; *) fail "rt status after reactivation: $(status_of vg-rt)" ;; esac
[ "$(md5_of /dev/vg/rt 0 8)" = "$rsum_all" ] || fail "rt data changed across the log repair and reactivation"
lvs_note
ok lvm lvremove -y vg/rt

# --- Repair 1: vdb (leg 1, log copy 1) fails every I/O while the LV is idle: the target still has
# leg 1 in sync (no I/O reached it), lvm finds the PV missing. The repair fails leg 1 first (so the
# log records it out of date), then puts leg 1 and log copy 1 on vdc. Data written during the
# resync of the new leg is checked too.
host error 1 all
case $HOST_REPLY in ok*) ;; *) fail "host error 1: $HOST_REPLY" ;; esac
st=$(status_of vg-rm)
result status_vdb_erroring "$st"
run lvm lvconvert --repair -y vg/rm || fail "lvconvert --repair (leg 1 failed): $(said)"
note "repair 1: $(said)"
case $st in
"2 AA "*) case $OUT in *"Failing leg 1 (A) of vg/rm: its PV is missing."*) ;;
	*) fail "repair 1 did not fail leg 1 first: $(said)" ;; esac ;;
*) note "leg 1 was out of service before the repair already: $st" ;;
esac
case $OUT in *"Replaced leg 1 of vg/rm with rm_rimage_1 on /dev/vdc."*) ;;
	*) fail "repair 1 did not replace leg 1 on vdc: $(said)" ;; esac
case $OUT in *"Replaced log copy 1 of vg/rm with rm_rlog_1 on /dev/vdc."*) ;;
	*) fail "repair 1 did not replace log copy 1 on vdc: $(said)" ;; esac
sum2=$(write_random /dev/vg/rm 12 4)
result status_after_repair1 "$(status_of vg-rm)"
l=$(dmesg | grep "$(devnum_of mapper/vg-rm): leg 1 rejoined" | tail -n 1); result rejoin1 "$l"
case $l in *"leg 1 rejoined ("[IM]"): full resync"*) ;; *) fail "no full resync of the new leg 1: '$l'" ;; esac
wait_in_sync vg-rm 120
healthy "after repair 1"
legs_identical "after repair 1"
data_ok "by repair 1"
d=$(devices_of rm_rimage_1); result leg1_devices "$d"
case $d in /dev/vdc\(*) ;; *) fail "rm_rimage_1 on '$d', expected /dev/vdc" ;; esac
d=$(devices_of rm_rlog_1); result log1_devices "$d"
case $d in /dev/vdc\(*) ;; *) fail "rm_rlog_1 on '$d', expected /dev/vdc" ;; esac
pct=$(lvm lvs --noheadings -o copy_percent vg/rm 2>/dev/null | tr -d ' ')
[ "$pct" = "100.00" ] || fail "copy_percent '$pct' after repair 1"
lvm lvs -a vg 2>/dev/null | grep -q extracted && fail "extracted sub-LVs left: $(lvm lvs -a vg 2>/dev/null | tr '\n' '|')"
dmsetup ls | grep -q extracted && fail "extracted devices left: $(dmsetup ls | tr '\n' ' ')"
lvs_note
# Nothing is left on vdb: it can go.
ok lvm vgreduce --removemissing vg
ok lvm lvchange -an vg/rm
ok lvm lvchange -ay vg/rm
wait_in_sync vg-rm 120
healthy "after reactivation"
data_ok "across reactivation after repair 1"

# --- Refused: core log and leg 0 out of sync (a new table would resync from leg 0).
expect "lvcreate core" lvm lvcreate --type rtmirror -m 1 --mirrorlog core -L 8m -n rc vg /dev/vdc /dev/vdd
wait_in_sync vg-rc 120
expect "message fail 0 (rc)" dmsetup message vg-rc 0 fail 0
run lvm lvconvert --repair -y vg/rc && fail "repair of a core-log LV with leg 0 failed succeeded"
case $OUT in *"it has no log copy left (core log)"*"leg 0, which is not in sync (I)"*) note "ok: refused: $(said)" ;;
	*) fail "core-log repair said: $(said)" ;; esac
ok lvm lvremove -y vg/rc

# --- Repair 2: vda (leg 0, log copy 0) missing at activation: the LV runs degraded (leg 0 M);
# the repair puts leg 0 and log copy 0 on vdd, and leg 0 is resynced from leg 1.
only="--devices /dev/vdc,/dev/vdd"
expect "lvchange -an" lvm lvchange -an vg/rm
run lvm lvchange -ay $only vg/rm || fail "degraded activation: $(said)"
st=$(status_of vg-rm)
result status_leg0_missing "$st"
case $st in "2 MA "*" 2 FA degraded "*) ;; *) fail "status with vda missing: $st" ;; esac
sum3=$(write_random /dev/vg/rm 20 4)
run lvm lvconvert --repair -y $only vg/rm || fail "lvconvert --repair (leg 0 missing): $(said)"
note "repair 2: $(said)"
case $OUT in *"Replaced leg 0 of vg/rm with rm_rimage_0 on /dev/vdd."*) ;;
	*) fail "repair 2 did not replace leg 0 on vdd: $(said)" ;; esac
case $OUT in *"Replaced log copy 0 of vg/rm with rm_rlog_0 on /dev/vdd."*) ;;
	*) fail "repair 2 did not replace log copy 0 on vdd: $(said)" ;; esac
result status_after_repair2 "$(status_of vg-rm)"
l=$(dmesg | grep "$(devnum_of mapper/vg-rm): leg 0 rejoined" | tail -n 1); result rejoin0 "$l"
case $l in *"leg 0 rejoined ("[IM]"): full resync"*) ;; *) fail "no full resync of the new leg 0: '$l'" ;; esac
wait_in_sync vg-rm 120
healthy "after repair 2"
legs_identical "after repair 2"
data_ok "by repair 2"
d=$(devices_of rm_rimage_0 "$only"); result leg0_devices "$d"
case $d in /dev/vdd\(*) ;; *) fail "rm_rimage_0 on '$d', expected /dev/vdd" ;; esac
lvs_note "$only"
ok lvm lvchange -an $only vg/rm
ok lvm lvchange -ay $only vg/rm
wait_in_sync vg-rm 120
healthy "after reactivation (repair 2)"
data_ok "across reactivation after repair 2"

# --- Refused: no PV for a new leg (vdc and vdd hold the legs, vda is missing, vdb gone).
expect "message fail 1" dmsetup message vg-rm 0 fail 1
run lvm lvconvert --repair -y $only vg/rm && fail "repair without a free PV succeeded"
case $OUT in *"Unable to replace leg 1 of vg/rm: no PV has 32 free extents and holds no other leg of it."*)
	note "ok: refused: $(said)" ;; *) fail "repair without a free PV said: $(said)" ;; esac
case $(status_of vg-rm) in "2 AI "*) ;; *) fail "status after the refused repair: $(status_of vg-rm)" ;; esac
run lvm lvchange --refresh $only vg/rm || fail "refresh: $(said)"
wait_in_sync vg-rm 120
healthy "after the refused repair and refresh"
data_ok "after the refused repair"

ok lvm lvchange -an $only vg/rm
