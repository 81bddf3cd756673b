// SPDX-License-Identifier: GPL-2.0

//! Device-mapper targets.
//!
//! C header: [`include/linux/device-mapper.h`](srctree/include/linux/device-mapper.h)
//!
//! A target implements [`Target`] and is registered with [`Registration`]. Device-mapper calls
//! the constructor once per table line; the value it builds becomes the target's private data
//! and receives every later callback by shared reference, until the destructor drops it.
//!
//! Bios that a target finishes itself ([`MapBio::start`]) are tracked by [`IoRef`]s: the bio is
//! completed when the last reference is dropped, with the status its [`IoResult`] state
//! computes. This lets a target fan a bio out to several devices and complete it once.

use crate::{
    bindings,
    block::bio::{result_to_status, Bio, ReqOp},
    error::{from_result, to_result, Error, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int, c_uint, c_void},
    fs::File,
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        atomic::{Atomic, Full, Relaxed},
    },
    types::Opaque,
    ThisModule,
};
use core::{fmt, marker::PhantomData, mem, ptr};

/// Kind of status requested from a target (`status_type_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusType {
    /// Run-time information (`dmsetup status`).
    Info,
    /// The table line that re-creates the target (`dmsetup table`).
    Table,
    /// Integrity measurement (IMA) data.
    Ima,
}

/// Callbacks of a device-mapper target.
#[vtable]
pub trait Target: Sized + Send + Sync {
    /// State kept beside each bio that the target completes itself (see [`MapBio::start`]).
    type PerIo: IoResult;

    /// Builds the target from the arguments of its table line.
    ///
    /// On error, set a reason with [`TargetSetup::set_error`]; device-mapper logs it.
    fn ctr(setup: &mut TargetSetup<'_>, args: &Args<'_>) -> Result<impl PinInit<Self, Error>>;

