//! The memory-management unit: [`Mmu::translate`] turns a virtual address
//! into a physical one, or into a [`PageFault`].
//!
//! A translation first asks the [`Tlb`]. On a hit the cached rights are
//! checked and the physical address returned, unless the access is a store
//! and the cached entry is clean: then, as x86 does, the hardware walks
//! again to set the dirty bit in the page-table entry in memory (counted as
//! a *dirty walk*). On a miss the page-walk caches give the deepest table
//! they know, the walker ([`crate::paging::walk_from`]) reads the remaining
//! entries from [`PhysMem`], every read counted per level; then the rights
//! are checked, the accessed and dirty bits set, and the translation cached.
//!
//! Accessed and dirty bits ([`AdUpdates`]): with hardware updates (x86, and
//! RISC-V Svadu) the MMU writes A into every entry of a successful walk
//! that lacks it (x86 keeps A in upper levels too; RISC-V only in leaves)
//! and D into the leaf on the first store; each write is one more memory
//! reference, counted at its level. Under RISC-V Svade the MMU instead
//! faults ([`PageFaultKind::AccessedDirty`]) and the OS sets the bits.
//!
//! Rights: x86 has no read permission and lets the supervisor touch user
//! pages (SMEP/SMAP off, CR0.WP on); RISC-V needs R for loads and forbids
//! supervisor access to user pages (SUM = 0).
//!
//! This module owns the order of those steps and the counting of walks and
//! faults. It does not change mappings (the kernel does, through
//! [`crate::paging::RadixTable`]) and keeps no per-process state beyond
//! what the TLB caches: the root register is passed in with every access.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{Asid, PageSize, PhysAddr, VirtAddr};
use crate::kernel::TlbControl;
use crate::paging::{Encoding, Entry, Flush, Format, PteFlags, Translation, WalkStep, walk_from};
use crate::phys::{Bitmap, PhysMem};

use super::counters::{Counters, FaultCounters, MAX_WALK_LEVELS, WalkCounters};
use super::entry::{Perms, TlbEntry};
use super::fault::{PageFault, PageFaultKind, Violation};
use super::tlb::Tlb;
use super::tlb_config::{TlbConfig, TlbConfigError};
use super::{AccessKind, Privilege};

/// What the root register (x86 CR3, RISC-V satp) holds: the address space's
/// identifier and the physical address of its root table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RootRegister {
    /// The ASID / PCID the TLB tags entries with.
    pub asid: Asid,
    /// The root page table.
    pub root: PhysAddr,
}

/// Who sets accessed and dirty bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdUpdates {
    /// The MMU writes them into the entries (x86; RISC-V Svadu).
    Hardware,
    /// The MMU faults and the OS writes them (RISC-V Svade).
    Svade,
}

impl AdUpdates {
    /// What the architecture of `format` does by default: Svade on RISC-V,
    /// hardware updates elsewhere.
    #[must_use]
    pub fn for_format(format: &Format) -> Self {
        if matches!(format.encoding(), Encoding::RiscV) {
            Self::Svade
        } else {
            Self::Hardware
        }
    }
}

/// An MMU that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MmuError {
    /// The TLB config is invalid, or does not fit the format's walk.
    #[error(transparent)]
    Config(#[from] TlbConfigError),
    /// No first-level array can hold the format's base pages.
    #[error(
        "TLB config field `levels[0].arrays`: no array holds {size} pages or smaller, so no translation of \
         {format} could ever be cached; add \"{size}\" to a first-level array's page_sizes"
    )]
    Uncacheable {
        /// The format's name.
        format: String,
        /// Its base page size.
        size: PageSize,
    },
}

/// Rights needed and rights forbidden, per access kind and privilege.
type Rules = [[(Perms, Perms); 2]; 3];

fn perms_of(flags: PteFlags) -> Perms {
    let mut p = Perms::empty();
    for (f, q) in [
        (PteFlags::READ, Perms::READ),
        (PteFlags::WRITE, Perms::WRITE),
        (PteFlags::EXEC, Perms::EXECUTE),
        (PteFlags::USER, Perms::USER),
    ] {
        if flags.contains(f) {
            p |= q;
        }
    }
    p
}

fn flags_of(perms: Perms) -> PteFlags {
    let mut f = PteFlags::empty();
    for (q, g) in [
        (Perms::READ, PteFlags::READ),
        (Perms::WRITE, PteFlags::WRITE),
        (Perms::EXECUTE, PteFlags::EXEC),
        (Perms::USER, PteFlags::USER),
    ] {
        if perms.contains(q) {
            f |= g;
        }
    }
    f
}

