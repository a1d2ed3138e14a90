//! Radix page tables on every format against a simple model: a list of
//! mapped ranges. Translation returns what was mapped; unmapped addresses
//! fault at the level where the hardware finds the first missing entry;
//! the tables that exist are exactly the ones the mapped layout needs.

use proptest::prelude::*;
use vmsim::addr::{PageSize, Pfn, PhysAddr, VirtAddr};
use vmsim::alloc::{FirstFit, FrameAllocator};
use vmsim::calc::{Geometry, SparseLayout, UsedRegion, UsedRegions};
use vmsim::paging::{
    Canonical, Entry, FaultKind, Format, MapError, PteFlags, RadixTable, Translation, UserBits,
};
use vmsim::phys::PhysMem;

fn formats() -> Vec<Format> {
    let classroom = Format::user(
        "classroom-12",
        12,
        PageSize::from_bytes(64).expect("size"),
        &[2, 4],
        UserBits {
            writable: Some(6),
            ..UserBits::new(1, 7, 0, 6)
        },
    )
    .expect("valid format");
    let mut v: Vec<Format> = Format::NAMES
        .iter()
        .map(|n| Format::by_name(n).expect("built in"))
        .collect();
    v.push(classroom);
    v
}

/// A mapping of the model: page base, size, frame base.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    va: u64,
    size: u64,
    frame: u64,
}

fn sign_extend(fmt: &Format, va: u64) -> u64 {
    let b = fmt.va_bits();
    if fmt.canonical() == Canonical::SignExtend && b < 64 && va >> (b - 1) & 1 == 1 {
        va | !((1u64 << b) - 1)
    } else {
        va
    }
}

/// Builds a canonical address from per-level raw choices.
fn address(fmt: &Format, picks: &[u64], offset: u64) -> u64 {
    let mut va = offset & fmt.page_size().mask();
    for (level, pick) in fmt.levels().iter().zip(picks) {
        // Few distinct values per level, so mappings share tables.
        let idx = pick % 4 * ((1u64 << level.bits) / 4).max(1) % (1u64 << level.bits);
        va |= idx << level.shift;
    }
    sign_extend(fmt, va)
}

fn mask_va(fmt: &Format, va: u64) -> u64 {
    if fmt.va_bits() >= 64 {
        va
    } else {
        va & ((1u64 << fmt.va_bits()) - 1)
    }
}

struct Machine {
    fmt: Format,
    mem: PhysMem,
    alloc: FirstFit,
    table: RadixTable,
}

impl Machine {
    fn new(fmt: Format) -> Self {
        let frames = 4096u64;
        let mut mem: PhysMem = PhysMem::new(frames * fmt.page_size().bytes()).expect("memory");
        let mut alloc = FirstFit::new(fmt.page_size(), Pfn::new(0), frames);
        let table = RadixTable::new(&fmt, &mut mem, &mut alloc).expect("root");
        Self {
            fmt,
            mem,
            alloc,
            table,
        }
    }
}

fn expected_tables(fmt: &Format, model: &[Mapping]) -> Vec<u64> {
    let mut counts = vec![1u64; fmt.levels().len()];
    for (idx, _) in fmt.levels().iter().enumerate().skip(1) {
        // A table at level idx exists for each distinct prefix above it that
        // has a mapping smaller than the span of the parent's entry.
        let parent_shift = fmt.levels()[idx - 1].shift;
        let mut prefixes: Vec<u64> = model
            .iter()
            .filter(|m| m.size < 1u64 << parent_shift)
            .map(|m| mask_va(fmt, m.va) >> parent_shift)
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        counts[idx] = prefixes.len() as u64;
    }
    counts
}

