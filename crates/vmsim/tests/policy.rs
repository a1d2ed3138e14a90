//! Replacement policies through the lab: course examples, reference models
//! (brute force), OPT optimality, and invariants every policy must keep.

use std::collections::{HashSet, VecDeque};
use std::num::{NonZeroU64, NonZeroUsize};

use proptest::prelude::*;
use vmsim::reclaim::lab::{self, DenseTrace, Detail};
use vmsim::reclaim::{
    ClockInsert, LabBits, NEVER, Policy, PolicyConfig, PolicyKind, RefTime, Ties,
};

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("frames >= 1")
}

fn dense(pages: &[u64]) -> DenseTrace {
    DenseTrace::new(pages, &[], "test").expect("small trace")
}

fn misses_cfg(kind: PolicyKind, cfg: &PolicyConfig, pages: &[u64], frames: usize) -> u64 {
    lab::run(kind, cfg, &dense(pages), nz(frames), Detail::Totals, |_| {}).misses
}

fn misses(kind: PolicyKind, pages: &[u64], frames: usize) -> u64 {
    misses_cfg(kind, &PolicyConfig::default(), pages, frames)
}

/// (hit, evicted page) per reference.
fn outcomes(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    pages: &[u64],
    frames: usize,
) -> Vec<(bool, Option<u64>)> {
    let t = dense(pages);
    let mut v = Vec::new();
    lab::run(kind, cfg, &t, nz(frames), Detail::Outcomes, |s| {
        v.push((s.hit, s.evicted.map(|id| t.pages()[id as usize])));
    });
    v
}

// ---------------------------------------------------------------- course examples

#[test]
fn lru_quiz_misses_every_reference() {
    // course-examples.md: 11 pages accessed 0..10, then again 0..10, 10 frames.
    let refs: Vec<u64> = (0..=10).chain(0..=10).collect();
    assert_eq!(refs.len(), 22);
    assert_eq!(misses(PolicyKind::Lru, &refs, 10), 22);
}

#[test]
fn fifo_belady_anomaly() {
    let refs = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
    assert_eq!(misses(PolicyKind::Fifo, &refs, 3), 9);
    assert_eq!(misses(PolicyKind::Fifo, &refs, 4), 10);
}

// ---------------------------------------------------------------- reference models

/// LRU as a Vec ordered least recent first.
fn lru_model(refs: &[u64], frames: usize) -> Vec<(bool, Option<u64>)> {
    let mut mem: Vec<u64> = Vec::new();
    refs.iter()
        .map(|&p| {
            if let Some(i) = mem.iter().position(|&x| x == p) {
                mem.remove(i);
                mem.push(p);
                (true, None)
            } else {
                let ev = (mem.len() == frames).then(|| mem.remove(0));
                mem.push(p);
                (false, ev)
            }
        })
        .collect()
}

/// MRU as a Vec ordered least recent first.
fn mru_model(refs: &[u64], frames: usize) -> Vec<(bool, Option<u64>)> {
    let mut mem: Vec<u64> = Vec::new();
    refs.iter()
        .map(|&p| {
            if let Some(i) = mem.iter().position(|&x| x == p) {
                mem.remove(i);
                mem.push(p);
                (true, None)
            } else {
                let ev = (mem.len() == frames).then(|| mem.pop().expect("full"));
                mem.push(p);
                (false, ev)
            }
        })
        .collect()
}

/// FIFO as a VecDeque.
fn fifo_model(refs: &[u64], frames: usize) -> Vec<(bool, Option<u64>)> {
    let mut mem: VecDeque<u64> = VecDeque::new();
    refs.iter()
        .map(|&p| {
            if mem.contains(&p) {
                (true, None)
            } else {
                let ev = if mem.len() == frames {
                    mem.pop_front()
                } else {
                    None
                };
                mem.push_back(p);
                (false, ev)
            }
        })
        .collect()
}

