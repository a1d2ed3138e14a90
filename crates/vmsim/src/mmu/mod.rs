//! The address-translation hardware: TLBs, page-walk caches and (with the
//! page-table walker) the MMU.
//!
//! - [`Tlb`]: a hierarchy of [`TlbArray`]s (any number of levels, split or
//!   unified, per-page-size arrays, LRU / tree-PLRU / random replacement,
//!   ASID tags or flush-on-switch, global entries, page / ASID / non-global /
//!   all invalidation), built from a [`TlbConfig`] or a named preset
//!   ([`TLB_PRESETS`]); it owns the core's [`WalkCache`].
//! - [`TlbEntry`]: one cached translation, 32 bytes, `Copy`.
//! - [`Counters`]: every count the hardware can be asked for, and the
//!   effective access time computed from them.
//!
//! This module owns translation caching and counting. It must not touch page
//! tables itself (that is [`paging`](crate) territory) nor decide what a
//! fault means to the operating system (the kernel's job).

mod access;
mod counters;
mod entry;
mod replacement;
mod tlb;
mod tlb_array;
mod tlb_config;
mod tlb_presets;
mod walk_cache;

pub use access::{AccessKind, Privilege};
pub use counters::{
    Counters, FaultCounters, FlushCounters, LevelCounters, MAX_WALK_LEVELS, SizeCounts,
    TlbCounters, WalkCacheCounters, WalkCounters,
};
pub use entry::{Perms, TlbEntry};
pub use replacement::{Replacement, Victims, XorShift64Star};
pub use tlb::{Tlb, TlbHit};
pub use tlb_array::{Inserted, TlbArray};
pub use tlb_config::{
    Holds, MAX_ARRAY_ENTRIES, MAX_SIZES_PER_ARRAY, MAX_WALK_CACHE_ENTRIES, TlbArrayConfig,
    TlbConfig, TlbConfigError, TlbLevelConfig, WalkCacheLevelConfig, parse_page_size,
};
pub use tlb_presets::{TLB_PRESETS, TlbPreset};
pub use walk_cache::{WalkCache, WalkCacheHit};
