"""Reading lvm2's on-disk PV label and VG metadata on the host, for the scenarios' oracles: where
an LV's extents lie on a PV, found from the media, independent of the guest's lvm.

    pv = read_pv(read)              # read(offset, length) -> bytes of the PV (e.g. a partition)
    pv["uuid"], pv["pe_start"]      # pe_start in bytes
    meta = pv["metadata"]           # the newest VG metadata text of this PV, parsed
    lv_ranges(meta, pv, "root_rimage_0") -> [(byte offset in this PV, length)]

Formats (lvm2 lib/label/label.h, lib/format_text/layout.h): the label "LABELONE" in one of the
first four sectors, the PV header (uuid, size, data areas, metadata areas) after it; each
metadata area starts with an mda header (magic " LVM2 x[5A%r0N*>") whose first raw location
points at the current metadata text, a ring buffer after the 512-byte header.
"""
import struct

SECTOR = 512
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_HEADER_SIZE = 512


def _locns(data, pos):
    """The {offset, size} list at pos, ended by a zero entry; returns (list, next pos)."""
    out = []
    while True:
        off, size = struct.unpack_from("<QQ", data, pos)
        pos += 16
        if off == 0 and size == 0:
            return out, pos
        out.append((off, size))


def read_pv(read):
    """PV label, header and newest metadata of the PV read by read(offset, length): dict(uuid
    (32 characters, no dashes), pe_start (bytes), data_areas, metadata_areas, seqno, text,
    metadata (parsed)). Raises ValueError when there is no PV label or no valid metadata."""
    head = read(0, 4 * SECTOR)
    for sector in range(4):
        lab = head[sector * SECTOR:(sector + 1) * SECTOR]
        if lab[:8] == b"LABELONE" and lab[24:32] == b"LVM2 001":
            break
    else:
        raise ValueError("no LVM2 label in the first 4 sectors")
    (offset_xl,) = struct.unpack_from("<I", lab, 20)
    pos = offset_xl
    uuid = lab[pos:pos + 32].decode()
    pos += 32 + 8                   # uuid, device_size_xl
    data_areas, pos = _locns(lab, pos)
    mdas, pos = _locns(lab, pos)
    if not data_areas:
        raise ValueError("PV header without a data area")
    best = None
    for mda_off, mda_size in mdas:
        hdr = read(mda_off, MDA_HEADER_SIZE)
        if hdr[4:20] != MDA_MAGIC:
            continue
        rl_off, rl_size = struct.unpack_from("<QQ", hdr, 40)
        if not rl_size:
            continue
        if rl_off + rl_size <= mda_size:
            text = read(mda_off + rl_off, rl_size)
        else:               # wrapped around the ring buffer
            first = mda_size - rl_off
            text = read(mda_off + rl_off, first) + \
                read(mda_off + MDA_HEADER_SIZE, rl_size - first)
        text = text.split(b"\0", 1)[0].decode(errors="replace")
        meta = parse_config(text)
        vg = _the_vg(meta)
        seqno = meta[vg].get("seqno", -1)
        if best is None or seqno > best[0]:
            best = (seqno, text, meta)
    if best is None:
        raise ValueError("no valid metadata area")
    return dict(uuid=uuid, pe_start=data_areas[0][0], data_areas=data_areas,
                metadata_areas=mdas, seqno=best[0], text=best[1], metadata=best[2])


def _the_vg(meta):
    """The name of the VG section (the only section at the top level of a VG's metadata)."""
    sections = [k for k, v in meta.items() if isinstance(v, dict)]
    if len(sections) != 1:
        raise ValueError("metadata has %d top-level sections" % len(sections))
    return sections[0]


# ------------------------------------------------------------------- config text

def _tokens(text):
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{}[]=,":
            yield c
            i += 1
        elif c == '"':
            j, s = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                s.append(text[j])
                j += 1
            yield ("str", "".join(s))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n#{}[]=,\"":
                j += 1
            yield ("word", text[i:j])
            i = j


def parse_config(text):
    """lvm2's config format (sections `name { ... }`, `key = value`, values strings, numbers
    and lists) as nested dicts; numbers become ints."""
    toks = list(_tokens(text))
    pos = 0

    def value():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "[":
            out = []
            while toks[pos] != "]":
                if toks[pos] == ",":
                    pos += 1
                    continue
                out.append(value())
            pos += 1
            return out
        kind, v = t
        if kind == "word":
            try:
                return int(v)
            except ValueError:
                try:
                    return float(v)
                except ValueError:
                    return v
        return v

    def items(until):
        nonlocal pos
        out = {}
        while pos < len(toks) and toks[pos] != until:
            kind, key = toks[pos]
            pos += 1
            if toks[pos] == "{":
                pos += 1
                out[key] = items("}")
                pos += 1
            elif toks[pos] == "=":
                pos += 1
                out[key] = value()
            else:
                raise ValueError("unexpected %r after %r" % (toks[pos], key))
        return out

    return items(None)


# ------------------------------------------------------------------- extents

def lv_ranges(pv, lv_name):
    """Where LV `lv_name` (a linear LV, e.g. an rtmirror leg or log copy) lies on this PV, in
    LV order: [(byte offset from the start of the PV, length in bytes)]. Raises ValueError
    when a segment of it is on another PV or not striped/linear."""
    meta = pv["metadata"]
    vg = meta[_the_vg(meta)]
    extent = vg["extent_size"] * SECTOR
    pv_name = [k for k, v in vg["physical_volumes"].items()
               if v["id"].replace("-", "") == pv["uuid"]]
    if len(pv_name) != 1:
        raise ValueError("PV %s is not in the VG's metadata" % pv["uuid"])
    lv = vg["logical_volumes"][lv_name]
    segs = sorted((v for k, v in lv.items() if k.startswith("segment") and isinstance(v, dict)),
                  key=lambda s: s["start_extent"])
    out = []
    for s in segs:
        if s["type"] != "striped" or s.get("stripe_count") != 1:
            raise ValueError("%s: segment of type %s, %s stripes"
                             % (lv_name, s["type"], s.get("stripe_count")))
        on, pe = s["stripes"]
        if on != pv_name[0]:
            raise ValueError("%s: a segment is on %s, not on this PV (%s)"
                             % (lv_name, on, pv_name[0]))
        out.append((pv["pe_start"] + pe * extent, s["extent_count"] * extent))
    return out
