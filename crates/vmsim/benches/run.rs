//! References per second through a whole [`Simulation`] on the default
//! preset: trace decoding, the scenario loop, TLB lookups, walks and faults.
//!
//! - `run/vmt/sort_2k`: the committed real trace `bench/data/sort_2k.lackey.zst`
//!   (valgrind lackey, 3.1M references), converted to `.vmt` once before
//!   timing, then simulated from the `.vmt`.
//! - `run/synth/scan`: a generated sequential scan (`synth:scan`, 4-byte
//!   stride, 4M references), the TLB-hit-dominated stream.
//!
//! The machine is built outside the timed part (start-up is not a
//! per-reference cost). The target (one core): `.vmt` at least 100M
//! references per second. The end-to-end figures, including process start and the lackey
//! + zstd reader, come from `bench/run-speed.sh`.
//!
//! Run: `cargo bench -p vmsim --bench run`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vmsim::config::ConfigBuilder;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{LayoutKind, ProcessSpec, Scenario};

/// A one-process scenario running `trace`, as `vmsim run TRACE` builds it.
fn scenario(trace: &str) -> Scenario {
    Scenario {
        description: trace.to_owned(),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: vec![ProcessSpec {
            name: "bench".to_owned(),
            trace: Some(trace.to_owned()),
            layout: LayoutKind::Flat,
            parent: None,
            brk: 0,
            mmap: Vec::new(),
            forks: Vec::new(),
            exit_after: None,
        }],
    }
}

/// A fresh machine on the default preset (built outside the timed part:
/// start-up is not a per-reference cost).
fn machine() -> Simulation {
    let cfg = ConfigBuilder::preset(None)
        .and_then(ConfigBuilder::build)
        .expect("the default preset is valid");
    Simulation::new(cfg).expect("the default machine builds")
}

/// Simulates `scenario` on `sim`; returns the references simulated.
fn simulate(sim: Simulation, scenario: &Scenario) -> u64 {
    let report = sim.run(scenario, &mut ()).expect("the run succeeds");
    report.references
}

/// Converts the committed lackey trace to `.vmt` in `dir`.
fn sort_2k_vmt(dir: &Path) -> PathBuf {
    let lackey = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/data/sort_2k.lackey.zst");
    let vmt = dir.join("sort_2k.vmt");
    let mut source = vmsim_trace::open_path(&lackey).expect("bench/data/sort_2k.lackey.zst opens");
    vmsim_trace::vmt::convert(&mut source, &vmt).expect("the trace converts");
    vmt
}

fn run(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let vmt = sort_2k_vmt(dir.path());
    let inputs = [
        ("vmt/sort_2k", scenario(&vmt.display().to_string())),
        ("synth/scan", scenario("synth:scan,bytes=16MiB,stride=4")),
    ];
    let mut group = c.benchmark_group("run");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (name, scenario) in &inputs {
        let refs = simulate(machine(), scenario);
        group.throughput(Throughput::Elements(refs));
        group.bench_function(*name, |b| {
            b.iter_batched(
                machine,
                |sim| black_box(simulate(sim, black_box(scenario))),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, run);
criterion_main!(benches);
