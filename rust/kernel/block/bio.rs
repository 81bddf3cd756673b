// SPDX-License-Identifier: GPL-2.0

//! Block I/O requests (`struct bio`) and bio sets.
//!
//! C headers: [`include/linux/bio.h`](srctree/include/linux/bio.h),
//! [`include/linux/blk_types.h`](srctree/include/linux/blk_types.h)
//!
//! A [`Bio`] is a borrowed view of a bio that somebody else owns. A [`BioSet`] allocates bios
//! that this module owns ([`OwnedBio`]): they carry their own bvec table, so a bio that
//! completes late never reads or writes its originator's bvecs. The data pages themselves are
//! the originator's: the originator must stay incomplete until every such bio completed, unless
//! the bio holds references on them ([`PageRefs`]; taken only where references are counted,
//! which excludes slab memory).

use crate::{
    alloc::{flags::__GFP_ZERO, Flags},
    bindings,
    error::{to_result, Error},
    page::Page,
    prelude::*,
    types::Opaque,
};
use core::{marker::PhantomData, mem, pin::Pin, ptr};

/// Page size in bytes, as `u32` for bvec arithmetic.
const PAGE_SIZE: u32 = bindings::PAGE_SIZE as u32;

/// Maximum number of bvecs in one bio (`BIO_MAX_VECS`).
pub const BIO_MAX_VECS: u32 = bindings::BIO_MAX_VECS;

const fn req_flag(bit: u32) -> u32 {
    1u32 << bit
}

/// Operation and flags of a bio (`blk_opf_t`: a `REQ_OP_*` and `REQ_*` flags).
///
/// Built as `Opf::write().preflush().fua()`, or taken from an existing bio ([`Bio::opf`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opf(u32);

impl Opf {
    const OP_MASK: u32 = (1u32 << bindings::REQ_OP_BITS) - 1;
    const PREFLUSH: u32 = req_flag(bindings::req_flag_bits___REQ_PREFLUSH);
    const FUA: u32 = req_flag(bindings::req_flag_bits___REQ_FUA);
    const SYNC: u32 = req_flag(bindings::req_flag_bits___REQ_SYNC);
    const RAHEAD: u32 = req_flag(bindings::req_flag_bits___REQ_RAHEAD);
    const ATOMIC: u32 = req_flag(bindings::req_flag_bits___REQ_ATOMIC);
    /// `REQ_POLLED`: the submitter polls for completion. Bios this module builds never carry
    /// it, since nobody polls for them.
    const POLLED: u32 = req_flag(bindings::req_flag_bits___REQ_POLLED);

    /// A read (`REQ_OP_READ`).
    pub const fn read() -> Self {
        Self(bindings::req_op_REQ_OP_READ)
    }

    /// A write (`REQ_OP_WRITE`).
    pub const fn write() -> Self {
        Self(bindings::req_op_REQ_OP_WRITE)
    }

    /// Adds `REQ_PREFLUSH`: flush the volatile cache before the data.
    pub const fn preflush(self) -> Self {
        Self(self.0 | Self::PREFLUSH)
    }

    /// Adds `REQ_FUA`: the data is on stable storage at completion.
    pub const fn fua(self) -> Self {
        Self(self.0 | Self::FUA)
    }

    /// Adds `REQ_SYNC`: somebody waits for the request.
    pub const fn sync(self) -> Self {
        Self(self.0 | Self::SYNC)
    }

    /// The operation.
    pub fn op(self) -> ReqOp {
        match self.0 & Self::OP_MASK {
            bindings::req_op_REQ_OP_READ => ReqOp::Read,
            bindings::req_op_REQ_OP_WRITE => ReqOp::Write,
            bindings::req_op_REQ_OP_FLUSH => ReqOp::Flush,
            bindings::req_op_REQ_OP_DISCARD => ReqOp::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => ReqOp::WriteZeroes,
            other => ReqOp::Other(other),
        }
    }

    /// Whether `REQ_PREFLUSH` is set.
    pub fn is_preflush(self) -> bool {
        self.0 & Self::PREFLUSH != 0
    }

