//! `vmsim policy`: the replacement-policy lab. Runs one policy over a
//! reference string of pages (no TLB, no page tables): page numbers given
//! inline or in a file, or any trace `vmsim run` takes, read as pages; prints
//! each reference's outcome and the totals.

use std::io::Write;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;
use vmsim::reclaim::lab::{self, DenseTrace, Detail, Step};
use vmsim::reclaim::{ClockInsert, PolicyConfig, PolicyKind, Ties};

/// Run a page-replacement policy over a reference string.
///
/// INPUT is what `vmsim run` takes: a valgrind lackey trace (plain or zstd),
/// a .vmt file, a synthetic workload `synth:KIND,...`, or `-` for standard
/// input; or a file of page numbers (found from its content: its first
/// line that is not blank or a # comment starts with a digit; --file forces
/// it). Accesses become pages of --page-size bytes; an access that
/// straddles a page boundary touches both pages (two references), as in
/// `vmsim run`. Pages of different processes are different pages.
///
/// Each reference prints one line, `ref PAGE: hit|miss[, evicted PAGE],
/// frames [..]`, where the frames are listed in the policy's own order,
/// first candidate for eviction first: FIFO oldest first; CLOCK and
/// CLOCK-Pro from the hand round the ring; SIEVE from its hand; LRU least
/// recent first; MRU most recent first; OPT farthest next use first; UNOPT
/// soonest next use first; LFU fewest uses first; aging smallest counter
/// first; NRU by class (A,D) then age; RANDOM in slot order; linux inactive
/// then active list from their tails; ARC T1 then T2, 2Q A1in then Am,
/// S3-FIFO small then main, each from its oldest end; LIRS the HIR queue
/// then the LIR pages from the stack bottom. Then the totals.
///
/// With --json: {"steps": [{"page", "hit", "evicted" (page or null),
/// "frames"}...] (left out with --quiet), "policy", "oracle", "frames",
/// "references", "distinct_pages", "hits", "misses", "evictions",
/// "miss_ratio", "ties" (the tie rule, or null for a policy without one)}.
///
/// Examples:
///   vmsim policy --policy fifo --frames 3 --refs 1,2,3,4,1,2,5,1,2,3,4,5
///   vmsim policy --policy opt --frames 100 --file refs.txt --quiet --json
///   vmsim policy --policy lru --frames 256 trace.lackey.zst --quiet
///   vmsim policy -p clock -f 64 synth:zipf,pages=1000,refs=1M --page-size 4KiB -q
///   zstd -dc trace.lackey.zst | vmsim policy -p fifo -f 32 - -q
///   vmsim policy --list
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PolicyArgs {
    /// The trace: lackey (plain or zstd), .vmt, synth:KIND,..., a file of
    /// page numbers, or - for standard input.
    #[arg(value_name = "INPUT", conflicts_with_all = ["refs", "file"])]
    pub input: Option<String>,

    /// Page size that turns accesses into pages (binary units: 4KiB, 2MiB);
    /// not used for page-number input.
    #[arg(long, value_name = "SIZE", default_value = "4KiB")]
    pub page_size: String,

    /// The policy (see --list, or `--policy help`), e.g. lru, clock, opt, arc.
    #[arg(long, short = 'p', value_name = "NAME")]
    pub policy: Option<String>,

    /// Number of page frames, at least 1.
    #[arg(long, short = 'f', value_name = "N")]
    pub frames: Option<String>,

    /// The references inline, e.g. 1,2,3,4 (a `w` suffix marks a write: 3w).
    #[arg(long, value_name = "LIST", conflicts_with = "file")]
    pub refs: Option<String>,

    /// A file of page numbers, one per line or separated by spaces or commas
    /// (decimal or 0x hex; `#` starts a comment; a `w` suffix marks a write),
    /// whatever its content looks like; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print JSON: hits, misses, evictions and, unless --quiet, a `steps`
    /// list with {page, hit, evicted, frames} per reference.
    #[arg(long)]
    pub json: bool,

    /// Leave out the per-reference lines (for big inputs).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// List the policies with a one-line description and whether each is an
    /// oracle (needs every reference or the future, so no OS can run it).
    #[arg(long)]
    pub list: bool,

    /// CLOCK: a new page joins the ring with its accessed bit set (textbook
    /// second chance: the restarted access sets it) or clear (libCacheSim).
    #[arg(long, value_enum, default_value_t = ClockInsertArg::Referenced)]
    pub clock_insert: ClockInsertArg,

    /// OPT, UNOPT, LFU, aging: how to break a tie between equally ranked
    /// pages: oldest (referenced least recently), newest (most recently),
    /// first-loaded, last-loaded. OPT's tie is among pages never used again,
    /// UNOPT's too (when only such pages are left), LFU's among equal counts,
    /// aging's among equal counters (aging sees load order only: oldest =
    /// first-loaded). Defaults, each the policy's usual reading: OPT oldest
    /// (evict what LRU would among the useless pages), UNOPT newest (its
    /// mirror), LFU oldest (LFU with LRU tie-break), aging first-loaded.
    /// OPT's and UNOPT's miss counts never depend on it, the evicted pages do.
    #[arg(long, value_name = "RULE", value_parser = ["oldest", "newest", "first-loaded", "last-loaded"])]
    pub ties: Option<String>,

    /// RANDOM: seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// AGING: references between timer ticks (default: the number of frames).
    #[arg(long, value_name = "N")]
    pub tick: Option<u64>,

    /// Model an OS that clears accessed bits without invalidating the TLB
    /// entry: the cached translation lets accesses through without setting A
    /// again, so CLOCK, SIEVE, NRU, aging, linux and CLOCK-Pro see hot pages
    /// as unused (CLOCK degrades to FIFO). Off by default, as it must be.
    #[arg(long)]
    pub keep_tlb_entry_on_clear: bool,

    /// Print to stderr how long reading, remapping (and for OPT and UNOPT
    /// finding every reference's next use) and simulating took, and the
    /// simulation's references per second, in wall and (Linux) CPU time
    /// (for benchmarks).
    #[arg(long)]
    pub timing: bool,

    /// Also write an interactive page (one self-contained HTML file): the
    /// reference string stepped through, the frames after each reference,
    /// hit or miss, the victim and why, in the policy's own state (CLOCK's
    /// hand and accessed bits, LRU order, OPT's next uses, aging counters).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// With --html: how many references the page steps through (the whole
    /// input runs; its totals are on the page).
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "html")]
    pub trace_steps: usize,
}

