#!/usr/bin/env python3
"""Fault-injecting NBD server for dm-rtmirror QEMU tests.

Serves ONE raw backing file over NBD (fixed newstyle handshake, simple
replies only) on a unix socket.  A second unix socket (the CONTROL socket)
accepts a line protocol that changes fault state at run time:

    error read|write|all|off   fail matching requests with EIO (file untouched)
                               read  = READ
                               write = WRITE / WRITE_ZEROES / TRIM / FLUSH
    hang [all|write|flush]     hold every request not yet executed (all, the
                               default), or only WRITE / WRITE_ZEROES / TRIM
                               (write: reads and FLUSHes go on), or only
                               FLUSH (flush: a power cut then finds the
                               writes before it still in the cache)
    release                    execute held requests in arrival order, answer
                               them, and let new requests flow again
    fail-held                  answer all held requests with EIO (not executed)
                               and stop hanging
    apply-partial <bytes>      write the first <bytes> bytes of every held
                               write to the backing file, durably (a write
                               torn by a power cut); the requests stay held
    range <from> <to> | range all
                               error and hang apply only to requests that
                               overlap bytes [from, to) (and to FLUSH, which
                               has no range): e.g. a disk whose partition
                               table reads but whose partitions hang
    delay <ms>                 per-request latency (0 = off)
    bandwidth <bytes_per_sec>  data throughput limit (0 = off)
    heal                       error off, delay 0, bandwidth 0, release
    cache on|off               volatile write cache (see below); off writes
                               the cache back first
    writeback                  write the cache back (as a FLUSH does)
    powercut all|none|random <seed>
                               the power fails: the current connections are
                               cut (their held and queued requests are never
                               executed), then the cache loses every unflushed
                               write (all), none (none: written back), or a
                               subset chosen per 4 KiB block of each write by
                               a PRNG seeded with <seed> (random)
    stats                      ok reads=R writes=W flushes=F trims=T zeroes=Z
                                  read_bytes=RB write_bytes=WB held=H errors=E
                                  [extra keys...]
    reset-stats | ping | quit

Every reply is one line: "ok ..." or "err <reason>".

Held requests belonging to a connection that has gone away (e.g. QEMU was
SIGKILLed = "power cut") are NOT executed on release; they are dropped
(logged as "dropped").

Volatile write cache ("cache on"): WRITE, WRITE_ZEROES and TRIM without the
FUA flag are kept in memory, in arrival order, and reach the backing file
only at the next FLUSH (which writes back everything cached, then
fdatasync), at "writeback" or at "cache off".  Reads see the cached data.  A
write with FUA goes to the backing file at once (fdatasync) and supersedes
the cached bytes it overlaps.  "powercut" decides what the cache loses;
with "random <seed>" each cached write is split at 4 KiB boundaries
(absolute offsets) and each piece is kept with probability 1/2, so a write
can end up torn; the kept pieces are written in arrival order.  The choice
depends only on the seed and the cached writes.  Every piece is logged
("cache OFFSET LENGTH kept|lost").  With the cache off (default) every
write goes to the backing file when executed and FLUSH/FUA fdatasync it.

CLI: nbd_fault_server.py --file PATH --socket NBD_SOCK --control CTRL_SOCK
                         [--log FILE] [--export-name NAME]
Prints "ready" on stdout once both sockets are listening.
"""

import argparse
import ctypes
import ctypes.util
import errno
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# ---------------------------------------------------------------- constants
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0
FLAG_C_NO_ZEROES = 1 << 1

# transmission flags
TF_HAS_FLAGS = 1 << 0
TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6
TRANSMISSION_FLAGS = (TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA
                      | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES)

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_INFO = 6
OPT_GO = 7
OPT_NAMES = {1: "EXPORT_NAME", 2: "ABORT", 3: "LIST", 4: "PEEK_EXPORT",
             5: "STARTTLS", 6: "INFO", 7: "GO", 8: "STRUCTURED_REPLY",
             9: "LIST_META_CONTEXT", 10: "SET_META_CONTEXT",
             11: "EXTENDED_HEADERS"}

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_ERR_UNSUP = 0x80000001
REP_ERR_INVALID = 0x80000003

INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_WRITE_ZEROES = 6
CMD_NAMES = {CMD_READ: "read", CMD_WRITE: "write", CMD_FLUSH: "flush",
             CMD_TRIM: "trim", CMD_WRITE_ZEROES: "zero"}

CMDFLAG_FUA = 1 << 0
CMDFLAG_NO_HOLE = 1 << 1

# requests that change the data ("hang write" holds these)
DATA_WRITE_CMDS = (CMD_WRITE, CMD_WRITE_ZEROES, CMD_TRIM)
# granularity at which a power cut can tear a cached write
TEAR_BLOCK = 4096

NBD_EIO = 5
NBD_EINVAL = 22
NBD_ENOSPC = 28

MAX_REQUEST = 32 * 1024 * 1024

# ------------------------------------------------------- hole punching
_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                        use_errno=True)
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int,
                                ctypes.c_longlong, ctypes.c_longlong]
    _libc.fallocate.restype = ctypes.c_int
except Exception:  # pragma: no cover
    _libc = None
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


def punch_or_zero(fd, offset, length):
    if length == 0:
        return
    if _libc is not None:
        r = _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            offset, length)
        if r == 0:
            return
    chunk = b"\0" * min(length, 1 << 20)
    pos = offset
    end = offset + length
    while pos < end:
        n = min(len(chunk), end - pos)
        os.pwrite(fd, chunk[:n], pos)
        pos += n


# ------------------------------------------------------------- helpers
def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return bytes(buf)


def log_err(msg):
    sys.stderr.write("nbd_fault_server: %s\n" % msg)
    sys.stderr.flush()


class CacheEntry:
    """One cached (unflushed) write: data None means zeroes (WRITE_ZEROES,
    TRIM)."""
    __slots__ = ("offset", "length", "data")

    def __init__(self, offset, length, data):
        self.offset = offset
        self.length = length
        self.data = data

    def part(self, start, end):
        """The entry's bytes [start, end) (absolute offsets) as an entry."""
        d = None
        if self.data is not None:
            d = self.data[start - self.offset:end - self.offset]
        return CacheEntry(start, end - start, d)


class Request:
    __slots__ = ("conn", "cmd", "flags", "handle", "offset", "length",
                 "data", "seq", "delayed")

    def __init__(self, conn, cmd, flags, handle, offset, length, data, seq):
        self.conn = conn
        self.cmd = cmd
        self.flags = flags
        self.handle = handle
        self.offset = offset
        self.length = length
        self.data = data
        self.seq = seq
        self.delayed = False


