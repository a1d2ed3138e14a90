//! Where a walk-cache key is: [`SlotIndex`], a small open-addressed map from
//! (prefix, ASID) to the slot holding it.
//!
//! A depth cache of a few dozen entries (the PDE cache) is probed on every
//! TLB miss and filled on most walks of a miss-heavy run. A general hash map
//! costs more there than the cache itself: a fill removes one key and adds
//! another, each a probe of control bytes and a rehash on growth. This map
//! has a fixed power-of-two table at least twice the cache's size (so probe
//! runs stay short), linear probing, and deletion by shifting the run back
//! (no tombstones, so it never degrades). Derived state: the cache rebuilds
//! it from its slots, so it is never saved.

use crate::addr::Asid;

/// An empty bucket.
const NONE: u32 = u32::MAX;

/// A map from (prefix, ASID) to a slot number, for at most `capacity` keys.
#[derive(Clone, Debug)]
pub(super) struct SlotIndex {
    /// Per bucket: the key's prefix and ASID, and its slot ([`NONE`]: empty).
    prefixes: Vec<u64>,
    asids: Vec<Asid>,
    slots: Vec<u32>,
    /// Buckets - 1 (a power of two).
    mask: usize,
    /// 64 - log2(buckets): a hash's top bits pick the home bucket.
    shift: u32,
}

impl SlotIndex {
    /// An empty map for up to `capacity` keys.
    pub(super) fn new(capacity: usize) -> Self {
        let buckets = (2 * capacity).next_power_of_two().max(8);
        Self {
            prefixes: vec![0; buckets],
            asids: vec![Asid::default(); buckets],
            slots: vec![NONE; buckets],
            mask: buckets - 1,
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    /// The bucket a key's probe starts at (Fibonacci hashing).
    #[inline(always)]
    fn home(&self, prefix: u64, asid: Asid) -> usize {
        let h = (prefix ^ u64::from(asid.as_u16()).rotate_right(16))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// The slot holding (`prefix`, `asid`), if any.
    #[inline]
    pub(super) fn get(&self, prefix: u64, asid: Asid) -> Option<usize> {
        let mut b = self.home(prefix, asid);
        loop {
            let slot = self.slots[b];
            if slot == NONE {
                return None;
            }
            if self.prefixes[b] == prefix && self.asids[b] == asid {
                return Some(slot as usize);
            }
            b = (b + 1) & self.mask;
        }
    }

    /// Maps (`prefix`, `asid`) to `slot`; returns false (and changes
    /// nothing) if the key is already there.
    pub(super) fn insert(&mut self, prefix: u64, asid: Asid, slot: u32) -> bool {
        self.insert_in_line(prefix, asid, slot)
    }

    /// Unmaps (`prefix`, `asid`), if mapped.
    pub(super) fn remove(&mut self, prefix: u64, asid: Asid) {
        self.remove_in_line(prefix, asid);
    }

    /// [`SlotIndex::remove`] of (`old_prefix`, `old_asid`), then
    /// [`SlotIndex::insert`] of (`prefix`, `asid`) at `slot`: what a fill
    /// of a full cache does, as one call (a walk-heavy run makes one on
    /// most walks).
    #[inline]
    pub(super) fn replace(
        &mut self,
        old_prefix: u64,
        old_asid: Asid,
        prefix: u64,
        asid: Asid,
        slot: u32,
    ) {
        self.remove_in_line(old_prefix, old_asid);
        self.insert_in_line(prefix, asid, slot);
    }

    #[inline(always)]
    fn insert_in_line(&mut self, prefix: u64, asid: Asid, slot: u32) -> bool {
        debug_assert!(slot != NONE);
        let mut b = self.home(prefix, asid);
        loop {
            if self.slots[b] == NONE {
                break;
            }
            if self.prefixes[b] == prefix && self.asids[b] == asid {
                return false;
            }
            b = (b + 1) & self.mask;
        }
        self.prefixes[b] = prefix;
        self.asids[b] = asid;
        self.slots[b] = slot;
        true
    }

    #[inline(always)]
    fn remove_in_line(&mut self, prefix: u64, asid: Asid) {
        let mut b = self.home(prefix, asid);
        loop {
            if self.slots[b] == NONE {
                return;
            }
            if self.prefixes[b] == prefix && self.asids[b] == asid {
                break;
            }
            b = (b + 1) & self.mask;
        }
        // Shift the rest of the run back over the hole, so that every key
        // stays reachable from its home bucket without crossing an empty one.
        let mut hole = b;
        let mut next = b;
        loop {
            next = (next + 1) & self.mask;
            if self.slots[next] == NONE {
                break;
            }
            let home = self.home(self.prefixes[next], self.asids[next]);
            // The key at `next` may move to the hole unless its home lies
            // cyclically in (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.prefixes[hole] = self.prefixes[next];
                self.asids[hole] = self.asids[next];
                self.slots[hole] = self.slots[next];
                hole = next;
            }
        }
        self.slots[hole] = NONE;
    }

    /// Every (prefix, ASID, slot) mapped, in no particular order.
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(u64, Asid, u32)> {
        (0..self.slots.len())
            .filter(|&b| self.slots[b] != NONE)
            .map(|b| (self.prefixes[b], self.asids[b], self.slots[b]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    proptest::proptest! {
        /// The same answers as a standard map through any mix of inserts
        /// and removes (keys chosen to collide: few prefixes, small table).
        #[test]
        fn answers_as_a_hash_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..40, 0u16..3), 1..400),
        ) {
            let mut index = SlotIndex::new(16);
            let mut model: HashMap<(u64, u16), u32> = HashMap::new();
            for (k, (add, prefix, asid)) in ops.into_iter().enumerate() {
                let key = (prefix * 0x1_0000_0001, asid);
                let full = model.len() == 16;
                if add && full && !model.contains_key(&key) {
                    // A full map: replace some key (as a full cache's fill).
                    let (&old, _) = model.iter().min_by_key(|&(&(p, a), _)| (p ^ key.0, a)).expect("full");
                    index.replace(old.0, Asid::new(old.1), key.0, Asid::new(asid), k as u32);
                    model.remove(&old);
                    model.insert(key, k as u32);
                } else if add && !full {
                    let fresh = !model.contains_key(&key);
                    proptest::prop_assert_eq!(index.insert(key.0, Asid::new(asid), k as u32), fresh);
                    model.entry(key).or_insert(k as u32);
                } else {
                    index.remove(key.0, Asid::new(asid));
                    model.remove(&key);
                }
                for p in 0..40u64 {
                    for a in 0..3u16 {
                        let key = (p * 0x1_0000_0001, a);
                        proptest::prop_assert_eq!(
                            index.get(key.0, Asid::new(a)),
                            model.get(&key).map(|&s| s as usize)
                        );
                    }
                }
            }
            proptest::prop_assert_eq!(index.entries().len(), model.len());
        }
    }
}
