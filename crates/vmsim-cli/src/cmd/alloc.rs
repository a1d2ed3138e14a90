//! `vmsim alloc`: the allocator lab. Steps a list of allocations and frees
//! through the textbook free-list allocator, or through the kernel's buddy
//! or slab allocators, printing every step and the fragmentation figures.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use vmsim::alloc::lab::{
    self, BuddyLabConfig, BuddyRun, BuddyStep, BuddyTotals, FreeListRun, FreeListStep,
    FreeListTotals, Outcome, SlabLabConfig, SlabRun, SlabStep,
};
use vmsim::alloc::ops::{HeapOp, parse_ops};
use vmsim::alloc::{Block, Coalesce, FreeSpaceConfig, ListOrder, Placement};
use vmsim::units::{format_size, parse_size, parse_u64};

/// Step a heap allocator through allocations and frees, as in the textbook
/// exercises: first/next/best/worst fit over a free list, or the kernel's
/// buddy and slab allocators.
///
/// Operations (--ops or --ops-file): `aN` allocates N units, `fI` frees the
/// allocation made by the I-th `a` (0-based, failed ones included: freeing a
/// failed allocation is free(NULL) and does nothing); `+N` and `-I` (OSTEP's
/// malloc.py) work too. Separators: commas or white space; `#` comments.
///
/// Free list (--allocator free-list, the default; units are bytes): the heap
/// [--base, --base + --heap) starts as one free block.
///   - a request of N bytes takes a block of round_up(N, --align) + --header
///     bytes; the pointer returned is block + header.
///   - the list is searched in list order: first takes the first block that
///     fits, best the smallest and worst the largest (first in list order on
///     ties; both examine the whole list), next starts where the previous
///     search ended (the leftover block, or the one after it) and wraps,
///     size-aligned is first fit at an address that is a multiple of the
///     block size rounded up to a power of two. "searched" counts the
///     elements examined; a failure examined them all.
///   - the allocation takes the low end of the block; the leftover keeps the
///     block's place in the list until the next free re-sorts it.
///   - a free inserts the block by --order: address, size-asc and size-desc
///     re-sort the whole list stably (a freed block goes after blocks of equal
///     size), head puts it first, tail last.
///   - --coalesce (= --coalesce=list) is malloc.py's rule: after the insertion
///     one pass merges blocks that are listed one after the other and adjacent
///     in memory, complete only in address order (so the order matters).
///     --coalesce=address merges with the neighbours in memory wherever they
///     are listed (boundary tags), then inserts the merged block.
///   - fragmentation: external = 1 - largest free block / free bytes;
///     internal = header and alignment padding of the live allocations.
///
/// Buddy (--allocator buddy; units are pages): --heap pages from page --base,
/// blocks of 2^order pages up to --max-order (default: the largest order the
/// heap holds). `aN` rounds N up to a power of two, takes the first block of
/// the smallest order that has one and splits it, keeping the lower half; a
/// free merges with the buddy (address XOR size) while it is free. The
/// engine's allocator: the kernel uses the same code.
///
/// Slab (--allocator slab): `aN` allocates an object of N bytes from the cache
/// of objects of exactly N bytes (made on first use, slots aligned to --align,
/// default 8), whose slabs come from a buddy allocator of --heap pages of
/// --page-size bytes (default 4K); slab orders are chosen as Linux's SLUB does
/// and an empty slab is kept, the next one given back.
///
/// With --json: {"allocator", "config", "steps": [...], "totals"}; each step
/// has "index", "op", "alloc", "outcome" (allocated|failed|freed|free-null)
/// and the allocator's state after it (free list: "ptr", "block", "searched",
/// "merges", "free_list", "stats"; buddy: "order", "block", "split_from",
/// "merged_to", "free_lists"; slab: "cache", "addr", "slab", "new_slab",
/// "released_slab", "cache_stats"). --quiet leaves out the steps.
///
/// Examples:
///   vmsim alloc --heap 100 --base 1000 --fit best --ops a3,a5,f0,a2
///   vmsim alloc --heap 16 --ops a2,a4,a4,a4,f0,a4 --fit size-aligned
///   vmsim alloc --heap 100 --order head --coalesce --header 4 --align 4 --ops-file ops.txt
///   vmsim alloc --allocator buddy --heap 64 --ops a8,a8,a4,f0,f1
///   vmsim alloc --allocator slab --heap 64 --ops a1741,a1741,a200,f0 --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AllocArgs {
    /// Which allocator.
    #[arg(long, value_enum, default_value_t = AllocatorArg::FreeList)]
    pub allocator: AllocatorArg,

    /// Size of the region: bytes for the free list (e.g. 100, 4K), pages for
    /// buddy and slab.
    #[arg(long, value_name = "SIZE")]
    pub heap: Option<String>,

    /// First address of the heap (free list) or first page (buddy); default 0.
    #[arg(long, value_name = "ADDR")]
    pub base: Option<String>,

    /// Free list: how a block is chosen (default first).
    #[arg(long, value_enum)]
    pub fit: Option<FitArg>,

    /// Free list: the order of the free list (default address).
    #[arg(long, value_enum)]
    pub order: Option<OrderArg>,

    /// Free list: merge freed blocks with free neighbours; bare --coalesce is
    /// --coalesce=list (malloc.py's pass over the list).
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "list",
        value_name = "RULE"
    )]
    pub coalesce: Option<CoalesceArg>,

    /// Free list: header bytes in front of every allocation (default 0).
    #[arg(long, value_name = "BYTES")]
    pub header: Option<String>,

    /// Free list: round requests up to a multiple of N (default 1: none).
    /// Slab: object alignment, a power of two (default 8).
    #[arg(long, value_name = "N")]
    pub align: Option<String>,

    /// The operations inline, e.g. a100,a200,f0,a50.
    #[arg(long, value_name = "LIST", conflicts_with = "ops_file")]
    pub ops: Option<String>,

    /// A file of operations (same syntax; `#` comments).
    #[arg(long, value_name = "FILE")]
    pub ops_file: Option<PathBuf>,

    /// Buddy: the largest block order (default: the largest the heap holds).
    #[arg(long, value_name = "ORDER")]
    pub max_order: Option<u32>,

    /// Slab: bytes per page (default 4K).
    #[arg(long, value_name = "SIZE")]
    pub page_size: Option<String>,

    /// Print JSON (see above).
    #[arg(long)]
    pub json: bool,

    /// Only the totals.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Also write an interactive page (one self-contained HTML file): the
    /// heap, the buddy allocator's blocks or the slab caches drawn after
    /// every operation, stepped through.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// With --html: how many operations the page steps through (all run).
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "html")]
    pub trace_steps: usize,
}

