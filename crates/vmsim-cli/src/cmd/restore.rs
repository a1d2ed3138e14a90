//! `vmsim restore`: rebuild a run from a checkpoint directory and run the
//! rest of its workload.

use std::path::PathBuf;

use clap::Args;
use vmsim::checkpoint::Chain;

/// Restore a run from its checkpoints and run it to the end.
///
/// Rebuilds the machine from the directory's full checkpoint and the
/// increments up to K (default: the newest; the newest version of each page
/// wins) and runs the rest of the workload. The report equals the report of
/// the run that wrote the checkpoints (only the checkpoint file names and
/// sizes, host facts, are missing for checkpoints after K, which the
/// restored run takes again without writing them).
///
/// Trace inputs are reopened at the paths the checkpoint recorded, checked
/// by size and CRC-32C; a moved trace is given with --input (any order: each
/// is matched by size and checksum). The built-in trace is found by itself.
///
/// Examples:
///   vmsim run trace.lackey.zst --checkpoint-every 1M --checkpoint-dir ck
///   vmsim restore ck
///   vmsim restore ck --at 3 --json
///   vmsim restore ck --input moved/trace.lackey.zst
///
/// JSON keys: as for `vmsim run --json`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RestoreArgs {
    /// The checkpoint directory (written by `vmsim run --checkpoint-dir`).
    pub dir: PathBuf,

    /// Restore checkpoint K (default: the newest).
    #[arg(long, value_name = "K")]
    pub at: Option<u64>,

    /// A trace file that may be one of the run's inputs (repeatable).
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Draw faults, swap-ins and TLB misses over time and each process's
    /// resident pages into FILE.svg or FILE.png (as `vmsim run --plot`).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,

    /// Record each process's memory digest when it exits (as `vmsim run
    /// --digest`; compare with the run's). A run that had --digest is
    /// restored recording them anyway, with the digests of the processes
    /// that exited before the checkpoint.
    #[arg(long)]
    pub digest: bool,

    /// No progress bar and no restore message.
    #[arg(long, short)]
    pub quiet: bool,

    /// Exit 0 even if a simulated process is killed (as for `vmsim run`).
    #[arg(long)]
    pub allow_kills: bool,

    /// Treat warnings (a scenario's fork or exit point never reached) as errors.
    #[arg(long)]
    pub strict: bool,
}

/// The built-in trace's temporary file, kept while a restore may read it.
pub type Builtin = (tempfile::NamedTempFile, vmsim_trace::output::Registered);

/// The candidate input files: the user's, and the built-in trace.
pub fn candidates(given: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Builtin)> {
    let builtin = super::run::builtin_trace()?;
    let mut all = given.to_vec();
    all.push(builtin.0.path().to_path_buf());
    Ok((all, builtin))
}

/// Runs `vmsim restore`.
pub fn run(args: &RestoreArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    super::plot::check(args.plot.as_deref())?;
    let chain = Chain::open(&args.dir)?;
    let (inputs, builtin) = candidates(&args.inputs)?;
    let mut sim = chain.restore(args.at, &inputs)?;
    // A run that recorded digests goes on recording them (that is part of
    // the checkpoint); --digest turns it on for one that did not.
    if args.digest {
        sim.set_digest_at_exit(true);
    }
    if !args.quiet {
        crate::output::to_stderr(&format!(
            "vmsim restore: {} checkpoint {} (reference {}), running on",
            args.dir.display(),
            args.at.or(chain.last()).unwrap_or(0),
            sim.references()
        ))?;
    }
    let mut observer = crate::progress::bar(args.quiet);
    let report = sim.run_to_end(&mut observer, None)?;
    observer.done();
    drop(builtin);
    super::run::report_out(
        &report,
        &super::run::Output {
            json: args.json,
            plot: args.plot.as_deref(),
            strict: args.strict,
            allow_kills: args.allow_kills,
        },
        out,
    )
}
