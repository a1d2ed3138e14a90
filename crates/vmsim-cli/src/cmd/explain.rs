//! `vmsim explain`: how the hardware splits and translates one address.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use vmsim::addr::{PhysAddr, VirtAddr};
use vmsim::mmu::AccessKind;
use vmsim::paging::{
    Entry, FaultKind, Format, PteFlags, RecordedWalk, WalkFault, WalkStep, record_walk,
};
use vmsim::phys::PhysMem;
use vmsim::segment::{LogicalAddress, Ring, SegmentSpec, SegmentTable, SelectorMode};

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
///
/// JSON keys: `format`, `va`, `va_bits`, `indices` (root first), `offset`,
/// `fields` (name, level, hi/lo bit, value), `walk` (null without --mem; else
/// one object per entry read: level, table, index, entry_addr, raw, bits,
/// kind = table|leaf|invalid|reserved, next), `pa` (hex string or null),
/// `page_size` (bytes, or null), `fault` (null, or {kind, level, detail}; level
/// is the manual's number of the table whose entry stopped the walk).
/// With --segment: `selector`, `offset`, `base`, `limit`, `linear` (hex or
/// null), `fault` (null or {kind, detail, ...}), `steps`, and `paging` (the
/// object above for the linear address, with --mem; else null).
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

    /// A raw physical-memory image (byte i = physical address i) to walk.
    #[arg(long, value_name = "IMAGE", requires = "root")]
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

    /// The access to check against the segment permissions (with --segment): read, write or execute.
    #[arg(long, default_value = "read", value_parser = ["read", "write", "execute"])]
    pub access: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
struct FaultJson {
    kind: &'static str,
    level: Option<u32>,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Explanation {
    format: String,
    va: String,
    va_bits: u32,
    indices: Vec<u64>,
    offset: u64,
    fields: Vec<Field>,
    walk: Option<Vec<StepJson>>,
    pa: Option<String>,
    page_size: Option<u64>,
    flags: Option<Vec<&'static str>>,
    fault: Option<FaultJson>,
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
pub fn run(args: &ExplainArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if !args.segment.is_empty() {
        return run_segmented(args, out);
    }
    let fmt = load_format(args)?;
    let raw = parse_u64(&args.address).context("the address")?;
    let e = explain_paging(args, &fmt, VirtAddr::new(raw))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
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

/// selector:offset -> linear address (-> paging, with --mem).
fn run_segmented(args: &ExplainArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let specs = args
        .segment
        .iter()
        .map(|s| {
            s.parse::<SegmentSpec>()
                .with_context(|| format!("--segment {s}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let table = SegmentTable::from_specs(SelectorMode::Course, &specs)?;
    let addr: LogicalAddress = args.address.parse().with_context(|| {
        format!(
            "the address '{}' (with --segment, expected SEL:OFFSET)",
            args.address
        )
    })?;
    let seg = table.explain(addr, 1, access_kind(args), Ring::USER);
    let paging = match (seg.linear, &args.mem) {
        (Some(linear), Some(_)) => {
            let fmt = load_format(args)?;
            Some((explain_paging(args, &fmt, VirtAddr::new(linear))?, fmt))
        }
        _ => None,
    };
    if args.json {
        let mut v = serde_json::to_value(&seg)?;
        if let serde_json::Value::Object(m) = &mut v {
            m.insert(
                "paging".into(),
                serde_json::to_value(paging.as_ref().map(|(p, _)| p))?,
            );
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        write!(out, "{seg}")?;
        if let Some((p, fmt)) = &paging {
            writeln!(out)?;
            print_text(out, fmt, p)?;
        }
    }
    Ok(())
}

fn explain_paging(args: &ExplainArgs, fmt: &Format, va: VirtAddr) -> anyhow::Result<Explanation> {
    let fmt = fmt.clone();
    let mut out = split(&fmt, va);
    if let Err(f) = fmt.check_address(va) {
        let f = WalkFault::from(f);
        out.fault = Some(fault_json(&fmt, va, &f));
    } else if let (Some(image), Some(root)) = (&args.mem, &args.root) {
        let mem: PhysMem = PhysMem::load_image(image)?;
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
        let walk = record_walk(&fmt, &mem, root, va);
        fill_walk(&fmt, va, &walk, &mut out);
    }
    Ok(out)
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

fn print_text(out: &mut impl Write, fmt: &Format, e: &Explanation) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {}-bit virtual addresses, {} pages, {} levels, {}-byte entries, {}-bit physical addresses",
        fmt.name(),
        fmt.va_bits(),
        fmt.page_size(),
        fmt.levels().len(),
        fmt.entry_bytes(),
        fmt.pa_bits()
    )?;
    writeln!(out, "address {}", e.va)?;
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
        writeln!(
            out,
            "  {bits:<12} {:<24} {value}",
            format!("{}{level}", f.name)
        )?;
    }
    if let Some(steps) = &e.walk {
        writeln!(out, "walk:")?;
        for s in steps {
            let what = match (s.kind, &s.next) {
                ("table", Some(n)) => format!("-> next table at {n}"),
                ("leaf", Some(n)) => format!("-> page frame at {n}"),
                ("invalid", _) => "-> not present".to_string(),
                _ => "-> reserved bits set".to_string(),
            };
            writeln!(
                out,
                "  {:<16} table {} [{:>3}] entry @{} = {}  [{}] {what}",
                s.table_name,
                s.table,
                s.index,
                s.entry_addr,
                s.raw,
                s.bits.join(" ")
            )?;
        }
    }
    if let Some(pa) = &e.pa {
        let size = e
            .page_size
            .map(vmsim::addr::format_size)
            .unwrap_or_default();
        writeln!(
            out,
            "physical address {pa} ({size} page; {})",
            e.flags.as_ref().map(|f| f.join(" ")).unwrap_or_default()
        )?;
    }
    if let Some(f) = &e.fault {
        writeln!(out, "fault: {} ({})", f.kind, f.detail)?;
    }
    Ok(())
}
