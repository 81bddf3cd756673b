// SPDX-License-Identifier: GPL-2.0

//! The write path: region bookkeeping around each write, fan-out to the legs, completion.
//!
//! A write to a clean region waits until the log generation that marks the region dirty is
//! durable on a log copy ([`crate::mirror_log`]); a write to a region already durably dirty goes
//! to the legs at once. When the last leg completed, the region is told (`write_done`), and the
//! write is acknowledged, unless a leg missed it: then it waits for the log generation that
//! records that leg as out of sync (design rule 1).

use kernel::{
    alloc::flags::{__GFP_NOWARN, GFP_NOIO},
    block::bio::{Bio, Opf, PageBuf, PageRefs, ReqOp, BIO_MAX_VECS},
    device_mapper::{IoList, IoRef, IoResult, MapBio, Mapped},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    workqueue::WorkItem,
};

use crate::inflight::{LegIo, LegResult, Owner, SyncReq};
use crate::region::{leg_can_serve, WriteDone, WriteStart};
use crate::status::LegState;
use crate::table::MAX_LEGS;
use crate::{RtMirror, Running, CLEAN_WORK, LOG_WORK, RESYNC_WORK, RETRY_WORK};

/// No region: the bio (an empty flush) is not tracked.
pub(crate) const NO_REGION: u64 = u64::MAX;

/// State of one bio the target fans out to its legs.
pub(crate) struct MirrorIo {
    /// Region the bio writes to, or [`NO_REGION`].
    pub(crate) region: u64,
    /// Log generation the bio waits for (to be submitted, or acknowledged).
    pub(crate) generation: Atomic<u64>,
    /// Leg bios still running, plus one while they are being submitted.
    remaining: Atomic<u32>,
    legs_ok: Atomic<u32>,
    legs_failed: Atomic<u32>,
    /// First error a leg returned (negative errno), 0 if none.
    first_error: Atomic<i32>,
    /// The bio must fail with this error (negative errno), 0 if not: e.g. it missed a leg
    /// and that cannot be recorded (log lost), or no leg is in sync.
    fail_errno: Atomic<i32>,
    /// A leg refused the discard or write-zeroes that another leg carried out: the legs may
    /// differ in its range.
    diverged: Atomic<bool>,
    /// Reads: legs tried so far (bit per leg).
    pub(crate) tried: Atomic<u32>,
}

impl MirrorIo {
    pub(crate) fn new(region: u64) -> Self {
        Self {
            region,
            generation: Atomic::new(0),
            remaining: Atomic::new(0),
            legs_ok: Atomic::new(0),
            legs_failed: Atomic::new(0),
            first_error: Atomic::new(0),
            fail_errno: Atomic::new(0),
            diverged: Atomic::new(false),
            tried: Atomic::new(0),
        }
    }

    pub(crate) fn fail(&self) {
        self.fail_with(EIO);
    }

    fn fail_with(&self, e: Error) {
        self.fail_errno.store(e.to_errno(), Relaxed);
    }

    fn must_fail(&self) -> bool {
        self.fail_errno.load(Relaxed) != 0
    }
}

impl IoResult for MirrorIo {
    fn result(&self) -> Result {
        match self.fail_errno.load(Relaxed) {
            0 => {}
            e => return Err(Error::from_errno(e)),
        }
        // A write succeeds once one in-sync leg has it; a leg that failed was moved out of sync
        // (durably, see `legs_done`) before the write is acknowledged.
        if self.legs_ok.load(Relaxed) > 0 {
            return Ok(());
        }
        match self.first_error.load(Relaxed) {
            0 => Err(EIO),
            e => Err(Error::from_errno(e)),
        }
    }
}

impl RtMirror {
    /// Makes a bio with data fit into one leg bio: with too many small segments, takes the
    /// whole logical blocks that fit now (device-mapper maps the rest in another call).
    /// Returns `false` if not even one logical block fits.
    fn fit_one_leg_bio(&self, bio: &mut MapBio<'_, Self>) -> bool {
        let (bytes, _) = bio.bio().fit_in_segments(BIO_MAX_VECS);
        if bytes < bio.bio().size() {
            let bytes = bytes - bytes % self.logical_block_size.max(512);
            let sectors = bytes >> kernel::block::SECTOR_SHIFT;
            if sectors == 0 {
                return false;
            }
            bio.accept_partial(sectors);
        }
        true
    }

