//! One set-associative array of TLB entries: [`TlbArray`].
//!
//! An array has `entries = sets x ways` slots and holds one or more page
//! sizes. A lookup probes, for each size it holds, the set that size's page
//! number selects (`vpn % sets`, computed with a mask when `sets` is a power
//! of two), comparing every way. Fully associative is simply `ways ==
//! entries` (one set). Empty ways are filled first; otherwise the
//! [`Replacement`](super::Replacement) policy picks the victim.
//!
//! This module owns the slots and their replacement state; which arrays make
//! a hierarchy, and what is counted, belongs to [`Tlb`](super::Tlb).

use crate::addr::{Asid, PageSize, VirtAddr};
use serde::{Deserialize, Serialize};

use super::entry::TlbEntry;
use super::replacement::Victims;
use super::tlb_config::{Holds, MAX_SIZES_PER_ARRAY, TlbArrayConfig};

/// The tag of an empty slot. A real page number equals it only with 1-byte
/// pages at the very last address, and then the full entry compare rejects it.
const EMPTY_TAG: u64 = u64::MAX;

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

/// One set-associative array of TLB entries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TlbArray {
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

impl TlbArray {
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

    /// Marks `slot` (from [`TlbArray::lookup`], still holding the same
    /// entry) used, exactly as a lookup that finds it there does.
    #[inline(always)]
    pub fn touch(&mut self, slot: usize) {
        self.victims.touch(slot / self.ways, slot % self.ways);
    }

    /// The entry in `slot` (from [`TlbArray::lookup`]).
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
}
