//! System calls on the model: fork, vfork, exec, exit, brk/sbrk, mmap,
//! munmap, mprotect, mlock/munlock and shared-memory segments.

use crate::addr::{Pid, VirtAddr};
use crate::memory::PhysMemory;
use crate::paging::PteFlags;

use super::process::{ProcState, Process, SpaceId};
use super::shm::ShmId;
use super::shootdowns::Shootdowns;
use super::vma::{Prot, Vma, VmaKind};
use super::{Kernel, KernelError, Layout, TlbControl, user_top};

/// How mmap places and backs a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MmapFlags {
    /// MAP_SHARED: the pages are shared with children (and anyone attaching).
    pub shared: bool,
    /// MAP_FIXED: exactly at the address, replacing what was there.
    pub fixed: bool,
}

impl Kernel {
    /// fork: the child gets a copy of the parent's address space in which
    /// every private page is shared copy-on-write (read-only in both, with a
    /// reference count) and shared pages stay shared. No page is copied.
    pub fn fork<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        parent: Pid,
    ) -> Result<Pid, KernelError> {
        let psid = self.runnable(parent)?.space;
        let (brk_start, brk, pasid) = {
            let s = self.space(psid);
            (s.brk_start, s.brk, s.asid)
        };
        // Room for the child's tables (at most as many as the parent's) and its task structure.
        let tables = self
            .tables
            .tables(&self.fmt, mem, pasid)
            .map_or(0, |t| t.len() as u64);
        self.make_room(mem, tlb, tables + 8)?;
        let task = self.alloc_task()?;
        let csid = match self.new_space(mem, brk_start) {
            Ok(s) => s,
            Err(e) => {
                self.free_task(task);
                return Err(e);
            }
        };
        let vmas: Vec<Vma> = self.space(psid).vmas().copied().collect();
        // Pages in swap are shared too: the child's swap entries name the same slots.
        let swapped = self.space(psid).swapped.clone();
        for slot in swapped.values() {
            self.reclaim.slot_ref(slot);
        }
        {
            let child = self.space_mut(csid);
            child.brk = brk;
            child.swapped = swapped;
            for v in &vmas {
                // mlock is not inherited.
                child.insert(Vma {
                    locked: false,
                    ..*v
                });
            }
        }
        let result = (|| {
            for leaf in self.tables.leaves(&self.fmt, mem, pasid)? {
                let Some(vma) = self.space(psid).find(leaf.page).copied() else {
                    debug_assert!(false, "a mapped page outside every VMA");
                    continue;
                };
                let pfn = self.frames.pfn_of(leaf.frame);
                let mut flags = leaf.flags - PteFlags::ACCESSED;
                if vma.kind.is_private() {
                    if leaf.flags.contains(PteFlags::WRITE) {
                        let flush = self.tables.protect(
                            &self.fmt,
                            mem,
                            pasid,
                            leaf.page,
                            leaf.flags - PteFlags::WRITE,
                        )?;
                        tlb.invalidate_page(pasid, flush);
                    }
                    flags -= PteFlags::WRITE;
                } else {
                    flags -= PteFlags::DIRTY;
                }
                self.map_data(mem, csid, leaf.page, pfn, flags)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.release_space(mem, tlb, csid)?;
            self.free_task(task);
            return Err(e);
        }
        self.recount_shm(mem);
        let pid = self.new_pid();
        self.procs.insert(
            pid,
            Process {
                pid,
                parent: Some(parent),
                space: csid,
                state: ProcState::Runnable,
                vfork_parent: None,
                task: Some(task),
            },
        );
        self.stats.forks += 1;
        Ok(pid)
    }

    /// vfork: the child runs in the parent's address space, and the parent
    /// waits until the child exits (or execs).
    pub fn vfork(&mut self, parent: Pid) -> Result<Pid, KernelError> {
        let psid = self.runnable(parent)?.space;
        let task = self.alloc_task()?;
        self.space_mut(psid).users += 1;
        let pid = self.new_pid();
        self.procs.insert(
            pid,
            Process {
                pid,
                parent: Some(parent),
                space: psid,
                state: ProcState::Runnable,
                vfork_parent: Some(parent),
                task: Some(task),
            },
        );
        if let Some(p) = self.procs.get_mut(&parent) {
            p.state = ProcState::VforkWait(pid);
        }
        self.stats.vforks += 1;
        Ok(pid)
    }

    /// exec: the process gets a fresh address space with `layout` (the old
    /// one is released); a vfork parent waiting for it resumes.
    pub fn exec<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        layout: Layout,
    ) -> Result<(), KernelError> {
        let old = self.runnable(pid)?.space;
        // Build the new image in a throwaway process, then move its space over.
        let tmp = self.spawn(mem, layout)?;
        let tmp_proc = self
            .procs
            .remove(&tmp)
            .ok_or(KernelError::NoSuchProcess(tmp))?;
        if let Some(task) = tmp_proc.task {
            self.free_task(task);
        }
        self.release_space(mem, tlb, old)?;
        let parent = match self.procs.get_mut(&pid) {
            Some(p) => {
                p.space = tmp_proc.space;
                p.vfork_parent.take()
            }
            None => None,
        };
        self.wake_vfork_parent(parent, pid);
        Ok(())
    }

    fn wake_vfork_parent(&mut self, parent: Option<Pid>, child: Pid) {
        if let Some(pp) = parent.and_then(|p| self.procs.get_mut(&p))
            && pp.state == ProcState::VforkWait(child)
        {
            pp.state = ProcState::Runnable;
        }
    }

    /// exit: frees every page, table and kernel object the process owned
    /// (an address space shared by vfork survives until its last user).
    pub fn exit<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
    ) -> Result<(), KernelError> {
        let p = self
            .procs
            .remove(&pid)
            .ok_or(KernelError::NoSuchProcess(pid))?;
        self.wake_vfork_parent(p.vfork_parent, pid);
        for child in self.procs.values_mut().filter(|c| c.parent == Some(pid)) {
            child.parent = None;
        }
        self.release_space(mem, tlb, p.space)?;
        if let Some(task) = p.task {
            self.free_task(task);
        }
        self.stats.exits += 1;
        Ok(())
    }

    fn free_task(&mut self, task: crate::alloc::ObjHandle) {
        let freed = self
            .slab
            .free(self.caches.task, &mut self.frames.for_slabs(), task);
        debug_assert!(freed.is_ok(), "task structure freed twice");
    }

    /// Drops one user of an address space; the last user tears it down.
    fn release_space<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
    ) -> Result<(), KernelError> {
        let users = {
            let s = self.space_mut(sid);
            s.users -= 1;
            s.users
        };
        if users > 0 {
            return Ok(());
        }
        let (asid, resident) = {
            let s = self.space(sid);
            (s.asid, s.resident)
        };
        // The unmaps' TLB invalidations are made together (nothing
        // translates meanwhile: see `Shootdowns`), before the ASID flush;
        // their list made once at about its size (one per resident page),
        // not grown by doubling and copying.
        let held = Vec::with_capacity(usize::try_from(resident).unwrap_or(0));
        let mut batch = Shootdowns::new(tlb, held);
        let unmapped = self.unmap_listed_leaves(mem, &mut batch, sid, asid);
        batch.finish();
        unmapped?;
        for slot in std::mem::take(&mut self.space_mut(sid).swapped).into_values() {
            self.reclaim.slot_unref(slot);
        }
        self.tables
            .destroy(&self.fmt, mem, &mut self.frames.for_tables(), asid)?;
        tlb.invalidate_asid(asid);
        self.free_asids.push(asid.as_u16());
        self.spaces[sid.0 as usize] = None;
        self.recount_shm(mem);
        Ok(())
    }

    /// Unmaps every data page of space `sid` (ASID `asid`), in the order
    /// its tables list them, each where the listing found it.
    fn unmap_listed_leaves<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        asid: crate::addr::Asid,
    ) -> Result<(), KernelError> {
        let leaves = self.tables.leaves(&self.fmt, mem, asid)?;
        for (i, leaf) in leaves.iter().enumerate() {
            self.unmap_listed_data(mem, tlb, sid, leaf, leaves.get(i + 1))?;
        }
        Ok(())
    }

    /// Recounts the attachments of every shared object from the VMAs and
    /// destroys the objects nobody can reach any more.
    fn recount_shm<M: PhysMemory + ?Sized>(&mut self, _mem: &mut M) {
        let ids: Vec<ShmId> = self.shm.iter().map(|(id, _)| id).collect();
        for id in ids {
            let n = self
                .spaces
                .iter()
                .flatten()
                .flat_map(|s| s.vmas())
                .filter(|v| v.shm.is_some_and(|(i, _)| i == id))
                .count() as u32;
            if let Some(o) = self.shm.get_mut(id) {
                o.attaches = n;
            }
            if self.shm.is_dead(id) {
                for pfn in self.shm.destroy(id) {
                    self.put_page(pfn);
                }
            }
        }
    }

    /// brk: moves the program break. Returns the new break.
    pub fn brk<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        new: VirtAddr,
    ) -> Result<VirtAddr, KernelError> {
        let sid = self.runnable(pid)?.space;
        let (start, brk) = {
            let s = self.space(sid);
            (s.brk_start.as_u64(), s.brk.as_u64())
        };
        let n = new.as_u64();
        if n < start {
            return Err(KernelError::invalid(
                "brk",
                format!("{new} is below the start of the heap ({start:#x})"),
            ));
        }
        let align_up = |x: u64| {
            self.page_align_up(x)
                .ok_or_else(|| KernelError::invalid("brk", "address overflows"))
        };
        let (old_end, new_end) = (align_up(brk)?, align_up(n)?);
        let page = self.page.bytes();
        if new_end > old_end {
            if new_end > user_top(&self.fmt) || self.space(sid).overlaps(old_end, new_end) {
                return Err(KernelError::NoSpace("brk"));
            }
            let heap = Vma {
                start: VirtAddr::new(start),
                end: VirtAddr::new(new_end),
                prot: Prot::RW,
                kind: VmaKind::Heap,
                locked: false,
                shm: None,
            };
            let s = self.space_mut(sid);
            let _ = s.carve(heap.start, VirtAddr::new(old_end), page);
            s.insert(heap);
        } else if new_end < old_end {
            self.unmap_range(
                mem,
                tlb,
                sid,
                VirtAddr::new(new_end),
                VirtAddr::new(old_end),
            )?;
            let _ = self
                .space_mut(sid)
                .carve(VirtAddr::new(new_end), VirtAddr::new(old_end), page);
        }
        self.space_mut(sid).brk = new;
        Ok(new)
    }

    /// sbrk: moves the break by `increment` bytes; returns the old break.
    pub fn sbrk<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        increment: i64,
    ) -> Result<VirtAddr, KernelError> {
        let old = self.space_of(pid)?.brk;
        let new = old.as_u64().checked_add_signed(increment).ok_or_else(|| {
            KernelError::invalid("sbrk", format!("break {old} + {increment} overflows"))
        })?;
        self.brk(mem, tlb, pid, VirtAddr::new(new))?;
        Ok(old)
    }

    fn check_range(
        &self,
        call: &'static str,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(VirtAddr, VirtAddr), KernelError> {
        if len == 0 {
            return Err(KernelError::invalid(call, "length is zero"));
        }
        if !addr.is_aligned(self.page) {
            return Err(KernelError::invalid(
                call,
                format!("{addr} is not aligned to the {} page size", self.page),
            ));
        }
        let len = self
            .page_align_up(len)
            .ok_or_else(|| KernelError::invalid(call, "length overflows"))?;
        let end = addr
            .as_u64()
            .checked_add(len)
            .filter(|&e| e <= user_top(&self.fmt))
            .ok_or_else(|| {
                KernelError::invalid(call, format!("{addr} + {len:#x} is outside user space"))
            })?;
        Ok((addr, VirtAddr::new(end)))
    }

    /// mmap of anonymous memory: private (copy-on-write across fork) or
    /// shared; at a chosen address (top-down below the mmap base, or the
    /// hint if free) or fixed (replacing what was there).
    #[allow(clippy::too_many_arguments)]
    pub fn mmap<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        addr: Option<VirtAddr>,
        len: u64,
        prot: Prot,
        flags: MmapFlags,
    ) -> Result<VirtAddr, KernelError> {
        let sid = self.runnable(pid)?.space;
        let shm = if flags.shared {
            let pages = self.page_align_up(len).unwrap_or(0) / self.page.bytes();
            Some(self.shm.create(pages, true))
        } else {
            None
        };
        self.map_area(mem, tlb, sid, addr, len, prot, flags.fixed, shm, "mmap")
    }

    #[allow(clippy::too_many_arguments)]
    fn map_area<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        addr: Option<VirtAddr>,
        len: u64,
        prot: Prot,
        fixed: bool,
        shm: Option<ShmId>,
        call: &'static str,
    ) -> Result<VirtAddr, KernelError> {
        let page = self.page.bytes();
        let placed = (|| {
            let len = self
                .page_align_up(len)
                .filter(|&l| l > 0)
                .ok_or_else(|| KernelError::invalid(call, "length is zero or overflows"))?;
            let min = self.mmap_min_addr();
            let start = match (addr, fixed) {
                (Some(a), true) => {
                    if a.as_u64() < min {
                        return Err(KernelError::invalid(
                            call,
                            format!(
                                "{a} is below mmap_min_addr ({min:#x}): the lowest addresses stay unmapped so that null-pointer accesses fault, as on Linux (kernel.mmap_min_addr)"
                            ),
                        ));
                    }
                    let (s, e) = self.check_range(call, a, len)?;
                    self.unmap_range(mem, tlb, sid, s, e)?;
                    let _ = self.space_mut(sid).carve(s, e, page);
                    s
                }
                (None, true) => {
                    return Err(KernelError::invalid(call, "MAP_FIXED needs an address"));
                }
                (hint, false) => {
                    // A hint below mmap_min_addr is ignored, as Linux raises it.
                    let free_hint = hint.filter(|h| {
                        h.as_u64() >= min
                            && self.check_range(call, *h, len).is_ok()
                            && !self.space(sid).overlaps(h.as_u64(), h.as_u64() + len)
                    });
                    match free_hint {
                        Some(h) => h,
                        None => {
                            let (_, _, base) = self.layout_addresses();
                            let gap = self.space(sid).find_gap(len, min.max(page), base, page);
                            VirtAddr::new(gap.ok_or(KernelError::NoSpace(call))?)
                        }
                    }
                }
            };
            self.space_mut(sid).insert(Vma {
                start,
                end: start.wrapping_add(len),
                prot,
                kind: if shm.is_some() {
                    VmaKind::AnonShared
                } else {
                    VmaKind::AnonPrivate
                },
                locked: false,
                shm: shm.map(|id| (id, 0)),
            });
            Ok(start)
        })();
        self.recount_shm(mem);
        placed
    }

    /// munmap: removes the pages and the VMAs of `[addr, addr+len)`.
    pub fn munmap<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(), KernelError> {
        let sid = self.runnable(pid)?.space;
        let (s, e) = self.check_range("munmap", addr, len)?;
        self.unmap_range(mem, tlb, sid, s, e)?;
        let page = self.page.bytes();
        let _ = self.space_mut(sid).carve(s, e, page);
        self.recount_shm(mem);
        Ok(())
    }

    /// Splits the VMAs over `[s, e)` at its edges and applies `change` to
    /// each piece inside. The whole range must be mapped (ENOMEM otherwise).
    fn change_vmas(
        &mut self,
        call: &'static str,
        sid: SpaceId,
        s: VirtAddr,
        e: VirtAddr,
        change: impl Fn(&mut Vma),
    ) -> Result<(), KernelError> {
        let mut covered = s.as_u64();
        for v in self.space(sid).vmas().filter(|v| v.end > s && v.start < e) {
            if v.start.as_u64() > covered {
                break;
            }
            covered = v.end.as_u64();
        }
        if covered < e.as_u64() {
            return Err(KernelError::invalid(
                call,
                format!("[{s}, {e}) is not entirely mapped"),
            ));
        }
        let page = self.page.bytes();
        let space = self.space_mut(sid);
        let (inside, _) = space.carve(s, e, page);
        for mut v in inside {
            change(&mut v);
            space.insert(v);
        }
        Ok(())
    }

    /// mprotect: changes the permissions of `[addr, addr+len)` and of the
    /// pages already mapped there (copy-on-write pages stay read-only).
    pub fn mprotect<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(), KernelError> {
        let sid = self.runnable(pid)?.space;
        let (s, e) = self.check_range("mprotect", addr, len)?;
        self.change_vmas("mprotect", sid, s, e, |v| v.prot = prot)?;
        let asid = {
            let sp = self.space(sid);
            sp.asid
        };
        let leaves = self.tables.leaves(&self.fmt, mem, asid)?;
        for l in leaves.iter().filter(|l| s <= l.page && l.page < e) {
            let Some(vma) = self.space(sid).find(l.page).copied() else {
                continue;
            };
            let flags = self.page_flags(&vma, self.frames.pfn_of(l.frame));
            let flags = self.tracked_flags(sid, l.page, flags);
            let flush = self.tables.protect(&self.fmt, mem, asid, l.page, flags)?;
            tlb.invalidate_page(asid, flush);
        }
        Ok(())
    }

    /// mlock: pins `[addr, addr+len)`: every page is brought in now and is
    /// never chosen for eviction.
    pub fn mlock<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(), KernelError> {
        let sid = self.runnable(pid)?.space;
        let (s, e) = self.check_range("mlock", addr, len)?;
        self.change_vmas("mlock", sid, s, e, |v| v.locked = true)?;
        let page = self.page.bytes();
        let mut va = s;
        while va < e {
            if self
                .tables
                .translate(&self.fmt, mem, self.space(sid).asid, va)
                .is_err()
            {
                let res = self.handle_fault(
                    mem,
                    tlb,
                    pid,
                    va,
                    crate::mmu::AccessKind::Read,
                    super::FaultCause::NotPresent,
                )?;
                if !res.retry() {
                    return Err(KernelError::OutOfMemory);
                }
            }
            va = va.wrapping_add(page);
        }
        self.set_range_evictable(mem, tlb, sid, s, e, false);
        Ok(())
    }

    /// munlock: unpins `[addr, addr+len)`.
    pub fn munlock<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(), KernelError> {
        let sid = self.runnable(pid)?.space;
        let (s, e) = self.check_range("munlock", addr, len)?;
        self.change_vmas("munlock", sid, s, e, |v| v.locked = false)?;
        self.set_range_evictable(mem, tlb, sid, s, e, true);
        Ok(())
    }

    /// Pins (or unpins) every resident private page of `[s, e)` for reclaim.
    fn set_range_evictable<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        s: VirtAddr,
        e: VirtAddr,
        evictable: bool,
    ) {
        let page = self.page.bytes();
        let mut va = s;
        while va < e {
            if let Ok(t) = self
                .tables
                .translate(&self.fmt, mem, self.space(sid).asid, va)
            {
                let pfn = self.frames.pfn_of(t.frame);
                self.set_evictable(mem, tlb, pfn, evictable);
            }
            va = va.wrapping_add(page);
        }
    }

    /// Creates a named shared-memory segment of `len` bytes (like shmget):
    /// it lives until removed and detached everywhere.
    pub fn shm_create(&mut self, len: u64) -> Result<ShmId, KernelError> {
        let len = self
            .page_align_up(len)
            .filter(|&l| l > 0)
            .ok_or_else(|| KernelError::invalid("shm_create", "length is zero or overflows"))?;
        Ok(self.shm.create(len / self.page.bytes(), false))
    }

    /// Attaches a segment to a process (like shmat); returns where.
    pub fn shm_attach<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pid: Pid,
        id: ShmId,
        addr: Option<VirtAddr>,
        prot: Prot,
    ) -> Result<VirtAddr, KernelError> {
        let sid = self.runnable(pid)?.space;
        let pages = match self.shm.get(id) {
            Some(o) if !o.removed => o.pages.len() as u64,
            _ => {
                return Err(KernelError::invalid(
                    "shm_attach",
                    format!("no shared segment {}", id.as_u32()),
                ));
            }
        };
        self.map_area(
            mem,
            tlb,
            sid,
            addr,
            pages * self.page.bytes(),
            prot,
            addr.is_some(),
            Some(id),
            "shm_attach",
        )
    }

    /// Marks a segment for removal (IPC_RMID): it goes with its last attachment.
    pub fn shm_remove<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        id: ShmId,
    ) -> Result<(), KernelError> {
        let o = self.shm.get_mut(id).ok_or_else(|| {
            KernelError::invalid("shm_remove", format!("no shared segment {}", id.as_u32()))
        })?;
        o.removed = true;
        self.recount_shm(mem);
        Ok(())
    }
}
