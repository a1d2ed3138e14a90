//! Translations per second through the TLB hierarchy.
//!
//! - `tlb/hit-scan/<preset>` and `tlb/hit-rotating/<preset>`: lookups that
//!   hit the first level (a working set of 48 pages, inside the 64-entry L1
//!   data TLB), the hot path of every simulated access; a sequential scan of
//!   4-byte ints (course example A13), and a pattern where every access is on
//!   another page than the one before. Target: at least 150M per second on
//!   one core.
//! - `tlb/miss-fill/<preset>`: a stream of new pages, each a miss at every
//!   level followed by a fill (the TLB's share of a walk).
//! - `tlb/fa-rotating/<entries>` and `tlb/fa-miss-fill/<entries>`: one
//!   fully associative unified LRU TLB of 64 or 1536 entries (what courses
//!   and many papers configure; `bench/configs/fa-*.toml`): lookups that
//!   hit, every one on another page than the last (a working set of three
//!   quarters of the entries), and a stream of new pages, each a miss, a
//!   fill and an eviction of the least recently used entry. Both cost the
//!   same whatever the size (a page-number index and a recency list).
//! - `mmu/hit/<preset>`: [`Mmu::translate`] of the A13 scan over resident
//!   pages: TLB hit, permission check, physical address.
//! - `mmu/walk/<preset>`: [`Mmu::translate`] where every access is on a
//!   page the TLBs no longer hold (a cyclic sweep over 64 Ki pages, 256 MiB):
//!   a full walk of the x86-64 4-level table in simulated memory, through
//!   the page-walk caches when the preset has them; `mmu/walk/<preset>-random`
//!   the same pages in a pseudo-random order, so that the page-walk caches
//!   miss most walks too (the miss path of a zipf workload over 256 MiB).
//!
//! Time is this thread's CPU time ([`CpuTime`], from
//! `/proc/thread-self/schedstat`), not wall time: on a shared machine the
//! wall clock also counts time the benchmark spent waiting for a core, and
//! the figure wanted is translations per second *of one core*. Where that
//! file does not exist the wall clock is used.
//!
//! Run: `cargo bench -p vmsim --bench tlb`.

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vmsim::addr::Pfn;
use vmsim::addr::{Asid, PageSize, PhysAddr, VirtAddr};
use vmsim::alloc::FirstFit;
use vmsim::mmu::{
    AccessKind, Mmu, Perms, Privilege, Replacement, Tlb, TlbArrayConfig, TlbConfig, TlbEntry,
    TlbLevelConfig,
};
use vmsim::paging::{Format, PteFlags, RadixTable};
use vmsim::phys::PhysMem;

/// Nanoseconds this thread has run on a CPU, or `None` if the kernel does not say.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A criterion measurement of thread CPU time in nanoseconds.
struct CpuTime {
    available: bool,
    epoch: Instant,
}

