"""Root on an lvm rtmirror LV, activated by lvm from an initramfs (docs/boot.md, "Root on an lvm
rtmirror LV"): issue 10 case 5, the root-boot cases 1-4 of root_boot.py with lvm instead of
dm-mod.create=.

Each storage subsystem is one disk with a GPT and one partition "rtm-pv-<s>", an lvm PV. Boot 0
(lvmroot_setup, from the ordinary initramfs; once per run, the images are copied for each
scenario) creates VG rootvg and the rtmirror LV root on them (leg i and log copy i on PV i) and
copies the root file system image (--rootfs) onto it. Later boots use the same initramfs with
rtm.lvmroot=rootvg/root: its /init runs qemu-tests/guest/initramfs_lvm_root.sh, which probes the
PV partitions with a bounded read, activates the VG with lvm restricted to the PVs that
answered, mounts the LV and switch_roots to it; the root file system's /init runs the boot's
scenario script. A failing or hanging subsystem fails or holds every request to its partition
(the GPT itself reads, as in root_boot.py).

The host checks every outcome itself: it finds the legs and log copies on each disk from the
lvm label and metadata on the media (harness/lvm_meta.py), decodes the log copies, compares the
legs and reads the files the guest wrote back from each leg's file system with debugfs.
"""
import os
import shutil
import subprocess

from harness import FaultDisk, Guest
from harness.ext4_files import files_in_image, written_files
from harness.log_decode import decode_log
from harness.lvm_meta import lv_ranges, read_pv
from root_boot import check_resync

MiB = 1 << 20
PART_START, PART_SIZE = 1 * MiB, 72 * MiB
DISK_SIZE = 74 * MiB            # the last MiB holds the backup GPT
PART_RANGE = (PART_START, PART_START + PART_SIZE)
ROOTFS_SIZE = 64 * MiB
IO_TIMEOUT_MS = 2000            # lvcreate --iotimeout in lvmroot_setup.sh
PV_WAIT_MS = IO_TIMEOUT_MS      # how long the initramfs waits for a PV to answer its probe
LV = "root"

# (arch, kernel, initrd, rootfs) -> (image paths or None, errors): boot 0, once per run.
_SETUP = {}


# ------------------------------------------------------------------------------- the media

def pv_of(disk):
    return read_pv(lambda off, n: disk.read_backing(PART_START + off, n))


def sub_lv_bytes(disk, name):
    """The bytes of sub-LV `name` (on this disk's PV), read from the backing file."""
    pv = pv_of(disk)
    return b"".join(disk.read_backing(PART_START + off, n) for off, n in lv_ranges(pv, name))


def leg_bytes(disk, leg):
    return sub_lv_bytes(disk, "%s_rimage_%d" % (LV, leg))


def log_copy(disk, copy):
    return decode_log(sub_lv_bytes(disk, "%s_rlog_%d" % (LV, copy)))


def check_files(ctx, res_seen, wanted, disks, errors):
    """Every file in `wanted` ({name: md5}) was seen by the boot `res_seen` (None: not checked)
    and is in both legs' file systems with that content; the legs are identical."""
    if res_seen is not None:
        for name, md5 in wanted.items():
            seen = res_seen.result("seen_" + name)
            if seen != md5:
                errors.append("file %s: the later boot read %s, %s was written" % (name, seen, md5))
    legs = [leg_bytes(d, i) for i, d in enumerate(disks)]
    for i, leg in enumerate(legs):
        got = files_in_image(ctx.work, leg, list(wanted))
        for name, md5 in wanted.items():
            if got[name] != md5:
                errors.append("leg %d: /data/%s is %s, %s was written" % (i, name, got[name], md5))
    if legs[0] != legs[1]:
        errors.append("the legs differ")


def check_clean_logs(disks, errors, when):
    for i, d in enumerate(disks):
        c = log_copy(d, i)
        if "error" in c or not c.get("clean"):
            errors.append("log copy %d %s: %s" % (i, when, c))


# ------------------------------------------------------------------------------- boots

