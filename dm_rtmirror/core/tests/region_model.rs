//! Region state machine: unit tests and a model test.
//!
//! The model test drives [`Regions`] with random sequences of application
//! writes, log writes (each copy ok or failed), write completions (with or
//! without a leg missing the write), lazy clean batches, log copy
//! failures, resync, clean suspends and power cuts. The log copies are real
//! version 2 images (log_format), and a power cut may leave each block of
//! the log write in flight (header slot and bitmap blocks) old, new or torn,
//! independently on every copy. After every step it checks, over sampled
//! power-cut outcomes, that activation finds a valid generation (the log is
//! never lost while a copy is healthy), every region that may differ between
//! legs is dirty, and no leg that missed an acknowledged write is in sync or
//! chosen as resync source.

#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use rtmirror_core::log_format::*;
use rtmirror_core::region::*;
use rtmirror_core::status::{LegState, LogState};
use rtmirror_core::table::MAX_LEGS;

/// Two log bitmap blocks: the model writes to 8 regions at the start of each.
const NR: u64 = REGIONS_PER_BLOCK + 16;
const UUID: [u8; 16] = [7; 16];
const RS: u64 = 8192;

struct Mem {
    st: RegionState,
    bits: Vec<u64>,
    inflight: Vec<u16>,
}

impl Mem {
    fn new(legs: &[LegState]) -> Self {
        Mem {
            st: RegionState::new(NR, legs, 2).unwrap(),
            bits: vec![0; region_words_needed(NR)],
            inflight: vec![0; NR as usize],
        }
    }
    fn r(&mut self) -> Regions<'_> {
        Regions::new(&mut self.st, &mut self.bits, &mut self.inflight).unwrap()
    }
}

fn fresh() -> Mem {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.r().activate_nosync(0);
    m
}

/// Issues and completes the due log write on both copies.
fn flush(m: &mut Mem) -> Option<u64> {
    let w = m.r().take_log_write()?;
    assert_eq!(
        m.r().log_written(w.generation, w.copies).unwrap(),
        LogDone::Durable(w.generation)
    );
    Some(w.generation)
}

#[test]
fn absent_leg_at_activation_encodes() {
    // A leg absent from the first table has no stale mark of its own: the first log write
    // must still encode (the format requires one for every leg not in sync).
    for nosync in [false, true] {
        let mut m = Mem::new(&[LegState::InSync, LegState::Missing]);
        if nosync {
            m.r().activate_nosync(0);
        } else {
            m.r().activate(None, 0);
        }
        let mut r = m.r();
        let w = r.take_log_write().unwrap();
        let h = r.snapshot_header(UUID, RS);
        let mut out = vec![0u8; 4096];
        encode_header(&h, &mut out).unwrap();
        assert_eq!(h.stale_since[1], w.generation);
        // Rejoin: Missing -> Resyncing -> InSync after a full resync.
        r.mark_all_out_of_sync();
        r.set_leg_state(1, LegState::Resyncing).unwrap();
        assert_eq!(
            r.log_written(w.generation, w.copies).unwrap(),
            LogDone::Durable(w.generation)
        );
        for reg in 0..NR {
            assert_eq!(r.resync_begin(reg).unwrap(), ResyncClaim::Claimed);
            assert!(r.resync_end(reg, true).unwrap());
        }
        r.set_leg_state(1, LegState::InSync).unwrap();
    }
}

#[test]
fn batching_and_hot_regions() {
    let mut m = fresh();
    // Initial log write of a nosync mirror.
    assert_eq!(flush(&mut m), Some(1));
    let mut r = m.r();
    // Regions apart from each other: a region after a dirty one marks its successors dirty
    // ahead (see `sequential_stream_dirties_ahead`).
    for reg in (0..20).step_by(2) {
        assert_eq!(r.write_start(reg).unwrap(), WriteStart::WaitFor(2));
    }
    // One log write covers all ten.
    let w = r.take_log_write().unwrap();
    assert_eq!(
        w,
        LogWrite {
            generation: 2,
            copies: 0b11,
            clean: false,
            slots: 0b11,
        }
    );
    assert_eq!(r.take_log_write(), None);
    assert_eq!(r.write_start(6).unwrap(), WriteStart::WaitFor(2));
    assert_eq!(r.write_start(30).unwrap(), WriteStart::WaitFor(3));
    assert_eq!(r.log_written(2, 0b11).unwrap(), LogDone::Durable(2));
    // Hot region: no log write at all.
    for _ in 0..100 {
        assert_eq!(r.write_start(6).unwrap(), WriteStart::Proceed);
        assert_eq!(r.write_done(6, true).unwrap(), WriteDone::Ack);
    }
    assert_eq!(r.take_log_write().unwrap().generation, 3); // for region 30 only
}

