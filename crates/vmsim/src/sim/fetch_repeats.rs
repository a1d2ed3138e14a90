//! Tests: the span loop's repeated fetches (`Simulation::run_span` with
//! recent hits: a fetch of the key of the last fetch `hit_recent` took,
//! with only load hits and stores taken whole since, is counted by
//! `Mmu::hit_recent_again` without a lookup) against the TLB without
//! recent hits (every reference through `span_reference` and
//! `translate`): the same report, in runs where the fetch side changes
//! between two fetches of one page (fills that evict it, touches of
//! other ways) and where only the data side does.

use vmsim_trace::{Access, AccessKind};

use super::span_runs::{access, report_of_default, vmt_file};

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
    report_of_default(path, recent, |sim| sim.m.mmu.recent_again_taken)
}

#[test]
fn repeated_fetches_are_the_hits_a_lookup_would_find() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = repeat_trace();
    let path = vmt_file(&dir, "repeats.vmt", &trace);
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
