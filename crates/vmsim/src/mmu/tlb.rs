//! The TLB hierarchy of one core: [`Tlb`].
//!
//! A [`Tlb`] is a list of levels, each a set of [`TlbArray`]s probed
//! together (split instruction and data arrays, per-page-size arrays, or one
//! unified array), plus the core's [`WalkCache`]. A lookup probes the first
//! level's arrays that serve the access kind, then the next level's, and
//! stops at the first hit.
//!
//! Fill policy (documented choice): a translation found by a walk is written
//! into *every* level that can hold it, and one found in a lower level is
//! copied into every level above it. Evictions are not propagated
//! (a level-2 eviction leaves a level-1 copy), so the hierarchy is inclusive
//! on fill but not enforced inclusive, like Intel's second-level TLB.
//! A page larger than every size a level holds is cached there splintered
//! into pieces of the largest smaller size it holds; if it holds none, that
//! level does not cache it.
//!
//! ASIDs: with tags on, entries carry the address space that loaded them and
//! match only it (or any, when global). With tags off every entry is stored
//! and looked up under ASID 0, so a missing flush really does leave the
//! previous process's entries usable, and [`Tlb::context_switch`] flushes
//! the non-global entries as a CR3 write without PCIDs does. Likewise a
//! remapping that is not followed by an invalidation leaves the stale entry
//! in use, as on real hardware.
//!
//! This module owns the hierarchy, its counting and invalidation. It never
//! walks page tables or checks permissions: that is the MMU's job.

use crate::addr::{Asid, PhysAddr, VirtAddr};
use serde::{Deserialize, Serialize};

use super::counters::{FlushCounters, LevelCounters, TlbCounters};
use super::entry::{EntryFlags, Perms, TlbEntry};
use super::tlb_array::{Inserted, TlbArray};
use super::tlb_config::{Holds, TlbConfig, TlbConfigError};
use super::walk_cache::WalkCache;
use super::{AccessKind, LoadOrFetch};

mod known_miss;

use known_miss::KnownMiss;

/// A TLB hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbHit {
    /// The entry that matched (a copy).
    pub entry: TlbEntry,
    /// The level it was found at (0 = first level).
    pub level: usize,
    /// The translated physical address.
    pub pa: PhysAddr,
}

/// A hit of [`Tlb::lookup_unremembered`] as the span loop's translation
/// uses it (`Mmu::translate_unremembered`): the translated address and
/// the entry's flags (its rights and dirty bit), or a miss. Two words,
/// returned in registers: as an `Option<TlbHit>` (56 bytes, through
/// memory) the walking probe's hits wrote the whole entry, its level and
/// the discriminant to the caller's frame, which read back one byte and
/// the address. The same hit ([`ProbeAnswer::of`] of the probe's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PaHit {
    pa: PhysAddr,
    /// The entry's flags byte, or [`PaHit::MISSED`].
    flags: u32,
}

impl PaHit {
    const MISSED: u32 = 1 << 8;

    /// A miss (for a caller that made no probe).
    #[inline(always)]
    pub(crate) fn missed() -> Self {
        PaHit {
            pa: PhysAddr::new_unchecked(0),
            flags: Self::MISSED,
        }
    }

    /// The address and the entry's flags of a hit; `None` for a miss.
    #[inline(always)]
    pub(crate) fn found(self) -> Option<(PhysAddr, EntryFlags)> {
        if self.flags == Self::MISSED {
            return None;
        }
        Some((self.pa, EntryFlags::from_bits(self.flags as u8)))
    }
}

/// What the walking probes hand back, from their own answer: the whole
/// hit (`Option<TlbHit>`, the tests' and every other caller's) or
/// [`PaHit`] (the span loop's translation). One body of each probe makes
/// both: the answer is made from the hit at the end.
pub(crate) trait ProbeAnswer: Sized {
    /// The answer of `hit`.
    fn of(hit: Option<TlbHit>) -> Self;
}

impl ProbeAnswer for Option<TlbHit> {
    #[inline(always)]
    fn of(hit: Option<TlbHit>) -> Self {
        hit
    }
}

impl ProbeAnswer for PaHit {
    #[inline(always)]
    fn of(hit: Option<TlbHit>) -> Self {
        match hit {
            Some(hit) => PaHit {
                pa: hit.pa,
                flags: u32::from(hit.entry.flags().bits()),
            },
            None => PaHit {
                pa: PhysAddr::default(),
                flags: Self::MISSED,
            },
        }
    }
}

/// Side index: 0 for data accesses, 1 for instruction fetches.
const DATA: usize = 0;
const FETCH: usize = 1;

#[inline(always)]
fn side(kind: AccessKind) -> usize {
    usize::from(kind.is_fetch())
}

/// No array can take an entry of this granule.
const NO_ARRAY: u8 = u8::MAX;

/// The most arrays one level may probe for one kind of access.
const MAX_PROBE: usize = super::tlb_config::MAX_ARRAYS_PER_LEVEL;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "SavedLevel")]
struct Level {
    /// Per side, the arrays to probe, in config order: the first
    /// `probe_len[side]` of `probe[side]`.
    probe: [[u8; MAX_PROBE]; 2],
    probe_len: [usize; 2],
    arrays: Vec<TlbArray>,
    /// This level's counts (kept beside the arrays: one less pointer to
    /// follow on a hit). `lookups` is filled in by [`Tlb::counters`].
    counters: LevelCounters,
    /// Per side and granule shift: the array that stores an entry of that
    /// granule (the one holding the largest size not above it) and the
    /// granule shift it stores it at; `NO_ARRAY` if none can.
    #[serde(with = "crate::serde_arrays::nested")]
    fill_to: [[(u8, u8); 64]; 2],
    /// The arrays that may hold an entry: bit `a` for `arrays[a]`, set by
    /// every fill into it, cleared only when an invalidation finds it empty
    /// ([`Level::refresh_filled`]). Never a bit too few: an array without
    /// its bit is empty. Derived from the arrays, so not saved (a restored
    /// level works it out from its arrays).
    #[serde(skip_serializing)]
    filled: u32,
    /// Per side, the arrays a probe searches: those of `probe[side]` whose
    /// `filled` bit is set, as a mask (bit order is config order, the
    /// probe order). A probe passes over the arrays that hold nothing (the
    /// walk-heavy zipf row never maps a 2 MiB or 1 GiB page, and each empty
    /// array cost its probe about 17 instructions) without a look at them.
    /// Not saved (derived).
    #[serde(skip_serializing)]
    probing: [u32; 2],
    /// Per side, the shape ([`TlbArray::shape`]) and index of the array
    /// `probing[side]` names when it names one alone and that array is
    /// searched with its geometry a constant; shape `0` (the general
    /// shape) otherwise. [`Tlb::probe_walking`] reads the two levels' once
    /// a probe to choose a probe specialised for the pair (the default
    /// preset's: one 4 KiB array searched at each level). Not saved
    /// (derived with `probing`).
    #[serde(skip_serializing)]
    sole: [(u8, u8); 2],
    /// Per side, the fill a miss's entry of the usual granule takes
    /// without `fill_to`'s look-up and the array's general tests (see
    /// [`QuickFill`]). Derived from `fill_to` and the arrays' shapes, fixed
    /// when the level is built; not saved.
    #[serde(skip_serializing)]
    quick: [QuickFill; 2],
}

/// The fill of one level for one side that most misses take, worked out
/// once: the array (`index`) that `fill_to` names for granule `shift`
/// when it stores it at that granule, and is searched with its geometry a
/// constant ([`TlbArray::shape`]), with its way count (`ways`: 4, 8 or
/// 12; 0 when the level has no such array). An entry whose granule and
/// page size are both `shift` (`sizes`, the two as one number) goes
/// there with the array's set worked out with the way count a constant
/// and without the tests the general fill makes (the level serves the
/// side, the array is not indexed, the set count is a power of two, the
/// entry is not a piece): [`Tlb::fill_levels_absent`] and the copy-up of
/// a second-level hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct QuickFill {
    ways: u8,
    index: u8,
    sizes: u16,
    /// The array holds one page size (its shape's): a victim is always of
    /// the entry's granule ([`TlbArray::fill_absent_shaped`]'s `ONE`).
    one: bool,
}

impl QuickFill {
    /// No quick fill (`sizes` is no entry's: a page shift is below 64).
    const NONE: Self = Self {
        ways: 0,
        index: 0,
        sizes: u16::MAX,
        one: false,
    };
}

/// `entry`'s granule and page shifts as one number ([`QuickFill::sizes`]).
#[inline(always)]
fn sizes_of(entry: &TlbEntry) -> u16 {
    (entry.granule_shift() as u16) | (entry.page_shift() as u16) << 8
}

/// The fill after a walk of a two-level TLB whose levels both take the
/// entry through their quick fills ([`QuickFill`]), for one side, worked
/// out once from the two levels' quick fills: the sizes both take
/// (`sizes`), the pair of way counts as one code (`pair`: [`PAIR_4_12`],
/// [`PAIR_8_12`] or [`PAIR_4_4`], the presets'), and each level's array.
/// [`Tlb::fill_missed`] tests an entry's sizes against it and dispatches
/// on the code once, where it tested the level count, both levels' sizes
/// and both way counts (about 20 instructions a fill on the walk-heavy
/// zipf row). Derived, not saved: [`PairFill::UNKNOWN`] in a restored
/// TLB until it resumes its context ([`Tlb::resume_context`]).
///
/// Eight bytes (six of fields): a side's is then at `8 * side`, one
/// scaled index, where at six bytes each use worked `3 * side` out and
/// the sizes' compare its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(8))]
struct PairFill {
    sizes: u16,
    pair: u8,
    first: u8,
    second: u8,
    /// `pair` is [`PAIR_4_12_FIRST`]: tested before the dispatch on
    /// `pair`, as a field of its own (a test of `pair`'s value LLVM folds
    /// into the dispatch's jump table, with the other pairs' indices read
    /// before it).
    first_4_12: bool,
}

/// [`PairFill::pair`] of no pair: the general fill.
const PAIR_NONE: u8 = 0;
/// A first level of 4 ways and a second of 12 (x86-64's data side).
const PAIR_4_12: u8 = 1;
/// A first level of 8 ways and a second of 12 (x86-64's fetch side).
const PAIR_8_12: u8 = 2;
/// Two levels of 4 ways (core-i7's).
const PAIR_4_4: u8 = 3;
/// [`PAIR_4_12`] whose arrays are both the first of their level and whose
/// first-level array holds one page size (x86-64's data side: the walk-heavy
/// zipf row's every fill): the arrays' indices constants (no index read,
/// no multiply to reach the array) and the first level's victim written
/// without its granule read ([`TlbArray::fill_absent_shaped`]'s `ONE`).
const PAIR_4_12_FIRST: u8 = 4;
/// Not worked out yet (a restored TLB).
const PAIR_UNKNOWN: u8 = u8::MAX;

impl PairFill {
    /// No pair (`sizes` is no entry's: a page shift is below 64).
    const NONE: Self = Self {
        sizes: u16::MAX,
        pair: PAIR_NONE,
        first: 0,
        second: 0,
        first_4_12: false,
    };

    /// Not worked out yet: no entry's sizes, so fills take the general
    /// path.
    const UNKNOWN: Self = Self {
        pair: PAIR_UNKNOWN,
        ..Self::NONE
    };

    /// The pair fills of `levels`, per side, from their quick fills.
    fn of(levels: &[Level]) -> [Self; 2] {
        [DATA, FETCH].map(|s| {
            let [first, second] = levels else {
                return Self::NONE;
            };
            let (q0, q1) = (first.quick[s], second.quick[s]);
            if q0.sizes != q1.sizes {
                return Self::NONE;
            }
            let plru = |l: &Level, q: QuickFill| {
                l.arrays
                    .get(usize::from(q.index))
                    .is_some_and(TlbArray::is_tree_plru)
            };
            let pair = match (q0.ways, q1.ways) {
                (4, 12)
                    if q0.index == 0
                        && q1.index == 0
                        && q0.one
                        && plru(first, q0)
                        && plru(second, q1) =>
                {
                    PAIR_4_12_FIRST
                }
                (4, 12) => PAIR_4_12,
                (8, 12) => PAIR_8_12,
                (4, 4) => PAIR_4_4,
                _ => return Self::NONE,
            };
            Self {
                sizes: q0.sizes,
                pair,
                first: q0.index,
                second: q1.index,
                first_4_12: pair == PAIR_4_12_FIRST,
            }
        })
    }
}

/// What the walk-heavy row's two quick paths count, kept apart from the
/// levels' counters ([`Tlb::pair_counts`]): [`Tlb::fill_missed`]'s first
/// path into both full arrays of the pair (at each level a miss of the
/// entry's page size, a fill and an eviction: six counters) and
/// [`Tlb::second_hit_quick`] (the second level's hit of its size, then
/// the first level's miss, fill and eviction: four). One increment a fill
/// or hit, in the line of the TLB those paths read anyway, where the
/// counts themselves were six or four read-modify-writes in two levels'
/// lines (with the page shift worked out for the per-size counts). The
/// page size is the side's pair's ([`PairFill::sizes`]: the paths take an
/// entry of those sizes alone), fixed for a TLB (`pair_fill` is derived
/// from the configuration; the counts are added before it is worked out
/// again, see [`Tlb::derive_pair_fill`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PairCounts {
    /// Per side: fills of both levels by `fill_missed`'s first path.
    fills: [u64; 2],
    /// Per side: second-level hits with their copy-up by
    /// `second_hit_quick`.
    copies: [u64; 2],
}

impl PairCounts {
    /// The first level's fills among them (each fill and each copy-up
    /// fills it once).
    #[inline(always)]
    fn first_fills(&self) -> u64 {
        self.fills[DATA] + self.fills[FETCH] + self.copies[DATA] + self.copies[FETCH]
    }

    /// Adds them to the counters of the pair's levels (`first`, `second`),
    /// at each side's page shift (`shifts`).
    fn add_to(&self, first: &mut LevelCounters, second: &mut LevelCounters, shifts: [u32; 2]) {
        for side in [DATA, FETCH] {
            let (fills, copies, shift) = (self.fills[side], self.copies[side], shifts[side]);
            if fills | copies == 0 {
                continue;
            }
            first.misses_by_size.add_shift(shift, fills + copies);
            first.fills += fills + copies;
            first.evictions += fills + copies;
            second.misses_by_size.add_shift(shift, fills);
            second.fills += fills;
            second.evictions += fills;
            second.hits.add_shift(shift, copies);
        }
    }
}

/// `Tlb::pair_fill` of a restored TLB.
fn pair_fill_unknown() -> [PairFill; 2] {
    [PairFill::UNKNOWN; 2]
}

/// [`Level`] as checkpoints hold it (its fields but the derived masks,
/// which a restored level works out from its arrays).
#[derive(Deserialize)]
#[serde(rename = "Level")]
struct SavedLevel {
    probe: [[u8; MAX_PROBE]; 2],
    probe_len: [usize; 2],
    arrays: Vec<TlbArray>,
    counters: LevelCounters,
    #[serde(with = "crate::serde_arrays::nested")]
    fill_to: [[(u8, u8); 64]; 2],
}

impl From<SavedLevel> for Level {
    fn from(s: SavedLevel) -> Self {
        let mut arrays = s.arrays;
        for a in &mut arrays {
            a.derive_shape();
        }
        let mut level = Self {
            probe: s.probe,
            probe_len: s.probe_len,
            arrays,
            counters: s.counters,
            fill_to: s.fill_to,
            filled: 0,
            probing: [0; 2],
            sole: [(0, 0); 2],
            quick: [QuickFill::NONE; 2],
        };
        level.refresh_filled();
        level.quick = level.quick_fills();
        level
    }
}

impl Level {
    fn new(config: &super::tlb_config::TlbLevelConfig, seed: u64, first_array: u64) -> Self {
        let arrays: Vec<TlbArray> = config
            .arrays
            .iter()
            .enumerate()
            .map(|(i, a)| {
                TlbArray::new(
                    a,
                    seed ^ (first_array + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                )
            })
            .collect();
        let mut probe = [[0; MAX_PROBE]; 2];
        let mut probe_len = [0; 2];
        for (i, array) in arrays.iter().enumerate() {
            for (s, serves) in [
                (DATA, array.holds().serves_data()),
                (FETCH, array.holds().serves_fetch()),
            ] {
                if serves && probe_len[s] < MAX_PROBE {
                    probe[s][probe_len[s]] = i as u8;
                    probe_len[s] += 1;
                }
            }
        }
        let mut fill_to = [[(NO_ARRAY, 0); 64]; 2];
        for s in [DATA, FETCH] {
            for (shift, target) in fill_to[s].iter_mut().enumerate() {
                let Ok(size) = crate::addr::PageSize::from_shift(shift as u32) else {
                    continue;
                };
                let best = probe[s][..probe_len[s]]
                    .iter()
                    .filter_map(|&i| arrays[usize::from(i)].granule_for(size).map(|g| (g, i)))
                    .max_by_key(|&(g, _)| g);
                if let Some((granule, i)) = best {
                    *target = (i, granule.shift() as u8);
                }
            }
        }
        let counters = LevelCounters {
            latency_cycles: config.latency,
            ..LevelCounters::default()
        };
        let mut level = Self {
            probe,
            probe_len,
            arrays,
            counters,
            fill_to,
            filled: 0,
            probing: [0; 2],
            sole: [(0, 0); 2],
            quick: [QuickFill::NONE; 2],
        };
        level.quick = level.quick_fills();
        level
    }

    /// `quick` worked out from `fill_to` and the arrays' shapes: per side,
    /// of the arrays `fill_to` names for their own first size, the one
    /// whose first size is the smallest, if it has a shape.
    fn quick_fills(&self) -> [QuickFill; 2] {
        [DATA, FETCH].map(|s| {
            let mut best: Option<(u8, u8)> = None;
            for (i, a) in self.arrays.iter().enumerate() {
                let Some(shift) = a.page_sizes().next().map(|p| p.shift() as u8) else {
                    continue;
                };
                if self.fill_to[s][usize::from(shift & 63)] == (i as u8, shift)
                    && best.is_none_or(|(_, b)| shift < b)
                {
                    best = Some((i as u8, shift));
                }
            }
            let Some((index, shift)) = best else {
                return QuickFill::NONE;
            };
            let shape = self.arrays[usize::from(index)].shape();
            let ways = match shape {
                1 | 4 => 4,
                2 | 5 => 8,
                3 | 6 => 12,
                _ => return QuickFill::NONE,
            };
            QuickFill {
                ways,
                index,
                sizes: u16::from(shift) | u16::from(shift) << 8,
                one: shape <= 3,
            }
        })
    }

    /// Per side, the arrays of `probe[side]` as a mask (bit `a` for
    /// `arrays[a]`; only the first [`MAX_PROBE`] arrays can be probed).
    fn side_masks(&self) -> [u32; 2] {
        [DATA, FETCH].map(|s| {
            self.probe[s][..self.probe_len[s].min(MAX_PROBE)]
                .iter()
                .fold(0, |m, &a| m | (1u32 << (a & 31)))
        })
    }

    /// Works out `filled` and `probing` from the arrays themselves: what a
    /// restored level does, and what an invalidation that removed entries
    /// does (it may have emptied an array).
    fn refresh_filled(&mut self) {
        self.filled = self
            .arrays
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.is_empty())
            .fold(0, |m, (i, _)| m | (1u32 << (i & 31)));
        let sides = self.side_masks();
        self.probing = sides.map(|m| m & self.filled);
        self.sole = self.sole_arrays();
    }

    /// `sole` worked out from `probing` and the arrays' shapes.
    fn sole_arrays(&self) -> [(u8, u8); 2] {
        self.probing.map(|m| {
            if m.count_ones() != 1 {
                return (0, 0);
            }
            let index = m.trailing_zeros() as usize;
            self.arrays
                .get(index)
                .map_or((0, 0), |a| (a.shape(), index as u8))
        })
    }

    /// Notes that `arrays[array]` was just filled: probes search it from
    /// now on (its first fill adds it to `probing`).
    #[inline(always)]
    fn mark_filled(&mut self, array: usize) {
        let bit = 1u32 << (array & 31);
        if self.filled & bit == 0 {
            self.mark_first_fill(bit);
        }
    }

    #[cold]
    fn mark_first_fill(&mut self, bit: u32) {
        self.filled |= bit;
        let sides = self.side_masks();
        self.probing = sides.map(|m| m & self.filled);
        self.sole = self.sole_arrays();
    }

    /// [`TlbArray::fill_absent`] of `entry` (a non-global entry whose
    /// lookup just missed this level) into `arrays[array]`, counted as a
    /// fill (and an eviction if it evicted); nothing if there is no such
    /// array.
    #[inline(always)]
    fn fill_absent(&mut self, array: usize, entry: TlbEntry) {
        let Some(a) = self.arrays.get_mut(array) else {
            return;
        };
        // (Counted apart, the fill before the array's and the eviction
        // in its own branch: side by side, the two counts were added as
        // one vector, eight instructions a level with the constant's load
        // and the registers spilled around it, where two increments do.)
        self.counters.fills += 1;
        // In line (`TlbArray::fill_absent` too): the hot loop of
        // `Tlb::fill_levels_absent` and the cold piece path.
        if a.fill_absent(entry) {
            self.counters.evictions += 1;
        } else {
            // (An eviction means the array was full: marked already.)
            self.mark_filled(array);
        }
    }

    /// [`Level::fill_one_absent`] of an entry that takes the side's quick
    /// fill (`quick[side]`, whose way count is `W` and array `index`;
    /// the caller compared the entry's sizes): the same counts, the same
    /// slot. `ONE`: the array holds one page size (`quick[side].one`).
    #[inline(always)]
    fn fill_quick<const W: usize, const ONE: bool>(&mut self, index: u8, entry: TlbEntry) {
        self.counters.misses_by_size.bump_shift(entry.page_shift());
        let array = usize::from(index);
        let Some(a) = self.arrays.get_mut(array) else {
            return;
        };
        self.counters.fills += 1;
        if a.fill_absent_shaped::<W, ONE>(entry) {
            self.counters.evictions += 1;
        } else {
            self.mark_filled(array);
        }
    }

    /// [`Level::fill_quick`] of the level's first array (index 0) out of
    /// line, with `ONE` false: [`Tlb::fill_missed`]'s second level when it
    /// is not full of the entry's size.
    #[inline(never)]
    fn fill_quick_out_of_line<const W: usize>(&mut self, entry: &TlbEntry) {
        self.fill_quick::<W, false>(0, *entry);
    }

    /// [`Level::fill_one_absent`], through the side's quick fill where the
    /// entry takes it.
    #[inline(always)]
    fn fill_one_absent_quick(&mut self, side: usize, entry: TlbEntry, va: VirtAddr) {
        let q = self.quick[side & 1];
        if q.sizes == sizes_of(&entry) {
            match q.ways {
                4 => return self.fill_quick::<4, false>(q.index, entry),
                8 => return self.fill_quick::<8, false>(q.index, entry),
                12 => return self.fill_quick::<12, false>(q.index, entry),
                _ => {}
            }
        }
        self.fill_one_absent(side, entry, va);
    }

    /// [`Level::fill_absent`] of the piece of `entry` (for `va`) that
    /// `arrays[array]` holds at granule shift `to` (from `fill_to`; nothing
    /// when `array` is [`NO_ARRAY`]). Out of line: most fills store the
    /// entry itself.
    #[cold]
    #[inline(never)]
    fn fill_absent_piece(&mut self, array: u8, to: u8, entry: TlbEntry, va: VirtAddr) {
        if array == NO_ARRAY {
            return; // the level cannot hold it
        }
        let Ok(size) = crate::addr::PageSize::from_shift(u32::from(to)) else {
            return;
        };
        self.fill_absent(usize::from(array), entry.splinter(va, size));
    }

    /// [`Tlb::fill_levels_absent`] at this level: counts the miss by size
    /// and stores `entry` (or, cold, the piece of it the level holds) in
    /// the array that takes its granule, if the level serves `side`.
    #[inline(always)]
    fn fill_one_absent(&mut self, side: usize, entry: TlbEntry, va: VirtAddr) {
        if !self.serves(side) {
            return;
        }
        self.counters.misses_by_size.bump_shift(entry.page_shift());
        // `Level::place`, with the entry itself the piece (the common
        // case): a piece of it (or no array) takes the cold path, so
        // this one reads the entry where it is, not from a copy.
        let granule = entry.granule_shift();
        let (index, to) = self.fill_to[side & 1][(granule & 63) as usize];
        if u32::from(to) == granule {
            self.fill_absent(usize::from(index), entry);
        } else {
            self.fill_absent_piece(index, to, entry, va);
        }
    }

    /// Whether any array of the level serves `side`.
    #[inline(always)]
    fn serves(&self, side: usize) -> bool {
        self.probe_len[side] > 0
    }

    /// Writes `entry` (for `va`) into the array of this level that takes its
    /// granule, splintering it if needed. Returns what happened, or `None`
    /// when the level cannot hold it.
    fn insert(&mut self, side: usize, entry: TlbEntry, va: VirtAddr) -> Option<Inserted> {
        let (array, piece) = self.place(side, entry, va)?;
        let inserted = self.arrays[array].insert(piece);
        if inserted == Inserted::Filled {
            // (A refresh or an eviction found the array holding entries.)
            self.mark_filled(array);
        }
        Some(inserted)
    }

    /// The array of this level that takes `entry`'s granule and the piece
    /// of `entry` (splintered to that array's size) it holds, or `None`
    /// when the level cannot hold it.
    #[inline(always)]
    fn place(&self, side: usize, entry: TlbEntry, va: VirtAddr) -> Option<(usize, TlbEntry)> {
        let (array, shift) = self.fill_to[side][(entry.granule().shift() & 63) as usize];
        if array == NO_ARRAY {
            return None;
        }
        let piece = if u32::from(shift) == entry.granule().shift() {
            entry
        } else {
            entry.splinter(
                va,
                crate::addr::PageSize::from_shift(u32::from(shift)).ok()?,
            )
        };
        Some((usize::from(array), piece))
    }
}

/// What the walking probe's first-level search found: the array's index,
/// the array, the slot, and the slot's set and way.
type FirstFound<'a> = (u8, &'a mut TlbArray, usize, (u32, u32));

/// The first level's search of the walking probe when it searches
/// `arrays[index]` alone, of shape `SHAPE` (`Level::sole`, 1 or 2: 4 or 8
/// ways, one size): the array and the slot found, with its set and way
/// worked out with the way count a constant (a shift and a mask, where
/// the hit's record divided by the array's way count).
#[inline(always)]
fn search_one<const SHAPE: u8>(
    arrays: &mut [TlbArray],
    index: u8,
    tag: Asid,
    va: VirtAddr,
) -> Option<FirstFound<'_>> {
    let ways = match SHAPE {
        1 => 4,
        _ => 8,
    };
    let array = arrays.get_mut(usize::from(index))?;
    let slot = array.lookup_shaped::<SHAPE>(tag, va)?;
    debug_assert_eq!(array.ways(), ways);
    Some((
        index,
        array,
        slot,
        ((slot / ways) as u32, (slot % ways) as u32),
    ))
}

/// The first level's search of the walking probe otherwise: each array of
/// `probing` (the side's that hold entries), in probe order, until one
/// finds the page.
#[inline(always)]
fn search_each(
    arrays: &mut [TlbArray],
    probing: u32,
    tag: Asid,
    va: VirtAddr,
) -> Option<FirstFound<'_>> {
    let mut todo = probing;
    let mut found = None;
    while todo != 0 {
        let index = todo.trailing_zeros() as u8;
        todo &= todo - 1;
        let Some(array) = arrays.get_mut(usize::from(index)) else {
            break;
        };
        if let Some(slot) = array.lookup(tag, va) {
            found = Some((index, slot));
            break;
        }
    }
    // (The array found again: returned from the loop, its borrow would
    // outlive the loop's next iteration.)
    let (index, slot) = found?;
    let array = arrays.get_mut(usize::from(index))?;
    let set_way = array.set_way(slot);
    Some((index, array, slot, set_way))
}

