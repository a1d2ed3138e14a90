//! The MMU, its TLBs and page-walk caches, on real page tables in simulated
//! physical memory: course example A13, walk costs with and without walk
//! caches, faults and error codes, accessed/dirty bits (hardware and
//! Svade), stale entries, and model tests against a map from (ASID, VPN) to
//! entry over random operation sequences.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vmsim::addr::{Asid, PageSize, Pfn, PhysAddr, VirtAddr};
use vmsim::alloc::FirstFit;
use vmsim::mmu::{
    AccessKind, AdUpdates, Counters, Mmu, PageFault, PageFaultKind, Privilege, RootRegister,
    TlbConfig, Violation,
};
use vmsim::paging::{Format, PteFlags, RadixTable};
use vmsim::phys::PhysMem;

/// Page tables come from frames 0..4096 (16 MiB); data frames are named
/// above that and never touched (translation does not read data).
const TABLE_FRAMES: u64 = 4096;
const MEM_BYTES: u64 = 1 << 34;

struct Machine {
    fmt: Format,
    mem: PhysMem,
    alloc: FirstFit,
    mmu: Mmu,
}

impl Machine {
    fn new(fmt: &str, tlb: &str, ad: Option<AdUpdates>) -> Self {
        let fmt = Format::by_name(fmt).expect("format");
        let tlb = TlbConfig::preset(tlb).expect("tlb preset");
        let ad = ad.unwrap_or_else(|| AdUpdates::for_format(&fmt));
        Self {
            mem: PhysMem::new(MEM_BYTES).expect("memory"),
            alloc: FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), TABLE_FRAMES - 1),
            mmu: Mmu::new(fmt.clone(), &tlb, ad).expect("mmu"),
            fmt,
        }
    }

    fn table(&mut self) -> RadixTable {
        RadixTable::new(&self.fmt, &mut self.mem, &mut self.alloc).expect("root")
    }

    fn map(&mut self, t: RadixTable, va: u64, frame: u64, size: PageSize, flags: PteFlags) {
        let frame = PhysAddr::new(frame).expect("frame");
        t.map(
            &self.fmt,
            &mut self.mem,
            &mut self.alloc,
            VirtAddr::new(va),
            frame,
            size,
            flags,
        )
        .expect("map")
        .ignore();
    }

    fn access(
        &mut self,
        reg: RootRegister,
        va: u64,
        kind: AccessKind,
    ) -> Result<PhysAddr, PageFault> {
        self.mmu
            .translate(&mut self.mem, reg, VirtAddr::new(va), kind, Privilege::User)
    }

    fn leaf_flags(&self, t: RadixTable, va: u64) -> PteFlags {
        t.translate(&self.fmt, &self.mem, VirtAddr::new(va))
            .expect("mapped")
            .flags
    }
}

const RW_USER: PteFlags = PteFlags::READ.union(PteFlags::WRITE).union(PteFlags::USER);
const DATA: u64 = 1 << 32;

fn reg(asid: u16, t: RadixTable) -> RootRegister {
    RootRegister {
        asid: Asid::new(asid),
        root: t.root(),
    }
}

fn total_tlb_hits(c: &Counters) -> u64 {
    c.tlb.levels.iter().map(|l| l.hit_count()).sum()
}

/// Scans `pages` pages of 4 KiB as 4-byte ints, checking every translation.
fn scan_ints(
    m: &mut Machine,
    r: RootRegister,
    base: u64,
    pages: u64,
    frame_of: impl Fn(u64) -> u64,
) {
    for i in 0..pages * 1024 {
        let va = base + i * 4;
        let pa = m.access(r, va, AccessKind::Read).expect("mapped");
        assert_eq!(
            pa.as_u64(),
            frame_of(va - base) + (va - base) % 4096,
            "va {va:#x}"
        );
    }
}

