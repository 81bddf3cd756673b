// SPDX-License-Identifier: GPL-2.0

//! Device-mapper target `rtmirror`: a mirror across two to four legs (storage subsystems) that
//! keeps running when a leg fails.
//!
//! This file is the kernel shell: it opens devices, moves bios and keeps run-time state.
//! Every decision about the table, status and message grammar lives in `core/` (pure `no_std`
//! Rust that the host tests with `cargo test`), included here module by module.
//!
//! First version: writes go to every in-sync leg and complete when all of them did; a leg
//! whose write fails becomes Inactive and I/O goes on with the others; reads go to the primary
//! leg. The dirty-region log, resync and I/O timeouts come next (see docs/).

use kernel::{
    block::bio::{Bio, BioCompletion, BioSet, ReqOp, BIO_MAX_VECS},
    device_mapper::{
        Args, DeviceVisitor, DmDev, IoRef, IoResult, IterateStop, MapBio, Mapped, Registration,
        StatusType, StatusWriter, TableEvent, Target, TargetSetup,
    },
    new_mutex,
    prelude::*,
    str::CString,
    sync::{
        atomic::{Atomic, Relaxed},
        Mutex,
    },
};

#[path = "core/src/fmtbuf.rs"]
pub mod fmtbuf;
#[path = "core/src/message.rs"]
pub mod message;
#[path = "core/src/status.rs"]
pub mod status;
#[path = "core/src/table.rs"]
pub mod table;

use message::Message;
use status::{health_of, LegState, LogState, StatusInfo, SyncAction};
use table::{TableConfig, MAX_LEGS, MAX_LOGS};

module! {
    type: RtMirrorModule,
    name: "dm_rtmirror",
    authors: ["dm-rtmirror developers"],
    description: "device-mapper real-time mirror target with I/O timeouts and a mirrored log",
    license: "GPL",
}

/// Target version reported to user space (`dmsetup targets`).
const VERSION: [u32; 3] = [0, 1, 0];

/// Bios reserved for forward progress under memory pressure.
const BIO_POOL_SIZE: u32 = 64;

/// Largest bio the target handles in one piece, in sectors (512 KiB): bounds the bvec table of
/// a leg bio and, being at most the region size, keeps every bio inside one region.
const MAX_IO_SECTORS: u64 = 1024;

#[pin_data]
struct RtMirrorModule {
    #[pin]
    registration: Registration<RtMirror>,
}

impl kernel::InPlaceModule for RtMirrorModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            registration <- Registration::new(c"rtmirror", VERSION, module),
        })
    }
}

/// Leg states as stored in an atomic.
fn state_from_u32(v: u32) -> LegState {
    LegState::ALL
        .get(v as usize)
        .copied()
        .unwrap_or(LegState::Inactive)
}

fn state_to_u32(s: LegState) -> u32 {
    LegState::ALL.iter().position(|x| *x == s).unwrap_or(0) as u32
}

struct Leg {
    dev: Option<DmDev>,
    state: Atomic<u32>,
}

impl Leg {
    fn state(&self) -> LegState {
        state_from_u32(self.state.load(Relaxed))
    }
}

/// One rtmirror target (one table line).
#[pin_data]
struct RtMirror {
    name: CString,
    /// Length of the target in sectors.
    len: u64,
    legs: KVec<Leg>,
    logs: KVec<DmDev>,
    region_size: u64,
    total_regions: u64,
    io_timeout_ms: Atomic<u32>,
    primary: Atomic<u32>,
    primary_explicit: Atomic<bool>,
    resync_kbps: Atomic<u32>,
    nosync: bool,
    /// Largest logical block size of the present legs, in bytes.
    logical_block_size: u32,
    /// Serialises operator messages, so that checks and state changes they make are atomic.
    #[pin]
    message_lock: Mutex<()>,
    #[pin]
    bios: BioSet<LegIo>,
    #[pin]
    event: TableEvent,
}

