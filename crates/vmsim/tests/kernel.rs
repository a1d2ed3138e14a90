//! The kernel: fork with copy-on-write, vfork, exit, brk, mmap, munmap,
//! mprotect, shared memory and faults, with real bytes, against a model.

use std::collections::HashMap;

use proptest::prelude::*;
use vmsim::addr::{PageSize, PhysAddr, Pid, VirtAddr};
use vmsim::kernel::{
    Kernel, KernelConfig, Layout, MmapFlags, Prot, SegvReason, ShmId, SystemPolicy,
};
use vmsim::machine::{self, KernelFaults};
use vmsim::mmu::{AccessKind, Mmu, Privilege, TlbConfig};
use vmsim::paging::inverted::InvertedSearch;
use vmsim::paging::{Format, StructureSpec};
use vmsim::phys::PhysMem;

const PAGE: u64 = 4096;

struct Sys {
    k: Kernel,
    mem: PhysMem,
    mmu: Mmu,
}

/// Every translation structure, named: the kernel must behave the same on each.
pub fn structures() -> [(&'static str, StructureSpec); 4] {
    [
        ("radix", StructureSpec::Radix),
        (
            "inverted (hash anchors)",
            StructureSpec::Inverted {
                search: InvertedSearch::Hashed { anchors: 512 },
            },
        ),
        (
            "inverted (linear)",
            StructureSpec::Inverted {
                search: InvertedSearch::Linear,
            },
        ),
        (
            "hashed",
            StructureSpec::Hashed {
                buckets: 256,
                capacity: 8192,
            },
        ),
    ]
}

impl Sys {
    fn with(spec: StructureSpec, frames: u64) -> Self {
        Self::with_config(spec, frames, KernelConfig::default())
    }

    fn with_config(spec: StructureSpec, frames: u64, cfg: KernelConfig) -> Self {
        let fmt = Format::x86_64();
        let mut mem = PhysMem::new(frames * PAGE).expect("memory");
        let k = Kernel::with_structure(fmt.clone(), frames, PageSize::SIZE_4K, cfg, spec, &mut mem)
            .expect("kernel");
        let mut mmu =
            Mmu::new(fmt, &TlbConfig::preset("x86-64").expect("preset"), true).expect("mmu");
        mmu.set_table_base(k.table_base());
        Self { k, mem, mmu }
    }

    /// Translates through the real MMU (TLB, hardware A/D bits) with the
    /// machine façade: a fault goes to the kernel and the access retries.
    fn translate(&mut self, pid: Pid, va: u64, access: AccessKind) -> Option<PhysAddr> {
        let (root, asid) = self.k.context(pid).ok()?;
        if self.mmu.context() != (root, asid) {
            self.mmu.set_context(root, asid);
        }
        let mut faults = KernelFaults::new(&mut self.k, pid);
        machine::access(
            &mut self.mmu,
            &mut self.mem,
            &mut faults,
            VirtAddr::new(va),
            access,
            Privilege::User,
        )
        .expect("fault handled")
    }

    fn write(&mut self, pid: Pid, va: u64, byte: u8) -> bool {
        match self.translate(pid, va, AccessKind::Write) {
            Some(pa) => {
                self.mem.write(pa, &[byte]).expect("in memory");
                true
            }
            None => false,
        }
    }

    fn read(&mut self, pid: Pid, va: u64) -> Option<u8> {
        let pa = self.translate(pid, va, AccessKind::Read)?;
        let mut b = [0u8];
        self.mem.read(pa, &mut b).expect("in memory");
        Some(b[0])
    }

    fn check(&self) {
        if let Err(e) = self.k.check_invariants(&self.mem) {
            panic!("invariant broken: {e}");
        }
    }
}

fn anon(sys: &mut Sys, pid: Pid, pages: u64) -> u64 {
    sys.k
        .mmap(
            &mut sys.mem,
            &mut sys.mmu,
            pid,
            None,
            pages * PAGE,
            Prot::RW,
            MmapFlags::default(),
        )
        .expect("mmap")
        .as_u64()
}

#[test]
fn fork_of_1000_touched_pages_copies_nothing_until_written() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 4096);
        let parent = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let base = anon(&mut s, parent, 1000);
        for i in 0..1000 {
            assert!(s.write(parent, base + i * PAGE + 7, (i % 251) as u8));
        }
        let used_before = s.k.frames_in_use();
        let child = s.k.fork(&mut s.mem, &mut s.mmu, parent).expect("fork");
        s.check();
        assert_eq!(s.k.stats().cow_copies, 0);
        // The child's new page tables are the only new frames: no data page was copied.
        let new_frames = s.k.frames_in_use() - used_before;
        assert!(new_frames < 10, "fork allocated {new_frames} frames");
        for i in 0..10 {
            assert!(s.write(child, base + i * 37 * PAGE + 7, 0xee));
        }
        assert_eq!(s.k.stats().cow_copies, 10);
        s.check();
        for i in 0..1000 {
            assert_eq!(
                s.read(parent, base + i * PAGE + 7),
                Some((i % 251) as u8),
                "parent page {i}"
            );
        }
        for i in 0..10 {
            assert_eq!(s.read(child, base + i * 37 * PAGE + 7), Some(0xee));
        }
        // The parent is now the only sharer of those 10 pages' originals: writing
        // one of them takes write permission back without a copy.
        assert!(s.write(parent, base + 7, 1));
        assert_eq!(s.k.stats().cow_copies, 10);
        assert_eq!(s.k.stats().cow_reuses, 1);
        // An inverted table holds one mapping per frame: the child's first
        // touch of each shared page took the frame's entry from the parent
        // (10), and the parent's reads took 10 back; no other structure
        // ever reloads.
        let reloads = s.k.stats().alias_reloads;
        match spec {
            StructureSpec::Inverted { .. } => assert_eq!(reloads, 20, "{name}"),
            _ => assert_eq!(reloads, 0, "{name}"),
        }
        // The global table's frames count as page-table frames.
        if let Some((_, len)) = s.k.tables().region() {
            assert!(s.k.table_frames() >= len.div_ceil(PAGE), "{name}");
        }
        s.k.exit(&mut s.mem, &mut s.mmu, child).expect("exit");
        s.k.exit(&mut s.mem, &mut s.mmu, parent).expect("exit");
        s.check();
        assert!(
            s.k.all_frames_free(),
            "{} frames leaked",
            s.k.frames_in_use()
        );
    }
}

