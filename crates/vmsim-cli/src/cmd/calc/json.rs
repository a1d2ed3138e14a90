//! The JSON rendering of a `vmsim calc` report: one object with the stable
//! snake_case keys documented in `vmsim calc --help`.

use serde_json::{Map, Value, json};

use super::Report;
use super::units::json_u128 as n;

/// Renders the whole report as one JSON object.
pub fn render(r: &Report) -> Value {
    let g = &r.geometry;
    let mut o = Map::new();
    if let Some(arch) = &r.arch {
        o.insert("arch".into(), json!(arch.name()));
    }
    o.insert("va_bits".into(), json!(g.va_bits()));
    o.insert("page_size".into(), json!(g.page_size().bytes()));
    o.insert("pte_size".into(), json!(g.pte_bytes()));
    o.insert("offset_bits".into(), json!(g.offset_bits()));
    o.insert("vpn_bits".into(), json!(g.vpn_bits()));
    o.insert("address_space_bytes".into(), n(g.address_space_bytes()));
    o.insert("entries".into(), n(g.flat_entries()));
    o.insert("bytes".into(), n(g.flat_bytes()));
    o.insert("entries_per_table".into(), json!(g.entries_per_page()));
    match &r.fit {
        Ok((index, levels, bits)) => {
            o.insert("index_bits_per_table".into(), json!(index));
            o.insert("levels".into(), json!(levels));
            o.insert("fit_level_bits".into(), json!(bits));
        }
        Err(_) => {
            o.insert("index_bits_per_table".into(), Value::Null);
            o.insert("levels".into(), Value::Null);
            o.insert("fit_level_bits".into(), Value::Null);
        }
    }
    o.insert("level_bits".into(), json!(g.level_bits()));
    let detail: Vec<Value> = g
        .levels()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = json!({
                "level": i + 1,
                "index_bits": l.index_bits,
                "index_shift": l.index_shift,
                "entries_per_table": n(l.entries_per_table),
                "table_bytes": n(l.table_bytes),
                "entry_covers_bytes": n(l.entry_covers),
                "table_covers_bytes": n(l.table_covers),
                "tables_full": n(l.tables_full),
            });
            if let Some(f) = &r.arch {
                v["table_name"] = json!(f.table_name(i));
            }
            v
        })
        .collect();
    o.insert("level_detail".into(), Value::Array(detail));
    if let Some(p) = g.phys() {
        o.insert("pa_bits".into(), json!(p.pa_bits));
        o.insert("phys_bytes".into(), n(p.phys_bytes));
        o.insert("pfn_bits".into(), json!(p.pfn_bits));
        o.insert("frames".into(), n(p.frames));
        o.insert("pte_spare_bits".into(), json!(p.pte_spare_bits));
    }
    if let Some((p, total)) = r.processes {
        o.insert("processes".into(), json!(p));
        o.insert("bytes_all_processes".into(), n(total));
    }
    if let Some(sp) = &r.sparse {
        let l = &sp.layout;
        let regions: Vec<Value> = sp
            .regions
            .iter()
            .map(|g| json!({ "start": n(g.start), "end": n(g.end) }))
            .collect();
        o.insert("used_regions".into(), Value::Array(regions));
        o.insert("used_bytes".into(), n(l.used_bytes));
        o.insert("used_pages".into(), n(l.used_pages));
        o.insert("used_level_bits".into(), json!(sp.level_bits));
        let levels: Vec<Value> = l
            .levels
            .iter()
            .enumerate()
            .map(|(i, lv)| {
                json!({
                    "level": i + 1,
                    "index_bits": lv.index_bits,
                    "tables": n(lv.tables),
                    "entries": n(lv.entries),
                    "valid_entries": n(lv.valid_entries),
                    "bytes": n(lv.bytes),
                    "tables_full": n(lv.tables_full),
                })
            })
            .collect();
        o.insert("used_levels".into(), Value::Array(levels));
        o.insert("leaf_tables".into(), n(l.leaf_tables()));
        o.insert("leaf_table_entries".into(), n(l.leaf_table_entries()));
        o.insert("table_entries".into(), n(l.total_entries()));
        o.insert("table_bytes".into(), n(l.total_bytes()));
        o.insert("leaf_saving_percent".into(), json!(l.leaf_saving_percent()));
        o.insert(
            "total_saving_percent".into(),
            json!(l.total_saving_percent()),
        );
    }
    if !r.compares.is_empty() {
        let compares: Vec<Value> = r
            .compares
            .iter()
            .map(|c| {
                let factor = match c.reduction_factor() {
                    Some(f) => n(f),
                    None => json!(2f64.powi(c.log2_reduction)),
                };
                json!({
                    "page_size": c.page_size.bytes(),
                    "offset_bits": c.offset_bits,
                    "entries": n(c.flat_entries),
                    "bytes": n(c.flat_bytes),
                    "log2_reduction": c.log2_reduction,
                    "reduction_factor": factor,
                })
            })
            .collect();
        o.insert("compare".into(), Value::Array(compares));
    }
    if let Some((_, addr, sp)) = &r.split {
        o.insert(
            "address".into(),
            json!({
                "address": addr,
                "vpn": sp.vpn,
                "offset": sp.offset,
                "indices": sp.indices,
            }),
        );
    }
    if let Some((elem, sc)) = &r.scan {
        o.insert(
            "scan".into(),
            json!({
                "element_size": elem,
                "elements_per_page": sc.elements_per_page,
                "tlb_misses_per_page": sc.misses_per_page,
                "tlb_hits_per_page": sc.hits_per_page,
                "hit_ratio": sc.hit_ratio(),
            }),
        );
    }
    Value::Object(o)
}
