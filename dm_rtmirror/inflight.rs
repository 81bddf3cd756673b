// SPDX-License-Identifier: GPL-2.0

//! In-flight I/O of every leg and log device, for I/O timeouts.
//!
//! Each device has a [`DevTrack`]: a list of its in-flight bios in submission order, so the
//! oldest is first. The watchdog (see `watchdog.rs`) looks at the oldest entries; one older
//! than `io_timeout_ms` means the device hangs. An entry whose bio owns its data pages (a
//! bounce buffer) or holds references on them can then be abandoned: the watchdog takes over
//! what the bio was working for
//! (an application write or read, a log or resync request) and finishes it without the
//! device. The bio itself stays in flight; when it completes, late, it only frees what it owns
//! and counts itself out of [`DevTrack::abandoned`] (design rule 4). A `DevTrack` is shared by
//! every table that uses the device and by the abandoned bios, so a table can be reloaded or
//! removed while one is still out.
//!
//! Ownership of an entry's [`Owner`] is decided by one compare-and-exchange on its state:
//! completion (`TRACKED -> DONE`) or abandonment (`TRACKED -> ABANDONED`), never both.

use core::cell::UnsafeCell;

use kernel::{
    alloc::flags::GFP_NOIO,
    bindings,
    block::bio::{BioCompletion, BioSet, Opf, OwnedBio, PageBuf, PageRefs, PreparedBioList},
    device_mapper::{DmDev, IoRef},
    fs::File,
    new_mutex, new_spinlock_irq,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Arc, Completion, Mutex, SpinLockIrq,
    },
    types::Opaque,
    workqueue::{impl_has_work, new_work, Queue, Work, WorkItem},
};

use crate::{region, RtMirror};

/// Bios reserved for forward progress under memory pressure.
const BIO_POOL_SIZE: u32 = 64;

/// With fewer bios than this out on a device (tracked or given up) and none queued, a tracked
/// bio is submitted at once by its issuer: far below any request queue depth, so that cannot
/// block on request tags. Beyond it the device's work item submits (see [`DevTrack`]).
const DIRECT_SUBMIT_BELOW: u32 = 16;

/// What a tracked device I/O works for.
pub(crate) enum Owner {
    /// One leg's part of an application write.
    Write(IoRef<RtMirror>),
    /// An application read.
    Read(IoRef<RtMirror>),
    /// Request `.1` of a synchronous batch (log write, resync copy).
    Sync(Arc<SyncBatch>, usize),
    /// A probe of a Degraded leg; always tracked, since no table waits for it.
    Probe,
}

const TRACKED: u32 = 0;
const DONE: u32 = 1;
const ABANDONED: u32 = 2;

/// Probe states ([`DevTrack::probe`]).
pub(crate) const PROBE_IDLE: u32 = 0;
pub(crate) const PROBE_IN_FLIGHT: u32 = 1;
pub(crate) const PROBE_OK: u32 = 2;
pub(crate) const PROBE_FAILED: u32 = 3;

/// Bios of the module's bio set that no table waits for: abandoned bios and probes not yet
/// completed. Module unload waits for them.
pub(crate) static DETACHED_IOS: Atomic<u32> = Atomic::new(0);

#[pin_data]
struct TrackHead {
    #[pin]
    head: Opaque<bindings::list_head>,
}

// SAFETY: The list is only walked and changed under the lock that holds it, from any CPU.
unsafe impl Send for TrackHead {}

