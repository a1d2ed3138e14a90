//! Aging: an 8-bit counter per page, shifted right on every timer tick with
//! the accessed bit entering at the top (and then cleared); the page with
//! the smallest counter is evicted. An OS can run it.
//!
//! The load counts as a reference: a new page starts at `0b1000_0000` with A
//! cleared (otherwise a page loaded just before a fault would be the first
//! victim, a known flaw of the textbook version). Ties go to the page loaded
//! first. An ordered set keyed by (counter, load order) gives the victim in
//! O(log n); a tick re-keys every resident page, O(n log n) once per
//! interval, which the lab sets to the number of frames by default.

use std::collections::BTreeSet;
use std::num::NonZeroU64;

use super::{AccessBits, IdLists, Policy, RefTime};

/// Top bit of the counter.
const TOP: u8 = 0x80;

/// Aging with 8-bit counters and a tick every `interval` references.
#[derive(Debug, Clone)]
pub struct Aging {
    set: BTreeSet<(u8, u64, u32)>,
    counter: Vec<u8>,
    seq: Vec<u64>,
    next_seq: u64,
    loaded: IdLists<1>,
    interval: NonZeroU64,
}

impl Aging {
    /// Aging for ids `0..n_ids`, ticking every `interval` references.
    #[must_use]
    pub fn new(n_ids: usize, interval: NonZeroU64) -> Self {
        Self {
            set: BTreeSet::new(),
            counter: vec![0; n_ids],
            seq: vec![0; n_ids],
            next_seq: 0,
            loaded: IdLists::new(n_ids),
            interval,
        }
    }
}

impl Policy for Aging {
    const SEES_EVERY_ACCESS: bool = false;

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        bits.test_and_clear_accessed(id);
        let i = id as usize;
        self.counter[i] = TOP;
        self.seq[i] = self.next_seq;
        self.next_seq += 1;
        self.set.insert((TOP, self.seq[i], id));
        self.loaded.push_front(0, id);
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        match self.set.pop_first() {
            Some((_, _, id)) => {
                self.loaded.remove(id);
                id
            }
            None => super::nothing_resident(),
        }
    }

    fn on_remove(&mut self, id: u32) {
        let i = id as usize;
        if self.set.remove(&(self.counter[i], self.seq[i], id)) {
            self.loaded.remove(id);
        }
    }

    fn tick_interval(&self) -> Option<NonZeroU64> {
        Some(self.interval)
    }

    fn on_tick<B: AccessBits>(&mut self, bits: &mut B) {
        let mut cur = self.loaded.back(0);
        while let Some(id) = cur {
            let i = id as usize;
            let old = self.counter[i];
            let new = (old >> 1)
                | if bits.test_and_clear_accessed(id) {
                    TOP
                } else {
                    0
                };
            if new != old {
                self.set.remove(&(old, self.seq[i], id));
                self.set.insert((new, self.seq[i], id));
                self.counter[i] = new;
            }
            cur = self.loaded.newer(id);
        }
    }

    /// Smallest counter (next victim) first.
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.set.iter().map(|&(_, _, id)| id));
    }
}
