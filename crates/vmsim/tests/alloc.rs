//! Frame allocators: the course's allocation examples step by step, and
//! property tests of every allocator against a simple model (a map of which
//! frames are allocated).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vmsim::addr::{PageSize, Pfn, PhysAddr};
use vmsim::alloc::fragmentation::{fragmentation_index, unusable_free_index};
use vmsim::alloc::slab::{TASK_STRUCT_BYTES, VMA_BYTES};
use vmsim::alloc::{
    Buddy, Coalesce, ContigError, ContiguousAllocator, Extent, FrameAllocator, FreeList, FreeSpace,
    FreeSpaceConfig, FreeSpaceError, LINK_BYTES, ListOrder, Milli, ObjHandle, Placement, Slab,
    SlabParams, order_for_frames,
};
use vmsim::phys::PhysMem;

const K4: PageSize = PageSize::SIZE_4K;

// ---------------------------------------------------------------------------
// External fragmentation: 16 frames; alloc(2), alloc(4), alloc(4), alloc(4);
// free the 2; alloc(4).
// ---------------------------------------------------------------------------

/// Runs the course's request sequence with `placement`; returns the
/// allocator after `free(2)` and the frame map after each step.
fn course_sequence(placement: Placement) -> (ContiguousAllocator, Vec<String>) {
    let mut a = ContiguousAllocator::new(Pfn::new(0), 16, placement).expect("16 frames");
    let mut maps = Vec::new();
    let two = a.alloc(2).expect("alloc(2)");
    maps.push(a.frame_map());
    for _ in 0..3 {
        a.alloc(4).expect("alloc(4)");
        maps.push(a.frame_map());
    }
    assert_eq!(a.free(two.start).expect("free(2)").frames, 2);
    maps.push(a.frame_map());
    (a, maps)
}

#[test]
fn external_fragmentation_in_order_placement_fails() {
    let (mut a, maps) = course_sequence(Placement::FirstFit);
    // Each request is placed right after the previous one.
    assert_eq!(
        maps,
        [
            "aa..............",
            "aabbbb..........",
            "aabbbbcccc......",
            "aabbbbccccdddd..",
            "..bbbbccccdddd..",
        ]
    );
    // Four frames are free, but in two holes of two.
    assert_eq!(a.free_frames(), 4);
    let holes: Vec<Extent> = a.holes().collect();
    assert_eq!(
        holes,
        [
            Extent {
                start: Pfn::new(0),
                frames: 2
            },
            Extent {
                start: Pfn::new(14),
                frames: 2
            },
        ]
    );
    assert_eq!(a.largest_hole(), 2);
    assert_eq!(
        a.alloc(4),
        Err(ContigError::NoFit {
            requested: 4,
            free: 4,
            largest_hole: 2
        })
    );
    // Linux's unusable free space index for a 4-frame request: all of it.
    assert_eq!(a.contig_info(4).unusable_free_index(4).to_string(), "1.000");
}

#[test]
fn best_worst_and_next_fit_fail_the_same_way() {
    // With one hole at every step, every hole-choosing strategy packs the
    // requests in order: only the placement rule can leave the gap.
    let (_, first) = course_sequence(Placement::FirstFit);
    for p in [Placement::NextFit, Placement::BestFit, Placement::WorstFit] {
        let (mut a, maps) = course_sequence(p);
        assert_eq!(maps, first, "{}", p.name());
        assert!(matches!(
            a.alloc(4),
            Err(ContigError::NoFit {
                free: 4,
                largest_hole: 2,
                ..
            })
        ));
    }
}

#[test]
fn external_fragmentation_gap_leaving_placement_succeeds() {
    let (mut a, maps) = course_sequence(Placement::SizeAligned);
    // alloc(2) at 0; the 4s go to multiples of 4, leaving a 2-frame gap.
    assert_eq!(
        maps,
        [
            "aa..............",
            "aa..bbbb........",
            "aa..bbbbcccc....",
            "aa..bbbbccccdddd",
            "....bbbbccccdddd",
        ]
    );
    // free(2) merged with the gap: one hole of 4.
    assert_eq!(a.largest_hole(), 4);
    assert_eq!(a.contig_info(4).unusable_free_index(4).to_string(), "0.000");
    let e = a.alloc(4).expect("alloc(4) succeeds");
    assert_eq!(e.start, Pfn::new(0));
    assert_eq!(a.frame_map(), "eeeebbbbccccdddd");
    assert_eq!(a.free_frames(), 0);
}

