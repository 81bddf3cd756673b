//! Region bookkeeping: one test per defect found by review (each failed on the code before
//! its fix).

use rtmirror_core::region::*;
use rtmirror_core::status::LegState;
use rtmirror_core::table::MAX_LEGS;

const NR: u64 = 16;

struct Mem {
    st: RegionState,
    bits: Vec<u64>,
    inflight: Vec<u16>,
}

impl Mem {
    fn new(legs: &[LegState]) -> Self {
        let mut m = Mem {
            st: RegionState::new(NR, legs, 2).unwrap(),
            bits: vec![0; region_words_needed(NR)],
            inflight: vec![0; NR as usize],
        };
        m.r().activate_nosync(0);
        m
    }
    fn r(&mut self) -> Regions<'_> {
        Regions::new(&mut self.st, &mut self.bits, &mut self.inflight).unwrap()
    }
    /// Issues and completes the due log write on both copies.
    fn log(&mut self) -> Option<u64> {
        let w = self.r().take_log_write()?;
        self.r().log_written(w.generation, w.copies).unwrap();
        Some(w.generation)
    }
    /// Starts a write to `r` and makes it submittable.
    fn start(&mut self, r: u64) {
        match self.r().write_start(r).unwrap() {
            WriteStart::Proceed => {}
            WriteStart::WaitFor(g) => {
                let done = self.log().unwrap();
                assert!(done >= g);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A write failed on leg 1 (which was detached), and the operator rejoined leg 1 before the
/// write completed: the write must still complete (leg 0 has it), its region must be quiesced
/// so the resync can claim it, and it must be resynced.
#[test]
fn failed_write_racing_rejoin_completes_and_quiesces() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(3);
    m.r().set_leg_state(1, LegState::Inactive).unwrap();
    // rejoin 1: full resync, leg Resyncing again.
    m.r().mark_all_out_of_sync();
    m.r().set_leg_state(1, LegState::Resyncing).unwrap();
    let done = m.r().write_done(3, false);
    assert!(
        matches!(done, Ok(WriteDone::Ack) | Ok(WriteDone::AckAfter(_))),
        "write_done after rejoin: {done:?}"
    );
    assert_eq!(m.r().writes_in_flight(3), 0);
    assert!(m.r().needs_resync(3));
    m.log();
    assert_eq!(m.r().resync_begin(3), Ok(ResyncClaim::Claimed));
}

/// A write that failed on a leg that is still in service is a caller error.
#[test]
fn unmarked_failed_leg_is_still_an_error() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(3);
    assert_eq!(m.r().write_done(3, false), Err(RegionError::LegNotMarked));
    // The write is still accounted.
    assert_eq!(m.r().writes_in_flight(3), 1);
}

/// The 65536th concurrent write to one region waits (it does not fail), and may start once
/// one of the others finished.
#[test]
fn saturated_region_counter_delays_instead_of_failing() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(5);
    for _ in 1..u16::MAX {
        assert_eq!(m.r().write_start(5), Ok(WriteStart::Proceed));
    }
    assert_eq!(m.r().writes_in_flight(5), u16::MAX);
    assert_eq!(m.r().write_start(5), Ok(WriteStart::Delay));
    assert_eq!(m.r().write_done(5, true), Ok(WriteDone::Ack));
    assert_eq!(m.r().write_start(5), Ok(WriteStart::Proceed));
}

/// A write-zeroes (or discard) that one leg refused leaves the legs different: the region is
/// resynced, not cleaned, although every leg stays in service.
#[test]
fn diverged_write_is_resynced_not_cleaned() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(7);
    assert_eq!(m.r().write_done_diverged(7), Ok(WriteDone::Ack));
    assert_eq!(m.r().writes_in_flight(7), 0);
    assert!(m.r().needs_resync(7));
    assert_eq!(m.r().clean_batch(u64::MAX), 0);
    m.log();
    assert!(m.r().is_durably_dirty(7));
    assert_eq!(m.r().resync_begin(7), Ok(ResyncClaim::Claimed));
    assert_eq!(m.r().resync_end(7, true), Ok(true));
    assert_eq!(m.r().state().out_of_sync_regions(), 0);
}

