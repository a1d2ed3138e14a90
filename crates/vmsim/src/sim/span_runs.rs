//! Tests' shared pieces for the span loop's comparisons (`span_pages`,
//! `fetch_repeats`, `shared_repeats`): each runs one trace twice, a fast
//! path on and off, and asks for the same report. Here: a reference of
//! pid 1, a trace written as a `.vmt` file, and a whole run's report with
//! a switch set before it runs and a count read after it.

use vmsim_trace::scenario::Scenario;
use vmsim_trace::vmt::VmtWriter;
use vmsim_trace::{Access, AccessKind};

use crate::config::{ConfigBuilder, MachineSpec};
use crate::sim::Simulation;

/// A reference of pid 1.
pub(super) fn access(va: u64, size: u32, kind: AccessKind) -> Access {
    Access {
        va,
        pid: 1,
        size,
        kind,
    }
}

/// `trace` written as the `.vmt` file `name` in `dir`; its path.
pub(super) fn vmt_file(dir: &tempfile::TempDir, name: &str, trace: &[Access]) -> String {
    let path = dir.path().join(name);
    let mut w = VmtWriter::new(Vec::new()).expect("writer");
    w.push_all(trace).expect("push");
    let (bytes, _) = w.finish().expect("finish");
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// The report (as JSON) of a whole run of the trace at `path` on `cfg`,
/// `set` applied to the machine before it runs, and `taken` read from it
/// once every reference has run (before the run's end settles anything).
pub(super) fn report_of(
    cfg: MachineSpec,
    path: &str,
    set: impl FnOnce(&mut Simulation),
    taken: impl FnOnce(&Simulation) -> u64,
) -> (serde_json::Value, u64) {
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&Scenario::of_traces(&[path])).expect("start");
    set(&mut sim);
    sim.advance(u64::MAX, &mut (), None).expect("run");
    let taken = taken(&sim);
    let report = sim.run_to_end(&mut (), None).expect("end");
    (serde_json::to_value(&report).expect("json"), taken)
}

/// [`report_of`] on the default preset, with the TLB's recent hits on or
/// off (`recent`: off, every load and fetch goes through
/// `span_reference` and `translate`).
pub(super) fn report_of_default(
    path: &str,
    recent: bool,
    taken: impl FnOnce(&Simulation) -> u64,
) -> (serde_json::Value, u64) {
    let cfg = ConfigBuilder::preset(None)
        .expect("preset")
        .build()
        .expect("config");
    report_of(
        cfg,
        path,
        |sim| {
            if !recent {
                let tlb = sim.m.mmu.tlb_mut();
                *tlb = tlb.clone().with_last_hit_memo(false);
            }
        },
        taken,
    )
}