/// The textbook clock: a fixed array of frames, a hand, a reference bit per
/// frame. `set_on_load` chooses the reference bit of a loaded page.
fn clock_model(refs: &[u64], frames: usize, set_on_load: bool) -> Vec<(bool, Option<u64>)> {
    let mut page: Vec<Option<u64>> = vec![None; frames];
    let mut rbit = vec![false; frames];
    let mut hand = 0usize;
    refs.iter()
        .map(|&p| {
            if let Some(i) = page.iter().position(|&x| x == Some(p)) {
                rbit[i] = true;
                return (true, None);
            }
            if let Some(i) = page.iter().position(Option::is_none) {
                page[i] = Some(p);
                rbit[i] = set_on_load;
                return (false, None);
            }
            while rbit[hand] {
                rbit[hand] = false;
                hand = (hand + 1) % frames;
            }
            let ev = page[hand].replace(p);
            rbit[hand] = set_on_load;
            hand = (hand + 1) % frames;
            (false, ev)
        })
        .collect()
}

/// Belady's OPT by scanning the future at each eviction (O(n) per miss).
fn opt_model_misses(refs: &[u64], frames: usize) -> u64 {
    let mut mem: Vec<u64> = Vec::new();
    let mut m = 0;
    for (i, &p) in refs.iter().enumerate() {
        if mem.contains(&p) {
            continue;
        }
        m += 1;
        if mem.len() == frames {
            let far = |q: u64| {
                refs[i + 1..]
                    .iter()
                    .position(|&r| r == q)
                    .unwrap_or(usize::MAX)
            };
            let (vi, _) = mem
                .iter()
                .enumerate()
                .max_by_key(|&(_, &q)| far(q))
                .expect("full");
            mem.swap_remove(vi);
        }
        mem.push(p);
    }
    m
}

/// The true minimum number of misses over every possible eviction choice
/// (exhaustive search; tiny inputs only).
fn exhaustive_min_misses(refs: &[u64], frames: usize) -> u64 {
    fn go(refs: &[u64], i: usize, mem: &mut Vec<u64>, frames: usize, best: &mut u64, so_far: u64) {
        if so_far >= *best {
            return;
        }
        if i == refs.len() {
            *best = so_far;
            return;
        }
        let p = refs[i];
        if mem.contains(&p) {
            return go(refs, i + 1, mem, frames, best, so_far);
        }
        if mem.len() < frames {
            mem.push(p);
            go(refs, i + 1, mem, frames, best, so_far + 1);
            mem.pop();
            return;
        }
        for k in 0..mem.len() {
            let old = std::mem::replace(&mut mem[k], p);
            go(refs, i + 1, mem, frames, best, so_far + 1);
            mem[k] = old;
        }
    }
    let mut best = u64::MAX;
    go(refs, 0, &mut Vec::new(), frames, &mut best, 0);
    best
}

