//! The binary buddy allocator, as Linux's page allocator.
//!
//! Frames `[first, first + count)` are managed as blocks of `2^order` frames,
//! `0 <= order <= max_order`, each aligned to its size in *absolute* frame
//! numbers (so a block of order `k` starts at a pfn that is a multiple of
//! `2^k`, as [`FrameAllocator::alloc_order`] promises and as Linux's zones
//! do). The region need not be a power of two or aligned: at start it is cut
//! greedily from the low end into the largest aligned blocks that fit.
//!
//! - Allocation takes the first block of the smallest non-empty order
//!   `>= order` and splits it in halves until it has the requested order,
//!   keeping the *lower* half and putting every upper half on the free list
//!   of its order (Linux's `expand()`).
//! - Freeing coalesces: the buddy of block `pfn` of order `k` is
//!   `pfn ^ (1 << k)` (the two differ in exactly one address bit); while the
//!   buddy is a free block of the same order inside the region, both merge
//!   into one block of order `k + 1` starting at `pfn & !(1 << k)`.
//!
//! Determinism: each order's free list is LIFO (a freed or split-off block
//! goes to the front, allocation takes the front), and the initial blocks are
//! queued lowest address first. The same sequence of calls therefore always
//! returns the same frames.
//!
//! Cost: allocation and free are O(max_order): per-order lists are intrusive
//! (links in per-frame arrays, like `struct page`), so unlinking the buddy is
//! O(1), and nothing is allocated after construction. Host memory is 9 bytes
//! per frame.
//!
//! Misuse: freeing a block that is not an allocated block of exactly that
//! order (double free, wrong order, a frame inside a block) is a bug of the
//! caller: [`Buddy::try_free_order`] reports it as an error, and the
//! [`FrameAllocator::free_order`] path panics. Nothing in this module reads
//! or writes frame contents.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{PageSize, Pfn};

use super::FrameAllocator;
use super::fragmentation::FragmentationReport;
use super::index_list::IndexLists;

/// Linux's default largest order (`MAX_PAGE_ORDER`, formerly `MAX_ORDER - 1`):
/// blocks of up to 1024 frames, 4 MiB with 4 KiB frames.
pub const DEFAULT_MAX_ORDER: u32 = 10;

/// The largest `max_order` accepted. Block sizes are `u32` frame counts.
pub const MAX_SUPPORTED_ORDER: u32 = 31;

/// Per-frame state `FREE | order`: the head of a free block of that order.
const FREE: u8 = 0x40;
/// Per-frame state `ALLOC | order`: the head of an allocated block of that order.
const ALLOC: u8 = 0x80;

/// A buddy allocator cannot be built as configured, or a block was misused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuddyError {
    /// `max_order` above [`MAX_SUPPORTED_ORDER`].
    #[error("buddy max_order {0} is above the supported {MAX_SUPPORTED_ORDER}")]
    BadMaxOrder(u32),
    /// A region of zero frames, one too large for 32-bit frame indices, or
    /// one whose last frame number overflows.
    #[error("buddy region of {count} frames at pfn {first:#x} is not between 1 and 2^32-2 frames")]
    BadRegion {
        /// First frame.
        first: u64,
        /// Number of frames.
        count: u64,
    },
    /// The block is not an allocated block of that order (double free, wrong
    /// order, or a frame that this allocator did not hand out).
    #[error("pfn {pfn:#x} order {order} is not an allocated block of this buddy allocator")]
    NotAllocated {
        /// First frame of the block.
        pfn: u64,
        /// Its claimed order.
        order: u32,
    },
    /// [`Buddy::alloc_at`] asked for a block that is not entirely free, not
    /// aligned to its size, or not inside the region.
    #[error("pfn {pfn:#x} order {order} is not a free aligned block inside the region")]
    NotFree {
        /// First frame of the block.
        pfn: u64,
        /// Its order.
        order: u32,
    },
}

/// The binary buddy allocator over a region of frames (see the module docs).
///
/// The region's initial max-order blocks (all but a few at its ends) are
/// not written into the per-frame arrays when it is built: they stay an
/// implicit run (`Untouched`) at the back of the max-order free list,
/// taken from its low end when that list's linked part is empty. Writing
/// them cost one host page fault per block and array (about 580 faults,
/// 1.5 ms, for a 1 GiB machine) before the first reference, though a short
/// run allocates from a few of them. Every query and every choice is that
/// of the written form, and a checkpoint writes that form (see
/// [`Buddy::materialize`]).
#[derive(Debug, Clone)]
pub struct Buddy {
    core: BuddyCore,
    untouched: Untouched,
}

/// The initial max-order blocks not yet written into the free list: frame
/// offsets `next, next + 2^max_order, ..` below `end`, lowest first. They
/// are the back of the max-order list, in this order (blocks are only ever
/// taken from that list's front, and pushed to its front; removing one from
/// the middle, [`Buddy::alloc_at`], writes them out first), and a block here
/// is free with its state, prev and next not yet written (all still 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Untouched {
    next: u64,
    end: u64,
}

