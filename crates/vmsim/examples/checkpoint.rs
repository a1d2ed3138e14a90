//! Snapshot, rewind and checkpoint a simulation from a program, without the
//! CLI: the library API of `vmsim::checkpoint`.
//!
//! Runs a small workload (a zipf stream that swaps in 1024 frames) halfway,
//! takes a snapshot in memory, finishes, then rewinds to the snapshot and
//! finishes again: both endings report the same figures. Then runs it
//! again writing a checkpoint chain to a temporary directory, walks the
//! chain, and restores its third checkpoint.
//!
//!   cargo run -p vmsim --example checkpoint

use vmsim::checkpoint::{Chain, ChainWriter};
use vmsim::config::ConfigBuilder;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{LayoutKind, ProcessSpec, Scenario};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = ConfigBuilder::preset(None)?
        .set("memory.frames=1024")?
        .set("checkpoint.every=50000")?
        .build()?;
    let scenario = Scenario {
        description: "zipf over 2000 pages in 1024 frames".into(),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: vec![ProcessSpec {
            name: "zipf".into(),
            trace: Some("synth:zipf,pages=2000,refs=200K,write=0.3".into()),
            layout: LayoutKind::Flat,
            parent: None,
            brk: 0,
            mmap: Vec::new(),
            forks: Vec::new(),
            exit_after: None,
        }],
    };

    // Snapshot and rewind, in memory.
    let mut sim = Simulation::new(cfg.clone())?;
    sim.start(&scenario)?;
    sim.run_until(100_000, &mut ())?;
    let snapshot = sim.checkpoint()?;
    println!(
        "snapshot at reference {}: {} bytes, {} memory chunks",
        snapshot.header().references,
        snapshot.as_bytes().len(),
        snapshot.header().data_chunks
    );
    let first = sim.run_to_end(&mut (), None)?;
    let again = Simulation::restore(&snapshot, &[])?.run_to_end(&mut (), None)?;
    println!(
        "first ending: {} major faults, {} swap-outs; after the rewind: {} and {}",
        first.major_faults, first.paging.swap_outs, again.major_faults, again.paging.swap_outs
    );
    assert_eq!(
        serde_json::to_value(first.paging)?,
        serde_json::to_value(again.paging)?
    );

    // A checkpoint chain on disk, walked and restored.
    let dir = tempfile::tempdir()?;
    let mut writer = ChainWriter::create(dir.path())?;
    let mut sim = Simulation::new(cfg)?;
    sim.start(&scenario)?;
    let report = sim.run_to_end(&mut (), Some(&mut writer))?;
    writer.finish()?;
    let chain = Chain::open(dir.path())?;
    for entry in chain.iter() {
        let h = entry.header.as_ref().map_err(|e| e.clone())?;
        println!(
            "  {} {:>4} at reference {:>6}: {:>8} bytes, {} chunks",
            entry
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into()),
            if h.full { "full" } else { "incr" },
            h.references,
            entry.bytes,
            h.data_chunks
        );
    }
    let restored = chain.restore(Some(2), &[])?;
    println!(
        "restored checkpoint 2 at reference {}; the run ended with {} references",
        restored.references(),
        report.references
    );
    let rerun = restored.run_to_end(&mut (), None)?;
    assert_eq!(rerun.references, report.references);
    assert_eq!(rerun.major_faults, report.major_faults);
    Ok(())
}