class Connection:
    def __init__(self, server, sock, cid):
        self.server = server
        self.sock = sock
        self.cid = cid
        self.send_lock = threading.Lock()
        self.closed = False
        self.cut = False        # power cut: its requests are never executed
        self.inflight = 0
        self.inflight_cv = threading.Condition()

    def send(self, data):
        with self.send_lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.closed = True
                return False

    def reply(self, handle, error, payload=b""):
        hdr = struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, error, handle)
        return self.send(hdr + payload if payload else hdr)

    def opt_reply(self, opt, rtype, data=b""):
        self.sock.sendall(struct.pack(">QIII", OPT_REPLY_MAGIC, opt, rtype,
                                      len(data)) + data)

    def request_done(self):
        with self.inflight_cv:
            self.inflight -= 1
            self.inflight_cv.notify_all()

    # ---------------------------------------------------------- handshake
    def handshake(self):
        """Returns True when transmission phase should start."""
        srv = self.server
        self.sock.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT,
                                      FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (cflags,) = struct.unpack(">I", recv_exact(self.sock, 4))
        no_zeroes = bool(cflags & FLAG_C_NO_ZEROES)
        while True:
            magic, opt, length = struct.unpack(">QII",
                                               recv_exact(self.sock, 16))
            if magic != IHAVEOPT:
                raise EOFError("bad option magic %#x" % magic)
            if length > 65536:
                raise EOFError("option too long")
            data = recv_exact(self.sock, length) if length else b""
            srv.note_option(opt)
            if opt == OPT_EXPORT_NAME:
                self.sock.sendall(struct.pack(">QH", srv.size,
                                              TRANSMISSION_FLAGS)
                                  + (b"" if no_zeroes else b"\0" * 124))
                return True
            elif opt == OPT_ABORT:
                try:
                    self.opt_reply(opt, REP_ACK)
                except OSError:
                    pass
                return False
            elif opt == OPT_LIST:
                if length:
                    self.opt_reply(opt, REP_ERR_INVALID)
                    continue
                name = srv.export_name.encode()
                self.opt_reply(opt, REP_SERVER,
                               struct.pack(">I", len(name)) + name)
                self.opt_reply(opt, REP_ACK)
            elif opt in (OPT_GO, OPT_INFO):
                if length < 6:
                    self.opt_reply(opt, REP_ERR_INVALID)
                    continue
                (nlen,) = struct.unpack(">I", data[:4])
                if 4 + nlen + 2 > length:
                    self.opt_reply(opt, REP_ERR_INVALID)
                    continue
                # any export name is accepted: there is only one export
                (ninfo,) = struct.unpack(">H", data[4 + nlen:6 + nlen])
                infos = struct.unpack(">%dH" % ninfo,
                                      data[6 + nlen:6 + nlen + 2 * ninfo])
                self.opt_reply(opt, REP_INFO,
                               struct.pack(">HQH", INFO_EXPORT, srv.size,
                                           TRANSMISSION_FLAGS))
                if INFO_BLOCK_SIZE in infos:
                    self.opt_reply(opt, REP_INFO,
                                   struct.pack(">HIII", INFO_BLOCK_SIZE,
                                               1, 4096, MAX_REQUEST))
                self.opt_reply(opt, REP_ACK)
                if opt == OPT_GO:
                    return True
            else:
                # STARTTLS, STRUCTURED_REPLY, EXTENDED_HEADERS, META_CONTEXT..
                self.opt_reply(opt, REP_ERR_UNSUP)

    # -------------------------------------------------------- transmission
    def serve(self):
        srv = self.server
        try:
            if not self.handshake():
                return
            while True:
                hdr = recv_exact(self.sock, 28)
                magic, flags, cmd, handle, offset, length = struct.unpack(
                    ">IHHQQI", hdr)
                if magic != REQUEST_MAGIC:
                    log_err("bad request magic %#x, dropping connection"
                            % magic)
                    return
                data = None
                if cmd == CMD_WRITE:
                    if length > MAX_REQUEST:
                        log_err("write too large (%d)" % length)
                        return
                    data = recv_exact(self.sock, length)
                if cmd == CMD_DISC:
                    return
                with self.inflight_cv:
                    self.inflight += 1
                srv.submit(Request(self, cmd, flags, handle, offset, length,
                                   data, srv.next_seq()))
        except (EOFError, OSError) as e:
            if not srv.stopping:
                log_err("connection %d: %s" % (self.cid, e))
        finally:
            # Let non-held in-flight requests complete (DISC semantics), but
            # don't wait forever: held requests stay held and are dropped.
            deadline = time.monotonic() + 30
            with self.inflight_cv:
                while self.inflight > srv.held_count_for(self) and \
                        time.monotonic() < deadline and not srv.stopping:
                    self.inflight_cv.wait(0.2)
            with self.send_lock:
                self.closed = True
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.sock.close()
            srv.conn_closed(self)


