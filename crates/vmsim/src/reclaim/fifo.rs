//! FIFO: evict the page loaded longest ago.

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// First in, first out. Sees only faults; suffers Belady's anomaly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fifo {
    q: IdLists<1>,
}

impl Fifo {
    /// A FIFO policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            q: IdLists::new(n_ids),
        }
    }
}

impl Policy for Fifo {
    const SEES_EVERY_ACCESS: bool = false;

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.push_front(0, id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.q.pop_back(0).unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.q.remove(id);
    }

    /// Oldest first.
    fn resident(&self, out: &mut Vec<u32>) {
        self.q.collect_oldest_first(0, out);
    }
}

impl Fifo {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.q.check_restored(n_ids)
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.q.list_of(id).is_some()
    }
}