fn check_layout(m: &Machine, model: &[Mapping], probes: &[u64]) -> Result<(), TestCaseError> {
    let fmt = &m.fmt;
    for map in model {
        let t = m
            .table
            .translate(fmt, &m.mem, VirtAddr::new(map.va))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.frame.as_u64(), map.frame);
        prop_assert_eq!(t.size.bytes(), map.size);
        let last = map.va + map.size - 1;
        let t = m
            .table
            .translate(fmt, &m.mem, VirtAddr::new(last))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.pa.as_u64(), map.frame + map.size - 1);
    }
    for &va in probes {
        let covering = model
            .iter()
            .find(|x| (x.va..=x.va + (x.size - 1)).contains(&va));
        let got = m.table.translate(fmt, &m.mem, VirtAddr::new(va));
        match covering {
            Some(x) => {
                prop_assert_eq!(got.map(|t| t.pa.as_u64()).ok(), Some(x.frame + (va - x.va)))
            }
            None => {
                let fault = got
                    .err()
                    .ok_or_else(|| TestCaseError::fail("unmapped address translated"))?;
                prop_assert_eq!(fault.kind, FaultKind::NotPresent);
                // The first level whose entry covers no mapping.
                let expect = fmt
                    .levels()
                    .iter()
                    .find(|l| {
                        let span = l.shift;
                        !model
                            .iter()
                            .any(|x| mask_va(fmt, x.va) >> span == mask_va(fmt, va) >> span)
                    })
                    .map(|l| l.number);
                prop_assert_eq!(fault.level, expect);
            }
        }
    }
    let tables = m
        .table
        .tables_per_level(fmt, &m.mem)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&tables, &expected_tables(fmt, model));
    // With base pages only, `calc` predicts the same tables for that sparse layout.
    if !model.is_empty() && model.iter().all(|x| x.size == fmt.page_size().bytes()) {
        let geometry = Geometry::new(
            fmt.va_bits(),
            fmt.page_size(),
            fmt.entry_bytes(),
            fmt.level_bits(),
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let regions: Vec<UsedRegion> = model
            .iter()
            .map(|x| {
                let start = u128::from(mask_va(fmt, x.va));
                UsedRegion {
                    start,
                    end: start + u128::from(x.size),
                }
            })
            .collect();
        let used = UsedRegions::new(&regions, fmt.va_bits())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let layout = SparseLayout::compute(&geometry, &used)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let predicted: Vec<u64> = layout.levels.iter().map(|l| l.tables as u64).collect();
        prop_assert_eq!(tables, predicted);
    }
    Ok(())
}

/// The flags of the leaf entry a walk read (`None` if it is not a leaf).
fn leaf_flags(fmt: &Format, t: &Translation) -> Option<PteFlags> {
    match fmt.decode(t.leaf_idx, t.leaf_raw) {
        Entry::Leaf { flags, .. } => Some(flags),
        _ => None,
    }
}

