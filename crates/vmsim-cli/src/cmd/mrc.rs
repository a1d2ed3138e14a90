//! `vmsim mrc`: miss-ratio curves. Exact LRU and OPT in one pass, SHARDS
//! sampling, any policy simulated at chosen sizes in parallel (optionally on
//! a spatially sampled miniature), as a table, JSON, CSV or an SVG plot.

use std::fmt::Write as _;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;
use vmsim::mrc::{self, LruStack, Shards, ShardsMode, StackHistogram};
use vmsim::reclaim::lab::{self, DenseTrace, Detail};
use vmsim::reclaim::{PolicyConfig, PolicyKind};
use vmsim_trace::{DenseMap, TraceError};

/// Compute miss-ratio curves: misses as memory (or TLB) size grows.
///
/// INPUT is what `vmsim run` and `vmsim policy` take: lackey (plain or
/// zstd), .vmt, synth:KIND,..., a page-number file, or - for standard input;
/// each INPUT gets its own curves. Accesses become pages of --page-size
/// bytes; an access that straddles a page boundary touches both pages.
///
/// Methods, by policy:
///   lru    exact at every size in one pass (stack distances, Fenwick tree,
///          O(log pages) per reference, memory proportional to the pages);
///          equal to `vmsim policy --policy lru` at each size
///   opt    exact at every size in one pass (OPT is a stack algorithm)
///   other  simulated at each size (exact), in parallel on -j threads; with
///          --sample RATE on a spatially sampled miniature trace instead
///          (size x RATE frames), the error measured on LRU stated
/// --shards RATE and --shards-max N give SHARDS estimates of the LRU curve
/// (fixed rate, fixed sample size) reading only the sampled pages; with
/// -p lru the exact curve is computed too and their error printed.
///
/// --tlb: the sizes are entries of a fully associative LRU TLB (reach =
/// entries x page size); the curve is the TLB's misses per translation.
///
/// Sizes (--sizes): pow2 (default: 1, 2, 4, ... and the footprint), all
/// (every size up to the footprint), or a list of N (frames), SIZE with a
/// binary unit (bytes, e.g. 64MiB), A-B (every size), A-B/N (N sizes,
/// evenly spaced on a log scale).
///
/// JSON (--json): {"unit", "page_size", "inputs": [{"input", "references",
/// "accesses", "distinct_pages", "curves": [{"policy", "method", "rate",
/// "error": {"against", "mean_abs", "max_abs"} or null, "points": [{"size",
/// "bytes", "misses", "miss_ratio"}]}]}]}. CSV (--csv): input, policy,
/// method, size, bytes, misses, miss_ratio.
///
/// Examples:
///   vmsim mrc trace.lackey.zst
///   vmsim mrc trace.lackey.zst --policy lru,opt,fifo,clock,arc --plot mrc.svg
///   vmsim mrc trace.vmt --shards 1% --shards-max 8K -p lru
///   vmsim mrc big.vmt --policy lru,clock,arc --sample 1% --sizes 1K-1M/20
///   vmsim mrc a.lackey.zst b.lackey.zst --tlb --page-size 4KiB --sizes 1-1536/24 --csv
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MrcArgs {
    /// Traces: lackey, .vmt, synth:..., page-number files, - for standard input.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,

    /// Policies, comma separated (see `vmsim policy --list`), or `all`.
    /// Default: lru, or none when --shards/--shards-max is given (add -p lru
    /// to compute the exact curve too and see their error).
    #[arg(long, short = 'p', value_name = "LIST")]
    pub policy: Option<String>,

    /// Sizes to report: pow2, all, or a list (see above).
    #[arg(long, value_name = "SPEC", default_value = "pow2")]
    pub sizes: String,

    /// Page size that turns accesses into pages (binary units); not used for
    /// page-number input.
    #[arg(long, value_name = "SIZE", default_value = "4KiB")]
    pub page_size: String,

    /// Read every INPUT as a page-number file, whatever its content.
    #[arg(long)]
    pub file: bool,

    /// SHARDS at a fixed sampling rate (0.01 or 1%).
    #[arg(long, value_name = "RATE")]
    pub shards: Option<String>,

    /// SHARDS with a fixed sample of at most N pages (the rate adapts).
    #[arg(long, value_name = "N")]
    pub shards_max: Option<String>,

    /// Simulate the non-stack policies on a spatially sampled miniature
    /// trace at this rate (miniature simulations).
    #[arg(long, value_name = "RATE")]
    pub sample: Option<String>,

    /// With --sample: also simulate on the full trace and state each
    /// policy's sampling error.
    #[arg(long, requires = "sample")]
    pub compare_full: bool,

    /// Seed of the sampling hash.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Sizes are TLB entries (fully associative, LRU), not frames.
    #[arg(long)]
    pub tlb: bool,

    /// Threads for the simulations (default: every core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print CSV, one row per point.
    #[arg(long)]
    pub csv: bool,

    /// Draw the curves (log x axis) into FILE.svg or FILE.png (the
    /// extension chooses the format).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,

    /// X axis of the plot: frames (entries with --tlb) or bytes.
    #[arg(long, value_enum, default_value_t = Axis::Frames)]
    pub x_axis: Axis,

    /// Print to stderr how long reading and each curve took.
    #[arg(long)]
    pub timing: bool,
}

