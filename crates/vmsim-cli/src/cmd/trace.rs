//! `vmsim trace`: inspect, convert and record memory-reference traces.
//!
//! Thin front end over `vmsim_trace`: parses arguments, calls the library,
//! prints. A TRACE argument is a file (valgrind lackey text, plain or zstd, or
//! `.vmt`, recognised by its magic bytes, not its name) or a seeded synthetic
//! workload `synth:KIND,key=value,...`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use vmsim_trace::record::{RecordOptions, record};
use vmsim_trace::{TraceStats, open, stats, vmt};

/// Inspect, convert and record memory-reference traces.
#[derive(Debug, Args)]
#[command(after_long_help = SYNTH_HELP)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

const SYNTH_HELP: &str = "\
TRACE arguments are a file or a synthetic workload:
  FILE                      lackey text (plain or zstd) or .vmt, detected by magic bytes
  synth:KIND,key=value,...  seeded synthetic workload (4 KiB pages, loads and stores)

Synthetic kinds and keys [defaults]:
  scan    bytes [64MiB], stride [4], passes [1]   sequential; refs = passes*bytes/stride
  random  bytes [64MiB]                           uniform over size-aligned words
  zipf    pages [65536], s [1.0], shuffle [0]     page rank k with p ~ 1/k^s
                                                  (shuffle=1: seeded rank->page permutation)
  loop    pages [64], repeats [10]                page i mod pages, repeats passes
  phases  pages [256], phases [4], shift [pages]  working set moves by shift pages per phase
  every kind: refs [1M or as above], write [0] (store ratio), seed [1], size [4],
              pid [1], base [0x10000000]
Numbers: sizes (bytes, stride, base, size) 64MiB, 4KiB, 4K (powers of 1024);
  counts (refs, pages, ...) 10M, 1K (powers of 1000) or 4KiB; 0x hex, 1_000.

Examples:
  vmsim trace stats true.lackey.zst
  vmsim trace stats synth:scan,bytes=64MiB,stride=4 --json
  vmsim trace convert lsR_linux.lackey.zst lsR.vmt
  vmsim trace convert a.lackey.zst a.lackey.zst a.lackey.zst a3.vmt   # concatenated
  vmsim trace pages true.lackey.zst -o true.pages.txt
  vmsim trace record -o ls.lackey.zst -- ls -l /";

#[derive(Debug, Subcommand)]
enum TraceCommand {
    Stats(StatsArgs),
    Convert(ConvertArgs),
    Pages(PagesArgs),
    Record(RecordArgs),
}

/// Count the references of a trace by kind and the pages they touch.
///
/// Pages are counted by the start address of each reference (`addr >> 12` for
/// 4 KiB, `addr >> 21` for 2 MiB) and, separately, over every byte each
/// reference spans. The footprint is the 4 KiB page count times 4096.
///
/// `--json` prints one object with the keys: refs, instr, load, store, modify,
/// pages_4k, pages_2m, footprint_bytes, spanned_pages_4k, spanned_pages_2m,
/// crossing_4k (references whose bytes cross a 4 KiB boundary).
#[derive(Debug, Args)]
#[command(after_help = "Example: vmsim trace stats synth:zipf,pages=4096,s=0.9,refs=10M --json")]
struct StatsArgs {
    /// The trace: a file (lackey, lackey.zst, .vmt) or synth:KIND,key=value,...
    trace: String,
    /// Print JSON (stable keys, see above) instead of a table.
    #[arg(long)]
    json: bool,
    /// Accept a trace file without any reference (by default an error).
    #[arg(long)]
    allow_empty: bool,
}

/// Convert a trace (lackey, zstd, .vmt or synth:...) to vmsim's binary .vmt format.
///
/// Several inputs are written one after the other into one trace. The output
/// is written to a temporary file and renamed into place, so a failed
/// conversion leaves no partial file. The format is specified in
/// docs/vmt-format.md.
#[derive(Debug, Args)]
#[command(after_help = "Example: vmsim trace convert lsR_linux.lackey.zst lsR_linux.vmt")]
struct ConvertArgs {
    /// The input traces, then the .vmt file to write.
    #[arg(value_name = "INPUT... OUTPUT", num_args = 2.., required = true)]
    paths: Vec<String>,
    /// Accept an input without any reference (by default an error, and no file is written).
    #[arg(long)]
    allow_empty: bool,
}

/// Write the page-number file of a trace: the reference string `vmsim
/// policy` and `vmsim mrc` read, one page per line (`w` after a write).
///
/// Every page an access touches is one reference (an access that straddles a
/// page boundary touches both, as in `vmsim run`); pages are the address
/// divided by --page-size. --binary writes each page as a little-endian u64
/// instead (no write marks), for other tools.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: vmsim trace pages true.lackey.zst --page-size 4KiB -o true.pages.txt"
)]
struct PagesArgs {
    /// The trace (lackey, .vmt, synth:..., - for standard input).
    input: String,
    /// The file to write (atomically); default standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Page size (binary units).
    #[arg(long, value_name = "SIZE", default_value = "4KiB")]
    page_size: String,
    /// Little-endian u64 page numbers instead of text.
    #[arg(long)]
    binary: bool,
}

