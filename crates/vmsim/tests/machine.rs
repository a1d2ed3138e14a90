//! The machine façade: translate, handle the fault, retry — with vmsim's
//! kernel as the handler over memory the test owns, and with a handler the
//! test writes itself (an emulator's guest OS).

use vmsim::addr::{PageSize, PhysAddr, VirtAddr};
use vmsim::kernel::{FaultResolution, Kernel, KernelConfig, Layout, MmapFlags, Prot, SegvReason};
use vmsim::machine::{AccessError, FaultHandler, Handled, KernelFaults, Machine, RETRY_LIMIT};
use vmsim::memory::PhysMemory;
use vmsim::mmu::{AccessKind, Mmu, MmuFault, MmuFaultKind, Privilege, TlbConfig, Violation};
use vmsim::paging::{FaultKind, Format};

const PAGE: u64 = 4096;

fn mmu() -> Mmu {
    Mmu::new(
        Format::x86_64(),
        &TlbConfig::preset("x86-64").expect("preset"),
        true,
    )
    .expect("mmu")
}

fn byte(ram: &[u8], pa: PhysAddr) -> u8 {
    ram[pa.as_u64() as usize]
}

/// Demand paging and copy-on-write of vmsim's kernel over a plain
/// `Vec<u8>` the test owns: the page tables, the kernel's frames and the
/// data all live in it, and the test reads them there.
#[test]
fn the_kernel_pages_on_demand_and_copies_on_write_in_the_tests_own_vec() {
    let frames = 128;
    let mut ram = vec![0u8; (frames * PAGE) as usize];
    let mut kernel = Kernel::new(
        Format::x86_64(),
        frames,
        PageSize::SIZE_4K,
        KernelConfig::default(),
    )
    .expect("kernel");
    let mut mmu = mmu();
    mmu.set_table_base(kernel.table_base());
    let parent = kernel.spawn(&mut ram, Layout::Standard).expect("spawn");
    let area = kernel
        .mmap(
            &mut ram,
            &mut mmu,
            parent,
            None,
            4 * PAGE,
            Prot::RW,
            MmapFlags::default(),
        )
        .expect("mmap");
    let mut m = Machine::new(mmu, ram, KernelFaults::new(kernel, parent));
    m.switch_to(parent).expect("parent runs");

    // First touch: a demand-zero fault, handled, retried, translated.
    let pa = m
        .access(area, AccessKind::Write)
        .expect("handled")
        .expect("mapped on demand");
    assert_eq!(m.handler.last, Some(FaultResolution::DemandZero));
    assert_eq!(byte(&m.mem, pa), 0, "a demand-zero page is zero");
    m.mem.write(pa, &[0xAB]).expect("in the Vec");
    assert_eq!(byte(&m.mem, pa), 0xAB, "the store is in the test's Vec");
    // Second touch: a TLB hit, no fault.
    let faults = m.mmu.counters().faults.not_present;
    assert_eq!(m.access(area, AccessKind::Read).expect("ok"), Some(pa));
    assert_eq!(m.mmu.counters().faults.not_present, faults);

    // fork: the child shares the frame copy-on-write.
    let child = {
        let Machine { mmu, mem, handler } = &mut m;
        handler.kernel.fork(mem, mmu, parent).expect("fork")
    };
    m.switch_to(child).expect("child runs");
    let shared = m
        .access(area, AccessKind::Read)
        .expect("ok")
        .expect("mapped");
    assert_eq!(shared, pa, "the child reads the parent's frame");
    assert_eq!(byte(&m.mem, shared), 0xAB);
    // The child's store: a protection fault, the kernel copies, the store retries.
    let copy = m
        .access(area, AccessKind::Write)
        .expect("ok")
        .expect("copied");
    assert_eq!(m.handler.last, Some(FaultResolution::CowCopy));
    assert_ne!(copy, pa, "the writer got its own frame");
    assert_eq!(byte(&m.mem, copy), 0xAB, "with the bytes copied");
    m.mem.write(copy, &[0xCD]).expect("in the Vec");
    // The parent still sees its byte, and writes its page back without a copy.
    m.switch_to(parent).expect("parent runs");
    let back = m
        .access(area, AccessKind::Write)
        .expect("ok")
        .expect("mapped");
    assert_eq!(back, pa);
    assert_eq!(m.handler.last, Some(FaultResolution::CowReuse));
    assert_eq!(byte(&m.mem, back), 0xAB);
    assert_eq!(byte(&m.mem, copy), 0xCD);

    // No area there: the kernel kills the process; the access is abandoned.
    let nowhere = VirtAddr::new(area.as_u64() + (1 << 30));
    assert_eq!(m.access(nowhere, AccessKind::Read).expect("handled"), None);
    assert_eq!(
        m.handler.last,
        Some(FaultResolution::Killed(SegvReason::NoVma))
    );
    m.handler
        .kernel
        .check_invariants(&m.mem)
        .expect("the kernel's books match the Vec");
}

