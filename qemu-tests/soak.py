#!/usr/bin/env python3
"""Seeded fault-schedule soak (docs/soak.md).

Boots the guest several times ("epochs") on the same disks: legs d0, d1 and log copies d2, d3
with volatile write caches, and d4, the journal of acknowledged writes, never faulted. In
each epoch the guest (guest/soak_epoch.sh) verifies what the last epoch left, then runs
rtm-stress while a host thread, the nemesis, injects faults drawn from a seeded schedule:
hangs shorter and longer than the I/O timeout, EIO on reads, writes or both, flapping
errors, latency spikes, bandwidth limits, on legs and on log copies. It never takes away every
copy of the data: a leg is hung or failed only while the other leg reads 'A' in a fresh
status line and has no fault of its own. An epoch ends cleanly (heal, rejoin, in sync,
remove) or with a power cut at a seeded instant (QEMU killed, each cache losing a seeded
random subset, torn at 4 KiB). A last boot heals everything, verifies every block through
each leg as primary; the host then requires the legs byte-identical and both log copies
clean and alike.

    python3 qemu-tests/soak.py --arch x86_64 --kernel K --initrd I --seed 7 --epochs 3
    python3 qemu-tests/soak.py ... --minutes 60        # epochs until 60 minutes are used

Prints one PASS/FAIL line per epoch and for the final check, the faults injected by kind,
the operations verified, "N passed, N failed", and on failure the command that replays it.
"""

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultDisk, Guest, stop_all  # noqa: E402
from harness.log_decode import decode_log  # noqa: E402

MiB = 1 << 20
LEGS, LOGS, JOURNAL = (0, 1), (2, 3), 4
SIZES_MIB = (64, 64, 1, 1, 2)
TIMEOUT_MS = 3000          # io_timeout_ms of soak_epoch.sh
# A request held by a hang and released by the heal may still be timed out after the heal:
# its deadline is its issue time plus the timeout, and the watchdog looks every eighth of it
# (a log copy write that waited is failed at the first pass past the deadline). A status line
# shows the outcome only if it was printed this long after the heal (the 20-minute s390x run,
# seed 21: a copy failed by such a timeout just after the status that let the nemesis fail
# the other copy, so the log was lost and writes that missed a leg failed, as documented).
SETTLE_S = 1.5 * TIMEOUT_MS / 1000.0
STATUS_RE = re.compile(r"rtm-soak status (\d+) (\S+) (\d+)/(\d+) (\d+) (\S+) (\S+) (\S+)")


