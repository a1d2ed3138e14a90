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

use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::swap::SwapSlot;

/// Page address to swap slot, for one address space.
#[derive(Clone, Default)]
pub struct SwapEntries {
    map: FxHashMap<u64, SwapSlot>,
}

impl SwapEntries {
    /// No entries.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot of the page at `va`, if it is in swap.
    #[inline]
    #[must_use]
    pub fn get(&self, va: &u64) -> Option<&SwapSlot> {
        self.map.get(va)
    }

    /// Whether the page at `va` is in swap.
    #[inline]
    #[must_use]
    pub fn contains_key(&self, va: &u64) -> bool {
        self.map.contains_key(va)
    }

    /// Records that the page at `va` is in `slot`; returns the slot it was
    /// recorded in before, if any.
    #[inline]
    pub fn insert(&mut self, va: u64, slot: SwapSlot) -> Option<SwapSlot> {
        self.map.insert(va, slot)
    }

    /// Forgets the entry of the page at `va`; returns its slot.
    #[inline]
    pub fn remove(&mut self, va: &u64) -> Option<SwapSlot> {
        self.map.remove(va)
    }

    /// How many pages are in swap.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no page is in swap.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entries by increasing address.
    #[must_use]
    pub fn sorted(&self) -> Vec<(u64, SwapSlot)> {
        let mut v: Vec<(u64, SwapSlot)> = self.map.iter().map(|(&va, &s)| (va, s)).collect();
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
        if pages <= self.map.len() as u64 {
            // No more pages in the range than entries: look each one up.
            (0..pages)
                .map(|i| first + i * page)
                .filter_map(|va| self.map.get(&va).map(|&s| (va, s)))
                .collect()
        } else {
            let mut v: Vec<(u64, SwapSlot)> = self
                .map
                .iter()
                .filter(|(va, _)| range.contains(va))
                .map(|(&va, &s)| (va, s))
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
        Ok(Self {
            map: ordered.into_iter().collect(),
        })
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
}
