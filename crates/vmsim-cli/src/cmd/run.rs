//! `vmsim run`: the main job. Runs traces, generators or a scenario through
//! the whole machine and kernel and reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use vmsim::checkpoint::ChainWriter;
use vmsim::config::{ConfigBuilder, MachineSpec};
use vmsim::kernel::SegvReason;
use vmsim::report::Report;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{ProcessSpec, Scenario};

use super::report_text;

/// The built-in workload: valgrind lackey's trace of `/bin/true` (168K
/// references: the dynamic loader and libc start-up), from the shared trace
/// set, compiled into the binary.
const BUILTIN_TRACE: &[u8] = include_bytes!("../../data/true.lackey.zst");

/// Run a workload through the simulated machine and kernel and report
/// TLB, walk, fault, memory and per-process figures.
///
/// INPUT is a trace file (valgrind lackey text, plain or zstd, or .vmt; the
/// format is found from the content), a synthetic workload
/// `synth:KIND,key=value,...`, or a scenario file (TOML with [[process]]
/// tables), or - for a trace on standard input (any trace format, found from
/// the content). Several traces run as several processes, round robin. With
/// no INPUT, a built-in trace of /bin/true runs.
///
/// Examples:
///   vmsim run
///   vmsim run trace.lackey.zst --preset core-i7
///   vmsim run synth:scan,bytes=64MiB,stride=4 --preset x86-64 --json
///   vmsim run synth:zipf,pages=100000,s=0.9,refs=10M --set memory.frames=65536
///   vmsim run examples/fork-cow.toml --json
///   vmsim run a.vmt b.vmt --set run.quantum=1000 --plot run.svg
///   zstd -dc trace.lackey.zst | vmsim run -
///   vmsim run trace.lackey.zst --checkpoint-every 1M --checkpoint-dir ckpts
///   vmsim run trace.vmt --checkpoint-every 500K --checkpoint-mode write-protect
///   vmsim run trace.lackey.zst --migrate-to 127.0.0.1:7000 --migrate-at 1M \
///       --key-file mig.key --migrate-mode pre-copy --migrate-plot rounds.svg
///
/// With --migrate-to, one process (--migrate-process, default the first)
/// moves at reference --migrate-at to a `vmsim migrate listen` there; the
/// rest of the run goes on here, and the report has a `migration` section.
/// Connecting, authenticating and the destination's agreement (same paging
/// format) happen before anything runs: a failure there is an error (exit
/// 1, nothing run). A failure after the run started aborts the migration:
/// the process runs to its end here, and the report says so (exit 0, a
/// warning on stderr).
///
/// A process killed by the simulated kernel (out of memory, segmentation
/// fault) is reported on stderr and the exit status is 3 (the report is
/// printed in full), unless --allow-kills. A fork or exit point of a
/// scenario that is never reached is a warning (an error with --strict).
///
/// JSON keys (every one with its type and unit: docs/json.md): machine, references,
/// references_by_kind, translations, tlb_lookups, tlb_hits, tlb_misses,
/// tlb_levels, walks (walks that filled the TLB), faulting_walks,
/// dirty_walks, walk_memory_references, walk_references_by_level, ad_writes,
/// walk_references_per_walk, walk_cache, mmu_faults, kernel (fault
/// resolutions: demand_zero, cow_copies, cow_reuses, shared_minor,
/// stack_growth, spurious, accessed_dirty, segfaults, forks, vforks, exits),
/// cow_copies, frames_leaked, peak_frames_used, peak_page_table_frames,
/// memory (buddyinfo, fragmentation indices, slabs), processes, eat_cycles,
/// timeline, warnings, checkpoints (with --checkpoint-every: mode, tracker,
/// every, pause_cycles, fault_cycles, records: seq, references, full,
/// pages_saved, bytes_saved, zero_pages, shared_pages, table_pages,
/// dirty_host, dirty_bits, soft_dirty, wp_faults, ptes_changed, shootdowns,
/// pause_cycles, saved_by_fault, saved_in_background, saved_at_next_pause,
/// fault_cycles, chunks_written, zero_chunks_written, swap_pages_written,
/// file, file_bytes).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// Traces, synth: specs, or one scenario file.
    pub inputs: Vec<String>,

    /// Start from this preset (see `vmsim presets`); default x86-64.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// A TOML config merged over the preset (any key `vmsim presets` prints).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override one setting, e.g. --set paging.page_size=2MiB --set memory.frames=256 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Draw faults, swap-ins and TLB misses over time and each process's
    /// resident pages into FILE.svg or FILE.png (the extension chooses).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,

    /// Also write a self-contained interactive page: the report with its
    /// charts and a step-through of the first references (TLB probe per
    /// level, walk with A/D updates, fault and the kernel's action, frames).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// With --html: how many references the page steps through.
    #[arg(long, value_name = "N", default_value_t = crate::html::run::DEFAULT_STEPS, requires = "html")]
    pub trace_steps: u64,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,

    /// Check the kernel's invariants at every context switch and at the end (slow).
    #[arg(long)]
    pub check: bool,

    /// Exit 0 even if a simulated process is killed (out of memory,
    /// segmentation fault); without it such a run exits with status 3.
    #[arg(long)]
    pub allow_kills: bool,

    /// Treat warnings (a scenario's fork or exit point never reached) as errors.
    #[arg(long)]
    pub strict: bool,

    /// Accept a trace file without any reference (by default an error: it
    /// is almost always the wrong file).
    #[arg(long)]
    pub allow_empty: bool,

    /// Take a checkpoint every N references (10K, 1M, ...; sets checkpoint.every).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<String>,

    /// Write the checkpoints into DIR (a new or empty directory): the first
    /// full, the others incremental. Without it checkpoints are taken and
    /// reported but not written.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// pause (stop and copy) or write-protect (protect, run on, save pages
    /// on their first write or in the background); sets checkpoint.mode.
    #[arg(long, value_name = "MODE")]
    pub checkpoint_mode: Option<String>,

    /// How increments find dirty pages: host (perturbs nothing), dirty-bit,
    /// soft-dirty, both, auto (host with pause, both with write-protect);
    /// sets checkpoint.tracker.
    #[arg(long, value_name = "TRACKER")]
    pub checkpoint_tracker: Option<String>,

    /// Compress page data in checkpoint files with zstd at this level (1-19;
    /// default: stored raw, the fastest).
    #[arg(long, value_name = "LEVEL")]
    pub checkpoint_zstd: Option<i32>,

    /// Also ship each checkpoint file, once written, to the `vmsim
    /// checkpoint receive` at HOST:PORT (authenticated with --key-file), so
    /// the run can be finished elsewhere with `vmsim restore` if this
    /// machine dies. Without --checkpoint-dir the local files go to a
    /// temporary directory. If the store stops answering (60 s per read or
    /// write), the run goes on and a warning says which checkpoints it holds.
    #[arg(long, value_name = "HOST:PORT", requires_all = ["checkpoint_every", "key_file"])]
    pub checkpoint_to: Option<String>,

    /// Record each process's memory digest (every page's address and
    /// contents hash) when it exits: `memory_digests` in the report.
    #[arg(long)]
    pub digest: bool,

    /// Move a process to the `vmsim migrate listen` at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", requires_all = ["migrate_at", "key_file"])]
    pub migrate_to: Option<String>,

    /// The reference of the run at which the migration starts (10K, 1M, ...).
    #[arg(long, value_name = "REF", requires = "migrate_to")]
    pub migrate_at: Option<String>,

    /// stop-and-copy, pre-copy or post-copy.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "pre-copy",
        requires = "migrate_to"
    )]
    pub migrate_mode: String,

    /// The process to move: its scenario name or index (default: the first).
    #[arg(long, value_name = "NAME|INDEX", requires = "migrate_to")]
    pub migrate_process: Option<String>,

    /// The pre-shared key file (readable by its owner only).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Draw the pages sent per round (and the model's) into an SVG file.
    #[arg(long, value_name = "FILE.svg", requires = "migrate_to")]
    pub migrate_plot: Option<PathBuf>,

    /// Seconds to wait for the destination on any read or write.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        requires = "migrate_to"
    )]
    pub migrate_timeout: u64,
}

