//! Hash-based translation structures: the hashed page table, and what it
//! shares with the inverted page table ([`super::inverted`]): the
//! [`TranslationTable`] interface, the entry layout, the hash function and
//! the errors.
//!
//! Both structures live in simulated physical memory as real bytes, so
//! every probe is a memory reference the caller can count and charge.
//!
//! # Hashed page table
//!
//! A bucket array followed by an element pool, in one region of physical
//! memory the caller provides:
//!
//! ```text
//! region base ─► bucket[0..buckets]   4 bytes each: first element index + 1 (0 = empty)
//!                (padding to 8 bytes)
//!                element[0..capacity] 24 bytes each (layout below)
//! ```
//!
//! `hash(asid, vpn)` picks a bucket; the bucket heads a chain of elements
//! linked through their `next` field. New mappings go to the head of their
//! chain. Elements come from the pool: a free list threaded through the
//! `next` fields of freed elements, then never-used elements in order.
//!
//! # Entry layout (both structures)
//!
//! Little-endian 64-bit words:
//!
//! | word | bits | field |
//! |------|------|-------|
//! | 0 | 0..52 | VPN |
//! | 0 | 52 | V: valid |
//! | 0 | 53..62 | the nine [`PteFlags`] bits: R W X U G A D PWT PCD |
//! | 0 | 62..64 | reserved, zero |
//! | 1 | 0..16 | ASID |
//! | 1 | 16..32 | reserved, zero |
//! | 1 | 32..64 | next: index + 1 of the next entry in the chain, 0 at the end |
//! | 2 | 0..56 | PFN (hashed page table only; the inverted table's PFN is the entry's index) |
//!
//! An all-zero region is an empty table, so creating one only clears memory.
//!
//! # Probes
//!
//! A probe is one memory reference made by a lookup: reading a bucket (or
//! hash anchor) slot, or reading one entry. A lookup through a chain of
//! length `n` makes `1 + k` probes where `k <= n` is the position of the
//! match, or `1 + n` on a miss.
//!
//! # Example
//!
//! ```
//! use vmsim::addr::{Asid, PageSize, PhysAddr, VirtAddr};
//! use vmsim::paging::PteFlags;
//! use vmsim::paging::hashed::{HashedConfig, HashedPageTable, TableSearch, TranslationTable};
//! use vmsim::phys::PhysMem;
//!
//! let mut mem: PhysMem = PhysMem::new(1 << 24)?;
//! let cfg = HashedConfig { buckets: 1024, capacity: 1024, page_size: PageSize::SIZE_4K };
//! let base = PhysAddr::new(0x10_0000)?;
//! let mut table = HashedPageTable::new(&mut mem, base, cfg.bytes_needed()?, cfg)?;
//! let asid = Asid::new(1);
//! let page = VirtAddr::new(0x7fff_f000);
//! table.map_page(&mut mem, asid, page, PhysAddr::new(0x42_000)?, PteFlags::READ | PteFlags::USER)?;
//!
//! let walk = table.translate(&mem, asid, VirtAddr::new(0x7fff_f123));
//! assert_eq!(walk.result?.pa.as_u64(), 0x42_123);
//! assert_eq!(walk.probes, 2); // the bucket, then the element
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The walker's vocabulary
//!
//! Besides its `(ASID, VPN)` methods, [`TranslationTable`] speaks the radix
//! code's language, so the MMU and the kernel can treat the three
//! structures alike: [`TableSearch::translate`] returns a
//! [`Translation`] or a [`WalkFault`] plus the probes (the walk's memory
//! references), and the page-level changes return [`Flush`] and
//! [`Unmapped`] like [`RadixTable`](super::RadixTable)'s. Flags are
//! [`PteFlags`].
//!
//! This module owns the bytes of its own region only; frames for the
//! region come from the caller, and TLB invalidation after a change is the
//! caller's.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{Asid, MAX_PHYS_BITS, PageSize, Pfn, PhysAddr, VirtAddr, Vpn};
use crate::memory::PhysMemory;
use crate::phys::MemError;

use super::pte::PteFlags;
use super::radix::{Flush, Unmapped};
use super::walk::{FaultKind, Translation, WalkFault};

/// The bits [`TranslationTable::protect`] keeps from the old entry, as
/// [`Format::reprotect`](super::Format::reprotect) does for radix tables.
const KEPT_BY_PROTECT: PteFlags = PteFlags::ACCESSED
    .union(PteFlags::DIRTY)
    .union(PteFlags::GLOBAL);

/// The widest VPN an entry holds: 52 bits, a 64-bit address with 4 KiB pages.
pub const MAX_VPN_BITS: u32 = 52;
const VPN_MASK: u64 = (1 << MAX_VPN_BITS) - 1;
const VALID: u64 = 1 << MAX_VPN_BITS;
const FLAGS_SHIFT: u32 = MAX_VPN_BITS + 1;
/// The nine [`PteFlags`] bits.
const FLAGS_MASK: u64 = 0x1FF;
const ASID_MASK: u64 = 0xFFFF;
const NEXT_SHIFT: u32 = 32;
/// The largest number of entries a chain index (32 bits, stored + 1) can name.
pub const MAX_ENTRIES: u64 = u32::MAX as u64 - 1;

/// Bytes of one inverted-table entry, and of the key part of a hashed-table element.
pub const KEY_BYTES: u64 = 16;
/// Bytes of one hashed-table element.
pub const ELEMENT_BYTES: u64 = 24;
/// Bytes of one bucket or hash-anchor slot.
pub const SLOT_BYTES: u64 = 4;

/// The hash both structures use to pick a bucket: multiplicative (Fibonacci)
/// hashing, deterministic across runs and platforms.
///
/// The ASID is spread over 64 bits by multiplying with an odd constant and
/// mixed into the VPN; the sum is multiplied by `2^64 / φ` and the top
/// `bits` bits taken, so consecutive VPNs land in distant buckets.
#[inline]
#[must_use]
pub const fn hash(asid: Asid, vpn: Vpn, bits: u32) -> u64 {
    if bits == 0 {
        return 0;
    }
    let key = vpn.as_u64() ^ (asid.as_u16() as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)
}

