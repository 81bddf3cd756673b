//! The on-disk dirty-region log (format version 2, and version 1 read
//! for upgrades). See docs/log-format.md for the layout and the argument.
//!
//! Version 2: a copy is a sequence of 4096-byte blocks. Blocks 0 and 1 are
//! two header slots, each with its own CRC32C, written alternately on each
//! copy: a write never overwrites the copy's newest valid header, so a torn
//! write leaves the previous generation readable.
//! Block `2 + b` is bitmap block `b`: a 64-byte block header (magic, index,
//! generation, uuid, CRC32C) and [`REGIONS_PER_BLOCK`] region bits. A log
//! write rewrites only the bitmap blocks that changed plus one header slot.
//! A block that fails its check counts as all regions dirty.
//!
//! Version 1 (read only): one header block and the bitmap, one CRC over the
//! whole copy ([`decode_v1`]); [`encode_v1`] exists for tests and tools.
//!
//! Bit `r` of a bitmap lives in byte `r / 8`, bit `r % 8`, which is the same
//! as bit `r % 64` of little-endian 64-bit word `r / 64`, so the in-memory
//! `&[u64]` bitmaps map 1:1 onto the disk image. `core`-only and panic-free
//! on any input.

use core::ffi::CStr;
use core::fmt;

use crate::status::LegState;
use crate::table::{MAX_LEGS, MAX_REGION_SIZE, MIN_LEGS, MIN_REGION_SIZE};

/// Magic bytes at the start of every log copy.
pub const LOG_MAGIC: [u8; 8] = *b"RTMIRLOG";
/// The format version this code writes.
pub const LOG_VERSION: u32 = 2;
/// The older format version, still read (and upgraded by the first write).
pub const LOG_VERSION_V1: u32 = 1;
/// Magic bytes at the start of every version 2 bitmap block.
pub const BLOCK_MAGIC: [u8; 8] = *b"RTMIRBLK";
/// Bytes of the header of a version 2 bitmap block.
pub const BLOCK_HEADER_BYTES: usize = 64;
/// Bitmap words in one version 2 bitmap block.
pub const WORDS_PER_BLOCK: usize = (4096 - BLOCK_HEADER_BYTES) / 8;
/// Regions (bits) in one version 2 bitmap block.
pub const REGIONS_PER_BLOCK: u64 = WORDS_PER_BLOCK as u64 * 64;
/// Header slots at the start of a version 2 copy.
pub const HEADER_SLOTS: u64 = 2;
/// Size of a header block (slot) in bytes.
pub const HEADER_BYTES: usize = 4096;
/// Log copies are written in blocks of this many bytes.
pub const LOG_BLOCK_BYTES: u64 = 4096;
/// Largest number of regions a log may describe (2^32; with 4 MiB regions
/// that is 16 PiB), which keeps the bitmap addressable on 32-bit kernels.
pub const MAX_REGIONS: u64 = 1 << 32;
/// Largest number of log copies [`choose_copies`] accepts.
pub const MAX_COPIES: usize = 8;
/// Flag bit: the mirror was shut down cleanly after this write.
pub const FLAG_CLEAN_SHUTDOWN: u8 = 1;

const OFF_VERSION: usize = 8;
const OFF_HEADER_LEN: usize = 12;
const OFF_UUID: usize = 16;
const OFF_GENERATION: usize = 32;
const OFF_REGION_SIZE: usize = 40;
const OFF_NR_REGIONS: usize = 48;
const OFF_NR_LEGS: usize = 56;
const OFF_FLAGS: usize = 57;
const OFF_CRC: usize = 60;
const OFF_LEG_STATES: usize = 64;
const OFF_STALE_SINCE: usize = 72;
/// First byte after the last defined header field.
const HEADER_USED: usize = OFF_STALE_SINCE + 8 * MAX_LEGS;

// ---------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). In the kernel, the CRC library's
// crc32c() (CONFIG_CRC32, architecture-optimised); on the host, a table.

#[cfg(not(CONFIG_RUST))]
const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(not(CONFIG_RUST))]
static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// Continues a CRC32C computation: `crc` is the value returned for the
/// preceding bytes (start with 0).
#[cfg(not(CONFIG_RUST))]
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        let idx = usize::from((c as u8) ^ b);
        c = CRC32C_TABLE.get(idx).copied().unwrap_or(0) ^ (c >> 8);
    }
    !c
}

/// Continues a CRC32C computation: `crc` is the value returned for the
/// preceding bytes (start with 0).
#[cfg(CONFIG_RUST)]
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    !kernel::crc32::crc32c(!crc, data)
}

/// CRC32C (Castagnoli) of `data`; `crc32c(b"123456789") == 0xE306_9283`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

// ---------------------------------------------------------------------------
// Sizes

/// Number of `u64` words a bitmap of `nr_regions` bits needs
/// (saturating at `usize::MAX` where it cannot be addressed).
pub fn bitmap_words(nr_regions: u64) -> usize {
    usize::try_from(nr_regions.div_ceil(64)).unwrap_or(usize::MAX)
}

/// Version 1 bitmap bytes on disk for `nr_regions`, padded to whole blocks.
fn bitmap_disk_bytes_v1(nr_regions: u64) -> u64 {
    nr_regions
        .div_ceil(8)
        .div_ceil(LOG_BLOCK_BYTES)
        .saturating_mul(LOG_BLOCK_BYTES)
}

