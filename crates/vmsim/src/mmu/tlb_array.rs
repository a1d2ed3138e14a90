//! One set-associative array of TLB entries: [`TlbArray`].
//!
//! An array has `entries = sets x ways` slots and holds one or more page
//! sizes. A lookup probes, for each size it holds (and has an entry of), the
//! set that size's page number selects (`vpn % sets`, computed with a mask
//! when `sets` is a power of two). Fully associative is simply `ways ==
//! entries` (one set). Empty ways are filled first, the lowest first;
//! otherwise the [`Replacement`](super::Replacement) policy picks the victim.
//!
//! Sets of a few ways compare every way's tag (a dense array of page
//! numbers). Sets of many ways (fully associative TLBs of 64 to thousands of
//! entries) find a page through an index instead, a map from page number to
//! the slots holding it, so a lookup, a fill and a page invalidation cost
//! O(1) whatever the size. Both make the same choices as the full compare:
//! the same slot is found (the lowest matching way), the same way is filled
//! (the lowest empty one) and the same victim is asked for (a property test
//! checks every choice against the scanning array it replaced).
//!
//! This module owns the slots and their replacement state; which arrays make
//! a hierarchy, and what is counted, belongs to [`Tlb`](super::Tlb).

use rustc_hash::FxHashMap;

use crate::addr::{Asid, PageSize, VirtAddr};
use serde::{Deserialize, Serialize};

use super::entry::TlbEntry;
use super::replacement::Victims;
use super::tlb_config::{Holds, MAX_SIZES_PER_ARRAY, TlbArrayConfig};

/// The tag of an empty slot. A real page number equals it only with 1-byte
/// pages at the very last address, and then the full entry compare rejects it.
const EMPTY_TAG: u64 = u64::MAX;

/// Sets with at least this many ways are searched through an [`Index`].
const INDEX_MIN_WAYS: usize = 17;

/// "No slot" in the index's chains.
const NIL: u32 = u32::MAX;

/// [`TlbArray::shape`] of an array [`TlbArray::lookup`] searches the
/// general way (through its index, or with the way count read from the
/// array, or sets not a power of two).
const SHAPE_GENERAL: u8 = 0;

/// The [`TlbArray::shape`] of an array built with these fields: for an array
/// searched by comparing every way (not `indexed`), with a power-of-two set
/// count and one of the presets' way counts, a code naming the way count
/// and whether it holds one page size; else [`SHAPE_GENERAL`].
fn shape_of(indexed: bool, pow2: bool, ways: usize, n_shifts: usize) -> u8 {
    if indexed || !pow2 {
        return SHAPE_GENERAL;
    }
    let one = n_shifts == 1;
    match (ways, one) {
        (4, true) => 1,
        (8, true) => 2,
        (12, true) => 3,
        (4, false) => 4,
        (8, false) => 5,
        (12, false) => 6,
        _ => SHAPE_GENERAL,
    }
}

/// What [`TlbArray::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The same translation slot was already present and was overwritten
    /// (fresh rights, dirty bit, frame).
    Refreshed,
    /// An empty way took it.
    Filled,
    /// A valid entry was evicted for it.
    Evicted(TlbEntry),
}

/// Where the entries of an array of many ways are: derived from the slots
/// alone (see [`TlbArray::rebuild_index`]), so it never needs saving.
#[derive(Clone, Debug, Default)]
struct Index {
    /// Per page size held (in probe order): page number -> the lowest slot
    /// holding an entry of that size for that page.
    heads: [FxHashMap<u64, u32>; MAX_SIZES_PER_ARRAY],
    /// Per slot: the next higher slot holding the same page number at the
    /// same size, or [`NIL`]. Chains are one slot long unless several
    /// address spaces cache the same page.
    next: Vec<u32>,
    /// One bit per slot, set when the slot is empty: the lowest empty way
    /// of a set is a find-first-set.
    empty: Vec<u64>,
    /// Per set: how many of its slots are empty.
    empty_in_set: Vec<u32>,
}

impl Index {
    fn new(slots: usize, sets: usize, ways: usize) -> Self {
        let mut empty = vec![0u64; slots.div_ceil(64)];
        for slot in 0..slots {
            empty[slot / 64] |= 1 << (slot % 64);
        }
        Self {
            heads: Default::default(),
            next: vec![NIL; slots],
            empty,
            empty_in_set: vec![ways as u32; sets],
        }
    }

    /// The lowest empty slot in `base..base + ways`, if any.
    fn first_empty(&self, set: usize, base: usize, ways: usize) -> Option<usize> {
        if self.empty_in_set[set] == 0 {
            return None;
        }
        let end = base + ways;
        let mut word = base / 64;
        let mut bits = self.empty[word] & (u64::MAX << (base % 64));
        loop {
            if bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                return (slot < end).then_some(slot);
            }
            word += 1;
            if word * 64 >= end {
                return None;
            }
            bits = self.empty[word];
        }
    }

    fn set_empty(&mut self, set: usize, slot: usize, empty: bool) {
        let bit = 1u64 << (slot % 64);
        if empty {
            self.empty[slot / 64] |= bit;
            self.empty_in_set[set] += 1;
        } else {
            self.empty[slot / 64] &= !bit;
            self.empty_in_set[set] -= 1;
        }
    }

    /// Adds `slot` to the chain of (`size`, `vpn`), keeping it in slot order.
    fn link(&mut self, size: usize, vpn: u64, slot: u32) {
        let head = self.heads[size].entry(vpn).or_insert(NIL);
        if *head == NIL || *head > slot {
            self.next[slot as usize] = *head;
            *head = slot;
            return;
        }
        let mut at = *head;
        while self.next[at as usize] != NIL && self.next[at as usize] < slot {
            at = self.next[at as usize];
        }
        self.next[slot as usize] = self.next[at as usize];
        self.next[at as usize] = slot;
    }

    /// Removes `slot` from the chain of (`size`, `vpn`).
    fn unlink(&mut self, size: usize, vpn: u64, slot: u32) {
        let Some(head) = self.heads[size].get_mut(&vpn) else {
            debug_assert!(false, "slot {slot} not in the index");
            return;
        };
        if *head == slot {
            let next = self.next[slot as usize];
            if next == NIL {
                self.heads[size].remove(&vpn);
            } else {
                *head = next;
            }
        } else {
            let mut at = *head;
            while self.next[at as usize] != slot {
                at = self.next[at as usize];
                debug_assert!(at != NIL, "slot {slot} not in its chain");
            }
            self.next[at as usize] = self.next[slot as usize];
        }
        self.next[slot as usize] = NIL;
    }
}

/// One slot of a [`TlbArray`]: its entry, aligned to its size (32 bytes)
/// so that no entry straddles two cache lines. A `Vec<TlbEntry>` is only
/// 8-aligned (16 from the allocator): whether the walk-heavy zipf row's
/// second-level entries (1536 of them, 48 KiB, reached at random) each
/// took one line or two depended on where the heap put the vector, and
/// from one build to the next cachegrind counted 0.28 more L1 misses a
/// reference in the fill's store and 0.1 more in the probe's entry check.
/// Saved as the entry itself (`transparent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[repr(align(32))]
struct Slot(TlbEntry);

impl std::ops::Deref for Slot {
    type Target = TlbEntry;
    #[inline(always)]
    fn deref(&self) -> &TlbEntry {
        &self.0
    }
}

impl std::ops::DerefMut for Slot {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut TlbEntry {
        &mut self.0
    }
}

/// A tree-PLRU touch worked out in advance ([`Victims::plru_plan`]): the
/// set word's index, the mask of the way's path and the bits written.
pub(super) type PlruPlan = (u32, u32, u32);

/// One set-associative array of TLB entries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TlbArray {
    /// Per slot, the page number of its entry, or [`EMPTY_TAG`]: the compare
    /// loop reads only this dense array, and the entry only on a tag match.
    tags: Vec<u64>,
    slots: Vec<Slot>,
    ways: usize,
    sets: usize,
    /// `sets - 1` when `sets` is a power of two (then `pow2` is true).
    set_mask: u64,
    pow2: bool,
    /// Page-size shifts held, in probe order; the first `n_shifts` are used.
    shifts: [u8; MAX_SIZES_PER_ARRAY],
    n_shifts: usize,
    /// Per page size held: how many valid entries have that granule (a
    /// size with none is not probed).
    live: [u32; MAX_SIZES_PER_ARRAY],
    victims: Victims,
    /// Whether any splintered entry may be present (then a page invalidation
    /// must scan every slot: the pieces of a large page sit in many sets).
    splinters: bool,
    /// Whether sets are searched through an [`Index`] (many ways).
    indexed: bool,
    /// The page-number index when `indexed` (`None`: compare every way). Never
    /// saved: a restored array compares every way, exactly as the index
    /// would choose, until its first fill rebuilds the index from the slots.
    #[serde(skip)]
    index: Option<Index>,
    /// How [`TlbArray::lookup`] searches, worked out once from fields fixed
    /// when the array is built (see [`shape_of`]): one byte tested instead
    /// of the index, the size count, the set count's kind and the way
    /// count on every probe (the walk-heavy rows probe two arrays a
    /// reference). Never saved: derived from the saved fields, a restored
    /// array works it out again ([`TlbArray::derive_shape`], called by
    /// the level that restores it; until then it is [`SHAPE_GENERAL`],
    /// which searches the general way and finds the same slots).
    #[serde(skip)]
    shape: u8,
    name: String,
    holds: Holds,
}

impl TlbArray {
    /// Builds an empty array from a validated config; `seed` feeds random replacement.
    ///
    /// # Panics
    /// If the config was not validated (zero ways, entries not divisible by
    /// ways, no page size): that is a bug in the caller.
    #[must_use]
    pub fn new(config: &TlbArrayConfig, seed: u64) -> Self {
        Self::build(config, seed, config.ways() as usize >= INDEX_MIN_WAYS)
    }