// ---------------------------------------------------------------------------
// Buddy: a 64-page region.
// ---------------------------------------------------------------------------

fn heads(b: &Buddy, order: u32) -> Vec<u64> {
    b.free_blocks(order)
        .map(|p| p.as_u64() - b.first().as_u64())
        .collect()
}

/// The buddy example, at any 64-aligned base (the buddy rule works on
/// absolute frame numbers; the region base only shifts everything).
fn buddy_example(base: u64) {
    let mut b = Buddy::with_default_order(K4, Pfn::new(base), 64).expect("buddy");
    let rel = |p: Pfn| p.as_u64() - base;
    // Step 0: one free block of 64 pages (order 6).
    assert_eq!(b.free_blocks_per_order(), [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);

    // Step 1: alloc(8) splits 64 -> 32+32 -> 16+16 -> 8+8 and uses one 8.
    let order8 = order_for_frames(8).expect("order");
    assert_eq!(order8, 3);
    let a = b.alloc_order(order8).expect("alloc(8)");
    assert_eq!(rel(a), 0);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(
        (heads(&b, 3), heads(&b, 4), heads(&b, 5)),
        (vec![8], vec![16], vec![32])
    );

    // Step 2: a second alloc(8) takes its buddy, which differs in one bit.
    let c = b.alloc_order(order8).expect("alloc(8)");
    assert_eq!(rel(c), 8);
    assert_eq!(a.as_u64() ^ c.as_u64(), 1 << 3);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);

    // Step 3: alloc(4) splits the other 16 -> 8+8 -> 4+4.
    let d = b
        .alloc_order(order_for_frames(4).expect("order"))
        .expect("alloc(4)");
    assert_eq!(rel(d), 16);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(
        (heads(&b, 2), heads(&b, 3), heads(&b, 5)),
        (vec![20], vec![24], vec![32])
    );
    // 44 pages free, but a 64-page request fails; Linux's figures for order 6:
    // 1000 - (1000 + 44*1000/64) / 3 = 438; all free pages unusable.
    let r = b.fragmentation();
    assert_eq!(r.free_pages, 44);
    assert_eq!(r.extfrag_index[6].to_string(), "0.438");
    assert_eq!(r.unusable_index[6].to_string(), "1.000");
    assert_eq!(r.extfrag_index[5], Milli::REQUEST_SUCCEEDS);
    assert_eq!(b.alloc_order(6), None);

    // Step 4: freeing one 8 leaves it alone: its buddy is still allocated.
    b.free_order(a, order8);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 1, 2, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(heads(&b, 3), vec![0, 24]);

    // Step 5: freeing its buddy coalesces them into a free 16 (and no
    // further: the 16's buddy at 16 is split).
    b.free_order(c, order8);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(heads(&b, 4), vec![0]);

    // Freeing the 4 merges everything back into the 64.
    b.free_order(d, 2);
    assert_eq!(b.free_blocks_per_order(), [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(b.is_fully_coalesced());
}

#[test]
fn buddy_64_page_example_step_by_step() {
    buddy_example(0);
}

#[test]
fn buddy_64_page_example_at_other_bases() {
    buddy_example(64);
    buddy_example(0x1_0000);
}

// ---------------------------------------------------------------------------
// Slab: a 1.7 KiB task structure.
// ---------------------------------------------------------------------------

#[test]
fn slab_task_structs_waste_only_the_slab_tail() {
    let mut b = Buddy::with_default_order(K4, Pfn::new(0), 1024).expect("buddy");
    let (mut slab, k) = Slab::with_kernel_caches(K4, SlabParams::default()).expect("caches");
    let task = slab.cache(k.task).expect("cache");
    // 1741 bytes in 16-byte-aligned slots of 1744; SLUB's order for them is
    // 2: 16 KiB slabs of 9 objects and a 688-byte tail (under 1/16).
    assert_eq!(task.slot_size(), 1744);
    assert_eq!((task.order(), task.objects_per_slab()), (2, 9));

    let objs: Vec<ObjHandle> = (0..90)
        .map(|_| slab.alloc(k.task, &mut b).expect("task"))
        .collect();
    let s = &slab.stats()[1];
    assert_eq!(s.name, "task_struct");
    assert_eq!((s.slabs, s.full_slabs, s.active_objects), (10, 10, 90));
    assert_eq!(s.bytes_from_frames, 10 * 16384);
    assert_eq!(s.tail_bytes, 10 * 688);
    assert_eq!(s.padding_bytes, 90 * 3);
    assert_eq!(s.free_slot_bytes, 0);
    assert_eq!(
        s.internal_fragmentation_bytes,
        10 * 16384 - 90 * TASK_STRUCT_BYTES
    );
    assert_eq!(
        s.internal_fragmentation_bytes,
        s.tail_bytes + s.padding_bytes
    );
    assert_eq!(b.free_frames(), 1024 - 40);

    // The page allocator alone rounds every object up to a whole frame.
    let mut pages = Buddy::with_default_order(K4, Pfn::new(0), 1024).expect("buddy");
    let per_object = u64::from(order_for_frames(TASK_STRUCT_BYTES.div_ceil(4096)).expect("order"));
    for _ in 0..90 {
        pages.alloc_order(per_object as u32).expect("page");
    }
    let page_waste = (1024 - pages.free_frames()) * 4096 - 90 * TASK_STRUCT_BYTES;
    assert_eq!(page_waste, 90 * (4096 - TASK_STRUCT_BYTES));
    assert!(s.internal_fragmentation_bytes * 25 < page_waste);

    // Objects of a cache never overlap and lie inside their slab.
    let mut sorted: Vec<u64> = objs.iter().map(|o| o.addr().as_u64()).collect();
    sorted.sort_unstable();
    assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 1744));

    // Freeing everything keeps one empty slab; shrinking returns it.
    for o in objs {
        slab.free(k.task, &mut b, o).expect("free");
    }
    assert_eq!(slab.stats()[1].empty_slabs, 1);
    assert_eq!(slab.shrink_all(&mut b), 1);
    assert!(b.is_fully_coalesced());
}