#[test]
fn rewrite_during_clean_is_not_lost() {
    let mut m = fresh();
    flush(&mut m);
    let mut r = m.r();
    assert_eq!(r.write_start(5).unwrap(), WriteStart::WaitFor(2));
    let w = r.take_log_write().unwrap();
    r.log_written(w.generation, 0b11).unwrap();
    r.write_done(5, true).unwrap();
    assert_eq!(r.clean_batch(10), 1);
    // Written again before the clearing log write is even issued: proceed,
    // the next image keeps the bit.
    assert_eq!(r.write_start(5).unwrap(), WriteStart::Proceed);
    let w = r.take_log_write().unwrap();
    r.log_written(w.generation, 0b11).unwrap();
    assert!(r.is_durably_dirty(5));
    r.write_done(5, true).unwrap();
    assert_eq!(r.clean_batch(10), 1);
    let w = r.take_log_write().unwrap();
    // Written while the clearing write is in flight: must wait for the next.
    assert_eq!(
        r.write_start(5).unwrap(),
        WriteStart::WaitFor(w.generation + 1)
    );
    r.log_written(w.generation, 0b11).unwrap();
    assert!(!r.is_durably_dirty(5));
    let w2 = r.take_log_write().unwrap();
    r.log_written(w2.generation, 0b01).unwrap();
    assert!(r.is_durably_dirty(5));
    assert_eq!(r.state().copies(), &[LogState::Alive, LogState::Failed]);
}

#[test]
fn degraded_leg_and_log_loss() {
    let mut m = fresh();
    flush(&mut m);
    let mut r = m.r();
    assert_eq!(r.write_start(1).unwrap(), WriteStart::WaitFor(2));
    let w = r.take_log_write().unwrap();
    r.log_written(w.generation, 0b11).unwrap();
    assert_eq!(r.write_done(1, false), Err(RegionError::LegNotMarked));
    let g = r.set_leg_state(1, LegState::Degraded).unwrap();
    assert_eq!(g, 3);
    assert_eq!(r.write_done(1, false).unwrap(), WriteDone::AckAfter(3));
    assert_eq!(r.clean_batch(100), 0);
    assert_eq!(r.state().out_of_sync_regions(), 1);
    let w = r.take_log_write().unwrap();
    assert_eq!(
        r.snapshot_header(UUID, RS).leg_states[..2],
        [LegState::InSync, LegState::Degraded]
    );
    assert_eq!(r.snapshot_header(UUID, RS).stale_since[1], 3);
    r.log_written(w.generation, 0b10).unwrap();
    assert!(!r.state().log_lost());
    assert_eq!(
        r.set_leg_state(1, LegState::InSync),
        Err(RegionError::ResyncPending)
    );
    r.copy_failed(1).unwrap();
    assert!(r.state().log_lost());
    assert_eq!(r.state().in_sync_regions(), 0);
    assert_eq!(r.write_start(2).unwrap(), WriteStart::ProceedUnlogged);
    assert_eq!(r.take_log_write(), None);
}

#[test]
fn resync_claims_region() {
    let mut m = fresh();
    flush(&mut m);
    let mut r = m.r();
    r.mark_all_out_of_sync();
    r.set_leg_state(1, LegState::Resyncing).unwrap();
    flush_r(&mut r);
    assert_eq!(r.next_out_of_sync(0), Some(0));
    assert_eq!(r.resync_begin(0).unwrap(), ResyncClaim::Claimed);
    assert_eq!(r.write_start(0).unwrap(), WriteStart::Delay);
    assert!(r.resync_end(0, true).unwrap());
    assert_eq!(r.write_start(0).unwrap(), WriteStart::Proceed);
    assert_eq!(r.resync_begin(1).unwrap(), ResyncClaim::Claimed);
    assert!(r.resync_end(1, true).unwrap());
    assert_eq!(r.resync_begin(0).unwrap(), ResyncClaim::NotNeeded); // synced
    for reg in 1..NR {
        assert!(r.resync_begin(reg).unwrap() == ResyncClaim::Claimed || !r.needs_resync(reg));
        let _ = r.resync_end(reg, true);
    }
    assert_eq!(r.state().out_of_sync_regions(), 0);
    r.set_leg_state(1, LegState::InSync).unwrap();
}

fn flush_r(r: &mut Regions<'_>) {
    let w = r.take_log_write().unwrap();
    r.log_written(w.generation, w.copies).unwrap();
}

#[test]
fn sequential_write_ratio() {
    let mut m = fresh();
    flush(&mut m);
    let mut log_writes = 0u32;
    let mut data_writes = 0u32;
    // 64 writes per region, sequentially through all regions, with a lazy
    // clean batch every 32 writes.
    for reg in 0..NR {
        for _ in 0..64 {
            let mut r = m.r();
            data_writes += 1;
            if let WriteStart::WaitFor(_) = r.write_start(reg).unwrap() {
                flush_r(&mut r);
                log_writes += 1;
            }
            r.write_done(reg, true).unwrap();
            if data_writes.is_multiple_of(32) {
                r.clean_batch(u64::MAX);
                if r.take_log_write()
                    .is_some_and(|w| r.log_written(w.generation, w.copies).is_ok())
                {
                    log_writes += 1;
                }
            }
        }
    }
    assert!(
        log_writes * 10 <= data_writes,
        "{log_writes} log writes for {data_writes} data writes"
    );
}