    /// Whether `REQ_FUA` is set.
    pub fn is_fua(self) -> bool {
        self.0 & Self::FUA != 0
    }

    /// Whether `REQ_RAHEAD` is set.
    pub fn is_readahead(self) -> bool {
        self.0 & Self::RAHEAD != 0
    }

    /// Whether `REQ_ATOMIC` is set.
    pub fn is_atomic(self) -> bool {
        self.0 & Self::ATOMIC != 0
    }

    /// The raw value for a bio this module allocates (without `REQ_POLLED`).
    fn for_new_bio(self) -> u32 {
        self.0 & !Self::POLLED
    }
}

/// Operation of a bio (`enum req_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqOp {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Flush the volatile write cache (empty flush).
    Flush,
    /// Discard sectors.
    Discard,
    /// Write zeroes.
    WriteZeroes,
    /// Anything else (secure erase, zone management, driver private).
    Other(u32),
}

/// Converts a `blk_status_t` into a kernel result.
pub fn status_to_result(status: bindings::blk_status_t) -> Result {
    if status == bindings::BLK_STS_OK as bindings::blk_status_t {
        return Ok(());
    }
    // SAFETY: `blk_status_to_errno` accepts any status value.
    Err(Error::from_errno(unsafe {
        bindings::blk_status_to_errno(status)
    }))
}

/// Converts a kernel result into a `blk_status_t`.
pub fn result_to_status(r: Result) -> bindings::blk_status_t {
    match r {
        Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
        Err(e) => e.to_blk_status(),
    }
}

/// A borrowed bio.
///
/// # Invariants
///
/// The wrapped `struct bio` is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct Bio(Opaque<bindings::bio>);

impl Bio {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid bio that stays valid and is not freed for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::bio) -> &'a Self {
        // SAFETY: `Bio` is a transparent wrapper and the caller guarantees validity for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::bio {
        self.0.get()
    }

    /// Returns the operation and flags (`bi_opf`).
    pub fn opf(&self) -> Opf {
        // SAFETY: By the type invariant the bio is valid.
        Opf(unsafe { (*self.as_raw()).bi_opf })
    }

    /// Returns the operation.
    pub fn op(&self) -> ReqOp {
        self.opf().op()
    }

    /// Whether the bio asks for a cache flush before its data (`REQ_PREFLUSH`).
    pub fn is_preflush(&self) -> bool {
        self.opf().is_preflush()
    }

    /// Whether the bio is speculative read-ahead (`REQ_RAHEAD`): it may fail without
    /// meaning the device is broken.
    pub fn is_readahead(&self) -> bool {
        self.opf().is_readahead()
    }

    /// Whether the bio is an atomic write (`REQ_ATOMIC`).
    pub fn is_atomic(&self) -> bool {
        self.opf().is_atomic()
    }

    /// Whether the bio's data must be on stable storage at completion (`REQ_FUA`).
    pub fn is_fua(&self) -> bool {
        self.opf().is_fua()
    }

    /// Returns the first sector the bio addresses.
    pub fn sector(&self) -> u64 {
        // SAFETY: By the type invariant the bio is valid.
        unsafe { (*self.as_raw()).bi_iter.bi_sector }
    }

    /// Returns the number of bytes still to transfer.
    pub fn size(&self) -> u32 {
        // SAFETY: By the type invariant the bio is valid.
        unsafe { (*self.as_raw()).bi_iter.bi_size }
    }

    /// Returns the number of 512-byte sectors still to transfer.
    pub fn sectors(&self) -> u32 {
        self.size() >> crate::block::SECTOR_SHIFT
    }

    /// Calls `f(page, len, offset)` for each single-page segment of the remaining data, in
    /// order, until `f` returns `false`.
    fn for_each_page_segment(&self, mut f: impl FnMut(*mut bindings::page, u32, u32) -> bool) {
        let bio = self.as_raw();
        // SAFETY: By the type invariant the bio is valid; we iterate a copy of its iterator.
        let mut iter = unsafe { (*bio).bi_iter };
        // SAFETY: As above.
        let vecs = unsafe { (*bio).bi_io_vec };
        while iter.bi_size > 0 {
            // SAFETY: `bi_iter` of a valid bio with data left indexes a valid bvec in `bi_io_vec`.
            let bv = unsafe { &*vecs.add(iter.bi_idx as usize) };
            let done_in_bv = iter.bi_offset;
            let offset = bv.bv_offset + done_in_bv;
            // SAFETY: A multi-page bvec covers physically contiguous pages of one memmap range,
            // so the page holding byte `offset` is `offset / PAGE_SIZE` pages after `bv_page`.
            let page = unsafe { bv.bv_page.add((offset / PAGE_SIZE) as usize) };
            let page_off = offset % PAGE_SIZE;
            let len = (bv.bv_len - done_in_bv)
                .min(iter.bi_size)
                .min(PAGE_SIZE - page_off);
            if len > 0 && !f(page, len, page_off) {
                return;
            }
            iter.bi_size -= len;
            iter.bi_offset += len;
            if iter.bi_offset >= bv.bv_len {
                iter.bi_idx += 1;
                iter.bi_offset = 0;
            }
        }
    }

    /// Returns how many bytes of the remaining data fit into one bio of at most `max_vecs`
    /// single-page segments, and how many segments they take.
    pub fn fit_in_segments(&self, max_vecs: u32) -> (u32, u32) {
        let (mut bytes, mut vecs) = (0u32, 0u32);
        self.for_each_page_segment(|_, len, _| {
            if vecs == max_vecs {
                return false;
            }
            vecs += 1;
            bytes += len;
            true
        });
        (bytes, vecs)
    }
}

