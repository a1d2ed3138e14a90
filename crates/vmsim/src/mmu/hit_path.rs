//! The TLB-hit path of a run of user references, hoisted out of the MMU:
//! [`HitPath`].
//!
//! Why: most references of a real trace hit the entry their side (data or
//! instruction) hit last, and for such a hit [`Mmu::translate`] only
//! compares a key, counts the lookup and the first-level hit, and checks the
//! permissions and the dirty bit. A [`HitPath`] does the checks once, when
//! it is taken, and leaves the counting to the caller, which counts hits in
//! locals and credits them in bulk ([`HitPath::credit`]) before anything
//! else touches the MMU. The caller's per-reference loop is then a shift
//! and a compare; everything else goes through [`Mmu::translate`] as before.
//!
//! Exact: a reference takes the hoisted path only where
//! [`Mmu::translate`] would return the same address from the same recent
//! hit with no other effect than the counts credited later (see
//! [`Tlb::repeat_key`](super::Tlb::repeat_key)); a shared first level,
//! where each hit owes a deferred touch, never takes it.

use crate::addr::{PhysAddr, VirtAddr};

use super::{AccessKind, Mmu, Perms, TlbEntry};

/// A key no `va >> shift` equals for a shift of at least 1: the kind of
/// access it stands for always takes the full path.
const NEVER: u64 = u64::MAX;

/// For each of four classes of user access (the caller's: `sim` uses the
/// trace's kinds I, L, S, M), the key an address must have to hit the entry
/// its side hit last with nothing else to check (permissions held; for a
/// write, the entry dirty), and the data side's entry (stores need the
/// physical address). Taken with [`HitPath::of`]; stale after any call that
/// may change the TLB ([`Mmu::translate`], a fault, an invalidation, a
/// context switch): take it again after one.
#[derive(Clone, Copy, Debug)]
pub struct HitPath {
    /// Per class: `va >> shift` of a hit, or [`NEVER`].
    key: [u64; 4],
    shift: [u32; 4],
    /// The data side's recent entry (what a load or store hit translates with).
    data: TlbEntry,
    /// The page shift of each side's entry (data, fetch), for the hit counts.
    page_shift: [u32; 2],
}

impl HitPath {
    /// The hoisted hit path of `mmu`'s TLB in its current context, for
    /// user accesses of the four `classes`.
    #[must_use]
    pub fn of(mmu: &Mmu, classes: &[AccessKind; 4]) -> Self {
        let (_, asid) = mmu.context();
        let tlb = mmu.tlb();
        let sides = [tlb.repeat_key(asid, false), tlb.repeat_key(asid, true)];
        let mut path = Self {
            key: [NEVER; 4],
            shift: [1; 4],
            data: sides[0].map_or_else(TlbEntry::default, |(_, _, e)| *e),
            page_shift: sides.map(|s| s.map_or(0, |(_, _, e)| e.page_shift())),
        };
        for (c, &kind) in classes.iter().enumerate() {
            let Some((key, shift, entry)) = sides[usize::from(kind.is_fetch())] else {
                continue;
            };
            let right = match kind {
                AccessKind::Read => Perms::READ,
                AccessKind::Write => Perms::WRITE,
                AccessKind::Execute => Perms::EXECUTE,
            };
            if entry.perms().contains(right | Perms::USER)
                && (kind != AccessKind::Write || entry.is_dirty())
                && shift >= 1
            {
                path.key[c] = key;
                path.shift[c] = shift;
            }
        }
        path
    }

    /// Whether a user access of class `c` at `va` (within one page) hits
    /// the hoisted path: [`Mmu::translate`] would return its address from
    /// the recent entry with nothing to do but count.
    #[inline(always)]
    #[must_use]
    pub fn hits(&self, c: usize, va: u64) -> bool {
        va >> self.shift[c & 3] == self.key[c & 3]
    }

    /// The physical address of a data access at `va` that [`HitPath::hits`].
    #[inline(always)]
    #[must_use]
    pub fn data_address(&self, va: u64) -> PhysAddr {
        self.data.translate(VirtAddr::new(va))
    }

