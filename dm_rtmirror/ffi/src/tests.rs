//! The C functions called from Rust the way C calls them: raw pointers,
//! caller buffers, `NULL`s, bad input, and differential checks against
//! `rtmirror_core` (the output is what the kernel's formatter prints, and the
//! errors are the kernel's messages).

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

use proptest::prelude::*;
use rtmirror_core::log_format;
use rtmirror_core::message::parse_message;
use rtmirror_core::status::{parse_status, LegState, LogState};
use rtmirror_core::table::{
    format_table, parse_table, TableConfig, TableError, DEFAULT_REGION_SIZE, MAX_LEGS, MAX_LOGS,
};

use crate::cbuf::{self, ErrBuf, Words};
use crate::message::{rtm_message_format, RtmMsgVerb};
use crate::sizes::{rtm_log_bytes_needed, rtm_max_regions_for, rtm_nr_regions};
use crate::status::{
    rtm_status_parse, RtmHealth, RtmLegState, RtmLogState, RtmStatus, RtmSyncAction,
};
use crate::table::{
    rtm_table_format, rtm_table_validate, RtmTableParams, RTM_TABLE_ALLOW_MISSING,
    RTM_TABLE_LOG_UUID, RTM_TABLE_NOSYNC, RTM_TABLE_PRIMARY,
};
use crate::*;

const UUID: [u8; 16] = [
    0x3f, 0x2a, 0x9c, 0x1e, 0x5b, 0x7d, 0x4e, 0x60, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18,
];
const UUID_HEX: &str = "3f2a9c1e5b7d4e60a1b2c3d4e5f60718";

/// Bytes a buffer is filled with before a call, to see what was written.
const POISON: u8 = 0xa5;

/// Table parameters with the device strings they point to.
struct Table {
    // Owns the strings `p` points to (a CString's bytes do not move with it).
    _strings: Vec<CString>,
    p: RtmTableParams,
}

fn zero_params() -> RtmTableParams {
    RtmTableParams {
        nr_legs: 0,
        legs: [null(); RTM_MAX_LEGS],
        nr_logs: 0,
        logs: [null(); RTM_MAX_LOGS],
        region_size: 0,
        io_timeout_ms: 0,
        primary: 0,
        resync_kbps: 0,
        flags: 0,
        log_uuid: [0; RTM_LOG_UUID_BYTES],
    }
}

/// Parameters for the given legs and logs (`None`: absent); any bytes.
fn table_bytes(legs: &[Option<&[u8]>], logs: &[Option<&[u8]>]) -> Table {
    let mut strings = Vec::new();
    let mut p = zero_params();
    p.nr_legs = legs.len() as u32;
    p.nr_logs = logs.len() as u32;
    let mut ptr = |s: &Option<&[u8]>| match s {
        None => null(),
        Some(b) => {
            let c = CString::new(b.to_vec()).unwrap();
            let ptr = c.as_ptr();
            strings.push(c);
            ptr
        }
    };
    for (slot, s) in p.legs.iter_mut().zip(legs) {
        *slot = ptr(s);
    }
    for (slot, s) in p.logs.iter_mut().zip(logs) {
        *slot = ptr(s);
    }
    Table {
        _strings: strings,
        p,
    }
}

fn borrow(v: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
    v.iter().map(|s| s.as_deref()).collect()
}

fn table(legs: &[Option<&str>], logs: &[Option<&str>]) -> Table {
    let b = |v: &[Option<&str>]| -> Vec<Option<Vec<u8>>> {
        v.iter().map(|s| s.map(|s| s.as_bytes().to_vec())).collect()
    };
    let (legs, logs) = (b(legs), b(logs));
    table_bytes(&borrow(&legs), &borrow(&logs))
}

/// What a string-producing call returned.
#[derive(Debug)]
struct Out {
    code: c_int,
    /// The NUL-terminated text in the buffer (empty for no buffer).
    text: String,
    /// `*written`.
    written: usize,
    /// The NUL-terminated error text.
    err: String,
}

/// The NUL-terminated text at the start of `buf`; `buf` must contain a NUL.
fn c_text(buf: &[u8]) -> String {
    CStr::from_bytes_until_nul(buf)
        .expect("output is NUL-terminated")
        .to_str()
        .expect("output is UTF-8")
        .to_owned()
}

/// Calls `f(buf, len, written, err, err_len)` with a poisoned buffer of
/// `len` bytes (`None`: a NULL buffer with length 0).
fn call(
    len: Option<usize>,
    f: impl FnOnce(*mut c_char, usize, *mut usize, *mut c_char, usize) -> c_int,
) -> Out {
    let mut buf = vec![POISON; len.unwrap_or(0)];
    let mut err = [POISON; RTM_ERRMSG_SIZE];
    let mut written = usize::MAX;
    let ptr = match len {
        None => null_mut(),
        Some(_) => buf.as_mut_ptr().cast(),
    };
    let code = f(
        ptr,
        buf.len(),
        &mut written,
        err.as_mut_ptr().cast(),
        err.len(),
    );
    let text = if buf.is_empty() {
        String::new()
    } else {
        c_text(&buf)
    };
    if code == RTM_OK {
        assert_eq!(written, text.len(), "written is the length without the NUL");
    } else {
        assert_eq!(written, 0, "written is 0 after a failure");
    }
    Out {
        code,
        text,
        written,
        err: c_text(&err),
    }
}

fn table_format_len(p: &RtmTableParams, len: Option<usize>) -> Out {
    call(len, |buf, len, written, err, err_len| {
        // SAFETY: `p` and its strings are live; the buffers are distinct and
        // of the given lengths.
        unsafe { rtm_table_format(p, buf, len, written, err, err_len) }
    })
}

fn table_format(p: &RtmTableParams) -> Out {
    table_format_len(p, Some(4096))
}

