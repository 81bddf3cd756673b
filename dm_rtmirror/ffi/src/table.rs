//! The table line: formatting from segment parameters, and validation.
//!
//! [`rtm_table_format`] does not assemble the line itself: it turns the
//! parameters into the words a user would type, has
//! [`rtmirror_core::table::parse_table`] accept them (so the kernel's rules
//! and error messages apply), and writes what
//! [`rtmirror_core::table::format_table`] makes of the result, which is what
//! the kernel prints in `dmsetup table`.

use core::ffi::{c_char, c_int};
use core::fmt;

use rtmirror_core::table::{
    format_table, parse_table, TableConfig, TableError, ABSENT_LEG, DEFAULT_IO_TIMEOUT_MS,
    DEFAULT_REGION_SIZE, DEFAULT_RESYNC_KBPS, MAX_LEGS, MAX_LOGS, MIN_LEGS, OPT_ALLOW_MISSING,
    OPT_IO_TIMEOUT_MS, OPT_LOG_UUID, OPT_NOSYNC, OPT_PRIMARY, OPT_REGION_SIZE, OPT_RESYNC_KBPS,
};

use crate::cbuf::{self, c_arg, emit, out_buf, store, Arena, CArg, ErrBuf, Hex, Words};
use crate::{
    RTM_EFAULT, RTM_EINVAL, RTM_EPROTO, RTM_LOG_UUID_BYTES, RTM_MAX_LEGS, RTM_MAX_LOGS, RTM_OK,
};

/// `flags`: emit `primary <primary>` (reads prefer that leg). Without it the
/// kernel reads from the first present leg and `primary` is ignored.
pub const RTM_TABLE_PRIMARY: u32 = 1 << 0;
/// `flags`: `nosync`: the legs are declared identical, so a new log starts
/// with every region in sync.
pub const RTM_TABLE_NOSYNC: u32 = 1 << 1;
/// `flags`: emit `log_uuid` from `log_uuid` (binds the log to this mirror;
/// must not be all zero).
pub const RTM_TABLE_LOG_UUID: u32 = 1 << 2;
/// `flags`: `allow_missing`: a device that does not exist at load time is
/// taken as absent instead of refusing the table.
pub const RTM_TABLE_ALLOW_MISSING: u32 = 1 << 3;

/// Every flag this version knows.
const KNOWN_FLAGS: u32 =
    RTM_TABLE_PRIMARY | RTM_TABLE_NOSYNC | RTM_TABLE_LOG_UUID | RTM_TABLE_ALLOW_MISSING;

/// The parameters of one `rtmirror` segment, from which
/// `rtm_table_format` builds the table line.
///
/// Zero-initialise it and set what is needed: zeros mean defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RtmTableParams {
    /// Number of leg slots, `RTM_MIN_LEGS` to `RTM_MAX_LEGS`.
    pub nr_legs: u32,
    /// Leg devices: `"major:minor"` (what the kernel prints, so the line
    /// compares equal to `dmsetup table`) or a path; `NULL` (or `"-"`) for a
    /// leg that is absent. Entries from `nr_legs` on are not read.
    pub legs: [*const c_char; RTM_MAX_LEGS],
    /// Number of log copies, 0 (log in memory only) to `RTM_MAX_LOGS`.
    pub nr_logs: u32,
    /// Log copy devices, as for `legs`; `NULL` (or `"-"`) for an absent copy.
    /// Entries from `nr_logs` on are not read.
    pub logs: [*const c_char; RTM_MAX_LOGS],
    /// Region size in 512-byte sectors: a power of two from
    /// `RTM_MIN_REGION_SIZE` to `RTM_MAX_REGION_SIZE`, or 0 for
    /// `RTM_DEFAULT_REGION_SIZE`.
    pub region_size: u64,
    /// Per-I/O timeout in milliseconds, up to `RTM_MAX_IO_TIMEOUT_MS`; 0 for
    /// none.
    pub io_timeout_ms: u32,
    /// Index of the leg reads prefer (a present leg), with `RTM_TABLE_PRIMARY`.
    pub primary: u32,
    /// Resync throttle in KiB/s; 0 for unlimited.
    pub resync_kbps: u32,
    /// `RTM_TABLE_*` flags; unknown bits are refused.
    pub flags: u32,
    /// The log uuid, with `RTM_TABLE_LOG_UUID`.
    pub log_uuid: [u8; RTM_LOG_UUID_BYTES],
}