/// Called when an [`OwnedBio`] completes, with what was attached at submission.
///
/// The payload must keep the bio's data source alive (for example by holding a reference to
/// the bio whose data it carries).
pub trait BioCompletion: Sized + Send {
    /// Runs first on completion, on the payload still in place (where
    /// [`OwnedBio::submit_with`] saw it pinned), e.g. to unlink it from a list; possibly in
    /// interrupt context. The bio is still allocated. Shared: others (e.g. a list walker) may
    /// still hold references to the payload until `detach` unlinked it.
    fn detach(&self) {}

    /// Runs in the bio's completion context (possibly interrupt context): must not sleep.
    ///
    /// The bio itself is already freed.
    fn complete(self, status: Result);
}

/// A set of preallocated bios (`struct bio_set`) whose bios carry their own bvec table and a
/// payload of type `P` that is handed back on completion.
///
/// # Invariants
///
/// `inner` was initialised by `bioset_init` with `BIOSET_NEED_BVECS` and a front pad that fits a
/// `P`, and is exited exactly once on drop.
#[pin_data(PinnedDrop)]
pub struct BioSet<P: BioCompletion> {
    #[pin]
    inner: Opaque<bindings::bio_set>,
    _p: PhantomData<P>,
}

// SAFETY: A `bio_set` may be used to allocate bios from any thread.
unsafe impl<P: BioCompletion> Send for BioSet<P> {}
// SAFETY: `bio_alloc_bioset` is safe to call concurrently on one set.
unsafe impl<P: BioCompletion> Sync for BioSet<P> {}

impl<P: BioCompletion> BioSet<P> {
    /// Bytes in front of each bio where its payload lives.
    const FRONT_PAD: usize = mem::size_of::<P>().next_multiple_of(mem::align_of::<bindings::bio>());