#[test]
fn a13_sequential_int_scan_4k_pages() {
    // Course example A13: 1024 ints per page, 1 miss then 1023 hits per page.
    for tlb in ["x86-64", "core-i7", "classroom"] {
        let mut m = Machine::new("x86-64", tlb, None);
        let t = m.table();
        let pages = 64;
        for p in 0..pages {
            m.map(
                t,
                0x40_0000 + p * 4096,
                DATA + p * 4096,
                PageSize::SIZE_4K,
                RW_USER,
            );
        }
        scan_ints(&mut m, reg(1, t), 0x40_0000, pages, |off| {
            DATA + off / 4096 * 4096
        });
        let c = m.mmu.counters();
        assert_eq!(c.walk.walks, pages, "{tlb}: one walk per page");
        assert_eq!(
            total_tlb_hits(&c),
            1023 * pages,
            "{tlb}: 1023 hits per page"
        );
        assert_eq!(
            c.tlb.levels[0].hit_count(),
            1023 * pages,
            "{tlb}: all in the first level"
        );
        assert_eq!(c.accesses(), 1024 * pages);
        assert_eq!(c.faults.total(), 0);
    }
}

#[test]
fn a13_with_2m_pages_walks_once_per_512_base_pages() {
    let mut m = Machine::new("x86-64", "x86-64", None);
    let t = m.table();
    let n = 1024; // 4 KiB pages' worth: 4 MiB
    for p in 0..n / 512 {
        m.map(
            t,
            (1 << 30) + p * (2 << 20),
            DATA + p * (2 << 20),
            PageSize::SIZE_2M,
            RW_USER,
        );
    }
    scan_ints(&mut m, reg(1, t), 1 << 30, n, |off| {
        DATA + off / 4096 * 4096
    });
    let c = m.mmu.counters();
    assert_eq!(c.walk.walks, n / 512);
    assert_eq!(total_tlb_hits(&c), n * 1024 - n / 512);
    assert_eq!(
        c.tlb.levels[0].hits.get(PageSize::SIZE_2M),
        n * 1024 - n / 512
    );
}

/// Maps `pages` 4 KiB pages from 1 GiB, scans them once to set the accessed
/// bits, flushes every cache, zeroes the counters and scans again touching
/// one int per page: the second pass's counts are the cost of cold walks.
fn cold_walk_counts(tlb: &str, pages: u64) -> Counters {
    let mut m = Machine::new("x86-64", tlb, None);
    let t = m.table();
    for p in 0..pages {
        m.map(
            t,
            (1 << 30) + p * 4096,
            DATA + p * 4096,
            PageSize::SIZE_4K,
            RW_USER,
        );
    }
    let r = reg(1, t);
    for p in 0..pages {
        m.access(r, (1 << 30) + p * 4096, AccessKind::Read)
            .expect("mapped");
    }
    m.mmu.tlb_mut().invalidate_all();
    m.mmu.reset_counters();
    for p in 0..pages {
        m.access(r, (1 << 30) + p * 4096 + 8, AccessKind::Read)
            .expect("mapped");
    }
    m.mmu.counters()
}

#[test]
fn a_four_level_walk_costs_four_references_without_walk_caches() {
    let c = cold_walk_counts("core-i7", 2048);
    assert_eq!(c.walk.walks, 2048);
    assert_eq!(c.walk.refs_by_level[..4], [2048; 4]);
    assert_eq!(
        c.walk.refs(),
        4 * 2048,
        "no A/D write-backs: the bits were already set"
    );
    assert_eq!(c.walk.refs_per_walk(), Some(4.0));
    assert_eq!(c.walk_cache.lookups, 0);
}

#[test]
fn warm_walk_caches_make_walks_cheaper() {
    // 4096 pages = 8 regions of 2 MiB in one 1 GiB region. With the
    // Skylake-like caches (PML4E 2, PDPTE 4, PDE 32): the first walk reads
    // all 4 levels, the first walk of each further 2 MiB region hits the
    // PDPTE cache (2 reads), every other walk hits the PDE cache (1 read).
    let pages = 4096;
    let c = cold_walk_counts("x86-64", pages);
    assert_eq!(c.walk.walks, pages);
    assert_eq!(c.walk_cache.misses, 1);
    assert_eq!(c.walk_cache.hits_by_depth[2], 7);
    assert_eq!(c.walk_cache.hits_by_depth[3], pages - 8);
    assert_eq!(c.walk.refs(), 4 + 7 * 2 + (pages - 8));
    assert_eq!(c.walk.refs_by_level[3], pages, "every walk reads its leaf");
    let average = c.walk.refs_per_walk().expect("walked");
    assert!(
        average < 1.01 && average > 1.0,
        "measured {average} references per walk"
    );
    let without = cold_walk_counts("core-i7", pages)
        .walk
        .refs_per_walk()
        .expect("walked");
    assert!(average < without);
    // The effective access time falls with it.
    let eat_with = c.effective_access_time(100.0).expect("accesses");
    let eat_without = cold_walk_counts("core-i7", pages)
        .effective_access_time(100.0)
        .expect("accesses");
    assert!(eat_with < eat_without, "{eat_with} vs {eat_without}");
}

