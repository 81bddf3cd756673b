// SPDX-License-Identifier: GPL-2.0

//! Device-mapper target `rtmirror`: a mirror across two to four legs (storage subsystems) that
//! keeps running when a leg fails.
//!
//! This file is the kernel shell: it opens devices, moves bios and keeps run-time state.
//! Every decision about the table, status and message grammar lives in `core/` (pure `no_std`
//! Rust that the host tests with `cargo test`), included here module by module.
//!
//! Writes go to every leg in service and complete when all of them did or a leg that missed
//! them is durably out of sync; reads go to the primary leg and fail over. The dirty-region
//! log, resync and I/O timeouts are in the modules below (see docs/architecture.md).

use core::ptr::NonNull;
use kernel::{
    bindings,
    block::bio::{PageBuf, ReqOp},
    device_mapper::{
        Args, DeviceVisitor, DmDev, IterateStop, MapBio, Mapped, Registration, StatusType,
        StatusWriter, TableEvent, Target, TargetSetup,
    },
    new_mutex, new_spinlock_irq,
    prelude::*,
    str::CString,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Mutex, SpinLockIrq,
    },
    workqueue::{
        impl_has_delayed_work, new_delayed_work, DelayedWork, HasDelayedWork, HasWork,
        RawDelayedWorkItem, RawWorkItem, Work, WorkItem, WorkItemPointer,
    },
};

#[path = "core/src/fmtbuf.rs"]
pub mod fmtbuf;
#[path = "core/src/log_format.rs"]
pub mod log_format;
#[path = "core/src/message.rs"]
pub mod message;
#[path = "core/src/region.rs"]
pub mod region;
#[path = "core/src/status.rs"]
pub mod status;
#[path = "core/src/table.rs"]
pub mod table;

mod inflight;
mod io;
mod mirror_log;
mod resync;
mod watchdog;

use inflight::{Globals, TrackSet, DETACHED_IOS};
use message::Message;
use mirror_log::{LogBuffers, Shared};
use status::{health_of, Health, LegState, LogState, StatusInfo, SyncAction};
use table::{TableConfig, MAX_LEGS, MAX_LOGS};

module! {
    type: RtMirrorModule,
    name: "dm_rtmirror",
    authors: ["dm-rtmirror developers"],
    description: "device-mapper real-time mirror target with I/O timeouts and a mirrored log",
    license: "GPL",
}

/// Target version reported to user space (`dmsetup targets`).
const VERSION: [u32; 3] = [0, 2, 0];

/// Largest bio the target handles in one piece, in sectors (512 KiB): bounds the bvec table of
/// a leg bio and, being at most the region size, keeps every bio inside one region.
const MAX_IO_SECTORS: u64 = 1024;

/// Work items of a target; each runs on its own module-wide queue ([`Globals::work_queue`]).
const LOG_WORK: u64 = 0;
const CLEAN_WORK: u64 = 1;
const RESYNC_WORK: u64 = 2;
const RETRY_WORK: u64 = 3;
const WATCHDOG_WORK: u64 = 4;
/// Number of work items of a target.
const NR_WORKS: usize = 5;

/// Period of the lazy cleaner: a region whose writes all completed is cleared in the log once
/// it stayed idle from one pass to the next, so 5 to 10 s after its last write (md's bitmap
/// daemon sleeps 5 s). Shorter means fewer regions to resync after a crash, longer means fewer
/// log writes for data written again and again.
const CLEAN_PASS_MS: u32 = 5000;

/// The module's [`Globals`], set before the target type is registered.
static GLOBALS: Atomic<*mut Globals> = Atomic::new(core::ptr::null_mut());

#[pin_data(PinnedDrop)]
struct RtMirrorModule {
    // Unregistered before the globals are dropped (fields drop in declaration order).
    #[pin]
    registration: Registration<RtMirror>,
    #[pin]
    globals: Globals,
}

impl kernel::InPlaceModule for RtMirrorModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            globals <- Globals::new(),
            registration <- {
                // SAFETY: `globals` is initialised (it comes first) and pinned in the module,
                // which outlives every table (each holds a module reference).
                GLOBALS.store(unsafe { &raw mut (*this.as_ptr()).globals }, Release);
                Registration::new(c"rtmirror", VERSION, module)
            },
        })
    }
}

#[pinned_drop]
impl PinnedDrop for RtMirrorModule {
    fn drop(self: Pin<&mut Self>) {
        // No table exists any more, but bios a table abandoned may still be in flight on a
        // hung device: they use the global bio set, so wait for them.
        let mut warned = false;
        while DETACHED_IOS.load(Acquire) > 0 {
            if !warned {
                pr_warn!("unload waits for I/O given up on a hung device to complete\n");
                warned = true;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(100));
        }
        GLOBALS.store(core::ptr::null_mut(), Release);
    }
}

/// Leg states as stored in an atomic.
fn state_from_u32(v: u32) -> LegState {
    LegState::ALL
        .get(v as usize)
        .copied()
        .unwrap_or(LegState::Inactive)
}

fn state_to_u32(s: LegState) -> u32 {
    LegState::ALL.iter().position(|x| *x == s).unwrap_or(0) as u32
}

struct Leg {
    dev: Option<DmDev>,
    /// Copy of the leg's state in the region bookkeeping, readable without the lock.
    state: Atomic<u32>,
    /// When a Degraded leg is probed next (ms, `ktime_get` clock).
    next_probe_ms: Atomic<i64>,
    /// The leg hangs beyond the timeout but is kept as the last in-sync leg (logged once).
    held_by_timeout: Atomic<bool>,
    /// The last watchdog pass found the leg silent (see `region::confirm_silent`).
    silent_seen: Atomic<bool>,
}

