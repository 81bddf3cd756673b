// SPDX-License-Identifier: GPL-2.0

//! The mirrored dirty-region log: activation from the log copies, and the log worker that
//! writes new generations to every healthy copy in parallel.
//!
//! The decisions (format, which copy to trust, which regions are dirty, when a write may go)
//! are in `core/` (`log_format`, `region`); this file moves bytes and bios. With no log device
//! the log lives in memory only: its writes complete at once and every activation resyncs
//! everything (like dm-mirror's core log).

use crate::inflight::SyncReq;
use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{Opf, PageBuf},
    device_mapper::IoList,
    prelude::*,
    sync::atomic::Relaxed,
    workqueue::WorkItem,
};

use crate::log_format::{self, LogHeader, LogIdentity, ResyncSource};
use crate::region::{LogDone, RegionError, RegionState, Regions};
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

/// Buffers of the log worker and of activation.
pub(crate) struct LogBuffers {
    /// One encoded log copy.
    encoded: KVVec<u8>,
    /// The same bytes in pages, for the bios; `None` after a log write was abandoned on a
    /// hung copy (its bio keeps the pages) until new ones are allocated.
    pages: Option<PageBuf>,
}

impl LogBuffers {
    pub(crate) fn new(log_bytes: usize) -> Result<Self> {
        Ok(Self {
            encoded: KVVec::from_elem(0u8, log_bytes, GFP_KERNEL)?,
            pages: Some(PageBuf::new(log_bytes)?),
        })
    }
}

impl RtMirror {
    /// Bytes of one log copy.
    pub(crate) fn log_bytes(&self) -> usize {
        log_format::log_bytes_needed(self.nr_regions) as usize
    }

    /// Reads log copy `i`: an error if it cannot be read (the copy has failed), `None` if it
    /// holds no valid log (new, torn or corrupt; the reason is logged).
    fn read_copy(
        &self,
        i: usize,
        bufs: &mut LogBuffers,
        bitmap: &mut [u64],
    ) -> Result<Option<LogHeader>> {
        if i >= self.logs.len() {
            return Err(EINVAL);
        }
        // Tracked like every log I/O: with a timeout, a copy that hangs fails its read
        // (ETIMEDOUT) instead of hanging the resume.
        let req = SyncReq {
            dev: self.legs.len() + i,
            opf: Opf::read(),
            sector: 0,
            bytes: self.log_bytes(),
        };
        let mut res = [Ok(())];
        let buf = match bufs.pages.take() {
            Some(b) => b,
            None => PageBuf::new(self.log_bytes())?,
        };
        let r = self
            .tracked_sync_io(buf, &[req], &mut res)
            .map(|back| bufs.pages = back);
        if let Err(e) = r.and(res[0]) {
            pr_err!(
                "{}: log copy {}: read failed (error {}): marked failed\n",
                self.dev_name(),
                i,
                e.to_errno()
            );
            return Err(e);
        }
        let pages = bufs.pages.as_mut().ok_or(ENOMEM)?;
        pages.copy_to(0, &mut bufs.encoded)?;
        match log_format::decode(&bufs.encoded, bitmap) {
            Ok(h) => Ok(Some(h)),
            Err(e) => {
                pr_info!(
                    "{}: log copy {}: not used: {}\n",
                    self.dev_name(),
                    i,
                    format_args!("{}", e)
                );
                Ok(None)
            }
        }
    }

