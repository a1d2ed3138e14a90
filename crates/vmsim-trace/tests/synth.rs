//! Synthetic workloads through the public `open`.

use vmsim_trace::{AccessKind, open, stats};

#[test]
fn course_array_scan_is_16m_reads_on_16384_pages() {
    let s = stats(&mut open("synth:scan,bytes=64MiB,stride=4").unwrap()).unwrap();
    assert_eq!(s.refs, 16 * 1024 * 1024);
    assert_eq!(s.load, s.refs);
    assert_eq!(s.pages_4k, 16384);
    assert_eq!(s.pages_2m, 32);
    assert_eq!(s.footprint_bytes, 64 << 20);
}

#[test]
fn loop_touches_its_pages_repeatedly() {
    let s = stats(&mut open("synth:loop,pages=100,repeats=7,write=1").unwrap()).unwrap();
    assert_eq!((s.refs, s.store, s.pages_4k), (700, 700, 100));
}

#[test]
fn phases_cover_shifted_working_sets() {
    let s = stats(&mut open("synth:phases,pages=64,phases=3,shift=32,refs=300000,seed=4").unwrap())
        .unwrap();
    // Sets [0,64), [32,96), [64,128): 128 pages in all, each surely drawn.
    assert_eq!(s.pages_4k, 128);
}

#[test]
fn zipf_hits_few_pages_hard() {
    let mut src = open("synth:zipf,pages=100000,s=1.1,refs=100000,write=0.5").unwrap();
    let s = stats(&mut src).unwrap();
    assert!(s.pages_4k < 30_000, "{}", s.pages_4k);
    assert!(s.store > 45_000 && s.store < 55_000);
    assert_eq!(s.of_kind(AccessKind::Instr), 0);
}