/// The plot's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Axis {
    /// Frames (TLB entries with --tlb).
    Frames,
    /// Bytes of memory (TLB reach with --tlb).
    Bytes,
}

/// One point of a curve.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    size: u64,
    bytes: u64,
    misses: u64,
    miss_ratio: f64,
}

/// A curve's error against a reference curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurveError {
    against: String,
    mean_abs: f64,
    max_abs: f64,
}

/// One curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    policy: String,
    method: String,
    rate: Option<f64>,
    error: Option<CurveError>,
    points: Vec<Point>,
}

/// The curves of one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputCurves {
    input: String,
    references: u64,
    accesses: u64,
    distinct_pages: u64,
    curves: Vec<Curve>,
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    unit: &'static str,
    page_size: u64,
    inputs: &'a [InputCurves],
}

/// Validated options.
struct Plan {
    policies: Vec<PolicyKind>,
    page_size: u64,
    shards: Option<f64>,
    shards_max: Option<usize>,
    sample: Option<f64>,
    compare_full: bool,
    seed: u64,
    timing: bool,
    force_numbers: bool,
}

fn rate(text: &str, flag: &str) -> anyhow::Result<f64> {
    let r = vmsim::units::parse_ratio(text).with_context(|| flag.to_owned())?;
    if r <= 0.0 {
        bail!("{flag}: the rate must be above 0 (got {text})");
    }
    Ok(r)
}

/// Runs `vmsim mrc`.
pub fn run(args: &MrcArgs, out: &mut impl Write) -> anyhow::Result<()> {
    super::plot::check(args.plot.as_deref())?;
    let page_size = super::pages::page_size(&args.page_size)?;
    let sharding = args.shards.is_some() || args.shards_max.is_some();
    let policies = match (&args.policy, sharding) {
        (Some(p), _) => parse_policies(p)?,
        (None, true) => Vec::new(),
        (None, false) => vec![PolicyKind::Lru],
    };
    let plan = Plan {
        policies,
        page_size,
        shards: args
            .shards
            .as_deref()
            .map(|t| rate(t, "--shards"))
            .transpose()?,
        shards_max: args
            .shards_max
            .as_deref()
            .map(|t| {
                let n = vmsim::units::parse_count(t).context("--shards-max")?;
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| anyhow::anyhow!("--shards-max: must be at least 1 (got {t})"))
            })
            .transpose()?,
        sample: args
            .sample
            .as_deref()
            .map(|t| rate(t, "--sample"))
            .transpose()?,
        compare_full: args.compare_full,
        seed: args.seed,
        timing: args.timing,
        force_numbers: args.file,
    };
    if args.inputs.iter().filter(|i| *i == "-").count() > 1 {
        bail!("standard input (-) can be given only once");
    }
    if plan.sample.is_some()
        && plan
            .policies
            .iter()
            .all(|k| matches!(k, PolicyKind::Lru | PolicyKind::Opt))
    {
        bail!(
            "--sample: lru and opt are exact in one pass; give a policy that is simulated (e.g. -p clock,arc)"
        );
    }
    if let Some(j) = args.jobs
        && j == 0
    {
        bail!("-j: must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("-j: cannot start the threads")?;
    let results: Vec<InputCurves> = pool.install(|| {
        args.inputs
            .par_iter()
            .map(|input| curves_of(input, &plan, &args.sizes))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let unit = if args.tlb { "entries" } else { "frames" };
    if let Some(path) = &args.plot {
        plot(&results, path, unit, args.x_axis, page_size)?;
    }
    if args.json {
        let o = Output {
            unit,
            page_size,
            inputs: &results,
        };
        writeln!(out, "{}", crate::output::json_pretty(&o)?)?;
    } else if args.csv {
        out.write_all(csv(&results).as_bytes())?;
    } else {
        out.write_all(table(&results, unit, page_size, args.tlb).as_bytes())?;
    }
    Ok(())
}

fn parse_policies(text: &str) -> anyhow::Result<Vec<PolicyKind>> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(PolicyKind::ALL.to_vec());
    }
    let mut v: Vec<PolicyKind> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let k: PolicyKind = name.parse().context("--policy")?;
        if !v.contains(&k) {
            v.push(k);
        }
    }
    if v.is_empty() {
        bail!("--policy: give at least one policy (e.g. lru,opt,fifo)");
    }
    Ok(v)
}

