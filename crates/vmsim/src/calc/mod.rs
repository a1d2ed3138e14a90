//! Page-table arithmetic: the numbers a course on paging asks for, computed
//! from a page-table geometry rather than looked up.
//!
//! This module owns pure calculations over a [`Geometry`] (virtual-address
//! width, page size, entry size, index bits per level): the size of a flat
//! table, how many levels make every table fit one page, how an address
//! splits into indices, which tables exist for a sparse address space
//! ([`SparseLayout`]), how much a larger page shrinks the table
//! ([`PageSizeComparison`]), the effective access time of translation
//! ([`EatInput`]) and the TLB behaviour of a sequential scan
//! ([`SequentialScan`]).
//!
//! It builds no page tables and touches no simulated memory: the paging
//! module does that, and its formats can be turned into a [`Geometry`] to
//! ask these questions about them. Counts and byte totals are `u128`: a
//! 64-bit address space with 1-byte pages has 2^64 entries, one more than
//! `u64` holds, and every result here stays below 2^69, so no arithmetic in
//! this module can overflow.

mod eat;
mod error;
mod geometry;
mod region;
mod scan;
mod sparse;
mod split;

pub use eat::{Eat, EatInput};
pub use error::CalcError;
pub use geometry::{Geometry, LevelInfo, PageSizeComparison, PhysInfo};
pub use region::{UsedRegion, UsedRegions};
pub use scan::SequentialScan;
pub use sparse::{SparseLayout, SparseLevel};
pub use split::AddressSplit;

/// `2^bits` as a `u128`; `bits` is at most 127 here by construction
/// (every caller passes a width bounded by 64 + 4).
#[inline]
pub(crate) const fn pow2(bits: u32) -> u128 {
    debug_assert!(bits < 128);
    1u128 << bits
}
