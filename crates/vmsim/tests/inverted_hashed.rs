//! The inverted and hashed page tables against a `HashMap` model, over
//! random sequences of map, unmap, protect, flag updates and lookups, with
//! probe counts checked against the chain lengths the model predicts.

use std::collections::HashMap;

use proptest::prelude::*;
use vmsim::addr::{Asid, PageSize, Pfn, PhysAddr, VirtAddr, Vpn};
use vmsim::paging::PteFlags;
use vmsim::paging::hashed::{
    HashedConfig, HashedPageTable, ProbeStats, TableError, TableSearch, TranslationTable,
};
use vmsim::paging::inverted::{InvertedConfig, InvertedPageTable, InvertedSearch};
use vmsim::phys::PhysMem;

type Key = (u16, u64);
type Model = HashMap<Key, (u64, PteFlags)>;

#[derive(Debug, Clone)]
enum Op {
    Map(Key, u64, u16),
    Unmap(Key),
    Protect(Key, u16),
    Update(Key, u16, u16),
    Touch(Key, bool),
    Lookup(Key),
}

fn key() -> impl Strategy<Value = Key> {
    let vpn = prop_oneof![0..24u64, ((1u64 << 52) - 8)..(1u64 << 52)];
    (0..3u16, vpn)
}

fn op(frames: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), 0..frames, 0..512u16).prop_map(|(k, p, f)| Op::Map(k, p, f)),
        2 => key().prop_map(Op::Unmap),
        1 => (key(), 0..512u16).prop_map(|(k, f)| Op::Protect(k, f)),
        1 => (key(), 0..512u16, 0..512u16).prop_map(|(k, s, c)| Op::Update(k, s, c)),
        2 => (key(), any::<bool>()).prop_map(|(k, d)| Op::Touch(k, d)),
        3 => key().prop_map(Op::Lookup),
    ]
}

/// Which structure is under test, and what it predicts that a map cannot do.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Inverted: one entry per frame.
    Inverted,
    /// Hashed: a pool of this many elements.
    Hashed { capacity: u64 },
}

/// How many probes a lookup of `k` may take, given the model's contents.
type ProbeRule<'a> = &'a dyn Fn(&Model, Key, Option<u64>, u32) -> Result<(), String>;

fn flags(bits: u16) -> PteFlags {
    PteFlags::from_bits_truncate(bits)
}