#[test]
fn faults_carry_kind_level_address_and_error_code() {
    let mut m = Machine::new("x86-64", "x86-64", None);
    let t = m.table();
    let r = reg(1, t);
    // Nothing mapped: the PML4 entry is missing (level 4).
    let f = m.access(r, 0x1234, AccessKind::Read).expect_err("unmapped");
    assert_eq!(
        (f.kind, f.level, f.va, f.code.bits()),
        (
            PageFaultKind::NotPresent,
            Some(4),
            VirtAddr::new(0x1234),
            0x4
        )
    );
    // A neighbour mapped: now the PTE is what is missing (level 1).
    m.map(
        t,
        0x2000,
        DATA,
        PageSize::SIZE_4K,
        PteFlags::READ | PteFlags::USER,
    );
    let f = m
        .access(r, 0x3000, AccessKind::Write)
        .expect_err("unmapped");
    assert_eq!(
        (f.kind, f.level, f.code.bits()),
        (PageFaultKind::NotPresent, Some(1), 0x6)
    );
    // Write to read-only: P W U. First from a walk, then from a TLB hit.
    let f = m
        .access(r, 0x2000, AccessKind::Write)
        .expect_err("read-only");
    assert_eq!(
        f.kind,
        PageFaultKind::Protection(Violation::WriteToReadOnly)
    );
    assert_eq!(f.code.bits(), 0x7);
    m.access(r, 0x2000, AccessKind::Read).expect("readable");
    let f = m
        .access(r, 0x2000, AccessKind::Write)
        .expect_err("read-only, cached");
    assert_eq!(
        (f.kind, f.level),
        (PageFaultKind::Protection(Violation::WriteToReadOnly), None)
    );
    // Execute a no-execute page: P U I.
    let f = m.access(r, 0x2000, AccessKind::Execute).expect_err("NX");
    assert_eq!(
        (f.kind, f.code.bits()),
        (PageFaultKind::Protection(Violation::ExecuteNoExecute), 0x15)
    );
    // User access to a supervisor page; the supervisor may.
    m.map(
        t,
        0x5000,
        DATA + 0x5000,
        PageSize::SIZE_4K,
        PteFlags::READ | PteFlags::WRITE,
    );
    let f = m
        .access(r, 0x5000, AccessKind::Read)
        .expect_err("supervisor page");
    assert_eq!(
        f.kind,
        PageFaultKind::Protection(Violation::UserToSupervisor)
    );
    assert!(
        m.mmu
            .translate(
                &mut m.mem,
                r,
                VirtAddr::new(0x5000),
                AccessKind::Write,
                Privilege::Supervisor
            )
            .is_ok()
    );
    // Non-canonical.
    let f = m
        .access(r, 0x8000_0000_0000, AccessKind::Read)
        .expect_err("non-canonical");
    assert_eq!((f.kind, f.level), (PageFaultKind::NonCanonical, None));
    // Reserved bits: set bit 51 (above MAXPHYADDR 52? use a PS bit in a PML4E instead).
    let pml4e = t.root();
    let raw = m.mem.read_le(pml4e, 8).expect("root entry");
    m.mem.write_le(pml4e, 8, raw | 1 << 7).expect("write");
    m.mmu.tlb_mut().invalidate_all();
    let f = m
        .access(r, 0x2000, AccessKind::Read)
        .expect_err("PS in a PML4E");
    assert!(matches!(f.kind, PageFaultKind::ReservedBits(_)), "{f}");
    assert_eq!((f.level, f.code.bits() & 0x9), (Some(4), 0x9));
    m.mem.write_le(pml4e, 8, raw).expect("restore");
    // Misaligned superpage: a 2 MiB leaf whose frame is only 4 KiB aligned.
    m.map(t, 1 << 30, DATA, PageSize::SIZE_2M, RW_USER);
    let walk = t
        .translate(&m.fmt, &m.mem, VirtAddr::new(1 << 30))
        .expect("mapped");
    m.mem
        .write_le(walk.leaf_addr, 8, walk.leaf_raw | 0x2000)
        .expect("write");
    let f = m
        .access(r, 1 << 30, AccessKind::Read)
        .expect_err("misaligned");
    assert_eq!(
        (f.kind, f.level),
        (
            PageFaultKind::ReservedBits("reserved address bits of a large-page entry are set"),
            Some(2)
        )
    );
    let c = m.mmu.counters();
    assert_eq!(c.faults.not_present, 2);
    assert_eq!(c.faults.protection, 4);
    assert_eq!(c.faults.non_canonical, 1);
    assert_eq!(c.faults.reserved_bits, 2);
}

