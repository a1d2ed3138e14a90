//! An indexed binary heap over dense ids: each id in the heap knows its
//! position, so its key can change in place in O(log n). Used by the
//! policies that order pages by a number (OPT and UNOPT by next use, LFU by
//! count, aging by counter). No allocation once it has held its largest
//! number of ids.

use serde::{Deserialize, Serialize};

/// No heap position: the id is not in the heap.
const ABSENT: u32 = u32::MAX;

/// A heap of `(key, id)`; `MAX` selects a max-heap, otherwise a min-heap.
/// Ties between equal keys are broken by id (larger id first in a
/// max-heap), so the order is always deterministic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexedHeap<K, const MAX: bool> {
    heap: Vec<(K, u32)>,
    #[serde(with = "crate::serde_sparse")]
    pos: Vec<u32>,
}

impl<K: Ord + Copy, const MAX: bool> IndexedHeap<K, MAX> {
    /// An empty heap for ids `0..n`.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            heap: Vec::new(),
            pos: vec![ABSENT; n],
        }
    }

    /// Whether `a` belongs above `b`.
    #[inline]
    fn above(a: &(K, u32), b: &(K, u32)) -> bool {
        if MAX { a > b } else { a < b }
    }

    #[inline]
    fn place(&mut self, i: usize, e: (K, u32)) {
        self.pos[e.1 as usize] = i as u32;
        self.heap[i] = e;
    }

    fn sift_up(&mut self, mut i: usize) {
        let e = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if !Self::above(&e, &p) {
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
            let c = if r < n && Self::above(&self.heap[r], &self.heap[l]) {
                r
            } else {
                l
            };
            let ce = self.heap[c];
            if !Self::above(&ce, &e) {
                break;
            }
            self.place(i, ce);
            i = c;
        }
        self.place(i, e);
    }

    /// The key of `id`, if it is in the heap.
    #[inline]
    pub(crate) fn key(&self, id: u32) -> Option<K> {
        let p = self.pos[id as usize];
        (p != ABSENT).then(|| self.heap[p as usize].0)
    }

    /// Inserts `id` with key `k`, or changes its key if present.
    #[inline]
    pub(crate) fn set(&mut self, id: u32, k: K) {
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
            if Self::above(&(k, id), &old) {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
        }
    }

    fn remove_at(&mut self, i: usize) -> u32 {
        let id = self.heap[i].1;
        self.pos[id as usize] = ABSENT;
        let Some(last) = self.heap.pop() else {
            return id;
        };
        if i < self.heap.len() {
            self.place(i, last);
            self.sift_down(i);
            self.sift_up(self.pos[last.1 as usize] as usize);
        }
        id
    }

    /// Removes and returns the id at the top.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        (!self.heap.is_empty()).then(|| self.remove_at(0))
    }

    /// Removes `id`; returns whether it was there.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        let p = self.pos[id as usize];
        if p == ABSENT {
            return false;
        }
        self.remove_at(p as usize);
        true
    }

    /// Replaces every key by `f(id, key)` and restores the heap order: O(n).
    pub(crate) fn update_all(&mut self, mut f: impl FnMut(u32, K) -> K) {
        for e in &mut self.heap {
            e.0 = f(e.1, e.0);
        }
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
        for (i, e) in self.heap.iter().enumerate() {
            self.pos[e.1 as usize] = i as u32;
        }
    }

    /// The ids from the top down (for display; allocates).
    pub(crate) fn sorted_ids(&self) -> Vec<u32> {
        let mut v = self.heap.clone();
        v.sort_unstable_by(|a, b| if MAX { b.cmp(a) } else { a.cmp(b) });
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// Number of ids in the heap.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

impl<K: Ord + Copy, const MAX: bool> IndexedHeap<K, MAX> {
    /// Checks a heap decoded from a checkpoint (which may be forged): `n`
    /// ids, each entry's id in range and indexed back to its place, the
    /// heap order kept, and no stray index.
    pub(crate) fn check_restored(&self, n: usize) -> Result<(), String> {
        if self.pos.len() != n {
            return Err(format!("heap over {} ids, expected {n}", self.pos.len()));
        }
        for (i, e) in self.heap.iter().enumerate() {
            if self.pos.get(e.1 as usize) != Some(&(i as u32)) {
                return Err(format!("heap entry {i} (id {}) is not indexed", e.1));
            }
            if i > 0 && Self::above(e, &self.heap[(i - 1) / 2]) {
                return Err(format!("heap entry {i} is above its parent"));
            }
        }
        let indexed = self.pos.iter().filter(|&&p| p != ABSENT).count();
        if indexed != self.heap.len() {
            return Err(format!(
                "{indexed} ids indexed but the heap holds {}",
                self.heap.len()
            ));
        }
        Ok(())
    }

    /// Whether `id` is in the heap (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.pos[id as usize] != ABSENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rekeys_removes_and_pops_in_order() {
        let mut h: IndexedHeap<u64, true> = IndexedHeap::new(8);
        for (id, k) in [(0, 5), (1, 9), (2, 1), (3, 7), (4, 3)] {
            h.set(id, k);
        }
        h.set(1, 2); // 1 drops below 3 and 4
        assert!(h.remove(3));
        assert!(!h.remove(3));
        assert_eq!(h.key(1), Some(2));
        assert_eq!(h.sorted_ids(), [0, 4, 1, 2]);
        assert_eq!(h.pop(), Some(0));
        assert_eq!(h.pop(), Some(4));
        h.set(5, 4);
        assert_eq!(h.pop(), Some(5));
        assert_eq!(h.pop(), Some(1));
        assert_eq!(h.pop(), Some(2));
        assert_eq!(h.pop(), None);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn update_all_reorders() {
        let mut h: IndexedHeap<(u8, u64), false> = IndexedHeap::new(4);
        for id in 0..4u32 {
            h.set(id, (10 * id as u8, 0));
        }
        h.update_all(|id, (k, s)| (100 - k, s + u64::from(id)));
        assert_eq!(h.sorted_ids(), [3, 2, 1, 0]);
        assert_eq!(h.pop(), Some(3));
        assert!(h.remove(1));
        assert_eq!(h.pop(), Some(2));
        assert_eq!(h.pop(), Some(0));
    }
}
