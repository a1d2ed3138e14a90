//! Page-walk caches (Intel's paging-structure caches, the PML4E/PDPTE/PDE
//! caches; the "PWC" of RISC-V cores): [`WalkCache`].
//!
//! A cache of depth `d` remembers, for an address space and the virtual
//! address bits that index the first `d` levels of the walk, the physical
//! address of the table at level `d + 1` and the rights the first `d`
//! entries granted. A walk that hits it starts there and reads `d` fewer
//! entries. Each depth is a small fully associative cache with true LRU.
//! The MMU asks for the deepest hit.
//!
//! Invalidation follows x86: `invlpg` flushes every paging-structure-cache
//! entry of the address space, whatever address it was for (Intel SDM vol. 3
//! 4.10.4.1), because an upper-level entry covers many pages.
//!
//! This module owns the cached entries and their counters. It never reads
//! memory: the MMU fills it from the entries its walker read.

use crate::addr::{Asid, PhysAddr, VirtAddr};
use serde::{Deserialize, Serialize};

use super::counters::{MAX_WALK_LEVELS, WalkCacheCounters};
use super::entry::Perms;
use super::slot_index::SlotIndex;
use super::tlb_config::{TlbConfigError, WalkCacheLevelConfig};
use super::walk_slots::{self, WalkSlots};

/// What a walk-cache hit gives the walker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkCacheHit {
    /// How many levels of the walk are skipped (the next table read is at
    /// level index `depth`, counting the root as 0).
    pub depth: usize,
    /// Physical address of the table to continue the walk in.
    pub table: PhysAddr,
    /// The rights granted by the skipped entries (x86 combines U/S, R/W and
    /// NX over every level).
    pub perms: Perms,
}

/// What [`WalkCache::lookup_split`] found: the hit and whether it was
/// the deepest cache's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Looked {
    /// A hit in the deepest configured cache (the presets' PDE cache).
    Deepest(WalkCacheHit),
    /// A hit in a shallower cache, the deeper ones missed.
    Shallower(WalkCacheHit),
    /// No cache holds the address.
    Missed,
}

/// One depth cache's answer to [`DepthCache::probe`].
enum Probe {
    /// The cache holds the address.
    Hit(WalkCacheHit),
    /// It does not: the lookup goes on to the next cache.
    Missed,
    /// A slot out of bounds (never: the index and the slots agree); the
    /// lookup ends as a miss, as the loop it replaces did.
    Stop,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    prefix: u64,
    table: PhysAddr,
    stamp: u64,
    asid: Asid,
    perms: Perms,
    valid: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "SavedDepthCache")]
struct DepthCache {
    depth: usize,
    /// The virtual address is shifted right by this to get the key: the lowest
    /// bit indexed by level `depth - 1` (0-based from the root).
    key_shift: u32,
    slots: Vec<Slot>,
    /// Per slot, its prefix and ASID, the prefix [`NO_PREFIX`] when it is
    /// invalid: the searches compare this dense array alone (the ASID
    /// beside the prefix, so a compare checks one bound, not the slots'
    /// too). Empty for a cache with [`DepthCache::short`], which keeps
    /// its keys there (the writes cost the zipf row's PDE fills, half a
    /// million, about four instructions each). Derived from the slots, so
    /// never saved.
    #[serde(skip)]
    keys: Vec<Key>,
    /// The slot that the last search of the keys ([`DepthCache::probe`]
    /// of a shallower cache, by the index or by comparing keys) found:
    /// the next probe compares its key first, and on a match takes it
    /// without the search (the presets' PDPTE cache, probed on each PDE
    /// miss, about half the zipf row's walks, hits one slot again and
    /// again). Always the first slot holding its key, if it holds one,
    /// as the search would find: it is set to what a search found (the
    /// first), and no later fill puts its key in another slot (a fill's
    /// key is in no slot: `fill` searches for it, `fill_missed` follows a
    /// lookup that missed it). 0 at first and on a restore (slot 0 is the
    /// first slot of any key it holds). Derived, never saved.
    #[serde(skip)]
    memo: u32,
    /// How many slots are invalid (their key is [`NO_PREFIX`]): a full
    /// cache skips the search for an empty slot. Derived, never saved.
    /// (A `u32`, as `first_free` beside it: the two take the 8 bytes a
    /// `usize` took.)
    #[serde(skip)]
    free: u32,
    /// Every slot below this one is valid: the search for the first empty
    /// slot starts here. A swap-heavy run's invalidations empty the walk
    /// caches again and again, and each fill of the PDE cache that
    /// follows searched its 32 keys from the first for an empty one
    /// (about 15 compares a fill, on 40% of the swap row's retries); the
    /// fills after an emptying take the slots in order, so from here the
    /// search is one compare. A fill of the first empty slot moves it past
    /// that slot, an invalidation back to the slot it empties. Derived,
    /// never saved.
    #[serde(skip)]
    first_free: u32,
    /// For a cache of at least [`INDEX_MIN_ENTRIES`] slots and more than
    /// [`walk_slots::MAX_SLOTS`] (smaller ones have `short`): the slot of
    /// every valid (prefix, ASID), so a lookup hashes once instead of
    /// comparing every key (most walks of a miss-heavy run miss the PDE
    /// cache, and a miss compared all of them). `None` for small caches,
    /// and for a restored cache whose slots repeat a key (which the fills
    /// never make): that one keeps comparing keys, and so finds the first
    /// slot, as before. Derived, never saved.
    #[serde(skip)]
    index: Option<Box<SlotIndex>>,
    /// For a cache of at least [`INDEX_MIN_ENTRIES`] slots without
    /// `short` (see [`searches`]): every slot in the order of (stamp, slot
    /// number), so the least recently used one
    /// is the first, without comparing every stamp on a fill. Derived,
    /// never saved. (`index` and `order` boxed: their `None`, tested by
    /// the probe of the presets' PDPTE cache on each PDE miss, is then a
    /// null pointer, not a vector's niche value, a 64-bit constant that
    /// the walk kept in a register of its own.)
    #[serde(skip)]
    order: Option<Box<Recency>>,
    /// For an indexed cache of at most [`walk_slots::MAX_SLOTS`] slots
    /// (the presets' PDE cache), `index` and `order` in one: every slot's
    /// key, chain and recency links in one record, with no bounds tests
    /// (`index` and `order` are then `None`). Derived, never saved.
    #[serde(skip)]
    short: Option<WalkSlots>,
    /// For an indexed cache: the bucket of the key its last
    /// [`WalkCache::lookup`] searched and missed. The walk's fills
    /// ([`WalkCache::fill_missed`]) follow the lookup of the same key, so
    /// the fill of a full cache links the slot there without hashing the
    /// key again (the PDE cache's fill, on 45% of the zipf row's walks:
    /// about five instructions a fill). Derived, never saved.
    /// (A `u32`, beside `key_shift`: a `usize` made the cache 8 bytes
    /// longer, and the lookup's step from one cache to the next an
    /// instruction longer on every walk.)
    #[serde(skip)]
    missed_bucket: u32,
}

/// The slots of a depth cache in increasing (stamp, slot number) order, as
/// a doubly linked list. Every stamp written is the walk caches' clock,
/// later than every stamp already held, so a touched slot moves to the
/// end and the order stays sorted; the first slot is then the one
/// [`DepthCache::oldest_scan`] picks (the first of the smallest stamps).
#[derive(Clone, Debug)]
struct Recency {
    /// Per slot: the slot before it and after it ([`NO_SLOT`]: none), side
    /// by side, so that a touch checks one bound a slot, not one an array.
    links: Vec<Neighbours>,
    first: u32,
    last: u32,
}

