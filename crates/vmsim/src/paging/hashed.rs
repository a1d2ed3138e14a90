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
//! | 0 | 53..58 | W writable, U user, X executable, A accessed, D dirty |
//! | 0 | 58..64 | reserved, zero |
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
//! This module owns the bytes of its own region only; frames for the
//! region come from the caller, and TLB invalidation after a change is the
//! caller's.

use bitflags::bitflags;
use thiserror::Error;

use crate::addr::{Asid, MAX_PHYS_BITS, Pfn, PhysAddr, Vpn};
use crate::phys::{Bitmap, MemError, PhysMem};

bitflags! {
    /// Permission and status bits of a mapping in a hashed or inverted table.
    ///
    /// Every valid mapping is readable; these add to that.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct EntryFlags: u16 {
        /// Stores are allowed.
        const WRITABLE = 1 << 1;
        /// User-mode accesses are allowed.
        const USER = 1 << 2;
        /// Instruction fetches are allowed.
        const EXECUTABLE = 1 << 3;
        /// Set when the page is used (the MMU sets it on a table hit).
        const ACCESSED = 1 << 4;
        /// Set when the page is written.
        const DIRTY = 1 << 5;
    }
}

impl EntryFlags {
    /// The bits [`TranslationTable::protect`] changes; the others
    /// (accessed, dirty) record history and are kept.
    pub const PERMISSIONS: Self = Self::WRITABLE.union(Self::USER).union(Self::EXECUTABLE);
}

/// The widest VPN an entry holds: 52 bits, a 64-bit address with 4 KiB pages.
pub const MAX_VPN_BITS: u32 = 52;
const VPN_MASK: u64 = (1 << MAX_VPN_BITS) - 1;
const FLAGS_SHIFT: u32 = MAX_VPN_BITS;
const VALID: u64 = 1 << FLAGS_SHIFT;
const FLAGS_MASK: u64 = 0x3F;
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
    Misaligned {
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
    /// A VPN wider than an entry holds.
    #[error("VPN {vpn:#x} is wider than the {MAX_VPN_BITS} bits an entry holds")]
    VpnTooWide {
        /// The VPN.
        vpn: u64,
    },
    /// A PFN outside the frames an inverted table describes, or wider than a physical address.
    #[error("frame {pfn:#x} is outside the {frames:#x} frames this table describes")]
    PfnOutOfRange {
        /// The frame.
        pfn: u64,
        /// Frames described.
        frames: u64,
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
    /// A [`Hit`] whose entry no longer holds its mapping (it was unmapped since).
    #[error("the entry at {entry:#x} no longer maps page {vpn:#x} of ASID {asid}")]
    StaleHit {
        /// The entry's address.
        entry: u64,
        /// The ASID of the hit.
        asid: u16,
        /// The page of the hit.
        vpn: u64,
    },
}

/// A mapping as stored: the frame and its flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mapping {
    /// The frame the page is in.
    pub pfn: Pfn,
    /// Its permission and status bits.
    pub flags: EntryFlags,
}

/// A successful lookup: the mapping and where its entry is, so the MMU can
/// set the accessed and dirty bits without searching again ([`TranslationTable::mark`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Hit {
    /// The address space looked up.
    pub asid: Asid,
    /// The page looked up.
    pub vpn: Vpn,
    /// The mapping found.
    pub mapping: Mapping,
    /// The physical address of the entry that holds it.
    pub entry: PhysAddr,
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

/// Running minimum, mean and maximum of probe counts, for callers that
/// report probe lengths.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
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

/// What a page-table structure other than a radix tree offers the MMU:
/// translating `(ASID, VPN)` with a count of memory references, and the
/// kernel's changes to mappings.
///
/// Implemented by [`HashedPageTable`] and
/// [`InvertedPageTable`](super::inverted::InvertedPageTable). Methods are
/// generic over the memory's write tracking, so calls are monomorphised.
pub trait TranslationTable {
    /// Finds the mapping of `vpn` in address space `asid`.
    fn lookup<B: Bitmap>(
        &self,
        mem: &PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Lookup, TableError>;

    /// Maps `vpn` of `asid` to `pfn` with `flags`. The page must not be
    /// mapped already ([`TableError::AlreadyMapped`]).
    fn map<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        pfn: Pfn,
        flags: EntryFlags,
    ) -> Result<(), TableError>;

    /// Removes the mapping of `vpn` in `asid`, returning it (`None` if
    /// there was none). The caller must invalidate any TLB entry for it.
    fn unmap<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Option<Mapping>, TableError>;

