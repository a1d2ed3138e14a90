//! The slab allocator: caches of objects of one exact size, carved out of
//! contiguous slabs that come from a frame allocator (the buddy allocator).
//!
//! A [`SlabCache`] serves objects of one type (a page-table page, a process
//! structure, a VMA). Each slab is a block of `2^order` frames from the
//! frame allocator, cut into as many objects as fit; the bytes left at the
//! end of a slab (the *tail*) are the only space lost to the slab layout, not
//! a page-rounding per object as a page allocator alone would lose. The
//! order is chosen as Linux's SLUB does ([`calculate_order`]): the smallest
//! order, starting from one holding a minimum number of objects, whose tail
//! wastes at most 1/16 of the slab (then 1/8, 1/4, 1/2).
//!
//! Slabs sit on one of three lists: *partial* (some objects free; allocation
//! takes from here first), *full*, and *empty*. When a free empties a slab
//! and more than [`SlabParams::keep_empty`] slabs are empty, the slab goes
//! back to the frame allocator; [`SlabCache::shrink`] returns every empty slab.
//!
//! Objects are named by their physical address ([`ObjHandle`]). Inside a
//! slab, free objects are handed out last-freed first (a LIFO stack, like
//! SLUB's per-slab freelist), starting from the lowest address. The
//! free-object bookkeeping lives in host memory: this module never reads or
//! writes simulated memory (the caller zeroes objects as the kernel's
//! `__GFP_ZERO` would). Freeing an address that is not a live object of the
//! cache is reported as an error, not a panic.
//!
//! [`Slab`] is the registry of caches the kernel creates at boot;
//! [`Slab::with_kernel_caches`] makes the three the simulated kernel uses.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{PageSize, Pfn, PhysAddr};

use super::FrameAllocator;
use super::buddy::{DEFAULT_MAX_ORDER, order_for_frames};
use super::index_list::IndexLists;

/// SLUB's `MAX_OBJS_PER_PAGE`: the object counter of a slab is 15 bits.
pub const MAX_OBJS_PER_SLAB: u64 = 32767;

/// The course's `task_struct`, "1.7 KiB": 1.7 * 1024 rounded up.
pub const TASK_STRUCT_BYTES: u64 = 1741;

/// A `vm_area_struct` of a 64-bit Linux kernel, about 200 bytes.
pub const VMA_BYTES: u64 = 200;

/// How slab orders are chosen and empty slabs kept; defaults are Linux's
/// SLUB defaults on a one-CPU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabParams {
    /// CPUs of the simulated machine; with `min_objects == 0` the minimum
    /// objects per slab is `4 * (fls(cpus) + 1)` as in SLUB.
    pub cpus: u32,
    /// `slub_min_objects`; 0 derives it from `cpus`.
    pub min_objects: u32,
    /// `slub_min_order`.
    pub min_order: u32,
    /// `slub_max_order` (`PAGE_ALLOC_COSTLY_ORDER`, 3).
    pub max_order: u32,
    /// The largest order the frame allocator serves (`MAX_PAGE_ORDER`).
    pub max_page_order: u32,
    /// Empty slabs a cache keeps instead of returning them.
    pub keep_empty: u32,
}

impl Default for SlabParams {
    fn default() -> Self {
        Self {
            cpus: 1,
            min_objects: 0,
            min_order: 0,
            max_order: 3,
            max_page_order: DEFAULT_MAX_ORDER,
            keep_empty: 1,
        }
    }
}

/// A slab cache cannot be created, or an object cannot be allocated or freed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlabError {
    /// An object size of zero, or too large for any slab.
    #[error(
        "slab cache {name:?}: object size {size} does not fit a slab of at most order {max_order}"
    )]
    BadSize {
        /// The cache.
        name: String,
        /// The object size asked for.
        size: u64,
        /// The largest slab order allowed.
        max_order: u32,
    },
    /// An alignment that is not a power of two.
    #[error("slab cache {name:?}: alignment {align} is not a power of two")]
    BadAlign {
        /// The cache.
        name: String,
        /// The alignment asked for.
        align: u64,
    },
    /// A second cache with the same name.
    #[error("slab cache {0:?} already exists")]
    Duplicate(String),
    /// A cache id that this registry did not make.
    #[error("no slab cache with id {0}")]
    UnknownCache(u32),
    /// The frame allocator's frames are not the size the cache was made for.
    #[error("slab cache {name:?} was made for {expected} frames, the allocator has {got}")]
    FrameSize {
        /// The cache.
        name: String,
        /// Its frame size.
        expected: PageSize,
        /// The allocator's.
        got: PageSize,
    },
    /// No free block of the slab order is left in the frame allocator.
    #[error("slab cache {name:?}: out of memory (no free block of order {order})")]
    OutOfMemory {
        /// The cache.
        name: String,
        /// The slab order.
        order: u32,
    },
    /// The address is not a live object of the cache (double free, or never allocated here).
    #[error("slab cache {name:?}: {addr:#x} is not an allocated object")]
    NotAllocated {
        /// The cache.
        name: String,
        /// The address freed.
        addr: u64,
    },
}

/// An object handed out by a [`SlabCache`]: its physical address.
///
/// Guarantee: made only by a cache, so it names the first byte of an object
/// that was live when it was made.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ObjHandle(PhysAddr);