fn refs_strategy(max_page: u64, max_len: usize) -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0..max_page, 0..max_len)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn lru_fifo_mru_clock_match_their_models(refs in refs_strategy(12, 200), frames in 1usize..8) {
        let d = PolicyConfig::default();
        prop_assert_eq!(outcomes(PolicyKind::Lru, &d, &refs, frames), lru_model(&refs, frames));
        prop_assert_eq!(outcomes(PolicyKind::Fifo, &d, &refs, frames), fifo_model(&refs, frames));
        prop_assert_eq!(outcomes(PolicyKind::Mru, &d, &refs, frames), mru_model(&refs, frames));
        prop_assert_eq!(outcomes(PolicyKind::Clock, &d, &refs, frames), clock_model(&refs, frames, true));
        let clear = PolicyConfig { clock_insert: ClockInsert::Clear, ..d };
        prop_assert_eq!(outcomes(PolicyKind::Clock, &clear, &refs, frames), clock_model(&refs, frames, false));
    }

    /// OPT's and UNOPT's tie rules choose among pages never used again, so
    /// the hits and misses (and the evictions' count) are the same under
    /// every rule; only which page goes may differ. Each OPT victim under any
    /// rule is a page whose next use is the farthest (or never).
    #[test]
    fn opt_and_unopt_ties_never_change_the_misses(refs in refs_strategy(10, 120), frames in 1usize..6) {
        for kind in [PolicyKind::Opt, PolicyKind::Unopt] {
            let base = outcomes(kind, &PolicyConfig::default(), &refs, frames);
            for ties in Ties::ALL {
                let cfg = PolicyConfig { ties: Some(ties), ..PolicyConfig::default() };
                let o = outcomes(kind, &cfg, &refs, frames);
                let hits = |v: &[(bool, Option<u64>)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
                prop_assert_eq!(hits(&o), hits(&base), "{} {}", kind, ties);
            }
        }
    }

    /// If clearing A does not invalidate the TLB entry, A is never set again
    /// while the page is resident: every page gets exactly the one second
    /// chance of its load (or none, when inserted clear), so CLOCK is FIFO.
    #[test]
    fn clock_without_tlb_invalidation_degrades_to_fifo(refs in refs_strategy(12, 200), frames in 1usize..8) {
        let fifo = outcomes(PolicyKind::Fifo, &PolicyConfig::default(), &refs, frames);
        for clock_insert in [ClockInsert::Referenced, ClockInsert::Clear] {
            let stale = PolicyConfig { clock_insert, keep_tlb_entry_on_clear: true, ..PolicyConfig::default() };
            prop_assert_eq!(&outcomes(PolicyKind::Clock, &stale, &refs, frames), &fifo);
        }
    }

    #[test]
    fn opt_matches_the_scanning_model_and_beats_every_policy(refs in refs_strategy(16, 300), frames in 1usize..10) {
        let opt = misses(PolicyKind::Opt, &refs, frames);
        prop_assert_eq!(opt, opt_model_misses(&refs, frames));
        for k in PolicyKind::ALL {
            let m = misses(k, &refs, frames);
            prop_assert!(opt <= m, "OPT {} > {} {}", opt, k, m);
        }
        let unopt = misses(PolicyKind::Unopt, &refs, frames);
        prop_assert!(unopt >= opt);
    }

    #[test]
    fn opt_equals_exhaustive_search_on_short_strings(refs in refs_strategy(5, 11), frames in 1usize..4) {
        prop_assert_eq!(misses(PolicyKind::Opt, &refs, frames), exhaustive_min_misses(&refs, frames));
    }

    #[test]
    fn lru_and_opt_are_stack_algorithms(refs in refs_strategy(20, 200)) {
        for k in [PolicyKind::Lru, PolicyKind::Opt] {
            let mut prev = u64::MAX;
            for f in 1..12 {
                let m = misses(k, &refs, f);
                prop_assert!(m <= prev, "{} misses rose with frames", k);
                prev = m;
            }
        }
    }

    /// For every policy: counts add up, only resident pages are evicted,
    /// nothing is evicted while frames are free, and the reported contents
    /// are exactly the resident set.
    #[test]
    fn every_policy_keeps_the_lab_invariants(refs in refs_strategy(24, 400), frames in 1usize..12, writes in prop::collection::vec(any::<bool>(), 400)) {
        let w = &writes[..refs.len()];
        let t = DenseTrace::new(&refs, w, "p").expect("small");
        for k in PolicyKind::ALL {
            let mut resident: HashSet<u32> = HashSet::new();
            let mut err = None;
            let totals = lab::run(k, &PolicyConfig::default(), &t, nz(frames), Detail::Contents, |s| {
                if err.is_some() { return; }
                if s.hit != resident.contains(&s.id) { err = Some(format!("{k}: hit flag wrong at {}", s.index)); }
                if let Some(v) = s.evicted {
                    if resident.len() != frames { err = Some(format!("{k}: evicted with a free frame")); }
                    if !resident.remove(&v) { err = Some(format!("{k}: evicted non-resident")); }
                }
                resident.insert(s.id);
                let got: HashSet<u32> = s.resident.iter().copied().collect();
                if got != resident || s.resident.len() != resident.len() {
                    err = Some(format!("{k}: contents {:?} != resident {:?} at {}", s.resident, resident, s.index));
                }
            });
            prop_assert!(err.is_none(), "{}", err.unwrap_or_default());
            prop_assert_eq!(totals.hits + totals.misses, refs.len() as u64);
            let distinct = t.n_ids() as u64;
            prop_assert_eq!(totals.evictions, totals.misses - distinct.min(frames as u64).min(totals.misses));
        }
    }
}

