//! A Fenwick (binary indexed) tree of counts: prefix sums and point updates
//! in O(log n), built in O(n).

/// Counts over positions `0..len`, with prefix sums.
#[derive(Debug, Clone, Default)]
pub struct Fenwick {
    /// 1-based implicit tree: `t[i]` sums the `i & -i` positions ending at `i - 1`.
    t: Vec<u32>,
}

impl Fenwick {
    /// A tree of `len` zero counts.
    #[must_use]
    pub fn new(len: usize) -> Self {
        Self {
            t: vec![0; len + 1],
        }
    }

    /// Number of positions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.t.len() - 1
    }

    /// Whether there are no positions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.t.len() <= 1
    }

    /// Adds `delta` (wrapping, so -1 is `u32::MAX`) at position `i`.
    #[inline]
    pub fn add(&mut self, i: usize, delta: u32) {
        let mut i = i + 1;
        let n = self.t.len();
        while i < n {
            self.t[i] = self.t[i].wrapping_add(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// The sum of positions `0..i`.
    #[inline]
    #[must_use]
    pub fn prefix(&self, i: usize) -> u32 {
        let mut i = i;
        let mut s = 0u32;
        while i > 0 {
            s = s.wrapping_add(self.t[i]);
            i &= i - 1;
        }
        s
    }

    /// Replaces the tree by one of `len` positions whose first `count` hold
    /// `value` and the rest 0, in O(len).
    pub fn reset_prefix(&mut self, len: usize, count: usize, value: u32) {
        self.t.clear();
        self.t.resize(len + 1, 0);
        for i in 1..=count.min(len) {
            self.t[i] = value;
        }
        for i in 1..=len {
            let j = i + (i & i.wrapping_neg());
            if j <= len {
                self.t[j] = self.t[j].wrapping_add(self.t[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sums_follow_updates_and_rebuilds() {
        let mut f = Fenwick::new(13);
        let mut plain = [0u32; 13];
        for (i, d) in [(0, 1), (5, 3), (12, 2), (5, u32::MAX), (7, 4)] {
            f.add(i, d);
            plain[i] = plain[i].wrapping_add(d);
            for k in 0..=13 {
                let want = plain[..k].iter().fold(0u32, |a, &b| a.wrapping_add(b));
                assert_eq!(f.prefix(k), want, "prefix {k}");
            }
        }
        f.reset_prefix(20, 6, 64);
        for k in 0..=20 {
            assert_eq!(f.prefix(k) as usize, 64 * k.min(6));
        }
    }
}