    /// Creates a bio set with `pool_size` bios reserved for forward progress.
    ///
    /// The set has a rescuer: a `map` function may allocate several bios from it while
    /// `current->bio_list` holds bios it already submitted.
    pub fn new(pool_size: u32) -> impl PinInit<Self, Error> {
        build_assert!(mem::align_of::<P>() <= mem::align_of::<bindings::bio>());
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::bio_set| {
                // SAFETY: `slot` is valid for writes; zeroed is the state `bioset_init` expects.
                unsafe { slot.write_bytes(0, 1) };
                // SAFETY: `slot` is a valid, zeroed `bio_set`; on success it is exited in drop.
                to_result(unsafe {
                    bindings::bioset_init(
                        slot,
                        pool_size,
                        Self::FRONT_PAD as u32,
                        (bindings::BIOSET_NEED_BVECS | bindings::BIOSET_NEED_RESCUER) as i32,
                    )
                })
            }),
            _p: PhantomData,
        })
    }

    fn alloc(
        &self,
        bdev: *mut bindings::block_device,
        nr_vecs: u32,
        opf: Opf,
    ) -> Result<OwnedBio<P>> {
        let nr_vecs = u16::try_from(nr_vecs).map_err(|_| EINVAL)?;
        let opf = opf.for_new_bio();
        // SAFETY: `inner` is an initialised bio set (type invariant) and `bdev` is an open block
        // device (callers pass a `DmDev`'s device). GFP_NOIO never fails for a bio set with a
        // mempool, but the result is checked anyway.
        let bio = unsafe {
            bindings::bio_alloc_bioset(bdev, nr_vecs, opf, bindings::GFP_NOIO, self.inner.get())
        };
        if bio.is_null() {
            return Err(ENOMEM);
        }
        Ok(OwnedBio {
            ptr: bio,
            _p: PhantomData,
        })
    }

    /// Allocates a bio for `bdev` at `sector` with the operation and flags `opf` (less
    /// `REQ_POLLED`) and no data: an empty flush, a discard or write-zeroes of `size` bytes.
    ///
    /// # Safety
    ///
    /// `bdev` must be an open block device that stays open until the bio completes, and this
    /// set must outlive the bio.
    pub unsafe fn alloc_dataless(
        &self,
        bdev: *mut bindings::block_device,
        opf: Opf,
        sector: u64,
        size: u32,
    ) -> Result<OwnedBio<P>> {
        let bio = self.alloc(bdev, 0, opf)?;
        // SAFETY: The bio was just allocated and is exclusively ours.
        unsafe {
            (*bio.ptr).bi_iter.bi_sector = sector;
            (*bio.ptr).bi_iter.bi_size = size;
        }
        Ok(bio)
    }

    /// Allocates a bio for `bdev` at `sector` with operation and flags `opf` that carries the
    /// first `bytes` bytes of the remaining data of `src`. No page references are taken (the
    /// data may live in slab memory, whose pages are not reference counted).
    ///
    /// `bytes` and the segment count must come from [`Bio::fit_in_segments`] on `src`.
    ///
    /// # Safety
    ///
    /// `bdev` must be an open block device that stays open until the bio completes, this set
    /// must outlive the bio, and `src`'s data pages must stay allocated until it completes
    /// (e.g. `src` completes only after this bio).
    pub unsafe fn alloc_with_data_of(
        &self,
        bdev: *mut bindings::block_device,
        opf: Opf,
        sector: u64,
        src: &Bio,
        bytes: u32,
        nr_vecs: u32,
    ) -> Result<OwnedBio<P>> {
        let bio = self.alloc(bdev, nr_vecs, opf)?;
        // SAFETY: The bio was just allocated and is exclusively ours.
        unsafe { (*bio.ptr).bi_iter.bi_sector = sector };
        let mut left = bytes;
        let mut added = 0u32;
        src.for_each_page_segment(|page, len, off| {
            if left == 0 || added == nr_vecs {
                return false;
            }
            let len = len.min(left);
            // SAFETY: The bio has room for `nr_vecs` bvecs and we add at most that many, so it
            // cannot overflow; `page` is a data page of `src`, which the caller keeps allocated.
            unsafe { bindings::__bio_add_page(bio.ptr, page, len, off) };
            left -= len;
            added += 1;
            true
        });
        if left != 0 {
            // `bio` is dropped here.
            return Err(EINVAL);
        }
        Ok(bio)
    }
}

