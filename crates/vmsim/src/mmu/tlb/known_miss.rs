//! A lookup known to miss: the retry of an access whose walk just faulted.
//!
//! A fault from a walk made after [`Tlb::lookup`] missed every level (not
//! a walk made only to set D, whose page is cached) leaves no entry for
//! the address: the walk caches nothing in the TLB when it faults. The OS
//! then handles the fault, which may invalidate entries (an eviction) but
//! caches none, and the access is retried: the retry's lookup would probe
//! every level and miss again. [`Tlb::lookup_known_miss`] counts that
//! miss without the probe (on the swap row, a probe of every array of
//! two levels on each of ~870K faults, about 440 instructions each).
//!
//! Exact, not a guess: the miss is remembered with the address space,
//! address and kind of its lookup, and forgotten by every write of an
//! entry into any level (`Tlb::fill_levels_absent`, `Tlb::insert_levels`:
//! fills, updates and a lower level's hit copied up), the only way the
//! lookup could come to hit. Invalidations and context switches only
//! remove entries (and a context switch changes the address space the
//! retry looks up for, which is compared). The recent hits `lookup` tests
//! first hold only entries some level holds, and are forgotten with them.

use super::{Tlb, side};
use crate::addr::{Asid, VirtAddr};
use crate::mmu::AccessKind;

/// The lookup that last missed every level with nothing cached since, if
/// any. Not state: not saved (a restored TLB knows of none), and a TLB
/// that knows of none looks up as before.
#[derive(Clone, Copy, Debug, Default)]
pub(in crate::mmu) struct KnownMiss(Option<(Asid, VirtAddr, AccessKind)>);

impl KnownMiss {
    /// Knows of no miss.
    pub(super) const NONE: Self = Self(None);
}

impl Tlb {
    /// Records that a lookup by `asid` of `va` for `kind` just missed every
    /// level, and that nothing was cached since (the MMU's walk after it
    /// faulted).
    #[inline]
    pub(in crate::mmu) fn note_full_miss(&mut self, asid: Asid, va: VirtAddr, kind: AccessKind) {
        self.known_miss = KnownMiss(Some((asid, va, kind)));
    }

    /// Forgets the known miss: an entry was written into some level.
    #[inline(always)]
    pub(super) fn forget_known_miss(&mut self) {
        self.known_miss = KnownMiss::NONE;
    }

    /// [`Tlb::lookup`] of `va` for `kind` by `asid` when it is the lookup
    /// [`Tlb::note_full_miss`] recorded and nothing was cached since: it
    /// would miss every level, so it is counted as that miss (the lookup,
    /// each level that serves the side missed, a full miss; owed touches
    /// settled first, as the probe settles them) without probing, and true
    /// is returned. False otherwise, with nothing counted or changed but the
    /// record forgotten: the caller looks up as usual.
    pub(in crate::mmu) fn lookup_known_miss(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        kind: AccessKind,
    ) -> bool {
        let KnownMiss(known) = std::mem::take(&mut self.known_miss);
        if known != Some((asid, va, kind)) {
            return false;
        }
        self.settle();
        self.lookups_by_kind[kind.index()] += 1;
        let side = side(kind);
        for level in &mut self.levels {
            level.counters.misses += u64::from(level.serves(side));
        }
        self.full_misses += 1;
        true
    }
}
