//! Region bookkeeping for the write path: when the dirty-region log must be
//! written, when a data write may be submitted and acknowledged, and which
//! regions may be cleared lazily.
//!
//! Pure bookkeeping over caller-provided memory: [`RegionState`] is a small
//! owned value; the per-region bitmaps and in-flight counters live in
//! slices the kernel allocates once ([`region_words_needed`] `u64`s and
//! `nr_regions` `u16`s). [`Regions`] is a short-lived view combining both,
//! built under the target's lock for each operation.
//!
//! Bitmaps (bit set = …):
//! * `image` — dirty in the in-memory log image (what the next log write
//!   encodes);
//! * `snapshot` — dirty in the log write in flight;
//! * `durable` — dirty in the newest generation confirmed on at least one
//!   healthy log copy;
//! * `candidate` — clean candidate: no write in flight, every leg has every
//!   write; cleared from `image` by [`Regions::clean_batch`];
//! * `resync` — the legs may differ; only a resync clears it;
//! * `recovering` — a resync is copying the region; writes are delayed.
//! * `aged` — a clean candidate already seen by one pass of the lazy cleaner
//!   ([`Regions::clean_idle`]): the next pass clears it if it was not written
//!   meanwhile.
//!
//! Two more bitmaps have one bit per log bitmap block
//! ([`crate::log_format::REGIONS_PER_BLOCK`] regions): blocks changed since
//! the last log write was taken, and the blocks of the log write in flight
//! ([`Regions::snapshot_blocks`]): a log write encodes and writes only those
//! plus one header slot.
//!
//! Protocol: [`Regions::write_start`] says whether a write may go to the
//! legs now or must wait for a log generation; [`Regions::take_log_write`]
//! snapshots the image for ONE log write at a time (every write waiting for
//! it is batched into it); [`Regions::log_written`] reports the per-copy
//! result. A copy that failed never counts as durable, and once every copy
//! has failed the state is "log lost": every region counts as out of sync.

use core::ffi::CStr;
use core::fmt;

use crate::log_format::{
    bitmap_blocks, bitmap_words, copy_slice, set_bits, LogHeader, WORDS_PER_BLOCK,
};
use crate::status::{LegState, LogState};
use crate::table::{MAX_LEGS, MAX_LOGS};

/// Most regions a sequential write stream marks dirty ahead of itself
/// ([`Regions::dirty_ahead`]).
pub const DIRTY_AHEAD_MAX: u64 = 32;

/// Number of per-region bitmaps held in the caller's `bits` slice.
pub const REGION_BITMAPS: usize = 7;

/// Number of per-block bitmaps (changed, in flight) in `bits`.
pub const BLOCK_BITMAPS: usize = 2;

/// Words of one bitmap with a bit per log bitmap block.
pub fn block_map_words(nr_regions: u64) -> usize {
    usize::try_from(bitmap_blocks(nr_regions).div_ceil(64)).unwrap_or(usize::MAX)
}

/// `u64` words the caller must provide as `bits` for `nr_regions`: seven
/// region bitmaps and two block bitmaps.
pub fn region_words_needed(nr_regions: u64) -> usize {
    bitmap_words(nr_regions)
        .saturating_mul(REGION_BITMAPS)
        .saturating_add(block_map_words(nr_regions).saturating_mul(BLOCK_BITMAPS))
}

/// What a write must do before its data may be submitted to the legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStart {
    /// The region is durably dirty: submit now, no log I/O needed.
    Proceed,
    /// Submit only after [`Regions::log_written`] reported generation
    /// `>= gen` durable. The caller must make sure a log write is issued
    /// ([`Regions::take_log_write`]).
    WaitFor(u64),
    /// Both log copies are lost: the write is not protected by the log.
    /// It may be submitted; every region already counts as out of sync.
    ProceedUnlogged,
    /// A resync is copying (or waiting to copy) the region, or the region
    /// has the most writes in flight a counter holds: nothing was recorded;
    /// retry after [`Regions::resync_end`] or after a write to the region
    /// finished.
    Delay,
}

/// What one pass of the lazy cleaner did ([`Regions::clean_idle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanPass {
    /// Regions cleared in the in-memory image (the next log write records it).
    pub cleaned: u64,
    /// Candidates left for a later pass: the cleaner must run again.
    pub waiting: u64,
}

/// Answer of [`Regions::resync_begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncClaim {
    /// The region is claimed and quiet: copy it, then call
    /// [`Regions::resync_end`].
    Claimed,
    /// The region is claimed, but writes are still in flight: new writes are
    /// held back ([`WriteStart::Delay`]); ask again once they finished. A
    /// claim that is given up must be ended with `resync_end(r, false)`.
    Draining,
    /// The region does not need resync (nothing is claimed).
    NotNeeded,
}

/// When a finished write may be acknowledged to the upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDone {
    /// Acknowledge now.
    Ack,
    /// A leg missed the write: acknowledge only once generation `>= gen`
    /// (which records that leg as out of sync) is durable.
    AckAfter(u64),
    /// A leg missed the write and the log is lost, so that fact can never
    /// be made durable: the write must not be reported as successful.
    CannotAck,
}

/// A log write to issue: encode the blocks of [`Regions::snapshot_blocks`]
/// from [`Regions::snapshot`] and the header [`Regions::snapshot_header`],
/// and write them to the copies in `copies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWrite {
    /// Generation of this write.
    pub generation: u64,
    /// Bit `i` set: write copy `i` (the copies healthy at issue time).
    pub copies: u8,
    /// The header records a clean shutdown.
    pub clean: bool,
    /// Bit `i`: the header slot (0 or 1) to write on copy `i`.
    pub slots: u8,
}

/// Outcome of a completed log write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDone {
    /// Generation durable on at least one healthy copy: release every write
    /// waiting for a generation up to this one.
    Durable(u64),
    /// Every copy has failed: the log is lost. Waiting writes may be
    /// submitted unprotected ([`WriteStart::ProceedUnlogged`] semantics).
    LogLost,
}

/// Misuse of the region API (the state is unchanged when one is returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    /// Region index beyond `nr_regions`.
    OutOfRange,
    /// Leg or log copy index out of range.
    BadIndex,
    /// The bitmap or counter slices are too short, or counts out of range.
    BadMemory,
    /// `write_done` without a matching `write_start`.
    NotInFlight,
    /// A write missed a leg, but no leg has been marked out of sync.
    LegNotMarked,
    /// `log_written` for a generation that is not in flight.
    NoSuchLogWrite,
    /// A leg cannot become in sync while regions still need resync.
    ResyncPending,
    /// `resync_end` without `resync_begin`.
    NotRecovering,
    /// A log write issued to the copy is still in flight.
    LogWriteInFlight,
}

