//! The translation structure a machine uses, chosen in config: radix trees
//! (one per address space), or one machine-wide inverted or hashed page
//! table keyed by `(ASID, VPN)`.
//!
//! - [`StructureSpec`]: the choice and the sizes it needs.
//! - [`PageTables`]: what the kernel owns and changes mappings through.
//!   For radix it holds each address space's tree, found by the space's
//!   ASID; for the others the one global table (keyed by ASID), in a
//!   region of physical memory the caller reserved.
//!
//!   An address space is named by its ASID under every structure, and the
//!   radix roots live inside the radix variant, so a radix structure with
//!   a keyed space (or the reverse) cannot be built: an ASID with no space
//!   is the only thing that can go wrong ([`MapError::NoSpace`]).
//! - [`TableBase`]: what the MMU's walker needs (the radix root comes with
//!   the context switch; the global table's geometry is set once, like
//!   PowerPC's SDR1 register).
//!
//! Every operation dispatches with `match`; the methods are generic over
//! the memory's write tracking and the frame allocator.
//!
//! # Sharing a frame under an inverted table
//!
//! An inverted table has one entry per frame, so a frame can be mapped at
//! one `(ASID, VPN)` at a time, yet fork's copy-on-write and shared memory
//! map one frame in several spaces. As the textbook answer goes, the table
//! holds one of those mappings; the others are kept in the kernel's own
//! record of every mapping ([`PageTables`] keeps it). An access through a
//! mapping that is not in the table misses and page-faults; the kernel then
//! moves the frame's entry over ([`PageTables::reload`]), invalidating the
//! TLB entry of the mapping it displaced. The accessed and dirty bits of a
//! displaced mapping are saved in the record.
//!
//! Data pages must be the table's page size (the format's base page):
//! inverted and hashed tables here have one page size.
//!
//! This module owns no frames: radix tables take theirs from the allocator
//! passed in, and the global table's region is the caller's to reserve.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::addr::{Asid, PageSize, Pfn, PhysAddr, VirtAddr, Vpn};
use crate::alloc::FrameAllocator;
use crate::memory::PhysMemory;

use super::format::Format;
use super::hashed::{
    HashedConfig, HashedLayout, HashedPageTable, TableError, TableSearch, TableWalk,
    TranslationTable,
};
use super::inverted::{InvertedConfig, InvertedLayout, InvertedPageTable, InvertedSearch};
use super::pte::PteFlags;
use super::radix::{Flush, LeafInfo, MapError, RadixTable, Unmapped};
use super::walk::{FaultKind, Translation, WalkFault, walk};

/// Which translation structure to build, with the sizes it needs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum StructureSpec {
    /// A radix tree per address space, in the format's layout.
    #[default]
    Radix,
    /// One inverted page table for the machine: an entry per frame.
    Inverted {
        /// Linear search, or a hash anchor table of this many slots.
        search: InvertedSearch,
    },
    /// One hashed page table for the machine.
    Hashed {
        /// Buckets (a power of two).
        buckets: u64,
        /// Elements: the most mappings (over all address spaces) it holds.
        capacity: u64,
    },
}

impl StructureSpec {
    /// The structure's name as config writes it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Radix => "radix",
            Self::Inverted { .. } => "inverted",
            Self::Hashed { .. } => "hashed",
        }
    }

    /// Bytes of physical memory the global table needs on a machine of
    /// `frames` frames of `page` (0 for radix, whose tables are allocated
    /// as spaces grow).
    pub fn region_bytes(&self, frames: u64, page: PageSize) -> Result<u64, TableError> {
        match *self {
            Self::Radix => Ok(0),
            Self::Inverted { search } => InvertedConfig {
                frames,
                page_size: page,
                search,
            }
            .bytes_needed(),
            Self::Hashed { buckets, capacity } => HashedConfig {
                buckets,
                capacity,
                page_size: page,
            }
            .bytes_needed(),
        }
    }
}

/// What the MMU's walker reads on a TLB miss besides the context's root:
/// nothing more for radix, the global table's layout otherwise (where it
/// lies, how it hashes), like PowerPC's SDR1 register. A layout is `Copy`
/// and never changes while the machine runs, so the MMU holds its own and
/// searches with it; the kernel keeps the table's bookkeeping (mapping
/// count, free elements).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum TableBase {
    /// Walk the radix tree at the context's root.
    #[default]
    Radix,
    /// Search the inverted table.
    Inverted(InvertedLayout),
    /// Search the hashed table.
    Hashed(HashedLayout),
}

/// What [`PageTables::reload`] did.
#[must_use = "a displaced mapping's TLB entry must be invalidated"]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reload {
    /// The mapping was already in the table (or the structure never displaces).
    Resident,
    /// The mapping was written into its frame's entry; the mapping it
    /// displaced (if any), whose TLB entry must go.
    Loaded {
        /// The ASID and invalidation of the displaced mapping.
        displaced: Option<(Asid, Flush)>,
    },
}

