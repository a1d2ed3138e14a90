//! Aging: an 8-bit counter per page, shifted right on every timer tick with
//! the accessed bit entering at the top (and then cleared); the page with
//! the smallest counter is evicted. An OS can run it.
//!
//! The load counts as a reference: a new page starts at `0b1000_0000` with A
//! cleared (otherwise a page loaded just before a fault would be the first
//! victim, a known flaw of the textbook version). Ties go to the page loaded
//! first by default ([`Ties`]: aging sees no individual references, so
//! `oldest` and `first-loaded` both mean load order, as do `newest` and
//! `last-loaded`). An indexed heap keyed by (counter, tie rank) gives the
//! victim in O(log n); a tick re-keys every resident page and rebuilds the heap, O(n)
//! once per interval, which the lab sets to the number of frames by default.

use serde::{Deserialize, Serialize};
use std::num::NonZeroU64;

use super::heap::IndexedHeap;
use super::ties::{SPAN, Ties};
use super::{AccessBits, Note, NoteValue, Policy, RefTime, nothing_resident};

/// Top bit of the counter.
const TOP: u8 = 0x80;

/// Aging with 8-bit counters and a tick every `interval` references.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aging {
    /// Keyed by (counter, tie rank from the load order).
    h: IndexedHeap<(u8, u64), false>,
    next_seq: u64,
    interval: NonZeroU64,
    /// Later loads first (`newest`, `last-loaded`).
    last_first: bool,
}

impl Aging {
    /// Aging for ids `0..n_ids`, ticking every `interval` references.
    #[must_use]
    pub fn new(n_ids: usize, interval: NonZeroU64) -> Self {
        Self {
            h: IndexedHeap::new(n_ids),
            next_seq: 0,
            interval,
            last_first: false,
        }
    }

    /// This policy breaking ties between equal counters by `ties` (load
    /// order either way: see the module docs).
    #[must_use]
    pub fn with_ties(mut self, ties: Ties) -> Self {
        self.last_first = matches!(ties, Ties::Newest | Ties::LastLoaded);
        self
    }
}

impl Policy for Aging {
    const SEES_EVERY_ACCESS: bool = false;

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        bits.test_and_clear_accessed(id);
        let rank = if self.last_first {
            SPAN - self.next_seq
        } else {
            self.next_seq
        };
        self.h.set(id, (TOP, rank));
        self.next_seq += 1;
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        self.h.pop().unwrap_or_else(|| nothing_resident())
    }

    fn on_remove(&mut self, id: u32) {
        self.h.remove(id);
    }

    fn tick_interval(&self) -> Option<NonZeroU64> {
        Some(self.interval)
    }

    fn on_tick<B: AccessBits>(&mut self, bits: &mut B) {
        self.h.update_all(|id, (c, seq)| {
            (
                (c >> 1)
                    | if bits.test_and_clear_accessed(id) {
                        TOP
                    } else {
                        0
                    },
                seq,
            )
        });
    }

    /// Smallest counter (next victim) first.
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend(self.h.sorted_ids());
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: None,
            value: self
                .h
                .key(id)
                .map(|(c, _)| ("counter", NoteValue::Bits8(c))),
        }
    }
}

impl Aging {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.h.check_restored(n_ids)?;
        // The next load's rank is `SPAN - next_seq` with the later loads
        // first, and `next_seq + 1` is stored: either overflows past SPAN.
        if self.next_seq > SPAN {
            return Err(format!(
                "the next load's number {} is past 2^62",
                self.next_seq
            ));
        }
        Ok(())
    }

    /// The settings the configuration fixes, against `fresh` (built from
    /// it): the tick interval (the timer adds it to the reference count:
    /// a forged one near 2^64 overflowed) and the tie order.
    pub(crate) fn check_settings(&self, fresh: &Self) -> Result<(), String> {
        if self.interval != fresh.interval || self.last_first != fresh.last_first {
            return Err(format!(
                "aging every {} references, later loads first: {}; not the configuration's",
                self.interval, self.last_first
            ));
        }
        Ok(())
    }

    /// Test hook: the next load's number and the interval (a forged
    /// checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_seq(&mut self) -> (&mut u64, &mut NonZeroU64) {
        (&mut self.next_seq, &mut self.interval)
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.h.holds(id)
    }
}
