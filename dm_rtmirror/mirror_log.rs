// SPDX-License-Identifier: GPL-2.0

//! The mirrored dirty-region log: activation from the log copies (format version 1 or 2), and
//! the log worker that writes each new generation to every healthy copy in parallel: only the
//! bitmap blocks that changed, then one header slot (docs/log-format.md).
//!
//! The decisions (format, which copy to trust, which regions are dirty, when a write may go)
//! are in `core/` (`log_format`, `region`); this file moves bytes and bios. With no log device
//! the log lives in memory only: its writes complete at once and every activation resyncs
//! everything (like dm-mirror's core log).

use crate::inflight::SyncReq;
use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{Opf, PageBuf, BIO_MAX_VECS},
    device_mapper::IoList,
    prelude::*,
    sync::atomic::Relaxed,
    workqueue::WorkItem,
};

use crate::log_format::{self, next_run, set_bits, CopyClass, LogOutcome, LogWant, ResyncSource};
use crate::region::{CleanPass, LogDone, LogWrite, RegionError, RegionState, Regions};
use crate::status::LegState;
use crate::table::MAX_LOGS;
use crate::{RtMirror, Running, CLEAN_WORK, LOG_WORK};

/// Region bookkeeping and the bios waiting on it, under the target's spinlock.
pub(crate) struct Shared {
    pub(crate) state: RegionState,
    bits: KVVec<u64>,
    inflight: KVVec<u16>,
    /// Identity written into every log copy.
    pub(crate) uuid: [u8; 16],
    /// Writes waiting for a log generation before they go to the legs.
    pub(crate) waiting_log: IoList<RtMirror>,
    /// Writes done on the legs, waiting for a log generation before they are acknowledged.
    pub(crate) waiting_ack: IoList<RtMirror>,
    /// Writes to a region that a resync is copying, or whose write counter is full.
    pub(crate) delayed: IoList<RtMirror>,
    /// Delayed writes to start again (by the retry work).
    pub(crate) restart: IoList<RtMirror>,
    /// Reads to retry on another leg.
    pub(crate) read_retry: IoList<RtMirror>,
    /// Leg that reads (and the resync) use while regions are out of sync; `None`: no leg is
    /// known to hold the newest data.
    pub(crate) source: Option<usize>,
}

impl Shared {
    pub(crate) fn new(nr_regions: u64, legs: &[LegState], nr_copies: u8) -> Result<Self> {
        let words = crate::region::region_words_needed(nr_regions);
        let nr = usize::try_from(nr_regions).map_err(|_| EINVAL)?;
        Ok(Self {
            state: RegionState::new(nr_regions, legs, nr_copies).map_err(|_| EINVAL)?,
            bits: KVVec::from_elem(0u64, words, GFP_KERNEL)?,
            inflight: KVVec::from_elem(0u16, nr, GFP_KERNEL)?,
            uuid: [0; 16],
            waiting_log: IoList::new(),
            waiting_ack: IoList::new(),
            delayed: IoList::new(),
            restart: IoList::new(),
            read_retry: IoList::new(),
            source: None,
        })
    }

    pub(crate) fn regions(&mut self) -> Result<Regions<'_>, RegionError> {
        Regions::new(&mut self.state, &mut self.bits, &mut self.inflight)
    }

    /// Moves the entries of `list` whose generation is at most `generation` (all of them if
    /// `None`) to `out`.
    fn take_ready(
        list: &mut IoList<RtMirror>,
        out: &mut IoList<RtMirror>,
        generation: Option<u64>,
    ) {
        let mut keep = IoList::new();
        while let Some(io) = list.pop() {
            match generation {
                Some(g) if io.state().generation.load(Relaxed) > g => keep.push(io),
                _ => out.push(io),
            }
        }
        list.append(&mut keep);
    }
}

/// Bytes of one log block.
const BLOCK: usize = log_format::LOG_BLOCK_BYTES as usize;

