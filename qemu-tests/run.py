#!/usr/bin/env python3
"""Run the QEMU scenarios for one architecture and check them from the host.

Each scenario boots the guest with its own fault-injecting disks, runs
qemu-tests/guest/<name>.sh inside, and then the host checks what the guest
reported (@@RESULT/@@FAIL), the console for kernel warnings, and the backing
files and backend counters directly.

usage: run.py --arch x86_64 --kernel bzImage --initrd initramfs.cpio.gz [--only a,b] [--keep]
              [--seed N] [--builtin]
--builtin: the kernel has the target built in; the scenarios that unload the module are left
out and those that need the built-in target run.
Ends with a line "N passed, N failed".

Power cuts (POWERCUT below): the backends of those scenarios run with a volatile write cache;
when the guest asks for a power cut the host SIGKILLs QEMU and then tells each backend what its
cache loses. With "random" the choice is seeded: the seed is printed with the result, and
--seed N replays the same choice (for the same cached writes).
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultDisk, Guest, parse_stats, stop_all  # noqa: E402
from harness.log_decode import decode_log  # noqa: E402
from root_boot import ROOT_SCENARIOS, run_root  # noqa: E402
from lvm_root import LVM_ROOT_SCENARIOS  # noqa: E402

# Root on an lvm rtmirror LV activated from the initramfs (lvm_root.py): run like the other
# root-boot scenarios (run_root), with the same requirements (--builtin and --rootfs).
ROOT_SCENARIOS.update(LVM_ROOT_SCENARIOS)

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


def log_state(disk):
    """The log copy on `disk`'s backing file (the media, not the cache), as one line."""
    d = decode_log(disk.read_backing(0, 1 << 20))
    if "error" in d:
        return "version=%s gen=%s invalid: %s" % (d["version"], d.get("generation"), d["error"])
    return "version=%d gen=%d legs=%s dirty=%d regions=%s" % (
        d["version"], d["generation"], d["legs"], len(d["dirty"]),
        ",".join(map(str, d["dirty"][:40])) or "-")


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


def check_only_on_leg1(disks, want, offset, size, errors):
    """The data with md5 `want` at `offset` is on leg 1's backing file and not on leg 0's."""
    if md5_backing(disks[1], offset, size) != want:
        errors.append("leg 1 lacks the data at %d" % offset)
    if md5_backing(disks[0], offset, size) == want:
        errors.append("leg 0, which was out of service, got the data at %d" % offset)


def check_report(res, disks, errors):
    """Report the guest's measurements (the guest checked the outcome)."""
    keys = ("timeout_ms", "degraded_after_cs", "regions_written_since_hang", "regions_copied",
            "writer_latency_cs", "w_verified", "read_latency_cs", "m1_writes_during_hang",
            "split_cs", "copy_blocks_checked", "copy_blocks_after", "lvm2_tests_passed")
    got = ["%s=%s" % (k, res.result(k)) for k in keys if res.result(k) is not None]
    if got:
        print("    " + " ".join(got))


def check_two_mirrors(res, disks, errors):
    if not files_identical(disks[0], disks[1]):
        errors.append("m0's legs differ after its resync")
    if not files_identical(disks[2], disks[3]):
        errors.append("m1's legs differ")
    check_report(res, disks, errors)


def check_identical_report(res, disks, errors):
    """Legs identical; report the guest's measurements."""
    check_identical(res, disks, errors)
    check_report(res, disks, errors)


def check_log_copies_identical(res, disks, errors):
    """Legs identical, and the rejoined log copy rewritten: both copies hold the same bytes."""
    check_identical(res, disks, errors)
    if disks[2].read_backing(0, 64 * 1024) != disks[3].read_backing(0, 64 * 1024):
        errors.append("log copies differ after rejoin_log and a clean suspend")


def check_degraded_powercut(results, disks, errors):
    r1, r2 = results
    if not r1.killed:
        errors.append("phase 1 was not cut off by a power cut")
    for key, off, size in (("acked_a", 4, 1), ("acked_b", 20, 2)):
        want = r1.result(key)
        if not want:
            errors.append("phase 1 reported no %s" % key)
            continue
        for d in disks[:2]:
            if md5_backing(d, off * MiB, size * MiB) != want:
                errors.append("%s lacks the write acknowledged at %d MiB" % (d.name, off))
    check_identical(r2, disks, errors)
    print("    %s; regions copied %s" % (r2.result("activation"), r2.result("regions_copied")))


def regions_differing(a, b, region_bytes):
    """Regions (of region_bytes) in which the backing files of disks a and b differ."""
    out = []
    with open(a.file, "rb") as fa, open(b.file, "rb") as fb:
        r = 0
        while True:
            x, y = fa.read(region_bytes), fb.read(region_bytes)
            if not x and not y:
                return out
            if x != y:
                out.append(r)
            r += 1


