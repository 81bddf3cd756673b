//! Status lines: `parse_status` never panics; a line it accepts, formatted again with
//! `format_status`, parses to the same values and formats to the same line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmirror_core::status::*;
use rtmirror_core::table::{MAX_LEGS, MAX_LOGS};
use rtmirror_core_fuzz::fmt_string;

fn parse(line: &str) -> Option<(ParsedStatus, [LegState; MAX_LEGS], [LogState; MAX_LOGS])> {
    // Entries past the parsed counts are untouched: prefill them with a marker.
    let mut legs = [LegState::Split; MAX_LEGS];
    let mut logs = [LogState::Failed; MAX_LOGS];
    let p = parse_status(line, &mut legs, &mut logs).ok()?;
    for l in &legs[usize::from(p.nr_legs)..] {
        assert_eq!(*l, LegState::Split, "leg state written past nr_legs");
    }
    for l in &logs[usize::from(p.nr_logs)..] {
        assert_eq!(*l, LogState::Failed, "log state written past nr_logs");
    }
    Some((p, legs, logs))
}

fn format(p: &ParsedStatus, legs: &[LegState], logs: &[LogState]) -> String {
    let info = StatusInfo {
        legs: &legs[..usize::from(p.nr_legs)],
        logs: &logs[..usize::from(p.nr_logs)],
        in_sync_regions: p.in_sync_regions,
        total_regions: p.total_regions,
        health: p.health,
        sync_action: p.sync_action,
    };
    fmt_string(|s| format_status(&info, s))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Some((p, legs, logs)) = parse(&text) else {
        return;
    };
    assert!(p.in_sync_regions <= p.total_regions);
    let line = format(&p, &legs, &logs);
    let Some((p2, legs2, logs2)) = parse(&line) else {
        panic!("formatted status {line:?} (from {text:?}) does not parse");
    };
    assert_eq!(p, p2, "{line:?} parses to other values");
    let (nl, ng) = (usize::from(p.nr_legs), usize::from(p.nr_logs));
    assert_eq!(legs[..nl], legs2[..nl], "{line:?}: other leg states");
    assert_eq!(logs[..ng], logs2[..ng], "{line:?}: other log states");
    assert_eq!(format(&p2, &legs2, &logs2), line, "format not idempotent");
});
