//! A free-list allocator over one contiguous region: the textbook's
//! `malloc`/`free` (OSTEP chapter 17, "Free-Space Management", and its
//! `malloc.py` simulator), with the choices a teacher sets in an exercise.
//!
//! The region `[base, base + size)` starts as one free block. The free list
//! is a sequence of blocks `(addr, size)` kept in a [`ListOrder`]; an
//! allocation searches it with a [`Placement`], and a free puts the block
//! back and may [`Coalesce`]. The rules, exactly:
//!
//! - **Size of a block.** A request of `n` bytes is rounded up to a multiple
//!   of `align` (1: no rounding), then `header` bytes are added: the block
//!   taken from the free list is `round_up(n, align) + header` bytes, and the
//!   pointer returned to the program is `block + header` (as `malloc.py`
//!   counts them). Header and padding are the allocation's internal
//!   fragmentation.
//! - **Search.** The list is examined in list order. First fit takes the
//!   first block large enough; best fit the smallest large-enough block and
//!   worst fit the largest (the first such in list order on ties), after
//!   examining every element; next fit starts where the previous search
//!   ended (the block left over from the previous allocation, or the one
//!   after it if nothing was left over) and wraps around; size-aligned is
//!   first fit that places the block at an address that is a multiple of
//!   its size rounded up to a power of two (the course's allocator that
//!   leaves a gap, the buddy system's placement without its rounding).
//!   "Elements searched" counts the list elements examined; a failed search
//!   examined the whole list.
//! - **Split.** The allocation takes the low end of the chosen block; what
//!   is left keeps the block's place in the list (it is *not* re-sorted
//!   until the next free, as in `malloc.py`). Size-aligned placement can
//!   leave a piece before the allocation too; both pieces take the block's
//!   place, lower address first.
//! - **Free.** The block goes back according to the order: `address`,
//!   `size-asc` and `size-desc` append it and re-sort the whole list
//!   (stably: among equal sizes, the earlier-listed block stays first, so
//!   the freed block goes after blocks of its size); `head` inserts it at the
//!   front, `tail` at the back.
//! - **Coalescing.** [`Coalesce::List`] is `malloc.py`'s rule: after the
//!   insertion, one pass over the list merges each block into the block
//!   listed just before it when that one ends where it starts. With the list
//!   in address order this merges every pair of free neighbours; with
//!   another order, only neighbours that happen to be listed one after the
//!   other merge, which is why the order matters when coalescing.
//!   [`Coalesce::Address`] is what a real allocator with boundary tags
//!   does: the freed block merges with the free blocks that end at its start
//!   and begin at its end, wherever they are listed, and the merged block is
//!   then inserted by the order rule.
//!
//! This module owns the free list and the record of live allocations; it
//! stores nothing in the region itself (the headers are counted, not
//! written). [`super::ContiguousAllocator`] is this allocator in frame units
//! with the list in address order and boundary-tag coalescing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::fragmentation::Milli;

/// Where a request is placed among the free blocks that can hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The first block in list order that fits.
    FirstFit,
    /// The first block that fits, starting where the previous search ended.
    NextFit,
    /// The smallest block that fits.
    BestFit,
    /// The largest block.
    WorstFit,
    /// The first place, in list order, aligned to the block size rounded up
    /// to a power of two.
    SizeAligned,
}

impl Placement {
    /// Every strategy, for sweeps and `--help` text.
    pub const ALL: [Self; 5] = [
        Self::FirstFit,
        Self::NextFit,
        Self::BestFit,
        Self::WorstFit,
        Self::SizeAligned,
    ];

    /// The name used in configs and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstFit => "first-fit",
            Self::NextFit => "next-fit",
            Self::BestFit => "best-fit",
            Self::WorstFit => "worst-fit",
            Self::SizeAligned => "size-aligned",
        }
    }

    /// The strategy called `name` (as [`Self::name`] spells it, or without
    /// the `-fit`: `first`, `next`, `best`, `worst`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name || p.name().strip_suffix("-fit") == Some(name))
    }
}