    /// Maps one bio: remap it to a device, finish it later, kill or requeue it.
    fn map(&self, bio: MapBio<'_, Self>) -> Mapped;

    /// Called for every completed bio that was remapped or started by this target.
    fn end_io(&self, _bio: &Bio, _status: &mut bindings::blk_status_t) -> EndIo {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes status of the given kind.
    fn status(&self, _kind: StatusType, _out: &mut StatusWriter<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message`; text written to `out` is returned to user space.
    fn message(&self, _args: &Args<'_>, _out: &mut StatusWriter<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the target's table becomes live (after the previous table, if any, was
    /// suspended); an error keeps the device from resuming.
    fn preresume(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device is suspended, while I/O may still arrive.
    fn presuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called once the device is suspended and in-flight I/O has completed.
    fn postsuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when the device resumes.
    fn resume(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports every underlying device; stop early by returning the visitor's error.
    fn iterate_devices(&self, _visitor: &mut DeviceVisitor<'_>) -> Result<(), IterateStop> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Adjusts the queue limits device-mapper computed from the underlying devices.
    fn io_hints(&self, _limits: &mut QueueLimits) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Final status of a bio the target finished itself.
pub trait IoResult: Send + Sync {
    /// Called once, when the last [`IoRef`] to the bio is dropped.
    fn result(&self) -> Result;
}

/// A registered target type.
///
/// # Invariants
///
/// `inner` is registered with `dm_register_target` and unregistered exactly once on drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Target> {
    #[pin]
    inner: Opaque<bindings::target_type>,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds the registered `target_type`, which device-mapper
// accesses under its own locking; unregistering from another thread is allowed.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: `&Registration` exposes nothing mutable.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Registers target type `name` with `version`, owned by `module`.
    pub fn new(
        name: &'static CStr,
        version: [u32; 3],
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::target_type| {
                let mut tt: bindings::target_type = pin_init::zeroed();
                tt.name = name.as_char_ptr();
                tt.module = module.as_ptr();
                tt.version = version;
                tt.ctr = Some(ctr::<T>);
                tt.dtr = Some(dtr::<T>);
                tt.map = Some(map::<T>);
                tt.end_io = if T::HAS_END_IO { Some(end_io::<T>) } else { None };
                tt.status = if T::HAS_STATUS { Some(status::<T>) } else { None };
                tt.message = if T::HAS_MESSAGE { Some(message::<T>) } else { None };
                tt.presuspend = if T::HAS_PRESUSPEND { Some(presuspend::<T>) } else { None };
                tt.postsuspend = if T::HAS_POSTSUSPEND { Some(postsuspend::<T>) } else { None };
                tt.resume = if T::HAS_RESUME { Some(resume::<T>) } else { None };
                tt.preresume = if T::HAS_PRERESUME {
                    Some(preresume::<T>)
                } else {
                    None
                };
                tt.iterate_devices = if T::HAS_ITERATE_DEVICES {
                    Some(iterate_devices::<T>)
                } else {
                    None
                };
                tt.io_hints = if T::HAS_IO_HINTS { Some(io_hints::<T>) } else { None };
                // SAFETY: `slot` is valid for writes and pinned: it stays registered until
                // drop unregisters it, and never moves.
                unsafe { slot.write(tt) };
                // SAFETY: `slot` holds a fully initialised target type.
                to_result(unsafe { bindings::dm_register_target(slot) })
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: Target> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered in `new` (type invariant). Device-mapper holds a module reference
        // for every live target, so none of ours exist when the module goes away.
        unsafe { bindings::dm_unregister_target(self.inner.get()) };
    }
}

/// Arguments of a table line or message.
pub struct Args<'a> {
    argv: &'a [*mut c_char],
}

impl<'a> Args<'a> {
    /// # Safety
    ///
    /// `argv` must point to `argc` valid NUL-terminated strings that live for `'a`.
    unsafe fn from_raw(argc: c_uint, argv: *mut *mut c_char) -> Self {
        let argv = if argc == 0 || argv.is_null() {
            &[][..]
        } else {
            // SAFETY: The caller guarantees `argc` valid entries.
            unsafe { core::slice::from_raw_parts(argv, argc as usize) }
        };
        Self { argv }
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.argv.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }

    /// Returns argument `i`.
    pub fn get(&self, i: usize) -> Option<&'a CStr> {
        let p = *self.argv.get(i)?;
        // SAFETY: Each entry is a valid NUL-terminated string living for `'a`.
        Some(unsafe { CStr::from_char_ptr(p) })
    }

    /// Iterates over the arguments.
    pub fn iter(&self) -> impl Iterator<Item = &'a CStr> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

/// The target being constructed, as seen by [`Target::ctr`].
pub struct TargetSetup<'a> {
    ti: *mut bindings::dm_target,
    _p: PhantomData<&'a mut bindings::dm_target>,
}

impl TargetSetup<'_> {
    /// First sector of the target in the mapped device.
    pub fn begin(&self) -> u64 {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti).begin }
    }

    /// Length of the target in sectors.
    pub fn len(&self) -> u64 {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti).len }
    }

    /// Whether the target has no sectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the reason device-mapper reports when the constructor fails.
    pub fn set_error(&mut self, reason: &'static CStr) {
        // SAFETY: `ti` is valid; `error` is only read by device-mapper, and `reason` is static.
        unsafe { (*self.ti).error = reason.as_char_ptr().cast_mut() };
    }

    /// Opens `path` (a device path or `major:minor`) with the table's mode.
    ///
    /// # Safety
    ///
    /// The returned device must be dropped before the target is destroyed: keep it in the
    /// target's private data (dropped by the destructor), or drop it in the constructor.
    pub unsafe fn get_device(&mut self, path: &CStr) -> Result<DmDev> {
        let mut dev: *mut bindings::dm_dev = ptr::null_mut();
        // SAFETY: `ti` is valid during the constructor; `path` is a valid C string.
        let mode = unsafe { bindings::dm_table_get_mode((*self.ti).table) };
        // SAFETY: As above; `dev` is a valid out pointer.
        to_result(unsafe { bindings::dm_get_device(self.ti, path.as_char_ptr(), mode, &mut dev) })?;
        Ok(DmDev { ti: self.ti, dev })
    }

    /// Splits bios so that none crosses a multiple of `sectors` (relative to the target).
    pub fn set_max_io_len(&mut self, sectors: u32) -> Result {
        // SAFETY: `ti` is valid during the constructor.
        to_result(unsafe { bindings::dm_set_target_max_io_len(self.ti, sectors.into()) })
    }

    /// Number of empty flush bios the target receives per flush (0 to pass none).
    pub fn set_num_flush_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti).num_flush_bios = n };
    }

    /// Number of discard bios the target receives per discard (0: discards unsupported).
    pub fn set_num_discard_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti).num_discard_bios = n };
    }

    /// Number of write-zeroes bios the target receives (0: unsupported).
    pub fn set_num_write_zeroes_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti).num_write_zeroes_bios = n };
    }

    /// Name of the mapped device (e.g. `vol0`), for log messages.
    pub fn device_name(&self) -> &CStr {
        device_name(self.ti)
    }

    /// Returns a handle that raises events on this target's table.
    ///
    /// # Safety
    ///
    /// The handle must be dropped before the target is destroyed: keep it in the target's
    /// private data, or drop it in the constructor.
    pub unsafe fn event_source(&self) -> impl PinInit<TableEvent> {
        TableEvent::new(self.ti)
    }
}