    /// [`TlbArray::new`], searching through an index (`indexed`) or by
    /// comparing every way, whatever the way count.
    fn build(config: &TlbArrayConfig, seed: u64, indexed: bool) -> Self {
        let entries = config.entries as usize;
        let ways = config.ways() as usize;
        assert!(
            ways > 0 && entries.is_multiple_of(ways) && !config.page_sizes.is_empty(),
            "TlbArray::new needs a validated config"
        );
        let sets = entries / ways;
        let mut shifts = [0; MAX_SIZES_PER_ARRAY];
        for (slot, size) in shifts.iter_mut().zip(&config.page_sizes) {
            *slot = size.shift() as u8;
        }
        Self {
            tags: vec![EMPTY_TAG; entries],
            slots: vec![Slot::default(); entries],
            ways,
            sets,
            set_mask: sets as u64 - 1,
            pow2: sets.is_power_of_two(),
            shifts,
            n_shifts: config.page_sizes.len().min(MAX_SIZES_PER_ARRAY),
            live: [0; MAX_SIZES_PER_ARRAY],
            victims: Victims::new(config.replacement, sets, ways, seed),
            splinters: false,
            indexed,
            index: indexed.then(|| Index::new(entries, sets, ways)),
            shape: shape_of(
                indexed,
                sets.is_power_of_two(),
                ways,
                config.page_sizes.len().min(MAX_SIZES_PER_ARRAY),
            ),
            name: config.name.clone(),
            holds: config.holds,
        }
    }

    /// Rebuilds the page-number index (and the per-size counts) from the
    /// slots: a restored array's first fill does this, as the index is never
    /// saved.
    fn rebuild_index(&mut self) {
        self.live = [0; MAX_SIZES_PER_ARRAY];
        let mut index = self
            .indexed
            .then(|| Index::new(self.slots.len(), self.sets, self.ways));
        for slot in 0..self.slots.len() {
            let e = *self.slots[slot];
            if !e.is_valid() {
                continue;
            }
            let size = self.size_index(e.granule());
            self.live[size] += 1;
            if let Some(index) = &mut index {
                index.set_empty(slot / self.ways, slot, false);
                index.link(size, e.vpn(), slot as u32);
            }
        }
        self.index = index;
    }

    /// The label from the config.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which accesses the array serves.
    #[must_use]
    pub const fn holds(&self) -> Holds {
        self.holds
    }

    /// Ways per set.
    #[must_use]
    pub const fn ways(&self) -> usize {
        self.ways
    }

    /// Number of sets.
    #[must_use]
    pub const fn sets(&self) -> usize {
        self.sets
    }

