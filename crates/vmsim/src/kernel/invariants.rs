//! The kernel's invariant checker: every frame is exactly one of free, page
//! table, data with the right reference count, or slab.
//!
//! Used by tests after every step, and by `vmsim run --check`. It reads
//! everything and changes nothing.

use thiserror::Error;

use crate::addr::Pfn;
use crate::memory::PhysMemory;
use crate::paging::{MapError, PageTables, TableCheckError};

use super::frames::FrameUse;
use super::{Kernel, KernelConfig};

/// A kernel invariant that does not hold (a simulator bug), as
/// [`Kernel::check_invariants`] found it first.
#[derive(Debug, Error)]
pub enum InvariantError {
    /// The page tables of an address space could not be read.
    #[error("space {space}: {source}")]
    Tables {
        /// The address space's slot.
        space: usize,
        /// The walk's error.
        source: MapError,
    },
    /// The global inverted or hashed table is wrong or unreadable.
    #[error(transparent)]
    GlobalTable(#[from] TableCheckError),
    /// A rule of the frame, reference-count, page-table, slab or swap books
    /// is broken: what, and where.
    #[error("{0}")]
    Broken(String),
}

/// What [`Kernel::forge_books`] hands a test: next pid, next ASID, free
/// ASIDs, configuration, address spaces, processes.
#[cfg(test)]
pub(crate) type ForgedBooks<'a> = (
    &'a mut u32,
    &'a mut u32,
    &'a mut Vec<u16>,
    &'a mut KernelConfig,
    &'a mut Vec<Option<super::AddressSpace>>,
    &'a mut std::collections::BTreeMap<crate::addr::Pid, super::Process>,
);