// ---------------------------------------------------------------- single policies

#[test]
fn clock_insert_option_changes_the_victim() {
    // 2 frames, 1 2 1 3 1: with R set on load the sweep clears both bits and
    // evicts 1 (FIFO order); with R clear only 1 was referenced, so 2 goes.
    let refs = [1, 2, 1, 3, 1];
    let set = outcomes(PolicyKind::Clock, &PolicyConfig::default(), &refs, 2);
    assert_eq!(set[3], (false, Some(1)));
    assert_eq!(set[4], (false, Some(2)));
    let clear = PolicyConfig {
        clock_insert: ClockInsert::Clear,
        ..PolicyConfig::default()
    };
    let c = outcomes(PolicyKind::Clock, &clear, &refs, 2);
    assert_eq!(c[3], (false, Some(2)));
    assert_eq!(c[4], (true, None));
}

#[test]
fn nru_evicts_clean_unreferenced_before_dirty() {
    // All three referenced at the fault on 4: A bits are cleared, then the
    // lowest class is (0,0): pages 2 and 3; 2 entered it first.
    let (p, w) = lab::parse_refs(b"1w 2 3 4", "t").expect("valid");
    let t = DenseTrace::new(&p, &w, "t").expect("small");
    let mut ev = Vec::new();
    lab::run(
        PolicyKind::Nru,
        &PolicyConfig::default(),
        &t,
        nz(3),
        Detail::Outcomes,
        |s| {
            ev.push(s.evicted.map(|id| t.pages()[id as usize]));
        },
    );
    assert_eq!(ev, [None, None, None, Some(2)]);
    // Without the write, page 1 is the oldest clean page and goes.
    let o = outcomes(PolicyKind::Nru, &PolicyConfig::default(), &[1, 2, 3, 4], 3);
    assert_eq!(o[3], (false, Some(1)));
}

#[test]
fn random_is_deterministic_per_seed() {
    let refs: Vec<u64> = (0..2000).map(|i| (i * 7919 % 97) as u64).collect();
    let a = PolicyConfig {
        seed: 1,
        ..PolicyConfig::default()
    };
    let b = PolicyConfig {
        seed: 2,
        ..PolicyConfig::default()
    };
    assert_eq!(
        outcomes(PolicyKind::Random, &a, &refs, 10),
        outcomes(PolicyKind::Random, &a, &refs, 10)
    );
    assert_ne!(
        outcomes(PolicyKind::Random, &a, &refs, 10),
        outcomes(PolicyKind::Random, &b, &refs, 10)
    );
}

#[test]
fn unopt_evicts_the_page_needed_soonest() {
    // 2 frames, 1 2 3 1 2: at 3, page 1 is needed next (index 3) -> evicted.
    let o = outcomes(
        PolicyKind::Unopt,
        &PolicyConfig::default(),
        &[1, 2, 3, 1, 2],
        2,
    );
    assert_eq!(o[2], (false, Some(1)));
    let opt = outcomes(
        PolicyKind::Opt,
        &PolicyConfig::default(),
        &[1, 2, 3, 1, 2],
        2,
    );
    assert_eq!(opt[2], (false, Some(2)));
}