impl Leg {
    fn state(&self) -> LegState {
        state_from_u32(self.state.load(Relaxed))
    }

    fn set_state(&self, s: LegState) {
        self.state.store(state_to_u32(s), Relaxed);
    }
}

/// Outcome of [`RtMirror::change_leg_state`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum LegChange {
    Changed,
    /// The leg was not in one of the expected states (or the index is out of range).
    NotInState,
    /// Refused: the leg is the last in-sync leg.
    LastInSync,
}

/// One rtmirror target (one table line).
#[pin_data(PinnedDrop)]
struct RtMirror {
    // The work items come first: drop cancels them, in this order, and waits for them before
    // anything the work uses is dropped. A work item may kick those declared after it only
    // (watchdog -> resync, log; resync -> clean, log; retry -> log; clean -> log), so none is
    // queued again once cancelled.
    #[pin]
    watchdog_work: DelayedWork<RtMirror, WATCHDOG_WORK>,
    #[pin]
    resync_work: DelayedWork<RtMirror, RESYNC_WORK>,
    #[pin]
    retry_work: DelayedWork<RtMirror, RETRY_WORK>,
    #[pin]
    clean_work: DelayedWork<RtMirror, CLEAN_WORK>,
    #[pin]
    log_work: DelayedWork<RtMirror, LOG_WORK>,
    #[pin]
    event: TableEvent,
    globals: &'static Globals,
    /// In-flight I/O of each device: legs, then log copies.
    tracks: TrackSet,
    name: CString,
    /// First sector of the target in the mapped device, and its length in sectors.
    begin: u64,
    len: u64,
    legs: KVec<Leg>,
    /// Log copies; `None` for a copy absent at activation (`-`, or not found with
    /// `allow_missing`), which counts as failed.
    logs: KVec<Option<DmDev>>,
    region_size: u64,
    nr_regions: u64,
    io_timeout_ms: Atomic<u32>,
    primary: Atomic<u32>,
    primary_explicit: Atomic<bool>,
    resync_kbps: Atomic<u32>,
    nosync: bool,
    /// `log_uuid` of the table: the log copies must carry it.
    log_uuid: Option<[u8; 16]>,
    /// `allow_missing` of the table (kept to print the table back).
    allow_missing: bool,
    /// No valid log copy and not a new log: no leg is known to hold the newest data, so I/O
    /// fails until the operator names one (`trust`).
    untrusted: Atomic<bool>,
    /// A log copy is version 1: the next log write upgrades the copies one at a time.
    log_upgrade: Atomic<bool>,
    /// Largest logical block size of the present legs, in bytes.
    logical_block_size: u32,
    activated: Atomic<bool>,
    suspended: Atomic<bool>,
    /// Bytes copied by resync since activation.
    resync_bytes: Atomic<u64>,
    /// Serialises operator messages, so that checks and state changes they make are atomic.
    #[pin]
    message_lock: Mutex<()>,
    #[pin]
    shared: SpinLockIrq<Shared>,
    #[pin]
    log_bufs: Mutex<LogBuffers>,
    #[pin]
    resync_buf: Mutex<Option<PageBuf>>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<RtMirror, WATCHDOG_WORK> for RtMirror { self.watchdog_work }
    impl HasDelayedWork<RtMirror, RESYNC_WORK> for RtMirror { self.resync_work }
    impl HasDelayedWork<RtMirror, RETRY_WORK> for RtMirror { self.retry_work }
    impl HasDelayedWork<RtMirror, CLEAN_WORK> for RtMirror { self.clean_work }
    impl HasDelayedWork<RtMirror, LOG_WORK> for RtMirror { self.log_work }
}

#[pinned_drop]
impl PinnedDrop for RtMirror {
    fn drop(self: Pin<&mut Self>) {
        // Before any field is dropped, in declaration order (see the struct).
        self.cancel_work::<WATCHDOG_WORK>();
        self.cancel_work::<RESYNC_WORK>();
        self.cancel_work::<RETRY_WORK>();
        self.cancel_work::<CLEAN_WORK>();
        self.cancel_work::<LOG_WORK>();
    }
}

/// The target as its work items see it: the pointer type of their [`WorkItem`] impls. The
/// target is owned by device-mapper, not reference counted; it cancels its work items before
/// it is dropped instead.
///
/// # Invariants
///
/// Points to a live, pinned `RtMirror`: only made for a queued or running work item of that
/// target, which cancels them all (waiting for running ones) before anything of it is dropped.
pub(crate) struct Running(NonNull<RtMirror>);

// SAFETY: `RtMirror` is `Sync`; the pointer is only used for shared access.
unsafe impl Send for Running {}

impl core::ops::Deref for Running {
    type Target = RtMirror;

    fn deref(&self) -> &RtMirror {
        // SAFETY: The target is alive while a `Running` exists (type invariant).
        unsafe { self.0.as_ref() }
    }
}

// SAFETY: The `work_struct` given to the closure is a field of the live target (type
// invariant), which stays valid until the work ran or was cancelled: drop cancels it.
unsafe impl<const ID: u64> RawWorkItem<ID> for Running
where
    RtMirror: WorkItem<ID, Pointer = Running> + HasDelayedWork<RtMirror, ID>,
{
    type EnqueueOutput = ();

    unsafe fn __enqueue<F>(self, queue_work_on: F)
    where
        F: FnOnce(*mut bindings::work_struct) -> bool,
    {
        // SAFETY: `self.0` points to a live target (type invariant).
        let work = unsafe { Work::raw_get(RtMirror::raw_get_work(self.0.as_ptr())) };
        // Nothing to give back when the work was pending already: `Running` owns nothing.
        queue_work_on(work);
    }
}