/// A run that finished with killed processes: its message is the one line
/// `main` prints, and the exit status is [`crate::EXIT_KILLED`].
#[derive(Debug)]
pub struct Killed(String);

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Killed {}

/// Why the kernel killed a process, for a person.
fn kill_reason(reason: SegvReason, report: &Report) -> String {
    match reason {
        SegvReason::OutOfMemory => format!(
            "out of memory: every frame and swap slot was in use ({} frames, {} swap slots at the peak); raise memory.frames or kernel.swap_slots",
            report.machine.frames, report.swap.slots_peak
        ),
        SegvReason::NoVma => "segmentation fault: an access outside its mapped areas".into(),
        SegvReason::Permission => "segmentation fault: an access its mapping does not allow".into(),
        SegvReason::StackGuard => {
            "segmentation fault: an access in the stack guard gap or past the stack limit".into()
        }
        SegvReason::BadAddress => {
            "segmentation fault: an address the paging format cannot express".into()
        }
        SegvReason::BadEntry => "bus error: a malformed page-table entry".into(),
    }
}

/// One line naming every killed process and why, or `None`.
fn kills(report: &Report) -> Option<String> {
    let killed: Vec<String> = report
        .processes
        .iter()
        .filter_map(|p| {
            p.killed.map(|r| {
                format!(
                    "process {} '{}' was killed after {} references: {}",
                    p.pid,
                    p.name,
                    p.references,
                    kill_reason(r, report)
                )
            })
        })
        .collect();
    (!killed.is_empty()).then(|| {
        let mut line = killed.join("; ");
        line.push_str(" (--allow-kills: exit 0 anyway)");
        line
    })
}

