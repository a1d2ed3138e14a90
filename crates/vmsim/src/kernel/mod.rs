//! The simulated kernel's memory management: processes and address spaces,
//! page faults, fork with copy-on-write, vfork, brk, mmap and friends.
//!
//! The kernel owns every frame (through [`FrameTable`] over the buddy
//! allocator), every page table and every VMA. It changes page tables only
//! through [`PageTables`] (radix, inverted or hashed, chosen at creation)
//! and performs each TLB invalidation a change
//! requires through [`TlbControl`], so the MMU never translates through a
//! stale entry the kernel meant to remove. It never translates addresses
//! itself: the MMU does, and calls [`Kernel::handle_fault`] when it cannot.

mod address_space;
mod adopt;
mod fault;
mod frame_maps;
mod frames;
mod invariants;
mod leaf_map;
mod process;
mod reclaim;
mod restored_geometry;
mod shm;
mod shootdowns;
mod swap_entries;
mod syscalls;
mod system_policy;
mod table_places;
mod tracking;
mod vma;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use address_space::AddressSpace;
pub use adopt::AdoptedPage;
pub use fault::{FaultCause, FaultResolution};
pub use frames::{FrameMeta, FrameTable, FrameUse, TaggedFrames};
pub use invariants::InvariantError;
pub use process::{ProcState, Process, SegvReason, SpaceId};
#[cfg(test)]
pub(crate) use reclaim::PagerForgery;
pub use reclaim::PagingStats;
pub use shm::{SharedObject, ShmId, ShmTable};
pub use swap_entries::SwapEntries;
pub use syscalls::MmapFlags;
pub use system_policy::{PolicyChoiceError, SystemPolicy};
pub use tracking::{DirtyPage, Harvest};
pub use vma::{Prot, Vma, VmaKind};

use crate::addr::{Asid, PageSize, Pfn, PhysAddr, Pid, VirtAddr};
use crate::alloc::{Buddy, BuddyError, KernelCaches, Slab, SlabError, SlabParams};
use crate::memory::PhysMemory;
use crate::mmu::AccessKind;
/// Re-exported where the kernel's callers have always found it; defined by
/// the MMU that implements it.
pub use crate::mmu::TlbControl;
use crate::paging::hashed::{TableError, TableWalk};
use crate::paging::{
    Canonical, Format, MapError, PageTables, PteFlags, RadixSpaces, StructureSpec, TableBase,
};
use crate::units;

/// A leaf entry's place that a fault's lookup found empty, and the
/// generation of the table holding it then (see [`Kernel::found_place`]).
#[derive(Debug, Clone, Copy)]
struct FoundPlace {
    idx: usize,
    addr: PhysAddr,
    table: u64,
    gen_: u64,
}

/// Kernel settings. Addresses left `None` are derived from the paging format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Top of the initial stack (exclusive).
    #[serde(deserialize_with = "units::size_opt")]
    pub stack_top: Option<u64>,
    /// Maximum stack size in bytes (RLIMIT_STACK).
    #[serde(deserialize_with = "units::size")]
    pub stack_limit: u64,
    /// Bytes kept free below a growing stack (Linux's stack_guard_gap).
    #[serde(deserialize_with = "units::size")]
    pub stack_guard_gap: u64,
    /// Where the heap (program break) starts.
    #[serde(deserialize_with = "units::size_opt")]
    pub heap_start: Option<u64>,
    /// Highest address mmap hands out without a hint.
    #[serde(deserialize_with = "units::size_opt")]
    pub mmap_base: Option<u64>,
    /// The lowest address a mapping may start at (Linux's
    /// `vm.mmap_min_addr`), so that null-pointer accesses always fault. Default:
    /// 64 KiB as on Linux, or less for address spaces so small that their
    /// heap starts below it (a sixteenth of user space, at least one page).
    #[serde(deserialize_with = "units::size_opt")]
    pub mmap_min_addr: Option<u64>,
    /// How many ASIDs the hardware has (4096 PCIDs on x86-64; 65536 on RISC-V).
    #[serde(deserialize_with = "units::count")]
    pub asids: u32,
    /// Swap slots (pages) of the swap file; `None` gives four times as many
    /// as there are data pages of memory; 0 turns swapping (and so eviction) off.
    #[serde(deserialize_with = "units::count_opt")]
    pub swap_slots: Option<u32>,
    /// Where the swap file goes; default: a unique name in the temporary
    /// directory. A path that exists is refused unless `swap_file_overwrite`.
    pub swap_file: Option<std::path::PathBuf>,
    /// Keep the swap file after the run (else it is unlinked as soon as it is
    /// open, on Unix, so even a crash leaves nothing behind).
    pub keep_swap_file: bool,
    /// Allow `swap_file` to name an existing regular file, which is then
    /// truncated, used and left in place.
    pub swap_file_overwrite: bool,
    /// The replacement policy: fifo, clock, nru, aging, random, linux,
    /// clock-pro or sieve (written as its name; an oracle is refused when
    /// the configuration is read).
    pub policy: SystemPolicy,
    /// Free pages below which the page-out daemon runs (default: 1/64 of memory, 2 to 1024).
    #[serde(deserialize_with = "units::count_opt")]
    pub low_watermark: Option<u64>,
    /// Free pages the page-out daemon reclaims up to (default: twice the low watermark).
    #[serde(deserialize_with = "units::count_opt")]
    pub high_watermark: Option<u64>,
    /// Clearing a page's accessed bit also invalidates its TLB entry (as Linux
    /// does); without, a cached translation never sets A again, and CLOCK
    /// degrades to FIFO.
    pub clear_accessed_invalidates_tlb: bool,
    /// References between timer ticks (the aging policy's shift).
    #[serde(deserialize_with = "units::count")]
    pub tick: u64,
    /// Seed of the random policy.
    pub seed: u64,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            stack_top: None,
            stack_limit: 8 << 20,
            stack_guard_gap: 1 << 20,
            heap_start: None,
            mmap_base: None,
            mmap_min_addr: None,
            asids: 4096,
            swap_slots: None,
            swap_file: None,
            keep_swap_file: false,
            swap_file_overwrite: false,
            policy: SystemPolicy::Clock,
            low_watermark: None,
            high_watermark: None,
            clear_accessed_invalidates_tlb: true,
            tick: 10_000,
            seed: 1,
        }
    }
}

