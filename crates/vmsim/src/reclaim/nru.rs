//! Enhanced second chance / NRU: evict from the lowest non-empty class of
//! (accessed, dirty): (0,0) clean and unused first, then (0,1), (1,0), (1,1).
//!
//! An OS can run it: it reads and clears only the hardware bits. Pages sit
//! in one FIFO bucket per class. Bits only rise between the policy's own
//! clearings, so a page's recorded class is a lower bound; when a bucket's
//! oldest page turns out to be in a higher class it is moved up (at most
//! three moves per page per clearing, each caused by a reference). When no
//! page is unreferenced, all accessed bits are cleared at once (what the
//! second-chance sweep does) and the pages re-sorted: O(resident) work that
//! the references which set those bits pay for. Within a class the page that
//! entered it first goes first.

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// NRU / enhanced second chance over the accessed and dirty bits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nru {
    buckets: IdLists<4>,
}

#[inline]
fn class<B: AccessBits>(bits: &B, id: u32) -> usize {
    (usize::from(bits.is_accessed(id)) << 1) | usize::from(bits.is_dirty(id))
}

impl Nru {
    /// An NRU policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            buckets: IdLists::new(n_ids),
        }
    }

    /// The oldest page of bucket `k` whose class really is `k`, moving
    /// stale entries up.
    fn take_valid<B: AccessBits>(&mut self, k: usize, bits: &B) -> Option<u32> {
        while let Some(id) = self.buckets.back(k) {
            let c = class(bits, id);
            if c == k {
                self.buckets.remove(id);
                return Some(id);
            }
            debug_assert!(c > k, "a page's class fell without the policy clearing A");
            self.buckets.remove(id);
            self.buckets.push_front(c, id);
        }
        None
    }
}

impl Policy for Nru {
    const SEES_EVERY_ACCESS: bool = false;

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        self.buckets.push_front(class(bits, id), id);
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        for k in 0..2 {
            if let Some(id) = self.take_valid(k, bits) {
                return id;
            }
        }
        // Every resident page has been referenced: clear all A bits.
        for k in 2..4 {
            while let Some(id) = self.buckets.pop_back(k) {
                bits.test_and_clear_accessed(id);
                self.buckets.push_front(class(bits, id), id);
            }
        }
        for k in 0..2 {
            if let Some(id) = self.take_valid(k, bits) {
                return id;
            }
        }
        nothing_resident()
    }

    fn on_remove(&mut self, id: u32) {
        self.buckets.remove(id);
    }

    /// By recorded class, oldest first within each.
    fn resident(&self, out: &mut Vec<u32>) {
        for k in 0..4 {
            self.buckets.collect_oldest_first(k, out);
        }
    }
}

impl Nru {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.buckets.check_restored(n_ids)
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.buckets.list_of(id).is_some()
    }
}