#[test]
fn slab_kernel_caches() {
    let (slab, k) = Slab::with_kernel_caches(K4, SlabParams::default()).expect("caches");
    let pt = slab.cache(k.page_table).expect("cache");
    // Page-table pages: whole frames, 8 to a slab, no tail.
    assert_eq!(
        (pt.slot_size(), pt.order(), pt.objects_per_slab()),
        (4096, 3, 8)
    );
    let vma = slab.cache(k.vma).expect("cache");
    assert_eq!(
        (vma.slot_size(), vma.order(), vma.objects_per_slab()),
        (VMA_BYTES, 0, 20)
    );
    assert_eq!(slab.find("vm_area_struct"), Some(k.vma));
}

// ---------------------------------------------------------------------------
// A free list of physical pages whose next pointers live inside the free pages.
// ---------------------------------------------------------------------------

fn link_at(mem: &PhysMem, pfn: u64) -> u64 {
    mem.read_le(PhysAddr::new_unchecked(pfn * 4096), LINK_BYTES as u32)
        .expect("in memory")
}

#[test]
fn free_list_links_are_in_the_free_pages() {
    let mut mem: PhysMem = PhysMem::new(16 * 4096).expect("mem");
    let mut list = FreeList::threaded(&mut mem, K4, Pfn::new(8), 8).expect("list");
    // Frame 8 holds 9+1, ..., frame 15 holds 0 (end).
    for f in 8..15 {
        assert_eq!(link_at(&mem, f), f + 2);
    }
    assert_eq!(link_at(&mem, 15), 0);

    let a = list.alloc_zeroed(&mut mem).expect("ok").expect("frame");
    let b = list.alloc_zeroed(&mut mem).expect("ok").expect("frame");
    assert_eq!((a.as_u64(), b.as_u64()), (8, 9));
    assert_eq!(list.head(), Some(Pfn::new(10)));
    // The kernel zeroed the frames it handed out, link words included.
    assert_eq!((link_at(&mem, 8), link_at(&mem, 9)), (0, 0));

    // Freed frames go to the head; each stores the old head + 1.
    list.push(&mut mem, a).expect("free");
    assert_eq!(link_at(&mem, 8), 11);
    list.push(&mut mem, b).expect("free");
    assert_eq!(link_at(&mem, 9), 9);
    assert_eq!(list.head(), Some(Pfn::new(9)));

    // Walking the words in memory by hand gives the list.
    let mut walk = Vec::new();
    let mut cur = list.head().map(|p| p.as_u64() + 1).unwrap_or(0);
    while cur != 0 {
        walk.push(cur - 1);
        cur = link_at(&mem, cur - 1);
    }
    assert_eq!(walk, [9, 8, 10, 11, 12, 13, 14, 15]);
    assert_eq!(list.free_frames(), 8);
}

