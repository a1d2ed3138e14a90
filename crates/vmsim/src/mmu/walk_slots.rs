//! Where a walk-cache key is and how recently each slot was used, for a
//! depth cache of at most [`MAX_SLOTS`] slots: [`WalkSlots`].
//!
//! The PDE cache (32 slots in the presets) is searched on every walk and,
//! on a walk-heavy run, refilled on about half of them: a hashed search, a
//! move to the end of the recency list on a hit, and on a fill the least
//! recently used slot moved from its bucket to the new key's. With
//! [`super::slot_index::SlotIndex`] and a recency list of their own, each
//! in vectors of `u32` links, every step of those checked a bound (the
//! bucket's head, the slot's key, its chain link, the slot's and its
//! neighbours' recency links), and the key, the chain and the recency
//! links of one slot sat in three arrays. Here a slot's key, chain link,
//! bucket and recency neighbours are one record, and slots and buckets are
//! bytes indexing fixed arrays of 256: no index can be out of bounds, so
//! none is tested. A depth of more slots keeps the general index.
//!
//! Derived state, like the index it replaces: the cache rebuilds it from
//! its slots, so it is never saved.

use crate::addr::Asid;

/// The most slots a [`WalkSlots`] serves: the 256 buckets are then at least
/// twice the slots (chains of half a key at most on average), and slot
/// numbers stay below [`NIL`].
pub(super) const MAX_SLOTS: usize = 128;

/// No slot: an empty bucket, the end of a chain or of the recency list.
const NIL: u8 = u8::MAX;

/// The prefix of a slot holding no key (as the walk cache's own: a prefix
/// is an address shifted right by at least a page, so never all ones).
const NO_PREFIX: u64 = u64::MAX;

/// One slot's record.
#[derive(Clone, Copy, Debug)]
struct Rec {
    /// The key's prefix, [`NO_PREFIX`] while the slot is not linked.
    prefix: u64,
    /// The key's ASID.
    asid: Asid,
    /// The next slot of its bucket's chain ([`NIL`]: the last).
    chain: u8,
    /// The bucket it is linked in (meaningful while linked).
    bucket: u8,
    /// The slot used just before it ([`NIL`]: none).
    prev: u8,
    /// The slot used just after it ([`NIL`]: none).
    next: u8,
}

const EMPTY: Rec = Rec {
    prefix: NO_PREFIX,
    asid: Asid::new(0),
    chain: NIL,
    bucket: 0,
    prev: NIL,
    next: NIL,
};

/// For slots `0..n` (`n` at most [`MAX_SLOTS`]): the valid slots by key (a
/// chained hash of 256 buckets) and every slot in the order of (stamp,
/// slot number), as a doubly linked list. Every stamp the cache writes is
/// its clock, later than every stamp held, so a used slot moves to the end
/// and the first is the least recently used: the first of the smallest
/// stamps, which the cache's true LRU evicts.
///
/// One allocation ([`Table`]) behind one pointer: with the buckets' heads
/// and the records in two boxes and the list's ends beside them in the
/// depth cache, the PDE cache's fill (on 40% of the zipf-walks row's
/// walks) loaded each box's pointer up to three times (a byte written
/// through one might have been the other's pointer, as far as the
/// compiler knew).
#[derive(Clone, Debug)]
pub(super) struct WalkSlots(Box<Table>);

/// What [`WalkSlots`] holds.
#[derive(Clone, Debug)]
struct Table {
    /// Per slot (those from `n` unused).
    recs: [Rec; 256],
    /// Per bucket: the first slot of its chain ([`NIL`]: empty).
    heads: [u8; 256],
    /// The least recently used slot.
    first: u8,
    /// The most recently used slot.
    last: u8,
}

impl WalkSlots {
    /// No key linked; the slots in the order of their `stamps` (ties by
    /// slot number). `stamps` has at most [`MAX_SLOTS`] entries.
    pub(super) fn new(stamps: &[u64]) -> Self {
        debug_assert!(stamps.len() <= MAX_SLOTS);
        let n = stamps.len().min(MAX_SLOTS);
        let mut sorted: Vec<u8> = (0..n as u8).collect();
        sorted.sort_by_key(|&i| (stamps[usize::from(i)], i));
        let mut t = Box::new(Table {
            recs: [EMPTY; 256],
            heads: [NIL; 256],
            first: sorted.first().copied().unwrap_or(NIL),
            last: sorted.last().copied().unwrap_or(NIL),
        });
        for pair in sorted.windows(2) {
            t.recs[usize::from(pair[0])].next = pair[1];
            t.recs[usize::from(pair[1])].prev = pair[0];
        }
        Self(t)
    }

