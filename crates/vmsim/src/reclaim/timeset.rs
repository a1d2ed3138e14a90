//! A set of reference times (indices into a reference string) as a bitset
//! with summary levels: insert, remove and the largest element below a
//! bound in O(log64 n) word operations, with no allocation after
//! construction. OPT keeps the next uses of its resident pages here: a
//! reference string refers to one page at each time, so resident pages'
//! next uses are distinct times, and the farthest one is the largest
//! element.

/// Times `0..capacity`, each present or not.
#[derive(Debug, Clone)]
pub(crate) struct TimeSet {
    /// `levels[0]` has one bit per time; bit `j` of `levels[k + 1]` is set
    /// when word `j` of `levels[k]` is not zero. The last level is one word.
    levels: Vec<Vec<u64>>,
}

impl TimeSet {
    /// An empty set for times `0..capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut levels = Vec::new();
        let mut words = capacity.div_ceil(64).max(1);
        loop {
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        Self { levels }
    }

    /// Adds time `t` (the set grows if `t` is beyond its capacity).
    #[inline]
    pub(crate) fn insert(&mut self, t: u64) {
        if t >= self.levels[0].len() as u64 * 64 {
            self.grow(t);
        }
        let mut i = t as usize;
        for level in &mut self.levels {
            let w = &mut level[i / 64];
            let was = *w;
            *w = was | 1 << (i % 64);
            if was != 0 {
                break;
            }
            i /= 64;
        }
    }

    /// Removes time `t` (absent is fine).
    #[inline]
    pub(crate) fn remove(&mut self, t: u64) {
        if t >= self.levels[0].len() as u64 * 64 {
            return;
        }
        let mut i = t as usize;
        for level in &mut self.levels {
            let w = &mut level[i / 64];
            *w &= !(1 << (i % 64));
            if *w != 0 {
                break;
            }
            i /= 64;
        }
    }

    /// Room for times up to `t` at least (doubling).
    #[cold]
    fn grow(&mut self, t: u64) {
        let cap = usize::try_from(t)
            .unwrap_or(usize::MAX / 2)
            .saturating_add(1)
            .next_power_of_two();
        let old = std::mem::replace(self, Self::new(cap.max(64)));
        for (w, &bits) in old.levels[0].iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                self.insert(w as u64 * 64 + u64::from(b.trailing_zeros()));
                b &= b - 1;
            }
        }
    }

    /// The largest element.
    #[inline]
    pub(crate) fn max(&self) -> Option<u64> {
        self.max_below(self.levels[0].len() as u64 * 64)
    }

    /// The largest element below `limit`.
    pub(crate) fn max_below(&self, limit: u64) -> Option<u64> {
        let mut i = limit
            .checked_sub(1)?
            .min(self.levels[0].len() as u64 * 64 - 1) as usize;
        for (level, words) in self.levels.iter().enumerate() {
            let w = words[i / 64] & (u64::MAX >> (63 - i % 64));
            if w != 0 {
                let mut pos = (i / 64) * 64 + (63 - w.leading_zeros()) as usize;
                for below in self.levels[..level].iter().rev() {
                    pos = pos * 64 + (63 - below[pos].leading_zeros()) as usize;
                }
                return Some(pos as u64);
            }
            if i < 64 {
                return None;
            }
            i = i / 64 - 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// Against a `BTreeSet` over capacities of one to three levels.
        #[test]
        fn agrees_with_a_btreeset(
            cap in prop_oneof![0usize..70, 4000usize..5000, 262_000usize..263_000],
            grown in 0usize..3,
            ops in proptest::collection::vec((any::<bool>(), any::<u64>(), any::<u64>()), 1..300),
        ) {
            // Made smaller than the times it sees, it grows.
            let mut s = TimeSet::new(cap >> (grown * 6));
            let cap = cap.max(1);
            let mut model = BTreeSet::new();
            for (add, t, limit) in ops {
                let t = t % cap as u64;
                if add {
                    s.insert(t);
                    model.insert(t);
                } else {
                    s.remove(t);
                    model.remove(&t);
                }
                let limit = limit % (cap as u64 + 2);
                prop_assert_eq!(s.max_below(limit), model.range(..limit).next_back().copied());
                prop_assert_eq!(s.max(), model.last().copied());
            }
        }
    }
}
