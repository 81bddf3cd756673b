#!/bin/sh
# Boot 0 of the root-on-lvm scenarios (qemu-tests/lvm_root.py), from the normal initramfs: one PV
# per storage subsystem (the GPT partitions rtm-pv-a and rtm-pv-b), VG rootvg, the rtmirror LV
# root (leg i and log copy i on PV i, 512 KiB regions, I/O timeout 2000 ms), the root file
# system image (disk d2, /dev/vdc) copied onto it, resynced, deactivated (clean shutdown of the
# mirror). The host then checks that both legs hold the image.
. /scenarios/lib.sh
lvm_setup
pa=$(part_named rtm-pv-a) && pb=$(part_named rtm-pv-b) || { fail "no partitions rtm-pv-a/b"; exit 1; }
result pvs "$pa $pb"
run lvm pvcreate -q -y "$pa" "$pb" || { fail "pvcreate: $(said)"; exit 1; }
run lvm vgcreate -q -s 1m $LVMROOT_VG "$pa" "$pb" || { fail "vgcreate: $(said)"; exit 1; }
run lvm lvcreate --type rtmirror -m 1 --mirrorlog mirrored --regionsize 512k --iotimeout 2000 \
	-L 64m -n $LVMROOT_LV $LVMROOT_VG "$pa" "$pb" || { fail "lvcreate: $(said)"; exit 1; }
result lvcreate "$(said)"
result table "$(table_of $LVMROOT_DM)"
run lvm lvs -a -o name,devices,seg_pe_ranges $LVMROOT_VG
result lvs "$(said)"
want=$(dd if=/dev/vdc bs=$MB count=64 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
dd if=/dev/vdc of=/dev/mapper/$LVMROOT_DM bs=$MB count=64 iflag=direct oflag=direct 2>/dev/null ||
	fail "copy of the root file system image onto the LV"
wait_in_sync $LVMROOT_DM 600
result status "$(status_of $LVMROOT_DM)"
[ "$(md5_of /dev/mapper/$LVMROOT_DM 0 64)" = "$want" ] || fail "the LV does not read back the image"
result image_md5 "$want"
run lvm vgchange -an $LVMROOT_VG || fail "vgchange -an: $(said)"
dmsetup ls | grep -v 'No devices found' | grep -q . && fail "devices left after vgchange -an: $(dmsetup ls | tr '\n' ' ')"
kernel_log_clean