/// What can be wrong with the parameters before the grammar sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamError {
    /// Bits outside [`KNOWN_FLAGS`].
    UnknownFlags(u32),
    /// A device string is not UTF-8.
    NotUtf8 {
        /// `leg` or `log`.
        what: &'static str,
        /// Slot index.
        index: usize,
    },
    /// The scratch space was too small: a bug.
    Internal,
}

impl ParamError {
    fn code(self) -> c_int {
        match self {
            Self::UnknownFlags(_) | Self::NotUtf8 { .. } => RTM_EINVAL,
            Self::Internal => RTM_EPROTO,
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownFlags(bits) => write!(f, "unknown table flags {bits:#x}"),
            Self::NotUtf8 { what, index } => {
                write!(f, "{what} {index}: device name is not valid UTF-8")
            }
            Self::Internal => f.write_str("internal error: table scratch space too small"),
        }
    }
}

impl From<cbuf::TooManyWords> for ParamError {
    fn from(_: cbuf::TooManyWords) -> Self {
        Self::Internal
    }
}

/// The device word for slot `index` of kind `what`.
///
/// # Safety
///
/// `ptr` is `NULL` or a NUL-terminated string valid during `'a`.
unsafe fn device_word<'a>(
    ptr: *const c_char,
    what: &'static str,
    index: usize,
) -> Result<&'a str, ParamError> {
    // SAFETY: forwarded from the caller.
    match unsafe { c_arg(ptr) } {
        CArg::Null => Ok(ABSENT_LEG),
        CArg::Str(s) => Ok(s),
        CArg::NotUtf8 => Err(ParamError::NotUtf8 { what, index }),
    }
}

/// `v` in decimal, from the arena.
fn num<'a>(arena: &mut Arena<'a>, v: u64) -> Result<&'a str, ParamError> {
    arena.text(format_args!("{v}")).ok_or(ParamError::Internal)
}