/// State of one bio the target fans out to its legs.
struct MirrorIo {
    legs_ok: Atomic<u32>,
    /// First error a leg returned (negative errno), 0 if none.
    first_error: Atomic<i32>,
}

impl IoResult for MirrorIo {
    fn result(&self) -> Result {
        // A write succeeds once one in-sync leg has it; a leg that failed was detached before
        // its reference was dropped, so it no longer counts as in sync.
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
struct LegIo {
    io: IoRef<RtMirror>,
    leg: usize,
}

impl BioCompletion for LegIo {
    fn complete(self, status: Result) {
        let Err(e) = status else {
            self.io.state().legs_ok.fetch_add(1, Relaxed);
            return;
        };
        let _ = self
            .io
            .state()
            .first_error
            .cmpxchg(0, e.to_errno(), Relaxed);
        // A leg that cannot discard or write zeroes (any more) fails that request, not the
        // leg: its data is intact.
        let unsupported = e == EOPNOTSUPP || e == EREMOTEIO;
        if !(unsupported && matches!(self.io.bio().op(), ReqOp::Discard | ReqOp::WriteZeroes)) {
            self.io.target().leg_failed(self.leg, e);
        }
        // Dropping `self.io` completes the original bio after the last leg.
    }
}

/// Rejects a table: the short reason goes to device-mapper (which logs it with the device
/// name), the detail to the kernel log.
fn reject(
    setup: &mut TargetSetup<'_>,
    reason: &'static CStr,
    detail: core::fmt::Arguments<'_>,
) -> Error {
    pr_err!("{}: {}\n", setup.device_name(), detail);
    setup.set_error(reason);
    EINVAL
}

impl RtMirror {
    fn dev_name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    fn in_sync_legs(&self) -> impl Iterator<Item = (usize, &DmDev)> + '_ {
        self.legs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match (&l.dev, l.state()) {
                (Some(d), LegState::InSync) => Some((i, d)),
                _ => None,
            })
    }

    /// The leg reads go to: the primary when in sync, else the first in-sync leg.
    fn read_leg(&self) -> Option<&DmDev> {
        let p = self.primary.load(Relaxed) as usize;
        if let Some(Leg {
            dev: Some(d),
            state,
        }) = self.legs.get(p)
        {
            if state_from_u32(state.load(Relaxed)) == LegState::InSync {
                return Some(d);
            }
        }
        self.in_sync_legs().next().map(|(_, d)| d)
    }

    /// Moves leg `leg` from in sync to `to`; returns whether it changed.
    fn detach(&self, leg: usize, to: LegState) -> bool {
        let Some(l) = self.legs.get(leg) else {
            return false;
        };
        let from = state_to_u32(LegState::InSync);
        if l.state.cmpxchg(from, state_to_u32(to), Relaxed).is_err() {
            return false;
        }
        self.event.raise();
        true
    }

    /// A leg I/O failed: the leg is detached at once (Inactive) and I/O goes on.
    fn leg_failed(&self, leg: usize, err: Error) {
        if self.detach(leg, LegState::Inactive) {
            pr_err!(
                "{}: leg {} failed with error {}: detached (Inactive)\n",
                self.dev_name(),
                leg,
                err.to_errno()
            );
        }
    }

    fn leg_states(&self) -> [LegState; MAX_LEGS] {
        let mut out = [LegState::Missing; MAX_LEGS];
        for (o, l) in out.iter_mut().zip(self.legs.iter()) {
            *o = l.state();
        }
        out
    }

