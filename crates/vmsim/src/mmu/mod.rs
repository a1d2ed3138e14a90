//! The address-translation hardware: TLBs, page-walk caches and (with the
//! page-table walker) the MMU.
//!
//! - [`Tlb`]: a hierarchy of [`TlbArray`]s (any number of levels, split or
//!   unified, per-page-size arrays, LRU / tree-PLRU / random replacement,
//!   ASID tags or flush-on-switch, global entries, page / ASID / non-global /
//!   all invalidation), built from a [`TlbConfig`] or a named preset
//!   ([`TLB_PRESETS`]); it owns the core's [`WalkCache`].
//! - [`TlbEntry`]: one cached translation, 32 bytes, `Copy`.
//! - [`Mmu`]: translation with permission checks, faults with x86 error
//!   codes ([`MmuFault`]), hardware or Svade accessed/dirty bits, walks
//!   through the page-walk caches, all counted.
//! - [`Counters`]: every count the hardware can be asked for, and the
//!   effective access time computed from them.
//!
//! This module owns translation caching and counting. It must not build or
//! change page tables (that is [`paging`](crate::paging) territory: the MMU
//! only reads entries through the walker and writes accessed/dirty bits)
//! nor decide what a fault means to the operating system (the kernel's job).

mod access;
mod counters;
mod entry;
mod fault;
#[cfg(test)]
mod reference_array;
mod replacement;
mod slot_index;
mod tlb;
mod tlb_array;
mod tlb_config;
mod tlb_control;
mod tlb_presets;
mod translate;
mod walk_cache;
mod walk_slots;

pub use access::{AccessKind, LoadOrFetch, Privilege};
pub use counters::{
    Counters, FaultCounters, FlushCounters, LevelCounters, MAX_WALK_LEVELS, SizeCounts,
    TlbCounters, WalkCacheCounters, WalkCounters,
};
pub use entry::{Perms, TlbEntry};
pub use fault::{MmuFault, MmuFaultKind, Violation};
pub use replacement::{Replacement, Victims, XorShift64Star};
pub(crate) use tlb::PaHit;
pub use tlb::{Tlb, TlbHit};
pub use tlb_array::{Inserted, TlbArray};
pub use tlb_config::{
    Holds, MAX_ARRAY_ENTRIES, MAX_ARRAYS_PER_LEVEL, MAX_SIZES_PER_ARRAY, MAX_WALK_CACHE_ENTRIES,
    PageSizeError, TlbArrayConfig, TlbConfig, TlbConfigError, TlbLevelConfig, WalkCacheLevelConfig,
    parse_page_size,
};
pub use tlb_control::TlbControl;
pub use tlb_presets::{TLB_PRESETS, TlbPreset};
pub use translate::Mmu;
pub use walk_cache::{WalkCache, WalkCacheHit};

/// What a restored MMU state is checked against: the machine it is restored
/// into. A checkpoint's MACH section passes its checksum whether it was
/// written by vmsim or forged; these bounds (and the geometry of an MMU
/// built fresh from the configuration) keep every cached entry usable
/// without a panic later in the run.
pub(crate) struct RestoreLimits<'a> {
    /// Bytes of simulated physical memory.
    pub mem_bytes: u64,
    /// How many address-space ids the kernel hands out.
    pub asids: u32,
    /// Bytes of a page-table frame (tables are aligned to it).
    pub table_align: u64,
    /// Whether the kernel holds a page table at this address.
    pub is_table: &'a dyn Fn(crate::addr::PhysAddr) -> bool,
}
