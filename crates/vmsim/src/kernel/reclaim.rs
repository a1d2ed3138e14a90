//! Demand paging: choosing pages to evict, writing them to the swap file and
//! bringing them back.
//!
//! The replacement policy ([`crate::reclaim`]) sees only what an operating
//! system sees: faults, and the accessed and dirty bits in the page-table
//! entries ([`PteBits`], which clears A in memory and, unless configured
//! otherwise, invalidates the TLB entry so the hardware sets A again on the
//! next access). Policies that must see every access or the future (LRU,
//! OPT, ARC, ...) are oracles and are refused here; `vmsim policy` runs them.
//!
//! A page's identity (the policy's id) follows its contents: it is made when
//! a zeroed page is first mapped, moves to a swap slot on eviction and back
//! to a frame on swap-in, and ends when the last mapping and the last swap
//! reference are gone. After a swap-in the slot keeps its copy (a swap
//! cache): a page evicted again while clean is dropped without a write, and
//! another sharer of a swapped copy-on-write page finds the frame already in.
//!
//! Swap entries are kept in the kernel's tables ([`AddressSpace::swapped`]),
//! not in the non-present PTEs as Linux does, so every paging format (even a
//! 1-byte classroom entry) can swap. Pages of shared-memory objects and
//! mlocked pages are never evicted.

use std::num::NonZeroU64;
use std::path::PathBuf;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::addr::{Asid, PageSize, Pfn, PhysAddr, Pid, VirtAddr};
use crate::memory::PhysMemory;
use crate::paging::pte::PlainLeafTest;
use crate::paging::{Entry, Flush, Format, PageTables, PteFlags};
use crate::reclaim::{
    AccessBits, Aging, Clock, ClockInsert, ClockPro, Fifo, Linux, Nru, Policy, Random, RefTime,
    Sieve,
};
use crate::swap::{PageIn, SwapDevice, SwapSlot};

use super::address_space::AddressSpace;
use super::frame_maps::FrameMaps;
use super::process::SpaceId;
use super::shootdowns::Shootdowns;
use super::{Kernel, KernelError, SystemPolicy, TlbControl};

mod restored;
#[cfg(test)]
pub(crate) use restored::PagerForgery;

/// What demand paging counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagingStats {
    /// Faults that read a page from swap.
    pub major_faults: u64,
    /// Pages read from the swap file (one per major fault).
    pub swap_ins: u64,
    /// Pages evicted to swap (written, or dropped clean with a valid copy).
    pub swap_outs: u64,
    /// Evictions that wrote the page (dirty, or no valid swap copy).
    pub writebacks: u64,
    /// Evictions of clean pages whose swap copy was still valid: no write.
    pub clean_drops: u64,
    /// Swapped pages another sharer had already brought back (minor faults).
    pub swap_cache_hits: u64,
    /// Accessed bits tested (and cleared) by the policy.
    pub pages_scanned: u64,
    /// Major faults on pages evicted less than `frames` evictions ago: pages
    /// a memory twice as large would have kept (working-set refaults).
    pub refaults: u64,
    /// Times the page-out daemon ran (free frames fell below the low watermark).
    pub kswapd_runs: u64,
    /// Pages reclaimed by the page-out daemon.
    pub kswapd_reclaimed: u64,
    /// Allocations that found nothing free and reclaimed directly.
    pub direct_reclaims: u64,
    /// Times the policy chose a page that was busy (held by a fault in
    /// progress) and it was put back.
    pub busy_skips: u64,
}

/// The policies an OS could run (they decide from faults and A/D bits only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum KernelPolicy {
    Fifo(Fifo),
    Clock(Clock),
    Nru(Nru),
    Aging(Aging),
    Random(Random),
    Linux(Linux),
    ClockPro(ClockPro),
    Sieve(Sieve),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            KernelPolicy::Fifo($p) => $e,
            KernelPolicy::Clock($p) => $e,
            KernelPolicy::Nru($p) => $e,
            KernelPolicy::Aging($p) => $e,
            KernelPolicy::Random($p) => $e,
            KernelPolicy::Linux($p) => $e,
            KernelPolicy::ClockPro($p) => $e,
            KernelPolicy::Sieve($p) => $e,
        }
    };
}

const NOW: RefTime = RefTime {
    now: 0,
    next_use: crate::reclaim::NEVER,
};

impl KernelPolicy {
    fn new(policy: SystemPolicy, n_ids: usize, frames: usize, seed: u64, tick: u64) -> Self {
        match policy {
            SystemPolicy::Fifo => Self::Fifo(Fifo::new(n_ids)),
            SystemPolicy::Clock => Self::Clock(Clock::new(n_ids, ClockInsert::Referenced)),
            SystemPolicy::Nru => Self::Nru(Nru::new(n_ids)),
            SystemPolicy::Aging => Self::Aging(Aging::new(
                n_ids,
                NonZeroU64::new(tick.max(1)).unwrap_or(NonZeroU64::MIN),
            )),
            SystemPolicy::Random => Self::Random(Random::new(n_ids, seed)),
            SystemPolicy::Linux => Self::Linux(Linux::new(n_ids)),
            SystemPolicy::ClockPro => Self::ClockPro(ClockPro::new(n_ids, frames)),
            SystemPolicy::Sieve => Self::Sieve(Sieve::new(n_ids)),
        }
    }

    fn on_insert<B: AccessBits>(&mut self, id: u32, bits: &mut B) {
        dispatch!(self, p => p.on_insert(id, NOW, bits));
    }

    /// [`KernelPolicy::on_insert`] of `id` if the policy needs no accessed
    /// bits for it (CLOCK's default insert: [`Clock::insert_without_bits`]);
    /// whether it was done (else nothing was, and `on_insert` is to be called).
    #[inline]
    fn insert_without_bits(&mut self, id: u32) -> bool {
        match self {
            Self::Clock(c) => c.insert_without_bits(id),
            _ => false,
        }
    }

    fn victim<B: AccessBits>(&mut self, incoming: u32, bits: &mut B) -> u32 {
        dispatch!(self, p => p.victim(incoming, bits))
    }

    fn on_remove(&mut self, id: u32) {
        dispatch!(self, p => p.on_remove(id));
    }

    fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        dispatch!(self, p => p.check_restored(n_ids))
    }

    /// The settings the configuration fixes, against `fresh` (built from
    /// it): the same policy, with the same insert rule, tick interval,
    /// tie order or frame count.
    fn check_settings(&self, fresh: &Self) -> Result<(), String> {
        match (self, fresh) {
            (Self::Fifo(_), Self::Fifo(_))
            | (Self::Nru(_), Self::Nru(_))
            | (Self::Random(_), Self::Random(_))
            | (Self::Linux(_), Self::Linux(_))
            | (Self::Sieve(_), Self::Sieve(_)) => Ok(()),
            (Self::Clock(p), Self::Clock(f)) => p.check_settings(f),
            (Self::Aging(p), Self::Aging(f)) => p.check_settings(f),
            (Self::ClockPro(p), Self::ClockPro(f)) => p.check_settings(f),
            _ => Err("not the configuration's replacement policy".into()),
        }
    }

    fn holds(&self, id: u32) -> bool {
        dispatch!(self, p => p.holds(id))
    }

    fn tick_interval(&self) -> Option<NonZeroU64> {
        dispatch!(self, p => p.tick_interval())
    }

    fn on_tick<B: AccessBits>(&mut self, bits: &mut B) {
        dispatch!(self, p => p.on_tick(bits));
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SlotInfo {
    /// Swap entries (in address spaces) that refer to this slot.
    refs: u32,
    /// The page whose contents the slot holds.
    id: u32,
    /// The frame holding the same contents, while it is resident (swap cache).
    cached: Option<Pfn>,
}

/// The reclaimer's state. A copy has its own copy of the swap device
/// (pages and all), so a cloned kernel swaps in what its original swapped out.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Reclaim {
    policy: Option<KernelPolicy>,
    swap: Option<SwapDevice>,
    swap_slots: u32,
    swap_path: Option<PathBuf>,
    keep: bool,
    overwrite: bool,
    page_bytes: usize,
    free_ids: Vec<u32>,
    next_id: u32,
    /// The reserved id passed as the incoming page when the daemon reclaims.
    nobody: u32,
    /// Per frame, the id of the page in it, plus one (0: none). Zero-encoded
    /// so the table costs nothing until used (the allocator hands out zeroed pages).
    #[serde(with = "crate::serde_sparse")]
    id_of_frame: Vec<u32>,
    /// Per id, the frame holding the page, plus one (0: not resident).
    #[serde(with = "crate::serde_sparse")]
    frame_of_id: Vec<u64>,
    #[serde(with = "crate::serde_sparse")]
    in_policy: Vec<bool>,
    /// How many ids are in the policy (resident and evictable).
    in_policy_count: u64,
    #[serde(with = "crate::serde_sparse")]
    evicted_at: Vec<u64>,
    rmap: Vec<FrameMaps>,
    slot_of_frame: FxHashMap<u64, SwapSlot>,
    slots: FxHashMap<SwapSlot, SlotInfo>,
    evictions: u64,
    /// Frames whose dirty bit a dirty-page tracker cleared (Linux's
    /// PG_dirty, set by `page_mkclean`): the page still differs from its
    /// swap copy, so eviction writes it back, and policies still see it dirty.
    cleaned_dirty: std::collections::BTreeSet<u64>,
    frames: u64,
    low: u64,
    high: u64,
    invalidate: bool,
    tick: u64,
    next_tick: u64,
    pub(super) stats: PagingStats,
    /// Where mappings' leaf entries are (derived, not saved).
    #[serde(skip)]
    leaves: LeafCache,
    /// The list a reclaim gathers its TLB invalidations in (kept for its
    /// memory; empty between reclaims).
    #[serde(skip)]
    shootdowns: Vec<(Asid, Flush, bool)>,
}

/// Where a radix mapping's leaf entry is.
#[derive(Debug, Clone, Copy)]
struct LeafAt {
    addr: PhysAddr,
    idx: usize,
    size: PageSize,
    /// The frame of the table holding the entry, and its
    /// [`super::FrameTable::table_gens`] count when the address was found.
    table: u64,
    gen_: u64,
}

/// Most remembered leaf addresses (then they are all forgotten): bounds
/// the host memory of a run that maps many pages over time.
const LEAF_CACHE_MAX: usize = 1 << 20;

/// The leaf-entry address of each (space, page) the policy looked at, so
/// scanning a page's accessed bit reads one entry instead of walking the
/// radix tree twice (test, then clear). An address is used only while the
/// table frame holding it has not been freed or reused since
/// ([`super::FrameTable::table_gens`]): in a radix tree a page's leaf moves
/// only when its table is removed (a huge page split or merged, a range
/// unmapped, a space destroyed), and then that table's frame is given back.
/// Each use also checks that the entry still decodes as a leaf (else it
/// walks again). Per table, not per tree: a swap-heavy run frees and
/// remakes the leaf tables of its coldest pages all the time, and that
/// must not cost the walk of every other page.
///
/// Looked up by frame first: `by_frame` holds, per frame, the leaf of one
/// mapping of its page, tagged with the (space, page) it belongs to. The
/// policy's scan and eviction come to a page through its frame, and a
/// dense table indexed by frame is one read where the map's probe into
/// a megabyte of buckets missed the host's caches on nearly every scan
/// (a quarter of a swap-heavy run's time). The map stays for the rest
/// (a page in swap has no frame) and the frame's other mappings.
#[derive(Debug, Default)]
struct LeafCache {
    at: super::leaf_map::LeafMap<MapLeaf>,
    by_frame: Vec<FrameLeaf>,
    /// Bits of a table frame's address below its frame number: a frame
    /// entry keeps the entry's address and finds its table from it (see
    /// [`FrameLeaf`]). Set by every insert (the frame size never changes).
    frame_shift: u32,
    /// Times `at` was emptied (at [`LEAF_CACHE_MAX`]): a [`KnownLeaf`]
    /// found before is no longer what a lookup would find.
    clears: u64,
    /// The kernel format's [`Format::plain_leaf_test`], worked out at the
    /// scan's first page (the format never changes; a copied or restored
    /// kernel works it out again).
    plain: Option<PlainLeafTest>,
    /// The last page the scan's plain path found with its accessed bit
    /// clear, as it read the entry: CLOCK's victim, whose dirty check
    /// ([`PteBits::dirty_and_first_leaf`]) then need not be made
    /// ([`Reclaim::victim_status`]).
    /// Emptied when each victim is sought and taken by the eviction that
    /// follows ([`Kernel::reclaim_one`]): nothing between the two changes
    /// an entry.
    scanned_clear: Option<ScannedLeaf>,
}

