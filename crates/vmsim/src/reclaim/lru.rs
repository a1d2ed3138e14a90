//! Exact LRU and its mirror image MRU (both oracles: they must see every
//! reference, which a kernel cannot when the TLB serves hits).

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};

/// Least recently used, exact. An oracle (no OS sees every access).
///
/// A recency log rather than a list: every reference appends the page to
/// the log and records where (one store each, against the four links a
/// list move rewrites); an entry is live while it is its page's latest.
/// The victim is the oldest live entry. When the log is full and at least
/// half of it is dead, the live entries are moved to its front in order,
/// so the work per reference stays O(1) amortised and the log at most
/// about four times the resident pages.
#[derive(Debug, Clone)]
pub struct Lru {
    /// Pages in order of reference from `head` (oldest) to the end.
    log: Vec<u32>,
    /// Entries before it have been consumed.
    head: usize,
    /// Where each resident page's latest entry is; [`NOT_LOGGED`] for others.
    pos: Vec<u64>,
    /// Resident pages (live entries).
    live: usize,
}

/// `pos` of a page that is not resident.
const NOT_LOGGED: u64 = u64::MAX;

impl Lru {
    /// An LRU policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            log: Vec::with_capacity(n_ids.clamp(64, 1 << 16)),
            head: 0,
            pos: vec![NOT_LOGGED; n_ids],
            live: 0,
        }
    }

    /// Appends `id` as the most recent entry.
    #[inline]
    fn append(&mut self, id: u32) {
        if self.log.len() == self.log.capacity() && self.live * 2 <= self.log.len() {
            self.compact();
        }
        self.pos[id as usize] = self.log.len() as u64;
        self.log.push(id);
    }

    /// Moves the live entries to the front of the log, in order.
    #[cold]
    fn compact(&mut self) {
        let mut w = 0;
        for r in self.head..self.log.len() {
            let id = self.log[r];
            if self.pos[id as usize] == r as u64 {
                self.log[w] = id;
                self.pos[id as usize] = w as u64;
                w += 1;
            }
        }
        self.log.truncate(w);
        self.head = 0;
    }
}

impl Policy for Lru {
    const SEES_EVERY_ACCESS: bool = true;
    const ABSORBS_HIT_BEFORE_REPEAT: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        if self.pos[id as usize].wrapping_add(1) != self.log.len() as u64 {
            self.append(id);
        }
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.live += 1;
        self.append(id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        while self.head < self.log.len() {
            let id = self.log[self.head];
            self.head += 1;
            let p = &mut self.pos[id as usize];
            if *p == self.head as u64 - 1 {
                *p = NOT_LOGGED;
                self.live -= 1;
                return id;
            }
        }
        nothing_resident()
    }

    fn on_remove(&mut self, id: u32) {
        let p = &mut self.pos[id as usize];
        if *p != NOT_LOGGED {
            *p = NOT_LOGGED;
            self.live -= 1;
        }
    }

    /// Least recently used first.
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(
            (self.head..self.log.len())
                .filter(|&r| self.pos[self.log[r] as usize] == r as u64)
                .map(|r| self.log[r]),
        );
    }
}

/// A recency list updated on every reference, evicting from either end:
/// the most recent end gives [`Mru`]; the least recent end gives the
/// list-based LRU this module had before the recency log, kept as the
/// oracle the lab's property test compares [`Lru`] with.
#[derive(Debug, Clone)]
pub struct RecencyList<const EVICT_OLDEST: bool> {
    q: IdLists<1>,
}

/// Most recently used: evicts the page used last. Good for loops larger than
/// memory, bad almost everywhere else; an oracle like [`Lru`].
pub type Mru = RecencyList<false>;

impl<const EVICT_OLDEST: bool> RecencyList<EVICT_OLDEST> {
    /// A policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            q: IdLists::new(n_ids),
        }
    }
}

impl<const EVICT_OLDEST: bool> Policy for RecencyList<EVICT_OLDEST> {
    const SEES_EVERY_ACCESS: bool = true;
    const ABSORBS_HIT_BEFORE_REPEAT: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.move_to_front(0, id);
    }

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.q.push_front(0, id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        let id = if EVICT_OLDEST {
            self.q.pop_back(0)
        } else {
            self.q.pop_front(0)
        };
        id.unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.q.remove(id);
    }

    /// The next victim first.
    fn resident(&self, out: &mut Vec<u32>) {
        let start = out.len();
        self.q.collect_oldest_first(0, out);
        if !EVICT_OLDEST {
            out[start..].reverse();
        }
    }
}

/// The list-based LRU this module had before the recency log: the oracle
/// the property test in the lab compares [`Lru`] with.
#[cfg(test)]
pub(crate) mod reference {
    /// Least recently used, exact: a recency list updated on every hit.
    pub(crate) type ListLru = super::RecencyList<true>;
}