/// The allocator's state as written to checkpoints (unchanged by the
/// implicit initial blocks: a checkpoint writes them out).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename = "Buddy")]
struct BuddyCore {
    frame_size: PageSize,
    first: u64,
    count: u64,
    max_order: u32,
    free: u64,
    /// Per frame offset: `FREE | order`, `ALLOC | order`, or 0 for a frame
    /// that is not the head of a block.
    #[serde(with = "crate::serde_sparse")]
    state: Vec<u8>,
    /// One free list per order, over frame offsets.
    lists: IndexLists,
}

impl Serialize for Buddy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.untouched.next == self.untouched.end {
            self.core.serialize(s)
        } else {
            let mut written = self.clone();
            written.materialize();
            written.core.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Buddy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            core: BuddyCore::deserialize(d)?,
            untouched: Untouched::default(),
        })
    }
}

/// The smallest order whose block holds `frames` frames (`get_order`), or
/// `None` for zero frames or more than `2^63`.
#[must_use]
pub fn order_for_frames(frames: u64) -> Option<u32> {
    if frames == 0 {
        return None;
    }
    frames.checked_next_power_of_two().map(u64::trailing_zeros)
}

/// The greedy partition of `[first, first + count)` into maximal aligned
/// blocks of order at most `max_order`, lowest address first.
fn partition(first: u64, count: u64, max_order: u32) -> impl Iterator<Item = (u64, u32)> {
    let end = first + count;
    let mut at = first;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let align = if at == 0 { 63 } else { at.trailing_zeros() };
        let fits = 63 - (end - at).leading_zeros();
        let order = align.min(fits).min(max_order);
        let block = (at, order);
        at += 1 << order;
        Some(block)
    })
}

impl Buddy {
    /// A buddy allocator over `count` frames of `frame_size` from frame
    /// `first`, with orders `0..=max_order`; every frame starts free.
    pub fn new(
        frame_size: PageSize,
        first: Pfn,
        count: u64,
        max_order: u32,
    ) -> Result<Self, BuddyError> {
        if max_order > MAX_SUPPORTED_ORDER {
            return Err(BuddyError::BadMaxOrder(max_order));
        }
        let first = first.as_u64();
        if count == 0 || count >= u64::from(u32::MAX) - 1 || first.checked_add(count).is_none() {
            return Err(BuddyError::BadRegion { first, count });
        }
        let mut b = Self {
            core: BuddyCore {
                frame_size,
                first,
                count,
                max_order,
                free: 0,
                state: vec![0; count as usize],
                lists: IndexLists::new(max_order as usize + 1, count as usize),
            },
            untouched: Untouched::default(),
        };
        // Queue the initial blocks so that the lowest address is at the front
        // of each list: push them highest address first. The max-order ones
        // (contiguous: once a block is max-order aligned, so is the next)
        // stay implicit behind the list's (empty) linked part.
        let blocks: Vec<(u64, u32)> = partition(first, count, max_order).collect();
        for &(pfn, order) in blocks.iter().rev() {
            let offset = pfn - first;
            if order < max_order {
                b.push_free(offset, order);
            } else if b.untouched.next == b.untouched.end {
                b.untouched = Untouched {
                    next: offset,
                    end: offset + (1 << order),
                };
            } else {
                debug_assert_eq!(offset + (1 << order), b.untouched.next);
                b.untouched.next = offset;
            }
        }
        b.core.free = count;
        Ok(b)
    }

    /// [`Self::new`] with Linux's [`DEFAULT_MAX_ORDER`].
    pub fn with_default_order(
        frame_size: PageSize,
        first: Pfn,
        count: u64,
    ) -> Result<Self, BuddyError> {
        Self::new(frame_size, first, count, DEFAULT_MAX_ORDER)
    }

    /// The largest order this allocator hands out.
    #[must_use]
    pub fn max_order(&self) -> u32 {
        self.core.max_order
    }

    /// Whether this allocator (read back from a checkpoint) manages the
    /// region `fresh` (built from the configuration) does: the same frame
    /// size, first frame, frame count and largest order.
    /// [`Buddy::check_books`] holds the blocks to the region they claim; a
    /// forged region that is consistent in itself still took frames from,
    /// or gave frames to, the page tables' reserved ones.
    ///
    /// # Errors
    /// Both regions.
    pub fn check_same_region(&self, fresh: &Self) -> Result<(), String> {
        let (a, b) = (&self.core, &fresh.core);
        if (a.frame_size, a.first, a.count, a.max_order)
            != (b.frame_size, b.first, b.count, b.max_order)
        {
            return Err(format!(
                "{} frames of {} from frame {:#x} up to order {}, not the configuration's \
                 {} frames of {} from {:#x} up to order {}",
                a.count,
                a.frame_size,
                a.first,
                a.max_order,
                b.count,
                b.frame_size,
                b.first,
                b.max_order
            ));
        }
        Ok(())
    }

