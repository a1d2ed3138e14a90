//! The `vmsim run --html` page's data: the report (its charts are drawn
//! from `report.timeline`) and a stepper over the first references.
//!
//! The steps come from the engine without a line of extra code on its hot
//! path: the first `--trace-steps N` references are run one at a time with
//! [`Simulation::run_until`] (which stops between any two references and
//! changes nothing, as checkpoints rely on), the [`Observer::ran`] hook
//! names the reference that ran (pid, address, kind), and what it did is
//! read from the engine's state before and after it: the TLB's per-level
//! counters (the probe of each level), the walker's and the fault
//! counters, the kernel's fault resolutions and paging counters (demand
//! zero, copy-on-write, eviction, swap-in), the entries of the walk (their
//! bits before and after, so the A/D updates show), the frame table's
//! changes (use and reference counts) and the replacement policy's order.
//! The rest of the run then goes on at full speed; its report is the one a
//! run without `--html` prints.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use vmsim::addr::{Pfn, PhysAddr, Pid, VirtAddr};
use vmsim::kernel::FrameMeta;
use vmsim::paging::{Entry, TableBase, record_walk};
use vmsim::sim::{Observer, Progress, SimError, Simulation};
use vmsim_trace::Access;

/// Default `--trace-steps`.
pub const DEFAULT_STEPS: u64 = 200;

/// Most frames listed as changed in one step, and most pages of the
/// policy's order shown (the page stays small for big memories).
const MAX_FRAME_CHANGES: usize = 64;
const MAX_POLICY_PAGES: usize = 48;
/// Most frames in use drawn in the initial frame map.
const MAX_INITIAL_FRAMES: usize = 2048;

/// Passes progress on and remembers the last reference that ran.
struct Watch<'a, O: Observer> {
    inner: &'a mut O,
    last: Option<(Pid, u64, Access)>,
}

impl<O: Observer> Observer for Watch<'_, O> {
    fn progress(&mut self, references: u64) {
        self.inner.progress(references);
    }

    fn ran(&mut self, pid: Pid, first: u64, refs: &[Access]) {
        if let Some(a) = refs.last() {
            self.last = Some((pid, first + refs.len() as u64 - 1, *a));
        }
        self.inner.ran(pid, first, refs);
    }
}

/// What is compared across one reference.
struct Snapshot {
    tlb: Vec<(u64, u64, u64)>,
    walk_cache: (u64, u64),
    walker: Value,
    walk_refs: u64,
    ad_writes: u64,
    faults: Value,
    kernel: Value,
    paging: Value,
    frames: Vec<FrameMeta>,
    /// The bytes of every page-table frame, by frame number (to show an
    /// entry's bits before the reference changed them).
    tables: BTreeMap<u64, Vec<u8>>,
}

fn frame_bytes(sim: &Simulation) -> u64 {
    sim.kernel().frames().addr_of(Pfn::new(1)).as_u64()
}

fn snapshot(sim: &Simulation) -> Snapshot {
    let c = sim.mmu().counters();
    let k = sim.kernel();
    let frames: Vec<FrameMeta> = k.frames().all().iter().collect();
    let fb = frame_bytes(sim);
    let mut tables = BTreeMap::new();
    for (pfn, m) in frames.iter().enumerate() {
        if m.use_ == vmsim::kernel::FrameUse::Table {
            let mut buf = vec![0u8; fb as usize];
            let base = PhysAddr::new_unchecked(pfn as u64 * fb);
            if sim.memory().read(base, &mut buf).is_ok() {
                tables.insert(pfn as u64, buf);
            }
        }
    }
    Snapshot {
        tlb: c
            .tlb
            .levels
            .iter()
            .map(|l| (l.lookups, l.hit_count(), l.misses))
            .collect(),
        walk_cache: (c.walk_cache.lookups, c.walk_cache.hits()),
        walker: json!({
            "walks": c.walk.walks,
            "dirty_walks": c.walk.dirty_walks,
            "faulted": c.walk.faulted,
            "completed": c.walk.completed,
        }),
        walk_refs: c.walk.refs(),
        ad_writes: c.walk.ad_writes(),
        faults: serde_json::to_value(&c.faults).unwrap_or(Value::Null),
        kernel: serde_json::to_value(k.stats()).unwrap_or(Value::Null),
        paging: serde_json::to_value(k.paging_stats()).unwrap_or(Value::Null),
        frames,
        tables,
    }
}

/// The numeric fields of `after` that differ from `before`, as differences.
fn diff(before: &Value, after: &Value) -> Value {
    let mut out = Map::new();
    if let (Value::Object(b), Value::Object(a)) = (before, after) {
        for (k, va) in a {
            if let (Some(x), Some(y)) = (b.get(k).and_then(Value::as_u64), va.as_u64())
                && x != y
            {
                out.insert(k.clone(), json!(y as i64 - x as i64));
            }
        }
    }
    Value::Object(out)
}