/// A plain leaf as [`PteBits::test_and_clear_plain`] read it (accessed bit
/// clear, so it wrote nothing): page `id`'s only mapping's entry, its value
/// and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScannedLeaf {
    id: u32,
    raw: u64,
    idx: usize,
    addr: PhysAddr,
}

/// A leaf entry's place as [`Kernel::known_leaf`] found it in the leaf
/// cache, for `va` in space `sid`. A fault looks its page's leaf up to see
/// that the page is not mapped, and maps it there after the swap-in: the
/// second lookup ([`Kernel::still_known`]) checks this one is still what
/// the cache would answer instead of probing its map again (a host cache
/// miss per swap-in).
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownLeaf {
    at: LeafAt,
    sid: u32,
    va: u64,
    /// [`LeafCache::clears`] when it was found.
    clears: u64,
}

impl KnownLeaf {
    /// The leaf's level index and entry address.
    pub(super) fn place(self) -> (usize, PhysAddr) {
        (self.at.idx, self.at.addr)
    }
}

/// What [`LeafCache`]'s map keeps of a leaf: a [`LeafAt`] without its
/// table (the frame of `addr`), its level index in a byte, packed to 4
/// bytes' alignment so that the map's bucket (page, space, this) is 32
/// bytes (see [`super::leaf_map`]). Its fields are read by value only.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct MapLeaf {
    addr: u64,
    gen_: u64,
    idx: u8,
    size: PageSize,
}

impl MapLeaf {
    /// `at` as the map keeps it, if its level index fits a byte (always: a
    /// level index; else the map does not keep it).
    #[inline(always)]
    fn of(at: &LeafAt) -> Option<Self> {
        Some(Self {
            addr: at.addr.as_u64(),
            gen_: at.gen_,
            idx: u8::try_from(at.idx).ok()?,
            size: at.size,
        })
    }

    /// The leaf as a [`LeafAt`], its table worked out with `frame_shift`.
    #[inline(always)]
    fn at(self, frame_shift: u32) -> LeafAt {
        let addr = self.addr;
        LeafAt {
            addr: PhysAddr::new_unchecked(addr),
            idx: usize::from(self.idx),
            size: self.size,
            table: addr >> frame_shift,
            gen_: self.gen_,
        }
    }
}

/// A frame's entry in [`LeafCache`]: the leaf of its page's mapping at
/// `va` in space `sid` ([`LeafAt`] without its table, which is the
/// frame of `addr`).
///
/// 32 bytes aligned to 32, so the scan reads one host cache line per
/// frame: the entry was an `Option<(u32, u64, LeafAt)>` of 64 bytes at
/// 8-byte alignment, two lines each, and both missed (the scan visits
/// every other frame between two visits to one), a ninth of the swap
/// row's last-level misses outside the page copies.
///
/// No `Option`: an empty entry ([`FrameLeaf::EMPTY`]) holds the generation
/// `u64::MAX`, which no table reaches (counts from 0, one a reuse), so it
/// never passes [`LeafCache::valid`] whatever it is asked.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct FrameLeaf {
    va: u64,
    /// The entry's physical address (a [`PhysAddr`]'s value).
    addr: u64,
    gen_: u64,
    sid: u32,
    idx: u8,
    size: PageSize,
}

impl FrameLeaf {
    /// The entry of `space`'s page `va` whose leaf is `at` (level index
    /// `idx`): what both of `LeafCache::note_frame`'s paths store.
    #[inline(always)]
    fn of(sid: u32, va: u64, at: &LeafAt, idx: u8) -> Self {
        Self {
            va,
            addr: at.addr.as_u64(),
            gen_: at.gen_,
            sid,
            idx,
            size: at.size,
        }
    }

    /// No leaf remembered (see the type's comment).
    const EMPTY: Self = Self {
        va: u64::MAX,
        addr: 0,
        gen_: u64::MAX,
        sid: u32::MAX,
        idx: u8::MAX,
        size: PageSize::SIZE_4K,
    };

    /// The entry's leaf as a [`LeafAt`], its table worked out with
    /// `frame_shift` (the bits of a frame's address below its number).
    #[inline(always)]
    fn at(&self, frame_shift: u32) -> LeafAt {
        LeafAt {
            addr: PhysAddr::new_unchecked(self.addr),
            idx: self.idx as usize,
            size: self.size,
            table: self.addr >> frame_shift,
            gen_: self.gen_,
        }
    }
}

impl LeafCache {
    /// The remembered leaf of `va` in space `sid`, whose page is in frame
    /// `pfn` (if known), while its table is still the one it was found in
    /// (`gens`: the frame table's [`super::FrameTable::table_gens`]).
    ///
    /// Inlined, with the map's probe out of line: the policy's scan asks
    /// this of every page it passes (twice or three times an eviction),
    /// nearly always answered by the frame's entry, and the answer then
    /// stays in registers instead of a returned struct.
    #[inline(always)]
    fn get(&self, pfn: Option<u64>, sid: u32, va: u64, gens: &[u64]) -> Option<LeafAt> {
        if let Some(f) = pfn.and_then(|p| self.by_frame.get(p as usize))
            && f.sid == sid
            && f.va == va
        {
            let at = f.at(self.frame_shift);
            if Self::valid(&at, gens) {
                return Some(at);
            }
        }
        self.get_mapped(sid, va, gens)
    }

    /// [`LeafCache::get`] from the map alone.
    #[inline(never)]
    fn get_mapped(&self, sid: u32, va: u64, gens: &[u64]) -> Option<LeafAt> {
        self.at
            .get(sid, va)
            .map(|m| m.at(self.frame_shift))
            .filter(|at| Self::valid(at, gens))
    }

    /// Whether the table holding `at` is still the one it was found in.
    #[inline(always)]
    fn valid(at: &LeafAt, gens: &[u64]) -> bool {
        gens.get(at.table as usize).copied().unwrap_or(0) == at.gen_
    }

    /// Remembers the leaf of `va` in space `sid`, mapped to frame `pfn`
    /// (`frame_shift`: the frame size's shift, as in [`LeafCache::frame_shift`]).
    fn insert(&mut self, pfn: u64, sid: u32, va: u64, at: LeafAt, frame_shift: u32) {
        if self.at.len() >= LEAF_CACHE_MAX {
            self.at.clear();
            self.clears += 1;
        }
        self.frame_shift = frame_shift;
        debug_assert_eq!(at.table, at.addr.as_u64() >> frame_shift);
        match MapLeaf::of(&at) {
            Some(m) => self.at.insert(sid, va, m),
            None => {
                // (Never: a level index.) What the map had for the key
                // would be stale: it forgets everything.
                self.at.clear();
                self.clears += 1;
            }
        }
        self.note_frame(pfn, sid, va, at, frame_shift);
    }

    /// Frame `pfn` now holds the page mapped at `va` in space `sid`, whose
    /// leaf is at `at` (in the table `at.addr >> frame_shift`).
    ///
    /// In line, with the table's growth out of line: every swap-in and
    /// first touch notes its frame here.
    #[inline(always)]
    fn note_frame(&mut self, pfn: u64, sid: u32, va: u64, at: LeafAt, frame_shift: u32) {
        self.frame_shift = frame_shift;
        debug_assert_eq!(at.table, at.addr.as_u64() >> frame_shift);
        match (self.by_frame.get_mut(pfn as usize), u8::try_from(at.idx)) {
            (Some(f), Ok(idx)) => {
                *f = FrameLeaf::of(sid, va, &at, idx);
            }
            _ => self.note_new_frame(pfn as usize, sid, va, at),
        }
    }

    /// [`LeafCache::note_frame`] of a frame past the end of the table (it
    /// grows: the buddy hands out low frames first), or of a leaf whose
    /// level index does not fit a byte (never: a level index; the frame's
    /// entry is emptied).
    #[cold]
    #[inline(never)]
    fn note_new_frame(&mut self, i: usize, sid: u32, va: u64, at: LeafAt) {
        if self.by_frame.len() <= i {
            self.by_frame.resize(i + 1, FrameLeaf::EMPTY);
        }
        self.by_frame[i] = match u8::try_from(at.idx) {
            Ok(idx) => FrameLeaf::of(sid, va, &at, idx),
            Err(_) => FrameLeaf::EMPTY,
        };
    }
}

impl Clone for Reclaim {
    /// A copy with a copy of the swap device: the pages in swap come along,
    /// held in memory until the copy's first swap-out gives it a file of its
    /// own (a temporary one: a file cannot be shared by two kernels, and the
    /// user's path belongs to the original).
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            swap: self.swap.clone(),
            swap_slots: self.swap_slots,
            swap_path: None,
            keep: false,
            overwrite: false,
            page_bytes: self.page_bytes,
            free_ids: self.free_ids.clone(),
            next_id: self.next_id,
            nobody: self.nobody,
            id_of_frame: self.id_of_frame.clone(),
            frame_of_id: self.frame_of_id.clone(),
            in_policy: self.in_policy.clone(),
            in_policy_count: self.in_policy_count,
            evicted_at: self.evicted_at.clone(),
            rmap: self.rmap.clone(),
            slot_of_frame: self.slot_of_frame.clone(),
            slots: self.slots.clone(),
            evictions: self.evictions,
            cleaned_dirty: self.cleaned_dirty.clone(),
            frames: self.frames,
            low: self.low,
            high: self.high,
            invalidate: self.invalidate,
            tick: self.tick,
            next_tick: self.next_tick,
            stats: self.stats,
            leaves: LeafCache::default(),
            shootdowns: Vec::new(),
        }
    }
}

/// Reclaim settings, from the kernel config.
pub(super) struct ReclaimSetup<'a> {
    pub frames: u64,
    pub page_bytes: usize,
    pub data_pages: u64,
    pub cfg: &'a super::KernelConfig,
}

impl Reclaim {
    pub(super) fn new(s: &ReclaimSetup<'_>) -> Result<Self, KernelError> {
        let cfg = s.cfg;
        let slots = cfg
            .swap_slots
            .unwrap_or((4 * s.data_pages).min(u64::from(u32::MAX / 4)) as u32);
        let n_ids = (s.data_pages + u64::from(slots) + 1) as usize;
        let policy = if slots > 0 {
            Some(KernelPolicy::new(
                cfg.policy,
                n_ids,
                s.data_pages as usize,
                cfg.seed,
                cfg.tick,
            ))
        } else {
            None
        };
        let low = cfg
            .low_watermark
            .unwrap_or((s.data_pages / 64).clamp(2, 1024));
        let high = cfg.high_watermark.unwrap_or(low * 2);
        if high < low {
            return Err(KernelError::Config(format!(
                "high_watermark = {high} is below low_watermark = {low}"
            )));
        }
        if high >= s.data_pages {
            return Err(KernelError::Config(format!(
                "high_watermark = {high} pages leaves nothing to use of {} pages",
                s.data_pages
            )));
        }
        let track = policy.is_some();
        let per_frame = if track { s.frames as usize } else { 0 };
        let per_id = if track { n_ids } else { 0 };
        Ok(Self {
            policy,
            swap: None,
            swap_slots: slots,
            swap_path: cfg.swap_file.clone(),
            keep: cfg.keep_swap_file,
            overwrite: cfg.swap_file_overwrite,
            page_bytes: s.page_bytes,
            free_ids: Vec::new(),
            next_id: 0,
            nobody: (n_ids - 1) as u32,
            id_of_frame: vec![0; per_frame],
            frame_of_id: vec![0; per_id],
            in_policy: vec![false; per_id],
            in_policy_count: 0,
            evicted_at: vec![0; per_id],
            rmap: Vec::new(),
            slot_of_frame: FxHashMap::default(),
            slots: FxHashMap::default(),
            evictions: 0,
            cleaned_dirty: std::collections::BTreeSet::new(),
            frames: s.data_pages,
            low,
            high,
            invalidate: cfg.clear_accessed_invalidates_tlb,
            tick: cfg.tick.max(1),
            next_tick: cfg.tick.max(1),
            stats: PagingStats::default(),
            leaves: LeafCache::default(),
            shootdowns: Vec::new(),
        })
    }

