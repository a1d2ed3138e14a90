//! The simulation: a configured machine (physical memory, MMU) and kernel
//! running one or more processes, each driven by a trace or a generator,
//! scheduled round robin, with forks, exits and every fault handled.
//!
//! Data flow per reference: the trace's [`Access`] becomes one translation
//! per page it touches ([`Mmu::translate`]); a fault goes to
//! [`Kernel::handle_fault`] and the translation is retried; counters are
//! read at the end into a [`Report`](crate::report::Report).
//!
//! The per-reference loop is monomorphic over the trace source and the
//! observer and allocates nothing; the MMU's TLB-hit path is the common case.

use rustc_hash::FxHashMap;
use thiserror::Error;
use vmsim_trace::scenario::{ForkPoint, LayoutKind, ProcessSpec, Scenario};
use vmsim_trace::{Access, AnySource, TraceError, TraceSource};

use crate::addr::{Pid, VirtAddr};
use crate::config::{Config, ConfigError};
use crate::kernel::{FaultCause, FaultResolution, Kernel, KernelError, Layout, MmapFlags, Prot};
use crate::mmu::{AccessKind, Mmu, MmuFault, Privilege};
use crate::phys::{MemError, PhysMem};
use crate::report::{ProcessReport, Report, Timeline};

/// A run that could not be carried out. Faults of simulated processes are
/// not errors: they are handled and counted.
#[derive(Debug, Error)]
pub enum SimError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The kernel refused a scenario's setup (an mmap that does not fit, no memory).
    #[error("process '{process}'")]
    Kernel {
        /// The scenario process.
        process: String,
        /// The kernel's error.
        source: KernelError,
    },
    /// Physical memory could not be created.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// A fault the kernel claimed to resolve kept recurring: a simulator bug.
    #[error(
        "internal error: the fault at {va} of process {pid} recurs after the kernel resolved it ({fault})"
    )]
    Livelock {
        /// The process.
        pid: Pid,
        /// The address.
        va: VirtAddr,
        /// The last fault.
        fault: MmuFault,
    },
    /// The kernel's invariants do not hold (with `run.check`): a simulator bug.
    #[error("internal error: kernel invariant broken: {0}")]
    Invariant(String),
}

/// Hooks a caller can use to watch a run; every method has a no-op default,
/// and `()` is the observer that watches nothing, at no cost.
pub trait Observer {
    /// Called every [`PROGRESS_EVERY`] references with the total so far.
    fn progress(&mut self, _references: u64) {}
}

impl Observer for () {}

/// How often [`Observer::progress`] is called, in references.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// The state of one scenario process during a run.
struct Proc {
    spec: usize,
    pid: Option<Pid>,
    source: Option<AnySource>,
    batch: Vec<Access>,
    pos: usize,
    refs: u64,
    next_fork: usize,
    waiting_for: Option<usize>,
    done: bool,
    /// Other pids seen in this process's trace (a multi-process `.vmt`), each its own process.
    extra: FxHashMap<u32, Pid>,
    first_trace_pid: Option<u32>,
}

/// Why [`Simulation::run_span`] stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SpanStop {
    /// The span was simulated to its end.
    End,
    /// The next reference needs a decision of the scenario loop.
    Decide,
    /// The last reference simulated killed the process.
    Killed,
}

/// A configured machine and kernel, ready to run a scenario.
pub struct Simulation {
    cfg: Config,
    mem: PhysMem,
    mmu: Mmu,
    kernel: Kernel,
    current: Option<Pid>,
    hardware_ad: bool,
    page_shift: u32,
    page_mask: u64,
    references: [u64; 4],
    translations: u64,
    processes: FxHashMap<Pid, ProcessReport>,
    timeline: Timeline,
    peak_frames: u64,
    peak_table_frames: u64,
    snapshot: Option<crate::report::MemorySnapshot>,
    /// Accept trace files without any reference (else `TraceError::Empty`).
    allow_empty: bool,
}

