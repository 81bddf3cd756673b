#!/bin/sh
# lvm2: lvconvert --splitmirrors 1 --name (docs/lvm.md): a leg leaves an rtmirror LV for good and
# becomes a linear LV holding the data of the moment of the split, while a writer keeps writing
# to the mirror; the mirror goes on with the other legs (new log copies, resynced), and a 2-leg
# mirror becomes linear (as raid1 does). The leg split off with --trackchanges is split off for
# good with the data of its own moment. The refusals.
. /scenarios/lib.sh
lvm_setup
lvs_note() { lvm lvs -a -o name,attr,size,segtype,devices,copy_percent,lv_health_status vg 2>/dev/null |
	while IFS= read -r l; do note "lvs: $l"; done; }
field() { lvm lvs -a --noheadings -o "$1" "$2" 2>/dev/null | tr -d ' '; }

expect "pvcreate" lvm pvcreate -q -y /dev/vda /dev/vdb /dev/vdc
expect "vgcreate" lvm vgcreate -q -s 1m vg /dev/vda /dev/vdb /dev/vdc
expect "lvcreate -m 2" lvm lvcreate --type rtmirror -m 2 --mirrorlog mirrored --regionsize 512k \
	-L 16m -n rm vg /dev/vda /dev/vdb /dev/vdc
# 8 MiB written before, left alone; a writer on the other 8 MiB during the split.
sum=$(write_random /dev/vg/rm 0 8)
wait_in_sync vg-rm 120

# Refused: two legs at once, a name in use, not in sync, inactive.
run lvm lvconvert -y --splitmirrors 2 --name copy vg/rm && fail "split of 2 legs succeeded"
case $OUT in *"one leg at a time can be split off, not 2"*) note "ok: refused: $(said)" ;;
	*) fail "split of 2 legs said: $(said)" ;; esac
run lvm lvconvert -y --splitmirrors 1 --name rm vg/rm && fail "split to a name in use succeeded"
case $OUT in *'Logical Volume "rm" already exists in vg'*) note "ok: refused: $(said)" ;;
	*) fail "split to a name in use said: $(said)" ;; esac
run lvm lvconvert -y --splitmirrors 1 --name rm_rimage_0 vg/rm && fail "split to a reserved name succeeded"
note "reserved name: $(said)"
expect "message resync_kbps 256" dmsetup message vg-rm 0 resync_kbps 256
expect "message resync" dmsetup message vg-rm 0 resync
run lvm lvconvert -y --splitmirrors 1 --name copy vg/rm && fail "split during a resync succeeded"
case $OUT in *"Unable to split vg/rm: it is not in sync"*) note "ok: refused: $(said)" ;;
	*) fail "split during a resync said: $(said)" ;; esac
expect "message resync_kbps 0" dmsetup message vg-rm 0 resync_kbps 0
wait_in_sync vg-rm 120
expect "lvchange -an" lvm lvchange -an vg/rm
run lvm lvconvert -y --splitmirrors 1 --name copy vg/rm && fail "split of an inactive LV succeeded"
case $OUT in *"Unable to split vg/rm: it is not active"*) note "ok: refused: $(said)" ;;
	*) fail "split of an inactive LV said: $(said)" ;; esac
expect "lvchange -ay" lvm lvchange -ay vg/rm
wait_in_sync vg-rm 120
[ "$(lvm lvs --noheadings -o name vg 2>/dev/null | tr -d ' ' | tr '\n' ' ')" = "rm " ] ||
	fail "LVs after the refusals: $(lvm lvs --noheadings -o name vg 2>/dev/null | tr '\n' ' ')"

# Split leg 2 (on vdc) off while the writer runs on MiB 8..15 (blocks 128..255 of 64 KiB).
vwriter_start /dev/vg/rm w 128 128
sleep 2
t0=$(uptime_cs)
run lvm lvconvert -y --splitmirrors 1 --name copy vg/rm || fail "split: $(said)"
t1=$(uptime_cs)
sleep 2
vwriter_stop w
case $OUT in *"Leg 2 of vg/rm split off as vg/copy"*"vg/rm goes on with 2 legs"*) note "ok: $(said)" ;;
	*) fail "split said: $(said)" ;; esac
