//! What the translation hardware counts: [`Counters`] and its parts.
//!
//! Every field is a plain `u64` bumped in place (no hashing, no allocation
//! after construction). Each part is owned by the component that observes
//! the event: the [`Tlb`](super::Tlb) counts lookups, hits, misses, fills
//! and flushes ([`TlbCounters`]); the [`WalkCache`](super::WalkCache) counts
//! its probes ([`WalkCacheCounters`]); the MMU counts walks, the memory
//! references they make and faults ([`WalkCounters`], [`FaultCounters`]).
//! [`Counters`] gathers a snapshot of all of them for reports and computes
//! the effective access time.
//!
//! This module owns the counter layout and the arithmetic over it; it never
//! decides what happened.

use serde::Deserialize;
use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::addr::{PageSize, format_size};
use crate::paging::hashed::ProbeStats;

use super::AccessKind;

/// The most levels a page-table walk can have that the counters track
/// (x86-64 5-level and RISC-V Sv57 have 5; user formats may have up to 8).
pub const MAX_WALK_LEVELS: usize = 8;

/// One counter per page size, indexed by the size's shift (0..=63), so the
/// hot path indexes without a lookup table.
#[derive(Clone, PartialEq, Eq)]
pub struct SizeCounts([u64; 64]);

impl Default for SizeCounts {
    fn default() -> Self {
        Self([0; 64])
    }
}

impl SizeCounts {
    /// Adds one for `size`.
    #[inline(always)]
    pub fn bump(&mut self, size: PageSize) {
        self.bump_shift(size.shift());
    }

    /// Adds one for the page size `1 << shift`.
    #[inline(always)]
    pub fn bump_shift(&mut self, shift: u32) {
        self.0[(shift & 63) as usize] += 1;
    }

    /// Adds `n` for the page size `1 << shift`.
    #[inline]
    pub fn add_shift(&mut self, shift: u32, n: u64) {
        self.0[(shift & 63) as usize] += n;
    }

    /// The count for `size`.
    #[must_use]
    pub fn get(&self, size: PageSize) -> u64 {
        self.0[(size.shift() & 63) as usize]
    }

    /// The sum over all sizes.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counts, smallest page size first.
    pub fn iter(&self) -> impl Iterator<Item = (PageSize, u64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .filter_map(|(shift, &n)| {
                PageSize::from_shift(shift as u32)
                    .ok()
                    .map(|size| (size, n))
            })
    }
}

impl std::fmt::Debug for SizeCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(size, n)| (size.to_string(), n)))
            .finish()
    }
}

/// Serialised as a map from the size as users write it (`"4 KiB"`) to the
/// count for people; as the 64 counts for machines (checkpoints).
impl Serialize for SizeCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return crate::serde_arrays::serialize(&self.0, serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        for (size, n) in self.iter() {
            map.serialize_entry(&format_size(size.bytes()), &n)?;
        }
        map.end()
    }
}

/// Reads back the machine form (the 64 counts).
impl<'de> Deserialize<'de> for SizeCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::serde_arrays::deserialize(d).map(Self)
    }
}

/// Counts of one TLB level.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct LevelCounters {
    /// The level's configured lookup latency in cycles (copied from the config
    /// so the effective access time can be computed from the counters alone).
    pub latency_cycles: u32,
    /// Lookups that probed this level (a level is probed only when every
    /// level above it missed, and only for the access kinds it serves).
    pub lookups: u64,
    /// Hits, by the page size of the mapping that hit.
    pub hits: SizeCounts,
    /// Misses (every probe of this level that found nothing).
    pub misses: u64,
    /// Misses whose translation was later found (by a lower level or a walk),
    /// by the page size it turned out to have. `misses - misses_by_size.total()`
    /// is the misses whose walk faulted.
    pub misses_by_size: SizeCounts,
    /// Entries written into this level (after a miss, or a refresh in place).
    pub fills: u64,
    /// Valid entries evicted to make room.
    pub evictions: u64,
}

impl LevelCounters {
    /// All hits at this level.
    #[must_use]
    pub fn hit_count(&self) -> u64 {
        self.hits.total()
    }

    /// Hits over lookups, or `None` before the first lookup.
    #[must_use]
    pub fn hit_rate(&self) -> Option<f64> {
        (self.lookups > 0).then(|| self.hit_count() as f64 / self.lookups as f64)
    }
}