/// A slot's neighbours in [`Recency`].
#[derive(Clone, Copy, Debug)]
struct Neighbours {
    prev: u32,
    next: u32,
}

/// "No slot" in [`Recency`].
const NO_SLOT: u32 = u32::MAX;

impl Recency {
    /// The order of `stamps`: by stamp, ties by slot number.
    fn new(stamps: &[u64]) -> Self {
        let mut sorted: Vec<u32> = (0..stamps.len() as u32).collect();
        sorted.sort_by_key(|&i| (stamps[i as usize], i));
        let mut links = vec![
            Neighbours {
                prev: NO_SLOT,
                next: NO_SLOT
            };
            stamps.len()
        ];
        for pair in sorted.windows(2) {
            links[pair[0] as usize].next = pair[1];
            links[pair[1] as usize].prev = pair[0];
        }
        Self {
            links,
            first: sorted.first().copied().unwrap_or(NO_SLOT),
            last: sorted.last().copied().unwrap_or(NO_SLOT),
        }
    }

    /// Slot `i` took the newest stamp: it moves to the end. In line: a
    /// walk that hits the PDE cache makes one.
    #[inline(always)]
    fn touch(&mut self, i: usize) {
        let slot = i as u32;
        if self.last == slot {
            return;
        }
        let Neighbours { prev: p, next: n } = self.links[i];
        // Not the last, so it has a successor.
        if p == NO_SLOT {
            self.first = n;
        } else {
            self.links[p as usize].next = n;
        }
        self.links[n as usize].prev = p;
        self.links[i] = Neighbours {
            prev: self.last,
            next: NO_SLOT,
        };
        self.links[self.last as usize].next = slot;
        self.last = slot;
    }

    /// [`Recency::touch`] of the first slot (the least recently used, which
    /// a fill of a full cache takes), returning it: no test of where it is.
    #[inline(always)]
    fn touch_first(&mut self) -> usize {
        let first = self.first;
        let i = first as usize;
        if self.last != first {
            let n = self.links[i].next;
            self.first = n;
            self.links[n as usize].prev = NO_SLOT;
            self.links[i] = Neighbours {
                prev: self.last,
                next: NO_SLOT,
            };
            self.links[self.last as usize].next = first;
            self.last = first;
        }
        i
    }
}

/// Depth caches with at least this many slots find keys through a hash
/// index (see `DepthCache::index`); smaller ones compare every key, which
/// costs less than hashing.
const INDEX_MIN_ENTRIES: usize = 16;

/// The index of `slots` (every valid slot by its key), or `None` when
/// `indexed` is false or two valid slots hold the same key.
fn build_index(slots: &[Slot], indexed: bool) -> Option<Box<SlotIndex>> {
    if !indexed {
        return None;
    }
    let mut index = SlotIndex::new(slots.len());
    for (i, s) in slots.iter().enumerate() {
        if !s.valid {
            continue;
        }
        let bucket = index.bucket(s.prefix, s.asid);
        // Linked slots are valid: their prefixes are their keys.
        let held = |j: usize| slots[j].prefix == s.prefix && slots[j].asid == s.asid;
        if index.find_in(bucket, held).is_some() {
            return None;
        }
        index.link(i, bucket);
    }
    Some(Box::new(index))
}

/// The searches of a cache of `slots` (its derived `index`, `order` and
/// `short`): none below `index_min` slots; [`WalkSlots`] up to
/// `short_max` slots (at most [`walk_slots::MAX_SLOTS`]); above, a
/// [`SlotIndex`] and a [`Recency`]. A cache whose valid slots repeat a key
/// (which the fills never make; a forged checkpoint can) gets the recency
/// list alone, and so compares keys and finds the first slot.
fn searches(
    slots: &[Slot],
    index_min: usize,
    short_max: usize,
) -> (
    Option<Box<SlotIndex>>,
    Option<Box<Recency>>,
    Option<WalkSlots>,
) {
    let n = slots.len();
    if n < index_min {
        return (None, None, None);
    }
    let stamps: Vec<u64> = slots.iter().map(|s| s.stamp).collect();
    if n > short_max.min(walk_slots::MAX_SLOTS) {
        return (
            build_index(slots, true),
            Some(Box::new(Recency::new(&stamps))),
            None,
        );
    }
    let mut short = WalkSlots::new(&stamps);
    for (i, s) in slots.iter().enumerate() {
        if !s.valid {
            continue;
        }
        if short.find(s.prefix, s.asid).is_some() {
            return (None, Some(Box::new(Recency::new(&stamps))), None);
        }
        // (`i` is below `MAX_SLOTS`, so a byte.)
        short.link(
            i as u8,
            WalkSlots::bucket(s.prefix, s.asid),
            s.prefix,
            s.asid,
        );
    }
    (None, None, Some(short))
}

/// [`DepthCache::keys`] of `slots`: none for a cache with
/// [`WalkSlots`] (`short`).
fn keys_of(slots: &[Slot], short: bool) -> Vec<Key> {
    if short {
        Vec::new()
    } else {
        slots.iter().map(Slot::key).collect()
    }
}

/// A slot's key in [`DepthCache::keys`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    prefix: u64,
    asid: Asid,
}

/// The key of an invalid slot (see [`NO_PREFIX`]): no search's key equals it.
const NO_KEY: Key = Key {
    prefix: NO_PREFIX,
    asid: Asid::new(0),
};

impl Slot {
    /// Its key in [`DepthCache::keys`]: its prefix and ASID when valid,
    /// else [`NO_KEY`] (derived from the slots when a cache is restored).
    fn key(&self) -> Key {
        if self.valid {
            Key {
                prefix: self.prefix,
                asid: self.asid,
            }
        } else {
            NO_KEY
        }
    }
}

/// A [`DepthCache`] as checkpoints hold it: the fields it is saved with.
#[derive(Deserialize)]
struct SavedDepthCache {
    depth: usize,
    key_shift: u32,
    slots: Vec<Slot>,
}

impl From<SavedDepthCache> for DepthCache {
    fn from(saved: SavedDepthCache) -> Self {
        let free = saved.slots.iter().filter(|s| !s.valid).count() as u32;
        let first_free = saved
            .slots
            .iter()
            .position(|s| !s.valid)
            .unwrap_or(saved.slots.len()) as u32;
        let (index, order, short) =
            searches(&saved.slots, INDEX_MIN_ENTRIES, walk_slots::MAX_SLOTS);
        let keys = keys_of(&saved.slots, short.is_some());
        Self {
            depth: saved.depth,
            key_shift: saved.key_shift,
            slots: saved.slots,
            keys,
            memo: 0,
            free,
            first_free,
            index,
            order,
            short,
            missed_bucket: 0,
        }
    }
}

/// The key of an invalid slot (a prefix is `va >> key_shift` with a shift of
/// at least one page, so it never has every bit set).
const NO_PREFIX: u64 = u64::MAX;