impl RegionError {
    /// A fixed, short sentence describing the kind of error.
    pub fn reason(&self) -> &'static CStr {
        match self {
            Self::OutOfRange => c"region out of range",
            Self::BadIndex => c"leg or log index out of range",
            Self::BadMemory => c"region memory too small",
            Self::NotInFlight => c"write completion without write",
            Self::LegNotMarked => c"leg missed a write but is still in sync",
            Self::NoSuchLogWrite => c"no such log write in flight",
            Self::ResyncPending => c"regions still need resync",
            Self::NotRecovering => c"region is not being resynced",
            Self::LogWriteInFlight => c"a log write to the copy is in flight",
        }
    }
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason().to_str().unwrap_or("region error"))
    }
}

/// Whether a leg in state `s` receives application writes.
pub fn leg_receives_writes(s: LegState) -> bool {
    matches!(s, LegState::InSync | LegState::Resyncing)
}

/// Whether the mirror can serve I/O: some leg is in sync. A Resyncing leg
/// alone does not hold every region's newest data, so without an in-sync
/// leg reads and writes fail (the mirror is failed, never stale).
pub fn leg_can_serve(legs: &[LegState]) -> bool {
    legs.contains(&LegState::InSync)
}

/// Whether the I/O timeout may take leg `leg` out of service: never when
/// it is the last in-sync leg (I/O then waits for it as for a plain disk;
/// business goes on once it answers, requirement A2). An I/O error still
/// detaches it.
pub fn timeout_may_suspend(legs: &[LegState], leg: usize) -> bool {
    legs.get(leg) != Some(&LegState::InSync)
        || legs
            .iter()
            .enumerate()
            .any(|(i, &s)| i != leg && s == LegState::InSync)
}

/// How long the resync pauses after copying `bytes` so that it stays within `kbps` KiB/s
/// (0: no limit), in ms.
pub fn resync_pause_ms(bytes: u64, kbps: u32) -> u64 {
    if kbps == 0 {
        return 0;
    }
    bytes.saturating_mul(1000) / (u64::from(kbps) * 1024)
}

/// Since when a device counts as silent for the I/O timeout, or `None` if it does not (yet).
/// `oldest` is the issue time of its oldest outstanding bio, `last_done` the time of its last
/// completed read or write, `now` the time; all in ns, like `timeout`. A device that hangs
/// completes nothing: it is silent from its oldest bio on, and counts once that bio waited
/// `timeout`. A device that still completed data within the timeout is slow, not hung: it
/// counts only once its oldest bio has waited twice the timeout. So a slow leg whose requests
/// were issued just before those of a hanging leg is not taken out first, alone, in the pass
/// between their deadlines.
pub fn silent_since(oldest: i64, last_done: i64, now: i64, timeout: i64) -> Option<i64> {
    let since = oldest.max(last_done);
    let silent = now.saturating_sub(since) >= timeout;
    let very_late = now.saturating_sub(oldest) >= timeout.saturating_mul(2);
    (silent || very_late).then_some(since)
}

/// The watchdog's confirmation: a leg counts as silent only at the second pass in a row that
/// finds it silent. `since` is what [`silent_since`] says at this pass, `seen` whether the
/// previous pass found the leg silent too. Returns what counts at this pass and what to
/// remember for the next. One pass may follow a pause of the whole machine (a starved virtual
/// CPU, a host hiccup) during which completions waited to be delivered: every leg then looks
/// silent at once, and a leg that merely waited would be taken out by issue order. One
/// watchdog period later the waiting completions have arrived.
pub fn confirm_silent(since: Option<i64>, seen: bool) -> (Option<i64>, bool) {
    match since {
        None => (None, false),
        Some(s) if seen => (Some(s), true),
        Some(_) => (None, true),
    }
}

/// The order in which the I/O timeout handles late legs: `stalled[i]` is since when leg `i`
/// has answered nothing although an I/O waits on it beyond the timeout (`None`: no I/O of
/// the leg is late). Fills `out` with the late legs, the one silent longest first, and
/// returns how many. When several legs are late in the same watchdog pass, the one that
/// hangs leaves service first, and the leg kept by [`timeout_may_suspend`] is the one that
/// was merely slow (it went on completing requests, late).
pub fn timeout_order(stalled: &[Option<i64>], out: &mut [usize; MAX_LEGS]) -> usize {
    let mut n = 0;
    for (leg, since) in stalled.iter().enumerate().take(MAX_LEGS) {
        let Some(since) = *since else { continue };
        // Insertion sort: at most `MAX_LEGS` entries; ties keep leg order.
        let mut at = n;
        while at > 0
            && stalled
                .get(out[at - 1])
                .copied()
                .flatten()
                .is_some_and(|o| o > since)
        {
            out[at] = out[at - 1];
            at -= 1;
        }
        out[at] = leg;
        n += 1;
    }
    n
}

/// Whether a leg answers, for [`timeout_victims`]: `since` is what [`silent_since`] said of it
/// at `now`. A leg answers when no I/O of it waits beyond the timeout, or when it completed
/// data within the timeout: a slow leg with a deep queue, whose oldest request has waited
/// twice the timeout, is late but still answers.
pub fn answers(since: Option<i64>, now: i64, timeout: i64) -> bool {
    since.is_none_or(|s| now.saturating_sub(s) < timeout)
}

/// The legs the I/O timeout takes out of service in one watchdog pass, the one silent longest
/// first: fills `out` and returns how many. `answering[i]` is what [`answers`] says of leg `i`
/// at this pass, `stalled[i]` what counts after [`confirm_silent`], `legs` their states.
///
/// An in-sync leg is taken out only while another in-sync leg answers. When no in-sync leg
/// answers, taking one out cannot let a write go on (it waits for the others too), and which
/// of them is hung and which merely slow shows only when one answers: a throttled leg has
/// been seen to complete nothing in the guest's view for seconds, then much at once. So none
/// is taken out until one answers; the mirror meanwhile waits like a single slow disk. Legs
/// not in sync are listed whenever they count as late.
pub fn timeout_victims(
    answering: &[bool],
    stalled: &[Option<i64>],
    legs: &[LegState],
    out: &mut [usize; MAX_LEGS],
) -> usize {
    let in_sync = |leg: usize| legs.get(leg) == Some(&LegState::InSync);
    let one_answers = (0..legs.len().min(MAX_LEGS))
        .any(|leg| in_sync(leg) && answering.get(leg).copied().unwrap_or(true));
    let mut order = [0; MAX_LEGS];
    let late = timeout_order(stalled, &mut order);
    let mut n = 0;
    for &leg in order.iter().take(late) {
        if in_sync(leg) && !one_answers {
            continue;
        }
        out[n] = leg;
        n += 1;
    }
    n
}

