//! vmsim's kernel as a [`FaultHandler`]: the kernel and the process whose
//! references the MMU is translating.

use std::borrow::BorrowMut;

use crate::addr::Pid;
use crate::kernel::{FaultCause, FaultResolution, Kernel, KernelError};
use crate::memory::PhysMemory;
use crate::mmu::{Mmu, MmuFault};

use super::{FaultHandler, Handled, Machine};

/// The kernel handling the faults of process `pid`: demand-zero pages,
/// copy-on-write, swap-in, stack growth, accessed/dirty emulation; a
/// process that cannot be helped is killed and the access abandoned.
///
/// `K` is [`Kernel`] (the handler owns the kernel, as in a
/// [`Machine`] an embedder builds once) or `&mut Kernel` (it borrows one
/// kept elsewhere, for the duration of some accesses).
#[derive(Debug, Clone)]
pub struct KernelFaults<K = Kernel> {
    /// The kernel.
    pub kernel: K,
    /// The process running: the faults are its.
    pub pid: Pid,
    /// How the last fault was resolved (`None` before the first).
    pub last: Option<FaultResolution>,
}

impl<K: BorrowMut<Kernel>> KernelFaults<K> {
    /// `kernel` handling the faults of `pid`.
    pub fn new(kernel: K, pid: Pid) -> Self {
        Self {
            kernel,
            pid,
            last: None,
        }
    }
}

impl<M: PhysMemory + ?Sized, K: BorrowMut<Kernel>> FaultHandler<M> for KernelFaults<K> {
    type Error = KernelError;

    #[inline]
    fn handle(
        &mut self,
        mmu: &mut Mmu,
        mem: &mut M,
        fault: &MmuFault,
    ) -> Result<Handled, KernelError> {
        let r = self.kernel.borrow_mut().handle_fault(
            mem,
            mmu,
            self.pid,
            fault.va,
            fault.access,
            FaultCause::from(fault),
        )?;
        self.last = Some(r);
        Ok(if r.retry() {
            Handled::Retry
        } else {
            Handled::Abandon
        })
    }
}

impl<M: PhysMemory, K: BorrowMut<Kernel>> Machine<M, KernelFaults<K>> {
    /// Runs `pid`: its faults go to the kernel, and the MMU translates in
    /// its address space (root table and ASID; the TLB keeps other
    /// processes' entries, tagged).
    pub fn switch_to(&mut self, pid: Pid) -> Result<(), KernelError> {
        let (root, asid) = self.handler.kernel.borrow().context(pid)?;
        if self.mmu.context() != (root, asid) {
            self.mmu.set_context(root, asid);
        }
        self.handler.pid = pid;
        Ok(())
    }

    /// The kernel.
    pub fn kernel(&mut self) -> &mut Kernel {
        self.handler.kernel.borrow_mut()
    }
}
