//! The course's free list: free frames chained through links stored inside
//! the free frames themselves.
//!
//! # Layout in simulated memory
//!
//! The first 8 bytes of every frame on the list hold, little endian, the
//! frame number of the next free frame **plus one**; `0` ends the list. The
//! head is kept by the allocator (as a kernel keeps it in a variable). The
//! rest of a free frame is left as its last owner wrote it. So a memory dump
//! shows the chain exactly as the course draws it, and a program that writes
//! into a frame after freeing it (a use-after-free) corrupts the chain, which
//! the next allocation detects.
//!
//! # Frames never handed out
//!
//! Writing a link into every frame up front would make every frame of a
//! sparse [`PhysMem`] real host memory. [`FreeList::new`] therefore keeps a
//! *frontier*: frames at or above it have never been allocated and are free
//! without a link; allocation takes the chain first, then the frontier.
//! [`FreeList::threaded`] writes every link up front instead (frame `i` links
//! to `i + 1`), for small memories whose dump should show the whole chain.
//!
//! # Zeroing
//!
//! A frame's old contents must not leak to its next owner. [`FreeList::pop`]
//! hands the frame out as it is (its first word still holds the stale link);
//! [`FreeList::alloc_zeroed`] and the [`FrameAllocator`] adapter zero it, as
//! a kernel does before mapping a frame into a process, which overwrites the
//! link word too.
//!
//! # Checks
//!
//! The allocator keeps one bit per frame ("on the list", like the `PG_buddy`
//! flag of Linux's `struct page`), never consulted to find a frame, only to
//! refuse a double free and to validate each link read from memory.

use thiserror::Error;

use crate::addr::{PageSize, Pfn, PhysAddr};
use crate::memory::PhysMemory;
use crate::phys::MemError;

use super::FrameAllocator;

/// Bytes of the link word at the start of each free frame.
pub const LINK_BYTES: u64 = 8;

/// A free-list operation that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FreeListError {
    /// Frames smaller than the link word.
    #[error("frames of {0} cannot hold the 8-byte free-list link")]
    FrameTooSmall(PageSize),
    /// A region of zero frames, or one whose end overflows.
    #[error("free-list region of {count} frames at pfn {first:#x} is empty or overflows")]
    BadRegion {
        /// First frame.
        first: u64,
        /// Number of frames.
        count: u64,
    },
    /// The region is not inside the memory passed in.
    #[error("free-list frames do not fit in physical memory: {0}")]
    Mem(#[from] MemError),
    /// The frame is not an allocated frame of this list (double free, or
    /// outside the region).
    #[error("frame {0:#x} is not an allocated frame of this free list")]
    NotAllocated(u64),
    /// A link read from a free frame does not name a free frame of the
    /// region: something wrote into a free frame.
    #[error("free list corrupt: free frame {frame:#x} links to {link:#x} (next frame + 1)")]
    Corrupt {
        /// The free frame whose link is wrong.
        frame: u64,
        /// The link word found there.
        link: u64,
    },
}

/// A free list of single frames linked through the frames themselves (see
/// the module docs for the layout).
#[derive(Debug, Clone)]
pub struct FreeList {
    frame_size: PageSize,
    first: u64,
    count: u64,
    /// Head of the chain: frame number + 1, 0 = empty (the same encoding as
    /// the links in memory).
    head: u64,
    /// Frames on the chain.
    linked: u64,
    /// Offsets `>= fresh` have never been handed out and are free unlinked.
    fresh: u64,
    /// One bit per frame offset: on the chain.
    on_list: Vec<u64>,
}

impl FreeList {
    /// A free list of `count` frames from `first`, all free; links are
    /// written only as frames are freed (see "Frames never handed out").
    pub fn new<M: PhysMemory + ?Sized>(
        mem: &M,
        frame_size: PageSize,
        first: Pfn,
        count: u64,
    ) -> Result<Self, FreeListError> {
        if frame_size.bytes() < LINK_BYTES {
            return Err(FreeListError::FrameTooSmall(frame_size));
        }
        let f = first.as_u64();
        let bad = FreeListError::BadRegion { first: f, count };
        let end = f.checked_add(count).ok_or(bad.clone())?;
        if count == 0
            || end.checked_mul(frame_size.bytes()).is_none()
            || count > usize::MAX as u64 / 2
        {
            return Err(bad);
        }
        mem.check(first.base(frame_size), count * frame_size.bytes())?;
        Ok(Self {
            frame_size,
            first: f,
            count,
            head: 0,
            linked: 0,
            fresh: 0,
            on_list: vec![0; count.div_ceil(64) as usize],
        })
    }

