//! Operation lists for allocator exercises, as OSTEP's `malloc.py -n N -r R
//! -P P` makes them: each operation is an allocation of 1 to `max_size`
//! units with probability `alloc_percent`, else a free of a random live
//! allocation (an allocation when nothing is live). Which allocations are
//! live is known by running the allocator the exercise is for while the
//! list is drawn, so a free never names a failed allocation.

use crate::addr::{PageSize, Pfn};
use crate::alloc::lab::BuddyLabConfig;
use crate::alloc::ops::HeapOp;
use crate::alloc::{Buddy, FrameAllocator, FreeSpace, FreeSpaceConfig, order_for_frames};

use super::{ExerciseError, Rng, percent};

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapExerciseSpec {
    /// Operations (1 to 100).
    pub ops: usize,
    /// Largest allocation (bytes, or pages for the buddy allocator).
    pub max_size: u64,
    /// Percent of operations that allocate.
    pub alloc_percent: u64,
}

/// The allocator the list is drawn against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapTarget {
    /// The textbook free list.
    FreeList(FreeSpaceConfig),
    /// The buddy allocator.
    Buddy(BuddyLabConfig),
}

enum Running {
    FreeList(FreeSpace),
    Buddy(Buddy),
}

/// An operation list with `rng` (see the module docs).
pub fn heap_ops(
    spec: &HeapExerciseSpec,
    target: HeapTarget,
    rng: &mut Rng,
) -> Result<Vec<HeapOp>, ExerciseError> {
    if spec.ops == 0 || spec.ops > 100 {
        return Err(ExerciseError::Parameter(format!(
            "{} operations: ask for 1 to 100",
            spec.ops
        )));
    }
    if spec.max_size == 0 || spec.alloc_percent == 0 || spec.alloc_percent > 100 {
        return Err(ExerciseError::Parameter(
            "the largest size must be at least 1 and the allocation percentage 1 to 100".into(),
        ));
    }
    let param = |e: String| ExerciseError::Parameter(e);
    if let HeapTarget::Buddy(cfg) = target
        && cfg.pages > 1 << 24
    {
        return Err(param(format!(
            "{} pages: a buddy exercise takes at most 2^24",
            cfg.pages
        )));
    }
    let mut running = match target {
        HeapTarget::FreeList(cfg) => Running::FreeList(FreeSpace::new(cfg)?),
        HeapTarget::Buddy(cfg) => Running::Buddy(Buddy::new(
            PageSize::SIZE_4K,
            Pfn::new(cfg.first),
            cfg.pages,
            cfg.max_order,
        )?),
    };
    if let HeapTarget::Buddy(cfg) = target
        && order_for_frames(spec.max_size).is_none_or(|o| o > cfg.max_order)
    {
        return Err(param(format!(
            "allocations of up to {} pages do not fit blocks of order {} at most",
            spec.max_size, cfg.max_order
        )));
    }
    let mut ops = Vec::with_capacity(spec.ops);
    // Live allocations: (allocation number, handle: pointer or first page, order).
    let mut live: Vec<(usize, u64, u32)> = Vec::new();
    let mut made = 0usize;
    while ops.len() < spec.ops {
        if live.is_empty() || percent(rng, spec.alloc_percent) {
            let n = 1 + rng.below(spec.max_size);
            let got = match &mut running {
                Running::FreeList(h) => h.alloc(n).ok().map(|a| (a.ptr, 0)),
                Running::Buddy(b) => {
                    order_for_frames(n).and_then(|o| b.alloc_order(o).map(|p| (p.as_u64(), o)))
                }
            };
            if let Some((h, o)) = got {
                live.push((made, h, o));
            }
            made += 1;
            ops.push(HeapOp::Alloc(n));
        } else {
            let (number, h, o) = live.swap_remove(rng.below(live.len() as u64) as usize);
            match &mut running {
                Running::FreeList(heap) => {
                    heap.free(h)?;
                }
                Running::Buddy(b) => b.try_free_order(Pfn::new(h), o)?,
            }
            ops.push(HeapOp::Free(number));
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::lab::{Outcome, Steps, run_free_list};

    #[test]
    fn frees_name_live_allocations_only() {
        let spec = HeapExerciseSpec {
            ops: 30,
            max_size: 10,
            alloc_percent: 50,
        };
        let cfg = FreeSpaceConfig::new(1000, 40);
        let ops = heap_ops(&spec, HeapTarget::FreeList(cfg), &mut Rng::new(3)).expect("ops");
        assert_eq!(ops.len(), 30);
        assert_eq!(
            ops,
            heap_ops(&spec, HeapTarget::FreeList(cfg), &mut Rng::new(3)).expect("ops")
        );
        let run = run_free_list(cfg, &ops, Steps::Every).expect("run");
        assert!(run.steps.iter().all(|s| s.outcome != Outcome::FreeNull));
    }
}