/// The small, owned part of the region state (no borrowed memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionState {
    nr_regions: u64,
    nr_legs: u8,
    legs: [LegState; MAX_LEGS],
    stale_since: [u64; MAX_LEGS],
    nr_copies: u8,
    copies: [LogState; MAX_LOGS],
    issued_gen: u64,
    durable_gen: u64,
    in_flight: Option<u8>,
    snap_legs: [LegState; MAX_LEGS],
    snap_stale: [u64; MAX_LEGS],
    image_changed: bool,
    snap_clean: bool,
    clean_on_disk: bool,
    snap_clears: bool,
    leg_change_gen: u64,
    log_lost: bool,
    out_of_sync: u64,
    /// The next log write rewrites every block (a rejoined copy).
    rewrite_all: bool,
    /// Copies rejoined (`rejoin_log`) whose rewrite is not durable yet: written by every log
    /// write, but they count for nothing until a write of every block reached them.
    rejoining: u8,
    /// The log write in flight rewrites every block.
    snap_full: bool,
    /// Bit `i`: header slot of the next write on copy `i`.
    slots: u8,
}

impl RegionState {
    /// State for `nr_regions` regions, the given leg states (at most
    /// [`MAX_LEGS`]) and `nr_copies` log copies (0 to [`MAX_LOGS`]; 0 means
    /// no log, i.e. "log lost" from the start). Call [`Regions::activate`]
    /// before use.
    pub fn new(nr_regions: u64, legs: &[LegState], nr_copies: u8) -> Result<Self, RegionError> {
        if legs.is_empty() || legs.len() > MAX_LEGS || usize::from(nr_copies) > MAX_LOGS {
            return Err(RegionError::BadIndex);
        }
        let mut l = [LegState::Missing; MAX_LEGS];
        for (d, &s) in l.iter_mut().zip(legs) {
            *d = s;
        }
        Ok(RegionState {
            nr_regions,
            nr_legs: u8::try_from(legs.len()).map_err(|_| RegionError::BadIndex)?,
            legs: l,
            stale_since: [0; MAX_LEGS],
            nr_copies,
            copies: [LogState::Alive; MAX_LOGS],
            issued_gen: 0,
            durable_gen: 0,
            in_flight: None,
            snap_legs: l,
            snap_stale: [0; MAX_LEGS],
            image_changed: false,
            snap_clean: false,
            clean_on_disk: false,
            snap_clears: false,
            leg_change_gen: 0,
            log_lost: nr_copies == 0,
            out_of_sync: 0,
            rewrite_all: false,
            rejoining: 0,
            snap_full: false,
            slots: 0,
        })
    }

    /// Number of regions.
    pub fn nr_regions(&self) -> u64 {
        self.nr_regions
    }

    /// Current leg states.
    pub fn legs(&self) -> &[LegState] {
        self.legs
            .get(..usize::from(self.nr_legs))
            .unwrap_or(&self.legs)
    }

    /// Generation each leg stopped being in sync (0 = in sync).
    pub fn stale_since(&self) -> &[u64] {
        self.stale_since
            .get(..usize::from(self.nr_legs))
            .unwrap_or(&self.stale_since)
    }

    /// State of each log copy.
    pub fn copies(&self) -> &[LogState] {
        self.copies
            .get(..usize::from(self.nr_copies))
            .unwrap_or(&self.copies)
    }

    /// Both (all) log copies are lost: every region counts as out of sync,
    /// now and at the next activation.
    pub fn log_lost(&self) -> bool {
        self.log_lost
    }

    /// Newest generation durable on a healthy copy.
    pub fn durable_generation(&self) -> u64 {
        self.durable_gen
    }

    /// Generation of the newest log write issued (maybe still in flight).
    pub fn issued_generation(&self) -> u64 {
        self.issued_gen
    }

    /// The generation that will record the last leg state change, if it is
    /// not durable yet (a flush a leg missed is acknowledged after it).
    pub fn pending_leg_change(&self) -> Option<u64> {
        (self.leg_change_gen > self.durable_gen && !self.log_lost).then_some(self.leg_change_gen)
    }

    /// Log copy `i` comes back (the operator repaired it): it is written
    /// with the whole image by the next log write and counts as healthy
    /// from then on. Refused when the log is lost (every region then
    /// counts as out of sync; a new table rebuilds the log).
    pub fn copy_rejoined(&mut self, i: usize) -> Result<(), RegionError> {
        if i >= usize::from(self.nr_copies) || self.log_lost {
            return Err(RegionError::BadIndex);
        }
        // A log write issued to the copy before it failed is still out: its result would be
        // taken for the rejoined copy's.
        if self.in_flight.is_some_and(|m| m & (1u8 << (i % 8)) != 0) {
            return Err(RegionError::LogWriteInFlight);
        }
        if let Some(c) = self.copies.get_mut(i) {
            *c = LogState::Alive;
        }
        // Same header slot as a healthy copy: the rejoined copy is stale anyway, and two writes
        // later both copies hold the same bytes.
        let bit = 1u8 << (i % 8);
        self.rejoining |= bit;
        let healthy = self.established_mask() & !bit;
        if healthy != 0 {
            let j = healthy.trailing_zeros();
            self.slots = (self.slots & !bit) | (((self.slots >> j) & 1) << (i % 8));
        }
        self.image_changed = true;
        self.rewrite_all = true;
        Ok(())
    }

    /// Copies found behind the newest generation at activation
    /// ([`crate::log_format::Activation::behind`]): like rejoined copies,
    /// they count only once the first log write (which writes every block)
    /// reached them.
    pub fn set_rejoining(&mut self, mask: u8) {
        self.rejoining = mask & self.healthy_mask();
        if self.rejoining != 0 {
            self.rewrite_all = true;
        }
        if self.established_mask() == 0 && self.nr_copies > 0 && !self.log_lost {
            self.rejoining = 0;
        }
    }

    /// Sets the header slot each copy's next write goes to (bit `i` for
    /// copy `i`), from [`crate::log_format::Activation::next_slots`]: a
    /// write must never overwrite the copy's newest valid header.
    pub fn set_header_slots(&mut self, slots: u8) {
        self.slots = slots;
    }

    /// Whether a log write is in flight.
    pub fn log_write_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether the in-memory image differs from what was last issued, so a
    /// log write is due.
    pub fn log_write_due(&self) -> bool {
        self.image_changed && !self.log_lost
    }

    /// Regions that need resync (0 in-sync when the log is lost).
    pub fn out_of_sync_regions(&self) -> u64 {
        if self.log_lost {
            self.nr_regions
        } else {
            self.out_of_sync
        }
    }