    /// Like [`Self::new`], but writes the whole chain now: frame `first`
    /// links to `first + 1`, and so on; the last frame ends the list.
    pub fn threaded<M: PhysMemory + ?Sized>(
        mem: &mut M,
        frame_size: PageSize,
        first: Pfn,
        count: u64,
    ) -> Result<Self, FreeListError> {
        let mut list = Self::new(mem, frame_size, first, count)?;
        for i in (0..count).rev() {
            list.link(mem, i)?;
        }
        list.fresh = count;
        Ok(list)
    }

    /// The first frame of the chain, if any (the frontier is not on it).
    #[must_use]
    pub fn head(&self) -> Option<Pfn> {
        self.head.checked_sub(1).map(Pfn::new)
    }

    /// Frames never handed out, free without a link.
    #[must_use]
    pub fn unlinked_frames(&self) -> u64 {
        self.count - self.fresh
    }

    /// Checks that `mem` covers the region: then no memory access of this
    /// list can fail.
    pub fn check_mem<M: PhysMemory + ?Sized>(&self, mem: &M) -> Result<(), FreeListError> {
        mem.check(
            Pfn::new(self.first).base(self.frame_size),
            self.count * self.frame_size.bytes(),
        )?;
        Ok(())
    }

    /// This list together with the memory its links live in, as a [`FrameAllocator`].
    pub fn bind<'a, M: PhysMemory + ?Sized>(
        &'a mut self,
        mem: &'a mut M,
    ) -> Result<FreeListIn<'a, M>, FreeListError> {
        self.check_mem(mem)?;
        Ok(FreeListIn { list: self, mem })
    }

    #[inline]
    fn bit(&self, i: u64) -> bool {
        self.on_list[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    #[inline]
    fn set_bit(&mut self, i: u64, on: bool) {
        let w = &mut self.on_list[(i / 64) as usize];
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }

    #[inline]
    fn addr(&self, i: u64) -> PhysAddr {
        Pfn::new(self.first + i).base(self.frame_size)
    }

    /// Puts frame offset `i` at the head of the chain, writing its link.
    fn link<M: PhysMemory + ?Sized>(&mut self, mem: &mut M, i: u64) -> Result<(), FreeListError> {
        mem.write_le(self.addr(i), LINK_BYTES as u32, self.head)?;
        self.head = self.first + i + 1;
        self.linked += 1;
        self.set_bit(i, true);
        Ok(())
    }

    /// Whether `pfn` is free (on the chain or never handed out).
    #[must_use]
    pub fn is_free(&self, pfn: Pfn) -> bool {
        pfn.as_u64()
            .checked_sub(self.first)
            .is_some_and(|i| i < self.count && (i >= self.fresh || self.bit(i)))
    }

    /// Takes a free frame without clearing it: its first word still holds the
    /// stale link and the rest what its last owner left. `Ok(None)` when no
    /// frame is free.
    pub fn pop<M: PhysMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<Pfn>, FreeListError> {
        let Some(pfn) = self.head.checked_sub(1) else {
            if self.fresh < self.count {
                self.fresh += 1;
                return Ok(Some(Pfn::new(self.first + self.fresh - 1)));
            }
            return Ok(None);
        };
        let i = pfn - self.first;
        let link = mem.read_le(self.addr(i), LINK_BYTES as u32)?;
        let corrupt = FreeListError::Corrupt { frame: pfn, link };
        // The link must be 0 exactly when this is the last linked frame, and
        // otherwise name another frame on the chain.
        if link == 0 {
            if self.linked != 1 {
                return Err(corrupt);
            }
        } else {
            let next = link - 1;
            match next.checked_sub(self.first) {
                Some(j) if j < self.count && j != i && self.bit(j) && self.linked > 1 => {}
                _ => return Err(corrupt),
            }
        }
        self.head = link;
        self.linked -= 1;
        self.set_bit(i, false);
        Ok(Some(Pfn::new(pfn)))
    }

    /// Takes a free frame and zeroes it (overwriting the link word), so
    /// nothing of its last owner is visible to the next.
    pub fn alloc_zeroed<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
    ) -> Result<Option<Pfn>, FreeListError> {
        let got = self.pop(mem)?;
        if let Some(pfn) = got {
            mem.zero(pfn.base(self.frame_size), self.frame_size.bytes())?;
        }
        Ok(got)
    }

    /// Returns an allocated frame: writes the current head into its first
    /// word and makes it the head.
    pub fn push<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        pfn: Pfn,
    ) -> Result<(), FreeListError> {
        let p = pfn.as_u64();
        match p.checked_sub(self.first) {
            Some(i) if i < self.fresh && !self.bit(i) => self.link(mem, i),
            _ => Err(FreeListError::NotAllocated(p)),
        }
    }

    /// The chain as stored in memory, from the head: follows the links,
    /// stopping at the end, at a link outside the region, or after as many
    /// steps as frames are linked (so a corrupt cycle cannot loop forever).
    pub fn chain<'m, M: PhysMemory + ?Sized>(&self, mem: &'m M) -> impl Iterator<Item = Pfn> + 'm {
        let (first, end, size) = (self.first, self.first + self.count, self.frame_size);
        let mut cur = self.head;
        let mut left = self.linked;
        std::iter::from_fn(move || {
            let p = cur.checked_sub(1)?;
            if left == 0 || p < first || p >= end {
                return None;
            }
            left -= 1;
            cur = mem
                .read_le(Pfn::new(p).base(size), LINK_BYTES as u32)
                .unwrap_or(0);
            Some(Pfn::new(p))
        })
    }

    /// The size of one frame.
    #[must_use]
    pub fn frame_size(&self) -> PageSize {
        self.frame_size
    }

    /// Total frames managed.
    #[must_use]
    pub fn total_frames(&self) -> u64 {
        self.count
    }

    /// Frames currently free.
    #[must_use]
    pub fn free_frames(&self) -> u64 {
        self.linked + self.count - self.fresh
    }
}