    /// Total slots.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// How many slots hold a valid entry.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.iter().map(|&n| n as usize).sum()
    }

    /// Whether every slot holds a valid entry (then no set has an empty way).
    #[inline]
    fn is_full(&self) -> bool {
        // The first size's count first: an array of one size (or whose
        // first size fills it, as 4 KiB pages do a 4K/2M array in most
        // runs) is full when that count is its capacity (the counts sum to
        // at most the capacity, so the others are then 0).
        let slots = self.slots.len();
        self.live[0] as usize == slots || self.live.iter().sum::<u32>() as usize == slots
    }

    /// Whether no slot holds a valid entry.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == [0; MAX_SIZES_PER_ARRAY]
    }

    /// The page sizes held, in probe order. (Bounded by the array's room
    /// for sizes, not only by `n_shifts`: a restored level works out its
    /// quick fills from these before `TlbArray::check_restored` has
    /// checked `n_shifts`, and a forged count must be refused there, not
    /// panic here.)
    pub fn page_sizes(&self) -> impl Iterator<Item = PageSize> + '_ {
        self.shifts[..self.n_shifts.min(MAX_SIZES_PER_ARRAY)]
            .iter()
            .filter_map(|&s| PageSize::from_shift(u32::from(s)).ok())
    }

    /// The largest size the array holds that is not larger than `size`: the
    /// granule an entry of `size` is stored at, or `None` if it cannot be held.
    #[must_use]
    pub fn granule_for(&self, size: PageSize) -> Option<PageSize> {
        self.page_sizes().filter(|held| *held <= size).max()
    }

    /// The probe-order position of the page size `granule` (which must be held).
    #[inline]
    fn size_index(&self, granule: PageSize) -> usize {
        let shift = granule.shift();
        let found = self.shifts[..self.n_shifts]
            .iter()
            .position(|&s| u32::from(s) == shift);
        debug_assert!(found.is_some(), "{granule} not held by {}", self.name);
        found.unwrap_or(0)
    }

    #[inline(always)]
    fn set_of(&self, vpn: u64) -> usize {
        if self.pow2 {
            (vpn & self.set_mask) as usize
        } else {
            (vpn % self.sets as u64) as usize
        }
    }

    /// The slot holding a translation of `va` for `asid` (a matching global
    /// entry counts), marking it used; `None` on a miss.
    #[inline(always)]
    pub fn lookup(&mut self, asid: Asid, va: VirtAddr) -> Option<usize> {
        // (An empty array costs the loop's count tests only; the TLB's
        // probes pass over the arrays that hold nothing without a call.)
        if let Some(index) = &self.index {
            for i in 0..self.n_shifts {
                if self.live[i] == 0 {
                    continue;
                }
                let shift = self.shifts[i];
                let vpn = va.as_u64() >> shift;
                let Some(&head) = index.heads[i].get(&vpn) else {
                    continue;
                };
                let mut slot = head;
                while slot != NIL {
                    if self.slots[slot as usize].matches(vpn, u32::from(shift), asid) {
                        let slot = slot as usize;
                        self.victims
                            .touch_in_line(slot / self.ways, slot % self.ways);
                        return Some(slot);
                    }
                    slot = index.next[slot as usize];
                }
            }
            return None;
        }
        // (After the index test, which the fully associative rows' arrays
        // take: in front of it, the shape test cost them two instructions
        // a probe.)
        if self.shape != SHAPE_GENERAL {
            return match self.shape {
                1 => self.find_pow2::<4>(self.shifts[0], asid, va),
                2 => self.find_pow2::<8>(self.shifts[0], asid, va),
                3 => self.find_pow2::<12>(self.shifts[0], asid, va),
                4 => self.lookup_sizes::<4>(asid, va),
                5 => self.lookup_sizes::<8>(asid, va),
                _ => self.lookup_sizes::<12>(asid, va),
            };
        }
        if self.n_shifts == 1 {
            // One size (every first-level array of the presets): its set,
            // without the loop or the count test. An empty array has only
            // empty tags, which the compare and the entry check reject as
            // they reject any other slot.
            return self.find_at(self.shifts[0], asid, va);
        }
        for i in 0..self.n_shifts.min(MAX_SIZES_PER_ARRAY) {
            if self.live[i] == 0 {
                continue;
            }
            let found = self.find_at(self.shifts[i], asid, va);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// [`TlbArray::lookup`] of an array whose shape is `SHAPE` (the caller
    /// read it from the array, through `Level::sole`), with the shape a
    /// constant: the search of that shape without the index and shape
    /// tests. `SHAPE` [`SHAPE_GENERAL`] is `lookup` itself.
    #[inline(always)]
    pub(super) fn lookup_shaped<const SHAPE: u8>(
        &mut self,
        asid: Asid,
        va: VirtAddr,
    ) -> Option<usize> {
        debug_assert!(SHAPE == SHAPE_GENERAL || self.shape == SHAPE);
        match SHAPE {
            1 => self.find_pow2::<4>(self.shifts[0], asid, va),
            2 => self.find_pow2::<8>(self.shifts[0], asid, va),
            3 => self.find_pow2::<12>(self.shifts[0], asid, va),
            4 => self.lookup_sizes::<4>(asid, va),
            5 => self.lookup_sizes::<8>(asid, va),
            6 => self.lookup_sizes::<12>(asid, va),
            _ => self.lookup(asid, va),
        }
    }

    /// The lookup of a shaped array of several page sizes and `W` ways
    /// (see [`shape_of`]): each size that has entries, in probe order.
    ///
    /// An array with no entry of its other sizes (4 KiB pages alone in the
    /// 4K/2M second level: most runs) is searched at its first size alone,
    /// without the loop over the sizes: the loop's counting, its test of
    /// the second size's count and its end cost a probe (on the walk-heavy
    /// zipf row most of them misses) about 14 instructions. An empty array
    /// takes this search too, and finds nothing: its tags are all
    /// `EMPTY_TAG`, which the entry check rejects even where a page number
    /// equals it. (The test of the first size filling the array, which
    /// also leaves the others empty, cost the `.vmt` row, whose second
    /// level never fills, more than it saved: +0.2%.)
    #[inline(always)]
    fn lookup_sizes<const W: usize>(&mut self, asid: Asid, va: VirtAddr) -> Option<usize> {
        if self.live[1..] == [0; MAX_SIZES_PER_ARRAY - 1] {
            return self.find_pow2::<W>(self.shifts[0], asid, va);
        }
        self.lookup_each_size::<W>(asid, va)
    }

    /// [`TlbArray::lookup_sizes`] of an array holding entries of several
    /// sizes: each size that has entries, in probe order. Out of line: in
    /// line, its copy of the set search made the probe's code larger, and
    /// the first-level hit (most probes of the `.vmt` row) spilled more
    /// registers: about ten instructions a hit.
    #[inline(never)]
    fn lookup_each_size<const W: usize>(&mut self, asid: Asid, va: VirtAddr) -> Option<usize> {
        for i in 0..self.n_shifts.min(MAX_SIZES_PER_ARRAY) {
            if self.live[i] == 0 {
                continue;
            }
            let found = self.find_pow2::<W>(self.shifts[i], asid, va);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Whether the array holds entries of its first size alone (or none):
    /// then [`TlbArray::lookup_sizes`] searches that size alone.
    #[inline(always)]
    pub(super) fn first_size_alone(&self) -> bool {
        self.live[1..] == [0; MAX_SIZES_PER_ARRAY - 1]
    }

    /// The first half of [`TlbArray::find_pow2`] at the array's first size
    /// (an array with a [`TlbArray::shape`] of `W` ways): the set of `va`,
    /// its page number at that size and the lowest way of the set whose
    /// tag it is, if any; `None` when none has (a miss, what most probes
    /// of the walk-heavy rows are), nothing touched. A tag seen is not yet
    /// a hit: [`TlbArray::hit_at`] (or [`TlbArray::find_seen_entry`] from
    /// the set) checks the entry. Split so that the walking probe's miss
    /// path (`Tlb::probe_walking`) holds only what the compares need, and
    /// the hit's work (the entry check, the touch) is in the function that
    /// takes the hit.
    ///
    /// The compares are a chain of two instructions a way; each way's
    /// exit is a branch of its own, so a caller that goes on to a function
    /// per way (`Tlb::probe_walking`'s ends) hands the way over with no
    /// instruction on the miss path (a way kept in a register through the
    /// chain cost a `mov` a way), and the hit's function does not search
    /// the set again (about 15 instructions and a misprediction a
    /// second-level hit).
    #[inline(always)]
    pub(super) fn tag_way<const W: usize>(&self, va: VirtAddr) -> Option<(usize, u64, usize)> {
        debug_assert!(self.pow2 && self.ways == W && !self.indexed);
        let vpn = va.as_u64() >> self.shifts[0];
        let set = (vpn & self.set_mask) as u32 as usize;
        let base = set * W;
        let tags: &[u64; W] = self.tags.get(base..base + W)?.try_into().ok()?;
        for (way, &t) in tags.iter().enumerate() {
            if t == vpn {
                return Some((set, vpn, way));
            }
        }
        None
    }

    /// The entry of `slot` (the lowest way of its set whose tag is `vpn`,
    /// from [`TlbArray::tag_way`]; `W` ways, set count a power of two, the
    /// tree-PLRU policy) if it is the page's for `asid` at the array's
    /// first size and not global ([`TlbEntry::is_private_match`]), with
    /// the slot touched from the tree's constants
    /// ([`Victims::touch_plru`]: no test of the policy or of the fetched
    /// table) and the entry read before the touch; `None` with nothing
    /// touched if not (the caller takes its general path, which searches
    /// the set again). The way is not searched for again: a second search
    /// of the set cost a hit about 15 instructions and a misprediction.
    #[inline(always)]
    pub(super) fn hit_at<const W: usize>(
        &mut self,
        slot: usize,
        vpn: u64,
        asid: Asid,
    ) -> Option<TlbEntry> {
        debug_assert!(self.pow2 && self.ways == W && !self.indexed);
        debug_assert!(self.is_tree_plru());
        debug_assert_eq!(
            Some(slot),
            self.tags
                .iter()
                .enumerate()
                .skip(slot / W * W)
                .take(W)
                .find(|(_, t)| **t == vpn)
                .map(|(i, _)| i),
            "hit_at of a slot that is not the set's first tag of the page"
        );
        let shift = self.shifts[0];
        let e = self.slots.get(slot)?;
        if !e.is_private_match(vpn, u32::from(shift), asid) {
            return None;
        }
        let entry = e.0;
        self.victims.touch_plru::<W>(slot / W, slot % W);
        Some(entry)
    }

    /// [`TlbArray::hit_at`] of an entry of page and granule sizes `sizes`
    /// (as `Tlb`'s `sizes_of`: the caller's pair takes them; the array's
    /// first size is the granule) ([`TlbEntry::is_private_match_of`]),
    /// with the set worked out from the page number (no division by a way
    /// count of 12); the entry answered by reference, for the caller to
    /// copy up as it is (two 16-byte moves, where a copy taken apart for
    /// its checks was stored field by field and kept six registers).
    #[inline(always)]
    pub(super) fn hit_at_of<const W: usize>(
        &mut self,
        slot: usize,
        vpn: u64,
        asid: Asid,
        sizes: u16,
    ) -> Option<&TlbEntry> {
        debug_assert!(self.pow2 && self.ways == W && !self.indexed);
        debug_assert!(self.is_tree_plru());
        debug_assert!(self.tags.get(slot) == Some(&vpn));
        debug_assert_eq!(u32::from(sizes & 0xff), u32::from(self.shifts[0]));
        let e = self.slots.get(slot)?;
        if !e.is_private_match_of(vpn, sizes, asid) {
            return None;
        }
        let set = (vpn & self.set_mask) as u32 as usize;
        self.victims.touch_plru::<W>(set, slot - set * W);
        Some(&e.0)
    }

    /// The rest of [`TlbArray::find_pow2`] at the first size after
    /// [`TlbArray::tag_way`] gave `set` and `vpn` (the page number it
    /// compared): the same slot, touched the same, or `None` (the tag was
    /// another address space's or another size's entry); its entry handed
    /// back, read before the touch. For the walking probe's second-level
    /// hit, which copies the entry up: read after the touch (as
    /// `TlbArray::entry` did), the slots' length was loaded and tested
    /// again (the touch's store could be to it, for all the compiler knew).
    #[inline(always)]
    pub(super) fn find_seen_entry<const W: usize>(
        &mut self,
        set: usize,
        vpn: u64,
        asid: Asid,
    ) -> Option<TlbEntry> {
        debug_assert_eq!(set as u64, vpn & self.set_mask);
        let shift = self.shifts[0];
        let base = set * W;
        let tags: &[u64; W] = self.tags.get(base..base + W)?.try_into().ok()?;
        let way = tags.iter().position(|&t| t == vpn)?;
        let slot = self.slots.get(base + way)?;
        if slot.matches(vpn, u32::from(shift), asid) {
            let entry = slot.0;
            self.victims.touch(set, way);
            return Some(entry);
        }
        let slot = self.find_in_set_rest(set, base, W, way + 1, vpn, shift, asid)?;
        Some(*self.entry(slot))
    }

    /// [`TlbArray::find_seen_entry`] for a hit the caller records with its
    /// touch planned (the walking probe's first-level hit): the slot and
    /// its entry (read before the touch), the touch made through its plan
    /// where there is one ([`Victims::touch_planned`]: the plan is then the
    /// touch, where the touch and then `TlbArray::plru_plan_at`, a call,
    /// each tested the policy and the table), and the plan, or `None`
    /// (touched by [`Victims::touch`]). Same slot, same touch.
    #[inline(always)]
    pub(super) fn find_seen_planned<const W: usize>(
        &mut self,
        set: u32,
        vpn: u64,
        asid: Asid,
    ) -> Option<(usize, TlbEntry, Option<PlruPlan>)> {
        debug_assert_eq!(u64::from(set), vpn & self.set_mask);
        let shift = self.shifts[0];
        let base = set as usize * W;
        let tags: &[u64; W] = self.tags.get(base..base + W)?.try_into().ok()?;
        let way = tags.iter().position(|&t| t == vpn)?;
        let slot = self.slots.get(base + way)?;
        if slot.matches(vpn, u32::from(shift), asid) {
            let entry = slot.0;
            let plan = self.victims.touch_planned(set, way);
            return Some((base + way, entry, plan));
        }
        let slot = self.find_in_set_rest(set as usize, base, W, way + 1, vpn, shift, asid)?;
        // (Touched by the search; the plan is a function of the set and way.)
        let plan = self.victims.plru_plan(slot / W, slot % W);
        Some((slot, *self.entry(slot), plan))
    }

    /// [`TlbArray::find_at`] of a shaped array (see [`shape_of`]): sets a
    /// power of two, `W` ways. The set number is taken as a `u32` (a set
    /// count is at most the entry count, a `u32`), so the set's first slot
    /// needs no overflow test.
    #[inline(always)]
    fn find_pow2<const W: usize>(&mut self, shift: u8, asid: Asid, va: VirtAddr) -> Option<usize> {
        debug_assert!(self.pow2 && self.ways == W && !self.indexed);
        let vpn = va.as_u64() >> shift;
        let set = (vpn & self.set_mask) as u32 as usize;
        self.find_in_set::<W>(set, vpn, shift, asid)
    }

    /// The lookup's search for `va` at one page size (`shift`): the set
    /// its page number selects, compared with the way count a constant
    /// where it is one of the presets'.
    #[inline(always)]
    fn find_at(&mut self, shift: u8, asid: Asid, va: VirtAddr) -> Option<usize> {
        let vpn = va.as_u64() >> shift;
        let set = self.set_of(vpn);
        match self.ways {
            4 => self.find_in_set::<4>(set, vpn, shift, asid),
            8 => self.find_in_set::<8>(set, vpn, shift, asid),
            12 => self.find_in_set::<12>(set, vpn, shift, asid),
            _ => self.find_in_set_any(set, vpn, shift, asid),
        }
    }

    /// The lookup's search of set `set` for page number `vpn` at `shift`
    /// (the lowest matching way, marked used), for sets of `W` ways: the
    /// presets' way counts (4, 8, 12) with the way count a constant, so the
    /// compare loop is unrolled (a miss in a 12-way set, what most probes
    /// of the walk-heavy zipf row's second level are, cost about 49
    /// instructions with the count read from the array, half that now).
    #[inline(always)]
    fn find_in_set<const W: usize>(
        &mut self,
        set: usize,
        vpn: u64,
        shift: u8,
        asid: Asid,
    ) -> Option<usize> {
        let base = set * W;
        let tags: &[u64; W] = self.tags.get(base..base + W)?.try_into().ok()?;
        // The first way whose tag is `vpn`, in a loop of nothing but the
        // compares (two instructions a way once unrolled; with the entry
        // check and the touch in its body it was not unrolled, and cost
        // five a way). A tag match is almost always the entry; when it is
        // not (another address space's, or another size's), the search
        // goes on from the next way.
        // Whether any way matches first (two instructions a way; most
        // probes of the walk-heavy rows miss), then which (the position's
        // loop keeps the way number live: three a way).
        // (`any` in line over the array, as measured: not `contains`.)
        #[allow(clippy::manual_contains)]
        let any = tags.iter().any(|&t| t == vpn);
        if !any {
            return None;
        }
        let way = tags.iter().position(|&t| t == vpn)?;
        if self.slots[base + way].matches(vpn, u32::from(shift), asid) {
            self.victims.touch(set, way);
            return Some(base + way);
        }
        self.find_in_set_rest(set, base, W, way + 1, vpn, shift, asid)
    }

    /// [`TlbArray::find_in_set_from`] out of line: the rare rest of a
    /// search whose first tag match was not the entry.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn find_in_set_rest(
        &mut self,
        set: usize,
        base: usize,
        ways: usize,
        from: usize,
        vpn: u64,
        shift: u8,
        asid: Asid,
    ) -> Option<usize> {
        self.find_in_set_from(set, base, ways, from, vpn, shift, asid)
    }

    /// [`TlbArray::find_in_set`] for any way count.
    #[inline(always)]
    fn find_in_set_any(&mut self, set: usize, vpn: u64, shift: u8, asid: Asid) -> Option<usize> {
        let base = set * self.ways;
        self.find_in_set_from(set, base, self.ways, 0, vpn, shift, asid)
    }

    /// The search of [`TlbArray::find_in_set`] in the `ways` ways of set
    /// `set` (slots from `base`) from way `from` on.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn find_in_set_from(
        &mut self,
        set: usize,
        base: usize,
        ways: usize,
        from: usize,
        vpn: u64,
        shift: u8,
        asid: Asid,
    ) -> Option<usize> {
        let tags = self.tags.get(base + from..base + ways)?;
        for (k, &tag) in tags.iter().enumerate() {
            let way = from + k;
            if tag == vpn && self.slots[base + way].matches(vpn, u32::from(shift), asid) {
                self.victims.touch(set, way);
                return Some(base + way);
            }
        }
        None
    }

    /// Marks `slot` (from [`TlbArray::lookup`], still holding the same
    /// entry) used, exactly as a lookup that finds it there does.
    #[inline(always)]
    pub fn touch(&mut self, slot: usize) {
        self.victims.touch(slot / self.ways, slot % self.ways);
    }

    /// The set and way of `slot`: what [`TlbArray::touch_way`] takes (a
    /// caller that touches the same slot often divides once).
    #[inline]
    #[must_use]
    pub(super) fn set_way(&self, slot: usize) -> (u32, u32) {
        ((slot / self.ways) as u32, (slot % self.ways) as u32)
    }

    /// [`Victims::plru_plan`] of `slot`: a touch of it worked out in
    /// advance, when the replacement is a one-word tree-PLRU.
    #[must_use]
    pub(super) fn plru_plan(&self, slot: usize) -> Option<(u32, u32, u32)> {
        self.victims.plru_plan(slot / self.ways, slot % self.ways)
    }

    /// [`TlbArray::plru_plan`] of the slot at `set` and `way` (known to
    /// the caller: no division).
    #[must_use]
    pub(super) fn plru_plan_at(&self, set: u32, way: u32) -> Option<(u32, u32, u32)> {
        self.victims.plru_plan(set as usize, way as usize)
    }

    /// Carries out a touch [`TlbArray::plru_plan`] planned.
    #[inline(always)]
    pub(super) fn apply_plru(&mut self, word: u32, mask: u32, bits: u32) {
        self.victims.apply_plru(word, mask, bits);
    }

    /// [`TlbArray::touch`] of the slot at `set` and `way` (from
    /// [`TlbArray::set_way`]).
    #[inline(always)]
    pub(super) fn touch_way(&mut self, set: u32, way: u32) {
        self.victims.touch(set as usize, way as usize);
    }

    /// [`TlbArray::touch_way`] with a recency list's touch in line (see
    /// [`Victims::touch_in_line`]): for `Tlb::settle`'s replay.
    #[inline(always)]
    pub(super) fn touch_way_in_line(&mut self, set: u32, way: u32) {
        self.victims.touch_in_line(set as usize, way as usize);
    }

    /// Whether the array is LRU keeping its order as stamps (see
    /// [`Victims::lru_in_stamps`]).
    #[inline(always)]
    pub(super) fn lru_in_stamps(&self) -> bool {
        self.victims.lru_in_stamps()
    }

    /// [`Victims::stamp_ahead`] of the slot at `set` and `way`.
    #[inline(always)]
    pub(super) fn stamp_ahead(&mut self, set: u32, way: u32, ahead: u64) {
        self.victims.stamp_ahead(set as usize, way as usize, ahead);
    }

    /// [`Victims::advance_stamps`].
    #[inline(always)]
    pub(super) fn advance_stamps(&mut self, by: u64) {
        self.victims.advance_stamps(by);
    }

    /// The entry in `slot` (from [`TlbArray::lookup`]).
    #[inline(always)]
    #[must_use]
    pub fn entry(&self, slot: usize) -> &TlbEntry {
        &self.slots[slot].0
    }

    /// Stores `entry`, whose granule must be a size this array holds.
    /// An entry for the same page and address space is overwritten in place.
    pub fn insert(&mut self, entry: TlbEntry) -> Inserted {
        self.insert_with(entry, false)
    }

    /// [`TlbArray::insert`] of an entry known to have no slot here yet: a
    /// non-global entry whose lookup (same page, same address space, every
    /// size held) just missed, with no change to the array since. Then no
    /// way can hold the same translation slot, so the search for one is
    /// skipped: the entry goes to the lowest empty way, else the victim's,
    /// as `insert` would choose. Returns whether an entry was evicted (the
    /// TLB counts evictions and needs nothing else). Sets of a few ways (no
    /// index) take a short path of their own.
    ///
    /// Always in line (its one caller is the TLB's fill of every level on
    /// a miss, called for each array filled): the call and the copy of the
    /// entry cost a miss-heavy run more than the code it adds.
    #[inline(always)]
    pub(super) fn fill_absent(&mut self, entry: TlbEntry) -> bool {
        debug_assert!(!entry.is_global(), "a global entry may share a slot");
        debug_assert!(entry.is_valid(), "inserting an empty entry");
        if self.indexed {
            return self.fill_absent_indexed(entry);
        }
        debug_assert!(
            !self.slots.iter().any(|e| e.same_slot(&entry)),
            "fill_absent of an entry that has a slot"
        );
        if entry.is_splintered() {
            self.splinters = true;
        }
        let vpn = entry.vpn();
        let set = self.set_of(vpn);
        let base = set * self.ways;
        self.fill_absent_at::<0, false>(entry, set, base)
    }

    /// [`TlbArray::fill_absent`] of an array whose way count is `W` and
    /// whose set count is a power of two, not indexed (one with a
    /// [`TlbArray::shape`]), of an entry stored at its own size (not a
    /// piece): the set worked out with the way count a constant, without
    /// the index, piece and set-count tests. Same slot, same counts.
    ///
    /// `ONE`: the array holds one page size (its shape says so, and the
    /// caller knows it as a constant), so the entry it evicts is of the
    /// entry's granule and the per-size counts stay as they were: the
    /// victim's slot is written without its granule read first.
    #[inline(always)]
    pub(super) fn fill_absent_shaped<const W: usize, const ONE: bool>(
        &mut self,
        entry: TlbEntry,
    ) -> bool {
        debug_assert!(!entry.is_global(), "a global entry may share a slot");
        debug_assert!(entry.is_valid(), "inserting an empty entry");
        debug_assert!(self.shape != SHAPE_GENERAL && self.ways == W && self.pow2);
        debug_assert!(!entry.is_splintered());
        debug_assert!(!ONE || self.n_shifts == 1, "ONE of an array of sizes");
        debug_assert!(
            !self.slots.iter().any(|e| e.same_slot(&entry)),
            "fill_absent of an entry that has a slot"
        );
        let set = (entry.vpn() & self.set_mask) as u32 as usize;
        self.fill_absent_at::<W, ONE>(entry, set, set * W)
    }

    /// The rest of [`TlbArray::fill_absent`] once the set (`set`, its
    /// first slot `base`) is known; `W` is the way count where the caller
    /// knows it as a constant, else 0 (see [`Victims::evict_ways`]); `ONE`
    /// as in [`TlbArray::fill_absent_shaped`].
    #[inline(always)]
    fn fill_absent_at<const W: usize, const ONE: bool>(
        &mut self,
        entry: TlbEntry,
        set: usize,
        base: usize,
    ) -> bool {
        let vpn = entry.vpn();
        if !self.is_full() {
            return self.fill_absent_filling(entry, set, base);
        }
        // A full array (the steady state of a miss-heavy run): the victim,
        // touched (as `victim` then `touch`). An entry of the same granule
        // as the one it evicts (nearly always) leaves the per-size counts
        // as they were, so neither size is looked up.
        let slot = base + self.victims.evict_ways::<W>(set);
        if let (Some(old), Some(tag)) = (self.slots.get_mut(slot), self.tags.get_mut(slot)) {
            debug_assert!(!ONE || old.same_granule(&entry));
            let same = ONE || old.same_granule(&entry);
            let old_granule = old.granule();
            **old = entry;
            *tag = vpn;
            if !same {
                self.recount(old_granule, entry.granule());
            }
        }
        true
    }

    /// Whether every slot holds an entry of the first size held (then the
    /// array is full, and a victim's granule is that size: the counts of
    /// the sizes sum to at most the slot count).
    #[inline(always)]
    pub(super) fn full_of_first(&self) -> bool {
        self.live[0] as usize == self.slots.len()
    }

    /// [`TlbArray::fill_absent_shaped`] of an entry of the array's first
    /// size (not a piece) into a tree-PLRU array of `W` ways
    /// ([`Victims::evict_plru`]) that is [`TlbArray::full_of_first`]: the
    /// victim's slot takes it, and as the victim is of the entry's granule
    /// the per-size counts stay as they were (its granule is not read: the
    /// second level's slot is reached at random, and its read missed the L1
    /// on most fills, where the store alone waits on nothing). The caller
    /// counts the fill and the eviction. Same slot, same replacement state.
    #[inline(always)]
    pub(super) fn fill_full_plru<const W: usize>(&mut self, entry: &TlbEntry) {
        debug_assert!(!entry.is_global(), "a global entry may share a slot");
        debug_assert!(entry.is_valid(), "inserting an empty entry");
        debug_assert!(self.shape != SHAPE_GENERAL && self.ways == W && self.pow2);
        debug_assert!(
            self.full_of_first(),
            "fill_full_plru of an array not full of its first size"
        );
        debug_assert_eq!(entry.granule_shift(), u32::from(self.shifts[0]));
        debug_assert!(!entry.is_splintered());
        debug_assert!(
            !self.slots.iter().any(|e| e.same_slot(entry)),
            "fill_full_plru of an entry that has a slot"
        );
        let vpn = entry.vpn();
        let set = (vpn & self.set_mask) as u32 as usize;
        let slot = set * W + self.victims.evict_plru::<W>(set);
        if let (Some(old), Some(tag)) = (self.slots.get_mut(slot), self.tags.get_mut(slot)) {
            debug_assert!(old.same_granule(entry));
            **old = *entry;
            *tag = vpn;
        }
    }

    /// After a fill of an empty way: an array it made full fetches its
    /// victim table now ([`Victims::fetch_plru_table`]), as its fills from
    /// now on may all take [`TlbArray::fill_full_plru`], which reads none.
    #[inline(always)]
    fn note_filled(&mut self) {
        if self.is_full() {
            self.victims.fetch_plru_table();
        }
    }

    /// The per-size counts after an entry of `old` granule gave its slot to
    /// one of `new` granule.
    #[cold]
    #[inline(never)]
    fn recount(&mut self, old: PageSize, new: PageSize) {
        let old = self.size_index(old);
        let new = self.size_index(new);
        self.live[old] -= 1;
        self.live[new] += 1;
    }

    /// [`TlbArray::fill_absent`] into an array that is not full (yet): the
    /// lowest empty way of the set, else the victim's. Out of line: an
    /// array fills up once, then evicts on every fill.
    ///
    /// Not only while an array fills: where invalidations keep emptying a
    /// few slots (the swap row: each eviction of a page flushes it), the
    /// array is seldom full but the set filled is (on that row two fills
    /// in three find no empty way). So the set's tags are first compared
    /// with the empty tag alone, with the presets' way counts a constant
    /// (unrolled, as the lookup's compare is), and a victim of the same
    /// granule as the entry leaves the per-size counts as they were: the
    /// scan of every way for an empty one, entry and all, and the two
    /// size lookups cost that row about 170 instructions a fill.
    #[cold]
    #[inline(never)]
    fn fill_absent_filling(&mut self, entry: TlbEntry, set: usize, base: usize) -> bool {
        let vpn = entry.vpn();
        let may_be_empty = match self.ways {
            4 => self.has_empty_tag::<4>(base),
            8 => self.has_empty_tag::<8>(base),
            12 => self.has_empty_tag::<12>(base),
            _ => true,
        };
        // (A way with an entry never has the empty tag: no page number is
        // `u64::MAX`. So no empty tag, no empty way.)
        let empty = if may_be_empty {
            let tags = &self.tags[base..base + self.ways];
            let slots = &self.slots[base..base + self.ways];
            tags.iter()
                .zip(slots)
                .position(|(&tag, e)| tag == EMPTY_TAG && !e.is_valid())
        } else {
            None
        };
        let (way, evicted) = match empty {
            Some(way) => {
                self.victims.touch(set, way);
                (way, false)
            }
            // The victim, touched: as `victim` then `touch`.
            None => (self.victims.evict(set), true),
        };
        let slot = base + way;
        if evicted {
            let old = *self.slots[slot];
            if !old.same_granule(&entry) {
                self.recount(old.granule(), entry.granule());
            }
        } else {
            let size = self.size_index(entry.granule());
            self.live[size] += 1;
            self.note_filled();
        }
        *self.slots[slot] = entry;
        self.tags[slot] = vpn;
        evicted
    }

    /// Whether any of the `W` ways of the set from slot `base` has the
    /// empty tag (two instructions a way once unrolled).
    #[inline(always)]
    fn has_empty_tag<const W: usize>(&self, base: usize) -> bool {
        let Some(tags) = self.tags.get(base..base + W) else {
            return true;
        };
        // (`any` over a slice of constant length, where clippy suggests
        // `contains`: this is the form the lookup's unrolled compare
        // takes, and the one that was measured.)
        #[allow(clippy::manual_contains)]
        let any = tags.iter().any(|&t| t == EMPTY_TAG);
        any
    }

    /// [`TlbArray::fill_absent`] of an array with an index (many ways):
    /// out of line, so the short path stays small where it is in line.
    #[inline(never)]
    fn fill_absent_indexed(&mut self, entry: TlbEntry) -> bool {
        matches!(self.insert_with(entry, true), Inserted::Evicted(_))
    }

    #[inline(always)]
    fn insert_with(&mut self, entry: TlbEntry, absent: bool) -> Inserted {
        debug_assert!(entry.is_valid(), "inserting an empty entry");
        if self.indexed && self.index.is_none() {
            self.rebuild_index();
        }
        if entry.granule() != entry.page_size() {
            self.splinters = true;
        }
        let size = self.size_index(entry.granule());
        let vpn = entry.vpn();
        let set = self.set_of(vpn);
        let base = set * self.ways;
        let (way, outcome) = match &self.index {
            Some(index) => {
                // The same page's lowest slot if present (refresh in
                // place), else the lowest empty way, else the victim.
                let mut same = None;
                if let Some(&head) = index.heads[size].get(&vpn) {
                    let mut slot = head;
                    while slot != NIL {
                        if self.slots[slot as usize].same_slot(&entry) {
                            same = Some(slot as usize - base);
                            break;
                        }
                        slot = index.next[slot as usize];
                    }
                }
                match same {
                    Some(way) => (way, Inserted::Refreshed),
                    None => match index.first_empty(set, base, self.ways) {
                        Some(slot) => (slot - base, Inserted::Filled),
                        None => {
                            let way = self.victims.victim(set);
                            (way, Inserted::Evicted(*self.slots[base + way]))
                        }
                    },
                }
            }
            None => {
                // The same page's slot if present (refresh in place), else
                // the first empty way, else the victim. A full array (the
                // steady state of a miss-heavy run) has no empty way, so
                // only the page's tag is compared.
                let tags = &self.tags[base..base + self.ways];
                let same = if absent {
                    debug_assert!(
                        !(0..self.ways).any(|w| self.slots[base + w].same_slot(&entry)),
                        "an absent insert of an entry that has a slot"
                    );
                    None
                } else {
                    tags.iter()
                        .enumerate()
                        .find(|&(way, &tag)| tag == vpn && self.slots[base + way].same_slot(&entry))
                        .map(|(way, _)| way)
                };
                let empty = if same.is_some() || self.is_full() {
                    None
                } else {
                    tags.iter()
                        .enumerate()
                        .find(|&(way, &tag)| tag == EMPTY_TAG && !self.slots[base + way].is_valid())
                        .map(|(way, _)| way)
                };
                match (same, empty) {
                    (Some(way), _) => (way, Inserted::Refreshed),
                    (None, Some(way)) => (way, Inserted::Filled),
                    (None, None) => {
                        let way = self.victims.victim(set);
                        (way, Inserted::Evicted(*self.slots[base + way]))
                    }
                }
            }
        };
        let slot = base + way;
        match outcome {
            Inserted::Refreshed => {}
            Inserted::Filled => {
                self.live[size] += 1;
                self.note_filled();
                if let Some(index) = &mut self.index {
                    index.set_empty(set, slot, false);
                    index.link(size, vpn, slot as u32);
                }
            }
            Inserted::Evicted(old) => {
                let old_size = self.size_index(old.granule());
                self.live[old_size] -= 1;
                self.live[size] += 1;
                if let Some(index) = &mut self.index {
                    index.unlink(old_size, old.vpn(), slot as u32);
                    index.link(size, vpn, slot as u32);
                }
            }
        }
        *self.slots[slot] = entry;
        self.tags[slot] = vpn;
        self.victims.touch(set, way);
        outcome
    }

    fn clear(&mut self, slot: usize) {
        self.clear_in(slot, slot / self.ways, slot % self.ways);
    }

    /// [`TlbArray::clear`] of `slot`, which is way `way` of set `set`: the
    /// page search knows both, so no division by the way count.
    #[inline(always)]
    fn clear_in(&mut self, slot: usize, set: usize, way: usize) {
        debug_assert_eq!((set, way), (slot / self.ways, slot % self.ways));
        let old = *self.slots[slot];
        if old.is_valid() {
            let size = self.size_index(old.granule());
            self.live[size] -= 1;
            if let Some(index) = &mut self.index {
                index.unlink(size, old.vpn(), slot as u32);
                index.set_empty(slot / self.ways, slot, true);
            }
        }
        *self.slots[slot] = TlbEntry::default();
        self.tags[slot] = EMPTY_TAG;
        self.victims.forget(set, way);
    }

    /// Removes every entry of `asid` (or global) whose page holds `va`, at any
    /// page size, splintered pieces included. Returns how many were removed.
    ///
    /// The common case (no splinters, no index: a page's entry can only sit
    /// in its set at its size) reads only the dense tag array, as a lookup
    /// does, and the entry only on a tag match; an empty array costs one
    /// compare. Eviction and accessed-bit clearing flush a page per victim,
    /// mostly one the TLB no longer holds.
    #[inline]
    pub fn invalidate_page(&mut self, asid: Asid, va: VirtAddr) -> usize {
        if self.is_empty() {
            return 0;
        }
        if self.splinters || self.index.is_some() {
            return self.invalidate_page_slow(asid, va);
        }
        self.invalidate_in_sets(asid, va)
    }

    /// [`TlbArray::invalidate_page`] of each page in order, passing over
    /// those marked unfilled (`true`: the caller knows no entry covers
    /// them; debug builds search anyway and check that nothing is found).
    /// Returns how many entries were removed. What the kernel's gathered
    /// shootdowns call once per array: the tests for splinters and the
    /// index are made once (only a fill changes them), and the array's
    /// setup is not paid per page. The presets' way counts take a loop of
    /// their own (`invalidate_pages_in`).
    pub fn invalidate_pages<I>(&mut self, pages: I) -> usize
    where
        I: Iterator<Item = (Asid, VirtAddr, bool)>,
    {
        let slow = self.splinters || self.index.is_some();
        if !slow {
            match self.ways {
                1 => return self.invalidate_pages_in::<1, I>(pages),
                2 => return self.invalidate_pages_in::<2, I>(pages),
                4 => return self.invalidate_pages_in::<4, I>(pages),
                8 => return self.invalidate_pages_in::<8, I>(pages),
                12 => return self.invalidate_pages_in::<12, I>(pages),
                16 => return self.invalidate_pages_in::<16, I>(pages),
                _ => {}
            }
        }
        let mut removed = 0;
        for (asid, va, unfilled) in pages {
            if self.is_empty() {
                break;
            }
            if unfilled {
                #[cfg(debug_assertions)]
                {
                    let found = self.invalidate_page(asid, va);
                    debug_assert_eq!(found, 0, "{va} of {asid:?} was cached after all");
                }
                continue;
            }
            removed += if slow {
                self.invalidate_page_slow(asid, va)
            } else {
                self.invalidate_in_sets(asid, va)
            };
        }
        removed
    }

    /// [`TlbArray::invalidate_pages`] of an array of `W` ways without
    /// splinters or index, as [`TlbArray::invalidate_in_sets`] of each page
    /// in order, with what does not change from page to page worked out
    /// once: the way count (a constant here), and the page sizes that have
    /// entries (a removal only empties a size, and searching a size that
    /// became empty finds nothing). An array that becomes empty is not
    /// searched further. Most pages find nothing: per page and size this
    /// is a shift, a set index and the set's tags compared without a
    /// branch.
    fn invalidate_pages_in<const W: usize, I>(&mut self, pages: I) -> usize
    where
        I: Iterator<Item = (Asid, VirtAddr, bool)>,
    {
        debug_assert!(self.ways == W && !self.splinters && self.index.is_none());
        let mut shifts = [0u8; MAX_SIZES_PER_ARRAY];
        let mut n = 0;
        for i in 0..self.n_shifts {
            if self.live[i] != 0 {
                shifts[n] = self.shifts[i];
                n += 1;
            }
        }
        let shifts = &shifts[..n];
        let mut removed = 0;
        for (asid, va, unfilled) in pages {
            if unfilled {
                #[cfg(debug_assertions)]
                {
                    let found = self.invalidate_page(asid, va);
                    debug_assert_eq!(found, 0, "{va} of {asid:?} was cached after all");
                }
                continue;
            }
            let before = removed;
            for &shift in shifts {
                let vpn = va.as_u64() >> shift;
                let set = self.set_of(vpn);
                let base = set * W;
                // Whether any way's tag is `vpn` first (two instructions a
                // way, unrolled, as the lookup's `find_in_set` tests), and
                // which ways only then: most pages the kernel invalidates
                // are no longer cached, and the branch-free mask of every
                // way cost about four a way.
                let Ok(tags) = <&[u64; W]>::try_from(&self.tags[base..base + W]) else {
                    continue;
                };
                #[allow(clippy::manual_contains)]
                if !tags.iter().any(|&t| t == vpn) {
                    continue;
                }
                let hits = self.matching_ways::<W>(base, vpn);
                removed += self.clear_matching(hits, base, set, asid, va);
            }
            if removed != before && self.is_empty() {
                break;
            }
        }
        removed
    }

    /// [`TlbArray::invalidate_page`] without splinters or index: a page's
    /// entry can only sit in its set at its size.
    #[inline(always)]
    fn invalidate_in_sets(&mut self, asid: Asid, va: VirtAddr) -> usize {
        let mut removed = 0;
        for i in 0..self.n_shifts {
            if self.live[i] == 0 {
                continue;
            }
            let vpn = va.as_u64() >> self.shifts[i];
            let set = self.set_of(vpn);
            let base = set * self.ways;
            // Without splinters an entry covers `va` only if its page
            // number (its tag) is `va`'s at its own size. The presets' way
            // counts compare every tag of the set without a branch (most
            // invalidations find nothing) into a mask of the ways to check,
            // in way order as the search below visits them.
            let hits = match self.ways {
                1 => self.matching_ways::<1>(base, vpn),
                2 => self.matching_ways::<2>(base, vpn),
                4 => self.matching_ways::<4>(base, vpn),
                8 => self.matching_ways::<8>(base, vpn),
                12 => self.matching_ways::<12>(base, vpn),
                16 => self.matching_ways::<16>(base, vpn),
                _ => {
                    removed += self.invalidate_in_set(asid, va, base, vpn);
                    continue;
                }
            };
            removed += self.clear_matching(hits, base, set, asid, va);
        }
        removed
    }

    /// Of the ways of set `set` (slots from `base`) whose tag matched
    /// (`hits`, a bit a way, from [`TlbArray::matching_ways`]), clears
    /// those whose entry covers `va` in `asid` or globally, in way order.
    /// How many it cleared.
    #[inline(always)]
    fn clear_matching(
        &mut self,
        mut hits: u32,
        base: usize,
        set: usize,
        asid: Asid,
        va: VirtAddr,
    ) -> usize {
        let mut removed = 0;
        while hits != 0 {
            let way = hits.trailing_zeros() as usize;
            hits &= hits - 1;
            let slot = base + way;
            let e = &self.slots[slot];
            if e.page_covers(va) && (e.asid() == asid || e.is_global()) {
                self.clear_in(slot, set, way);
                removed += 1;
            }
        }
        removed
    }

    /// The ways (bit `w` for way `w`) of the `W`-way set at `base` whose
    /// tag is `vpn`, every tag compared without a branch.
    #[inline(always)]
    fn matching_ways<const W: usize>(&self, base: usize, vpn: u64) -> u32 {
        let set = &self.tags[base..base + W];
        let mut hits = 0;
        for (way, &tag) in set.iter().enumerate() {
            hits |= u32::from(tag == vpn) << way;
        }
        hits
    }

    /// The set search of [`TlbArray::invalidate_in_sets`] for other way
    /// counts: the set's tags searched one match at a time (one bounds
    /// check, not one per way).
    fn invalidate_in_set(&mut self, asid: Asid, va: VirtAddr, base: usize, vpn: u64) -> usize {
        let mut removed = 0;
        let end = base + self.ways;
        let mut from = base;
        while let Some(k) = self.tags[from..end].iter().position(|&t| t == vpn) {
            let slot = from + k;
            let e = &self.slots[slot];
            if e.page_covers(va) && (e.asid() == asid || e.is_global()) {
                self.clear(slot);
                removed += 1;
            }
            from = slot + 1;
        }
        removed
    }

    /// [`TlbArray::invalidate_page`] with splinters (every slot is scanned)
    /// or through the page-number index.
    #[cold]
    #[inline(never)]
    fn invalidate_page_slow(&mut self, asid: Asid, va: VirtAddr) -> usize {
        let doomed = |e: &TlbEntry| e.page_covers(va) && (e.asid() == asid || e.is_global());
        let mut removed = 0;
        if self.splinters {
            return self.retain(|e| !doomed(e));
        }
        for i in 0..self.n_shifts {
            if self.live[i] == 0 {
                continue;
            }
            let vpn = va.as_u64() >> self.shifts[i];
            if let Some(index) = &self.index {
                // Without splinters an entry covers `va` only if its page
                // number is `va`'s at its own size: the chain of that number.
                let mut slot = index.heads[i].get(&vpn).copied().unwrap_or(NIL);
                while slot != NIL {
                    let next = self.index.as_ref().map_or(NIL, |x| x.next[slot as usize]);
                    if doomed(&self.slots[slot as usize]) {
                        self.clear(slot as usize);
                        removed += 1;
                    }
                    slot = next;
                }
                continue;
            }
            let base = self.set_of(vpn) * self.ways;
            for slot in base..base + self.ways {
                if doomed(&self.slots[slot]) {
                    self.clear(slot);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes every valid entry for which `keep` is false; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&TlbEntry) -> bool) -> usize {
        let mut removed = 0;
        let mut splinters = false;
        if self.is_empty() {
            self.splinters = false;
            return 0;
        }
        for slot in 0..self.slots.len() {
            let e = *self.slots[slot];
            if !e.is_valid() {
                continue;
            }
            if keep(&e) {
                splinters |= e.granule() != e.page_size();
            } else {
                self.clear(slot);
                removed += 1;
            }
        }
        self.splinters = splinters;
        removed
    }

    /// The valid entries, in slot order (for inspection and tests).
    pub fn entries(&self) -> impl Iterator<Item = &TlbEntry> + '_ {
        self.slots.iter().map(|e| &e.0).filter(|e| e.is_valid())
    }
}

impl TlbArray {
    /// [`TlbArray::shape`]: for the level's choice of a specialised probe
    /// (`Level::sole`) and the tests of the levels that restore arrays.
    #[inline]
    pub(crate) fn shape(&self) -> u8 {
        self.shape
    }

    /// A restored array, once checked: fetches its victim table if it is
    /// full (see [`TlbArray::note_filled`]).
    pub(crate) fn prepare_restored(&mut self) {
        self.note_filled();
    }

    /// Whether the array's replacement is tree-PLRU.
    #[must_use]
    pub(crate) fn is_tree_plru(&self) -> bool {
        self.victims.policy() == super::Replacement::TreePlru
    }

    /// Works out [`TlbArray::shape`] from the array's fields, as building
    /// it does: for an array read back from a checkpoint (the shape is not
    /// saved), so that a restored run searches as fast as the run it
    /// continues. Its fields are then checked against the configuration
    /// ([`TlbArray::check_restored`]) before any lookup.
    pub(crate) fn derive_shape(&mut self) {
        self.shape = shape_of(
            self.indexed,
            self.pow2,
            self.ways,
            self.n_shifts.min(MAX_SIZES_PER_ARRAY),
        );
    }
}

impl TlbArray {
    /// Checks an array read back from a checkpoint against the empty array
    /// `fresh` its configuration builds: the same geometry (sets, ways,
    /// sizes, search), every slot's entry usable (see
    /// [`TlbEntry::check_restored`]), of a size the array holds, in the set
    /// its page number selects, with its dense tag, the per-size counts and
    /// the splinter flag true to the slots, no translation twice, and the
    /// replacement state of the configured shape.
    pub(crate) fn check_restored(
        &self,
        fresh: &Self,
        limits: &super::RestoreLimits<'_>,
    ) -> Result<(), String> {
        if self.ways != fresh.ways
            || self.sets != fresh.sets
            || self.set_mask != fresh.set_mask
            || self.pow2 != fresh.pow2
            || self.shifts != fresh.shifts
            || self.n_shifts != fresh.n_shifts
            || self.indexed != fresh.indexed
            || self.holds != fresh.holds
            || self.name != fresh.name
            || self.slots.len() != fresh.slots.len()
            || self.tags.len() != fresh.tags.len()
        {
            return Err(format!(
                "geometry is not the configuration's ({} sets x {} ways of {:?})",
                fresh.sets,
                fresh.ways,
                fresh
                    .page_sizes()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
            ));
        }
        let mut live = [0u32; MAX_SIZES_PER_ARRAY];
        let mut splintered = false;
        let mut seen = rustc_hash::FxHashSet::default();
        for (slot, e) in self.slots.iter().enumerate() {
            let at = |what: String| format!("slot {slot}: {what}");
            // The size first: the entry's own checks read its granule.
            let shift = e.granule().shift();
            let size = self.shifts[..self.n_shifts]
                .iter()
                .position(|&s| u32::from(s) == shift);
            if e.is_valid() && size.is_none() {
                return Err(at(format!(
                    "entry of {} in an array that does not hold that size",
                    e.granule()
                )));
            }
            e.check_restored(limits).map_err(at)?;
            let Some(size) = size.filter(|_| e.is_valid()) else {
                if self.tags[slot] != EMPTY_TAG {
                    return Err(at("an empty slot has a tag".into()));
                }
                continue;
            };
            live[size] += 1;
            splintered |= e.granule() != e.page_size();
            if self.set_of(e.vpn()) != slot / self.ways {
                return Err(at(format!(
                    "page {:#x} belongs in set {}, not {}",
                    e.vpn(),
                    self.set_of(e.vpn()),
                    slot / self.ways
                )));
            }
            if self.tags[slot] != e.vpn() {
                return Err(at(format!(
                    "tag {:#x} is not the entry's page {:#x}",
                    self.tags[slot],
                    e.vpn()
                )));
            }
            let owner = if e.is_global() {
                u32::MAX
            } else {
                u32::from(e.asid().as_u16())
            };
            if !seen.insert((e.vpn(), shift, owner)) {
                return Err(at(format!(
                    "page {:#x} of ASID {} is cached twice",
                    e.vpn(),
                    e.asid().as_u16()
                )));
            }
        }
        if live != self.live {
            return Err(format!(
                "per-size entry counts {:?} are not the slots' {:?}",
                &self.live[..self.n_shifts],
                &live[..self.n_shifts]
            ));
        }
        if splintered && !self.splinters {
            return Err("holds splintered entries but is not marked so".into());
        }
        self.victims.check_restored(&fresh.victims)
    }

    /// Whether `slot` is a slot of this array holding a valid entry.
    pub(crate) fn holds_slot(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|e| e.is_valid())
    }
}

/// Raw access for tests that forge restored states.
#[cfg(test)]
impl TlbArray {
    pub(crate) fn forge_slot(&mut self, slot: usize) -> (&mut TlbEntry, &mut u64) {
        (&mut self.slots[slot].0, &mut self.tags[slot])
    }
    pub(crate) fn forge_live(&mut self) -> &mut [u32; MAX_SIZES_PER_ARRAY] {
        &mut self.live
    }
    pub(crate) fn forge_victims(&mut self) -> &mut Victims {
        &mut self.victims
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;
    use crate::mmu::Replacement;

    fn entry(asid: u16, vpn: u64, size: PageSize) -> TlbEntry {
        let frame = PhysAddr::new((vpn + 1) << size.shift()).expect("fits");
        TlbEntry::new(
            Asid::new(asid),
            VirtAddr::new(vpn << size.shift()),
            size,
            frame,
        )
    }

    /// The next state of the tests' 64-bit linear congruential draw
    /// (Knuth's MMIX constants): a seeded, repeatable stream of probes.
    fn lcg_next(x: u64) -> u64 {
        x.wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
    }

    /// A page drawn from `x` among four times an array's `entries` page
    /// numbers: 2 MiB one time in four when `two_sizes`, else 4 KiB; its
    /// number, size and address.
    fn random_page(x: u64, entries: u32, two_sizes: bool) -> (u64, PageSize, VirtAddr) {
        let vpn = (x >> 20) % (4 * u64::from(entries));
        let size = if two_sizes && (x >> 40).is_multiple_of(4) {
            PageSize::SIZE_2M
        } else {
            PageSize::SIZE_4K
        };
        (vpn, size, VirtAddr::new(vpn << size.shift()))
    }

    fn array(entries: u32, ways: u32, policy: Replacement, sizes: &[PageSize]) -> TlbArray {
        let mut config = TlbArrayConfig::new(entries, Some(ways), sizes);
        config.replacement = policy;
        TlbArray::new(&config, 1)
    }

    #[test]
    fn set_index_wraps_for_non_power_of_two_sets() {
        let mut a = array(12, 4, Replacement::Lru, &[PageSize::SIZE_4K]);
        assert_eq!(a.sets(), 3);
        // vpns 0, 3, 6, 9, 12 all map to set 0: the fifth evicts the LRU (vpn 0).
        for vpn in [0, 3, 6, 9] {
            assert_eq!(a.insert(entry(1, vpn, PageSize::SIZE_4K)), Inserted::Filled);
        }
        let evicted = a.insert(entry(1, 12, PageSize::SIZE_4K));
        assert_eq!(evicted, Inserted::Evicted(entry(1, 0, PageSize::SIZE_4K)));
        assert!(a.lookup(Asid::new(1), VirtAddr::new(0)).is_none());
        assert!(a.lookup(Asid::new(1), VirtAddr::new(12 << 12)).is_some());
        // Other sets untouched.
        assert_eq!(a.insert(entry(1, 1, PageSize::SIZE_4K)), Inserted::Filled);
    }

    /// The shaped lookups (the presets' way counts, sets a power of two,
    /// one size or several) take the slots the general search takes: an
    /// array and its copy made to search the general way, filled alike
    /// (entries of two address spaces, both sizes, sets overfull so that
    /// evictions happen), answer every probe alike and stay alike.
    #[test]
    fn shaped_lookups_equal_the_general_search() {
        let one = &[PageSize::SIZE_4K][..];
        let two = &[PageSize::SIZE_4K, PageSize::SIZE_2M][..];
        for (entries, ways, sizes, shape) in [
            (64, 4, one, 1),
            (32, 8, one, 2),
            (96, 12, one, 3),
            (64, 4, two, 4),
            (32, 8, two, 5),
            (1536, 12, two, 6),
        ] {
            let mut shaped = array(entries, ways, Replacement::TreePlru, sizes);
            assert_eq!(
                shaped.shape, shape,
                "{entries} entries, {ways} ways, {sizes:?}"
            );
            let mut general = shaped.clone();
            general.shape = SHAPE_GENERAL;
            let mut x = 0x9e37_79b9_u64;
            for step in 0..4000u64 {
                x = lcg_next(x);
                let asid = (x >> 60) as u16 & 1;
                let (vpn, size, va) = random_page(x, entries, sizes.len() > 1);
                let got = shaped.lookup(Asid::new(asid), va);
                assert_eq!(got, general.lookup(Asid::new(asid), va), "step {step}");
                if got.is_none() && !step.is_multiple_of(3) {
                    let e = entry(asid, vpn, size);
                    assert_eq!(shaped.insert(e), general.insert(e), "step {step}");
                }
            }
            assert!(shaped.entries().eq(general.entries()));
            assert!(!shaped.is_empty());
        }
    }

    /// A shaped array of two sizes holding entries of its first size alone
    /// (every slot a 4 KiB entry: the zipf row's second level; first
    /// empty, then half full, then full) takes the one-size search of
    /// `lookup_sizes`; it answers probes of both sizes, hits and misses, as
    /// the general search does, and stays alike as entries of the second
    /// size come in (the general loop's case then).
    #[test]
    fn arrays_of_their_first_size_alone_equal_the_general_search() {
        let two = &[PageSize::SIZE_4K, PageSize::SIZE_2M][..];
        for (entries, ways) in [(64, 4), (32, 8), (1536, 12)] {
            let mut shaped = array(entries, ways, Replacement::TreePlru, two);
            assert_ne!(shaped.shape, SHAPE_GENERAL);
            let mut general = shaped.clone();
            general.shape = SHAPE_GENERAL;
            let probe_both = |shaped: &mut TlbArray, general: &mut TlbArray| {
                for vpn in 0..4 * u64::from(entries) {
                    for (asid, size) in [
                        (1, PageSize::SIZE_4K),
                        (2, PageSize::SIZE_4K),
                        (1, PageSize::SIZE_2M),
                    ] {
                        let va = VirtAddr::new(vpn << size.shift());
                        let got = shaped.lookup(Asid::new(asid), va);
                        assert_eq!(got, general.lookup(Asid::new(asid), va), "{va:?}");
                    }
                }
            };
            probe_both(&mut shaped, &mut general);
            for vpn in 0..u64::from(entries) {
                let e = entry(1, vpn * 3, PageSize::SIZE_4K);
                assert_eq!(shaped.insert(e), general.insert(e));
                if vpn + 1 == u64::from(entries) / 2 {
                    probe_both(&mut shaped, &mut general);
                }
            }
            assert_eq!(shaped.live[0] as usize, shaped.slots.len());
            probe_both(&mut shaped, &mut general);
            let mut x = 0x2545_f491_u64;
            for step in 0..4000u64 {
                x = lcg_next(x);
                let asid = 1 + ((x >> 61) as u16 & 1);
                let (vpn, size, va) = random_page(x, entries, true);
                let got = shaped.lookup(Asid::new(asid), va);
                assert_eq!(got, general.lookup(Asid::new(asid), va), "step {step}");
                // Entries of the second size only late, so that most
                // probes find the array full of the first.
                if got.is_none() && step >= 3000 && step.is_multiple_of(5) {
                    let e = entry(asid, vpn, size);
                    assert_eq!(shaped.insert(e), general.insert(e), "step {step}");
                }
            }
            assert!(shaped.entries().eq(general.entries()));
        }
    }

    #[test]
    fn refresh_in_place_does_not_duplicate() {
        let mut a = array(4, 4, Replacement::Lru, &[PageSize::SIZE_4K]);
        a.insert(entry(1, 5, PageSize::SIZE_4K));
        assert_eq!(
            a.insert(entry(1, 5, PageSize::SIZE_4K).with_dirty(true)),
            Inserted::Refreshed
        );
        assert_eq!(a.entries().count(), 1);
        let slot = a
            .lookup(Asid::new(1), VirtAddr::new(5 << 12))
            .expect("present");
        assert!(a.entry(slot).is_dirty());
        // Another ASID is another slot.
        assert_eq!(a.insert(entry(2, 5, PageSize::SIZE_4K)), Inserted::Filled);
        assert_eq!(a.entries().count(), 2);
    }

    #[test]
    fn multi_size_array_probes_each_size() {
        let mut a = array(
            16,
            4,
            Replacement::TreePlru,
            &[PageSize::SIZE_4K, PageSize::SIZE_2M],
        );
        a.insert(entry(1, 3, PageSize::SIZE_2M));
        a.insert(entry(1, 7, PageSize::SIZE_4K));
        let slot = a
            .lookup(Asid::new(1), VirtAddr::new((3 << 21) + 0x1234))
            .expect("2M hit");
        assert_eq!(a.entry(slot).page_size(), PageSize::SIZE_2M);
        assert!(a.lookup(Asid::new(1), VirtAddr::new(7 << 12)).is_some());
        assert!(a.lookup(Asid::new(1), VirtAddr::new(8 << 12)).is_none());
        assert_eq!(a.granule_for(PageSize::SIZE_1G), Some(PageSize::SIZE_2M));
        assert_eq!(a.granule_for(PageSize::from_bytes(1024).expect("1K")), None);
    }

    #[test]
    fn a_page_number_of_one_size_does_not_match_another_size() {
        // Regression: the 4 KiB page 0 once matched the 1 GiB probe of page 0.
        let mut a = array(
            16,
            16,
            Replacement::Lru,
            &[PageSize::SIZE_4K, PageSize::SIZE_1G],
        );
        a.insert(entry(1, 0, PageSize::SIZE_4K));
        assert!(a.lookup(Asid::new(1), VirtAddr::new(0x40_1000)).is_none());
        assert!(a.lookup(Asid::new(1), VirtAddr::new(0x123)).is_some());
    }

    #[test]
    fn invalidate_page_removes_every_size_and_splinters() {
        let mut a = array(64, 64, Replacement::Random, &[PageSize::SIZE_4K]);
        let big = entry(1, 1, PageSize::SIZE_2M); // covers 0x20_0000..0x40_0000
        for offset in [0u64, 0x5000, 0x1f_f000] {
            let va = VirtAddr::new(0x20_0000 + offset);
            a.insert(big.splinter(va, PageSize::SIZE_4K));
        }
        a.insert(entry(1, 0x400, PageSize::SIZE_4K)); // 0x40_0000, another page
        a.insert(entry(2, 0x200, PageSize::SIZE_4K)); // other ASID, same address
        assert_eq!(a.entries().count(), 5);
        assert_eq!(a.invalidate_page(Asid::new(1), VirtAddr::new(0x20_0000)), 3);
        assert_eq!(a.entries().count(), 2);
        assert_eq!(a.retain(|e| e.asid() != Asid::new(2)), 1);
        assert_eq!(a.entries().count(), 1);
    }

    #[test]
    fn global_entries_match_any_asid_and_fall_to_page_invalidation() {
        let mut a = array(8, 2, Replacement::Lru, &[PageSize::SIZE_4K]);
        a.insert(entry(1, 9, PageSize::SIZE_4K).with_global(true));
        assert!(a.lookup(Asid::new(7), VirtAddr::new(9 << 12)).is_some());
        assert_eq!(a.invalidate_page(Asid::new(7), VirtAddr::new(9 << 12)), 1);
        assert!(a.lookup(Asid::new(1), VirtAddr::new(9 << 12)).is_none());
    }

    #[test]
    fn a_restored_indexed_array_chooses_as_the_saved_one() {
        // A 64-entry fully associative LRU array (indexed, recency lists),
        // saved as checkpoints save it and restored without its index.
        let mut saved = array(64, 64, Replacement::Lru, &[PageSize::SIZE_4K]);
        let mut x = 7u64;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % 100
        };
        for _ in 0..300 {
            saved.insert(entry(1, next(), PageSize::SIZE_4K));
            let _ = saved.lookup(Asid::new(1), VirtAddr::new(next() << 12));
        }
        let bytes = postcard::to_allocvec(&saved).expect("serialises");
        let mut restored: TlbArray = postcard::from_bytes(&bytes).expect("deserialises");
        assert!(restored.index.is_none(), "the index is never saved");
        for step in 0..300 {
            let va = VirtAddr::new(next() << 12);
            assert_eq!(
                restored.lookup(Asid::new(1), va),
                saved.lookup(Asid::new(1), va),
                "lookup {step}"
            );
            let e = entry(1, next(), PageSize::SIZE_4K);
            assert_eq!(restored.insert(e), saved.insert(e), "insert {step}");
            assert!(restored.index.is_some(), "the first fill rebuilds it");
        }
        let got: Vec<_> = restored.entries().collect();
        let want: Vec<_> = saved.entries().collect();
        assert_eq!(got, want);
    }

    /// One operation of the property test.
    #[derive(Clone, Debug)]
    enum Op {
        Lookup {
            asid: u16,
            va: u64,
        },
        Insert {
            asid: u16,
            va: u64,
            size: u8,
            global: bool,
            dirty: bool,
        },
        Invalidate {
            asid: u16,
            va: u64,
        },
        /// Pages invalidated in one [`TlbArray::invalidate_pages`]; a page
        /// whose flag is set is passed as unfilled when the reference finds
        /// nothing for it at its turn (what the kernel knows of it).
        InvalidateMany(Vec<(u16, u64, bool)>),
        FlushAsid(u16),
        FlushNonGlobal,
        /// Every array saved as checkpoints save it and restored (no index:
        /// it is rebuilt from the slots at the first fill).
        Restore,
    }

    fn va_strategy() -> impl proptest::strategy::Strategy<Value = u64> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..96).prop_map(|p| p << 12),
            (0u64..4, 0u64..4).prop_map(|(k, j)| (k << 21) | (j << 12) | 0x10),
            (0u64..2).prop_map(|k| (k << 30) | 0x20_0000),
        ]
    }

    fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0u16..3, va_strategy()).prop_map(|(asid, va)| Op::Lookup { asid, va }),
            6 => (0u16..3, va_strategy(), 0u8..3, proptest::bool::weighted(0.1), any::<bool>())
                .prop_map(|(asid, va, size, global, dirty)| Op::Insert { asid, va, size, global, dirty }),
            1 => (0u16..3, va_strategy()).prop_map(|(asid, va)| Op::Invalidate { asid, va }),
            1 => proptest::collection::vec((0u16..3, va_strategy(), any::<bool>()), 0..12)
                .prop_map(Op::InvalidateMany),
            1 => (0u16..3).prop_map(Op::FlushAsid),
            1 => Just(Op::FlushNonGlobal),
            1 => Just(Op::Restore),
        ]
    }

    /// An entry for `va` of the `size`-th of 4 KiB, 2 MiB, 1 GiB, stored at
    /// the granule `array` would store it at (splintered if needed), as
    /// [`Tlb`](crate::mmu::Tlb) does; `None` if the array cannot hold it.
    fn piece(
        array: &TlbArray,
        asid: u16,
        va: u64,
        size: u8,
        global: bool,
        dirty: bool,
    ) -> Option<TlbEntry> {
        let size = [PageSize::SIZE_4K, PageSize::SIZE_2M, PageSize::SIZE_1G][usize::from(size)];
        let va = VirtAddr::new(va);
        let frame =
            PhysAddr::new(((va.as_u64() >> size.shift()) + 1) << size.shift()).expect("fits");
        let whole = TlbEntry::new(Asid::new(asid), va, size, frame)
            .with_global(global)
            .with_dirty(dirty);
        let granule = array.granule_for(size)?;
        Some(if granule == size {
            whole
        } else {
            whole.splinter(va, granule)
        })
    }

    fn geometry() -> impl proptest::strategy::Strategy<Value = (u32, u32)> {
        use proptest::prelude::*;
        prop_oneof![
            (1u32..40).prop_map(|w| (w, w)),
            Just((64, 64)),
            Just((100, 100)),
            (17u32..21).prop_map(|w| (2 * w, w)),
            (17u32..21).prop_map(|w| (3 * w, w)),
            Just((12, 4)),
            Just((16, 16)),
            // The presets' shapes: sets of 2, 4, 8 and 12 ways.
            Just((8, 2)),
            Just((64, 4)),
            Just((32, 8)),
            Just((96, 12)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// The array (indexed or scanning, whatever its way count) makes
        /// every choice of the scanning array it replaced: the same slot on
        /// a lookup, the same outcome and way on a fill, the same entries
        /// removed by invalidations, the same contents after every step. A
        /// fourth array fills through `fill_absent` whenever the entry is
        /// not global and has no slot yet (as the TLB's fills after a miss
        /// do), and makes the same choices too.
        #[test]
        fn same_choices_as_the_scanning_array(
            (entries, ways) in geometry(),
            policy in 0u8..3,
            sizes in 0usize..3,
            seed in 0u64..4,
            ops in proptest::collection::vec(op_strategy(), 1..300),
        ) {
            let held: &[PageSize] = match sizes {
                0 => &[PageSize::SIZE_4K],
                1 => &[PageSize::SIZE_4K, PageSize::SIZE_2M],
                _ => &[PageSize::SIZE_2M, PageSize::SIZE_4K, PageSize::SIZE_1G],
            };
            let mut config = TlbArrayConfig::new(entries, Some(ways), held);
            config.replacement = [Replacement::Lru, Replacement::TreePlru, Replacement::Random][usize::from(policy)];
            let mut reference = crate::mmu::reference_array::RefArray::new(&config, seed);
            let mut arrays = [
                TlbArray::new(&config, seed),
                TlbArray::build(&config, seed, true),
                TlbArray::build(&config, seed, false),
                TlbArray::new(&config, seed),
            ];
            for op in &ops {
                match *op {
                    Op::Lookup { asid, va } => {
                        let want = reference.lookup(Asid::new(asid), VirtAddr::new(va));
                        for a in &mut arrays {
                            proptest::prop_assert_eq!(a.lookup(Asid::new(asid), VirtAddr::new(va)), want, "{:?}", op);
                        }
                    }
                    Op::Insert { asid, va, size, global, dirty } => {
                        let Some(e) = piece(&arrays[0], asid, va, size, global, dirty) else {
                            continue;
                        };
                        let absent = !e.is_global() && !reference.entries().any(|x| x.same_slot(&e));
                        let want = reference.insert(e);
                        let [plain @ .., last] = &mut arrays;
                        for a in plain {
                            proptest::prop_assert_eq!(a.insert(e), want, "{:?}", op);
                        }
                        if absent {
                            let evicted = last.fill_absent(e);
                            proptest::prop_assert!(!matches!(want, Inserted::Refreshed), "{:?}", op);
                            proptest::prop_assert_eq!(evicted, matches!(want, Inserted::Evicted(_)), "{:?}", op);
                        } else {
                            proptest::prop_assert_eq!(last.insert(e), want, "{:?}", op);
                        }
                    }
                    Op::Invalidate { asid, va } => {
                        let want = reference.invalidate_page(Asid::new(asid), VirtAddr::new(va));
                        for a in &mut arrays {
                            proptest::prop_assert_eq!(a.invalidate_page(Asid::new(asid), VirtAddr::new(va)), want);
                        }
                    }
                    Op::InvalidateMany(ref pages) => {
                        let mut want = 0;
                        let mut each = Vec::new();
                        for &(asid, va, skip) in pages {
                            let found = reference.invalidate_page(Asid::new(asid), VirtAddr::new(va));
                            want += found;
                            each.push((Asid::new(asid), VirtAddr::new(va), skip && found == 0));
                        }
                        for a in &mut arrays {
                            proptest::prop_assert_eq!(a.invalidate_pages(each.iter().copied()), want, "{:?}", op);
                        }
                    }
                    Op::FlushAsid(asid) => {
                        let keep = |e: &TlbEntry| e.is_global() || e.asid() != Asid::new(asid);
                        let want = reference.retain(keep);
                        for a in &mut arrays {
                            proptest::prop_assert_eq!(a.retain(keep), want);
                        }
                    }
                    Op::FlushNonGlobal => {
                        let want = reference.retain(TlbEntry::is_global);
                        for a in &mut arrays {
                            proptest::prop_assert_eq!(a.retain(TlbEntry::is_global), want);
                        }
                    }
                    Op::Restore => {
                        for a in &mut arrays {
                            let bytes = postcard::to_allocvec(&*a).expect("serialises");
                            *a = postcard::from_bytes(&bytes).expect("deserialises");
                        }
                    }
                }
                let want: Vec<TlbEntry> = reference.entries().copied().collect();
                for a in &arrays {
                    let got: Vec<TlbEntry> = a.entries().copied().collect();
                    proptest::prop_assert_eq!(&got, &want, "after {:?}", op);
                    proptest::prop_assert_eq!(a.len(), want.len());
                }
            }
            // A rebuilt index answers as the maintained one.
            let mut rebuilt = arrays[1].clone();
            rebuilt.rebuild_index();
            for page in 0..96u64 {
                for asid in 0..3 {
                    let va = VirtAddr::new(page << 12);
                    proptest::prop_assert_eq!(
                        rebuilt.lookup(Asid::new(asid), va),
                        arrays[1].lookup(Asid::new(asid), va)
                    );
                }
            }
        }
    }
}