// SAFETY: `HasDelayedWork` says the `work_struct` is the `work` of a `delayed_work` field of
// the target, valid as long as it.
unsafe impl<const ID: u64> RawDelayedWorkItem<ID> for Running where
    RtMirror: WorkItem<ID, Pointer = Running> + HasDelayedWork<RtMirror, ID>
{
}

// SAFETY: The work fields are initialised by `DelayedWork::new` (`new_delayed_work!`), which
// installs this `run`; `__enqueue` and `RtMirror::kick*` queue only those fields.
unsafe impl<const ID: u64> WorkItemPointer<ID> for Running
where
    RtMirror: WorkItem<ID, Pointer = Running> + HasDelayedWork<RtMirror, ID>,
{
    unsafe extern "C" fn run(ptr: *mut bindings::work_struct) {
        // SAFETY: The workqueue passes the `work_struct` of a `Work<RtMirror, ID>` field of a
        // target, which is alive: drop cancels the work and waits for this call.
        let target = unsafe { RtMirror::work_container_of(ptr.cast::<Work<RtMirror, ID>>()) };
        // SAFETY: `work_container_of` returns the non-null address of that live target.
        let this = Running(unsafe { NonNull::new_unchecked(target) });
        <RtMirror as WorkItem<ID>>::run(this);
    }
}

impl RtMirror {
    /// The `delayed_work` of work item `ID`.
    fn dwork<const ID: u64>(&self) -> *mut bindings::delayed_work
    where
        Self: HasDelayedWork<Self, ID>,
    {
        let this = core::ptr::from_ref(self).cast_mut();
        // SAFETY: `this` points to a valid target; `HasDelayedWork` says the `work_struct` is
        // the `work` field of a `delayed_work`.
        unsafe {
            let work = Work::raw_get(<Self as HasWork<Self, ID>>::raw_get_work(this));
            kernel::container_of!(work, bindings::delayed_work, work)
        }
    }

    /// Runs work item `ID` as soon as possible (pulling in a delayed run); any context.
    pub(crate) fn kick<const ID: u64>(&self)
    where
        Self: HasDelayedWork<Self, ID>,
    {
        let wq = self.globals.work_queue(ID);
        // SAFETY: The work is initialised and pinned in the target, which cancels it before it
        // is dropped; the queue lives as long as the module.
        unsafe {
            bindings::mod_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                wq,
                self.dwork::<ID>(),
                0,
            )
        };
    }

    /// Runs work item `ID` in `ms` milliseconds unless it is queued already; any context.
    pub(crate) fn kick_after<const ID: u64>(&self, ms: u32)
    where
        Self: HasDelayedWork<Self, ID>,
    {
        let wq = self.globals.work_queue(ID);
        // SAFETY: As in `kick`; `__msecs_to_jiffies` has no preconditions.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                wq,
                self.dwork::<ID>(),
                bindings::__msecs_to_jiffies(ms),
            )
        };
    }

    /// Cancels a queued run of work item `ID` and waits for a running one; it may be queued
    /// again afterwards.
    pub(crate) fn cancel_work<const ID: u64>(&self)
    where
        Self: HasDelayedWork<Self, ID>,
    {
        // SAFETY: The work is initialised (by the constructor, before the target exists).
        unsafe { bindings::cancel_delayed_work_sync(self.dwork::<ID>()) };
    }
}

/// Rejects a table: the short reason goes to device-mapper (which logs it with the device
/// name), the detail to the kernel log.
fn reject(
    setup: &mut TargetSetup<'_>,
    reason: &'static CStr,
    detail: core::fmt::Arguments<'_>,
) -> Error {
    pr_err!("{}: {}\n", setup.device_name(), detail);
    setup.set_error(reason);
    EINVAL
}

