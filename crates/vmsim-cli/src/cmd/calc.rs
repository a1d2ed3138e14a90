//! `vmsim calc`: page-table arithmetic for a geometry typed on the command
//! line, printed with the formula behind each number, or as JSON.
//!
//! This module turns flags into a [`Geometry`] and the engine's `calc`
//! results into a [`Report`]; `human` and `json` render it; `eat` is the
//! `vmsim calc eat` subcommand. All arithmetic lives in `vmsim::calc`.

mod eat;
mod human;
mod json;
mod units;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use vmsim::addr::{PageSize, VirtAddr};
use vmsim::calc::{
    AddressSplit, CalcError, Geometry, PageSizeComparison, SequentialScan, SparseLayout,
    UsedRegion, UsedRegions,
};
use vmsim::paging::{Canonical, Format};

use vmsim::units::{parse_range, parse_size, parse_u32_list, parse_u64};

/// The JSON keys, for `vmsim calc --help`.
const CALC_LONG_HELP: &str = "\
Sizes accept plain numbers (decimal, 0x hex, 0b binary) and the binary units
B, K/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB (all powers of two; KB, MB ... are
refused as ambiguous).

Examples (the course's worked examples):
  vmsim calc --va-bits 32 --page-size 4KiB --pte-size 4 --processes 1000
  vmsim calc --va-bits 39 --page-size 4KiB --pte-size 8 --pa-bits 56
  vmsim calc --arch sv39                          # the same, from the format
  vmsim calc --arch x86-64 --used 0-1GiB --used 0x7fffc0000000-128TiB
  vmsim calc --va-bits 32 --page-size 1KiB --pte-size 4 --level-bits 12,10
  vmsim calc --va-bits 12 --page-size 64 --pte-size 1 --level-bits 2,4 \\
             --used 0-2KiB --used 3KiB-4KiB
  vmsim calc --va-bits 48 --page-size 4KiB --pte-size 8 --compare-page-size 2MiB \\
             --compare-page-size 1GiB
  vmsim calc --va-bits 6 --page-size 16 --pte-size 1 --address 0b111010
  vmsim calc --arch x86-64 --element-size 4       # 1024 ints per page
  vmsim calc eat --hit-ratio 0.98 --tlb-ns 1 --mem-ns 100 --levels 4

JSON keys (--json; one object). Counts and byte sizes are JSON numbers, or
decimal strings when they exceed 2^64 - 1 (e.g. 2^64 entries).
  arch                  format name, with --arch or --format
  va_bits, page_size, pte_size, offset_bits, vpn_bits, address_space_bytes
  entries               entries of a flat (one-level) table = 2^vpn_bits
  bytes                 bytes of that table = entries * pte_size
  entries_per_table     entries that fit one page = page_size / pte_size
  index_bits_per_table  log2(entries_per_table)
  levels                levels needed so every table fits one page
                        (null when a page holds fewer than 2 entries)
  fit_level_bits        index bits per level of that table, root first
  level_bits            index bits per level as given (or from the format);
                        [] for a flat table
  level_detail          per level of level_bits: level, index_bits,
                        index_shift, entries_per_table, table_bytes,
                        entry_covers_bytes, table_covers_bytes, tables_full,
                        and with a format its table name (PML4, PD, ...)
  pa_bits, phys_bytes, pfn_bits, frames, pte_spare_bits    with a PA width
  processes, bytes_all_processes                           with --processes
  with --used:
  used_regions          [{start, end}] sorted, end exclusive
  used_bytes, used_pages
  used_level_bits       level bits the sparse table was counted with
  used_levels           per level: level, index_bits, tables, entries,
                        valid_entries, bytes, tables_full
  leaf_tables, leaf_table_entries   leaf tables that exist and their entries
  table_entries, table_bytes        all tables that exist, every level
  leaf_saving_percent   100 * (1 - leaf_table_entries / entries)
  total_saving_percent  100 * (1 - table_entries / entries); negative when
                        the tree is larger than the flat table
  compare               per --compare-page-size: page_size, offset_bits,
                        entries, bytes, log2_reduction, reduction_factor
                        (entries / these entries; below 1 for a smaller page)
  address               with --address: address, vpn, offset, indices
                        (per level, root first)
  scan                  with --element-size: element_size,
                        elements_per_page, tlb_misses_per_page,
                        tlb_hits_per_page, hit_ratio";

/// Page-table arithmetic: sizes of flat and multi-level tables, levels,
/// sparse layouts, page-size reductions, address splits; `calc eat` gives
/// the effective access time.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = CALC_LONG_HELP
)]
pub struct CalcArgs {
    /// A further calculation instead of the table sizes.
    #[command(subcommand)]
    pub command: Option<CalcCommand>,
    /// The page-table geometry and what to compute about it.
    #[command(flatten)]
    pub table: TableArgs,
}