    /// Sends `bio` to every in-sync leg and completes it when all of them did.
    fn map_to_all_legs(&self, mut bio: MapBio<'_, Self>) -> Mapped {
        if self.in_sync_legs().next().is_none() {
            return bio.kill();
        }
        let has_data = matches!(bio.bio().op(), ReqOp::Write) && bio.bio().size() > 0;
        let mut nr_vecs = 0;
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
            nr_vecs = bio.bio().fit_in_segments(BIO_MAX_VECS).1;
        }
        let sector = bio.target_sector();
        let (io, mapped) = bio.start(MirrorIo {
            legs_ok: Atomic::new(0),
            first_error: Atomic::new(0),
        });
        let src: &Bio = io.bio();
        let (opf, size) = (src.opf(), src.size());
        for (leg, dev) in self.in_sync_legs() {
            // SAFETY: `dev` is open for as long as the target lives, which outlasts its bios.
            let leg_bio = unsafe {
                if has_data {
                    self.bios
                        .alloc_with_data_of(dev.bdev(), opf, sector, src, size, nr_vecs)
                } else {
                    self.bios.alloc_dataless(dev.bdev(), opf, sector, size)
                }
            };
            match leg_bio {
                Ok(b) => b.submit(LegIo {
                    io: io.clone(),
                    leg,
                }),
                Err(e) => self.leg_failed(leg, e),
            }
        }
        mapped
    }

    fn handle_message(&self, msg: Message) -> Result {
        let _guard = self.message_lock.lock();
        match msg {
            Message::IoTimeoutMs(ms) => self.io_timeout_ms.store(ms, Relaxed),
            Message::ResyncKbps(kbps) => self.resync_kbps.store(kbps, Relaxed),
            Message::Primary(i) => {
                let i = usize::from(i);
                match self.legs.get(i) {
                    Some(l) if l.state() == LegState::InSync => {
                        self.primary.store(i as u32, Relaxed);
                        self.primary_explicit.store(true, Relaxed);
                        pr_info!("{}: primary leg is now {}\n", self.dev_name(), i);
                    }
                    _ => {
                        pr_warn!("{}: primary {}: leg is not in sync\n", self.dev_name(), i);
                        return Err(EINVAL);
                    }
                }
            }
            Message::Fail(i) => {
                let i = usize::from(i);
                if self.in_sync_legs().all(|(leg, _)| leg == i) {
                    pr_warn!(
                        "{}: fail {}: refused, it would leave no in-sync leg\n",
                        self.dev_name(),
                        i
                    );
                    return Err(EBUSY);
                }
                if !self.detach(i, LegState::Inactive) {
                    pr_warn!("{}: fail {}: leg is not in sync\n", self.dev_name(), i);
                    return Err(EINVAL);
                }
                pr_warn!(
                    "{}: leg {} failed by operator: detached (Inactive)\n",
                    self.dev_name(),
                    i
                );
            }
            Message::Split(_) | Message::Rejoin(_) | Message::Resync => {
                pr_warn!(
                    "{}: message '{}' is not supported yet\n",
                    self.dev_name(),
                    msg.verb()
                );
                return Err(EOPNOTSUPP);
            }
        }
        Ok(())
    }
}

/// Largest number of table words we accept: 1 + 4 legs + 1 + 2 logs + 1 + 9 option words.
const MAX_TABLE_WORDS: usize = 32;

#[vtable]
impl Target for RtMirror {
    type PerIo = MirrorIo;

    fn ctr(setup: &mut TargetSetup<'_>, args: &Args<'_>) -> Result<impl PinInit<Self, Error>> {
        if args.len() > MAX_TABLE_WORDS {
            return Err(reject(
                setup,
                c"too many arguments",
                format_args!(
                    "{} arguments, at most {} expected",
                    args.len(),
                    MAX_TABLE_WORDS
                ),
            ));
        }
        let mut words: [&str; MAX_TABLE_WORDS] = [""; MAX_TABLE_WORDS];
        for (w, a) in words.iter_mut().zip(args.iter()) {
            *w = match a.to_str() {
                Ok(s) => s,
                Err(_) => {
                    return Err(reject(
                        setup,
                        c"argument is not valid UTF-8",
                        format_args!("an argument is not valid UTF-8"),
                    ))
                }
            };
        }
        let cfg: TableConfig<'_> = match table::parse_table(&words[..args.len()]) {
            Ok(c) => c,
            Err(e) => return Err(reject(setup, e.reason(), format_args!("{}", e))),
        };