impl DepthCache {
    /// One cache's part of [`WalkCache::lookup_split`]: its search for
    /// `va` in `asid`, and on a hit the clock advanced, the slot stamped
    /// and moved to the end of the recency list, the hit counted; on a
    /// miss of an indexed cache, the bucket kept for the fill that follows
    /// ([`WalkCache::fill_missed`]). `SHALLOW` (a cache after the deepest)
    /// compares the key of the slot the last search found first
    /// ([`DepthCache::memo`]): that one is not asked of the deepest cache,
    /// whose hashed search ([`WalkSlots`]) runs on every walk.
    #[inline(always)]
    fn probe<const SHALLOW: bool>(
        &mut self,
        clock: &mut u64,
        counters: &mut WalkCacheCounters,
        asid: Asid,
        va: VirtAddr,
    ) -> Probe {
        let cache = self;
        let prefix = va.as_u64() >> cache.key_shift;
        let key = Key { prefix, asid };
        // (A cache with `WalkSlots` keeps no keys: `get` misses.)
        if SHALLOW && cache.keys.get(cache.memo as usize) == Some(&key) {
            return cache.hit(cache.memo as usize, clock, counters);
        }
        if let Some(short) = &mut cache.short {
            // The hashed search, its bucket kept on a miss for the
            // fill that follows (`fill_missed`); a hit moves to the
            // end of the recency list here, with no second test of
            // which search the cache has.
            let bucket = WalkSlots::bucket(prefix, asid);
            if let Some(s) = short.find_in(bucket, prefix, asid) {
                short.touch(s);
                let next = *clock + 1;
                let Some(slot) = cache.slots.get_mut(usize::from(s)) else {
                    return Probe::Stop;
                };
                *clock = next;
                slot.stamp = next;
                // (`depth < MAX_WALK_LEVELS`, as below.)
                counters.hits_by_depth[cache.depth & (MAX_WALK_LEVELS - 1)] += 1;
                return Probe::Hit(WalkCacheHit {
                    depth: cache.depth,
                    table: slot.table,
                    perms: slot.perms,
                });
            }
            cache.missed_bucket = u32::from(bucket);
            return Probe::Missed;
        }
        // (Not `find`, whose test of `short` is done: the presets'
        // PDPTE cache, searched on half the zipf row's walks.)
        let found = if let Some(index) = &cache.index {
            // `find`'s hashed search, its bucket kept on a miss for
            // the fill that follows (`fill_missed`).
            let bucket = index.bucket(prefix, asid);
            let found = index.find_in(bucket, |i| cache.keys[i] == key);
            if found.is_none() {
                cache.missed_bucket = bucket as u32;
            }
            found
        } else {
            cache.keys.iter().position(|&k| k == key)
        };
        let Some(i) = found else {
            return Probe::Missed;
        };
        // (`i` is a slot, below the slots' count, a `u32`.)
        cache.memo = i as u32;
        cache.hit(i, clock, counters)
    }

    /// [`DepthCache::probe`]'s hit of slot `i` in a cache without
    /// [`WalkSlots`]: the clock advanced, the slot stamped and, with a
    /// recency list, moved to its end, the hit counted.
    #[inline(always)]
    fn hit(&mut self, i: usize, clock: &mut u64, counters: &mut WalkCacheCounters) -> Probe {
        *clock += 1;
        // The slot's stamp written and its table read through one
        // reference (one bound checked, where `stamp` and a
        // read of the slot checked it twice: the PDE cache's
        // lookup runs on every walk). A cache without a recency list
        // finds its victim by these stamps (`oldest_scan`): no dense
        // copy of them is written.
        let Some(slot) = self.slots.get_mut(i) else {
            return Probe::Stop;
        };
        slot.stamp = *clock;
        let hit = WalkCacheHit {
            depth: self.depth,
            table: slot.table,
            perms: slot.perms,
        };
        // (`reorder` but for its test of `short`.)
        if let Some(order) = &mut self.order {
            order.touch(i);
        }
        // (`depth < MAX_WALK_LEVELS`, checked when built and restored:
        // the mask drops the bounds test.)
        counters.hits_by_depth[self.depth & (MAX_WALK_LEVELS - 1)] += 1;
        Probe::Hit(hit)
    }

    /// The first slot holding `prefix` for `asid`.
    #[inline(always)]
    fn find(&self, prefix: u64, asid: Asid) -> Option<usize> {
        // (`prefix` is never `NO_PREFIX`, so no invalid slot's key matches.)
        if let Some(short) = &self.short {
            return short.find(prefix, asid).map(usize::from);
        }
        let key = Key { prefix, asid };
        if let Some(index) = &self.index {
            // Linked slots are valid, so their keys are their prefixes.
            let bucket = index.bucket(prefix, asid);
            return index.find_in(bucket, |i| self.keys[i] == key);
        }
        self.keys.iter().position(|&k| k == key)
    }

    /// Slot `i` now holds `slot` (its dense key beside it, if kept).
    #[inline(always)]
    fn put(&mut self, i: usize, slot: Slot) {
        if let Some(key) = self.keys.get_mut(i) {
            *key = Key {
                prefix: slot.prefix,
                asid: slot.asid,
            };
        }
        self.slots[i] = slot;
    }

    /// Slot `i` was used: it takes stamp `clock` (the newest).
    #[inline(always)]
    fn stamp(&mut self, i: usize, clock: u64) {
        self.slots[i].stamp = clock;
        self.reorder(i);
    }

    /// [`DepthCache::stamp`] but for the slot's own stamp, which the
    /// caller writes: the recency list's touch (a cache without one finds
    /// its victim by the slots' stamps).
    #[inline(always)]
    fn reorder(&mut self, i: usize) {
        if let Some(short) = &mut self.short {
            // (`i` is a slot, below `MAX_SLOTS`.)
            short.touch(i as u8);
        } else if let Some(order) = &mut self.order {
            order.touch(i);
        }
    }

    /// The least recently used slot, the first of the smallest stamps (the
    /// cache is full, so every slot is valid), which then takes stamp
    /// `clock`, as [`DepthCache::stamp`] gives it.
    #[inline(always)]
    fn stamp_oldest(&mut self, clock: u64) -> usize {
        debug_assert!(
            self.order
                .as_ref()
                .is_none_or(|order| order.first as usize == self.oldest_slot())
                && self
                    .short
                    .as_ref()
                    .is_none_or(|short| usize::from(short.first()) == self.oldest_slot()),
            "the recency list's head is not the first of the smallest stamps"
        );
        let i = if let Some(short) = &mut self.short {
            usize::from(short.touch_first())
        } else if let Some(order) = &mut self.order {
            order.touch_first()
        } else {
            let i = self.oldest_scan();
            self.stamp(i, clock);
            return i;
        };
        self.slots[i].stamp = clock;
        i
    }

    /// The first of the smallest of the slots' own stamps, which every
    /// cache keeps: [`DepthCache::oldest_scan`], and the checks of the
    /// recency lists.
    fn oldest_slot(&self) -> usize {
        let mut oldest = 0;
        let mut min = u64::MAX;
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.stamp < min {
                min = slot.stamp;
                oldest = i;
            }
        }
        oldest
    }

    /// The least recently used slot of a full cache (the first of the
    /// smallest stamps), by comparing every slot's stamp: a cache without
    /// a recency list (fewer than [`INDEX_MIN_ENTRIES`] slots: the
    /// presets' PML4E and PDPTE caches, whose fills are rare next to
    /// their hits, which write no second copy of the stamp for this).
    #[inline]
    fn oldest_scan(&self) -> usize {
        self.oldest_slot()
    }
}

/// The page-walk caches of one core, one per configured depth.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WalkCache {
    /// Deepest first, so the first hit is the best one.
    caches: Vec<DepthCache>,
    clock: u64,
    counters: WalkCacheCounters,
    /// Tests only: how many lookups [`WalkCache::lookup_again`] answered
    /// without `lookup`.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) again_taken: u64,
}

impl WalkCache {
    /// Builds empty caches for a walk whose levels index the virtual address
    /// from bit `index_shifts[i]` up (root first: x86-64 4-level is
    /// `[39, 30, 21, 12]`, RISC-V Sv39 `[30, 21, 12]`). Caches with 0 entries
    /// are left out.
    ///
    /// Errors if a depth does not leave at least one level to read (a depth
    /// equal to the level count would cache leaves: that is the TLB's job).
    pub fn new(
        config: &[WalkCacheLevelConfig],
        index_shifts: &[u32],
    ) -> Result<Self, TlbConfigError> {
        Self::build(
            config,
            index_shifts,
            INDEX_MIN_ENTRIES,
            walk_slots::MAX_SLOTS,
        )
    }