/// The formatted line, which must be accepted.
fn table_ok(p: &RtmTableParams) -> String {
    let out = table_format(p);
    assert_eq!(out.code, RTM_OK, "{out:?}");
    assert_eq!(out.err, "", "the error buffer is emptied on success");
    out.text
}

/// The error of a refused table.
fn table_err(p: &RtmTableParams) -> (c_int, String) {
    let out = table_format(p);
    assert!(out.code < 0, "{out:?}");
    assert_eq!(out.text, "", "nothing is written on failure");
    (out.code, out.err)
}

fn validate(line: &[u8]) -> (c_int, String) {
    let line = CString::new(line).unwrap();
    let mut err = [POISON; RTM_ERRMSG_SIZE];
    // SAFETY: a NUL-terminated string and a distinct buffer of its length.
    let code = unsafe { rtm_table_validate(line.as_ptr(), err.as_mut_ptr().cast(), err.len()) };
    (code, c_text(&err))
}

fn status_parse(line: &[u8]) -> (c_int, RtmStatus, String) {
    let line = CString::new(line).unwrap();
    let mut out = MaybeUninit::<RtmStatus>::uninit();
    let mut err = [POISON; RTM_ERRMSG_SIZE];
    // SAFETY: a NUL-terminated string, an output valid for a write and a
    // distinct buffer of its length.
    let code = unsafe {
        out.as_mut_ptr()
            .cast::<u8>()
            .write_bytes(0xff, size_of::<RtmStatus>());
        rtm_status_parse(
            line.as_ptr(),
            out.as_mut_ptr(),
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    // SAFETY: rtm_status_parse writes `*out` whenever `out` is not NULL.
    (code, unsafe { out.assume_init() }, c_text(&err))
}

fn message_len(verb: u32, arg: u64, nr_legs: u32, len: Option<usize>) -> Out {
    call(len, |buf, len, written, err, err_len| {
        // SAFETY: the buffers are distinct and of the given lengths.
        unsafe { rtm_message_format(verb, arg, nr_legs, buf, len, written, err, err_len) }
    })
}

fn message(verb: RtmMsgVerb, arg: u64, nr_legs: u32) -> Out {
    message_len(verb as u32, arg, nr_legs, Some(64))
}

fn words(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace().collect()
}

/// The full option set of the C test: every option with a non-default value.
fn all_options(t: &mut Table) {
    t.p.region_size = 1024;
    t.p.io_timeout_ms = 15000;
    t.p.primary = 1;
    t.p.resync_kbps = 2048;
    t.p.log_uuid = UUID;
    t.p.flags = RTM_TABLE_PRIMARY | RTM_TABLE_NOSYNC | RTM_TABLE_LOG_UUID | RTM_TABLE_ALLOW_MISSING;
}

// ---------------------------------------------------------------------------
// Table formatting

#[test]
fn table_two_legs_two_logs_with_options() {
    let mut t = table(&[Some("8:16"), Some("8:32")], &[Some("8:48"), Some("8:64")]);
    assert_eq!(table_ok(&t.p), "2 8:16 8:32 2 8:48 8:64 0");
    all_options(&mut t);
    let line = table_ok(&t.p);
    assert_eq!(
        line,
        format!(
            "2 8:16 8:32 2 8:48 8:64 12 region_size 1024 io_timeout_ms 15000 primary 1 \
             resync_kbps 2048 nosync log_uuid {UUID_HEX} allow_missing"
        )
    );
    // Byte-identical to what the kernel prints for the table it parses.
    let cfg = parse_table(&words(&line)).unwrap();
    let mut printed = String::new();
    format_table(&cfg, &mut printed).unwrap();
    assert_eq!(printed, line);
}

#[test]
fn table_absent_leg_and_log_copy() {
    let t = table(&[None, Some("8:32")], &[Some("8:48"), None]);
    assert_eq!(table_ok(&t.p), "2 - 8:32 2 8:48 - 0");
    // "-" is accepted for NULL.
    let t = table(&[Some("-"), Some("8:32")], &[Some("8:48"), Some("-")]);
    assert_eq!(table_ok(&t.p), "2 - 8:32 2 8:48 - 0");
    let t = table(&[Some("8:16"), None, Some("8:48"), None], &[]);
    assert_eq!(table_ok(&t.p), "4 8:16 - 8:48 - 0 0");
}

#[test]
fn table_defaults_are_left_out() {
    let mut t = table(&[Some("a"), Some("b")], &[]);
    t.p.region_size = DEFAULT_REGION_SIZE;
    assert_eq!(table_ok(&t.p), "2 a b 0 0");
    // An explicit primary is kept even when it is the default one.
    t.p.flags = RTM_TABLE_PRIMARY;
    assert_eq!(table_ok(&t.p), "2 a b 0 2 primary 0");
    // Slots past the counts are not read.
    t.p.legs[2] = std::ptr::dangling();
    t.p.logs[0] = std::ptr::dangling();
    assert_eq!(table_ok(&t.p), "2 a b 0 2 primary 0");
}

#[test]
fn table_errors_are_the_kernels() {
    let base = || table(&[Some("8:16"), Some("8:32")], &[Some("8:48")]);
    type Change = Box<dyn Fn(&mut Table)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|t| t.p.region_size = 1000), "region_size 1000 is not a power of two"),
        (Box::new(|t| t.p.region_size = 4), "region_size 4 is too small: minimum 8 sectors"),
        (
            Box::new(|t| t.p.region_size = 1 << 22),
            "region_size 4194304 is too large: maximum 2097152 sectors",
        ),
        (
            Box::new(|t| t.p.io_timeout_ms = 3_600_001),
            "io_timeout_ms 3600001 is too large: maximum 3600000",
        ),
        (Box::new(|t| t.p.nr_legs = 1), "leg count '1' out of range: expected 2 to 4"),
        (Box::new(|t| t.p.nr_legs = 5), "leg count '5' out of range: expected 2 to 4"),
        (
            Box::new(|t| t.p.nr_legs = u32::MAX),
            "leg count '4294967295' out of range: expected 2 to 4",
        ),
        (Box::new(|t| t.p.nr_logs = 3), "log count '3' out of range: expected 0 to 2"),
        (
            Box::new(|t| t.p.legs = [null(); RTM_MAX_LEGS]),
            "all legs are '-': at least one must be present",
        ),
        (
            Box::new(|t| t.p.logs[0] = t.p.legs[1]),
            "device '8:32' given more than once",
        ),
        (
            Box::new(|t| {
                t.p.flags = RTM_TABLE_PRIMARY;
                t.p.primary = 2;
            }),
            "primary leg 2 out of range: table has 2 legs",
        ),
        (
            Box::new(|t| {
                t.p.legs[1] = null();
                t.p.flags = RTM_TABLE_PRIMARY;
                t.p.primary = 1;
            }),
            "primary leg 1 is absent ('-')",
        ),
        (
            Box::new(|t| t.p.flags = RTM_TABLE_LOG_UUID),
            "log_uuid '00000000000000000000000000000000': expected 32 lowercase hex digits, not all zero",
        ),
        (Box::new(|t| t.p.flags = 1 << 7), "unknown table flags 0x80"),
    ];
    for (change, reason) in cases {
        let mut t = base();
        change(&mut t);
        assert_eq!(table_err(&t.p), (RTM_EINVAL, reason.to_owned()));
    }
}

