//! Allocation and free throughput of the frame allocators and slab caches in
//! steady state (a working set allocated and freed in a seeded random order).

#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vmsim::addr::{PageSize, Pfn};
use vmsim::alloc::slab::{TASK_STRUCT_BYTES, VMA_BYTES};
use vmsim::alloc::{Buddy, FrameAllocator, FreeList, ObjHandle, Slab, SlabParams};
use vmsim::phys::PhysMem;

const K4: PageSize = PageSize::SIZE_4K;
/// Frames managed: 1 GiB of 4 KiB frames.
const FRAMES: u64 = 1 << 18;
/// Allocations live at once.
const LIVE: usize = 4096;
/// Operations per measured iteration (one alloc + one free each).
const OPS: u64 = 100_000;

/// A small seeded generator (xorshift64*): deterministic operation mixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Orders 0..=3 weighted like a kernel's requests: mostly single frames.
fn order(r: u64) -> u32 {
    match r % 16 {
        0..=11 => 0,
        12 | 13 => 1,
        14 => 2,
        _ => 3,
    }
}

fn buddy(c: &mut Criterion) {
    let mut g = c.benchmark_group("buddy");
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("alloc+free mixed orders 0-3", |bch| {
        bch.iter_batched_ref(
            || {
                let mut b = Buddy::with_default_order(K4, Pfn::new(0), FRAMES).expect("buddy");
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
                let live: Vec<(Pfn, u32)> = (0..LIVE)
                    .map(|_| {
                        let o = order(rng.next());
                        (b.alloc_order(o).expect("frames"), o)
                    })
                    .collect();
                (b, live, rng)
            },
            |(b, live, rng)| {
                for _ in 0..OPS {
                    let r = rng.next();
                    let k = (r >> 8) as usize % LIVE;
                    let (p, o) = live[k];
                    b.free_order(p, o);
                    let o = order(r);
                    live[k] = (b.alloc_order(o).expect("frames"), o);
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn free_list(c: &mut Criterion) {
    let mut g = c.benchmark_group("free_list");
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("pop+push (links in simulated memory)", |bch| {
        bch.iter_batched_ref(
            || {
                let mem: PhysMem = PhysMem::new(FRAMES * 4096).expect("mem");
                let mut l = FreeList::new(&mem, K4, Pfn::new(0), FRAMES).expect("list");
                let live: Vec<Pfn> = (0..LIVE)
                    .map(|_| l.pop(&mem).expect("ok").expect("frame"))
                    .collect();
                (mem, l, live, Rng(7))
            },
            |(mem, l, live, rng)| {
                for _ in 0..OPS {
                    let k = rng.next() as usize % LIVE;
                    l.push(mem, live[k]).expect("free");
                    live[k] = l.pop(mem).expect("ok").expect("frame");
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn slab(c: &mut Criterion) {
    let mut g = c.benchmark_group("slab");
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("alloc+free task_struct and vma", |bch| {
        bch.iter_batched_ref(
            || {
                let mut b = Buddy::with_default_order(K4, Pfn::new(0), FRAMES).expect("buddy");
                let mut s = Slab::new(K4, SlabParams::default());
                let ids = [
                    s.create_cache("task", TASK_STRUCT_BYTES, 16)
                        .expect("cache"),
                    s.create_cache("vma", VMA_BYTES, 8).expect("cache"),
                ];
                let mut rng = Rng(42);
                let live: Vec<(usize, ObjHandle)> = (0..LIVE)
                    .map(|_| {
                        let c = (rng.next() % 2) as usize;
                        (c, s.alloc(ids[c], &mut b).expect("obj"))
                    })
                    .collect();
                (b, s, ids, live, rng)
            },
            |(b, s, ids, live, rng)| {
                for _ in 0..OPS {
                    let r = rng.next();
                    let k = (r >> 8) as usize % LIVE;
                    let (c, h) = live[k];
                    s.free(ids[c], b, h).expect("free");
                    let c = (r % 2) as usize;
                    live[k] = (c, s.alloc(ids[c], b).expect("obj"));
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, buddy, free_list, slab);
criterion_main!(benches);