    /// Test hook: the region's first frame, frame count and largest order
    /// (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_region(&mut self) -> (&mut u64, &mut u64, &mut u32) {
        (
            &mut self.core.first,
            &mut self.core.count,
            &mut self.core.max_order,
        )
    }

    /// The first frame managed.
    #[must_use]
    pub fn first(&self) -> Pfn {
        Pfn::new(self.core.first)
    }

    /// Free blocks of `order` (0 past `max_order`).
    #[must_use]
    pub fn nr_free(&self, order: u32) -> u64 {
        if order > self.core.max_order {
            return 0;
        }
        let implicit = if order == self.core.max_order {
            (self.untouched.end - self.untouched.next) >> order
        } else {
            0
        };
        self.core.lists.len(order as usize) + implicit
    }

    /// The implicit initial max-order blocks, as offsets, lowest first.
    fn untouched_blocks(&self) -> impl Iterator<Item = u64> + Clone + use<> {
        let Untouched { next, end } = self.untouched;
        let step = 1usize << self.core.max_order;
        (next..end).step_by(step)
    }

    /// Writes the implicit initial blocks into the per-frame arrays at the
    /// back of the max-order list: the form an allocator that queued every
    /// initial block eagerly would have after the same calls.
    pub fn materialize(&mut self) {
        let max = self.core.max_order;
        let blocks = self.untouched_blocks();
        self.untouched = Untouched::default();
        for offset in blocks.clone() {
            self.core.state[offset as usize] = FREE | max as u8;
        }
        self.core
            .lists
            .append(max as usize, blocks.map(|offset| offset as u32));
    }

    /// The front of the free list of `order`: its linked part's, or for
    /// `max_order` when that is empty, the lowest implicit initial block.
    #[inline]
    fn pop_free(&mut self, order: u32) -> Option<u32> {
        if let Some(offset) = self.core.lists.pop_front(order as usize) {
            return Some(offset);
        }
        let u = &mut self.untouched;
        if order != self.core.max_order || u.next == u.end {
            return None;
        }
        let offset = u.next;
        u.next += 1 << order;
        Some(offset as u32)
    }

    /// Free blocks per order `0..=max_order`: one line of `/proc/buddyinfo`.
    #[must_use]
    pub fn free_blocks_per_order(&self) -> Vec<u64> {
        (0..=self.core.max_order).map(|o| self.nr_free(o)).collect()
    }

    /// The free blocks of `order` as first frames, in list order (the next
    /// allocation of that order takes the first).
    pub fn free_blocks(&self, order: u32) -> impl Iterator<Item = Pfn> + '_ {
        let list = if order > self.core.max_order {
            None
        } else {
            Some(order as usize)
        };
        let implicit = (order == self.core.max_order)
            .then(|| self.untouched_blocks())
            .into_iter()
            .flatten()
            .map(|offset| offset as u32);
        list.into_iter()
            .flat_map(|l| self.core.lists.iter(l))
            .chain(implicit)
            .map(|i| Pfn::new(self.core.first + u64::from(i)))
    }

    /// Fragmentation figures (buddyinfo, Linux's extfrag and unusable free
    /// space indices per order) of the current free lists.
    #[must_use]
    pub fn fragmentation(&self) -> FragmentationReport {
        FragmentationReport::from_free_blocks(&self.free_blocks_per_order())
    }

    /// Whether every frame is free and merged back into the region's initial
    /// maximal blocks (what must hold after everything allocated was freed).
    #[must_use]
    pub fn is_fully_coalesced(&self) -> bool {
        self.core.free == self.core.count
            && partition(self.core.first, self.core.count, self.core.max_order).all(
                |(pfn, order)| {
                    let offset = pfn - self.core.first;
                    self.core.state[offset as usize] == FREE | order as u8
                        || (order == self.core.max_order
                            && offset >= self.untouched.next
                            && offset < self.untouched.end)
                },
            )
    }

    /// The region's blocks, lowest first: each block's first frame, its
    /// order and whether it is free (the implicit initial blocks as the
    /// free max-order blocks they are). Meaningful for books that pass
    /// [`Buddy::check_books`]; on others it stops at the first frame that
    /// heads no block.
    pub fn blocks(&self) -> impl Iterator<Item = (Pfn, u32, bool)> + '_ {
        let mut i = 0u64;
        std::iter::from_fn(move || {
            if i >= self.core.count {
                return None;
            }
            let (order, free) = if i >= self.untouched.next && i < self.untouched.end {
                (self.core.max_order, true)
            } else {
                match self.core.state[i as usize] {
                    h if h & FREE != 0 => (u32::from(h & !FREE), true),
                    h if h & ALLOC != 0 => (u32::from(h & !ALLOC), false),
                    _ => return None,
                }
            };
            let block = (Pfn::new(self.core.first + i), order, free);
            i += 1 << order.min(63);
            Some(block)
        })
    }

    /// Checks the allocator's books (read back from a checkpoint, or at
    /// any time): the per-frame states tile the region with aligned
    /// blocks of orders up to the maximum, free and allocated, whose
    /// other frames are marked as no block's head; the free count is the
    /// free blocks' frames; each order's free list holds exactly the free
    /// blocks of that order. Books that lie would otherwise surface as a
    /// panic on a later free, far from the checkpoint that caused it.
    pub fn check_books(&self) -> Result<(), String> {
        let c = &self.core;
        if c.max_order > MAX_SUPPORTED_ORDER
            || c.state.len() as u64 != c.count
            || c.count >= u64::from(u32::MAX) - 1
            || c.first.checked_add(c.count).is_none()
        {
            return Err(format!(
                "a region of {} frames at pfn {:#x} with {} frame states and orders to {}",
                c.count,
                c.first,
                c.state.len(),
                c.max_order
            ));
        }
        let lists = c.max_order as usize + 1;
        let mut free_heads = vec![0u64; lists];
        let mut free = 0u64;
        let mut i = 0u64;
        while i < c.count {
            let (order, is_free) = if i >= self.untouched.next && i < self.untouched.end {
                (c.max_order, None)
            } else {
                match c.state[i as usize] {
                    h if h & FREE != 0 && h & ALLOC == 0 => (u32::from(h & !FREE), Some(true)),
                    h if h & ALLOC != 0 && h & FREE == 0 => (u32::from(h & !ALLOC), Some(false)),
                    _ => return Err(format!("frame {:#x} is in no block", c.first + i)),
                }
            };
            let pfn = c.first + i;
            let size = 1u64 << order.min(63);
            if order > c.max_order || pfn & (size - 1) != 0 || size > c.count - i {
                return Err(format!(
                    "frame {pfn:#x} heads a block of order {order}, not an aligned block inside the region"
                ));
            }
            if let Some(k) = (i + 1..i + size).find(|&k| c.state[k as usize] != 0) {
                return Err(format!(
                    "frame {:#x} inside the block at {pfn:#x} is marked as a block too",
                    c.first + k
                ));
            }
            if is_free != Some(false) {
                free += size;
            }
            if is_free == Some(true) {
                free_heads[order as usize] += 1;
            }
            i += size;
        }
        if free != c.free {
            return Err(format!(
                "{free} frames in free blocks but the free count says {}",
                c.free
            ));
        }
        if c.lists.len_lists() != lists {
            return Err(format!(
                "{} free lists for orders 0 to {}",
                c.lists.len_lists(),
                c.max_order
            ));
        }
        c.lists.check(c.count as usize, |list, e| {
            if c.state.get(e as usize) == Some(&(FREE | list as u8)) {
                Ok(())
            } else {
                Err(format!(
                    "free list {list} holds frame {:#x}, not a free block of that order",
                    c.first + u64::from(e)
                ))
            }
        })?;
        for (order, &n) in free_heads.iter().enumerate() {
            if c.lists.len(order) != n {
                return Err(format!(
                    "{n} free blocks of order {order} but its free list holds {}",
                    c.lists.len(order)
                ));
            }
        }
        Ok(())
    }

    /// Whether `[pfn, pfn + 2^order)` is a block handed out by this allocator
    /// with exactly that order.
    #[must_use]
    pub fn is_allocated_block(&self, pfn: Pfn, order: u32) -> bool {
        self.offset(pfn).is_some_and(|i| {
            order <= self.core.max_order && self.core.state[i as usize] == ALLOC | order as u8
        })
    }

    #[inline]
    fn offset(&self, pfn: Pfn) -> Option<u32> {
        let i = pfn.as_u64().checked_sub(self.core.first)?;
        (i < self.core.count).then_some(i as u32)
    }

    #[inline]
    fn push_free(&mut self, offset: u64, order: u32) {
        self.core.state[offset as usize] = FREE | order as u8;
        self.core.lists.push_front(order as usize, offset as u32);
    }

    /// Splits the free block at `offset` of order `from` (already unlinked)
    /// down to `to`, keeping the half that contains `keep` and freeing the other.
    #[inline]
    fn split(&mut self, mut offset: u64, mut from: u32, to: u32, keep: u64) -> u64 {
        while from > to {
            from -= 1;
            let upper = offset + (1 << from);
            if keep >= upper {
                self.push_free(offset, from);
                offset = upper;
            } else {
                self.push_free(upper, from);
            }
        }
        offset
    }

    /// Returns a block, or an error if it is not an allocated block of that
    /// order; coalesces it with free buddies.
    pub fn try_free_order(&mut self, pfn: Pfn, order: u32) -> Result<(), BuddyError> {
        if !self.is_allocated_block(pfn, order) {
            return Err(BuddyError::NotAllocated {
                pfn: pfn.as_u64(),
                order,
            });
        }
        let end = self.core.first + self.core.count;
        let mut p = pfn.as_u64();
        self.core.state[(p - self.core.first) as usize] = 0;
        let mut o = order;
        while o < self.core.max_order {
            let buddy = p ^ (1 << o);
            if buddy < self.core.first || buddy + (1 << o) > end {
                break;
            }
            let bi = buddy - self.core.first;
            if self.core.state[bi as usize] != FREE | o as u8 {
                break;
            }
            self.core.lists.remove(o as usize, bi as u32);
            self.core.state[bi as usize] = 0;
            p &= !(1 << o);
            o += 1;
        }
        self.push_free(p - self.core.first, o);
        self.core.free += 1 << order;
        Ok(())
    }

    /// Allocates the specific block `[pfn, pfn + 2^order)`, which must be
    /// aligned, inside the region and entirely free: for frames that already
    /// hold something (a loaded image, the kernel), or to set up a state by hand.
    pub fn alloc_at(&mut self, pfn: Pfn, order: u32) -> Result<(), BuddyError> {
        let not_free = BuddyError::NotFree {
            pfn: pfn.as_u64(),
            order,
        };
        let p = pfn.as_u64();
        if order > self.core.max_order || p & ((1 << order) - 1) != 0 {
            return Err(not_free);
        }
        // The block may lie in an implicit initial block, which may not be
        // at the list's front: write them all out (rare; allocation order
        // is unchanged, as the written form is the same list).
        self.materialize();
        for o in order..=self.core.max_order {
            let head = p & !((1u64 << o) - 1);
            let Some(hi) = self.offset(Pfn::new(head)) else {
                continue;
            };
            if self.core.state[hi as usize] == FREE | o as u8 {
                self.core.lists.remove(o as usize, hi);
                self.core.state[hi as usize] = 0;
                let got = self.split(u64::from(hi), o, order, p - self.core.first);
                debug_assert_eq!(got, p - self.core.first);
                self.core.state[got as usize] = ALLOC | order as u8;
                self.core.free -= 1 << order;
                return Ok(());
            }
        }
        Err(not_free)
    }
}

