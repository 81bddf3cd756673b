//! The `rtmirror` constructor table line: parsing, validation and canonical
//! formatting.
//!
//! Grammar (the words after `<start> <len> rtmirror`):
//!
//! ```text
//! <#legs> <leg>... <#logs> <log>... <#opt_args> [opt_args...]
//! ```
//!
//! * `#legs` is 2 to [`MAX_LEGS`]. A leg is a device string, or `-` for a
//!   leg slot that is declared but absent (so leg indices stay stable when
//!   a device is missing at activation). At least one leg must be present
//!   and no two present legs may name the same device: mirroring a device
//!   onto itself would silently report redundancy that does not exist.
//! * `#logs` is 0 to [`MAX_LOGS`]. A log copy is a device string, or `-`
//!   for a copy that is absent at activation (it counts as failed). Log
//!   devices must differ from every leg and from each other, since sharing a
//!   device between roles would corrupt either the data or the log.
//! * `#opt_args` counts option *words* (keywords and values), like dm-raid,
//!   so that a future kernel can skip unknown options safely and a table
//!   with a stray word is rejected instead of being guessed at.
//!
//! Options, each at most once: `region_size <sectors>`,
//! `io_timeout_ms <ms>`, `primary <leg index>`, `resync_kbps <n>`, `nosync`,
//! `log_uuid <32 lowercase hex digits>` (binds the log to this mirror: a
//! log copy with another uuid is never trusted; not all zero),
//! `allow_missing` (a leg or log device that does not exist when the table
//! is loaded is taken as absent, `-`: for tables fixed in advance, such as
//! `dm-mod.create=` at boot, when a storage subsystem may be gone).
//!
//! Numbers are plain decimal ASCII digits with no sign, prefix or leading
//! zeros (except `0` itself) and must fit the target type; this keeps the
//! canonical form unique, so `format(parse(x)) == x` for canonical `x`.
//!
//! Everything here is `core`-only and panic-free on any input: it is
//! compiled into the kernel module as well as into the host crate.

use core::ffi::CStr;
use core::fmt;

/// Maximum number of mirror legs.
pub const MAX_LEGS: usize = 4;
/// Minimum number of mirror legs (a mirror of one is not a mirror).
pub const MIN_LEGS: usize = 2;
/// Maximum number of log devices.
pub const MAX_LOGS: usize = 2;
/// The word standing for an absent leg or log copy.
pub const ABSENT_LEG: &str = "-";

/// Default region size in 512-byte sectors (4 MiB).
pub const DEFAULT_REGION_SIZE: u64 = 8192;
/// Smallest region size in sectors: one 4 KiB page.
pub const MIN_REGION_SIZE: u64 = 8;
/// Largest region size in sectors: 1 GiB.
pub const MAX_REGION_SIZE: u64 = 1 << 21;
/// Largest accepted I/O timeout in milliseconds (one hour).
pub const MAX_IO_TIMEOUT_MS: u32 = 3_600_000;
/// Default I/O timeout; 0 means no timeout.
pub const DEFAULT_IO_TIMEOUT_MS: u32 = 0;
/// Default resync throttle; 0 means unlimited.
pub const DEFAULT_RESYNC_KBPS: u32 = 0;

/// Option keyword `region_size`.
pub const OPT_REGION_SIZE: &str = "region_size";
/// Option keyword `io_timeout_ms`.
pub const OPT_IO_TIMEOUT_MS: &str = "io_timeout_ms";
/// Option keyword `primary`.
pub const OPT_PRIMARY: &str = "primary";
/// Option keyword `resync_kbps`.
pub const OPT_RESYNC_KBPS: &str = "resync_kbps";
/// Option keyword `nosync` (a flag without value).
pub const OPT_NOSYNC: &str = "nosync";
/// Option keyword `allow_missing`.
pub const OPT_ALLOW_MISSING: &str = "allow_missing";
/// Option keyword `log_uuid`.
pub const OPT_LOG_UUID: &str = "log_uuid";

/// Parses a log uuid: exactly 32 lowercase hex digits (one canonical form),
/// not all zero (zero marks a blank log).
pub fn parse_uuid(word: &str) -> Option<[u8; 16]> {
    let b = word.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = nibble(*b.get(2 * i)?)?;
        let lo = nibble(*b.get(2 * i + 1)?)?;
        *o = hi << 4 | lo;
    }
    (out != [0; 16]).then_some(out)
}

