"""Run a QEMU (TCG) guest whose virtio-blk disks are FaultDisks.

Guest <-> host protocol on the serial console (one line each):
    @@HOST <words...>      host runs handler(words) and writes the returned
                           string + "\\n" to the console (guest `read`s it)
    @@RESULT <key> <value...>   collected into result.results[key] (list)
    @@FAIL <text>          collected into result.fails
    @@DONE                 ends the run (QEMU is then killed)
    @@RESULT boot_s / done_s   the guest's uptime at boot and at the end: the
                           host fails the run if the guest's clock ran faster
                           than its own (GuestResult.clock_check)

Default handler commands (disk index i is 0-based in the `disks` list;
"all" or a list "i,j" is accepted instead of i for every command but stats):
    hang i [all|write|flush] | release i | fail-held i
    error i read|write|all|off
    delay i ms | bandwidth i bps | heal i | stats i | reset-stats i
    cache i on|off | writeback i | apply-partial i bytes
    wait-held i n [any]  wait (at most 120 s) until each disk (any: one of
                       them) holds >= n requests
    sleep s | ping | powercut
"powercut" only SIGKILLs QEMU; what the backends' volatile caches lose is
decided by the caller afterwards (FaultDisk.powercut, see run.py).
"""

import os
import queue
import re
import subprocess
import threading
import time

PROBLEM_RE = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection|Call Trace|UBSAN|"
    r"KASAN|rcu.*stall|hung_task|refcount_t")

_MARK_RE = re.compile(r"^(@@HOST|@@RESULT|@@FAIL|@@DONE)(?:\s+(.*))?$")


class GuestResult:
    def __init__(self):
        self.exit_code = None
        self.console = ""
        self.results = {}
        self.fails = []
        self.timed_out = False
        self.done = False           # @@DONE seen
        self.killed = False         # kill()/powercut used
        self.host_commands = []     # (words, reply)
        self.duration = 0.0
        self.cmdline = []
        # Host monotonic time at which these @@RESULT keys arrived (the clock check).
        self.seen_at = {}

    def lines(self):
        return self.console.split("\n")

    def kernel_problems(self):
        return [l for l in self.lines() if PROBLEM_RE.search(l)]

    def result(self, key, default=None):
        """Last value recorded for key."""
        v = self.results.get(key)
        return v[-1] if v else default

    @property
    def ok(self):
        return (self.done and not self.fails and not self.timed_out
                and not self.kernel_problems())

    def summary(self):
        return ("exit=%s done=%s timed_out=%s killed=%s fails=%d "
                "kernel_problems=%d duration=%.1fs"
                % (self.exit_code, self.done, self.timed_out, self.killed,
                   len(self.fails), len(self.kernel_problems()),
                   self.duration))

    def __repr__(self):
        return "GuestResult(%s)" % self.summary()

    # A guest clock this much faster than the host's fails the run: its timeouts fired early
    # in real time, so the timed checks proved nothing (CLOCK_SLACK_S covers console latency).
    CLOCK_FAST_RATIO = 1.05
    CLOCK_SLACK_S = 1.0

    def clock_check(self):
        """None, or why the guest's clock cannot be trusted: between boot_s and done_s it
        advanced faster than the host's monotonic clock. Seen on x86_64 under TCG on a loaded
        host when the TSC was calibrated against the PIT at a third of its rate (guest time ran
        3 to 40 times too fast). A slower guest clock is not reported: a starved guest may lose
        ticks, and its timeouts then only fire late."""
        try:
            guest_s = float(self.result("done_s")) - float(self.result("boot_s"))
            host_s = self.seen_at["done_s"] - self.seen_at["boot_s"]
        except (TypeError, ValueError, KeyError):
            return None
        if guest_s > host_s * self.CLOCK_FAST_RATIO + self.CLOCK_SLACK_S:
            return ("guest clock ran %.2f times as fast as the host's (%.1f s in the guest, "
                    "%.1f s on the host): the guest's timeouts and timed checks are void"
                    % (guest_s / max(host_s, 0.001), guest_s, host_s))
        return None


