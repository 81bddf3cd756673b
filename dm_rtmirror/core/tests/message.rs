//! Unit tests for message parsing.

use rtmirror_core::message::*;

fn w(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn fmt(m: &Message) -> String {
    let mut s = String::new();
    format_message(m, &mut s).unwrap();
    s
}

#[test]
fn valid_messages() {
    let cases = [
        ("fail 1", Message::Fail(1)),
        ("split 0", Message::Split(0)),
        ("rejoin 2", Message::Rejoin(2)),
        ("resync", Message::Resync),
        ("rejoin_log 1", Message::RejoinLog(1)),
        ("io_timeout_ms 3600000", Message::IoTimeoutMs(3_600_000)),
        ("io_timeout_ms 0", Message::IoTimeoutMs(0)),
        ("primary 2", Message::Primary(2)),
        ("trust 2", Message::Trust(2)),
        ("resync_kbps 4294967295", Message::ResyncKbps(u32::MAX)),
    ];
    for (line, m) in cases {
        assert_eq!(parse_message(&w(line), 3), Ok(m), "{line}");
        assert_eq!(fmt(&m), line);
    }
}

#[test]
fn malformed_messages() {
    use MessageError as E;
    type Case = (&'static str, fn(&E<'_>) -> bool, &'static str);
    let cases: &[Case] = &[
        ("", |e| matches!(e, E::Empty), "empty"),
        (
            "explode 1",
            |e| matches!(e, E::UnknownVerb("explode")),
            "unknown message 'explode'",
        ),
        ("FAIL 1", |e| matches!(e, E::UnknownVerb("FAIL")), "'FAIL'"),
        (
            "rejoin_log 2",
            |e| matches!(e, E::LogOutOfRange(2)),
            "log copy 2 out of range",
        ),
        (
            "fail",
            |e| matches!(e, E::MissingArgument("fail")),
            "'fail' is missing",
        ),
        (
            "trust",
            |e| matches!(e, E::MissingArgument("trust")),
            "'trust' is missing",
        ),
        (
            "trust 3",
            |e| matches!(e, E::LegOutOfRange { index: 3, .. }),
            "leg 3 out of range",
        ),
        (
            "trust 0 1",
            |e| {
                matches!(
                    e,
                    E::ExtraArguments {
                        verb: "trust",
                        first: "1"
                    }
                )
            },
            "unexpected extra argument '1'",
        ),
        (
            "primary",
            |e| matches!(e, E::MissingArgument("primary")),
            "'primary'",
        ),
        (
            "resync now",
            |e| {
                matches!(
                    e,
                    E::ExtraArguments {
                        verb: "resync",
                        first: "now"
                    }
                )
            },
            "'now'",
        ),
        (
            "fail 1 2",
            |e| matches!(e, E::ExtraArguments { first: "2", .. }),
            "'2'",
        ),
        (
            "fail x",
            |e| {
                matches!(
                    e,
                    E::BadNumber {
                        verb: "fail",
                        word: "x"
                    }
                )
            },
            "'x'",
        ),
        (
            "split 01",
            |e| matches!(e, E::BadNumber { word: "01", .. }),
            "'01'",
        ),
        (
            "resync_kbps 4294967296",
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
        ),
        (
            "io_timeout_ms -5",
            |e| matches!(e, E::BadNumber { word: "-5", .. }),
            "'-5'",
        ),
        (
            "fail 3",
            |e| {
                matches!(
                    e,
                    E::LegOutOfRange {
                        index: 3,
                        nr_legs: 3
                    }
                )
            },
            "leg 3 out of range: mirror has 3 legs",
        ),
        (
            "rejoin 300",
            |e| matches!(e, E::LegOutOfRange { index: 300, .. }),
            "300",
        ),
        (
            "primary 99999999999",
            |e| matches!(e, E::LegOutOfRange { .. }),
            "99999999999",
        ),
        (
            "io_timeout_ms 3600001",
            |e| matches!(e, E::TimeoutTooLarge(3600001)),
            "3600001",
        ),
        (
            "io_timeout_ms 99999999999",
            |e| matches!(e, E::TimeoutTooLarge(99999999999)),
            "99999999999",
        ),
    ];
    for (line, pred, needle) in cases {
        let e = parse_message(&w(line), 3).unwrap_err();
        assert!(pred(&e), "{line:?}: {e:?}");
        assert!(e.to_string().contains(needle), "{line:?}: {e}");
        assert!(!e.reason().to_str().unwrap().is_empty());
    }
    assert_eq!(
        parse_message(&w("fail 0"), 0),
        Err(MessageError::LegOutOfRange {
            index: 0,
            nr_legs: 0
        })
    );
}