    /// Flags for allocations on the I/O path that may fail (the caller has a fallback).
    fn io_gfp() -> kernel::alloc::Flags {
        GFP_NOIO | __GFP_NOWARN
    }

    /// Maps a read: it goes to one leg through the target's own bio, so that it can be retried
    /// on another leg after an error or a timeout.
    pub(crate) fn map_read(&self, mut bio: MapBio<'_, Self>) -> Mapped {
        if bio.bio().size() > 0 && !self.fit_one_leg_bio(&mut bio) {
            return bio.kill();
        }
        let region = bio
            .target_sector()
            .checked_div(self.region_size)
            .unwrap_or(0);
        let (io, mapped) = bio.start(MirrorIo::new(region));
        self.submit_read(io);
        mapped
    }

    /// Sends a read to the best leg not tried yet; fails it if there is none.
    pub(crate) fn submit_read(&self, io: IoRef<Self>) {
        loop {
            let tried = io.state().tried.load(Relaxed);
            let Some(leg) = self.read_leg(tried) else {
                pr_err!(
                    "{}: read at sector {}: no in-sync leg left to read from\n",
                    self.dev_name(),
                    io.bio().sector()
                );
                io.state().fail();
                return;
            };
            io.state().tried.store(tried | (1 << leg), Relaxed);
            let Some(bdev) = self.dev_bdev(leg) else {
                continue;
            };
            let src = io.bio();
            let size = src.size() as usize;
            let sector = src.sector().saturating_sub(self.begin);
            let opf = src.opf();
            // With a timeout the read lands in pages of its own: a leg that answers after the
            // read was served elsewhere must not write into the caller's pages (rule 4).
            let bounce = if self.io_timeout_ms.load(Relaxed) > 0 && size > 0 {
                PageBuf::new_with(size, Self::io_gfp())
                    .ok()
                    .and_then(|b| Arc::new(b, Self::io_gfp()).ok())
            } else {
                None
            };
            let leg_bio = match &bounce {
                // SAFETY: The leg stays open until the bio completes (its payload holds the
                // device's track, or `io` and so the target, see `submit_legs`), the module's
                // bio set outlives every bio, and the payload owns the pages.
                Some(b) => unsafe { self.leg_bios().alloc_with_buf(bdev, opf, sector, b, size) },
                // SAFETY: As above; the read carries the caller's pages, and the caller's bio
                // completes only after this bio (it holds an `IoRef`).
                None => unsafe {
                    let nr_vecs = src.fit_in_segments(BIO_MAX_VECS).1;
                    self.leg_bios()
                        .alloc_with_data_of(bdev, opf, sector, src, size as u32, nr_vecs)
                },
            };
            match leg_bio {
                Ok(b) => {
                    let payload = LegIo::new(leg, Owner::Read(io), bounce, size);
                    self.submit_tracked(b, payload);
                    return;
                }
                Err(_) => continue,
            }
        }
    }

    /// A leg read ended (in completion context).
    pub(crate) fn read_done(
        &self,
        io: IoRef<Self>,
        leg: usize,
        status: Result,
        bounce: Option<&PageBuf>,
        bytes: usize,
    ) {
        if let (Ok(()), Some(b)) = (status, bounce) {
            if b.copy_to_bio(io.bio(), bytes).is_err() {
                // Not the leg's fault: the sizes did not match (cannot happen for bios we
                // built); fail the read rather than return what was not copied.
                io.state().fail();
                return;
            }
        }
        match status {
            Ok(()) => {
                io.state().legs_ok.fetch_add(1, Relaxed);
            }
            // Read-ahead is speculative: devices may fail it (e.g. when busy) without being
            // broken, so it neither detaches the leg nor is retried (dm-raid1 does the same).
            Err(_) if io.bio().is_readahead() => io.state().fail(),
            Err(e) => {
                self.leg_failed(leg, e);
                self.read_retry(io);
            }
        }
    }