result split_cs "$((t1 - t0))"
lvs_note
[ "$(field segtype vg/copy)" = linear ] || fail "vg/copy is $(field segtype vg/copy), not linear"
case $(field devices vg/copy) in /dev/vdc*) ;; *) fail "vg/copy on $(field devices vg/copy), not on vdc" ;; esac
[ "$(field lv_attr vg/copy)" = "-wi-a-----" ] || fail "vg/copy attr $(field lv_attr vg/copy)"
case $(dmsetup table vg-copy) in "0 32768 linear "*) ;; *) fail "table of vg-copy: $(dmsetup table vg-copy)" ;; esac
dmsetup info vg-rm_rimage_2 >/dev/null 2>&1 && fail "vg-rm_rimage_2 still exists"
dmsetup ls | grep -q extracted && fail "extracted devices left: $(dmsetup ls | tr '\n' ' ')"
# The copy: the static data, and every block the writer last wrote before the split began and
# did not write again until it ended; the blocks written after it ended are not on it.
[ "$(md5_of /dev/vg/copy 0 8)" = "$sum" ] || fail "the split LV lacks the data written before the split"
awk -v t0=$t0 -v t1=$t1 '$3 < t0 { last[$1] = $2 } $3 >= t0 && $3 <= t1 { during[$1] = 1 }
	END { for (o in last) if (!(o in during)) print o, last[o] }' /tmp/w.log >/tmp/w.before
n=0; bad=0
while read -r off want; do
	got=$(dd if=/dev/vg/copy bs=65536 skip=$off count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || bad=$((bad + 1))
	n=$((n + 1))
done </tmp/w.before
result copy_blocks_checked "$n"
[ "$n" -gt 0 ] || fail "no block written before the split only"
[ "$bad" = 0 ] || fail "$bad of $n blocks written before the split read back otherwise from the split LV"
awk -v t1=$t1 '$3 > t1 { last[$1] = $2 } END { for (o in last) print o, last[o] }' /tmp/w.log >/tmp/w.after
same=0; m=0
while read -r off want; do
	got=$(dd if=/dev/vg/copy bs=65536 skip=$off count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	[ "$got" = "$want" ] && same=$((same + 1))
	m=$((m + 1))
done </tmp/w.after
result copy_blocks_after "$m"
[ "$m" -gt 0 ] || fail "the writer wrote nothing after the split"
[ "$same" = 0 ] || fail "$same blocks written after the split are on the split LV"
# The mirror goes on: two legs, new log copies with their legs, resynced, the writer's data.
st=$(status_of vg-rm)
result status_after_split "$st"
case $st in "2 "*" 2 AA "*) ;; *) fail "status after split: $st" ;; esac
wait_in_sync vg-rm 120
case $(status_of vg-rm) in "2 AA 32/32 2 AA healthy idle") ;; *) fail "status once resynced: $(status_of vg-rm)" ;; esac
[ "$(field devices vg/rm_rlog_0)" = "/dev/vda(0)" ] || note "rlog_0 on $(field devices vg/rm_rlog_0)"
case "$(field devices vg/rm_rimage_0) $(field devices vg/rm_rimage_1)" in "/dev/vda"*" /dev/vdb"*) ;;
	*) fail "legs of vg/rm on $(field devices vg/rm_rimage_0) $(field devices vg/rm_rimage_1)" ;; esac
case "$(field devices vg/rm_rlog_0) $(field devices vg/rm_rlog_1)" in "/dev/vda"*" /dev/vdb"*) ;;
	*) fail "log copies of vg/rm on $(field devices vg/rm_rlog_0) $(field devices vg/rm_rlog_1)" ;; esac
vwriter_verify /dev/vg/rm w || fail "the mirror lost the writer's data"
[ "$(md5_of /dev/vg/rm 0 8)" = "$sum" ] || fail "the mirror lost the static data"
[ "$(md5_of /dev/mapper/vg-rm_rimage_0 0 16)" = "$(md5_of /dev/mapper/vg-rm_rimage_1 0 16)" ] ||
	fail "legs of vg/rm differ after the resync"
