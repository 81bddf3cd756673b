"""Decoding of rtmirror log copies (docs/log-format.md, versions 1 and 2) on the host, for the
scenarios' oracles: what a log copy on the media says, independent of the kernel's code."""
import struct

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def decode_log_v1(data):
    """A log copy in format v1 (docs/log-format.md): dict(version, generation, nr_regions,
    legs, dirty=[regions]) if valid; dict(version, error) if not (torn, corrupt, or another
    version, which this decoder does not know)."""
    if data[:8] != b"RTMIRLOG":
        return dict(version=None, error="no magic")
    version, hlen = struct.unpack_from("<II", data, 8)
    if version != 1:
        return dict(version=version, error="version %d not decoded" % version)
    gen, _, nr = struct.unpack_from("<QQQ", data, 32)
    if hlen != 4096 or not 1 <= nr <= 1 << 32:
        return dict(version=1, error="bad header")
    total = 4096 + -(-((nr + 7) // 8) // 4096) * 4096
    copy = bytearray(data[:total])
    if len(copy) < total:
        return dict(version=1, error="short")
    (stored,) = struct.unpack_from("<I", copy, 60)
    copy[60:64] = bytes(4)
    if crc32c(copy) != stored:
        return dict(version=1, generation=gen, error="checksum mismatch (torn or corrupt)")
    legs = copy[64:64 + copy[56]].decode(errors="replace")
    dirty = [r for r in range(nr) if copy[4096 + r // 8] >> (r % 8) & 1]
    return dict(version=1, generation=gen, nr_regions=nr, legs=legs, dirty=dirty)


BLOCK_REGIONS_V2 = 32256


def decode_log_v2(data):
    """A log copy in format v2 (docs/log-format.md): the newest valid header slot and the
    bitmap blocks; a block that fails its check counts as all of its regions dirty (as the
    kernel reads it). dict(version, generation, nr_regions, legs, dirty=[regions]) if a header
    slot is valid, dict(version, error) if not."""
    best = None
    for slot in (0, 1):
        blk = bytearray(data[slot * 4096:(slot + 1) * 4096])
        if len(blk) < 4096 or blk[:8] != b"RTMIRLOG":
            continue
        version, hlen = struct.unpack_from("<II", blk, 8)
        if version != 2 or hlen != 4096:
            continue
        (stored,) = struct.unpack_from("<I", blk, 60)
        blk[60:64] = bytes(4)
        if crc32c(blk) != stored:
            continue
        gen, _, nr = struct.unpack_from("<QQQ", blk, 32)
        if best is None or gen > best[0]:
            best = (gen, nr, blk[64:64 + blk[56]].decode(errors="replace"), bytes(blk[16:32]),
                    blk[57])
    if best is None:
        return dict(version=2, error="no valid header slot (torn, corrupt or blank)")
    gen, nr, legs, uuid, flags = best
    dirty = []
    for b in range(-(-nr // BLOCK_REGIONS_V2)):
        blk = bytearray(data[(2 + b) * 4096:(3 + b) * 4096])
        first = b * BLOCK_REGIONS_V2
        count = min(BLOCK_REGIONS_V2, nr - first)
        ok = len(blk) == 4096 and blk[:8] == b"RTMIRBLK"
        if ok:
            (idx, stored) = struct.unpack_from("<II", blk, 8)
            blk[12:16] = bytes(4)
            ok = idx == b and crc32c(blk) == stored and bytes(blk[24:40]) == uuid
        if not ok:
            dirty += range(first, first + count)
            continue
        dirty += [first + r for r in range(count) if blk[64 + r // 8] >> (r % 8) & 1]
    return dict(version=2, generation=gen, nr_regions=nr, legs=legs, dirty=dirty,
                clean=bool(flags & 1))


def decode_log(data):
    """A log copy in either format."""
    if data[:8] == b"RTMIRLOG" and struct.unpack_from("<I", data, 8)[0] == 1:
        return decode_log_v1(data)
    return decode_log_v2(data)