/// The memory-management unit of one core.
#[derive(Clone, Debug)]
pub struct Mmu {
    format: Format,
    tlb: Tlb,
    ad: AdUpdates,
    riscv: bool,
    rules: Rules,
    walk: WalkCounters,
    faults: FaultCounters,
}

impl Mmu {
    /// An MMU for page tables of `format`, with the TLBs and walk caches of
    /// `tlb`, and accessed/dirty bits set as `ad` says.
    pub fn new(format: Format, tlb: &TlbConfig, ad: AdUpdates) -> Result<Self, MmuError> {
        let shifts: Vec<u32> = format.levels().iter().map(|l| l.shift).collect();
        let built = Tlb::new(tlb, &shifts)?;
        if built.level_count() > 0
            && built
                .arrays(0)
                .iter()
                .all(|a| a.granule_for(format.page_size()).is_none())
        {
            return Err(MmuError::Uncacheable {
                format: format.name().to_owned(),
                size: format.page_size(),
            });
        }
        let riscv = matches!(format.encoding(), Encoding::RiscV);
        let mut rules: Rules = [[(Perms::empty(), Perms::empty()); 2]; 3];
        for access in AccessKind::ALL {
            for (p, privilege) in [Privilege::User, Privilege::Supervisor]
                .into_iter()
                .enumerate()
            {
                let mut needed = match access {
                    AccessKind::Read => Perms::READ,
                    AccessKind::Write => Perms::WRITE,
                    AccessKind::Execute => Perms::EXECUTE,
                };
                let mut forbidden = Perms::empty();
                match privilege {
                    Privilege::User => needed |= Perms::USER,
                    Privilege::Supervisor if riscv => forbidden |= Perms::USER,
                    Privilege::Supervisor => {}
                }
                rules[access.index()][p] = (needed, forbidden);
            }
        }
        Ok(Self {
            format,
            tlb: built,
            ad,
            riscv,
            rules,
            walk: WalkCounters::default(),
            faults: FaultCounters::default(),
        })
    }

    /// Translates `va` for an access of `access` made with `privilege` in the
    /// address space `reg` names. Page-table entries may be written (A/D).
    ///
    /// The TLB-hit path allocates nothing and calls nothing dynamically.
    #[inline]
    pub fn translate<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        reg: RootRegister,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, PageFault> {
        if let Some(hit) = self.tlb.lookup(reg.asid, va, access) {
            let perms = hit.entry.perms();
            if !self.allows(perms, access, privilege) {
                return Err(self.protection_fault(perms, va, access, privilege, None));
            }
            if access == AccessKind::Write && !hit.entry.is_dirty() {
                return self.write_to_clean(mem, reg, va, privilege, hit.entry);
            }
            return Ok(hit.pa);
        }
        self.miss(mem, reg, va, access, privilege)
    }

    #[inline(always)]
    fn allows(&self, perms: Perms, access: AccessKind, privilege: Privilege) -> bool {
        let (needed, forbidden) = self.rules[access.index()][privilege as usize];
        perms.contains(needed) && !perms.intersects(forbidden)
    }

    fn violation(&self, perms: Perms, access: AccessKind, privilege: Privilege) -> Violation {
        if privilege == Privilege::User && !perms.contains(Perms::USER) {
            return Violation::UserToSupervisor;
        }
        if privilege == Privilege::Supervisor && self.riscv && perms.contains(Perms::USER) {
            return Violation::SupervisorToUser;
        }
        match access {
            AccessKind::Read => Violation::ReadNotAllowed,
            AccessKind::Write => Violation::WriteToReadOnly,
            AccessKind::Execute => Violation::ExecuteNoExecute,
        }
    }

    #[cold]
    fn protection_fault(
        &mut self,
        perms: Perms,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        level: Option<u32>,
    ) -> PageFault {
        let kind = PageFaultKind::Protection(self.violation(perms, access, privilege));
        self.fault(PageFault::new(va, access, privilege, kind, level))
    }

    /// Counts `fault` and hands it back.
    fn fault(&mut self, fault: PageFault) -> PageFault {
        let f = &mut self.faults;
        match fault.kind {
            PageFaultKind::NotPresent => f.not_present += 1,
            PageFaultKind::Protection(_) => f.protection += 1,
            PageFaultKind::NonCanonical => f.non_canonical += 1,
            PageFaultKind::ReservedBits(_) => f.reserved_bits += 1,
            PageFaultKind::MisalignedSuperpage => f.misaligned_superpage += 1,
            PageFaultKind::TableOutsideMemory => f.table_outside_memory += 1,
            PageFaultKind::AccessedDirty => f.accessed_dirty += 1,
        }
        fault
    }

