//! `dmsetup message <dev> 0 <words...>` verbs understood by `rtmirror`.
//!
//! | verb                 | effect                                          |
//! |----------------------|-------------------------------------------------|
//! | `fail <i>`           | mark leg `i` failed                             |
//! | `split <i>`          | detach leg `i` (keeps its data frozen)          |
//! | `rejoin <i>`         | re-attach leg `i` and resync it                 |
//! | `resync`             | mark all regions out of sync and resync         |
//! | `io_timeout_ms <ms>` | change the I/O timeout (same range as table)    |
//! | `primary <i>`        | change the preferred read leg                   |
//! | `resync_kbps <n>`    | change the resync throttle (0 = unlimited)      |
//! | `trust <i>`          | no leg is known newest: take leg `i`, full resync |
//!
//! Numbers use the same strict decimal rules as the table
//! ([`crate::table::parse_u64`]). Whether leg `i` is currently present is
//! runtime state, so it is checked by the target, not here; this module
//! only checks `i < nr_legs`.

use core::ffi::CStr;
use core::fmt;

use crate::table::{
    parse_u32, parse_u64, MAX_IO_TIMEOUT_MS, MAX_LOGS, OPT_IO_TIMEOUT_MS, OPT_PRIMARY,
    OPT_RESYNC_KBPS,
};

/// Verb `fail`.
pub const VERB_FAIL: &str = "fail";
/// Verb `split`.
pub const VERB_SPLIT: &str = "split";
/// Verb `rejoin`.
pub const VERB_REJOIN: &str = "rejoin";
/// Verb `rejoin_log`.
pub const VERB_REJOIN_LOG: &str = "rejoin_log";
/// Verb `resync`.
pub const VERB_RESYNC: &str = "resync";
/// Verb `trust`.
pub const VERB_TRUST: &str = "trust";
/// Verb `io_timeout_ms` (same spelling as the table option).
pub const VERB_IO_TIMEOUT_MS: &str = OPT_IO_TIMEOUT_MS;
/// Verb `primary` (same spelling as the table option).
pub const VERB_PRIMARY: &str = OPT_PRIMARY;
/// Verb `resync_kbps` (same spelling as the table option).
pub const VERB_RESYNC_KBPS: &str = OPT_RESYNC_KBPS;

/// A parsed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// `fail <i>`: mark leg `i` failed.
    Fail(u8),
    /// `split <i>`: split leg `i` off the mirror.
    Split(u8),
    /// `rejoin <i>`: bring leg `i` back and resync it.
    Rejoin(u8),
    /// `rejoin_log <i>`: log copy `i` was repaired: rewrite it from memory.
    RejoinLog(u8),
    /// `resync`: resynchronise everything.
    Resync,
    /// `io_timeout_ms <ms>`: set the I/O timeout (0 = none).
    IoTimeoutMs(u32),
    /// `primary <i>`: set the preferred read leg.
    Primary(u8),
    /// `resync_kbps <n>`: set the resync throttle (0 = unlimited).
    ResyncKbps(u32),
    /// `trust <i>`: no leg is known to hold the newest data (log lost or
    /// corrupt): the operator names leg `i`; everything is resynced from it.
    Trust(u8),
}

impl Message {
    /// The verb word of this message.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Fail(_) => VERB_FAIL,
            Self::Split(_) => VERB_SPLIT,
            Self::Rejoin(_) => VERB_REJOIN,
            Self::RejoinLog(_) => VERB_REJOIN_LOG,
            Self::Resync => VERB_RESYNC,
            Self::IoTimeoutMs(_) => VERB_IO_TIMEOUT_MS,
            Self::Primary(_) => VERB_PRIMARY,
            Self::ResyncKbps(_) => VERB_RESYNC_KBPS,
            Self::Trust(_) => VERB_TRUST,
        }
    }
}

/// Ways a message can be rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError<'a> {
    /// No words at all.
    Empty,
    /// The first word is not a known verb.
    UnknownVerb(&'a str),
    /// The verb needs an argument and none was given.
    MissingArgument(&'a str),
    /// Words after the verb's arguments.
    ExtraArguments {
        /// The verb.
        verb: &'a str,
        /// The first extra word.
        first: &'a str,
    },
    /// The argument is not a valid decimal number for its type.
    BadNumber {
        /// The verb.
        verb: &'a str,
        /// The offending word.
        word: &'a str,
    },
    /// Leg index not below the number of legs.
    LegOutOfRange {
        /// Requested index.
        index: u64,
        /// Number of leg slots.
        nr_legs: u8,
    },
    /// `io_timeout_ms` above [`MAX_IO_TIMEOUT_MS`].
    TimeoutTooLarge(u64),
    /// Log copy index not below [`MAX_LOGS`].
    LogOutOfRange(u64),
}

impl MessageError<'_> {
    /// A fixed, static sentence describing the kind of error.
    pub fn reason(&self) -> &'static CStr {
        match self {
            Self::Empty => c"empty message",
            Self::UnknownVerb(_) => c"unknown message",
            Self::MissingArgument(_) => c"message is missing its argument",
            Self::ExtraArguments { .. } => c"too many message arguments",
            Self::BadNumber { .. } => c"invalid number in message",
            Self::LegOutOfRange { .. } => c"leg index out of range",
            Self::TimeoutTooLarge(_) => c"io_timeout_ms too large",
            Self::LogOutOfRange(_) => c"log copy index out of range",
        }
    }
}

