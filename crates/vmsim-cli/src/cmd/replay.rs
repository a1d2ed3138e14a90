//! `vmsim replay`: rewind-replay debugging over a checkpoint directory.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use vmsim::addr::{Pid, VirtAddr};
use vmsim::checkpoint::Chain;
use vmsim::replay::{Answer, UntilState};

/// Which reference last wrote an address, found by rewind-replay.
///
/// Restores the newest checkpoint before REF and replays forward watching
/// the address; if nothing wrote it in that span, rewinds to the checkpoint
/// before and replays that span, older and older, until the writer is found
/// or the run's start is reached (the course notes' rewind-replay). Prints
/// the reference number, the process, the instruction address of the
/// writer (lackey traces record each instruction's fetch), and how many
/// references were replayed against a replay from the start.
///
/// With --until REF it instead runs to reference REF (from the newest
/// checkpoint at or before it) and prints the state of the address in each
/// process: its VMA, whether it is resident or in swap, the frame, the
/// page-table entry's bits and the contents.
///
/// Addresses are virtual, per process (--pid picks one; default: any).
/// Reference numbers count from 1 over the whole run, as the report's
/// references do.
///
/// Examples:
///   vmsim run trace.lackey.zst --checkpoint-every 50K --checkpoint-dir ck
///   vmsim replay ck --watch 0x1ffefff8a0
///   vmsim replay ck --watch 0x4a2c10 --before 120000 --json
///   vmsim replay ck --watch 0x4a2c10 --until 120000
///
/// JSON keys: va, pid, before, writer (reference, pid, instruction, va,
/// size, kind), spans (checkpoint, from, to, found), replayed, from_start;
/// with --until: references, checkpoint, replayed, states (pid, name, vma,
/// residence, frame, pte, write_protected, page_hash, bytes).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The checkpoint directory (written by `vmsim run --checkpoint-dir`).
    pub dir: PathBuf,

    /// The virtual address to watch (hex with 0x, or decimal).
    #[arg(long, value_name = "VA")]
    pub watch: String,

    /// Only writes before reference REF (default: by the end of the run).
    #[arg(long, value_name = "REF", conflicts_with = "until")]
    pub before: Option<String>,

    /// Run to reference REF and show the address's state instead.
    #[arg(long, value_name = "REF")]
    pub until: Option<String>,

    /// Only this process (kernel pid, as the report lists them).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// A trace file that may be one of the run's inputs (repeatable).
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn number(text: &str, what: &str) -> anyhow::Result<u64> {
    vmsim::units::parse_u64(text).with_context(|| format!("{what} {text}: expected a number"))
}

fn count(text: &str, what: &str) -> anyhow::Result<u64> {
    vmsim::units::parse_count(text)
        .with_context(|| format!("{what} {text}: expected a reference number"))
}

fn answer_text(a: &Answer) -> String {
    let mut o = String::new();
    let scope = a
        .pid
        .map_or_else(|| "any process".to_string(), |p| format!("process {p}"));
    let when = if a.before == u64::MAX {
        "by the end of the run".to_string()
    } else {
        format!("before reference {}", a.before)
    };
    match &a.writer {
        Some(w) => {
            let _ = writeln!(
                o,
                "{:#x} ({scope}) was last written {when} by reference {}: process {}, {} of {} bytes at {:#x}, instruction {}",
                a.va,
                w.reference,
                w.pid,
                if w.kind == 'M' { "modify" } else { "store" },
                w.size,
                w.va,
                w.instruction
                    .map_or_else(|| "unknown".to_string(), |i| format!("{i:#x}"))
            );
        }
        None => {
            let _ = writeln!(o, "{:#x} ({scope}) was not written {when}", a.va);
        }
    }
    for s in &a.spans {
        let _ = writeln!(
            o,
            "  replayed {} references from {} ({}..={}): {}",
            s.to - s.from,
            s.checkpoint.map_or_else(
                || "the run's start".to_string(),
                |c| format!("checkpoint {c}")
            ),
            s.from + 1,
            s.to,
            if s.found {
                "found"
            } else {
                "not written, rewind"
            }
        );
    }
    let _ = writeln!(
        o,
        "replayed {} references in {} span(s); a replay from the start would replay {}",
        a.replayed,
        a.spans.len(),
        a.from_start
    );
    o
}

fn until_text(va: u64, u: &UntilState) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "after reference {} (replayed {} references from {}):",
        u.references,
        u.replayed,
        u.checkpoint.map_or_else(
            || "the run's start".to_string(),
            |c| format!("checkpoint {c}")
        )
    );
    for s in &u.states {
        let _ = writeln!(
            o,
            "  process {} ({}): {:#x} {}; vma {}; frame {}; PTE {}{}; page hash {}; bytes {}",
            s.pid,
            s.name,
            va,
            s.residence,
            s.vma.as_deref().unwrap_or("none"),
            s.frame.map_or_else(|| "-".into(), |f| format!("{f:#x}")),
            s.pte.as_deref().unwrap_or("-"),
            if s.write_protected {
                " (write-protected for tracking)"
            } else {
                ""
            },
            s.page_hash
                .map_or_else(|| "-".into(), |h| format!("{h:016x}")),
            s.bytes.map_or_else(
                || "-".into(),
                |b| b
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    o
}

/// Runs `vmsim replay`.
pub fn run(args: &ReplayArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let chain = Chain::open(&args.dir)?;
    let va = VirtAddr::new(number(&args.watch, "--watch")?);
    let pid = args.pid.map(Pid::new);
    let (inputs, builtin) = super::restore::candidates(&args.inputs)?;
    if let Some(until) = &args.until {
        let until = count(until, "--until")?;
        let u = vmsim::replay::state_at(&chain, &inputs, va, pid, until)?;
        drop(builtin);
        if args.json {
            writeln!(out, "{}", crate::output::json_pretty(&u)?)?;
        } else {
            write!(out, "{}", until_text(va.as_u64(), &u))?;
        }
        return Ok(());
    }
    let before = args
        .before
        .as_deref()
        .map(|b| count(b, "--before"))
        .transpose()?;
    let a = vmsim::replay::last_writer(&chain, &inputs, va, pid, before)?;
    drop(builtin);
    if args.json {
        writeln!(out, "{}", crate::output::json_pretty(&a)?)?;
    } else {
        write!(out, "{}", answer_text(&a))?;
    }
    Ok(())
}