/// Run a program under valgrind lackey and write its zstd-compressed trace.
///
/// Runs `valgrind --tool=lackey --trace-mem=yes --log-file=TMP/trace.%p.lackey
/// PROGRAM ARGS...` (valgrind must be installed). valgrind follows fork(), so
/// each process gets its own trace: the program's own goes to FILE, a forked
/// child's to FILE with its PID inserted (out.lackey.zst -> out.PID.lackey.zst).
/// Raw logs live in a temporary directory next to FILE until they are
/// compressed (zstd level 9).
#[derive(Debug, Args)]
#[command(after_help = "Example: vmsim trace record -o true.lackey.zst -- /bin/true")]
struct RecordArgs {
    /// The trace to write.
    #[arg(short, long, default_value = "trace.lackey.zst")]
    output: PathBuf,
    /// The valgrind executable.
    #[arg(long, default_value = "valgrind")]
    valgrind: OsString,
    /// The program to run, then its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

/// Runs `vmsim trace`.
pub fn run(args: &TraceArgs, out: &mut impl Write) -> anyhow::Result<()> {
    match &args.command {
        TraceCommand::Stats(a) => run_stats(a, out),
        TraceCommand::Convert(a) => run_convert(a, out),
        TraceCommand::Pages(a) => run_pages(a, out),
        TraceCommand::Record(a) => run_record(a, out),
    }
}

fn run_stats(args: &StatsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut src = open(&args.trace)?;
    src.set_allow_empty(args.allow_empty);
    let s = stats(&mut src)?;
    if args.json {
        writeln!(
            out,
            "{}",
            crate::output::json_pretty(&s).context("serialising statistics")?
        )?;
    } else {
        write!(out, "{}", render(&args.trace, &s))?;
    }
    Ok(())
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn render(name: &str, s: &TraceStats) -> String {
    let mut out = format!("trace            {name}\n");
    out += &format!("references       {}\n", s.refs);
    for (label, n) in [
        ("  I  instr", s.instr),
        ("  L  load", s.load),
        ("  S  store", s.store),
        ("  M  modify", s.modify),
    ] {
        out += &format!("{label:<16} {n:<12} ({:.1}%)\n", percent(n, s.refs));
    }
    out += &format!(
        "pages 4 KiB      {}   (spanning every byte: {})\n",
        s.pages_4k, s.spanned_pages_4k
    );
    out += &format!(
        "pages 2 MiB      {}   (spanning every byte: {})\n",
        s.pages_2m, s.spanned_pages_2m
    );
    out += &format!(
        "footprint        {} bytes ({:.1} MiB)\n",
        s.footprint_bytes,
        s.footprint_bytes as f64 / 1048576.0
    );
    out += &format!(
        "cross 4 KiB      {} references span two pages\n",
        s.crossing_4k
    );
    out
}

/// Sources read one after the other.
struct Chain {
    sources: std::collections::VecDeque<vmsim_trace::AnySource>,
}

impl vmsim_trace::TraceSource for Chain {
    fn next_batch(
        &mut self,
        out: &mut Vec<vmsim_trace::Access>,
    ) -> Result<usize, vmsim_trace::TraceError> {
        while let Some(s) = self.sources.front_mut() {
            let n = s.next_batch(out)?;
            if n > 0 {
                return Ok(n);
            }
            self.sources.pop_front();
        }
        out.clear();
        Ok(0)
    }
}

fn run_convert(args: &ConvertArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let Some((output, inputs)) = args.paths.split_last() else {
        bail!("give the input traces and the .vmt file to write");
    };
    if inputs.iter().filter(|i| *i == "-").count() > 1 {
        bail!("standard input (-) can be given only once");
    }
    let output = PathBuf::from(output);
    // Opened one at a time, as the chain reaches them, would hide a missing
    // file until the end: open them all first.
    let sources = inputs
        .iter()
        .map(|i| {
            open(i).map(|mut s| {
                s.set_allow_empty(args.allow_empty);
                s
            })
        })
        .collect::<Result<std::collections::VecDeque<_>, _>>()?;
    let mut src = Chain { sources };
    let n = vmt::convert(&mut src, &output)?;
    let bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    let per = if n == 0 { 0.0 } else { bytes as f64 / n as f64 };
    writeln!(
        out,
        "wrote {} references to {} ({bytes} bytes, {per:.2} bytes/reference)",
        n,
        output.display()
    )?;
    Ok(())
}

fn run_pages(args: &PagesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let page_size = super::pages::page_size(&args.page_size)?;
    let mut src = super::pages::open(&args.input, page_size, false)?;
    let write_pages =
        |out: &mut dyn Write, src: &mut vmsim_trace::PageSource| -> anyhow::Result<()> {
            let mut io: Option<std::io::Error> = None;
            let mut buf = itoa_buf();
            src.for_each(|r| {
                if io.is_some() {
                    return Ok(());
                }
                let res = if args.binary {
                    out.write_all(&r.page.to_le_bytes())
                } else {
                    buf.clear();
                    let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{}", r.page));
                    if r.write {
                        buf.push('w');
                    }
                    buf.push('\n');
                    out.write_all(buf.as_bytes())
                };
                if let Err(e) = res {
                    io = Some(e);
                }
                Ok(())
            })?;
            if let Some(e) = io {
                return Err(e.into());
            }
            Ok(out.flush()?)
        };
    match &args.output {
        Some(path) => {
            let tmp = vmsim_trace::output::temp_next_to(path)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
            write_pages(&mut w, &mut src)?;
            drop(w);
            vmsim_trace::output::commit(tmp, path)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        None => write_pages(out, &mut src)?,
    }
    Ok(())
}

fn itoa_buf() -> String {
    String::with_capacity(24)
}

fn run_record(args: &RecordArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no program given to record")
    };
    let opts = RecordOptions {
        program: program.clone(),
        args: rest.to_vec(),
        output: args.output.clone(),
        valgrind: args.valgrind.clone(),
    };
    let rec = record(&opts)?;
    for f in &rec.files {
        let role = if f.main { "program" } else { "forked child" };
        writeln!(out, "wrote {} (pid {}, {role})", f.path.display(), f.pid)?;
    }
    if !rec.status.success() {
        writeln!(out, "note: the program exited with {}", rec.status)?;
    }
    Ok(())
}
