//! The simulation's fault handler: the kernel resolves the fault of the
//! running process (after a post-copy migration's remote page, if the
//! fault is on one), and the run keeps its books — the process's fault
//! counts and resident peak, the machine's frame peaks, a write-protect
//! checkpoint's copy-before-write.
//!
//! It borrows the parts of a [`Simulation`](super::Simulation) other than
//! the MMU and memory (which [`crate::machine::access`] takes), for one
//! access; it is built only when that access faults.

use std::collections::BTreeMap;

use crate::addr::Pid;
use crate::checkpoint::CheckpointConfig;
use crate::checkpoint::run::CheckpointRun;
use crate::kernel::{FaultCause, FaultResolution, Kernel};
use crate::machine::{FaultHandler, Handled};
use crate::migrate::remote::{RemotePages, remote_fault};
use crate::mmu::{Mmu, MmuFault};
use crate::phys::{DirtyChunks, PhysMem};
use crate::report::ProcessReport;

use super::SimError;

/// The faults of `pid`'s reference number `now` of the run.
pub(super) struct RunFaults<'a> {
    pub kernel: &'a mut Kernel,
    pub processes: &'a mut BTreeMap<Pid, ProcessReport>,
    pub peak_frames: &'a mut u64,
    pub peak_table_frames: &'a mut u64,
    pub current: &'a mut Option<Pid>,
    pub ckpt: &'a mut CheckpointRun,
    pub ckpt_cfg: &'a CheckpointConfig,
    pub remote: &'a mut Option<Box<RemotePages>>,
    /// The run's references by kind (their sum is the post-copy clock's).
    pub references: &'a [u64; 4],
    pub pid: Pid,
    pub now: u64,
    /// No fault of this access was handled yet (a remote page is brought
    /// on the first only).
    pub first: bool,
}

impl FaultHandler<PhysMem<DirtyChunks>> for RunFaults<'_> {
    type Error = SimError;

    fn handle(
        &mut self,
        mmu: &mut Mmu,
        mem: &mut PhysMem<DirtyChunks>,
        fault: &MmuFault,
    ) -> Result<Handled, SimError> {
        let (pid, va) = (self.pid, fault.va);
        let cause = FaultCause::from(fault);
        if std::mem::take(&mut self.first)
            && cause == FaultCause::NotPresent
            && let Some(r) = self.remote.as_deref_mut()
            && remote_fault(
                r,
                self.kernel,
                mem,
                mmu,
                self.references.iter().sum(),
                pid,
                va,
            )?
        {
            return Ok(Handled::Retry);
        }
        let (r, resident) = self
            .kernel
            .handle_fault_resident(mem, mmu, pid, va, fault.access, cause)
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        let p = self
            .processes
            .entry(pid)
            .or_insert_with(|| ProcessReport::new(pid));
        p.count(r);
        if let Some(space) = resident {
            p.resident_peak = p.resident_peak.max(space);
        }
        let used = self.kernel.frames_in_use();
        if used > *self.peak_frames {
            *self.peak_frames = used;
            *self.peak_table_frames = (*self.peak_table_frames).max(self.kernel.table_frames());
        }
        if r == FaultResolution::WriteProtect {
            let page_size = self.kernel.page_size();
            let page = va.align_down(page_size).as_u64();
            self.ckpt
                .note_write_fault(self.ckpt_cfg, page_size.bytes(), pid, page, self.now);
        }
        if let FaultResolution::Killed(reason) = r {
            p.killed = Some(reason);
            *self.current = None;
            return Ok(Handled::Abandon);
        }
        Ok(Handled::Retry)
    }
}
