//! Table lines: `parse_table` never panics on any words; a line it accepts formats to a
//! canonical line that parses to the same config and formats to the same line again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmirror_core::table::{format_table, parse_table};
use rtmirror_core_fuzz::{fmt_string, words};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let w = words(&text);
    let Ok(cfg) = parse_table(&w) else {
        return;
    };
    assert!(
        cfg.leg_slots().iter().any(|l| l.is_some()),
        "no present leg"
    );
    assert!(
        cfg.legs[usize::from(cfg.primary)].is_some(),
        "primary leg absent"
    );
    let line = fmt_string(|s| format_table(&cfg, s));
    let w2 = words(&line);
    assert_eq!(w2.join(" "), line, "canonical line not single-spaced");
    let cfg2 = match parse_table(&w2) {
        Ok(c) => c,
        Err(e) => panic!("canonical line {line:?} (from {w:?}) does not parse: {e}"),
    };
    assert_eq!(
        cfg, cfg2,
        "canonical line {line:?} parses to another config"
    );
    assert_eq!(
        fmt_string(|s| format_table(&cfg2, s)),
        line,
        "format not idempotent"
    );
});
