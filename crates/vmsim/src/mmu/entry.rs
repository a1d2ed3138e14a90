//! One cached translation: [`TlbEntry`], and the permission bits it carries, [`Perms`].
//!
//! An entry is what a TLB remembers of a page-table walk: which virtual page
//! of which address space maps to which physical frame, with what rights.
//! It is `Copy` and 32 bytes, so a set of four fits in two cache lines and a
//! hit copies it out without touching the heap.
//!
//! This module owns the entry's layout and its arithmetic (match, translate,
//! splinter). Which entry lives where is the business of
//! [`TlbArray`](super::TlbArray).

use serde::{Deserialize, Serialize};
use std::fmt;

use bitflags::bitflags;

use crate::addr::{Asid, PageSize, PhysAddr, VirtAddr};

bitflags! {
    /// The rights a translation grants, as the TLB caches them (the
    /// combination over all levels of the walk, already decoded from the
    /// format's PTE bits).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
    pub struct Perms: u8 {
        /// Loads allowed.
        const READ = 1 << 0;
        /// Stores allowed.
        const WRITE = 1 << 1;
        /// Instruction fetches allowed (x86: NX clear; RISC-V: X set).
        const EXECUTE = 1 << 2;
        /// User-mode accesses allowed (x86 U/S = 1; RISC-V U = 1).
        const USER = 1 << 3;
    }
}

/// Bits of [`TlbEntry::flags`] above the four [`Perms`] bits.
const VALID: u8 = 1 << 4;
const GLOBAL: u8 = 1 << 5;
const DIRTY: u8 = 1 << 6;
const PERMS_MASK: u8 = 0x0f;

/// One cached translation.
///
/// Fields (29 bytes, 32 with padding):
/// - `vpn`: the page number of the entry's *granule* (the page size of the
///   array slot it occupies, see [`TlbEntry::granule`]);
/// - `frame`: the physical base of that granule;
/// - `pte`: the physical address of the leaf page-table entry, so the MMU can
///   report or update it;
/// - `asid`: the address space that loaded it (ignored when global);
/// - `granule` and `page` shifts: normally equal; a large page cached in an
///   array that holds only smaller sizes is *splintered* into a granule of
///   the smaller size (as x86 cores do), and then `page` remembers the real
///   mapping size for invalidation and statistics;
/// - flags: valid, global, dirty (the cached D bit: a write that hits a clean
///   entry must walk again to set D in memory), and the [`Perms`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TlbEntry {
    vpn: u64,
    frame: PhysAddr,
    pte: PhysAddr,
    asid: Asid,
    granule_shift: u8,
    page_shift: u8,
    flags: u8,
}

/// A [`TlbEntry`]'s flags byte ([`TlbEntry::flags`]): its rights and
/// dirty bit, read as the entry's own methods read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryFlags(u8);

impl EntryFlags {
    /// [`TlbEntry::perms`].
    #[inline(always)]
    #[must_use]
    pub(crate) const fn perms(self) -> Perms {
        Perms::from_bits_truncate(self.0 & PERMS_MASK)
    }

    /// [`TlbEntry::is_dirty`].
    #[inline(always)]
    #[must_use]
    pub(crate) const fn is_dirty(self) -> bool {
        self.0 & DIRTY != 0
    }

    /// The byte itself.
    #[inline(always)]
    #[must_use]
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// Flags of `bits` ([`EntryFlags::bits`]).
    #[inline(always)]
    #[must_use]
    pub(crate) const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }
}

impl TlbEntry {
    /// A valid, non-global, clean entry with no rights, mapping the page of
    /// `size` that holds `va` to the frame starting at `frame`.
    ///
    /// `frame` must be aligned to `size` (debug builds check); the offset of
    /// `va` inside its page is dropped.
    #[inline]
    #[must_use]
    pub fn new(asid: Asid, va: VirtAddr, size: PageSize, frame: PhysAddr) -> Self {
        debug_assert!(
            frame.is_aligned(size),
            "frame {frame} not aligned to {size}"
        );
        let shift = size.shift() as u8;
        Self {
            vpn: va.vpn(size).as_u64(),
            frame,
            pte: PhysAddr::default(),
            asid,
            granule_shift: shift,
            page_shift: shift,
            flags: VALID,
        }
    }