/// A table that cannot be built, or a change it cannot make.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    /// The region does not start on an 8-byte boundary.
    #[error("table region at {base:#x} is not 8-byte aligned")]
    RegionMisaligned {
        /// The region's first byte.
        base: u64,
    },
    /// The region is smaller than the table's layout needs.
    #[error("table needs {needed:#x} bytes but its region has {given:#x}")]
    RegionTooSmall {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes given.
        given: u64,
    },
    /// The region is not inside physical memory (or the caller passed another memory).
    #[error("table region is not inside physical memory: {0}")]
    Memory(#[from] MemError),
    /// A bucket or anchor count that is zero, not a power of two, or too large.
    #[error("{what} count {count} is not a power of two between 1 and 2^31")]
    BadBuckets {
        /// `bucket` or `hash anchor`.
        what: &'static str,
        /// The count given.
        count: u64,
    },
    /// More entries than a 32-bit chain index can name.
    #[error("{count} entries is more than the {MAX_ENTRIES} a chain index can name")]
    TooManyEntries {
        /// The count given.
        count: u64,
    },
    /// More frames than physical addresses of [`MAX_PHYS_BITS`] bits reach.
    #[error("{frames} frames of {size} reach past the {MAX_PHYS_BITS}-bit physical address space")]
    FramesBeyondPhys {
        /// The frame count given.
        frames: u64,
        /// The frame size.
        size: PageSize,
    },
    /// A VPN wider than an entry holds.
    #[error("VPN {vpn:#x} is wider than the {MAX_VPN_BITS} bits an entry holds")]
    VpnTooWide {
        /// The VPN.
        vpn: u64,
    },
    /// A PFN outside the frames the table can describe.
    #[error("frame {pfn:#x} is outside the {frames:#x} frames this table describes")]
    PfnOutOfRange {
        /// The frame.
        pfn: u64,
        /// Frames describable.
        frames: u64,
    },
    /// A page address or frame address not aligned to the table's page size.
    #[error("page {va} or frame {frame} is not aligned to the table's {size} pages")]
    PageMisaligned {
        /// The virtual address.
        va: VirtAddr,
        /// The frame address.
        frame: PhysAddr,
        /// The table's page size.
        size: PageSize,
    },
    /// The frame already holds another page (an inverted table has one entry per frame).
    #[error(
        "frame {pfn:#x} already holds page {vpn:#x} of ASID {asid}; an inverted page table maps each frame once"
    )]
    FrameInUse {
        /// The frame.
        pfn: u64,
        /// The ASID of the page it holds.
        asid: u16,
        /// The page it holds.
        vpn: u64,
    },
    /// The page is already mapped; unmap it first.
    #[error("page {vpn:#x} of ASID {asid} is already mapped to frame {pfn:#x}")]
    AlreadyMapped {
        /// The ASID.
        asid: u16,
        /// The page.
        vpn: u64,
        /// The frame it is mapped to.
        pfn: u64,
    },
    /// The hashed table's element pool is full.
    #[error("all {capacity} elements of the hashed page table are in use")]
    PoolExhausted {
        /// Elements in the pool.
        capacity: u64,
    },
    /// A chain link names an entry outside the table, or a chain is longer
    /// than the table (it loops): the table's memory was overwritten, or a
    /// loaded image holds no valid table here.
    #[error(
        "corrupt table: a chain link at {at:#x} names entry {link:#x}, outside the {entries} entries, or the chain loops"
    )]
    CorruptChain {
        /// Physical address of the slot or entry holding the bad link.
        at: u64,
        /// The link as stored (entry index + 1).
        link: u64,
        /// Entries in the table.
        entries: u64,
    },
    /// An entry address that no longer holds the mapping (it was unmapped since the lookup).
    #[error("the entry at {entry:#x} no longer maps page {vpn:#x} of ASID {asid}")]
    StaleEntry {
        /// The entry's address.
        entry: u64,
        /// The ASID looked up.
        asid: u16,
        /// The page looked up.
        vpn: u64,
    },
}

/// A mapping as stored: the frame and its flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mapping {
    /// The frame the page is in.
    pub pfn: Pfn,
    /// Its permission and status bits.
    pub flags: PteFlags,
}

/// A successful lookup: the mapping and where its entry is, so the MMU can
/// set the accessed and dirty bits without searching again ([`TableSearch::mark`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Hit {
    /// The mapping found.
    pub mapping: Mapping,
    /// The physical address of the entry that holds it.
    pub entry: PhysAddr,
    /// The entry's word 0 as read (VPN, valid bit, flags).
    pub raw: u64,
}

/// The result of one lookup: the mapping if there is one, and the memory
/// references it took.
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Lookup {
    /// The mapping, or `None` for a page fault.
    pub hit: Option<Hit>,
    /// Memory references made: slots read plus entries read.
    pub probes: u32,
}

/// A translation in the radix walker's terms, with the memory references
/// it took (what the MMU adds to its walk counters).
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TableWalk {
    /// The translation (leaf index 0, leaf address = the entry found), or
    /// why there is none: `NotPresent` for an unmapped page, `TooWide` for
    /// a VPN wider than an entry holds, `ReservedBits` for a corrupt chain
    /// link, `TableOutsideMemory` if the table's region is not in the
    /// memory given.
    pub result: Result<Translation, WalkFault>,
    /// Memory references made.
    pub probes: u32,
}

/// Running minimum, mean and maximum of probe counts, for callers that
/// report probe lengths.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, Deserialize)]
pub struct ProbeStats {
    /// Lookups recorded.
    pub lookups: u64,
    /// Probes over all lookups.
    pub total: u64,
    /// Fewest probes of one lookup (0 before any).
    pub min: u32,
    /// Most probes of one lookup.
    pub max: u32,
}

impl ProbeStats {
    /// Records one lookup's probes.
    #[inline]
    pub fn record(&mut self, probes: u32) {
        self.min = if self.lookups == 0 {
            probes
        } else {
            self.min.min(probes)
        };
        self.max = self.max.max(probes);
        self.lookups += 1;
        self.total += u64::from(probes);
    }

    /// Mean probes per lookup (0 before any).
    #[must_use]
    pub fn mean(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.total as f64 / self.lookups as f64
        }
    }
}

