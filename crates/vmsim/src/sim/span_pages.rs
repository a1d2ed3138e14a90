//! Tests: the span loop's page test (`Simulation::run_span` with recent
//! hits: a fetch or load goes to its recent hit only inside one page, a
//! store to `span_store` only inside one page) against the TLB without
//! recent hits (every reference through `span_reference` and
//! `translate`), in a whole run of references of every kind that cross a
//! page right after a hit on their first page: the same report.

use vmsim_trace::{Access, AccessKind};

use super::span_runs::{report_of_default, vmt_file};

/// References of every kind: per page two references inside it (its
/// first page a recent hit after them), one that crosses into the next
/// page (in the third round, one that ends on the page's last byte), and
/// one that ends on the page's last byte.
fn crossing_trace() -> Vec<Access> {
    let mut out = Vec::new();
    for round in 0..3u64 {
        for page in 0..200u64 {
            for (region, kind) in [
                (0x40_0000u64, AccessKind::Instr),
                (0x80_0000, AccessKind::Load),
                (0xc0_0000, AccessKind::Store),
                (0x100_0000, AccessKind::Modify),
            ] {
                let base = region + page * 4096;
                for (off, size) in [(8, 4), (16, 8), (4094 - round, 4), (4088, 8)] {
                    out.push(Access {
                        va: base + off,
                        pid: 1,
                        size,
                        kind,
                    });
                }
            }
        }
    }
    out
}

/// The report of a run of `path`, and the recent hits taken (both sides),
/// with the TLB's recent hits on or off.
fn run(path: &str, recent: bool) -> (serde_json::Value, u64) {
    report_of_default(path, recent, |sim| sim.m.mmu.recent_hits().iter().sum())
}

#[test]
fn references_that_cross_a_page_are_never_recent_hits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = crossing_trace();
    let path = vmt_file(&dir, "cross.vmt", &trace);
    let (on, taken) = run(&path, true);
    let (off, none) = run(&path, false);
    // (A first-level hit right after a fill is not recorded, so each
    // page's first reference after its fill leaves no recent hit: 798
    // taken, where every hit recorded gave over 1000.)
    assert!(taken > 600, "recent hits taken ({taken})");
    assert_eq!(none, 0);
    assert_eq!(on, off);
    // Each crossing reference is two translations.
    let crossing = trace
        .iter()
        .filter(|a| (a.va & 4095) + u64::from(a.size) > 4096)
        .count() as u64;
    // (Two rounds of the four kinds cross; the third ends on the page.)
    assert_eq!(crossing, 2 * 200 * 4);
    assert_eq!(
        on["translations"].as_u64(),
        Some(trace.len() as u64 + crossing),
        "{on}"
    );
}
