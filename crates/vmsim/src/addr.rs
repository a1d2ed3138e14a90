//! Address and number newtypes.
//!
//! Each type states the guarantee it carries. None has a public inner field,
//! and none converts from a bare `u64` by silently masking bits: a value that
//! does not fit is an error, never a truncation.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The widest physical address any supported format produces (RISC-V Sv39/48/57: 56 bits).
pub const MAX_PHYS_BITS: u32 = 56;

/// An address that does not fit the type it was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddrError {
    /// A physical address wider than [`MAX_PHYS_BITS`].
    #[error("physical address {0:#x} is wider than {MAX_PHYS_BITS} bits")]
    PhysTooWide(u64),
    /// A page size that is not a power of two between 1 byte and 2^48 bytes.
    #[error("page size {0} is not a power of two between 1 B and 256 TiB")]
    BadPageSize(u64),
}

/// A virtual address exactly as a program issued it.
///
/// Guarantee: none beyond being 64 bits. Whether it is canonical, or fits a
/// format at all, is a property of the paging format and is checked by it
/// (never by truncating here), so the reason an address is rejected can be
/// reported.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(u64);

impl VirtAddr {
    /// Wraps a raw 64-bit virtual address.
    #[inline]
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit value.
    #[inline]
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// This address plus `bytes`, wrapping at 2^64 as the hardware's adder does.
    #[inline]
    #[must_use]
    pub const fn wrapping_add(self, bytes: u64) -> Self {
        Self(self.0.wrapping_add(bytes))
    }

    /// The page number of this address for pages of `size`.
    #[inline]
    #[must_use]
    pub const fn vpn(self, size: PageSize) -> Vpn {
        Vpn(self.0 >> size.shift())
    }

    /// The offset of this address within its page of `size`.
    #[inline]
    #[must_use]
    pub const fn page_offset(self, size: PageSize) -> u64 {
        self.0 & size.mask()
    }

    /// Rounds down to the start of the page of `size` holding this address.
    #[inline]
    #[must_use]
    pub const fn align_down(self, size: PageSize) -> Self {
        Self(self.0 & !size.mask())
    }

    /// Whether the address is aligned to `size`.
    #[inline]
    #[must_use]
    pub const fn is_aligned(self, size: PageSize) -> bool {
        self.0 & size.mask() == 0
    }
}

/// Serialized as a `0x` hex string for people (JSON reports), as a plain
/// number for machines (checkpoints: compact, and exact).
impl Serialize for VirtAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&format_args!("{:#x}", self.0))
        } else {
            s.serialize_u64(self.0)
        }
    }
}

/// Serialized as a `0x` hex string for people, a number for machines.
impl Serialize for PhysAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&format_args!("{:#x}", self.0))
        } else {
            s.serialize_u64(self.0)
        }
    }
}

/// An address as [`Serialize`] wrote it: a `0x` hex string (or a number)
/// for people, a number for machines.
fn deserialize_address<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    if !d.is_human_readable() {
        return u64::deserialize(d);
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(u64),
        Hex(String),
    }
    match Text::deserialize(d)? {
        Text::Number(n) => Ok(n),
        Text::Hex(h) => {
            let digits = h.strip_prefix("0x").unwrap_or(&h);
            u64::from_str_radix(digits, 16)
                .map_err(|_| D::Error::custom(format!("'{h}' is not a 0x hex address")))
        }
    }
}

impl<'de> Deserialize<'de> for VirtAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_address(d).map(Self)
    }
}

/// Refuses an address wider than [`MAX_PHYS_BITS`]: the guarantee holds for
/// values read back from files too.
impl<'de> Deserialize<'de> for PhysAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(deserialize_address(d)?).map_err(D::Error::custom)
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A physical address.
///
/// Guarantee: at most [`MAX_PHYS_BITS`] bits wide. Whether it lies inside a
/// particular [`PhysMem`](crate::phys::PhysMem) is checked by that memory.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(u64);

impl PhysAddr {
    /// A physical address, or an error if it is wider than [`MAX_PHYS_BITS`].
    #[inline]
    pub const fn new(raw: u64) -> Result<Self, AddrError> {
        if raw >> MAX_PHYS_BITS == 0 {
            Ok(Self(raw))
        } else {
            Err(AddrError::PhysTooWide(raw))
        }
    }

    /// A physical address from a value the caller has already range-checked
    /// (it came from a frame number, or from masking an entry's address field).
    ///
    /// Debug builds check the guarantee.
    #[inline]
    #[must_use]
    pub const fn new_unchecked(raw: u64) -> Self {
        debug_assert!(raw >> MAX_PHYS_BITS == 0);
        Self(raw)
    }

    /// The raw value.
    #[inline]
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// This address plus `bytes`; the caller guarantees the sum stays in range.
    #[inline]
    #[must_use]
    pub const fn add(self, bytes: u64) -> Self {
        Self::new_unchecked(self.0 + bytes)
    }

    /// The frame holding this address, for frames of `size`.
    #[inline]
    #[must_use]
    pub const fn pfn(self, size: PageSize) -> Pfn {
        Pfn(self.0 >> size.shift())
    }

    /// The offset of this address within its frame of `size`.
    #[inline]
    #[must_use]
    pub const fn page_offset(self, size: PageSize) -> u64 {
        self.0 & size.mask()
    }