fn use_name(m: &FrameMeta) -> &'static str {
    use vmsim::kernel::FrameUse;
    match m.use_ {
        FrameUse::Free => "free",
        FrameUse::Table => "table",
        FrameUse::Data => "data",
        FrameUse::DataTail => "data-tail",
        FrameUse::Slab => "slab",
    }
}

fn entry_kind(e: Entry) -> &'static str {
    match e {
        Entry::Invalid => "invalid",
        Entry::Reserved(_) => "reserved",
        Entry::Table { .. } => "table",
        Entry::Leaf { .. } => "leaf",
    }
}

fn mappings(sim: &Simulation, pfn: u64) -> Vec<Value> {
    sim.kernel()
        .frame_mappings(Pfn::new(pfn))
        .into_iter()
        .take(4)
        .map(|(p, va)| json!([p.as_u32(), format!("{:#x}", va.as_u64())]))
        .collect()
}

/// The walk of `va` in `pid`'s tables after the reference, each entry with
/// its bits before (from `before`'s copy of the table frames) and after.
fn walk_json(sim: &Simulation, before: &Snapshot, pid: Pid, va: VirtAddr) -> (Value, Value) {
    let k = sim.kernel();
    if !matches!(k.table_base(), TableBase::Radix) {
        return (Value::Null, Value::Null);
    }
    let Ok((root, _)) = k.context(pid) else {
        return (Value::Null, Value::Null);
    };
    let fmt = k.format();
    let fb = frame_bytes(sim);
    let width = fmt.entry_bytes();
    let digits = (width * 2) as usize + 2;
    let w = record_walk(fmt, sim.memory(), root, va);
    let steps: Vec<Value> = w
        .steps
        .iter()
        .map(|s| {
            let addr = s.entry_addr.as_u64();
            let raw_before = before.tables.get(&(addr / fb)).map_or(0, |bytes| {
                let off = (addr % fb) as usize;
                let mut v = 0u64;
                for (i, b) in bytes[off..off + width as usize].iter().enumerate() {
                    v |= u64::from(*b) << (8 * i);
                }
                v
            });
            json!({
                "level": s.level,
                "table_name": fmt.table_name(s.idx),
                "index_name": fmt.index_name(s.idx),
                "table": format!("{:#x}", s.table.as_u64()),
                "index": s.index,
                "entry_addr": format!("{addr:#x}"),
                "raw_before": format!("{raw_before:#0digits$x}"),
                "raw_after": format!("{:#0digits$x}", s.raw),
                "bits_before": fmt.bit_names(s.idx, raw_before),
                "bits_after": fmt.bit_names(s.idx, s.raw),
                "kind": entry_kind(s.entry),
                "new_table": !before.tables.contains_key(&(addr / fb)),
            })
        })
        .collect();
    let translation = match &w.result {
        Ok(t) => json!({
            "pa": format!("{:#x}", t.pa.as_u64()),
            "frame": format!("{:#x}", t.frame.as_u64()),
            "pfn": t.frame.as_u64() / fb,
            "page_size": t.size.bytes(),
        }),
        Err(_) => Value::Null,
    };
    (Value::Array(steps), translation)
}

fn policy_json(sim: &Simulation) -> Value {
    let view = sim.kernel().policy_view();
    let pages: Vec<Value> = view
        .iter()
        .take(MAX_POLICY_PAGES)
        .map(|(pfn, note)| {
            let mut v = super::policy::note_json(note);
            if let Value::Object(m) = &mut v {
                m.insert("pfn".into(), json!(pfn.as_u64()));
                m.insert("maps".into(), Value::Array(mappings(sim, pfn.as_u64())));
            }
            v
        })
        .collect();
    json!({
        "count": view.len(),
        "pages": pages,
    })
}

