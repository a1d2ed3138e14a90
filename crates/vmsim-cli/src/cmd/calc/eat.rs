//! `vmsim calc eat`: the effective access time of a memory reference
//! through a TLB and an n-level page table.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use vmsim::calc::EatInput;
use vmsim::paging::Format;

use super::units::float;
use vmsim::units::{parse_non_negative, parse_ratio};

/// The JSON keys, for `vmsim calc eat --help`.
const EAT_LONG_HELP: &str = "\
The course's model: a TLB hit costs the TLB search plus one memory access; a
miss also reads one page-table entry per level, so an n-level table costs
n + 1 memory accesses on a miss (a flat table 2, x86-64's 4 levels 5).
  EAT = a x (tlb + mem) + (1 - a) x (tlb + (levels + 1) x mem)

Example:
  vmsim calc eat --hit-ratio 0.8 --tlb-ns 20 --mem-ns 100          (140 ns)
  vmsim calc eat --hit-ratio 99% --tlb-ns 1 --mem-ns 100 --levels 4
  vmsim calc eat --hit-ratio 99% --tlb-ns 1 --mem-ns 100 --arch sv39

JSON keys (--json): arch (with --arch/--format), hit_ratio, tlb_ns, mem_ns, levels, hit_ns, miss_ns,
miss_mem_accesses, eat_ns, slowdown (eat_ns / mem_ns). Times are JSON
numbers in nanoseconds (floating point).";

/// Effective access time through a TLB and an n-level page table.
#[derive(Debug, Args)]
#[command(after_long_help = EAT_LONG_HELP)]
pub struct EatArgs {
    /// Fraction of references that hit in the TLB: 0.98 or 98%.
    #[arg(long, value_name = "A", allow_hyphen_values = true)]
    pub hit_ratio: String,
    /// Time to search the TLB, in nanoseconds, e.g. 20.
    #[arg(long, value_name = "NS", allow_hyphen_values = true)]
    pub tlb_ns: String,
    /// Time of one memory access, in nanoseconds, above 0, e.g. 100.
    #[arg(long, value_name = "NS", allow_hyphen_values = true)]
    pub mem_ns: String,
    /// Levels of the page table a TLB miss walks (1 = flat table, the
    /// default).
    #[arg(long, value_name = "N", conflicts_with_all = ["arch", "format"])]
    pub levels: Option<u32>,
    /// Take the levels from a built-in paging format (x86-64: 4, sv39: 3, ...).
    #[arg(long, value_name = "NAME", conflicts_with = "format")]
    pub arch: Option<String>,
    /// Take the levels from a user-defined paging format (TOML file).
    #[arg(long, value_name = "FILE")]
    pub format: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `vmsim calc eat`.
pub fn run(args: &EatArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let format = match (&args.arch, &args.format) {
        (Some(name), _) => Some(Format::by_name(name).context("--arch")?),
        (None, Some(path)) => Some(Format::from_toml_file(path).context("--format")?),
        (None, None) => None,
    };
    let levels = match (&format, args.levels) {
        (Some(f), _) => u32::try_from(f.levels().len()).unwrap_or(u32::MAX),
        (None, Some(n)) => n,
        (None, None) => 1,
    };
    let input = EatInput {
        hit_ratio: parse_ratio(&args.hit_ratio).context("--hit-ratio")?,
        tlb_ns: parse_non_negative(&args.tlb_ns).context("--tlb-ns")?,
        mem_ns: parse_non_negative(&args.mem_ns).context("--mem-ns")?,
        levels,
    };
    let eat = input.compute()?;
    if args.json {
        let mut value = json!({
            "hit_ratio": input.hit_ratio,
            "tlb_ns": input.tlb_ns,
            "mem_ns": input.mem_ns,
            "levels": input.levels,
            "hit_ns": eat.hit_ns,
            "miss_ns": eat.miss_ns,
            "miss_mem_accesses": eat.miss_mem_accesses,
            "eat_ns": eat.eat_ns,
            "slowdown": eat.slowdown,
        });
        if let Some(f) = &format {
            value["arch"] = json!(f.name());
        }
        writeln!(out, "{}", crate::output::json_pretty(&value)?)?;
        return Ok(());
    }
    let f = |v: f64| float(v, 3);
    let a = input.hit_ratio;
    let rows = [
        (
            "TLB hit".to_owned(),
            format!("{} ns", f(eat.hit_ns)),
            format!(
                "TLB search + 1 memory access = {} + {}",
                f(input.tlb_ns),
                f(input.mem_ns)
            ),
        ),
        (
            "TLB miss".to_owned(),
            format!("{} ns", f(eat.miss_ns)),
            format!(
                "TLB search + (levels + 1) memory accesses = {} + {} x {}",
                f(input.tlb_ns),
                eat.miss_mem_accesses,
                f(input.mem_ns)
            ),
        ),
        (
            "effective access time".to_owned(),
            format!("{} ns", f(eat.eat_ns)),
            format!(
                "a x hit + (1 - a) x miss = {} x {} + {} x {}",
                float(a, 6),
                f(eat.hit_ns),
                float(1.0 - a, 6),
                f(eat.miss_ns)
            ),
        ),
        (
            "slowdown".to_owned(),
            format!("{}x", f(eat.slowdown)),
            format!(
                "EAT / memory access = {} / {}",
                f(eat.eat_ns),
                f(input.mem_ns)
            ),
        ),
    ];
    let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let arch = format
        .as_ref()
        .map_or(String::new(), |f| format!(" ({})", f.name()));
    writeln!(
        out,
        "Effective access time: TLB hit ratio {}, {}-level page table{arch} ({} memory accesses on a miss)\n",
        float(a, 6),
        input.levels,
        eat.miss_mem_accesses
    )?;
    for (name, value, why) in rows {
        writeln!(out, "  {name:<name_w$}  {value:<value_w$}  {why}")?;
    }
    Ok(())
}