    /// Whether pages can be evicted at all (swap configured).
    pub(super) fn enabled(&self) -> bool {
        self.policy.is_some()
    }

    fn new_id(&mut self) -> u32 {
        self.free_ids.pop().unwrap_or_else(|| {
            let id = self.next_id;
            self.next_id += 1;
            debug_assert!(id < self.nobody, "more pages than frames + swap slots");
            id
        })
    }

    pub(super) fn rmap_add(&mut self, pfn: Pfn, sid: SpaceId, va: VirtAddr) {
        if !self.enabled() {
            return;
        }
        let i = pfn.as_u64() as usize;
        if self.rmap.len() <= i {
            // Grown as frames are first used: the buddy hands out low frames first.
            self.rmap.resize_with(i + 1, FrameMaps::default);
        }
        self.rmap[i].push((sid, va.as_u64()));
    }

    /// The page id in frame `pfn`, if any.
    fn id_of(&self, pfn: Pfn) -> Option<u32> {
        self.id_of_frame
            .get(pfn.as_u64() as usize)
            .and_then(|&x| x.checked_sub(1))
    }

    fn set_id(&mut self, pfn: Pfn, id: Option<u32>) {
        self.id_of_frame[pfn.as_u64() as usize] = id.map_or(0, |i| i + 1);
    }

    /// The frame holding page `id`, if it is resident.
    fn frame_of(&self, id: u32) -> Option<Pfn> {
        self.frame_of_id
            .get(id as usize)
            .and_then(|&x| x.checked_sub(1))
            .map(Pfn::new)
    }

    fn set_frame(&mut self, id: u32, pfn: Option<Pfn>) {
        self.frame_of_id[id as usize] = pfn.map_or(0, |p| p.as_u64() + 1);
    }

    /// The mappings of frame `pfn`.
    fn maps(&self, pfn: Pfn) -> &[(SpaceId, u64)] {
        self.rmap
            .get(pfn.as_u64() as usize)
            .map_or(&[], FrameMaps::as_slice)
    }

    pub(super) fn rmap_remove(&mut self, pfn: Pfn, sid: SpaceId, va: VirtAddr) {
        if let Some(list) = self.rmap.get_mut(pfn.as_u64() as usize) {
            list.remove((sid, va.as_u64()));
        }
    }

    /// Remembers that the dirty bit of the page in `pfn` was cleared by a
    /// dirty-page tracker, not written back.
    pub(super) fn keep_dirty(&mut self, pfn: Pfn) {
        if self.enabled() {
            self.cleaned_dirty.insert(pfn.as_u64());
        }
    }

    /// The swap device, if one exists (for checkpoints and restores).
    pub(super) fn device_ref(&self) -> Option<&SwapDevice> {
        self.swap.as_ref()
    }

    /// The swap device, mutably, if one exists.
    pub(super) fn device_mut(&mut self) -> Option<&mut SwapDevice> {
        self.swap.as_mut()
    }

    /// Writes the swap device's gathered pages to its file.
    pub(super) fn flush_swap(&mut self) -> Result<(), KernelError> {
        match self.swap.as_mut() {
            Some(dev) => dev.flush().map_err(KernelError::Swap),
            None => Ok(()),
        }
    }

    /// Swap slots in use, and the device's traffic.
    pub(super) fn swap_stats(&self) -> crate::swap::SwapStats {
        self.swap
            .as_ref()
            .map(SwapDevice::stats)
            .unwrap_or_default()
    }

    fn device(&mut self) -> Result<&mut SwapDevice, KernelError> {
        if self.swap.is_none() {
            let dev = SwapDevice::create(
                self.swap_path.as_deref(),
                self.swap_slots,
                self.page_bytes,
                self.keep,
                self.overwrite,
            )?;
            self.swap = Some(dev);
        }
        // A match, not `ok_or`: the error would be built and dropped at
        // every call (twice per eviction cycle).
        match self.swap.as_mut() {
            Some(dev) => Ok(dev),
            None => Err(KernelError::NoSwapDevice),
        }
    }

    /// [`PteBits::dirty_and_first_leaf`] of the victim `id` (in frame
    /// `pfn`) from what the scan handed over (`scanned`,
    /// [`LeafCache::scanned_clear`]) when it is this page's: its dirty bit
    /// as the scan read the entry (nothing changed it since), or a dirty
    /// page tracker's mark, and the entry's place. `None` when the scan
    /// read no entry of this page (another policy's victim, or a page the
    /// general path scanned): the dirty check then looks.
    fn victim_status(
        &self,
        id: u32,
        pfn: Pfn,
        scanned: Option<ScannedLeaf>,
    ) -> Option<(bool, Option<(usize, PhysAddr)>)> {
        let s = scanned.filter(|s| s.id == id)?;
        let kept = !self.cleaned_dirty.is_empty() && self.cleaned_dirty.contains(&pfn.as_u64());
        Some((
            PlainLeafTest::status(s.raw).contains(PteFlags::DIRTY) || kept,
            Some((s.idx, s.addr)),
        ))
    }

    /// A free swap slot. When every slot is taken, a slot that only the swap
    /// cache holds (its page is resident and no swap entry refers to it) is
    /// given up first, as Linux frees swap cache when swap is full
    /// (`vm_swap_full` -> `folio_free_swap`): that page is written again
    /// when it is next evicted. `None`: swap is full of pages that are out.
    fn alloc_slot(&mut self) -> Result<Option<SwapSlot>, KernelError> {
        if let Ok(s) = self.device()?.alloc() {
            return Ok(Some(s));
        }
        // Bounded: when swap holds only pages that are out, a failed search
        // must not cost every eviction attempt a scan of the swap cache.
        let cache_only = self
            .slot_of_frame
            .iter()
            .take(256)
            .find(|(_, s)| self.slots.get(s).is_some_and(|i| i.refs == 0))
            .map(|(&pfn, &s)| (pfn, s));
        let Some((pfn, slot)) = cache_only else {
            return Ok(None);
        };
        // The slot changes hands: it stays allocated in the device.
        self.slot_of_frame.remove(&pfn);
        self.slots.remove(&slot);
        Ok(Some(slot))
    }

    /// Drops one swap entry's reference to `slot`; frees the slot (and the
    /// page's id) when nothing refers to it any more.
    pub(super) fn slot_unref(&mut self, slot: SwapSlot) {
        let Some(info) = self.slots.get_mut(&slot) else {
            return;
        };
        info.refs = info.refs.saturating_sub(1);
        if info.refs == 0 && info.cached.is_none() {
            let id = info.id;
            self.slots.remove(&slot);
            if let Some(dev) = self.swap.as_mut() {
                dev.free(slot);
            }
            self.free_ids.push(id);
        }
    }

    /// One more swap entry refers to `slot` (fork copied it).
    pub(super) fn slot_ref(&mut self, slot: SwapSlot) {
        if let Some(info) = self.slots.get_mut(&slot) {
            info.refs += 1;
        }
    }
}

impl Reclaim {
    /// Checks the page-id books against each other and the policy's own
    /// structure: what a forged checkpoint could break so that a later
    /// eviction indexes out of range or follows a broken list. Frames and
    /// ids map to each other both ways; the ids in the policy are the ones
    /// recorded as in it.
    fn check_ids(&self) -> Result<(), String> {
        let n_ids = self.frame_of_id.len();
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        if self.in_policy.len() != n_ids || self.evicted_at.len() != n_ids {
            return Err(format!("per-id arrays are not all of {n_ids} ids"));
        }
        if n_ids == 0 || self.nobody as usize >= n_ids || self.next_id as usize > n_ids {
            return Err(format!(
                "page ids: next {} and reserved {} outside {n_ids} ids",
                self.next_id, self.nobody
            ));
        }
        if let Some(&id) = self.free_ids.iter().find(|&&id| id >= self.next_id) {
            return Err(format!("free page id {id} was never handed out"));
        }
        for (f, &x) in self.id_of_frame.iter().enumerate() {
            if let Some(id) = x.checked_sub(1)
                && self.frame_of_id.get(id as usize) != Some(&(f as u64 + 1))
            {
                return Err(format!(
                    "frame {f:#x} holds page id {id}, which is not in it"
                ));
            }
        }
        for (id, &x) in self.frame_of_id.iter().enumerate() {
            if let Some(f) = x.checked_sub(1)
                && self.id_of_frame.get(f as usize) != Some(&(id as u32 + 1))
            {
                return Err(format!(
                    "page id {id} is in frame {f:#x}, which does not hold it"
                ));
            }
        }
        if let Some(id) = self.evicted_at.iter().position(|&e| e > self.evictions) {
            return Err(format!(
                "page id {id} evicted at eviction {} of {}",
                self.evicted_at[id], self.evictions
            ));
        }
        let listed = self.in_policy.iter().filter(|&&b| b).count() as u64;
        if listed != self.in_policy_count {
            return Err(format!(
                "{listed} page ids in the policy but the count says {}",
                self.in_policy_count
            ));
        }
        policy
            .check_restored(n_ids)
            .map_err(|e| format!("policy: {e}"))?;
        match (0..n_ids).find(|&id| policy.holds(id as u32) != self.in_policy[id]) {
            Some(id) => Err(format!(
                "page id {id}: recorded as in the policy: {}, held by the policy: {}",
                self.in_policy[id], !self.in_policy[id]
            )),
            None => Ok(()),
        }
    }
}

impl Kernel {
    /// Test hook: renames the address space of the first reverse-map entry
    /// to `sid` (a forged checkpoint's); false if no frame has one.
    #[cfg(test)]
    pub(crate) fn forge_rmap_space(&mut self, sid: u32) -> bool {
        match self.reclaim.rmap.iter_mut().flatten().next() {
            Some(entry) => {
                entry.0 = SpaceId(sid);
                true
            }
            None => false,
        }
    }