/// Subcommands of `vmsim calc`.
#[derive(Debug, Subcommand)]
pub enum CalcCommand {
    /// Effective access time of a reference through a TLB and an n-level
    /// page table.
    Eat(eat::EatArgs),
}

/// The geometry flags and the optional questions about it.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// Take the geometry from a built-in paging format: x86-32, x86-64
    /// (4-level), x86-64-5level, sv32, sv39, sv48, sv57.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["format", "va_bits", "page_size", "pte_size", "level_bits", "pa_bits"]
    )]
    pub arch: Option<String>,
    /// Take the geometry from a user-defined paging format (TOML file, as
    /// for `vmsim explain --format`).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["va_bits", "page_size", "pte_size", "level_bits", "pa_bits"]
    )]
    pub format: Option<PathBuf>,
    /// Width of a virtual address in bits (1-64), e.g. 39.
    #[arg(long, value_name = "N", required_unless_present_any = ["arch", "format"])]
    pub va_bits: Option<u32>,
    /// Page size, a power of two, e.g. 4KiB, 2MiB, 64.
    #[arg(long, value_name = "SIZE", required_unless_present_any = ["arch", "format"])]
    pub page_size: Option<String>,
    /// Bytes of one page-table entry: 1, 2, 4, 8 or 16.
    #[arg(long, value_name = "BYTES", required_unless_present_any = ["arch", "format"])]
    pub pte_size: Option<String>,
    /// Width of a physical address in bits, for frame counts and the bits
    /// an entry has to spare, e.g. 56 for Sv39.
    #[arg(long, value_name = "N")]
    pub pa_bits: Option<u32>,
    /// Index bits of each level, root first, adding up to va bits - offset
    /// bits, e.g. 2,4 or 9,9,9. Without it the table is flat.
    #[arg(long, value_name = "A,B,...")]
    pub level_bits: Option<String>,
    /// A used region START-END (END exclusive) of a sparse address space,
    /// e.g. 0-2KiB; repeat for more. Counts the tables that exist per
    /// level (with the page-fitting level split when --level-bits is not
    /// given). Addresses are within [0, 2^va-bits): for x86-64's upper half
    /// write its low 48 bits (0x800000000000-256TiB).
    #[arg(long = "used", value_name = "START-END")]
    pub used: Vec<String>,
    /// Another page size to compare the flat table with, e.g. 2MiB or 1GiB;
    /// repeat for more.
    #[arg(long = "compare-page-size", value_name = "SIZE")]
    pub compare_page_size: Vec<String>,
    /// A virtual address to split into page number, offset and per-level
    /// indices, e.g. 0b111010 or 0x7fff0123.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// Number of processes, each with its own flat table, e.g. 1000.
    #[arg(long, value_name = "N")]
    pub processes: Option<String>,
    /// Size of an array element scanned sequentially (e.g. 4 for an int):
    /// elements per page and TLB misses/hits per page.
    #[arg(long, value_name = "BYTES")]
    pub element_size: Option<String>,
    /// Print one JSON object instead of the table (keys in --help).
    #[arg(long)]
    pub json: bool,
}

