#!/usr/bin/env python3
"""Benchmark rtmirror against its peers in one guest boot (docs/benchmarks.md).

One QEMU guest (TCG) with four raw image files as virtio-blk disks: legs d0, d1 (/dev/vda,
vdb) and log/metadata disks d2, d3 (vdc, vdd). The guest (qemu-tests/bench/guest/bench.sh)
builds each configuration on them in turn and runs the same fio jobs on it; rounds are
interleaved, each in a rotated order. Everything is reported as ratios between configurations
of the same boot: under TCG on a shared 2-core host, wall-clock numbers mean little.

usage: bench.py --arch x86_64 --kernel bzImage --initrd bench.cpio.gz [--smoke]
                [--out docs/benchmarks] [--commit ID] [--rounds N] [--runtime S] ...
       bench.py --report results.json      (tables and plots again from saved results)

--smoke: a few seconds per configuration; checks only that every configuration ran every job
and that the legs of every mirror are byte-identical afterwards (the host compares the image
files); never a speed. Ends with "N passed, N failed" (so does a full run, for its checks).
"""
import argparse
import base64
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Guest  # noqa: E402
from harness.raw_disk import RawDisk  # noqa: E402

MiB = 1 << 20

CONFIGS = ["single", "linear", "rtm2", "rtm1", "rtm0", "rtm2t", "dmm_disk", "dmm_core",
           "dmraid", "md"]
LABELS = {
    "single": "single leg",
    "linear": "dm-linear",
    "rtm2": "rtmirror, 2 logs",
    "rtm1": "rtmirror, 1 log",
    "rtm0": "rtmirror, 0 logs (in core)",
    "rtm2t": "rtmirror, 2 logs, io_timeout_ms 15000",
    "dmm_disk": "dm-mirror, disk log",
    "dmm_core": "dm-mirror, core log",
    "dmraid": "dm-raid raid1",
    "md": "md raid1, internal bitmap",
}
SHORT = {"single": "single", "linear": "linear", "rtm2": "rtm 2 logs", "rtm1": "rtm 1 log",
         "rtm0": "rtm 0 logs", "rtm2t": "rtm 2 logs+timeout", "dmm_disk": "dm-mirror disk",
         "dmm_core": "dm-mirror core", "dmraid": "dm-raid", "md": "md raid1"}
MIRRORS = [c for c in CONFIGS if c not in ("single", "linear")]
JOBS = ["seqwrite", "randwrite1", "randwrite16", "randread1", "randread16", "randrw", "fsync"]
JOB_LABELS = {
    "seqwrite": "seq write 1M qd4",
    "randwrite1": "rand write 4k qd1",
    "randwrite16": "rand write 4k qd16",
    "randread1": "rand read 4k qd1",
    "randread16": "rand read 4k qd16",
    "randrw": "randrw 70/30 4k qd16",
    "fsync": "ext4 16k files + fsync",
}
# what each job's throughput number is
JOB_UNIT = {"seqwrite": "MiB/s", "fsync": "files/s"}
SMOKE_JOBS = ["seqwrite", "randwrite16", "randrw", "fsync"]
RESYNC_REGIONS = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]   # 64 KiB .. 16 MiB
RESYNC_DMRAID = [128, 1024, 8192, 32768]
LOGIO_CONFIGS = ["rtm2", "rtm1", "dmm_disk", "dmraid"]
FLUSH_OPS = 200     # operations of each kind in the flush phase (bench.sh: 800k / 4k)
LOGIO_WORKLOADS = ["raw", "ext4sync", "ext4async"]
LOGIO_LABELS = {"raw": "raw 1 MiB O_DIRECT writes", "ext4sync": "ext4, 64 KiB O_SYNC writes",
                "ext4async": "ext4, buffered writes + final fsync"}


# ---------------------------------------------------------------- host side of the guest's run
def compare_files(a, b, fix=False):
    """Compare image files a and b MiB by MiB; with fix, copy a's differing MiBs to b (and
    fsync b). Returns (differing MiB count, first differing byte offset or None)."""
    n, first = 0, None
    with open(a, "rb") as fa, open(b, "r+b" if fix else "rb") as fb:
        off = 0
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if not x and not y:
                break
            if x != y:
                n += 1
                if first is None:
                    first = off + next(i for i in range(min(len(x), len(y)) + 1)
                                       if i == min(len(x), len(y)) or x[i] != y[i])
                if fix:
                    fb.seek(off)
                    fb.write(x)
            off += len(x)
        if fix and n:
            fb.flush()
            os.fsync(fb.fileno())
    return n, first


