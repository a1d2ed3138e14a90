//! Simulated physical memory.
//!
//! [`PhysMem`] owns the bytes of the simulated machine's RAM. Contents are
//! stored sparsely in 4 KiB host chunks that exist only once something
//! non-zero was written, so a many-gigabyte simulated memory with a small
//! footprint stays cheap on the host. Every read of a byte never written
//! returns zero, as RAM cleared at boot would.
//!
//! Writes can be tracked by a [`Bitmap`] type parameter (as in rust-vmm's
//! vm-memory): `PhysMem<()>` tracks nothing at no cost; [`DirtyChunks`]
//! remembers which chunks changed, which incremental checkpoints use.
//!
//! This module owns bytes only: which frames are free, and what a frame
//! holds, belongs to the allocators and the kernel.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use thiserror::Error;

use crate::addr::{MAX_PHYS_BITS, PhysAddr};
use crate::shared_page::{SharedChunk, SharedPage};
use crate::swap::{Loan, LoanBook, LoanReturn};
use std::sync::Arc;

/// Host chunk size: the granularity of sparse storage and dirty tracking.
pub const CHUNK_BYTES: usize = 4096;
const CHUNK_SHIFT: u32 = 12;
const LEAF_SHIFT: u32 = 9;
const LEAF_LEN: usize = 1 << LEAF_SHIFT;

/// The largest simulated memory accepted: 16 TiB. The bookkeeping for it is
/// 64 MiB of host memory; more would make an empty simulation costly.
pub const MAX_MEM_BYTES: u64 = 1 << 44;

/// An access to physical memory that the memory cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemError {
    /// The access reaches past the end of memory.
    #[error("physical access of {len} bytes at {addr:#x} is outside memory of {size:#x} bytes")]
    OutOfRange {
        /// First byte of the access.
        addr: u64,
        /// Length of the access.
        len: u64,
        /// Size of the memory.
        size: u64,
    },
    /// A memory size of zero or above [`MAX_MEM_BYTES`].
    #[error("physical memory size {0:#x} is not between 1 byte and 16 TiB")]
    BadSize(u64),
}

/// Reading or writing a memory image file failed.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The image file.
        path: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is empty or too large to be a physical memory.
    #[error("{path}: an image of {len} bytes is not a physical memory between 1 byte and 16 TiB")]
    BadSize {
        /// The image file.
        path: String,
        /// Its length.
        len: u64,
    },
}

/// Records which parts of memory were written. Implemented for `()` as a
/// no-op, so untracked memory pays nothing.
pub trait Bitmap: Default {
    /// Called for each chunk index a write touches.
    fn mark(&mut self, chunk: u64);

    /// [`Bitmap::mark`] when that needs no call (no growth): returns false,
    /// having marked nothing, otherwise. For a store path with no call.
    fn try_mark(&mut self, chunk: u64) -> bool;
}

impl Bitmap for () {
    #[inline(always)]
    fn mark(&mut self, _chunk: u64) {}

    #[inline(always)]
    fn try_mark(&mut self, _chunk: u64) -> bool {
        true
    }
}

/// Tracks the 4 KiB chunks written since the last [`DirtyChunks::take`]:
/// the host's view of what changed (a hypervisor's dirty log), which
/// incremental checkpoints use. It grows as needed, or can be sized once with
/// [`DirtyChunks::track`]; [`DirtyChunks::off`] makes marking a single
/// failed bounds check (untracked memory then costs next to nothing).
#[derive(Debug, Default, Clone)]
pub struct DirtyChunks {
    bits: Vec<u64>,
    off: bool,
}

impl Bitmap for DirtyChunks {
    #[inline]
    fn mark(&mut self, chunk: u64) {
        let word = (chunk / 64) as usize;
        match self.bits.get_mut(word) {
            Some(w) => *w |= 1 << (chunk % 64),
            None if self.off => {}
            None => self.grow(word, chunk),
        }
    }

    #[inline(always)]
    fn try_mark(&mut self, chunk: u64) -> bool {
        match self.bits.get_mut((chunk / 64) as usize) {
            Some(w) => *w |= 1 << (chunk % 64),
            None => return self.off,
        }
        true
    }
}

impl DirtyChunks {
    #[cold]
    #[inline(never)]
    fn grow(&mut self, word: usize, chunk: u64) {
        self.bits.resize(word + 1, 0);
        self.bits[word] |= 1 << (chunk % 64);
    }

    /// Tracks `chunks` chunks from now on (every chunk of a memory), all clean.
    pub fn track(&mut self, chunks: u64) {
        self.off = false;
        self.bits = vec![0; chunks.div_ceil(64) as usize];
    }

    /// Stops tracking and forgets what was marked.
    pub fn off(&mut self) {
        self.off = true;
        self.bits = Vec::new();
    }

    /// Whether marks are being recorded.
    #[must_use]
    pub fn is_on(&self) -> bool {
        !self.off
    }

    /// The chunks written since the last [`DirtyChunks::take`], without
    /// clearing them.
    #[must_use]
    pub fn marked(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for (w, &bits) in self.bits.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                out.push(w as u64 * 64 + u64::from(b.trailing_zeros()));
                b &= b - 1;
            }
        }
        out
    }

    /// Whether `chunk` was written since the last [`DirtyChunks::take`].
    #[must_use]
    pub fn is_marked(&self, chunk: u64) -> bool {
        self.bits
            .get((chunk / 64) as usize)
            .is_some_and(|w| w & (1 << (chunk % 64)) != 0)
    }

    /// The chunk indices written since the last call, in increasing order; clears the set.
    pub fn take(&mut self) -> Vec<u64> {
        let mut out = Vec::new();
        for (w, bits) in self.bits.iter_mut().enumerate() {
            let mut b = std::mem::take(bits);
            while b != 0 {
                out.push(w as u64 * 64 + u64::from(b.trailing_zeros()));
                b &= b - 1;
            }
        }
        out
    }
}

type Chunk = [u8; CHUNK_BYTES];
type Leaf = [Option<Box<Chunk>>; LEAF_LEN];
type SharedLeaf = [Option<SharedChunk>; LEAF_LEN];

/// `slot`'s buffer writable: in place when `slot` is its only holder, else
/// a copy of it in a buffer of its own that takes its place (from `spare`
/// when there is one). See [`PhysMem::shared_mut`].
#[inline]
fn unique_chunk<'a>(slot: &'a mut SharedChunk, spare: &mut Vec<SharedChunk>) -> &'a mut Chunk {
    // (The count, a plain load: `make_mut` below makes the one check that
    // counts.)
    if Arc::strong_count(slot) != 1
        && let Some(mut own) = spare.pop()
        && let Some(bytes) = Arc::get_mut(&mut own)
    {
        // Copy on first write, into a spare buffer.
        bytes.copy_from_slice(&slot[..]);
        *slot = own;
    }
    // Unique now, unless no spare buffer was there: then a new one, made
    // from a copy of the shared bytes.
    Arc::make_mut(slot)
}

/// A copy of lent buffer `lent` with loan record `r` undone on it (in a
/// spare buffer when there is one): the slot's page as it was lent.
#[cold]
#[inline(never)]
fn undone_copy(
    lent: &SharedChunk,
    r: &crate::swap::LoanRecord,
    spare: &mut Vec<SharedChunk>,
) -> SharedChunk {
    // (A spare has no other holder: `make_mut` fills it in place.)
    let mut own = spare.pop().unwrap_or_else(|| Arc::new([0; CHUNK_BYTES]));
    let bytes = Arc::make_mut(&mut own);
    bytes.copy_from_slice(&lent[..]);
    r.undo(&mut bytes[..]);
    own
}

/// Simulated physical memory of a fixed size in bytes.
#[derive(Clone)]
pub struct PhysMem<B: Bitmap = ()> {
    size: u64,
    dirs: Vec<Option<Box<Leaf>>>,
    bitmap: B,
    /// Chunks released by [`PhysMem::zero`], reused by the next chunks
    /// made (a swap-heavy run releases a page's chunk at each eviction and
    /// makes one at each swap-in: no malloc/free pair per page).
    spare: Vec<Box<Chunk>>,
    /// Chunks whose bytes are a reference-counted buffer ([`SharedChunk`]:
    /// a page swapped in, see `shared_page.rs`), beside `dirs`: a chunk is
    /// stored in one or the other, never both. Owned chunks keep the store
    /// paths as they were (a `Box`, no reference count to look at); a store
    /// to a shared chunk whose buffer someone else holds (the swap cache)
    /// copies it into a buffer of its own first, which then stays here and
    /// is written in place (`shared_mut`), so that the page's next
    /// swap-out hands that buffer over instead of copying it.
    shared: Vec<Option<Box<SharedLeaf>>>,
    /// Chunks in `shared` (0: a chunk missing from `dirs` is zero, no look).
    shared_count: usize,
    /// Buffers of shared chunks let go of with no other holder (and the
    /// swap cache's, handed over by [`PhysMem::give_spare_page`]), reused
    /// by the next copy on first write.
    spare_shared: Vec<SharedChunk>,
    /// Open loans (`swap/loan.rs`): shared chunks whose buffer is a swap
    /// cache page lent to this memory, written in place, with the slot's
    /// old bytes kept as undo records.
    loans: LoanBook,
    /// Closed loans' old bytes, waiting for the kernel to hand them to the
    /// swap device ([`PhysMem::pop_loan_return`]).
    returns: Vec<(crate::swap::SwapSlot, u64, SharedChunk)>,
}

/// Most released chunks kept for reuse (256 KiB).
const SPARE_CHUNKS: usize = 64;

impl<B: Bitmap> std::fmt::Debug for PhysMem<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysMem")
            .field("size", &self.size)
            .field("stored_chunks", &self.stored_chunks())
            .finish()
    }
}

fn empty_leaf() -> Box<Leaf> {
    Box::new([const { None }; LEAF_LEN])
}

/// (Out of line: its 4 KiB array on the stack stays out of the callers'
/// frames, `write_lent`'s among them.)
#[cold]
#[inline(never)]
fn empty_shared_leaf() -> Box<SharedLeaf> {
    Box::new([const { None }; LEAF_LEN])
}

impl<B: Bitmap> PhysMem<B> {
    /// A memory of `size` bytes, all zero.
    pub fn new(size: u64) -> Result<Self, MemError> {
        if size == 0 || size > MAX_MEM_BYTES {
            return Err(MemError::BadSize(size));
        }
        debug_assert!(MAX_MEM_BYTES.trailing_zeros() < MAX_PHYS_BITS);
        let dirs = (size - 1) >> (CHUNK_SHIFT + LEAF_SHIFT);
        Ok(Self {
            size,
            dirs: (0..=dirs).map(|_| None).collect(),
            bitmap: B::default(),
            spare: Vec::new(),
            shared: (0..=dirs).map(|_| None).collect(),
            shared_count: 0,
            spare_shared: Vec::new(),
            loans: LoanBook::default(),
            returns: Vec::new(),
        })
    }