        let len = setup.len();
        let mut legs = KVec::with_capacity(cfg.leg_slots().len(), GFP_KERNEL)?;
        let mut devts: KVec<u32> = KVec::with_capacity(MAX_LEGS + MAX_LOGS, GFP_KERNEL)?;
        for (i, slot) in cfg.leg_slots().iter().enumerate() {
            let dev = match slot {
                None => None,
                Some(path) => {
                    let dev = open_device(setup, &mut devts, "leg", i, path)?;
                    if dev.nr_sectors() < len {
                        return Err(reject(
                            setup,
                            c"leg device is smaller than the target",
                            format_args!(
                                "leg {} '{}' has {} sectors, the target needs {}",
                                i,
                                path,
                                dev.nr_sectors(),
                                len
                            ),
                        ));
                    }
                    Some(dev)
                }
            };
            let state = if dev.is_some() {
                LegState::InSync
            } else {
                LegState::Missing
            };
            legs.push(
                Leg {
                    dev,
                    state: Atomic::new(state_to_u32(state)),
                },
                GFP_KERNEL,
            )?;
        }
        let mut logs = KVec::with_capacity(cfg.log_devices().len(), GFP_KERNEL)?;
        for (i, path) in cfg.log_devices().iter().enumerate() {
            let dev = open_device(setup, &mut devts, "log", i, path)?;
            logs.push(dev, GFP_KERNEL)?;
        }

        let present = || legs.iter().filter_map(|l| l.dev.as_ref());
        setup.set_max_io_len(cfg.region_size.min(MAX_IO_SECTORS) as u32)?;
        setup.set_num_flush_bios(1);
        // Discards and write-zeroes are passed on only when every present leg supports them.
        if present().all(|d| d.max_discard_sectors() > 0) {
            setup.set_num_discard_bios(1);
        }
        if present().all(|d| d.max_write_zeroes_sectors() > 0) {
            setup.set_num_write_zeroes_bios(1);
        }

        let logical_block_size = present()
            .map(|d| d.logical_block_size())
            .max()
            .unwrap_or(512);
        let name = CString::try_from_fmt(fmt!("{}", setup.device_name()))?;
        let total_regions = len.div_ceil(cfg.region_size);
        pr_info!(
            "{}: {} legs ({} present), {} log devices, region size {} sectors, {} regions\n",
            name.to_str().unwrap_or("?"),
            cfg.leg_slots().len(),
            present().count(),
            logs.len(),
            cfg.region_size,
            total_regions
        );
        Ok(try_pin_init!(RtMirror {
            name,
            len,
            legs,
            logs,
            region_size: cfg.region_size,
            total_regions,
            io_timeout_ms: Atomic::new(cfg.io_timeout_ms),
            primary: Atomic::new(u32::from(cfg.primary)),
            primary_explicit: Atomic::new(cfg.primary_explicit),
            resync_kbps: Atomic::new(cfg.resync_kbps),
            nosync: cfg.nosync,
            logical_block_size,
            message_lock <- new_mutex!(()),
            bios <- BioSet::new(BIO_POOL_SIZE),
            event <- setup.event_source(),
        }))
    }

    fn map(&self, bio: MapBio<'_, Self>) -> Mapped {
        match bio.bio().op() {
            ReqOp::Read => match self.read_leg() {
                Some(dev) => {
                    let sector = bio.target_sector();
                    bio.remap(dev, sector)
                }
                None => bio.kill(),
            },
            ReqOp::Write | ReqOp::Flush | ReqOp::Discard | ReqOp::WriteZeroes => {
                self.map_to_all_legs(bio)
            }
            ReqOp::Other(_) => bio.kill(),
        }
    }

    fn status(&self, kind: StatusType, out: &mut StatusWriter<'_>) {
        // A full buffer truncates the line, as DMEMIT does; nothing else can fail here.
        let _ = match kind {
            StatusType::Info => {
                let legs = self.leg_states();
                let legs = legs.get(..self.legs.len()).unwrap_or(&[]);
                let logs = [LogState::Alive; MAX_LOGS];
                let health = health_of(legs);
                // Without the region log (next version) the legs are in sync exactly when
                // every leg is.
                let in_sync = if legs.iter().all(|s| *s == LegState::InSync) {
                    self.total_regions
                } else {
                    0
                };
                status::format_status(
                    &StatusInfo {
                        legs,
                        logs: logs.get(..self.logs.len()).unwrap_or(&[]),
                        in_sync_regions: in_sync,
                        total_regions: self.total_regions,
                        health,
                        sync_action: SyncAction::Idle,
                    },
                    out,
                )
            }
            StatusType::Table => self.format_table(out),
            StatusType::Ima => Ok(()),
        };
    }

    fn message(&self, args: &Args<'_>, _out: &mut StatusWriter<'_>) -> Result {
        let mut words: [&str; 4] = [""; 4];
        if args.len() > words.len() {
            pr_warn!("{}: message has too many words\n", self.dev_name());
            return Err(EINVAL);
        }
        for (w, a) in words.iter_mut().zip(args.iter()) {
            *w = a.to_str().map_err(|_| EINVAL)?;
        }
        match message::parse_message(&words[..args.len()], self.legs.len() as u8) {
            Ok(m) => self.handle_message(m),
            Err(e) => {
                pr_warn!(
                    "{}: bad message: {}\n",
                    self.dev_name(),
                    format_args!("{}", e)
                );
                Err(EINVAL)
            }
        }
    }

    fn iterate_devices(&self, visitor: &mut DeviceVisitor<'_>) -> Result<(), IterateStop> {
        for dev in self.legs.iter().filter_map(|l| l.dev.as_ref()) {
            visitor.visit(dev, 0, self.len)?;
        }
        Ok(())
    }
}

