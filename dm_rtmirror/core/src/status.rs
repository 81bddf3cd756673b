//! The `rtmirror` STATUSTYPE_INFO line.
//!
//! ```text
//! <#legs> <leg letters> <in_sync>/<total> <#logs> <log letters> <health> <sync_action>
//! ```
//!
//! e.g. `2 AA 1024/1024 2 AA healthy idle` or `2 AM 0/1024 0 - degraded idle`.
//!
//! One letter per leg/log keeps the line short and fixed-shape (like
//! dm-raid's health characters) so tools can parse it positionally; an
//! empty letter list is written `-` so the field count never changes.
//! Health and sync action are whole words because they are what humans
//! and monitoring scripts match on.
//!
//! `core`-only and panic-free on any input, as it is also compiled into the
//! kernel module.

use core::ffi::CStr;
use core::fmt;

use crate::table::{parse_u64, MAX_LEGS, MAX_LOGS};

/// The word written instead of an empty letter list.
pub const EMPTY_LIST: &str = "-";

/// State of one mirror leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LegState {
    /// `A`: alive and holding current data in every region.
    #[default]
    InSync,
    /// `R`: alive, being brought up to date by resync.
    Resyncing,
    /// `D`: alive but has had errors; not trusted for reads.
    Degraded,
    /// `I`: present but not taking part in I/O.
    Inactive,
    /// `M`: the device is missing (`-` in the table or failed open).
    Missing,
    /// `S`: split off from the mirror by the `split` message.
    Split,
}

impl LegState {
    /// All states, in letter order `A R D I M S`.
    pub const ALL: [LegState; 6] = [
        Self::InSync,
        Self::Resyncing,
        Self::Degraded,
        Self::Inactive,
        Self::Missing,
        Self::Split,
    ];

    /// The status letter for this state.
    pub fn letter(self) -> char {
        match self {
            Self::InSync => 'A',
            Self::Resyncing => 'R',
            Self::Degraded => 'D',
            Self::Inactive => 'I',
            Self::Missing => 'M',
            Self::Split => 'S',
        }
    }

    /// The state for a status letter, if it is one.
    pub fn from_letter(c: char) -> Option<Self> {
        Some(match c {
            'A' => Self::InSync,
            'R' => Self::Resyncing,
            'D' => Self::Degraded,
            'I' => Self::Inactive,
            'M' => Self::Missing,
            'S' => Self::Split,
            _ => return None,
        })
    }
}

/// State of one log device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogState {
    /// `A`: the log is working.
    #[default]
    Alive,
    /// `F`: the log has failed.
    Failed,
}

impl LogState {
    /// All states, in letter order `A F`.
    pub const ALL: [LogState; 2] = [Self::Alive, Self::Failed];

    /// The status letter for this state.
    pub fn letter(self) -> char {
        match self {
            Self::Alive => 'A',
            Self::Failed => 'F',
        }
    }

    /// The state for a status letter, if it is one.
    pub fn from_letter(c: char) -> Option<Self> {
        match c {
            'A' => Some(Self::Alive),
            'F' => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Overall health of the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Every leg is in sync.
    Healthy,
    /// At least one leg is in sync, but not all.
    Degraded,
    /// No leg is in sync.
    Failed,
}

impl Health {
    /// All values.
    pub const ALL: [Health; 3] = [Self::Healthy, Self::Degraded, Self::Failed];

    /// The status word for this value.
    pub fn word(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }

    /// The value for a status word, if it is one.
    pub fn from_word(w: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.word() == w)
    }
}

/// What background synchronisation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncAction {
    /// Nothing is being copied.
    Idle,
    /// Out-of-sync regions are being copied to lagging legs.
    Resync,
}

impl SyncAction {
    /// All values.
    pub const ALL: [SyncAction; 2] = [Self::Idle, Self::Resync];

    /// The status word for this value.
    pub fn word(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Resync => "resync",
        }
    }

    /// The value for a status word, if it is one.
    pub fn from_word(w: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.word() == w)
    }
}

/// Health derived from leg states alone: `Failed` if no leg is
/// [`LegState::InSync`] (including no legs at all), `Healthy` if every leg
/// is, otherwise `Degraded`.
pub fn health_of(legs: &[LegState]) -> Health {
    let in_sync = legs.iter().filter(|&&l| l == LegState::InSync).count();
    if in_sync == 0 {
        Health::Failed
    } else if in_sync == legs.len() {
        Health::Healthy
    } else {
        Health::Degraded
    }
}