#[test]
fn vfork_shares_the_address_space_and_blocks_the_parent() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 1024);
        let parent = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let base = anon(&mut s, parent, 4);
        assert!(s.write(parent, base, 5));
        let child = s.k.vfork(parent).expect("vfork");
        assert!(s.k.context(parent).is_err(), "parent blocked");
        assert!(s.write(child, base, 6));
        assert_eq!(s.k.stats().cow_copies, 0);
        s.k.exit(&mut s.mem, &mut s.mmu, child).expect("exit");
        assert_eq!(
            s.read(parent, base),
            Some(6),
            "vfork child wrote the parent's memory"
        );
        s.k.exit(&mut s.mem, &mut s.mmu, parent).expect("exit");
        assert!(s.k.all_frames_free());
    }
}

#[test]
fn segfaults_kill_only_the_offender() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 1024);
        let a = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let b = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let ro =
            s.k.mmap(
                &mut s.mem,
                &mut s.mmu,
                a,
                None,
                PAGE,
                Prot::R,
                MmapFlags::default(),
            )
            .expect("mmap");
        assert_eq!(s.read(a, ro.as_u64()), Some(0));
        assert!(!s.write(a, ro.as_u64(), 1), "write to a read-only mapping");
        assert!(s.k.process(a).is_err(), "killed");
        assert!(matches!(
            s.k.events()[0],
            vmsim::kernel::KernelEvent::Segfault {
                reason: SegvReason::Permission,
                ..
            }
        ));
        assert_eq!(s.read(b, 0x1000), None, "no VMA there");
        assert!(s.k.all_frames_free());
    }
}

#[test]
fn stack_grows_down_but_not_past_the_limit() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 4096);
        let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let top =
            s.k.space_of(p)
                .expect("space")
                .vmas()
                .last()
                .expect("stack")
                .end
                .as_u64();
        assert!(s.write(p, top - 1, 1));
        assert!(s.write(p, top - 64 * PAGE, 2));
        assert_eq!(s.k.stats().stack_growth, 1);
        assert!(
            !s.write(p, top - (9 << 20), 3),
            "past the 8 MiB stack limit"
        );
        assert!(s.k.process(p).is_err());
    }
}

#[test]
fn brk_grows_and_shrinks_the_heap() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 1024);
        let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let start =
            s.k.sbrk(&mut s.mem, &mut s.mmu, p, 3 * PAGE as i64)
                .expect("sbrk")
                .as_u64();
        assert!(s.write(p, start + 2 * PAGE, 9));
        s.k.sbrk(&mut s.mem, &mut s.mmu, p, -(2 * PAGE as i64))
            .expect("shrink");
        s.check();
        assert_eq!(
            s.k.space_of(p).expect("space").resident,
            0,
            "the touched page was released"
        );
        assert!(
            s.k.brk(&mut s.mem, &mut s.mmu, p, VirtAddr::new(start - 1))
                .is_err()
        );
    }
}