fn run<T: TranslationTable>(
    mut mem: PhysMem,
    mut table: T,
    kind: Kind,
    ops: &[Op],
    probes_ok: ProbeRule<'_>,
) -> Result<(), TestCaseError> {
    let mut model = Model::new();
    let mut seen: Vec<Key> = Vec::new();
    let mut stats = ProbeStats::default();
    let check = |mem: &PhysMem,
                 table: &T,
                 model: &Model,
                 stats: &mut ProbeStats,
                 k: Key|
     -> Result<(), TestCaseError> {
        let l = table
            .lookup(mem, Asid::new(k.0), Vpn::new(k.1))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        stats.record(l.probes);
        let got = l.hit.map(|h| (h.mapping.pfn.as_u64(), h.mapping.flags));
        prop_assert_eq!(got, model.get(&k).copied(), "lookup {:?}", k);
        probes_ok(model, k, got.map(|g| g.0), l.probes).map_err(TestCaseError::fail)?;
        // The walker-shaped view agrees: same frame, same probes.
        let size = table.page_size();
        let va = VirtAddr::new((k.1 << size.shift()) | 0x5A5);
        let w = table.translate(mem, Asid::new(k.0), va);
        prop_assert_eq!(w.probes, l.probes);
        match (w.result, got) {
            (Ok(t), Some((pfn, f))) => {
                prop_assert_eq!(t.pa.as_u64(), (pfn << size.shift()) | 0x5A5);
                prop_assert_eq!(t.flags, f);
            }
            (Err(fault), None) => prop_assert_eq!(fault.kind.name(), "not_present"),
            (w, g) => prop_assert!(false, "translate {:?} but lookup {:?}", w, g),
        }
        Ok(())
    };
    for op in ops {
        match *op {
            Op::Map(k, pfn, f) => {
                seen.push(k);
                let got = table.map(
                    &mut mem,
                    Asid::new(k.0),
                    Vpn::new(k.1),
                    Pfn::new(pfn),
                    flags(f),
                );
                let frame_owner = model.iter().find(|(_, v)| v.0 == pfn).map(|(k, _)| *k);
                match (model.get(&k), kind) {
                    (Some(&(old, _)), _) => prop_assert_eq!(
                        got,
                        Err(TableError::AlreadyMapped {
                            asid: k.0,
                            vpn: k.1,
                            pfn: old
                        })
                    ),
                    (None, Kind::Inverted) if frame_owner.is_some() => {
                        let (asid, vpn) = frame_owner.unwrap_or_default();
                        prop_assert_eq!(got, Err(TableError::FrameInUse { pfn, asid, vpn }));
                    }
                    (None, Kind::Hashed { capacity }) if model.len() as u64 == capacity => {
                        prop_assert_eq!(got, Err(TableError::PoolExhausted { capacity }));
                    }
                    (None, _) => {
                        prop_assert_eq!(got, Ok(()));
                        model.insert(k, (pfn, flags(f)));
                    }
                }
            }
            Op::Unmap(k) => {
                let got = table
                    .unmap(&mut mem, Asid::new(k.0), Vpn::new(k.1))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want = model.remove(&k);
                prop_assert_eq!(got.map(|m| (m.pfn.as_u64(), m.flags)), want);
            }
            Op::Protect(k, f) => {
                let got = table
                    .protect(&mut mem, Asid::new(k.0), Vpn::new(k.1), flags(f))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want = model.get_mut(&k).map(|e| {
                    let old = e.1;
                    // Radix protect's rule: new permissions, old A, D and G.
                    let kept = PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::GLOBAL;
                    e.1 = (flags(f) - PteFlags::ACCESSED - PteFlags::DIRTY) | (old & kept);
                    old
                });
                prop_assert_eq!(got, want);
            }
            Op::Update(k, s, c) => {
                let got = table
                    .update_flags(&mut mem, Asid::new(k.0), Vpn::new(k.1), flags(s), flags(c))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want = model.get_mut(&k).map(|e| {
                    e.1 = (e.1 - flags(c)) | flags(s);
                    e.1
                });
                prop_assert_eq!(got, want);
            }
            Op::Touch(k, dirty) => {
                let l = table
                    .lookup(&mem, Asid::new(k.0), Vpn::new(k.1))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Some(hit) = l.hit {
                    let bits = if dirty {
                        PteFlags::ACCESSED | PteFlags::DIRTY
                    } else {
                        PteFlags::ACCESSED
                    };
                    let new = table
                        .mark(&mut mem, Asid::new(k.0), Vpn::new(k.1), hit.entry, bits)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let e = model
                        .get_mut(&k)
                        .ok_or_else(|| TestCaseError::fail("hit not in model"))?;
                    e.1 |= bits;
                    prop_assert_eq!(new, e.1);
                } else {
                    prop_assert!(!model.contains_key(&k));
                }
            }
            Op::Lookup(k) => {
                seen.push(k);
                check(&mem, &table, &model, &mut stats, k)?;
            }
        }
        prop_assert_eq!(table.len(), model.len() as u64);
    }
    for &k in &seen {
        check(&mem, &table, &model, &mut stats, k)?;
    }
    if stats.lookups > 0 {
        prop_assert!(stats.min >= 1 && stats.min <= stats.max);
        prop_assert!(stats.mean() >= f64::from(stats.min) && stats.mean() <= f64::from(stats.max));
    }
    Ok(())
}

/// Probes through a chain: 1 for the slot, then one per entry up to the match.
fn chain_rule(
    slot_of: impl Fn(Key) -> u64,
) -> impl Fn(&Model, Key, Option<u64>, u32) -> Result<(), String> {
    move |model, k, hit, probes| {
        let chain = model.keys().filter(|&&o| slot_of(o) == slot_of(k)).count() as u32;
        let ok = match hit {
            Some(_) => (2..=1 + chain).contains(&probes),
            None => probes == 1 + chain,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{k:?}: {probes} probes with a chain of {chain} (hit {hit:?})"
            ))
        }
    }
}

const FRAMES: u64 = 24;
const BASE: u64 = 0x4000;

fn mem() -> PhysMem {
    PhysMem::new(1 << 20).unwrap_or_else(|e| panic!("{e}"))
}

fn inverted(search: InvertedSearch) -> (PhysMem, InvertedPageTable) {
    let mut m = mem();
    let cfg = InvertedConfig {
        frames: FRAMES,
        page_size: PageSize::SIZE_4K,
        search,
    };
    let len = cfg.bytes_needed().unwrap_or_else(|e| panic!("{e}"));
    let t = InvertedPageTable::new(&mut m, PhysAddr::new_unchecked(BASE), len, cfg)
        .unwrap_or_else(|e| panic!("{e}"));
    (m, t)
}