    /// Walks the tables for `va`, starting from the deepest walk-cache hit,
    /// counting every entry read and filling the walk caches. The entries
    /// read are left in `steps` (for the A-bit updates).
    fn walk_tables<B: Bitmap>(
        &mut self,
        mem: &PhysMem<B>,
        reg: RootRegister,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        steps: &mut Steps,
    ) -> Result<Translation, PageFault> {
        if self.format.check_address(va).is_err() {
            return Err(self.fault(PageFault::new(
                va,
                access,
                privilege,
                PageFaultKind::NonCanonical,
                None,
            )));
        }
        let tag = self.tlb.tag(reg.asid);
        let (start, table, limits) = match self.tlb.walk_cache_mut().lookup(tag, va) {
            Some(hit) => (hit.depth, hit.table, flags_of(hit.perms)),
            None => (0, reg.root, PteFlags::PERMS),
        };
        let refs = &mut self.walk.refs_by_level;
        let result = walk_from(&self.format, mem, start, table, limits, va, |step| {
            refs[step.idx.min(MAX_WALK_LEVELS - 1)] += 1;
            steps.push(step);
        });
        // Upper-level entries that pointed to a table are cacheable whatever
        // happened below them, as in Intel's paging-structure caches.
        if !self.tlb.walk_cache().is_empty() {
            let mut limits = limits;
            for step in steps.iter() {
                if let Some((addr, l)) = step.next_table {
                    limits &= l;
                    self.tlb
                        .walk_cache_mut()
                        .fill(tag, va, step.idx + 1, addr, perms_of(limits));
                }
            }
        }
        match result {
            Ok(t) => Ok(t),
            Err(e) => {
                let kind = PageFaultKind::from_walk(e.kind);
                Err(self.fault(PageFault::new(va, access, privilege, kind, e.level)))
            }
        }
    }