    /// This entry with the rights `perms`.
    #[inline]
    #[must_use]
    pub const fn with_perms(mut self, perms: Perms) -> Self {
        self.flags = (self.flags & !PERMS_MASK) | perms.bits();
        self
    }

    /// This entry marked global (matches every ASID; survives non-global flushes) or not.
    #[inline]
    #[must_use]
    pub const fn with_global(mut self, global: bool) -> Self {
        self.flags = if global {
            self.flags | GLOBAL
        } else {
            self.flags & !GLOBAL
        };
        self
    }

    /// This entry with its cached dirty bit set or clear.
    #[inline]
    #[must_use]
    pub const fn with_dirty(mut self, dirty: bool) -> Self {
        self.flags = if dirty {
            self.flags | DIRTY
        } else {
            self.flags & !DIRTY
        };
        self
    }

    /// This entry remembering the physical address of its leaf PTE.
    #[inline]
    #[must_use]
    pub const fn with_pte(mut self, pte: PhysAddr) -> Self {
        self.pte = pte;
        self
    }

    /// Whether the slot holds a translation (an empty slot is all zeros).
    #[inline]
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.flags & VALID != 0
    }

    /// Whether the entry matches every ASID.
    #[inline]
    #[must_use]
    pub const fn is_global(&self) -> bool {
        self.flags & GLOBAL != 0
    }

    /// The cached dirty bit: false means a write must walk again to set D.
    #[inline]
    #[must_use]
    pub const fn is_dirty(&self) -> bool {
        self.flags & DIRTY != 0
    }

    /// Whether a user store that hits this entry is done on the TLB-hit
    /// path: the entry grants user writes and is already dirty (so no walk
    /// sets D). One test of the flags: what `Mmu::translate` tests, as two,
    /// before it hands a store its address (see `Tlb::store_recent`).
    #[inline(always)]
    #[must_use]
    pub const fn takes_user_store(&self) -> bool {
        const NEEDED: u8 = Perms::WRITE.bits() | Perms::USER.bits() | DIRTY;
        self.flags & NEEDED == NEEDED
    }

    /// The rights the entry grants.
    #[inline]
    #[must_use]
    pub const fn perms(&self) -> Perms {
        Perms::from_bits_truncate(self.flags & PERMS_MASK)
    }

    /// The entry's flags byte, as [`EntryFlags`] reads it: what a hit's
    /// user needs of the entry (its rights and dirty bit) in one byte.
    #[inline(always)]
    #[must_use]
    pub(crate) const fn flags(&self) -> EntryFlags {
        EntryFlags(self.flags)
    }

    /// The address space that loaded the entry.
    #[inline]
    #[must_use]
    pub const fn asid(&self) -> Asid {
        self.asid
    }

    /// The physical address of the leaf PTE this entry was loaded from.
    #[inline]
    #[must_use]
    pub const fn pte(&self) -> PhysAddr {
        self.pte
    }

    /// The size of the region this entry translates (its array slot's page size).
    #[inline]
    #[must_use]
    pub const fn granule(&self) -> PageSize {
        page_size(self.granule_shift)
    }

    /// The size of the page the page table maps (at least [`Self::granule`]).
    #[inline]
    #[must_use]
    pub const fn page_size(&self) -> PageSize {
        page_size(self.page_shift)
    }

    /// log2 of [`Self::granule`] (as `granule().shift()`, without the
    /// conversion: for tables indexed by shift).
    #[inline(always)]
    #[must_use]
    pub const fn granule_shift(&self) -> u32 {
        self.granule_shift as u32
    }

    /// Whether `other` has the same granule (a fill that evicts an entry of
    /// the same granule leaves the array's per-size counts as they were).
    #[inline(always)]
    #[must_use]
    pub const fn same_granule(&self, other: &Self) -> bool {
        self.granule_shift == other.granule_shift
    }

    /// Whether the entry is a piece of a larger page (its granule is
    /// smaller than its page).
    #[inline(always)]
    #[must_use]
    pub const fn is_splintered(&self) -> bool {
        self.granule_shift != self.page_shift
    }

    /// log2 of [`Self::page_size`], for counters indexed by shift.
    #[inline(always)]
    #[must_use]
    pub const fn page_shift(&self) -> u32 {
        self.page_shift as u32
    }

    /// The page number of the granule, in units of [`Self::granule`].
    #[inline]
    #[must_use]
    pub const fn vpn(&self) -> u64 {
        self.vpn
    }

    /// The first virtual address the entry translates.
    #[inline]
    #[must_use]
    pub const fn base(&self) -> VirtAddr {
        VirtAddr::new(self.vpn << self.granule_shift)
    }

    /// The physical base of the granule.
    #[inline]
    #[must_use]
    pub const fn frame(&self) -> PhysAddr {
        self.frame
    }

    /// Whether the entry is a granule of `1 << shift` bytes translating page
    /// `vpn` (in those units) for `asid`. The size matters: in an array
    /// holding several sizes, page 0 of 4 KiB and page 0 of 1 GiB are
    /// different pages.
    #[inline(always)]
    #[must_use]
    pub fn matches(&self, vpn: u64, shift: u32, asid: Asid) -> bool {
        // One compare per field, combined without short-circuit branches.
        (self.vpn == vpn)
            & (u32::from(self.granule_shift) == shift)
            & (self.flags & VALID != 0)
            & ((self.asid == asid) | (self.flags & GLOBAL != 0))
    }

    /// Whether the entry is valid, not global, and [`TlbEntry::matches`]
    /// page `vpn` at granule shift `shift` for `asid`: a match the walking
    /// probe's hit paths take whole (a global entry they leave to the
    /// general path). The address space and granule compared as one word
    /// (adjacent fields; the compiler reads them with one load), the
    /// flags' valid and global bits in one test.
    #[inline(always)]
    #[must_use]
    pub fn is_private_match(&self, vpn: u64, shift: u32, asid: Asid) -> bool {
        let key = u32::from(self.asid.as_u16()) | u32::from(self.granule_shift) << 16;
        let want = u32::from(asid.as_u16()) | (shift & 0xff) << 16;
        (self.vpn == vpn) & (key == want) & (self.flags & (VALID | GLOBAL) == VALID)
    }

    /// [`TlbEntry::is_private_match`] of an entry whose granule and page
    /// shifts are also `sizes` (the granule's in the low byte, the page's
    /// above: `Tlb`'s `sizes_of`): the address space and both shifts
    /// compared as one word.
    #[inline(always)]
    #[must_use]
    pub fn is_private_match_of(&self, vpn: u64, sizes: u16, asid: Asid) -> bool {
        let key = u32::from(self.asid.as_u16())
            | u32::from(self.granule_shift) << 16
            | u32::from(self.page_shift) << 24;
        let want = u32::from(asid.as_u16()) | u32::from(sizes) << 16;
        (self.vpn == vpn) & (key == want) & (self.flags & (VALID | GLOBAL) == VALID)
    }

    /// Whether the *page* this entry came from (not just its granule) holds `va`.
    #[inline]
    #[must_use]
    pub const fn page_covers(&self, va: VirtAddr) -> bool {
        let page_vpn = self.vpn >> (self.page_shift - self.granule_shift);
        self.is_valid() && va.as_u64() >> self.page_shift == page_vpn
    }

    /// The physical address of `va`, which the entry must cover.
    #[inline(always)]
    #[must_use]
    pub const fn translate(&self, va: VirtAddr) -> PhysAddr {
        let mask = (1u64 << self.granule_shift) - 1;
        self.frame.add(va.as_u64() & mask)
    }

    /// The piece of this entry's page that holds `va`, as an entry of the
    /// smaller `granule` (for an array that cannot hold the page's size).
    ///
    /// `granule` must not be larger than the entry's current granule.
    #[inline]
    #[must_use]
    pub fn splinter(&self, va: VirtAddr, granule: PageSize) -> Self {
        debug_assert!(granule.shift() <= u32::from(self.granule_shift));
        let offset_in_granule = va.as_u64() & ((1u64 << self.granule_shift) - 1);
        let mut piece = *self;
        piece.vpn = va.vpn(granule).as_u64();
        piece.frame = self.frame.add(offset_in_granule & !granule.mask());
        piece.granule_shift = granule.shift() as u8;
        piece
    }

    /// Same translation target (page, frame, rights, global) as `other`,
    /// ignoring the dirty bit and PTE address: used to decide whether a fill
    /// refreshes an entry in place.
    #[inline]
    #[must_use]
    pub fn same_slot(&self, other: &Self) -> bool {
        self.vpn == other.vpn
            && self.granule_shift == other.granule_shift
            && self.is_valid()
            && other.is_valid()
            && (self.asid == other.asid || self.is_global() || other.is_global())
    }
}

