//! Unit tests for the INFO status line.

use rtmirror_core::fmtbuf::FmtBuf;
use rtmirror_core::status::*;

fn fmt(s: &StatusInfo<'_>) -> String {
    let mut out = String::new();
    format_status(s, &mut out).unwrap();
    out
}

fn parse(line: &str) -> Result<(ParsedStatus, Vec<LegState>, Vec<LogState>), StatusError<'_>> {
    let mut legs = [LegState::default(); 4];
    let mut logs = [LogState::default(); 2];
    let p = parse_status(line, &mut legs, &mut logs)?;
    Ok((
        p,
        legs[..usize::from(p.nr_legs)].to_vec(),
        logs[..usize::from(p.nr_logs)].to_vec(),
    ))
}

#[test]
fn examples() {
    use LegState::*;
    let s = StatusInfo {
        legs: &[InSync, InSync],
        logs: &[LogState::Alive, LogState::Alive],
        in_sync_regions: 1024,
        total_regions: 1024,
        health: Health::Healthy,
        sync_action: SyncAction::Idle,
    };
    assert_eq!(fmt(&s), "2 AA 1024/1024 2 AA healthy idle");
    let s = StatusInfo {
        legs: &[InSync, Missing],
        logs: &[],
        in_sync_regions: 0,
        total_regions: 1024,
        health: Health::Degraded,
        sync_action: SyncAction::Idle,
    };
    assert_eq!(fmt(&s), "2 AM 0/1024 0 - degraded idle");
    let (p, legs, logs) = parse("2 AM 0/1024 0 - degraded idle\n").unwrap();
    assert_eq!(legs, [InSync, Missing]);
    assert!(logs.is_empty());
    assert_eq!(
        p,
        ParsedStatus {
            nr_legs: 2,
            nr_logs: 0,
            in_sync_regions: 0,
            total_regions: 1024,
            health: Health::Degraded,
            sync_action: SyncAction::Idle,
        }
    );
    let (_, legs, logs) = parse("4 ARDS 5/9 1 F failed resync").unwrap();
    assert_eq!(legs, [InSync, Resyncing, Degraded, Split]);
    assert_eq!(logs, [LogState::Failed]);
}

#[test]
fn letters_and_words() {
    for (st, c) in LegState::ALL.iter().zip("ARDIMS".chars()) {
        assert_eq!(st.letter(), c);
        assert_eq!(LegState::from_letter(c), Some(*st));
    }
    for (st, c) in LogState::ALL.iter().zip("AF".chars()) {
        assert_eq!(st.letter(), c);
        assert_eq!(LogState::from_letter(c), Some(*st));
    }
    assert_eq!(LegState::from_letter('a'), None);
    assert_eq!(LogState::from_letter('M'), None);
    for h in Health::ALL {
        assert_eq!(Health::from_word(h.word()), Some(h));
    }
    for a in SyncAction::ALL {
        assert_eq!(SyncAction::from_word(a.word()), Some(a));
    }
    assert_eq!(Health::word(Health::Healthy), "healthy");
    assert_eq!(SyncAction::Resync.word(), "resync");
    assert_eq!(Health::from_word("Healthy"), None);
}

#[test]
fn health_rules() {
    use LegState::*;
    assert_eq!(health_of(&[]), Health::Failed);
    assert_eq!(health_of(&[InSync, InSync]), Health::Healthy);
    assert_eq!(health_of(&[InSync, Missing]), Health::Degraded);
    assert_eq!(health_of(&[Resyncing, Missing]), Health::Failed);
    assert_eq!(health_of(&[Split, InSync, InSync]), Health::Degraded);
}

#[test]
fn format_rejects_oversized_and_respects_buffer() {
    let legs = [LegState::InSync; 5];
    let s = StatusInfo {
        legs: &legs,
        logs: &[],
        in_sync_regions: 0,
        total_regions: 0,
        health: Health::Healthy,
        sync_action: SyncAction::Idle,
    };
    assert!(format_status(&s, &mut String::new()).is_err());
    let s = StatusInfo {
        legs: &legs[..2],
        ..s
    };
    let mut buf = [0u8; 10];
    assert!(format_status(&s, &mut FmtBuf::new(&mut buf)).is_err());
}

#[test]
fn malformed_status_lines() {
    use StatusError as E;
    type Case = (&'static str, fn(&E<'_>) -> bool, &'static str);
    let cases: &[Case] = &[
        (
            "",
            |e| matches!(e, E::MissingField("leg count")),
            "leg count",
        ),
        ("x", |e| matches!(e, E::BadNumber { word: "x", .. }), "'x'"),
        ("5 AAAAA", |e| matches!(e, E::TooManyLegs(5)), "5"),
        (
            "2",
            |e| matches!(e, E::MissingField("leg states")),
            "leg states",
        ),
        (
            "2 A 1/1 0 - healthy idle",
            |e| matches!(e, E::CountMismatch { word: "A", .. }),
            "'A'",
        ),
        (
            "2 AAA 1/1 0 - healthy idle",
            |e| matches!(e, E::CountMismatch { .. }),
            "'AAA'",
        ),
        (
            "0 A 1/1 0 - healthy idle",
            |e| matches!(e, E::CountMismatch { .. }),
            "'A'",
        ),
        (
            "2 AX 1/1 0 - healthy idle",
            |e| matches!(e, E::BadLegLetter('X')),
            "'X'",
        ),
        (
            "2 AA 11 0 - healthy idle",
            |e| matches!(e, E::BadRegions("11")),
            "'11'",
        ),
        (
            "2 AA 1/ 0 - healthy idle",
            |e| matches!(e, E::BadNumber { word: "", .. }),
            "''",
        ),
        (
            "2 AA 2/1 0 - healthy idle",
            |e| {
                matches!(
                    e,
                    E::InSyncExceedsTotal {
                        in_sync: 2,
                        total: 1
                    }
                )
            },
            "2",
        ),
        (
            "2 AA 1/1 3 AAA healthy idle",
            |e| matches!(e, E::TooManyLogs(3)),
            "3",
        ),
        (
            "2 AA 1/1 1 Q healthy idle",
            |e| matches!(e, E::BadLogLetter('Q')),
            "'Q'",
        ),
        (
            "2 AA 1/1 1 - healthy idle",
            |e| matches!(e, E::BadLogLetter('-')),
            "'-'",
        ),
        (
            "2 AA 1/1 2 A healthy idle",
            |e| matches!(e, E::CountMismatch { field: "logs", .. }),
            "'A'",
        ),
        (
            "2 AA 1/1 0 - fine idle",
            |e| matches!(e, E::BadHealth("fine")),
            "'fine'",
        ),
        (
            "2 AA 1/1 0 - healthy busy",
            |e| matches!(e, E::BadSyncAction("busy")),
            "'busy'",
        ),
        (
            "2 AA 1/1 0 - healthy",
            |e| matches!(e, E::MissingField("sync action")),
            "sync action",
        ),
        (
            "2 AA 1/1 0 - healthy idle x",
            |e| matches!(e, E::TrailingFields("x")),
            "'x'",
        ),
    ];
    for (line, pred, needle) in cases {
        let e = parse(line).unwrap_err();
        assert!(pred(&e), "{line:?}: {e:?}");
        assert!(e.to_string().contains(needle), "{line:?}: {e}");
        assert!(e
            .reason()
            .to_str()
            .unwrap()
            .starts_with("rtmirror status: "));
    }
}
