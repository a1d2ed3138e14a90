//! Reproducible random exercises, as teachers set them every term: page
//! tables given as a memory dump and addresses to translate
//! ([`paging`]), segment registers and addresses ([`segments`]), reference
//! strings for replacement by hand ([`refs`]), allocation and free lists
//! ([`heap`]).
//!
//! Every choice comes from the workspace's one generator,
//! [`vmsim_trace::rng::Rng`] (xoshiro256** seeded by splitmix64), through
//! integer arithmetic only ([`Rng::below`]): no floating point, no hashing,
//! no iteration over hash maps. The same seed therefore makes the same
//! exercise on every platform and in every build.
//!
//! This module makes an exercise's *data* and nothing else. The answers come
//! from the engine paths the commands use (`paging::record_walk` as `vmsim
//! explain` walks, [`crate::segment::BookSegments`], [`crate::reclaim::lab`],
//! [`crate::alloc::lab`]), called by the front end: an exercise and its
//! answer can never disagree with what the commands say.

pub mod heap;
pub mod paging;
pub mod refs;
pub mod segments;

use thiserror::Error;
pub use vmsim_trace::rng::Rng;

pub use heap::{HeapExerciseSpec, heap_ops};
pub use paging::{PagingExercise, PagingSpec};
pub use refs::{RefsSpec, reference_string};
pub use segments::{SegmentExercise, SegmentExerciseSpec, SegmentModel};

/// An exercise that cannot be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExerciseError {
    /// A parameter outside what makes an exercise.
    #[error("{0}")]
    Parameter(String),
    /// The physical memory is too small for the tables and pages asked for.
    #[error("{0}")]
    NoRoom(String),
    /// The segment table asked for cannot be set up.
    #[error(transparent)]
    Segments(#[from] crate::segment::BookError),
    /// The free-list heap asked for cannot be set up or refused a free.
    #[error(transparent)]
    Heap(#[from] crate::alloc::FreeSpaceError),
    /// The buddy allocator asked for cannot be set up or refused a free.
    #[error(transparent)]
    Buddy(#[from] crate::alloc::BuddyError),
    /// The physical memory asked for cannot be created.
    #[error("memory: {0}")]
    Memory(#[source] crate::phys::MemError),
}

/// `k` distinct numbers from `0..n` in random order (all of them, shuffled,
/// if `k >= n`).
pub(crate) fn distinct(rng: &mut Rng, n: u64, k: u64) -> Vec<u64> {
    if k >= n {
        let mut all: Vec<u64> = (0..n).collect();
        rng.shuffle(&mut all);
        return all;
    }
    // Floyd's algorithm: k draws, no table of size n.
    let mut chosen: Vec<u64> = Vec::with_capacity(k as usize);
    for j in n - k..n {
        let t = rng.below(j + 1);
        if chosen.contains(&t) {
            chosen.push(j);
        } else {
            chosen.push(t);
        }
    }
    rng.shuffle(&mut chosen);
    chosen
}

/// True with probability `percent` / 100 (integer arithmetic).
pub(crate) fn percent(rng: &mut Rng, percent: u64) -> bool {
    rng.below(100) < percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_gives_distinct_numbers_below_n() {
        let mut rng = Rng::new(7);
        for (n, k) in [(10, 3), (5, 5), (5, 9), (1000, 20)] {
            let v = distinct(&mut rng, n, k);
            assert_eq!(v.len() as u64, k.min(n));
            assert!(v.iter().all(|&x| x < n));
            let mut s = v.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), v.len());
        }
    }

    #[test]
    fn the_generator_is_the_published_one() {
        // Rng::new(1) is splitmix64-seeded xoshiro256**: its first outputs
        // are fixed for every platform (this pins the exercises to them).
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let xa: Vec<u64> = (0..4).map(|_| a.below(1000)).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.below(1000)).collect();
        assert_eq!(xa, xb);
    }
}