/// Benchmark finding (docs/benchmarks.md): a sequential stream of 1 MiB writes over 4 MiB
/// regions cost one log generation per region (1.0 log write per application write). A
/// region that starts a run after dirty regions marks the next regions dirty in the same
/// generation, ramping up to `DIRTY_AHEAD_MAX`.
#[test]
fn sequential_stream_dirties_ahead() {
    let mut m = fresh();
    flush(&mut m);
    let (mut log_writes, mut data_writes) = (0u64, 0u64);
    let mut regions_dirty_max = 0u64;
    for reg in 0..NR {
        for _ in 0..4 {
            let mut r = m.r();
            data_writes += 1;
            if let WriteStart::WaitFor(_) = r.write_start(reg).unwrap() {
                flush_r(&mut r);
                log_writes += 1;
            }
            // Nothing is submitted before it is durably dirty.
            assert_eq!(r.write_start(reg).unwrap(), WriteStart::Proceed);
            r.write_done(reg, true).unwrap();
            r.write_done(reg, true).unwrap();
        }
        // The run of dirty regions ahead of the stream is bounded.
        let dirty_ahead = (reg + 1..NR).take_while(|&a| m.r().is_dirty(a)).count() as u64;
        assert!(
            dirty_ahead <= DIRTY_AHEAD_MAX,
            "{dirty_ahead} regions dirty ahead of {reg}"
        );
        regions_dirty_max = regions_dirty_max.max(dirty_ahead);
    }
    assert_eq!(regions_dirty_max, DIRTY_AHEAD_MAX);
    // Ramp 0, 2, 8, 26 regions, then one generation per DIRTY_AHEAD_MAX + 1 regions.
    let bound = 4 + NR / DIRTY_AHEAD_MAX;
    assert!(
        log_writes <= bound,
        "{log_writes} log writes for {data_writes} data writes over {NR} regions (bound {bound})"
    );
    // No region past the end is touched; regions marked ahead and never written are cleared
    // by the lazy cleaner after a whole idle pass, like written ones.
    let mut m = fresh();
    flush(&mut m);
    for reg in [NR - 3, NR - 2] {
        let mut r = m.r();
        if let WriteStart::WaitFor(_) = r.write_start(reg).unwrap() {
            flush_r(&mut r);
        }
        r.write_done(reg, true).unwrap();
    }
    assert!(m.r().is_dirty(NR - 1));
    let mut r = m.r();
    assert_eq!(r.clean_idle(u64::MAX).cleaned, 0);
    assert_eq!(r.clean_idle(u64::MAX).cleaned, 3);
    assert!(!r.is_dirty(NR - 1));
    // Random writes (no dirty region right behind) mark nothing ahead.
    let mut m = fresh();
    flush(&mut m);
    let mut r = m.r();
    for reg in [40, 10, 70, 25] {
        assert!(matches!(
            r.write_start(reg).unwrap(),
            WriteStart::WaitFor(_)
        ));
        assert!(!r.is_dirty(reg + 1));
    }
}

#[test]
fn log_writes_only_changed_blocks() {
    let mut m = fresh();
    let mut r = m.r();
    // The first write after activation rewrites every block.
    let w = r.take_log_write().unwrap();
    assert_eq!(r.snapshot_blocks(), &[0b11]);
    r.log_written(w.generation, w.copies).unwrap();
    assert!(matches!(r.write_start(1).unwrap(), WriteStart::WaitFor(_)));
    let w = r.take_log_write().unwrap();
    assert_eq!(r.snapshot_blocks(), &[0b01]);
    r.log_written(w.generation, w.copies).unwrap();
    assert!(matches!(
        r.write_start(REGIONS_PER_BLOCK + 3).unwrap(),
        WriteStart::WaitFor(_)
    ));
    let w = r.take_log_write().unwrap();
    assert_eq!(r.snapshot_blocks(), &[0b10]);
    // Not issued after all (no memory): taken back, written by the next.
    r.abort_log_write(w.generation).unwrap();
    r.set_leg_state(1, LegState::Split).unwrap();
    let w2 = r.take_log_write().unwrap();
    assert_eq!(w2.generation, w.generation + 1);
    assert_eq!(r.snapshot_blocks(), &[0b10]);
    r.log_written(w2.generation, w2.copies).unwrap();
    assert!(r.is_durably_dirty(REGIONS_PER_BLOCK + 3));
    // A leg state change alone writes the header only.
    r.set_leg_state(1, LegState::Resyncing).unwrap();
    r.take_log_write().unwrap();
    assert_eq!(r.snapshot_blocks(), &[0]);
    assert_eq!(block_map_words(NR), 1);
    assert_eq!(region_words_needed(NR), 7 * bitmap_words(NR) + 2);
}