/// Command-line form of [`ClockInsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockInsertArg {
    /// Accessed bit left set on load (default).
    Referenced,
    /// Accessed bit cleared on load (libCacheSim's Clock).
    Clear,
}

/// Runs `vmsim policy`.
pub fn run(args: &PolicyArgs, out: &mut impl Write) -> anyhow::Result<()> {
    crate::html::check(args.html.as_deref())?;
    if args.list
        || args
            .policy
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("help"))
    {
        list(out)?;
        return Ok(());
    }
    let Some(name) = args.policy.as_deref() else {
        bail!("--policy: required (see `vmsim policy --list`)");
    };
    let kind: PolicyKind = name.parse().context("--policy")?;
    let Some(frames_text) = args.frames.as_deref() else {
        bail!("--frames: required (the number of page frames)");
    };
    let frames = vmsim::units::parse_u64(frames_text)
        .context("--frames")
        .and_then(|f| {
            usize::try_from(f)
                .ok()
                .and_then(NonZeroUsize::new)
                .ok_or_else(|| anyhow::anyhow!("must be at least 1 (got {f})"))
        })
        .context("--frames")?;
    let tick = match args.tick {
        Some(t) => Some(NonZeroU64::new(t).context("--tick: must be at least 1")?),
        None => None,
    };
    let ties = match args.ties.as_deref() {
        Some(t) => {
            let t: Ties = t.parse().context("--ties")?;
            if kind.default_ties().is_none() {
                bail!(
                    "--ties: {} has no ties to break (only opt, unopt, lfu and aging have an open choice)",
                    kind.name()
                );
            }
            Some(t)
        }
        None => None,
    };
    let cfg = PolicyConfig {
        ties,
        clock_insert: match args.clock_insert {
            ClockInsertArg::Referenced => ClockInsert::Referenced,
            ClockInsertArg::Clear => ClockInsert::Clear,
        },
        seed: args.seed,
        tick,
        keep_tlb_entry_on_clear: args.keep_tlb_entry_on_clear,
    };
    let t0 = Instant::now();
    let page_size = super::pages::page_size(&args.page_size)?;
    let trace = match (&args.refs, &args.file, &args.input) {
        (Some(r), None, None) => DenseTrace::parse(r.as_bytes(), "--refs")?,
        (None, Some(f), None) => {
            super::pages::read_dense(&f.display().to_string(), page_size, true)
                .context("--file")?
                .0
        }
        (None, None, Some(input)) => super::pages::read_dense(input, page_size, false)?.0,
        _ => bail!("INPUT, --refs or --file: give one of them (the reference string)"),
    };
    // OPT's and UNOPT's next uses: one backward pass, timed apart (as
    // libCacheSim reads them from its trace file).
    let next_use = kind.needs_future().then(|| trace.next_uses());
    let t2 = Instant::now();
    let cpu2 = thread_cpu_seconds();

    let detail = if args.quiet {
        Detail::Totals
    } else {
        Detail::Contents
    };
    let page_of = |id: u32| PageName {
        page: trace.pages()[id as usize],
        pid: trace.pids().get(id as usize).copied(),
    };
    let mut io_err: Option<std::io::Error> = None;
    // JSON steps are streamed (the totals follow them), so a long string
    // needs no memory per reference.
    if args.json && !args.quiet {
        write!(
            out,
            "{{\"schema_version\":{},\"steps\":[",
            crate::output::JSON_SCHEMA_VERSION
        )?;
    }
    let future = next_use.as_deref();
    let totals = lab::run_with_future(
        kind,
        &cfg,
        &trace,
        future,
        frames,
        detail,
        usize::MAX,
        |s: &Step<'_>| {
            if io_err.is_some() {
                return;
            }
            let r = if args.json {
                write_json_step(out, s, &page_of)
            } else {
                write_step(out, s, &page_of)
            };
            if let Err(e) = r {
                io_err = Some(e);
            }
        },
    );
    let t3 = Instant::now();
    let cpu3 = thread_cpu_seconds();
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if args.timing {
        let sim = (t3 - t2).as_secs_f64();
        // CPU time as well: on a shared machine wall time also counts
        // waiting for a core.
        let cpu = match (cpu2, cpu3) {
            (Some(a), Some(b)) => format!(
                "; simulate CPU {:.6} s, {:.3} Mrefs/s of CPU",
                b - a,
                totals.refs as f64 / (b - a).max(1e-12) / 1e6
            ),
            _ => String::new(),
        };
        crate::output::to_stderr(&format!(
            "timing: read+parse+remap{} {:.6} s, simulate {:.6} s, {:.3} Mrefs/s{cpu}",
            if next_use.is_some() { "+next uses" } else { "" },
            (t2 - t0).as_secs_f64(),
            sim,
            totals.refs as f64 / sim.max(1e-12) / 1e6,
        ))?;
    }
    let refs = totals.refs.max(1) as f64;
    let report = json!({
        "policy": kind.name(),
        "oracle": kind.is_oracle(),
        "frames": frames.get(),
        "references": totals.refs,
        "distinct_pages": trace.n_ids(),
        "hits": totals.hits,
        "misses": totals.misses,
        "evictions": totals.evictions,
        "miss_ratio": totals.misses as f64 / refs,
        "ties": ties.or(kind.default_ties()).map(Ties::name),
    });
    if args.json {
        let text = serde_json::to_string(&crate::output::versioned(&report))?;
        if args.quiet {
            writeln!(out, "{text}")?;
        } else {
            // Close the steps array and append the totals' fields (the
            // schema_version, written first, left out).
            let fields = text
                .strip_prefix(&format!(
                    "{{\"schema_version\":{},",
                    crate::output::JSON_SCHEMA_VERSION
                ))
                .unwrap_or(&text[1..]);
            writeln!(out, "],{fields}")?;
        }
    } else {
        writeln!(out, "{}", summary_line(kind, frames, &totals, ties))?;
    }
    out.flush()?;
    if let Some(path) = &args.html {
        let input = match (&args.refs, &args.file, &args.input) {
            (Some(r), _, _) => format!("--refs {r}"),
            (_, Some(f), _) => f.display().to_string(),
            (_, _, Some(i)) => i.clone(),
            _ => String::new(),
        };
        let data = crate::html::policy::page_data(
            kind,
            &cfg,
            &trace,
            frames,
            args.trace_steps,
            report,
            &input,
        );
        crate::html::write(
            path,
            crate::html::Kind::Policy,
            &crate::html::policy::title(kind, frames),
            data,
        )?;
    }
    Ok(())
}