/// Buffers of the log worker, allocated with the table: a log write allocates nothing but
/// its bios (and new pages after a hung copy kept the old ones).
pub(crate) struct LogBuffers {
    /// The blocks of one log write at their place in a copy; the header is encoded in block
    /// 0 (it goes to each copy's own slot).
    encoded: KVVec<u8>,
    /// Bit per bitmap block: the blocks of the log write being written.
    blocks: KVVec<u64>,
    /// Pages for the bios (at most `BIO_MAX_VECS`); `None` after a log write was abandoned
    /// on a hung copy (its bio keeps the pages) until new ones are allocated.
    pages: Option<PageBuf>,
}

impl LogBuffers {
    pub(crate) fn new(log_bytes: usize, block_words: usize) -> Result<Self> {
        Ok(Self {
            encoded: KVVec::from_elem(0u8, log_bytes, GFP_KERNEL)?,
            blocks: KVVec::from_elem(0u64, block_words, GFP_KERNEL)?,
            pages: Some(PageBuf::new(Self::page_bytes(log_bytes))?),
        })
    }

    /// Bytes of the page buffer for a log of `log_bytes`.
    fn page_bytes(log_bytes: usize) -> usize {
        log_bytes.clamp(BLOCK, BIO_MAX_VECS as usize * BLOCK)
    }

    /// The page buffer, allocated anew (`GFP_NOIO`) if a hung copy kept the old one.
    fn take_pages(&mut self) -> Result<PageBuf> {
        match self.pages.take() {
            Some(p) => Ok(p),
            None => PageBuf::new_with(Self::page_bytes(self.encoded.len()), GFP_NOIO),
        }
    }
}

/// Why a log write was not completed.
enum WriteErr {
    /// Not issued (no memory): take the generation back and retry.
    Retry,
}

const WRITE_FUA: Opf = Opf::write().fua().sync();

impl RtMirror {
    /// Bytes of one log copy.
    pub(crate) fn log_bytes(&self) -> usize {
        log_format::log_bytes_needed(self.nr_regions) as usize
    }

    /// Reads log copy `i` into `image`, in pieces the page buffer holds; an error if it
    /// cannot be read (the copy has failed).
    fn read_copy(&self, i: usize, bufs: &mut LogBuffers, image: &mut [u8]) -> Result {
        match self.logs.get(i) {
            None => return Err(EINVAL),
            // Absent at activation: the copy has failed.
            Some(None) => return Err(ENODEV),
            Some(Some(_)) => {}
        }
        let mut off = 0;
        while off < image.len() {
            let buf = bufs.take_pages()?;
            let n = buf.len().min(image.len() - off);
            // Tracked like every log I/O: with a timeout, a copy that hangs fails its read
            // (ETIMEDOUT) instead of hanging the resume.
            let req = SyncReq {
                dev: self.legs.len() + i,
                opf: Opf::read(),
                sector: (off / 512) as u64,
                bytes: n,
            };
            let mut res = [Ok(())];
            let back = self.tracked_sync_io(buf, &[req], &mut res)?;
            res[0]?;
            let pages = back.ok_or(ETIMEDOUT)?;
            let r = pages.copy_to(0, &mut image[off..off + n]);
            bufs.pages = Some(pages);
            r?;
            off += n;
        }
        Ok(())
    }