#[test]
fn shared_memory_is_the_only_way_to_see_another_process() {
    for (name, spec) in structures() {
        eprintln!("structure: {name}");
        let mut s = Sys::with(spec, 1024);
        let a = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let b = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let id: ShmId = s.k.shm_create(2 * PAGE).expect("segment");
        let at_a =
            s.k.shm_attach(&mut s.mem, &mut s.mmu, a, id, None, Prot::RW)
                .expect("attach")
                .as_u64();
        let at_b =
            s.k.shm_attach(&mut s.mem, &mut s.mmu, b, id, None, Prot::RW)
                .expect("attach")
                .as_u64();
        assert!(s.write(a, at_a + PAGE + 3, 42));
        assert_eq!(s.read(b, at_b + PAGE + 3), Some(42));
        s.k.shm_remove(&mut s.mem, id).expect("remove");
        s.k.exit(&mut s.mem, &mut s.mmu, a).expect("exit");
        assert_eq!(s.read(b, at_b + PAGE + 3), Some(42), "still attached in b");
        s.k.exit(&mut s.mem, &mut s.mmu, b).expect("exit");
        assert!(s.k.all_frames_free());
    }
}

/// One step of a random workload.
#[derive(Debug, Clone)]
enum Op {
    Fork(usize),
    Vfork(usize),
    Exit(usize),
    Mmap(usize, u8, bool),
    Munmap(usize, u8),
    Mprotect(usize, u8, bool),
    Brk(usize, u8),
    Write(usize, u8, u16, u8),
    Read(usize, u8, u16),
    /// An access outside every mapping: a segmentation fault.
    Stray(usize),
}

/// A few offsets spread over a slot's 4 pages, so reads meet earlier writes.
fn hot(k: u16) -> u16 {
    k * 1361 % (4 * PAGE as u16)
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0usize..8;
    prop_oneof![
        1 => p.clone().prop_map(Op::Fork),
        1 => p.clone().prop_map(Op::Vfork),
        1 => p.clone().prop_map(Op::Exit),
        1 => (p.clone(), 0u8..4, any::<bool>()).prop_map(|(a, b, c)| Op::Mmap(a, b, c)),
        1 => (p.clone(), 0u8..4).prop_map(|(a, b)| Op::Munmap(a, b)),
        1 => (p.clone(), 0u8..4, any::<bool>()).prop_map(|(a, b, c)| Op::Mprotect(a, b, c)),
        1 => (p.clone(), 0u8..8).prop_map(|(a, b)| Op::Brk(a, b)),
        3 => (p.clone(), 0u8..4, 0u16..12, any::<u8>()).prop_map(|(a, b, c, d)| Op::Write(a, b, hot(c), d)),
        3 => (p.clone(), 0u8..4, 0u16..12).prop_map(|(a, b, c)| Op::Read(a, b, hot(c))),
        1 => p.clone().prop_map(Op::Stray),
    ]
}

/// The model of one process: which slots are mapped and the bytes in them.
#[derive(Debug, Clone, Default)]
struct Model {
    /// slot -> (shared object id if shared, writable)
    slots: HashMap<u8, (Option<u32>, bool)>,
    /// private bytes: (slot, offset) -> byte
    bytes: HashMap<(u8, u16), u8>,
}

/// The `pick`-th mapped slot of a model (or `pick` itself when none is mapped).
fn mapped_slot(m: &Model, pick: u8) -> u8 {
    let mut slots: Vec<u8> = m.slots.keys().copied().collect();
    slots.sort_unstable();
    if slots.is_empty() {
        pick
    } else {
        slots[pick as usize % slots.len()]
    }
}

