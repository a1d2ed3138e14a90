//! Dirty-page tracking through the MMU, the two ways the course notes (and
//! CRIU, QEMU, Firecracker) find the pages a checkpoint must copy again:
//!
//! - **Hardware dirty bits** ([`Kernel::harvest_dirty_bits`]): every present
//!   leaf's D bit is read and cleared. Clearing D in memory is not enough: a
//!   TLB entry caches "dirty", and a store through it would not set D again,
//!   so every cleared entry is invalidated (a shootdown). The D bit a
//!   tracker clears is remembered for reclaim (Linux's PG_dirty), so a page
//!   cleaned for a checkpoint is still written back before it is evicted.
//! - **Write protection / soft-dirty** ([`Kernel::harvest_soft_dirty`]): every
//!   mapped page is recorded as protected and every writable leaf loses W
//!   (a shootdown each). A store to a protected page traps
//!   ([`FaultResolution::WriteProtect`](super::FaultResolution), counted);
//!   the handler drops the page from the protected set and gives W back. A
//!   page mapped but not protected is soft-dirty: written, or mapped since.
//!
//! Both are *harvest* operations: they report the pages dirty since the last
//! harvest and re-arm, so they can run in a loop (checkpoint after
//! checkpoint, or migration's pre-copy rounds), for every process or for one.
//! Both perturb the machine (TLB misses, dirty walks, protection faults):
//! that is their measured cost. The host's own view of changed memory
//! (`PhysMem`'s write-tracking bitmap) perturbs nothing.

use serde::{Deserialize, Serialize};

use crate::addr::{Pid, VirtAddr};
use crate::memory::PhysMemory;
use crate::paging::PteFlags;

use super::process::SpaceId;
use super::{Kernel, KernelError, TlbControl};

/// One page a tracker found dirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DirtyPage {
    /// A process of the address space (the lowest pid, if several share it).
    pub pid: Pid,
    /// The page's address.
    pub page: VirtAddr,
    /// Whether the page is resident (false: in swap).
    pub resident: bool,
}

/// What one harvest found and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harvest {
    /// The dirty pages, by process and address.
    pub pages: Vec<DirtyPage>,
    /// Page-table entries the harvest changed (D cleared, or W cleared).
    pub ptes_changed: u64,
    /// TLB invalidations it made (one per changed entry).
    pub shootdowns: u64,
}

impl Kernel {
    /// The live address spaces, each with the lowest pid running in it,
    /// restricted to `only`'s space if given.
    fn tracked_spaces(&self, only: Option<Pid>) -> Result<Vec<(SpaceId, Pid)>, KernelError> {
        let only = only.map(|p| self.process(p).map(|p| p.space)).transpose()?;
        let mut out: Vec<(SpaceId, Pid)> = Vec::new();
        for p in self.procs.values() {
            if only.is_some_and(|s| s != p.space) {
                continue;
            }
            if !out.iter().any(|(s, _)| *s == p.space) {
                out.push((p.space, p.pid));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every page of every process (or of `only`'s address space), resident
    /// or in swap, by process and address: what a full checkpoint saves.
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn mapped_pages<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        only: Option<Pid>,
    ) -> Result<Vec<DirtyPage>, KernelError> {
        let mut out = Vec::new();
        for (sid, pid) in self.tracked_spaces(only)? {
            let s = self.space(sid);
            for l in self.tables.leaves(&self.fmt, mem, s.asid)? {
                out.push(DirtyPage {
                    pid,
                    page: l.page,
                    resident: true,
                });
            }
            out.extend(s.swapped.keys().map(|va| DirtyPage {
                pid,
                page: VirtAddr::new(va),
                resident: false,
            }));
        }
        out.sort();
        Ok(out)
    }

    /// The hardware dirty-bit tracker: returns the resident pages whose D
    /// bit is set (of every process, or of `only`'s address space) and
    /// clears it, invalidating each cleared translation.
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn harvest_dirty_bits<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        only: Option<Pid>,
    ) -> Result<Harvest, KernelError> {
        let mut h = Harvest::default();
        for (sid, pid) in self.tracked_spaces(only)? {
            let asid = {
                let s = self.space(sid);
                s.asid
            };
            for leaf in self.tables.leaves(&self.fmt, mem, asid)? {
                if !leaf.flags.contains(PteFlags::DIRTY) {
                    continue;
                }
                h.pages.push(DirtyPage {
                    pid,
                    page: leaf.page,
                    resident: true,
                });
                let (_, flush) = self.tables.update_status(
                    &self.fmt,
                    mem,
                    asid,
                    leaf.page,
                    PteFlags::empty(),
                    PteFlags::DIRTY,
                )?;
                tlb.invalidate_page(asid, flush);
                h.ptes_changed += 1;
                h.shootdowns += 1;
                let pfn = self.frames.pfn_of(leaf.frame);
                self.reclaim.keep_dirty(pfn);
            }
        }
        Ok(h)
    }

    /// The soft-dirty tracker: returns the pages (resident or in swap) of
    /// every process, or of `only`'s address space, that were written or
    /// mapped since the tracker was last armed (all of them the first
    /// time), then arms it again: every mapped page becomes protected and
    /// every writable leaf loses write permission, its translation
    /// invalidated.
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn harvest_soft_dirty<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        only: Option<Pid>,
    ) -> Result<Harvest, KernelError> {
        let mut h = Harvest::default();
        for (sid, pid) in self.tracked_spaces(only)? {
            let (asid, armed) = {
                let s = self.space(sid);
                (s.asid, s.soft_dirty_armed)
            };
            let leaves = self.tables.leaves(&self.fmt, mem, asid)?;
            let swapped: Vec<u64> = self.space(sid).swapped.keys().collect();
            {
                let s = self.space(sid);
                let dirty = |va: u64| !armed || !s.write_protected.contains(&va);
                for l in &leaves {
                    if dirty(l.page.as_u64()) {
                        h.pages.push(DirtyPage {
                            pid,
                            page: l.page,
                            resident: true,
                        });
                    }
                }
                for &va in &swapped {
                    if dirty(va) {
                        h.pages.push(DirtyPage {
                            pid,
                            page: VirtAddr::new(va),
                            resident: false,
                        });
                    }
                }
            }
            // Arm: protect everything mapped, and take W away where it is.
            let s = self.space_mut(sid);
            s.soft_dirty_armed = true;
            s.write_protected.clear();
            s.write_protected
                .extend(leaves.iter().map(|l| l.page.as_u64()));
            s.write_protected.extend(swapped);
            for l in leaves.iter().filter(|l| l.flags.contains(PteFlags::WRITE)) {
                let flush =
                    self.tables
                        .protect(&self.fmt, mem, asid, l.page, l.flags - PteFlags::WRITE)?;
                tlb.invalidate_page(asid, flush);
                h.ptes_changed += 1;
                h.shootdowns += 1;
            }
        }
        h.pages.sort();
        Ok(h)
    }
}