def note_log_at_cut(disks):
    """Between the boots: record what the log copies hold after the power cut."""
    for d in disks[2:4]:
        d.log_at_cut = decode_log(d.read_backing(0, 1 << 20))
        print("    %s after the cut: %s" % (d.name, log_state(d)))


def note_log_heal_all(disks):
    note_log_at_cut(disks)
    heal_all(disks)


def check_clean_after_write(results, disks, errors):
    """Regions written without a flush, cleaned lazily in the log, power cut with leg 1's cache
    losing every unflushed write (leg 0 writes through): after activation and resync the legs
    must be identical; where they differ, the log called the region clean."""
    r1, r2 = results
    if not r1.killed:
        errors.append("phase 1 was not cut off by a power cut")
    region_bytes = 1024 * 512
    written = {}
    for v in r1.results.get("written", []):
        blk, md5 = v.split()
        written[int(blk)] = md5
    if len(written) < 6:
        errors.append("phase 1 reported %d writes, expected 6" % len(written))
    for blk, md5 in sorted(written.items()):
        # Leg 0's backend has no volatile cache: what the target wrote is on its media.
        if md5_backing(disks[0], blk * 65536, 65536) != md5:
            errors.append("leg 0 (write-through) lacks the write at 64 KiB block %d: the "
                          "scenario's premise does not hold" % blk)
    cut = getattr(disks[1], "cut_report", {})
    print("    leg 1's cache at the cut: %s writes, %s 4 KiB pieces lost; activation: %s"
          % (cut.get("writes"), cut.get("lost"), r2.result("activation_log")))
    diff = regions_differing(disks[0], disks[1], region_bytes)
    if diff:
        at_cut = [getattr(d, "log_at_cut", {}) for d in disks[2:4]]
        said = "; ".join(
            "log copy %d at the cut: %s" % (i, "generation %d, dirty regions %s"
                                             % (l["generation"], l["dirty"] or "none")
                                             if "dirty" in l else l.get("error"))
            for i, l in enumerate(at_cut))
        if all("dirty" in l for l in at_cut):
            clean = [r for r in diff if all(r not in l["dirty"] for l in at_cut)]
            verdict = "the log called %s clean" % (clean or "none of them")
        else:
            verdict = "the log was not decoded"
        errors.append("legs differ after activation + resync in regions %s (written: %s); "
                      "%s (%s)" % (diff, sorted({b * 65536 // region_bytes for b in written}),
                                   verdict, said))


def check_log_torn_both(results, disks, errors):
    """Leg 0 Degraded, writes acknowledged on leg 1, then one log write torn on both copies and
    the power cut: every acknowledged write must read back through the mirror and be on leg 1
    (and, after the resync, on both legs)."""
    r1, r2 = results
    if not r1.killed:
        errors.append("phase 1 was not cut off by a power cut")
    torn = r1.result("torn", "")
    if torn.count("applied=1") != 2:
        errors.append("the log write was not torn on both copies: %r" % torn)
    print("    before the tear: %s; activation: %s" % (r1.result("status_before_tear"),
                                                       r2.result("activation")))
    for key, off, size in (("acked_a", 4, 1), ("acked_b", 20, 2)):
        want = r1.result(key)
        if not want:
            errors.append("phase 1 reported no %s" % key)
            continue
        got = r2.result(key.replace("acked", "mirror"))
        if got != want:
            errors.append("the mirror reads %s at %d MiB, not the %d MiB written and "
                          "acknowledged (flushed) before the cut: %s" % (got, off, size, want))
        if md5_backing(disks[1], off * MiB, size * MiB) != want:
            errors.append("leg 1 (d1) lacks the write acknowledged at %d MiB" % off)
    check_identical(r2, disks, errors)


def check_timeout_cost(res, disks, errors):
    vals = {k: int(res.result(k, "0")) for k in (
        "write_cs_no_timeout", "write_cs_timeout", "read_cs_no_timeout", "read_cs_timeout")}
    if not all(vals.values()):
        errors.append("missing timings: %s" % vals)
        return
    print("    3 x 32 MiB O_DIRECT, time with io_timeout_ms 1000 / without: writes %d/%d cs "
          "(%.2f), reads %d/%d cs (%.2f)" % (
              vals["write_cs_timeout"], vals["write_cs_no_timeout"],
              vals["write_cs_timeout"] / vals["write_cs_no_timeout"],
              vals["read_cs_timeout"], vals["read_cs_no_timeout"],
              vals["read_cs_timeout"] / vals["read_cs_no_timeout"]))


def check_absent_leg(res, disks, errors):
    check_only_on_leg1(disks, res.result("pattern_md5"), 1 * MiB, 2 * MiB, errors)
    if disks[0].stats().get("writes", 0) != 0:
        errors.append("absent leg's disk was written: %s" % disks[0].stats())


def check_bad_tables(res, disks, errors):
    n = int(res.result("rejected_total", "0"))
    if n < 20:
        errors.append("only %d malformed tables/messages rejected with a reason" % n)


def check_table_fuzz(res, disks, errors):
    """Guest-side fuzzing: most generated tables must have been rejected (with a reason, which
    the guest checked), some messages accepted and some refused."""
    counts = {k: int(res.result(k, "0")) for k in (
        "tables_accepted", "tables_rejected", "messages_accepted", "messages_rejected",
        "silent_rejections")}
    print("    seed %s: %s" % (res.result("seed"), " ".join("%s=%d" % kv for kv in counts.items())))
    # 50 of each: the grammar itself is fuzzed in depth on the host (cargo-fuzz); here the
    # kernel's handling of what it refuses is checked, and the debug kernel under a loaded
    # host gets through about 100 to 800 of each in its fixed budgets of guest time.
    if counts["tables_rejected"] < 50 or counts["messages_rejected"] < 50:
        errors.append("too few malformed tables or messages were tried: %r" % counts)
    if counts["messages_accepted"] == 0:
        errors.append("no generated message was valid: the generator lost its valid cases")
    if counts["silent_rejections"]:
        errors.append("%d rejections without a reason" % counts["silent_rejections"])


def check_fault_selftest(res, disks, errors):
    st = disks[1].stats()
    if st.get("errors", 0) < 2:
        errors.append("backend counted %s errors, expected >= 2" % st.get("errors"))
    held = res.result("held_stats", "")
    if "held=1" not in held:
        errors.append("hung read not held at the backend: %r" % held)


def check_leg_error(res, disks, errors):
    check_only_on_leg1(disks, res.result("pattern_b_md5"), 6 * MiB, 2 * MiB, errors)
    if disks[0].stats().get("errors", 0) < 1:
        errors.append("backend of leg 0 counted no errors")


# core/src/region.rs DIRTY_AHEAD_MAX
DIRTY_AHEAD_MAX = 32


def dirty_ahead_bound(regions_written, nr_regions):
    """Regions the log may call dirty after writes to regions_written (in order): each write
    to a region not yet dirty also marks dirty up to twice as many regions ahead of it as
    there are dirty regions right behind it (Regions::dirty_ahead). Applying that on every
    write to an image that is never cleaned gives a superset of what the target can have
    marked, whatever its lazy cleaner did in between."""
    image = set()
    for r in regions_written:
        image.add(r)
        behind = 0
        while behind < DIRTY_AHEAD_MAX and r - behind - 1 >= 0 and r - behind - 1 in image:
            behind += 1
        image.update(range(r + 1, min(r + 1 + min(2 * behind, DIRTY_AHEAD_MAX), nr_regions)))
    return image


def check_powercut(results, disks, errors, corrupted=False):
    r1, r2 = results
    if not r1.killed:
        errors.append("phase 1 was not cut off by a power cut")
    # The kill can cut the last console line short: keep only complete entries.
    writing = [int(w) for w in r1.results.get("writing", []) if w.strip().isdigit()]
    acked = [v.split() for v in r1.results.get("acked", [])]
    acked = [a for a in acked if len(a) == 2 and a[0].isdigit() and len(a[1]) == 32]
    if len(acked) < 5:
        errors.append("only %d writes acknowledged before the cut" % len(acked))
    last = {}
    for off, md5 in acked:
        last[int(off)] = md5
    # The write in flight at the cut may or may not have landed: not checked. Its console
    # lines may be lost with the cut, so it is found from the writer's fixed sequence (write
    # i goes to block i * 7919 % 4096, powercut_1.sh): write n, or n + 1 if the line
    # acknowledging write n was lost, with n complete acknowledgements seen.
    n = len(acked)
    in_flight = {(i * 7919) % 4096 for i in (n, n + 1)}
    for off, md5 in last.items():
        if off in in_flight:
            continue
        for d in disks[:2]:
            if md5_backing(d, off * 4096, 4096) != md5:
                errors.append("acknowledged write at block %d missing on %s" % (off, d.name))
    if not files_identical(disks[0], disks[1]):
        errors.append("legs' backing files differ after the resync")
    line = r2.result("activation_log", "")
    m = re.search(r"(\d+) of (\d+) regions out of sync", line)
    if not m:
        errors.append("no activation line: %r" % line)
        return
    oos, total = int(m.group(1)), int(m.group(2))
    region_bytes = 1024 * 512
    written = {(w * 4096) // region_bytes for w in writing}
    may_be_dirty = dirty_ahead_bound([(w * 4096) // region_bytes for w in writing], total)
    print("    powercut: %d acknowledged writes, %d regions written, %d of %d out of sync at "
          "activation (at most %d with the regions marked dirty ahead)"
          % (len(acked), len(written), oos, total, len(may_be_dirty)))
    if not 1 <= oos <= len(may_be_dirty):
        errors.append("%d regions out of sync at activation; expected 1..%d (regions written "
                      "%s and those the target may mark dirty ahead of them)"
                      % (oos, len(may_be_dirty), sorted(written)))
    if "log found" not in line:
        errors.append("activation did not use a log copy: %r" % line)
    if corrupted and "log copy 0: not used" not in r2.console:
        errors.append("the corrupted log copy 0 was not reported as not used")


def corrupt_log_copy0(disks):
    header = disks[2].read_backing(0, 4096)
    if header[:8] != b"RTMIRLOG":
        raise RuntimeError("log copy 0 holds no log before the corruption: %r" % header[:8])
    # Both header slots (format version 2): the copy holds no valid header at all.
    disks[2].write_backing(2000, b"\xa5" * 32)
    disks[2].write_backing(4096 + 2000, b"\xa5" * 32)


def heal_all(disks):
    for d in disks:
        d.heal()


def heal_corrupt_log_copy0(disks):
    heal_all(disks)
    corrupt_log_copy0(disks)


def check_log_copy_error(res, disks, errors):
    if disks[2].stats().get("errors", 0) < 1:
        errors.append("the failing log copy's backend counted no errors")


def fill_leg0(disks):
    block = os.urandom(MiB)
    for i in range(64):
        disks[0].write_backing(i * MiB, block[i:] + block[:i])


def check_full_resync(res, disks, errors):
    if not files_identical(disks[0], disks[1]):
        errors.append("legs differ after the full resync")
    st0 = parse_stats(res.result("leg0_stats", ""))
    st1 = parse_stats(res.result("leg1_stats", ""))
    size = 64 * MiB
    # Each region copied once, plus the 2 MiB the application wrote during the resync.
    if st1.get("write_bytes") != size + 2 * MiB:
        errors.append("leg 1 received %s bytes of writes; expected %d: every region copied once "
                      "plus 2 MiB of application writes" % (st1.get("write_bytes"), size + 2 * MiB))
    want = res.result("during_md5")
    for d in disks[:2]:
        if md5_backing(d, 30 * MiB, 2 * MiB) != want:
            errors.append("%s lacks the data written during the resync" % d.name)
    if st0.get("read_bytes", 0) < size:
        errors.append("leg 0 was read for %s bytes, less than its size" % st0.get("read_bytes"))
    if st0.get("write_bytes", 0) != 2 * MiB:
        errors.append("the resync source received %s bytes of writes, expected only the 2 MiB "
                      "the application wrote" % st0.get("write_bytes"))
    print("    full resync of 64 MiB (16 regions of 4 MiB), the rest after lifting the rate "
          "limit: %s cs in the guest" % res.result("resync_cs"))


def check_resync_timing(res, disks, errors):
    if not files_identical(disks[0], disks[1]):
        errors.append("legs differ after the full resync")
    print("    full resync of %d MiB with %s-sector regions: %s cs in the guest (%s)"
          % (disks[0].stats().get("read_bytes", 0) // MiB, res.result("region_sectors"),
             res.result("resync_cs"), res.result("final_status")))


def check_log_ratio(res, disks, errors):
    data = parse_stats(res.result("stats_0", ""))
    logs = [parse_stats(res.result("stats_%d" % i, "")) for i in (2, 3)]
    dw = data.get("writes", 0)
    lw = max(l.get("writes", 0) for l in logs)
    if dw == 0:
        errors.append("no data writes counted")
        return
    ratio = lw / dw
    print("    log writes per data write (3 passes over 48 MiB, 4 MiB regions): %d / %d = %.3f"
          % (lw, dw, ratio))
    # Repeated writes to dirty regions cost no log I/O; what remains is one log write per
    # region turning dirty plus the batched cleaning, whose count depends on timing. A log
    # write is two requests at a log backend (the changed bitmap blocks, then the header
    # slot), so this bounds log writes at 0.5 per data write.
    if ratio >= 1.0:
        errors.append("log writes are %.2f of data writes" % ratio)


def check_lvm_two_layer(res, disks, errors):
    """The guest asserts the outcomes (data, leg states, resync, lvs answering during the
    hang); the host reports what it measured."""
    keys = ("degraded_after_cs", "restricted_lvs_ms", "unrestricted_lvs_blocked_s",
            "unrestricted_lvs_total_ms", "regions_copied", "regions_total",
            "regions_copied_error", "files_verified")
    got = ["%s=%s" % (k, res.result(k)) for k in keys if res.result(k) is not None]
    if got:
        print("    " + " ".join(got))
    for i in range(4):
        if disks[i].stats().get("writes", 0) == 0:
            errors.append("%s (subsystem %s) saw no writes" % (disks[i].name, "AB"[i // 2]))


LVM_MODES = ("full", "devicesfile", "devices")


def check_lvm_activation(res, disks, errors):
    """Activation of the two-layer layout, per scan mode: median of the runs (host ms, from
    the guest's `host now`), and the reads the dummies' backends counted. The restricted
    modes must read nothing from the dummies (asserted); the full scan must read every
    dummy (asserted: otherwise the dummies were not seen and the comparison means nothing)."""
    n = int(res.result("dummies", "-1"))
    if n != len(disks) - 4:
        errors.append("guest saw %d dummies, the host gave %d" % (n, len(disks) - 4))
    for mode in LVM_MODES:
        times = [int(v) for v in res.results.get("activate_ms_" + mode, [])]
        reads = [v for v in res.results.get("dummy_reads_" + mode, [])]
        if len(times) < 5:
            errors.append("%s: %d timed activations, expected 5" % (mode, len(times)))
            continue
        med = sorted(times)[len(times) // 2]
        print("    %d dummies, %-11s median %6d ms  runs %s  dummy backend reads per run %s"
              % (n, mode, med, ",".join(map(str, times)), ",".join(reads)))
        for r in reads:
            backend, guest = (int(x) for x in r.split("/"))
            if mode == "full" and n and (backend < n or guest < n):
                errors.append("full scan: dummies read %d times at the backends, %d in the "
                              "guest, fewer than the %d dummies" % (backend, guest, n))
            if mode != "full" and (backend or guest):
                errors.append("%s: dummies read %d times at the backends, %d in the guest"
                              % (mode, backend, guest))


ALL = ("x86_64", "s390x")
# name: (disk sizes in MiB, host check, architectures)
SCENARIOS = {
    "mirror_pattern": ([64, 64], check_pattern, ALL),
    "status_table": ([64, 64], check_identical, ALL),
    "remove_unload": ([64, 64], check_identical, ALL),
    "absent_leg": ([64, 64], check_absent_leg, ALL),
    "bad_tables": ([64, 64, 16, 8], check_bad_tables, ALL),
    "table_fuzz": ([64, 64, 16, 8], check_table_fuzz, ("x86_64",)),
    "fault_selftest": ([16, 16], check_fault_selftest, ALL),
    "leg_error": ([64, 64], check_leg_error, ALL),
    "log_copy_error": ([64, 64, 1, 1], check_log_copy_error, ALL),
    "full_resync": ([64, 64, 1, 1], check_full_resync, ALL),
    "log_ratio": ([64, 64, 1, 1], check_log_ratio, ALL),
    "log_both_fail": ([64, 64, 1, 1], check_log_copy_error, ALL),
    "log_trust": ([64, 64, 1, 1], check_identical_report, ALL),
    "timeout_degraded": ([64, 64, 1, 1], check_identical_report, ALL),
    "timeout_short_hang": ([64, 64, 1, 1], check_identical_report, ALL),
    "timeout_hang_forever": ([64, 64, 1, 1], check_report, ALL),
    "read_hang_failover": ([64, 64, 1, 1], check_identical_report, ALL),
    "leg_error_rejoin": ([64, 64, 1, 1], check_identical_report, ALL),
    "read_error_failover": ([64, 64, 1, 1], check_identical_report, ALL),
    "log_copy_hang": ([64, 64, 1, 1], check_log_copies_identical, ALL),
    "log_hang_at_activation": ([64, 64, 1, 1], check_log_copies_identical, ALL),
    "slow_leg": ([64, 64, 1, 1], check_identical_report, ALL),
    "degraded_then_error": ([64, 64, 1, 1], check_report, ALL),
    "split_rejoin": ([64, 64, 1, 1], check_identical_report, ALL),
    "timeout_again_in_resync": ([64, 64, 1, 1], check_identical_report, ALL),
    "two_mirrors_hang": ([64, 64, 64, 64], check_two_mirrors, ALL),
    "absent_rejoin": ([64, 64, 1, 1], check_identical_report, ALL),
    "discard_split_rejoin": ([64, 64, 1, 1], check_identical_report, ALL),
    "write_zeroes_refused": ([64, 64, 1, 1], check_identical_report, ALL),
    "failed_means_failed": ([64, 64, 1, 1], check_report, ALL),
    "last_leg_timeout": ([64, 64, 1, 1], check_identical_report, ALL),
    "microcode_update": ([64, 64, 1, 1], check_identical_report, ALL),
    "hang_while_other_slow": ([64, 64, 1, 1], check_identical_report, ALL),
    # Measurement, on demand: --only timeout_cost (bounce copies with a timeout set).
    "timeout_cost": ([64, 64, 1, 1], check_timeout_cost, ()),
    # Measurement, on demand: --only resync_timing --append rtm.region=<sectors>.
    "resync_timing": ([1024, 1024, 1, 1], check_resync_timing, ()),
    # Kernel kind: runs only on a kernel with CONFIG_DM_RTMIRROR=y (--builtin).
    "builtin_target": ([64, 64], check_pattern, ALL),
    "lvm_create": ([64, 64, 16, 16], check_report, ALL),
    # lvchange --resync, lvconvert --repair (docs/lvm.md): vda, vdb legs, vdc, vdd spares.
    "lvm_repair": ([64, 64, 64, 64], check_report, ALL),
    # scripts/demo.sh --lvm: lvcreate, a failing subsystem, lvs, lvconvert --repair.
    "lvm_demo": ([64, 64, 64], check_report, ALL),
    # lvconvert --splitmirrors 1 --trackchanges, --mergemirrors (docs/lvm.md).
    "lvm_split": ([64, 64], check_report, ALL),
    # lvconvert --splitmirrors 1 --name (docs/lvm.md): a leg split off for good during writes.
    "lvm_split_off": ([64, 64, 64], check_report, ALL),
    # lvm2's own tests of the segment type (test/shell/rtmirror-*.sh of lvm2-patches/) under the
    # guest's port of lvm2's test harness (docs/lvm.md): every test on x86_64; create/lvs/
    # faults/remove (rtmirror-create, rtmirror-fault) on s390x.
    "lvm_shell_tests": ([64, 64, 64, 64], check_report, ("x86_64",)),
    "lvm_shell_basic": ([64, 64, 64, 64], check_report, ("s390x",)),
    # Two-layer LVM (docs/lvm-two-layer.md): subsystem A = vda+vdb, B = vdc+vdd.
    "lvm_two_layer": ([96, 96, 96, 96], check_lvm_two_layer, ALL),
    # Measurement, on demand (docs/lvm-two-layer.md): activation of the two-layer layout with
    # N dummy disks (DUMMIES), full scan vs devices file vs --devices.
    "lvm_activation_0": ([96, 96, 96, 96], check_lvm_activation, ()),
    "lvm_activation_20": ([96, 96, 96, 96], check_lvm_activation, ()),
    "lvm_activation_40": ([96, 96, 96, 96], check_lvm_activation, ()),
    "lvm_activation_80": ([96, 96, 96, 96], check_lvm_activation, ()),
}
# Extra disks after the scenario's own: (count, MiB each), FaultDisks with serial x<n>, which
# the guest's init names /dev/dummy<n> (blank: no label, nothing on them).
DUMMIES = {"lvm_activation_%d" % n: (n, 8) for n in (0, 20, 40, 80)}
# Guest script of a scenario, when not its own name.
SCRIPT = {"lvm_activation_%d" % n: "lvm_activation" for n in (0, 20, 40, 80)}
# Scenarios that load and unload the module: not on a kernel with the target built in.
# table_fuzz proves nothing leaked by unloading the module after the fuzzing, so it runs on
# the (KASAN) debug kernel, which loads the target as a module (`--only table_fuzz` runs it
# on a built-in target too).
MODULE_ONLY = {"remove_unload", "table_fuzz"}
# Scenarios that need the target built into the kernel.
BUILTIN_ONLY = {"builtin_target"}
# The debug kernel's set (--debug-set, docs/testing.md): the scenarios whose kernel paths the
# debug kernel's checks (KASAN, lockdep, list and object debugging) are there for: bios given
# up on a hung device and completing late, timeouts racing completions, resync against
# writes, log copies failing, table and message parsing, module unload. The rest runs on the
# built-in kernels of both architectures; under KASAN the whole set took most of the cold
# test command's time. Ordered so that the two shards (every other name) take about as long.
DEBUG_SET = ("table_fuzz", "timeout_again_in_resync",
             "remove_unload", "timeout_hang_forever",
             "bad_tables", "log_copy_hang",
             "full_resync", "leg_error_rejoin",
             "write_zeroes_refused", "read_hang_failover",
             "discard_split_rejoin", "degraded_then_error",
             "log_both_fail", "hang_while_other_slow",
             "log_hang_at_activation", "last_leg_timeout",
             "absent_rejoin", "two_mirrors_hang",
             "split_rejoin")

# Scenarios of several boots on the same disks: (disk sizes in MiB, guest scripts per boot,
# host check on the list of results, architectures, host action before each later boot).
PHASED = {
    "log_powercut": ([64, 64, 1, 1], ["powercut_1", "powercut_2"], check_powercut, ALL,
                     heal_all),
    "degraded_powercut": ([64, 64, 1, 1], ["degraded_powercut_1", "degraded_powercut_2"],
                          check_degraded_powercut, ALL, lambda disks: disks[1].heal()),
    "log_corrupt_copy": ([64, 64, 1, 1], ["powercut_1", "powercut_2"],
                         lambda r, d, e: check_powercut(r, d, e, corrupted=True),
                         ALL, heal_corrupt_log_copy0),
    "clean_after_write_powercut": ([64, 64, 1, 1], ["clean_after_write_powercut_1",
                                                    "clean_after_write_powercut_2"],
                                   check_clean_after_write, ALL, note_log_at_cut),
    "log_torn_both": ([64, 64, 1, 1], ["log_torn_both_1", "log_torn_both_2"],
                      check_log_torn_both, ALL, note_log_heal_all),
}

# Scenarios whose backends have a volatile write cache, and what each disk's cache loses at a
# power cut: "random" (a seeded subset, 4 KiB pieces), "all", "none", or "off" (no cache:
# the disk writes through).
POWERCUT = {
    "log_powercut": ("random",) * 4,
    "degraded_powercut": ("random",) * 4,
    # The log copies write through: the scenario is about copy 0 corrupted, copy 1 intact.
    "log_corrupt_copy": ("random", "random", "off", "off"),
    # Leg 0 writes through, leg 1 loses every unflushed write: legs differ exactly where the
    # target wrote without a flush.
    "clean_after_write_powercut": ("off", "all", "all", "all"),
    "log_torn_both": ("random",) * 4,
}

# Host preparation of the disks before the first boot.
PREPARE = {"full_resync": fill_leg0}


def host_handler(disks):
    """Host commands of the scenarios beyond Guest.default_handler."""
    def handler(words):
        if words[:1] == ["log-state"]:
            return "ok " + log_state(disks[int(words[1])])
        if words[:1] == ["stats-sum"]:
            # stats-sum <from> <to>: the counters of disks from..to-1 added up.
            total = {}
            for d in disks[int(words[1]):int(words[2])]:
                for k, v in d.stats().items():
                    if isinstance(v, int):
                        total[k] = total.get(k, 0) + v
            return "ok " + " ".join("%s=%d" % kv for kv in sorted(total.items()))
        if words[:1] == ["reset-stats-range"]:
            for d in disks[int(words[1]):int(words[2])]:
                d.reset_stats()
            return "ok"
        return None
    return handler


def power_cut_backends(disks, modes, seed, cut):
    """After QEMU was killed: each backend's cache loses what its mode says. The seed of disk i
    at the cut-th power cut of a scenario is seed * 100 + cut * 10 + i."""
    out = []
    for i, (d, mode) in enumerate(zip(disks, modes)):
        if mode == "random":
            r = d.powercut("random", seed * 100 + cut * 10 + i)
            desc = "random(%d)" % (seed * 100 + cut * 10 + i)
        else:
            r = d.powercut("all" if mode == "off" else mode)
            desc = mode
        d.cut_report = r
        out.append("%s %s: %d writes cached, %d kept %d lost (4 KiB pieces), %d held dropped"
                   % (d.name, desc, r["writes"], r["kept"], r["lost"], r["held_dropped"]))
    print("    power cut %d: %s" % (cut, "; ".join(out)))


# Boots that need more than --timeout on the slow (debug) kernel: table_fuzz fuzzes for two
# fixed budgets of guest time, then heals, reloads and unloads; on a loaded 2-core CI host
# that took from 822 s to over 1200 s.
SLOW_KERNEL_TIMEOUT = {"table_fuzz": 1800}


def boot(args, disks, work, script, errors, expect_kill=False):
    timeout = args.timeout
    if args.slow_kernel:
        timeout = max(timeout, SLOW_KERNEL_TIMEOUT.get(script, 0))
    g = Guest(args.arch, args.kernel, args.initrd, disks,
              append="rtm.scenario=%s loglevel=4 %s" % (script, args.append),
              timeout_s=timeout, handler=host_handler(disks),
              workdir=work, name=script, echo=args.verbose)
    res = g.run()
    errors += ["guest %s: %s" % (script, f) for f in res.fails]
    if res.timed_out:
        errors.append("%s timed out after %ss" % (script, timeout))
    if not res.done and not (expect_kill and res.killed):
        errors.append("%s did not finish (no @@DONE)" % script)
    if res.result("exit") not in ("0", None):
        errors.append("%s exited %s" % (script, res.result("exit")))
    errors += ["kernel (%s): %s" % (script, l) for l in res.kernel_problems()]
    return res


def run_one(name, args, root, seed):
    if name in ROOT_SCENARIOS:
        work = os.path.join(root, name)
        os.makedirs(work, exist_ok=True)
        errors, notes = run_root(name, args, work, seed, power_cut_backends)
        for n in notes:
            print("    " + n)
        return errors, None
    if name in PHASED:
        sizes, scripts, check, _, between = PHASED[name]
    else:
        sizes, check, _ = SCENARIOS[name]
        scripts, between = [SCRIPT.get(name, name)], None
    work = os.path.join(root, name)
    os.makedirs(work, exist_ok=True)
    disks = [FaultDisk(work, "d%d" % i, s * MiB) for i, s in enumerate(sizes)]
    n_dummies, dummy_mib = DUMMIES.get(name, (0, 0))
    disks += [FaultDisk(work, "x%d" % i, dummy_mib * MiB, log=False) for i in range(n_dummies)]
    errors = []
    modes = POWERCUT.get(name)
    try:
        if name in PREPARE:
            PREPARE[name](disks)
        for d, mode in zip(disks, modes or ()):
            d.cache(mode != "off")
        results = []
        cuts = 0
        for i, script in enumerate(scripts):
            if i > 0 and between:
                between(disks)
            last = i == len(scripts) - 1
            results.append(boot(args, disks, work, script, errors, expect_kill=not last))
            if modes and results[-1].killed:
                cuts += 1
                power_cut_backends(disks, modes, seed, cuts)
            elif modes:
                # An orderly end: the disks write their caches back.
                for d in disks:
                    d.writeback()
            if errors:
                break
        if not errors:
            check(results if name in PHASED else results[0], disks, errors)
        return errors, results[-1] if results else None
    finally:
        for d in disks:
            d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True, choices=ALL)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds per boot (default 600, 1200 with --slow-kernel)")
    ap.add_argument("--slow-kernel", action="store_true",
                    help="a kernel several times slower than the others (KASAN under TCG): "
                         "longer boot timeouts, table_fuzz phases of 150 s")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--append", default="", help="extra guest kernel command line")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--builtin", action="store_true",
                    help="the kernel has rtmirror built in (CONFIG_DM_RTMIRROR=y), no module")
    ap.add_argument("--rootfs", default="",
                    help="ext4 image of the guest tree (build-initramfs.sh): with --builtin, "
                         "the root-on-rtmirror boots run")
    ap.add_argument("--label", default="", help="name printed before each scenario (default: arch)")
    ap.add_argument("--shard", default="1/1", metavar="K/N",
                    help="run only every N-th scenario, starting with the K-th (N runners in "
                         "parallel share one scenario set)")
    ap.add_argument("--debug-set", action="store_true",
                    help="run only the debug kernel's set (DEBUG_SET); --only overrides it")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the power cuts' cache losses (default: random, printed)")
    args = ap.parse_args()
    if args.timeout is None:
        args.timeout = 1200 if args.slow_kernel else 600
    if args.slow_kernel:
        # table_fuzz: a generated table takes about a second there; 150 s per phase keeps
        # well above the 50 refused tables and messages its check requires.
        args.append = ("rtm.fuzz_s=150 " + args.append).strip()
    label = args.label or args.arch
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1000000)
    names = [n for n in SCENARIOS if args.arch in SCENARIOS[n][2]]
    names += [n for n in PHASED if args.arch in PHASED[n][3]]
    if args.builtin and args.rootfs:
        names += [n for n in ROOT_SCENARIOS if args.arch in ROOT_SCENARIOS[n][1]]
    if args.only:
        names = [n for n in args.only.split(",")
                 if n in SCENARIOS or n in PHASED or n in ROOT_SCENARIOS]
    elif args.debug_set:
        names = [n for n in DEBUG_SET if n in names]
    if not (args.builtin and args.rootfs):
        names = [n for n in names if n not in ROOT_SCENARIOS]
    # table_fuzz runs on a built-in target when asked for by name (it then skips the unload).
    skip = BUILTIN_ONLY if not args.builtin else MODULE_ONLY - ({"table_fuzz"} if args.only else set())
    names = [n for n in names if n not in skip]
    try:
        k, n_shards = (int(x) for x in args.shard.split("/"))
        if not 1 <= k <= n_shards:
            raise ValueError
    except ValueError:
        ap.error("--shard: K/N with 1 <= K <= N, not %r" % args.shard)
    names = names[k - 1::n_shards]
    root = tempfile.mkdtemp(prefix="rtmirror-%s-" % args.arch)
    passed = failed = 0
    for name in names:
        t0 = time.time()
        try:
            errors, _ = run_one(name, args, root, seed)
        except Exception as e:  # a harness failure is a test failure, not a crash
            errors = ["harness: %r" % e]
        dt = time.time() - t0
        seeded = " seed %d" % seed if name in POWERCUT or name in ("root_powercut", "lvmroot_powercut") else ""
        if errors:
            failed += 1
            print("FAIL %s/%s (%.0fs)%s" % (label, name, dt, seeded))
            for e in errors[:20]:
                print("    " + e)
            print("    console logs: %s" % os.path.join(root, name))
            if seeded:
                print("    replay: python3 qemu-tests/run.py --arch %s --kernel %s --initrd %s "
                      "--only %s --seed %d" % (args.arch, args.kernel, args.initrd, name, seed))
            args.keep = True
        else:
            passed += 1
            print("PASS %s/%s (%.0fs)%s" % (label, name, dt, seeded))
        sys.stdout.flush()
    stop_all()
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
