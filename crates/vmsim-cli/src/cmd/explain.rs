//! `vmsim explain`: how the hardware splits and translates one address.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use vmsim::addr::{PhysAddr, VirtAddr};
use vmsim::mmu::AccessKind;
use vmsim::paging::{
    Entry, FaultKind, Format, PteFlags, RecordedWalk, Translation, WalkFault, WalkStep,
    record_walk, walk,
};
use vmsim::phys::PhysMem;
use vmsim::segment::{
    BookFault, BookSegment, BookSegments, LinearWidth, LogicalAddress, Ring, SegmentSpec,
    SegmentTable, SelectorMode,
};

use vmsim::units::parse_u64;

/// Show how a virtual address is split into table indices and offset, and
/// (with a memory image) walk the page tables to the physical address or fault.
///
/// Examples:
///   vmsim explain --arch x86-64 0x00007fffffffe123
///   vmsim explain --arch sv39 0x3fffffffff
///   vmsim explain --arch sv39 --mem mem.bin --root 0x80000000 0x40201234
///   vmsim explain --format classroom.toml 0b101010101010101 --json
///   vmsim explain --segment 1:0x2000:0x1ff 0x1:0xff
///   vmsim explain --arch x86-32 --segment 1:0xfffff000:0xffffffff 0x1:0x2000
///   vmsim explain --va-bits 14 --segments code=0:32K:2K,heap=1:34K:3K,stack=3:28K:2K:down 15360
///   vmsim explain --segments 0:0x3000:0x200 0x1ff            (base and bounds)
///   vmsim explain --arch x86-32 --mem mem.img --root 0x1000 0x00401234 --load-size 4
///
/// Segmentation, two ways. --segment is the x86 descriptor table (selector
/// and offset; limits are last valid offsets; on a 32-bit paging format,
/// x86-32 or sv32, base + offset wraps at 2^32). --segments is the textbook
/// model: the top address bits choose the segment, each segment has a base,
/// a size and a growth direction; a segment that grows down (the stack) ends
/// at its base, and an offset o is the negative offset o - maximum segment
/// size, valid when its magnitude is at most the size. One segment is base
/// and bounds. Permissions left out default from the name: code and text
/// r-x, rodata r--, others rw-. Either way the result goes to paging when
/// --mem and --root are given; with --mem and no --root it is a physical
/// address (paging off).
///
/// JSON keys: `format`, `va`, `va_bits`, `indices` (root first), `offset`,
/// `fields` (name, level, hi/lo bit, value), `walk` (null without --mem; else
/// one object per entry read: level, table, index, entry_addr, raw, bits,
/// kind = table|leaf|invalid|reserved, next), `pa` (hex string or null),
/// `page_size` (bytes, or null), `fault` (null, or {kind, level, detail}; level
/// is the manual's number of the table whose entry stopped the walk).
/// With --segment: `selector`, `offset`, `base`, `limit`, `linear` (hex or
/// null), `fault` (null or {kind, detail, ...}), `steps`, `linear_bits`, and
/// `paging` (the object above for the linear address, with --mem and
/// --root; else null). With --segments: `mode` "book", `va`, `va_bits`,
/// `seg_bits`, `segment`, `name`, `offset`, `max_size`, `base`, `size`,
/// `growth`, `perms`, `negative_offset`, `pa`, `fault`, `steps`, `paging`.
/// With --load-size: `load` (in the paging object, or at the top level when
/// paging is off): {size, pa, value (hex), detail} or null.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExplainArgs {
    /// The virtual address: decimal, 0x hex, 0b binary or 0o octal.
    pub address: String,

    /// Paging format: x86-32, x86-64, x86-64-5level, sv32, sv39, sv48, sv57.
    #[arg(long, default_value = "x86-64", conflicts_with = "format")]
    pub arch: String,

    /// A user-defined paging format (TOML; see `Format::from_toml` docs in the README).
    #[arg(long, value_name = "FILE")]
    pub format: Option<PathBuf>,

    /// A raw physical-memory image (byte i = physical address i) to walk
    /// (with --root) or to load from.
    #[arg(long, value_name = "IMAGE")]
    pub mem: Option<PathBuf>,

    /// Physical address of the root table (CR3 / satp.PPN << 12) in the image.
    #[arg(long, value_name = "PA", requires = "mem")]
    pub root: Option<String>,

    /// A segment descriptor SEL:BASE:LIMIT[:PERMS] (repeatable). The address
    /// is then a logical address SEL:OFFSET, translated to a linear address
    /// (and, with --mem, walked through paging). PERMS: letters r w x (default
    /// rw), g = 4 KiB granularity, e = expand-down, n = not present, 0-3 = DPL.
    #[arg(long, value_name = "SEL:BASE:LIMIT[:PERMS]")]
    pub segment: Vec<String>,

    /// Textbook segments [NAME=]NUM:BASE:SIZE[:up|down][:PERMS], comma
    /// separated or repeated; the address is then a plain virtual address
    /// whose top bits choose the segment (see above). Sizes are sizes.
    #[arg(
        long,
        value_name = "SEG,...",
        value_delimiter = ',',
        conflicts_with = "segment"
    )]
    pub segments: Vec<String>,

    /// With --segments: bits of a virtual address (needed for more than one
    /// segment or a segment that grows down).
    #[arg(long, value_name = "N", requires = "segments")]
    pub va_bits: Option<u32>,

    /// With --segments: how many top bits select the segment (default: as
    /// many as the highest segment number needs; 0 for base and bounds).
    #[arg(long, value_name = "N", requires = "segments")]
    pub seg_bits: Option<u32>,

    /// The access to check against the segment permissions (with --segment
    /// or --segments): read, write or execute.
    #[arg(long, default_value = "read", value_parser = ["read", "write", "execute"])]
    pub access: String,

    /// With --mem: load this many bytes (1, 2, 4 or 8, little-endian) at
    /// the translated address and show the value (a load that crosses into
    /// the next page translates that page too).
    #[arg(long, value_name = "N", requires = "mem", value_parser = ["1", "2", "4", "8"])]
    pub load_size: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Also write an interactive page (one self-contained HTML file): the
    /// address as coloured bit fields, each table read with its entry's bits
    /// decoded, the TLB lookup and the result or fault, step by step.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Field {
    name: String,
    level: Option<u32>,
    hi: u32,
    lo: u32,
    value: u64,
}