impl RtMirror {
    fn format_table(&self, out: &mut StatusWriter<'_>) -> core::fmt::Result {
        let mut cfg = TableConfig {
            nr_legs: self.legs.len() as u8,
            legs: [None; MAX_LEGS],
            nr_logs: self.logs.len() as u8,
            logs: [""; MAX_LOGS],
            region_size: self.region_size,
            io_timeout_ms: self.io_timeout_ms.load(Relaxed),
            primary: self.primary.load(Relaxed) as u8,
            primary_explicit: self.primary_explicit.load(Relaxed),
            resync_kbps: self.resync_kbps.load(Relaxed),
            nosync: self.nosync,
        };
        for (slot, leg) in cfg.legs.iter_mut().zip(self.legs.iter()) {
            *slot = leg.dev.as_ref().map(|d| d.name().to_str().unwrap_or("?"));
        }
        for (slot, log) in cfg.logs.iter_mut().zip(self.logs.iter()) {
            *slot = log.name().to_str().unwrap_or("?");
        }
        table::format_table(&cfg, out)
    }
}

/// Opens leg or log device number `i` of the table; rejects the table if it cannot be opened
/// or is a device already used (under another name, too), whose numbers are in `devts`.
fn open_device(
    setup: &mut TargetSetup<'_>,
    devts: &mut KVec<u32>,
    kind: &str,
    i: usize,
    path: &str,
) -> Result<DmDev> {
    let cpath = CString::try_from_fmt(fmt!("{}", path))?;
    let dev = match setup.get_device(&cpath) {
        Ok(d) => d,
        Err(e) => {
            let _ = reject(
                setup,
                c"cannot open device",
                format_args!(
                    "{} {} '{}': cannot open (error {})",
                    kind,
                    i,
                    path,
                    e.to_errno()
                ),
            );
            return Err(e);
        }
    };
    if devts.contains(&dev.devt()) {
        return Err(reject(
            setup,
            c"device given twice",
            format_args!(
                "{} {} '{}' is a device already used in this table",
                kind, i, path
            ),
        ));
    }
    devts.push(dev.devt(), GFP_KERNEL)?;
    Ok(dev)
}
