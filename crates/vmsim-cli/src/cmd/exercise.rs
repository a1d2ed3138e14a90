//! `vmsim exercise`: reproducible random exercises and, with `--answers`,
//! their worked solutions. The data comes from `vmsim::exercise` (seeded,
//! integer-only: the same seed gives the same exercise everywhere); the
//! answers come from the very functions `vmsim explain`, `vmsim policy` and
//! `vmsim alloc` use, and are printed the way those commands print them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use vmsim::alloc::lab::{self as alloc_lab, BuddyLabConfig};
use vmsim::alloc::ops::format_ops;
use vmsim::alloc::{Coalesce, FreeSpaceConfig, ListOrder, Placement};
use vmsim::exercise::heap::HeapTarget;
use vmsim::exercise::paging::{self, CLASSROOM_15, PagingSpec, hexdump};
use vmsim::exercise::segments::{self, SegmentExerciseSpec, SegmentModel};
use vmsim::exercise::{HeapExerciseSpec, RefsSpec, Rng, heap_ops, reference_string};
use vmsim::paging::{Encoding, Format};
use vmsim::reclaim::lab::{self as policy_lab, DenseTrace, Detail, Step};
use vmsim::reclaim::{PolicyConfig, PolicyKind, Ties};
use vmsim::segment::Access;
use vmsim::units::{parse_size, parse_u64};

use super::alloc::{CoalesceArg, FitArg, OrderArg, buddy_text, free_list_text};
use super::explain::{paging_explanation, paging_text};
use super::policy::{PageName, summary_line, write_step};

/// Make a reproducible random exercise, and with --answers its worked
/// solution, computed by the same code as `vmsim explain`, `vmsim policy`
/// and `vmsim alloc`.
///
/// Kinds:
///   translate    a one-level page table shown as a memory dump (a random
///                classroom format, or --arch/--format), addresses to translate
///   multilevel   OSTEP's two-level classroom machine (15-bit addresses,
///                32-byte pages, 1-byte entries; or --arch/--format): the whole
///                memory as a dump, addresses to translate and the byte to load
///   segment      code, heap and stack segment registers (or base and bounds)
///                and virtual addresses to translate
///   policy       a reference string to run by hand under some policies
///   alloc        allocations and frees for a free list (or the buddy system)
///
/// The same seed gives the same exercise on every platform (the workspace's
/// seeded xoshiro256** generator and integer arithmetic only). --save DIR
/// writes the exercise's files (memory image and format, segments,
/// reference string, operations) so that the answers can be checked with
/// the other commands; the exercise prints the command lines.
///
/// Examples:
///   vmsim exercise translate --seed 1
///   vmsim exercise multilevel --seed 7 --answers
///   vmsim exercise multilevel --seed 7 --arch x86-32 --count 3 --save ex7
///   vmsim exercise segment --seed 3 --accesses --answers
///   vmsim exercise policy --seed 5 --policy fifo,lru,opt --frames 3 --answers
///   vmsim exercise alloc --seed 2 --fit best --order size-asc --coalesce --answers --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExerciseArgs {
    /// Which kind of exercise.
    #[command(subcommand)]
    pub kind: ExerciseKind,
}

/// The kinds of exercise.
#[derive(Debug, Subcommand)]
pub enum ExerciseKind {
    /// A one-level page table as a memory dump, and addresses to translate.
    Translate(PagingArgs),
    /// A multi-level page table in a memory dump: translate and load.
    Multilevel(PagingArgs),
    /// Segment registers (code, heap, stack; or base and bounds) and addresses.
    Segment(SegmentArgs),
    /// A reference string for page replacement by hand.
    Policy(PolicyExArgs),
    /// Allocations and frees for a free list or the buddy system.
    Alloc(AllocExArgs),
}

/// Options every exercise takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The seed (decimal or 0x hex): the same seed makes the same exercise.
    #[arg(long, value_name = "S")]
    pub seed: String,

    /// Print the worked solution after the exercise.
    #[arg(long)]
    pub answers: bool,

    /// Print JSON: the exercise's data, and with --answers the solutions.
    #[arg(long)]
    pub json: bool,

    /// Write the exercise's files into DIR (made if missing) for checking
    /// the answers with the other commands.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