impl RtMirror {
    fn dev_name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    /// Legs that receive writes: present and in sync or being resynced.
    fn writable_legs(&self) -> impl Iterator<Item = (usize, &DmDev)> + '_ {
        self.legs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match (&l.dev, l.state()) {
                (Some(d), LegState::InSync | LegState::Resyncing) => Some((i, d)),
                _ => None,
            })
    }

    fn in_sync_legs(&self) -> impl Iterator<Item = (usize, &DmDev)> + '_ {
        self.legs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match (&l.dev, l.state()) {
                (Some(d), LegState::InSync) => Some((i, d)),
                _ => None,
            })
    }

    /// Bios given up on device `dev` (leg, or `nr_legs + i` for log copy `i`) and still out.
    fn late_ios(&self, dev: usize) -> u32 {
        self.tracks
            .get(dev)
            .map_or(0, |t| t.abandoned.load(Relaxed))
    }

    fn globals(&self) -> &Globals {
        self.globals
    }

    /// The leg a read goes to, among those not in `tried` (bit per leg): while regions are out
    /// of sync, only the resync source (the leg known to hold the newest data); else the
    /// primary when in sync, else the first in-sync leg.
    fn read_leg(&self, tried: u32) -> Option<usize> {
        let untried = |i: usize| tried & (1 << i) == 0;
        let source = {
            let shared = self.shared.lock();
            if shared.state.out_of_sync_regions() > 0 {
                Some(shared.source)
            } else {
                None
            }
        };
        if let Some(source) = source {
            return source.filter(|&i| {
                untried(i)
                    && self
                        .legs
                        .get(i)
                        .is_some_and(|l| l.dev.is_some() && l.state() == LegState::InSync)
            });
        }
        let p = self.primary.load(Relaxed) as usize;
        if let Some(l) = self.legs.get(p) {
            if untried(p) && l.dev.is_some() && l.state() == LegState::InSync {
                return Some(p);
            }
        }
        self.in_sync_legs().map(|(i, _)| i).find(|&i| untried(i))
    }

    /// Moves leg `leg` to state `to` if it is in one of the states `from`, in the region
    /// bookkeeping (the next log generation records it) and in the lock-free copy. Returns
    /// whether it changed; raises an event and schedules the log write if so.
    fn set_leg_state(&self, leg: usize, to: LegState, from: &[LegState]) -> bool {
        self.change_leg_state(leg, to, from, false) == LegChange::Changed
    }

    /// Like [`Self::set_leg_state`]; with `keep_last_in_sync`, refuses to take the last
    /// in-sync leg out of service (checked under the same lock as the change, so two changes
    /// racing cannot both pass the check).
    fn change_leg_state(
        &self,
        leg: usize,
        to: LegState,
        from: &[LegState],
        keep_last_in_sync: bool,
    ) -> LegChange {
        let mut shared = self.shared.lock();
        let Some(cur) = shared.state.legs().get(leg).copied() else {
            return LegChange::NotInState;
        };
        if !from.contains(&cur) {
            return LegChange::NotInState;
        }
        if keep_last_in_sync && !region::timeout_may_suspend(shared.state.legs(), leg) {
            return LegChange::LastInSync;
        }
        if shared
            .regions()
            .and_then(|mut r| r.set_leg_state(leg, to))
            .is_err()
        {
            return LegChange::NotInState;
        }
        if let Some(l) = self.legs.get(leg) {
            l.set_state(to);
        }
        // The resync source left: reads and resync use another in-sync leg, if any.
        if shared.source == Some(leg) && to != LegState::InSync {
            shared.source = self
                .legs
                .iter()
                .position(|l| l.dev.is_some() && l.state() == LegState::InSync);
        }
        drop(shared);
        self.event.raise();
        self.kick::<LOG_WORK>();
        LegChange::Changed
    }

    fn leg_states(&self) -> [LegState; MAX_LEGS] {
        let mut out = [LegState::Missing; MAX_LEGS];
        for (o, l) in out.iter_mut().zip(self.legs.iter()) {
            *o = l.state();
        }
        out
    }

    fn handle_message(&self, msg: Message) -> Result {
        let _guard = self.message_lock.lock();
        match msg {
            Message::IoTimeoutMs(ms) => {
                self.io_timeout_ms.store(ms, Relaxed);
                if ms > 0 {
                    self.kick::<WATCHDOG_WORK>();
                }
                pr_info!("{}: io_timeout_ms is now {}\n", self.dev_name(), ms);
            }
            Message::ResyncKbps(kbps) => self.resync_kbps.store(kbps, Relaxed),
            Message::Primary(i) => {
                let i = usize::from(i);
                match self.legs.get(i) {
                    Some(l) if l.state() == LegState::InSync => {
                        self.primary.store(i as u32, Relaxed);
                        self.primary_explicit.store(true, Relaxed);
                        pr_info!("{}: primary leg is now {}\n", self.dev_name(), i);
                    }
                    _ => {
                        pr_warn!("{}: primary {}: leg is not in sync\n", self.dev_name(), i);
                        return Err(EINVAL);
                    }
                }
            }
            Message::Fail(i) => {
                let i = usize::from(i);
                let from = [LegState::InSync, LegState::Resyncing];
                self.detach_by_operator("fail", i, LegState::Inactive, &from)?;
                pr_warn!(
                    "{}: leg {} failed by operator: detached (Inactive)\n",
                    self.dev_name(),
                    i
                );
            }
            Message::Split(i) => return self.split_leg(usize::from(i)),
            Message::Rejoin(i) => return self.rejoin_leg(usize::from(i)),
            Message::Resync => return self.resync_all(),
            Message::RejoinLog(i) => return self.rejoin_log(usize::from(i)),
            Message::Trust(i) => return self.trust_leg(usize::from(i)),
        }
        Ok(())
    }

    /// `fail`/`split` (`verb`): takes leg `i` out of service by the operator, from one of the
    /// states `from`, never the last in-sync leg; a refusal says why in the kernel log.
    fn detach_by_operator(&self, verb: &str, i: usize, to: LegState, from: &[LegState]) -> Result {
        match self.change_leg_state(i, to, from, true) {
            LegChange::Changed => Ok(()),
            LegChange::LastInSync => {
                pr_warn!(
                    "{}: {} {}: refused, it would leave no in-sync leg\n",
                    self.dev_name(),
                    verb,
                    i
                );
                Err(EBUSY)
            }
            LegChange::NotInState => {
                pr_warn!("{}: {} {}: leg is not in sync\n", self.dev_name(), verb, i);
                Err(EINVAL)
            }
        }
    }

    /// `split <i>`: detaches an in-sync leg on purpose; the regions written from now on are
    /// tracked, so `rejoin <i>` copies only those.
    fn split_leg(&self, i: usize) -> Result {
        self.detach_by_operator("split", i, LegState::Split, &[LegState::InSync])?;
        pr_info!(
            "{}: leg {} split off: regions written from now on are tracked for rejoin\n",
            self.dev_name(),
            i
        );
        Ok(())
    }

    /// `rejoin <i>`: brings a leg back: a split or Degraded leg resyncs the regions written
    /// since it left; an Inactive or missing leg (maybe replaced) resyncs everything.
    fn rejoin_leg(&self, i: usize) -> Result {
        let Some(leg) = self.legs.get(i) else {
            return Err(EINVAL);
        };
        if leg.dev.is_none() {
            pr_warn!(
                "{}: rejoin {}: the leg is absent from the table; load a table that names it\n",
                self.dev_name(),
                i
            );
            return Err(EINVAL);
        }
        let state = leg.state();
        let full = match state {
            LegState::Split | LegState::Degraded => false,
            LegState::Inactive | LegState::Missing => true,
            LegState::InSync | LegState::Resyncing => {
                pr_warn!(
                    "{}: rejoin {}: leg is already in service\n",
                    self.dev_name(),
                    i
                );
                return Err(EINVAL);
            }
        };
        let late = self.late_ios(i);
        if late > 0 {
            pr_warn!(
                "{}: rejoin {}: {} timed-out I/Os of the leg are still outstanding; retry once they completed\n",
                self.dev_name(),
                i,
                late
            );
            return Err(EBUSY);
        }
        let dirty = {
            let mut shared = self.shared.lock();
            if shared.source.is_none() {
                drop(shared);
                pr_warn!(
                    "{}: rejoin {}: no in-sync leg to copy from\n",
                    self.dev_name(),
                    i
                );
                return Err(EBUSY);
            }
            if full {
                if let Ok(mut r) = shared.regions() {
                    r.mark_all_out_of_sync();
                }
            }
            shared.state.out_of_sync_regions()
        };
        if !self.set_leg_state(i, LegState::Resyncing, &[state]) {
            return Err(EBUSY);
        }
        pr_info!(
            "{}: leg {} rejoined ({}): {} resync of {} regions\n",
            self.dev_name(),
            i,
            state.letter(),
            if full { "full" } else { "differential" },
            dirty
        );
        self.kick::<RESYNC_WORK>();
        Ok(())
    }

    /// `rejoin_log <i>`: a repaired log copy is rewritten from memory by the next log write.
    fn rejoin_log(&self, i: usize) -> Result {
        if i >= self.logs.len() {
            pr_warn!(
                "{}: rejoin_log {}: the table has {} log devices\n",
                self.dev_name(),
                i,
                self.logs.len()
            );
            return Err(EINVAL);
        }
        if matches!(self.logs.get(i), Some(None)) {
            pr_warn!(
                "{}: rejoin_log {}: the copy is absent in this table: load a table that names its device\n",
                self.dev_name(),
                i
            );
            return Err(ENODEV);
        }
        let late = self.late_ios(self.legs.len() + i);
        if late > 0 {
            pr_warn!(
                "{}: rejoin_log {}: a timed-out write of the copy is still outstanding\n",
                self.dev_name(),
                i
            );
            return Err(EBUSY);
        }
        {
            let mut shared = self.shared.lock();
            if shared.state.copies().get(i) != Some(&LogState::Failed) {
                drop(shared);
                pr_warn!(
                    "{}: rejoin_log {}: the copy has not failed\n",
                    self.dev_name(),
                    i
                );
                return Err(EINVAL);
            }
            match shared.state.copy_rejoined(i) {
                Ok(()) => {}
                Err(region::RegionError::LogWriteInFlight) => {
                    drop(shared);
                    pr_warn!(
                        "{}: rejoin_log {}: a log write issued to the copy before it failed is still in flight; retry\n",
                        self.dev_name(),
                        i
                    );
                    return Err(EBUSY);
                }
                Err(_) => {
                    drop(shared);
                    pr_warn!(
                        "{}: rejoin_log {}: every log copy was lost; load the table again to rebuild the log\n",
                        self.dev_name(),
                        i
                    );
                    return Err(EBUSY);
                }
            }
        }
        pr_info!(
            "{}: log copy {} rejoined: the next log write rewrites it from memory; it counts once that write completed\n",
            self.dev_name(),
            i
        );
        self.event.raise();
        self.kick::<LOG_WORK>();
        Ok(())
    }

    /// `trust <i>`: no leg is known to hold the newest data (the log was lost or corrupt, or
    /// names no available in-sync leg): the operator names leg `i`; every region is resynced
    /// from it and I/O resumes.
    fn trust_leg(&self, i: usize) -> Result {
        if self.legs.get(i).is_none_or(|l| l.dev.is_none()) {
            pr_warn!(
                "{}: trust {}: the leg is absent
",
                self.dev_name(),
                i
            );
            return Err(EINVAL);
        }
        if self.late_ios(i) > 0 {
            pr_warn!(
                "{}: trust {}: timed-out I/Os of the leg are still outstanding\n",
                self.dev_name(),
                i
            );
            return Err(EBUSY);
        }
        {
            let mut shared = self.shared.lock();
            if shared.source.is_some() && !self.untrusted.load(Relaxed) {
                drop(shared);
                pr_warn!(
                    "{}: trust {}: a leg is known to hold the newest data; use 'resync'\n",
                    self.dev_name(),
                    i
                );
                return Err(EBUSY);
            }
            if shared.regions().and_then(|mut r| r.trust_leg(i)).is_err() {
                return Err(EINVAL);
            }
            shared.source = Some(i);
            for (leg, s) in self.legs.iter().zip(shared.state.legs()) {
                leg.set_state(*s);
            }
            self.untrusted.store(false, Relaxed);
        }
        pr_warn!(
            "{}: leg {} trusted by the operator: full resync from it\n",
            self.dev_name(),
            i
        );
        self.event.raise();
        self.kick::<LOG_WORK>();
        self.kick::<RESYNC_WORK>();
        Ok(())
    }

    /// `resync`: copies every region from the source leg to every other leg in service.
    fn resync_all(&self) -> Result {
        let source = {
            let mut shared = self.shared.lock();
            let Some(source) = shared.source else {
                drop(shared);
                pr_warn!("{}: resync: no in-sync leg to copy from\n", self.dev_name());
                return Err(EBUSY);
            };
            if let Ok(mut r) = shared.regions() {
                r.mark_all_out_of_sync();
            }
            source
        };
        for (i, leg) in self.legs.iter().enumerate() {
            if i != source && leg.dev.is_some() {
                self.set_leg_state(i, LegState::Resyncing, &[LegState::InSync]);
            }
        }
        pr_info!(
            "{}: full resync from leg {} requested\n",
            self.dev_name(),
            source
        );
        self.kick::<LOG_WORK>();
        self.kick::<RESYNC_WORK>();
        Ok(())
    }
}