fn run_case(fmt: Format, ops: Vec<(bool, usize, Vec<u64>, u64)>) -> Result<(), TestCaseError> {
    let mut m = Machine::new(fmt);
    let initial_free = m.alloc.free_frames();
    let sizes = m.fmt.page_sizes();
    let mut model: Vec<Mapping> = Vec::new();
    let mut probes = Vec::new();
    let mut next_frame = 1u64 << 30;
    for (unmap, size_pick, picks, offset) in ops {
        let va = address(&m.fmt, &picks, offset);
        probes.push(va);
        if unmap {
            let covering = model
                .iter()
                .position(|x| (x.va..=x.va + (x.size - 1)).contains(&va));
            // Half the time through the leaf entry a walk found (what the
            // reclaimer does): the same outcome, tables freed alike.
            let known = m
                .table
                .translate(&m.fmt, &m.mem, VirtAddr::new(va))
                .ok()
                .filter(|_| offset & 1 == 1);
            let got = match known {
                // The leaf's flags as the entry the walk read decodes:
                // `unmap_at` reads it itself (from the table lent in place).
                Some(t) => m
                    .table
                    .unmap_at(
                        &m.fmt,
                        &mut m.mem,
                        &mut m.alloc,
                        VirtAddr::new(va),
                        t.leaf_idx,
                        t.leaf_addr,
                    )
                    .inspect(|u| {
                        assert_eq!(Some(u.flags), leaf_flags(&m.fmt, &t), "unmap_at's flags")
                    }),
                None => m
                    .table
                    .unmap(&m.fmt, &mut m.mem, &mut m.alloc, VirtAddr::new(va)),
            };
            match covering {
                Some(i) => {
                    let x = model.remove(i);
                    let u = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(u.frame.as_u64(), x.frame);
                    prop_assert_eq!(u.flush.page().as_u64(), x.va);
                    u.flush.ignore();
                }
                None => prop_assert!(
                    matches!(got, Err(MapError::NotMapped { .. })),
                    "unmap of an unmapped page"
                ),
            }
            continue;
        }
        let size = sizes[size_pick % sizes.len()];
        let page = va & !size.mask();
        let frame_bits = m.fmt.pa_bits().min(40);
        next_frame =
            (next_frame + size.bytes()).next_multiple_of(size.bytes()) % (1u64 << frame_bits);
        let frame = next_frame & !size.mask();
        let overlaps = model
            .iter()
            .any(|x| page <= x.va + (x.size - 1) && x.va <= page + (size.bytes() - 1));
        let got = m.table.map(
            &m.fmt,
            &mut m.mem,
            &mut m.alloc,
            VirtAddr::new(page),
            PhysAddr::new(frame).expect("in range"),
            size,
            PteFlags::READ | PteFlags::WRITE | PteFlags::USER,
        );
        if overlaps {
            prop_assert!(
                matches!(got, Err(MapError::AlreadyMapped { .. })),
                "{got:?}"
            );
        } else {
            got.map_err(|e| TestCaseError::fail(e.to_string()))?
                .ignore();
            model.push(Mapping {
                va: page,
                size: size.bytes(),
                frame,
            });
        }
        check_layout(&m, &model, &probes)?;
    }
    // Unmapping everything frees every table but the root (every other
    // page through its known leaf entry).
    for (i, x) in std::mem::take(&mut model).into_iter().enumerate() {
        let va = VirtAddr::new(x.va);
        let u = match m.table.translate(&m.fmt, &m.mem, va) {
            Ok(t) if i % 2 == 0 => m
                .table
                .unmap_at(
                    &m.fmt,
                    &mut m.mem,
                    &mut m.alloc,
                    va,
                    t.leaf_idx,
                    t.leaf_addr,
                )
                .inspect(|u| assert_eq!(Some(u.flags), leaf_flags(&m.fmt, &t), "unmap_at's flags")),
            _ => m.table.unmap(&m.fmt, &mut m.mem, &mut m.alloc, va),
        }
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(u.frame.as_u64(), x.frame);
        u.flush.ignore();
    }
    prop_assert_eq!(m.alloc.free_frames(), initial_free);
    let tables = m
        .table
        .tables_per_level(&m.fmt, &m.mem)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(tables.iter().sum::<u64>(), 1);
    m.table
        .destroy(&m.fmt, &mut m.mem, &mut m.alloc)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        m.alloc.free_frames(),
        initial_free + (1 << m.fmt.table_order(0))
    );
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<(bool, usize, Vec<u64>, u64)>> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.3),
            0usize..3,
            prop::collection::vec(0u64..8, 5),
            any::<u64>(),
        ),
        1..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn radix_tables_match_the_model(fmt_idx in 0usize..8, ops in ops()) {
        let fmt = formats().swap_remove(fmt_idx);
        run_case(fmt, ops)?;
    }
}

#[test]
fn every_format_is_tested() {
    assert_eq!(formats().len(), 8);
}

#[test]
fn remap_without_unmap_is_refused_and_superpages_block_tables() {
    let mut m = Machine::new(Format::x86_64());
    let flags = PteFlags::READ | PteFlags::WRITE;
    let f = m
        .table
        .map(
            &m.fmt,
            &mut m.mem,
            &mut m.alloc,
            VirtAddr::new(0x20_0000),
            PhysAddr::new(0x4000_0000).expect("pa"),
            PageSize::SIZE_2M,
            flags,
        )
        .expect("map 2 MiB");
    assert_eq!(f.size(), PageSize::SIZE_2M);
    f.ignore();
    let e = m.table.map(
        &m.fmt,
        &mut m.mem,
        &mut m.alloc,
        VirtAddr::new(0x20_1000),
        PhysAddr::new(0x1000).expect("pa"),
        PageSize::SIZE_4K,
        flags,
    );
    assert!(
        matches!(e, Err(MapError::AlreadyMapped { level: 2, .. })),
        "{e:?}"
    );
    let e = m.table.map(
        &m.fmt,
        &mut m.mem,
        &mut m.alloc,
        VirtAddr::new(0x20_1000),
        PhysAddr::new(0x1000).expect("pa"),
        PageSize::SIZE_2M,
        flags,
    );
    assert!(matches!(e, Err(MapError::Misaligned { .. })), "{e:?}");
    let e = m.table.map(
        &m.fmt,
        &mut m.mem,
        &mut m.alloc,
        VirtAddr::new(0x8000_0000_0000),
        PhysAddr::new(0x1000).expect("pa"),
        PageSize::SIZE_4K,
        flags,
    );
    assert!(matches!(e, Err(MapError::Address { .. })), "{e:?}");
}