#[derive(Debug, Serialize)]
struct StepJson {
    level: u32,
    table_name: String,
    table: String,
    index: u64,
    entry_addr: String,
    raw: String,
    bits: Vec<&'static str>,
    kind: &'static str,
    next: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FaultJson {
    pub(crate) kind: &'static str,
    level: Option<u32>,
    pub(crate) detail: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Explanation {
    format: String,
    va: String,
    va_bits: u32,
    indices: Vec<u64>,
    offset: u64,
    fields: Vec<Field>,
    walk: Option<Vec<StepJson>>,
    pub(crate) pa: Option<String>,
    page_size: Option<u64>,
    flags: Option<Vec<&'static str>>,
    pub(crate) fault: Option<FaultJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) load: Option<LoadJson>,
}

/// The value a load of `size` bytes finds at the translated address.
#[derive(Debug, Serialize)]
pub(crate) struct LoadJson {
    size: u32,
    pa: String,
    /// The little-endian value, or null when the load cannot complete.
    pub(crate) value: Option<String>,
    detail: String,
}

fn hex(width_bits: u32, v: u64) -> String {
    let digits = width_bits.div_ceil(4).max(1) as usize;
    format!("{v:#0w$x}", w = digits + 2)
}

fn flag_names(flags: PteFlags) -> Vec<&'static str> {
    flags.iter_names().map(|(n, _)| n).collect()
}

fn load_format(args: &ExplainArgs) -> anyhow::Result<Format> {
    match &args.format {
        Some(path) => Ok(Format::from_toml_file(path)?),
        None => Ok(Format::by_name(&args.arch)?),
    }
}

