//! Belady's OPT (evict the page used farthest in the future) and its mirror
//! image UNOPT (evict the page needed soonest), both oracles that need the
//! whole reference string.
//!
//! The lab computes every reference's next use in one backward pass; here a
//! binary heap keyed by next use gives the victim in O(log n). Entries made
//! stale by a later reference are skipped when popped (lazy deletion) and
//! purged when the heap grows past twice the resident set, so the heap stays
//! O(resident) and each reference costs amortised O(log n).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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

/// Shared bookkeeping of OPT and UNOPT: the current key of each resident id.
#[derive(Debug, Clone)]
struct Keys {
    key: Vec<u64>,
    resident: Vec<bool>,
    n_resident: usize,
}

impl Keys {
    fn new(n: usize) -> Self {
        Self {
            key: vec![0; n],
            resident: vec![false; n],
            n_resident: 0,
        }
    }

    #[inline]
    fn valid(&self, k: u64, id: u32) -> bool {
        self.resident[id as usize] && self.key[id as usize] == k
    }
}

/// Belady's optimal policy: evict the resident page whose next use is
/// farthest away. Pages never used again go first; among them, the one
/// referenced least recently (a deterministic tie-break; any choice among
/// them gives the same miss count).
#[derive(Debug, Clone)]
pub struct Opt {
    k: Keys,
    heap: BinaryHeap<(u64, u32)>,
}

impl Opt {
    /// An OPT policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            k: Keys::new(n_ids),
            heap: BinaryHeap::new(),
        }
    }

    #[inline]
    fn set(&mut self, id: u32, at: RefTime) {
        let k = key(at);
        self.k.key[id as usize] = k;
        self.heap.push((k, id));
        if self.heap.len() > 2 * self.k.n_resident + 64 {
            let keys = &self.k;
            self.heap.retain(|&(k, id)| keys.valid(k, id));
        }
    }
}

impl Policy for Opt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.set(id, at);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.k.resident[id as usize] = true;
        self.k.n_resident += 1;
        self.set(id, at);
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        while let Some((k, id)) = self.heap.pop() {
            if self.k.valid(k, id) {
                self.k.resident[id as usize] = false;
                self.k.n_resident -= 1;
                return id;
            }
        }
        nothing_resident()
    }

    fn on_remove(&mut self, id: u32) {
        if std::mem::replace(&mut self.k.resident[id as usize], false) {
            self.k.n_resident -= 1;
        }
    }

    /// Next victim first (farthest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        let mut v: Vec<(u64, u32)> = self
            .heap
            .iter()
            .copied()
            .filter(|&(k, id)| self.k.valid(k, id))
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        out.extend(v.into_iter().map(|(_, id)| id));
    }
}

/// The anti-optimal policy for teaching: evict the page needed soonest.
/// Pages never used again are evicted only when nothing else is resident;
/// among them, the one referenced most recently goes first.
#[derive(Debug, Clone)]
pub struct Unopt {
    k: Keys,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Unopt {
    /// An UNOPT policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            k: Keys::new(n_ids),
            heap: BinaryHeap::new(),
        }
    }

    #[inline]
    fn set(&mut self, id: u32, at: RefTime) {
        let k = key(at);
        self.k.key[id as usize] = k;
        self.heap.push(Reverse((k, id)));
        if self.heap.len() > 2 * self.k.n_resident + 64 {
            let keys = &self.k;
            self.heap.retain(|&Reverse((k, id))| keys.valid(k, id));
        }
    }
}

impl Policy for Unopt {
    const SEES_EVERY_ACCESS: bool = true;
    const NEEDS_FUTURE: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.set(id, at);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, _bits: &mut B) {
        self.k.resident[id as usize] = true;
        self.k.n_resident += 1;
        self.set(id, at);
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        while let Some(Reverse((k, id))) = self.heap.pop() {
            if self.k.valid(k, id) {
                self.k.resident[id as usize] = false;
                self.k.n_resident -= 1;
                return id;
            }
        }
        nothing_resident()
    }

    fn on_remove(&mut self, id: u32) {
        if std::mem::replace(&mut self.k.resident[id as usize], false) {
            self.k.n_resident -= 1;
        }
    }

    /// Next victim first (soonest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        let mut v: Vec<(u64, u32)> = self
            .heap
            .iter()
            .map(|r| r.0)
            .filter(|&(k, id)| self.k.valid(k, id))
            .collect();
        v.sort_unstable();
        out.extend(v.into_iter().map(|(_, id)| id));
    }
}
