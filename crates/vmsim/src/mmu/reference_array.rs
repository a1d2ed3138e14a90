//! The set-associative array as it was before fully associative arrays got
//! an index (every lookup and fill compared every way of the set, LRU was a
//! scan of per-way stamps): kept, unchanged, as the reference model that the
//! property tests of [`TlbArray`](super::TlbArray) compare every choice with.
//! Test builds only.

#![allow(dead_code, missing_docs)]

use crate::addr::{Asid, PageSize, VirtAddr};

use super::entry::TlbEntry;
use super::replacement::{Replacement, XorShift64Star};
use super::tlb_array::Inserted;
use super::tlb_config::{Holds, MAX_SIZES_PER_ARRAY, TlbArrayConfig};

/// The tag of an empty slot. A real page number equals it only with 1-byte
/// pages at the very last address, and then the full entry compare rejects it.
const EMPTY_TAG: u64 = u64::MAX;

/// One set-associative array of TLB entries.
#[derive(Clone, Debug)]
pub struct RefArray {
    /// Per slot, the page number of its entry, or [`EMPTY_TAG`]: the compare
    /// loop reads only this dense array, and the entry only on a tag match.
    tags: Vec<u64>,
    slots: Vec<TlbEntry>,
    ways: usize,
    sets: usize,
    /// `sets - 1` when `sets` is a power of two (then `pow2` is true).
    set_mask: u64,
    pow2: bool,
    /// Page-size shifts held, in probe order; the first `n_shifts` are used.
    shifts: [u8; MAX_SIZES_PER_ARRAY],
    n_shifts: usize,
    victims: Victims,
    /// Whether any splintered entry may be present (then a page invalidation
    /// must scan every slot: the pieces of a large page sit in many sets).
    splinters: bool,
    name: String,
    holds: Holds,
}

impl RefArray {
    /// Builds an empty array from a validated config; `seed` feeds random replacement.
    ///
    /// # Panics
    /// If the config was not validated (zero ways, entries not divisible by
    /// ways, no page size): that is a bug in the caller.
    #[must_use]
    pub fn new(config: &TlbArrayConfig, seed: u64) -> Self {
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
            slots: vec![TlbEntry::default(); entries],
            ways,
            sets,
            set_mask: sets as u64 - 1,
            pow2: sets.is_power_of_two(),
            shifts,
            n_shifts: config.page_sizes.len().min(MAX_SIZES_PER_ARRAY),
            victims: Victims::new(config.replacement, sets, ways, seed),
            splinters: false,
            name: config.name.clone(),
            holds: config.holds,
        }
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