    /// Counts in `mmu` the hits taken on this path: `hits[kind.index()]` of
    /// each kind, exactly as many [`Mmu::translate`] hits count them. Call
    /// before anything else uses `mmu`.
    #[inline]
    pub fn credit(&self, mmu: &mut Mmu, hits: [u64; 3]) {
        let data = hits[AccessKind::Read.index()] + hits[AccessKind::Write.index()];
        let fetch = hits[AccessKind::Execute.index()];
        if data + fetch > 0 {
            mmu.tlb_mut()
                .credit_repeats(hits, self.page_shift, [data, fetch]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Asid, PageSize, Pfn};
    use crate::alloc::FirstFit;
    use crate::mmu::{Privilege, TlbConfig};
    use crate::paging::{Format, PteFlags, RadixTable};
    use proptest::prelude::*;

    /// Classes numbered as `AccessKind::index` (and a fourth, unused).
    const CLASSES: [AccessKind; 4] = [
        AccessKind::Read,
        AccessKind::Write,
        AccessKind::Execute,
        AccessKind::Read,
    ];

    /// An MMU of `preset` over tables in a `Vec`: 16 pages from 0x40_0000
    /// with rights rw, r, rx, rwx in turn (so writes to some fault and
    /// fetches from others), in address space 1.
    fn machine(preset: &str) -> (Mmu, Vec<u8>) {
        let fmt = Format::x86_64();
        let mut ram = vec![0u8; 128 * 4096];
        let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 100);
        let table = RadixTable::new(&fmt, &mut ram, &mut frames).expect("root");
        let rights = [
            PteFlags::READ | PteFlags::WRITE,
            PteFlags::READ,
            PteFlags::READ | PteFlags::EXEC,
            PteFlags::READ | PteFlags::WRITE | PteFlags::EXEC,
        ];
        for p in 0..16u64 {
            let flags = rights[(p % 4) as usize] | PteFlags::USER;
            table
                .map(
                    &fmt,
                    &mut ram,
                    &mut frames,
                    VirtAddr::new(0x40_0000 + p * 4096),
                    PhysAddr::new(0x70_000 + p * 4096).expect("frame"),
                    PageSize::SIZE_4K,
                    flags,
                )
                .expect("map")
                .ignore();
        }
        let mut mmu = Mmu::new(
            fmt.clone(),
            &TlbConfig::preset(preset).expect("preset"),
            true,
        )
        .expect("mmu");
        mmu.set_context(table.root(), Asid::new(1));
        (mmu, ram)
    }

    /// Repeated reads, writes and fetches of one page take the hoisted
    /// path after the first (a write only once the entry is dirty), and a
    /// denied access never does.
    #[test]
    fn repeats_take_the_hoisted_path() {
        let (mut mmu, mut ram) = machine("x86-64");
        let page = |p: u64| 0x40_0000 + p * 4096;
        for (kind, va, expect) in [
            (AccessKind::Read, page(0), true),
            (AccessKind::Write, page(0), true),
            (AccessKind::Execute, page(2), true),
            (AccessKind::Write, page(1), false), // read-only: a protection fault
            (AccessKind::Execute, page(0), false), // not executable
        ] {
            // The first may walk (or update the dirty bit); the second hits.
            for _ in 0..2 {
                let _ = mmu.translate(&mut ram, VirtAddr::new(va), kind, Privilege::User);
            }
            let path = HitPath::of(&mmu, &CLASSES);
            assert_eq!(
                path.hits(kind.index(), va + 8),
                expect,
                "{kind:?} at {va:#x}"
            );
            if expect && !kind.is_fetch() {
                let pa = mmu.translate(&mut ram, VirtAddr::new(va + 8), kind, Privilege::User);
                assert_eq!(Ok(path.data_address(va + 8)), pa);
            }
        }
    }

    proptest! {
        /// Translating a random reference string with the hit path hoisted
        /// (hits counted in locals and credited before every full
        /// translation, as `sim::run_span` does) gives the same address or
        /// fault for every reference, and the same counters and TLB
        /// contents at the end, as translating every reference in full.
        #[test]
        fn hoisted_hits_count_and_translate_as_translate(
            refs in proptest::collection::vec((0usize..3, 0u64..20, 0u64..4096), 1..400),
            preset in proptest::sample::select(vec!["x86-64", "core-i7", "classroom", "riscv-sv39"]),
        ) {
            let (mut plain, mut ram_a) = machine(preset);
            let (mut hoisted, mut ram_b) = machine(preset);
            let mut path = HitPath::of(&hoisted, &CLASSES);
            let mut hits = [0u64; 3];
            for &(k, page, off) in &refs {
                let kind = AccessKind::ALL[k];
                let va = 0x40_0000 + page * 4096 + off;
                let want = plain.translate(&mut ram_a, VirtAddr::new(va), kind, Privilege::User);
                let got = if path.hits(k, va) {
                    hits[kind.index()] += 1;
                    Ok(if kind.is_fetch() {
                        // Fetches use the address only through `translate`.
                        want.expect("a hoisted hit cannot fault")
                    } else {
                        path.data_address(va)
                    })
                } else {
                    path.credit(&mut hoisted, std::mem::take(&mut hits));
                    let r = hoisted.translate(&mut ram_b, VirtAddr::new(va), kind, Privilege::User);
                    path = HitPath::of(&hoisted, &CLASSES);
                    r
                };
                prop_assert_eq!(got, want);
            }
            path.credit(&mut hoisted, hits);
            prop_assert_eq!(hoisted.counters(), plain.counters());
            let a: Vec<_> = plain.tlb().entries().map(|(l, e)| (l, *e)).collect();
            let b: Vec<_> = hoisted.tlb().entries().map(|(l, e)| (l, *e)).collect();
            prop_assert_eq!(a, b);
            prop_assert_eq!(ram_a, ram_b);
        }
    }
}