def boot(ctx, disks, script, errors, expect_kill=False, extra="", lvmroot=True):
    """Boots the guest with the initramfs and `disks` attached (None: not attached); with
    lvmroot, the initramfs activates rootvg/root and switches to it."""
    append = "rtm.scenario=%s loglevel=4 %s %s %s" % (
        script, "rtm.lvmroot=rootvg/%s rtm.pvlabel=rtm-pv- rtm.pvwait_ms=%d" % (LV, PV_WAIT_MS)
        if lvmroot else "", extra, ctx.args.append)
    g = Guest(ctx.args.arch, ctx.args.kernel, ctx.args.initrd, disks, append=" ".join(append.split()),
              timeout_s=ctx.args.timeout, workdir=ctx.work, name=script, echo=ctx.args.verbose)
    res = g.run()
    errors += ["guest %s: %s" % (script, f) for f in res.fails]
    if res.timed_out:
        errors.append("%s timed out after %ss" % (script, ctx.args.timeout))
    if not res.done and not (expect_kill and res.killed):
        errors.append("%s did not finish (no @@DONE)" % script)
    if res.result("exit") not in ("0", None):
        errors.append("%s exited %s" % (script, res.result("exit")))
    if lvmroot and not res.result("switch_root_s") and not errors:
        errors.append("%s: the initramfs did not switch to the LV" % script)
    errors += ["kernel (%s): %s" % (script, l) for l in res.kernel_problems()]
    return res


def new_disk(work, name):
    """A subsystem's disk: GPT with the PV partition rtm-pv-<a|b> (d0: a, d1: b)."""
    d = FaultDisk(work, name, DISK_SIZE)
    script = "label: gpt\nstart=%d, size=%d, name=rtm-pv-%s\n" % (
        PART_START // 512, PART_SIZE // 512, "ab"[int(name[1:])])
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", d.file],
                   input=script.encode(), check=True, stdout=subprocess.DEVNULL)
    return d


def setup(ctx):
    """Boot 0 (lvmroot_setup.sh), once per run: returns (paths of the two disk images, errors)."""
    key = (ctx.args.arch, ctx.args.kernel, ctx.args.initrd, ctx.args.rootfs)
    if key in _SETUP:
        return _SETUP[key]
    work = os.path.join(os.path.dirname(ctx.work), "lvmroot-setup")
    os.makedirs(work, exist_ok=True)
    errors = []
    disks = []
    try:
        disks = [new_disk(work, "d0"), new_disk(work, "d1")]
        image = os.path.join(work, "rootfs.img")
        shutil.copyfile(ctx.args.rootfs, image)
        if os.path.getsize(image) != ROOTFS_SIZE:
            errors.append("root file system image is %d bytes, not %d"
                          % (os.path.getsize(image), ROOTFS_SIZE))
        else:
            disks.append(FaultDisk(work, "d2", file=image, log=False))
            sctx = _SubCtx(ctx, work)
            res = boot(sctx, disks, "lvmroot_setup", errors, lvmroot=False)
            ctx.note("setup: %s; lvs %s" % (res.result("table"), res.result("lvs")))
        if not errors:
            with open(image, "rb") as f:
                want = f.read()
            for i, d in enumerate(disks[:2]):
                if leg_bytes(d, i) != want:
                    errors.append("setup: leg %d does not hold the root file system image" % i)
            check_clean_logs(disks[:2], errors, "after vgchange -an")
    except Exception as e:      # noqa: BLE001 (reported, and every scenario fails on it)
        errors.append("setup: %r" % e)
    finally:
        for d in disks:
            d.stop()
    out = ([d.file for d in disks[:2]] if not errors else None, errors)
    _SETUP[key] = out
    return out


class _SubCtx:
    """ctx with another work directory (boot 0's)."""

    def __init__(self, ctx, work):
        self.args, self.work = ctx.args, work


def make_disks(ctx, errors):
    """Both subsystems' disks as boot 0 left them (copies), or None when boot 0 failed."""
    files, setup_errors = setup(ctx)
    if files is None:
        errors.extend(setup_errors or ["setup failed"])
        return None
    disks = []
    for i, f in enumerate(files):
        shutil.copyfile(f, os.path.join(ctx.work, "d%d.img" % i))
        disks.append(FaultDisk(ctx.work, "d%d" % i))
    return disks


