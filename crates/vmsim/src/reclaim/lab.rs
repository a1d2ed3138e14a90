//! The policy lab: reference strings of page numbers, no TLB, no page tables.
//!
//! Text format: [`vmsim_trace::pagenum`] (page numbers separated by
//! whitespace or commas, `#` comments, a `w` suffix for a write).
//! [`DenseTrace::parse`] reads it and maps page numbers to dense ids in one
//! pass ([`vmsim_trace::DenseMap`]); [`DenseTrace::read`] does the same from
//! any trace input as page references ([`vmsim_trace::PageSource`]: lackey,
//! `.vmt`, `synth:`, page-number files); [`DenseTrace::new`] from numbers;
//! [`parse_refs`] only parses. [`run`] picks the policy once and calls the monomorphised
//! [`simulate`]; it reports totals, and per reference only when asked
//! ([`Detail`]), so the fast path records nothing.

use std::num::{NonZeroU64, NonZeroUsize};

use thiserror::Error;
use vmsim_trace::{DenseMap, PageSource, TraceError};

use super::{
    AccessBits, Aging, Arc, Clock, ClockPro, Fifo, LabBits, Lfu, Linux, Lirs, Lru, Mru, NEVER,
    Note, Nru, Opt, Policy, PolicyConfig, PolicyKind, Random, RefTime, S3Fifo, Sieve, Ties, TwoQ,
    Unopt,
};

/// A reference string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabError {
    /// A token that is not a page number.
    #[error(
        "{source_name}:{line}: '{token}' is not a page number (expected decimal or 0x hex, optionally followed by w for a write)"
    )]
    BadToken {
        /// File name (or `--refs`) the text came from.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The offending token.
        token: String,
    },
    /// More distinct pages than dense `u32` ids.
    #[error("{source_name}: more than 2^32 - 2 distinct pages")]
    TooManyPages {
        /// File name (or `--refs`) the text came from.
        source_name: String,
    },
}

/// A reference string with page numbers replaced by dense ids `0..n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenseTrace {
    ids: Vec<u32>,
    pages: Vec<u64>,
    /// The pid of each id; empty when every page belongs to one process.
    pids: Vec<u32>,
    /// One bit per reference, set for writes; empty if there are none.
    writes: Vec<u64>,
}

impl DenseTrace {
    /// The dense form of `pages` (`writes`, if not empty, has one flag per
    /// reference).
    ///
    /// # Errors
    /// More than `u32::MAX` distinct pages.
    pub fn new(pages: &[u64], writes: &[bool], source_name: &str) -> Result<Self, LabError> {
        let mut b = Builder::with_capacity(pages.len());
        for (i, &p) in pages.iter().enumerate() {
            b.push(p, writes.get(i).copied().unwrap_or(false), source_name)?;
        }
        Ok(b.finish())
    }

    /// Parses page numbers from `text` (see the module docs) straight into
    /// dense form, in one pass. Errors name `source_name` and the line.
    ///
    /// # Errors
    /// A token that is not a page number; more than `u32::MAX` distinct pages.
    pub fn parse(text: &[u8], source_name: &str) -> Result<Self, LabError> {
        let mut b = Builder::with_capacity(text.len() / 4);
        tokens(text, source_name, |p, w| b.push(p, w, source_name))?;
        Ok(b.finish())
    }

    /// Reads every page reference of `source` (see [`vmsim_trace::pages`])
    /// into dense form, in one pass. Returns the trace and the number of
    /// accesses read (fewer than references when accesses straddle pages).
    ///
    /// # Errors
    /// The reader's error; more than `u32::MAX - 1` distinct pages.
    pub fn read(source: &mut PageSource, name: &str) -> Result<(Self, u64), TraceError> {
        let mut b = Builder::with_capacity(1 << 16);
        let accesses = source.for_each(|r| {
            b.push_pid(r.pid, r.page, r.write)
                .ok_or_else(|| TraceError::TooManyPages { path: name.into() })
        })?;
        Ok((b.finish(), accesses))
    }