/// The touch a first-level hit of `slot` in `array` records with it
/// ([`Tlb::remember_first_hit`]): a tree-PLRU plan, or the set and way.
#[inline(always)]
fn first_hit_plan(array: &TlbArray, slot: usize) -> (bool, (u32, u32, u32)) {
    match array.plru_plan(slot) {
        Some(plan) => (true, plan),
        None => {
            let (set, way) = array.set_way(slot);
            (false, (set, way, 0))
        }
    }
}

/// The touch a first-level hit's record takes ([`first_hit_plan`]).
type HitPlan = (bool, (u32, u32, u32));

/// A first-level hit of the walking probe, `found` by its search, counted
/// in `counters` (the first level's): the array's index, the entry (a
/// copy), and, when `memo_ok` (the side's hits are remembered), the touch
/// its record takes ([`Tlb::remember_first_hit`]): a tree-PLRU plan, or
/// the set and way.
#[inline(always)]
fn first_hit_parts(
    counters: &mut LevelCounters,
    (index, array, slot, (set, way)): FirstFound<'_>,
    memo_ok: bool,
) -> (u8, TlbEntry, Option<HitPlan>) {
    let entry = *array.entry(slot);
    let plan = memo_ok.then(|| match array.plru_plan_at(set, way) {
        Some(plan) => (true, plan),
        None => (false, (set, way, 0)),
    });
    counters.hits.bump_shift(entry.page_shift());
    (index, entry, plan)
}

/// [`Tlb::probe_walking`]'s ends as codes (the low [`WALK_CODE_BITS`]
/// bits; a set seen above them): a full miss, counted. The first, third
/// and fourth only the tests' `WalkCode` makes: the probe itself goes on
/// from each end ([`WalkEnds`]).
#[cfg_attr(not(test), allow(dead_code))]
const WALK_MISSED: usize = 0;
/// Not the pair's probe: [`Tlb::probe_walking_general`].
const WALK_GENERAL: usize = 1;
/// The first level's set above the code holds the page's tag.
#[cfg_attr(not(test), allow(dead_code))]
const WALK_FIRST_SEEN: usize = 2;
/// The second level's set above the code holds the page's tag (the first
/// level's miss counted).
#[cfg_attr(not(test), allow(dead_code))]
const WALK_SECOND_SEEN: usize = 3;
/// The second level's array holds its other size too (the first level's
/// miss counted): [`Tlb::pair_second`].
const WALK_SECOND_SIZES: usize = 4;
const WALK_CODE_BITS: u32 = 3;
const WALK_CODE_MASK: usize = (1 << WALK_CODE_BITS) - 1;

/// What [`Tlb::probe_walking`] does at each of its ends: hand back its
/// code (`WalkCode`, the tests') or go on to the hit's function
/// ([`PairEnds`], [`Tlb::probe_pair`]'s). Called at the ends themselves:
/// with the code returned and then tested, the compiler built the code at
/// a common exit and took it apart again (about ten instructions a tag
/// seen), where each end now jumps on with the set and page number in
/// the registers the search worked them out in.
trait WalkEnds {
    type Out;
    /// A full miss, counted.
    fn missed(self) -> Self::Out;
    /// The first level's set `set` (of `W` ways) holds the tag of `vpn`,
    /// first in way `way` (nothing counted).
    fn first_seen<const W: usize>(
        self,
        tlb: &mut Tlb,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> Self::Out;
    /// The second level's set `set` (of `W` ways) holds the tag of `vpn`,
    /// first in way `way` (the first level's miss counted).
    fn second_seen<const W: usize>(
        self,
        tlb: &mut Tlb,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> Self::Out;
    /// [`WALK_GENERAL`] or [`WALK_SECOND_SIZES`].
    fn other(self, tlb: &mut Tlb, va: VirtAddr, side: usize, code: usize) -> Self::Out;
}

/// [`Tlb::probe_walking`]'s ends as its code (and the page number of a
/// tag seen, else 0): for the tests, which hold the code to the general
/// probe's answer.
#[cfg(test)]
struct WalkCode;

#[cfg(test)]
impl WalkEnds for WalkCode {
    type Out = (usize, u64);
    fn missed(self) -> (usize, u64) {
        (WALK_MISSED, 0)
    }
    fn first_seen<const W: usize>(
        self,
        _: &mut Tlb,
        _: VirtAddr,
        _: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> (usize, u64) {
        (
            (set as usize * W + way) << WALK_CODE_BITS | WALK_FIRST_SEEN,
            vpn,
        )
    }
    fn second_seen<const W: usize>(
        self,
        _: &mut Tlb,
        _: VirtAddr,
        _: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> (usize, u64) {
        (
            (set as usize * W + way) << WALK_CODE_BITS | WALK_SECOND_SEEN,
            vpn,
        )
    }
    fn other(self, _: &mut Tlb, _: VirtAddr, _: usize, code: usize) -> (usize, u64) {
        (code, 0)
    }
}

/// [`Tlb::probe_pair`]'s ends: the answer `A` of a full miss, or the
/// probe of address space `asid` going on ([`Tlb::probe_first_seen`],
/// [`Tlb::probe_second_seen`], [`Tlb::probe_seen`]), each a jump.
struct PairEnds<A> {
    asid: Asid,
    answer: std::marker::PhantomData<A>,
}

impl<A: ProbeAnswer> WalkEnds for PairEnds<A> {
    type Out = A;
    #[inline(always)]
    fn missed(self) -> A {
        A::of(None)
    }
    #[inline(always)]
    fn first_seen<const W: usize>(
        self,
        tlb: &mut Tlb,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> A {
        let (base, asid) = (set * W as u32, self.asid);
        // (Each way's exit of the search a jump of its own, to the way's
        // `probe_first_seen_at`: see `Tlb::probe_first_seen_at`.)
        macro_rules! at {
            ($($k:literal)*) => {
                match way {
                    $($k if $k < W => tlb.probe_first_seen_at::<A, W, $k>(va, side, base, vpn, asid),)*
                    _ => tlb.probe_first_seen_slow(va, side, set, vpn, asid),
                }
            };
        }
        at!(0 1 2 3 4 5 6 7)
    }
    #[inline(always)]
    fn second_seen<const W: usize>(
        self,
        tlb: &mut Tlb,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        way: usize,
    ) -> A {
        let (base, asid) = (set * W as u32, self.asid);
        macro_rules! at {
            ($($k:literal)*) => {
                match way {
                    $($k if $k < W => tlb.probe_second_seen_at::<A, $k>(va, side, base, vpn, asid),)*
                    _ => tlb.probe_second_seen_slow(va, side, set, vpn, asid),
                }
            };
        }
        at!(0 1 2 3 4 5 6 7 8 9 10 11)
    }
    #[inline(always)]
    fn other(self, tlb: &mut Tlb, va: VirtAddr, side: usize, code: usize) -> A {
        tlb.probe_seen(va, side, self.asid, code)
    }
}

/// How many memos each side kept (see [`Memo`]).
const MEMO_WAYS: usize = 4;

/// `Memo::key` of an empty memo (no `va >> shift` with `shift >= 1` is this).
const NO_KEY: u64 = u64::MAX;

/// A recent first-level hit of one side, as first levels shared by both
/// sides remembered them before they took the table of [`Recent`] hits
/// too. No longer made or used for lookups: kept (empty in new TLBs) so
/// that checkpoints keep their format, and so that the touches the memos
/// of an older checkpoint still owe are replayed (`Tlb::settle_memos`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Memo {
    /// `va >> memo_shift[side]` of the remembered lookup, or [`NO_KEY`].
    key: u64,
    tag: Asid,
    entry: TlbEntry,
    /// Where the entry is: the first level's array and its slot.
    array: u8,
    slot: u32,
    /// The `Tlb::tick` of its last hit (0: none since it was made).
    seq: u64,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            key: NO_KEY,
            tag: Asid::default(),
            entry: TlbEntry::default(),
            array: 0,
            slot: 0,
            seq: 0,
        }
    }
}

/// `Tlb::memos_set` of a restored TLB: its memos may hold keys.
fn memos_may_be_set() -> bool {
    true
}

/// How many recent first-level hits each side remembers when no
/// first-level array serves both sides (see [`Recent`]): a power of two.
/// On lsR_linux, 32 regions a side leave 1.6% of the lookups to a probe
/// (4 most recent: 6.4%; 16: 4.5%; 64: 1.0%).
const RECENT_WAYS: usize = 32;

/// `Tlb::last` of a side with no recent hit remembered.
const NO_RECENT: u32 = u32::MAX;

/// A recent first-level hit of one side, in a table of [`RECENT_WAYS`]
/// places indexed by the low bits of its key (direct-mapped): used instead
/// of [`Memo`] when no first-level array serves both sides. Found in one
/// probe of the table, however many are remembered, so a lookup in any of
/// the last few dozen regions of a side skips the first level's probe.
/// Exact for the same reasons as the memos (see [`Tlb::lookup`]): every
/// fill and invalidation forgets them all (one increment of
/// `Tlb::recent_gen`, which every remembered `word` holds); a hit on
/// any but the side's last one (`Tlb::last`) touches its way as the
/// probe would; the last one is the last way its side touched (a probe
/// hit, or a hit here, makes it so), so touching it would change nothing.
/// Never saved: a restored TLB starts with none (its first lookups probe,
/// and a probe touches as the hits it replaces would).
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Recent {
    /// What a lookup that takes it compares, in one compare (see
    /// [`Tlb::recent_word`]): `va >> memo_shift[side]` of the remembered
    /// lookup in the low [`RECENT_KEY_BITS`] bits, the generation it was
    /// made in (`Tlb::recent_gen`) above them, and [`SHARED_KEY`] with a
    /// shared first level. Or [`EMPTY_WORD`], which no lookup matches:
    /// a place never filled, a hit made for an address space other than
    /// the current one (`Tlb::hit_asid`), on a side whose smallest page
    /// is below [`MIN_RECENT_SHIFT`], or whose entry does not grant its
    /// side's user load or fetch ([`SIDE_RIGHTS`]).
    word: u64,
    /// `word` if its entry takes a user store whole
    /// ([`TlbEntry::takes_user_store`]: it grants user writes and is
    /// already dirty), else [`EMPTY_WORD`]: what [`Tlb::store_recent_hit`]
    /// compares, so that a store's test of the entry is the same one
    /// compare as a load's (the entry is a copy, never changed while the
    /// word is valid: any change to the entries starts a new generation).
    store_word: u64,
    entry: TlbEntry,
    /// Where the entry is: the first level's array; and how to touch it:
    /// with `plru`, the word, mask and bits of [`TlbArray::plru_plan`] in
    /// `set`, `way` and `bits`, else its set and way.
    array: u8,
    plru: bool,
    set: u32,
    way: u32,
    bits: u32,
}

// One cache line each: a lookup reads one line of the table.
const _: () = assert!(size_of::<Recent>() == 64);

impl Default for Recent {
    fn default() -> Self {
        Self {
            word: EMPTY_WORD,
            store_word: EMPTY_WORD,
            entry: TlbEntry::default(),
            array: 0,
            plru: false,
            set: 0,
            way: 0,
            bits: 0,
        }
    }
}

/// `Tlb::recent` of a new or restored TLB: nothing remembered.
fn no_recents() -> [[Recent; RECENT_WAYS]; 2] {
    [[Recent::default(); RECENT_WAYS]; 2]
}

/// `Tlb::recent_gen` of a new or restored TLB (not 0: every valid word
/// has a generation above 0).
fn first_recent_gen() -> u64 {
    RECENT_GEN_STEP
}

/// The bits of a recent hit's key (`va >> memo_shift`) in its word: keys
/// of a side whose smallest page is at least [`MIN_RECENT_SHIFT`] fit,
/// so the generation above them never mixes with a key's bits.
const RECENT_KEY_BITS: u32 = 52;

/// The smallest page-size shift whose keys fit in [`RECENT_KEY_BITS`]
/// (4 KiB): a side with smaller pages remembers no recent hits (every
/// lookup probes, which is exact; only classroom configurations have
/// them).
const MIN_RECENT_SHIFT: u32 = 64 - RECENT_KEY_BITS;

/// One generation of `Tlb::recent_gen`, kept in the bits above a key's
/// (up to [`RECENT_GEN_MAX`]): a lookup compares the key and the
/// generation in one compare of its key with the generation ORed in.
const RECENT_GEN_STEP: u64 = 1 << RECENT_KEY_BITS;

/// The last generation: generations are 10 bits (bits 52 to 61), and
/// after this one `Tlb::next_recent_gen` clears every word
/// ([`EMPTY_WORD`]) and starts again at [`RECENT_GEN_STEP`], so a word of
/// an earlier round of generations never matches.
const RECENT_GEN_MAX: u64 = 0x3ff << RECENT_KEY_BITS;

/// `Tlb::hit_word` while there is no current address space (a new TLB,
/// or a restored one before `Tlb::resume_context`), and what a lookup for
/// another address space than the current one compares: the bit above
/// the generations, in no word, so such a lookup never matches.
const NO_CONTEXT: u64 = 1 << 62;

// The key, the generations, `NO_CONTEXT` and `SHARED_KEY` apart.
const _: () = assert!(
    RECENT_GEN_MAX & ((1 << RECENT_KEY_BITS) - 1) == 0
        && RECENT_GEN_MAX < NO_CONTEXT
        && NO_CONTEXT < SHARED_KEY
        && RECENT_GEN_MAX & NO_CONTEXT == 0
);

/// The `Recent::word` no lookup matches: every lookup's word has a
/// generation or [`NO_CONTEXT`], so is not 0. Held by a recent hit whose
/// entry does not grant its side's user access ([`SIDE_RIGHTS`]) too:
/// such a recent hit is never taken, by any lookup.
/// So [`Tlb::hit_recent`] and [`Tlb::hit_shared`] need not test the rights
/// (their one compare of the word says it), and a load or fetch cannot
/// take a recent hit it has no right to. (With a shared first level the
/// probe that the lookup makes instead settles the touches owed first, so
/// its touch still comes after theirs, as the recent hit's owed one
/// would.) Exact: a lookup it would have answered probes instead, and
/// finds the same entry in the same slot (every fill and invalidation
/// forgets the recent hits), touches its way as the recent hit would (or,
/// if it is the side's last, re-touches the way its side touched last,
/// which changes nothing), counts the same hit, and remembers it in the
/// same place as the side's last again. (A simulated process runs in user
/// mode, and its pages grant it a load, and a fetch where it fetches: the
/// ones that do not are the faults, which probe anyway.)
const EMPTY_WORD: u64 = 0;

/// Per side (data, fetch), the rights an entry must have for its recent
/// hit to be taken: those of a user load and of a user fetch
/// (`translate::required(kind, Privilege::User)`, a test checks).
const SIDE_RIGHTS: [Perms; 2] = [
    Perms::READ.union(Perms::USER),
    Perms::EXECUTE.union(Perms::USER),
];

/// `Tlb::hit_asid` when no address space has been switched to.
const NO_HIT_ASID: u32 = u32::MAX;

/// `Tlb::hit_asid` of a new or restored TLB.
fn no_hit_asid() -> u32 {
    NO_HIT_ASID
}

/// `Tlb::hit_word` of a new or restored TLB.
fn no_context() -> u64 {
    NO_CONTEXT
}

/// `Tlb::last` of a new or restored TLB.
fn no_last() -> [u32; 2] {
    [NO_RECENT; 2]
}

/// `Tlb::last_owed` of a restored TLB: never a place, and not
/// [`NO_RECENT`], so that its first settlement runs (and settles what its
/// memos owe, see `Tlb::memo_debt`) as when `Tlb::tick` and `Tlb::settled`
/// of an earlier version's checkpoint differed.
const RESTORED_OWED: u32 = NO_RECENT - 1;
const _: () = assert!(RESTORED_OWED as usize >= PLACES);

/// `Tlb::last_owed` of a restored TLB.
fn restored_owed() -> u32 {
    RESTORED_OWED
}

/// The places of both sides' recent hits (`side * RECENT_WAYS + i`).
const PLACES: usize = 2 * RECENT_WAYS;

/// The bits of a place's index in a settlement's sort keys.
const PLACE_BITS: u32 = PLACES.trailing_zeros();
const _: () = assert!(PLACES.is_power_of_two());

/// `Tlb::owed_seq` of a new or restored TLB.
fn no_seqs() -> [u64; 2 * RECENT_WAYS] {
    [0; 2 * RECENT_WAYS]
}

/// Set in the `Recent::word` of a recent hit of a shared first level (one
/// array serving both sides), never in a real key (`va >> shift` with
/// `shift >= MIN_RECENT_SHIFT`) or a generation. There a hit on a side's last recent hit still owes a
/// touch (the other side may have touched since), so its hits are taken
/// by [`Tlb::lookup_repeat`] and [`Tlb::lookup`], which defer the touch,
/// and never by [`Tlb::hit_recent`] (which compares the plain key).
const SHARED_KEY: u64 = 1 << 63;

/// The TLB hierarchy and page-walk caches of one core.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tlb {
    /// Memos of checkpoints of earlier versions (see [`Memo`]); empty in
    /// a new TLB.
    memo: [[Memo; MEMO_WAYS]; 2],
    /// Per side, recent first-level hits by the low bits of their key (see
    /// [`Recent`]; with `shared_l1` under keys with [`SHARED_KEY`] set).
    /// Not saved.
    #[serde(skip, default = "no_recents")]
    recent: [[Recent; RECENT_WAYS]; 2],
    /// The generation every valid `Recent::word` holds, in the bits above
    /// a key's (forgetting them all is one increment, by
    /// [`RECENT_GEN_STEP`], see [`Tlb::next_recent_gen`]). Not saved.
    #[serde(skip, default = "first_recent_gen")]
    recent_gen: u64,
    /// Per side, the place in `recent` of the side's last first-level hit
    /// (the last way it touched), or [`NO_RECENT`]. Not saved.
    #[serde(skip, default = "no_last")]
    last: [u32; 2],
    /// The address space of the last [`Tlb::context_switch`] (the current
    /// one), or [`NO_HIT_ASID`] before the first (and in a restored TLB
    /// until `Mmu::resume_context`). Not saved.
    #[serde(skip, default = "no_hit_asid")]
    hit_asid: u32,
    /// What a lookup for the current address space (`hit_asid`) ORs into
    /// its key to build the word it compares: `recent_gen`, kept in step
    /// with it, or [`NO_CONTEXT`] while there is no current address space.
    /// Recent hits are remembered (a valid word) only for the current
    /// address space, and a change of it starts a new generation, so the
    /// generation alone says the address space too: [`Tlb::hit_recent`]
    /// compares a recent hit's word with its key ORed with this one word,
    /// in one compare. Not saved.
    #[serde(skip, default = "no_context")]
    hit_word: u64,
    /// Per side, lookups answered by [`Tlb::hit_recent`] and not yet added
    /// to `lookups_by_kind` (loads on the data side, fetches on the fetch
    /// side: it takes nothing else) and the first level's hits: each was a
    /// hit on its side's last recent hit (`last`), so they are added, at
    /// that entry's page size, before `last` or that entry changes, and
    /// whenever the counters are read ([`Tlb::counters`] adds them;
    /// [`Tlb::settle_counts`] before the TLB is saved). Not saved.
    ///
    /// Kept as two running totals, `recent_hits` (every recent hit ever
    /// taken, per side) less `counted_hits` (the part already added), so
    /// that a caller can count the recent hits of a stretch of lookups from
    /// `recent_hits` alone ([`Tlb::recent_hits`]: the span loop counts its
    /// loads and fetches that hit this way, with no counter of its own per
    /// reference).
    #[serde(skip)]
    recent_hits: [u64; 2],
    /// The part of `recent_hits` already added to the counters.
    #[serde(skip)]
    counted_hits: [u64; 2],
    /// Stores answered by [`Tlb::store_recent`] (data side), a running
    /// total as `recent_hits`, less `counted_stores`, the part already
    /// added: each was a hit on the data side's last recent hit, so they
    /// are added with the data side's pending loads (to `lookups_by_kind`'s
    /// writes, and the first level's hits at that entry's page size). Not
    /// saved.
    #[serde(skip)]
    recent_stores: u64,
    /// The part of `recent_stores` already added to the counters.
    #[serde(skip)]
    counted_stores: u64,
    /// Whether some first-level array serves both sides: then a side's
    /// last recent hit need not be the last way touched in its set, and
    /// recent hits owe touches (see [`SHARED_KEY`]).
    shared_l1: bool,
    /// With a shared first level, recent hits owe the touches the probes
    /// they skip would make, and those are deferred (see [`Tlb::settle`]):
    /// each hit stamps its place (`owed_seq`) with the next `owe_seq` and
    /// sets its bit in `owed`. `tick` counts those hits (it is saved, and
    /// checkpoints stay byte for byte those of earlier versions, which
    /// stamped with it), but only at settlements: until then each place
    /// counts its own in `place_hits`. (Checkpoints of earlier versions
    /// may hold memos stamped after `settled`: those owe one too, see
    /// `memo_debt`.)
    tick: u64,
    settled: u64,
    /// The stamp of the last recent hit of a shared first level that
    /// recorded its touch (see [`Tlb::owe_touch`]): only the order of the
    /// stamps owed at once matters. Not saved.
    #[serde(skip)]
    owe_seq: u64,
    /// Per place of `recent` (`side * RECENT_WAYS + i`), the hits of a
    /// shared first level taken there since the last settlement, not yet
    /// added to `tick` and to the first level's hits (at the place's page
    /// size: a place's entry changes only after a settlement). Nonzero
    /// only for places owed (`owed`); added by [`Tlb::settle_pending`]
    /// (and by [`Tlb::counters`] to its snapshot): one increment a hit
    /// instead of three (`tick`) and a counter behind the levels' `Vec`.
    /// Not saved (settled before a save).
    #[serde(skip, default = "no_seqs")]
    place_hits: [u64; PLACES],
    /// Per side, the lookups [`Tlb::hit_shared`] took since the last
    /// settlement, not yet added to `lookups_by_kind` (loads on the data
    /// side, fetches on the fetch side: it takes nothing else): indexed by
    /// the side the hit path has at hand, not by the kind. Added with
    /// `place_hits` (every such hit owes a settlement). Not saved.
    #[serde(skip)]
    shared_lookups: [u64; 2],
    /// Per side, one bit per place of `recent` hit since the last
    /// settlement (a shared first level only). Not saved: settled before
    /// a save ([`Tlb::settle_counts`]).
    #[serde(skip)]
    owed: [u32; 2],
    /// Per place of `recent` (`side * RECENT_WAYS + i`): the `tick` of its
    /// last hit. Not saved.
    #[serde(skip, default = "no_seqs")]
    owed_seq: [u64; 2 * RECENT_WAYS],
    /// The place (`side * RECENT_WAYS + i`) whose hit is owed last of
    /// both sides' (the newest stamp owed), or [`NO_RECENT`] when nothing is
    /// owed (a settlement clears it): a hit there owes nothing new (see
    /// [`Tlb::owe_touch`]). [`RESTORED_OWED`] in a restored TLB until its
    /// first settlement (which settles its memos). Not saved.
    #[serde(skip, default = "restored_owed")]
    last_owed: u32,
    /// [`Tlb::settle_pending`]'s sort of the places it replays, kept here
    /// so that a settlement does not clear 512 bytes of stack first (only
    /// the first places, written before they are read, are used). Not saved.
    #[serde(skip, default = "no_seqs")]
    settle_order: [u64; PLACES],
    /// Whether the memos may still owe touches: a TLB restored from a
    /// checkpoint of a version that kept memos, until its first settlement
    /// (memos are no longer made). Not saved.
    #[serde(skip, default = "memos_may_be_set")]
    memo_debt: bool,
    /// Per side, the older memo place the next new hit displaces into (1..MEMO_WAYS).
    memo_next: [usize; 2],
    /// Per side, the smallest page-size shift the first level probes (the
    /// region within which every probe computes the same page numbers), and
    /// whether the first level serves the side at all.
    memo_shift: [u32; 2],
    memo_ok: [bool; 2],
    /// Whether some memo may hold a key (one was made since they were last
    /// all forgotten): a fill after a miss then need not clear them again.
    /// Not saved: a restored TLB starts with it set.
    #[serde(skip, default = "memos_may_be_set")]
    memos_set: bool,
    /// Whether [`Tlb::lookup_unremembered`] takes the general probe: set
    /// when a walking probe's first-level hit is recorded while the memos
    /// were already set (two first-level hits with no fill between: the
    /// `.vmt` row's runs of them, which the general probe takes in one
    /// call), cleared with `memos_set`. It only chooses the code, never
    /// the answer. Not saved.
    #[serde(skip)]
    general_next: bool,
    /// Per side, the first level's fill count (`counters.fills` and
    /// [`PairCounts::first_fills`]) at the
    /// side's last first-level hit that [`Tlb::probe_first_seen`] took
    /// without a record: a first-level hit with the count unchanged (a
    /// second one with no fill between) is recorded. It only chooses
    /// whether a hit is remembered, never an answer. Not saved.
    #[serde(skip)]
    hit_fills: [u64; 2],
    /// Whether some [`Memo`] may still hold a key: only a TLB restored
    /// from a checkpoint of an earlier version (memos are no longer made),
    /// until the first fill or invalidation clears them. Every fill of a
    /// walk-heavy run forgets the recent hits, and clearing memos that are
    /// all empty cost it a loop of stores. Not saved.
    #[serde(skip, default = "memos_may_be_set")]
    memo_keys: bool,
    levels: Vec<Level>,
    asid_tags: bool,
    lookups_by_kind: [u64; 3],
    full_misses: u64,
    flushes: FlushCounters,
    walk_cache: WalkCache,
    /// The lookup known to miss every level (see [`KnownMiss`]): the one
    /// whose walk just faulted, until an entry is written. Not saved.
    #[serde(skip)]
    known_miss: KnownMiss,
    /// Per side, the fill after a walk that both levels take through their
    /// quick fills (see [`PairFill`]). Derived from the levels, not saved.
    #[serde(skip, default = "pair_fill_unknown")]
    pair_fill: [PairFill; 2],
    /// The counts of the pair's quick paths not yet added to the levels'
    /// (see [`PairCounts`]): added by [`Tlb::counters`] to its snapshot,
    /// and to the levels by [`Tlb::settle_counts`] (before the TLB is
    /// saved: not saved). The first level's fill count
    /// ([`Tlb::first_hit_unrecorded`]) is its counter's and these together.
    #[serde(skip)]
    pair_counts: PairCounts,
}

impl Tlb {
    /// Builds an empty hierarchy from `config`. `walk_index_shifts` describes
    /// the page-table walk the walk caches serve (see [`WalkCache::new`]):
    /// root first, the lowest virtual-address bit each level indexes.
    pub fn new(config: &TlbConfig, walk_index_shifts: &[u32]) -> Result<Self, TlbConfigError> {
        config.validate()?;
        let mut first_array = 0;
        let levels: Vec<Level> = config
            .levels
            .iter()
            .map(|l| {
                let level = Level::new(l, config.seed, first_array);
                first_array += l.arrays.len() as u64;
                level
            })
            .collect();
        let mut memo_shift = [0; 2];
        let mut memo_ok = [false; 2];
        let mut shared_l1 = false;
        if let Some(first) = config.levels.first() {
            shared_l1 = first.arrays.iter().any(|a| a.holds == Holds::Unified);
            for (side, serves) in [
                (DATA, Holds::serves_data as fn(Holds) -> bool),
                (FETCH, Holds::serves_fetch),
            ] {
                let smallest = first
                    .arrays
                    .iter()
                    .filter(|a| serves(a.holds))
                    .flat_map(|a| a.page_sizes.iter())
                    .min();
                if let Some(size) = smallest {
                    memo_shift[side] = size.shift();
                    memo_ok[side] = true;
                }
            }
        }
        let pair_fill = PairFill::of(&levels);
        Ok(Self {
            memo: [[Memo::default(); MEMO_WAYS]; 2],
            recent: no_recents(),
            recent_gen: first_recent_gen(),
            last: no_last(),
            hit_asid: NO_HIT_ASID,
            hit_word: NO_CONTEXT,
            recent_hits: [0; 2],
            counted_hits: [0; 2],
            recent_stores: 0,
            counted_stores: 0,
            shared_l1,
            tick: 0,
            settled: 0,
            owe_seq: 0,
            place_hits: no_seqs(),
            shared_lookups: [0; 2],
            owed: [0; 2],
            owed_seq: no_seqs(),
            last_owed: NO_RECENT,
            settle_order: no_seqs(),
            memo_debt: false,
            memo_next: [1; 2],
            memo_shift,
            memo_ok,
            memos_set: true,
            general_next: false,
            hit_fills: [0; 2],
            memo_keys: false,
            levels,
            asid_tags: config.asid_tags,
            lookups_by_kind: [0; 3],
            full_misses: 0,
            flushes: FlushCounters::default(),
            walk_cache: WalkCache::new(&config.walk_cache, walk_index_shifts)?,
            known_miss: KnownMiss::NONE,
            pair_fill,
            pair_counts: PairCounts::default(),
        })
    }