/// A system call or kernel operation that could not be done. Faults are
/// not errors: they are handled, and counted.
#[derive(Debug, Error)]
pub enum KernelError {
    /// No such process.
    #[error("no process {0}")]
    NoSuchProcess(Pid),
    /// The process is a vfork parent waiting for its child.
    #[error("process {0} is blocked in vfork until its child exits")]
    Blocked(Pid),
    /// A bad argument (EINVAL).
    #[error("{call}: {why}")]
    Invalid {
        /// The call.
        call: &'static str,
        /// What is wrong.
        why: String,
    },
    /// No free physical memory (ENOMEM).
    #[error("out of physical memory")]
    OutOfMemory,
    /// No free virtual range for the request (ENOMEM).
    #[error("{0}: no free virtual address range large enough")]
    NoSpace(&'static str),
    /// Every ASID is in use.
    #[error("all {0} ASIDs are in use")]
    OutOfAsids(u32),
    /// The kernel's configuration cannot work with this machine.
    #[error("kernel configuration: {0}")]
    Config(String),
    /// Physical memory refused an access the kernel's books say is valid
    /// (a kernel bug): what the kernel was doing, and the memory's error.
    #[error("{what}: {source}")]
    Memory {
        /// What the kernel was doing.
        what: &'static str,
        /// The memory's error.
        source: crate::phys::MemError,
    },
    /// A page-table entry the kernel updates is outside memory (a kernel bug).
    #[error("page-table entry outside memory: {0}")]
    EntryOutsideMemory(#[source] MapError),
    /// A page-table operation failed.
    #[error(transparent)]
    Table(#[from] MapError),
    /// The slab allocator failed.
    #[error(transparent)]
    Slab(#[from] SlabError),
    /// The swap file failed.
    #[error("swap: {0}")]
    Swap(#[from] crate::swap::SwapError),
    /// A page could not be copied between its frame and the swap file.
    #[error("swap: {0}")]
    SwapPage(#[source] crate::phys::MemError),
    /// Swap bookkeeping needs a swap device and there is none (a kernel bug).
    #[error("swap: no swap device")]
    NoSwapDevice,
    /// A swap entry names a slot that is free (a kernel bug).
    #[error("swap: swap entry of {page} names a free slot")]
    FreeSlot {
        /// The page whose entry it is.
        page: VirtAddr,
    },
    /// The buddy allocator could not be built.
    #[error(transparent)]
    Buddy(#[from] BuddyError),
}

/// A page copied between a frame and the swap device: the device's error is
/// [`KernelError::Swap`], the memory's [`KernelError::SwapPage`].
impl From<crate::swap::PageIoError<crate::phys::MemError>> for KernelError {
    fn from(e: crate::swap::PageIoError<crate::phys::MemError>) -> Self {
        match e {
            crate::swap::PageIoError::Device(e) => Self::Swap(e),
            crate::swap::PageIoError::Page(e) => Self::SwapPage(e),
        }
    }
}

impl KernelError {
    fn invalid(call: &'static str, why: impl Into<String>) -> Self {
        Self::Invalid {
            call,
            why: why.into(),
        }
    }
}

/// What the kernel counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStats {
    /// Faults served by a fresh zeroed page (allocation on first touch).
    pub demand_zero: u64,
    /// Write faults on a shared copy-on-write page that copied it.
    pub cow_copies: u64,
    /// Write faults on a copy-on-write page with one sharer left: made writable, no copy.
    pub cow_reuses: u64,
    /// Faults served by a page a shared object already had.
    pub shared_minor: u64,
    /// Faults that grew a stack.
    pub stack_growth: u64,
    /// Faults on an entry that was already right (another path fixed it).
    pub spurious: u64,
    /// Svade faults where the kernel set the accessed or dirty bit.
    pub accessed_dirty: u64,
    /// Inverted page table: faults on a shared frame whose entry held
    /// another of its mappings, served by moving the entry over.
    pub alias_reloads: u64,
    /// Processes killed by a segmentation fault.
    pub segfaults: u64,
    /// fork calls.
    pub forks: u64,
    /// vfork calls.
    pub vforks: u64,
    /// Processes that exited (killed ones included).
    pub exits: u64,
    /// Pages copied eagerly (none with copy-on-write; counted to prove it).
    pub eager_copies: u64,
    /// Write-protect faults: a store to a page the soft-dirty tracker had
    /// protected (for a checkpoint); the kernel noted the page dirty and
    /// gave write permission back.
    pub write_protect: u64,
}

/// A noteworthy event, kept for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelEvent {
    /// A process was killed by a segmentation fault.
    Segfault {
        /// The process.
        pid: Pid,
        /// The faulting address.
        va: VirtAddr,
        /// What it tried to do.
        access: AccessKind,
        /// Why the access was refused.
        reason: SegvReason,
    },
}

/// The initial layout of a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A stack at the top of user space and an empty heap; nothing else.
    Standard,
    /// One private read-write-execute area over all of user space, for raw
    /// traces whose program layout is unknown: every address is valid and
    /// allocated on first touch.
    Flat,
}

/// The kernel: processes and their address spaces (areas, page tables),
/// the frame allocators, swap and reclaim. It calls no MMU itself: the
/// caller passes the memory and the TLB (for shootdowns) to each call,
/// and sends it the MMU's faults ([`Kernel::handle_fault`]; the
/// [`crate::machine`] façade does this).
///
/// ```
/// use vmsim::addr::{PageSize, VirtAddr};
/// use vmsim::kernel::{FaultCause, FaultResolution, Kernel, KernelConfig, Layout, MmapFlags, Prot};
/// use vmsim::mmu::{AccessKind, Mmu, TlbConfig};
/// use vmsim::paging::Format;
/// use vmsim::phys::PhysMem;
///
/// let fmt = Format::x86_64();
/// let mut mem: PhysMem = PhysMem::new(256 * 4096)?;
/// let mut k = Kernel::new(fmt.clone(), 256, PageSize::SIZE_4K, KernelConfig::default())?;
/// let mut mmu = Mmu::new(fmt, &TlbConfig::preset("x86-64")?, true)?;
/// mmu.set_table_base(k.table_base());
/// let parent = k.spawn(&mut mem, Layout::Standard)?;
/// let a = k.mmap(&mut mem, &mut mmu, parent, None, 8 * 4096, Prot::RW, MmapFlags::default())?;
/// // The first touch of a page is a demand-zero fault.
/// let r = k.handle_fault(&mut mem, &mut mmu, parent, a, AccessKind::Write, FaultCause::NotPresent)?;
/// assert_eq!(r, FaultResolution::DemandZero);
/// // fork shares it copy-on-write; the child's store copies it.
/// let child = k.fork(&mut mem, &mut mmu, parent)?;
/// let r = k.handle_fault(&mut mem, &mut mmu, child, a, AccessKind::Write, FaultCause::Protection)?;
/// assert_eq!(r, FaultResolution::CowCopy);
/// assert_eq!(k.stats().cow_copies, 1);
/// k.check_invariants(&mem)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernel {
    fmt: Format,
    cfg: KernelConfig,
    page: PageSize,
    frames: FrameTable,
    tables: PageTables,
    slab: Slab,
    caches: KernelCaches,
    spaces: Vec<Option<AddressSpace>>,
    procs: BTreeMap<Pid, Process>,
    shm: ShmTable,
    next_pid: u32,
    free_asids: Vec<u16>,
    next_asid: u32,
    stats: KernelStats,
    events: Vec<KernelEvent>,
    reclaim: reclaim::Reclaim,
}

/// The first address above user space (exclusive) for a format.
fn user_top(fmt: &Format) -> u64 {
    let bits = fmt.va_bits();
    match fmt.canonical() {
        // The lower half belongs to user space.
        Canonical::SignExtend => 1u64 << (bits - 1),
        // 32-bit x86 and classroom formats: all of it (Linux on i386 would keep 1 GiB).
        Canonical::ZeroExtend if bits >= 64 => u64::MAX,
        Canonical::ZeroExtend => 1u64 << bits,
    }
}

impl Kernel {
    /// A kernel managing `frames` frames of the format's base page size,
    /// mapping data pages of `page` (the base page, or a larger leaf size
    /// of the format).
    pub fn new(
        fmt: Format,
        frames: u64,
        page: PageSize,
        cfg: KernelConfig,
    ) -> Result<Self, KernelError> {
        Self::build(fmt, frames, page, cfg, 0)
    }

    /// A kernel like [`Kernel::new`] whose page tables are of `structure`.
    /// An inverted or hashed table is built in the first frames of `mem`,
    /// which are kept out of the buddy allocator for good (they count as
    /// page-table frames, and not in [`Kernel::frames_in_use`]). Those
    /// tables map base pages only: `page` must be the format's page size.
    pub fn with_structure<M: PhysMemory + ?Sized>(
        fmt: Format,
        frames: u64,
        page: PageSize,
        cfg: KernelConfig,
        structure: StructureSpec,
        mem: &mut M,
    ) -> Result<Self, KernelError> {
        if structure == StructureSpec::Radix {
            return Self::build(fmt, frames, page, cfg, 0);
        }
        let frame = fmt.page_size();
        if page != frame {
            return Err(KernelError::Config(format!(
                "an {} page table maps {frame} pages only, not {page}",
                structure.name()
            )));
        }
        let reserved = Self::reserved_frames(structure, frames, frame)?;
        let mut k = Self::build(fmt, frames, page, cfg, reserved)?;
        k.tables = PageTables::new(
            structure,
            mem,
            frames,
            frame,
            PhysAddr::default(),
            reserved * frame.bytes(),
        )
        .map_err(MapError::from)?;
        for f in 0..reserved {
            k.frames.mark(Pfn::new(f), 0, FrameUse::Table);
        }
        Ok(k)
    }

    /// The first frames an inverted or hashed table of `structure` takes
    /// out of the buddy allocator's `frames` (none for radix tables).
    pub(crate) fn reserved_frames(
        structure: StructureSpec,
        frames: u64,
        frame: PageSize,
    ) -> Result<u64, KernelError> {
        if structure == StructureSpec::Radix {
            return Ok(0);
        }
        let bytes = structure
            .region_bytes(frames, frame)
            .map_err(MapError::from)?;
        let reserved = bytes.div_ceil(frame.bytes());
        if reserved >= frames {
            return Err(KernelError::Config(format!(
                "the {} page table needs {reserved} of the {frames} frames",
                structure.name()
            )));
        }
        Ok(reserved)
    }

    /// A kernel over frames `[reserved, frames)`, with radix tables.
    pub(crate) fn build(
        fmt: Format,
        frames: u64,
        page: PageSize,
        cfg: KernelConfig,
        reserved: u64,
    ) -> Result<Self, KernelError> {
        if fmt.level_for_size(page).is_none() {
            return Err(KernelError::Config(format!(
                "{} cannot map {page} pages (it maps {})",
                fmt.name(),
                fmt.page_sizes()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if cfg.asids == 0 || cfg.asids > 65536 {
            return Err(KernelError::Config(format!(
                "asids = {}: expected 1 to 65536",
                cfg.asids
            )));
        }
        let frame = fmt.page_size();
        let order = page.shift() - frame.shift();
        let buddy = Buddy::new(
            frame,
            Pfn::new(reserved),
            frames.saturating_sub(reserved),
            crate::alloc::DEFAULT_MAX_ORDER.max(order),
        )?;
        // Return empty slabs at once, so that frames in use after every
        // process exited are leaks, never cached slabs.
        let mut params = SlabParams {
            keep_empty: 0,
            ..SlabParams::default()
        };
        if frame.bytes() < 4096 {
            // Classroom frames are tiny: let a slab span as many as a task structure needs.
            params.max_order = params.max_page_order;
        }
        let (slab, caches) = Slab::with_kernel_caches(frame, params)?;
        let reclaim = reclaim::Reclaim::new(&reclaim::ReclaimSetup {
            frames,
            page_bytes: page.bytes() as usize,
            data_pages: frames.saturating_sub(reserved) >> order,
            cfg: &cfg,
        })?;
        Ok(Self {
            reclaim,
            fmt,
            cfg,
            page,
            frames: FrameTable::new(buddy, page),
            tables: PageTables::Radix(RadixSpaces::default()),
            slab,
            caches,
            spaces: Vec::new(),
            procs: BTreeMap::new(),
            shm: ShmTable::default(),
            next_pid: 1,
            free_asids: Vec::new(),
            next_asid: 1,
            stats: KernelStats::default(),
            events: Vec::new(),
        })
    }

    /// The paging format.
    #[must_use]
    pub fn format(&self) -> &Format {
        &self.fmt
    }

    /// The data page size.
    #[must_use]
    pub fn page_size(&self) -> PageSize {
        self.page
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &KernelConfig {
        &self.cfg
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &KernelStats {
        &self.stats
    }

    /// Events so far (segmentation faults).
    #[must_use]
    pub fn events(&self) -> &[KernelEvent] {
        &self.events
    }

    /// The frame table.
    #[must_use]
    pub fn frames(&self) -> &FrameTable {
        &self.frames
    }

    /// The page-table structure.
    #[must_use]
    pub fn tables(&self) -> &PageTables {
        &self.tables
    }

    /// What the MMU's walker needs besides each context's root (give it
    /// to [`Mmu::set_table_base`](crate::mmu::Mmu::set_table_base) once).
    #[must_use]
    pub fn table_base(&self) -> TableBase {
        self.tables.base()
    }

    /// Translates `va` for `pid` as the hardware walker would, without a
    /// TLB, with the memory references it took: for tools and tests that
    /// drive the kernel without an MMU.
    pub fn walk<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        pid: Pid,
        va: VirtAddr,
    ) -> Result<TableWalk, KernelError> {
        let s = self.space_of(pid)?;
        Ok(self.tables.walk(&self.fmt, mem, s.asid, va))
    }

    /// The slab allocator.
    #[must_use]
    pub fn slab(&self) -> &Slab {
        &self.slab
    }

    /// The shared objects.
    #[must_use]
    pub fn shm(&self) -> &ShmTable {
        &self.shm
    }

    /// A process.
    pub fn process(&self, pid: Pid) -> Result<&Process, KernelError> {
        // A match, not `ok_or`: an error passed to `ok_or` is built and
        // dropped at every call (a swap-heavy run asks at each fault).
        match self.procs.get(&pid) {
            Some(p) => Ok(p),
            None => Err(KernelError::NoSuchProcess(pid)),
        }
    }

    /// Every live process.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.procs.values()
    }

    /// The address space a process runs in.
    pub fn space_of(&self, pid: Pid) -> Result<&AddressSpace, KernelError> {
        let sid = self.process(pid)?.space;
        Ok(self.space(sid))
    }

    /// An address space by id.
    ///
    /// # Panics
    /// If the id is stale: a kernel bug, since processes hold live ids only.
    #[must_use]
    pub fn space(&self, sid: SpaceId) -> &AddressSpace {
        self.spaces[sid.0 as usize]
            .as_ref()
            .expect("live address space")
    }

    fn space_mut(&mut self, sid: SpaceId) -> &mut AddressSpace {
        self.spaces[sid.0 as usize]
            .as_mut()
            .expect("live address space")
    }

    /// What the MMU needs to run `pid`: the root table and the ASID.
    pub fn context(&self, pid: Pid) -> Result<(PhysAddr, Asid), KernelError> {
        let p = self.process(pid)?;
        if let ProcState::VforkWait(_) = p.state {
            return Err(KernelError::Blocked(pid));
        }
        let s = self.space(p.space);
        Ok((self.tables.root(s.asid)?, s.asid))
    }

    /// Frames in use as page tables, over all address spaces (and the
    /// global inverted or hashed table's region).
    #[must_use]
    pub fn table_frames(&self) -> u64 {
        self.frames.table_frames()
    }

    /// Frames that are not free (after every process exited: leaked frames).
    #[must_use]
    pub fn frames_in_use(&self) -> u64 {
        self.frames.total_frames() - self.frames.free_frames()
    }

    fn alloc_asid(&mut self) -> Result<Asid, KernelError> {
        if let Some(a) = self.free_asids.pop() {
            return Ok(Asid::new(a));
        }
        if self.next_asid >= self.cfg.asids {
            return Err(KernelError::OutOfAsids(self.cfg.asids));
        }
        let a = self.next_asid as u16;
        self.next_asid += 1;
        Ok(Asid::new(a))
    }

    fn new_space<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        brk_start: VirtAddr,
    ) -> Result<SpaceId, KernelError> {
        let asid = self.alloc_asid()?;
        if let Err(e) = self
            .tables
            .new_space(&self.fmt, mem, &mut self.frames.for_tables(), asid)
        {
            self.free_asids.push(asid.as_u16());
            return Err(match e {
                MapError::OutOfFrames => KernelError::OutOfMemory,
                e => e.into(),
            });
        }
        let space = AddressSpace::new(asid, brk_start);
        let id = match self.spaces.iter().position(Option::is_none) {
            Some(i) => {
                self.spaces[i] = Some(space);
                i
            }
            None => {
                self.spaces.push(Some(space));
                self.spaces.len() - 1
            }
        };
        Ok(SpaceId(id as u32))
    }

    fn new_pid(&mut self) -> Pid {
        let pid = Pid::new(self.next_pid);
        self.next_pid += 1;
        pid
    }

    fn alloc_task(&mut self) -> Result<crate::alloc::ObjHandle, KernelError> {
        let mut frames = self.frames.for_slabs();
        match self.slab.alloc(self.caches.task, &mut frames) {
            Ok(h) => Ok(h),
            Err(SlabError::OutOfMemory { .. }) => Err(KernelError::OutOfMemory),
            Err(e) => Err(e.into()),
        }
    }

    fn layout_addresses(&self) -> (u64, u64, u64) {
        let top = user_top(&self.fmt);
        let page = self.page.bytes();
        let stack_top = self
            .cfg
            .stack_top
            .unwrap_or(top - page.max(top / 64).min(1 << 32) / page * page);
        let heap = self
            .cfg
            .heap_start
            .unwrap_or((top / 16).max(page) / page * page);
        let mmap = self.cfg.mmap_base.unwrap_or(
            (stack_top.saturating_sub(self.cfg.stack_limit + self.cfg.stack_guard_gap)) / page
                * page,
        );
        (stack_top, heap, mmap)
    }

    /// The lowest address a mapping may start at (`kernel.mmap_min_addr`;
    /// see [`KernelConfig::mmap_min_addr`]).
    pub(super) fn mmap_min_addr(&self) -> u64 {
        let page = self.page.bytes();
        self.cfg
            .mmap_min_addr
            .unwrap_or_else(|| (user_top(&self.fmt) / 16).clamp(page, 1 << 16) / page * page)
    }

    /// Creates a process with a fresh address space.
    pub fn spawn<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        layout: Layout,
    ) -> Result<Pid, KernelError> {
        let (stack_top, heap, _) = self.layout_addresses();
        let page = self.page.bytes();
        let task = self.alloc_task()?;
        let sid = match self.new_space(mem, VirtAddr::new(heap)) {
            Ok(s) => s,
            Err(e) => {
                let _ = self
                    .slab
                    .free(self.caches.task, &mut self.frames.for_slabs(), task);
                return Err(e);
            }
        };
        let space = self.space_mut(sid);
        match layout {
            Layout::Standard => space.insert(Vma {
                start: VirtAddr::new(stack_top - page),
                end: VirtAddr::new(stack_top),
                prot: Prot::RW,
                kind: VmaKind::Stack,
                locked: false,
                shm: None,
            }),
            Layout::Flat => {
                let top = user_top(&self.fmt);
                let space = self.space_mut(sid);
                space.insert(Vma {
                    start: VirtAddr::new(0),
                    end: VirtAddr::new(top / page * page),
                    prot: Prot::RWX,
                    kind: VmaKind::AnonPrivate,
                    locked: false,
                    shm: None,
                });
            }
        }
        let pid = self.new_pid();
        self.procs.insert(
            pid,
            Process {
                pid,
                parent: None,
                space: sid,
                state: ProcState::Runnable,
                vfork_parent: None,
                task: Some(task),
            },
        );
        Ok(pid)
    }

    fn runnable(&self, pid: Pid) -> Result<&Process, KernelError> {
        let p = self.process(pid)?;
        match p.state {
            ProcState::Runnable => Ok(p),
            ProcState::VforkWait(_) => Err(KernelError::Blocked(pid)),
        }
    }

    /// Maps a data page at `va` (page aligned) in space `sid`; the frame's
    /// reference count goes up by one.
    fn map_data<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        sid: SpaceId,
        va: VirtAddr,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), KernelError> {
        self.map_data_known(mem, sid, va, pfn, flags, None, None)
    }

    /// Where a fault's lookup found `va`'s leaf entry empty (see
    /// [`crate::paging::PageTables::translate_or_place`]), with the
    /// generation of the table holding it then (see
    /// [`FrameTable::table_gens`]): a later map may write there while that
    /// table is still the one it was found in ([`Kernel::still_found`]).
    fn found_place(&self, place: Option<(usize, PhysAddr)>) -> Option<FoundPlace> {
        let (idx, addr) = place?;
        let table = addr.as_u64() >> self.frames.frame_size().shift();
        let gen_ = self.frames.table_gens().get(table as usize).copied();
        Some(FoundPlace {
            idx,
            addr,
            table,
            gen_: gen_.unwrap_or(0),
        })
    }

    /// The place `found` holds while its table was neither freed nor
    /// reused since (a reclaim between the lookup and the map may free
    /// empty tables): the table is then still linked where the walk found
    /// it (a radix table is unlinked only when freed), so a walk from the
    /// root reaches the same entry.
    fn still_found(&self, found: Option<FoundPlace>) -> Option<(usize, PhysAddr)> {
        let f = found?;
        let gens = self.frames.table_gens();
        (gens.get(f.table as usize).copied().unwrap_or(0) == f.gen_).then_some((f.idx, f.addr))
    }

    /// Debug builds: the place [`Kernel::still_found`] kept for `va` in
    /// `asid` is where a lookup now stops (an empty entry there).
    #[cfg(debug_assertions)]
    fn check_found<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        asid: Asid,
        va: VirtAddr,
        at: Option<(usize, PhysAddr)>,
    ) {
        if let Some(at) = at {
            let now = self.tables.translate_or_place(&self.fmt, mem, asid, va);
            debug_assert_eq!(
                now.err(),
                Some(Some(at)),
                "a kept place a walk would not find"
            );
        }
    }

    /// [`Kernel::map_data`] given what [`Kernel::known_leaf`] said of `va`
    /// earlier in the same fault (`earlier`, checked before use), or else
    /// where the fault's lookup found its entry empty (`found`, checked
    /// before use; [`crate::paging::RadixTable::map_at`] checks the entry is still empty
    /// and at the page size's level, or maps from the root).
    #[allow(clippy::too_many_arguments)]
    fn map_data_known<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        sid: SpaceId,
        va: VirtAddr,
        pfn: Pfn,
        flags: PteFlags,
        earlier: Option<reclaim::KnownLeaf>,
        found: Option<FoundPlace>,
    ) -> Result<(), KernelError> {
        let frame = self.frames.addr_of(pfn);
        let asid = self.space(sid).asid;
        // A page the soft-dirty tracker protected comes back read-only (a
        // swap-in, a fork's copy of a protected PTE): a store must still trap.
        let flags = self.tracked_flags(sid, va, flags);
        // A page mapped again where it was (a swap-in): its leaf entry's
        // place is known, no walk from the root.
        let known = self.still_known(earlier, sid, va);
        let at = match known {
            Some(k) => Some(k.place()),
            None => {
                let at = self.still_found(found);
                #[cfg(debug_assertions)]
                self.check_found(mem, asid, va, at);
                at
            }
        };
        let r = match at {
            Some(at) => self.tables.map_at(
                &self.fmt,
                mem,
                &mut self.frames.for_tables(),
                asid,
                va,
                frame,
                self.page,
                flags,
                at,
            ),
            None => self.tables.map(
                &self.fmt,
                mem,
                &mut self.frames.for_tables(),
                asid,
                va,
                frame,
                self.page,
                flags,
            ),
        };
        match r {
            // A non-present entry is never cached by the TLB or the walk
            // caches (Intel SDM 4.10.2.3; our MMU caches present entries
            // only), so filling one needs no invalidation.
            Ok(flush) => flush.ignore(),
            Err(MapError::OutOfFrames | MapError::Table(TableError::PoolExhausted { .. })) => {
                return Err(KernelError::OutOfMemory);
            }
            Err(e) => return Err(e.into()),
        }
        self.frames.get(pfn);
        self.reclaim.rmap_add(pfn, sid, va);
        if let Some(k) = known {
            self.leaf_moved_to(pfn, k);
        }
        self.space_mut(sid).resident += 1;
        Ok(())
    }

    /// Drops a reference to a data page; a page freed ends its identity.
    fn put_page(&mut self, pfn: Pfn) {
        if self.frames.put(pfn) {
            self.page_freed(pfn);
        }
    }

    /// Unmaps the data page at `va` in space `sid` if one is mapped, dropping
    /// its reference and invalidating the TLB. Returns whether a page was mapped.
    fn unmap_data<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        va: VirtAddr,
    ) -> Result<bool, KernelError> {
        let asid = {
            let s = self.space(sid);
            s.asid
        };
        let r = self
            .tables
            .unmap(&self.fmt, mem, &mut self.frames.for_tables(), asid, va);
        self.unmapped_data(tlb, sid, asid, va, r)
    }

    /// [`Kernel::unmap_data`] of `leaf`, one of what
    /// [`crate::paging::PageTables::leaves`] listed for space `sid` (`next`:
    /// the leaf listed after it), unmapped in the listing's order (an exit's teardown: see
    /// [`crate::paging::PageTables::unmap_listed`], no walk from the root).
    fn unmap_listed_data<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        leaf: &crate::paging::LeafInfo,
        next: Option<&crate::paging::LeafInfo>,
    ) -> Result<bool, KernelError> {
        let asid = self.space(sid).asid;
        let r = self.tables.unmap_listed(
            &self.fmt,
            mem,
            &mut self.frames.for_tables(),
            asid,
            leaf,
            next,
        );
        self.unmapped_data(tlb, sid, asid, leaf.page, r)
    }