#[test]
fn table_bad_device_strings() {
    for (dev, reason) in [
        (&b""[..], "invalid device '': must be non-empty without whitespace or control characters"),
        (
            b"8:16 8:32",
            "invalid device '8:16 8:32': must be non-empty without whitespace or control characters",
        ),
        (
            b"a\tb",
            "invalid device 'a\tb': must be non-empty without whitespace or control characters",
        ),
        (b"\xff\xfe", "leg 1: device name is not valid UTF-8"),
    ] {
        let t = table_bytes(&[Some(b"8:16"), Some(dev)], &[]);
        assert_eq!(table_err(&t.p), (RTM_EINVAL, reason.to_owned()), "{dev:?}");
    }
    let t = table_bytes(&[Some(b"8:16"), Some(b"8:32")], &[Some(b"\xc3")]);
    assert_eq!(
        table_err(&t.p),
        (
            RTM_EINVAL,
            "log 0: device name is not valid UTF-8".to_owned()
        )
    );
}

#[test]
fn table_long_device_names() {
    let long = format!("/dev/disk/by-id/{}", "x".repeat(3000));
    let t = table(&[Some(&long), Some("8:32")], &[]);
    let needed = table_format_len(&t.p, None).code;
    assert_eq!(needed as usize, format!("2 {long} 8:32 0 0").len() + 1);
    let out = table_format_len(&t.p, Some(needed as usize));
    assert_eq!(out.code, RTM_OK);
    assert_eq!(out.text, format!("2 {long} 8:32 0 0"));
}

#[test]
fn table_buffer_sizes() {
    let t = table(&[Some("8:16"), Some("8:32")], &[Some("8:48")]);
    let line = "2 8:16 8:32 1 8:48 0";
    let needed = (line.len() + 1) as c_int;
    // Size query.
    let out = table_format_len(&t.p, None);
    assert_eq!((out.code, out.err.as_str()), (needed, ""));
    // Too small by one, and empty: the size needed, "" in the buffer.
    for len in [line.len(), 1, 0] {
        let out = table_format_len(&t.p, Some(len));
        assert_eq!(out.code, needed, "len {len}");
        assert_eq!(out.text, "");
        if len > 0 {
            assert_eq!(out.err, format!("buffer too small: {needed} bytes needed"));
        }
    }
    // Exactly enough.
    let out = table_format_len(&t.p, Some(line.len() + 1));
    assert_eq!(
        (out.code, out.text.as_str(), out.written),
        (RTM_OK, line, line.len())
    );
    // An invalid table is reported as such, whatever the buffer.
    let mut bad = table(&[Some("8:16"), Some("8:32")], &[]);
    bad.p.region_size = 3;
    for len in [None, Some(0), Some(4), Some(100)] {
        assert_eq!(table_format_len(&bad.p, len).code, RTM_EINVAL);
    }
}

#[test]
fn table_null_pointers() {
    let t = table(&[Some("8:16"), Some("8:32")], &[]);
    let out = call(Some(64), |buf, len, written, err, err_len| {
        // SAFETY: a NULL `p` is allowed; the buffers are valid.
        unsafe { rtm_table_format(null(), buf, len, written, err, err_len) }
    });
    assert_eq!(
        (out.code, out.err.as_str()),
        (RTM_EFAULT, "table parameters are NULL")
    );
    // A NULL buffer with a length.
    let mut err = [POISON; 64];
    // SAFETY: a NULL buffer with a length must be refused, not written.
    let code = unsafe {
        rtm_table_format(
            &t.p,
            null_mut(),
            10,
            null_mut(),
            err.as_mut_ptr().cast(),
            64,
        )
    };
    assert_eq!(code, RTM_EFAULT);
    assert_eq!(
        c_text(&err),
        "output buffer is NULL but its length is not 0"
    );
    // No `written`, no error buffer: fine.
    let mut buf = [POISON; 64];
    // SAFETY: valid buffer; NULL optional outputs.
    let code =
        unsafe { rtm_table_format(&t.p, buf.as_mut_ptr().cast(), 64, null_mut(), null_mut(), 0) };
    assert_eq!(code, RTM_OK);
    assert_eq!(c_text(&buf), "2 8:16 8:32 0 0");
    // SAFETY: as above, with an error buffer of length 0 (not written).
    let code = unsafe {
        rtm_table_format(
            null(),
            buf.as_mut_ptr().cast(),
            64,
            null_mut(),
            err.as_mut_ptr().cast(),
            0,
        )
    };
    assert_eq!(code, RTM_EFAULT);
    // A length no buffer can have is refused before the buffer is touched.
    // SAFETY: the length is checked before the pointer is used.
    let code = unsafe {
        rtm_table_format(
            &t.p,
            buf.as_mut_ptr().cast(),
            usize::MAX,
            null_mut(),
            null_mut(),
            0,
        )
    };
    assert_eq!(code, RTM_EINVAL);
}