// ---------------------------------------------------------------------------
// Property tests against a model.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Allocate (order, or frames, or cache index: the allocator decides).
    Alloc(u8),
    /// Free the live allocation at this index (modulo how many are live).
    Free(usize),
}

fn ops(max_arg: u8) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0..=max_arg).prop_map(Op::Alloc),
            any::<usize>().prop_map(Op::Free),
        ],
        0..200,
    )
}

/// Whether an aligned run of `2^order` frames inside `[first, end)` is free in the model.
fn model_has_free_block(used: &[bool], first: u64, order: u32) -> bool {
    let n = 1u64 << order;
    let end = first + used.len() as u64;
    let mut at = first.next_multiple_of(n);
    while at + n <= end {
        let i = (at - first) as usize;
        if used[i..i + n as usize].iter().all(|&u| !u) {
            return true;
        }
        at += n;
    }
    false
}

proptest! {
    #[test]
    fn buddy_matches_model(
        first in 0u64..200,
        count in 1u64..300,
        max_order in 0u32..7,
        ops in ops(7),
    ) {
        let mut b = Buddy::new(K4, Pfn::new(first), count, max_order).expect("buddy");
        let initial = b.free_blocks_per_order();
        let mut used = vec![false; count as usize];
        let mut live: Vec<(Pfn, u32)> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(order) => {
                    let order = u32::from(order);
                    match b.alloc_order(order) {
                        Some(p) => {
                            prop_assert!(order <= max_order);
                            let n = 1u64 << order;
                            prop_assert_eq!(p.as_u64() % n, 0, "aligned");
                            prop_assert!(p.as_u64() >= first && p.as_u64() + n <= first + count);
                            for f in p.as_u64()..p.as_u64() + n {
                                let u = &mut used[(f - first) as usize];
                                prop_assert!(!*u, "frame {} handed out twice", f);
                                *u = true;
                            }
                            prop_assert!(b.is_allocated_block(p, order));
                            live.push((p, order));
                        }
                        None => prop_assert!(
                            order > max_order || !model_has_free_block(&used, first, order),
                            "order {} refused although an aligned free run exists", order
                        ),
                    }
                }
                Op::Free(k) if !live.is_empty() => {
                    let (p, order) = live.swap_remove(k % live.len());
                    b.try_free_order(p, order).expect("live block");
                    for f in p.as_u64()..p.as_u64() + (1 << order) {
                        used[(f - first) as usize] = false;
                    }
                    prop_assert!(b.try_free_order(p, order).is_err(), "double free caught");
                }
                Op::Free(_) => {}
            }
            let free = used.iter().filter(|&&u| !u).count() as u64;
            prop_assert_eq!(b.free_frames(), free);
            let info = b.free_blocks_per_order();
            prop_assert_eq!(info.iter().enumerate().map(|(o, &n)| n << o).sum::<u64>(), free);
        }
        for (p, order) in live {
            b.free_order(p, order);
        }
        prop_assert!(b.is_fully_coalesced());
        prop_assert_eq!(b.free_blocks_per_order(), initial);
    }

    #[test]
    fn free_list_matches_model(threaded in any::<bool>(), count in 1u64..40, ops in ops(0)) {
        let mut mem: PhysMem = PhysMem::new(64 * 4096).expect("mem");
        let first = Pfn::new(3);
        let mut list = if threaded {
            FreeList::threaded(&mut mem, K4, first, count)
        } else {
            FreeList::new(&mem, K4, first, count)
        }
        .expect("list");
        let mut live: Vec<Pfn> = Vec::new();
        let mut owned = BTreeSet::new();
        for op in ops {
            match op {
                Op::Alloc(_) => match list.alloc_zeroed(&mut mem).expect("no corruption") {
                    Some(p) => {
                        prop_assert!(p.as_u64() >= 3 && p.as_u64() < 3 + count);
                        prop_assert!(owned.insert(p), "frame handed out twice");
                        let mut buf = [0xffu8; 64];
                        mem.read(p.base(K4), &mut buf).expect("read");
                        prop_assert_eq!(buf, [0u8; 64], "previous owner's data leaked");
                        // The new owner fills the frame.
                        mem.write(p.base(K4), &[0xa5; 64]).expect("write");
                        live.push(p);
                    }
                    None => prop_assert_eq!(owned.len() as u64, count),
                },
                Op::Free(k) if !live.is_empty() => {
                    let p = live.swap_remove(k % live.len());
                    owned.remove(&p);
                    list.push(&mut mem, p).expect("live frame");
                    prop_assert!(list.push(&mut mem, p).is_err(), "double free caught");
                }
                Op::Free(_) => {}
            }
            prop_assert_eq!(list.free_frames(), count - owned.len() as u64);
            // The chain in memory holds exactly the free frames that have links.
            let chain: BTreeSet<Pfn> = list.chain(&mem).collect();
            prop_assert_eq!(chain.len() as u64, list.free_frames() - list.unlinked_frames());
            prop_assert!(chain.iter().all(|p| !owned.contains(p) && list.is_free(*p)));
        }
    }

    #[test]
    fn slab_matches_model(ops in ops(2)) {
        let mut b = Buddy::with_default_order(K4, Pfn::new(0), 256).expect("buddy");
        let mut slab = Slab::new(K4, SlabParams::default());
        let sizes = [(VMA_BYTES, 8), (TASK_STRUCT_BYTES, 16), (4096, 4096)];
        let ids: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(s, a))| slab.create_cache(&format!("c{i}"), s, a).expect("cache"))
            .collect();
        // Live objects: address -> (cache index, size, handle).
        let mut live: BTreeMap<u64, (usize, u64, ObjHandle)> = BTreeMap::new();
        let mut order: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(c) => {
                    let c = usize::from(c);
                    match slab.alloc(ids[c], &mut b) {
                        Ok(o) => {
                            let a = o.addr().as_u64();
                            let size = sizes[c].0;
                            prop_assert_eq!(a % sizes[c].1, 0, "aligned");
                            if let Some((&pa, &(_, ps, _))) = live.range(..a).next_back() {
                                prop_assert!(pa + ps <= a, "overlaps the object below");
                            }
                            if let Some((&na, _)) = live.range(a..).next() {
                                prop_assert!(a + size <= na, "overlaps the object above");
                            }
                            live.insert(a, (c, size, o));
                            order.push(a);
                        }
                        Err(e) => prop_assert!(
                            matches!(e, vmsim::alloc::SlabError::OutOfMemory { .. }),
                            "{e}"
                        ),
                    }
                }
                Op::Free(k) if !order.is_empty() => {
                    let a = order.swap_remove(k % order.len());
                    let (c, _, h) = live.remove(&a).expect("live");
                    slab.free(ids[c], &mut b, h).expect("live object");
                    prop_assert!(slab.free(ids[c], &mut b, h).is_err(), "double free caught");
                }
                Op::Free(_) => {}
            }
            let stats = slab.stats();
            for (c, s) in stats.iter().enumerate() {
                let n = live.values().filter(|&&(lc, _, _)| lc == c).count() as u64;
                prop_assert_eq!(s.active_objects, n);
                prop_assert_eq!(
                    s.internal_fragmentation_bytes,
                    s.tail_bytes + s.padding_bytes + s.free_slot_bytes
                );
                prop_assert!(s.empty_slabs <= 1);
            }
            let held: u64 = stats.iter().map(|s| s.bytes_from_frames / 4096).sum();
            prop_assert_eq!(b.free_frames(), 256 - held);
        }
        for (c, _, h) in live.into_values() {
            slab.free(ids[c], &mut b, h).expect("live object");
        }
        slab.shrink_all(&mut b);
        prop_assert!(b.is_fully_coalesced());
    }

    #[test]
    fn contiguous_matches_model(p in 0usize..5, ops in ops(9)) {
        let placement = Placement::ALL[p];
        let mut a = ContiguousAllocator::new(Pfn::new(5), 40, placement).expect("alloc");
        let mut used = [false; 40];
        let mut live: Vec<Extent> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(n) => {
                    let n = u64::from(n) + 1;
                    let fits = |i: usize| used[i..i + n as usize].iter().all(|&u| !u);
                    // First fit takes the lowest run of n free frames, exactly;
                    // every strategy but size-aligned fails only if none exists.
                    let lowest = (0..=40 - n as usize).find(|&i| fits(i));
                    match a.alloc(n) {
                        Ok(e) => {
                            let at = (e.start.as_u64() - 5) as usize;
                            prop_assert!(at + n as usize <= 40 && fits(at), "overlap");
                            if placement == Placement::FirstFit {
                                prop_assert_eq!(Some(at), lowest);
                            }
                            if placement == Placement::SizeAligned {
                                prop_assert_eq!(e.start.as_u64() % n.next_power_of_two(), 0);
                            }
                            used[at..at + n as usize].fill(true);
                            live.push(e);
                        }
                        Err(ContigError::NoFit { requested, free, largest_hole }) => {
                            prop_assert_eq!(requested, n);
                            prop_assert_eq!(free, used.iter().filter(|&&u| !u).count() as u64);
                            if placement != Placement::SizeAligned {
                                prop_assert_eq!(lowest, None);
                                prop_assert!(largest_hole < n);
                            }
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Free(k) if !live.is_empty() => {
                    let e = live.swap_remove(k % live.len());
                    a.free(e.start).expect("live");
                    used[(e.start.as_u64() - 5) as usize..][..e.frames as usize].fill(false);
                }
                Op::Free(_) => {}
            }
            prop_assert_eq!(a.free_frames(), used.iter().filter(|&&u| !u).count() as u64);
            // Holes are maximal: never two touching.
            let holes: Vec<Extent> = a.holes().collect();
            prop_assert!(holes.windows(2).all(|w| w[0].start.as_u64() + w[0].frames < w[1].start.as_u64()));
        }
    }
}

