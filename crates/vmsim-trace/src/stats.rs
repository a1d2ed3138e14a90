//! Summary statistics of a trace: what `vmsim trace stats` prints.
//!
//! Owns the counting only (one pass, memory proportional to the distinct
//! pages, not to the trace). Pages are counted two ways: by the page of each
//! access's start address (how the reference README counts them) and by
//! every page any byte of an access spans.

use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::access::{Access, AccessKind};
use crate::error::TraceError;
use crate::source::{BATCH, TraceSource};

/// log2 of 4 KiB.
const SHIFT_4K: u32 = 12;
/// log2 of 2 MiB.
const SHIFT_2M: u32 = 21;

/// The counts of one trace. Field names are the stable `--json` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TraceStats {
    /// All references (`instr + load + store + modify`).
    pub refs: u64,
    /// Instruction fetches.
    pub instr: u64,
    /// Data loads.
    pub load: u64,
    /// Data stores.
    pub store: u64,
    /// Modifies (load and store of the same bytes by one instruction).
    pub modify: u64,
    /// Distinct 4 KiB pages of the start addresses.
    pub pages_4k: u64,
    /// Distinct 2 MiB pages of the start addresses.
    pub pages_2m: u64,
    /// `pages_4k * 4096`: the bytes of memory the trace touches at 4 KiB granularity.
    pub footprint_bytes: u64,
    /// Distinct 4 KiB pages counting every byte each access spans.
    pub spanned_pages_4k: u64,
    /// Distinct 2 MiB pages counting every byte each access spans.
    pub spanned_pages_2m: u64,
    /// Accesses whose bytes cross a 4 KiB boundary.
    pub crossing_4k: u64,
}

/// Accumulates [`TraceStats`] batch by batch.
#[derive(Debug, Default)]
pub struct StatsBuilder {
    by_kind: [u64; 4],
    start_4k: FxHashSet<u64>,
    start_2m: FxHashSet<u64>,
    /// Pages reached only past the start page of some access.
    tail_4k: FxHashSet<u64>,
    tail_2m: FxHashSet<u64>,
    crossing_4k: u64,
    last_4k: Option<u64>,
}

impl StatsBuilder {
    /// An empty accumulator.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one access.
    #[inline]
    pub fn add(&mut self, a: &Access) {
        self.by_kind[a.kind.code() as usize] += 1;
        let (first, last) = a.pages(SHIFT_4K);
        // Consecutive accesses usually hit the same page: skip the hash then.
        if self.last_4k != Some(first) {
            self.last_4k = Some(first);
            if self.start_4k.insert(first) {
                self.start_2m.insert(a.va >> SHIFT_2M);
            }
        }
        if last != first {
            self.crossing_4k += 1;
            for p in first + 1..=last {
                self.tail_4k.insert(p);
            }
            let (f2, l2) = a.pages(SHIFT_2M);
            for p in f2 + 1..=l2 {
                self.tail_2m.insert(p);
            }
        }
    }

    /// The statistics so far.
    #[must_use]
    pub fn finish(&self) -> TraceStats {
        let [instr, load, store, modify] = self.by_kind;
        let pages_4k = self.start_4k.len() as u64;
        let pages_2m = self.start_2m.len() as u64;
        let extra_4k = self
            .tail_4k
            .iter()
            .filter(|p| !self.start_4k.contains(p))
            .count() as u64;
        let extra_2m = self
            .tail_2m
            .iter()
            .filter(|p| !self.start_2m.contains(p))
            .count() as u64;
        TraceStats {
            refs: instr + load + store + modify,
            instr,
            load,
            store,
            modify,
            pages_4k,
            pages_2m,
            footprint_bytes: pages_4k << SHIFT_4K,
            spanned_pages_4k: pages_4k + extra_4k,
            spanned_pages_2m: pages_2m + extra_2m,
            crossing_4k: self.crossing_4k,
        }
    }
}

/// Reads `source` to its end and returns its statistics.
///
/// # Errors
/// The source's first error.
pub fn stats<S: TraceSource>(source: &mut S) -> Result<TraceStats, TraceError> {
    let mut b = StatsBuilder::new();
    let mut batch = Vec::with_capacity(BATCH);
    while source.next_batch(&mut batch)? > 0 {
        for a in &batch {
            b.add(a);
        }
    }
    Ok(b.finish())
}

impl TraceStats {
    /// The count for one kind.
    #[must_use]
    pub fn of_kind(&self, kind: AccessKind) -> u64 {
        match kind {
            AccessKind::Instr => self.instr,
            AccessKind::Load => self.load,
            AccessKind::Store => self.store,
            AccessKind::Modify => self.modify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(va: u64, size: u32, kind: AccessKind) -> Access {
        Access {
            va,
            pid: 1,
            size,
            kind,
        }
    }

    #[test]
    fn counts_kinds_and_pages_both_ways() {
        let mut b = StatsBuilder::new();
        for a in [
            acc(0x1000, 4, AccessKind::Instr),
            acc(0x1004, 4, AccessKind::Load),
            acc(0x2ffe, 4, AccessKind::Store), // crosses into 0x3000
            acc(0x1000, 4, AccessKind::Modify),
            acc(0x1f_ffff, 2, AccessKind::Load), // crosses a 2 MiB boundary
        ] {
            b.add(&a);
        }
        let s = b.finish();
        assert_eq!(
            (s.refs, s.instr, s.load, s.store, s.modify),
            (5, 1, 2, 1, 1)
        );
        assert_eq!(s.pages_4k, 3); // 0x1, 0x2, 0x1ff
        assert_eq!(s.spanned_pages_4k, 5); // + 0x3, 0x200
        assert_eq!((s.pages_2m, s.spanned_pages_2m), (1, 2));
        assert_eq!(s.footprint_bytes, 3 * 4096);
        assert_eq!(s.crossing_4k, 2);
    }
}
