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

/// The list tag of an id that is in no list.
const NONE: u8 = u8::MAX;

/// `K` doubly-linked lists over ids `0..n`, each id in at most one list.
///
/// Internally a circular list with one sentinel node per list (node `n + k`
/// for list `k`), so insertion and removal never branch on emptiness.
#[derive(Debug, Clone)]
pub struct IdLists<const K: usize> {
    /// Links and list tag of each node, together so one operation on a
    /// node touches one cache line.
    node: Vec<Node>,
    len: [usize; K],
    n: u32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    which: u8,
}

impl<const K: usize> IdLists<K> {
    /// Empty lists for ids `0..n`.
    ///
    /// # Panics
    /// If `n + K` does not fit in `u32` or `K` is 255 or more (both are
    /// programming errors: ids are dense `u32`s).
    #[must_use]
    pub fn new(n: usize) -> Self {
        assert!(K < NONE as usize, "at most 254 lists");
        let total = n.checked_add(K).expect("id count overflows");
        assert!(u32::try_from(total).is_ok(), "ids must fit in u32");
        let n32 = n as u32;
        let mut node = vec![
            Node {
                prev: 0,
                next: 0,
                which: NONE
            };
            total
        ];
        for k in 0..K {
            let s = n32 + k as u32;
            node[s as usize].prev = s;
            node[s as usize].next = s;
        }
        Self {
            node,
            len: [0; K],
            n: n32,
        }
    }

    #[inline]
    fn sentinel(&self, list: usize) -> u32 {
        self.n + list as u32
    }

    /// The list `id` is in, if any.
    #[inline]
    #[must_use]
    pub fn list_of(&self, id: u32) -> Option<usize> {
        let w = self.node[id as usize].which;
        (w != NONE).then_some(w as usize)
    }

    /// Whether `id` is in list `list`.
    #[inline]
    #[must_use]
    pub fn contains(&self, list: usize, id: u32) -> bool {
        self.node[id as usize].which == list as u8
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
        let nx = self.node[at as usize].next;
        self.node[id as usize].prev = at;
        self.node[id as usize].next = nx;
        self.node[at as usize].next = id;
        self.node[nx as usize].prev = id;
    }

    /// Pushes `id` (in no list) at the front (newest end) of `list`.
    #[inline]
    pub fn push_front(&mut self, list: usize, id: u32) {
        debug_assert_eq!(self.node[id as usize].which, NONE, "id {id} already listed");
        let s = self.sentinel(list);
        self.link_after(s, id);
        self.node[id as usize].which = list as u8;
        self.len[list] += 1;
    }

    /// Pushes `id` (in no list) at the back (oldest end) of `list`.
    #[inline]
    pub fn push_back(&mut self, list: usize, id: u32) {
        debug_assert_eq!(self.node[id as usize].which, NONE, "id {id} already listed");
        let s = self.sentinel(list);
        let last = self.node[s as usize].prev;
        self.link_after(last, id);
        self.node[id as usize].which = list as u8;
        self.len[list] += 1;
    }

    /// Inserts `id` (in no list) just older than `at` (which is in `list`):
    /// right behind a clock hand that points at `at`.
    #[inline]
    pub fn insert_older_than(&mut self, list: usize, at: u32, id: u32) {
        debug_assert_eq!(self.node[id as usize].which, NONE, "id {id} already listed");
        debug_assert_eq!(
            self.node[at as usize].which, list as u8,
            "{at} not in list {list}"
        );
        self.link_after(at, id);
        self.node[id as usize].which = list as u8;
        self.len[list] += 1;
    }

    /// Removes `id` from whatever list holds it; returns that list.
    #[inline]
    pub fn remove(&mut self, id: u32) -> Option<usize> {
        let w = self.node[id as usize].which;
        if w == NONE {
            return None;
        }
        let Node {
            prev: p, next: nx, ..
        } = self.node[id as usize];
        self.node[p as usize].next = nx;
        self.node[nx as usize].prev = p;
        self.node[id as usize].which = NONE;
        self.len[w as usize] -= 1;
        Some(w as usize)
    }

    /// Moves `id` (in any list) to the front of `list`.
    #[inline]
    pub fn move_to_front(&mut self, list: usize, id: u32) {
        self.remove(id);
        self.push_front(list, id);
    }

    /// The oldest id of `list`.
    #[inline]
    #[must_use]
    pub fn back(&self, list: usize) -> Option<u32> {
        let b = self.node[self.sentinel(list) as usize].prev;
        (b < self.n).then_some(b)
    }

    /// The newest id of `list`.
    #[inline]
    #[must_use]
    pub fn front(&self, list: usize) -> Option<u32> {
        let f = self.node[self.sentinel(list) as usize].next;
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
        let p = self.node[id as usize].prev;
        (p < self.n).then_some(p)
    }

    /// The id one step older than `id` in its list (towards the back), or
    /// `None` at the back.
    #[inline]
    #[must_use]
    pub fn older(&self, id: u32) -> Option<u32> {
        let nx = self.node[id as usize].next;
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

#[cfg(test)]
mod tests {
    use super::*;

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