impl ObjHandle {
    /// Test hook: a handle at `addr` (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge(addr: PhysAddr) -> Self {
        Self(addr)
    }

    /// The object's physical address.
    #[must_use]
    pub fn addr(self) -> PhysAddr {
        self.0
    }
}

fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// `get_order`: the smallest order whose block of `frame` bytes holds `bytes`.
fn get_order(bytes: u64, frame: u64) -> u32 {
    order_for_frames(bytes.div_ceil(frame).max(1)).unwrap_or(u32::MAX)
}

fn order_objects(order: u32, size: u64, frame: u64) -> u64 {
    (frame << order) / size
}

/// SLUB's `calc_slab_order`: the smallest order in `min..=max` whose tail is
/// at most `1/fract` of the slab, or `max + 1`.
fn calc_slab_order(size: u64, frame: u64, min: u32, max: u32, fract: u64) -> u32 {
    (min..=max)
        .find(|&o| {
            let slab = frame << o;
            slab % size <= slab / fract
        })
        .unwrap_or(max + 1)
}

/// SLUB's `calculate_order` (mm/slub.c) for objects of `size` bytes (already
/// aligned) in frames of `frame` bytes: the slab order, or `None` when even a
/// single object needs more than `params.max_page_order`.
#[must_use]
pub fn calculate_order(size: u64, frame: u64, params: &SlabParams) -> Option<u32> {
    let widest = params
        .max_order
        .max(params.max_page_order)
        .max(params.min_order);
    if size == 0 || !frame.is_power_of_two() || frame.trailing_zeros() + widest > 62 {
        return None;
    }
    let mut min_objects = u64::from(params.min_objects);
    if min_objects == 0 {
        min_objects = 4 * u64::from(fls(params.cpus.max(1)) + 1);
    }
    let max_objects = order_objects(params.max_order, size, frame).max(1);
    let min_objects = min_objects.min(max_objects);
    let min_order = params
        .min_order
        .max(get_order(min_objects.saturating_mul(size), frame));
    if min_order <= widest && order_objects(min_order, size, frame) > MAX_OBJS_PER_SLAB {
        return get_order(size * MAX_OBJS_PER_SLAB, frame).checked_sub(1);
    }
    for fract in [16, 8, 4, 2] {
        let order = calc_slab_order(size, frame, min_order, params.max_order, fract);
        if order <= params.max_order {
            return Some(order);
        }
    }
    let order = get_order(size, frame);
    (order <= params.max_page_order).then_some(order)
}

const PARTIAL: usize = 0;
const FULL: usize = 1;
const EMPTY: usize = 2;
const SPARE: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SlabRecord {
    /// First frame of the slab.
    base: u64,
    in_use: u32,
    /// Which list the record is on.
    list: usize,
    /// Free object indices; the last is handed out next.
    free: Vec<u32>,
    /// One bit per object: live.
    live: Vec<u64>,
}

/// Counters of one cache, as `/proc/slabinfo` shows them plus where the
/// bytes taken from the frame allocator go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabStats {
    /// The cache's name.
    pub name: String,
    /// The object size asked for.
    pub object_size: u64,
    /// The size of a slot (object size rounded up to the alignment).
    pub slot_size: u64,
    /// Slots per slab.
    pub objects_per_slab: u64,
    /// Frames per slab, as an order.
    pub slab_order: u32,
    /// Bytes per slab.
    pub slab_bytes: u64,
    /// Slabs held (partial + full + empty).
    pub slabs: u64,
    /// Slabs with some objects in use and some free.
    pub partial_slabs: u64,
    /// Slabs with every object in use.
    pub full_slabs: u64,
    /// Slabs with no object in use, kept for reuse.
    pub empty_slabs: u64,
    /// Objects in use.
    pub active_objects: u64,
    /// Slots in all slabs.
    pub total_objects: u64,
    /// Bytes taken from the frame allocator: `slabs * slab_bytes`.
    pub bytes_from_frames: u64,
    /// Bytes the live objects asked for: `active_objects * object_size`.
    pub bytes_in_use: u64,
    /// Slab tails: `slabs * (slab_bytes - objects_per_slab * slot_size)`.
    pub tail_bytes: u64,
    /// Alignment padding of live objects: `active * (slot_size - object_size)`.
    pub padding_bytes: u64,
    /// Free slots: `(total_objects - active_objects) * slot_size`.
    pub free_slot_bytes: u64,
    /// Everything taken but not holding a live object:
    /// `bytes_from_frames - bytes_in_use` (= tail + padding + free slots).
    pub internal_fragmentation_bytes: u64,
    /// Slabs taken from the frame allocator since the cache was made.
    pub slabs_allocated: u64,
    /// Slabs returned to it.
    pub slabs_freed: u64,
}

/// A cache of objects of one size (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlabCache {
    name: String,
    object_size: u64,
    slot: u64,
    frame_size: PageSize,
    order: u32,
    per_slab: u32,
    keep_empty: u64,
    records: Vec<SlabRecord>,
    lists: IndexLists,
    by_base: FxHashMap<u64, u32>,
    active: u64,
    slabs_allocated: u64,
    slabs_freed: u64,
}

