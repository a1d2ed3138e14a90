//! Tests: an error met by a reference inside a span (here the swap
//! device's, broken mid-run) is the run's error whichever way the span
//! loop took the reference. With the TLB's recent hits on, a reference
//! that misses goes through `span_reference`, which keeps its error in
//! `Simulation::span_error` for `run_span` to return after its loop; with
//! them off, the loop's other branches return it at once (`?`). Both must
//! give the same error after the same number of references, and a run
//! whose device is not broken must not fail.

use vmsim_trace::AccessKind;
use vmsim_trace::scenario::Scenario;

use super::span_runs::{access, vmt_file};
use crate::config::ConfigBuilder;
use crate::error_line::one_line;
use crate::sim::Simulation;

/// Loads and stores over 600 pages in a scrambled order, four rounds:
/// in 128 frames, most references after the first round swap a page in.
fn swapping_trace() -> Vec<vmsim_trace::Access> {
    let mut out = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4 * 600 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let page = x % 600;
        let kind = if x & (1 << 40) != 0 {
            AccessKind::Store
        } else {
            AccessKind::Load
        };
        out.push(access(
            0x1000_0000 + page * 4096 + (x >> 50) % 4000,
            8,
            kind,
        ));
    }
    out
}

/// Runs `path` with recent hits on or off; after `before` references
/// breaks the swap device when `broken`. The run's error (if any, after
/// the step that returned it: `advance` or `end`) and the references
/// counted when it stopped.
fn run(path: &str, recent: bool, broken: bool, before: u64) -> (Option<String>, u64) {
    let cfg = ConfigBuilder::preset(None)
        .and_then(|b| b.set("memory.frames=128"))
        .and_then(|b| b.set("kernel.swap_slots=4Ki"))
        .and_then(|b| b.build())
        .expect("config");
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&Scenario::of_traces(&[path])).expect("start");
    if !recent {
        let tlb = sim.m.mmu.tlb_mut();
        *tlb = tlb.clone().with_last_hit_memo(false);
    }
    sim.advance(before, &mut (), None)
        .expect("the first references");
    if broken {
        sim.m
            .kernel
            .swap_device_mut()
            .expect("a swap device")
            .break_for_test("the device broke on purpose");
    }
    if let Err(e) = sim.advance(u64::MAX, &mut (), None) {
        return (Some(format!("advance: {}", one_line(&e))), sim.references());
    }
    let refs = sim.references();
    let err = sim
        .run_to_end(&mut (), None)
        .err()
        .map(|e| format!("end: {}", one_line(&e)));
    (err, refs)
}

#[test]
fn an_error_inside_a_span_is_the_runs_error_either_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = swapping_trace();
    let path = vmt_file(&dir, "swapping.vmt", &trace);
    let total = trace.len() as u64;
    for before in [700u64, 1_500, 2_200] {
        let (fast, fast_refs) = run(&path, true, true, before);
        let (plain, plain_refs) = run(&path, false, true, before);
        let fast = fast.expect("the broken device fails the run (recent hits on)");
        // The reference's own error, from the run, not a later one (the
        // end's flush to the same device) after the process was taken
        // for killed.
        assert!(
            fast.starts_with("advance: ") && fast.contains("the device broke on purpose"),
            "{fast}"
        );
        assert_eq!(Some(fast), plain, "the same error either way");
        assert_eq!(fast_refs, plain_refs, "stopped after the same reference");
        assert!(
            (before..total).contains(&fast_refs),
            "stopped mid-run: {fast_refs}"
        );
    }
    for recent in [true, false] {
        let (err, refs) = run(&path, recent, false, 700);
        assert_eq!(err, None, "an unbroken device runs to the end");
        assert_eq!(refs, total);
    }
}