/// What a hardware walker needs of a page-table structure other than a
/// radix tree: find `(ASID, VPN)` with a count of memory references, and set
/// a found entry's accessed and dirty bits. Nothing here changes the
/// table's bookkeeping, so the tables' layouts ([`HashedLayout`],
/// [`InvertedLayout`](super::inverted::InvertedLayout)), which are `Copy`,
/// implement it: the MMU keeps one as its table base register, the way
/// PowerPC's SDR1 holds the hashed table's address and size, and never a
/// copy of the kernel's table.
///
/// Methods are generic over the memory, so calls are monomorphised.
/// [`translate`](Self::translate) speaks in addresses and returns the radix
/// code's types; the others speak in page and frame numbers of the table's
/// [`page_size`](Self::page_size).
pub trait TableSearch {
    /// The size of the pages (and frames) this table maps.
    fn page_size(&self) -> PageSize;

    /// Finds the mapping of `vpn` in address space `asid`.
    fn lookup<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Lookup, TableError>;

    /// Sets `bits` (accessed, dirty) in the entry at `entry` that a lookup
    /// found for `(asid, vpn)` ([`Hit::entry`], or a [`Translation`]'s
    /// `leaf_addr` with its page's VPN), with one read and one write of
    /// memory, as the hardware does after a walk. Returns the new flags.
    fn mark<M: PhysMemory + ?Sized>(
        &self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        entry: PhysAddr,
        bits: PteFlags,
    ) -> Result<PteFlags, TableError> {
        let w0 = mem.read_le(entry, 8)?;
        let w1 = mem.read_le(entry.add(8), 8)?;
        if !key_matches(w0, w1, asid, vpn) {
            return Err(TableError::StaleEntry {
                entry: entry.as_u64(),
                asid: asid.as_u16(),
                vpn: vpn.as_u64(),
            });
        }
        let new = entry_flags(w0) | bits;
        mem.write_le(entry, 8, with_flags(w0, new))?;
        Ok(new)
    }

    /// Translates `va` in `asid` the way the radix walker reports it (no
    /// TLB, no accessed/dirty update, no permission check).
    #[inline]
    fn translate<M: PhysMemory + ?Sized>(&self, mem: &M, asid: Asid, va: VirtAddr) -> TableWalk {
        let size = self.page_size();
        let fault = |kind| WalkFault {
            kind,
            level: None,
            idx: None,
        };
        match self.lookup(mem, asid, va.vpn(size)) {
            Ok(Lookup {
                hit: Some(hit),
                probes,
            }) => {
                let frame = hit.mapping.pfn.base(size);
                TableWalk {
                    result: Ok(Translation {
                        pa: frame.add(va.page_offset(size)),
                        page: va.align_down(size),
                        frame,
                        size,
                        flags: hit.mapping.flags,
                        leaf_idx: 0,
                        leaf_addr: hit.entry,
                        leaf_raw: hit.raw,
                    }),
                    probes,
                }
            }
            Ok(Lookup { hit: None, probes }) => TableWalk {
                result: Err(fault(FaultKind::NotPresent)),
                probes,
            },
            Err(TableError::VpnTooWide { .. }) => TableWalk {
                result: Err(fault(FaultKind::TooWide)),
                probes: 0,
            },
            Err(TableError::CorruptChain { .. }) => TableWalk {
                result: Err(fault(FaultKind::ReservedBits(
                    "a hash chain link names no entry of the table, or loops",
                ))),
                probes: 0,
            },
            Err(_) => TableWalk {
                result: Err(fault(FaultKind::TableOutsideMemory)),
                probes: 0,
            },
        }
    }
}

/// What a page-table structure other than a radix tree offers the kernel
/// besides searching: changes to mappings, and their count.
///
/// Implemented by [`HashedPageTable`] and
/// [`InvertedPageTable`](super::inverted::InvertedPageTable). The `*_page`
/// methods speak in addresses; the others in page and frame numbers of the
/// table's [`page_size`](TableSearch::page_size).
pub trait TranslationTable: TableSearch {
    /// Maps `vpn` of `asid` to `pfn` with `flags`. The page must not be
    /// mapped already ([`TableError::AlreadyMapped`]).
    fn map<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), TableError>;

    /// Removes the mapping of `vpn` in `asid`, returning it (`None` if
    /// there was none). The caller must invalidate any TLB entry for it.
    fn unmap<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Option<Mapping>, TableError>;

    /// Replaces a mapping's flags with `perms`, keeping its accessed, dirty
    /// and global bits (as radix tables' `protect` does). Returns the flags
    /// before the change (`None` if the page is not mapped).
    fn protect<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        perms: PteFlags,
    ) -> Result<Option<PteFlags>, TableError> {
        Ok(self
            .modify_flags(mem, asid, vpn, |old| reprotect(old, perms))?
            .map(|(old, _)| old))
    }

    /// Sets the bits `set` and clears the bits `clear` of a mapping (the
    /// kernel clearing accessed bits for page replacement). Returns the new
    /// flags (`None` if the page is not mapped).
    fn update_flags<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        set: PteFlags,
        clear: PteFlags,
    ) -> Result<Option<PteFlags>, TableError> {
        Ok(self
            .modify_flags(mem, asid, vpn, |old| (old - clear) | set)?
            .map(|(_, new)| new))
    }

    /// Finds the mapping of `vpn` in `asid` and replaces its flags `old`
    /// with `f(old)` (one search, one write); returns `(old, new)`, or
    /// `None` if the page is not mapped. The primitive behind
    /// [`protect`](Self::protect) and [`update_flags`](Self::update_flags).
    fn modify_flags<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        f: impl FnOnce(PteFlags) -> PteFlags,
    ) -> Result<Option<(PteFlags, PteFlags)>, TableError>;

    /// Mappings currently held.
    fn len(&self) -> u64;

    /// Whether no mapping is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps the page at `va` to the frame at `frame`, both aligned to
    /// [`TableSearch::page_size`].
    fn map_page<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
        frame: PhysAddr,
        flags: PteFlags,
    ) -> Result<(), TableError> {
        let size = self.page_size();
        if !va.is_aligned(size) || !frame.is_aligned(size) {
            return Err(TableError::PageMisaligned { va, frame, size });
        }
        self.map(mem, asid, va.vpn(size), frame.pfn(size), flags)
    }

    /// Removes the mapping of the page holding `va`: what was mapped and
    /// the TLB invalidation it requires (`None` if nothing was mapped).
    fn unmap_page<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
    ) -> Result<Option<Unmapped>, TableError> {
        let size = self.page_size();
        Ok(self.unmap(mem, asid, va.vpn(size))?.map(|m| Unmapped {
            frame: m.pfn.base(size),
            size,
            flags: m.flags,
            flush: Flush::new(va.align_down(size), size),
        }))
    }

    /// Replaces the permissions of the page holding `va` (see
    /// [`Self::protect`]); returns the TLB invalidation it requires (`None`
    /// if nothing was mapped).
    fn protect_page<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
        perms: PteFlags,
    ) -> Result<Option<Flush>, TableError> {
        let size = self.page_size();
        Ok(self
            .protect(mem, asid, va.vpn(size), perms)?
            .map(|_| Flush::new(va.align_down(size), size)))
    }
}