#[test]
fn error_messages_are_cut_to_fit() {
    // "invalid device 'é…" cut inside the two-byte 'é' drops the whole character.
    let t = table(&[Some("8:16"), Some("é x")], &[]);
    let full = "invalid device 'é x': must be non-empty without whitespace or control characters";
    for len in 1..=full.len() + 2 {
        let mut err = vec![POISON; len];
        // SAFETY: valid parameters; a size query with an error buffer of `len`.
        let code = unsafe {
            rtm_table_format(
                &t.p,
                null_mut(),
                0,
                null_mut(),
                err.as_mut_ptr().cast(),
                len,
            )
        };
        assert_eq!(code, RTM_EINVAL);
        let text = c_text(&err);
        assert!(
            full.starts_with(&text) && text.len() < len,
            "{len}: {text:?}"
        );
        assert!(
            text.len() + 4 >= len.min(full.len() + 1),
            "{len}: cut too short: {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Table validation

#[test]
fn validate_lines() {
    for line in [
        "2 /dev/sdb /dev/sdc 2 /dev/sdd /dev/sde 0",
        "2 - /dev/sdc 0 2 region_size 1024",
        "2 8:16 8:32 0 4 io_timeout_ms 15000 primary 1",
        "2 8:16 8:32 2 8:48 - 2 log_uuid 3f2a9c1e5b7d4e60a1b2c3d4e5f60718",
        "2 PARTLABEL=leg-a PARTLABEL=leg-b 2 PARTLABEL=log-a PARTLABEL=log-b 1 allow_missing\n",
        // Not canonical (option order), but accepted.
        "2 a b 0 4 primary 1 region_size 16",
    ] {
        assert_eq!(validate(line.as_bytes()), (RTM_OK, String::new()), "{line}");
    }
    for (line, reason) in [
        ("", "missing leg count"),
        (
            "2 a b 0 2 region_size 1000",
            "region_size 1000 is not a power of two",
        ),
        ("2 a a 0 0", "device 'a' given more than once"),
        ("2 a b 0 1 frobnicate", "unknown option 'frobnicate'"),
        (
            "2 a b 0 0 extra",
            "unexpected argument 'extra' after the 0 optional argument words",
        ),
    ] {
        assert_eq!(
            validate(line.as_bytes()),
            (RTM_EINVAL, reason.to_owned()),
            "{line}"
        );
    }
    assert_eq!(
        validate(b"2 \xff b 0 0"),
        (RTM_EINVAL, "table is not valid UTF-8".to_owned())
    );
    // Too many words: the kernel's reason when the words read decide it.
    let many = vec!["x"; cbuf::MAX_WORDS + 1].join(" ");
    assert_eq!(
        validate(many.as_bytes()),
        (
            RTM_EINVAL,
            "leg count 'x' is not a decimal number: expected 2 to 4".to_owned()
        )
    );
    let many = format!("2 a b 0 0 {}", vec!["x"; cbuf::MAX_WORDS].join(" "));
    assert_eq!(
        validate(many.as_bytes()),
        (
            RTM_EINVAL,
            "unexpected argument 'x' after the 0 optional argument words".to_owned()
        )
    );
    let many = format!("2 a b 0 40 {}", vec!["nosync"; 40].join(" "));
    assert_eq!(
        validate(many.as_bytes()),
        (
            RTM_EINVAL,
            format!("table has more than {} words", cbuf::MAX_WORDS)
        )
    );
    // SAFETY: NULL is allowed for both.
    let code = unsafe { rtm_table_validate(null(), null_mut(), 0) };
    assert_eq!(code, RTM_EFAULT);
}

#[test]
fn word_capacity_exceeds_any_table() {
    // Every option set: the most option words a valid table can have.
    let full = TableConfig {
        nr_legs: MAX_LEGS as u8,
        legs: [Some("a"); MAX_LEGS],
        nr_logs: MAX_LOGS as u8,
        logs: [Some("b"); MAX_LOGS],
        region_size: 8,
        io_timeout_ms: 1,
        primary: 0,
        primary_explicit: true,
        resync_kbps: 1,
        nosync: true,
        log_uuid: Some(UUID),
        allow_missing: true,
    };
    let max_words = 3 + MAX_LEGS + MAX_LOGS + full.opt_word_count();
    assert!(cbuf::MAX_WORDS > max_words, "{max_words}");
}

// ---------------------------------------------------------------------------
// Status

#[test]
fn status_healthy() {
    let (code, s, err) = status_parse(b"2 AA 1024/1024 2 AA healthy idle\n");
    assert_eq!((code, err.as_str()), (RTM_OK, ""));
    assert_eq!(s.nr_legs, 2);
    assert_eq!(
        s.legs,
        [
            RtmLegState::InSync,
            RtmLegState::InSync,
            RtmLegState::None,
            RtmLegState::None
        ]
    );
    assert_eq!(c_text(&s.leg_letters.map(|c| c as u8)), "AA");
    assert_eq!(s.nr_logs, 2);
    assert_eq!(s.logs, [RtmLogState::Alive, RtmLogState::Alive]);
    assert_eq!(c_text(&s.log_letters.map(|c| c as u8)), "AA");
    assert_eq!((s.in_sync_regions, s.total_regions), (1024, 1024));
    assert_eq!(
        (s.health, s.sync_action),
        (RtmHealth::Healthy, RtmSyncAction::Idle)
    );
}

#[test]
fn status_degraded() {
    let (code, s, _) = status_parse(b"4 IRSM 120/128 2 FA degraded resync");
    assert_eq!(code, RTM_OK);
    assert_eq!(s.nr_legs, 4);
    assert_eq!(
        s.legs,
        [
            RtmLegState::Inactive,
            RtmLegState::Resyncing,
            RtmLegState::Split,
            RtmLegState::Missing
        ]
    );
    assert_eq!(c_text(&s.leg_letters.map(|c| c as u8)), "IRSM");
    assert_eq!(s.logs, [RtmLogState::Failed, RtmLogState::Alive]);
    assert_eq!((s.in_sync_regions, s.total_regions), (120, 128));
    assert_eq!(
        (s.health, s.sync_action),
        (RtmHealth::Degraded, RtmSyncAction::Resync)
    );

    let (code, s, _) = status_parse(b"2 DM 0/1024 0 - failed idle");
    assert_eq!(code, RTM_OK);
    assert_eq!(s.legs[..2], [RtmLegState::Degraded, RtmLegState::Missing]);
    assert_eq!((s.nr_logs, s.logs), (0, [RtmLogState::None; 2]));
    assert_eq!(c_text(&s.log_letters.map(|c| c as u8)), "");
    assert_eq!(s.health, RtmHealth::Failed);
}

#[test]
fn status_errors() {
    for (line, reason) in [
        (&b""[..], "status line ends before leg count"),
        (b"2 AX 1/1 0 - healthy idle", "invalid leg state letter 'X'"),
        (
            b"2 AA 2/1 0 - healthy idle",
            "in-sync regions 2 exceed total 1",
        ),
        (
            b"2 AA 1/1 0 - healthy idle more",
            "unexpected trailing field 'more'",
        ),
        (b"5 AAAAA 1/1 0 - healthy idle", "leg count 5 exceeds 4"),
        (b"2 AA 1/1 0 - fine idle", "invalid health 'fine'"),
        (
            b"2 A\xff 1/1 0 - healthy idle",
            "status line is not valid UTF-8",
        ),
    ] {
        let (code, s, err) = status_parse(line);
        assert_eq!((code, err.as_str()), (RTM_EINVAL, reason), "{line:?}");
        assert_eq!(s, RtmStatus::EMPTY, "zeroed on error");
    }
    let mut out = MaybeUninit::<RtmStatus>::uninit();
    let line = c"2 AA 1/1 0 - healthy idle";
    // SAFETY: NULL line with a valid output, then a valid line with a NULL output.
    unsafe {
        assert_eq!(
            rtm_status_parse(null(), out.as_mut_ptr(), null_mut(), 0),
            RTM_EFAULT
        );
        assert_eq!(out.assume_init(), RtmStatus::EMPTY);
        assert_eq!(
            rtm_status_parse(line.as_ptr(), null_mut(), null_mut(), 0),
            RTM_EFAULT
        );
    }
}

// ---------------------------------------------------------------------------
// Messages

#[test]
fn messages() {
    use RtmMsgVerb::*;
    for (verb, arg, text) in [
        (Fail, 1, "fail 1"),
        (Split, 0, "split 0"),
        (Rejoin, 1, "rejoin 1"),
        (RejoinLog, 1, "rejoin_log 1"),
        (Resync, 0, "resync"),
        (IoTimeoutMs, 5000, "io_timeout_ms 5000"),
        (IoTimeoutMs, 0, "io_timeout_ms 0"),
        (Primary, 1, "primary 1"),
        (ResyncKbps, 4096, "resync_kbps 4096"),
        (Trust, 0, "trust 0"),
    ] {
        let out = message(verb, arg, 2);
        assert_eq!(
            (out.code, out.text.as_str(), out.err.as_str()),
            (RTM_OK, text, "")
        );
    }
    assert_eq!(message(Fail, 3, 4).text, "fail 3");
}

#[test]
fn message_errors() {
    use RtmMsgVerb::*;
    for (verb, arg, nr_legs, reason) in [
        (Fail as u32, 2, 2, "leg 2 out of range: mirror has 2 legs"),
        (
            Trust as u32,
            u64::MAX,
            2,
            "leg 18446744073709551615 out of range: mirror has 2 legs",
        ),
        (
            RejoinLog as u32,
            2,
            2,
            "log copy 2 out of range: at most 2 copies",
        ),
        (
            Resync as u32,
            5,
            2,
            "message 'resync': unexpected extra argument '5'",
        ),
        (
            IoTimeoutMs as u32,
            3_600_001,
            2,
            "io_timeout_ms 3600001 is too large: maximum 3600000",
        ),
        (
            ResyncKbps as u32,
            1 << 32,
            2,
            "message 'resync_kbps': '4294967296' is not a valid decimal number",
        ),
        (0, 0, 2, "unknown message verb code 0"),
        (99, 0, 2, "unknown message verb code 99"),
        (Fail as u32, 0, 1, "nr_legs 1 out of range: expected 2 to 4"),
        (Fail as u32, 0, 5, "nr_legs 5 out of range: expected 2 to 4"),
        (
            Fail as u32,
            0,
            258,
            "nr_legs 258 out of range: expected 2 to 4",
        ),
    ] {
        let out = message_len(verb, arg, nr_legs, Some(64));
        assert_eq!(
            (out.code, out.err.as_str(), out.text.as_str()),
            (RTM_EINVAL, reason, "")
        );
    }
}

#[test]
fn message_buffers() {
    let verb = RtmMsgVerb::IoTimeoutMs as u32;
    assert_eq!(message_len(verb, 5000, 2, None).code, 19);
    let out = message_len(verb, 5000, 2, Some(18));
    assert_eq!((out.code, out.text.as_str()), (19, ""));
    let out = message_len(verb, 5000, 2, Some(19));
    assert_eq!(
        (out.code, out.text.as_str(), out.written),
        (RTM_OK, "io_timeout_ms 5000", 18)
    );
    // SAFETY: a NULL buffer with a length must be refused, not written.
    let code = unsafe { rtm_message_format(verb, 1, 2, null_mut(), 8, null_mut(), null_mut(), 0) };
    assert_eq!(code, RTM_EFAULT);
}

// ---------------------------------------------------------------------------
// Sizes

fn nr_regions(len: u64, region_size: u64) -> (c_int, u64) {
    let mut n = u64::MAX;
    // SAFETY: a valid output.
    let code = unsafe { rtm_nr_regions(len, region_size, &mut n) };
    (code, n)
}

#[test]
fn sizes() {
    assert_eq!(nr_regions(2_097_152, 0), (RTM_OK, 256));
    assert_eq!(nr_regions(2_097_152, 8192), (RTM_OK, 256));
    assert_eq!(nr_regions(2_097_153, 8192), (RTM_OK, 257));
    assert_eq!(nr_regions(0, 1024), (RTM_OK, 0));
    assert_eq!(nr_regions(u64::MAX, 8), (RTM_OK, 1 << 61));
    for bad in [1, 4, 1000, 1 << 22, u64::MAX] {
        assert_eq!(nr_regions(100, bad), (RTM_EINVAL, 0), "{bad}");
    }
    // SAFETY: NULL must be refused.
    assert_eq!(unsafe { rtm_nr_regions(1, 8, null_mut()) }, RTM_EFAULT);

    // Two header blocks and one bitmap block per 32256 regions.
    assert_eq!(rtm_log_bytes_needed(0), 2 * 4096);
    assert_eq!(rtm_log_bytes_needed(1), 3 * 4096);
    assert_eq!(rtm_log_bytes_needed(256), 3 * 4096);
    for n in [0, 1, 100, 32256, 32257, 1 << 32, u64::MAX] {
        assert_eq!(rtm_log_bytes_needed(n), log_format::log_bytes_needed(n));
        assert_eq!(rtm_max_regions_for(n), log_format::max_regions_for(n));
    }
    assert_eq!(rtm_max_regions_for(rtm_log_bytes_needed(256)), 32256);
}

#[test]
fn err_buf_clamps_lengths() {
    let mut buf = [POISON; 8];
    // SAFETY: the buffer is valid for 8 bytes; the helper only writes what the
    // message needs, so an overstated length is not reached here.
    let mut err = unsafe { ErrBuf::new(buf.as_mut_ptr().cast(), 8) };
    err.set("abcdefghij");
    assert_eq!(err.text(), "abcdefg");
    assert_eq!(
        Words::split("a  b\tc\n").unwrap().as_slice(),
        ["a", "b", "c"]
    );
    assert!(Words::split("a b").unwrap().joined_eq("a b"));
    assert!(!Words::split("a b").unwrap().joined_eq("a  b"));
}

// ---------------------------------------------------------------------------
// Properties

/// Material for valid parameters.
#[derive(Debug, Clone)]
struct Valid {
    nr_legs: usize,
    leg_present: [bool; MAX_LEGS],
    nr_logs: usize,
    log_present: [bool; MAX_LOGS],
    region_size: u64,
    io_timeout_ms: u32,
    primary: Option<usize>,
    resync_kbps: u32,
    nosync: bool,
    log_uuid: Option<[u8; 16]>,
    allow_missing: bool,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        2..=MAX_LEGS,
        any::<[bool; MAX_LEGS]>(),
        0..=MAX_LOGS,
        any::<[bool; MAX_LOGS]>(),
        prop_oneof![Just(0u64), (3u32..=21).prop_map(|s| 1u64 << s)],
        prop_oneof![Just(0u32), 0..=RTM_MAX_IO_TIMEOUT_MS],
        proptest::option::of(0..MAX_LEGS),
        prop_oneof![Just(0u32), any::<u32>()],
        any::<bool>(),
        proptest::option::of(any::<[u8; 16]>().prop_filter("not zero", |u| *u != [0; 16])),
        any::<bool>(),
    )
        .prop_map(
            |(
                nr_legs,
                mut leg_present,
                nr_logs,
                log_present,
                region_size,
                io_timeout_ms,
                primary,
                resync_kbps,
                nosync,
                log_uuid,
                allow_missing,
            )| {
                // The primary (or leg 0) is present, so some leg is.
                let primary = primary.map(|p| p % nr_legs);
                leg_present[primary.unwrap_or(0)] = true;
                Valid {
                    nr_legs,
                    leg_present,
                    nr_logs,
                    log_present,
                    region_size,
                    io_timeout_ms,
                    primary,
                    resync_kbps,
                    nosync,
                    log_uuid,
                    allow_missing,
                }
            },
        )
}

/// Device names: `major:minor` as lvm2 passes them, distinct per slot.
const LEG_NAMES: [&str; MAX_LEGS] = ["8:16", "8:32", "253:7", "259:1048575"];
const LOG_NAMES: [&str; MAX_LOGS] = ["8:48", "252:0"];

impl Valid {
    fn params(&self) -> Table {
        let legs: Vec<Option<&str>> = (0..self.nr_legs)
            .map(|i| self.leg_present[i].then_some(LEG_NAMES[i]))
            .collect();
        let logs: Vec<Option<&str>> = (0..self.nr_logs)
            .map(|i| self.log_present[i].then_some(LOG_NAMES[i]))
            .collect();
        let mut t = table(&legs, &logs);
        t.p.region_size = self.region_size;
        t.p.io_timeout_ms = self.io_timeout_ms;
        t.p.resync_kbps = self.resync_kbps;
        if let Some(p) = self.primary {
            t.p.flags |= RTM_TABLE_PRIMARY;
            t.p.primary = p as u32;
        }
        if self.nosync {
            t.p.flags |= RTM_TABLE_NOSYNC;
        }
        if let Some(u) = self.log_uuid {
            t.p.flags |= RTM_TABLE_LOG_UUID;
            t.p.log_uuid = u;
        }
        if self.allow_missing {
            t.p.flags |= RTM_TABLE_ALLOW_MISSING;
        }
        t
    }

    /// The configuration the kernel holds for this table.
    fn cfg(&self) -> TableConfig<'static> {
        let mut legs = [None; MAX_LEGS];
        for i in 0..self.nr_legs {
            legs[i] = self.leg_present[i].then_some(LEG_NAMES[i]);
        }
        let mut logs = [None; MAX_LOGS];
        for i in 0..self.nr_logs {
            logs[i] = self.log_present[i].then_some(LOG_NAMES[i]);
        }
        let first_present = legs.iter().position(Option::is_some).unwrap();
        TableConfig {
            nr_legs: self.nr_legs as u8,
            legs,
            nr_logs: self.nr_logs as u8,
            logs,
            region_size: if self.region_size == 0 {
                DEFAULT_REGION_SIZE
            } else {
                self.region_size
            },
            io_timeout_ms: self.io_timeout_ms,
            primary: self.primary.unwrap_or(first_present) as u8,
            primary_explicit: self.primary.is_some(),
            resync_kbps: self.resync_kbps,
            nosync: self.nosync,
            log_uuid: self.log_uuid,
            allow_missing: self.allow_missing,
        }
    }
}

/// A device string that may be anything, valid or not.
fn any_device() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(prop_oneof![
        4 => Just(b"8:16".to_vec()),
        4 => Just(b"8:32".to_vec()),
        2 => Just(b"8:48".to_vec()),
        1 => Just(b"-".to_vec()),
        1 => Just(Vec::new()),
        1 => Just(b"a b".to_vec()),
        1 => Just(b"\xff".to_vec()),
        2 => "[a-z0-9:/=-]{1,12}".prop_map(String::into_bytes),
    ])
}

