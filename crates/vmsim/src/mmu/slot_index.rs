//! Where a walk-cache key is: [`SlotIndex`], a small chained hash map from
//! (prefix, ASID) to the slot holding it.
//!
//! A depth cache of a few dozen entries (the PDE cache) is probed on every
//! TLB miss and filled on most walks of a miss-heavy run. A general hash map
//! costs more there than the cache itself: a fill removes one key and adds
//! another, each a probe of control bytes and a rehash on growth. This map
//! has a fixed power-of-two table of bucket heads at least twice the cache's
//! size (so chains stay short: half a key a bucket at most) and one chain
//! link per slot, since a slot holds one key: a removal unlinks the key
//! from its bucket's chain and an insertion pushes it on the front, with no
//! rehash of other keys (open addressing's back-shift deletion rehashed
//! every key of the run behind the hole, most of a walk-heavy run's fill).
//! Derived state: the cache rebuilds it from its slots, so it is never saved.

use crate::addr::Asid;

/// No slot: an empty bucket, or the end of a chain.
const NONE: u32 = u32::MAX;

/// A map from (prefix, ASID) to a slot number below `capacity`, each slot
/// holding at most one key.
#[derive(Clone, Debug)]
pub(super) struct SlotIndex {
    /// Per bucket: the first slot of its chain ([`NONE`]: empty).
    heads: Vec<u32>,
    /// Per slot: the next slot of its chain ([`NONE`]: the last).
    next: Vec<u32>,
    /// Per slot: the key it is mapped under (meaningful while it is linked).
    prefixes: Vec<u64>,
    asids: Vec<Asid>,
    /// 64 - log2(buckets): a hash's top bits pick the bucket.
    shift: u32,
}

impl SlotIndex {
    /// An empty map for slots `0..capacity`.
    pub(super) fn new(capacity: usize) -> Self {
        let buckets = (2 * capacity).next_power_of_two().max(8);
        Self {
            heads: vec![NONE; buckets],
            next: vec![NONE; capacity],
            prefixes: vec![0; capacity],
            asids: vec![Asid::default(); capacity],
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    /// The bucket of a key (Fibonacci hashing).
    #[inline(always)]
    fn home(&self, prefix: u64, asid: Asid) -> usize {
        let h = (prefix ^ u64::from(asid.as_u16()).rotate_right(16))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// The slot holding (`prefix`, `asid`), if any.
    #[inline]
    pub(super) fn get(&self, prefix: u64, asid: Asid) -> Option<usize> {
        let mut s = self.heads[self.home(prefix, asid)];
        while s != NONE {
            let i = s as usize;
            if self.prefixes[i] == prefix && self.asids[i] == asid {
                return Some(i);
            }
            s = self.next[i];
        }
        None
    }

    /// Maps (`prefix`, `asid`) to `slot` (below the capacity, and holding no
    /// key); returns false (and changes nothing) if the key is already there.
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
        debug_assert!((slot as usize) < self.next.len());
        let b = self.home(prefix, asid);
        let head = self.heads[b];
        let mut s = head;
        while s != NONE {
            let i = s as usize;
            if self.prefixes[i] == prefix && self.asids[i] == asid {
                return false;
            }
            s = self.next[i];
        }
        let i = slot as usize;
        self.prefixes[i] = prefix;
        self.asids[i] = asid;
        self.next[i] = head;
        self.heads[b] = slot;
        true
    }

    #[inline(always)]
    fn remove_in_line(&mut self, prefix: u64, asid: Asid) {
        let b = self.home(prefix, asid);
        let mut prev = NONE;
        let mut s = self.heads[b];
        while s != NONE {
            let i = s as usize;
            let after = self.next[i];
            if self.prefixes[i] == prefix && self.asids[i] == asid {
                if prev == NONE {
                    self.heads[b] = after;
                } else {
                    self.next[prev as usize] = after;
                }
                self.next[i] = NONE;
                return;
            }
            prev = s;
            s = after;
        }
    }

    /// Every (prefix, ASID, slot) mapped, in no particular order.
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(u64, Asid, u32)> {
        let mut out = Vec::new();
        for &head in &self.heads {
            let mut s = head;
            while s != NONE {
                let i = s as usize;
                out.push((self.prefixes[i], self.asids[i], s));
                s = self.next[i];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    proptest::proptest! {
        /// The same answers as a standard map through any mix of inserts
        /// and removes (keys chosen to collide: few prefixes, small table;
        /// each key in a slot of its own, as a cache's slots hold them).
        #[test]
        fn answers_as_a_hash_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..40, 0u16..3), 1..400),
        ) {
            let mut index = SlotIndex::new(16);
            let mut model: HashMap<(u64, u16), u32> = HashMap::new();
            for (add, prefix, asid) in ops {
                let key = (prefix * 0x1_0000_0001, asid);
                let full = model.len() == 16;
                if add && full && !model.contains_key(&key) {
                    // A full map: replace some key (as a full cache's fill).
                    let (&old, &slot) = model.iter().min_by_key(|&(&(p, a), _)| (p ^ key.0, a)).expect("full");
                    index.replace(old.0, Asid::new(old.1), key.0, Asid::new(asid), slot);
                    model.remove(&old);
                    model.insert(key, slot);
                } else if add && !full {
                    let fresh = !model.contains_key(&key);
                    let free = (0..16u32).find(|s| !model.values().any(|v| v == s)).expect("not full");
                    proptest::prop_assert_eq!(index.insert(key.0, Asid::new(asid), free), fresh);
                    model.entry(key).or_insert(free);
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
