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
            .map(|l| (address >> l.index_shift) & ((1u64 << l.index_bits) - 1))
            .collect();
        Ok(Self {
            address,
            // offset_bits <= 48 (a page size), so the shift is in range.
            vpn: address >> offset_bits,
            offset: address & ((1u64 << offset_bits) - 1),
            indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;

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
}