/// A region written all the time can still be resynced: the resync's claim holds new writes
/// back until the ones in flight finished, instead of passing the region over forever.
#[test]
fn resync_claim_drains_a_busy_region() {
    let mut m = Mem::new(&[LegState::InSync, LegState::Resyncing]);
    m.r().mark_all_out_of_sync();
    m.log();
    m.start(2);
    assert_eq!(m.r().resync_begin(2), Ok(ResyncClaim::Draining));
    // New writes wait for the copy.
    assert_eq!(m.r().write_start(2), Ok(WriteStart::Delay));
    // Still draining while the old write is out; claimed once it finished.
    assert_eq!(m.r().resync_begin(2), Ok(ResyncClaim::Draining));
    assert_eq!(m.r().write_done(2, true), Ok(WriteDone::Ack));
    assert_eq!(m.r().resync_begin(2), Ok(ResyncClaim::Claimed));
    assert_eq!(m.r().write_start(2), Ok(WriteStart::Delay));
    assert_eq!(m.r().resync_end(2, true), Ok(true));
    assert!(!m.r().needs_resync(2));
    // A region that does not need resync is not claimed.
    assert_eq!(m.r().resync_begin(2), Ok(ResyncClaim::NotNeeded));
}

/// Clearing regions in the log is only safe once every leg flushed the writes that made them
/// clean: the log write says whether it clears any region, and the leg states it records can
/// be refreshed after the legs' flush (a leg whose flush failed is recorded out of sync).
#[test]
fn log_write_that_clears_is_told_and_refreshes_legs() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(4);
    assert!(m.r().is_durably_dirty(4));
    // Setting a bit does not clear anything.
    m.start(6);
    assert_eq!(m.r().write_done(4, true), Ok(WriteDone::Ack));
    assert_eq!(m.r().write_done(6, true), Ok(WriteDone::Ack));
    assert_eq!(m.r().clean_batch(u64::MAX), 2);
    let w = m.r().take_log_write().unwrap();
    assert!(m.r().snapshot_clears());
    // Leg 1's flush failed: it is detached, and the write in flight records it.
    m.r().set_leg_state(1, LegState::Inactive).unwrap();
    m.r().refresh_snapshot_legs();
    let h = m.r().snapshot_header([1; 16], 8);
    assert_eq!(h.leg_states[1], LegState::Inactive);
    assert_eq!(h.stale_since[1], w.generation);
    m.r().log_written(w.generation, w.copies).unwrap();
    assert_eq!(m.r().state().pending_leg_change(), None);
}

/// While no leg is in sync, writes must not be acknowledged: a Resyncing leg alone does not
/// hold the newest data of every region.
#[test]
fn no_in_sync_leg_means_failed() {
    assert!(leg_can_serve(&[LegState::InSync, LegState::Resyncing]));
    assert!(!leg_can_serve(&[LegState::Inactive, LegState::Resyncing]));
    assert!(!leg_can_serve(&[LegState::Degraded, LegState::Missing]));
}

/// The timeout never takes the last in-sync leg out of service; an error may.
#[test]
fn timeout_keeps_the_last_in_sync_leg() {
    let legs = [LegState::Resyncing, LegState::InSync];
    assert!(!timeout_may_suspend(&legs, 1));
    assert!(timeout_may_suspend(&legs, 0));
    let legs = [LegState::InSync, LegState::InSync];
    assert!(timeout_may_suspend(&legs, 0));
    let legs = [LegState::Degraded, LegState::InSync, LegState::InSync];
    assert!(timeout_may_suspend(&legs, 2));
    let legs = [LegState::Degraded, LegState::InSync, LegState::Split];
    assert!(!timeout_may_suspend(&legs, 1));
}

/// Late legs are handled the one waited on longest first. Before, the watchdog went by leg
/// number: leg 1 hung, leg 0 (healthy, slow on a KASAN guest) was also late in the same pass
/// and was taken out first, so the hung leg 1 was kept as the last in-sync leg and every
/// write waited for it (`timeout_again_in_resync` on the debug kernel).
#[test]
fn timeout_takes_the_leg_hung_longest() {
    let mut order = [0; MAX_LEGS];
    // Leg 1 has answered nothing since 100, leg 0 since 900: leg 1 first.
    assert_eq!(timeout_order(&[Some(900), Some(100)], &mut order), 2);
    assert_eq!(&order[..2], &[1, 0]);
    let mut legs = [LegState::InSync; 2];
    for &leg in &order[..2] {
        if timeout_may_suspend(&legs, leg) {
            legs[leg] = LegState::Degraded;
        }
    }
    assert_eq!(legs, [LegState::InSync, LegState::Degraded]);
    // Only late legs are listed; ties keep leg order.
    assert_eq!(
        timeout_order(&[None, Some(5), None, Some(5)], &mut order),
        2
    );
    assert_eq!(&order[..2], &[1, 3]);
    assert_eq!(timeout_order(&[None, None], &mut order), 0);
}

