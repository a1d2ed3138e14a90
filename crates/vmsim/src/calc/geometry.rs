//! [`Geometry`]: the shape of a radix page table (address width, page size,
//! entry size, index bits per level) and the sizes that follow from it.

use crate::addr::{PageSize, format_size};

use super::{CalcError, pow2};

/// The widest virtual or physical address accepted.
const MAX_ADDR_BITS: u32 = 64;

/// The shape of a page table: what every size and count in this module is
/// computed from.
///
/// Guarantee (checked by [`Geometry::new`]): `1 <= va_bits <= 64`; the page
/// fits the address space; the entry size is 1, 2, 4, 8 or 16 bytes; the
/// level bits, if any, are each at least 1 and add up to
/// `va_bits - offset_bits`; a physical width, if any, leaves room for the
/// page offset and its frame number fits one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    va_bits: u32,
    page_size: PageSize,
    pte_bytes: u32,
    level_bits: Vec<u32>,
    pa_bits: Option<u32>,
}

/// One level of a multi-level table, root first: what one table of this
/// level holds and covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelInfo {
    /// Bits of the virtual address that index a table of this level.
    pub index_bits: u32,
    /// Lowest bit of the address that indexes this level (the shift).
    pub index_shift: u32,
    /// Entries in one table of this level: `2^index_bits`.
    pub entries_per_table: u128,
    /// Bytes of one table: entries times the entry size.
    pub table_bytes: u128,
    /// Bytes of address space one entry of this level maps: `2^index_shift`.
    pub entry_covers: u128,
    /// Bytes of address space one table of this level maps.
    pub table_covers: u128,
    /// Tables of this level when the whole address space is mapped.
    pub tables_full: u128,
}

/// What a physical-address width implies for frames and entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysInfo {
    /// The physical-address width.
    pub pa_bits: u32,
    /// Bytes of physical memory addressable: `2^pa_bits`.
    pub phys_bytes: u128,
    /// Bits of a frame number: `pa_bits - offset_bits`.
    pub pfn_bits: u32,
    /// Frames of physical memory: `2^pfn_bits`.
    pub frames: u128,
    /// Bits of an entry beyond the frame number (flags, reserved, software bits).
    pub pte_spare_bits: u32,
}

/// How a flat table changes when the page size changes (the course's
/// "2 MiB pages need 512x fewer entries").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizeComparison {
    /// The other page size.
    pub page_size: PageSize,
    /// Its offset bits.
    pub offset_bits: u32,
    /// Entries of a flat table with that page size.
    pub flat_entries: u128,
    /// Bytes of that flat table.
    pub flat_bytes: u128,
    /// `log2(entries now / entries with the other page size)`: positive when
    /// the other page is larger (fewer entries), negative when smaller.
    pub log2_reduction: i32,
}

impl PageSizeComparison {
    /// The reduction factor `entries now / entries with the other page`,
    /// when it is a whole number (the other page is at least as large).
    #[must_use]
    pub fn reduction_factor(&self) -> Option<u128> {
        u32::try_from(self.log2_reduction).ok().map(pow2)
    }

    /// The factor by which entries grow, when the other page is smaller.
    #[must_use]
    pub fn growth_factor(&self) -> Option<u128> {
        if self.log2_reduction < 0 {
            Some(pow2(self.log2_reduction.unsigned_abs()))
        } else {
            None
        }
    }
}

impl Geometry {
    /// A validated geometry. `level_bits` lists the index bits of each level,
    /// root first; empty means a flat (one-level) table.
    pub fn new(
        va_bits: u32,
        page_size: PageSize,
        pte_bytes: u32,
        level_bits: Vec<u32>,
    ) -> Result<Self, CalcError> {
        if va_bits == 0 || va_bits > MAX_ADDR_BITS {
            return Err(CalcError::VaBits(va_bits));
        }
        let offset_bits = page_size.shift();
        if offset_bits > va_bits {
            return Err(CalcError::PageLargerThanSpace {
                page: format_size(page_size.bytes()),
                offset_bits,
                va_bits,
            });
        }
        if !matches!(pte_bytes, 1 | 2 | 4 | 8 | 16) {
            return Err(CalcError::PteSize(pte_bytes));
        }
        if let Some(zero) = level_bits.iter().position(|&b| b == 0) {
            return Err(CalcError::ZeroLevelBits { level: zero + 1 });
        }
        if !level_bits.is_empty() {
            let sum: u64 = level_bits.iter().map(|&b| u64::from(b)).sum();
            let vpn_bits = va_bits - offset_bits;
            if sum != u64::from(vpn_bits) {
                let list = level_bits
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("+");
                return Err(CalcError::LevelBitsSum {
                    list,
                    sum,
                    va_bits,
                    offset_bits,
                    vpn_bits,
                });
            }
        }
        Ok(Self {
            va_bits,
            page_size,
            pte_bytes,
            level_bits,
            pa_bits: None,
        })
    }