fn is_scenario(path: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    Scenario::sniff(&head[..n])
}

fn trace_process(name: String, trace: String) -> ProcessSpec {
    ProcessSpec::running(name, trace)
}

fn build_config(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<MachineSpec> {
    let mut set = args.set.clone();
    if let Some(n) = &args.checkpoint_every {
        let n = vmsim::units::parse_count(n)
            .with_context(|| format!("--checkpoint-every {n}: expected a number of references"))?;
        if n == 0 {
            bail!("--checkpoint-every 0: give at least 1 reference between checkpoints");
        }
        set.push(format!("checkpoint.every={n}"));
    }
    if let Some(m) = &args.checkpoint_mode {
        set.push(format!("checkpoint.mode=\"{m}\""));
    }
    if let Some(t) = &args.checkpoint_tracker {
        set.push(format!("checkpoint.tracker=\"{t}\""));
    }
    layered_config(
        args.preset.as_deref(),
        args.config.as_deref(),
        scenario,
        &set,
        args.check,
    )
}

/// The built-in trace as a temporary file, kept (and on the list of files a
/// signal removes) while the value lives.
pub fn builtin_trace() -> anyhow::Result<(tempfile::NamedTempFile, vmsim_trace::output::Registered)>
{
    let mut f = tempfile::Builder::new()
        .prefix(".vmsim-")
        .suffix(".lackey.zst")
        .tempfile()?;
    let registered = vmsim_trace::output::register(f.path());
    f.write_all(BUILTIN_TRACE)?;
    Ok((f, registered))
}

/// How a finished run's report is given: as `vmsim run` gives it (also
/// used by `vmsim restore`).
pub struct Output<'a> {
    /// JSON instead of text.
    pub json: bool,
    /// An SVG timeline to draw.
    pub plot: Option<&'a Path>,
    /// Warnings are errors.
    pub strict: bool,
    /// Killed processes do not make the exit status 3.
    pub allow_kills: bool,
}

/// Draws the plot, prints the report (text or JSON), the warnings on
/// stderr, and turns killed processes into [`Killed`].
pub fn report_out(report: &Report, how: &Output<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(path) = how.plot {
        super::plot::timeline(report, path)?;
    }
    if how.strict && !report.warnings.is_empty() {
        bail!("{} (--strict)", report.warnings.join("; "));
    }
    if how.json {
        writeln!(out, "{}", crate::output::json_pretty(report)?)?;
    } else {
        write!(out, "{}", report_text::render(report))?;
        if let Some(m) = &report.migration {
            write!(out, "{}", super::migrate::render(m))?;
        }
    }
    for w in &report.warnings {
        crate::output::to_stderr(&format!("vmsim: warning: {w}"))?;
    }
    if !how.allow_kills
        && let Some(line) = kills(report)
    {
        return Err(Killed(line).into());
    }
    Ok(())
}