    /// Regions in sync, for the status line.
    pub fn in_sync_regions(&self) -> u64 {
        self.nr_regions.saturating_sub(self.out_of_sync_regions())
    }

    /// Whether every leg that is not in sync still receives writes (so
    /// regions can be cleaned and resynced).
    fn all_legs_receive(&self) -> bool {
        self.legs().iter().all(|&s| leg_receives_writes(s))
    }

    /// Log copies rejoined whose rewrite is not durable yet (bit per copy).
    pub fn rejoining_copies(&self) -> u8 {
        self.rejoining
    }

    /// Copies a log write goes to: alive, including rejoined ones not rewritten yet.
    fn healthy_mask(&self) -> u8 {
        self.copies()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == LogState::Alive)
            .fold(0u8, |m, (i, _)| m | (1u8 << (i % 8)))
    }

    /// Copies that hold the newest durable generation (alive and not waiting for their
    /// rewrite): durability counts on them only, and the log is lost when none is left.
    fn established_mask(&self) -> u8 {
        self.healthy_mask() & !self.rejoining
    }

    fn next_gen(&self) -> u64 {
        self.issued_gen.saturating_add(1)
    }
}

/// Bit helpers over a bitmap slice; out-of-range indices read as 0 and are
/// not written.
fn bit(map: &[u64], r: u64) -> bool {
    usize::try_from(r / 64)
        .ok()
        .and_then(|i| map.get(i))
        .is_some_and(|w| w & (1u64 << (r % 64)) != 0)
}

fn set_bit(map: &mut [u64], r: u64, v: bool) {
    if let Some(w) = usize::try_from(r / 64).ok().and_then(|i| map.get_mut(i)) {
        let m = 1u64 << (r % 64);
        if v {
            *w |= m;
        } else {
            *w &= !m;
        }
    }
}

/// Mask of the valid bits in the last bitmap word.
fn last_word_mask(nr_regions: u64) -> u64 {
    match nr_regions % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

/// Words of the region bitmap held by log block `b` (clamped to `words`).
fn block_range(b: usize, words: usize) -> core::ops::Range<usize> {
    let start = b.saturating_mul(WORDS_PER_BLOCK).min(words);
    start..start.saturating_add(WORDS_PER_BLOCK).min(words)
}

/// Copies the words of the blocks set in `blocks` from `src` to `dst`.
fn copy_blocks(dst: &mut [u64], src: &[u64], blocks: &[u64]) {
    let words = dst.len().min(src.len());
    for b in set_bits(blocks) {
        let r = block_range(usize::try_from(b).unwrap_or(usize::MAX), words);
        if let (Some(d), Some(s)) = (dst.get_mut(r.clone()), src.get(r)) {
            copy_slice(d, s);
        }
    }
}

/// Whether `snapshot` clears a bit set in `durable`, looking only at `blocks`: outside the
/// blocks of a log write the snapshot is that of the last durable write of those blocks (an
/// aborted write marks its blocks again), so nothing is cleared there, and the cost stays that
/// of the blocks written, not of the whole bitmap.
fn blocks_clear(durable: &[u64], snapshot: &[u64], blocks: &[u64]) -> bool {
    let words = durable.len().min(snapshot.len());
    set_bits(blocks).any(|b| {
        let r = block_range(usize::try_from(b).unwrap_or(usize::MAX), words);
        durable
            .get(r.clone())
            .zip(snapshot.get(r))
            .is_some_and(|(d, s)| d.iter().zip(s).any(|(d, s)| d & !s != 0))
    })
}

/// A view of the region state plus its caller-provided memory.
#[derive(Debug)]
pub struct Regions<'a> {
    st: &'a mut RegionState,
    image: &'a mut [u64],
    snapshot: &'a mut [u64],
    durable: &'a mut [u64],
    candidate: &'a mut [u64],
    resync: &'a mut [u64],
    recovering: &'a mut [u64],
    aged: &'a mut [u64],
    changed: &'a mut [u64],
    snap_blocks: &'a mut [u64],
    inflight: &'a mut [u16],
}

impl<'a> Regions<'a> {
    /// Builds a view. `bits` needs [`region_words_needed`] words and
    /// `inflight` `nr_regions` entries; longer slices are fine.
    pub fn new(
        st: &'a mut RegionState,
        bits: &'a mut [u64],
        inflight: &'a mut [u16],
    ) -> Result<Self, RegionError> {
        let w = bitmap_words(st.nr_regions);
        let nr = usize::try_from(st.nr_regions).map_err(|_| RegionError::BadMemory)?;
        let inflight = inflight.get_mut(..nr).ok_or(RegionError::BadMemory)?;
        let bits = bits
            .get_mut(..region_words_needed(st.nr_regions))
            .ok_or(RegionError::BadMemory)?;
        let bw = block_map_words(st.nr_regions);
        let (maps, blocks) = bits.split_at_mut(w.saturating_mul(REGION_BITMAPS).min(bits.len()));
        let mut chunks = maps.chunks_exact_mut(w.max(1));
        let mut next = || chunks.next().unwrap_or(&mut []);
        let (image, snapshot, durable) = (next(), next(), next());
        let (candidate, resync, recovering) = (next(), next(), next());
        let aged = next();
        let mut chunks = blocks.chunks_exact_mut(bw.max(1));
        let changed = chunks.next().unwrap_or(&mut []);
        let snap_blocks = chunks.next().unwrap_or(&mut []);
        Ok(Regions {
            st,
            image,
            snapshot,
            durable,
            candidate,
            resync,
            recovering,
            aged,
            changed,
            snap_blocks,
            inflight,
        })
    }

    /// The owned state.
    pub fn state(&self) -> &RegionState {
        self.st
    }

    /// Region `r`'s log block must be written by the next log write.
    fn mark_block(&mut self, r: u64) {
        set_bit(self.changed, crate::log_format::block_of_region(r), true);
    }

    /// Every log block must be written by the next log write.
    fn mark_all_blocks(&mut self) {
        self.changed.fill(u64::MAX);
        let n = bitmap_blocks(self.st.nr_regions);
        if let Some(l) = self.changed.last_mut() {
            *l &= last_word_mask(n);
        }
    }

