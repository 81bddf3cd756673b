//! The on-disk dirty-region log: one versioned, checksummed copy.
//!
//! A log copy is a 4096-byte header block followed by the region bitmap
//! (one bit per region, `1` = the region may differ between legs), padded
//! with zeros to a whole number of 4096-byte blocks. All integers are
//! little-endian. Bit `r` lives in byte `r / 8`, bit `r % 8`, which is the
//! same as bit `r % 64` of little-endian 64-bit word `r / 64`, so the
//! in-memory `&[u64]` bitmaps map 1:1 onto the disk image.
//!
//! Header layout (offsets in bytes):
//!
//! ```text
//!   0  8  magic "RTMIRLOG"
//!   8  4  format version (1)
//!  12  4  header length (4096)
//!  16 16  uuid binding the log to its mirror
//!  32  8  generation (incremented by every log write; newest wins)
//!  40  8  region size in 512-byte sectors
//!  48  8  number of regions
//!  56  1  number of legs
//!  57  1  flags (bit 0: clean shutdown; other bits must be 0)
//!  58  2  reserved (0)
//!  60  4  crc32c over header (this field as 0) + bitmap + padding
//!  64  4  leg state letters (A R D I M S, 0 for unused slots)
//!  68  4  reserved (0)
//!  72 32  stale_since generation per leg slot (0 = in sync)
//! 104 ..  reserved (0) up to 4096
//! ```
//!
//! Decoding checks, in this order: length, magic, version, header length,
//! length of the whole copy, checksum, then the semantic content. A torn,
//! truncated or corrupted copy is therefore reported as an error and never
//! trusted. `core`-only and panic-free on any input.

use core::ffi::CStr;
use core::fmt;

use crate::status::LegState;
use crate::table::{MAX_LEGS, MAX_REGION_SIZE, MIN_LEGS, MIN_REGION_SIZE};

/// Magic bytes at the start of every log copy.
pub const LOG_MAGIC: [u8; 8] = *b"RTMIRLOG";
/// The only format version this code reads and writes.
pub const LOG_VERSION: u32 = 1;
/// Size of the header block in bytes; the bitmap starts right after it.
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
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78)

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

static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// Continues a CRC32C computation: `crc` is the value returned for the
/// preceding bytes (start with 0).
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        let idx = usize::from((c as u8) ^ b);
        c = CRC32C_TABLE.get(idx).copied().unwrap_or(0) ^ (c >> 8);
    }
    !c
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

/// Bitmap bytes on disk for `nr_regions`, padded to whole blocks.
fn bitmap_disk_bytes(nr_regions: u64) -> u64 {
    nr_regions
        .div_ceil(8)
        .div_ceil(LOG_BLOCK_BYTES)
        .saturating_mul(LOG_BLOCK_BYTES)
}

/// Bytes one log copy occupies for `nr_regions`: the header block plus the
/// bitmap rounded up to 4096-byte blocks.
pub fn log_bytes_needed(nr_regions: u64) -> u64 {
    bitmap_disk_bytes(nr_regions).saturating_add(HEADER_BYTES as u64)
}

