//! Belady's OPT (evict the page used farthest in the future) and its mirror
//! image UNOPT (evict the page needed soonest), both oracles that need the
//! whole reference string.
//!
//! The lab computes every reference's next use in one backward pass; here
//! an indexed binary heap keyed by next use (each resident id knows its
//! position, so a hit re-keys it in place) gives the victim in O(log n) with
//! exactly one heap entry per resident page.

use super::heap::IndexedHeap;
use super::ties::{SPAN, Ties};
use super::{AccessBits, NEVER, Note, NoteValue, Policy, RefTime, nothing_resident};

/// A heap key of OPT or UNOPT as a next use: keys of pages never used again
/// are tie ranks at or above [`SPAN`], above every reference index.
fn next_use_value(key: u64) -> NoteValue {
    if key >= SPAN {
        NoteValue::Never
    } else {
        NoteValue::Time(key)
    }
}

/// Tie state shared by OPT and UNOPT: the rule and each page's load time.
#[derive(Debug, Clone)]
struct TieState {
    ties: Ties,
    loaded: Vec<u64>,
}

impl TieState {
    fn new(n_ids: usize, ties: Ties) -> Self {
        Self {
            ties,
            loaded: vec![0; n_ids],
        }
    }

    /// The rank of `id` among pages never used again (smaller goes first).
    #[inline]
    fn rank(&self, id: u32, at: RefTime) -> u64 {
        self.ties.rank(at.now, self.loaded[id as usize])
    }
}

/// Belady's optimal policy: evict the resident page whose next use is
/// farthest away. Pages never used again go first; among them, the
/// [`Ties`] rule decides (default: the one referenced least recently; any
/// choice among them gives the same miss count).
///
/// Key: the next use, or for a page never used again `NEVER - rank`, above
/// every real next use and larger for the page the rule picks first.
#[derive(Debug, Clone)]
pub struct Opt {
    h: IndexedHeap<u64, true>,
    t: TieState,
}

impl Opt {
    /// An OPT policy for ids `0..n_ids`, ties to the least recently used.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
            t: TieState::new(n_ids, Ties::Oldest),
        }
    }

    /// This policy breaking ties among pages never used again by `ties`.
    #[must_use]
    pub fn with_ties(mut self, ties: Ties) -> Self {
        self.t.ties = ties;
        self
    }

    #[inline]
    fn key(&self, id: u32, at: RefTime) -> u64 {
        if at.next_use == NEVER {
            NEVER - self.t.rank(id, at)
        } else {
            at.next_use
        }
    }
}

impl Policy for Opt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        let k = self.key(id, at);
        self.h.set(id, k);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.t.loaded[id as usize] = at.now;
        let k = self.key(id, at);
        self.h.set(id, k);
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

    fn note(&self, id: u32) -> Note {
        Note {
            list: None,
            value: self.h.key(id).map(|k| ("next use", next_use_value(k))),
        }
    }
}

/// The anti-optimal policy for teaching: evict the page needed soonest.
/// Pages never used again are evicted only when nothing else is resident;
/// among them, the [`Ties`] rule decides (default: the one referenced most
/// recently goes first).
///
/// Key: the next use, or for a page never used again `NEVER - SPAN + rank`,
/// above every real next use and smaller for the page the rule picks first.
#[derive(Debug, Clone)]
pub struct Unopt {
    h: IndexedHeap<u64, false>,
    t: TieState,
}

impl Unopt {
    /// An UNOPT policy for ids `0..n_ids`, ties to the most recently used.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
            t: TieState::new(n_ids, Ties::Newest),
        }
    }

    /// This policy breaking ties among pages never used again by `ties`.
    #[must_use]
    pub fn with_ties(mut self, ties: Ties) -> Self {
        self.t.ties = ties;
        self
    }

    #[inline]
    fn key(&self, id: u32, at: RefTime) -> u64 {
        if at.next_use == NEVER {
            NEVER - SPAN + self.t.rank(id, at)
        } else {
            at.next_use
        }
    }
}

impl Policy for Unopt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        let k = self.key(id, at);
        self.h.set(id, k);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.t.loaded[id as usize] = at.now;
        let k = self.key(id, at);
        self.h.set(id, k);
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

    fn note(&self, id: u32) -> Note {
        Note {
            list: None,
            value: self.h.key(id).map(|k| ("next use", next_use_value(k))),
        }
    }
}
