//! Intrusive doubly-linked lists over dense ids, stored in `Vec`s.
//!
//! Every replacement policy keeps one or more queues of page ids (FIFO order,
//! recency order, a clock ring, ghost lists). [`IdLists`] holds up to `K`
//! lists that share one node array: an id is in at most one of them at a
//! time, and every operation (push, remove, move, pop) is O(1) with no
//! allocation after construction. Policies that need an id in two lists at
//! once (LIRS: stack S and queue Q) use two `IdLists`.
//!
//! Orientation: the *front* of a list is where new ids are pushed (the most
//! recent end); the *back* is the oldest end.

use serde::{Deserialize, Serialize};

/// The list tag of an id that is in no list.
/// `which` of an id in no list. Lists are stored as `list + 1`, so that a
/// fresh node array is all zeros and costs no writes (the allocator hands
/// out zeroed pages).
const NONE: u8 = 0;

/// `K` doubly-linked lists over ids `0..n`, each id in at most one list.
///
/// Internally a circular list with one sentinel node per list (node `n + k`
/// for list `k`), so insertion and removal never branch on emptiness.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdLists<const K: usize> {
    /// Links of each node, `prev` in the low and `next` in the high 32 bits:
    /// both in one word, and all zero when fresh (no writes to allocate).
    #[serde(with = "crate::serde_sparse")]
    link: Vec<u64>,
    /// The list each node is in, as `list + 1`; 0 for none.
    #[serde(with = "crate::serde_sparse")]
    which: Vec<u8>,
    #[serde(with = "crate::serde_arrays")]
    len: [usize; K],
    n: u32,
}

impl<const K: usize> IdLists<K> {
    /// Empty lists for ids `0..n`.
    ///
    /// # Panics
    /// If `n + K` does not fit in `u32` or `K` is 255 or more (both are
    /// programming errors: ids are dense `u32`s).
    #[must_use]
    pub fn new(n: usize) -> Self {
        assert!(K < u8::MAX as usize, "at most 254 lists");
        let total = n.checked_add(K).expect("id count overflows");
        assert!(u32::try_from(total).is_ok(), "ids must fit in u32");
        let n32 = n as u32;
        let mut lists = Self {
            link: vec![0; total],
            which: vec![NONE; total],
            len: [0; K],
            n: n32,
        };
        for k in 0..K {
            let sentinel = n32 + k as u32;
            lists.set_prev(sentinel, sentinel);
            lists.set_next(sentinel, sentinel);
        }
        lists
    }

    #[inline(always)]
    fn prev(&self, i: u32) -> u32 {
        self.link[i as usize] as u32
    }

    #[inline(always)]
    fn next(&self, i: u32) -> u32 {
        (self.link[i as usize] >> 32) as u32
    }

    #[inline(always)]
    fn set_prev(&mut self, i: u32, v: u32) {
        let l = &mut self.link[i as usize];
        *l = (*l & !0xffff_ffff) | u64::from(v);
    }

    #[inline(always)]
    fn set_next(&mut self, i: u32, v: u32) {
        let l = &mut self.link[i as usize];
        *l = (*l & 0xffff_ffff) | u64::from(v) << 32;
    }

    #[inline]
    fn sentinel(&self, list: usize) -> u32 {
        self.n + list as u32
    }

    /// The list `id` is in, if any.
    #[inline]
    #[must_use]
    pub fn list_of(&self, id: u32) -> Option<usize> {
        let w = self.which[id as usize];
        (w != NONE).then(|| w as usize - 1)
    }

    /// Whether `id` is in list `list`.
    #[inline]
    #[must_use]
    pub fn contains(&self, list: usize, id: u32) -> bool {
        self.which[id as usize] == list as u8 + 1
    }

    /// Number of ids in list `list`.
    #[inline]
    #[must_use]
    pub fn len(&self, list: usize) -> usize {
        self.len[list]
    }

    /// Whether list `list` is empty.
    #[inline]
    #[must_use]
    pub fn is_empty(&self, list: usize) -> bool {
        self.len[list] == 0
    }

    #[inline]
    fn link_after(&mut self, at: u32, id: u32) {
        let nx = self.next(at);
        self.set_prev(id, at);
        self.set_next(id, nx);
        self.set_next(at, id);
        self.set_prev(nx, id);
    }

    /// Pushes `id` (in no list) at the front (newest end) of `list`.
    #[inline]
    pub fn push_front(&mut self, list: usize, id: u32) {
        debug_assert_eq!(self.which[id as usize], NONE, "id {id} already listed");
        let s = self.sentinel(list);
        self.link_after(s, id);
        self.which[id as usize] = list as u8 + 1;
        self.len[list] += 1;
    }

