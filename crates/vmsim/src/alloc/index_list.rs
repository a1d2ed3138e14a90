//! Intrusive doubly-linked lists over small integer indices.
//!
//! The buddy allocator keeps one free list per order over frame offsets, and
//! the slab cache keeps partial/full/empty lists over slab records. Both need
//! to unlink a *specific* element in O(1) (the buddy being coalesced, the slab
//! that just became full) and to allocate nothing in steady state, so the
//! links are two parallel `Vec<u32>` indexed by element, like the `lru` list
//! head inside Linux's `struct page`.
//!
//! Encoding: a link holds `index + 1`; `0` means "none". A zero-filled vector
//! is therefore a set of unlinked elements, and `vec![0; n]` is served by the
//! host's zeroed pages without touching them.
//!
//! This module owns only the links. Which list an element is on is the
//! caller's business (the buddy allocator records it in its per-frame state):
//! removing an element from a list it is not on corrupts both lists, so the
//! caller must know.

use serde::{Deserialize, Serialize};

/// `lists` disjoint doubly-linked lists over the indices `0..len`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexLists {
    #[serde(with = "crate::serde_sparse")]
    prev: Vec<u32>,
    #[serde(with = "crate::serde_sparse")]
    next: Vec<u32>,
    heads: Vec<u32>,
    lens: Vec<u64>,
}

const NIL: u32 = 0;

impl IndexLists {
    /// `lists` empty lists over `len` unlinked elements. `len` must be below
    /// `u32::MAX` (checked by the callers, which report it as a config error).
    pub(crate) fn new(lists: usize, len: usize) -> Self {
        debug_assert!(len < u32::MAX as usize);
        Self {
            prev: vec![NIL; len],
            next: vec![NIL; len],
            heads: vec![NIL; lists],
            lens: vec![0; lists],
        }
    }

    /// Adds one unlinked element at the end of the index range; returns its index.
    pub(crate) fn grow(&mut self) -> u32 {
        let i = self.prev.len();
        debug_assert!(i + 1 < u32::MAX as usize);
        self.prev.push(NIL);
        self.next.push(NIL);
        i as u32
    }

    /// Number of elements on `list`.
    #[inline]
    pub(crate) fn len(&self, list: usize) -> u64 {
        self.lens[list]
    }

    /// How many lists there are.
    pub(crate) fn len_lists(&self) -> usize {
        self.heads.len()
    }

    /// The first element of `list`.
    #[inline]
    pub(crate) fn front(&self, list: usize) -> Option<u32> {
        decode(self.heads[list])
    }

    /// Links `i` (which must be on no list) at the front of `list`.
    #[inline(always)]
    pub(crate) fn push_front(&mut self, list: usize, i: u32) {
        let iu = i as usize;
        debug_assert!(self.prev[iu] == NIL && self.next[iu] == NIL && self.heads[list] != i + 1);
        let old = self.heads[list];
        self.next[iu] = old;
        self.prev[iu] = NIL;
        if let Some(o) = decode(old) {
            self.prev[o as usize] = i + 1;
        }
        self.heads[list] = i + 1;
        self.lens[list] += 1;
    }

    /// [`IndexLists::push_front`] onto a `list` known to be empty: the
    /// same links, without the look at an old front. Why: the buddy
    /// allocator's split pushes each freed half onto a list its search has
    /// just found empty.
    #[inline(always)]
    pub(crate) fn push_front_empty(&mut self, list: usize, i: u32) {
        let iu = i as usize;
        debug_assert!(self.heads[list] == NIL && self.lens[list] == 0);
        debug_assert!(self.prev[iu] == NIL && self.next[iu] == NIL);
        self.next[iu] = NIL;
        self.prev[iu] = NIL;
        self.heads[list] = i + 1;
        self.lens[list] = 1;
    }

    /// Links `items` (each on no list), in order, at the back of `list`:
    /// the links `push_front` would have left had they been pushed first,
    /// last item first. Finds the back by walking the list once.
    pub(crate) fn append(&mut self, list: usize, items: impl Iterator<Item = u32>) {
        let mut back = self.iter(list).last();
        for i in items {
            let iu = i as usize;
            debug_assert!(
                self.prev[iu] == NIL && self.next[iu] == NIL && self.heads[list] != i + 1
            );
            match back {
                Some(b) => self.next[b as usize] = i + 1,
                None => self.heads[list] = i + 1,
            }
            self.prev[iu] = back.map_or(NIL, |b| b + 1);
            back = Some(i);
            self.lens[list] += 1;
        }
    }