/// A page size from a shift that came from a valid [`PageSize`].
#[inline]
const fn page_size(shift: u8) -> PageSize {
    match PageSize::from_shift(shift as u32) {
        Ok(size) => size,
        Err(_) => PageSize::SIZE_4K, // unreachable: shifts are copied from PageSize values
    }
}

impl fmt::Debug for TlbEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_valid() {
            return f.write_str("TlbEntry(empty)");
        }
        write!(
            f,
            "TlbEntry({} {} -> {} asid {} {:?}{}{}",
            self.base(),
            self.granule(),
            self.frame,
            self.asid.as_u16(),
            self.perms(),
            if self.is_global() { " global" } else { "" },
            if self.is_dirty() { " dirty" } else { "" },
        )?;
        if self.page_shift != self.granule_shift {
            write!(f, " splintered from {}", self.page_size())?;
        }
        f.write_str(")")
    }
}

impl TlbEntry {
    /// Checks an entry read back from a checkpoint against the machine it
    /// is restored into (see [`RestoreLimits`](super::RestoreLimits)): an
    /// empty slot is all zeros; a valid entry has known flag bits, granule
    /// and page sizes of the format's range with the granule not above the
    /// page, a page number that fits the address width, a frame aligned to
    /// its granule and inside memory, a leaf-PTE address inside memory, and
    /// an address-space id the kernel can hand out. Every later use of the
    /// entry (shifts, translation, A/D write-backs) relies on these.
    pub(crate) fn check_restored(&self, limits: &super::RestoreLimits<'_>) -> Result<(), String> {
        if !self.is_valid() {
            return if *self == Self::default() {
                Ok(())
            } else {
                Err("an empty slot holds data".into())
            };
        }
        if self.flags & !(PERMS_MASK | VALID | GLOBAL | DIRTY) != 0 {
            return Err(format!("flags {:#04x} has unknown bits", self.flags));
        }
        let granule = PageSize::from_shift(u32::from(self.granule_shift))
            .map_err(|_| format!("granule shift {} is not a page size", self.granule_shift))?;
        PageSize::from_shift(u32::from(self.page_shift))
            .map_err(|_| format!("page shift {} is not a page size", self.page_shift))?;
        if self.granule_shift > self.page_shift {
            return Err(format!(
                "granule shift {} is above its page shift {}",
                self.granule_shift, self.page_shift
            ));
        }
        if self.granule_shift > 0 && self.vpn >> (64 - u32::from(self.granule_shift)) != 0 {
            return Err(format!(
                "page number {:#x} does not fit a 64-bit address at {granule}",
                self.vpn
            ));
        }
        let frame = self.frame.as_u64();
        let end = frame.checked_add(granule.bytes());
        if !self.frame.is_aligned(granule) || end.is_none_or(|e| e > limits.mem_bytes) {
            return Err(format!(
                "frame {frame:#x} ({granule}) is not an aligned frame inside the {} bytes of memory",
                limits.mem_bytes
            ));
        }
        let pte = self.pte.as_u64();
        if !pte.is_multiple_of(4) || pte.checked_add(8).is_none_or(|e| e > limits.mem_bytes) {
            return Err(format!(
                "leaf PTE address {pte:#x} is not an entry inside the {} bytes of memory",
                limits.mem_bytes
            ));
        }
        if u32::from(self.asid.as_u16()) >= limits.asids {
            return Err(format!(
                "ASID {} is out of range (the kernel has {})",
                self.asid.as_u16(),
                limits.asids
            ));
        }
        Ok(())
    }
}

