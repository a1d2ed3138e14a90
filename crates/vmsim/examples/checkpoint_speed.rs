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
//!   Prints MB/s (10^6 bytes per second) of page data and seconds, of
//!   wall time and of this thread's CPU time (Linux: the scheduler's count
//!   in /proc; the wall time of a shared machine includes other work).

use std::time::Instant;

/// This thread's CPU time in seconds, from /proc/thread-self/schedstat
/// (Linux); `None` elsewhere.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Times `f`: (wall seconds, CPU seconds of this thread).
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, Option<f64>) {
    let c = cpu_secs();
    let t = Instant::now();
    let v = f();
    let wall = t.elapsed().as_secs_f64();
    let cpu = c.zip(cpu_secs()).map(|(a, b)| b - a);
    (v, wall, cpu)
}

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
        quantum: None,
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
    let line = |what: &str, wall: f64, cpu: Option<f64>| {
        let cpu = cpu.map_or("cpu n/a".into(), |c| {
            format!("cpu {c:.3} s {:>7.0} MB/s", mbs(c))
        });
        println!(
            "{what:<20} wall {wall:.3} s {:>7.0} MB/s   {cpu}",
            mbs(wall)
        );
    };

    let (image, wall, cpu) = timed(|| sim.checkpoint());
    let image = image?;
    line("encode in memory", wall, cpu);

    let mut writer = ChainWriter::create(&dir.join("ck"))?.in_foreground();
    let (r, wall, cpu) = timed(|| sim.take_checkpoint(Some(&mut writer)));
    r?;
    line("write file + fsync", wall, cpu);
    println!("  ({} bytes in the file)", writer.bytes_written());
    let raw = dir.join("raw.vmck");
    let (r, wall, cpu) = timed(|| std::fs::write(&raw, image.as_bytes()));
    r?;
    line("  of which: write", wall, cpu);
    let f = std::fs::File::open(&raw)?;
    let (r, wall, cpu) = timed(|| f.sync_all());
    r?;
    line("  of which: fsync", wall, cpu);
    // Chunks stored with contents (a stored chunk may have become zero
    // again: files record contents, so a restored memory stores only these).
    let with_data = (0..sim.memory().chunk_count())
        .filter(|&i| {
            sim.memory()
                .chunk_bytes(i)
                .is_some_and(|c| c.iter().any(|&b| b != 0))
        })
        .count() as u64;
    drop(sim);

    let chain = Chain::open(&dir.join("ck"))?;
    let (back, wall, cpu) = timed(|| chain.restore(Some(0), &[]));
    let back = back?;
    line("restore from file", wall, cpu);
    assert_eq!(back.memory().stored_chunks() as u64, with_data);
    drop(back);
    let (back, wall, cpu) = timed(|| {
        Checkpoint::from_bytes(image.as_bytes().to_vec(), "image")
            .and_then(|img| Simulation::restore(&img, &[]))
    });
    let back = back?;
    line("restore from memory", wall, cpu);
    assert_eq!(back.memory().stored_chunks() as u64, with_data);
    Ok(())
}