#[test]
fn protect_keeps_frame_and_status_bits() {
    let mut m = Machine::new(Format::sv39());
    let va = VirtAddr::new(0x1234_5000);
    m.table
        .map(
            &m.fmt,
            &mut m.mem,
            &mut m.alloc,
            va,
            PhysAddr::new(0x8000_0000).expect("pa"),
            PageSize::SIZE_4K,
            PteFlags::READ | PteFlags::WRITE | PteFlags::ACCESSED,
        )
        .expect("map")
        .ignore();
    m.table
        .protect(&m.fmt, &mut m.mem, va, PteFlags::READ)
        .expect("protect")
        .ignore();
    let t = m.table.translate(&m.fmt, &m.mem, va).expect("mapped");
    assert_eq!(t.frame.as_u64(), 0x8000_0000);
    assert!(!t.flags.contains(PteFlags::WRITE));
    assert!(t.flags.contains(PteFlags::ACCESSED));
}

#[test]
fn out_of_frames_is_an_error_not_a_panic() {
    let fmt = Format::x86_64();
    let mut mem: PhysMem = PhysMem::new(16 * 4096).expect("memory");
    let mut alloc = FirstFit::new(PageSize::SIZE_4K, Pfn::new(0), 2);
    let t = RadixTable::new(&fmt, &mut mem, &mut alloc).expect("root");
    let e = t.map(
        &fmt,
        &mut mem,
        &mut alloc,
        VirtAddr::new(0x1000),
        PhysAddr::new(0x8000).expect("pa"),
        PageSize::SIZE_4K,
        PteFlags::READ,
    );
    assert_eq!(e, Err(MapError::OutOfFrames));
}

/// `unmap_at` reads the entry it is pointed at (from the table's bytes lent
/// in place, when memory lends them) and no other: pages mapped side by
/// side to different frames with different permissions, each unmapped
/// through the leaf a walk found, give back their own frame and flags, in
/// every format (8- and 4-byte entries); the last one empties the table,
/// which `unmap` then frees.
#[test]
fn unmap_at_reads_the_entry_it_is_given() {
    for fmt in formats() {
        let mut m = Machine::new(fmt);
        let page = m.fmt.page_size();
        let pages: Vec<(u64, u64, PteFlags)> = (0..8u64)
            .map(|i| {
                let flags = if i % 2 == 0 {
                    PteFlags::READ | PteFlags::WRITE | PteFlags::USER
                } else {
                    PteFlags::READ | PteFlags::USER
                };
                ((16 + i) * page.bytes(), (1 + 3 * i) * page.bytes(), flags)
            })
            .collect();
        for &(va, frame, flags) in &pages {
            m.table
                .map(
                    &m.fmt,
                    &mut m.mem,
                    &mut m.alloc,
                    VirtAddr::new(va),
                    PhysAddr::new(frame).expect("pa"),
                    page,
                    flags,
                )
                .expect("map")
                .ignore();
        }
        for &(va, frame, _) in &pages {
            let va = VirtAddr::new(va);
            let t = m.table.translate(&m.fmt, &m.mem, va).expect("mapped");
            let u = m
                .table
                .unmap_at(
                    &m.fmt,
                    &mut m.mem,
                    &mut m.alloc,
                    va,
                    t.leaf_idx,
                    t.leaf_addr,
                )
                .expect("unmap_at");
            assert_eq!(u.frame.as_u64(), frame, "{}: frame", m.fmt.name());
            assert_eq!(
                Some(u.flags),
                leaf_flags(&m.fmt, &t),
                "{}: flags",
                m.fmt.name()
            );
            u.flush.ignore();
            assert!(
                m.table.translate(&m.fmt, &m.mem, va).is_err(),
                "still mapped"
            );
        }
        let tables = m.table.tables_per_level(&m.fmt, &m.mem).expect("tables");
        assert_eq!(tables.iter().sum::<u64>(), 1, "{}: tables", m.fmt.name());
    }
}

