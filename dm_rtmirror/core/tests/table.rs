//! Unit tests for the table grammar: examples, defaults and one or more
//! concrete bad inputs for every `TableError` variant.

use rtmirror_core::fmtbuf::FmtBuf;
use rtmirror_core::table::*;

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn fmt(cfg: &TableConfig<'_>) -> String {
    let mut s = String::new();
    format_table(cfg, &mut s).unwrap();
    s
}

/// Parses `line`, expects an error matching `pred` whose Display contains
/// `needle`; returns the Display text.
fn bad(line: &str, pred: impl Fn(&TableError<'_>) -> bool, needle: &str) -> String {
    let w = words(line);
    let e = match parse_table(&w) {
        Ok(cfg) => panic!("{line:?} unexpectedly parsed: {cfg:?}"),
        Err(e) => e,
    };
    assert!(pred(&e), "{line:?}: unexpected error {e:?}");
    let text = e.to_string();
    assert!(
        text.contains(needle),
        "{line:?}: display {text:?} lacks {needle:?}"
    );
    let reason = e.reason().to_str().unwrap();
    assert!(
        !reason.is_empty() && !reason.starts_with("rtmirror"),
        "{reason}"
    );
    text
}

#[test]
fn minimal_defaults() {
    let w = words("2 /dev/a /dev/b 0 0");
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.nr_legs, 2);
    assert_eq!(cfg.legs, [Some("/dev/a"), Some("/dev/b"), None, None]);
    assert_eq!(cfg.nr_logs, 0);
    assert_eq!(cfg.logs, [None, None]);
    assert!(!cfg.allow_missing);
    assert_eq!(cfg.region_size, 8192);
    assert_eq!(cfg.io_timeout_ms, 0);
    assert_eq!(cfg.primary, 0);
    assert!(!cfg.primary_explicit);
    assert_eq!(cfg.resync_kbps, 0);
    assert!(!cfg.nosync);
    assert_eq!(fmt(&cfg), "2 /dev/a /dev/b 0 0");
}

#[test]
fn default_primary_is_first_present_leg() {
    let w = words("3 - - 8:32 0 0");
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.primary, 2);
    assert!(!cfg.primary_explicit);
    assert_eq!(fmt(&cfg), "3 - - 8:32 0 0");
}

#[test]
fn full_table_and_canonical_order() {
    let w = words(
        "4 8:0 - 8:32 8:48 2 8:64 8:80 7 nosync resync_kbps 100 primary 2 io_timeout_ms 30000",
    );
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.nr_legs, 4);
    assert_eq!(cfg.legs, [Some("8:0"), None, Some("8:32"), Some("8:48")]);
    assert_eq!(cfg.logs, [Some("8:64"), Some("8:80")]);
    assert_eq!(cfg.primary, 2);
    assert!(cfg.primary_explicit);
    assert_eq!(cfg.io_timeout_ms, 30000);
    assert_eq!(cfg.resync_kbps, 100);
    assert!(cfg.nosync);
    assert_eq!(
        fmt(&cfg),
        "4 8:0 - 8:32 8:48 2 8:64 8:80 7 io_timeout_ms 30000 primary 2 resync_kbps 100 nosync"
    );
    let full = "2 a b 1 l 9 region_size 16 io_timeout_ms 1 primary 1 resync_kbps 4294967295 nosync";
    let w = words(full);
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.region_size, 16);
    assert_eq!(cfg.resync_kbps, u32::MAX);
    assert_eq!(fmt(&cfg), full);
}

