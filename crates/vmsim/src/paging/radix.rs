//! Radix (multi-level) page tables built in simulated physical memory.
//!
//! A [`RadixTable`] is just the physical address of its root table. Every
//! table is a real frame (or naturally aligned run of frames) from a
//! [`FrameAllocator`], holding entries in the format's real encoding.
//! Intermediate tables are created on demand and freed when they become
//! empty. Every change returns the TLB invalidation it requires as a
//! `#[must_use]` [`Flush`].
//!
//! This module builds and edits tables; reading them for a translation is
//! [`super::walk`](mod@super::walk).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
use crate::alloc::FrameAllocator;
use crate::memory::PhysMemory;
use crate::phys::MemError;

use super::format::{AddressFault, Canonical, Format};
use super::pte::{EncodeError, Entry, PteFlags};
use super::walk::{Translation, WalkFault, walk};

/// A TLB invalidation a page-table change requires.
///
/// The old translation may still be cached; dropping this without either
/// performing the invalidation (the MMU's `flush`) or calling
/// [`Flush::ignore`] leaves a stale translation usable, as it would be on
/// real hardware.
#[must_use = "the TLB may still hold the old translation: flush it, or call .ignore()"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    page: VirtAddr,
    size: PageSize,
}

impl Flush {
    /// An invalidation of the page of `size` at `page`.
    pub fn new(page: VirtAddr, size: PageSize) -> Self {
        Self { page, size }
    }

    /// The base of the page to invalidate.
    #[must_use]
    pub fn page(&self) -> VirtAddr {
        self.page
    }

    /// The size of the page to invalidate.
    #[must_use]
    pub fn size(&self) -> PageSize {
        self.size
    }

    /// Deliberately skips the invalidation (nothing can have cached it, e.g.
    /// the address space was never active).
    pub fn ignore(self) {}
}

/// A page-table change that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MapError {
    /// The virtual address is not an address of this format.
    #[error("{va}: {source}")]
    Address {
        /// The address.
        va: VirtAddr,
        /// Why it is not an address of the format.
        source: AddressFault,
    },
    /// The format has no pages of this size.
    #[error("{format} has no {size} pages")]
    NoSuchPageSize {
        /// The format's name.
        format: String,
        /// The size asked for.
        size: PageSize,
    },
    /// The virtual address is not aligned to the page size.
    #[error("{va} is not aligned to {size}")]
    Misaligned {
        /// The address.
        va: VirtAddr,
        /// The page size.
        size: PageSize,
    },
    /// Something is already mapped there (a page, or a superpage covering it,
    /// or a table where a superpage was asked for).
    #[error("{va} is already mapped (an entry at level {level} is in use)")]
    AlreadyMapped {
        /// The address.
        va: VirtAddr,
        /// The level whose entry is in use.
        level: u32,
    },
    /// Nothing is mapped there.
    #[error("{va} is not mapped (level {level} entry is not present)")]
    NotMapped {
        /// The address.
        va: VirtAddr,
        /// The level whose entry is not present.
        level: u32,
    },
    /// An existing entry on the way has reserved bits or a reserved encoding.
    #[error("{va}: the level {level} entry is malformed ({why})")]
    Malformed {
        /// The address.
        va: VirtAddr,
        /// The level.
        level: u32,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The entry cannot express the frame.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// No free frame for a new table.
    #[error("out of physical frames for a page table")]
    OutOfFrames,
    /// No address space has this ASID (under radix tables, each space's
    /// tree is found by its ASID).
    #[error("no address space has ASID {}", asid.as_u16())]
    NoSpace {
        /// The ASID asked for.
        asid: crate::addr::Asid,
    },
    /// A new address space was asked for an ASID that already has one.
    #[error("ASID {} already has an address space", asid.as_u16())]
    SpaceExists {
        /// The ASID asked for.
        asid: crate::addr::Asid,
    },
    /// The inverted or hashed table refused the change (full, or the
    /// frame is outside it).
    #[error(transparent)]
    Table(#[from] super::hashed::TableError),
    /// A table lies outside physical memory.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// The allocator's frames are not the format's page size.
    #[error("the frame allocator hands out {alloc} frames but {format} tables need {page} frames")]
    FrameSizeMismatch {
        /// The allocator's frame size.
        alloc: PageSize,
        /// The format's name.
        format: String,
        /// The format's page size.
        page: PageSize,
    },
}

/// What an unmap removed.
#[must_use = "the frame must be freed or reused, and the TLB flushed"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmapped {
    /// Base of the frame that was mapped.
    pub frame: PhysAddr,
    /// The page size.
    pub size: PageSize,
    /// The leaf's flags at the time (accessed, dirty, permissions).
    pub flags: PteFlags,
    /// The invalidation this requires.
    pub flush: Flush,
}

