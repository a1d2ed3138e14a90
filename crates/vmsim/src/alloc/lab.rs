//! The allocator lab: an operation list ([`super::ops`]) run through one
//! allocator, recording every step, for `vmsim alloc` and its exercises.
//!
//! Three allocators can be stepped: the textbook free list
//! ([`super::FreeSpace`], [`run_free_list`]), the kernel's binary buddy
//! allocator ([`super::Buddy`], [`run_buddy`]) and its slab caches on top of
//! a buddy allocator ([`super::slab`], [`run_slab`]). The lab only drives
//! them and reads their state back; every decision is the allocator's own.
//! Each run is a plain serializable value (steps and totals), so the text,
//! JSON and HTML renderings all read the same data.

use serde::Serialize;
use thiserror::Error;

use crate::addr::{PageSize, Pfn};

use super::FrameAllocator;
use super::buddy::{Buddy, BuddyError, order_for_frames};
use super::fragmentation::FragmentationReport;
use super::free_space::{Block, FreeSpace, FreeSpaceConfig, FreeSpaceError, FreeSpaceStats};
use super::ops::HeapOp;
use super::slab::{CacheId, ObjHandle, Slab, SlabError, SlabParams, SlabStats};

/// A lab run that cannot start or cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabError {
    /// The free-list region or alignment is invalid.
    #[error("{0}")]
    FreeSpace(#[from] FreeSpaceError),
    /// The buddy region is invalid.
    #[error("{0}")]
    Buddy(#[from] BuddyError),
    /// An object size no slab can hold (operation `op`, 0-based).
    #[error("operation {op} ('{text}'): {source}")]
    Slab {
        /// Index of the operation.
        op: usize,
        /// The operation as written.
        text: String,
        /// Why.
        source: SlabError,
    },
    /// A page size that [`PageSize`] refuses.
    #[error("page size {0} is not a power of two")]
    PageSize(u64),
    /// A buddy request larger than the largest block.
    #[error(
        "operation {op} ('{text}'): {pages} pages need order {order}, above the largest order {max_order}"
    )]
    BuddyTooLarge {
        /// Index of the operation.
        op: usize,
        /// The operation as written.
        text: String,
        /// Pages requested.
        pages: u64,
        /// The order they need.
        order: u32,
        /// The largest order.
        max_order: u32,
    },
}

/// Whether a run keeps every step (for display) or only its totals (for a
/// long operation list: a step holds a copy of the free lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Keep every step.
    Every,
    /// Keep none (the run's `steps` stay empty).
    None,
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// An allocation that succeeded.
    Allocated,
    /// An allocation that failed (NULL).
    Failed,
    /// A free of a live allocation.
    Freed,
    /// A free of an allocation that had failed: `free(NULL)`, nothing to do.
    FreeNull,
}

/// For each `a` of an operation list in turn, the allocation number it makes.
fn alloc_numbers(ops: &[HeapOp]) -> Vec<Option<usize>> {
    let mut n = 0;
    ops.iter()
        .map(|op| match op {
            HeapOp::Alloc(_) => {
                n += 1;
                Some(n - 1)
            }
            HeapOp::Free(_) => None,
        })
        .collect()
}

/// One step of a free-list run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreeListStep {
    /// Index of the operation (0-based).
    pub index: usize,
    /// The operation.
    pub op: HeapOp,
    /// The allocation made (`a`) or freed (`f`), numbered from 0.
    pub alloc: usize,
    /// What happened.
    pub outcome: Outcome,
    /// Bytes requested (allocations), or of the allocation freed.
    pub size: u64,
    /// The pointer returned (allocations) or freed; `null` for NULL.
    pub ptr: Option<u64>,
    /// The block taken or given back (header and padding included).
    pub block: Option<Block>,
    /// Free-list elements examined (allocations).
    pub searched: usize,
    /// Merges made by coalescing (frees).
    pub merges: usize,
    /// The free list after the step, in list order.
    pub free_list: Vec<Block>,
    /// The region's figures after the step.
    pub stats: FreeSpaceStats,
}

/// Totals of a free-list run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreeListTotals {
    /// Allocations attempted.
    pub allocations: usize,
    /// Allocations that failed.
    pub failures: usize,
    /// Frees (of live allocations).
    pub frees: usize,
    /// Free-list elements examined by all allocations.
    pub searched: usize,
    /// The region's figures at the end.
    pub end: FreeSpaceStats,
}