/// The most sizes one `--sizes` may ask for: 10 million (a curve of every
/// size up to 40 GiB of 4 KiB pages). The list is built before anything
/// runs, so without a bound `1-1T/1G` would fill memory before the first
/// reference is read.
const MAX_SIZES: u64 = 10_000_000;

/// The sizes of `spec` for a trace of `distinct` pages.
fn parse_sizes(spec: &str, distinct: u64, page_size: u64) -> anyhow::Result<Vec<u64>> {
    let top = distinct.max(1);
    let mut v: Vec<u64> = Vec::new();
    // Checked before each item adds its sizes: the whole list stays bounded.
    let room = |v: &Vec<u64>, more: u64, item: &str| -> anyhow::Result<()> {
        if (v.len() as u64).saturating_add(more) > MAX_SIZES {
            bail!(
                "--sizes: '{item}': more than {MAX_SIZES} sizes in all; use A-B/N with a smaller N"
            );
        }
        Ok(())
    };
    let one = |t: &str| -> anyhow::Result<u64> {
        let t = t.trim();
        let lower = t.to_ascii_lowercase();
        let n = if lower.ends_with("ib") || (lower.ends_with('b') && !lower.starts_with("0x")) {
            let bytes = vmsim::units::parse_size(t)?;
            bytes / page_size
        } else {
            vmsim::units::parse_count(t)?
        };
        if n == 0 {
            bail!("'{t}' is less than one page or frame");
        }
        Ok(n)
    };
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "pow2" => {
                let mut s = 1u64;
                while s < top {
                    v.push(s);
                    s *= 2;
                }
                v.push(top);
            }
            // As many as the trace has pages: bounded by the trace itself.
            "all" => v.extend(1..=top),
            _ => {
                let item_ctx = || format!("--sizes: '{item}'");
                if let Some((range, count)) = item.split_once('/') {
                    let (a, b) = range.split_once('-').with_context(item_ctx)?;
                    let (a, b) = (
                        one(a).with_context(item_ctx)?,
                        one(b).with_context(item_ctx)?,
                    );
                    let n = vmsim::units::parse_count(count).with_context(item_ctx)?;
                    if a > b || n == 0 {
                        bail!("{}: expected A-B/N with A <= B and N >= 1", item_ctx());
                    }
                    // (N is at most MAX_SIZES, so `i as i32` below is exact.)
                    room(&v, n.saturating_add(1), item)?;
                    let ratio = (b as f64 / a as f64).powf(1.0 / (n.max(2) - 1) as f64);
                    for i in 0..n {
                        v.push(((a as f64) * ratio.powi(i as i32)).round() as u64);
                    }
                    v.push(b);
                } else if let Some((a, b)) = item.split_once('-') {
                    let (a, b) = (
                        one(a).with_context(item_ctx)?,
                        one(b).with_context(item_ctx)?,
                    );
                    if a > b {
                        bail!("{}: the range is backwards", item_ctx());
                    }
                    if b - a > MAX_SIZES {
                        bail!("{}: more than 10M sizes; use A-B/N", item_ctx());
                    }
                    room(&v, b - a + 1, item)?;
                    v.extend(a..=b);
                } else {
                    v.push(one(item).with_context(item_ctx)?);
                }
            }
        }
    }
    v.retain(|&s| s >= 1);
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        bail!("--sizes: no sizes in '{spec}'");
    }
    Ok(v)
}

