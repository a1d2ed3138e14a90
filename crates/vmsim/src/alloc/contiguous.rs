//! Contiguous allocation of variable-size runs of frames: the setting of the
//! course's external-fragmentation example.
//!
//! Requests are for `n` contiguous frames, any `n >= 1` (not only powers of
//! two). This is the free-list allocator of [`super::free_space`] counted in
//! frames, with the list kept in address order and freed runs merged with
//! both neighbours (boundary tags), so any failure is due to the placement
//! of what is still allocated, never to stale bookkeeping. Where a request
//! goes is the [`Placement`] strategy:
//!
//! - [`Placement::FirstFit`], the textbook "in order" placement: the lowest
//!   hole that fits, so consecutive requests into empty memory are packed
//!   right after one another;
//! - [`Placement::NextFit`]: the first hole that fits, starting from the
//!   hole left over by the previous allocation, wrapping around;
//! - [`Placement::BestFit`] / [`Placement::WorstFit`]: the smallest / largest
//!   hole that fits (lowest address on ties);
//! - [`Placement::SizeAligned`]: a request of `n` frames starts at a frame
//!   number that is a multiple of `n` rounded up to a power of two (first
//!   such place that fits). This is how the course's second allocator leaves
//!   a 2-frame gap after `alloc(2)`: the `alloc(4)`s go to multiples of 4, so
//!   freeing the 2 re-forms an aligned hole of 4. It is the buddy system's
//!   placement rule, without its power-of-two rounding of the size.
//!
//! This module owns the frame-level view (extents, the frame map); the holes
//! and the placement live in [`FreeSpace`]. It never touches frame contents.

use thiserror::Error;

use crate::addr::Pfn;

use super::fragmentation::ContigInfo;
pub use super::free_space::Placement;
use super::free_space::{Coalesce, FreeSpace, FreeSpaceConfig, FreeSpaceError, ListOrder};

/// A run of contiguous frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    /// First frame.
    pub start: Pfn,
    /// Number of frames.
    pub frames: u64,
}

/// A contiguous request or free that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContigError {
    /// A region of zero frames, or one whose end overflows.
    #[error("region of {count} frames at pfn {first:#x} is empty or overflows")]
    BadRegion {
        /// First frame.
        first: u64,
        /// Number of frames.
        count: u64,
    },
    /// A request for zero frames.
    #[error("a request must be for at least one frame")]
    ZeroFrames,
    /// No hole can hold the request (with this placement).
    #[error(
        "no room for {requested} contiguous frames: {free} frames free, largest hole {largest_hole}"
    )]
    NoFit {
        /// Frames requested.
        requested: u64,
        /// Frames free in total.
        free: u64,
        /// The largest hole.
        largest_hole: u64,
    },
    /// The frame does not start an allocated run.
    #[error("pfn {0:#x} does not start an allocated run")]
    NotAllocated(u64),
}

/// An allocator of variable-size contiguous runs over `[first, first + count)`.
#[derive(Debug, Clone)]
pub struct ContiguousAllocator {
    first: u64,
    count: u64,
    space: FreeSpace,
}

impl ContiguousAllocator {
    /// `count` free frames from `first`, placed with `placement`.
    pub fn new(first: Pfn, count: u64, placement: Placement) -> Result<Self, ContigError> {
        let f = first.as_u64();
        let space = FreeSpace::new(FreeSpaceConfig {
            placement,
            order: ListOrder::Address,
            coalesce: Coalesce::Address,
            ..FreeSpaceConfig::new(f, count)
        })
        .map_err(|_| ContigError::BadRegion { first: f, count })?;
        Ok(Self {
            first: f,
            count,
            space,
        })
    }

    /// The placement strategy.
    #[must_use]
    pub fn placement(&self) -> Placement {
        self.space.config().placement
    }

    /// Places later requests with `placement` (what is allocated stays put).
    pub fn set_placement(&mut self, placement: Placement) {
        self.space.set_placement(placement);
    }

    /// Frames managed.
    #[must_use]
    pub fn total_frames(&self) -> u64 {
        self.count
    }

    /// Frames free.
    #[must_use]
    pub fn free_frames(&self) -> u64 {
        self.space.free_bytes()
    }

    /// The longest run of free frames.
    #[must_use]
    pub fn largest_hole(&self) -> u64 {
        self.space.largest_free()
    }

