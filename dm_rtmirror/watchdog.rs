// SPDX-License-Identifier: GPL-2.0

//! The watchdog: one delayed work per table that enforces `io_timeout_ms` over the in-flight
//! I/O of every leg and log device ([`crate::inflight`]) and probes Degraded legs.
//!
//! A leg with I/O older than the timeout becomes Degraded, unless it is the last in-sync leg
//! (then I/O waits for it, as it would for a plain disk): its abandonable bios are given up,
//! so the writes waiting for them complete once the log records the Degraded state and their
//! regions, and the reads go to another leg. A log copy that does not answer fails its log
//! write (the log goes on with the other copy). A Degraded leg is probed with a small read;
//! once a probe succeeds and every abandoned bio of the leg has come back, the leg resyncs the
//! regions written meanwhile and is in sync again.

use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{Opf, PageBuf},
    prelude::*,
    sync::{
        atomic::{Acquire, Relaxed, Release},
        Arc,
    },
    workqueue::WorkItem,
};

use crate::inflight::{
    now_ns, LegIo, Owner, DETACHED_IOS, PROBE_FAILED, PROBE_IDLE, PROBE_IN_FLIGHT, PROBE_OK,
};
use crate::status::LegState;
use crate::table::MAX_LEGS;
use crate::{region, LegChange, RtMirror, Running, RESYNC_WORK, WATCHDOG_WORK};

/// A Degraded leg is probed this often.
pub(crate) const PROBE_INTERVAL_MS: i64 = 1000;

/// Bytes read by a probe.
const PROBE_BYTES: usize = 4096;

/// Abandoned bios handled per lock hold.
const ABANDON_BATCH: usize = 64;

impl WorkItem<WATCHDOG_WORK> for RtMirror {
    type Pointer = Running;

    fn run(this: Running) {
        this.run_watchdog();
    }
}

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

impl RtMirror {
    /// How often the watchdog looks: an eighth of the timeout, within 20 ms to 500 ms. A leg
    /// is taken for silent at the second pass that finds it so (`region::confirm_silent`), so
    /// a hang is seen at most a quarter of the timeout late.
    pub(crate) fn watchdog_period_ms(timeout_ms: u32) -> u32 {
        (timeout_ms / 8).clamp(20, 500)
    }