class FaultServer:
    def __init__(self, path, nbd_sock, ctrl_sock, log_path=None,
                 export_name=""):
        self.path = path
        self.nbd_sock_path = nbd_sock
        self.ctrl_sock_path = ctrl_sock
        self.export_name = export_name
        self.fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.lock = threading.Lock()      # fault state + held + stats
        self.bw_lock = threading.Lock()
        self.bw_next = 0.0
        self.error_mode = "off"
        self.hanging = False
        self.hang_kind = "all"
        self.fault_range = None           # (from, to) or None: every request
        self.conns = set()
        self.executing = 0
        self.exec_cv = threading.Condition(self.lock)
        # volatile write cache: entries in arrival order, under cache_lock
        self.cache_on = False
        self.cache = []
        self.cache_lock = threading.Lock()
        self.draining = False
        self.delay_ms = 0
        self.bandwidth = 0
        self.held = []
        self.seq = 0
        self.conn_id = 0
        self.stopping = False
        self.stop_event = threading.Event()
        self.options_seen = []
        self.pool = ThreadPoolExecutor(max_workers=128)
        self.log_fh = open(log_path, "a", buffering=1) if log_path else None
        self.log_lock = threading.Lock()
        self.reset_stats()
        self.connects = 0

    # ---------------------------------------------------------------- misc
    def reset_stats(self):
        with self.lock:
            self.st = dict(reads=0, writes=0, flushes=0, trims=0, zeroes=0,
                           read_bytes=0, write_bytes=0, errors=0,
                           dropped=0, fua=0)

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def note_option(self, opt):
        name = OPT_NAMES.get(opt, str(opt))
        with self.lock:
            if name not in self.options_seen:
                self.options_seen.append(name)

    def held_count_for(self, conn):
        with self.lock:
            return sum(1 for r in self.held if r.conn is conn)

    def conn_closed(self, conn):
        with self.lock:
            self.conns.discard(conn)

    def log(self, req, status):
        self.log_line(CMD_NAMES.get(req.cmd, "cmd%d" % req.cmd), req.offset,
                      req.length, status)

    def log_line(self, op, offset, length, status):
        if self.log_fh is None:
            return
        with self.log_lock:
            try:
                self.log_fh.write("%s %d %d %s\n" % (op, offset, length,
                                                      status))
            except (OSError, ValueError):
                pass

    # --------------------------------------------------- volatile cache
    # All of these are called with cache_lock held.
    def _cache_cut(self, offset, length):
        """Remove bytes [offset, offset+length) from every cached write (they
        are superseded by a write that reached the backing file)."""
        end = offset + length
        out = []
        for e in self.cache:
            e_end = e.offset + e.length
            if e_end <= offset or e.offset >= end:
                out.append(e)
                continue
            if e.offset < offset:
                out.append(e.part(e.offset, offset))
            if e_end > end:
                out.append(e.part(end, e_end))
        self.cache = out

    def _cache_overlay(self, offset, payload):
        """Apply the cached writes to `payload` (bytes read from the file at
        `offset`), in arrival order."""
        end = offset + len(payload)
        buf = None
        for e in self.cache:
            e_end = e.offset + e.length
            if e_end <= offset or e.offset >= end:
                continue
            if buf is None:
                buf = bytearray(payload)
            a, b = max(offset, e.offset), min(end, e_end)
            if e.data is None:
                buf[a - offset:b - offset] = bytes(b - a)
            else:
                buf[a - offset:b - offset] = \
                    e.data[a - e.offset:b - e.offset]
        return payload if buf is None else bytes(buf)

    def _media_write(self, e):
        """Write one entry to the backing file (not synced)."""
        if e.data is None:
            punch_or_zero(self.fd, e.offset, e.length)
        else:
            os.pwrite(self.fd, e.data, e.offset)

    def _cache_writeback(self):
        n = len(self.cache)
        for e in self.cache:
            self._media_write(e)
        self.cache = []
        if n:
            os.fdatasync(self.fd)
        return n

    def _cache_lose(self, mode, seed):
        """Power cut: returns (writes, pieces kept, pieces lost); pieces are
        the parts of the cached writes between 4 KiB boundaries."""
        entries, self.cache = self.cache, []
        rng = random.Random(seed)
        kept = lost = 0
        for e in entries:
            pos, end = e.offset, e.offset + e.length
            while pos < end:
                nxt = min(end, (pos // TEAR_BLOCK + 1) * TEAR_BLOCK)
                if mode == "none" or (mode == "random"
                                      and rng.random() < 0.5):
                    self._media_write(e.part(pos, nxt))
                    kept += 1
                    self.log_line("cache", pos, nxt - pos, "kept")
                else:
                    lost += 1
                    self.log_line("cache", pos, nxt - pos, "lost")
                pos = nxt
        if kept:
            os.fdatasync(self.fd)
        return len(entries), kept, lost

    # ------------------------------------------------------------ requests
    def _holds(self, req):
        """Called with self.lock held."""
        if self.draining:
            return True
        if not self.hanging or not self._in_range(req):
            return False
        if self.hang_kind == "write":
            return req.cmd in DATA_WRITE_CMDS
        if self.hang_kind == "flush":
            return req.cmd == CMD_FLUSH
        return True

    def _in_range(self, req):
        r = self.fault_range
        if r is None or req.cmd == CMD_FLUSH:
            return True
        return req.offset < r[1] and req.offset + req.length > r[0]

    def submit(self, req):
        with self.lock:
            if self._holds(req):
                self.held.append(req)
                return
        self.pool.submit(self._run, req)

    def _throttle(self, req):
        if self.delay_ms and not req.delayed:
            time.sleep(self.delay_ms / 1000.0)
        req.delayed = True
        bw = self.bandwidth
        nbytes = req.length if req.cmd in (CMD_READ, CMD_WRITE) else 0
        if bw and nbytes:
            with self.bw_lock:
                now = time.monotonic()
                start = max(now, self.bw_next)
                self.bw_next = start + nbytes / float(bw)
                until = self.bw_next
            dt = until - time.monotonic()
            if dt > 0:
                time.sleep(dt)

    def _run(self, req):
        try:
            self._throttle(req)
            with self.lock:
                if self._holds(req):
                    # hang arrived while we were delayed: hold it, keeping
                    # arrival order among held requests
                    self._insert_held(req)
                    return
            self.execute(req)
        except Exception as e:  # never lose a request silently
            log_err("request failed internally: %r" % (e,))
            req.conn.reply(req.handle, NBD_EIO)
            req.conn.request_done()

    def _insert_held(self, req):
        i = len(self.held)
        while i > 0 and self.held[i - 1].seq > req.seq:
            i -= 1
        self.held.insert(i, req)

    def execute(self, req):
        """Execute (or fail) one request and answer it."""
        conn = req.conn
        with self.lock:
            if conn.cut:
                # the power was cut before the disk got to this request
                self.st["dropped"] += 1
                dropped = True
            else:
                self.executing += 1
                dropped = False
        if dropped:
            self.log(req, "dropped")
            conn.request_done()
            return
        try:
            self._execute(req)
        finally:
            with self.lock:
                self.executing -= 1
                self.exec_cv.notify_all()

    def _execute(self, req):
        conn = req.conn
        cmd = req.cmd
        err = 0
        payload = b""
        with self.lock:
            mode = self.error_mode if self._in_range(req) else "off"
        is_read = cmd == CMD_READ
        is_write = cmd in (CMD_WRITE, CMD_WRITE_ZEROES, CMD_TRIM, CMD_FLUSH)
        if cmd not in CMD_NAMES:
            err = NBD_EINVAL
        elif (mode == "all" and (is_read or is_write)) or \
                (mode == "read" and is_read) or \
                (mode == "write" and is_write):
            err = NBD_EIO
        elif cmd != CMD_FLUSH and req.offset + req.length > self.size:
            err = NBD_ENOSPC if is_write else NBD_EINVAL
        else:
            try:
                if self.cache_on:
                    payload = self._execute_cached(req)
                elif cmd == CMD_READ:
                    payload = os.pread(self.fd, req.length, req.offset)
                    if len(payload) < req.length:
                        payload += b"\0" * (req.length - len(payload))
                elif cmd == CMD_WRITE:
                    os.pwrite(self.fd, req.data, req.offset)
                elif cmd == CMD_FLUSH:
                    os.fdatasync(self.fd)
                elif cmd == CMD_TRIM:
                    punch_or_zero(self.fd, req.offset, req.length)
                elif cmd == CMD_WRITE_ZEROES:
                    if req.flags & CMDFLAG_NO_HOLE:
                        pos, end = req.offset, req.offset + req.length
                        z = b"\0" * min(req.length, 1 << 20)
                        while pos < end:
                            n = min(len(z), end - pos)
                            os.pwrite(self.fd, z[:n], pos)
                            pos += n
                    else:
                        punch_or_zero(self.fd, req.offset, req.length)
                if (req.flags & CMDFLAG_FUA) and cmd in (
                        CMD_WRITE, CMD_WRITE_ZEROES, CMD_TRIM):
                    os.fdatasync(self.fd)
            except OSError as e:
                log_err("I/O error on backing file: %s" % e)
                err = NBD_ENOSPC if e.errno == errno.ENOSPC else NBD_EIO
                payload = b""
        with self.lock:
            st = self.st
            if cmd == CMD_READ:
                st["reads"] += 1
                if not err:
                    st["read_bytes"] += req.length
            elif cmd == CMD_WRITE:
                st["writes"] += 1
                if not err:
                    st["write_bytes"] += req.length
            elif cmd == CMD_FLUSH:
                st["flushes"] += 1
            elif cmd == CMD_TRIM:
                st["trims"] += 1
            elif cmd == CMD_WRITE_ZEROES:
                st["zeroes"] += 1
            if (req.flags & CMDFLAG_FUA) and cmd in DATA_WRITE_CMDS:
                st["fua"] += 1
            if err:
                st["errors"] += 1
        self.log(req, "ok" if not err else ("eio" if err == NBD_EIO
                                            else "err%d" % err))
        conn.reply(req.handle, err, payload if not err else b"")
        conn.request_done()

    def _execute_cached(self, req):
        """Execute one request with the volatile cache on; returns the read
        payload."""
        cmd = req.cmd
        with self.cache_lock:
            if cmd == CMD_READ:
                payload = os.pread(self.fd, req.length, req.offset)
                if len(payload) < req.length:
                    payload += b"\0" * (req.length - len(payload))
                return self._cache_overlay(req.offset, payload)
            if cmd == CMD_FLUSH:
                self._cache_writeback()
                os.fdatasync(self.fd)
                return b""
            data = req.data if cmd == CMD_WRITE else None
            e = CacheEntry(req.offset, req.length, data)
            if req.flags & CMDFLAG_FUA:
                self._cache_cut(req.offset, req.length)
                if cmd == CMD_WRITE_ZEROES and req.flags & CMDFLAG_NO_HOLE:
                    e.data = bytes(req.length)
                self._media_write(e)
                os.fdatasync(self.fd)
            else:
                self.cache.append(e)
            return b""

    def apply_partial(self, nbytes):
        """Write the first nbytes of every held write durably to the file."""
        with self.lock:
            reqs = [r for r in self.held if r.cmd in DATA_WRITE_CMDS]
        n = 0
        for r in reqs:
            k = min(nbytes, r.length)
            e = CacheEntry(r.offset, k, r.data[:k] if r.cmd == CMD_WRITE
                           else None)
            with self.cache_lock:
                self._cache_cut(e.offset, e.length)
                self._media_write(e)
                os.fdatasync(self.fd)
            self.log_line("partial", e.offset, e.length, "applied")
            n += 1
        return n

    def powercut(self, mode, seed):
        """Cut the current connections, then apply `mode` to the cache."""
        with self.lock:
            conns = list(self.conns)
            for c in conns:
                c.cut = True
            # held requests of these and of connections already gone
            dead = [r for r in self.held if r.conn.cut or r.conn.closed]
            self.held = [r for r in self.held if r not in dead]
            while self.executing:
                self.exec_cv.wait()
        for c in conns:
            with c.send_lock:
                c.closed = True
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for r in dead:
            with self.lock:
                self.st["dropped"] += 1
            self.log(r, "dropped")
            r.conn.request_done()
        with self.cache_lock:
            writes, kept, lost = self._cache_lose(mode, seed)
        return ("ok powercut mode=%s seed=%s writes=%d kept=%d lost=%d "
                "held_dropped=%d" % (mode, seed, writes, kept, lost,
                                     len(dead)))

    # ----------------------------------------------------------- control
    def do_release(self, fail=False):
        with self.lock:
            self.hanging = False
            if self.draining:
                return 0
            self.draining = True
        n = 0
        try:
            while True:
                with self.lock:
                    if not self.held or self.hanging:
                        break
                    req = self.held.pop(0)
                n += 1
                if req.conn.closed or req.conn.cut:
                    with self.lock:
                        self.st["dropped"] += 1
                    self.log(req, "dropped")
                    req.conn.request_done()
                    continue
                if fail:
                    with self.lock:
                        self.st["errors"] += 1
                        key = {CMD_READ: "reads", CMD_WRITE: "writes",
                               CMD_FLUSH: "flushes", CMD_TRIM: "trims",
                               CMD_WRITE_ZEROES: "zeroes"}.get(req.cmd)
                        if key:
                            self.st[key] += 1
                    self.log(req, "eio")
                    req.conn.reply(req.handle, NBD_EIO)
                    req.conn.request_done()
                    continue
                try:
                    self.execute(req)
                except Exception as e:
                    log_err("release: %r" % (e,))
                    req.conn.reply(req.handle, NBD_EIO)
                    req.conn.request_done()
        finally:
            with self.lock:
                self.draining = False
        return n

    def stats_line(self):
        with self.lock:
            s = dict(self.st)
            held = len(self.held)
            s2 = ("error=%s hang=%d delay=%d bandwidth=%d connects=%d"
                  % (self.error_mode, int(self.hanging), self.delay_ms,
                     self.bandwidth, self.connects))
        with self.cache_lock:
            s2 += (" fua=%d cache=%s cached=%d cached_bytes=%d"
                   % (s["fua"], "on" if self.cache_on else "off",
                      len(self.cache), sum(e.length for e in self.cache)))
        return ("ok reads=%d writes=%d flushes=%d trims=%d zeroes=%d "
                "read_bytes=%d write_bytes=%d held=%d errors=%d dropped=%d %s"
                % (s["reads"], s["writes"], s["flushes"], s["trims"],
                   s["zeroes"], s["read_bytes"], s["write_bytes"], held,
                   s["errors"], s["dropped"], s2))

    def control(self, line):
        words = line.split()
        if not words:
            return "err empty command"
        c = words[0].lower()
        args = words[1:]
        try:
            if c == "ping":
                return "ok pong"
            if c == "error":
                if len(args) != 1 or args[0] not in ("read", "write", "all",
                                                     "off"):
                    return "err usage: error read|write|all|off"
                with self.lock:
                    self.error_mode = args[0]
                return "ok error=%s" % args[0]
            if c == "hang":
                kind = args[0] if args else "all"
                if len(args) > 1 or kind not in ("all", "write", "flush"):
                    return "err usage: hang [all|write|flush]"
                with self.lock:
                    self.hanging = True
                    self.hang_kind = kind
                return "ok hang=%s" % kind
            if c == "range":
                if args == ["all"]:
                    with self.lock:
                        self.fault_range = None
                    return "ok range=all"
                lo, hi = int(args[0]), int(args[1])
                if len(args) != 2 or lo < 0 or hi <= lo:
                    raise ValueError
                with self.lock:
                    self.fault_range = (lo, hi)
                return "ok range=%d-%d" % (lo, hi)
            if c == "apply-partial":
                nbytes = int(args[0])
                if nbytes <= 0 or len(args) != 1:
                    raise ValueError
                return "ok applied=%d bytes=%d" % (self.apply_partial(nbytes),
                                                   nbytes)
            if c == "cache":
                if len(args) != 1 or args[0] not in ("on", "off"):
                    return "err usage: cache on|off"
                with self.cache_lock:
                    n = self._cache_writeback()
                    self.cache_on = args[0] == "on"
                return "ok cache=%s written_back=%d" % (args[0], n)
            if c == "writeback":
                with self.cache_lock:
                    return "ok written_back=%d" % self._cache_writeback()
            if c == "powercut":
                if not args or args[0] not in ("all", "none", "random") or \
                        len(args) != (2 if args[0] == "random" else 1):
                    return "err usage: powercut all|none|random <seed>"
                seed = int(args[1]) if args[0] == "random" else None
                return self.powercut(args[0], seed)
            if c == "release":
                return "ok released=%d" % self.do_release()
            if c == "fail-held":
                return "ok failed=%d" % self.do_release(fail=True)
            if c == "delay":
                ms = int(args[0])
                if ms < 0:
                    raise ValueError
                self.delay_ms = ms
                return "ok delay=%d" % ms
            if c == "bandwidth":
                bw = int(args[0])
                if bw < 0:
                    raise ValueError
                self.bandwidth = bw
                with self.bw_lock:
                    self.bw_next = 0.0
                return "ok bandwidth=%d" % bw
            if c == "heal":
                with self.lock:
                    self.error_mode = "off"
                self.delay_ms = 0
                self.bandwidth = 0
                n = self.do_release()
                return "ok healed released=%d" % n
            if c == "stats":
                return self.stats_line()
            if c == "reset-stats":
                self.reset_stats()
                return "ok"
            if c == "options":
                with self.lock:
                    return "ok " + " ".join(self.options_seen)
            if c == "quit":
                self.stop_event.set()
                return "ok bye"
        except (ValueError, IndexError):
            return "err bad argument for %s" % c
        return "err unknown command %s" % c

    def control_client(self, sock):
        f = sock.makefile("rwb", buffering=0)
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                reply = self.control(line.decode(errors="replace").strip())
                f.write((reply + "\n").encode())
                if self.stop_event.is_set():
                    break
        except OSError:
            pass
        finally:
            try:
                f.close()
                sock.close()
            except OSError:
                pass

    # ------------------------------------------------------------- loops
    def _listen(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)
        return s

    def _accept_loop(self, lsock, fn):
        while not self.stopping:
            try:
                c, _ = lsock.accept()
            except OSError:
                if self.stopping:
                    return
                time.sleep(0.05)
                continue
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def nbd_client(self, sock):
        with self.lock:
            self.conn_id += 1
            self.connects += 1
            cid = self.conn_id
            conn = Connection(self, sock, cid)
            self.conns.add(conn)
        conn.serve()

    def run(self):
        self.nbd_l = self._listen(self.nbd_sock_path)
        self.ctrl_l = self._listen(self.ctrl_sock_path)
        threading.Thread(target=self._accept_loop,
                         args=(self.nbd_l, self.nbd_client),
                         daemon=True).start()
        threading.Thread(target=self._accept_loop,
                         args=(self.ctrl_l, self.control_client),
                         daemon=True).start()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while not self.stop_event.wait(0.5):
            pass
        self.shutdown()

    def shutdown(self):
        self.stopping = True
        for s, p in ((self.nbd_l, self.nbd_sock_path),
                     (self.ctrl_l, self.ctrl_sock_path)):
            try:
                s.close()
            except OSError:
                pass
            try:
                os.unlink(p)
            except OSError:
                pass
        try:
            # stopping the backend is an orderly power-off: the disk writes
            # its cache back
            with self.cache_lock:
                self._cache_writeback()
            os.fsync(self.fd)
        except OSError:
            pass
        if self.log_fh:
            with self.log_lock:
                self.log_fh.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--file", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--log")
    ap.add_argument("--export-name", default="")
    a = ap.parse_args()
    srv = FaultServer(a.file, a.socket, a.control, a.log, a.export_name)
    signal.signal(signal.SIGTERM, lambda *_: srv.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: srv.stop_event.set())
    srv.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # worker/daemon threads may be blocked (held requests): exit hard
    os._exit(0)


if __name__ == "__main__":
    main()