/// A [`FirstFit`] that logs the frames freed, in order: two teardowns
/// free the same tables in the same order, or a later allocation differs.
#[derive(Debug, Clone)]
struct LoggedFrees {
    inner: FirstFit,
    freed: Vec<(u64, u32)>,
}

impl FrameAllocator for LoggedFrees {
    fn frame_size(&self) -> PageSize {
        self.inner.frame_size()
    }
    fn total_frames(&self) -> u64 {
        self.inner.total_frames()
    }
    fn free_frames(&self) -> u64 {
        self.inner.free_frames()
    }
    fn alloc_order(&mut self, order: u32) -> Option<Pfn> {
        self.inner.alloc_order(order)
    }
    fn free_order(&mut self, pfn: Pfn, order: u32) {
        self.freed.push((pfn.as_u64(), order));
        self.inner.free_order(pfn, order);
    }
}

/// Every byte of `mem`'s first `len` bytes.
fn bytes_of(mem: &PhysMem, len: u64) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    mem.read(PhysAddr::new(0).expect("zero"), &mut v)
        .expect("in range");
    v
}

/// A new machine of `fmt` (its frees logged) with the pages `maps` picks
/// (a page size, the table indices and an offset each) mapped to frames
/// one after another from 1 GiB, with the flags `flags_of` gives for the
/// offset; an overlapping mapping is refused and the layout keeps the
/// others. Also returns the last frame given.
fn mapped_randomly(
    fmt: Format,
    maps: Vec<(usize, Vec<u64>, u64)>,
    flags_of: impl Fn(u64) -> PteFlags,
) -> (Format, PhysMem, LoggedFrees, RadixTable, u64) {
    let Machine {
        fmt,
        mut mem,
        alloc,
        table,
    } = Machine::new(fmt);
    let mut alloc = LoggedFrees {
        inner: alloc,
        freed: Vec::new(),
    };
    let fmt = &fmt;
    let sizes = fmt.page_sizes();
    let mut next_frame = 1u64 << 30;
    for (size_pick, picks, offset) in maps {
        let size = sizes[size_pick % sizes.len()];
        let page = address(fmt, &picks, offset) & !size.mask();
        next_frame = (next_frame + size.bytes()).next_multiple_of(size.bytes())
            % (1u64 << fmt.pa_bits().min(40));
        let frame = PhysAddr::new(next_frame & !size.mask()).expect("in range");
        if let Ok(f) = table.map(
            fmt,
            &mut mem,
            &mut alloc,
            VirtAddr::new(page),
            frame,
            size,
            flags_of(offset),
        ) {
            f.ignore();
        }
    }
    (fmt.clone(), mem, alloc, table, next_frame)
}

/// An exit's teardown (`RadixTable::unmap_listed`: each leaf `leaves`
/// listed unmapped in order, where the listing found it, told of the next
/// leaf listed) against the same
/// teardown through `unmap` (a walk from the root per page): the same
/// answers, the same tables freed in the same order, the same memory.
fn teardown_case(fmt: Format, maps: Vec<(usize, Vec<u64>, u64)>) -> Result<(), TestCaseError> {
    let (fmt, mut mem, mut alloc, table, _) =
        mapped_randomly(fmt, maps, |offset| match offset % 3 {
            0 => PteFlags::READ | PteFlags::USER,
            1 => PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::ACCESSED,
            _ => PteFlags::READ | PteFlags::WRITE | PteFlags::ACCESSED | PteFlags::DIRTY,
        });
    let leaves = table.leaves(&fmt, &mem).expect("listed");
    let (mut mem2, mut alloc2) = (mem.clone(), alloc.clone());
    for (i, leaf) in leaves.iter().enumerate() {
        let slow = table
            .unmap(&fmt, &mut mem, &mut alloc, leaf.page)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // With the next leaf listed, as an exit passes it (the skip of the
        // emptiness tests when it shares the table).
        let fast = table
            .unmap_listed(&fmt, &mut mem2, &mut alloc2, leaf, leaves.get(i + 1))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            (fast.frame, fast.size, fast.flags),
            (slow.frame, slow.size, slow.flags)
        );
        prop_assert_eq!(fast.flush.page(), slow.flush.page());
        prop_assert_eq!(fast.flush.size(), slow.flush.size());
        fast.flush.ignore();
        slow.flush.ignore();
        prop_assert_eq!(&alloc2.freed, &alloc.freed);
    }
    prop_assert_eq!(alloc2.free_frames(), alloc.free_frames());
    let len = 4096 * fmt.page_size().bytes();
    prop_assert!(
        bytes_of(&mem2, len) == bytes_of(&mem, len),
        "memory differs"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn teardown_through_the_listing_equals_unmap(
        fmt_idx in 0usize..8,
        maps in prop::collection::vec(
            (0usize..3, prop::collection::vec(0u64..8, 5), any::<u64>()),
            1..40,
        ),
    ) {
        let fmt = formats().swap_remove(fmt_idx);
        teardown_case(fmt, maps)?;
    }
}

