//! Embedding the engine: vmsim's MMU, TLBs and walker in front of memory
//! the caller owns (a plain `Vec<u8>` or a type of its own), through the
//! [`PhysMemory`] trait, as an emulator would use them.

use std::cell::Cell;

use vmsim::addr::{Asid, PageSize, Pfn, PhysAddr, VirtAddr};
use vmsim::alloc::FirstFit;
use vmsim::memory::PhysMemory;
use vmsim::mmu::{AccessKind, Mmu, MmuFaultKind, Privilege, TlbConfig, Violation};
use vmsim::paging::{FaultKind, Format, PteFlags, RadixTable, walk};
use vmsim::phys::{MemError, PhysMem};

// x86-64 entry bits, written by hand the way a guest kernel writes them.
const P: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;

const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;
/// Guest RAM: 4 MiB, room for one 2 MiB superpage at 2 MiB.
const RAM: usize = 4 << 20;

fn pa(x: u64) -> PhysAddr {
    PhysAddr::new(x).expect("physical address")
}

fn va(x: u64) -> VirtAddr {
    VirtAddr::new(x)
}

fn entry(ram: &[u8], at: u64) -> u64 {
    let at = at as usize;
    u64::from_le_bytes(ram[at..at + 8].try_into().expect("8 bytes"))
}

fn set_entry(ram: &mut [u8], at: u64, value: u64) {
    let at = at as usize;
    ram[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// A guest's page tables, written as raw bytes into the test's own RAM:
/// 0x40_0000 -> 0x5000 (user, writable), 0x40_1000 -> 0x6000 (user,
/// read-only), 0x60_0000 -> 0x20_0000 (a 2 MiB supervisor superpage).
fn guest_ram() -> Vec<u8> {
    let mut ram = vec![0u8; RAM];
    set_entry(&mut ram, PML4, PDPT | P | RW | US);
    set_entry(&mut ram, PDPT, PD | P | RW | US);
    set_entry(&mut ram, PD + 2 * 8, PT | P | RW | US);
    set_entry(&mut ram, PD + 3 * 8, 0x20_0000 | P | RW | PS);
    set_entry(&mut ram, PT, 0x5000 | P | RW | US);
    set_entry(&mut ram, PT + 8, 0x6000 | P | US);
    ram
}

fn mmu() -> Mmu {
    let cfg = TlbConfig::preset("x86-64").expect("preset");
    let mut mmu = Mmu::new(Format::x86_64(), &cfg, true).expect("mmu");
    mmu.set_context(pa(PML4), Asid::new(1));
    mmu
}

#[test]
fn the_mmu_walks_tables_in_a_plain_vec_and_sets_accessed_and_dirty_there() {
    let mut ram = guest_ram();
    let mut mmu = mmu();
    let user = Privilege::User;

    // A load: translated, and the accessed bit set at every level in the Vec.
    let got = mmu.translate(&mut ram, va(0x40_0123), AccessKind::Read, user);
    assert_eq!(got, Ok(pa(0x5123)));
    for at in [PML4, PDPT, PD + 2 * 8, PT] {
        assert_ne!(entry(&ram, at) & A, 0, "accessed bit at {at:#x}");
    }
    assert_eq!(entry(&ram, PT) & D, 0, "a load does not dirty the page");

    // A store to the same page: the TLB entry is clean, so the MMU walks
    // again to set the leaf's dirty bit in guest memory.
    let got = mmu.translate(&mut ram, va(0x40_0ff8), AccessKind::Write, user);
    assert_eq!(got, Ok(pa(0x5ff8)));
    assert_ne!(entry(&ram, PT) & D, 0, "dirty bit in the leaf");
    let c = mmu.counters();
    assert_eq!((c.walk.walks, c.walk.dirty_walks), (1, 1));

    // A store to the read-only page is a protection fault; memory unchanged.
    let before = ram.clone();
    let err = mmu
        .translate(&mut ram, va(0x40_1000), AccessKind::Write, user)
        .expect_err("read-only");
    assert_eq!(err.kind, MmuFaultKind::Protection(Violation::Write));
    assert_eq!(
        mmu.translate(&mut ram, va(0x40_1004), AccessKind::Read, user),
        Ok(pa(0x6004))
    );
    assert_eq!(entry(&ram, PT + 8) & D, 0);
    assert_ne!(entry(&ram, PT + 8) & A, 0);
    assert_eq!(
        ram[..PT as usize],
        before[..PT as usize],
        "only the PT changed"
    );

    // The superpage: supervisor only.
    let err = mmu
        .translate(&mut ram, va(0x60_0000), AccessKind::Read, user)
        .expect_err("supervisor page");
    assert_eq!(err.kind, MmuFaultKind::Protection(Violation::User));
    let got = mmu.translate(
        &mut ram,
        va(0x7f_fffc),
        AccessKind::Read,
        Privilege::Supervisor,
    );
    assert_eq!(got, Ok(pa(0x3f_fffc)));

    // An unmapped page faults at the level whose entry is empty (the PT).
    let err = mmu
        .translate(&mut ram, va(0x40_2000), AccessKind::Read, user)
        .expect_err("unmapped");
    assert_eq!(err.kind, MmuFaultKind::Walk(FaultKind::NotPresent));
    assert_eq!(err.level, Some(1));

    // The guest edits its table (unmaps 0x40_0000): the cached translation
    // stays until the guest invalidates it, as on real hardware.
    set_entry(&mut ram, PT, 0);
    assert_eq!(
        mmu.translate(&mut ram, va(0x40_0000), AccessKind::Read, user),
        Ok(pa(0x5000))
    );
    mmu.tlb_mut().invalidate_page(Asid::new(1), va(0x40_0000));
    let err = mmu
        .translate(&mut ram, va(0x40_0000), AccessKind::Read, user)
        .expect_err("unmapped after invlpg");
    assert_eq!(err.kind, MmuFaultKind::Walk(FaultKind::NotPresent));
}

#[test]
fn a_table_pointing_outside_the_vec_is_a_fault_not_a_panic() {
    let mut ram = guest_ram();
    set_entry(&mut ram, PD + 2 * 8, 0x7f_f000_0000 | P | RW | US);
    let mut mmu = mmu();
    let err = mmu
        .translate(&mut ram, va(0x40_0000), AccessKind::Read, Privilege::User)
        .expect_err("table outside memory");
    assert_eq!(err.kind, MmuFaultKind::Walk(FaultKind::TableOutsideMemory));
}

/// A caller's own memory type: a byte buffer that counts the reads and
/// writes the engine makes (an emulator's device model would do real work).
struct CountingRam {
    bytes: Vec<u8>,
    reads: Cell<u64>,
    writes: u64,
}

impl PhysMemory for CountingRam {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.read(addr, buf)
    }

    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.writes += 1;
        self.bytes.write(addr, data)
    }
}

