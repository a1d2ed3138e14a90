//! The references of a run counted by kind: the span loop with recent TLB
//! hits counts the loads and fetches those hits answer after the loop,
//! from the MMU's running totals (`Mmu::recent_hits`), and every other
//! reference as it goes; both must add up to the trace's own counts.

use vmsim::sim::Simulation;
use vmsim_trace::{AccessKind, TraceSource};

use super::checkpoint::{config, data, traces};

fn counts_by_kind(path: &str) -> [u64; 4] {
    let trace = vmsim_trace::open(path)
        .expect("trace")
        .collect_all()
        .expect("read");
    let mut n = [0u64; 4];
    for a in &trace {
        n[match a.kind {
            AccessKind::Instr => 0,
            AccessKind::Load => 1,
            AccessKind::Store => 2,
            AccessKind::Modify => 3,
        }] += 1;
    }
    n
}

#[test]
fn references_by_kind_equal_the_traces_counts() {
    let path = data("true.lackey.zst");
    let want = counts_by_kind(&path);
    // The default preset: a split first level, so the loop with recent hits.
    let report = Simulation::new(config(&[]))
        .expect("machine")
        .run(&traces(&[&path]), &mut ())
        .expect("run");
    let got = ["instr", "load", "store", "modify"].map(|k| report.references_by_kind[k]);
    assert_eq!(got, want);
    assert!(want[0] > 0 && want[1] > 0 && want[2] + want[3] > 0);
    assert!(report.tlb_hits > report.references / 2, "recent hits taken");
}
