//! `dmsetup message` texts, formatted and checked with the kernel's parser.

use core::ffi::{c_char, c_int};

use rtmirror_core::message::{
    format_message, parse_message, Message, VERB_FAIL, VERB_IO_TIMEOUT_MS, VERB_PRIMARY,
    VERB_REJOIN, VERB_REJOIN_LOG, VERB_RESYNC, VERB_RESYNC_KBPS, VERB_SPLIT, VERB_TRUST,
};
use rtmirror_core::table::{MAX_LEGS, MIN_LEGS};

use crate::cbuf::{emit, out_buf, store, Arena, ErrBuf, Words};
use crate::{RTM_EINVAL, RTM_EPROTO, RTM_OK};

/// Message verbs, for the `verb` argument of `rtm_message_format`.
///
/// The argument is a plain `uint32_t`, so that a value outside the enum is an
/// error rather than undefined behaviour.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmMsgVerb {
    /// `fail <leg>`: detach the leg (Inactive).
    Fail = 1,
    /// `split <leg>`: detach an in-sync leg on purpose, tracking writes.
    Split,
    /// `rejoin <leg>`: bring the leg back and resync it.
    Rejoin,
    /// `rejoin_log <copy>`: a repaired log copy is rewritten from memory.
    RejoinLog,
    /// `resync`: full resync (`arg` must be 0).
    Resync,
    /// `io_timeout_ms <ms>`: set the I/O timeout (0 for none).
    IoTimeoutMs,
    /// `primary <leg>`: set the leg reads prefer.
    Primary,
    /// `resync_kbps <n>`: set the resync throttle (0 for unlimited).
    ResyncKbps,
    /// `trust <leg>`: no leg is known newest: take this one, resync all.
    Trust,
}

/// The verbs and their words.
const VERBS: [(RtmMsgVerb, &str); 9] = [
    (RtmMsgVerb::Fail, VERB_FAIL),
    (RtmMsgVerb::Split, VERB_SPLIT),
    (RtmMsgVerb::Rejoin, VERB_REJOIN),
    (RtmMsgVerb::RejoinLog, VERB_REJOIN_LOG),
    (RtmMsgVerb::Resync, VERB_RESYNC),
    (RtmMsgVerb::IoTimeoutMs, VERB_IO_TIMEOUT_MS),
    (RtmMsgVerb::Primary, VERB_PRIMARY),
    (RtmMsgVerb::ResyncKbps, VERB_RESYNC_KBPS),
    (RtmMsgVerb::Trust, VERB_TRUST),
];

/// The words of the message, as a user would type them.
fn message_words<'a>(
    verb: u32,
    arg: u64,
    arena: &mut Arena<'a>,
    err: &mut ErrBuf<'_>,
) -> Result<Words<'a>, c_int> {
    let Some(&(v, word)) = VERBS.iter().find(|(v, _)| *v as u32 == verb) else {
        return Err(err.fail(RTM_EINVAL, format_args!("unknown message verb code {verb}")));
    };
    let internal = |err: &mut ErrBuf<'_>| err.fail(RTM_EPROTO, "internal error: message scratch");
    let mut words = Words::new();
    words.push(word).map_err(|_| internal(err))?;
    // `resync` takes no argument: a non-zero one is passed on, so that the
    // parser refuses it as an extra argument.
    if v != RtmMsgVerb::Resync || arg != 0 {
        let arg = arena
            .text(format_args!("{arg}"))
            .ok_or_else(|| internal(err))?;
        words.push(arg).map_err(|_| internal(err))?;
    }
    Ok(words)
}

/// Formats the text of a `dmsetup message` to an `rtmirror` device with
/// `nr_legs` leg slots, e.g. `fail 1`, checked with the kernel's parser
/// (leg indices below `nr_legs`, log copy indices below `RTM_MAX_LOGS`,
/// timeouts up to `RTM_MAX_IO_TIMEOUT_MS`). Whether the message makes sense
/// for the mirror's current state is for the kernel to decide.
///
/// `verb` is an `enum rtm_msg_verb` value; `arg` is its number (leg index,
/// milliseconds, KiB/s), 0 for `RTM_MSG_VERB_RESYNC`.
///
/// Returns:
/// * `RTM_OK`: the text and a NUL are in `buf`; `*written` (if not `NULL`)
///   is its length without the NUL.
/// * a positive value: `buf` is too small (or `NULL` with `len` 0, to ask):
///   the size needed, NUL included.
/// * `RTM_EINVAL`: unknown verb, `nr_legs` outside `RTM_MIN_LEGS` to
///   `RTM_MAX_LEGS`, or an argument the kernel would refuse (`err` says why).
/// * `RTM_EFAULT`: `buf` is `NULL` with `len` not 0.
/// * `RTM_EPROTO`: see its definition.
///
/// `err` (may be `NULL`) receives the reason of a failure, or `""`.
///
/// # Safety
///
/// `buf`, `written` and `err` are `NULL` or valid for writes of `len`, one
/// `size_t` and `err_len` bytes, and do not overlap.
#[no_mangle]
// A C function: the buffers cannot be grouped without a struct nobody needs.
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rtm_message_format(
    verb: u32,
    arg: u64,
    nr_legs: u32,
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
    match format(verb, arg, nr_legs, out, &mut err) {
        Ok(n) => {
            // SAFETY: `written` is NULL or valid per the contract.
            unsafe { store(written, n) };
            RTM_OK
        }
        Err(code) => code,
    }
}

/// Formats, checks and writes the message; returns its length.
fn format(
    verb: u32,
    arg: u64,
    nr_legs: u32,
    out: Option<&mut [u8]>,
    err: &mut ErrBuf<'_>,
) -> Result<usize, c_int> {
    let nr_legs = match u8::try_from(nr_legs) {
        Ok(n) if (MIN_LEGS..=MAX_LEGS).contains(&usize::from(n)) => n,
        _ => {
            return Err(err.fail(
                RTM_EINVAL,
                format_args!("nr_legs {nr_legs} out of range: expected {MIN_LEGS} to {MAX_LEGS}"),
            ))
        }
    };
    let mut scratch = [0u8; 32];
    let mut arena = Arena::new(&mut scratch);
    let words = message_words(verb, arg, &mut arena, err)?;
    let msg = parse_message(words.as_slice(), nr_legs).map_err(|e| err.fail(RTM_EINVAL, e))?;
    let text = emit(out, err, |mut w| format_message(&msg, &mut w))?;
    if !round_trips(text, &msg, nr_legs) || !words.joined_eq(text) {
        return Err(err.fail(
            RTM_EPROTO,
            "internal error: the formatted message does not parse back to the same message",
        ));
    }
    Ok(text.len())
}

/// Whether `text` parses to `msg`.
fn round_trips(text: &str, msg: &Message, nr_legs: u8) -> bool {
    Words::split(text).is_ok_and(|back| parse_message(back.as_slice(), nr_legs).as_ref() == Ok(msg))
}