#[test]
fn log_uuid_option() {
    let line = "2 a b 2 l m 3 nosync log_uuid 00112233445566778899aabbccddeeff";
    let w = words(line);
    let cfg = parse_table(&w).unwrap();
    assert_eq!(
        cfg.log_uuid,
        Some([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ])
    );
    assert_eq!(fmt(&cfg), line);
    // Canonical order: log_uuid last, whatever the input order.
    let w = words("2 a b 0 5 log_uuid 0000000000000000000000000000000f region_size 16 nosync");
    assert_eq!(
        fmt(&parse_table(&w).unwrap()),
        "2 a b 0 5 region_size 16 nosync log_uuid 0000000000000000000000000000000f"
    );
    assert_eq!(parse_table(&words("2 a b 0 0")).unwrap().log_uuid, None);
    for bad_uuid in [
        "00112233445566778899AABBCCDDEEFF",
        "00112233445566778899aabbccddeef",
        "00112233445566778899aabbccddeeff0",
        "0x112233445566778899aabbccddeeff",
        "00000000000000000000000000000000",
        "0011223344556677-899aabbccddeeff",
    ] {
        let line = format!("2 a b 0 2 log_uuid {bad_uuid}");
        let w = words(&line);
        let e = parse_table(&w).unwrap_err();
        assert_eq!(e, TableError::BadUuid(bad_uuid));
        assert!(e.to_string().contains(bad_uuid));
    }
    let w = words("2 a b 0 1 log_uuid");
    assert_eq!(
        parse_table(&w).unwrap_err(),
        TableError::MissingOptionValue("log_uuid")
    );
    let w = words(
        "2 a b 0 4 log_uuid 00112233445566778899aabbccddeeff log_uuid 00112233445566778899aabbccddeeff",
    );
    assert_eq!(
        parse_table(&w).unwrap_err(),
        TableError::DuplicateOption("log_uuid")
    );
}

#[test]
fn defaults_given_explicitly_are_dropped_except_primary() {
    let w = words("2 a b 0 8 region_size 8192 io_timeout_ms 0 resync_kbps 0 primary 0");
    let cfg = parse_table(&w).unwrap();
    assert_eq!(fmt(&cfg), "2 a b 0 2 primary 0");
}

#[test]
fn boundaries_accepted() {
    for line in [
        "2 a b 0 2 region_size 8",
        "2 a b 0 2 region_size 2097152",
        "2 a b 0 2 io_timeout_ms 3600000",
        "2 a b 0 2 resync_kbps 0",
        "4 a b c d 2 e f 0",
        "2 a - 0 0",
        "2 - a 0 2 primary 1",
    ] {
        let w = words(line);
        assert!(parse_table(&w).is_ok(), "{line}");
    }
}

#[test]
fn format_uses_only_cfg_strings() {
    let w = words("2 /dev/sda - 1 /dev/sdc 0");
    let mut cfg = parse_table(&w).unwrap();
    cfg.legs[0] = Some("8:0");
    cfg.logs[0] = Some("8:32");
    assert_eq!(fmt(&cfg), "2 8:0 - 1 8:32 0");
    let mut buf = [0u8; 64];
    let mut fb = FmtBuf::new(&mut buf);
    format_table(&cfg, &mut fb).unwrap();
    assert_eq!(fb.as_str(), "2 8:0 - 1 8:32 0");
    let mut small = [0u8; 5];
    let mut fb = FmtBuf::new(&mut small);
    assert!(format_table(&cfg, &mut fb).is_err());
}

#[test]
fn number_parser() {
    assert_eq!(parse_u64("0"), Some(0));
    assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
    for w in [
        "",
        "00",
        "01",
        "+1",
        "-1",
        "0x10",
        "1 ",
        " 1",
        "1_000",
        "18446744073709551616",
        "٣",
    ] {
        assert_eq!(parse_u64(w), None, "{w:?}");
    }
    assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
    assert_eq!(parse_u32("4294967296"), None);
}