/// Everything the INFO line reports; what the kernel formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusInfo<'s> {
    /// One state per leg slot (at most [`MAX_LEGS`]).
    pub legs: &'s [LegState],
    /// One state per log device (at most [`MAX_LOGS`]).
    pub logs: &'s [LogState],
    /// Regions known to be in sync on every active leg.
    pub in_sync_regions: u64,
    /// Total number of regions.
    pub total_regions: u64,
    /// Overall health.
    pub health: Health,
    /// Current background activity.
    pub sync_action: SyncAction,
}

/// The scalar part of a parsed INFO line; the per-device states go to the
/// caller's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedStatus {
    /// Number of legs (entries filled in `legs_out`).
    pub nr_legs: u8,
    /// Number of logs (entries filled in `logs_out`).
    pub nr_logs: u8,
    /// Regions in sync.
    pub in_sync_regions: u64,
    /// Total regions.
    pub total_regions: u64,
    /// Overall health.
    pub health: Health,
    /// Current background activity.
    pub sync_action: SyncAction,
}

/// Ways an INFO line can fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusError<'a> {
    /// The line ends before the named field.
    MissingField(&'static str),
    /// A numeric field is not a valid decimal number.
    BadNumber {
        /// Field name.
        field: &'static str,
        /// Offending word.
        word: &'a str,
    },
    /// Leg count above [`MAX_LEGS`].
    TooManyLegs(u64),
    /// Log count above [`MAX_LOGS`].
    TooManyLogs(u64),
    /// The letter list length differs from the announced count.
    CountMismatch {
        /// Field name (`legs` or `logs`).
        field: &'static str,
        /// Announced count.
        expected: u8,
        /// The letter word found.
        word: &'a str,
    },
    /// A leg letter is not one of `A R D I M S`.
    BadLegLetter(char),
    /// A log letter is not one of `A F`.
    BadLogLetter(char),
    /// The region field is not `<in_sync>/<total>`.
    BadRegions(&'a str),
    /// More regions in sync than exist.
    InSyncExceedsTotal {
        /// Regions in sync.
        in_sync: u64,
        /// Total regions.
        total: u64,
    },
    /// Unknown health word.
    BadHealth(&'a str),
    /// Unknown sync action word.
    BadSyncAction(&'a str),
    /// Words after the last field.
    TrailingFields(&'a str),
}

impl StatusError<'_> {
    /// A fixed sentence describing the kind of error.
    pub fn reason(&self) -> &'static CStr {
        match self {
            Self::MissingField(_) => c"rtmirror status: missing field",
            Self::BadNumber { .. } => c"rtmirror status: invalid number",
            Self::TooManyLegs(_) => c"rtmirror status: too many legs",
            Self::TooManyLogs(_) => c"rtmirror status: too many logs",
            Self::CountMismatch { .. } => c"rtmirror status: letter count mismatch",
            Self::BadLegLetter(_) => c"rtmirror status: invalid leg state letter",
            Self::BadLogLetter(_) => c"rtmirror status: invalid log state letter",
            Self::BadRegions(_) => c"rtmirror status: invalid region counts",
            Self::InSyncExceedsTotal { .. } => c"rtmirror status: in-sync regions exceed total",
            Self::BadHealth(_) => c"rtmirror status: invalid health word",
            Self::BadSyncAction(_) => c"rtmirror status: invalid sync action",
            Self::TrailingFields(_) => c"rtmirror status: trailing fields",
        }
    }
}

impl fmt::Display for StatusError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MissingField(name) => write!(f, "status line ends before {name}"),
            Self::BadNumber { field, word } => {
                write!(f, "{field}: '{word}' is not a valid decimal number")
            }
            Self::TooManyLegs(n) => write!(f, "leg count {n} exceeds {MAX_LEGS}"),
            Self::TooManyLogs(n) => write!(f, "log count {n} exceeds {MAX_LOGS}"),
            Self::CountMismatch {
                field,
                expected,
                word,
            } => write!(f, "{field}: expected {expected} letters, got '{word}'"),
            Self::BadLegLetter(c) => write!(f, "invalid leg state letter '{c}'"),
            Self::BadLogLetter(c) => write!(f, "invalid log state letter '{c}'"),
            Self::BadRegions(w) => write!(f, "region field '{w}' is not <in_sync>/<total>"),
            Self::InSyncExceedsTotal { in_sync, total } => {
                write!(f, "in-sync regions {in_sync} exceed total {total}")
            }
            Self::BadHealth(w) => write!(f, "invalid health '{w}'"),
            Self::BadSyncAction(w) => write!(f, "invalid sync action '{w}'"),
            Self::TrailingFields(w) => write!(f, "unexpected trailing field '{w}'"),
        }
    }
}

/// Writes one letter per state, or `-` when there are none.
fn write_letters<T: Copy>(
    w: &mut impl fmt::Write,
    items: &[T],
    letter: impl Fn(T) -> char,
) -> fmt::Result {
    if items.is_empty() {
        return w.write_str(EMPTY_LIST);
    }
    for &item in items {
        w.write_char(letter(item))?;
    }
    Ok(())
}