/// The allocators of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorArg {
    /// The textbook free list (bytes).
    FreeList,
    /// The kernel's binary buddy allocator (pages).
    Buddy,
    /// The kernel's slab caches over a buddy allocator.
    Slab,
}

/// `--fit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitArg {
    /// The first block that fits.
    First,
    /// The first that fits after the previous search.
    Next,
    /// The smallest that fits.
    Best,
    /// The largest.
    Worst,
    /// First fit at an address aligned to the block size (power of two).
    SizeAligned,
}

/// `--order` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// By address.
    Address,
    /// Smallest first.
    SizeAsc,
    /// Largest first.
    SizeDesc,
    /// Freed blocks go first (LIFO).
    Head,
    /// Freed blocks go last.
    Tail,
}

/// `--coalesce` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoalesceArg {
    /// No merging.
    None,
    /// malloc.py's pass over list neighbours.
    List,
    /// Boundary tags: neighbours in memory.
    Address,
}

fn size_arg(text: &Option<String>, name: &str) -> anyhow::Result<Option<u64>> {
    text.as_deref()
        .map(|t| parse_size(t).with_context(|| format!("--{name}")))
        .transpose()
}

/// Refuses options that do not apply to the chosen allocator.
fn only_for(args: &AllocArgs, allowed: &[&str]) -> anyhow::Result<()> {
    let given = [
        ("fit", args.fit.is_some()),
        ("order", args.order.is_some()),
        ("coalesce", args.coalesce.is_some()),
        ("header", args.header.is_some()),
        ("align", args.align.is_some()),
        ("base", args.base.is_some()),
        ("max-order", args.max_order.is_some()),
        ("page-size", args.page_size.is_some()),
    ];
    for (name, set) in given {
        if set && !allowed.contains(&name) {
            bail!(
                "--{name} does not apply to the {} allocator",
                args.allocator
                    .to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The most pages a buddy or slab lab steps through (64 GiB of 4 KiB
/// pages): the allocator keeps a byte per page, and a lab needs far fewer.
const MAX_LAB_PAGES: u64 = 1 << 24;

fn check_pages(pages: u64) -> anyhow::Result<()> {
    if pages > MAX_LAB_PAGES {
        bail!("--heap {pages}: the buddy and slab labs take at most {MAX_LAB_PAGES} pages");
    }
    Ok(())
}

/// Runs `vmsim alloc`.
pub fn run(args: &AllocArgs, w: &mut impl Write) -> anyhow::Result<()> {
    crate::html::check(args.html.as_deref())?;
    let (text, source) = match (&args.ops, &args.ops_file) {
        (Some(o), None) => (o.clone(), "--ops".to_owned()),
        (None, Some(f)) => (
            vmsim_trace::limits::read_text_limited(
                f,
                vmsim_trace::limits::MAX_LIST_FILE_BYTES,
                "an operation list",
            )
            .with_context(|| format!("--ops-file: cannot read {}", f.display()))?,
            f.display().to_string(),
        ),
        _ => bail!("--ops or --ops-file: give one of them (e.g. --ops a100,a200,f0)"),
    };
    let ops = parse_ops(&text, &source)?;
    let Some(heap) = size_arg(&args.heap, "heap")? else {
        bail!("--heap: required (bytes for the free list, pages for buddy and slab)");
    };
    let base = args
        .base
        .as_deref()
        .map(|b| parse_u64(b).context("--base"))
        .transpose()?
        .unwrap_or(0);
    let mut html = args
        .html
        .as_ref()
        .map(|_| crate::html::alloc::Collector::new(args.trace_steps));
    // Without --html, --quiet builds no steps at all.
    let no_page = html.is_none();
    let mut out = Stream::new(w, args.json, args.quiet);
    match args.allocator {
        AllocatorArg::FreeList => {
            only_for(
                args,
                &["fit", "order", "coalesce", "header", "align", "base"],
            )?;
            let cfg = FreeSpaceConfig {
                base,
                size: heap,
                placement: match args.fit.unwrap_or(FitArg::First) {
                    FitArg::First => Placement::FirstFit,
                    FitArg::Next => Placement::NextFit,
                    FitArg::Best => Placement::BestFit,
                    FitArg::Worst => Placement::WorstFit,
                    FitArg::SizeAligned => Placement::SizeAligned,
                },
                order: match args.order.unwrap_or(OrderArg::Address) {
                    OrderArg::Address => ListOrder::Address,
                    OrderArg::SizeAsc => ListOrder::SizeAscending,
                    OrderArg::SizeDesc => ListOrder::SizeDescending,
                    OrderArg::Head => ListOrder::Head,
                    OrderArg::Tail => ListOrder::Tail,
                },
                coalesce: match args.coalesce.unwrap_or(CoalesceArg::None) {
                    CoalesceArg::None => Coalesce::Never,
                    CoalesceArg::List => Coalesce::List,
                    CoalesceArg::Address => Coalesce::Address,
                },
                header: size_arg(&args.header, "header")?.unwrap_or(0),
                align: size_arg(&args.align, "align")?.unwrap_or(1),
            };
            // Refuse a bad setup before anything is printed.
            vmsim::alloc::FreeSpace::new(cfg).context("--heap/--base/--align")?;
            out.start("free-list", &cfg, free_list_header(&cfg))?;
            let mut page = html.take();
            let mut each = |st: &FreeListStep| {
                if !args.quiet {
                    out.step(st, || free_list_step_text(st));
                }
                if let Some(p) = &mut page {
                    p.push(st, || free_list_step_text(st));
                }
            };
            let each: Option<&mut dyn FnMut(&FreeListStep)> = if args.quiet && no_page {
                None
            } else {
                Some(&mut each)
            };
            let (_, totals) = lab::free_list_steps(cfg, &ops, each)?;
            out.finish(&totals, free_list_totals_text(&totals))?;
            write_page(
                args,
                page,
                "free-list",
                &cfg,
                &totals,
                &free_list_header(&cfg),
            )?;
        }
        AllocatorArg::Buddy => {
            only_for(args, &["base", "max-order"])?;
            check_pages(heap)?;
            let fits = 63 - heap.max(1).leading_zeros();
            let cfg = BuddyLabConfig {
                first: base,
                pages: heap,
                max_order: args
                    .max_order
                    .unwrap_or(fits.min(vmsim::alloc::MAX_SUPPORTED_ORDER)),
            };
            // A bad region or a request above the largest order stops the
            // run before anything is printed.
            lab::buddy_steps(cfg, &ops, None).context("--heap/--base/--max-order")?;
            out.start("buddy", &cfg, buddy_header(&cfg))?;
            let mut page = html.take();
            let mut each = |st: &BuddyStep| {
                if !args.quiet {
                    out.step(st, || buddy_step_text(st));
                }
                if let Some(p) = &mut page {
                    p.push(st, || buddy_step_text(st));
                }
            };
            let each: Option<&mut dyn FnMut(&BuddyStep)> = if args.quiet && no_page {
                None
            } else {
                Some(&mut each)
            };
            let totals = lab::buddy_steps(cfg, &ops, each)?;
            out.finish(&totals, buddy_totals_text(&totals))?;
            write_page(args, page, "buddy", &cfg, &totals, &buddy_header(&cfg))?;
        }
        AllocatorArg::Slab => {
            only_for(args, &["align", "page-size"])?;
            check_pages(heap)?;
            let cfg = SlabLabConfig {
                pages: heap,
                page_size: size_arg(&args.page_size, "page-size")?.unwrap_or(4096),
                align: size_arg(&args.align, "align")?.unwrap_or(8),
            };
            // Object sizes and alignment are checked as each cache is made;
            // a bad one stops the run with nothing half printed.
            lab::slab_steps(cfg, &ops, None)?;
            out.start("slab", &cfg, slab_header(&cfg))?;
            let mut page = html.take();
            let mut each = |st: &SlabStep| {
                if !args.quiet {
                    out.step(st, || slab_step_text(st));
                }
                if let Some(p) = &mut page {
                    p.push(st, || slab_step_text(st));
                }
            };
            let each: Option<&mut dyn FnMut(&SlabStep)> = if args.quiet && no_page {
                None
            } else {
                Some(&mut each)
            };
            let run = lab::slab_steps(cfg, &ops, each)?;
            let totals = serde_json::json!({
                "allocations": run.allocations,
                "failures": run.failures,
                "buddy_free_pages": run.buddy_free_pages,
                "caches": run.caches,
            });
            out.finish(&totals, slab_totals_text(&run))?;
            write_page(args, page, "slab", &cfg, &totals, &slab_header(&cfg))?;
        }
    }
    Ok(())
}

/// `--html`: the page of a run whose first steps `page` collected.
fn write_page<C: serde::Serialize, T: serde::Serialize>(
    args: &AllocArgs,
    page: Option<crate::html::alloc::Collector>,
    allocator: &str,
    config: &C,
    totals: &T,
    header: &str,
) -> anyhow::Result<()> {
    let (Some(path), Some(page)) = (&args.html, page) else {
        return Ok(());
    };
    let data = page.page_data(
        allocator,
        serde_json::to_value(config)?,
        serde_json::to_value(totals)?,
        header,
    );
    crate::html::write(
        path,
        crate::html::Kind::Alloc,
        &crate::html::alloc::title(allocator),
        data,
    )
}

/// Streams a run as it happens, as text or as one JSON object
/// {"allocator", "config", "steps": [...], "totals"} (no steps with
/// --quiet): a long operation list needs no memory per step. The first
/// write error is kept and returned.
struct Stream<W: Write> {
    w: W,
    json: bool,
    quiet: bool,
    steps: usize,
    err: Option<std::io::Error>,
}

impl<W: Write> Stream<W> {
    fn new(w: W, json: bool, quiet: bool) -> Self {
        Self {
            w,
            json,
            quiet,
            steps: 0,
            err: None,
        }
    }

    fn start<C: serde::Serialize>(
        &mut self,
        allocator: &str,
        config: &C,
        header: String,
    ) -> anyhow::Result<()> {
        if self.json {
            write!(
                self.w,
                "{{\"schema_version\":{},\"allocator\":\"{allocator}\",\"config\":{}",
                crate::output::JSON_SCHEMA_VERSION,
                serde_json::to_string(config)?
            )?;
            if !self.quiet {
                self.w.write_all(b",\"steps\":[")?;
            }
        } else {
            self.w.write_all(header.as_bytes())?;
        }
        Ok(())
    }

    fn step<S: serde::Serialize>(&mut self, step: &S, text: impl FnOnce() -> String) {
        if self.err.is_some() {
            return;
        }
        let r = if self.json {
            let sep = if self.steps == 0 { "" } else { "," };
            self.w
                .write_all(sep.as_bytes())
                .and_then(|()| serde_json::to_writer(&mut self.w, step).map_err(Into::into))
        } else {
            self.w.write_all(text().as_bytes())
        };
        self.steps += 1;
        if let Err(e) = r {
            self.err = Some(e);
        }
    }

    fn finish<T: serde::Serialize>(&mut self, totals: &T, text: String) -> anyhow::Result<()> {
        if let Some(e) = self.err.take() {
            return Err(e.into());
        }
        if self.json {
            let close = if self.quiet { "" } else { "]" };
            writeln!(
                self.w,
                "{close},\"totals\":{}}}",
                serde_json::to_string(totals)?
            )?;
        } else {
            self.w.write_all(text.as_bytes())?;
        }
        Ok(self.w.flush()?)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn blocks(list: &[Block]) -> String {
    if list.is_empty() {
        return "(empty)".into();
    }
    let mut s = String::with_capacity(list.len() * 24);
    for (i, b) in list.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b}");
    }
    s
}

/// The free-list run as text: a header, two lines per step, the totals.
pub fn free_list_text(run: &FreeListRun, quiet: bool) -> String {
    let mut s = free_list_header(&run.config);
    if !quiet {
        for st in &run.steps {
            s.push_str(&free_list_step_text(st));
        }
    }
    s.push_str(&free_list_totals_text(&run.totals));
    s
}

fn free_list_header(c: &FreeSpaceConfig) -> String {
    let coalesce = match c.coalesce {
        Coalesce::Never => "no coalescing",
        Coalesce::List => "coalescing list neighbours",
        Coalesce::Address => "coalescing memory neighbours",
    };
    format!(
        "free list: heap {}..{} ({} bytes), {}, list in {} order, {coalesce}, header {} bytes, alignment {}\n",
        c.base,
        c.base + c.size,
        c.size,
        c.placement.name(),
        c.order.name(),
        c.header,
        c.align,
    )
}

fn free_list_step_text(st: &FreeListStep) -> String {
    let line = match (st.op, st.outcome) {
        (HeapOp::Alloc(n), Outcome::Allocated) => {
            let block = st.block.map(|b| b.to_string()).unwrap_or_default();
            let detail =
                if st.ptr == st.block.map(|b| b.addr) && st.block.map(|b| b.size) == Some(n) {
                    String::new()
                } else {
                    format!(" in block {block}")
                };
            format!(
                "ptr[{}] = alloc({n}) returned {}{detail} (searched {})",
                st.alloc,
                st.ptr.unwrap_or_default(),
                plural(st.searched, "element", "elements")
            )
        }
        (HeapOp::Alloc(n), _) => format!(
            "ptr[{}] = alloc({n}) failed: returned NULL (searched {})",
            st.alloc,
            plural(st.searched, "element", "elements")
        ),
        (HeapOp::Free(i), Outcome::Freed) => {
            let merged = if st.merges > 0 {
                format!(", coalesced ({})", plural(st.merges, "merge", "merges"))
            } else {
                String::new()
            };
            format!(
                "free(ptr[{i}]) freed {}{merged}",
                st.block.map(|b| b.to_string()).unwrap_or_default()
            )
        }
        (HeapOp::Free(i), _) => format!("free(ptr[{i}]): ptr[{i}] is NULL, nothing to do"),
    };
    format!(
        "{:<6} {line}\n       free list ({}, {} bytes): {}\n",
        st.op.to_string(),
        plural(st.free_list.len(), "block", "blocks"),
        st.stats.free_bytes,
        blocks(&st.free_list)
    )
}

fn free_list_totals_text(t: &FreeListTotals) -> String {
    let e = &t.end;
    format!(
        "totals: {} ({} failed), {}, {} searched\nend: {} of {} bytes free in {}, largest {}; external fragmentation {} (1 - largest / free); internal fragmentation {} bytes (headers and padding of {})\n",
        plural(t.allocations, "allocation", "allocations"),
        t.failures,
        plural(t.frees, "free", "frees"),
        plural(t.searched, "element", "elements"),
        e.free_bytes,
        e.heap_bytes,
        plural(e.free_blocks, "block", "blocks"),
        e.largest_free,
        e.external_fragmentation,
        e.internal_fragmentation,
        plural(e.allocations, "live allocation", "live allocations"),
    )
}

fn page_range(first: u64, pages: u64) -> String {
    format!("pages {first}..{}", first + pages)
}

fn free_lists_text(lists: &[Vec<u64>]) -> String {
    let parts: Vec<String> = lists
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(o, l)| {
            let heads: Vec<String> = l.iter().map(u64::to_string).collect();
            format!("order {o} [{}]", heads.join(" "))
        })
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join(", ")
    }
}

/// The buddy run as text.
pub fn buddy_text(run: &BuddyRun, quiet: bool) -> String {
    let mut s = buddy_header(&run.config);
    if !quiet {
        for st in &run.steps {
            s.push_str(&buddy_step_text(st));
        }
    }
    s.push_str(&buddy_totals_text(&run.totals));
    s
}

fn buddy_header(c: &BuddyLabConfig) -> String {
    format!(
        "buddy allocator: {} ({} pages), block orders 0..={} (1 to {} pages)\n",
        page_range(c.first, c.pages),
        c.pages,
        c.max_order,
        1u64 << c.max_order
    )
}

fn buddy_step_text(st: &BuddyStep) -> String {
    let size = 1u64 << st.order;
    let line = match (st.op, st.outcome) {
        (HeapOp::Alloc(n), Outcome::Allocated) => {
            let from = st.split_from.unwrap_or(st.order);
            let how = if from > st.order {
                let chain: Vec<String> = (st.order..=from)
                    .rev()
                    .map(|o| (1u64 << o).to_string())
                    .collect();
                format!("split a free block of order {from}: {}", chain.join(" -> "))
            } else {
                format!("a free block of order {from}, no split")
            };
            format!(
                "alloc[{}] = {n} pages -> order {} ({size} pages): {}; {how}",
                st.alloc,
                st.order,
                page_range(st.block.unwrap_or_default(), size)
            )
        }
        (HeapOp::Alloc(n), _) => format!(
            "alloc[{}] = {n} pages -> order {} ({size} pages): failed, no free block of order {} or above",
            st.alloc, st.order, st.order
        ),
        (HeapOp::Free(i), Outcome::Freed) => {
            let to = st.merged_to.unwrap_or(st.order);
            let how = if to > st.order {
                format!(
                    "coalesced with its buddy {}: a free block of order {to} ({} pages)",
                    if to - st.order == 1 {
                        "once".to_owned()
                    } else {
                        format!("{} times", to - st.order)
                    },
                    1u64 << to
                )
            } else {
                "its buddy is not free: no merge".into()
            };
            format!(
                "free alloc[{i}]: {} (order {}); {how}",
                page_range(st.block.unwrap_or_default(), size),
                st.order
            )
        }
        (HeapOp::Free(i), _) => format!("free alloc[{i}]: it failed, nothing to do"),
    };
    format!(
        "{:<6} {line}\n       free ({} pages): {}\n",
        st.op.to_string(),
        st.free_pages,
        free_lists_text(&st.free_lists)
    )
}

fn buddy_totals_text(t: &BuddyTotals) -> String {
    let mut s = String::new();
    let f = &t.fragmentation;
    let _ = writeln!(
        s,
        "totals: {} ({} failed), {}; live blocks hold {} pages for {} requested (internal fragmentation {} pages)",
        plural(t.allocations, "allocation", "allocations"),
        t.failures,
        plural(t.frees, "free", "frees"),
        t.allocated_pages,
        t.requested_pages,
        t.internal_fragmentation
    );
    let counts: Vec<String> = f.free_blocks.iter().map(u64::to_string).collect();
    let extfrag: Vec<String> = f.extfrag_index.iter().map(ToString::to_string).collect();
    let unusable: Vec<String> = f.unusable_index.iter().map(ToString::to_string).collect();
    let _ = writeln!(s, "buddyinfo (free blocks per order): {}", counts.join(" "));
    let _ = writeln!(s, "extfrag_index per order:          {}", extfrag.join(" "));
    let _ = writeln!(
        s,
        "unusable_index per order:         {}",
        unusable.join(" ")
    );
    s
}

fn slab_header(c: &SlabLabConfig) -> String {
    format!(
        "slab allocator: one cache per object size, slabs from a buddy allocator of {} pages of {} bytes; objects aligned to {}\n",
        c.pages, c.page_size, c.align
    )
}

fn slab_step_text(st: &SlabStep) -> String {
    let cs = &st.cache_stats;
    let line = match (st.op, st.outcome) {
        (HeapOp::Alloc(n), Outcome::Allocated) => format!(
            "obj[{}] = alloc({n}) from {} -> {:#x} in the slab at page {}{}",
            st.alloc,
            st.cache,
            st.addr.unwrap_or_default(),
            st.slab.unwrap_or_default(),
            if st.new_slab {
                format!(
                    " (a new slab: order {}, {}, {} objects of {} bytes)",
                    cs.slab_order,
                    format_size(cs.slab_bytes),
                    cs.objects_per_slab,
                    cs.slot_size
                )
            } else {
                String::new()
            }
        ),
        (HeapOp::Alloc(n), _) => format!(
            "obj[{}] = alloc({n}) from {} failed: no free block of order {} for a new slab",
            st.alloc, st.cache, cs.slab_order
        ),
        (HeapOp::Free(i), Outcome::Freed) => format!(
            "free(obj[{i}]) {:#x} back to {}{}",
            st.addr.unwrap_or_default(),
            st.cache,
            if st.released_slab {
                "; its slab was empty and is given back to the buddy allocator"
            } else {
                ""
            }
        ),
        (HeapOp::Free(i), _) => format!("free(obj[{i}]): it failed, nothing to do"),
    };
    format!(
        "{:<7} {line}\n        {}: {}/{} objects in use, {} ({} partial, {} full, {} empty); buddy {} pages free\n",
        st.op.to_string(),
        st.cache,
        cs.active_objects,
        cs.total_objects,
        plural(cs.slabs as usize, "slab", "slabs"),
        cs.partial_slabs,
        cs.full_slabs,
        cs.empty_slabs,
        st.buddy_free_pages
    )
}

fn slab_totals_text(run: &SlabRun) -> String {
    let c = &run.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "totals: {} ({} failed); buddy {} of {} pages free",
        plural(run.allocations, "allocation", "allocations"),
        run.failures,
        run.buddy_free_pages,
        c.pages
    );
    let _ = writeln!(
        s,
        "{:<12} {:>7} {:>5} {:>8} {:>5} {:>5} {:>13} {:>10} {:>9}",
        "cache",
        "objsize",
        "slot",
        "per slab",
        "order",
        "slabs",
        "active/total",
        "wasted B",
        "tail B"
    );
    for cs in &run.caches {
        let _ = writeln!(
            s,
            "{:<12} {:>7} {:>5} {:>8} {:>5} {:>5} {:>13} {:>10} {:>9}",
            cs.name,
            cs.object_size,
            cs.slot_size,
            cs.objects_per_slab,
            cs.slab_order,
            cs.slabs,
            format!("{}/{}", cs.active_objects, cs.total_objects),
            cs.internal_fragmentation_bytes,
            cs.tail_bytes
        );
    }
    s
}