/// A first-touch fault's lookup (`RadixTable::translate_or_place`) against
/// `translate` and `map`: the same translation when mapped; when not, the
/// empty entry it names is where `map` writes the page's leaf, and
/// `map_at` there changes memory and frees and takes frames as `map` does.
fn place_case(
    fmt: Format,
    maps: Vec<(usize, Vec<u64>, u64)>,
    probes: Vec<(Vec<u64>, u64)>,
) -> Result<(), TestCaseError> {
    let flags = PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::ACCESSED;
    let (fmt, mut mem, mut alloc, table, mut next_frame) = mapped_randomly(fmt, maps, |_| flags);
    let page_size = fmt.page_size();
    let leaf_idx = fmt.level_for_size(page_size).expect("a base page level");
    for (picks, offset) in probes {
        let va = VirtAddr::new(address(&fmt, &picks, offset));
        let slow = table.translate(&fmt, &mem, va);
        match table.translate_or_place(&fmt, &mem, va) {
            Ok(t) => prop_assert_eq!(Ok(t), slow),
            Err(place) => {
                prop_assert!(slow.is_err(), "translate found {slow:?}");
                let Some((idx, addr)) = place else {
                    continue;
                };
                let page = va.align_down(page_size);
                next_frame = (next_frame + page_size.bytes()) % (1u64 << fmt.pa_bits().min(40));
                let frame = PhysAddr::new(next_frame & !page_size.mask()).expect("in range");
                let (mut mem2, mut alloc2) = (mem.clone(), alloc.clone());
                let at = table.map_at(
                    &fmt,
                    &mut mem2,
                    &mut alloc2,
                    page,
                    frame,
                    page_size,
                    flags,
                    idx,
                    addr,
                );
                let walked = table.map(&fmt, &mut mem, &mut alloc, page, frame, page_size, flags);
                prop_assert_eq!(at.is_ok(), walked.is_ok());
                if let (Ok(a), Ok(w)) = (at, walked) {
                    a.ignore();
                    w.ignore();
                }
                if idx == leaf_idx {
                    let t = table.translate(&fmt, &mem, va).expect("just mapped");
                    prop_assert_eq!((t.leaf_idx, t.leaf_addr), (idx, addr));
                }
                prop_assert_eq!(&alloc2.freed, &alloc.freed);
                prop_assert_eq!(alloc2.free_frames(), alloc.free_frames());
                let len = 4096 * page_size.bytes();
                prop_assert!(
                    bytes_of(&mem2, len) == bytes_of(&mem, len),
                    "memory differs"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_lookups_empty_entry_is_where_map_writes(
        fmt_idx in 0usize..8,
        maps in prop::collection::vec(
            (0usize..3, prop::collection::vec(0u64..8, 5), any::<u64>()),
            0..24,
        ),
        probes in prop::collection::vec(
            (prop::collection::vec(0u64..8, 5), any::<u64>()),
            1..8,
        ),
    ) {
        let fmt = formats().swap_remove(fmt_idx);
        place_case(fmt, maps, probes)?;
    }
}