/// The configuration layering of `vmsim run` (also used by `vmsim sweep`):
/// preset (this one, else the scenario's, else the default) -> `--config`
/// file -> the scenario's `set` list -> each `--set` -> `--check`.
pub fn layered_config(
    preset: Option<&str>,
    config: Option<&Path>,
    scenario: &Scenario,
    set: &[String],
    check: bool,
) -> anyhow::Result<MachineSpec> {
    let preset = preset.or(scenario.preset.as_deref());
    let mut b = ConfigBuilder::preset(preset)?;
    if let Some(path) = config {
        let text = vmsim_trace::limits::read_text_limited(
            path,
            vmsim_trace::limits::MAX_TOML_BYTES,
            "a config file",
        )
        .with_context(|| format!("--config {}", path.display()))?;
        b = b.file(&text, &path.display().to_string())?;
    }
    for s in scenario.set.iter().chain(set) {
        b = b.set(s)?;
    }
    if check {
        b = b.set("run.check=true")?;
    }
    Ok(b.build()?)
}

/// The scenario of trace inputs given on the command line: one scenario
/// file on its own, or traces run as processes, round robin.
pub fn scenario_of(inputs: &[String]) -> anyhow::Result<Scenario> {
    match inputs {
        [one]
            if !one.starts_with(vmsim_trace::source::SYNTH_PREFIX)
                && Path::new(one).is_file()
                && is_scenario(Path::new(one)) =>
        {
            Ok(Scenario::load(Path::new(one))?)
        }
        many => {
            if many.iter().filter(|m| *m == "-").count() > 1 {
                bail!("standard input (-) can be given only once");
            }
            for m in many {
                if !m.starts_with(vmsim_trace::source::SYNTH_PREFIX)
                    && Path::new(m).is_file()
                    && is_scenario(Path::new(m))
                {
                    bail!("{m} is a scenario file: run it on its own (it names its own traces)");
                }
            }
            Ok(Scenario {
                description: many.join(" "),
                quantum: None,
                preset: None,
                set: Vec::new(),
                processes: many
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let name = Path::new(if m == "-" { "stdin" } else { m })
                            .file_name()
                            .map_or_else(|| format!("p{i}"), |n| n.to_string_lossy().into_owned());
                        trace_process(name, m.clone())
                    })
                    .collect(),
            })
        }
    }
}