    /// The tag entries are stored and looked up under: the ASID itself with
    /// tags on, 0 for every address space with tags off.
    #[inline(always)]
    #[must_use]
    pub fn tag(&self, asid: Asid) -> Asid {
        if self.asid_tags { asid } else { Asid::new(0) }
    }

    /// Whether entries carry ASID tags (otherwise context switches flush).
    #[must_use]
    pub const fn asid_tags(&self) -> bool {
        self.asid_tags
    }

    /// The memo part of [`Tlb::lookup`] alone, by reference: the entry the
    /// previous lookup of this side hit at the first level, if `va` falls in
    /// it, counted exactly as `lookup` counts it. `None` means: call `lookup`
    /// (which counts nothing until then). The MMU's TLB-hit path.
    ///
    /// For the address space of the last [`Tlb::context_switch`] (or
    /// [`Tlb::resume_context`]), as [`Tlb::hit_recent`]: a recent hit's
    /// word is compared with the key ORed with `hit_word`, one word kept
    /// in step, in one compare. Declining is always exact: `lookup` then
    /// probes and finds the same entry (see `lookup_unremembered`); in a
    /// restored TLB not yet told the address space (`hit_word`
    /// `NO_CONTEXT`) every lookup declines here.
    #[inline(always)]
    pub fn lookup_repeat(&mut self, va: VirtAddr, kind: AccessKind) -> Option<&TlbEntry> {
        let side = side(kind);
        if !self.shared_l1 {
            let key = va.as_u64() >> self.memo_shift[side];
            let i = key as usize % RECENT_WAYS;
            let r = &self.recent[side][i];
            if r.word != key | self.hit_word {
                return None;
            }
            self.lookups_by_kind[kind.index()] += 1;
            let shift = r.entry.page_shift();
            if let Some(first) = self.levels.first_mut() {
                first.counters.hits.bump_shift(shift);
            }
            if self.last[side] != i as u32 {
                self.touch_recent(side, i);
            }
            return Some(&self.recent[side][i].entry);
        }
        self.lookup_repeat_shared(va, kind)
    }

    /// [`Tlb::lookup_repeat`] for a first level shared by both sides (the
    /// only kind whose recent hits carry `SHARED_KEY`), without the test
    /// of `shared_l1`: for a caller that knows it (the span loop without
    /// recent hits, on every reference of the fully associative rows;
    /// ~2 instructions a reference). Exact on any TLB: with a split first
    /// level no recent hit's key has `SHARED_KEY`, so it declines, and the
    /// caller's `lookup` does the lookup.
    #[inline(always)]
    pub fn lookup_repeat_shared(&mut self, va: VirtAddr, kind: AccessKind) -> Option<&TlbEntry> {
        let side = side(kind);
        // A shared first level: any recent hit of the side owes its touch.
        let key = va.as_u64() >> self.memo_shift[side];
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[side][i];
        if r.word != key | SHARED_KEY | self.hit_word {
            return None;
        }
        self.lookups_by_kind[kind.index()] += 1;
        // (The first level's hit is counted in `place_hits`.)
        self.owe_touch(side, i);
        Some(&self.recent[side][i].entry)
    }

    /// The TLB-hit path of a user load or fetch with a first level shared
    /// by both sides (see `SHARED_KEY`), whose physical address the
    /// caller does not need: whether a recent hit of its side holds `va`
    /// for the address space of the last [`Tlb::context_switch`] (as
    /// [`Tlb::lookup_repeat_shared`]) and grants the access (one that does
    /// not is never taken, see `EMPTY_WORD`: no rights are tested here).
    /// If so the lookup is done and counted as `lookup_repeat_shared` does
    /// it (its touch owed). If not, nothing was counted or changed: the
    /// caller looks up as usual. Never true with a split first level (its
    /// recent hits' keys never have `SHARED_KEY`).
    #[inline(always)]
    pub fn hit_shared(&mut self, va: VirtAddr, access: LoadOrFetch) -> bool {
        let side = access.side() & 1;
        let key = va.as_u64() >> self.memo_shift[side];
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[side][i];
        if r.word != key | SHARED_KEY | self.hit_word {
            return false;
        }
        // (Added to `lookups_by_kind` at the settlement.)
        self.shared_lookups[side] += 1;
        self.owe_touch(side, i);
        true
    }

    /// `n` repeats of the last hit [`Tlb::hit_shared`] took on `access`'s
    /// side: each a `hit_shared` of that hit's key on that side, with
    /// nothing done to the TLB since but these repeats. Such a repeat finds
    /// the same word (no fill, invalidation or context switch changed it)
    /// at the place owed last of both sides (`last_owed`, which that hit
    /// set and nothing since changed: no settlement, no other hit), so its
    /// `Tlb::owe_touch` records nothing and it is already its side's
    /// last: only its counts are left, the lookup (`shared_lookups`) and the
    /// place's hit (`place_hits`), both added only at the next settlement,
    /// so a caller may add a run of repeats at once, before it does
    /// anything else to the TLB.
    #[inline(always)]
    pub fn hit_shared_again(&mut self, access: LoadOrFetch, n: u64) {
        self.shared_lookups[access.side() & 1] += n;
        self.place_hits[self.last_owed as usize % PLACES] += n;
    }

    /// [`Tlb::store_recent`] for a first level shared by both sides (the
    /// span loop without recent hits): the data side's recent hit holding
    /// `va` for the address space of the last [`Tlb::context_switch`] (as
    /// [`Tlb::lookup_repeat_shared`]), when its entry grants user writes
    /// and is already dirty ([`TlbEntry::takes_user_store`]): the lookup
    /// is then done and counted as `lookup_repeat_shared` does it (its
    /// touch owed), and the physical address returned (no walk, no
    /// fault). `None` otherwise, with nothing counted or changed: the
    /// caller translates as usual. Never taken with a split first level.
    #[inline(always)]
    pub fn store_shared(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        let key = va.as_u64() >> self.memo_shift[DATA];
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[DATA][i];
        if r.store_word != key | SHARED_KEY | self.hit_word {
            return None;
        }
        let pa = r.entry.translate(va);
        self.lookups_by_kind[AccessKind::Write.index()] += 1;
        self.owe_touch(DATA, i);
        Some(pa)
    }

    /// A hit on recent `i` of `side` in a shared first level: counted at
    /// its place (`place_hits`: the first level's hit and `tick`, added at
    /// the next settlement), the touch the probe it skips would make
    /// deferred (see [`Tlb::settle`]), and it becomes the side's last.
    ///
    /// Nothing but the tick is recorded when the place is the one owed
    /// last of both sides (`last_owed`: its stamp is the newest owed) and
    /// still owed (a settlement, hence any probe, fill or invalidation,
    /// clears it): its way is then already the last one the replay
    /// touches, so a later stamp would replay it in the same place, and it
    /// is already its side's last. The side's last place alone would not
    /// do: the other side may have hit since, and this hit's touch must
    /// then come after that one. On lsR_linux with one fully associative
    /// array, 46% of the recent hits are such repeats.
    #[inline(always)]
    fn owe_touch(&mut self, side: usize, i: usize) {
        let i = i % RECENT_WAYS;
        let place = (side & 1) * RECENT_WAYS + i;
        // Every hit is counted, recorded or not (into `tick` and the first
        // level's hits at the next settlement).
        self.place_hits[place] += 1;
        if self.last_owed == place as u32 {
            return;
        }
        self.last_owed = place as u32;
        self.owe_seq += 1;
        self.owed_seq[place] = self.owe_seq;
        self.owed[side & 1] |= 1 << i;
        self.last[side & 1] = i as u32;
    }

    /// Whether the first level's recent hits can be taken by
    /// [`Tlb::hit_recent`] (a private direct-mapped table of the last 32
    /// hits a side): split first levels; one shared by both sides keeps
    /// such a table too, but its hits owe touches, so only
    /// [`Tlb::lookup_repeat`] and [`Tlb::lookup`] take them.
    #[must_use]
    pub fn has_recent_hits(&self) -> bool {
        !self.shared_l1
    }

    /// The TLB-hit path of a user load or fetch whose physical address the
    /// caller does not need: whether a recent hit of its side (the table of
    /// recent hits) holds `va` for the address space of the last
    /// [`Tlb::context_switch`] and grants the access (a recent hit that
    /// does not is never taken, see `EMPTY_WORD`: no rights are tested
    /// here). If so the lookup is done, as [`Tlb::lookup_repeat`] does it
    /// (a hit on any but the side's last touches its way), and counted as
    /// it counts it, in `pending` (one increment instead of two counters,
    /// one of them behind the levels' `Vec`). If not, nothing was counted
    /// or changed: the caller looks up as usual. Never true with a first
    /// level shared by both sides (its recent hits' keys never equal a
    /// plain key).
    #[inline(always)]
    pub fn hit_recent(&mut self, va: VirtAddr, access: LoadOrFetch) -> bool {
        let side = access.side() & 1;
        let key = va.as_u64() >> self.memo_shift[side];
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[side][i];
        if r.word != key | self.hit_word {
            return false;
        }
        if self.last[side] != i as u32 {
            // (The side's pending hits are added first if the page size
            // they are counted at changes: they are its last's.)
            self.touch_recent(side, i);
        }
        self.recent_hits[side] += 1;
        true
    }

    /// The shift of the keys [`Tlb::hit_recent`] looks addresses up by on
    /// `access`'s side (`va >> shift`, the side's smallest page): two
    /// addresses in one aligned block of `1 << shift` bytes have one key,
    /// so a caller that keeps the block of the hit it just took can tell
    /// a repeat of it ([`Tlb::hit_recent_again`]).
    #[inline(always)]
    #[must_use]
    pub fn recent_shift(&self, access: LoadOrFetch) -> u32 {
        self.memo_shift[access.side() & 1]
    }

    /// A [`Tlb::hit_recent`] that the caller knows hits the side's last:
    /// its key is that of the last hit `hit_recent` took on this side, and
    /// since then the TLB was changed by nothing but the other side's
    /// recent hits and stores ([`Tlb::hit_recent`], [`Tlb::take_store_at`],
    /// [`Tlb::touch_store`], [`Tlb::count_store`]: none of them writes this
    /// side's words, its last or `hit_word`). `hit_recent` would find the
    /// same word and no touch to make: only its count is left.
    #[inline(always)]
    pub fn hit_recent_again(&mut self, access: LoadOrFetch) {
        self.recent_hits[access.side() & 1] += 1;
    }

    /// The TLB-hit path of a user store (inside one page) whose recent hit
    /// takes it whole: the data side's recent hit holding `va` for the
    /// address space of the last [`Tlb::context_switch`] (as
    /// [`Tlb::hit_recent`]), whose entry grants user writes and is already
    /// dirty ([`TlbEntry::takes_user_store`]). Then the lookup is done as
    /// [`Tlb::lookup_repeat`] does it (a hit on any but the side's last
    /// touches its way), counted as `Mmu::translate` counts it (in
    /// `recent_stores`, one increment), and its physical address returned:
    /// what `Mmu::translate` returns for it, with no walk (the entry is
    /// dirty) and no fault (it grants the store). `None` otherwise, with
    /// nothing counted or changed: the caller translates as usual, which
    /// finds the same recent hit (or probes when this one is not current)
    /// and decides as before. Never taken with a first level shared by
    /// both sides (its recent hits' keys never equal a plain key).
    #[inline(always)]
    pub fn store_recent(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        let (pa, way) = self.store_recent_hit(va)?;
        self.take_store_at(way);
        Some(pa)
    }

    /// The look of [`Tlb::store_recent`], with nothing changed: the
    /// physical address and the recent way that holds `va`, or `None` when
    /// `store_recent` declines. The store is then taken by
    /// [`Tlb::take_store_at`] (or, as [`Tlb::store_needs_touch`] decides,
    /// by [`Tlb::touch_store`] or [`Tlb::count_store`]), after whatever the
    /// caller does first: a caller's path with no touch then needs no call.
    #[inline(always)]
    pub fn store_recent_hit(&self, va: VirtAddr) -> Option<(PhysAddr, usize)> {
        let key = va.as_u64() >> self.memo_shift[DATA];
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[DATA][i];
        if r.store_word != key | self.hit_word {
            return None;
        }
        Some((r.entry.translate(va), i))
    }

    /// Takes the store [`Tlb::store_recent_hit`] found in recent way `way`
    /// of the data side: the way touched unless it is the side's last (as
    /// [`Tlb::lookup_repeat`] touches a hit; pending hits are added first if
    /// their page size changes), the lookup counted. Nothing else may
    /// change the TLB in between; a caller that does something first (a
    /// stamp) keeps only the way across it.
    #[inline(always)]
    pub fn take_store_at(&mut self, way: usize) {
        if self.store_needs_touch(way) {
            self.touch_store(way);
        } else {
            self.count_store();
        }
    }

    /// Whether [`Tlb::take_store_at`] of a store found in recent way `way`
    /// touches it: unless it is the data side's last.
    #[inline(always)]
    #[must_use]
    pub fn store_needs_touch(&self, way: usize) -> bool {
        self.last[DATA] != way as u32
    }

    /// [`Tlb::take_store_at`] of a store whose way needs no touch (the data
    /// side's last): only the lookup counted (one increment, pending).
    #[inline(always)]
    pub fn count_store(&mut self) {
        self.recent_stores += 1;
    }

    /// Per side (`LoadOrFetch::side`), how many lookups [`Tlb::hit_recent`]
    /// has answered since the TLB was made (or restored): a running total,
    /// for counting those of a stretch of lookups by difference (wrapping).
    #[inline(always)]
    #[must_use]
    pub fn recent_hits(&self) -> [u64; 2] {
        self.recent_hits
    }

    /// The recent hits not yet added to the counters, per side.
    #[inline(always)]
    fn pending(&self) -> [u64; 2] {
        [DATA, FETCH].map(|side| self.recent_hits[side].wrapping_sub(self.counted_hits[side]))
    }

    /// How many stores [`Tlb::store_recent`] has taken (tests: that a run
    /// took the path at all).
    #[cfg(test)]
    pub(crate) fn stores_taken(&self) -> u64 {
        self.recent_stores
    }

    /// The stores [`Tlb::store_recent`] took not yet added to the counters.
    #[inline(always)]
    fn pending_stores(&self) -> u64 {
        self.recent_stores.wrapping_sub(self.counted_stores)
    }

    /// The page-size shift of each side's last recent hit (meaningless
    /// for a side with none: it then has nothing pending).
    #[inline(always)]
    fn last_shifts(&self) -> [u32; 2] {
        [DATA, FETCH].map(|side| {
            self.recent[side][self.last[side] as usize % RECENT_WAYS]
                .entry
                .page_shift()
        })
    }

    /// Adds the counts kept apart to the counters: the lookups
    /// [`Tlb::hit_recent`] counted (`Tlb::settle_recent_counts`) and the
    /// pair's quick paths' (`PairCounts`). Done before the TLB is saved
    /// (the pending counts are not saved).
    pub fn settle_counts(&mut self) {
        self.settle_recent_counts();
        self.settle_pair_counts();
    }

    /// Adds [`Tlb::pair_counts`] to the levels' counters. Before a save
    /// ([`Tlb::settle_counts`]) and before `pair_fill`, whose sizes they
    /// are counted at, is worked out again.
    fn settle_pair_counts(&mut self) {
        let counts = std::mem::take(&mut self.pair_counts);
        if counts == PairCounts::default() {
            return;
        }
        let shifts = self.pair_fill.map(|p| u32::from(p.sizes >> 8));
        // (Only a pair of levels takes the paths that count them.)
        debug_assert_eq!(self.levels.len(), 2);
        if let [first, second] = self.levels.as_mut_slice() {
            counts.add_to(&mut first.counters, &mut second.counters, shifts);
        }
    }

    /// Adds the lookups [`Tlb::hit_recent`] counted to the counters: each
    /// a hit, at the first level, on its side's last recent hit. Done
    /// before a side's last recent hit changes, and before the TLB is
    /// saved (the pending counts are not saved).
    #[inline]
    fn settle_recent_counts(&mut self) {
        // A shared first level's recent hits are never taken by
        // `hit_recent` or `store_recent` (their keys carry `SHARED_KEY`):
        // nothing is pending. One test instead of the six loads below on
        // every probe of the fully associative rows.
        if self.shared_l1 {
            return;
        }
        let [read, fetch] = self.pending();
        let stores = self.pending_stores();
        if read | fetch | stores == 0 {
            return;
        }
        self.counted_hits = self.recent_hits;
        self.counted_stores = self.recent_stores;
        self.lookups_by_kind[AccessKind::Read.index()] += read;
        self.lookups_by_kind[AccessKind::Execute.index()] += fetch;
        self.lookups_by_kind[AccessKind::Write.index()] += stores;
        let [data_shift, fetch_shift] = self.last_shifts();
        if let Some(first) = self.levels.first_mut() {
            first.counters.hits.add_shift(data_shift, read + stores);
            first.counters.hits.add_shift(fetch_shift, fetch);
        }
    }

    /// Replays the touches recent hits of a shared first level deferred
    /// (see `Tlb::settle`): before the TLB is saved (they are kept with
    /// the recent hits, which are not saved).
    pub fn settle_touches(&mut self) {
        self.settle();
    }

    /// The entry [`Tlb::lookup_repeat`] just returned for an access of `kind`.
    #[inline(always)]
    #[must_use]
    pub fn last_hit(&self, kind: AccessKind) -> &TlbEntry {
        let side = side(kind);
        &self.recent[side][self.last[side] as usize % RECENT_WAYS].entry
    }

    /// What a lookup of address space `asid` ORs into its key to build
    /// the word it compares with a recent hit's: `hit_word` for the
    /// current address space, [`NO_CONTEXT`] (in no word) for any other.
    /// The address space itself, not its tag: with tags off every tag is
    /// 0, so a hit of one address space would serve another's lookup just
    /// as the probe would; keeping the address space instead spares the
    /// hit path the test of `asid_tags`, and a lookup of another address
    /// space (which the simulator never makes: it looks up for the
    /// current one) then just probes, which finds the same entry and
    /// touches and counts exactly as the recent hit would have.
    #[inline(always)]
    fn lookup_word(&self, asid: Asid) -> u64 {
        if u32::from(asid.as_u16()) == self.hit_asid {
            self.hit_word
        } else {
            NO_CONTEXT
        }
    }

    /// The `Recent::word` of a hit on `entry` that a probe of `side` for
    /// address space `asid` remembers under `key`: [`EMPTY_WORD`] unless
    /// it is for the current address space (`hit_asid`), its key fits
    /// ([`MIN_RECENT_SHIFT`]) and its entry grants the side's user access
    /// ([`SIDE_RIGHTS`]), so that such a place is never taken.
    #[inline(always)]
    fn recent_word(&self, side: usize, asid: Asid, key: u64, entry: &TlbEntry) -> u64 {
        let shared = if self.shared_l1 { SHARED_KEY } else { 0 };
        if u32::from(asid.as_u16()) == self.hit_asid
            && self.memo_shift[side & 1] >= MIN_RECENT_SHIFT
            && entry.perms().contains(SIDE_RIGHTS[side & 1])
        {
            key | shared | self.hit_word
        } else {
            EMPTY_WORD
        }
    }

    /// Starts a new generation of recent hits, so that no word made
    /// before matches (kept in `hit_word` too). After the last generation
    /// ([`RECENT_GEN_MAX`]) every word is cleared and the generations
    /// start again at the first: a word of an earlier round never matches
    /// either. Forgets the remembered hits, not their places' entries and
    /// ways (touches owed there are still replayed, see `Tlb::settle`).
    #[inline]
    fn next_recent_gen(&mut self) {
        if self.recent_gen >= RECENT_GEN_MAX {
            self.wrap_recent_gen();
        } else {
            self.recent_gen += RECENT_GEN_STEP;
        }
        self.set_hit_word();
    }

    /// [`Tlb::next_recent_gen`] after the last generation: every word
    /// cleared, the first generation again. Once in 1023 generations.
    #[cold]
    #[inline(never)]
    fn wrap_recent_gen(&mut self) {
        for r in self.recent.iter_mut().flatten() {
            r.word = EMPTY_WORD;
            r.store_word = EMPTY_WORD;
        }
        self.recent_gen = RECENT_GEN_STEP;
    }

    /// A hit on recent `i` of `side`, not the side's last: its way is
    /// marked used, as the probe it skips would, and it becomes the last.
    /// Out of line (1.6M calls on lsR_linux, loads, fetches and stores).
    #[inline(never)]
    fn touch_recent(&mut self, side: usize, i: usize) {
        self.touch_recent_in_line(side, i);
    }

    /// [`Tlb::take_store_at`] with its touch (way `way` of the data side is
    /// not the side's last): the touch, then the store counted (after, so
    /// that a settlement the touch makes leaves it pending at the new
    /// last's page size). Out of line, as
    /// `Tlb::touch_recent`: the caller's stamp is written first, so this
    /// is its last call.
    #[inline(never)]
    pub fn touch_store(&mut self, way: usize) {
        self.touch_recent_in_line(DATA, way);
        self.count_store();
    }

    /// The body of [`Tlb::touch_recent`]. Its common case (the page size of
    /// the side's last, a tree-PLRU way) makes no call, and its others only
    /// calls in tail position (the settlement of pending counts on a change
    /// of page size, the touch of other policies), so it saves no
    /// registers (a call in the middle made it save four on every touch).
    #[inline(always)]
    fn touch_recent_in_line(&mut self, side: usize, i: usize) {
        let (side, i) = (side & 1, i % RECENT_WAYS);
        // The side's pending hits are counted at its last's page size (see
        // `settle_counts`): they are added first only when the new last's
        // size differs (with one page size, never).
        let last = self.last[side] as usize % RECENT_WAYS;
        if self.recent[side][i].entry.page_shift() != self.recent[side][last].entry.page_shift() {
            return self.touch_recent_settling(side, i);
        }
        self.last[side] = i as u32;
        let r = &self.recent[side][i];
        if !r.plru {
            return self.touch_way_of(side, i);
        }
        let (array, set, way, bits) = (usize::from(r.array), r.set, r.way, r.bits);
        if let Some(array) = self
            .levels
            .first_mut()
            .and_then(|first| first.arrays.get_mut(array))
        {
            array.apply_plru(set, way, bits);
        }
    }

    /// [`Tlb::touch_recent`] when the side's last has another page size:
    /// the pending counts settled first ([`Tlb::settle_counts`]). Rare, out
    /// of line.
    #[cold]
    #[inline(never)]
    fn touch_recent_settling(&mut self, side: usize, i: usize) {
        self.settle_recent_counts();
        self.last[side & 1] = (i % RECENT_WAYS) as u32;
        self.touch_way_of(side, i);
    }

    /// Marks the way of recent `i` of `side` used, as a probe that finds
    /// it does. Out of line: [`Tlb::touch_recent`] makes a tree-PLRU touch
    /// itself, the other policies' touches come here.
    #[inline(never)]
    fn touch_way_of(&mut self, side: usize, i: usize) {
        let r = &self.recent[side & 1][i % RECENT_WAYS];
        if let Some(array) = self
            .levels
            .first_mut()
            .and_then(|first| first.arrays.get_mut(usize::from(r.array)))
        {
            if r.plru {
                array.apply_plru(r.set, r.way, r.bits);
            } else {
                array.touch_way(r.set, r.way);
            }
        }
    }

    /// Looks `va` up for `asid` and an access of `kind`, counting the lookup.
    /// A hit below the first level is copied into the levels above.
    ///
    /// The hot path: no allocation, no dynamic dispatch. The last 32
    /// first-level hits of each side are remembered, by the
    /// low bits of their smallest-granule region (a small memo, as
    /// simulators and some cores keep); a lookup for the same address space
    /// in the same region as one of them returns it without probing. This
    /// is exact, not an approximation: every fill and invalidation forgets
    /// them all, so the probe skipped would have found the same entry in
    /// the same slot; a hit on any but the side's last marks its way used
    /// exactly as that probe would; and the side's last is the last way its
    /// side touched, so re-marking it changes nothing (true LRU order and
    /// tree-PLRU bits alike). In a first level shared by both sides the
    /// other side's touches break that, so there every hit owes its touch;
    /// those are deferred and replayed, in order, before anything else
    /// reads or changes the replacement state (see `Tlb::settle`).
    /// Counters are bumped exactly as a probe would.
    #[inline]
    pub fn lookup(&mut self, asid: Asid, va: VirtAddr, kind: AccessKind) -> Option<TlbHit> {
        let tag = self.tag(asid);
        let side = side(kind);
        self.lookups_by_kind[kind.index()] += 1;
        let key = va.as_u64() >> self.memo_shift[side];
        if !self.shared_l1 {
            let i = key as usize % RECENT_WAYS;
            let r = &self.recent[side][i];
            if r.word == key | self.lookup_word(asid) {
                let entry = r.entry;
                if let Some(first) = self.levels.first_mut() {
                    first.counters.hits.bump_shift(entry.page_shift());
                }
                if self.last[side] != i as u32 {
                    self.touch_recent(side, i);
                }
                return Some(TlbHit {
                    entry,
                    level: 0,
                    pa: entry.translate(va),
                });
            }
            return self.probe(asid, tag, va, side);
        }
        let i = key as usize % RECENT_WAYS;
        let r = &self.recent[side][i];
        if r.word == key | SHARED_KEY | self.lookup_word(asid) {
            let entry = r.entry;
            // (The first level's hit is counted in `place_hits`.)
            self.owe_touch(side, i);
            return Some(TlbHit {
                entry,
                level: 0,
                pa: entry.translate(va),
            });
        }
        self.probe(asid, tag, va, side)
    }

    /// [`Tlb::lookup`] right after [`Tlb::hit_recent`] of the same `asid`,
    /// `va` and `kind` returned false, for a split first level
    /// (`!shared_l1`): the probe alone, always in line (for
    /// `Mmu::translate_unremembered`, which the span loop calls out of line
    /// on most references of a walk-heavy run). The recent-hit test is
    /// skipped: `hit_recent` just made it. If it failed, `lookup`'s would
    /// too: for the current address space it compares the same word, for
    /// any other [`NO_CONTEXT`], which no recent hit holds. Kept apart
    /// from `lookup` so that `lookup` (in line in
    /// `Mmu::lookup`, which the fully associative rows take) compiles as
    /// before: one body with two in-line users changed the inliner's
    /// choices there, and cost those rows 1.1%.
    #[inline(always)]
    pub(super) fn lookup_unremembered<A: ProbeAnswer>(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        kind: AccessKind,
    ) -> A {
        debug_assert!(!self.shared_l1);
        let tag = self.tag(asid);
        self.lookups_by_kind[kind.index()] += 1;
        let side = side(kind);
        // In a run of first-level hits the general probe, in one call: the
        // pair's search and then `probe_seen` cost a first-level hit about
        // 70 instructions more (the `.vmt` row, whose probes are
        // first-level hits one after another: +1.6%). `general_next` says
        // so: a first-level hit's record sets it when the memos were set
        // already (a first-level hit before it, no fill between), and
        // every fill and copy-up (a full miss's, a second-level hit's)
        // clears it (`Tlb::forget_memos`). After one first-level hit alone
        // (`memos_set`, which chose before) the next probe is the pair's:
        // on the walk-heavy zipf row it misses the first level 88% of the
        // time, where the general probe's miss cost about 55 instructions
        // more than the pair's. It only chooses the code, never the answer.
        if self.general_next {
            return self.probe_walking_general(asid, tag, va, side);
        }
        self.probe_pair(va, side, asid)
    }