fn name_of(input: &str) -> String {
    if input == "-" {
        "<stdin>".to_owned()
    } else {
        input.to_owned()
    }
}

/// What one pass over the input gives.
struct Pass {
    references: u64,
    accesses: u64,
    distinct: u64,
    lru: Option<StackHistogram>,
    shards: Vec<(String, f64, Shards)>,
    trace: Option<DenseTrace>,
}

fn read_pass(input: &str, plan: &Plan, need_trace: bool, need_lru: bool) -> anyhow::Result<Pass> {
    let mut shards = Vec::new();
    if let Some(r) = plan.shards {
        shards.push((
            format!("shards rate {}", percent(r)),
            r,
            Shards::new(ShardsMode::Rate(r), plan.seed),
        ));
    }
    if let Some(n) = plan.shards_max {
        shards.push((
            format!("shards max {n}"),
            0.0,
            Shards::new(ShardsMode::Size(n), plan.seed),
        ));
    }
    let name = name_of(input);
    if need_trace {
        let (trace, accesses) =
            super::pages::read_dense(input, plan.page_size, plan.force_numbers)?;
        let mut lru = None;
        if need_lru || !shards.is_empty() {
            let mut stack = LruStack::new();
            let mut h = StackHistogram::new();
            let pids = trace.pids();
            let pages = trace.pages();
            for &id in trace.ids() {
                if need_lru {
                    h.record(stack.access(id));
                }
                let i = id as usize;
                for (_, _, s) in &mut shards {
                    s.access(pids.get(i).copied().unwrap_or(0), pages[i]);
                }
            }
            lru = need_lru.then_some(h);
        }
        return Ok(Pass {
            references: trace.len() as u64,
            accesses,
            distinct: trace.n_ids() as u64,
            lru,
            shards,
            trace: Some(trace),
        });
    }
    let mut src = super::pages::open(input, plan.page_size, plan.force_numbers)?;
    let mut map = DenseMap::new();
    let mut stack = LruStack::new();
    let mut h = StackHistogram::new();
    let mut refs = 0u64;
    let accesses = if need_lru {
        src.for_each(|r| {
            refs += 1;
            let id = map
                .id(r.pid, r.page)
                .ok_or_else(|| TraceError::TooManyPages {
                    path: name.clone().into(),
                })?;
            h.record(stack.access(id));
            for (_, _, s) in &mut shards {
                s.access(r.pid, r.page);
            }
            Ok(())
        })?
    } else {
        // SHARDS only: no dense map of the whole trace, only of the sample.
        match shards.as_mut_slice() {
            [(_, _, s)] => src.for_each(|r| {
                refs += 1;
                s.access(r.pid, r.page);
                Ok(())
            })?,
            _ => src.for_each(|r| {
                refs += 1;
                for (_, _, s) in &mut shards {
                    s.access(r.pid, r.page);
                }
                Ok(())
            })?,
        }
    };
    let distinct = if need_lru {
        map.len() as u64
    } else {
        // Estimated from the sample (exact at rate 1).
        shards
            .first()
            .map_or(0, |(_, _, s)| s.estimated_pages().round() as u64)
    };
    Ok(Pass {
        references: refs,
        accesses,
        distinct,
        lru: need_lru.then_some(h),
        shards,
        trace: None,
    })
}

fn percent(r: f64) -> String {
    let p = r * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p}%")
    }
}

fn points(sizes: &[u64], misses: &[u64], refs: u64, page_size: u64) -> Vec<Point> {
    sizes
        .iter()
        .zip(misses)
        .map(|(&size, &m)| Point {
            size,
            bytes: size.saturating_mul(page_size),
            misses: m,
            miss_ratio: if refs == 0 {
                0.0
            } else {
                m as f64 / refs as f64
            },
        })
        .collect()
}

fn ratios(c: &Curve) -> Vec<f64> {
    c.points.iter().map(|p| p.miss_ratio).collect()
}