impl fmt::Display for MessageError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("empty message"),
            Self::UnknownVerb(v) => write!(f, "unknown message '{v}'"),
            Self::MissingArgument(v) => write!(f, "message '{v}' is missing its argument"),
            Self::ExtraArguments { verb, first } => {
                write!(f, "message '{verb}': unexpected extra argument '{first}'")
            }
            Self::BadNumber { verb, word } => {
                write!(
                    f,
                    "message '{verb}': '{word}' is not a valid decimal number"
                )
            }
            Self::LegOutOfRange { index, nr_legs } => {
                write!(f, "leg {index} out of range: mirror has {nr_legs} legs")
            }
            Self::LogOutOfRange(i) => {
                write!(f, "log copy {i} out of range: at most {MAX_LOGS} copies")
            }
            Self::TimeoutTooLarge(v) => write!(
                f,
                "io_timeout_ms {v} is too large: maximum {MAX_IO_TIMEOUT_MS}"
            ),
        }
    }
}

/// Parses message words for a mirror with `nr_legs` leg slots.
pub fn parse_message<'a>(args: &[&'a str], nr_legs: u8) -> Result<Message, MessageError<'a>> {
    let (&verb, rest) = args.split_first().ok_or(MessageError::Empty)?;
    let takes_arg = match verb {
        VERB_RESYNC => false,
        VERB_FAIL | VERB_SPLIT | VERB_REJOIN | VERB_REJOIN_LOG | VERB_IO_TIMEOUT_MS
        | VERB_PRIMARY | VERB_RESYNC_KBPS | VERB_TRUST => true,
        _ => return Err(MessageError::UnknownVerb(verb)),
    };
    if !takes_arg {
        return match rest.first() {
            None => Ok(Message::Resync),
            Some(&first) => Err(MessageError::ExtraArguments { verb, first }),
        };
    }
    let (&word, rest) = rest
        .split_first()
        .ok_or(MessageError::MissingArgument(verb))?;
    if let Some(&first) = rest.first() {
        return Err(MessageError::ExtraArguments { verb, first });
    }
    let bad = MessageError::BadNumber { verb, word };
    let leg = || -> Result<u8, MessageError<'a>> {
        let v = parse_u64(word).ok_or(bad)?;
        match u8::try_from(v) {
            Ok(i) if i < nr_legs => Ok(i),
            _ => Err(MessageError::LegOutOfRange { index: v, nr_legs }),
        }
    };
    Ok(match verb {
        VERB_FAIL => Message::Fail(leg()?),
        VERB_SPLIT => Message::Split(leg()?),
        VERB_REJOIN => Message::Rejoin(leg()?),
        VERB_PRIMARY => Message::Primary(leg()?),
        VERB_TRUST => Message::Trust(leg()?),
        VERB_REJOIN_LOG => {
            let v = parse_u64(word).ok_or(bad)?;
            match u8::try_from(v) {
                Ok(i) if usize::from(i) < MAX_LOGS => Message::RejoinLog(i),
                _ => return Err(MessageError::LogOutOfRange(v)),
            }
        }
        VERB_IO_TIMEOUT_MS => {
            let v = parse_u64(word).ok_or(bad)?;
            match u32::try_from(v) {
                Ok(ms) if ms <= MAX_IO_TIMEOUT_MS => Message::IoTimeoutMs(ms),
                _ => return Err(MessageError::TimeoutTooLarge(v)),
            }
        }
        _ => Message::ResyncKbps(parse_u32(word).ok_or(bad)?),
    })
}

/// Writes `m` as message words separated by single spaces, e.g. `fail 1`.
pub fn format_message(m: &Message, w: &mut impl fmt::Write) -> fmt::Result {
    w.write_str(m.verb())?;
    match *m {
        Message::Fail(i)
        | Message::Split(i)
        | Message::Rejoin(i)
        | Message::RejoinLog(i)
        | Message::Primary(i)
        | Message::Trust(i) => {
            write!(w, " {i}")
        }
        Message::IoTimeoutMs(v) | Message::ResyncKbps(v) => write!(w, " {v}"),
        Message::Resync => Ok(()),
    }
}
