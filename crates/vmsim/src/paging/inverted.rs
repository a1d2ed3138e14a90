//! The inverted page table: one entry per physical frame, saying which
//! page of which address space the frame holds.
//!
//! Entry `i` describes frame `i`, so the table's size follows physical
//! memory, not the virtual address space. Finding the frame of `(ASID,
//! VPN)` is a search; two ways are offered ([`InvertedSearch`]):
//!
//! - [`InvertedSearch::Linear`]: the textbook form, scanning entries from
//!   frame 0 until one matches (a hit in frame `i` costs `i + 1` probes, a
//!   miss costs one probe per frame);
//! - [`InvertedSearch::Hashed`]: a hash anchor table (HAT) as on PowerPC and
//!   IA-64: `hash(asid, vpn)` selects an anchor slot holding the first
//!   frame of a chain linked through the entries' `next` fields (a lookup
//!   costs one probe for the anchor plus one per entry visited).
//!
//! Layout in the caller's region (entry layout in [`super::hashed`]):
//!
//! ```text
//! region base ─► entry[0..frames]     16 bytes each; entry i is frame i
//!                anchor[0..anchors]   4 bytes each: first frame + 1 (0 = empty); Hashed only
//! ```
//!
//! An inverted table cannot map two pages to one frame (shared memory needs
//! an alias mechanism the course does not cover): mapping a frame already
//! in use is [`TableError::FrameInUse`]. In linear mode, `map` and `unmap`
//! also scan the table to find an existing mapping; use the hashed mode for
//! large memories.
//!
//! # Example
//!
//! ```
//! use vmsim::addr::{Asid, PageSize, PhysAddr, Pfn, Vpn};
//! use vmsim::paging::PteFlags;
//! use vmsim::paging::hashed::{TableSearch, TranslationTable};
//! use vmsim::paging::inverted::{InvertedConfig, InvertedPageTable, InvertedSearch};
//! use vmsim::phys::PhysMem;
//!
//! let mut mem: PhysMem = PhysMem::new(64 * 4096)?;
//! let cfg = InvertedConfig { frames: 64, page_size: PageSize::SIZE_4K, search: InvertedSearch::Linear };
//! let mut ipt = InvertedPageTable::new(&mut mem, PhysAddr::new(0)?, cfg.bytes_needed()?, cfg)?;
//! // Frame 9 holds page 0x40 of process 3: entry 9 says so.
//! ipt.map(&mut mem, Asid::new(3), Vpn::new(0x40), Pfn::new(9), PteFlags::READ)?;
//! let found = ipt.lookup(&mem, Asid::new(3), Vpn::new(0x40))?;
//! assert_eq!(found.hit.map(|h| h.mapping.pfn), Some(Pfn::new(9)));
//! assert_eq!(found.probes, 10); // entries 0 to 9 were searched
//! assert_eq!(ipt.region().1, 64 * 16); // 16 bytes per frame
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This module owns the bytes of its own region only.

use crate::addr::{Asid, PageSize, Pfn, PhysAddr, Vpn};
use crate::memory::PhysMemory;
use serde::{Deserialize, Serialize};

use super::hashed::{
    ChainSearch, KEY_BYTES, KeyedEntries, Lookup, MAX_ENTRIES, Mapping, SLOT_BYTES, TableError,
    TableSearch, TranslationTable, bucket_bits, check_frames, check_vpn, claim_region, entry_asid,
    entry_flags, entry_vpn, hash, is_valid, key_matches, keyed_lookup, keyed_modify_flags,
    next_link, search_chain, unlink, word0, word1,
};
use super::pte::PteFlags;

/// How an inverted table finds the frame of a page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum InvertedSearch {
    /// Scan every entry in frame order (the textbook search).
    Linear,
    /// Hash into a table of `anchors` slots (a power of two), then follow a chain.
    Hashed {
        /// Hash anchor slots; twice the frame count is usual on PowerPC.
        anchors: u64,
    },
}

/// Sizes of an inverted page table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InvertedConfig {
    /// Physical frames described: entry `i` is frame `i`.
    pub frames: u64,
    /// The size of the frames (and of the pages mapped).
    pub page_size: PageSize,
    /// How lookups search.
    pub search: InvertedSearch,
}