/// A free-list run: the setup, every step, the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreeListRun {
    /// The allocator's setup.
    pub config: FreeSpaceConfig,
    /// One per operation.
    pub steps: Vec<FreeListStep>,
    /// Totals.
    pub totals: FreeListTotals,
}

/// Runs `ops` through a [`FreeSpace`] set up by `cfg`.
pub fn run_free_list(
    cfg: FreeSpaceConfig,
    ops: &[HeapOp],
    keep: Steps,
) -> Result<FreeListRun, LabError> {
    let mut steps = Vec::new();
    let mut push = |s: &FreeListStep| steps.push(s.clone());
    let each: Option<&mut dyn FnMut(&FreeListStep)> = match keep {
        Steps::Every => Some(&mut push),
        Steps::None => None,
    };
    let (config, totals) = free_list_steps(cfg, ops, each)?;
    Ok(FreeListRun {
        config,
        steps,
        totals,
    })
}

/// Runs `ops` through a [`FreeSpace`] set up by `cfg`, handing each step
/// to `each` as it happens (none are kept: a long list streams in constant
/// memory; `None` skips building the steps). Returns the setup and totals.
pub fn free_list_steps(
    cfg: FreeSpaceConfig,
    ops: &[HeapOp],
    mut each: Option<&mut dyn FnMut(&FreeListStep)>,
) -> Result<(FreeSpaceConfig, FreeListTotals), LabError> {
    let mut heap = FreeSpace::new(cfg)?;
    let numbers = alloc_numbers(ops);
    // Per allocation number: (pointer if it succeeded, bytes requested).
    let mut made: Vec<(Option<u64>, u64)> = Vec::new();
    let (mut failures, mut frees, mut searched_total) = (0, 0, 0);
    for (index, &op) in ops.iter().enumerate() {
        let step = match op {
            HeapOp::Alloc(bytes) => {
                let alloc = numbers[index].unwrap_or(made.len());
                let (outcome, ptr, block, searched) = match heap.alloc(bytes) {
                    Ok(a) => (Outcome::Allocated, Some(a.ptr), Some(a.block), a.searched),
                    Err(FreeSpaceError::NoFit { searched, .. }) => {
                        (Outcome::Failed, None, None, searched)
                    }
                    Err(_) => (Outcome::Failed, None, None, 0),
                };
                if outcome == Outcome::Failed {
                    failures += 1;
                }
                searched_total += searched;
                made.push((ptr, bytes));
                FreeListStep {
                    index,
                    op,
                    alloc,
                    outcome,
                    size: bytes,
                    ptr,
                    block,
                    searched,
                    merges: 0,
                    free_list: Vec::new(),
                    stats: FreeSpaceStats::default(),
                }
            }
            HeapOp::Free(i) => {
                let (ptr, size) = made.get(i).copied().unwrap_or((None, 0));
                let (outcome, block, merges) = match ptr {
                    Some(p) => {
                        let f = heap.free(p)?;
                        frees += 1;
                        (Outcome::Freed, Some(f.block), f.merges)
                    }
                    None => (Outcome::FreeNull, None, 0),
                };
                FreeListStep {
                    index,
                    op,
                    alloc: i,
                    outcome,
                    size,
                    ptr,
                    block,
                    searched: 0,
                    merges,
                    free_list: Vec::new(),
                    stats: FreeSpaceStats::default(),
                }
            }
        };
        if let Some(f) = each.as_mut() {
            f(&FreeListStep {
                free_list: heap.free_list().to_vec(),
                stats: heap.stats(),
                ..step
            });
        }
    }
    Ok((
        *heap.config(),
        FreeListTotals {
            allocations: made.len(),
            failures,
            frees,
            searched: searched_total,
            end: heap.stats(),
        },
    ))
}

/// How the buddy lab's region is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BuddyLabConfig {
    /// First page (frame number) of the region.
    pub first: u64,
    /// Pages in the region.
    pub pages: u64,
    /// The largest block order.
    pub max_order: u32,
}

