//! The machine façade: an MMU, the physical memory it walks, and a fault
//! handler, put together so that one call does what a CPU does on a memory
//! reference — translate; on a fault, let the handler (an OS) resolve it;
//! retry.
//!
//! [`Machine::access`] (and the free function [`access`], for callers that
//! keep the three parts in fields of their own) is the only place that loop
//! is written: the simulation's per-reference loop, the kernel's tests and
//! an embedder's emulator all go through it.
//!
//! The hot path (a TLB hit) is [`Mmu::translate`] and nothing else: the
//! façade is generic over the memory and the handler (monomorphised, no
//! `dyn`), allocates nothing, and keeps the fault path out of line
//! (`#[cold]`), so a loop over `access` compiles to the same code as a loop
//! over `translate`.
//!
//! The handler is a trait, [`FaultHandler`]: vmsim's own kernel is one
//! ([`KernelFaults`]: the kernel and the process running), so an embedder
//! gets demand paging, copy-on-write, swap and reclaim over memory it owns;
//! or an emulator writes its own (a guest OS's page-fault entry).
//!
//! ```
//! use vmsim::addr::PageSize;
//! use vmsim::kernel::{Kernel, KernelConfig, Layout, MmapFlags, Prot};
//! use vmsim::machine::{KernelFaults, Machine};
//! use vmsim::mmu::{AccessKind, Mmu, TlbConfig};
//! use vmsim::paging::Format;
//! use vmsim::memory::PhysMemory;
//!
//! // 64 frames of RAM owned by the caller: a plain Vec<u8>.
//! let fmt = Format::x86_64();
//! let mut ram = vec![0u8; 64 * 4096];
//! let mut kernel = Kernel::new(fmt.clone(), 64, PageSize::SIZE_4K, KernelConfig::default())?;
//! let mut mmu = Mmu::new(fmt, &TlbConfig::preset("x86-64")?, true)?;
//! mmu.set_table_base(kernel.table_base());
//! let pid = kernel.spawn(&mut ram, Layout::Standard)?;
//! let area = kernel.mmap(&mut ram, &mut mmu, pid, None, 4 * 4096, Prot::RW, MmapFlags::default())?;
//!
//! let mut m = Machine::new(mmu, ram, KernelFaults::new(kernel, pid));
//! m.switch_to(pid)?;
//! // The first store faults; the kernel maps a zeroed frame; the store retries.
//! let pa = m.access(area, AccessKind::Write)?.expect("mapped on demand");
//! m.mem.write(pa, &[42])?;
//! let again = m.access(area, AccessKind::Read)?.expect("resident");
//! assert_eq!(again, pa);
//! assert_eq!(m.mmu.counters().faults.not_present, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod kernel;

use thiserror::Error;

use crate::addr::{PhysAddr, VirtAddr};
use crate::memory::PhysMemory;
use crate::mmu::{AccessKind, Mmu, MmuFault, Privilege};

pub use kernel::KernelFaults;

/// How many times one access may fault and be handled before the façade
/// gives up: a handler that keeps saying "retry" to a fault that keeps
/// coming back is a bug (a copy-on-write then a dirty-bit fault is two).
pub const RETRY_LIMIT: u32 = 8;

/// What a handler did about a fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "the access is retried only on `Retry`"]
pub enum Handled {
    /// The fault is resolved: translate again.
    Retry,
    /// The access will not complete (the process was killed, the guest
    /// takes an exception): the façade returns `Ok(None)`.
    Abandon,
}

/// An operating system's page-fault entry: called with the machine's MMU
/// and memory when a translation faults. It may map, copy, evict, kill,
/// and invalidate TLB entries through the MMU.
pub trait FaultHandler<M: PhysMemory + ?Sized> {
    /// Why a fault could not be handled at all (a call that makes no
    /// sense, as opposed to a fault the handler resolved by killing).
    type Error;

    /// Resolves `fault`, which `mmu` raised translating for an access.
    fn handle(
        &mut self,
        mmu: &mut Mmu,
        mem: &mut M,
        fault: &MmuFault,
    ) -> Result<Handled, Self::Error>;
}

impl<M: PhysMemory + ?Sized, H: FaultHandler<M> + ?Sized> FaultHandler<M> for &mut H {
    type Error = H::Error;

    #[inline]
    fn handle(
        &mut self,
        mmu: &mut Mmu,
        mem: &mut M,
        fault: &MmuFault,
    ) -> Result<Handled, Self::Error> {
        (**self).handle(mmu, mem, fault)
    }
}