/// A leaf found by [`RadixTable::leaves`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafInfo {
    /// Base of the virtual page.
    pub page: VirtAddr,
    /// Base of the frame.
    pub frame: PhysAddr,
    /// The page size.
    pub size: PageSize,
    /// The leaf's flags.
    pub flags: PteFlags,
    /// Physical address of the leaf entry.
    pub entry_addr: PhysAddr,
}

/// A radix page table: the physical address of its root. The tables
/// themselves live in physical memory (any [`PhysMemory`]), in the
/// format's own entry layout, so the MMU walks exactly what was built.
///
/// ```
/// use vmsim::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
/// use vmsim::alloc::FirstFit;
/// use vmsim::paging::{Format, PteFlags, RadixTable};
///
/// let fmt = Format::sv39();
/// let mut ram = vec![0u8; 64 * 4096];
/// let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 62);
/// let table = RadixTable::new(&fmt, &mut ram, &mut frames)?;
/// let user_ro = PteFlags::READ | PteFlags::USER;
/// table
///     .map(&fmt, &mut ram, &mut frames, VirtAddr::new(0x4000_1000),
///          PhysAddr::new(0x3f000)?, PageSize::SIZE_4K, user_ro)?
///     .ignore();
/// let t = table.translate(&fmt, &ram, VirtAddr::new(0x4000_1234))?;
/// assert_eq!((t.pa, t.size), (PhysAddr::new(0x3f234)?, PageSize::SIZE_4K));
/// // Sv39 has three levels: the root and one table below it at each level.
/// assert_eq!(table.tables(&fmt, &ram)?.len(), 3);
/// assert!(table.translate(&fmt, &ram, VirtAddr::new(0x4000_2000)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadixTable {
    root: PhysAddr,
}

fn table_addr(fmt: &Format, pfn: Pfn) -> PhysAddr {
    pfn.base(fmt.page_size())
}

impl RadixTable {
    /// A new, empty table: allocates and zeroes the root.
    pub fn new<M: PhysMemory + ?Sized, A: FrameAllocator>(
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
    ) -> Result<Self, MapError> {
        check_alloc(fmt, alloc)?;
        let root = new_table(fmt, mem, alloc, 0)?;
        Ok(Self { root })
    }

    /// A table whose root is already in memory (a loaded image, a CR3/satp value).
    #[must_use]
    pub fn from_root(root: PhysAddr) -> Self {
        Self { root }
    }

