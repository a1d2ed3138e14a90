//! Tests: the span loop's repeated loads and fetches with a first level
//! shared by both sides (`Simulation::run_span` without recent hits: a
//! load or fetch of the block of the last hit `Mmu::hit_shared` took, of
//! the same kind, with nothing else done since, is counted by
//! `Mmu::hit_shared_again` without a lookup) against the same loop with
//! those repeats off (each through `hit_shared`): the same report, in runs
//! of small fully associative LRU levels where the order of the owed
//! touches decides what is evicted.

use vmsim_trace::{Access, AccessKind};

use super::span_runs::{access, report_of, vmt_file};
use crate::config::ConfigBuilder;

/// Round after round: runs of fetches of a hot code page and of loads of a
/// hot data page (repeats), a load of another data page between two
/// fetches (the fetch after it is no repeat: its touch comes after the
/// load's), stores between loads of one page (no repeat after them), the
/// pages touched in an order that changes each round, fetches at the hot
/// page's ends (one ending on its last byte, a repeat; one crossing out of
/// it and one crossing into it, two translations each, never repeats),
/// loads of the code page right after a fetch of it, and a fetch and a load of a new page each round (misses: fills that
/// evict the least recently used entry of a small level, which a wrong
/// touch order would choose differently).
fn repeat_trace() -> Vec<Access> {
    let hot = 0x40_0000u64;
    let mut out = Vec::new();
    for round in 0..3000u64 {
        let other = 0x80_0000 + 4096 * (round % 7);
        for j in 0..4 {
            out.push(access(hot + 8 * ((round + j) % 64), 4, AccessKind::Instr));
            out.push(access(hot + 16, 4, AccessKind::Instr));
            out.push(access(hot + 24, 4, AccessKind::Instr));
            out.push(access(other + 8 * j, 8, AccessKind::Load));
            out.push(access(other + 16, 8, AccessKind::Load));
            out.push(access(hot + 32, 4, AccessKind::Instr));
            out.push(access(
                0x90_0000 + 4096 * ((round + j) % 5),
                8,
                AccessKind::Load,
            ));
            out.push(access(hot + 40, 4, AccessKind::Instr));
            out.push(access(other + 24, 8, AccessKind::Store));
            out.push(access(other + 32, 8, AccessKind::Load));
            out.push(access(other + 40, 8, AccessKind::Load));
        }
        out.push(access(hot + 8, 4, AccessKind::Instr));
        out.push(access(hot + 4092, 4, AccessKind::Instr));
        out.push(access(hot + 4094, 4, AccessKind::Instr));
        out.push(access(hot + 8, 4, AccessKind::Instr));
        out.push(access(hot - 2, 4, AccessKind::Instr));
        out.push(access(hot + 48, 4, AccessKind::Instr));
        // A load of the code page right after a fetch of it: the other
        // side (another lookup, its own touch), no repeat.
        out.push(access(hot + 72, 8, AccessKind::Load));
        out.push(access(hot + 80, 8, AccessKind::Load));
        out.push(access(hot + 52, 4, AccessKind::Instr));
        out.push(access(0x1000_0000 + round * 4096, 4, AccessKind::Instr));
        out.push(access(hot + 56, 4, AccessKind::Instr));
        out.push(access(0x2000_0000 + round * 4096, 8, AccessKind::Load));
        out.push(access(hot + 64, 4, AccessKind::Instr));
    }
    out
}

/// The report of a run of `path` on one fully associative LRU level of
/// `entries` shared by both sides, and how many loads and fetches were
/// taken as repeats, with the repeats on or off.
fn run(path: &str, entries: usize, repeats: bool) -> (serde_json::Value, u64) {
    let tlb = format!(
        "[tlb]\nwalk_cache = []\n[[tlb.levels]]\nlatency = 1\n\
         [[tlb.levels.arrays]]\nname = \"fa\"\nholds = \"unified\"\n\
         entries = {entries}\nreplacement = \"lru\"\npage_sizes = [\"4KiB\"]\n"
    );
    let cfg = ConfigBuilder::preset(None)
        .expect("preset")
        .file(&tlb, "test")
        .expect("tlb")
        .build()
        .expect("config");
    report_of(
        cfg,
        path,
        |sim| sim.m.mmu.shared_again_off = !repeats,
        |sim| sim.m.mmu.shared_again_taken,
    )
}

#[test]
fn repeated_shared_hits_are_the_hits_a_lookup_would_find() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = repeat_trace();
    let path = vmt_file(&dir, "repeats.vmt", &trace);
    for entries in [4, 6, 16, 64] {
        let (on, taken) = run(&path, entries, true);
        let (off, none) = run(&path, entries, false);
        // Each round, at least the second and third fetch of the first
        // three and the second of two loads, four times over.
        assert!(taken > 8 * 3000, "{entries}: repeats taken ({taken})");
        assert_eq!(none, 0);
        assert_eq!(on, off, "{entries}");
        // Each crossing fetch is two translations.
        assert_eq!(
            on["translations"].as_u64(),
            Some(trace.len() as u64 + 2 * 3000),
            "{on}"
        );
    }
}
