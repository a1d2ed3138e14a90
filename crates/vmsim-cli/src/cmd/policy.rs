//! `vmsim policy`: the replacement-policy lab. Runs one policy over a
//! reference string of page numbers (no TLB, no page tables) and prints each
//! reference's outcome and the totals.

use std::io::Write;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;
use vmsim::reclaim::lab::{self, DenseTrace, Detail, Step};
use vmsim::reclaim::{ClockInsert, PolicyConfig, PolicyKind};

/// Run a page-replacement policy over a reference string.
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
/// "miss_ratio"}.
///
/// Examples:
///   vmsim policy --policy fifo --frames 3 --refs 1,2,3,4,1,2,5,1,2,3,4,5
///   vmsim policy --policy opt --frames 100 --file refs.txt --quiet --json
///   vmsim policy --list
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PolicyArgs {
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
    /// (decimal or 0x hex; `#` starts a comment; a `w` suffix marks a write).
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

    /// Print to stderr how long reading, remapping and simulating took, and
    /// the simulation's references per second (for benchmarks).
    #[arg(long)]
    pub timing: bool,
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
    let cfg = PolicyConfig {
        clock_insert: match args.clock_insert {
            ClockInsertArg::Referenced => ClockInsert::Referenced,
            ClockInsertArg::Clear => ClockInsert::Clear,
        },
        seed: args.seed,
        tick,
        keep_tlb_entry_on_clear: args.keep_tlb_entry_on_clear,
    };
    let t0 = Instant::now();
    let text = match (&args.refs, &args.file) {
        (Some(r), None) => r.as_bytes().to_vec(),
        (None, Some(f)) => vmsim_trace::limits::read_limited(
            f,
            vmsim_trace::limits::MAX_REFERENCE_FILE_BYTES,
            "a reference file",
        )
        .with_context(|| format!("--file: cannot read {}", f.display()))?,
        _ => bail!("--refs or --file: give one of them (the reference string)"),
    };
    let source = args
        .file
        .as_ref()
        .map_or_else(|| "--refs".to_owned(), |f| f.display().to_string());
    let t1 = Instant::now();
    let trace = DenseTrace::parse(&text, &source)?;
    drop(text);
    let t2 = Instant::now();

    let detail = if args.quiet {
        Detail::Totals
    } else {
        Detail::Contents
    };
    let page_of = |id: u32| trace.pages()[id as usize];
    let mut io_err: Option<std::io::Error> = None;
    // JSON steps are streamed (the totals follow them), so a long string
    // needs no memory per reference.
    if args.json && !args.quiet {
        write!(out, "{{\"steps\":[")?;
    }
    let totals = lab::run(kind, &cfg, &trace, frames, detail, |s: &Step<'_>| {
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
    });
    let t3 = Instant::now();
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if args.timing {
        let sim = (t3 - t2).as_secs_f64();
        crate::output::to_stderr(&format!(
            "timing: read {:.6} s, parse+remap {:.6} s, simulate {:.6} s, {:.3} Mrefs/s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            sim,
            totals.refs as f64 / sim.max(1e-12) / 1e6,
        ))?;
    }
    let refs = totals.refs.max(1) as f64;
    if args.json {
        let v = json!({
            "policy": kind.name(),
            "oracle": kind.is_oracle(),
            "frames": frames.get(),
            "references": totals.refs,
            "distinct_pages": trace.n_ids(),
            "hits": totals.hits,
            "misses": totals.misses,
            "evictions": totals.evictions,
            "miss_ratio": totals.misses as f64 / refs,
        });
        let text = v.to_string();
        if args.quiet {
            writeln!(out, "{text}")?;
        } else {
            // Close the steps array and append the totals' fields.
            writeln!(out, "],{}", &text[1..])?;
        }
    } else {
        writeln!(
            out,
            "{}{} with {} frames: {} references, {} hits, {} misses ({:.2}%), {} evictions",
            kind.name(),
            if kind.is_oracle() { " (oracle)" } else { "" },
            frames,
            totals.refs,
            totals.hits,
            totals.misses,
            100.0 * totals.misses as f64 / refs,
            totals.evictions,
        )?;
    }
    Ok(())
}

fn write_json_step(
    out: &mut impl Write,
    s: &Step<'_>,
    page_of: &impl Fn(u32) -> u64,
) -> std::io::Result<()> {
    if s.index > 0 {
        write!(out, ",")?;
    }
    write!(
        out,
        "{{\"page\":{},\"hit\":{},\"evicted\":",
        page_of(s.id),
        s.hit
    )?;
    match s.evicted {
        Some(v) => write!(out, "{}", page_of(v))?,
        None => write!(out, "null")?,
    }
    write!(out, ",\"frames\":[")?;
    write_pages(out, s.resident, ",", page_of)?;
    write!(out, "]}}")
}

/// The pages of `ids`, separated by `sep` (the resident set of a step, as
/// text and as JSON alike).
fn write_pages(
    out: &mut impl Write,
    ids: &[u32],
    sep: &str,
    page_of: &impl Fn(u32) -> u64,
) -> std::io::Result<()> {
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 {
            out.write_all(sep.as_bytes())?;
        }
        write!(out, "{}", page_of(id))?;
    }
    Ok(())
}

fn write_step(
    out: &mut impl Write,
    s: &Step<'_>,
    page_of: &impl Fn(u32) -> u64,
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