/// The machine's page-table structure, owned by the kernel. Every method
/// names an address space by its ASID.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PageTables {
    /// Radix trees, one per space.
    Radix(RadixSpaces),
    /// The inverted table and the record of every mapping (see the module docs).
    Inverted(InvertedTables),
    /// The hashed table.
    Hashed(HashedPageTable),
}

/// Each address space's radix tree, indexed by its ASID (ASIDs are small
/// and unique among live spaces, so a vector is the map).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadixSpaces {
    roots: Vec<Option<RadixTable>>,
}

impl RadixSpaces {
    /// The tree of the space tagged `asid`.
    #[must_use]
    pub fn get(&self, asid: Asid) -> Option<RadixTable> {
        self.roots
            .get(usize::from(asid.as_u16()))
            .copied()
            .flatten()
    }

    fn space(&self, asid: Asid) -> Result<RadixTable, MapError> {
        self.get(asid).ok_or(MapError::NoSpace { asid })
    }

    /// Spaces that have a tree.
    #[must_use]
    pub fn len(&self) -> usize {
        self.roots.iter().flatten().count()
    }

    /// Whether no space has a tree.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An inverted page table with the kernel's record of every mapping,
/// kept consistent by [`PageTables`]' methods (hence private fields): every
/// entry of the table is a recorded mapping of its frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvertedTables {
    /// The table in physical memory.
    table: InvertedPageTable,
    /// Every mapping, keyed by `(ASID, VPN)`.
    record: BTreeMap<(u16, u64), RecordedMapping>,
}

impl InvertedTables {
    /// The table in physical memory.
    #[must_use]
    pub fn table(&self) -> &InvertedPageTable {
        &self.table
    }

    /// Mappings recorded (in the table or waiting for their frame's entry).
    #[must_use]
    pub fn recorded(&self) -> usize {
        self.record.len()
    }
}

/// One mapping in the kernel's record under an inverted table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct RecordedMapping {
    pfn: Pfn,
    /// Valid while the mapping is not in the table; the table's entry is
    /// authoritative while it is.
    flags: PteFlags,
}

fn table_err(e: TableError) -> MapError {
    match e {
        TableError::Memory(m) => MapError::Memory(m),
        e => MapError::Table(e),
    }
}

fn not_mapped(va: VirtAddr) -> MapError {
    MapError::NotMapped { va, level: 0 }
}

impl PageTables {
    /// Builds the structure of `spec` for a machine of `frames` frames of
    /// `page`: nothing for radix; the global table in `[base, base + len)`
    /// (which the caller keeps out of its frame allocator) otherwise.
    pub fn new<M: PhysMemory + ?Sized>(
        spec: StructureSpec,
        mem: &mut M,
        frames: u64,
        page: PageSize,
        base: PhysAddr,
        len: u64,
    ) -> Result<Self, TableError> {
        Ok(match spec {
            StructureSpec::Radix => Self::Radix(RadixSpaces::default()),
            StructureSpec::Inverted { search } => Self::Inverted(InvertedTables {
                table: InvertedPageTable::new(
                    mem,
                    base,
                    len,
                    InvertedConfig {
                        frames,
                        page_size: page,
                        search,
                    },
                )?,
                record: BTreeMap::new(),
            }),
            StructureSpec::Hashed { buckets, capacity } => Self::Hashed(HashedPageTable::new(
                mem,
                base,
                len,
                HashedConfig {
                    buckets,
                    capacity,
                    page_size: page,
                },
            )?),
        })
    }

