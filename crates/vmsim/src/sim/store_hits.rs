//! Tests: the span loop's stores taken by a recent TLB hit
//! (`Simulation::span_store`, `Mmu::store_recent`) against the path before
//! it (every store through `span_reference` and `translate`), in whole
//! runs: the same report, the same checkpoint files byte for byte, in
//! every checkpoint mode and with every dirty-page tracker (the host's
//! dirty chunks, the D bits, soft-dirty write protection), and the same
//! host dirty chunks marked at the end. And the same for the loads and
//! fetches the span loop without recent hits (a first level shared by
//! both sides) answers with `Mmu::hit_shared`, whose touches are owed and
//! whose counts are kept per place until a settlement.

use std::path::Path;

use vmsim_trace::scenario::Scenario;

use crate::checkpoint::ChainWriter;
use crate::config::{ConfigBuilder, MachineSpec};
use crate::sim::Simulation;

fn config(sets: &[&str]) -> MachineSpec {
    let mut b = ConfigBuilder::preset(None).expect("preset");
    for s in sets {
        b = b.set(s).expect("set");
    }
    b.build().expect("config")
}

/// A report as JSON without the checkpoint records' host facts (which
/// file, in which directory).
fn figures(r: &crate::report::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("json");
    if let Some(recs) = v
        .get_mut("checkpoints")
        .and_then(|c| c.get_mut("records"))
        .and_then(|r| r.as_array_mut())
    {
        for rec in recs {
            if let Some(o) = rec.as_object_mut() {
                o.remove("file");
            }
        }
    }
    v
}

/// What a run leaves: its report's figures, the host's dirty chunks
/// marked at the end, and how many stores `store_recent` took.
struct Ran {
    report: serde_json::Value,
    marked: Vec<u64>,
    taken: u64,
}

/// Runs `scenario` on `cfg` with checkpoints written into `dir`, after
/// `set` (which turns a path off); `taken` counts both paths' hits.
fn run_with(
    cfg: &MachineSpec,
    scenario: &Scenario,
    dir: &Path,
    set: impl FnOnce(&mut Simulation),
) -> Ran {
    let mut w = ChainWriter::create(dir).expect("writer");
    let mut sim = Simulation::new(cfg.clone()).expect("machine");
    sim.start(scenario).expect("start");
    set(&mut sim);
    sim.advance(u64::MAX, &mut (), Some(&mut w)).expect("run");
    let marked = sim.mem.bitmap().marked();
    let taken = sim.m.mmu.tlb().stores_taken() + sim.m.mmu.shared_hits_taken;
    let report = sim.run_to_end(&mut (), Some(&mut w)).expect("end");
    w.finish().expect("files written");
    Ran {
        report: figures(&report),
        marked,
        taken,
    }
}

/// The files of `dir`, by name, with their bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

/// The inputs both tests run: a real lackey trace and a small synthetic
/// one with many stores.
fn inputs() -> [String; 2] {
    [
        format!(
            "{}/../vmsim-trace/tests/data/true.lackey.zst",
            env!("CARGO_MANIFEST_DIR")
        ),
        "synth:zipf,pages=300,refs=60K,write=0.4,seed=3".to_owned(),
    ]
}

/// Runs `scenario` on `cfg` twice, the path under test on and then off
/// (`off` turns it off), and asserts that it was taken and changed
/// nothing: reports, host dirty chunks, checkpoint files byte for byte.
fn assert_path_changes_nothing(
    cfg: &MachineSpec,
    scenario: &Scenario,
    what: &str,
    off: impl FnOnce(&mut Simulation),
) {
    let dirs = [(); 2].map(|()| tempfile::tempdir().expect("tempdir"));
    let on = run_with(cfg, scenario, dirs[0].path(), |_| {});
    let off = run_with(cfg, scenario, dirs[1].path(), off);
    assert!(on.taken > 1000, "{what}: the path was taken ({})", on.taken);
    assert_eq!(off.taken, 0, "{what}");
    assert_eq!(on.report, off.report, "{what}: reports");
    assert_eq!(on.marked, off.marked, "{what}: host dirty chunks");
    let (a, b) = (files(dirs[0].path()), files(dirs[1].path()));
    assert!(a.len() >= 3, "{what}: checkpoints written");
    assert_eq!(a.len(), b.len(), "{what}: files");
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb, "{what}");
        assert!(ba == bb, "{what}: {na} differs");
    }
}

#[test]
fn stores_taken_by_recent_hits_change_nothing() {
    let modes = [
        ["checkpoint.mode=pause", "checkpoint.tracker=host"],
        ["checkpoint.mode=pause", "checkpoint.tracker=dirty-bit"],
        ["checkpoint.mode=pause", "checkpoint.tracker=soft-dirty"],
        ["checkpoint.mode=write-protect", "checkpoint.tracker=both"],
        [
            "checkpoint.mode=write-protect",
            "checkpoint.tracker=soft-dirty",
        ],
    ];
    for input in inputs() {
        let scenario = Scenario::of_traces(&[input.as_str()]);
        for [mode, tracker] in modes {
            let cfg = config(&["checkpoint.every=15000", "memory.frames=256", mode, tracker]);
            let what = format!("{input} {mode} {tracker}");
            assert_path_changes_nothing(&cfg, &scenario, &what, |sim| {
                sim.m.mmu.store_hits_off = true;
            });
        }
    }
}

/// A first level shared by both sides: `Mmu::hit_shared` (loads and
/// fetches of the span loop without recent hits, rights not tested, the
/// first level's hits and `tick` counted per place until a settlement)
/// against `translate` for each, in whole runs with checkpoints in every
/// mode, a small fully associative level (many probes, fills and
/// settlements) and a large one.
#[test]
fn loads_taken_by_shared_hits_change_nothing() {
    let modes = [
        ["checkpoint.mode=pause", "checkpoint.tracker=host"],
        ["checkpoint.mode=pause", "checkpoint.tracker=dirty-bit"],
        ["checkpoint.mode=write-protect", "checkpoint.tracker=both"],
    ];
    for entries in [16, 256] {
        let tlb = format!(
            "[tlb]\nwalk_cache = []\n[[tlb.levels]]\nlatency = 1\n\
             [[tlb.levels.arrays]]\nname = \"fa\"\nholds = \"unified\"\n\
             entries = {entries}\nreplacement = \"lru\"\npage_sizes = [\"4KiB\"]\n"
        );
        for input in inputs() {
            let scenario = Scenario::of_traces(&[input.as_str()]);
            for [mode, tracker] in modes {
                let mut b = ConfigBuilder::preset(None)
                    .expect("preset")
                    .file(&tlb, "test")
                    .expect("tlb");
                for s in ["checkpoint.every=15000", "memory.frames=256", mode, tracker] {
                    b = b.set(s).expect("set");
                }
                let cfg = b.build().expect("config");
                let what = format!("{entries} {input} {mode} {tracker}");
                assert_path_changes_nothing(&cfg, &scenario, &what, |sim| {
                    sim.m.mmu.shared_hits_off = true;
                });
            }
        }
    }
}
