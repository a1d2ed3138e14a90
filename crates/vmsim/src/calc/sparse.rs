//! [`SparseLayout`]: which tables of a multi-level page table exist when only
//! some regions of the address space are used, and what they cost.

use super::{CalcError, Geometry, UsedRegions, pow2};

/// The tables of one level that exist for a sparse address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseLevel {
    /// Index bits of this level.
    pub index_bits: u32,
    /// Tables of this level that exist: one per aligned block of
    /// `table_covers` bytes holding at least one used address.
    pub tables: u128,
    /// Entries in those tables: `tables * 2^index_bits`.
    pub entries: u128,
    /// Entries that are valid (point to a lower table or, at the leaf level,
    /// to a page that is used).
    pub valid_entries: u128,
    /// Bytes of those tables.
    pub bytes: u128,
    /// Tables of this level if the whole address space were used.
    pub tables_full: u128,
}

/// The page tables a multi-level table needs for a set of used regions,
/// compared with a flat table.
///
/// A table exists iff some used address maps through it; the root always
/// exists. This is the course's counting ("3 of the 4 inner tables exist,
/// 48 entries instead of 64").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseLayout {
    /// Per level, root first.
    pub levels: Vec<SparseLevel>,
    /// Entries of the flat table of the same geometry.
    pub flat_entries: u128,
    /// Bytes of that flat table.
    pub flat_bytes: u128,
    /// Bytes of address space in use.
    pub used_bytes: u128,
    /// Pages in use (leaf entries that are valid).
    pub used_pages: u128,
}

impl SparseLayout {
    /// Counts the tables of `geometry` (which must have level bits) that
    /// exist for `regions`.
    pub fn compute(geometry: &Geometry, regions: &UsedRegions) -> Result<Self, CalcError> {
        if geometry.level_bits().is_empty() {
            return Err(CalcError::NoLevels);
        }
        if regions.va_bits() != geometry.va_bits() {
            return Err(CalcError::RegionsWidth {
                regions_va_bits: regions.va_bits(),
                va_bits: geometry.va_bits(),
            });
        }
        let pte = u128::from(geometry.pte_bytes());
        let levels = geometry
            .levels()
            .iter()
            .map(|info| {
                let shift = info.index_shift + info.index_bits;
                // Every block of a table's coverage that is touched is one table.
                let tables = regions.blocks_touched(shift);
                let entries = tables * pow2(info.index_bits);
                SparseLevel {
                    index_bits: info.index_bits,
                    tables,
                    entries,
                    valid_entries: regions.blocks_touched(info.index_shift),
                    bytes: entries * pte,
                    tables_full: info.tables_full,
                }
            })
            .collect();
        Ok(Self {
            levels,
            flat_entries: geometry.flat_entries(),
            flat_bytes: geometry.flat_bytes(),
            used_bytes: regions.used_bytes(),
            used_pages: regions.blocks_touched(geometry.offset_bits()),
        })
    }

    /// Entries of the leaf (last-level) tables that exist: the number the
    /// course compares with the flat table.
    #[must_use]
    pub fn leaf_table_entries(&self) -> u128 {
        self.levels.last().map_or(0, |l| l.entries)
    }

    /// Leaf tables that exist.
    #[must_use]
    pub fn leaf_tables(&self) -> u128 {
        self.levels.last().map_or(0, |l| l.tables)
    }

    /// Entries of all tables that exist, every level.
    #[must_use]
    pub fn total_entries(&self) -> u128 {
        self.levels.iter().map(|l| l.entries).sum()
    }

    /// Bytes of all tables that exist, every level.
    #[must_use]
    pub fn total_bytes(&self) -> u128 {
        self.levels.iter().map(|l| l.bytes).sum()
    }

    /// Percent of the flat table's entries saved by the leaf tables alone
    /// (the course's measure: 48 vs 64 is 25%).
    #[must_use]
    pub fn leaf_saving_percent(&self) -> f64 {
        saving(self.leaf_table_entries(), self.flat_entries)
    }