    /// Unlinks `i`, which must be on `list`.
    #[inline(always)]
    pub(crate) fn remove(&mut self, list: usize, i: u32) {
        let iu = i as usize;
        let (p, n) = (self.prev[iu], self.next[iu]);
        match decode(p) {
            Some(p) => self.next[p as usize] = n,
            None => {
                debug_assert_eq!(self.heads[list], i + 1, "element {i} is not on list {list}");
                self.heads[list] = n;
            }
        }
        if let Some(n) = decode(n) {
            self.prev[n as usize] = p;
        }
        self.prev[iu] = NIL;
        self.next[iu] = NIL;
        self.lens[list] -= 1;
    }

    /// Unlinks and returns the first element of `list`.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self, list: usize) -> Option<u32> {
        let i = self.front(list)?;
        self.remove(list, i);
        Some(i)
    }

    /// The elements of `list`, front to back.
    pub(crate) fn iter(&self, list: usize) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.heads[list];
        std::iter::from_fn(move || {
            let i = decode(cur)?;
            cur = self.next[i as usize];
            Some(i)
        })
    }
}

impl IndexLists {
    /// Checks links read back from a checkpoint: `len` elements, every
    /// list a well-formed chain of distinct in-range elements (each one's
    /// `prev` the element before it, the last one's `next` none) of the
    /// length recorded, no element on two lists. Calls `member(list, i)`
    /// for each element found, so the caller can check that it belongs
    /// there. Bounded by the element count, so a forged cycle ends it.
    pub(crate) fn check(
        &self,
        len: usize,
        mut member: impl FnMut(usize, u32) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.prev.len() != len || self.next.len() != len {
            return Err(format!(
                "links for {} and {} elements, expected {len}",
                self.prev.len(),
                self.next.len()
            ));
        }
        if self.heads.len() != self.lens.len() {
            return Err(format!(
                "{} list heads but {} lengths",
                self.heads.len(),
                self.lens.len()
            ));
        }
        let mut seen = vec![false; len];
        for list in 0..self.heads.len() {
            let mut before = NIL;
            let mut cur = self.heads[list];
            let mut n = 0u64;
            while let Some(i) = decode(cur) {
                let Some(was) = seen.get_mut(i as usize) else {
                    return Err(format!("list {list} links element {i}, past the last"));
                };
                if *was {
                    return Err(format!("element {i} is linked twice"));
                }
                *was = true;
                if self.prev[i as usize] != before {
                    return Err(format!("list {list}: element {i}'s back link is wrong"));
                }
                member(list, i)?;
                n += 1;
                before = cur;
                cur = self.next[i as usize];
            }
            if n != self.lens[list] {
                return Err(format!(
                    "list {list} holds {n} elements but its length says {}",
                    self.lens[list]
                ));
            }
        }
        Ok(())
    }
}

#[inline]
fn decode(link: u32) -> Option<u32> {
    link.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_remove_pop() {
        let mut l = IndexLists::new(2, 5);
        for i in [0, 1, 2, 3] {
            l.push_front(0, i);
        }
        assert_eq!(l.iter(0).collect::<Vec<_>>(), vec![3, 2, 1, 0]);
        l.remove(0, 2);
        l.remove(0, 3);
        l.remove(0, 0);
        assert_eq!(l.iter(0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(l.len(0), 1);
        l.push_front(1, 3);
        assert_eq!(l.pop_front(1), Some(3));
        assert_eq!(l.pop_front(1), None);
        let g = l.grow();
        assert_eq!(g, 5);
        l.push_front(1, g);
        assert_eq!(l.front(1), Some(5));
    }

    #[test]
    fn append_links_as_pushing_in_reverse_would() {
        let mut a = IndexLists::new(2, 8);
        let mut b = IndexLists::new(2, 8);
        a.push_front(1, 6);
        b.push_front(1, 6);
        for i in [7, 4, 2, 1] {
            a.push_front(0, i);
        }
        b.push_front(0, 2);
        b.push_front(0, 1);
        b.append(0, [4, 7].into_iter());
        b.append(1, std::iter::empty());
        let mut c = IndexLists::new(2, 8);
        c.append(0, [1, 2, 4, 7].into_iter());
        c.push_front(1, 6);
        for l in [&b, &c] {
            assert_eq!(
                postcard::to_allocvec(l).expect("ser"),
                postcard::to_allocvec(&a).expect("ser")
            );
        }
    }
}
