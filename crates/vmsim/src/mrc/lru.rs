//! Exact LRU stack distances in one pass (Mattson et al. 1970; the counting
//! form of Bennett and Kruskal 1975).
//!
//! Each distinct page is marked at the time slot of its last reference; the
//! LRU stack distance of a reference is the number of marks at or after
//! the page's previous slot (itself included). Marks are bits, 64 slots to a
//! block; a Fenwick tree counts the marks of each closed block, so a
//! reference costs one prefix sum and one update over `slots / 64` blocks
//! (O(log pages), in a tree small enough for the L1 cache) plus two bit
//! operations; the open block joins the tree once, when it fills. Time slots
//! are renumbered densely whenever they run out (at least as many
//! references as there are live pages since the last time), so memory is
//! proportional to the distinct pages, not to the references. A reference
//! to the page on top of the stack (most of a real trace's page stream)
//! costs one compare.

use super::fenwick::Fenwick;

/// No id.
const NONE: u32 = u32::MAX;

/// The LRU stack of dense page ids, as stack distances.
#[derive(Debug, Clone)]
pub struct LruStack {
    /// Per id: its slot + 1, or 0 if it is not in the stack.
    slot_of: Vec<u32>,
    /// One bit per slot: the last reference of some page.
    bits: Vec<u64>,
    /// Marks per closed block (blocks below `now / 64`).
    blocks: Fenwick,
    /// The next free slot.
    now: usize,
    /// Ids in the stack (= marked slots).
    live: usize,
    top: u32,
}

impl Default for LruStack {
    fn default() -> Self {
        Self::new()
    }
}

/// Slots to start with (grown by compaction).
const FIRST_SLOTS: usize = 4096;

impl LruStack {
    /// An empty stack.
    #[must_use]
    pub fn new() -> Self {
        Self {
            slot_of: Vec::new(),
            bits: vec![0; FIRST_SLOTS / 64],
            blocks: Fenwick::new(FIRST_SLOTS / 64),
            now: 0,
            live: 0,
            top: NONE,
        }
    }

    /// Ids in the stack.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the stack is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// References `id` and returns its stack distance before the reference
    /// (1 = it was on top), or 0 if it was not in the stack (a cold miss).
    /// An LRU memory of `c` frames hits exactly when `1 <= distance <= c`.
    #[inline]
    pub fn access(&mut self, id: u32) -> u64 {
        if id == self.top {
            return 1;
        }
        self.top = id;
        let i = id as usize;
        if i >= self.slot_of.len() {
            self.slot_of
                .resize((i + 1).next_power_of_two().max(1024), 0);
        }
        if self.now == self.bits.len() * 64 {
            self.compact();
        }
        let prev = self.slot_of[i];
        let distance = if prev == 0 {
            self.live += 1;
            0
        } else {
            let s = (prev - 1) as usize;
            let (b, bit) = (s / 64, s % 64);
            let below = self.blocks.prefix(b) as usize
                + (self.bits[b] & ((1u64 << bit) - 1)).count_ones() as usize;
            self.bits[b] &= !(1u64 << bit);
            if b < self.now / 64 {
                self.blocks.add(b, u32::MAX);
            }
            (self.live - below) as u64
        };
        let now = self.now;
        self.bits[now / 64] |= 1u64 << (now % 64);
        self.slot_of[i] = now as u32 + 1;
        self.now += 1;
        if self.now.is_multiple_of(64) {
            let b = now / 64;
            self.blocks.add(b, self.bits[b].count_ones());
        }
        distance
    }

    /// Takes `id` out of the stack (SHARDS drops pages that leave the sample).
    pub fn remove(&mut self, id: u32) {
        let i = id as usize;
        let Some(&prev) = self.slot_of.get(i) else {
            return;
        };
        if prev == 0 {
            return;
        }
        let s = (prev - 1) as usize;
        let b = s / 64;
        self.bits[b] &= !(1u64 << (s % 64));
        if b < self.now / 64 {
            self.blocks.add(b, u32::MAX);
        }
        self.slot_of[i] = 0;
        self.live -= 1;
        if self.top == id {
            self.top = NONE;
        }
    }

    /// Renumbers the marked slots `0..live` in order and makes room for at
    /// least `live + 1` more references: O(slots + ids), at most once per
    /// `live` references.
    #[cold]
    fn compact(&mut self) {
        let mut id_at = vec![NONE; self.now];
        for (id, &slot) in self.slot_of.iter().enumerate() {
            if slot != 0 {
                id_at[(slot - 1) as usize] = id as u32;
            }
        }
        let mut j = 0u32;
        for &id in &id_at {
            if id != NONE {
                j += 1;
                self.slot_of[id as usize] = j;
            }
        }
        let live = j as usize;
        debug_assert_eq!(live, self.live);
        let cap = (2 * live + 64)
            .max(FIRST_SLOTS)
            .next_power_of_two()
            .max(self.bits.len() * 64);
        self.bits.clear();
        self.bits.resize(cap / 64, 0);
        for w in 0..live / 64 {
            self.bits[w] = u64::MAX;
        }
        if !live.is_multiple_of(64) {
            self.bits[live / 64] = (1u64 << (live % 64)) - 1;
        }
        // Closed blocks: the full ones below the open block `live / 64`.
        self.blocks.reset_prefix(cap / 64, live / 64, 64);
        self.now = live;
    }
}