    /// Percent of the flat table's entries saved counting every level; negative
    /// when the tree costs more than the flat table.
    #[must_use]
    pub fn total_saving_percent(&self) -> f64 {
        saving(self.total_entries(), self.flat_entries)
    }
}

/// `100 * (1 - part / whole)`; exact for the powers of two and small counts
/// that occur here, and close enough to print otherwise.
#[allow(clippy::cast_precision_loss)]
fn saving(part: u128, whole: u128) -> f64 {
    100.0 * (1.0 - part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;
    use crate::calc::UsedRegion;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn course_a8() -> (Geometry, UsedRegions) {
        let g = Geometry::new(12, PageSize::from_bytes(64).expect("page"), 1, vec![2, 4])
            .expect("valid");
        let regions = UsedRegions::new(
            &[
                UsedRegion {
                    start: 0,
                    end: 2048,
                },
                UsedRegion {
                    start: 3072,
                    end: 4096,
                },
            ],
            12,
        )
        .expect("valid");
        (g, regions)
    }

    #[test]
    fn course_two_level_example() {
        let (g, regions) = course_a8();
        let layout = SparseLayout::compute(&g, &regions).expect("levels given");
        assert_eq!(layout.flat_entries, 64);
        assert_eq!(layout.levels[0].tables, 1);
        assert_eq!(layout.levels[0].valid_entries, 3);
        assert_eq!(layout.levels[1].tables, 3);
        assert_eq!(layout.leaf_table_entries(), 48);
        assert_eq!(layout.total_entries(), 52);
        assert!((layout.leaf_saving_percent() - 25.0).abs() < 1e-12);
        assert!((layout.total_saving_percent() - 18.75).abs() < 1e-12);
        assert_eq!(layout.used_pages, 48);
    }

    #[test]
    fn flat_geometry_is_refused() {
        let (g, regions) = course_a8();
        let flat = g.with_level_bits(vec![]).expect("valid");
        assert_eq!(
            SparseLayout::compute(&flat, &regions),
            Err(CalcError::NoLevels)
        );
    }

    #[test]
    fn whole_space_used_builds_the_full_tree() {
        let g = Geometry::new(39, PageSize::SIZE_4K, 8, vec![9, 9, 9]).expect("sv39");
        let all = UsedRegions::new(
            &[UsedRegion {
                start: 0,
                end: 1 << 39,
            }],
            39,
        )
        .expect("valid");
        let layout = SparseLayout::compute(&g, &all).expect("levels");
        for level in &layout.levels {
            assert_eq!(level.tables, level.tables_full);
        }
        assert_eq!(layout.leaf_table_entries(), layout.flat_entries);
        assert_eq!(layout.total_entries(), (1 << 27) + (1 << 18) + (1 << 9));
    }

    proptest! {
        /// Tables per level agree with walking every used page and collecting
        /// the distinct table each level would use.
        #[test]
        fn tables_match_brute_force(
            starts in proptest::collection::btree_set(0u128..256, 1..8),
            bits in prop_oneof![Just(vec![8u32]), Just(vec![4, 4]), Just(vec![2, 3, 3]), Just(vec![1, 1, 6])],
        ) {
            // 14-bit space, 64-byte pages: 8 VPN bits; each start is one used page.
            let g = Geometry::new(14, PageSize::from_bytes(64).expect("page"), 4, bits.clone()).expect("valid");
            let regions: Vec<UsedRegion> = starts.iter().map(|&p| UsedRegion { start: p << 6, end: (p << 6) + 1 }).collect();
            let used = UsedRegions::new(&regions, 14).expect("disjoint");
            let layout = SparseLayout::compute(&g, &used).expect("levels");
            let mut below: u32 = bits.iter().sum();
            for (i, &b) in bits.iter().enumerate() {
                below -= b;
                let tables: BTreeSet<u128> = starts.iter().map(|&p| p >> (below + b)).collect();
                prop_assert_eq!(layout.levels[i].tables, tables.len() as u128);
                prop_assert_eq!(layout.levels[i].entries, tables.len() as u128 * (1u128 << b));
            }
        }
    }
}
