//! The simulation: a configured machine (physical memory, MMU) and kernel
//! running one or more processes, each driven by a trace or a generator,
//! scheduled round robin, with forks, exits and every fault handled.
//!
//! Data flow per reference: the trace's [`Access`] becomes one translation
//! per page it touches, through the machine façade
//! ([`crate::machine::access`]: [`Mmu::translate`]; a fault goes to the
//! run's handler, `sim::faults`, which calls [`Kernel::handle_fault`] and
//! keeps the run's books; the translation is retried); a store writes
//! its stamp into the page ([`PhysMem::store_stamp`]); counters are read at
//! the end into a [`Report`].
//!
//! The run is a value: [`Simulation::start`] opens the inputs,
//! [`Simulation::run_until`] runs to any reference count and stops between
//! two references, [`Simulation::finish`] ends the run and reports; all the
//! scheduler's state lives in `Schedule` (`sim::schedule`), so a
//! stopped run can be captured and restored (`crate::checkpoint`) and goes
//! on exactly as if it had never stopped. [`Simulation::run`] is the three
//! in a row.
//!
//! The per-reference loop (`Simulation::run_span`) is monomorphic over the
//! observer and allocates nothing; the MMU's TLB-hit path is the common case.

mod faults;
#[cfg(test)]
mod fetch_repeats;
pub mod inputs;
pub(crate) mod restored;
mod restored_report;
pub(crate) mod schedule;
#[cfg(test)]
mod shared_repeats;
#[cfg(test)]
mod span_errors;
#[cfg(test)]
mod span_pages;
#[cfg(test)]
mod span_runs;
#[cfg(test)]
mod store_hits;

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vmsim_trace::scenario::{ForkPoint, LayoutKind, ProcessSpec, Scenario};
use vmsim_trace::{Access, AnySource, TraceError, TraceSource};

use crate::addr::{PhysAddr, Pid, VirtAddr};
use crate::config::{Config, ConfigError, MachineSpec};
use crate::kernel::{Kernel, KernelError, Layout, MmapFlags, Prot};
use crate::machine::{self, AccessError};
use crate::mmu::{AccessKind, LoadOrFetch, Mmu, MmuFault, PaHit, Privilege};
use crate::phys::{DirtyChunks, MemError, PhysMem};
use crate::report::{ProcessReport, Report, Timeline};