    /// The walking probe of [`Tlb::lookup_unremembered`] outside a run of
    /// first-level hits: the pair's search ([`Tlb::probe_walking`], in
    /// line), a full miss answered here, else [`Tlb::probe_seen`], called
    /// last with the same answer type. With [`PaHit`], returned in
    /// registers, that call is a jump: the miss path saves no register,
    /// and the caller makes one call and one test of its answer (with
    /// the hit through memory it made two calls, the second's arguments
    /// set up after the first's answer was tested).
    ///
    /// The arguments in `probe_seen`'s order, the address space's tag
    /// worked out there: fewer values kept in registers across the
    /// search, none moved for the jump.
    ///
    /// A tag seen at either level goes on to a function of its own
    /// ([`Tlb::probe_first_seen`], [`Tlb::probe_second_seen`]), the set
    /// passed alone: the search's exits are apart already, so each jump
    /// costs nothing, and each hit's function saves only the registers its
    /// own path needs, without the dispatch on the code and with its
    /// answer made in registers (in one body with both paths, the answer
    /// went through the stack to a common exit).
    #[inline(never)]
    fn probe_pair<A: ProbeAnswer>(&mut self, va: VirtAddr, side: usize, asid: Asid) -> A {
        let ends = PairEnds {
            asid,
            answer: std::marker::PhantomData,
        };
        self.probe_walking(va, side, ends)
    }

    /// [`Tlb::probe_pair`] after its first level (of `W` ways) saw the
    /// page's tag first in way `K` of the set whose first slot is `base`:
    /// [`Tlb::probe_first_seen`] of slot `base + K`. A function per way (a
    /// jump and an add): the search's exit for each way jumps to its own,
    /// so the way reaches the hit's function with no instruction on the
    /// search's miss path. (Calls of one function with the way as an
    /// argument were merged by LLVM into one, the way a register set
    /// before every compare of the search: a `mov` a way on every miss.)
    #[inline(never)]
    fn probe_first_seen_at<A: ProbeAnswer, const W: usize, const K: u32>(
        &mut self,
        va: VirtAddr,
        side: usize,
        base: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        self.probe_first_seen::<A, W>(va, side, base + K, vpn, asid)
    }

    /// [`Tlb::probe_first_seen_at`] of the second level (12 ways):
    /// [`Tlb::probe_second_seen`] of slot `base + K`.
    #[inline(never)]
    fn probe_second_seen_at<A: ProbeAnswer, const K: u32>(
        &mut self,
        va: VirtAddr,
        side: usize,
        base: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        self.probe_second_seen(va, side, base + K, vpn, asid)
    }

    /// [`Tlb::probe_pair`] after its first level's array (`W` ways) saw the
    /// page's tag first in slot `slot`; `vpn` is the page number the
    /// search compared.
    ///
    /// A first-level hit that no record would pay for (no memo set, and a
    /// fill of the first level since the side's last first-level hit, or
    /// no record kept for the side) is taken here: the entry checked, the
    /// slot touched and the hit counted, with nothing remembered and no
    /// stack frame. A record pays only when the page is looked up again
    /// before the next fill forgets it: on the walk-heavy zipf row, where
    /// a fill follows most probes, 7,300 of the 263,000 records were ever
    /// used, and each cost the hit about 150 instructions (the record's
    /// 64 bytes, its word, the touch's plan, the registers and spills of
    /// that path) and a later fill or copy-up the forgetting of it. The
    /// record is kept where hits come in runs (a second first-level hit
    /// with no fill between: the `.vmt` row's), taken with everything else
    /// ([`Tlb::probe_first_seen_slow`]: a memo set, the tag another
    /// address space's or size's). A record only lets later lookups skip
    /// the probe: the same answers, touches and counts either way.
    ///
    /// The arguments in the order that leaves them where the search has
    /// them (the address space's after them: moved once, out of the shift
    /// count's register).
    #[inline(never)]
    fn probe_first_seen<A: ProbeAnswer, const W: usize>(
        &mut self,
        va: VirtAddr,
        side: usize,
        slot: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        let tag = self.tag(asid);
        if let Some(hit) = self.first_hit_unrecorded::<W>(va, side & 1, slot as usize, vpn, tag) {
            return A::of(Some(hit));
        }
        self.probe_first_seen_slow(va, side, slot / W as u32, vpn, asid)
    }

    /// The body of [`Tlb::probe_first_seen`]'s own path: the hit of `slot`
    /// (the lowest way of its set with the page's tag), counted and
    /// touched, when no record is to be made; `None`, with nothing
    /// changed, otherwise.
    #[inline(always)]
    fn first_hit_unrecorded<const W: usize>(
        &mut self,
        va: VirtAddr,
        s: usize,
        slot: usize,
        vpn: u64,
        tag: Asid,
    ) -> Option<TlbHit> {
        // (A memo set: recorded, so that the side's last recent hit stays
        // the way it touched last.)
        if self.memos_set {
            return None;
        }
        // (The first level's fills: its counter's and those kept apart.)
        let pending = self.pair_counts.first_fills();
        let first = self.levels.first_mut()?;
        let fills = first.counters.fills + pending;
        if self.memo_ok[s] && self.hit_fills[s] == fills {
            return None;
        }
        let array = first.arrays.get_mut(usize::from(first.sole[s].1))?;
        // (The touch from the tree's constants: another policy takes the
        // general path.)
        if !array.is_tree_plru() {
            return None;
        }
        let entry = array.hit_at::<W>(slot, vpn, tag)?;
        first.counters.hits.bump_shift(entry.page_shift());
        self.hit_fills[s] = fills;
        Some(TlbHit {
            entry,
            level: 0,
            pa: entry.translate(va),
        })
    }

    /// [`Tlb::probe_pair`] after its first level saw the page's tag in set
    /// `set` ([`Tlb::pair_first_seen`]), when [`Tlb::probe_first_seen`]
    /// does not take it (a record to make, or the tag not the entry), or
    /// the way was not known; `vpn` is the page number the search
    /// compared. Out of line, searched again.
    #[inline(never)]
    fn probe_first_seen_slow<A: ProbeAnswer>(
        &mut self,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        let tag = self.tag(asid);
        A::of(self.pair_first_seen(asid, tag, va, set, vpn, side & 1))
    }

    /// [`Tlb::probe_pair`] after its second level's array (12 ways) saw the
    /// page's tag first in slot `slot`; `vpn` is the page number the
    /// search compared. The arguments as [`Tlb::probe_first_seen`]'s.
    ///
    /// The walk-heavy row's second-level hit ([`Tlb::second_hit_quick`]:
    /// the x86-64 data pair, [`PAIR_4_12_FIRST`], nothing to forget, the
    /// first level full) is taken here with no call and no stack frame;
    /// anything else goes on to [`Tlb::probe_second_seen_slow`] (a tail
    /// call) with nothing changed.
    #[inline(never)]
    fn probe_second_seen<A: ProbeAnswer>(
        &mut self,
        va: VirtAddr,
        side: usize,
        slot: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        let tag = self.tag(asid);
        if let Some(hit) = self.second_hit_quick(va, side & 1, slot as usize, vpn, tag) {
            return A::of(Some(hit));
        }
        self.probe_second_seen_slow(va, side, slot / 12, vpn, asid)
    }

    /// The second-level hit of `slot` (the lowest way of its set with the
    /// page's tag) and its copy-up, as [`Tlb::pair_second_seen`] makes
    /// them, for the walk-heavy row's pair alone: the side's pair fill is
    /// [`PAIR_4_12_FIRST`] (both arrays the first of their level, 4 and 12
    /// ways, tree-PLRU; the first of one page size), the second level's
    /// array searched is its first, no memo is set (nothing to forget;
    /// nothing is owed either: the pair's search is not taken then), the
    /// entry is the page's, not global and of the pair's sizes, and the
    /// first level's array is full of them
    /// ([`TlbArray::full_of_first`]). Then the touch is the tree's
    /// constants' ([`TlbArray::hit_at_of`]) and the copy-up is
    /// [`Tlb::fill_missed`]'s first path at the first level
    /// ([`TlbArray::fill_full_plru`]): the same victim, slot and counts as
    /// the quick fill `copy_up_second` makes. `None`, with nothing changed,
    /// otherwise.
    #[inline(always)]
    fn second_hit_quick(
        &mut self,
        va: VirtAddr,
        s: usize,
        slot: usize,
        vpn: u64,
        tag: Asid,
    ) -> Option<TlbHit> {
        let p = self.pair_fill[s];
        if !p.first_4_12 || self.memos_set {
            return None;
        }
        debug_assert_eq!(self.last_owed, NO_RECENT);
        let Self {
            levels,
            known_miss,
            pair_counts,
            ..
        } = self;
        let [first, second] = levels.as_mut_slice() else {
            return None;
        };
        if second.sole[s].1 != 0 {
            return None;
        }
        let (Some(a0), Some(a1)) = (first.arrays.first_mut(), second.arrays.first_mut()) else {
            return None;
        };
        if !a0.full_of_first() {
            return None;
        }
        let e = a1.hit_at_of::<12>(slot, vpn, tag, p.sizes)?;
        // (The answer made before the copy-up: the span loop's, the
        // address and flags, kept in two registers; the copy-up copies the
        // slot itself.)
        let hit = TlbHit {
            entry: *e,
            level: 1,
            pa: e.translate(va),
        };
        // (The second level's hit and the copy-up's miss, fill and eviction
        // at the first, at the pair's page size: counted apart, see
        // `PairCounts`.)
        pair_counts.copies[s] += 1;
        // (`copy_up_second`: `forget_memos` has nothing to do; the known
        // miss forgotten; the first level's quick fill.)
        *known_miss = KnownMiss::NONE;
        a0.fill_full_plru::<4>(e);
        Some(hit)
    }

    /// [`Tlb::probe_pair`] after its second level saw the page's tag in set
    /// `set` ([`Tlb::pair_second_seen`]), when [`Tlb::probe_second_seen`]
    /// does not take it; `vpn` is the page number the search compared. Out
    /// of line, searched again.
    #[inline(never)]
    fn probe_second_seen_slow<A: ProbeAnswer>(
        &mut self,
        va: VirtAddr,
        side: usize,
        set: u32,
        vpn: u64,
        asid: Asid,
    ) -> A {
        let tag = self.tag(asid);
        A::of(self.pair_second_seen(tag, va, set as usize, vpn, side & 1))
    }

    /// Stops using both memos (after any change to the entries).
    #[inline(always)]
    fn forget_memos(&mut self) {
        self.settle();
        if self.memos_set {
            if self.memo_keys {
                // Only the keys: a memo is used only when its key matches.
                for m in self.memo.iter_mut().flatten() {
                    m.key = NO_KEY;
                }
                self.memo_keys = false;
            }
            // And a new generation: no recent hit's word matches it.
            self.settle_recent_counts();
            self.next_recent_gen();
            self.last = [NO_RECENT; 2];
            self.memos_set = false;
            self.general_next = false;
        }
    }

    /// Replays the touches recent hits deferred (a shared first level
    /// only): the ways of the recent hits made since the last settlement,
    /// once each, in the order of their last hits. Between two settlements
    /// the only touches are such hits (a probe, fill or invalidation
    /// settles first), and true LRU order and tree-PLRU bits depend only on
    /// the order of each way's last touch (every bit is written by the last
    /// touch through it), so this leaves the replacement state exactly as
    /// touching on every hit would. A way two recent hits share (pieces of
    /// one large page, or a page both sides use) is replayed twice, in
    /// order: its last touch still comes last. A place is overwritten only
    /// by a probe, after its settlement, so no owed touch is lost.
    #[inline(always)]
    fn settle(&mut self) {
        // Something is owed (a hit since the last settlement sets
        // `last_owed`), or a restored TLB has not settled yet.
        if self.last_owed != NO_RECENT {
            self.settle_pending();
        }
    }

    /// The body of [`Tlb::settle`] when something is owed. The places hit
    /// are sorted by their last hits' stamps as one number each (the stamp
    /// above the place's index: no two hits share a stamp), by insertion as
    /// they are gathered (a settlement replays a handful: 5 on average on
    /// lsR_linux with 1536 ways, 3 with 64), and each way is touched
    /// directly. A library sort by a key read through the place, and a
    /// lookup of the level and array per touch, cost the fully associative
    /// rows some 300 instructions a settlement.
    #[inline(never)]
    fn settle_pending(&mut self) {
        if self.memo_debt {
            self.settle_memos();
        }
        let owed = self.owed;
        self.owed = [0; 2];
        self.last_owed = NO_RECENT;
        if self
            .levels
            .first()
            .is_some_and(|first| matches!(&first.arrays[..], [a] if a.lru_in_stamps()))
        {
            return self.settle_stamped(owed);
        }
        // The places hit (`side * RECENT_WAYS + i`) as `stamp << PLACE_BITS
        // | place`, in the order of their last hits. A stamp needs fewer
        // than 64 - PLACE_BITS bits (one per hit, counted from the run's
        // start: a run would need 2^58 hits to wrap).
        let order = &mut self.settle_order;
        let mut n = 0;
        let mut hits = 0;
        for (side, mut bits) in owed.into_iter().enumerate() {
            while bits != 0 {
                let place = side * RECENT_WAYS + bits.trailing_zeros() as usize;
                hits += self.place_hits[place % PLACES];
                let key = self.owed_seq[place % PLACES] << PLACE_BITS | place as u64;
                let mut j = n % PLACES;
                while j > 0 && order[(j - 1) % PLACES] > key {
                    order[j % PLACES] = order[(j - 1) % PLACES];
                    j -= 1;
                }
                order[j % PLACES] = key;
                n += 1;
                bits &= bits - 1;
            }
        }
        self.tick += hits;
        self.settled = self.tick;
        let [loads, fetches] = std::mem::take(&mut self.shared_lookups);
        self.lookups_by_kind[AccessKind::Read.index()] += loads;
        self.lookups_by_kind[AccessKind::Execute.index()] += fetches;
        let Some(first) = self.levels.first_mut() else {
            return;
        };
        for &key in &self.settle_order[..n.min(PLACES)] {
            let place = (key % PLACES as u64) as usize;
            let r = &self.recent[place / RECENT_WAYS % 2][place % RECENT_WAYS];
            let hits = std::mem::take(&mut self.place_hits[place]);
            first.counters.hits.add_shift(r.entry.page_shift(), hits);
            if let Some(array) = first.arrays.get_mut(usize::from(r.array)) {
                if r.plru {
                    array.apply_plru(r.set, r.way, r.bits);
                } else {
                    array.touch_way_in_line(r.set, r.way);
                }
            }
        }
    }

    /// [`Tlb::settle_pending`] of a first level of one LRU array still
    /// keeping its order as stamps (see `Victims::lists_later`: a fully
    /// associative TLB that has not evicted yet): the places hit are not
    /// sorted, each way is stamped at once with its place's last hit's
    /// stamp, counted from the array's clock (so above every stamp it
    /// holds), and the clock moved past the newest. A way two places share
    /// keeps the later stamp. The order is then the one the touches in
    /// order leave (stamps are only compared), without the insertion
    /// sort, which cost the fully associative rows about 14 instructions a
    /// place replayed. Same counts as `settle_pending`.
    #[inline(always)]
    fn settle_stamped(&mut self, owed: [u32; 2]) {
        let mut hits = 0;
        // The oldest and newest stamps owed (no two hits share one).
        let (mut oldest, mut newest) = (u64::MAX, 0);
        for (side, mut bits) in owed.into_iter().enumerate() {
            while bits != 0 {
                let place = side * RECENT_WAYS + bits.trailing_zeros() as usize;
                let seq = self.owed_seq[place % PLACES];
                oldest = oldest.min(seq);
                newest = newest.max(seq);
                bits &= bits - 1;
            }
        }
        let [loads, fetches] = std::mem::take(&mut self.shared_lookups);
        self.lookups_by_kind[AccessKind::Read.index()] += loads;
        self.lookups_by_kind[AccessKind::Execute.index()] += fetches;
        if let Some(first) = self.levels.first_mut()
            && let Some(array) = first.arrays.first_mut()
        {
            for (side, mut bits) in owed.into_iter().enumerate() {
                while bits != 0 {
                    let place = side * RECENT_WAYS + bits.trailing_zeros() as usize;
                    let r = &self.recent[side % 2][place % RECENT_WAYS];
                    let n = std::mem::take(&mut self.place_hits[place % PLACES]);
                    hits += n;
                    first.counters.hits.add_shift(r.entry.page_shift(), n);
                    let ahead = self.owed_seq[place % PLACES] - oldest + 1;
                    array.stamp_ahead(r.set, r.way, ahead);
                    bits &= bits - 1;
                }
            }
            if newest >= oldest {
                array.advance_stamps(newest - oldest + 1);
            }
        }
        self.tick += hits;
        self.settled = self.tick;
    }

    /// The touches the memos of a TLB restored from a checkpoint of an
    /// earlier version owe (the memos hit after `settled`), in the order
    /// of their last hits: before any made since (their stamps are all
    /// later). Memos are no longer made or used.
    #[cold]
    fn settle_memos(&mut self) {
        self.memo_debt = false;
        let mut owed = [(0u64, 0u8, 0u32); 2 * MEMO_WAYS];
        let mut n = 0;
        for m in self.memo.iter().flatten() {
            if m.seq > self.settled {
                owed[n] = (m.seq, m.array, m.slot);
                n += 1;
            }
        }
        owed[..n].sort_unstable_by_key(|&(seq, _, _)| seq);
        if let Some(first) = self.levels.first_mut() {
            for &(_, array, slot) in &owed[..n] {
                if let Some(array) = first.arrays.get_mut(usize::from(array)) {
                    array.touch(slot as usize);
                }
            }
        }
    }

    /// The full lookup, out of line so the recent-hit path stays small: the first
    /// level here, the others in [`Tlb::probe_lower`].
    /// `asid` is the address space looking up, `tag` its tag.
    #[inline(never)]
    fn probe(&mut self, asid: Asid, tag: Asid, va: VirtAddr, side: usize) -> Option<TlbHit> {
        self.settle();
        if let Some(first) = self.levels.first_mut() {
            // The side's arrays that hold entries, in probe order.
            let mut todo = first.probing[side & 1];
            while todo != 0 {
                let index = todo.trailing_zeros() as u8;
                todo &= todo - 1;
                let Some(array) = first.arrays.get_mut(usize::from(index)) else {
                    break;
                };
                if let Some(slot) = array.lookup(tag, va) {
                    let entry = *array.entry(slot);
                    first.counters.hits.bump_shift(entry.page_shift());
                    if self.memo_ok[side] {
                        let plan = first_hit_plan(array, slot);
                        self.remember_first_hit::<false>(asid, va, side, index, entry, plan);
                    }
                    return Some(TlbHit {
                        entry,
                        level: 0,
                        pa: entry.translate(va),
                    });
                }
            }
            first.counters.misses += u64::from(first.serves(side));
        }
        self.probe_lower(tag, va, side)
    }

    /// The walking probe's first step: the default preset's pair (a
    /// first level searching one array of 4 or 8 ways and one size, a
    /// second searching one of 12 ways and two sizes, its other size
    /// empty), when no touches are owed, searched up to the tags alone.
    /// Ends in `ends`' [`WalkEnds::missed`] for a full miss, counted (the
    /// walk-heavy zipf row's 1.16M of 2M probes: the two sets' tag
    /// compares and the three counts), else in what is to be done next,
    /// with nothing counted or touched but the first level's miss where
    /// the end says so: a tag seen at either level
    /// ([`WalkEnds::first_seen`], [`WalkEnds::second_seen`], with the set
    /// and the page number compared at that level's size), the second
    /// level's array holding its other size too ([`WALK_SECOND_SIZES`]),
    /// or any other shape or owed touches ([`WALK_GENERAL`]:
    /// [`Tlb::probe_walking_general`]), both [`WalkEnds::other`].
    ///
    /// Not the hit: in one body with the hits' work
    /// (the way, the entry check, the touch, the hit's record or copy-up),
    /// the miss saved and restored six registers and spilled eight values
    /// (about 30 of its 139 instructions) and followed the levels' and
    /// arrays' vectors with the registers it had left; with the hits in
    /// functions of their own, called from here, it still saved four
    /// around the call (the hit is returned through memory, so the call
    /// was not a jump). Same slots, touches and counts
    /// (`specialised_probes_equal_the_general_one`).
    #[inline(always)]
    fn probe_walking<E: WalkEnds>(&mut self, va: VirtAddr, side: usize, ends: E) -> E::Out {
        let s = side & 1;
        if self.last_owed != NO_RECENT {
            return ends.other(self, va, side, WALK_GENERAL);
        }
        let [first, second] = self.levels.as_mut_slice() else {
            return ends.other(self, va, side, WALK_GENERAL);
        };
        let ((shape, i0), (6, i1)) = (first.sole[s], second.sole[s]) else {
            return ends.other(self, va, side, WALK_GENERAL);
        };
        let Some(a0) = first.arrays.get(usize::from(i0)) else {
            return ends.other(self, va, side, WALK_GENERAL);
        };
        // (A set number is below the entry count, a `u32`: taken as one,
        // the set's first slot needs no overflow test, as in the search.)
        match shape {
            1 => {
                if let Some((set, vpn, way)) = a0.tag_way::<4>(va) {
                    return ends.first_seen::<4>(self, va, side, set as u32, vpn, way);
                }
            }
            2 => {
                if let Some((set, vpn, way)) = a0.tag_way::<8>(va) {
                    return ends.first_seen::<8>(self, va, side, set as u32, vpn, way);
                }
            }
            _ => return ends.other(self, va, side, WALK_GENERAL),
        }
        // (A level with an array to search serves the side.)
        first.counters.misses += 1;
        let seen = match second.arrays.get(usize::from(i1)) {
            Some(a1) if a1.first_size_alone() => a1.tag_way::<12>(va),
            Some(_) => return ends.other(self, va, side, WALK_SECOND_SIZES),
            None => None,
        };
        if let Some((set, vpn, way)) = seen {
            return ends.second_seen::<12>(self, va, side, set as u32, vpn, way);
        }
        second.counters.misses += 1;
        self.full_misses += 1;
        ends.missed()
    }

    /// The walking probe after [`Tlb::probe_walking`] ended in `code`,
    /// neither a full miss nor a tag seen (those [`Tlb::probe_pair`]
    /// answers itself or hands to [`Tlb::probe_first_seen`] and
    /// [`Tlb::probe_second_seen`]): the second level's array holding both
    /// sizes ([`WALK_SECOND_SIZES`]), or the general probe. Out of line.
    #[inline(never)]
    fn probe_seen<A: ProbeAnswer>(
        &mut self,
        va: VirtAddr,
        side: usize,
        asid: Asid,
        code: usize,
    ) -> A {
        let tag = self.tag(asid);
        match code & WALK_CODE_MASK {
            WALK_SECOND_SIZES => A::of(self.pair_second(tag, va, side & 1)),
            _ => self.probe_walking_general(asid, tag, va, side),
        }
    }

    /// [`Tlb::probe_walking`]'s pair after its first level saw the page's
    /// tag in set `set`: the way, the entry check and the touch with its
    /// plan ([`TlbArray::find_seen_planned`]), and the hit counted and
    /// recorded as the general probe's; if the tag was not the entry, the
    /// first level's miss and the second level ([`Tlb::pair_second`]).
    /// The record's touch is the plan the touch applied (`first_hit_parts`
    /// asks the array for it again, out of line).
    #[inline(always)]
    fn pair_first_seen(
        &mut self,
        asid: Asid,
        tag: Asid,
        va: VirtAddr,
        set: u32,
        vpn: u64,
        s: usize,
    ) -> Option<TlbHit> {
        let memo_ok = self.memo_ok[s];
        let first = self.levels.first_mut()?;
        let (shape, index) = first.sole[s];
        let array = first.arrays.get_mut(usize::from(index))?;
        let found = if shape == 1 {
            array
                .find_seen_planned::<4>(set, vpn, tag)
                .map(|(slot, entry, plan)| (entry, plan, (slot / 4, slot % 4)))
        } else {
            array
                .find_seen_planned::<8>(set, vpn, tag)
                .map(|(slot, entry, plan)| (entry, plan, (slot / 8, slot % 8)))
        };
        let Some((entry, plan, (set, way))) = found else {
            first.counters.misses += 1;
            return self.pair_second(tag, va, s);
        };
        first.counters.hits.bump_shift(entry.page_shift());
        if memo_ok {
            let plan = match plan {
                Some(plan) => (true, plan),
                None => (false, (set as u32, way as u32, 0)),
            };
            self.remember_first_hit::<true>(asid, va, s, index, entry, plan);
        }
        Some(TlbHit {
            entry,
            level: 0,
            pa: entry.translate(va),
        })
    }

    /// [`Tlb::probe_walking`]'s pair after its second level's array saw
    /// the page's tag in set `set` (the first level's miss counted): the
    /// way, the entry check and the touch ([`TlbArray::find_seen_entry`]),
    /// then the hit (as [`Tlb::second_hit`] counts and copies it up) or
    /// the full miss.
    #[inline(always)]
    fn pair_second_seen(
        &mut self,
        tag: Asid,
        va: VirtAddr,
        set: usize,
        vpn: u64,
        s: usize,
    ) -> Option<TlbHit> {
        let second = self.levels.get_mut(1)?;
        let index = second.sole[s].1;
        let found = match second.arrays.get_mut(usize::from(index)) {
            Some(array) => array.find_seen_entry::<12>(set, vpn, tag),
            None => None,
        };
        let Some(entry) = found else {
            second.counters.misses += 1;
            self.full_misses += 1;
            return None;
        };
        // (`Tlb::second_hit` with the entry the search read: not found
        // again through the levels, the array and the slot.)
        second.counters.hits.bump_shift(entry.page_shift());
        self.copy_up_second(s, entry, va);
        Some(TlbHit {
            entry,
            level: 1,
            pa: entry.translate(va),
        })
    }

    /// [`Tlb::probe_walking`]'s pair at its second level (the first
    /// level's miss counted) by the array's own search
    /// ([`TlbArray::lookup_shaped`]): when the array holds entries of its
    /// other size too, or after a first-level tag that was not the entry.
    /// Out of line: rare, and its search's copy is large.
    #[inline(never)]
    fn pair_second(&mut self, tag: Asid, va: VirtAddr, s: usize) -> Option<TlbHit> {
        let second = self.levels.get_mut(1)?;
        let index = second.sole[s & 1].1;
        let slot = match second.arrays.get_mut(usize::from(index)) {
            Some(array) => array.lookup_shaped::<6>(tag, va),
            None => None,
        };
        let Some(slot) = slot else {
            second.counters.misses += 1;
            self.full_misses += 1;
            return None;
        };
        self.second_hit(index, slot, va, s)
    }