/// Largest number of table words we accept. A valid table has at most 21 (1 + 4 legs + 1 +
/// 2 logs + 1 + 12 option words); the margin lets the parser name a stray word.
const MAX_TABLE_WORDS: usize = 34;

#[vtable]
impl Target for RtMirror {
    type PerIo = io::MirrorIo;

    fn ctr(setup: &mut TargetSetup<'_>, args: &Args<'_>) -> Result<impl PinInit<Self, Error>> {
        if args.len() > MAX_TABLE_WORDS {
            return Err(reject(
                setup,
                c"too many arguments",
                format_args!(
                    "{} arguments, at most {} expected",
                    args.len(),
                    MAX_TABLE_WORDS
                ),
            ));
        }
        let mut words: [&str; MAX_TABLE_WORDS] = [""; MAX_TABLE_WORDS];
        for (w, a) in words.iter_mut().zip(args.iter()) {
            *w = match a.to_str() {
                Ok(s) => s,
                Err(_) => {
                    return Err(reject(
                        setup,
                        c"argument is not valid UTF-8",
                        format_args!("an argument is not valid UTF-8"),
                    ))
                }
            };
        }
        let cfg: TableConfig<'_> = match table::parse_table(&words[..args.len()]) {
            Ok(c) => c,
            Err(e) => return Err(reject(setup, e.reason(), format_args!("{}", e))),
        };

