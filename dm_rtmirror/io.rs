// SPDX-License-Identifier: GPL-2.0

//! The write path: region bookkeeping around each write, fan-out to the legs, completion.
//!
//! A write to a clean region waits until the log generation that marks the region dirty is
//! durable on a log copy ([`crate::mirror_log`]); a write to a region already durably dirty goes
//! to the legs at once. When the last leg completed, the region is told (`write_done`), and the
//! write is acknowledged, unless a leg missed it: then it waits for the log generation that
//! records that leg as out of sync (design rule 1).

use kernel::{
    block::bio::{Bio, BioCompletion, ReqOp, BIO_MAX_VECS},
    device_mapper::{IoList, IoRef, IoResult, MapBio, Mapped},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use crate::region::{WriteDone, WriteStart};
use crate::status::LegState;
use crate::RtMirror;

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
    /// The write must fail: it missed a leg and that cannot be recorded (log lost).
    must_fail: Atomic<bool>,
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
            must_fail: Atomic::new(false),
        }
    }

    pub(crate) fn fail(&self) {
        self.must_fail.store(true, Relaxed);
    }
}

impl IoResult for MirrorIo {
    fn result(&self) -> Result {
        if self.must_fail.load(Relaxed) {
            return Err(EIO);
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

/// Attached to each leg bio, handed back on its completion.
pub(crate) struct LegIo {
    io: IoRef<RtMirror>,
    leg: usize,
}

impl BioCompletion for LegIo {
    fn complete(self, status: Result) {
        let st = self.io.state();
        match status {
            Ok(()) => {
                st.legs_ok.fetch_add(1, Relaxed);
            }
            Err(e) => {
                let _ = st.first_error.cmpxchg(0, e.to_errno(), Relaxed);
                // A leg that cannot discard or write zeroes (any more) fails that request, not
                // the leg: its data is intact.
                let unsupported = e == EOPNOTSUPP || e == EREMOTEIO;
                let op = self.io.bio().op();
                if !(unsupported && matches!(op, ReqOp::Discard | ReqOp::WriteZeroes)) {
                    st.legs_failed.fetch_add(1, Relaxed);
                    self.io.target().leg_failed(self.leg, e);
                }
            }
        }
        if st.remaining.fetch_sub(1, Relaxed) == 1 {
            // SAFETY: `legs_done` stops using the target once it dropped or queued `io`
            // (queueing happens under the lock the queue's consumers take).
            let target = unsafe { self.io.target_unbound() };
            target.legs_done(self.io);
        }
    }
}

impl RtMirror {
    /// Maps a write, flush, discard or write-zeroes.
    pub(crate) fn map_write(&self, mut bio: MapBio<'_, Self>) -> Mapped {
        let has_data = matches!(bio.bio().op(), ReqOp::Write) && bio.bio().size() > 0;
        if has_data {
            let (bytes, _) = bio.bio().fit_in_segments(BIO_MAX_VECS);
            if bytes < bio.bio().size() {
                // Too many small segments for one leg bio: take the whole logical blocks that
                // fit now; device-mapper maps the rest in another call.
                let bytes = bytes - bytes % self.logical_block_size.max(512);
                let sectors = bytes >> kernel::block::SECTOR_SHIFT;
                if sectors == 0 {
                    return bio.kill();
                }
                bio.accept_partial(sectors);
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
                self.log_work.kick();
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
        for (leg, dev) in self.writable_legs() {
            // SAFETY: `dev` stays open as long as the target, which outlives its bios, and the
            // leg bio carries the data of `src`, which completes only after every leg bio.
            let leg_bio = unsafe {
                if has_data {
                    self.bios
                        .alloc_with_data_of(dev.bdev(), opf, sector, src, size, nr_vecs)
                } else {
                    self.bios.alloc_dataless(dev.bdev(), opf, sector, size)
                }
            };
            match leg_bio {
                Ok(b) => {
                    st.remaining.fetch_add(1, Relaxed);
                    b.submit(LegIo {
                        io: io.clone(),
                        leg,
                    });
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

    /// Every leg bio of `io` completed.
    fn legs_done(&self, io: IoRef<Self>) {
        let st = io.state();
        if st.region == NO_REGION {
            return;
        }
        let all_ok = st.legs_failed.load(Relaxed) == 0;
        let mut shared = self.shared.lock();
        let done = shared
            .regions()
            .and_then(|mut r| r.write_done(st.region, all_ok));
        match done {
            Ok(WriteDone::Ack) => {}
            Ok(WriteDone::AckAfter(generation)) => {
                st.generation.store(generation, Relaxed);
                shared.waiting_ack.push(io);
                // Kicked under the lock, see `start_write`.
                self.log_work.kick();
                return;
            }
            Ok(WriteDone::CannotAck) | Err(_) => st.fail(),
        }
        // Regions whose writes all completed are cleared lazily, in one batch.
        self.clean_work.kick_after(crate::CLEAN_DELAY_MS);
        drop(shared);
        // Dropping `io` acknowledges the write.
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
        while let Some(io) = list.pop(&self.io_source) {
            if io.state().must_fail.load(Relaxed) {
                continue;
            }
            self.submit_legs(io);
        }
    }
}