/// Runs `vmsim explain`.
pub fn run(args: &ExplainArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    crate::html::check(args.html.as_deref())?;
    if !args.segments.is_empty() {
        return run_book(args, out);
    }
    if !args.segment.is_empty() {
        return run_segmented(args, out);
    }
    if args.mem.is_some() && args.root.is_none() {
        bail!(
            "--mem: give --root too (the physical address of the root table): without segmentation the address is virtual and must be walked"
        );
    }
    let fmt = load_format(args)?;
    let raw = parse_u64(&args.address).context("the address")?;
    let mem = load_mem(args)?;
    let e = explain_paging(args, &fmt, VirtAddr::new(raw), mem.as_ref())?;
    write_html(
        args,
        "paging",
        &fmt,
        mem.as_ref(),
        serde_json::to_value(&e)?,
    )?;
    if args.json {
        writeln!(out, "{}", crate::output::json_pretty(&e)?)?;
    } else {
        print_text(out, &fmt, &e)?;
    }
    Ok(())
}

fn access_kind(args: &ExplainArgs) -> AccessKind {
    match args.access.as_str() {
        "write" => AccessKind::Write,
        "execute" => AccessKind::Execute,
        _ => AccessKind::Read,
    }
}

/// The bytes --load-size asks for.
fn load_size(args: &ExplainArgs) -> Option<u32> {
    args.load_size.as_deref().and_then(|s| s.parse().ok())
}

fn load_mem(args: &ExplainArgs) -> anyhow::Result<Option<PhysMem>> {
    match &args.mem {
        Some(image) => Ok(Some(PhysMem::load_image(image)?)),
        None => Ok(None),
    }
}

/// What comes after segmentation: paging (with --mem and --root), a load
/// from physical memory (with --mem alone), or nothing.
enum After {
    Paging(Box<Explanation>, Format),
    Physical(LoadJson),
    Nothing,
}

fn after_segmentation(
    args: &ExplainArgs,
    mem: Option<&PhysMem>,
    address: Option<u64>,
) -> anyhow::Result<After> {
    let (Some(addr), Some(mem)) = (address, mem) else {
        return Ok(After::Nothing);
    };
    if args.root.is_some() {
        let fmt = load_format(args)?;
        let p = explain_paging(args, &fmt, VirtAddr::new(addr), Some(mem))?;
        return Ok(After::Paging(Box::new(p), fmt));
    }
    Ok(match load_size(args) {
        Some(size) => After::Physical(load_physical(mem, addr, size)),
        None => After::Nothing,
    })
}

/// Adds `paging` (and `load` when paging is off) to a segmentation JSON object.
fn with_after<T: Serialize>(seg: &T, after: &After) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(seg)?;
    if let serde_json::Value::Object(m) = &mut v {
        let paging = match after {
            After::Paging(p, _) => serde_json::to_value(p)?,
            _ => serde_json::Value::Null,
        };
        m.insert("paging".into(), paging);
        if let After::Physical(l) = after {
            m.insert("load".into(), serde_json::to_value(l)?);
        }
    }
    Ok(v)
}

fn print_after(out: &mut impl std::io::Write, after: &After) -> std::io::Result<()> {
    match after {
        After::Paging(p, fmt) => {
            writeln!(out)?;
            print_text(out, fmt, p)?;
        }
        After::Physical(l) => writeln!(out, "{}", load_line(l))?,
        After::Nothing => {}
    }
    Ok(())
}