/// Simulates `kind` on `trace` at each of `sizes` (in parallel).
fn simulate(kind: PolicyKind, trace: &DenseTrace, sizes: &[u64]) -> Vec<u64> {
    let cfg = PolicyConfig::default();
    sizes
        .par_iter()
        .map(|&s| {
            let f = NonZeroUsize::new(usize::try_from(s).unwrap_or(usize::MAX))
                .unwrap_or(NonZeroUsize::MIN);
            lab::run(kind, &cfg, trace, f, Detail::Totals, |_| {}).misses
        })
        .collect()
}

fn curves_of(input: &str, plan: &Plan, sizes_spec: &str) -> anyhow::Result<InputCurves> {
    let t0 = Instant::now();
    let need_lru = plan.policies.contains(&PolicyKind::Lru) || plan.sample.is_some();
    let need_trace = plan.policies.iter().any(|&k| k != PolicyKind::Lru);
    let pass = read_pass(input, plan, need_trace, need_lru)?;
    let name = name_of(input);
    if plan.timing {
        crate::output::to_stderr(&format!(
            "timing: {name}: read and one-pass curves {:.3} s, {:.1} M references/s",
            t0.elapsed().as_secs_f64(),
            pass.references as f64 / t0.elapsed().as_secs_f64().max(1e-9) / 1e6
        ))?;
    }
    let sizes = parse_sizes(sizes_spec, pass.distinct, plan.page_size)?;
    let refs = pass.references;
    let ps = plan.page_size;
    let lru_curve = pass.lru.as_ref().map(|h| Curve {
        policy: "lru".into(),
        method: "exact (one pass)".into(),
        rate: None,
        error: None,
        points: points(&sizes, &h.misses(&sizes), refs, ps),
    });
    let lru_ratios = lru_curve.as_ref().map(ratios);
    let mut curves = Vec::new();
    // The miniature LRU: its error against the exact curve states the
    // sampling error of this trace at this rate.
    let mini = match (&pass.trace, plan.sample) {
        (Some(t), Some(r)) => Some((mrc::sample(t, r, plan.seed), r)),
        _ => None,
    };
    let mini_sizes = |r: f64| -> Vec<u64> {
        sizes
            .iter()
            .map(|&s| ((s as f64 * r).round() as u64).max(1))
            .collect()
    };
    let mini_lru_error = mini.as_ref().and_then(|(t, r)| {
        let ms = mini_sizes(*r);
        let mut stack = LruStack::new();
        let mut h = StackHistogram::new();
        for &id in t.ids() {
            h.record(stack.access(id));
        }
        let mr: Vec<f64> = h
            .misses(&ms)
            .iter()
            .map(|&m| m as f64 / t.len().max(1) as f64)
            .collect();
        lru_ratios.as_ref().map(|ex| mrc::curve_error(&mr, ex))
    });
    let t1 = Instant::now();
    let policy_curves: Vec<Curve> = plan
        .policies
        .par_iter()
        .map(|&kind| {
            let pname = kind.name().to_owned();
            match (kind, &pass.trace) {
                (PolicyKind::Lru, _) => lru_curve.clone(),
                (PolicyKind::Opt, Some(t)) => {
                    let nu = t.next_uses();
                    let depth = usize::try_from(*sizes.last().unwrap_or(&1)).unwrap_or(usize::MAX);
                    let h = mrc::opt_histogram(t, &nu, depth);
                    Some(Curve {
                        policy: pname,
                        method: "exact (one pass)".into(),
                        rate: None,
                        error: None,
                        points: points(&sizes, &h.misses(&sizes), refs, ps),
                    })
                }
                (_, Some(t)) => Some(match &mini {
                    Some((mt, r)) => {
                        let ms = mini_sizes(*r);
                        let m = simulate(kind, mt, &ms);
                        let n = mt.len().max(1) as f64;
                        let mut pts = points(&sizes, &m, refs, ps);
                        for (p, &mm) in pts.iter_mut().zip(&m) {
                            p.miss_ratio = mm as f64 / n;
                            p.misses = (p.miss_ratio * refs as f64).round() as u64;
                        }
                        let error = if plan.compare_full {
                            let full = simulate(kind, t, &sizes);
                            let fr: Vec<f64> = full
                                .iter()
                                .map(|&x| x as f64 / refs.max(1) as f64)
                                .collect();
                            let (mae, max) = mrc::curve_error(
                                &pts.iter().map(|p| p.miss_ratio).collect::<Vec<_>>(),
                                &fr,
                            );
                            Some(CurveError {
                                against: format!("{pname} simulated on the full trace"),
                                mean_abs: mae,
                                max_abs: max,
                            })
                        } else {
                            mini_lru_error.map(|(mae, max)| CurveError {
                                against: "lru exact (sampling error measured on a miniature lru)"
                                    .into(),
                                mean_abs: mae,
                                max_abs: max,
                            })
                        };
                        Curve {
                            policy: pname,
                            method: format!("miniature simulation, sample {}", percent(*r)),
                            rate: Some(*r),
                            error,
                            points: pts,
                        }
                    }
                    None => Curve {
                        policy: pname,
                        method: "simulated at each size".into(),
                        rate: None,
                        error: None,
                        points: points(&sizes, &simulate(kind, t, &sizes), refs, ps),
                    },
                }),
                (_, None) => None,
            }
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    curves.extend(policy_curves);
    for (label, r, s) in &pass.shards {
        let est = s.miss_ratios(&sizes);
        let error = lru_ratios.as_ref().map(|ex| {
            let (mae, max) = mrc::curve_error(&est, ex);
            CurveError {
                against: "lru exact".into(),
                mean_abs: mae,
                max_abs: max,
            }
        });
        let (_, sampled) = s.counts();
        curves.push(Curve {
            policy: "lru".into(),
            method: format!("{label} ({sampled} references sampled)"),
            rate: Some(if *r > 0.0 { *r } else { s.rate() }),
            error,
            points: sizes
                .iter()
                .zip(est)
                .map(|(&size, ratio)| Point {
                    size,
                    bytes: size.saturating_mul(ps),
                    misses: (ratio * refs as f64).round() as u64,
                    miss_ratio: ratio,
                })
                .collect(),
        });
    }
    if plan.timing {
        crate::output::to_stderr(&format!(
            "timing: {name}: curves {:.3} s",
            t1.elapsed().as_secs_f64()
        ))?;
    }
    Ok(InputCurves {
        input: name,
        references: refs,
        accesses: pass.accesses,
        distinct_pages: pass.distinct,
        curves,
    })
}

fn label(c: &Curve) -> String {
    if c.method.starts_with("exact") || c.method.starts_with("simulated") {
        c.policy.clone()
    } else if let Some(r) = c.rate {
        if c.method.starts_with("shards max") {
            format!("{}~shards-max", c.policy)
        } else if c.method.starts_with("shards") {
            format!("{}~shards{}", c.policy, percent(r))
        } else {
            format!("{}~{}", c.policy, percent(r))
        }
    } else {
        c.policy.clone()
    }
}

fn table(results: &[InputCurves], unit: &str, page_size: u64, tlb: bool) -> String {
    let mut s = String::new();
    let ps = vmsim::units::format_size(page_size);
    for r in results {
        let _ = writeln!(
            s,
            "{}: {} references ({} accesses), {} distinct pages of {ps}{}",
            r.input,
            r.references,
            r.accesses,
            r.distinct_pages,
            if tlb {
                ", fully associative LRU TLB"
            } else {
                ""
            }
        );
        let labels: Vec<String> = r.curves.iter().map(label).collect();
        let w = labels.iter().map(String::len).max().unwrap_or(8).max(9);
        let _ = write!(s, "{unit:>10} {:>10}", if tlb { "reach" } else { "memory" });
        for l in &labels {
            let _ = write!(s, " {l:>w$}");
        }
        s.push('\n');
        let n = r.curves.first().map_or(0, |c| c.points.len());
        for i in 0..n {
            let p0 = &r.curves[0].points[i];
            let _ = write!(
                s,
                "{:>10} {:>10}",
                p0.size,
                vmsim::units::format_size(p0.bytes)
            );
            for c in &r.curves {
                let _ = write!(s, " {:>w$.6}", c.points[i].miss_ratio);
            }
            s.push('\n');
        }
        for (c, l) in r.curves.iter().zip(&labels) {
            let _ = writeln!(s, "  {l}: {}", c.method);
            if let Some(e) = &c.error {
                let _ = writeln!(
                    s,
                    "    error against {}: mean absolute {:.6}, largest {:.6}",
                    e.against, e.mean_abs, e.max_abs
                );
            }
        }
    }
    s
}

fn csv(results: &[InputCurves]) -> String {
    let mut s = String::from("input,policy,method,size,bytes,misses,miss_ratio\n");
    let q = |t: &str| {
        if t.contains([',', '"', '\n']) {
            format!("\"{}\"", t.replace('"', "\"\""))
        } else {
            t.to_owned()
        }
    };
    for r in results {
        for c in &r.curves {
            for p in &c.points {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{}",
                    q(&r.input),
                    q(&c.policy),
                    q(&c.method),
                    p.size,
                    p.bytes,
                    p.misses,
                    p.miss_ratio
                );
            }
        }
    }
    s
}

fn plot(
    results: &[InputCurves],
    path: &std::path::Path,
    unit: &str,
    axis: Axis,
    page_size: u64,
) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let x_of = |p: &Point| match axis {
        Axis::Frames => p.size as f64,
        Axis::Bytes => p.bytes as f64,
    };
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in results {
        for c in &r.curves {
            let name = if results.len() > 1 {
                let file = std::path::Path::new(&r.input)
                    .file_name()
                    .map_or_else(|| r.input.clone(), |f| f.to_string_lossy().into_owned());
                format!("{file} {}", label(c))
            } else {
                label(c)
            };
            lines.push((
                name,
                c.points.iter().map(|p| (x_of(p), p.miss_ratio)).collect(),
            ));
        }
    }
    let xs = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0));
    let xmin = xs.clone().fold(f64::INFINITY, f64::min).max(1.0);
    let xmax = xs.fold(1.0f64, f64::max).max(xmin * 2.0);
    let ymax = lines
        .iter()
        .flat_map(|l| l.1.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.05;
    let x_desc = match (axis, unit) {
        (Axis::Frames, u) => format!(
            "{u} (log scale; 1 = {})",
            vmsim::units::format_size(page_size)
        ),
        (Axis::Bytes, "entries") => "TLB reach in bytes (log scale)".to_owned(),
        (Axis::Bytes, _) => "memory in bytes (log scale)".to_owned(),
    };
    let title = if results.len() == 1 {
        format!("miss-ratio curve: {}", results[0].input)
    } else {
        "miss-ratio curves".to_owned()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d((xmin..xmax).log_scale(), 0f64..ymax)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("miss ratio")
                .x_label_formatter(&|v| {
                    if axis == Axis::Bytes {
                        human_bytes(*v)
                    } else {
                        super::plot::human_count(v.round())
                    }
                })
                .draw()?;
            for (i, (name, pts)) in lines.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            bail!("{}: cannot draw the plot: {e}", path.display());
        }
    }
    super::plot::save(path, &svg)
}