#[test]
fn malformed_tables() {
    use TableError as E;
    let mut n = 0;
    let mut t = |line: &str, pred: fn(&E<'_>) -> bool, needle: &str| {
        bad(line, pred, needle);
        n += 1;
    };

    // Leg count.
    t("", |e| matches!(e, E::MissingLegCount), "missing leg count");
    t(
        "7 a b c d e f g 0 0",
        |e| matches!(e, E::BadLegCount("7")),
        "leg count '7' out of range: expected 2 to 4",
    );
    t("1 a 0 0", |e| matches!(e, E::BadLegCount("1")), "'1'");
    t(
        "5 a b c d e 0 0",
        |e| matches!(e, E::BadLegCount("5")),
        "'5'",
    );
    t("0 0 0", |e| matches!(e, E::BadLegCount("0")), "'0'");
    t("02 a b 0 0", |e| matches!(e, E::BadLegCount("02")), "'02'");
    t("x a b 0 0", |e| matches!(e, E::BadLegCount("x")), "'x'");
    t("+2 a b 0 0", |e| matches!(e, E::BadLegCount("+2")), "'+2'");
    t(
        "99999999999999999999999 a",
        |e| matches!(e, E::BadLegCount(_)),
        "'99999999999999999999999'",
    );
    // Legs.
    t(
        "3 a b",
        |e| {
            matches!(
                e,
                E::MissingLegs {
                    expected: 3,
                    found: 2
                }
            )
        },
        "expected 3 legs, found only 2",
    );
    t(
        "2",
        |e| matches!(e, E::MissingLegs { found: 0, .. }),
        "found only 0",
    );
    t("2 - - 0 0", |e| matches!(e, E::AllLegsAbsent), "'-'");
    t(
        "4 - - - - 0 0",
        |e| matches!(e, E::AllLegsAbsent),
        "at least one",
    );
    t(
        "2 /dev/a /dev/a 0 0",
        |e| matches!(e, E::DuplicateDevice("/dev/a")),
        "'/dev/a'",
    );
    t(
        "4 a - b a 0 0",
        |e| matches!(e, E::DuplicateDevice("a")),
        "device 'a' given more than once",
    );
    // Logs.
    t("2 a b", |e| matches!(e, E::MissingLogCount), "log count");
    t(
        "2 a b 3 l m n 0",
        |e| matches!(e, E::BadLogCount("3")),
        "log count '3' out of range",
    );
    t("2 a b zz 0", |e| matches!(e, E::BadLogCount("zz")), "'zz'");
    t("2 a b 00 0", |e| matches!(e, E::BadLogCount("00")), "'00'");
    t(
        "2 a b 2 l",
        |e| {
            matches!(
                e,
                E::MissingLogs {
                    expected: 2,
                    found: 1
                }
            )
        },
        "expected 2 logs, found only 1",
    );
    t(
        "2 a b 1 a 0",
        |e| matches!(e, E::DuplicateDevice("a")),
        "'a'",
    );
    t(
        "2 a b 2 l l 0",
        |e| matches!(e, E::DuplicateDevice("l")),
        "'l'",
    );
    // Opt count.
    t("2 a b 0", |e| matches!(e, E::MissingOptCount), "optional");
    t("2 a b 1 l", |e| matches!(e, E::MissingOptCount), "optional");
    t(
        "2 a b 0 x",
        |e| matches!(e, E::BadOptCount("x")),
        "optional argument count 'x'",
    );
    t("2 a b 0 -1", |e| matches!(e, E::BadOptCount("-1")), "'-1'");
    t(
        "2 a b 0 01 nosync",
        |e| matches!(e, E::BadOptCount("01")),
        "'01'",
    );
    t(
        "2 a b 0 2 nosync",
        |e| {
            matches!(
                e,
                E::OptCountMismatch {
                    expected: 2,
                    found: 1
                }
            )
        },
        "expected 2 optional argument words, found only 1",
    );
    t(
        "2 a b 0 18446744073709551615",
        |e| matches!(e, E::OptCountMismatch { .. }),
        "18446744073709551615",
    );
    t(
        "2 a b 0 0 nosync",
        |e| {
            matches!(
                e,
                E::TrailingArguments {
                    expected: 0,
                    first: "nosync"
                }
            )
        },
        "'nosync'",
    );
    t(
        "2 a b 0 1 region_size 16",
        |e| matches!(e, E::TrailingArguments { first: "16", .. }),
        "'16'",
    );
    // Options.
    t(
        "2 a b 0 1 bogus",
        |e| matches!(e, E::UnknownOption("bogus")),
        "unknown option 'bogus'",
    );
    t(
        "2 a b 0 1 NOSYNC",
        |e| matches!(e, E::UnknownOption("NOSYNC")),
        "'NOSYNC'",
    );
    t(
        "2 a b 0 1 region_size",
        |e| matches!(e, E::MissingOptionValue("region_size")),
        "'region_size' is missing its value",
    );
    t(
        "2 a b 0 2 nosync primary",
        |e| matches!(e, E::MissingOptionValue("primary")),
        "'primary'",
    );
    t(
        "2 a b 0 2 nosync nosync",
        |e| matches!(e, E::DuplicateOption("nosync")),
        "'nosync' given more than once",
    );
    t(
        "2 a b 0 4 io_timeout_ms 1 io_timeout_ms 2",
        |e| matches!(e, E::DuplicateOption("io_timeout_ms")),
        "'io_timeout_ms'",
    );
    t(
        "2 a b 0 2 region_size abc",
        |e| {
            matches!(
                e,
                E::BadNumber {
                    option: "region_size",
                    word: "abc"
                }
            )
        },
        "region_size: 'abc'",
    );
    t(
        "2 a b 0 2 resync_kbps 4294967296",
        |e| {
            matches!(
                e,
                E::BadNumber {
                    word: "4294967296",
                    ..
                }
            )
        },
        "'4294967296'",
    );
    t(
        "2 a b 0 2 io_timeout_ms 0x10",
        |e| matches!(e, E::BadNumber { word: "0x10", .. }),
        "'0x10'",
    );
    t(
        "2 a b 0 2 region_size 0016",
        |e| matches!(e, E::BadNumber { word: "0016", .. }),
        "'0016'",
    );
    t(
        "2 a b 0 2 primary 99999999999999999999",
        |e| {
            matches!(
                e,
                E::BadNumber {
                    option: "primary",
                    ..
                }
            )
        },
        "'99999999999999999999'",
    );
    t(
        "2 a b 0 2 region_size 1000",
        |e| matches!(e, E::RegionSizeNotPowerOfTwo(1000)),
        "region_size 1000 is not a power of two",
    );
    t(
        "2 a b 0 2 region_size 0",
        |e| matches!(e, E::RegionSizeNotPowerOfTwo(0)),
        "region_size 0",
    );
    t(
        "2 a b 0 2 region_size 4",
        |e| matches!(e, E::RegionSizeTooSmall(4)),
        "region_size 4 is too small",
    );
    t(
        "2 a b 0 2 region_size 4194304",
        |e| matches!(e, E::RegionSizeTooLarge(4194304)),
        "region_size 4194304 is too large",
    );
    t(
        "2 a b 0 2 io_timeout_ms 3600001",
        |e| matches!(e, E::TimeoutTooLarge(3600001)),
        "io_timeout_ms 3600001",
    );
    t(
        "2 a b 0 2 io_timeout_ms 18446744073709551615",
        |e| matches!(e, E::TimeoutTooLarge(u64::MAX)),
        "18446744073709551615",
    );
    t(
        "2 a b 0 2 primary 2",
        |e| {
            matches!(
                e,
                E::PrimaryOutOfRange {
                    index: 2,
                    nr_legs: 2
                }
            )
        },
        "primary leg 2 out of range: table has 2 legs",
    );
    t(
        "2 a b 0 2 primary 256",
        |e| matches!(e, E::PrimaryOutOfRange { index: 256, .. }),
        "256",
    );
    t(
        "3 a - b 0 2 primary 1",
        |e| matches!(e, E::PrimaryAbsent(1)),
        "primary leg 1 is absent",
    );
    assert!(n >= 30, "only {n} malformed tables");
}

