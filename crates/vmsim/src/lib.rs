//! vmsim: a virtual-memory system you can run, inspect and measure.
//!
//! The engine crate: deterministic, no command-line parsing, no printing.
//! `DESIGN.md` at the repository root has the whole map; this is the tour,
//! in the order a memory reference meets the modules.
//!
//! # A guided tour
//!
//! 1. **Addresses and memory.** [`addr`] has the checked newtypes
//!    ([`addr::VirtAddr`], [`addr::PhysAddr`], page sizes, ASIDs, pids).
//!    [`memory::PhysMemory`] is what everything below needs from RAM (read
//!    and write bytes and entries at a physical address); [`phys::PhysMem`]
//!    is the simulator's sparse implementation, and a `Vec<u8>` (or an
//!    emulator's own guest RAM type) is another.
//! 2. **Page tables.** [`paging`] describes each architecture's format
//!    ([`paging::Format`]: x86-32/PAE/64, RISC-V Sv32/39/48, ...), walks
//!    tables in memory ([`paging::walk`](fn@paging::walk)) and builds them
//!    ([`paging::RadixTable`]; inverted and hashed tables too, behind
//!    [`paging::PageTables`]). [`alloc`] has the frame allocators the
//!    builders take.
//! 3. **The MMU.** [`mmu::Mmu`]: the TLB hierarchy and page-walk caches
//!    ([`mmu::TlbConfig`], presets of real cores), the walker, hardware
//!    accessed/dirty bits, permission checks; a translation ends in a
//!    physical address or an [`mmu::MmuFault`].
//! 4. **The kernel.** [`kernel::Kernel`]: processes, areas, demand paging,
//!    fork with copy-on-write, mmap/brk/mprotect, shared memory, swap
//!    ([`swap`]) and page reclaim with the policies of [`reclaim`].
//! 5. **The machine.** [`machine::Machine`] joins an MMU, its memory and
//!    a fault handler (the kernel, [`machine::KernelFaults`], or an
//!    embedder's own): `access(va, kind)` translates, handles, retries.
//! 6. **The simulation.** [`config::Config`] describes a machine (presets
//!    and `key=value` layers), [`sim::Simulation`] runs a scenario of
//!    processes driven by traces ([`vmsim_trace`]) through the machine, and
//!    ends in a [`report::Report`]; [`checkpoint`] snapshots and restores a
//!    run, [`migrate`] moves a process between two runs, [`replay`] rewinds.
//! 7. **The labs.** Smaller models for teaching and study, sharing the
//!    pieces above: [`reclaim::lab`] (replacement policies over reference
//!    strings), [`mrc`] (miss-ratio curves), [`segment`] (segmentation),
//!    [`calc`] (address arithmetic), [`exercise`] (generated problems).
//!
//! # From a reference to a report
//!
//! Eight pages of a process, written and read through the kernel's demand
//! paging, over memory the caller owns:
//!
//! ```
//! use vmsim::addr::PageSize;
//! use vmsim::kernel::{Kernel, KernelConfig, Layout, MmapFlags, Prot};
//! use vmsim::machine::{KernelFaults, Machine};
//! use vmsim::memory::PhysMemory;
//! use vmsim::mmu::{AccessKind, Mmu, TlbConfig};
//! use vmsim::paging::Format;
//!
//! let fmt = Format::x86_64();
//! let mut ram = vec![0u8; 128 * 4096];
//! let mut kernel = Kernel::new(fmt.clone(), 128, PageSize::SIZE_4K, KernelConfig::default())?;
//! let mut mmu = Mmu::new(fmt, &TlbConfig::preset("x86-64")?, true)?;
//! mmu.set_table_base(kernel.table_base());
//! let pid = kernel.spawn(&mut ram, Layout::Standard)?;
//! let area = kernel.mmap(&mut ram, &mut mmu, pid, None, 8 * 4096, Prot::RW, MmapFlags::default())?;
//!
//! let mut m = Machine::new(mmu, ram, KernelFaults::new(kernel, pid));
//! m.switch_to(pid)?;
//! for pass in 0..2u8 {
//!     for page in 0..8 {
//!         let va = area.wrapping_add(page * 4096);
//!         let pa = m.access(va, AccessKind::Write)?.expect("the process lives");
//!         m.mem.write(pa, &[pass])?;
//!     }
//! }
//! let c = m.mmu.counters();
//! assert_eq!(c.faults.not_present, 8); // the first pass: one demand-zero fault a page
//! assert_eq!(c.accesses(), 24); // 16 accesses, 8 of them translated twice
//! assert_eq!(m.handler.kernel.stats().demand_zero, 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same with traces, a scheduler and a report is [`sim::Simulation`];
//! runnable programs are in `crates/vmsim/examples/` (`embed_mmu`,
//! `scenario`, `policy_lab`, `checkpoint`).

pub mod addr;
pub mod alloc;
pub mod calc;
pub mod checkpoint;
pub mod config;
pub mod error_line;
pub mod exercise;
pub mod kernel;
pub mod machine;
pub mod memory;
pub mod migrate;
pub mod mmu;
pub mod mrc;
pub mod paging;
pub mod phys;
pub mod reclaim;
pub mod replay;
pub mod report;
pub mod segment;
pub mod serde_arrays;
pub mod serde_sparse;
pub mod shared_page;
pub mod sim;
pub mod swap;
pub mod units;