    /// Queues a read for another leg (from the retry work: submission may sleep).
    pub(crate) fn read_retry(&self, io: IoRef<Self>) {
        let mut shared = self.shared.lock();
        shared.read_retry.push(io);
        // Kicked under the lock, see `start_write`.
        self.kick::<RETRY_WORK>();
    }

    /// Maps a write, flush, discard or write-zeroes.
    pub(crate) fn map_write(&self, mut bio: MapBio<'_, Self>) -> Mapped {
        let op = bio.bio().op();
        let has_data = matches!(op, ReqOp::Write) && bio.bio().size() > 0;
        if has_data && !self.fit_one_leg_bio(&mut bio) {
            return bio.kill();
        }
        // Device-mapper splits writes at region boundaries (max_io_len) but not discards and
        // write-zeroes: keep the part in this region, the rest comes back in another call, so
        // every region they change is tracked.
        if matches!(op, ReqOp::Discard | ReqOp::WriteZeroes) && bio.bio().size() > 0 {
            let left = self.region_size - bio.target_sector() % self.region_size;
            if !bio.accept_partial(left.min(u64::from(u32::MAX)) as u32) {
                return bio.kill();
            }
        }
        let region = if bio.bio().size() == 0 {
            NO_REGION
        } else {
            // `region_size` is validated non-zero by the table parser.
            bio.target_sector()
                .checked_div(self.region_size)
                .unwrap_or(0)
        };
        let (io, mapped) = bio.start(MirrorIo::new(region));
        if region == NO_REGION {
            self.submit_legs(io);
        } else {
            self.start_write(io);
        }
        mapped
    }

    /// Records the write in its region, then submits it or queues it.
    pub(crate) fn start_write(&self, io: IoRef<Self>) {
        let mut shared = self.shared.lock();
        let start = shared
            .regions()
            .and_then(|mut r| r.write_start(io.state().region));
        match start {
            Ok(WriteStart::Proceed) | Ok(WriteStart::ProceedUnlogged) => {
                drop(shared);
                self.submit_legs(io);
            }
            Ok(WriteStart::WaitFor(generation)) => {
                io.state().generation.store(generation, Relaxed);
                shared.waiting_log.push(io);
                // Kicked under the lock: the worker can release `io` (and so let the target be
                // destroyed) only after we stop touching the target.
                self.kick::<LOG_WORK>();
            }
            Ok(WriteStart::Delay) => shared.delayed.push(io),
            Err(e) => {
                drop(shared);
                pr_err!(
                    "{}: region bookkeeping failed: {}\n",
                    self.dev_name(),
                    format_args!("{}", e)
                );
                io.state().fail();
            }
        }
    }