/// The flags [`TranslationTable::protect`] leaves: `perms` without status
/// bits, plus the old accessed, dirty and global bits.
#[inline]
pub(super) fn reprotect(old: PteFlags, perms: PteFlags) -> PteFlags {
    (perms - PteFlags::ACCESSED - PteFlags::DIRTY) | (old & KEPT_BY_PROTECT)
}

/// Checks that frames of `size` numbered below `frames` have physical
/// addresses.
pub(super) fn check_frames(frames: u64, size: PageSize) -> Result<(), TableError> {
    if frames > 1 << (MAX_PHYS_BITS - size.shift()) {
        Err(TableError::FramesBeyondPhys { frames, size })
    } else {
        Ok(())
    }
}

// ----- entry encoding, shared with the inverted table -----

/// Word 0 of a valid entry for `vpn` with `flags`.
#[inline]
pub(super) const fn word0(vpn: Vpn, flags: PteFlags) -> u64 {
    vpn.as_u64() | VALID | ((flags.bits() as u64) << FLAGS_SHIFT)
}

/// Word 1 for `asid` with chain link `next` (index + 1, 0 = end).
#[inline]
pub(super) const fn word1(asid: Asid, next: u64) -> u64 {
    asid.as_u16() as u64 | (next << NEXT_SHIFT)
}

#[inline]
pub(super) const fn is_valid(w0: u64) -> bool {
    w0 & VALID != 0
}

#[inline]
pub(super) const fn entry_vpn(w0: u64) -> Vpn {
    Vpn::new(w0 & VPN_MASK)
}

#[inline]
pub(super) const fn entry_asid(w1: u64) -> Asid {
    Asid::new((w1 & ASID_MASK) as u16)
}

#[inline]
pub(super) const fn entry_flags(w0: u64) -> PteFlags {
    PteFlags::from_bits_truncate(((w0 >> FLAGS_SHIFT) & FLAGS_MASK) as u16)
}

#[inline]
pub(super) const fn with_flags(w0: u64, flags: PteFlags) -> u64 {
    (w0 & !(FLAGS_MASK << FLAGS_SHIFT)) | VALID | ((flags.bits() as u64) << FLAGS_SHIFT)
}

#[inline]
pub(super) const fn next_link(w1: u64) -> u64 {
    w1 >> NEXT_SHIFT
}

#[inline]
pub(super) const fn with_next(w1: u64, next: u64) -> u64 {
    (w1 & ((1 << NEXT_SHIFT) - 1)) | (next << NEXT_SHIFT)
}

#[inline]
pub(super) const fn key_matches(w0: u64, w1: u64, asid: Asid, vpn: Vpn) -> bool {
    is_valid(w0) && w0 & VPN_MASK == vpn.as_u64() && w1 & ASID_MASK == asid.as_u16() as u64
}

/// Checks that `vpn` fits an entry.
#[inline]
pub(super) const fn check_vpn(vpn: Vpn) -> Result<(), TableError> {
    if vpn.as_u64() >> MAX_VPN_BITS == 0 {
        Ok(())
    } else {
        Err(TableError::VpnTooWide { vpn: vpn.as_u64() })
    }
}

/// Checks a bucket or anchor count and returns its log2.
pub(super) fn bucket_bits(what: &'static str, count: u64) -> Result<u32, TableError> {
    if count.is_power_of_two() && count <= 1 << 31 {
        Ok(count.trailing_zeros())
    } else {
        Err(TableError::BadBuckets { what, count })
    }
}

/// Checks a region: aligned, large enough, inside memory; then clears it
/// (an all-zero region is an empty table).
pub(super) fn claim_region<M: PhysMemory + ?Sized>(
    mem: &mut M,
    base: PhysAddr,
    len: u64,
    needed: u64,
) -> Result<(), TableError> {
    if !base.as_u64().is_multiple_of(8) {
        return Err(TableError::RegionMisaligned {
            base: base.as_u64(),
        });
    }
    if len < needed {
        return Err(TableError::RegionTooSmall { needed, given: len });
    }
    mem.check(base, len)?;
    mem.zero(base, needed)?;
    Ok(())
}

/// Where a chain search stopped.
pub(super) struct ChainSearch {
    /// Slots and entries read.
    pub probes: u32,
    /// The matching entry: index, words 0 and 1, and the index of the
    /// entry before it in the chain (`None` if it is the chain's head).
    pub found: Option<(u64, u64, u64, Option<u64>)>,
}

/// Follows the chain headed by the slot at `anchor` looking for `(asid,
/// vpn)`; `entry_at` gives the address of entry `i` of `entries`. A link
/// past the table, or a chain longer than the table (a loop), is
/// [`TableError::CorruptChain`].
#[inline]
pub(super) fn search_chain<M: PhysMemory + ?Sized>(
    mem: &M,
    anchor: PhysAddr,
    entry_at: impl Fn(u64) -> PhysAddr,
    entries: u64,
    asid: Asid,
    vpn: Vpn,
) -> Result<ChainSearch, TableError> {
    let mut probes = 1u32;
    let mut link = mem.read_le(anchor, SLOT_BYTES as u32)?;
    let mut link_at = anchor;
    let mut prev = None;
    while link != 0 {
        let i = check_link(link, link_at, entries, u64::from(probes))?;
        let at = entry_at(i);
        let w0 = mem.read_le(at, 8)?;
        let w1 = mem.read_le(at.add(8), 8)?;
        probes += 1;
        if key_matches(w0, w1, asid, vpn) {
            return Ok(ChainSearch {
                probes,
                found: Some((i, w0, w1, prev)),
            });
        }
        prev = Some(i);
        link = next_link(w1);
        link_at = at.add(8);
    }
    Ok(ChainSearch {
        probes,
        found: None,
    })
}