    /// [`Tlb::probe`] with the levels after the first in line too: for
    /// [`Tlb::lookup_unremembered`], whose walk-heavy callers miss the
    /// first level on most probes (zipf: 87%), and paid a second prologue
    /// and epilogue on each (about 45 instructions of 235). `probe` keeps
    /// them out of line: in line there, they cost a TLB of one level (the
    /// fully associative rows) about two instructions a probe.
    ///
    /// Where a level searches one array for the side with the geometry of
    /// the presets' (`Level::sole`: the x86-64 preset's first levels, 4
    /// or 8 ways and one size, and its second, 12 ways and two sizes),
    /// that array is searched directly with its way count a constant:
    /// without the loop over the arrays, the array's shape dispatch and,
    /// below the first level, the loop over the levels (about 60
    /// instructions of the 180 of a probe that misses both levels, on the
    /// walk-heavy rows). The first-level hit's record is one copy, after
    /// either search (`Tlb::remember_first_hit`): a copy in each
    /// specialised search made the function so large that its callees
    /// stopped being in line, and cost the `.vmt` row's first-level hits
    /// about 45 instructions each. Same slots, touches and counts as the
    /// general probe (`specialised_probes_equal_the_general_one`).
    ///
    /// A TLB of two levels whose second searches one array of 12 ways and
    /// two sizes (the x86-64 preset's) takes a path of its own, chosen by
    /// one test of both levels up front: its first-level miss counted
    /// without the test of the side's arrays (a level with an array to
    /// search serves the side), its second level searched and its full
    /// miss counted without finding the level again through the levels'
    /// vector (the reloads and bounds tests of that cost the walk-heavy
    /// row's full misses about 10 instructions each). The first-level
    /// hit's record stays one copy, after either path's search.
    ///
    /// Reached from [`Tlb::probe_walking`] for every shape but the default
    /// preset's pair, and for that pair when touches are owed (then it
    /// settles them first).
    #[inline(never)]
    fn probe_walking_general<A: ProbeAnswer>(
        &mut self,
        asid: Asid,
        tag: Asid,
        va: VirtAddr,
        side: usize,
    ) -> A {
        A::of(self.walking_general_hit(asid, tag, va, side))
    }

    /// The body of [`Tlb::probe_walking_general`], its hit whole.
    #[inline(always)]
    fn walking_general_hit(
        &mut self,
        asid: Asid,
        tag: Asid,
        va: VirtAddr,
        side: usize,
    ) -> Option<TlbHit> {
        self.settle();
        let s = side & 1;
        let memo_ok = self.memo_ok[s];
        let (index, entry, plan) = match self.levels.as_mut_slice() {
            // The default preset's pair (a second level searching one
            // array of 12 ways and two sizes): its miss found and counted
            // here, with the levels worked out once.
            [first, second] if second.sole[s].0 == 6 => {
                let found = match first.sole[s] {
                    (1, index) => search_one::<1>(&mut first.arrays, index, tag, va),
                    (2, index) => search_one::<2>(&mut first.arrays, index, tag, va),
                    _ => search_each(&mut first.arrays, first.probing[s], tag, va),
                };
                let Some(found) = found else {
                    first.counters.misses += u64::from(first.serves(s));
                    let index = second.sole[s].1;
                    let slot = match second.arrays.get_mut(usize::from(index)) {
                        Some(array) => array.lookup_shaped::<6>(tag, va),
                        None => None,
                    };
                    let Some(slot) = slot else {
                        // (A level with an array to search serves the side.)
                        second.counters.misses += 1;
                        self.full_misses += 1;
                        return None;
                    };
                    return self.second_hit(index, slot, va, s);
                };
                first_hit_parts(&mut first.counters, found, memo_ok)
            }
            [first, ..] => {
                let found = match first.sole[s] {
                    (1, index) => search_one::<1>(&mut first.arrays, index, tag, va),
                    (2, index) => search_one::<2>(&mut first.arrays, index, tag, va),
                    _ => search_each(&mut first.arrays, first.probing[s], tag, va),
                };
                let Some(found) = found else {
                    first.counters.misses += u64::from(first.serves(s));
                    return self.probe_lower_in_line(tag, va, side);
                };
                first_hit_parts(&mut first.counters, found, memo_ok)
            }
            [] => return self.probe_lower_in_line(tag, va, side),
        };
        if let Some(plan) = plan {
            self.remember_first_hit::<true>(asid, va, side, index, entry, plan);
        }
        Some(TlbHit {
            entry,
            level: 0,
            pa: entry.translate(va),
        })
    }

    /// A second-level hit of the walking probe's pair path
    /// ([`Tlb::probe_walking`]): `slot` of the second level's array
    /// `index`, found (and touched) by its search: counted, and copied up
    /// to the first level ([`Tlb::copy_up_second`]).
    #[inline(always)]
    fn second_hit(&mut self, index: u8, slot: usize, va: VirtAddr, side: usize) -> Option<TlbHit> {
        let level = self.levels.get_mut(1)?;
        let entry = *level.arrays.get(usize::from(index))?.entry(slot);
        level.counters.hits.bump_shift(entry.page_shift());
        self.copy_up_second(side, entry, va);
        Some(TlbHit {
            entry,
            level: 1,
            pa: entry.translate(va),
        })
    }

    /// Remembers a first-level hit of `entry` (in `arrays[array]`, whose
    /// touch `plan` is, from [`first_hit_plan`]) as the side's last recent
    /// hit: in its place (the one there is forgotten: it owes no touch,
    /// as the probe settled them); with a shared first level under a key
    /// only `lookup_repeat` and `lookup` match.
    ///
    /// `WALKING`: the walking probe's record (a split first level), which
    /// settles the side's pending counts only on a change of page size;
    /// `Tlb::probe`'s (the fully associative rows') settles as before: the
    /// size test in its copy cost those rows 0.1 to 0.3%.
    #[inline(always)]
    fn remember_first_hit<const WALKING: bool>(
        &mut self,
        asid: Asid,
        va: VirtAddr,
        side: usize,
        array: u8,
        entry: TlbEntry,
        (plru, (set, way, bits)): (bool, (u32, u32, u32)),
    ) {
        let key = va.as_u64() >> self.memo_shift[side];
        let i = key as usize % RECENT_WAYS;
        // The side's pending hits are counted at its last's page size:
        // they are added first only when the new last's size differs, as
        // in `Tlb::touch_recent` (with one page size, never). Settled on
        // every record, they cost the `.vmt` row's first-level hits, most
        // of which have some pending, about 35 instructions each.
        let last = self.last[side & 1] as usize % RECENT_WAYS;
        if !WALKING || entry.page_shift() != self.recent[side & 1][last].entry.page_shift() {
            self.settle_recent_counts();
        }
        let word = self.recent_word(side, asid, key, &entry);
        self.recent[side][i] = Recent {
            word,
            store_word: if entry.takes_user_store() {
                word
            } else {
                EMPTY_WORD
            },
            entry,
            array,
            plru,
            set,
            way,
            bits,
        };
        self.last[side] = i as u32;
        if WALKING {
            self.general_next = self.memos_set;
        }
        self.memos_set = true;
    }

    /// [`Tlb::copy_up`] of a second-level hit of `entry` in the walking
    /// probe ([`Tlb::second_hit`]): in line where the first
    /// level's quick fill takes it (a non-global entry of the side's quick
    /// granule, a first level of 4 or 8 ways), else `copy_up`. Same
    /// fill, same counts: `copy_up` at level 1 forgets the memos and the
    /// known miss and fills the first level through its quick fill too.
    /// In line, the call's prologue and epilogue and the copy of the
    /// entry to the stack for it are not made (most copy-ups are of a
    /// walk-heavy run's second-level hits).
    #[inline(always)]
    fn copy_up_second(&mut self, side: usize, entry: TlbEntry, va: VirtAddr) {
        let q = match self.levels.first() {
            Some(first)
                if !entry.is_global() && first.quick[side & 1].sizes == sizes_of(&entry) =>
            {
                first.quick[side & 1]
            }
            _ => return self.copy_up(1, side, entry, va),
        };
        if q.ways != 4 && q.ways != 8 {
            return self.copy_up(1, side, entry, va);
        }
        self.forget_memos();
        self.forget_known_miss();
        if let Some(first) = self.levels.first_mut() {
            if q.ways == 4 {
                first.fill_quick::<4, false>(q.index, entry);
            } else {
                first.fill_quick::<8, false>(q.index, entry);
            }
        }
    }

    /// The levels after the first, after a first-level miss.
    #[inline(never)]
    fn probe_lower(&mut self, tag: Asid, va: VirtAddr, side: usize) -> Option<TlbHit> {
        self.probe_lower_in_line(tag, va, side)
    }

    /// The body of [`Tlb::probe_lower`], in line in [`Tlb::probe_walking`].
    #[inline(always)]
    fn probe_lower_in_line(&mut self, tag: Asid, va: VirtAddr, side: usize) -> Option<TlbHit> {
        let mut found = None;
        // (Counted from 1 by hand: `enumerate().skip(1)` worked out the
        // number of levels with a division by the level's size on every
        // probe that reached them.)
        let lower = self.levels.get_mut(1..).unwrap_or_default();
        'levels: for (l, level) in (1..).zip(lower.iter_mut()) {
            let mut todo = level.probing[side & 1];
            while todo != 0 {
                let index = todo.trailing_zeros() as usize;
                todo &= todo - 1;
                let Some(array) = level.arrays.get_mut(index) else {
                    break;
                };
                if let Some(slot) = array.lookup(tag, va) {
                    let entry = *array.entry(slot);
                    level.counters.hits.bump_shift(entry.page_shift());
                    found = Some((l, entry));
                    break 'levels;
                }
            }
            // A level with no array for this side is not probed and costs nothing.
            level.counters.misses += u64::from(level.serves(side));
        }
        match found {
            Some((level, entry)) => {
                self.copy_up(level, side, entry, va);
                Some(TlbHit {
                    entry,
                    level,
                    pa: entry.translate(va),
                })
            }
            None => {
                self.full_misses += 1;
                None
            }
        }
    }

    /// Turns the last-hit memo of [`Tlb::lookup`] on (the default) or off.
    /// Results and counters are the same either way; this exists so tests
    /// can prove it.
    #[must_use]
    pub fn with_last_hit_memo(mut self, on: bool) -> Self {
        self.memo_ok = if on {
            self.computed_memo_ok()
        } else {
            [false; 2]
        };
        self.forget_memos();
        self
    }

    fn computed_memo_ok(&self) -> [bool; 2] {
        let first = self.levels.first();
        [DATA, FETCH].map(|side| first.is_some_and(|l| l.serves(side)))
    }

    /// A hit at level `l`: the levels above missed; copy the entry into them.
    /// The probe of those levels just missed (same address space, `va` and
    /// side), so a non-global entry has no slot there: the fills skip the
    /// search for one (see [`TlbArray::fill_absent`]).
    ///
    /// A hit at the second level (most copies: two-level TLBs) fills the
    /// first alone, without the loop over a range of levels (its bounds
    /// test, its end and its step cost a one-level fill about a tenth).
    #[cold]
    fn copy_up(&mut self, l: usize, side: usize, entry: TlbEntry, va: VirtAddr) {
        if entry.is_global() {
            self.insert_levels(0..l, side, entry, va, true);
        } else if l == 1 {
            self.forget_memos();
            self.forget_known_miss();
            if let Some(first) = self.levels.first_mut() {
                first.fill_one_absent_quick(side, entry, va);
            }
        } else {
            self.fill_levels_absent(0..l, side, entry, va);
        }
    }

    /// [`Tlb::insert_levels`] with `count_miss` and `absent` (a non-global
    /// entry whose lookup just missed every level of `range`): each level's
    /// array takes it in its lowest empty way or its victim's
    /// ([`TlbArray::fill_absent`]), with the same counts.
    #[inline]
    fn fill_levels_absent(
        &mut self,
        range: std::ops::Range<usize>,
        side: usize,
        entry: TlbEntry,
        va: VirtAddr,
    ) {
        debug_assert!(!entry.is_global());
        self.forget_memos();
        self.forget_known_miss();
        if let [first, second] = self.levels.as_mut_slice()
            && range.start == 0
            && range.end == 2
        {
            let (q0, q1) = (first.quick[side & 1], second.quick[side & 1]);
            let sizes = sizes_of(&entry);
            if q0.sizes == sizes && q1.sizes == sizes {
                match (q0.ways, q1.ways) {
                    (4, 12) => {
                        first.fill_quick::<4, false>(q0.index, entry);
                        second.fill_quick::<12, false>(q1.index, entry);
                        return;
                    }
                    (8, 12) => {
                        first.fill_quick::<8, false>(q0.index, entry);
                        second.fill_quick::<12, false>(q1.index, entry);
                        return;
                    }
                    (4, 4) => {
                        first.fill_quick::<4, false>(q0.index, entry);
                        second.fill_quick::<4, false>(q1.index, entry);
                        return;
                    }
                    _ => {}
                }
            }
        }
        for level in &mut self.levels[range] {
            level.fill_one_absent(side, entry, va);
        }
    }

    /// Writes `entry` into every level of `range` that serves `side`,
    /// refreshing a slot that holds the same translation (see
    /// [`Tlb::fill_levels_absent`] for a fill that knows there is none).
    fn insert_levels(
        &mut self,
        range: std::ops::Range<usize>,
        side: usize,
        entry: TlbEntry,
        va: VirtAddr,
        count_miss: bool,
    ) {
        self.forget_memos();
        self.forget_known_miss();
        for level in &mut self.levels[range] {
            if !level.serves(side) {
                continue;
            }
            if count_miss {
                level.counters.misses_by_size.bump(entry.page_size());
            }
            match level.insert(side, entry, va) {
                None => {}
                Some(Inserted::Evicted(_)) => {
                    level.counters.fills += 1;
                    level.counters.evictions += 1;
                }
                Some(_) => level.counters.fills += 1,
            }
        }
    }

    /// Caches a translation the walker just found after [`Tlb::lookup`]
    /// missed every level: written into every level that serves `kind` and
    /// can hold it, and counted as a miss of its page size at each.
    ///
    /// `entry` must have been made with [`Tlb::tag`] of the address space
    /// (the MMU does this), and must cover `va`.
    pub fn fill(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        debug_assert!(entry.page_covers(va), "{entry:?} does not cover {va}");
        self.insert_levels(0..self.levels.len(), side(kind), entry, va, true);
    }

    /// [`Tlb::fill`] right after [`Tlb::lookup`] of the same address space,
    /// `va` and `kind` missed every level, with no change to the TLB since
    /// (the MMU's walk in between touches only memory and the walk caches).
    /// The page then has no slot at any level, so for a non-global entry
    /// each array skips the search for one; a global entry (which may share
    /// a slot with another address space's) takes [`Tlb::fill`]. Same
    /// entries, replacement state and counters as `fill`.
    ///
    /// A two-level TLB whose levels both take the entry through their
    /// quick fills (the presets' and a 4 KiB page: nearly every fill of a
    /// walk-heavy run) fills them through its [`PairFill`], chosen by one
    /// compare of the entry's sizes and one dispatch on the pair's code;
    /// anything else takes the general fill ([`Tlb::fill_missed_general`]).
    /// Out of line, with the pair's fills in it: a dispatch of its own in
    /// front of them, in line in the walk or out of line, cost them a
    /// second prologue or the walk some 25 instructions a fill.
    ///
    /// The walk-heavy row's fills ([`PAIR_4_12_FIRST`], both arrays
    /// tree-PLRU, nothing owed or memoised, both arrays full of entries of
    /// the entry's size: its every fill once the STLB is full) take a
    /// path of their own in front, with no call in it: the victims from
    /// the trees' constants ([`TlbArray::fill_full_plru`]), no granule
    /// read, and no stack frame (the rest is a tail call to
    /// [`Tlb::fill_missed_slow`]; with the settlement's call in the same
    /// function, six registers were saved and restored on every fill).
    #[inline(never)]
    pub(crate) fn fill_missed(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        debug_assert!(entry.page_covers(va), "{entry:?} does not cover {va}");
        let s = side(kind) & 1;
        let p = self.pair_fill[s];
        if p.first_4_12 && p.sizes == sizes_of(&entry) && !entry.is_global() {
            if self.last_owed != NO_RECENT || self.memos_set {
                return self.fill_missed_forgetting(entry, va, kind);
            }
            // (`forget_memos` has nothing to do: nothing owed, no memo.)
            self.forget_known_miss();
            if let [first, second] = self.levels.as_mut_slice()
                && let (Some(a0), Some(a1)) = (first.arrays.first_mut(), second.arrays.first_mut())
                && a0.full_of_first()
            {
                if a1.full_of_first() {
                    // (Each level's miss of the entry's size, fill and
                    // eviction counted apart, one increment: see
                    // `PairCounts`. The entry's sizes are the pair's.)
                    self.pair_counts.fills[s] += 1;
                    a0.fill_full_plru::<4>(&entry);
                    a1.fill_full_plru::<12>(&entry);
                    return;
                }
                // A second level with room (the swap row: each page
                // swapped out is flushed from it): the first level here,
                // the second through its quick fill, out of line (not
                // the whole pair again from the dispatch: about 40
                // instructions a fill on that row).
                first.counters.misses_by_size.bump_shift(entry.page_shift());
                first.counters.fills += 1;
                a0.fill_full_plru::<4>(&entry);
                first.counters.evictions += 1;
                return second.fill_quick_out_of_line::<12>(&entry);
            }
        }
        self.fill_missed_slow(entry, va, kind);
    }

    /// [`Tlb::fill_missed`] with touches owed or memos to forget (about one
    /// fill in seven of the walk-heavy row): [`Tlb::forget_memos`], then
    /// `fill_missed` again, which then has neither. Out of line, so that
    /// `fill_missed` makes no call but its tail calls (no stack frame).
    #[inline(never)]
    fn fill_missed_forgetting(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        self.forget_memos();
        debug_assert!(self.last_owed == NO_RECENT && !self.memos_set);
        self.fill_missed(entry, va, kind);
    }

    /// [`Tlb::fill_missed`] but for its first path: through the pair fill
    /// where the entry takes it, else the general fill.
    #[inline(never)]
    fn fill_missed_slow(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        let p = self.pair_fill[side(kind) & 1];
        // (Only a pair's sizes are an entry's: `PairFill::NONE` and
        // `PairFill::UNKNOWN` hold none.)
        if p.sizes == sizes_of(&entry) && !entry.is_global() {
            // (The walk-heavy row's pair tested alone first: in the match,
            // a jump table, and the other pairs' array indices read before
            // it.)
            if p.first_4_12 {
                return self.fill_pair::<4, 12, true>(0, 0, entry);
            }
            match p.pair {
                PAIR_4_12 | PAIR_4_12_FIRST => {
                    return self.fill_pair::<4, 12, false>(p.first, p.second, entry);
                }
                PAIR_8_12 => return self.fill_pair::<8, 12, false>(p.first, p.second, entry),
                PAIR_4_4 => return self.fill_pair::<4, 4, false>(p.first, p.second, entry),
                _ => {}
            }
        }
        self.fill_missed_general(entry, va, kind);
    }

    /// [`Tlb::fill_missed`] of an entry its pair fill does not take: a
    /// global one as [`Tlb::fill`], any other through
    /// [`Tlb::fill_levels_absent`].
    #[inline(never)]
    fn fill_missed_general(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        if entry.is_global() {
            self.insert_levels(0..self.levels.len(), side(kind), entry, va, true);
        } else {
            self.fill_levels_absent(0..self.levels.len(), side(kind), entry, va);
        }
    }

    /// [`Tlb::fill_levels_absent`] of both levels of a two-level TLB
    /// through its pair fill (the entry's sizes are the pair's, it is not
    /// global; `first` and `second` its arrays, `ONE0` whether the first
    /// holds one page size): each level's quick fill, the way counts
    /// constants. Same slots, same counts.
    #[inline(always)]
    fn fill_pair<const W0: usize, const W1: usize, const ONE0: bool>(
        &mut self,
        first_array: u8,
        second_array: u8,
        entry: TlbEntry,
    ) {
        self.forget_memos();
        self.forget_known_miss();
        if let [first, second] = self.levels.as_mut_slice() {
            first.fill_quick::<W0, ONE0>(first_array, entry);
            second.fill_quick::<W1, false>(second_array, entry);
        }
    }

    /// Works out `pair_fill` (a restored TLB, when it resumes its
    /// context: see [`Tlb::resume_context`]).
    #[cold]
    #[inline(never)]
    fn derive_pair_fill(&mut self) {
        // (The counts at the sizes they were counted at: none in a
        // restored TLB, whose pair fill takes no quick path.)
        self.settle_pair_counts();
        self.pair_fill = PairFill::of(&self.levels);
        // (Its arrays' victim tables: see `TlbArray::prepare_restored`.)
        for level in &mut self.levels {
            for array in &mut level.arrays {
                array.prepare_restored();
            }
        }
    }

    /// Rewrites a translation that is already cached (after a walk made only
    /// to set the dirty bit), at every level that serves `kind`, without
    /// counting a miss.
    pub fn update(&mut self, entry: TlbEntry, va: VirtAddr, kind: AccessKind) {
        self.insert_levels(0..self.levels.len(), side(kind), entry, va, false);
    }

    fn retain_all(&mut self, mut keep: impl FnMut(&TlbEntry) -> bool) -> u64 {
        self.forget_memos();
        let mut removed = 0;
        for level in &mut self.levels {
            for array in &mut level.arrays {
                removed += array.retain(&mut keep) as u64;
            }
        }
        self.refresh_filled(removed);
        self.flushes.entries_removed += removed;
        removed
    }

    /// After an invalidation that removed `removed` entries: if any, an
    /// array may have become empty, and each level's probe masks are worked
    /// out again from its arrays (see [`Level::refresh_filled`]).
    fn refresh_filled(&mut self, removed: u64) {
        if removed != 0 {
            for level in &mut self.levels {
                level.refresh_filled();
            }
        }
    }

    /// Invalidates the page holding `va` in `asid` (x86 `invlpg`, RISC-V
    /// `sfence.vma va, asid`): every entry of that address space, and every
    /// global entry, whose page holds `va`, at any page size, at every level;
    /// and, as x86 does, every walk-cache entry of the address space.
    /// Returns how many TLB entries were removed.
    pub fn invalidate_page(&mut self, asid: Asid, va: VirtAddr) -> u64 {
        let tag = self.tag(asid);
        let mut removed = 0;
        self.forget_memos();
        for level in &mut self.levels {
            for array in &mut level.arrays {
                removed += array.invalidate_page(tag, va) as u64;
            }
        }
        self.refresh_filled(removed);
        self.walk_cache.invalidate_asid(tag);
        self.flushes.pages += 1;
        self.flushes.entries_removed += removed;
        removed
    }

    /// [`Tlb::invalidate_page`] for a page the caller knows no entry
    /// covers: the walk caches of the address space are flushed and the
    /// invalidation counted as that does, but no array is searched (what the
    /// search would find is nothing, so nothing else changes). The kernel
    /// knows it of a page whose accessed bit is clear: every fill sets the
    /// bit (or needs it set), and every clearing of it is followed by an
    /// invalidation, so no translation was filled since the last one. Only
    /// with ASID tags: without, an entry of another address space for the
    /// same address would match. Debug builds search anyway and check that
    /// nothing was found.
    pub fn invalidate_unfilled_page(&mut self, asid: Asid, va: VirtAddr) -> u64 {
        if !self.asid_tags {
            return self.invalidate_page(asid, va);
        }
        let tag = self.tag(asid);
        self.forget_memos();
        #[cfg(debug_assertions)]
        for level in &mut self.levels {
            for array in &mut level.arrays {
                let removed = array.invalidate_page(tag, va);
                debug_assert_eq!(removed, 0, "{va} of {asid:?} was cached after all");
            }
        }
        self.walk_cache.invalidate_asid(tag);
        self.flushes.pages += 1;
        0
    }

    /// Invalidates pages as one [`Tlb::invalidate_page`] each, in order
    /// (those marked unfilled as [`Tlb::invalidate_unfilled_page`]), with the
    /// same outcome, the work done array by array: an array changes only by
    /// its own removals, and each still sees the pages in their order; an
    /// array that is (or becomes) empty is passed over; the walk caches of
    /// an address space are flushed once (a second flush finds nothing), and
    /// the memo once. How the kernel's reclaim gathers the invalidations of
    /// the pages it scans and evicts (nothing translates meanwhile). Returns
    /// how many TLB entries were removed.
    pub fn invalidate_pages<I>(&mut self, pages: I) -> u64
    where
        I: Iterator<Item = (Asid, VirtAddr, bool)> + Clone,
    {
        let mut count = 0;
        let mut removed = 0;
        self.forget_memos();
        let tags = self.asid_tags;
        let tag = |asid: Asid| if tags { asid } else { Asid::new(0) };
        for level in &mut self.levels {
            for array in &mut level.arrays {
                if array.is_empty() {
                    continue;
                }
                let each = pages
                    .clone()
                    .map(|(asid, va, unfilled)| (tag(asid), va, unfilled && tags));
                removed += array.invalidate_pages(each) as u64;
            }
        }
        self.refresh_filled(removed);
        let mut last = None;
        for (asid, _, _) in pages {
            count += 1;
            if last != Some(tag(asid)) {
                self.walk_cache.invalidate_asid(tag(asid));
                last = Some(tag(asid));
            }
        }
        self.flushes.pages += count;
        self.flushes.entries_removed += removed;
        removed
    }

    /// Invalidates every non-global entry of `asid` (x86 `invpcid`
    /// single-context, RISC-V `sfence.vma x0, asid`), and its walk-cache
    /// entries. With tags off this is every non-global entry.
    pub fn invalidate_asid(&mut self, asid: Asid) -> u64 {
        let tag = self.tag(asid);
        self.flushes.asids += 1;
        self.walk_cache.invalidate_asid(tag);
        self.retain_all(|e| e.is_global() || e.asid() != tag)
    }

    /// Invalidates every non-global entry of every address space (x86 CR3
    /// write without PCIDs) and the whole walk cache.
    pub fn invalidate_non_global(&mut self) -> u64 {
        self.flushes.non_global += 1;
        self.walk_cache.invalidate_all();
        self.retain_all(TlbEntry::is_global)
    }

    /// Invalidates everything, global entries included (x86 CR4.PGE toggle
    /// or `invpcid` all-contexts, RISC-V `sfence.vma x0, x0`).
    pub fn invalidate_all(&mut self) -> u64 {
        self.flushes.all += 1;
        self.walk_cache.invalidate_all();
        self.retain_all(|_| false)
    }

    /// The core switches to address space `asid`. With ASID tags nothing is
    /// flushed; without, every non-global entry is (the root-register write).
    pub fn context_switch(&mut self, asid: Asid) {
        self.flushes.context_switches += 1;
        if !self.asid_tags {
            self.invalidate_non_global();
        }
        self.resume_context(asid);
    }

    /// Makes `asid` the address space [`Tlb::hit_recent`] looks up for,
    /// without a context switch (counted or flushing): for a restored TLB,
    /// whose current address space is not saved with it.
    ///
    /// Another address space than the current one starts a new generation
    /// of recent hits (see `Tlb::hit_word`): the generation says the
    /// address space, and the recent hits of the last one never match.
    ///
    /// A restored TLB works out its pair fills here too (`PairFill`: not
    /// saved; the restore has checked the levels by then). Until it does,
    /// its fills after a walk take the general fill, which fills the same.
    pub fn resume_context(&mut self, asid: Asid) {
        if self.pair_fill[0].pair == PAIR_UNKNOWN {
            self.derive_pair_fill();
        }
        let asid = u32::from(asid.as_u16());
        if asid != self.hit_asid {
            self.hit_asid = asid;
            self.next_recent_gen();
        }
    }

    /// `hit_word` for the current generation and `hit_asid`.
    #[inline]
    fn set_hit_word(&mut self) {
        self.hit_word = if self.hit_asid == NO_HIT_ASID {
            NO_CONTEXT
        } else {
            self.recent_gen
        };
    }