    /// Whether the address is aligned to `size`.
    #[inline]
    #[must_use]
    pub const fn is_aligned(self, size: PageSize) -> bool {
        self.0 & size.mask() == 0
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A virtual page number: a virtual address shifted right by a page size's shift.
///
/// Guarantee: none by itself; it is meaningful together with the page size it
/// was computed for.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Vpn(u64);

impl Vpn {
    /// Wraps a raw page number.
    #[inline]
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[inline]
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The first address of this page, for pages of `size`.
    #[inline]
    #[must_use]
    pub const fn base(self, size: PageSize) -> VirtAddr {
        VirtAddr(self.0 << size.shift())
    }
}

/// A physical frame number: a physical address shifted right by the frame size's shift.
///
/// Guarantee: none by itself; it is meaningful together with the frame size
/// of the memory it belongs to.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Pfn(u64);

impl Pfn {
    /// Wraps a raw frame number.
    #[inline]
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[inline]
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The first byte of this frame, for frames of `size`.
    ///
    /// Frame numbers come from a memory whose size was checked against
    /// [`MAX_PHYS_BITS`], so the result is in range.
    #[inline]
    #[must_use]
    pub const fn base(self, size: PageSize) -> PhysAddr {
        PhysAddr::new_unchecked(self.0 << size.shift())
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A page (or frame) size: a power of two, stored as its shift.
///
/// Guarantee: the shift is at most 48, so `1 << shift` never overflows and
/// sizes from a 1-byte classroom page up to a 256 TiB page are expressible.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PageSize(u8);

/// Refuses a shift above [`PageSize::MAX_SHIFT`]: the guarantee holds for
/// values read back from files too.
impl<'de> Deserialize<'de> for PageSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shift = u8::deserialize(d)?;
        Self::from_shift(u32::from(shift)).map_err(|_| {
            D::Error::custom(format!(
                "page-size shift {shift} is above {}",
                Self::MAX_SHIFT
            ))
        })
    }
}

impl PageSize {
    /// 4 KiB, the base page of x86 and RISC-V.
    pub const SIZE_4K: Self = Self(12);
    /// 2 MiB, an x86-64 large page and a RISC-V Sv39/48/57 megapage.
    pub const SIZE_2M: Self = Self(21);
    /// 4 MiB, an x86 32-bit PSE page and a RISC-V Sv32 megapage.
    pub const SIZE_4M: Self = Self(22);
    /// 1 GiB, an x86-64 huge page and a RISC-V Sv39/48/57 gigapage.
    pub const SIZE_1G: Self = Self(30);
    /// The largest shift accepted.
    pub const MAX_SHIFT: u32 = 48;

    /// The page size `2^shift` bytes, or an error past [`Self::MAX_SHIFT`].
    pub const fn from_shift(shift: u32) -> Result<Self, AddrError> {
        if shift <= Self::MAX_SHIFT {
            Ok(Self(shift as u8))
        } else {
            Err(AddrError::BadPageSize(0))
        }
    }

    /// The page size of `bytes` bytes, which must be a power of two.
    pub const fn from_bytes(bytes: u64) -> Result<Self, AddrError> {
        if bytes.is_power_of_two() && bytes.trailing_zeros() <= Self::MAX_SHIFT {
            Ok(Self(bytes.trailing_zeros() as u8))
        } else {
            Err(AddrError::BadPageSize(bytes))
        }
    }

    /// log2 of the size in bytes.
    #[inline]
    #[must_use]
    pub const fn shift(self) -> u32 {
        self.0 as u32
    }

    /// The size in bytes.
    #[inline]
    #[must_use]
    pub const fn bytes(self) -> u64 {
        1 << self.0
    }

    /// `bytes() - 1`: the mask of the offset bits.
    #[inline]
    #[must_use]
    pub const fn mask(self) -> u64 {
        (1 << self.0) - 1
    }
}

impl fmt::Debug for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageSize({self})")
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.bytes()))
    }
}

pub use crate::units::format_size;

/// An address-space identifier (x86 PCID, RISC-V ASID) that tags TLB entries.
///
/// Guarantee: none beyond 16 bits; a format's own limit (12 bits for PCID,
/// 9 or 16 for RISC-V) is checked by the MMU that uses it.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Asid(u16);

impl Asid {
    /// Wraps a raw identifier.
    #[inline]
    #[must_use]
    pub const fn new(raw: u16) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[inline]
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

/// A process identifier of the simulated kernel (not an ASID: the kernel
/// assigns ASIDs to processes separately, and may recycle them).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Pid(u32);

impl Pid {
    /// Wraps a raw process id.
    #[inline]
    #[must_use]
    pub const fn new(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw value.
    #[inline]
    #[must_use]
    pub const fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phys_addr_rejects_too_wide() {
        assert!(PhysAddr::new(1 << 55).is_ok());
        assert_eq!(PhysAddr::new(1 << 56), Err(AddrError::PhysTooWide(1 << 56)));
    }

    #[test]
    fn page_size_from_bytes() {
        assert_eq!(PageSize::from_bytes(4096), Ok(PageSize::SIZE_4K));
        assert_eq!(PageSize::from_bytes(16).map(PageSize::shift), Ok(4));
        assert!(PageSize::from_bytes(3000).is_err());
        assert!(PageSize::from_bytes(0).is_err());
    }

    #[test]
    fn split_and_rejoin() {
        let va = VirtAddr::new(0x7fff_ffff_e123);
        assert_eq!(va.page_offset(PageSize::SIZE_4K), 0x123);
        assert_eq!(
            va.vpn(PageSize::SIZE_4K).base(PageSize::SIZE_4K).as_u64(),
            0x7fff_ffff_e000
        );
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(96), "96 B");
        assert_eq!(format_size(1536), "1536 B");
    }
}