/// The entry index a stored `link` (index + 1, read at `at`) names, if it
/// is inside a table of `entries` and the chain has not yet visited more
/// entries than the table holds (`visited` counts the links followed + 1).
#[inline]
pub(super) fn check_link(
    link: u64,
    at: PhysAddr,
    entries: u64,
    visited: u64,
) -> Result<u64, TableError> {
    if link <= entries && visited <= entries {
        Ok(link - 1)
    } else {
        Err(TableError::CorruptChain {
            at: at.as_u64(),
            link,
            entries,
        })
    }
}

/// Removes entry `next`'s predecessor link: makes whatever pointed at the
/// found entry (the anchor slot, or entry `prev`) point at `next` instead.
pub(super) fn unlink<M: PhysMemory + ?Sized>(
    mem: &mut M,
    anchor: PhysAddr,
    entry_at: impl Fn(u64) -> PhysAddr,
    prev: Option<u64>,
    next: u64,
) -> Result<(), TableError> {
    match prev {
        None => mem.write_le(anchor, SLOT_BYTES as u32, next)?,
        Some(p) => {
            let at = entry_at(p).add(8);
            let w1 = mem.read_le(at, 8)?;
            mem.write_le(at, 8, with_next(w1, next))?;
        }
    }
    Ok(())
}

/// The entries of a table keyed by (ASID, VPN), hashed or inverted: where
/// entry `i` is, which frame it maps and how a key is found. The lookup and
/// the flag change the two tables share are written once over it
/// ([`keyed_lookup`], [`keyed_modify_flags`]).
pub(super) trait KeyedEntries {
    /// The address of entry `i` (its word 0).
    fn entry_addr(&self, i: u64) -> PhysAddr;

    /// The frame entry `i` maps.
    fn entry_pfn<M: PhysMemory + ?Sized>(&self, mem: &M, i: u64) -> Result<Pfn, TableError>;

    /// The entry keyed `(asid, vpn)`, and the probes it took to find it.
    fn find<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<ChainSearch, TableError>;
}

/// [`TableSearch::lookup`] of a keyed table.
#[inline]
pub(super) fn keyed_lookup<T: KeyedEntries, M: PhysMemory + ?Sized>(
    t: &T,
    mem: &M,
    asid: Asid,
    vpn: Vpn,
) -> Result<Lookup, TableError> {
    let s = t.find(mem, asid, vpn)?;
    let hit = match s.found {
        None => None,
        Some((i, w0, _, _)) => Some(Hit {
            mapping: Mapping {
                pfn: t.entry_pfn(mem, i)?,
                flags: entry_flags(w0),
            },
            entry: t.entry_addr(i),
            raw: w0,
        }),
    };
    Ok(Lookup {
        hit,
        probes: s.probes,
    })
}

/// [`TranslationTable::modify_flags`] of a keyed table.
pub(super) fn keyed_modify_flags<T: KeyedEntries, M: PhysMemory + ?Sized>(
    t: &T,
    mem: &mut M,
    asid: Asid,
    vpn: Vpn,
    f: impl FnOnce(PteFlags) -> PteFlags,
) -> Result<Option<(PteFlags, PteFlags)>, TableError> {
    let s = t.find(mem, asid, vpn)?;
    let Some((i, w0, _, _)) = s.found else {
        return Ok(None);
    };
    let old = entry_flags(w0);
    let new = f(old);
    mem.write_le(t.entry_addr(i), 8, with_flags(w0, new))?;
    Ok(Some((old, new)))
}

// ----- the hashed page table -----

/// Sizes of a hashed page table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HashedConfig {
    /// Buckets: a power of two. About as many as mappings expected keeps
    /// chains short.
    pub buckets: u64,
    /// Elements in the pool: the most mappings the table can hold.
    pub capacity: u64,
    /// The size of the pages and frames mapped.
    pub page_size: PageSize,
}

impl HashedConfig {
    /// Bytes of physical memory the table occupies: buckets (padded to 8
    /// bytes) then elements.
    pub fn bytes_needed(&self) -> Result<u64, TableError> {
        bucket_bits("bucket", self.buckets)?;
        check_frames(1, self.page_size)?;
        if self.capacity > MAX_ENTRIES {
            return Err(TableError::TooManyEntries {
                count: self.capacity,
            });
        }
        Ok(pool_offset(self.buckets) + self.capacity * ELEMENT_BYTES)
    }
}

const fn pool_offset(buckets: u64) -> u64 {
    (buckets * SLOT_BYTES).next_multiple_of(8)
}

/// Where a hashed page table lies in memory and how it hashes: what a
/// walker needs to search it ([`TableSearch`]), without the allocation
/// state only the table's owner changes. `Copy`, so the MMU holds its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedLayout {
    bytes: u64,
    buckets: PhysAddr,
    bucket_bits: u32,
    pool: PhysAddr,
    capacity: u64,
    page_size: PageSize,
}

/// A hashed page table in simulated physical memory: buckets of chained
/// `(ASID, VPN) -> PFN` elements. Any number of pages may share a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedPageTable {
    layout: HashedLayout,
    /// Elements below this index have been handed out at least once.
    high_water: u64,
    /// Index + 1 of the first freed element, 0 if none.
    free_head: u64,
    mapped: u64,
}

impl HashedPageTable {
    /// Builds an empty table in `[base, base + len)` of `mem`, which must
    /// be 8-byte aligned and hold [`HashedConfig::bytes_needed`] bytes. The
    /// region is cleared.
    pub fn new<M: PhysMemory + ?Sized>(
        mem: &mut M,
        base: PhysAddr,
        len: u64,
        config: HashedConfig,
    ) -> Result<Self, TableError> {
        let needed = config.bytes_needed()?;
        claim_region(mem, base, len, needed)?;
        Ok(Self {
            layout: HashedLayout {
                bytes: needed,
                buckets: base,
                bucket_bits: config.buckets.trailing_zeros(),
                pool: base.add(pool_offset(config.buckets)),
                capacity: config.capacity,
                page_size: config.page_size,
            },
            high_water: 0,
            free_head: 0,
            mapped: 0,
        })
    }