/// selector:offset -> linear address (-> paging, with --mem and --root).
fn run_segmented(args: &ExplainArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let specs = args
        .segment
        .iter()
        .map(|s| {
            s.parse::<SegmentSpec>()
                .with_context(|| format!("--segment {s}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A 32-bit machine forms 32-bit linear addresses: bases and offsets
    // have 32 bits and base + offset wraps at 2^32.
    let width = LinearWidth::for_va_bits(load_format(args)?.va_bits());
    if width == LinearWidth::Bits32 {
        for (spec, text) in specs.iter().zip(&args.segment) {
            if spec.descriptor.base() > u64::from(u32::MAX) {
                bail!(
                    "--segment {text}: base {:#x} does not fit the 32-bit linear addresses of {}",
                    spec.descriptor.base(),
                    args.arch
                );
            }
        }
    }
    let table = SegmentTable::from_specs(SelectorMode::Course, &specs)?.with_width(width);
    let addr: LogicalAddress = args.address.parse().with_context(|| {
        format!(
            "the address '{}' (with --segment, expected SEL:OFFSET)",
            args.address
        )
    })?;
    if width == LinearWidth::Bits32 && addr.offset > u64::from(u32::MAX) {
        bail!(
            "the address '{}': offset {:#x} does not fit the 32-bit offsets of {}",
            args.address,
            addr.offset,
            args.arch
        );
    }
    let size = load_size(args).map_or(1, u64::from);
    let seg = table.explain(addr, size, access_kind(args), Ring::USER);
    let mem = load_mem(args)?;
    let after = after_segmentation(args, mem.as_ref(), seg.linear)?;
    html_after(
        args,
        "segment",
        mem.as_ref(),
        with_after(&seg, &after)?,
        &after,
    )?;
    if args.json {
        writeln!(
            out,
            "{}",
            crate::output::json_pretty(&with_after(&seg, &after)?)?
        )?;
    } else {
        write!(out, "{seg}")?;
        print_after(out, &after)?;
    }
    Ok(())
}

/// Textbook segments: virtual address -> physical (-> paging, with --root).
fn run_book(args: &ExplainArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let segs = args
        .segments
        .iter()
        .map(|s| {
            s.parse::<BookSegment>()
                .with_context(|| format!("--segments {s}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let table = BookSegments::new(segs, args.va_bits, args.seg_bits).context("--segments")?;
    let va = parse_u64(&args.address).with_context(|| {
        format!(
            "the address '{}' (with --segments, a virtual address)",
            args.address
        )
    })?;
    let access = access_kind(args);
    let mut book = table.explain(va, access);
    // A load of several bytes must fit the segment with its last byte too.
    if let (Ok(pa), Some(size)) = (book.outcome, load_size(args))
        && size > 1
    {
        let last = va.checked_add(u64::from(size) - 1);
        let ok = last.is_some_and(|l| table.translate(l, access) == Ok(pa + u64::from(size) - 1));
        if !ok {
            let fault = match last.map(|l| table.translate(l, access)) {
                Some(Err(f)) => f,
                _ => BookFault::Bounds {
                    segment: book.segment.unwrap_or(0),
                    offset: book.offset.unwrap_or(0),
                    size: book.size.unwrap_or(0),
                },
            };
            book.steps.push(format!(
                "=> the {size}-byte load's last byte faults: {fault}"
            ));
            book.outcome = Err(fault);
            book.pa = None;
        }
    }
    let mem = load_mem(args)?;
    let after = after_segmentation(args, mem.as_ref(), book.pa)?;
    html_after(
        args,
        "book",
        mem.as_ref(),
        with_after(&book, &after)?,
        &after,
    )?;
    if args.json {
        writeln!(
            out,
            "{}",
            crate::output::json_pretty(&with_after(&book, &after)?)?
        )?;
    } else {
        if let Some(vb) = table.va_bits() {
            writeln!(
                out,
                "textbook segmentation: {vb}-bit virtual addresses, {} selector bits, maximum segment size {:#x} ({})",
                table.seg_bits(),
                table.max_size(),
                table.max_size()
            )?;
        }
        write!(out, "{book}")?;
        print_after(out, &after)?;
    }
    Ok(())
}

/// `--html`: the page of an explanation (`mode` paging, segment or book).
fn write_html(
    args: &ExplainArgs,
    mode: &str,
    fmt: &Format,
    mem: Option<&PhysMem>,
    report: serde_json::Value,
) -> anyhow::Result<()> {
    let Some(path) = &args.html else {
        return Ok(());
    };
    let data = crate::html::explain::page_data(mode, fmt, mem, report);
    crate::html::write(
        path,
        crate::html::Kind::Explain,
        &crate::html::explain::title(mode, &args.address),
        data,
    )
}

/// `--html` after segmentation: the paging part is drawn with its format.
fn html_after(
    args: &ExplainArgs,
    mode: &str,
    mem: Option<&PhysMem>,
    report: serde_json::Value,
    after: &After,
) -> anyhow::Result<()> {
    if args.html.is_none() {
        return Ok(());
    }
    let fmt = match after {
        After::Paging(_, fmt) => fmt.clone(),
        _ => load_format(args)?,
    };
    write_html(args, mode, &fmt, mem, report)
}

fn explain_paging(
    args: &ExplainArgs,
    fmt: &Format,
    va: VirtAddr,
    mem: Option<&PhysMem>,
) -> anyhow::Result<Explanation> {
    let walk_in = match (mem, &args.root, &args.mem) {
        (Some(mem), Some(root), Some(image)) => {
            let root_raw = parse_u64(root).context("--root")?;
            let root = PhysAddr::new(root_raw).map_err(|e| anyhow::anyhow!("--root: {e}"))?;
            if root_raw
                .checked_add(fmt.table_bytes(0))
                .is_none_or(|end| end > mem.size())
            {
                bail!(
                    "--root {root_raw:#x}: the root table ({} bytes) does not fit in {} ({} bytes)",
                    fmt.table_bytes(0),
                    image.display(),
                    mem.size()
                );
            }
            if !root.is_aligned(fmt.page_size()) {
                bail!(
                    "--root {root_raw:#x} is not aligned to the {} page size",
                    fmt.page_size()
                );
            }
            Some((mem, root))
        }
        _ => None,
    };
    Ok(paging_explanation(fmt, va, walk_in, load_size(args)))
}

/// How `va` is split in `fmt` and, with a memory and a root table, walked
/// to its physical address or fault, with the value of a `load_size`-byte
/// load: the one implementation behind `vmsim explain` and the answers of
/// `vmsim exercise`.
pub(crate) fn paging_explanation(
    fmt: &Format,
    va: VirtAddr,
    walk_in: Option<(&PhysMem, PhysAddr)>,
    load_size: Option<u32>,
) -> Explanation {
    let mut out = split(fmt, va);
    if let Err(f) = fmt.check_address(va) {
        let f = WalkFault::from(f);
        out.fault = Some(fault_json(fmt, va, &f));
    } else if let Some((mem, root)) = walk_in {
        let walk = record_walk(fmt, mem, root, va);
        fill_walk(fmt, va, &walk, &mut out);
        if let (Ok(t), Some(size)) = (&walk.result, load_size) {
            out.load = Some(load_paged(fmt, mem, root, va, t, size));
        }
    }
    out
}

/// Reads `size` bytes at physical `pa`, contiguous (paging off).
fn load_physical(mem: &PhysMem, pa: u64, size: u32) -> LoadJson {
    let mut bytes = [0u8; 8];
    let n = size as usize;
    let read = PhysAddr::new(pa).ok().map(|a| mem.read(a, &mut bytes[..n]));
    match read {
        Some(Ok(())) => loaded(size, pa, &bytes, String::new()),
        _ => outside(size, pa, mem),
    }
}

fn loaded(size: u32, pa: u64, bytes: &[u8; 8], note: String) -> LoadJson {
    let value = u64::from_le_bytes(*bytes);
    let digits = 2 * size as usize;
    LoadJson {
        size,
        pa: format!("{pa:#x}"),
        value: Some(format!("{value:#0w$x}", w = digits + 2)),
        detail: format!(
            "load {size} byte{} at {pa:#x} = {value:#0w$x} ({value}){note}",
            if size == 1 { "" } else { "s" },
            w = digits + 2
        ),
    }
}

fn outside(size: u32, pa: u64, mem: &PhysMem) -> LoadJson {
    LoadJson {
        size,
        pa: format!("{pa:#x}"),
        value: None,
        detail: format!(
            "load {size} byte{} at {pa:#x}: outside the memory image ({} bytes), nothing to show",
            if size == 1 { "" } else { "s" },
            mem.size()
        ),
    }
}

/// Reads `size` bytes at virtual `va`, whose page `first` translated; a
/// byte on the next page is translated by its own walk, as the hardware
/// does for a load that crosses a page boundary.
fn load_paged(
    fmt: &Format,
    mem: &PhysMem,
    root: PhysAddr,
    va: VirtAddr,
    first: &Translation,
    size: u32,
) -> LoadJson {
    let mut bytes = [0u8; 8];
    let page_mask = first.size.bytes() - 1;
    let base_page = va.as_u64() & !page_mask;
    let pa0 = first.pa.as_u64();
    let mut note = String::new();
    for i in 0..u64::from(size) {
        let v = va.as_u64().wrapping_add(i);
        let pa = if v & !page_mask == base_page {
            pa0 + i
        } else {
            match walk(fmt, mem, root, VirtAddr::new(v), |_| {}) {
                Ok(t) => {
                    if note.is_empty() {
                        note = format!(
                            "; bytes from {v:#x} on are on the next page, at {:#x}",
                            t.pa.as_u64()
                        );
                    }
                    t.pa.as_u64()
                }
                Err(f) => {
                    return LoadJson {
                        size,
                        pa: format!("{pa0:#x}"),
                        value: None,
                        detail: format!(
                            "load {size} bytes at {:#x}: the load crosses into the page of {v:#x}, whose walk faults ({})",
                            va.as_u64(),
                            f.kind.name()
                        ),
                    };
                }
            }
        };
        let ok = PhysAddr::new(pa)
            .ok()
            .is_some_and(|a| mem.read(a, &mut bytes[i as usize..=i as usize]).is_ok());
        if !ok {
            return outside(size, pa, mem);
        }
    }
    loaded(size, pa0, &bytes, note)
}

fn load_line(l: &LoadJson) -> String {
    l.detail.clone()
}

fn split(fmt: &Format, va: VirtAddr) -> Explanation {
    let mut fields = Vec::new();
    for (idx, level) in fmt.levels().iter().enumerate() {
        fields.push(Field {
            name: fmt.index_name(idx),
            level: Some(level.number),
            hi: level.shift + level.bits - 1,
            lo: level.shift,
            value: level.index(va),
        });
    }
    let off_bits = fmt.page_size().shift();
    let offset = va.page_offset(fmt.page_size());
    if off_bits > 0 {
        fields.push(Field {
            name: "offset".into(),
            level: None,
            hi: off_bits - 1,
            lo: 0,
            value: offset,
        });
    }
    Explanation {
        format: fmt.name().to_string(),
        va: hex(
            fmt.va_bits()
                .max(if va.as_u64() >> fmt.va_bits().min(63) != 0 {
                    64
                } else {
                    0
                }),
            va.as_u64(),
        ),
        va_bits: fmt.va_bits(),
        indices: fmt.levels().iter().map(|l| l.index(va)).collect(),
        offset,
        fields,
        walk: None,
        pa: None,
        page_size: None,
        flags: None,
        fault: None,
        load: None,
    }
}

fn fault_json(fmt: &Format, va: VirtAddr, f: &WalkFault) -> FaultJson {
    let detail = match f.kind {
        FaultKind::NonCanonical => format!(
            "{va} is not canonical for {}: bits 63-{} must all equal bit {}",
            fmt.name(),
            fmt.va_bits(),
            fmt.va_bits() - 1
        ),
        FaultKind::TooWide => format!(
            "{va} is wider than the {} virtual-address bits of {}",
            fmt.va_bits(),
            fmt.name()
        ),
        _ => format!(
            "{} in the entry of the {} table",
            f.kind,
            f.idx.map(|i| level_label(fmt, i)).unwrap_or_default()
        ),
    };
    FaultJson {
        kind: f.kind.name(),
        level: f.level,
        detail,
    }
}

/// `level 2` on RISC-V, `level 4 (PML4)` on x86: the manual's number and name.
fn level_label(fmt: &Format, idx: usize) -> String {
    let n = fmt.levels()[idx].number;
    let name = fmt.table_name(idx);
    if name.starts_with("level") {
        name
    } else {
        format!("level {n} ({name})")
    }
}

fn step_json(fmt: &Format, s: &WalkStep) -> StepJson {
    let pa_bits = fmt.pa_bits();
    let (kind, next) = match s.entry {
        Entry::Invalid => ("invalid", None),
        Entry::Reserved(_) => ("reserved", None),
        Entry::Table { addr, .. } => ("table", Some(hex(pa_bits, addr.as_u64()))),
        Entry::Leaf { addr, .. } => ("leaf", Some(hex(pa_bits, addr.as_u64()))),
    };
    StepJson {
        level: s.level,
        table_name: level_label(fmt, s.idx),
        table: hex(pa_bits, s.table.as_u64()),
        index: s.index,
        entry_addr: hex(pa_bits, s.entry_addr.as_u64()),
        raw: hex(fmt.entry_bytes() * 8, s.raw),
        bits: fmt.bit_names(s.idx, s.raw),
        kind,
        next,
    }
}

fn fill_walk(fmt: &Format, va: VirtAddr, walk: &RecordedWalk, out: &mut Explanation) {
    out.walk = Some(walk.steps.iter().map(|s| step_json(fmt, s)).collect());
    match &walk.result {
        Ok(t) => {
            out.pa = Some(hex(fmt.pa_bits(), t.pa.as_u64()));
            out.page_size = Some(t.size.bytes());
            out.flags = Some(flag_names(t.flags));
        }
        Err(f) => out.fault = Some(fault_json(fmt, va, f)),
    }
}

fn print_text(out: &mut impl std::io::Write, fmt: &Format, e: &Explanation) -> std::io::Result<()> {
    write!(out, "{}", paging_text(fmt, e))
}

/// The human rendering of a paging explanation.
pub(crate) fn paging_text(fmt: &Format, e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}-bit virtual addresses, {} pages, {} level{}, {}-byte entries, {}-bit physical addresses",
        fmt.name(),
        fmt.va_bits(),
        fmt.page_size(),
        fmt.levels().len(),
        if fmt.levels().len() == 1 { "" } else { "s" },
        fmt.entry_bytes(),
        fmt.pa_bits()
    );
    let _ = writeln!(out, "address {}", e.va);
    for f in &e.fields {
        let bits = if f.hi == f.lo {
            format!("bit {}", f.hi)
        } else {
            format!("bits {}-{}", f.hi, f.lo)
        };
        let level = match f.level {
            Some(l)
                if !f.name.contains(&format!("[{l}]"))
                    && !f.name.contains(&format!("level {l}")) =>
            {
                format!(" (level {l})")
            }
            _ => String::new(),
        };
        let value = if f.level.is_some() {
            format!("{}", f.value)
        } else {
            format!("{:#x} ({})", f.value, f.value)
        };
        let _ = writeln!(
            out,
            "  {bits:<12} {:<24} {value}",
            format!("{}{level}", f.name)
        );
    }
    if let Some(steps) = &e.walk {
        let _ = writeln!(out, "walk:");
        for s in steps {
            let what = match (s.kind, &s.next) {
                ("table", Some(n)) => format!("-> next table at {n}"),
                ("leaf", Some(n)) => format!("-> page frame at {n}"),
                ("invalid", _) => "-> not present".to_string(),
                _ => "-> reserved bits set".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<16} table {} [{:>3}] entry @{} = {}  [{}] {what}",
                s.table_name,
                s.table,
                s.index,
                s.entry_addr,
                s.raw,
                s.bits.join(" ")
            );
        }
    }
    if let Some(pa) = &e.pa {
        let size = e
            .page_size
            .map(vmsim::addr::format_size)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "physical address {pa} ({size} page; {})",
            e.flags.as_ref().map(|f| f.join(" ")).unwrap_or_default()
        );
    }
    if let Some(f) = &e.fault {
        let _ = writeln!(out, "fault: {} ({})", f.kind, f.detail);
    }
    if let Some(l) = &e.load {
        let _ = writeln!(out, "{}", load_line(l));
    }
    out
}