/// The in-flight bios of one device, and its submission queue.
///
/// With a timeout, tracked bios are submitted by the device's own work item, never by the
/// thread that issued them: once a hung device has used up its request tags, `submit_bio`
/// blocks, and only that work item may block on it (application threads, the log and resync
/// workers go on, and the watchdog gives up the bios still queued here).
#[pin_data]
pub(crate) struct DevTrack {
    pub(crate) devt: u32,
    /// The device's open file: bios queued here or given up may be submitted or complete
    /// after every table released the device, so the track keeps it open.
    _file: ARef<File>,
    #[pin]
    list: SpinLockIrq<TrackHead>,
    #[pin]
    queue: SpinLockIrq<PreparedBioList<LegIo>>,
    #[pin]
    work: Work<DevTrack>,
    wq: &'static Queue,
    /// Abandoned bios still in flight: until they completed, the device may still write
    /// stale data, so it must not be resynced.
    pub(crate) abandoned: Atomic<u32>,
    /// Tracked bios on the list.
    tracked: Atomic<u32>,
    /// Tables using the device.
    pub(crate) users: Atomic<u32>,
    /// Result of the last probe (`PROBE_*`).
    pub(crate) probe: Atomic<u32>,
    /// When a tracked bio with data of the device last completed (`now_ns`): a leg that
    /// completes nothing hangs, one that completes late requests now and then is slow.
    last_done: Atomic<i64>,
}

impl_has_work! {
    impl HasWork<Self> for DevTrack { self.work }
}

impl WorkItem for DevTrack {
    type Pointer = Arc<DevTrack>;

    fn run(this: Arc<DevTrack>) {
        loop {
            let next = this.queue.lock().pop();
            match next {
                Some(bio) => bio.submit(),
                None => break,
            }
        }
    }
}

impl DevTrack {
    fn new(file: ARef<File>, devt: u32, wq: &'static Queue) -> impl PinInit<Self> {
        pin_init!(Self {
            devt,
            _file: file,
            queue <- new_spinlock_irq!(PreparedBioList::new()),
            work <- new_work!("DevTrack::work"),
            wq,
            list <- new_spinlock_irq!(pin_init!(TrackHead {
                // SAFETY: `slot` is valid for writes; an empty list points to itself.
                head <- Opaque::ffi_init(|slot| unsafe { bindings::INIT_LIST_HEAD(slot) }),
            })),
            abandoned: Atomic::new(0),
            tracked: Atomic::new(0),
            users: Atomic::new(0),
            probe: Atomic::new(PROBE_IDLE),
            last_done: Atomic::new(0),
        })
    }
}

/// State of the leg bios of every table, kept by the module: bios abandoned by a table outlive
/// it, so their bio set, device tracks and submission workqueue cannot be the table's.
#[pin_data]
pub(crate) struct Globals {
    // Dropped first: destroying the workqueues waits for work still running.
    wq: OwnedQueue,
    /// One queue per work item of a table (`crate::LOG_WORK`...), each with its own rescuer:
    /// writes to clean regions wait for the log work, so no work item may depend on creating
    /// a worker under memory pressure, nor wait behind another kind of work on a rescuer.
    work_queues: [OwnedQueue; crate::NR_WORKS],
    #[pin]
    pub(crate) bios: BioSet<LegIo>,
    #[pin]
    tracks: Mutex<KVec<Arc<DevTrack>>>,
}

/// A workqueue of the module: unbound, with a rescuer (`WQ_MEM_RECLAIM`), since its work
/// submits or waits for I/O that writeback may wait for.
///
/// # Invariants
///
/// `0` is a workqueue created by `alloc_workqueue`, destroyed on drop.
struct OwnedQueue(*mut bindings::workqueue_struct);

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: As above.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// `name` must not contain `%` (it is the format of the name).
    fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: The format is a NUL-terminated string without conversions.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                name.as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_MEM_RECLAIM,
                0,
            )
        };
        if wq.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self(wq))
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: Created by `alloc_workqueue` (invariant). Dropped at module unload, after
        // every table is gone and the bios given up on hung devices completed, so no work is
        // queued on it any more; destroying it waits for work still running.
        unsafe { bindings::destroy_workqueue(self.0) };
    }
}