    /// Sends `io` to every leg that receives writes.
    pub(crate) fn submit_legs(&self, io: IoRef<Self>) {
        let st = io.state();
        // One count for the submission itself, so the write cannot finish half-submitted.
        st.remaining.store(1, Relaxed);
        let src: &Bio = io.bio();
        let (opf, size) = (src.opf(), src.size());
        let has_data = matches!(src.op(), ReqOp::Write) && size > 0;
        let nr_vecs = if has_data {
            src.fit_in_segments(BIO_MAX_VECS).1
        } else {
            0
        };
        // Legs are whole devices: sector N of the target is sector N of every leg. Bios without
        // data (empty flushes) carry no position.
        let sector = if size == 0 {
            0
        } else {
            src.sector().saturating_sub(self.begin)
        };
        // With a timeout the write may be acknowledged while a hung leg still holds its bio
        // (rule 4): the leg bios hold references on the caller's pages, so the pages stay
        // allocated however late the hung leg completes (what it writes then does not matter:
        // the region is resynced to that leg, which rejoins only once every bio it was given
        // up on came back). Where the pages' references are not counted (slab memory), the
        // legs write a copy of the data that they own, as md's write-behind does. Without
        // memory for either, the write carries the caller's pages and waits for every leg.
        let timeout = has_data && self.io_timeout_ms.load(Relaxed) > 0;
        let refs = if timeout {
            PageRefs::of_bio(src, size, Self::io_gfp())
                .ok()
                .and_then(|r| Arc::new(r, Self::io_gfp()).ok())
        } else {
            None
        };
        let bounce = if timeout && refs.is_none() {
            PageBuf::new_with(size as usize, Self::io_gfp())
                .ok()
                .and_then(|mut b| b.copy_from_bio(src, size as usize).ok().map(|()| b))
                .and_then(|b| Arc::new(b, Self::io_gfp()).ok())
        } else {
            None
        };
        for (leg, dev) in self.writable_legs() {
            // SAFETY: The device stays open until the bio completes: a tracked bio's payload
            // (timeout set at submission) holds the device's track, which holds the device's
            // file, even once abandoned and the table gone; an untracked one is never abandoned
            // and its payload holds `io`, so the target and its `DmDev` live until then. The module's bio set
            // outlives every bio. The leg bio carries pages its payload owns, or the data of
            // `src` with references on its pages in the payload, or the data of `src`, which
            // then completes only after every leg bio that is not abandonable.
            let leg_bio = unsafe {
                match &bounce {
                    Some(b) => {
                        self.leg_bios()
                            .alloc_with_buf(dev.bdev(), opf, sector, b, size as usize)
                    }
                    None if has_data => self.leg_bios().alloc_with_data_of(
                        dev.bdev(),
                        opf,
                        sector,
                        src,
                        size,
                        nr_vecs,
                    ),
                    None => self
                        .leg_bios()
                        .alloc_dataless(dev.bdev(), opf, sector, size),
                }
            };
            match leg_bio {
                Ok(b) => {
                    st.remaining.fetch_add(1, Relaxed);
                    let mut payload =
                        LegIo::new(leg, Owner::Write(io.clone()), bounce.clone(), size as usize);
                    payload.page_refs = refs.clone();
                    // A bio without data holds nothing of the caller's but the write itself.
                    payload.abandonable = bounce.is_some() || refs.is_some() || !has_data;
                    self.submit_tracked(b, payload);
                }
                Err(e) => {
                    st.legs_failed.fetch_add(1, Relaxed);
                    self.leg_failed(leg, e);
                }
            }
        }
        if st.remaining.fetch_sub(1, Relaxed) == 1 {
            self.legs_done(io);
        }
    }

    /// One leg's part of a write ended: completed, failed, or abandoned by the watchdog.
    pub(crate) fn leg_write_done(&self, io: IoRef<Self>, leg: usize, result: LegResult) {
        let st = io.state();
        match result {
            LegResult::Ok => {
                st.legs_ok.fetch_add(1, Relaxed);
            }
            LegResult::TimedOut => {
                st.legs_failed.fetch_add(1, Relaxed);
            }
            LegResult::Failed(e) => {
                let _ = st.first_error.cmpxchg(0, e.to_errno(), Relaxed);
                // A leg that cannot discard or write zeroes (any more) fails that request, not
                // the leg: its data is intact.
                // The other legs may have carried it out: the region is resynced.
                let unsupported = e == EOPNOTSUPP || e == EREMOTEIO;
                let op = io.bio().op();
                if unsupported && matches!(op, ReqOp::Discard | ReqOp::WriteZeroes) {
                    st.diverged.store(true, Relaxed);
                } else {
                    st.legs_failed.fetch_add(1, Relaxed);
                    self.leg_failed(leg, e);
                }
            }
        }
        if st.remaining.fetch_sub(1, Relaxed) == 1 {
            self.legs_done(io);
        }
    }