impl CpuTime {
    fn new() -> Self {
        Self {
            available: thread_cpu_ns().is_some(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        if self.available {
            thread_cpu_ns().unwrap_or(0)
        } else {
            self.epoch.elapsed().as_nanos() as u64
        }
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        self.now()
    }
    fn end(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

/// Formats nanoseconds, and throughput in elements per second.
struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match *throughput {
            Throughput::Elements(n)
            | Throughput::Bytes(n)
            | Throughput::BytesDecimal(n)
            | Throughput::Bits(n) => n,
            Throughput::ElementsAndBytes { elements, .. } => elements,
        } as f64;
        values
            .iter_mut()
            .for_each(|v| *v = per_iteration * 1e9 / *v / 1e6);
        "M/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const X86_64_WALK: [u32; 4] = [39, 30, 21, 12];
const BATCH: u64 = 4096;

fn tlb(preset: &str) -> Tlb {
    let config = TlbConfig::preset(preset).expect("preset exists");
    Tlb::new(&config, &X86_64_WALK).expect("preset is valid")
}

fn entry(asid: Asid, page: u64) -> TlbEntry {
    let frame = PhysAddr::new((page + 0x100) << 12).expect("small frame");
    TlbEntry::new(asid, VirtAddr::new(page << 12), PageSize::SIZE_4K, frame)
        .with_perms(Perms::READ | Perms::WRITE | Perms::USER)
}

/// A TLB of `preset` holding the first `pages` 4 KiB pages of ASID 1.
fn warm_tlb(preset: &str, pages: u64) -> Tlb {
    let mut t = tlb(preset);
    for page in 0..pages {
        let va = VirtAddr::new(page << 12);
        t.fill(entry(t.tag(Asid::new(1)), page), va, AccessKind::Read);
    }
    t
}

fn hit_group(
    c: &mut Criterion<CpuTime>,
    group_name: &str,
    addresses: impl Fn(u64) -> Vec<VirtAddr>,
) {
    let mut group = c.benchmark_group(group_name);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    for preset in ["x86-64", "core-i7", "classroom"] {
        // Inside the first level: 48 of the 64-entry L1 dTLB, 12 of the classroom 16.
        let pages = if preset == "classroom" { 12 } else { 48 };
        let mut t = warm_tlb(preset, pages);
        let addresses = addresses(pages);
        let asid = Asid::new(1);
        group.bench_function(preset, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &va in &addresses {
                    let hit = t.lookup(asid, black_box(va), AccessKind::Read);
                    sum = sum.wrapping_add(hit.map_or(0, |h| h.pa.as_u64()));
                }
                black_box(sum)
            });
        });
        assert_eq!(
            t.counters().full_misses,
            0,
            "{preset}: the working set must stay resident"
        );
    }
    group.finish();
}

fn hits(c: &mut Criterion<CpuTime>) {
    // Every access on another page than the last (7 is prime to the page
    // count): each lookup probes the first level's sets.
    hit_group(c, "tlb/hit-rotating", |pages| {
        (0..BATCH)
            .map(|i| VirtAddr::new((((i * 7) % pages) << 12) + (i * 4) % 4096))
            .collect()
    });
    // Course example A13: a sequential scan of 4-byte ints, 1024 per page;
    // consecutive accesses share a page, as most real accesses do.
    hit_group(c, "tlb/hit-scan", |pages| {
        (0..BATCH)
            .map(|i| VirtAddr::new((i * 4) % (pages << 12)))
            .collect()
    });
}

fn miss_fill(c: &mut Criterion<CpuTime>) {
    let mut group = c.benchmark_group("tlb/miss-fill");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    for preset in ["x86-64", "core-i7"] {
        let mut t = tlb(preset);
        let asid = Asid::new(1);
        let mut next_page = 0u64;
        group.bench_function(preset, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    // Far apart pages: never resident (the STLB holds 1536).
                    next_page = (next_page + 1) % (1 << 24);
                    let va = VirtAddr::new(next_page << 12);
                    if t.lookup(asid, black_box(va), AccessKind::Read).is_none() {
                        t.fill(entry(t.tag(asid), next_page), va, AccessKind::Read);
                    }
                }
            });
        });
    }
    group.finish();
}

/// One fully associative unified LRU level of `entries` 4 KiB entries.
fn fully_associative(entries: u32) -> Tlb {
    let mut array = TlbArrayConfig::new(entries, None, &[PageSize::SIZE_4K]);
    array.replacement = Replacement::Lru;
    let mut config = TlbConfig::default();
    config.levels.push(TlbLevelConfig {
        latency: 1,
        arrays: vec![array],
    });
    Tlb::new(&config, &X86_64_WALK).expect("valid TLB")
}

fn fully_associative_group(c: &mut Criterion<CpuTime>) {
    let mut group = c.benchmark_group("tlb/fa-rotating");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    let asid = Asid::new(1);
    for entries in [64u32, 1536] {
        let mut t = fully_associative(entries);
        let pages = u64::from(entries) * 3 / 4;
        for page in 0..pages {
            t.fill(
                entry(t.tag(asid), page),
                VirtAddr::new(page << 12),
                AccessKind::Read,
            );
        }
        // 7 and 11 are prime to 48 and 1152: every access on another page.
        let addresses: Vec<VirtAddr> = (0..BATCH)
            .map(|i| VirtAddr::new((((i * 7) % pages) << 12) + (i * 4) % 4096))
            .collect();
        group.bench_function(entries.to_string(), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &va in &addresses {
                    let hit = t.lookup(asid, black_box(va), AccessKind::Read);
                    sum = sum.wrapping_add(hit.map_or(0, |h| h.pa.as_u64()));
                }
                black_box(sum)
            });
        });
        assert_eq!(t.counters().full_misses, 0, "FA-{entries}: resident");
    }
    group.finish();

    let mut group = c.benchmark_group("tlb/fa-miss-fill");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    for entries in [64u32, 1536] {
        let mut t = fully_associative(entries);
        let mut next_page = 0u64;
        group.bench_function(entries.to_string(), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    next_page = (next_page + 1) % (1 << 24);
                    let va = VirtAddr::new(next_page << 12);
                    if t.lookup(asid, black_box(va), AccessKind::Read).is_none() {
                        t.fill(entry(t.tag(asid), next_page), va, AccessKind::Read);
                    }
                }
            });
        });
    }
    group.finish();
}