    /// Replaces the permission bits ([`EntryFlags::PERMISSIONS`]) of a
    /// mapping with those in `perms`, keeping accessed and dirty. Returns
    /// the flags before the change (`None` if the page is not mapped).
    fn protect<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        perms: EntryFlags,
    ) -> Result<Option<EntryFlags>, TableError>;

    /// Sets the bits `set` and clears the bits `clear` of a mapping (the
    /// kernel clearing accessed bits for page replacement). Returns the new
    /// flags (`None` if the page is not mapped).
    fn update_flags<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        set: EntryFlags,
        clear: EntryFlags,
    ) -> Result<Option<EntryFlags>, TableError>;

    /// Sets `bits` (accessed, dirty) in the entry a lookup found, with one
    /// read and one write of memory, as the hardware does after a walk.
    /// Returns the new flags.
    fn mark<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        hit: &Hit,
        bits: EntryFlags,
    ) -> Result<EntryFlags, TableError> {
        let w0 = mem.read_le(hit.entry, 8)?;
        let w1 = mem.read_le(hit.entry.add(8), 8)?;
        if !key_matches(w0, w1, hit.asid, hit.vpn) {
            return Err(TableError::StaleHit {
                entry: hit.entry.as_u64(),
                asid: hit.asid.as_u16(),
                vpn: hit.vpn.as_u64(),
            });
        }
        let new = entry_flags(w0) | bits;
        mem.write_le(hit.entry, 8, with_flags(w0, new))?;
        Ok(new)
    }

    /// Mappings currently held.
    fn len(&self) -> u64;

    /// Whether no mapping is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ----- entry encoding, shared with the inverted table -----