/// Invalidations, by scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct FlushCounters {
    /// Single-page invalidations (x86 `invlpg`, RISC-V `sfence.vma` with an address).
    pub pages: u64,
    /// Whole-address-space invalidations (x86 `invpcid` single context,
    /// RISC-V `sfence.vma x0, asid`).
    pub asids: u64,
    /// Flushes of every non-global entry (x86 CR3 write without PCIDs).
    pub non_global: u64,
    /// Flushes of everything, global entries included.
    pub all: u64,
    /// Context switches seen (each one flushes when ASID tags are off).
    pub context_switches: u64,
    /// Entries actually removed by all of the above.
    pub entries_removed: u64,
}

/// What the TLB hierarchy counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct TlbCounters {
    /// Translations looked up, by access kind (read, write, execute).
    pub lookups_by_kind: [u64; 3],
    /// Per level, first level first.
    pub levels: Vec<LevelCounters>,
    /// Lookups that missed every level (each one needs a walk).
    pub full_misses: u64,
    /// Invalidations.
    pub flushes: FlushCounters,
}

impl TlbCounters {
    /// All lookups, every kind.
    #[must_use]
    pub fn lookups(&self) -> u64 {
        self.lookups_by_kind.iter().sum()
    }

    /// Lookups of one kind.
    #[must_use]
    pub fn lookups_of(&self, kind: AccessKind) -> u64 {
        self.lookups_by_kind[kind.index()]
    }
}

/// What the page-walk caches count.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct WalkCacheCounters {
    /// Probes (one per walk that consults the caches).
    pub lookups: u64,
    /// Hits by depth: index `d` counts hits that skipped the first `d` levels
    /// of the walk (index 0 is unused).
    pub hits_by_depth: [u64; MAX_WALK_LEVELS],
    /// Probes that found nothing at any depth.
    pub misses: u64,
    /// Entries written.
    pub fills: u64,
    /// Entries removed by invalidations.
    pub entries_removed: u64,
}

impl WalkCacheCounters {
    /// All hits, any depth.
    #[must_use]
    pub fn hits(&self) -> u64 {
        self.hits_by_depth.iter().sum()
    }
}

/// What the page walker counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct WalkCounters {
    /// Translations that missed every TLB level and walked.
    pub walks: u64,
    /// Extra walks made only to set the dirty bit: a write hit a clean TLB
    /// entry, and the hardware walks again to write D into the PTE, as x86 does.
    pub dirty_walks: u64,
    /// Walks (of either kind) that ended in a fault instead of a TLB fill.
    pub faulted: u64,
    /// Walks (not dirty walks) that completed a translation and filled the TLB.
    pub completed: u64,
    /// Entries read by the walker, by level (index 0 = the root table),
    /// walks and dirty walks together.
    pub refs_by_level: [u64; MAX_WALK_LEVELS],
    /// Accessed/dirty bits written back into entries, by level: memory
    /// references too, kept apart so a walk's length is its reads.
    pub ad_writes_by_level: [u64; MAX_WALK_LEVELS],
    /// Probe lengths of inverted or hashed table searches (memory
    /// references per search: anchor or bucket slot plus entries), hits
    /// and misses together. The probes are also in `refs_by_level[0]`.
    /// Empty with radix tables.
    pub probes: ProbeStats,
}

impl WalkCounters {
    /// Entries read by the walker.
    #[must_use]
    pub fn refs(&self) -> u64 {
        self.refs_by_level.iter().sum()
    }

    /// Accessed/dirty write-backs made by the walker.
    #[must_use]
    pub fn ad_writes(&self) -> u64 {
        self.ad_writes_by_level.iter().sum()
    }

    /// The measured average memory references per walk (walks and dirty
    /// walks), or `None` before the first walk.
    #[must_use]
    pub fn refs_per_walk(&self) -> Option<f64> {
        let walks = self.walks + self.dirty_walks;
        (walks > 0).then(|| self.refs() as f64 / walks as f64)
    }
}

/// Faults raised by translation, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct FaultCounters {
    /// A non-present entry somewhere on the walk.
    pub not_present: u64,
    /// A present mapping that forbids the access (write to read-only, user to
    /// supervisor, fetch from no-execute).
    pub protection: u64,
    /// A virtual address outside the format's canonical range.
    pub non_canonical: u64,
    /// An entry with reserved bits set.
    pub reserved_bits: u64,
    /// A superpage entry whose frame is not aligned to its size.
    pub misaligned_superpage: u64,
    /// RISC-V Svade: the accessed or dirty bit would have to be set, so the
    /// hardware faults and leaves it to the OS.
    pub accessed_dirty: u64,
    /// A virtual address wider than a zero-extended format (x86-32, classroom).
    pub too_wide: u64,
    /// An entry pointing to a table outside physical memory.
    pub table_outside_memory: u64,
}