/// A [`FreeList`] bound to the memory its links live in, usable wherever a
/// [`FrameAllocator`] is expected. Made by [`FreeList::bind`].
///
/// It hands out single frames only (`alloc_order(k)` with `k > 0` is `None`:
/// a list of single frames knows nothing of contiguity), zeroes every frame
/// it hands out, and panics on a double free (a caller bug) or a corrupt
/// chain (something wrote into a free frame: a simulator bug), since the
/// trait has no error channel; use the [`FreeList`] methods for `Result`s.
#[derive(Debug)]
pub struct FreeListIn<'a, M: PhysMemory + ?Sized> {
    list: &'a mut FreeList,
    mem: &'a mut M,
}

impl<M: PhysMemory + ?Sized> FreeListIn<'_, M> {
    /// The memory, for the caller to use the frames it got.
    pub fn mem(&mut self) -> &mut M {
        self.mem
    }
}

impl<M: PhysMemory + ?Sized> FrameAllocator for FreeListIn<'_, M> {
    fn frame_size(&self) -> PageSize {
        self.list.frame_size
    }

    fn total_frames(&self) -> u64 {
        self.list.total_frames()
    }

    fn free_frames(&self) -> u64 {
        self.list.free_frames()
    }

    fn alloc_order(&mut self, order: u32) -> Option<Pfn> {
        if order != 0 {
            return None;
        }
        match self.list.alloc_zeroed(self.mem) {
            Ok(got) => got,
            Err(e) => panic!("{e}"),
        }
    }

    fn free_order(&mut self, pfn: Pfn, order: u32) {
        assert_eq!(order, 0, "the free list holds single frames only");
        if let Err(e) = self.list.push(self.mem, pfn) {
            panic!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::PhysMem;

    fn mem() -> PhysMem {
        PhysMem::new(16 * 4096).expect("mem")
    }

    #[test]
    fn links_live_in_the_free_frames() {
        let mut m = mem();
        let mut l = FreeList::threaded(&mut m, PageSize::SIZE_4K, Pfn::new(2), 4).expect("list");
        // Frame 2 -> 3 -> 4 -> 5 -> end, stored as next + 1.
        assert_eq!(m.read_le(PhysAddr::new_unchecked(2 * 4096), 8), Ok(4));
        assert_eq!(m.read_le(PhysAddr::new_unchecked(5 * 4096), 8), Ok(0));
        let chain: Vec<u64> = l.chain(&m).map(Pfn::as_u64).collect();
        assert_eq!(chain, vec![2, 3, 4, 5]);
        let a = l.pop(&m).expect("ok").expect("frame");
        let b = l.pop(&m).expect("ok").expect("frame");
        assert_eq!((a.as_u64(), b.as_u64()), (2, 3));
        l.push(&mut m, a).expect("free");
        // a now heads the list and links to 4.
        assert_eq!(m.read_le(PhysAddr::new_unchecked(2 * 4096), 8), Ok(5));
        assert_eq!(
            l.chain(&m).map(Pfn::as_u64).collect::<Vec<_>>(),
            vec![2, 4, 5]
        );
        assert_eq!(l.free_frames(), 3);
    }

    #[test]
    fn lazy_list_writes_nothing_until_a_free() {
        let mut m = mem();
        let mut l = FreeList::new(&m, PageSize::SIZE_4K, Pfn::new(0), 16).expect("list");
        let a = l.alloc_zeroed(&mut m).expect("ok").expect("frame");
        assert_eq!(m.stored_chunks(), 0);
        assert_eq!(l.unlinked_frames(), 15);
        m.write(a.base(PageSize::SIZE_4K), b"secret!!secret")
            .expect("write");
        l.push(&mut m, a).expect("free");
        // The link overwrote the first word; the rest is stale until reuse.
        assert_eq!(m.read_le(PhysAddr::new_unchecked(0), 8), Ok(0));
        let again = l.alloc_zeroed(&mut m).expect("ok").expect("frame");
        assert_eq!(again, a);
        let mut buf = [0u8; 14];
        m.read(a.base(PageSize::SIZE_4K), &mut buf).expect("read");
        assert_eq!(buf, [0; 14], "no data leaks to the next owner");
    }

    #[test]
    fn double_free_and_corruption_are_detected() {
        let mut m = mem();
        let mut l = FreeList::threaded(&mut m, PageSize::SIZE_4K, Pfn::new(0), 4).expect("list");
        let a = l.pop(&m).expect("ok").expect("frame");
        assert_eq!(
            l.push(&mut m, Pfn::new(1)),
            Err(FreeListError::NotAllocated(1))
        );
        assert_eq!(
            l.push(&mut m, Pfn::new(9)),
            Err(FreeListError::NotAllocated(9))
        );
        l.push(&mut m, a).expect("free");
        assert!(l.push(&mut m, a).is_err());
        // A use-after-free write into the head frame's link.
        m.write_le(a.base(PageSize::SIZE_4K), 8, 0xdead)
            .expect("write");
        assert_eq!(
            l.pop(&m),
            Err(FreeListError::Corrupt {
                frame: 0,
                link: 0xdead
            })
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut m = mem();
        assert!(matches!(
            FreeList::new(&m, PageSize::from_shift(2).expect("size"), Pfn::new(0), 4),
            Err(FreeListError::FrameTooSmall(_))
        ));
        assert!(matches!(
            FreeList::new(&m, PageSize::SIZE_4K, Pfn::new(10), 10),
            Err(FreeListError::Mem(_))
        ));
        assert!(FreeList::new(&m, PageSize::SIZE_4K, Pfn::new(0), 0).is_err());
        let mut l = FreeList::new(&m, PageSize::SIZE_4K, Pfn::new(0), 16).expect("list");
        let mut small: PhysMem = PhysMem::new(4096).expect("mem");
        assert!(l.bind(&mut small).is_err());
        let mut a = l.bind(&mut m).expect("bind");
        assert_eq!(a.alloc_order(1), None);
        let f = a.alloc().expect("frame");
        a.free(f);
        assert_eq!(a.free_frames(), 16);
    }
}
