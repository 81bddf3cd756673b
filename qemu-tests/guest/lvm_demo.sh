#!/bin/sh
# The lvm2 demo (`scripts/demo.sh --lvm`, docs/lvm.md): lvcreate --type rtmirror over two PVs
# (one per storage subsystem), data written, the second subsystem's disk fails every I/O, the
# writes go on, lvs shows the failed leg, lvconvert --repair puts a new leg on a spare PV, the
# resync runs, lvs shows the mirror whole again and the data is checked.
. /scenarios/lib.sh
lvm_setup
# lvm's output ($OUT, see run() in lib.sh) is shown as notes, one per line.
said_lines() { echo "$OUT" | sed 's/WARNING:/warning:/g' | while IFS= read -r l; do note "  $l"; done; }
show() { note "# $*"; run "$@"; st=$?; said_lines; return $st; }
lvs_show() { show lvm lvs -a -o name,attr,size,devices,copy_percent,lv_health_status vg; }

show lvm pvcreate -y /dev/vda /dev/vdb /dev/vdc || fail "pvcreate"
show lvm vgcreate -s 1m vg /dev/vda /dev/vdb /dev/vdc || fail "vgcreate"
show lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored --regionsize 512k --iotimeout 2000 \
	-L 32m -n rm vg /dev/vda /dev/vdb || fail "lvcreate"
sum=$(write_random /dev/vg/rm 0 8)
wait_in_sync vg-rm 120
lvs_show

note "### the second subsystem (vdb: leg 1 and log copy 1) fails every I/O"
host error 1 all
sum2=$(write_random /dev/vg/rm 8 8) || fail "write while vdb fails"
st=$(status_of vg-rm)
note "dmsetup status: $st"
case $st in "2 AI "*) ;; *) fail "leg 1 not Inactive after the write: $st" ;; esac
lvs_show
case $OUT in *"rm_rimage_1"*) ;; *) fail "lvs does not list the failed leg" ;; esac

note "### repair: a new leg (and log copy) on the spare PV vdc, full resync"
show lvm lvconvert --repair -y vg/rm || fail "lvconvert --repair"
case $OUT in *"Replaced leg 1 of vg/rm with rm_rimage_1 on /dev/vdc."*) ;;
	*) fail "leg 1 not replaced on vdc" ;; esac
wait_in_sync vg-rm 120
st=$(status_of vg-rm)
note "dmsetup status: $st"
case $st in "2 AA 64/64 2 AA healthy idle") ;; *) fail "not healthy after the repair: $st" ;; esac
lvs_show
[ "$(md5_of /dev/vg/rm 0 8)" = "$sum" ] || fail "data written before the failure changed"
[ "$(md5_of /dev/vg/rm 8 8)" = "$sum2" ] || fail "data written during the failure changed"
expect "primary 1" dmsetup message vg-rm 0 primary 1
[ "$(md5_of /dev/vg/rm 0 8)$(md5_of /dev/vg/rm 8 8)" = "$sum$sum2" ] || fail "the new leg 1 lacks the data"
a=$(md5_of /dev/mapper/vg-rm_rimage_0 0 32); b=$(md5_of /dev/mapper/vg-rm_rimage_1 0 32)
[ "$a" = "$b" ] && note "ok: legs identical after the repair ($a)" || fail "legs differ after the repair: $a $b"
show lvm vgreduce --removemissing vg || fail "vgreduce --removemissing"
show lvm lvremove -y vg/rm || fail "lvremove"
kernel_log_clean
