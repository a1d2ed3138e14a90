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
    /// The VMA [`AddressSpace::find_recent`] last found: a copy of one of
    /// `vmas`, emptied by every change to them (derived, not saved).
    ///
    /// Why: every fault looks its address up, and a swap-heavy run's
    /// faults mostly fall in the VMA the last one found; the search of the
    /// ordered map (`range(..=va).next_back()`) cost about fifty
    /// instructions a fault, the test of this copy a few.
    #[serde(skip)]
    recent: Option<Vma>,
    /// The data-page-level tables this space's faults' walks reached
    /// (derived, not saved; a copy keeps none): see
    /// [`super::table_places`].
    #[serde(skip)]
    pub(super) table_places: super::table_places::TablePlaces,
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
            recent: None,
            table_places: super::table_places::TablePlaces::default(),
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

    /// [`AddressSpace::find`], copied, answered from the VMA the last call
    /// found when it holds `va` (see `recent`); else the search, whose
    /// answer is kept for the next call.
    #[inline]
    pub fn find_recent(&mut self, va: VirtAddr) -> Option<Vma> {
        if let Some(v) = self.recent
            && v.contains(va)
        {
            debug_assert_eq!(
                Some(&v),
                self.find(va),
                "the recent VMA is not what the search finds"
            );
            return Some(v);
        }
        let found = self.find(va).copied();
        if found.is_some() {
            self.recent = found;
        }
        found
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
        self.recent = None;
        self.vmas.insert(vma.start.as_u64(), vma);
    }

    /// Replaces the VMA starting at `vma.start` (same start, new bounds or flags).
    pub fn replace(&mut self, vma: Vma) {
        self.recent = None;
        self.vmas.insert(vma.start.as_u64(), vma);
    }

    /// Removes `[start, end)` from the layout, splitting VMAs at the edges.
    /// Returns the removed pieces and the pieces created by splitting (kept).
    pub fn carve(&mut self, start: VirtAddr, end: VirtAddr, page: u64) -> (Vec<Vma>, Vec<Vma>) {
        self.recent = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::vma::{Prot, VmaKind};

    const PAGE: u64 = 4096;

    fn vma(start: u64, end: u64, prot: Prot) -> Vma {
        Vma {
            start: VirtAddr::new(start * PAGE),
            end: VirtAddr::new(end * PAGE),
            prot,
            kind: VmaKind::AnonPrivate,
            locked: false,
            shm: None,
        }
    }

    /// `find_recent` answers as `find` through every change the layout
    /// can take (insert, replace, carve), looked up at addresses in, next
    /// to and between VMAs: the kept copy is never stale. (Broken on
    /// purpose once: `carve` left `recent` alone; this test failed.)
    #[test]
    fn find_recent_answers_as_find() {
        let mut s = AddressSpace::new(Asid::new(1), VirtAddr::new(0));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let prots = [Prot::RW, Prot::R];
        let (mut hits, mut finds) = (0, 0);
        let mut last = 0;
        for _ in 0..40_000 {
            match next(20) {
                0 => {
                    let start = next(200);
                    let end = start + 1 + next(20);
                    if !s.overlaps(start * PAGE, end * PAGE) {
                        s.insert(vma(start, end, prots[next(2) as usize]));
                    }
                }
                1 => {
                    let start = next(200);
                    let end = start + 1 + next(20);
                    let _ = s.carve(VirtAddr::new(start * PAGE), VirtAddr::new(end * PAGE), PAGE);
                }
                2 => {
                    // Same start, another end or permission.
                    let starts: Vec<u64> = s.vmas().map(|v| v.start.as_u64() / PAGE).collect();
                    if !starts.is_empty() {
                        let start = starts[next(starts.len() as u64) as usize];
                        let v = *s.find(VirtAddr::new(start * PAGE)).expect("a VMA");
                        let end = v.end.as_u64() / PAGE;
                        let shorter = start + 1 + next(end - start);
                        s.replace(vma(start, shorter, prots[next(2) as usize]));
                    }
                }
                _ => {
                    // Near the last address half the time (as faults
                    // mostly are), else anywhere.
                    last = if next(2) == 0 {
                        (last + next(8 * PAGE)).saturating_sub(4 * PAGE)
                    } else {
                        next(230 * PAGE)
                    };
                    let va = VirtAddr::new(last);
                    let kept = s.recent.is_some_and(|v| v.contains(va));
                    let want = s.find(va).copied();
                    assert_eq!(s.find_recent(va), want, "at {va}");
                    finds += 1;
                    hits += u32::from(kept);
                }
            }
        }
        // Both paths ran, many times.
        assert!(hits > 1_000 && finds - hits > 1_000, "{hits} of {finds}");
    }
}