    /// The structure's name (`radix`, `inverted`, `hashed`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Radix(_) => "radix",
            Self::Inverted(_) => "inverted",
            Self::Hashed(_) => "hashed",
        }
    }

    /// The global table's region (first byte, length), or `None` for radix.
    #[must_use]
    pub fn region(&self) -> Option<(PhysAddr, u64)> {
        match self {
            Self::Radix(_) => None,
            Self::Inverted(InvertedTables { table, .. }) => Some(table.region()),
            Self::Hashed(t) => Some(t.region()),
        }
    }

    /// What the MMU needs to walk this structure.
    #[must_use]
    pub fn base(&self) -> TableBase {
        match self {
            Self::Radix(_) => TableBase::Radix,
            Self::Inverted(InvertedTables { table, .. }) => TableBase::Inverted(table.layout()),
            Self::Hashed(t) => TableBase::Hashed(t.layout()),
        }
    }

    /// Makes the tables of a new address space tagged `asid`: a fresh radix
    /// root (allocated from `alloc`); nothing for the global table, whose
    /// key the ASID is. Radix refuses an ASID that already has a tree
    /// ([`MapError::SpaceExists`]).
    pub fn new_space<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
    ) -> Result<(), MapError> {
        let Self::Radix(r) = self else {
            return Ok(());
        };
        if r.get(asid).is_some() {
            return Err(MapError::SpaceExists { asid });
        }
        let t = RadixTable::new(fmt, mem, alloc)?;
        let i = usize::from(asid.as_u16());
        if r.roots.len() <= i {
            r.roots.resize(i + 1, None);
        }
        r.roots[i] = Some(t);
        Ok(())
    }

    /// What the MMU's root register holds for the space tagged `asid`: its
    /// radix root, or the global table's base.
    pub fn root(&self, asid: Asid) -> Result<PhysAddr, MapError> {
        match self {
            Self::Radix(r) => Ok(r.space(asid)?.root()),
            _ => Ok(self.region().map_or(PhysAddr::default(), |(b, _)| b)),
        }
    }

    fn check_keyed(&self, fmt: &Format, va: VirtAddr, size: PageSize) -> Result<(), MapError> {
        fmt.check_address(va)
            .map_err(|source| MapError::Address { va, source })?;
        if size != fmt.page_size() {
            return Err(MapError::NoSuchPageSize {
                format: format!("{} with an {} page table", fmt.name(), self.name()),
                size,
            });
        }
        Ok(())
    }

    /// Maps the page of `size` at `va` in the space tagged `asid` to the frame at `frame`
    /// (see [`RadixTable::map`]). Inverted and hashed tables map base pages only.
    #[allow(clippy::too_many_arguments)]
    pub fn map<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
        va: VirtAddr,
        frame: PhysAddr,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        if !matches!(self, Self::Radix(_)) {
            self.check_keyed(fmt, va, size)?;
            if !va.is_aligned(size) {
                return Err(MapError::Misaligned { va, size });
            }
        }
        match self {
            Self::Radix(r) => r.space(asid)?.map(fmt, mem, alloc, va, frame, size, flags),
            Self::Hashed(t) => {
                t.map_page(mem, asid, va, frame, flags)
                    .map_err(|e| match e {
                        TableError::AlreadyMapped { .. } => {
                            MapError::AlreadyMapped { va, level: 0 }
                        }
                        e => table_err(e),
                    })?;
                Ok(Flush::new(va, size))
            }
            Self::Inverted(InvertedTables { table, record }) => {
                let key = (asid.as_u16(), va.vpn(size).as_u64());
                let pfn = frame.pfn(size);
                if record.contains_key(&key) {
                    return Err(MapError::AlreadyMapped { va, level: 0 });
                }
                // A free entry takes the mapping; a frame already mapped
                // elsewhere keeps that mapping and this one waits in the record.
                if table.frame_owner(mem, pfn).map_err(table_err)?.is_none() {
                    table
                        .map_page(mem, asid, va, frame, flags)
                        .map_err(table_err)?;
                }
                record.insert(key, RecordedMapping { pfn, flags });
                Ok(Flush::new(va, size))
            }
        }
    }

    /// Removes the mapping of the page holding `va` in the space tagged `asid`
    /// ([`MapError::NotMapped`] if there is none).
    pub fn unmap<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
        va: VirtAddr,
    ) -> Result<Unmapped, MapError> {
        let size = fmt.page_size();
        match self {
            Self::Radix(r) => r.space(asid)?.unmap(fmt, mem, alloc, va),
            Self::Hashed(t) => t
                .unmap_page(mem, asid, va)
                .map_err(table_err)?
                .ok_or_else(|| not_mapped(va)),
            Self::Inverted(InvertedTables { table, record }) => {
                let key = (asid.as_u16(), va.vpn(size).as_u64());
                let r = record.remove(&key).ok_or_else(|| not_mapped(va))?;
                let flags = match resident(table, mem, asid, va.vpn(size), r.pfn)? {
                    true => table
                        .unmap_page(mem, asid, va)
                        .map_err(table_err)?
                        .map_or(r.flags, |u| u.flags),
                    false => r.flags,
                };
                Ok(Unmapped {
                    frame: r.pfn.base(size),
                    size,
                    flags,
                    flush: Flush::new(va.align_down(size), size),
                })
            }
        }
    }

    /// [`PageTables::map`] of a radix mapping whose leaf entry the caller
    /// knows (see [`RadixTable::map_at`]); other structures map as usual.
    #[allow(clippy::too_many_arguments)]
    pub fn map_at<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
        va: VirtAddr,
        frame: PhysAddr,
        size: PageSize,
        flags: PteFlags,
        at: (usize, PhysAddr),
    ) -> Result<Flush, MapError> {
        match self {
            Self::Radix(r) => r
                .space(asid)?
                .map_at(fmt, mem, alloc, va, frame, size, flags, at.0, at.1),
            _ => self.map(fmt, mem, alloc, asid, va, frame, size, flags),
        }
    }

    /// [`PageTables::unmap`] of `leaf`, one of what [`PageTables::leaves`]
    /// listed for `asid`, unmapped in the listing's order (see
    /// [`RadixTable::unmap_listed`]: no walk from the root; `next`, the
    /// leaf listed after it); other
    /// structures unmap as usual.
    pub fn unmap_listed<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
        leaf: &LeafInfo,
        next: Option<&LeafInfo>,
    ) -> Result<Unmapped, MapError> {
        match self {
            Self::Radix(r) => r.space(asid)?.unmap_listed(fmt, mem, alloc, leaf, next),
            _ => self.unmap(fmt, mem, alloc, asid, leaf.page),
        }
    }

    /// [`PageTables::unmap`] of a radix mapping whose leaf entry the caller
    /// knows (see [`RadixTable::unmap_at`]); other structures unmap as usual.
    #[allow(clippy::too_many_arguments)]
    pub fn unmap_at<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
        va: VirtAddr,
        leaf_idx: usize,
        entry_addr: PhysAddr,
    ) -> Result<Unmapped, MapError> {
        match self {
            Self::Radix(r) => r
                .space(asid)?
                .unmap_at(fmt, mem, alloc, va, leaf_idx, entry_addr),
            _ => self.unmap(fmt, mem, alloc, asid, va),
        }
    }

    /// Replaces the permissions of the page holding `va` in the space tagged `asid`,
    /// keeping its frame and accessed, dirty and global bits.
    pub fn protect<M: PhysMemory + ?Sized>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        let size = fmt.page_size();
        match self {
            Self::Radix(r) => r.space(asid)?.protect(fmt, mem, va, flags),
            Self::Hashed(t) => t
                .protect_page(mem, asid, va, flags)
                .map_err(table_err)?
                .ok_or_else(|| not_mapped(va)),
            Self::Inverted(InvertedTables { table, record }) => {
                let vpn = va.vpn(size);
                let r = record
                    .get_mut(&(asid.as_u16(), vpn.as_u64()))
                    .ok_or_else(|| not_mapped(va))?;
                let kept = PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::GLOBAL;
                r.flags = (flags - PteFlags::ACCESSED - PteFlags::DIRTY) | (r.flags & kept);
                if resident(table, mem, asid, vpn, r.pfn)? {
                    table
                        .protect(mem, asid, vpn, flags)
                        .map_err(table_err)?
                        .ok_or_else(|| not_mapped(va))?;
                }
                Ok(Flush::new(va.align_down(size), size))
            }
        }
    }

    /// Translates `va` in the space tagged `asid` as the kernel sees it (no TLB, no A/D
    /// update, no permission check). Under an inverted table this includes
    /// mappings waiting in the record (their `leaf_addr` is the frame's
    /// entry, `leaf_raw` 0).
    pub fn translate<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        asid: Asid,
        va: VirtAddr,
    ) -> Result<Translation, WalkFault> {
        if let Self::Inverted(InvertedTables { table, record }) = self {
            fmt.check_address(va)?;
            let size = fmt.page_size();
            let key = (asid.as_u16(), va.vpn(size).as_u64());
            let Some(r) = record.get(&key) else {
                return Err(WalkFault {
                    kind: FaultKind::NotPresent,
                    level: None,
                    idx: None,
                });
            };
            let hw = table.translate(mem, asid, va).result;
            if let Ok(t) = hw {
                return Ok(t);
            }
            let frame = r.pfn.base(size);
            return Ok(Translation {
                pa: frame.add(va.page_offset(size)),
                page: va.align_down(size),
                frame,
                size,
                flags: r.flags,
                leaf_idx: 0,
                leaf_addr: table.entry_of(r.pfn),
                leaf_raw: 0,
            });
        }
        self.walk(fmt, mem, asid, va).result
    }

    /// [`PageTables::translate`] (`Err(None)` for its fault), and for a
    /// radix tree whose walk stopped at an empty entry, that entry's level
    /// index and address (see [`RadixTable::translate_or_place`]).
    pub fn translate_or_place<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        asid: Asid,
        va: VirtAddr,
    ) -> Result<Translation, Option<(usize, PhysAddr)>> {
        match self {
            Self::Radix(r) => match r.get(asid) {
                Some(t) => t.translate_or_place(fmt, mem, va),
                None => Err(None),
            },
            _ => self.translate(fmt, mem, asid, va).map_err(|_| None),
        }
    }

    /// Translates `va` in the space tagged `asid` as the hardware walker does, without a
    /// TLB: the radix walk, or a search of the global table, with the
    /// memory references it took (radix: entries read).
    pub fn walk<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        asid: Asid,
        va: VirtAddr,
    ) -> TableWalk {
        let fault = |f: WalkFault| TableWalk {
            result: Err(f),
            probes: 0,
        };
        match self {
            Self::Radix(r) => {
                // A space with no tree has nothing mapped.
                let Some(t) = r.get(asid) else {
                    return fault(WalkFault {
                        kind: FaultKind::NotPresent,
                        level: None,
                        idx: None,
                    });
                };
                let mut probes = 0;
                let result = walk(fmt, mem, t.root(), va, |_| probes += 1);
                TableWalk { result, probes }
            }
            Self::Inverted(InvertedTables { table, .. }) => {
                if let Err(f) = fmt.check_address(va) {
                    return fault(f.into());
                }
                table.translate(mem, asid, va)
            }
            Self::Hashed(t) => {
                if let Err(f) = fmt.check_address(va) {
                    return fault(f.into());
                }
                t.translate(mem, asid, va)
            }
        }
    }

    /// Every page mapped in the space tagged `asid`, in increasing address order of the
    /// index bits (radix) or of the VPN (inverted, hashed).
    pub fn leaves<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        asid: Asid,
    ) -> Result<Vec<LeafInfo>, MapError> {
        let size = fmt.page_size();
        let mut out = Vec::new();
        match self {
            Self::Radix(r) => return r.space(asid)?.leaves(fmt, mem),
            Self::Hashed(t) => {
                for (a, vpn, m, at) in t.mappings(mem).map_err(table_err)? {
                    if a == asid {
                        out.push(LeafInfo {
                            page: vpn.base(size),
                            frame: m.pfn.base(size),
                            size,
                            flags: m.flags,
                            entry_addr: at,
                        });
                    }
                }
                out.sort_by_key(|l| l.page);
            }
            Self::Inverted(InvertedTables { table, record }) => {
                let a = asid.as_u16();
                for (&(_, vpn), r) in record.range((a, 0)..=(a, u64::MAX)) {
                    let vpn = Vpn::new(vpn);
                    let flags = match table.frame_owner(mem, r.pfn).map_err(table_err)? {
                        Some((o, v, f)) if o == asid && v == vpn => f,
                        _ => r.flags,
                    };
                    out.push(LeafInfo {
                        page: vpn.base(size),
                        frame: r.pfn.base(size),
                        size,
                        flags,
                        entry_addr: table.entry_of(r.pfn),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every table of the space tagged `asid`'s own (radix: level index and address; none
    /// for a space in the global table, whose region is [`Self::region`]).
    pub fn tables<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        asid: Asid,
    ) -> Result<Vec<(usize, PhysAddr)>, MapError> {
        match self {
            Self::Radix(r) => r.space(asid)?.tables(fmt, mem),
            _ => Ok(Vec::new()),
        }
    }

    /// Frees the own tables of the space tagged `asid` (the caller unmapped
    /// its pages first); under radix the ASID has no space afterwards.
    pub fn destroy<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        asid: Asid,
    ) -> Result<(), MapError> {
        let Self::Radix(r) = self else {
            return Ok(());
        };
        r.space(asid)?.destroy(fmt, mem, alloc)?;
        r.roots[usize::from(asid.as_u16())] = None;
        while r.roots.last() == Some(&None) {
            r.roots.pop();
        }
        Ok(())
    }

    /// Sets the status bits `set` and clears `clear` (each a subset of
    /// accessed and dirty; others are ignored) in the mapping of the page
    /// holding `va` in the space tagged `asid`: the OS setting them on an Svade fault, or
    /// clearing the accessed bit for page replacement. Returns the flags
    /// after the change and the TLB invalidation it requires (a cached
    /// translation may still think the page accessed or dirty).
    pub fn update_status<M: PhysMemory + ?Sized>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
        set: PteFlags,
        clear: PteFlags,
    ) -> Result<(PteFlags, Flush), MapError> {
        let status = PteFlags::ACCESSED | PteFlags::DIRTY;
        let (set, clear) = (set & status, clear & status);
        match self {
            Self::Radix(r) => {
                let t = r.space(asid)?;
                let tr = t.translate(fmt, mem, va).map_err(|_| not_mapped(va))?;
                let mask = |f: PteFlags| {
                    let mut m = 0;
                    if f.contains(PteFlags::ACCESSED) {
                        m |= fmt.accessed_mask(tr.leaf_idx, true);
                    }
                    if f.contains(PteFlags::DIRTY) {
                        m |= fmt.dirty_mask();
                    }
                    m
                };
                let raw = (tr.leaf_raw & !mask(clear)) | mask(set);
                mem.write_le(tr.leaf_addr, fmt.entry_bytes(), raw)?;
                let flags = (tr.flags - clear) | set;
                return Ok((flags, Flush::new(tr.page, tr.size)));
            }
            Self::Hashed(_) | Self::Inverted(_) => {}
        }
        let size = fmt.page_size();
        let vpn = va.vpn(size);
        let flush = Flush::new(va.align_down(size), size);
        match self {
            Self::Radix(_) => Err(MapError::NoSpace { asid }),
            Self::Hashed(h) => h
                .update_flags(mem, asid, vpn, set, clear)
                .map_err(table_err)?
                .map(|f| (f, flush))
                .ok_or_else(|| not_mapped(va)),
            Self::Inverted(InvertedTables { table, record }) => {
                let r = record
                    .get_mut(&(asid.as_u16(), vpn.as_u64()))
                    .ok_or_else(|| not_mapped(va))?;
                if resident(table, mem, asid, vpn, r.pfn)? {
                    let f = table
                        .update_flags(mem, asid, vpn, set, clear)
                        .map_err(table_err)?
                        .ok_or_else(|| not_mapped(va))?;
                    Ok((f, flush))
                } else {
                    r.flags = (r.flags - clear) | set;
                    Ok((r.flags, flush))
                }
            }
        }
    }

    /// Makes the mapping of `va` in the space tagged `asid` the one its frame's inverted
    /// table entry holds, displacing the frame's other mapping (whose
    /// accessed and dirty bits are saved in the record). Radix and hashed
    /// tables hold every mapping: always [`Reload::Resident`]. A page with
    /// no mapping is [`MapError::NotMapped`].
    pub fn reload<M: PhysMemory + ?Sized>(
        &mut self,
        fmt: &Format,
        mem: &mut M,
        asid: Asid,
        va: VirtAddr,
    ) -> Result<Reload, MapError> {
        let Self::Inverted(InvertedTables { table, record }) = self else {
            return Ok(Reload::Resident);
        };
        let size = fmt.page_size();
        let vpn = va.vpn(size);
        let r = record
            .get(&(asid.as_u16(), vpn.as_u64()))
            .copied()
            .ok_or_else(|| not_mapped(va))?;
        let mut displaced = None;
        match table.frame_owner(mem, r.pfn).map_err(table_err)? {
            Some((o, v, _)) if o == asid && v == vpn => return Ok(Reload::Resident),
            Some((o, v, _)) => {
                let old = table
                    .unmap(mem, o, v)
                    .map_err(table_err)?
                    .ok_or_else(|| not_mapped(v.base(size)))?;
                if let Some(saved) = record.get_mut(&(o.as_u16(), v.as_u64())) {
                    saved.flags = old.flags;
                }
                displaced = Some((o, Flush::new(v.base(size), size)));
            }
            None => {}
        }
        table
            .map(mem, asid, vpn, r.pfn, r.flags)
            .map_err(table_err)?;
        Ok(Reload::Loaded { displaced })
    }
}

/// What [`PageTables::check`] found wrong: the first entry that
/// disagrees, or the table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableCheckError {
    /// The table could not be read.
    #[error(transparent)]
    Unreadable(#[from] TableError),
    /// A hashed table's count of mappings is not what it holds.
    #[error("hashed page table holds {holds} mappings but counts {counts}")]
    HashedCount {
        /// Mappings found in the table.
        holds: u64,
        /// Its count.
        counts: u64,
    },
    /// An inverted entry maps a page the kernel recorded in another frame.
    #[error(
        "inverted entry {entry:#x} maps page {vpn:#x} of ASID {asid} but the kernel recorded frame {recorded:#x}"
    )]
    InvertedMoved {
        /// The entry (its frame number).
        entry: u64,
        /// The virtual page it maps.
        vpn: u64,
        /// Its ASID.
        asid: u16,
        /// The frame the kernel recorded for that page.
        recorded: u64,
    },
    /// An inverted entry maps a page the kernel never mapped.
    #[error(
        "inverted entry {entry:#x} maps page {vpn:#x} of ASID {asid}, which the kernel never mapped"
    )]
    InvertedUnknown {
        /// The entry (its frame number).
        entry: u64,
        /// The virtual page it maps.
        vpn: u64,
        /// Its ASID.
        asid: u16,
    },
}

