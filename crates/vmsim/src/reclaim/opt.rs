//! Belady's OPT (evict the page used farthest in the future) and its mirror
//! image UNOPT (evict the page needed soonest), both oracles that need the
//! whole reference string.
//!
//! The lab computes every reference's next use in one backward pass; here
//! an indexed binary heap keyed by next use (each resident id knows its
//! position, so a hit re-keys it in place) gives the victim in O(log n) with
//! exactly one heap entry per resident page.

use rustc_hash::FxHashMap;

use super::heap::IndexedHeap;
use super::ties::{SPAN, Ties};
use super::timeset::TimeSet;
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
/// The reference string's times are the keys: a string refers to one page
/// at each time, so the next uses of resident pages are distinct times,
/// kept in a `TimeSet` (a hit clears one bit and sets another, the
/// farthest is the largest element, and the page at a time is the string's
/// id there). Pages never used again are in an indexed heap keyed by
/// `NEVER - rank`, and go before any page with a next use. Made with
/// [`Opt::new`] (no string: the page at each resident time is kept in a
/// map instead, for callers that feed references one at a time).
#[derive(Debug, Clone)]
pub struct Opt<'a> {
    /// The reference string (dense ids): the page at each time; empty
    /// when not given (then `owner` has them).
    ids: &'a [u32],
    /// Without a reference string: the page at each resident time.
    owner: FxHashMap<u64, u32>,
    /// Next uses of the resident pages that are used again.
    times: TimeSet,
    /// Resident pages never used again, by `NEVER - rank`.
    never: IndexedHeap<u64, true>,
    /// Each resident page's key (its next use, or `NEVER - rank`);
    /// [`NOT_RESIDENT`] for others.
    key: Vec<u64>,
    t: TieState,
}

/// The key of a page that is not resident: neither a time (below it) nor
/// a tie key (`NEVER - rank`, far above it).
const NOT_RESIDENT: u64 = SPAN;

impl Opt<'static> {
    /// An OPT policy for ids `0..n_ids`, ties to the least recently used.
    /// [`Opt::for_string`] is faster when the reference string is at hand.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Opt::for_string(&[], n_ids)
    }
}

impl<'a> Opt<'a> {
    /// An OPT policy for ids `0..n_ids` running over the reference string
    /// `ids` (whose next uses come with each reference), ties to the least
    /// recently used.
    #[must_use]
    pub fn for_string(ids: &'a [u32], n_ids: usize) -> Self {
        Self {
            ids,
            owner: FxHashMap::default(),
            times: TimeSet::new(ids.len()),
            never: IndexedHeap::new(n_ids),
            key: vec![NOT_RESIDENT; n_ids],
            t: TieState::new(n_ids, Ties::Oldest),
        }
    }

    /// This policy breaking ties among pages never used again by `ties`.
    #[must_use]
    pub fn with_ties(mut self, ties: Ties) -> Self {
        self.t.ties = ties;
        self
    }

    /// The resident page whose next use is `t`.
    #[inline]
    fn page_at(&self, t: u64) -> u32 {
        match self.ids.get(t as usize) {
            Some(&id) => id,
            None => self
                .owner
                .get(&t)
                .copied()
                .unwrap_or_else(|| nothing_resident()),
        }
    }

    /// Forgets the key of resident `id`.
    #[inline]
    fn unkey(&mut self, id: u32) {
        let k = std::mem::replace(&mut self.key[id as usize], NOT_RESIDENT);
        if k < SPAN {
            self.times.remove(k);
            if self.ids.is_empty() {
                self.owner.remove(&k);
            }
        } else if k > SPAN {
            self.never.remove(id);
        }
    }

    /// Keys `id` by `at` (its next use, or its tie rank if none).
    #[inline]
    fn set_key(&mut self, id: u32, at: RefTime) {
        self.unkey(id);
        let k = if at.next_use == NEVER {
            let k = NEVER - self.t.rank(id, at);
            self.never.set(id, k);
            k
        } else {
            self.times.insert(at.next_use);
            if self.ids.is_empty() {
                self.owner.insert(at.next_use, id);
            }
            at.next_use
        };
        self.key[id as usize] = k;
    }
}

impl Policy for Opt<'_> {
    const SEES_EVERY_ACCESS: bool = true;
    const ABSORBS_HIT_BEFORE_REPEAT: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.set_key(id, at);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.t.loaded[id as usize] = at.now;
        self.set_key(id, at);
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        let id = match self.never.pop() {
            Some(id) => id,
            None => {
                let t = self.times.max().unwrap_or_else(|| nothing_resident());
                self.page_at(t)
            }
        };
        self.unkey(id);
        id
    }

    fn on_remove(&mut self, id: u32) {
        self.unkey(id);
    }

    /// Next victim first (farthest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.never.sorted_ids());
        let mut below = self.times.max_below(u64::MAX);
        while let Some(t) = below {
            out.push(self.page_at(t));
            below = self.times.max_below(t);
        }
    }

    fn note(&self, id: u32) -> Note {
        let k = self.key[id as usize];
        Note {
            list: None,
            value: (k != NOT_RESIDENT).then(|| ("next use", next_use_value(k))),
        }
    }
}

/// A policy keyed by next use in one indexed heap, evicting the page used
/// farthest away (`FARTHEST`) or soonest: the soonest gives [`Unopt`]; the
/// farthest is the heap-keyed OPT this module had before the time set,
/// kept as the oracle the lab's property test compares [`Opt`] with.
///
/// Key: the next use, or for a page never used again a tie rank above every
/// real next use: `NEVER - rank` when evicting the farthest (larger goes
/// first), `NEVER - SPAN + rank` when evicting the soonest (smaller first),
/// so the [`Ties`] rule decides among pages never used again.
#[derive(Debug, Clone)]
pub struct NextUseHeap<const FARTHEST: bool> {
    h: IndexedHeap<u64, FARTHEST>,
    t: TieState,
}

/// The anti-optimal policy for teaching: evict the page needed soonest.
/// Pages never used again are evicted only when nothing else is resident;
/// among them, the [`Ties`] rule decides (default: the one referenced most
/// recently goes first).
pub type Unopt = NextUseHeap<false>;

impl<const FARTHEST: bool> NextUseHeap<FARTHEST> {
    /// A policy for ids `0..n_ids`; ties go to the least recently used page
    /// when evicting the farthest (OPT's default), to the most recently used
    /// when evicting the soonest (UNOPT's).
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        let ties = if FARTHEST { Ties::Oldest } else { Ties::Newest };
        Self {
            h: IndexedHeap::new(n_ids),
            t: TieState::new(n_ids, ties),
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
        match (at.next_use == NEVER, FARTHEST) {
            (false, _) => at.next_use,
            (true, true) => NEVER - self.t.rank(id, at),
            (true, false) => NEVER - SPAN + self.t.rank(id, at),
        }
    }
}

impl<const FARTHEST: bool> Policy for NextUseHeap<FARTHEST> {
    const SEES_EVERY_ACCESS: bool = true;
    const ABSORBS_HIT_BEFORE_REPEAT: bool = true;
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

    /// The next victim first.
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

/// The heap-keyed OPT this module had before the time set: the oracle the
/// property test in the lab compares [`Opt`] with.
#[cfg(test)]
pub(crate) mod reference {
    /// Belady's optimal policy with every key in one indexed heap.
    pub(crate) type HeapOpt = super::NextUseHeap<true>;
}