    /// Lookups that missed every level so far (cheap: for samplers that
    /// need only this; [`Tlb::counters`] builds a full snapshot).
    #[must_use]
    pub fn full_misses(&self) -> u64 {
        self.full_misses
    }

    /// A snapshot of the counters (allocates one `Vec` for the levels).
    #[must_use]
    pub fn counters(&self) -> TlbCounters {
        let mut levels: Vec<LevelCounters> =
            self.levels.iter().map(|l| l.counters.clone()).collect();
        let mut lookups_by_kind = self.lookups_by_kind;
        // The hits `hit_recent` and `store_recent` have not added yet.
        let [read, fetch] = self.pending();
        let stores = self.pending_stores();
        lookups_by_kind[AccessKind::Read.index()] += read;
        lookups_by_kind[AccessKind::Execute.index()] += fetch;
        lookups_by_kind[AccessKind::Write.index()] += stores;
        // And those `hit_shared` took, not yet settled.
        let [loads, fetches] = self.shared_lookups;
        lookups_by_kind[AccessKind::Read.index()] += loads;
        lookups_by_kind[AccessKind::Execute.index()] += fetches;
        let [data_shift, fetch_shift] = self.last_shifts();
        if let Some(first) = levels.first_mut() {
            first.hits.add_shift(data_shift, read + stores);
            first.hits.add_shift(fetch_shift, fetch);
            // And the hits of a shared first level not yet settled.
            for (side, mut bits) in self.owed.into_iter().enumerate() {
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize % RECENT_WAYS;
                    let place = (side & 1) * RECENT_WAYS + i;
                    let shift = self.recent[side & 1][i].entry.page_shift();
                    first.hits.add_shift(shift, self.place_hits[place]);
                    bits &= bits - 1;
                }
            }
        }
        // And the pair's quick paths' counts.
        if let [first, second] = levels.as_mut_slice() {
            let shifts = self.pair_fill.map(|p| u32::from(p.sizes >> 8));
            self.pair_counts.add_to(first, second, shifts);
        }
        for l in &mut levels {
            l.lookups = l.hit_count() + l.misses;
        }
        TlbCounters {
            lookups_by_kind,
            levels,
            full_misses: self.full_misses,
            flushes: self.flushes.clone(),
        }
    }

    /// Zeroes every counter (TLB and walk cache); cached entries stay, so a
    /// measurement can start warm.
    pub fn reset_counters(&mut self) {
        // (The hits a shared first level has not added yet are added, and
        // zeroed with the rest.)
        self.settle();
        self.pair_counts = PairCounts::default();
        for level in &mut self.levels {
            level.counters = LevelCounters {
                latency_cycles: level.counters.latency_cycles,
                ..LevelCounters::default()
            };
        }
        self.lookups_by_kind = [0; 3];
        self.counted_hits = self.recent_hits;
        self.counted_stores = self.recent_stores;
        self.full_misses = 0;
        self.flushes = FlushCounters::default();
        self.walk_cache.reset_counters();
    }

    /// The page-walk caches (the MMU probes and fills them).
    #[must_use]
    pub fn walk_cache(&self) -> &WalkCache {
        &self.walk_cache
    }

    /// The page-walk caches, mutably.
    pub fn walk_cache_mut(&mut self) -> &mut WalkCache {
        &mut self.walk_cache
    }

    /// The number of levels.
    #[must_use]
    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// The arrays of level `level` (0 = first), for inspection; empty past the last level.
    #[must_use]
    pub fn arrays(&self, level: usize) -> &[TlbArray] {
        self.levels.get(level).map_or(&[], |l| &l.arrays)
    }

    /// Every valid entry with its level, for inspection and tests.
    pub fn entries(&self) -> impl Iterator<Item = (usize, &TlbEntry)> + '_ {
        self.levels.iter().enumerate().flat_map(|(l, level)| {
            level
                .arrays
                .iter()
                .flat_map(move |a| a.entries().map(move |e| (l, e)))
        })
    }
}

impl Tlb {
    /// Checks a hierarchy read back from a checkpoint against the empty one
    /// `fresh` its configuration builds: the same levels, arrays, probe and
    /// fill tables and latencies (derived from the configuration, so a
    /// checkpoint cannot change them), every array's contents (see
    /// [`TlbArray::check_restored`]), memos that point at the first-level
    /// slot holding the entry they remember, and the walk caches (see
    /// [`WalkCache::check_restored`]). The error names the level and array.
    pub(crate) fn check_restored(
        &self,
        fresh: &Self,
        limits: &super::RestoreLimits<'_>,
    ) -> Result<(), String> {
        if self.levels.len() != fresh.levels.len()
            || self.shared_l1 != fresh.shared_l1
            || self.memo_shift != fresh.memo_shift
            || self.memo_ok != fresh.memo_ok
            || self.asid_tags != fresh.asid_tags
        {
            return Err(format!(
                "tlb: the hierarchy is not the configuration's ({} levels, ASID tags {})",
                fresh.levels.len(),
                if fresh.asid_tags { "on" } else { "off" }
            ));
        }
        for (l, (level, fresh_level)) in self.levels.iter().zip(&fresh.levels).enumerate() {
            if level.arrays.len() != fresh_level.arrays.len()
                || level.probe != fresh_level.probe
                || level.probe_len != fresh_level.probe_len
                || level.fill_to != fresh_level.fill_to
                || level.counters.latency_cycles != fresh_level.counters.latency_cycles
            {
                return Err(format!(
                    "tlb level {l}: its arrays, probe order or latency are not the configuration's"
                ));
            }
            for (a, (array, fresh_array)) in
                level.arrays.iter().zip(&fresh_level.arrays).enumerate()
            {
                array.check_restored(fresh_array, limits).map_err(|e| {
                    format!("tlb level {l} array {a} ({}): {e}", fresh_array.name())
                })?;
            }
        }
        if self.settled > self.tick {
            return Err(format!(
                "tlb memo: settled tick {} is after the tick {}",
                self.settled, self.tick
            ));
        }
        for side in [DATA, FETCH] {
            if !(1..MEMO_WAYS).contains(&self.memo_next[side]) {
                return Err(format!(
                    "tlb memo: next place {} of side {side} is not 1 to {}",
                    self.memo_next[side],
                    MEMO_WAYS - 1
                ));
            }
            for (i, m) in self.memo[side].iter().enumerate() {
                if m.key == NO_KEY {
                    continue;
                }
                let bad = |what: &str| Err(format!("tlb memo {i} of side {side}: {what}"));
                let Some(first) = self.levels.first() else {
                    return bad("set, but there is no TLB");
                };
                if m.seq > self.tick {
                    return bad("stamped after the tick");
                }
                let Some(array) = first.arrays.get(usize::from(m.array)) else {
                    return bad("names an array the first level does not have");
                };
                if !array.holds_slot(m.slot as usize) || *array.entry(m.slot as usize) != m.entry {
                    return bad("does not remember the entry of the slot it names");
                }
                let below = m.entry.granule().shift().checked_sub(self.memo_shift[side]);
                if !self.memo_ok[side]
                    || below.is_none_or(|b| m.key >> b != m.entry.vpn())
                    || (m.tag != m.entry.asid() && !m.entry.is_global())
                {
                    return bad("its address or ASID is not its entry's");
                }
            }
        }
        self.walk_cache
            .check_restored(&fresh.walk_cache, limits)
            .map_err(|e| format!("walk cache: {e}"))
    }
}

/// Raw access for tests that forge restored states.
#[cfg(test)]
impl Tlb {
    /// The TLB with every level's quick fills off (the general fill
    /// alone): for tests that compare the two.
    pub(crate) fn without_quick_fills(mut self) -> Self {
        self.settle_pair_counts();
        for level in &mut self.levels {
            level.quick = [QuickFill::NONE; 2];
        }
        self.pair_fill = [PairFill::NONE; 2];
        self
    }

