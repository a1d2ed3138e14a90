//! LFU: evict the resident page referenced least often since it was loaded
//! (an oracle: counting needs every reference).

use std::collections::BTreeSet;

use super::{AccessBits, Policy, RefTime};

/// Least frequently used, counting references since the page was loaded
/// (the count is forgotten on eviction). Ties go to the page referenced
/// least recently. An ordered set keyed by (count, last use) gives O(log n).
#[derive(Debug, Clone)]
pub struct Lfu {
    set: BTreeSet<(u64, u64, u32)>,
    count: Vec<u64>,
    last: Vec<u64>,
}

impl Lfu {
    /// An LFU policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            set: BTreeSet::new(),
            count: vec![0; n_ids],
            last: vec![0; n_ids],
        }
    }
}

impl Policy for Lfu {
    const SEES_EVERY_ACCESS: bool = true;

    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        let i = id as usize;
        self.set.remove(&(self.count[i], self.last[i], id));
        self.count[i] += 1;
        self.last[i] = at.now;
        self.set.insert((self.count[i], at.now, id));
    }

    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        let i = id as usize;
        self.count[i] = 1;
        self.last[i] = at.now;
        self.set.insert((1, at.now, id));
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        match self.set.pop_first() {
            Some((_, _, id)) => id,
            None => super::nothing_resident(),
        }
    }

    fn on_remove(&mut self, id: u32) {
        let i = id as usize;
        self.set.remove(&(self.count[i], self.last[i], id));
    }

    /// Next victim first (fewest references first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.set.iter().map(|&(_, _, id)| id));
    }
}