        let len = setup.len();
        let allow_missing = cfg.allow_missing;
        let mut legs = KVec::with_capacity(cfg.leg_slots().len(), GFP_KERNEL)?;
        let mut devts: KVec<u32> = KVec::with_capacity(MAX_LEGS + MAX_LOGS, GFP_KERNEL)?;
        for (i, slot) in cfg.leg_slots().iter().enumerate() {
            let dev = match slot {
                None => None,
                Some(path) => {
                    match open_device(setup, &mut devts, "leg", i, path, allow_missing)? {
                        None => None,
                        Some(dev) if dev.nr_sectors() < len => {
                            return Err(reject(
                                setup,
                                c"leg device is smaller than the target",
                                format_args!(
                                    "leg {} '{}' has {} sectors, the target needs {}",
                                    i,
                                    path,
                                    dev.nr_sectors(),
                                    len
                                ),
                            ));
                        }
                        Some(dev) => Some(dev),
                    }
                }
            };
            let state = if dev.is_some() {
                LegState::InSync
            } else {
                LegState::Missing
            };
            legs.push(
                Leg {
                    dev,
                    state: Atomic::new(state_to_u32(state)),
                    next_probe_ms: Atomic::new(0),
                    held_by_timeout: Atomic::new(false),
                    silent_seen: Atomic::new(false),
                },
                GFP_KERNEL,
            )?;
        }
        let mut primary = cfg.primary;
        if legs.iter().all(|l| l.dev.is_none()) {
            return Err(reject(
                setup,
                c"no leg device found",
                format_args!("no leg device exists: nothing to mirror"),
            ));
        }
        if !matches!(
            legs.get(usize::from(primary)),
            Some(Leg { dev: Some(_), .. })
        ) {
            let first = legs.iter().position(|l| l.dev.is_some()).unwrap_or(0);
            pr_warn!(
                "{}: primary leg {} is missing: leg {} serves reads\n",
                setup.device_name(),
                primary,
                first
            );
            primary = first as u8;
        }
        let mut logs = KVec::with_capacity(cfg.log_slots().len(), GFP_KERNEL)?;
        for (i, slot) in cfg.log_slots().iter().enumerate() {
            let dev = match slot {
                None => None,
                Some(path) => open_device(setup, &mut devts, "log", i, path, allow_missing)?,
            };
            logs.push(dev, GFP_KERNEL)?;
        }

        let present = || legs.iter().filter_map(|l| l.dev.as_ref());
        let present_logs = || logs.iter().flatten();
        setup.set_max_io_len(cfg.region_size.min(MAX_IO_SECTORS) as u32)?;
        setup.set_num_flush_bios(1);
        // Discards and write-zeroes are passed on only when every present leg supports them.
        if present().all(|d| d.max_discard_sectors() > 0) {
            setup.set_num_discard_bios(1);
        }
        if present().all(|d| d.max_write_zeroes_sectors() > 0) {
            setup.set_num_write_zeroes_bios(1);
        }