    /// Pushes `id` (in no list) at the back (oldest end) of `list`.
    #[inline]
    pub fn push_back(&mut self, list: usize, id: u32) {
        debug_assert_eq!(self.which[id as usize], NONE, "id {id} already listed");
        let s = self.sentinel(list);
        let last = self.prev(s);
        self.link_after(last, id);
        self.which[id as usize] = list as u8 + 1;
        self.len[list] += 1;
    }

    /// Inserts `id` (in no list) just older than `at` (which is in `list`):
    /// right behind a clock hand that points at `at`.
    #[inline]
    pub fn insert_older_than(&mut self, list: usize, at: u32, id: u32) {
        debug_assert_eq!(self.which[id as usize], NONE, "id {id} already listed");
        debug_assert_eq!(
            self.which[at as usize],
            list as u8 + 1,
            "{at} not in list {list}"
        );
        self.link_after(at, id);
        self.which[id as usize] = list as u8 + 1;
        self.len[list] += 1;
    }

    /// Removes `id` from whatever list holds it; returns that list.
    #[inline]
    pub fn remove(&mut self, id: u32) -> Option<usize> {
        let w = self.which[id as usize];
        if w == NONE {
            return None;
        }
        let (p, nx) = (self.prev(id), self.next(id));
        self.set_next(p, nx);
        self.set_prev(nx, p);
        self.which[id as usize] = NONE;
        self.len[w as usize - 1] -= 1;
        Some(w as usize - 1)
    }

    /// Moves `id` (in any list, or in none) to the front of `list`.
    ///
    /// The hit path of every recency policy, so done in one pass: nothing
    /// at all when `id` is already there (a page referenced twice in a row,
    /// a third of a real program's references), otherwise one unlink and
    /// one link, each node's two links written as one word, the lengths
    /// touched only when the list changes.
    #[inline]
    pub fn move_to_front(&mut self, list: usize, id: u32) {
        let s = self.sentinel(list);
        let tag = list as u8 + 1;
        let i = id as usize;
        let w = self.which[i];
        if w == tag && self.next(s) == id {
            return;
        }
        if w != NONE {
            let l = self.link[i];
            let (p, nx) = (l as u32, (l >> 32) as u32);
            self.set_next(p, nx);
            self.set_prev(nx, p);
            if w != tag {
                self.len[w as usize - 1] -= 1;
                self.len[list] += 1;
            }
        } else {
            self.len[list] += 1;
        }
        let f = self.next(s);
        self.link[i] = u64::from(s) | u64::from(f) << 32;
        self.set_next(s, id);
        self.set_prev(f, id);
        self.which[i] = tag;
    }

    /// The oldest id of `list`.
    #[inline]
    #[must_use]
    pub fn back(&self, list: usize) -> Option<u32> {
        let b = self.prev(self.sentinel(list));
        (b < self.n).then_some(b)
    }

    /// The newest id of `list`.
    #[inline]
    #[must_use]
    pub fn front(&self, list: usize) -> Option<u32> {
        let f = self.next(self.sentinel(list));
        (f < self.n).then_some(f)
    }

    /// Removes and returns the oldest id of `list`.
    #[inline]
    pub fn pop_back(&mut self, list: usize) -> Option<u32> {
        let b = self.back(list)?;
        self.remove(b);
        Some(b)
    }

    /// Removes and returns the newest id of `list`.
    #[inline]
    pub fn pop_front(&mut self, list: usize) -> Option<u32> {
        let f = self.front(list)?;
        self.remove(f);
        Some(f)
    }

    /// The id one step newer than `id` in its list (towards the front), or
    /// `None` at the front.
    #[inline]
    #[must_use]
    pub fn newer(&self, id: u32) -> Option<u32> {
        let p = self.prev(id);
        (p < self.n).then_some(p)
    }

    /// The id one step older than `id` in its list (towards the back), or
    /// `None` at the back.
    #[inline]
    #[must_use]
    pub fn older(&self, id: u32) -> Option<u32> {
        let nx = self.next(id);
        (nx < self.n).then_some(nx)
    }

    /// Appends the ids of `list` to `out`, oldest first.
    pub fn collect_oldest_first(&self, list: usize, out: &mut Vec<u32>) {
        let mut cur = self.back(list);
        while let Some(id) = cur {
            out.push(id);
            cur = self.newer(id);
        }
    }
}