impl InvertedConfig {
    /// Bytes of physical memory the table occupies.
    pub fn bytes_needed(&self) -> Result<u64, TableError> {
        if self.frames > MAX_ENTRIES {
            return Err(TableError::TooManyEntries { count: self.frames });
        }
        check_frames(self.frames, self.page_size)?;
        let anchors = match self.search {
            InvertedSearch::Linear => 0,
            InvertedSearch::Hashed { anchors } => {
                bucket_bits("hash anchor", anchors)?;
                anchors
            }
        };
        Ok(self.frames * KEY_BYTES + anchors * SLOT_BYTES)
    }
}

/// Where an inverted page table lies in memory and how it is searched:
/// what a walker needs ([`TableSearch`]), without the count of mappings
/// only the table's owner keeps. `Copy`, so the MMU holds its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvertedLayout {
    entries: PhysAddr,
    frames: u64,
    page_size: PageSize,
    /// The hash anchor table and log2 of its slot count, in hashed mode.
    anchors: Option<(PhysAddr, u32)>,
}

/// An inverted page table in simulated physical memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvertedPageTable {
    layout: InvertedLayout,
    mapped: u64,
}

impl InvertedPageTable {
    /// Builds an empty table in `[base, base + len)` of `mem`, which must
    /// be 8-byte aligned and hold [`InvertedConfig::bytes_needed`] bytes.
    /// The region is cleared.
    ///
    /// The table's own frames are among those it describes; the caller
    /// keeps them out of the frame allocator so they are never mapped.
    pub fn new<M: PhysMemory + ?Sized>(
        mem: &mut M,
        base: PhysAddr,
        len: u64,
        config: InvertedConfig,
    ) -> Result<Self, TableError> {
        let needed = config.bytes_needed()?;
        claim_region(mem, base, len, needed)?;
        let anchors = match config.search {
            InvertedSearch::Linear => None,
            InvertedSearch::Hashed { anchors } => Some((
                base.add(config.frames * KEY_BYTES),
                anchors.trailing_zeros(),
            )),
        };
        Ok(Self {
            layout: InvertedLayout {
                entries: base,
                frames: config.frames,
                page_size: config.page_size,
                anchors,
            },
            mapped: 0,
        })
    }

    /// Where the table lies and how it is searched (what a walker needs).
    #[must_use]
    pub fn layout(&self) -> InvertedLayout {
        self.layout
    }

    /// The physical memory the table occupies: see [`InvertedLayout::region`].
    #[must_use]
    pub fn region(&self) -> (PhysAddr, u64) {
        self.layout.region()
    }

    /// Frames described.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.layout.frames
    }

    /// How lookups search.
    #[must_use]
    pub fn search_mode(&self) -> InvertedSearch {
        self.layout.search_mode()
    }

    /// The hash anchor slot `(asid, vpn)` hashes to, in hashed mode.
    #[must_use]
    pub fn anchor_of(&self, asid: Asid, vpn: Vpn) -> Option<u64> {
        self.layout.anchor_of(asid, vpn)
    }

    /// What frame `pfn` holds: see [`InvertedLayout::frame_owner`].
    pub fn frame_owner<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        pfn: Pfn,
    ) -> Result<Option<(Asid, Vpn, PteFlags)>, TableError> {
        self.layout.frame_owner(mem, pfn)
    }

    /// The physical address of frame `pfn`'s entry (where a mapping of
    /// that frame is, or would be, stored).
    #[must_use]
    pub fn entry_of(&self, pfn: Pfn) -> PhysAddr {
        self.layout.entry(pfn.as_u64())
    }
}

impl InvertedLayout {
    /// The physical memory the table occupies: its first byte and length
    /// (entries, then the hash anchor table). The caller keeps these frames
    /// out of its frame allocator; the length is the table's memory overhead.
    #[must_use]
    pub fn region(&self) -> (PhysAddr, u64) {
        let anchors = self
            .anchors
            .map_or(0, |(_, bits)| (1u64 << bits) * SLOT_BYTES);
        (self.entries, self.frames * KEY_BYTES + anchors)
    }

    /// Frames described.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How lookups search.
    #[must_use]
    pub fn search_mode(&self) -> InvertedSearch {
        match self.anchors {
            None => InvertedSearch::Linear,
            Some((_, bits)) => InvertedSearch::Hashed { anchors: 1 << bits },
        }
    }