/// A slow leg whose requests were issued just before those of a hanging leg: in the watchdog
/// pass between their deadlines only the slow leg had a request beyond the timeout, so it was
/// taken out alone and the hung leg kept as the last in-sync leg (`hang_while_other_slow` on
/// the KASAN guest). A leg that completed data within the timeout is slow, not silent.
#[test]
fn slow_leg_is_not_silent_before_twice_the_timeout() {
    const MS: i64 = 1_000_000;
    let timeout = 1000 * MS;
    // Leg 0: 16 pieces issued at 0, one done every 500 ms. Leg 1: issued at 30 ms, none done.
    let leg0 = |now: i64| silent_since(0, now / (500 * MS) * 500 * MS, now, timeout);
    let leg1 = |now: i64| {
        (now - 30 * MS >= timeout)
            .then(|| silent_since(30 * MS, -1, now, timeout))
            .flatten()
    };
    let mut order = [0; MAX_LEGS];
    let mut legs = [LegState::InSync; 2];
    let mut now = 1001 * MS;
    while now < 5000 * MS {
        let n = timeout_order(&[leg0(now), leg1(now)], &mut order);
        for &leg in &order[..n] {
            if timeout_may_suspend(&legs, leg) {
                legs[leg] = LegState::Degraded;
            }
        }
        now += 10 * MS;
    }
    assert_eq!(legs, [LegState::InSync, LegState::Degraded]);
    // Silent: nothing completed since the oldest request, which waited the timeout.
    assert_eq!(silent_since(100, 50, 1100, 1000), Some(100));
    assert_eq!(silent_since(100, 50, 1099, 1000), None);
    // A completion within the timeout: slow, until the oldest request waited twice as long.
    assert_eq!(silent_since(100, 900, 1500, 1000), None);
    assert_eq!(silent_since(100, 1500, 2100, 1000), Some(1500));
    // Silent again a timeout after the last completion.
    assert_eq!(silent_since(100, 900, 1900, 1000), Some(900));
    // No overflow at the ends of the clock.
    assert_eq!(
        silent_since(i64::MIN, i64::MIN, i64::MAX, i64::MAX),
        Some(i64::MIN)
    );
}

/// A leg that cannot flush before a log write that clears regions: they stay dirty and are
/// resynced.
#[test]
fn failed_flush_keeps_regions_dirty() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(4);
    assert_eq!(m.r().write_done(4, true), Ok(WriteDone::Ack));
    assert_eq!(m.r().clean_batch(u64::MAX), 1);
    let w = m.r().take_log_write().unwrap();
    assert!(m.r().snapshot_clears());
    m.r().undo_snapshot_clears();
    assert!(!m.r().snapshot_clears());
    m.r().log_written(w.generation, w.copies).unwrap();
    assert!(m.r().is_durably_dirty(4));
    assert!(m.r().needs_resync(4));
    assert_eq!(m.r().state().out_of_sync_regions(), 1);
    assert_eq!(m.r().resync_begin(4), Ok(ResyncClaim::Claimed));
    assert_eq!(m.r().resync_end(4, true), Ok(true));
    assert_eq!(m.r().state().out_of_sync_regions(), 0);
}