    /// [`WalkCache::new`], indexing the depths of at least `index_min`
    /// slots, with [`WalkSlots`] those of at most `short_max` (see
    /// [`searches`]).
    fn build(
        config: &[WalkCacheLevelConfig],
        index_shifts: &[u32],
        index_min: usize,
        short_max: usize,
    ) -> Result<Self, TlbConfigError> {
        let mut caches = Vec::new();
        for (i, level) in config.iter().enumerate() {
            let depth = level.depth as usize;
            if depth == 0 || depth >= index_shifts.len() || depth >= MAX_WALK_LEVELS {
                return Err(TlbConfigError::Field {
                    field: format!("walk_cache[{i}].depth"),
                    problem: format!(
                        "depth {depth}: this walk has {} levels, so a walk cache must skip 1 to {} of them",
                        index_shifts.len(),
                        index_shifts.len().saturating_sub(1)
                    ),
                });
            }
            if level.entries > 0 {
                let slots = vec![Slot::default(); level.entries as usize];
                let (index, order, short) = searches(&slots, index_min, short_max);
                let keys = keys_of(&slots, short.is_some());
                caches.push(DepthCache {
                    depth,
                    key_shift: index_shifts[depth - 1],
                    slots,
                    keys,
                    memo: 0,
                    free: level.entries,
                    first_free: 0,
                    index,
                    order,
                    short,
                    missed_bucket: 0,
                });
            }
        }
        caches.sort_by_key(|c| std::cmp::Reverse(c.depth));
        Ok(Self {
            caches,
            clock: 0,
            counters: WalkCacheCounters::default(),
            #[cfg(test)]
            again_taken: 0,
        })
    }