impl Kernel {
    /// Checks every frame's bookkeeping against the page tables, the shared
    /// objects and the allocators. The error names the first frame found wrong.
    pub fn check_invariants<M: PhysMemory + ?Sized>(&self, mem: &M) -> Result<(), InvariantError> {
        let meta = self.frames.all();
        // Every process runs in a live address space (`Kernel::space`
        // indexes by the id a process holds, without a test).
        for (pid, p) in &self.procs {
            if !self
                .spaces
                .get(p.space.0 as usize)
                .is_some_and(Option::is_some)
            {
                return Err(InvariantError::Broken(format!(
                    "process {pid} runs in address space {}, which does not exist",
                    p.space.0
                )));
            }
        }
        // A data page of at least one frame (a restored frame table's sizes
        // come from the checkpoint; `page_order` below subtracts them).
        if self.frames.page_size() < self.frames.frame_size() {
            return Err(InvariantError::Broken(format!(
                "data pages of {} are smaller than the frames of {}",
                self.frames.page_size(),
                self.frames.frame_size()
            )));
        }
        // The buddy allocator's own books first: the checks below (and every
        // later free) read them.
        let buddy = self.frames.buddy();
        buddy
            .check_books()
            .map_err(|e| InvariantError::Broken(format!("buddy allocator: {e}")))?;
        // Every frame the buddy allocator manages is free there exactly when
        // the frame table says so, and a data page is the first frame of a
        // block of the data page's order (what freeing it will hand back).
        for (head, order, free) in buddy.blocks() {
            let h = head.as_u64() as usize;
            for f in h..h + (1 << order) {
                let Some(m) = meta.get(f) else {
                    return Err(InvariantError::Broken(format!(
                        "the buddy allocator's frame {f:#x} is past the frame table"
                    )));
                };
                if f != h && m.use_ == FrameUse::Data {
                    return Err(InvariantError::Broken(format!(
                        "frame {f:#x}: a data page inside the block at {h:#x}"
                    )));
                }
                if (m.use_ == FrameUse::Free) != free {
                    return Err(InvariantError::Broken(format!(
                        "frame {f:#x}: marked {:?} but {} in the buddy allocator",
                        m.use_,
                        if free { "free" } else { "allocated" }
                    )));
                }
            }
            if !free
                && meta.get(h).is_some_and(|m| m.use_ == FrameUse::Data)
                && order != self.frames.page_order()
            {
                return Err(InvariantError::Broken(format!(
                    "frame {h:#x}: a data page in a block of order {order}, not {}",
                    self.frames.page_order()
                )));
            }
        }
        let mut refs = vec![0u32; meta.len()];
        let mut table = vec![false; meta.len()];
        let frame_bytes = self.fmt.page_size().bytes();
        // An address space is named by its ASID in the page tables: two
        // live spaces may not share one, and under radix every tree belongs
        // to a live space (each one's is read below).
        let mut asids = std::collections::BTreeSet::new();
        for (i, space) in self.spaces.iter().enumerate() {
            if let Some(space) = space
                && !asids.insert(space.asid)
            {
                return Err(InvariantError::Broken(format!(
                    "space {i}: ASID {} belongs to another live space too",
                    space.asid.as_u16()
                )));
            }
        }
        if let PageTables::Radix(r) = &self.tables
            && r.len() != asids.len()
        {
            return Err(InvariantError::Broken(format!(
                "{} radix trees for {} live address spaces",
                r.len(),
                asids.len()
            )));
        }
        // Every mapping of a data page (space, page, frame), for the
        // reverse map (kept only while pages can be evicted).
        let mut mapped = Vec::new();
        for (i, space) in self.spaces.iter().enumerate() {
            let Some(space) = space else { continue };
            let leaves = self
                .tables
                .leaves(&self.fmt, mem, space.asid)
                .map_err(|source| InvariantError::Tables { space: i, source })?;
            if leaves.len() as u64 != space.resident {
                return Err(InvariantError::Broken(format!(
                    "space {i}: {} pages mapped but resident = {}",
                    leaves.len(),
                    space.resident
                )));
            }
            for l in &leaves {
                if space.find(l.page).is_none() {
                    return Err(InvariantError::Broken(format!(
                        "space {i}: page {} is mapped outside every VMA",
                        l.page
                    )));
                }
                if l.size != self.page {
                    return Err(InvariantError::Broken(format!(
                        "space {i}: page {} is {} but data pages are {}",
                        l.page, l.size, self.page
                    )));
                }
                let f = l.frame.as_u64() / frame_bytes;
                if self.reclaim.enabled() {
                    mapped.push((i as u32, l.page.as_u64(), f));
                }
                *refs.get_mut(f as usize).ok_or_else(|| {
                    InvariantError::Broken(format!(
                        "space {i}: page {} maps frame {f:#x}, past the last frame",
                        l.page
                    ))
                })? += 1;
            }
            for (idx, t) in self
                .tables
                .tables(&self.fmt, mem, space.asid)
                .map_err(|source| InvariantError::Tables { space: i, source })?
            {
                let first = (t.as_u64() / frame_bytes) as usize;
                // Freed as the block it was handed out as: it must be one.
                if !buddy.is_allocated_block(Pfn::new(first as u64), self.fmt.table_order(idx)) {
                    return Err(InvariantError::Broken(format!(
                        "frame {first:#x} holds a page table but is not a block of order {} \
                         the buddy allocator handed out",
                        self.fmt.table_order(idx)
                    )));
                }
                for f in table
                    .iter_mut()
                    .skip(first)
                    .take(1 << self.fmt.table_order(idx))
                {
                    if *f {
                        return Err(InvariantError::Broken(format!(
                            "frame {first:#x} holds two page tables"
                        )));
                    }
                    *f = true;
                }
            }
        }
        // The global inverted or hashed table: consistent, and in its region.
        self.tables.check(mem)?;
        if let Some((base, len)) = self.tables.region() {
            let first = (base.as_u64() / frame_bytes) as usize;
            let n = len.div_ceil(frame_bytes) as usize;
            for f in table.iter_mut().skip(first).take(n) {
                if *f {
                    return Err(InvariantError::Broken(format!(
                        "frame {first:#x} holds two page tables"
                    )));
                }
                *f = true;
            }
        }
        for (_, obj) in self.shm.iter() {
            for pfn in obj.pages.iter().flatten() {
                *refs.get_mut(pfn.as_u64() as usize).ok_or_else(|| {
                    InvariantError::Broken(format!(
                        "a shared object holds frame {pfn}, past the last"
                    ))
                })? += 1;
            }
        }
        let mut free = 0u64;
        let mut slab = 0u64;
        for (i, m) in meta.iter().enumerate() {
            let bad = |what: String| Err(InvariantError::Broken(format!("frame {i:#x}: {what}")));
            match m.use_ {
                FrameUse::Free => free += 1,
                FrameUse::Slab => slab += 1,
                FrameUse::DataTail => {}
                FrameUse::Data if m.refs == 0 => {
                    return bad("data page with no reference (leaked)".into());
                }
                FrameUse::Data if m.refs != refs[i] => {
                    return bad(format!(
                        "reference count {} but {} references exist",
                        m.refs, refs[i]
                    ));
                }
                FrameUse::Data => {}
                FrameUse::Table if !table[i] => {
                    return bad("marked page table but no table is there".into());
                }
                FrameUse::Table => {}
            }
            if m.use_ != FrameUse::Data && refs[i] > 0 {
                return bad(format!(
                    "mapped as data ({} references) but marked {:?}",
                    refs[i], m.use_
                ));
            }
            if table[i] && m.use_ != FrameUse::Table {
                return bad(format!("holds a page table but is marked {:?}", m.use_));
            }
        }
        let tables = meta.iter().filter(|m| m.use_ == FrameUse::Table).count() as u64;
        if tables != self.frames.table_frames() {
            return Err(InvariantError::Broken(format!(
                "{tables} frames marked page table but the count says {}",
                self.frames.table_frames()
            )));
        }
        if free != self.frames.free_frames() {
            return Err(InvariantError::Broken(format!(
                "{free} frames marked free but the buddy allocator has {}",
                self.frames.free_frames()
            )));
        }
        for (base, order) in self.slab.slab_blocks() {
            if !self.frames.buddy().is_allocated_block(base, order) {
                return Err(InvariantError::Broken(format!(
                    "a slab at frame {base} is not a block of order {order} the buddy allocator handed out"
                )));
            }
        }
        self.check_swap()?;
        self.reclaim
            .check_rmap(&mut mapped)
            .map_err(InvariantError::Broken)?;
        self.slab.check_geometry().map_err(InvariantError::Broken)?;
        let slab_frames: u64 = self
            .slab
            .stats()
            .iter()
            .map(|s| s.slabs << s.slab_order)
            .sum();
        if slab != slab_frames {
            return Err(InvariantError::Broken(format!(
                "{slab} frames marked slab but the slab caches hold {slab_frames}"
            )));
        }
        Ok(())
    }