/// Fixed addresses for the model's slots: slot i = 4 pages at SLOT_BASE + i * 16 pages.
const SLOT_BASE: u64 = 0x1000_0000;
fn slot_addr(slot: u8) -> u64 {
    SLOT_BASE + u64::from(slot) * 16 * PAGE
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn processes_are_isolated_and_nothing_leaks(ops in prop::collection::vec(op(), 1..60)) {
        isolation(StructureSpec::Radix, ops)?;
    }

    #[test]
    fn processes_are_isolated_and_nothing_leaks_inverted(ops in prop::collection::vec(op(), 1..60)) {
        isolation(structures()[1].1, ops)?;
    }

    #[test]
    fn processes_are_isolated_and_nothing_leaks_hashed(ops in prop::collection::vec(op(), 1..60)) {
        isolation(structures()[3].1, ops)?;
    }

    /// The same with memory so small that pages go to swap and come back.
    #[test]
    fn processes_are_isolated_and_nothing_leaks_under_memory_pressure(ops in prop::collection::vec(op(), 1..60)) {
        // The page-out daemon keeps 120 to 124 of 128 frames free: every
        // allocation evicts, and pages go to swap and back all the time.
        let cfg = KernelConfig {
            low_watermark: Some(120),
            high_watermark: Some(124),
            swap_slots: Some(4096),
            ..KernelConfig::default()
        };
        isolation_in(StructureSpec::Radix, 128, cfg, ops)?;
    }
}

