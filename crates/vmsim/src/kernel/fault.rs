//! The page-fault handler: demand-zero allocation, copy-on-write breaks,
//! stack growth, shared pages, Svade accessed/dirty updates, and the
//! segmentation fault that kills a process.

use serde::Serialize;

use crate::addr::{Pid, VirtAddr};
use crate::memory::PhysMemory;
use crate::mmu::AccessKind;
use crate::paging::{PteFlags, Reload, Translation};

use super::process::{SegvReason, SpaceId};
use super::reclaim::KnownLeaf;
use super::vma::{Prot, Vma, VmaKind};
use super::{FoundPlace, Kernel, KernelError, KernelEvent, TlbControl};

/// Why the MMU could not translate, as the kernel needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCause {
    /// No present entry maps the page.
    NotPresent,
    /// A present entry forbids the access.
    Protection,
    /// RISC-V Svade: the accessed bit is clear, or the dirty bit on a store.
    AccessedDirty,
    /// The address is not an address of the format (non-canonical, too wide).
    BadAddress,
    /// A page-table entry has reserved bits set or is a misaligned superpage.
    BadEntry,
}

impl From<&crate::mmu::MmuFault> for FaultCause {
    /// What the kernel makes of the MMU's fault.
    fn from(f: &crate::mmu::MmuFault) -> Self {
        use crate::mmu::MmuFaultKind;
        use crate::paging::FaultKind;
        match f.kind {
            MmuFaultKind::Walk(FaultKind::NotPresent) => Self::NotPresent,
            MmuFaultKind::Walk(FaultKind::NonCanonical | FaultKind::TooWide) => Self::BadAddress,
            MmuFaultKind::Walk(_) => Self::BadEntry,
            MmuFaultKind::Protection(_) => Self::Protection,
            MmuFaultKind::AccessedDirty => Self::AccessedDirty,
        }
    }
}

/// How the kernel resolved a fault. All but `Killed` mean: retry the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultResolution {
    /// A fresh zeroed page was mapped (allocation on first touch).
    DemandZero,
    /// A shared copy-on-write page was copied for the writer.
    CowCopy,
    /// The last sharer of a copy-on-write page got write permission back, without a copy.
    CowReuse,
    /// A page a shared object already had was mapped.
    SharedPage,
    /// The stack grew down to the address, and a zeroed page was mapped.
    StackGrowth,
    /// The entry was already right; a stale TLB entry was invalidated.
    Spurious,
    /// The kernel set the accessed (and dirty) bit (Svade).
    AccessedDirtySet,
    /// A major fault: the page was read back from the swap file.
    SwapIn,
    /// The page was in swap, but another sharer had already read it back (swap cache).
    SwapCache,
    /// Inverted page table: the frame's entry held another mapping of the
    /// shared frame; it now holds this one.
    AliasReload,
    /// A store to a page write-protected for dirty tracking (a
    /// checkpoint's soft-dirty tracker): noted dirty, write permission back.
    WriteProtect,
    /// The process was killed (SIGSEGV).
    Killed(SegvReason),
}

impl FaultResolution {
    /// Whether the access should be retried (the process lives on).
    #[must_use]
    pub fn retry(self) -> bool {
        !matches!(self, Self::Killed(_))
    }
}

fn allowed(prot: Prot, access: AccessKind) -> bool {
    match access {
        AccessKind::Read => prot.read,
        AccessKind::Write => prot.write,
        AccessKind::Execute => prot.exec,
    }
}