fn device_name<'a>(ti: *mut bindings::dm_target) -> &'a CStr {
    // SAFETY: `ti` and its table are valid; the mapped device outlives its tables, and
    // `dm_device_name` returns a NUL-terminated name stored in it.
    unsafe {
        CStr::from_char_ptr(bindings::dm_device_name(bindings::dm_table_get_md(
            (*ti).table,
        )))
    }
}

/// An underlying device opened by a target (`struct dm_dev`), closed on drop.
///
/// # Invariants
///
/// `dev` was returned by `dm_get_device` for `ti`, which outlives this handle (the caller of the
/// unsafe [`TargetSetup::get_device`] drops it before the target is destroyed).
pub struct DmDev {
    ti: *mut bindings::dm_target,
    dev: *mut bindings::dm_dev,
}

// SAFETY: `dm_put_device` may be called from any thread in process context, and the accessors
// only read immutable fields of an open device.
unsafe impl Send for DmDev {}
// SAFETY: See above.
unsafe impl Sync for DmDev {}

impl DmDev {
    /// Device name as device-mapper reports it in tables (`major:minor`).
    pub fn name(&self) -> &CStr {
        // SAFETY: `dev` is valid (type invariant); `name` is NUL-terminated.
        unsafe { CStr::from_char_ptr((*self.dev).name.as_ptr()) }
    }

    /// Returns the block device.
    pub fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: `dev` is valid (type invariant).
        unsafe { (*self.dev).bdev }
    }

    /// A reference to the device's open file. It keeps the block device open (no longer
    /// claimed) after the table released it, e.g. while bios given up on the device are
    /// still queued for it or in flight.
    pub fn file(&self) -> ARef<File> {
        // SAFETY: `dev` is valid (type invariant) and open, so `bdev_file` is a file whose
        // reference the table holds until `dm_put_device`; we take one of our own.
        let file = unsafe { File::from_raw_file((*self.dev).bdev_file) };
        ARef::from(file)
    }

    /// Device number.
    pub fn devt(&self) -> u32 {
        // SAFETY: An open device's `bdev` is valid.
        unsafe { (*self.bdev()).bd_dev }
    }

    /// Size in 512-byte sectors.
    pub fn nr_sectors(&self) -> u64 {
        // SAFETY: An open device's `bdev` is valid.
        unsafe { bindings::bdev_nr_sectors(self.bdev()) }
    }

    /// Logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: An open device's `bdev` is valid.
        unsafe { bindings::bdev_logical_block_size(self.bdev()) }
    }

    /// Largest discard in sectors (0: discard unsupported).
    pub fn max_discard_sectors(&self) -> u32 {
        // SAFETY: An open device's `bdev` is valid.
        unsafe { bindings::bdev_max_discard_sectors(self.bdev()) }
    }

    /// Largest write-zeroes in sectors (0: unsupported).
    pub fn max_write_zeroes_sectors(&self) -> u32 {
        // SAFETY: An open device's `bdev` is valid.
        unsafe { bindings::bdev_write_zeroes_sectors(self.bdev()) }
    }
}

impl Drop for DmDev {
    fn drop(&mut self) {
        // SAFETY: `dev` came from `dm_get_device(ti, ..)` and `ti` is still valid (invariant).
        unsafe { bindings::dm_put_device(self.ti, self.dev) };
    }
}

/// Result of [`Target::map`], built only by [`MapBio`]'s methods.
pub struct Mapped(c_int);

/// What to do with a completed bio, returned by [`Target::end_io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndIo {
    /// Complete the bio with the (possibly changed) status.
    Done,
    /// Resubmit the bio.
    Requeue,
}

