"""A plain raw image file attached as a virtio-blk disk (no fault injection).

For measurements (qemu-tests/bench.py): the guest's I/O goes from QEMU straight to the
file, without the Python NBD fault server in the path.

    d = RawDisk(workdir, "leg0", 1 << 30)          # zero-filled, fully allocated
    Guest(..., disks=[d, ...])                      # -drive file=...,cache=none,aio=threads

Guest attaches any disk object that has .file and no .socket this way (see guest.py).
cache: "none" (default: O_DIRECT on the host file, the guest sees a volatile write cache
and its flushes become fdatasync() of the file) or "writeback" (host page cache); never
"unsafe", which drops the guest's flushes and would hide their cost.
"""

import os

MiB = 1 << 20


class RawDisk:
    CACHES = ("none", "writeback", "writethrough", "directsync")

    def __init__(self, workdir, name, size_bytes, fill="zero", cache="none",
                 aio="threads", file=None):
        """
        workdir     directory of the image file (default workdir/name.img)
        name        also the disk's virtio serial number: the guest's init names a disk
                    with serial d<i> /dev/vd<letter i> (d0 -> vda), whatever the probe order
        size_bytes  size of the image; an existing file of another size is recreated
        fill        "zero": write zeroes over the whole file once (every block allocated,
                    so the first guest write to a block costs the same as the next);
                    "sparse": a sparse file
        """
        if cache not in self.CACHES:
            raise ValueError("cache must be one of %s" % (self.CACHES,))
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.size = size_bytes
        self.cache = cache
        self.aio = aio
        self.file = os.path.abspath(file) if file else \
            os.path.join(self.workdir, name + ".img")
        if not os.path.exists(self.file) or os.path.getsize(self.file) != size_bytes:
            self.create(fill)

    def create(self, fill="zero"):
        with open(self.file, "wb") as f:
            if fill == "zero":
                zero = bytes(MiB)
                left = self.size
                while left > 0:
                    n = min(left, MiB)
                    f.write(zero[:n])
                    left -= n
                f.flush()
                os.fsync(f.fileno())
            else:
                f.truncate(self.size)

    def drive_args(self, node):
        """QEMU -drive for this disk, with id `node` (the device refers to it)."""
        return ["-drive", "file=%s,format=raw,if=none,id=%s,cache=%s,aio=%s"
                % (self.file, node, self.cache, self.aio)]

    def read_backing(self, offset, length):
        with open(self.file, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def __repr__(self):
        return "RawDisk(%s, %d bytes, cache=%s)" % (self.file, self.size, self.cache)
