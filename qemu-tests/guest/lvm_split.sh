#!/bin/sh
# lvm2: lvconvert --splitmirrors 1 --trackchanges and --mergemirrors of an rtmirror LV
# (docs/lvm.md): the split leg keeps the data of the moment of the split, the merge copies only
# the regions written since (differential resync), the legs are identical afterwards; the
# refusals.
. /scenarios/lib.sh
lvm_setup
lvs_note() { lvm lvs -a -o name,attr,size,devices,copy_percent,lv_health_status vg 2>/dev/null |
	while IFS= read -r l; do note "lvs: $l"; done; }

expect "pvcreate" lvm pvcreate -q -y /dev/vda /dev/vdb
expect "vgcreate" lvm vgcreate -q -s 1m vg /dev/vda /dev/vdb
expect "lvcreate" lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored --regionsize 512k \
	-L 32m -n rm vg /dev/vda /dev/vdb
sum=$(write_random /dev/vg/rm 0 32)
wait_in_sync vg-rm 120

# Refused: without --trackchanges (a split for good, lvm_split_off) the prompt answered no (stdin
# closed); more than one leg.
out=$(lvm lvconvert --splitmirrors 1 --name copy vg/rm 2>&1 </dev/null) && fail "split for good without -y succeeded"
case $out in *"Logical volume vg/rm NOT split."*) note "ok: refused: $(echo "$out" | tr '\n' '|')" ;;
	*) fail "split for good without -y said: $(echo "$out" | tr '\n' '|')" ;; esac
run lvm lvconvert --splitmirrors 2 --trackchanges vg/rm && fail "split of 2 legs succeeded"
case $OUT in *"exactly one leg can be split off"*) note "ok: refused: $(said)" ;;
	*) fail "split of 2 legs said: $(said)" ;; esac

# Refused while not in sync (a throttled full resync running).
expect "message resync_kbps 256" dmsetup message vg-rm 0 resync_kbps 256
expect "message resync" dmsetup message vg-rm 0 resync
run lvm lvconvert --splitmirrors 1 --trackchanges vg/rm && fail "split during a resync succeeded"
case $OUT in *"Unable to split vg/rm: it is not in sync"*) note "ok: refused: $(said)" ;;
	*) fail "split during a resync said: $(said)" ;; esac
expect "message resync_kbps 0" dmsetup message vg-rm 0 resync_kbps 0
wait_in_sync vg-rm 120

# Split leg 1 off: it keeps the data of now; writes to the mirror go to leg 0 only.
run lvm lvconvert --splitmirrors 1 --trackchanges vg/rm || fail "split: $(said)"
case $OUT in *"Leg 1 of vg/rm split off as vg/rm_rimage_1"*"lvconvert --mergemirrors vg/rm_rimage_1"*)
	note "ok: $(said)" ;; *) fail "split said: $(said)" ;; esac
st=$(status_of vg-rm)
result status_split "$st"
case $st in "2 AS "*" 2 AA degraded idle") ;; *) fail "status after split: $st" ;; esac
attr=$(lvm lvs --noheadings -o attr vg/rm_rimage_1 2>/dev/null | tr -d ' ')
result split_leg_attr "$attr"
lvm lvs --noheadings -o name vg 2>/dev/null | grep -qw rm_rimage_1 || fail "rm_rimage_1 not visible after split"
lvs_note
# New data on the mirror: 2 MiB at 4 MiB (4 regions of 512 KiB).
new=$(write_random /dev/vg/rm 4 2)
[ "$(md5_of /dev/mapper/vg-rm_rimage_1 0 32)" = "$sum" ] || fail "the split leg changed after the split"
[ "$(md5_of /dev/mapper/vg-rm_rimage_0 4 2)" = "$new" ] || fail "leg 0 does not have the new data"
# Refused: a second split; a merge of the other leg (not split); the split leg survives a
# deactivation (the log records S).
run lvm lvconvert --splitmirrors 1 --trackchanges vg/rm && fail "second split succeeded"
case $OUT in *"leg 1 is split off already as vg/rm_rimage_1"*) note "ok: refused: $(said)" ;;
	*) fail "second split said: $(said)" ;; esac
# Refused: a repair while the split leg's PV is missing (hidden with --devices): the new leg would
# only get the tracked regions.
run lvm lvconvert --repair -y --devices /dev/vda vg/rm && fail "repair of a split leg on a missing PV succeeded"
case $OUT in *"leg 1 is on a missing PV but the target has it split off (S)"*) note "ok: refused: $(said)" ;;
	*) fail "repair of a split leg on a missing PV said: $(said)" ;; esac
case $(status_of vg-rm) in "2 AS "*) ;; *) fail "status after the refused repair: $(status_of vg-rm)" ;; esac
run lvm lvconvert --mergemirrors vg/rm_rimage_0 && fail "merge of a leg that was not split succeeded"
note "merge of rm_rimage_0: $(said)"
expect "lvchange -an" lvm lvchange -an vg/rm
expect "lvchange -ay" lvm lvchange -ay vg/rm
st=$(status_of vg-rm)
result status_split_reactivated "$st"
case $st in "2 AS "*) ;; *) fail "status after reactivation with leg 1 split: $st" ;; esac
[ "$(md5_of /dev/mapper/vg-rm_rimage_1 0 32)" = "$sum" ] || fail "the split leg changed across reactivation"
out=$(lvm lvchange --refresh vg/rm 2>&1) || fail "refresh with a split leg: $out"
case $(status_of vg-rm) in "2 AS "*) ;; *) fail "refresh rejoined the split leg: $(status_of vg-rm)" ;; esac

# Merge: only the tracked regions are copied.
dmesg -c >/dev/null
run lvm lvconvert --mergemirrors vg/rm_rimage_1 || fail "merge: $(said)"
case $OUT in *"vg/rm_rimage_1 merged back into vg/rm"*) note "ok: $(said)" ;;
	*) fail "merge said: $(said)" ;; esac
wait_in_sync vg-rm 120
st=$(status_of vg-rm)
result status_merged "$st"
case $st in "2 AA 64/64 2 AA healthy idle") ;; *) fail "status after merge: $st" ;; esac
rejoin=$(dmesg | grep "leg 1 rejoined" | tail -n 1)
result rejoin_line "$rejoin"
copied=$(resync_regions_of)
result regions_copied "$copied"
case $rejoin in *"differential"*) ;; *) fail "merge was not a differential resync: $rejoin" ;; esac
[ -n "$copied" ] && [ "$copied" -ge 4 ] && [ "$copied" -lt 64 ] || fail "regions copied by the merge: '$copied' (4 written)"
a=$(md5_of /dev/mapper/vg-rm_rimage_0 0 32); b=$(md5_of /dev/mapper/vg-rm_rimage_1 0 32)
[ "$a" = "$b" ] || fail "legs differ after merge"
[ "$(md5_of /dev/vg/rm 4 2)" = "$new" ] || fail "new data lost by the merge"
lvm lvs --noheadings -o name vg 2>/dev/null | grep -qw rm_rimage_1 && fail "rm_rimage_1 still visible after merge"
lvs_note
# Merge again: refused (not split).
run lvm lvconvert --mergemirrors vg/rm_rimage_1 && fail "second merge succeeded"
note "second merge: $(said)"
expect "lvchange -an" lvm lvchange -an vg/rm
