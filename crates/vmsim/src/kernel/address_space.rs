//! An address space: an ASID (which names its page table) and the VMAs.
//!
//! Several processes can share one address space (a vfork child runs in its
//! parent's). The kernel owns the frames mapped here; this module only
//! keeps the VMA layout consistent (sorted, never overlapping).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::addr::{Asid, VirtAddr};

use super::vma::Vma;

/// One address space.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressSpace {
    /// The ASID that tags this space's TLB entries, and names the space in
    /// the kernel's page tables (its radix tree, or its key into the
    /// machine's inverted or hashed table).
    pub asid: Asid,
    /// VMAs keyed by start address.
    vmas: BTreeMap<u64, Vma>,
    /// Where the heap starts.
    pub brk_start: VirtAddr,
    /// The current program break.
    pub brk: VirtAddr,
    /// Processes running in this space (more than one only under vfork).
    pub users: u32,
    /// Data pages currently mapped (resident set, in pages).
    pub resident: u64,
    /// Pages of this space that are in swap, by page address: the swap
    /// entries Linux keeps in non-present PTEs, kept here so every entry
    /// format can swap.
    pub swapped: super::SwapEntries,
    /// Soft-dirty tracking (`kernel/tracking.rs`): the pages write-protected
    /// since the tracker was last armed and not written since. A page here
    /// is never mapped writable (a store to it traps); one that is mapped
    /// but not here is soft-dirty.
    pub write_protected: BTreeSet<u64>,
    /// Whether the soft-dirty tracker was ever armed for this space (until
    /// then every page of it counts as dirty).
    pub soft_dirty_armed: bool,
}

impl AddressSpace {
    /// An address space with no VMAs.
    #[must_use]
    pub fn new(asid: Asid, brk_start: VirtAddr) -> Self {
        Self {
            asid,
            vmas: BTreeMap::new(),
            brk_start,
            brk: brk_start,
            users: 1,
            resident: 0,
            swapped: super::SwapEntries::new(),
            write_protected: BTreeSet::new(),
            soft_dirty_armed: false,
        }
    }

    /// The VMA containing `va`.
    #[must_use]
    pub fn find(&self, va: VirtAddr) -> Option<&Vma> {
        self.vmas
            .range(..=va.as_u64())
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(va))
    }

    /// The VMA starting just above `va` (the stack that may grow down to it).
    #[must_use]
    pub fn next_above(&self, va: VirtAddr) -> Option<&Vma> {
        self.vmas.range(va.as_u64() + 1..).next().map(|(_, v)| v)
    }

    /// The end of the VMA just below `va`, or 0.
    #[must_use]
    pub fn prev_end(&self, va: VirtAddr) -> u64 {
        self.vmas
            .range(..va.as_u64())
            .next_back()
            .map_or(0, |(_, v)| v.end.as_u64())
    }

    /// Every VMA, in address order.
    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Whether any VMA overlaps `[start, end)`.
    #[must_use]
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end.as_u64() > start)
    }

    /// Inserts a VMA; the caller guarantees it overlaps none.
    pub fn insert(&mut self, vma: Vma) {
        debug_assert!(
            !self.overlaps(vma.start.as_u64(), vma.end.as_u64()),
            "overlapping VMA"
        );
        self.vmas.insert(vma.start.as_u64(), vma);
    }

    /// Replaces the VMA starting at `vma.start` (same start, new bounds or flags).
    pub fn replace(&mut self, vma: Vma) {
        self.vmas.insert(vma.start.as_u64(), vma);
    }

    /// Removes `[start, end)` from the layout, splitting VMAs at the edges.
    /// Returns the removed pieces and the pieces created by splitting (kept).
    pub fn carve(&mut self, start: VirtAddr, end: VirtAddr, page: u64) -> (Vec<Vma>, Vec<Vma>) {
        let hit: Vec<u64> = self
            .vmas
            .range(..end.as_u64())
            .filter(|(_, v)| v.end > start)
            .map(|(k, _)| *k)
            .collect();
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for k in hit {
            let Some(v) = self.vmas.remove(&k) else {
                continue;
            };
            if let Some(below) = v.clip(v.start, start, page) {
                self.vmas.insert(below.start.as_u64(), below);
                kept.push(below);
            }
            if let Some(above) = v.clip(end, v.end, page) {
                self.vmas.insert(above.start.as_u64(), above);
                kept.push(above);
            }
            if let Some(mid) = v.clip(start, end, page) {
                removed.push(mid);
            }
        }
        (removed, kept)
    }

    /// The highest free gap of `len` bytes ending at or below `top` and
    /// starting at or above `bottom`, aligned to `align` (mmap's top-down search).
    #[must_use]
    pub fn find_gap(&self, len: u64, bottom: u64, top: u64, align: u64) -> Option<u64> {
        let fit = |floor: u64, ceil: u64| {
            let start = ceil.checked_sub(len)? / align * align;
            (start >= floor).then_some(start)
        };
        let mut ceiling = top;
        for v in self.vmas.range(..top).rev().map(|(_, v)| v) {
            let end = v.end.as_u64();
            if end < ceiling
                && let Some(s) = fit(end.max(bottom), ceiling)
            {
                return Some(s);
            }
            ceiling = ceiling.min(v.start.as_u64());
            if ceiling <= bottom {
                return None;
            }
        }
        fit(bottom, ceiling)
    }
}