impl SlabCache {
    /// A cache named `name` for objects of `size` bytes aligned to `align`
    /// (a power of two; slots are `size` rounded up to it and to 8 bytes, as
    /// SLUB rounds to a word), in frames of `frame_size`.
    pub fn new(
        name: &str,
        size: u64,
        align: u64,
        frame_size: PageSize,
        params: &SlabParams,
    ) -> Result<Self, SlabError> {
        if !align.is_power_of_two() || align > frame_size.bytes() {
            return Err(SlabError::BadAlign {
                name: name.to_owned(),
                align,
            });
        }
        let bad_size = || SlabError::BadSize {
            name: name.to_owned(),
            size,
            max_order: params.max_page_order,
        };
        if frame_size.shift() + params.max_page_order > 62 {
            return Err(bad_size());
        }
        let slot = size
            .checked_next_multiple_of(align.max(8))
            .filter(|&s| s > 0 && s <= frame_size.bytes() << params.max_page_order)
            .ok_or_else(bad_size)?;
        let order = calculate_order(slot, frame_size.bytes(), params)
            .filter(|&o| o <= params.max_page_order)
            .ok_or_else(bad_size)?;
        let per_slab = order_objects(order, slot, frame_size.bytes()).min(MAX_OBJS_PER_SLAB);
        if per_slab == 0 {
            return Err(bad_size());
        }
        Ok(Self {
            name: name.to_owned(),
            object_size: size,
            slot,
            frame_size,
            order,
            per_slab: per_slab as u32,
            keep_empty: u64::from(params.keep_empty),
            records: Vec::new(),
            lists: IndexLists::new(4, 0),
            by_base: FxHashMap::default(),
            active: 0,
            slabs_allocated: 0,
            slabs_freed: 0,
        })
    }

    /// The cache's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The slab order.
    #[must_use]
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Objects per slab.
    #[must_use]
    pub fn objects_per_slab(&self) -> u64 {
        u64::from(self.per_slab)
    }

    /// The slot size (object size rounded up to the alignment).
    #[must_use]
    pub fn slot_size(&self) -> u64 {
        self.slot
    }

    /// Objects in use.
    #[must_use]
    pub fn active_objects(&self) -> u64 {
        self.active
    }

    fn slab_bytes(&self) -> u64 {
        self.frame_size.bytes() << self.order
    }

    fn move_to(&mut self, r: u32, list: usize) {
        let rec = &mut self.records[r as usize];
        if rec.list != list {
            self.lists.remove(rec.list, r);
            rec.list = list;
            self.lists.push_front(list, r);
        }
    }

    fn check_frames<A: FrameAllocator>(&self, frames: &A) -> Result<(), SlabError> {
        if frames.frame_size() == self.frame_size {
            Ok(())
        } else {
            Err(SlabError::FrameSize {
                name: self.name.clone(),
                expected: self.frame_size,
                got: frames.frame_size(),
            })
        }
    }

    /// Takes a new slab from `frames`; returns its record, on the empty list.
    fn grow<A: FrameAllocator>(&mut self, frames: &mut A) -> Result<u32, SlabError> {
        let base = frames
            .alloc_order(self.order)
            .ok_or_else(|| SlabError::OutOfMemory {
                name: self.name.clone(),
                order: self.order,
            })?;
        let n = self.per_slab;
        let r = match self.lists.pop_front(SPARE) {
            Some(r) => r,
            None => {
                let r = self.lists.grow();
                self.records.push(SlabRecord {
                    base: 0,
                    in_use: 0,
                    list: SPARE,
                    free: Vec::with_capacity(n as usize),
                    live: vec![0; (n as usize).div_ceil(64)],
                });
                r
            }
        };
        let rec = &mut self.records[r as usize];
        rec.base = base.as_u64();
        rec.in_use = 0;
        rec.free.clear();
        rec.free.extend((0..n).rev());
        rec.live.fill(0);
        rec.list = EMPTY;
        self.lists.push_front(EMPTY, r);
        self.by_base.insert(base.as_u64(), r);
        self.slabs_allocated += 1;
        Ok(r)
    }

    /// Returns the empty slab `r` to `frames`.
    fn release<A: FrameAllocator>(&mut self, frames: &mut A, r: u32) {
        let rec = &self.records[r as usize];
        debug_assert!(rec.in_use == 0 && rec.list == EMPTY);
        let base = rec.base;
        frames.free_order(Pfn::new(base), self.order);
        self.by_base.remove(&base);
        self.move_to(r, SPARE);
        self.slabs_freed += 1;
    }

    /// Allocates one object, taking a new slab from `frames` when no slab
    /// has a free slot.
    pub fn alloc<A: FrameAllocator>(&mut self, frames: &mut A) -> Result<ObjHandle, SlabError> {
        let r = match self
            .lists
            .front(PARTIAL)
            .or_else(|| self.lists.front(EMPTY))
        {
            Some(r) => r,
            None => {
                self.check_frames(frames)?;
                self.grow(frames)?
            }
        };
        let per_slab = self.per_slab;
        let rec = &mut self.records[r as usize];
        let Some(i) = rec.free.pop() else {
            unreachable!("slab on the partial or empty list has a free slot");
        };
        rec.live[(i / 64) as usize] |= 1 << (i % 64);
        rec.in_use += 1;
        let addr = Pfn::new(rec.base)
            .base(self.frame_size)
            .add(u64::from(i) * self.slot);
        let list = if rec.in_use == per_slab {
            FULL
        } else {
            PARTIAL
        };
        self.move_to(r, list);
        self.active += 1;
        Ok(ObjHandle(addr))
    }