    /// The number of arrays of each level.
    pub(crate) fn forge_shape(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.arrays.len()).collect()
    }
    pub(crate) fn forge_array(&mut self, level: usize, array: usize) -> &mut TlbArray {
        // Whatever the test writes there, probes search the array.
        self.levels[level].mark_filled(array);
        &mut self.levels[level].arrays[array]
    }
    /// A memo's key, array, slot and entry.
    pub(crate) fn forge_memo(
        &mut self,
        side: usize,
        i: usize,
    ) -> (&mut u64, &mut u8, &mut u32, &mut TlbEntry) {
        self.memo_keys = true;
        let m = &mut self.memo[side][i];
        (&mut m.key, &mut m.array, &mut m.slot, &mut m.entry)
    }
    pub(crate) fn forge_ticks(&mut self) -> (&mut u64, &mut u64, &mut [usize; 2]) {
        (&mut self.tick, &mut self.settled, &mut self.memo_next)
    }
    pub(crate) fn forge_fill_to(&mut self, level: usize) -> &mut [[(u8, u8); 64]; 2] {
        &mut self.levels[level].fill_to
    }
    /// Whether every level's probe masks cover every array that holds an
    /// entry (an array missing from them would never be searched), and
    /// only arrays of the level that serve the side.
    pub(crate) fn probe_masks_cover_entries(&self) -> bool {
        self.levels.iter().all(|level| {
            let sides = level.side_masks();
            level
                .arrays
                .iter()
                .enumerate()
                .all(|(a, array)| array.is_empty() || level.filled & (1 << a) != 0)
                && (0..2).all(|s| level.probing[s] == sides[s] & level.filled)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;
    use crate::mmu::{Holds, TlbArrayConfig, TlbLevelConfig};

    const X86_64: [u32; 4] = [39, 30, 21, 12];

    fn pa(raw: u64) -> PhysAddr {
        PhysAddr::new(raw).expect("fits")
    }

    fn entry(tlb: &Tlb, asid: u16, va: u64, size: PageSize, frame: u64) -> TlbEntry {
        TlbEntry::new(tlb.tag(Asid::new(asid)), VirtAddr::new(va), size, pa(frame))
    }

    fn preset(name: &str) -> Tlb {
        Tlb::new(&TlbConfig::preset(name).expect("preset"), &X86_64).expect("valid")
    }

    #[test]
    fn miss_fill_hit_and_second_level_copy_up() {
        let mut tlb = preset("core-i7");
        let va = VirtAddr::new(0x1234_5678);
        let a = Asid::new(1);
        assert!(tlb.lookup(a, va, AccessKind::Read).is_none());
        tlb.fill(
            entry(&tlb, 1, 0x1234_5000, PageSize::SIZE_4K, 0x9000),
            va,
            AccessKind::Read,
        );
        let hit = tlb.lookup(a, va, AccessKind::Read).expect("hit");
        assert_eq!((hit.level, hit.pa), (0, pa(0x9678)));
        // The instruction side has its own L1, but shares the L2.
        let hit = tlb.lookup(a, va, AccessKind::Execute).expect("L2 hit");
        assert_eq!(hit.level, 1);
        let hit = tlb.lookup(a, va, AccessKind::Execute).expect("copied up");
        assert_eq!(hit.level, 0);
        let c = tlb.counters();
        assert_eq!(c.lookups_by_kind, [2, 0, 2]);
        assert_eq!(c.full_misses, 1);
        assert_eq!(
            (
                c.levels[0].lookups,
                c.levels[0].misses,
                c.levels[0].hit_count()
            ),
            (4, 2, 2)
        );
        assert_eq!(
            (
                c.levels[1].lookups,
                c.levels[1].misses,
                c.levels[1].hit_count()
            ),
            (2, 1, 1)
        );
        assert_eq!(c.levels[0].misses_by_size.get(PageSize::SIZE_4K), 2);
        assert_eq!(c.levels[1].misses_by_size.get(PageSize::SIZE_4K), 1);
    }

    #[test]
    fn large_pages_go_to_their_arrays_or_are_splintered() {
        let mut sky = preset("x86-64");
        let va = VirtAddr::new(0x4012_3456);
        sky.fill(
            entry(&sky, 1, 0x4000_0000, PageSize::SIZE_2M, 0x20_0000),
            va,
            AccessKind::Write,
        );
        let l1: Vec<_> = sky.arrays(0).iter().map(|a| a.entries().count()).collect();
        assert_eq!(l1, [0, 1, 0, 0, 0], "the 2M data array took it");
        let hit = sky
            .lookup(Asid::new(1), VirtAddr::new(0x401f_ffff), AccessKind::Read)
            .expect("same 2M page");
        assert_eq!(hit.pa, pa(0x3f_ffff));

        let mut i7 = preset("core-i7");
        i7.fill(
            entry(&i7, 1, 0x4000_0000, PageSize::SIZE_2M, 0x20_0000),
            va,
            AccessKind::Read,
        );
        let pieces: Vec<_> = i7
            .entries()
            .map(|(_, e)| (e.granule(), e.page_size()))
            .collect();
        assert_eq!(
            pieces,
            vec![(PageSize::SIZE_4K, PageSize::SIZE_2M); 2],
            "one 4K piece per level"
        );
        assert!(i7.lookup(Asid::new(1), va, AccessKind::Read).is_some());
        // Another 4 KiB piece of the same 2 MiB page is not cached yet.
        assert!(
            i7.lookup(Asid::new(1), VirtAddr::new(0x4010_0000), AccessKind::Read)
                .is_none()
        );
        // invlpg anywhere in the large page removes every piece.
        assert_eq!(
            i7.invalidate_page(Asid::new(1), VirtAddr::new(0x401f_f000)),
            2
        );
    }

    #[test]
    fn asid_tags_global_entries_and_flushes() {
        let mut tlb = preset("classroom");
        let va = VirtAddr::new(0x5000);
        tlb.fill(
            entry(&tlb, 1, 0x5000, PageSize::SIZE_4K, 0x1000),
            va,
            AccessKind::Read,
        );
        tlb.fill(
            entry(&tlb, 2, 0x5000, PageSize::SIZE_4K, 0x2000),
            va,
            AccessKind::Read,
        );
        let kernel = VirtAddr::new(0xffff_8000_0000_0000);
        tlb.fill(
            entry(&tlb, 1, kernel.as_u64(), PageSize::SIZE_4K, 0x3000).with_global(true),
            kernel,
            AccessKind::Read,
        );
        assert_eq!(
            tlb.lookup(Asid::new(1), va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x1000))
        );
        assert_eq!(
            tlb.lookup(Asid::new(2), va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x2000))
        );
        assert!(
            tlb.lookup(Asid::new(3), kernel, AccessKind::Read).is_some(),
            "global matches any ASID"
        );
        assert_eq!(tlb.invalidate_asid(Asid::new(1)), 1);
        assert!(tlb.lookup(Asid::new(1), va, AccessKind::Read).is_none());
        assert!(tlb.lookup(Asid::new(2), va, AccessKind::Read).is_some());
        assert_eq!(tlb.invalidate_non_global(), 1);
        assert!(
            tlb.lookup(Asid::new(9), kernel, AccessKind::Read).is_some(),
            "global survives"
        );
        assert_eq!(tlb.invalidate_all(), 1);
        assert_eq!(tlb.entries().count(), 0);
        let f = &tlb.counters().flushes;
        assert_eq!(
            (f.asids, f.non_global, f.all, f.entries_removed),
            (1, 1, 1, 3)
        );
    }

    #[test]
    fn without_tags_a_switch_flushes_and_a_missing_flush_leaks() {
        let mut config = TlbConfig::preset("classroom").expect("preset");
        config.asid_tags = false;
        let mut tlb = Tlb::new(&config, &X86_64).expect("valid");
        let va = VirtAddr::new(0x7000);
        tlb.fill(
            entry(&tlb, 1, 0x7000, PageSize::SIZE_4K, 0x1000),
            va,
            AccessKind::Read,
        );
        // Process 2 runs without a flush: it sees process 1's translation, as
        // an x86 core without PCIDs would if the kernel forgot the CR3 write.
        assert_eq!(
            tlb.lookup(Asid::new(2), va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x1000))
        );
        tlb.context_switch(Asid::new(2));
        assert!(tlb.lookup(Asid::new(2), va, AccessKind::Read).is_none());
        assert_eq!(tlb.counters().flushes.context_switches, 1);
    }

    #[test]
    fn remap_without_invalidation_leaves_a_stale_entry() {
        let mut tlb = preset("x86-64");
        let va = VirtAddr::new(0x1000);
        tlb.fill(
            entry(&tlb, 1, 0x1000, PageSize::SIZE_4K, 0xa000),
            va,
            AccessKind::Read,
        );
        // The page table now says 0xb000, but nobody invalidated.
        assert_eq!(
            tlb.lookup(Asid::new(1), va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0xa000))
        );
        tlb.invalidate_page(Asid::new(1), va);
        assert!(tlb.lookup(Asid::new(1), va, AccessKind::Read).is_none());
    }

    #[test]
    fn update_refreshes_the_dirty_bit_without_counting_a_miss() {
        let mut tlb = preset("x86-64");
        let va = VirtAddr::new(0x1000);
        let clean = entry(&tlb, 1, 0x1000, PageSize::SIZE_4K, 0xa000);
        tlb.fill(clean, va, AccessKind::Read);
        tlb.update(clean.with_dirty(true), va, AccessKind::Write);
        assert!(
            tlb.lookup(Asid::new(1), va, AccessKind::Write)
                .expect("hit")
                .entry
                .is_dirty()
        );
        assert_eq!(
            tlb.entries().count(),
            2,
            "refreshed in place at both levels"
        );
        assert_eq!(tlb.counters().levels[0].misses_by_size.total(), 1);
    }

    #[test]
    fn page_invalidation_flushes_the_walk_cache_of_that_asid() {
        let mut tlb = preset("x86-64");
        let va = VirtAddr::new(0x4000_0000);
        let (a, b) = (Asid::new(1), Asid::new(2));
        tlb.walk_cache_mut()
            .fill(a, va, 3, pa(0x1000), Perms::all());
        tlb.walk_cache_mut()
            .fill(b, va, 3, pa(0x2000), Perms::all());
        tlb.invalidate_page(a, VirtAddr::new(0x7000_0000));
        assert!(tlb.walk_cache_mut().lookup(a, va).is_none());
        assert!(tlb.walk_cache_mut().lookup(b, va).is_some());
    }

    #[test]
    fn empty_hierarchy_always_misses_and_a_data_only_level_is_skipped_by_fetches() {
        let mut none = Tlb::new(&TlbConfig::default(), &X86_64).expect("valid");
        assert!(
            none.lookup(Asid::new(0), VirtAddr::new(0), AccessKind::Read)
                .is_none()
        );
        assert_eq!(none.counters().full_misses, 1);

        let mut data_only = TlbConfig::default();
        let mut array = TlbArrayConfig::new(8, Some(2), &[PageSize::SIZE_4K]);
        array.holds = Holds::Data;
        data_only.levels.push(TlbLevelConfig {
            latency: 1,
            arrays: vec![array],
        });
        let mut tlb = Tlb::new(&data_only, &X86_64).expect("valid");
        let va = VirtAddr::new(0x3000);
        tlb.fill(
            entry(&tlb, 0, 0x3000, PageSize::SIZE_4K, 0x3000),
            va,
            AccessKind::Execute,
        );
        assert_eq!(
            tlb.entries().count(),
            0,
            "an instruction translation has nowhere to go"
        );
        assert!(tlb.lookup(Asid::new(0), va, AccessKind::Execute).is_none());
        assert_eq!(tlb.counters().levels[0].lookups, 0);
    }

    #[test]
    fn a_fetch_hit_in_a_unified_first_level_drops_the_data_memo() {
        // Two-entry fully associative unified LRU TLB: A and B cached.
        let mut config = TlbConfig::default();
        config.levels.push(TlbLevelConfig {
            latency: 1,
            arrays: vec![TlbArrayConfig::new(2, None, &[PageSize::SIZE_4K])],
        });
        let mut tlb = Tlb::new(&config, &X86_64).expect("valid");
        let (a, b, c) = (
            VirtAddr::new(0x1000),
            VirtAddr::new(0x2000),
            VirtAddr::new(0x3000),
        );
        let asid = Asid::new(1);
        tlb.fill(
            entry(&tlb, 1, 0x1000, PageSize::SIZE_4K, 0x1000),
            a,
            AccessKind::Read,
        );
        tlb.fill(
            entry(&tlb, 1, 0x2000, PageSize::SIZE_4K, 0x2000),
            b,
            AccessKind::Read,
        );
        assert!(tlb.lookup(asid, a, AccessKind::Read).is_some()); // A most recent; data memo = A
        assert!(tlb.lookup(asid, b, AccessKind::Execute).is_some()); // B most recent
        assert!(tlb.lookup(asid, a, AccessKind::Read).is_some()); // must make A most recent again
        tlb.fill(
            entry(&tlb, 1, 0x3000, PageSize::SIZE_4K, 0x3000),
            c,
            AccessKind::Read,
        );
        assert!(
            tlb.lookup(asid, a, AccessKind::Read).is_some(),
            "B, not A, was least recently used"
        );
        assert!(tlb.lookup(asid, b, AccessKind::Read).is_none());
    }

    #[test]
    fn reset_counters_keeps_entries_and_latencies() {
        let mut tlb = preset("x86-64");
        let va = VirtAddr::new(0x1000);
        tlb.fill(
            entry(&tlb, 1, 0x1000, PageSize::SIZE_4K, 0xa000),
            va,
            AccessKind::Read,
        );
        assert!(tlb.lookup(Asid::new(1), va, AccessKind::Read).is_some());
        tlb.reset_counters();
        assert_eq!(tlb.counters().lookups(), 0);
        assert_eq!(tlb.counters().levels[1].latency_cycles, 9);
        assert!(tlb.lookup(Asid::new(1), va, AccessKind::Read).is_some());
    }

    /// Replacement policy number `policy` of the property tests: LRU,
    /// tree-PLRU, random.
    fn replacement_of(policy: usize) -> crate::mmu::Replacement {
        [
            crate::mmu::Replacement::Lru,
            crate::mmu::Replacement::TreePlru,
            crate::mmu::Replacement::Random,
        ][policy]
    }

    /// A TLB whose first level is split (4 KiB data, 2 MiB data, 4 KiB
    /// instruction arrays of `ways * 2` entries, `ways` ways each) under
    /// replacement policy number `policy` (LRU, tree-PLRU, random), with a
    /// 64-entry second level for both sizes when `second`: the shape whose
    /// first level keeps a recent-hit table.
    fn split_first_level(ways: u32, policy: usize, tags: bool, second: bool) -> Tlb {
        let replacement = replacement_of(policy);
        let mut config = TlbConfig {
            asid_tags: tags,
            ..TlbConfig::default()
        };
        let mut arrays = Vec::new();
        for (holds, size) in [
            (Holds::Data, PageSize::SIZE_4K),
            (Holds::Data, PageSize::SIZE_2M),
            (Holds::Instruction, PageSize::SIZE_4K),
        ] {
            let mut array = TlbArrayConfig::new(ways * 2, Some(ways), &[size]);
            array.holds = holds;
            array.replacement = replacement;
            arrays.push(array);
        }
        config.levels.push(TlbLevelConfig { latency: 1, arrays });
        if second {
            let mut array =
                TlbArrayConfig::new(64, Some(4), &[PageSize::SIZE_4K, PageSize::SIZE_2M]);
            array.replacement = replacement;
            config.levels.push(TlbLevelConfig {
                latency: 7,
                arrays: vec![array],
            });
        }
        Tlb::new(&config, &X86_64).expect("valid")
    }

    /// A TLB read back from a checkpoint searches its arrays as the one
    /// saved did: each array's shape (not saved) is worked out again, so a
    /// restored run takes the shaped lookups, not the general search.
    #[test]
    fn restored_arrays_keep_their_shape() {
        let mut tlbs: Vec<Tlb> = ["x86-64", "core-i7", "riscv-sv39"]
            .iter()
            .map(|name| {
                Tlb::new(&TlbConfig::preset(name).expect("preset"), &X86_64).expect("valid")
            })
            .collect();
        tlbs.push(split_first_level(4, 1, true, true));
        let mut shaped = 0;
        for tlb in tlbs {
            let shapes = |t: &Tlb| -> Vec<u8> {
                t.levels
                    .iter()
                    .flat_map(|l| l.arrays.iter().map(TlbArray::shape))
                    .collect()
            };
            let saved = postcard::to_allocvec(&tlb).expect("save");
            let restored: Tlb = postcard::from_bytes(&saved).expect("restore");
            shaped += shapes(&tlb).iter().filter(|&&s| s != 0).count();
            assert_eq!(shapes(&restored), shapes(&tlb));
        }
        assert!(shaped > 0, "no shaped array to restore");
    }

    /// The first level's arrays as a checkpoint saves them: their entries
    /// and replacement state (tree-PLRU bits, LRU stamps, the random
    /// generator), to compare two TLBs' exactly.
    fn first_level_state(tlb: &Tlb) -> Vec<u8> {
        postcard::to_allocvec(&tlb.levels.first().map(|level| &level.arrays)).expect("save")
    }

    /// The address of test page `page` (from `large_from` up, 2 MiB pages,
    /// and whether it is one), at an offset chosen by `op`.
    fn test_va(page: u64, op: u8, large_from: u64) -> (VirtAddr, bool) {
        let large = page >= large_from;
        let va = if large {
            VirtAddr::new(0x4000_0000 + (page - large_from) * 0x20_0000 + 0x1000 * u64::from(op))
        } else {
            VirtAddr::new(0x1000 * (page + 1) + 8 * u64::from(op))
        };
        (va, large)
    }

    /// A shared first level's recent hit on its side's last place, after a
    /// hit of the other side, still owes its touch (only a hit on the place
    /// owed last of both sides owes nothing new, see `Tlb::owe_touch`):
    /// fetch A, read B, fetch A again leaves A the most recently used, so
    /// the third of three fills of fresh pages evicts B, not A, exactly as
    /// a TLB that probes every time.
    #[test]
    fn shared_first_level_hit_after_the_other_side_owes_its_touch() {
        let mut config = TlbConfig::default();
        let mut array = TlbArrayConfig::new(4, None, &[PageSize::SIZE_4K]);
        array.holds = Holds::Unified;
        config.levels.push(TlbLevelConfig {
            latency: 1,
            arrays: vec![array],
        });
        let with = Tlb::new(&config, &X86_64).expect("valid");
        assert!(with.shared_l1);
        let without = with.clone().with_last_hit_memo(false);
        let mut tlbs = [with, without];
        let asid = Asid::new(1);
        let page = |p: u64| VirtAddr::new(0x1000 * (p + 1));
        // Fills pages `ps` (4 KiB, frames from 1 MiB) as a read miss does.
        let fill_pages = |tlb: &mut Tlb, ps: std::ops::Range<u64>| {
            for p in ps {
                let e = entry(
                    tlb,
                    1,
                    page(p).as_u64(),
                    PageSize::SIZE_4K,
                    0x10_0000 + (p << 12),
                );
                tlb.fill(e, page(p), AccessKind::Read);
            }
        };
        for tlb in &mut tlbs {
            tlb.context_switch(asid);
            fill_pages(tlb, 0..4);
            // Probes remember A (fetch) and B (data), then recent hits.
            for (p, kind) in [
                (0, AccessKind::Execute),
                (1, AccessKind::Read),
                (0, AccessKind::Execute),
                (1, AccessKind::Read),
                (0, AccessKind::Execute),
            ] {
                assert!(lookup_as_mmu(tlb, asid, page(p), kind).is_some());
            }
            fill_pages(tlb, 4..7);
        }
        let entries = tlbs
            .each_ref()
            .map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
        assert_eq!(entries[0], entries[1]);
        assert!(
            tlbs[0].lookup(asid, page(0), AccessKind::Execute).is_some(),
            "A was evicted"
        );
        assert!(
            tlbs[0].lookup(asid, page(1), AccessKind::Read).is_none(),
            "B was kept"
        );
    }

    /// Looks `va` up as the MMU does: the remembered last hit of `kind`'s
    /// side first (`lookup_repeat`, which must then be `last_hit`), else
    /// the probe. The entry, the level it was found at and the address.
    fn lookup_as_mmu(
        tlb: &mut Tlb,
        asid: Asid,
        va: VirtAddr,
        kind: AccessKind,
    ) -> Option<(TlbEntry, usize, PhysAddr)> {
        match tlb.lookup_repeat(va, kind).map(|e| (*e, e.translate(va))) {
            Some((entry, pa)) => {
                assert_eq!(tlb.last_hit(kind), &entry);
                Some((entry, 0, pa))
            }
            None => tlb.lookup(asid, va, kind).map(|h| (h.entry, h.level, h.pa)),
        }
    }

    /// `lookup_repeat_shared` (the span loop's hit path without recent
    /// hits) on a split first level: it must decline, counting and
    /// changing nothing, where `lookup_repeat` takes the recent hit.
    #[test]
    fn lookup_repeat_shared_declines_on_a_split_first_level() {
        let mut tlb = preset("x86-64");
        assert!(!tlb.shared_l1);
        let asid = Asid::new(1);
        tlb.context_switch(asid);
        let va = VirtAddr::new(0x4000);
        // (Granting a user load: a split level's recent hits must.)
        let e = entry(&tlb, 1, va.as_u64(), PageSize::SIZE_4K, 0x20_0000).with_perms(Perms::all());
        tlb.fill(e, va, AccessKind::Read);
        assert!(tlb.lookup(asid, va, AccessKind::Read).is_some());
        let before = tlb.counters();
        assert!(tlb.lookup_repeat_shared(va, AccessKind::Read).is_none());
        assert_eq!(tlb.counters(), before);
        assert!(tlb.lookup_repeat(va, AccessKind::Read).is_some());
        assert_ne!(tlb.counters(), before);
    }

    /// A shared first level's recent hits (`hit_shared`, `lookup_repeat`,
    /// `lookup`) are counted at their place until a settlement: `tick`
    /// (saved) and the first level's hits then hold every one, and
    /// `counters` holds them before.
    #[test]
    fn shared_hits_count_in_tick_once_settled() {
        let mut tlb = preset("classroom");
        assert!(tlb.shared_l1);
        let asid = Asid::new(1);
        tlb.context_switch(asid);
        let (a, b) = (VirtAddr::new(0x4000), VirtAddr::new(0x9000));
        for va in [a, b] {
            let e =
                entry(&tlb, 1, va.as_u64(), PageSize::SIZE_4K, 0x20_0000).with_perms(Perms::all());
            tlb.fill(e, va, AccessKind::Read);
        }
        // Probes: remembered (as each side's last), not recent hits.
        assert!(tlb.lookup(asid, a, AccessKind::Read).is_some());
        assert!(tlb.lookup(asid, b, AccessKind::Execute).is_some());
        let before = tlb.counters().levels[0].hit_count();
        let mut lookups = tlb.counters().lookups_by_kind;
        let (tick, settled, _) = tlb.forge_ticks();
        let tick0 = *tick;
        assert_eq!(*settled, tick0);
        for _ in 0..3 {
            assert!(tlb.hit_shared(a, LoadOrFetch::Load));
            assert!(tlb.hit_shared(a, LoadOrFetch::Load), "a repeat");
            assert!(tlb.hit_shared(b, LoadOrFetch::Fetch));
            assert!(tlb.lookup_repeat(a, AccessKind::Write).is_some());
            assert!(tlb.lookup(asid, b, AccessKind::Execute).is_some());
        }
        assert_eq!(tlb.counters().levels[0].hit_count(), before + 15);
        for (kind, n) in [
            (AccessKind::Read, 6),
            (AccessKind::Write, 3),
            (AccessKind::Execute, 6),
        ] {
            lookups[kind.index()] += n;
        }
        assert_eq!(tlb.counters().lookups_by_kind, lookups);
        tlb.settle_touches();
        assert_eq!(*tlb.forge_ticks().0, tick0 + 15);
        assert_eq!(*tlb.forge_ticks().1, tick0 + 15);
        assert_eq!(tlb.counters().levels[0].hit_count(), before + 15);
        assert_eq!(tlb.counters().lookups_by_kind, lookups);
        // And nothing is added twice.
        tlb.settle_touches();
        assert!(tlb.hit_shared(a, LoadOrFetch::Load));
        tlb.settle_touches();
        assert_eq!(*tlb.forge_ticks().0, tick0 + 16);
        assert_eq!(tlb.counters().levels[0].hit_count(), before + 16);
    }

    /// Switches every TLB to `asid` when it is not `current` already.
    fn switch_to(tlbs: &mut [Tlb], asid: Asid, current: &mut Asid) {
        if asid != *current {
            for tlb in tlbs {
                tlb.context_switch(asid);
            }
            *current = asid;
        }
    }

    /// The entry the split-first-level tests fill after a miss of `va`:
    /// test page `page`, a 2 MiB page when `large`.
    fn page_entry(tlb: &Tlb, asid: Asid, va: VirtAddr, page: u64, large: bool) -> TlbEntry {
        let (base, size, frame) = if large {
            (
                va.as_u64() & !0x1f_ffff,
                PageSize::SIZE_2M,
                0x4000_0000 + (page << 21),
            )
        } else {
            (
                va.as_u64() & !0xfff,
                PageSize::SIZE_4K,
                0x10_0000 + (page << 12),
            )
        };
        entry(tlb, asid.as_u16(), base, size, frame)
    }

    /// A recent hit on a page of another size than its side's last
    /// (`Tlb::touch_recent_settling`) adds the side's pending hits first,
    /// at the last's size: reads and stores that alternate a 4 KiB and a
    /// 2 MiB page, taken by `hit_recent` and `store_recent` where they can,
    /// count hits by page size as a TLB that probes every time does, for
    /// each replacement policy (tree-PLRU touched in line, the others out
    /// of line) and after every lookup.
    #[test]
    fn a_recent_hit_of_another_page_size_settles_the_pending_hits_first() {
        let (small, _) = test_va(0, 0, 100);
        let (large, _) = test_va(100, 0, 100);
        let (r, w) = (AccessKind::Read, AccessKind::Write);
        // Step 4 (a read) and step 7 (a store) change the page size
        // with hits pending.
        let steps = [
            (small, r),
            (large, r),
            (large, r),
            (large, w),
            (small, r),
            (small, w),
            (small, r),
            (large, w),
            (large, r),
            (small, w),
            (small, r),
            (large, r),
        ];
        sizes_count_as_probing(&[(small, 0, false), (large, 100, true)], &steps);
    }

    /// The page size a side's pending hits are counted at follows its
    /// last wherever the last changes: a probe that remembers a hit of
    /// another size (step 6: the 2 MiB page `large2` after the 4 KiB page
    /// was touched last; step 8's touch of the 4 KiB page must count step
    /// 7's pending 2 MiB hit and store at 2 MiB), and a touch that settles
    /// (step 2; step 4's touch of the 2 MiB page must count step 3's
    /// pending 4 KiB hit at 4 KiB). `large2` takes `large`'s place in the
    /// recent table. `touch_recent` finds the last's size from the last's
    /// entry; a copy of it kept beside `last` (tried in the twentieth
    /// round, see docs/speed.md) failed here at step 8 when the probe did
    /// not set it, and at step 4 when the settling touch did not.
    #[test]
    fn the_last_page_size_follows_every_change_of_the_last() {
        let (small, _) = test_va(0, 0, 100);
        let (large, _) = test_va(100, 0, 100);
        let (large2, _) = test_va(101, 0, 100);
        let (r, w) = (AccessKind::Read, AccessKind::Write);
        let steps = [
            (small, r),
            (large, r),
            (small, r),
            (small, r),
            (large, r),
            (small, r),
            (large2, r),
            (large2, w),
            (small, r),
            (small, w),
            (large2, r),
        ];
        sizes_count_as_probing(
            &[(small, 0, false), (large, 100, true), (large2, 101, true)],
            &steps,
        );
    }

    /// Fills `pages` (address, test page, whether 2 MiB; writable and
    /// dirty) into a split first level and into its copy that probes every
    /// time, then runs `steps` on both (`hit_recent` and `store_recent`
    /// where they take the access, else the lookup): the same answers and
    /// counters after every step and once settled, for each replacement
    /// policy.
    fn sizes_count_as_probing(pages: &[(VirtAddr, u64, bool)], steps: &[(VirtAddr, AccessKind)]) {
        for policy in 0..3 {
            let with = split_first_level(4, policy, false, false);
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            let asid = Asid::new(1);
            for tlb in &mut tlbs {
                tlb.resume_context(asid);
                for &(va, page, is_large) in pages {
                    let e = page_entry(tlb, asid, va, page, is_large)
                        .with_perms(Perms::all())
                        .with_dirty(true);
                    tlb.fill(e, va, AccessKind::Read);
                }
            }
            for (n, &(va, kind)) in steps.iter().enumerate() {
                let probed = tlbs[1].lookup(asid, va, kind).map(|h| h.pa);
                let tlb = &mut tlbs[0];
                let got = if kind == AccessKind::Write {
                    tlb.store_recent(va)
                } else if tlb.hit_recent(va, LoadOrFetch::Load) {
                    Some(tlb.last_hit(kind).translate(va))
                } else {
                    None
                };
                let got = got.or_else(|| lookup_as_mmu(tlb, asid, va, kind).map(|h| h.2));
                assert_eq!(got, probed, "policy {policy}, step {n}");
                assert_eq!(
                    tlbs[0].counters(),
                    tlbs[1].counters(),
                    "policy {policy}, step {n}"
                );
            }
            tlbs[0].settle_counts();
            assert_eq!(
                tlbs[0].counters(),
                tlbs[1].counters(),
                "policy {policy}, settled"
            );
        }
    }

    /// A word of an earlier round of generations never matches: a page
    /// remembered, then invalidated and filled again at another frame,
    /// and 1022 more generations (switches between two address spaces)
    /// bring the generation back to the one its word holds. The wrap
    /// (`Tlb::wrap_recent_gen`) cleared that word, so the recent-hit
    /// paths decline and the lookup finds the new frame.
    #[test]
    fn a_wrapped_generation_takes_no_stale_recent_hit() {
        let mut tlb = split_first_level(4, 1, true, false);
        let (a, b) = (Asid::new(1), Asid::new(2));
        tlb.resume_context(a);
        let va = VirtAddr::new(0x7123);
        let at = |tlb: &Tlb, frame| {
            entry(tlb, 1, 0x7000, PageSize::SIZE_4K, frame)
                .with_perms(Perms::all())
                .with_dirty(true)
        };
        tlb.fill(at(&tlb, 0x10_0000), va, AccessKind::Read);
        // The probe remembers it; the recent-hit paths take it.
        assert_eq!(
            tlb.lookup(a, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x10_0123))
        );
        assert!(tlb.hit_recent(va, LoadOrFetch::Load));
        assert_eq!(tlb.store_recent(va), Some(pa(0x10_0123)));
        let start = tlb.recent_gen;
        assert_eq!(tlb.invalidate_page(a, va), 1);
        tlb.fill(at(&tlb, 0x20_0000), va, AccessKind::Read);
        for _ in 0..511 {
            tlb.resume_context(b);
            tlb.resume_context(a);
        }
        assert_eq!(tlb.recent_gen, start, "the generations went round");
        assert!(!tlb.hit_recent(va, LoadOrFetch::Load));
        assert_eq!(tlb.store_recent(va), None);
        assert!(tlb.lookup_repeat(va, AccessKind::Read).is_none());
        assert_eq!(
            tlb.lookup(a, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x20_0123))
        );
    }

    /// With ASID tags a switch flushes nothing, so both address spaces'
    /// entries for one page stay; the recent hit of the one switched away
    /// from never serves the other (a switch starts a new generation, see
    /// `Tlb::resume_context`), nor a lookup for an address space other
    /// than the current one (`Tlb::lookup_word`).
    #[test]
    fn a_recent_hit_serves_only_the_current_address_space() {
        let mut tlb = split_first_level(4, 1, true, false);
        let (a, b) = (Asid::new(1), Asid::new(2));
        let va = VirtAddr::new(0x9040);
        for (asid, frame) in [(1, 0x10_0000), (2, 0x20_0000)] {
            let e = entry(&tlb, asid, 0x9000, PageSize::SIZE_4K, frame)
                .with_perms(Perms::all())
                .with_dirty(true);
            tlb.fill(e, va, AccessKind::Read);
        }
        tlb.context_switch(a);
        assert_eq!(
            tlb.lookup(a, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x10_0040))
        );
        assert!(tlb.hit_recent(va, LoadOrFetch::Load));
        // A lookup for the other address space probes (and remembers
        // nothing the current one could take).
        assert_eq!(
            tlb.lookup(b, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x20_0040))
        );
        assert!(!tlb.hit_recent(va, LoadOrFetch::Load));
        assert_eq!(
            tlb.lookup(a, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x10_0040))
        );
        assert!(tlb.hit_recent(va, LoadOrFetch::Load));
        tlb.context_switch(b);
        assert!(!tlb.hit_recent(va, LoadOrFetch::Load));
        assert_eq!(tlb.store_recent(va), None);
        assert!(tlb.lookup_repeat(va, AccessKind::Read).is_none());
        assert_eq!(
            tlb.lookup(b, va, AccessKind::Read).map(|h| h.pa),
            Some(pa(0x20_0040))
        );
        assert_eq!(tlb.store_recent(va), Some(pa(0x20_0040)));
    }

    /// A side whose smallest page is below 4 KiB remembers no recent hits
    /// (their keys would not fit below the generation): the lookups probe
    /// and find their entries, however high the address.
    #[test]
    fn small_pages_remember_no_recent_hits() {
        let mut config = TlbConfig::default();
        let array = TlbArrayConfig::new(8, Some(2), &[PageSize::from_shift(8).expect("256 B")]);
        config.levels.push(TlbLevelConfig {
            latency: 1,
            arrays: vec![array],
        });
        let mut tlb = Tlb::new(&config, &X86_64).expect("valid");
        let a = Asid::new(0);
        tlb.resume_context(a);
        for raw in [0x1234_u64, 0xfff0_0000_0000_1234, 0x0010_0000_0000_1234] {
            let va = VirtAddr::new(raw);
            let e = TlbEntry::new(
                tlb.tag(a),
                VirtAddr::new(raw & !0xff),
                PageSize::from_shift(8).expect("256 B"),
                pa(0x10_0000),
            )
            .with_perms(Perms::all())
            .with_dirty(true);
            tlb.fill(e, va, AccessKind::Read);
            assert_eq!(
                tlb.lookup(a, va, AccessKind::Read).map(|h| h.pa),
                Some(pa(0x10_0034)),
                "{raw:#x}"
            );
            assert!(!tlb.hit_recent(va, LoadOrFetch::Load), "{raw:#x}");
            assert!(tlb.lookup_repeat(va, AccessKind::Read).is_none());
        }
    }

    #[test]
    fn side_rights_are_a_user_load_and_a_user_fetch() {
        use crate::mmu::Privilege;
        use crate::mmu::translate::required;
        for x in [LoadOrFetch::Load, LoadOrFetch::Fetch] {
            assert_eq!(SIDE_RIGHTS[x.side()], required(x.kind(), Privilege::User));
        }
    }

    proptest::proptest! {
        /// The memo of recent hits (older ones included) changes nothing:
        /// the same lookups hit the same entries and fills evict the same
        /// victims, for LRU and tree-PLRU, split and unified first levels.
        #[test]
        fn recent_hit_memos_change_nothing(
            ops in proptest::collection::vec((0u64..6, 0u8..4), 1..400),
            unified: bool,
            lru: bool,
        ) {
            let mut array = TlbArrayConfig::new(4, Some(4), &[PageSize::SIZE_4K]);
            array.holds = if unified { Holds::Unified } else { Holds::Data };
            array.replacement = if lru {
                crate::mmu::Replacement::Lru
            } else {
                crate::mmu::Replacement::TreePlru
            };
            let mut config = TlbConfig::default();
            config.levels.push(TlbLevelConfig {
                latency: 1,
                arrays: vec![array],
            });
            let with = Tlb::new(&config, &X86_64).expect("valid");
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            let asid = Asid::new(1);
            for &(page, op) in &ops {
                let va = VirtAddr::new(0x1000 * (page + 1) + 8 * u64::from(op));
                let kind = match op {
                    0 if unified => AccessKind::Execute,
                    0 | 1 => AccessKind::Read,
                    _ => AccessKind::Write,
                };
                let hits = tlbs.each_mut().map(|tlb| tlb.lookup(asid, va, kind));
                proptest::prop_assert_eq!(hits[0], hits[1]);
                if hits[0].is_none() {
                    for tlb in &mut tlbs {
                        let e = entry(tlb, 1, va.as_u64() & !0xfff, PageSize::SIZE_4K, 0x10_0000 + (page << 12));
                        tlb.fill(e, va, kind);
                    }
                }
            }
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
        }

        /// The same with fully associative first levels of every size and
        /// policy (indexed arrays, recency lists), a second level, two
        /// address spaces and invalidations: unified first levels keep their
        /// memos across the other side's touches, and still change nothing.
        #[test]
        fn memos_change_nothing_in_large_fully_associative_levels(
            ops in proptest::collection::vec((0u64..90, 0u8..6, 0u16..2), 1..500),
            ways in proptest::sample::select(vec![2u32, 8, 17, 24, 64]),
            policy in 0usize..3,
            unified: bool,
            second: bool,
            span in proptest::sample::select(vec![3u64, 6, 20, 90]),
        ) {
            let replacement = replacement_of(policy);
            let mut config = TlbConfig::default();
            let mut arrays = Vec::new();
            for holds in if unified { vec![Holds::Unified] } else { vec![Holds::Data, Holds::Instruction] } {
                let mut array = TlbArrayConfig::new(ways, None, &[PageSize::SIZE_4K]);
                array.holds = holds;
                array.replacement = replacement;
                arrays.push(array);
            }
            config.levels.push(TlbLevelConfig { latency: 1, arrays });
            if second {
                let mut array = TlbArrayConfig::new(64, Some(4), &[PageSize::SIZE_4K]);
                array.replacement = replacement;
                config.levels.push(TlbLevelConfig { latency: 7, arrays: vec![array] });
            }
            let with = Tlb::new(&config, &X86_64).expect("valid");
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            for &(page, op, asid) in &ops {
                let page = page % span;
                let va = VirtAddr::new(0x1000 * (page + 1) + 8 * u64::from(op));
                let asid = Asid::new(asid + 1);
                let kind = match op {
                    0 | 1 => AccessKind::Execute,
                    2 | 3 => AccessKind::Read,
                    4 => AccessKind::Write,
                    _ => {
                        // Now and then an invalidation of the page.
                        let removed = tlbs.each_mut().map(|tlb| tlb.invalidate_page(asid, va));
                        proptest::prop_assert_eq!(removed[0], removed[1]);
                        continue;
                    }
                };
                let hits = tlbs.each_mut().map(|tlb| tlb.lookup(asid, va, kind));
                proptest::prop_assert_eq!(hits[0], hits[1]);
                if hits[0].is_none() {
                    for tlb in &mut tlbs {
                        let e = entry(tlb, asid.as_u16(), va.as_u64() & !0xfff, PageSize::SIZE_4K, 0x10_0000 + (page << 12));
                        tlb.fill(e, va, kind);
                    }
                }
            }
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            let entries = tlbs.each_ref().map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(&entries[0], &entries[1]);
        }

        /// The recent-hit table of a first level shared by both sides
        /// (unified arrays of 4 KiB and 2 MiB pages, set-associative and
        /// fully associative, indexed ones with recency lists, every
        /// policy), whose hits defer their touches and count per place
        /// until a settlement: looked up as the MMU and the span loop do
        /// (`hit_recent`, which must decline; for a load or fetch
        /// `hit_shared`, which must take only entries granting it, for a
        /// store `store_shared`, only writable dirty ones; then
        /// `lookup_repeat`, then `lookup`), with data and fetches
        /// interleaved on the same and on different pages, places shared
        /// by pages 32 apart, entries with all rights, a load's only, or
        /// none, clean or dirty, two address spaces with tags on or off, invalidations,
        /// and saves and restores of the settled TLB midway. Same hits,
        /// counters, entries and victims as probing every time.
        #[test]
        fn recent_hits_change_nothing_in_shared_first_levels(
            ops in proptest::collection::vec((0u64..200, 0u8..9, 0u16..2), 1..600),
            ways in proptest::sample::select(vec![2u32, 4, 17, 24, 64]),
            sets in 1u32..3,
            policy in 0usize..3,
            tags: bool,
            second: bool,
            span in proptest::sample::select(vec![3u64, 40, 70, 200]),
        ) {
            let replacement = replacement_of(policy);
            let mut config = TlbConfig { asid_tags: tags, ..TlbConfig::default() };
            let mut array = TlbArrayConfig::new(ways * sets, Some(ways), &[PageSize::SIZE_4K, PageSize::SIZE_2M]);
            array.holds = Holds::Unified;
            array.replacement = replacement;
            config.levels.push(TlbLevelConfig { latency: 1, arrays: vec![array] });
            if second {
                let mut array = TlbArrayConfig::new(64, Some(4), &[PageSize::SIZE_4K, PageSize::SIZE_2M]);
                array.replacement = replacement;
                config.levels.push(TlbLevelConfig { latency: 7, arrays: vec![array] });
            }
            let with = Tlb::new(&config, &X86_64).expect("valid");
            proptest::prop_assert!(with.shared_l1);
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            let mut current = Asid::new(1);
            // The MMU tells a new TLB its address space (`lookup_repeat`
            // takes recent hits of that one only).
            for tlb in &mut tlbs {
                tlb.resume_context(current);
            }
            for (k, &(page, op, asid)) in ops.iter().enumerate() {
                let page = page % span;
                // Pages 32 apart share a place; pages from 150 up are 2 MiB ones.
                let (va, large) = test_va(page, op, 150);
                let asid = Asid::new(asid + 1);
                switch_to(&mut tlbs, asid, &mut current);
                let kind = match op {
                    0..=2 => AccessKind::Execute,
                    3 | 4 => AccessKind::Read,
                    5 | 6 => AccessKind::Write,
                    7 => {
                        let removed = tlbs.each_mut().map(|tlb| tlb.invalidate_page(asid, va));
                        proptest::prop_assert_eq!(removed[0], removed[1]);
                        continue;
                    }
                    _ => {
                        if k % 3 == 0 {
                            // A save (settled first, as the MMU does) and restore.
                            tlbs[0].settle_counts();
                            tlbs[0].settle_touches();
                            let saved = postcard::to_allocvec(&tlbs[0]).expect("save");
                            tlbs[0] = postcard::from_bytes(&saved).expect("restore");
                        }
                        continue;
                    }
                };
                let load_or_fetch = LoadOrFetch::of(kind);
                let hits = tlbs.each_mut().map(|tlb| {
                    assert!(
                        !load_or_fetch.is_some_and(|x| tlb.hit_recent(va, x)),
                        "hit_recent took a shared first level's hit"
                    );
                    if let Some(x) = load_or_fetch
                        && tlb.hit_shared(va, x)
                    {
                        let e = *tlb.last_hit(kind);
                        assert!(e.perms().contains(SIDE_RIGHTS[x.side()]), "hit_shared without the rights");
                        return Some((e, 0, e.translate(va)));
                    }
                    if kind == AccessKind::Write
                        && let Some(pa) = tlb.store_shared(va)
                    {
                        let e = *tlb.last_hit(kind);
                        assert!(e.takes_user_store(), "store_shared took a clean or read-only entry");
                        return Some((e, 0, pa));
                    }
                    lookup_as_mmu(tlb, asid, va, kind)
                });
                proptest::prop_assert_eq!(hits[0], hits[1]);
                proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
                if hits[0].is_none() {
                    // All rights mostly; some pages a load's only, some none.
                    let perms = match page % 7 {
                        0 => Perms::empty(),
                        1 => Perms::READ.union(Perms::USER),
                        _ => Perms::all(),
                    };
                    for tlb in &mut tlbs {
                        let e = page_entry(tlb, asid, va, page, large)
                            .with_perms(perms)
                            .with_dirty(page % 3 != 0);
                        tlb.fill(e, va, kind);
                    }
                }
            }
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            let entries = tlbs.each_ref().map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(&entries[0], &entries[1]);
            // The replacement state itself: the victims of fills of fresh
            // pages until every way was replaced (LRU stamps may differ in
            // value, a deferred touch replaying once, but not in order).
            for p in 0..u64::from(ways * sets) + 2 {
                let va = VirtAddr::new(0x9000_0000 + p * 0x1000);
                for tlb in &mut tlbs {
                    let e = entry(tlb, current.as_u16(), va.as_u64(), PageSize::SIZE_4K, 0x20_0000 + (p << 12));
                    tlb.fill(e, va, AccessKind::Read);
                }
                let entries = tlbs.each_ref().map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
                proptest::prop_assert_eq!(&entries[0], &entries[1]);
            }
        }

        /// Probes search only the arrays that may hold entries (each
        /// level's `probing` masks, kept at fills, invalidations and
        /// restores) and compare a set's tags with the way count a constant
        /// for 4, 8 and 12 ways: checked against a model that looks at every
        /// entry of every array (a lookup hits at the first level with an
        /// array of its side holding a matching entry, and finds one of
        /// those), through 4 KiB, 2 MiB and 1 GiB pages (splintered where a
        /// level has no array of their size), loads and fetches, two
        /// address spaces with tags on or off, page, gathered, address-space,
        /// non-global and full invalidations, context switches, and saves
        /// and restores, in the presets and in split first levels of 1 to
        /// 24 ways, with pages in one set or spread over sets.
        #[test]
        fn probes_find_what_the_arrays_hold(
            ops in proptest::collection::vec((0u64..64, 0u8..16, 0u16..2), 1..500),
            shape in 0usize..9,
            tags: bool,
            span in proptest::sample::select(vec![8u64, 48, 64]),
            stride in proptest::sample::select(vec![1u64, 16, 128]),
        ) {
            let mut tlb = match shape {
                0..=3 => {
                    let name = ["x86-64", "core-i7", "classroom", "riscv-sv39"][shape];
                    let mut config = TlbConfig::preset(name).expect("preset");
                    config.asid_tags = tags;
                    Tlb::new(&config, &X86_64).expect("valid")
                }
                _ => split_first_level([1, 4, 8, 12, 24][shape - 4], 0, tags, true),
            };
            let mut current = Asid::new(1);
            tlb.resume_context(current);
            for (k, &(page, op, asid)) in ops.iter().enumerate() {
                let page = page % span;
                // Pages 0-39 are 4 KiB, 40-55 2 MiB, 56-63 1 GiB pages;
                // 4 KiB pages `stride` apart (16 and 128 fill the ways of
                // one set of the presets' arrays, and evict).
                let (base, size) = match page {
                    0..40 => (0x1000 * (page * stride + 1), PageSize::SIZE_4K),
                    40..56 => (0x4000_0000 + (page - 40) * 0x20_0000, PageSize::SIZE_2M),
                    _ => (0x80_0000_0000 + (page - 56) * 0x4000_0000, PageSize::SIZE_1G),
                };
                let step = if page < 40 { 8 } else { 0x1000 };
                let va = VirtAddr::new(base + step * u64::from(op));
                let asid = Asid::new(asid + 1);
                let kind = match op {
                    0..=3 => AccessKind::Read,
                    4 | 5 => AccessKind::Write,
                    6..=8 => AccessKind::Execute,
                    9 => {
                        tlb.invalidate_page(asid, va);
                        continue;
                    }
                    10 => {
                        let other = VirtAddr::new(va.as_u64() + 0x1000);
                        tlb.invalidate_pages([(asid, va, false), (asid, other, false)].into_iter());
                        continue;
                    }
                    11 => {
                        switch_to(std::slice::from_mut(&mut tlb), asid, &mut current);
                        continue;
                    }
                    12 => {
                        tlb.invalidate_asid(asid);
                        continue;
                    }
                    13 if k % 4 == 0 => {
                        tlb.invalidate_all();
                        continue;
                    }
                    14 if k % 4 == 1 => {
                        tlb.invalidate_non_global();
                        continue;
                    }
                    15 if k % 3 == 0 => {
                        // A save (settled first, as the MMU does) and restore.
                        tlb.settle_counts();
                        tlb.settle_touches();
                        let saved = postcard::to_allocvec(&tlb).expect("save");
                        tlb = postcard::from_bytes(&saved).expect("restore");
                        tlb.resume_context(current);
                        proptest::prop_assert!(tlb.probe_masks_cover_entries());
                        continue;
                    }
                    _ => AccessKind::Read,
                };
                proptest::prop_assert!(tlb.probe_masks_cover_entries());
                let tag = tlb.tag(current);
                let fetch = kind.is_fetch();
                let holds = |l: usize| {
                    tlb.arrays(l).iter().filter(|a| {
                        if fetch { a.holds().serves_fetch() } else { a.holds().serves_data() }
                    }).flat_map(TlbArray::entries).filter(|e| {
                        let shift = e.granule().shift();
                        e.matches(va.as_u64() >> shift, shift, tag)
                    }).copied().collect::<Vec<_>>()
                };
                let expected = (0..tlb.level_count()).map(|l| (l, holds(l))).find(|(_, m)| !m.is_empty());
                let hit = tlb.lookup(current, va, kind);
                match (&hit, &expected) {
                    (None, None) => {}
                    (Some(hit), Some((level, matching))) => {
                        proptest::prop_assert_eq!(hit.level, *level);
                        proptest::prop_assert!(matching.contains(&hit.entry));
                    }
                    _ => proptest::prop_assert!(false, "{va} ({kind:?}): hit {hit:?}, model {expected:?}"),
                }
                if hit.is_none() {
                    let e = entry(&tlb, current.as_u16(), base, size, 0x100_0000_0000 + (page << 30));
                    tlb.fill(e, va, kind);
                }
                proptest::prop_assert!(tlb.probe_masks_cover_entries());
            }
        }

        /// The recent-hit table of split first levels (set-associative and
        /// fully associative, 4 KiB and 2 MiB arrays, every policy) changes
        /// nothing, looked up as the MMU does (`lookup_repeat`, then
        /// `lookup`): pages that share a place in the table, more pages
        /// than it holds, large pages (several places remember one way),
        /// two address spaces with tags on or off, context switches and
        /// invalidations. Same hits, counters, entries and victims as
        /// probing every time.
        #[test]
        fn recent_hits_change_nothing_in_split_first_levels(
            ops in proptest::collection::vec((0u64..200, 0u8..8, 0u16..2), 1..600),
            ways in proptest::sample::select(vec![1u32, 2, 4, 8, 24]),
            policy in 0usize..3,
            tags: bool,
            second: bool,
            span in proptest::sample::select(vec![3u64, 40, 70, 200]),
        ) {
            let with = split_first_level(ways, policy, tags, second);
            proptest::prop_assert!(!with.shared_l1);
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            let mut current = Asid::new(1);
            // The MMU tells a new TLB its address space (`lookup_repeat`
            // takes recent hits of that one only).
            for tlb in &mut tlbs {
                tlb.resume_context(current);
            }
            for &(page, op, asid) in &ops {
                let page = page % span;
                // Pages 32 apart share a place; pages from 150 up are in 2 MiB ones.
                let (va, large) = test_va(page, op, 150);
                let asid = Asid::new(asid + 1);
                switch_to(&mut tlbs, asid, &mut current);
                let kind = match op {
                    0 | 1 => AccessKind::Execute,
                    2..=4 => AccessKind::Read,
                    5 | 6 => AccessKind::Write,
                    _ => {
                        let removed = tlbs.each_mut().map(|tlb| tlb.invalidate_page(asid, va));
                        proptest::prop_assert_eq!(removed[0], removed[1]);
                        continue;
                    }
                };
                let hits = tlbs.each_mut().map(|tlb| lookup_as_mmu(tlb, asid, va, kind));
                proptest::prop_assert_eq!(hits[0], hits[1]);
                if hits[0].is_none() {
                    for tlb in &mut tlbs {
                        let e = page_entry(tlb, asid, va, page, large);
                        tlb.fill(e, va, kind);
                    }
                }
            }
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            let entries = tlbs.each_ref().map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(&entries[0], &entries[1]);
        }

        /// The MMU's hit paths for loads and fetches (`hit_recent`) and for
        /// stores (`store_recent`), their counts kept apart until settled,
        /// against probing every time: tried first for every read, fetch
        /// or write (with rights the entry may lack, dirty or clean), the
        /// MMU's usual path (`lookup_repeat`, then `lookup`) after it when
        /// it declines; a store taken must be the probe's first-level hit,
        /// granting it and dirty, at the probe's address. Invalidations, context
        /// switches, fills and restores (told the current address space or
        /// not) between. The counters agree after every
        /// lookup (read with the pending hits added), again once settled,
        /// and after a save and restore of the settled TLB; the entries too.
        #[test]
        fn hit_recent_agrees_with_probing(
            ops in proptest::collection::vec(
                (0u64..120, 0u8..10, 0u16..2, proptest::prop_oneof![3 => proptest::strategy::Just(15u8), 1 => 0u8..16]),
                1..500,
            ),
            ways in proptest::sample::select(vec![1u32, 2, 4, 24]),
            policy in 0usize..3,
            tags: bool,
            span in proptest::sample::select(vec![3u64, 40, 120]),
        ) {
            let with = split_first_level(ways, policy, tags, true);
            let without = with.clone().with_last_hit_memo(false);
            let mut tlbs = [with, without];
            let mut current = Asid::new(1);
            // The MMU tells a new TLB its address space (`lookup_repeat`
            // takes recent hits of that one only).
            for tlb in &mut tlbs {
                tlb.resume_context(current);
            }
            for &(page, op, asid, rights) in &ops {
                let page = page % span;
                // Pages from 100 up are 2 MiB ones.
                let (va, large) = test_va(page, op, 100);
                let asid = Asid::new(asid + 1);
                switch_to(&mut tlbs, asid, &mut current);
                let kind = match op {
                    0..=2 => AccessKind::Execute,
                    3..=5 => AccessKind::Read,
                    6 | 7 => AccessKind::Write,
                    8 => {
                        let removed = tlbs.each_mut().map(|tlb| tlb.invalidate_page(asid, va));
                        proptest::prop_assert_eq!(removed[0], removed[1]);
                        continue;
                    }
                    _ => {
                        // A save (settled first, as the MMU does) and restore:
                        // the restored TLB looks up for no address space until
                        // told the current one, as `Mmu::resume_context` does.
                        tlbs[0].settle_counts();
                        let saved = postcard::to_allocvec(&tlbs[0]).expect("save");
                        tlbs[0] = postcard::from_bytes(&saved).expect("restore");
                        if page % 4 != 0 {
                            tlbs[0].resume_context(current);
                        }
                        continue;
                    }
                };
                let required = crate::mmu::translate::required(kind, crate::mmu::Privilege::User);
                let probed = tlbs[1].lookup(asid, va, kind).map(|h| (h.entry, h.level, h.pa));
                let tlb = &mut tlbs[0];
                let load_or_fetch = LoadOrFetch::of(kind);
                let stored = if kind == AccessKind::Write { tlb.store_recent(va) } else { None };
                let got = if load_or_fetch.is_some_and(|x| tlb.hit_recent(va, x)) {
                    // Done: the entry the probe finds, at the first level, granting the access.
                    let (entry, level, _) = probed.expect("a recent hit is a hit");
                    proptest::prop_assert_eq!(level, 0);
                    proptest::prop_assert!(entry.perms().contains(required));
                    probed
                } else if let Some(pa) = stored {
                    // Done too, and with no walk: the probe's first-level
                    // hit, granting the store, dirty, at the same address.
                    let (entry, level, probed_pa) = probed.expect("a recent store hit is a hit");
                    proptest::prop_assert_eq!(level, 0);
                    proptest::prop_assert!(entry.perms().contains(required));
                    proptest::prop_assert!(entry.is_dirty());
                    proptest::prop_assert_eq!(pa, probed_pa);
                    probed
                } else {
                    lookup_as_mmu(tlb, asid, va, kind)
                };
                proptest::prop_assert_eq!(got, probed);
                proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
                // The replacement state too, after every lookup: a recent
                // hit touches its way exactly as the probe does (a wrong
                // tree-PLRU touch shows here, not only in a later eviction).
                // Not with LRU stamps: the probe also re-stamps the side's
                // last way, a recent hit of it does not (the same order).
                if policy != 0 {
                    let states = tlbs.each_ref().map(first_level_state);
                    proptest::prop_assert_eq!(&states[0], &states[1]);
                }
                if probed.is_none() {
                    for tlb in &mut tlbs {
                        let e = page_entry(tlb, asid, va, page, large)
                            .with_perms(Perms::from_bits_truncate(rights))
                            .with_dirty(page % 3 != 0);
                        tlb.fill(e, va, kind);
                    }
                }
            }
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            tlbs[0].settle_counts();
            proptest::prop_assert_eq!(tlbs[0].pending(), [0; 2]);
            proptest::prop_assert_eq!(tlbs[0].pending_stores(), 0);
            proptest::prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            let saved = postcard::to_allocvec(&tlbs[0]).expect("save");
            let restored: Tlb = postcard::from_bytes(&saved).expect("restore");
            proptest::prop_assert_eq!(restored.counters(), tlbs[1].counters());
            let entries = tlbs.each_ref().map(|tlb| tlb.entries().map(|(l, e)| (l, *e)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(&entries[0], &entries[1]);
        }
    }

    /// A default-preset TLB that has cached a 4 KiB page searches one
    /// array at each level for data (`Level::sole`), so its walking probe
    /// takes the specialised body: what
    /// `specialised_probes_equal_the_general_one` needs to compare.
    #[test]
    fn the_presets_walking_probes_are_specialised() {
        for (name, shapes) in [("x86-64", (1, 6)), ("core-i7", (1, 1))] {
            let mut tlb = preset(name);
            let va = VirtAddr::new(0x1234_5678);
            let asid = Asid::new(1);
            assert!(tlb.lookup(asid, va, AccessKind::Read).is_none());
            tlb.fill_missed(
                entry(&tlb, 1, 0x1234_5000, PageSize::SIZE_4K, 0x9000),
                va,
                AccessKind::Read,
            );
            let sole: Vec<u8> = tlb.levels.iter().map(|l| l.sole[DATA].0).collect();
            assert_eq!(sole, [shapes.0, shapes.1], "{name}");
        }
    }

    /// A second-level hit copied up by the walking probe
    /// (`Tlb::copy_up_second`, the quick fill in line) forgets the recent
    /// hits: one that copies up over the way of a recent hit leaves no
    /// recent hit of the page it evicted.
    /// `specialised_probes_equal_the_general_one` seldom evicts a hot
    /// page by copy-ups alone; this does it on purpose.
    #[test]
    fn a_copy_up_over_a_recent_hit_forgets_it() {
        let mut tlb = preset("x86-64");
        let asid = Asid::new(1);
        tlb.resume_context(asid);
        let fill = |tlb: &mut Tlb, page: u64| {
            let va = VirtAddr::new(page << 12);
            assert!(
                tlb.lookup_unremembered::<Option<TlbHit>>(asid, va, AccessKind::Read)
                    .is_none()
            );
            let e = entry(tlb, 1, page << 12, PageSize::SIZE_4K, page << 12)
                .with_perms(Perms::from_bits_truncate(15));
            tlb.fill_missed(e, va, AccessKind::Read);
        };
        let in_first = |tlb: &Tlb, page: u64| tlb.entries().any(|(l, e)| l == 0 && e.vpn() == page);
        // Pages of the first level's set 0 (16 sets): eight, of which the
        // first level keeps four and the second all.
        let sets = tlb.levels[0].arrays[0].sets() as u64;
        let others: Vec<u64> = (1..=8).map(|k| k * sets).collect();
        for &p in &others {
            fill(&mut tlb, p);
        }
        fill(&mut tlb, 0);
        let va0 = VirtAddr::new(0);
        // (A first-level hit right after a fill is not recorded, the
        // second with no fill between is: `Tlb::probe_first_seen`.)
        let hit: Option<TlbHit> = tlb.lookup_unremembered(asid, va0, AccessKind::Read);
        assert_eq!(hit.map(|h| h.level), Some(0));
        assert!(!tlb.hit_recent(va0, LoadOrFetch::Load));
        let hit: Option<TlbHit> = tlb.lookup_unremembered(asid, va0, AccessKind::Read);
        assert_eq!(hit.map(|h| h.level), Some(0));
        assert!(tlb.hit_recent(va0, LoadOrFetch::Load));
        // Second-level hits of the others, copied up into set 0, until
        // page 0 is evicted from the first level.
        for round in 0..4 {
            for &p in &others {
                if !in_first(&tlb, 0) {
                    break;
                }
                if !in_first(&tlb, p) {
                    let hit: Option<TlbHit> =
                        tlb.lookup_unremembered(asid, VirtAddr::new(p << 12), AccessKind::Read);
                    assert_eq!(hit.map(|h| h.level), Some(1), "round {round} page {p}");
                }
            }
        }
        assert!(!in_first(&tlb, 0), "copy-ups did not evict page 0");
        assert!(
            !tlb.hit_recent(va0, LoadOrFetch::Load),
            "a stale recent hit"
        );
    }

    /// The presets' levels fill a 4 KiB page through their quick fills
    /// (`QuickFill`), for data and fetches: what
    /// `specialised_probes_equal_the_general_one` compares with the
    /// general fill.
    #[test]
    fn the_presets_fill_4k_pages_quickly() {
        for (name, ways) in [
            ("x86-64", [[4, 12], [8, 12]]),
            ("core-i7", [[4, 4], [4, 4]]),
        ] {
            let tlb = preset(name);
            for side in [DATA, FETCH] {
                let quick: Vec<(u8, u16)> = tlb
                    .levels
                    .iter()
                    .map(|l| (l.quick[side].ways, l.quick[side].sizes))
                    .collect();
                assert_eq!(
                    quick,
                    [(ways[side][0], 12 | 12 << 8), (ways[side][1], 12 | 12 << 8)],
                    "{name} side {side}"
                );
            }
        }
        // And both levels at once, through their pair fill.
        for (name, pairs) in [
            ("x86-64", [PAIR_4_12_FIRST, PAIR_8_12]),
            ("core-i7", [PAIR_4_4, PAIR_4_4]),
        ] {
            let tlb = preset(name);
            for side in [DATA, FETCH] {
                let p = tlb.pair_fill[side];
                assert_eq!(
                    (p.pair, p.sizes),
                    (pairs[side], 12 | 12 << 8),
                    "{name} side {side}"
                );
            }
        }
    }

    /// A restored TLB does not know its pair fill (`PairFill`, not saved)
    /// until it resumes its context (`Tlb::resume_context`): then it is
    /// the fresh TLB's. Both a restored TLB that resumed and one that did
    /// not (whose fills all take the general fill) fill as the TLB they
    /// were saved from: the same saved TLB after the same misses and
    /// fills.
    ///
    /// `"x86-64-4k-last"` is the x86-64 preset with its first level's
    /// arrays in reverse order: its data side's 4 KiB array is then not
    /// the level's first, and takes [`PAIR_4_12`] (the arrays' indices
    /// read from the pair) rather than [`PAIR_4_12_FIRST`].
    #[test]
    fn a_restored_tlb_works_its_pair_fill_out() {
        for name in ["x86-64", "core-i7", "x86-64-4k-last"] {
            let mut tlb = if name == "x86-64-4k-last" {
                let mut config = TlbConfig::preset("x86-64").expect("preset");
                config.levels[0].arrays.reverse();
                let tlb = Tlb::new(&config, &X86_64).expect("valid");
                assert_eq!(tlb.pair_fill[DATA].pair, PAIR_4_12);
                assert_ne!(tlb.pair_fill[DATA].first, 0);
                tlb
            } else {
                preset(name)
            };
            let asid = Asid::new(1);
            tlb.resume_context(asid);
            let fill = |tlb: &mut Tlb, page: u64| {
                let va = VirtAddr::new(page << 12);
                assert!(
                    tlb.lookup_unremembered::<Option<TlbHit>>(asid, va, AccessKind::Read)
                        .is_none()
                );
                let e = entry(tlb, 1, page << 12, PageSize::SIZE_4K, page << 12);
                tlb.fill_missed(e, va, AccessKind::Read);
            };
            fill(&mut tlb, 1);
            let saved = postcard::to_allocvec(&tlb).expect("save");
            let mut resumed: Tlb = postcard::from_bytes(&saved).expect("restore");
            let mut unresumed: Tlb = postcard::from_bytes(&saved).expect("restore");
            assert_eq!(resumed.pair_fill, [PairFill::UNKNOWN; 2], "{name}");
            resumed.resume_context(asid);
            assert_eq!(resumed.pair_fill, tlb.pair_fill, "{name}");
            assert_ne!(tlb.pair_fill[DATA].pair, PAIR_NONE, "{name}");
            // (Past 1,600 fills both arrays of x86-64's data pair are full,
            // and `fill_missed`'s first path takes the pair's fills: the
            // unresumed TLB's general fill checks it.)
            for page in 2..6_000 {
                for t in [&mut tlb, &mut resumed, &mut unresumed] {
                    fill(t, page * 7);
                }
            }
            assert_eq!(unresumed.pair_fill, [PairFill::UNKNOWN; 2], "{name}");
            let saved: Vec<Vec<u8>> = [&mut tlb, &mut resumed, &mut unresumed]
                .into_iter()
                .map(|t| {
                    t.settle_counts();
                    postcard::to_allocvec(&*t).expect("save")
                })
                .collect();
            assert!(saved[1] == saved[0], "{name}: the resumed TLB differs");
            assert!(saved[2] == saved[0], "{name}: the unresumed TLB differs");
        }
    }

    /// The counts of the pair's quick paths kept apart ([`PairCounts`]) are
    /// the counts: x86-64's data pair filled past full (`fill_missed`'s
    /// first path) and hit at its second level (`second_hit_quick`'s
    /// copy-up), against the same TLB with its quick fills off (whose
    /// general fills and copy-ups count as they go): the same snapshot
    /// (`counters`) after every op, through a `reset_counters`, and the
    /// same saved bytes once settled (`settle_counts`), with nothing left
    /// apart.
    #[test]
    fn pair_counts_kept_apart_are_the_counts() {
        let asid = Asid::new(1);
        let mut quick = preset("x86-64");
        quick.resume_context(asid);
        let general = quick.clone().without_quick_fills();
        let mut tlbs = [quick, general];
        let mut most = PairCounts::default();
        for step in 0..9_000u64 {
            // New pages (misses, fills) and, one op in three, the page
            // filled 301 ops ago (a new one then; no longer in the first
            // level, still in the second: a second-level hit and its
            // copy-up).
            let page = if step % 3 == 2 && step > 301 {
                step - 301
            } else {
                step
            };
            let va = VirtAddr::new(page << 12);
            let hits = tlbs.each_mut().map(|t| {
                t.lookup_unremembered::<Option<TlbHit>>(asid, va, AccessKind::Read)
                    .map(|h| (h.entry, h.level, h.pa))
            });
            assert_eq!(hits[0], hits[1], "step {step}");
            if hits[0].is_none() {
                for t in &mut tlbs {
                    let e = entry(t, 1, page << 12, PageSize::SIZE_4K, page << 12);
                    t.fill_missed(e, va, AccessKind::Read);
                }
            }
            let p = tlbs[0].pair_counts;
            most.fills[DATA] = most.fills[DATA].max(p.fills[DATA]);
            most.copies[DATA] = most.copies[DATA].max(p.copies[DATA]);
            assert_eq!(tlbs[1].pair_counts, PairCounts::default());
            assert_eq!(tlbs[0].counters(), tlbs[1].counters(), "step {step}");
            if step == 6_000 {
                for t in &mut tlbs {
                    t.reset_counters();
                }
                assert_eq!(tlbs[0].pair_counts, PairCounts::default());
            }
        }
        // (Both paths taken, thousands of times.)
        assert!(
            most.fills[DATA] > 1_000 && most.copies[DATA] > 1_000,
            "{most:?}"
        );
        let saved = tlbs.each_mut().map(|t| {
            t.settle_counts();
            postcard::to_allocvec(&*t).expect("save")
        });
        assert_eq!(tlbs[0].pair_counts, PairCounts::default());
        assert!(saved[0] == saved[1], "the saved TLBs differ");
    }

    /// Walks of every preset's shapes: `lookup_unremembered`, whose probe
    /// (`probe_walking`) searches a level's `sole` array directly when it
    /// has a shape it knows (the x86-64 preset's levels, core-i7's
    /// first), against the general probe (`probe`), each
    /// probe followed, on a miss, by the walk's fill. Pages of 4 KiB over
    /// more than the second level holds (so sets evict), some 2 MiB ones
    /// (the second level's array then holds two sizes), three address
    /// spaces, fetches, and page invalidations (which may empty an array:
    /// the general body again); every other load or fetch tried by
    /// `hit_recent` first, as the span loop does (it replays the touch the
    /// walking probe's first-level hit recorded). Same hits, counters and
    /// first-level replacement state after every op, and the same saved
    /// TLB at the end.
    ///
    /// `"x86-64-small-l1"` is the x86-64 preset with 4 KiB arrays alone in
    /// its first level (a large page is splintered there): its second
    /// level's array then holds 2 MiB entries while the first level's
    /// probes stay specialised, which the preset's rarely does (its first
    /// level's 2 MiB arrays take the large pages, and then the probe is
    /// the general one).
    ///
    /// `"x86-64-4k"` is the x86-64 preset with 4 KiB pages alone: its
    /// second level's array then holds one size, and its hits take the
    /// pair's own paths (`Tlb::probe_second_seen`'s copy-up by the trees'
    /// constants once the first level is full, `Tlb::probe_first_seen`'s
    /// unrecorded hit), which one 2 MiB page in the second level turns off
    /// for good.
    fn walking_probes_agree(name: &str, ops: &[(u16, u8, u16)]) -> Result<(), TestCaseError> {
        let large_from = if name == "x86-64-4k" { u64::MAX } else { 3_800 };
        let walking = if name == "x86-64-4k" {
            preset("x86-64")
        } else if name == "x86-64-small-l1" {
            let mut config = TlbConfig::preset("x86-64").expect("preset");
            config.levels[0]
                .arrays
                .retain(|a| a.page_sizes == [PageSize::SIZE_4K]);
            Tlb::new(&config, &X86_64).expect("valid")
        } else {
            preset(name)
        };
        // (The general TLB fills the general way too: the quick fills,
        // `QuickFill`, are the special TLB's.)
        let mut tlbs = [walking.clone(), walking.without_quick_fills()];
        let recents = name != "core-i7";
        let mut current = Asid::new(1);
        for tlb in &mut tlbs {
            tlb.resume_context(current);
        }
        for &(page, op, asid) in ops {
            // One in three among 8 hot pages (first-level and recent
            // hits), one among 256 (second-level hits), the rest over
            // all (misses, evictions); from 3,800 up 2 MiB ones.
            let page = u64::from(match page % 3 {
                0 => page,
                1 => page % 8,
                _ => page % 256,
            });
            let (va, large) = test_va(page, op, large_from);
            // A switch of address space in one op of eight (a switch forgets
            // the recent hits).
            let asid = if page % 8 == 0 {
                Asid::new(asid + 1)
            } else {
                current
            };
            switch_to(&mut tlbs, asid, &mut current);
            let kind = match op {
                0 | 1 => AccessKind::Execute,
                2..=6 => AccessKind::Read,
                7 | 8 => AccessKind::Write,
                _ => {
                    let removed = tlbs.each_mut().map(|tlb| tlb.invalidate_page(asid, va));
                    prop_assert_eq!(removed[0], removed[1]);
                    continue;
                }
            };
            let side = side(kind);
            let hits = {
                let [special, general] = &mut tlbs;
                let tag = special.tag(asid);
                // (Counted as `lookup_unremembered` counts, as is the
                // special TLB's probe.)
                general.lookups_by_kind[kind.index()] += 1;
                // The pair's search alone, on a copy (every op, after
                // first-level hits too, which `lookup_unremembered` sends to
                // the general probe): its answer held to the general
                // probe's, so that a break in it fails here, not only in a
                // fill's debug check after it.
                let (code, _) = special.clone().probe_walking(va, side, WalkCode);
                let b = general.probe(asid, tag, va, side);
                let seen = code & WALK_CODE_MASK;
                match b.map(|h| h.level) {
                    None => {}
                    Some(0) => prop_assert!(
                        seen == WALK_FIRST_SEEN || seen == WALK_GENERAL,
                        "{} {:?}: a first-level hit, the pair's search said {}",
                        va,
                        kind,
                        code
                    ),
                    Some(_) => prop_assert!(
                        code != WALK_MISSED,
                        "{} {:?}: a second-level hit, the pair's search missed",
                        va,
                        kind
                    ),
                }
                let a = match LoadOrFetch::of(kind) {
                    // Every other load or fetch as the span loop makes it:
                    // the recent hit first (which replays the touch the
                    // walking probe's first-level hit recorded), and the
                    // general TLB's probe hit the first level. Not with
                    // core-i7's LRU stamps: the probe re-stamps the side's
                    // last way, a recent hit of it does not (the same
                    // order, other bytes).
                    Some(x) if recents && op % 2 == 0 && special.hit_recent(va, x) => {
                        prop_assert_eq!(b.map(|h| h.level), Some(0));
                        b
                    }
                    _ => {
                        // The span loop's answer (`PaHit`), on a copy: the
                        // whole hit's address and flags, the copy left as
                        // the whole hit's probe leaves the TLB.
                        let mut copy = special.clone();
                        let pa_hit: PaHit = copy.lookup_unremembered(asid, va, kind);
                        let whole: Option<TlbHit> = special.lookup_unremembered(asid, va, kind);
                        prop_assert_eq!(
                            pa_hit.found(),
                            whole.map(|h| (h.pa, h.entry.flags())),
                            "{} {:?}",
                            va,
                            kind
                        );
                        prop_assert_eq!(copy.counters(), special.counters());
                        let saved =
                            [&copy, &*special].map(|t| postcard::to_allocvec(t).expect("save"));
                        prop_assert!(saved[0] == saved[1], "{} {:?}: the copies differ", va, kind);
                        whole
                    }
                };
                [a, b].map(|h| h.map(|h| (h.entry, h.level, h.pa)))
            };
            prop_assert_eq!(hits[0], hits[1], "{} {:?}", va, kind);
            prop_assert_eq!(tlbs[0].counters(), tlbs[1].counters());
            let states = tlbs.each_ref().map(first_level_state);
            prop_assert_eq!(&states[0], &states[1]);
            if hits[0].is_none() {
                for tlb in &mut tlbs {
                    // (With every right: user loads and fetches of it
                    // may be taken as recent hits.)
                    let e = page_entry(tlb, asid, va, page, large)
                        .with_perms(Perms::from_bits_truncate(15));
                    tlb.fill_missed(e, va, kind);
                }
            }
        }
        for tlb in &mut tlbs {
            tlb.settle_counts();
        }
        let saved = tlbs
            .each_ref()
            .map(|tlb| postcard::to_allocvec(tlb).expect("save"));
        prop_assert!(saved[0] == saved[1], "the saved TLBs differ");
        Ok(())
    }

    use proptest::prelude::{TestCaseError, prop_assert, prop_assert_eq};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn specialised_probes_equal_the_general_one(
            ops in proptest::collection::vec((0u16..4_000, 0u8..10, 0u16..3), 1..2_500),
            name in proptest::sample::select(vec!["x86-64", "x86-64-small-l1", "x86-64-4k", "core-i7"]),
        ) {
            walking_probes_agree(name, &ops)?;
        }
    }
}