#[test]
fn hardware_sets_accessed_then_dirty_walking_again_for_a_clean_hit() {
    let mut m = Machine::new("x86-64", "x86-64", None);
    let t = m.table();
    let r = reg(1, t);
    m.map(t, 0x7000, DATA, PageSize::SIZE_4K, RW_USER);
    assert!(!m.leaf_flags(t, 0x7000).contains(PteFlags::ACCESSED));
    m.access(r, 0x7000, AccessKind::Read).expect("read");
    let flags = m.leaf_flags(t, 0x7000);
    assert!(flags.contains(PteFlags::ACCESSED) && !flags.contains(PteFlags::DIRTY));
    // A write hits the clean cached entry: the MMU walks again to set D.
    m.access(r, 0x7004, AccessKind::Write).expect("write");
    assert!(m.leaf_flags(t, 0x7000).contains(PteFlags::DIRTY));
    let c = m.mmu.counters();
    assert_eq!((c.walk.walks, c.walk.dirty_walks), (1, 1));
    // The refreshed entry is dirty: further writes hit without walking.
    m.access(r, 0x7008, AccessKind::Write).expect("write");
    assert_eq!(m.mmu.counters().walk.dirty_walks, 1);
    // The first walk read 4 entries and wrote A into the 3 upper ones and
    // the leaf; the dirty walk started from the PDE cache (1 read) and
    // wrote D (1 write).
    assert_eq!(c.walk.refs(), 4 + 3 + 1 + 1 + 1);
    assert_eq!(c.walk_cache.hits_by_depth[3], 1);
}

#[test]
fn a_first_write_sets_accessed_and_dirty_together() {
    let mut m = Machine::new("x86-64", "core-i7", None);
    let t = m.table();
    m.map(t, 0x7000, DATA, PageSize::SIZE_4K, RW_USER);
    m.access(reg(1, t), 0x7000, AccessKind::Write)
        .expect("write");
    let flags = m.leaf_flags(t, 0x7000);
    assert!(flags.contains(PteFlags::ACCESSED | PteFlags::DIRTY));
    assert_eq!(m.mmu.counters().walk.dirty_walks, 0);
}