/// Runs `vmsim run`.
pub fn run(args: &RunArgs, out: &mut impl Write) -> anyhow::Result<()> {
    super::plot::check(args.plot.as_deref())?;
    crate::html::check(args.html.as_deref())?;
    // Keeps the built-in trace's temporary file alive (and on the list of
    // files a signal removes) for the run.
    let mut builtin = None;
    let scenario = match args.inputs.as_slice() {
        [] => {
            let (f, registered) = builtin_trace()?;
            let path = f.path().display().to_string();
            builtin = Some((f, registered));
            Scenario {
                description: "built-in trace: /bin/true under valgrind lackey".into(),
                quantum: None,
                preset: None,
                set: Vec::new(),
                processes: vec![trace_process("true".into(), path)],
            }
        }
        many => scenario_of(many)?,
    };
    let cfg = build_config(args, &scenario)?;
    // A run that ships its checkpoints and was given no directory writes
    // them into a temporary one (removed at the end).
    let scratch = match (&args.checkpoint_to, &args.checkpoint_dir) {
        (Some(_), None) => Some(tempfile::tempdir().context("a temporary checkpoint directory")?),
        _ => None,
    };
    let dir = args
        .checkpoint_dir
        .clone()
        .or_else(|| scratch.as_ref().map(|d| d.path().join("ck")));
    // The checkpoint directory, if this run makes it: taken back (when
    // still empty) if the run fails before its end.
    let mut made_dir = None;
    let mut writer = match &dir {
        Some(dir) => {
            if cfg.config().checkpoint.every == 0 {
                bail!(
                    "--checkpoint-dir {}: give --checkpoint-every N (or checkpoint.every in the config)",
                    dir.display()
                );
            }
            if args.inputs.iter().any(|i| i == "-") {
                bail!(
                    "--checkpoint-dir: a restore reopens its traces, and standard input (-) cannot be reopened; save the trace to a file and run that"
                );
            }
            // Nor can a pipe (`<(zstdcat ...)`) or a device: refused before
            // the run starts rather than at its first checkpoint.
            for t in scenario.processes.iter().filter_map(|p| p.trace.as_deref()) {
                if !t.starts_with(vmsim_trace::source::SYNTH_PREFIX)
                    && std::fs::metadata(t).is_ok_and(|m| !m.is_file())
                {
                    bail!(
                        "--checkpoint-dir: a restore reopens its traces, and {t} is not a regular file (a pipe or a device); save the trace to a file and run that"
                    );
                }
            }
            made_dir = Some(crate::made_dir::MadeDir::before_making(dir));
            let writer = ChainWriter::create(dir)?.with_page_compression(args.checkpoint_zstd);
            match &args.checkpoint_to {
                Some(addr) => {
                    let key_file = args
                        .key_file
                        .as_deref()
                        .context("--checkpoint-to needs --key-file")?;
                    let key = crate::channel::Key::load(key_file)?;
                    let shipper =
                        crate::ship::Shipper::connect(addr, &key, Duration::from_secs(60))?;
                    Some(writer.with_mirror(Box::new(shipper)))
                }
                None => Some(writer),
            }
        }
        None => None,
    };
    let mut sim = Simulation::new(cfg)?;
    sim.set_allow_empty(args.allow_empty);
    sim.set_digest_at_exit(args.digest);
    let mut observer =
        crate::progress::bar_of(args.quiet, crate::progress::RunLength::of(&scenario));
    sim.set_read_meter(observer.meter());
    sim.start(&scenario)?;
    let steps = match &args.html {
        Some(_) => Some(crate::html::run::record_steps(
            &mut sim,
            args.trace_steps,
            &mut observer,
        )?),
        None => None,
    };
    let migration = match &args.migrate_to {
        Some(addr) => {
            if writer.is_some() || sim.config().checkpoint.every > 0 {
                bail!(
                    "--migrate-to: a run that migrates takes no checkpoints (drop --checkpoint-every)"
                );
            }
            if args.inputs.iter().any(|i| i == "-") {
                bail!(
                    "--migrate-to: the destination reopens the trace, and standard input (-) cannot be reopened; save the trace to a file and run that"
                );
            }
            Some(super::migrate::send(
                &mut sim,
                args,
                addr,
                &scenario,
                &mut observer,
            )?)
        }
        None => None,
    };
    let mut report = sim.run_to_end(&mut observer, writer.as_mut())?;
    if let Some(w) = writer.as_mut() {
        w.finish()?;
        if let Some(made) = made_dir.take() {
            made.keep();
        }
        if let (Some(addr), Some((shipped, Some(why)))) = (&args.checkpoint_to, w.mirror_status()) {
            crate::output::to_stderr(&format!(
                "vmsim: warning: shipping checkpoints to {addr} stopped after {shipped} file(s), the run went on: {why}"
            ))?;
        }
    }
    drop(scratch);
    observer.done();
    drop(builtin);
    if let Some(m) = migration {
        if let Some(path) = &args.migrate_plot {
            super::migrate::plot_rounds(&m, path)?;
        }
        if let Some(why) = &m.aborted {
            crate::output::to_stderr(&format!(
                "vmsim: warning: migration aborted, process '{}' ran to its end here: {why}",
                m.process
            ))?;
        }
        report.migration = Some(m);
    }
    if let (Some(path), Some(steps)) = (&args.html, steps) {
        let data = crate::html::run::page_data(&report, steps, &scenario)?;
        crate::html::write(
            path,
            crate::html::Kind::Run,
            &crate::html::run::title(&report),
            data,
        )?;
    }
    report_out(
        &report,
        &Output {
            json: args.json,
            plot: args.plot.as_deref(),
            strict: args.strict,
            allow_kills: args.allow_kills,
        },
        out,
    )
}