class Host:
    """Answers the guest's @@HOST compare / syncleg; records what it found."""

    def __init__(self, legs):
        self.legs = legs
        self.compare = {}     # tag -> "identical" | "differ: ..."
        self.synced = {}      # tag -> MiB copied

    def __call__(self, words):
        if not words:
            return None
        if words[0] == "compare":
            tag = words[1]
            n, first = compare_files(self.legs[0].file, self.legs[1].file)
            self.compare[tag] = "identical" if n == 0 else \
                "differ: %d MiB, first at byte %d" % (n, first)
            return "ok " + self.compare[tag]
        if words[0] == "syncleg":
            n, _ = compare_files(self.legs[0].file, self.legs[1].file, fix=True)
            self.synced[words[1]] = n
            return "ok copied %d MiB" % n
        return None


def decode_fio(lines):
    text = gzip.decompress(base64.b64decode("".join(lines))).decode("utf-8", "replace")
    return json.loads(text[text.index("{"):])   # fio may put warnings before the JSON


def parse_stat(text):
    """'vda:r,rs,w,ws,f ... top:...' -> {disk: {reads, rsect, writes, wsect, flushes}}"""
    out = {}
    for item in text.split():
        name, nums = item.split(":")
        r, rs, w, ws, f = (int(x) for x in nums.split(","))
        out[name] = {"reads": r, "rsect": rs, "writes": w, "wsect": ws, "flushes": f}
    return out


def fio_metrics(j):
    job = j["jobs"][0]
    m = {"runtime_ms": job.get("job_runtime")}
    for d in ("read", "write"):
        s = job[d]
        clat = s.get("clat_ns", {})
        m[d] = {"ios": s["total_ios"], "iops": s["iops"], "bw": s["bw_bytes"],
                "clat_mean": clat.get("mean"), "clat_max": clat.get("max"),
                "pct": clat.get("percentile") if s["total_ios"] else None}
    sync = job.get("sync")
    if sync and sync.get("total_ios"):
        lat = sync["lat_ns"]
        m["sync"] = {"ios": sync["total_ios"], "lat_mean": lat.get("mean"),
                     "lat_max": lat.get("max"), "pct": lat.get("percentile")}
    return m


def collect(res, host, args):
    """GuestResult -> the saved data (metrics only, no raw fio output)."""
    data = {"runs": {}, "ran": {}, "compare": host.compare, "synced": host.synced,
            "resync": {}, "logio": {}, "flush": {}, "errors": []}
    for key, vals in res.results.items():
        parts = key.split(".")
        if parts[0] == "fio" and len(parts) == 4:
            _, cfg, job, rnd = parts
            try:
                m = fio_metrics(decode_fio(vals))
            except Exception as e:  # corrupted line: the run counts as missing
                data["errors"].append("%s: fio output undecodable: %s" % (key, e))
                continue
            st = res.result("st.%s.%s.%s" % (cfg, job, rnd))
            m["stat"] = parse_stat(st) if st else None
            m["round"] = int(rnd)
            data["runs"].setdefault(cfg, {}).setdefault(job, []).append(m)
        elif parts[0] == "ran" and len(parts) == 3:
            data["ran"].setdefault(parts[1], {})[parts[2]] = vals[-1]
        elif parts[0] == "resync" and len(parts) == 3:
            data["resync"].setdefault(parts[1], {})[parts[2]] = int(vals[-1])
        elif parts[0] in ("logio", "flush") and len(parts) == 3:
            try:
                data[parts[0]].setdefault(parts[1], {})[parts[2]] = parse_stat(vals[-1])
            except ValueError:
                data["errors"].append("%s: %s" % (key, vals[-1]))
    for jobs in data["runs"].values():
        for runs in jobs.values():
            runs.sort(key=lambda m: m["round"])
    return data


# ---------------------------------------------------------------- numbers
def throughput(job, m):
    if job == "seqwrite":
        return m["write"]["bw"] / MiB
    if job.startswith("randread"):
        return m["read"]["iops"]
    if job == "randrw":
        return m["read"]["iops"] + m["write"]["iops"]
    return m["write"]["iops"]


def latency(job, m):
    """(p99, max) in ms of the job's characteristic operation: the fsync of the fsync job,
    reads for read jobs and for randrw, else writes."""
    if job == "fsync":
        s = m.get("sync")
        if not s:
            return None, None
        return s["pct"].get("99.000000") / 1e6, s["lat_max"] / 1e6
    d = m["read"] if (job.startswith("randread") or job == "randrw") else m["write"]
    if not d["pct"]:
        return None, None
    return d["pct"].get("99.000000") / 1e6, d["clat_max"] / 1e6


