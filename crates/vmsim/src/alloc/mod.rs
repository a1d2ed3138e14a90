//! Physical frame allocation.
//!
//! [`FrameAllocator`] is what the page-table code and the kernel ask for
//! frames. This module owns which frames are free; it never reads or writes
//! frame contents except where an allocator keeps its own bookkeeping inside
//! free frames (the course's free list does).

mod first_fit;

pub use first_fit::FirstFit;

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
