//! [`SequentialScan`]: the TLB behaviour of reading an array element by
//! element (the course's "1024 ints per page: one miss, then 1023 hits").

use crate::addr::{PageSize, format_size};

use super::CalcError;

/// A page-aligned array scanned in order, one element per reference, with a
/// TLB large enough to keep the current page's translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequentialScan {
    /// Elements that fit in one page.
    pub elements_per_page: u64,
    /// TLB misses per page: the first reference to each page.
    pub misses_per_page: u64,
    /// TLB hits per page: every later reference to it.
    pub hits_per_page: u64,
}

impl SequentialScan {
    /// The scan of elements of `elem_bytes` bytes, which must divide the page
    /// size (so no element straddles two pages).
    pub fn new(page_size: PageSize, elem_bytes: u64) -> Result<Self, CalcError> {
        let page_bytes = page_size.bytes();
        if elem_bytes == 0 || !page_bytes.is_multiple_of(elem_bytes) {
            return Err(CalcError::ElementSize {
                elem_bytes,
                page: format_size(page_bytes),
                page_bytes,
            });
        }
        let elements_per_page = page_bytes / elem_bytes;
        Ok(Self {
            elements_per_page,
            misses_per_page: 1,
            hits_per_page: elements_per_page - 1,
        })
    }

    /// Fraction of references that hit in the TLB.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn hit_ratio(&self) -> f64 {
        self.hits_per_page as f64 / self.elements_per_page as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_in_a_4k_page() {
        let s = SequentialScan::new(PageSize::SIZE_4K, 4).expect("divides");
        assert_eq!(s.elements_per_page, 1024);
        assert_eq!((s.misses_per_page, s.hits_per_page), (1, 1023));
        assert!((s.hit_ratio() - 1023.0 / 1024.0).abs() < 1e-15);
    }

    #[test]
    fn element_must_divide_the_page() {
        assert!(SequentialScan::new(PageSize::SIZE_4K, 24).is_err());
        assert!(SequentialScan::new(PageSize::SIZE_4K, 0).is_err());
        assert!(SequentialScan::new(PageSize::SIZE_4K, 8192).is_err());
        assert_eq!(
            SequentialScan::new(PageSize::SIZE_4K, 4096).map(|s| s.hits_per_page),
            Ok(0)
        );
    }
}
