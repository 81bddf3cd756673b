"""dm-rtmirror QEMU test harness.

    from harness import FaultDisk, Guest
    disks = [FaultDisk(workdir, "m0", 64 << 20), FaultDisk(workdir, "m1", 64 << 20)]
    g = Guest("x86_64", kernel, initrd, disks, append="rdinit=/init")
    res = g.run()
"""

from .disks import FaultDisk, FaultDiskSet, ControlError, parse_stats, stop_all
from .guest import Guest, GuestResult, PROBLEM_RE

__all__ = ["FaultDisk", "FaultDiskSet", "ControlError", "parse_stats",
           "stop_all", "Guest", "GuestResult", "PROBLEM_RE"]