    /// The dense id of each reference.
    #[must_use]
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The page number of each id.
    #[must_use]
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// The pid of each id, or empty when every page belongs to one process.
    #[must_use]
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Number of distinct pages (ids are `0..n_ids`).
    #[must_use]
    pub fn n_ids(&self) -> usize {
        self.pages.len()
    }

    /// Number of references.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no references.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether reference `i` is a write.
    #[inline]
    #[must_use]
    pub fn is_write(&self, i: usize) -> bool {
        !self.writes.is_empty() && self.writes[i / 64] >> (i % 64) & 1 == 1
    }

    /// The references to the ids `keep` accepts (asked once per id), with
    /// ids renumbered densely in order of first reference.
    #[must_use]
    pub fn filter(&self, mut keep: impl FnMut(u32) -> bool) -> Self {
        const DROP: u32 = u32::MAX;
        const UNSEEN: u32 = u32::MAX - 1;
        let mut new_id = vec![UNSEEN; self.n_ids()];
        let mut out = Self::default();
        let mut writes = Vec::new();
        for (i, &id) in self.ids.iter().enumerate() {
            let slot = &mut new_id[id as usize];
            if *slot == UNSEEN {
                *slot = if keep(id) {
                    out.pages.push(self.pages[id as usize]);
                    if let Some(&p) = self.pids.get(id as usize) {
                        out.pids.push(p);
                    }
                    (out.pages.len() - 1) as u32
                } else {
                    DROP
                };
            }
            if *slot != DROP {
                writes.push(self.is_write(i));
                out.ids.push(*slot);
            }
        }
        if writes.iter().any(|&w| w) {
            out.writes = vec![0; out.ids.len().div_ceil(64)];
            for (i, _) in writes.iter().enumerate().filter(|(_, w)| **w) {
                out.writes[i / 64] |= 1 << (i % 64);
            }
        }
        out
    }

    /// For each reference, the index of the next reference to the same page
    /// or [`NEVER`]: one backward pass.
    #[must_use]
    pub fn next_uses(&self) -> Vec<u64> {
        let mut last = vec![NEVER; self.n_ids()];
        // Every element is written below: a zeroed allocation (pages the
        // system hands out zeroed) saves a pass over 8 bytes per reference.
        let mut next = vec![0; self.ids.len()];
        for (i, &id) in self.ids.iter().enumerate().rev() {
            next[i] = std::mem::replace(&mut last[id as usize], i as u64);
        }
        next
    }
}

/// Page numbers -> dense ids, plus the references and write bits.
#[derive(Debug, Default)]
struct Builder {
    map: DenseMap,
    ids: Vec<u32>,
    writes: Vec<u64>,
}

impl Builder {
    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    #[inline]
    fn push(&mut self, page: u64, write: bool, source_name: &str) -> Result<(), LabError> {
        self.push_pid(0, page, write)
            .ok_or_else(|| LabError::TooManyPages {
                source_name: source_name.to_owned(),
            })
    }

    #[inline]
    fn push_pid(&mut self, pid: u32, page: u64, write: bool) -> Option<()> {
        let id = self.map.id(pid, page)?;
        if write {
            let i = self.ids.len();
            if self.writes.len() <= i / 64 {
                self.writes.resize(i / 64 + 1, 0);
            }
            self.writes[i / 64] |= 1 << (i % 64);
        }
        self.ids.push(id);
        Some(())
    }

    fn finish(mut self) -> DenseTrace {
        if !self.writes.is_empty() {
            self.writes.resize(self.ids.len().div_ceil(64), 0);
        }
        let (pages, pids) = self.map.into_keys();
        DenseTrace {
            ids: self.ids,
            pages,
            pids,
            writes: self.writes,
        }
    }
}