/// Bytes of a version 1 copy: the header block plus the bitmap.
pub fn log_bytes_v1(nr_regions: u64) -> u64 {
    bitmap_disk_bytes_v1(nr_regions).saturating_add(HEADER_BYTES as u64)
}

/// Number of version 2 bitmap blocks for `nr_regions`.
pub fn bitmap_blocks(nr_regions: u64) -> u64 {
    nr_regions.div_ceil(REGIONS_PER_BLOCK)
}

/// Bitmap block holding region `r`.
pub fn block_of_region(r: u64) -> u64 {
    r / REGIONS_PER_BLOCK
}

/// Block index (in 4096-byte blocks from the start of a copy) of bitmap
/// block `b`.
pub fn bitmap_block_pos(b: u64) -> u64 {
    b.saturating_add(HEADER_SLOTS)
}

/// Bytes one (version 2) log copy occupies for `nr_regions`: two header
/// slots plus one block per [`REGIONS_PER_BLOCK`] regions. Always at least
/// [`log_bytes_v1`], so a device sized for version 2 holds a version 1 copy.
pub fn log_bytes_needed(nr_regions: u64) -> u64 {
    bitmap_blocks(nr_regions)
        .saturating_add(HEADER_SLOTS)
        .saturating_mul(LOG_BLOCK_BYTES)
}

/// Largest region count whose (version 2) log copy fits in `log_bytes` (0
/// if not even one region fits); capped at [`MAX_REGIONS`]. Inverse of
/// [`log_bytes_needed`], for "log too small" messages.
pub fn max_regions_for(log_bytes: u64) -> u64 {
    (log_bytes / LOG_BLOCK_BYTES)
        .saturating_sub(HEADER_SLOTS)
        .saturating_mul(REGIONS_PER_BLOCK)
        .min(MAX_REGIONS)
}

// ---------------------------------------------------------------------------
// Header

/// The decoded header of one log copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// Identity of the mirror the log belongs to (random at creation).
    pub uuid: [u8; 16],
    /// Write generation; every log write uses a larger one. Never 0.
    pub generation: u64,
    /// Region size in 512-byte sectors (power of two).
    pub region_size: u64,
    /// Number of regions (bits in the bitmap), 1 to [`MAX_REGIONS`].
    pub nr_regions: u64,
    /// Number of leg slots in use ([`MIN_LEGS`] to [`MAX_LEGS`]).
    pub nr_legs: u8,
    /// State of each leg slot; slots at or beyond `nr_legs` are ignored
    /// when encoding and decode as [`LegState::Missing`].
    pub leg_states: [LegState; MAX_LEGS],
    /// Generation at which each leg stopped being in sync; 0 exactly when
    /// the leg is [`LegState::InSync`]. Ignored (decoded as 0) for unused
    /// slots.
    pub stale_since: [u64; MAX_LEGS],
    /// The mirror was shut down cleanly after this write.
    pub clean_shutdown: bool,
}

impl LogHeader {
    /// A header for a new log: generation 1, every leg in sync, unused leg
    /// slots [`LegState::Missing`].
    pub fn new(uuid: [u8; 16], region_size: u64, nr_regions: u64, nr_legs: u8) -> Self {
        let mut leg_states = [LegState::Missing; MAX_LEGS];
        for s in leg_states.iter_mut().take(usize::from(nr_legs)) {
            *s = LegState::InSync;
        }
        LogHeader {
            uuid,
            generation: 1,
            region_size,
            nr_regions,
            nr_legs,
            leg_states,
            stale_since: [0; MAX_LEGS],
            clean_shutdown: false,
        }
    }

    /// The same header with unused leg slots set to what [`decode`] returns
    /// for them (`Missing`, stale since 0).
    pub fn normalized(mut self) -> Self {
        let n = usize::from(self.nr_legs);
        for (i, (s, g)) in self
            .leg_states
            .iter_mut()
            .zip(self.stale_since.iter_mut())
            .enumerate()
        {
            if i >= n {
                *s = LegState::Missing;
                *g = 0;
            }
        }
        self
    }

    /// The leg states of the used slots.
    pub fn legs(&self) -> &[LegState] {
        self.leg_states
            .get(..usize::from(self.nr_legs))
            .unwrap_or(&self.leg_states)
    }

    /// Checks geometry and leg-state consistency.
    pub fn validate(&self) -> Result<(), LogError> {
        let n = usize::from(self.nr_legs);
        if !(MIN_LEGS..=MAX_LEGS).contains(&n)
            || !self.region_size.is_power_of_two()
            || !(MIN_REGION_SIZE..=MAX_REGION_SIZE).contains(&self.region_size)
            || self.nr_regions == 0
            || self.nr_regions > MAX_REGIONS
        {
            return Err(LogError::BadGeometry);
        }
        if self.generation == 0 {
            return Err(LogError::BadLegState);
        }
        for (&s, &g) in self.legs().iter().zip(self.stale_since.iter()) {
            let in_sync = s == LegState::InSync;
            if in_sync != (g == 0) || g > self.generation {
                return Err(LogError::BadLegState);
            }
        }
        Ok(())
    }
}

