//! Physical frame allocation.
//!
//! [`FrameAllocator`] is what the page-table code and the kernel ask for
//! frames. This module owns which frames are free; it never reads or writes
//! frame contents except where an allocator keeps its own bookkeeping inside
//! free frames (the course's free list does).
//!
//! - [`FirstFit`]: a bitmap searched first-fit, for building tables by hand.
//! - [`FreeList`]: the course's list of free frames linked through the frames.
//! - [`Buddy`]: Linux's binary buddy allocator, with `/proc/buddyinfo` counts.
//! - [`FreeSpace`]: the textbook's free-list `malloc`/`free` over a region
//!   (fits, list orders, coalescing, headers, alignment), for the allocator lab.
//! - [`ContiguousAllocator`]: variable-size runs of frames with a choice of
//!   [`Placement`] (a [`FreeSpace`] in frame units), for the course's
//!   external-fragmentation example.
//! - [`slab`]: object caches on top of a frame allocator.
//! - [`ops`] and [`lab`]: operation lists (`a100,f0`) stepped through the
//!   free list, the buddy or the slab allocator, for `vmsim alloc`.
//! - [`fragmentation`]: Linux's fragmentation and unusable-free-space indices.

mod buddy;
mod contiguous;
mod first_fit;
pub mod fragmentation;
pub mod free_space;
mod freelist;
mod index_list;
pub mod lab;
pub mod ops;
pub mod slab;

pub use buddy::{Buddy, BuddyError, DEFAULT_MAX_ORDER, MAX_SUPPORTED_ORDER, order_for_frames};
pub use contiguous::{ContigError, ContiguousAllocator, Extent, Placement};
pub use first_fit::FirstFit;
pub use fragmentation::{ContigInfo, FragmentationReport, Milli};
pub use free_space::{
    Allocation, Block, Coalesce, FreeSpace, FreeSpaceConfig, FreeSpaceError, FreeSpaceStats, Freed,
    ListOrder,
};
pub use freelist::{FreeList, FreeListError, FreeListIn, LINK_BYTES};
pub use slab::{
    CacheId, KernelCaches, ObjHandle, Slab, SlabCache, SlabError, SlabParams, SlabStats,
};

use crate::addr::{PageSize, Pfn};

/// Hands out physical frames: single frames, and naturally aligned runs of
/// `2^order` frames for structures larger than one frame.
pub trait FrameAllocator {
    /// The size of one frame.
    fn frame_size(&self) -> PageSize;

    /// Total frames managed.
    fn total_frames(&self) -> u64;

    /// Frames currently free.
    fn free_frames(&self) -> u64;

    /// A run of `2^order` free frames aligned to its size, or `None` if no
    /// such run is free (fragmentation can cause this with frames to spare).
    fn alloc_order(&mut self, order: u32) -> Option<Pfn>;

    /// Returns a run obtained from [`Self::alloc_order`] with the same order.
    ///
    /// Freeing a frame that is not allocated is a bug of the caller and panics.
    fn free_order(&mut self, pfn: Pfn, order: u32);

    /// One free frame.
    fn alloc(&mut self) -> Option<Pfn> {
        self.alloc_order(0)
    }

    /// Returns one frame obtained from [`Self::alloc`].
    fn free(&mut self, pfn: Pfn) {
        self.free_order(pfn, 0);
    }
}
