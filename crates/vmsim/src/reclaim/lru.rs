//! Exact LRU and its mirror image MRU (both oracles: they must see every
//! reference, which a kernel cannot when the TLB serves hits).

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};

/// Least recently used, exact: a recency list updated on every hit.
/// An oracle (no OS sees every access).
#[derive(Debug, Clone)]
pub struct Lru {
    q: IdLists<1>,
}

impl Lru {
    /// An LRU policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            q: IdLists::new(n_ids),
        }
    }
}

impl Policy for Lru {
    const SEES_EVERY_ACCESS: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.move_to_front(0, id);
    }

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

    /// Least recently used first.
    fn resident(&self, out: &mut Vec<u32>) {
        self.q.collect_oldest_first(0, out);
    }
}

/// Most recently used: evicts the page used last. Good for loops larger than
/// memory, bad almost everywhere else; an oracle like [`Lru`].
#[derive(Debug, Clone)]
pub struct Mru {
    q: IdLists<1>,
}

impl Mru {
    /// An MRU policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            q: IdLists::new(n_ids),
        }
    }
}

impl Policy for Mru {
    const SEES_EVERY_ACCESS: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.move_to_front(0, id);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.push_front(0, id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.q.pop_front(0).unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.q.remove(id);
    }

    /// Most recently used (the next victim) first.
    fn resident(&self, out: &mut Vec<u32>) {
        let start = out.len();
        self.q.collect_oldest_first(0, out);
        out[start..].reverse();
    }
}