    /// Checks the swap bookkeeping: every swap entry names a live slot, each
    /// slot's reference count equals the entries naming it, and the swap
    /// cache links frames and slots both ways.
    pub(super) fn check_swap(&self) -> Result<(), super::InvariantError> {
        let r = &self.reclaim;
        r.check_ids()
            .map_err(|e| super::InvariantError::Broken(format!("reclaim: {e}")))?;
        // Eviction unmaps a frame from every space its reverse map names:
        // each must be a live one (a forged id would index past them).
        for (f, maps) in r.rmap.iter().enumerate() {
            if let Some((sid, va)) = maps
                .iter()
                .find(|(sid, _)| !matches!(self.spaces.get(sid.0 as usize), Some(Some(_))))
            {
                return Err(super::InvariantError::Broken(format!(
                    "frame {f:#x}: the reverse map names address space {} (page {va:#x}), which does not exist",
                    sid.0
                )));
            }
        }
        let mut refs: FxHashMap<SwapSlot, u32> = FxHashMap::default();
        for s in self.spaces.iter().flatten() {
            for (va, slot) in s.swapped.iter() {
                if !r.slots.contains_key(&slot) {
                    return Err(super::InvariantError::Broken(format!(
                        "swap entry of {va:#x} names slot {} which is free",
                        slot.index()
                    )));
                }
                *refs.entry(slot).or_default() += 1;
            }
        }
        for (slot, info) in &r.slots {
            let n = refs.get(slot).copied().unwrap_or(0);
            if n != info.refs {
                return Err(super::InvariantError::Broken(format!(
                    "swap slot {} has {} references but {n} entries name it",
                    slot.index(),
                    info.refs
                )));
            }
            if info.id as usize >= r.frame_of_id.len() {
                return Err(super::InvariantError::Broken(format!(
                    "swap slot {} holds page id {}, outside the {} page ids",
                    slot.index(),
                    info.id,
                    r.frame_of_id.len()
                )));
            }
            if info.refs == 0 && info.cached.is_none() {
                return Err(super::InvariantError::Broken(format!(
                    "swap slot {} is kept with nothing referring to it",
                    slot.index()
                )));
            }
            if let Some(pfn) = info.cached
                && r.slot_of_frame.get(&pfn.as_u64()) != Some(slot)
            {
                return Err(super::InvariantError::Broken(format!(
                    "swap slot {} caches frame {pfn} which does not link back",
                    slot.index()
                )));
            }
        }
        for (&pfn, slot) in &r.slot_of_frame {
            if r.slots.get(slot).and_then(|i| i.cached) != Some(Pfn::new(pfn)) {
                return Err(super::InvariantError::Broken(format!(
                    "frame {pfn:#x} links to swap slot {} which does not cache it",
                    slot.index()
                )));
            }
        }
        let used = r.swap.as_ref().map_or(0, |d| d.stats().slots_used);
        if used != r.slots.len() as u64 {
            return Err(super::InvariantError::Broken(format!(
                "{used} swap slots allocated but {} tracked",
                r.slots.len()
            )));
        }
        Ok(())
    }
}

/// The accessed and dirty bits of a page, read from (and A cleared in) the
/// page-table entries of every mapping of its frame.
struct PteBits<'a, M: PhysMemory + ?Sized, T: TlbControl> {
    fmt: &'a Format,
    tables: &'a mut PageTables,
    spaces: &'a [Option<AddressSpace>],
    rmap: &'a [FrameMaps],
    frame_of_id: &'a [u64],
    mem: &'a mut M,
    tlb: &'a mut T,
    invalidate: bool,
    scanned: &'a mut u64,
    cleaned_dirty: &'a std::collections::BTreeSet<u64>,
    leaves: &'a mut LeafCache,
    /// The frame table's [`super::FrameTable::table_gens`] now.
    gens: &'a [u64],
    /// Bits of a page-table frame's address below its frame number.
    frame_shift: u32,
}

impl<M: PhysMemory + ?Sized, T: TlbControl> PteBits<'_, M, T> {
    /// The frame of page `id` (`frame_of_id` holds it plus one, 0 for
    /// none).
    #[inline(always)]
    fn pfn_of(&self, id: u32) -> Option<u64> {
        self.frame_of_id.get(id as usize)?.checked_sub(1)
    }

    /// The mappings of page `id`'s frame.
    fn maps(&self, id: u32) -> &[(SpaceId, u64)] {
        self.pfn_of(id)
            .and_then(|pfn| self.rmap.get(pfn as usize))
            .map_or(&[], FrameMaps::as_slice)
    }

    /// The leaf entry mapping `va` in a radix table from the cache: where it
    /// is, its raw value and its flags (`None`: not cached, or no longer a
    /// leaf there).
    ///
    /// Inlined into its callers (the scan and the dirty check), so the
    /// flags they do not test are not computed and nothing is returned
    /// through memory.
    #[inline(always)]
    fn cached_leaf(&self, pfn: u64, sid: SpaceId, va: VirtAddr) -> Option<(LeafAt, u64, PteFlags)> {
        let at = self.leaves.get(Some(pfn), sid.0, va.as_u64(), self.gens)?;
        let raw = self.mem.read_le(at.addr, self.fmt.entry_bytes()).ok()?;
        match self.fmt.decode(at.idx, raw) {
            Entry::Leaf { flags, .. } => Some((at, raw, flags)),
            _ => None,
        }
    }

    /// [`PteBits::cached_leaf`] for the scan: the accessed bit alone
    /// ([`Format::leaf_accessed`]) instead of the leaf's decoded flags.
    #[inline(always)]
    fn cached_accessed(&self, pfn: u64, sid: SpaceId, va: VirtAddr) -> Option<(LeafAt, u64, bool)> {
        let at = self.leaves.get(Some(pfn), sid.0, va.as_u64(), self.gens)?;
        let raw = self.mem.read_le(at.addr, self.fmt.entry_bytes()).ok()?;
        let accessed = self.fmt.leaf_accessed(at.idx, raw)?;
        debug_assert_eq!(
            self.cached_leaf(pfn, sid, va)
                .map(|(_, _, f)| f.contains(PteFlags::ACCESSED)),
            Some(accessed)
        );
        Some((at, raw, accessed))
    }

    /// [`PteBits::cached_leaf`] for the dirty check: the leaf's accessed
    /// and dirty flags alone ([`Format::leaf_status`]).
    #[inline(always)]
    fn cached_status(&self, pfn: u64, sid: SpaceId, va: VirtAddr) -> Option<(LeafAt, PteFlags)> {
        let at = self.leaves.get(Some(pfn), sid.0, va.as_u64(), self.gens)?;
        let raw = self.mem.read_le(at.addr, self.fmt.entry_bytes()).ok()?;
        let status = self.fmt.leaf_status(at.idx, raw)?;
        debug_assert_eq!(
            self.cached_leaf(pfn, sid, va)
                .map(|(_, _, f)| f & (PteFlags::ACCESSED | PteFlags::DIRTY)),
            Some(status)
        );
        Some((at, status))
    }

    /// Where the leaf cache has the leaf of page `id`'s mapping when the
    /// page has exactly one, in a radix table, found through its frame
    /// ([`LeafCache::get`]'s first look) and at the last level of a plain
    /// x86-64 format (`test`'s level): its space's ASID, the mapped
    /// address and the leaf. `None` for anything else, which the general
    /// path answers (it then looks again from the start: nothing here
    /// changed anything).
    #[inline(always)]
    fn one_plain_leaf(&self, id: u32, test: &PlainLeafTest) -> Option<(Asid, u64, LeafAt)> {
        let pfn = self.pfn_of(id)?;
        let (sid, va) = self.rmap.get(pfn as usize)?.sole()?;
        if !matches!(self.tables, PageTables::Radix(_)) {
            return None;
        }
        let Some(Some(s)) = self.spaces.get(sid.0 as usize) else {
            return None;
        };
        let f = self.leaves.by_frame.get(pfn as usize)?;
        let at = f.at(self.leaves.frame_shift);
        (f.sid == sid.0
            && f.va == va
            && at.idx == test.last_idx()
            && LeafCache::valid(&at, self.gens))
        .then_some((s.asid, va, at))
    }

    /// The format's [`PlainLeafTest`], worked out at the first call.
    #[inline(always)]
    fn plain_test(&mut self) -> PlainLeafTest {
        match self.leaves.plain {
            Some(t) => t,
            None => {
                let t = self.fmt.plain_leaf_test();
                self.leaves.plain = Some(t);
                t
            }
        }
    }

    /// [`AccessBits::test_and_clear_accessed`] of a page with one mapping
    /// whose leaf the cache has and which is a plain x86-64 leaf (nearly
    /// every page a swap-heavy run scans): the entry read once, tested with
    /// the format's test worked out once ([`Format::plain_leaf_test`]),
    /// and A cleared as the general path clears it. `None` (nothing done)
    /// for any other page. The scan's test `scan_fast_path_answers_as_the_general_one`
    /// checks it against the general path.
    #[inline(always)]
    fn test_and_clear_plain(&mut self, id: u32) -> Option<bool> {
        let test = self.plain_test();
        let (asid, va, at) = self.one_plain_leaf(id, &test)?;
        // Read, tested and (A set) cleared with one look-up of the entry's
        // chunk; the level was tested by `one_plain_leaf`.
        let (mask, value) = test.mask_and_value();
        let raw = self
            .mem
            .clear_le_bits_if(at.addr, mask, value, PlainLeafTest::ACCESSED)
            .ok()?;
        if !test.is_plain(at.idx, raw) {
            return None;
        }
        if raw & PlainLeafTest::ACCESSED == 0 {
            self.leaves.scanned_clear = Some(ScannedLeaf {
                id,
                raw,
                idx: at.idx,
                addr: at.addr,
            });
            return Some(false);
        }
        let flush = Flush::new(VirtAddr::new(va).align_down(at.size), at.size);
        if self.invalidate {
            self.tlb.invalidate_page(asid, flush);
        } else {
            flush.ignore();
        }
        Some(true)
    }

    /// [`PteBits::flags_and_first_leaf`] of a page with one mapping whose
    /// leaf the cache has and which is a plain x86-64 leaf: its A and D
    /// bits as they stand. `None` for any other page (or before the
    /// scan's first page worked the test out).
    #[inline(always)]
    fn status_plain(&self, id: u32) -> Option<(PteFlags, Option<(usize, PhysAddr)>)> {
        let test = self.leaves.plain?;
        let (_, _, at) = self.one_plain_leaf(id, &test)?;
        let raw = self.mem.read_le(at.addr, 8).ok()?;
        test.is_plain(at.idx, raw)
            .then(|| (PlainLeafTest::status(raw), Some((at.idx, at.addr))))
    }

    /// The accessed and dirty bits of every mapping of page `id` (no other
    /// flag).
    fn flags(&self, id: u32) -> PteFlags {
        self.flags_and_first_leaf(id).0
    }

    /// [`PteBits::flags`] (the accessed and dirty bits), and where the leaf cache found the leaf of the
    /// page's first mapping (its reverse map's first entry) when it did:
    /// eviction unmaps that mapping next, with nothing in between that
    /// changes the cache or frees a table, so it need not look it up again.
    /// The leaf as its level index and entry address alone (what the unmap
    /// takes): two words returned, not the cache's whole record.
    fn flags_and_first_leaf(&self, id: u32) -> (PteFlags, Option<(usize, PhysAddr)>) {
        if let Some(r) = self.status_plain(id) {
            debug_assert_eq!(r, self.flags_and_first_leaf_general(id));
            return r;
        }
        self.flags_and_first_leaf_general(id)
    }

    /// [`PteBits::flags_and_first_leaf`] of any page: each mapping's leaf
    /// from the cache or a walk, and decoded where it is not plain.
    #[inline(never)]
    fn flags_and_first_leaf_general(&self, id: u32) -> (PteFlags, Option<(usize, PhysAddr)>) {
        let mut f = PteFlags::empty();
        let mut first = None;
        let pfn = self.pfn_of(id).unwrap_or(u64::MAX);
        for (i, &(sid, va)) in self.maps(id).iter().enumerate() {
            let Some(Some(s)) = self.spaces.get(sid.0 as usize) else {
                continue;
            };
            let va = VirtAddr::new(va);
            if let Some((at, status)) = self.cached_status(pfn, sid, va) {
                f |= status;
                if i == 0 {
                    first = Some((at.idx, at.addr));
                }
            } else if let Ok(t) = self.tables.translate(self.fmt, self.mem, s.asid, va) {
                f |= t.flags & (PteFlags::ACCESSED | PteFlags::DIRTY);
            }
        }
        (f, first)
    }

    /// [`AccessBits::is_dirty`], and the leaf of the page's first mapping
    /// if the cache had it ([`PteBits::flags_and_first_leaf`]).
    fn dirty_and_first_leaf(&self, id: u32) -> (bool, Option<(usize, PhysAddr)>) {
        let (f, first) = self.flags_and_first_leaf(id);
        (f.contains(PteFlags::DIRTY) || self.kept_dirty(id), first)
    }

    /// Whether a dirty-page tracker cleared the dirty bit of page `id`'s
    /// frame (it still differs from its swap copy).
    fn kept_dirty(&self, id: u32) -> bool {
        !self.cleaned_dirty.is_empty()
            && self
                .pfn_of(id)
                .is_some_and(|pfn| self.cleaned_dirty.contains(&pfn))
    }
}

