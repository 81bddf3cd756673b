//! Region counts and log sizes, so that lvm2 sizes log volumes the way the
//! kernel checks them.

use core::ffi::c_int;

use rtmirror_core::log_format::{log_bytes_needed, max_regions_for};
use rtmirror_core::table::{parse_table, OPT_REGION_SIZE};

use crate::{RTM_DEFAULT_REGION_SIZE, RTM_EFAULT, RTM_EINVAL, RTM_OK};

/// Whether the table grammar accepts `region_size` (asked of the parser
/// itself, so the rule lives in one place).
fn region_size_valid(region_size: u64) -> bool {
    let mut digits = [0u8; 20];
    let mut arena = crate::cbuf::Arena::new(&mut digits);
    arena
        .text(format_args!("{region_size}"))
        .is_some_and(|word| parse_table(&["2", "a", "b", "0", "2", OPT_REGION_SIZE, word]).is_ok())
}

/// Bytes one log copy needs for `nr_regions` regions (a log device must
/// have at least this many; the kernel refuses a smaller one). Saturates at
/// `UINT64_MAX`.
#[no_mangle]
pub extern "C" fn rtm_log_bytes_needed(nr_regions: u64) -> u64 {
    log_bytes_needed(nr_regions)
}

/// The largest number of regions a log copy of `log_bytes` bytes can hold
/// (0 if not even one), at most `RTM_MAX_REGIONS`.
#[no_mangle]
pub extern "C" fn rtm_max_regions_for(log_bytes: u64) -> u64 {
    max_regions_for(log_bytes)
}

/// The number of regions of a target of `len_sectors` 512-byte sectors
/// with regions of `region_size` sectors (0 for the default), as the kernel
/// counts them: the last region may be partial.
///
/// Returns `RTM_OK` with the count in `*nr_regions`, `RTM_EINVAL` if
/// `region_size` is not one the table accepts (`*nr_regions` is then 0),
/// `RTM_EFAULT` if `nr_regions` is `NULL`.
///
/// # Safety
///
/// `nr_regions` is `NULL` or valid for a write of a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn rtm_nr_regions(
    len_sectors: u64,
    region_size: u64,
    nr_regions: *mut u64,
) -> c_int {
    if nr_regions.is_null() {
        return RTM_EFAULT;
    }
    let region_size = if region_size == 0 {
        RTM_DEFAULT_REGION_SIZE
    } else {
        region_size
    };
    let (count, code) = if region_size_valid(region_size) {
        (len_sectors.div_ceil(region_size), RTM_OK)
    } else {
        (0, RTM_EINVAL)
    };
    // SAFETY: non-NULL and valid for a write per the contract.
    unsafe { nr_regions.write(count) };
    code
}
