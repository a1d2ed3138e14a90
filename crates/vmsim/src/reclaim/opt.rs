//! Belady's OPT (evict the page used farthest in the future) and its mirror
//! image UNOPT (evict the page needed soonest), both oracles that need the
//! whole reference string.
//!
//! The lab computes every reference's next use in one backward pass; here
//! an indexed binary heap keyed by next use (each resident id knows its
//! position, so a hit re-keys it in place) gives the victim in O(log n) with
//! exactly one heap entry per resident page.

use super::heap::IndexedHeap;
use super::{AccessBits, NEVER, Policy, RefTime, nothing_resident};

/// The key of a page: its next use, or for a page never used again a value
/// above every real next use, larger for pages last used earlier.
#[inline]
fn key(at: RefTime) -> u64 {
    if at.next_use == NEVER {
        NEVER - at.now
    } else {
        at.next_use
    }
}

/// Belady's optimal policy: evict the resident page whose next use is
/// farthest away. Pages never used again go first; among them, the one
/// referenced least recently (a deterministic tie-break; any choice among
/// them gives the same miss count).
#[derive(Debug, Clone)]
pub struct Opt {
    h: IndexedHeap<u64, true>,
}

impl Opt {
    /// An OPT policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
        }
    }
}

impl Policy for Opt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.h.set(id, key(at));
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.h.set(id, key(at));
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.h.pop().unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.h.remove(id);
    }

    /// Next victim first (farthest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.h.sorted_ids());
    }
}

/// The anti-optimal policy for teaching: evict the page needed soonest.
/// Pages never used again are evicted only when nothing else is resident;
/// among them, the one referenced most recently goes first.
#[derive(Debug, Clone)]
pub struct Unopt {
    h: IndexedHeap<u64, false>,
}

impl Unopt {
    /// An UNOPT policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
        }
    }
}

impl Policy for Unopt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.h.set(id, key(at));
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.h.set(id, key(at));
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.h.pop().unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.h.remove(id);
    }

    /// Next victim first (soonest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.h.sorted_ids());
    }
}