    /// Whether `obj` is a live object of this cache (what [`SlabCache::free`]
    /// would accept): for checking a restored kernel's handles.
    #[must_use]
    pub fn holds(&self, obj: ObjHandle) -> bool {
        let addr = obj.0.as_u64();
        let shift = self.frame_size.shift();
        let base = (addr >> shift) & !((1u64 << self.order) - 1);
        let Some(&r) = self.by_base.get(&base) else {
            return false;
        };
        let off = addr - (base << shift);
        if !off.is_multiple_of(self.slot) || off / self.slot >= u64::from(self.per_slab) {
            return false;
        }
        let i = off / self.slot;
        self.records
            .get(r as usize)
            .and_then(|rec| rec.live.get((i / 64) as usize))
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Frees an object; an emptied slab goes back to `frames` when more than
    /// the configured number of empty slabs would be kept.
    pub fn free<A: FrameAllocator>(
        &mut self,
        frames: &mut A,
        obj: ObjHandle,
    ) -> Result<(), SlabError> {
        let addr = obj.0.as_u64();
        let not = || SlabError::NotAllocated {
            name: self.name.clone(),
            addr,
        };
        let shift = self.frame_size.shift();
        let base = (addr >> shift) & !((1u64 << self.order) - 1);
        let &r = self.by_base.get(&base).ok_or_else(not)?;
        let off = addr - (base << shift);
        if !off.is_multiple_of(self.slot) || off / self.slot >= u64::from(self.per_slab) {
            return Err(not());
        }
        let i = (off / self.slot) as u32;
        let rec = &mut self.records[r as usize];
        let bit = 1u64 << (i % 64);
        if rec.live[(i / 64) as usize] & bit == 0 {
            return Err(not());
        }
        rec.live[(i / 64) as usize] &= !bit;
        rec.free.push(i);
        rec.in_use -= 1;
        let list = if rec.in_use == 0 { EMPTY } else { PARTIAL };
        self.active -= 1;
        self.move_to(r, list);
        if list == EMPTY && self.lists.len(EMPTY) > self.keep_empty {
            self.release(frames, r);
        }
        Ok(())
    }

    /// Returns every empty slab to `frames` (`kmem_cache_shrink`); returns
    /// how many.
    pub fn shrink<A: FrameAllocator>(&mut self, frames: &mut A) -> u64 {
        let mut n = 0;
        while let Some(r) = self.lists.front(EMPTY) {
            self.release(frames, r);
            n += 1;
        }
        n
    }

    /// Whether the cache's geometry and counts are ones its own arithmetic
    /// can work with (what [`SlabCache::stats`] subtracts and shifts): for a
    /// cache read back from a checkpoint, whose fields may be forged though
    /// they pass its checksums. `max_order` is the registry's largest slab
    /// order (`calculate_order`'s widest).
    fn check_geometry(&self, max_order: u32) -> Result<(), String> {
        let name = &self.name;
        if self.object_size == 0 || self.slot < self.object_size {
            return Err(format!(
                "slab cache '{name}': slot of {} bytes for objects of {}",
                self.slot, self.object_size
            ));
        }
        if self.order > max_order || self.frame_size.shift() + self.order > 62 {
            return Err(format!(
                "slab cache '{name}': slabs of order {} above the largest, {max_order}",
                self.order
            ));
        }
        let per = u64::from(self.per_slab);
        if per == 0
            || per
                .checked_mul(self.slot)
                .is_none_or(|b| b > self.slab_bytes())
        {
            return Err(format!(
                "slab cache '{name}': {per} objects of {} bytes do not fit a slab of {}",
                self.slot,
                self.slab_bytes()
            ));
        }
        // The books the allocation paths index without a test: four lists
        // over the records, each record on the list it names, its free
        // object numbers and live bits sized for a slab's objects, and every
        // slab base naming a record of that base.
        if self.lists.len_lists() != SPARE + 1 {
            return Err(format!(
                "slab cache '{name}': {} record lists, not {}",
                self.lists.len_lists(),
                SPARE + 1
            ));
        }
        self.lists
            .check(self.records.len(), |list, r| {
                let ok = self.records.get(r as usize).is_some_and(|rec| {
                    rec.list == list
                        && u64::from(rec.in_use) <= per
                        && rec.live.len() as u64 == per.div_ceil(64)
                        && rec.free.len() as u64 <= per
                        && rec.free.iter().all(|&i| u64::from(i) < per)
                });
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "record {r} on list {list} is not a slab of its geometry"
                    ))
                }
            })
            .map_err(|e| format!("slab cache '{name}': {e}"))?;
        for (&base, &r) in &self.by_base {
            if !self
                .records
                .get(r as usize)
                .is_some_and(|rec| rec.base == base && rec.list != SPARE)
            {
                return Err(format!(
                    "slab cache '{name}': the slab at frame {base:#x} names record {r}, not its own"
                ));
            }
        }
        // Each slab's objects: its free numbers are exactly the objects
        // not live, once each (an allocation pops one and hands it out: a
        // live one would have two owners, none on a partial slab was an
        // `unreachable!`), on the list its count of live objects names,
        // and the cache's count of live objects their sum.
        let mut live_objects = 0u64;
        for (r, rec) in self.records.iter().enumerate() {
            if rec.list == SPARE {
                continue;
            }
            let live = rec
                .live
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>();
            let is_live = |i: u32| rec.live[(i / 64) as usize] & (1 << (i % 64)) != 0;
            let mut distinct = rec.free.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let list = match u64::from(rec.in_use) {
                0 => EMPTY,
                n if n == per => FULL,
                _ => PARTIAL,
            };
            if live != u64::from(rec.in_use)
                || distinct.len() != rec.free.len()
                || live + distinct.len() as u64 != per
                || rec.free.iter().any(|&i| is_live(i))
                || rec.list != list
            {
                return Err(format!(
                    "slab cache '{name}': record {r}: {} objects in use, {live} live and {} free \
                     (distinct, not live, {per} in all expected), on list {}",
                    rec.in_use,
                    rec.free.len(),
                    rec.list
                ));
            }
            live_objects += live;
        }
        if live_objects != self.active {
            return Err(format!(
                "slab cache '{name}': {live_objects} objects live in its slabs but {} counted",
                self.active
            ));
        }
        let slabs = self.lists.len(PARTIAL) + self.lists.len(FULL) + self.lists.len(EMPTY);
        if slabs
            .checked_mul(per)
            .is_none_or(|total| self.active > total)
        {
            return Err(format!(
                "slab cache '{name}': {} objects in use in {slabs} slabs of {per}",
                self.active
            ));
        }
        Ok(())
    }

    /// Test hook: the cache's object size, slot, slab order, objects per
    /// slab and empty slabs kept (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_shape(&mut self) -> (&mut u64, &mut u64, &mut u32, &mut u32, &mut u64) {
        (
            &mut self.object_size,
            &mut self.slot,
            &mut self.order,
            &mut self.per_slab,
            &mut self.keep_empty,
        )
    }

    /// Test hook: the first slab in use's free object numbers and the
    /// count of live objects (a forged checkpoint's); `None` if no slab is in use.
    #[cfg(test)]
    pub(crate) fn forge_first_slab(&mut self) -> Option<(&mut Vec<u32>, &mut u64)> {
        let rec = self.records.iter_mut().find(|r| r.list != SPARE)?;
        Some((&mut rec.free, &mut self.active))
    }

    /// The cache's counters.
    #[must_use]
    pub fn stats(&self) -> SlabStats {
        self.stats_of(SlabCounts {
            partial: self.lists.len(PARTIAL),
            full: self.lists.len(FULL),
            empty: self.lists.len(EMPTY),
            active: self.active,
            allocated: self.slabs_allocated,
            freed: self.slabs_freed,
        })
    }

    /// The counters this cache's geometry gives with the counts `c` (every
    /// derived figure worked out from them): its own, or an earlier
    /// snapshot's to check. `c` must be counts the geometry can hold (see
    /// [`SlabCache::check_earlier_stats`]); the arithmetic is not checked.
    fn stats_of(&self, c: SlabCounts) -> SlabStats {
        let slabs = c.partial + c.full + c.empty;
        let per = u64::from(self.per_slab);
        let slab_bytes = self.slab_bytes();
        let total = slabs * per;
        let from_frames = slabs * slab_bytes;
        let in_use = c.active * self.object_size;
        SlabStats {
            name: self.name.clone(),
            object_size: self.object_size,
            slot_size: self.slot,
            objects_per_slab: per,
            slab_order: self.order,
            slab_bytes,
            slabs,
            partial_slabs: c.partial,
            full_slabs: c.full,
            empty_slabs: c.empty,
            active_objects: c.active,
            total_objects: total,
            bytes_from_frames: from_frames,
            bytes_in_use: in_use,
            tail_bytes: slabs * (slab_bytes - per * self.slot),
            padding_bytes: c.active * (self.slot - self.object_size),
            free_slot_bytes: (total - c.active) * self.slot,
            internal_fragmentation_bytes: from_frames - in_use,
            slabs_allocated: c.allocated,
            slabs_freed: c.freed,
        }
    }

    /// Whether `earlier` (the figures of a report's snapshot read back from
    /// a checkpoint) could be this cache's at some earlier moment, holding
    /// at most `frames` frames in slabs: this cache's geometry, slabs that
    /// fit in those frames, live objects their lists allow (every object of
    /// a full slab, some but not all of a partial one's, none of an empty
    /// one's), slabs held equal to those taken less those returned, the
    /// slabs taken and returned no more than now (they only grow), and
    /// every derived figure the one the counts give. The snapshot is only
    /// reported, so a forged one lied in the report's slab lines (and a
    /// count near 2^64 overflowed the text report's sums).
    ///
    /// # Errors
    /// The first figure that is not, named.
    pub fn check_earlier_stats(&self, earlier: &SlabStats, frames: u64) -> Result<(), String> {
        let bad = |what: String| Err(format!("cache '{}': {what}", self.name));
        let s = earlier;
        let slabs = [s.partial_slabs, s.full_slabs, s.empty_slabs]
            .iter()
            .try_fold(0u64, |a, &n| a.checked_add(n))
            .filter(|&n| {
                n.checked_shl(self.order)
                    .is_some_and(|f| f >> self.order == n && f <= frames)
            });
        let Some(slabs) = slabs else {
            return bad(format!(
                "{} partial, {} full and {} empty slabs of order {} do not fit in {frames} frames",
                s.partial_slabs, s.full_slabs, s.empty_slabs, self.order
            ));
        };
        let per = u64::from(self.per_slab);
        let least = s.full_slabs * per + s.partial_slabs;
        let most = s.full_slabs * per + s.partial_slabs * per.saturating_sub(1);
        if s.active_objects < least || s.active_objects > most {
            return bad(format!(
                "{} live objects, but its full and partial slabs hold {least} to {most}",
                s.active_objects
            ));
        }
        if s.slabs_freed > s.slabs_allocated
            || s.slabs_allocated - s.slabs_freed != slabs
            || s.slabs_allocated > self.slabs_allocated
            || s.slabs_freed > self.slabs_freed
        {
            return bad(format!(
                "{} slabs taken and {} returned for {slabs} held (now {} and {})",
                s.slabs_allocated, s.slabs_freed, self.slabs_allocated, self.slabs_freed
            ));
        }
        let want = self.stats_of(SlabCounts {
            partial: s.partial_slabs,
            full: s.full_slabs,
            empty: s.empty_slabs,
            active: s.active_objects,
            allocated: s.slabs_allocated,
            freed: s.slabs_freed,
        });
        if *s != want {
            return bad(format!(
                "figures {s:?}, not those its geometry and counts give {want:?}"
            ));
        }
        Ok(())
    }
}