        let logical_block_size = present()
            .map(|d| d.logical_block_size())
            .max()
            .unwrap_or(512);
        let name = CString::try_from_fmt(fmt!("{}", setup.device_name()))?;
        let nr_regions = len.div_ceil(cfg.region_size);
        let log_bytes = log_format::log_bytes_needed(nr_regions);
        for (i, log) in logs.iter().enumerate() {
            let Some(log) = log else { continue };
            if log.nr_sectors() << 9 < log_bytes {
                return Err(reject(
                    setup,
                    c"log device too small",
                    format_args!(
                        "log {} has {} bytes, {} regions need {}",
                        i,
                        log.nr_sectors() << 9,
                        nr_regions,
                        log_bytes
                    ),
                ));
            }
        }
        let table_states = {
            let mut st = [LegState::Missing; MAX_LEGS];
            for (s, l) in st.iter_mut().zip(legs.iter()) {
                *s = l.state();
            }
            st
        };
        let shared = Shared::new(
            nr_regions,
            &table_states[..legs.len()],
            logs.len().max(1) as u8,
        )?;
        let log_bufs = LogBuffers::new(
            if logs.is_empty() {
                4096
            } else {
                usize::try_from(log_bytes).map_err(|_| EINVAL)?
            },
            region::block_map_words(nr_regions),
        )?;
        pr_info!(
            "{}: {} legs ({} present), {} log devices ({} present), region size {} sectors, {} regions\n",
            name.to_str().unwrap_or("?"),
            cfg.leg_slots().len(),
            present().count(),
            logs.len(),
            present_logs().count(),
            cfg.region_size,
            nr_regions
        );
        let globals = GLOBALS.load(Acquire);
        if globals.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: Set at module init to the module's pinned globals, which outlive every table
        // (a table holds a reference on the module).
        let globals: &'static Globals = unsafe { &*globals };
        let mut tracks = TrackSet {
            tracks: KVec::with_capacity(legs.len() + logs.len(), GFP_KERNEL)?,
            globals,
        };
        for dev in Iterator::chain(
            legs.iter().map(|l| l.dev.as_ref()),
            logs.iter().map(Option::as_ref),
        ) {
            let t = match dev {
                Some(d) => Some(globals.track_for(d)?),
                None => None,
            };
            tracks.tracks.push(t, GFP_KERNEL)?;
        }
        let begin = setup.begin();
        // SAFETY: The handle becomes a field of the target, dropped with it.
        let event = unsafe { setup.event_source() };
        Ok(try_pin_init!(RtMirror {
            watchdog_work <- new_delayed_work!("rtmirror_watchdog"),
            resync_work <- new_delayed_work!("rtmirror_resync"),
            retry_work <- new_delayed_work!("rtmirror_retry"),
            clean_work <- new_delayed_work!("rtmirror_clean"),
            log_work <- new_delayed_work!("rtmirror_log"),
            event <- event,
            globals,
            tracks,
            name,
            begin,
            len,
            legs,
            logs,
            region_size: cfg.region_size,
            nr_regions,
            io_timeout_ms: Atomic::new(cfg.io_timeout_ms),
            primary: Atomic::new(u32::from(primary)),
            primary_explicit: Atomic::new(cfg.primary_explicit),
            resync_kbps: Atomic::new(cfg.resync_kbps),
            nosync: cfg.nosync,
            log_uuid: cfg.log_uuid,
            allow_missing: cfg.allow_missing,
            untrusted: Atomic::new(false),
            log_upgrade: Atomic::new(false),
            logical_block_size,
            activated: Atomic::new(false),
            suspended: Atomic::new(true),
            resync_bytes: Atomic::new(0),
            message_lock <- new_mutex!(()),
            shared <- new_spinlock_irq!(shared),
            log_bufs <- new_mutex!(log_bufs),
            resync_buf <- new_mutex!(None),
        }))
    }

    fn preresume(&self) -> Result {
        if !self.activated.load(Relaxed) {
            // The watchdog times out the log reads of the activation too.
            if self.io_timeout_ms.load(Relaxed) > 0 {
                self.kick::<WATCHDOG_WORK>();
            }
            self.activate()?;
            self.activated.store(true, Relaxed);
        }
        Ok(())
    }

    fn resume(&self) {
        self.suspended.store(false, Relaxed);
        self.kick::<LOG_WORK>();
        self.kick::<RESYNC_WORK>();
        self.kick::<WATCHDOG_WORK>();
    }

    fn postsuspend(&self) {
        // No application I/O is in flight now. Stop the resync, clear what can be cleared and
        // write the log, so the next activation resyncs as little as possible.
        self.suspended.store(true, Relaxed);
        self.cancel_work::<RESYNC_WORK>();
        self.cancel_work::<CLEAN_WORK>();
        {
            let mut shared = self.shared.lock();
            let _ = shared.regions().map(|mut r| r.clean_batch(u64::MAX));
        }
        self.run_log_writes();
        // Only a clean suspend: the next activation then resyncs nothing.
        self.write_clean_shutdown();
    }

    fn map(&self, bio: MapBio<'_, Self>) -> Mapped {
        // No leg is known to hold the newest data: never serve or write possibly stale data.
        if self.untrusted.load(Relaxed) {
            return bio.kill();
        }
        match bio.bio().op() {
            ReqOp::Read => self.map_read(bio),
            ReqOp::Write | ReqOp::Flush | ReqOp::Discard | ReqOp::WriteZeroes => {
                self.map_write(bio)
            }
            ReqOp::Other(_) => bio.kill(),
        }
    }

    fn status(&self, kind: StatusType, out: &mut StatusWriter<'_>) {
        // A full buffer truncates the line, as DMEMIT does; nothing else can fail here.
        let _ = match kind {
            StatusType::Info => {
                let legs = self.leg_states();
                let legs = legs.get(..self.legs.len()).unwrap_or(&[]);
                let mut logs = [LogState::Alive; MAX_LOGS];
                let (in_sync, source) = {
                    let shared = self.shared.lock();
                    for (o, s) in logs.iter_mut().zip(shared.state.copies()) {
                        *o = *s;
                    }
                    (shared.state.in_sync_regions(), shared.source)
                };
                let mut health = health_of(legs);
                if self.untrusted.load(Relaxed) {
                    health = Health::Failed;
                }
                // Regions that may differ mean the data has one good copy only.
                if health == Health::Healthy && in_sync < self.nr_regions {
                    health = Health::Degraded;
                }
                let resyncing = in_sync < self.nr_regions
                    && source.is_some()
                    && self.writable_legs().any(|(i, _)| Some(i) != source);
                status::format_status(
                    &StatusInfo {
                        legs,
                        logs: logs.get(..self.logs.len()).unwrap_or(&[]),
                        in_sync_regions: in_sync,
                        total_regions: self.nr_regions,
                        health,
                        sync_action: if resyncing {
                            SyncAction::Resync
                        } else {
                            SyncAction::Idle
                        },
                    },
                    out,
                )
            }
            StatusType::Table => self.format_table(out),
            StatusType::Ima => Ok(()),
        };
    }

    fn message(&self, args: &Args<'_>, _out: &mut StatusWriter<'_>) -> Result {
        let mut words: [&str; 4] = [""; 4];
        if args.len() > words.len() {
            pr_warn!("{}: message has too many words\n", self.dev_name());
            return Err(EINVAL);
        }
        for (w, a) in words.iter_mut().zip(args.iter()) {
            *w = a.to_str().map_err(|_| {
                pr_warn!("{}: bad message: a word is not UTF-8\n", self.dev_name());
                EINVAL
            })?;
        }
        match message::parse_message(&words[..args.len()], self.legs.len() as u8) {
            Ok(m) => self.handle_message(m),
            Err(e) => {
                pr_warn!(
                    "{}: bad message: {}\n",
                    self.dev_name(),
                    format_args!("{}", e)
                );
                Err(EINVAL)
            }
        }
    }

    fn iterate_devices(&self, visitor: &mut DeviceVisitor<'_>) -> Result<(), IterateStop> {
        for dev in self.legs.iter().filter_map(|l| l.dev.as_ref()) {
            visitor.visit(dev, 0, self.len)?;
        }
        Ok(())
    }
}