    /// Where the table lies and how it hashes (what a walker needs).
    #[must_use]
    pub fn layout(&self) -> HashedLayout {
        self.layout
    }

    /// The physical memory the table occupies: see [`HashedLayout::region`].
    #[must_use]
    pub fn region(&self) -> (PhysAddr, u64) {
        self.layout.region()
    }

    /// The bucket `(asid, vpn)` hashes to.
    #[inline]
    #[must_use]
    pub fn bucket_of(&self, asid: Asid, vpn: Vpn) -> u64 {
        self.layout.bucket_of(asid, vpn)
    }

    /// Number of buckets.
    #[must_use]
    pub fn buckets(&self) -> u64 {
        self.layout.buckets()
    }

    /// Elements in the pool.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.layout.capacity
    }

    /// Chain lengths of all buckets: see [`HashedLayout::chain_lengths`].
    pub fn chain_lengths<M: PhysMemory + ?Sized>(&self, mem: &M) -> Result<Vec<u32>, TableError> {
        self.layout.chain_lengths(mem)
    }

    /// Every mapping held: `(asid, vpn, mapping, entry address)`, in
    /// element order (one pass over the elements ever handed out; for the
    /// kernel's list of an address space's pages, not for translation).
    pub fn mappings<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
    ) -> Result<Vec<(Asid, Vpn, Mapping, PhysAddr)>, TableError> {
        let mut out = Vec::with_capacity(self.mapped as usize);
        for i in 0..self.high_water {
            let at = self.layout.element(i);
            let w0 = mem.read_le(at, 8)?;
            if !is_valid(w0) {
                continue;
            }
            let w1 = mem.read_le(at.add(8), 8)?;
            let mapping = Mapping {
                pfn: Pfn::new(mem.read_le(at.add(16), 8)?),
                flags: entry_flags(w0),
            };
            out.push((entry_asid(w1), entry_vpn(w0), mapping, at));
        }
        Ok(out)
    }

    fn alloc<M: PhysMemory + ?Sized>(&mut self, mem: &M) -> Result<u64, TableError> {
        let l = self.layout;
        if self.free_head != 0 {
            // The free list's links are checked like chains (a head outside
            // the pool means the pool's memory was overwritten).
            let i = check_link(self.free_head, l.pool, l.capacity, 1)?;
            self.free_head = next_link(mem.read_le(l.element(i).add(8), 8)?);
            return Ok(i);
        }
        if self.high_water < l.capacity {
            self.high_water += 1;
            return Ok(self.high_water - 1);
        }
        Err(TableError::PoolExhausted {
            capacity: l.capacity,
        })
    }
}

impl HashedLayout {
    /// The physical memory the table occupies: its first byte and length
    /// (buckets and the whole element pool). The caller keeps these frames
    /// out of its frame allocator; the length is the table's memory overhead.
    #[must_use]
    pub fn region(&self) -> (PhysAddr, u64) {
        (self.buckets, self.bytes)
    }

    /// The bucket `(asid, vpn)` hashes to.
    #[inline]
    #[must_use]
    pub fn bucket_of(&self, asid: Asid, vpn: Vpn) -> u64 {
        hash(asid, vpn, self.bucket_bits)
    }

    /// Number of buckets.
    #[must_use]
    pub fn buckets(&self) -> u64 {
        1 << self.bucket_bits
    }

    /// Elements in the pool.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Chain lengths of all buckets, read from memory (for reports of how
    /// well the hash spreads; costs one pass over the table).
    pub fn chain_lengths<M: PhysMemory + ?Sized>(&self, mem: &M) -> Result<Vec<u32>, TableError> {
        let mut out = Vec::with_capacity(self.buckets() as usize);
        for b in 0..self.buckets() {
            let mut n = 0u32;
            let mut at = self.slot(b);
            let mut link = mem.read_le(at, SLOT_BYTES as u32)?;
            while link != 0 {
                n += 1;
                let i = check_link(link, at, self.capacity, u64::from(n))?;
                at = self.element(i).add(8);
                link = next_link(mem.read_le(at, 8)?);
            }
            out.push(n);
        }
        Ok(out)
    }

    #[inline]
    fn slot(&self, bucket: u64) -> PhysAddr {
        self.buckets.add(bucket * SLOT_BYTES)
    }

    #[inline]
    fn element(&self, i: u64) -> PhysAddr {
        self.pool.add(i * ELEMENT_BYTES)
    }

    fn search<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<(PhysAddr, ChainSearch), TableError> {
        check_vpn(vpn)?;
        let anchor = self.slot(self.bucket_of(asid, vpn));
        let pool = self.pool;
        let s = search_chain(
            mem,
            anchor,
            |i| pool.add(i * ELEMENT_BYTES),
            self.capacity,
            asid,
            vpn,
        )?;
        Ok((anchor, s))
    }
}

impl KeyedEntries for HashedLayout {
    #[inline]
    fn entry_addr(&self, i: u64) -> PhysAddr {
        self.element(i)
    }

    #[inline]
    fn entry_pfn<M: PhysMemory + ?Sized>(&self, mem: &M, i: u64) -> Result<Pfn, TableError> {
        Ok(Pfn::new(mem.read_le(self.element(i).add(16), 8)?))
    }

    #[inline]
    fn find<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<ChainSearch, TableError> {
        Ok(self.search(mem, asid, vpn)?.1)
    }
}

impl TableSearch for HashedLayout {
    fn page_size(&self) -> PageSize {
        self.page_size
    }

    #[inline]
    fn lookup<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Lookup, TableError> {
        keyed_lookup(self, mem, asid, vpn)
    }
}

impl TableSearch for HashedPageTable {
    fn page_size(&self) -> PageSize {
        self.layout.page_size
    }

    #[inline]
    fn lookup<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Lookup, TableError> {
        self.layout.lookup(mem, asid, vpn)
    }
}