impl<P: BioCompletion> BioSet<P> {
    /// Allocates a bio for `bdev` at `sector` with operation and flags `opf` that carries the
    /// first `bytes` bytes of `buf`.
    ///
    /// # Safety
    ///
    /// `bdev` must be an open block device that stays open until the bio completes, this set
    /// must outlive the bio, and `buf` must stay allocated, its bytes not accessed by the CPU,
    /// until the bio completes (e.g. the bio's payload owns it).
    pub unsafe fn alloc_with_buf(
        &self,
        bdev: *mut bindings::block_device,
        opf: Opf,
        sector: u64,
        buf: &PageBuf,
        bytes: usize,
    ) -> Result<OwnedBio<P>> {
        let nr = bytes.div_ceil(PAGE_SIZE as usize);
        if bytes == 0 || bytes > buf.len() {
            return Err(EINVAL);
        }
        let bio = self.alloc(bdev, nr as u32, opf)?;
        // SAFETY: The bio was just allocated and is exclusively ours.
        unsafe { (*bio.ptr).bi_iter.bi_sector = sector };
        let mut left = bytes;
        for page in buf.pages.iter().take(nr) {
            let n = left.min(PAGE_SIZE as usize);
            // SAFETY: The bio has room for `nr` bvecs (at most `BIO_MAX_VECS`, a `PageBuf`
            // limit); the caller keeps the page allocated until the bio completes.
            unsafe { bindings::__bio_add_page(bio.ptr, page.as_ptr(), n as u32, 0) };
            left -= n;
        }
        Ok(bio)
    }
}

#[pinned_drop]
impl<P: BioCompletion> PinnedDrop for BioSet<P> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `inner` was initialised by `bioset_init` (type invariant). No bio of this set
        // is left: bios are only allocated by the `alloc_*` functions, whose callers must keep
        // the set alive until their bios completed and were freed (`OwnedBio` and
        // `PreparedBio` free or complete theirs on drop).
        unsafe { bindings::bioset_exit(self.inner.get()) };
    }
}

/// A bio allocated from a [`BioSet`], not yet submitted.
///
/// # Invariants
///
/// `ptr` is a bio from a `BioSet<P>`, exclusively owned.
pub struct OwnedBio<P: BioCompletion> {
    ptr: *mut bindings::bio,
    _p: PhantomData<P>,
}

// SAFETY: An unsubmitted bio can be handed to another thread.
unsafe impl<P: BioCompletion> Send for OwnedBio<P> {}

impl<P: BioCompletion> OwnedBio<P> {
    /// Submits the bio; `payload.complete(status)` runs once it completed and was released.
    pub fn submit(self, payload: P) {
        self.submit_with(payload, |_| {});
    }

    /// Like [`OwnedBio::submit`], but first runs `before` on the payload in place: it stays at
    /// that address until [`BioCompletion::detach`] runs, so it may be linked into a list. Only
    /// a shared reference is given, since the payload is reachable by others once linked.
    pub fn submit_with(self, payload: P, before: impl FnOnce(Pin<&P>)) {
        self.prepare(payload, before).submit();
    }

    /// Attaches `payload` (running `before` on it in place, as [`OwnedBio::submit_with`]) and
    /// returns the bio ready to be submitted later, e.g. by another thread.
    pub fn prepare(self, payload: P, before: impl FnOnce(Pin<&P>)) -> PreparedBio<P> {
        let bio = self.ptr;
        mem::forget(self);
        // SAFETY: The front pad of a bio from `BioSet<P>` is `FRONT_PAD >= size_of::<P>()`
        // bytes, aligned for `P` (checked in `BioSet::new`), and unused until now.
        unsafe { front_pad::<P>(bio).write(payload) };
        // SAFETY: The payload was just written there and is not moved until `end_io` calls
        // `detach` on it in place; only shared references to it are made until then.
        before(unsafe { Pin::new_unchecked(&*front_pad::<P>(bio)) });
        // SAFETY: We own the bio; `end_io::<P>` matches the payload just stored.
        unsafe {
            (*bio).bi_end_io = Some(end_io::<P>);
            (*bio).bi_private = ptr::null_mut();
            (*bio).bi_next = ptr::null_mut();
        }
        PreparedBio {
            ptr: bio,
            _p: PhantomData,
        }
    }
}

