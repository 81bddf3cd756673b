//! Messages: `parse_message` never panics for any words and any leg count; a message it
//! accepts formats to words that parse to the same message (and format the same again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmirror_core::message::{format_message, parse_message};
use rtmirror_core_fuzz::{fmt_string, words};

fuzz_target!(|data: &[u8]| {
    let Some((&nr_legs, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let w = words(&text);
    let Ok(m) = parse_message(&w, nr_legs) else {
        return;
    };
    assert_eq!(Some(&m.verb()), w.first(), "verb is not the first word");
    let line = fmt_string(|s| format_message(&m, s));
    let w2 = words(&line);
    assert_eq!(w2.join(" "), line, "formatted message not single-spaced");
    match parse_message(&w2, nr_legs) {
        Ok(m2) => assert_eq!(m, m2, "{line:?} parses to another message"),
        Err(e) => panic!("formatted message {line:?} (from {w:?}) does not parse: {e}"),
    }
    assert_eq!(fmt_string(|s| format_message(&m, s)), line);
});