/// Why a log copy could not be encoded or decoded, or copies not combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogError {
    /// The buffer ends before the header or before the bitmap it announces
    /// (a truncated copy).
    TooShort,
    /// The copy does not start with [`LOG_MAGIC`] (not a log, or wiped).
    BadMagic,
    /// A format version this code does not know.
    UnsupportedVersion(u32),
    /// A bitmap block with the wrong index or uuid.
    Misplaced,
    /// The header length field is not [`HEADER_BYTES`].
    BadHeaderLength(u32),
    /// The checksum does not match: a torn or corrupted copy.
    BadChecksum,
    /// Leg count, region size or region count out of range.
    BadGeometry,
    /// Generation 0, or leg states inconsistent with `stale_since`.
    BadLegState,
    /// Unknown flag bits, non-zero reserved bytes, a bad leg letter or bits
    /// set beyond the last region.
    BadReserved,
    /// The output byte buffer cannot hold the copy.
    BufferTooSmall,
    /// A bitmap slice has fewer than [`bitmap_words`] words.
    BitmapTooSmall,
    /// More than [`MAX_COPIES`] copies were given.
    TooManyCopies,
}

impl LogError {
    /// A fixed, short sentence describing the kind of error.
    pub fn reason(&self) -> &'static CStr {
        match self {
            Self::TooShort => c"log copy truncated",
            Self::BadMagic => c"not an rtmirror log",
            Self::UnsupportedVersion(_) => c"unsupported log format version",
            Self::Misplaced => c"log block in the wrong place",
            Self::BadHeaderLength(_) => c"bad log header length",
            Self::BadChecksum => c"log checksum mismatch",
            Self::BadGeometry => c"bad log geometry",
            Self::BadLegState => c"inconsistent leg states in log",
            Self::BadReserved => c"unknown fields set in log",
            Self::BufferTooSmall => c"log buffer too small",
            Self::BitmapTooSmall => c"region bitmap too small",
            Self::TooManyCopies => c"too many log copies",
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.reason().to_str().unwrap_or("log error");
        match self {
            Self::UnsupportedVersion(v) => {
                write!(f, "{r} {v} (expected {LOG_VERSION_V1} or {LOG_VERSION})")
            }
            Self::BadHeaderLength(l) => write!(f, "{r} {l} (expected {HEADER_BYTES})"),
            _ => f.write_str(r),
        }
    }
}

fn leg_byte(s: LegState) -> u8 {
    // `letter()` is always ASCII.
    u8::try_from(u32::from(s.letter())).unwrap_or(0)
}

/// Copies `src` into `dst` element by element, up to the shorter length. Unlike
/// `copy_from_slice` it has no length-mismatch panic path, which the kernel build would keep.
pub(crate) fn copy_slice<T: Copy>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

fn get_bytes<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = off.checked_add(N).and_then(|end| buf.get(off..end)) {
        copy_slice(&mut a, s);
    }
    a
}

fn get_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(get_bytes(buf, off))
}

fn get_u64(buf: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(get_bytes(buf, off))
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(d) = off
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(off..end))
    {
        copy_slice(d, bytes);
    }
}