/// The words of the table line `p` describes, as a user would type them.
///
/// Counts out of range are written as they are, with no device after them,
/// so that `parse_table` reports them first, as the kernel would.
///
/// # Safety
///
/// The device pointers of the used slots of `p` are `NULL` or NUL-terminated
/// strings valid during `'a`.
unsafe fn table_words<'a>(
    p: &'a RtmTableParams,
    arena: &mut Arena<'a>,
) -> Result<Words<'a>, ParamError> {
    let unknown = p.flags & !KNOWN_FLAGS;
    if unknown != 0 {
        return Err(ParamError::UnknownFlags(unknown));
    }
    let mut words = Words::new();

    words.push(num(arena, p.nr_legs.into())?)?;
    let nr_legs = usize::try_from(p.nr_legs).unwrap_or(usize::MAX);
    if (MIN_LEGS..=MAX_LEGS).contains(&nr_legs) {
        for (index, &ptr) in p.legs.iter().take(nr_legs).enumerate() {
            // SAFETY: a used slot, valid per the caller.
            words.push(unsafe { device_word(ptr, "leg", index) }?)?;
        }
    }
    words.push(num(arena, p.nr_logs.into())?)?;
    let nr_logs = usize::try_from(p.nr_logs).unwrap_or(usize::MAX);
    if nr_logs <= MAX_LOGS {
        for (index, &ptr) in p.logs.iter().take(nr_logs).enumerate() {
            // SAFETY: a used slot, valid per the caller.
            words.push(unsafe { device_word(ptr, "log", index) }?)?;
        }
    }

    // Options in canonical order, defaults left out, so that the line is
    // already canonical (checked after formatting).
    let mut opts = Words::new();
    if p.region_size != 0 && p.region_size != DEFAULT_REGION_SIZE {
        opts.push(OPT_REGION_SIZE)?;
        opts.push(num(arena, p.region_size)?)?;
    }
    if p.io_timeout_ms != DEFAULT_IO_TIMEOUT_MS {
        opts.push(OPT_IO_TIMEOUT_MS)?;
        opts.push(num(arena, p.io_timeout_ms.into())?)?;
    }
    if p.flags & RTM_TABLE_PRIMARY != 0 {
        opts.push(OPT_PRIMARY)?;
        opts.push(num(arena, p.primary.into())?)?;
    }
    if p.resync_kbps != DEFAULT_RESYNC_KBPS {
        opts.push(OPT_RESYNC_KBPS)?;
        opts.push(num(arena, p.resync_kbps.into())?)?;
    }
    if p.flags & RTM_TABLE_NOSYNC != 0 {
        opts.push(OPT_NOSYNC)?;
    }
    if p.flags & RTM_TABLE_LOG_UUID != 0 {
        opts.push(OPT_LOG_UUID)?;
        let uuid = arena.text(format_args!("{}", Hex(&p.log_uuid)));
        opts.push(uuid.ok_or(ParamError::Internal)?)?;
    }
    if p.flags & RTM_TABLE_ALLOW_MISSING != 0 {
        opts.push(OPT_ALLOW_MISSING)?;
    }
    let nr_opts = u64::try_from(opts.len()).map_err(|_| ParamError::Internal)?;
    words.push(num(arena, nr_opts)?)?;
    for &w in opts.as_slice() {
        words.push(w)?;
    }
    Ok(words)
}

/// Formats, checks and writes the line; returns its length.
///
/// # Safety
///
/// As [`table_words`].
unsafe fn format_params(
    p: &RtmTableParams,
    out: Option<&mut [u8]>,
    err: &mut ErrBuf<'_>,
) -> Result<usize, c_int> {
    // Numbers and the uuid: at most 8 numbers of 20 digits and 32 hex digits.
    let mut scratch = [0u8; 256];
    let mut arena = Arena::new(&mut scratch);
    // SAFETY: forwarded from the caller.
    let words = unsafe { table_words(p, &mut arena) }.map_err(|e| err.fail(e.code(), e))?;
    let cfg = parse_table(words.as_slice()).map_err(|e| err.fail(RTM_EINVAL, e))?;
    let line = emit(out, err, |mut w| format_table(&cfg, &mut w))?;
    // What the kernel will parse is what lvm2 meant, and it will print the
    // very same bytes back.
    if !round_trips(line, &cfg) || !words.joined_eq(line) {
        return Err(err.fail(
            RTM_EPROTO,
            "internal error: the formatted table does not parse back to the same table",
        ));
    }
    Ok(line.len())
}

/// Whether `line` parses to `cfg`.
fn round_trips(line: &str, cfg: &TableConfig<'_>) -> bool {
    Words::split(line).is_ok_and(|back| parse_table(back.as_slice()).as_ref() == Ok(cfg))
}