/// A number that is often valid, sometimes not.
fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 0u32..10, any::<u32>()]
}

/// Arbitrary parameters: anything C could pass (with valid pointers).
#[derive(Debug, Clone)]
struct Arbitrary {
    nr_legs: u32,
    legs: [Option<Vec<u8>>; MAX_LEGS],
    nr_logs: u32,
    logs: [Option<Vec<u8>>; MAX_LOGS],
    region_size: u64,
    io_timeout_ms: u32,
    primary: u32,
    resync_kbps: u32,
    flags: u32,
    log_uuid: [u8; 16],
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    (
        prop_oneof![8 => 2u32..=4, 1 => 0u32..8, 1 => any::<u32>()],
        [any_device(), any_device(), any_device(), any_device()],
        prop_oneof![8 => 0u32..=2, 1 => any::<u32>()],
        [any_device(), any_device()],
        prop_oneof![Just(0u64), (0u32..64).prop_map(|s| 1u64 << s), any::<u64>()],
        prop_oneof![
            any_u32(),
            Just(RTM_MAX_IO_TIMEOUT_MS),
            Just(RTM_MAX_IO_TIMEOUT_MS + 1)
        ],
        any_u32(),
        any_u32(),
        prop_oneof![8 => 0u32..16, 1 => any::<u32>()],
        prop_oneof![Just([0u8; 16]), any::<[u8; 16]>()],
    )
        .prop_map(
            |(
                nr_legs,
                legs,
                nr_logs,
                logs,
                region_size,
                io_timeout_ms,
                primary,
                resync_kbps,
                flags,
                log_uuid,
            )| {
                Arbitrary {
                    nr_legs,
                    legs,
                    nr_logs,
                    logs,
                    region_size,
                    io_timeout_ms,
                    primary,
                    resync_kbps,
                    flags,
                    log_uuid,
                }
            },
        )
}

