//! A process that arrives from another machine (live migration): an address
//! space built from its VMAs and program break, and its pages put into
//! whatever frames this kernel gives them, each mapped with the rights and
//! status it had at the source.
//!
//! Owns the adoption only; what arrives and when is `crate::migrate`.

use crate::addr::{Pid, VirtAddr};
use crate::paging::PteFlags;
use crate::phys::{Bitmap, PhysMem};

use super::process::{ProcState, Process};
use super::vma::Vma;
use super::{Kernel, KernelError, TlbControl};

/// How one adopted page is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdoptedPage {
    /// Its virtual address (page aligned).
    pub page: VirtAddr,
    /// Mapped writable (false: a store faults, as it would have at the source).
    pub writable: bool,
    /// Its accessed bit.
    pub accessed: bool,
    /// Its dirty bit.
    pub dirty: bool,
}

impl Kernel {
    /// Creates a process with an empty page table and exactly `vmas` (in
    /// address order, not overlapping, page aligned) and the program break
    /// `brk_start..brk`. Its pages come with [`Kernel::adopt_page`].
    ///
    /// # Errors
    /// A VMA that is not page aligned, overlaps another or uses shared
    /// memory (which does not migrate), or no memory for the page table.
    pub fn adopt_space<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        vmas: &[Vma],
        brk_start: VirtAddr,
        brk: VirtAddr,
    ) -> Result<Pid, KernelError> {
        let page = self.page.bytes();
        let mut last_end = 0u64;
        for v in vmas {
            let (s, e) = (v.start.as_u64(), v.end.as_u64());
            if s % page != 0 || e % page != 0 || e <= s || s < last_end {
                return Err(KernelError::Invalid {
                    call: "migrate",
                    why: format!(
                        "a migrated area {s:#x}..{e:#x} is not page aligned, empty or out of order"
                    ),
                });
            }
            if v.shm.is_some() || !v.kind.is_private() {
                return Err(KernelError::Invalid {
                    call: "migrate",
                    why: format!(
                        "a migrated area {s:#x}..{e:#x} is shared memory, which does not migrate"
                    ),
                });
            }
            last_end = e;
        }
        let task = self.alloc_task()?;
        let sid = match self.new_space(mem, brk_start) {
            Ok(s) => s,
            Err(e) => {
                let _ = self
                    .slab
                    .free(self.caches.task, &mut self.frames.for_slabs(), task);
                return Err(e);
            }
        };
        let space = self.space_mut(sid);
        for v in vmas {
            space.insert(*v);
        }
        space.brk = brk;
        let pid = self.new_pid();
        self.procs.insert(
            pid,
            Process {
                pid,
                parent: None,
                space: sid,
                state: ProcState::Runnable,
                vfork_parent: None,
                task: Some(task),
            },
        );
        Ok(pid)
    }

    /// Maps one page of an adopted process at `p.page` in a fresh frame
    /// holding `data` (`None`: zeros). The page must lie in one of its VMAs
    /// and not be mapped yet. Write permission is the VMA's, less write if
    /// `p.writable` is false.
    ///
    /// # Errors
    /// No such process, a page outside its VMAs or already mapped, data of
    /// the wrong size, or no memory left (`OutOfMemory`).
    pub fn adopt_page<B: Bitmap, T: TlbControl>(
        &mut self,
        mem: &mut PhysMem<B>,
        tlb: &mut T,
        pid: Pid,
        p: AdoptedPage,
        data: Option<&[u8]>,
    ) -> Result<(), KernelError> {
        let sid = self.process(pid)?.space;
        let size = self.page.bytes();
        if !p.page.as_u64().is_multiple_of(size) {
            return Err(KernelError::Invalid {
                call: "migrate",
                why: format!("migrated page {:#x} is not page aligned", p.page.as_u64()),
            });
        }
        if data.is_some_and(|d| d.len() as u64 != size) {
            return Err(KernelError::Invalid {
                call: "migrate",
                why: format!(
                    "migrated page {:#x} has {} bytes, not {size}",
                    p.page.as_u64(),
                    data.map_or(0, <[u8]>::len)
                ),
            });
        }
        let Some(vma) = self.space(sid).find(p.page).copied() else {
            return Err(KernelError::Invalid {
                call: "migrate",
                why: format!(
                    "migrated page {:#x} lies outside the process's areas",
                    p.page.as_u64()
                ),
            });
        };
        let asid = self.space(sid).asid;
        if self.tables.translate(&self.fmt, mem, asid, p.page).is_ok()
            || self.space(sid).swapped.contains_key(&p.page.as_u64())
        {
            return Err(KernelError::Invalid {
                call: "migrate",
                why: format!("migrated page {:#x} arrived twice", p.page.as_u64()),
            });
        }
        let Some(pfn) = self.alloc_data_page(mem, tlb)? else {
            return Err(KernelError::OutOfMemory);
        };
        if let Some(d) = data {
            mem.write(self.frames.addr_of(pfn), d)
                .map_err(|source| KernelError::Memory {
                    what: "migrate: writing an arrived page",
                    source,
                })?;
        }
        let mut flags = vma.prot.pte_flags();
        if !p.writable {
            flags.remove(PteFlags::WRITE);
        }
        if p.accessed {
            flags |= PteFlags::ACCESSED;
        }
        if p.dirty {
            flags |= PteFlags::DIRTY;
        }
        if let Err(e) = self.map_data(mem, sid, p.page, pfn, flags) {
            self.frames.get(pfn);
            self.put_page(pfn);
            return Err(e);
        }
        self.page_born(mem, tlb, pfn, !vma.locked);
        Ok(())
    }
}