impl FrameAllocator for Buddy {
    fn frame_size(&self) -> PageSize {
        self.core.frame_size
    }

    fn total_frames(&self) -> u64 {
        self.core.count
    }

    fn free_frames(&self) -> u64 {
        self.core.free
    }

    // In line (the general paths are not): see `alloc_single`, `free_single`.
    #[inline(always)]
    fn alloc_order(&mut self, order: u32) -> Option<Pfn> {
        if order == 0
            && let Some(offset) = self.core.lists.pop_front(0)
        {
            // The general path's answer when the order-0 list has a
            // block: its front, no split (see `Buddy::alloc_single`).
            return Some(self.alloc_single(offset));
        }
        self.alloc_order_general(order)
    }

    // In line (the general paths are not): see `alloc_single`, `free_single`.
    #[inline(always)]
    fn free_order(&mut self, pfn: Pfn, order: u32) {
        if order == 0 && self.free_single(pfn) {
            return;
        }
        if let Err(e) = self.try_free_order(pfn, order) {
            panic!("{e}");
        }
    }
}

impl Buddy {
    /// [`FrameAllocator::alloc_order`] of order 0 once the order-0 free
    /// list's front, `offset`, is unlinked: what the general path does with
    /// a block of the asked order (its head marked allocated, no split).
    /// Why a path of its own: a swap-heavy run takes a single frame at
    /// nearly every fault, almost always from that list, and the general
    /// path's search over the orders, its split loop and its out-of-line
    /// list calls cost about 105 instructions a frame.
    #[inline(always)]
    fn alloc_single(&mut self, offset: u32) -> Pfn {
        self.core.state[offset as usize] = ALLOC;
        self.core.free -= 1;
        Pfn::new(self.core.first + u64::from(offset))
    }