fn step_json(
    sim: &Simulation,
    before: &Snapshot,
    after: &Snapshot,
    ran: Option<(Pid, u64, Access)>,
    n: u64,
) -> Value {
    let tlb: Vec<Value> = after
        .tlb
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let b = before.tlb.get(i).copied().unwrap_or_default();
            json!({
                "level": i,
                "lookups": a.0 - b.0,
                "hits": a.1 - b.1,
                "misses": a.2 - b.2,
            })
        })
        .collect();
    let mut changes = Vec::new();
    let mut changed = 0usize;
    for (pfn, (a, b)) in after.frames.iter().zip(&before.frames).enumerate() {
        if a != b {
            changed += 1;
            if changes.len() < MAX_FRAME_CHANGES {
                changes.push(json!({
                    "pfn": pfn,
                    "use": use_name(a),
                    "refs": a.refs,
                    "was_use": use_name(b),
                    "was_refs": b.refs,
                    "maps": mappings(sim, pfn as u64),
                }));
            }
        }
    }
    let (walk, translation, access) = match ran {
        Some((pid, _, a)) => {
            let (w, t) = walk_json(sim, before, pid, VirtAddr::new(a.va));
            (w, t, Some((pid, a)))
        }
        None => (Value::Null, Value::Null, None),
    };
    let resident: BTreeMap<String, u64> = sim
        .kernel()
        .processes()
        .filter_map(|p| {
            let s = sim.kernel().space_of(p.pid).ok()?;
            Some((p.pid.as_u32().to_string(), s.resident))
        })
        .collect();
    json!({
        "n": n,
        "pid": access.map(|(p, _)| p.as_u32()),
        "process": access.and_then(|(p, _)| sim.process_name(p)),
        "kind": access.map(|(_, a)| format!("{:?}", a.kind).to_lowercase()),
        "va": access.map(|(_, a)| format!("{:#x}", a.va)),
        "size": access.map(|(_, a)| a.size),
        "killed": access.is_none(),
        "tlb": tlb,
        "walk_cache": {
            "lookups": after.walk_cache.0 - before.walk_cache.0,
            "hits": after.walk_cache.1 - before.walk_cache.1,
        },
        "walker": diff(&before.walker, &after.walker),
        "walk_refs": after.walk_refs - before.walk_refs,
        "ad_writes": after.ad_writes - before.ad_writes,
        "mmu_faults": diff(&before.faults, &after.faults),
        "kernel": diff(&before.kernel, &after.kernel),
        "paging": diff(&before.paging, &after.paging),
        "walk": walk,
        "translation": translation,
        "frames": changes,
        "frames_changed": changed,
        "frames_in_use": sim.kernel().frames_in_use(),
        "resident": resident,
        "policy": policy_json(sim),
    })
}

/// Runs the first `n` references one at a time and records each; the run
/// is left stopped after them (continue it with `run_until`).
///
/// # Errors
/// The simulation's own errors.
pub fn record_steps(
    sim: &mut Simulation,
    n: u64,
    observer: &mut impl Observer,
) -> Result<Value, SimError> {
    let k = sim.kernel();
    let frames = k.frames().all();
    let initial: Vec<Value> = frames
        .iter()
        .enumerate()
        .filter(|(_, m)| m.use_ != vmsim::kernel::FrameUse::Free)
        .take(MAX_INITIAL_FRAMES)
        .map(|(pfn, m)| json!({"pfn": pfn, "use": use_name(&m), "refs": m.refs}))
        .collect();
    let mut out = json!({
        "initial_frames": initial,
        "total_frames": frames.len(),
        "frame_bytes": frame_bytes(sim),
        "policy": sim.config().kernel.policy,
        "structure": match k.table_base() {
            TableBase::Radix => "radix",
            TableBase::Inverted(_) => "inverted",
            TableBase::Hashed(_) => "hashed",
        },
        "format": super::explain::format_json(k.format()),
        "tlb_levels": sim.config().tlb.levels.iter().map(|l| {
            l.arrays.iter().map(|a| a.name.clone()).collect::<Vec<_>>().join(" + ")
        }).collect::<Vec<_>>(),
    });
    let mut steps = Vec::new();
    let mut before = snapshot(sim);
    for _ in 0..n {
        let at = sim.references();
        let mut watch = Watch {
            inner: observer,
            last: None,
        };
        let progress = sim.run_until(at + 1, &mut watch)?;
        let now = sim.references();
        if now == at {
            break;
        }
        let after = snapshot(sim);
        steps.push(step_json(sim, &before, &after, watch.last, now));
        before = after;
        if progress == Progress::Finished {
            break;
        }
    }
    out["steps"] = Value::Array(steps);
    Ok(out)
}

/// The whole page data: the report, the steps, the scenario's description.
///
/// # Errors
/// The report cannot be turned into JSON (it always can).
pub fn page_data(
    report: &vmsim::report::Report,
    mut steps: Value,
    scenario: &vmsim_trace::scenario::Scenario,
) -> anyhow::Result<Value> {
    let report = serde_json::to_value(report)?;
    if let Value::Object(m) = &mut steps {
        m.insert("report".into(), report);
        m.insert("description".into(), json!(scenario.description));
    }
    Ok(steps)
}

/// The page's title.
#[must_use]
pub fn title(report: &vmsim::report::Report) -> String {
    format!("vmsim run: {}", report.machine.description)
}