/// Raw access for tests that forge restored states (every field, no checks).
#[cfg(test)]
impl TlbEntry {
    pub(crate) fn forge_fields(
        &mut self,
    ) -> (
        &mut u64,
        &mut PhysAddr,
        &mut PhysAddr,
        &mut Asid,
        &mut u8,
        &mut u8,
        &mut u8,
    ) {
        (
            &mut self.vpn,
            &mut self.frame,
            &mut self.pte,
            &mut self.asid,
            &mut self.granule_shift,
            &mut self.page_shift,
            &mut self.flags,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(raw: u64) -> PhysAddr {
        PhysAddr::new(raw).expect("test address fits")
    }

    #[test]
    fn entry_is_small() {
        assert!(size_of::<TlbEntry>() <= 32);
    }

    #[test]
    fn translate_keeps_offset() {
        let e = TlbEntry::new(
            Asid::new(1),
            VirtAddr::new(0x1234_5678),
            PageSize::SIZE_4K,
            pa(0x9000),
        );
        assert_eq!(e.translate(VirtAddr::new(0x1234_5678)), pa(0x9678));
        assert_eq!(e.vpn(), 0x12345);
        assert!(e.matches(0x12345, 12, Asid::new(1)));
        assert!(!e.matches(0x12345, 12, Asid::new(2)));
        assert!(
            !e.matches(0x12345, 21, Asid::new(1)),
            "same number, other size"
        );
        assert!(e.with_global(true).matches(0x12345, 12, Asid::new(2)));
        assert!(!TlbEntry::default().matches(0, 0, Asid::new(0)));
    }

    #[test]
    fn flags_round_trip() {
        let e = TlbEntry::new(
            Asid::new(3),
            VirtAddr::new(0),
            PageSize::SIZE_2M,
            pa(0x20_0000),
        )
        .with_perms(Perms::READ | Perms::USER)
        .with_dirty(true)
        .with_global(true)
        .with_pte(pa(0x5008));
        assert_eq!(e.perms(), Perms::READ | Perms::USER);
        assert!(e.is_dirty() && e.is_global() && e.is_valid());
        assert_eq!(e.pte(), pa(0x5008));
        let e = e
            .with_dirty(false)
            .with_global(false)
            .with_perms(Perms::WRITE);
        assert!(!e.is_dirty() && !e.is_global());
        assert_eq!(e.perms(), Perms::WRITE);
    }

    #[test]
    fn splinter_picks_the_right_piece() {
        let big = TlbEntry::new(
            Asid::new(0),
            VirtAddr::new(0x4000_0000),
            PageSize::SIZE_2M,
            pa(0x80_0000),
        );
        let va = VirtAddr::new(0x4001_3abc);
        let piece = big.splinter(va, PageSize::SIZE_4K);
        assert_eq!(piece.granule(), PageSize::SIZE_4K);
        assert_eq!(piece.page_size(), PageSize::SIZE_2M);
        assert_eq!(piece.translate(va), big.translate(va));
        assert_eq!(piece.translate(va), pa(0x81_3abc));
        assert!(piece.page_covers(VirtAddr::new(0x401f_ffff)));
        assert!(!piece.page_covers(VirtAddr::new(0x4020_0000)));
    }
}
