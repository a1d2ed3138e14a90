//! Where a walk-cache key is: [`SlotIndex`], a small chained hash index
//! from (prefix, ASID) to the slot holding it.
//!
//! A depth cache of a few dozen entries (the PDE cache) is probed on every
//! TLB miss and filled on most walks of a miss-heavy run. A general hash map
//! costs more there than the cache itself: a fill removes one key and adds
//! another, each a probe of control bytes and a rehash on growth. This index
//! has a fixed power-of-two table of bucket heads at least twice the cache's
//! size (so chains stay short: half a key a bucket at most) and, per slot
//! (a slot holds one key), its chain link and its bucket. It keeps no keys:
//! the cache compares its own (`get` takes the test), so a fill of a full
//! cache unlinks the victim slot from the bucket it remembers (no key
//! compare, no hash) and pushes it on the front of its new key's bucket,
//! with no rehash of other keys (open addressing's back-shift deletion
//! rehashed every key of the run behind the hole, and a map of its own
//! copied the keys). Derived state: the cache rebuilds it from its slots, so
//! it is never saved.

use crate::addr::Asid;

/// No slot: an empty bucket, or the end of a chain.
const NONE: u32 = u32::MAX;

/// A slot's place in the index.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// The next slot of its chain ([`NONE`]: the last).
    next: u32,
    /// The bucket it is linked in (meaningful while linked).
    bucket: u32,
}

/// Which slots hold which (prefix, ASID) keys, for slots `0..capacity`,
/// each holding at most one key.
#[derive(Clone, Debug)]
pub(super) struct SlotIndex {
    /// Per bucket: the first slot of its chain ([`NONE`]: empty).
    heads: Vec<u32>,
    /// Per slot: its chain link and bucket, side by side so that a fill's
    /// unlink and link check one bound a slot, not one an array (a full
    /// PDE cache's fill, on half the walks of the zipf row, does both).
    links: Vec<Link>,
    /// 64 - log2(buckets): a hash's top bits pick the bucket.
    shift: u32,
}

impl SlotIndex {
    /// An empty index for slots `0..capacity`.
    pub(super) fn new(capacity: usize) -> Self {
        let buckets = (2 * capacity).next_power_of_two().max(8);
        Self {
            heads: vec![NONE; buckets],
            links: vec![
                Link {
                    next: NONE,
                    bucket: 0
                };
                capacity
            ],
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    /// The bucket of a key (Fibonacci hashing).
    #[inline(always)]
    pub(super) fn bucket(&self, prefix: u64, asid: Asid) -> usize {
        let h = (prefix ^ u64::from(asid.as_u16()).rotate_right(16))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// The first slot linked in `bucket` for which `is_key` holds (the
    /// caller's test that the slot holds the key it looks for).
    #[inline(always)]
    pub(super) fn find_in(&self, bucket: usize, is_key: impl Fn(usize) -> bool) -> Option<usize> {
        let mut s = self.heads[bucket];
        while s != NONE {
            let i = s as usize;
            if is_key(i) {
                return Some(i);
            }
            s = self.links[i].next;
        }
        None
    }

    /// Links `slot` (below the capacity, not linked) in `bucket`.
    #[inline(always)]
    pub(super) fn link(&mut self, slot: usize, bucket: usize) {
        self.links[slot] = Link {
            next: self.heads[bucket],
            bucket: bucket as u32,
        };
        self.heads[bucket] = slot as u32;
    }

    /// Unlinks `slot` (linked) from its bucket's chain.
    #[inline(always)]
    pub(super) fn unlink(&mut self, slot: usize) {
        let Link {
            next: after,
            bucket,
        } = self.links[slot];
        let bucket = bucket as usize;
        let mut s = self.heads[bucket];
        if s as usize == slot {
            self.heads[bucket] = after;
            return;
        }
        // The slot is linked, so the chain reaches it.
        while s != NONE {
            let link = &mut self.links[s as usize];
            if link.next as usize == slot {
                link.next = after;
                return;
            }
            s = link.next;
        }
        debug_assert!(false, "slot {slot} is not linked in bucket {bucket}");
    }

    /// Every linked slot with its bucket, in no particular order.
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for (b, &head) in self.heads.iter().enumerate() {
            let mut s = head;
            while s != NONE {
                out.push((b, s));
                s = self.links[s as usize].next;
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
        /// Keys kept in slots as a cache keeps them, found through the
        /// index: the same answers as a standard map through any mix of
        /// insertions, replacements (a full cache's fill) and removals
        /// (keys chosen to collide: few prefixes, a small table).
        #[test]
        fn answers_as_a_hash_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..40, 0u16..3), 1..400),
        ) {
            let mut index = SlotIndex::new(16);
            let mut keys: [Option<(u64, u16)>; 16] = [None; 16];
            let mut model: HashMap<(u64, u16), usize> = HashMap::new();
            let find = |index: &SlotIndex, keys: &[Option<(u64, u16)>; 16], key: (u64, u16)| {
                index.find_in(index.bucket(key.0, Asid::new(key.1)), |i| keys[i] == Some(key))
            };
            for (add, prefix, asid) in ops {
                let key = (prefix * 0x1_0000_0001, asid);
                let present = model.contains_key(&key);
                let free = keys.iter().position(Option::is_none);
                if add && !present {
                    // A free slot, else some key's (as a full cache's fill).
                    let slot = free.unwrap_or_else(|| (prefix as usize * 7 + usize::from(asid)) % 16);
                    if let Some(old) = keys[slot] {
                        index.unlink(slot);
                        model.remove(&old);
                    }
                    index.link(slot, index.bucket(key.0, Asid::new(key.1)));
                    keys[slot] = Some(key);
                    model.insert(key, slot);
                } else if !add && present {
                    let slot = model.remove(&key).expect("present");
                    index.unlink(slot);
                    keys[slot] = None;
                }
                for p in 0..40u64 {
                    for a in 0..3u16 {
                        let key = (p * 0x1_0000_0001, a);
                        proptest::prop_assert_eq!(find(&index, &keys, key), model.get(&key).copied());
                    }
                }
            }
            proptest::prop_assert_eq!(index.entries().len(), model.len());
        }
    }
}
