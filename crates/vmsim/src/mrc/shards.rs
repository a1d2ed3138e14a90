//! SHARDS: spatially hashed approximate reuse-distance sampling
//! (Waldspurger, Park, Garthwaite and Ahmad, FAST 2015).
//!
//! A page is in the sample when the hash of its identity is below a
//! threshold `T` (rate `R = T / 2^64`): every reference to a sampled page is
//! kept, none to the others, so the sample's reuse distances are the full
//! trace's scaled by `R`. A sampled reference at stack distance `d` (the
//! page itself counted, so `d - 1` other pages were referenced since its
//! last use, as the paper counts reuse distance) counts at `1 + (d - 1) /
//! R` with weight `1 / R`, with one refinement: a reference to the same page
//! as the reference just before it (the commonest reference of a page
//! stream) is known to be at distance 1 and counts there; any other is at
//! distance 2 at least (an instruction page reused after one data page
//! must not look like a repeat). Two modes:
//!
//! - fixed rate: `R` given;
//! - fixed size (`SHARDS_max`): at most `s_max` sampled pages; when one more
//!   arrives, the page with the largest hash leaves the sample, `T` drops to
//!   its hash, and later references count with the new rate (weight `1/R`
//!   at the time of the reference, which is the paper's rescaling of the
//!   histogram expressed per reference).
//!
//! The estimate is adjusted as the paper's `SHARDS_adj`: the difference
//! between the references expected in the sample (`N`, in weight) and the
//! weight sampled is added to the smallest distance, so the estimated
//! curve is normalised by the true reference count.

use std::collections::BinaryHeap;

use vmsim_trace::DenseMap;

use super::lru::LruStack;

/// The 64-bit hash that decides sampling: SplitMix64's finaliser over the
/// page, its process and a seed (stable across platforms and versions).
#[inline]
#[must_use]
pub fn page_hash(pid: u32, page: u64, seed: u64) -> u64 {
    let mut z = page ^ (u64::from(pid)).rotate_right(17) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The sampling rate of threshold `t`.
fn rate_of(t: u64) -> f64 {
    if t == u64::MAX {
        1.0
    } else {
        t as f64 / 2f64.powi(64)
    }
}

/// The threshold of sampling rate `rate` (0 < rate <= 1).
#[must_use]
pub fn threshold(rate: f64) -> u64 {
    if rate >= 1.0 {
        u64::MAX
    } else {
        (rate * 2f64.powi(64)) as u64
    }
}

/// How the sample is bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShardsMode {
    /// A fixed sampling rate in (0, 1].
    Rate(f64),
    /// At most this many sampled pages (the rate adapts down from 1).
    Size(usize),
}

/// A SHARDS estimator fed one page reference at a time.
#[derive(Debug)]
pub struct Shards {
    mode: ShardsMode,
    seed: u64,
    t: u64,
    map: DenseMap,
    stack: LruStack,
    /// Per dense id of a sampled page: its hash (fixed-size mode).
    heap: BinaryHeap<(u64, u32)>,
    in_sample: usize,
    /// Weighted counts by scaled distance (index 0 unused).
    hist: Vec<f64>,
    cold: f64,
    refs: u64,
    sampled: u64,
    /// The current weight, 1 / rate.
    w: f64,
    /// Sampled immediate repeats not yet added to the histogram (at `w`).
    repeats: u64,
    /// The previous reference, and whether it was sampled (a reference to
    /// pid `u32::MAX`, page `u64::MAX` first would be taken for a repeat of
    /// an unsampled page: no trace reaches that address).
    last_pid: u32,
    last_page: u64,
    last_sampled: bool,
}

impl Shards {
    /// A new estimator (`seed` varies the hash).
    #[must_use]
    pub fn new(mode: ShardsMode, seed: u64) -> Self {
        let t = match mode {
            ShardsMode::Rate(r) => threshold(r),
            ShardsMode::Size(_) => u64::MAX,
        };
        Self {
            mode,
            seed,
            t,
            map: DenseMap::new(),
            stack: LruStack::new(),
            heap: BinaryHeap::new(),
            in_sample: 0,
            hist: Vec::new(),
            cold: 0.0,
            refs: 0,
            sampled: 0,
            w: match mode {
                ShardsMode::Rate(r) => 1.0 / rate_of(threshold(r)),
                ShardsMode::Size(_) => 1.0,
            },
            repeats: 0,
            last_pid: u32::MAX,
            last_page: u64::MAX,
            last_sampled: false,
        }
    }

    /// The current sampling rate.
    #[must_use]
    pub fn rate(&self) -> f64 {
        rate_of(self.t)
    }