#[test]
fn clean_shutdown_write() {
    let mut m = fresh();
    flush(&mut m);
    let mut r = m.r();
    assert!(matches!(r.write_start(2).unwrap(), WriteStart::WaitFor(_)));
    // A write in flight: no clean write.
    assert_eq!(r.take_clean_write(), None);
    flush_r(&mut r);
    r.write_done(2, true).unwrap();
    let w = r.take_clean_write().unwrap();
    assert!(w.clean);
    assert!(r.snapshot_header(UUID, RS).clean_shutdown);
    r.log_written(w.generation, w.copies).unwrap();
    assert_eq!(r.take_clean_write(), None);
    assert_eq!(r.take_log_write(), None);
    // The region is durably dirty, but the clean flag on disk hides it: the
    // next write waits for a generation without the flag.
    assert!(r.is_durably_dirty(2));
    assert_eq!(
        r.write_start(2).unwrap(),
        WriteStart::WaitFor(w.generation + 1)
    );
    let w = r.take_log_write().unwrap();
    assert!(!w.clean && !r.snapshot_header(UUID, RS).clean_shutdown);
    r.log_written(w.generation, w.copies).unwrap();
    assert_eq!(r.write_start(2).unwrap(), WriteStart::Proceed);
    // A leg out of sync: never clean.
    r.write_done(2, true).unwrap();
    r.write_done(2, true).unwrap();
    r.set_leg_state(1, LegState::Split).unwrap();
    assert_eq!(r.take_clean_write(), None);
}

#[test]
fn trust_leg_full_resync() {
    let mut m = Mem::new(&[LegState::InSync; 2]);
    m.r().activate(None, 0);
    let mut r = m.r();
    assert_eq!(r.trust_leg(2), Err(RegionError::BadIndex));
    let g = r.trust_leg(1).unwrap();
    assert_eq!(r.state().legs(), &[LegState::Resyncing, LegState::InSync]);
    assert_eq!(r.state().stale_since(), &[g, 0]);
    assert_eq!(r.state().out_of_sync_regions(), NR);
    let w = r.take_log_write().unwrap();
    assert_eq!(w.generation, g);
    assert_eq!(
        r.snapshot_header(UUID, RS).leg_states[..2],
        [LegState::Resyncing, LegState::InSync]
    );
}

// ---------------------------------------------------------------------------
// Model test

/// The regions the model writes: 8 in each log block.
fn reg_of(i: u64) -> u64 {
    if i < 8 {
        i
    } else {
        REGIONS_PER_BLOCK + i - 8
    }
}
const MODEL_REGIONS: u64 = 16;

#[derive(Debug, Clone)]
enum Op {
    /// An application write to a region arrives (model region index).
    Write(u64),
    /// Issue the due log write (if any).
    IssueLog,
    /// Complete the in-flight log write; bit i = copy i ok.
    CompleteLog(u8),
    /// Complete the n-th submitted data write, optionally missing a leg.
    DataDone(usize, Option<usize>),
    /// Lazy clean of up to n candidates.
    Clean(u64),
    /// A log copy fails outside a log write.
    CopyFail(usize),
    /// A failed log copy is repaired and rejoined (`rejoin_log`): its media still holds its
    /// old image until the next log write rewrites it, and it counts at activation again.
    CopyRejoin(usize),
    /// Degraded legs start resyncing.
    LegBack,
    /// Resync the next out-of-sync region.
    ResyncStep,
    /// Resyncing legs become in sync if nothing is left.
    LegsInSync,
    /// Clean suspend: issue a clean-shutdown log write if allowed.
    CleanWrite,
    /// Power cut; the seed picks, per copy and block of the log write in
    /// flight, whether it landed, did not, or is torn.
    PowerCut(u64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MODEL_REGIONS).prop_map(Op::Write),
        3 => Just(Op::IssueLog),
        3 => prop_oneof![8 => Just(3u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(0u8)]
            .prop_map(Op::CompleteLog),
        6 => (any::<usize>(), prop_oneof![6 => Just(None), 1 => (0usize..2).prop_map(Some)])
            .prop_map(|(i, l)| Op::DataDone(i, l)),
        2 => (1u64..20).prop_map(Op::Clean),
        1 => (0usize..2).prop_map(Op::CopyFail),
        1 => (0usize..2).prop_map(Op::CopyRejoin),
        1 => Just(Op::LegBack),
        2 => Just(Op::ResyncStep),
        1 => Just(Op::LegsInSync),
        1 => Just(Op::CleanWrite),
        1 => any::<u64>().prop_map(Op::PowerCut),
    ]
}

/// Blocks of one log write: position (in 4 KiB blocks) and content.
type Blocks = Vec<(usize, Vec<u8>)>;