/// Parses a plain decimal `u64`: ASCII digits only, no sign, no prefix,
/// not empty, no leading zeros except `"0"` itself, no overflow.
///
/// Shared by the table, status and message parsers.
pub fn parse_u64(word: &str) -> Option<u64> {
    let bytes = word.as_bytes();
    match bytes {
        [] => return None,
        [b'0'] => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))?;
    }
    Some(value)
}

/// Like [`parse_u64`] but the value must also fit a `u32`.
pub fn parse_u32(word: &str) -> Option<u32> {
    parse_u64(word).and_then(|v| u32::try_from(v).ok())
}

/// A device word is usable when it is non-empty, not the absent marker and
/// contains no whitespace or control characters (which could not survive
/// the kernel's word splitting, so the canonical form would not re-parse).
fn valid_device(word: &str) -> bool {
    !word.is_empty()
        && word != ABSENT_LEG
        && !word
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// A validated `rtmirror` table.
///
/// Device strings borrow from the parsed words. The kernel may build a copy
/// with the strings replaced by `major:minor` names before calling
/// [`format_table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConfig<'a> {
    /// Number of leg slots (2 to [`MAX_LEGS`]).
    pub nr_legs: u8,
    /// Leg devices; `None` for an absent leg (`-`) and for unused slots.
    pub legs: [Option<&'a str>; MAX_LEGS],
    /// Number of log devices (0 to [`MAX_LOGS`]).
    pub nr_logs: u8,
    /// Log devices; `None` for an absent copy (`-`) and for unused slots.
    pub logs: [Option<&'a str>; MAX_LOGS],
    /// Region size in 512-byte sectors (power of two, 8 to 2^21).
    pub region_size: u64,
    /// Per-I/O timeout in milliseconds; 0 disables it.
    pub io_timeout_ms: u32,
    /// Index of the leg reads prefer; always a present leg.
    pub primary: u8,
    /// Whether `primary` was given explicitly (and so is emitted back).
    pub primary_explicit: bool,
    /// Resync throttle in KiB/s; 0 means unlimited.
    pub resync_kbps: u32,
    /// Legs are declared identical: skip the initial resync.
    pub nosync: bool,
    /// `log_uuid`: the uuid the log copies must carry (bound log), or
    /// `None` (unbound: adopt the newest matching copy's).
    pub log_uuid: Option<[u8; 16]>,
    /// `allow_missing`: a device that does not exist is taken as absent.
    pub allow_missing: bool,
}

impl<'a> TableConfig<'a> {
    /// The leg slots in use (`nr_legs` of them).
    pub fn leg_slots(&self) -> &[Option<&'a str>] {
        self.legs
            .get(..usize::from(self.nr_legs))
            .unwrap_or(&self.legs)
    }

    /// The log copy slots in use (`nr_logs` of them).
    pub fn log_slots(&self) -> &[Option<&'a str>] {
        self.logs
            .get(..usize::from(self.nr_logs))
            .unwrap_or(&self.logs)
    }

    /// Number of option words [`format_table`] will emit for this config.
    pub fn opt_word_count(&self) -> usize {
        [
            (self.region_size != DEFAULT_REGION_SIZE, 2),
            (self.io_timeout_ms != DEFAULT_IO_TIMEOUT_MS, 2),
            (self.primary_explicit, 2),
            (self.resync_kbps != DEFAULT_RESYNC_KBPS, 2),
            (self.nosync, 1),
            (self.log_uuid.is_some(), 2),
            (self.allow_missing, 1),
        ]
        .iter()
        .filter(|(emitted, _)| *emitted)
        .fold(0usize, |n, (_, words)| n.saturating_add(*words))
    }
}

/// Everything that can be wrong with a table line. Each variant carries the
/// offending word or value for [`fmt::Display`]; [`TableError::reason`]
/// gives a fixed sentence suitable for `dm_target->error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError<'a> {
    /// No arguments at all.
    MissingLegCount,
    /// `#legs` is not a decimal number in 2..=4.
    BadLegCount(&'a str),
    /// Fewer leg words than `#legs` announced.
    MissingLegs {
        /// Legs announced.
        expected: u8,
        /// Leg words actually present.
        found: usize,
    },
    /// A leg or log word is empty or contains whitespace/control bytes.
    InvalidDevice(&'a str),
    /// Every leg is `-`.
    AllLegsAbsent,
    /// The same device string appears twice among present legs and logs.
    DuplicateDevice(&'a str),
    /// Arguments end before `#logs`.
    MissingLogCount,
    /// `#logs` is not a decimal number in 0..=2.
    BadLogCount(&'a str),
    /// Fewer log words than `#logs` announced.
    MissingLogs {
        /// Logs announced.
        expected: u8,
        /// Log words actually present.
        found: usize,
    },
    /// Arguments end before `#opt_args`.
    MissingOptCount,
    /// `#opt_args` is not a decimal number.
    BadOptCount(&'a str),
    /// Fewer option words than `#opt_args` announced.
    OptCountMismatch {
        /// Option words announced.
        expected: u64,
        /// Option words actually present.
        found: usize,
    },
    /// More words than `#opt_args` announced.
    TrailingArguments {
        /// Option words announced.
        expected: u64,
        /// First word past the announced options.
        first: &'a str,
    },
    /// An option keyword this version does not know.
    UnknownOption(&'a str),
    /// An option that needs a value is the last option word.
    MissingOptionValue(&'a str),
    /// An option given more than once.
    DuplicateOption(&'a str),
    /// An option value is not a valid decimal number for its type.
    BadNumber {
        /// The option keyword.
        option: &'a str,
        /// The offending value word.
        word: &'a str,
    },
    /// `region_size` is not a power of two.
    RegionSizeNotPowerOfTwo(u64),
    /// `region_size` is below [`MIN_REGION_SIZE`].
    RegionSizeTooSmall(u64),
    /// `region_size` is above [`MAX_REGION_SIZE`].
    RegionSizeTooLarge(u64),
    /// `io_timeout_ms` is above [`MAX_IO_TIMEOUT_MS`].
    TimeoutTooLarge(u64),
    /// `primary` is not a valid leg index.
    PrimaryOutOfRange {
        /// The requested index.
        index: u64,
        /// Number of leg slots.
        nr_legs: u8,
    },
    /// `primary` names a leg given as `-`.
    PrimaryAbsent(u8),
    /// `log_uuid` is not 32 lowercase hex digits, or all zero.
    BadUuid(&'a str),
}

impl TableError<'_> {
    /// A fixed, static sentence describing the kind of error, for
    /// `dm_target->error` (which must point at a static C string).
    pub fn reason(&self) -> &'static CStr {
        match self {
            Self::MissingLegCount => c"missing leg count",
            Self::BadLegCount(_) => c"leg count must be 2 to 4",
            Self::MissingLegs { .. } => c"fewer legs than the leg count",
            Self::InvalidDevice(_) => c"invalid device name",
            Self::AllLegsAbsent => c"at least one leg must be present",
            Self::DuplicateDevice(_) => c"device given more than once",
            Self::MissingLogCount => c"missing log count",
            Self::BadLogCount(_) => c"log count must be 0 to 2",
            Self::MissingLogs { .. } => c"fewer logs than the log count",
            Self::MissingOptCount => c"missing optional argument count",
            Self::BadOptCount(_) => c"invalid optional argument count",
            Self::OptCountMismatch { .. } => c"fewer optional arguments than announced",
            Self::TrailingArguments { .. } => c"more optional arguments than announced",
            Self::UnknownOption(_) => c"unknown option",
            Self::MissingOptionValue(_) => c"option is missing its value",
            Self::DuplicateOption(_) => c"option given more than once",
            Self::BadNumber { .. } => c"invalid number",
            Self::RegionSizeNotPowerOfTwo(_) => c"region_size must be a power of two",
            Self::RegionSizeTooSmall(_) => c"region_size too small",
            Self::RegionSizeTooLarge(_) => c"region_size too large",
            Self::TimeoutTooLarge(_) => c"io_timeout_ms too large",
            Self::PrimaryOutOfRange { .. } => c"primary leg index out of range",
            Self::PrimaryAbsent(_) => c"primary leg is absent",
            Self::BadUuid(_) => c"log_uuid must be 32 lowercase hex digits, not all zero",
        }
    }
}

impl fmt::Display for TableError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MissingLegCount => f.write_str("missing leg count"),
            Self::BadLegCount(w) => {
                if parse_u64(w).is_some() {
                    write!(
                        f,
                        "leg count '{w}' out of range: expected {MIN_LEGS} to {MAX_LEGS}"
                    )
                } else {
                    write!(
                        f,
                        "leg count '{w}' is not a decimal number: expected {MIN_LEGS} to {MAX_LEGS}"
                    )
                }
            }
            Self::MissingLegs { expected, found } => {
                write!(f, "expected {expected} legs, found only {found}")
            }
            Self::InvalidDevice(w) => write!(
                f,
                "invalid device '{w}': must be non-empty without whitespace or control characters"
            ),
            Self::AllLegsAbsent => f.write_str("all legs are '-': at least one must be present"),
            Self::DuplicateDevice(w) => write!(f, "device '{w}' given more than once"),
            Self::MissingLogCount => f.write_str("missing log count after the legs"),
            Self::BadLogCount(w) => {
                if parse_u64(w).is_some() {
                    write!(f, "log count '{w}' out of range: expected 0 to {MAX_LOGS}")
                } else {
                    write!(
                        f,
                        "log count '{w}' is not a decimal number: expected 0 to {MAX_LOGS}"
                    )
                }
            }
            Self::MissingLogs { expected, found } => {
                write!(f, "expected {expected} logs, found only {found}")
            }
            Self::MissingOptCount => f.write_str("missing optional argument count after the logs"),
            Self::BadOptCount(w) => {
                write!(f, "optional argument count '{w}' is not a decimal number")
            }
            Self::OptCountMismatch { expected, found } => write!(
                f,
                "expected {expected} optional argument words, found only {found}"
            ),
            Self::TrailingArguments { expected, first } => write!(
                f,
                "unexpected argument '{first}' after the {expected} optional argument words"
            ),
            Self::UnknownOption(w) => write!(f, "unknown option '{w}'"),
            Self::MissingOptionValue(w) => write!(f, "option '{w}' is missing its value"),
            Self::DuplicateOption(w) => write!(f, "option '{w}' given more than once"),
            Self::BadNumber { option, word } => {
                write!(f, "{option}: '{word}' is not a valid decimal number")
            }
            Self::RegionSizeNotPowerOfTwo(v) => {
                write!(f, "region_size {v} is not a power of two")
            }
            Self::RegionSizeTooSmall(v) => write!(
                f,
                "region_size {v} is too small: minimum {MIN_REGION_SIZE} sectors"
            ),
            Self::RegionSizeTooLarge(v) => write!(
                f,
                "region_size {v} is too large: maximum {MAX_REGION_SIZE} sectors"
            ),
            Self::TimeoutTooLarge(v) => write!(
                f,
                "io_timeout_ms {v} is too large: maximum {MAX_IO_TIMEOUT_MS}"
            ),
            Self::PrimaryOutOfRange { index, nr_legs } => write!(
                f,
                "primary leg {index} out of range: table has {nr_legs} legs"
            ),
            Self::PrimaryAbsent(i) => write!(f, "primary leg {i} is absent ('-')"),
            Self::BadUuid(w) => write!(
                f,
                "log_uuid '{w}': expected 32 lowercase hex digits, not all zero"
            ),
        }
    }
}

/// Splits `n` words off the front of `words`, or returns `None` if there
/// are fewer than `n`.
fn take<'s, 'a>(words: &'s [&'a str], n: usize) -> Option<(&'s [&'a str], &'s [&'a str])> {
    Some((words.get(..n)?, words.get(n..)?))
}

/// Parses and validates the table arguments (the words after
/// `<start> <len> rtmirror`).
///
/// Errors are reported in the order the words appear, so the first
/// problem in the line wins.
pub fn parse_table<'a>(args: &[&'a str]) -> Result<TableConfig<'a>, TableError<'a>> {
    // Legs.
    let (&word, rest) = args.split_first().ok_or(TableError::MissingLegCount)?;
    let nr_legs = match parse_u64(word).and_then(|n| u8::try_from(n).ok()) {
        Some(n) if (MIN_LEGS..=MAX_LEGS).contains(&usize::from(n)) => n,
        _ => return Err(TableError::BadLegCount(word)),
    };
    let (leg_words, rest) = take(rest, usize::from(nr_legs)).ok_or(TableError::MissingLegs {
        expected: nr_legs,
        found: rest.len(),
    })?;
    let mut legs: [Option<&'a str>; MAX_LEGS] = [None; MAX_LEGS];
    for (slot, &w) in legs.iter_mut().zip(leg_words) {
        if w != ABSENT_LEG {
            if !valid_device(w) {
                return Err(TableError::InvalidDevice(w));
            }
            *slot = Some(w);
        }
    }
    for (i, leg) in legs.iter().enumerate() {
        if let Some(name) = *leg {
            let later = legs.iter().enumerate().filter(|&(j, _)| j > i);
            if later
                .map(|(_, other)| *other)
                .any(|other| other == Some(name))
            {
                return Err(TableError::DuplicateDevice(name));
            }
        }
    }
    // (0u8..) is zipped with at most MAX_LEGS slots, so it never wraps.
    let Some((first_present, _)) = (0u8..).zip(legs.iter()).find(|(_, l)| l.is_some()) else {
        return Err(TableError::AllLegsAbsent);
    };

    // Logs.
    let (&word, rest) = rest.split_first().ok_or(TableError::MissingLogCount)?;
    let nr_logs = match parse_u64(word).and_then(|n| u8::try_from(n).ok()) {
        Some(n) if usize::from(n) <= MAX_LOGS => n,
        _ => return Err(TableError::BadLogCount(word)),
    };
    let (log_words, rest) = take(rest, usize::from(nr_logs)).ok_or(TableError::MissingLogs {
        expected: nr_logs,
        found: rest.len(),
    })?;
    let mut logs: [Option<&'a str>; MAX_LOGS] = [None; MAX_LOGS];
    for (index, (slot, &w)) in logs.iter_mut().zip(log_words).enumerate() {
        if w == ABSENT_LEG {
            continue;
        }
        if !valid_device(w) {
            return Err(TableError::InvalidDevice(w));
        }
        let earlier = log_words.get(..index).unwrap_or(&[]);
        if legs.contains(&Some(w)) || earlier.contains(&w) {
            return Err(TableError::DuplicateDevice(w));
        }
        *slot = Some(w);
    }

    // Optional arguments.
    let (&word, rest) = rest.split_first().ok_or(TableError::MissingOptCount)?;
    let nr_opts = parse_u64(word).ok_or(TableError::BadOptCount(word))?;
    let opts = match usize::try_from(nr_opts).ok().and_then(|n| take(rest, n)) {
        Some((opts, [])) => opts,
        Some((_, &[first, ..])) => {
            return Err(TableError::TrailingArguments {
                expected: nr_opts,
                first,
            })
        }
        None => {
            return Err(TableError::OptCountMismatch {
                expected: nr_opts,
                found: rest.len(),
            })
        }
    };

    let mut cfg = TableConfig {
        nr_legs,
        legs,
        nr_logs,
        logs,
        region_size: DEFAULT_REGION_SIZE,
        io_timeout_ms: DEFAULT_IO_TIMEOUT_MS,
        primary: first_present,
        primary_explicit: false,
        resync_kbps: DEFAULT_RESYNC_KBPS,
        nosync: false,
        log_uuid: None,
        allow_missing: false,
    };
    let mut seen_region = false;
    let mut seen_uuid = false;
    let mut seen_timeout = false;
    let mut seen_primary = false;
    let mut seen_resync = false;

    let mut it = opts.iter();
    while let Some(&kw) = it.next() {
        let seen = match kw {
            OPT_REGION_SIZE => &mut seen_region,
            OPT_IO_TIMEOUT_MS => &mut seen_timeout,
            OPT_PRIMARY => &mut seen_primary,
            OPT_RESYNC_KBPS => &mut seen_resync,
            OPT_LOG_UUID => &mut seen_uuid,
            OPT_NOSYNC => {
                if cfg.nosync {
                    return Err(TableError::DuplicateOption(kw));
                }
                cfg.nosync = true;
                continue;
            }
            OPT_ALLOW_MISSING => {
                if cfg.allow_missing {
                    return Err(TableError::DuplicateOption(kw));
                }
                cfg.allow_missing = true;
                continue;
            }
            _ => return Err(TableError::UnknownOption(kw)),
        };
        if *seen {
            return Err(TableError::DuplicateOption(kw));
        }
        *seen = true;
        let &value = it.next().ok_or(TableError::MissingOptionValue(kw))?;
        let bad = TableError::BadNumber {
            option: kw,
            word: value,
        };
        match kw {
            OPT_REGION_SIZE => {
                let v = parse_u64(value).ok_or(bad)?;
                if !v.is_power_of_two() {
                    return Err(TableError::RegionSizeNotPowerOfTwo(v));
                }
                if v < MIN_REGION_SIZE {
                    return Err(TableError::RegionSizeTooSmall(v));
                }
                if v > MAX_REGION_SIZE {
                    return Err(TableError::RegionSizeTooLarge(v));
                }
                cfg.region_size = v;
            }
            OPT_IO_TIMEOUT_MS => {
                let v = parse_u64(value).ok_or(bad)?;
                cfg.io_timeout_ms = match u32::try_from(v) {
                    Ok(ms) if ms <= MAX_IO_TIMEOUT_MS => ms,
                    _ => return Err(TableError::TimeoutTooLarge(v)),
                };
            }
            OPT_PRIMARY => {
                let v = parse_u64(value).ok_or(bad)?;
                let index = match u8::try_from(v) {
                    Ok(i) if i < nr_legs => i,
                    _ => return Err(TableError::PrimaryOutOfRange { index: v, nr_legs }),
                };
                if !matches!(cfg.legs.get(usize::from(index)), Some(Some(_))) {
                    return Err(TableError::PrimaryAbsent(index));
                }
                cfg.primary = index;
                cfg.primary_explicit = true;
            }
            OPT_LOG_UUID => {
                cfg.log_uuid = Some(parse_uuid(value).ok_or(TableError::BadUuid(value))?);
            }
            _ => {
                // OPT_RESYNC_KBPS, the only remaining valued option.
                cfg.resync_kbps = parse_u32(value).ok_or(bad)?;
            }
        }
    }
    Ok(cfg)
}

/// Writes the canonical table line for `cfg`:
/// `#legs legs... #logs logs... #opt_args opts...`.
///
/// Absent legs are written as `-`. Options are emitted only when they
/// differ from the default (`primary` only when it was explicit), always in
/// the order `region_size`, `io_timeout_ms`, `primary`, `resync_kbps`,
/// `nosync`, `log_uuid`, `allow_missing`. Words are separated by single spaces with no trailing space.
/// Only the strings stored in `cfg` are used, so the kernel can pass a copy
/// whose device strings are `major:minor` names.
pub fn format_table(cfg: &TableConfig<'_>, w: &mut impl fmt::Write) -> fmt::Result {
    write!(w, "{}", cfg.nr_legs)?;
    for leg in cfg.leg_slots() {
        w.write_char(' ')?;
        w.write_str(leg.unwrap_or(ABSENT_LEG))?;
    }
    write!(w, " {}", cfg.nr_logs)?;
    for log in cfg.log_slots() {
        w.write_char(' ')?;
        w.write_str(log.unwrap_or(ABSENT_LEG))?;
    }
    write!(w, " {}", cfg.opt_word_count())?;
    if cfg.region_size != DEFAULT_REGION_SIZE {
        write!(w, " {OPT_REGION_SIZE} {}", cfg.region_size)?;
    }
    if cfg.io_timeout_ms != DEFAULT_IO_TIMEOUT_MS {
        write!(w, " {OPT_IO_TIMEOUT_MS} {}", cfg.io_timeout_ms)?;
    }
    if cfg.primary_explicit {
        write!(w, " {OPT_PRIMARY} {}", cfg.primary)?;
    }
    if cfg.resync_kbps != DEFAULT_RESYNC_KBPS {
        write!(w, " {OPT_RESYNC_KBPS} {}", cfg.resync_kbps)?;
    }
    if cfg.nosync {
        write!(w, " {OPT_NOSYNC}")?;
    }
    if let Some(u) = cfg.log_uuid {
        write!(w, " {OPT_LOG_UUID} ")?;
        for b in u {
            write!(w, "{b:02x}")?;
        }
    }
    if cfg.allow_missing {
        write!(w, " {OPT_ALLOW_MISSING}")?;
    }
    Ok(())
}