/// This thread's CPU time in seconds, from the scheduler
/// (`/proc/thread-self/schedstat`, nanosecond resolution; Linux only).
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The totals line: `fifo with 3 frames: 12 references, 3 hits, 9 misses
/// (75.00%), 6 evictions`, with the tie rule of a policy that has one.
pub(crate) fn summary_line(
    kind: PolicyKind,
    frames: NonZeroUsize,
    totals: &lab::Totals,
    ties: Option<Ties>,
) -> String {
    let tie_note = ties
        .or(kind.default_ties())
        .map_or_else(String::new, |t| format!("; ties: {t}"));
    format!(
        "{}{} with {} frames: {} references, {} hits, {} misses ({:.2}%), {} evictions{tie_note}",
        kind.name(),
        if kind.is_oracle() { " (oracle)" } else { "" },
        frames,
        totals.refs,
        totals.hits,
        totals.misses,
        100.0 * totals.misses as f64 / totals.refs.max(1) as f64,
        totals.evictions,
    )
}

/// A page as printed: its number, and its process when the trace has several
/// (`PID:PAGE`; in JSON a string then).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageName {
    page: u64,
    pid: Option<u32>,
}

impl PageName {
    /// A page of a single-process reference string.
    pub(crate) fn number(page: u64) -> Self {
        Self { page, pid: None }
    }

