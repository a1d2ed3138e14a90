//! [`UsedRegions`]: the parts of an address space a process uses, checked to
//! be ordered, disjoint and inside the space.

use super::{CalcError, pow2};

/// A range of virtual addresses in use: `start` inclusive, `end` exclusive.
///
/// Bounds are `u128` so a region can end at `2^64`, the end of a full 64-bit
/// address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsedRegion {
    /// First address in use.
    pub start: u128,
    /// One past the last address in use.
    pub end: u128,
}

/// The used regions of one address space.
///
/// Guarantee (checked by [`UsedRegions::new`]): at least one region; each is
/// non-empty and inside `[0, 2^va_bits)`; they are sorted by start and do not
/// overlap (they may touch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedRegions {
    sorted: Vec<UsedRegion>,
    va_bits: u32,
}

impl UsedRegions {
    /// Checks regions given in any order against a `va_bits`-wide space.
    ///
    /// Error messages number regions from 1 in the order given.
    pub fn new(regions: &[UsedRegion], va_bits: u32) -> Result<Self, CalcError> {
        if regions.is_empty() {
            return Err(CalcError::NoRegions);
        }
        if va_bits == 0 || va_bits > 64 {
            return Err(CalcError::VaBits(va_bits));
        }
        let limit = pow2(va_bits);
        for (i, r) in regions.iter().enumerate() {
            if r.end <= r.start {
                return Err(CalcError::RegionReversed {
                    index: i + 1,
                    start: r.start,
                    end: r.end,
                });
            }
            if r.end > limit {
                return Err(CalcError::RegionOutside {
                    index: i + 1,
                    start: r.start,
                    end: r.end,
                    va_bits,
                    limit,
                });
            }
        }
        let mut order: Vec<usize> = (0..regions.len()).collect();
        order.sort_by_key(|&i| (regions[i].start, regions[i].end));
        for pair in order.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if regions[b].start < regions[a].end {
                let (first, second) = (a.min(b), a.max(b));
                return Err(CalcError::RegionOverlap {
                    first: first + 1,
                    first_start: regions[first].start,
                    first_end: regions[first].end,
                    second: second + 1,
                    second_start: regions[second].start,
                    second_end: regions[second].end,
                });
            }
        }
        Ok(Self {
            sorted: order.into_iter().map(|i| regions[i]).collect(),
            va_bits,
        })
    }

    /// The regions, sorted by start.
    #[must_use]
    pub fn as_slice(&self) -> &[UsedRegion] {
        &self.sorted
    }

    /// The width of the address space the regions were checked against.
    #[must_use]
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }

    /// Bytes in use: the sum of the region lengths.
    #[must_use]
    pub fn used_bytes(&self) -> u128 {
        self.sorted.iter().map(|r| r.end - r.start).sum()
    }

    /// How many distinct blocks of `2^shift` bytes (aligned) hold at least one
    /// used address: the number of tables (or entries, or pages) that a used
    /// address maps through at that granularity.
    #[must_use]
    pub fn blocks_touched(&self, shift: u32) -> u128 {
        let mut count = 0;
        let mut last_counted: Option<u128> = None;
        for r in &self.sorted {
            let mut first = r.start >> shift;
            let last = (r.end - 1) >> shift;
            if last_counted == Some(first) {
                first += 1;
            }
            if last >= first {
                count += last - first + 1;
            }
            last_counted = Some(last);
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn r(start: u128, end: u128) -> UsedRegion {
        UsedRegion { start, end }
    }

    #[test]
    fn rejects_reversed_outside_and_overlapping() {
        assert!(matches!(
            UsedRegions::new(&[r(10, 10)], 12),
            Err(CalcError::RegionReversed { index: 1, .. })
        ));
        assert!(matches!(
            UsedRegions::new(&[r(0, 1), r(0, 4097)], 12),
            Err(CalcError::RegionOutside { index: 2, .. })
        ));
        assert!(matches!(
            UsedRegions::new(&[r(100, 200), r(0, 101)], 12),
            Err(CalcError::RegionOverlap {
                first: 1,
                second: 2,
                ..
            })
        ));
        assert_eq!(UsedRegions::new(&[], 12), Err(CalcError::NoRegions));
        assert!(UsedRegions::new(&[r(100, 200), r(0, 100)], 12).is_ok());
        assert!(UsedRegions::new(&[r(0, 1 << 64)], 64).is_ok());
    }

    #[test]
    fn touching_regions_share_a_block_once() {
        let regions = UsedRegions::new(&[r(0, 100), r(100, 200)], 12).expect("valid");
        assert_eq!(regions.blocks_touched(10), 1);
        assert_eq!(regions.blocks_touched(0), 200);
        assert_eq!(regions.used_bytes(), 200);
    }

    proptest! {
        /// Blocks counted by arithmetic equal the set of blocks of every used byte.
        #[test]
        fn blocks_touched_matches_brute_force(
            raw in proptest::collection::vec((0u128..4096, 1u128..300), 1..6),
            shift in 0u32..13,
        ) {
            // Build disjoint regions by laying the pieces out with gaps.
            let mut regions = Vec::new();
            let mut at = 0u128;
            for (gap, len) in raw {
                let start = at + gap;
                let end = (start + len).min(1 << 14);
                if start >= end { break; }
                regions.push(r(start, end));
                at = end;
            }
            prop_assume!(!regions.is_empty());
            regions.reverse();
            let used = UsedRegions::new(&regions, 14).expect("disjoint by construction");
            let brute: BTreeSet<u128> = regions
                .iter()
                .flat_map(|g| (g.start..g.end).map(move |a| a >> shift))
                .collect();
            prop_assert_eq!(used.blocks_touched(shift), brute.len() as u128);
        }
    }
}
