#!/usr/bin/env python3
"""Run the QEMU scenarios for one architecture and check them from the host.

Each scenario boots the guest with its own fault-injecting disks, runs
qemu-tests/guest/<name>.sh inside, and then the host checks what the guest
reported (@@RESULT/@@FAIL), the console for kernel warnings, and the backing
files and backend counters directly.

usage: run.py --arch x86_64 --kernel bzImage --initrd initramfs.cpio.gz [--only a,b] [--keep]
Ends with a line "N passed, N failed".
"""
import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultDisk, Guest, parse_stats, stop_all  # noqa: E402

MiB = 1 << 20


def md5_backing(disk, offset, length):
    return hashlib.md5(disk.read_backing(offset, length)).hexdigest()


def files_identical(a, b):
    with open(a.file, "rb") as fa, open(b.file, "rb") as fb:
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if x != y:
                return False
            if not x:
                return True


def check_pattern(res, disks, errors):
    want = res.result("pattern_md5")
    off = int(res.result("pattern_offset_mib", "0")) * MiB
    size = int(res.result("pattern_mib", "0")) * MiB
    if not want or not size:
        errors.append("guest reported no pattern")
        return
    for d in disks:
        got = md5_backing(d, off, size)
        if got != want:
            errors.append("%s backing file at %d: md5 %s != %s" % (d.name, off, got, want))
    small = res.result("small_md5")
    small_off = int(res.result("small_offset_bytes", "0"))
    for d in disks:
        if md5_backing(d, small_off, 3 * 4096) != small:
            errors.append("%s: small O_DIRECT write missing at byte %d" % (d.name, small_off))
    if not files_identical(disks[0], disks[1]):
        errors.append("legs' backing files differ")
    if res.result("discard_max_bytes") is not None:
        if res.result("discard_max_bytes") == "0":
            errors.append("rtmirror does not offer discard although both legs do")
        for i in (0, 1):
            st = parse_stats(res.result("discard_stats_%d" % i, ""))
            if st.get("trims", 0) < 1:
                errors.append("leg %d's backend saw no discard: %s" % (i, st))
        for d in disks:
            if d.read_backing(32 * MiB, MiB) != bytes(MiB):
                errors.append("%s: discarded range does not read as zeroes" % d.name)
    for i, d in enumerate(disks):
        st = parse_stats(res.result("data_stats_%d" % i, "")) or d.stats()
        if st.get("writes", 0) == 0 or st.get("flushes", 0) == 0:
            errors.append("%s saw no writes or flushes at the backend: %s" % (d.name, st))


def check_identical(res, disks, errors):
    if not files_identical(disks[0], disks[1]):
        errors.append("legs' backing files differ")


def check_absent_leg(res, disks, errors):
    want = res.result("pattern_md5")
    if md5_backing(disks[1], 1 * MiB, 2 * MiB) != want:
        errors.append("present leg lacks the pattern")
    if md5_backing(disks[0], 1 * MiB, 2 * MiB) == want:
        errors.append("absent leg's disk got the pattern")
    if disks[0].stats().get("writes", 0) != 0:
        errors.append("absent leg's disk was written: %s" % disks[0].stats())


def check_bad_tables(res, disks, errors):
    n = int(res.result("rejected_total", "0"))
    if n < 20:
        errors.append("only %d malformed tables/messages rejected with a reason" % n)


def check_fault_selftest(res, disks, errors):
    st = disks[1].stats()
    if st.get("errors", 0) < 2:
        errors.append("backend counted %s errors, expected >= 2" % st.get("errors"))
    held = res.result("held_stats", "")
    if "held=1" not in held:
        errors.append("hung read not held at the backend: %r" % held)


def check_leg_error(res, disks, errors):
    want = res.result("pattern_b_md5")
    if md5_backing(disks[1], 6 * MiB, 2 * MiB) != want:
        errors.append("surviving leg lacks the data written after the fault")
    if md5_backing(disks[0], 6 * MiB, 2 * MiB) == want:
        errors.append("failing leg's disk has data although it returned EIO")
    if disks[0].stats().get("errors", 0) < 1:
        errors.append("backend of leg 0 counted no errors")


ALL = ("x86_64", "s390x")
# name: (disk sizes in MiB, host check, architectures)
SCENARIOS = {
    "mirror_pattern": ([64, 64], check_pattern, ALL),
    "status_table": ([64, 64], check_identical, ALL),
    "remove_unload": ([64, 64], check_identical, ALL),
    "absent_leg": ([64, 64], check_absent_leg, ("x86_64",)),
    "bad_tables": ([64, 64, 16, 8], check_bad_tables, ALL),
    "fault_selftest": ([16, 16], check_fault_selftest, ("x86_64",)),
    "leg_error": ([64, 64], check_leg_error, ("x86_64",)),
    # Needs a kernel built with CONFIG_DM_RTMIRROR=y; run only when asked for (--only).
    "builtin_target": ([64, 64], check_pattern, ()),
}


def run_one(name, args, root):
    sizes, check, _ = SCENARIOS[name]
    work = os.path.join(root, name)
    os.makedirs(work, exist_ok=True)
    disks = [FaultDisk(work, "d%d" % i, s * MiB) for i, s in enumerate(sizes)]
    errors = []
    try:
        g = Guest(args.arch, args.kernel, args.initrd, disks,
                  append="rtm.scenario=%s loglevel=4" % name, timeout_s=args.timeout,
                  workdir=work, name=name, echo=args.verbose)
        res = g.run()
        errors += ["guest: " + f for f in res.fails]
        if res.timed_out:
            errors.append("timed out after %ss" % args.timeout)
        if not res.done:
            errors.append("guest did not finish (no @@DONE)")
        if res.result("exit") not in ("0", None):
            errors.append("scenario script exited %s" % res.result("exit"))
        errors += ["kernel: " + l for l in res.kernel_problems()]
        if not errors:
            check(res, disks, errors)
        return errors, res
    finally:
        for d in disks:
            d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True, choices=ALL)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    names = [n for n in SCENARIOS if args.arch in SCENARIOS[n][2]]
    if args.only:
        names = [n for n in args.only.split(",") if n in SCENARIOS]
    root = tempfile.mkdtemp(prefix="rtmirror-%s-" % args.arch)
    passed = failed = 0
    for name in names:
        t0 = time.time()
        try:
            errors, res = run_one(name, args, root)
        except Exception as e:  # a harness failure is a test failure, not a crash
            errors, res = ["harness: %r" % e], None
        dt = time.time() - t0
        if errors:
            failed += 1
            print("FAIL %s/%s (%.0fs)" % (args.arch, name, dt))
            for e in errors[:20]:
                print("    " + e)
            print("    console log: %s" % os.path.join(root, name, name + ".console.log"))
            args.keep = True
        else:
            passed += 1
            print("PASS %s/%s (%.0fs)" % (args.arch, name, dt))
        sys.stdout.flush()
    stop_all()
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
