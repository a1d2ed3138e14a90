//! Put vmsim's MMU (TLBs, page-walk caches, the x86-64 walker, hardware
//! accessed/dirty bits) in front of memory you own, as an emulator would.
//!
//! The guest RAM is the program's own type: a `Vec<u8>` behind a small
//! wrapper that counts the memory reads the MMU makes. The guest's page
//! tables are written into it as raw bytes, the way a guest kernel writes
//! them; vmsim walks them in place through the [`PhysMemory`] trait.
//!
//!   cargo run -p vmsim --example embed_mmu

use std::cell::Cell;

use vmsim::addr::{Asid, PhysAddr, VirtAddr};
use vmsim::memory::PhysMemory;
use vmsim::mmu::{AccessKind, Mmu, Privilege, TlbConfig};
use vmsim::paging::Format;
use vmsim::phys::MemError;

/// The emulator's guest RAM.
struct GuestRam {
    bytes: Vec<u8>,
    /// Reads the MMU made (page-table entries): counted through `&self`.
    reads: Cell<u64>,
}

impl PhysMemory for GuestRam {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.read(addr, buf)
    }

    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.bytes.write(addr, data)
    }
}

// x86-64 entry bits.
const P: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ram = GuestRam {
        bytes: vec![0; 1 << 20],
        reads: Cell::new(0),
    };
    // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000; the user
    // pages 0x40_0000.. map to frames 0x10_0000.. (64 pages, writable).
    let pa = PhysAddr::new;
    ram.write_le(pa(0x1000)?, 8, 0x2000 | P | RW | US)?;
    ram.write_le(pa(0x2000)?, 8, 0x3000 | P | RW | US)?;
    ram.write_le(pa(0x3000 + 2 * 8)?, 8, 0x4000 | P | RW | US)?;
    for i in 0..64 {
        ram.write_le(
            pa(0x4000 + 8 * i)?,
            8,
            (0x8_0000 + 0x1000 * i) | P | RW | US,
        )?;
    }

    let tlb = TlbConfig::preset("x86-64")?;
    let mut mmu = Mmu::new(Format::x86_64(), &tlb, true)?;
    mmu.set_context(pa(0x1000)?, Asid::new(1));

    // The guest touches its 64 pages, a store every 8th access.
    let mut checksum = 0u64;
    for i in 0..64 * 512u64 {
        let va = VirtAddr::new(0x40_0000 + 8 * i);
        let kind = if i % 8 == 0 {
            AccessKind::Write
        } else {
            AccessKind::Read
        };
        let got = mmu.translate(&mut ram, va, kind, Privilege::User)?;
        checksum = checksum.wrapping_add(got.as_u64());
    }
    let c = mmu.counters();
    let hits: u64 = c.tlb.levels.iter().map(|l| l.hit_count()).sum();
    println!("accesses:          {}", 64 * 512);
    println!("TLB hits:          {hits}");
    println!(
        "page walks:        {} (+{} to set dirty bits)",
        c.walk.walks, c.walk.dirty_walks
    );
    println!(
        "guest RAM reads:   {} (page-table entries)",
        ram.reads.get()
    );
    let leaf = ram.read_le(pa(0x4000)?, 8)?;
    println!(
        "first leaf entry:  {leaf:#x} (accessed {}, dirty {})",
        leaf & A != 0,
        leaf & D != 0
    );
    println!("checksum:          {checksum:#x}");
    assert_eq!(c.walk.walks, 64, "one walk per page");
    assert_eq!(leaf & (A | D), A | D, "the MMU set A and D in guest memory");
    Ok(())
}