    /// The free runs, lowest address first.
    pub fn holes(&self) -> impl Iterator<Item = Extent> + '_ {
        self.space.free_list().iter().map(|b| Extent {
            start: Pfn::new(b.addr),
            frames: b.size,
        })
    }

    /// The allocated runs, lowest address first, with the sequence number
    /// (0 for the first request served) of the request that got each.
    pub fn runs(&self) -> impl Iterator<Item = (Extent, u64)> + '_ {
        self.space.allocations().map(|(b, _, seq)| {
            (
                Extent {
                    start: Pfn::new(b.addr),
                    frames: b.size,
                },
                seq,
            )
        })
    }

    /// Linux's free-memory summary for a request of `request` frames, from
    /// which its fragmentation and unusable-free-space indices follow.
    #[must_use]
    pub fn contig_info(&self, request: u64) -> ContigInfo {
        ContigInfo::from_holes(self.space.free_list().iter().map(|b| b.size), request)
    }

    /// One character per frame: `.` free, otherwise a letter naming the
    /// request that holds it (`a` for the first request served, `b` for the
    /// second, ..., wrapping after `z`), as the course draws its figures.
    #[must_use]
    pub fn frame_map(&self) -> String {
        let mut map = vec![b'.'; self.count as usize];
        for (e, seq) in self.runs() {
            let s = (e.start.as_u64() - self.first) as usize;
            map[s..s + e.frames as usize].fill(b'a' + (seq % 26) as u8);
        }
        String::from_utf8(map).unwrap_or_default()
    }

    /// Allocates `n` contiguous frames where the placement says, or explains
    /// why it cannot (free frames and largest hole).
    pub fn alloc(&mut self, n: u64) -> Result<Extent, ContigError> {
        match self.space.alloc(n) {
            Ok(a) => Ok(Extent {
                start: Pfn::new(a.block.addr),
                frames: n,
            }),
            Err(FreeSpaceError::NoFit { free, largest, .. }) => Err(ContigError::NoFit {
                requested: n,
                free,
                largest_hole: largest,
            }),
            Err(FreeSpaceError::ZeroSize) => Err(ContigError::ZeroFrames),
            Err(_) => Err(ContigError::NoFit {
                requested: n,
                free: self.free_frames(),
                largest_hole: self.largest_hole(),
            }),
        }
    }

    /// Frees the run starting at `start`, merging it with free neighbours.
    pub fn free(&mut self, start: Pfn) -> Result<Extent, ContigError> {
        let f = self
            .space
            .free(start.as_u64())
            .map_err(|_| ContigError::NotAllocated(start.as_u64()))?;
        Ok(Extent {
            start,
            frames: f.block.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(p: Placement) -> ContiguousAllocator {
        ContiguousAllocator::new(Pfn::new(0), 16, p).expect("alloc")
    }

    #[test]
    fn holes_coalesce_on_both_sides() {
        let mut a = alloc(Placement::FirstFit);
        let x = a.alloc(3).expect("x");
        let y = a.alloc(3).expect("y");
        let z = a.alloc(3).expect("z");
        assert_eq!(a.frame_map(), "aaabbbccc.......");
        a.free(x.start).expect("free");
        a.free(z.start).expect("free");
        assert_eq!(a.holes().count(), 2);
        a.free(y.start).expect("free");
        assert_eq!(
            a.holes().collect::<Vec<_>>(),
            vec![Extent {
                start: Pfn::new(0),
                frames: 16
            }]
        );
        assert_eq!(a.free(y.start), Err(ContigError::NotAllocated(3)));
    }

    #[test]
    fn strategies_pick_different_holes() {
        // Holes of 3 at 0, 1 at 4, 5 at 6 (after 10 frames): set up by hand.
        let layout = |p| {
            let mut a = alloc(Placement::FirstFit);
            let r: Vec<Extent> = [3, 1, 1, 1, 5, 5]
                .iter()
                .map(|&n| a.alloc(n).expect("fill"))
                .collect();
            for i in [0, 2, 4] {
                a.free(r[i].start).expect("free");
            }
            a.set_placement(p);
            a
        };
        let mut first = layout(Placement::FirstFit);
        assert_eq!(first.frame_map(), "...b.d.....fffff");
        assert_eq!(first.alloc(1).map(|e| e.start.as_u64()), Ok(0));
        let mut best = layout(Placement::BestFit);
        assert_eq!(best.alloc(1).map(|e| e.start.as_u64()), Ok(4));
        let mut worst = layout(Placement::WorstFit);
        assert_eq!(worst.alloc(1).map(|e| e.start.as_u64()), Ok(6));
        let mut aligned = layout(Placement::SizeAligned);
        assert_eq!(aligned.alloc(2).map(|e| e.start.as_u64()), Ok(0));
        // 3 frames go to a multiple of 4: not 2 or 4 (too short), but 8.
        assert_eq!(aligned.alloc(3).map(|e| e.start.as_u64()), Ok(8));
    }

    #[test]
    fn next_fit_continues_after_the_last_allocation() {
        let mut a = alloc(Placement::NextFit);
        let x = a.alloc(4).expect("x");
        a.alloc(4).expect("y");
        a.free(x.start).expect("free");
        // The hole at 0 fits, but next fit goes on from frame 8.
        assert_eq!(a.alloc(2).map(|e| e.start.as_u64()), Ok(8));
        a.alloc(6).expect("rest");
        // Wraps around to the hole at 0.
        assert_eq!(a.alloc(3).map(|e| e.start.as_u64()), Ok(0));
    }

    #[test]
    fn bad_requests() {
        let mut a = alloc(Placement::FirstFit);
        assert_eq!(a.alloc(0), Err(ContigError::ZeroFrames));
        assert_eq!(
            a.alloc(17),
            Err(ContigError::NoFit {
                requested: 17,
                free: 16,
                largest_hole: 16
            })
        );
        assert!(ContiguousAllocator::new(Pfn::new(0), 0, Placement::FirstFit).is_err());
        assert_eq!(Placement::from_name("best-fit"), Some(Placement::BestFit));
        assert_eq!(Placement::from_name("nope"), None);
    }
}