class Guest:
    ARCHES = ("x86_64", "s390x")

    def __init__(self, arch, kernel, initrd, disks, append="", mem_mb=512,
                 timeout_s=600, workdir=None, handler=None, echo=False,
                 smp=1, qemu=None, extra_args=(), name="guest",
                 console_mode="stdio", done_grace_s=3.0, line_hook=None):
        """
        arch      "x86_64" or "s390x"
        disks     list of FaultDisk (or anything with .socket and .name), or of
                  RawDisk (.file and no .socket: a plain image file, -drive);
                  guest sees them as /dev/vda, vdb, ... in this order; None
                  is a disk not attached (its slot stays empty)
        handler   callable(words: list[str]) -> str | None; None falls back
                  to the default handler.  It may call guest.kill().
        workdir   where console log (<name>.console.log) is written
                  (default: the first disk's workdir, else cwd)
        echo      copy console output to our stdout as it arrives
        line_hook callable(line: str) called for every console line (from
                  the reader thread: keep it short)
        console_mode  "stdio" (default: -display none -serial stdio
                  -monitor none) or "nographic" (-nographic; its monitor mux
                  loses input bytes, avoid)
        """
        if arch not in self.ARCHES:
            raise ValueError("arch must be one of %s" % (self.ARCHES,))
        self.arch = arch
        self.kernel = kernel
        self.initrd = initrd
        self.disks = list(disks)
        self.append = append
        self.mem_mb = mem_mb
        self.timeout_s = timeout_s
        self.handler = handler
        self.echo = echo
        self.smp = smp
        self.qemu = qemu or "qemu-system-" + arch
        self.extra_args = list(extra_args)
        self.name = name
        self.console_mode = console_mode
        self.done_grace_s = done_grace_s
        self.line_hook = line_hook
        if workdir is None:
            present = [d for d in self.disks if d is not None]
            workdir = getattr(present[0], "workdir", None) if present else None
        self.workdir = os.path.abspath(workdir or os.getcwd())
        os.makedirs(self.workdir, exist_ok=True)
        self.console_log_path = os.path.join(self.workdir,
                                             name + ".console.log")
        self.proc = None
        self.result = None
        self._lock = threading.Lock()
        self._stdin_lock = threading.Lock()
        self._buf = []
        self._done = threading.Event()

    # ------------------------------------------------------------ cmdline
    def cmdline(self):
        a = [self.qemu]
        if self.arch == "x86_64":
            # la57=off: 4-level paging. With 5-level paging, the KASAN kernel sees an interrupt
            # taken while identify_cpu() re-reads the CPU features (LA57 briefly unknown) as a
            # wild access to the direct map: a boot-time false report, before any scenario.
            a += ["-M", "pc", "-cpu", "max,la57=off", "-accel", "tcg"]
            # no_timer_check: under TCG on a loaded host the kernel's check
            # that the IO-APIC timer ticks can miss its window and panic
            # ("IO-APIC + timer doesn't work!").
            console = "console=ttyS0 no_timer_check"
        else:
            a += ["-M", "s390-ccw-virtio", "-cpu", "max", "-accel", "tcg"]
            console = "console=ttysclp0"
        a += ["-m", str(self.mem_mb), "-smp", str(self.smp)]
        if self.console_mode == "nographic":
            a += ["-nographic"]
        else:
            # Same guest-visible result as -nographic (ttyS0 / SCLP console
            # on our stdio) but without the monitor mux: QEMU's mux chardev
            # was observed to drop console input bytes written to a pipe.
            a += ["-display", "none", "-serial", "stdio", "-monitor", "none"]
        a += ["-no-reboot", "-net", "none"]
        if self.kernel:     # kernel=None: firmware boots from the disks
            a += ["-kernel", self.kernel]
            if self.initrd:
                a += ["-initrd", self.initrd]
            a += ["-append",
                  ("%s panic=-1 %s" % (console, self.append)).strip()]
        for i, d in enumerate(self.disks):
            if d is None:
                continue
            node = "d%d" % i
            if getattr(d, "socket", None) is None and getattr(d, "file", None):
                # a plain image file (harness.raw_disk.RawDisk): no NBD server
                a += d.drive_args(node) if hasattr(d, "drive_args") else [
                    "-drive", "file=%s,format=raw,if=none,id=%s,cache=none,"
                    "aio=threads" % (d.file, node)]
            else:
                a += ["-blockdev",
                      # discard=unmap: pass guest discards on to the server.
                      "driver=nbd,node-name=%s,server.type=unix,server.path=%s,"
                      "export=,discard=unmap" % (node, d.socket)]
            serial = getattr(d, "name", node)
            if self.arch == "x86_64":
                if len(self.disks) <= 16:
                    addr = "0x%x" % (0x10 + i)
                else:
                    # More disks than free slots (0x10..0x1f): 8 functions a slot, up
                    # to 128 disks (run.py DUMMIES).
                    addr = "0x%x.%x%s" % (0x10 + i // 8, i % 8,
                                          ",multifunction=on" if i % 8 == 0 else "")
                dev = ("virtio-blk-pci,drive=%s,serial=%s,addr=%s,"
                       "werror=report,rerror=report"
                       % (node, serial, addr))
            else:
                dev = ("virtio-blk-ccw,drive=%s,serial=%s,devno=fe.0.%04x,"
                       "werror=report,rerror=report"
                       % (node, serial, 0x10 + i))
            a += ["-device", dev]
        a += self.extra_args
        return a

    # ------------------------------------------------------------ running
    def start(self):
        self.result = GuestResult()
        self.result.cmdline = self.cmdline()
        self._logf = open(self.console_log_path, "w")
        self._logf.write("# " + " ".join(self.result.cmdline) + "\n")
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(self.result.cmdline,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._cmdq = queue.Queue()
        threading.Thread(target=self._cmd_loop, args=(self._cmdq,),
                         daemon=True).start()
        return self

    def send(self, line):
        """Write one line to the guest console."""
        with self._stdin_lock:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                self.proc.stdin.write((line + "\n").encode())
                self.proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def kill(self):
        """SIGKILL QEMU now (power cut)."""
        if self.result is not None:
            self.result.killed = True
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass

    def _read_loop(self):
        pending = b""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                self._line(line)
        if pending:
            self._line(pending)
        self._done.set()

    def _line(self, raw):
        line = raw.decode("utf-8", errors="replace").replace("\r", "")
        with self._lock:
            self._buf.append(line)
        try:
            self._logf.write(line + "\n")
            self._logf.flush()
        except (ValueError, OSError):
            pass
        if self.echo:
            print("[%s] %s" % (self.name, line), flush=True)
        if self.line_hook is not None:
            self.line_hook(line)
        m = _MARK_RE.match(line.strip())
        if not m:
            return
        mark, rest = m.group(1), (m.group(2) or "").strip()
        r = self.result
        if mark == "@@RESULT":
            parts = rest.split(None, 1)
            if parts:
                r.results.setdefault(parts[0], []).append(
                    parts[1] if len(parts) > 1 else "")
                r.seen_at[parts[0]] = time.monotonic()
        elif mark == "@@FAIL":
            r.fails.append(rest)
        elif mark == "@@DONE":
            r.done = True
            self._done.set()
        elif mark == "@@HOST":
            # run the handler off the reader thread (console output keeps
            # flowing while the host sleeps / waits on the servers), but
            # one command at a time, in order
            self._cmdq.put(rest.split())

    def _cmd_loop(self, q):
        while True:
            words = q.get()
            if words is None:
                return
            self._host_cmd(words)

    def _host_cmd(self, words):
        try:
            reply = None
            if self.handler is not None:
                reply = self.handler(words)
            if reply is None:
                reply = self.default_handler(words)
        except Exception as e:  # report to guest rather than die
            reply = "err %s: %s" % (type(e).__name__, e)
        self.result.host_commands.append((words, reply))
        if reply is not None and not self.result.killed:
            self.send(str(reply))

    def _disk_targets(self, spec):
        if spec == "all":
            return [d for d in self.disks if d is not None]
        return [d for d in (self.disks[int(i)] for i in spec.split(",")) if d is not None]

    def default_handler(self, words):
        if not words:
            return "err empty"
        c, args = words[0], words[1:]
        try:
            if c == "ping":
                return "ok pong"
            if c == "now":  # the host's monotonic clock in ms: the guest's may lag under TCG
                return "ok %d" % int(time.monotonic() * 1000)
            if c == "sleep":
                time.sleep(float(args[0]))
                return "ok"
            if c == "powercut":
                self.kill()
                return None
            if c == "stats":
                return self.disks[int(args[0])].stats_line()
            simple = {"hang": "hang", "release": "release", "heal": "heal",
                      "reset-stats": "reset-stats", "fail-held": "fail-held",
                      "writeback": "writeback"}
            if c in simple and (len(args) == 1 or c == "hang"):
                for d in self._disk_targets(args[0]):
                    d.command(" ".join([simple[c]] + args[1:]))
                return "ok"
            if c in ("error", "delay", "bandwidth", "cache"):
                for d in self._disk_targets(args[0]):
                    d.command("%s %s" % (c, args[1]))
                return "ok"
            if c == "apply-partial":
                return "ok " + " ".join(
                    "%s:applied=%d" % (d.name, d.apply_partial(int(args[1])))
                    for d in self._disk_targets(args[0]))
            if c == "wait-held":
                disks, n = self._disk_targets(args[0]), int(args[1])
                enough = max if args[2:] == ["any"] else min
                deadline = time.monotonic() + 120
                while True:
                    held = [d.stats().get("held", 0) for d in disks]
                    if enough(held) >= n:
                        return "ok held=%s" % ",".join(map(str, held))
                    if time.monotonic() > deadline:
                        return "err held=%s after 120 s" % ",".join(
                            map(str, held))
                    time.sleep(0.05)
        except (IndexError, ValueError) as e:
            return "err bad arguments for %s: %s" % (c, e)
        return "err unknown host command %s" % c

    def wait(self):
        """Wait for @@DONE, QEMU exit or timeout; returns GuestResult."""
        deadline = self._t0 + self.timeout_s
        r = self.result
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                r.timed_out = True
                self.kill()
                r.killed = False   # timeout, not a deliberate power cut
                break
            if self._done.wait(min(left, 0.5)):
                break
            if self.proc.poll() is not None:
                # give the reader a moment to drain the pipe
                self._reader.join(2)
                break
        if r.done and self.proc.poll() is None:
            # guest finished; give it a moment to power off, then kill
            try:
                self.proc.wait(self.done_grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        with self._stdin_lock:
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
        self._cmdq.put(None)
        r.exit_code = self.proc.returncode
        r.duration = time.monotonic() - self._t0
        with self._lock:
            r.console = "\n".join(self._buf)
        clock = r.clock_check()
        if clock:
            r.fails.append(clock)
        try:
            self._logf.write("# result: %s\n" % r.summary())
            self._logf.close()
        except (OSError, ValueError):
            pass
        return r

    def run(self):
        self.start()
        try:
            return self.wait()
        except BaseException:
            self.kill()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
