//! Miss-ratio curves: misses as a function of memory size, for a whole
//! range of sizes at once.
//!
//! - [`LruStack`] + [`StackHistogram`]: exact LRU stack distances in one
//!   pass (Fenwick tree over reference times, O(log pages) per reference,
//!   memory proportional to the distinct pages); the same numbers are a
//!   fully associative LRU TLB's misses by entries.
//! - [`opt_histogram`]: OPT's (Belady's MIN) stack distances in one pass.
//! - [`Shards`]: SHARDS sampling, fixed rate or fixed size.
//! - [`sample`]: a spatially sampled trace for miniature simulations of any
//!   policy (Waldspurger et al., USENIX ATC 2017).
//!
//! Pages are dense ids ([`vmsim_trace::DenseMap`]) so all state is arrays.
//! Everything here is deterministic; nothing is parallel (the CLI runs
//! independent curves and sizes on a thread pool).

mod fenwick;
mod lru;
mod opt;
mod shards;

pub use fenwick::Fenwick;
pub use lru::{LruStack, StackHistogram};
pub use opt::opt_histogram;
pub use shards::{Shards, ShardsMode, page_hash, threshold};

use crate::reclaim::lab::DenseTrace;

/// The references of `trace` to the pages whose [`page_hash`] falls under
/// sampling rate `rate`, renumbered densely: a miniature of the trace in
/// which a memory of `c * rate` frames behaves like one of `c` frames in
/// the full trace.
#[must_use]
pub fn sample(trace: &DenseTrace, rate: f64, seed: u64) -> DenseTrace {
    let t = threshold(rate);
    let pids = trace.pids();
    let pages = trace.pages();
    trace.filter(|id| {
        let i = id as usize;
        page_hash(pids.get(i).copied().unwrap_or(0), pages[i], seed) < t
    })
}

/// Mean and largest absolute difference between two curves of the same
/// sizes (miss ratios).
#[must_use]
pub fn curve_error(a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = a.len().min(b.len());
    if n == 0 {
        return (0.0, 0.0);
    }
    let (sum, max) = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold((0.0, 0.0f64), |(s, m), d| (s + d, m.max(d)));
    (sum / n as f64, max)
}