/// Options of `translate` and `multilevel`.
#[derive(Debug, Args)]
pub struct PagingArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// A built-in paging format instead of the classroom one: x86-32,
    /// x86-64, x86-64-5level, sv32, sv39, sv48, sv57.
    #[arg(long, conflicts_with = "format")]
    arch: Option<String>,

    /// A classroom paging format in TOML (as `vmsim explain --format`).
    #[arg(long, value_name = "FILE")]
    format: Option<PathBuf>,

    /// How many addresses (default 5).
    #[arg(long, value_name = "N", default_value_t = 5)]
    count: usize,

    /// Bytes each address also loads: 1, 2, 4 or 8, or 0 for none (default:
    /// 1 for multilevel, none for translate).
    #[arg(long, value_name = "N", value_parser = ["0", "1", "2", "4", "8"])]
    load_size: Option<String>,

    /// Physical memory size (default: the whole physical space of a
    /// classroom format, else room for the tables and pages).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
}

/// Options of `segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Segmented (code, heap, stack chosen by the top two address bits) or
    /// base and bounds.
    #[arg(long, value_parser = ["segmented", "bounds"], default_value = "segmented")]
    model: String,

    /// Bits of a virtual address (8 to 32; default 14, as OSTEP's figure).
    #[arg(long, value_name = "N", default_value_t = 14)]
    va_bits: u32,

    /// How many addresses (default 5).
    #[arg(long, value_name = "N", default_value_t = 5)]
    count: usize,

    /// Mix writes and instruction fetches in with the reads (protection).
    #[arg(long)]
    accesses: bool,
}

/// Options of `policy`.
#[derive(Debug, Args)]
pub struct PolicyExArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// The policies to run by hand, comma separated (default fifo,lru,opt).
    #[arg(long, value_name = "LIST", default_value = "fifo,lru,opt")]
    policy: String,

    /// Page frames (default 3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    frames: usize,

    /// References in the string (default 15).
    #[arg(long, value_name = "N", default_value_t = 15)]
    length: usize,

    /// Distinct pages, numbered from 0 (default 6).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pages: u64,

    /// Percent of references that reuse one of the last three pages (default 40).
    #[arg(long, value_name = "PERCENT", default_value_t = 40)]
    locality: u64,

    /// Tie rule for OPT, UNOPT, LFU and aging (see `vmsim policy --help`).
    #[arg(long, value_name = "RULE", value_parser = ["oldest", "newest", "first-loaded", "last-loaded"])]
    ties: Option<String>,
}

/// Options of `alloc`.
#[derive(Debug, Args)]
pub struct AllocExArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// The free list (bytes) or the buddy allocator (pages).
    #[arg(long, value_parser = ["free-list", "buddy"], default_value = "free-list")]
    allocator: String,

    /// Heap size (default: 100 bytes, as malloc.py; 64 pages for buddy).
    #[arg(long, value_name = "SIZE")]
    heap: Option<String>,

    /// First address (default 1000, as malloc.py; page 0 for buddy).
    #[arg(long, value_name = "ADDR")]
    base: Option<String>,

    /// Free list: the fit (default first).
    #[arg(long, value_enum)]
    fit: Option<FitArg>,

    /// Free list: the list order (default address).
    #[arg(long, value_enum)]
    order: Option<OrderArg>,

    /// Free list: coalescing (bare: list, as malloc.py).
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "list",
        value_name = "RULE"
    )]
    coalesce: Option<CoalesceArg>,

    /// Free list: header bytes (default 0).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    header: u64,

    /// Free list: alignment (default 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    align: u64,

    /// Operations (default 10).
    #[arg(long, value_name = "N", default_value_t = 10)]
    count: usize,

    /// Largest allocation (default 10 bytes; 8 pages for buddy).
    #[arg(long, value_name = "N")]
    max_size: Option<u64>,

    /// Percent of operations that allocate (default 50).
    #[arg(long, value_name = "PERCENT", default_value_t = 50)]
    alloc_percent: u64,
}

/// Runs `vmsim exercise`.
pub fn run(args: &ExerciseArgs, w: &mut impl std::io::Write) -> anyhow::Result<()> {
    let out = match &args.kind {
        ExerciseKind::Translate(a) => paging_exercise(a, false)?,
        ExerciseKind::Multilevel(a) => paging_exercise(a, true)?,
        ExerciseKind::Segment(a) => segment_exercise(a)?,
        ExerciseKind::Policy(a) => policy_exercise(a)?,
        ExerciseKind::Alloc(a) => alloc_exercise(a)?,
    };
    w.write_all(out.as_bytes())?;
    Ok(())
}