fn hashed(buckets: u64, capacity: u64) -> (PhysMem, HashedPageTable) {
    let mut m = mem();
    let cfg = HashedConfig {
        buckets,
        capacity,
        page_size: PageSize::SIZE_4K,
    };
    let len = cfg.bytes_needed().unwrap_or_else(|e| panic!("{e}"));
    let t = HashedPageTable::new(&mut m, PhysAddr::new_unchecked(BASE), len, cfg)
        .unwrap_or_else(|e| panic!("{e}"));
    (m, t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn inverted_linear_matches_model(ops in prop::collection::vec(op(FRAMES), 1..150)) {
        let (m, t) = inverted(InvertedSearch::Linear);
        let rule = |_: &Model, k: Key, hit: Option<u64>, probes: u32| {
            // Scanning in frame order: a hit in frame i costs i + 1 probes, a miss every frame.
            let want = hit.map_or(FRAMES as u32, |pfn| pfn as u32 + 1);
            if probes == want { Ok(()) } else { Err(format!("{k:?}: {probes} probes, expected {want}")) }
        };
        run(m, t, Kind::Inverted, &ops, &rule)?;
    }

    #[test]
    fn inverted_hashed_matches_model(
        ops in prop::collection::vec(op(FRAMES), 1..150),
        anchors in prop::sample::select(vec![1u64, 4, 32]),
    ) {
        let (m, t) = inverted(InvertedSearch::Hashed { anchors });
        let probe = t.clone();
        let rule = chain_rule(move |(a, v)| probe.anchor_of(Asid::new(a), Vpn::new(v)).unwrap_or(u64::MAX));
        run(m, t, Kind::Inverted, &ops, &rule)?;
    }

    #[test]
    fn hashed_matches_model(
        ops in prop::collection::vec(op(1 << 40), 1..150),
        buckets in prop::sample::select(vec![1u64, 8, 64]),
        capacity in prop::sample::select(vec![5u64, 40]),
    ) {
        let (m, t) = hashed(buckets, capacity);
        let probe = t.clone();
        let rule = chain_rule(move |(a, v)| probe.bucket_of(Asid::new(a), Vpn::new(v)));
        run(m, t, Kind::Hashed { capacity }, &ops, &rule)?;
    }
}

#[test]
fn tables_live_in_physical_memory() {
    // The bytes are really there: an entry written by map is visible to a raw read.
    let (mut m, mut t) = inverted(InvertedSearch::Hashed { anchors: 16 });
    t.map(
        &mut m,
        Asid::new(5),
        Vpn::new(0xABC),
        Pfn::new(3),
        PteFlags::WRITE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let entry = PhysAddr::new_unchecked(BASE + 3 * 16);
    let w0 = m.read_le(entry, 8).unwrap_or_else(|e| panic!("{e}"));
    let w1 = m.read_le(entry.add(8), 8).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w0 & ((1 << 52) - 1), 0xABC);
    assert_eq!((w0 >> 52) & 1, 1, "valid bit");
    assert_eq!(
        (w0 >> 53) & 0x1FF,
        u64::from(PteFlags::WRITE.bits()),
        "flags"
    );
    assert_eq!(w1 & 0xFFFF, 5);
    // Another table in the same memory after this one does not disturb it.
    let cfg = HashedConfig {
        buckets: 8,
        capacity: 8,
        page_size: PageSize::SIZE_4K,
    };
    let len = cfg.bytes_needed().unwrap_or_else(|e| panic!("{e}"));
    let after = BASE
        + InvertedConfig {
            frames: FRAMES,
            page_size: PageSize::SIZE_4K,
            search: InvertedSearch::Hashed { anchors: 16 },
        }
        .bytes_needed()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut h = HashedPageTable::new(&mut m, PhysAddr::new_unchecked(after), len, cfg)
        .unwrap_or_else(|e| panic!("{e}"));
    h.map(
        &mut m,
        Asid::new(5),
        Vpn::new(0xABC),
        Pfn::new(99),
        PteFlags::empty(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let l = t
        .lookup(&m, Asid::new(5), Vpn::new(0xABC))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.hit.map(|h| h.mapping.pfn), Some(Pfn::new(3)));
}

#[test]
fn hashed_probes_shrink_with_more_buckets() {
    // 256 mappings: one bucket chains them all; 256 buckets keep chains short.
    let mut means = Vec::new();
    for buckets in [1u64, 16, 256] {
        let (mut m, mut t) = hashed(buckets, 256);
        let a = Asid::new(1);
        for v in 0..256 {
            t.map(&mut m, a, Vpn::new(v), Pfn::new(v), PteFlags::USER)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut s = ProbeStats::default();
        for v in 0..256 {
            let l = t
                .lookup(&m, a, Vpn::new(v))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(l.hit.is_some());
            s.record(l.probes);
        }
        means.push(s.mean());
        if buckets == 1 {
            // Chain positions 1..=256, plus the bucket read.
            assert_eq!((s.min, s.max), (2, 257));
            assert!((s.mean() - 129.5).abs() < 1e-9);
        }
    }
    assert!(means[0] > means[1] && means[1] > means[2], "{means:?}");
    assert!(means[2] < 3.0, "{means:?}");
}