    /// Builds the run-time state from the log copies (or a new log), once, before the target
    /// first goes live.
    pub(crate) fn activate(&self) -> Result {
        let nr_copies = self.logs.len().min(MAX_LOGS);
        let words = log_format::bitmap_words(self.nr_regions);
        let mut images: KVec<KVVec<u8>> = KVec::with_capacity(MAX_LOGS, GFP_KERNEL)?;
        let mut read_failed = [false; MAX_LOGS];
        {
            let mut bufs = self.log_bufs.lock();
            for (i, failed) in read_failed.iter_mut().enumerate().take(nr_copies) {
                let mut img = KVVec::from_elem(0u8, self.log_bytes(), GFP_KERNEL)?;
                if let Err(e) = self.read_copy(i, &mut bufs, &mut img) {
                    pr_err!(
                        "{}: log copy {}: read failed (error {}): marked failed\n",
                        self.dev_name(),
                        i,
                        e.to_errno()
                    );
                    *failed = true;
                }
                images.push(img, GFP_KERNEL)?;
            }
        }
        let mut copies: [Option<&[u8]>; MAX_LOGS] = [None; MAX_LOGS];
        for (i, img) in images.iter().enumerate() {
            if !read_failed[i] {
                copies[i] = Some(&img[..]);
            }
        }
        let want = LogWant {
            uuid: self.log_uuid,
            region_size: self.region_size,
            nr_regions: self.nr_regions,
            nr_legs: self.legs.len() as u8,
        };
        let mut union = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let mut common = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let act = log_format::activate_copies(&want, &copies[..nr_copies], &mut union, &mut common)
            .map_err(|_| EINVAL)?;
        drop(images);
        for (i, c) in act.classes.iter().enumerate().take(nr_copies) {
            match c {
                CopyClass::V2 => {}
                CopyClass::V1 => pr_info!(
                    "{}: log copy {}: format version 1, upgraded by the first log write\n",
                    self.dev_name(),
                    i
                ),
                _ => pr_info!(
                    "{}: log copy {}: not used: {}\n",
                    self.dev_name(),
                    i,
                    c.word()
                ),
            }
        }
        if nr_copies > 0 && self.log_uuid.is_none() {
            pr_warn!(
                "{}: the log is not bound to this mirror (no log_uuid): a log copy of another mirror with the same geometry would be trusted\n",
                self.dev_name()
            );
        }
        let mut uuid = [0u8; 16];
        match act.uuid {
            Some(u) => uuid = u,
            None => kernel::random::fill_bytes(&mut uuid),
        }

        let table_states = self.leg_states();
        let table_states = &table_states[..self.legs.len()];
        // Without a log device the log is kept in memory: one copy that cannot fail.
        let copies_in_state = nr_copies.max(1) as u8;
        let mut shared = Shared::new(self.nr_regions, table_states, copies_in_state)?;
        shared.uuid = uuid;
        let primary = self.primary.load(Relaxed) as usize;
        let unknown = act.outcome == LogOutcome::Unknown;
        {
            let mut r = shared.regions().map_err(|_| EINVAL)?;
            match (act.outcome, act.newest, self.nosync) {
                (LogOutcome::Found, Some(h), _) => {
                    r.activate(Some((&h, &union, &common)), act.max_generation)
                }
                (LogOutcome::New, _, true) => r.activate_nosync(act.max_generation),
                _ => r.activate(None, act.max_generation),
            }
            for (i, failed) in read_failed.iter().enumerate().take(nr_copies) {
                if *failed {
                    let _ = r.copy_failed(i);
                }
            }
            // Legs absent now are missing, whatever the log said.
            for (i, s) in table_states.iter().enumerate() {
                if *s == LegState::Missing {
                    let _ = r.set_leg_state(i, LegState::Missing);
                }
            }
        }
        shared.state.set_header_slots(act.next_slots);
        // Copies behind the newest generation count only once the first log write (every
        // block) reached them.
        if act.outcome == LogOutcome::Found {
            shared.state.set_rejoining(act.behind(nr_copies));
        }
        let available: KVec<bool> = {
            let mut v = KVec::with_capacity(self.legs.len(), GFP_KERNEL)?;
            for l in self.legs.iter() {
                v.push(l.dev.is_some(), GFP_KERNEL)?;
            }
            v
        };
        shared.source = match act.outcome {
            LogOutcome::Found => {
                match log_format::resync_source(act.newest.as_ref(), &available, primary as u8) {
                    ResyncSource::Leg(i) => Some(usize::from(i)),
                    ResyncSource::NoneInSync | ResyncSource::Unknown => None,
                }
            }
            // A new log: the legs were never written through this mirror; take the primary.
            LogOutcome::New => available
                .get(primary)
                .copied()
                .unwrap_or(false)
                .then_some(primary)
                .or_else(|| available.iter().position(|a| *a)),
            // The log existed and is lost: nothing says which leg is newest.
            LogOutcome::Unknown => None,
        };
        let out_of_sync = shared.state.out_of_sync_regions();
        let legs = shared.state.legs();
        for (leg, s) in self.legs.iter().zip(legs.iter()) {
            leg.set_state(*s);
        }
        let log_text = match act.outcome {
            LogOutcome::Found if act.clean => "log found, clean shutdown",
            LogOutcome::Found => "log found",
            LogOutcome::New if self.nosync => "new log, legs declared in sync (nosync)",
            LogOutcome::New if nr_copies == 0 => "in-memory log",
            LogOutcome::New => "new log (blank copies)",
            LogOutcome::Unknown => "no valid log copy",
        };
        pr_info!(
            "{}: activated: {}, generation {}, {} of {} regions out of sync, source leg {}, {} torn log blocks\n",
            self.dev_name(),
            log_text,
            act.max_generation,
            out_of_sync,
            self.nr_regions,
            shared.source.map_or(-1, |s| s as i64),
            act.bad_blocks
        );
        if unknown {
            pr_err!(
                "{}: the log is lost or corrupt and no leg is known to hold the newest data: I/O fails until 'trust <leg>' names the leg to resync from\n",
                self.dev_name()
            );
        }
        self.log_upgrade.store(act.upgrade, Relaxed);
        self.untrusted.store(unknown, Relaxed);
        // The old state's memory may be vmalloc'ed: free it after the spinlock (irqs off).
        let old = core::mem::replace(&mut *self.shared.lock(), shared);
        drop(old);
        Ok(())
    }