class Nemesis(threading.Thread):
    """Injects seeded faults while the workload runs; heals when told to stop."""

    def __init__(self, rng, disks, counts, log):
        super().__init__(daemon=True)
        self.rng, self.disks, self.counts, self.log = rng, disks, counts, log
        self.lock = threading.Lock()
        self.legs = "??"
        self.logs = "??"
        self.status_t = 0.0
        self.log_heal_t = 0.0       # last heal of a log copy's disk
        self.leg_heal_t = 0.0       # last heal of a leg's disk
        self.active = {}            # disk index -> (kind, heal at monotonic time)
        self.stop_ev = threading.Event()

    def observe(self, line):
        m = STATUS_RE.search(line)
        if m:
            with self.lock:
                self.legs, self.logs, self.status_t = m.group(2), m.group(6), time.monotonic()

    def note(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1
        self.log.append("%.1f %s" % (time.monotonic(), what))

    def heal(self, i):
        self.disks[i].heal()
        self.active.pop(i, None)
        if i in LOGS:
            self.log_heal_t = time.monotonic()
        else:
            self.leg_heal_t = time.monotonic()

    def heal_all(self):
        self.stop_ev.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(30)
        for i in list(self.active):
            self.heal(i)
        for d in self.disks[:JOURNAL]:
            d.heal()

    def leg_may_fail(self, leg):
        """The other leg holds the data: in sync, answering, no fault of its own."""
        other = 1 - leg
        with self.lock:
            # Printed after the last leg heal has settled: a leg failed just before it shows so.
            fresh = (time.monotonic() - self.status_t < 6
                     and self.status_t > self.leg_heal_t + SETTLE_S)
            ok = fresh and len(self.legs) == 2 and self.legs[other] == "A"
        return ok and other not in self.active and leg not in self.active

    def run(self):
        while not self.stop_ev.wait(self.rng.uniform(1.0, 3.0)):
            now = time.monotonic()
            for i, (_, until) in list(self.active.items()):
                if now >= until:
                    self.heal(i)
            self.inject()

    def inject(self):
        r, t = self.rng, TIMEOUT_MS / 1000.0
        kind = r.choice(["leg_hang_short", "leg_hang_long", "leg_hang_write", "leg_error_write",
                         "leg_error_read", "leg_error_all", "leg_flap", "leg_delay",
                         "leg_bandwidth", "log_error", "log_hang", "nothing"])
        if kind.startswith("log_"):
            i = r.choice(LOGS)
            # Never the last log copy: the other one must read 'A' in a fresh status line (a
            # healed disk stays 'F' until the operator's rejoin_log), else the log is lost and
            # writes fail, as documented.
            with self.lock:
                # Printed after the last log heal has settled: a copy failed just before it
                # shows 'F'.
                fresh = (time.monotonic() - self.status_t < 6
                         and self.status_t > self.log_heal_t + SETTLE_S)
                other_ok = fresh and len(self.logs) == 2 and self.logs[1 - LOGS.index(i)] == "A"
            if not other_ok or any(j in self.active for j in LOGS):
                return
            d = self.disks[i]
            if kind == "log_error":
                d.error("all")
            else:
                d.hang("all")
            self.active[i] = (kind, time.monotonic() + r.uniform(1.0, 3.0) * t)
            self.note("%s(d%d)" % (kind, i))
            return
        if kind == "nothing":
            return
        leg = r.choice(LEGS)
        d = self.disks[leg]
        if kind in ("leg_delay", "leg_bandwidth"):
            # Slowness may hit a leg while the other is out: I/O must wait, not fail.
            if leg in self.active:
                return
            if kind == "leg_delay":
                d.delay(r.choice((50, 200, 800)))
            else:
                d.bandwidth(r.choice((1, 2, 4)) * MiB)
            self.active[leg] = (kind, time.monotonic() + r.uniform(2.0, 8.0))
            self.note(kind)
            return
        if not self.leg_may_fail(leg):
            return
        if kind == "leg_flap":
            self.note(kind)
            self.active[leg] = (kind, float("inf"))
            for _ in range(r.randint(2, 5)):
                d.error("all")
                time.sleep(r.uniform(0.2, 1.0))
                d.heal()
                time.sleep(r.uniform(0.2, 1.0))
            self.active.pop(leg, None)
            return
        if kind == "leg_hang_short":
            d.hang("all")
            until = r.uniform(0.2, 0.6) * t
        elif kind == "leg_hang_long":
            d.hang("all")
            until = r.uniform(1.5, 4.0) * t
        elif kind == "leg_hang_write":
            d.hang("write")
            until = r.uniform(1.5, 3.0) * t
        else:
            d.error(kind.split("_")[-1])
            until = r.uniform(1.0, 4.0)
        self.active[leg] = (kind, time.monotonic() + until)
        self.note(kind)


def run_epoch(args, disks, work, epoch, verify, final, rng, counts, totals):
    """One boot. Returns (errors, power_cut)."""
    nemesis = Nemesis(rng, disks, counts, [])
    cut_at = None
    if not final and rng.random() < args.cut_rate:
        cut_at = rng.uniform(0.3, 0.95) * args.epoch_seconds
    state = {"started": None, "guest": None}

    def hook(line):
        nemesis.observe(line)
        if "rtm-soak workload started" in line and state["started"] is None:
            state["started"] = time.monotonic()
            if not final:
                nemesis.start()
            if cut_at is not None:
                state["timer"] = threading.Timer(cut_at, power_cut)
                state["timer"].start()
        if "rtm-soak workload ended" in line:
            nemesis.stop_ev.set()

    def power_cut():
        g = state["guest"]
        if g.result is not None and not g.result.done:
            nemesis.stop_ev.set()
            g.kill()

    def handler(words):
        if words[:1] == ["soak-heal"]:
            nemesis.heal_all()
            return "ok"
        return None

    seed = rng.randrange(1, 1 << 30)
    g = Guest(args.arch, args.kernel, args.initrd, disks,
              append="rtm.scenario=soak_epoch rtm.soak=%d,%d,%d,%s,%d loglevel=4 %s"
              % (epoch, args.epoch_seconds, seed, verify, int(final), args.append),
              timeout_s=args.epoch_seconds + 600, handler=handler, workdir=work,
              name="epoch%d" % epoch, echo=args.verbose, line_hook=hook)
    state["guest"] = g
    res = g.run()
    if state.get("timer"):
        state["timer"].cancel()
    killed = bool(res.killed) and cut_at is not None
    if killed:
        # The power is gone before anything held is released: held requests are dropped.
        for i, d in enumerate(disks[:JOURNAL]):
            d.powercut("random", seed * 10 + i)
    nemesis.heal_all()
    errors = ["guest: %s" % f for f in res.fails]
    errors += ["kernel: %s" % l for l in res.kernel_problems()]
    errors += [l for l in res.lines() if "rtm-stress: BAD" in l][:10]
    if res.timed_out:
        errors.append("epoch timed out after %ss" % g.timeout_s)
    elif not res.done and not killed:
        errors.append("guest did not finish (no @@DONE)")
    stress = res.result("stress")
    if stress:
        kv = dict(w.split("=") for w in stress.split() if "=" in w)
        for k, v in kv.items():
            totals[k] = totals.get(k, 0) + int(v)
        if int(kv.get("write_errors", 0)) or int(kv.get("read_errors", 0)):
            errors.append("I/O errors reached the application: %s" % stress)
    verified = [v for k, v in res.results.items() if k.startswith("verified_") for v in v]
    totals["verify_passes"] = totals.get("verify_passes", 0) + len(verified)
    desc = "faults %s" % (" ".join(l.split()[1] for l in nemesis.log) or "none")
    if killed:
        desc += "; power cut at %.0f s, caches lost random(%d*10+disk)" % (cut_at, seed)
    else:
        for d in disks:
            d.writeback()
    print("    epoch %d (%s, verify %s): %s; %s" % (epoch, "final" if final else "workload",
                                                   verify, desc, stress or "-"))
    act = [l for l in res.lines() if "rtm-soak activation:" in l]
    if act:
        print("      " + act[-1].split("rtm-soak activation: ", 1)[1].strip())
    return errors, killed


def final_check(disks, errors):
    a = disks[0].read_backing(0, SIZES_MIB[0] * MiB)
    b = disks[1].read_backing(0, SIZES_MIB[1] * MiB)
    if a != b:
        diff = [i for i in range(0, len(a), 4096) if a[i:i + 4096] != b[i:i + 4096]]
        errors.append("legs differ in %d 4 KiB blocks, first at %d KiB" % (len(diff), diff[0] // 1024))
    logs = [decode_log(disks[i].read_backing(0, MiB)) for i in LOGS]
    for i, d in zip(LOGS, logs):
        if "error" in d:
            errors.append("log copy on d%d invalid: %s" % (i, d["error"]))
        elif d["dirty"]:
            errors.append("log copy on d%d has %d dirty regions after a clean end" % (i, len(d["dirty"])))
    if all("error" not in d for d in logs) and logs[0]["generation"] != logs[1]["generation"]:
        errors.append("log copies at generations %d and %d" % (logs[0]["generation"],
                                                               logs[1]["generation"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", required=True, choices=Guest.ARCHES)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=3, help="workload boots (default 3)")
    ap.add_argument("--minutes", type=float, default=0,
                    help="instead of --epochs: workload boots until this much time is used")
    ap.add_argument("--epoch-seconds", type=int, default=45)
    ap.add_argument("--cut-rate", type=float, default=0.5,
                    help="probability that a workload boot ends in a power cut")
    ap.add_argument("--append", default="")
    ap.add_argument("--label", default="")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1000000)
    label = args.label or args.arch
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="rtmirror-soak-%s-" % args.arch)
    replay = ("python3 qemu-tests/soak.py --arch %s --kernel %s --initrd %s --seed %d "
              "--epochs %d --epoch-seconds %d --cut-rate %s"
              % (args.arch, args.kernel, args.initrd, seed, args.epochs, args.epoch_seconds,
                 args.cut_rate))
    print("soak seed %d" % seed)
    disks = [FaultDisk(work, "d%d" % i, s * MiB) for i, s in enumerate(SIZES_MIB)]
    passed = failed = 0
    counts, totals = {}, {}
    t0 = time.monotonic()
    try:
        for i in LEGS + LOGS:
            disks[i].cache(True)
        epoch, verify, failed_run = 0, "exact", False
        while True:
            epoch += 1
            if args.minutes:
                final = time.monotonic() - t0 > args.minutes * 60
            else:
                final = epoch > args.epochs
            te = time.monotonic()
            errors, cut = run_epoch(args, disks, work, epoch, verify, final, rng, counts, totals)
            if final and not errors:
                final_check(disks, errors)
            name = "final" if final else "epoch%d" % epoch
            if errors:
                failed += 1
                failed_run = True
                print("FAIL %s/soak/%s (%.0fs) seed %d" % (label, name, time.monotonic() - te, seed))
                for e in errors[:20]:
                    print("    " + e)
            else:
                passed += 1
                print("PASS %s/soak/%s (%.0fs) seed %d" % (label, name, time.monotonic() - te, seed))
            sys.stdout.flush()
            verify = "cut" if cut else "exact"
            if final or failed_run:
                break
    finally:
        for d in disks:
            d.stop()
        stop_all()
    print("    faults injected: %s" % (", ".join("%s %d" % kv for kv in sorted(counts.items()))
                                       or "none"))
    print("    operations: %s" % " ".join("%s=%d" % kv for kv in sorted(totals.items())))
    print("    %d boots in %.0f s" % (epoch, time.monotonic() - t0))
    if failed:
        print("    console logs: %s" % work)
        print("    replay: %s" % replay)
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