/// Benchmark finding (docs/benchmarks.md): the lazy cleaner cleared every idle region a
/// second after its last write, so a random workload found its regions clean again and nearly
/// every write waited for a log write. A region is now cleared only after it stayed idle
/// from one pass of the cleaner to the next; a write in between starts the wait again.
#[test]
fn lazy_clean_waits_for_a_whole_idle_pass() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.start(4);
    assert_eq!(m.r().write_done(4, true), Ok(WriteDone::Ack));
    // Not adjacent: a region after a dirty one would mark its successors dirty ahead.
    m.start(6);
    assert_eq!(m.r().write_done(6, true), Ok(WriteDone::Ack));
    // First pass: both are seen, neither is cleared.
    assert_eq!(
        m.r().clean_idle(u64::MAX),
        CleanPass {
            cleaned: 0,
            waiting: 2
        }
    );
    assert_eq!(m.log(), None);
    // Region 6 is written again between the passes: it starts over; region 4 is cleared.
    assert_eq!(m.r().write_start(6), Ok(WriteStart::Proceed));
    assert_eq!(m.r().write_done(6, true), Ok(WriteDone::Ack));
    assert_eq!(
        m.r().clean_idle(u64::MAX),
        CleanPass {
            cleaned: 1,
            waiting: 1
        }
    );
    assert!(m.log().is_some());
    // A write to region 4 now waits for a log write; one to region 6 does not.
    assert!(matches!(m.r().write_start(4), Ok(WriteStart::WaitFor(_))));
    assert_eq!(m.r().write_start(6), Ok(WriteStart::Proceed));
    // A region with a write in flight is never cleared, however many passes go by.
    for _ in 0..3 {
        assert_eq!(m.r().clean_idle(u64::MAX).cleaned, 0);
    }
    // `max` bounds a pass; what is left still counts as waiting.
    let mut m = Mem::new(&[LegState::InSync; 2]);
    for r in (0..12).step_by(2) {
        m.start(r);
        assert_eq!(m.r().write_done(r, true), Ok(WriteDone::Ack));
    }
    assert_eq!(
        m.r().clean_idle(u64::MAX),
        CleanPass {
            cleaned: 0,
            waiting: 6
        }
    );
    assert_eq!(
        m.r().clean_idle(4),
        CleanPass {
            cleaned: 4,
            waiting: 2
        }
    );
    assert_eq!(
        m.r().clean_idle(4),
        CleanPass {
            cleaned: 2,
            waiting: 0
        }
    );
}

/// The resync pause per region follows the rate: at 1 KiB/s a 512 KiB region pauses 512 s, so
/// the kernel reads the rate again for every slice of the pause (`table_fuzz` left such a
/// rate behind, set `resync_kbps 0` and still waited minutes for the resync).
#[test]
fn resync_pause_follows_the_rate() {
    assert_eq!(resync_pause_ms(512 << 10, 0), 0);
    assert_eq!(resync_pause_ms(512 << 10, 1), 512_000);
    assert_eq!(resync_pause_ms(512 << 10, 2048), 250);
    assert_eq!(
        resync_pause_ms(u64::MAX, u32::MAX),
        u64::MAX / (u64::from(u32::MAX) * 1024)
    );
}

/// After a pause of the whole guest (a starved virtual CPU under TCG), the first watchdog pass
/// found both legs silent: the slow leg's completions had not been delivered yet, and it was
/// taken out by issue order while the hung leg was kept (`hang_while_other_slow`, 1 of 3 runs
/// on the KASAN guest with a 3 s timeout). A leg counts only at the second silent pass in a
/// row; by then the slow leg's completions have arrived.
#[test]
fn silent_counts_at_the_second_pass_in_a_row() {
    let mut seen = [false; 2];
    let mut order = [0; MAX_LEGS];
    let mut legs = [LegState::InSync; 2];
    // Pass 1, after the pause: both silent since their requests were issued (leg 0 first).
    // Pass 2: leg 0's completions arrived, only leg 1 is silent.
    for silent in [[Some(100), Some(101)], [None, Some(101)]] {
        let mut counts = [None; 2];
        for leg in 0..2 {
            (counts[leg], seen[leg]) = confirm_silent(silent[leg], seen[leg]);
        }
        let n = timeout_order(&counts, &mut order);
        for &leg in &order[..n] {
            if timeout_may_suspend(&legs, leg) {
                legs[leg] = LegState::Degraded;
            }
        }
    }
    assert_eq!(legs, [LegState::InSync, LegState::Degraded]);
    // A leg that stays silent counts from its second pass on; an answer resets it.
    assert_eq!(confirm_silent(Some(5), false), (None, true));
    assert_eq!(confirm_silent(Some(5), true), (Some(5), true));
    assert_eq!(confirm_silent(None, true), (None, false));
}

/// One watchdog pass as the kernel makes it at `now`: confirm each leg's silence, choose the
/// victims, take them out unless one is the last in-sync leg.
fn watchdog_pass(
    legs: &mut [LegState],
    seen: &mut [bool],
    silent: &[Option<i64>],
    now: i64,
    timeout: i64,
) -> Vec<usize> {
    let mut stalled = [None; MAX_LEGS];
    let mut answering = [true; MAX_LEGS];
    for leg in 0..legs.len() {
        (stalled[leg], seen[leg]) = confirm_silent(silent[leg], seen[leg]);
        answering[leg] = answers(silent[leg], now, timeout);
    }
    let mut out = [0; MAX_LEGS];
    let n = timeout_victims(
        &answering[..legs.len()],
        &stalled[..legs.len()],
        legs,
        &mut out,
    );
    let mut taken = Vec::new();
    for &leg in &out[..n] {
        if legs[leg] != LegState::Degraded && timeout_may_suspend(legs, leg) {
            legs[leg] = LegState::Degraded;
            taken.push(leg);
        }
    }
    taken
}