/// Formats the parameters line of an `rtmirror` table (what follows
/// `<start> <length> rtmirror`) from segment parameters.
///
/// The line is what the kernel prints in `dmsetup table` for the same table
/// (when the devices are given as `"major:minor"`), byte for byte, so that a
/// string comparison tells whether a reload is needed. It is checked with
/// the kernel's own parser before it is returned.
///
/// Returns:
/// * `RTM_OK`: the line and a NUL are in `buf`; `*written` (if not `NULL`)
///   is its length without the NUL.
/// * a positive value: `buf` is too small (or `NULL` with `len` 0, to ask):
///   the size needed, NUL included. The table is valid (it was checked first).
/// * `RTM_EINVAL`: the table would be refused; `err` says why, in the
///   kernel's words (e.g. `region_size 1000 is not a power of two`).
/// * `RTM_EFAULT`: `p` is `NULL`, or `buf` is `NULL` with `len` not 0.
/// * `RTM_EOVERFLOW`, `RTM_EPROTO`: see their definitions.
///
/// `err` (may be `NULL`) receives the reason of a failure, or `""`.
///
/// # Safety
///
/// `p` is `NULL` or points to a valid `rtm_table_params` whose used device
/// pointers are `NULL` or NUL-terminated strings; `buf`, `written` and `err`
/// are `NULL` or valid for writes of `len`, one `size_t` and `err_len` bytes.
/// No output overlaps an input or another output.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_format(
    p: *const RtmTableParams,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: `written` is NULL or valid per the contract.
    unsafe { store(written, 0) };
    // SAFETY: `err` is NULL or valid for `err_len` bytes per the contract.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    // SAFETY: `buf` is NULL or valid for `len` bytes per the contract.
    let out = match unsafe { out_buf(buf, len, &mut err) } {
        Ok(out) => out,
        Err(code) => return code,
    };
    // SAFETY: `p` is NULL or valid per the contract.
    let Some(p) = (unsafe { p.as_ref() }) else {
        return err.fail(RTM_EFAULT, "table parameters are NULL");
    };
    // SAFETY: the device pointers are valid per the contract.
    match unsafe { format_params(p, out, &mut err) } {
        Ok(n) => {
            // SAFETY: `written` is NULL or valid per the contract.
            unsafe { store(written, n) };
            RTM_OK
        }
        Err(code) => code,
    }
}

/// Checks a table parameters line (what follows `<start> <length>
/// rtmirror`) with the kernel's parser: whether the kernel would accept it,
/// apart from the devices themselves (existence, size, sharing).
///
/// Returns `RTM_OK` if it is valid, `RTM_EINVAL` if not (`err` says why, in
/// the kernel's words), `RTM_EFAULT` if `params` is `NULL`. `err` (may be
/// `NULL`) receives the reason, or `""`.
///
/// # Safety
///
/// `params` is `NULL` or a NUL-terminated string; `err` is `NULL` or valid
/// for writes of `err_len` bytes and does not overlap `params`.
#[no_mangle]
pub unsafe extern "C" fn rtm_table_validate(
    params: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: `err` is NULL or valid for `err_len` bytes per the contract.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    // SAFETY: `params` is NULL or a NUL-terminated string per the contract.
    let line = match unsafe { c_arg(params) } {
        CArg::Null => return err.fail(RTM_EFAULT, "table is NULL"),
        CArg::NotUtf8 => return err.fail(RTM_EINVAL, "table is not valid UTF-8"),
        CArg::Str(s) => s,
    };
    let (words, complete) = Words::split_prefix(line);
    match parse_table(words.as_slice()) {
        Ok(_) if complete => RTM_OK,
        Err(e) if complete || same_on_longer_line(&e) => err.fail(RTM_EINVAL, e),
        // No valid table has that many words; which error the kernel gives
        // depends on words that were not looked at.
        _ => err.fail(
            RTM_EINVAL,
            format_args!("table has more than {} words", cbuf::MAX_WORDS),
        ),
    }
}

/// Whether `parse_table` gives error `e` for a line that starts with the
/// [`cbuf::MAX_WORDS`] words that gave it, whatever follows: the errors found
/// before the option words are counted against `#opt_args`, and surplus
/// option words (the first surplus word is the same).
fn same_on_longer_line(e: &TableError<'_>) -> bool {
    matches!(
        e,
        TableError::BadLegCount(_)
            | TableError::InvalidDevice(_)
            | TableError::AllLegsAbsent
            | TableError::DuplicateDevice(_)
            | TableError::BadLogCount(_)
            | TableError::BadOptCount(_)
            | TableError::TrailingArguments { .. }
    )
}