def boot_time(ctx, label, res):
    t = res.result("boot_s")
    if not t:
        return
    parts = ["initramfs started %s s" % res.result("initramfs_s")] if res.result("initramfs_s") else []
    for key, what in (("pv_probe_cs", "PV probe %.2f s"), ("vgchange_cs", "vgchange %.2f s")):
        if res.result(key):
            parts.append(what % (int(res.result(key)) / 100.0))
    ctx.note("lvm %s boot: the root's init started %.2f s after the kernel (%s; probe: %s)"
             % (label, float(t), ", ".join(parts), res.result("pv_probe")))


def expect_source(res, leg, errors, which="second"):
    """The boot's activation took `leg` as the resync source."""
    if "source leg %d" % leg not in (res.result("activation") or ""):
        errors.append("the %s activation did not take leg %d as the resync source: %s"
                      % (which, leg, res.result("activation")))


def files_of(res, count, errors):
    """{name: md5} of the `count` files boot `res` wrote (root_write_files)."""
    wanted = written_files(res)
    if len(wanted) != count:
        errors.append("the guest reported %d files written, expected %d" % (len(wanted), count))
    return wanted


# ------------------------------------------------------------------------------- scenarios

def lvmroot_healthy(ctx, errors):
    """Case 1: boot through the initramfs, write and fsync, clean shutdown (recorded in both log
    copies), boot again (the activation finds the clean shutdown)."""
    disks = make_disks(ctx, errors)
    if disks is None:
        return []
    r1 = boot(ctx, disks, "lvmroot_healthy_1", errors)
    if errors:
        return disks
    boot_time(ctx, "healthy", r1)
    if "clean shutdown" not in (r1.result("activation") or ""):
        errors.append("the first activation did not find boot 0's clean shutdown: %s"
                      % r1.result("activation"))
    check_clean_logs(disks, errors, "after the clean shutdown")
    r2 = boot(ctx, disks, "lvmroot_healthy_2", errors)
    if errors:
        return disks
    if "clean shutdown" not in (r2.result("activation") or ""):
        errors.append("the second activation did not find the clean shutdown: %s"
                      % r2.result("activation"))
    first = written_files(r1)
    wanted = dict(first)
    wanted.update(written_files(r2))
    if len(first) != 4 or len(wanted) != 6:
        errors.append("the guests reported %d and %d files written, expected 4 and 2"
                      % (len(first), len(wanted) - len(first)))
    check_files(ctx, r2, first, disks, errors)
    check_files(ctx, None, wanted, disks, errors)
    check_clean_logs(disks, errors, "after the second clean shutdown")
    return disks


def degraded_then_back(ctx, errors, fault, label):
    """Cases 2 and 3 for subsystem b failing (EIO) or hanging from its first request: the
    initramfs leaves its PV out, the system runs read-write with leg 1 missing and writes; then
    the subsystem comes back in the same boot, lvchange --refresh rejoins leg 1 and log copy 1,
    the resync makes the legs identical."""
    disks = make_disks(ctx, errors)
    if disks is None:
        return []
    disks[1].fault_range(*PART_RANGE)
    if fault == "error":
        disks[1].error("all")
    else:
        disks[1].hang("all")
    r1 = boot(ctx, disks, "lvmroot_degraded_1", errors, extra="rtm.outleg=1 rtm.heal=1")
    if errors:
        return disks
    boot_time(ctx, label, r1)
    probe = r1.result("pv_probe") or ""
    want = "error" if fault == "error" else "no_answer"
    if probe.count(":ok") != 1 or probe.count(":" + want) != 1:
        errors.append("the initramfs's probe: %r (one PV ok, one %s expected)" % (probe, want))
    wanted = files_of(r1, 4, errors)
    check_files(ctx, r1, wanted, disks, errors)
    # The PV was left out at activation: leg 1 is missing (M), rejoined with a full resync
    # (docs/boot.md: the target cannot tell the same disk from a replacement).
    check_resync(r1, "full", errors)
    check_clean_logs(disks, errors, "after the clean shutdown")
    return disks


def lvmroot_eio(ctx, errors):
    return degraded_then_back(ctx, errors, "error", "eio")


def lvmroot_hang(ctx, errors):
    return degraded_then_back(ctx, errors, "hang", "hang")