impl<M: PhysMemory + ?Sized, T: TlbControl> AccessBits for PteBits<'_, M, T> {
    fn test_and_clear_accessed(&mut self, id: u32) -> bool {
        *self.scanned += 1;
        if let Some(a) = self.test_and_clear_plain(id) {
            return a;
        }
        self.test_and_clear_general(id)
    }

    fn is_accessed(&self, id: u32) -> bool {
        self.flags(id).contains(PteFlags::ACCESSED)
    }

    fn is_dirty(&self, id: u32) -> bool {
        self.flags(id).contains(PteFlags::DIRTY) || self.kept_dirty(id)
    }
}

impl<M: PhysMemory + ?Sized, T: TlbControl> PteBits<'_, M, T> {
    /// [`AccessBits::test_and_clear_accessed`] of any page (after the
    /// scanned count): every mapping, its leaf from the cache or a walk
    /// (then remembered), decoded where it is not plain. Out of line: the
    /// plain path ([`PteBits::test_and_clear_plain`]) answers nearly every
    /// page, and this one's registers would burden it.
    #[inline(never)]
    fn test_and_clear_general(&mut self, id: u32) -> bool {
        let spaces = self.spaces;
        let rmap = self.rmap;
        let Some((pfn, maps)) = self
            .pfn_of(id)
            .and_then(|pfn| Some((pfn, rmap.get(pfn as usize)?)))
        else {
            return false;
        };
        let mut accessed = false;
        for &(sid, va) in maps {
            let Some(Some(s)) = spaces.get(sid.0 as usize) else {
                continue;
            };
            let va = VirtAddr::new(va);
            if matches!(self.tables, PageTables::Radix(_)) {
                // One read of the remembered leaf (a walk the first time),
                // and the same write update_status makes.
                let leaf = match self.cached_accessed(pfn, sid, va) {
                    Some(l) => Some(l),
                    None => self
                        .tables
                        .translate(self.fmt, self.mem, s.asid, va)
                        .ok()
                        .map(|t| {
                            let table = t.leaf_addr.as_u64() >> self.frame_shift;
                            let at = LeafAt {
                                addr: t.leaf_addr,
                                idx: t.leaf_idx,
                                size: t.size,
                                table,
                                gen_: self.gens.get(table as usize).copied().unwrap_or(0),
                            };
                            self.leaves
                                .insert(pfn, sid.0, va.as_u64(), at, self.frame_shift);
                            (at, t.leaf_raw, t.flags.contains(PteFlags::ACCESSED))
                        }),
                };
                let Some((at, raw, true)) = leaf else {
                    continue;
                };
                accessed = true;
                let raw = raw & !self.fmt.accessed_mask(at.idx, true);
                if self
                    .mem
                    .write_le(at.addr, self.fmt.entry_bytes(), raw)
                    .is_ok()
                {
                    let flush = Flush::new(va.align_down(at.size), at.size);
                    if self.invalidate {
                        self.tlb.invalidate_page(s.asid, flush);
                    } else {
                        flush.ignore();
                    }
                }
                continue;
            }
            let Ok(t) = self.tables.translate(self.fmt, self.mem, s.asid, va) else {
                continue;
            };
            if !t.flags.contains(PteFlags::ACCESSED) {
                continue;
            }
            accessed = true;
            if let Ok((_, flush)) = self.tables.update_status(
                self.fmt,
                self.mem,
                s.asid,
                va,
                PteFlags::empty(),
                PteFlags::ACCESSED,
            ) {
                if self.invalidate {
                    self.tlb.invalidate_page(s.asid, flush);
                } else {
                    flush.ignore();
                }
            }
        }
        accessed
    }
}

/// Builds a [`PteBits`] from the kernel's fields, borrowing them apart.
macro_rules! pte_bits {
    ($k:expr, $r:expr, $mem:expr, $tlb:expr) => {
        PteBits {
            fmt: &$k.fmt,
            tables: &mut $k.tables,
            spaces: &$k.spaces,
            rmap: &$r.rmap,
            frame_of_id: &$r.frame_of_id,
            mem: $mem,
            tlb: $tlb,
            invalidate: $r.invalidate,
            scanned: &mut $r.stats.pages_scanned,
            cleaned_dirty: &$r.cleaned_dirty,
            leaves: &mut $r.leaves,
            gens: $k.frames.table_gens(),
            frame_shift: $k.frames.frame_size().shift(),
        }
    };
}

impl Kernel {
    /// Demand-paging counters.
    #[must_use]
    pub fn paging_stats(&self) -> &PagingStats {
        &self.reclaim.stats
    }

    /// For display (the run page's stepper), never on the hot path: the
    /// pages the replacement policy may evict, in its own order (the next
    /// victim first: FIFO's queue, CLOCK's ring from the hand, linux's
    /// inactive list before its active one), each as the frame holding it
    /// and what the policy keeps about it. Empty without a policy (no swap).
    /// O(resident pages).
    #[must_use]
    pub fn policy_view(&self) -> Vec<(Pfn, crate::reclaim::Note)> {
        let r = &self.reclaim;
        let Some(p) = &r.policy else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        dispatch!(p, q => q.resident(&mut ids));
        ids.into_iter()
            .filter_map(|id| {
                let pfn = r.frame_of_id.get(id as usize)?.checked_sub(1)?;
                Some((Pfn::new(pfn), dispatch!(p, q => q.note(id))))
            })
            .collect()
    }

    /// For display: the (process, virtual page) pairs mapping data frame
    /// `pfn` (several after a fork shares it copy-on-write; none for a free
    /// frame or a page-table frame).
    #[must_use]
    pub fn frame_mappings(&self, pfn: Pfn) -> Vec<(Pid, VirtAddr)> {
        let Some(maps) = self.reclaim.rmap.get(pfn.as_u64() as usize) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &(sid, va) in maps {
            for p in self.procs.values().filter(|p| p.space == sid) {
                out.push((p.pid, VirtAddr::new(va)));
            }
        }
        out
    }

    /// The swap device, once one exists (what a checkpoint reads).
    #[must_use]
    pub fn swap_device(&self) -> Option<&SwapDevice> {
        self.reclaim.device_ref()
    }

    /// The swap device, mutably (a checkpoint's bookkeeping, a restore's pages).
    pub fn swap_device_mut(&mut self) -> Option<&mut SwapDevice> {
        self.reclaim.device_mut()
    }

    /// Writes the pages the swap device holds in host memory to its file
    /// (before a checkpoint, and at the end of a run, so a kept swap file is
    /// complete and an I/O error is reported rather than lost on drop).
    ///
    /// # Errors
    /// The file could not be written (the pages stay cached).
    ///
    /// Every page lent to a frame (`swap/loan.rs`) is given back first
    /// (memory's bytes stay as they are): the slots then hold their pages,
    /// for the file and for whoever reads them (checkpoints).
    pub fn flush_swap<M: PhysMemory + ?Sized>(&mut self, mem: &mut M) -> Result<(), KernelError> {
        mem.close_all_loans();
        match self.reclaim.swap.as_mut() {
            Some(dev) => give_back_loans(dev, mem),
            None => while mem.pop_loan_return().is_some() {},
        }
        self.reclaim.flush_swap()
    }

    /// The swap device's counters (zero until the first swap-out).
    #[must_use]
    pub fn swap_stats(&self) -> crate::swap::SwapStats {
        self.reclaim.swap_stats()
    }

    /// A new data page, reclaiming if memory is short: directly when nothing
    /// is free, and in the background (the page-out daemon) when free frames
    /// fall below the low watermark, up to the high one. `None`: out of memory.
    pub(super) fn alloc_data_page<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<Option<Pfn>, KernelError> {
        // The reclaim's TLB invalidations are made together as it ends.
        let mut batch = Shootdowns::new(tlb, std::mem::take(&mut self.reclaim.shootdowns));
        let r = self.alloc_data_page_in::<false, _, _>(mem, &mut batch);
        self.reclaim.shootdowns = batch.finish();
        r.map(|p| p.map(|(pfn, _)| pfn))
    }

    /// [`Kernel::alloc_data_page`] of a page about to be overwritten whole
    /// (a swap-in): see [`FrameTable::alloc_page_for_overwrite`]. Returns
    /// the frame and whether it was zeroed.
    ///
    /// [`FrameTable::alloc_page_for_overwrite`]: super::frames::FrameTable::alloc_page_for_overwrite
    fn alloc_data_page_for_overwrite<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<Option<(Pfn, bool)>, KernelError> {
        let mut batch = Shootdowns::new(tlb, std::mem::take(&mut self.reclaim.shootdowns));
        let r = self.alloc_data_page_in::<true, _, _>(mem, &mut batch);
        self.reclaim.shootdowns = batch.finish();
        r
    }

    /// [`Kernel::alloc_data_page`] with its invalidations gathered in `tlb`
    /// (`OVERWRITE`: as [`Kernel::alloc_data_page_for_overwrite`]; a
    /// constant, so that the plain allocation's code is as it was).
    fn alloc_data_page_in<const OVERWRITE: bool, M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<Option<(Pfn, bool)>, KernelError> {
        let per_page = 1u64 << self.frames.page_order();
        let found = loop {
            let found = if OVERWRITE {
                self.frames.alloc_page_for_overwrite(mem)
            } else {
                self.frames.alloc_page(mem).map(|pfn| (pfn, true))
            };
            if let Some(found) = found {
                break found;
            }
            self.reclaim.stats.direct_reclaims += 1;
            if !self.reclaim_one(mem, tlb)? {
                return Ok(None);
            }
        };
        // Mapping the page may need a new table at every level below the
        // root: keep that many frames free, or the map fails for want of one.
        self.make_room_in(mem, tlb, self.fmt.levels().len() as u64)?;
        if self.reclaim.enabled() && self.frames.free_frames() / per_page < self.reclaim.low {
            self.reclaim.stats.kswapd_runs += 1;
            while self.frames.free_frames() / per_page < self.reclaim.high {
                if !self.reclaim_one(mem, tlb)? {
                    break;
                }
                self.reclaim.stats.kswapd_reclaimed += 1;
            }
        }
        // The victims' pages wait in the swap device's cache, which writes
        // them to the file in batches sorted by slot.
        Ok(Some(found))
    }

