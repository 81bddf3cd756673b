//! Helpers shared by the fuzz targets: word splitting as the kernel does it, and the
//! checks on the log decoders and on `activate_copies` (the oracles the targets assert).

use arbitrary::Arbitrary;
use rtmirror_core::log_format::*;
use rtmirror_core::status::LegState;

/// Splits a line into words on the characters the kernel's `isspace()` takes as
/// whitespace in ASCII (`dm_split_args`), dropping empty words.
pub fn words(s: &str) -> Vec<&str> {
    s.split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Runs a formatter into a `String`; panics if it fails (every formatter here only fails
/// when the `fmt::Write` does, and a `String` never does).
pub fn fmt_string(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut s = String::new();
    f(&mut s).expect("formatting into a String failed");
    s
}

/// Largest bitmap (in words) the checks allocate for a geometry read from the input.
const MAX_CHECK_WORDS: usize = 1 << 16;

/// Runs every decoder over `buf` as a log copy and checks that whatever decodes re-encodes to
/// the same bytes, and that a failed block decode leaves the output bitmap unchanged.
/// `want` gives a geometry to try the bitmap blocks with, besides those of decoded headers.
pub fn check_decoders(buf: &[u8], want: &LogWant) {
    // Version 1: a copy that decodes is at most `buf.len()` bytes, so its bitmap fits here.
    let mut bm = vec![0u64; buf.len() / 8 + 1];
    if let Ok(h) = decode_v1(buf, &mut bm) {
        assert_eq!(h.validate(), Ok(()), "decode_v1 returned an invalid header");
        assert_eq!(
            h,
            h.normalized(),
            "decode_v1 returned an unnormalized header"
        );
        let total = log_bytes_v1(h.nr_regions) as usize;
        let mut out = vec![0xA5u8; total];
        let n = encode_v1(&h, &bm, &mut out).expect("decoded v1 copy does not re-encode");
        assert_eq!(n, total);
        assert!(
            out == buf[..total],
            "v1 copy does not re-encode to the same bytes"
        );
    }
    // Version 2 header slots.
    let mut geometries: Vec<([u8; 16], u64)> = Vec::new();
    geometries.push((want.uuid.unwrap_or([0; 16]), want.nr_regions));
    for slot in 0..HEADER_SLOTS as usize {
        let Some(block) = buf.get(slot * HEADER_BYTES..) else {
            continue;
        };
        if let Ok(h) = decode_header(block) {
            assert_eq!(
                h.validate(),
                Ok(()),
                "decode_header returned an invalid header"
            );
            assert_eq!(
                h,
                h.normalized(),
                "decode_header returned an unnormalized header"
            );
            let mut out = vec![0x5Au8; HEADER_BYTES];
            encode_header(&h, &mut out).expect("decoded header does not re-encode");
            assert!(
                out == block[..HEADER_BYTES],
                "header slot {slot} does not re-encode to the same bytes"
            );
            geometries.push((h.uuid, h.nr_regions));
        }
    }
    // Version 2 bitmap blocks, at their place and with the index each block claims.
    for (uuid, nr) in geometries {
        let words = bitmap_words(nr);
        if words > MAX_CHECK_WORDS {
            continue;
        }
        let nblocks = bitmap_blocks(nr);
        let mut bm = vec![0u64; words];
        let mut tries: Vec<(u64, usize)> = Vec::new();
        for pos in (0..buf.len()).step_by(LOG_BLOCK_BYTES as usize) {
            let claimed = u32::from_le_bytes(buf[pos..].get(8..12).map_or([0; 4], |s| {
                let mut a = [0; 4];
                a.copy_from_slice(s);
                a
            }));
            tries.push((u64::from(claimed), pos));
            let p = pos as u64 / LOG_BLOCK_BYTES;
            if p >= HEADER_SLOTS {
                tries.push((p - HEADER_SLOTS, pos));
            }
        }
        // Also an index past the end of the bitmap, and the block at a misaligned place.
        tries.push((nblocks, 0));
        tries.push((0, buf.len() / 2));
        for (b, pos) in tries {
            let block = &buf[pos..];
            for (i, w) in bm.iter_mut().enumerate() {
                *w = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            }
            let before = bm.clone();
            match decode_bitmap_block(&uuid, nr, b, block, &mut bm) {
                Ok(g) => {
                    assert!(b < nblocks, "block {b} of {nblocks} decoded");
                    assert!(g != 0, "bitmap block decoded with generation 0");
                    let mut out = vec![0x3Cu8; LOG_BLOCK_BYTES as usize];
                    encode_bitmap_block(&uuid, g, nr, b, &bm, &mut out)
                        .expect("decoded bitmap block does not re-encode");
                    assert!(
                        out == block[..LOG_BLOCK_BYTES as usize],
                        "bitmap block {b} does not re-encode to the same bytes"
                    );
                    // Only the words of block b may have changed.
                    let lo = (b as usize) * WORDS_PER_BLOCK;
                    let hi = (lo + WORDS_PER_BLOCK).min(words);
                    for (i, (x, y)) in bm.iter().zip(&before).enumerate() {
                        assert!(
                            x == y || (lo..hi).contains(&i),
                            "word {i} outside block {b}"
                        );
                    }
                }
                Err(_) => assert!(bm == before, "a failed block decode changed the bitmap"),
            }
        }
    }
}

/// Calls `activate_copies` and checks the invariants it documents; returns the activation and
/// the union and common bitmaps.
pub fn check_activation(
    want: &LogWant,
    copies: &[Option<&[u8]>],
) -> Option<(Activation, Vec<u64>, Vec<u64>)> {
    let words = bitmap_words(want.nr_regions);
    // Sentinels after the bitmap words: activation must not touch them.
    let mut union = vec![0xDEAD_BEEFu64; words + 1];
    let mut common = vec![0xFEED_F00Du64; words + 1];
    let r = activate_copies(want, copies, &mut union, &mut common);
    if copies.len() > MAX_COPIES {
        assert_eq!(r, Err(LogError::TooManyCopies));
        return None;
    }
    let act = r.expect("activate_copies failed with large enough bitmaps");
    assert_eq!(union[words], 0xDEAD_BEEF, "union written past its bitmap");
    assert_eq!(common[words], 0xFEED_F00D, "common written past its bitmap");
    union.truncate(words);
    common.truncate(words);
    let n = want.nr_regions;
    let beyond = |m: &[u64]| match (n % 64, m.last()) {
        (0, _) | (_, None) => true,
        (r, Some(&l)) => l >> r == 0,
    };
    assert!(beyond(&union), "union has bits beyond the last region");
    assert!(beyond(&common), "common has bits beyond the last region");
    for (i, (u, c)) in union.iter().zip(&common).enumerate() {
        assert!(
            c & !u == 0,
            "word {i}: common {c:#x} not a subset of union {u:#x}"
        );
    }
    let ones: u64 = union.iter().map(|w| u64::from(w.count_ones())).sum();
    assert_eq!(
        act.out_of_sync, ones,
        "out_of_sync is not the union's population"
    );
    // Classes: one per given copy, unreadable exactly for `None`, absent beyond.
    for (i, &class) in act.classes.iter().enumerate() {
        match copies.get(i) {
            None => assert_eq!(class, CopyClass::Absent),
            Some(None) => assert_eq!(class, CopyClass::Unreadable),
            Some(Some(_)) => assert!(!matches!(class, CopyClass::Absent | CopyClass::Unreadable)),
        }
        if !class.used() {
            assert_eq!(
                act.generations[i], 0,
                "copy {i} not used but has a generation"
            );
        }
    }
    let given = &act.classes[..copies.len()];
    if given.iter().any(|c| !c.used()) {
        assert!(
            common.iter().all(|&w| w == 0),
            "common not empty with a copy not used"
        );
    }
    match act.outcome {
        LogOutcome::Found => {
            let h = act.newest.expect("Found without a newest header");
            assert_eq!(h.validate(), Ok(()));
            assert_eq!(h, h.normalized());
            assert_eq!(
                (h.region_size, h.nr_regions, h.nr_legs),
                (want.region_size, want.nr_regions, want.nr_legs),
                "newest header of another geometry"
            );
            assert_eq!(act.uuid, Some(h.uuid), "uuid is not the newest header's");
            if let Some(u) = want.uuid {
                assert_eq!(h.uuid, u, "bound log found with another uuid");
            }
            assert_eq!(act.max_generation, h.generation);
            assert!(given.iter().any(|c| c.used()), "Found without a used copy");
            for (i, c) in given.iter().enumerate() {
                if c.used() {
                    assert!(act.generations[i] != 0 && act.generations[i] <= h.generation);
                }
                let behind = act.behind(copies.len()) & (1 << i) != 0;
                assert_eq!(behind, act.generations[i] < h.generation, "behind bit {i}");
            }
            assert_eq!(act.upgrade, given.contains(&CopyClass::V1));
            if act.clean {
                assert!(h.clean_shutdown && h.legs().iter().all(|&s| s == LegState::InSync));
                assert_eq!(ones, 0, "clean shutdown with regions out of sync");
            }
            // The resync source is a leg in sync in the newest header, if any is available.
            let avail = [true; 4];
            match resync_source(Some(&h), &avail, 0) {
                ResyncSource::Leg(l) => assert_eq!(h.legs()[usize::from(l)], LegState::InSync),
                ResyncSource::NoneInSync => assert!(!h.legs().contains(&LegState::InSync)),
                ResyncSource::Unknown => panic!("Unknown resync source with a header"),
            }
        }
        LogOutcome::New | LogOutcome::Unknown => {
            assert!(act.newest.is_none(), "no log found but a newest header");
            assert!(given.iter().all(|c| !c.used()));
            assert_eq!(act.max_generation, 0);
            assert!(!act.clean && !act.upgrade);
            assert_eq!(ones, n, "no log found but not every region out of sync");
            assert!(
                common.iter().all(|&w| w == 0),
                "no log found but common not empty"
            );
            let new = given
                .iter()
                .all(|c| matches!(c, CopyClass::Blank | CopyClass::Unreadable))
                && (copies.is_empty() || given.contains(&CopyClass::Blank));
            assert_eq!(act.outcome == LogOutcome::New, new, "New/Unknown mismatch");
        }
    }
    Some((act, union, common))
}

/// The geometry a raw copy is checked with: read from its first header slot (the second when
/// the first has no magic) when in range, so that mutations of a valid seed keep reaching the
/// bitmap code; else small defaults.
pub fn want_from_raw(buf: &[u8], bound: bool) -> LogWant {
    // The first slot, or the second when the first does not start with the magic.
    let base = if buf.get(..8) != Some(&LOG_MAGIC[..]) && buf.len() >= 2 * HEADER_BYTES {
        HEADER_BYTES
    } else {
        0
    };
    let buf = &buf[base..];
    let rd = |off: usize| {
        let mut a = [0u8; 8];
        if let Some(s) = buf.get(off..off + 8) {
            a.copy_from_slice(s);
        }
        u64::from_le_bytes(a)
    };
    let mut uuid = [0u8; 16];
    if let Some(s) = buf.get(16..32) {
        uuid.copy_from_slice(s);
    }
    let region_size = match rd(40) {
        r if r.is_power_of_two() && (8..=1 << 21).contains(&r) => r,
        _ => 8192,
    };
    let nr_regions = match rd(48) {
        r if (1..=4 * REGIONS_PER_BLOCK).contains(&r) => r,
        _ => 1000,
    };
    let nr_legs = match buf.get(56) {
        Some(&l) if (2..=4).contains(&l) => l,
        _ => 2,
    };
    LogWant {
        uuid: bound.then_some(uuid),
        region_size,
        nr_regions,
        nr_legs,
    }
}

// ---------------------------------------------------------------------------
// Structured input: log copies built with the encoders, then damaged.

/// What activation of a single intact copy must give: its bits (masked to the regions), its
/// newest header of this mirror, and whether it is version 1.
pub type Expected = Option<(Vec<u64>, LogHeader, bool)>;

/// A fuzz input describing a geometry and up to a few log copies.
#[derive(Arbitrary, Debug)]
pub struct LogInput {
    regions: u32,
    shift: u8,
    legs: u8,
    bound: bool,
    uuid: [u8; 16],
    copies: Vec<CopyInput>,
}

/// One log copy.
#[derive(Arbitrary, Debug)]
pub enum CopyInput {
    /// A read error.
    Unreadable,
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// Built with the encoders.
    Built(Built),
}

/// A copy built with the encoders and then damaged.
#[derive(Arbitrary, Debug)]
pub struct Built {
    v1: bool,
    slots: [Option<HeaderInput>; 2],
    bits: Vec<(u16, u64)>,
    blocks: Vec<u8>,
    damage: Vec<(u16, u8)>,
    truncate: Option<u16>,
}

/// A header slot.
#[derive(Arbitrary, Debug)]
pub struct HeaderInput {
    foreign_uuid: Option<[u8; 16]>,
    generation: u8,
    geometry: u8,
    legs: [u8; 4],
    stale: [u8; 4],
    clean: bool,
}

impl LogInput {
    /// The geometry activation is asked for: small (up to 3 bitmap blocks) and valid.
    pub fn want(&self) -> LogWant {
        LogWant {
            uuid: self.bound.then_some(self.uuid),
            region_size: 1u64 << (3 + u32::from(self.shift) % 19),
            nr_regions: 1 + u64::from(self.regions) % (3 * REGIONS_PER_BLOCK),
            nr_legs: 2 + self.legs % 3,
        }
    }

    /// The copy images (`None`: unreadable), and whether there is exactly one copy, built
    /// undamaged with a valid header of this mirror and all its blocks (the bits it holds).
    pub fn build(&self) -> (Vec<Option<Vec<u8>>>, Expected) {
        let want = self.want();
        let mut pristine = None;
        let copies = self
            .copies
            .iter()
            .take(MAX_COPIES + 1)
            .map(|c| match c {
                CopyInput::Unreadable => None,
                CopyInput::Raw(v) => Some(v.clone()),
                CopyInput::Built(b) => {
                    let (img, p) = b.build(&want, self.uuid);
                    if self.copies.len() == 1 {
                        pristine = p;
                    }
                    Some(img)
                }
            })
            .collect();
        (copies, pristine)
    }
}

impl HeaderInput {
    fn header(&self, want: &LogWant, uuid: [u8; 16]) -> (LogHeader, bool) {
        let mut h = LogHeader::new(
            self.foreign_uuid.unwrap_or(uuid),
            want.region_size,
            want.nr_regions,
            want.nr_legs,
        );
        h.generation = u64::from(self.generation);
        match self.geometry % 8 {
            1 => h.nr_regions += 1,
            2 => h.region_size *= 2,
            3 => h.nr_legs = 2 + (h.nr_legs - 1) % 3,
            _ => {}
        }
        for i in 0..4 {
            h.leg_states[i] = LegState::ALL[usize::from(self.legs[i]) % 6];
            h.stale_since[i] = if h.leg_states[i] == LegState::InSync {
                0
            } else {
                u64::from(self.stale[i])
            };
        }
        h.clean_shutdown = self.clean;
        let geom = !matches!(self.geometry % 8, 1..=3);
        (h.normalized(), geom)
    }
}

impl Built {
    fn build(&self, want: &LogWant, uuid: [u8; 16]) -> (Vec<u8>, Expected) {
        let nr = want.nr_regions;
        let words = bitmap_words(nr);
        let mut bits = vec![0u64; words];
        for &(i, w) in &self.bits {
            bits[usize::from(i) % words] = w;
        }
        let mut img = vec![0u8; log_bytes_needed(nr) as usize];
        let mut intact = self.damage.is_empty() && self.truncate.is_none();
        // Headers written, with whether they have this geometry.
        let mut written: Vec<(LogHeader, bool)> = Vec::new();
        if self.v1 {
            if let Some(hi) = &self.slots[0] {
                let (h, geom) = hi.header(want, uuid);
                if encode_v1(&h, &bits, &mut img).is_ok() {
                    written.push((h, geom));
                }
            }
        } else {
            for (s, hi) in self.slots.iter().enumerate() {
                if let Some(hi) = hi {
                    let (h, geom) = hi.header(want, uuid);
                    if encode_header(&h, &mut img[s * HEADER_BYTES..]).is_ok() {
                        written.push((h, geom));
                    }
                }
            }
        }
        // What activation of this copy alone should pick: bound, the newest header with the
        // wanted uuid; unbound, the newest of the uuid of the newest header of this geometry.
        // Ties between two slots make it ambiguous: no expectation then.
        let newest_of = |f: &dyn Fn(&LogHeader) -> bool| {
            let cands: Vec<LogHeader> = written
                .iter()
                .filter(|(h, g)| *g && f(h))
                .map(|(h, _)| *h)
                .collect();
            let max = cands.iter().map(|h| h.generation).max()?;
            let top: Vec<&LogHeader> = cands.iter().filter(|h| h.generation == max).collect();
            if top.len() > 1 {
                return Some(None);
            }
            Some(Some(*top[0]))
        };
        let best: Option<Option<LogHeader>> = match want.uuid {
            Some(u) => newest_of(&|h| h.uuid == u),
            None => match newest_of(&|_| true) {
                Some(Some(a)) => newest_of(&|h| h.uuid == a.uuid),
                other => other,
            },
        };
        if !self.v1 {
            // The blocks carry the uuid of that header (or the input's).
            let bh = best.flatten();
            let buuid = bh.map_or(uuid, |h| h.uuid);
            let gen = bh.map_or(1, |h| h.generation);
            for b in 0..bitmap_blocks(nr) {
                let mode = self.blocks.get(b as usize).copied().unwrap_or(0) % 8;
                let pos = (bitmap_block_pos(b) * LOG_BLOCK_BYTES) as usize;
                let (u, g) = match mode {
                    1 => {
                        intact = false;
                        continue;
                    }
                    2 => {
                        intact = false;
                        ([0x77; 16], gen)
                    }
                    3 => {
                        intact = false;
                        (buuid, 0)
                    }
                    4 => (buuid, gen.saturating_sub(1).max(1)),
                    _ => (buuid, gen),
                };
                let r = encode_bitmap_block(&u, g, nr, b, &bits, &mut img[pos..]);
                assert!(g == 0 || r.is_ok(), "encode_bitmap_block failed: {r:?}");
            }
        }
        for &(off, x) in &self.damage {
            let len = img.len();
            img[usize::from(off) % len] ^= x;
        }
        if let Some(t) = self.truncate {
            img.truncate(usize::from(t) % (img.len() + 1));
        }
        let pristine = match best {
            Some(Some(h)) if intact => {
                let last = words - 1;
                if !nr.is_multiple_of(64) {
                    bits[last] &= (1u64 << (nr % 64)) - 1;
                }
                Some((bits, h, self.v1))
            }
            _ => None,
        };
        (img, pristine)
    }
}

/// Checks a structured input: the decoders on every copy, activation, and for a single
/// intact copy that activation returns its header and bits. Returns the outcome (`None`: too
/// many copies) and whether the intact-copy check ran.
pub fn check_log_input(input: &LogInput) -> (Option<LogOutcome>, bool) {
    let want = input.want();
    let (copies, pristine) = input.build();
    for c in copies.iter().flatten() {
        check_decoders(c, &want);
    }
    let refs: Vec<Option<&[u8]>> = copies.iter().map(|c| c.as_deref()).collect();
    let Some((act, union, common)) = check_activation(&want, &refs) else {
        return (None, false);
    };
    let checked = pristine.is_some();
    if let Some((bits, h, v1)) = pristine {
        assert_eq!(act.outcome, LogOutcome::Found, "intact copy not found");
        assert_eq!(act.newest, Some(h), "intact copy: another newest header");
        assert_eq!(
            act.classes[0],
            if v1 { CopyClass::V1 } else { CopyClass::V2 }
        );
        assert_eq!(act.bad_blocks, 0, "intact copy has bad blocks");
        if act.clean {
            assert!(union.iter().all(|&w| w == 0));
        } else {
            assert!(union == bits, "intact copy: union is not its bitmap");
            assert!(common == bits, "intact copy: common is not its bitmap");
        }
    }
    (Some(act.outcome), checked)
}