/// A byte count for an axis label, in the largest binary unit it reaches
/// (`9.8 KiB`, `1 GiB`).
fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = v;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    let text = format!("{x:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_bytes_read_well() {
        assert_eq!(human_bytes(10000.0), "9.8 KiB");
        assert_eq!(human_bytes(4096.0), "4 KiB");
        assert_eq!(human_bytes(100.0), "100 B");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3 GiB");
    }

    #[test]
    fn size_specs() {
        assert_eq!(
            parse_sizes("pow2", 10, 4096).expect("valid"),
            [1, 2, 4, 8, 10]
        );
        assert_eq!(parse_sizes("all", 3, 4096).expect("valid"), [1, 2, 3]);
        assert_eq!(
            parse_sizes("3,1,2-4", 3, 4096).expect("valid"),
            [1, 2, 3, 4]
        );
        assert_eq!(parse_sizes("64KiB,1K", 3, 4096).expect("valid"), [16, 1000]);
        assert_eq!(
            parse_sizes("1-1000/4", 3, 4096).expect("valid"),
            [1, 10, 100, 1000]
        );
        assert!(parse_sizes("0", 3, 4096).is_err());
        assert!(parse_sizes("5-1", 3, 4096).is_err());
        assert!(parse_sizes("x", 3, 4096).is_err());
        assert!(parse_sizes("1KiB", 3, 4096).is_err());
    }
}
