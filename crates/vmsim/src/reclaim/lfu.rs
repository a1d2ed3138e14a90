//! LFU: evict the resident page referenced least often since it was loaded
//! (an oracle: counting needs every reference).

use super::heap::IndexedHeap;
use super::ties::Ties;
use super::{AccessBits, Note, NoteValue, Policy, RefTime, nothing_resident};

/// Least frequently used, counting references since the page was loaded
/// (the count is forgotten on eviction). Ties go by the [`Ties`] rule
/// (default: the page referenced least recently). An indexed heap keyed by
/// (count, tie rank) gives O(log n).
#[derive(Debug, Clone)]
pub struct Lfu {
    h: IndexedHeap<(u64, u64), false>,
    ties: Ties,
    loaded: Vec<u64>,
}

impl Lfu {
    /// An LFU policy for ids `0..n_ids`, ties to the least recently used.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
            ties: Ties::Oldest,
            loaded: vec![0; n_ids],
        }
    }

    /// This policy breaking ties between equal counts by `ties`.
    #[must_use]
    pub fn with_ties(mut self, ties: Ties) -> Self {
        self.ties = ties;
        self
    }
}

impl Policy for Lfu {
    const SEES_EVERY_ACCESS: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        let count = self.h.key(id).map_or(0, |(c, _)| c);
        let rank = self.ties.rank(at.now, self.loaded[id as usize]);
        self.h.set(id, (count + 1, rank));
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.loaded[id as usize] = at.now;
        self.h.set(id, (1, self.ties.rank(at.now, at.now)));
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.h.pop().unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.h.remove(id);
    }

    /// Next victim first (fewest references first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.h.sorted_ids());
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: None,
            value: self.h.key(id).map(|(c, _)| ("uses", NoteValue::Count(c))),
        }
    }
}