    /// Initialises the memory at activation.
    ///
    /// `loaded` is the newest header, the union bitmap and the common bitmap
    /// from [`crate::log_format::choose_copies`]: the union becomes dirty
    /// and resync work, only the common bits (on every copy) count as
    /// durable, so the log copies are brought back to one image before a
    /// write relies on a bit that only some of them hold (otherwise a torn
    /// write of the newer copy would leave only the stale one). Leg states
    /// come from the header. `None` means no
    /// usable log (lost, or brand new): every region is out of sync and
    /// nothing is durable yet, so the first log write records that.
    /// `base_generation` is the largest generation seen on any copy; new
    /// writes use larger ones. No writes may be in flight.
    pub fn activate(&mut self, loaded: Option<(&LogHeader, &[u64], &[u64])>, base_generation: u64) {
        self.inflight.fill(0);
        for m in [
            &mut *self.snapshot,
            &mut *self.candidate,
            &mut *self.recovering,
            &mut *self.snap_blocks,
        ] {
            m.fill(0);
        }
        // The first log write rewrites every block: it brings the copies to one image
        // (version 2, this uuid) whatever each held.
        self.mark_all_blocks();
        self.st.rewrite_all = false;
        self.st.snap_clean = false;
        self.st.clean_on_disk = false;
        let last_mask = last_word_mask(self.st.nr_regions);
        let mut gen = base_generation;
        match loaded {
            Some((h, bits, common)) => {
                for (i, (d, c)) in self
                    .image
                    .iter_mut()
                    .zip(self.durable.iter_mut())
                    .enumerate()
                {
                    *d = bits.get(i).copied().unwrap_or(u64::MAX);
                    *c = common.get(i).copied().unwrap_or(0) & *d;
                }
                self.st.legs = h.normalized().leg_states;
                self.st.stale_since = h.normalized().stale_since;
                gen = gen.max(h.generation);
                self.st.image_changed = self.durable != self.image;
            }
            None => {
                self.image.fill(u64::MAX);
                self.durable.fill(0);
                self.st.image_changed = true;
            }
        }
        for m in [&mut *self.image, &mut *self.durable] {
            if let Some(l) = m.last_mut() {
                *l &= last_mask;
            }
        }
        copy_slice(self.resync, self.image);
        self.st.out_of_sync = self.image.iter().map(|w| u64::from(w.count_ones())).sum();
        // A leg out of sync from the start (absent, or a new log) is stale since the first
        // generation this activation writes: the log format requires a non-zero mark.
        let n = usize::from(self.st.nr_legs);
        for (s, g) in self
            .st
            .legs
            .iter()
            .zip(self.st.stale_since.iter_mut())
            .take(n)
        {
            if *s != LegState::InSync && *g == 0 {
                *g = gen.saturating_add(1);
            }
        }
        self.st.issued_gen = gen;
        self.st.durable_gen = gen;
        self.st.leg_change_gen = gen;
        if self.st.legs().iter().any(|&s| s != LegState::InSync) {
            // The leg states may be on some copies only (one was torn or stale): a write that
            // misses a leg waits until a log write has brought every copy to them.
            self.st.leg_change_gen = gen.saturating_add(1);
            self.st.image_changed = true;
        }
        self.st.in_flight = None;
        self.st.snap_legs = self.st.legs;
        self.st.snap_stale = self.st.stale_since;
    }

    /// Like [`Regions::activate`] with no log, but for legs declared
    /// identical (`nosync`): nothing is out of sync.
    pub fn activate_nosync(&mut self, base_generation: u64) {
        self.activate(None, base_generation);
        self.image.fill(0);
        self.resync.fill(0);
        self.st.out_of_sync = 0;
    }

    fn check(&self, r: u64) -> Result<usize, RegionError> {
        if r >= self.st.nr_regions {
            return Err(RegionError::OutOfRange);
        }
        usize::try_from(r).map_err(|_| RegionError::OutOfRange)
    }