/// A cache's counts at some moment, from which [`SlabCache::stats_of`]
/// works out the rest of its figures.
struct SlabCounts {
    partial: u64,
    full: u64,
    empty: u64,
    active: u64,
    allocated: u64,
    freed: u64,
}

/// Names a cache of a [`Slab`] registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CacheId(u32);

/// The caches the simulated kernel makes at boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KernelCaches {
    /// Page-table pages: one frame, frame-aligned.
    pub page_table: CacheId,
    /// Process structures (`task_struct`, [`TASK_STRUCT_BYTES`]).
    pub task: CacheId,
    /// Virtual memory areas (`vm_area_struct`, [`VMA_BYTES`]).
    pub vma: CacheId,
}

/// The registry of slab caches sharing one frame allocator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slab {
    frame_size: PageSize,
    params: SlabParams,
    caches: Vec<SlabCache>,
}

impl Slab {
    /// An empty registry for frames of `frame_size`.
    #[must_use]
    pub fn new(frame_size: PageSize, params: SlabParams) -> Self {
        Self {
            frame_size,
            params,
            caches: Vec::new(),
        }
    }

    /// A registry with the kernel's caches: page-table pages, process
    /// structures and VMAs.
    pub fn with_kernel_caches(
        frame_size: PageSize,
        params: SlabParams,
    ) -> Result<(Self, KernelCaches), SlabError> {
        let mut slab = Self::new(frame_size, params);
        let frame = frame_size.bytes();
        let ids = KernelCaches {
            page_table: slab.create_cache("page_table", frame, frame)?,
            task: slab.create_cache("task_struct", TASK_STRUCT_BYTES, 16)?,
            vma: slab.create_cache("vm_area_struct", VMA_BYTES, 8)?,
        };
        Ok((slab, ids))
    }