    /// Writes every due log generation and releases the writes waiting for them.
    pub(crate) fn run_log_writes(&self) {
        let mut bufs = self.log_bufs.lock();
        while self.write_generation(&mut bufs, false) {}
    }

    /// At a clean suspend: flushes the legs, then writes a header recording a clean shutdown,
    /// if every leg is in sync and no region needs resync.
    pub(crate) fn write_clean_shutdown(&self) {
        if self.logs.is_empty() || self.untrusted.load(Relaxed) {
            return;
        }
        let mut bufs = self.log_bufs.lock();
        let ready = {
            let shared = self.shared.lock();
            shared.state.out_of_sync_regions() == 0
                && !shared.state.log_lost()
                && shared.state.legs().iter().all(|s| *s == LegState::InSync)
        };
        if !ready {
            return;
        }
        // The flag says the legs are identical on stable media: flush their caches first.
        if !self.flush_legs() {
            return;
        }
        self.write_generation(&mut bufs, true);
    }

    /// Takes one log write (a clean-shutdown one if `clean`), writes it and records the
    /// result. Returns whether one was written.
    fn write_generation(&self, bufs: &mut LogBuffers, clean: bool) -> bool {
        let mut shared = self.shared.lock();
        let uuid = shared.uuid;
        let Ok(mut r) = shared.regions() else {
            return false;
        };
        let w = if clean {
            r.take_clean_write()
        } else {
            r.take_log_write()
        };
        let Some(w) = w else {
            return false;
        };
        let clears = r.snapshot_clears();
        // Regions are recorded clean only once every leg has on stable media the writes
        // that made them clean: flush the legs first (as dm-raid1 does before a log write
        // that clears bits). A leg whose flush fails is detached and this log write records
        // that; if any leg did not flush, the regions stay dirty and are resynced.
        if clears && !self.logs.is_empty() {
            drop(shared);
            let flushed = self.flush_legs();
            shared = self.shared.lock();
            let Ok(mut r) = shared.regions() else {
                return false;
            };
            if !flushed {
                // Only words of blocks already in the write change.
                r.undo_snapshot_clears();
            }
            r.refresh_snapshot_legs();
        }
        let Ok(r) = shared.regions() else {
            return false;
        };
        // Encoded under the lock: the snapshot may only be read there.
        let header = r.snapshot_header(uuid, self.region_size);
        let mut encoded = log_format::encode_header(&header, &mut bufs.encoded).is_ok();
        for (d, s) in bufs.blocks.iter_mut().zip(r.snapshot_blocks()) {
            *d = *s;
        }
        if self.logs.is_empty() {
            bufs.blocks.fill(0);
        }
        for b in set_bits(&bufs.blocks) {
            let off = log_format::bitmap_block_pos(b) as usize * BLOCK;
            encoded &= bufs.encoded.get_mut(off..off + BLOCK).is_some_and(|out| {
                log_format::encode_bitmap_block(
                    &uuid,
                    w.generation,
                    self.nr_regions,
                    b,
                    r.snapshot(),
                    out,
                )
                .is_ok()
            });
        }
        drop(shared);
        let ok_mask = if self.logs.is_empty() {
            w.copies
        } else if !encoded {
            0
        } else {
            match self.write_blocks(bufs, &w) {
                Ok(m) => m,
                Err(WriteErr::Retry) => {
                    // Nothing is lost: the next generation writes these blocks. Give the
                    // allocator a moment.
                    let _ = self
                        .shared
                        .lock()
                        .regions()
                        .map(|mut r| r.abort_log_write(w.generation));
                    kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
                    return true;
                }
            }
        };
        self.log_written(w.generation, ok_mask, w.copies);
        true
    }

