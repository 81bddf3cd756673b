//! The status (STATUSTYPE_INFO) line, parsed into a C struct.

use core::ffi::{c_char, c_int};

use rtmirror_core::status::{parse_status, Health, LegState, LogState, ParsedStatus, SyncAction};
use rtmirror_core::table::{MAX_LEGS, MAX_LOGS};

use crate::cbuf::{c_arg, CArg, ErrBuf};
use crate::{
    RTM_EFAULT, RTM_EINVAL, RTM_LEG_LETTERS_SIZE, RTM_LOG_LETTERS_SIZE, RTM_MAX_LEGS, RTM_MAX_LOGS,
    RTM_OK,
};

/// State of one leg (one letter of the status line).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmLegState {
    /// Not a leg: slots from `nr_legs` on, or after a failed parse.
    None = 0,
    /// `A`: in sync.
    InSync,
    /// `R`: being resynced.
    Resyncing,
    /// `D`: Degraded (timed out); not used for reads.
    Degraded,
    /// `I`: Inactive (I/O error or `fail`).
    Inactive,
    /// `M`: missing (absent at activation).
    Missing,
    /// `S`: split off.
    Split,
}

impl From<LegState> for RtmLegState {
    fn from(s: LegState) -> Self {
        match s {
            LegState::InSync => Self::InSync,
            LegState::Resyncing => Self::Resyncing,
            LegState::Degraded => Self::Degraded,
            LegState::Inactive => Self::Inactive,
            LegState::Missing => Self::Missing,
            LegState::Split => Self::Split,
        }
    }
}

/// State of one log copy.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmLogState {
    /// Not a log copy: slots from `nr_logs` on, or after a failed parse.
    None = 0,
    /// `A`: alive.
    Alive,
    /// `F`: failed (or absent at activation).
    Failed,
}

impl From<LogState> for RtmLogState {
    fn from(s: LogState) -> Self {
        match s {
            LogState::Alive => Self::Alive,
            LogState::Failed => Self::Failed,
        }
    }
}

/// Overall health of the mirror.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmHealth {
    /// After a failed parse.
    Unknown = 0,
    /// `healthy`: every leg in sync, no region out of sync.
    Healthy,
    /// `degraded`: one good copy of the data at least; still served.
    Degraded,
    /// `failed`: no in-sync leg, or the log was lost: I/O fails until `trust`.
    Failed,
}

impl From<Health> for RtmHealth {
    fn from(h: Health) -> Self {
        match h {
            Health::Healthy => Self::Healthy,
            Health::Degraded => Self::Degraded,
            Health::Failed => Self::Failed,
        }
    }
}

/// What background synchronisation is doing.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmSyncAction {
    /// After a failed parse.
    Unknown = 0,
    /// `idle`: nothing is being copied.
    Idle,
    /// `resync`: out-of-sync regions are being copied.
    Resync,
}

impl From<SyncAction> for RtmSyncAction {
    fn from(a: SyncAction) -> Self {
        match a {
            SyncAction::Idle => Self::Idle,
            SyncAction::Resync => Self::Resync,
        }
    }
}

/// A parsed status line:
/// `<#legs> <leg letters> <in_sync>/<total> <#logs> <log letters> <health> <sync_action>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtmStatus {
    /// Number of legs, at most `RTM_MAX_LEGS`.
    pub nr_legs: u32,
    /// Leg states; `RTM_LEG_STATE_NONE` from `nr_legs` on.
    pub legs: [RtmLegState; RTM_MAX_LEGS],
    /// The leg letters as in the line (`"AR"`), NUL-terminated; `""` for none.
    pub leg_letters: [c_char; RTM_LEG_LETTERS_SIZE],
    /// Number of log copies, at most `RTM_MAX_LOGS`.
    pub nr_logs: u32,
    /// Log copy states; `RTM_LOG_STATE_NONE` from `nr_logs` on.
    pub logs: [RtmLogState; RTM_MAX_LOGS],
    /// The log letters as in the line (`"AF"`), NUL-terminated; `""` when
    /// there is no log (the line shows `-`).
    pub log_letters: [c_char; RTM_LOG_LETTERS_SIZE],
    /// Regions in sync on every leg that receives writes.
    pub in_sync_regions: u64,
    /// Regions in the target.
    pub total_regions: u64,
    /// Overall health, as reported by the kernel.
    pub health: RtmHealth,
    /// Background activity.
    pub sync_action: RtmSyncAction,
}