    /// Reclaims until at least `frames` frames are free (or nothing more can
    /// be evicted): room for page tables and kernel objects.
    pub(super) fn make_room<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        frames: u64,
    ) -> Result<(), KernelError> {
        let mut batch = Shootdowns::new(tlb, std::mem::take(&mut self.reclaim.shootdowns));
        let r = self.make_room_in(mem, &mut batch, frames);
        self.reclaim.shootdowns = batch.finish();
        r
    }

    /// [`Kernel::make_room`] with its invalidations gathered in `tlb`.
    fn make_room_in<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        frames: u64,
    ) -> Result<(), KernelError> {
        while self.reclaim.enabled() && self.frames.free_frames() < frames {
            self.reclaim.stats.direct_reclaims += 1;
            if !self.reclaim_one(mem, tlb)? {
                break;
            }
        }
        Ok(())
    }

    /// A freshly mapped page (zeroed, or a copy-on-write copy) gets its
    /// identity, and joins the policy unless it is pinned.
    pub(super) fn page_born<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pfn: Pfn,
        evictable: bool,
    ) {
        if !self.reclaim.enabled() {
            return;
        }
        let r = &mut self.reclaim;
        let id = r.new_id();
        r.set_id(pfn, Some(id));
        r.set_frame(id, Some(pfn));
        if evictable {
            self.policy_insert(mem, tlb, id);
        }
    }

    fn policy_insert<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        id: u32,
    ) {
        let r = &mut self.reclaim;
        if r.in_policy[id as usize] {
            return;
        }
        r.in_policy[id as usize] = true;
        r.in_policy_count += 1;
        // The view of the tables only for a policy that looks at it.
        if let Some(p) = r.policy.as_mut()
            && !p.insert_without_bits(id)
        {
            let mut bits = pte_bits!(self, r, mem, tlb);
            p.on_insert(id, &mut bits);
        }
    }

    fn policy_remove(&mut self, id: u32) {
        let r = &mut self.reclaim;
        if let Some(flag) = r.in_policy.get_mut(id as usize)
            && *flag
        {
            *flag = false;
            r.in_policy_count -= 1;
            if let Some(p) = r.policy.as_mut() {
                p.on_remove(id);
            }
        }
    }

    /// Pins or unpins the resident page in `pfn` (mlock, munlock).
    pub(super) fn set_evictable<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pfn: Pfn,
        evictable: bool,
    ) {
        let Some(id) = self.reclaim.id_of(pfn) else {
            return;
        };
        if evictable {
            self.policy_insert(mem, tlb, id);
        } else {
            self.policy_remove(id);
        }
    }

    /// The data page in `pfn` was freed: its identity ends, or stays with
    /// its swap copy if swap entries still refer to it.
    pub(super) fn page_freed(&mut self, pfn: Pfn) {
        if !self.reclaim.enabled() {
            return;
        }
        let i = pfn.as_u64() as usize;
        // (Empty in any run without a dirty-page tracker: one test, not a
        // search of an empty tree, for each page an exit frees.)
        if !self.reclaim.cleaned_dirty.is_empty() {
            self.reclaim.cleaned_dirty.remove(&pfn.as_u64());
        }
        let id = self.reclaim.id_of(pfn);
        if let Some(list) = self.reclaim.rmap.get_mut(i) {
            list.clear();
        }
        let Some(id) = id else {
            return;
        };
        self.reclaim.set_id(pfn, None);
        self.policy_remove(id);
        let r = &mut self.reclaim;
        r.set_frame(id, None);
        match r.slot_of_frame.remove(&pfn.as_u64()) {
            Some(slot) => {
                let keep = r.slots.get_mut(&slot).map(|info| {
                    info.cached = None;
                    info.refs > 0
                });
                if keep != Some(true) {
                    r.slots.remove(&slot);
                    if let Some(dev) = r.swap.as_mut() {
                        dev.free(slot);
                    }
                    r.free_ids.push(id);
                }
            }
            None => r.free_ids.push(id),
        }
    }

    /// Evicts one page chosen by the policy. Returns false if nothing can be
    /// evicted (no policy, nothing resident, swap full).
    pub(super) fn reclaim_one<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<bool, KernelError> {
        if !self.reclaim.enabled() {
            return Ok(false);
        }
        let mut skipped = Vec::new();
        let result = loop {
            let r = &mut self.reclaim;
            if r.in_policy_count == 0 {
                break Ok(false);
            }
            let nobody = r.nobody;
            let victim = {
                r.leaves.scanned_clear = None;
                let mut bits = pte_bits!(self, r, mem, tlb);
                match r.policy.as_mut() {
                    Some(p) => p.victim(nobody, &mut bits),
                    None => break Ok(false),
                }
            };
            self.reclaim.in_policy[victim as usize] = false;
            self.reclaim.in_policy_count -= 1;
            let pfn = self.reclaim.frame_of(victim);
            let maps = pfn.map_or(0, |p| self.reclaim.maps(p).len() as u32);
            let Some(pfn) = pfn.filter(|&p| self.frames.meta(p).refs == maps && maps > 0) else {
                // Held by a fault in progress (or mapped by a shared object): put it back later.
                self.reclaim.stats.busy_skips += 1;
                skipped.push(victim);
                if skipped.len() > 64 {
                    break Ok(false);
                }
                continue;
            };
            break self.evict(mem, tlb, victim, pfn);
        };
        self.reclaim.leaves.scanned_clear = None;
        for id in skipped {
            self.policy_insert(mem, tlb, id);
        }
        result
    }

    fn evict<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        id: u32,
        pfn: Pfn,
    ) -> Result<bool, KernelError> {
        // CLOCK's victim as the scan read it, with no look at the tables
        // (nor the set-up of one); any other victim by the dirty check.
        let scanned = self.reclaim.leaves.scanned_clear.take();
        let (dirty, first_leaf) = match self.reclaim.victim_status(id, pfn, scanned) {
            Some(handed) => {
                debug_assert_eq!(
                    handed,
                    {
                        let r = &mut self.reclaim;
                        let bits = pte_bits!(self, r, mem, tlb);
                        bits.dirty_and_first_leaf(id)
                    },
                    "the scan's read of the victim's entry is not what it holds"
                );
                handed
            }
            None => {
                let r = &mut self.reclaim;
                let bits = pte_bits!(self, r, mem, tlb);
                bits.dirty_and_first_leaf(id)
            }
        };
        // The frame's link to its swap copy (the swap cache) ends with the
        // eviction: taken now, one probe of the map instead of a look here
        // and a removal at the end. Nothing in between looks at the map
        // when the link exists (a new slot is sought only without one), so
        // the map ends as it did; an eviction that fails puts it back.
        let existing = self.reclaim.slot_of_frame.remove(&pfn.as_u64());
        let out = self.evict_linked(mem, tlb, id, pfn, existing, dirty, first_leaf);
        if out.is_err()
            && let Some(slot) = existing
        {
            self.reclaim.slot_of_frame.insert(pfn.as_u64(), slot);
        }
        out
    }

    /// [`Kernel::evict`] of page `id` in frame `pfn` once its dirty check
    /// is made and its link to a swap slot (`existing`) taken.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn evict_linked<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        id: u32,
        pfn: Pfn,
        existing: Option<SwapSlot>,
        dirty: bool,
        first_leaf: Option<(usize, PhysAddr)>,
    ) -> Result<bool, KernelError> {
        let slot = match existing {
            Some(s) => s,
            None => match self.reclaim.alloc_slot()? {
                Some(s) => s,
                None => {
                    // Swap is full: this page stays.
                    self.policy_insert(mem, tlb, id);
                    return Ok(false);
                }
            },
        };
        if dirty || existing.is_none() {
            // Straight from the frame into the device's cache: the frame's
            // buffer itself when it is shared (or the page is all zero),
            // else one copy of the frame's bytes where memory holds them.
            let addr = self.frames.addr_of(pfn);
            let len = self.reclaim.page_bytes as u64;
            let dev = self.reclaim.device()?;
            match mem.share_page(addr, len) {
                Some(page) => {
                    dev.write_shared(slot, page)?;
                    // The cache took the frame's buffer, not one of its
                    // spares: one goes to memory for its next copy on
                    // first write.
                    if let Some(spare) = dev.take_spare_page() {
                        mem.give_spare_page(spare);
                    }
                }
                None => match mem.page_in_place(addr, len) {
                    Some(bytes) => dev.write(slot, bytes)?,
                    None => dev.write_with(slot, |buf| mem.read(addr, buf))?,
                },
            }
            // The slot is rewritten: a loan on the page ends, nothing to
            // give back (`swap/loan.rs`).
            mem.end_loan(addr);
            self.reclaim.stats.writebacks += 1;
        } else {
            // The slot keeps its page: a loan on the frame gives it back,
            // as do loans closed since (the slot may be one of them: swap
            // entries will refer to it).
            let back = mem.close_loan(self.frames.addr_of(pfn));
            if let Some(dev) = self.reclaim.swap.as_mut() {
                if let Some(back) = back {
                    dev.give_back(back);
                }
                give_back_loans(dev, mem);
            }
            self.reclaim.stats.clean_drops += 1;
        }
        let mut maps = self
            .reclaim
            .rmap
            .get_mut(pfn.as_u64() as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        for (i, &(sid, va)) in maps.iter().enumerate() {
            let va = VirtAddr::new(va);
            let asid = {
                let s = self.space(sid);
                s.asid
            };
            // Where the policy's scan found the leaf, if that table is
            // still the same one (see LeafCache): no walk from the root.
            // The first mapping's, as the dirty check just found it (the
            // cache and the tables are as they were then).
            let leaf = match first_leaf.filter(|_| i == 0) {
                Some(place) => {
                    debug_assert_eq!(
                        Some(place),
                        self.leaf_at(Some(pfn), sid, va).map(|a| (a.idx, a.addr)),
                        "the dirty check's leaf is not what a lookup gives"
                    );
                    Some(place)
                }
                None => self.leaf_at(Some(pfn), sid, va).map(|at| (at.idx, at.addr)),
            };
            let u = match leaf {
                Some((idx, addr)) => self.tables.unmap_at(
                    &self.fmt,
                    mem,
                    &mut self.frames.for_tables(),
                    asid,
                    va,
                    idx,
                    addr,
                )?,
                None => {
                    self.tables
                        .unmap(&self.fmt, mem, &mut self.frames.for_tables(), asid, va)?
                }
            };
            // A leaf whose accessed bit is clear was not filled into the
            // TLB since the policy cleared the bit and invalidated it (a
            // fill sets the bit first): nothing to search for. Radix tables
            // only, and only while clearing the bit invalidates.
            if self.reclaim.invalidate
                && !u.flags.contains(PteFlags::ACCESSED)
                && matches!(self.tables, PageTables::Radix(_))
            {
                tlb.invalidate_unfilled_page(asid, u.flush);
            } else {
                tlb.invalidate_page(asid, u.flush);
            }
            let s = self.space_mut(sid);
            s.resident -= 1;
            s.swapped.insert(va.as_u64(), slot);
            self.frames.put(pfn);
        }
        let n_maps = maps.len() as u32;
        let r = &mut self.reclaim;
        // The emptied list goes back to the frame: its next page's mapping
        // is recorded without an allocation.
        maps.clear();
        if let Some(list) = r.rmap.get_mut(pfn.as_u64() as usize) {
            *list = maps;
        }
        r.set_id(pfn, None);
        r.set_frame(id, None);
        // (The set is empty unless a dirty-page tracker runs: no call.)
        if !r.cleaned_dirty.is_empty() {
            r.cleaned_dirty.remove(&pfn.as_u64());
        }
        // One lookup, not a look then an insert. The `reserve` is the one
        // `insert` makes first, which may grow or rehash the map even when
        // the slot is in it: kept, so the map's layout, and the order the
        // checkpoint lists it in, stay as they were.
        r.slots.reserve(1);
        match r.slots.get_mut(&slot) {
            Some(info) => {
                *info = SlotInfo {
                    refs: info.refs + n_maps,
                    id,
                    cached: None,
                };
            }
            None => {
                r.slots.insert(
                    slot,
                    SlotInfo {
                        refs: n_maps,
                        id,
                        cached: None,
                    },
                );
            }
        }
        r.evicted_at[id as usize] = r.evictions;
        r.evictions += 1;
        r.stats.swap_outs += 1;
        Ok(true)
    }

    /// Where the leaf entry of `va` in space `sid` is, if the reclaimer
    /// remembers it and the table holding it was neither freed nor reused
    /// since (see `LeafCache`): radix tables only.
    pub(super) fn known_leaf(&self, sid: SpaceId, va: VirtAddr) -> Option<KnownLeaf> {
        self.leaf_at(None, sid, va).map(|at| KnownLeaf {
            at,
            sid: sid.0,
            va: va.as_u64(),
            clears: self.reclaim.leaves.clears,
        })
    }

    /// What [`Kernel::known_leaf`] now says of `va` in space `sid`, with
    /// no lookup when `earlier` (an answer found before) still holds: the
    /// same page, the cache's map not emptied since, and the table holding
    /// the entry still the one it was found in. Its map's entry for the
    /// page cannot have changed meanwhile: only the policy's scan adds
    /// entries, for pages mapped in a frame, and this page was not.
    pub(super) fn still_known(
        &self,
        earlier: Option<KnownLeaf>,
        sid: SpaceId,
        va: VirtAddr,
    ) -> Option<KnownLeaf> {
        let known = match earlier {
            Some(k)
                if k.sid == sid.0
                    && k.va == va.as_u64()
                    && k.clears == self.reclaim.leaves.clears =>
            {
                let gens = self.frames.table_gens();
                (gens.get(k.at.table as usize).copied().unwrap_or(0) == k.at.gen_).then_some(k)
            }
            _ => self.known_leaf(sid, va),
        };
        debug_assert_eq!(
            known.map(KnownLeaf::place),
            self.known_leaf(sid, va).map(KnownLeaf::place),
            "an earlier leaf answer kept that a lookup would not give"
        );
        known
    }

    /// [`Kernel::known_leaf`], all of it, looked up by frame first when the
    /// page's frame `pfn` is known.
    fn leaf_at(&self, pfn: Option<Pfn>, sid: SpaceId, va: VirtAddr) -> Option<LeafAt> {
        self.reclaim.leaves.get(
            pfn.map(Pfn::as_u64),
            sid.0,
            va.as_u64(),
            self.frames.table_gens(),
        )
    }

    /// The page just mapped at `va` in space `sid`, in frame `pfn`, has its
    /// leaf where `known` (what [`Kernel::known_leaf`] said before the
    /// mapping, which moves no table) is: the frame's entry of the leaf cache.
    pub(super) fn leaf_moved_to(&mut self, pfn: Pfn, known: KnownLeaf) {
        let shift = self.frames.frame_size().shift();
        self.reclaim
            .leaves
            .note_frame(pfn.as_u64(), known.sid, known.va, known.at, shift);
    }

    /// The remembered leaf entry of `va` in space `sid` if it is empty:
    /// the page is then not mapped, as a walk from the root would find (it
    /// reaches the same table, which is still linked where it was: a radix
    /// table is unlinked only when it is freed). `None` when nothing is
    /// remembered, or the entry is not empty.
    pub(super) fn known_unmapped<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        sid: SpaceId,
        va: VirtAddr,
    ) -> Option<KnownLeaf> {
        let known = self.known_leaf(sid, va)?;
        let (idx, addr) = known.place();
        mem.read_le(addr, self.fmt.entry_bytes())
            .is_ok_and(|raw| self.fmt.decode(idx, raw) == Entry::Invalid)
            .then_some(known)
    }

    /// The not-present page at `page` is in swap (its entry, taken out of
    /// its space's `swapped` by the caller, named `slot`): brings it
    /// back (or finds it in the swap cache). Returns the frame, whether it
    /// was read from the file, and how many other swap entries still refer
    /// to its copy (what [`Kernel::swap_sharers`] then says, without its
    /// two lookups); `None` if no memory could be had.
    pub(super) fn swap_in<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        page: VirtAddr,
        slot: SwapSlot,
    ) -> Result<Option<(Pfn, bool, u32)>, KernelError> {
        let Some(info) = self.reclaim.slots.get(&slot).copied() else {
            return Err(KernelError::FreeSlot { page });
        };
        let (pfn, major) = match info.cached {
            Some(pfn) => {
                self.reclaim.stats.swap_cache_hits += 1;
                (pfn, false)
            }
            None => {
                // Not zeroed when memory allows: the page is overwritten
                // whole below (the loan's install releases the old bytes,
                // any other way zeroes first).
                let Some((pfn, zeroed)) = self.alloc_data_page_for_overwrite(mem, tlb)? else {
                    return Ok(None);
                };
                // The slot may have been used by a reclaim just now? No: it is
                // referenced (refs > 0), so it was neither freed nor reused.
                let addr = self.frames.addr_of(pfn);
                let len = self.reclaim.page_bytes as u64;
                // A cached page is shared with the frame, not copied (the
                // frame copies it before its first write: `shared_page.rs`),
                // or, when no other swap entry refers to the slot (this was
                // the last), lent to it: written in place (`swap/loan.rs`).
                let dev = self.reclaim.device()?;
                give_back_loans(dev, mem);
                match (info.refs == 1 && mem.takes_loans())
                    .then(|| dev.lend(slot))
                    .flatten()
                {
                    // (`write_lent_over` of a zeroed frame finds nothing to
                    // release: the same as `write_lent`. One call, so the
                    // install is in line once.)
                    Some(loan) => {
                        if let Some(back) = mem
                            .write_lent_over(addr, len, loan)
                            .map_err(crate::swap::PageIoError::Page)?
                        {
                            dev.give_back(back);
                        }
                    }
                    None => {
                        if !zeroed {
                            let zeroed = mem.zero(addr, len);
                            debug_assert!(zeroed.is_ok(), "frames lie inside physical memory");
                        }
                        dev.read_shared(slot, |page| match page {
                            PageIn::Shared(p) => mem.write_shared(addr, p),
                            PageIn::Bytes(b) => mem.write(addr, b),
                        })?;
                    }
                }
                let r = &mut self.reclaim;
                r.set_id(pfn, Some(info.id));
                r.set_frame(info.id, Some(pfn));
                r.slot_of_frame.insert(pfn.as_u64(), slot);
                if r.evictions - r.evicted_at[info.id as usize] <= r.frames {
                    r.stats.refaults += 1;
                }
                r.stats.major_faults += 1;
                r.stats.swap_ins += 1;
                (pfn, true)
            }
        };
        // (The caller took the page's swap entry out of `swapped` already.)
        // The entry's reference moves from the slot to the frame (the caller maps it).
        // The frame and the slot are linked both ways (the swap cache), so
        // the slot's count is what `swap_sharers(pfn)` finds.
        // One lookup of the slot for both: a page read in is cached by it.
        let sharers = match self.reclaim.slots.get_mut(&slot) {
            Some(i) => {
                if major {
                    i.cached = Some(pfn);
                }
                i.refs = i.refs.saturating_sub(1);
                i.refs
            }
            None => 0,
        };
        debug_assert_eq!(sharers, self.swap_sharers(pfn));
        Ok(Some((pfn, major, sharers)))
    }

    /// Whether other swap entries still refer to the copy in `pfn`'s slot.
    pub(super) fn swap_sharers(&self, pfn: Pfn) -> u32 {
        self.reclaim
            .slot_of_frame
            .get(&pfn.as_u64())
            .and_then(|s| self.reclaim.slots.get(s))
            .map_or(0, |i| i.refs)
    }

    /// The page just swapped in joins the policy (after it is mapped).
    pub(super) fn page_back<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        pfn: Pfn,
        evictable: bool,
    ) {
        if let Some(id) = self.reclaim.id_of(pfn)
            && evictable
        {
            self.policy_insert(mem, tlb, id);
        }
    }

    /// The reference count at which [`Kernel::timer`] next does something,
    /// or `u64::MAX` if the policy has no periodic work. The run stops a
    /// span of references exactly there, so a tick lands on the same
    /// reference however the run is cut (time slices, checkpoints, replay).
    #[must_use]
    pub fn next_tick(&self) -> u64 {
        let r = &self.reclaim;
        match r.policy.as_ref().and_then(KernelPolicy::tick_interval) {
            Some(_) => r.next_tick,
            None => u64::MAX,
        }
    }

    /// The periodic timer: runs the policy's tick (aging) when `references` says it is due.
    pub fn timer<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        references: u64,
    ) {
        let r = &mut self.reclaim;
        if references < r.next_tick {
            return;
        }
        let every = r
            .policy
            .as_ref()
            .and_then(KernelPolicy::tick_interval)
            .map_or(r.tick, NonZeroU64::get);
        r.next_tick = references + every;
        let mut bits = pte_bits!(self, r, mem, tlb);
        if let Some(p) = r.policy.as_mut() {
            p.on_tick(&mut bits);
        }
    }
}

