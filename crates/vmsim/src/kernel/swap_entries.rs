//! The swap entries of an address space: which of its pages are in swap,
//! and in which slot (what Linux keeps in non-present PTEs).
//!
//! Why a type of its own: a swap-heavy run looks an entry up at every fault
//! on a page that is not present, inserts one at every swap-out and removes
//! one at every swap-in. A hash map does each in a few dozen instructions,
//! where the ordered map it replaces walked (and rebalanced) a B-tree. The
//! order is kept where it can be seen: whatever lists the entries
//! (checkpoints, fork, exit, munmap, the dirty-page tracker, migration, the
//! invariant checks) gets them by increasing address, and the entries
//! serialize exactly as the ordered map did (a map sorted by address), so
//! checkpoint files do not change.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::swap::SwapSlot;

/// Page address to swap slot, for one address space.
///
/// An open-addressing table of its own (linear probing, Fibonacci hashing
/// of the address, removal by shifting the entries after back, so there
/// are no tombstones): an insert at each swap-out and a removal at each
/// swap-in of a swap-heavy run are each a multiply, a probe or two and a
/// write, where the general hash map's out-of-line insert cost about 72
/// instructions and its removal about 60. Its order is never seen (see
/// the module docs), so which bucket holds what changes nothing outside.
#[derive(Clone, Default)]
pub struct SwapEntries {
    /// `buckets.len()` is 0 or a power of two. A bucket whose address is
    /// [`EMPTY`] is empty (its slot is a filler, never read): 16 bytes a
    /// bucket, where an `Option` of the pair took 24.
    buckets: Vec<(u64, SwapSlot)>,
    /// The entry of the address [`EMPTY`] itself, which no bucket can hold
    /// (no page starts there, but nothing here relies on it).
    top: Option<SwapSlot>,
    /// `64 - log2(buckets.len())`: the hash is the product's top bits.
    shift: u32,
    /// Entries in `buckets` (not counting `top`).
    len: usize,
}

/// The address of an empty bucket.
const EMPTY: u64 = u64::MAX;

/// The multiplier of Fibonacci hashing (2^64 over the golden ratio, odd):
/// the product's top bits depend on every bit of the address, so page
/// addresses (their low bits zero, often consecutive) spread evenly.
const FIB: u64 = 0x9E37_79B9_7F4A_7C15;

/// Buckets of the first table (grown from nothing at the first insert).
const FIRST_BUCKETS: usize = 16;

impl SwapEntries {
    /// No entries.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket where the search for `va` starts (the table is not empty).
    #[inline(always)]
    fn home(&self, va: u64) -> usize {
        (va.wrapping_mul(FIB) >> self.shift) as usize
    }