/// Issue 5: a workload bigger than physical memory runs with a real swap
/// file, and every byte read back equals what was written.
#[test]
fn workload_bigger_than_memory_keeps_every_byte() {
    for policy in SystemPolicy::ALL {
        // 300 pages and 150 copies in 64 frames: the rest lives in swap.
        let cfg = KernelConfig {
            policy,
            swap_slots: Some(1024),
            ..KernelConfig::default()
        };
        let mut s = Sys::with_config(StructureSpec::Radix, 64, cfg);
        let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let pages = 300u64;
        let base = anon(&mut s, p, pages);
        let byte = |i: u64, k: u64| ((i * 7 + k * 13) % 251) as u8 + 1;
        for i in 0..pages {
            for k in 0..3 {
                assert!(
                    s.write(p, base + i * PAGE + k * 1500, byte(i, k)),
                    "{policy}: write page {i}"
                );
            }
        }
        let child = s.k.fork(&mut s.mem, &mut s.mmu, p).expect("fork");
        for i in (0..pages).step_by(2) {
            assert!(
                s.write(child, base + i * PAGE, 0),
                "{policy}: child write {i}: {:?} {:?}",
                s.k.events(),
                s.k.paging_stats()
            );
        }
        for i in (0..pages).rev() {
            for k in 0..3 {
                assert_eq!(
                    s.read(p, base + i * PAGE + k * 1500),
                    Some(byte(i, k)),
                    "{policy}: parent page {i}: {:?} {:?}",
                    s.k.events(),
                    s.k.paging_stats()
                );
                let want = if i % 2 == 0 && k == 0 { 0 } else { byte(i, k) };
                assert_eq!(
                    s.read(child, base + i * PAGE + k * 1500),
                    Some(want),
                    "{policy}: child page {i}"
                );
            }
        }
        s.check();
        let st = *s.k.paging_stats();
        assert!(
            st.swap_outs > pages && st.major_faults > pages / 2,
            "{policy}: {st:?}"
        );
        assert!(
            s.k.swap_stats().writes > 0,
            "{policy}: the swap file was written"
        );
        s.k.exit(&mut s.mem, &mut s.mmu, child).expect("exit");
        s.k.exit(&mut s.mem, &mut s.mmu, p).expect("exit");
        s.check();
        assert!(
            s.k.all_frames_free(),
            "{policy}: {} frames leaked",
            s.k.frames_in_use()
        );
        assert_eq!(
            s.k.swap_stats().slots_used,
            0,
            "{policy}: swap slots leaked"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random writes and reads over 96 pages of two processes (a parent and,
    /// from a random point, its forked child) in 48 frames: pages go to swap
    /// and come back, copy-on-write across swap included, and every byte read
    /// equals the model's.
    #[test]
    fn swapped_pages_keep_their_bytes(
        ops in prop::collection::vec((any::<bool>(), any::<bool>(), 0u64..96, 0u64..4, any::<u8>()), 50..400),
        fork_at in 0usize..200,
        policy in prop::sample::select(SystemPolicy::ALL.to_vec()),
    ) {
        let cfg = KernelConfig { policy, swap_slots: Some(512), ..KernelConfig::default() };
        let mut s = Sys::with_config(StructureSpec::Radix, 48, cfg);
        let parent = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let base = anon(&mut s, parent, 96);
        let mut model: Vec<HashMap<u64, u8>> = vec![HashMap::new()];
        let mut pids = vec![parent];
        for (k, (second, write, page, slot, byte)) in ops.into_iter().enumerate() {
            if k == fork_at {
                let child = s.k.fork(&mut s.mem, &mut s.mmu, parent).expect("fork");
                pids.push(child);
                model.push(model[0].clone());
            }
            let who = usize::from(second) % pids.len();
            let va = base + page * PAGE + slot * 1000;
            if write {
                prop_assert!(s.write(pids[who], va, byte), "write failed: {:?}", s.k.events());
                model[who].insert(va, byte);
            } else {
                let want = model[who].get(&va).copied().unwrap_or(0);
                prop_assert_eq!(s.read(pids[who], va), Some(want));
            }
        }
        if let Err(e) = s.k.check_invariants(&s.mem) {
            return Err(TestCaseError::fail(e.to_string()));
        }
        for pid in pids.into_iter().rev() {
            s.k.exit(&mut s.mem, &mut s.mmu, pid).expect("exit");
        }
        prop_assert!(s.k.all_frames_free());
        prop_assert_eq!(s.k.swap_stats().slots_used, 0);
    }
}

/// A clean page whose swap copy is still valid is dropped without a write.
#[test]
fn clean_pages_with_a_swap_copy_are_not_written_again() {
    let mut s = Sys::with(StructureSpec::Radix, 64);
    let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
    let base = anon(&mut s, p, 200);
    for i in 0..200 {
        assert!(s.write(p, base + i * PAGE, 1));
    }
    // Reading everything twice: pages come back clean and go out clean.
    for _ in 0..2 {
        for i in 0..200 {
            assert_eq!(s.read(p, base + i * PAGE), Some(1));
        }
    }
    let st = *s.k.paging_stats();
    assert!(st.clean_drops > 100, "{st:?}");
    assert_eq!(
        st.writebacks, 200,
        "each page is written to swap exactly once: {st:?}"
    );
    assert_eq!(s.k.swap_stats().writes, 200);
}

/// The kernel takes a [`SystemPolicy`], so an oracle cannot reach it: the
/// name is refused where it is parsed.
#[test]
fn oracle_policies_are_refused_in_the_full_system() {
    for policy in ["lru", "opt", "arc"] {
        let e = policy.parse::<SystemPolicy>().expect_err("oracle");
        assert!(e.to_string().contains("oracle"), "{e}");
        let toml = format!("policy = \"{policy}\"");
        let e = toml::from_str::<KernelConfig>(&toml).expect_err("oracle");
        assert!(e.to_string().contains("oracle"), "{e}");
    }
}

/// The isolation property on one structure: random forks, vforks, exits,
/// mmaps, writes and reads agree with a model; invariants hold after every
/// step; nothing leaks.
fn isolation(spec: StructureSpec, ops: Vec<Op>) -> Result<(), TestCaseError> {
    isolation_in(spec, 2048, KernelConfig::default(), ops)
}

fn isolation_in(
    spec: StructureSpec,
    frames: u64,
    cfg: KernelConfig,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    {
        let mut s = Sys::with_config(spec, frames, cfg);
        let first = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let mut procs: Vec<(Pid, Model)> = vec![(first, Model::default())];
        // Shared objects' bytes, by object id.
        let mut shared: HashMap<(u32, u16), u8> = HashMap::new();
        let mut next_obj = 0u32;
        // Start with a private and a shared mapping.
        for (slot, share) in [(0u8, false), (1, true)] {
            let flags = MmapFlags {
                shared: share,
                fixed: true,
            };
            s.k.mmap(
                &mut s.mem,
                &mut s.mmu,
                first,
                Some(VirtAddr::new(slot_addr(slot))),
                4 * PAGE,
                Prot::RW,
                flags,
            )
            .expect("mmap");
            let obj = share.then(|| {
                next_obj += 1;
                next_obj
            });
            procs[0].1.slots.insert(slot, (obj, true));
        }
        // vfork children share the parent's model: map pid -> index of the model owner.
        let mut vfork_of: HashMap<Pid, Pid> = HashMap::new();
        for op in ops {
            let runnable: Vec<usize> = (0..procs.len())
                .filter(|&i| s.k.context(procs[i].0).is_ok())
                .collect();
            if runnable.is_empty() {
                break;
            }
            let pick = |i: usize| runnable[i % runnable.len()];
            let owner_of = |procs: &Vec<(Pid, Model)>, vf: &HashMap<Pid, Pid>, i: usize| -> usize {
                let mut pid = procs[i].0;
                while let Some(&p) = vf.get(&pid) {
                    pid = p;
                }
                procs
                    .iter()
                    .position(|(q, _)| *q == pid)
                    .expect("owner alive")
            };
            match op {
                Op::Fork(i) if procs.len() < 8 => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    let child = s.k.fork(&mut s.mem, &mut s.mmu, procs[i].0).expect("fork");
                    let model = procs[o].1.clone();
                    procs.push((child, model));
                }
                Op::Vfork(i) if procs.len() < 8 => {
                    let i = pick(i);
                    let child = s.k.vfork(procs[i].0).expect("vfork");
                    vfork_of.insert(child, procs[i].0);
                    procs.push((child, Model::default()));
                }
                Op::Exit(i) => {
                    let i = pick(i);
                    let pid = procs[i].0;
                    // A process whose memory a vfork child still uses keeps its model.
                    if vfork_of.values().any(|&p| p == pid) {
                        continue;
                    }
                    s.k.exit(&mut s.mem, &mut s.mmu, pid).expect("exit");
                    vfork_of.remove(&pid);
                    procs.remove(i);
                }
                Op::Mmap(i, slot, share) => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    let flags = MmapFlags {
                        shared: share,
                        fixed: true,
                    };
                    s.k.mmap(
                        &mut s.mem,
                        &mut s.mmu,
                        procs[i].0,
                        Some(VirtAddr::new(slot_addr(slot))),
                        4 * PAGE,
                        Prot::RW,
                        flags,
                    )
                    .expect("mmap");
                    let m = &mut procs[o].1;
                    m.bytes.retain(|(sl, _), _| *sl != slot);
                    let obj = share.then(|| {
                        next_obj += 1;
                        next_obj
                    });
                    m.slots.insert(slot, (obj, true));
                }
                Op::Munmap(i, slot) => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    s.k.munmap(
                        &mut s.mem,
                        &mut s.mmu,
                        procs[i].0,
                        VirtAddr::new(slot_addr(slot)),
                        4 * PAGE,
                    )
                    .expect("munmap");
                    let m = &mut procs[o].1;
                    m.slots.remove(&slot);
                    m.bytes.retain(|(sl, _), _| *sl != slot);
                }
                Op::Mprotect(i, slot, writable) => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    if procs[o].1.slots.contains_key(&slot) {
                        let prot = if writable { Prot::RW } else { Prot::R };
                        s.k.mprotect(
                            &mut s.mem,
                            &mut s.mmu,
                            procs[i].0,
                            VirtAddr::new(slot_addr(slot)),
                            4 * PAGE,
                            prot,
                        )
                        .expect("mprotect");
                        if let Some(e) = procs[o].1.slots.get_mut(&slot) {
                            e.1 = writable;
                        }
                    }
                }
                Op::Brk(i, n) => {
                    let i = pick(i);
                    let pid = procs[i].0;
                    let start = s.k.space_of(pid).expect("space").brk_start;
                    s.k.brk(
                        &mut s.mem,
                        &mut s.mmu,
                        pid,
                        start.wrapping_add(u64::from(n) * PAGE),
                    )
                    .expect("brk");
                    // Touch the heap to exercise it; the model does not track heap bytes.
                    if n > 0 {
                        prop_assert!(s.write(pid, start.as_u64(), n));
                    }
                }
                Op::Write(i, slot, off, byte) => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    let slot = mapped_slot(&procs[o].1, slot);
                    let pid = procs[i].0;
                    let entry = procs[o].1.slots.get(&slot).copied();
                    let ok = s.write(pid, slot_addr(slot) + u64::from(off), byte);
                    match entry {
                        Some((obj, true)) => {
                            prop_assert!(ok, "write to a writable mapping failed");
                            match obj {
                                Some(id) => {
                                    shared.insert((id, off), byte);
                                }
                                None => {
                                    procs[o].1.bytes.insert((slot, off), byte);
                                }
                            }
                        }
                        _ => {
                            // A segfault: the process is gone.
                            prop_assert!(!ok);
                            prop_assert!(s.k.process(pid).is_err());
                            vfork_of.retain(|c, p| *c != pid && *p != pid);
                            let gone: Vec<usize> = (0..procs.len())
                                .filter(|&j| s.k.process(procs[j].0).is_err())
                                .collect();
                            for j in gone.into_iter().rev() {
                                procs.remove(j);
                            }
                        }
                    }
                }
                Op::Read(i, slot, off) => {
                    let i = pick(i);
                    let o = owner_of(&procs, &vfork_of, i);
                    let slot = mapped_slot(&procs[o].1, slot);
                    let pid = procs[i].0;
                    let entry = procs[o].1.slots.get(&slot).copied();
                    let got = s.read(pid, slot_addr(slot) + u64::from(off));
                    match entry {
                        Some((Some(id), _)) => {
                            prop_assert_eq!(got, Some(*shared.get(&(id, off)).unwrap_or(&0)))
                        }
                        Some((None, _)) => prop_assert_eq!(
                            got,
                            Some(*procs[o].1.bytes.get(&(slot, off)).unwrap_or(&0))
                        ),
                        None => {
                            prop_assert_eq!(got, None);
                            vfork_of.retain(|c, p| *c != pid && *p != pid);
                            let gone: Vec<usize> = (0..procs.len())
                                .filter(|&j| s.k.process(procs[j].0).is_err())
                                .collect();
                            for j in gone.into_iter().rev() {
                                procs.remove(j);
                            }
                        }
                    }
                }
                Op::Stray(i) => {
                    let i = pick(i);
                    let pid = procs[i].0;
                    prop_assert_eq!(s.read(pid, 0x10_0000), None);
                    vfork_of.retain(|c, p| *c != pid && *p != pid);
                    let gone: Vec<usize> = (0..procs.len())
                        .filter(|&j| s.k.process(procs[j].0).is_err())
                        .collect();
                    for j in gone.into_iter().rev() {
                        procs.remove(j);
                    }
                }
                _ => {}
            }
            if let Err(e) = s.k.check_invariants(&s.mem) {
                return Err(TestCaseError::fail(e.to_string()));
            }
        }
        // Exit everyone, vfork children first.
        while !procs.is_empty() {
            let i = procs
                .iter()
                .position(|(p, _)| !vfork_of.values().any(|q| q == p))
                .expect("someone can exit");
            let pid = procs.remove(i).0;
            s.k.exit(&mut s.mem, &mut s.mmu, pid).expect("exit");
            vfork_of.remove(&pid);
        }
        prop_assert!(
            s.k.all_frames_free(),
            "{} frames leaked",
            s.k.frames_in_use()
        );
    }
    Ok(())
}