#[test]
fn a_tlb_hit_touches_no_memory_and_a_miss_reads_one_entry_per_level() {
    let mut ram = CountingRam {
        bytes: guest_ram(),
        reads: Cell::new(0),
        writes: 0,
    };
    let mut mmu = mmu();
    let user = Privilege::User;
    let got = mmu.translate(&mut ram, va(0x40_0010), AccessKind::Read, user);
    assert_eq!(got, Ok(pa(0x5010)));
    assert_eq!(ram.reads.get(), 4, "four levels read on a miss");
    assert_eq!(ram.writes, 4, "accessed bit set in four entries");
    for off in (0..4096).step_by(64) {
        let got = mmu.translate(&mut ram, va(0x40_0000 + off), AccessKind::Read, user);
        assert_eq!(got, Ok(pa(0x5000 + off)));
    }
    assert_eq!(ram.reads.get(), 4, "hits read nothing");
    assert_eq!(ram.writes, 4);
    // The next page shares every table: the page-walk caches skip to the
    // last level, so the miss reads just the leaf (and sets its A bit).
    let got = mmu.translate(&mut ram, va(0x40_1000), AccessKind::Read, user);
    assert_eq!(got, Ok(pa(0x6000)));
    assert_eq!(ram.reads.get(), 5);
    assert_eq!(ram.writes, 5);
}

/// The engine's table builder writes the same bytes into a `Vec<u8>` as
/// into its own sparse memory, and the walker reads them back from a slice.
#[test]
fn radix_tables_built_in_a_vec_match_those_built_in_physmem() {
    let fmt = Format::sv39();
    let frames = 256u64;
    let mut v = vec![0u8; (frames * 4096) as usize];
    let mut p: PhysMem = PhysMem::new(frames * 4096).expect("memory");
    let mut alloc_v = FirstFit::new(PageSize::SIZE_4K, Pfn::new(16), frames - 16);
    let mut alloc_p = alloc_v.clone();
    let tv = RadixTable::new(&fmt, &mut v, &mut alloc_v).expect("root");
    let tp = RadixTable::new(&fmt, &mut p, &mut alloc_p).expect("root");
    assert_eq!(tv.root(), tp.root());
    let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
    let maps = [
        (0x1000u64, 0x1000u64, PageSize::SIZE_4K, rw),
        (0x3f_ffff_f000, 0x2000, PageSize::SIZE_4K, PteFlags::READ),
        (0x4020_0000, 0x20_0000, PageSize::SIZE_2M, rw),
    ];
    for (vaddr, frame, size, flags) in maps {
        tv.map(
            &fmt,
            &mut v,
            &mut alloc_v,
            va(vaddr),
            pa(frame),
            size,
            flags,
        )
        .expect("map")
        .ignore();
        tp.map(
            &fmt,
            &mut p,
            &mut alloc_p,
            va(vaddr),
            pa(frame),
            size,
            flags,
        )
        .expect("map")
        .ignore();
    }
    let mut back = vec![0u8; v.len()];
    p.read(pa(0), &mut back).expect("read");
    assert!(back == v, "the same table bytes in both memories");
    for (vaddr, frame, size, _) in maps {
        let t = walk(&fmt, v.as_slice(), tv.root(), va(vaddr + 8), |_| {}).expect("mapped");
        assert_eq!((t.pa, t.size), (pa(frame + 8), size));
    }
    let leaves = tv.leaves(&fmt, &v).expect("leaves");
    assert_eq!(leaves.len(), 3);
    assert_eq!(leaves, tp.leaves(&fmt, &p).expect("leaves"));
}