    /// The bucket of a key (Fibonacci hashing, the top byte).
    #[inline(always)]
    pub(super) fn bucket(prefix: u64, asid: Asid) -> u8 {
        let h = (prefix ^ u64::from(asid.as_u16()).rotate_right(16))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 56) as u8
    }

    /// The slot linked in `bucket` holding (`prefix`, `asid`).
    #[inline(always)]
    pub(super) fn find_in(&self, bucket: u8, prefix: u64, asid: Asid) -> Option<u8> {
        let mut s = self.0.heads[usize::from(bucket)];
        while s != NIL {
            let rec = &self.0.recs[usize::from(s)];
            if rec.prefix == prefix && rec.asid == asid {
                return Some(s);
            }
            s = rec.chain;
        }
        None
    }

    /// The slot holding (`prefix`, `asid`).
    #[inline(always)]
    pub(super) fn find(&self, prefix: u64, asid: Asid) -> Option<u8> {
        self.find_in(Self::bucket(prefix, asid), prefix, asid)
    }

    /// Whether `slot` holds (`prefix`, `asid`) (an unlinked slot holds
    /// nothing).
    #[inline(always)]
    pub(super) fn holds(&self, slot: u8, prefix: u64, asid: Asid) -> bool {
        let rec = &self.0.recs[usize::from(slot)];
        rec.prefix == prefix && rec.asid == asid
    }

    /// Links `slot` (not linked) in `bucket`, holding (`prefix`, `asid`).
    #[inline(always)]
    pub(super) fn link(&mut self, slot: u8, bucket: u8, prefix: u64, asid: Asid) {
        let t = &mut *self.0;
        let head = &mut t.heads[usize::from(bucket)];
        let rec = &mut t.recs[usize::from(slot)];
        rec.prefix = prefix;
        rec.asid = asid;
        rec.chain = *head;
        rec.bucket = bucket;
        *head = slot;
    }

    /// Unlinks `slot` (linked) from its bucket's chain; it then holds no key.
    #[inline(always)]
    pub(super) fn unlink(&mut self, slot: u8) {
        self.unchain(slot);
        self.0.recs[usize::from(slot)].prefix = NO_PREFIX;
    }

    /// [`WalkSlots::unlink`] but for the key, left in the record (for a
    /// [`WalkSlots::link`] that writes another at once).
    #[inline(always)]
    fn unchain(&mut self, slot: u8) {
        let Rec { chain, bucket, .. } = self.0.recs[usize::from(slot)];
        self.0.unchain(slot, bucket, chain);
    }

    /// The least recently used slot.
    #[inline(always)]
    pub(super) fn first(&self) -> u8 {
        self.0.first
    }

    /// The most recently used slot.
    #[inline(always)]
    pub(super) fn last(&self) -> u8 {
        self.0.last
    }

    /// Slot `slot` was used: it moves to the end of the recency list.
    #[inline(always)]
    pub(super) fn touch(&mut self, slot: u8) {
        // (The box's pointer read once: see `WalkSlots`.)
        let t = &mut *self.0;
        let last = t.last;
        if last == slot {
            return;
        }
        let Rec { prev, next, .. } = t.recs[usize::from(slot)];
        // Not the last, so it has a successor.
        if prev == NIL {
            t.first = next;
        } else {
            t.recs[usize::from(prev)].next = next;
        }
        t.recs[usize::from(next)].prev = prev;
        let rec = &mut t.recs[usize::from(slot)];
        rec.prev = last;
        rec.next = NIL;
        t.recs[usize::from(last)].next = slot;
        t.last = slot;
    }

    /// The least recently used slot, moved to the end of the recency list
    /// and from its bucket to `bucket`, now holding (`prefix`, `asid`): a
    /// full cache's fill of a key it does not hold (the slot is linked).
    /// Its record read once and written once, after the other slots'
    /// links (`touch`, `unchain` and `link` read and wrote it in turn).
    #[inline(always)]
    pub(super) fn replace_first(&mut self, bucket: u8, prefix: u64, asid: Asid) -> u8 {
        let t = &mut *self.0;
        let slot = t.first;
        let last = t.last;
        let old = t.recs[usize::from(slot)];
        let (prev, next) = if last == slot {
            (old.prev, old.next)
        } else {
            // Not the last, so it has a successor.
            t.first = old.next;
            t.recs[usize::from(old.next)].prev = NIL;
            t.recs[usize::from(last)].next = slot;
            t.last = slot;
            (last, NIL)
        };
        t.unchain(slot, old.bucket, old.chain);
        let head = &mut t.heads[usize::from(bucket)];
        t.recs[usize::from(slot)] = Rec {
            prefix,
            asid,
            chain: *head,
            bucket,
            prev,
            next,
        };
        *head = slot;
        slot
    }

    /// [`WalkSlots::touch`] of the first slot, returning it.
    #[inline(always)]
    pub(super) fn touch_first(&mut self) -> u8 {
        let slot = self.0.first;
        self.touch(slot);
        slot
    }

    /// Every linked slot with its bucket, in no particular order.
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for (b, &head) in self.0.heads.iter().enumerate() {
            let mut s = head;
            while s != NIL {
                out.push((b, u32::from(s)));
                s = self.0.recs[usize::from(s)].chain;
            }
        }
        out
    }

    /// The slots from the least recently used to the most.
    #[cfg(test)]
    pub(super) fn order(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = self.0.first;
        while s != NIL {
            out.push(s);
            s = self.0.recs[usize::from(s)].next;
        }
        out
    }
}

impl Table {
    /// Unlinks `slot` (linked in `bucket`, followed by `chain` there)
    /// from its bucket's chain, its record left as it is.
    #[inline(always)]
    fn unchain(&mut self, slot: u8, bucket: u8, chain: u8) {
        let head = &mut self.heads[usize::from(bucket)];
        if *head == slot {
            *head = chain;
            return;
        }
        // The slot is linked, so the chain reaches it.
        let mut s = *head;
        while s != NIL {
            let rec = &mut self.recs[usize::from(s)];
            if rec.chain == slot {
                rec.chain = chain;
                return;
            }
            s = rec.chain;
        }
        debug_assert!(false, "slot {slot} is not linked in bucket {bucket}");
    }
}