#[test]
fn svade_faults_until_the_os_sets_the_bits() {
    let mut m = Machine::new("sv39", "riscv-sv39", None);
    assert_eq!(m.mmu.ad_updates(), AdUpdates::Svade);
    let t = m.table();
    let r = reg(3, t);
    m.map(t, 0x7000, DATA, PageSize::SIZE_4K, RW_USER);
    let f = m.access(r, 0x7000, AccessKind::Read).expect_err("A clear");
    assert_eq!(
        (f.kind, f.level, f.riscv_cause()),
        (PageFaultKind::AccessedDirty, Some(0), 13)
    );
    // The OS sets A (as the kernel's handler does), then the read works.
    let w = t
        .translate(&m.fmt, &m.mem, VirtAddr::new(0x7000))
        .expect("mapped");
    m.mem
        .write_le(
            w.leaf_addr,
            8,
            w.leaf_raw | m.fmt.accessed_mask(w.leaf_idx, true),
        )
        .expect("write");
    m.access(r, 0x7000, AccessKind::Read).expect("A set");
    // A store to the clean cached entry faults, without a walk.
    let f = m.access(r, 0x7000, AccessKind::Write).expect_err("D clear");
    assert_eq!(
        (f.kind, f.riscv_cause()),
        (PageFaultKind::AccessedDirty, 15)
    );
    assert_eq!(m.mmu.counters().walk.dirty_walks, 0);
    let raw = m.mem.read_le(w.leaf_addr, 8).expect("read");
    m.mem
        .write_le(w.leaf_addr, 8, raw | m.fmt.dirty_mask())
        .expect("write");
    m.mmu
        .tlb_mut()
        .invalidate_page(Asid::new(3), VirtAddr::new(0x7000));
    m.access(r, 0x7000, AccessKind::Write).expect("D set");
    assert_eq!(m.mmu.counters().faults.accessed_dirty, 2);
    // Hardware updates on the same format are an option.
    let mut h = Machine::new("sv39", "riscv-sv39", Some(AdUpdates::Hardware));
    let t = h.table();
    h.map(t, 0x7000, DATA, PageSize::SIZE_4K, RW_USER);
    h.access(reg(3, t), 0x7000, AccessKind::Write)
        .expect("hardware sets A and D");
    assert!(
        h.leaf_flags(t, 0x7000)
            .contains(PteFlags::ACCESSED | PteFlags::DIRTY)
    );
}

#[test]
fn supervisor_may_not_touch_user_pages_on_riscv() {
    let mut m = Machine::new("sv39", "riscv-sv39", Some(AdUpdates::Hardware));
    let t = m.table();
    m.map(t, 0x7000, DATA, PageSize::SIZE_4K, RW_USER);
    let f = m
        .mmu
        .translate(
            &mut m.mem,
            reg(1, t),
            VirtAddr::new(0x7000),
            AccessKind::Read,
            Privilege::Supervisor,
        )
        .expect_err("SUM = 0");
    assert_eq!(
        f.kind,
        PageFaultKind::Protection(Violation::SupervisorToUser)
    );
}

#[test]
fn stale_entries_stay_usable_until_invalidated_and_globals_survive_asid_flushes() {
    let mut m = Machine::new("x86-64", "x86-64", None);
    let t = m.table();
    let r = reg(1, t);
    m.map(t, 0x9000, DATA, PageSize::SIZE_4K, RW_USER);
    assert_eq!(
        m.access(r, 0x9010, AccessKind::Read).map(|p| p.as_u64()),
        Ok(DATA + 0x10)
    );
    let unmapped = t
        .unmap(&m.fmt, &mut m.mem, &mut m.alloc, VirtAddr::new(0x9000))
        .expect("unmap");
    m.map(t, 0x9000, DATA + 0x10_0000, PageSize::SIZE_4K, RW_USER);
    // No invalidation: the old frame is still used, as on real hardware.
    assert_eq!(
        m.access(r, 0x9010, AccessKind::Read).map(|p| p.as_u64()),
        Ok(DATA + 0x10)
    );
    vmsim::kernel::TlbControl::invalidate_page(&mut m.mmu, Asid::new(1), unmapped.flush);
    assert_eq!(
        m.access(r, 0x9010, AccessKind::Read).map(|p| p.as_u64()),
        Ok(DATA + 0x10_0010)
    );

    // A global kernel page loaded by ASID 1 serves ASID 2 and survives its flush.
    let kernel = 0xffff_8000_0000_0000;
    m.map(
        t,
        kernel,
        DATA + 0x20_0000,
        PageSize::SIZE_4K,
        PteFlags::READ | PteFlags::GLOBAL,
    );
    m.mmu
        .translate(
            &mut m.mem,
            r,
            VirtAddr::new(kernel),
            AccessKind::Read,
            Privilege::Supervisor,
        )
        .expect("kernel");
    let other = RootRegister {
        asid: Asid::new(2),
        root: PhysAddr::new(0).expect("0"),
    };
    m.mmu.tlb_mut().invalidate_asid(Asid::new(2));
    m.mmu.tlb_mut().invalidate_non_global();
    let pa = m.mmu.translate(
        &mut m.mem,
        other,
        VirtAddr::new(kernel),
        AccessKind::Read,
        Privilege::Supervisor,
    );
    assert_eq!(
        pa.map(|p| p.as_u64()),
        Ok(DATA + 0x20_0000),
        "served from the global TLB entry"
    );
}