/// A bio handed to [`Target::map`].
pub struct MapBio<'a, T: Target> {
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
    _p: PhantomData<(&'a bindings::bio, &'a T)>,
}

impl<'a, T: Target> MapBio<'a, T> {
    /// Returns the bio.
    pub fn bio(&self) -> &Bio {
        // SAFETY: The bio is valid while it is being mapped.
        unsafe { Bio::from_raw(self.bio) }
    }

    /// Sector relative to the start of the target (0 for bios without data, such as empty
    /// flushes, which carry no position).
    pub fn target_sector(&self) -> u64 {
        if self.bio().size() == 0 {
            return 0;
        }
        // SAFETY: `ti` is valid while mapping.
        let begin = unsafe { (*self.ti).begin };
        // Device-mapper only maps bios inside the target, so this does not saturate.
        self.bio().sector().saturating_sub(begin)
    }

    /// Tells device-mapper to keep only the first `sectors` sectors in this bio; the rest comes
    /// back in another call to `map`. Reads and writes that are not atomic are split, and
    /// discards and write-zeroes, which device-mapper sends as one bio per target only (the
    /// target sets one discard / write-zeroes bio, see [`TargetSetup::set_num_discard_bios`]).
    ///
    /// Returns whether the bio now ends after `sectors` sectors (also when it was no longer).
    pub fn accept_partial(&mut self, sectors: u32) -> bool {
        let bio = self.bio();
        let splittable = match bio.op() {
            ReqOp::Read | ReqOp::Write => !bio.is_preflush() && !bio.is_atomic(),
            ReqOp::Discard | ReqOp::WriteZeroes => self.single_abnormal_bio(),
            _ => false,
        };
        if splittable && sectors > 0 && sectors < bio.sectors() {
            // SAFETY: Called from `map` with 0 < sectors < bio sectors on a non-flush,
            // non-atomic bio that is not one of several duplicates, as
            // `dm_accept_partial_bio` requires.
            unsafe { bindings::dm_accept_partial_bio(self.bio, sectors) };
            return true;
        }
        sectors >= bio.sectors()
    }

    /// Whether device-mapper sends this discard or write-zeroes as a single bio (not as
    /// duplicates, which cannot be split).
    fn single_abnormal_bio(&self) -> bool {
        // SAFETY: `ti` is valid while mapping.
        let (discard, zeroes) = unsafe {
            (
                (*self.ti).num_discard_bios,
                (*self.ti).num_write_zeroes_bios,
            )
        };
        match self.bio().op() {
            ReqOp::Discard => discard == 1,
            ReqOp::WriteZeroes => zeroes == 1,
            _ => false,
        }
    }

    /// Sends the bio to `dev` at `sector`; device-mapper submits it.
    pub fn remap(self, dev: &DmDev, sector: u64) -> Mapped {
        // SAFETY: The bio is ours to change while mapping; `dev` is open.
        unsafe {
            bindings::bio_set_dev(self.bio, dev.bdev());
            (*self.bio).bi_iter.bi_sector = sector;
        }
        Mapped(bindings::DM_MAPIO_REMAPPED as c_int)
    }

    /// Fails the bio with an I/O error.
    pub fn kill(self) -> Mapped {
        Mapped(bindings::DM_MAPIO_KILL as c_int)
    }

    /// Asks device-mapper to map the bio again later.
    pub fn requeue(self) -> Mapped {
        Mapped(bindings::DM_MAPIO_REQUEUE as c_int)
    }

    /// Takes over the bio: it completes when the last [`IoRef`] is dropped, with the status
    /// computed by `state`.
    pub fn start(self, state: T::PerIo) -> (IoRef<T>, Mapped) {
        let st = per_io::<T>(self.bio);
        // SAFETY: Device-mapper reserved `per_io_data_size` (set in `ctr`) bytes of per-bio
        // data for this bio, suitably aligned; it is uninitialised until now.
        unsafe {
            st.write(IoState {
                refs: Atomic::new(1),
                ti: self.ti,
                state,
            })
        };
        (
            IoRef {
                ti: self.ti,
                bio: self.bio,
                _t: PhantomData,
            },
            Mapped(bindings::DM_MAPIO_SUBMITTED as c_int),
        )
    }
}

struct IoState<S> {
    refs: Atomic<u32>,
    /// The target that took the bio over, so a bare bio pointer ([`IoList`]) leads back to it.
    ti: *mut bindings::dm_target,
    state: S,
}