/// Mask of valid bits in the last bitmap word (all ones if full).
fn last_word_mask(nr_regions: u64) -> u64 {
    match nr_regions % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

/// Writes the header fields of `h` (version `version`) into the zeroed
/// 4096-byte block `out`, without checksum.
fn put_header_fields(h: &LogHeader, version: u32, out: &mut [u8]) {
    put(out, 0, &LOG_MAGIC);
    put(out, OFF_VERSION, &version.to_le_bytes());
    put(out, OFF_HEADER_LEN, &(HEADER_BYTES as u32).to_le_bytes());
    put(out, OFF_UUID, &h.uuid);
    put(out, OFF_GENERATION, &h.generation.to_le_bytes());
    put(out, OFF_REGION_SIZE, &h.region_size.to_le_bytes());
    put(out, OFF_NR_REGIONS, &h.nr_regions.to_le_bytes());
    put(out, OFF_NR_LEGS, &[h.nr_legs]);
    let flags = if h.clean_shutdown {
        FLAG_CLEAN_SHUTDOWN
    } else {
        0
    };
    put(out, OFF_FLAGS, &[flags]);
    for (i, (&s, &g)) in h.legs().iter().zip(h.stale_since.iter()).enumerate() {
        put(out, OFF_LEG_STATES + i, &[leg_byte(s)]);
        put(out, OFF_STALE_SINCE + 8 * i, &g.to_le_bytes());
    }
}

/// Checks magic, version and header length of a header block.
fn check_preamble(header: &[u8], version: u32) -> Result<(), LogError> {
    if get_bytes::<8>(header, 0) != LOG_MAGIC {
        return Err(LogError::BadMagic);
    }
    let v = get_u32(header, OFF_VERSION);
    if v != version {
        return Err(LogError::UnsupportedVersion(v));
    }
    let hlen = get_u32(header, OFF_HEADER_LEN);
    if hlen != HEADER_BYTES as u32 {
        return Err(LogError::BadHeaderLength(hlen));
    }
    Ok(())
}

/// Decodes the content of a header block whose checksum was verified.
fn parse_header_fields(header: &[u8]) -> Result<LogHeader, LogError> {
    let nr_legs = get_bytes::<1>(header, OFF_NR_LEGS)[0];
    let flags = get_bytes::<1>(header, OFF_FLAGS)[0];
    if flags & !FLAG_CLEAN_SHUTDOWN != 0
        || get_bytes::<2>(header, OFF_FLAGS + 1) != [0; 2]
        || get_bytes::<4>(header, OFF_LEG_STATES + 4) != [0; 4]
        || header
            .get(HEADER_USED..)
            .unwrap_or(&[])
            .iter()
            .any(|&b| b != 0)
    {
        return Err(LogError::BadReserved);
    }
    let mut h = LogHeader {
        uuid: get_bytes(header, OFF_UUID),
        generation: get_u64(header, OFF_GENERATION),
        region_size: get_u64(header, OFF_REGION_SIZE),
        nr_regions: get_u64(header, OFF_NR_REGIONS),
        nr_legs,
        leg_states: [LegState::Missing; MAX_LEGS],
        stale_since: [0; MAX_LEGS],
        clean_shutdown: flags & FLAG_CLEAN_SHUTDOWN != 0,
    };
    for i in 0..MAX_LEGS {
        let b = get_bytes::<1>(header, OFF_LEG_STATES + i)[0];
        let g = get_u64(header, OFF_STALE_SINCE + 8 * i);
        if i < usize::from(nr_legs) {
            let s = LegState::from_letter(char::from(b)).ok_or(LogError::BadReserved)?;
            if let (Some(ds), Some(dg)) = (h.leg_states.get_mut(i), h.stale_since.get_mut(i)) {
                *ds = s;
                *dg = g;
            }
        } else if b != 0 || g != 0 {
            return Err(LogError::BadReserved);
        }
    }
    h.validate()?;
    Ok(h)
}

/// CRC32C of `buf` with the 4 bytes at `off` taken as zero.
fn crc_without(buf: &[u8], off: usize) -> u32 {
    crc32c_update(
        crc32c_update(crc32c(buf.get(..off).unwrap_or(&[])), &[0; 4]),
        buf.get(off + 4..).unwrap_or(&[]),
    )
}

/// Encodes one version 1 log copy of `h` and `bitmap` into `out`, returning
/// the number of bytes ([`log_bytes_v1`]). Bits beyond `nr_regions` are
/// written as 0; `out` beyond the returned length is untouched. Only for
/// tests and tools: the kernel writes version 2.
pub fn encode_v1(h: &LogHeader, bitmap: &[u64], out: &mut [u8]) -> Result<usize, LogError> {
    h.validate()?;
    let total =
        usize::try_from(log_bytes_v1(h.nr_regions)).map_err(|_| LogError::BufferTooSmall)?;
    let out = out.get_mut(..total).ok_or(LogError::BufferTooSmall)?;
    let words = bitmap_words(h.nr_regions);
    let bitmap = bitmap.get(..words).ok_or(LogError::BitmapTooSmall)?;
    out.fill(0);
    put_header_fields(h, LOG_VERSION_V1, out);
    let last = words.saturating_sub(1);
    let bits = out.get_mut(HEADER_BYTES..).unwrap_or(&mut []);
    for (i, &w) in bitmap.iter().enumerate().take(words) {
        let w = if i == last {
            w & last_word_mask(h.nr_regions)
        } else {
            w
        };
        put(bits, i.saturating_mul(8), &w.to_le_bytes());
    }
    let crc = crc32c(out);
    put(out, OFF_CRC, &crc.to_le_bytes());
    Ok(total)
}

/// Verifies a version 1 copy; returns its header and the bitmap bytes.
fn decode_v1_parts(buf: &[u8]) -> Result<(LogHeader, &[u8]), LogError> {
    let header = buf.get(..HEADER_BYTES).ok_or(LogError::TooShort)?;
    check_preamble(header, LOG_VERSION_V1)?;
    let nr_regions = get_u64(header, OFF_NR_REGIONS);
    if nr_regions == 0 || nr_regions > MAX_REGIONS {
        return Err(LogError::BadGeometry);
    }
    let total = usize::try_from(log_bytes_v1(nr_regions)).map_err(|_| LogError::TooShort)?;
    let copy = buf.get(..total).ok_or(LogError::TooShort)?;
    if crc_without(copy, OFF_CRC) != get_u32(copy, OFF_CRC) {
        return Err(LogError::BadChecksum);
    }
    let h = parse_header_fields(header)?;
    let bits = copy.get(HEADER_BYTES..).unwrap_or(&[]);
    let used_bytes = usize::try_from(nr_regions.div_ceil(8)).unwrap_or(usize::MAX);
    // Bits past the last region and the block padding must be zero.
    let tail = bits.get(used_bytes..).unwrap_or(&[]);
    let last_byte_ok = match (nr_regions % 8, used_bytes.checked_sub(1)) {
        (0, _) | (_, None) => true,
        (r, Some(i)) => bits.get(i).is_some_and(|&b| b >> r == 0),
    };
    if !last_byte_ok || tail.iter().any(|&b| b != 0) {
        return Err(LogError::BadReserved);
    }
    Ok((h, bits))
}

/// Decodes and verifies one version 1 log copy.
///
/// `buf` may be longer than the copy (the rest is ignored). On success the
/// first [`bitmap_words`]`(nr_regions)` words of `bitmap_out` hold the
/// bitmap; on error nothing from the copy may be trusted.
pub fn decode_v1(buf: &[u8], bitmap_out: &mut [u64]) -> Result<LogHeader, LogError> {
    let (h, bits) = decode_v1_parts(buf)?;
    let out = bitmap_out
        .get_mut(..bitmap_words(h.nr_regions))
        .ok_or(LogError::BitmapTooSmall)?;
    for (i, w) in out.iter_mut().enumerate() {
        *w = u64::from_le_bytes(get_bytes(bits, i.saturating_mul(8)));
    }
    Ok(h)
}

// ---------------------------------------------------------------------------
// Version 2 blocks

const BOFF_INDEX: usize = 8;
const BOFF_CRC: usize = 12;
const BOFF_GENERATION: usize = 16;
const BOFF_UUID: usize = 24;
const BOFF_RESERVED: usize = 40;

/// Encodes the version 2 header of `h` into the first 4096 bytes of `out`
/// (written to the header slot of the copy that does not hold its newest
/// valid header: [`Activation::next_slots`], then alternating).
pub fn encode_header(h: &LogHeader, out: &mut [u8]) -> Result<(), LogError> {
    h.validate()?;
    let out = out
        .get_mut(..HEADER_BYTES)
        .ok_or(LogError::BufferTooSmall)?;
    out.fill(0);
    put_header_fields(h, LOG_VERSION, out);
    let crc = crc32c(out);
    put(out, OFF_CRC, &crc.to_le_bytes());
    Ok(())
}

/// Decodes and verifies a version 2 header slot (the first 4096 bytes of
/// `block`).
pub fn decode_header(block: &[u8]) -> Result<LogHeader, LogError> {
    let header = block.get(..HEADER_BYTES).ok_or(LogError::TooShort)?;
    check_preamble(header, LOG_VERSION)?;
    if crc_without(header, OFF_CRC) != get_u32(header, OFF_CRC) {
        return Err(LogError::BadChecksum);
    }
    parse_header_fields(header)
}

/// Words of the bitmap held by block `b`, clamped to `nr_words`.
fn block_words(b: u64, nr_words: usize) -> core::ops::Range<usize> {
    let start = usize::try_from(b)
        .ok()
        .and_then(|b| b.checked_mul(WORDS_PER_BLOCK))
        .unwrap_or(usize::MAX)
        .min(nr_words);
    start..start.saturating_add(WORDS_PER_BLOCK).min(nr_words)
}

/// Encodes bitmap block `b` of `bitmap` (a log of `nr_regions` regions)
/// for generation `generation` into the first 4096 bytes of `out` (write it
/// to block [`bitmap_block_pos`]`(b)`). Bits beyond `nr_regions` are 0.
pub fn encode_bitmap_block(
    uuid: &[u8; 16],
    generation: u64,
    nr_regions: u64,
    b: u64,
    bitmap: &[u64],
    out: &mut [u8],
) -> Result<(), LogError> {
    if b >= bitmap_blocks(nr_regions) || generation == 0 {
        return Err(LogError::BadGeometry);
    }
    let words = bitmap_words(nr_regions);
    let bitmap = bitmap.get(..words).ok_or(LogError::BitmapTooSmall)?;
    let out = out
        .get_mut(..LOG_BLOCK_BYTES as usize)
        .ok_or(LogError::BufferTooSmall)?;
    out.fill(0);
    put(out, 0, &BLOCK_MAGIC);
    put(out, BOFF_INDEX, &(b as u32).to_le_bytes());
    put(out, BOFF_GENERATION, &generation.to_le_bytes());
    put(out, BOFF_UUID, uuid);
    let last = words.saturating_sub(1);
    let range = block_words(b, words);
    let first = range.start;
    for (i, &w) in bitmap.get(range).unwrap_or(&[]).iter().enumerate() {
        let w = if first + i == last {
            w & last_word_mask(nr_regions)
        } else {
            w
        };
        put(out, BLOCK_HEADER_BYTES + 8 * i, &w.to_le_bytes());
    }
    let crc = crc32c(out);
    put(out, BOFF_CRC, &crc.to_le_bytes());
    Ok(())
}

/// Verifies bitmap block `b`; returns its generation and the words of the
/// bitmap it holds (as a range of the whole bitmap).
fn verify_bitmap_block(
    uuid: &[u8; 16],
    nr_regions: u64,
    b: u64,
    block: &[u8],
) -> Result<(u64, core::ops::Range<usize>), LogError> {
    let block = block
        .get(..LOG_BLOCK_BYTES as usize)
        .ok_or(LogError::TooShort)?;
    if get_bytes::<8>(block, 0) != BLOCK_MAGIC {
        return Err(LogError::BadMagic);
    }
    if crc_without(block, BOFF_CRC) != get_u32(block, BOFF_CRC) {
        return Err(LogError::BadChecksum);
    }
    if u64::from(get_u32(block, BOFF_INDEX)) != b
        || b >= bitmap_blocks(nr_regions)
        || get_bytes::<16>(block, BOFF_UUID) != *uuid
    {
        return Err(LogError::Misplaced);
    }
    let generation = get_u64(block, BOFF_GENERATION);
    if generation == 0
        || block
            .get(BOFF_RESERVED..BLOCK_HEADER_BYTES)
            .unwrap_or(&[])
            .iter()
            .any(|&x| x != 0)
    {
        return Err(LogError::BadReserved);
    }
    let words = bitmap_words(nr_regions);
    let range = block_words(b, words);
    let n = range.len();
    // Words past the last region must be zero, and so must the unused bits.
    for i in n..WORDS_PER_BLOCK {
        if get_u64(block, BLOCK_HEADER_BYTES + 8 * i) != 0 {
            return Err(LogError::BadReserved);
        }
    }
    if n > 0 && range.end == words {
        let w = get_u64(block, BLOCK_HEADER_BYTES + 8 * (n - 1));
        if w & !last_word_mask(nr_regions) != 0 {
            return Err(LogError::BadReserved);
        }
    }
    Ok((generation, range))
}

/// Decodes bitmap block `b` of a log of `nr_regions` regions bound to
/// `uuid` into its words of the whole bitmap `bitmap_out`; returns the
/// generation it was written in. On error `bitmap_out` is unchanged and
/// nothing of the block may be trusted.
pub fn decode_bitmap_block(
    uuid: &[u8; 16],
    nr_regions: u64,
    b: u64,
    block: &[u8],
    bitmap_out: &mut [u64],
) -> Result<u64, LogError> {
    let (generation, range) = verify_bitmap_block(uuid, nr_regions, b, block)?;
    let out = bitmap_out.get_mut(range).ok_or(LogError::BitmapTooSmall)?;
    for (i, w) in out.iter_mut().enumerate() {
        *w = get_u64(block, BLOCK_HEADER_BYTES + 8 * i);
    }
    Ok(generation)
}

/// Indices of the bits set in `map` (e.g. [`crate::region::Regions::snapshot_blocks`]).
pub fn set_bits(map: &[u64]) -> impl Iterator<Item = u64> + '_ {
    map.iter().enumerate().flat_map(|(wi, &w)| {
        let mut w = w;
        core::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let b = u64::from(w.trailing_zeros());
            w &= w - 1;
            Some((wi as u64).saturating_mul(64).saturating_add(b))
        })
    })
}