use faults::RunFaults;
use inputs::{InputError, InputId, InputPosition};
use schedule::Schedule;

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
    /// A trace input of a restored run could not be found or repositioned.
    #[error(transparent)]
    Input(#[from] InputError),
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
    Invariant(#[source] crate::kernel::InvariantError),
    /// A restored machine state does not fit the machine it is restored
    /// into (a forged or inconsistent checkpoint): the field and why.
    #[error("{0}")]
    Restore(String),
    /// A call out of order: running before [`Simulation::start`], or after the end.
    #[error("{0}")]
    State(&'static str),
    /// A checkpoint could not be taken or written.
    #[error(transparent)]
    Checkpoint(Box<crate::checkpoint::CheckpointError>),
    /// A migration's link failed while the run needed it (post-copy pages).
    #[error("post-copy: {0}")]
    Migrate(#[source] Box<crate::migrate::MigrateError>),
}

/// Hooks a caller can use to watch a run; every method has a no-op default,
/// and `()` is the observer that watches nothing, at no cost.
pub trait Observer {
    /// Called every [`PROGRESS_EVERY`] references with the total so far.
    fn progress(&mut self, _references: u64) {}

    /// Called after references of `pid` ran, in order: `first` is the run's
    /// number of `refs[0]` (the first reference of a run is 1). A reference
    /// that got its process killed is not included. Rewind-replay watches
    /// writes here; the default does nothing and costs nothing.
    #[inline(always)]
    fn ran(&mut self, _pid: Pid, _first: u64, _refs: &[Access]) {}
}

impl Observer for () {}

/// How often [`Observer::progress`] is called, in references.
pub const PROGRESS_EVERY: u64 = 1 << 16;

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

/// The numbers a span's out-of-line reference ([`Simulation::span_reference`])
/// needs besides its index in the span, kept in memory by
/// [`Simulation::run_span`]: given `stamp0 + k` and `base + k + 1` as
/// arguments, LLVM kept both as counters stepped every reference of the
/// loop as soon as the pid test was gone, which cost more than the test.
struct SpanPlace {
    /// The store stamp of the span's first reference.
    stamp0: u64,
    /// The run's reference number of the span's first reference.
    now0: u64,
    /// References that crossed a page (they count their own translations).
    crossing: u64,
    /// The out-of-line references by trace kind code (each counts itself
    /// here: with the count in the loop, LLVM kept the code and flipped a
    /// copy of it into the side in a byte register, two instructions more
    /// a recent hit).
    by_kind: [u64; 4],
    /// The span's process (for [`Simulation::span_load_rest`]).
    pid: Pid,
    /// The address and the index in the span of the reference
    /// [`Simulation::span_load`] is translating, kept here for
    /// [`Simulation::span_load_rest`]: with them passed along in
    /// registers, `span_load` kept them across the TLB probe's call in
    /// callee-saved registers and saved six on every call.
    va: VirtAddr,
    k: usize,
}

/// How one step of a time slice ends: the budget of references left in
/// the slice, or `None` when the slice ends (the process blocks, exits or
/// is killed).
type StepEnd = Option<u64>;

/// Where the fast path of one step must stop, worked out before the span
/// runs (see [`Simulation::step`]).
struct SpanPlan {
    /// The process running.
    pid: Pid,
    /// The pid its trace gives its own references (others are extras).
    trace_pid: u32,
    /// The span's first reference in the batch.
    start: usize,
    /// The span's end at the slice, sample, tick or caller's stop.
    end: usize,
    /// `end`, or earlier at the next fork or exit point.
    span_end: usize,
    /// The instruction address of the next fork at an address, if any.
    fork_at: u64,
    /// Whether the next fork is at an address.
    has_fork_at: bool,
    /// The process's reference count at its next fork or exit point.
    stop_refs: u64,
    /// The reference count at which it exits.
    exit_after: u64,
}

/// Where [`Simulation::run_until`] left the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Progress {
    /// It stopped at the reference count asked for; more remain.
    Stopped,
    /// Every process has finished: [`Simulation::finish`] reports.
    Finished,
}

/// Everything a run needs to continue exactly, except physical memory
/// contents (kept apart: they are the bulk, and checkpoints store them as
/// page data), the configuration (kept as TOML) and the open trace readers
/// (described by `sim::inputs`). Serializable: this is the machine state a
/// checkpoint captures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub mmu: Mmu,
    pub kernel: Kernel,
    pub current: Option<Pid>,
    pub hardware_ad: bool,
    pub page_shift: u32,
    pub page_mask: u64,
    pub references: [u64; 4],
    pub translations: u64,
    pub processes: BTreeMap<Pid, ProcessReport>,
    pub timeline: Timeline,
    pub peak_frames: u64,
    pub peak_table_frames: u64,
    pub snapshot: Option<crate::report::MemorySnapshot>,
    pub schedule: Schedule,
    pub ckpt: crate::checkpoint::run::CheckpointRun,
    /// The host's record of memory chunks written since the last checkpoint
    /// of the run's chain (`None`: not recording), filled in only while a
    /// capture serializes the machine: a snapshot taken between two
    /// checkpoints restores into a run whose next increment is complete.
    pub host_dirty: Option<Vec<u64>>,
    /// Record each process's memory digest when it exits (part of the
    /// state: a restored run goes on recording if the run did).
    pub digest_at_exit: bool,
    /// The digests recorded so far (part of the state: a process that
    /// exited before a checkpoint keeps its digest in a restored run).
    pub digests: Vec<crate::report::MemoryDigest>,
}

/// A configured machine and kernel, ready to run a scenario.
///
/// ```
/// use std::path::Path;
/// use vmsim::config::ConfigBuilder;
/// use vmsim::sim::Simulation;
/// use vmsim_trace::scenario::Scenario;
///
/// // A process that writes each of 64 pages once, then reads them again.
/// let scenario = Scenario::parse(
///     r#"
///     [[process]]
///     name = "scan"
///     trace = "synth:scan,bytes=256KiB,stride=4096,write=1,passes=2,base=0x10000000"
///     mmap = [{ addr = 0x10000000, len = "256KiB", prot = "rw" }]
///     "#,
///     "example.toml",
///     Path::new("."),
/// )?;
/// let cfg = ConfigBuilder::preset(Some("x86-64"))?.set("memory.frames=1024")?.build()?;
/// let report = Simulation::new(cfg)?.run(&scenario, &mut ())?;
/// assert_eq!(report.references, 128);
/// assert_eq!(report.processes[0].faults.demand_zero, 64); // the first pass only
/// assert_eq!(report.frames_leaked, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Simulation {
    pub(crate) cfg: MachineSpec,
    pub(crate) m: Machine,
    pub(crate) mem: PhysMem<DirtyChunks>,
    pub(crate) scenario: Arc<Scenario>,
    /// Open trace readers, per scenario process (host handles, not state).
    pub(crate) sources: Vec<Option<AnySource>>,
    /// Per scenario process, the pid every access of its batch carries
    /// when its source said so at the refill ([`TraceSource::batch_pid`]);
    /// `None` (or no entry) when not known. Whatever puts accesses into a
    /// batch other than the refill sets it to `None`.
    pub(crate) batch_pid: Vec<Option<u32>>,
    /// What each scenario process reads, once described (checksummed lazily).
    pub(crate) input_ids: Vec<Option<InputId>>,
    /// A state restored for inspection only (no input reopened): where the
    /// checkpoint said each process stood.
    pub(crate) recorded_inputs: Vec<Option<InputPosition>>,
    pub(crate) started: bool,
    /// Accept trace files without any reference (else `TraceError::Empty`).
    pub(crate) allow_empty: bool,
    /// Post-copy migration: the arriving process's pages not here yet.
    pub(crate) remote: Option<Box<crate::migrate::remote::RemotePages>>,
    /// Post-copy, between adoption and the run: the pages to come.
    pub(crate) pending_pages: Option<BTreeMap<u64, (crate::kernel::AdoptedPage, bool)>>,
    /// Counts the bytes read from trace files (for a progress bar).
    pub(crate) read_meter: Option<vmsim_trace::input::ReadMeter>,
    /// The error of the span's out-of-line reference that failed, for
    /// [`Simulation::run_span`] to return after its loop (host state, not
    /// the machine's: `None` between spans). Kept here so that
    /// `span_reference` answers in a register (a `Result<bool, SimError>`
    /// is returned through memory, written by the callee and read back by
    /// the loop, on every reference it takes), and not in the loop's
    /// locals, where an error to drop cost the loop its registers.
    pub(crate) span_error: Option<SimError>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("references", &self.references())
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
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

/// The [`LoadOrFetch`] of a trace kind code below 2 (a fetch or a load;
/// [`KIND_OF`] for the others): the code with its low bit flipped, as
/// `LoadOrFetch` numbers them the other way round.
#[inline(always)]
fn load_or_fetch(code: usize) -> LoadOrFetch {
    if code & 1 == 0 {
        LoadOrFetch::Fetch
    } else {
        LoadOrFetch::Load
    }
}

/// A failed access of `pid` at `va` as the run reports it.
#[cold]
fn access_error(pid: Pid, va: VirtAddr, e: AccessError<SimError>) -> SimError {
    match e {
        AccessError::Handler(e) => e,
        AccessError::Livelock { fault } => SimError::Livelock { pid, va, fault },
    }
}

impl Simulation {
    /// A machine and kernel as `spec` describes them.
    pub fn new(spec: MachineSpec) -> Result<Self, SimError> {
        let fmt = spec.format();
        let hardware_ad = spec.hardware_ad();
        let mut mem: PhysMem<DirtyChunks> = PhysMem::new(spec.memory_bytes())?;
        mem.bitmap_mut().off();
        let mut mmu = Mmu::new(fmt.clone(), spec.tlb(), hardware_ad).map_err(ConfigError::Tlb)?;
        let kernel = Kernel::with_structure(
            fmt.clone(),
            spec.frames(),
            spec.page_size(),
            spec.config().kernel.clone(),
            spec.structure(),
            &mut mem,
        )
        .map_err(ConfigError::Kernel)?;
        mmu.set_table_base(kernel.table_base());
        let timeline = Timeline::new(spec.config().run.timeline_points);
        let schedule = Schedule::new(spec.config().run.quantum, 0, timeline.interval());
        Ok(Self {
            m: Machine {
                timeline,
                page_shift: fmt.page_size().shift(),
                page_mask: fmt.page_size().mask(),
                mmu,
                kernel,
                current: None,
                hardware_ad,
                references: [0; 4],
                translations: 0,
                processes: BTreeMap::new(),
                peak_frames: 0,
                peak_table_frames: 0,
                snapshot: None,
                schedule,
                ckpt: crate::checkpoint::run::CheckpointRun::default(),
                host_dirty: None,
                digest_at_exit: false,
                digests: Vec::new(),
            },
            cfg: spec,
            mem,
            scenario: Arc::new(Scenario {
                description: String::new(),
                quantum: None,
                preset: None,
                set: Vec::new(),
                processes: Vec::new(),
            }),
            sources: Vec::new(),
            batch_pid: Vec::new(),
            input_ids: Vec::new(),
            recorded_inputs: Vec::new(),
            started: false,
            allow_empty: false,
            remote: None,
            pending_pages: None,
            read_meter: None,
            span_error: None,
        })
    }

    /// A simulation from a restored state: the machine, its memory and its
    /// scenario (inputs are reopened by the caller). Checks the kernel's
    /// invariants against the memory, then the MMU, the machine's fields and
    /// the scheduler against the configuration and the scenario (see
    /// `sim/restored.rs`), so an inconsistent or forged state is refused
    /// before it runs.
    pub(crate) fn from_parts(
        cfg: MachineSpec,
        m: Machine,
        mut mem: PhysMem<DirtyChunks>,
        scenario: Arc<Scenario>,
    ) -> Result<Self, SimError> {
        m.kernel
            .check_invariants(&mem)
            .map_err(SimError::Invariant)?;
        m.check_restored(&cfg, mem.size(), &scenario)
            .map_err(SimError::Restore)?;
        let mut m = m;
        m.mmu.resume_context();
        match m.host_dirty.take() {
            Some(marked) => {
                let chunks = mem.chunk_count();
                let b = mem.bitmap_mut();
                b.track(chunks);
                for c in marked {
                    crate::phys::Bitmap::mark(b, c);
                }
            }
            None => mem.bitmap_mut().off(),
        }
        let n = scenario.processes.len();
        Ok(Self {
            cfg,
            m,
            mem,
            scenario,
            sources: (0..n).map(|_| None).collect(),
            batch_pid: vec![None; n],
            input_ids: vec![None; n],
            recorded_inputs: Vec::new(),
            started: true,
            allow_empty: false,
            remote: None,
            pending_pages: None,
            read_meter: None,
            span_error: None,
        })
    }

    /// Accept trace files without any reference. By default a process
    /// whose trace file holds none stops the run with `TraceError::Empty`:
    /// an empty file is almost always the wrong file.
    pub fn set_allow_empty(&mut self, allow: bool) {
        self.allow_empty = allow;
    }

    /// Add the bytes read from trace files opened from now on to `meter`:
    /// how far a run is through traces whose length is known only in bytes
    /// (a progress bar reads it; the run pays one atomic add per read of
    /// the file, nothing per reference).
    pub fn set_read_meter(&mut self, meter: vmsim_trace::input::ReadMeter) {
        self.read_meter = Some(meter);
    }

    /// Record each process's memory digest (every page's address and
    /// contents hash) when it exits, for the report's `memory_digests`: what
    /// tests compare between a migrated or restored run and a plain one.
    pub fn set_digest_at_exit(&mut self, on: bool) {
        self.m.digest_at_exit = on;
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        self.cfg.config()
    }

    /// The machine the configuration resolved to.
    #[must_use]
    pub fn spec(&self) -> &MachineSpec {
        &self.cfg
    }

    /// The kernel.
    #[must_use]
    pub fn kernel(&self) -> &Kernel {
        &self.m.kernel
    }

    /// The MMU.
    #[must_use]
    pub fn mmu(&self) -> &Mmu {
        &self.m.mmu
    }

    /// Physical memory (page tables and page contents).
    #[must_use]
    pub fn memory(&self) -> &PhysMem<DirtyChunks> {
        &self.mem
    }

    /// The scenario being run (empty before [`Simulation::start`]).
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// References simulated so far.
    #[must_use]
    pub fn references(&self) -> u64 {
        self.m.references.iter().sum()
    }

    /// Whether every process has finished (then [`Simulation::finish`] reports).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.m.schedule.finished
    }

    /// The kernel pid of each scenario process that has started, by
    /// scenario index, with the references it has made.
    #[must_use]
    pub fn scenario_pids(&self) -> Vec<(usize, Pid, u64)> {
        self.m
            .schedule
            .procs
            .iter()
            .filter_map(|p| p.pid.map(|pid| (p.spec, pid, p.refs)))
            .collect()
    }

    /// The scenario name of process `pid`.
    #[must_use]
    pub fn process_name(&self, pid: Pid) -> Option<String> {
        self.m.processes.get(&pid).map(|r| r.name.clone())
    }

    /// The last instruction address `pid` fetched (trace `I` records), if any.
    #[must_use]
    pub fn last_instruction(&self, pid: Pid) -> Option<u64> {
        self.m.schedule.last_instr.get(&pid).copied()
    }

    fn switch_to(&mut self, pid: Pid) -> Result<(), SimError> {
        if self.cfg.config().run.check {
            self.m
                .kernel
                .check_invariants(&self.mem)
                .map_err(SimError::Invariant)?;
        }
        let (root, asid) = self
            .m
            .kernel
            .context(pid)
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        self.m.mmu.set_context(root, asid);
        self.m.current = Some(pid);
        Ok(())
    }

    /// Simulates one reference of `pid` outside a span (an extra pid of a
    /// multi-process trace): one translation per page it touches, faults
    /// handled, its stamp written. Returns false if the process was killed.
    fn access(&mut self, pid: Pid, a: &Access, stamp: u64) -> Result<bool, SimError> {
        if self.m.current != Some(pid) {
            self.switch_to(pid)?;
        }
        self.m.references[a.kind.code() as usize] += 1;
        let now = self.references();
        let kind = KIND_OF[a.kind.code() as usize];
        if (a.va & self.m.page_mask) + u64::from(a.size) > self.m.page_mask + 1 {
            return self.access_pages(pid, a, kind, stamp, now);
        }
        self.m.translations += 1;
        let va = VirtAddr::new(a.va);
        let Some(pa) = self.translate(pid, va, kind, now)? else {
            return Ok(false);
        };
        if a.kind.writes() {
            self.mem.store_stamp(pa, a.size, stamp);
        }
        Ok(true)
    }

    /// A reference that crosses page boundaries: every page it touches, each
    /// part of a store getting its bytes of the stamp.
    #[cold]
    #[inline(never)]
    fn access_pages(
        &mut self,
        pid: Pid,
        a: &Access,
        kind: AccessKind,
        stamp: u64,
        now: u64,
    ) -> Result<bool, SimError> {
        let (first, last) = a.pages(self.m.page_shift);
        for page in first..=last {
            let va = if page == first {
                VirtAddr::new(a.va)
            } else {
                VirtAddr::new(page << self.m.page_shift)
            };
            self.m.translations += 1;
            let Some(pa) = self.translate(pid, va, kind, now)? else {
                return Ok(false);
            };
            if a.kind.writes() {
                let off = va.as_u64() - a.va;
                let end =
                    ((page + 1) << self.m.page_shift).min(a.va.saturating_add(u64::from(a.size)));
                let len = (end - va.as_u64()) as u32;
                self.mem
                    .store_stamp(pa, len, stamp.rotate_right(8 * (off % 8) as u32));
            }
        }
        Ok(true)
    }

    /// The fast path of [`Simulation::run_until`]: simulates the references
    /// of `span` for `pid` (trace pid `trace_pid`) until one needs a decision
    /// (another trace pid, or with `FORK_AT` an instruction fetch at
    /// `fork_at`), the process is killed, or the span ends. A store writes
    /// `stamp0 + k` (its process's reference number) into its bytes. Returns
    /// how many references were simulated and why it stopped.
    ///
    /// Exactly one access per reference, with the context switch hoisted
    /// (only a kill changes the current process here) and the reference and
    /// translation counts kept in registers until the end.
    ///
    /// With `RECENT` (a TLB whose first level remembers recent hits, see
    /// [`crate::mmu::Tlb::has_recent_hits`]) a load or fetch that hits one
    /// is done in the loop ([`Mmu::hit_recent`]) and every other reference
    /// is handed to [`Simulation::span_reference`], out of line; without,
    /// every reference is translated in the loop.
    ///
    /// Without `PID_CHECK` the caller knows every reference of `span` has
    /// the pid `trace_pid` (see [`TraceSource::batch_pid`]): no reference
    /// is tested for it.
    #[inline(never)]
    fn run_span<const FORK_AT: bool, const RECENT: bool, const PID_CHECK: bool>(
        &mut self,
        pid: Pid,
        span: &[Access],
        trace_pid: u32,
        fork_at: u64,
        stamp0: u64,
    ) -> Result<(usize, SpanStop), SimError> {
        let decide = |a: &Access| {
            (PID_CHECK && a.pid != trace_pid)
                || (FORK_AT && a.va == fork_at && a.kind == vmsim_trace::AccessKind::Instr)
        };
        match span.first() {
            None => return Ok((0, SpanStop::End)),
            // No context switch for a process that does not run here.
            Some(a) if decide(a) => return Ok((0, SpanStop::Decide)),
            Some(_) => {}
        }
        if self.m.current != Some(pid) {
            self.switch_to(pid)?;
        }
        let base = self.references();
        let page_mask = self.m.page_mask;
        let mut by_kind = [0u64; 4];
        // References that cross a page (they count their own translations):
        // every other reference simulated is one translation, counted at
        // the end (a counter the common case does not touch).
        let mut crossing = 0u64;
        // The out-of-line reference's numbers, kept in memory and given
        // with the reference's index (see `SpanPlace`).
        let mut place = SpanPlace {
            stamp0,
            now0: base + 1,
            crossing: 0,
            by_kind: [0; 4],
            pid,
            va: VirtAddr::new(0),
            k: 0,
        };
        let mut done = span.len();
        let mut stop = SpanStop::End;
        // With recent hits, the loads and fetches they answer are counted
        // by kind after the loop, from the MMU's running totals (no
        // counter per reference on the hit path); every other reference
        // counts itself.
        let hits0 = if RECENT {
            self.m.mmu.recent_hits()
        } else {
            [0; 2]
        };
        // The block of the last fetch `hit_recent` took in this loop,
        // while only load hits and stores taken whole (which change the
        // data side alone) came after it: `fetch_room` bytes from
        // `fetch_base`, the smaller of the side's recent-hit granule and
        // the page (so a reference inside it is inside one page, of the
        // hit's key); `fetch_room` 0 when there is none. A fetch inside it
        // is that hit again, its recent way still the side's last
        // (`Mmu::hit_recent_again`). Instruction fetches stay on one page
        // for many references: one test (the page's and the key's at once)
        // instead of the page test and the lookup.
        let fetch_block = if RECENT {
            1u64.checked_shl(self.m.mmu.recent_shift(LoadOrFetch::Fetch))
                .unwrap_or(u64::MAX)
                .min(page_mask.wrapping_add(1))
        } else {
            0
        };
        let mut fetch_base = 0u64;
        let mut fetch_room = 0u64;
        // Without recent hits (a first level shared by both sides): the
        // block of the last hit `hit_shared` took in this loop, at
        // `shared_va`, of kind code `shared_code` (a load or a fetch: the
        // sides differ), while nothing else was done since (every other
        // reference ends it; `shared_code` is `NO_CODE` when there is
        // none): the aligned block of `shared_room` bytes around it, the
        // smallest of both sides' key granules and the page. A reference
        // of that kind whose first and last bytes are both in that block
        // is that hit again (the same key, inside one page), its touch
        // already the one owed last (`Mmu::hit_shared_again`): counted in
        // `again`, and added to the MMU and to `by_kind` before the next
        // other reference. Loads and fetches repeat the last page for long
        // runs (4.7M of lsR_linux's 10.4M references on the fully
        // associative rows).
        const NO_CODE: usize = usize::MAX;
        let shared_room = if !RECENT && self.m.mmu.shared_repeats_on() {
            let shift = self
                .m
                .mmu
                .recent_shift(LoadOrFetch::Fetch)
                .min(self.m.mmu.recent_shift(LoadOrFetch::Load));
            1u64.checked_shl(shift)
                .unwrap_or(u64::MAX)
                .min(page_mask.wrapping_add(1))
        } else {
            0
        };
        let mut shared_va = 0u64;
        let mut shared_code = NO_CODE;
        let mut again = 0u64;
        for (k, a) in span.iter().enumerate() {
            if decide(a) {
                done = k;
                stop = SpanStop::Decide;
                break;
            }
            let code = usize::from(a.kind.code());
            if !RECENT {
                // Its first and last bytes differ from the hit's address
                // in no bit above the block's (the room, a power of two).
                let first = a.va ^ shared_va;
                let last = a.va.wrapping_add(u64::from(a.size)).wrapping_sub(1) ^ shared_va;
                if code == shared_code && first | last < shared_room {
                    again += 1;
                    continue;
                }
                if again != 0 {
                    self.m
                        .mmu
                        .hit_shared_again(load_or_fetch(shared_code), again);
                    by_kind[shared_code & 3] += again;
                    again = 0;
                }
                shared_code = NO_CODE;
                by_kind[code] += 1;
            }
            if RECENT {
                // The common case, in line: a load or fetch inside one page
                // that hits a recent TLB entry is done (a load's data is not
                // simulated). Everything else, out of line, so that the loop
                // keeps its values in registers.
                if code == 0 {
                    // Its first and last bytes' offsets from the block
                    // (wrapping: below the block is above any room, and
                    // then so is the OR) both below the room, a power of
                    // two: inside the block.
                    let first = a.va.wrapping_sub(fetch_base);
                    let last = first.wrapping_add(u64::from(a.size)).wrapping_sub(1);
                    if first | last < fetch_room {
                        self.m.mmu.hit_recent_again(LoadOrFetch::Fetch);
                        continue;
                    }
                }
                // Whether the span goes on after a reference that is not a
                // recent hit (anything may change there: a fill, a fault, a
                // new generation of recent hits). One test of the answer
                // for both calls: with a test after each, LLVM kept the
                // reference's index twice (one instruction more on every
                // reference, the recent hits' too).
                let go_on = if code < 2 && (a.va & page_mask) + u64::from(a.size) <= page_mask + 1 {
                    // One copy of the hit path per side, its side a
                    // constant: the side's tables at fixed offsets, where
                    // the side worked out from the code took seven
                    // instructions a hit to address the recent table (its
                    // offset scaled, then added as a third term), more
                    // than the test that chooses the copy.
                    let va = VirtAddr::new(a.va);
                    if code == 0 {
                        if self.m.mmu.hit_recent(va, LoadOrFetch::Fetch) {
                            fetch_base = a.va & !fetch_block.wrapping_sub(1);
                            fetch_room = fetch_block;
                            continue;
                        }
                        fetch_room = 0;
                        self.span_load::<true>(va, k, &mut place)
                    } else {
                        if self.m.mmu.hit_recent(va, LoadOrFetch::Load) {
                            continue;
                        }
                        fetch_room = 0;
                        self.span_load::<false>(va, k, &mut place)
                    }
                } else {
                    // A store that a recent hit takes whole: a small call,
                    // before the larger one.
                    if code >= 2 && self.span_store(a, k, &mut place) {
                        continue;
                    }
                    fetch_room = 0;
                    self.span_reference(pid, a, k, &mut place)
                };
                if !go_on {
                    // Killed, or failed: its error is returned after the
                    // loop (out of it, so that the loop keeps its
                    // registers), before anything is counted. It counts as
                    // done: `done` is made `k + 1` after the loop, so that
                    // the loop keeps one index, not `k` and `k + 1` both
                    // (one instruction on every reference).
                    done = k;
                    stop = SpanStop::Killed;
                    break;
                }
                continue;
            }
            let kind = KIND_OF[code];
            // Each branch stops the span itself when the process is killed
            // (no flag carried from the branches to a test after them).
            if (a.va & page_mask) + u64::from(a.size) > page_mask + 1 {
                crossing += 1;
                if !self.access_pages(pid, a, kind, stamp0 + k as u64, base + k as u64 + 1)? {
                    done = k + 1;
                    stop = SpanStop::Killed;
                    break;
                }
            } else if kind == AccessKind::Write {
                // A store also writes its stamp. A recent hit of the shared
                // first level that is writable and dirty takes it whole.
                if let Some(pa) = self.m.mmu.store_shared(VirtAddr::new(a.va)) {
                    self.mem.store_stamp(pa, a.size, stamp0 + k as u64);
                    continue;
                }
                if !self.store::<true>(pid, a, stamp0 + k as u64, base + k as u64 + 1)? {
                    done = k + 1;
                    stop = SpanStop::Killed;
                    break;
                }
            } else {
                // Without recent hits the first level is shared by both
                // sides: its hit path for a load or fetch that its recent
                // hit grants (no rights tested), else the lookup itself
                // (`hit_shared` just made the TLB-hit path's test).
                let va = VirtAddr::new(a.va);
                if self.m.mmu.hit_shared(va, load_or_fetch(code)) {
                    shared_code = code;
                    shared_va = a.va;
                    continue;
                }
                if !self.span_unshared(pid, va, kind, base + k as u64 + 1)? {
                    done = k + 1;
                    stop = SpanStop::Killed;
                    break;
                }
            }
        }
        if RECENT && let Some(e) = self.span_error.take() {
            return Err(e);
        }
        if RECENT && stop == SpanStop::Killed {
            // The killed reference (see the loop's kill).
            done += 1;
        }
        if again != 0 {
            self.m
                .mmu
                .hit_shared_again(load_or_fetch(shared_code), again);
            by_kind[shared_code & 3] += again;
        }
        if RECENT {
            let hits = self.m.mmu.recent_hits();
            for (code, side) in [(0, LoadOrFetch::Fetch), (1, LoadOrFetch::Load)] {
                let side = side.side() & 1;
                by_kind[code] += hits[side].wrapping_sub(hits0[side]);
            }
            for (total, n) in by_kind.iter_mut().zip(place.by_kind) {
                *total += n;
            }
        }
        for (total, n) in self.m.references.iter_mut().zip(by_kind) {
            *total += n;
        }
        // Each reference simulated reached one of the branches (a killed one
        // too): `done` of them.
        self.m.translations += done as u64 - crossing - place.crossing;
        Ok((done, stop))
    }

    /// One reference of a span (see [`Simulation::run_span`]) that a
    /// recent TLB hit does not settle, the span's `k`th: every page it
    /// touches translated, a store's stamp written. `place.crossing` counts
    /// the references that cross a page. Returns false if the process was
    /// killed or the reference failed (its error then in
    /// `Simulation::span_error`).
    #[inline(never)]
    fn span_reference(&mut self, pid: Pid, a: &Access, k: usize, place: &mut SpanPlace) -> bool {
        let code = usize::from(a.kind.code());
        let stamp = place.stamp0 + k as u64;
        let now = place.now0 + k as u64;
        let page_mask = self.m.page_mask;
        let kind = KIND_OF[code];
        if (a.va & page_mask) + u64::from(a.size) > page_mask + 1 {
            place.by_kind[code] += 1;
            place.crossing += 1;
            let r = self.access_pages(pid, a, kind, stamp, now);
            self.settle(r)
        } else if kind == AccessKind::Write {
            place.by_kind[code] += 1;
            let r = self.store::<false>(pid, a, stamp, now);
            self.settle(r)
        } else {
            // (The span loop hands a load or fetch inside one page to
            // `span_load` itself.)
            let va = VirtAddr::new(a.va);
            if code == 0 {
                self.span_load::<true>(va, k, place)
            } else {
                self.span_load::<false>(va, k, place)
            }
        }
    }

    /// A load (a fetch with `FETCH`) of a span (see
    /// [`Simulation::run_span`]), the span's `k`th, inside one page, that a
    /// recent TLB hit does not settle: its translation, a fault handled.
    /// Returns false if the process was killed or the reference failed (its
    /// error then in `Simulation::span_error`).
    ///
    /// Why a function of its own, not [`Simulation::span_reference`]'s:
    /// the loop has just tested the page and the kind, so the reference's
    /// address is passed, not the access to be read and tested again (its
    /// kind's counter, the page test, the store test, the stamp), and the
    /// kind is a constant, in its counters' addresses and in the TLB's
    /// lookup: some sixteen instructions a reference on a walk-heavy run,
    /// where nearly every reference comes here.
    ///
    /// Split in three: here the TLB probe, the hit that grants the load
    /// (most of the `.vmt` rows' calls) and the walk after a miss (the
    /// walk-heavy rows'; out of line it paid both functions' saved
    /// registers and a tail call); out of line the hit whose rights
    /// refuse the load ([`Simulation::span_load_rest`]) and the fault
    /// ([`Simulation::span_load_fault`]). Their values (the process, the
    /// address, the index) go through `place`, not registers: kept in
    /// registers across the probe's call they cost six saved registers
    /// and a spill on every call; now four are saved.
    #[inline(never)]
    fn span_load<const FETCH: bool>(
        &mut self,
        va: VirtAddr,
        k: usize,
        place: &mut SpanPlace,
    ) -> bool {
        let code = if FETCH { 0 } else { 1 };
        place.by_kind[code] += 1;
        place.va = va;
        place.k = k;
        let kind = KIND_OF[code];
        // `hit_recent` just found no recent hit that grants it: the
        // TLB-hit path of `translate` would find none either.
        if !self.m.mmu.has_recent_hits() {
            return self.span_load_rest::<FETCH, false>(place, PaHit::missed());
        }
        let hit = self.m.mmu.probe_unremembered(va, kind);
        if hit.found().is_some() {
            if Mmu::grants(hit, kind, Privilege::User) {
                return true;
            }
            // A hit whose rights refuse the load: out of line.
            return self.span_load_rest::<FETCH, true>(place, hit);
        }
        // The walk, here (`self` and `place` are kept across the probe
        // anyway; in `span_load_rest` it saved four registers more), its
        // fault out of line.
        let result = self
            .m
            .mmu
            .after_probe(&mut self.mem, va, kind, Privilege::User, hit);
        match result {
            Ok(_) => true,
            Err(fault) => self.span_load_fault::<FETCH>(place, fault),
        }
    }

    /// [`Simulation::span_load`]'s fault `fault` of `place.va`, the span's
    /// `place.k`th reference, handled: what `span_load` returns.
    #[cold]
    #[inline(never)]
    fn span_load_fault<const FETCH: bool>(
        &mut self,
        place: &mut SpanPlace,
        fault: MmuFault,
    ) -> bool {
        let kind = KIND_OF[if FETCH { 0 } else { 1 }];
        let now = place.now0 + place.k as u64;
        let r = self
            .translate_fault(place.pid, place.va, kind, now, fault)
            .map(|p| p.is_some());
        self.settle(r)
    }

    /// The rest of [`Simulation::span_load`] of `place.va`, the span's
    /// `place.k`th reference, after its probe answered `hit` (`PROBED`;
    /// without it, with a shared first level, the whole translation of
    /// [`Mmu::translate_unremembered`]): the walk, or the hit's rights,
    /// and a fault handled. Returns what `span_load` returns.
    #[inline(never)]
    fn span_load_rest<const FETCH: bool, const PROBED: bool>(
        &mut self,
        place: &mut SpanPlace,
        hit: PaHit,
    ) -> bool {
        let kind = KIND_OF[if FETCH { 0 } else { 1 }];
        let va = place.va;
        let result = if PROBED {
            self.m
                .mmu
                .after_probe(&mut self.mem, va, kind, Privilege::User, hit)
        } else {
            self.m
                .mmu
                .translate_unremembered(&mut self.mem, va, kind, Privilege::User)
        };
        match result {
            Ok(_) => true,
            Err(fault) => self.span_load_fault::<FETCH>(place, fault),
        }
    }

    /// `r`'s answer for [`Simulation::span_reference`] (whether the span
    /// goes on), its error kept in `span_error`.
    #[inline(always)]
    fn settle(&mut self, r: Result<bool, SimError>) -> bool {
        match r {
            Ok(go_on) => go_on,
            Err(e) => {
                self.span_error = Some(e);
                false
            }
        }
    }

    /// A load or fetch of the span loop without recent hits (a first level
    /// shared by both sides) that [`Mmu::hit_shared`] did not take, of
    /// `pid`'s reference number `now`: the lookup, out of line. Returns
    /// false if the process was killed.
    #[inline(never)]
    fn span_unshared(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        now: u64,
    ) -> Result<bool, SimError> {
        // `hit_shared` found no recent hit that grants it: the TLB-hit
        // path of `translate` would find none either (see
        // `Mmu::translate_unshared`).
        let result = self
            .m
            .mmu
            .translate_unshared(&mut self.mem, va, kind, Privilege::User);
        match result {
            Ok(_) => Ok(true),
            Err(fault) => Ok(self.translate_fault(pid, va, kind, now, fault)?.is_some()),
        }
    }

    /// A store of a span (see [`Simulation::run_span`]), the span's `k`th,
    /// when a recent TLB hit takes it whole ([`Mmu::store_recent`]: inside
    /// one page, a recent data-side hit that grants the store and is
    /// already dirty): its stamp written, as [`Simulation::span_reference`]
    /// would write it after the same translation, and counted by kind in
    /// `place`. Returns false, having done nothing, for any other store
    /// (the caller hands it to `span_reference`). Out of line: the loop
    /// keeps its registers, and this leaf needs few of its own.
    ///
    /// Its common case (a store of at most 8 bytes in a stored chunk:
    /// [`PhysMem::store_stamp_fast`]; the data side's last recent hit)
    /// makes no call and keeps nothing across one, so it saves no
    /// registers; a recent way to touch is touched after the stamp, by
    /// [`Mmu::touch_store`] (the last call). A stamp the fast write
    /// declines goes to [`Simulation::span_store_touch`] (a tail call) when
    /// a touch is due, else to [`PhysMem::store_stamp_out`].
    #[inline(never)]
    fn span_store(&mut self, a: &Access, k: usize, place: &mut SpanPlace) -> bool {
        let page_mask = self.m.page_mask;
        if (a.va & page_mask) + u64::from(a.size) > page_mask + 1 {
            return false;
        }
        let Some((pa, way)) = self.m.mmu.store_recent_hit(VirtAddr::new(a.va)) else {
            return false;
        };
        place.by_kind[usize::from(a.kind.code())] += 1;
        let stamp = place.stamp0 + k as u64;
        // The stamp first (the TLB and memory are apart: the order changes
        // nothing), so that the touch is the last call and needs nothing
        // kept across it; whether the way needs one is decided after the
        // stamp, from the way (one value fewer kept across the stamp's
        // chunk lookup than with the look's answer: one push fewer).
        if self.mem.store_stamp_fast(pa, a.size, stamp) {
            self.m.mmu.take_store_at(way);
            return true;
        }
        if self.m.mmu.store_needs_touch(way) {
            return self.span_store_touch(pa, way, a.size, stamp);
        }
        self.m.mmu.count_store();
        self.mem.store_stamp_out(pa, a.size, stamp);
        true
    }

    /// The rest of a store [`Simulation::span_store`] takes (and has
    /// counted by kind) when its recent way (`way`, of the data side) is not
    /// the side's last: the way touched and the store counted
    /// ([`Mmu::touch_store`]), `stamp` written in its `len` bytes at `pa`.
    /// Returns true. Five arguments in registers: a tail call.
    #[inline(never)]
    fn span_store_touch(&mut self, pa: PhysAddr, way: usize, len: u32, stamp: u64) -> bool {
        self.m.mmu.touch_store(way);
        self.mem.store_stamp(pa, len, stamp);
        true
    }

    /// One store inside a page: the translation, then the stamp. Returns
    /// false if the process was killed. With `SHARED` (the span loop
    /// without recent hits) through [`Mmu::translate_as`].
    #[inline(always)]
    fn store<const SHARED: bool>(
        &mut self,
        pid: Pid,
        a: &Access,
        stamp: u64,
        now: u64,
    ) -> Result<bool, SimError> {
        let va = VirtAddr::new(a.va);
        let Some(pa) = self.translate_as::<SHARED>(pid, va, AccessKind::Write, now)? else {
            return Ok(false);
        };
        self.mem.store_stamp(pa, a.size, stamp);
        Ok(true)
    }

    /// One translation of `pid`'s reference number `now` of the run,
    /// through the machine façade: the MMU translates; a fault goes to the
    /// run's handler (`sim::faults`: the kernel, and the books) and the
    /// MMU retries. Returns the physical address, or `None` if the process
    /// was killed. The handler is built on the fault path only.
    #[inline(always)]
    fn translate(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        now: u64,
    ) -> Result<Option<PhysAddr>, SimError> {
        self.translate_as::<false>(pid, va, kind, now)
    }

    /// [`Simulation::translate`], with `SHARED` through
    /// [`Mmu::translate_as`] (the span loop without recent hits, whose
    /// first level is shared: the same result on any TLB).
    #[inline(always)]
    fn translate_as<const SHARED: bool>(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        now: u64,
    ) -> Result<Option<PhysAddr>, SimError> {
        match self
            .m
            .mmu
            .translate_as::<SHARED, _>(&mut self.mem, va, kind, Privilege::User)
        {
            Ok(pa) => Ok(Some(pa)),
            Err(fault) => self.translate_fault(pid, va, kind, now, fault),
        }
    }

    /// The fault path of [`Simulation::translate`]: builds the run's
    /// handler (a dozen borrowed fields: built before every translation, it
    /// cost ~23 instructions a reference, +15% on `vmsim run`) and hands it to
    /// [`machine::resolve`], the façade's translate-handle-retry loop.
    #[cold]
    #[inline(never)]
    fn translate_fault(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        kind: AccessKind,
        now: u64,
        fault: MmuFault,
    ) -> Result<Option<PhysAddr>, SimError> {
        let Simulation {
            cfg,
            m,
            mem,
            remote,
            ..
        } = self;
        let Machine {
            mmu,
            kernel,
            processes,
            peak_frames,
            peak_table_frames,
            current,
            ckpt,
            references,
            ..
        } = m;
        let mut faults = RunFaults {
            kernel,
            processes,
            peak_frames,
            peak_table_frames,
            current,
            ckpt,
            ckpt_cfg: &cfg.config().checkpoint,
            remote,
            references,
            pid,
            now,
            first: true,
        };
        machine::resolve(mmu, mem, &mut faults, va, kind, Privilege::User, fault)
            .map_err(|e| access_error(pid, va, e))
    }

    fn spawn(&mut self, spec: &ProcessSpec, parent: Option<(Pid, bool)>) -> Result<Pid, SimError> {
        let err = |source| SimError::Kernel {
            process: spec.name.clone(),
            source,
        };
        let (mem, mmu, kernel) = (&mut self.mem, &mut self.m.mmu, &mut self.m.kernel);
        let pid = match parent {
            None => {
                let layout = match spec.layout {
                    LayoutKind::Standard => Layout::Standard,
                    LayoutKind::Flat => Layout::Flat,
                };
                kernel.spawn(mem, layout).map_err(err)?
            }
            Some((parent, true)) => kernel.vfork(parent).map_err(err)?,
            Some((parent, false)) => kernel.fork(mem, mmu, parent).map_err(err)?,
        };
        if spec.brk > 0 {
            kernel.sbrk(mem, mmu, pid, spec.brk as i64).map_err(err)?;
        }
        for m in &spec.mmap {
            let flags = MmapFlags {
                shared: m.shared,
                fixed: m.addr.is_some(),
            };
            kernel
                .mmap(
                    mem,
                    mmu,
                    pid,
                    m.addr.map(VirtAddr::new),
                    m.len,
                    Prot::from(m.prot),
                    flags,
                )
                .map_err(err)?;
        }
        let mut report = ProcessReport::new(pid);
        report.name = spec.name.clone();
        report.parent = parent.map(|(p, _)| p);
        self.m.processes.insert(pid, report);
        Ok(pid)
    }

    pub(crate) fn exit(&mut self, pid: Pid) -> Result<(), SimError> {
        if self.m.kernel.process(pid).is_err() {
            return Ok(()); // killed earlier
        }
        if self.remote.as_ref().is_some_and(|r| r.pid == pid) {
            // Post-copy: its last pages come in before it goes.
            self.drain_remote()?;
        }
        if self.m.digest_at_exit {
            self.record_digest(pid)?;
        }
        let k = &self.m.kernel;
        if let Some(p) = self.m.processes.get_mut(&pid)
            && let Ok(space) = k.space_of(pid)
        {
            p.resident_at_exit = space.resident;
            p.page_table_frames = k
                .tables()
                .tables(k.format(), &self.mem, space.asid)
                .map(|t| {
                    t.iter()
                        .map(|(idx, _)| 1u64 << k.format().table_order(*idx))
                        .sum()
                })
                .unwrap_or(0);
        }
        self.m
            .kernel
            .exit(&mut self.mem, &mut self.m.mmu, pid)
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        if self.m.current == Some(pid) {
            self.m.current = None;
        }
        Ok(())
    }

    fn take_snapshot(&mut self) {
        let k = &self.m.kernel;
        let used = k.frames_in_use();
        self.m.peak_frames = self.m.peak_frames.max(used);
        self.m.peak_table_frames = self.m.peak_table_frames.max(k.table_frames());
        self.m.snapshot = Some(crate::report::MemorySnapshot::of(k));
    }

    fn sample(&mut self) {
        let c = self.m.mmu.counters();
        let refs = self.references();
        let k = &self.m.kernel;
        let s = k.stats();
        self.m.timeline.push(crate::report::Sample {
            references: refs,
            faults: crate::report::Sample::faults_of(s),
            tlb_misses: c.tlb.full_misses,
            frames_used: k.frames_in_use(),
            resident: k
                .processes()
                .filter_map(|p| k.space_of(p.pid).ok().map(|s| (p.pid.as_u32(), s.resident)))
                .collect(),
            major_faults: k.paging_stats().major_faults,
        });
    }

    /// Runs a scenario to its end and reports. `observer` sees progress.
    pub fn run(
        mut self,
        scenario: &Scenario,
        observer: &mut impl Observer,
    ) -> Result<Report, SimError> {
        self.start(scenario)?;
        self.run_to_end(observer, None)
    }

    /// Starts `scenario`: opens its traces and creates its first processes
    /// (those no other process forks). Then [`Simulation::run_until`] runs it.
    pub fn start(&mut self, scenario: &Scenario) -> Result<(), SimError> {
        if self.started {
            return Err(SimError::State("the simulation has already started"));
        }
        // The scenario's own quantum, when it gives one, else the machine's.
        let quantum = scenario
            .quantum
            .map_or(self.cfg.config().run.quantum, NonZeroU64::get);
        let n = scenario.processes.len();
        self.scenario = Arc::new(scenario.clone());
        self.m.schedule = Schedule::new(quantum, n, self.m.timeline.interval());
        self.sources = (0..n).map(|_| None).collect();
        self.batch_pid = vec![None; n];
        self.input_ids = vec![None; n];
        self.started = true;
        for (i, spec) in scenario.processes.iter().enumerate() {
            if spec.parent.is_none() {
                self.start_process(i, None)?;
            }
        }
        Ok(())
    }

    /// Runs until `stop` references have been simulated in all (or the run
    /// ends), stopping between two references. Stopping changes nothing:
    /// a run stopped anywhere and continued gives the report of a run that
    /// never stopped.
    pub fn run_until(
        &mut self,
        stop: u64,
        observer: &mut impl Observer,
    ) -> Result<Progress, SimError> {
        if !self.started {
            return Err(SimError::State("run_until before start"));
        }
        let scenario = Arc::clone(&self.scenario);
        loop {
            if self.m.schedule.finished {
                return Ok(Progress::Finished);
            }
            if self.references() >= stop {
                return Ok(Progress::Stopped);
            }
            let (i, budget) = match self.m.schedule.slice {
                Some(s) => s,
                None => {
                    // The next runnable process, round robin.
                    let Some(i) = self.m.schedule.next_runnable() else {
                        self.m.schedule.finished = true;
                        return Ok(Progress::Finished);
                    };
                    let s = &mut self.m.schedule;
                    s.turn = i + 1;
                    s.procs[i].waiting_for = None;
                    s.slice = Some((i, s.quantum));
                    (i, s.quantum)
                }
            };
            if budget == 0 {
                self.m.schedule.slice = None;
                continue;
            }
            let left = self.step(&scenario, i, budget, stop, observer)?;
            self.m.schedule.slice = left.map(|b| (i, b));
        }
    }

    /// One step of process `i`'s time slice with `budget` references left:
    /// a fork, a refill of its trace batch, a span of references, or one
    /// reference that needs a decision. Returns the budget left, or `None`
    /// when the slice ends (the process blocks, exits or is killed).
    fn step(
        &mut self,
        scenario: &Scenario,
        i: usize,
        budget: u64,
        stop: u64,
        observer: &mut impl Observer,
    ) -> Result<StepEnd, SimError> {
        // A fork after the N-th reference happens before the next one
        // is needed, so it also happens when the trace ends right there.
        let p = &self.m.schedule.procs[i];
        if let Some(f) = scenario.processes[p.spec].forks.get(p.next_fork)
            && matches!(f.point, ForkPoint::After(n) if p.refs >= n)
        {
            return self.take_fork(scenario, i, p.pid, budget);
        }
        if !self.refill(i)? {
            return Ok(None);
        }
        let Some(plan) = self.plan_span(scenario, i, budget, stop) else {
            return Ok(None);
        };
        let Some((budget, slow)) = self.run_planned(i, &plan, budget, observer)? else {
            return Ok(None);
        };
        if !slow || self.references() >= stop {
            return Ok(Some(budget));
        }
        self.decide(scenario, i, &plan, budget, observer)
    }

    /// Process `i` forks its next child: the child starts (sharing or
    /// copying `parent`'s space) and, when the parent waits for it, the
    /// parent's slice ends.
    fn take_fork(
        &mut self,
        scenario: &Scenario,
        i: usize,
        parent: Option<Pid>,
        budget: u64,
    ) -> Result<StepEnd, SimError> {
        let p = &mut self.m.schedule.procs[i];
        let f = &scenario.processes[p.spec].forks[p.next_fork];
        let (child, wait, vfork) = (f.child, f.wait, f.vfork);
        p.next_fork += 1;
        self.start_process(child, parent.map(|pp| (pp, vfork)))?;
        if wait {
            self.m.schedule.procs[i].waiting_for = Some(child);
            return Ok(None);
        }
        Ok(Some(budget))
    }

    /// Refills process `i`'s batch from its trace when it is used up.
    /// False when the trace has ended: the process has then finished.
    fn refill(&mut self, i: usize) -> Result<bool, SimError> {
        let p = &mut self.m.schedule.procs[i];
        if p.pos < p.batch.len() {
            return Ok(true);
        }
        p.pos = 0;
        let one_pid = self.batch_pid.get_mut(i);
        let got = match self.sources.get_mut(i).and_then(Option::as_mut) {
            Some(s) => {
                let got = s.next_batch(&mut p.batch);
                if let Some(slot) = one_pid {
                    *slot = s.batch_pid().filter(|_| got.is_ok());
                }
                got?
            }
            None => {
                if let Some(slot) = one_pid {
                    *slot = None;
                }
                p.batch.clear();
                0
            }
        };
        p.consumed += got as u64;
        if got == 0 {
            self.finish_process(i)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Where the fast path of process `i`'s next span must stop. `None`
    /// when the process has no pid (it never started).
    fn plan_span(
        &mut self,
        scenario: &Scenario,
        i: usize,
        budget: u64,
        stop: u64,
    ) -> Option<SpanPlan> {
        let total = self.references();
        let next_tick = self.m.kernel.next_tick();
        let next_sample = self.m.schedule.next_sample;
        let p = &mut self.m.schedule.procs[i];
        let spec = &scenario.processes[p.spec];
        let fork_point = spec.forks.get(p.next_fork).map(|f| f.point);
        let (fork_after, fork_at) = match fork_point {
            Some(ForkPoint::After(n)) => (n, u64::MAX),
            Some(ForkPoint::At(addr)) => (u64::MAX, addr),
            None => (u64::MAX, u64::MAX),
        };
        let exit_after = spec.exit_after.unwrap_or(u64::MAX);
        let stop_refs = fork_after.min(exit_after);
        let pid = p.pid?;
        let trace_pid = *p.first_trace_pid.get_or_insert(p.batch[p.pos].pid);
        let start = p.pos;
        // A span ends at the slice's end, the next timeline sample, the
        // kernel's next timer tick and the caller's stop, so each of them
        // happens at an exact reference count however the run is cut.
        let chunk = budget
            .min(next_sample.saturating_sub(total).max(1))
            .min(next_tick.saturating_sub(total).max(1))
            .min(stop - total) as usize;
        let end = p.batch.len().min(start + chunk);
        // References before the next fork or exit point: the span stops there.
        let before_stop = stop_refs.saturating_sub(p.refs).min(usize::MAX as u64) as usize;
        Some(SpanPlan {
            pid,
            trace_pid,
            start,
            end,
            span_end: end.min(start.saturating_add(before_stop)),
            fork_at,
            has_fork_at: matches!(fork_point, Some(ForkPoint::At(_))),
            stop_refs,
            exit_after,
        })
    }

    /// The fast path: runs the planned span (references with nothing to
    /// decide but their translations), then what falls due after it
    /// (progress, timeline sample, timer). Returns the budget left and
    /// whether the next reference needs a decision, or `None` when the
    /// span killed the process.
    fn run_planned(
        &mut self,
        i: usize,
        plan: &SpanPlan,
        mut budget: u64,
        observer: &mut impl Observer,
    ) -> Result<Option<(u64, bool)>, SimError> {
        let total = self.references();
        let (pid, start) = (plan.pid, plan.start);
        let p = &mut self.m.schedule.procs[i];
        let stamp0 = p.refs + 1;
        // The batch is taken out for the span (the machine is borrowed
        // mutably meanwhile) and put back after.
        let batch = std::mem::take(&mut p.batch);
        let span = &batch[start..plan.span_end];
        let (trace_pid, fork_at) = (plan.trace_pid, plan.fork_at);
        // A batch whose every access has the process's own pid needs no
        // test of each one's (the common case of a one-process trace).
        let own_pid = self.batch_pid.get(i).copied().flatten() == Some(trace_pid);
        let result = match (
            plan.has_fork_at,
            self.m.mmu.tlb().has_recent_hits(),
            own_pid,
        ) {
            (false, true, true) => {
                self.run_span::<false, true, false>(pid, span, trace_pid, fork_at, stamp0)
            }
            (false, true, false) => {
                self.run_span::<false, true, true>(pid, span, trace_pid, fork_at, stamp0)
            }
            (false, false, true) => {
                self.run_span::<false, false, false>(pid, span, trace_pid, fork_at, stamp0)
            }
            (false, false, false) => {
                self.run_span::<false, false, true>(pid, span, trace_pid, fork_at, stamp0)
            }
            (true, true, _) => {
                self.run_span::<true, true, true>(pid, span, trace_pid, fork_at, stamp0)
            }
            (true, false, _) => {
                self.run_span::<true, false, true>(pid, span, trace_pid, fork_at, stamp0)
            }
        };
        let (done, stop_why) = match result {
            Ok(r) => r,
            Err(e) => {
                self.m.schedule.procs[i].batch = batch;
                return Err(e);
            }
        };
        let killed = stop_why == SpanStop::Killed;
        let ran = if killed { done - 1 } else { done };
        if ran > 0 {
            observer.ran(pid, total + 1, &batch[start..start + ran]);
            // A real trace fetches an instruction every few references:
            // look back a little (a generator has none to find).
            if let Some(last) = batch[start..start + ran]
                .iter()
                .rev()
                .take(32)
                .find(|a| a.kind == vmsim_trace::AccessKind::Instr)
            {
                self.m.schedule.last_instr.insert(pid, last.va);
            }
        }
        let p = &mut self.m.schedule.procs[i];
        p.batch = batch;
        let k = start + done;
        p.refs += done as u64;
        // A reference needs a decision: a fork or exit point, another pid.
        let slow =
            stop_why == SpanStop::Decide || (!killed && k < plan.end && p.refs >= plan.stop_refs);
        p.pos = k;
        budget -= (k - start) as u64;
        self.after_span(observer);
        if killed {
            // The rest of its trace is never executed.
            let refs = self.m.schedule.procs[i].refs;
            self.record_refs(pid, refs);
            self.m.schedule.procs[i].done = true;
            self.sources[i] = None;
            return Ok(None);
        }
        Ok(Some((budget, slow)))
    }

    /// What falls due at the reference count a span ended on: the
    /// observer's progress, a timeline sample, the kernel's timer.
    fn after_span(&mut self, observer: &mut impl Observer) {
        let total = self.references();
        let s = &mut self.m.schedule;
        if total >= s.next_progress {
            observer.progress(total);
            s.next_progress = total + PROGRESS_EVERY;
        }
        if total >= s.next_sample {
            self.sample();
            self.m.schedule.next_sample = total + self.m.timeline.interval();
        }
        self.m.kernel.timer(&mut self.mem, &mut self.m.mmu, total);
    }

    /// The slow path: the reference at process `i`'s position needs a
    /// decision (a fork at an instruction, the exit point, or a reference
    /// of another process in a multi-process trace).
    fn decide(
        &mut self,
        scenario: &Scenario,
        i: usize,
        plan: &SpanPlan,
        mut budget: u64,
        observer: &mut impl Observer,
    ) -> Result<StepEnd, SimError> {
        let p = &mut self.m.schedule.procs[i];
        let a = p.batch[p.pos];
        if a.kind == vmsim_trace::AccessKind::Instr && a.va == plan.fork_at {
            // A fork at an instruction comes before that instruction's fetch.
            return self.take_fork(scenario, i, Some(plan.pid), budget);
        }
        if p.refs >= plan.exit_after {
            self.finish_process(i)?;
            return Ok(None);
        }
        if a.pid != plan.trace_pid {
            // Another process of a multi-process trace: its own process, spawned on sight.
            p.pos += 1;
            budget -= 1;
            self.run_extra(scenario, i, &a, observer)?;
        }
        // A fork after the N-th reference is taken at the top of the next step.
        Ok(Some(budget))
    }

    /// Runs reference `a` of another pid in process `i`'s multi-process
    /// trace as that pid's own process, spawned the first time it is seen.
    fn run_extra(
        &mut self,
        scenario: &Scenario,
        i: usize,
        a: &Access,
        observer: &mut impl Observer,
    ) -> Result<(), SimError> {
        let p = &self.m.schedule.procs[i];
        let x = match p.extra.get(&a.pid) {
            Some(&x) => x,
            None => {
                let spec = ProcessSpec {
                    name: format!("{}[{}]", scenario.processes[p.spec].name, a.pid),
                    ..scenario.processes[p.spec].clone()
                };
                let x = self.spawn(&spec, None)?;
                self.m.schedule.procs[i].extra.insert(a.pid, x);
                x
            }
        };
        if self.m.kernel.process(x).is_ok() {
            let stamp = match self.m.processes.get_mut(&x) {
                Some(r) => {
                    r.references += 1;
                    r.references
                }
                None => 0,
            };
            let number = self.references() + 1;
            if self.access(x, a, stamp)? {
                observer.ran(x, number, std::slice::from_ref(a));
            }
            if a.kind == vmsim_trace::AccessKind::Instr {
                self.m.schedule.last_instr.insert(x, a.va);
            }
        }
        Ok(())
    }

    /// Ends the run after [`Simulation::run_until`] returned
    /// [`Progress::Finished`] (or stops it early): the processes still
    /// alive exit, and the report is built.
    pub fn finish(mut self) -> Result<Report, SimError> {
        if !self.started {
            return Err(SimError::State("finish before start"));
        }
        self.sample();
        if self.m.snapshot.is_none() {
            self.take_snapshot();
        }
        // Processes still alive (blocked parents whose children were killed, extras).
        let alive: Vec<Pid> = self.m.kernel.processes().map(|p| p.pid).collect();
        for pid in alive {
            self.exit(pid)?;
        }
        if self.cfg.config().run.check {
            self.m
                .kernel
                .check_invariants(&self.mem)
                .map_err(SimError::Invariant)?;
        }
        let checkpoints = self.checkpoint_report();
        let mut m = self.m;
        let digests = std::mem::take(&mut m.digests);
        let mut report = Report::build(crate::report::RunEnd {
            cfg: self.cfg.config(),
            scenario: &self.scenario,
            references: m.references,
            translations: m.translations,
            mmu: &m.mmu,
            kernel: &m.kernel,
            processes: m.processes,
            timeline: m.timeline,
            peak_frames: m.peak_frames,
            peak_table_frames: m.peak_table_frames,
            memory: m.snapshot,
            hardware_ad: m.hardware_ad,
        });
        report.checkpoints = checkpoints;
        report.memory_digests = digests;
        Ok(report)
    }

    /// Starts scenario process `i`: spawned, or forked from `parent`.
    fn start_process(&mut self, i: usize, parent: Option<(Pid, bool)>) -> Result<(), SimError> {
        let scenario = Arc::clone(&self.scenario);
        let spec = &scenario.processes[i];
        let source = match &spec.trace {
            Some(t) => {
                let mut s = match &self.read_meter {
                    Some(meter) => vmsim_trace::source::open_metered(t, meter)?,
                    None => vmsim_trace::open(t)?,
                };
                s.set_allow_empty(self.allow_empty);
                Some(s)
            }
            None => None,
        };
        let pid = self.spawn(spec, parent)?;
        self.m.schedule.procs[i].pid = Some(pid);
        self.sources[i] = source;
        Ok(())
    }

    /// Process `i`'s trace ended: it exits (with its extras).
    fn finish_process(&mut self, i: usize) -> Result<(), SimError> {
        // The memory picture of interest is the one just before the first exit.
        if self.m.snapshot.is_none() {
            self.take_snapshot();
        }
        self.m.schedule.procs[i].done = true;
        self.sources[i] = None;
        let extras: Vec<Pid> = self.m.schedule.procs[i].extra.values().copied().collect();
        for x in extras {
            self.exit(x)?;
        }
        if let Some(pid) = self.m.schedule.procs[i].pid {
            let refs = self.m.schedule.procs[i].refs;
            self.record_refs(pid, refs);
            self.exit(pid)?;
        }
        Ok(())
    }

    /// Records `pid`'s memory digest now (see [`Simulation::set_digest_at_exit`]).
    fn record_digest(&mut self, pid: Pid) -> Result<(), SimError> {
        let pages = self
            .m
            .kernel
            .mapped_pages(&self.mem, Some(pid))
            .map_err(|source| SimError::Kernel {
                process: pid.to_string(),
                source,
            })?;
        let mut bytes = Vec::with_capacity(pages.len() * 16);
        for p in &pages {
            let data = self.page_contents(pid, p.page)?.unwrap_or_default();
            bytes.extend_from_slice(&p.page.as_u64().to_le_bytes());
            bytes.extend_from_slice(&crate::checkpoint::content_hash(&data).to_le_bytes());
        }
        self.m.digests.push(crate::report::MemoryDigest {
            pid,
            name: self.process_name(pid).unwrap_or_default(),
            pages: pages.len() as u64,
            digest: format!("{:016x}", crate::checkpoint::content_hash(&bytes)),
        });
        Ok(())
    }

    fn record_refs(&mut self, pid: Pid, refs: u64) {
        if let Some(r) = self.m.processes.get_mut(&pid) {
            r.references = refs;
        }
    }

    /// Where each scenario process stands in its input, describing inputs
    /// not described yet (a trace file is checksummed once). Drops the part
    /// of each batch already run, so a capture holds only what is to come.
    pub(crate) fn input_positions(&mut self) -> Result<Vec<Option<InputPosition>>, SimError> {
        for p in &mut self.m.schedule.procs {
            p.batch.drain(..p.pos);
            p.pos = 0;
        }
        let scenario = Arc::clone(&self.scenario);
        let mut out = Vec::with_capacity(scenario.processes.len());
        for (i, spec) in scenario.processes.iter().enumerate() {
            let p = &self.m.schedule.procs[i];
            let (Some(trace), Some(src)) =
                (&spec.trace, self.sources.get(i).and_then(Option::as_ref))
            else {
                out.push(self.recorded_inputs.get(i).cloned().flatten());
                continue;
            };
            if self.input_ids[i].is_none() {
                let id = InputId::of(trace).map_err(|e| {
                    SimError::Trace(TraceError::Io {
                        path: trace.into(),
                        source: e,
                    })
                })?;
                self.input_ids[i] = Some(id);
            }
            let synth = match src {
                AnySource::Synth(s) => Some(s.position()),
                _ => None,
            };
            out.push(Some(InputPosition {
                id: self.input_ids[i].clone().unwrap_or(InputId::Synth {
                    spec: trace.clone(),
                }),
                consumed: p.consumed,
                synth,
            }));
        }
        Ok(out)
    }
}
