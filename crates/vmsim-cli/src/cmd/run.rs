//! `vmsim run`: the main job. Runs traces, generators or a scenario through
//! the whole machine and kernel and reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vmsim::checkpoint::ChainWriter;
use vmsim::config::{Config, ConfigBuilder};
use vmsim::sim::{Observer, Simulation};
use vmsim_trace::scenario::{LayoutKind, ProcessSpec, Scenario};

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
///
/// JSON keys (see the Report type's docs): machine, references,
/// references_by_kind, translations, tlb_lookups, tlb_hits, tlb_misses,
/// tlb_levels, walks (walks that filled the TLB), faulting_walks,
/// dirty_walks, walk_memory_references, walk_references_by_level, ad_writes,
/// walk_references_per_walk, walk_cache, mmu_faults, kernel (fault
/// resolutions: demand_zero, cow_copies, cow_reuses, shared_minor,
/// stack_growth, spurious, accessed_dirty, segfaults, forks, vforks, exits),
/// cow_copies, frames_leaked, peak_frames_used, peak_page_table_frames,
/// memory (buddyinfo, fragmentation indices, slabs), processes, eat_cycles,
/// timeline, checkpoints (with --checkpoint-every: mode, tracker, every,
/// pause_cycles, fault_cycles, records: seq, references, full, pages_saved,
/// bytes_saved, zero_pages, shared_pages, table_pages, dirty_host,
/// dirty_bits, soft_dirty, wp_faults, ptes_changed, shootdowns,
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

    /// Draw faults and TLB misses over time into an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,

    /// Check the kernel's invariants at every context switch and at the end (slow).
    #[arg(long)]
    pub check: bool,

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
}

/// The progress bar (an observer of the run).
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// Clears the bar at the end.
    pub fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn progress(&mut self, references: u64) {
        if let Some(b) = &self.0 {
            b.set_position(references);
        }
    }
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
    ProcessSpec {
        name,
        trace: Some(trace),
        layout: LayoutKind::Flat,
        parent: None,
        brk: 0,
        mmap: Vec::new(),
        forks: Vec::new(),
        exit_after: None,
    }
}

fn build_config(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<Config> {
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

/// The built-in trace as a temporary file (kept while the value lives).
pub fn builtin_trace() -> anyhow::Result<tempfile::NamedTempFile> {
    let mut f = tempfile::Builder::new().suffix(".lackey.zst").tempfile()?;
    std::io::Write::write_all(&mut f, BUILTIN_TRACE)?;
    Ok(f)
}

/// The progress bar on stderr, only on a terminal and without `quiet`.
pub fn progress(quiet: bool) -> Bar {
    let show = !quiet && std::io::stderr().is_terminal();
    Bar(show.then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {human_pos} references  {per_sec}  {elapsed_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    }))
}

/// Prints a report as `vmsim run` does (text or JSON), with its plot.
pub fn output(
    report: &vmsim::report::Report,
    json: bool,
    plot: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(path) = plot {
        super::plot::timeline(report, path)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report_text::render(report));
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
) -> anyhow::Result<Config> {
    let preset = preset.or(scenario.preset.as_deref());
    let mut b = ConfigBuilder::preset(preset)?;
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
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
                quantum: vmsim_trace::scenario::DEFAULT_QUANTUM,
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
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Keeps the built-in trace's temporary file alive for the run.
    let mut builtin = None;
    let scenario = match args.inputs.as_slice() {
        [] => {
            let f = builtin_trace()?;
            let path = f.path().display().to_string();
            builtin = Some(f);
            Scenario {
                description: "built-in trace: /bin/true under valgrind lackey".into(),
                quantum: vmsim_trace::scenario::DEFAULT_QUANTUM,
                preset: None,
                set: Vec::new(),
                processes: vec![trace_process("true".into(), path)],
            }
        }
        many => scenario_of(many)?,
    };
    let cfg = build_config(args, &scenario)?;
    let mut writer = match &args.checkpoint_dir {
        Some(dir) => {
            if cfg.checkpoint.every == 0 {
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
            Some(ChainWriter::create(dir)?.with_page_compression(args.checkpoint_zstd))
        }
        None => None,
    };
    let mut sim = Simulation::new(cfg)?;
    sim.start(&scenario)?;
    let mut observer = progress(args.quiet);
    let report = sim.run_to_end(&mut observer, writer.as_mut())?;
    if let Some(w) = writer.as_mut() {
        w.finish()?;
    }
    observer.done();
    drop(builtin);
    output(&report, args.json, args.plot.as_deref())
}