impl Globals {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            wq: OwnedQueue::new(c"rtmirror_submit")?,
            work_queues: [
                OwnedQueue::new(c"rtmirror_log")?,
                OwnedQueue::new(c"rtmirror_clean")?,
                OwnedQueue::new(c"rtmirror_resync")?,
                OwnedQueue::new(c"rtmirror_retry")?,
                OwnedQueue::new(c"rtmirror_watchdog")?,
            ],
            bios <- BioSet::new(BIO_POOL_SIZE),
            tracks <- new_mutex!(KVec::new()),
        })
    }

    /// The queue of a table's work item `id` (`crate::LOG_WORK`...).
    pub(crate) fn work_queue(&self, id: u64) -> *mut bindings::workqueue_struct {
        // The ids are the array's indices; an unknown id falls back to the submission queue,
        // which has a rescuer too.
        usize::try_from(id)
            .ok()
            .and_then(|i| self.work_queues.get(i))
            .map_or(self.wq.0, |q| q.0)
    }

    fn queue(&self) -> &'static Queue {
        // SAFETY: The workqueue lives until the globals are dropped at module unload, after
        // every table and every device track's use of it.
        unsafe { Queue::from_raw(self.wq.0) }
    }

    /// The track of device `dev`, shared with other tables using it; counts one more user.
    pub(crate) fn track_for(&self, dev: &DmDev) -> Result<Arc<DevTrack>> {
        let devt = dev.devt();
        let mut tracks = self.tracks.lock();
        Self::forget_unused(&mut tracks);
        let found = tracks.iter().find(|t| t.devt == devt).cloned();
        let t = match found {
            Some(t) => t,
            None => {
                let t = Arc::pin_init(DevTrack::new(dev.file(), devt, self.queue()), GFP_KERNEL)?;
                tracks.push(t.clone(), GFP_KERNEL)?;
                t
            }
        };
        t.users.fetch_add(1, Relaxed);
        Ok(t)
    }

    /// Forgets devices nobody uses and no abandoned bio refers to any more (closing the
    /// file their track holds once no bio holds the track either).
    fn forget_unused(tracks: &mut KVec<Arc<DevTrack>>) {
        tracks.retain(|t| t.users.load(Relaxed) > 0 || t.abandoned.load(Relaxed) > 0);
    }
}

/// The tracks of one table's devices (legs first, then log copies); drops its use of them.
pub(crate) struct TrackSet {
    pub(crate) tracks: KVec<Option<Arc<DevTrack>>>,
    pub(crate) globals: &'static Globals,
}

impl TrackSet {
    pub(crate) fn get(&self, dev: usize) -> Option<&Arc<DevTrack>> {
        self.tracks.get(dev).and_then(|t| t.as_ref())
    }
}

impl Drop for TrackSet {
    fn drop(&mut self) {
        for t in self.tracks.iter().flatten() {
            t.users.fetch_sub(1, Relaxed);
        }
        // The table is going away (process context): a device no table uses is closed now,
        // unless bios given up on it are still out (then at the next table or at unload).
        self.tracks.clear();
        Globals::forget_unused(&mut self.globals.tracks.lock());
    }
}

/// Payload of every leg and log bio (in the bio's front pad).
///
/// `link` comes first so that a list entry converts back to its `LegIo`.
#[repr(C)]
pub(crate) struct LegIo {
    link: Opaque<bindings::list_head>,
    /// Submission time (`ktime_get`, ns), set under the track's lock when linked.
    started: Atomic<i64>,
    state: Atomic<u32>,
    /// Whether the bio owns its data (or references on its pages) or has none, so the
    /// watchdog may abandon it.
    pub(crate) abandonable: bool,
    track: Option<Arc<DevTrack>>,
    /// Accessed by whoever won the state exchange (or by completion if untracked).
    owner: UnsafeCell<Option<Owner>>,
    /// Pages the bio carries when they are the target's (bounce buffer, probe).
    pub(crate) buf: Option<Arc<PageBuf>>,
    /// References on the caller's pages the bio carries, so that it may be abandoned.
    pub(crate) page_refs: Option<Arc<PageRefs>>,
    /// Leg (or device) index in the table.
    pub(crate) dev: usize,
    /// The table that submitted the bio (devices are shared between tables): only its
    /// watchdog may abandon it.
    table: usize,
    /// Keeps the pages of a synchronous batch alive as long as the bio (the watchdog takes
    /// the owner's reference when it abandons the bio).
    batch: Option<Arc<SyncBatch>>,
    /// Bytes of data the bio carries.
    pub(crate) bytes: usize,
}