/// An access that could not be carried out.
#[derive(Debug, Error)]
pub enum AccessError<E> {
    /// The handler failed.
    #[error(transparent)]
    Handler(E),
    /// The handler said it resolved the fault [`RETRY_LIMIT`] times and
    /// the translation still faults: a bug in the handler.
    #[error("the fault at {} recurs after the handler resolved it ({fault})", fault.va)]
    Livelock {
        /// The last fault.
        fault: MmuFault,
    },
}

/// An MMU, the memory it translates into, and the OS that handles its
/// faults. The fields are public: set up tables through the handler (or by
/// hand in `mem`), read counters from `mmu`, read and write data in `mem`.
#[derive(Debug, Clone)]
pub struct Machine<M, H> {
    /// The MMU: TLBs, walker, counters; its context selects the address space.
    pub mmu: Mmu,
    /// Physical memory: the page tables and the data.
    pub mem: M,
    /// The OS's fault entry.
    pub handler: H,
}

impl<M: PhysMemory, H: FaultHandler<M>> Machine<M, H> {
    /// The three parts, as they are (the MMU's context is the caller's to set).
    pub fn new(mmu: Mmu, mem: M, handler: H) -> Self {
        Self { mmu, mem, handler }
    }

    /// A user-mode access to `va`: the physical address, after any faults
    /// were handled; `Ok(None)` if the handler abandoned the access.
    #[inline(always)]
    pub fn access(
        &mut self,
        va: VirtAddr,
        kind: AccessKind,
    ) -> Result<Option<PhysAddr>, AccessError<H::Error>> {
        access(
            &mut self.mmu,
            &mut self.mem,
            &mut self.handler,
            va,
            kind,
            Privilege::User,
        )
    }

    /// An access to `va` at `privilege` (supervisor accesses of a guest
    /// kernel), otherwise as [`Machine::access`].
    #[inline(always)]
    pub fn access_as(
        &mut self,
        va: VirtAddr,
        kind: AccessKind,
        privilege: Privilege,
    ) -> Result<Option<PhysAddr>, AccessError<H::Error>> {
        access(
            &mut self.mmu,
            &mut self.mem,
            &mut self.handler,
            va,
            kind,
            privilege,
        )
    }

    /// The parts back.
    pub fn into_parts(self) -> (Mmu, M, H) {
        (self.mmu, self.mem, self.handler)
    }
}

/// Translate, handle, retry: [`Machine::access`] over parts the caller
/// keeps apart (fields of its own struct, borrowed separately). The TLB-hit
/// path is `mmu.translate` inlined; faults go out of line.
#[inline(always)]
pub fn access<M, H>(
    mmu: &mut Mmu,
    mem: &mut M,
    handler: &mut H,
    va: VirtAddr,
    kind: AccessKind,
    privilege: Privilege,
) -> Result<Option<PhysAddr>, AccessError<H::Error>>
where
    M: PhysMemory + ?Sized,
    H: FaultHandler<M> + ?Sized,
{
    match mmu.translate(mem, va, kind, privilege) {
        Ok(pa) => Ok(Some(pa)),
        Err(fault) => resolve(mmu, mem, handler, va, kind, privilege, fault),
    }
}

/// The fault path of [`access`]: the handler resolves `fault` (which
/// `mmu.translate` just raised for this access), the MMU retries, up to
/// [`RETRY_LIMIT`] times. Public for callers whose handler is costly to
/// build (it borrows many fields): they call `mmu.translate` themselves and
/// build the handler only here, on the fault path, so a TLB hit pays
/// nothing for it.
#[cold]
#[inline(never)]
pub fn resolve<M, H>(
    mmu: &mut Mmu,
    mem: &mut M,
    handler: &mut H,
    va: VirtAddr,
    kind: AccessKind,
    privilege: Privilege,
    mut fault: MmuFault,
) -> Result<Option<PhysAddr>, AccessError<H::Error>>
where
    M: PhysMemory + ?Sized,
    H: FaultHandler<M> + ?Sized,
{
    for _ in 0..RETRY_LIMIT {
        match handler
            .handle(mmu, mem, &fault)
            .map_err(AccessError::Handler)?
        {
            Handled::Abandon => return Ok(None),
            Handled::Retry => {}
        }
        // The lookup of a retry after a walk's fault is known to miss.
        match mmu.translate_retry(mem, va, kind, privilege) {
            Ok(pa) => return Ok(Some(pa)),
            Err(f) => fault = f,
        }
    }
    Err(AccessError::Livelock { fault })
}
