//! Checkpoints: a run stopped anywhere, captured, restored and continued
//! reports exactly what the uninterrupted run reports; chains of full and
//! incremental files; the trackers; bad files refused.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vmsim::checkpoint::{Chain, ChainWriter, Checkpoint};
use vmsim::config::{ConfigBuilder, MachineSpec};
use vmsim::report::Report;
use vmsim::sim::{Progress, Simulation};
use vmsim_trace::scenario::Scenario;

pub fn data(name: &str) -> String {
    format!(
        "{}/../vmsim-trace/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

pub fn config(sets: &[&str]) -> MachineSpec {
    let mut b = ConfigBuilder::preset(None).expect("preset");
    for s in sets {
        b = b.set(s).expect("set");
    }
    b.build().expect("config")
}

pub fn traces(inputs: &[&str]) -> Scenario {
    Scenario::of_traces(inputs)
}

/// A report as JSON, without the host facts of checkpoint records (which
/// file was written, its size): the figures a restored run must reproduce.
pub fn figures(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("json");
    if let Some(recs) = v
        .get_mut("checkpoints")
        .and_then(|c| c.get_mut("records"))
        .and_then(|r| r.as_array_mut())
    {
        for rec in recs {
            if let Some(o) = rec.as_object_mut() {
                o.remove("file");
                o.remove("file_bytes");
            }
        }
    }
    v
}

pub fn uninterrupted(cfg: &MachineSpec, scenario: &Scenario) -> Report {
    Simulation::new(cfg.clone())
        .expect("machine")
        .run(scenario, &mut ())
        .expect("run")
}

/// Runs to `stop`, checkpoints in memory, drops the run, restores and runs
/// on; returns the restored run's report.
pub fn stop_restore_continue(cfg: &MachineSpec, scenario: &Scenario, stop: u64) -> Report {
    let mut sim = Simulation::new(cfg.clone()).expect("machine");
    sim.start(scenario).expect("start");
    let progress = sim.run_until(stop, &mut ()).expect("run");
    let ckpt = sim.checkpoint().expect("checkpoint");
    drop(sim);
    let bytes = ckpt.as_bytes().to_vec();
    let ckpt = Checkpoint::from_bytes(bytes, "mem").expect("reads back");
    let restored = Simulation::restore(&ckpt, &[]).expect("restore");
    if progress == Progress::Finished {
        assert!(restored.is_finished());
    }
    restored.run_to_end(&mut (), None).expect("continue")
}

fn assert_same(cfg: &MachineSpec, scenario: &Scenario, stops: &[u64]) {
    let want = figures(&uninterrupted(cfg, scenario));
    for &stop in stops {
        let got = figures(&stop_restore_continue(cfg, scenario, stop));
        assert!(
            got == want,
            "stopped at {stop}: the restored run's report differs\n{}",
            diff(&want, &got)
        );
    }
}

/// The first differing keys of two JSON values, for failure messages.
fn diff(a: &serde_json::Value, b: &serde_json::Value) -> String {
    let mut out = Vec::new();
    walk(a, b, String::new(), &mut out);
    out.truncate(12);
    out.join("\n")
}

fn walk(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value::{Array, Object};
    match (a, b) {
        (Object(x), Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => walk(v, w, format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}: missing")),
                }
            }
        }
        (Array(x), Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                walk(v, w, format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{at}: {a} vs {b}")),
        _ => {}
    }
}

/// The memory digests of a run (`--digest`) are part of its state: a
/// process that exited before the checkpoint keeps its digest in the
/// restored run, which goes on recording the others.
#[test]
fn memory_digests_recorded_before_a_checkpoint_survive_a_restore() {
    let cfg = config(&["memory.frames=512"]);
    let scenario = traces(&[
        "synth:scan,bytes=64KiB,stride=512,write=1,refs=1500",
        "synth:zipf,pages=200,refs=12K,write=0.5,seed=4",
    ]);
    let mut sim = Simulation::new(cfg.clone()).expect("machine");
    sim.set_digest_at_exit(true);
    let want = sim.run(&scenario, &mut ()).expect("run");
    assert_eq!(want.memory_digests.len(), 2, "both processes have digests");
    let short = &want.memory_digests[0];
    for stop in [6_000, 9_000] {
        let mut sim = Simulation::new(cfg.clone()).expect("machine");
        sim.set_digest_at_exit(true);
        sim.start(&scenario).expect("start");
        sim.run_until(stop, &mut ()).expect("run");
        let bytes = sim.checkpoint().expect("checkpoint").as_bytes().to_vec();
        drop(sim);
        let ck = Checkpoint::from_bytes(bytes, "mem").expect("reads back");
        // No set_digest_at_exit here: the state says the run records them.
        let back = Simulation::restore(&ck, &[]).expect("restore");
        let got = back.run_to_end(&mut (), None).expect("continue");
        assert_eq!(got.memory_digests, want.memory_digests, "stopped at {stop}");
        assert_eq!(figures(&got), figures(&want), "stopped at {stop}");
    }
    // A run without digests, restored with them on: only what exits later.
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&scenario).expect("start");
    sim.run_until(6_000, &mut ()).expect("run");
    let ck = sim.checkpoint().expect("checkpoint");
    let mut back = Simulation::restore(&ck, &[]).expect("restore");
    back.set_digest_at_exit(true);
    let got = back.run_to_end(&mut (), None).expect("continue");
    assert_eq!(got.memory_digests.len(), 1);
    assert_ne!(got.memory_digests[0].name, short.name);
    assert_eq!(got.memory_digests[0], want.memory_digests[1]);
}

#[test]
fn restored_lackey_run_reports_what_the_uninterrupted_run_reports() {
    let cfg = config(&[]);
    let s = traces(&[&data("true.lackey.zst")]);
    assert_same(&cfg, &s, &[0, 1, 4097, 60_000, 167_910, 167_911]);
}

#[test]
fn restored_fork_cow_scenarios_report_the_same() {
    let cfg = config(&[]);
    let s = Scenario::load(&example("fork-cow.toml")).expect("scenario");
    assert_same(&cfg, &s, &[500, 1000, 1001, 1005]);
    let real = Scenario::load(&example("forkcow-real.toml")).expect("scenario");
    assert_same(&cfg, &real, &[100_000, 250_000, 320_000]);
}

#[test]
fn restored_swap_heavy_run_reports_the_same() {
    // 4096 frames under a 20000-page zipf stream with writes: evictions,
    // write-backs, clean drops and swap-ins all happen before and after the stop.
    let cfg = config(&["memory.frames=2048", "kernel.policy=clock"]);
    let s = traces(&["synth:zipf,pages=6000,s=0.7,refs=150K,write=0.4,seed=3"]);
    let r = uninterrupted(&cfg, &s);
    assert!(
        r.paging.swap_ins > 1000 && r.paging.writebacks > 1000,
        "{:?}",
        r.paging
    );
    assert_same(&cfg, &s, &[70_001, 149_999]);
}

#[test]
fn restored_runs_on_inverted_and_hashed_tables_report_the_same() {
    // The MMU keeps the global table's layout only (a copy of the whole
    // table, mapping count included, once made every restore after the
    // first mapping fail its check against the kernel's table); fork and
    // copy-on-write put several address spaces in the one table.
    let s = Scenario::load(&example("fork-cow.toml")).expect("scenario");
    for structure in ["inverted", "hashed"] {
        let cfg = config(&[&format!("paging.structure={structure}")]);
        assert_same(&cfg, &s, &[500, 1001]);
    }
    let zipf = traces(&["synth:zipf,pages=3000,s=0.7,refs=40K,write=0.4,seed=5"]);
    for structure in ["inverted", "hashed"] {
        let cfg = config(&[
            &format!("paging.structure={structure}"),
            "memory.frames=2048",
            "kernel.policy=clock",
        ]);
        assert_same(&cfg, &zipf, &[20_001]);
    }
}

#[test]
fn io_errors_keep_the_io_error_as_their_source() {
    // A caller tells a missing file from a full disk by the source's kind,
    // not by parsing the message.
    let missing = Path::new("/nonexistent-vmsim-dir/ckpt-000000.vmck");
    let e = Checkpoint::read_from(missing).expect_err("no such file");
    let io = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("an io::Error source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{e}"
    );
    // A chain directory that is a file: cannot be created.
    let file = std::env::temp_dir().join(format!("vmsim-ck-notadir-{}", std::process::id()));
    std::fs::write(&file, b"x").expect("write");
    let e = ChainWriter::create(&file).expect_err("not a directory");
    assert!(
        std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some(),
        "{e:?}"
    );
    assert!(e.to_string().contains("cannot create"), "{e}");
    std::fs::remove_file(&file).expect("remove");
}

#[test]
fn restored_multi_process_aging_run_reports_the_same() {
    // Aging ticks every 10000 references: ticks land on the same references
    // however the run is cut.
    let cfg = config(&[
        "memory.frames=1024",
        "kernel.policy=aging",
        "run.quantum=777",
    ]);
    let s = traces(&[
        "synth:zipf,pages=3000,refs=60K,write=0.3,seed=5",
        &data("tinystatic.lackey.zst"),
    ]);
    assert_same(&cfg, &s, &[9_999, 10_000, 123_456]);
}

/// A run with checkpoints written into `dir`: its report.
pub fn run_with_chain(cfg: &MachineSpec, scenario: &Scenario, dir: &Path) -> Report {
    let mut w = ChainWriter::create(dir).expect("writer");
    let mut sim = Simulation::new(cfg.clone()).expect("machine");
    sim.start(scenario).expect("start");
    let r = sim.run_to_end(&mut (), Some(&mut w)).expect("run");
    w.finish().expect("files written");
    r
}

fn without_checkpoints(r: &Report) -> serde_json::Value {
    let mut v = figures(r);
    if let Some(o) = v.as_object_mut() {
        o.remove("checkpoints");
    }
    v
}

#[test]
fn pause_mode_checkpoints_do_not_change_the_run_and_every_one_restores() {
    let plain = config(&[]);
    let s = traces(&[&data("true.lackey.zst")]);
    let cfg = config(&["checkpoint.every=20000"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let with = run_with_chain(&cfg, &s, dir.path());
    // Pause mode with the host tracker perturbs nothing.
    assert_eq!(
        without_checkpoints(&with),
        without_checkpoints(&uninterrupted(&plain, &s))
    );
    let recs = &with.checkpoints.as_ref().expect("checkpoints").records;
    assert_eq!(recs.len(), 8, "167911 references, one checkpoint per 20000");
    assert!(recs[0].full && recs[1..].iter().all(|r| !r.full));
    let chain = Chain::open(dir.path()).expect("chain");
    let want = figures(&with);
    for k in 0..recs.len() as u64 {
        let sim = chain.restore(Some(k), &[]).expect("restore");
        assert_eq!(sim.references(), recs[k as usize].references);
        let got = figures(&sim.run_to_end(&mut (), None).expect("continue"));
        assert!(got == want, "restored at {k}:\n{}", diff(&want, &got));
    }
}

#[test]
fn increments_hold_what_changed_and_are_proportional_to_it() {
    let cfg = config(&["checkpoint.every=20000"]);
    let s = traces(&[&data("true.lackey.zst")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run_with_chain(&cfg, &s, dir.path());
    let recs = &r.checkpoints.as_ref().expect("checkpoints").records;
    for rec in &recs[1..] {
        // An increment stores the pages written since its parent (plus the
        // page tables, whose A bits change): never the whole memory.
        assert!(
            rec.chunks_written <= rec.dirty_host + rec.table_pages + 1,
            "{rec:?}"
        );
        assert!(rec.file_bytes.expect("written") < recs[0].file_bytes.expect("written") * 4);
    }
}

#[test]
fn write_protect_mode_traps_writes_saves_pages_and_restores_exactly() {
    let cfg = config(&[
        "checkpoint.every=30000",
        "checkpoint.mode=write-protect",
        "memory.frames=512",
    ]);
    let s = traces(&[
        &data("tinystatic.lackey.zst"),
        "synth:zipf,pages=700,refs=120K,write=0.5,seed=9",
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let with = run_with_chain(&cfg, &s, dir.path());
    let c = with.checkpoints.as_ref().expect("checkpoints");
    assert_eq!(c.tracker, "both");
    assert!(
        with.kernel.write_protect > 100,
        "stores to protected pages trap"
    );
    assert!(
        c.records.iter().map(|r| r.wp_faults).sum::<u64>() <= with.kernel.write_protect,
        "faults after the last checkpoint are counted by the kernel only"
    );
    let faults: u64 = with.processes.iter().map(|p| p.faults.write_protect).sum();
    assert_eq!(faults, with.kernel.write_protect, "counted per process too");
    for r in &c.records[1..] {
        let (d, s) = (
            r.dirty_bits.expect("dirty bits run"),
            r.soft_dirty.expect("soft-dirty runs"),
        );
        assert!(r.shootdowns > 0 && r.ptes_changed > 0, "{r:?}");
        // Every page the dirty bits found, write protection found too.
        assert!(s >= d, "{r:?}");
        assert_eq!(
            r.saved_by_fault + r.saved_in_background + r.saved_at_next_pause,
            r.pages_saved,
            "every page is saved once: {r:?}"
        );
    }
    assert!(c.records.iter().any(|r| r.saved_by_fault > 0));
    assert!(c.records.iter().any(|r| r.saved_in_background > 0));
    let want = figures(&with);
    let chain = Chain::open(dir.path()).expect("chain");
    for k in [0, 2, c.records.len() as u64 - 1] {
        let got = figures(
            &chain
                .restore(Some(k), &[])
                .expect("restore")
                .run_to_end(&mut (), None)
                .expect("continue"),
        );
        assert!(got == want, "restored at {k}:\n{}", diff(&want, &got));
    }
}

/// Collects the pages the processes wrote (the ground truth, from the trace).
#[derive(Default)]
struct Written(std::collections::BTreeSet<(vmsim::addr::Pid, u64)>);

impl vmsim::sim::Observer for Written {
    fn ran(&mut self, pid: vmsim::addr::Pid, _first: u64, refs: &[vmsim_trace::Access]) {
        for a in refs.iter().filter(|a| a.kind.writes()) {
            for page in (a.va >> 12)..=((a.va + u64::from(a.size) - 1) >> 12) {
                self.0.insert((pid, page << 12));
            }
        }
    }
}

/// The trackers against what the processes actually wrote: soft-dirty
/// misses no written page; the dirty-bit tracker misses only pages that
/// were evicted after being written (their D bit went with the mapping);
/// the host record holds every written page that is resident.
#[test]
fn trackers_find_every_page_the_processes_wrote() {
    let cfg = config(&["memory.frames=256"]);
    let s = traces(&["synth:zipf,pages=400,refs=60K,write=0.3,seed=2"]);
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&s).expect("start");
    sim.run_until(5000, &mut ()).expect("run");
    sim.reset_host_dirty();
    sim.harvest_dirty_bits(None).expect("arm D");
    sim.harvest_soft_dirty(None).expect("arm WP");
    let mut round = 0;
    let mut evicted_misses = 0;
    loop {
        let mut w = Written::default();
        if sim.run_until(5000 * (round + 2), &mut w).expect("run") == Progress::Finished {
            break;
        }
        round += 1;
        let set = |v: Vec<vmsim::kernel::DirtyPage>| -> std::collections::BTreeSet<_> {
            v.into_iter().map(|d| (d.pid, d.page.as_u64())).collect()
        };
        let resident: std::collections::BTreeSet<_> = set(sim
            .kernel()
            .mapped_pages(sim.memory(), None)
            .expect("pages")
            .into_iter()
            .filter(|d| d.resident)
            .collect());
        let host = set(sim.host_dirty_pages().expect("host"));
        let d = set(sim.harvest_dirty_bits(None).expect("D").pages);
        let h = sim.harvest_soft_dirty(None).expect("WP");
        assert!(h.shootdowns > 0);
        let soft = set(h.pages);
        assert!(!w.0.is_empty());
        for p in &w.0 {
            assert!(soft.contains(p), "round {round}: soft-dirty missed {p:?}");
            if resident.contains(p) {
                assert!(host.contains(p), "round {round}: the host missed {p:?}");
                if !d.contains(p) {
                    evicted_misses += 1;
                }
            }
        }
        assert!(d.is_subset(&soft), "round {round}: a D page not soft-dirty");
        sim.reset_host_dirty();
    }
    assert!(round >= 8);
    // Resident now, written, yet D clear: evicted and brought back by a
    // load in between (D-bit tracking loses those; soft-dirty does not).
    let _ = evicted_misses;
}

#[test]
fn a_process_image_is_the_same_after_a_restore() {
    let cfg = config(&[]);
    let s = Scenario::load(&example("forkcow-real.toml")).expect("scenario");
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&s).expect("start");
    // Stop while both processes live: just after the child's first 10000 references.
    let mut at = 0;
    while sim.kernel().processes().count() < 2 {
        at += 10_000;
        sim.run_until(at, &mut ()).expect("run");
    }
    sim.run_until(at + 10_000, &mut ()).expect("run");
    let pids: Vec<_> = sim.kernel().processes().map(|p| p.pid).collect();
    assert_eq!(pids.len(), 2, "parent and child");
    let before: Vec<_> = pids
        .iter()
        .map(|&p| sim.process_image(p).expect("image"))
        .collect();
    let ck = sim.checkpoint().expect("checkpoint");
    let mut back = Simulation::restore(&ck, &[]).expect("restore");
    for (p, b) in pids.iter().zip(&before) {
        let a = back.process_image(*p).expect("image");
        assert_eq!(a.page_hashes(), b.page_hashes());
        assert_eq!(a, *b);
    }
    // The parent stored into every 64th byte of its 1 MiB array: its pages
    // have contents (stamps), the child shares them.
    assert!(
        before[0]
            .resident
            .iter()
            .filter(|p| p.data.is_some())
            .count()
            > 200
    );
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[at] ^= 0x10;
    std::fs::write(path, b).expect("write");
}

/// Bad checkpoints are refused with one line naming the file: truncated
/// at every section boundary, corrupt, another version, a missing or
/// foreign link, another machine. Never a panic.
#[test]
fn bad_checkpoints_are_refused_with_the_file_named() {
    let cfg = config(&["checkpoint.every=40000"]);
    let s = traces(&[&data("true.lackey.zst")]);
    let dir = tempfile::tempdir().expect("tempdir");
    run_with_chain(&cfg, &s, dir.path());
    let f1 = dir.path().join("ckpt-000001.vmck");
    let bytes = std::fs::read(&f1).expect("read");
    // Section boundaries: walk the headers.
    let mut bounds = vec![0usize, 8, 12];
    let mut at = 12usize;
    while at + 32 <= bytes.len() {
        let stored = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8"));
        at += 32 + stored as usize;
        bounds.push(at);
    }
    assert_eq!(at, bytes.len());
    let check = |what: &str| {
        let chain = Chain::open(dir.path()).expect("the directory lists");
        let e = chain
            .restore(Some(1), &[])
            .err()
            .unwrap_or_else(|| panic!("{what}: restored"));
        let msg = e.to_string();
        assert!(msg.contains("ckpt-00000"), "{what}: {msg}");
        assert!(!msg.contains('\n'), "{what}: {msg}");
        msg
    };
    for &b in &bounds[..bounds.len() - 1] {
        for cut in [b, b + 1, b.saturating_sub(1)] {
            std::fs::write(&f1, &bytes[..cut.min(bytes.len() - 1)]).expect("cut");
            check(&format!("cut at {cut}"));
        }
    }
    for at in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        std::fs::write(&f1, &bytes).expect("restore bytes");
        flip(&f1, at);
        check(&format!("flip at {at}"));
    }
    let mut v = bytes.clone();
    v[8] = 9;
    std::fs::write(&f1, &v).expect("write");
    assert!(check("version").contains("version 9"));
    std::fs::write(&f1, &bytes).expect("restore bytes");
    Chain::open(dir.path())
        .expect("chain")
        .restore(Some(3), &[])
        .expect("the untouched chain restores");
    // A missing link.
    std::fs::remove_file(&f1).expect("rm");
    let e = Chain::open(dir.path())
        .expect("chain")
        .restore(Some(3), &[])
        .expect_err("missing link");
    assert!(e.to_string().contains("ckpt-000001.vmck is missing"), "{e}");
    Chain::open(dir.path())
        .expect("chain")
        .restore(Some(0), &[])
        .expect("what is before the gap still restores");
    // A foreign link: checkpoint 1 of a run on another machine.
    let other = tempfile::tempdir().expect("tempdir");
    run_with_chain(
        &config(&["checkpoint.every=40000", "memory.frames=8192"]),
        &s,
        other.path(),
    );
    std::fs::copy(other.path().join("ckpt-000001.vmck"), &f1).expect("copy");
    let e = Chain::open(dir.path())
        .expect("chain")
        .restore(Some(2), &[])
        .expect_err("foreign link");
    assert!(e.to_string().contains("ckpt-000002.vmck"), "{e}");
}

#[test]
fn merge_folds_a_chain_into_an_equivalent_full_checkpoint() {
    let cfg = config(&["checkpoint.every=30000", "memory.frames=1024"]);
    let s = traces(&["synth:zipf,pages=1500,refs=150K,write=0.4,seed=4"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run_with_chain(&cfg, &s, dir.path());
    assert!(r.paging.swap_outs > 0, "pages in swap are merged too");
    let want = figures(&r);
    let chain = Chain::open(dir.path()).expect("chain");
    chain.merge(Some(3)).expect("merge");
    let chain = Chain::open(dir.path()).expect("chain");
    let e3 = chain.iter().find(|e| e.seq == 3).expect("3");
    assert!(e3.header.as_ref().expect("header").full);
    // Earlier files are no longer needed for 3 and later.
    for k in 0..3 {
        std::fs::remove_file(dir.path().join(format!("ckpt-{k:06}.vmck"))).expect("rm");
    }
    let chain = Chain::open(dir.path()).expect("chain");
    for k in [3, 4] {
        let got = figures(
            &chain
                .restore(Some(k), &[])
                .expect("restore")
                .run_to_end(&mut (), None)
                .expect("run"),
        );
        assert!(got == want, "after merge, at {k}:\n{}", diff(&want, &got));
    }
}

#[test]
fn a_moved_trace_is_found_by_its_checksum_and_a_wrong_one_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let trace = tmp.path().join("t.lackey.zst");
    std::fs::copy(data("true.lackey.zst"), &trace).expect("copy");
    let s = traces(&[trace.to_str().expect("utf-8")]);
    let cfg = config(&["checkpoint.every=50000"]);
    let dir = tmp.path().join("ck");
    let want = figures(&run_with_chain(&cfg, &s, &dir));
    let moved = tmp.path().join("moved.zst");
    std::fs::rename(&trace, &moved).expect("move");
    let chain = Chain::open(&dir).expect("chain");
    let e = chain.restore(Some(1), &[]).expect_err("not found");
    assert!(e.to_string().contains("t.lackey.zst"), "{e}");
    let wrong = PathBuf::from(data("tinystatic.lackey.zst"));
    assert!(
        chain
            .restore(Some(1), std::slice::from_ref(&wrong))
            .is_err()
    );
    let got = figures(
        &chain
            .restore(Some(1), &[wrong, moved])
            .expect("found by size and CRC")
            .run_to_end(&mut (), None)
            .expect("run"),
    );
    assert!(got == want, "{}", diff(&want, &got));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Anywhere a run is stopped and restored, it reports the same: two
    /// processes (a real trace and a writing generator), a small memory
    /// (swap), and write-protect checkpoints along the way.
    #[test]
    fn restored_anywhere_reports_the_same(stop in 1u64..95_000, wp in any::<bool>()) {
        let mode = if wp { "checkpoint.mode=write-protect" } else { "checkpoint.mode=pause" };
        let cfg = config(&["memory.frames=384", "checkpoint.every=25000", mode, "run.quantum=3000"]);
        let s = traces(&[
            "synth:zipf,pages=500,refs=40K,write=0.4,seed=11",
            &data("tinystatic.lackey.zst"),
        ]);
        let want = figures(&uninterrupted(&cfg, &s));
        let mut sim = Simulation::new(cfg.clone()).expect("machine");
        sim.start(&s).expect("start");
        sim.advance(stop, &mut (), None).expect("run");
        let ck = sim.checkpoint().expect("checkpoint");
        drop(sim);
        let got = figures(&Simulation::restore(&ck, &[]).expect("restore").run_to_end(&mut (), None).expect("run"));
        prop_assert!(got == want, "stopped at {stop}:\n{}", diff(&want, &got));
    }
}

/// Zero pages and pages shared copy-on-write are not stored twice: a
/// checkpoint taken while the forked child still shares its parent's 1 MiB
/// array counts the shared mappings once, stores no page that was only
/// read (all zero), and its file holds one chunk per distinct frame with
/// contents (plus the page tables), not one per mapping.
#[test]
fn zero_pages_and_cow_shared_pages_are_stored_once() {
    let cfg = config(&["checkpoint.every=1000000000"]);
    let s = Scenario::load(&example("forkcow-real.toml")).expect("scenario");
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&s).expect("start");
    let mut at = 0;
    while sim.kernel().processes().count() < 2 {
        at += 2_000;
        sim.run_until(at, &mut ()).expect("run");
    }
    let mappings: u64 = sim
        .kernel()
        .mapped_pages(sim.memory(), None)
        .expect("pages")
        .len() as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = ChainWriter::create(dir.path()).expect("writer");
    sim.take_checkpoint(Some(&mut w)).expect("checkpoint");
    w.finish().expect("written");
    let r = sim.checkpoint_report().expect("report").records[0].clone();
    assert!(r.full, "{r:?}");
    // The child still shares most of the parent's pages (its array among them).
    assert!(r.shared_pages >= 100, "{r:?}");
    assert!(r.zero_pages > 0, "pages only read hold nothing: {r:?}");
    assert_eq!(
        r.pages_saved + r.shared_pages + r.zero_pages,
        mappings,
        "every mapping is saved, shared or zero: {r:?}"
    );
    assert_eq!(r.bytes_saved, r.pages_saved * 4096);
    // One chunk per distinct frame with contents: the data pages saved and
    // the page tables, never a second copy of a shared frame.
    assert!(r.chunks_written <= r.pages_saved + r.table_pages, "{r:?}");
    let file = r.file_bytes.expect("file written");
    assert!(
        file < (r.pages_saved + r.table_pages + 64) * 4096,
        "{file} bytes for {r:?}"
    );
    // And it restores to the same machine.
    let chain = Chain::open(dir.path()).expect("chain");
    let mut back = chain.restore(Some(0), &[]).expect("restore");
    assert_eq!(back.references(), sim.references());
    let pids: Vec<_> = sim.kernel().processes().map(|p| p.pid).collect();
    for pid in pids {
        assert_eq!(
            back.process_image(pid).expect("image").page_hashes(),
            sim.process_image(pid).expect("image").page_hashes()
        );
    }
}

/// The sections of a checkpoint file: (tag, flags, payload range).
fn sections_of(bytes: &[u8]) -> Vec<([u8; 4], u32, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 12usize;
    while at + 32 <= bytes.len() {
        let tag: [u8; 4] = bytes[at..at + 4].try_into().expect("4");
        let flags = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
        let stored = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8")) as usize;
        out.push((tag, flags, at + 32..at + 32 + stored));
        at += 32 + stored;
    }
    out
}

/// `bytes` with section `k`'s payload replaced by `payload` (compressed
/// again if the section is), its lengths and both CRC-32Cs made right: a
/// file that passes every checksum but says something else.
fn with_payload(bytes: &[u8], k: usize, payload: &[u8]) -> Vec<u8> {
    let secs = sections_of(bytes);
    let (tag, flags, range) = secs[k].clone();
    let stored = if flags & 1 != 0 {
        zstd::encode_all(payload, 1).expect("zstd")
    } else {
        payload.to_vec()
    };
    let mut head = [0u8; 32];
    head[0..4].copy_from_slice(&tag);
    head[4..8].copy_from_slice(&flags.to_le_bytes());
    head[8..16].copy_from_slice(&(stored.len() as u64).to_le_bytes());
    head[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    head[24..28].copy_from_slice(&crc32c::crc32c(&stored).to_le_bytes());
    let hcrc = crc32c::crc32c(&head[..28]);
    head[28..32].copy_from_slice(&hcrc.to_le_bytes());
    let mut out = bytes[..range.start - 32].to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&stored);
    out.extend_from_slice(&bytes[range.end..]);
    out
}

/// A small full checkpoint with every section (swap in use), taken mid-run.
fn small_checkpoint() -> Vec<u8> {
    let cfg = config(&["memory.frames=128", "checkpoint.every=4000"]);
    let s = traces(&[
        "synth:zipf,pages=300,refs=12K,write=0.5,seed=21",
        "synth:scan,bytes=256KiB,stride=512,write=1,refs=6K",
    ]);
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&s).expect("start");
    sim.advance(9_000, &mut (), None).expect("run");
    assert!(sim.kernel().paging_stats().swap_outs > 0);
    sim.checkpoint().expect("checkpoint").as_bytes().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The reader behind the checksums: a section whose payload is changed
    /// (bytes flipped, cut short, grown) and whose CRCs are made right again
    /// is refused with one line naming the file, or restores to a machine
    /// that runs on; never a panic. Every section, MACH (the machine state,
    /// checked on restore against the configuration, the scenario and the
    /// kernel) included; `sim/restored.rs` forges decoded machine states.
    #[test]
    fn sections_that_pass_their_checksums_but_lie_are_refused_or_run(
        section in prop::sample::select(vec![0usize, 1, 2, 3, 4, 5]),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<Option<prop::sample::Index>>(),
        grow in 0usize..3,
    ) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let bytes = BYTES.get_or_init(small_checkpoint);
        let secs = sections_of(bytes);
        prop_assert_eq!(secs.len(), 7, "HEAD CONF SCEN MACH PAGE SWAP END");
        let (_, flags, range) = secs[section].clone();
        let mut payload = if flags & 1 != 0 {
            zstd::decode_all(&bytes[range]).expect("zstd")
        } else {
            bytes[range].to_vec()
        };
        for (at, v) in &edits {
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] ^= v | 1;
            }
        }
        if let Some(c) = cut {
            payload.truncate(c.index(payload.len() + 1));
        }
        payload.extend(std::iter::repeat_n(0x5a, grow));
        let bad = with_payload(bytes, section, &payload);
        match Checkpoint::from_bytes(bad, "lie.vmck") {
            Err(e) => {
                let m = e.to_string();
                prop_assert!(m.starts_with("lie.vmck: ") && !m.contains('\n'), "{}", m);
            }
            Ok(ck) => match Simulation::restore(&ck, &[]) {
                Err(e) => {
                    let m = e.to_string();
                    prop_assert!(!m.contains('\n'), "{}", m);
                }
                Ok(mut sim) => {
                    // It may be a different machine now; it must not crash.
                    let _ = sim.run_until(sim.references() + 2_000, &mut ());
                }
            },
        }
    }
}

/// A full checkpoint written to a file reads back; a path that is not a
/// regular file (a directory, `/dev/zero`, which has no end) is refused
/// before anything is read.
#[test]
fn a_checkpoint_file_reads_back_and_only_from_a_regular_file() {
    let cfg = config(&[]);
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&traces(&["synth:scan,bytes=64KiB,stride=4096"]))
        .expect("start");
    sim.run_until(10, &mut ()).expect("run");
    let ck = sim.checkpoint().expect("checkpoint");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("one.vmck");
    ck.write_to(&path).expect("write");
    let back = Checkpoint::read_from(&path).expect("read");
    assert_eq!(back.as_bytes(), ck.as_bytes());
    let mut refused = vec![dir.path().to_path_buf()];
    if cfg!(unix) {
        refused.push(PathBuf::from("/dev/zero"));
    }
    for p in refused {
        let e = Checkpoint::read_from(&p).expect_err("not a file");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
