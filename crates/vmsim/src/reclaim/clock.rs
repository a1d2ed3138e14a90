//! CLOCK (second chance): a FIFO ring whose hand skips pages with the
//! accessed bit set, clearing the bit as it passes.

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// What a newly loaded page's accessed bit is when it joins the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ClockInsert {
    /// Left set, as the hardware leaves it: the access that faulted restarts
    /// and sets A, so the page gets its second chance on the first sweep.
    /// The textbook second-chance algorithm, and the default because it is
    /// what a kernel using the real A bit gets without extra work.
    #[default]
    Referenced,
    /// Cleared by the OS after loading: a new page must be referenced again
    /// to survive the hand. libCacheSim's `Clock` (init-freq 0) does this.
    Clear,
}

/// CLOCK / second chance over the hardware accessed bit; an OS can run it.
///
/// The ring is a list whose back is under the hand: a page with A set is
/// cleared and moved to the front (the hand advances past it); the first page
/// with A clear is the victim. New pages join just behind the hand (front).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clock {
    ring: IdLists<1>,
    insert: ClockInsert,
}

impl Clock {
    /// A CLOCK policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, insert: ClockInsert) -> Self {
        Self {
            ring: IdLists::new(n_ids),
            insert,
        }
    }
}

impl Policy for Clock {
    const SEES_EVERY_ACCESS: bool = false;

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        self.ring.push_front(0, id);
        if self.insert == ClockInsert::Clear {
            bits.test_and_clear_accessed(id);
        }
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        loop {
            let Some(id) = self.ring.back(0) else {
                nothing_resident()
            };
            if bits.test_and_clear_accessed(id) {
                self.ring.move_to_front(0, id);
            } else {
                self.ring.remove(id);
                return id;
            }
        }
    }

    fn on_remove(&mut self, id: u32) {
        self.ring.remove(id);
    }

    /// Starting under the hand, in the order the hand will visit.
    fn resident(&self, out: &mut Vec<u32>) {
        self.ring.collect_oldest_first(0, out);
    }
}

impl Clock {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.ring.check_restored(n_ids)
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.ring.list_of(id).is_some()
    }
}