/// Writes the INFO line for `s`.
///
/// Fails with `fmt::Error` (without writing) if `s` has more than
/// [`MAX_LEGS`] legs or [`MAX_LOGS`] logs, so that every line it produces
/// is accepted by [`parse_status`]. `in_sync_regions` is written as given;
/// the caller is responsible for keeping it `<= total_regions`.
pub fn format_status(s: &StatusInfo<'_>, w: &mut impl fmt::Write) -> fmt::Result {
    if s.legs.len() > MAX_LEGS || s.logs.len() > MAX_LOGS {
        return Err(fmt::Error);
    }
    write!(w, "{} ", s.legs.len())?;
    write_letters(w, s.legs, LegState::letter)?;
    write!(
        w,
        " {}/{} {} ",
        s.in_sync_regions,
        s.total_regions,
        s.logs.len()
    )?;
    write_letters(w, s.logs, LogState::letter)?;
    write!(w, " {} {}", s.health.word(), s.sync_action.word())
}

/// Parses a letter list of `expected` entries into `out`.
fn parse_letters<'a, T>(
    field: &'static str,
    word: &'a str,
    expected: u8,
    out: &mut [T],
    from_letter: impl Fn(char) -> Option<T>,
    bad_letter: impl Fn(char) -> StatusError<'a>,
) -> Result<(), StatusError<'a>> {
    let mismatch = StatusError::CountMismatch {
        field,
        expected,
        word,
    };
    if expected == 0 {
        return if word == EMPTY_LIST {
            Ok(())
        } else {
            Err(mismatch)
        };
    }
    let mut n: u8 = 0;
    let mut slots = out.iter_mut();
    for c in word.chars() {
        let state = from_letter(c).ok_or_else(|| bad_letter(c))?;
        n = n.checked_add(1).ok_or(mismatch)?;
        if n > expected {
            return Err(mismatch);
        }
        *slots.next().ok_or(mismatch)? = state;
    }
    if n == expected {
        Ok(())
    } else {
        Err(mismatch)
    }
}

/// Parses an INFO line produced by [`format_status`].
///
/// Fields may be separated by any ASCII whitespace (a trailing newline is
/// fine). Leg and log states are stored in the first `nr_legs` /
/// `nr_logs` entries of `legs_out` / `logs_out`; the rest are untouched.
/// The health word is taken as reported, not recomputed from the legs.
pub fn parse_status<'a>(
    line: &'a str,
    legs_out: &mut [LegState; MAX_LEGS],
    logs_out: &mut [LogState; MAX_LOGS],
) -> Result<ParsedStatus, StatusError<'a>> {
    let mut words = line.split_ascii_whitespace();
    let mut next = |name: &'static str| words.next().ok_or(StatusError::MissingField(name));
    let number = |field: &'static str, word: &'a str| {
        parse_u64(word).ok_or(StatusError::BadNumber { field, word })
    };

    let n = number("leg count", next("leg count")?)?;
    let nr_legs = u8::try_from(n)
        .ok()
        .filter(|&c| usize::from(c) <= MAX_LEGS)
        .ok_or(StatusError::TooManyLegs(n))?;
    parse_letters(
        "legs",
        next("leg states")?,
        nr_legs,
        legs_out,
        LegState::from_letter,
        StatusError::BadLegLetter,
    )?;

    let regions = next("region counts")?;
    let (a, b) = regions
        .split_once('/')
        .ok_or(StatusError::BadRegions(regions))?;
    let in_sync = number("in-sync regions", a)?;
    let total = number("total regions", b)?;
    if in_sync > total {
        return Err(StatusError::InSyncExceedsTotal { in_sync, total });
    }

    let n = number("log count", next("log count")?)?;
    let nr_logs = u8::try_from(n)
        .ok()
        .filter(|&c| usize::from(c) <= MAX_LOGS)
        .ok_or(StatusError::TooManyLogs(n))?;
    parse_letters(
        "logs",
        next("log states")?,
        nr_logs,
        logs_out,
        LogState::from_letter,
        StatusError::BadLogLetter,
    )?;

    let hw = next("health")?;
    let health = Health::from_word(hw).ok_or(StatusError::BadHealth(hw))?;
    let aw = next("sync action")?;
    let sync_action = SyncAction::from_word(aw).ok_or(StatusError::BadSyncAction(aw))?;
    if let Some(extra) = words.next() {
        return Err(StatusError::TrailingFields(extra));
    }

    Ok(ParsedStatus {
        nr_legs,
        nr_logs,
        in_sync_regions: in_sync,
        total_regions: total,
        health,
        sync_action,
    })
}