/// One step of a buddy run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuddyStep {
    /// Index of the operation (0-based).
    pub index: usize,
    /// The operation.
    pub op: HeapOp,
    /// The allocation made (`a`) or freed (`f`), numbered from 0.
    pub alloc: usize,
    /// What happened.
    pub outcome: Outcome,
    /// Pages requested.
    pub pages: u64,
    /// The order of the block (`2^order` pages: the request rounded up).
    pub order: u32,
    /// First page of the block taken or given back.
    pub block: Option<u64>,
    /// Allocations: the order of the free block that was split to serve
    /// the request (equal to `order` when no split was needed).
    pub split_from: Option<u32>,
    /// Frees: the order of the free block the returned block ended in
    /// after coalescing with its buddies (equal to `order`: no merge).
    pub merged_to: Option<u32>,
    /// Free blocks per order after the step (first pages, in list order:
    /// the next allocation of an order takes the first).
    pub free_lists: Vec<Vec<u64>>,
    /// Pages free after the step.
    pub free_pages: u64,
}

/// Totals of a buddy run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuddyTotals {
    /// Allocations attempted.
    pub allocations: usize,
    /// Allocations that failed.
    pub failures: usize,
    /// Frees (of live allocations).
    pub frees: usize,
    /// Pages requested by the live allocations.
    pub requested_pages: u64,
    /// Pages in their blocks (requests rounded up to powers of two).
    pub allocated_pages: u64,
    /// `allocated_pages - requested_pages`: the rounding's internal fragmentation.
    pub internal_fragmentation: u64,
    /// buddyinfo, Linux's extfrag and unusable indices at the end.
    pub fragmentation: FragmentationReport,
}

/// A buddy run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuddyRun {
    /// The region.
    pub config: BuddyLabConfig,
    /// One per operation.
    pub steps: Vec<BuddyStep>,
    /// Totals.
    pub totals: BuddyTotals,
}

fn free_lists(b: &Buddy) -> Vec<Vec<u64>> {
    (0..=b.max_order())
        .map(|o| b.free_blocks(o).map(Pfn::as_u64).collect())
        .collect()
}

/// The order of the free block that contains `pfn`, if one does.
fn free_block_order(b: &Buddy, pfn: u64) -> Option<u32> {
    (0..=b.max_order()).find(|&o| {
        b.free_blocks(o)
            .any(|h| (h.as_u64()..h.as_u64() + (1 << o)).contains(&pfn))
    })
}

/// Runs `ops` through the engine's [`Buddy`] allocator (`aN` asks for N
/// pages, rounded up to a power of two).
pub fn run_buddy(cfg: BuddyLabConfig, ops: &[HeapOp], keep: Steps) -> Result<BuddyRun, LabError> {
    let mut steps = Vec::new();
    let mut push = |s: &BuddyStep| steps.push(s.clone());
    let each: Option<&mut dyn FnMut(&BuddyStep)> = match keep {
        Steps::Every => Some(&mut push),
        Steps::None => None,
    };
    let totals = buddy_steps(cfg, ops, each)?;
    Ok(BuddyRun {
        config: cfg,
        steps,
        totals,
    })
}