/// A bio from a [`BioSet`] with its payload attached, not yet submitted. Dropping it
/// completes it with an I/O error (the payload sees `Err(EIO)`).
///
/// # Invariants
///
/// `ptr` is an exclusively owned bio of a `BioSet<P>` whose front pad holds a `P` and whose
/// `bi_end_io` is `end_io::<P>`.
pub struct PreparedBio<P: BioCompletion> {
    ptr: *mut bindings::bio,
    _p: PhantomData<P>,
}

// SAFETY: An unsubmitted bio and its `Send` payload can be handed to another thread.
unsafe impl<P: BioCompletion> Send for PreparedBio<P> {}

impl<P: BioCompletion> PreparedBio<P> {
    /// Submits the bio.
    pub fn submit(self) {
        let bio = self.ptr;
        mem::forget(self);
        // SAFETY: We own the prepared bio (type invariant); the block layer takes it over.
        unsafe { bindings::submit_bio(bio) };
    }
}

impl<P: BioCompletion> Drop for PreparedBio<P> {
    fn drop(&mut self) {
        // SAFETY: We own the bio (type invariant); ending it runs `end_io::<P>`, which
        // completes the payload and frees the bio.
        unsafe {
            (*self.ptr).bi_status = result_to_status(Err(EIO));
            bindings::bio_endio(self.ptr);
        }
    }
}

/// A first-in first-out list of [`PreparedBio`]s, linked through `bi_next` (no allocation).
pub struct PreparedBioList<P: BioCompletion> {
    head: *mut bindings::bio,
    tail: *mut bindings::bio,
    _p: PhantomData<P>,
}

// SAFETY: The list owns its bios, which may be handed to another thread.
unsafe impl<P: BioCompletion> Send for PreparedBioList<P> {}

// The list holds pointers only; the payloads stay where they are when it moves.
impl<P: BioCompletion> Unpin for PreparedBioList<P> {}

impl<P: BioCompletion> Default for PreparedBioList<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: BioCompletion> PreparedBioList<P> {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            _p: PhantomData,
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends `bio`.
    pub fn push(&mut self, bio: PreparedBio<P>) {
        let b = bio.ptr;
        mem::forget(bio);
        // SAFETY: We own `b` (and every bio on the list); `bi_next` is ours until submission.
        unsafe {
            (*b).bi_next = ptr::null_mut();
            if self.tail.is_null() {
                self.head = b;
            } else {
                (*self.tail).bi_next = b;
            }
        }
        self.tail = b;
    }

    /// Removes the first bio.
    pub fn pop(&mut self) -> Option<PreparedBio<P>> {
        if self.head.is_null() {
            return None;
        }
        let b = self.head;
        // SAFETY: `b` is a bio of the list, owned by it.
        unsafe {
            self.head = (*b).bi_next;
            (*b).bi_next = ptr::null_mut();
        }
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        Some(PreparedBio {
            ptr: b,
            _p: PhantomData,
        })
    }
}

impl<P: BioCompletion> Drop for PreparedBioList<P> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

impl<P: BioCompletion> Drop for OwnedBio<P> {
    fn drop(&mut self) {
        // SAFETY: We own the unsubmitted bio (type invariant).
        unsafe { bindings::bio_put(self.ptr) };
    }
}

/// Returns where the payload of a bio from a `BioSet<P>` lives.
///
/// # Safety
///
/// `bio` must come from a `BioSet<P>`.
unsafe fn front_pad<P: BioCompletion>(bio: *mut bindings::bio) -> *mut P {
    // SAFETY: The set was created with `FRONT_PAD` bytes in front of each bio.
    unsafe { bio.cast::<u8>().sub(BioSet::<P>::FRONT_PAD).cast::<P>() }
}

