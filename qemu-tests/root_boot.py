"""Root on rtmirror (docs/boot.md): the guest boots with its root file system (ext4) on an
rtmirror that the kernel creates from dm-mod.create= (target built into the kernel, no
initramfs), healthy and with one storage subsystem absent, failing or hanging.

Each storage subsystem is one disk with a GPT: partition "rtm-leg-<s>" (the leg, 64 MiB) and
"rtm-log-<s>" (the log copy, 1 MiB). The table names them with PARTLABEL=, which stays right
whichever disks are attached and in whatever order they are probed. A failing or hanging
subsystem fails or holds every request to its partitions; the partition table itself reads
(virtio-blk has no command timeout: a disk that hangs from its first request would hang the
kernel's partition scan at probe time, before any device-mapper target exists).

The host checks every outcome itself: the log copies' headers on the media, the legs' bytes,
and the files the guest wrote, read back from each leg's file system with debugfs.
"""
import re
import subprocess

from harness import FaultDisk, Guest
from harness.ext4_files import files_in_image, written_files
from harness.log_decode import decode_log

MiB = 1 << 20
LEG_START, LEG_SIZE = 1 * MiB, 64 * MiB
LOG_START, LOG_SIZE = 65 * MiB, 1 * MiB
DISK_SIZE = 67 * MiB            # the last MiB holds the backup GPT
DATA_RANGE = (LEG_START, LOG_START + LOG_SIZE)
IO_TIMEOUT_MS = 2000
LOG_UUID = "5eb0a7c0ffee4d2a9c3b1e0f00d1ce55"
TABLE = ("0 %d rtmirror 2 PARTLABEL=rtm-leg-a PARTLABEL=rtm-leg-b "
         "2 PARTLABEL=rtm-log-a PARTLABEL=rtm-log-b "
         "8 region_size 1024 io_timeout_ms %d nosync log_uuid %s allow_missing"
         % (LEG_SIZE // 512, IO_TIMEOUT_MS, LOG_UUID))


class Ctx:
    """What a root-boot scenario needs from run.py."""

    def __init__(self, args, work, seed, power_cut_backends):
        self.args = args
        self.work = work
        self.seed = seed
        self.power_cut_backends = power_cut_backends
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def make_disks(ctx):
    """Both subsystems' disks: GPT, the root file system image on both legs, blank logs."""
    disks = []
    for s in ("a", "b"):
        d = FaultDisk(ctx.work, "d%d" % len(disks), DISK_SIZE)
        script = ("label: gpt\nstart=%d, size=%d, name=rtm-leg-%s\nstart=%d, size=%d, name=rtm-log-%s\n"
                  % (LEG_START // 512, LEG_SIZE // 512, s, LOG_START // 512, LOG_SIZE // 512, s))
        subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", d.file],
                       input=script.encode(), check=True, stdout=subprocess.DEVNULL)
        with open(ctx.args.rootfs, "rb") as src, open(d.file, "r+b") as dst:
            image = src.read()
            if len(image) != LEG_SIZE:
                raise RuntimeError("root file system image is %d bytes, not %d"
                                   % (len(image), LEG_SIZE))
            dst.seek(LEG_START)
            dst.write(image)
        disks.append(d)
    return disks


def boot(ctx, disks, script, errors, expect_kill=False, extra=""):
    """Boots the guest from the root mirror with `disks` attached (None: not attached)."""
    append = ("rtm.scenario=%s loglevel=4 root=/dev/dm-0 rootfstype=ext4 rw init=/init "
              "dm-mod.create=\"root,,,rw,%s\" %s %s" % (script, TABLE, extra, ctx.args.append))
    g = Guest(ctx.args.arch, ctx.args.kernel, None, disks, append=append.strip(),
              timeout_s=ctx.args.timeout, workdir=ctx.work, name=script, echo=ctx.args.verbose)
    res = g.run()
    errors += ["guest %s: %s" % (script, f) for f in res.fails]
    if res.timed_out:
        errors.append("%s timed out after %ss" % (script, ctx.args.timeout))
    if not res.done and not (expect_kill and res.killed):
        errors.append("%s did not finish (no @@DONE)" % script)
    if res.result("exit") not in ("0", None):
        errors.append("%s exited %s" % (script, res.result("exit")))
    errors += ["kernel (%s): %s" % (script, l) for l in res.kernel_problems()]
    return res


def leg_bytes(disk):
    return disk.read_backing(LEG_START, LEG_SIZE)


def log_copy(disk):
    return decode_log(disk.read_backing(LOG_START, LOG_SIZE))


def files_on_leg(ctx, disk, names):
    """md5 of each /data/<name> in the file system on `disk`'s leg (None: not found)."""
    return files_in_image(ctx.work, leg_bytes(disk), names)


def check_files(ctx, res_seen, wanted, disks, errors):
    """Every file in `wanted` ({name: md5}) was seen by the boot `res_seen` and is on every
    leg's file system with that content; the legs are identical."""
    for name, md5 in wanted.items():
        seen = res_seen.result("seen_" + name)
        if seen != md5:
            errors.append("file %s: the later boot read %s, %s was written" % (name, seen, md5))
    for d in disks:
        got = files_on_leg(ctx, d, list(wanted))
        for name, md5 in wanted.items():
            if got[name] != md5:
                errors.append("%s's leg: /data/%s is %s, %s was written" % (d.name, name, got[name], md5))
    if leg_bytes(disks[0]) != leg_bytes(disks[1]):
        errors.append("the legs differ")


def boot_time(ctx, label, res):
    t = res.result("boot_s")
    if t:
        ctx.note("%s boot: init started %.2f s after the kernel" % (label, float(t)))
    return float(t) if t else None


def check_resync(res, want, errors):
    """The resync that the boot `res` reported (guest result `resync`, the kernel's "resync
    done" line) copied only the regions written while the leg was out (`want` "differential":
    at least one, not all) or every region ("full", after a leg the log knows nothing of)."""
    line = res.result("resync") or ""
    m = re.search(r"resync done: (\d+) regions copied", line)
    st = (res.result("status_after") or "").split()
    total = st[2].split("/")[-1] if len(st) > 2 else ""
    if not m or not total.isdigit():
        errors.append("no resync report (resync %r, status %r)" % (line, res.result("status_after")))
        return
    copied, total = int(m.group(1)), int(total)
    if want == "full" and copied != total:
        errors.append("full resync expected: %d of %d regions copied" % (copied, total))
    if want == "differential" and not 0 < copied < total:
        errors.append("differential resync expected: %d of %d regions copied" % (copied, total))


# ------------------------------------------------------------------------------- scenarios

def root_healthy(ctx, errors):
    """Case 1: boot, write and fsync, clean shutdown (recorded in both log copies), boot again."""
    disks = make_disks(ctx)
    r1 = boot(ctx, disks, "root_healthy_1", errors)
    if errors:
        return disks
    boot_time(ctx, "healthy", r1)
    for d in disks:
        c = log_copy(d)
        if "error" in c or not c.get("clean"):
            errors.append("%s's log copy after the clean shutdown: %s" % (d.name, c))
    r2 = boot(ctx, disks, "root_healthy_2", errors)
    if errors:
        return disks
    if "clean shutdown" not in (r2.result("activation") or ""):
        errors.append("the second activation did not find the clean shutdown")
    first = written_files(r1)
    wanted = dict(first)
    wanted.update(written_files(r2))
    if len(first) != 4 or len(wanted) != 6:
        errors.append("the guests reported %d and %d files written, expected 4 and 2"
                      % (len(first), len(wanted) - len(first)))
    # The second boot read the first boot's files; both legs hold every file.
    check_files(ctx, r2, first, disks, errors)
    for d in disks:
        got = files_on_leg(ctx, d, list(wanted))
        for name, md5 in wanted.items():
            if got[name] != md5:
                errors.append("%s's leg: /data/%s is %s, %s was written" % (d.name, name, got[name], md5))
    return disks


def degraded_then_back(ctx, errors, fault, label):
    """Cases 2 and 3 for an error or a hang of subsystem b from the first request: the system
    boots read-write with leg 1 out of service, writes, then the subsystem comes back in the
    same boot and the leg resyncs (the guest script knows how)."""
    disks = make_disks(ctx)
    disks[1].fault_range(*DATA_RANGE)
    if fault == "error":
        disks[1].error("all")
    else:
        disks[1].hang("all")
    r1 = boot(ctx, disks, "root_%s_1" % label, errors)
    if errors:
        return disks
    boot_time(ctx, label, r1)
    wanted = written_files(r1)
    if len(wanted) < 4:
        errors.append("the guest reported %d files written, expected 4" % len(wanted))
    check_files(ctx, r1, wanted, disks, errors)
    # An Inactive leg's regions are unknown; a Degraded leg's are tracked.
    check_resync(r1, "full" if fault == "error" else "differential", errors)
    return disks


def root_eio(ctx, errors):
    return degraded_then_back(ctx, errors, "error", "eio")


def root_hang(ctx, errors):
    return degraded_then_back(ctx, errors, "hang", "hang")


def root_absent(ctx, errors):
    """Cases 2 and 3 with subsystem b's disk not attached: boot degraded, write; boot again with
    it attached: the leg resyncs from leg 0 (only leg 0 has the writes)."""
    disks = make_disks(ctx)
    r1 = boot(ctx, [disks[0], None], "root_degraded_1", errors, extra="rtm.outleg=1")
    if errors:
        return disks
    boot_time(ctx, "absent", r1)
    r2 = boot(ctx, disks, "root_rejoin_2", errors)
    if errors:
        return disks
    check_files(ctx, r2, written_files(r1), disks, errors)
    # A leg missing at activation may be a replacement disk (docs/boot.md).
    check_resync(r2, "full", errors)
    return disks


def root_stale_primary(ctx, errors):
    """Case 6: boot with the primary's subsystem (a) absent and write; boot with both: the log
    says leg 0 is stale, so nothing is read from it until it is resynced from leg 1."""
    disks = make_disks(ctx)
    r1 = boot(ctx, [None, disks[1]], "root_degraded_1", errors, extra="rtm.outleg=0")
    if errors:
        return disks
    r2 = boot(ctx, disks, "root_rejoin_2", errors)
    if errors:
        return disks
    if "source leg 1" not in (r2.result("activation") or ""):
        errors.append("the second activation did not take leg 1 as the resync source")
    check_files(ctx, r2, written_files(r1), disks, errors)
    check_resync(r2, "full", errors)
    return disks


def root_powercut(ctx, errors):
    """Case 4: subsystem b hangs from the start, the guest writes and fsyncs, the power fails
    (every disk loses a seeded part of its unflushed cache); boot again with both: leg 0 is the
    source, every fsynced file is there, the legs end identical."""
    disks = make_disks(ctx)
    for d in disks:
        d.cache(True)
    disks[1].fault_range(*DATA_RANGE)
    disks[1].hang("all")
    r1 = boot(ctx, disks, "root_powercut_1", errors, expect_kill=True)
    if errors:
        return disks
    if not r1.killed:
        errors.append("the first boot was not cut off by a power cut")
        return disks
    ctx.power_cut_backends(disks, ("random", "random"), ctx.seed, 1)
    for d in disks:
        d.cache(False)
    disks[1].heal()
    disks[1].fault_range()
    r2 = boot(ctx, disks, "root_rejoin_2", errors)
    if errors:
        return disks
    if "source leg 0" not in (r2.result("activation") or ""):
        errors.append("the second activation did not take leg 0 as the resync source")
    check_files(ctx, r2, written_files(r1), disks, errors)
    # Leg 1 timed out (D) before the cut: the log tracked its regions across the cut.
    check_resync(r2, "differential", errors)
    return disks


def root_untrusted(ctx, errors):
    """Case 6, no leg can be trusted: both log copies corrupt. The kernel must not pick a leg:
    the root mirror fails every I/O, the boot stops (no root file system) with rtmirror's message
    saying what the operator can do, and nothing is written to either leg."""
    disks = make_disks(ctx)
    r0 = boot(ctx, disks, "root_healthy_1", errors)
    if errors:
        return disks
    before = [leg_bytes(d) for d in disks]
    for d in disks:
        d.write_backing(LOG_START, b"\xa5" * (16 * 4096))
        d.reset_stats()
    append_errors = []
    r = boot(ctx, disks, "root_healthy_2", append_errors, expect_kill=True)
    if r.done:
        errors.append("the guest booted from a mirror whose log was lost")
    if "trust <leg>" not in r.console:
        errors.append("no rtmirror message naming 'trust <leg>' on the console")
    if not any("Kernel panic" in l and "root" in l.lower() for l in r.lines()):
        errors.append("the boot did not stop at mounting the root file system")
    for d, b in zip(disks, before):
        if leg_bytes(d) != b:
            errors.append("%s's leg was written although no leg could be trusted" % d.name)
    del r0
    return disks


# name: (function(ctx, errors) -> disks, architectures)
ALL = ("x86_64", "s390x")
ROOT_SCENARIOS = {
    "root_healthy": (root_healthy, ALL),
    "root_absent": (root_absent, ALL),
    "root_eio": (root_eio, ALL),
    "root_hang": (root_hang, ALL),
    "root_powercut": (root_powercut, ALL),
    "root_stale_primary": (root_stale_primary, ALL),
    "root_untrusted": (root_untrusted, ALL),
}


def run_root(name, args, work, seed, power_cut_backends):
    """Runs root-boot scenario `name`; returns (errors, notes)."""
    ctx = Ctx(args, work, seed, power_cut_backends)
    errors = []
    disks = []
    try:
        disks = ROOT_SCENARIOS[name][0](ctx, errors) or []
    finally:
        for d in disks:
            d.stop()
    return errors, ctx.notes
