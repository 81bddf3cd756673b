#!/bin/sh
# Measurement (run.py lvm_activation_<N>, on demand; docs/lvm-two-layer.md), the paper's
# table 1: activation time of the two-layer layout (two_layer_lib.sh) with N blank dummy disks
# (/dev/dummy<n>, host disks N+4..), by how the devices lvm scans are chosen:
#   full         no restriction: every block device is scanned (scan_lvs = 1)
#   devicesfile  --devicesfile two_layer.devices (the 4 disks and the 4 lower LVs)
#   devices      --devices: the 4 disks for the lower VGs, the 4 lower LVs for the upper VG
# Activation = vgchange -ay lowerA lowerB, then vgchange -ay upper; timed with the host's clock
# (`host now`), 5 runs of each mode, interleaved. After each run, the reads the dummies'
# backends counted since the run started, and the reads the guest's block layer counted
# (/sys/block/*/stat), as "backend/guest" (run.py asserts 0 for the restricted modes).
. /scenarios/lib.sh
. /scenarios/two_layer_lib.sh
load_rtmirror
two_layer_conf
RUNS=5
n=0
for d in /dev/dummy*; do [ -b "$d" ] && n=$((n + 1)); done
result dummies $n
two_layer_create || exit 0
wait_in_sync upper-lv 300
wait_in_sync upper-raw 120

# Reads of the dummies counted by the guest's block layer (field 1 of /sys/block/<dev>/stat).
guest_dummy_reads() {
	local b sum=0 ser r
	for b in /sys/block/vd*; do
		ser=$(cat $b/serial 2>/dev/null)
		case $ser in x*) read -r r _ <$b/stat; sum=$((sum + r)) ;; esac
	done
	echo $sum
}
deactivate() {
	lvm_ok "vgchange -an upper" vgchange --devices $UPPER_DEVS -an upper &&
		lvm_ok "vgchange -an lower" vgchange --devices $LOWER_DEVS -an lowerA lowerB
	[ -z "$(dmsetup ls | grep -E '^(upper|lower)')" ] || fail "left active: $(dmsetup ls | tr '\n' ' ')"
}
activate() { # <mode>
	case $1 in
	full) lvm_ok "full: vgchange -ay lower" vgchange -ay lowerA lowerB &&
		lvm_ok "full: vgchange -ay upper" vgchange -ay upper ;;
	devicesfile) lvm_ok "devicesfile: vgchange -ay lower" vgchange --devicesfile $DEVFILE -ay lowerA lowerB &&
		lvm_ok "devicesfile: vgchange -ay upper" vgchange --devicesfile $DEVFILE -ay upper ;;
	devices) lvm_ok "devices: vgchange -ay lower" vgchange --devices $LOWER_DEVS -ay lowerA lowerB &&
		lvm_ok "devices: vgchange -ay upper" vgchange --devices $UPPER_DEVS -ay upper ;;
	esac
}
deactivate
run=0
while [ $run -lt $RUNS ]; do
	for mode in full devicesfile devices; do
		host reset-stats-range 4 $((n + 4))
		g0=$(guest_dummy_reads)
		host now; t0=${HOST_REPLY#ok }
		activate $mode || exit 0
		host now; t1=${HOST_REPLY#ok }
		g1=$(guest_dummy_reads)
		host stats-sum 4 $((n + 4))
		reads=$(echo "$HOST_REPLY" | tr ' ' '\n' | sed -n 's/^reads=//p')
		result activate_ms_$mode $((t1 - t0))
		result dummy_reads_$mode "${reads:-0}/$((g1 - g0))"
		for lv in upper-lv upper-raw lowerA-stripe lowerB-linear; do
			dmsetup info $lv >/dev/null 2>&1 || fail "$mode: $lv not active after activation"
		done
		case $(status_of upper-lv) in "2 AA "*" 2 AA healthy idle") ;; *) fail "$mode: upper/lv '$(status_of upper-lv)'" ;; esac
		deactivate || exit 0
	done
	run=$((run + 1))
done
kernel_log_clean