/// A guest OS written by the test: it maps a page of the test's RAM on a
/// not-present fault by writing the x86-64 entries itself, refuses
/// protection faults, and counts what it saw.
struct GuestOs {
    next_frame: u64,
    handled: Vec<MmuFault>,
    /// Say "retry" without fixing anything (a buggy OS).
    broken: bool,
}

const P: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PML4: u64 = 0x1000;

impl<M: PhysMemory + ?Sized> FaultHandler<M> for GuestOs {
    type Error = vmsim::phys::MemError;

    fn handle(
        &mut self,
        _mmu: &mut Mmu,
        mem: &mut M,
        fault: &MmuFault,
    ) -> Result<Handled, Self::Error> {
        self.handled.push(*fault);
        if self.broken {
            return Ok(Handled::Retry);
        }
        if fault.kind != MmuFaultKind::Walk(FaultKind::NotPresent) {
            return Ok(Handled::Abandon);
        }
        // Walk down from the root, allocating missing tables, then map the
        // page (read-only: the test checks the write is refused).
        let va = fault.va.as_u64();
        let mut table = PML4;
        for shift in [39u32, 30, 21, 12] {
            let at = PhysAddr::new(table + ((va >> shift) & 511) * 8).expect("pa");
            let e = mem.read_le(at, 8)?;
            let next = if e & P == 0 {
                let frame = self.next_frame;
                self.next_frame += PAGE;
                mem.zero(PhysAddr::new(frame).expect("pa"), PAGE)?;
                let flags = if shift == 12 { P | US } else { P | RW | US };
                mem.write_le(at, 8, frame | flags)?;
                frame
            } else {
                e & 0x000f_ffff_ffff_f000
            };
            table = next;
        }
        Ok(Handled::Retry)
    }
}

#[test]
fn a_handler_of_the_embedders_own_maps_pages_in_its_ram_and_the_access_retries() {
    let mut ram = vec![0u8; 1 << 20];
    let mut mmu = mmu();
    mmu.set_context(PhysAddr::new(PML4).expect("pa"), vmsim::addr::Asid::new(1));
    let os = GuestOs {
        next_frame: 0x2000,
        handled: Vec::new(),
        broken: false,
    };
    ram[0x1000..0x2000].fill(0);
    let mut m = Machine::new(mmu, ram, os);
    let va = VirtAddr::new(0x7f00_1234);

    let pa = m
        .access(va, AccessKind::Read)
        .expect("handled")
        .expect("mapped by the guest OS");
    // Three tables and the page: frames 0x2000.. in allocation order.
    assert_eq!(pa.as_u64(), 0x5000 + 0x234);
    assert_eq!(m.handler.handled.len(), 1);
    assert_eq!(m.handler.handled[0].va, va);
    // A hit: no fault, nothing handled.
    assert_eq!(
        m.access(VirtAddr::new(0x7f00_1000), AccessKind::Read)
            .expect("ok"),
        Some(PhysAddr::new(0x5000).expect("pa"))
    );
    assert_eq!(m.handler.handled.len(), 1);
    // A store to the read-only page: a protection fault the OS refuses.
    assert_eq!(m.access(va, AccessKind::Write).expect("handled"), None);
    assert_eq!(m.handler.handled.len(), 2);
    assert_eq!(
        m.handler.handled[1].kind,
        MmuFaultKind::Protection(Violation::Write)
    );
    // Supervisor accesses go through the same loop.
    let sup = m
        .access_as(
            VirtAddr::new(0x10_0000),
            AccessKind::Read,
            Privilege::Supervisor,
        )
        .expect("handled");
    assert!(sup.is_some());
    let (_, ram, os) = m.into_parts();
    assert_eq!(
        os.next_frame,
        0x2000 + 7 * PAGE,
        "the second walk shared the PDPT: a PD, a PT and a page"
    );
    assert_eq!(ram.len(), 1 << 20);
}

#[test]
fn a_handler_that_retries_without_fixing_is_a_livelock_error_not_a_hang() {
    let mut mmu = mmu();
    mmu.set_context(PhysAddr::new(PML4).expect("pa"), vmsim::addr::Asid::new(1));
    let os = GuestOs {
        next_frame: 0x2000,
        handled: Vec::new(),
        broken: true,
    };
    let mut m = Machine::new(mmu, vec![0u8; 1 << 16], os);
    let err = m
        .access(VirtAddr::new(0x4000), AccessKind::Read)
        .expect_err("never resolved");
    match &err {
        AccessError::Livelock { fault } => {
            assert_eq!(fault.kind, MmuFaultKind::Walk(FaultKind::NotPresent));
        }
        other => panic!("expected a livelock, got {other:?}"),
    }
    assert_eq!(m.handler.handled.len(), RETRY_LIMIT as usize);
    assert!(err.to_string().contains("recurs"), "{err}");
}