#[test]
fn invalid_device_strings() {
    // Whitespace and empty words cannot come from the kernel's splitter,
    // but host callers could pass them.
    for (args, dev) in [
        (vec!["2", "", "b", "0", "0"], ""),
        (vec!["2", "a b", "c", "0", "0"], "a b"),
        (vec!["2", "a", "b", "1", "l\tm", "0"], "l\tm"),
        (vec!["2", "a", "b", "1", "", "0"], ""),
    ] {
        let e = parse_table(&args).unwrap_err();
        assert_eq!(e, TableError::InvalidDevice(dev));
        assert!(e.to_string().contains(&format!("'{dev}'")));
        assert_eq!(e.reason().to_str().unwrap(), "invalid device name");
    }
}

#[test]
fn reasons_are_static_sentences() {
    let e = TableError::RegionSizeNotPowerOfTwo(1000);
    assert_eq!(e.reason(), c"region_size must be a power of two");
}

#[test]
fn absent_log_copies() {
    let w = words("2 a b 2 - l1 0");
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.log_slots(), &[None, Some("l1")]);
    assert_eq!(fmt(&cfg), "2 a b 2 - l1 0");
    let w = words("2 a - 2 - - 0");
    let cfg = parse_table(&w).unwrap();
    assert_eq!(cfg.log_slots(), &[None, None]);
    assert_eq!(fmt(&cfg), "2 a - 2 - - 0");
}

#[test]
fn allow_missing_option() {
    let w = words("2 a b 2 l0 l1 3 allow_missing region_size 1024");
    let cfg = parse_table(&w).unwrap();
    assert!(cfg.allow_missing);
    // Canonical order: after log_uuid, at the end.
    assert_eq!(fmt(&cfg), "2 a b 2 l0 l1 3 region_size 1024 allow_missing");
    let w = words("2 a b 0 2 allow_missing allow_missing");
    assert_eq!(
        parse_table(&w).unwrap_err(),
        TableError::DuplicateOption("allow_missing")
    );
}
