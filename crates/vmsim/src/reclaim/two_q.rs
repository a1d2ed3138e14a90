//! 2Q (Johnson and Shasha, VLDB 1994), the full version: a FIFO `A1in` for
//! pages seen once, a ghost FIFO `A1out` of ids recently evicted from it,
//! and an LRU list `Am` for pages referenced again after leaving `A1in`.
//! An oracle: `Am` is an exact LRU list.

use super::{AccessBits, IdLists, Note, Policy, RefTime, nothing_resident};

const A1IN: usize = 0;
const AM: usize = 1;
const A1OUT: usize = 2;

/// 2Q with `Kin` = 25% and `Kout` = 50% of the frames (the paper's advice).
#[derive(Debug, Clone)]
pub struct TwoQ {
    l: IdLists<3>,
    k_in: usize,
    k_out: usize,
    ghost_hit: Option<u32>,
}

impl TwoQ {
    /// 2Q for `frames` frames and ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, frames: usize) -> Self {
        Self {
            l: IdLists::new(n_ids),
            k_in: (frames / 4).max(1),
            k_out: (frames / 2).max(1),
            ghost_hit: None,
        }
    }
}

impl Policy for TwoQ {
    const SEES_EVERY_ACCESS: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        if self.l.contains(AM, id) {
            self.l.move_to_front(AM, id);
        }
    }

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        let ghost_hit = self.ghost_hit.take() == Some(id)
            || (self.l.contains(A1OUT, id) && self.l.remove(id).is_some());
        self.l.push_front(if ghost_hit { AM } else { A1IN }, id);
    }

    fn victim<B: AccessBits>(&mut self, incoming: u32, _bits: &mut B) -> u32 {
        if self.l.contains(A1OUT, incoming) {
            self.l.remove(incoming);
            self.ghost_hit = Some(incoming);
        }
        if self.l.len(A1IN) > self.k_in || self.l.is_empty(AM) {
            let Some(id) = self.l.pop_back(A1IN) else {
                nothing_resident()
            };
            if self.l.len(A1OUT) >= self.k_out {
                self.l.pop_back(A1OUT);
            }
            self.l.push_front(A1OUT, id);
            id
        } else {
            self.l.pop_back(AM).unwrap_or_else(|| nothing_resident())
        }
    }

    fn on_remove(&mut self, id: u32) {
        if matches!(self.l.list_of(id), Some(A1IN | AM)) {
            self.l.remove(id);
        }
    }

    /// `A1in` oldest first, then `Am` least recently used first.
    fn resident(&self, out: &mut Vec<u32>) {
        self.l.collect_oldest_first(A1IN, out);
        self.l.collect_oldest_first(AM, out);
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: match self.l.list_of(id) {
                Some(A1IN) => Some("A1in"),
                Some(AM) => Some("Am"),
                _ => None,
            },
            value: None,
        }
    }
}