def requests_per_io(m):
    """Requests completed by the disks per application I/O, from the job's counters."""
    st = m.get("stat")
    if not st:
        return None
    w = m["write"]["ios"]
    r = m["read"]["ios"]
    leg = [st[d] for d in ("vda", "vdb")]
    log = [st[d] for d in ("vdc", "vdd")]
    out = {}
    if w:
        out["leg_w"] = sum(x["writes"] for x in leg) / w
        out["log_w"] = sum(x["writes"] for x in log) / w
        out["leg_f"] = sum(x["flushes"] for x in leg) / w
        out["log_f"] = sum(x["flushes"] for x in log) / w
    if r:
        out["leg_r"] = sum(x["reads"] for x in leg) / r
    return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def by_round(data, cfg, job):
    return {m["round"]: m for m in data["runs"].get(cfg, {}).get(job, [])}


def ratios(data, cfg, job, ref):
    """Per-round ratios of cfg's throughput to ref's (same round): (median, min, max, n)."""
    a, b = by_round(data, cfg, job), by_round(data, ref, job)
    rs = [throughput(job, a[r]) / throughput(job, b[r]) for r in a
          if r in b and throughput(job, b[r])]
    if not rs:
        return None
    return statistics.median(rs), min(rs), max(rs), len(rs)


def fmt(x, nd=2):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%." + str(nd) + "f") % x


def fmt_ratio(r):
    if r is None:
        return "-"
    m, lo, hi, n = r
    if n == 1:
        return fmt(m)
    return "%s (%s-%s)" % (fmt(m), fmt(lo), fmt(hi))


# ---------------------------------------------------------------- report
def pool(boots):
    """Results of several boots of the same code as one: the rounds of boot k (1-based)
    become rounds 100k+r, so every ratio still compares configurations of the same round of
    the same boot; the flush, resync and log I/O figures are the last boot's."""
    out = {"runs": {}, "ran": {}, "compare": {}, "synced": {}, "errors": [], "checks": [],
           "boots": []}
    for k, b in enumerate(boots, 1):
        for cfg, jobs in b["runs"].items():
            for job, runs in jobs.items():
                for m in runs:
                    m = dict(m, round=100 * k + m["round"])
                    out["runs"].setdefault(cfg, {}).setdefault(job, []).append(m)
        for cfg, rs in b["ran"].items():
            for r, st in rs.items():
                out["ran"].setdefault(cfg, {})[str(100 * k + int(r))] = st
        out["compare"].update({"boot%d:%s" % (k, t): v for t, v in b["compare"].items()})
        out["errors"] += b["errors"]
        out["checks"] += [("boot %d: %s" % (k, n), ok) for n, ok in b["checks"]]
        out["boots"].append(b)
    last = boots[-1]
    for key in ("resync", "logio", "flush"):
        out[key] = last.get(key, {})
    meta = dict(last["meta"])
    meta["rounds"] = sum(b["meta"]["rounds"] for b in boots)
    meta["boots"] = ["%s, %s rounds, %s" % (b["meta"]["date"], b["meta"]["rounds"],
                                            b["meta"]["duration"]) for b in boots]
    meta["duration"] = "; ".join(b["meta"]["duration"] for b in boots)
    meta["clock"] = "; ".join(b["meta"].get("clock", "?") for b in boots)
    meta["date"] = ", ".join(b["meta"]["date"] for b in boots)
    meta["kernel"] = "; ".join(sorted({b["meta"]["kernel"] for b in boots}))
    out["meta"] = meta
    return out