    /// Whether no cache is configured (the MMU then never probes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// The configured depths, deepest first.
    pub fn depths(&self) -> impl Iterator<Item = usize> + '_ {
        self.caches.iter().map(|c| c.depth)
    }

    /// The deepest cached table for `va` in `asid`, counting the probe.
    /// Always in line: the MMU's walk has two copies, and a plain
    /// `#[inline]` left it out of both (a call on every walk).
    #[inline(always)]
    pub fn lookup(&mut self, asid: Asid, va: VirtAddr) -> Option<WalkCacheHit> {
        match self.lookup_split(asid, va) {
            Looked::Deepest(hit) | Looked::Shallower(hit) => Some(hit),
            Looked::Missed => None,
        }
    }

    /// [`WalkCache::lookup`], saying whether the hit was the deepest
    /// cache's: the same answer, counts and state.
    ///
    /// Why: on a walk-heavy run the deepest cache's hit or miss (the PDE
    /// cache's, about half of the zipf-walks row's walks either way) is a
    /// branch no predictor can learn, and the MMU's tail walk
    /// (`Mmu::walk_tail`) tested the same outcome twice more (the hit's
    /// depth, then whether it had read the level above), each a branch
    /// of its own. With the outcome in the answer's variant, the walk
    /// goes on from the one branch of the search (the bucket empty or
    /// not) into a path of its own for each.
    #[inline(always)]
    pub(crate) fn lookup_split(&mut self, asid: Asid, va: VirtAddr) -> Looked {
        let Some((deepest, rest)) = self.caches.split_first_mut() else {
            return Looked::Missed;
        };
        self.counters.lookups += 1;
        match deepest.probe::<false>(&mut self.clock, &mut self.counters, asid, va) {
            Probe::Hit(hit) => return Looked::Deepest(hit),
            Probe::Missed => {
                for cache in rest {
                    match cache.probe::<true>(&mut self.clock, &mut self.counters, asid, va) {
                        Probe::Hit(hit) => return Looked::Shallower(hit),
                        Probe::Missed => {}
                        Probe::Stop => break,
                    }
                }
            }
            Probe::Stop => {}
        }
        self.counters.misses += 1;
        Looked::Missed
    }

    /// [`WalkCache::lookup`] of a key that may be the one the last lookup
    /// hit: the walk of the retry after a fault
    /// ([`crate::mmu::Mmu::translate_retry`]), whose faulting walk looked
    /// the same key up a moment before (the handler in between fills no
    /// walk cache, and a reclaim's invalidations empty them). Same answer,
    /// counts and state as `lookup`.
    ///
    /// The test needs no record of that walk: when the deepest cache has
    /// [`WalkSlots`] (its valid keys then differ) and its most recently
    /// used slot holds the key, `lookup` would hit that slot (the deepest cache is
    /// searched first), count the hit and stamp it, and its move to the end
    /// of the recency list would change nothing. Only that is done here: no
    /// hash, no bucket, no chain (about half of the lookup, on each of the
    /// swap row's retries). Otherwise, `lookup`.
    ///
    /// Always in line (in the retry's copy of the MMU's walk): with a
    /// plain `#[inline]` it was left out once that walk became the tail's
    /// (`Mmu::walk_tail`), a call with its saved registers and its answer
    /// through memory on each of the swap row's retries.
    #[inline(always)]
    pub(crate) fn lookup_again(&mut self, asid: Asid, va: VirtAddr) -> Option<WalkCacheHit> {
        if let Some(cache) = self.caches.first_mut()
            && let Some(short) = &cache.short
        {
            let last = short.last();
            // (An unlinked slot holds no key.)
            if short.holds(last, va.as_u64() >> cache.key_shift, asid)
                && let Some(slot) = cache.slots.get_mut(usize::from(last))
            {
                #[cfg(test)]
                {
                    self.again_taken += 1;
                }
                self.counters.lookups += 1;
                self.clock += 1;
                slot.stamp = self.clock;
                // (`depth < MAX_WALK_LEVELS`, checked when built and restored:
                // the mask drops the bounds test.)
                self.counters.hits_by_depth[cache.depth & (MAX_WALK_LEVELS - 1)] += 1;
                return Some(WalkCacheHit {
                    depth: cache.depth,
                    table: slot.table,
                    perms: slot.perms,
                });
            }
        }
        self.lookup(asid, va)
    }

    /// Remembers that, for `va` in `asid`, the table after the first `depth`
    /// levels is at `table`, reached with rights `perms`. Ignored when no
    /// cache of that depth is configured.
    pub fn fill(&mut self, asid: Asid, va: VirtAddr, depth: usize, table: PhysAddr, perms: Perms) {
        self.fill_at(asid, va, depth, table, perms, true);
    }

    /// [`WalkCache::fill`] right after [`WalkCache::lookup`] of the same
    /// `asid` and `va` found nothing at `depth` (it hit a shallower depth or
    /// none) with no change to the caches since (but fills of other
    /// depths): the key is known to be absent, so the search for it is
    /// skipped, and a full indexed cache links the slot in the bucket the
    /// lookup worked out. Same result as `fill`.
    #[inline]
    pub fn fill_missed(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        depth: usize,
        table: PhysAddr,
        perms: Perms,
    ) {
        debug_assert!(
            self.caches
                .iter()
                .filter(|c| c.depth == depth)
                .all(|c| c.find(va.as_u64() >> c.key_shift, asid).is_none()),
            "fill_missed of a cached key"
        );
        self.fill_at(asid, va, depth, table, perms, false);
    }

    /// [`WalkCache::fill_missed`] for the MMU's tail walk
    /// (`Mmu::walk_tail`), which fills the deepest cache after its lookup
    /// missed there: the fill of a cache with [`WalkSlots`] (the presets'
    /// PDE cache: on 40% of the zipf-walks row's walks, where it is full,
    /// and on the swap row's, where it is often not) in line, everything
    /// else out of line in `fill_at`. Same result as `fill_missed`: that
    /// fill's arms for such a cache, without the other arms and the tests
    /// that choose between them, whose registers the walk spilled around
    /// the whole fill.
    #[inline(always)]
    pub(crate) fn fill_missed_deepest(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        depth: usize,
        table: PhysAddr,
        perms: Perms,
    ) {
        if let Some(cache) = self.caches.first_mut()
            && cache.depth == depth
            && let Some(short) = &mut cache.short
        {
            let prefix = va.as_u64() >> cache.key_shift;
            debug_assert!(
                short.find(prefix, asid).is_none(),
                "fill_missed of a cached key"
            );
            debug_assert_eq!(
                cache.missed_bucket,
                u32::from(WalkSlots::bucket(prefix, asid)),
                "fill_missed without the lookup of its key"
            );
            let bucket = cache.missed_bucket as u8;
            let slot = if cache.free == 0 {
                short.replace_first(bucket, prefix, asid)
            } else {
                // The first empty slot, as `fill_at` takes it (every slot
                // below `first_free` is valid): most fills of a swap-heavy
                // run, whose invalidations empty the caches again and
                // again.
                let from = cache.first_free as usize;
                let Some(empty) = cache
                    .slots
                    .get(from..)
                    .and_then(|slots| slots.iter().position(|s| !s.valid))
                    .map(|j| from + j)
                else {
                    return self.fill_missed_cold(asid, va, depth, table, perms);
                };
                cache.free -= 1;
                cache.first_free = empty as u32 + 1;
                // (`empty` is a slot, below `MAX_SLOTS`; an empty slot is
                // in no bucket.)
                short.touch(empty as u8);
                short.link(empty as u8, bucket, prefix, asid);
                empty as u8
            };
            self.clock += 1;
            // (A cache with `WalkSlots` keeps no dense keys: see `put`.)
            debug_assert!(cache.keys.is_empty());
            if let Some(s) = cache.slots.get_mut(usize::from(slot)) {
                *s = Slot {
                    prefix,
                    table,
                    stamp: self.clock,
                    asid,
                    perms,
                    valid: true,
                };
            }
            self.counters.fills += 1;
            return;
        }
        self.fill_missed_cold(asid, va, depth, table, perms);
    }

    /// [`WalkCache::fill_missed`] out of line: the rest of
    /// [`WalkCache::fill_missed_deepest`].
    #[cold]
    #[inline(never)]
    fn fill_missed_cold(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        depth: usize,
        table: PhysAddr,
        perms: Perms,
    ) {
        self.fill_missed(asid, va, depth, table, perms);
    }

    /// In line (in `fill_missed`, which the walk calls on most walks of a
    /// walk-heavy run): the call cost a tenth of the fill.
    #[inline(always)]
    fn fill_at(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        depth: usize,
        table: PhysAddr,
        perms: Perms,
        search: bool,
    ) {
        // The deepest cache first, without the search (the walk's fills
        // are deeper than its hit, so most are the deepest's: the zipf
        // row's PDE cache).
        let at = if self.caches.first().is_some_and(|c| c.depth == depth) {
            0
        } else {
            match self.caches.iter().position(|c| c.depth == depth) {
                Some(at) => at,
                None => return,
            }
        };
        let Some(cache) = self.caches.get_mut(at) else {
            return;
        };
        self.clock += 1;
        let prefix = va.as_u64() >> cache.key_shift;
        let filled = Slot {
            prefix,
            table,
            stamp: self.clock,
            asid,
            perms,
            valid: true,
        };
        if !search
            && cache.free == 0
            && let Some(short) = &mut cache.short
        {
            // As below, in one record a slot (`WalkSlots::replace_first`).
            debug_assert_eq!(
                cache.missed_bucket,
                u32::from(WalkSlots::bucket(prefix, asid)),
                "fill_missed without the lookup of its key"
            );
            let slot = short.replace_first(cache.missed_bucket as u8, prefix, asid);
            // `put` but for its dense key, which a cache with `WalkSlots`
            // does not keep (its test cost the PDE cache's fills, half the
            // zipf-walks row's walks, about three instructions each).
            debug_assert!(cache.keys.is_empty());
            if let Some(s) = cache.slots.get_mut(usize::from(slot)) {
                *s = filled;
            }
            self.counters.fills += 1;
            return;
        }
        if !search
            && cache.free == 0
            && let (Some(order), Some(index)) = (&mut cache.order, &mut cache.index)
        {
            // A full indexed cache (the PDE cache after the first few
            // dozen walks), the key known absent: the least recently used
            // slot takes it. The slot is valid and holds another key (this
            // one is in no slot), so it moves from its bucket to the key's
            // without the general path's tests of both (about a tenth of
            // the fill).
            debug_assert_eq!(
                cache.missed_bucket as usize,
                index.bucket(prefix, asid),
                "fill_missed without the lookup of its key"
            );
            let slot = order.touch_first();
            index.unlink(slot);
            index.link(slot, cache.missed_bucket as usize);
            cache.put(slot, filled);
            self.counters.fills += 1;
            return;
        }
        let found = if search {
            cache.find(prefix, asid)
        } else {
            None
        };
        let slot = match found {
            Some(hit) => {
                cache.stamp(hit, self.clock);
                hit
            }
            None => {
                // The first empty slot, else true LRU: the oldest stamp.
                // (Every slot below `first_free` is valid.)
                let empty = if cache.free > 0 {
                    let from = cache.first_free as usize;
                    cache
                        .slots
                        .get(from..)
                        .and_then(|slots| slots.iter().position(|s| !s.valid))
                        .map(|j| from + j)
                } else {
                    None
                };
                debug_assert_eq!(
                    empty,
                    (cache.free > 0)
                        .then(|| cache.slots.iter().position(|s| !s.valid))
                        .flatten(),
                    "a valid slot below first_free"
                );
                match empty {
                    Some(empty) => {
                        cache.free -= 1;
                        cache.first_free = empty as u32 + 1;
                        cache.stamp(empty, self.clock);
                        empty
                    }
                    None => cache.stamp_oldest(self.clock),
                }
            }
        };
        if let Some(short) = &mut cache.short {
            // As `index` below. (`slot` is below `MAX_SLOTS`.)
            let old = &cache.slots[slot];
            let bucket = if search || old.valid {
                WalkSlots::bucket(prefix, asid)
            } else {
                cache.missed_bucket as u8
            };
            if !old.valid {
                short.link(slot as u8, bucket, prefix, asid);
            } else if (old.prefix, old.asid) != (prefix, asid) {
                short.unlink(slot as u8);
                short.link(slot as u8, bucket, prefix, asid);
            }
        } else if let Some(index) = &mut cache.index {
            // The key is in no other slot (the search found none, or
            // `fill_missed`'s caller knows it is absent): the slot alone
            // moves to the key's bucket, from the one it was linked in.
            let old = &cache.slots[slot];
            if !old.valid {
                // `fill_missed`: the bucket the lookup kept (the key's),
                // as the fill of a full cache above.
                let bucket = if search {
                    index.bucket(prefix, asid)
                } else {
                    debug_assert_eq!(
                        cache.missed_bucket as usize,
                        index.bucket(prefix, asid),
                        "fill_missed without the lookup of its key"
                    );
                    cache.missed_bucket as usize
                };
                index.link(slot, bucket);
            } else if (old.prefix, old.asid) != (prefix, asid) {
                index.unlink(slot);
                index.link(slot, index.bucket(prefix, asid));
            }
        }
        cache.put(slot, filled);
        self.counters.fills += 1;
    }

    fn retain(&mut self, keep: impl Fn(&Slot) -> bool) {
        for cache in &mut self.caches {
            if cache.free as usize == cache.slots.len() {
                continue;
            }
            for (i, slot) in cache.slots.iter_mut().enumerate() {
                if slot.valid && !keep(slot) {
                    slot.valid = false;
                    if let Some(key) = cache.keys.get_mut(i) {
                        *key = NO_KEY;
                    }
                    if let Some(index) = &mut cache.index {
                        index.unlink(i);
                    }
                    if let Some(short) = &mut cache.short {
                        // (`i` is below `MAX_SLOTS`.)
                        short.unlink(i as u8);
                    }
                    cache.free += 1;
                    cache.first_free = cache.first_free.min(i as u32);
                    self.counters.entries_removed += 1;
                }
            }
        }
    }

    /// Removes every entry of `asid` (x86 `invlpg` and `invpcid` single-context).
    pub fn invalidate_asid(&mut self, asid: Asid) {
        self.retain(|s| s.asid != asid);
    }

    /// Removes everything.
    pub fn invalidate_all(&mut self) {
        self.retain(|_| false);
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &WalkCacheCounters {
        &self.counters
    }

    /// Zeroes the counters (the cached entries stay).
    pub fn reset_counters(&mut self) {
        self.counters = WalkCacheCounters::default();
    }

    /// How many valid entries each depth holds, deepest first (for inspection).
    #[must_use]
    pub fn occupancy(&self) -> Vec<(usize, usize)> {
        self.caches
            .iter()
            .map(|c| (c.depth, c.slots.iter().filter(|s| s.valid).count()))
            .collect()
    }
}