fn seed(c: &CommonArgs) -> anyhow::Result<u64> {
    parse_u64(&c.seed).context("--seed")
}

/// The command that makes this exercise again (with its options).
fn again(kind: &str) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shown: Vec<String> = args
        .iter()
        .filter(|a| !matches!(a.as_str(), "--answers" | "--json"))
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'', '$', '*']) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    if shown.first().map(String::as_str) == Some("exercise") {
        format!("vmsim {}", shown.join(" "))
    } else {
        format!("vmsim exercise {kind}")
    }
}

/// Writes `data` to `dir/name` atomically.
fn save_file(dir: &Path, name: &str, data: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--save: cannot make {}", dir.display()))?;
    let dest = dir.join(name);
    let mut tmp = vmsim_trace::output::temp_next_to(&dest)
        .with_context(|| format!("--save: cannot write in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("--save: cannot write {}", dest.display()))?;
    vmsim_trace::output::commit(tmp, &dest)
        .with_context(|| format!("--save: cannot write {}", dest.display()))?;
    Ok(dest)
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

// ---------------------------------------------------------------- paging

/// How the entries of a format are laid out, in words.
fn entry_layout(fmt: &Format) -> String {
    match fmt.encoding() {
        Encoding::User(b) => {
            let mut parts = vec![format!("bit {} valid", b.valid)];
            for (bit, name) in [
                (b.writable, "writable"),
                (b.user, "user"),
                (b.executable, "executable"),
                (b.accessed, "accessed"),
                (b.dirty, "dirty"),
            ] {
                if let Some(bit) = bit {
                    parts.push(format!("bit {bit} {name}"));
                }
            }
            let hi = b.frame_lo + b.frame_bits - 1;
            parts.push(if hi == b.frame_lo {
                format!("bit {hi} frame number")
            } else {
                format!("bits {hi}-{} frame number", b.frame_lo)
            });
            format!(
                "{}-byte entries: {}; other bits are ignored",
                b.entry_bytes,
                parts.join(", ")
            )
        }
        Encoding::X86_32 => "4-byte x86 entries, little-endian: P bit 0, R/W bit 1, U/S bit 2, A bit 5, D bit 6, PS bit 7 (directory entries), frame address bits 31-12".into(),
        Encoding::X86_64 => "8-byte x86-64 entries, little-endian: P bit 0, R/W bit 1, U/S bit 2, A bit 5, D bit 6, PS bit 7 (above the last level), frame address bits 51-12, NX bit 63".into(),
        Encoding::RiscV => format!(
            "{}-byte RISC-V entries, little-endian: V bit 0, R 1, W 2, X 3, U 4, G 5, A 6, D 7, physical page number from bit 10 (an entry with R, W or X set is a leaf)",
            fmt.entry_bytes()
        ),
    }
}

/// How addresses are split, in words.
fn split_layout(fmt: &Format) -> String {
    let mut parts: Vec<String> = fmt
        .levels()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let hi = l.shift + l.bits - 1;
            format!("bits {hi}-{} {}", l.shift, fmt.index_name(i))
        })
        .collect();
    let ob = fmt.page_size().shift();
    if ob > 0 {
        parts.push(format!("bits {}-0 offset", ob - 1));
    }
    parts.join(", ")
}

fn paging_exercise(a: &PagingArgs, multilevel: bool) -> anyhow::Result<String> {
    let kind = if multilevel {
        "multilevel"
    } else {
        "translate"
    };
    let s = seed(&a.common)?;
    let mut rng = Rng::new(s);
    // The format: given, or the classroom one (drawn from the seed for translate).
    let (fmt, toml, arch) = if let Some(name) = &a.arch {
        (Format::by_name(name)?, None, Some(name.clone()))
    } else if let Some(path) = &a.format {
        let text = vmsim_trace::limits::read_text_limited(
            path,
            vmsim_trace::limits::MAX_TOML_BYTES,
            "a paging format file",
        )
        .with_context(|| format!("--format: cannot read {}", path.display()))?;
        (
            Format::from_toml(&text, &path.display().to_string())?,
            Some(text),
            None,
        )
    } else {
        let text = if multilevel {
            CLASSROOM_15.to_owned()
        } else {
            paging::one_level_format(&mut rng)
        };
        (Format::from_toml(&text, "classroom")?, Some(text), None)
    };
    let load_size = match a.load_size.as_deref() {
        Some("0") => None,
        Some(n) => Some(n.parse::<u32>().context("--load-size")?),
        None => multilevel.then_some(1),
    };
    let memory_bytes = a
        .memory
        .as_deref()
        .map(|m| parse_size(m).context("--memory"))
        .transpose()?;
    let spec = PagingSpec {
        format: fmt.clone(),
        questions: a.count,
        load_size,
        memory_bytes,
    };
    let ex = paging::generate(&spec, &mut rng)?;
    let mem_size = ex.memory.size();
    let page = fmt.page_size().bytes();
    let root = ex.root.as_u64();
    let one_level = fmt.levels().len() == 1;
    // The dump: the page table alone for a one-level table without loads,
    // else the whole memory; one line per page for pages up to 32 bytes.
    let width = if page <= 32 { page } else { 16 };
    let (dump_from, dump_len) = if one_level && load_size.is_none() {
        (root, fmt.table_bytes(0))
    } else {
        (0, mem_size)
    };
    let dump = hexdump(&ex.memory, dump_from, dump_len, width);

    // Files for checking with `vmsim explain`.
    let mut check = Vec::new();
    if let Some(dir) = &a.common.save {
        let img = dir.join("memory.img");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--save: cannot make {}", dir.display()))?;
        ex.memory
            .save_image(&img)
            .with_context(|| format!("--save: {}", img.display()))?;
        let fmt_arg = match (&toml, &arch) {
            (Some(t), _) => {
                let p = save_file(dir, "format.toml", t.as_bytes())?;
                format!("--format {}", p.display())
            }
            (None, Some(name)) => format!("--arch {name}"),
            (None, None) => String::new(),
        };
        let list: String = ex
            .addresses
            .iter()
            .map(|v| format!("{:#x}\n", v.as_u64()))
            .collect();
        save_file(dir, "addresses.txt", list.as_bytes())?;
        let load = load_size.map_or_else(String::new, |n| format!(" --load-size {n}"));
        check.push(format!(
            "vmsim explain {fmt_arg} --mem {} --root {root:#x}{load} ADDRESS",
            img.display()
        ));
    }

    let answers: Vec<_> = if a.common.answers {
        ex.addresses
            .iter()
            .map(|&va| paging_explanation(&fmt, va, Some((&ex.memory, ex.root)), load_size))
            .collect()
    } else {
        Vec::new()
    };

    if a.common.json {
        let v = json!({
            "exercise": kind,
            "seed": s,
            "format": fmt.name(),
            "arch": arch,
            "format_toml": toml,
            "memory_bytes": mem_size,
            "root": hex(root),
            "load_size": load_size,
            "addresses": ex.addresses.iter().map(|v| hex(v.as_u64())).collect::<Vec<_>>(),
            "dump": dump,
            "check": check,
            "answers": if a.common.answers { serde_json::to_value(&answers)? } else { Value::Null },
        });
        return Ok(crate::output::json_pretty(&v)? + "\n");
    }

    let mut o = String::new();
    let _ = writeln!(o, "Exercise: {}", again(kind));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Machine: {}: {}-bit virtual addresses, {} pages, {} level{} ({}); {}; {}-bit physical addresses, {} bytes of physical memory.",
        fmt.name(),
        fmt.va_bits(),
        fmt.page_size(),
        fmt.levels().len(),
        if one_level { "" } else { "s" },
        split_layout(&fmt),
        entry_layout(&fmt),
        fmt.pa_bits(),
        mem_size
    );
    let _ = writeln!(
        o,
        "The {} is at physical address {root:#x} (the page-table base register).",
        if one_level {
            "page table".to_owned()
        } else {
            format!("root table ({})", fmt.table_name(0))
        }
    );
    let _ = writeln!(o);
    if dump_from == root && dump_len == fmt.table_bytes(0) {
        let _ = writeln!(
            o,
            "The page table ({} entries of {} byte{}, in hex; a '*' line repeats the line above it):",
            fmt.table_bytes(0) / u64::from(fmt.entry_bytes()),
            fmt.entry_bytes(),
            if fmt.entry_bytes() == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            o,
            "Physical memory ({width} bytes a line, in hex; a '*' line stands for lines equal to the one above it):"
        );
    }
    for line in &dump {
        let _ = writeln!(o, "  {line}");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Translate each virtual address to a physical address{}, or say where and why it faults:",
        load_size.map_or_else(String::new, |n| format!(
            " and give the value a {n}-byte load reads there (little-endian)"
        ))
    );
    for (i, va) in ex.addresses.iter().enumerate() {
        let _ = writeln!(o, "  {}. {:#x}", i + 1, va.as_u64());
    }
    for c in &check {
        let _ = writeln!(o);
        let _ = writeln!(o, "Check one address: {c}");
    }
    if a.common.answers {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers:");
        for (i, (va, e)) in ex.addresses.iter().zip(&answers).enumerate() {
            let result = match (&e.pa, &e.fault) {
                (Some(pa), _) => {
                    let load = e
                        .load
                        .as_ref()
                        .and_then(|l| l.value.clone())
                        .map_or_else(String::new, |v| format!(", loads {v}"));
                    format!("physical address {pa}{load}")
                }
                (None, Some(f)) => format!("fault: {} ({})", f.kind, f.detail),
                (None, None) => "no translation".to_owned(),
            };
            let _ = writeln!(o, "  {}. {:#x} -> {result}", i + 1, va.as_u64());
        }
        for (i, (va, e)) in ex.addresses.iter().zip(&answers).enumerate() {
            let _ = writeln!(o);
            let _ = writeln!(o, "{}. {:#x} worked out:", i + 1, va.as_u64());
            for line in paging_text(&fmt, e).lines() {
                let _ = writeln!(o, "  {line}");
            }
        }
    } else {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers: {} --answers", again(kind));
    }
    Ok(o)
}

