//! The receiving side: a process arrives and runs to its end on this
//! machine's own configuration (its own memory size and frames; the same
//! paging format and page size, or the offer is refused).
//!
//! Pages are kept aside as they arrive; the process is built only when its
//! execution state has arrived and every page it lists is here (post-copy:
//! listed as remote), so a source that dies mid-migration leaves nothing
//! half-built. Its trace input is found again as a checkpoint restore
//! finds it (recorded path, or a `--input` file of the same size and
//! CRC-32C), like a disk on shared storage.

use std::path::PathBuf;
use std::sync::Arc;

use vmsim_trace::scenario::{LayoutKind, ProcessSpec, Scenario};

use crate::addr::{Pid, VirtAddr};
use crate::config::MachineSpec;
use crate::kernel::AdoptedPage;
use crate::report::Report;
use crate::sim::schedule::Schedule;
use crate::sim::{Observer, Progress, SimError, Simulation, inputs};

use super::MigrateError;
use super::config::MigrateMode;
use super::message::{Message, MsgRecv, MsgSend, Offer, PROTOCOL, ProcessState};
use super::pages::StagedPages;
use super::remote::{Duplex, RemotePages};
use super::report::MigrationReport;

/// Why this machine cannot take what `offer` proposes, if it cannot.
#[must_use]
pub fn incompatibility(cfg: &MachineSpec, offer: &Offer) -> Option<String> {
    if offer.protocol != PROTOCOL {
        return Some(format!(
            "the source speaks migration protocol {} ({}), this side {PROTOCOL}",
            offer.protocol, offer.written_by
        ));
    }
    let (fmt, page) = (cfg.format(), cfg.page_size());
    if fmt.name() != offer.format || page.bytes() != offer.page_size {
        return Some(format!(
            "incompatible paging format: the source uses {} with {}-byte pages, this machine {} with {}-byte pages",
            offer.format,
            offer.page_size,
            fmt.name(),
            page.bytes()
        ));
    }
    None
}

/// A process that has arrived and is ready to run here.
pub struct Incoming {
    sim: Simulation,
    pid: Pid,
    offer: Offer,
    report: MigrationReport,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("pid", &self.pid)
            .field("process", &self.offer.process)
            .finish_non_exhaustive()
    }
}

/// Reads the source's offer.
///
/// # Errors
/// The link fails, or the first message is not an offer.
pub fn read_offer<R: MsgRecv>(rx: &mut R) -> Result<Offer, MigrateError> {
    match rx.recv()? {
        Message::Offer(o) => Ok(o),
        other => Err(MigrateError::Protocol(format!(
            "expected an Offer first, got {} message",
            other.kind()
        ))),
    }
}

/// Answers `offer` for a machine configured by `cfg`: `Accept`, or
/// `Refuse` with the reason (then the error is the same reason).
///
/// # Errors
/// The offer is refused (incompatible format), or the link fails.
pub fn answer<S: MsgSend>(
    cfg: &MachineSpec,
    offer: &Offer,
    tx: &mut S,
) -> Result<(), MigrateError> {
    if let Some(reason) = incompatibility(cfg, offer) {
        let _ = tx.send(&Message::Refuse {
            reason: reason.clone(),
        });
        return Err(MigrateError::Refused(reason));
    }
    tx.send(&Message::Accept {
        frames: cfg.frames(),
    })?;
    Ok(())
}

/// After [`answer`] accepted `offer`: receives the process (its rounds of
/// pages and its state), builds it on a machine configured by `cfg`, and
/// tells the source it is adopted. Trace inputs not at their recorded path
/// are looked for among `candidates`.
///
/// # Errors
/// The source aborts or the link fails before the state is complete, the
/// state is inconsistent, or the process does not fit: nothing is built,
/// and the source is told.
pub fn receive<S: MsgSend, R: MsgRecv>(
    cfg: MachineSpec,
    offer: Offer,
    tx: &mut S,
    rx: &mut R,
    candidates: &[PathBuf],
) -> Result<Incoming, MigrateError> {
    // Pages stay in the payloads they came in (no copy per page) until
    // the process is built.
    let mut pages = StagedPages::default();
    let (state, last) = loop {
        let Some(msg) = pages.take(rx.recv_payload()?)? else {
            continue;
        };
        match msg {
            Message::Progress { .. } => {}
            Message::Pages { pages: v, .. } => pages.extend_owned(v),
            Message::State { state, last } => break (state, last),
            Message::Abort { reason } => return Err(MigrateError::Aborted(reason)),
            other => {
                return Err(MigrateError::Protocol(format!(
                    "{} message before the process state",
                    other.kind()
                )));
            }
        }
    };
    // What the source said, held together before anything is built.
    if let Err(e) = super::received::check_state(&offer, &state, &pages.rounds) {
        let e = MigrateError::Protocol(format!("the State message: {e}"));
        let _ = tx.send(&Message::Abort {
            reason: e.to_string(),
        });
        return Err(e);
    }
    pages.extend_owned(last);
    let post = offer.mode == MigrateMode::PostCopy;
    let built = adopt(cfg, &state, &mut pages, post, candidates);
    let (sim, pid) = match built {
        Ok(x) => x,
        Err(e) => {
            let _ = tx.send(&Message::Abort {
                reason: e.to_string(),
            });
            return Err(e);
        }
    };
    tx.send(&Message::Adopted { pid: pid.as_u32() })?;
    // The source's figures, complete now that the pause is over (without
    // them the state's partial account stands).
    let report = match rx.recv() {
        Ok(Message::Summary(r)) => {
            super::received::check_summary(&state.report, &r)
                .map_err(|e| MigrateError::Protocol(format!("the Summary message: {e}")))?;
            *r
        }
        _ => state.report.clone(),
    };
    Ok(Incoming {
        sim,
        pid,
        offer,
        report,
    })
}