    /// Every leg bio of `io` completed.
    fn legs_done(&self, io: IoRef<Self>) {
        let st = io.state();
        let mut shared = self.shared.lock();
        // Without an in-sync leg the mirror is failed: a Resyncing leg alone lacks the newest
        // data of regions not copied yet, so nothing is acknowledged (design: failed = I/O
        // errors, never stale data).
        if !leg_can_serve(shared.state.legs()) {
            st.fail();
        }
        if st.region == NO_REGION {
            // A flush a leg missed (it failed there, or the leg is out of service and its state
            // not yet durable): acknowledged once the log records that leg as out of sync,
            // like a write (rule 1).
            if let Some(generation) = shared.state.pending_leg_change() {
                st.generation.store(generation, Relaxed);
                shared.waiting_ack.push(io);
                // Kicked under the lock, see `start_write`.
                self.kick::<LOG_WORK>();
            }
            // Dropping `io` (after the lock) acknowledges a flush that was not queued.
            drop(shared);
            return;
        }
        let all_ok = st.legs_failed.load(Relaxed) == 0;
        let diverged = st.diverged.load(Relaxed);
        let mut saturated = false;
        let done = shared.regions().and_then(|mut r| {
            saturated = r.writes_in_flight(st.region) == u16::MAX;
            if diverged && all_ok {
                r.write_done_diverged(st.region)
            } else {
                r.write_done(st.region, all_ok)
            }
        });
        if diverged {
            // The legs may differ in this region until the resync copied it. A write-zeroes
            // that did not happen everywhere fails; the caller falls back to writing zeroes.
            if io.bio().op() == ReqOp::WriteZeroes {
                st.fail_with(EOPNOTSUPP);
            }
            self.kick::<RESYNC_WORK>();
        }
        // Writes delayed because the region's counter was full may start now (from the retry
        // work: starting them may sleep). Kicked under the lock, see `start_write`.
        if saturated {
            let sh = &mut *shared;
            sh.restart.append(&mut sh.delayed);
            self.kick::<RETRY_WORK>();
        }
        match done {
            Ok(WriteDone::Ack) => {}
            Ok(WriteDone::AckAfter(generation)) => {
                st.generation.store(generation, Relaxed);
                shared.waiting_ack.push(io);
                // Kicked under the lock, see `start_write`.
                self.kick::<LOG_WORK>();
                return;
            }
            Ok(WriteDone::CannotAck) | Err(_) => st.fail(),
        }
        // Regions whose writes all completed are cleared lazily, once idle for a whole pass.
        self.kick_after::<CLEAN_WORK>(crate::CLEAN_PASS_MS);
        drop(shared);
        // Dropping `io` acknowledges the write.
    }

    /// Flushes the volatile caches of every leg that receives writes and waits. A leg whose
    /// flush fails is detached (a timeout already made it Degraded). Returns whether every
    /// such leg flushed.
    pub(crate) fn flush_legs(&self) -> bool {
        let opf = Opf::write().preflush().sync();
        let mut reqs = [SyncReq {
            dev: 0,
            opf,
            sector: 0,
            bytes: 0,
        }; MAX_LEGS];
        let mut n = 0;
        for (i, _) in self.writable_legs() {
            if let Some(r) = reqs.get_mut(n) {
                r.dev = i;
                n += 1;
            }
        }
        let Ok(buf) = PageBuf::new_with(0, GFP_NOIO) else {
            return false;
        };
        let mut res = [Ok(()), Ok(()), Ok(()), Ok(())];
        if self.tracked_sync_io(buf, &reqs[..n], &mut res).is_err() {
            return false;
        }
        let mut all = true;
        for (r, res) in reqs.iter().zip(res.iter()).take(n) {
            if let Err(e) = res {
                all = false;
                if *e != ETIMEDOUT {
                    self.leg_failed(r.dev, *e);
                }
            }
        }
        all
    }

    /// A leg I/O failed: the leg is detached at once (Inactive) and I/O goes on.
    pub(crate) fn leg_failed(&self, leg: usize, err: Error) {
        if self.set_leg_state(
            leg,
            LegState::Inactive,
            &[LegState::InSync, LegState::Resyncing],
        ) {
            pr_err!(
                "{}: leg {} failed with error {}: detached (Inactive)\n",
                self.dev_name(),
                leg,
                err.to_errno()
            );
        }
    }

    /// Submits writes released by the log or a resync; completes those that must fail.
    pub(crate) fn release_writes(&self, mut list: IoList<Self>) {
        while let Some(io) = list.pop() {
            if io.state().must_fail() {
                continue;
            }
            self.submit_legs(io);
        }
    }
}

impl WorkItem<RETRY_WORK> for RtMirror {
    type Pointer = Running;

    fn run(this: Running) {
        this.run_retry();
    }
}

impl RtMirror {
    fn run_retry(&self) {
        let mut list = IoList::new();
        let mut restart = IoList::new();
        {
            let mut shared = self.shared.lock();
            list.append(&mut shared.read_retry);
            restart.append(&mut shared.restart);
        }
        while let Some(io) = list.pop() {
            self.submit_read(io);
        }
        while let Some(io) = restart.pop() {
            self.start_write(io);
        }
    }
}