    /// The size in bytes.
    #[inline]
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many 4 KiB host chunks hold stored (once written) bytes.
    #[must_use]
    pub fn stored_chunks(&self) -> usize {
        let owned: usize = self
            .dirs
            .iter()
            .flatten()
            .map(|leaf| leaf.iter().filter(|c| c.is_some()).count())
            .sum();
        owned + self.shared_count
    }

    /// How many stored chunks are held by reference count (pages that came
    /// back from swap, written since or not).
    #[must_use]
    pub fn shared_chunks(&self) -> usize {
        self.shared_count
    }

    /// The write-tracking bitmap.
    #[must_use]
    pub fn bitmap(&self) -> &B {
        &self.bitmap
    }

    /// The write-tracking bitmap, mutably.
    pub fn bitmap_mut(&mut self) -> &mut B {
        &mut self.bitmap
    }

    /// Whether `[addr, addr+len)` lies inside memory.
    #[inline]
    pub fn check(&self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        let a = addr.as_u64();
        match a.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemError::OutOfRange {
                addr: a,
                len,
                size: self.size,
            }),
        }
    }

    /// The bytes of a stored chunk, owned or shared.
    #[inline]
    fn chunk(&self, chunk: u64) -> Option<&Chunk> {
        if let Some(Some(dir)) = self.dirs.get((chunk >> LEAF_SHIFT) as usize)
            && let Some(c) = &dir[(chunk as usize) & (LEAF_LEN - 1)]
        {
            return Some(c);
        }
        if self.shared_count == 0 {
            return None;
        }
        self.shared_chunk(chunk).map(|c| &**c)
    }

    /// The shared buffer chunk `chunk` refers to, if any.
    #[inline]
    fn shared_chunk(&self, chunk: u64) -> Option<&SharedChunk> {
        let leaf = self.shared.get((chunk >> LEAF_SHIFT) as usize)?.as_ref()?;
        leaf[(chunk as usize) & (LEAF_LEN - 1)].as_ref()
    }

    /// Forgets that chunk `chunk` refers to a shared buffer, handing the
    /// reference back (the chunk is then not stored, unless owned).
    #[inline]
    fn take_shared(&mut self, chunk: u64) -> Option<SharedChunk> {
        if self.shared_count == 0 {
            return None;
        }
        let leaf = self
            .shared
            .get_mut((chunk >> LEAF_SHIFT) as usize)?
            .as_mut()?;
        let mut c = leaf[(chunk as usize) & (LEAF_LEN - 1)].take()?;
        self.shared_count -= 1;
        // A lent buffer leaves memory: its records undone in place (the
        // frame no longer needs its bytes), and it goes back to the slot.
        if let Some(e) = self.loans.end(chunk) {
            if let Some(r) = e.record {
                r.undo(&mut Arc::make_mut(&mut c)[..]);
            }
            self.returns.push((e.slot, e.number, c.clone()));
        }
        Some(c)
    }

    /// Closes chunk `chunk`'s loan, if any, with memory's bytes left as
    /// they are: the slot's old page (the buffer itself while nothing was
    /// stored, else a copy with the records undone), for the swap device.
    #[inline(always)]
    fn close_lent(&mut self, chunk: u64) -> Option<LoanReturn> {
        let e = self.loans.end(chunk)?;
        let Some(Some(leaf)) = self.shared.get((chunk >> LEAF_SHIFT) as usize) else {
            unreachable!("a loan on chunk {chunk}, which is not shared")
        };
        let Some(lent) = &leaf[(chunk as usize) & (LEAF_LEN - 1)] else {
            unreachable!("a loan on chunk {chunk}, which is not shared")
        };
        let page = match e.record {
            None => lent.clone(),
            Some(r) => undone_copy(lent, r, &mut self.spare_shared),
        };
        Some(LoanReturn {
            slot: e.slot,
            number: e.number,
            page,
        })
    }

    /// [`PhysMem::close_lent`], its return waiting in
    /// [`PhysMem::pop_loan_return`].
    #[cold]
    #[inline(never)]
    fn close_lent_queued(&mut self, chunk: u64) {
        if let Some(r) = self.close_lent(chunk) {
            self.returns.push((r.slot, r.number, r.page));
        }
    }

    /// Installs `loan` (a swap cache page lent to this memory, see
    /// `swap/loan.rs`) at `addr` as [`PhysMem::write_shared`] installs a
    /// shared page: the same chunk stored, the same mark, but written in
    /// place from now on, each store first recording the bytes it
    /// overwrites. A chunk already stored (never, for a frame just
    /// allocated) takes a copy and the page goes back at once.
    ///
    /// # Errors
    /// The page reaches past the end of memory (the page goes back).
    #[inline(always)]
    pub fn write_lent(&mut self, addr: PhysAddr, loan: Loan) -> Result<(), MemError> {
        let a = addr.as_u64();
        let idx = a >> CHUNK_SHIFT;
        let owned = matches!(
            self.dirs.get((idx >> LEAF_SHIFT) as usize),
            Some(Some(dir)) if dir[(idx as usize) & (LEAF_LEN - 1)].is_some()
        );
        if owned
            || !a.is_multiple_of(CHUNK_BYTES as u64)
            || a.checked_add(CHUNK_BYTES as u64)
                .is_none_or(|end| end > self.size)
        {
            return self.write_lent_slow(addr, loan);
        }
        // (In range: its leaf's place exists. One look-up both finds the
        // chunk not shared and installs the page.)
        let Some(leaf) = self.shared.get_mut((idx >> LEAF_SHIFT) as usize) else {
            return self.write_lent_slow(addr, loan);
        };
        let place =
            &mut leaf.get_or_insert_with(empty_shared_leaf)[(idx as usize) & (LEAF_LEN - 1)];
        if place.is_some() {
            return self.write_lent_slow(addr, loan);
        }
        *place = Some(loan.page);
        self.shared_count += 1;
        if !self.bitmap.try_mark(idx) {
            self.bitmap.mark(idx);
        }
        self.loans.lend(idx, loan.slot, loan.number);
        Ok(())
    }

    /// Whether the `len` bytes at `addr`, a data page being allocated to
    /// be overwritten whole, may wait for [`PhysMem::write_lent_over`] (or
    /// a later [`PhysMem::zero`]) instead of being zeroed now: one whole
    /// chunk in range with no open loan. Zeroing a chunk that is not lent
    /// gives nothing back to the swap device and changes nothing but the
    /// chunk (and the spare buffers), so when it happens does not matter;
    /// a lent chunk's zeroing gives its loan back, which must reach the
    /// device before the swap-in's own loan is made.
    #[inline(always)]
    pub fn defers_zero(&self, addr: PhysAddr, len: u64) -> bool {
        let a = addr.as_u64();
        len == CHUNK_BYTES as u64
            && a.is_multiple_of(CHUNK_BYTES as u64)
            && a.checked_add(CHUNK_BYTES as u64)
                .is_some_and(|end| end <= self.size)
            && !self.loans.is_lent(a >> CHUNK_SHIFT)
    }

    /// [`PhysMem::zero`] of the `len` bytes at `addr` and then
    /// [`PhysMem::write_lent`] of `loan` there, with the same outcome,
    /// in one pass where [`PhysMem::defers_zero`] allowed the wait: the
    /// old chunk (owned or shared) released as `zero` releases it, the
    /// page installed in the place the shared one left, each map looked
    /// at once. The swap-in's frame (about 850,000 in a swap-heavy run)
    /// was zeroed at its allocation only to be overwritten at once.
    /// Anything else takes the two steps (`write_lent_over_slow`). The
    /// test `write_lent_over_is_zero_then_write_lent` holds the two alike.
    ///
    /// # Errors
    /// The page reaches past the end of memory (the page goes back).
    #[inline(always)]
    pub fn write_lent_over(
        &mut self,
        addr: PhysAddr,
        len: u64,
        loan: Loan,
    ) -> Result<(), MemError> {
        if !self.defers_zero(addr, len) {
            return self.write_lent_over_slow(addr, len, loan);
        }
        let idx = addr.as_u64() >> CHUNK_SHIFT;
        let (l, i) = (
            (idx >> LEAF_SHIFT) as usize,
            (idx as usize) & (LEAF_LEN - 1),
        );
        // An owned chunk: released as `release_chunk` releases it (and
        // then, as there, a shared one is not looked at).
        let owned = match self.dirs.get_mut(l) {
            Some(Some(dir)) => dir[i].take(),
            _ => None,
        };
        let had_owned = owned.is_some();
        if let Some(c) = owned {
            self.bitmap.mark(idx);
            if self.spare.len() < SPARE_CHUNKS {
                self.spare.push(c);
            }
        }
        let Some(leaf) = self.shared.get_mut(l) else {
            return self.write_lent_cold(addr, loan);
        };
        let place = &mut leaf.get_or_insert_with(empty_shared_leaf)[i];
        if had_owned && place.is_some() {
            // (Never: a chunk is owned or shared.) As `write_lent` after
            // the zero.
            return self.write_lent_cold(addr, loan);
        }
        // A shared one (not lent: `defers_zero`): let go of as
        // `take_shared` and `keep_spare_shared` do, its place taken by
        // the loan.
        if let Some(mut old) = place.replace(loan.page) {
            self.shared_count -= 1;
            self.bitmap.mark(idx);
            if self.spare_shared.len() < SPARE_CHUNKS && Arc::get_mut(&mut old).is_some() {
                self.spare_shared.push(old);
            }
        }
        self.shared_count += 1;
        if !self.bitmap.try_mark(idx) {
            self.bitmap.mark(idx);
        }
        self.loans.lend(idx, loan.slot, loan.number);
        Ok(())
    }

    /// [`PhysMem::write_lent`], out of line (the rare cases of
    /// [`PhysMem::write_lent_over`]).
    #[cold]
    #[inline(never)]
    fn write_lent_cold(&mut self, addr: PhysAddr, loan: Loan) -> Result<(), MemError> {
        self.write_lent(addr, loan)
    }

    /// [`PhysMem::write_lent_over`] in two steps.
    #[cold]
    #[inline(never)]
    fn write_lent_over_slow(
        &mut self,
        addr: PhysAddr,
        len: u64,
        loan: Loan,
    ) -> Result<(), MemError> {
        // (As the allocation's zero, whose failure was ignored: the
        // install reports a page past the end.)
        let _ = self.zero(addr, len);
        self.write_lent(addr, loan)
    }

    /// [`PhysMem::write_lent`] of a page that cannot be lent in place (out
    /// of range, not at a chunk's start, or onto a stored chunk): its
    /// bytes written, the page back at once.
    #[cold]
    #[inline(never)]
    fn write_lent_slow(&mut self, addr: PhysAddr, loan: Loan) -> Result<(), MemError> {
        let r = match self.check(addr, CHUNK_BYTES as u64) {
            Ok(()) => self.write(addr, &loan.page[..]),
            Err(e) => Err(e),
        };
        self.returns.push((loan.slot, loan.number, loan.page));
        r
    }

    /// The page at `addr` went out dirty to its slot (the slot is
    /// rewritten): its loan, if any, ends with nothing to give back.
    #[inline]
    pub fn end_loan(&mut self, addr: PhysAddr) {
        let _ = self.loans.end(addr.as_u64() >> CHUNK_SHIFT);
    }

    /// Closes the loan on the page at `addr`, if any (it goes out clean:
    /// the slot keeps its old page): the old bytes, for the swap device.
    #[inline]
    pub fn close_loan(&mut self, addr: PhysAddr) -> Option<LoanReturn> {
        let chunk = addr.as_u64() >> CHUNK_SHIFT;
        if !self.loans.is_lent(chunk) {
            return None;
        }
        self.close_lent(chunk)
    }

    /// Closes every open loan (before anything reads swap slots: a
    /// checkpoint, the end of a run); memory's bytes stay as they are,
    /// unmarked. The old bytes wait in [`PhysMem::pop_loan_return`].
    pub fn close_all_loans(&mut self) {
        let mut chunk = 0;
        while self.loans.open() != 0 && chunk < self.loans.chunks() {
            if self.loans.is_lent(chunk) {
                self.close_lent_queued(chunk);
            }
            chunk += 1;
        }
    }

    /// One closed loan's old bytes, for the swap device
    /// (`SwapDevice::give_back`).
    pub fn pop_loan_return(&mut self) -> Option<LoanReturn> {
        let (slot, number, page) = self.returns.pop()?;
        Some(LoanReturn { slot, number, page })
    }

    /// Open loans.
    #[must_use]
    pub fn open_loans(&self) -> usize {
        self.loans.open()
    }

    /// Shared chunk `chunk` (it must be one) writable: its buffer in place
    /// when this memory is its only holder, else a copy of it in a buffer
    /// of its own (a spare one when there is one) that takes its place.
    ///
    /// Why the chunk stays a reference-counted buffer after its first write
    /// rather than becoming an owned (`Box`) chunk: a page swapped in and
    /// written goes out again dirty, and [`PhysMem::share_page`] then hands
    /// this very buffer to the swap cache, where an owned chunk's bytes
    /// were copied into a buffer of the cache's: one 4 KiB copy less per
    /// round trip. Its stores take the slower path (`store_stamp_slow`).
    fn shared_mut(&mut self, chunk: u64) -> &mut Chunk {
        // A lent buffer written other than by a store (which records): its
        // loan closes the old way first.
        if self.loans.is_lent(chunk) {
            self.close_lent_queued(chunk);
        }
        let spare = &mut self.spare_shared;
        let Some(slot) = self
            .shared
            .get_mut((chunk >> LEAF_SHIFT) as usize)
            .and_then(|leaf| leaf.as_mut())
            .and_then(|leaf| leaf[(chunk as usize) & (LEAF_LEN - 1)].as_mut())
        else {
            unreachable!("shared_mut of chunk {chunk}, which is not shared")
        };
        unique_chunk(slot, spare)
    }

    /// Chunk `chunk` writable: an owned chunk as it is, a shared one in
    /// place when no one else holds its buffer or else copied into a
    /// buffer of its own first (copy on first write), a missing one zero.
    #[inline]
    fn chunk_mut(&mut self, chunk: u64) -> &mut Chunk {
        self.bitmap.mark(chunk);
        let owned = matches!(
            self.dirs.get((chunk >> LEAF_SHIFT) as usize),
            Some(Some(dir)) if dir[(chunk as usize) & (LEAF_LEN - 1)].is_some()
        );
        if !owned && self.shared_count != 0 && self.shared_chunk(chunk).is_some() {
            return self.shared_mut(chunk);
        }
        let dir = self.dirs[(chunk >> LEAF_SHIFT) as usize].get_or_insert_with(empty_leaf);
        let spare = &mut self.spare;
        dir[(chunk as usize) & (LEAF_LEN - 1)].get_or_insert_with(|| match spare.pop() {
            Some(mut c) => {
                c.fill(0);
                c
            }
            None => Box::new([0; CHUNK_BYTES]),
        })
    }

    /// Reads `buf.len()` bytes starting at `addr`.
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.check(addr, buf.len() as u64)?;
        let mut a = addr.as_u64();
        let mut done = 0;
        while done < buf.len() {
            let off = (a as usize) & (CHUNK_BYTES - 1);
            let n = (CHUNK_BYTES - off).min(buf.len() - done);
            match self.chunk(a >> CHUNK_SHIFT) {
                Some(c) => buf[done..done + n].copy_from_slice(&c[off..off + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
            a += n as u64;
        }
        Ok(())
    }

    /// Writes `data` starting at `addr`.
    pub fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.check(addr, data.len() as u64)?;
        let mut a = addr.as_u64();
        let mut done = 0;
        while done < data.len() {
            let off = (a as usize) & (CHUNK_BYTES - 1);
            let n = (CHUNK_BYTES - off).min(data.len() - done);
            let idx = a >> CHUNK_SHIFT;
            let src = &data[done..done + n];
            if self.chunk(idx).is_some() {
                self.chunk_mut(idx)[off..off + n].copy_from_slice(src);
            } else if !crate::memory::all_zero(src) {
                // (Compared eight bytes at a time: a page back from swap
                // is mostly zeros after its few stores, so this scans far.)
                // A whole new chunk is made from the data (no zeroing
                // first: a page coming back from swap is copied once).
                let whole: Option<Box<Chunk>> = if n != CHUNK_BYTES {
                    None
                } else if let Some(mut c) = self.spare.pop() {
                    c.copy_from_slice(src);
                    Some(c)
                } else {
                    Box::<[u8]>::from(src).try_into().ok()
                };
                match whole {
                    Some(c) => {
                        self.bitmap.mark(idx);
                        let dir =
                            self.dirs[(idx >> LEAF_SHIFT) as usize].get_or_insert_with(empty_leaf);
                        dir[(idx as usize) & (LEAF_LEN - 1)] = Some(c);
                    }
                    None => self.chunk_mut(idx)[off..off + n].copy_from_slice(src),
                }
            }
            done += n;
            a += n as u64;
        }
        Ok(())
    }

    /// Reads a little-endian unsigned value of `width` bytes (1, 2, 4 or 8):
    /// how every supported format stores its page-table entries.
    #[inline]
    pub fn read_le(&self, addr: PhysAddr, width: u32) -> Result<u64, MemError> {
        debug_assert!(matches!(width, 1 | 2 | 4 | 8));
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        if off + width as usize <= CHUNK_BYTES && a + u64::from(width) <= self.size {
            // Fast path: naturally inside one chunk.
            let Some(c) = self.chunk(a >> CHUNK_SHIFT) else {
                return Ok(0);
            };
            // Fixed widths, so a page-table read is one load, not a memcpy call.
            let bytes = &c[off..off + width as usize];
            return Ok(match width {
                8 => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
                4 => u64::from(u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]))),
                _ => {
                    let mut v = [0u8; 8];
                    v[..bytes.len()].copy_from_slice(bytes);
                    u64::from_le_bytes(v)
                }
            });
        }
        self.read_le_slow(addr, width)
    }

    /// [`PhysMem::read_le`] across a chunk boundary or out of range.
    #[cold]
    #[inline(never)]
    fn read_le_slow(&self, addr: PhysAddr, width: u32) -> Result<u64, MemError> {
        let mut v = [0u8; 8];
        self.read(addr, &mut v[..width as usize])?;
        Ok(u64::from_le_bytes(v))
    }

    /// A program's store of `len` bytes at `addr`: byte `i` of the store
    /// gets byte `i % 8` of `stamp` (little-endian). Traces carry addresses,
    /// not values, so the engine writes a stamp that names the store (the
    /// process's reference number): page contents then change exactly when
    /// a program writes, as checkpoints, replay and migration must see.
    /// An access outside memory is ignored (the MMU produced `addr`).
    #[inline(always)]
    pub fn store_stamp(&mut self, addr: PhysAddr, len: u32, stamp: u64) {
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        let len = len as usize;
        if off + len <= CHUNK_BYTES {
            let idx = a >> CHUNK_SHIFT;
            if let Some(Some(leaf)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize)
                && let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)]
            {
                self.bitmap.mark(idx);
                let b = stamp.to_le_bytes();
                match len {
                    8 => c[off..off + 8].copy_from_slice(&b),
                    4 => c[off..off + 4].copy_from_slice(&b[..4]),
                    2 => c[off..off + 2].copy_from_slice(&b[..2]),
                    1 => c[off] = b[0],
                    _ => {
                        for (i, byte) in c[off..off + len].iter_mut().enumerate() {
                            *byte = b[i % 8];
                        }
                    }
                }
                return;
            }
        }
        self.store_stamp_slow(a, len, stamp);
    }

    /// [`PhysMem::store_stamp`] of a store of 1 to 8 bytes whose 8 bytes
    /// from `addr` lie in one stored chunk (and whose chunk is marked
    /// without growing the bitmap), with no call and no branch on the
    /// length: one masked read-modify-write of those 8 bytes (the bytes
    /// past the store's get their own values back). Returns false, having
    /// done nothing, for any other store ([`PhysMem::store_stamp`] does it
    /// then), so that a caller's fast path needs no call. Not part of
    /// `store_stamp` itself: its other callers (the translating paths) grew
    /// and spilled with it (zipf row +4.5M instructions).
    #[inline(always)]
    pub fn store_stamp_fast(&mut self, addr: PhysAddr, len: u32, stamp: u64) -> bool {
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        if len.wrapping_sub(1) >= 8 || off + 8 > CHUNK_BYTES {
            return false;
        }
        let idx = a >> CHUNK_SHIFT;
        let Some(Some(leaf)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize) else {
            return false;
        };
        let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)] else {
            return false;
        };
        if !self.bitmap.try_mark(idx) {
            return false;
        }
        let Some(w) = c[off..].first_chunk_mut::<8>() else {
            return false;
        };
        // Byte `i` of the store gets byte `i` of the stamp (`i < 8`).
        let mask = u64::MAX >> (64 - 8 * len);
        let old = u64::from_le_bytes(*w);
        *w = (old & !mask | stamp & mask).to_le_bytes();
        true
    }

    /// [`PhysMem::store_stamp`] out of line: for a caller whose fast path
    /// ([`PhysMem::store_stamp_fast`]) declined, so that it keeps nothing
    /// across the call.
    #[inline(never)]
    pub fn store_stamp_out(&mut self, addr: PhysAddr, len: u32, stamp: u64) {
        self.store_stamp(addr, len, stamp);
    }

    /// [`PhysMem::store_stamp`] of a store not to an owned chunk, or
    /// across chunks, or out of range.
    ///
    /// A store inside one chunk that is a shared page's buffer (the first
    /// store to a page back from swap) or not stored goes to
    /// [`PhysMem::chunk_mut`] at once: what [`PhysMem::write`] of the
    /// store's bytes does there (copy on first write, or a zeroed chunk
    /// unless the bytes are all zero, which store and mark nothing),
    /// without the byte buffer, the range check and the chunk look-ups.
    #[cold]
    #[inline(never)]
    fn store_stamp_slow(&mut self, a: u64, len: usize, stamp: u64) {
        let bytes = stamp.to_le_bytes();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        if len > 0
            && off + len <= CHUNK_BYTES
            && a.checked_add(len as u64)
                .is_some_and(|end| end <= self.size)
        {
            let idx = a >> CHUNK_SHIFT;
            // A page back from swap: its buffer in place when its own
            // (written since, see `shared_mut`), else copied first (its
            // first write), with one look-up (`store_stamp` found no owned
            // chunk there); what `chunk_mut` does to a shared chunk.
            if self.shared_count != 0
                && let Some(Some(leaf)) = self.shared.get_mut((idx >> LEAF_SHIFT) as usize)
                && let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)]
            {
                if self.loans.is_lent(idx)
                    && !self.loans.save(idx, &c[..], off, len)
                    && let Some(e) = self.loans.end(idx)
                {
                    // A lent page (`swap/loan.rs`): the words the store
                    // changes are saved first (same look-up). Past the
                    // bound the loan closes the old way (the slot's page,
                    // a copy with the records undone, waits for the
                    // kernel), and the buffer is then this memory's own.
                    let page = match e.record {
                        None => c.clone(),
                        Some(r) => undone_copy(c, r, &mut self.spare_shared),
                    };
                    self.returns.push((e.slot, e.number, page));
                }
                let c = unique_chunk(c, &mut self.spare_shared);
                self.bitmap.mark(idx);
                for (i, byte) in c[off..off + len].iter_mut().enumerate() {
                    *byte = bytes[i % 8];
                }
                return;
            }
            if self.chunk(idx).is_some() || bytes.iter().take(len).any(|&b| b != 0) {
                let c = self.chunk_mut(idx);
                for (i, byte) in c[off..off + len].iter_mut().enumerate() {
                    *byte = bytes[i % 8];
                }
            }
            return;
        }
        let mut buf = [0u8; 64];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len());
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = bytes[(done + i) % 8];
            }
            let at = a.wrapping_add(done as u64);
            if at < self.size {
                let _ = self.write(PhysAddr::new_unchecked(at), &buf[..n]);
            }
            done += n;
        }
    }

    /// The indices of every stored (once written, not since released)
    /// chunk, in increasing order.
    pub fn stored_chunk_indices(&self) -> impl Iterator<Item = u64> + '_ {
        self.dirs
            .iter()
            .zip(&self.shared)
            .enumerate()
            .flat_map(|(d, (leaf, shared))| {
                let any = leaf.is_some() || shared.is_some();
                (0..if any { LEAF_LEN } else { 0 }).filter_map(move |i| {
                    let owned = leaf.as_ref().is_some_and(|l| l[i].is_some());
                    let shared = shared.as_ref().is_some_and(|l| l[i].is_some());
                    (owned || shared).then_some(((d as u64) << LEAF_SHIFT) | i as u64)
                })
            })
    }

    /// The page of `len` bytes at `addr` as a [`SharedPage`], when that
    /// needs no copy: one whole chunk that is not stored (all zero) or is a
    /// shared page's buffer. `None` for an owned chunk, any other length or
    /// alignment, or a range outside memory (the caller copies the bytes).
    #[must_use]
    pub fn share_page(&self, addr: PhysAddr, len: u64) -> Option<SharedPage> {
        let a = addr.as_u64();
        if len != CHUNK_BYTES as u64
            || !a.is_multiple_of(CHUNK_BYTES as u64)
            || self.check(addr, len).is_err()
        {
            return None;
        }
        let idx = a >> CHUNK_SHIFT;
        if let Some(Some(dir)) = self.dirs.get((idx >> LEAF_SHIFT) as usize)
            && dir[(idx as usize) & (LEAF_LEN - 1)].is_some()
        {
            return None;
        }
        // A shared chunk may have been written since it came in (see
        // `shared_mut`), even to all zero: looked at.
        Some(match self.shared_chunk(idx) {
            Some(c) => SharedPage::new(c.clone()),
            None => SharedPage::Zero,
        })
    }

    /// The bytes of the page of `len` bytes at `addr` in place: one whole
    /// chunk that is stored (owned or shared). `None` for a chunk not
    /// stored (all zero), any other length or alignment, or a range outside
    /// memory (the caller reads a copy).
    #[must_use]
    pub fn page_in_place(&self, addr: PhysAddr, len: u64) -> Option<&[u8]> {
        let a = addr.as_u64();
        if len != CHUNK_BYTES as u64
            || !a.is_multiple_of(CHUNK_BYTES as u64)
            || self.check(addr, len).is_err()
        {
            return None;
        }
        self.chunk(a >> CHUNK_SHIFT).map(|c| &c[..])
    }

    /// Writes `page` at `addr` as [`PhysMem::write`] would write its bytes
    /// (the same chunks stored, the same marks), but a page that lands on
    /// a whole chunk not stored is kept as a reference to its buffer, not
    /// copied: the chunk is copied only before its first write.
    ///
    /// # Errors
    /// The page reaches past the end of memory.
    pub fn write_shared(&mut self, addr: PhysAddr, page: SharedPage) -> Result<(), MemError> {
        let a = addr.as_u64();
        self.check(addr, CHUNK_BYTES as u64)?;
        let idx = a >> CHUNK_SHIFT;
        if !a.is_multiple_of(CHUNK_BYTES as u64) || self.chunk(idx).is_some() {
            return self.write(addr, page.bytes());
        }
        // Not stored: an all-zero page stores nothing and marks nothing, as
        // `write` of zeros does; any other is stored (and marked).
        if let SharedPage::Bytes(c) = page {
            self.bitmap.mark(idx);
            let leaf =
                self.shared[(idx >> LEAF_SHIFT) as usize].get_or_insert_with(empty_shared_leaf);
            leaf[(idx as usize) & (LEAF_LEN - 1)] = Some(c.0);
            self.shared_count += 1;
        }
        Ok(())
    }

    /// The bytes of chunk `index` (bytes `index * 4096 ..` of memory), or
    /// `None` if it holds only zeros and is not stored.
    #[must_use]
    pub fn chunk_bytes(&self, index: u64) -> Option<&[u8; CHUNK_BYTES]> {
        self.chunk(index)
    }

    /// Number of chunks memory is divided into (the last may be partial).
    #[must_use]
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(CHUNK_BYTES as u64)
    }

    /// Sets chunk `index` to the bytes in `chunk`, taking the allocation
    /// (no copy), without marking it written; an all-zero chunk is stored
    /// as nothing, and its allocation is handed back for reuse. How a
    /// checkpoint's page data goes from the file into memory.
    ///
    /// # Errors
    /// The index is past the end of memory.
    pub fn restore_chunk_boxed(
        &mut self,
        index: u64,
        chunk: Box<[u8; CHUNK_BYTES]>,
    ) -> Result<Option<Box<[u8; CHUNK_BYTES]>>, MemError> {
        if index >= self.chunk_count() {
            return Err(MemError::OutOfRange {
                addr: index.saturating_mul(CHUNK_BYTES as u64),
                len: CHUNK_BYTES as u64,
                size: self.size,
            });
        }
        self.take_shared(index);
        let dir = &mut self.dirs[(index >> LEAF_SHIFT) as usize];
        if chunk
            .chunks_exact(64)
            .all(|c| c.iter().fold(0, |a, &x| a | x) == 0)
        {
            if let Some(leaf) = dir {
                leaf[(index as usize) & (LEAF_LEN - 1)] = None;
            }
            return Ok(Some(chunk));
        }
        let leaf = dir.get_or_insert_with(empty_leaf);
        leaf[(index as usize) & (LEAF_LEN - 1)] = Some(chunk);
        Ok(None)
    }

    /// Sets chunk `index` to `data` (`None`: all zero, stored as nothing),
    /// without marking it written: how a checkpoint puts memory back.
    ///
    /// # Errors
    /// The index is past the end of memory.
    pub fn restore_chunk(&mut self, index: u64, data: Option<&[u8]>) -> Result<(), MemError> {
        if index >= self.chunk_count() || data.is_some_and(|d| d.len() != CHUNK_BYTES) {
            return Err(MemError::OutOfRange {
                addr: index.saturating_mul(CHUNK_BYTES as u64),
                len: CHUNK_BYTES as u64,
                size: self.size,
            });
        }
        self.take_shared(index);
        let dir = &mut self.dirs[(index >> LEAF_SHIFT) as usize];
        match data {
            Some(d) if d.iter().any(|&b| b != 0) => {
                let leaf = dir.get_or_insert_with(empty_leaf);
                let slot = &mut leaf[(index as usize) & (LEAF_LEN - 1)];
                match slot {
                    Some(c) => c.copy_from_slice(d),
                    None => {
                        let mut c = Box::new([0u8; CHUNK_BYTES]);
                        c.copy_from_slice(d);
                        *slot = Some(c);
                    }
                }
            }
            _ => {
                if let Some(leaf) = dir {
                    leaf[(index as usize) & (LEAF_LEN - 1)] = None;
                }
            }
        }
        Ok(())
    }

    /// Writes the low `width` bytes (1, 2, 4 or 8) of `value`, little-endian.
    ///
    /// A page-table entry lives in a stored chunk (a table with a present
    /// entry has one), so that case is a bounds check and one store, marked
    /// as [`PhysMem::write`] marks it; anything else (a chunk never written,
    /// a write across chunks or out of range) is [`PhysMem::write`] itself,
    /// which keeps an all-zero write to a missing chunk from storing one.
    #[inline]
    pub fn write_le(&mut self, addr: PhysAddr, width: u32, value: u64) -> Result<(), MemError> {
        debug_assert!(matches!(width, 1 | 2 | 4 | 8));
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        let w = width as usize;
        if w <= 8
            && off + w <= CHUNK_BYTES
            && a.checked_add(u64::from(width))
                .is_some_and(|end| end <= self.size)
        {
            let idx = a >> CHUNK_SHIFT;
            if let Some(Some(leaf)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize)
                && let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)]
            {
                self.bitmap.mark(idx);
                let b = value.to_le_bytes();
                match w {
                    8 => c[off..off + 8].copy_from_slice(&b),
                    4 => c[off..off + 4].copy_from_slice(&b[..4]),
                    _ => c[off..off + w].copy_from_slice(&b[..w]),
                }
                return Ok(());
            }
        }
        self.write_le_slow(addr, width, value)
    }

    /// [`PhysMemory::clear_le_bits_if`]: an entry in an owned chunk (every
    /// page table's) is looked up once for the read and the write, where
    /// [`PhysMem::read_le`] then [`PhysMem::write_le`] looked it up twice;
    /// the write is marked as `write_le` marks it. Anything else (a chunk
    /// shared or not stored, an entry across chunks or out of range) is
    /// those two calls.
    ///
    /// [`PhysMemory::clear_le_bits_if`]: crate::memory::PhysMemory::clear_le_bits_if
    #[inline(always)]
    pub fn clear_le_bits_if(
        &mut self,
        addr: PhysAddr,
        mask: u64,
        value: u64,
        clear: u64,
    ) -> Result<u64, MemError> {
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        if off + 8 <= CHUNK_BYTES && a.checked_add(8).is_some_and(|end| end <= self.size) {
            let idx = a >> CHUNK_SHIFT;
            if let Some(Some(leaf)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize)
                && let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)]
            {
                let entry = &mut c[off..off + 8];
                let old = u64::from_le_bytes((&*entry).try_into().unwrap_or([0; 8]));
                if old & mask == value && old & clear != 0 {
                    self.bitmap.mark(idx);
                    entry.copy_from_slice(&(old & !clear).to_le_bytes());
                }
                return Ok(old);
            }
        }
        self.clear_le_bits_if_slow(addr, mask, value, clear)
    }

    /// [`PhysMemory::write_le_if`]: an 8-byte entry in an owned chunk (a
    /// page table with a present entry has one) is looked up once for the
    /// read and the write, where [`PhysMem::read_le`] then
    /// [`PhysMem::write_le`] looked it up twice; the write is marked as
    /// `write_le` marks it. Anything else (another width, a chunk shared or
    /// not stored, an entry across chunks or out of range) is those two
    /// calls.
    ///
    /// [`PhysMemory::write_le_if`]: crate::memory::PhysMemory::write_le_if
    #[inline(always)]
    pub fn write_le_if(
        &mut self,
        addr: PhysAddr,
        width: u32,
        mask: u64,
        value: u64,
        new: u64,
    ) -> Result<u64, MemError> {
        let a = addr.as_u64();
        let off = (a as usize) & (CHUNK_BYTES - 1);
        if width == 8
            && off + 8 <= CHUNK_BYTES
            && a.checked_add(8).is_some_and(|end| end <= self.size)
        {
            let idx = a >> CHUNK_SHIFT;
            if let Some(Some(leaf)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize)
                && let Some(c) = &mut leaf[(idx as usize) & (LEAF_LEN - 1)]
            {
                let entry = &mut c[off..off + 8];
                let old = u64::from_le_bytes((&*entry).try_into().unwrap_or([0; 8]));
                if old & mask == value {
                    self.bitmap.mark(idx);
                    entry.copy_from_slice(&new.to_le_bytes());
                }
                return Ok(old);
            }
        }
        self.write_le_if_slow(addr, width, mask, value, new)
    }

    /// [`PhysMem::write_le_if`] of an entry it cannot look up once:
    /// [`PhysMem::read_le`] then [`PhysMem::write_le`].
    #[cold]
    #[inline(never)]
    fn write_le_if_slow(
        &mut self,
        addr: PhysAddr,
        width: u32,
        mask: u64,
        value: u64,
        new: u64,
    ) -> Result<u64, MemError> {
        crate::memory::write_le_if_by_read_write(self, addr, width, mask, value, new)
    }

    /// [`PhysMem::clear_le_bits_if`] of an entry not in an owned chunk:
    /// [`PhysMem::read_le`] then [`PhysMem::write_le`].
    #[cold]
    #[inline(never)]
    fn clear_le_bits_if_slow(
        &mut self,
        addr: PhysAddr,
        mask: u64,
        value: u64,
        clear: u64,
    ) -> Result<u64, MemError> {
        crate::memory::clear_le_bits_by_read_write(self, addr, mask, value, clear)
    }

    /// [`PhysMem::write_le`] to a chunk not stored, across chunks or out of range.
    #[cold]
    #[inline(never)]
    fn write_le_slow(&mut self, addr: PhysAddr, width: u32, value: u64) -> Result<(), MemError> {
        self.write(addr, &value.to_le_bytes()[..(width as usize).min(8)])
    }

    /// Sets `[addr, addr+len)` to zero, releasing whole host chunks.
    pub fn zero(&mut self, addr: PhysAddr, len: u64) -> Result<(), MemError> {
        self.check(addr, len)?;
        let mut a = addr.as_u64();
        if len == CHUNK_BYTES as u64 && a.is_multiple_of(CHUNK_BYTES as u64) {
            // One whole chunk (a data page zeroed on allocation): one look
            // at where it is stored, not the general loop's three.
            self.release_chunk(a >> CHUNK_SHIFT);
            return Ok(());
        }
        let end = a + len;
        while a < end {
            let off = (a as usize) & (CHUNK_BYTES - 1);
            let n = ((CHUNK_BYTES - off) as u64).min(end - a) as usize;
            let idx = a >> CHUNK_SHIFT;
            if self.chunk(idx).is_some() {
                self.bitmap.mark(idx);
                // A shared page's buffer is let go of whole (no copy: the
                // swap cache keeps it), or made owned to be partly cleared.
                if n == CHUNK_BYTES
                    && let Some(c) = self.take_shared(idx)
                {
                    self.keep_spare_shared(c);
                    a += n as u64;
                    continue;
                }
                if n != CHUNK_BYTES && self.shared_chunk(idx).is_some() {
                    self.chunk_mut(idx)[off..off + n].fill(0);
                    a += n as u64;
                    continue;
                }
                if let Some(Some(dir)) = self.dirs.get_mut((idx >> LEAF_SHIFT) as usize) {
                    let slot = &mut dir[(idx as usize) & (LEAF_LEN - 1)];
                    if n == CHUNK_BYTES {
                        if let Some(c) = slot.take()
                            && self.spare.len() < SPARE_CHUNKS
                        {
                            self.spare.push(c);
                        }
                    } else if let Some(c) = slot {
                        c[off..off + n].fill(0);
                    }
                }
            }
            a += n as u64;
        }
        Ok(())
    }

    /// Chunk `idx` becomes zero, as [`PhysMem::zero`] of its whole range
    /// makes it: an owned chunk is released (kept for reuse while there is
    /// room), a shared page's buffer let go of, and either is marked
    /// written; a chunk not stored stays as it is, unmarked.
    #[inline]
    fn release_chunk(&mut self, idx: u64) {
        let owned = match self.dirs.get_mut((idx >> LEAF_SHIFT) as usize) {
            Some(Some(dir)) => dir[(idx as usize) & (LEAF_LEN - 1)].take(),
            _ => None,
        };
        match owned {
            Some(c) => {
                self.bitmap.mark(idx);
                if self.spare.len() < SPARE_CHUNKS {
                    self.spare.push(c);
                }
            }
            None => {
                if let Some(c) = self.take_shared(idx) {
                    self.bitmap.mark(idx);
                    self.keep_spare_shared(c);
                }
            }
        }
    }

    /// Keeps `c`, a shared chunk's buffer let go of, for the next copy on
    /// first write when no one else holds it and there is room.
    #[inline]
    fn keep_spare_shared(&mut self, mut c: SharedChunk) {
        if self.spare_shared.len() < SPARE_CHUNKS && Arc::get_mut(&mut c).is_some() {
            self.spare_shared.push(c);
        }
    }

    /// Takes `c` (a page buffer the swap cache no longer needs, see
    /// `SwapDevice::take_spare_page`) for the next copy on first write,
    /// when no one else holds it and there is room.
    pub fn give_spare_page(&mut self, c: SharedChunk) {
        self.keep_spare_shared(c);
    }

    /// Whether every byte of `[addr, addr+len)` is zero, looked at in place
    /// (a chunk never written is zero without a look).
    pub fn is_zero(&self, addr: PhysAddr, len: u64) -> Result<bool, MemError> {
        self.check(addr, len)?;
        let mut a = addr.as_u64();
        let end = a + len;
        while a < end {
            let off = (a as usize) & (CHUNK_BYTES - 1);
            let n = ((CHUNK_BYTES - off) as u64).min(end - a) as usize;
            if let Some(c) = self.chunk(a >> CHUNK_SHIFT)
                && !crate::memory::all_zero(&c[off..off + n])
            {
                return Ok(false);
            }
            a += n as u64;
        }
        Ok(true)
    }

    /// Copies `len` bytes from `src` to `dst` (ranges must not overlap).
    pub fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: u64) -> Result<(), MemError> {
        self.check(src, len)?;
        self.check(dst, len)?;
        let mut buf = [0u8; CHUNK_BYTES];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK_BYTES as u64);
            let s = PhysAddr::new_unchecked(src.as_u64() + done);
            let d = PhysAddr::new_unchecked(dst.as_u64() + done);
            self.read(s, &mut buf[..n as usize])?;
            self.write(d, &buf[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Loads a raw image: byte `i` of the file is physical address `i`, and
    /// the memory is exactly as large as the file.
    pub fn load_image(path: &Path) -> Result<Self, ImageError> {
        let io_err = |source| ImageError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut mem = Self::new(len).map_err(|_| ImageError::BadSize {
            path: path.display().to_string(),
            len,
        })?;
        let mut buf = vec![0u8; 1 << 20];
        let mut addr = 0u64;
        loop {
            let n = read_full(&mut file, &mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            let n = n.min((len - addr) as usize);
            mem.write(PhysAddr::new_unchecked(addr), &buf[..n])
                .map_err(|_| ImageError::BadSize {
                    path: path.display().to_string(),
                    len,
                })?;
            addr += n as u64;
            if addr >= len {
                break;
            }
        }
        Ok(mem)
    }

    /// Saves the whole memory as a raw image. The file is written beside its
    /// final name and renamed into place, so a failure never leaves a
    /// half-written image.
    pub fn save_image(&self, path: &Path) -> Result<(), ImageError> {
        let io_err = |source| ImageError::Io {
            path: path.display().to_string(),
            source,
        };
        let result = (|| {
            let tmp = vmsim_trace::output::temp_next_to(path)?;
            let mut out = BufWriter::new(tmp.as_file());
            let zeros = [0u8; CHUNK_BYTES];
            let chunks = self.size.div_ceil(CHUNK_BYTES as u64);
            for idx in 0..chunks {
                let n = (self.size - idx * CHUNK_BYTES as u64).min(CHUNK_BYTES as u64) as usize;
                match self.chunk(idx) {
                    Some(c) => out.write_all(&c[..n])?,
                    None => out.write_all(&zeros[..n])?,
                }
            }
            out.into_inner().map_err(io::IntoInnerError::into_error)?;
            vmsim_trace::output::commit(tmp, path)
        })();
        result.map_err(io_err)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(x: u64) -> PhysAddr {
        PhysAddr::new_unchecked(x)
    }

    /// Everything of a memory that `zero` and `write_lent` change, the
    /// loans' returns drained (slot, number, bytes).
    type Seen = (
        Vec<Option<Vec<u8>>>,
        (usize, usize, usize, usize, usize),
        Vec<u64>,
        Vec<(u32, u64, Vec<u8>)>,
    );

    fn seen(m: &mut PhysMem<DirtyChunks>) -> Seen {
        let chunks = (0..m.chunk_count())
            .map(|i| m.chunk_bytes(i).map(|c| c.to_vec()))
            .collect();
        let counts = (
            m.stored_chunks(),
            m.shared_chunks(),
            m.open_loans(),
            m.spare.len(),
            m.spare_shared.len(),
        );
        let marked = m.bitmap().marked();
        let mut returns = Vec::new();
        while let Some(r) = m.pop_loan_return() {
            returns.push((r.slot.index(), r.number, r.page.to_vec()));
        }
        (chunks, counts, marked, returns)
    }

    /// `write_lent_over` (the swap-in's install into a frame not zeroed)
    /// leaves memory as `zero` then `write_lent` leave it, from every state
    /// the frame's chunk can be in (nothing, owned whole or in part,
    /// shared with another holder or alone, lent with a store or without,
    /// stored neighbours) and for the ranges that take the two steps
    /// (two chunks, not at a chunk's start, past the end); and a later
    /// store and the loan's end give the same bytes back.
    #[test]
    fn write_lent_over_is_zero_then_write_lent() {
        use crate::swap::Loan;
        let page = |b: u8| -> SharedChunk { Arc::new([b; CHUNK_BYTES]) };
        let c = CHUNK_BYTES as u64;
        let size = 4 * c;
        let setup = |case: u32, m: &mut PhysMem<DirtyChunks>, keep: &mut Vec<SharedChunk>| {
            m.bitmap_mut().track(4);
            match case {
                0 => {}
                1 => m.write(pa(c), &[7; CHUNK_BYTES]).expect("owned"),
                2 => m.write(pa(c + 100), &[7; 8]).expect("owned in part"),
                3 => {
                    let p = page(9);
                    keep.push(p.clone());
                    m.write_shared(pa(c), SharedPage::new(p)).expect("shared");
                }
                4 => m
                    .write_shared(pa(c), SharedPage::new(page(9)))
                    .expect("shared alone"),
                5 | 6 => {
                    m.write_lent(pa(c), Loan::for_test(5, 50, page(3)))
                        .expect("lent");
                    if case == 5 {
                        // A store (recorded: the loan stays open).
                        m.store_stamp(pa(c + 8), 8, 0x1234);
                    }
                }
                8 => {
                    // A loan closed by a write other than a store: its
                    // buffer stays, shared, with the return queued.
                    m.write_lent(pa(c), Loan::for_test(5, 50, page(3)))
                        .expect("lent");
                    m.write_le(pa(c + 8), 8, 0x1234).expect("write");
                }
                _ => {
                    m.write(pa(0), &[1; 8]).expect("neighbour");
                    m.write_shared(pa(2 * c), SharedPage::new(page(2)))
                        .expect("neighbour");
                    m.write_shared(pa(c), SharedPage::new(page(9)))
                        .expect("shared");
                }
            }
            // Whatever the set-up marked is history.
            m.bitmap_mut().track(4);
        };
        let mut fast = Vec::new();
        for case in 0..9 {
            for (addr, len) in [(c, c), (c, 2 * c), (c + 512, c), (3 * c + 8, c)] {
                let (mut keep1, mut keep2) = (Vec::new(), Vec::new());
                let mut m1: PhysMem<DirtyChunks> = PhysMem::new(size).expect("size");
                let mut m2: PhysMem<DirtyChunks> = PhysMem::new(size).expect("size");
                setup(case, &mut m1, &mut keep1);
                setup(case, &mut m2, &mut keep2);
                let what = format!("case {case}, {len} bytes at {addr:#x}");
                assert_eq!(seen(&mut m1), seen(&mut m2), "{what}: set-up");
                if m2.defers_zero(pa(addr), len) {
                    fast.push(case);
                }
                let _ = m1.zero(pa(addr), len);
                let r1 = m1.write_lent(pa(addr), Loan::for_test(2, 20, page(0xab)));
                let r2 = m2.write_lent_over(pa(addr), len, Loan::for_test(2, 20, page(0xab)));
                assert_eq!(r1, r2, "{what}");
                assert_eq!(seen(&mut m1), seen(&mut m2), "{what}");
                for m in [&mut m1, &mut m2] {
                    if m.check(pa(addr + 16), 8).is_ok() {
                        m.store_stamp(pa(addr + 16), 8, 0x5678);
                    }
                    if let Some(r) = m.close_loan(pa(addr)) {
                        m.returns.push((r.slot, r.number, r.page));
                    }
                }
                assert_eq!(
                    seen(&mut m1),
                    seen(&mut m2),
                    "{what}: after a store and the end"
                );
            }
        }
        // At the chunk's start every case but an open loan takes the one
        // pass; no other range does.
        assert_eq!(fast, [0, 1, 2, 3, 4, 7, 8]);
    }

    #[test]
    fn unwritten_reads_zero_and_stores_nothing() {
        let m: PhysMem = PhysMem::new(1 << 30).expect("size");
        assert_eq!(m.read_le(pa(0x1234_5678), 8), Ok(0));
        assert_eq!(m.stored_chunks(), 0);
    }

    #[test]
    fn write_read_across_chunks() {
        let mut m: PhysMem = PhysMem::new(3 * 4096).expect("size");
        let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8 + 1).collect();
        m.write(pa(100), &data).expect("write");
        let mut back = vec![0u8; 6000];
        m.read(pa(100), &mut back).expect("read");
        assert_eq!(back, data);
        m.write_le(pa(4094), 4, 0xdead_beef).expect("write");
        assert_eq!(m.read_le(pa(4094), 4), Ok(0xdead_beef));
    }

    #[test]
    fn out_of_range_is_an_error() {
        let mut m: PhysMem = PhysMem::new(4096).expect("size");
        assert!(m.read_le(pa(4092), 8).is_err());
        assert!(m.write(pa(4096), &[1]).is_err());
        assert!(m.write(pa((1 << 56) - 2), &[1, 2, 3]).is_err());
        assert!(PhysMem::<()>::new(0).is_err());
        assert!(PhysMem::<()>::new(MAX_MEM_BYTES + 1).is_err());
    }

    #[test]
    fn zero_releases_chunks() {
        let mut m: PhysMem = PhysMem::new(8192).expect("size");
        m.write(pa(10), &[7; 5000]).expect("write");
        assert_eq!(m.stored_chunks(), 2);
        m.zero(pa(0), 4096).expect("zero");
        assert_eq!(m.stored_chunks(), 1);
        assert_eq!(m.read_le(pa(10), 1), Ok(0));
        assert_eq!(m.read_le(pa(4100), 1), Ok(7));
    }

    /// Zeroing one whole chunk (its own path, `release_chunk`) releases an
    /// owned chunk and a shared one, marking each, and leaves a chunk never
    /// stored unmarked, as the general loop does; other ranges are left
    /// alone.
    #[test]
    fn zeroing_a_whole_chunk_releases_it_and_marks_only_a_stored_one() {
        use crate::shared_page::SharedPage;
        use std::sync::Arc;
        let mut m: PhysMem<DirtyChunks> = PhysMem::new(4 * 4096).expect("size");
        m.write(pa(4096), &[7; 4096]).expect("owned");
        m.write_shared(pa(2 * 4096), SharedPage::new(Arc::new([9; CHUNK_BYTES])))
            .expect("shared");
        m.write(pa(3 * 4096 + 8), &[5; 8]).expect("neighbour");
        assert_eq!((m.stored_chunks(), m.shared_chunks()), (3, 1));
        m.bitmap_mut().take();
        for c in 0..3u64 {
            m.zero(pa(c * 4096), 4096).expect("zero");
        }
        assert_eq!((m.stored_chunks(), m.shared_chunks()), (1, 0));
        assert_eq!(m.bitmap_mut().take(), vec![1, 2]);
        assert!(m.is_zero(pa(0), 3 * 4096).expect("in range"));
        assert_eq!(m.read_le(pa(3 * 4096 + 8), 1), Ok(5));
        // A released chunk is reused zeroed.
        m.write(pa(4096 + 100), &[1]).expect("store");
        assert_eq!(m.read_le(pa(4096), 8), Ok(0));
        assert_eq!(m.read_le(pa(4096 + 100), 1), Ok(1));
        assert!(m.zero(pa(3 * 4096), 4097).is_err());
    }

    #[test]
    fn dirty_tracking() {
        let mut m: PhysMem<DirtyChunks> = PhysMem::new(1 << 20).expect("size");
        m.write_le(pa(0x5000), 8, 1).expect("write");
        m.write_le(pa(0x9ff8), 8, 1).expect("write");
        assert_eq!(m.bitmap_mut().take(), vec![5, 9]);
        assert!(m.bitmap_mut().take().is_empty());
    }

    /// A store to a stored chunk past the end of the dirty bitmap (a chunk
    /// restored, never written) grows the bitmap and marks the chunk: the
    /// store's fast path (`store_stamp_fast`, which takes only what needs
    /// no growth) leaves it to the general one (`store_stamp`). Every length the fast path
    /// takes, each byte where it belongs, the bytes around unchanged.
    #[test]
    fn store_to_a_chunk_past_the_bitmap_marks_it() {
        for len in 1..=8u32 {
            let mut m: PhysMem<DirtyChunks> = PhysMem::new(1 << 20).expect("size");
            m.restore_chunk(200, Some(&[0xee; CHUNK_BYTES]))
                .expect("restore");
            assert!(m.bitmap_mut().take().is_empty());
            let at = 200 * CHUNK_BYTES as u64 + 0x10;
            if !m.store_stamp_fast(pa(at), len, 0x0807_0605_0403_0201) {
                m.store_stamp(pa(at), len, 0x0807_0605_0403_0201);
            }
            assert_eq!(m.bitmap_mut().take(), vec![200], "len {len}");
            let mut got = [0u8; 10];
            m.read(pa(at - 1), &mut got).expect("read");
            let mut want = [0xee; 10];
            for i in 0..len as usize {
                want[1 + i] = i as u8 + 1;
            }
            assert_eq!(got, want, "len {len}");
        }
    }

    /// `write_le`'s in-chunk fast path stores and marks exactly what the
    /// general `write` does: every width, a stored and a missing chunk, a
    /// zero value to a missing chunk (nothing stored, nothing marked), the
    /// last bytes of memory, and out of range.
    #[test]
    fn write_le_matches_write() {
        for width in [1u32, 2, 4, 8] {
            for (at, value) in [
                (0x1000u64, 0u64),
                (0x1ff8, 0x1122_3344_5566_7788),
                (0x3ffc, 7),
            ] {
                let mut fast: PhysMem<DirtyChunks> = PhysMem::new(0x4000).expect("size");
                let mut slow: PhysMem<DirtyChunks> = PhysMem::new(0x4000).expect("size");
                for pass in 0..2u64 {
                    let a = pa(at + pass * 8);
                    let fr = fast.write_le(a, width, value + pass);
                    let bytes = (value + pass).to_le_bytes();
                    let sr = slow.write(a, &bytes[..width as usize]);
                    assert_eq!(fr, sr, "width {width} at {at:#x}");
                    assert_eq!(fast.stored_chunks(), slow.stored_chunks());
                    assert_eq!(fast.bitmap_mut().take(), slow.bitmap_mut().take());
                    assert_eq!(fast.read_le(a, width), slow.read_le(a, width));
                }
                // A stored chunk takes a zero in place.
                slow.write(pa(0x2000), &[9]).expect("write");
                fast.write(pa(0x2000), &[9]).expect("write");
                fast.write_le(pa(0x2010), width, 0).expect("write");
                slow.write(pa(0x2010), &0u64.to_le_bytes()[..width as usize])
                    .expect("write");
                assert_eq!(fast.stored_chunks(), slow.stored_chunks());
                assert_eq!(fast.bitmap_mut().take(), slow.bitmap_mut().take());
            }
            let mut m: PhysMem = PhysMem::new(0x1000).expect("size");
            m.write(pa(0), &[1]).expect("write");
            assert!(
                m.write_le(pa(0x1000 - u64::from(width) + 1), width, 1)
                    .is_err()
            );
            assert!(m.write_le(pa(0x1000), width, 1).is_err());
            assert_eq!(m.write_le(pa(0x1000 - u64::from(width)), width, 5), Ok(()));
            assert_eq!(m.read_le(pa(0x1000 - u64::from(width)), width), Ok(5));
        }
    }

    /// `clear_le_bits_if`'s one look-up (an owned chunk) and its fallback
    /// (a shared chunk, a chunk not stored, an entry across chunks, out of
    /// range) against `read_le` then `write_le` on a copy of the memory,
    /// and the trait's default (a byte vector) likewise: the same entry
    /// returned, the same bytes, stored chunks and marks after, for
    /// entries that pass the test or not, with the bits to clear set or
    /// not.
    #[test]
    fn write_le_if_is_read_then_write() {
        use crate::memory::PhysMemory;
        const MASK: u64 = 1;
        const VALUE: u64 = 0;
        const NEW: u64 = 0x8000_0000_0abc_d067;
        let entries = [
            0u64,                  // empty: written
            0x1234_5000,           // not present, other bits: written
            0x1234_5001,           // present: nothing written
            0x8000_0000_1234_5021, // present: nothing written
        ];
        let mut fresh: PhysMem<DirtyChunks> = PhysMem::new(0x5000).expect("size");
        fresh.write(pa(0x1000), &[3]).expect("write"); // owned
        fresh
            .write_shared(pa(0x2000), SharedPage::new(Arc::new([7; CHUNK_BYTES])))
            .expect("write"); // shared
        fresh.bitmap_mut().take();
        for raw in entries {
            for width in [8u32, 4] {
                // Owned, shared, not stored, across chunks, last in memory,
                // out of range.
                for at in [0x1008u64, 0x2010, 0x3000, 0x1ffc, 0x4ff8, 0x4ffc, 0x5000] {
                    let mut fast = fresh.clone();
                    let mut slow = fresh.clone();
                    let a = pa(at);
                    if at + u64::from(width) <= 0x5000 {
                        fast.write_le(a, width, raw).expect("in range");
                        slow.write_le(a, width, raw).expect("in range");
                        fast.bitmap_mut().take();
                        slow.bitmap_mut().take();
                    }
                    let got = PhysMemory::write_le_if(&mut fast, a, width, MASK, VALUE, NEW);
                    let want = slow.read_le(a, width).and_then(|old| {
                        if old & MASK == VALUE {
                            slow.write_le(a, width, NEW)?;
                        }
                        Ok(old)
                    });
                    let case = format!("{raw:#x} at {at:#x}, {width} bytes");
                    assert_eq!(got, want, "{case}");
                    assert_eq!(fast.stored_chunks(), slow.stored_chunks(), "{case}");
                    assert_eq!(fast.shared_chunks(), slow.shared_chunks(), "{case}");
                    assert_eq!(fast.bitmap_mut().take(), slow.bitmap_mut().take(), "{case}");
                    let mut fb = vec![0u8; 0x5000];
                    let mut sb = vec![0u8; 0x5000];
                    fast.read(pa(0), &mut fb).expect("read");
                    slow.read(pa(0), &mut sb).expect("read");
                    assert!(fb == sb, "{case}: bytes differ");
                    // The trait's default, on a byte vector.
                    let mut v = sb.clone();
                    let mut w = sb;
                    let got = v.write_le_if(a, width, MASK, VALUE, NEW);
                    let want = w.read_le(a, width).and_then(|old| {
                        if old & MASK == VALUE {
                            w.write_le(a, width, NEW)?;
                        }
                        Ok(old)
                    });
                    assert_eq!(got, want, "{case}");
                    assert!(v == w, "{case}: the default's bytes differ");
                }
            }
        }
    }

    #[test]
    fn clear_le_bits_if_is_read_then_write() {
        use crate::memory::PhysMemory;
        const MASK: u64 = 0x8000_0000_0000_0001;
        const VALUE: u64 = 1;
        const CLEAR: u64 = 0x20;
        let entries = [
            0x1234_5021u64,        // passes, A set: cleared
            0x1234_5001,           // passes, A clear: nothing written
            0x8000_0000_1234_5021, // fails the test: nothing written
            0x1234_5020,           // fails the test: nothing written
            0,
        ];
        let mut fresh: PhysMem<DirtyChunks> = PhysMem::new(0x5000).expect("size");
        fresh.write(pa(0x1000), &[3]).expect("write"); // owned
        fresh
            .write_shared(pa(0x2000), SharedPage::new(Arc::new([7; CHUNK_BYTES])))
            .expect("write"); // shared
        fresh.bitmap_mut().take();
        for raw in entries {
            // Owned, shared, not stored, across chunks, last in memory,
            // out of range.
            for at in [0x1008u64, 0x2010, 0x3000, 0x1ffc, 0x4ff8, 0x4ffc, 0x5000] {
                let mut fast = fresh.clone();
                let mut slow = fresh.clone();
                let a = pa(at);
                if at + 8 <= 0x5000 {
                    fast.write_le(a, 8, raw).expect("in range");
                    slow.write_le(a, 8, raw).expect("in range");
                    fast.bitmap_mut().take();
                    slow.bitmap_mut().take();
                }
                let got = PhysMemory::clear_le_bits_if(&mut fast, a, MASK, VALUE, CLEAR);
                let want = slow.read_le(a, 8).and_then(|old| {
                    if old & MASK == VALUE && old & CLEAR != 0 {
                        slow.write_le(a, 8, old & !CLEAR)?;
                    }
                    Ok(old)
                });
                assert_eq!(got, want, "{raw:#x} at {at:#x}");
                assert_eq!(
                    fast.stored_chunks(),
                    slow.stored_chunks(),
                    "{raw:#x} at {at:#x}"
                );
                assert_eq!(
                    fast.shared_chunks(),
                    slow.shared_chunks(),
                    "{raw:#x} at {at:#x}"
                );
                assert_eq!(
                    fast.bitmap_mut().take(),
                    slow.bitmap_mut().take(),
                    "{raw:#x} at {at:#x}"
                );
                let mut fb = vec![0u8; 0x5000];
                let mut sb = vec![0u8; 0x5000];
                fast.read(pa(0), &mut fb).expect("read");
                slow.read(pa(0), &mut sb).expect("read");
                assert!(fb == sb, "{raw:#x} at {at:#x}: bytes differ");
                // The trait's default, on a byte vector.
                let mut v = sb.clone();
                let mut w = sb;
                let got = v.clear_le_bits_if(a, MASK, VALUE, CLEAR);
                let want = w.read_le(a, 8).and_then(|old| {
                    if old & MASK == VALUE && old & CLEAR != 0 {
                        w.write_le(a, 8, old & !CLEAR)?;
                    }
                    Ok(old)
                });
                assert_eq!(got, want, "vector: {raw:#x} at {at:#x}");
                assert!(v == w, "vector: {raw:#x} at {at:#x}");
            }
        }
    }

    #[test]
    fn image_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mem.bin");
        let mut m: PhysMem = PhysMem::new(10_000).expect("size");
        m.write(pa(9_990), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
            .expect("write");
        m.save_image(&path).expect("save");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 10_000);
        let back: PhysMem = PhysMem::load_image(&path).expect("load");
        assert_eq!(back.size(), 10_000);
        assert_eq!(back.read_le(pa(9_992), 1), Ok(3));
        assert_eq!(back.stored_chunks(), 1);
    }

    /// A program's store that is the first to a page back from swap (a
    /// shared buffer) or to a page never written takes `store_stamp`'s
    /// slow path straight to the chunk: it must store, mark and copy as
    /// `write` of the same bytes does (an all-zero store to a page not
    /// stored stores and marks nothing), and leave the shared buffer as
    /// it was.
    #[test]
    fn a_first_store_to_a_shared_or_missing_chunk_is_what_write_makes() {
        use crate::shared_page::SharedPage;
        use std::sync::Arc;
        let mut page = [0u8; CHUNK_BYTES];
        page[0] = 7;
        page[CHUNK_BYTES - 1] = 9;
        let stores = [
            (0x1008, 8),
            (0x1003, 3),
            (0x1ffa, 6),
            (0x1ffe, 4),
            (0x2010, 16),
            (0x2fff, 1),
            (0x3ffc, 4),
            (0x3ffe, 4),
        ];
        for stamp in [0u64, 0x100, 0x1122_3344_5566_7788] {
            for (at, len) in stores {
                let mut fast: PhysMem<DirtyChunks> = PhysMem::new(0x4000).expect("size");
                let mut slow: PhysMem<DirtyChunks> = PhysMem::new(0x4000).expect("size");
                // Chunk 1 came back from swap; chunks 2 and 3 are not stored.
                let pg = SharedPage::new(Arc::new(page));
                fast.write_shared(pa(0x1000), pg.clone()).expect("in range");
                slow.write(pa(0x1000), pg.bytes()).expect("in range");
                fast.bitmap_mut().take();
                slow.bitmap_mut().take();
                fast.store_stamp(pa(at), len, stamp);
                let b = stamp.to_le_bytes();
                let data: Vec<u8> = (0..len as usize).map(|i| b[i % 8]).collect();
                // (Past the end: nothing written, as the store ignores it.)
                let _ = slow.write(pa(at), &data);
                same(&mut fast, &mut slow).expect("the store is the write");
                assert_eq!(&pg.bytes()[..], &page[..], "the shared buffer is untouched");
                // The written page keeps a buffer of its own, still held by
                // reference count (to be handed to the swap cache as it is).
                assert_eq!(fast.shared_chunks(), 1);
                // A second store goes to that buffer in place.
                fast.store_stamp(pa(at), len, !stamp);
                let b = (!stamp).to_le_bytes();
                let data: Vec<u8> = (0..len as usize).map(|i| b[i % 8]).collect();
                let _ = slow.write(pa(at), &data);
                same(&mut fast, &mut slow).expect("the second store is the write");
                assert_eq!(&pg.bytes()[..], &page[..], "the shared buffer is untouched");
            }
        }
    }

    /// One step of the shared-page model test.
    #[derive(Debug, Clone)]
    enum Op {
        /// A page of the pool comes back from swap into chunk `c`.
        SwapIn(usize, usize),
        /// Chunk `c` goes out to swap (joins the pool).
        SwapOut(usize),
        /// A program's store.
        Store(u64, u32, u64),
        /// A page-table entry written.
        WriteLe(u64, u32, u64),
        /// Bytes written at an address (may cross chunks).
        Write(u64, u16, u8),
        /// A range cleared (a whole chunk: a frame dropped or allocated).
        Zero(u64, u16),
        /// Bytes and entries read, and zero checks.
        Read(u64, u16),
        /// A checkpoint: what is stored and what was written since.
        Checkpoint,
        /// A checkpoint restores chunk `c` (`None`: zero).
        Restore(usize, Option<u8>),
        /// The memory is copied and the copy goes on.
        Clone,
        /// Memory is given a spare buffer (filled with this byte), a new
        /// one or (`true`) one of the pool's.
        Spare(u8, bool),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let at = 0..MODEL_BYTES + 16;
        prop_oneof![
            5 => (0..MODEL_CHUNKS + 1, any::<usize>()).prop_map(|(c, p)| Op::SwapIn(c, p)),
            3 => (0..MODEL_CHUNKS + 1).prop_map(Op::SwapOut),
            6 => (at.clone(), prop::sample::select(vec![1u32, 2, 4, 8, 3, 5, 6, 7, 16]), any::<u64>())
                .prop_map(|(a, l, v)| Op::Store(a, l, v)),
            2 => (at.clone(), prop::sample::select(vec![1u32, 2, 4, 8]), any::<u64>())
                .prop_map(|(a, w, v)| Op::WriteLe(a, w, v)),
            2 => (at.clone(), 0u16..5000, any::<u8>()).prop_map(|(a, n, v)| Op::Write(a, n, v)),
            3 => (prop_oneof![
                    (0..MODEL_CHUNKS as u64 + 1).prop_map(|c| c * CHUNK_BYTES as u64),
                    at.clone()
                ], prop_oneof![Just(4096u16), 0u16..5000])
                .prop_map(|(a, n)| Op::Zero(a, n)),
            4 => (at, 0u16..5000).prop_map(|(a, n)| Op::Read(a, n)),
            2 => Just(Op::Checkpoint),
            1 => (0..MODEL_CHUNKS + 1, proptest::option::of(any::<u8>()))
                .prop_map(|(c, v)| Op::Restore(c, v)),
            1 => Just(Op::Clone),
            2 => (any::<u8>(), any::<bool>()).prop_map(|(v, p)| Op::Spare(v, p)),
        ]
    }

    /// Whole chunks in the model, and a partial one after them.
    const MODEL_CHUNKS: usize = 6;
    const MODEL_BYTES: u64 = MODEL_CHUNKS as u64 * CHUNK_BYTES as u64 + 100;

    fn same(
        fast: &mut PhysMem<DirtyChunks>,
        slow: &mut PhysMem<DirtyChunks>,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(fast.stored_chunks(), slow.stored_chunks());
        let (f, s): (Vec<u64>, Vec<u64>) = (
            fast.stored_chunk_indices().collect(),
            slow.stored_chunk_indices().collect(),
        );
        proptest::prop_assert_eq!(&f, &s);
        for i in 0..fast.chunk_count() {
            proptest::prop_assert_eq!(fast.chunk_bytes(i), slow.chunk_bytes(i));
        }
        proptest::prop_assert_eq!(fast.bitmap_mut().take(), slow.bitmap_mut().take());
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(96))]

        /// Memory that takes swapped-in pages as shared buffers (and hands
        /// them out again) reads, stores, marks and checkpoints exactly as
        /// memory given copies of the same bytes, whatever the order of
        /// swap-ins, stores, drops, restores and copies.
        #[test]
        fn shared_pages_behave_as_copies(ops in proptest::collection::vec(op(), 1..80)) {
            use crate::shared_page::SharedPage;
            use std::sync::Arc;
            let mut fast: PhysMem<DirtyChunks> = PhysMem::new(MODEL_BYTES).expect("size");
            let mut slow: PhysMem<DirtyChunks> = PhysMem::new(MODEL_BYTES).expect("size");
            let mut page = [0u8; CHUNK_BYTES];
            page[CHUNK_BYTES - 1] = 1;
            let mut pool = vec![
                SharedPage::Zero,
                SharedPage::new(Arc::new(page)),
                SharedPage::new(Arc::new([0x5a; CHUNK_BYTES])),
            ];
            // What each page of the pool held when it joined it.
            let mut pool_bytes: Vec<Vec<u8>> = pool.iter().map(|p| p.bytes().to_vec()).collect();
            for op in ops {
                match op {
                    Op::SwapIn(c, p) => {
                        let a = pa(c as u64 * CHUNK_BYTES as u64);
                        let pg = pool[p % pool.len()].clone();
                        let s = slow.write(a, pg.bytes());
                        proptest::prop_assert_eq!(fast.write_shared(a, pg), s);
                    }
                    Op::SwapOut(c) => {
                        let a = pa(c as u64 * CHUNK_BYTES as u64);
                        let mut want = [0u8; CHUNK_BYTES];
                        let r = slow.read(a, &mut want);
                        let got = fast.share_page(a, CHUNK_BYTES as u64);
                        if r.is_ok() {
                            // In place exactly when stored (owned or shared),
                            // holding what a read copies.
                            let inplace = fast.page_in_place(a, CHUNK_BYTES as u64);
                            proptest::prop_assert_eq!(inplace.is_some(), fast.chunk(c as u64).is_some());
                            if let Some(b) = inplace {
                                proptest::prop_assert_eq!(b, &want[..]);
                            }
                        }
                        if r.is_ok() {
                            // Shared unless the chunk is an owned one.
                            let owned = fast.shared_chunk(c as u64).is_none()
                                && fast.chunk(c as u64).is_some();
                            proptest::prop_assert_eq!(got.is_none(), owned);
                        }
                        match got {
                            Some(p) => {
                                proptest::prop_assert_eq!(&p.bytes()[..], &want[..]);
                                // Bytes only when not all zero, as the
                                // swap cache relies on.
                                proptest::prop_assert_eq!(
                                    matches!(p, SharedPage::Zero),
                                    want.iter().all(|&b| b == 0)
                                );
                                pool_bytes.push(want.to_vec());
                                pool.push(p);
                            }
                            None if r.is_ok() => {
                                let mut copy = [0u8; CHUNK_BYTES];
                                fast.read(a, &mut copy).expect("in range");
                                proptest::prop_assert_eq!(&copy[..], &want[..]);
                                pool_bytes.push(copy.to_vec());
                                pool.push(SharedPage::new(Arc::new(copy)));
                            }
                            None => {}
                        }
                    }
                    Op::Store(a, l, v) => {
                        if a + u64::from(l) <= MODEL_BYTES {
                            // As the span loop's stores write it: the fast
                            // path, else the general one.
                            if !fast.store_stamp_fast(pa(a), l, v) {
                                fast.store_stamp(pa(a), l, v);
                            }
                            // The reference: byte `i` of the store is byte
                            // `i % 8` of the stamp, written as plain bytes
                            // (not through `store_stamp`'s fast paths).
                            let b = v.to_le_bytes();
                            let data: Vec<u8> = (0..l as usize).map(|i| b[i % 8]).collect();
                            slow.write(pa(a), &data).expect("in range");
                        }
                    }
                    Op::WriteLe(a, w, v) => {
                        proptest::prop_assert_eq!(fast.write_le(pa(a), w, v), slow.write_le(pa(a), w, v));
                    }
                    Op::Write(a, n, v) => {
                        let data: Vec<u8> = (0..n).map(|i| v.wrapping_add(i as u8)).collect();
                        proptest::prop_assert_eq!(fast.write(pa(a), &data), slow.write(pa(a), &data));
                    }
                    Op::Zero(a, n) => {
                        proptest::prop_assert_eq!(
                            fast.zero(pa(a), u64::from(n)),
                            slow.zero(pa(a), u64::from(n))
                        );
                    }
                    Op::Read(a, n) => {
                        let (mut x, mut y) = (vec![0u8; n as usize], vec![0u8; n as usize]);
                        proptest::prop_assert_eq!(fast.read(pa(a), &mut x), slow.read(pa(a), &mut y));
                        proptest::prop_assert_eq!(x, y);
                        proptest::prop_assert_eq!(fast.read_le(pa(a), 8), slow.read_le(pa(a), 8));
                        proptest::prop_assert_eq!(
                            fast.is_zero(pa(a), u64::from(n)),
                            slow.is_zero(pa(a), u64::from(n))
                        );
                    }
                    Op::Checkpoint => same(&mut fast, &mut slow)?,
                    Op::Restore(c, v) => {
                        let data = v.map(|v| [v; CHUNK_BYTES]);
                        proptest::prop_assert_eq!(
                            fast.restore_chunk(c as u64, data.as_ref().map(|d| &d[..])),
                            slow.restore_chunk(c as u64, data.as_ref().map(|d| &d[..]))
                        );
                        if let Some(d) = data {
                            let f = fast.restore_chunk_boxed(c as u64, Box::new(d)).map(|b| b.is_some());
                            let s = slow.restore_chunk_boxed(c as u64, Box::new(d)).map(|b| b.is_some());
                            proptest::prop_assert_eq!(f, s);
                        }
                    }
                    Op::Clone => {
                        fast = fast.clone();
                        slow = slow.clone();
                    }
                    Op::Spare(v, from_pool) => {
                        // A buffer someone else holds must not be filled;
                        // a new one is, wholly, at the next copy.
                        let held = pool.iter().rev().find_map(|p| match p {
                            SharedPage::Bytes(c) if from_pool => Some(c.get().clone()),
                            _ => None,
                        });
                        fast.give_spare_page(held.unwrap_or_else(|| Arc::new([v; CHUNK_BYTES])));
                    }
                }
            }
            same(&mut fast, &mut slow)?;
            // No page of the pool was changed by the stores: buffers handed
            // out (and in) are read-only while someone else holds them.
            for (p, b) in pool.iter().zip(&pool_bytes) {
                proptest::prop_assert_eq!(&p.bytes()[..], &b[..]);
            }
        }
    }
}