// SAFETY: `owner` is accessed by one thread at a time (see `state`); the rest is `Send`.
unsafe impl Send for LegIo {}

impl LegIo {
    pub(crate) fn new(dev: usize, owner: Owner, buf: Option<Arc<PageBuf>>, bytes: usize) -> Self {
        Self {
            link: Opaque::uninit(),
            started: Atomic::new(0),
            state: Atomic::new(DONE),
            abandonable: buf.is_some(),
            track: None,
            owner: UnsafeCell::new(Some(owner)),
            buf,
            page_refs: None,
            dev,
            table: 0,
            batch: None,
            bytes,
        }
    }
}

impl BioCompletion for LegIo {
    fn detach(&self) {
        let this = self;
        if let Some(t) = &this.track {
            let won = this.state.cmpxchg(TRACKED, DONE, Full).is_ok();
            let _guard = t.list.lock();
            // Abandoned or not, the device moved data. Flushes do not count: a device that
            // holds its writes may still answer flushes (and probes are reads).
            if this.bytes > 0 {
                t.last_done.store(now_ns(), Relaxed);
            }
            if won {
                // SAFETY: The entry is linked in `t`'s list (state was TRACKED), whose lock
                // we hold.
                unsafe { bindings::list_del_init(this.link.get()) };
                t.tracked.fetch_sub(1, Relaxed);
            }
            // Otherwise the watchdog abandoned the entry: it unlinks it and takes the owner
            // under this lock, so taking the lock here waits until it is done with the entry
            // before the payload is moved out and the bio freed.
        }
    }

    fn complete(self, status: Result) {
        if self.state.load(Acquire) == ABANDONED {
            // Late completion: the watchdog took the owner; free what the bio owned.
            if let Some(t) = &self.track {
                t.abandoned.fetch_sub(1, Relaxed);
            }
            DETACHED_IOS.fetch_sub(1, Relaxed);
            return;
        }
        let Some(owner) = self.owner.into_inner() else {
            return;
        };
        match owner {
            Owner::Write(io) => {
                let result = match status {
                    Ok(()) => LegResult::Ok,
                    Err(e) => LegResult::Failed(e),
                };
                // SAFETY: `leg_write_done` stops using the target once it handed `io` on.
                let target = unsafe { io.target_unbound() };
                target.leg_write_done(io, self.dev, result);
            }
            Owner::Read(io) => {
                // SAFETY: As above.
                let target = unsafe { io.target_unbound() };
                target.read_done(io, self.dev, status, self.buf.as_deref(), self.bytes);
            }
            Owner::Sync(batch, i) => batch.finish(i, status),
            Owner::Probe => {
                if let Some(t) = &self.track {
                    let v = if status.is_ok() {
                        PROBE_OK
                    } else {
                        PROBE_FAILED
                    };
                    t.probe.store(v, Release);
                }
                DETACHED_IOS.fetch_sub(1, Relaxed);
            }
        }
    }
}

/// How a leg's part of a write ended.
#[derive(Clone, Copy)]
pub(crate) enum LegResult {
    Ok,
    Failed(Error),
    /// Abandoned by the watchdog: the leg was moved out of sync for it.
    TimedOut,
}

/// A batch of synchronous requests sharing one buffer (see [`RtMirror::tracked_sync_io`]).
#[pin_data]
pub(crate) struct SyncBatch {
    /// The pages every bio of the batch carries; taken back by the submitter when no bio of
    /// the batch was abandoned.
    buf: UnsafeCell<Option<PageBuf>>,
    remaining: Atomic<u32>,
    results: [Atomic<i32>; 4],
    abandoned: Atomic<bool>,
    #[pin]
    done: Completion,
}