    /// This geometry with a physical-address width, checked against the page
    /// offset and the entry size.
    pub fn with_pa_bits(mut self, pa_bits: u32) -> Result<Self, CalcError> {
        if pa_bits == 0 || pa_bits > MAX_ADDR_BITS {
            return Err(CalcError::PaBits(pa_bits));
        }
        let offset_bits = self.offset_bits();
        if offset_bits > pa_bits {
            return Err(CalcError::PageLargerThanPhys {
                page: format_size(self.page_size.bytes()),
                offset_bits,
                pa_bits,
            });
        }
        let pfn_bits = pa_bits - offset_bits;
        let pte_bits = self.pte_bytes * 8;
        if pfn_bits > pte_bits {
            return Err(CalcError::PfnTooWide {
                pa_bits,
                offset_bits,
                pfn_bits,
                pte_bytes: self.pte_bytes,
                pte_bits,
            });
        }
        self.pa_bits = Some(pa_bits);
        Ok(self)
    }

    /// This geometry with other level bits (validated as in [`Self::new`]),
    /// keeping the physical width.
    pub fn with_level_bits(&self, level_bits: Vec<u32>) -> Result<Self, CalcError> {
        let mut g = Self::new(self.va_bits, self.page_size, self.pte_bytes, level_bits)?;
        g.pa_bits = self.pa_bits;
        Ok(g)
    }