    /// Sets the accessed bit of every upper-level entry the walk used that
    /// lacks one (x86), and A (and D for a store) in the leaf, counting each
    /// write as a memory reference of its level. Returns whether the leaf is
    /// now dirty (or the format has no dirty bit).
    fn set_accessed_dirty<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        steps: &Steps,
        t: &Translation,
        access: AccessKind,
    ) -> bool {
        let width = self.format.entry_bytes();
        for step in steps.iter().filter(|s| s.next_table.is_some()) {
            let a = self.format.accessed_mask(step.idx, false);
            if a != 0
                && step.raw & a == 0
                && mem.write_le(step.entry_addr, width, step.raw | a).is_ok()
            {
                self.walk.refs_by_level[step.idx.min(MAX_WALK_LEVELS - 1)] += 1;
            }
        }
        let a = self.format.accessed_mask(t.leaf_idx, true);
        let d = if access == AccessKind::Write {
            self.format.dirty_mask()
        } else {
            0
        };
        let raw = t.leaf_raw | a | d;
        if raw != t.leaf_raw && mem.write_le(t.leaf_addr, width, raw).is_ok() {
            self.walk.refs_by_level[t.leaf_idx.min(MAX_WALK_LEVELS - 1)] += 1;
        }
        let dirty_mask = self.format.dirty_mask();
        dirty_mask == 0 || raw & dirty_mask != 0
    }

    /// Under Svade: the fault to raise if A, or D for a store, is clear.
    fn svade_check(
        &mut self,
        t: &Translation,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<(), PageFault> {
        let a = self.format.accessed_mask(t.leaf_idx, true);
        let d = if access == AccessKind::Write {
            self.format.dirty_mask()
        } else {
            0
        };
        if t.leaf_raw & (a | d) == a | d {
            return Ok(());
        }
        let level = self.format.levels().get(t.leaf_idx).map(|l| l.number);
        Err(self.fault(PageFault::new(
            va,
            access,
            privilege,
            PageFaultKind::AccessedDirty,
            level,
        )))
    }

    /// A miss in every TLB level: walk, check, set A/D, cache.
    #[inline(never)]
    fn miss<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        reg: RootRegister,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, PageFault> {
        self.walk.walks += 1;
        let mut steps = Steps::default();
        let t = self.walk_tables(mem, reg, va, access, privilege, &mut steps)?;
        let perms = perms_of(t.flags);
        if !self.allows(perms, access, privilege) {
            let level = self.format.levels().get(t.leaf_idx).map(|l| l.number);
            return Err(self.protection_fault(perms, va, access, privilege, level));
        }
        let dirty = match self.ad {
            AdUpdates::Hardware => self.set_accessed_dirty(mem, &steps, &t, access),
            AdUpdates::Svade => {
                self.svade_check(&t, va, access, privilege)?;
                let d = self.format.dirty_mask();
                d == 0 || t.leaf_raw & d != 0
            }
        };
        let entry = TlbEntry::new(self.tlb.tag(reg.asid), t.page, t.size, t.frame)
            .with_perms(perms)
            .with_global(t.flags.contains(PteFlags::GLOBAL))
            .with_dirty(dirty)
            .with_pte(t.leaf_addr);
        self.tlb.fill(entry, va, access);
        Ok(t.pa)
    }

    /// A store hit a clean TLB entry. Hardware A/D: walk again, check the
    /// entry as it is now, set D, refresh the TLB (x86). Svade: fault.
    #[cold]
    #[inline(never)]
    fn write_to_clean<B: Bitmap>(
        &mut self,
        mem: &mut PhysMem<B>,
        reg: RootRegister,
        va: VirtAddr,
        privilege: Privilege,
        cached: TlbEntry,
    ) -> Result<PhysAddr, PageFault> {
        let access = AccessKind::Write;
        if self.ad == AdUpdates::Svade {
            let level = cached.page_size();
            let number = self
                .format
                .level_for_size(level)
                .and_then(|i| self.format.levels().get(i))
                .map(|l| l.number);
            return Err(self.fault(PageFault::new(
                va,
                access,
                privilege,
                PageFaultKind::AccessedDirty,
                number,
            )));
        }
        self.walk.dirty_walks += 1;
        let mut steps = Steps::default();
        let t = self.walk_tables(mem, reg, va, access, privilege, &mut steps)?;
        let perms = perms_of(t.flags);
        if !self.allows(perms, access, privilege) {
            let level = self.format.levels().get(t.leaf_idx).map(|l| l.number);
            return Err(self.protection_fault(perms, va, access, privilege, level));
        }
        let dirty = self.set_accessed_dirty(mem, &steps, &t, access);
        let entry = TlbEntry::new(self.tlb.tag(reg.asid), t.page, t.size, t.frame)
            .with_perms(perms)
            .with_global(t.flags.contains(PteFlags::GLOBAL))
            .with_dirty(dirty)
            .with_pte(t.leaf_addr);
        self.tlb.update(entry, va, access);
        Ok(t.pa)
    }

    /// The core switches to the address space `asid` (a root-register
    /// write): flushes non-global entries unless the TLB is ASID-tagged.
    pub fn context_switch(&mut self, asid: Asid) {
        self.tlb.context_switch(asid);
    }

    /// The paging format.
    #[must_use]
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Who sets accessed and dirty bits.
    #[must_use]
    pub const fn ad_updates(&self) -> AdUpdates {
        self.ad
    }

    /// The TLB hierarchy (and walk caches).
    #[must_use]
    pub fn tlb(&self) -> &Tlb {
        &self.tlb
    }

    /// The TLB hierarchy, mutably (invalidations).
    pub fn tlb_mut(&mut self) -> &mut Tlb {
        &mut self.tlb
    }

    /// A snapshot of every counter.
    #[must_use]
    pub fn counters(&self) -> Counters {
        Counters {
            tlb: self.tlb.counters(),
            walk_cache: self.tlb.walk_cache().counters().clone(),
            walk: self.walk.clone(),
            faults: self.faults.clone(),
        }
    }

    /// Zeroes every counter; cached translations stay (measure warm).
    pub fn reset_counters(&mut self) {
        self.tlb.reset_counters();
        self.walk = WalkCounters::default();
        self.faults = FaultCounters::default();
    }
}

impl TlbControl for Mmu {
    fn invalidate_page(&mut self, asid: Asid, flush: Flush) {
        self.tlb.invalidate_page(asid, flush.page());
    }

    fn invalidate_asid(&mut self, asid: Asid) {
        self.tlb.invalidate_asid(asid);
    }
}

/// One entry a walk read: what the A-bit updates need.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    idx: usize,
    entry_addr: PhysAddr,
    raw: u64,
    /// For an entry pointing to a table: the table and the entry's limits.
    next_table: Option<(PhysAddr, PteFlags)>,
}

/// The entries one walk read, root first, without allocating.
#[derive(Clone, Copy, Debug, Default)]
struct Steps {
    steps: [Step; MAX_WALK_LEVELS],
    len: usize,
}

