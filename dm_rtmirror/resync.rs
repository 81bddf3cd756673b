// SPDX-License-Identifier: GPL-2.0

//! Resync: copies every out-of-sync region from the source leg (the one known to hold the
//! newest data) to the other legs that receive writes, one region at a time, in 1 MiB chunks,
//! throttled by `resync_kbps`. A region being copied is claimed in the region bookkeeping, so a
//! write to it waits until the copy ends (no lost update between the copy and the write); a
//! claim holds new writes back until those in flight finished, so a region written all the
//! time is copied too. The throttle sleeps between regions, never while one is claimed.

use crate::inflight::SyncReq;
use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{Opf, PageBuf},
    device_mapper::IoList,
    prelude::*,
    sync::atomic::Relaxed,
    time::{delay::fsleep, Delta},
    workqueue::WorkItem,
};

use crate::region::{self, ResyncClaim};
use crate::status::LegState;
use crate::table::MAX_LEGS;
use crate::{RtMirror, Running, CLEAN_WORK, RESYNC_WORK};

/// Bytes copied per I/O.
pub(crate) const RESYNC_CHUNK: usize = 1 << 20;

impl WorkItem<RESYNC_WORK> for RtMirror {
    type Pointer = Running;

    fn run(this: Running) {
        this.run_resync();
    }
}

impl RtMirror {
    fn run_resync(&self) {
        let mut buf = self.resync_buf.lock();
        if buf.is_none() {
            match PageBuf::new(RESYNC_CHUNK) {
                Ok(b) => *buf = Some(b),
                Err(_) => {
                    pr_err!(
                        "{}: resync: out of memory, retrying later\n",
                        self.dev_name()
                    );
                    self.kick_after::<RESYNC_WORK>(1000);
                    return;
                }
            }
        }

        let mut cursor = 0u64;
        let mut copied = 0u64;
        loop {
            if self.suspended.load(Relaxed) {
                return;
            }
            let mut shared = self.shared.lock();
            let Some(source) = shared.source else { return };
            // Nothing to copy to (the other legs are absent or out of service): the regions
            // stay out of sync until a leg comes back.
            if !self.writable_legs().any(|(i, _)| i != source) {
                return;
            }
            let Ok(mut r) = shared.regions() else { return };
            let Some(region) = r.next_out_of_sync(cursor) else {
                drop(shared);
                self.resync_finished(copied);
                return;
            };
            match r.resync_begin(region) {
                Ok(ResyncClaim::Claimed) => drop(shared),
                Ok(ResyncClaim::Draining) => {
                    drop(shared);
                    if !self.wait_drained(region) {
                        return;
                    }
                }
                Ok(ResyncClaim::NotNeeded) => {
                    cursor = region + 1;
                    continue;
                }
                Err(_) => return,
            }
            let copied_to = self.copy_region(&mut buf, source, region);
            // Every leg that receives writes now must have had the copy (another leg may have
            // come back meanwhile).
            let ok = self.end_claim(region, || {
                copied_to.is_some_and(|mask| {
                    self.writable_legs()
                        .all(|(i, _)| i == source || mask & (1 << i) != 0)
                })
            });
            if !ok {
                // A leg failed (the next round sees the new leg states), memory ran out or a
                // leg came back: start over after a pause, never spinning.
                cursor = 0;
                fsleep(Delta::from_millis(100));
                continue;
            }
            copied += 1;
            cursor = region + 1;
            // Throttled after the region is released: writes to it do not wait for the pause.
            let start = region.saturating_mul(self.region_size);
            let sectors = self.len.saturating_sub(start).min(self.region_size);
            self.throttle((sectors << 9) as usize);
        }
    }

    /// Waits until the writes in flight to `region`, claimed while they drain, finished.
    /// Returns `false` (the claim given up, held-back writes restarted) if the target is being
    /// suspended meanwhile.
    fn wait_drained(&self, region: u64) -> bool {
        loop {
            fsleep(Delta::from_millis(1));
            if self.suspended.load(Relaxed) {
                self.end_claim(region, || false);
                return false;
            }
            let claim = self
                .shared
                .lock()
                .regions()
                .and_then(|mut r| r.resync_begin(region));
            match claim {
                Ok(ResyncClaim::Draining) => {}
                Ok(ResyncClaim::Claimed) => return true,
                // Not reached while claimed; never leave writes held back.
                Ok(ResyncClaim::NotNeeded) | Err(_) => {
                    self.end_claim(region, || false);
                    return false;
                }
            }
        }
    }

    /// Ends the resync claim on `region`, marking it in sync if `copied()` (evaluated under the
    /// region lock, so no leg comes back between the check and the mark), and restarts the
    /// writes held back meanwhile. Returns what `copied()` said.
    fn end_claim(&self, region: u64, copied: impl FnOnce() -> bool) -> bool {
        let mut delayed = IoList::new();
        let mut shared = self.shared.lock();
        let ok = copied();
        let _ = shared.regions().and_then(|mut r| r.resync_end(region, ok));
        delayed.append(&mut shared.delayed);
        drop(shared);
        while let Some(io) = delayed.pop() {
            self.start_write(io);
        }
        ok
    }