proptest! {
    /// The textbook free list under every combination of fit, order,
    /// coalescing, header and alignment: free blocks and live blocks always
    /// tile the region exactly; a failure means no block could hold the
    /// request; first fit in address order takes the lowest block that fits;
    /// boundary-tag coalescing in address order leaves no two free
    /// neighbours.
    #[test]
    fn free_space_tiles_the_region(
        p in 0usize..5,
        o in 0usize..5,
        c in 0usize..3,
        header in 0u64..4,
        align in 1u64..5,
        ops in ops(12),
    ) {
        let cfg = FreeSpaceConfig {
            placement: Placement::ALL[p],
            order: ListOrder::ALL[o],
            coalesce: Coalesce::ALL[c],
            header,
            align,
            ..FreeSpaceConfig::new(100, 64)
        };
        let mut h = FreeSpace::new(cfg).expect("valid");
        let mut live: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(n) => {
                    let n = u64::from(n) + 1;
                    let needed = h.block_size(n).expect("small");
                    let before: Vec<_> = h.free_list().to_vec();
                    match h.alloc(n) {
                        Ok(a) => {
                            prop_assert_eq!(a.ptr, a.block.addr + header);
                            prop_assert_eq!(a.block.size, needed);
                            prop_assert!(a.searched >= 1 && a.searched <= before.len());
                            if cfg.placement == Placement::FirstFit && cfg.order == ListOrder::Address {
                                let lowest = before.iter().find(|b| b.size >= needed).map(|b| b.addr);
                                prop_assert_eq!(Some(a.block.addr), lowest);
                            }
                            live.push(a.ptr);
                        }
                        Err(FreeSpaceError::NoFit { searched, largest, .. }) => {
                            prop_assert_eq!(searched, before.len());
                            if cfg.placement != Placement::SizeAligned {
                                prop_assert!(largest < needed);
                            }
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Free(k) if !live.is_empty() => {
                    let ptr = live.swap_remove(k % live.len());
                    h.free(ptr).expect("live");
                    prop_assert_eq!(h.free(ptr), Err(FreeSpaceError::NotAllocated(ptr)));
                }
                Op::Free(_) => {}
            }
            let mut tiles: Vec<(u64, u64)> = h.free_list().iter().map(|b| (b.addr, b.size)).collect();
            tiles.extend(h.allocations().map(|(b, _, _)| (b.addr, b.size)));
            tiles.sort_unstable();
            let mut at = 100;
            for (a, n) in tiles {
                prop_assert_eq!(a, at, "gap or overlap");
                prop_assert!(n > 0);
                at += n;
            }
            prop_assert_eq!(at, 164);
            let free: u64 = h.free_list().iter().map(|b| b.size).sum();
            prop_assert_eq!(free, h.free_bytes());
            if cfg.coalesce == Coalesce::Address && cfg.order == ListOrder::Address {
                prop_assert!(h.free_list().windows(2).all(|w| w[0].end() < w[1].addr));
            }
        }
    }
}

#[test]
fn fragmentation_indices_of_the_buddy_example() {
    // After step 3 of the buddy example: one 4, one 8, one 32 free.
    let free = [0, 0, 1, 1, 0, 1, 0];
    assert_eq!(fragmentation_index(&free, 6).thousandths(), 438);
    assert_eq!(unusable_free_index(&free, 6).thousandths(), 1000);
    assert_eq!(unusable_free_index(&free, 5).thousandths(), 272);
    assert_eq!(unusable_free_index(&free, 2).thousandths(), 0);
}

// ---------------------------------------------------------------------------
// The buddy allocator's implicit initial blocks: a fresh allocator keeps its
// initial max-order blocks unwritten; after any calls it must answer, choose
// and checkpoint exactly as one whose blocks were all written at the start.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum BuddyOp {
    Alloc(u8),
    Free(usize),
    /// `alloc_at` of the block of this order holding this frame offset.
    At(u16, u8),
    /// Checkpoint the lazy allocator and go on with the one read back.
    Save,
}