const fn per_io_size<T: Target>() -> usize {
    // Device-mapper places per-bio data right in front of its `struct dm_target_io`, aligned
    // like a bio: the state must not need more, and its size is rounded to that alignment.
    assert!(mem::align_of::<IoState<T::PerIo>>() <= mem::align_of::<bindings::bio>());
    mem::size_of::<IoState<T::PerIo>>().next_multiple_of(mem::align_of::<bindings::bio>())
}

fn per_io<T: Target>(bio: *mut bindings::bio) -> *mut IoState<T::PerIo> {
    // SAFETY: `bio` is a device-mapper clone of a target with `per_io_data_size` set to
    // `per_io_size::<T>()`.
    unsafe { bindings::dm_per_bio_data(bio, per_io_size::<T>()).cast() }
}

/// A counted reference to a bio the target took over with [`MapBio::start`].
///
/// # Invariants
///
/// The bio's per-io data holds an initialised `IoState<T::PerIo>` whose `refs` counts the live
/// `IoRef`s; the bio and its target stay valid while any exists (device-mapper does not
/// destroy a target with bios in flight).
pub struct IoRef<T: Target> {
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
    _t: PhantomData<T>,
}

// SAFETY: The shared state is `Sync` (`PerIo: Sync`, atomic count) and completing a bio may
// happen on any CPU.
unsafe impl<T: Target> Send for IoRef<T> {}
// SAFETY: `&IoRef` only gives shared access to `Sync` data.
unsafe impl<T: Target> Sync for IoRef<T> {}

impl<T: Target> IoRef<T> {
    /// Returns the bio.
    pub fn bio(&self) -> &Bio {
        // SAFETY: Valid while a reference exists (type invariant).
        unsafe { Bio::from_raw(self.bio) }
    }

    /// Returns the per-bio state.
    pub fn state(&self) -> &T::PerIo {
        // SAFETY: Initialised while a reference exists (type invariant).
        unsafe { &(*per_io::<T>(self.bio)).state }
    }

    /// Returns the target.
    pub fn target(&self) -> &T {
        // SAFETY: The target outlives its in-flight bios (type invariant).
        unsafe { target_of::<T>(self.ti) }
    }

    /// Returns the target with a lifetime not tied to this reference, so that the reference
    /// can be handed on (queued, dropped) while the target is still used.
    ///
    /// # Safety
    ///
    /// The caller must stop using the returned reference before the target can be destroyed:
    /// device-mapper destroys a target only once all its bios completed, so the reference may
    /// be used until this bio may have completed, that is until the last `IoRef` is dropped or
    /// handed to another thread (e.g. released by the lock protecting the list it was put on).
    pub unsafe fn target_unbound<'a>(&self) -> &'a T {
        // SAFETY: The caller bounds the use of the reference as described above.
        unsafe { target_of::<T>(self.ti) }
    }
}

impl<T: Target> Clone for IoRef<T> {
    fn clone(&self) -> Self {
        // SAFETY: The state is initialised (type invariant).
        unsafe { (*per_io::<T>(self.bio)).refs.fetch_add(1, Relaxed) };
        Self {
            ti: self.ti,
            bio: self.bio,
            _t: PhantomData,
        }
    }
}

impl<T: Target> Drop for IoRef<T> {
    fn drop(&mut self) {
        let st = per_io::<T>(self.bio);
        // SAFETY: The state is initialised (type invariant).
        if unsafe { (*st).refs.fetch_sub(1, Full) } != 1 {
            return;
        }
        // SAFETY: We held the last reference: nobody else accesses the state.
        let status = result_to_status(unsafe { (*st).state.result() });
        // SAFETY: As above; the state is dropped once, before the bio completes.
        unsafe { ptr::drop_in_place(st) };
        // SAFETY: The target took the bio over in `map`; this completes it exactly once.
        unsafe {
            (*self.bio).bi_status = status;
            bindings::bio_endio(self.bio);
        }
    }
}

/// A list of bios the target took over, held while they wait (for a log write, a resync),
/// linked through the bios themselves (`bi_next`), so keeping one needs no memory.
pub struct IoList<T: Target> {
    head: *mut bindings::bio,
    tail: *mut bindings::bio,
    _t: PhantomData<*const T>,
}