/// Word 0 of a valid entry for `vpn` with `flags`.
#[inline]
pub(super) const fn word0(vpn: Vpn, flags: EntryFlags) -> u64 {
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
pub(super) const fn entry_flags(w0: u64) -> EntryFlags {
    EntryFlags::from_bits_truncate(((w0 >> FLAGS_SHIFT) & FLAGS_MASK) as u16)
}

#[inline]
pub(super) const fn with_flags(w0: u64, flags: EntryFlags) -> u64 {
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
pub(super) fn claim_region<B: Bitmap>(
    mem: &mut PhysMem<B>,
    base: PhysAddr,
    len: u64,
    needed: u64,
) -> Result<(), TableError> {
    if !base.as_u64().is_multiple_of(8) {
        return Err(TableError::Misaligned {
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
/// vpn)`; `entry_at` gives the address of entry `i`. `max_len` bounds the
/// walk: a longer chain means the table is corrupt, a simulator bug.
#[inline]
pub(super) fn search_chain<B: Bitmap>(
    mem: &PhysMem<B>,
    anchor: PhysAddr,
    entry_at: impl Fn(u64) -> PhysAddr,
    max_len: u64,
    asid: Asid,
    vpn: Vpn,
) -> Result<ChainSearch, TableError> {
    let mut probes = 1u32;
    let mut link = mem.read_le(anchor, SLOT_BYTES as u32)?;
    let mut prev = None;
    while link != 0 {
        let i = link - 1;
        assert!(
            u64::from(probes) <= max_len,
            "hash chain longer than the table: corrupt links"
        );
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
    }
    Ok(ChainSearch {
        probes,
        found: None,
    })
}

/// Removes entry `next`'s predecessor link: makes whatever pointed at the
/// found entry (the anchor slot, or entry `prev`) point at `next` instead.
pub(super) fn unlink<B: Bitmap>(
    mem: &mut PhysMem<B>,
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

// ----- the hashed page table -----

/// Sizes of a hashed page table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HashedConfig {
    /// Buckets: a power of two. About as many as mappings expected keeps
    /// chains short.
    pub buckets: u64,
    /// Elements in the pool: the most mappings the table can hold.
    pub capacity: u64,
}

impl HashedConfig {
    /// Bytes of physical memory the table occupies: buckets (padded to 8
    /// bytes) then elements.
    pub fn bytes_needed(&self) -> Result<u64, TableError> {
        bucket_bits("bucket", self.buckets)?;
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

/// A hashed page table in simulated physical memory: buckets of chained
/// `(ASID, VPN) -> PFN` elements. Any number of pages may share a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedPageTable {
    buckets: PhysAddr,
    bucket_bits: u32,
    pool: PhysAddr,
    capacity: u64,
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
    pub fn new<B: Bitmap>(
        mem: &mut PhysMem<B>,
        base: PhysAddr,
        len: u64,
        config: HashedConfig,
    ) -> Result<Self, TableError> {
        let needed = config.bytes_needed()?;
        claim_region(mem, base, len, needed)?;
        Ok(Self {
            buckets: base,
            bucket_bits: config.buckets.trailing_zeros(),
            pool: base.add(pool_offset(config.buckets)),
            capacity: config.capacity,
            high_water: 0,
            free_head: 0,
            mapped: 0,
        })
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
    pub fn chain_lengths<B: Bitmap>(&self, mem: &PhysMem<B>) -> Result<Vec<u32>, TableError> {
        let mut out = Vec::with_capacity(self.buckets() as usize);
        for b in 0..self.buckets() {
            let mut n = 0u32;
            let mut link = mem.read_le(self.slot(b), SLOT_BYTES as u32)?;
            while link != 0 {
                n += 1;
                assert!(u64::from(n) <= self.capacity, "corrupt chain");
                link = next_link(mem.read_le(self.element(link - 1).add(8), 8)?);
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

    fn search<B: Bitmap>(
        &self,
        mem: &PhysMem<B>,
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

    fn alloc<B: Bitmap>(&mut self, mem: &PhysMem<B>) -> Result<u64, TableError> {
        if self.free_head != 0 {
            let i = self.free_head - 1;
            self.free_head = next_link(mem.read_le(self.element(i).add(8), 8)?);
            return Ok(i);
        }
        if self.high_water < self.capacity {
            self.high_water += 1;
            return Ok(self.high_water - 1);
        }
        Err(TableError::PoolExhausted {
            capacity: self.capacity,
        })
    }

    /// Finds the entry of a mapping and applies `f` to its flags.
    fn modify<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        f: impl FnOnce(EntryFlags) -> EntryFlags,
    ) -> Result<Option<(EntryFlags, EntryFlags)>, TableError> {
        let (_, s) = self.search(mem, asid, vpn)?;
        let Some((i, w0, _, _)) = s.found else {
            return Ok(None);
        };
        let old = entry_flags(w0);
        let new = f(old);
        mem.write_le(self.element(i), 8, with_flags(w0, new))?;
        Ok(Some((old, new)))
    }
}

impl TranslationTable for HashedPageTable {
    #[inline]
    fn lookup<B: Bitmap>(
        &self,
        mem: &PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Lookup, TableError> {
        let (_, s) = self.search(mem, asid, vpn)?;
        let hit = match s.found {
            None => None,
            Some((i, w0, _, _)) => {
                let at = self.element(i);
                Some(Hit {
                    asid,
                    vpn,
                    mapping: Mapping {
                        pfn: Pfn::new(mem.read_le(at.add(16), 8)?),
                        flags: entry_flags(w0),
                    },
                    entry: at,
                })
            }
        };
        Ok(Lookup {
            hit,
            probes: s.probes,
        })
    }

    fn map<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        pfn: Pfn,
        flags: EntryFlags,
    ) -> Result<(), TableError> {
        if pfn.as_u64() >> MAX_PHYS_BITS != 0 {
            return Err(TableError::PfnOutOfRange {
                pfn: pfn.as_u64(),
                frames: 1 << MAX_PHYS_BITS,
            });
        }
        let (anchor, s) = self.search(mem, asid, vpn)?;
        if let Some((i, _, _, _)) = s.found {
            return Err(TableError::AlreadyMapped {
                asid: asid.as_u16(),
                vpn: vpn.as_u64(),
                pfn: mem.read_le(self.element(i).add(16), 8)?,
            });
        }
        let i = self.alloc(mem)?;
        let head = mem.read_le(anchor, SLOT_BYTES as u32)?;
        let at = self.element(i);
        mem.write_le(at, 8, word0(vpn, flags))?;
        mem.write_le(at.add(8), 8, word1(asid, head))?;
        mem.write_le(at.add(16), 8, pfn.as_u64())?;
        mem.write_le(anchor, SLOT_BYTES as u32, i + 1)?;
        self.mapped += 1;
        Ok(())
    }

    fn unmap<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<Option<Mapping>, TableError> {
        let (anchor, s) = self.search(mem, asid, vpn)?;
        let Some((i, w0, w1, prev)) = s.found else {
            return Ok(None);
        };
        let at = self.element(i);
        let mapping = Mapping {
            pfn: Pfn::new(mem.read_le(at.add(16), 8)?),
            flags: entry_flags(w0),
        };
        let pool = self.pool;
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

    fn protect<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        perms: EntryFlags,
    ) -> Result<Option<EntryFlags>, TableError> {
        Ok(self
            .modify(mem, asid, vpn, |old| {
                (old - EntryFlags::PERMISSIONS) | (perms & EntryFlags::PERMISSIONS)
            })?
            .map(|(old, _)| old))
    }

    fn update_flags<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        asid: Asid,
        vpn: Vpn,
        set: EntryFlags,
        clear: EntryFlags,
    ) -> Result<Option<EntryFlags>, TableError> {
        Ok(self
            .modify(mem, asid, vpn, |old| (old - clear) | set)?
            .map(|(_, new)| new))
    }

    fn len(&self) -> u64 {
        self.mapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(buckets: u64, capacity: u64) -> (PhysMem, HashedPageTable) {
        let mut mem: PhysMem = PhysMem::new(1 << 20).expect("mem");
        let cfg = HashedConfig { buckets, capacity };
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
        let a = Asid::new(7);
        for v in 0..3 {
            t.map(
                &mut mem,
                a,
                Vpn::new(v),
                Pfn::new(100 + v),
                EntryFlags::USER,
            )
            .expect("map");
        }
        assert_eq!(
            t.map(&mut mem, a, Vpn::new(9), Pfn::new(1), EntryFlags::empty()),
            Err(TableError::PoolExhausted { capacity: 3 })
        );
        assert!(matches!(
            t.map(&mut mem, a, Vpn::new(1), Pfn::new(1), EntryFlags::empty()),
            Err(TableError::AlreadyMapped { pfn: 101, .. })
        ));
        let l = t.lookup(&mem, a, Vpn::new(1)).expect("lookup");
        assert_eq!(l.hit.map(|h| h.mapping.pfn), Some(Pfn::new(101)));
        assert!(l.probes >= 2);
        let gone = t.unmap(&mut mem, a, Vpn::new(1)).expect("unmap");
        assert_eq!(gone.map(|m| m.pfn), Some(Pfn::new(101)));
        assert_eq!(t.lookup(&mem, a, Vpn::new(1)).expect("lookup").hit, None);
        t.map(&mut mem, a, Vpn::new(9), Pfn::new(1), EntryFlags::empty())
            .expect("reuses the freed element");
        assert_eq!(t.len(), 3);
        let total: u32 = t.chain_lengths(&mem).expect("chains").iter().sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn flags_protect_and_mark() {
        let (mut mem, mut t) = table(8, 8);
        let (a, v) = (Asid::new(1), Vpn::new(0x1234));
        let rw = EntryFlags::WRITABLE | EntryFlags::USER;
        t.map(&mut mem, a, v, Pfn::new(5), rw).expect("map");
        let hit = t.lookup(&mem, a, v).expect("lookup").hit.expect("mapped");
        let marked = t
            .mark(&mut mem, &hit, EntryFlags::ACCESSED | EntryFlags::DIRTY)
            .expect("mark");
        assert!(marked.contains(EntryFlags::DIRTY));
        let old = t
            .protect(&mut mem, a, v, EntryFlags::USER)
            .expect("protect");
        assert_eq!(old, Some(rw | EntryFlags::ACCESSED | EntryFlags::DIRTY));
        let now = t
            .update_flags(&mut mem, a, v, EntryFlags::empty(), EntryFlags::ACCESSED)
            .expect("update");
        assert_eq!(now, Some(EntryFlags::USER | EntryFlags::DIRTY));
        t.unmap(&mut mem, a, v).expect("unmap");
        assert!(matches!(
            t.mark(&mut mem, &hit, EntryFlags::ACCESSED),
            Err(TableError::StaleHit { .. })
        ));
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut mem: PhysMem = PhysMem::new(1 << 16).expect("mem");
        let cfg = HashedConfig {
            buckets: 3,
            capacity: 4,
        };
        assert!(matches!(
            cfg.bytes_needed(),
            Err(TableError::BadBuckets { count: 3, .. })
        ));
        let cfg = HashedConfig {
            buckets: 4,
            capacity: 4,
        };
        let at = PhysAddr::new_unchecked(0x100);
        assert!(matches!(
            HashedPageTable::new(&mut mem, at, 8, cfg),
            Err(TableError::RegionTooSmall { .. })
        ));
        assert!(matches!(
            HashedPageTable::new(&mut mem, PhysAddr::new_unchecked(0x101), 4096, cfg),
            Err(TableError::Misaligned { .. })
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
                EntryFlags::empty()
            ),
            Err(TableError::VpnTooWide { .. })
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