/// Counts of references by stack distance: the whole miss-ratio curve of a
/// stack algorithm (LRU, OPT) in one array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackHistogram {
    /// `counts[d]`: references at distance `d` (index 0 unused).
    counts: Vec<u64>,
    /// References to pages not in the stack (first references).
    cold: u64,
    refs: u64,
}

impl StackHistogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a reference at `distance` (0: not in the stack).
    #[inline]
    pub fn record(&mut self, distance: u64) {
        self.refs += 1;
        if distance == 0 {
            self.cold += 1;
            return;
        }
        let d = distance as usize;
        if d >= self.counts.len() {
            self.counts.resize((d + 1).next_power_of_two(), 0);
        }
        self.counts[d] += 1;
    }

    /// Counts `n` references at distance 1 (repeats of the top page).
    #[inline]
    pub fn record_top(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        if self.counts.len() < 2 {
            self.counts.resize(2, 0);
        }
        self.counts[1] += n;
        self.refs += n;
    }

    /// References counted.
    #[must_use]
    pub fn refs(&self) -> u64 {
        self.refs
    }

    /// Cold misses (first references).
    #[must_use]
    pub fn cold(&self) -> u64 {
        self.cold
    }

    /// The largest distance seen (0 if none): from this size on, only cold
    /// misses remain.
    #[must_use]
    pub fn max_distance(&self) -> u64 {
        self.counts.iter().rposition(|&c| c > 0).unwrap_or(0) as u64
    }

    /// Misses with `size` frames (sizes must be at least 1): cold misses
    /// plus references at a distance beyond `size`.
    #[must_use]
    pub fn misses_at(&self, size: u64) -> u64 {
        let upto = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(self.counts.len());
        self.refs - self.counts[..upto].iter().sum::<u64>()
    }

    /// Misses at each of `sizes` (ascending or not), in one pass over the
    /// histogram when they are ascending.
    #[must_use]
    pub fn misses(&self, sizes: &[u64]) -> Vec<u64> {
        let mut prefix = Vec::with_capacity(self.counts.len());
        let mut acc = 0u64;
        for &c in &self.counts {
            acc += c;
            prefix.push(acc);
        }
        sizes
            .iter()
            .map(|&s| {
                let hits = if prefix.is_empty() {
                    0
                } else {
                    prefix[(s as usize).min(prefix.len() - 1)]
                };
                self.refs - hits
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stack distances by moving ids in a plain list.
    fn naive(ids: &[u32]) -> Vec<u64> {
        let mut stack: Vec<u32> = Vec::new();
        ids.iter()
            .map(|&id| match stack.iter().position(|&x| x == id) {
                Some(p) => {
                    stack.remove(p);
                    stack.insert(0, id);
                    p as u64 + 1
                }
                None => {
                    stack.insert(0, id);
                    0
                }
            })
            .collect()
    }

    #[test]
    fn distances_match_a_plain_stack_across_compactions() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let ids: Vec<u32> = (0..20_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    (x % 3000) as u32
                } else {
                    (x % 40) as u32
                }
            })
            .collect();
        let mut s = LruStack::new();
        let got: Vec<u64> = ids.iter().map(|&id| s.access(id)).collect();
        assert_eq!(got, naive(&ids));
    }

    #[test]
    fn removals_and_accesses_match_a_plain_stack() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        let mut s = LruStack::new();
        let mut plain: Vec<u32> = Vec::new();
        for _ in 0..30_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 2500) as u32;
            if x.is_multiple_of(11) {
                s.remove(id);
                plain.retain(|&y| y != id);
                continue;
            }
            let want = match plain.iter().position(|&y| y == id) {
                Some(p) => {
                    plain.remove(p);
                    p as u64 + 1
                }
                None => 0,
            };
            plain.insert(0, id);
            assert_eq!(s.access(id), want);
            assert_eq!(s.len(), plain.len());
        }
    }

    #[test]
    fn removal_closes_the_gap() {
        let mut s = LruStack::new();
        for id in [1, 2, 3] {
            s.access(id);
        }
        s.remove(2);
        assert_eq!(s.access(1), 2);
        assert_eq!(s.access(2), 0);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn histogram_gives_misses_per_size() {
        let mut h = StackHistogram::new();
        for d in [0, 0, 1, 2, 2, 5] {
            h.record(d);
        }
        assert_eq!(h.misses(&[1, 2, 4, 5, 100]), [5, 3, 3, 2, 2]);
        assert_eq!(h.misses_at(2), 3);
        assert_eq!(h.max_distance(), 5);
    }
}
