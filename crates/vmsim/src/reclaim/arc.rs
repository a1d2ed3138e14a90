//! ARC, the Adaptive Replacement Cache (Megiddo and Modha, FAST 2003).
//!
//! Two LRU lists of resident pages, T1 (seen once recently) and T2 (seen at
//! least twice), and two ghost lists B1 and B2 of pages recently evicted from
//! each. A hit in a ghost list moves the target size `p` of T1 towards the
//! list that would have kept the page. An oracle: T1/T2 are exact LRU lists.
//!
//! Follows the paper's pseudo-code, with the target `p` and the adaptation
//! steps `max(|B2|/|B1|, 1)` as real numbers (as in the paper and in
//! libCacheSim's `ARC`; an integer step gives slightly different counts).

use super::{AccessBits, IdLists, Note, Policy, RefTime, nothing_resident};

const T1: usize = 0;
const T2: usize = 1;
const B1: usize = 2;
const B2: usize = 3;

/// Adaptive Replacement Cache over `c` frames.
#[derive(Debug, Clone)]
pub struct Arc {
    l: IdLists<4>,
    c: usize,
    /// Target size of T1 (a real number, as in the paper).
    p: f64,
    /// The id whose miss was a ghost hit found by `victim`, to go to T2.
    to_t2: Option<u32>,
}

impl Arc {
    /// ARC for `frames` frames and ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, frames: usize) -> Self {
        Self {
            l: IdLists::new(n_ids),
            c: frames,
            p: 0.0,
            to_t2: None,
        }
    }

    /// Adapts `p` for a ghost hit on `id` (in B1 or B2) and drops the ghost.
    /// Returns whether it was in B2.
    fn ghost_hit(&mut self, id: u32) -> bool {
        let in_b2 = self.l.contains(B2, id);
        let (b1, b2) = (self.l.len(B1), self.l.len(B2));
        if in_b2 {
            let delta = (b1 as f64 / b2 as f64).max(1.0);
            self.p = (self.p - delta).max(0.0);
        } else {
            let delta = (b2 as f64 / b1 as f64).max(1.0);
            self.p = (self.p + delta).min(self.c as f64);
        }
        in_b2
    }

    /// REPLACE of the paper: demote the LRU page of T1 or T2 to its ghost list.
    fn replace(&mut self, incoming_in_b2: bool) -> u32 {
        let t1 = self.l.len(T1) as f64;
        #[allow(clippy::float_cmp)] // p is a sum of exact small ratios; the paper tests equality
        let from_t1 =
            (t1 > 0.0 && (t1 > self.p || (t1 == self.p && incoming_in_b2))) || self.l.is_empty(T2);
        let (src, ghost) = if from_t1 { (T1, B1) } else { (T2, B2) };
        let id = self
            .l
            .back(src)
            .or_else(|| self.l.back(if src == T1 { T2 } else { T1 }))
            .unwrap_or_else(|| nothing_resident());
        self.l.remove(id);
        self.l.push_front(ghost, id);
        id
    }
}

impl Policy for Arc {
    const SEES_EVERY_ACCESS: bool = true;
    const ABSORBS_HIT_BEFORE_REPEAT: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.l.move_to_front(T2, id);
    }

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        if self.to_t2.take() == Some(id) {
            self.l.push_front(T2, id);
        } else if matches!(self.l.list_of(id), Some(B1 | B2)) {
            // A ghost hit while memory was not full (after removals).
            self.ghost_hit(id);
            self.l.move_to_front(T2, id);
        } else {
            self.l.push_front(T1, id);
        }
    }

    fn victim<B: AccessBits>(&mut self, incoming: u32, _bits: &mut B) -> u32 {
        match self.l.list_of(incoming) {
            Some(B1 | B2) => {
                let in_b2 = self.ghost_hit(incoming);
                self.l.remove(incoming);
                self.to_t2 = Some(incoming);
                self.replace(in_b2)
            }
            _ => {
                let l1 = self.l.len(T1) + self.l.len(B1);
                if l1 >= self.c {
                    if self.l.len(T1) < self.c {
                        self.l.pop_back(B1);
                        self.replace(false)
                    } else {
                        self.l.pop_back(T1).unwrap_or_else(|| nothing_resident())
                    }
                } else {
                    let total = l1 + self.l.len(T2) + self.l.len(B2);
                    if total >= self.c.saturating_mul(2) {
                        self.l.pop_back(B2);
                    }
                    self.replace(false)
                }
            }
        }
    }

    fn on_remove(&mut self, id: u32) {
        if matches!(self.l.list_of(id), Some(T1 | T2)) {
            self.l.remove(id);
        }
    }

    /// T1 from its LRU end, then T2 from its LRU end.
    fn resident(&self, out: &mut Vec<u32>) {
        self.l.collect_oldest_first(T1, out);
        self.l.collect_oldest_first(T2, out);
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: match self.l.list_of(id) {
                Some(T1) => Some("T1"),
                Some(T2) => Some("T2"),
                _ => None,
            },
            value: None,
        }
    }
}