    fn run_watchdog(&self) {
        let timeout = self.io_timeout_ms.load(Relaxed);
        if timeout == 0 {
            return;
        }
        let timeout_ns = i64::from(timeout) * 1_000_000;
        let nr_legs = self.legs.len().min(MAX_LEGS);
        // Late legs are taken out of service the one silent longest first: when a leg hangs
        // and another is merely slow (it still completes requests, late), the slow one is
        // kept as the last in-sync leg. While no in-sync leg answers none is taken out
        // (`region::timeout_victims`): the first to answer shows which one hangs.
        let mut answering = [true; MAX_LEGS];
        let mut stalled = [None; MAX_LEGS];
        let mut states = [LegState::Missing; MAX_LEGS];
        for (leg, l) in self.legs.iter().enumerate().take(nr_legs) {
            let since = self.stalled_since(leg, timeout_ns);
            let (counts, seen) = region::confirm_silent(since, l.silent_seen.load(Relaxed));
            l.silent_seen.store(seen, Relaxed);
            answering[leg] = region::answers(since, now_ns(), timeout_ns);
            stalled[leg] = counts;
            states[leg] = l.state();
            if since.is_none() {
                self.leg_answers_in_time(leg);
            }
        }
        let mut order = [0; MAX_LEGS];
        let nr_late = region::timeout_victims(
            &answering[..nr_legs],
            &stalled[..nr_legs],
            &states[..nr_legs],
            &mut order,
        );
        let nr_in_sync = states.iter().filter(|&&s| s == LegState::InSync).count();
        for (leg, (late, state)) in stalled.iter().zip(states).enumerate().take(nr_legs) {
            let held = late.is_some()
                && state == LegState::InSync
                && !order.iter().take(nr_late).any(|&l| l == leg);
            if held {
                self.hold_silent_leg(leg, timeout, nr_in_sync == 1);
            }
        }
        let late_legs = order.iter().take(nr_late).copied();
        let late_legs = late_legs.filter(|&leg| self.leg_may_time_out(leg, timeout));
        // Log copies: a late one fails its log write, see `take_expired`.
        let log_devs = nr_legs..nr_legs + self.logs.len();
        if let Ok(mut batch) = KVec::with_capacity(ABANDON_BATCH, GFP_NOIO) {
            for dev in Iterator::chain(late_legs, log_devs) {
                loop {
                    self.take_expired(dev, timeout_ns, &mut batch);
                    let full = batch.len() == ABANDON_BATCH;
                    while let Some((owner, d)) = batch.pop() {
                        owner.abandon(self, d);
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        if !self.suspended.load(Relaxed) {
            self.probe_degraded_legs();
        }
        self.kick_after::<WATCHDOG_WORK>(Self::watchdog_period_ms(timeout));
    }

    /// Leg `leg` has no I/O beyond the timeout: if its I/O was waited for (last in-sync leg,
    /// or every in-sync leg silent), say that it answers again.
    fn leg_answers_in_time(&self, leg: usize) {
        if let Some(l) = self.legs.get(leg) {
            if l.held_by_timeout.xchg(false, Relaxed) {
                pr_info!(
                    "{}: leg {} answers again; I/O waited for it meanwhile\n",
                    self.dev_name(),
                    leg
                );
            }
        }
    }

    /// Leg `leg` is silent, but it is the `last` in-sync leg or every other in-sync leg is
    /// silent too: its I/O waits (see `region::timeout_victims`).
    fn hold_silent_leg(&self, leg: usize, timeout: u32, last: bool) {
        let Some(l) = self.legs.get(leg) else {
            return;
        };
        if l.held_by_timeout.xchg(true, Relaxed) {
            return;
        }
        let (oldest, last_done) = self.silence_ms(leg);
        let why = if last {
            "but it is the last in-sync leg: I/O waits for it"
        } else {
            "nor did any other in-sync leg: I/O waits until one answers"
        };
        pr_warn!(
            "{}: leg {} did not answer within {} ms (oldest I/O {} ms, last data {} ms ago), {}\n",
            self.dev_name(),
            leg,
            timeout,
            oldest,
            last_done,
            why
        );
    }

    /// Whether the late bios of leg `leg` may be given up: the leg hangs and is moved out of
    /// service (Degraded), or is out of service already. The last in-sync leg is kept: its
    /// I/O waits, and business goes on once it answers (a log copy that hangs simply fails
    /// its log write, see `run_watchdog`).
    fn leg_may_time_out(&self, leg: usize, timeout: u32) -> bool {
        let Some(l) = self.legs.get(leg) else {
            return false;
        };
        let from = [LegState::InSync, LegState::Resyncing];
        match self.change_leg_state(leg, LegState::Degraded, &from, true) {
            LegChange::Changed => {
                l.held_by_timeout.store(false, Relaxed);
                let (oldest, last_done) = self.silence_ms(leg);
                pr_warn!(
                    "{}: leg {} did not answer within {} ms (oldest I/O {} ms, last data {} ms ago): Degraded, I/O goes on without it and the regions written meanwhile are tracked\n",
                    self.dev_name(),
                    leg,
                    timeout,
                    oldest,
                    last_done
                );
                true
            }
            LegChange::NotInState => true,
            LegChange::LastInSync => {
                self.hold_silent_leg(leg, timeout, true);
                false
            }
        }
    }

    fn probe_degraded_legs(&self) {
        let now = now_ms();
        for (i, leg) in self.legs.iter().enumerate() {
            if leg.state() != LegState::Degraded {
                continue;
            }
            let (Some(dev), Some(track)) = (&leg.dev, self.tracks.get(i)) else {
                continue;
            };
            match track.probe.load(Acquire) {
                PROBE_IN_FLIGHT => {}
                PROBE_OK => {
                    track.probe.store(PROBE_IDLE, Release);
                    let late = track.abandoned.load(Relaxed);
                    if late == 0 {
                        self.leg_answers_again(i);
                    }
                }
                PROBE_FAILED => {
                    track.probe.store(PROBE_IDLE, Release);
                    if self.set_leg_state(i, LegState::Inactive, &[LegState::Degraded]) {
                        pr_err!(
                            "{}: leg {} answered its probe with an error: detached (Inactive)\n",
                            self.dev_name(),
                            i
                        );
                    }
                }
                _ => {
                    // No new probe while earlier I/O of the leg is still out: the leg cannot
                    // come back before it returned, and probes must not pile up on a device
                    // that queues forever.
                    if now < leg.next_probe_ms.load(Relaxed) || track.abandoned.load(Relaxed) > 0 {
                        continue;
                    }
                    leg.next_probe_ms.store(now + PROBE_INTERVAL_MS, Relaxed);
                    let Ok(buf) = PageBuf::new_with(PROBE_BYTES, GFP_NOIO)
                        .and_then(|b| Arc::new(b, GFP_NOIO).map_err(Into::into))
                    else {
                        continue;
                    };
                    // SAFETY: A probe is always tracked (`submit_tracked`), so its payload holds
                    // the device's track and file until it completes; the module's bio set
                    // outlives every bio and the payload owns the pages.
                    let bio = unsafe {
                        self.leg_bios().alloc_with_buf(
                            dev.bdev(),
                            Opf::read(),
                            0,
                            &buf,
                            PROBE_BYTES,
                        )
                    };
                    if let Ok(bio) = bio {
                        track.probe.store(PROBE_IN_FLIGHT, Release);
                        // The table does not wait for a probe: unload does.
                        DETACHED_IOS.fetch_add(1, Relaxed);
                        self.submit_tracked(
                            bio,
                            LegIo::new(i, Owner::Probe, Some(buf), PROBE_BYTES),
                        );
                    }
                }
            }
        }
    }

    /// A Degraded leg answered its probe and none of its abandoned bios is still out: it
    /// resyncs the regions written meanwhile, if an in-sync leg can be the source.
    fn leg_answers_again(&self, leg: usize) {
        let (has_source, dirty) = {
            let shared = self.shared.lock();
            (shared.source.is_some(), shared.state.out_of_sync_regions())
        };
        if !has_source {
            return;
        }
        if self.set_leg_state(leg, LegState::Resyncing, &[LegState::Degraded]) {
            pr_info!(
                "{}: leg {} answers again: resyncing the {} regions written meanwhile\n",
                self.dev_name(),
                leg,
                dirty
            );
            self.kick::<RESYNC_WORK>();
        }
    }
}