/// The run of contiguous set bits of `map` that starts at the first set bit
/// at or after `from`: (first index, length), at most `max` (at least 1)
/// long. The log writer issues one bio per run of changed blocks.
pub fn next_run(map: &[u64], from: u64, max: usize) -> Option<(u64, usize)> {
    let bit = |b: u64| {
        usize::try_from(b / 64)
            .ok()
            .and_then(|i| map.get(i))
            .is_some_and(|w| w & (1u64 << (b % 64)) != 0)
    };
    let end = (map.len() as u64).saturating_mul(64);
    let mut b = from;
    loop {
        if b >= end {
            return None;
        }
        let w = usize::try_from(b / 64)
            .ok()
            .and_then(|i| map.get(i))
            .copied()
            .unwrap_or(0)
            >> (b % 64);
        if w != 0 {
            b = b.saturating_add(u64::from(w.trailing_zeros()));
            break;
        }
        b = (b / 64).saturating_add(1).saturating_mul(64);
    }
    let mut n = 1;
    while n < max && bit(b.saturating_add(n as u64)) {
        n += 1;
    }
    Some((b, n))
}

// ---------------------------------------------------------------------------
// Activation

/// What activation expects a log copy to describe (from the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWant {
    /// `log_uuid` from the table (bound log), or `None`: adopt the uuid of
    /// the newest valid copy with this geometry (unbound log).
    pub uuid: Option<[u8; 16]>,
    /// Region size in sectors.
    pub region_size: u64,
    /// Number of regions.
    pub nr_regions: u64,
    /// Number of leg slots.
    pub nr_legs: u8,
}

