//! Arbitrary bytes as a log copy (version 1 or 2): the header, bitmap block and version 1
//! decoders never panic, and whatever decodes re-encodes to the same bytes; activation over
//! the copy alone, next to an unreadable, blank or identical copy, never panics and keeps
//! its documented invariants. The geometry is read from the copy's first header when in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmirror_core::log_format::HEADER_BYTES;
use rtmirror_core_fuzz::{check_activation, check_decoders, want_from_raw};

fuzz_target!(|data: &[u8]| {
    let blank = vec![0u8; 2 * HEADER_BYTES];
    for bound in [false, true] {
        let want = want_from_raw(data, bound);
        if !bound {
            check_decoders(data, &want);
        }
        check_activation(&want, &[Some(data)]);
        check_activation(&want, &[Some(data), None]);
        check_activation(&want, &[Some(&blank), Some(data)]);
        check_activation(&want, &[Some(data), Some(data)]);
    }
});
