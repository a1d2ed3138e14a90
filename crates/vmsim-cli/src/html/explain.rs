//! The `vmsim explain --html` page's data: the explanation JSON plus what a
//! drawing needs beyond it: the format's geometry, each entry read split
//! into its fields ([`Format::entry_layout`]) and a few entries of each
//! table around the one read, taken from the memory image.

use serde_json::{Value, json};
use vmsim::addr::PhysAddr;
use vmsim::paging::{Canonical, Entry, Format};
use vmsim::phys::PhysMem;

/// Entries shown on each side of the one a walk read.
const WINDOW: u64 = 2;

/// The format as the page draws it.
#[must_use]
pub fn format_json(fmt: &Format) -> Value {
    let levels: Vec<Value> = fmt
        .levels()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "number": l.number,
                "table_name": fmt.table_name(i),
                "index_name": fmt.index_name(i),
                "shift": l.shift,
                "bits": l.bits,
                "leaf_page_size": l.leaf.map(|s| s.bytes()),
            })
        })
        .collect();
    json!({
        "name": fmt.name(),
        "va_bits": fmt.va_bits(),
        "pa_bits": fmt.pa_bits(),
        "page_size": fmt.page_size().bytes(),
        "entry_bytes": fmt.entry_bytes(),
        "canonical": match fmt.canonical() {
            Canonical::SignExtend => "sign-extend",
            Canonical::ZeroExtend => "zero-extend",
        },
        "levels": levels,
    })
}

fn parse_hex(v: &Value) -> Option<u64> {
    let s = v.as_str()?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

fn kind_name(e: Entry) -> &'static str {
    match e {
        Entry::Invalid => "invalid",
        Entry::Reserved(_) => "reserved",
        Entry::Table { .. } => "table",
        Entry::Leaf { .. } => "leaf",
    }
}

/// Per walk step of a paging explanation (`report["walk"]`): the entry's
/// fields and the neighbouring entries of its table.
#[must_use]
pub fn walk_detail(fmt: &Format, mem: Option<&PhysMem>, report: &Value) -> Value {
    let Some(steps) = report.get("walk").and_then(Value::as_array) else {
        return Value::Null;
    };
    let width = fmt.entry_bytes();
    let digits = (width * 2) as usize;
    let levels = fmt.levels();
    let detail: Vec<Value> = steps
        .iter()
        .map(|s| {
            let level = s.get("level").and_then(Value::as_u64).unwrap_or(0);
            let idx = levels
                .iter()
                .position(|l| u64::from(l.number) == level)
                .unwrap_or(0);
            let raw = parse_hex(&s["raw"]).unwrap_or(0);
            let layout = fmt.entry_layout(idx, raw);
            let mut window = Vec::new();
            if let (Some(mem), Some(table), Some(index)) = (
                mem,
                parse_hex(&s["table"]),
                s.get("index").and_then(Value::as_u64),
            ) {
                let n = 1u64 << levels[idx].bits;
                let lo = index.saturating_sub(WINDOW);
                let hi = (index + WINDOW).min(n - 1);
                for i in lo..=hi {
                    let addr = table + i * u64::from(width);
                    let Some(raw) = PhysAddr::new(addr)
                        .ok()
                        .and_then(|a| mem.read_le(a, width).ok())
                    else {
                        continue;
                    };
                    window.push(json!({
                        "index": i,
                        "addr": format!("{addr:#x}"),
                        "raw": format!("{raw:#0w$x}", w = digits + 2),
                        "kind": kind_name(fmt.decode(idx, raw)),
                        "bits": fmt.bit_names(idx, raw),
                    }));
                }
                return json!({"layout": layout, "window": window, "entries": n});
            }
            json!({"layout": layout, "window": window, "entries": 1u64 << levels[idx].bits})
        })
        .collect();
    Value::Array(detail)
}

/// The whole page data for a paging explanation (`mode` = `paging`), a
/// segmented one (`segment`, `book`) whose `paging` part, if any, was made
/// with `fmt` and `mem`.
#[must_use]
pub fn page_data(mode: &str, fmt: &Format, mem: Option<&PhysMem>, report: Value) -> Value {
    let paging = if mode == "paging" {
        Some(&report)
    } else {
        report.get("paging").filter(|p| !p.is_null())
    };
    let walk = paging.map_or(Value::Null, |p| walk_detail(fmt, mem, p));
    json!({
        "mode": mode,
        "format": format_json(fmt),
        "walk_detail": walk,
        "report": report,
    })
}

/// The page's title.
#[must_use]
pub fn title(mode: &str, address: &str) -> String {
    match mode {
        "paging" => format!("vmsim explain: translating {address}"),
        _ => format!("vmsim explain: segmentation of {address}"),
    }
}