impl LogWant {
    fn geometry_matches(&self, h: &LogHeader) -> bool {
        h.region_size == self.region_size
            && h.nr_regions == self.nr_regions
            && h.nr_legs == self.nr_legs
    }
}

/// What activation found on one log copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyClass {
    /// Not given (no such copy).
    #[default]
    Absent,
    /// The copy could not be read.
    Unreadable,
    /// Both header slots all zero: never written (a new log).
    Blank,
    /// No valid header: garbage, torn beyond use, bad checksums or an
    /// unknown version.
    Corrupt,
    /// Valid headers, but of another mirror (uuid) or geometry.
    Foreign,
    /// A valid version 1 copy of this mirror.
    V1,
    /// A valid version 2 copy of this mirror.
    V2,
}

impl CopyClass {
    /// The copy contributes to the result.
    pub fn used(self) -> bool {
        matches!(self, Self::V1 | Self::V2)
    }

    /// A short word for the kernel log.
    pub fn word(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Unreadable => "unreadable",
            Self::Blank => "blank",
            Self::Corrupt => "corrupt",
            Self::Foreign => "foreign",
            Self::V1 => "valid (version 1)",
            Self::V2 => "valid",
        }
    }
}

/// The verdict of activation on the log as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutcome {
    /// At least one valid copy of this mirror: its leg states and bits are
    /// used.
    Found,
    /// Every copy is blank or unreadable, at least one blank (or there is
    /// no log device): a new log, every region out of sync, nothing known
    /// about the legs (or `nosync`).
    New,
    /// No valid copy, and a corrupt or foreign one, or every copy
    /// unreadable: the log existed and is lost.
    /// Nothing says which leg is newest; the kernel must not guess.
    Unknown,
}