impl RtmStatus {
    /// What `*out` holds after a failed parse.
    pub(crate) const EMPTY: RtmStatus = RtmStatus {
        nr_legs: 0,
        legs: [RtmLegState::None; RTM_MAX_LEGS],
        leg_letters: [0; RTM_LEG_LETTERS_SIZE],
        nr_logs: 0,
        logs: [RtmLogState::None; RTM_MAX_LOGS],
        log_letters: [0; RTM_LOG_LETTERS_SIZE],
        in_sync_regions: 0,
        total_regions: 0,
        health: RtmHealth::Unknown,
        sync_action: RtmSyncAction::Unknown,
    };

    /// The C view of a parsed line.
    fn new(p: &ParsedStatus, legs: &[LegState; MAX_LEGS], logs: &[LogState; MAX_LOGS]) -> Self {
        let mut s = Self::EMPTY;
        s.nr_legs = p.nr_legs.into();
        s.nr_logs = p.nr_logs.into();
        let used_legs = legs.iter().take(p.nr_legs.into());
        for ((state, letter), &leg) in s.legs.iter_mut().zip(&mut s.leg_letters).zip(used_legs) {
            *state = leg.into();
            *letter = letter_of(leg.letter());
        }
        let used_logs = logs.iter().take(p.nr_logs.into());
        for ((state, letter), &log) in s.logs.iter_mut().zip(&mut s.log_letters).zip(used_logs) {
            *state = log.into();
            *letter = letter_of(log.letter());
        }
        s.in_sync_regions = p.in_sync_regions;
        s.total_regions = p.total_regions;
        s.health = p.health.into();
        s.sync_action = p.sync_action.into();
        s
    }
}

/// A status letter as a C `char` (the letters are ASCII).
fn letter_of(c: char) -> c_char {
    u8::try_from(c).map_or(0, |b| b as c_char)
}

/// Parses an `rtmirror` status line (`dmsetup status` after
/// `<start> <length> rtmirror`), e.g. `2 AA 1024/1024 2 AA healthy idle`,
/// into `*out`.
///
/// Fields may be separated by any whitespace; a trailing newline is fine.
///
/// Returns `RTM_OK` with `*out` filled in; `RTM_EINVAL` if the line is not a
/// valid status line (`err` says why; `*out` is zeroed: counts 0, states
/// `NONE`/`UNKNOWN`); `RTM_EFAULT` if `line` or `out` is `NULL`. `err` (may
/// be `NULL`) receives the reason, or `""`.
///
/// # Safety
///
/// `line` is `NULL` or a NUL-terminated string; `out` is `NULL` or valid for
/// a write of `struct rtm_status`; `err` is `NULL` or valid for writes of
/// `err_len` bytes. No output overlaps an input or another output.
#[no_mangle]
pub unsafe extern "C" fn rtm_status_parse(
    line: *const c_char,
    out: *mut RtmStatus,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: `err` is NULL or valid for `err_len` bytes per the contract.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    if out.is_null() {
        return err.fail(RTM_EFAULT, "status output is NULL");
    }
    let (status, code) = parse(
        // SAFETY: `line` is NULL or a NUL-terminated string per the contract.
        unsafe { c_arg(line) },
        &mut err,
    );
    // SAFETY: `out` is non-NULL and valid for a write per the contract;
    // `write` does not read the old, possibly uninitialised, contents.
    unsafe { out.write(status) };
    code
}

/// The status for `line` and the return code.
fn parse(line: CArg<'_>, err: &mut ErrBuf<'_>) -> (RtmStatus, c_int) {
    let line = match line {
        CArg::Null => {
            return (
                RtmStatus::EMPTY,
                err.fail(RTM_EFAULT, "status line is NULL"),
            )
        }
        CArg::NotUtf8 => {
            let code = err.fail(RTM_EINVAL, "status line is not valid UTF-8");
            return (RtmStatus::EMPTY, code);
        }
        CArg::Str(s) => s,
    };
    let mut legs = [LegState::default(); MAX_LEGS];
    let mut logs = [LogState::default(); MAX_LOGS];
    match parse_status(line, &mut legs, &mut logs) {
        Ok(p) => (RtmStatus::new(&p, &legs, &logs), RTM_OK),
        Err(e) => (RtmStatus::EMPTY, err.fail(RTM_EINVAL, e)),
    }
}