// ---------------------------------------------------------------- segments

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Read => "read",
        Access::Write => "write",
        Access::Execute => "execute",
    }
}

fn segment_exercise(a: &SegmentArgs) -> anyhow::Result<String> {
    let s = seed(&a.common)?;
    let mut rng = Rng::new(s);
    let model = if a.model == "bounds" {
        SegmentModel::BaseBounds
    } else {
        SegmentModel::Segmented
    };
    let ex = segments::generate(
        &SegmentExerciseSpec {
            model,
            va_bits: a.va_bits,
            questions: a.count,
            accesses: a.accesses,
        },
        &mut rng,
    )?;
    let seg_arg = ex.specs.join(",");
    let explain_args = format!("--va-bits {} --segments {seg_arg}", a.va_bits);
    if let Some(dir) = &a.common.save {
        save_file(dir, "segments.txt", format!("{seg_arg}\n").as_bytes())?;
        let list: String = ex
            .questions
            .iter()
            .map(|(va, acc)| format!("{va:#x} {}\n", access_name(*acc)))
            .collect();
        save_file(dir, "addresses.txt", list.as_bytes())?;
    }
    let answers: Vec<_> = if a.common.answers {
        ex.questions
            .iter()
            .map(|&(va, acc)| ex.table.explain(va, acc))
            .collect()
    } else {
        Vec::new()
    };
    if a.common.json {
        let v = json!({
            "exercise": "segment",
            "seed": s,
            "model": a.model,
            "va_bits": a.va_bits,
            "seg_bits": ex.table.seg_bits(),
            "segments": ex.table.segments(),
            "segments_arg": seg_arg,
            "questions": ex.questions.iter().map(|(va, acc)| json!({"va": hex(*va), "access": access_name(*acc)})).collect::<Vec<_>>(),
            "answers": if a.common.answers { serde_json::to_value(&answers)? } else { Value::Null },
        });
        return Ok(crate::output::json_pretty(&v)? + "\n");
    }
    let mut o = String::new();
    let _ = writeln!(o, "Exercise: {}", again("segment"));
    let _ = writeln!(o);
    let max = ex.table.max_size();
    match model {
        SegmentModel::Segmented => {
            let _ = writeln!(
                o,
                "Machine: {}-bit virtual addresses; the top 2 bits select the segment, the other {} bits are the offset (maximum segment size {max:#x} = {max}). A segment that grows down ends at its base: offset o is the negative offset o - {max}, valid when its magnitude is at most the size.",
                a.va_bits,
                ex.table.offset_bits()
            );
        }
        SegmentModel::BaseBounds => {
            let _ = writeln!(
                o,
                "Machine: {}-bit virtual addresses, one base (relocation) register and one bounds register: an address is valid when it is below the bounds (a size), and then goes to base + address.",
                a.va_bits
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  {:<8} {:<6} {:>10} {:>10}  {:<5} protection",
        "segment", "name", "base", "size", "grows"
    );
    for seg in ex.table.segments() {
        let _ = writeln!(
            o,
            "  {:<8} {:<6} {:>10} {:>10}  {:<5} {}",
            seg.number,
            seg.name.as_deref().unwrap_or("-"),
            hex(seg.base),
            hex(seg.size),
            if seg.growth == vmsim::segment::Growth::Down {
                "down"
            } else {
                "up"
            },
            seg.perms
        );
    }
    if model == SegmentModel::Segmented {
        let _ = writeln!(o, "  (segment 2 is not defined)");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "For each access, give the physical address, or say why it faults:"
    );
    for (i, (va, acc)) in ex.questions.iter().enumerate() {
        let _ = writeln!(o, "  {}. {:<7} {va:#x} ({va})", i + 1, access_name(*acc));
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Check one address: vmsim explain {explain_args} --access ACCESS ADDRESS"
    );
    if a.common.answers {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers:");
        for (i, e) in answers.iter().enumerate() {
            let result = match &e.outcome {
                Ok(pa) => format!("physical address {pa:#x} ({pa})"),
                Err(f) => f.to_string(),
            };
            let _ = writeln!(o, "  {}. {:#x} -> {result}", i + 1, e.va);
        }
        for (i, e) in answers.iter().enumerate() {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "{}. {} {:#x} worked out:",
                i + 1,
                access_name(e.access),
                e.va
            );
            for line in e.steps.iter() {
                let _ = writeln!(o, "  {line}");
            }
        }
    } else {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers: {} --answers", again("segment"));
    }
    Ok(o)
}

// ---------------------------------------------------------------- policy

fn policy_exercise(a: &PolicyExArgs) -> anyhow::Result<String> {
    let s = seed(&a.common)?;
    let mut rng = Rng::new(s);
    let kinds = a
        .policy
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.parse::<PolicyKind>().context("--policy"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if kinds.is_empty() {
        bail!("--policy: name at least one policy (e.g. fifo,lru,opt)");
    }
    let Some(frames) = NonZeroUsize::new(a.frames) else {
        bail!("--frames: must be at least 1");
    };
    let ties: Option<Ties> = a
        .ties
        .as_deref()
        .map(|t| t.parse().context("--ties"))
        .transpose()?;
    let refs = reference_string(
        &RefsSpec {
            length: a.length,
            pages: a.pages,
            locality: a.locality,
        },
        &mut rng,
    )?;
    let refs_arg: Vec<String> = refs.iter().map(u64::to_string).collect();
    let refs_arg = refs_arg.join(",");
    if let Some(dir) = &a.common.save {
        save_file(
            dir,
            "refs.txt",
            format!("{}\n", refs_arg.replace(',', " ")).as_bytes(),
        )?;
    }
    let trace = DenseTrace::new(&refs, &[], "exercise")?;
    let cfg = PolicyConfig {
        ties,
        ..PolicyConfig::default()
    };
    // Per policy: the step lines and the summary, or JSON steps and totals.
    let mut runs = Vec::new();
    if a.common.answers {
        for &k in &kinds {
            let mut lines = Vec::new();
            let mut steps = Vec::new();
            let page_of = |id: u32| PageName::number(trace.pages()[id as usize]);
            let totals = policy_lab::run(
                k,
                &cfg,
                &trace,
                frames,
                Detail::Contents,
                |st: &Step<'_>| {
                    let mut buf = Vec::new();
                    let _ = write_step(&mut buf, st, &page_of);
                    lines.push(String::from_utf8_lossy(&buf).trim_end().to_owned());
                    steps.push(json!({
                    "page": trace.pages()[st.id as usize],
                    "hit": st.hit,
                    "evicted": st.evicted.map(|v| trace.pages()[v as usize]),
                    "frames": st.resident.iter().map(|&r| trace.pages()[r as usize]).collect::<Vec<_>>(),
                }));
                },
            );
            runs.push((k, lines, steps, totals));
        }
    }
    if a.common.json {
        let answers: Vec<Value> = runs
            .iter()
            .map(|(k, _, steps, t)| {
                json!({
                    "policy": k.name(),
                    "ties": ties.or(k.default_ties()).map(Ties::name),
                    "steps": steps,
                    "hits": t.hits,
                    "misses": t.misses,
                    "evictions": t.evictions,
                })
            })
            .collect();
        let v = json!({
            "exercise": "policy",
            "seed": s,
            "frames": a.frames,
            "policies": kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "refs": refs,
            "answers": if a.common.answers { Value::Array(answers) } else { Value::Null },
        });
        return Ok(crate::output::json_pretty(&v)? + "\n");
    }
    let mut o = String::new();
    let _ = writeln!(o, "Exercise: {}", again("policy"));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Reference string ({} references to pages 0-{}):",
        refs.len(),
        a.pages - 1
    );
    let _ = writeln!(o, "  {}", refs_arg.replace(',', " "));
    let _ = writeln!(o);
    let names: Vec<String> = kinds
        .iter()
        .map(|k| match ties.or(k.default_ties()) {
            Some(t) if k.default_ties().is_some() => format!("{} (ties: {t})", k.name()),
            _ => k.name().to_owned(),
        })
        .collect();
    let _ = writeln!(
        o,
        "With {} page frames, initially empty, give for each reference whether it hits or faults, which page is evicted, and the frames' contents; count the faults. Policies: {}.",
        a.frames,
        names.join(", ")
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Check one policy: vmsim policy --policy POLICY --frames {} --refs {refs_arg}",
        a.frames
    );
    if a.common.answers {
        for (k, lines, _, totals) in &runs {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "{} (frames listed next victim first):",
                k.name().to_uppercase()
            );
            for l in lines {
                let _ = writeln!(o, "  {l}");
            }
            let _ = writeln!(o, "  {}", summary_line(*k, frames, totals, ties));
        }
    } else {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers: {} --answers", again("policy"));
    }
    Ok(o)
}