/// Completion callback of bios submitted by [`OwnedBio::submit`].
///
/// # Safety
///
/// Called by the block layer exactly once for a bio submitted by `OwnedBio::<P>::submit`.
unsafe extern "C" fn end_io<P: BioCompletion>(bio: *mut bindings::bio) {
    // SAFETY: The bio is valid during its completion.
    let status = unsafe { (*bio).bi_status };
    // SAFETY: `prepare` stored a `P` in the front pad, in place until now; others may still
    // hold shared references to it, so only a shared one is made.
    P::detach(unsafe { &*front_pad::<P>(bio) });
    // SAFETY: `prepare` stored a `P` in the front pad; `detach` unlinked it, so this is the
    // only access left, and it is read exactly once, here.
    let payload = unsafe { front_pad::<P>(bio).read() };
    // SAFETY: The bio completed; nobody else references it.
    unsafe { bindings::bio_put(bio) };
    payload.complete(status_to_result(status));
}

/// References on the data pages of a bio ([`PageRefs::of_bio`]): while held, the pages stay
/// allocated even after the bio's originator completed the bio and reused or freed its
/// memory, so a bio built on them with [`BioSet::alloc_with_data_of`] may complete later
/// than its originator (it then writes whatever the pages hold by then).
pub struct PageRefs {
    pages: KVec<*mut bindings::page>,
}

// SAFETY: The pointers are pages we hold a reference on; a reference may be dropped from any
// thread.
unsafe impl Send for PageRefs {}
// SAFETY: `&PageRefs` gives no access to the pages.
unsafe impl Sync for PageRefs {}

impl PageRefs {
    /// Takes a reference on each data page of the first `bytes` bytes of `bio`'s remaining
    /// data. Fails (`EINVAL`) if one of them is memory whose references are not counted
    /// (slab or large kmalloc memory, device memory): the caller then copies the data instead.
    pub fn of_bio(bio: &Bio, bytes: u32, flags: Flags) -> Result<Self> {
        let (_, segments) = bio.fit_in_segments(u32::MAX);
        let mut refs = Self {
            pages: KVec::with_capacity(segments as usize, flags)?,
        };
        let mut left = bytes;
        let mut ok = true;
        bio.for_each_page_segment(|page, len, _| {
            if left == 0 {
                return false;
            }
            // SAFETY: `page` is a data page of `bio`, which the caller keeps incomplete, so the
            // page is allocated now.
            if !unsafe { bindings::bio_data_page_get(page) } {
                ok = false;
                return false;
            }
            if let Err(e) = refs.pages.push_within_capacity(page) {
                // Cannot happen: one slot per segment was reserved. Drop the reference taken.
                // SAFETY: Taken just above.
                unsafe { bindings::bio_data_page_put(e.0) };
                ok = false;
                return false;
            }
            left -= len.min(left);
            true
        });
        // Dropping `refs` on failure puts the references taken so far.
        if !ok || left != 0 {
            return Err(EINVAL);
        }
        Ok(refs)
    }
}

impl Drop for PageRefs {
    fn drop(&mut self) {
        for &page in self.pages.iter() {
            // SAFETY: `of_bio` took one reference on each entry, put here exactly once.
            unsafe { bindings::bio_data_page_put(page) };
        }
    }
}

/// Pages owned by the caller that carry the data of a bio ([`BioSet::alloc_with_buf`]), for
/// metadata such as a log, data copied between devices, or a bounce buffer.
pub struct PageBuf {
    pages: KVec<Page>,
}

impl PageBuf {
    /// Allocates a zeroed buffer of at least `len` bytes (whole pages, at most
    /// [`BIO_MAX_VECS`] of them).
    pub fn new(len: usize) -> Result<Self> {
        Self::new_with(len, GFP_KERNEL | __GFP_ZERO)
    }

    /// Allocates a buffer of at least `len` bytes with allocation flags `flags` (the pages are
    /// zeroed only if `flags` says so), e.g. `GFP_NOIO` on the I/O path.
    pub fn new_with(len: usize, flags: Flags) -> Result<Self> {
        let n = len.div_ceil(PAGE_SIZE as usize);
        if n > BIO_MAX_VECS as usize {
            return Err(EINVAL);
        }
        let mut pages = KVec::with_capacity(n, flags)?;
        for _ in 0..n {
            pages.push(Page::alloc_page(flags)?, flags)?;
        }
        Ok(Self { pages })
    }