impl Incoming {
    /// The offer it came with.
    #[must_use]
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Its pid here.
    #[must_use]
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The simulation it runs in (to set options before [`Incoming::run`]).
    pub fn simulation_mut(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    /// Runs the process to its end here and reports: the run's report and
    /// the migration's (post-copy: with the remote faults and the pages'
    /// arrival, the link used for them).
    ///
    /// # Errors
    /// The simulation fails, or (post-copy) the link fails before every
    /// page is here.
    pub fn run<L: Duplex + 'static>(
        mut self,
        link: L,
        observer: &mut impl Observer,
    ) -> Result<(Report, MigrationReport), SimError> {
        if self.offer.mode != MigrateMode::PostCopy {
            let report = self.sim.run_to_end(observer, None)?;
            return Ok((report, self.report));
        }
        let pages = self.sim.pending_pages.take().unwrap_or_default();
        self.sim.remote = Some(Box::new(RemotePages::new(
            self.pid,
            pages,
            Box::new(link),
            self.sim.references(),
            // The link is the source's (its [migrate] describes it).
            self.report.link.clone(),
            self.sim.kernel().page_size().bytes(),
            self.report,
        )));
        loop {
            let stop = self.sim.next_arrival();
            match self.sim.advance(stop, observer, None)? {
                Progress::Finished => break,
                Progress::Stopped => self.sim.install_arrived()?,
            }
        }
        self.sim.drain_remote()?;
        let rep = self
            .sim
            .remote
            .as_ref()
            .map(|r| r.report.clone())
            .unwrap_or_default();
        let report = self.sim.run_to_end(observer, None)?;
        Ok((report, rep))
    }
}

/// Builds the process described by `state` on a new machine configured by
/// `cfg`, with its pages from `data` (post-copy: listed as remote). Trace
/// inputs are found as a restore finds them.
fn adopt(
    cfg: MachineSpec,
    state: &ProcessState,
    data: &mut StagedPages,
    post: bool,
    candidates: &[PathBuf],
) -> Result<(Simulation, Pid), MigrateError> {
    let mut sim = Simulation::new(cfg)?;
    let frames = sim.cfg.frames();
    let trace = match &state.input {
        Some(pos) => Some(inputs::locate(&pos.id, candidates).map_err(SimError::from)?),
        None => None,
    };
    let spec = ProcessSpec {
        name: state.name.clone(),
        trace: trace.clone(),
        layout: LayoutKind::Flat,
        parent: None,
        brk: 0,
        mmap: Vec::new(),
        forks: Vec::new(),
        exit_after: state.exit_after,
    };
    let quantum = sim.cfg.config().run.quantum;
    sim.scenario = Arc::new(Scenario {
        description: format!("migrated process '{}'", state.name),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: vec![spec],
    });
    sim.m.schedule = Schedule::new(quantum, 1, sim.m.timeline.interval());
    sim.sources = vec![None];
    sim.input_ids = vec![None];
    sim.started = true;
    let kerr = |source| {
        MigrateError::Sim(SimError::Kernel {
            process: state.name.clone(),
            source,
        })
    };
    let pid = sim
        .m
        .kernel
        .adopt_space(&mut sim.mem, &state.vmas, state.brk_start, state.brk)
        .map_err(kerr)?;
    let mut pending = std::collections::BTreeMap::new();
    for e in &state.pages {
        let page = AdoptedPage {
            page: VirtAddr::new(e.page),
            writable: e.writable,
            accessed: e.accessed,
            dirty: e.dirty,
        };
        if post {
            pending.insert(e.page, (page, e.zero));
            continue;
        }
        let installed = data.with_page(e.page, |bytes| {
            sim.m
                .kernel
                .adopt_page(&mut sim.mem, &mut sim.m.mmu, pid, page, bytes)
        });
        let Some(installed) = installed else {
            return Err(MigrateError::Protocol(format!(
                "page {:#x} is in the process's state but never arrived",
                e.page
            )));
        };
        installed.map_err(|e| match e {
            crate::kernel::KernelError::OutOfMemory => MigrateError::Refused(format!(
                "the process's {} pages do not fit in this machine's {frames} frames",
                state.pages.len()
            )),
            e => kerr(e),
        })?;
    }
    if post {
        sim.pending_pages = Some(pending);
    }
    let p = &mut sim.m.schedule.procs[0];
    p.pid = Some(pid);
    p.refs = state.refs;
    p.batch = state.batch.clone();
    p.pos = 0;
    // Not read from the source: its pids are not known to be one.
    if let Some(slot) = sim.batch_pid.get_mut(0) {
        *slot = None;
    }
    p.first_trace_pid = state.first_trace_pid;
    if let (Some(pos), Some(trace)) = (&state.input, &trace) {
        let (src, rest) = inputs::reopen(trace, pos).map_err(SimError::from)?;
        let p = &mut sim.m.schedule.procs[0];
        p.consumed = pos.consumed + rest.len() as u64;
        p.batch.extend(rest);
        sim.sources[0] = Some(src);
        sim.input_ids[0] = Some(pos.id.clone());
    }
    if let Some(i) = state.last_instr {
        sim.m.schedule.last_instr.insert(pid, i);
    }
    let mut counters = state.counters.clone();
    counters.pid = pid;
    counters.parent = None;
    counters.name = state.name.clone();
    sim.m.processes.insert(pid, counters);
    Ok((sim, pid))
}
