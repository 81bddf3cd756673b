#!/usr/bin/env python3
"""Host-only self test of harness/nbd_fault_server.py using qemu-io/qemu-img.

Usage: selftest_nbd.py [-v] [--keep]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness.disks import FaultDisk, ControlError  # noqa: E402

VERBOSE = "-v" in sys.argv
passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("PASS %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def url(d):
    return "nbd+unix:///?socket=%s" % d.socket


def qio(d, *cmds, timeout=60, image_opts=False):
    args = ["qemu-io"]
    if image_opts:
        args += ["--image-opts"]
    else:
        args += ["-f", "raw"]
    for c in cmds:
        args += ["-c", c]
    if image_opts:
        args.append("driver=nbd,server.type=unix,server.path=%s" % d.socket)
    else:
        args.append(url(d))
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace")
    if VERBOSE:
        print("  $ %s\n  rc=%d %s" % (" ".join(args), p.returncode,
                                      out.strip().replace("\n", "\n  ")))
    return p.returncode, out


def qio_ok(rc, out):
    # qemu-io exits 0 even for some failed commands; look at the text too
    return rc == 0 and "error" not in out.lower() and "fail" not in out.lower()


def main():
    work = tempfile.mkdtemp(prefix="nbdselftest-")
    d = None
    try:
        d = FaultDisk(work, "t0", 16 << 20)
        check("ping", d.ping().startswith("ok"))

        # --- basic write/read/backing check
        rc, out = qio(d, "write -P 0x5a 65536 131072",
                      "read -P 0x5a 65536 131072")
        check("write+read pattern", qio_ok(rc, out), out)
        data = d.read_backing(65536, 131072)
        check("backing file has pattern", data == b"\x5a" * 131072)
        check("bytes before untouched", d.read_backing(61440, 4096)
              == b"\0" * 4096)
        check("bytes after untouched", d.read_backing(196608, 4096)
              == b"\0" * 4096)

        rc, out = qio(d, "read -P 0x5a 65536 4096", image_opts=True)
        check("read via --image-opts", qio_ok(rc, out), out)

        # --- qemu-img sees the right size, convert reads everything
        p = subprocess.run(["qemu-img", "info", "--output=json", url(d)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check("qemu-img info size", b'"virtual-size": %d' % (16 << 20)
              in p.stdout, p.stdout.decode(errors="replace"))
        copy = os.path.join(work, "copy.raw")
        p = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw",
                            url(d), copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(copy, "rb") as f, open(d.file, "rb") as g:
            same = f.read() == g.read()
        check("qemu-img convert copy identical", p.returncode == 0 and same,
              p.stdout.decode(errors="replace"))

        # --- stats counting
        d.reset_stats()
        s0 = d.stats()
        check("reset-stats zeroes counters",
              all(s0[k] == 0 for k in ("reads", "writes", "flushes",
                                       "read_bytes", "write_bytes",
                                       "errors")), s0)
        rc, out = qio(d, "write -P 0x11 0 8192", "read 0 4096",
                      "read 4096 4096", "flush")
        s = d.stats()
        check("stats writes", s["writes"] == 1 and
              s["write_bytes"] == 8192, s)
        check("stats reads", s["reads"] >= 2 and s["read_bytes"] >= 8192, s)
        check("stats flushes", s["flushes"] >= 1, s)
        check("stats no errors", s["errors"] == 0 and s["held"] == 0, s)

        # --- write_zeroes / discard
        d.reset_stats()
        rc, out = qio(d, "write -z 0 4096", "discard 4096 4096")
        s = d.stats()
        check("write -z / discard ok", qio_ok(rc, out), out)
        check("zeroes+trims counted", s["zeroes"] == 1 and s["trims"] == 1, s)
        check("zeroed range is zero",
              d.read_backing(0, 8192) == b"\0" * 8192)

        # --- FUA write
        rc, out = qio(d, "write -f -P 0x22 8192 4096")
        check("FUA write", qio_ok(rc, out) and
              d.read_backing(8192, 4096) == b"\x22" * 4096, out)

        # --- error write
        before = d.read_backing(65536, 4096)
        d.reset_stats()
        d.error("write")
        rc, out = qio(d, "write -P 0x77 65536 4096")
        check("error write -> qemu-io write fails with I/O error",
              "Input/output error" in out, out)
        check("file unchanged after failed write",
              d.read_backing(65536, 4096) == before)
        rc, out = qio(d, "read -P 0x5a 65536 4096")
        check("reads still work under 'error write'", qio_ok(rc, out), out)
        s = d.stats()
        check("errors counted", s["errors"] >= 1, s)

        # --- error read
        d.error("read")
        rc, out = qio(d, "read 65536 4096")
        check("error read -> read fails", "Input/output error" in out, out)
        d.error("all")
        rc, out = qio(d, "read 65536 4096")
        check("error all -> read fails", "Input/output error" in out, out)

        # --- error off works again
        d.error("off")
        rc, out = qio(d, "write -P 0x77 65536 4096",
                      "read -P 0x77 65536 4096")
        check("error off -> write works", qio_ok(rc, out) and
              d.read_backing(65536, 4096) == b"\x77" * 4096, out)

        # --- bad control command
        try:
            d.command("error sideways")
            check("bad control command rejected", False)
        except ControlError:
            check("bad control command rejected", True)

        # --- hang / release
        d.reset_stats()
        d.hang()
        args = ["qemu-io", "-f", "raw", "-c", "read -P 0x77 65536 4096",
                url(d)]
        p = subprocess.Popen(args, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        time.sleep(1.5)
        check("hang -> read does not finish in 1.5 s", p.poll() is None)
        s = d.stats()
        check("stats shows held request", s["held"] >= 1, s)
        t0 = time.monotonic()
        r = d.release()
        try:
            out = p.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()[0].decode(errors="replace")
        check("release -> read finishes successfully",
              p.returncode == 0 and "read 4096/4096" in out
              and time.monotonic() - t0 < 10, r + " " + out)
        s = d.stats()
        check("held back to 0 after release", s["held"] == 0, s)

        # --- hang then heal releases too; writes held are executed
        d.hang()
        p = subprocess.Popen(["qemu-io", "-f", "raw", "-c",
                              "write -P 0x33 131072 4096", url(d)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        check("held write not yet on disk",
              p.poll() is None and
              d.read_backing(131072, 4096) == b"\x5a" * 4096)
        d.heal()
        out = p.communicate(timeout=20)[0].decode(errors="replace")
        check("heal releases held write", p.returncode == 0 and
              d.read_backing(131072, 4096) == b"\x33" * 4096, out)

        # --- fail-held answers held requests with EIO
        d.hang()
        p = subprocess.Popen(["qemu-io", "-f", "raw", "-c",
                              "write -P 0x44 131072 4096", url(d)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        d.fail_held()
        out = p.communicate(timeout=20)[0].decode(errors="replace")
        check("fail-held -> EIO, file unchanged",
              "Input/output error" in out and
              d.read_backing(131072, 4096) == b"\x33" * 4096, out)

        # --- held requests of a killed client are dropped, not executed
        d.hang()
        p = subprocess.Popen(["qemu-io", "-f", "raw", "-c",
                              "write -P 0x55 131072 4096", url(d)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        p.kill()
        p.wait()
        time.sleep(0.3)
        d.release()
        s = d.stats()
        check("held write of killed client dropped",
              d.read_backing(131072, 4096) == b"\x33" * 4096 and
              s["dropped"] >= 1, s)

        # --- server keeps serving after disconnects
        rc, out = qio(d, "read -P 0x33 131072 4096")
        check("serves after client was killed", qio_ok(rc, out), out)

        # --- delay
        d.delay(300)
        t0 = time.monotonic()
        rc, out = qio(d, "read -P 0x77 65536 4096")
        dt = time.monotonic() - t0
        check("delay 300 -> read takes >= 0.3 s", qio_ok(rc, out)
              and dt >= 0.3, "dt=%.3f %s" % (dt, out))
        d.delay(0)

        # --- bandwidth
        d.bandwidth(1 << 20)
        t0 = time.monotonic()
        rc, out = qio(d, "read 0 1048576", "read 1048576 1048576")
        limited = time.monotonic() - t0
        check("bandwidth 1MiB/s -> 2 MiB read takes >= 1.5 s",
              qio_ok(rc, out) and limited >= 1.5, "dt=%.3f" % limited)
        d.heal()
        t0 = time.monotonic()
        rc, out = qio(d, "read 0 1048576", "read 1048576 1048576")
        healed = time.monotonic() - t0
        # Compared with the limited read in the same run, not with a fixed time.
        check("heal removes bandwidth limit", qio_ok(rc, out) and healed < limited,
              "limited=%.3f healed=%.3f" % (limited, healed))

        # --- request log
        log = d.request_log()
        check("request log records ops",
              ("write", 65536, 4096, "eio") in log and
              ("write", 65536, 4096, "ok") in log and
              ("read", 65536, 4096, "ok") in log, log[-10:])

        # --- options QEMU sent
        print("info: NBD options seen from QEMU clients: %s"
              % " ".join(d.options_seen()))

        # --- SIGTERM: clean exit, sockets removed
        proc = d.proc
        d.stop()
        check("SIGTERM -> clean exit 0", proc.returncode == 0,
              "rc=%s" % proc.returncode)
        check("sockets removed", not os.path.exists(d.socket)
              and not os.path.exists(d.control_path))

        # --- reuse existing backing file; quit command
        d = FaultDisk(work, "t0")
        rc, out = qio(d, "read -P 0x77 65536 4096")
        check("reuse existing backing file", qio_ok(rc, out), out)
        d.command("quit")
        d.proc.wait(5)
        check("quit -> server exits", d.proc.returncode == 0)
        d.stop()
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("no exception", False, repr(e))
    finally:
        if d is not None:
            d.stop()
        if "--keep" in sys.argv:
            print("workdir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