impl RtMirror {
    fn format_table(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        let mut cfg = TableConfig {
            nr_legs: self.legs.len() as u8,
            legs: [None; MAX_LEGS],
            nr_logs: self.logs.len() as u8,
            logs: [None; MAX_LOGS],
            region_size: self.region_size,
            io_timeout_ms: self.io_timeout_ms.load(Relaxed),
            primary: self.primary.load(Relaxed) as u8,
            primary_explicit: self.primary_explicit.load(Relaxed),
            resync_kbps: self.resync_kbps.load(Relaxed),
            nosync: self.nosync,
            log_uuid: self.log_uuid,
            allow_missing: self.allow_missing,
        };
        for (slot, leg) in cfg.legs.iter_mut().zip(self.legs.iter()) {
            *slot = leg.dev.as_ref().map(|d| d.name().to_str().unwrap_or("?"));
        }
        for (slot, log) in cfg.logs.iter_mut().zip(self.logs.iter()) {
            *slot = log.as_ref().map(|d| d.name().to_str().unwrap_or("?"));
        }
        table::format_table(&cfg, out)
    }
}

/// Opens leg or log device number `i` of the table; rejects the table if it cannot be opened
/// or is a device already used (under another name, too), whose numbers are in `devts`.
/// With `allow_missing`, a device that does not exist is `None` (absent) instead.
fn open_device(
    setup: &mut TargetSetup<'_>,
    devts: &mut KVec<u32>,
    kind: &str,
    i: usize,
    path: &str,
    allow_missing: bool,
) -> Result<Option<DmDev>> {
    let cpath = CString::try_from_fmt(fmt!("{}", path))?;
    // SAFETY: The device ends up in the target (`Leg::dev`, `RtMirror::logs`) or is dropped
    // when the constructor fails.
    let dev = match unsafe { setup.get_device(&cpath) } {
        Ok(d) => d,
        // No such device (a storage subsystem gone at boot): absent, not a bad table.
        Err(e) if allow_missing && [ENODEV, ENXIO, ENOENT].contains(&e) => {
            pr_warn!(
                "{}: {} {} '{}' does not exist (error {}): taken as absent (allow_missing)\n",
                setup.device_name(),
                kind,
                i,
                path,
                e.to_errno()
            );
            return Ok(None);
        }
        Err(e) => {
            let _ = reject(
                setup,
                c"cannot open device",
                format_args!(
                    "{} {} '{}': cannot open (error {})",
                    kind,
                    i,
                    path,
                    e.to_errno()
                ),
            );
            return Err(e);
        }
    };
    if devts.contains(&dev.devt()) {
        return Err(reject(
            setup,
            c"device given twice",
            format_args!(
                "{} {} '{}' is a device already used in this table",
                kind, i, path
            ),
        ));
    }
    devts.push(dev.devt(), GFP_KERNEL)?;
    Ok(Some(dev))
}