// SAFETY: The list owns `IoRef`s, which are `Send`.
unsafe impl<T: Target> Send for IoList<T> {}

impl<T: Target> IoList<T> {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            _t: PhantomData,
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends `io`. The list keeps its reference until popped.
    pub fn push(&mut self, io: IoRef<T>) {
        let bio = io.bio;
        mem::forget(io);
        // SAFETY: The bio was taken over by the target (an `IoRef` exists), so device-mapper
        // and the block layer leave `bi_next` alone until we complete it; we hold the
        // reference, so the bio stays valid while listed.
        unsafe { (*bio).bi_next = ptr::null_mut() };
        if self.tail.is_null() {
            self.head = bio;
        } else {
            // SAFETY: `tail` is a listed bio (see above).
            unsafe { (*self.tail).bi_next = bio };
        }
        self.tail = bio;
    }

    /// Removes the first entry.
    pub fn pop(&mut self) -> Option<IoRef<T>> {
        if self.head.is_null() {
            return None;
        }
        let bio = self.head;
        // SAFETY: `head` is a listed bio.
        unsafe {
            self.head = (*bio).bi_next;
            (*bio).bi_next = ptr::null_mut();
        }
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        // SAFETY: A listed bio was started by `T`'s `map` (only `IoRef<T>`s are pushed), so its
        // per-io data holds an initialised `IoState`; the list's reference keeps it so.
        let ti = unsafe { (*per_io::<T>(bio)).ti };
        // The list's reference becomes the returned one.
        Some(IoRef {
            ti,
            bio,
            _t: PhantomData,
        })
    }

    /// Moves every entry of `other` to the end of this list.
    pub fn append(&mut self, other: &mut Self) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: `tail` is a listed bio.
            unsafe { (*self.tail).bi_next = other.head };
        }
        self.tail = other.tail;
        other.head = ptr::null_mut();
        other.tail = ptr::null_mut();
    }
}

impl<T: Target> Default for IoList<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Target> Drop for IoList<T> {
    fn drop(&mut self) {
        // Entries must be popped (and so completed) by their owner; a list that still holds
        // bios at drop would leave them incomplete forever. Warn loudly instead of hanging.
        if !self.head.is_null() {
            crate::pr_err!("device-mapper: dropping a list of pending bios\n");
        }
    }
}

/// Returns the target private data.
///
/// # Safety
///
/// `ti` must be a live target of type `T` whose constructor succeeded.
unsafe fn target_of<'a, T: Target>(ti: *mut bindings::dm_target) -> &'a T {
    // SAFETY: `ctr` stored a pinned `KBox<T>` in `private`, freed only by `dtr`.
    unsafe { &*(*ti).private.cast::<T>() }
}

/// Writes status or message replies into device-mapper's buffer, truncating like `DMEMIT`.
pub struct StatusWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl StatusWriter<'_> {
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

impl fmt::Write for StatusWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep room for the terminating NUL.
        let room = self.buf.len().saturating_sub(self.pos + 1);
        let n = s.len().min(room);
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        if let Some(b) = self.buf.get_mut(self.pos) {
            *b = 0;
        }
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Passed to [`Target::iterate_devices`].
pub struct DeviceVisitor<'a> {
    ti: *mut bindings::dm_target,
    f: bindings::iterate_devices_callout_fn,
    data: *mut c_void,
    _p: PhantomData<&'a ()>,
}

/// Non-zero result of a device visit, passed back to device-mapper.
pub struct IterateStop(c_int);

impl DeviceVisitor<'_> {
    /// Reports `len` sectors of `dev` starting at `start`.
    pub fn visit(&mut self, dev: &DmDev, start: u64, len: u64) -> Result<(), IterateStop> {
        let Some(f) = self.f else { return Ok(()) };
        // SAFETY: Device-mapper passed `f` and `data` for this target; `dev` is open.
        let r = unsafe { f(self.ti, dev.dev, start, len, self.data) };
        if r == 0 {
            Ok(())
        } else {
            Err(IterateStop(r))
        }
    }
}

/// Queue limits of the mapped device (`struct queue_limits`), adjusted in [`Target::io_hints`].
#[repr(transparent)]
pub struct QueueLimits(Opaque<bindings::queue_limits>);