/// A machine with `pages` 4 KiB pages mapped from 1 GiB in one x86-64 address space.
fn machine(preset: &str, pages: u64) -> (Mmu, PhysMem) {
    let fmt = Format::x86_64();
    let mut mem = PhysMem::new(1 << 34).expect("memory");
    let mut alloc = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), (1 << 20) - 1);
    let table = RadixTable::new(&fmt, &mut mem, &mut alloc).expect("root");
    let flags = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
    for p in 0..pages {
        let va = VirtAddr::new((1 << 30) + p * 4096);
        let frame = PhysAddr::new((1 << 32) + p * 4096).expect("frame");
        table
            .map(
                &fmt,
                &mut mem,
                &mut alloc,
                va,
                frame,
                PageSize::SIZE_4K,
                flags,
            )
            .expect("map")
            .ignore();
    }
    let config = TlbConfig::preset(preset).expect("preset");
    let mut mmu = Mmu::new(fmt, &config, true).expect("mmu");
    mmu.set_context(table.root(), Asid::new(1));
    (mmu, mem)
}

fn mmu(c: &mut Criterion<CpuTime>) {
    let mut group = c.benchmark_group("mmu/hit");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    for preset in ["x86-64", "core-i7"] {
        let (mut mmu, mut mem) = machine(preset, 32);
        let addresses: Vec<VirtAddr> = (0..BATCH)
            .map(|i| VirtAddr::new((1 << 30) + (i * 4) % (32 << 12)))
            .collect();
        group.bench_function(preset, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &va in &addresses {
                    let pa =
                        mmu.translate(&mut mem, black_box(va), AccessKind::Read, Privilege::User);
                    sum = sum.wrapping_add(pa.map_or(0, PhysAddr::as_u64));
                }
                black_box(sum)
            });
        });
        assert_eq!(mmu.counters().faults.total(), 0);
    }
    group.finish();

    let mut group = c.benchmark_group("mmu/walk");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH));
    const PAGES: u64 = 1 << 16;
    for preset in ["x86-64", "core-i7"] {
        let (mut mmu, mut mem) = machine(preset, PAGES);
        let mut page = 0u64;
        group.bench_function(preset, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for _ in 0..BATCH {
                    page = (page + 1) % PAGES;
                    let va = VirtAddr::new((1 << 30) + page * 4096);
                    let pa =
                        mmu.translate(&mut mem, black_box(va), AccessKind::Read, Privilege::User);
                    sum = sum.wrapping_add(pa.map_or(0, PhysAddr::as_u64));
                }
                black_box(sum)
            });
        });
        let c = mmu.counters();
        assert_eq!(c.faults.total(), 0);
        assert!(
            c.walk.walks + 2048 >= c.accesses(),
            "{preset}: nearly every access walks"
        );
    }
    // Pages in a pseudo-random order: the PDE walk cache (32 entries of
    // 2 MiB regions, 128 regions here) misses most walks, the TLBs evict on
    // every fill, as in the zipf walk-heavy row of bench/run-speed.sh.
    for preset in ["x86-64", "core-i7"] {
        let (mut mmu, mut mem) = machine(preset, PAGES);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let name = format!("{preset}-random");
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for _ in 0..BATCH {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let va = VirtAddr::new((1 << 30) + (x % PAGES) * 4096);
                    let pa =
                        mmu.translate(&mut mem, black_box(va), AccessKind::Read, Privilege::User);
                    sum = sum.wrapping_add(pa.map_or(0, PhysAddr::as_u64));
                }
                black_box(sum)
            });
        });
        assert_eq!(mmu.counters().faults.total(), 0);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Flat sampling with few, long samples: the CPU-time clock advances in
    // scheduler ticks, so each sample must last many ticks.
    config = Criterion::default()
        .with_measurement(CpuTime::new())
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(4));
    targets = hits, miss_fill, fully_associative_group, mmu
}
criterion_main!(benches);