impl Arbitrary {
    fn params(&self) -> Table {
        let mut t = table_bytes(&borrow(&self.legs), &borrow(&self.logs));
        t.p.nr_legs = self.nr_legs;
        t.p.nr_logs = self.nr_logs;
        t.p.region_size = self.region_size;
        t.p.io_timeout_ms = self.io_timeout_ms;
        t.p.primary = self.primary;
        t.p.resync_kbps = self.resync_kbps;
        t.p.flags = self.flags;
        t.p.log_uuid = self.log_uuid;
        t
    }

    /// The line a person would type for these parameters, written
    /// independently of the library; `None` where the library must refuse
    /// the parameters before the grammar is asked (flags, UTF-8).
    fn line(&self) -> Option<Vec<String>> {
        if self.flags & !0xf != 0 {
            return None;
        }
        let dev = |d: &Option<Vec<u8>>| -> Option<String> {
            match d {
                None => Some("-".into()),
                Some(b) => String::from_utf8(b.clone()).ok(),
            }
        };
        let mut w = vec![self.nr_legs.to_string()];
        if (2..=4).contains(&self.nr_legs) {
            for d in &self.legs[..self.nr_legs as usize] {
                w.push(dev(d)?);
            }
        }
        w.push(self.nr_logs.to_string());
        if self.nr_logs <= 2 {
            for d in &self.logs[..self.nr_logs as usize] {
                w.push(dev(d)?);
            }
        }
        let mut o: Vec<String> = Vec::new();
        if self.region_size != 0 && self.region_size != 8192 {
            o.extend(["region_size".into(), self.region_size.to_string()]);
        }
        if self.io_timeout_ms != 0 {
            o.extend(["io_timeout_ms".into(), self.io_timeout_ms.to_string()]);
        }
        if self.flags & 1 != 0 {
            o.extend(["primary".into(), self.primary.to_string()]);
        }
        if self.resync_kbps != 0 {
            o.extend(["resync_kbps".into(), self.resync_kbps.to_string()]);
        }
        if self.flags & 2 != 0 {
            o.push("nosync".into());
        }
        if self.flags & 4 != 0 {
            let mut hex = String::new();
            for b in self.log_uuid {
                write!(hex, "{b:02x}").unwrap();
            }
            o.extend(["log_uuid".into(), hex]);
        }
        if self.flags & 8 != 0 {
            o.push("allow_missing".into());
        }
        w.push(o.len().to_string());
        w.extend(o);
        Some(w)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Valid parameters give exactly what the kernel prints for them.
    #[test]
    fn valid_params_format_like_the_kernel(v in valid()) {
        let t = v.params();
        let line = table_ok(&t.p);
        let cfg = v.cfg();
        let mut printed = String::new();
        format_table(&cfg, &mut printed).unwrap();
        prop_assert_eq!(&line, &printed);
        prop_assert_eq!(parse_table(&words(&line)), Ok(cfg));
        prop_assert_eq!(validate(line.as_bytes()), (RTM_OK, String::new()));
    }

    /// Anything is either formatted canonically or refused with the
    /// kernel's reason for the equivalent line.
    #[test]
    fn arbitrary_params_match_the_parser(a in arbitrary(), len in 0usize..160) {
        let t = a.params();
        let out = table_format_len(&t.p, Some(len));
        let Some(words) = a.line() else {
            prop_assert_eq!(out.code, RTM_EINVAL);
            prop_assert!(out.err.starts_with("unknown table flags") || out.err.contains("not valid UTF-8"), "{}", out.err);
            return Ok(());
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match parse_table(&words) {
            Err(e) => {
                prop_assert_eq!(out.code, RTM_EINVAL);
                prop_assert_eq!(&out.err, &e.to_string());
            }
            Ok(cfg) => {
                let mut printed = String::new();
                format_table(&cfg, &mut printed).unwrap();
                prop_assert_eq!(&printed, &words.join(" "), "the library's words are canonical");
                if len > printed.len() {
                    prop_assert_eq!((out.code, &out.text), (RTM_OK, &printed));
                } else {
                    prop_assert_eq!(out.code as usize, printed.len() + 1);
                    prop_assert_eq!(&out.text, "");
                }
            }
        }
    }

    /// Validation agrees with the parser on any text.
    #[test]
    fn validate_matches_the_parser(line in "(([0-9a-z:_ -]{0,8}|2|4|region_size|primary)[ \t]){0,40}") {
        let (code, err) = validate(line.as_bytes());
        let words = words(&line);
        match parse_table(&words) {
            Ok(_) => prop_assert_eq!((code, err.as_str()), (RTM_OK, "")),
            Err(e) if words.len() > cbuf::MAX_WORDS && err.starts_with("table has more than") => {
                prop_assert_eq!(code, RTM_EINVAL);
                prop_assert!(!matches!(e, TableError::BadLegCount(_) | TableError::TrailingArguments { .. }), "{}", e);
            }
            Err(e) => prop_assert_eq!((code, err), (RTM_EINVAL, e.to_string())),
        }
    }

    /// Validation never crashes on bytes.
    #[test]
    fn validate_any_bytes(bytes in proptest::collection::vec(1u8..=255, 0..300)) {
        let (code, _) = validate(&bytes);
        prop_assert!(code == RTM_OK || code == RTM_EINVAL);
    }

    /// Status parsing agrees with the parser.
    #[test]
    fn status_matches_the_parser(
        nl in 0u8..6, legs in "[ARDIMSX]{0,5}", ins in 0u64..20, tot in 0u64..20,
        ng in 0u8..4, logs in "[AFX-]{0,3}", h in "healthy|degraded|failed|bad", a in "idle|resync|x",
    ) {
        let line = format!("{nl} {legs} {ins}/{tot} {ng} {logs} {h} {a}");
        let (code, s, err) = status_parse(line.as_bytes());
        let mut l = [LegState::default(); MAX_LEGS];
        let mut g = [LogState::default(); MAX_LOGS];
        match parse_status(&line, &mut l, &mut g) {
            Err(e) => {
                prop_assert_eq!((code, err), (RTM_EINVAL, e.to_string()));
                prop_assert_eq!(s, RtmStatus::EMPTY);
            }
            Ok(p) => {
                prop_assert_eq!(code, RTM_OK);
                prop_assert_eq!(s.nr_legs, u32::from(p.nr_legs));
                prop_assert_eq!(s.nr_logs, u32::from(p.nr_logs));
                let letters: String = l[..usize::from(p.nr_legs)].iter().map(|s| s.letter()).collect();
                prop_assert_eq!(c_text(&s.leg_letters.map(|c| c as u8)), letters);
                for (i, (&got, &leg)) in s.legs.iter().zip(&l).enumerate() {
                    let want = if i < usize::from(p.nr_legs) { RtmLegState::from(leg) } else { RtmLegState::None };
                    prop_assert_eq!(got, want);
                }
                prop_assert_eq!(s.health, RtmHealth::from(p.health));
                prop_assert_eq!((s.in_sync_regions, s.total_regions), (p.in_sync_regions, p.total_regions));
            }
        }
    }

    /// Messages agree with the parser, and parse back.
    #[test]
    fn messages_match_the_parser(verb in 0u32..12, arg in prop_oneof![0u64..6, any::<u64>()], nr_legs in 2u32..=4) {
        let out = message_len(verb, arg, nr_legs, Some(64));
        let word = ["", "fail", "split", "rejoin", "rejoin_log", "resync", "io_timeout_ms", "primary", "resync_kbps", "trust"]
            .get(verb as usize).copied().unwrap_or("");
        if word.is_empty() {
            prop_assert_eq!(out.code, RTM_EINVAL);
            return Ok(());
        }
        let text = if word == "resync" && arg == 0 { word.to_owned() } else { format!("{word} {arg}") };
        match parse_message(&words(&text), nr_legs as u8) {
            Err(e) => prop_assert_eq!((out.code, out.err), (RTM_EINVAL, e.to_string())),
            Ok(_) => prop_assert_eq!((out.code, out.text), (RTM_OK, text)),
        }
    }
}