fn buddy_ops() -> impl Strategy<Value = Vec<BuddyOp>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0u8..=6).prop_map(BuddyOp::Alloc),
            3 => any::<usize>().prop_map(BuddyOp::Free),
            1 => (any::<u16>(), 0u8..=6).prop_map(|(f, o)| BuddyOp::At(f, o)),
            1 => Just(BuddyOp::Save),
        ],
        0..120,
    )
}

/// Everything a caller can see of a buddy allocator, checkpoint bytes included.
fn buddy_view(b: &Buddy) -> (Vec<Vec<u64>>, u64, bool, Vec<u8>) {
    let lists = (0..=b.max_order() + 1)
        .map(|o| b.free_blocks(o).map(Pfn::as_u64).collect())
        .collect();
    let bytes = postcard::to_allocvec(b).expect("checkpoint");
    (lists, b.free_frames(), b.is_fully_coalesced(), bytes)
}

proptest! {
    #[test]
    fn implicit_initial_blocks_behave_as_written_ones(
        first in 0u64..200,
        count in 1u64..600,
        max_order in 0u32..7,
        ops in buddy_ops(),
    ) {
        let mut lazy = Buddy::new(K4, Pfn::new(first), count, max_order).expect("buddy");
        let mut eager = lazy.clone();
        eager.materialize();
        prop_assert_eq!(buddy_view(&lazy), buddy_view(&eager));
        let mut live: Vec<(Pfn, u32)> = Vec::new();
        for op in ops {
            match op {
                BuddyOp::Alloc(order) => {
                    let order = u32::from(order);
                    let got = lazy.alloc_order(order);
                    prop_assert_eq!(got, eager.alloc_order(order));
                    live.extend(got.map(|p| (p, order)));
                }
                BuddyOp::Free(k) if !live.is_empty() => {
                    let (p, order) = live.swap_remove(k % live.len());
                    lazy.free_order(p, order);
                    eager.free_order(p, order);
                }
                BuddyOp::Free(_) => {}
                BuddyOp::At(f, order) => {
                    let order = u32::from(order);
                    let p = (first + u64::from(f) % count) & !((1u64 << order) - 1);
                    let got = lazy.alloc_at(Pfn::new(p), order);
                    prop_assert_eq!(&got, &eager.alloc_at(Pfn::new(p), order));
                    if got.is_ok() {
                        live.push((Pfn::new(p), order));
                    }
                }
                BuddyOp::Save => {
                    let bytes = postcard::to_allocvec(&lazy).expect("checkpoint");
                    lazy = postcard::from_bytes(&bytes).expect("restore");
                }
            }
            prop_assert_eq!(buddy_view(&lazy), buddy_view(&eager));
        }
    }
}

#[test]
fn a_fresh_buddy_checkpoints_as_one_written_eagerly() {
    // The default machine's shape: 262,144 frames, 256 initial max-order
    // blocks; an unaligned region has smaller blocks at both ends too.
    for (first, count) in [(0, 262_144), (3, 5000)] {
        let lazy = Buddy::with_default_order(K4, Pfn::new(first), count).expect("buddy");
        let mut eager = lazy.clone();
        eager.materialize();
        assert_eq!(buddy_view(&lazy), buddy_view(&eager));
        assert_eq!(
            lazy.free_blocks(10).next(),
            Some(Pfn::new(first.next_multiple_of(1024)))
        );
    }
}