impl Serialize for Placement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The order the free list is kept in (where a freed block is inserted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// Lowest address first (`malloc.py`'s ADDRSORT).
    Address,
    /// Smallest first (SIZESORT+).
    SizeAscending,
    /// Largest first (SIZESORT-).
    SizeDescending,
    /// A freed block goes to the front (INSERT-FRONT, LIFO).
    Head,
    /// A freed block goes to the back (INSERT-BACK).
    Tail,
}

impl ListOrder {
    /// Every order.
    pub const ALL: [Self; 5] = [
        Self::Address,
        Self::SizeAscending,
        Self::SizeDescending,
        Self::Head,
        Self::Tail,
    ];

    /// The name used on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::SizeAscending => "size-asc",
            Self::SizeDescending => "size-desc",
            Self::Head => "head",
            Self::Tail => "tail",
        }
    }

    /// The order called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }
}

impl Serialize for ListOrder {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Whether and how freed blocks merge with free neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Coalesce {
    /// Never: the list only grows in number of blocks.
    #[default]
    Never,
    /// `malloc.py`'s pass: merge blocks listed one after the other that are
    /// adjacent in memory (complete only in address order).
    List,
    /// Boundary tags: merge with the free blocks adjacent in memory,
    /// wherever they are listed.
    Address,
}

impl Coalesce {
    /// Every rule.
    pub const ALL: [Self; 3] = [Self::Never, Self::List, Self::Address];

    /// The name used on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Never => "none",
            Self::List => "list",
            Self::Address => "address",
        }
    }

    /// The rule called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl Serialize for Coalesce {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// How a [`FreeSpace`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FreeSpaceConfig {
    /// First address of the region.
    pub base: u64,
    /// Bytes (or other units) in the region.
    pub size: u64,
    /// How a block is chosen.
    pub placement: Placement,
    /// How the free list is ordered.
    pub order: ListOrder,
    /// How freed blocks merge.
    pub coalesce: Coalesce,
    /// Bytes of header in front of every allocation.
    pub header: u64,
    /// Requests are rounded up to a multiple of this (1: none). Any value
    /// works, as in `malloc.py`; payloads are aligned when the base and the
    /// header are multiples of it.
    pub align: u64,
}

impl FreeSpaceConfig {
    /// A region of `size` units at `base` with first fit, address order,
    /// boundary-tag coalescing, no header and no alignment.
    #[must_use]
    pub const fn new(base: u64, size: u64) -> Self {
        Self {
            base,
            size,
            placement: Placement::FirstFit,
            order: ListOrder::Address,
            coalesce: Coalesce::Address,
            header: 0,
            align: 1,
        }
    }
}

/// A run of the region: a free block, or the block of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Block {
    /// First address.
    pub addr: u64,
    /// Length.
    pub size: u64,
}

impl Block {
    /// One past the last address.
    #[must_use]
    pub const fn end(&self) -> u64 {
        self.addr + self.size
    }
}

impl fmt::Display for Block {
    /// `[addr 1003 size 97]`, as `malloc.py` prints free-list elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[addr {} size {}]", self.addr, self.size)
    }
}

/// A request or free the allocator cannot carry out, or a bad setup.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FreeSpaceError {
    /// A region of size zero, or one whose end overflows.
    #[error("a region of {size} bytes at {base} is empty or runs past 2^64")]
    BadRegion {
        /// First address.
        base: u64,
        /// Size.
        size: u64,
    },
    /// An alignment of zero.
    #[error(
        "alignment {0}: requests are rounded up to a multiple of it, so it must be at least 1 (1 means none)"
    )]
    BadAlign(u64),
    /// A request for zero bytes.
    #[error("a request must be for at least 1 byte")]
    ZeroSize,
    /// A request whose block size (after alignment and header) overflows.
    #[error("a request of {0} bytes is too large")]
    TooLarge(u64),
    /// No free block can hold the request.
    #[error(
        "no free block of {needed} bytes for a request of {requested}: {free} bytes free, largest block {largest}"
    )]
    NoFit {
        /// Bytes requested.
        requested: u64,
        /// The block size needed (after alignment and header).
        needed: u64,
        /// Bytes free in total.
        free: u64,
        /// The largest free block.
        largest: u64,
        /// List elements examined.
        searched: usize,
    },
    /// The pointer is not one an allocation returned (or it was freed).
    #[error("{0} is not a pointer returned by an allocation that is still live")]
    NotAllocated(u64),
}