    /// The hash anchor slot `(asid, vpn)` hashes to, in hashed mode.
    #[must_use]
    pub fn anchor_of(&self, asid: Asid, vpn: Vpn) -> Option<u64> {
        self.anchors.map(|(_, bits)| hash(asid, vpn, bits))
    }

    /// What frame `pfn` holds: `(asid, vpn, flags)`, or `None` if it is
    /// free. This is the question an inverted table answers directly.
    pub fn frame_owner<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        pfn: Pfn,
    ) -> Result<Option<(Asid, Vpn, PteFlags)>, TableError> {
        self.check_pfn(pfn)?;
        let at = self.entry(pfn.as_u64());
        let w0 = mem.read_le(at, 8)?;
        if !is_valid(w0) {
            return Ok(None);
        }
        let w1 = mem.read_le(at.add(8), 8)?;
        Ok(Some((entry_asid(w1), entry_vpn(w0), entry_flags(w0))))
    }

    #[inline]
    fn entry(&self, i: u64) -> PhysAddr {
        self.entries.add(i * KEY_BYTES)
    }

    fn check_pfn(&self, pfn: Pfn) -> Result<(), TableError> {
        if pfn.as_u64() < self.frames {
            Ok(())
        } else {
            Err(TableError::PfnOutOfRange {
                pfn: pfn.as_u64(),
                frames: self.frames,
            })
        }
    }

    /// Finds `(asid, vpn)`. Returns the anchor slot used (hashed mode) and
    /// the search result.
    #[inline]
    fn search<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        vpn: Vpn,
    ) -> Result<(Option<PhysAddr>, ChainSearch), TableError> {
        check_vpn(vpn)?;
        match self.anchors {
            Some((anchors, bits)) => {
                let anchor = anchors.add(hash(asid, vpn, bits) * SLOT_BYTES);
                let entries = self.entries;
                let s = search_chain(
                    mem,
                    anchor,
                    |i| entries.add(i * KEY_BYTES),
                    self.frames,
                    asid,
                    vpn,
                )?;
                Ok((Some(anchor), s))
            }
            None => {
                let mut probes = 0u32;
                for i in 0..self.frames {
                    let at = self.entry(i);
                    let w0 = mem.read_le(at, 8)?;
                    probes = probes.saturating_add(1);
                    // Word 1 is read only when word 0 could match: one probe
                    // is one entry, as both words share a cache line.
                    if is_valid(w0) && entry_vpn(w0) == vpn {
                        let w1 = mem.read_le(at.add(8), 8)?;
                        if key_matches(w0, w1, asid, vpn) {
                            return Ok((
                                None,
                                ChainSearch {
                                    probes,
                                    found: Some((i, w0, w1, None)),
                                },
                            ));
                        }
                    }
                }
                Ok((
                    None,
                    ChainSearch {
                        probes,
                        found: None,
                    },
                ))
            }
        }
    }
}

impl KeyedEntries for InvertedLayout {
    #[inline]
    fn entry_addr(&self, i: u64) -> PhysAddr {
        self.entry(i)
    }