    /// The rest of [`Kernel::unmap_data`] once the entry of `va` is cleared
    /// (`r`): the TLB invalidation, the reverse map, the frame's reference.
    #[inline(always)]
    fn unmapped_data<T: TlbControl>(
        &mut self,
        tlb: &mut T,
        sid: SpaceId,
        asid: Asid,
        va: VirtAddr,
        r: Result<crate::paging::Unmapped, MapError>,
    ) -> Result<bool, KernelError> {
        match r {
            Ok(u) => {
                tlb.invalidate_page(asid, u.flush);
                let pfn = self.frames.pfn_of(u.frame);
                self.reclaim.rmap_remove(pfn, sid, va.align_down(self.page));
                self.put_page(pfn);
                self.space_mut(sid).resident -= 1;
                Ok(true)
            }
            Err(MapError::NotMapped { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Unmaps every data page in `[start, end)` of space `sid`.
    fn unmap_range<M: PhysMemory + ?Sized, T: TlbControl>(
        &mut self,
        mem: &mut M,
        tlb: &mut T,
        sid: SpaceId,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Result<(), KernelError> {
        let page = self.page.bytes();
        let pages = (end.as_u64() - start.as_u64()) / page;
        // Pages in swap go too: their slots lose a reference.
        let swapped: Vec<(u64, crate::swap::SwapSlot)> = self
            .space(sid)
            .swapped
            .range(start.as_u64()..end.as_u64(), page);
        for (va, slot) in swapped {
            self.space_mut(sid).swapped.remove(&va);
            self.reclaim.slot_unref(slot);
        }
        let protected: Vec<u64> = self
            .space(sid)
            .write_protected
            .range(start.as_u64()..end.as_u64())
            .copied()
            .collect();
        for va in protected {
            self.space_mut(sid).write_protected.remove(&va);
        }
        if pages <= 4096 {
            for i in 0..pages {
                self.unmap_data(mem, tlb, sid, start.wrapping_add(i * page))?;
            }
        } else {
            // A huge range (a flat layout): visit the leaves instead of every page.
            let leaves = self.tables.leaves(&self.fmt, mem, self.space(sid).asid)?;
            for l in leaves.iter().filter(|l| start <= l.page && l.page < end) {
                self.unmap_data(mem, tlb, sid, l.page)?;
            }
        }
        Ok(())
    }

    /// `flags` less write permission if the soft-dirty tracker protects
    /// the page at `va` of space `sid`.
    fn tracked_flags(&self, sid: SpaceId, va: VirtAddr, flags: PteFlags) -> PteFlags {
        let s = self.space(sid);
        if !s.write_protected.is_empty() && s.write_protected.contains(&va.as_u64()) {
            flags - PteFlags::WRITE
        } else {
            flags
        }
    }

    /// The flags a data page gets in `vma`: the VMA's permissions, less
    /// write while the frame is shared copy-on-write.
    fn page_flags(&self, vma: &Vma, pfn: Pfn) -> PteFlags {
        let mut flags = vma.prot.pte_flags();
        if vma.kind.is_private() && self.frames.meta(pfn).refs > 1 {
            flags.remove(PteFlags::WRITE);
        }
        flags
    }

    fn page_align_down(&self, va: u64) -> u64 {
        va & !self.page.mask()
    }

    fn page_align_up(&self, va: u64) -> Option<u64> {
        va.checked_add(self.page.mask())
            .map(|v| v & !self.page.mask())
    }
}