/// Largest region count whose log copy fits in `log_bytes` (0 if not even
/// one region fits); capped at [`MAX_REGIONS`]. Inverse of
/// [`log_bytes_needed`], for "log too small" messages.
pub fn max_regions_for(log_bytes: u64) -> u64 {
    let blocks = log_bytes.saturating_sub(HEADER_BYTES as u64) / LOG_BLOCK_BYTES;
    blocks
        .saturating_mul(LOG_BLOCK_BYTES)
        .saturating_mul(8)
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
            Self::UnsupportedVersion(v) => write!(f, "{r} {v} (expected {LOG_VERSION})"),
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

/// Encodes one log copy of `h` and `bitmap` into `out`, returning the number
/// of bytes to write ([`log_bytes_needed`]). Bits beyond `nr_regions` in
/// `bitmap` are written as 0; `out` beyond the returned length is untouched.
pub fn encode(h: &LogHeader, bitmap: &[u64], out: &mut [u8]) -> Result<usize, LogError> {
    h.validate()?;
    let total =
        usize::try_from(log_bytes_needed(h.nr_regions)).map_err(|_| LogError::BufferTooSmall)?;
    let out = out.get_mut(..total).ok_or(LogError::BufferTooSmall)?;
    let words = bitmap_words(h.nr_regions);
    let bitmap = bitmap.get(..words).ok_or(LogError::BitmapTooSmall)?;
    out.fill(0);
    put(out, 0, &LOG_MAGIC);
    put(out, OFF_VERSION, &LOG_VERSION.to_le_bytes());
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

/// Decodes and verifies one log copy read from disk.
///
/// `buf` may be longer than the copy (the rest is ignored). On success the
/// first [`bitmap_words`]`(nr_regions)` words of `bitmap_out` hold the
/// bitmap; on error `bitmap_out` may have been partly written but nothing
/// from the copy may be trusted.
pub fn decode(buf: &[u8], bitmap_out: &mut [u64]) -> Result<LogHeader, LogError> {
    let header = buf.get(..HEADER_BYTES).ok_or(LogError::TooShort)?;
    if get_bytes::<8>(header, 0) != LOG_MAGIC {
        return Err(LogError::BadMagic);
    }
    let version = get_u32(header, OFF_VERSION);
    if version != LOG_VERSION {
        return Err(LogError::UnsupportedVersion(version));
    }
    let hlen = get_u32(header, OFF_HEADER_LEN);
    if hlen != HEADER_BYTES as u32 {
        return Err(LogError::BadHeaderLength(hlen));
    }
    let nr_regions = get_u64(header, OFF_NR_REGIONS);
    if nr_regions == 0 || nr_regions > MAX_REGIONS {
        return Err(LogError::BadGeometry);
    }
    let total = usize::try_from(log_bytes_needed(nr_regions)).map_err(|_| LogError::TooShort)?;
    let copy = buf.get(..total).ok_or(LogError::TooShort)?;
    let stored_crc = get_u32(copy, OFF_CRC);
    let crc = crc32c_update(
        crc32c_update(crc32c(copy.get(..OFF_CRC).unwrap_or(&[])), &[0; 4]),
        copy.get(OFF_CRC + 4..).unwrap_or(&[]),
    );
    if crc != stored_crc {
        return Err(LogError::BadChecksum);
    }

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
        nr_regions,
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

    let words = bitmap_words(nr_regions);
    let out = bitmap_out
        .get_mut(..words)
        .ok_or(LogError::BitmapTooSmall)?;
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
    for (i, w) in out.iter_mut().enumerate() {
        *w = u64::from_le_bytes(get_bytes(bits, i.saturating_mul(8)));
    }
    Ok(h)
}

// ---------------------------------------------------------------------------
// Activation

/// What activation expects a log copy to describe (from the table and the
/// mirror's identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogIdentity {
    /// The mirror's uuid.
    pub uuid: [u8; 16],
    /// Region size in sectors.
    pub region_size: u64,
    /// Number of regions.
    pub nr_regions: u64,
    /// Number of leg slots.
    pub nr_legs: u8,
}

impl LogIdentity {
    /// Whether `h` describes this mirror with this geometry.
    pub fn matches(&self, h: &LogHeader) -> bool {
        h.uuid == self.uuid
            && h.region_size == self.region_size
            && h.nr_regions == self.nr_regions
            && h.nr_legs == self.nr_legs
    }
}

/// Result of combining the log copies found at activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// Header of the newest valid matching copy; `None` when no copy was
    /// usable: the log is lost, every region is out of sync and no leg is
    /// known to hold the newest data.
    pub newest: Option<LogHeader>,
    /// Bit `i` set: copy `i` was valid, matched and contributed its bits.
    pub used: u8,
    /// Bit `i` set: copy `i` decoded but belongs to another mirror or has a
    /// different geometry (ignored).
    pub mismatched: u8,
    /// Largest generation of any decoded copy, matching or not; the next
    /// log write must use a larger one.
    pub max_generation: u64,
    /// Number of regions marked out of sync in the combined bitmap.
    pub out_of_sync: u64,
}

impl Activation {
    /// No copy was usable: every region is out of sync and leg freshness
    /// is unknown.
    pub fn log_lost(&self) -> bool {
        self.newest.is_none()
    }
}

/// Combines the log copies read at activation.
///
/// `copies[i]` is `None` for a copy that is absent or failed to decode, or
/// the decoded header and bitmap. Copies that do not match `id` are
/// ignored. The result bitmap in `bitmap_out` is the union of every used
/// copy's bits (anything that may differ anywhere); leg states come from
/// the newest generation. If no copy is usable every region is marked out
/// of sync. Bits beyond `nr_regions` are cleared.
///
/// `common_out` receives the bits set on EVERY entry of `copies` (an
/// unusable entry counts as empty): only those are durable on all copies
/// the kernel will keep writing, which is what [`crate::region`] may treat
/// as already logged. Pass exactly the copies that will be written (not
/// ones known to have failed).
pub fn choose_copies(
    id: &LogIdentity,
    copies: &[Option<(LogHeader, &[u64])>],
    bitmap_out: &mut [u64],
    common_out: &mut [u64],
) -> Result<Activation, LogError> {
    if copies.len() > MAX_COPIES {
        return Err(LogError::TooManyCopies);
    }
    let words = bitmap_words(id.nr_regions);
    let out = bitmap_out
        .get_mut(..words)
        .ok_or(LogError::BitmapTooSmall)?;
    out.fill(0);
    let common = common_out
        .get_mut(..words)
        .ok_or(LogError::BitmapTooSmall)?;
    common.fill(u64::MAX);
    let mut act = Activation {
        newest: None,
        used: 0,
        mismatched: 0,
        max_generation: 0,
        out_of_sync: 0,
    };
    for (i, c) in copies.iter().enumerate() {
        let Some((h, bits)) = c else {
            common.fill(0);
            continue;
        };
        let bit = 1u8 << (i % 8);
        act.max_generation = act.max_generation.max(h.generation);
        if !id.matches(h) || h.validate().is_err() {
            act.mismatched |= bit;
            common.fill(0);
            continue;
        }
        let bits = bits.get(..words).ok_or(LogError::BitmapTooSmall)?;
        for ((o, c), &b) in out.iter_mut().zip(common.iter_mut()).zip(bits) {
            *o |= b;
            *c &= b;
        }
        act.used |= bit;
        if act.newest.is_none_or(|n| h.generation > n.generation) {
            act.newest = Some(h.normalized());
        }
    }
    if act.newest.is_none() {
        out.fill(u64::MAX);
        common.fill(0);
    }
    for m in [&mut *out, &mut *common] {
        if let Some(last) = m.last_mut() {
            *last &= last_word_mask(id.nr_regions);
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