    /// The books a restored kernel keeps beside its frames (checked on
    /// restore only, after [`Kernel::check_invariants`]): its configuration
    /// is the one `cfg` (the checkpoint's `CONF`) gives; every process is
    /// filed under its own pid, below the next pid to hand out, and holds a
    /// live task structure of its own (exit frees it); each live space has
    /// as many users as processes run in it (the last exit frees it: a
    /// forged count underflowed there) and an ASID the kernel handed out,
    /// and the free ASIDs are distinct, handed out before and not in use
    /// (a forged one would give two spaces one ASID); each space's VMAs are
    /// ordered, non-empty, disjoint and inside user space, its break not
    /// below the heap's start, and a VMA of a shared object starts inside
    /// the object (the fault adds its offset unchecked). Forged, the next
    /// pid, a space's users and a shared offset overflowed later, a task
    /// handle tripped the slab's debug check at exit; the others let a pid
    /// or an ASID be handed out twice.
    pub(crate) fn check_restored_books(&self, cfg: &KernelConfig) -> Result<(), String> {
        if self.cfg != *cfg {
            return Err(
                "kernel: its configuration is not the one in section CONF (a forged or corrupt state)"
                    .into(),
            );
        }
        if self.next_pid == u32::MAX {
            return Err(format!(
                "kernel: the next pid {} cannot be handed out",
                self.next_pid
            ));
        }
        let tasks = self
            .slab
            .cache(self.caches.task)
            .map_err(|e| format!("kernel: {e}"))?;
        let mut seen = std::collections::BTreeSet::new();
        for (pid, p) in &self.procs {
            if p.pid != *pid {
                return Err(format!("kernel: process {pid} is filed as pid {}", p.pid));
            }
            if let Some(t) = p.task
                && (!tasks.holds(t) || !seen.insert(t))
            {
                return Err(format!(
                    "kernel: process {pid}'s task structure {} is not a live object of its own",
                    t.addr()
                ));
            }
            if pid.as_u32() >= self.next_pid {
                return Err(format!(
                    "kernel: process {pid} is not below the next pid {}",
                    self.next_pid
                ));
            }
        }
        if self.next_asid == 0 || self.next_asid > self.cfg.asids {
            return Err(format!(
                "kernel: the next ASID {} is not in 1 to asids = {}",
                self.next_asid, self.cfg.asids
            ));
        }
        let mut in_use = std::collections::BTreeSet::new();
        let top = super::user_top(&self.fmt);
        for (i, space) in self.spaces.iter().enumerate() {
            let Some(space) = space else { continue };
            let bad = |what: String| Err(format!("kernel: address space {i}: {what}"));
            let a = u32::from(space.asid.as_u16());
            if a == 0 || a >= self.next_asid {
                return bad(format!(
                    "ASID {a} was never handed out (next {})",
                    self.next_asid
                ));
            }
            in_use.insert(a);
            let users = self
                .procs
                .values()
                .filter(|p| p.space.0 as usize == i)
                .count();
            if space.users as usize != users || users == 0 {
                return bad(format!(
                    "{} users but {users} processes run in it",
                    space.users
                ));
            }
            if space.brk < space.brk_start {
                return bad(format!(
                    "the break {} is below the heap's start {}",
                    space.brk, space.brk_start
                ));
            }
            let mut end = 0u64;
            for v in space.vmas() {
                let (s, e) = (v.start.as_u64(), v.end.as_u64());
                if s >= e || s < end || e > top {
                    return bad(format!(
                        "the VMA {s:#x}-{e:#x} is empty, overlaps another or leaves user space"
                    ));
                }
                end = e;
                if let Some((id, off)) = v.shm
                    && self.shm.get(id).is_none_or(|o| off > o.pages.len() as u64)
                {
                    return bad(format!(
                        "the VMA at {s:#x} maps from page {off} of shared object {}, which does not hold it",
                        id.as_u32()
                    ));
                }
            }
        }
        let mut free = std::collections::BTreeSet::new();
        for &a in &self.free_asids {
            let a = u32::from(a);
            if a == 0 || a >= self.next_asid || in_use.contains(&a) || !free.insert(a) {
                return Err(format!(
                    "kernel: free ASID {a} was never handed out, is in use or is listed twice"
                ));
            }
        }
        Ok(())
    }

    /// Test hook: the books [`Kernel::check_restored_books`] reads (next
    /// pid, next ASID, free ASIDs, configuration, address spaces), for
    /// forging a decoded checkpoint's.
    #[cfg(test)]
    pub(crate) fn forge_books(&mut self) -> ForgedBooks<'_> {
        (
            &mut self.next_pid,
            &mut self.next_asid,
            &mut self.free_asids,
            &mut self.cfg,
            &mut self.spaces,
            &mut self.procs,
        )
    }

    /// Test hook: the slab cache of task structures (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_task_cache(&mut self) -> &mut crate::alloc::SlabCache {
        self.slab.forge_cache(self.caches.task)
    }

    /// After every process exited: whether all frames are free and the buddy
    /// allocator is fully coalesced.
    #[must_use]
    pub fn all_frames_free(&self) -> bool {
        self.frames_in_use() == 0 && self.frames.buddy().is_fully_coalesced()
    }
}
