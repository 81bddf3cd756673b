// SPDX-License-Identifier: GPL-2.0

//! CRC-32C from the kernel's CRC library (architecture-optimised where the CPU allows).
//!
//! C header: [`include/linux/crc32.h`](srctree/include/linux/crc32.h)

use crate::bindings;

/// Continues a CRC-32C (Castagnoli) over `data` from the register value `crc`.
///
/// Like the C `crc32c()`, this does not invert the value at the start or the end: the
/// conventional CRC-32C of `data` is `!crc32c(!0, data)`.
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes; `crc32c` only reads them and
    // may be called in any context.
    unsafe { bindings::crc32c(crc, data.as_ptr().cast(), data.len()) }
}