    /// Entry `i` is frame `i`'s: an inverted table maps by position.
    #[inline]
    fn entry_pfn<M: PhysMemory + ?Sized>(&self, _mem: &M, i: u64) -> Result<Pfn, TableError> {
        Ok(Pfn::new(i))
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

impl TableSearch for InvertedLayout {
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

impl TableSearch for InvertedPageTable {
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

impl TranslationTable for InvertedPageTable {
    fn map<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        asid: Asid,
        vpn: Vpn,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), TableError> {
        self.layout.check_pfn(pfn)?;
        let (anchor, s) = self.layout.search(mem, asid, vpn)?;
        if let Some((i, _, _, _)) = s.found {
            return Err(TableError::AlreadyMapped {
                asid: asid.as_u16(),
                vpn: vpn.as_u64(),
                pfn: i,
            });
        }
        if let Some((owner, owner_vpn, _)) = self.frame_owner(mem, pfn)? {
            return Err(TableError::FrameInUse {
                pfn: pfn.as_u64(),
                asid: owner.as_u16(),
                vpn: owner_vpn.as_u64(),
            });
        }
        let at = self.layout.entry(pfn.as_u64());
        let head = match anchor {
            Some(anchor) => {
                let head = mem.read_le(anchor, SLOT_BYTES as u32)?;
                mem.write_le(anchor, SLOT_BYTES as u32, pfn.as_u64() + 1)?;
                head
            }
            None => 0,
        };
        mem.write_le(at, 8, word0(vpn, flags))?;
        mem.write_le(at.add(8), 8, word1(asid, head))?;
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
        if let Some(anchor) = anchor {
            let entries = self.layout.entries;
            unlink(
                mem,
                anchor,
                |j| entries.add(j * KEY_BYTES),
                prev,
                next_link(w1),
            )?;
        }
        mem.zero(self.layout.entry(i), KEY_BYTES)?;
        self.mapped -= 1;
        Ok(Some(Mapping {
            pfn: Pfn::new(i),
            flags: entry_flags(w0),
        }))
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

    fn table(frames: u64, search: InvertedSearch) -> (PhysMem, InvertedPageTable) {
        let mut mem: PhysMem = PhysMem::new(1 << 20).expect("mem");
        let cfg = InvertedConfig {
            frames,
            page_size: PageSize::SIZE_4K,
            search,
        };
        let len = cfg.bytes_needed().expect("size");
        let t = InvertedPageTable::new(&mut mem, PhysAddr::new_unchecked(0x8000), len, cfg)
            .expect("table");
        (mem, t)
    }

    #[test]
    fn linear_probes_count_frames_scanned() {
        let (mut mem, mut t) = table(16, InvertedSearch::Linear);
        let a = Asid::new(3);
        t.map(&mut mem, a, Vpn::new(0x40), Pfn::new(9), PteFlags::USER)
            .expect("map");
        let l = t.lookup(&mem, a, Vpn::new(0x40)).expect("lookup");
        assert_eq!(l.hit.map(|h| h.mapping.pfn), Some(Pfn::new(9)));
        assert_eq!(l.probes, 10);
        let miss = t.lookup(&mem, a, Vpn::new(0x41)).expect("lookup");
        assert_eq!((miss.hit, miss.probes), (None, 16));
        // Same VPN, other address space: a different page.
        let other = t
            .lookup(&mem, Asid::new(4), Vpn::new(0x40))
            .expect("lookup");
        assert_eq!(other.hit, None);
    }

    #[test]
    fn hashed_chain_and_frame_rules() {
        // One anchor: every page shares a chain, so probe counts are exact.
        let (mut mem, mut t) = table(8, InvertedSearch::Hashed { anchors: 1 });
        let a = Asid::new(1);
        for (v, f) in [(10, 2), (11, 5), (12, 7)] {
            t.map(&mut mem, a, Vpn::new(v), Pfn::new(f), PteFlags::WRITE)
                .expect("map");
        }
        // Newest at the head: 12 is found after 1 anchor + 1 entry, 10 after 3 entries.
        assert_eq!(t.lookup(&mem, a, Vpn::new(12)).expect("l").probes, 2);
        assert_eq!(t.lookup(&mem, a, Vpn::new(10)).expect("l").probes, 4);
        assert_eq!(t.lookup(&mem, a, Vpn::new(99)).expect("l").probes, 4);
        assert!(matches!(
            t.map(
                &mut mem,
                Asid::new(2),
                Vpn::new(1),
                Pfn::new(5),
                PteFlags::READ
            ),
            Err(TableError::FrameInUse {
                pfn: 5,
                vpn: 11,
                asid: 1
            })
        ));
        assert!(matches!(
            t.map(&mut mem, a, Vpn::new(1), Pfn::new(8), PteFlags::READ),
            Err(TableError::PfnOutOfRange { pfn: 8, frames: 8 })
        ));
        // Unlink from the middle of the chain.
        let m = t.unmap(&mut mem, a, Vpn::new(11)).expect("unmap");
        assert_eq!(m.map(|m| m.pfn), Some(Pfn::new(5)));
        assert_eq!(t.lookup(&mem, a, Vpn::new(10)).expect("l").probes, 3);
        assert_eq!(t.frame_owner(&mem, Pfn::new(5)).expect("owner"), None);
        assert_eq!(
            t.frame_owner(&mem, Pfn::new(7)).expect("owner"),
            Some((a, Vpn::new(12), PteFlags::WRITE))
        );
        assert_eq!(t.len(), 2);
    }
}