    /// Width of a virtual address in bits.
    #[must_use]
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }

    /// The page size.
    #[must_use]
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Bytes of one page-table entry.
    #[must_use]
    pub fn pte_bytes(&self) -> u32 {
        self.pte_bytes
    }

    /// Index bits per level, root first; empty for a flat table.
    #[must_use]
    pub fn level_bits(&self) -> &[u32] {
        &self.level_bits
    }

    /// The physical-address width, if one was given.
    #[must_use]
    pub fn pa_bits(&self) -> Option<u32> {
        self.pa_bits
    }

    /// Bits of the page offset: `log2(page size)`.
    #[must_use]
    pub fn offset_bits(&self) -> u32 {
        self.page_size.shift()
    }

    /// Bits of the virtual page number: `va_bits - offset_bits`.
    #[must_use]
    pub fn vpn_bits(&self) -> u32 {
        self.va_bits - self.offset_bits()
    }

    /// Bytes of virtual address space: `2^va_bits`.
    #[must_use]
    pub fn address_space_bytes(&self) -> u128 {
        pow2(self.va_bits)
    }

    /// Pages of virtual address space, which is also the number of entries
    /// of a flat table: `2^vpn_bits`.
    #[must_use]
    pub fn flat_entries(&self) -> u128 {
        pow2(self.vpn_bits())
    }

    /// Bytes of a flat table: entries times the entry size.
    #[must_use]
    pub fn flat_bytes(&self) -> u128 {
        self.flat_entries() * u128::from(self.pte_bytes)
    }

    /// Entries that fit in one page: `page size / entry size` (0 when an
    /// entry is larger than a page).
    #[must_use]
    pub fn entries_per_page(&self) -> u64 {
        self.page_size.bytes() / u64::from(self.pte_bytes)
    }

    /// Index bits of a table that fills exactly one page:
    /// `log2(page size / entry size)`, or an error when a page holds fewer
    /// than two entries.
    pub fn index_bits_per_page(&self) -> Result<u32, CalcError> {
        let per_page = self.entries_per_page();
        if per_page < 2 {
            return Err(CalcError::PageTooSmallForTables {
                page: format_size(self.page_size.bytes()),
                pte_bytes: self.pte_bytes,
            });
        }
        // Page and entry sizes are powers of two, so the quotient is too.
        Ok(per_page.trailing_zeros())
    }

    /// Levels needed so that every table fits in one page:
    /// `ceil(vpn_bits / index_bits_per_page)` (the course's
    /// `(virtual - offset) / index`, rounded up when it does not divide).
    pub fn levels_to_fit_page(&self) -> Result<u32, CalcError> {
        let index = self.index_bits_per_page()?;
        Ok(self.vpn_bits().div_ceil(index))
    }

    /// The level bits of a table whose every level fits one page: full
    /// levels of `index_bits_per_page` bits, the root taking the remainder
    /// (as x86-64 and RISC-V do when the bits do not divide evenly).
    pub fn fit_level_bits(&self) -> Result<Vec<u32>, CalcError> {
        let index = self.index_bits_per_page()?;
        let levels = self.levels_to_fit_page()?;
        let mut bits = vec![index; levels as usize];
        if let Some(root) = bits.first_mut() {
            *root = self.vpn_bits() - index * (levels - 1);
        }
        Ok(bits)
    }

    /// What each level's tables hold and cover, root first; empty for a flat
    /// table.
    #[must_use]
    pub fn levels(&self) -> Vec<LevelInfo> {
        let pte = u128::from(self.pte_bytes);
        let mut below = self.offset_bits() + self.level_bits.iter().sum::<u32>();
        let mut above = 0;
        self.level_bits
            .iter()
            .map(|&bits| {
                below -= bits;
                let info = LevelInfo {
                    index_bits: bits,
                    index_shift: below,
                    entries_per_table: pow2(bits),
                    table_bytes: pow2(bits) * pte,
                    entry_covers: pow2(below),
                    table_covers: pow2(below + bits),
                    tables_full: pow2(above),
                };
                above += bits;
                info
            })
            .collect()
    }

    /// What the physical width implies, if one was given.
    #[must_use]
    pub fn phys(&self) -> Option<PhysInfo> {
        self.pa_bits.map(|pa_bits| {
            let pfn_bits = pa_bits - self.offset_bits();
            PhysInfo {
                pa_bits,
                phys_bytes: pow2(pa_bits),
                pfn_bits,
                frames: pow2(pfn_bits),
                pte_spare_bits: self.pte_bytes * 8 - pfn_bits,
            }
        })
    }

    /// How a flat table would change with pages of `other` size.
    pub fn compare_page_size(&self, other: PageSize) -> Result<PageSizeComparison, CalcError> {
        let offset_bits = other.shift();
        if offset_bits > self.va_bits {
            return Err(CalcError::ComparePageTooLarge {
                page: format_size(other.bytes()),
                offset_bits,
                va_bits: self.va_bits,
            });
        }
        let flat_entries = pow2(self.va_bits - offset_bits);
        // Both shifts are at most 64, so the difference fits an i32.
        let log2_reduction = offset_bits as i32 - self.offset_bits() as i32;
        Ok(PageSizeComparison {
            page_size: other,
            offset_bits,
            flat_entries,
            flat_bytes: flat_entries * u128::from(self.pte_bytes),
            log2_reduction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn page(bytes: u64) -> PageSize {
        PageSize::from_bytes(bytes).expect("test page size")
    }

    #[test]
    fn flat_table_32_bit() {
        let g = Geometry::new(32, PageSize::SIZE_4K, 4, vec![]).expect("valid");
        assert_eq!(g.vpn_bits(), 20);
        assert_eq!(g.flat_entries(), 1 << 20);
        assert_eq!(g.flat_bytes(), 4 << 20);
        assert_eq!(g.levels_to_fit_page(), Ok(2));
        assert_eq!(g.fit_level_bits(), Ok(vec![10, 10]));
    }

    #[test]
    fn flat_table_64_bit_and_1_byte_pages_do_not_overflow() {
        let g = Geometry::new(64, page(1), 16, vec![]).expect("valid");
        assert_eq!(g.flat_entries(), 1u128 << 64);
        assert_eq!(g.flat_bytes(), 1u128 << 68);
        assert!(g.levels_to_fit_page().is_err());
    }

    #[test]
    fn levels_round_up_and_root_takes_remainder() {
        let g = Geometry::new(64, PageSize::SIZE_4K, 8, vec![]).expect("valid");
        assert_eq!(g.levels_to_fit_page(), Ok(6));
        assert_eq!(g.fit_level_bits(), Ok(vec![7, 9, 9, 9, 9, 9]));
    }

    #[test]
    fn level_bits_must_add_up() {
        let err = Geometry::new(12, page(64), 1, vec![2, 3]).expect_err("sum 5 != 6");
        assert_eq!(
            err.to_string(),
            "level bits 2+3 = 5 but va bits - offset bits = 12 - 6 = 6"
        );
        assert_eq!(
            Geometry::new(12, page(64), 1, vec![6, 0]),
            Err(CalcError::ZeroLevelBits { level: 2 })
        );
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(
            Geometry::new(65, PageSize::SIZE_4K, 8, vec![]),
            Err(CalcError::VaBits(65))
        );
        assert_eq!(
            Geometry::new(32, PageSize::SIZE_4K, 3, vec![]),
            Err(CalcError::PteSize(3))
        );
        assert!(matches!(
            Geometry::new(12, page(8192), 4, vec![]),
            Err(CalcError::PageLargerThanSpace { .. })
        ));
        let g = Geometry::new(32, PageSize::SIZE_4K, 4, vec![]).expect("valid");
        assert!(matches!(
            g.clone().with_pa_bits(45),
            Err(CalcError::PfnTooWide { pfn_bits: 33, .. })
        ));
        assert_eq!(g.clone().with_pa_bits(0), Err(CalcError::PaBits(0)));
        assert!(g.with_pa_bits(44).is_ok());
    }

    #[test]
    fn level_coverage() {
        let g = Geometry::new(32, page(1024), 4, vec![12, 10]).expect("valid");
        let levels = g.levels();
        assert_eq!(levels[1].table_covers, 1 << 20);
        assert_eq!(levels[1].entry_covers, 1 << 10);
        assert_eq!(levels[1].tables_full, 1 << 12);
        assert_eq!(levels[0].table_covers, 1 << 32);
        assert_eq!(levels[0].tables_full, 1);
        assert_eq!(levels[0].table_bytes, 4 << 12);
    }

    #[test]
    fn comparison_both_directions() {
        let g = Geometry::new(48, PageSize::SIZE_4K, 8, vec![]).expect("valid");
        let big = g.compare_page_size(PageSize::SIZE_1G).expect("fits");
        assert_eq!(big.offset_bits, 30);
        assert_eq!(big.reduction_factor(), Some(1 << 18));
        assert_eq!(big.growth_factor(), None);
        let small = g.compare_page_size(page(1024)).expect("fits");
        assert_eq!(small.reduction_factor(), None);
        assert_eq!(small.growth_factor(), Some(4));
        let g12 = Geometry::new(12, page(64), 1, vec![]).expect("valid");
        assert!(g12.compare_page_size(PageSize::SIZE_2M).is_err());
    }

    proptest! {
        /// The page-fitting split covers the page number exactly, no level is
        /// wider than a page of entries, and one level fewer would not do.
        #[test]
        fn fit_level_bits_fit(va_bits in 1u32..=64, shift in 0u32..=48, pte_log in 0u32..=4) {
            prop_assume!(shift <= va_bits);
            let g = Geometry::new(va_bits, PageSize::from_shift(shift).expect("page"), 1 << pte_log, vec![])
                .expect("valid");
            prop_assert_eq!(g.flat_bytes(), g.flat_entries() << pte_log);
            match g.index_bits_per_page() {
                Ok(index) => {
                    let bits = g.fit_level_bits().expect("fits");
                    prop_assert_eq!(bits.iter().sum::<u32>(), g.vpn_bits());
                    prop_assert!(bits.iter().all(|&b| (1..=index).contains(&b)));
                    let levels = g.levels_to_fit_page().expect("fits");
                    prop_assert_eq!(levels as usize, bits.len());
                    prop_assert!(levels == 0 || (levels - 1) * index < g.vpn_bits());
                    let tree = g.with_level_bits(bits).expect("valid split");
                    prop_assert!(tree.levels().iter().all(|l| l.table_bytes <= u128::from(g.page_size().bytes())));
                }
                Err(_) => prop_assert!(shift < pte_log + 1),
            }
        }
    }
}