    /// The bucket holding `va` (not [`EMPTY`]), if any.
    #[inline(always)]
    fn find(&self, va: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut i = self.home(va);
        loop {
            let k = self.buckets[i].0;
            if k == va {
                return Some(i);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot of the page at `va`, if it is in swap.
    #[inline]
    #[must_use]
    pub fn get(&self, va: &u64) -> Option<&SwapSlot> {
        if *va == EMPTY {
            return self.top.as_ref();
        }
        let i = self.find(*va)?;
        Some(&self.buckets[i].1)
    }

    /// Whether the page at `va` is in swap.
    #[inline]
    #[must_use]
    pub fn contains_key(&self, va: &u64) -> bool {
        self.get(va).is_some()
    }

    /// Records that the page at `va` is in `slot`; returns the slot it was
    /// recorded in before, if any.
    #[inline]
    pub fn insert(&mut self, va: u64, slot: SwapSlot) -> Option<SwapSlot> {
        if va == EMPTY {
            return self.top.replace(slot);
        }
        // At most three quarters full (counting the new entry), so a probe
        // meets an empty bucket soon.
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow(slot);
        }
        let mask = self.buckets.len() - 1;
        let mut i = self.home(va);
        loop {
            let b = &mut self.buckets[i];
            if b.0 == va {
                return Some(std::mem::replace(&mut b.1, slot));
            }
            if b.0 == EMPTY {
                *b = (va, slot);
                self.len += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Twice the buckets (16 at first), every entry placed again; `filler`
    /// is the slot the empty buckets carry (any will do).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, filler: SwapSlot) {
        let n = (self.buckets.len() * 2).max(FIRST_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![(EMPTY, filler); n]);
        self.shift = 64 - n.trailing_zeros();
        let mask = n - 1;
        for (va, slot) in old {
            if va == EMPTY {
                continue;
            }
            let mut i = self.home(va);
            while self.buckets[i].0 != EMPTY {
                i = (i + 1) & mask;
            }
            self.buckets[i] = (va, slot);
        }
    }

    /// Forgets the entry of the page at `va`; returns its slot.
    #[inline]
    pub fn remove(&mut self, va: &u64) -> Option<SwapSlot> {
        if *va == EMPTY {
            return self.top.take();
        }
        let hole = self.find(*va)?;
        let slot = self.buckets[hole].1;
        self.buckets[hole].0 = EMPTY;
        self.len -= 1;
        let mask = self.buckets.len() - 1;
        if self.buckets[(hole + 1) & mask].0 != EMPTY {
            self.close_hole(hole);
        }
        Some(slot)
    }

    /// After the removal that emptied bucket `hole`, with the next bucket
    /// taken: each later entry of the run moves into the hole when the hole
    /// lies between its home and where it sits (cyclically), so that every
    /// entry stays reachable from its home without passing an empty bucket.
    /// Out of line: about half the removals find the next bucket empty.
    #[inline(never)]
    fn close_hole(&mut self, mut hole: usize) {
        let mask = self.buckets.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.buckets[j].0;
            if k == EMPTY {
                break;
            }
            let home = self.home(k);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = self.buckets[j];
                self.buckets[j].0 = EMPTY;
                hole = j;
            }
        }
    }

    /// The entries in bucket order (not sorted).
    fn entries(&self) -> impl Iterator<Item = (u64, SwapSlot)> + '_ {
        self.buckets
            .iter()
            .copied()
            .filter(|&(va, _)| va != EMPTY)
            .chain(self.top.map(|s| (EMPTY, s)))
    }

    /// How many pages are in swap.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len + usize::from(self.top.is_some())
    }

    /// Whether no page is in swap.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries by increasing address.
    #[must_use]
    pub fn sorted(&self) -> Vec<(u64, SwapSlot)> {
        let mut v: Vec<(u64, SwapSlot)> = self.entries().collect();
        v.sort_unstable_by_key(|&(va, _)| va);
        v
    }

    /// The entries by increasing address.
    pub fn iter(&self) -> impl Iterator<Item = (u64, SwapSlot)> + use<> {
        self.sorted().into_iter()
    }

    /// The page addresses in swap, increasing.
    pub fn keys(&self) -> impl Iterator<Item = u64> + use<> {
        self.iter().map(|(va, _)| va)
    }

    /// The slots, by increasing page address.
    pub fn values(&self) -> impl Iterator<Item = SwapSlot> + use<> {
        self.iter().map(|(_, s)| s)
    }

    /// The slots, by increasing page address, the entries consumed.
    pub fn into_values(self) -> impl Iterator<Item = SwapSlot> {
        self.values()
    }

    /// The entries whose page address is in `range`, by increasing address
    /// (page addresses are multiples of `page_bytes`).
    #[must_use]
    pub fn range(&self, range: Range<u64>, page_bytes: u64) -> Vec<(u64, SwapSlot)> {
        let page = page_bytes.max(1);
        let first = range.start.div_ceil(page).saturating_mul(page);
        let pages = range.end.saturating_sub(first).div_ceil(page);
        if pages <= self.len() as u64 {
            // No more pages in the range than entries: look each one up.
            (0..pages)
                .map(|i| first + i * page)
                .filter_map(|va| self.get(&va).map(|&s| (va, s)))
                .collect()
        } else {
            let mut v: Vec<(u64, SwapSlot)> = self
                .entries()
                .filter(|(va, _)| range.contains(va))
                .collect();
            v.sort_unstable_by_key(|&(va, _)| va);
            v
        }
    }
}

impl fmt::Debug for SwapEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl Serialize for SwapEntries {
    /// As the ordered map serialized: a map of exactly `len` entries by
    /// increasing address.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.sorted())
    }
}