    fn json(self) -> String {
        match self.pid {
            Some(p) => format!("\"{p}:{}\"", self.page),
            None => self.page.to_string(),
        }
    }
}

impl std::fmt::Display for PageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(p) => write!(f, "{p}:{}", self.page),
            None => write!(f, "{}", self.page),
        }
    }
}

fn write_json_step(
    out: &mut impl Write,
    s: &Step<'_>,
    page_of: &impl Fn(u32) -> PageName,
) -> std::io::Result<()> {
    if s.index > 0 {
        write!(out, ",")?;
    }
    write!(
        out,
        "{{\"page\":{},\"hit\":{},\"evicted\":",
        page_of(s.id).json(),
        s.hit
    )?;
    match s.evicted {
        Some(v) => write!(out, "{}", page_of(v).json())?,
        None => write!(out, "null")?,
    }
    write!(out, ",\"frames\":[")?;
    write_pages(out, s.resident, ",", &|id| page_of(id).json())?;
    write!(out, "]}}")
}

/// The pages of `ids`, separated by `sep` (the resident set of a step, as
/// text and as JSON alike).
fn write_pages<D: std::fmt::Display>(
    out: &mut impl Write,
    ids: &[u32],
    sep: &str,
    page_of: &impl Fn(u32) -> D,
) -> std::io::Result<()> {
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 {
            out.write_all(sep.as_bytes())?;
        }
        write!(out, "{}", page_of(id))?;
    }
    Ok(())
}

pub(crate) fn write_step(
    out: &mut impl Write,
    s: &Step<'_>,
    page_of: &impl Fn(u32) -> PageName,
) -> std::io::Result<()> {
    write!(
        out,
        "ref {}: {}",
        page_of(s.id),
        if s.hit { "hit" } else { "miss" }
    )?;
    if let Some(v) = s.evicted {
        write!(out, ", evicted {}", page_of(v))?;
    }
    write!(out, ", frames [")?;
    write_pages(out, s.resident, " ", page_of)?;
    writeln!(out, "]")
}

fn list(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{:<10} {:<7} description", "policy", "oracle")?;
    for k in PolicyKind::ALL {
        let aliases = k.aliases();
        let also = if aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", aliases.join(", "))
        };
        writeln!(
            out,
            "{:<10} {:<7} {}{}",
            k.name(),
            if k.is_oracle() { "yes" } else { "no" },
            k.description(),
            also
        )?;
    }
    Ok(())
}