    /// Copies the first `bytes` bytes of the remaining data of `bio` into the buffer (a
    /// bounce buffer for a write).
    pub fn copy_from_bio(&mut self, bio: &Bio, bytes: usize) -> Result {
        self.copy_with_bio(bio, bytes, true)
    }

    /// Copies the buffer's first `bytes` bytes into the remaining data pages of `bio` (a
    /// bounce buffer for a read). The caller must own `bio`'s data (e.g. it completes `bio`).
    pub fn copy_to_bio(&self, bio: &Bio, bytes: usize) -> Result {
        self.copy_with_bio(bio, bytes, false)
    }

    fn copy_with_bio(&self, bio: &Bio, bytes: usize, into_buf: bool) -> Result {
        if bytes > self.len() || bytes > bio.size() as usize {
            return Err(EINVAL);
        }
        let mut done = 0usize;
        let mut res = Ok(());
        bio.for_each_page_segment(|page, len, off| {
            let len = (len as usize).min(bytes - done);
            if len == 0 {
                return false;
            }
            // SAFETY: `page` is a data page of `bio`, mapped for the duration of the copy.
            let vaddr = unsafe { bindings::kmap_local_page(page) }.cast::<u8>();
            let chunks = match self.chunks(done, len) {
                Ok(c) => c,
                Err(e) => {
                    res = Err(e);
                    // SAFETY: Mapped above.
                    unsafe { bindings::kunmap_local(vaddr.cast()) };
                    return false;
                }
            };
            for (p, in_page, n, in_seg) in chunks {
                // SAFETY: `vaddr + off + in_seg` lies in the segment (`in_seg + n <= len`);
                // the pages of `self` are not under I/O while the caller holds it here.
                let r = unsafe {
                    let at = vaddr.add(off as usize + in_seg);
                    if into_buf {
                        p.write_raw(at, in_page, n)
                    } else {
                        p.read_raw(at, in_page, n)
                    }
                };
                if r.is_err() {
                    res = r;
                }
            }
            // SAFETY: Mapped above by this function.
            unsafe { bindings::kunmap_local(vaddr.cast()) };
            done += len;
            done < bytes
        });
        if res.is_ok() && done != bytes {
            return Err(EINVAL);
        }
        res
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE as usize
    }

    /// Whether the buffer has no pages.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    fn chunks(
        &self,
        offset: usize,
        len: usize,
    ) -> Result<impl Iterator<Item = (&Page, usize, usize, usize)>> {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.len() {
            return Err(EINVAL);
        }
        let ps = PAGE_SIZE as usize;
        Ok((offset / ps..end.div_ceil(ps)).filter_map(move |i| {
            let page = self.pages.get(i)?;
            let start = (i * ps).max(offset);
            let stop = ((i + 1) * ps).min(end);
            Some((page, start - i * ps, stop - start, start - offset))
        }))
    }

    /// Copies `src` into the buffer at `offset`.
    pub fn copy_from(&mut self, offset: usize, src: &[u8]) -> Result {
        for (page, in_page, n, in_src) in self.chunks(offset, src.len())? {
            let s = src.get(in_src..in_src + n).ok_or(EINVAL)?;
            // SAFETY: `s` is valid for `n` bytes; `&mut self` excludes any other access to the
            // pages (`alloc_with_buf` callers keep a buffer untouched while a bio uses it).
            unsafe { page.write_raw(s.as_ptr(), in_page, n)? };
        }
        Ok(())
    }

    /// Copies the buffer's bytes at `offset` into `dst`.
    pub fn copy_to(&self, offset: usize, dst: &mut [u8]) -> Result {
        for (page, in_page, n, in_dst) in self.chunks(offset, dst.len())? {
            let d = dst.get_mut(in_dst..in_dst + n).ok_or(EINVAL)?;
            // SAFETY: `d` is valid for `n` bytes of writes; nobody writes the pages while we
            // hold `&self` (writers need `&mut self`).
            unsafe { page.read_raw(d.as_mut_ptr(), in_page, n)? };
        }
        Ok(())
    }
}