/// Parses page numbers from `text` (see the module docs); errors name
/// `source_name` and the line. Returns the pages and, if any reference is a
/// write, one write flag per reference (else an empty vector).
///
/// # Errors
/// A token that is not a page number.
pub fn parse_refs(text: &[u8], source_name: &str) -> Result<(Vec<u64>, Vec<bool>), LabError> {
    let mut pages = Vec::new();
    let mut writes: Vec<bool> = Vec::new();
    let mut any_write = false;
    tokens(text, source_name, |p, w| {
        if w && !any_write {
            any_write = true;
            writes = vec![false; pages.len()];
        }
        if any_write {
            writes.push(w);
        }
        pages.push(p);
        Ok(())
    })?;
    Ok((pages, writes))
}

/// The tokenizer ([`vmsim_trace::pagenum::tokens`]): calls `f(page,
/// is_write)` for each reference in `text`.
fn tokens<F>(text: &[u8], source_name: &str, f: F) -> Result<(), LabError>
where
    F: FnMut(u64, bool) -> Result<(), LabError>,
{
    vmsim_trace::pagenum::tokens(text, 1, f, |b| LabError::BadToken {
        source_name: source_name.to_owned(),
        line: usize::try_from(b.line).unwrap_or(usize::MAX),
        token: b.token,
    })?;
    Ok(())
}

/// How much to report per reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Nothing: totals only (the fast path).
    Totals,
    /// Hit or miss and the evicted id.
    Outcomes,
    /// Also the resident ids after the reference, in the policy's order.
    Contents,
    /// Also each resident page's A/D bits and the policy's [`Note`] (for
    /// the step-through page; O(resident) per reference).
    State,
}

/// A resident page after a reference, as [`Detail::State`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageState {
    /// The accessed bit (as the lab's hardware and the policy left it).
    pub accessed: bool,
    /// The dirty bit.
    pub dirty: bool,
    /// What the policy keeps about the page.
    pub note: Note,
}

/// What happened at one reference.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Index of the reference.
    pub index: usize,
    /// The referenced id.
    pub id: u32,
    /// Whether it was resident.
    pub hit: bool,
    /// The id evicted to make room, if any.
    pub evicted: Option<u32>,
    /// Resident ids after the reference (empty unless [`Detail::Contents`]
    /// or [`Detail::State`]).
    pub resident: &'a [u32],
    /// The state of each page of `resident`, in the same order (empty
    /// unless [`Detail::State`]).
    pub state: &'a [PageState],
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// References.
    pub refs: u64,
    /// References to resident pages.
    pub hits: u64,
    /// References that faulted.
    pub misses: u64,
    /// Pages evicted (misses beyond the first `frames` distinct pages).
    pub evictions: u64,
}

/// Runs `policy` over `trace` with `frames` frames. `next_use` is required
/// when `P::NEEDS_FUTURE` (see [`DenseTrace::next_uses`]). `each` is called
/// per reference unless `detail` is [`Detail::Totals`].
/// `keep_tlb_entry_on_clear` models an OS that clears A without
/// invalidating the TLB entry (see [`LabBits`]).
///
/// # Panics
/// If `P::NEEDS_FUTURE` and `next_use` is `None` or of the wrong length
/// (a caller bug).
pub fn simulate<P: Policy, F: FnMut(&Step<'_>)>(
    policy: &mut P,
    trace: &DenseTrace,
    frames: NonZeroUsize,
    next_use: Option<&[u64]>,
    keep_tlb_entry_on_clear: bool,
    detail: Detail,
    each: F,
) -> Totals {
    simulate_first(
        policy,
        trace,
        frames,
        next_use,
        keep_tlb_entry_on_clear,
        detail,
        usize::MAX,
        each,
    )
}