    /// The page sizes held, in probe order.
    pub fn page_sizes(&self) -> impl Iterator<Item = PageSize> + '_ {
        self.shifts[..self.n_shifts]
            .iter()
            .filter_map(|&s| PageSize::from_shift(u32::from(s)).ok())
    }

    /// The largest size the array holds that is not larger than `size`: the
    /// granule an entry of `size` is stored at, or `None` if it cannot be held.
    #[must_use]
    pub fn granule_for(&self, size: PageSize) -> Option<PageSize> {
        self.page_sizes().filter(|held| *held <= size).max()
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
        for &shift in &self.shifts[..self.n_shifts] {
            let vpn = va.as_u64() >> shift;
            let set = self.set_of(vpn);
            let base = set * self.ways;
            let tags = &self.tags[base..base + self.ways];
            for (way, &tag) in tags.iter().enumerate() {
                if tag == vpn && self.slots[base + way].matches(vpn, u32::from(shift), asid) {
                    self.victims.touch(set, way);
                    return Some(base + way);
                }
            }
        }
        None
    }

    /// Marks `slot` (from `lookup`, still holding the same
    /// entry) used, exactly as a lookup that finds it there does.
    #[inline(always)]
    pub fn touch(&mut self, slot: usize) {
        self.victims.touch(slot / self.ways, slot % self.ways);
    }

    /// The entry in `slot` (from `lookup`).
    #[inline(always)]
    #[must_use]
    pub fn entry(&self, slot: usize) -> &TlbEntry {
        &self.slots[slot]
    }

    /// Stores `entry`, whose granule must be a size this array holds.
    /// An entry for the same page and address space is overwritten in place.
    pub fn insert(&mut self, entry: TlbEntry) -> Inserted {
        debug_assert!(
            self.page_sizes().any(|s| s == entry.granule()),
            "{entry:?} not held by {}",
            self.name
        );
        if entry.granule() != entry.page_size() {
            self.splinters = true;
        }
        let set = self.set_of(entry.vpn());
        let base = set * self.ways;
        // One pass over the dense tags: the same page's slot if present
        // (refresh in place), else the first empty way.
        let mut same = None;
        let mut empty = None;
        for (way, &tag) in self.tags[base..base + self.ways].iter().enumerate() {
            if tag == entry.vpn() && self.slots[base + way].same_slot(&entry) {
                same = Some(way);
                break;
            }
            if tag == EMPTY_TAG && empty.is_none() && !self.slots[base + way].is_valid() {
                empty = Some(way);
            }
        }
        let (way, outcome) = match (same, empty) {
            (Some(way), _) => (way, Inserted::Refreshed),
            (None, Some(way)) => (way, Inserted::Filled),
            (None, None) => {
                let way = self.victims.victim(set);
                (way, Inserted::Evicted(self.slots[base + way]))
            }
        };
        self.slots[base + way] = entry;
        self.tags[base + way] = entry.vpn();
        self.victims.touch(set, way);
        outcome
    }

    fn clear(&mut self, slot: usize) {
        self.slots[slot] = TlbEntry::default();
        self.tags[slot] = EMPTY_TAG;
        self.victims.forget(slot / self.ways, slot % self.ways);
    }

    /// Removes every entry of `asid` (or global) whose page holds `va`, at any
    /// page size, splintered pieces included. Returns how many were removed.
    pub fn invalidate_page(&mut self, asid: Asid, va: VirtAddr) -> usize {
        let doomed = |e: &TlbEntry| e.page_covers(va) && (e.asid() == asid || e.is_global());
        let mut removed = 0;
        if self.splinters {
            return self.retain(|e| !doomed(e));
        }
        for i in 0..self.n_shifts {
            let vpn = va.as_u64() >> self.shifts[i];
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
        for slot in 0..self.slots.len() {
            let e = self.slots[slot];
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
        self.slots.iter().filter(|e| e.is_valid())
    }
}

/// Per-set replacement state of one array of `sets x ways` slots.
#[derive(Clone, Debug)]
pub struct Victims {
    policy: Replacement,
    ways: usize,
    /// LRU: one stamp per slot, from `clock`.
    stamps: Vec<u64>,
    clock: u64,
    /// Tree-PLRU: ways padded to a power of two; node `n` (1-based heap
    /// order) of set `s` is bit `n % 64` of word `s * words + n / 64`.
    padded: usize,
    words: usize,
    bits: Vec<u64>,
    /// Tree-PLRU with at most 64 leaves: per way, the node bits on its path
    /// (`path_mask`) and the values a touch writes there (`path_bits`), so a
    /// touch is one masked store.
    path_mask: Vec<u64>,
    path_bits: Vec<u64>,
    rng: XorShift64Star,
}

impl Victims {
    /// State for `sets` sets of `ways` ways under `policy`; `seed` feeds the
    /// random policy and is ignored by the others.
    #[must_use]
    pub fn new(policy: Replacement, sets: usize, ways: usize, seed: u64) -> Self {
        let padded = ways.next_power_of_two();
        let words = padded.div_ceil(64);
        let (mut path_mask, mut path_bits) = (Vec::new(), Vec::new());
        if policy == Replacement::TreePlru && padded <= 64 {
            for way in 0..ways {
                let (mut mask, mut bits) = (0u64, 0u64);
                let (mut node, mut half) = (1, padded / 2);
                while half > 0 {
                    let went_right = way & half != 0;
                    mask |= 1 << node;
                    bits |= u64::from(!went_right) << node;
                    node = 2 * node + usize::from(went_right);
                    half /= 2;
                }
                path_mask.push(mask);
                path_bits.push(bits);
            }
        }
        Self {
            policy,
            ways,
            stamps: if policy == Replacement::Lru {
                vec![0; sets * ways]
            } else {
                Vec::new()
            },
            clock: 0,
            padded,
            words,
            bits: if policy == Replacement::TreePlru {
                vec![0; sets * words]
            } else {
                Vec::new()
            },
            path_mask,
            path_bits,
            rng: XorShift64Star::new(seed),
        }
    }

    /// The policy in force.
    #[must_use]
    pub const fn policy(&self) -> Replacement {
        self.policy
    }

    /// Records a use (hit or fill) of `way` in `set`.
    #[inline(always)]
    pub fn touch(&mut self, set: usize, way: usize) {
        match self.policy {
            Replacement::Lru => {
                self.clock += 1;
                self.stamps[set * self.ways + way] = self.clock;
            }
            Replacement::TreePlru => self.plru_touch(set, way),
            Replacement::Random => {}
        }
    }

    /// Marks `way` of `set` as the least recently used (after an
    /// invalidation), so LRU-ordered searches treat it as oldest.
    #[inline]
    pub fn forget(&mut self, set: usize, way: usize) {
        if self.policy == Replacement::Lru {
            self.stamps[set * self.ways + way] = 0;
        }
    }

    /// The way of `set` to evict when every way is in use.
    #[inline]
    pub fn victim(&mut self, set: usize) -> usize {
        match self.policy {
            Replacement::Lru => {
                let row = &self.stamps[set * self.ways..(set + 1) * self.ways];
                let mut best = 0;
                for (way, &stamp) in row.iter().enumerate() {
                    if stamp < row[best] {
                        best = way;
                    }
                }
                best
            }
            Replacement::TreePlru => self.plru_victim(set),
            Replacement::Random => self.rng.below(self.ways),
        }
    }

    #[inline(always)]
    fn plru_bit(&self, set: usize, node: usize) -> bool {
        self.bits[set * self.words + node / 64] >> (node % 64) & 1 == 1
    }

    #[inline(always)]
    fn plru_set(&mut self, set: usize, node: usize, right: bool) {
        let word = &mut self.bits[set * self.words + node / 64];
        let bit = 1u64 << (node % 64);
        if right {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Points every node on the path to `way` at the other half.
    #[inline(always)]
    fn plru_touch(&mut self, set: usize, way: usize) {
        if self.words == 1 {
            let word = &mut self.bits[set];
            *word = (*word & !self.path_mask[way]) | self.path_bits[way];
        } else {
            self.plru_touch_walk(set, way);
        }
    }

    /// The same as [`Self::plru_touch`], node by node (trees over 64 leaves).
    fn plru_touch_walk(&mut self, set: usize, way: usize) {
        let mut node = 1;
        let mut half = self.padded / 2;
        while half > 0 {
            let went_right = way & half != 0;
            self.plru_set(set, node, !went_right);
            node = 2 * node + usize::from(went_right);
            half /= 2;
        }
    }

    /// Follows the bits from the root, never entering an all-padding subtree.
    fn plru_victim(&mut self, set: usize) -> usize {
        let mut node = 1;
        let mut low = 0;
        let mut half = self.padded / 2;
        while half > 0 {
            let right = self.plru_bit(set, node) && low + half < self.ways;
            if right {
                low += half;
            }
            node = 2 * node + usize::from(right);
            half /= 2;
        }
        low
    }
}