/// The MMU access for each trace kind, by [`vmsim_trace::AccessKind::code`]:
/// an instruction fetch executes, a load reads, a store or a modify (a load
/// and a store of the same bytes) writes.
const KIND_OF: [AccessKind; 4] = [
    AccessKind::Execute,
    AccessKind::Read,
    AccessKind::Write,
    AccessKind::Write,
];

fn parse_prot(text: &str) -> Prot {
    Prot::parse(text).unwrap_or(Prot::RW)
}

impl Simulation {
    /// A machine and kernel as `cfg` describes them.
    pub fn new(cfg: Config) -> Result<Self, SimError> {
        cfg.validate()?;
        let fmt = cfg.format()?;
        let page = cfg.page_size()?;
        let hardware_ad = cfg.hardware_ad()?;
        let mut mem = PhysMem::new(cfg.memory.frames * fmt.page_size().bytes())?;
        let mut mmu = Mmu::new(fmt.clone(), &cfg.tlb_for(&fmt), hardware_ad).map_err(|e| {
            ConfigError::Invalid {
                key: "tlb".into(),
                message: e.to_string(),
            }
        })?;
        let kernel = Kernel::with_structure(
            fmt.clone(),
            cfg.memory.frames,
            page,
            cfg.kernel.clone(),
            cfg.structure()?,
            &mut mem,
        )
        .map_err(|e| ConfigError::Invalid {
            key: "kernel".into(),
            message: e.to_string(),
        })?;
        mmu.set_table_base(kernel.table_base());
        Ok(Self {
            timeline: Timeline::new(cfg.run.timeline_points),
            page_shift: fmt.page_size().shift(),
            page_mask: fmt.page_size().mask(),
            cfg,
            mem,
            mmu,
            kernel,
            current: None,
            hardware_ad,
            references: [0; 4],
            translations: 0,
            processes: FxHashMap::default(),
            peak_frames: 0,
            peak_table_frames: 0,
            snapshot: None,
            allow_empty: false,
        })
    }