/// Runs `vmsim calc` (or `vmsim calc eat`).
pub fn run(args: &CalcArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match &args.command {
        Some(CalcCommand::Eat(eat)) => eat::run(eat, out),
        None => {
            let report = Report::build(&args.table)?;
            if args.table.json {
                writeln!(
                    out,
                    "{}",
                    crate::output::json_pretty(&json::render(&report))?
                )?;
            } else {
                write!(out, "{}", human::render(&report))?;
            }
            Ok(())
        }
    }
}

/// Everything `vmsim calc` computed, ready to render.
pub struct Report {
    /// The paging format, when the geometry came from one.
    pub arch: Option<Format>,
    /// The geometry, with level bits when given (flat otherwise).
    pub geometry: Geometry,
    /// When every table fits one page: index bits of a full table, levels,
    /// and the bits of each level (root first).
    pub fit: Result<(u32, u32, Vec<u32>), CalcError>,
    /// A number of processes and the bytes of their flat tables.
    pub processes: Option<(u64, u128)>,
    /// The sparse layout, with `--used`.
    pub sparse: Option<Sparse>,
    /// One per `--compare-page-size`.
    pub compares: Vec<PageSizeComparison>,
    /// The address as typed, its value, and its split, with `--address`.
    /// The split is of the low `va_bits` bits when a sign-extended format
    /// accepts an upper-half (canonical) address.
    pub split: Option<(String, u64, AddressSplit)>,
    /// The element size and its scan, with `--element-size`.
    pub scan: Option<(u64, SequentialScan)>,
}

/// The tables that exist for the used regions.
pub struct Sparse {
    /// The regions, sorted.
    pub regions: Vec<UsedRegion>,
    /// Level bits counted with.
    pub level_bits: Vec<u32>,
    /// Whether those were the page-fitting split (no `--level-bits`).
    pub level_bits_from_fit: bool,
    /// The counts.
    pub layout: SparseLayout,
}