lvm lvs -a --noheadings -o name vg 2>/dev/null | grep -q extracted && fail "extracted LVs left"
# Across deactivation the new log is used (no resync).
expect "lvchange -an rm" lvm lvchange -an vg/rm
expect "lvchange -ay rm" lvm lvchange -ay vg/rm
case $(status_of vg-rm) in "2 AA 32/32 2 AA healthy idle") ;; *) fail "status after -an/-ay: $(status_of vg-rm)" ;; esac

# Two legs left: the next split leaves vg/rm linear (as raid1 -m 1 -> linear), after the prompt.
out=$(lvm lvconvert --splitmirrors 1 --name copy2 vg/rm 2>&1 </dev/null) && fail "split to linear without -y succeeded"
note "without -y: $(echo "$out" | tr '\n' '|')"
[ "$(field segtype vg/rm)" = rtmirror ] || fail "vg/rm changed without -y"
new=$(write_random /dev/vg/rm 8 2)
run lvm lvconvert -y --splitmirrors 1 --name copy2 vg/rm || fail "split to linear: $(said)"
case $OUT in *"vg/rm is linear now"*) note "ok: $(said)" ;; *) fail "split to linear said: $(said)" ;; esac
lvs_note
[ "$(field segtype vg/rm)" = linear ] || fail "vg/rm is $(field segtype vg/rm), not linear"
[ "$(field segtype vg/copy2)" = linear ] || fail "vg/copy2 is $(field segtype vg/copy2)"
case "$(field devices vg/rm) $(field devices vg/copy2)" in "/dev/vda"*" /dev/vdb"*) ;;
	*) fail "vg/rm on $(field devices vg/rm), vg/copy2 on $(field devices vg/copy2)" ;; esac
case $(dmsetup table vg-rm) in "0 32768 linear "*) ;; *) fail "table of vg-rm: $(dmsetup table vg-rm)" ;; esac
for lv in rm copy2; do
	[ "$(md5_of /dev/vg/$lv 0 8)" = "$sum" ] || fail "vg/$lv lacks the static data"
	[ "$(md5_of /dev/vg/$lv 8 2)" = "$new" ] || fail "vg/$lv lacks the data written before the split"
done
left=$(lvm lvs -a --noheadings -o name vg 2>/dev/null | tr -d ' ' | sort | tr '\n' ' ')
[ "$left" = "copy copy2 rm " ] || fail "LVs after the split to linear: $left"
dmsetup ls | grep -q 'vg-rm_' && fail "sub-LV devices left: $(dmsetup ls | tr '\n' ' ')"
expect "lvremove" lvm lvremove -y vg/rm vg/copy vg/copy2

# A leg split off with --trackchanges is the one split off for good: it keeps its own moment.
expect "lvcreate rt" lvm lvcreate --type rtmirror -m 1 --regionsize 512k -L 16m -n rt vg /dev/vda /dev/vdb
a=$(write_random /dev/vg/rt 0 16)
wait_in_sync vg-rt 120
expect "split --trackchanges" lvm lvconvert --splitmirrors 1 --trackchanges vg/rt
b=$(write_random /dev/vg/rt 4 2)
run lvm lvconvert -y --splitmirrors 1 --name snap vg/rt /dev/vda && fail "split of the leg not split with --trackchanges succeeded"
note "other leg while one is tracked: $(said)"
run lvm lvconvert -y --splitmirrors 1 --name snap vg/rt || fail "split of the tracked leg: $(said)"
case $OUT in *"Leg 1 of vg/rt split off as vg/snap"*"--trackchanges"*"vg/rt is linear now"*) note "ok: $(said)" ;;
	*) fail "split of the tracked leg said: $(said)" ;; esac
[ "$(md5_of /dev/vg/snap 0 16)" = "$a" ] || fail "vg/snap does not hold the data of the --trackchanges split"
[ "$(md5_of /dev/vg/rt 4 2)" = "$b" ] || fail "vg/rt lost the data written after the --trackchanges split"
lvs_note
expect "lvremove" lvm lvremove -y vg/rt vg/snap
expect "vgremove" lvm vgremove -y vg
kernel_log_clean