/// Result of combining the log copies found at activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// The verdict.
    pub outcome: LogOutcome,
    /// Newest valid header of this mirror (`Some` exactly when `Found`).
    pub newest: Option<LogHeader>,
    /// The uuid of the log: the bound one, else the adopted one, else
    /// `None` (the caller makes a new one).
    pub uuid: Option<[u8; 16]>,
    /// What each copy held.
    pub classes: [CopyClass; MAX_COPIES],
    /// Largest generation of a valid header of this mirror; the next log
    /// write must use a larger one.
    pub max_generation: u64,
    /// Bitmap blocks that failed their check on a used copy (counted as
    /// all dirty).
    pub bad_blocks: u64,
    /// The newest header records a clean shutdown with every leg in sync:
    /// no region needed resync (dirty bits were leftovers).
    pub clean: bool,
    /// A used copy is version 1: the first write upgrades it, one copy
    /// after the other.
    pub upgrade: bool,
    /// Bit `i`: the header slot the next write goes to on copy `i`, the one
    /// not holding the copy's newest valid header (slot 1 on a version 1
    /// copy, keeping its header block).
    pub next_slots: u8,
    /// Number of regions marked out of sync in the union bitmap.
    pub out_of_sync: u64,
    /// Generation of each copy's newest valid header of this mirror (0: none).
    pub generations: [u64; MAX_COPIES],
}

impl Activation {
    /// No valid copy: every region is out of sync.
    pub fn log_lost(&self) -> bool {
        self.newest.is_none()
    }

    /// Bit `i` set: copy `i` (of `nr_copies`) lacks the newest generation (older, blank,
    /// corrupt or foreign). It is written by every log write, but counts only once a write of
    /// every block reached it ([`crate::region::RegionState::set_rejoining`]): if the copies
    /// holding the newest generation fail first, the log is lost rather than resting on it.
    pub fn behind(&self, nr_copies: usize) -> u8 {
        let Some(newest) = self.newest else {
            return 0;
        };
        self.generations
            .iter()
            .take(nr_copies.min(8))
            .enumerate()
            .filter(|(_, &g)| g < newest.generation)
            .fold(0u8, |m, (i, _)| m | (1u8 << i))
    }

    /// Bit `i` set: copy `i` was used.
    pub fn used(&self) -> u8 {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.used())
            .fold(0u8, |m, (i, _)| m | (1u8 << (i % 8)))
    }
}

/// Valid headers of one copy with version and slot: the version 1 header,
/// or the two version 2 slots.
fn copy_headers(buf: &[u8]) -> [Option<(LogHeader, u32, u8)>; 2] {
    if let Ok((h, _)) = decode_v1_parts(buf) {
        return [Some((h, LOG_VERSION_V1, 0)), None];
    }
    let slot = |s: u8| {
        buf.get(usize::from(s) * HEADER_BYTES..)
            .and_then(|b| decode_header(b).ok())
            .map(|h| (h, LOG_VERSION, s))
    };
    [slot(0), slot(1)]
}

fn is_blank(buf: &[u8]) -> bool {
    buf.get(..2 * HEADER_BYTES)
        .is_some_and(|b| b.iter().all(|&x| x == 0))
}