// ---------------------------------------------------------------------------
// Model tests.

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Op {
    Access {
        asid: usize,
        page: u64,
        offset: u64,
        kind: AccessKind,
    },
    /// Map, or remap to another frame / other rights if mapped.
    Map {
        asid: usize,
        page: u64,
        frame: u64,
        writable: bool,
        invalidate: bool,
    },
    Unmap {
        asid: usize,
        page: u64,
        invalidate: bool,
    },
    FlushAsid {
        asid: usize,
    },
    FlushAll,
}

const SPACES: usize = 3;
const PAGES: u64 = 24;

fn page_va(page: u64) -> u64 {
    // Spread over several 2 MiB and 1 GiB regions so walk caches matter.
    (page % 4) << 30 | (page / 4 % 3) << 21 | (page / 12) << 12
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(AccessKind::Read),
        Just(AccessKind::Write),
        Just(AccessKind::Execute)
    ];
    prop_oneof![
        8 => (0..SPACES, 0..PAGES, 0..4096u64, kind).prop_map(|(asid, page, offset, kind)| Op::Access { asid, page, offset, kind }),
        3 => (0..SPACES, 0..PAGES, 0..64u64, any::<bool>(), any::<bool>())
            .prop_map(|(asid, page, frame, writable, invalidate)| Op::Map { asid, page, frame, writable, invalidate }),
        2 => (0..SPACES, 0..PAGES, any::<bool>()).prop_map(|(asid, page, invalidate)| Op::Unmap { asid, page, invalidate }),
        1 => (0..SPACES).prop_map(|asid| Op::FlushAsid { asid }),
        1 => Just(Op::FlushAll),
    ]
}

/// What the model says a mapping is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Mapping {
    frame: u64,
    writable: bool,
}

/// The reference model: the current mapping per (ASID, VPN), and per key
/// the older mappings a TLB may still hold because nobody invalidated them.
#[derive(Default)]
struct Model {
    current: BTreeMap<(usize, u64), Mapping>,
    stale: BTreeMap<(usize, u64), BTreeSet<Mapping>>,
}

fn outcome(m: Option<Mapping>, offset: u64, kind: AccessKind) -> Result<u64, &'static str> {
    match m {
        None => Err("not present"),
        Some(m) if kind == AccessKind::Write && !m.writable => Err("protection"),
        Some(m) if kind == AccessKind::Execute => {
            let _ = m;
            Err("protection")
        }
        Some(m) => Ok(DATA + m.frame * 4096 + offset),
    }
}

fn observed(r: &Result<PhysAddr, PageFault>) -> Result<u64, &'static str> {
    match r {
        Ok(pa) => Ok(pa.as_u64()),
        Err(f) => match f.kind {
            PageFaultKind::NotPresent => Err("not present"),
            PageFaultKind::Protection(_) => Err("protection"),
            _ => Err("other"),
        },
    }
}