/// `hang_while_other_slow` on the built-in kernel: the throttled leg 0 completed nothing in
/// the guest's view for about 4-6 s (the kernel line said so), then many pieces. With a 3 s
/// timeout both legs were silent from 3 s on, leg 0 (issued first) was taken out and the hung
/// leg 1 kept as the last in-sync leg; the write waited for it. Now no in-sync leg is taken
/// out while all are silent: leg 1 goes once leg 0 answers.
#[test]
fn no_leg_is_taken_while_every_in_sync_leg_is_silent() {
    const MS: i64 = 1_000_000;
    let timeout = 3000 * MS;
    // Leg 0: 8 MiB issued at 0, half done at 4 s, the rest at 8 s. Leg 1: issued at 1 ms,
    // held.
    let leg0 = |now: i64| {
        let last_done = if now >= 4000 * MS { 4000 * MS } else { -1 };
        (now < 8000 * MS)
            .then(|| silent_since(0, last_done, now, timeout))
            .flatten()
    };
    let leg1 = |now: i64| silent_since(MS, -1, now, timeout);
    let mut legs = [LegState::InSync; 2];
    let mut seen = [false; 2];
    let mut taken_at = None;
    let mut now = 0;
    while now < 10_000 * MS {
        let silent = [leg0(now), leg1(now)];
        // What the watchdog did before: take the late legs by `timeout_order` alone.
        if now == 3375 * MS {
            let mut order = [0; MAX_LEGS];
            assert_eq!(timeout_order(&silent, &mut order), 2);
            assert_eq!(order[0], 0, "leg 0 was issued first: it went first");
        }
        if watchdog_pass(&mut legs, &mut seen, &silent, now, timeout) == [1] {
            taken_at = Some(now);
        }
        now += 375 * MS;
    }
    assert_eq!(legs, [LegState::InSync, LegState::Degraded]);
    // At the first pass after leg 0 answered at 4 s (leg 1 was confirmed silent before).
    assert_eq!(taken_at, Some(4125 * MS));
    // The common case is unchanged: leg 1 hung, leg 0 answering (or idle).
    let mut legs = [LegState::InSync; 2];
    let mut seen = [false; 2];
    watchdog_pass(&mut legs, &mut seen, &[None, Some(5)], 1000, 10);
    assert_eq!(
        watchdog_pass(&mut legs, &mut seen, &[None, Some(5)], 1000, 10),
        [1]
    );
    // A leg out of sync is taken whenever it is late, even if every in-sync leg is silent.
    let mut legs = [LegState::InSync, LegState::Resyncing, LegState::InSync];
    let mut seen = [true; 3];
    let taken = watchdog_pass(&mut legs, &mut seen, &[Some(1), Some(2), Some(3)], 1000, 10);
    assert_eq!(taken, [1]);
    assert_eq!(
        legs,
        [LegState::InSync, LegState::Degraded, LegState::InSync]
    );
    // Three legs, two silent, one answering: both silent ones go, oldest first.
    let mut legs = [LegState::InSync; 3];
    let mut seen = [true; 3];
    assert_eq!(
        watchdog_pass(&mut legs, &mut seen, &[Some(9), None, Some(4)], 1000, 10),
        [2, 0]
    );
}

/// A hung leg beside a slow leg with a deep queue: the slow leg's oldest request has waited
/// twice the timeout (so it counts as late), but it completed data within the timeout, so it
/// answers and the hung leg leaves at once, as before `timeout_victims`.
#[test]
fn a_late_leg_that_completes_data_lets_the_hung_leg_go() {
    const MS: i64 = 1_000_000;
    let timeout = 1000 * MS;
    let now = 5000 * MS;
    // Leg 0: 32 requests queued since 0, one done every 250 ms. Leg 1: held since 1 ms.
    let leg0 = silent_since(0, 4750 * MS, now, timeout);
    let leg1 = silent_since(MS, -1, now, timeout);
    assert!(leg0.is_some(), "leg 0 is very late");
    assert!(answers(leg0, now, timeout) && !answers(leg1, now, timeout));
    let mut legs = [LegState::InSync; 2];
    let mut seen = [true; 2];
    assert_eq!(
        watchdog_pass(&mut legs, &mut seen, &[leg0, leg1], now, timeout),
        [1]
    );
    assert_eq!(legs, [LegState::InSync, LegState::Degraded]);
}