impl<'de> Deserialize<'de> for SwapEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ordered = std::collections::BTreeMap::<u64, SwapSlot>::deserialize(deserializer)?;
        let mut entries = Self::new();
        for (va, slot) in ordered {
            entries.insert(va, slot);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn slot(i: u32) -> SwapSlot {
        crate::swap::SwapDevice::create(None, 64, 16, false, false)
            .expect("device")
            .slot(i)
            .expect("slot")
    }

    /// The same operations on the ordered map and on the entries give the
    /// same answers, the same listings and the same serialized bytes.
    #[test]
    fn behaves_and_serializes_as_the_ordered_map() {
        let slots: Vec<SwapSlot> = (0..64).map(slot).collect();
        let mut ordered: BTreeMap<u64, SwapSlot> = BTreeMap::new();
        let mut entries = SwapEntries::new();
        let mut x = 12345u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let va = ((x >> 33) % 97) * 4096;
            let s = slots[(x >> 20) as usize % 64];
            match (x >> 60) % 3 {
                0 => assert_eq!(ordered.insert(va, s), entries.insert(va, s)),
                1 => assert_eq!(ordered.remove(&va), entries.remove(&va)),
                _ => {
                    assert_eq!(ordered.get(&va), entries.get(&va));
                    assert_eq!(ordered.contains_key(&va), entries.contains_key(&va));
                }
            }
        }
        let listed: Vec<(u64, SwapSlot)> = ordered.iter().map(|(&v, &s)| (v, s)).collect();
        assert_eq!(entries.sorted(), listed);
        assert_eq!(entries.len(), ordered.len());
        for (a, b) in [
            (0, 0),
            (4096, 40 * 4096),
            (0, 1 << 40),
            (50 * 4096, 51 * 4096),
            (4095, 9 * 4096 + 1),
            (4097, 8 * 4096 - 1),
        ] {
            let want: Vec<(u64, SwapSlot)> = ordered.range(a..b).map(|(&v, &s)| (v, s)).collect();
            assert_eq!(entries.range(a..b, 4096), want, "{a:#x}..{b:#x}");
        }
        assert_eq!(
            serde_json::to_string(&entries).expect("json"),
            serde_json::to_string(&ordered).expect("json")
        );
        assert_eq!(
            postcard::to_allocvec(&entries).expect("postcard"),
            postcard::to_allocvec(&ordered).expect("postcard")
        );
        assert_eq!(format!("{entries:?}"), format!("{ordered:?}"));
        let back: SwapEntries =
            serde_json::from_str(&serde_json::to_string(&ordered).expect("json")).expect("read");
        assert_eq!(back.sorted(), listed);
    }

    /// The table's own workings against the ordered map: thousands of
    /// entries (the table grows from 16 buckets to 8192), runs of
    /// neighbouring buckets emptied and closed up in every order, addresses
    /// of 4 KiB and 2 MiB pages and arbitrary ones (0 and `u64::MAX`, the
    /// empty marker, among them); after each removal every entry is still
    /// found, and the length and listings agree.
    #[test]
    fn open_addressing_keeps_every_entry_reachable() {
        let slots: Vec<SwapSlot> = (0..64).map(slot).collect();
        let mut ordered: BTreeMap<u64, SwapSlot> = BTreeMap::new();
        let mut entries = SwapEntries::new();
        let mut x = 99u64;
        for step in 0..60_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 20;
            let va = match r % 5 {
                0 => ((r >> 4) % 6000) << 12,
                1 => ((r >> 4) % 3000) << 21,
                2 => [0, u64::MAX, u64::MAX - 4095, 1][(r >> 4) as usize % 4],
                _ => ((r >> 4) % 4000) * 4096 + 0x7f00_0000_0000,
            };
            let s = slots[(r >> 30) as usize % 64];
            // Grow for the first half, then shrink: removals outnumber
            // inserts, so runs are emptied down to nothing.
            let insert = if step < 30_000 { r % 8 < 5 } else { r % 8 < 2 };
            if insert {
                assert_eq!(ordered.insert(va, s), entries.insert(va, s), "{step}");
            } else {
                assert_eq!(ordered.remove(&va), entries.remove(&va), "{step}");
                if step % 64 == 0 {
                    for (k, v) in &ordered {
                        assert_eq!(entries.get(k), Some(v), "{step}: {k:#x}");
                    }
                }
            }
            assert_eq!(entries.len(), ordered.len(), "{step}");
            assert_eq!(entries.get(&va), ordered.get(&va), "{step}");
        }
        let listed: Vec<(u64, SwapSlot)> = ordered.iter().map(|(&v, &s)| (v, s)).collect();
        assert_eq!(entries.sorted(), listed);
        assert_eq!(entries.is_empty(), ordered.is_empty());
    }
}