/// Issue 12: a mapping at address 0 used to be accepted (and the access
/// then killed as a stack-guard hit); like Linux's mmap_min_addr, the lowest
/// 64 KiB stay unmapped so null-pointer accesses always fault.
#[test]
fn mappings_below_mmap_min_addr_are_refused() {
    let mut s = Sys::with(StructureSpec::Radix, 256);
    let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
    let fixed = MmapFlags {
        shared: false,
        fixed: true,
    };
    for addr in [0, PAGE, 0xf000] {
        let e =
            s.k.mmap(
                &mut s.mem,
                &mut s.mmu,
                p,
                Some(VirtAddr::new(addr)),
                PAGE,
                Prot::RW,
                fixed,
            )
            .expect_err("below mmap_min_addr");
        assert!(e.to_string().contains("mmap_min_addr (0x10000)"), "{e}");
    }
    let at =
        s.k.mmap(
            &mut s.mem,
            &mut s.mmu,
            p,
            Some(VirtAddr::new(0x10000)),
            PAGE,
            Prot::RW,
            fixed,
        )
        .expect("at mmap_min_addr");
    assert_eq!(at.as_u64(), 0x10000);
    // A hint below it is not an error: the kernel places the mapping itself.
    let hinted = MmapFlags {
        shared: false,
        fixed: false,
    };
    let placed =
        s.k.mmap(
            &mut s.mem,
            &mut s.mmu,
            p,
            Some(VirtAddr::new(0)),
            PAGE,
            Prot::RW,
            hinted,
        )
        .expect("hint ignored");
    assert!(placed.as_u64() >= 0x10000, "{placed}");
    // The bound is a setting.
    let cfg = KernelConfig {
        mmap_min_addr: Some(PAGE),
        ..KernelConfig::default()
    };
    let mut s = Sys::with_config(StructureSpec::Radix, 256, cfg);
    let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
    s.k.mmap(
        &mut s.mem,
        &mut s.mmu,
        p,
        Some(VirtAddr::new(PAGE)),
        PAGE,
        Prot::RW,
        fixed,
    )
    .expect("allowed by kernel.mmap_min_addr");
    let e =
        s.k.mmap(
            &mut s.mem,
            &mut s.mmu,
            p,
            Some(VirtAddr::new(0)),
            PAGE,
            Prot::RW,
            fixed,
        )
        .expect_err("0 never");
    assert!(e.to_string().contains("mmap_min_addr (0x1000)"), "{e}");
}

