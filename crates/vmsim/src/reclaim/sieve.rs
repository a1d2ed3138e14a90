//! SIEVE (Zhang et al., NSDI 2024): a FIFO queue with a hand that moves from
//! the oldest towards the newest entry, evicting the first unvisited page.
//! Unlike CLOCK, survivors stay where they are (no move to the front).

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// SIEVE over the accessed bit as the "visited" flag; an OS can run it.
///
/// New pages enter at the front with A cleared. The hand starts at the back
/// (oldest), walks towards the front clearing A, evicts the first page whose
/// A is clear, and stays at the next newer page; past the front it wraps to
/// the back. This is libCacheSim's `Sieve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sieve {
    q: IdLists<1>,
    hand: Option<u32>,
}

impl Sieve {
    /// A SIEVE policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            q: IdLists::new(n_ids),
            hand: None,
        }
    }
}

impl Policy for Sieve {
    const SEES_EVERY_ACCESS: bool = false;

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        self.q.push_front(0, id);
        bits.test_and_clear_accessed(id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        let Some(mut id) = self.hand.or_else(|| self.q.back(0)) else {
            nothing_resident()
        };
        while bits.test_and_clear_accessed(id) {
            id = match self.q.newer(id) {
                Some(n) => n,
                None => self.q.back(0).unwrap_or_else(|| nothing_resident()),
            };
        }
        self.hand = self.q.newer(id);
        self.q.remove(id);
        id
    }

    fn on_remove(&mut self, id: u32) {
        if self.hand == Some(id) {
            self.hand = self.q.newer(id);
        }
        self.q.remove(id);
    }

    /// From the hand towards the front, then from the back up to the hand.
    fn resident(&self, out: &mut Vec<u32>) {
        let start = out.len();
        self.q.collect_oldest_first(0, out);
        if let Some(h) = self.hand
            && let Some(pos) = out[start..].iter().position(|&x| x == h)
        {
            out[start..].rotate_left(pos);
        }
    }
}

impl Sieve {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.q.check_restored(n_ids)?;
        match self.hand {
            Some(h) if h as usize >= n_ids || self.q.list_of(h).is_none() => {
                Err(format!("the hand is at id {h}, which is not queued"))
            }
            _ => Ok(()),
        }
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.q.list_of(id).is_some()
    }
}