/// Runs `ops` on a machine with `tlb`, checking each access against the
/// model. With `always_invalidate`, every change is followed by an
/// invalidation and the result must be exactly the current mapping's, and
/// A/D bits must be set in memory after a successful access; otherwise it
/// may also be any stale mapping's. Returns every result and the counters.
fn run_model(
    tlb: &str,
    ops: &[Op],
    always_invalidate: bool,
    memo: bool,
) -> (Vec<Result<u64, &'static str>>, Counters) {
    let mut m = Machine::new("x86-64", tlb, None);
    if !memo {
        let plain = m.mmu.tlb().clone().with_last_hit_memo(false);
        *m.mmu.tlb_mut() = plain;
    }
    let tables: Vec<RadixTable> = (0..SPACES).map(|_| m.table()).collect();
    let mut model = Model::default();
    let mut results = Vec::new();
    for op in ops {
        match *op {
            Op::Access {
                asid,
                page,
                offset,
                kind,
            } => {
                let r = reg(asid as u16 + 1, tables[asid]);
                let va = page_va(page) + offset;
                let got = m.access(r, va, kind);
                let key = (asid, page);
                let cur = outcome(model.current.get(&key).copied(), offset, kind);
                let obs = observed(&got);
                if always_invalidate {
                    assert_eq!(obs, cur, "{op:?}");
                } else {
                    let stale = model.stale.get(&key).into_iter().flatten();
                    let allowed: Vec<_> = std::iter::once(cur)
                        .chain(stale.map(|s| outcome(Some(*s), offset, kind)))
                        .collect();
                    assert!(
                        allowed.contains(&obs),
                        "{op:?}: got {obs:?}, allowed {allowed:?}"
                    );
                }
                if always_invalidate && got.is_ok() {
                    let flags = m.leaf_flags(tables[asid], page_va(page));
                    assert!(flags.contains(PteFlags::ACCESSED), "{op:?}: A not set");
                    if kind == AccessKind::Write {
                        assert!(flags.contains(PteFlags::DIRTY), "{op:?}: D not set");
                    }
                }
                results.push(obs);
            }
            Op::Map {
                asid,
                page,
                frame,
                writable,
                invalidate,
            } => {
                let invalidate = invalidate || always_invalidate;
                let t = tables[asid];
                let va = VirtAddr::new(page_va(page));
                let key = (asid, page);
                if let Some(old) = model.current.get(&key).copied() {
                    let u = t
                        .unmap(&m.fmt, &mut m.mem, &mut m.alloc, va)
                        .expect("mapped");
                    m.mmu.tlb_mut().walk_cache_mut().invalidate_all(); // as above
                    if invalidate {
                        vmsim::kernel::TlbControl::invalidate_page(
                            &mut m.mmu,
                            Asid::new(asid as u16 + 1),
                            u.flush,
                        );
                        model.stale.remove(&key);
                    } else {
                        model.stale.entry(key).or_default().insert(old);
                    }
                }
                let flags = if writable {
                    RW_USER
                } else {
                    PteFlags::READ | PteFlags::USER
                };
                m.map(
                    t,
                    va.as_u64(),
                    DATA + frame * 4096,
                    PageSize::SIZE_4K,
                    flags,
                );
                model.current.insert(key, Mapping { frame, writable });
            }
            Op::Unmap {
                asid,
                page,
                invalidate,
            } => {
                let invalidate = invalidate || always_invalidate;
                let key = (asid, page);
                if let Some(old) = model.current.remove(&key) {
                    let va = VirtAddr::new(page_va(page));
                    let u = tables[asid]
                        .unmap(&m.fmt, &mut m.mem, &mut m.alloc, va)
                        .expect("mapped");
                    // Unmapping may free a page table whose frame is then
                    // reused; an OS must flush the walk caches before that
                    // (Linux does, freeing page tables), whatever it does
                    // about the leaf. Leaf staleness is what is modelled here.
                    m.mmu.tlb_mut().walk_cache_mut().invalidate_all();
                    if invalidate {
                        vmsim::kernel::TlbControl::invalidate_page(
                            &mut m.mmu,
                            Asid::new(asid as u16 + 1),
                            u.flush,
                        );
                        model.stale.remove(&key);
                    } else {
                        model.stale.entry(key).or_default().insert(old);
                    }
                }
            }
            Op::FlushAsid { asid } => {
                m.mmu.tlb_mut().invalidate_asid(Asid::new(asid as u16 + 1));
                model.stale.retain(|&(a, _), _| a != asid);
            }
            Op::FlushAll => {
                m.mmu.tlb_mut().invalidate_all();
                model.stale.clear();
            }
        }
    }
    (results, m.mmu.counters())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mmu_matches_the_model_when_every_change_is_invalidated(ops in prop::collection::vec(op(), 1..160)) {
        for tlb in ["x86-64", "classroom"] {
            run_model(tlb, &ops, true, true);
        }
    }

    #[test]
    fn without_invalidation_only_stale_mappings_may_show(ops in prop::collection::vec(op(), 1..160)) {
        for tlb in ["x86-64", "core-i7", "riscv-sv39"] {
            run_model(tlb, &ops, false, true);
        }
    }

    #[test]
    fn the_last_hit_memo_changes_nothing(ops in prop::collection::vec(op(), 1..160)) {
        for tlb in ["x86-64", "classroom"] {
            let with = run_model(tlb, &ops, false, true);
            let without = run_model(tlb, &ops, false, false);
            prop_assert_eq!(&with.0, &without.0);
            prop_assert_eq!(&with.1, &without.1);
        }
    }
}