impl Steps {
    fn push(&mut self, step: &WalkStep) {
        if self.len < MAX_WALK_LEVELS {
            self.steps[self.len] = Step {
                idx: step.idx,
                entry_addr: step.entry_addr,
                raw: step.raw,
                next_table: match step.entry {
                    Entry::Table { addr, limits } => Some((addr, limits)),
                    _ => None,
                },
            };
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Step> + '_ {
        self.steps[..self.len].iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::{Holds, TlbArrayConfig, TlbLevelConfig};

    #[test]
    fn perms_and_flags_convert_both_ways() {
        for bits in 0..16u8 {
            let perms = Perms::from_bits_truncate(bits);
            assert_eq!(perms_of(flags_of(perms)), perms);
        }
        assert_eq!(
            perms_of(PteFlags::READ | PteFlags::DIRTY | PteFlags::GLOBAL),
            Perms::READ
        );
    }

    #[test]
    fn rules_follow_the_architecture() {
        let tlb = TlbConfig::preset("classroom").expect("preset");
        let x86 = Mmu::new(Format::x86_64(), &tlb, AdUpdates::Hardware).expect("mmu");
        let rv = Mmu::new(Format::sv39(), &tlb, AdUpdates::Svade).expect("mmu");
        let user_rw = Perms::READ | Perms::WRITE | Perms::USER;
        // x86: the supervisor may use user pages (SMAP off); RISC-V forbids it (SUM = 0).
        assert!(x86.allows(user_rw, AccessKind::Write, Privilege::Supervisor));
        assert!(!rv.allows(user_rw, AccessKind::Write, Privilege::Supervisor));
        assert_eq!(
            rv.violation(user_rw, AccessKind::Read, Privilege::Supervisor),
            Violation::SupervisorToUser
        );
        // Both: a user needs U, a store needs W, a fetch needs X.
        assert_eq!(
            x86.violation(Perms::READ, AccessKind::Read, Privilege::User),
            Violation::UserToSupervisor
        );
        assert!(!x86.allows(
            Perms::READ | Perms::USER,
            AccessKind::Write,
            Privilege::User
        ));
        assert!(!rv.allows(user_rw, AccessKind::Execute, Privilege::User));
        assert_eq!(AdUpdates::for_format(&Format::sv39()), AdUpdates::Svade);
        assert_eq!(
            AdUpdates::for_format(&Format::x86_32()),
            AdUpdates::Hardware
        );
    }

    #[test]
    fn a_tlb_that_cannot_hold_the_base_page_is_rejected() {
        let mut config = TlbConfig::default();
        let mut array = TlbArrayConfig::new(8, None, &[PageSize::SIZE_2M]);
        array.holds = Holds::Unified;
        config.levels.push(TlbLevelConfig {
            latency: 1,
            arrays: vec![array],
        });
        let err =
            Mmu::new(Format::x86_64(), &config, AdUpdates::Hardware).expect_err("no 4 KiB array");
        assert!(err.to_string().contains("add \"4 KiB\""), "{err}");
        // A walk cache as deep as the walk (x86-64's PDE cache, depth 3, on
        // 3-level Sv39) is a config error naming the field.
        let config = TlbConfig::preset("x86-64").expect("preset");
        let err = Mmu::new(Format::sv39(), &config, AdUpdates::Svade).expect_err("depth 3 of 3");
        assert!(err.to_string().contains("walk_cache[2].depth"), "{err}");
    }

    #[test]
    fn steps_keep_what_the_accessed_bit_updates_need() {
        let mut steps = Steps::default();
        let entry = Entry::Table {
            addr: PhysAddr::new(0x2000).expect("fits"),
            limits: PteFlags::READ,
        };
        let step = WalkStep {
            level: 4,
            idx: 0,
            table: PhysAddr::new(0x1000).expect("fits"),
            index: 1,
            entry_addr: PhysAddr::new(0x1008).expect("fits"),
            raw: 0x2003,
            entry,
        };
        for _ in 0..MAX_WALK_LEVELS + 2 {
            steps.push(&step);
        }
        assert_eq!(
            steps.iter().count(),
            MAX_WALK_LEVELS,
            "bounded, never reallocates"
        );
        let first = steps.iter().next().expect("one step");
        assert_eq!(
            first.next_table,
            Some((PhysAddr::new(0x2000).expect("fits"), PteFlags::READ))
        );
        assert_eq!((first.raw, first.entry_addr.as_u64()), (0x2003, 0x1008));
    }
}