/// A hot set referenced between one-time scans: policies built to resist
/// scans keep the hot set, LRU and FIFO do not. (2Q is left out: with
/// `Kin` = 2 frames here, hot pages keep cycling through `A1in`.)
#[test]
fn scan_resistant_policies_keep_a_hot_set_through_scans() {
    let mut refs = Vec::new();
    let mut next_cold = 1000;
    for _round in 0..50 {
        for _ in 0..4 {
            refs.extend(0..6u64);
        }
        refs.extend(next_cold..next_cold + 12);
        next_cold += 12;
    }
    let frames = 10;
    let lru = misses(PolicyKind::Lru, &refs, frames);
    for k in [
        PolicyKind::Arc,
        PolicyKind::Lirs,
        PolicyKind::S3Fifo,
        PolicyKind::Linux,
        PolicyKind::ClockPro,
    ] {
        let m = misses(k, &refs, frames);
        assert!(m < lru, "{k}: {m} misses, LRU {lru}");
    }
}

#[test]
fn aging_tick_interval_is_configurable() {
    // With a tick every reference, A bits are folded in at once: page 1,
    // referenced again, outlives 2.
    let cfg = PolicyConfig {
        tick: NonZeroU64::new(1),
        ..PolicyConfig::default()
    };
    let o = outcomes(PolicyKind::Aging, &cfg, &[1, 2, 3, 1, 4], 3);
    assert_eq!(o[4], (false, Some(2)));
}

// ---------------------------------------------------------------- the trait directly

/// Drives a policy by hand as the kernel will: removing a resident page
/// (unmap) must make the policy forget it, and victims must then come only
/// from the pages still resident.
fn removed_pages_are_never_victims<P: Policy>(mut p: P, name: &str) {
    let mut bits = LabBits::new(16, false);
    let at = |now| RefTime {
        now,
        next_use: NEVER,
    };
    for id in 0..6u32 {
        bits.load(id, id % 2 == 0);
        p.on_insert(id, at(u64::from(id)), &mut bits);
    }
    p.on_remove(2);
    bits.forget(2);
    p.on_remove(4);
    bits.forget(4);
    let mut listed = Vec::new();
    p.resident(&mut listed);
    listed.sort_unstable();
    assert_eq!(listed, [0, 1, 3, 5], "{name}: resident after removals");
    let mut resident: HashSet<u32> = [0, 1, 3, 5].into();
    for (k, incoming) in (10..16u32).enumerate() {
        let v = p.victim(incoming, &mut bits);
        assert!(resident.remove(&v), "{name}: victim {v} is not resident");
        bits.forget(v);
        bits.load(incoming, false);
        p.on_insert(incoming, at(10 + k as u64), &mut bits);
        resident.insert(incoming);
    }
    let mut listed = Vec::new();
    p.resident(&mut listed);
    assert_eq!(
        listed.iter().copied().collect::<HashSet<u32>>(),
        resident,
        "{name}: resident at the end"
    );
}

#[test]
fn on_remove_works_for_every_policy() {
    use vmsim::reclaim::*;
    let n = 16;
    removed_pages_are_never_victims(Fifo::new(n), "fifo");
    removed_pages_are_never_victims(Lru::new(n), "lru");
    removed_pages_are_never_victims(Mru::new(n), "mru");
    removed_pages_are_never_victims(Clock::new(n, ClockInsert::Referenced), "clock");
    removed_pages_are_never_victims(Nru::new(n), "nru");
    removed_pages_are_never_victims(Aging::new(n, NonZeroU64::MIN), "aging");
    removed_pages_are_never_victims(Random::new(n, 3), "random");
    removed_pages_are_never_victims(Opt::new(n), "opt");
    removed_pages_are_never_victims(Unopt::new(n), "unopt");
    removed_pages_are_never_victims(Lfu::new(n), "lfu");
    removed_pages_are_never_victims(Linux::new(n), "linux");
    removed_pages_are_never_victims(Arc::new(n, 6), "arc");
    removed_pages_are_never_victims(TwoQ::new(n, 6), "2q");
    removed_pages_are_never_victims(Lirs::new(n, 6), "lirs");
    removed_pages_are_never_victims(ClockPro::new(n, 6), "clock-pro");
    removed_pages_are_never_victims(Sieve::new(n), "sieve");
    removed_pages_are_never_victims(S3Fifo::new(n, 6), "s3-fifo");
}