    fn inflight(&self, r: u64) -> u16 {
        usize::try_from(r)
            .ok()
            .and_then(|i| self.inflight.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// A write to region `r` arrives.
    pub fn write_start(&mut self, r: u64) -> Result<WriteStart, RegionError> {
        let i = self.check(r)?;
        if bit(self.recovering, r) {
            return Ok(WriteStart::Delay);
        }
        let slot = self.inflight.get_mut(i).ok_or(RegionError::OutOfRange)?;
        let Some(n) = slot.checked_add(1) else {
            // As many writes in flight as the counter holds: this one waits for one of them.
            return Ok(WriteStart::Delay);
        };
        *slot = n;
        set_bit(self.candidate, r, false);
        if !bit(self.image, r) {
            set_bit(self.image, r, true);
            self.mark_block(r);
            self.st.image_changed = true;
            if !self.st.log_lost {
                self.dirty_ahead(r);
            }
        }
        if self.st.log_lost {
            return Ok(WriteStart::ProceedUnlogged);
        }
        if !bit(self.durable, r) {
            self.mark_block(r);
        }
        let in_snapshot = self.st.in_flight.is_some() && bit(self.snapshot, r);
        let stays_durable = self.st.in_flight.is_none() || in_snapshot;
        // After a clean-shutdown header, dirty bits on disk are ignored at activation: a
        // write waits for a generation without the flag.
        let clean = self.st.clean_on_disk || (self.st.in_flight.is_some() && self.st.snap_clean);
        Ok(if bit(self.durable, r) && stays_durable && !clean {
            WriteStart::Proceed
        } else if in_snapshot && !self.st.snap_clean {
            WriteStart::WaitFor(self.st.issued_gen)
        } else {
            self.st.image_changed = true;
            WriteStart::WaitFor(self.st.next_gen())
        })
    }

    /// A write to region `r` finished. `all_legs_ok`: every leg that
    /// receives writes (in sync or resyncing) has it; if not, the caller
    /// must first have moved the failing leg out of sync with
    /// [`Regions::set_leg_state`].
    pub fn write_done(&mut self, r: u64, all_legs_ok: bool) -> Result<WriteDone, RegionError> {
        let i = self.check(r)?;
        if self.inflight(r) == 0 {
            return Err(RegionError::NotInFlight);
        }
        // A leg that missed the write is out of service, or came back since (its return
        // marked every region with writes in flight for resync).
        if !all_legs_ok && self.st.all_legs_receive() && !bit(self.resync, r) {
            return Err(RegionError::LegNotMarked);
        }
        if let Some(slot) = self.inflight.get_mut(i) {
            *slot = slot.saturating_sub(1);
        }
        let missed = !all_legs_ok || !self.st.all_legs_receive();
        if missed && !bit(self.resync, r) {
            set_bit(self.resync, r, true);
            self.st.out_of_sync = self.st.out_of_sync.saturating_add(1);
        }
        if self.inflight(r) == 0 && !bit(self.resync, r) && bit(self.image, r) {
            self.make_candidate(r, false);
        }
        // A write that some leg lacks (failed there, or the leg does not receive writes) is
        // acknowledged only once the generation recording that leg's state is durable:
        // otherwise a power cut could leave a log naming the stale leg in sync.
        Ok(if self.st.log_lost {
            if all_legs_ok {
                WriteDone::Ack
            } else {
                WriteDone::CannotAck
            }
        } else if missed && self.st.leg_change_gen > self.st.durable_gen {
            WriteDone::AckAfter(self.st.leg_change_gen)
        } else {
            WriteDone::Ack
        })
    }

    /// A write to region `r` finished, every leg is in service, but the
    /// legs may now differ there (a write-zeroes or discard one leg
    /// refused): the region is resynced, never cleaned before that.
    pub fn write_done_diverged(&mut self, r: u64) -> Result<WriteDone, RegionError> {
        let i = self.check(r)?;
        if self.inflight(r) == 0 {
            return Err(RegionError::NotInFlight);
        }
        if let Some(slot) = self.inflight.get_mut(i) {
            *slot = slot.saturating_sub(1);
        }
        if !bit(self.resync, r) {
            set_bit(self.resync, r, true);
            self.st.out_of_sync = self.st.out_of_sync.saturating_add(1);
        }
        set_bit(self.candidate, r, false);
        Ok(WriteDone::Ack)
    }

    /// Changes the state of leg `leg`. Leaving [`LegState::InSync`] records
    /// the generation it became stale; returning to it requires that no
    /// region needs resync. Returns the generation that will record the
    /// change (writes that missed the leg are acknowledged after it).
    pub fn set_leg_state(&mut self, leg: usize, s: LegState) -> Result<u64, RegionError> {
        if leg >= usize::from(self.st.nr_legs) {
            return Err(RegionError::BadIndex);
        }
        let next = self.st.next_gen();
        let (Some(cur), Some(stale)) =
            (self.st.legs.get_mut(leg), self.st.stale_since.get_mut(leg))
        else {
            return Err(RegionError::BadIndex);
        };
        if *cur == s {
            return Ok(self.st.leg_change_gen);
        }
        let returns = leg_receives_writes(s) && !leg_receives_writes(*cur);
        if s == LegState::InSync {
            if self.st.out_of_sync != 0 || self.st.log_lost {
                return Err(RegionError::ResyncPending);
            }
            *stale = 0;
        } else if *cur == LegState::InSync {
            *stale = next;
        }
        *cur = s;
        if returns {
            // Writes in flight were sent without this leg: their regions need resync.
            for (i, &n) in self.inflight.iter().enumerate() {
                let r = i as u64;
                if n > 0 && !bit(self.resync, r) {
                    set_bit(self.resync, r, true);
                    set_bit(self.candidate, r, false);
                    self.st.out_of_sync = self.st.out_of_sync.saturating_add(1);
                }
            }
        }
        self.st.image_changed = true;
        self.st.leg_change_gen = next;
        Ok(next)
    }

    /// Marks every region out of sync (a full resync, e.g. when an
    /// Inactive or Missing leg comes back).
    pub fn mark_all_out_of_sync(&mut self) {
        self.image.fill(u64::MAX);
        self.resync.fill(u64::MAX);
        let mask = last_word_mask(self.st.nr_regions);
        for m in [&mut *self.image, &mut *self.resync] {
            if let Some(l) = m.last_mut() {
                *l &= mask;
            }
        }
        self.candidate.fill(0);
        self.mark_all_blocks();
        self.st.out_of_sync = self.st.nr_regions;
        self.st.image_changed = true;
    }

    /// The operator trusts leg `leg` (message `trust`, when no leg is known
    /// to hold the newest data): it becomes in sync, every other in-sync
    /// leg becomes Resyncing and every region out of sync (a full resync
    /// from `leg`). Returns the generation that records it.
    pub fn trust_leg(&mut self, leg: usize) -> Result<u64, RegionError> {
        if leg >= usize::from(self.st.nr_legs) {
            return Err(RegionError::BadIndex);
        }
        let next = self.st.next_gen();
        self.mark_all_out_of_sync();
        let n = usize::from(self.st.nr_legs);
        for (i, (s, g)) in self
            .st
            .legs
            .iter_mut()
            .zip(self.st.stale_since.iter_mut())
            .enumerate()
            .take(n)
        {
            if i == leg {
                *s = LegState::InSync;
                *g = 0;
            } else if *s == LegState::InSync {
                *s = LegState::Resyncing;
                *g = next;
            }
        }
        self.st.leg_change_gen = next;
        self.st.image_changed = true;
        Ok(next)
    }

    /// Picks up to `max` clean candidates and clears them from the in-memory
    /// image; the next log write makes that durable. A region written again
    /// before that simply becomes dirty again (nothing is lost). Returns the
    /// number of regions cleared.
    pub fn clean_batch(&mut self, max: u64) -> u64 {
        if self.st.log_lost {
            return 0;
        }
        let mut n = 0u64;
        for wi in 0..self.candidate.len() {
            let mut word = self.candidate.get(wi).copied().unwrap_or(0);
            while word != 0 && n < max {
                let b = u64::from(word.trailing_zeros());
                word &= word - 1;
                if let Some(cw) = self.candidate.get_mut(wi) {
                    *cw &= !(1u64 << b);
                }
                if self.clear_if_idle((wi as u64).saturating_mul(64).saturating_add(b)) {
                    n = n.saturating_add(1);
                }
            }
            if n >= max {
                break;
            }
        }
        n
    }

    /// One pass of the lazy cleaner: clears (as [`Regions::clean_batch`] does) up to `max`
    /// clean candidates that were candidates already at the previous pass and were not
    /// written since, and ages the others for the next pass. So a region is cleared only
    /// after it stayed idle between one pass and the next, as md's bitmap daemon does: a
    /// region written again and again stays dirty and costs no log write per write, at the
    /// price of resyncing the regions written in the last two passes after a crash.
    pub fn clean_idle(&mut self, max: u64) -> CleanPass {
        let mut pass = CleanPass::default();
        if self.st.log_lost {
            return pass;
        }
        for wi in 0..self.candidate.len() {
            let mut word = self.candidate.get(wi).copied().unwrap_or(0);
            let aged = self.aged.get(wi).copied().unwrap_or(0);
            while word != 0 && pass.cleaned < max {
                let b = u64::from(word.trailing_zeros());
                word &= word - 1;
                let m = 1u64 << b;
                if aged & m == 0 {
                    if let Some(aw) = self.aged.get_mut(wi) {
                        *aw |= m;
                    }
                    pass.waiting = pass.waiting.saturating_add(1);
                    continue;
                }
                if let (Some(cw), Some(aw)) = (self.candidate.get_mut(wi), self.aged.get_mut(wi)) {
                    *cw &= !m;
                    *aw &= !m;
                }
                if self.clear_if_idle((wi as u64).saturating_mul(64).saturating_add(b)) {
                    pass.cleaned = pass.cleaned.saturating_add(1);
                }
            }
            if pass.cleaned >= max {
                pass.waiting = pass.waiting.saturating_add(u64::from(word.count_ones()));
            }
        }
        pass
    }

    /// Region `r` just became dirty: if the regions before it are dirty too (a sequential
    /// stream), the regions after it are marked dirty in the same log generation, twice as
    /// many as the run of dirty regions behind `r`, at most [`DIRTY_AHEAD_MAX`]. The stream's
    /// next regions then find themselves durably dirty and cost no log write of their own
    /// (one generation per `DIRTY_AHEAD_MAX` regions instead of one per region), as
    /// read-ahead ramps up for sequential reads. Marking a region dirty that is not written is
    /// always safe (the write-ahead rule needs dirty ⊇ written); it costs at most that many
    /// regions of resync after a crash, and the lazy cleaner clears those not written.
    fn dirty_ahead(&mut self, r: u64) {
        let mut behind = 0u64;
        while behind < DIRTY_AHEAD_MAX && r > behind && bit(self.image, r - behind - 1) {
            behind += 1;
        }
        let ahead = behind.saturating_mul(2).min(DIRTY_AHEAD_MAX);
        let end = r
            .saturating_add(1)
            .saturating_add(ahead)
            .min(self.st.nr_regions);
        for a in r.saturating_add(1)..end {
            if bit(self.image, a) || bit(self.resync, a) || bit(self.recovering, a) {
                continue;
            }
            set_bit(self.image, a, true);
            self.mark_block(a);
            // No write in flight and none missed: a clean candidate for the lazy cleaner.
            self.make_candidate(a, false);
        }
    }

    /// Clears region `r` from the in-memory image if it is dirty and idle: no write in
    /// flight, not being resynced or recovered. Returns whether it was cleared.
    fn clear_if_idle(&mut self, r: u64) -> bool {
        let busy = usize::try_from(r)
            .ok()
            .and_then(|i| self.inflight.get(i))
            .is_none_or(|&c| c != 0);
        if busy || bit(self.resync, r) || bit(self.recovering, r) || !bit(self.image, r) {
            return false;
        }
        set_bit(self.image, r, false);
        set_bit(self.changed, crate::log_format::block_of_region(r), true);
        self.st.image_changed = true;
        true
    }

    /// Starts the next log write if one is due and none is in flight:
    /// snapshots the changed blocks of the image and the leg states under a
    /// new generation. Every write waiting so far is covered by this one
    /// write.
    pub fn take_log_write(&mut self) -> Option<LogWrite> {
        if !self.st.image_changed {
            return None;
        }
        self.take(false)
    }

    /// At a clean suspend: if no write is in flight, every leg is in sync
    /// and no region needs resync, starts a log write whose header records
    /// a clean shutdown (the caller must have flushed the legs first).
    /// Writes after it wait for a generation without the flag.
    pub fn take_clean_write(&mut self) -> Option<LogWrite> {
        let idle = self.inflight.iter().all(|&n| n == 0);
        let in_sync = self.st.legs().iter().all(|&s| s == LegState::InSync);
        if !idle
            || !in_sync
            || self.st.out_of_sync != 0
            || (self.st.clean_on_disk && !self.st.image_changed)
        {
            return None;
        }
        self.take(true)
    }

    fn take(&mut self, clean: bool) -> Option<LogWrite> {
        if self.st.log_lost || self.st.in_flight.is_some() {
            return None;
        }
        let copies = self.st.healthy_mask();
        if copies == 0 {
            return None;
        }
        let gen = self.st.issued_gen.checked_add(1)?;
        self.st.snap_full = self.st.rewrite_all;
        if self.st.rewrite_all {
            self.mark_all_blocks();
            self.st.rewrite_all = false;
        }
        // Blocks not changed since the last snapshot hold the same words in both.
        copy_blocks(self.snapshot, self.image, self.changed);
        copy_slice(self.snap_blocks, self.changed);
        self.changed.fill(0);
        self.st.snap_clears = blocks_clear(self.durable, self.snapshot, self.snap_blocks);
        self.st.snap_legs = self.st.legs;
        self.st.snap_stale = self.st.stale_since;
        self.st.snap_clean = clean;
        self.st.issued_gen = gen;
        self.st.in_flight = Some(copies);
        self.st.image_changed = false;
        Some(LogWrite {
            generation: gen,
            copies,
            clean,
            slots: self.st.slots,
        })
    }

    /// The log write in flight could not be issued at all (no memory): it
    /// is taken back, its blocks are written by the next one. Nothing
    /// waits for `gen` alone: the next generation covers it.
    pub fn abort_log_write(&mut self, gen: u64) -> Result<(), RegionError> {
        if self.st.in_flight.is_none() || gen != self.st.issued_gen {
            return Err(RegionError::NoSuchLogWrite);
        }
        self.st.in_flight = None;
        for (c, &s) in self.changed.iter_mut().zip(self.snap_blocks.iter()) {
            *c |= s;
        }
        self.st.image_changed = true;
        Ok(())
    }

    /// The bitmap of the log write in flight (encode its blocks from this).
    pub fn snapshot(&self) -> &[u64] {
        self.snapshot
    }

    /// Bit `b` set: log bitmap block `b` is part of the log write in flight
    /// (its words in [`Regions::snapshot`] changed since the previous one).
    pub fn snapshot_blocks(&self) -> &[u64] {
        self.snap_blocks
    }

    /// Whether the log write in flight clears a region that is durably
    /// dirty. Before it is written, every leg must flush: a region may only
    /// be recorded clean once the writes that made it clean are on stable
    /// media of every leg (a volatile cache could still lose them).
    pub fn snapshot_clears(&self) -> bool {
        self.st.in_flight.is_some() && self.st.snap_clears
    }

    /// A leg could not flush before the log write in flight, which clears
    /// regions: it keeps them dirty instead, and they are resynced (the leg
    /// may have lost writes that made them clean).
    pub fn undo_snapshot_clears(&mut self) {
        if self.st.in_flight.is_none() || !self.st.snap_clears {
            return;
        }
        let words = self
            .durable
            .iter()
            .zip(self.snapshot.iter_mut())
            .zip(self.image.iter_mut())
            .zip(self.resync.iter_mut())
            .zip(self.candidate.iter_mut());
        let mut added = 0u64;
        for ((((d, snap), img), rs), cand) in words {
            let cleared = *d & !*snap;
            *snap |= cleared;
            *img |= cleared;
            added = added.saturating_add(u64::from((cleared & !*rs).count_ones()));
            *rs |= cleared;
            *cand &= !cleared;
        }
        self.st.out_of_sync = self.st.out_of_sync.saturating_add(added);
        self.st.snap_clears = false;
    }

    /// Takes the current leg states into the log write in flight (a leg
    /// whose flush failed after the snapshot is recorded out of sync by
    /// this very write). Legs that left sync since are stale from this
    /// generation on.
    pub fn refresh_snapshot_legs(&mut self) {
        if self.st.in_flight.is_none() {
            return;
        }
        let gen = self.st.issued_gen;
        self.st.snap_legs = self.st.legs;
        for (d, &s) in self
            .st
            .snap_stale
            .iter_mut()
            .zip(self.st.stale_since.iter())
        {
            *d = s.min(gen);
        }
        if self.st.leg_change_gen > gen {
            self.st.leg_change_gen = gen;
        }
    }

    /// The header of the log write in flight (or of the last one issued).
    pub fn snapshot_header(&self, uuid: [u8; 16], region_size: u64) -> LogHeader {
        LogHeader {
            uuid,
            generation: self.st.issued_gen,
            region_size,
            nr_regions: self.st.nr_regions,
            nr_legs: self.st.nr_legs,
            leg_states: self.st.snap_legs,
            stale_since: self.st.snap_stale,
            clean_shutdown: self.st.snap_clean,
        }
        .normalized()
    }

    /// Reports the log write of generation `gen` finished; bit `i` of
    /// `copies_ok` set means copy `i` was written (and flushed) without
    /// error. Copies that were not written, or have failed meanwhile, never
    /// count; every written copy not reported ok is marked failed.
    pub fn log_written(&mut self, gen: u64, copies_ok: u8) -> Result<LogDone, RegionError> {
        let issued = match self.st.in_flight {
            Some(m) if gen == self.st.issued_gen => m,
            _ => return Err(RegionError::NoSuchLogWrite),
        };
        self.st.in_flight = None;
        if self.st.log_lost {
            // Lost while this write was in flight (no copy holding the newest generation was
            // left): what it wrote cannot bring the log back.
            return Ok(LogDone::LogLost);
        }
        let ok = copies_ok & issued & self.st.healthy_mask();
        for (i, c) in self.st.copies.iter_mut().enumerate() {
            if issued & (1u8 << (i % 8)) != 0 && ok & (1u8 << (i % 8)) == 0 {
                *c = LogState::Failed;
            }
        }
        self.st.rejoining &= !(issued & !ok);
        // A rejoined copy counts once a write of every block reached it.
        if self.st.snap_full {
            self.st.rejoining &= !ok;
        }
        // A copy written alternates its header slot.
        self.st.slots ^= ok;
        if ok & !self.st.rejoining != 0 {
            copy_blocks(self.durable, self.snapshot, self.snap_blocks);
            self.st.durable_gen = gen;
            self.st.clean_on_disk = self.st.snap_clean;
            Ok(LogDone::Durable(gen))
        } else {
            self.st.log_lost = true;
            Ok(LogDone::LogLost)
        }
    }

    /// Log copy `i` failed outside a log write (e.g. a read error). If no
    /// healthy copy remains the log is lost.
    pub fn copy_failed(&mut self, i: usize) -> Result<(), RegionError> {
        if i >= usize::from(self.st.nr_copies) {
            return Err(RegionError::BadIndex);
        }
        if let Some(c) = self.st.copies.get_mut(i) {
            *c = LogState::Failed;
        }
        self.st.rejoining &= !(1u8 << (i % 8));
        // A rejoined copy not rewritten yet holds nothing durable: it cannot stand in.
        if self.st.established_mask() == 0 {
            self.st.log_lost = true;
        }
        Ok(())
    }

    /// Whether region `r` needs resync.
    pub fn needs_resync(&self, r: u64) -> bool {
        self.st.log_lost || bit(self.resync, r)
    }

    /// The first region at or after `from` that needs resync.
    pub fn next_out_of_sync(&self, from: u64) -> Option<u64> {
        if self.st.log_lost {
            return (from < self.st.nr_regions).then_some(from);
        }
        (from..self.st.nr_regions).find(|&r| bit(self.resync, r))
    }

    /// Whether region `r` is dirty in the in-memory log image (the next log write's).
    pub fn is_dirty(&self, r: u64) -> bool {
        bit(self.image, r)
    }

    /// Whether region `r` is dirty in the newest durable log generation.
    pub fn is_durably_dirty(&self, r: u64) -> bool {
        bit(self.durable, r)
    }

    /// Writes in flight to region `r`.
    pub fn writes_in_flight(&self, r: u64) -> u16 {
        self.inflight(r)
    }

    /// Claims region `r` for a resync copy if it needs resync. While
    /// claimed, [`Regions::write_start`] returns [`WriteStart::Delay`], so
    /// a region written all the time still drains: the claim is
    /// [`ResyncClaim::Draining`] until the writes in flight finished, then
    /// [`ResyncClaim::Claimed`] (ask again).
    pub fn resync_begin(&mut self, r: u64) -> Result<ResyncClaim, RegionError> {
        self.check(r)?;
        if !self.needs_resync(r) {
            if bit(self.recovering, r) {
                return Err(RegionError::NotRecovering);
            }
            return Ok(ResyncClaim::NotNeeded);
        }
        set_bit(self.recovering, r, true);
        Ok(if self.inflight(r) == 0 {
            ResyncClaim::Claimed
        } else {
            ResyncClaim::Draining
        })
    }

    /// Ends the resync copy of region `r`. If `copied` and every leg that
    /// is not in sync receives writes (no Degraded/Inactive/Missing/Split
    /// leg, which would still lack the region), the region is marked in
    /// sync and becomes a clean candidate. Returns whether it was marked.
    pub fn resync_end(&mut self, r: u64, copied: bool) -> Result<bool, RegionError> {
        self.check(r)?;
        if !bit(self.recovering, r) {
            return Err(RegionError::NotRecovering);
        }
        set_bit(self.recovering, r, false);
        if !copied || !self.st.all_legs_receive() || self.st.log_lost {
            return Ok(false);
        }
        if bit(self.resync, r) {
            set_bit(self.resync, r, false);
            self.st.out_of_sync = self.st.out_of_sync.saturating_sub(1);
        }
        // Copied, not written by the application: cleaned by the next pass already.
        if bit(self.image, r) {
            self.make_candidate(r, true);
        }
        Ok(true)
    }

    /// Region `r` may be cleaned: by the next pass of the lazy cleaner if `aged`, else once it
    /// stayed idle for a whole pass.
    fn make_candidate(&mut self, r: u64, aged: bool) {
        set_bit(self.candidate, r, true);
        set_bit(self.aged, r, aged);
    }
}