impl PageTables {
    /// Checks the global table against itself and the kernel's record:
    /// every entry of an inverted table is a recorded mapping of that
    /// frame; a hashed table holds as many mappings as it counts. For the
    /// kernel's invariant checker; the error names the first entry found wrong.
    pub fn check<M: PhysMemory + ?Sized>(&self, mem: &M) -> Result<(), TableCheckError> {
        match self {
            Self::Radix(_) => Ok(()),
            Self::Hashed(t) => {
                let n = t.mappings(mem)?.len() as u64;
                if n == t.len() {
                    Ok(())
                } else {
                    Err(TableCheckError::HashedCount {
                        holds: n,
                        counts: t.len(),
                    })
                }
            }
            Self::Inverted(InvertedTables { table, record }) => {
                for f in 0..table.frames() {
                    let pfn = Pfn::new(f);
                    let Some((asid, vpn, _)) = table.frame_owner(mem, pfn)? else {
                        continue;
                    };
                    let (asid, vpn) = (asid.as_u16(), vpn.as_u64());
                    match record.get(&(asid, vpn)) {
                        Some(r) if r.pfn == pfn => {}
                        Some(r) => {
                            return Err(TableCheckError::InvertedMoved {
                                entry: f,
                                vpn,
                                asid,
                                recorded: r.pfn.as_u64(),
                            });
                        }
                        None => {
                            return Err(TableCheckError::InvertedUnknown {
                                entry: f,
                                vpn,
                                asid,
                            });
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Whether the inverted table's entry for `pfn` holds `(asid, vpn)`.
fn resident<M: PhysMemory + ?Sized>(
    table: &InvertedPageTable,
    mem: &M,
    asid: Asid,
    vpn: Vpn,
    pfn: Pfn,
) -> Result<bool, MapError> {
    Ok(matches!(
        table.frame_owner(mem, pfn).map_err(table_err)?,
        Some((o, v, _)) if o == asid && v == vpn
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::FirstFit;
    use crate::phys::PhysMem;

    const PAGE: PageSize = PageSize::SIZE_4K;
    const RW: PteFlags = PteFlags::READ.union(PteFlags::WRITE).union(PteFlags::USER);

    /// A machine of 256 frames whose global table (if any) sits at frame 128,
    /// radix tables coming from the frames after it.
    fn machine(spec: StructureSpec) -> (Format, PhysMem, FirstFit, PageTables) {
        let fmt = Format::x86_64();
        let mut mem: PhysMem = PhysMem::new(256 * 4096).expect("mem");
        let len = spec.region_bytes(256, PAGE).expect("size");
        let reserved = len.div_ceil(4096);
        let base = Pfn::new(128).base(PAGE);
        let tables = PageTables::new(spec, &mut mem, 256, PAGE, base, len).expect("tables");
        let alloc = FirstFit::new(PAGE, Pfn::new(128 + reserved), 128 - reserved);
        (fmt, mem, alloc, tables)
    }

    fn va(n: u64) -> VirtAddr {
        VirtAddr::new(0x40_0000 + n * 4096)
    }

    fn frame(n: u64) -> PhysAddr {
        Pfn::new(n).base(PAGE)
    }

    const INVERTED: StructureSpec = StructureSpec::Inverted {
        search: InvertedSearch::Hashed { anchors: 64 },
    };

    #[test]
    fn every_structure_maps_lists_protects_and_unmaps_alike() {
        for spec in [
            StructureSpec::Radix,
            INVERTED,
            StructureSpec::Hashed {
                buckets: 16,
                capacity: 64,
            },
        ] {
            let (fmt, mut mem, mut alloc, mut t) = machine(spec);
            let (a, b) = (Asid::new(1), Asid::new(2));
            for asid in [a, b] {
                t.new_space(&fmt, &mut mem, &mut alloc, asid)
                    .expect("space");
            }
            for (space, n, f) in [(a, 3, 10), (a, 1, 11), (b, 1, 12)] {
                t.map(&fmt, &mut mem, &mut alloc, space, va(n), frame(f), PAGE, RW)
                    .expect("map")
                    .ignore();
            }
            let again = t.map(&fmt, &mut mem, &mut alloc, a, va(3), frame(13), PAGE, RW);
            assert!(
                matches!(again, Err(MapError::AlreadyMapped { .. })),
                "{spec:?}"
            );
            let pages: Vec<(VirtAddr, PhysAddr)> = t
                .leaves(&fmt, &mem, a)
                .expect("leaves")
                .iter()
                .map(|l| (l.page, l.frame))
                .collect();
            assert_eq!(pages, [(va(1), frame(11)), (va(3), frame(10))], "{spec:?}");
            let tr = t
                .translate(&fmt, &mem, b, va(1).wrapping_add(5))
                .expect("b's page");
            assert_eq!(tr.pa, frame(12).add(5), "{spec:?}");
            t.protect(&fmt, &mut mem, a, va(3), PteFlags::READ | PteFlags::USER)
                .expect("protect")
                .ignore();
            let tr = t.translate(&fmt, &mem, a, va(3)).expect("mapped");
            assert!(!tr.flags.contains(PteFlags::WRITE), "{spec:?}");
            let (flags, _) = t
                .update_status(&fmt, &mut mem, a, va(3), PteFlags::DIRTY, PteFlags::empty())
                .expect("status");
            assert!(flags.contains(PteFlags::DIRTY), "{spec:?}");
            let u = t
                .unmap(&fmt, &mut mem, &mut alloc, a, va(3))
                .expect("unmap");
            assert_eq!(u.frame, frame(10), "{spec:?}");
            assert!(u.flags.contains(PteFlags::DIRTY), "{spec:?}");
            let gone = t.unmap(&fmt, &mut mem, &mut alloc, a, va(3));
            assert!(matches!(gone, Err(MapError::NotMapped { .. })), "{spec:?}");
            assert!(t.walk(&fmt, &mem, a, va(3)).result.is_err(), "{spec:?}");
            assert_eq!(t.check(&mem), Ok(()), "{spec:?}");
        }
    }

    #[test]
    fn radix_spaces_are_found_by_asid_and_gone_once_destroyed() {
        let (fmt, mut mem, mut alloc, mut t) = machine(StructureSpec::Radix);
        let (a, none) = (Asid::new(3), Asid::new(4));
        t.new_space(&fmt, &mut mem, &mut alloc, a).expect("a");
        assert_eq!(
            t.new_space(&fmt, &mut mem, &mut alloc, a),
            Err(MapError::SpaceExists { asid: a })
        );
        let PageTables::Radix(r) = &t else {
            panic!("radix")
        };
        assert_eq!(r.len(), 1);
        let root = r.get(a).expect("a's tree").root();
        assert_eq!(t.root(a), Ok(root));
        // An ASID with no space: every operation says so, a walk faults.
        assert_eq!(t.root(none), Err(MapError::NoSpace { asid: none }));
        let m = t.map(&fmt, &mut mem, &mut alloc, none, va(1), frame(10), PAGE, RW);
        assert_eq!(m, Err(MapError::NoSpace { asid: none }));
        assert_eq!(
            t.leaves(&fmt, &mem, none),
            Err(MapError::NoSpace { asid: none })
        );
        assert!(t.walk(&fmt, &mem, none, va(1)).result.is_err());
        // Destroying frees the tree's frames and forgets the ASID.
        t.map(&fmt, &mut mem, &mut alloc, a, va(1), frame(10), PAGE, RW)
            .expect("map")
            .ignore();
        let u = t
            .unmap(&fmt, &mut mem, &mut alloc, a, va(1))
            .expect("unmap");
        assert_eq!(u.frame, frame(10));
        let free = alloc.free_frames();
        t.destroy(&fmt, &mut mem, &mut alloc, a).expect("destroy");
        assert!(alloc.free_frames() > free);
        assert_eq!(t.root(a), Err(MapError::NoSpace { asid: a }));
        let PageTables::Radix(r) = &t else {
            panic!("radix")
        };
        assert!(r.is_empty());
        t.new_space(&fmt, &mut mem, &mut alloc, a).expect("a again");
    }

    #[test]
    fn keyed_tables_map_base_pages_only() {
        let (fmt, mut mem, mut alloc, mut t) = machine(INVERTED);
        let a = Asid::new(1);
        t.new_space(&fmt, &mut mem, &mut alloc, a).expect("a");
        let big = t.map(
            &fmt,
            &mut mem,
            &mut alloc,
            a,
            VirtAddr::new(0x20_0000),
            frame(0),
            PageSize::SIZE_2M,
            RW,
        );
        assert!(
            matches!(big, Err(MapError::NoSuchPageSize { .. })),
            "{big:?}"
        );
    }

    #[test]
    fn an_inverted_frame_holds_one_mapping_and_reload_moves_it() {
        let (fmt, mut mem, mut alloc, mut t) = machine(INVERTED);
        let (a, b) = (Asid::new(1), Asid::new(2));
        for asid in [a, b] {
            t.new_space(&fmt, &mut mem, &mut alloc, asid)
                .expect("space");
        }
        // Both map frame 20 (a shared page): a's mapping is in the table.
        for space in [a, b] {
            t.map(
                &fmt,
                &mut mem,
                &mut alloc,
                space,
                va(7),
                frame(20),
                PAGE,
                RW,
            )
            .expect("map")
            .ignore();
        }
        assert!(t.walk(&fmt, &mem, a, va(7)).result.is_ok());
        assert!(
            t.walk(&fmt, &mem, b, va(7)).result.is_err(),
            "b waits in the record"
        );
        // The kernel still sees both.
        assert_eq!(t.leaves(&fmt, &mem, b).expect("leaves").len(), 1);
        assert!(t.translate(&fmt, &mem, b, va(7)).is_ok());
        // a's entry gains A and D in the table, then b takes the entry.
        t.update_status(
            &fmt,
            &mut mem,
            a,
            va(7),
            PteFlags::ACCESSED | PteFlags::DIRTY,
            PteFlags::empty(),
        )
        .expect("status")
        .1
        .ignore();
        assert_eq!(t.reload(&fmt, &mut mem, a, va(7)), Ok(Reload::Resident));
        let r = t.reload(&fmt, &mut mem, b, va(7)).expect("reload");
        assert_eq!(
            r,
            Reload::Loaded {
                displaced: Some((Asid::new(1), Flush::new(va(7), PAGE)))
            }
        );
        assert!(t.walk(&fmt, &mem, b, va(7)).result.is_ok());
        assert!(t.walk(&fmt, &mem, a, va(7)).result.is_err());
        // a's accessed and dirty bits were saved in the record.
        let saved = t.translate(&fmt, &mem, a, va(7)).expect("recorded").flags;
        assert!(
            saved.contains(PteFlags::ACCESSED | PteFlags::DIRTY),
            "{saved:?}"
        );
        // Protecting the displaced mapping changes the record only.
        t.protect(&fmt, &mut mem, a, va(7), PteFlags::READ | PteFlags::USER)
            .expect("protect")
            .ignore();
        assert!(
            t.walk(&fmt, &mem, b, va(7))
                .result
                .is_ok_and(|tr| tr.flags.contains(PteFlags::WRITE)),
            "b's entry is untouched"
        );
        assert_eq!(t.check(&mem), Ok(()));
        // Unmapping the resident one frees the entry; a reloads without displacing.
        let u = t
            .unmap(&fmt, &mut mem, &mut alloc, b, va(7))
            .expect("unmap");
        assert_eq!(u.frame, frame(20));
        assert_eq!(
            t.reload(&fmt, &mut mem, a, va(7)),
            Ok(Reload::Loaded { displaced: None })
        );
        let tr = t.walk(&fmt, &mem, a, va(7)).result.expect("resident");
        assert!(tr.flags.contains(PteFlags::DIRTY) && !tr.flags.contains(PteFlags::WRITE));
        assert_eq!(t.check(&mem), Ok(()));
    }
}
