//! Times reading whole traces: `cargo run --release -p vmsim-trace --example
//! read_speed -- TRACE...` prints references per second for each TRACE (a file
//! or a `synth:` spec), reading only (no statistics), best of three runs.
//!
//! On a shared machine wall time includes waiting for a core, so it also
//! prints the reading thread's own CPU time (from `/proc/thread-self/schedstat`
//! on Linux): references per second of one core. With more than one core, a
//! lackey trace is decompressed and parsed on a helper thread (see
//! `vmsim_trace::ahead`) and a zstd `.vmt` decompressed on one, which that
//! figure does not include: run under `taskset -c 0` to time the whole
//! reader on one core.

use std::time::Instant;

use vmsim_trace::{Access, TraceError, TraceSource, open};

fn read_all(spec: &str) -> Result<(u64, u64), TraceError> {
    let mut src = open(spec)?;
    let mut batch: Vec<Access> = Vec::new();
    let (mut n, mut sum) = (0u64, 0u64);
    while src.next_batch(&mut batch)? > 0 {
        n += batch.len() as u64;
        for a in &batch {
            sum = sum.wrapping_add(a.va ^ u64::from(a.size));
        }
    }
    Ok((n, sum))
}

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), TraceError> {
    for spec in std::env::args().skip(1) {
        let (mut best_wall, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
        let mut refs = 0;
        for _ in 0..3 {
            let cpu0 = thread_cpu_ns();
            let t = Instant::now();
            let (n, sum) = read_all(&spec)?;
            best_wall = best_wall.min(t.elapsed().as_secs_f64());
            if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
                best_cpu = best_cpu.min((b - a) as f64 / 1e9);
            }
            refs = n;
            std::hint::black_box(sum);
        }
        let rate = |secs: f64| refs as f64 / secs / 1e6;
        println!(
            "{spec}: {refs} refs; wall {best_wall:.3} s = {:.1} M refs/s; reader thread CPU {best_cpu:.3} s = {:.1} M refs/s",
            rate(best_wall),
            rate(best_cpu)
        );
    }
    Ok(())
}