    /// Makes a cache (`kmem_cache_create`).
    pub fn create_cache(
        &mut self,
        name: &str,
        size: u64,
        align: u64,
    ) -> Result<CacheId, SlabError> {
        if self.find(name).is_some() {
            return Err(SlabError::Duplicate(name.to_owned()));
        }
        let cache = SlabCache::new(name, size, align, self.frame_size, &self.params)?;
        self.caches.push(cache);
        Ok(CacheId(self.caches.len() as u32 - 1))
    }

    /// The cache called `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<CacheId> {
        self.caches
            .iter()
            .position(|c| c.name == name)
            .map(|i| CacheId(i as u32))
    }

    /// The cache `id`.
    pub fn cache(&self, id: CacheId) -> Result<&SlabCache, SlabError> {
        self.caches
            .get(id.0 as usize)
            .ok_or(SlabError::UnknownCache(id.0))
    }

    fn cache_mut(&mut self, id: CacheId) -> Result<&mut SlabCache, SlabError> {
        self.caches
            .get_mut(id.0 as usize)
            .ok_or(SlabError::UnknownCache(id.0))
    }

    /// Allocates an object from cache `id` (`kmem_cache_alloc`).
    pub fn alloc<A: FrameAllocator>(
        &mut self,
        id: CacheId,
        frames: &mut A,
    ) -> Result<ObjHandle, SlabError> {
        self.cache_mut(id)?.alloc(frames)
    }

    /// Frees an object of cache `id` (`kmem_cache_free`).
    pub fn free<A: FrameAllocator>(
        &mut self,
        id: CacheId,
        frames: &mut A,
        obj: ObjHandle,
    ) -> Result<(), SlabError> {
        self.cache_mut(id)?.free(frames, obj)
    }

    /// Returns every empty slab of every cache; returns how many.
    pub fn shrink_all<A: FrameAllocator>(&mut self, frames: &mut A) -> u64 {
        self.caches.iter_mut().map(|c| c.shrink(frames)).sum()
    }

    /// Every slab of every cache: its first frame and its order (the
    /// block its frames were taken as, and will be given back as).
    pub fn slab_blocks(&self) -> impl Iterator<Item = (Pfn, u32)> + '_ {
        self.caches
            .iter()
            .flat_map(|c| c.by_base.keys().map(move |&b| (Pfn::new(b), c.order)))
    }

    /// Whether every cache's geometry and counts are ones its arithmetic
    /// can work with (see `SlabCache::check_geometry`): checked before the
    /// counters of caches read back from a checkpoint are used.
    ///
    /// # Errors
    /// The first cache that is not, named, with what is wrong.
    pub fn check_geometry(&self) -> Result<(), String> {
        let p = &self.params;
        let max_order = p.max_order.max(p.max_page_order).max(p.min_order);
        self.caches
            .iter()
            .try_for_each(|c| c.check_geometry(max_order))
    }

    /// Whether this registry (read back from a checkpoint) has the
    /// geometry of `fresh`, built from the configuration: the same frames
    /// and parameters, and the same caches in the same order, each with the
    /// same object size, slot, slab order, objects per slab and empty slabs
    /// kept. [`Slab::check_geometry`] only asks that a cache's arithmetic
    /// works; a forged size or order that works still lied in the report's
    /// slab figures, and a forged slab order handed blocks back to the buddy
    /// allocator at an order they were not taken at.
    ///
    /// # Errors
    /// The first difference, with the cache named.
    pub fn check_same_geometry(&self, fresh: &Self) -> Result<(), String> {
        if self.frame_size != fresh.frame_size || self.params != fresh.params {
            return Err(format!(
                "frames of {} and parameters {:?}, not the configuration's {} and {:?}",
                self.frame_size, self.params, fresh.frame_size, fresh.params
            ));
        }
        if self.caches.len() != fresh.caches.len() {
            return Err(format!(
                "{} caches, not the kernel's {}",
                self.caches.len(),
                fresh.caches.len()
            ));
        }
        let shape = |c: &SlabCache| {
            (
                c.name.clone(),
                c.object_size,
                c.slot,
                c.frame_size,
                c.order,
                c.per_slab,
                c.keep_empty,
            )
        };
        for (c, f) in self.caches.iter().zip(&fresh.caches) {
            let (mine, theirs) = (shape(c), shape(f));
            if mine != theirs {
                return Err(format!(
                    "cache '{}': (name, object size, slot, frames, order, objects per slab, \
                     empty kept) {mine:?}, not the configuration's {theirs:?}",
                    c.name
                ));
            }
        }
        Ok(())
    }

    /// Test hook: cache `id`, mutably (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_cache(&mut self, id: CacheId) -> &mut SlabCache {
        &mut self.caches[id.0 as usize]
    }

    /// Whether `earlier` (a report snapshot's figures read back from a
    /// checkpoint) could be this registry's at some earlier moment with at
    /// most `frames` frames in use: one entry per cache, in order, each
    /// passing [`SlabCache::check_earlier_stats`], their slabs' frames
    /// within `frames` in all.
    ///
    /// # Errors
    /// The first figure that is not, with the cache named.
    pub fn check_earlier_stats(&self, earlier: &[SlabStats], frames: u64) -> Result<(), String> {
        if earlier.len() != self.caches.len() {
            return Err(format!(
                "{} caches, not the kernel's {}",
                earlier.len(),
                self.caches.len()
            ));
        }
        let mut held = 0u64;
        for (c, s) in self.caches.iter().zip(earlier) {
            c.check_earlier_stats(s, frames)?;
            // Each within `frames` (checked above), so the sum cannot overflow.
            held += s.slabs << c.order;
        }
        if held > frames {
            return Err(format!(
                "the caches' slabs take {held} frames, more than the {frames} in use"
            ));
        }
        Ok(())
    }

    /// Counters of every cache, in creation order (`/proc/slabinfo`).
    #[must_use]
    pub fn stats(&self) -> Vec<SlabStats> {
        self.caches.iter().map(SlabCache::stats).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::Buddy;

    const P: SlabParams = SlabParams {
        cpus: 1,
        min_objects: 0,
        min_order: 0,
        max_order: 3,
        max_page_order: 10,
        keep_empty: 1,
    };

    #[test]
    fn slub_orders_by_hand() {
        // 1744-byte slots, 8 objects at least: get_order(13952) = 2 (16 KiB);
        // 16384 % 1744 = 688 <= 16384/16 = 1024, so order 2 (9 objects).
        assert_eq!(calculate_order(1744, 4096, &P), Some(2));
        // 200-byte slots: get_order(1600) = 0; 4096 % 200 = 96 <= 256.
        assert_eq!(calculate_order(200, 4096, &P), Some(0));
        // Frame-sized objects: 8 of them, get_order(32768) = 3, no tail.
        assert_eq!(calculate_order(4096, 4096, &P), Some(3));
        // 3000 bytes: min order 3 (8 * 3000 = 24000): 32768 % 3000 = 2768 > 2048,
        // 32768/8 = 4096 accepts it at fraction 8.
        assert_eq!(calculate_order(3000, 4096, &P), Some(3));
        // Bigger than slub_max_order's slab: a single object per slab.
        assert_eq!(calculate_order(40_000, 4096, &P), Some(4));
        assert_eq!(calculate_order(1 << 23, 4096, &P), None);
        // Tiny objects are capped by the 15-bit object counter: with a
        // minimum order of 7 a slab would hold 65536 objects; 8 * 32767
        // bytes need order 6, and SLUB takes one less.
        assert_eq!(
            calculate_order(8, 4096, &SlabParams { min_order: 7, ..P }),
            Some(5)
        );
    }

    #[test]
    fn objects_fill_a_slab_then_a_new_one() {
        let mut b = Buddy::new(PageSize::SIZE_4K, Pfn::new(0), 64, 10).expect("buddy");
        let mut c = SlabCache::new("vma", VMA_BYTES, 8, PageSize::SIZE_4K, &P).expect("cache");
        assert_eq!((c.order(), c.objects_per_slab()), (0, 20));
        let objs: Vec<ObjHandle> = (0..21).map(|_| c.alloc(&mut b).expect("obj")).collect();
        assert_eq!(objs[0].addr().as_u64(), 0);
        assert_eq!(objs[1].addr().as_u64(), 200);
        assert_eq!(objs[20].addr().as_u64(), 4096);
        let s = c.stats();
        assert_eq!((s.slabs, s.full_slabs, s.partial_slabs), (2, 1, 1));
        assert_eq!(b.free_frames(), 62);
        // LIFO reuse of a freed slot.
        c.free(&mut b, objs[5]).expect("free");
        assert_eq!(c.alloc(&mut b), Ok(objs[5]));
    }

    #[test]
    fn bad_frees_are_errors() {
        let mut b = Buddy::new(PageSize::SIZE_4K, Pfn::new(0), 64, 10).expect("buddy");
        let mut c = SlabCache::new("vma", VMA_BYTES, 8, PageSize::SIZE_4K, &P).expect("cache");
        let o = c.alloc(&mut b).expect("obj");
        let inside = ObjHandle(o.addr().add(8));
        assert!(c.free(&mut b, inside).is_err());
        let past = ObjHandle(PhysAddr::new_unchecked(20 * 200));
        assert!(c.free(&mut b, past).is_err(), "the tail is not an object");
        assert!(
            c.free(&mut b, ObjHandle(PhysAddr::new_unchecked(1 << 20)))
                .is_err()
        );
        c.free(&mut b, o).expect("free");
        assert!(matches!(
            c.free(&mut b, o),
            Err(SlabError::NotAllocated { .. })
        ));
    }

    #[test]
    fn bad_caches_are_errors() {
        let k = PageSize::SIZE_4K;
        assert!(matches!(
            SlabCache::new("x", 0, 8, k, &P),
            Err(SlabError::BadSize { .. })
        ));
        assert!(matches!(
            SlabCache::new("x", 64, 3, k, &P),
            Err(SlabError::BadAlign { .. })
        ));
        assert!(SlabCache::new("x", 1 << 30, 8, k, &P).is_err());
        let mut s = Slab::new(k, P);
        s.create_cache("a", 64, 8).expect("cache");
        assert_eq!(
            s.create_cache("a", 64, 8),
            Err(SlabError::Duplicate("a".into()))
        );
        assert!(s.cache(CacheId(7)).is_err());
        let mut small = Buddy::new(
            PageSize::from_bytes(1024).expect("size"),
            Pfn::new(0),
            64,
            10,
        )
        .expect("buddy");
        let id = s.find("a").expect("id");
        assert!(matches!(
            s.alloc(id, &mut small),
            Err(SlabError::FrameSize { .. })
        ));
    }

    #[test]
    fn out_of_memory_is_reported() {
        let mut b = Buddy::new(PageSize::SIZE_4K, Pfn::new(0), 4, 10).expect("buddy");
        let (mut s, k) = Slab::with_kernel_caches(PageSize::SIZE_4K, P).expect("slab");
        // A page-table slab is 8 frames; only 4 exist.
        assert!(matches!(
            s.alloc(k.page_table, &mut b),
            Err(SlabError::OutOfMemory { order: 3, .. })
        ));
        assert!(s.alloc(k.vma, &mut b).is_ok());
    }

    /// Caches read back with forged fields (a checkpoint that passes its
    /// checksums) are refused by their geometry check, before `stats`
    /// would subtract or shift with them; a cache as built passes.
    #[test]
    fn forged_geometry_is_refused_before_the_counters() {
        let c = SlabCache::new("vma", VMA_BYTES, 8, PageSize::SIZE_4K, &P).expect("cache");
        assert_eq!(c.check_geometry(P.max_order), Ok(()));
        let forged: [fn(&mut SlabCache); 5] = [
            |c| c.slot = c.object_size - 1,
            |c| c.order = 70,
            |c| c.per_slab = u32::MAX,
            |c| c.active = 1,
            |c| {
                c.by_base.insert(5, 9);
            },
        ];
        for (i, forge) in forged.iter().enumerate() {
            let mut bad = c.clone();
            forge(&mut bad);
            let e = bad.check_geometry(P.max_order).expect_err("forged");
            assert!(e.starts_with("slab cache 'vma': "), "{i}: {e}");
        }
    }
}