def report(data, out_md, plots_prefix):
    meta = data["meta"]
    configs = [c for c in meta["configs"] if c in data["runs"]]
    jobs = [j for j in meta["jobs"] if any(j in data["runs"].get(c, {}) for c in configs)]
    L = []
    add = L.append
    add("# rtmirror benchmark: %s, commit %s" % (meta["arch"], meta["commit"]))
    add("")
    boots = data.get("boots") or [data]
    add("Generated by `bash scripts/bench.sh` (method and meaning of every number: "
        "[docs/benchmarks.md](../benchmarks.md)). %s, %d rounds in all, each round every "
        "configuration in a rotated order, %s s per fio job. **Ratios between configurations "
        "measured in the same round of the same boot are the result**; absolute numbers are "
        "from QEMU TCG (no KVM) on a shared 2-core host and say nothing about real hardware."
        % ("One guest boot" if len(boots) == 1 else
           "%d guest boots of the same code, their rounds pooled" % len(boots),
           meta["rounds"], meta["runtime"]))
    add("")
    add("| | |")
    add("| --- | --- |")
    for k in ("commit", "kernel_commit", "date", "kernel", "qemu", "host", "disks", "guest",
              "region", "fio", "clock", "duration", "boots"):
        if meta.get(k):
            v = meta[k]
            add("| %s | %s |" % (k.replace("_", " "), "; ".join(v) if isinstance(v, list) else v))
    add("")

    if configs:   # the main phase ran
        def ratio_table(ref, title):
            add("## %s" % title)
            add("")
            add("Throughput of each configuration divided by that of %s in the same round; "
                "median of the %d rounds, (min-max) in brackets. Above 1: faster."
                % (LABELS[ref], meta["rounds"]))
            add("")
            add("| configuration | " + " | ".join(JOB_LABELS[j] for j in jobs) + " |")
            add("| --- |" + " --- |" * len(jobs))
            for c in configs:
                add("| %s | " % LABELS[c] + " | ".join(fmt_ratio(ratios(data, c, j, ref))
                                                      for j in jobs) + " |")
            add("")

        if "dmraid" in configs:
            ratio_table("dmraid", "Throughput relative to dm-raid raid1")
        if "single" in configs:
            ratio_table("single", "Throughput relative to the single leg (the limit)")

        if len(boots) > 1 and "dmraid" in configs:
            add("## Each boot on its own")
            add("")
            add("Throughput relative to dm-raid raid1, median of each boot's rounds: how far "
                "the boots agree.")
            add("")
            add("| configuration | boot | " + " | ".join(JOB_LABELS[j] for j in jobs) + " |")
            add("| --- | --- |" + " --- |" * len(jobs))
            for c in configs:
                for k, b in enumerate(boots, 1):
                    add("| %s | %d | " % (LABELS[c], k) + " | ".join(
                        fmt((ratios(b, c, j, "dmraid") or [None])[0]) for j in jobs) + " |")
            add("")
        add("## Throughput (absolute, TCG)")
        add("")
        add("Median of the rounds; IOPS unless noted; spread = (max - min) / median over the rounds.")
        add("")
        add("| configuration | " + " | ".join("%s [%s]" % (JOB_LABELS[j], JOB_UNIT.get(j, "IOPS"))
                                              for j in jobs) + " |")
        add("| --- |" + " --- |" * len(jobs))
        for c in configs:
            cells = []
            for j in jobs:
                xs = [throughput(j, m) for m in data["runs"][c].get(j, [])]
                if not xs:
                    cells.append("-")
                    continue
                mm = statistics.median(xs)
                cells.append("%s (±%.0f%%)" % (fmt(mm), 100 * (max(xs) - min(xs)) / mm if mm else 0))
            add("| %s | " % LABELS[c] + " | ".join(cells) + " |")
        add("")

        add("## Completion latency p99 / max (ms)")
        add("")
        add("fio `clat_ns` (the fsync job: latency of the fsync), writes for write jobs, reads for "
            "read jobs and randrw; median over the rounds of each round's p99 and of each round's max.")
        add("")
        add("| configuration | " + " | ".join(JOB_LABELS[j] for j in jobs) + " |")
        add("| --- |" + " --- |" * len(jobs))
        for c in configs:
            cells = []
            for j in jobs:
                ls = [latency(j, m) for m in data["runs"][c].get(j, [])]
                cells.append("%s / %s" % (fmt(med(p for p, _ in ls)), fmt(med(x for _, x in ls))))
            add("| %s | " % LABELS[c] + " | ".join(cells) + " |")
        add("")

        add("## Device requests per application I/O")
        add("")
        add("Requests completed by the virtio disks during the job (`/sys/block/vd*/stat`), divided "
            "by the I/Os fio issued (median over the rounds). *leg w*: writes on both legs per "
            "application write (2 for a plain mirror; a 1 MiB write may take several requests); "
            "*log w*: writes on the log/metadata disks (vdc+vdd: rtmirror's log copies, dm-mirror's "
            "disk log, dm-raid's metadata devices; md keeps its bitmap on the legs, counted in "
            "leg w) per application write; *leg f*, *log f*: flushes (a FUA write is a write plus a "
            "flush here: virtio-blk has no FUA); *leg r*: reads on the legs per application read.")
        add("")
        cols = [("leg_w", "leg w"), ("log_w", "log w"), ("leg_f", "leg f"), ("log_f", "log f"),
                ("leg_r", "leg r")]
        for j in jobs:
            present = [k for k, _ in cols if any(
                k in (requests_per_io(m) or {}) for c in configs for m in data["runs"][c].get(j, []))]
            if not present:
                continue
            add("**%s**" % JOB_LABELS[j])
            add("")
            add("| configuration | " + " | ".join(lbl for k, lbl in cols if k in present) + " |")
            add("| --- |" + " --- |" * len(present))
            for c in configs:
                rq = [requests_per_io(m) or {} for m in data["runs"][c].get(j, [])]
                add("| %s | " % LABELS[c] + " | ".join(fmt(med(x.get(k) for x in rq), 3)
                                                      for k in present) + " |")
            add("")

    if data.get("flush"):
        add("## What a flush costs")
        add("")
        add("%d O_DIRECT 4 KiB writes to the device, each followed by fsync() of the device "
            "(*fsync*: an empty REQ_PREFLUSH bio), and %d O_DIRECT|O_DSYNC 4 KiB writes "
            "(*dsync*: REQ_FUA writes); requests completed per operation: writes and flushes "
            "on each leg (vda; vdb), and on the log/metadata disks (vdc+vdd). A single disk "
            "needs 1 write and 1 flush per operation for both." % (FLUSH_OPS, FLUSH_OPS))
        add("")
        add("| configuration | fsync: leg w | leg f | log w | log f | dsync: leg w | leg f | "
            "log w | log f |")
        add("| --- |" + " --- |" * 8)
        for c in [c for c in meta["configs"] if c in data["flush"]]:
            cells = []
            for w in ("fsync", "dsync"):
                st = data["flush"][c].get(w)
                if not st:
                    cells += ["-"] * 4
                    continue

                def per(x):
                    return fmt(x / FLUSH_OPS, 2)
                cells += ["%s; %s" % (per(st["vda"]["writes"]), per(st["vdb"]["writes"])),
                          "%s; %s" % (per(st["vda"]["flushes"]), per(st["vdb"]["flushes"])),
                          per(st["vdc"]["writes"] + st["vdd"]["writes"]),
                          per(st["vdc"]["flushes"] + st["vdd"]["flushes"])]
            add("| %s | " % LABELS[c] + " | ".join(cells) + " |")
        add("")
    if data.get("resync"):
        regions = sorted({int(r) for t in data["resync"].values() for r in t})
        tgts = [t for t in ("rtm2", "dmraid") if t in data["resync"]]
        add("## Full resync time against region size")
        add("")
        add("A new mirror (blank log or metadata, no `nosync`) over %s MiB legs: host-clock "
            "time from creation until in sync and idle (polled every 0.1 s). Seconds." %
            meta.get("leg_mib"))
        add("")
        add("| region | " + " | ".join(LABELS[t] for t in tgts) + " |")
        add("| --- |" + " --- |" * len(tgts))
        for r in regions:
            add("| %s | " % human(r * 512) + " | ".join(
                fmt(data["resync"][t].get(str(r), 0) / 1000.0 or None) for t in tgts) + " |")
        add("")
    if data.get("logio"):
        add("## Log I/O per leg I/O")
        add("")
        add("Write requests on the log/metadata disks (vdc+vdd) per write request on one leg "
            "(vda), and the same in bytes, for: %s." % "; ".join(
                "*%s*: %s" % (w, LOGIO_LABELS[w]) for w in LOGIO_WORKLOADS))
        add("")
        add("| configuration | " + " | ".join("%s: requests / bytes" % w for w in LOGIO_WORKLOADS)
            + " |")
        add("| --- |" + " --- |" * len(LOGIO_WORKLOADS))
        for c, ws in data["logio"].items():
            cells = []
            for w in LOGIO_WORKLOADS:
                st = ws.get(w)
                if not st or not st["vda"]["writes"]:
                    cells.append("-")
                    continue
                lw = st["vdc"]["writes"] + st["vdd"]["writes"]
                lb = st["vdc"]["wsect"] + st["vdd"]["wsect"]
                cells.append("%s / %s (%d / %d)" % (fmt(lw / st["vda"]["writes"], 3),
                                                   fmt(lb / st["vda"]["wsect"], 4), lw,
                                                   st["vda"]["writes"]))
            add("| %s | " % LABELS[c] + " | ".join(cells) + " |")
        add("")

    add("## Checks")
    add("")
    for name, ok in data["checks"]:
        add("- %s: %s" % ("pass" if ok else "**FAIL**", name))
    add("")
    plots = make_plots(data, plots_prefix, configs, jobs)
    if plots:
        add("## Plots")
        add("")
        for p in plots:
            add("![%s](%s)" % (os.path.basename(p), os.path.basename(p)))
            add("")
    with open(out_md, "w") as f:
        f.write("\n".join(L))
    return out_md