impl TranslationTable for HashedPageTable {
    fn map<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), TableError> {
        let frames = 1 << (MAX_PHYS_BITS - self.layout.page_size.shift());
        if pfn.as_u64() >= frames {
            return Err(TableError::PfnOutOfRange {
                pfn: pfn.as_u64(),
                frames,
            });
        }
        let (anchor, s) = self.layout.search(mem, asid, vpn)?;
        if let Some((i, _, _, _)) = s.found {
            return Err(TableError::AlreadyMapped {
                asid: asid.as_u16(),
                vpn: vpn.as_u64(),
                pfn: mem.read_le(self.layout.element(i).add(16), 8)?,
            });
        }
        let i = self.alloc(mem)?;
        let head = mem.read_le(anchor, SLOT_BYTES as u32)?;
        let at = self.layout.element(i);
        mem.write_le(at, 8, word0(vpn, flags))?;
        mem.write_le(at.add(8), 8, word1(asid, head))?;
        mem.write_le(at.add(16), 8, pfn.as_u64())?;
        mem.write_le(anchor, SLOT_BYTES as u32, i + 1)?;
        self.mapped += 1;
        Ok(())
    }

    fn unmap<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Option<Mapping>, TableError> {
        let (anchor, s) = self.layout.search(mem, asid, vpn)?;
        let Some((i, w0, w1, prev)) = s.found else {
            return Ok(None);
        };
        let at = self.layout.element(i);
        let mapping = Mapping {
            pfn: Pfn::new(mem.read_le(at.add(16), 8)?),
            flags: entry_flags(w0),
        };
        let pool = self.layout.pool;
        unlink(
            mem,
            anchor,
            |j| pool.add(j * ELEMENT_BYTES),
            prev,
            next_link(w1),
        )?;
        // Free: clear the element and push it on the free list.
        mem.write_le(at, 8, 0)?;
        mem.write_le(at.add(8), 8, with_next(0, self.free_head))?;
        mem.write_le(at.add(16), 8, 0)?;
        self.free_head = i + 1;
        self.mapped -= 1;
        Ok(Some(mapping))
    }

    fn modify_flags<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        f: impl FnOnce(PteFlags) -> PteFlags,
    ) -> Result<Option<(PteFlags, PteFlags)>, TableError> {
        keyed_modify_flags(&self.layout, mem, asid, vpn, f)
    }

    fn len(&self) -> u64 {
        self.mapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::PhysMem;

    fn table(buckets: u64, capacity: u64) -> (PhysMem, HashedPageTable) {
        let mut mem: PhysMem = PhysMem::new(1 << 20).expect("mem");
        let cfg = HashedConfig {
            buckets,
            capacity,
            page_size: PageSize::SIZE_4K,
        };
        let len = cfg.bytes_needed().expect("size");
        let t = HashedPageTable::new(&mut mem, PhysAddr::new_unchecked(0x1000), len, cfg)
            .expect("table");
        (mem, t)
    }

    #[test]
    fn hash_is_deterministic_and_spreads() {
        let a = Asid::new(1);
        assert_eq!(hash(a, Vpn::new(42), 10), hash(a, Vpn::new(42), 10));
        let mut seen = std::collections::HashSet::new();
        for v in 0..64 {
            seen.insert(hash(a, Vpn::new(v), 10));
        }
        assert!(
            seen.len() > 55,
            "consecutive VPNs collide too often: {}",
            seen.len()
        );
        assert_ne!(
            hash(Asid::new(1), Vpn::new(7), 16),
            hash(Asid::new(2), Vpn::new(7), 16)
        );
        assert_eq!(hash(a, Vpn::new(7), 0), 0);
    }

    #[test]
    fn map_lookup_unmap_reuses_elements() {
        let (mut mem, mut t) = table(4, 3);
        // 4 buckets of 4 bytes, then 3 elements of 24.
        assert_eq!(t.region(), (PhysAddr::new_unchecked(0x1000), 16 + 3 * 24));
        let a = Asid::new(7);
        for v in 0..3 {
            t.map(&mut mem, a, Vpn::new(v), Pfn::new(100 + v), PteFlags::USER)
                .expect("map");
        }
        assert_eq!(
            t.map(&mut mem, a, Vpn::new(9), Pfn::new(1), PteFlags::READ),
            Err(TableError::PoolExhausted { capacity: 3 })
        );
        assert!(matches!(
            t.map(&mut mem, a, Vpn::new(1), Pfn::new(1), PteFlags::READ),
            Err(TableError::AlreadyMapped { pfn: 101, .. })
        ));
        let l = t.lookup(&mem, a, Vpn::new(1)).expect("lookup");
        assert_eq!(l.hit.map(|h| h.mapping.pfn), Some(Pfn::new(101)));
        assert!(l.probes >= 2);
        let gone = t.unmap(&mut mem, a, Vpn::new(1)).expect("unmap");
        assert_eq!(gone.map(|m| m.pfn), Some(Pfn::new(101)));
        assert_eq!(t.lookup(&mem, a, Vpn::new(1)).expect("lookup").hit, None);
        t.map(&mut mem, a, Vpn::new(9), Pfn::new(1), PteFlags::READ)
            .expect("reuses the freed element");
        assert_eq!(t.len(), 3);
        let total: u32 = t.chain_lengths(&mem).expect("chains").iter().sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn flags_protect_and_mark() {
        let (mut mem, mut t) = table(8, 8);
        let (a, v) = (Asid::new(1), Vpn::new(0x1234));
        let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::GLOBAL;
        t.map(&mut mem, a, v, Pfn::new(5), rw).expect("map");
        let hit = t.lookup(&mem, a, v).expect("lookup").hit.expect("mapped");
        let marked = t
            .mark(
                &mut mem,
                a,
                v,
                hit.entry,
                PteFlags::ACCESSED | PteFlags::DIRTY,
            )
            .expect("mark");
        assert!(marked.contains(PteFlags::DIRTY));
        // Protect replaces permissions, keeps A, D and G, ignores A/D asked for.
        let old = t
            .protect(&mut mem, a, v, PteFlags::READ | PteFlags::ACCESSED)
            .expect("protect");
        assert_eq!(old, Some(rw | PteFlags::ACCESSED | PteFlags::DIRTY));
        let now = t
            .update_flags(&mut mem, a, v, PteFlags::USER, PteFlags::ACCESSED)
            .expect("update");
        assert_eq!(
            now,
            Some(PteFlags::READ | PteFlags::USER | PteFlags::GLOBAL | PteFlags::DIRTY)
        );
        t.unmap(&mut mem, a, v).expect("unmap");
        assert!(matches!(
            t.mark(&mut mem, a, v, hit.entry, PteFlags::ACCESSED),
            Err(TableError::StaleEntry { .. })
        ));
    }

    #[test]
    fn speaks_the_walkers_language() {
        let (mut mem, mut t) = table(8, 8);
        let a = Asid::new(2);
        let va = VirtAddr::new(0x7fff_1000);
        let frame = PhysAddr::new_unchecked(0x3_5000);
        let flags = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
        t.map_page(&mut mem, a, va, frame, flags).expect("map");
        assert!(matches!(
            t.map_page(&mut mem, a, va.wrapping_add(8), frame, flags),
            Err(TableError::PageMisaligned { .. })
        ));
        let w = t.translate(&mem, a, va.wrapping_add(0x123));
        let tr = w.result.expect("mapped");
        assert_eq!(tr.pa.as_u64(), 0x3_5123);
        assert_eq!((tr.page, tr.frame, tr.size), (va, frame, PageSize::SIZE_4K));
        assert_eq!(tr.flags, flags);
        assert_eq!(tr.leaf_raw, mem.read_le(tr.leaf_addr, 8).expect("read"));
        assert!(w.probes >= 2);
        t.mark(
            &mut mem,
            a,
            tr.page.vpn(tr.size),
            tr.leaf_addr,
            PteFlags::ACCESSED,
        )
        .expect("mark through the translation");
        let miss = t.translate(&mem, Asid::new(3), va);
        assert_eq!(miss.result.map_err(|f| f.kind), Err(FaultKind::NotPresent));
        // With 4 KiB pages every 64-bit address has a VPN that fits 52 bits...
        let top = t.translate(&mem, a, VirtAddr::new(u64::MAX));
        assert_eq!(top.result.map_err(|f| f.kind), Err(FaultKind::NotPresent));
        // ...with classroom 16-byte pages the top of the address space does not.
        let cfg = HashedConfig {
            buckets: 4,
            capacity: 4,
            page_size: PageSize::from_shift(4).expect("16 B"),
        };
        let at = PhysAddr::new_unchecked(0x8_0000);
        let len = cfg.bytes_needed().expect("size");
        let tiny = HashedPageTable::new(&mut mem, at, len, cfg).expect("table");
        let wide = tiny.translate(&mem, a, VirtAddr::new(u64::MAX));
        assert_eq!(wide.result.map_err(|f| f.kind), Err(FaultKind::TooWide));
        let flush = t
            .protect_page(&mut mem, a, va.wrapping_add(5), PteFlags::READ)
            .expect("protect")
            .expect("mapped");
        assert_eq!((flush.page(), flush.size()), (va, PageSize::SIZE_4K));
        let gone = t
            .unmap_page(&mut mem, a, va)
            .expect("unmap")
            .expect("mapped");
        assert_eq!(gone.frame, frame);
        assert_eq!(gone.flags, PteFlags::READ | PteFlags::ACCESSED);
        gone.flush.ignore();
        assert_eq!(t.unmap_page(&mut mem, a, va).expect("unmap"), None);
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut mem: PhysMem = PhysMem::new(1 << 16).expect("mem");
        let cfg = HashedConfig {
            buckets: 3,
            capacity: 4,
            page_size: PageSize::SIZE_4K,
        };
        assert!(matches!(
            cfg.bytes_needed(),
            Err(TableError::BadBuckets { count: 3, .. })
        ));
        let cfg = HashedConfig {
            buckets: 4,
            capacity: 4,
            page_size: PageSize::SIZE_4K,
        };
        let at = PhysAddr::new_unchecked(0x100);
        assert!(matches!(
            HashedPageTable::new(&mut mem, at, 8, cfg),
            Err(TableError::RegionTooSmall { .. })
        ));
        assert!(matches!(
            HashedPageTable::new(&mut mem, PhysAddr::new_unchecked(0x101), 4096, cfg),
            Err(TableError::RegionMisaligned { .. })
        ));
        assert!(matches!(
            HashedPageTable::new(&mut mem, PhysAddr::new_unchecked(0xFFF0), 4096, cfg),
            Err(TableError::Memory(_))
        ));
        let (mut mem, mut t) = table(4, 4);
        assert!(matches!(
            t.map(
                &mut mem,
                Asid::new(0),
                Vpn::new(1 << 52),
                Pfn::new(0),
                PteFlags::READ
            ),
            Err(TableError::VpnTooWide { .. })
        ));
    }

    #[test]
    fn corrupt_links_are_errors_not_panics() {
        let (mut mem, mut t) = table(1, 4);
        let a = Asid::new(1);
        t.map(&mut mem, a, Vpn::new(1), Pfn::new(1), PteFlags::READ)
            .expect("map");
        let hit = t.lookup(&mem, a, Vpn::new(1)).expect("l").hit.expect("hit");
        // The element links to itself: a loop.
        let w1 = mem.read_le(hit.entry.add(8), 8).expect("read");
        mem.write_le(hit.entry.add(8), 8, with_next(w1, 1))
            .expect("write");
        assert!(matches!(
            t.lookup(&mem, a, Vpn::new(2)),
            Err(TableError::CorruptChain { link: 1, .. })
        ));
        assert!(matches!(
            t.chain_lengths(&mem),
            Err(TableError::CorruptChain { .. })
        ));
        // The bucket names an element past the pool.
        mem.write_le(t.layout.slot(0), 4, 99).expect("write");
        assert!(matches!(
            t.translate(&mem, a, VirtAddr::new(0x1000)).result,
            Err(WalkFault {
                kind: FaultKind::ReservedBits(_),
                ..
            })
        ));
        assert!(matches!(
            t.map(&mut mem, a, Vpn::new(3), Pfn::new(3), PteFlags::READ),
            Err(TableError::CorruptChain {
                link: 99,
                entries: 4,
                ..
            })
        ));
    }

    #[test]
    fn probe_stats() {
        let mut s = ProbeStats::default();
        assert_eq!(s.mean(), 0.0);
        for p in [3, 1, 2] {
            s.record(p);
        }
        assert_eq!((s.min, s.max, s.lookups, s.total), (1, 3, 3, 6));
        assert!((s.mean() - 2.0).abs() < 1e-12);
    }
}