/// Issue 12: memory plus swap bounds the footprint. When every slot is
/// taken, a slot that only caches a resident page is given up (as Linux
/// frees swap cache when swap is full); the README's demand-paging example
/// used to be killed for want of a slot after 8% of its run.
#[test]
fn a_full_swap_gives_up_swap_cache_before_the_oom_killer() {
    // 64 frames (about 50 usable for data) and 128 slots: 160 pages fit
    // only if resident pages do not also hold their swap copies.
    let cfg = KernelConfig {
        swap_slots: Some(128),
        ..KernelConfig::default()
    };
    let mut s = Sys::with_config(StructureSpec::Radix, 64, cfg);
    let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
    let pages = 160u64;
    let base = anon(&mut s, p, pages);
    for i in 0..pages {
        assert!(
            s.write(p, base + i * PAGE, (i % 200) as u8 + 1),
            "write {i}"
        );
    }
    // Reading brings pages back clean, each keeping its swap copy until
    // swap is full; then the copies of resident pages make room.
    for round in 0..3 {
        for i in 0..pages {
            assert_eq!(
                s.read(p, base + i * PAGE),
                Some((i % 200) as u8 + 1),
                "round {round}, page {i}: {:?}",
                s.k.paging_stats()
            );
        }
    }
    s.check();
    assert_eq!(s.k.stats().segfaults, 0);
    assert!(s.k.swap_stats().slots_peak <= 128);
}

