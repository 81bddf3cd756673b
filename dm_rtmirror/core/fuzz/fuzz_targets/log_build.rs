//! Log copies built with the encoders from a structured input (headers of any generation,
//! uuid, geometry and leg states in either slot; version 1 or 2; bitmap blocks missing,
//! foreign or older; then bytes flipped and the copy truncated), plus raw and unreadable
//! copies, 0 to 9 of them: the decoders and `activate_copies` keep their invariants, and a
//! single intact copy activates to its own header and bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmirror_core_fuzz::{check_log_input, LogInput};

fuzz_target!(|input: LogInput| {
    check_log_input(&input);
});