impl Report {
    /// Validates the flags and computes everything they ask for.
    fn build(args: &TableArgs) -> anyhow::Result<Self> {
        let (geometry, arch) = geometry(args)?;
        let fit = geometry.index_bits_per_page().and_then(|index| {
            Ok((
                index,
                geometry.levels_to_fit_page()?,
                geometry.fit_level_bits()?,
            ))
        });
        let processes = args
            .processes
            .as_deref()
            .map(|text| -> anyhow::Result<_> {
                let n = parse_u64(text).context("--processes")?;
                if n == 0 {
                    anyhow::bail!("--processes 0: expected at least one process");
                }
                let total = geometry
                    .flat_bytes()
                    .checked_mul(u128::from(n))
                    .with_context(|| format!("--processes {n}: the total exceeds 2^128 bytes"))?;
                Ok((n, total))
            })
            .transpose()?;
        let sparse = sparse(args, &geometry)?;
        let compares = args
            .compare_page_size
            .iter()
            .map(|text| {
                let page = page_size(text).context("--compare-page-size")?;
                geometry
                    .compare_page_size(page)
                    .context("--compare-page-size")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let split = args
            .address
            .as_deref()
            .map(|text| split(text, &geometry, arch.as_ref()))
            .transpose()?;
        let scan = args
            .element_size
            .as_deref()
            .map(|text| -> anyhow::Result<_> {
                let elem = parse_size(text).context("--element-size")?;
                let scan =
                    SequentialScan::new(geometry.page_size(), elem).context("--element-size")?;
                Ok((elem, scan))
            })
            .transpose()?;
        Ok(Self {
            arch,
            geometry,
            fit,
            processes,
            sparse,
            compares,
            split,
            scan,
        })
    }
}

/// Splits the address `text`. A format that sign-extends addresses (x86-64,
/// RISC-V Sv39+) accepts canonical upper-half addresses; their low
/// `va_bits` bits are what the walk indexes with.
fn split(
    text: &str,
    geometry: &Geometry,
    format: Option<&Format>,
) -> anyhow::Result<(String, u64, AddressSplit)> {
    let addr = parse_u64(text).context("--address")?;
    let mut low = addr;
    if let Some(f) = format
        && f.canonical() == Canonical::SignExtend
        && f.va_bits() < 64
    {
        f.check_address(VirtAddr::new(addr)).map_err(|e| {
            anyhow::anyhow!(
                "--address {text}: {e} for {}: bits 63..{} must all copy bit {}",
                f.name(),
                f.va_bits(),
                f.va_bits() - 1
            )
        })?;
        low = addr & ((1u64 << f.va_bits()) - 1);
    }
    let split = AddressSplit::new(geometry, low).context("--address")?;
    Ok((text.to_owned(), addr, split))
}

/// A page size from text: a size that is a power of two.
fn page_size(text: &str) -> anyhow::Result<PageSize> {
    let bytes = parse_size(text)?;
    PageSize::from_bytes(bytes).map_err(|_| {
        anyhow::anyhow!(
            "page size '{text}' ({bytes} B) is not a power of two between 1 B and 256 TiB"
        )
    })
}

/// The geometry of a paging format: its address widths, base page, entry
/// size and levels.
fn format_geometry(format: &Format) -> anyhow::Result<Geometry> {
    let geometry = Geometry::new(
        format.va_bits(),
        format.page_size(),
        format.entry_bytes(),
        format.level_bits(),
    )?
    .with_pa_bits(format.pa_bits())?;
    Ok(geometry)
}

/// The format named by `--arch` or read from `--format`, if either was given.
fn format(args: &TableArgs) -> anyhow::Result<Option<Format>> {
    if let Some(name) = &args.arch {
        return Ok(Some(Format::by_name(name).context("--arch")?));
    }
    if let Some(path) = &args.format {
        return Ok(Some(Format::from_toml_file(path).context("--format")?));
    }
    Ok(None)
}

/// The geometry from `--arch`, `--format` or the explicit flags, and the
/// format if it came from one.
fn geometry(args: &TableArgs) -> anyhow::Result<(Geometry, Option<Format>)> {
    if let Some(format) = format(args)? {
        let geometry =
            format_geometry(&format).with_context(|| format!("format '{}'", format.name()))?;
        return Ok((geometry, Some(format)));
    }
    let (Some(va_bits), Some(page), Some(pte)) = (
        args.va_bits,
        args.page_size.as_deref(),
        args.pte_size.as_deref(),
    ) else {
        bail!("give --va-bits, --page-size and --pte-size");
    };
    let page = page_size(page).context("--page-size")?;
    let pte = parse_u64(pte).context("--pte-size")?;
    let Ok(pte) = u32::try_from(pte) else {
        bail!("--pte-size {pte} is not supported: expected 1, 2, 4, 8 or 16");
    };
    let level_bits = match args.level_bits.as_deref() {
        Some(text) => parse_u32_list(text).context("--level-bits")?,
        None => Vec::new(),
    };
    let mut geometry = Geometry::new(va_bits, page, pte, level_bits)?;
    if let Some(pa) = args.pa_bits {
        geometry = geometry.with_pa_bits(pa)?;
    }
    Ok((geometry, None))
}

/// The sparse layout for `--used`, if given.
fn sparse(args: &TableArgs, geometry: &Geometry) -> anyhow::Result<Option<Sparse>> {
    if args.used.is_empty() {
        return Ok(None);
    }
    let regions = args
        .used
        .iter()
        .map(|text| {
            let (start, end) = parse_range(text).context("--used")?;
            Ok(UsedRegion { start, end })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let regions = UsedRegions::new(&regions, geometry.va_bits()).context("--used")?;
    let (counted, from_fit) = if geometry.level_bits().is_empty() {
        let bits = geometry
            .fit_level_bits()
            .context("--used needs --level-bits here")?;
        (geometry.with_level_bits(bits)?, true)
    } else {
        (geometry.clone(), false)
    };
    let layout = SparseLayout::compute(&counted, &regions)?;
    Ok(Some(Sparse {
        regions: regions.as_slice().to_vec(),
        level_bits: counted.level_bits().to_vec(),
        level_bits_from_fit: from_fit,
        layout,
    }))
}