/// A copy of a kernel whose pages are partly in swap is a whole kernel: it
/// has its own copy of the swap device (the original's file can go), and
/// every byte comes back through it.
#[test]
fn a_cloned_kernel_keeps_its_swapped_pages() {
    let cfg = KernelConfig {
        swap_slots: Some(1024),
        ..KernelConfig::default()
    };
    let mut s = Sys::with_config(StructureSpec::Radix, 64, cfg);
    let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
    let pages = 200u64;
    let base = anon(&mut s, p, pages);
    let byte = |i: u64| (i % 251) as u8 + 1;
    for i in 0..pages {
        assert!(s.write(p, base + i * PAGE + 9, byte(i)));
    }
    assert!(s.k.paging_stats().swap_outs > 100, "most pages are in swap");
    let mut copy = Sys {
        k: s.k.clone(),
        mem: s.mem.clone(),
        mmu: s.mmu.clone(),
    };
    drop(s);
    for i in 0..pages {
        assert_eq!(copy.read(p, base + i * PAGE + 9), Some(byte(i)), "page {i}");
    }
    copy.check();
    assert!(copy.k.paging_stats().swap_ins > 100);
}

/// `handle_fault_resident` (the run's fault handler's call) resolves as
/// `handle_fault` does and gives the resident count `space_of` then gives,
/// read from the fault's space: for demand-zero faults, for swap-ins under
/// memory pressure (evictions change the count), and for a kill.
#[test]
fn a_fault_reports_the_resident_count_space_of_gives() {
    use vmsim::kernel::{FaultCause, FaultResolution};
    for (name, spec) in structures() {
        let cfg = KernelConfig {
            swap_slots: Some(1024),
            ..KernelConfig::default()
        };
        let mut s = Sys::with_config(spec, 160, cfg);
        let p = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let q = s.k.spawn(&mut s.mem, Layout::Standard).expect("spawn");
        let pages = 256u64;
        let base = anon(&mut s, p, pages);
        let other = anon(&mut s, q, 8);
        let mut seen = std::collections::BTreeSet::new();
        // Twice over every page: first touches, then swap-ins; the other
        // process's pages in between.
        for round in 0..2u64 {
            for i in 0..pages {
                let (pid, va) = if i % 16 == 15 {
                    (q, other + (i / 16 % 8) * PAGE)
                } else {
                    (p, base + ((i * 37 + round) % pages) * PAGE)
                };
                let (r, resident) =
                    s.k.handle_fault_resident(
                        &mut s.mem,
                        &mut s.mmu,
                        pid,
                        VirtAddr::new(va),
                        AccessKind::Write,
                        FaultCause::NotPresent,
                    )
                    .expect("fault");
                seen.insert(format!("{r:?}"));
                let want = s.k.space_of(pid).ok().map(|sp| sp.resident);
                assert_eq!(resident, want, "{name}: fault {round}/{i} ({r:?})");
                assert!(resident.is_some(), "{name}: a live process has a space");
            }
        }
        assert!(seen.contains("DemandZero"), "{name}: {seen:?}");
        assert!(
            seen.contains("SwapIn") || seen.contains("SwapCache"),
            "{name}: {seen:?}"
        );
        let (r, resident) =
            s.k.handle_fault_resident(
                &mut s.mem,
                &mut s.mmu,
                q,
                VirtAddr::new(0),
                AccessKind::Read,
                FaultCause::NotPresent,
            )
            .expect("fault");
        assert!(matches!(r, FaultResolution::Killed(_)), "{name}: {r:?}");
        assert_eq!(
            resident,
            s.k.space_of(q).ok().map(|sp| sp.resident),
            "{name}: kill"
        );
        s.check();
    }
}
