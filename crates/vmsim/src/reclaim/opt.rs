//! Belady's OPT (evict the page used farthest in the future) and its mirror
//! image UNOPT (evict the page needed soonest), both oracles that need the
//! whole reference string.
//!
//! The lab computes every reference's next use in one backward pass; here
//! an indexed binary heap keyed by next use (each resident id knows its
//! position, so a hit re-keys it in place) gives the victim in O(log n) with
//! exactly one heap entry per resident page.

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

/// No heap position: the id is not resident.
const ABSENT: u32 = u32::MAX;

/// A binary heap of (key, id) with the position of every id, so keys can
/// change in place. `MAX` selects a max-heap (OPT) or a min-heap (UNOPT).
#[derive(Debug, Clone)]
struct IndexedHeap<const MAX: bool> {
    heap: Vec<(u64, u32)>,
    pos: Vec<u32>,
}

impl<const MAX: bool> IndexedHeap<MAX> {
    fn new(n: usize) -> Self {
        Self {
            heap: Vec::new(),
            pos: vec![ABSENT; n],
        }
    }

    /// Whether `a` belongs above `b`.
    #[inline]
    fn above(a: (u64, u32), b: (u64, u32)) -> bool {
        if MAX { a > b } else { a < b }
    }

    #[inline]
    fn place(&mut self, i: usize, e: (u64, u32)) {
        self.heap[i] = e;
        self.pos[e.1 as usize] = i as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        let e = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if !Self::above(e, p) {
                break;
            }
            self.place(i, p);
            i = parent;
        }
        self.place(i, e);
    }

    fn sift_down(&mut self, mut i: usize) {
        let e = self.heap[i];
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && Self::above(self.heap[r], self.heap[l]) {
                r
            } else {
                l
            };
            if !Self::above(self.heap[c], e) {
                break;
            }
            let ce = self.heap[c];
            self.place(i, ce);
            i = c;
        }
        self.place(i, e);
    }

    /// Inserts `id` with `k`, or re-keys it if present.
    #[inline]
    fn set(&mut self, id: u32, k: u64) {
        let p = self.pos[id as usize];
        if p == ABSENT {
            self.heap.push((k, id));
            let i = self.heap.len() - 1;
            self.pos[id as usize] = i as u32;
            self.sift_up(i);
        } else {
            let i = p as usize;
            let old = self.heap[i];
            self.heap[i].0 = k;
            if Self::above((k, id), old) {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
        }
    }

    fn remove_at(&mut self, i: usize) -> u32 {
        let id = self.heap[i].1;
        self.pos[id as usize] = ABSENT;
        let last = self.heap.pop().unwrap_or_else(|| nothing_resident());
        if i < self.heap.len() {
            self.place(i, last);
            self.sift_down(i);
            self.sift_up(self.pos[last.1 as usize] as usize);
        }
        id
    }

    fn pop(&mut self) -> u32 {
        if self.heap.is_empty() {
            nothing_resident();
        }
        self.remove_at(0)
    }

    fn remove(&mut self, id: u32) {
        let p = self.pos[id as usize];
        if p != ABSENT {
            self.remove_at(p as usize);
        }
    }

    fn sorted_ids(&self) -> Vec<u32> {
        let mut v = self.heap.clone();
        v.sort_unstable_by(|a, b| if MAX { b.cmp(a) } else { a.cmp(b) });
        v.into_iter().map(|(_, id)| id).collect()
    }
}

/// Belady's optimal policy: evict the resident page whose next use is
/// farthest away. Pages never used again go first; among them, the one
/// referenced least recently (a deterministic tie-break; any choice among
/// them gives the same miss count).
#[derive(Debug, Clone)]
pub struct Opt {
    h: IndexedHeap<true>,
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
        self.h.pop()
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
    h: IndexedHeap<false>,
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
        self.h.pop()
    }

    fn on_remove(&mut self, id: u32) {
        self.h.remove(id);
    }

    /// Next victim first (soonest next use first).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.h.sorted_ids());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_heap_rekeys_and_removes() {
        let mut h: IndexedHeap<true> = IndexedHeap::new(8);
        for (id, k) in [(0, 5), (1, 9), (2, 1), (3, 7), (4, 3)] {
            h.set(id, k);
        }
        h.set(1, 2); // 1 drops below 3 and 4
        h.remove(3);
        assert_eq!(h.sorted_ids(), [0, 4, 1, 2]);
        assert_eq!(h.pop(), 0);
        assert_eq!(h.pop(), 4);
        h.set(5, 4);
        assert_eq!(h.pop(), 5);
        assert_eq!(h.pop(), 1);
        assert_eq!(h.pop(), 2);
        assert!(h.heap.is_empty());
    }
}