    /// References seen, and references sampled.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.refs, self.sampled + self.repeats)
    }

    /// Estimated distinct pages of the whole trace: sampled pages / rate.
    #[must_use]
    pub fn estimated_pages(&self) -> f64 {
        let n = match self.mode {
            ShardsMode::Rate(_) => self.map.len(),
            ShardsMode::Size(_) => self.in_sample,
        };
        n as f64 / self.rate()
    }

    /// Feeds one reference.
    #[inline]
    pub fn access(&mut self, pid: u32, page: u64) {
        self.refs += 1;
        if page == self.last_page && pid == self.last_pid {
            self.repeats += u64::from(self.last_sampled);
            return;
        }
        let h = page_hash(pid, page, self.seed);
        let sampled = h < self.t;
        self.last_pid = pid;
        self.last_page = page;
        self.last_sampled = sampled;
        if sampled {
            self.sampled_ref(pid, page, h);
        }
    }

    #[inline(never)]
    fn sampled_ref(&mut self, pid: u32, page: u64, h: u64) {
        let Some(id) = self.map.id(pid, page) else {
            return;
        };
        let d = self.stack.access(id);
        if d == 0
            && let ShardsMode::Size(s_max) = self.mode
        {
            self.in_sample += 1;
            self.heap.push((h, id));
            if self.in_sample > s_max {
                self.flush_repeats();
                // The largest hash leaves; the threshold drops to it.
                while let Some(&(hh, gone)) = self.heap.peek() {
                    if self.in_sample <= s_max && hh < self.t {
                        break;
                    }
                    self.heap.pop();
                    self.t = self.t.min(hh);
                    self.stack.remove(gone);
                    self.in_sample -= 1;
                }
                self.w = 1.0 / self.rate();
                self.last_sampled = h < self.t;
                if h >= self.t {
                    // This very reference left the sample.
                    return;
                }
            }
        }
        self.sampled += 1;
        let w = self.w;
        if d == 0 {
            self.cold += w;
        } else {
            let scaled = (1.0 + (d - 1) as f64 * w).round().max(2.0) as u64;
            self.add(scaled, w);
        }
    }

    /// Adds the pending sampled repeats at the current weight.
    fn flush_repeats(&mut self) {
        if self.repeats > 0 {
            let w = self.w * self.repeats as f64;
            self.sampled += self.repeats;
            self.repeats = 0;
            self.add(1, w);
        }
    }

    #[inline]
    fn add(&mut self, d: u64, w: f64) {
        let d = d as usize;
        if d >= self.hist.len() {
            self.hist.resize((d + 1).next_power_of_two(), 0.0);
        }
        self.hist[d] += w;
    }

    /// Estimated miss ratios at `sizes` (each at least 1).
    #[must_use]
    pub fn miss_ratios(&self, sizes: &[u64]) -> Vec<f64> {
        let n = self.refs as f64;
        if self.refs == 0 {
            return vec![0.0; sizes.len()];
        }
        let pending = self.w * self.repeats as f64;
        let weight: f64 = self.cold + self.hist.iter().sum::<f64>() + pending;
        // SHARDS_adj: the shortfall (or excess) of sampled weight counts as
        // hits at the smallest distance.
        let adj = n - weight;
        let mut prefix = Vec::with_capacity(self.hist.len());
        let mut acc = 0.0;
        for (i, &w) in self.hist.iter().enumerate() {
            acc += w;
            if i == 1 {
                acc += adj + pending;
            }
            prefix.push(acc);
        }
        sizes
            .iter()
            .map(|&s| {
                let hits = if prefix.len() < 2 {
                    adj + pending
                } else {
                    prefix[(s as usize).min(prefix.len() - 1)]
                };
                ((n - hits) / n).clamp(0.0, 1.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrc::lru::StackHistogram;

    fn stream(n: usize, pages: u64) -> Vec<u64> {
        let mut x = 0x1234_5678_9abc_def1u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Skewed: a small hot set and a large cold one.
                if x.is_multiple_of(4) {
                    x % pages
                } else {
                    (x >> 20) % (pages / 20)
                }
            })
            .collect()
    }

    fn exact(refs: &[u64], sizes: &[u64]) -> Vec<f64> {
        let mut m = DenseMap::new();
        let mut s = LruStack::new();
        let mut h = StackHistogram::new();
        for &p in refs {
            let id = m.id(0, p).expect("room");
            h.record(s.access(id));
        }
        h.misses(sizes)
            .iter()
            .map(|&x| x as f64 / refs.len() as f64)
            .collect()
    }

    #[test]
    fn full_rate_is_exact_and_sampling_stays_close() {
        let refs = stream(200_000, 20_000);
        let sizes: Vec<u64> = (0..15).map(|i| 1 << i).collect();
        let want = exact(&refs, &sizes);
        let mut full = Shards::new(ShardsMode::Rate(1.0), 0);
        let mut tenth = Shards::new(ShardsMode::Rate(0.1), 0);
        let mut fixed = Shards::new(ShardsMode::Size(2000), 0);
        for &p in &refs {
            full.access(0, p);
            tenth.access(0, p);
            fixed.access(0, p);
        }
        let got = full.miss_ratios(&sizes);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        for est in [&tenth, &fixed] {
            let got = est.miss_ratios(&sizes);
            let mae: f64 = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / sizes.len() as f64;
            assert!(mae < 0.02, "mae {mae}: {got:?} vs {want:?}");
        }
        let distinct = refs.iter().collect::<std::collections::HashSet<_>>().len() as f64;
        let want = 2000.0 / distinct;
        assert!(
            (fixed.rate() / want - 1.0).abs() < 0.2,
            "{} vs {want}",
            fixed.rate()
        );
        assert!((fixed.estimated_pages() / distinct - 1.0).abs() < 0.1);
        assert!(tenth.counts().1 < 40_000);
    }
}