impl QueueLimits {
    /// Logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: The limits are valid during `io_hints`.
        unsafe { (*self.0.get()).logical_block_size }
    }

    /// Sets the preferred minimum I/O size in bytes.
    pub fn set_io_min(&mut self, bytes: u32) {
        // SAFETY: The limits are valid and ours to change during `io_hints`.
        unsafe { (*self.0.get()).io_min = bytes };
    }

    /// Sets the optimal I/O size in bytes.
    pub fn set_io_opt(&mut self, bytes: u32) {
        // SAFETY: The limits are valid and ours to change during `io_hints`.
        unsafe { (*self.0.get()).io_opt = bytes };
    }
}

/// Raises device-mapper events (`dmsetup wait`, uevents to dmeventd) on a target's table from
/// any context: the event itself is delivered from a work item, since `dm_table_event` sleeps.
///
/// # Invariants
///
/// `work` is initialised with [`TableEvent::run`]; `table` is the table of the target that
/// owns this value, which outlives it (the caller of the unsafe [`TargetSetup::event_source`]
/// drops it before the target); drop waits for a queued event to finish.
#[pin_data(PinnedDrop)]
pub struct TableEvent {
    #[pin]
    work: Opaque<bindings::work_struct>,
    table: *mut bindings::dm_table,
}

// SAFETY: Queueing work and raising table events are allowed from any thread.
unsafe impl Send for TableEvent {}
// SAFETY: See above.
unsafe impl Sync for TableEvent {}

impl TableEvent {
    fn new(ti: *mut bindings::dm_target) -> impl PinInit<Self> {
        // SAFETY: `ti` is valid during the constructor.
        let table = unsafe { (*ti).table };
        // The caller of `event_source` drops this value before the target (invariant).
        pin_init!(Self {
            work <- Opaque::ffi_init(|slot: *mut bindings::work_struct| {
                // SAFETY: `slot` is valid for writes; `run` only uses the containing `Self`.
                unsafe {
                    bindings::init_work_with_key(
                        slot,
                        Some(Self::run),
                        false,
                        c"dm_table_event".as_char_ptr(),
                        crate::static_lock_class!().as_ptr(),
                    )
                }
            }),
            table,
        })
    }

    /// Raises an event; callable from any context, coalesced while one is pending.
    pub fn raise(&self) {
        // SAFETY: `work` is initialised (invariant) and pinned; `system_dfl_wq` always exists.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_dfl_wq,
                self.work.get(),
            )
        };
    }

    /// # Safety
    ///
    /// Called by the workqueue for the `work` field of a live `TableEvent`.
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `work` field of a live `TableEvent` (drop cancels it first).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(work), Self, work) };
        // SAFETY: The table outlives its target and thus this value (invariant).
        unsafe { bindings::dm_table_event(this.table) };
    }
}

#[pinned_drop]
impl PinnedDrop for TableEvent {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `work` is initialised; after this it is neither queued nor running.
        unsafe { bindings::cancel_work_sync(self.work.get()) };
    }
}