    /// [`Buddy::try_free_order`] of an order-0 block whose buddy is not a
    /// free order-0 block inside the region (nothing to coalesce), as that
    /// does it: the block goes to the front of the order-0 list. `false`,
    /// with nothing changed, for anything else (a block that is not an
    /// allocated order-0 block, or one that merges): the general path
    /// answers those. Why: a swap-heavy run frees a single frame at nearly
    /// every eviction, and its buddy is nearly always in use; the general
    /// path cost about 127 instructions a frame.
    #[inline(always)]
    fn free_single(&mut self, pfn: Pfn) -> bool {
        let Some(i) = self.offset(pfn) else {
            return false;
        };
        let i = i as usize;
        if self.core.state.get(i) != Some(&ALLOC) {
            return false;
        }
        if self.core.max_order > 0 {
            // The buddy's offset: the region's first frame need not be
            // even, so the pair is found from absolute frame numbers.
            let buddy = pfn.as_u64() ^ 1;
            if let Some(b) = buddy.checked_sub(self.core.first)
                && b < self.core.count
                && self.core.state[b as usize] == FREE
            {
                return false;
            }
        }
        self.core.state[i] = FREE;
        self.core.lists.push_front(0, i as u32);
        self.core.free += 1;
        true
    }

    /// [`FrameAllocator::alloc_order`] by the general path: the smallest
    /// non-empty order at or above `order`, split down to it, keeping the
    /// lower half each time. Every list a split pushes onto (orders
    /// `order..o`) was just found empty by the search, so each freed upper
    /// half becomes its list's only element
    /// ([`IndexLists::push_front_empty`](super::index_list::IndexLists)),
    /// and the kept head is written once. Why not `split`: a first-touch
    /// fault takes a single frame, every other one by this path; its
    /// search by `find_map` and `split`'s general pushes cost about 268
    /// instructions a call. `alloc_order_reference` (tests) is the
    /// general form it must equal.
    #[inline(never)]
    fn alloc_order_general(&mut self, order: u32) -> Option<Pfn> {
        let max = self.core.max_order;
        if order > max {
            return None;
        }
        let mut o = order;
        let offset = loop {
            if let Some(offset) = self.pop_free(o) {
                break offset;
            }
            if o == max {
                return None;
            }
            o += 1;
        };
        while o > order {
            o -= 1;
            let upper = offset + (1 << o);
            self.core.state[upper as usize] = FREE | o as u8;
            self.core.lists.push_front_empty(o as usize, upper);
        }
        self.core.state[offset as usize] = ALLOC | order as u8;
        self.core.free -= 1 << order;
        Some(Pfn::new(self.core.first + u64::from(offset)))
    }

