//! Contiguous allocation of variable-size runs of frames: the setting of the
//! course's external-fragmentation example.
//!
//! Requests are for `n` contiguous frames, any `n >= 1` (not only powers of
//! two). Free space is a set of holes kept sorted by address and coalesced
//! with both neighbours on every free, so any failure is due to the
//! placement of what is still allocated, never to stale bookkeeping. Where a
//! request goes is the [`Placement`] strategy:
//!
//! - [`Placement::FirstFit`], the textbook "in order" placement: the lowest
//!   hole that fits, so consecutive requests into empty memory are packed
//!   right after one another;
//! - [`Placement::NextFit`]: the first hole that fits at or after the end of
//!   the previous allocation, wrapping around;
//! - [`Placement::BestFit`] / [`Placement::WorstFit`]: the smallest / largest
//!   hole that fits (lowest address on ties);
//! - [`Placement::SizeAligned`]: a request of `n` frames starts at a frame
//!   number that is a multiple of `n` rounded up to a power of two (first
//!   such place that fits). This is how the course's second allocator leaves
//!   a 2-frame gap after `alloc(2)`: the `alloc(4)`s go to multiples of 4, so
//!   freeing the 2 re-forms an aligned hole of 4. It is the buddy system's
//!   placement rule, without its power-of-two rounding of the size.
//!
//! This module owns the map of holes; it never touches frame contents.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::addr::Pfn;

use super::fragmentation::ContigInfo;

/// Where a request is placed among the holes that can hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The lowest hole that fits ("in order").
    FirstFit,
    /// The first hole that fits after the previous allocation, wrapping.
    NextFit,
    /// The smallest hole that fits.
    BestFit,
    /// The largest hole.
    WorstFit,
    /// The lowest place aligned to the request rounded up to a power of two.
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

    /// The strategy called `name` (as [`Self::name`] spells it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

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
    placement: Placement,
    /// Hole start offset -> length; never two adjacent holes.
    holes: BTreeMap<u64, u64>,
    /// Run start offset -> (length, sequence number of the request).
    runs: BTreeMap<u64, (u64, u64)>,
    free: u64,
    requests: u64,
    /// Offset just past the previous allocation (next fit).
    cursor: u64,
}

impl ContiguousAllocator {
    /// `count` free frames from `first`, placed with `placement`.
    pub fn new(first: Pfn, count: u64, placement: Placement) -> Result<Self, ContigError> {
        let f = first.as_u64();
        if count == 0 || f.checked_add(count).is_none() {
            return Err(ContigError::BadRegion { first: f, count });
        }
        Ok(Self {
            first: f,
            count,
            placement,
            holes: BTreeMap::from([(0, count)]),
            runs: BTreeMap::new(),
            free: count,
            requests: 0,
            cursor: 0,
        })
    }

    /// The placement strategy.
    #[must_use]
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Places later requests with `placement` (what is allocated stays put).
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }

    /// Frames managed.
    #[must_use]
    pub fn total_frames(&self) -> u64 {
        self.count
    }

    /// Frames free.
    #[must_use]
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// The longest run of free frames.
    #[must_use]
    pub fn largest_hole(&self) -> u64 {
        self.holes.values().copied().max().unwrap_or(0)
    }

    /// The free runs, lowest address first.
    pub fn holes(&self) -> impl Iterator<Item = Extent> + '_ {
        self.holes.iter().map(|(&s, &n)| Extent {
            start: Pfn::new(self.first + s),
            frames: n,
        })
    }

    /// The allocated runs, lowest address first, with the sequence number
    /// (0 for the first request served) of the request that got each.
    pub fn runs(&self) -> impl Iterator<Item = (Extent, u64)> + '_ {
        self.runs.iter().map(|(&s, &(n, seq))| {
            (
                Extent {
                    start: Pfn::new(self.first + s),
                    frames: n,
                },
                seq,
            )
        })
    }

    /// Linux's free-memory summary for a request of `request` frames, from
    /// which its fragmentation and unusable-free-space indices follow.
    #[must_use]
    pub fn contig_info(&self, request: u64) -> ContigInfo {
        ContigInfo::from_holes(self.holes.values().copied(), request)
    }

    /// One character per frame: `.` free, otherwise a letter naming the
    /// request that holds it (`a` for the first request served, `b` for the
    /// second, ..., wrapping after `z`), as the course draws its figures.
    #[must_use]
    pub fn frame_map(&self) -> String {
        let mut map = vec![b'.'; self.count as usize];
        for (&s, &(n, seq)) in &self.runs {
            map[s as usize..(s + n) as usize].fill(b'a' + (seq % 26) as u8);
        }
        String::from_utf8(map).unwrap_or_default()
    }

    /// Where a request of `n` frames would go: the offset within the hole
    /// starting at `hole` of length `len`, if it fits there.
    fn fit_in(&self, n: u64, hole: u64, len: u64) -> Option<u64> {
        let at = match self.placement {
            Placement::SizeAligned => {
                let align = n.checked_next_power_of_two()?;
                (self.first + hole).checked_next_multiple_of(align)? - self.first
            }
            _ => hole,
        };
        (at + n <= hole + len).then_some(at)
    }

    fn choose(&self, n: u64) -> Option<(u64, u64, u64)> {
        let fits = |(&h, &len): (&u64, &u64)| self.fit_in(n, h, len).map(|at| (h, len, at));
        match self.placement {
            Placement::FirstFit | Placement::SizeAligned => self.holes.iter().find_map(fits),
            Placement::NextFit => self
                .holes
                .range(self.cursor..)
                .chain(self.holes.range(..self.cursor))
                .find_map(fits),
            Placement::BestFit => self
                .holes
                .iter()
                .filter_map(fits)
                .min_by_key(|&(h, len, _)| (len, h)),
            Placement::WorstFit => self
                .holes
                .iter()
                .filter_map(fits)
                .min_by_key(|&(h, len, _)| (u64::MAX - len, h)),
        }
    }

    /// Allocates `n` contiguous frames where the placement says, or explains
    /// why it cannot (free frames and largest hole).
    pub fn alloc(&mut self, n: u64) -> Result<Extent, ContigError> {
        if n == 0 {
            return Err(ContigError::ZeroFrames);
        }
        let Some((hole, len, at)) = self.choose(n) else {
            return Err(ContigError::NoFit {
                requested: n,
                free: self.free,
                largest_hole: self.largest_hole(),
            });
        };
        self.holes.remove(&hole);
        if at > hole {
            self.holes.insert(hole, at - hole);
        }
        if at + n < hole + len {
            self.holes.insert(at + n, hole + len - at - n);
        }
        self.runs.insert(at, (n, self.requests));
        self.requests += 1;
        self.free -= n;
        self.cursor = at + n;
        Ok(Extent {
            start: Pfn::new(self.first + at),
            frames: n,
        })
    }

    /// Frees the run starting at `start`, merging it with free neighbours.
    pub fn free(&mut self, start: Pfn) -> Result<Extent, ContigError> {
        let not = ContigError::NotAllocated(start.as_u64());
        let s = start.as_u64().checked_sub(self.first).ok_or(not.clone())?;
        let (n, _) = self.runs.remove(&s).ok_or(not)?;
        let (mut hs, mut hl) = (s, n);
        if let Some((&ps, &pl)) = self.holes.range(..s).next_back()
            && ps + pl == s
        {
            self.holes.remove(&ps);
            hs = ps;
            hl += pl;
        }
        if let Some(nl) = self.holes.remove(&(s + n)) {
            hl += nl;
        }
        self.holes.insert(hs, hl);
        self.free += n;
        Ok(Extent { start, frames: n })
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
