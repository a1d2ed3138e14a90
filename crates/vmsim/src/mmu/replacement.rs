//! Which way of a set a TLB (or walk cache) evicts: [`Replacement`] names the
//! policy in configs; [`Victims`] keeps the per-set state it needs.
//!
//! Three policies, as hardware implements them:
//! - true LRU: every way carries an age stamp from a per-array clock; the
//!   victim is the oldest. Exact, and the reference the others approximate.
//! - tree pseudo-LRU: one bit per internal node of a binary tree over the
//!   ways, pointing at the half to evict next; a touch points every node on
//!   its path away from it. A way count that is not a power of two is padded
//!   to the next one, and the victim search never descends into a subtree
//!   made only of padding, so only real ways are ever chosen.
//! - random: a private xorshift64* generator seeded from the config (see
//!   [`XorShift64Star`]), so runs are reproducible.
//!
//! Empty ways are always filled before any policy is consulted; that choice
//! belongs to the array, not to this module. This module owns no entries.

use serde::{Deserialize, Serialize};

/// A replacement policy, as written in a config (`"lru"`, `"tree-plru"`, `"random"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replacement {
    /// Evict the least recently used way.
    #[default]
    Lru,
    /// Evict the way a binary tree of "evict this half next" bits points to.
    TreePlru,
    /// Evict a way chosen by a seeded pseudo-random generator.
    Random,
}

impl Replacement {
    /// The config spelling of the policy.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lru => "lru",
            Self::TreePlru => "tree-plru",
            Self::Random => "random",
        }
    }
}

/// Marsaglia's xorshift64 followed by Vigna's multiplication (xorshift64*):
/// a ten-line generator, good enough to pick eviction victims, chosen so the
/// TLB needs no dependency. The seed goes through splitmix64 first so that
/// nearby seeds (0, 1, 2, ...) give unrelated streams and zero is allowed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XorShift64Star(u64);

impl XorShift64Star {
    /// A generator whose stream is fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Self(z | 1) // the all-zero state is the one fixed point
    }

    /// The next 64 pseudo-random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0), by multiply-shift of the high bits.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Per-set replacement state of one array of `sets x ways` slots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Victims {
    policy: Replacement,
    ways: usize,
    /// LRU: one stamp per slot, from `clock`.
    stamps: Vec<u64>,
    clock: u64,
    /// Tree-PLRU: ways padded to a power of two; node `n` (1-based heap
    /// order) of set `s` is bit `n % 64` of word `s * words + n / 64`.
    padded: usize,
    words: usize,
    bits: Vec<u64>,
    /// Tree-PLRU with at most 64 leaves: per way, the node bits on its path
    /// (`path_mask`) and the values a touch writes there (`path_bits`), so a
    /// touch is one masked store.
    path_mask: Vec<u64>,
    path_bits: Vec<u64>,
    rng: XorShift64Star,
}

impl Victims {
    /// State for `sets` sets of `ways` ways under `policy`; `seed` feeds the
    /// random policy and is ignored by the others.
    #[must_use]
    pub fn new(policy: Replacement, sets: usize, ways: usize, seed: u64) -> Self {
        let padded = ways.next_power_of_two();
        let words = padded.div_ceil(64);
        let (mut path_mask, mut path_bits) = (Vec::new(), Vec::new());
        if policy == Replacement::TreePlru && padded <= 64 {
            for way in 0..ways {
                let (mut mask, mut bits) = (0u64, 0u64);
                let (mut node, mut half) = (1, padded / 2);
                while half > 0 {
                    let went_right = way & half != 0;
                    mask |= 1 << node;
                    bits |= u64::from(!went_right) << node;
                    node = 2 * node + usize::from(went_right);
                    half /= 2;
                }
                path_mask.push(mask);
                path_bits.push(bits);
            }
        }
        Self {
            policy,
            ways,
            stamps: if policy == Replacement::Lru {
                vec![0; sets * ways]
            } else {
                Vec::new()
            },
            clock: 0,
            padded,
            words,
            bits: if policy == Replacement::TreePlru {
                vec![0; sets * words]
            } else {
                Vec::new()
            },
            path_mask,
            path_bits,
            rng: XorShift64Star::new(seed),
        }
    }

    /// The policy in force.
    #[must_use]
    pub const fn policy(&self) -> Replacement {
        self.policy
    }

    /// Records a use (hit or fill) of `way` in `set`.
    #[inline(always)]
    pub fn touch(&mut self, set: usize, way: usize) {
        match self.policy {
            Replacement::Lru => {
                self.clock += 1;
                self.stamps[set * self.ways + way] = self.clock;
            }
            Replacement::TreePlru => self.plru_touch(set, way),
            Replacement::Random => {}
        }
    }

    /// Marks `way` of `set` as the least recently used (after an
    /// invalidation), so LRU-ordered searches treat it as oldest.
    #[inline]
    pub fn forget(&mut self, set: usize, way: usize) {
        if self.policy == Replacement::Lru {
            self.stamps[set * self.ways + way] = 0;
        }
    }