    /// Builds the run-time state from the log copies (or a new log), once, before the target
    /// first goes live.
    pub(crate) fn activate(&self) -> Result {
        let nr_copies = self.logs.len();
        let words = log_format::bitmap_words(self.nr_regions);
        let mut bufs = self.log_bufs.lock();
        let mut maps: KVec<KVVec<u64>> = KVec::with_capacity(MAX_LOGS, GFP_KERNEL)?;
        let mut headers: [Option<LogHeader>; MAX_LOGS] = [None; MAX_LOGS];
        let mut read_failed = [false; MAX_LOGS];
        for i in 0..nr_copies {
            let mut map = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
            match self.read_copy(i, &mut bufs, &mut map) {
                Ok(h) => headers[i] = h,
                Err(_) => read_failed[i] = true,
            }
            maps.push(map, GFP_KERNEL)?;
        }
        drop(bufs);
        // The mirror's identity: that of the newest copy with this geometry, else a new one.
        let geometry_matches = |h: &LogHeader| {
            h.region_size == self.region_size
                && h.nr_regions == self.nr_regions
                && usize::from(h.nr_legs) == self.legs.len()
        };
        let mut uuid = [0u8; 16];
        let known = headers
            .iter()
            .flatten()
            .filter(|h| geometry_matches(h))
            .max_by_key(|h| h.generation);
        match known {
            Some(h) => uuid = h.uuid,
            None => kernel::random::fill_bytes(&mut uuid),
        }
        let id = LogIdentity {
            uuid,
            region_size: self.region_size,
            nr_regions: self.nr_regions,
            nr_legs: self.legs.len() as u8,
        };
        let mut copies: [Option<(LogHeader, &[u64])>; MAX_LOGS] = [None, None];
        for (i, (h, m)) in headers.iter().zip(maps.iter()).enumerate().take(nr_copies) {
            copies[i] = h.map(|h| (h, &m[..]));
        }
        let mut union = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let mut common = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let act = log_format::choose_copies(&id, &copies[..nr_copies], &mut union, &mut common)
            .map_err(|_| EINVAL)?;

        let table_states = self.leg_states();
        let table_states = &table_states[..self.legs.len()];
        // Without a log device the log is kept in memory: one copy that cannot fail.
        let copies_in_state = nr_copies.max(1) as u8;
        let mut shared = Shared::new(self.nr_regions, table_states, copies_in_state)?;
        shared.uuid = uuid;
        let primary = self.primary.load(Relaxed) as usize;
        {
            let mut r = shared.regions().map_err(|_| EINVAL)?;
            match (act.newest, self.nosync) {
                (Some(h), _) => r.activate(Some((&h, &union, &common)), act.max_generation),
                (None, true) => r.activate_nosync(act.max_generation),
                (None, false) => r.activate(None, act.max_generation),
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
        let available: KVec<bool> = {
            let mut v = KVec::with_capacity(self.legs.len(), GFP_KERNEL)?;
            for l in self.legs.iter() {
                v.push(l.dev.is_some(), GFP_KERNEL)?;
            }
            v
        };
        shared.source =
            match log_format::resync_source(act.newest.as_ref(), &available, primary as u8) {
                ResyncSource::Leg(i) => Some(usize::from(i)),
                // A new or lost log: nothing says which leg is newer; take the primary.
                ResyncSource::Unknown => available
                    .get(primary)
                    .copied()
                    .unwrap_or(false)
                    .then_some(primary)
                    .or_else(|| available.iter().position(|a| *a)),
                ResyncSource::NoneInSync => None,
            };
        let out_of_sync = shared.state.out_of_sync_regions();
        let legs = shared.state.legs();
        for (leg, s) in self.legs.iter().zip(legs.iter()) {
            leg.set_state(*s);
        }
        let log_text = if act.newest.is_some() {
            "log found"
        } else if self.nosync {
            "new log, legs declared in sync (nosync)"
        } else if nr_copies == 0 {
            "in-memory log"
        } else {
            "no valid log copy"
        };
        pr_info!(
            "{}: activated: {}, generation {}, {} of {} regions out of sync, source leg {}\n",
            self.dev_name(),
            log_text,
            act.max_generation,
            out_of_sync,
            self.nr_regions,
            shared.source.map_or(-1, |s| s as i64)
        );
        // The old state's memory may be vmalloc'ed: free it after the spinlock (irqs off).
        let old = core::mem::replace(&mut *self.shared.lock(), shared);
        drop(old);
        Ok(())
    }

    /// Writes every due log generation and releases the writes waiting for them.
    pub(crate) fn run_log_writes(&self) {
        let mut bufs = self.log_bufs.lock();
        loop {
            let mut shared = self.shared.lock();
            let uuid = shared.uuid;
            let (w, clears) = {
                let Ok(mut r) = shared.regions() else { return };
                let Some(w) = r.take_log_write() else {
                    return;
                };
                (w, r.snapshot_clears())
            };
            // Regions are recorded clean only once every leg has on stable media the writes
            // that made them clean: flush the legs first (as dm-raid1 does before a log write
            // that clears bits). A leg whose flush fails is detached and this log write records
            // that; if any leg did not flush, the regions stay dirty and are resynced.
            let mut flushed = true;
            if clears && !self.logs.is_empty() {
                drop(shared);
                flushed = self.flush_legs();
                shared = self.shared.lock();
            }
            let Ok(mut r) = shared.regions() else { return };
            if clears {
                if !flushed {
                    r.undo_snapshot_clears();
                }
                r.refresh_snapshot_legs();
            }
            let header = r.snapshot_header(uuid, self.region_size, false);
            let encoded = log_format::encode(&header, r.snapshot(), &mut bufs.encoded);
            drop(shared);
            let mut ok_mask = 0u8;
            if self.logs.is_empty() {
                ok_mask = w.copies;
            } else if encoded.is_ok() {
                let LogBuffers { encoded, pages } = &mut *bufs;
                let buf = match pages.take() {
                    Some(b) => Ok(b),
                    None => PageBuf::new_with(encoded.len(), GFP_NOIO),
                };
                if let Ok(mut buf) = buf {
                    if buf.copy_from(0, encoded).is_ok() {
                        let (mask, back) = self.write_copies(buf, w.copies);
                        ok_mask = mask;
                        *pages = back;
                    }
                }
            }
            self.log_written(w.generation, ok_mask, w.copies);
        }
    }

    /// Writes the encoded log in `pages` to the copies in `mask`; returns the mask of those
    /// written, and the pages unless a hung copy's bio still holds them.
    fn write_copies(&self, pages: PageBuf, mask: u8) -> (u8, Option<PageBuf>) {
        let opf = Opf::write().preflush().fua().sync();
        let mut reqs = [SyncReq {
            dev: 0,
            opf,
            sector: 0,
            bytes: self.log_bytes(),
        }; MAX_LOGS];
        let mut which = [0usize; MAX_LOGS];
        let mut n = 0;
        for i in 0..self.logs.len() {
            if mask & (1 << i) == 0 || n >= MAX_LOGS {
                continue;
            }
            reqs[n].dev = self.legs.len() + i;
            which[n] = i;
            n += 1;
        }
        let mut res = [Ok(()), Ok(())];
        let back = match self.tracked_sync_io(pages, &reqs[..n], &mut res) {
            Ok(b) => b,
            Err(_) => return (0, None),
        };
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
        (ok, back)
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
        let cleaned = {
            let mut shared = this.shared.lock();
            shared.regions().map_or(0, |mut r| r.clean_batch(u64::MAX))
        };
        if cleaned > 0 {
            this.kick::<LOG_WORK>();
        }
    }
}