/// Combines the log copies read at activation.
///
/// `copies[i]` is the image of copy `i` (at least [`log_bytes_needed`]
/// bytes; shorter images have their missing blocks counted as torn), or
/// `None` if it could not be read. Pass every copy that will be written.
///
/// `union_out` receives every region that may differ between legs: the OR
/// over used copies, where a bitmap block that fails its check counts as
/// all dirty. `common_out` receives the bits set on EVERY given copy (a copy
/// not used counts as empty, a bad block as empty): only those are durable
/// on all copies the kernel will keep writing, which is what
/// [`crate::region`] may treat as already logged. If nothing is found,
/// every region is in `union_out` and `common_out` is empty; with a clean
/// shutdown `union_out` is empty.
pub fn activate_copies(
    want: &LogWant,
    copies: &[Option<&[u8]>],
    union_out: &mut [u64],
    common_out: &mut [u64],
) -> Result<Activation, LogError> {
    if copies.len() > MAX_COPIES {
        return Err(LogError::TooManyCopies);
    }
    let words = bitmap_words(want.nr_regions);
    let out = union_out.get_mut(..words).ok_or(LogError::BitmapTooSmall)?;
    let common = common_out
        .get_mut(..words)
        .ok_or(LogError::BitmapTooSmall)?;
    out.fill(0);
    common.fill(u64::MAX);
    let mut act = Activation {
        outcome: LogOutcome::New,
        newest: None,
        uuid: want.uuid,
        classes: [CopyClass::Absent; MAX_COPIES],
        max_generation: 0,
        bad_blocks: 0,
        clean: false,
        upgrade: false,
        next_slots: 0,
        out_of_sync: 0,
        generations: [0; MAX_COPIES],
    };
    // Unbound: adopt the uuid of the newest valid header with this geometry.
    if act.uuid.is_none() {
        act.uuid = copies
            .iter()
            .flatten()
            .flat_map(|b| copy_headers(b))
            .flatten()
            .filter(|(h, _, _)| want.geometry_matches(h))
            .max_by_key(|(h, _, _)| h.generation)
            .map(|(h, _, _)| h.uuid);
    }
    let matches = |h: &LogHeader| want.geometry_matches(h) && Some(h.uuid) == act.uuid;
    let mut newest_version = 0;
    for (i, c) in copies.iter().enumerate() {
        let class = act.classes.get_mut(i).ok_or(LogError::TooManyCopies)?;
        let Some(buf) = c else {
            *class = CopyClass::Unreadable;
            common.fill(0);
            continue;
        };
        let headers = copy_headers(buf);
        let best = headers
            .iter()
            .flatten()
            .filter(|(h, _, _)| matches(h))
            .max_by_key(|(h, _, _)| h.generation)
            .copied();
        let Some((h, version, slot)) = best else {
            *class = if headers.iter().any(|h| h.is_some()) {
                CopyClass::Foreign
            } else if is_blank(buf) {
                CopyClass::Blank
            } else {
                CopyClass::Corrupt
            };
            common.fill(0);
            continue;
        };
        act.max_generation = act.max_generation.max(h.generation);
        if let Some(g) = act.generations.get_mut(i) {
            *g = h.generation;
        }
        if slot == 0 {
            act.next_slots |= 1u8 << (i % 8);
        }
        if act.newest.is_none_or(|n| h.generation > n.generation) {
            act.newest = Some(h.normalized());
            newest_version = version;
        }
        if version == LOG_VERSION_V1 {
            *class = CopyClass::V1;
            act.upgrade = true;
            let bits = decode_v1_parts(buf).map(|(_, b)| b).unwrap_or(&[]);
            for (k, (o, c)) in out.iter_mut().zip(common.iter_mut()).enumerate() {
                let w = u64::from_le_bytes(get_bytes(bits, k.saturating_mul(8)));
                *o |= w;
                *c &= w;
            }
            continue;
        }
        *class = CopyClass::V2;
        for b in 0..bitmap_blocks(want.nr_regions) {
            let off = usize::try_from(bitmap_block_pos(b))
                .unwrap_or(usize::MAX)
                .saturating_mul(LOG_BLOCK_BYTES as usize);
            let block = buf.get(off..).unwrap_or(&[]);
            let range = block_words(b, words);
            let ok = verify_bitmap_block(&h.uuid, want.nr_regions, b, block).is_ok();
            if !ok {
                // Torn or corrupt: every region of the block may differ.
                act.bad_blocks = act.bad_blocks.saturating_add(1);
            }
            let o = out.get_mut(range.clone()).unwrap_or(&mut []);
            let c = common.get_mut(range).unwrap_or(&mut []);
            for (k, (o, c)) in o.iter_mut().zip(c.iter_mut()).enumerate() {
                if ok {
                    let w = get_u64(block, BLOCK_HEADER_BYTES + 8 * k);
                    *o |= w;
                    *c &= w;
                } else {
                    *o = u64::MAX;
                    *c = 0;
                }
            }
        }
    }
    // A blank copy next to unreadable ones is a new log whose device fails; a corrupt or
    // foreign copy is evidence of a log that existed.
    let given = act.classes.iter().take(copies.len());
    act.outcome = if act.newest.is_some() {
        LogOutcome::Found
    } else if given
        .clone()
        .all(|&c| matches!(c, CopyClass::Blank | CopyClass::Unreadable))
        && (copies.is_empty() || given.clone().any(|&c| c == CopyClass::Blank))
    {
        LogOutcome::New
    } else {
        LogOutcome::Unknown
    };
    match act.newest {
        None => {
            out.fill(u64::MAX);
            common.fill(0);
        }
        Some(h) => {
            // Only a version 2 writer sets the flag after flushing the legs.
            act.clean = h.clean_shutdown
                && newest_version == LOG_VERSION
                && h.legs().iter().all(|&s| s == LegState::InSync);
            if act.clean {
                out.fill(0);
                common.fill(0);
            }
        }
    }
    for m in [&mut *out, &mut *common] {
        if let Some(last) = m.last_mut() {
            *last &= last_word_mask(want.nr_regions);
        }
    }
    act.out_of_sync = out.iter().map(|w| u64::from(w.count_ones())).sum();
    Ok(act)
}

/// Which leg a resync should copy from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncSource {
    /// Copy from this leg.
    Leg(u8),
    /// The newest log copy names no available in-sync leg: no leg is known
    /// to hold the newest data (the mirror is failed).
    NoneInSync,
    /// The log is lost: leg freshness is unknown, so no source can be
    /// chosen automatically (an operator must decide).
    Unknown,
}

/// Chooses the resync source: a leg that was [`LegState::InSync`] in the
/// newest valid log copy and is available now (`available[i]`), preferring
/// `primary`, otherwise the lowest such index. A leg that was not in sync
/// before the cut (Degraded, Inactive, Missing, Split, Resyncing) is never
/// chosen.
pub fn resync_source(newest: Option<&LogHeader>, available: &[bool], primary: u8) -> ResyncSource {
    let Some(h) = newest else {
        return ResyncSource::Unknown;
    };
    let ok = |i: usize| {
        h.legs().get(i) == Some(&LegState::InSync) && available.get(i).copied().unwrap_or(false)
    };
    if ok(usize::from(primary)) {
        return ResyncSource::Leg(primary);
    }
    (0..h.legs().len())
        .find(|&i| ok(i))
        .and_then(|i| u8::try_from(i).ok())
        .map_or(ResyncSource::NoneInSync, ResyncSource::Leg)
}