impl Kernel {
    /// Handles a fault of `pid` at `va`. Returns how it was resolved; a
    /// process that cannot be helped is killed, and that is a resolution,
    /// not an error. Errors are for calls that make no sense (no such
    /// process, a blocked vfork parent).
    pub fn handle_fault<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        va: VirtAddr,
        access: AccessKind,
        cause: FaultCause,
    ) -> Result<FaultResolution, KernelError> {
        let sid = self.runnable(pid)?.space;
        self.handle_fault_in(mem, tlb, pid, sid, va, access, cause)
    }

    /// [`Kernel::handle_fault`], and the resident pages of `pid`'s space
    /// afterwards: what [`Kernel::space_of`] then says (`None` if `pid`
    /// has no space any more).
    ///
    /// Why: the run's handler keeps each process's resident peak after
    /// every fault; a process that was not killed still has the space the
    /// fault was handled in, so its count is read there, not found again
    /// through the process table (one lookup fewer a fault).
    #[allow(clippy::too_many_arguments)]
    pub fn handle_fault_resident<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        va: VirtAddr,
        access: AccessKind,
        cause: FaultCause,
    ) -> Result<(FaultResolution, Option<u64>), KernelError> {
        let sid = self.runnable(pid)?.space;
        let r = self.handle_fault_in(mem, tlb, pid, sid, va, access, cause)?;
        let resident = match r {
            // A kill may end the process or its space: ask the table.
            FaultResolution::Killed(_) => self.space_of(pid).ok().map(|s| s.resident),
            _ => self
                .spaces
                .get(sid.0 as usize)
                .and_then(Option::as_ref)
                .map(|s| s.resident),
        };
        debug_assert_eq!(
            resident,
            self.space_of(pid).ok().map(|s| s.resident),
            "the fault's space is not the process's any more"
        );
        Ok((r, resident))
    }

    /// [`Kernel::handle_fault`] of runnable `pid`, whose space is `sid`.
    #[allow(clippy::too_many_arguments)]
    fn handle_fault_in<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        sid: SpaceId,
        va: VirtAddr,
        access: AccessKind,
        cause: FaultCause,
    ) -> Result<FaultResolution, KernelError> {
        match cause {
            FaultCause::BadAddress => {
                return self.kill(mem, tlb, pid, va, access, SegvReason::BadAddress);
            }
            FaultCause::BadEntry => {
                return self.kill(mem, tlb, pid, va, access, SegvReason::BadEntry);
            }
            _ => {}
        }
        let mut grew = false;
        let vma = match self.space_mut(sid).find_recent(va) {
            Some(v) => v,
            None => match self.grow_stack(sid, va) {
                Ok(v) => {
                    grew = true;
                    v
                }
                Err(reason) => return self.kill(mem, tlb, pid, va, access, reason),
            },
        };
        if !allowed(vma.prot, access) {
            return self.kill(mem, tlb, pid, va, access, SegvReason::Permission);
        }
        let page = VirtAddr::new(self.page_align_down(va.as_u64()));
        let asid = self.space(sid).asid;
        // A not-present fault on a page whose remembered leaf entry is
        // still empty (a page the reclaimer evicted) needs no walk.
        let unmapped = if cause == FaultCause::NotPresent {
            self.known_unmapped(mem, sid, page)
        } else {
            None
        };
        // Else the lookup walks; where it found the page's entry empty is
        // where the map may write (no second walk from the root).
        // A not-present fault in a region whose table a walk reached before
        // (still that table: `table_places`) finds its empty entry there.
        let mut found = None;
        let present = if unmapped.is_some() {
            None
        } else if cause == FaultCause::NotPresent
            && let Some(place) = self.kept_empty_place(mem, sid, page)
        {
            found = Some(place);
            None
        } else {
            match self.tables.translate_or_place(&self.fmt, mem, asid, page) {
                Ok(t) => Some(t),
                Err(place) => {
                    found = self.found_place(place);
                    self.keep_table_place(sid, page, found);
                    None
                }
            }
        };
        if cause == FaultCause::NotPresent && present.is_some() {
            // Inverted tables: a mapping of a shared frame that is not the
            // one the frame's entry holds. Move the entry over.
            if let Reload::Loaded { displaced } = self.tables.reload(&self.fmt, mem, asid, page)? {
                if let Some((asid, flush)) = displaced {
                    tlb.invalidate_page(asid, flush);
                }
                self.stats.alias_reloads += 1;
                return Ok(FaultResolution::AliasReload);
            }
        }
        let r = match (cause, present) {
            (FaultCause::AccessedDirty, Some(_)) => {
                self.set_accessed_dirty(mem, tlb, sid, page, access)?;
                self.stats.accessed_dirty += 1;
                FaultResolution::AccessedDirtySet
            }
            (_, Some(t)) if access == AccessKind::Write && !t.flags.contains(PteFlags::WRITE) => {
                // A page the soft-dirty tracker protected: now dirty. It
                // takes a copy only if it is also shared copy-on-write.
                if self.space_mut(sid).write_protected.remove(&page.as_u64())
                    && let Some(r) = self.write_protect_fault(mem, tlb, sid, page, &vma, &t)?
                {
                    return Ok(r);
                }
                match self.break_cow(mem, tlb, sid, page, &vma, &t)? {
                    Some(r) => r,
                    None => return self.kill(mem, tlb, pid, va, access, SegvReason::OutOfMemory),
                }
            }
            (_, Some(_)) => {
                // Present and allowed: the MMU used a stale translation.
                let asid = self.space(sid).asid;
                tlb.invalidate_page(asid, crate::paging::Flush::new(page, self.page));
                self.stats.spurious += 1;
                FaultResolution::Spurious
            }
            (_, None) => match self.fault_in(mem, tlb, sid, page, &vma, access, unmapped, found)? {
                Some(r) => r,
                None => return self.kill(mem, tlb, pid, va, access, SegvReason::OutOfMemory),
            },
        };
        if grew {
            self.stats.stack_growth += 1;
            return Ok(FaultResolution::StackGrowth);
        }
        Ok(r)
    }

    /// Grows the stack VMA above `va` down to it, if the limit and the
    /// guard gap allow.
    fn grow_stack(&mut self, sid: SpaceId, va: VirtAddr) -> Result<Vma, SegvReason> {
        let space = self.space(sid);
        let Some(stack) = space
            .next_above(va)
            .copied()
            .filter(|v| v.kind == VmaKind::Stack)
        else {
            return Err(SegvReason::NoVma);
        };
        let start = self.page_align_down(va.as_u64());
        if stack.end.as_u64() - start > self.cfg.stack_limit {
            return Err(SegvReason::StackGuard);
        }
        let below = space.prev_end(va);
        if below > 0 && start < below.saturating_add(self.cfg.stack_guard_gap) {
            return Err(SegvReason::StackGuard);
        }
        let grown = Vma {
            start: VirtAddr::new(start),
            ..stack
        };
        let page = self.page.bytes();
        let space = self.space_mut(sid);
        let _ = space.carve(stack.start, stack.end, page);
        space.insert(grown);
        Ok(grown)
    }

    /// Brings in the page at `page` for a not-present fault. `None` when no
    /// memory is left. `earlier`: its leaf entry, if the fault found it
    /// through the leaf cache (what mapping the page looks up again);
    /// `found`: where the fault's walk found its entry empty.
    #[allow(clippy::too_many_arguments)]
    fn fault_in<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        page: VirtAddr,
        vma: &Vma,
        access: AccessKind,
        earlier: Option<KnownLeaf>,
        found: Option<FoundPlace>,
    ) -> Result<Option<FaultResolution>, KernelError> {
        // Linux marks a page young on the fault that maps it, and dirty on a
        // write fault (mk_pte + pte_mkyoung/pte_mkdirty), so RISC-V Svade does
        // not fault again at once.
        let mut status = PteFlags::ACCESSED;
        if access == AccessKind::Write {
            status |= PteFlags::DIRTY;
        }
        if let Some((id, off)) = vma.shm {
            let idx = (off + (page.as_u64() - vma.start.as_u64()) / self.page.bytes()) as usize;
            let existing = self
                .shm
                .get(id)
                .and_then(|o| o.pages.get(idx).copied().flatten());
            let (pfn, r) = match existing {
                Some(pfn) => (pfn, FaultResolution::SharedPage),
                None => {
                    let Some(pfn) = self.alloc_data_page(mem, tlb)? else {
                        return Ok(None);
                    };
                    self.frames.get(pfn); // the object's own reference
                    if let Some(slot) = self.shm.get_mut(id).and_then(|o| o.pages.get_mut(idx)) {
                        *slot = Some(pfn);
                    }
                    (pfn, FaultResolution::DemandZero)
                }
            };
            match self.map_data(mem, sid, page, pfn, vma.prot.pte_flags() | status) {
                Ok(()) => {}
                Err(KernelError::OutOfMemory) => return Ok(None),
                Err(e) => return Err(e),
            }
            match r {
                FaultResolution::SharedPage => self.stats.shared_minor += 1,
                _ => self.stats.demand_zero += 1,
            }
            return Ok(Some(r));
        }
        // Taken out at once (one probe of the map, not a look here and a
        // removal in `swap_in`); `fault_in_swapped` puts it back if the page
        // cannot be brought in.
        if let Some(slot) = self.space_mut(sid).swapped.remove(&page.as_u64()) {
            return self.fault_in_swapped(mem, tlb, sid, page, vma, access, slot, earlier, found);
        }
        let Some(pfn) = self.alloc_data_page(mem, tlb)? else {
            return Ok(None);
        };
        let flags = vma.prot.pte_flags() | status;
        match self.map_data_known(mem, sid, page, pfn, flags, earlier, found) {
            Ok(()) => {}
            Err(KernelError::OutOfMemory) => {
                self.frames.get(pfn);
                self.put_page(pfn);
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        self.page_born(mem, tlb, pfn, !vma.locked);
        self.stats.demand_zero += 1;
        Ok(Some(FaultResolution::DemandZero))
    }

    /// A not-present fault on a page that is in swap.
    #[allow(clippy::too_many_arguments)]
    fn fault_in_swapped<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        page: VirtAddr,
        vma: &Vma,
        access: AccessKind,
        slot: crate::swap::SwapSlot,
        earlier: Option<KnownLeaf>,
        found: Option<FoundPlace>,
    ) -> Result<Option<FaultResolution>, KernelError> {
        let (pfn, major, sharers) = match self.swap_in(mem, tlb, page, slot) {
            Ok(Some(got)) => got,
            r => {
                // Not brought in: the swap entry the caller took out goes
                // back (the map's order is never seen: `SwapEntries`).
                self.space_mut(sid).swapped.insert(page.as_u64(), slot);
                return r.map(|_| None);
            }
        };
        // Shared with another mapping or another swap entry: copy-on-write.
        let shared = self.frames.meta(pfn).refs > 0 || sharers > 0;
        let mut flags = vma.prot.pte_flags() | PteFlags::ACCESSED;
        if vma.kind.is_private() && shared {
            flags.remove(PteFlags::WRITE);
        } else if access == AccessKind::Write {
            flags |= PteFlags::DIRTY;
        }
        if let Err(e) = self.map_data_known(mem, sid, page, pfn, flags, earlier, found) {
            // Put the entry back so nothing is lost, then report.
            self.space_mut(sid).swapped.insert(page.as_u64(), slot);
            self.reclaim.slot_ref(slot);
            return match e {
                KernelError::OutOfMemory => Ok(None),
                e => Err(e),
            };
        }
        self.page_back(mem, tlb, pfn, !vma.locked);
        Ok(Some(if major {
            FaultResolution::SwapIn
        } else {
            FaultResolution::SwapCache
        }))
    }

    /// A store to a page write-protected for dirty tracking: write
    /// permission back (and A and D set, as a write fault sets them), unless
    /// the frame is also shared copy-on-write (`None`: break COW instead).
    fn write_protect_fault<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        page: VirtAddr,
        vma: &Vma,
        t: &Translation,
    ) -> Result<Option<FaultResolution>, KernelError> {
        let pfn = self.frames.pfn_of(t.frame);
        if vma.kind.is_private() && (self.frames.meta(pfn).refs > 1 || self.swap_sharers(pfn) > 0) {
            return Ok(None);
        }
        let asid = {
            let s = self.space(sid);
            s.asid
        };
        let flags = vma.prot.pte_flags() | PteFlags::ACCESSED | PteFlags::DIRTY;
        let flush = self.tables.protect(&self.fmt, mem, asid, page, flags)?;
        tlb.invalidate_page(asid, flush);
        self.stats.write_protect += 1;
        Ok(Some(FaultResolution::WriteProtect))
    }

    /// A write to a present read-only page of a writable VMA.
    fn break_cow<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        page: VirtAddr,
        vma: &Vma,
        t: &Translation,
    ) -> Result<Option<FaultResolution>, KernelError> {
        let old = self.frames.pfn_of(t.frame);
        let asid = self.space(sid).asid;
        let flags = vma.prot.pte_flags() | PteFlags::ACCESSED | PteFlags::DIRTY;
        if !vma.kind.is_private()
            || (self.frames.meta(old).refs == 1 && self.swap_sharers(old) == 0)
        {
            // The last sharer (or a shared mapping): write permission back, no copy.
            let flush = self.tables.protect(&self.fmt, mem, asid, page, flags)?;
            tlb.invalidate_page(asid, flush);
            if vma.kind.is_private() {
                self.stats.cow_reuses += 1;
                return Ok(Some(FaultResolution::CowReuse));
            }
            self.stats.spurious += 1;
            return Ok(Some(FaultResolution::Spurious));
        }
        // Hold the old frame so reclaim cannot take it while we allocate.
        self.frames.get(old);
        let new = self.alloc_data_page(mem, tlb);
        self.put_page(old);
        let Some(new) = new? else {
            return Ok(None);
        };
        let (src, dst) = (self.frames.addr_of(old), self.frames.addr_of(new));
        mem.copy(src, dst, self.page.bytes())
            .map_err(|source| KernelError::Memory {
                what: "copy-on-write copy failed",
                source,
            })?;
        // Hold the new frame while the old mapping goes, then map it.
        self.frames.get(new);
        self.unmap_data(mem, tlb, sid, page)?;
        let mapped = self.map_data(mem, sid, page, new, flags);
        self.put_page(new);
        match mapped {
            Ok(()) => {}
            Err(KernelError::OutOfMemory) => return Ok(None),
            Err(e) => return Err(e),
        }
        self.page_born(mem, tlb, new, !vma.locked);
        self.stats.cow_copies += 1;
        Ok(Some(FaultResolution::CowCopy))
    }

    fn set_accessed_dirty<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        page: VirtAddr,
        access: AccessKind,
    ) -> Result<(), KernelError> {
        let asid = {
            let s = self.space(sid);
            s.asid
        };
        let mut bits = PteFlags::ACCESSED;
        if access == AccessKind::Write {
            bits |= PteFlags::DIRTY;
        }
        let (_, flush) = self
            .tables
            .update_status(&self.fmt, mem, asid, page, bits, PteFlags::empty())
            .map_err(KernelError::EntryOutsideMemory)?;
        tlb.invalidate_page(asid, flush);
        Ok(())
    }

    /// Kills `pid` for a fault it cannot survive, records the event, and
    /// frees what it owned.
    fn kill<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        va: VirtAddr,
        access: AccessKind,
        reason: SegvReason,
    ) -> Result<FaultResolution, KernelError> {
        self.events.push(KernelEvent::Segfault {
            pid,
            va,
            access,
            reason,
        });
        self.stats.segfaults += 1;
        self.exit(mem, tlb, pid)?;
        Ok(FaultResolution::Killed(reason))
    }
}