impl FaultCounters {
    /// All faults.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.not_present
            + self.protection
            + self.non_canonical
            + self.reserved_bits
            + self.misaligned_superpage
            + self.accessed_dirty
            + self.too_wide
            + self.table_outside_memory
    }
}

/// A snapshot of every translation counter, for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Counters {
    /// The TLB hierarchy.
    pub tlb: TlbCounters,
    /// The page-walk caches.
    pub walk_cache: WalkCacheCounters,
    /// The walker.
    pub walk: WalkCounters,
    /// Faults.
    pub faults: FaultCounters,
}

impl Counters {
    /// Translations requested (every one starts with a TLB lookup).
    #[must_use]
    pub fn accesses(&self) -> u64 {
        self.tlb.lookups()
    }

    /// Total cycles spent, by the formula of [`Counters::effective_access_time`].
    #[must_use]
    pub fn total_cycles(&self, memory_cycles: f64) -> f64 {
        let tlb: f64 = self
            .tlb
            .levels
            .iter()
            .map(|l| l.lookups as f64 * f64::from(l.latency_cycles))
            .sum();
        tlb + (self.walk.refs() + self.walk.ad_writes() + self.accesses()) as f64 * memory_cycles
    }

    /// The measured effective access time in cycles per access, given the
    /// cost of one memory reference in cycles, or `None` before any access.
    ///
    /// Every access pays the latency of each TLB level it probed (the level
    /// where it hit and every level above it; every level on a miss), one
    /// memory reference for every page-table read or A/D write the walker
    /// made on its behalf, and one memory reference for the data itself:
    ///
    /// `EAT = (sum over levels of lookups x latency + (walk refs + accesses) x memory) / accesses`
    ///
    /// With one TLB level of latency `s`, hit ratio `a`, no walk caches and an
    /// `n`-level table this is the textbook `a(s + m) + (1 - a)(s + (n + 1)m)`.
    /// Pass the memory latency in nanoseconds and the TLB latencies are then
    /// read as nanoseconds too: the formula only adds them.
    #[must_use]
    pub fn effective_access_time(&self, memory_cycles: f64) -> Option<f64> {
        let accesses = self.accesses();
        (accesses > 0).then(|| self.total_cycles(memory_cycles) / accesses as f64)
    }

    /// Per-level page-size breakdown of hits, as (level, size, hits) rows.
    #[must_use]
    pub fn hits_by_level_and_size(&self) -> BTreeMap<(usize, PageSize), u64> {
        let mut rows = BTreeMap::new();
        for (level, counters) in self.tlb.levels.iter().enumerate() {
            for (size, n) in counters.hits.iter() {
                rows.insert((level, size), n);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eat_matches_the_textbook_formula() {
        // One level, latency 1, 80% hits of 100 accesses, 4-level table, memory 100.
        let mut c = Counters::default();
        c.tlb.lookups_by_kind = [100, 0, 0];
        c.tlb.levels.push(LevelCounters {
            latency_cycles: 1,
            lookups: 100,
            ..LevelCounters::default()
        });
        for _ in 0..80 {
            c.tlb.levels[0].hits.bump(PageSize::SIZE_4K);
        }
        c.tlb.levels[0].misses = 20;
        c.walk.walks = 20;
        c.walk.refs_by_level[..4].copy_from_slice(&[20, 20, 20, 20]);
        let eat = c.effective_access_time(100.0).expect("accesses were made");
        let textbook = 0.8 * (1.0 + 100.0) + 0.2 * (1.0 + 5.0 * 100.0);
        assert!((eat - textbook).abs() < 1e-9, "{eat} vs {textbook}");
        assert_eq!(c.walk.refs_per_walk(), Some(4.0));
        assert_eq!(Counters::default().effective_access_time(100.0), None);
    }

    #[test]
    fn size_counts_serialise_by_size_name() {
        let mut s = SizeCounts::default();
        s.bump(PageSize::SIZE_4K);
        s.bump(PageSize::SIZE_4K);
        s.bump(PageSize::SIZE_1G);
        let text = toml::to_string(&s).expect("serialises");
        assert_eq!(text, "\"4 KiB\" = 2\n\"1 GiB\" = 1\n");
        assert_eq!(s.total(), 3);
        assert_eq!(s.get(PageSize::SIZE_2M), 0);
    }
}