/// A successful allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// The pointer returned to the program: `block.addr + header`.
    pub ptr: u64,
    /// The block taken from the free list (header and padding included).
    pub block: Block,
    /// Bytes requested.
    pub requested: u64,
    /// List elements examined.
    pub searched: usize,
}

/// What a free did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Freed {
    /// The block returned (header and padding included).
    pub block: Block,
    /// Merges made by coalescing (0 without it).
    pub merges: usize,
    /// The free block that holds the returned block afterwards.
    pub now_in: Block,
}

/// A live allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Live {
    block: Block,
    requested: u64,
    seq: u64,
}

/// Figures of the whole region at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FreeSpaceStats {
    /// Bytes in the region.
    pub heap_bytes: u64,
    /// Bytes free.
    pub free_bytes: u64,
    /// Elements of the free list.
    pub free_blocks: usize,
    /// The largest free block.
    pub largest_free: u64,
    /// Live allocations.
    pub allocations: usize,
    /// Bytes in the blocks of live allocations.
    pub allocated_bytes: u64,
    /// Bytes the live allocations asked for.
    pub requested_bytes: u64,
    /// Header and alignment padding of the live allocations:
    /// `allocated_bytes - requested_bytes`.
    pub internal_fragmentation: u64,
    /// `1 - largest_free / free_bytes`: the share of free memory outside the
    /// largest block (0 when nothing or one block is free).
    pub external_fragmentation: Milli,
}

/// The free-list allocator (see the module docs).
#[derive(Debug, Clone)]
pub struct FreeSpace {
    cfg: FreeSpaceConfig,
    list: Vec<Block>,
    live: BTreeMap<u64, Live>,
    /// Next fit: the address of the block where the next search starts.
    rover: Option<u64>,
    free: u64,
    served: u64,
    /// Bytes in the blocks of live allocations, and the bytes they asked for.
    allocated: u64,
    requested: u64,
}