    /// The physical address of the root table (what CR3 or satp holds).
    #[must_use]
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Translates `va` (no TLB, no A/D updates, no permission check).
    pub fn translate<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        va: VirtAddr,
    ) -> Result<Translation, WalkFault> {
        walk(fmt, mem, self.root, va, |_| {})
    }

    /// [`RadixTable::translate`], and when it fails on an empty entry, that
    /// entry's level index and address (`Err(Some(..))`): where mapping a
    /// page of that level's size at `va` writes its leaf (see
    /// [`RadixTable::map_at`]), while no table on the way is freed.
    ///
    /// Why: a first-touch fault looks the page up to see it is not mapped,
    /// then maps it; the walk of the lookup already reached the leaf's
    /// place, and the map need not walk from the root again.
    pub fn translate_or_place<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        va: VirtAddr,
    ) -> Result<Translation, Option<(usize, PhysAddr)>> {
        let mut last = None;
        match walk(fmt, mem, self.root, va, |s| {
            last = (s.entry == Entry::Invalid).then_some((s.idx, s.entry_addr));
        }) {
            Ok(t) => Ok(t),
            Err(f) if f.kind == super::walk::FaultKind::NotPresent => Err(last),
            Err(_) => Err(None),
        }
    }

    /// Maps the page of `size` at `va` to the frame at `frame` with `flags`,
    /// creating intermediate tables as needed.
    #[allow(clippy::too_many_arguments)]
    pub fn map<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        va: VirtAddr,
        frame: PhysAddr,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        check_alloc(fmt, alloc)?;
        fmt.check_address(va)
            .map_err(|source| MapError::Address { va, source })?;
        let leaf_idx = fmt
            .level_for_size(size)
            .ok_or_else(|| MapError::NoSuchPageSize {
                format: fmt.name().to_string(),
                size,
            })?;
        if !va.is_aligned(size) {
            return Err(MapError::Misaligned { va, size });
        }
        // Encode first so an unencodable frame changes nothing.
        let leaf = fmt.encode_leaf(leaf_idx, frame, flags)?;
        let width = fmt.entry_bytes();
        let mut table = self.root;
        for (idx, level) in fmt.levels().iter().enumerate() {
            let entry_addr = table.add(level.index(va) * u64::from(width));
            let raw = mem.read_le(entry_addr, width)?;
            let entry = fmt.decode(idx, raw);
            if idx == leaf_idx {
                if entry != Entry::Invalid {
                    return Err(MapError::AlreadyMapped {
                        va,
                        level: level.number,
                    });
                }
                mem.write_le(entry_addr, width, leaf)?;
                return Ok(Flush::new(va, size));
            }
            table = match entry {
                Entry::Table { addr, .. } => addr,
                Entry::Invalid => {
                    let next = new_table(fmt, mem, alloc, idx + 1)?;
                    mem.write_le(entry_addr, width, fmt.encode_table(idx, next)?)?;
                    next
                }
                Entry::Leaf { .. } => {
                    return Err(MapError::AlreadyMapped {
                        va,
                        level: level.number,
                    });
                }
                Entry::Reserved(why) => {
                    return Err(MapError::Malformed {
                        va,
                        level: level.number,
                        why,
                    });
                }
            };
        }
        unreachable!("leaf_idx is a level of the format")
    }

    /// [`RadixTable::map`] when the caller knows where the leaf entry for
    /// `va` is (`entry_addr`, at level `leaf_idx`, where a walk found a leaf
    /// of `va` before and its table has not been freed since: the kernel
    /// remembers them): the entry is written without a walk from the root.
    /// If `leaf_idx` is not the level of `size`, or the entry is not empty,
    /// this is `map` itself, so the outcome is the same either way.
    #[allow(clippy::too_many_arguments)]
    pub fn map_at<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        va: VirtAddr,
        frame: PhysAddr,
        size: PageSize,
        flags: PteFlags,
        leaf_idx: usize,
        entry_addr: PhysAddr,
    ) -> Result<Flush, MapError> {
        if fmt.level_for_size(size) != Some(leaf_idx)
            || check_alloc(fmt, alloc).is_err()
            || fmt.check_address(va).is_err()
            || !va.is_aligned(size)
        {
            return self.map(fmt, mem, alloc, va, frame, size, flags);
        }
        // Encoded first: an unencodable frame fails here as `map`, which
        // encodes before it reads an entry, fails, and nothing is written.
        let leaf = fmt.encode_leaf_inline(leaf_idx, frame, flags)?;
        // The entry is read, and written when it is empty (its valid bit
        // clear: what `decode` calls `Invalid`), in one look-up of memory.
        // Not empty, or not readable: `map`, as before.
        let valid = fmt.valid_mask();
        debug_assert!(
            !mem.read_le(entry_addr, fmt.entry_bytes()).is_ok_and(
                |raw| (raw & valid == 0) != (fmt.decode(leaf_idx, raw) == Entry::Invalid)
            ),
            "the valid bit's test is not decode's"
        );
        match mem.write_le_if(entry_addr, fmt.entry_bytes(), valid, 0, leaf) {
            Ok(old) if old & valid == 0 => Ok(Flush::new(va, size)),
            _ => self.map(fmt, mem, alloc, va, frame, size, flags),
        }
    }

    /// Finds the leaf mapping `va`: its level index and entry address.
    fn find_leaf<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
        va: VirtAddr,
        path: &mut [PhysAddr; 8],
    ) -> Result<(usize, PhysAddr, Entry), MapError> {
        fmt.check_address(va)
            .map_err(|source| MapError::Address { va, source })?;
        let width = fmt.entry_bytes();
        let mut table = self.root;
        for (idx, level) in fmt.levels().iter().enumerate() {
            path[idx] = table;
            let entry_addr = table.add(level.index(va) * u64::from(width));
            let entry = fmt.decode(idx, mem.read_le(entry_addr, width)?);
            match entry {
                Entry::Table { addr, .. } => table = addr,
                Entry::Leaf { .. } => return Ok((idx, entry_addr, entry)),
                Entry::Invalid => {
                    return Err(MapError::NotMapped {
                        va,
                        level: level.number,
                    });
                }
                Entry::Reserved(why) => {
                    return Err(MapError::Malformed {
                        va,
                        level: level.number,
                        why,
                    });
                }
            }
        }
        unreachable!("the last level never decodes to a table")
    }

    /// Removes the mapping of the page containing `va` (of whatever size),
    /// freeing intermediate tables that become empty.
    pub fn unmap<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        va: VirtAddr,
    ) -> Result<Unmapped, MapError> {
        let mut path = [PhysAddr::default(); 8];
        let (leaf_idx, entry_addr, entry) = self.find_leaf(fmt, mem, va, &mut path)?;
        let Entry::Leaf { addr, flags } = entry else {
            unreachable!("find_leaf returns leaves")
        };
        let width = fmt.entry_bytes();
        let size = fmt.levels()[leaf_idx].leaf.unwrap_or(fmt.page_size());
        mem.write_le(entry_addr, width, 0)?;
        // Free tables that became empty, bottom up; never the root.
        for idx in (1..=leaf_idx).rev() {
            let table = path[idx];
            let cleared = fmt.levels()[idx].index(va) * u64::from(width);
            if !table_is_empty(fmt, mem, idx, table, cleared)? {
                break;
            }
            let parent = path[idx - 1];
            let parent_entry = parent.add(fmt.levels()[idx - 1].index(va) * u64::from(width));
            mem.write_le(parent_entry, width, 0)?;
            alloc.free_order(table.pfn(fmt.page_size()), fmt.table_order(idx));
        }
        Ok(Unmapped {
            frame: addr,
            size,
            flags,
            flush: Flush::new(va.align_down(size), size),
        })
    }

    /// [`RadixTable::unmap`] when the caller knows where the leaf entry
    /// mapping `va` is (`entry_addr`, at level `leaf_idx`, as a walk found
    /// it; the reclaimer remembers them): no walk from the root. The entry
    /// is cleared as `unmap` clears it; if it is not a leaf any more, or is
    /// the last entry of its table (which `unmap` then frees, with any
    /// table above that empties), this is `unmap` itself, so the outcome is
    /// the same either way.
    pub fn unmap_at<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        va: VirtAddr,
        leaf_idx: usize,
        entry_addr: PhysAddr,
    ) -> Result<Unmapped, MapError> {
        let width = fmt.entry_bytes();
        let Some(level) = fmt.levels().get(leaf_idx) else {
            return self.unmap(fmt, mem, alloc, va);
        };
        let cleared = level.index(va) * u64::from(width);
        let Some(table) = entry_addr.as_u64().checked_sub(cleared) else {
            return self.unmap(fmt, mem, alloc, va);
        };
        let table = PhysAddr::new_unchecked(table);
        // The table's bytes in place when memory lends them: one look at
        // where they are stored, for the entry's read and the test below
        // (below the root only, where the test is made); else, or for a
        // table not stored, the entry by address and the test by range.
        let in_place = if leaf_idx > 0 {
            mem.page_in_place(table, fmt.table_bytes(leaf_idx))
        } else {
            None
        };
        let raw = match in_place.and_then(|t| entry_in(t, cleared, width)) {
            Some(raw) => raw,
            None => match mem.read_le(entry_addr, width) {
                Ok(raw) => raw,
                Err(_) => return self.unmap(fmt, mem, alloc, va),
            },
        };
        let Entry::Leaf { addr, flags } = fmt.decode(leaf_idx, raw) else {
            return self.unmap(fmt, mem, alloc, va);
        };
        if leaf_idx > 0 {
            // The last entry of its table: unmap frees tables.
            let bytes = fmt.table_bytes(leaf_idx);
            let after = cleared + u64::from(width);
            let others_zero = match in_place {
                Some(t) => match (t.get(..cleared as usize), t.get(after as usize..)) {
                    (Some(before), Some(rest)) => {
                        crate::memory::all_zero(before) && crate::memory::all_zero(rest)
                    }
                    _ => return self.unmap(fmt, mem, alloc, va),
                },
                None => {
                    mem.check(table, bytes)?;
                    mem.is_zero(table, cleared)? && mem.is_zero(table.add(after), bytes - after)?
                }
            };
            if others_zero {
                return self.unmap(fmt, mem, alloc, va);
            }
        }
        let size = level.leaf.unwrap_or(fmt.page_size());
        mem.write_le(entry_addr, width, 0)?;
        Ok(Unmapped {
            frame: addr,
            size,
            flags,
            flush: Flush::new(va.align_down(size), size),
        })
    }

    /// [`RadixTable::unmap`] of `leaf`, one of what [`RadixTable::leaves`]
    /// listed, unmapped in the listing's order with nothing mapped
    /// meanwhile (a whole space's teardown at exit): no walk from the root,
    /// the entry is where the listing found it.
    ///
    /// Why: an exiting process with 64Ki pages walked the tables from the
    /// root once per page (about 400 instructions each) to reach entries
    /// the listing had just read. The rest of the entry's table is tested
    /// after the entry first: in the listing's (ascending) order the next
    /// leaf is usually the next entry, and the entries before it are the
    /// ones already cleared. The last entry of its table (which `unmap`
    /// frees, with any table above that empties), an entry that is not
    /// the leaf listed, or a table not in memory, is `unmap` itself: the
    /// outcome is the same either way.
    ///
    /// `next`: the leaf listed after `leaf`, if any. When it is a leaf of
    /// the same size in the same table, that table keeps a present entry
    /// (the listing's leaves are cleared in order, and only emptied tables
    /// are freed), so it is not left empty and the tests of the rest of it
    /// are skipped when memory holds the table whole: they would find that
    /// entry.
    pub fn unmap_listed<M: PhysMemory + ?Sized, A: FrameAllocator>(
        &self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
        leaf: &LeafInfo,
        next: Option<&LeafInfo>,
    ) -> Result<Unmapped, MapError> {
        let va = leaf.page;
        let width = fmt.entry_bytes();
        let Some(leaf_idx) = fmt.level_for_size(leaf.size) else {
            return self.unmap(fmt, mem, alloc, va);
        };
        let level = fmt.levels()[leaf_idx];
        let cleared = level.index(va) * u64::from(width);
        let Some(table) = leaf.entry_addr.as_u64().checked_sub(cleared) else {
            return self.unmap(fmt, mem, alloc, va);
        };
        let table = PhysAddr::new_unchecked(table);
        let (addr, flags) = match mem.read_le(leaf.entry_addr, width) {
            Ok(raw) => match fmt.decode(leaf_idx, raw) {
                Entry::Leaf { addr, flags } if addr == leaf.frame => (addr, flags),
                _ => return self.unmap(fmt, mem, alloc, va),
            },
            Err(_) => return self.unmap(fmt, mem, alloc, va),
        };
        if leaf_idx > 0 {
            let bytes = fmt.table_bytes(leaf_idx);
            // (Only for a table that memory holds whole: for any other the
            // tests below are made as before.)
            let kept = next.is_some_and(|n| {
                n.size == leaf.size
                    && n.entry_addr != leaf.entry_addr
                    && n.entry_addr.as_u64().wrapping_sub(table.as_u64()) < bytes
            }) && mem.check(table, bytes).is_ok();
            debug_assert!(
                !kept
                    || next.is_some_and(|n| mem.read_le(n.entry_addr, width).is_ok_and(|r| r != 0)),
                "the next leaf listed is not mapped"
            );
            let after = cleared + u64::from(width);
            // (A range not in memory errs: `unmap` reports it.)
            let last = after > bytes
                || (!kept
                    && mem.is_zero(table.add(after), bytes - after).unwrap_or(true)
                    && mem.is_zero(table, cleared).unwrap_or(true));
            if last {
                return self.unmap(fmt, mem, alloc, va);
            }
        }
        let size = level.leaf.unwrap_or(fmt.page_size());
        mem.write_le(leaf.entry_addr, width, 0)?;
        Ok(Unmapped {
            frame: addr,
            size,
            flags,
            flush: Flush::new(va.align_down(size), size),
        })
    }

    /// Replaces the permissions of the page containing `va` (frame, accessed,
    /// dirty and global bits are kept).
    pub fn protect<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &mut M,
        va: VirtAddr,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        let mut path = [PhysAddr::default(); 8];
        let (leaf_idx, entry_addr, _) = self.find_leaf(fmt, mem, va, &mut path)?;
        let width = fmt.entry_bytes();
        let raw = mem.read_le(entry_addr, width)?;
        mem.write_le(entry_addr, width, fmt.reprotect(leaf_idx, raw, flags)?)?;
        let size = fmt.levels()[leaf_idx].leaf.unwrap_or(fmt.page_size());
        Ok(Flush::new(va.align_down(size), size))
    }

    /// Every leaf of the table, in increasing address order of the index
    /// bits (sign-extended addresses of the upper half come after the lower).
    pub fn leaves<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
    ) -> Result<Vec<LeafInfo>, MapError> {
        let mut out = Vec::new();
        self.visit::<M, true>(fmt, mem, 0, self.root, 0, &mut |_, _| {}, &mut out)?;
        Ok(out)
    }

    /// Counts the tables that exist at each level, root first.
    pub fn tables_per_level<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
    ) -> Result<Vec<u64>, MapError> {
        let mut counts = vec![0u64; fmt.levels().len()];
        let mut sink = Vec::new();
        self.visit::<M, false>(
            fmt,
            mem,
            0,
            self.root,
            0,
            &mut |idx, _| counts[idx] += 1,
            &mut sink,
        )?;
        Ok(counts)
    }

    /// Every table: its level index (root = 0) and physical address.
    pub fn tables<M: PhysMemory + ?Sized>(
        &self,
        fmt: &Format,
        mem: &M,
    ) -> Result<Vec<(usize, PhysAddr)>, MapError> {
        let mut tables = Vec::new();
        let mut sink = Vec::new();
        self.visit::<M, false>(
            fmt,
            mem,
            0,
            self.root,
            0,
            &mut |idx, t| tables.push((idx, t)),
            &mut sink,
        )?;
        Ok(tables)
    }

    /// Frees every table (not the frames the leaves map): the end of an
    /// address space. The caller frees data frames first (see [`Self::leaves`]).
    pub fn destroy<M: PhysMemory + ?Sized, A: FrameAllocator>(
        self,
        fmt: &Format,
        mem: &mut M,
        alloc: &mut A,
    ) -> Result<(), MapError> {
        let mut tables = Vec::new();
        let mut sink = Vec::new();
        self.visit::<M, false>(
            fmt,
            mem,
            0,
            self.root,
            0,
            &mut |idx, t| tables.push((idx, t)),
            &mut sink,
        )?;
        for (idx, t) in tables {
            mem.zero(t, fmt.table_bytes(idx))?;
            alloc.free_order(t.pfn(fmt.page_size()), fmt.table_order(idx));
        }
        Ok(())
    }

    /// Every table under `table` (level `idx`, its entries' index bits
    /// above it `prefix`) to `on_table`, parents first, and with `LEAVES`
    /// every leaf to `leaves`, in index order.
    ///
    /// Why a last-level table is not read without `LEAVES`: none of its
    /// entries can point at a table (no format decodes a table pointer at
    /// the last level), so listing, counting or freeing the tables needs
    /// only to know that its entries' reads would succeed. A process's
    /// exit listed its tables (for the report's page-table frames) by
    /// reading every entry of every table: 8.6M instructions of the zipf
    /// row's 1,708M, for 65,536 last-level entries. When the reads would
    /// not succeed (a table that memory does not hold whole), the entries
    /// are read as before, and fail at the same entry with the same error.
    #[allow(clippy::too_many_arguments)]
    fn visit<M: PhysMemory + ?Sized, const LEAVES: bool>(
        &self,
        fmt: &Format,
        mem: &M,
        idx: usize,
        table: PhysAddr,
        prefix: u64,
        on_table: &mut impl FnMut(usize, PhysAddr),
        leaves: &mut Vec<LeafInfo>,
    ) -> Result<(), MapError> {
        on_table(idx, table);
        let level = fmt.levels()[idx];
        let width = fmt.entry_bytes();
        if !LEAVES
            && idx + 1 == fmt.levels().len()
            && 1u64
                .checked_shl(level.bits)
                .and_then(|n| n.checked_mul(u64::from(width)))
                .is_some_and(|bytes| mem.check(table, bytes).is_ok())
        {
            return Ok(());
        }
        for i in 0..1u64 << level.bits {
            let entry_addr = table.add(i * u64::from(width));
            let raw = mem.read_le(entry_addr, width)?;
            if raw == 0 {
                continue;
            }
            let va_bits = prefix | i << level.shift;
            match fmt.decode(idx, raw) {
                Entry::Table { addr, .. } => {
                    self.visit::<M, LEAVES>(fmt, mem, idx + 1, addr, va_bits, on_table, leaves)?
                }
                Entry::Leaf { addr, flags } => {
                    if LEAVES {
                        leaves.push(LeafInfo {
                            page: VirtAddr::new(sign_extend(fmt, va_bits)),
                            frame: addr,
                            size: level.leaf.unwrap_or(fmt.page_size()),
                            flags,
                            entry_addr,
                        });
                    }
                }
                Entry::Invalid | Entry::Reserved(_) => {}
            }
        }
        Ok(())
    }
}

