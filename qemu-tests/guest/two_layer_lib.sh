# The two-layer LVM layout of docs/lvm-two-layer.md (the paper's figure 1), sourced by
# lvm_two_layer.sh and lvm_activation.sh after lib.sh. Not a scenario of its own.
#
#   subsystem A: vda vdb -> VG lowerA: stripe (2 stripes, 112 MiB), linear (24 MiB, on vdb)
#   subsystem B: vdc vdd -> VG lowerB: stripe, linear (on vdd)
#   VG upper, PVs: the four lower LVs
#     upper/lv  rtmirror, leg 0 + log copy 0 on lowerA/stripe, leg 1 + log copy 1 on
#               lowerB/stripe, 96 MiB, 512 KiB regions, io_timeout_ms 2000 (ext4)
#     upper/raw rtmirror, leg i + log copy i on lower<i>/linear, 16 MiB (a raw device)
LOWER_DEVS=/dev/vda,/dev/vdb,/dev/vdc,/dev/vdd
UPPER_DEVS=/dev/lowerA/stripe,/dev/lowerA/linear,/dev/lowerB/stripe,/dev/lowerB/linear
# The devices file of the layout: the eight devices, lower and upper (lvmdevices, below).
DEVFILE=two_layer.devices

two_layer_conf() {
	[ -x /sbin/lvm ] || { fail "no /sbin/lvm in the guest image (scripts/build-initramfs.sh)"; exit 1; }
	mkdir -p /run/lock/lvm /run/lvm /etc/lvm/devices
	# PVs on LVs: lvm skips LVs when it scans unless scan_lvs = 1.
	sed -i 's/scan_lvs = 0/scan_lvs = 1/' /etc/lvm/lvm.conf
	grep -q 'scan_lvs = 1' /etc/lvm/lvm.conf || { fail "scan_lvs = 1 not set in lvm.conf"; exit 1; }
}

# Run an lvm command; on failure report it with its output.
lvm_ok() { # <description> <lvm command words...>
	local what=$1 out; shift
	if out=$(lvm "$@" 2>&1); then
		return 0
	fi
	fail "$what: lvm $*: $(echo "$out" | tail -n 5 | sed 's/WARNING:/warning:/g' | tr '\n' '|')"
	return 1
}

two_layer_create() {
	lvm_ok "pvcreate lower" pvcreate -q -y /dev/vda /dev/vdb /dev/vdc /dev/vdd || return 1
	lvm_ok "vgcreate lowerA" vgcreate -q -s 1m lowerA /dev/vda /dev/vdb || return 1
	lvm_ok "vgcreate lowerB" vgcreate -q -s 1m lowerB /dev/vdc /dev/vdd || return 1
	for s in A:vdb B:vdd; do
		lvm_ok "lvcreate lower${s%:*}/stripe" lvcreate -q -y -i 2 -I 64k -L 112m -n stripe "lower${s%:*}" || return 1
		lvm_ok "lvcreate lower${s%:*}/linear" lvcreate -q -y -L 24m -n linear "lower${s%:*}" "/dev/${s#*:}" || return 1
	done
	lvm_ok "pvcreate upper" pvcreate -q -y $(echo $UPPER_DEVS | tr ',' ' ') || return 1
	lvm_ok "vgcreate upper" vgcreate -q -s 1m upper $(echo $UPPER_DEVS | tr ',' ' ') || return 1
	lvm_ok "lvcreate upper/lv" lvcreate -q --type rtmirror -m 1 --mirrorlog mirrored --iotimeout 2000 \
		--regionsize 512k -L 96m -n lv upper /dev/lowerA/stripe /dev/lowerB/stripe || return 1
	lvm_ok "lvcreate upper/raw" lvcreate -q --type rtmirror -m 1 --mirrorlog mirrored --iotimeout 2000 \
		-L 16m -n raw upper /dev/lowerA/linear /dev/lowerB/linear || return 1
	# The devices file: what the cluster scripts restrict lvm to (lvmdevices creates it).
	local d
	for d in $(echo $LOWER_DEVS,$UPPER_DEVS | tr ',' ' '); do
		lvm_ok "lvmdevices --adddev $d" lvmdevices --devicesfile $DEVFILE --adddev "$d" || return 1
	done
}

# The dm device of each sub-LV must sit on the lower LV of its subsystem: leg i and log copy i
# of upper/<lv> on lower<A|B>/<lower>.
two_layer_check_placement() { # <lv> <lower lv>
	local i s sub under want
	for i in 0 1; do
		s=$(echo AB | cut -c$((i + 1)))
		want=$(devnum_of mapper/lower$s-$2)
		for sub in rimage rlog; do
			under=$(dmsetup table "upper-$1_${sub}_$i" | awk '{ print $4 }')
			[ "$under" = "$want" ] || fail "upper-$1_${sub}_$i on $under, not on lower$s/$2 ($want): $(dmsetup table upper-$1_${sub}_$i)"
		done
	done
}

# The devices of the layout, active or not.
two_layer_active() { dmsetup info upper-lv >/dev/null 2>&1; }