    /// The general path as it was before `alloc_order_general` knew its
    /// pushes land on empty lists: the tests' reference for it.
    #[cfg(test)]
    fn alloc_order_reference(&mut self, order: u32) -> Option<Pfn> {
        if order > self.core.max_order {
            return None;
        }
        let (o, offset) =
            (order..=self.core.max_order).find_map(|o| Some((o, self.pop_free(o)?)))?;
        let offset = u64::from(offset);
        self.core.state[offset as usize] = 0;
        let got = self.split(offset, o, order, offset);
        self.core.state[got as usize] = ALLOC | order as u8;
        self.core.free -= 1 << order;
        Some(Pfn::new(self.core.first + got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every free list, in order: what two allocators that must agree
    /// are compared by after each step.
    fn lists(b: &Buddy) -> Vec<Vec<u64>> {
        (0..=b.max_order())
            .map(|o| b.free_blocks(o).map(Pfn::as_u64).collect())
            .collect()
    }

    /// The checkpointed form (postcard), compared byte for byte.
    fn form(b: &Buddy) -> Vec<u8> {
        postcard::to_allocvec(b).expect("postcard")
    }

    fn buddy(first: u64, count: u64, max: u32) -> Buddy {
        Buddy::new(PageSize::SIZE_4K, Pfn::new(first), count, max).expect("buddy")
    }

    /// Books that a run leaves pass the check, implicit initial blocks and
    /// all; each kind of lie a forged checkpoint could tell is refused
    /// with what is wrong (a frame in no block, a block that overlaps
    /// another, a free count, a free list's member or length).
    #[test]
    fn books_that_lie_fail_their_check() {
        let mut b = buddy(3, 1 << 12, 5);
        let got: Vec<Pfn> = (0..40).filter_map(|k| b.alloc_order(k % 3)).collect();
        for (k, p) in got.iter().enumerate().step_by(3) {
            b.free_order(*p, (k % 3) as u32);
        }
        assert_eq!(
            b.check_books(),
            Ok(()),
            "a run's books, implicit blocks kept"
        );
        assert!(b.blocks().any(|(_, o, free)| free && o == 5));
        let frames: u64 = b.blocks().map(|(_, o, _)| 1u64 << o).sum();
        assert_eq!(frames, 1 << 12, "the blocks tile the region");
        b.materialize();
        assert_eq!(b.check_books(), Ok(()), "written out");
        // An allocated block and a free one of the written form: (offset, order).
        let pick = |free: bool| {
            let (p, o, _) = b
                .blocks()
                .find(|&(_, o, f)| f == free && o >= u32::from(free))
                .expect("block");
            ((p.as_u64() - 3) as usize, o)
        };
        let ((a, ao), (f, fo)) = (pick(false), pick(true));
        type Lie = fn(&mut Buddy, (usize, u32), (usize, u32));
        let lies: [(&str, Lie); 5] = [
            ("in no block", |b, (a, _), _| b.core.state[a] = 0),
            ("marked as a block too", |b, _, (f, _)| {
                b.core.state[f + 1] = ALLOC;
            }),
            ("free count", |b, _, _| b.core.free += 1),
            ("not a free block of that order", |b, (a, ao), (f, fo)| {
                b.core.state[f] = ALLOC | fo as u8;
                b.core.state[a] = FREE | ao as u8;
                b.core.free = b.core.free - (1 << fo) + (1 << ao);
            }),
            ("but its free list holds", |b, _, (f, fo)| {
                b.core.lists.remove(fo as usize, f as u32);
            }),
        ];
        for (what, lie) in lies {
            let mut forged = b.clone();
            lie(&mut forged, (a, ao), (f, fo));
            let e = forged.check_books().expect_err(what);
            assert!(e.contains(what), "{what}: {e}");
        }
    }

    /// The single-frame paths (`FrameAllocator::alloc_order` and
    /// `free_order` of order 0: `alloc_single`, `free_single`) against the
    /// general ones (`alloc_order_general`, `try_free_order`) on a copy:
    /// the same frames handed out, in the same order, and the same books
    /// (every free list in order, the checkpointed form) after every step,
    /// over regions whose first frame is odd or even, with max orders 0 to
    /// 10, mixed orders, and frees that merge and that do not. A free of
    /// something that is not an allocated order-0 block leaves the fast
    /// path (`free_single` says no and changes nothing) and the general
    /// path refuses it.
    #[test]
    fn single_frame_paths_are_the_general_ones() {
        for (first, count, max) in [
            (0, 64, 0),
            (3, 40, 1),
            (0, 256, 5),
            (1, 300, 10),
            (7, 1 << 11, 10),
        ] {
            let mut fast = buddy(first, count, max);
            let mut slow = fast.clone();
            let mut held: Vec<(Pfn, u32)> = Vec::new();
            let mut x = first * 7919 + count;
            for step in 0..4000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = x >> 33;
                let order = if r % 4 == 0 { (r as u32 >> 3) % 3 } else { 0 };
                if r % 7 < 4 || held.is_empty() {
                    let got = fast.alloc_order(order);
                    assert_eq!(got, slow.alloc_order_general(order), "step {step}");
                    if let Some(p) = got {
                        held.push((p, order));
                    }
                } else {
                    let (p, o) = held.swap_remove((r as usize >> 4) % held.len());
                    fast.free_order(p, o);
                    slow.try_free_order(p, o).expect("general free");
                }
                if r % 5 == 0 {
                    // Not an allocated order-0 block: a free frame, a frame
                    // past the region, or a block of a higher order.
                    let p = Pfn::new(first + (r >> 8) % (count + 4));
                    let held_at = held.iter().any(|&(q, o)| q == p && o == 0);
                    if !held_at {
                        let before = form(&fast);
                        assert!(!fast.free_single(p), "step {step}: {p:?}");
                        assert_eq!(form(&fast), before, "step {step}");
                        assert!(slow.try_free_order(p, 0).is_err(), "step {step}");
                    }
                }
                assert_eq!(fast.free_frames(), slow.free_frames(), "step {step}");
                assert_eq!(lists(&fast), lists(&slow), "step {step}");
            }
            assert_eq!(form(&fast), form(&slow), "{first} {count} {max}");
            assert_eq!(fast.check_books(), Ok(()));
        }
    }

    /// The general allocation (its pushes onto lists known empty) leaves
    /// the same answers, lists, states and written form as the reference
    /// (the search by `find_map` and `split`), over random allocations of
    /// orders 0 to 4 and frees, in regions whose first frame is unaligned
    /// and whose orders reach past what the region holds.
    #[test]
    fn general_allocation_is_the_reference() {
        for (first, count, max) in [
            (0, 64, 0),
            (3, 40, 1),
            (0, 256, 5),
            (1, 300, 10),
            (7, 1 << 11, 10),
            (0, 1 << 12, 3),
        ] {
            let mut new = buddy(first, count, max);
            let mut old = new.clone();
            let mut held: Vec<(Pfn, u32)> = Vec::new();
            let mut x = first * 7919 + count + 1;
            for step in 0..6000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = x >> 33;
                let order = if r % 3 == 0 { (r as u32 >> 3) % 5 } else { 0 };
                if r % 9 < 5 || held.is_empty() {
                    let got = new.alloc_order_general(order);
                    assert_eq!(got, old.alloc_order_reference(order), "step {step}");
                    if let Some(p) = got {
                        held.push((p, order));
                    }
                } else {
                    let (p, o) = held.swap_remove((r as usize >> 4) % held.len());
                    new.try_free_order(p, o).expect("free");
                    old.try_free_order(p, o).expect("free");
                }
                assert_eq!(new.free_frames(), old.free_frames(), "step {step}");
                assert_eq!(lists(&new), lists(&old), "step {step}");
                if step % 500 == 0 {
                    assert_eq!(form(&new), form(&old), "step {step}");
                }
            }
            assert_eq!(form(&new), form(&old), "{first} {count} {max}");
            assert_eq!(new.check_books(), Ok(()));
        }
    }

    #[test]
    fn unaligned_region_is_cut_into_maximal_aligned_blocks() {
        // [3, 21): 3 (o0), 4..8 (o2), 8..16 (o3), 16..20 (o2), 20 (o0).
        let b = buddy(3, 18, 10);
        assert_eq!(b.free_blocks_per_order()[..4], [2, 0, 2, 1]);
        assert_eq!(b.free_frames(), 18);
        assert!(b.is_fully_coalesced());
        let heads: Vec<u64> = b.free_blocks(2).map(Pfn::as_u64).collect();
        assert_eq!(heads, vec![4, 16]);
    }

    #[test]
    fn max_order_caps_the_blocks() {
        let b = buddy(0, 64, 4);
        assert_eq!(b.free_blocks_per_order(), vec![0, 0, 0, 0, 4]);
    }

    #[test]
    fn split_keeps_the_lower_half_and_coalesces_back() {
        let mut b = buddy(0, 16, 10);
        assert_eq!(b.alloc_order(0), Some(Pfn::new(0)));
        assert_eq!(b.free_blocks_per_order()[..5], [1, 1, 1, 1, 0]);
        assert_eq!(b.alloc_order(0), Some(Pfn::new(1)));
        b.free(Pfn::new(0));
        assert!(!b.is_fully_coalesced());
        b.free(Pfn::new(1));
        assert!(b.is_fully_coalesced());
    }

    #[test]
    fn buddies_outside_the_region_never_merge() {
        // [8, 24): blocks 8..16 and 16..24 are not buddies of each other.
        let mut b = buddy(8, 16, 10);
        let x = b.alloc_order(3).expect("block");
        let y = b.alloc_order(3).expect("block");
        assert_eq!((x.as_u64(), y.as_u64()), (8, 16));
        b.free_order(x, 3);
        b.free_order(y, 3);
        assert_eq!(b.free_blocks_per_order()[3..5], [2, 0]);
        assert!(b.is_fully_coalesced());
    }

    #[test]
    fn misuse_is_reported() {
        let mut b = buddy(0, 8, 10);
        let x = b.alloc_order(1).expect("block");
        assert_eq!(
            b.try_free_order(x, 0),
            Err(BuddyError::NotAllocated { pfn: 0, order: 0 })
        );
        assert!(b.try_free_order(Pfn::new(1), 0).is_err());
        assert!(b.try_free_order(Pfn::new(100), 0).is_err());
        assert!(b.try_free_order(x, 1).is_ok());
        assert!(b.try_free_order(x, 1).is_err(), "double free");
        assert!(Buddy::new(PageSize::SIZE_4K, Pfn::new(0), 0, 10).is_err());
        assert!(Buddy::new(PageSize::SIZE_4K, Pfn::new(0), 8, 40).is_err());
    }

    #[test]
    #[should_panic(expected = "not an allocated block")]
    fn double_free_through_the_trait_panics() {
        let mut b = buddy(0, 8, 10);
        let x = b.alloc().expect("frame");
        b.free(x);
        b.free(x);
    }

    #[test]
    fn alloc_at_splits_around_the_block() {
        let mut b = buddy(0, 16, 10);
        b.alloc_at(Pfn::new(5), 0).expect("free");
        assert_eq!(b.free_frames(), 15);
        // 16 -> 8 + [8..16); 8 -> [0..4) + 4; 4 -> 2 + [6..8); 2 -> [4] + 5.
        assert_eq!(b.free_blocks_per_order()[..5], [1, 1, 1, 1, 0]);
        assert_eq!(
            b.free_blocks(0).map(Pfn::as_u64).collect::<Vec<_>>(),
            vec![4]
        );
        assert_eq!(
            b.free_blocks(1).map(Pfn::as_u64).collect::<Vec<_>>(),
            vec![6]
        );
        assert!(b.alloc_at(Pfn::new(5), 0).is_err());
        assert!(b.alloc_at(Pfn::new(4), 1).is_err());
        assert!(b.alloc_at(Pfn::new(2), 2).is_err(), "misaligned");
        b.free(Pfn::new(5));
        assert!(b.is_fully_coalesced());
    }

    #[test]
    fn order_for_frames_rounds_up() {
        assert_eq!(order_for_frames(1), Some(0));
        assert_eq!(order_for_frames(8), Some(3));
        assert_eq!(order_for_frames(9), Some(4));
        assert_eq!(order_for_frames(0), None);
    }
}