impl FreeSpace {
    /// An allocator over the region of `cfg`, all of it free.
    pub fn new(cfg: FreeSpaceConfig) -> Result<Self, FreeSpaceError> {
        if cfg.size == 0 || cfg.base.checked_add(cfg.size).is_none() {
            return Err(FreeSpaceError::BadRegion {
                base: cfg.base,
                size: cfg.size,
            });
        }
        if cfg.align == 0 {
            return Err(FreeSpaceError::BadAlign(cfg.align));
        }
        Ok(Self {
            cfg,
            list: vec![Block {
                addr: cfg.base,
                size: cfg.size,
            }],
            live: BTreeMap::new(),
            rover: None,
            free: cfg.size,
            served: 0,
            allocated: 0,
            requested: 0,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &FreeSpaceConfig {
        &self.cfg
    }

    /// Places later requests with `placement` (what is allocated stays put).
    pub fn set_placement(&mut self, placement: Placement) {
        self.cfg.placement = placement;
    }

    /// The free list, in list order.
    #[must_use]
    pub fn free_list(&self) -> &[Block] {
        &self.list
    }

    /// Bytes free.
    #[must_use]
    pub fn free_bytes(&self) -> u64 {
        self.free
    }

    /// The largest free block's size.
    #[must_use]
    pub fn largest_free(&self) -> u64 {
        self.list.iter().map(|b| b.size).max().unwrap_or(0)
    }

    /// The live allocations, lowest address first: the block, the bytes
    /// requested, and the sequence number of the request (0 for the first
    /// allocation served).
    pub fn allocations(&self) -> impl Iterator<Item = (Block, u64, u64)> + '_ {
        self.live.values().map(|l| (l.block, l.requested, l.seq))
    }

    /// The block size a request of `bytes` takes: rounded up to the
    /// alignment, plus the header.
    pub fn block_size(&self, bytes: u64) -> Result<u64, FreeSpaceError> {
        if bytes == 0 {
            return Err(FreeSpaceError::ZeroSize);
        }
        bytes
            .checked_next_multiple_of(self.cfg.align)
            .and_then(|b| b.checked_add(self.cfg.header))
            .ok_or(FreeSpaceError::TooLarge(bytes))
    }

    /// Where a block of `needed` goes inside free block `b`, if it fits.
    fn fit_in(&self, b: Block, needed: u64) -> Option<u64> {
        let at = match self.cfg.placement {
            Placement::SizeAligned => {
                let align = needed.checked_next_power_of_two()?;
                b.addr.checked_next_multiple_of(align)?
            }
            _ => b.addr,
        };
        (at.checked_add(needed)? <= b.end()).then_some(at)
    }

    /// The list index where next fit starts.
    fn rover_index(&self) -> usize {
        let Some(r) = self.rover else { return 0 };
        self.list
            .iter()
            .position(|b| b.addr == r)
            .or_else(|| self.list.iter().position(|b| b.addr <= r && r < b.end()))
            .unwrap_or(0)
    }

    /// The chosen list index and address, and the elements examined.
    fn search(&self, needed: u64) -> (Option<(usize, u64)>, usize) {
        let n = self.list.len();
        let start = match self.cfg.placement {
            Placement::NextFit => self.rover_index(),
            _ => 0,
        };
        let mut searched = 0;
        let mut best: Option<(usize, u64)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let b = self.list[i];
            searched += 1;
            let Some(at) = self.fit_in(b, needed) else {
                continue;
            };
            match self.cfg.placement {
                Placement::FirstFit | Placement::NextFit | Placement::SizeAligned => {
                    return (Some((i, at)), searched);
                }
                Placement::BestFit => {
                    if best.is_none_or(|(j, _)| b.size < self.list[j].size) {
                        best = Some((i, at));
                    }
                }
                Placement::WorstFit => {
                    if best.is_none_or(|(j, _)| b.size > self.list[j].size) {
                        best = Some((i, at));
                    }
                }
            }
        }
        (best, searched)
    }

    /// Allocates `bytes` (see the module docs for the rules), or says why
    /// not (with the elements searched).
    pub fn alloc(&mut self, bytes: u64) -> Result<Allocation, FreeSpaceError> {
        let needed = self.block_size(bytes)?;
        let (found, searched) = self.search(needed);
        let Some((i, at)) = found else {
            return Err(FreeSpaceError::NoFit {
                requested: bytes,
                needed,
                free: self.free,
                largest: self.largest_free(),
                searched,
            });
        };
        let b = self.list[i];
        let block = Block {
            addr: at,
            size: needed,
        };
        let before = Block {
            addr: b.addr,
            size: at - b.addr,
        };
        let after = Block {
            addr: block.end(),
            size: b.end() - block.end(),
        };
        let pieces = [before, after].into_iter().filter(|p| p.size > 0);
        self.list.splice(i..=i, pieces);
        // Next fit goes on from the block left over after this one, or
        // from the block that now follows.
        self.rover = if after.size > 0 {
            Some(after.addr)
        } else if self.list.is_empty() {
            None
        } else {
            let j = (i + usize::from(before.size > 0)) % self.list.len();
            Some(self.list[j].addr)
        };
        let ptr = at + self.cfg.header;
        self.live.insert(
            ptr,
            Live {
                block,
                requested: bytes,
                seq: self.served,
            },
        );
        self.served += 1;
        self.free -= needed;
        self.allocated += needed;
        self.requested += bytes;
        Ok(Allocation {
            ptr,
            block,
            requested: bytes,
            searched,
        })
    }

    /// Frees the allocation whose pointer is `ptr` (see the module docs).
    pub fn free(&mut self, ptr: u64) -> Result<Freed, FreeSpaceError> {
        let live = self
            .live
            .remove(&ptr)
            .ok_or(FreeSpaceError::NotAllocated(ptr))?;
        let block = live.block;
        self.free += block.size;
        self.allocated -= block.size;
        self.requested -= live.requested;
        let mut merged = block;
        let mut merges = 0;
        if self.cfg.coalesce == Coalesce::Address {
            if let Some(i) = self.list.iter().position(|b| b.end() == block.addr) {
                let prev = self.list.remove(i);
                merged = Block {
                    addr: prev.addr,
                    size: prev.size + merged.size,
                };
                merges += 1;
            }
            if let Some(i) = self.list.iter().position(|b| b.addr == block.end()) {
                let next = self.list.remove(i);
                merged.size += next.size;
                merges += 1;
            }
        }
        self.insert(merged);
        if self.cfg.coalesce == Coalesce::List {
            let before = self.list.len();
            let mut out: Vec<Block> = Vec::with_capacity(before);
            for b in self.list.drain(..) {
                match out.last_mut() {
                    Some(last) if last.end() == b.addr => last.size += b.size,
                    _ => out.push(b),
                }
            }
            self.list = out;
            merges = before - self.list.len();
        }
        let now_in = self
            .list
            .iter()
            .copied()
            .find(|b| b.addr <= block.addr && block.end() <= b.end())
            .unwrap_or(block);
        Ok(Freed {
            block,
            merges,
            now_in,
        })
    }

    /// Puts a free block in the list by the order rule.
    fn insert(&mut self, b: Block) {
        match self.cfg.order {
            ListOrder::Head => self.list.insert(0, b),
            ListOrder::Tail => self.list.push(b),
            // The list is always in address order here (splits and merges
            // keep it so), so inserting in place is the stable re-sort.
            ListOrder::Address => {
                let at = self.list.partition_point(|x| x.addr < b.addr);
                self.list.insert(at, b);
            }
            ListOrder::SizeAscending => {
                self.list.push(b);
                self.list.sort_by_key(|b| b.size);
            }
            ListOrder::SizeDescending => {
                self.list.push(b);
                self.list.sort_by_key(|b| std::cmp::Reverse(b.size));
            }
        }
    }

    /// The region's figures now.
    #[must_use]
    pub fn stats(&self) -> FreeSpaceStats {
        let (allocated, requested) = (self.allocated, self.requested);
        let largest = self.largest_free();
        FreeSpaceStats {
            heap_bytes: self.cfg.size,
            free_bytes: self.free,
            free_blocks: self.list.len(),
            largest_free: largest,
            allocations: self.live.len(),
            allocated_bytes: allocated,
            requested_bytes: requested,
            internal_fragmentation: allocated - requested,
            external_fragmentation: Milli::ratio(self.free - largest, self.free),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap(
        placement: Placement,
        order: ListOrder,
        coalesce: Coalesce,
        header: u64,
        align: u64,
    ) -> FreeSpace {
        FreeSpace::new(FreeSpaceConfig {
            base: 1000,
            size: 100,
            placement,
            order,
            coalesce,
            header,
            align,
        })
        .expect("valid")
    }

    fn list(h: &FreeSpace) -> Vec<(u64, u64)> {
        h.free_list().iter().map(|b| (b.addr, b.size)).collect()
    }

    #[test]
    fn header_and_alignment_are_counted_as_malloc_py_counts_them() {
        // 3 bytes aligned to 4 is 4, plus a 4-byte header: an 8-byte block
        // at 1000; the program gets 1004.
        let mut h = heap(
            Placement::FirstFit,
            ListOrder::Address,
            Coalesce::Never,
            4,
            4,
        );
        let a = h.alloc(3).expect("fits");
        assert_eq!((a.ptr, a.block.addr, a.block.size), (1004, 1000, 8));
        assert_eq!(list(&h), [(1008, 92)]);
        assert_eq!(h.stats().internal_fragmentation, 5);
        assert_eq!(h.free(1000), Err(FreeSpaceError::NotAllocated(1000)));
        let f = h.free(1004).expect("live");
        assert_eq!(f.block, a.block);
        assert_eq!(list(&h), [(1000, 8), (1008, 92)]);
    }

    #[test]
    fn list_coalescing_depends_on_the_order() {
        // Three 10-byte blocks at 1000, 1010, 1020; the rest is 1030+70.
        let run = |order, coalesce| {
            let mut h = heap(Placement::FirstFit, order, coalesce, 0, 1);
            let p: Vec<u64> = (0..3).map(|_| h.alloc(10).expect("fits").ptr).collect();
            h.free(p[1]).expect("live");
            h.free(p[0]).expect("live");
            h.free(p[2]).expect("live");
            list(&h)
        };
        // Address order with the list pass merges everything back.
        assert_eq!(run(ListOrder::Address, Coalesce::List), [(1000, 100)]);
        // Head insertion: freeing 1010 gives [1010+10, 1030+70]; freeing 1000
        // gives [1000+10, 1010+10, ...] and the pass merges 1000 and 1010;
        // freeing 1020 puts it first: [1020+10, 1000+20, 1030+70]: 1020 ends
        // at 1030 but 1030 is not listed right after it, so nothing merges.
        assert_eq!(
            run(ListOrder::Head, Coalesce::List),
            [(1020, 10), (1000, 20), (1030, 70)]
        );
        // Boundary tags merge whatever the order.
        assert_eq!(run(ListOrder::Head, Coalesce::Address), [(1000, 100)]);
        assert_eq!(
            run(ListOrder::Head, Coalesce::Never),
            [(1020, 10), (1000, 10), (1010, 10), (1030, 70)]
        );
    }

    #[test]
    fn best_and_worst_take_the_first_of_equal_sizes_and_search_everything() {
        let mut h = heap(
            Placement::FirstFit,
            ListOrder::Address,
            Coalesce::Never,
            0,
            1,
        );
        // Blocks: a 5 @1000, b 1 @1005, c 5 @1006, d 1 @1011, rest 1012+88.
        let p: Vec<u64> = [5, 1, 5, 1]
            .iter()
            .map(|&n| h.alloc(n).expect("fits").ptr)
            .collect();
        h.free(p[0]).expect("live");
        h.free(p[2]).expect("live");
        assert_eq!(list(&h), [(1000, 5), (1006, 5), (1012, 88)]);
        h.set_placement(Placement::BestFit);
        let a = h.clone().alloc(4).expect("fits");
        assert_eq!((a.block.addr, a.searched), (1000, 3));
        h.set_placement(Placement::WorstFit);
        let a = h.clone().alloc(4).expect("fits");
        assert_eq!((a.block.addr, a.searched), (1012, 3));
        h.set_placement(Placement::FirstFit);
        let a = h.clone().alloc(6).expect("fits");
        assert_eq!((a.block.addr, a.searched), (1012, 3));
        let e = h.alloc(89).expect_err("too big");
        assert!(matches!(
            e,
            FreeSpaceError::NoFit {
                searched: 3,
                largest: 88,
                free: 98,
                ..
            }
        ));
    }

    #[test]
    fn next_fit_resumes_at_the_leftover_block() {
        let mut h = heap(
            Placement::NextFit,
            ListOrder::Address,
            Coalesce::Never,
            0,
            1,
        );
        let a = h.alloc(10).expect("fits");
        let _b = h.alloc(10).expect("fits");
        h.free(a.ptr).expect("live");
        // List [1000+10, 1020+80]; the rover is at 1020.
        let c = h.alloc(5).expect("fits");
        assert_eq!((c.block.addr, c.searched), (1020, 1));
        // 1025+75 is taken whole: the rover moves to the next element, which
        // wraps to 1000.
        let d = h.alloc(75).expect("fits");
        assert_eq!((d.block.addr, d.searched), (1025, 1));
        let e = h.alloc(3).expect("fits");
        assert_eq!((e.block.addr, e.searched), (1000, 1));
    }

    #[test]
    fn size_ordered_lists_are_resorted_stably_on_free() {
        let mut h = heap(
            Placement::FirstFit,
            ListOrder::SizeAscending,
            Coalesce::Never,
            0,
            1,
        );
        let p: Vec<u64> = [10, 1, 10, 1, 20]
            .iter()
            .map(|&n| h.alloc(n).expect("fits").ptr)
            .collect();
        h.free(p[2]).expect("live"); // 1011+10
        h.free(p[0]).expect("live"); // 1000+10: after the equal 1011
        assert_eq!(list(&h), [(1011, 10), (1000, 10), (1042, 58)]);
        h.free(p[4]).expect("live"); // 1022+20
        assert_eq!(list(&h), [(1011, 10), (1000, 10), (1022, 20), (1042, 58)]);
        let mut d = heap(
            Placement::FirstFit,
            ListOrder::SizeDescending,
            Coalesce::Never,
            0,
            1,
        );
        let p: Vec<u64> = [10, 1, 10]
            .iter()
            .map(|&n| d.alloc(n).expect("fits").ptr)
            .collect();
        d.free(p[0]).expect("live");
        d.free(p[2]).expect("live");
        assert_eq!(list(&d), [(1021, 79), (1000, 10), (1011, 10)]);
    }

    #[test]
    fn size_aligned_leaves_a_gap_and_splits_both_sides() {
        let mut h = FreeSpace::new(FreeSpaceConfig {
            placement: Placement::SizeAligned,
            ..FreeSpaceConfig::new(0, 16)
        })
        .expect("valid");
        assert_eq!(h.alloc(2).map(|a| a.block.addr), Ok(0));
        assert_eq!(h.alloc(4).map(|a| a.block.addr), Ok(4));
        assert_eq!(list(&h), [(2, 2), (8, 8)]);
        // 3 bytes go to a multiple of 4: 8.
        assert_eq!(h.alloc(3).map(|a| a.block.addr), Ok(8));
        assert_eq!(list(&h), [(2, 2), (11, 5)]);
    }

    #[test]
    fn bad_setups_and_requests() {
        assert!(FreeSpace::new(FreeSpaceConfig::new(0, 0)).is_err());
        assert!(FreeSpace::new(FreeSpaceConfig::new(u64::MAX, 2)).is_err());
        let cfg = FreeSpaceConfig {
            align: 0,
            ..FreeSpaceConfig::new(0, 16)
        };
        assert_eq!(FreeSpace::new(cfg).err(), Some(FreeSpaceError::BadAlign(0)));
        let mut three = FreeSpace::new(FreeSpaceConfig {
            align: 3,
            ..FreeSpaceConfig::new(0, 16)
        })
        .expect("any alignment");
        assert_eq!(three.alloc(4).map(|a| a.block.size), Ok(6));
        let mut h = FreeSpace::new(FreeSpaceConfig::new(0, 16)).expect("valid");
        assert_eq!(h.alloc(0), Err(FreeSpaceError::ZeroSize));
        let mut h = FreeSpace::new(FreeSpaceConfig {
            header: 8,
            ..FreeSpaceConfig::new(0, 16)
        })
        .expect("valid");
        assert_eq!(h.alloc(u64::MAX), Err(FreeSpaceError::TooLarge(u64::MAX)));
        assert_eq!(Placement::from_name("best"), Some(Placement::BestFit));
        assert_eq!(
            ListOrder::from_name("size-desc"),
            Some(ListOrder::SizeDescending)
        );
        assert_eq!(Coalesce::from_name("list"), Some(Coalesce::List));
        assert_eq!(Milli::ratio(1, 3).to_string(), "0.333");
    }
}