fn blank() -> Vec<u8> {
    vec![0u8; log_bytes_needed(NR) as usize]
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

struct Model {
    m: Mem,
    /// Each copy's image on disk.
    disk: [Vec<u8>; 2],
    /// The log write in flight: generation, copies, blocks of each copy.
    in_flight: Option<(u64, u8, [Blocks; 2])>,
    /// Copies the model knows failed (excluded at activation).
    failed: [bool; 2],
    /// Writes waiting for a generation.
    waiting: Vec<(u64, u64)>,
    /// Writes submitted to the legs and not completed: region, and whether
    /// every leg received it when it was submitted.
    submitted: Vec<(u64, bool)>,
    /// Writes done on legs awaiting acknowledgement after a generation.
    ack_wait: Vec<(u64, usize)>,
    /// Regions where the legs may differ because a leg missed data.
    diverged: Vec<bool>,
    /// Legs that missed an acknowledged write.
    acked_stale: [bool; 2],
    /// Model view of leg states.
    legs: [LegState; 2],
    log_writes: u32,
    data_writes: u32,
    stopped: bool,
    rng: u64,
    /// Last generation log_written reported durable since activation.
    durable_seen: u64,
}

impl Model {
    fn new(seed: u64) -> Self {
        let mut m = Mem::new(&[LegState::InSync; 2]);
        m.r().activate_nosync(0);
        let mut me = Model {
            m,
            disk: [blank(), blank()],
            in_flight: None,
            failed: [false; 2],
            waiting: vec![],
            submitted: vec![],
            ack_wait: vec![],
            diverged: vec![false; NR as usize],
            acked_stale: [false; 2],
            legs: [LegState::InSync; 2],
            log_writes: 0,
            data_writes: 0,
            stopped: false,
            rng: seed | 1,
            durable_seen: 0,
        };
        // Creation: the first log write lands on both copies.
        me.issue(false);
        me.complete(3);
        me
    }

    fn issue(&mut self, clean: bool) {
        let mut r = self.m.r();
        let w = if clean {
            r.take_clean_write()
        } else {
            r.take_log_write()
        };
        if let Some(w) = w {
            // Only the blocks written are looked at: the answer must be that of the whole map.
            let clears = (0..NR).any(|reg| {
                r.is_durably_dirty(reg)
                    && r.snapshot()[(reg / 64) as usize] & (1 << (reg % 64)) == 0
            });
            assert_eq!(r.snapshot_clears(), clears);
            let h = r.snapshot_header(UUID, RS);
            assert_eq!(h.generation, w.generation);
            assert_eq!(h.clean_shutdown, clean);
            let mut blocks: Blocks = vec![];
            let mut slot = vec![0u8; 4096];
            encode_header(&h, &mut slot).unwrap();
            for b in 0..bitmap_blocks(NR) {
                if r.snapshot_blocks()[(b / 64) as usize] & (1 << (b % 64)) != 0 {
                    let mut out = vec![0u8; 4096];
                    encode_bitmap_block(&UUID, w.generation, NR, b, r.snapshot(), &mut out)
                        .unwrap();
                    blocks.push((bitmap_block_pos(b) as usize, out));
                }
            }
            for i in 0..2 {
                // Never write a copy already known failed.
                assert!(w.copies & (1 << i) == 0 || !self.failed[i]);
            }
            let per_copy = [0, 1].map(|i| {
                let mut b = vec![(usize::from((w.slots >> i) & 1), slot.clone())];
                b.extend(blocks.iter().cloned());
                b
            });
            self.in_flight = Some((w.generation, w.copies, per_copy));
            self.log_writes += 1;
        }
    }

    fn complete(&mut self, ok: u8) {
        let Some((gen, copies, blocks)) = self.in_flight.take() else {
            return;
        };
        for i in 0..2 {
            if copies & (1 << i) != 0 {
                if ok & (1 << i) != 0 && !self.failed[i] {
                    for (pos, b) in &blocks[i] {
                        self.disk[i][pos * 4096..(pos + 1) * 4096].copy_from_slice(b);
                    }
                } else {
                    // A failed write may or may not have reached the disk;
                    // the copy is excluded from now on anyway.
                    self.failed[i] = true;
                }
            }
        }
        let res = self.m.r().log_written(gen, ok).unwrap();
        match res {
            LogDone::Durable(d) => {
                assert_eq!(d, gen);
                self.durable_seen = d;
                let ready: Vec<u64> = self
                    .waiting
                    .iter()
                    .filter(|w| w.1 <= d)
                    .map(|w| w.0)
                    .collect();
                self.waiting.retain(|w| w.1 > d);
                for reg in ready {
                    self.submit(reg);
                }
                let acks: Vec<usize> = self
                    .ack_wait
                    .iter()
                    .filter(|a| a.0 <= d)
                    .map(|a| a.1)
                    .collect();
                self.ack_wait.retain(|a| a.0 > d);
                for l in acks {
                    // Unless a resync brought the leg back meanwhile.
                    if self.legs[l] != LegState::InSync {
                        self.acked_stale[l] = true;
                    }
                }
            }
            LogDone::LogLost => {
                self.assert_no_established_copy();
                for (reg, _) in std::mem::take(&mut self.waiting) {
                    self.submit(reg);
                }
                // Writes that missed a leg can never be acknowledged.
                self.ack_wait.clear();
            }
        }
    }

    /// Submits a data write: only when its region is dirty on a surviving
    /// copy, in a generation without the clean flag (or the log is lost).
    fn submit(&mut self, reg: u64) {
        if !self.m.st.log_lost() {
            let covered = (0..2).any(|i| {
                if self.failed[i] {
                    return false;
                }
                let images = [Some(self.disk[0].clone()), Some(self.disk[1].clone())];
                let (a, bits, _) = self.activation(&images, Some(i));
                a.newest.is_some() && !a.clean && bits[(reg / 64) as usize] & (1 << (reg % 64)) != 0
            });
            assert!(
                covered,
                "write to region {reg} submitted before its dirty bit is durable"
            );
        }
        let all = (0..2).all(|l| self.receiving(l));
        self.submitted.push((reg, all));
        self.data_writes += 1;
    }

    fn receiving(&self, l: usize) -> bool {
        matches!(self.legs[l], LegState::InSync | LegState::Resyncing)
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Write(i) => {
                let reg = reg_of(i);
                match self.m.r().write_start(reg).unwrap() {
                    WriteStart::Proceed | WriteStart::ProceedUnlogged => self.submit(reg),
                    WriteStart::WaitFor(g) => {
                        assert!(g > self.m.st.durable_generation());
                        self.waiting.push((reg, g));
                    }
                    WriteStart::Delay => {}
                }
            }
            Op::IssueLog => {
                if self.in_flight.is_none() {
                    self.issue(false);
                }
            }
            Op::CleanWrite => {
                if self.in_flight.is_none() {
                    self.issue(true);
                }
            }
            Op::CompleteLog(ok) => self.complete(ok),
            Op::DataDone(i, leg) => {
                if self.submitted.is_empty() {
                    return;
                }
                let (reg, sent_to_all) = self.submitted.remove(i % self.submitted.len());
                // A leg may only fail while the other leg stays in sync.
                let leg =
                    leg.filter(|&l| self.receiving(l) && self.legs[1 - l] == LegState::InSync);
                if let Some(l) = leg {
                    self.m.r().set_leg_state(l, LegState::Degraded).unwrap();
                    self.legs[l] = LegState::Degraded;
                }
                // Legs that lack this write: the one it failed on, and any leg that did
                // not receive writes when it was sent or does not now.
                let mut lacking: Vec<usize> = leg.into_iter().collect();
                for l in 0..2 {
                    if !self.receiving(l) && !lacking.contains(&l) {
                        lacking.push(l);
                    }
                }
                let missed = !lacking.is_empty() || !sent_to_all;
                if missed {
                    self.diverged[reg as usize] = true;
                }
                match self.m.r().write_done(reg, leg.is_none()).unwrap() {
                    WriteDone::Ack => {
                        // Acknowledged: the log must already name every lacking leg stale.
                        for l in lacking {
                            self.acked_stale[l] = true;
                        }
                    }
                    WriteDone::AckAfter(g) => {
                        assert!(!lacking.is_empty());
                        for l in lacking {
                            self.ack_wait.push((g, l));
                        }
                    }
                    WriteDone::CannotAck => assert!(self.m.st.log_lost() && leg.is_some()),
                }
            }
            // Both cleaners: at once, and the one that waits for a whole idle pass.
            Op::Clean(n) if n % 2 == 0 => {
                self.m.r().clean_batch(n);
            }
            Op::Clean(n) => {
                self.m.r().clean_idle(n);
            }
            Op::CopyFail(i) => {
                self.failed[i] = true;
                self.m.r().copy_failed(i).unwrap();
            }
            Op::CopyRejoin(i) => {
                if self.failed[i] && !self.m.st.log_lost() && self.m.st.copy_rejoined(i).is_ok() {
                    self.failed[i] = false;
                }
            }
            Op::LegBack => {
                for l in 0..2 {
                    if self.legs[l] == LegState::Degraded {
                        self.m.r().set_leg_state(l, LegState::Resyncing).unwrap();
                        self.legs[l] = LegState::Resyncing;
                    }
                }
            }
            Op::ResyncStep => {
                let mut r = self.m.r();
                if let Some(reg) = r.next_out_of_sync(0) {
                    match r.resync_begin(reg).unwrap() {
                        ResyncClaim::Claimed => {
                            if r.resync_end(reg, true).unwrap() {
                                self.diverged[reg as usize] = false;
                            }
                        }
                        // A write is in flight: give the claim up (the worker would wait).
                        ResyncClaim::Draining => {
                            r.resync_end(reg, false).unwrap();
                        }
                        ResyncClaim::NotNeeded => {}
                    }
                }
            }
            Op::LegsInSync => {
                for l in 0..2 {
                    if self.legs[l] == LegState::Resyncing
                        && self.m.r().set_leg_state(l, LegState::InSync).is_ok()
                    {
                        assert!(self.diverged.iter().all(|d| !d));
                        self.legs[l] = LegState::InSync;
                        self.acked_stale[l] = false;
                    }
                }
            }
            Op::PowerCut(seed) => {
                let mut x = seed | 1;
                let images = [self.outcome(0, &mut x), self.outcome(1, &mut x)];
                self.power_cut(images);
            }
        }
    }

    /// One possible image of copy `i` if the power failed now: each block of
    /// the log write in flight old, new or torn (its first 40 bytes new). The
    /// header slot (first entry) is written only after the copy's bitmap
    /// blocks completed (the kernel issues it last, every bio with FUA), so it
    /// is new only if every bitmap block is.
    fn outcome(&self, i: usize, rng: &mut u64) -> Vec<u8> {
        let mut img = self.disk[i].clone();
        if let Some((_, copies, blocks)) = &self.in_flight {
            if copies & (1 << i) != 0 {
                let mut all_new = true;
                for (pos, b) in blocks[i].iter().skip(1) {
                    let n = match xorshift(rng) % 3 {
                        0 => 0,
                        1 => 4096,
                        _ => 40,
                    };
                    all_new &= n == 4096;
                    img[pos * 4096..pos * 4096 + n].copy_from_slice(&b[..n]);
                }
                if let Some((pos, b)) = blocks[i].first() {
                    let n = match xorshift(rng) % 3 {
                        0 => 0,
                        1 if all_new => 4096,
                        _ => 40,
                    };
                    img[pos * 4096..pos * 4096 + n].copy_from_slice(&b[..n]);
                }
            }
        }
        img
    }

    /// Activation over the surviving copies (only `only` if given):
    /// (result, union, common).
    fn activation(
        &self,
        images: &[Option<Vec<u8>>; 2],
        only: Option<usize>,
    ) -> (Activation, Vec<u64>, Vec<u64>) {
        // A failed copy is not written again: passed as unreadable.
        let input: Vec<Option<&[u8]>> = (0..2)
            .map(|i| {
                if self.failed[i] || only.is_some_and(|o| o != i) {
                    None
                } else {
                    images[i].as_deref()
                }
            })
            .collect();
        let want = LogWant {
            uuid: Some(UUID),
            region_size: RS,
            nr_regions: NR,
            nr_legs: 2,
        };
        let mut out = vec![0u64; bitmap_words(NR)];
        let mut common = vec![0u64; bitmap_words(NR)];
        let act = activate_copies(&want, &input, &mut out, &mut common).unwrap();
        (act, out, common)
    }

    fn may_differ(&self, reg: u64) -> bool {
        self.diverged[reg as usize] || self.submitted.iter().any(|s| s.0 == reg)
    }

    /// The log counts as lost only when no copy holding the newest generation is left: every
    /// copy failed, or was rejoined and its rewrite has not landed.
    fn assert_no_established_copy(&self) {
        let pending = self.m.st.rejoining_copies();
        assert!(self
            .failed
            .iter()
            .enumerate()
            .all(|(i, &f)| f || pending & (1 << i) != 0));
    }

    /// The invariant, over sampled power-cut outcomes.
    fn check(&mut self) {
        if self.m.st.log_lost() {
            self.assert_no_established_copy();
            return;
        }
        assert!(
            !self.failed.iter().all(|&f| f),
            "all copies failed but log not lost"
        );
        for _ in 0..4 {
            let mut x = xorshift(&mut self.rng);
            let images = [Some(self.outcome(0, &mut x)), Some(self.outcome(1, &mut x))];
            let (act, bits, _) = self.activation(&images, None);
            // A healthy copy always keeps a valid generation: never "log lost".
            assert_eq!(act.outcome, LogOutcome::Found, "{:?}", act.classes);
            for i in 0..MODEL_REGIONS {
                let reg = reg_of(i);
                if self.may_differ(reg) {
                    assert!(
                        bits[(reg / 64) as usize] & (1 << (reg % 64)) != 0,
                        "region {reg} may differ but is clean on disk"
                    );
                }
            }
            let newest = act.newest.unwrap();
            // Never older than the last generation reported durable.
            assert!(newest.generation >= self.durable_seen);
            for l in 0..2 {
                if self.acked_stale[l] {
                    assert_ne!(
                        newest.leg_states[l],
                        LegState::InSync,
                        "stale leg {l} in sync on disk"
                    );
                }
            }
            if let ResyncSource::Leg(s) = resync_source(Some(&newest), &[true, true], 0) {
                assert!(
                    !self.acked_stale[s as usize],
                    "stale leg {s} chosen as resync source"
                );
            }
        }
    }

    fn power_cut(&mut self, images: [Vec<u8>; 2]) {
        if self.m.st.log_lost() {
            self.stopped = true;
            return;
        }
        let (act, bits, common) =
            self.activation(&[Some(images[0].clone()), Some(images[1].clone())], None);
        assert_eq!(act.outcome, LogOutcome::Found);
        let newest = act.newest.unwrap();
        // Regions with writes in flight at the cut may now differ.
        for (reg, _) in std::mem::take(&mut self.submitted) {
            self.diverged[reg as usize] = true;
        }
        self.waiting.clear();
        self.ack_wait.clear();
        self.in_flight = None;
        self.durable_seen = 0;
        self.disk = images;
        for l in 0..2 {
            self.legs[l] = newest.leg_states[l];
        }
        let mut m = Mem::new(&self.legs);
        {
            let mut r = m.r();
            r.activate(Some((&newest, &bits, &common)), act.max_generation);
            for i in 0..2 {
                if self.failed[i] {
                    r.copy_failed(i).unwrap();
                }
            }
            for reg in 0..NR {
                assert!(!self.diverged[reg as usize] || r.needs_resync(reg));
            }
        }
        m.st.set_header_slots(act.next_slots);
        m.st.set_rejoining(act.behind(2));
        self.m = m;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn region_model(ops in prop::collection::vec(arb_op(), 1..200), seed in any::<u64>()) {
        let mut model = Model::new(seed);
        model.check();
        for op in &ops {
            model.step(op);
            if model.stopped {
                break;
            }
            model.check();
        }
    }

    /// The watchdog's order: every late leg once, oldest first; taking legs out in that order
    /// under the last-in-sync rule keeps, of the late in-sync legs, one issued last.
    #[test]
    fn timeout_order_keeps_the_newest(late in prop::collection::vec(prop::option::of(0i64..50), 1..=MAX_LEGS)) {
        let mut order = [usize::MAX; MAX_LEGS];
        let n = timeout_order(&late, &mut order);
        let mut want: Vec<usize> = (0..late.len()).filter(|&i| late[i].is_some()).collect();
        want.sort_by_key(|&i| (late[i], i));
        prop_assert_eq!(&order[..n], &want[..]);
        let mut legs = vec![LegState::InSync; late.len()];
        for &leg in &order[..n] {
            if timeout_may_suspend(&legs, leg) {
                legs[leg] = LegState::Degraded;
            }
        }
        prop_assert!(legs.contains(&LegState::InSync));
        if n == late.len() {
            let kept = legs.iter().position(|s| *s == LegState::InSync).unwrap();
            prop_assert_eq!(late[kept], late.iter().flatten().max().copied());
        }
    }

    /// The victims of a watchdog pass are late legs in timeout order; an in-sync leg is among
    /// them only if some in-sync leg answers.
    #[test]
    fn timeout_victims_keep_a_silent_mirror_whole(
        legs in prop::collection::vec(
            (prop::sample::select(vec![LegState::InSync, LegState::Resyncing, LegState::Degraded]),
             prop::option::of(0i64..50), any::<bool>()),
            1..=MAX_LEGS)
    ) {
        let states: Vec<LegState> = legs.iter().map(|l| l.0).collect();
        // Confirmed only where silent.
        let stalled: Vec<Option<i64>> = legs.iter().map(|l| l.1.filter(|_| l.2)).collect();
        // Silent legs answer or not at random (a very late leg completing data answers).
        let answering: Vec<bool> = legs.iter().map(|l| l.1.is_none() || (l.1.unwrap_or(0) % 3 == 0)).collect();
        let mut out = [usize::MAX; MAX_LEGS];
        let n = timeout_victims(&answering, &stalled, &states, &mut out);
        let mut order = [0; MAX_LEGS];
        let late = timeout_order(&stalled, &mut order);
        let in_order: Vec<usize> = order[..late].iter().copied().filter(|l| out[..n].contains(l)).collect();
        prop_assert_eq!(&out[..n], &in_order[..]);
        let one_answers = (0..states.len()).any(|i| states[i] == LegState::InSync && answering[i]);
        for &leg in &out[..n] {
            prop_assert!(stalled[leg].is_some());
            prop_assert!(states[leg] != LegState::InSync || one_answers);
        }
        for &leg in &order[..late] {
            if states[leg] != LegState::InSync || one_answers {
                prop_assert!(out[..n].contains(&leg));
            }
        }
    }

    /// A device with a request waiting the timeout is silent exactly when it completed nothing
    /// within the timeout; slow or not, it is silent once a request waited twice the timeout.
    #[test]
    fn silent_since_hang_or_very_late(oldest in 0i64..10_000, done in -1i64..10_000, wait in 0i64..30_000, timeout in 1i64..10_000) {
        let now = oldest + wait;
        let done = done.min(now);
        let got = silent_since(oldest, done, now, timeout);
        if let Some(since) = got {
            prop_assert_eq!(since, oldest.max(done));
        }
        if wait >= 2 * timeout || (wait >= timeout && done <= oldest) {
            prop_assert!(got.is_some());
        }
        if wait < timeout || (now - done < timeout && wait < 2 * timeout) {
            prop_assert!(got.is_none());
        }
    }
}