    /// Writes the blocks of `w` (encoded in `bufs`) to its copies: bitmap blocks first, in
    /// runs of contiguous blocks, then each copy's header slot. Every bio is FUA. Returns the copies all of whose bios succeeded.
    fn write_blocks(&self, bufs: &mut LogBuffers, w: &LogWrite) -> Result<u8, WriteErr> {
        let present = self
            .logs
            .iter()
            .take(MAX_LOGS)
            .enumerate()
            .filter(|(_, d)| d.is_some())
            .fold(0u8, |m, (i, _)| m | 1 << i);
        let mask = w.copies & present;
        if self.log_upgrade.load(Relaxed) {
            // A version 1 copy has one header: upgrade the copies one after the other, so a
            // power cut tears at most one of them.
            let mut ok = 0;
            for i in 0..self.logs.len().min(MAX_LOGS) {
                if mask & (1 << i) != 0 {
                    ok |= self.write_set(bufs, w, 1 << i)?;
                }
            }
            if ok != 0 {
                self.log_upgrade.store(false, Relaxed);
            }
            return Ok(ok);
        }
        self.write_set(bufs, w, mask)
    }

    fn write_set(&self, bufs: &mut LogBuffers, w: &LogWrite, mask: u8) -> Result<u8, WriteErr> {
        let mut ok = mask;
        // FUA alone: a log write needs none of the copy's earlier writes flushed (they were
        // FUA themselves), and the legs are flushed separately before a log write that clears.
        let opf = WRITE_FUA;
        let run_max = LogBuffers::page_bytes(bufs.encoded.len()) / BLOCK;
        let mut from = 0;
        while let Some((first, n)) = next_run(&bufs.blocks, from, run_max) {
            from = first + n as u64;
            let pos = log_format::bitmap_block_pos(first) as usize;
            let (off, bytes) = (pos * BLOCK, n * BLOCK);
            ok &= self.write_run(bufs, ok, opf, off, bytes, |_| (pos * BLOCK / 512) as u64)?;
        }
        let slot = |i: usize| u64::from((w.slots >> i) & 1) * (BLOCK / 512) as u64;
        ok &= self.write_run(bufs, ok, opf, 0, BLOCK, slot)?;
        Ok(ok)
    }

