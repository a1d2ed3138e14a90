//! OPT's stack distances in one pass: Belady's MIN is a stack algorithm
//! (Mattson et al. 1970), so one pass over the trace gives its misses at
//! every memory size.
//!
//! The stack is ordered by priority, the next reference time (sooner is
//! higher). On a reference to `x` at depth `Δ`, `x` goes on top and the old
//! top is carried down: at each depth above `Δ` the carried page and the
//! page there are compared, the one referenced sooner stays, the other is
//! carried on; the last carried page fills `x`'s old place. Only the pages
//! whose next reference is later than every page above them (the running
//! maxima) move, so the update jumps from one to the next with a
//! max-segment tree over depths ("first depth after `p` whose next
//! reference is later than `t`"): O(moves x log depth) per reference.
//! Pages never referenced again tie; a tie keeps its place.
//!
//! The stack can be cut at a depth `K` (the largest size asked for):
//! whatever falls below `K` never affects the depths above it.

use super::lru::StackHistogram;
use crate::reclaim::NEVER;
use crate::reclaim::lab::DenseTrace;

const NONE: u32 = u32::MAX;

/// A max-segment tree over `n` leaves (power-of-two layout).
#[derive(Debug)]
struct MaxTree {
    size: usize,
    t: Vec<u64>,
}

impl MaxTree {
    fn new(n: usize) -> Self {
        let size = n.max(1).next_power_of_two();
        Self {
            size,
            t: vec![0; 2 * size],
        }
    }

    #[inline]
    fn set(&mut self, i: usize, v: u64) {
        let mut k = i + self.size;
        self.t[k] = v;
        while k > 1 {
            k >>= 1;
            let m = self.t[2 * k].max(self.t[2 * k + 1]);
            if self.t[k] == m {
                break;
            }
            self.t[k] = m;
        }
    }

    /// The first leaf in `lo..hi` whose value is greater than `v`.
    fn first_greater(&self, lo: usize, hi: usize, v: u64) -> Option<usize> {
        if lo >= hi {
            return None;
        }
        self.search(1, 0, self.size, lo, hi, v)
    }

    fn search(&self, k: usize, l: usize, r: usize, lo: usize, hi: usize, v: u64) -> Option<usize> {
        if r <= lo || hi <= l || self.t[k] <= v {
            return None;
        }
        if r - l == 1 {
            return Some(l);
        }
        let m = (l + r) / 2;
        self.search(2 * k, l, m, lo, hi, v)
            .or_else(|| self.search(2 * k + 1, m, r, lo, hi, v))
    }
}

/// OPT's stack-distance histogram of `trace`, with the stack cut at depth
/// `max_depth` (distances beyond it count as misses at every size up to
/// it). `next_use` is [`DenseTrace::next_uses`].
///
/// # Panics
/// If `next_use` is not of the trace's length (a caller bug).
#[must_use]
pub fn opt_histogram(trace: &DenseTrace, next_use: &[u64], max_depth: usize) -> StackHistogram {
    assert_eq!(next_use.len(), trace.len(), "next uses of another trace");
    let k = max_depth.max(1).min(trace.n_ids().max(1));
    let mut pos = vec![NONE; trace.n_ids()];
    let mut elem: Vec<u32> = Vec::with_capacity(k);
    // Keys: next reference time + 1 (so 0 can mean "empty"); NEVER stays NEVER.
    let key_of = |t: u64| if t == NEVER { NEVER } else { t + 1 };
    let mut keys = MaxTree::new(k);
    let mut key = vec![0u64; k];
    let mut h = StackHistogram::new();
    for (i, &x) in trace.ids().iter().enumerate() {
        let nx = key_of(next_use[i]);
        let p = pos[x as usize];
        if p == 0 {
            h.record(1);
            key[0] = nx;
            keys.set(0, nx);
            continue;
        }
        // `end`: where the last carried page lands (x's old depth, or the
        // stack's end: it grows, or the carried page falls off at depth k).
        let end = if p == NONE {
            h.record(0);
            elem.len()
        } else {
            h.record(u64::from(p) + 1);
            p as usize
        };
        if elem.is_empty() {
            elem.push(x);
            pos[x as usize] = 0;
            key[0] = nx;
            keys.set(0, nx);
            continue;
        }
        let mut carried = elem[0];
        let mut ck = key[0];
        elem[0] = x;
        pos[x as usize] = 0;
        key[0] = nx;
        keys.set(0, nx);
        let mut at = 0usize;
        while let Some(q) = keys.first_greater(at + 1, end, ck) {
            // The page at q is referenced later than everything carried so
            // far: the carried page takes its place and it is carried on.
            let (e, ek) = (elem[q], key[q]);
            elem[q] = carried;
            pos[carried as usize] = q as u32;
            key[q] = ck;
            keys.set(q, ck);
            carried = e;
            ck = ek;
            at = q;
        }
        if end < elem.len() || end < k {
            if end == elem.len() {
                elem.push(carried);
            } else {
                elem[end] = carried;
            }
            pos[carried as usize] = end as u32;
            key[end] = ck;
            keys.set(end, ck);
        } else {
            pos[carried as usize] = NONE;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::reclaim::lab::{self, Detail};
    use crate::reclaim::{PolicyConfig, PolicyKind};

    fn opt_misses(t: &DenseTrace, frames: usize) -> u64 {
        lab::run(
            PolicyKind::Opt,
            &PolicyConfig::default(),
            t,
            NonZeroUsize::new(frames).expect("nonzero"),
            Detail::Totals,
            |_| {},
        )
        .misses
    }

    #[test]
    fn one_pass_equals_belady_at_every_size() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for (len, pages) in [(12, 5), (300, 9), (3000, 60), (5000, 300)] {
            let refs: Vec<u64> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if i % 4 == 0 {
                        i as u64 % pages
                    } else {
                        x % pages
                    }
                })
                .collect();
            let t = DenseTrace::new(&refs, &[], "t").expect("small");
            let nu = t.next_uses();
            let full = opt_histogram(&t, &nu, t.n_ids());
            let cut = opt_histogram(&t, &nu, 7);
            for f in 1..=t.n_ids() + 1 {
                let want = opt_misses(&t, f);
                assert_eq!(full.misses_at(f as u64), want, "len {len} frames {f}");
                if f <= 7 {
                    assert_eq!(cut.misses_at(f as u64), want, "cut, frames {f}");
                }
            }
        }
        let belady = [1u64, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        let t = DenseTrace::new(&belady, &[], "b").expect("small");
        let h = opt_histogram(&t, &t.next_uses(), 5);
        assert_eq!(h.misses(&[3, 4]), [7, 6]);
    }
}
