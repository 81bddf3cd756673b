"""Host-side handle for one fault-injecting NBD disk (see nbd_fault_server.py).

    d = FaultDisk(workdir, "d0", 64 << 20)
    d.error("write"); d.hang(); d.release(); d.delay(100); d.bandwidth(1 << 20)
    d.heal(); d.stats() -> {"reads": 3, ...}; d.reset_stats()
    d.read_backing(off, n); d.stop()

Volatile write cache (see nbd_fault_server.py):
    d.cache(True)                  unflushed, non-FUA writes stay in memory
    d.hang("write"); d.apply_partial(4096)   tear the held writes
    d.powercut("random", seed)     after QEMU is dead: cut its connections,
                                   the cache loses a seeded subset ("all":
                                   everything, "none": nothing)
    d.writeback()                  write the cache back (clean power-off)
read_backing() reads the backing file: what the media holds, not the cache.

Use as a context manager, or FaultDiskSet / stop_all() to clean up.
"""

import atexit
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "nbd_fault_server.py")

_live = []
_live_lock = threading.Lock()


class ControlError(RuntimeError):
    pass


class FaultDisk:
    def __init__(self, workdir, name, size_bytes=None, file=None, log=True,
                 start_timeout=10.0):
        """Create (sparse) or reuse a raw backing file and start its server.

        workdir      directory for the backing file, sockets and logs
        name         disk name (also used as virtio serial by Guest)
        size_bytes   size of a newly created file; if the file exists and
                     size_bytes is given and differs, it is truncated to it
        file         explicit backing file path (default workdir/name.img)
        log          write per-request log to workdir/name.reqlog
        """
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.file = os.path.abspath(file) if file else \
            os.path.join(self.workdir, name + ".img")
        if not os.path.exists(self.file):
            if size_bytes is None:
                raise ValueError("size_bytes required for a new file")
            with open(self.file, "wb") as f:
                f.truncate(size_bytes)
        elif size_bytes is not None and \
                os.path.getsize(self.file) != size_bytes:
            os.truncate(self.file, size_bytes)
        self.size = os.path.getsize(self.file)
        # unix socket paths are limited to ~107 bytes: keep them short
        sockdir = self.workdir
        if len(os.path.join(sockdir, name + ".ctl.sock")) > 100:
            import tempfile
            sockdir = tempfile.mkdtemp(prefix="fd-")
        self.socket = os.path.join(sockdir, name + ".nbd.sock")
        self.control_path = os.path.join(sockdir, name + ".ctl.sock")
        self.log_path = os.path.join(self.workdir, name + ".reqlog") \
            if log else None
        self.stderr_path = os.path.join(self.workdir, name + ".server.err")
        self._ctl = None
        self._ctl_file = None
        self._ctl_lock = threading.Lock()
        cmd = [sys.executable, SERVER, "--file", self.file,
               "--socket", self.socket, "--control", self.control_path]
        if self.log_path:
            cmd += ["--log", self.log_path]
        self._errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self._errf,
                                     stdin=subprocess.DEVNULL)
        with _live_lock:
            _live.append(self)
        deadline = time.monotonic() + start_timeout
        buf = b""
        while b"ready" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("NBD server %s did not start (see %s)"
                                   % (name, self.stderr_path))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 100)
                if not chunk:
                    continue
                buf += chunk

    # ------------------------------------------------------------ control
    def command(self, line, timeout=120.0):
        """Send one control line, return the reply line (raises on err)."""
        with self._ctl_lock:
            for attempt in (0, 1):
                try:
                    if self._ctl is None:
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(timeout)
                        s.connect(self.control_path)
                        self._ctl = s
                        self._ctl_file = s.makefile("rwb", buffering=0)
                    self._ctl_file.write((line.strip() + "\n").encode())
                    reply = self._ctl_file.readline().decode().strip()
                    if not reply:
                        raise OSError("control connection closed")
                    break
                except OSError:
                    self._close_ctl()
                    if attempt:
                        raise
        if reply.startswith("err"):
            raise ControlError("%s: %r -> %s" % (self.name, line, reply))
        return reply

    def _close_ctl(self):
        try:
            if self._ctl_file:
                self._ctl_file.close()
            if self._ctl:
                self._ctl.close()
        except OSError:
            pass
        self._ctl = self._ctl_file = None

    def error(self, kind):
        """kind: read | write | all | off"""
        return self.command("error %s" % kind)

    def hang(self, kind="all"):
        """kind: all (every request) | write (WRITE, WRITE_ZEROES, TRIM) |
        flush (FLUSH only)"""
        return self.command("hang %s" % kind)

    def fault_range(self, lo=None, hi=None):
        """Restrict error and hang to requests overlapping bytes [lo, hi)
        (and FLUSH); no arguments: every request again."""
        if lo is None:
            return self.command("range all")
        return self.command("range %d %d" % (int(lo), int(hi)))

    def apply_partial(self, nbytes):
        """Write the first nbytes of every held write to the backing file
        (durably); the requests stay held. Returns how many were torn."""
        return parse_stats(self.command("apply-partial %d" % int(nbytes)))[
            "applied"]

    def cache(self, on):
        """Volatile write cache on or off (off writes the cache back)."""
        return self.command("cache %s" % ("on" if on else "off"))

    def writeback(self):
        """Write the volatile cache back to the backing file."""
        return self.command("writeback")

    def powercut(self, mode, seed=None):
        """Power cut at the backend (call after QEMU is dead): the current
        connections are cut, then the cache loses everything (mode "all"),
        nothing ("none") or a subset chosen with `seed` ("random").
        Returns the reply as a dict (writes, kept, lost, held_dropped)."""
        line = "powercut %s" % mode
        if mode == "random":
            line += " %d" % int(seed)
        return parse_stats(self.command(line))

    def release(self):
        return self.command("release")

    def fail_held(self):
        """Answer all held requests with EIO (without executing them)."""
        return self.command("fail-held")

    def delay(self, ms):
        return self.command("delay %d" % int(ms))

    def bandwidth(self, bps):
        return self.command("bandwidth %d" % int(bps))

    def heal(self):
        return self.command("heal")

    def stats_line(self):
        return self.command("stats")

    def stats(self):
        return parse_stats(self.stats_line())

    def reset_stats(self):
        return self.command("reset-stats")

    def ping(self):
        return self.command("ping")

    def options_seen(self):
        return self.command("options").split()[1:]

    # ------------------------------------------------------------ backing
    def read_backing(self, offset, length):
        with open(self.file, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def write_backing(self, offset, data):
        """Direct write to the backing file (only while no guest uses it)."""
        with open(self.file, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def request_log(self):
        """List of (op, offset, length, status) from the request log."""
        out = []
        if not self.log_path or not os.path.exists(self.log_path):
            return out
        with open(self.log_path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4:
                    out.append((p[0], int(p[1]), int(p[2]), p[3]))
        return out

    # ----------------------------------------------------------- lifetime
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_ctl()
        try:
            self.proc.stdout.close()
        except Exception:
            pass
        self._errf.close()
        self.proc = None
        with _live_lock:
            if self in _live:
                _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "FaultDisk(%r, %r)" % (self.name, self.file)


def parse_stats(line):
    out = {}
    for w in line.split()[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = v
    return out


class FaultDiskSet(list):
    """List of FaultDisks that stops all of them on exit.

        with FaultDiskSet.create(workdir, ["a", "b"], 64 << 20) as disks: ...
    """

    @classmethod
    def create(cls, workdir, names, size_bytes):
        s = cls()
        try:
            for n in names:
                s.append(FaultDisk(workdir, n, size_bytes))
        except Exception:
            s.stop()
            raise
        return s

    def stop(self):
        for d in self:
            d.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_all():
    with _live_lock:
        live = list(_live)
    for d in live:
        try:
            d.stop()
        except Exception:
            pass


atexit.register(stop_all)