    /// The way of `set` to evict when every way is in use.
    #[inline]
    pub fn victim(&mut self, set: usize) -> usize {
        match self.policy {
            Replacement::Lru => {
                let row = &self.stamps[set * self.ways..(set + 1) * self.ways];
                let mut best = 0;
                for (way, &stamp) in row.iter().enumerate() {
                    if stamp < row[best] {
                        best = way;
                    }
                }
                best
            }
            Replacement::TreePlru => self.plru_victim(set),
            Replacement::Random => self.rng.below(self.ways),
        }
    }

    #[inline(always)]
    fn plru_bit(&self, set: usize, node: usize) -> bool {
        self.bits[set * self.words + node / 64] >> (node % 64) & 1 == 1
    }

    #[inline(always)]
    fn plru_set(&mut self, set: usize, node: usize, right: bool) {
        let word = &mut self.bits[set * self.words + node / 64];
        let bit = 1u64 << (node % 64);
        if right {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Points every node on the path to `way` at the other half.
    #[inline(always)]
    fn plru_touch(&mut self, set: usize, way: usize) {
        if self.words == 1 {
            let word = &mut self.bits[set];
            *word = (*word & !self.path_mask[way]) | self.path_bits[way];
        } else {
            self.plru_touch_walk(set, way);
        }
    }

    /// The same as [`Self::plru_touch`], node by node (trees over 64 leaves).
    fn plru_touch_walk(&mut self, set: usize, way: usize) {
        let mut node = 1;
        let mut half = self.padded / 2;
        while half > 0 {
            let went_right = way & half != 0;
            self.plru_set(set, node, !went_right);
            node = 2 * node + usize::from(went_right);
            half /= 2;
        }
    }

    /// Follows the bits from the root, never entering an all-padding subtree.
    fn plru_victim(&mut self, set: usize) -> usize {
        let mut node = 1;
        let mut low = 0;
        let mut half = self.padded / 2;
        while half > 0 {
            let right = self.plru_bit(set, node) && low + half < self.ways;
            if right {
                low += half;
            }
            node = 2 * node + usize::from(right);
            half /= 2;
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_oldest() {
        let mut v = Victims::new(Replacement::Lru, 2, 4, 0);
        for way in [0, 1, 2, 3, 0, 2] {
            v.touch(1, way);
        }
        assert_eq!(v.victim(1), 1);
        v.touch(1, 1);
        assert_eq!(v.victim(1), 3);
        v.forget(1, 2);
        assert_eq!(v.victim(1), 2);
        // Set 0 untouched: first way.
        assert_eq!(v.victim(0), 0);
    }

    #[test]
    fn plru_power_of_two_matches_textbook() {
        // 4 ways: touching 0,1,2,3 in order leaves the tree pointing at way 0.
        let mut v = Victims::new(Replacement::TreePlru, 1, 4, 0);
        for way in 0..4 {
            v.touch(0, way);
        }
        assert_eq!(v.victim(0), 0);
        v.touch(0, 0);
        assert_eq!(v.victim(0), 2);
    }

    #[test]
    fn plru_never_picks_padding_and_never_the_last_touched() {
        for ways in 1..=40 {
            let mut v = Victims::new(Replacement::TreePlru, 3, ways, 0);
            let mut rng = XorShift64Star::new(ways as u64);
            for _ in 0..500 {
                let way = rng.below(ways);
                v.touch(2, way);
                let victim = v.victim(2);
                assert!(victim < ways, "{ways} ways gave victim {victim}");
                if ways > 1 {
                    assert_ne!(victim, way, "{ways} ways evicted the way just touched");
                }
            }
        }
    }

    #[test]
    fn plru_cycles_through_all_ways_when_each_victim_is_refilled() {
        for ways in [2, 3, 5, 8, 12] {
            let mut v = Victims::new(Replacement::TreePlru, 1, ways, 0);
            let mut seen = vec![false; ways];
            for _ in 0..4 * ways {
                let victim = v.victim(0);
                seen[victim] = true;
                v.touch(0, victim);
            }
            assert!(seen.iter().all(|&s| s), "{ways} ways: {seen:?}");
        }
    }

    #[test]
    fn plru_mask_touch_equals_the_node_walk() {
        for ways in 1..=64 {
            let mut fast = Victims::new(Replacement::TreePlru, 2, ways, 0);
            let mut slow = fast.clone();
            let mut rng = XorShift64Star::new(ways as u64);
            for _ in 0..200 {
                let way = rng.below(ways);
                fast.touch(1, way);
                slow.plru_touch_walk(1, way);
                assert_eq!(fast.bits, slow.bits, "{ways} ways after touching {way}");
            }
        }
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let mut a = Victims::new(Replacement::Random, 1, 12, 7);
        let mut b = Victims::new(Replacement::Random, 1, 12, 7);
        let mut c = Victims::new(Replacement::Random, 1, 12, 8);
        let xs: Vec<usize> = (0..64).map(|_| a.victim(0)).collect();
        let ys: Vec<usize> = (0..64).map(|_| b.victim(0)).collect();
        let zs: Vec<usize> = (0..64).map(|_| c.victim(0)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&w| w < 12));
        let distinct: std::collections::BTreeSet<_> = xs.iter().collect();
        assert!(
            distinct.len() > 6,
            "random victims cover the ways: {distinct:?}"
        );
    }
}
