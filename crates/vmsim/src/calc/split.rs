//! [`AddressSplit`]: how one virtual address divides into page number,
//! offset and per-level table indices.

use super::{CalcError, Geometry, pow2};

/// One virtual address taken apart the way the MMU reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSplit {
    /// The address.
    pub address: u64,
    /// The virtual page number: the address without its offset bits.
    pub vpn: u64,
    /// The byte within the page.
    pub offset: u64,
    /// The index into the table of each level, root first (empty for a flat table).
    pub indices: Vec<u64>,
}

impl AddressSplit {
    /// Splits `address`, which must fit the geometry's virtual-address width.
    pub fn new(geometry: &Geometry, address: u64) -> Result<Self, CalcError> {
        let space = pow2(geometry.va_bits());
        if u128::from(address) >= space {
            return Err(CalcError::AddressOutside {
                addr: address,
                va_bits: geometry.va_bits(),
                max: space - 1,
            });
        }
        let offset_bits = geometry.offset_bits();
        let indices = geometry
            .levels()
            .iter()
            .map(|l| low_bits(address >> l.index_shift, l.index_bits))
            .collect();
        Ok(Self {
            address,
            // offset_bits <= 48 (a page size), so the shift is in range.
            vpn: address >> offset_bits,
            offset: low_bits(address, offset_bits),
            indices,
        })
    }
}

/// The low `bits` bits of `v`; all of it when `bits` is 64 (a one-level
/// table indexed by a whole 64-bit address).
fn low_bits(v: u64, bits: u32) -> u64 {
    if bits >= 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;
    use proptest::prelude::*;

    #[test]
    fn course_six_bit_address() {
        let g =
            Geometry::new(6, PageSize::from_bytes(16).expect("page"), 1, vec![]).expect("valid");
        let s = AddressSplit::new(&g, 0b111010).expect("fits");
        assert_eq!((s.vpn, s.offset), (3, 10));
        assert!(s.indices.is_empty());
        assert!(AddressSplit::new(&g, 64).is_err());
    }

    #[test]
    fn four_level_indices() {
        let g = Geometry::new(48, PageSize::SIZE_4K, 8, vec![9, 9, 9, 9]).expect("valid");
        let va = (1u64 << 39) * 3 + (1 << 30) * 5 + (1 << 21) * 7 + (1 << 12) * 11 + 0x123;
        let s = AddressSplit::new(&g, va).expect("fits");
        assert_eq!(s.indices, vec![3, 5, 7, 11]);
        assert_eq!(s.offset, 0x123);
    }

    #[test]
    fn full_64_bit_space_accepts_every_address() {
        let g = Geometry::new(64, PageSize::SIZE_4K, 8, vec![]).expect("valid");
        let s = AddressSplit::new(&g, u64::MAX).expect("fits");
        assert_eq!(s.vpn, u64::MAX >> 12);
    }

    #[test]
    fn one_level_of_64_bits_does_not_overflow() {
        let g =
            Geometry::new(64, PageSize::from_bytes(1).expect("page"), 8, vec![64]).expect("valid");
        let s = AddressSplit::new(&g, u64::MAX).expect("fits");
        assert_eq!(s.indices, vec![u64::MAX]);
        assert_eq!(s.offset, 0);
    }

    proptest! {
        /// Putting the indices and the offset back together gives the address.
        #[test]
        fn split_recombines(
            bits in proptest::collection::vec(1u32..12, 1..6),
            shift in 0u32..16,
            raw in any::<u64>(),
        ) {
            let va_bits = shift + bits.iter().sum::<u32>();
            prop_assume!(va_bits <= 64);
            let g = Geometry::new(va_bits, PageSize::from_shift(shift).expect("page"), 8, bits.clone())
                .expect("valid");
            let addr = if va_bits == 64 { raw } else { raw & ((1u64 << va_bits) - 1) };
            let s = AddressSplit::new(&g, addr).expect("fits");
            let mut back = 0u64;
            for (&index, &b) in s.indices.iter().zip(&bits) {
                back = (back << b) | index;
            }
            prop_assert_eq!(back, s.vpn);
            prop_assert_eq!((u128::from(s.vpn) << shift) | u128::from(s.offset), u128::from(addr));
        }
    }
}