impl WalkCache {
    /// Checks walk caches read back from a checkpoint against the empty
    /// ones `fresh` the configuration builds: the same depths, key shifts
    /// and sizes; every valid entry's table an aligned table inside memory,
    /// its prefix an address of the 64-bit space and its ASID in range;
    /// stamps not after the clock. `is_table(pa)` says whether the kernel
    /// holds a page table at `pa` (a walk continued in any other frame would
    /// read data as page-table entries).
    pub(crate) fn check_restored(
        &self,
        fresh: &Self,
        limits: &super::RestoreLimits<'_>,
    ) -> Result<(), String> {
        if self.caches.len() != fresh.caches.len()
            || self.caches.iter().zip(&fresh.caches).any(|(c, f)| {
                c.depth != f.depth || c.key_shift != f.key_shift || c.slots.len() != f.slots.len()
            })
        {
            return Err(format!(
                "depths and sizes are not the configuration's ({:?})",
                fresh
                    .occupancy()
                    .iter()
                    .map(|&(d, _)| d)
                    .collect::<Vec<_>>()
            ));
        }
        for cache in &self.caches {
            for (i, s) in cache.slots.iter().enumerate() {
                let bad = |what: String| Err(format!("depth {} entry {i}: {what}", cache.depth));
                if s.stamp > self.clock {
                    return bad(format!(
                        "stamp {} is after the clock {}",
                        s.stamp, self.clock
                    ));
                }
                if !s.valid {
                    continue;
                }
                let table = s.table.as_u64();
                let aligned = limits.table_align.max(1);
                if !table.is_multiple_of(aligned)
                    || table
                        .checked_add(aligned)
                        .is_none_or(|e| e > limits.mem_bytes)
                {
                    return bad(format!(
                        "table {table:#x} is not a frame inside the {} bytes of memory",
                        limits.mem_bytes
                    ));
                }
                if !(limits.is_table)(s.table) {
                    return bad(format!("table {table:#x} is not a page-table frame"));
                }
                if cache.key_shift > 0
                    && cache.key_shift < 64
                    && s.prefix >> (64 - cache.key_shift) != 0
                {
                    return bad(format!("prefix {:#x} is not a 64-bit address", s.prefix));
                }
                if u32::from(s.asid.as_u16()) >= limits.asids {
                    return bad(format!(
                        "ASID {} is out of range (the kernel has {})",
                        s.asid.as_u16(),
                        limits.asids
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Raw access for tests that forge restored states.
#[cfg(test)]
impl WalkCache {
    /// Per depth (deepest first), its slots' prefix, table, stamp, ASID, valid.
    pub(crate) fn forge_slots(
        &mut self,
    ) -> Vec<(&mut u64, &mut PhysAddr, &mut u64, &mut Asid, &mut bool)> {
        self.caches
            .iter_mut()
            .flat_map(|c| c.slots.iter_mut())
            .map(|s| {
                (
                    &mut s.prefix,
                    &mut s.table,
                    &mut s.stamp,
                    &mut s.asid,
                    &mut s.valid,
                )
            })
            .collect()
    }
    pub(crate) fn forge_depths(&mut self) -> Vec<&mut usize> {
        self.caches.iter_mut().map(|c| &mut c.depth).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: [u32; 4] = [39, 30, 21, 12];

    fn pa(raw: u64) -> PhysAddr {
        PhysAddr::new(raw).expect("fits")
    }

    fn cache(entries: &[(u32, u32)]) -> WalkCache {
        let config: Vec<_> = entries
            .iter()
            .map(|&(depth, entries)| WalkCacheLevelConfig { depth, entries })
            .collect();
        WalkCache::new(&config, &X86_64).expect("valid")
    }

    #[test]
    fn deepest_hit_wins_and_prefix_bounds_are_respected() {
        let mut wc = cache(&[(1, 2), (3, 4)]);
        let a = Asid::new(1);
        let va = VirtAddr::new(0x7f12_3456_7000);
        assert_eq!(wc.lookup(a, va), None);
        wc.fill(a, va, 1, pa(0x1000), Perms::all());
        wc.fill(a, va, 3, pa(0x3000), Perms::READ);
        let hit = wc.lookup(a, va).expect("hit");
        assert_eq!(
            (hit.depth, hit.table, hit.perms),
            (3, pa(0x3000), Perms::READ)
        );
        // Same 2 MiB region: PDE cache hit. Another 2 MiB region of the same
        // 512 GiB: only the PML4E cache.
        assert_eq!(
            wc.lookup(a, va.wrapping_add(0x1000)).map(|h| h.depth),
            Some(3)
        );
        assert_eq!(
            wc.lookup(a, va.wrapping_add(0x20_0000)).map(|h| h.depth),
            Some(1)
        );
        // Another address space: nothing.
        assert_eq!(wc.lookup(Asid::new(2), va), None);
        let c = wc.counters();
        assert_eq!(
            (c.lookups, c.misses, c.hits_by_depth[3], c.hits_by_depth[1]),
            (5, 2, 2, 1)
        );
    }

    #[test]
    fn lru_within_a_depth() {
        let mut wc = cache(&[(3, 2)]);
        let a = Asid::new(0);
        let region = |i: u64| VirtAddr::new(i << 21);
        wc.fill(a, region(0), 3, pa(0x1000), Perms::all());
        wc.fill(a, region(1), 3, pa(0x2000), Perms::all());
        assert!(wc.lookup(a, region(0)).is_some()); // 1 is now LRU
        wc.fill(a, region(2), 3, pa(0x3000), Perms::all());
        assert!(wc.lookup(a, region(1)).is_none());
        assert!(wc.lookup(a, region(0)).is_some());
        assert!(wc.lookup(a, region(2)).is_some());
    }

    #[test]
    fn invalidation_by_asid_and_all() {
        let mut wc = cache(&[(2, 4)]);
        let va = VirtAddr::new(0x4000_0000);
        wc.fill(Asid::new(1), va, 2, pa(0x1000), Perms::all());
        wc.fill(Asid::new(2), va, 2, pa(0x2000), Perms::all());
        wc.invalidate_asid(Asid::new(1));
        assert!(wc.lookup(Asid::new(1), va).is_none());
        assert!(wc.lookup(Asid::new(2), va).is_some());
        wc.invalidate_all();
        assert!(wc.lookup(Asid::new(2), va).is_none());
        assert_eq!(wc.counters().entries_removed, 2);
    }

    #[test]
    fn a_restored_cache_finds_what_the_saved_one_holds() {
        let mut wc = cache(&[(1, 2), (3, 4)]);
        for i in 0..6u64 {
            wc.fill(
                Asid::new(1),
                VirtAddr::new(i << 21),
                3,
                pa(0x1000 * (i + 1)),
                Perms::all(),
            );
        }
        wc.invalidate_asid(Asid::new(2));
        let bytes = postcard::to_allocvec(&wc).expect("serialises");
        let mut restored: WalkCache = postcard::from_bytes(&bytes).expect("deserialises");
        for c in &restored.caches {
            // (Worked out here, not by `Slot::key`, which the restore uses.)
            let want: Vec<Key> = c
                .slots
                .iter()
                .map(|s| match s.valid {
                    true => Key {
                        prefix: s.prefix,
                        asid: s.asid,
                    },
                    false => NO_KEY,
                })
                .collect();
            if c.short.is_some() {
                assert!(c.keys.is_empty(), "keys kept by WalkSlots alone");
            } else {
                assert_eq!(c.keys, want, "keys rebuilt from the slots");
            }
            assert_eq!(c.memo, 0, "the memo starts at slot 0");
            assert_eq!(c.free as usize, c.slots.iter().filter(|s| !s.valid).count());
            assert!(c.index.is_none());
            assert_eq!(c.short.is_some(), c.slots.len() >= INDEX_MIN_ENTRIES);
        }
        for i in 0..8u64 {
            let va = VirtAddr::new(i << 21);
            assert_eq!(
                restored.lookup(Asid::new(1), va),
                wc.lookup(Asid::new(1), va)
            );
        }
    }

    /// The walk cache as first written, the plainest way: per depth a list
    /// of slots searched in order for the key, the first invalid slot
    /// filled, else the one with the smallest stamp.
    struct Model {
        /// Deepest first: (depth, key shift, slots).
        caches: Vec<(usize, u32, Vec<ModelSlot>)>,
        clock: u64,
    }

    /// A model slot: prefix, ASID, table, stamp, valid.
    type ModelSlot = (u64, Asid, PhysAddr, u64, bool);

    /// Per depth, each slot's (prefix, ASID, table, stamp) when valid.
    type SlotsView = Vec<Vec<Option<(u64, Asid, PhysAddr, u64)>>>;

    impl Model {
        /// An empty model of `wc`'s depths and sizes.
        fn of(wc: &WalkCache) -> Model {
            Model {
                caches: wc
                    .caches
                    .iter()
                    .map(|c| {
                        let empty = (0, Asid::new(0), pa(0), 0, false);
                        (c.depth, c.key_shift, vec![empty; c.slots.len()])
                    })
                    .collect(),
                clock: 0,
            }
        }

        /// Whether depth `depth` holds (`va`'s prefix, `asid`).
        fn holds(&self, asid: Asid, va: VirtAddr, depth: usize) -> bool {
            self.caches
                .iter()
                .filter(|c| c.0 == depth)
                .any(|(_, shift, slots)| {
                    slots
                        .iter()
                        .any(|s| s.4 && s.0 == va.as_u64() >> *shift && s.1 == asid)
                })
        }

        fn lookup(&mut self, asid: Asid, va: VirtAddr) -> Option<(usize, PhysAddr)> {
            for (depth, shift, slots) in &mut self.caches {
                let prefix = va.as_u64() >> *shift;
                if let Some(s) = slots
                    .iter_mut()
                    .find(|s| s.4 && s.0 == prefix && s.1 == asid)
                {
                    self.clock += 1;
                    s.3 = self.clock;
                    return Some((*depth, s.2));
                }
            }
            None
        }

        fn fill(&mut self, asid: Asid, va: VirtAddr, depth: usize, table: PhysAddr) {
            let Some((_, shift, slots)) = self.caches.iter_mut().find(|c| c.0 == depth) else {
                return;
            };
            self.clock += 1;
            let prefix = va.as_u64() >> *shift;
            let i = slots
                .iter()
                .position(|s| s.4 && s.0 == prefix && s.1 == asid)
                .or_else(|| slots.iter().position(|s| !s.4))
                .unwrap_or_else(|| {
                    let mut oldest = 0;
                    for (i, s) in slots.iter().enumerate() {
                        if s.3 < slots[oldest].3 {
                            oldest = i;
                        }
                    }
                    oldest
                });
            slots[i] = (prefix, asid, table, self.clock, true);
        }

        /// Per depth, each slot's (prefix, ASID, table, stamp) when valid.
        fn slots(&self) -> SlotsView {
            self.caches
                .iter()
                .map(|(_, _, slots)| {
                    slots
                        .iter()
                        .map(|s| s.4.then_some((s.0, s.1, s.2, s.3)))
                        .collect()
                })
                .collect()
        }

        fn invalidate(&mut self, asid: Option<Asid>) {
            for (_, _, slots) in &mut self.caches {
                for s in slots.iter_mut() {
                    if asid.is_none_or(|a| s.1 == a) {
                        s.4 = false;
                    }
                }
            }
        }
    }

    /// [`Model::slots`] of `wc`.
    fn slots_of(wc: &WalkCache) -> SlotsView {
        wc.caches
            .iter()
            .map(|c| {
                c.slots
                    .iter()
                    .map(|s| s.valid.then_some((s.prefix, s.asid, s.table, s.stamp)))
                    .collect()
            })
            .collect()
    }

    /// The same fill made in `wc` and in `model`: when `missed`, as the
    /// walk makes it, after a lookup of the key in both (compared), by
    /// `fill_missed` or `fill_missed_deepest` when that lookup hit
    /// shallower than `depth` or nowhere (their contract: the lookup
    /// searched `depth` and missed), else by `fill`.
    fn fill_both(
        wc: &mut WalkCache,
        model: &mut Model,
        asid: Asid,
        va: VirtAddr,
        depth: usize,
        table: PhysAddr,
        missed: bool,
    ) {
        let mut passed = false;
        if missed {
            let got = wc.lookup(asid, va).map(|h| (h.depth, h.table));
            assert_eq!(got, model.lookup(asid, va), "the lookup before a fill");
            passed = got.is_none_or(|(hit, _)| hit < depth);
        }
        if passed {
            debug_assert!(!model.holds(asid, va, depth));
            // Every other fill by the tail walk's `fill_missed_deepest`
            // (whose contract is `fill_missed`'s).
            if table.as_u64() & 0x1000 == 0 {
                wc.fill_missed_deepest(asid, va, depth, table, Perms::all());
            } else {
                wc.fill_missed(asid, va, depth, table, Perms::all());
            }
        } else {
            wc.fill(asid, va, depth, table, Perms::all());
        }
        model.fill(asid, va, depth, table);
    }

    proptest::proptest! {
        /// Full caches evict on most fills (few slots, no invalidations,
        /// every depth indexed and ordered): each eviction, by `fill` or by
        /// `fill_missed`, takes the slot the plain model takes (the test
        /// below invalidates so often that its caches rarely fill up).
        #[test]
        fn full_caches_evict_as_the_plain_model(
            sizes in proptest::collection::vec(2u32..6, 3),
            short_max in proptest::sample::select(vec![0, walk_slots::MAX_SLOTS]),
            ops in proptest::collection::vec((0u8..4, 0u16..2, 0u64..24, 1usize..4), 1..400),
        ) {
            let config: Vec<_> = [(1, sizes[0]), (2, sizes[1]), (3, sizes[2])]
                .iter()
                .map(|&(depth, entries)| WalkCacheLevelConfig { depth, entries })
                .collect();
            let mut wc = WalkCache::build(&config, &X86_64, 1, short_max).expect("valid");
            let mut model = Model::of(&wc);
            for (k, (op, asid, region, depth)) in ops.into_iter().enumerate() {
                let asid = Asid::new(asid);
                let va = VirtAddr::new((region % 6) << 21 | (region / 6 % 2) << 30 | (region / 12) << 39);
                if op < 2 {
                    // Op 1: the retry's lookup, which answers at once
                    // when the key is in the deepest cache's most
                    // recently used slot (after its fill or lookup).
                    let got = if op == 1 {
                        wc.lookup_again(asid, va)
                    } else {
                        wc.lookup(asid, va)
                    };
                    let got = got.map(|h| (h.depth, h.table));
                    proptest::prop_assert_eq!(got, model.lookup(asid, va), "op {}", k);
                    continue;
                }
                let table = pa(0x1000 * (k as u64 + 1));
                fill_both(&mut wc, &mut model, asid, va, depth, table, op == 3);
            }
        }

        /// Every lookup finds what the plain model finds (so every fill
        /// chose the same slot), through fills, evictions, invalidations
        /// and a checkpoint round trip.
        #[test]
        fn choices_equal_the_plain_model(
            sizes in proptest::collection::vec(1u32..40, 3),
            index_min in proptest::sample::select(vec![1usize, INDEX_MIN_ENTRIES, usize::MAX]),
            short_max in proptest::sample::select(vec![0, walk_slots::MAX_SLOTS]),
            ops in proptest::collection::vec((0u8..10, 0u16..3, 0u64..24, 1usize..4), 1..400),
        ) {
            // Hashed (every depth, or the big ones as configured; by
            // `WalkSlots` or by `SlotIndex`) or scanning keys (none): the
            // same choices as the model.
            let config: Vec<_> = [(1, sizes[0]), (2, sizes[1]), (3, sizes[2])]
                .iter()
                .map(|&(depth, entries)| WalkCacheLevelConfig { depth, entries })
                .collect();
            let mut wc =
                WalkCache::build(&config, &X86_64, index_min, short_max).expect("valid");
            let mut model = Model::of(&wc);
            for (k, (op, asid, region, depth)) in ops.into_iter().enumerate() {
                let asid = Asid::new(asid);
                // Regions spread over 2 MiB, 1 GiB and 512 GiB boundaries.
                let va = VirtAddr::new((region % 6) << 21 | (region / 6 % 2) << 30 | (region / 12) << 39);
                match op {
                    0..=2 => {
                        let got = wc.lookup(asid, va).map(|h| (h.depth, h.table));
                        proptest::prop_assert_eq!(got, model.lookup(asid, va), "op {}", k);
                    }
                    3 => {
                        // The tail walk's lookup: the lookup's answer, and
                        // `Deepest` exactly when the hit is the deepest
                        // cache's (depth 3, every depth having slots).
                        let (got, deepest) = match wc.lookup_split(asid, va) {
                            Looked::Deepest(h) => (Some((h.depth, h.table)), true),
                            Looked::Shallower(h) => (Some((h.depth, h.table)), false),
                            Looked::Missed => (None, false),
                        };
                        proptest::prop_assert_eq!(got, model.lookup(asid, va), "op {} split", k);
                        proptest::prop_assert_eq!(
                            deepest,
                            got.is_some_and(|(d, _)| d == 3),
                            "op {} split's variant",
                            k
                        );
                    }
                    4 => {
                        // The retry's lookup (after a lookup of the same
                        // key, as the faulting walk's): the lookup's
                        // answer, stamps and recency, which the later
                        // evictions compare.
                        let got = wc.lookup(asid, va).map(|h| (h.depth, h.table));
                        proptest::prop_assert_eq!(got, model.lookup(asid, va), "op {}", k);
                        let mut want = wc.counters().clone();
                        let got = wc.lookup_again(asid, va).map(|h| (h.depth, h.table));
                        proptest::prop_assert_eq!(got, model.lookup(asid, va), "op {} again", k);
                        proptest::prop_assert_eq!(wc.clock, model.clock);
                        want.lookups += 1;
                        match got {
                            Some((depth, _)) => want.hits_by_depth[depth] += 1,
                            None => want.misses += 1,
                        }
                        proptest::prop_assert_eq!(wc.counters(), &want, "op {} counts", k);
                    }
                    5..=7 => {
                        let table = pa(0x1000 * (k as u64 + 1));
                        fill_both(&mut wc, &mut model, asid, va, depth, table, op == 7);
                        // The same slot as the model's (the first empty
                        // one, from `first_free`): checkpoints hold the
                        // slots in order, which no lookup shows.
                        proptest::prop_assert_eq!(slots_of(&wc), model.slots(), "op {} slots", k);
                    }
                    8 => {
                        wc.invalidate_asid(asid);
                        model.invalidate(Some(asid));
                    }
                    _ => {
                        let bytes = postcard::to_allocvec(&wc).expect("serialises");
                        wc = postcard::from_bytes(&bytes).expect("deserialises");
                        for c in &mut wc.caches {
                            // The restored searches hold the valid slots,
                            // by key, and order every slot by stamp.
                            let mut got = c.index.as_ref().map(|i| i.entries())
                                .or_else(|| c.short.as_ref().map(WalkSlots::entries))
                                .unwrap_or_default();
                            got.sort_unstable_by_key(|&(_, slot)| slot);
                            let valid: Vec<u32> = (0..c.slots.len() as u32)
                                .filter(|&i| c.slots[i as usize].valid)
                                .collect();
                            if c.slots.len() >= INDEX_MIN_ENTRIES {
                                proptest::prop_assert_eq!(
                                    got.iter().map(|&(_, slot)| slot).collect::<Vec<_>>(),
                                    valid
                                );
                            }
                            if let Some(short) = &c.short {
                                let mut want: Vec<u8> = (0..c.slots.len() as u8).collect();
                                want.sort_by_key(|&i| (c.slots[usize::from(i)].stamp, i));
                                proptest::prop_assert_eq!(short.order(), want);
                            }
                            (c.index, c.order, c.short) = searches(&c.slots, index_min, short_max);
                            c.keys = keys_of(&c.slots, c.short.is_some());
                        }
                        if asid.as_u16() == 0 {
                            wc.invalidate_all();
                            model.invalidate(None);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_restored_cache_with_a_repeated_key_compares_keys_and_finds_the_first() {
        let mut wc = cache(&[(3, 32)]);
        let a = Asid::new(1);
        for i in 0..3u64 {
            wc.fill(
                a,
                VirtAddr::new(i << 21),
                3,
                pa(0x1000 * (i + 1)),
                Perms::all(),
            );
        }
        assert!(wc.caches[0].short.is_some());
        // A forged checkpoint: slot 2 repeats slot 0's key.
        *wc.forge_slots()[2].0 = 0;
        let bytes = postcard::to_allocvec(&wc).expect("serialises");
        let mut restored: WalkCache = postcard::from_bytes(&bytes).expect("deserialises");
        assert!(restored.caches[0].index.is_none() && restored.caches[0].short.is_none());
        let hit = restored.lookup(a, VirtAddr::new(0)).expect("hit");
        assert_eq!(hit.table, pa(0x1000));
    }

    #[test]
    fn depth_must_leave_a_level_to_read() {
        let config = [WalkCacheLevelConfig {
            depth: 4,
            entries: 1,
        }];
        let err = WalkCache::new(&config, &X86_64).expect_err("depth 4 of 4 caches leaves");
        assert!(err.to_string().contains("walk_cache[0].depth"), "{err}");
        assert!(WalkCache::new(&config, &[48, 39, 30, 21, 12]).is_ok());
        assert!(cache(&[(2, 0)]).is_empty());
    }
}