/// [`simulate`], reporting only the first `first` references (then the
/// rest runs as with [`Detail::Totals`]).
///
/// # Panics
/// As [`simulate`].
#[allow(clippy::too_many_arguments)]
pub fn simulate_first<P: Policy, F: FnMut(&Step<'_>)>(
    policy: &mut P,
    trace: &DenseTrace,
    frames: NonZeroUsize,
    next_use: Option<&[u64]>,
    keep_tlb_entry_on_clear: bool,
    detail: Detail,
    first: usize,
    each: F,
) -> Totals {
    let next_use = future_of::<P>(trace, next_use);
    let mut lab = Lab::new(policy, trace, frames, keep_tlb_entry_on_clear);
    let detailed = if detail == Detail::Totals {
        0
    } else {
        first.min(trace.len())
    };
    lab.detailed(trace, next_use, detail, detailed, each);
    lab.fast(trace, next_use, detailed, |_, _| {});
    lab.totals(trace)
}

/// The next uses `P` needs (checked against `trace`), or nothing.
fn future_of<'a, P: Policy>(trace: &DenseTrace, next_use: Option<&'a [u64]>) -> &'a [u64] {
    if P::NEEDS_FUTURE {
        let nu = next_use.expect("policy needs next uses");
        assert_eq!(nu.len(), trace.len(), "next uses of another trace");
        nu
    } else {
        &[][..]
    }
}

/// The lab's machine while a trace runs: the policy, the A/D bits and
/// residency, the frames in use, the counts and the timer.
struct Lab<'p, P: Policy> {
    policy: &'p mut P,
    bits: LabBits,
    frames: usize,
    used: usize,
    t: Totals,
    tick: Option<u64>,
    countdown: u64,
}

impl<'p, P: Policy> Lab<'p, P> {
    fn new(
        policy: &'p mut P,
        trace: &DenseTrace,
        frames: NonZeroUsize,
        keep_tlb_entry_on_clear: bool,
    ) -> Self {
        let tick = policy.tick_interval().map(NonZeroU64::get);
        Self {
            policy,
            bits: LabBits::new(trace.n_ids(), keep_tlb_entry_on_clear),
            frames: frames.get(),
            used: 0,
            t: Totals::default(),
            tick,
            countdown: tick.unwrap_or(u64::MAX),
        }
    }

    /// A fault on `id` at `at`: evicts if memory is full, loads `id`.
    /// Returns the evicted id.
    #[inline]
    fn miss(&mut self, id: u32, write: bool, at: RefTime) -> Option<u32> {
        self.t.misses += 1;
        let mut evicted = None;
        if self.used == self.frames {
            let v = self.policy.victim(id, &mut self.bits);
            debug_assert!(self.bits.is_resident(v), "victim {v} not resident");
            self.bits.forget(v);
            self.t.evictions += 1;
            evicted = Some(v);
        } else {
            self.used += 1;
        }
        self.bits.load(id, write);
        self.policy.on_insert(id, at, &mut self.bits);
        evicted
    }

    /// The timer, after each reference.
    #[inline]
    fn after_reference(&mut self) {
        if let Some(tick) = self.tick {
            self.countdown -= 1;
            if self.countdown == 0 {
                self.policy.on_tick(&mut self.bits);
                self.countdown = tick;
            }
        }
    }

    /// References `0..end`, each reported to `each` at `detail` (every
    /// hit goes to the policy).
    fn detailed<F: FnMut(&Step<'_>)>(
        &mut self,
        trace: &DenseTrace,
        next_use: &[u64],
        detail: Detail,
        end: usize,
        mut each: F,
    ) {
        let mut contents = Vec::new();
        let mut states = Vec::new();
        for (i, &id) in trace.ids[..end].iter().enumerate() {
            let at = RefTime {
                now: i as u64,
                next_use: if P::NEEDS_FUTURE { next_use[i] } else { NEVER },
            };
            let write = trace.is_write(i);
            let hit = self.bits.is_resident(id);
            let mut evicted = None;
            if hit {
                self.t.hits += 1;
                self.bits.touch(id, write);
                if P::SEES_EVERY_ACCESS {
                    self.policy.on_hit(id, at, &mut self.bits);
                }
            } else {
                evicted = self.miss(id, write, at);
            }
            self.after_reference();
            contents.clear();
            states.clear();
            if detail != Detail::Outcomes {
                self.policy.resident(&mut contents);
            }
            if detail == Detail::State {
                states.extend(contents.iter().map(|&r| PageState {
                    accessed: self.bits.is_accessed(r),
                    dirty: self.bits.is_dirty(r),
                    note: self.policy.note(r),
                }));
            }
            each(&Step {
                index: i,
                id,
                hit,
                evicted,
                resident: &contents,
                state: &states,
            });
        }
    }