/// # Safety
///
/// Called by device-mapper with a target under construction and `argc` valid argument strings.
unsafe extern "C" fn ctr<T: Target>(
    ti: *mut bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
) -> c_int {
    from_result(|| {
        // SAFETY: Device-mapper passes `argc` valid strings that live during the call.
        let args = unsafe { Args::from_raw(argc, argv) };
        let mut setup = TargetSetup {
            ti,
            _p: PhantomData,
        };
        let init = T::ctr(&mut setup, &args)?;
        let target = KBox::pin_init(init, GFP_KERNEL)?;
        // SAFETY: `ti` is valid; the private pointer is turned back into the box in `dtr` and
        // the value is never moved out of it.
        unsafe {
            (*ti).per_io_data_size = per_io_size::<T>() as c_uint;
            (*ti).private = KBox::into_raw(Pin::into_inner_unchecked(target)).cast();
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called by device-mapper once, for a target whose constructor succeeded, with no I/O in flight.
unsafe extern "C" fn dtr<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: `private` holds the box from `ctr`; device-mapper calls `dtr` once, with no I/O
    // in flight and no other callback running.
    drop(unsafe { KBox::from_raw((*ti).private.cast::<T>()) });
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T` and a bio to map.
unsafe extern "C" fn map<T: Target>(
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
) -> c_int {
    // SAFETY: `ti` is a live target of type `T`.
    let t = unsafe { target_of::<T>(ti) };
    t.map(MapBio {
        ti,
        bio,
        _p: PhantomData,
    })
    .0
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`, a completed bio and its status.
unsafe extern "C" fn end_io<T: Target>(
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
    error: *mut bindings::blk_status_t,
) -> c_int {
    // SAFETY: `ti` is live; `bio` and `error` are valid during the call.
    let (t, bio, error) = unsafe { (target_of::<T>(ti), Bio::from_raw(bio), &mut *error) };
    match t.end_io(bio, error) {
        EndIo::Done => bindings::DM_ENDIO_DONE as c_int,
        EndIo::Requeue => bindings::DM_ENDIO_REQUEUE as c_int,
    }
}

/// # Safety
///
/// `result` must be valid for `maxlen` bytes of writes.
unsafe fn writer<'a>(result: *mut c_char, maxlen: c_uint) -> StatusWriter<'a> {
    let buf = if result.is_null() || maxlen == 0 {
        &mut [][..]
    } else {
        // SAFETY: The caller guarantees `maxlen` writable bytes.
        unsafe { core::slice::from_raw_parts_mut(result.cast::<u8>(), maxlen as usize) }
    };
    if let Some(b) = buf.first_mut() {
        *b = 0;
    }
    StatusWriter { buf, pos: 0 }
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T` and a buffer of `maxlen` bytes.
unsafe extern "C" fn status<T: Target>(
    ti: *mut bindings::dm_target,
    kind: bindings::status_type_t,
    _flags: c_uint,
    result: *mut c_char,
    maxlen: c_uint,
) {
    let kind = match kind {
        bindings::status_type_t_STATUSTYPE_INFO => StatusType::Info,
        bindings::status_type_t_STATUSTYPE_TABLE => StatusType::Table,
        _ => StatusType::Ima,
    };
    // SAFETY: `ti` is live; `result` has `maxlen` bytes.
    let (t, mut out) = unsafe { (target_of::<T>(ti), writer(result, maxlen)) };
    t.status(kind, &mut out);
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`, `argc` argument strings and a buffer of `maxlen` bytes.
unsafe extern "C" fn message<T: Target>(
    ti: *mut bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
    result: *mut c_char,
    maxlen: c_uint,
) -> c_int {
    // SAFETY: `ti` is live; `argv` has `argc` strings; `result` has `maxlen` bytes.
    let (t, args, mut out) = unsafe {
        (
            target_of::<T>(ti),
            Args::from_raw(argc, argv),
            writer(result, maxlen),
        )
    };
    match t.message(&args, &mut out) {
        // 1 tells device-mapper that `result` holds a reply for user space.
        Ok(()) => c_int::from(!out.is_empty()),
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`.
unsafe extern "C" fn presuspend<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: `ti` is live.
    unsafe { target_of::<T>(ti) }.presuspend();
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`.
unsafe extern "C" fn postsuspend<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: `ti` is live.
    unsafe { target_of::<T>(ti) }.postsuspend();
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`.
unsafe extern "C" fn preresume<T: Target>(ti: *mut bindings::dm_target) -> c_int {
    // SAFETY: `ti` is live.
    match unsafe { target_of::<T>(ti) }.preresume() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T`.
unsafe extern "C" fn resume<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: `ti` is live.
    unsafe { target_of::<T>(ti) }.resume();
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T` and a callout with its data.
unsafe extern "C" fn iterate_devices<T: Target>(
    ti: *mut bindings::dm_target,
    f: bindings::iterate_devices_callout_fn,
    data: *mut c_void,
) -> c_int {
    let mut visitor = DeviceVisitor {
        ti,
        f,
        data,
        _p: PhantomData,
    };
    // SAFETY: `ti` is live.
    match unsafe { target_of::<T>(ti) }.iterate_devices(&mut visitor) {
        Ok(()) => 0,
        Err(IterateStop(r)) => r,
    }
}

/// # Safety
///
/// Called by device-mapper with a live target of type `T` and the limits being computed.
unsafe extern "C" fn io_hints<T: Target>(
    ti: *mut bindings::dm_target,
    limits: *mut bindings::queue_limits,
) {
    // SAFETY: `ti` is live; `limits` is valid and exclusively ours during the call.
    let (t, limits) = unsafe { (target_of::<T>(ti), &mut *limits.cast::<QueueLimits>()) };
    t.io_hints(limits);
}
