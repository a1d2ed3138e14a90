//! Criterion benchmark of the policy lab: references per second for the
//! main policies on a seeded zipf stream. (The side-by-side comparison with
//! libCacheSim is bench/policy-vs-libcachesim.sh.)

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vmsim::reclaim::lab::{self, DenseTrace, Detail};
use vmsim::reclaim::{PolicyConfig, PolicyKind};

/// `n` references, zipf(1.0) over `pages` pages, by inverse CDF from a
/// seeded SplitMix64.
fn zipf(n: usize, pages: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(pages);
    let mut sum = 0.0;
    for r in 1..=pages {
        sum += 1.0 / r as f64;
        cdf.push(sum);
    }
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64 * sum;
            // Scatter ranks over the page space so ids carry no order.
            (cdf.partition_point(|&c| c < u) as u64).wrapping_mul(2_654_435_761) % (1 << 40)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let refs = zipf(1_000_000, 100_000, 42);
    let trace = DenseTrace::new(&refs, &[], "zipf").expect("fits");
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(trace.len() as u64));
    g.sample_size(10);
    for kind in [
        PolicyKind::Fifo,
        PolicyKind::Lru,
        PolicyKind::Clock,
        PolicyKind::Arc,
        PolicyKind::Opt,
    ] {
        for frames in [100usize, 10_000] {
            let f = NonZeroUsize::new(frames).expect("nonzero");
            g.bench_function(format!("{kind}/{frames}"), |b| {
                b.iter(|| {
                    lab::run(
                        kind,
                        &PolicyConfig::default(),
                        black_box(&trace),
                        f,
                        Detail::Totals,
                        |_| {},
                    )
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