    /// References `start..`, reporting only evictions (`evicted(index,
    /// id)`; nothing in production): the fast path. A hit the policy
    /// absorbs into the next reference
    /// ([`Policy::ABSORBS_HIT_BEFORE_REPEAT`]) is not passed on.
    #[inline]
    fn fast<E: FnMut(usize, u32)>(
        &mut self,
        trace: &DenseTrace,
        next_use: &[u64],
        start: usize,
        mut evicted: E,
    ) {
        let ids = &trace.ids[..];
        let has_writes = !trace.writes.is_empty();
        for i in start..ids.len() {
            let id = ids[i];
            let write = has_writes && trace.is_write(i);
            if self.bits.is_resident(id) {
                self.t.hits += 1;
                self.bits.touch(id, write);
                if P::SEES_EVERY_ACCESS
                    && !(P::ABSORBS_HIT_BEFORE_REPEAT && ids.get(i + 1) == Some(&id))
                {
                    let at = RefTime {
                        now: i as u64,
                        next_use: if P::NEEDS_FUTURE { next_use[i] } else { NEVER },
                    };
                    self.policy.on_hit(id, at, &mut self.bits);
                }
            } else {
                let at = RefTime {
                    now: i as u64,
                    next_use: if P::NEEDS_FUTURE { next_use[i] } else { NEVER },
                };
                if let Some(v) = self.miss(id, write, at) {
                    evicted(i, v);
                }
            }
            self.after_reference();
        }
    }

    fn totals(&self, trace: &DenseTrace) -> Totals {
        Totals {
            refs: trace.len() as u64,
            ..self.t
        }
    }
}

/// Runs the policy `kind` (chosen once, here) over `trace`; see [`simulate`].
pub fn run<F: FnMut(&Step<'_>)>(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    trace: &DenseTrace,
    frames: NonZeroUsize,
    detail: Detail,
    each: F,
) -> Totals {
    run_first(kind, cfg, trace, frames, detail, usize::MAX, each)
}

/// [`run`], reporting only the first `first` references at `detail` (the
/// step-through page of a long trace: the whole trace runs, its beginning
/// is shown).
pub fn run_first<F: FnMut(&Step<'_>)>(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    trace: &DenseTrace,
    frames: NonZeroUsize,
    detail: Detail,
    first: usize,
    each: F,
) -> Totals {
    let nu = kind.needs_future().then(|| trace.next_uses());
    run_with_future(kind, cfg, trace, nu.as_deref(), frames, detail, first, each)
}