/// Hands the swap device the old bytes of loans memory closed since (a
/// store past a loan's bound, a lent chunk released): a slot still lent
/// under that loan holds them again (`swap/loan.rs`).
#[inline]
fn give_back_loans<M: PhysMemory + ?Sized>(dev: &mut SwapDevice, mem: &mut M) {
    while let Some(back) = mem.pop_loan_return() {
        dev.give_back(back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{KernelConfig, Layout, MmapFlags, Prot};
    use crate::machine::{self, KernelFaults};
    use crate::mmu::{AccessKind, Mmu, Privilege, TlbConfig};
    use crate::phys::PhysMem;

    const PAGE: u64 = 4096;

    /// Records the invalidations a scan makes.
    #[derive(Default, Debug, PartialEq, Eq)]
    struct Log(Vec<(u16, u64, u64, bool)>);

    impl TlbControl for Log {
        fn invalidate_page(&mut self, asid: Asid, flush: Flush) {
            self.0.push((
                asid.as_u16(),
                flush.page().as_u64(),
                flush.size().bytes(),
                false,
            ));
        }
        fn invalidate_unfilled_page(&mut self, asid: Asid, flush: Flush) {
            self.0.push((
                asid.as_u16(),
                flush.page().as_u64(),
                flush.size().bytes(),
                true,
            ));
        }
        fn invalidate_asid(&mut self, asid: Asid) {
            self.0.push((asid.as_u16(), 0, 0, false));
        }
    }

    /// The raw leaf entries of page `id`'s mappings, with their addresses.
    fn leaves_of(k: &Kernel, mem: &PhysMem, id: u32) -> Vec<(PhysAddr, u64)> {
        let Some(pfn) = k.reclaim.frame_of(id) else {
            return Vec::new();
        };
        k.reclaim
            .maps(pfn)
            .iter()
            .filter_map(|&(sid, va)| {
                let asid = k.spaces[sid.0 as usize].as_ref()?.asid;
                let t = k
                    .tables
                    .translate(&k.fmt, mem, asid, VirtAddr::new(va))
                    .ok()?;
                Some((t.leaf_addr, mem.read_le(t.leaf_addr, 8).expect("entry")))
            })
            .collect()
    }

    /// Runs the scan's plain path and its general path on every resident
    /// page, from the same entries, and checks they answer alike: the
    /// accessed bit, the entries left, the invalidations; and the dirty
    /// check's plain path against its general one. Returns how many pages
    /// the plain paths answered.
    fn both_paths_on_every_page(k: &mut Kernel, mem: &mut PhysMem) -> (usize, usize) {
        let (mut scans, mut checks) = (0, 0);
        for id in 0..k.reclaim.frame_of_id.len() as u32 {
            if k.reclaim.frame_of(id).is_none() {
                continue;
            }
            let before = leaves_of(k, mem, id);
            let mut fast_log = Log::default();
            let fast = {
                let r = &mut k.reclaim;
                let mut bits = pte_bits!(k, r, mem, &mut fast_log);
                if let Some(status) = bits.status_plain(id) {
                    assert_eq!(status, bits.flags_and_first_leaf_general(id), "page {id}");
                    checks += 1;
                }
                bits.test_and_clear_plain(id)
            };
            let after_fast = leaves_of(k, mem, id);
            let Some(fast) = fast else {
                assert!(
                    fast_log.0.is_empty(),
                    "page {id}: declined, but invalidated"
                );
                assert_eq!(after_fast, before, "page {id}: declined, but wrote");
                continue;
            };
            for &(addr, raw) in &before {
                mem.write_le(addr, 8, raw).expect("entry");
            }
            let mut general_log = Log::default();
            let general = {
                let r = &mut k.reclaim;
                let mut bits = pte_bits!(k, r, mem, &mut general_log);
                bits.test_and_clear_general(id)
            };
            assert_eq!(fast, general, "page {id}: accessed");
            if !fast {
                // What the scan hands the victim's dirty check is what the
                // entry holds.
                let scanned = k.reclaim.leaves.scanned_clear.take();
                assert_eq!(
                    scanned.map(|s| s.id),
                    Some(id),
                    "page {id}: not handed over"
                );
                let pfn = k.reclaim.frame_of(id).expect("resident");
                let handed = k.reclaim.victim_status(id, pfn, scanned);
                let r = &mut k.reclaim;
                let bits = pte_bits!(k, r, mem, &mut general_log);
                assert_eq!(
                    handed,
                    Some({
                        let (f, first) = bits.flags_and_first_leaf_general(id);
                        (f.contains(PteFlags::DIRTY) || bits.kept_dirty(id), first)
                    }),
                    "page {id}: handed over"
                );
            }
            assert_eq!(after_fast, leaves_of(k, mem, id), "page {id}: entries");
            assert_eq!(fast_log, general_log, "page {id}: invalidations");
            scans += 1;
        }
        (scans, checks)
    }

    /// A machine that swaps: 48 frames, 512 swap slots, one process with
    /// 96 pages mapped read-write at the returned address (twice the
    /// frames: touching them at random evicts), the MMU on its tables.
    fn swapping_machine(fmt: Format) -> (PhysMem, Kernel, Mmu, Pid, u64) {
        let frames = 48;
        let mut mem = PhysMem::new(frames * PAGE).expect("memory");
        let cfg = KernelConfig {
            swap_slots: Some(512),
            ..KernelConfig::default()
        };
        let mut k = Kernel::new(fmt.clone(), frames, PageSize::SIZE_4K, cfg).expect("kernel");
        let mut mmu =
            Mmu::new(fmt, &TlbConfig::preset("x86-64").expect("preset"), true).expect("mmu");
        mmu.set_table_base(k.table_base());
        let pid = k.spawn(&mut mem, Layout::Standard).expect("spawn");
        let base = k
            .mmap(
                &mut mem,
                &mut mmu,
                pid,
                None,
                96 * PAGE,
                Prot::RW,
                MmapFlags::default(),
            )
            .expect("mmap")
            .as_u64();
        (mem, k, mmu, pid, base)
    }

    /// A user access of `kind` at `va` by `pid` (its context set first),
    /// faults handled by the kernel; it must succeed.
    fn user_access(
        k: &mut Kernel,
        mem: &mut PhysMem,
        mmu: &mut Mmu,
        pid: Pid,
        va: u64,
        kind: AccessKind,
    ) {
        let (root, asid) = k.context(pid).expect("context");
        mmu.set_context(root, asid);
        let mut faults = KernelFaults::new(k, pid);
        machine::access(
            mmu,
            mem,
            &mut faults,
            VirtAddr::new(va),
            kind,
            Privilege::User,
        )
        .expect("access")
        .expect("mapped");
    }

    /// The scan's and the dirty check's plain paths (one mapping, the leaf
    /// cache's frame entry, a plain x86-64 leaf) answer as the general
    /// paths do, on pages that were swapped out and back, written and
    /// read, with their accessed bits set and then cleared, in 4- and
    /// 5-level x86-64; pages a fork shares (two mappings) go the general
    /// way.
    #[test]
    fn scan_fast_path_answers_as_the_general_one() {
        for fmt in [Format::x86_64(), Format::x86_64_5level()] {
            let (mut mem, mut k, mut mmu, parent, base) = swapping_machine(fmt);
            let mut pids = vec![parent];
            let mut x = 12_345u64;
            for step in 0..600 {
                if step == 300 {
                    pids.push(k.fork(&mut mem, &mut mmu, parent).expect("fork"));
                }
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let pid = pids[(x >> 60) as usize % pids.len()];
                let va = base + (x >> 33) % 96 * PAGE;
                let kind = if x >> 20 & 3 == 0 {
                    AccessKind::Write
                } else {
                    AccessKind::Read
                };
                user_access(&mut k, &mut mem, &mut mmu, pid, va, kind);
            }
            assert!(k.paging_stats().swap_outs > 100, "{:?}", k.paging_stats());
            // Accessed bits as the run left them, then all clear.
            let (scans, checks) = both_paths_on_every_page(&mut k, &mut mem);
            assert!(scans > 20 && checks > 20, "{scans} scans, {checks} checks");
            let (scans, _) = both_paths_on_every_page(&mut k, &mut mem);
            assert!(scans > 20, "{scans} scans");
            k.check_invariants(&mem).expect("invariants");
        }
    }

    /// An eviction that fails after taking the frame's link to its swap
    /// slot (here at the write of a dirty page, the swap device made anew
    /// where its file cannot be made) puts the link back: the frame still finds its slot, and the
    /// map holds the same links as before.
    #[test]
    fn a_failed_eviction_keeps_the_frames_swap_link() {
        let (mut mem, mut k, mut mmu, pid, base) = swapping_machine(Format::x86_64());
        let mut x = 12_345u64;
        for _ in 0..600 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let va = base + (x >> 33) % 96 * PAGE;
            user_access(&mut k, &mut mem, &mut mmu, pid, va, AccessKind::Read);
        }
        // A resident page linked to its slot (read back in, not written).
        let (&pfn, &slot) = k
            .reclaim
            .slot_of_frame
            .iter()
            .next()
            .expect("a page in the swap cache");
        let pfn = Pfn::new(pfn);
        let id = k.reclaim.id_of(pfn).expect("resident");
        let (sid, va) = k.reclaim.maps(pfn)[0];
        // Dirty now (as a store through the TLB would leave it): its
        // eviction must write it to the device.
        let asid = k.space(sid).asid;
        let leaf = k
            .tables
            .translate(&k.fmt, &mem, asid, VirtAddr::new(va))
            .expect("mapped")
            .leaf_addr;
        let raw = mem.read_le(leaf, 8).expect("entry");
        mem.write_le(leaf, 8, raw | k.fmt.dirty_mask())
            .expect("entry");
        let links = |k: &Kernel| {
            let mut v: Vec<(u64, SwapSlot)> = k
                .reclaim
                .slot_of_frame
                .iter()
                .map(|(&p, &s)| (p, s))
                .collect();
            v.sort_unstable();
            v
        };
        let before = links(&k);
        // The device made anew where no file can be made: the write fails.
        let dev = k.reclaim.swap.take();
        let path = k
            .reclaim
            .swap_path
            .replace(std::env::temp_dir().join("vmsim-no-such-dir/swap"));
        let got = k.evict(&mut mem, &mut mmu, id, pfn);
        assert!(matches!(got, Err(KernelError::Swap(_))), "{got:?}");
        k.reclaim.swap = dev;
        k.reclaim.swap_path = path;
        assert_eq!(k.reclaim.slot_of_frame.get(&pfn.as_u64()), Some(&slot));
        assert_eq!(links(&k), before);
    }

    /// A fault on a page in swap takes the page's swap entry out of its
    /// space's map before bringing the page back (one probe of the map);
    /// when the page cannot be brought back (here the swap device, made
    /// anew where its file cannot be, fails), the entry is put back: the
    /// page is still in swap in the same slot, whose references are
    /// unchanged.
    #[test]
    fn a_failed_swap_in_keeps_the_swap_entry() {
        let (mut mem, mut k, mut mmu, pid, base) = swapping_machine(Format::x86_64());
        let mut x = 12_345u64;
        for _ in 0..600 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let va = base + (x >> 33) % 96 * PAGE;
            user_access(&mut k, &mut mem, &mut mmu, pid, va, AccessKind::Write);
        }
        let sid = k.process(pid).expect("process").space;
        // A page in swap whose copy is in no frame: bringing it back needs
        // the device.
        let (va, slot) = k
            .space(sid)
            .swapped
            .sorted()
            .into_iter()
            .find(|(_, slot)| {
                k.reclaim
                    .slots
                    .get(slot)
                    .is_some_and(|i| i.cached.is_none())
            })
            .expect("a page in swap alone");
        let refs = k.reclaim.slots[&slot].refs;
        let dev = k.reclaim.swap.take();
        let path = k
            .reclaim
            .swap_path
            .replace(std::env::temp_dir().join("vmsim-no-such-dir/swap"));
        let (root, asid) = k.context(pid).expect("context");
        mmu.set_context(root, asid);
        let got = {
            let mut faults = KernelFaults::new(&mut k, pid);
            machine::access(
                &mut mmu,
                &mut mem,
                &mut faults,
                VirtAddr::new(va),
                AccessKind::Read,
                Privilege::User,
            )
        };
        assert!(got.is_err(), "{got:?}");
        k.reclaim.swap = dev;
        k.reclaim.swap_path = path;
        assert_eq!(k.space(sid).swapped.get(&va), Some(&slot));
        assert_eq!(k.reclaim.slots[&slot].refs, refs);
    }

    /// The leaf cache's frame entries (32 bytes, the table derived from
    /// the entry's address, no `Option`) and its map's values (`MapLeaf`,
    /// 32-byte buckets) answer as the entries they replaced (an
    /// `Option<(space, page, LeafAt)>` per frame, whole `LeafAt`s in the
    /// map) did: 20,000 notes, inserts and look-ups (by frame and by the
    /// map alone) over 64 frames, with tables reused (their generation
    /// counts bumped), keys that differ only in the space or the page,
    /// frames never noted, and the empty entry's own filler fields asked
    /// for. A level index that does not fit a byte is declined (the frame
    /// entry emptied, the map forgotten).
    #[test]
    fn frame_entries_answer_as_the_tagged_leaves() {
        let shift = 12u32;
        let key = |a: &LeafAt| (a.addr, a.idx, a.size, a.table, a.gen_);
        let mut cache = LeafCache::default();
        let mut model: Vec<Option<(u32, u64, LeafAt)>> = vec![None; 64];
        let mut model_map: std::collections::HashMap<(u32, u64), LeafAt> =
            std::collections::HashMap::new();
        let mut gens = vec![0u64; 32];
        let mut x = 99u64;
        // A fresh draw for each choice (the top bits of the next state).
        let mut draw = |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % n
        };
        let (mut frame_hits, mut map_hits) = (0, 0);
        for _ in 0..20_000 {
            let op = draw(8);
            let pfn = draw(64);
            let sid = draw(3) as u32;
            let va = draw(8) << 12;
            match op {
                0..=2 => {
                    let table = draw(32);
                    let at = LeafAt {
                        addr: PhysAddr::new_unchecked((table << shift) + draw(512) * 8),
                        idx: draw(5) as usize,
                        size: PageSize::SIZE_4K,
                        table,
                        gen_: gens[table as usize],
                    };
                    if draw(2) == 0 {
                        cache.note_frame(pfn, sid, va, at, shift);
                    } else {
                        cache.insert(pfn, sid, va, at, shift);
                        model_map.insert((sid, va), at);
                    }
                    model[pfn as usize] = Some((sid, va, at));
                }
                3 => gens[draw(32) as usize] += 1,
                _ => {
                    let by_map = model_map
                        .get(&(sid, va))
                        .filter(|a| LeafCache::valid(a, &gens))
                        .map(key);
                    let by_frame = model[pfn as usize]
                        .filter(|&(s, v, a)| s == sid && v == va && LeafCache::valid(&a, &gens))
                        .map(|(_, _, a)| key(&a));
                    let got = cache.get(Some(pfn), sid, va, &gens).map(|a| key(&a));
                    assert_eq!(
                        got,
                        by_frame.or(by_map),
                        "frame {pfn} space {sid} page {va:#x}"
                    );
                    let got = cache.get(None, sid, va, &gens).map(|a| key(&a));
                    assert_eq!(got, by_map, "space {sid} page {va:#x}");
                    frame_hits += usize::from(by_frame.is_some());
                    map_hits += usize::from(by_map.is_some());
                }
            }
        }
        assert!(
            frame_hits > 100 && map_hits > 500,
            "{frame_hits} by frame, {map_hits} by map"
        );
        // The empty entry's fillers, asked of frames never noted and past the end.
        let e = FrameLeaf::EMPTY;
        cache.by_frame.resize(70, FrameLeaf::EMPTY);
        for pfn in [64, 69, 1_000] {
            assert!(cache.get(Some(pfn), e.sid, e.va, &gens).is_none());
        }
        // A level index of more than a byte: not kept by frame.
        let at = LeafAt {
            addr: PhysAddr::new_unchecked(8),
            idx: 300,
            size: PageSize::SIZE_4K,
            table: 0,
            gen_: gens[0],
        };
        let clears = cache.clears;
        cache.insert(5, 1, 0x5000, at, shift);
        assert!(cache.get(Some(5), 1, 0x5000, &gens).is_none());
        assert_eq!(cache.clears, clears + 1);
        assert!(
            model_map
                .keys()
                .all(|&(s, v)| cache.get(None, s, v, &gens).is_none())
        );
        assert_eq!(size_of::<FrameLeaf>(), 32);
        assert_eq!(size_of::<MapLeaf>(), 20);
        assert_eq!(cache.at.bucket_bytes(), 32);
        assert_eq!(align_of::<FrameLeaf>(), 32);
    }
}