    /// Writes `bytes` of `bufs.encoded` at `off` to each copy in `mask`, at the sector
    /// `sector(copy)`. Returns the copies written.
    fn write_run(
        &self,
        bufs: &mut LogBuffers,
        mask: u8,
        opf: Opf,
        off: usize,
        bytes: usize,
        sector: impl Fn(usize) -> u64,
    ) -> Result<u8, WriteErr> {
        if mask == 0 {
            return Ok(0);
        }
        let mut pages = bufs.take_pages().map_err(|_| WriteErr::Retry)?;
        let src = bufs.encoded.get(off..off + bytes).unwrap_or(&[]);
        if src.len() != bytes || pages.copy_from(0, src).is_err() {
            bufs.pages = Some(pages);
            return Ok(0);
        }
        let mut reqs = [SyncReq {
            dev: 0,
            opf,
            sector: 0,
            bytes,
        }; MAX_LOGS];
        let mut which = [0usize; MAX_LOGS];
        let mut n = 0;
        for i in 0..self.logs.len().min(MAX_LOGS) {
            if mask & (1 << i) != 0 {
                reqs[n].dev = self.legs.len() + i;
                reqs[n].sector = sector(i);
                which[n] = i;
                n += 1;
            }
        }
        let mut res = [Ok(()), Ok(())];
        // Not issued at all (no memory for the batch): the pages went with it.
        bufs.pages = self
            .tracked_sync_io(pages, &reqs[..n], &mut res)
            .map_err(|_| WriteErr::Retry)?;
        let mut ok = 0u8;
        for (k, r) in res.iter().enumerate().take(n) {
            match r {
                Ok(()) => ok |= 1 << which[k],
                Err(e) => pr_err!(
                    "{}: log copy {} failed (error {}): marked failed, the log goes on with the other copy\n",
                    self.dev_name(),
                    which[k],
                    e.to_errno()
                ),
            }
        }
        Ok(ok)
    }

    /// Records a finished log write and releases what waited for it.
    fn log_written(&self, generation: u64, ok: u8, issued: u8) {
        let mut release = IoList::new();
        let mut acks = IoList::new();
        let mut shared = self.shared.lock();
        let done = shared
            .regions()
            .and_then(|mut r| r.log_written(generation, ok));
        let durable = match done {
            Ok(LogDone::Durable(g)) => Some(g),
            // Every copy failed: waiting writes go unprotected; those that missed a leg can
            // never be recorded and fail.
            Ok(LogDone::LogLost) | Err(_) => None,
        };
        let sh = &mut *shared;
        Shared::take_ready(&mut sh.waiting_log, &mut release, durable);
        Shared::take_ready(&mut sh.waiting_ack, &mut acks, durable);
        drop(shared);
        if durable.is_none() {
            pr_err!(
                "{}: every log copy failed: the log is lost\n",
                self.dev_name()
            );
        }
        if ok != issued {
            self.event.raise();
        }
        self.release_writes(release);
        // Dropping each popped write acknowledges it; once the log is lost, a write that
        // waited to have its missed leg recorded can never be, and fails instead.
        while let Some(io) = acks.pop() {
            if durable.is_none() {
                io.state().fail();
            }
        }
    }
}

impl WorkItem<LOG_WORK> for RtMirror {
    type Pointer = Running;

    fn run(this: Running) {
        this.run_log_writes();
    }
}

impl WorkItem<CLEAN_WORK> for RtMirror {
    type Pointer = Running;

    fn run(this: Running) {
        let pass = {
            let mut shared = this.shared.lock();
            shared
                .regions()
                .map_or(CleanPass::default(), |mut r| r.clean_idle(u64::MAX))
        };
        if pass.cleaned > 0 {
            this.kick::<LOG_WORK>();
        }
        // Regions still idle at the next pass are cleared then.
        if pass.waiting > 0 {
            this.kick_after::<CLEAN_WORK>(crate::CLEAN_PASS_MS);
        }
    }
}
