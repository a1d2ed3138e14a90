//! Tests: the span loop's repeated fetches (`Simulation::run_span` with
//! recent hits: a fetch of the key of the last fetch `hit_recent` took,
//! with only load hits and stores taken whole since, is counted by
//! `Mmu::hit_recent_again` without a lookup) against the TLB without
//! recent hits (every reference through `span_reference` and
//! `translate`): the same report, in runs where the fetch side changes
//! between two fetches of one page (fills that evict it, touches of
//! other ways) and where only the data side does.

use vmsim_trace::scenario::Scenario;
use vmsim_trace::vmt::VmtWriter;
use vmsim_trace::{Access, AccessKind};

use crate::config::ConfigBuilder;
use crate::sim::Simulation;

fn access(va: u64, size: u32, kind: AccessKind) -> Access {
    Access {
        va,
        pid: 1,
        size,
        kind,
    }
}

/// Round after round, a hot code page fetched around loads and stores of
/// one data page each (recent hits of the data side once a lookup has
/// remembered them after the round's fills: the two pages in two places
/// of the side's table of recent hits, direct-mapped by page), then a fetch of a new code
/// page (a miss: a fill, which starts a new generation of recent hits and
/// in time evicts any fetch-side way not kept touched: the hot page's
/// too if its fetches after the miss were taken for repeats, which a
/// later span's first lookup of it then finds out), then a load of a
/// new data page (a fault, a fill). And fetches at the hot page's ends.
fn repeat_trace() -> Vec<Access> {
    let hot = 0x40_0000u64;
    let mut out = Vec::new();
    for round in 0..3000u64 {
        for j in 0..4 {
            out.push(access(hot + 8 * ((round + j) % 64), 4, AccessKind::Instr));
            out.push(access(
                0x80_0000 + 8 * ((round + j) % 16),
                8,
                AccessKind::Load,
            ));
            out.push(access(hot + 16, 4, AccessKind::Instr));
            out.push(access(
                0xc0_5000 + 8 * ((round + j) % 16),
                8,
                AccessKind::Store,
            ));
            out.push(access(hot + 24, 4, AccessKind::Instr));
        }
        // Right after a fetch of the hot page: one ending on its last byte
        // (a repeat), one crossing out of it, one crossing into it from
        // the page below (both two translations, never repeats).
        out.push(access(hot + 4092, 4, AccessKind::Instr));
        out.push(access(hot + 4094, 4, AccessKind::Instr));
        out.push(access(hot + 8, 4, AccessKind::Instr));
        out.push(access(hot - 2, 4, AccessKind::Instr));
        out.push(access(0x1000_0000 + round * 4096, 4, AccessKind::Instr));
        out.push(access(hot + 32, 4, AccessKind::Instr));
        out.push(access(hot + 40, 4, AccessKind::Instr));
        out.push(access(0x2000_0000 + round * 4096, 8, AccessKind::Load));
        out.push(access(hot + 48, 4, AccessKind::Instr));
    }
    out
}

/// The report of a run of `path`, and how many fetches were taken as
/// repeats, with the TLB's recent hits on or off.
fn run(path: &str, recent: bool) -> (serde_json::Value, u64) {
    let cfg = ConfigBuilder::preset(None)
        .expect("preset")
        .build()
        .expect("config");
    let mut sim = Simulation::new(cfg).expect("machine");
    sim.start(&Scenario::of_traces(&[path])).expect("start");
    if !recent {
        let tlb = sim.m.mmu.tlb_mut();
        *tlb = tlb.clone().with_last_hit_memo(false);
    }
    sim.advance(u64::MAX, &mut (), None).expect("run");
    let taken = sim.m.mmu.recent_again_taken;
    let report = sim.run_to_end(&mut (), None).expect("end");
    (serde_json::to_value(&report).expect("json"), taken)
}

#[test]
fn repeated_fetches_are_the_hits_a_lookup_would_find() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("repeats.vmt");
    let trace = repeat_trace();
    let mut w = VmtWriter::new(Vec::new()).expect("writer");
    w.push_all(&trace).expect("push");
    let (bytes, _) = w.finish().expect("finish");
    std::fs::write(&path, bytes).expect("write");
    let path = path.to_string_lossy().into_owned();
    let (on, taken) = run(&path, true);
    let (off, none) = run(&path, false);
    // Each round, the fetches after the loads and stores once those are
    // recent hits again (after the first pass of the inner loop): about
    // eight. A fetch after a miss is never one.
    assert!(taken > 6 * 3000, "repeats taken ({taken})");
    assert_eq!(none, 0);
    assert_eq!(on, off);
    // Each crossing fetch is two translations.
    assert_eq!(
        on["translations"].as_u64(),
        Some(trace.len() as u64 + 2 * 3000),
        "{on}"
    );
}