fn sign_extend(fmt: &Format, va: u64) -> u64 {
    let bits = fmt.va_bits();
    if fmt.canonical() == Canonical::SignExtend && bits < 64 && va >> (bits - 1) & 1 == 1 {
        va | !((1u64 << bits) - 1)
    } else {
        va
    }
}

fn check_alloc<A: FrameAllocator>(fmt: &Format, alloc: &A) -> Result<(), MapError> {
    if alloc.frame_size() == fmt.page_size() {
        Ok(())
    } else {
        Err(MapError::FrameSizeMismatch {
            alloc: alloc.frame_size(),
            format: fmt.name().to_string(),
            page: fmt.page_size(),
        })
    }
}

fn new_table<M: PhysMemory + ?Sized, A: FrameAllocator>(
    fmt: &Format,
    mem: &mut M,
    alloc: &mut A,
    idx: usize,
) -> Result<PhysAddr, MapError> {
    let order = fmt.table_order(idx);
    let pfn = alloc.alloc_order(order).ok_or(MapError::OutOfFrames)?;
    let addr = table_addr(fmt, pfn);
    if let Err(e) = mem.zero(addr, fmt.table_bytes(idx)) {
        alloc.free_order(pfn, order);
        return Err(e.into());
    }
    Ok(addr)
}