/// [`run_buddy`] handing each step to `each` as it happens (see
/// [`free_list_steps`]); returns the totals.
pub fn buddy_steps(
    cfg: BuddyLabConfig,
    ops: &[HeapOp],
    mut each: Option<&mut dyn FnMut(&BuddyStep)>,
) -> Result<BuddyTotals, LabError> {
    let mut b = Buddy::new(
        PageSize::SIZE_4K,
        Pfn::new(cfg.first),
        cfg.pages,
        cfg.max_order,
    )?;
    let numbers = alloc_numbers(ops);
    // Per allocation number: (first page if it succeeded, pages, order).
    let mut made: Vec<(Option<u64>, u64, u32)> = Vec::new();
    let (mut failures, mut frees) = (0, 0);
    for (index, &op) in ops.iter().enumerate() {
        let step = match op {
            HeapOp::Alloc(pages) => {
                let order = order_for_frames(pages)
                    .filter(|&o| o <= cfg.max_order)
                    .ok_or_else(|| LabError::BuddyTooLarge {
                        op: index,
                        text: op.to_string(),
                        pages,
                        order: order_for_frames(pages).unwrap_or(64),
                        max_order: cfg.max_order,
                    })?;
                let split_from = (order..=cfg.max_order).find(|&o| b.nr_free(o) > 0);
                let got = b.alloc_order(order).map(Pfn::as_u64);
                if got.is_none() {
                    failures += 1;
                }
                made.push((got, pages, order));
                BuddyStep {
                    index,
                    op,
                    alloc: numbers[index].unwrap_or(made.len() - 1),
                    outcome: if got.is_some() {
                        Outcome::Allocated
                    } else {
                        Outcome::Failed
                    },
                    pages,
                    order,
                    block: got,
                    split_from: got.and(split_from),
                    merged_to: None,
                    free_lists: Vec::new(),
                    free_pages: 0,
                }
            }
            HeapOp::Free(i) => {
                let (got, pages, order) = made.get(i).copied().unwrap_or((None, 0, 0));
                let merged_to = match got {
                    Some(pfn) => {
                        b.try_free_order(Pfn::new(pfn), order)?;
                        frees += 1;
                        made[i].0 = None;
                        free_block_order(&b, pfn)
                    }
                    None => None,
                };
                BuddyStep {
                    index,
                    op,
                    alloc: i,
                    outcome: if got.is_some() {
                        Outcome::Freed
                    } else {
                        Outcome::FreeNull
                    },
                    pages,
                    order,
                    block: got,
                    split_from: None,
                    merged_to,
                    free_lists: Vec::new(),
                    free_pages: 0,
                }
            }
        };
        if let Some(f) = each.as_mut() {
            f(&BuddyStep {
                free_lists: free_lists(&b),
                free_pages: b.free_frames(),
                ..step
            });
        }
    }
    let live = made.iter().filter(|m| m.0.is_some());
    let requested: u64 = live.clone().map(|m| m.1).sum();
    let allocated: u64 = live.map(|m| 1u64 << m.2).sum();
    Ok(BuddyTotals {
        allocations: made.len(),
        failures,
        frees,
        requested_pages: requested,
        allocated_pages: allocated,
        internal_fragmentation: allocated - requested,
        fragmentation: b.fragmentation(),
    })
}

/// How the slab lab is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlabLabConfig {
    /// Pages of the buddy allocator the slabs come from.
    pub pages: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// Object alignment (a power of two; slots are rounded to it and to 8).
    pub align: u64,
}

/// One step of a slab run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlabStep {
    /// Index of the operation (0-based).
    pub index: usize,
    /// The operation.
    pub op: HeapOp,
    /// The allocation made (`a`) or freed (`f`), numbered from 0.
    pub alloc: usize,
    /// What happened.
    pub outcome: Outcome,
    /// The object size (one cache per distinct size).
    pub size: u64,
    /// The cache's name.
    pub cache: String,
    /// The object's address.
    pub addr: Option<u64>,
    /// First page of the slab that holds the object.
    pub slab: Option<u64>,
    /// Whether the step took a new slab from the buddy allocator.
    pub new_slab: bool,
    /// Whether the step gave an empty slab back to the buddy allocator.
    pub released_slab: bool,
    /// The cache's counters after the step.
    pub cache_stats: SlabStats,
    /// Pages free in the buddy allocator after the step.
    pub buddy_free_pages: u64,
}

/// A slab run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlabRun {
    /// The setup.
    pub config: SlabLabConfig,
    /// One per operation.
    pub steps: Vec<SlabStep>,
    /// Every cache's counters at the end, in creation order (`/proc/slabinfo`).
    pub caches: Vec<SlabStats>,
    /// Allocations attempted.
    pub allocations: usize,
    /// Allocations that failed (the buddy allocator had no block for a slab).
    pub failures: usize,
    /// Pages free in the buddy allocator at the end.
    pub buddy_free_pages: u64,
}

/// Runs `ops` through the engine's slab caches (`aN` allocates an object of
/// N bytes from the cache of objects of exactly that size, made on first
/// use) on top of a buddy allocator of `cfg.pages` pages.
pub fn run_slab(cfg: SlabLabConfig, ops: &[HeapOp], keep: Steps) -> Result<SlabRun, LabError> {
    let mut steps = Vec::new();
    let mut push = |s: &SlabStep| steps.push(s.clone());
    let each: Option<&mut dyn FnMut(&SlabStep)> = match keep {
        Steps::Every => Some(&mut push),
        Steps::None => None,
    };
    let run = slab_steps(cfg, ops, each)?;
    Ok(SlabRun { steps, ..run })
}