// SAFETY: `buf` is written only by the submitter while no bio of the batch is in flight or
// abandoned; everything else is atomic or `Sync`.
unsafe impl Sync for SyncBatch {}
// SAFETY: As above.
unsafe impl Send for SyncBatch {}

impl SyncBatch {
    fn finish(&self, i: usize, status: Result) {
        if let Some(r) = self.results.get(i) {
            r.store(status.err().map_or(0, |e| e.to_errno()), Relaxed);
        }
        if self.remaining.fetch_sub(1, Full) == 1 {
            self.done.complete_all();
        }
    }
}

/// One request of [`RtMirror::tracked_sync_io`].
#[derive(Clone, Copy)]
pub(crate) struct SyncReq {
    /// Device index: a leg, or `nr_legs + i` for log copy `i`.
    pub(crate) dev: usize,
    pub(crate) opf: Opf,
    pub(crate) sector: u64,
    pub(crate) bytes: usize,
}

pub(crate) fn now_ns() -> i64 {
    // SAFETY: `ktime_get` has no preconditions.
    unsafe { bindings::ktime_get() }
}

impl RtMirror {
    /// Identifies this table in the entries it tracks.
    fn table_id(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// The bio set of leg and log bios.
    pub(crate) fn leg_bios(&self) -> &BioSet<LegIo> {
        &self.globals().bios
    }

    /// The block device of device index `dev` (leg, or `nr_legs + i` for log copy `i`).
    pub(crate) fn dev_bdev(&self, dev: usize) -> Option<*mut bindings::block_device> {
        match dev.checked_sub(self.legs.len()) {
            None => self.legs.get(dev)?.dev.as_ref().map(|d| d.bdev()),
            Some(i) => self.logs.get(i)?.as_ref().map(|d| d.bdev()),
        }
    }

    /// Submits `bio` with `payload`, tracked for the timeout when one is set.
    pub(crate) fn submit_tracked(&self, bio: OwnedBio<LegIo>, payload: LegIo) {
        let mut payload = payload;
        // A probe is tracked even if the timeout was just cleared: its track keeps the device
        // open, as no table waits for it.
        let is_probe = matches!(payload.owner.get_mut(), Some(Owner::Probe));
        let track = if self.io_timeout_ms.load(Relaxed) > 0 || is_probe {
            self.tracks.get(payload.dev).cloned()
        } else {
            None
        };
        payload.table = self.table_id();
        let Some(track) = track else {
            bio.submit(payload);
            return;
        };
        // Set before the entry is linked: from then on the watchdog may read it.
        payload.track = Some(track.clone());
        let bio = bio.prepare(payload, |p| {
            let guard = track.list.lock();
            // Stamped under the lock, so the list stays in submission order.
            p.started.store(now_ns(), Relaxed);
            p.state.store(TRACKED, Relaxed);
            // SAFETY: `link` stays in place until `detach` or the watchdog unlinks it (the
            // payload is pinned in the bio); the list is protected by the lock we hold.
            unsafe { bindings::list_add_tail(p.link.get(), guard.head.get()) };
            track.tracked.fetch_add(1, Relaxed);
        });
        let out = track.tracked.load(Relaxed) + track.abandoned.load(Relaxed);
        let mut queue = track.queue.lock();
        if queue.is_empty() && out <= DIRECT_SUBMIT_BELOW {
            drop(queue);
            bio.submit();
            return;
        }
        queue.push(bio);
        drop(queue);
        // Already queued: the running or pending work picks this bio up too.
        let _ = track.wq.enqueue(track.clone());
    }

    /// For the kernel log when device `dev` times out: how long its oldest bio of this table
    /// has waited and how long ago the device last completed data, in ms (-1: never).
    pub(crate) fn silence_ms(&self, dev: usize) -> (i64, i64) {
        let Some(track) = self.tracks.get(dev) else {
            return (-1, -1);
        };
        let now = now_ns();
        let me = self.table_id();
        let guard = track.list.lock();
        let head = guard.head.get();
        let mut oldest = -1;
        // SAFETY: The list is initialised and we hold its lock; every entry is the `link` of
        // a live `LegIo` (entries leave the list under the lock before their bio is freed).
        unsafe {
            let mut pos = (*head).next;
            while pos != head {
                let e = &*pos.cast::<LegIo>();
                if e.table == me {
                    oldest = (now - e.started.load(Relaxed)) / 1_000_000;
                    break;
                }
                pos = (*pos).next;
            }
        }
        let done = track.last_done.load(Relaxed);
        let last_done = if done == 0 {
            -1
        } else {
            (now - done) / 1_000_000
        };
        (oldest, last_done)
    }

    /// Since when device `dev` has answered nothing although a bio of this table waits on it
    /// longer than `timeout_ns`: the issue time of the oldest such bio, or the device's last
    /// completion if that is later. `None` if no bio of this table is that old, or if the
    /// device is slow rather than silent (see [`region::silent_since`]).
    pub(crate) fn stalled_since(&self, dev: usize, timeout_ns: i64) -> Option<i64> {
        let track = self.tracks.get(dev)?;
        let now = now_ns();
        let me = self.table_id();
        let guard = track.list.lock();
        let head = guard.head.get();
        // SAFETY: The list is initialised and we hold its lock; every entry is the `link` of
        // a live `LegIo` (entries leave the list under the lock before their bio is freed).
        unsafe {
            let mut pos = (*head).next;
            while pos != head {
                let e = &*pos.cast::<LegIo>();
                let started = e.started.load(Relaxed);
                if now - started < timeout_ns {
                    return None;
                }
                if e.table == me {
                    let last_done = track.last_done.load(Relaxed);
                    return region::silent_since(started, last_done, now, timeout_ns);
                }
                pos = (*pos).next;
            }
        }
        None
    }

    /// Abandons up to `max` tracked entries of device `dev` older than `timeout_ns` and
    /// returns their owners in `out`. Returns whether any entry was that old (the device
    /// hangs).
    pub(crate) fn take_expired(
        &self,
        dev: usize,
        timeout_ns: i64,
        out: &mut KVec<(Owner, usize)>,
    ) -> bool {
        let Some(track) = self.tracks.get(dev) else {
            return false;
        };
        let now = now_ns();
        let me = self.table_id();
        let mut hung = false;
        let guard = track.list.lock();
        let head = guard.head.get();
        // SAFETY: The list is initialised and we hold its lock; every entry is the `link` of
        // a live `LegIo` (entries leave the list under the lock before their bio is freed).
        unsafe {
            let mut pos = (*head).next;
            while pos != head && out.len() < out.capacity() {
                let e = &*pos.cast::<LegIo>();
                let next = (*pos).next;
                if now - e.started.load(Relaxed) < timeout_ns {
                    break;
                }
                if e.table != me {
                    pos = next;
                    continue;
                }
                hung = true;
                if e.abandonable {
                    // Counted before the exchange: a completion racing with it must not
                    // see the counts below zero.
                    track.abandoned.fetch_add(1, Relaxed);
                    DETACHED_IOS.fetch_add(1, Relaxed);
                    if e.state.cmpxchg(TRACKED, ABANDONED, Full).is_ok() {
                        bindings::list_del_init(pos);
                        track.tracked.fetch_sub(1, Relaxed);
                        match (*e.owner.get()).take() {
                            // A probe is counted as detached already.
                            Some(Owner::Probe) => {
                                DETACHED_IOS.fetch_sub(1, Relaxed);
                                let _ = out.push_within_capacity((Owner::Probe, e.dev));
                            }
                            // Capacity was checked above.
                            Some(o) => {
                                let _ = out.push_within_capacity((o, e.dev));
                            }
                            None => {}
                        }
                    } else {
                        track.abandoned.fetch_sub(1, Relaxed);
                        DETACHED_IOS.fetch_sub(1, Relaxed);
                    }
                }
                pos = next;
            }
        }
        hung
    }

    /// Runs `reqs` in parallel on `buf` (each carries its first `bytes`; 0 bytes: an empty
    /// flush), tracked like application I/O, and waits for them; results go to `out`. A request abandoned by the
    /// watchdog fails with `ETIMEDOUT`. Returns the buffer unless a bio still uses it.
    pub(crate) fn tracked_sync_io(
        &self,
        buf: PageBuf,
        reqs: &[SyncReq],
        out: &mut [Result],
    ) -> Result<Option<PageBuf>> {
        if reqs.len() > 4 || out.len() < reqs.len() {
            return Err(EINVAL);
        }
        let batch = Arc::pin_init(
            pin_init!(SyncBatch {
                buf: UnsafeCell::new(Some(buf)),
                remaining: Atomic::new(reqs.len() as u32 + 1),
                results: [const { Atomic::new(0) }; 4],
                abandoned: Atomic::new(false),
                done <- Completion::new(),
            }),
            GFP_NOIO,
        )?;
        for (i, r) in reqs.iter().enumerate() {
            // SAFETY: No bio of the batch runs yet or the shared borrow is only read by bios.
            let pages = unsafe { (*batch.buf.get()).as_ref() };
            let bio = match (self.dev_bdev(r.dev), pages) {
                // SAFETY: The device stays open until the bio completes: a tracked bio's payload
                // holds the device's track (and so its file), even once abandoned; an untracked
                // one is waited for below, while the table holds the device. The module's bio
                // set outlives all bios. A request without bytes (a flush) carries no data.
                (Some(bdev), _) if r.bytes == 0 => unsafe {
                    self.leg_bios().alloc_dataless(bdev, r.opf, r.sector, 0)
                },
                // SAFETY: As above; the batch (owning the pages) lives until the payload is
                // dropped.
                (Some(bdev), Some(p)) => unsafe {
                    self.leg_bios()
                        .alloc_with_buf(bdev, r.opf, r.sector, p, r.bytes)
                },
                _ => Err(ENODEV),
            };
            match bio {
                Ok(bio) => {
                    let mut payload =
                        LegIo::new(r.dev, Owner::Sync(batch.clone(), i), None, r.bytes);
                    payload.abandonable = true;
                    payload.batch = Some(batch.clone());
                    self.submit_tracked(bio, payload);
                }
                Err(e) => batch.finish(i, Err(e)),
            }
        }
        batch.finish(usize::MAX, Ok(()));
        batch.done.wait_for_completion();
        for (o, r) in out.iter_mut().zip(batch.results.iter()).take(reqs.len()) {
            *o = match r.load(Relaxed) {
                0 => Ok(()),
                e => Err(Error::from_errno(e)),
            };
        }
        if batch.abandoned.load(Acquire) {
            return Ok(None);
        }
        // SAFETY: Every bio of the batch completed and none was abandoned, so nothing else
        // accesses the pages any more.
        Ok(unsafe { (*batch.buf.get()).take() })
    }
}

impl Owner {
    /// The watchdog gave up on the bio working for this owner.
    pub(crate) fn abandon(self, t: &RtMirror, dev: usize) {
        match self {
            Owner::Write(io) => t.leg_write_done(io, dev, LegResult::TimedOut),
            Owner::Read(io) => t.read_retry(io),
            Owner::Sync(batch, i) => {
                batch.abandoned.store(true, Release);
                batch.finish(i, Err(ETIMEDOUT));
            }
            Owner::Probe => {
                if let Some(tr) = t.tracks.get(dev) {
                    tr.probe.store(PROBE_IDLE, Release);
                }
            }
        }
    }
}