/// The entry of `width` bytes at byte offset `at` of a table's bytes
/// lent in place, as [`PhysMemory::read_le`] reads it (little-endian, wider
/// than 8 read as 8); `None` past the table's end.
#[inline(always)]
fn entry_in(table: &[u8], at: u64, width: u32) -> Option<u64> {
    let w = (width as usize).min(8);
    let bytes = table.get(usize::try_from(at).ok()?..)?.get(..w)?;
    // Fixed widths, one load each (as `PhysMem::read_le`).
    Some(match w {
        8 => u64::from_le_bytes(bytes.try_into().ok()?),
        4 => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
        _ => {
            let mut v = [0u8; 8];
            v[..w].copy_from_slice(bytes);
            u64::from_le_bytes(v)
        }
    })
}

/// Whether the table at `table` (level index `idx`) holds no entry, given
/// that the entry at byte offset `cleared` was just cleared. The entries
/// from the cleared one to the end are looked at first: a space is torn down
/// in address order, so its neighbour usually still maps something and the
/// answer comes from one entry, not from a copy of the whole table per page
/// unmapped. The range is checked whole first, so a table reaching past
/// memory is the same error whatever its contents.
fn table_is_empty<M: PhysMemory + ?Sized>(
    fmt: &Format,
    mem: &M,
    idx: usize,
    table: PhysAddr,
    cleared: u64,
) -> Result<bool, MapError> {
    let bytes = fmt.table_bytes(idx);
    mem.check(table, bytes)?;
    let at = cleared.min(bytes);
    Ok(mem.is_zero(table.add(at), bytes - at)? && mem.is_zero(table, at)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::FirstFit;

    /// The tables (and the outcome) of a listing that reads every entry of
    /// every table, leaves kept: what `tables` did before it skipped the
    /// last level's entries.
    fn tables_read_whole<M: PhysMemory + ?Sized>(
        t: &RadixTable,
        fmt: &Format,
        mem: &M,
    ) -> Result<Vec<(usize, PhysAddr)>, MapError> {
        let mut tables = Vec::new();
        let mut leaves = Vec::new();
        t.visit::<M, true>(
            fmt,
            mem,
            0,
            t.root,
            0,
            &mut |idx, a| tables.push((idx, a)),
            &mut leaves,
        )?;
        Ok(tables)
    }

    /// `tables`, `tables_per_level` and `destroy`'s listing do not read a
    /// last-level table's entries: the same tables, in the same order, as
    /// the listing that reads them all, for formats of 2 to 5 levels with
    /// pages of every size they map; and where memory ends inside a
    /// last-level table, the same error.
    #[test]
    fn tables_listed_without_the_last_level_are_those_of_a_whole_read() {
        let formats = [
            Format::x86_32(),
            Format::x86_64(),
            Format::x86_64_5level(),
            Format::sv32(),
            Format::sv39(),
            Format::sv48(),
        ];
        for fmt in formats {
            let mut ram = vec![0u8; 512 * 4096];
            let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 255);
            let table = RadixTable::new(&fmt, &mut ram, &mut frames).expect("root");
            let flags = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
            let mut pages = vec![0x1000u64, 0x2000, 0x40_1000, 0x7f_f000, 0x3000_0000];
            if fmt.va_bits() > 32 {
                pages.extend([0x20_0000_0000u64, 0x20_0020_0000]);
            }
            for (n, va) in pages.iter().enumerate() {
                table
                    .map(
                        &fmt,
                        &mut ram,
                        &mut frames,
                        VirtAddr::new(*va),
                        PhysAddr::new_unchecked(0x10_0000 + n as u64 * 0x1000),
                        PageSize::SIZE_4K,
                        flags,
                    )
                    .expect("map")
                    .ignore();
            }
            // A large page where the format has one (at the second level
            // from the bottom), so that a leaf sits above the last level.
            if let Some(size) = fmt.levels()[fmt.levels().len() - 2].leaf {
                let va = size.bytes() * 8;
                table
                    .map(
                        &fmt,
                        &mut ram,
                        &mut frames,
                        VirtAddr::new(va),
                        PhysAddr::new_unchecked(size.bytes() * 2),
                        size,
                        flags,
                    )
                    .expect("map a large page")
                    .ignore();
            }
            let whole = tables_read_whole(&table, &fmt, &ram).expect("in memory");
            assert!(whole.len() >= 3, "{fmt:?}: {whole:?}");
            assert_eq!(table.tables(&fmt, &ram), Ok(whole.clone()), "{fmt:?}");
            let mut per_level = vec![0u64; fmt.levels().len()];
            for (idx, _) in &whole {
                per_level[*idx] += 1;
            }
            assert_eq!(table.tables_per_level(&fmt, &ram), Ok(per_level));
            // Memory that ends halfway through the last-level table that
            // lies highest: the whole read fails at its first entry past
            // the end, and so does the listing that skips the last level.
            let last = fmt.levels().len() - 1;
            let (_, top) = *whole
                .iter()
                .filter(|(idx, _)| *idx == last)
                .max_by_key(|(_, a)| a.as_u64())
                .expect("a last-level table");
            let short = &ram[..(top.as_u64() + fmt.table_bytes(last) / 2) as usize];
            let err = tables_read_whole(&table, &fmt, short);
            assert!(err.is_err(), "{fmt:?}");
            assert_eq!(table.tables(&fmt, short), err, "{fmt:?}");
            assert_eq!(
                table.tables_per_level(&fmt, short).map(|_| ()),
                err.map(|_| ()),
                "{fmt:?}"
            );
        }
    }
}