def lvmroot_absent(ctx, errors):
    """Cases 2 and 3 with subsystem b's disk not attached: boot degraded, write; boot again with
    it attached: lvchange --refresh rejoins leg 1, which resyncs from leg 0."""
    disks = make_disks(ctx, errors)
    if disks is None:
        return []
    before = leg_bytes(disks[1], 1)
    r1 = boot(ctx, [disks[0], None], "lvmroot_degraded_1", errors, extra="rtm.outleg=1")
    if errors:
        return disks
    boot_time(ctx, "absent", r1)
    if leg_bytes(disks[1], 1) != before:
        errors.append("leg 1 changed while its disk was not attached")
    r2 = boot(ctx, disks, "lvmroot_rejoin_2", errors)
    if errors:
        return disks
    expect_source(r2, 0, errors)
    wanted = files_of(r1, 4, errors)
    check_files(ctx, r2, wanted, disks, errors)
    check_resync(r2, "full", errors)
    check_clean_logs(disks, errors, "after the clean shutdown")
    return disks


def lvmroot_stale_primary(ctx, errors):
    """Subsystem a (leg 0, the primary) absent: boot from leg 1 and write; boot with both: the log
    says leg 0 is stale, leg 1 is the source, the files read back."""
    disks = make_disks(ctx, errors)
    if disks is None:
        return []
    r1 = boot(ctx, [None, disks[1]], "lvmroot_degraded_1", errors, extra="rtm.outleg=0")
    if errors:
        return disks
    r2 = boot(ctx, disks, "lvmroot_rejoin_2", errors)
    if errors:
        return disks
    expect_source(r2, 1, errors)
    check_files(ctx, r2, written_files(r1), disks, errors)
    check_resync(r2, "full", errors)
    return disks


def lvmroot_powercut(ctx, errors):
    """Case 4: subsystem b hangs from the start (its PV left out), the guest writes and fsyncs
    while degraded, the power fails (every disk loses a seeded part of its unflushed cache);
    boot with both: leg 0 is the source, never the stale leg 1; every fsynced file is there and
    the legs end identical."""
    disks = make_disks(ctx, errors)
    if disks is None:
        return []
    stale = leg_bytes(disks[1], 1)
    for d in disks:
        d.cache(True)
    disks[1].fault_range(*PART_RANGE)
    disks[1].hang("all")
    r1 = boot(ctx, disks, "lvmroot_powercut_1", errors, expect_kill=True)
    if errors:
        return disks
    if not r1.killed:
        errors.append("the first boot was not cut off by a power cut")
        return disks
    boot_time(ctx, "hang (power cut)", r1)
    ctx.power_cut_backends(disks, ("random", "random"), ctx.seed, 1)
    for d in disks:
        d.cache(False)
    disks[1].heal()
    disks[1].fault_range()
    wanted = files_of(r1, 4, errors)
    # The premise: leg 1 is stale (not written in the degraded boot), leg 0 has the files.
    if leg_bytes(disks[1], 1) != stale:
        errors.append("leg 1 was written during the degraded boot")
    on0 = files_in_image(ctx.work, leg_bytes(disks[0], 0), list(wanted))
    missing = [n for n, md5 in wanted.items() if on0[n] != md5]
    if missing:
        errors.append("leg 0 lacks files fsynced before the power cut: %s" % missing)
    r2 = boot(ctx, disks, "lvmroot_rejoin_2", errors)
    if errors:
        return disks
    expect_source(r2, 0, errors)
    check_files(ctx, r2, wanted, disks, errors)
    check_resync(r2, "full", errors)
    return disks


# name: (function(ctx, errors) -> disks, architectures); run.py adds them to ROOT_SCENARIOS.
LVM_ROOT_SCENARIOS = {
    "lvmroot_healthy": (lvmroot_healthy, ("x86_64", "s390x")),
    "lvmroot_absent": (lvmroot_absent, ("x86_64", "s390x")),
    "lvmroot_eio": (lvmroot_eio, ("x86_64", "s390x")),
    "lvmroot_hang": (lvmroot_hang, ("x86_64", "s390x")),
    "lvmroot_powercut": (lvmroot_powercut, ("x86_64", "s390x")),
    "lvmroot_stale_primary": (lvmroot_stale_primary, ("x86_64", "s390x")),
}