    /// Runs `reqs` on the resync buffer in `slot`; the buffer is lost to a hung leg's bio if
    /// one was abandoned. Returns `false` if there was no buffer.
    fn resync_io(&self, slot: &mut Option<PageBuf>, reqs: &[SyncReq], out: &mut [Result]) -> bool {
        let buf = match slot.take() {
            Some(b) => b,
            None => match PageBuf::new_with(RESYNC_CHUNK, GFP_NOIO) {
                Ok(b) => b,
                Err(_) => return false,
            },
        };
        match self.tracked_sync_io(buf, reqs, out) {
            Ok(back) => {
                *slot = back;
                true
            }
            Err(_) => false,
        }
    }

    /// A resync I/O on `leg` failed: an error detaches the leg; a timeout already made the
    /// watchdog move it to Degraded.
    fn resync_leg_failed(&self, leg: usize, e: Error) {
        if e != ETIMEDOUT {
            self.leg_failed(leg, e);
        }
    }

    /// Copies one region from leg `source` to every other leg that receives writes; returns
    /// the mask of the legs copied to, `None` if the copy failed.
    fn copy_region(&self, buf: &mut Option<PageBuf>, source: usize, region: u64) -> Option<u32> {
        self.legs.get(source).and_then(|l| l.dev.as_ref())?;
        let mut targets = [SyncReq {
            dev: 0,
            opf: Opf::write().fua(),
            sector: 0,
            bytes: 0,
        }; MAX_LEGS];
        let mut target_legs = [0usize; MAX_LEGS];
        let mut n = 0;
        for (i, _) in self.writable_legs() {
            if i != source && n < MAX_LEGS {
                targets[n].dev = i;
                target_legs[n] = i;
                n += 1;
            }
        }
        if n == 0 {
            return None;
        }
        let start = region * self.region_size;
        let end = (start + self.region_size).min(self.len);
        let mut sector = start;
        while sector < end {
            let sectors = ((end - sector) as usize).min(RESYNC_CHUNK >> 9);
            let bytes = sectors << 9;
            let read = SyncReq {
                dev: source,
                opf: Opf::read(),
                sector,
                bytes,
            };
            let mut res = [Ok(())];
            if !self.resync_io(buf, &[read], &mut res) {
                return None;
            }
            if let Err(e) = res[0] {
                self.resync_leg_failed(source, e);
                return None;
            }
            for t in targets.iter_mut().take(n) {
                t.sector = sector;
                t.bytes = bytes;
            }
            let mut res = [Ok(()), Ok(()), Ok(()), Ok(())];
            if !self.resync_io(buf, &targets[..n], &mut res) {
                return None;
            }
            let mut all_ok = true;
            for (k, r) in res.iter().enumerate().take(n) {
                if let Err(e) = r {
                    self.resync_leg_failed(target_legs[k], *e);
                    all_ok = false;
                }
            }
            if !all_ok {
                return None;
            }
            self.resync_bytes.fetch_add(bytes as u64, Relaxed);
            sector += sectors as u64;
        }
        Some(target_legs.iter().take(n).fold(0u32, |m, &i| m | (1 << i)))
    }

    /// Sleeps long enough that copying `bytes` stays within `resync_kbps`, in slices, so a
    /// suspend does not wait for the whole pause. The rate is read again for every slice: a
    /// `resync_kbps` message takes effect within one slice, also on a pause begun at a slow
    /// rate (at 1 KiB/s one 512 KiB region meant a pause of over 8 minutes).
    fn throttle(&self, bytes: usize) {
        let mut slept = 0u64;
        while !self.suspended.load(Relaxed) {
            let kbps = self.resync_kbps.load(Relaxed);
            let left = region::resync_pause_ms(bytes as u64, kbps).saturating_sub(slept);
            if left == 0 {
                return;
            }
            let slice = left.min(100);
            fsleep(Delta::from_millis(slice as i64));
            slept += slice;
        }
    }

    /// Every out-of-sync region was copied: resyncing legs are in sync again.
    fn resync_finished(&self, copied: u64) {
        let mut changed = false;
        for (i, leg) in self.legs.iter().enumerate() {
            if leg.state() == LegState::Resyncing {
                changed |= self.set_leg_state(i, LegState::InSync, &[LegState::Resyncing]);
            }
        }
        if copied > 0 || changed {
            pr_info!(
                "{}: resync done: {} regions copied, {} bytes in total\n",
                self.dev_name(),
                copied,
                self.resync_bytes.load(Relaxed)
            );
            self.event.raise();
            // The copied regions are clean now: clear them in the log.
            self.kick::<CLEAN_WORK>();
        }
    }
}
