//! The human rendering of a `vmsim calc` report: aligned sections of
//! `name  value  formula` rows, so a student sees where each number comes from.

use std::fmt::Write as _;

use vmsim::calc::Geometry;

use super::Report;
use super::units::{bytes, count, float, group, size};

/// A titled block of rows, printed with aligned columns.
struct Section {
    title: String,
    rows: Vec<[String; 3]>,
}

impl Section {
    fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, name: impl Into<String>, value: impl Into<String>, why: impl Into<String>) {
        self.rows.push([name.into(), value.into(), why.into()]);
    }

    fn write(&self, out: &mut String) {
        let name_w = self.rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
        let value_w = self
            .rows
            .iter()
            .map(|r| r[1].chars().count())
            .max()
            .unwrap_or(0);
        let _ = writeln!(out, "{}", self.title);
        for [name, value, why] in &self.rows {
            let line = format!("  {name:<name_w$}  {value:<value_w$}  {why}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push('\n');
    }
}

/// A grid with a header row, columns right-aligned except the first.
fn grid(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (c, cell) in cells.iter().enumerate() {
            let w = widths[c];
            if c == 0 {
                let _ = write!(s, " {cell:<w$}");
            } else {
                let _ = write!(s, "  {cell:>w$}");
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// Level names, root first: `1 (root)`, `2`, `3 (leaf)`.
fn level_name(i: usize, levels: usize) -> String {
    if levels == 1 {
        format!("{} (root, leaf)", i + 1)
    } else if i == 0 {
        "1 (root)".to_owned()
    } else if i + 1 == levels {
        format!("{} (leaf)", i + 1)
    } else {
        (i + 1).to_string()
    }
}

/// The level name with the format's table name when there is a format:
/// `1 (root) PML4`.
fn level_label(r: &Report, i: usize, levels: usize) -> String {
    match &r.arch {
        Some(f) if f.levels().len() == levels => {
            format!("{} {}", level_name(i, levels), f.table_name(i))
        }
        _ => level_name(i, levels),
    }
}

/// Level bits as `9+9+9`.
fn plus(bits: &[u32]) -> String {
    bits.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// The address bits `hi..lo` a level indexes.
fn bit_range(shift: u32, bits: u32) -> String {
    format!("{}..{}", shift + bits - 1, shift)
}

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let g = &r.geometry;
    let mut out = String::new();
    let arch = r
        .arch
        .as_ref()
        .map_or(String::new(), |a| format!(" ({})", a.name()));
    let _ = writeln!(
        out,
        "Page table{arch}: {}-bit virtual addresses, {} pages, {}-byte entries\n",
        g.va_bits(),
        size(u128::from(g.page_size().bytes())),
        g.pte_bytes()
    );
    flat(&mut out, r);
    fit(&mut out, r);
    phys(&mut out, g);
    levels(&mut out, r);
    sparse(&mut out, r);
    compares(&mut out, r);
    split(&mut out, r);
    scan(&mut out, r);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn flat(out: &mut String, r: &Report) {
    let g = &r.geometry;
    let mut s = Section::new("Address space and flat (one-level) table");
    s.row(
        "virtual address space",
        bytes(g.address_space_bytes()),
        format!("2^va_bits = 2^{}", g.va_bits()),
    );
    s.row(
        "offset bits",
        g.offset_bits().to_string(),
        format!("log2(page size) = log2({})", g.page_size().bytes()),
    );
    s.row(
        "page-number (VPN) bits",
        g.vpn_bits().to_string(),
        format!(
            "va bits - offset bits = {} - {}",
            g.va_bits(),
            g.offset_bits()
        ),
    );
    s.row(
        "flat table entries",
        count(g.flat_entries()),
        format!("one entry per virtual page = 2^{}", g.vpn_bits()),
    );
    s.row(
        "flat table size",
        bytes(g.flat_bytes()),
        format!(
            "entries x entry size = {} x {} B",
            short_count(g.flat_entries()),
            g.pte_bytes()
        ),
    );
    if let Some((n, total)) = r.processes {
        s.row(
            format!("flat tables of {} processes", group(n.into())),
            bytes(total),
            format!(
                "one table per process = {} x {}",
                group(n.into()),
                size(g.flat_bytes())
            ),
        );
    }
    s.write(out);
}

/// `2^20` for a power of two from 1024 up, else the grouped number.
fn short_count(v: u128) -> String {
    match super::units::log2_exact(v) {
        Some(n) if n >= 10 => format!("2^{n}"),
        _ => group(v),
    }
}

fn fit(out: &mut String, r: &Report) {
    let g = &r.geometry;
    let mut s = Section::new("Tables that fit in one page");
    s.row(
        "entries per table page",
        group(g.entries_per_page().into()),
        format!(
            "page size / entry size = {} / {}",
            g.page_size().bytes(),
            g.pte_bytes()
        ),
    );
    match &r.fit {
        Ok((index, levels, bits)) => {
            s.row(
                "index bits per level",
                index.to_string(),
                format!(
                    "log2(entries per table page) = log2({})",
                    g.entries_per_page()
                ),
            );
            let split = if *levels > 1 && bits.first() != bits.last() {
                format!(
                    " ({}, root first; the root takes the remainder)",
                    plus(bits)
                )
            } else if *levels > 0 {
                format!(" ({})", plus(bits))
            } else {
                String::new()
            };
            s.row(
                "levels needed",
                format!("{levels}{split}"),
                format!(
                    "ceil(VPN bits / index bits) = ceil({} / {index})",
                    g.vpn_bits()
                ),
            );
        }
        Err(err) => s.row("levels needed", "none", err.to_string()),
    }
    s.write(out);
}

fn phys(out: &mut String, g: &Geometry) {
    let Some(p) = g.phys() else { return };
    let mut s = Section::new("Physical addresses");
    s.row(
        "physical address space",
        bytes(p.phys_bytes),
        format!("2^pa_bits = 2^{}", p.pa_bits),
    );
    s.row(
        "frame-number bits",
        p.pfn_bits.to_string(),
        format!(
            "pa bits - offset bits = {} - {}",
            p.pa_bits,
            g.offset_bits()
        ),
    );
    s.row("frames", count(p.frames), format!("2^{}", p.pfn_bits));
    s.row(
        "entry bits beyond the frame number",
        p.pte_spare_bits.to_string(),
        format!(
            "entry bits - frame-number bits = {} - {} (flags, reserved)",
            g.pte_bytes() * 8,
            p.pfn_bits
        ),
    );
    s.write(out);
}

fn levels(out: &mut String, r: &Report) {
    let g = &r.geometry;
    let levels = g.levels();
    if levels.is_empty() {
        return;
    }
    let _ = writeln!(out, "Levels {} (root first)", plus(g.level_bits()));
    let rows: Vec<Vec<String>> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                level_label(r, i, levels.len()),
                l.index_bits.to_string(),
                bit_range(l.index_shift, l.index_bits),
                group(l.entries_per_table),
                size(l.table_bytes),
                size(l.entry_covers),
                size(l.table_covers),
                count(l.tables_full),
            ]
        })
        .collect();
    grid(
        out,
        &[
            "level",
            "index bits",
            "VA bits",
            "entries/table",
            "table size",
            "1 entry maps",
            "1 table maps",
            "tables if all used",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "  one entry maps 2^(offset bits + index bits of the levels below); one table maps its entries x that\n"
    );
}

fn sparse(out: &mut String, r: &Report) {
    let Some(sp) = &r.sparse else { return };
    let l = &sp.layout;
    let regions: Vec<String> = sp
        .regions
        .iter()
        .map(|g| format!("{:#x}-{:#x} ({})", g.start, g.end, size(g.end - g.start)))
        .collect();
    let _ = writeln!(out, "Used regions: {}", regions.join(", "));
    let _ = writeln!(
        out,
        "  {} used in {} pages; a table exists iff some used address maps through it",
        size(l.used_bytes),
        group(l.used_pages)
    );
    if sp.level_bits_from_fit {
        let _ = writeln!(
            out,
            "  counted with the page-fitting levels {} (no --level-bits given)",
            plus(&sp.level_bits)
        );
    }
    let rows: Vec<Vec<String>> = l
        .levels
        .iter()
        .enumerate()
        .map(|(i, lv)| {
            vec![
                level_label(r, i, l.levels.len()),
                format!("{} of {}", group(lv.tables), group(lv.tables_full)),
                group(lv.entries),
                group(lv.valid_entries),
                size(lv.bytes),
            ]
        })
        .collect();
    grid(
        out,
        &["level", "tables", "entries", "valid entries", "size"],
        &rows,
    );
    out.push('\n');
    let leaf = l.leaf_table_entries();
    let total = l.total_entries();
    let mut s = Section::new("Sparse table vs flat table");
    s.row(
        "leaf table entries",
        group(leaf),
        format!(
            "leaf tables x entries per table = {} x {}",
            group(l.leaf_tables()),
            group(l.levels.last().map_or(0, |lv| 1u128 << lv.index_bits))
        ),
    );
    s.row("flat table entries", group(l.flat_entries), "");
    s.row(
        "saving (leaf tables only)",
        format!("{}%", float(l.leaf_saving_percent(), 4)),
        format!("1 - {} / {}", group(leaf), group(l.flat_entries)),
    );
    s.row(
        "entries of all levels",
        group(total),
        l.levels
            .iter()
            .map(|lv| group(lv.entries))
            .collect::<Vec<_>>()
            .join(" + "),
    );
    s.row(
        "saving (all levels)",
        format!("{}%", float(l.total_saving_percent(), 4)),
        format!(
            "1 - {} / {}{}",
            group(total),
            group(l.flat_entries),
            if total > l.flat_entries {
                " (negative: the tree is larger than the flat table)"
            } else {
                ""
            }
        ),
    );
    s.row(
        "bytes of all tables",
        bytes(l.total_bytes()),
        format!("vs {} flat", size(l.flat_bytes)),
    );
    s.write(out);
}

fn compares(out: &mut String, r: &Report) {
    let g = &r.geometry;
    for c in &r.compares {
        let mut s = Section::new(format!(
            "Compared with {} pages (instead of {})",
            size(c.page_size.bytes().into()),
            size(g.page_size().bytes().into())
        ));
        s.row(
            "offset bits",
            c.offset_bits.to_string(),
            format!("log2({})", size(c.page_size.bytes().into())),
        );
        s.row(
            "flat table entries",
            count(c.flat_entries),
            format!(
                "2^(va bits - offset bits) = 2^({} - {})",
                g.va_bits(),
                c.offset_bits
            ),
        );
        s.row(
            "flat table size",
            bytes(c.flat_bytes),
            format!("entries x {} B", g.pte_bytes()),
        );
        let why = format!(
            "2^(new offset bits - old offset bits) = 2^({} - {})",
            c.offset_bits,
            g.offset_bits()
        );
        match (c.reduction_factor(), c.growth_factor()) {
            (Some(f), _) => s.row(
                "reduction",
                format!("{}x fewer entries{}", group(f), pow(f)),
                why,
            ),
            (None, Some(f)) => s.row(
                "growth",
                format!("{}x more entries{}", group(f), pow(f)),
                why,
            ),
            (None, None) => {}
        }
        s.write(out);
    }
}

/// ` (2^18)` for a power of two from 1024 up, else nothing.
fn pow(f: u128) -> String {
    match super::units::log2_exact(f) {
        Some(n) if n >= 10 => format!(" (2^{n})"),
        _ => String::new(),
    }
}

fn split(out: &mut String, r: &Report) {
    let Some((text, addr, sp)) = &r.split else {
        return;
    };
    let g = &r.geometry;
    let mut s = Section::new(format!("Address {text}"));
    if *addr != sp.address {
        s.row(
            "canonical address",
            format!("{addr:#x}"),
            format!(
                "bits 63..{} copy bit {}; the table indices come from the low {} bits",
                g.va_bits(),
                g.va_bits() - 1,
                g.va_bits()
            ),
        );
    }
    let binary = if g.va_bits() <= 16 {
        format!(" = {:#b}", sp.address)
    } else {
        String::new()
    };
    s.row(
        "address",
        format!("{} = {:#x}{binary}", sp.address, sp.address),
        format!("in a {}-bit address space", g.va_bits()),
    );
    s.row(
        "VPN",
        format!("{} = {:#x}", sp.vpn, sp.vpn),
        format!(
            "address >> offset bits = {} >> {}",
            sp.address,
            g.offset_bits()
        ),
    );
    s.row(
        "offset",
        format!("{} = {:#x}", sp.offset, sp.offset),
        format!(
            "address & (page size - 1) = {} & {}",
            sp.address,
            g.page_size().bytes() - 1
        ),
    );
    let levels = g.levels();
    for (i, (index, l)) in sp.indices.iter().zip(&levels).enumerate() {
        s.row(
            match &r.arch {
                Some(f) => f.index_name(i),
                None => format!("level {} index", level_name(i, levels.len())),
            },
            format!("{index} = {index:#x}"),
            format!("address bits {}", bit_range(l.index_shift, l.index_bits)),
        );
    }
    s.write(out);
}

fn scan(out: &mut String, r: &Report) {
    let Some((elem, sc)) = &r.scan else { return };
    let page = r.geometry.page_size().bytes();
    let mut s = Section::new(format!(
        "Sequential scan of {elem}-byte elements (a TLB that keeps the current page)"
    ));
    s.row(
        "elements per page",
        group(sc.elements_per_page.into()),
        format!("page size / element size = {page} / {elem}"),
    );
    s.row(
        "TLB misses per page",
        sc.misses_per_page.to_string(),
        "the first element of each page",
    );
    s.row(
        "TLB hits per page",
        group(sc.hits_per_page.into()),
        "every later element of the page",
    );
    s.row(
        "TLB hit ratio",
        float(sc.hit_ratio(), 6),
        format!("{} / {}", sc.hits_per_page, sc.elements_per_page),
    );
    s.write(out);
}