/// [`run_slab`] handing each step to `each` as it happens (see
/// [`free_list_steps`]); the run returned has no steps.
pub fn slab_steps(
    cfg: SlabLabConfig,
    ops: &[HeapOp],
    mut each: Option<&mut dyn FnMut(&SlabStep)>,
) -> Result<SlabRun, LabError> {
    let page_size =
        PageSize::from_bytes(cfg.page_size).map_err(|_| LabError::PageSize(cfg.page_size))?;
    let params = SlabParams::default();
    let max_order = params.max_page_order.min(63 - cfg.pages.leading_zeros());
    let mut b = Buddy::new(page_size, Pfn::new(0), cfg.pages, max_order)?;
    let mut slab = Slab::new(
        page_size,
        SlabParams {
            max_page_order: max_order,
            ..params
        },
    );
    let numbers = alloc_numbers(ops);
    let mut made: Vec<(Option<ObjHandle>, u64, CacheId)> = Vec::new();
    let mut failures = 0;
    for (index, &op) in ops.iter().enumerate() {
        let (size, id, handle, alloc) = match op {
            HeapOp::Alloc(size) => {
                let name = format!("obj-{size}");
                let id = match slab.find(&name) {
                    Some(id) => id,
                    None => slab
                        .create_cache(&name, size, cfg.align)
                        .map_err(|source| LabError::Slab {
                            op: index,
                            text: op.to_string(),
                            source,
                        })?,
                };
                (size, id, None, numbers[index].unwrap_or(made.len()))
            }
            HeapOp::Free(i) => {
                let (h, size, id) = made[i];
                (size, id, h, i)
            }
        };
        let cache = slab.cache(id).map_err(|source| LabError::Slab {
            op: index,
            text: op.to_string(),
            source,
        })?;
        let before = cache.stats();
        let order = cache.order();
        let (outcome, addr) = match op {
            HeapOp::Alloc(_) => match slab.alloc(id, &mut b) {
                Ok(h) => {
                    made.push((Some(h), size, id));
                    (Outcome::Allocated, Some(h.addr().as_u64()))
                }
                Err(SlabError::OutOfMemory { .. }) => {
                    failures += 1;
                    made.push((None, size, id));
                    (Outcome::Failed, None)
                }
                Err(source) => {
                    return Err(LabError::Slab {
                        op: index,
                        text: op.to_string(),
                        source,
                    });
                }
            },
            HeapOp::Free(i) => match handle {
                Some(h) => {
                    slab.free(id, &mut b, h).map_err(|source| LabError::Slab {
                        op: index,
                        text: op.to_string(),
                        source,
                    })?;
                    made[i].0 = None;
                    (Outcome::Freed, Some(h.addr().as_u64()))
                }
                None => (Outcome::FreeNull, None),
            },
        };
        let after = slab
            .cache(id)
            .map_err(|source| LabError::Slab {
                op: index,
                text: op.to_string(),
                source,
            })?
            .stats();
        let slab_pfn = addr.map(|a| (a >> page_size.shift()) & !((1u64 << order) - 1));
        let Some(f) = each.as_mut() else {
            continue;
        };
        f(&SlabStep {
            index,
            op,
            alloc,
            outcome,
            size,
            cache: after.name.clone(),
            addr,
            slab: slab_pfn,
            new_slab: after.slabs_allocated > before.slabs_allocated,
            released_slab: after.slabs_freed > before.slabs_freed,
            cache_stats: after,
            buddy_free_pages: b.free_frames(),
        });
    }
    Ok(SlabRun {
        config: cfg,
        steps: Vec::new(),
        caches: slab.stats(),
        allocations: made.len(),
        failures,
        buddy_free_pages: b.free_frames(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::ops::parse_ops;

    #[test]
    fn free_of_a_failed_allocation_is_free_null() {
        let ops = parse_ops("a8,a9,f1,f0", "t").expect("ops");
        let run = run_free_list(FreeSpaceConfig::new(0, 10), &ops, Steps::Every).expect("run");
        let outcomes: Vec<Outcome> = run.steps.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Allocated,
                Outcome::Failed,
                Outcome::FreeNull,
                Outcome::Freed
            ]
        );
        assert_eq!(run.totals.failures, 1);
        assert_eq!(run.steps[3].free_list, [Block { addr: 0, size: 10 }]);
    }

    #[test]
    fn buddy_too_large_is_an_error() {
        let ops = parse_ops("a65", "t").expect("ops");
        let cfg = BuddyLabConfig {
            first: 0,
            pages: 64,
            max_order: 6,
        };
        assert!(matches!(
            run_buddy(cfg, &ops, Steps::Every),
            Err(LabError::BuddyTooLarge { order: 7, .. })
        ));
    }
}