def human(b):
    for unit, n in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
        if b >= n and b % n == 0:
            return "%d %s" % (b // n, unit)
    return "%d B" % b


def make_plots(data, prefix, configs, jobs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plots (apt-get install python3-matplotlib)")
        return []
    made = []

    def bars(ref, path, title):
        cs = [c for c in configs if c != ref]
        fig, ax = plt.subplots(figsize=(13, 5.5))
        width = 0.8 / len(cs)
        for i, c in enumerate(cs):
            meds, lo, hi = [], [], []
            for j in jobs:
                r = ratios(data, c, j, ref)
                m = r[0] if r else 0
                meds.append(m)
                lo.append(m - r[1] if r else 0)
                hi.append(r[2] - m if r else 0)
            xs = [k + (i - (len(cs) - 1) / 2) * width for k in range(len(jobs))]
            ax.bar(xs, meds, width, yerr=[lo, hi], capsize=1.5, label=SHORT[c],
                   color=plt.cm.tab10(CONFIGS.index(c) % 10))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(jobs)))
        ax.set_xticklabels([JOB_LABELS[j] for j in jobs], rotation=15, fontsize=8)
        ax.set_ylabel("throughput / %s (same round)" % LABELS[ref])
        ax.set_title(title)
        ax.legend(fontsize=7, ncol=5)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)

    if "dmraid" in configs:
        bars("dmraid", prefix + "-vs-dmraid.png",
             "Throughput relative to dm-raid raid1 (median of rounds, bars: min-max)")
    if "single" in configs:
        bars("single", prefix + "-vs-single.png",
             "Throughput relative to a single leg (median of rounds, bars: min-max)")

    # latency CDF from fio's clat percentiles (the median round by throughput)
    cdf_jobs = [j for j in ("randwrite1", "randwrite16", "fsync") if j in jobs]
    if cdf_jobs:
        fig, axes = plt.subplots(1, len(cdf_jobs), figsize=(5 * len(cdf_jobs), 4.5))
        if len(cdf_jobs) == 1:
            axes = [axes]
        for ax, j in zip(axes, cdf_jobs):
            for c in configs:
                runs = sorted(data["runs"][c].get(j, []), key=lambda m: throughput(j, m))
                if not runs:
                    continue
                m = runs[len(runs) // 2]
                pct = (m.get("sync") or {}).get("pct") if j == "fsync" else m["write"]["pct"]
                if not pct:
                    continue
                pts = sorted((float(p), v / 1e6) for p, v in pct.items())
                ax.plot([v for _, v in pts], [p for p, _ in pts], marker=".", label=SHORT[c],
                        color=plt.cm.tab10(CONFIGS.index(c) % 10))
            ax.set_xscale("log")
            ax.set_xlabel("%s latency (ms)" % ("fsync" if j == "fsync" else "completion"))
            ax.set_ylabel("percentile")
            ax.set_title(JOB_LABELS[j])
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(prefix + "-latency-cdf.png", dpi=90)
        plt.close(fig)
        made.append(prefix + "-latency-cdf.png")

    if data.get("resync"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for t, pts in data["resync"].items():
            xs = sorted(int(r) for r in pts)
            ax.plot([x * 512 / 1024 for x in xs], [pts[str(x)] / 1000.0 for x in xs],
                    marker="o", label=LABELS.get(t, t))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("region size (KiB)")
        ax.set_ylabel("full resync time (s)")
        ax.set_title("Full resync of %s MiB legs against region size" % data["meta"].get("leg_mib"))
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(prefix + "-resync.png", dpi=90)
        plt.close(fig)
        made.append(prefix + "-resync.png")

    if data.get("logio"):
        cs = list(data["logio"])
        fig, ax = plt.subplots(figsize=(8, 4.5))
        width = 0.8 / len(cs)
        for i, c in enumerate(cs):
            ys = []
            for w in LOGIO_WORKLOADS:
                st = data["logio"][c].get(w)
                ys.append((st["vdc"]["writes"] + st["vdd"]["writes"]) / st["vda"]["writes"]
                          if st and st["vda"]["writes"] else 0)
            ax.bar([k + (i - (len(cs) - 1) / 2) * width for k in range(len(LOGIO_WORKLOADS))],
                   ys, width, label=SHORT.get(c, c), color=plt.cm.tab10(CONFIGS.index(c) % 10))
        ax.set_xticks(range(len(LOGIO_WORKLOADS)))
        ax.set_xticklabels([LOGIO_LABELS[w] for w in LOGIO_WORKLOADS], fontsize=8)
        ax.set_ylabel("log write requests (both copies) per leg write request")
        ax.set_title("Log I/O per leg I/O")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(prefix + "-logio.png", dpi=90)
        plt.close(fig)
        made.append(prefix + "-logio.png")
    return made


# ---------------------------------------------------------------- checks
def checks(data, res, args):
    out = []
    meta = data["meta"]
    out.append(("guest ran to the end (%s)" % res.summary(),
                res.done and not res.timed_out and res.result("bench_done") == "1"))
    out.append(("no @@FAIL from the guest%s" % (": " + "; ".join(res.fails[:5]) if res.fails else ""),
                not res.fails))
    probs = res.kernel_problems()
    out.append(("kernel log clean%s" % (": " + probs[0] if probs else ""), not probs))
    out.append(("every fio output decoded%s" % (": " + "; ".join(data["errors"][:3])
                                                if data["errors"] else ""), not data["errors"]))
    if "main" in meta["phases"]:
        for c in meta["configs"]:
            missing = ["%s/%d" % (j, r) for j in meta["jobs"] for r in range(1, meta["rounds"] + 1)
                       if r not in by_round(data, c, j)]
            bad = {r: s for r, s in data["ran"].get(c, {}).items() if s != "ok"}
            if len(data["ran"].get(c, {})) < meta["rounds"]:
                bad["missing rounds"] = "%d of %d" % (len(data["ran"].get(c, {})), meta["rounds"])
            out.append(("%s ran every job in every round%s" % (
                c, (": missing " + ", ".join(missing[:6]) if missing else "") +
                (" %s" % bad if bad else "")), not missing and not bad))
            if c in MIRRORS:
                tags = ["%s.%d" % (c, r) for r in range(1, meta["rounds"] + 1)]
                st = {t: data["compare"].get(t, "not compared") for t in tags}
                bad = {t: s for t, s in st.items() if s != "identical"}
                out.append(("%s: legs byte-identical after each round%s" % (
                    c, (": %s" % bad) if bad else ""), not bad))
    for tag, s in sorted(data["compare"].items()):
        if tag.startswith(("resync.", "logio.", "flush.")):
            out.append(("%s: legs byte-identical (%s)" % (tag, s), s == "identical"))
    return out


# ---------------------------------------------------------------- main
def host_tsc_khz():
    """The host's TSC frequency: under TCG the guest's TSC is the host's."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except OSError:
        pass
    return None


def kernel_cmdline(args, phases, configs, jobs):
    p = ["rdinit=/init", "rtm.scenario=bench",
         "bench.phases=" + ",".join(phases), "bench.configs=" + ",".join(configs),
         "bench.jobs=" + ",".join(jobs), "bench.rounds=%d" % args.rounds,
         "bench.runtime=%s" % args.runtime, "bench.region=%d" % args.region]
    if "resync" in phases:
        p.append("bench.resync_regions=" + ",".join(map(str, args.resync_regions)))
        if args.resync_dmraid:
            p.append("bench.resync_dmraid=" + ",".join(map(str, args.resync_dmraid)))
    if "logio" in phases:
        p.append("bench.logio_configs=" + ",".join(args.logio_configs))
    if args.arch == "x86_64":
        # The guest kernel has neither HPET (no ACPI) nor a PM timer, and under TCG its TSC
        # calibration against the PIT fails: it would fall back to jiffies (1 ms), too coarse
        # for fio's latencies. The TSC it reads is the host's: give its frequency.
        khz = args.tsc_khz or host_tsc_khz()
        if khz:
            p += ["tsc_early_khz=%d" % khz, "tsc=reliable"]
    return " ".join(p)


def csv(s):
    return [x for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="x86_64", choices=Guest.ARCHES)
    ap.add_argument("--kernel")
    ap.add_argument("--initrd")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--report", nargs="+", metavar="JSON",
                    help="no run: tables and plots from saved results; with several (boots of "
                         "the same code), their rounds pooled, written to --out BASE(.md)")
    ap.add_argument("--out", default=None, help="directory for <arch>-<commit>.md/.json/.png "
                    "(with several --report files: the output path without extension)")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--kernel-commit", default="")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--configs", type=csv, default=None)
    ap.add_argument("--jobs", type=csv, default=None)
    ap.add_argument("--phases", type=csv, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--runtime", type=int, default=None, help="seconds per fio job")
    ap.add_argument("--leg-mib", type=int, default=None)
    ap.add_argument("--log-mib", type=int, default=8)
    ap.add_argument("--region", type=int, default=8192, help="region size (sectors) of every mirror")
    ap.add_argument("--resync-regions", type=lambda s: [int(x) for x in csv(s)],
                    default=RESYNC_REGIONS)
    ap.add_argument("--resync-dmraid", type=lambda s: [int(x) for x in csv(s)],
                    default=RESYNC_DMRAID)
    ap.add_argument("--logio-configs", type=csv, default=LOGIO_CONFIGS)
    ap.add_argument("--cache", default="none", choices=["none", "writeback"])
    ap.add_argument("--tsc-khz", type=int, default=None,
                    help="x86_64: the guest's TSC frequency (default: the host's cpu MHz)")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--mem", type=int, default=1024)
    ap.add_argument("--timeout", type=int, default=None)
    ap.add_argument("--echo", action="store_true")
    args = ap.parse_args()

    if args.report:
        boots = []
        for path in args.report:
            with open(path) as f:
                boots.append(json.load(f))
        data = pool(boots) if len(boots) > 1 else boots[0]
        if args.out and len(boots) > 1:
            base = args.out[:-3] if args.out.endswith(".md") else args.out
        else:
            base = os.path.splitext(args.report[0])[0]
        print(report(data, base + ".md", base))
        return 0

    smoke = args.smoke
    configs = args.configs or CONFIGS
    jobs = args.jobs or (SMOKE_JOBS if smoke else JOBS)
    phases = args.phases or (["main"] if smoke else ["main", "flush", "resync", "logio"])
    args.rounds = args.rounds or (1 if smoke else 3)
    args.runtime = args.runtime or (1 if smoke else 4)
    leg_mib = args.leg_mib or (256 if smoke else 1024)
    for c in configs:
        if c not in CONFIGS:
            ap.error("unknown configuration %s (known: %s)" % (c, ",".join(CONFIGS)))
    for j in jobs:
        if j not in JOBS:
            ap.error("unknown job %s (known: %s)" % (j, ",".join(JOBS)))
    if not (args.kernel and args.initrd):
        ap.error("--kernel and --initrd are needed (or --report)")

    workdir = os.path.abspath(args.workdir or "/tmp/rtmirror-bench-%s" % args.arch)
    os.makedirs(workdir, exist_ok=True)
    t0 = time.time()
    print("bench: creating disks in %s (legs %d MiB, logs %d MiB, cache=%s)"
          % (workdir, leg_mib, args.log_mib, args.cache), flush=True)
    # recreated every run: zero-filled, so the legs start identical and fully allocated
    disks = [RawDisk(workdir, "d%d" % i, (leg_mib if i < 2 else args.log_mib) * MiB,
                     cache=args.cache, file=os.path.join(workdir, name + ".img"))
             for i, name in enumerate(("leg0", "leg1", "log0", "log1"))]
    for d in disks:
        d.create("zero")
    host = Host(disks[:2])
    append = kernel_cmdline(args, phases, configs, jobs)
    if args.timeout:
        timeout = args.timeout
    else:  # generous: TCG on a loaded host
        per_cfg = len(jobs) * (args.runtime + 8) + 30
        timeout = 600 + 4 * (len(configs) * args.rounds * per_cfg if "main" in phases else 0)
        timeout += 2400 if "resync" in phases else 0
        timeout += 1200 if "logio" in phases else 0
        timeout += 60 * len(configs) if "flush" in phases else 0
    g = Guest(args.arch, args.kernel, args.initrd, disks, append=append, mem_mb=args.mem,
              smp=args.smp, timeout_s=timeout, workdir=workdir, handler=host,
              echo=args.echo, name="bench")
    print("bench: booting %s guest: %s" % (args.arch, append), flush=True)
    res = g.run()
    print("bench: guest %s" % res.summary(), flush=True)
    data = collect(res, host, args)
    qemu_version = subprocess.run([g.qemu, "--version"], capture_output=True,
                                  text=True).stdout.split("\n")[0]
    data["meta"] = {
        "arch": args.arch, "commit": args.commit, "kernel_commit": args.kernel_commit,
        "smoke": smoke, "configs": configs, "jobs": jobs, "phases": phases,
        "rounds": args.rounds, "runtime": args.runtime, "leg_mib": leg_mib,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": res.result("kernel", "?").replace("_", " "),
        "qemu": "%s, TCG, -smp %d, -m %d" % (qemu_version, args.smp, args.mem),
        "host": "%s, %d CPUs" % (os.uname().machine, os.cpu_count()),
        "disks": "raw image files, virtio-blk, -drive cache=%s,aio=threads; legs %d MiB, "
                 "log/metadata disks %d MiB, zero-filled" % (args.cache, leg_mib, args.log_mib),
        "guest": "busybox initramfs, %s" % res.result("fio_version", "fio ?"),
        "region": "%s for every mirror (rtmirror region_size, dm-mirror and dm-raid region, "
                  "md bitmap chunk)" % human(args.region * 512),
        "fio": "libaio, direct=1, time_based, randseed=42 (raw device jobs); ext4 job: "
               "sync engine, fsync=1",
        "duration": "%.0f s (guest %.0f s)" % (time.time() - t0, res.duration),
        "clock": "guest clocksource %s; guest clock against host clock over the run: %s"
                 % (res.result("clocksource", "?"), res.result("clock_check", "?")),
    }
    data["checks"] = checks(data, res, args)
    out = args.out or os.path.join(workdir, "results")
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "%s-%s%s" % (args.arch, args.commit, "-smoke" if smoke else ""))
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    if not smoke:
        print("bench: wrote %s" % report(data, base + ".md", base))
    print("bench: results %s.json; console log %s" % (base, g.console_log_path))
    passed = sum(1 for _, ok in data["checks"] if ok)
    failed = len(data["checks"]) - passed
    for name, ok in data["checks"]:
        print("%s %s" % ("PASS" if ok else "FAIL", name))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