/// [`run_first`] with the next uses computed by the caller
/// ([`DenseTrace::next_uses`]; needed when [`PolicyKind::needs_future`]),
/// so that a benchmark can time the pass that finds them apart from the
/// simulation.
///
/// # Panics
/// If the policy needs the future and `next_use` is `None` or of another
/// trace (a caller bug).
#[allow(clippy::too_many_arguments)]
pub fn run_with_future<F: FnMut(&Step<'_>)>(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    trace: &DenseTrace,
    next_use: Option<&[u64]>,
    frames: NonZeroUsize,
    detail: Detail,
    first: usize,
    each: F,
) -> Totals {
    let n = trace.n_ids();
    let f = frames.get();
    let future = if kind.needs_future() { next_use } else { None };
    macro_rules! go {
        ($p:expr) => {{
            let mut p = $p;
            simulate_first(
                &mut p,
                trace,
                frames,
                future,
                cfg.keep_tlb_entry_on_clear,
                detail,
                first,
                each,
            )
        }};
    }
    let ties = cfg.ties.or(kind.default_ties()).unwrap_or(Ties::Oldest);
    match kind {
        PolicyKind::Fifo => go!(Fifo::new(n)),
        PolicyKind::Lru => go!(Lru::new(n)),
        PolicyKind::Clock => go!(Clock::new(n, cfg.clock_insert)),
        PolicyKind::Nru => go!(Nru::new(n)),
        PolicyKind::Aging => {
            let tick = cfg
                .tick
                .unwrap_or(NonZeroU64::new(f as u64).unwrap_or(NonZeroU64::MIN));
            go!(Aging::new(n, tick).with_ties(ties))
        }
        PolicyKind::Random => go!(Random::new(n, cfg.seed)),
        PolicyKind::Opt => go!(Opt::for_string(&trace.ids, n).with_ties(ties)),
        PolicyKind::Unopt => go!(Unopt::new(n).with_ties(ties)),
        PolicyKind::Mru => go!(Mru::new(n)),
        PolicyKind::Lfu => go!(Lfu::new(n).with_ties(ties)),
        PolicyKind::Linux => go!(Linux::new(n)),
        PolicyKind::Arc => go!(Arc::new(n, f)),
        PolicyKind::TwoQ => go!(TwoQ::new(n, f)),
        PolicyKind::Lirs => go!(Lirs::new(n, f)),
        PolicyKind::ClockPro => go!(ClockPro::new(n, f)),
        PolicyKind::Sieve => go!(Sieve::new(n)),
        PolicyKind::S3Fifo => go!(S3Fifo::new(n, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reclaim::lru::reference::ListLru;
    use crate::reclaim::opt::reference::HeapOpt;
    use proptest::prelude::*;

    /// Every eviction (index, id) and the totals of `policy` over `trace`,
    /// through the fast path (`fast`) or with every hit passed on, as
    /// before hits were absorbed (the detailed path at
    /// [`Detail::Outcomes`], the oracle).
    fn evictions<P: Policy>(
        mut policy: P,
        trace: &DenseTrace,
        frames: usize,
        fast: bool,
    ) -> (Totals, Vec<(usize, u32)>) {
        let nu = trace.next_uses();
        let next_use = future_of::<P>(trace, Some(&nu));
        let nz = NonZeroUsize::new(frames).expect("nonzero");
        let mut lab = Lab::new(&mut policy, trace, nz, false);
        let mut ev = Vec::new();
        if fast {
            lab.fast(trace, next_use, 0, |i, v| ev.push((i, v)));
        } else {
            lab.detailed(trace, next_use, Detail::Outcomes, trace.len(), |s| {
                if let Some(v) = s.evicted {
                    ev.push((s.index, v));
                }
            });
        }
        (lab.totals(trace), ev)
    }

    proptest! {
        /// The fast path (hits absorbed into the next reference to the same
        /// page) chooses every victim as the per-reference loop does, for
        /// each policy that absorbs, over random strings full of repeats.
        #[test]
        fn absorbed_hits_change_no_choice(
            raw in proptest::collection::vec((0u64..40, 1usize..4, any::<bool>()), 1..300),
            frames in 1usize..24,
        ) {
            let mut pages = Vec::new();
            let mut writes = Vec::new();
            for (p, run, w) in raw {
                for _ in 0..run {
                    pages.push(p);
                    writes.push(w);
                }
            }
            let t = DenseTrace::new(&pages, &writes, "t").expect("small");
            let n = t.n_ids();
            macro_rules! same {
                ($p:expr) => {{
                    let a = evictions($p, &t, frames, true);
                    let b = evictions($p, &t, frames, false);
                    prop_assert_eq!(a, b, "{}", stringify!($p));
                }};
            }
            same!(Lru::new(n));
            same!(Mru::new(n));
            same!(Arc::new(n, frames));
            same!(Opt::for_string(t.ids(), n));
            same!(Opt::new(n));
            same!(Opt::for_string(t.ids(), n).with_ties(Ties::Newest));
            same!(Unopt::new(n));
            same!(Lirs::new(n, frames));
            same!(Lfu::new(n));
            // LRU's recency log chooses as the recency list it replaced.
            prop_assert_eq!(
                evictions(Lru::new(n), &t, frames, true),
                evictions(ListLru::new(n), &t, frames, false)
            );
            prop_assert_eq!(states(Lru::new(n), &t, frames), states(ListLru::new(n), &t, frames));
            // OPT keyed by times chooses as the heap-keyed OPT it
            // replaced, and shows the same order and next uses.
            for ties in Ties::ALL {
                let b = evictions(HeapOpt::new(n).with_ties(ties), &t, frames, false);
                let a = evictions(Opt::for_string(t.ids(), n).with_ties(ties), &t, frames, true);
                prop_assert_eq!(&a, &b, "{:?}", ties);
                let a = evictions(Opt::new(n).with_ties(ties), &t, frames, true);
                prop_assert_eq!(&a, &b, "{:?} without the string", ties);
                let want = states(HeapOpt::new(n).with_ties(ties), &t, frames);
                prop_assert_eq!(
                    &states(Opt::for_string(t.ids(), n).with_ties(ties), &t, frames),
                    &want,
                    "{:?}", ties
                );
                prop_assert_eq!(&states(Opt::new(n).with_ties(ties), &t, frames), &want, "{:?}", ties);
            }
        }
    }

    /// The resident pages in the policy's order with their notes, after
    /// every reference.
    fn states<P: Policy>(
        mut policy: P,
        trace: &DenseTrace,
        frames: usize,
    ) -> Vec<Vec<(u32, Note)>> {
        let nu = trace.next_uses();
        let next_use = future_of::<P>(trace, Some(&nu));
        let nz = NonZeroUsize::new(frames).expect("nonzero");
        let mut lab = Lab::new(&mut policy, trace, nz, false);
        let mut out = Vec::new();
        lab.detailed(trace, next_use, Detail::State, trace.len(), |s| {
            out.push(
                s.resident
                    .iter()
                    .zip(s.state)
                    .map(|(&id, st)| (id, st.note))
                    .collect(),
            );
        });
        out
    }

    fn trace(pages: &[u64]) -> DenseTrace {
        DenseTrace::new(pages, &[], "t").expect("small")
    }

    fn misses(kind: PolicyKind, pages: &[u64], frames: usize) -> u64 {
        let nz = NonZeroUsize::new(frames).expect("nonzero");
        run(
            kind,
            &PolicyConfig::default(),
            &trace(pages),
            nz,
            Detail::Totals,
            |_| {},
        )
        .misses
    }

    #[test]
    fn parse_accepts_separators_hex_comments_and_writes() {
        let (p, w) = parse_refs(b"1, 2\n0x10 3w # note\n\t4r", "f").expect("valid");
        assert_eq!(p, [1, 2, 16, 3, 4]);
        assert_eq!(w, [false, false, false, true, false]);
        let (_, w) = parse_refs(b"7w 8", "f").expect("valid");
        assert_eq!(w, [true, false]);
        let (p, w) = parse_refs(b"5 6", "f").expect("valid");
        assert_eq!(p, [5, 6]);
        assert!(w.is_empty());
        // The workspace's number syntax: 0b, 0o, `_`, upper-case prefixes.
        let (p, w) = parse_refs(b"0b101 0o17w 1_000#c\n0XFFr", "f").expect("valid");
        assert_eq!(p, [5, 15, 1000, 255]);
        assert_eq!(w, [false, true, false, false]);
        assert!(parse_refs(b"0x 1", "f").is_err());
        assert!(parse_refs(b"+1", "f").is_err());
        assert!(parse_refs(b"12b", "f").is_err());
    }

    #[test]
    fn parse_names_file_and_line_of_a_bad_token() {
        let e = parse_refs(b"1\n2\n3x 4\n", "refs.txt").expect_err("bad token");
        assert_eq!(
            e.to_string().split(" (").next(),
            Some("refs.txt:3: '3x' is not a page number")
        );
        assert!(parse_refs(b"-1", "f").is_err());
        assert!(parse_refs(b"0x", "f").is_err());
        assert!(parse_refs(b"99999999999999999999999", "f").is_err());
    }

    #[test]
    fn parse_and_new_give_the_same_trace() {
        let text = b"5 0x400000 7w 5 123456789012 0x400000 7";
        let (p, w) = parse_refs(text, "f").expect("valid");
        let a = DenseTrace::parse(text, "f").expect("valid");
        assert_eq!(a, DenseTrace::new(&p, &w, "f").expect("valid"));
        assert_eq!(a.ids(), [0, 1, 2, 0, 3, 1, 2]);
        assert_eq!(a.pages(), [5, 0x40_0000, 7, 123_456_789_012]);
        assert!(a.is_write(2) && !a.is_write(6));
    }

    #[test]
    fn next_uses_point_at_the_next_reference() {
        let t = trace(&[7, 8, 7, 9, 8]);
        assert_eq!(t.next_uses(), [2, 4, NEVER, NEVER, NEVER]);
    }

    #[test]
    fn belady_anomaly_fifo() {
        let s = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        assert_eq!(misses(PolicyKind::Fifo, &s, 3), 9);
        assert_eq!(misses(PolicyKind::Fifo, &s, 4), 10);
        assert_eq!(misses(PolicyKind::Opt, &s, 3), 7);
        assert_eq!(misses(PolicyKind::Opt, &s, 4), 6);
        assert_eq!(misses(PolicyKind::Lru, &s, 3), 10);
        assert_eq!(misses(PolicyKind::Lru, &s, 4), 8);
    }

    #[test]
    fn state_detail_reports_bits_and_notes_for_the_first_references_only() {
        let nz = NonZeroUsize::new(2).expect("nonzero");
        let t = DenseTrace::new(&[1, 2, 1, 3, 2], &[false, true, false, false, false], "t")
            .expect("small");
        let mut seen = Vec::new();
        let totals = run_first(
            PolicyKind::Arc,
            &PolicyConfig::default(),
            &t,
            nz,
            Detail::State,
            3,
            |s| seen.push((s.index, s.resident.to_vec(), s.state.to_vec())),
        );
        assert_eq!(
            totals,
            run(
                PolicyKind::Arc,
                &PolicyConfig::default(),
                &t,
                nz,
                Detail::Totals,
                |_| {}
            )
        );
        assert_eq!(seen.len(), 3, "only the first 3 references are reported");
        // After 1, 2, 1: page 2 (id 1) is in T1, page 1 (id 0) moved to T2;
        // page 2 was written.
        let (_, ids, states) = &seen[2];
        assert_eq!(ids, &[1, 0]);
        assert_eq!(states[0].note.list, Some("T1"));
        assert_eq!(states[1].note.list, Some("T2"));
        assert!(states[0].dirty && !states[1].dirty);
        assert!(states.iter().all(|s| s.accessed));
    }

    #[test]
    fn aging_ticks_fold_in_accessed_bits() {
        // 3 frames, tick every reference: 1 is referenced again, so 2 goes.
        let nz = NonZeroUsize::new(3).expect("nonzero");
        let cfg = PolicyConfig {
            tick: NonZeroU64::new(1),
            ..PolicyConfig::default()
        };
        let mut ev = Vec::new();
        run(
            PolicyKind::Aging,
            &cfg,
            &trace(&[1, 2, 3, 1, 4]),
            nz,
            Detail::Outcomes,
            |s| {
                ev.push(s.evicted);
            },
        );
        assert_eq!(ev[4], Some(1)); // id of page 2
    }
}
