//! The leaf cache's map from (space, page address) to what it remembers of
//! the page's leaf entry: an open-addressing table of its own.
//!
//! Why: a swap-heavy run looks the faulting page up here at every fault
//! (the page is in swap, so the cache's per-frame entry cannot answer),
//! and the general hash map's probe, out of line, cost about 58
//! instructions. Linear probing from a Fibonacci hash of the key, at most
//! three quarters full, removal never needed (the cache is only added to,
//! and emptied whole), so no tombstones and no shifting. Nothing is ever
//! listed from it: its order is never seen.

use std::fmt;

/// (space, page address) to `V`. A page address of `u64::MAX` (no page
/// starts there) marks an empty bucket; the map declines to remember
/// that key (`insert` does nothing, `get` finds nothing), which a cache
/// may do.
#[derive(Clone)]
pub(super) struct LeafMap<V> {
    /// 0 or a power of two; an empty bucket's `sid` and value are fillers,
    /// never read.
    buckets: Vec<Bucket<V>>,
    /// `64 - log2(buckets.len())`: the hash is the product's top bits.
    shift: u32,
    len: usize,
}

/// In this order (`repr(C)`), so that a value aligned to 4 bytes packs
/// behind the space id: the leaf cache's buckets are 32 bytes, aligned to
/// 32, one host cache line each (they were 56 at 8-byte alignment, often
/// two: a swap-heavy run's look-up of the faulting page missed the cache
/// about twice).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Bucket<V> {
    va: u64,
    sid: u32,
    value: V,
}

/// The page address of an empty bucket.
const EMPTY: u64 = u64::MAX;

/// The multiplier of Fibonacci hashing (2^64 over the golden ratio, odd).
const FIB: u64 = 0x9E37_79B9_7F4A_7C15;

/// Buckets of the first table.
const FIRST_BUCKETS: usize = 16;

impl<V> Default for LeafMap<V> {
    fn default() -> Self {
        Self {
            buckets: Vec::new(),
            shift: 0,
            len: 0,
        }
    }
}

impl<V> fmt::Debug for LeafMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafMap").field("len", &self.len).finish()
    }
}

impl<V: Copy> LeafMap<V> {
    /// The bucket where the search for (`sid`, `va`) starts (the table is
    /// not empty): the space mixed into the address, then multiplied.
    #[inline(always)]
    fn home(&self, sid: u32, va: u64) -> usize {
        let k = va ^ u64::from(sid).rotate_right(12);
        (k.wrapping_mul(FIB) >> self.shift) as usize
    }

    /// How many keys are remembered.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The value of (`sid`, `va`), if remembered.
    #[inline]
    pub(super) fn get(&self, sid: u32, va: u64) -> Option<&V> {
        if self.len == 0 || va == EMPTY {
            return None;
        }
        // The home bucket first, outside the loop: most look-ups end
        // there, and the loop's alignment padding is then not run.
        let i = self.home(sid, va);
        let b = &self.buckets[i];
        if b.va == va && b.sid == sid {
            return Some(&b.value);
        }
        if b.va == EMPTY {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut i = (i + 1) & mask;
        loop {
            let b = &self.buckets[i];
            if b.va == va && b.sid == sid {
                return Some(&b.value);
            }
            if b.va == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Remembers `value` for (`sid`, `va`) (replacing what was).
    #[inline]
    pub(super) fn insert(&mut self, sid: u32, va: u64, value: V) {
        if va == EMPTY {
            return;
        }
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow(sid, value);
        }
        let mask = self.buckets.len() - 1;
        let mut i = self.home(sid, va);
        loop {
            let b = &mut self.buckets[i];
            if b.va == va && b.sid == sid {
                b.value = value;
                return;
            }
            if b.va == EMPTY {
                *b = Bucket { va, sid, value };
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Twice the buckets (16 at first), every entry placed again; `sid`
    /// and `filler` fill the empty buckets (any will do).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, sid: u32, filler: V) {
        let n = (self.buckets.len() * 2).max(FIRST_BUCKETS);
        let empty = Bucket {
            va: EMPTY,
            sid,
            value: filler,
        };
        let old = std::mem::replace(&mut self.buckets, vec![empty; n]);
        self.shift = 64 - n.trailing_zeros();
        let mask = n - 1;
        for b in old {
            if b.va == EMPTY {
                continue;
            }
            let mut i = self.home(b.sid, b.va);
            while self.buckets[i].va != EMPTY {
                i = (i + 1) & mask;
            }
            self.buckets[i] = b;
        }
    }

    /// The size of a bucket (for the leaf cache's test of its layout).
    #[cfg(test)]
    pub(super) fn bucket_bytes(&self) -> usize {
        size_of::<Bucket<V>>()
    }

    /// Forgets everything (the buckets stay).
    pub(super) fn clear(&mut self) {
        for b in &mut self.buckets {
            b.va = EMPTY;
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The same inserts, look-ups and clears on the map and on a
    /// `HashMap`: the same answers and lengths, through growth from 16
    /// buckets to thousands, keys that differ only in the space or only in
    /// the address, and the declined key `u64::MAX`.
    #[test]
    fn answers_as_a_hash_map() {
        let mut model: HashMap<(u32, u64), u64> = HashMap::new();
        let mut map: LeafMap<u64> = LeafMap::default();
        let mut x = 7u64;
        for step in 0..50_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 16;
            let sid = (r % 3) as u32;
            let va = match (r >> 2) % 4 {
                0 => ((r >> 4) % 5000) << 12,
                1 => ((r >> 4) % 500) << 21,
                2 => [0, 1, EMPTY, EMPTY - 4095][(r >> 4) as usize % 4],
                _ => ((r >> 4) % 3000) * 4096 + (1 << 46),
            };
            if r.is_multiple_of(3) {
                if va != EMPTY {
                    model.insert((sid, va), step);
                }
                map.insert(sid, va, step);
            }
            if step % 20_000 == 19_999 {
                model.clear();
                map.clear();
            }
            assert_eq!(map.get(sid, va), model.get(&(sid, va)), "{step}");
            assert_eq!(map.len(), model.len(), "{step}");
            if step % 1000 == 0 {
                for (&(s, v), w) in &model {
                    assert_eq!(map.get(s, v), Some(w), "{step}: {s} {v:#x}");
                }
            }
        }
    }
}