impl<const K: usize> IdLists<K> {
    /// Checks lists decoded from a checkpoint (which may be forged) before
    /// anything follows their links: `n_ids` ids, every link in range,
    /// each list a proper ring through its sentinel whose nodes are tagged
    /// with it and whose length is the one recorded, and no tagged id
    /// outside its list. The message says what is wrong.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        let total = n_ids + K;
        if self.n as usize != n_ids || self.link.len() != total || self.which.len() != total {
            return Err(format!(
                "lists over {} ids with {} links, expected {n_ids} ids",
                self.n,
                self.link.len()
            ));
        }
        let mut seen = vec![false; n_ids];
        for k in 0..K {
            let s = self.sentinel(k);
            if self.which[s as usize] != NONE {
                return Err(format!("list {k}'s sentinel is tagged as a member"));
            }
            let (mut at, mut count) = (s, 0usize);
            loop {
                let nx = self.next(at);
                if nx as usize >= total || self.prev(nx) != at {
                    return Err(format!("list {k}: node {at}'s links are broken"));
                }
                if nx == s {
                    break;
                }
                if nx >= self.n || self.which[nx as usize] != k as u8 + 1 {
                    return Err(format!("list {k}: node {nx} is not tagged as its member"));
                }
                if std::mem::replace(&mut seen[nx as usize], true) {
                    return Err(format!("list {k}: id {nx} is linked twice"));
                }
                count += 1;
                at = nx;
            }
            if count != self.len[k] {
                return Err(format!(
                    "list {k} holds {count} ids but records {}",
                    self.len[k]
                ));
            }
        }
        match (0..n_ids).find(|&i| self.which[i] != NONE && !seen[i]) {
            Some(i) => Err(format!("id {i} is tagged but in no list")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// The lists as plain deques (front = newest), the model the linked
    /// lists must agree with after every operation.
    fn check(l: &IdLists<3>, model: &[VecDeque<u32>; 3]) {
        for (k, q) in model.iter().enumerate() {
            let mut v = Vec::new();
            l.collect_oldest_first(k, &mut v);
            let want: Vec<u32> = q.iter().rev().copied().collect();
            assert_eq!(v, want, "list {k}");
            assert_eq!(l.len(k), q.len());
            assert_eq!(l.front(k), q.front().copied());
            assert_eq!(l.back(k), q.back().copied());
            for &id in q {
                assert!(l.contains(k, id));
            }
        }
    }

    proptest! {
        /// `move_to_front` (one pass, nothing done when already at the
        /// front) against the model, mixed with every other operation.
        #[test]
        fn lists_agree_with_deques(ops in proptest::collection::vec((0u8..6, 0usize..3, 0u32..12), 1..400)) {
            let mut l: IdLists<3> = IdLists::new(12);
            let mut model: [VecDeque<u32>; 3] = Default::default();
            let find = |m: &[VecDeque<u32>; 3], id: u32| {
                m.iter().enumerate().find_map(|(k, q)| q.iter().position(|&x| x == id).map(|p| (k, p)))
            };
            for (op, list, id) in ops {
                match op {
                    0 | 1 => {
                        l.move_to_front(list, id);
                        if let Some((k, p)) = find(&model, id) {
                            model[k].remove(p);
                        }
                        model[list].push_front(id);
                    }
                    2 => {
                        if find(&model, id).is_none() {
                            l.push_front(list, id);
                            model[list].push_front(id);
                        }
                    }
                    3 => {
                        if find(&model, id).is_none() {
                            l.push_back(list, id);
                            model[list].push_back(id);
                        }
                    }
                    4 => {
                        let got = l.remove(id);
                        let want = find(&model, id).map(|(k, p)| {
                            model[k].remove(p);
                            k
                        });
                        prop_assert_eq!(got, want);
                    }
                    _ => {
                        prop_assert_eq!(l.pop_back(list), model[list].pop_back());
                    }
                }
                check(&l, &model);
            }
        }
    }

    #[test]
    fn push_pop_remove_keep_order_and_lengths() {
        let mut l: IdLists<2> = IdLists::new(6);
        for id in 0..4 {
            l.push_front(0, id);
        }
        l.push_back(1, 5);
        assert_eq!(l.len(0), 4);
        assert_eq!(l.back(0), Some(0));
        assert_eq!(l.front(0), Some(3));
        assert_eq!(l.remove(2), Some(0));
        let mut v = Vec::new();
        l.collect_oldest_first(0, &mut v);
        assert_eq!(v, [0, 1, 3]);
        l.move_to_front(1, 0);
        assert_eq!(l.list_of(0), Some(1));
        assert_eq!(l.pop_back(1), Some(5));
        assert_eq!(l.pop_back(1), Some(0));
        assert_eq!(l.pop_back(1), None);
        assert!(l.is_empty(1));
        assert_eq!(l.newer(1), Some(3));
        assert_eq!(l.newer(3), None);
        assert_eq!(l.older(1), None);
        assert_eq!(l.remove(4), None);
    }
}