    /// Accept trace files without any reference. By default a process
    /// whose trace file holds none stops the run with `TraceError::Empty`:
    /// an empty file is almost always the wrong file.
    pub fn set_allow_empty(&mut self, allow: bool) {
        self.allow_empty = allow;
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The kernel.
    #[must_use]
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The MMU.
    #[must_use]
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// References simulated so far.
    #[must_use]
    pub fn references(&self) -> u64 {
        self.references.iter().sum()
    }

    fn switch_to(&mut self, pid: Pid) -> Result<(), SimError> {
        if self.cfg.run.check {
            self.kernel
                .check_invariants(&self.mem)
                .map_err(SimError::Invariant)?;
        }
        let (root, asid) = self
            .kernel
            .context(pid)
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        self.mmu.set_context(root, asid);
        self.current = Some(pid);
        Ok(())
    }

    /// Simulates one reference of `pid`: one translation per page it
    /// touches, faults handled. Returns false if the process was killed.
    #[inline(always)]
    pub fn access(&mut self, pid: Pid, a: &Access) -> Result<bool, SimError> {
        if self.current != Some(pid) {
            self.switch_to(pid)?;
        }
        self.references[a.kind.code() as usize] += 1;
        let kind = KIND_OF[a.kind.code() as usize];
        if (a.va & self.page_mask) + u64::from(a.size) > self.page_mask + 1 {
            return self.access_pages(pid, a, kind);
        }
        self.translations += 1;
        let va = VirtAddr::new(a.va);
        match self.mmu.translate(&mut self.mem, va, kind, Privilege::User) {
            Ok(_) => Ok(true),
            Err(f) => self.resolve(pid, va, kind, f),
        }
    }

    /// A reference that crosses page boundaries: every page it touches.
    #[cold]
    #[inline(never)]
    fn access_pages(&mut self, pid: Pid, a: &Access, kind: AccessKind) -> Result<bool, SimError> {
        let (first, last) = a.pages(self.page_shift);
        for page in first..=last {
            let va = if page == first {
                VirtAddr::new(a.va)
            } else {
                VirtAddr::new(page << self.page_shift)
            };
            self.translations += 1;
            if let Err(f) = self.mmu.translate(&mut self.mem, va, kind, Privilege::User)
                && !self.resolve(pid, va, kind, f)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The fast path of [`Simulation::run`]: simulates the references of
    /// `span` for `pid` (trace pid `trace_pid`) until one needs a decision
    /// (another trace pid, or with `FORK_AT` an instruction fetch at
    /// `fork_at`), the process is killed, or the span ends. Returns how many
    /// references were simulated and why it stopped.
    ///
    /// Exactly [`Simulation::access`] per reference, with the context switch
    /// hoisted (only a kill changes the current process here) and the
    /// reference and translation counts kept in registers until the end.
    #[inline(never)]
    fn run_span<const FORK_AT: bool>(
        &mut self,
        pid: Pid,
        span: &[Access],
        trace_pid: u32,
        fork_at: u64,
    ) -> Result<(usize, SpanStop), SimError> {
        let decide = |a: &Access| {
            a.pid != trace_pid
                || (FORK_AT && a.va == fork_at && a.kind == vmsim_trace::AccessKind::Instr)
        };
        match span.first() {
            None => return Ok((0, SpanStop::End)),
            // No context switch for a process that does not run here.
            Some(a) if decide(a) => return Ok((0, SpanStop::Decide)),
            Some(_) => {}
        }
        if self.current != Some(pid) {
            self.switch_to(pid)?;
        }
        let page_mask = self.page_mask;
        let mut by_kind = [0u64; 4];
        let mut translations = 0u64;
        let mut done = span.len();
        let mut stop = SpanStop::End;
        for (k, a) in span.iter().enumerate() {
            if decide(a) {
                done = k;
                stop = SpanStop::Decide;
                break;
            }
            by_kind[a.kind.code() as usize] += 1;
            let kind = KIND_OF[a.kind.code() as usize];
            let alive = if (a.va & page_mask) + u64::from(a.size) > page_mask + 1 {
                self.access_pages(pid, a, kind)?
            } else {
                translations += 1;
                let va = VirtAddr::new(a.va);
                match self.mmu.translate(&mut self.mem, va, kind, Privilege::User) {
                    Ok(_) => true,
                    Err(f) => self.resolve(pid, va, kind, f)?,
                }
            };
            if !alive {
                done = k + 1;
                stop = SpanStop::Killed;
                break;
            }
        }
        for (total, n) in self.references.iter_mut().zip(by_kind) {
            *total += n;
        }
        self.translations += translations;
        Ok((done, stop))
    }

    /// The fault path: the kernel resolves, the MMU retries.
    #[cold]
    #[inline(never)]
    fn resolve(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        mut fault: MmuFault,
    ) -> Result<bool, SimError> {
        for _ in 0..8 {
            let cause = FaultCause::from(&fault);
            let r = self
                .kernel
                .handle_fault(&mut self.mem, &mut self.mmu, pid, va, kind, cause)
                .map_err(|source| SimError::Kernel {
                    process: pid.to_string(),
                    source,
                })?;
            let p = self
                .processes
                .entry(pid)
                .or_insert_with(|| ProcessReport::new(pid));
            p.count(r);
            if let Some(space) = self.kernel.space_of(pid).ok().map(|s| s.resident) {
                p.resident_peak = p.resident_peak.max(space);
            }
            let used = self.kernel.frames_in_use();
            if used > self.peak_frames {
                self.peak_frames = used;
                self.peak_table_frames = self.peak_table_frames.max(self.kernel.table_frames());
            }
            if let FaultResolution::Killed(reason) = r {
                p.killed = Some(reason);
                self.current = None;
                return Ok(false);
            }
            match self.mmu.translate(&mut self.mem, va, kind, Privilege::User) {
                Ok(_) => return Ok(true),
                Err(f) => fault = f,
            }
        }
        Err(SimError::Livelock { pid, va, fault })
    }

    fn spawn(&mut self, spec: &ProcessSpec, parent: Option<(Pid, bool)>) -> Result<Pid, SimError> {
        let err = |source| SimError::Kernel {
            process: spec.name.clone(),
            source,
        };
        let pid = match parent {
            None => {
                let layout = match spec.layout {
                    LayoutKind::Standard => Layout::Standard,
                    LayoutKind::Flat => Layout::Flat,
                };
                self.kernel.spawn(&mut self.mem, layout).map_err(err)?
            }
            Some((parent, true)) => self.kernel.vfork(parent).map_err(err)?,
            Some((parent, false)) => self
                .kernel
                .fork(&mut self.mem, &mut self.mmu, parent)
                .map_err(err)?,
        };
        if spec.brk > 0 {
            self.kernel
                .sbrk(&mut self.mem, &mut self.mmu, pid, spec.brk as i64)
                .map_err(err)?;
        }
        for m in &spec.mmap {
            let flags = MmapFlags {
                shared: m.shared,
                fixed: m.addr.is_some(),
            };
            self.kernel
                .mmap(
                    &mut self.mem,
                    &mut self.mmu,
                    pid,
                    m.addr.map(VirtAddr::new),
                    m.len,
                    parse_prot(&m.prot),
                    flags,
                )
                .map_err(err)?;
        }
        let mut report = ProcessReport::new(pid);
        report.name = spec.name.clone();
        report.parent = parent.map(|(p, _)| p);
        self.processes.insert(pid, report);
        Ok(pid)
    }

    fn exit(&mut self, pid: Pid) -> Result<(), SimError> {
        if self.kernel.process(pid).is_err() {
            return Ok(()); // killed earlier
        }
        if let Some(p) = self.processes.get_mut(&pid)
            && let Ok(space) = self.kernel.space_of(pid)
        {
            p.resident_at_exit = space.resident;
            p.page_table_frames = self
                .kernel
                .tables()
                .tables(self.kernel.format(), &self.mem, space.table)
                .map(|t| {
                    t.iter()
                        .map(|(idx, _)| 1u64 << self.kernel.format().table_order(*idx))
                        .sum()
                })
                .unwrap_or(0);
        }
        self.kernel
            .exit(&mut self.mem, &mut self.mmu, pid)
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        if self.current == Some(pid) {
            self.current = None;
        }
        Ok(())
    }

    fn take_snapshot(&mut self) {
        let used = self.kernel.frames_in_use();
        self.peak_frames = self.peak_frames.max(used);
        self.peak_table_frames = self.peak_table_frames.max(self.kernel.table_frames());
        self.snapshot = Some(crate::report::MemorySnapshot::of(&self.kernel));
    }

    fn sample(&mut self) {
        let c = self.mmu.counters();
        let refs = self.references();
        let k = self.kernel.stats();
        self.timeline.push(crate::report::Sample {
            references: refs,
            faults: k.demand_zero + k.cow_copies + k.cow_reuses + k.shared_minor + k.accessed_dirty,
            tlb_misses: c.tlb.full_misses,
            frames_used: self.kernel.frames_in_use(),
            resident: self
                .kernel
                .processes()
                .filter_map(|p| {
                    self.kernel
                        .space_of(p.pid)
                        .ok()
                        .map(|s| (p.pid.as_u32(), s.resident))
                })
                .collect(),
            major_faults: self.kernel.paging_stats().major_faults,
        });
    }

    /// Runs a scenario to its end and reports. `observer` sees progress.
    pub fn run(
        mut self,
        scenario: &Scenario,
        observer: &mut impl Observer,
    ) -> Result<Report, SimError> {
        let quantum = if scenario.quantum == vmsim_trace::scenario::DEFAULT_QUANTUM {
            self.cfg.run.quantum
        } else {
            scenario.quantum
        };
        let mut procs: Vec<Proc> = scenario
            .processes
            .iter()
            .enumerate()
            .map(|(i, _)| Proc {
                spec: i,
                pid: None,
                source: None,
                batch: Vec::with_capacity(vmsim_trace::source::BATCH),
                pos: 0,
                refs: 0,
                next_fork: 0,
                waiting_for: None,
                done: false,
                extra: FxHashMap::default(),
                first_trace_pid: None,
            })
            .collect();
        for (i, spec) in scenario.processes.iter().enumerate() {
            if spec.parent.is_none() {
                self.start(&mut procs, scenario, i, None)?;
            }
        }
        let mut next_progress = PROGRESS_EVERY;
        let mut next_sample = self.timeline.interval();
        let mut turn = 0usize;
        loop {
            // The next runnable process, round robin.
            let n = procs.len();
            let Some(i) = (0..n).map(|k| (turn + k) % n).find(|&i| {
                let p = &procs[i];
                p.pid.is_some() && !p.done && p.waiting_for.is_none_or(|c| procs[c].done)
            }) else {
                break;
            };
            turn = i + 1;
            procs[i].waiting_for = None;
            let mut budget = quantum;
            while budget > 0 {
                // A fork after the N-th reference happens before the next one
                // is needed, so it also happens when the trace ends right there.
                let p = &procs[i];
                if let Some(f) = scenario.processes[p.spec].forks.get(p.next_fork)
                    && matches!(f.point, ForkPoint::After(n) if p.refs >= n)
                {
                    let (child, wait, vfork) = (f.child, f.wait, f.vfork);
                    procs[i].next_fork += 1;
                    let parent = procs[i].pid;
                    self.start(&mut procs, scenario, child, parent.map(|pp| (pp, vfork)))?;
                    if wait {
                        procs[i].waiting_for = Some(child);
                        break;
                    }
                    continue;
                }
                let p = &mut procs[i];
                if p.pos == p.batch.len() {
                    p.pos = 0;
                    let got = match p.source.as_mut() {
                        Some(s) => s.next_batch(&mut p.batch)?,
                        None => 0,
                    };
                    if got == 0 {
                        self.finish(&mut procs, i)?;
                        break;
                    }
                }
                // The fast path: a run of references with nothing to decide
                // but their translations.
                let p = &mut procs[i];
                let spec = &scenario.processes[p.spec];
                let (fork_after, fork_at) = match spec.forks.get(p.next_fork).map(|f| f.point) {
                    Some(ForkPoint::After(n)) => (n, u64::MAX),
                    Some(ForkPoint::At(addr)) => (u64::MAX, addr),
                    None => (u64::MAX, u64::MAX),
                };
                let exit_after = spec.exit_after.unwrap_or(u64::MAX);
                let stop_refs = fork_after.min(exit_after);
                let Some(pid) = p.pid else { break };
                let trace_pid = *p.first_trace_pid.get_or_insert(p.batch[p.pos].pid);
                let total = self.references();
                let start = p.pos;
                let chunk = budget.min(next_sample.saturating_sub(total).max(1)) as usize;
                let end = p.batch.len().min(start + chunk);
                // References before the next fork or exit point: the span stops there.
                let before_stop = stop_refs.saturating_sub(p.refs).min(usize::MAX as u64) as usize;
                let span_end = end.min(start.saturating_add(before_stop));
                let span = &p.batch[start..span_end];
                let has_fork_at = matches!(
                    spec.forks.get(p.next_fork).map(|f| f.point),
                    Some(ForkPoint::At(_))
                );
                let (done, stop) = if !has_fork_at {
                    self.run_span::<false>(pid, span, trace_pid, fork_at)?
                } else {
                    self.run_span::<true>(pid, span, trace_pid, fork_at)?
                };
                let k = start + done;
                p.refs += done as u64;
                let killed = stop == SpanStop::Killed;
                // A reference needs a decision: a fork or exit point, another pid.
                let slow = stop == SpanStop::Decide || (!killed && k < end && p.refs >= stop_refs);
                p.pos = k;
                budget -= (k - start) as u64;
                let total = self.references();
                if total >= next_progress {
                    observer.progress(total);
                    next_progress = total + PROGRESS_EVERY;
                }
                if total >= next_sample {
                    self.sample();
                    next_sample = total + self.timeline.interval();
                }
                self.kernel.timer(&mut self.mem, &mut self.mmu, total);
                if killed {
                    // The rest of its trace is never executed.
                    let refs = procs[i].refs;
                    self.record_refs(pid, refs);
                    procs[i].done = true;
                    procs[i].source = None;
                    break;
                }
                if !slow {
                    continue;
                }
                // The slow path: one reference that needs a decision.
                let p = &mut procs[i];
                let a = p.batch[p.pos];
                if a.kind == vmsim_trace::AccessKind::Instr && a.va == fork_at {
                    // A fork at an instruction comes before that instruction's fetch.
                    let f = &scenario.processes[p.spec].forks[p.next_fork];
                    let (child, wait, vfork) = (f.child, f.wait, f.vfork);
                    p.next_fork += 1;
                    self.start(&mut procs, scenario, child, Some((pid, vfork)))?;
                    if wait {
                        procs[i].waiting_for = Some(child);
                        break;
                    }
                    continue;
                }
                if p.refs >= exit_after {
                    self.finish(&mut procs, i)?;
                    break;
                }
                if a.pid != trace_pid {
                    // Another process of a multi-process trace: its own process, spawned on sight.
                    p.pos += 1;
                    budget -= 1;
                    let x = match p.extra.get(&a.pid) {
                        Some(&x) => x,
                        None => {
                            let spec = ProcessSpec {
                                name: format!("{}[{}]", scenario.processes[p.spec].name, a.pid),
                                ..scenario.processes[p.spec].clone()
                            };
                            let x = self.spawn(&spec, None)?;
                            procs[i].extra.insert(a.pid, x);
                            x
                        }
                    };
                    if self.kernel.process(x).is_ok() {
                        if let Some(r) = self.processes.get_mut(&x) {
                            r.references += 1;
                        }
                        self.access(x, &a)?;
                    }
                }
                // A fork after the N-th reference is taken at the top of the loop.
            }
        }
        self.sample();
        if self.snapshot.is_none() {
            self.take_snapshot();
        }
        // Processes still alive (blocked parents whose children were killed, extras).
        let alive: Vec<Pid> = self.kernel.processes().map(|p| p.pid).collect();
        for pid in alive {
            self.exit(pid)?;
        }
        if self.cfg.run.check {
            self.kernel
                .check_invariants(&self.mem)
                .map_err(SimError::Invariant)?;
        }
        Ok(Report::build(
            &self.cfg,
            scenario,
            self.references,
            self.translations,
            &self.mmu,
            &self.kernel,
            self.processes,
            self.timeline,
            self.peak_frames,
            self.peak_table_frames,
            self.snapshot,
            self.hardware_ad,
        ))
    }

    /// Starts scenario process `i`: spawned, or forked from `parent`.
    fn start(
        &mut self,
        procs: &mut [Proc],
        scenario: &Scenario,
        i: usize,
        parent: Option<(Pid, bool)>,
    ) -> Result<(), SimError> {
        let spec = &scenario.processes[i];
        let source = match &spec.trace {
            Some(t) => {
                let mut s = vmsim_trace::open(t)?;
                s.set_allow_empty(self.allow_empty);
                Some(s)
            }
            None => None,
        };
        let pid = self.spawn(spec, parent)?;
        procs[i].pid = Some(pid);
        procs[i].source = source;
        Ok(())
    }

    /// Process `i`'s trace ended: it exits (with its extras).
    fn finish(&mut self, procs: &mut [Proc], i: usize) -> Result<(), SimError> {
        // The memory picture of interest is the one just before the first exit.
        if self.snapshot.is_none() {
            self.take_snapshot();
        }
        procs[i].done = true;
        procs[i].source = None;
        let extras: Vec<Pid> = procs[i].extra.values().copied().collect();
        for x in extras {
            self.exit(x)?;
        }
        if let Some(pid) = procs[i].pid {
            let refs = procs[i].refs;
            self.record_refs(pid, refs);
            self.exit(pid)?;
        }
        Ok(())
    }

    fn record_refs(&mut self, pid: Pid, refs: u64) {
        if let Some(r) = self.processes.get_mut(&pid) {
            r.references = refs;
        }
    }
}
