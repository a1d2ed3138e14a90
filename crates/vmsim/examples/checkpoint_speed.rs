//! Checkpoint speed: writing the page data of a full checkpoint of a large
//! memory image, and restoring it (bench/checkpoint-speed.sh runs this).
//!
//!   cargo run --release -p vmsim --example checkpoint_speed -- [MiB] [DIR]
//!
//! Fills MiB (default 1024) of simulated memory (every page written: a
//! store every 64 bytes), then times, in the run's thread:
//! - encoding a full checkpoint into memory (`Simulation::checkpoint`);
//! - writing a full checkpoint file to DIR (default: a temporary
//!   directory), page data streamed, split into the write and the fsync;
//! - restoring from that file (read, CRC-32C checked, memory rebuilt,
//!   kernel invariants checked), and from the in-memory image.
//!   Prints MB/s (10^6 bytes per second) of page data and seconds.

use std::time::Instant;

use vmsim::checkpoint::{Chain, ChainWriter, Checkpoint};
use vmsim::config::ConfigBuilder;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{LayoutKind, ProcessSpec, Scenario};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map_or(Ok(1024), |a| a.parse())?;
    let keep;
    let dir = match args.get(2) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            keep = tempfile::tempdir()?;
            keep.path().to_path_buf()
        }
    };
    let frames = mib * 256 + mib.div_ceil(2) * 2 + 64;
    let cfg = ConfigBuilder::preset(None)?
        .set(&format!("memory.frames={frames}"))?
        .set(&format!("checkpoint.every={}", u64::MAX / 2))?
        .build()?;
    let scenario = Scenario {
        description: format!("{mib} MiB, every page written"),
        quantum: vmsim_trace::scenario::DEFAULT_QUANTUM,
        preset: None,
        set: Vec::new(),
        processes: vec![ProcessSpec {
            name: "fill".into(),
            trace: Some(format!(
                "synth:scan,bytes={mib}MiB,stride=64,write=1,size=8"
            )),
            layout: LayoutKind::Flat,
            parent: None,
            brk: 0,
            mmap: Vec::new(),
            forks: Vec::new(),
            exit_after: None,
        }],
    };
    let mut sim = Simulation::new(cfg)?;
    sim.start(&scenario)?;
    let t = Instant::now();
    sim.run_until(mib * 1024 * 1024 / 64, &mut ())?;
    let chunks = sim.memory().stored_chunks() as u64;
    let page_bytes = chunks * 4096;
    println!(
        "filled {mib} MiB in {:.2} s: {} chunks of page data ({:.0} MB)",
        t.elapsed().as_secs_f64(),
        chunks,
        page_bytes as f64 / 1e6
    );
    let mbs = |secs: f64| page_bytes as f64 / 1e6 / secs;

    let t = Instant::now();
    let image = sim.checkpoint()?;
    let enc = t.elapsed().as_secs_f64();
    println!("encode in memory   {enc:.3} s  {:>7.0} MB/s", mbs(enc));

    let mut writer = ChainWriter::create(&dir.join("ck"))?.in_foreground();
    let t = Instant::now();
    sim.take_checkpoint(Some(&mut writer))?;
    let written = t.elapsed().as_secs_f64();
    println!(
        "write file + fsync {written:.3} s  {:>7.0} MB/s  ({} bytes)",
        mbs(written),
        writer.bytes_written()
    );
    let raw = dir.join("raw.vmck");
    let t = Instant::now();
    std::fs::write(&raw, image.as_bytes())?;
    let w = t.elapsed().as_secs_f64();
    let f = std::fs::File::open(&raw)?;
    let t = Instant::now();
    f.sync_all()?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "  of which: write {w:.3} s ({:.0} MB/s), fsync {s:.3} s",
        mbs(w)
    );
    drop(sim);

    let chain = Chain::open(&dir.join("ck"))?;
    let t = Instant::now();
    let back = chain.restore(Some(0), &[])?;
    let r = t.elapsed().as_secs_f64();
    println!("restore from file  {r:.3} s  {:>7.0} MB/s", mbs(r));
    assert_eq!(back.memory().stored_chunks() as u64, chunks);
    drop(back);
    let t = Instant::now();
    let img = Checkpoint::from_bytes(image.as_bytes().to_vec(), "image")?;
    let back = Simulation::restore(&img, &[])?;
    let r = t.elapsed().as_secs_f64();
    println!("restore from memory {r:.3} s  {:>7.0} MB/s", mbs(r));
    assert_eq!(back.memory().stored_chunks() as u64, chunks);
    Ok(())
}
