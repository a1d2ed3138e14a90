//! Why a page-table calculation was refused: each variant names the field
//! that is wrong and what was expected.

use thiserror::Error;

/// Bad input to a page-table calculation.
///
/// Each message names the field (as the command line calls it) and the
/// values that disagree, so a student can see which number to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CalcError {
    /// The virtual-address width is 0 or wider than 64 bits.
    #[error("va bits {0} is out of range: expected 1 to 64")]
    VaBits(u32),
    /// The physical-address width is 0 or wider than 64 bits.
    #[error("pa bits {0} is out of range: expected 1 to 64")]
    PaBits(u32),
    /// The page is larger than the whole virtual address space.
    #[error(
        "page size {page} needs {offset_bits} offset bits, more than the {va_bits} va bits of the address space"
    )]
    PageLargerThanSpace {
        /// The page size, formatted with its unit.
        page: String,
        /// log2 of the page size.
        offset_bits: u32,
        /// The virtual-address width.
        va_bits: u32,
    },
    /// The page is larger than the whole physical address space.
    #[error(
        "page size {page} needs {offset_bits} offset bits, more than the {pa_bits} pa bits of physical memory"
    )]
    PageLargerThanPhys {
        /// The page size, formatted with its unit.
        page: String,
        /// log2 of the page size.
        offset_bits: u32,
        /// The physical-address width.
        pa_bits: u32,
    },
    /// An entry size no page-table format uses.
    #[error("pte size {0} bytes is not supported: expected 1, 2, 4, 8 or 16")]
    PteSize(u32),
    /// The frame number does not fit in a page-table entry.
    #[error(
        "pa bits - offset bits = {pa_bits} - {offset_bits} = {pfn_bits} frame-number bits do not fit a {pte_bytes}-byte ({pte_bits}-bit) page-table entry"
    )]
    PfnTooWide {
        /// The physical-address width.
        pa_bits: u32,
        /// log2 of the page size.
        offset_bits: u32,
        /// Bits of a frame number.
        pfn_bits: u32,
        /// The entry size in bytes.
        pte_bytes: u32,
        /// The entry size in bits.
        pte_bits: u32,
    },
    /// The index bits of the levels do not add up to the page-number bits.
    #[error(
        "level bits {list} = {sum} but va bits - offset bits = {va_bits} - {offset_bits} = {vpn_bits}"
    )]
    LevelBitsSum {
        /// The level bits as given, joined with `+`.
        list: String,
        /// Their sum.
        sum: u64,
        /// The virtual-address width.
        va_bits: u32,
        /// log2 of the page size.
        offset_bits: u32,
        /// `va_bits - offset_bits`.
        vpn_bits: u32,
    },
    /// A level with no index bits (a table of one entry) is not a level.
    #[error("level bits: level {level} (root = 1) has 0 index bits; every level needs at least 1")]
    ZeroLevelBits {
        /// 1-based level number, root first.
        level: usize,
    },
    /// A calculation over levels was asked of a flat (one-level) geometry.
    #[error("the geometry is flat: give level bits to compute tables per level")]
    NoLevels,
    /// A page this small cannot hold two entries, so no multi-level table fits one page.
    #[error(
        "a {page} page holds fewer than 2 entries of {pte_bytes} bytes: no table fits one page"
    )]
    PageTooSmallForTables {
        /// The page size, formatted with its unit.
        page: String,
        /// The entry size in bytes.
        pte_bytes: u32,
    },
    /// A used region whose end is not above its start.
    #[error(
        "used region {index} ({start:#x}-{end:#x}) is reversed or empty: the end (exclusive) must be above the start"
    )]
    RegionReversed {
        /// 1-based position of the region as given.
        index: usize,
        /// First byte.
        start: u128,
        /// One past the last byte.
        end: u128,
    },
    /// A used region that reaches past the end of the address space.
    #[error(
        "used region {index} ({start:#x}-{end:#x}) ends beyond the {va_bits}-bit address space, which ends at {limit:#x}"
    )]
    RegionOutside {
        /// 1-based position of the region as given.
        index: usize,
        /// First byte.
        start: u128,
        /// One past the last byte.
        end: u128,
        /// The virtual-address width.
        va_bits: u32,
        /// `2^va_bits`.
        limit: u128,
    },
    /// Two used regions share addresses.
    #[error(
        "used regions {first} ({first_start:#x}-{first_end:#x}) and {second} ({second_start:#x}-{second_end:#x}) overlap"
    )]
    RegionOverlap {
        /// 1-based position of one region as given.
        first: usize,
        /// Its first byte.
        first_start: u128,
        /// One past its last byte.
        first_end: u128,
        /// 1-based position of the other region as given.
        second: usize,
        /// Its first byte.
        second_start: u128,
        /// One past its last byte.
        second_end: u128,
    },
    /// Used regions checked against one address width, used with another.
    #[error(
        "used regions were checked for a {regions_va_bits}-bit space but the geometry has {va_bits} va bits"
    )]
    RegionsWidth {
        /// The width the regions were checked against.
        regions_va_bits: u32,
        /// The geometry's virtual-address width.
        va_bits: u32,
    },
    /// No used region was given for a sparse layout.
    #[error("used regions: give at least one region")]
    NoRegions,
    /// A page size to compare with that is larger than the address space.
    #[error(
        "compare page size {page} needs {offset_bits} offset bits, more than the {va_bits} va bits of the address space"
    )]
    ComparePageTooLarge {
        /// The page size, formatted with its unit.
        page: String,
        /// log2 of the page size.
        offset_bits: u32,
        /// The virtual-address width.
        va_bits: u32,
    },
    /// An address that does not fit the virtual-address width.
    #[error("address {addr:#x} does not fit the {va_bits}-bit address space (largest {max:#x})")]
    AddressOutside {
        /// The address.
        addr: u64,
        /// The virtual-address width.
        va_bits: u32,
        /// The largest address of the space.
        max: u128,
    },
    /// A TLB hit ratio outside `[0, 1]` (or not a number).
    #[error("hit ratio {0} is outside [0, 1]")]
    HitRatio(f64),
    /// A time that is negative, infinite or not a number.
    #[error("{field} {value} is not a finite non-negative number of nanoseconds")]
    Time {
        /// The field, as the command line calls it.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A memory access time that is not a positive finite number.
    #[error("mem ns {0} is not a positive finite number of nanoseconds")]
    MemTime(f64),
    /// Finite inputs whose result is not finite (too large, or a division
    /// by a subnormal time).
    #[error("{0} is not a finite number: the times are too large or too small")]
    Overflow(&'static str),
    /// A page-table walk of zero levels.
    #[error("levels {0} is out of range: expected 1 to 64")]
    Levels(u32),
    /// An element size that is zero or does not divide the page.
    #[error(
        "element size {elem_bytes} bytes does not divide the page size {page}: expected a divisor of {page_bytes}"
    )]
    ElementSize {
        /// The element size in bytes.
        elem_bytes: u64,
        /// The page size, formatted with its unit.
        page: String,
        /// The page size in bytes.
        page_bytes: u64,
    },
}