// ---------------------------------------------------------------- alloc

fn alloc_exercise(a: &AllocExArgs) -> anyhow::Result<String> {
    let s = seed(&a.common)?;
    let mut rng = Rng::new(s);
    let buddy = a.allocator == "buddy";
    if buddy
        && (a.fit.is_some()
            || a.order.is_some()
            || a.coalesce.is_some()
            || a.header != 0
            || a.align != 1)
    {
        bail!("--fit, --order, --coalesce, --header and --align apply to the free list only");
    }
    let heap = a
        .heap
        .as_deref()
        .map(|h| parse_size(h).context("--heap"))
        .transpose()?
        .unwrap_or(if buddy { 64 } else { 100 });
    let base = a
        .base
        .as_deref()
        .map(|b| parse_u64(b).context("--base"))
        .transpose()?
        .unwrap_or(if buddy { 0 } else { 1000 });
    let spec = HeapExerciseSpec {
        ops: a.count,
        max_size: a.max_size.unwrap_or(if buddy { 8 } else { 10 }),
        alloc_percent: a.alloc_percent,
    };
    let mut o = String::new();
    let (ops, answer_text, answer_json, setup) = if buddy {
        let cfg = BuddyLabConfig {
            first: base,
            pages: heap,
            max_order: (63 - heap.max(1).leading_zeros()).min(vmsim::alloc::MAX_SUPPORTED_ORDER),
        };
        let ops = heap_ops(&spec, HeapTarget::Buddy(cfg), &mut rng)?;
        let setup = format!(
            "A buddy allocator over pages {base}..{} ({heap} pages; blocks of 1 to {} pages). aN asks for N pages (rounded up to a power of two), fI frees the I-th allocation.",
            base + heap,
            1u64 << cfg.max_order
        );
        let (t, j) = if a.common.answers {
            let run = alloc_lab::run_buddy(cfg, &ops, alloc_lab::Steps::Every)?;
            (
                buddy_text(&run, false),
                json!({"config": run.config, "steps": run.steps, "totals": run.totals}),
            )
        } else {
            (String::new(), Value::Null)
        };
        (ops, t, j, setup)
    } else {
        let cfg = FreeSpaceConfig {
            base,
            size: heap,
            placement: match a.fit.unwrap_or(FitArg::First) {
                FitArg::First => Placement::FirstFit,
                FitArg::Next => Placement::NextFit,
                FitArg::Best => Placement::BestFit,
                FitArg::Worst => Placement::WorstFit,
                FitArg::SizeAligned => Placement::SizeAligned,
            },
            order: match a.order.unwrap_or(OrderArg::Address) {
                OrderArg::Address => ListOrder::Address,
                OrderArg::SizeAsc => ListOrder::SizeAscending,
                OrderArg::SizeDesc => ListOrder::SizeDescending,
                OrderArg::Head => ListOrder::Head,
                OrderArg::Tail => ListOrder::Tail,
            },
            coalesce: match a.coalesce.unwrap_or(CoalesceArg::None) {
                CoalesceArg::None => Coalesce::Never,
                CoalesceArg::List => Coalesce::List,
                CoalesceArg::Address => Coalesce::Address,
            },
            header: a.header,
            align: a.align,
        };
        let ops = heap_ops(&spec, HeapTarget::FreeList(cfg), &mut rng)?;
        let setup = format!(
            "A free list over the heap {base}..{} ({heap} bytes): {}, the list kept in {} order, {}, {}-byte headers, requests rounded up to a multiple of {}. aN asks for N bytes, fI frees the I-th allocation (the rules: vmsim alloc --help).",
            base + heap,
            cfg.placement.name(),
            cfg.order.name(),
            match cfg.coalesce {
                Coalesce::Never => "no coalescing",
                Coalesce::List => "coalescing neighbours in the list (malloc.py)",
                Coalesce::Address => "coalescing neighbours in memory",
            },
            cfg.header,
            cfg.align
        );
        let (t, j) = if a.common.answers {
            let run = alloc_lab::run_free_list(cfg, &ops, alloc_lab::Steps::Every)?;
            (
                free_list_text(&run, false),
                json!({"config": run.config, "steps": run.steps, "totals": run.totals}),
            )
        } else {
            (String::new(), Value::Null)
        };
        (ops, t, j, setup)
    };
    let ops_arg = format_ops(&ops);
    if let Some(dir) = &a.common.save {
        save_file(dir, "ops.txt", format!("{ops_arg}\n").as_bytes())?;
    }
    if a.common.json {
        let v = json!({
            "exercise": "alloc",
            "seed": s,
            "allocator": a.allocator,
            "ops": ops_arg,
            "answers": answer_json,
        });
        return Ok(crate::output::json_pretty(&v)? + "\n");
    }
    let _ = writeln!(o, "Exercise: {}", again("alloc"));
    let _ = writeln!(o);
    let _ = writeln!(o, "{setup}");
    let _ = writeln!(o);
    let _ = writeln!(o, "Operations: {ops_arg}");
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "For each allocation give the {} returned (or NULL){}, and after each operation the free {}.",
        if buddy { "first page" } else { "address" },
        if buddy {
            ""
        } else {
            " and the number of free-list elements searched"
        },
        if buddy {
            "blocks of each order"
        } else {
            "list"
        }
    );
    let _ = writeln!(o);
    let check = if buddy {
        format!("vmsim alloc --allocator buddy --heap {heap} --base {base} --ops {ops_arg}")
    } else {
        let mut c = format!("vmsim alloc --heap {heap} --base {base}");
        if let Some(f) = a.fit {
            c.push_str(&format!(" --fit {}", clap_name(&f)));
        }
        if let Some(ord) = a.order {
            c.push_str(&format!(" --order {}", clap_name(&ord)));
        }
        if let Some(co) = a.coalesce {
            c.push_str(&format!(" --coalesce={}", clap_name(&co)));
        }
        if a.header != 0 {
            c.push_str(&format!(" --header {}", a.header));
        }
        if a.align != 1 {
            c.push_str(&format!(" --align {}", a.align));
        }
        c.push_str(&format!(" --ops {ops_arg}"));
        c
    };
    let _ = writeln!(o, "Check: {check}");
    if a.common.answers {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers:");
        for line in answer_text.lines() {
            let _ = writeln!(o, "  {line}");
        }
    } else {
        let _ = writeln!(o);
        let _ = writeln!(o, "Answers: {} --answers", again("alloc"));
    }
    Ok(o)
}

/// The command-line spelling of a clap value.
fn clap_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}
