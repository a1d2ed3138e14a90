//! The MMU: TLB lookup, page walk (resumed from the page-walk caches),
//! accessed/dirty bits written into the entries in physical memory, and
//! permission checks, ending in a physical address or a fault.
//!
//! The TLB-hit path is a lookup, a permission test and a dirty test: no
//! allocation, no dynamic dispatch, no hashing. Everything else (the walk,
//! A/D write-backs, faults) is out of line.

use super::TlbControl;
use crate::addr::{Asid, PhysAddr, VirtAddr};
use crate::memory::PhysMemory;
use crate::paging::hashed::TableSearch;
use crate::paging::{
    Entry, FaultKind, Flush, Format, PteFlags, TableBase, Translation, WalkFault, walk_from,
};
use serde::{Deserialize, Serialize};

use super::counters::{Counters, FaultCounters, MAX_WALK_LEVELS, WalkCounters};
use super::entry::EntryFlags;
use super::fault::{MmuFault, MmuFaultKind, Violation};
use super::tlb::PaHit;
use super::walk_cache::Looked;
use super::{
    AccessKind, LoadOrFetch, Perms, Privilege, Tlb, TlbConfig, TlbConfigError, TlbEntry, TlbHit,
};

/// The translation hardware of one core: the TLB hierarchy, the page-walk
/// caches and the walker of one paging [`Format`], translating in the
/// context (root table, ASID) the OS last set, over any [`PhysMemory`].
///
/// A miss walks the tables in memory and writes the accessed and dirty
/// bits there (with `hardware_ad`); a hit touches no memory. A fault is
/// returned, not handled: [`crate::machine`] pairs the MMU with an OS.
///
/// ```
/// use vmsim::addr::{Asid, PageSize, Pfn, PhysAddr, VirtAddr};
/// use vmsim::alloc::FirstFit;
/// use vmsim::mmu::{AccessKind, Mmu, Privilege, TlbConfig};
/// use vmsim::paging::{Format, PteFlags, RadixTable};
///
/// // Tables built in 64 frames of a plain Vec: 0x40_0000 -> frame 0x3f000.
/// let fmt = Format::x86_64();
/// let mut ram = vec![0u8; 64 * 4096];
/// let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 62);
/// let table = RadixTable::new(&fmt, &mut ram, &mut frames)?;
/// let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
/// let page = VirtAddr::new(0x40_0000);
/// table
///     .map(&fmt, &mut ram, &mut frames, page, PhysAddr::new(0x3f000)?, PageSize::SIZE_4K, rw)?
///     .ignore();
///
/// let mut mmu = Mmu::new(fmt.clone(), &TlbConfig::preset("x86-64")?, true)?;
/// mmu.set_context(table.root(), Asid::new(1));
/// let store = mmu.translate(&mut ram, VirtAddr::new(0x40_0010), AccessKind::Write, Privilege::User)?;
/// assert_eq!(store, PhysAddr::new(0x3f010)?);
/// let load = mmu.translate(&mut ram, VirtAddr::new(0x40_0020), AccessKind::Read, Privilege::User)?;
/// assert_eq!(load, PhysAddr::new(0x3f020)?);
/// // One walk (the store), one TLB hit (the load).
/// let c = mmu.counters();
/// assert_eq!((c.walk.walks, c.tlb.lookups() - c.tlb.full_misses), (1, 1));
/// // The walk set the leaf's accessed and dirty bits, in `ram`.
/// let leaf = table.translate(&fmt, &ram, page)?;
/// assert!(leaf.flags.contains(PteFlags::ACCESSED | PteFlags::DIRTY));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mmu {
    fmt: Format,
    tlb: Tlb,
    hardware_ad: bool,
    base: TableBase,
    root: PhysAddr,
    asid: Asid,
    walk: WalkCounters,
    faults: FaultCounters,
    /// The entries the current walk read. Kept here rather than built on
    /// the stack per walk (zeroing it cost more than most walks read);
    /// every field below `len` is written before it is read. Not state:
    /// never saved, never compared.
    #[serde(skip)]
    path: Path,
    /// Whether this MMU's format takes the plain x86-64 walk, and its
    /// reserved address bits: worked out on the first walk (the format
    /// never changes; a restored MMU works it out again), so that a walk
    /// tests one field instead of the format's level count, entry size
    /// and encoding and the physical width's mask (about eight
    /// instructions a walk). Derived: never saved.
    #[serde(skip)]
    plain_x86: PlainX86,
    /// Whether `plain_x86` is exactly [`X86_4_RESERVED`] and
    /// [`X86_4_TAIL`]'s shape (x86-64, 4 levels, 52 physical bits, a radix
    /// table, hardware A/D: the default machine), so that
    /// [`Mmu::walk_as`] takes its copy of the walk with those as
    /// constants ([`Mmu::walk_x86_4`]). Set with `plain_x86`
    /// ([`Mmu::set_plain_x86`]); derived, never saved.
    #[serde(skip)]
    x86_4: bool,
    /// Tests only: take the generic walk and fills, never the plain x86-64
    /// ones, so a property test can check that both give the same state.
    #[cfg(test)]
    #[serde(skip)]
    generic_only: bool,
    /// Tests only: [`Mmu::walk_tail`] declines every walk, so the plain
    /// walk takes them (a property test compares both).
    #[cfg(test)]
    #[serde(skip)]
    tail_off: bool,
    /// Tests only: how many walks [`Mmu::walk_tail`] answered.
    #[cfg(test)]
    #[serde(skip)]
    tail_taken: u64,
    /// Tests only: [`Mmu::walk_as`] never takes [`Mmu::walk_x86_4`], the
    /// general copy taking its walks (a property test compares both).
    #[cfg(test)]
    #[serde(skip)]
    x86_4_off: bool,
    /// Tests only: how many walks [`Mmu::walk_x86_4`] took.
    #[cfg(test)]
    #[serde(skip)]
    x86_4_taken: u64,
    /// Tests only: [`Mmu::store_recent`] always declines, so a run's
    /// stores all take `translate` (the path before it), for a test to
    /// compare both.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) store_hits_off: bool,
    /// Tests only: [`Mmu::hit_shared`] and [`Mmu::store_shared`] always
    /// decline, so the span loop's references all take `translate` (the
    /// path before them).
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) shared_hits_off: bool,
    /// Tests only: how many lookups [`Mmu::hit_shared`] and
    /// [`Mmu::store_shared`] took.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) shared_hits_taken: u64,
    /// Tests only: the span loop takes no repeats of a [`Mmu::hit_shared`]
    /// hit as [`Mmu::hit_shared_again`] (each goes to `hit_shared`).
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) shared_again_off: bool,
    /// Tests only: how many lookups [`Mmu::hit_shared_again`] took.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) shared_again_taken: u64,
    /// Tests only: how many lookups [`Mmu::hit_recent_again`] took.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) recent_again_taken: u64,
    /// Tests only: [`Mmu::translate_retry`] is [`Mmu::translate`], so a
    /// test can compare runs with known misses and without.
    #[cfg(test)]
    #[serde(skip)]
    pub(crate) known_misses_off: bool,
}

// `Perms` (TLB entries) and `PteFlags` (decoded entries) put read, write,
// execute and user in the same four low bits, so converting is a mask.
const _: () = {
    assert!(Perms::READ.bits() as u16 == PteFlags::READ.bits());
    assert!(Perms::WRITE.bits() as u16 == PteFlags::WRITE.bits());
    assert!(Perms::EXECUTE.bits() as u16 == PteFlags::EXEC.bits());
    assert!(Perms::USER.bits() as u16 == PteFlags::USER.bits());
};

/// The TLB's permission bits for an entry's decoded flags.
#[inline]
fn perms_of(flags: PteFlags) -> Perms {
    Perms::from_bits_truncate((flags & PteFlags::PERMS).bits() as u8)
}

/// The decoded permission flags for a TLB entry's (or walk cache's) rights.
#[inline]
fn flags_of(perms: Perms) -> PteFlags {
    PteFlags::from_bits_truncate(u16::from(perms.bits())) & PteFlags::PERMS
}

/// Which permission an access lacks, if any. Supervisor accesses may touch
/// user pages (x86 without SMAP/SMEP, RISC-V with SUM set).
#[inline(always)]
fn violation(perms: Perms, access: AccessKind, privilege: Privilege) -> Option<Violation> {
    if privilege == Privilege::User && !perms.contains(Perms::USER) {
        return Some(Violation::User);
    }
    match access {
        AccessKind::Read if !perms.contains(Perms::READ) => Some(Violation::Read),
        AccessKind::Write if !perms.contains(Perms::WRITE) => Some(Violation::Write),
        AccessKind::Execute if !perms.contains(Perms::EXECUTE) => Some(Violation::Execute),
        _ => None,
    }
}

/// The permissions an access needs: what [`violation`] checks, as one mask
/// so the TLB-hit path tests them with a single comparison.
#[inline(always)]
pub(super) fn required(access: AccessKind, privilege: Privilege) -> Perms {
    let right = match access {
        AccessKind::Read => Perms::READ,
        AccessKind::Write => Perms::WRITE,
        AccessKind::Execute => Perms::EXECUTE,
    };
    if privilege == Privilege::User {
        right | Perms::USER
    } else {
        right
    }
}

/// The entries a walk read, kept for A-bit updates and walk-cache fills.
#[derive(Clone, Copy, Default, Debug)]
struct Path {
    len: usize,
    idx: [usize; MAX_WALK_LEVELS],
    addr: [PhysAddr; MAX_WALK_LEVELS],
    raw: [u64; MAX_WALK_LEVELS],
    next: [PhysAddr; MAX_WALK_LEVELS],
    limits: [PteFlags; MAX_WALK_LEVELS],
    /// After a [`PlainWalk::Done`]: whether every entry read has A set, so
    /// that the walk's A/D write-back has nothing to write but, on a
    /// store to a clean leaf, D (see [`Mmu::walk`]).
    all_accessed: bool,
}

/// The accessed bit (A) of an x86 page-table entry, at every level:
/// [`Format::accessed_masks`] of x86-64 (which the plain walk serves).
const X86_ACCESSED: u64 = 1 << 5;

/// The dirty bit (D) of an x86 leaf: [`Format::dirty_mask`] of x86-64.
const X86_DIRTY: u64 = 1 << 6;

/// The present bit (P) of an x86 page-table entry.
const X86_PRESENT: u64 = 1;

/// Whether an MMU's format takes [`walk_x86_64_plain`] (see `Mmu::plain_x86`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum PlainX86 {
    /// Not worked out yet (a new or restored MMU before its first walk).
    #[default]
    Unknown,
    /// Another encoding, entry size or depth: the generic walk.
    No,
    /// x86-64 with 8-byte entries and at most [`MAX_WALK_LEVELS`] levels;
    /// its reserved address bits ([`Format::x86_reserved_address_bits`])
    /// and the shape of its last two levels, for [`Mmu::walk_tail`].
    Yes(u64, Tail),
}

/// The last two levels of a plain x86-64 format, as [`Mmu::walk_tail`]
/// reads them: worked out with [`PlainX86`], so that the tail's walk reads
/// no `Level` (a bounds test and three loads each) and tests no leaf size.
///
/// The tail serves only the x86 shape of those two levels (9 index bits
/// each, from bits 21 and 12: [`TAIL_UP_SHIFT`], [`TAIL_LEAF_SHIFT`]), so
/// that the walk's shifts and masks are constants: with them read from
/// here, the walk loaded four fields and, short of registers, spilled and
/// reloaded them on every walk. Another shape (a format file's) takes the
/// general walk, which gives the same answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tail {
    /// Whether the tail's walk serves this MMU: a radix table and hardware
    /// A/D (worked out with the format's tests, so that the walk tests one
    /// flag where it tested three: [`Mmu::set_table_base`] forgets it on a
    /// change of table), and a format of at least two levels, the x86
    /// shape of the last two, 4 KiB leaves in the last (the frame bits of
    /// an x86-64 entry are then always aligned to the leaf's size, so no
    /// alignment test is needed) and sign-extended addresses narrower than
    /// 64 bits.
    on: bool,
    /// The last level's position (root = 0).
    last: usize,
    /// The last level's number (a not-present leaf's fault names it).
    leaf_number: u32,
    /// The format's top address bit (`va_bits - 1`): an address is
    /// canonical when the bits from it up, shifted down with the sign, are
    /// 0 or -1 ([`Format::check_address`], without its tests of the
    /// format's width and kind of address).
    canonical_shift: u32,
}

/// How [`Mmu::walk_tail`] ended: the walk's answer is then made by
/// [`Mmu::walk_as`], each outcome on its own path.
///
/// Why not the walk's `Option<Result<..>>`: with the not-present leaf's
/// fault written into the same answer in line, the compiler shared one
/// block of stores between the fault and the translation, so every walk
/// that found its page wrote the fault's fields too (about nine
/// instructions a walk on the zipf-walks row). Here a translation writes
/// its address alone, and the fault is made by a call of its own that
/// writes the walk's answer in place ([`Mmu::tail_not_present`]).
#[derive(Clone, Copy, Debug)]
enum TailEnd {
    /// Translated: the TLB filled, the address found.
    Done(PhysAddr),
    /// The leaf is not present; `up`: the level above it was read here.
    /// Nothing counted yet.
    NotPresent { up: bool },
    /// Not a walk the tail takes: nothing changed, the general walk goes
    /// on from the same hit.
    Declined,
}

/// The lowest address bit of the last level's index, in every format the
/// tail serves.
const TAIL_LEAF_SHIFT: u32 = 12;

/// The lowest address bit of the index of the level above the last.
const TAIL_UP_SHIFT: u32 = 21;

/// The index mask of both levels (9 bits each).
const TAIL_INDEX_MASK: u64 = (1 << 9) - 1;

/// The bytes of a table of either level: 512 entries of 8 bytes, 4 KiB.
const TAIL_TABLE_BYTES: u64 = (TAIL_INDEX_MASK + 1) * 8;

/// The reserved address bits of x86-64 with 52 physical-address bits (the
/// preset's): none. See [`Mmu::walk_x86_4`].
const X86_4_RESERVED: u64 = 0;

/// The tail of the x86-64 preset's format (4 levels, 48-bit addresses):
/// the last level's position 3, its number 1, the top address bit 47. See
/// [`Mmu::walk_x86_4`].
const X86_4_TAIL: Tail = Tail {
    on: true,
    last: 3,
    leaf_number: 1,
    canonical_shift: 47,
};

impl Tail {
    /// The tail of `fmt` (a format [`PlainX86::of`] takes), for an MMU that
    /// walks a radix table with hardware A/D when `radix_ad`.
    fn of(fmt: &Format, radix_ad: bool) -> Self {
        let levels = fmt.levels();
        let n = levels.len();
        if !radix_ad
            || n < 2
            || levels[n - 1].leaf != Some(crate::addr::PageSize::SIZE_4K)
            || fmt.va_bits() >= 64
            || fmt.canonical() != crate::paging::Canonical::SignExtend
        {
            return Self::default();
        }
        let (up, leaf) = (levels[n - 2], levels[n - 1]);
        if (up.shift, up.bits, leaf.shift, leaf.bits) != (TAIL_UP_SHIFT, 9, TAIL_LEAF_SHIFT, 9) {
            return Self::default();
        }
        Self {
            on: true,
            last: n - 1,
            leaf_number: leaf.number,
            canonical_shift: fmt.va_bits() - 1,
        }
    }

    /// Whether `va` is canonical for the format: exactly
    /// `fmt.check_address(va).is_ok()` for a format whose tail is on.
    #[inline(always)]
    fn canonical(self, va: VirtAddr) -> bool {
        let upper = (va.as_u64() as i64) >> self.canonical_shift;
        upper == 0 || upper == -1
    }
}

impl PlainX86 {
    /// What `fmt` takes: the tests `walk_x86_64_plain` made on every walk;
    /// `radix_ad` as [`Tail::of`] takes it.
    #[cold]
    fn of(fmt: &Format, radix_ad: bool) -> Self {
        if fmt.levels().len() > MAX_WALK_LEVELS
            || fmt.entry_bytes() != 8
            || !matches!(fmt.encoding(), crate::paging::Encoding::X86_64)
        {
            Self::No
        } else {
            Self::Yes(fmt.x86_reserved_address_bits(), Tail::of(fmt, radix_ad))
        }
    }
}

/// What [`walk_x86_64_plain`] found.
enum PlainWalk {
    /// The translation.
    Done(Translation),
    /// A not-present entry stopped the walk: the fault `walk_from` reports.
    NotPresent(WalkFault),
    /// Anything else: the walk is left to `walk_from`.
    Generic,
}

/// The walk of [`walk_from`] for x86 4- and 5-level paging (a format of
/// which [`PlainX86::of`] says `Yes(reserved)`), when every
/// entry it reads is plain (see [`Format::decode_x86_64_plain`]): a present
/// table pointer at each level and a present last-level leaf, or a
/// not-present entry that ends the walk with a fault. Reads memory and
/// changes nothing: [`PlainWalk::Generic`] (another encoding, a reserved
/// or large-page entry, a table outside memory) leaves the walk to
/// `walk_from`, which then reads the same entries and finds the same
/// answer or fault, so the outcome does not depend on which one ran. The
/// entries read are in `path` (filled in place: it is too large to return
/// by value on this path; the caller empties it first), as `walk_from`'s
/// observer would have recorded them.
///
/// This is the TLB-miss path of the default machine, which walks on most
/// references of a workload that outruns the TLB: one loop with the decode
/// inlined, no per-entry callback. A swap-heavy run's walks end at a
/// not-present leaf half the time: those are answered here too, not walked
/// a second time.
///
/// Each entry read is counted in `refs` (the walk's references by level)
/// as it is read, and `path.all_accessed` tells whether every one had A
/// set: the walk then skips its A/D write-back loop, which on most walks
/// writes nothing. On [`PlainWalk::Generic`] the counts of the entries in
/// `path` must be taken back: `walk_from` reads and counts them again.
///
/// Always in line: the walk has two copies (`Mmu::walk_as`), and with a
/// plain `#[inline]` neither took it in (a call and its spills on every
/// walk, +120M instructions on the zipf-walks row).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn walk_x86_64_plain<M: PhysMemory + ?Sized>(
    fmt: &Format,
    reserved: u64,
    mem: &M,
    start: usize,
    table: PhysAddr,
    limits: PteFlags,
    va: VirtAddr,
    path: &mut Path,
    refs: &mut [u64; MAX_WALK_LEVELS],
) -> PlainWalk {
    let levels = fmt.levels();
    debug_assert!(matches!(PlainX86::of(fmt, false), PlainX86::Yes(r, _) if r == reserved));
    debug_assert_eq!(fmt.accessed_masks(), (X86_ACCESSED, X86_ACCESSED));
    debug_assert_eq!(fmt.dirty_mask(), X86_DIRTY);
    let mut table = table;
    let mut acc = limits;
    // The AND of every entry read: A set in all of them when A is set here.
    let mut all = u64::MAX;
    for (idx, level) in levels.iter().enumerate().skip(start) {
        let entry_addr = PhysAddr::new_unchecked(table.as_u64() + level.index(va) * 8);
        // The memory's fields read at each read, not before the loop: the
        // loop runs once or twice, and the compiler, hoisting the six
        // fields a read may use out of it, spilled them to the stack on
        // every walk (twelve instructions, ~14M on the zipf-walks row).
        // `black_box` hides that the reference is the same each time;
        // it changes nothing else.
        let Ok(raw) = std::hint::black_box(mem).read_le(entry_addr, 8) else {
            return PlainWalk::Generic;
        };
        let i = path.len;
        path.idx[i] = idx;
        path.addr[i] = entry_addr;
        path.raw[i] = raw;
        path.len += 1;
        // (idx < levels.len() <= MAX_WALK_LEVELS, tested above.)
        refs[idx & (MAX_WALK_LEVELS - 1)] += 1;
        all &= raw;
        let Some(entry) = fmt.decode_x86_64_plain_reserved(idx, raw, reserved) else {
            // Not plain. Not present ends the walk as it ends walk_from's:
            // an x86-64 entry with P clear decodes as `Entry::Invalid`
            // whatever its other bits (a swap-heavy run's faulting walks
            // end here, and the full decode cost them ~70 instructions).
            if raw & X86_PRESENT == 0 {
                return PlainWalk::NotPresent(WalkFault {
                    kind: FaultKind::NotPresent,
                    level: Some(level.number),
                    idx: Some(idx),
                });
            }
            return match fmt.decode(idx, raw) {
                Entry::Invalid => PlainWalk::NotPresent(WalkFault {
                    kind: FaultKind::NotPresent,
                    level: Some(level.number),
                    idx: Some(idx),
                }),
                _ => PlainWalk::Generic,
            };
        };
        match entry {
            Entry::Table { addr, limits: l } => {
                acc &= l;
                path.next[i] = addr;
                path.limits[i] = acc;
                table = addr;
            }
            Entry::Leaf { addr, flags } => {
                let Some(size) = level.leaf else {
                    return PlainWalk::Generic;
                };
                if !addr.is_aligned(size) {
                    return PlainWalk::Generic;
                }
                let perms = (flags & PteFlags::PERMS) & acc;
                path.all_accessed = all & X86_ACCESSED != 0;
                return PlainWalk::Done(Translation {
                    pa: addr.add(va.page_offset(size)),
                    page: va.align_down(size),
                    frame: addr,
                    size,
                    flags: perms | (flags - PteFlags::PERMS),
                    leaf_idx: idx,
                    leaf_addr: entry_addr,
                    leaf_raw: raw,
                });
            }
            Entry::Invalid | Entry::Reserved(_) => return PlainWalk::Generic,
        }
    }
    PlainWalk::Generic
}

impl Mmu {
    /// An MMU for `fmt` with the TLBs of `config`. `hardware_ad` chooses
    /// hardware accessed/dirty updates (x86, RISC-V Svadu) over Svade faults.
    pub fn new(fmt: Format, config: &TlbConfig, hardware_ad: bool) -> Result<Self, TlbConfigError> {
        let shifts: Vec<u32> = fmt.levels().iter().map(|l| l.shift).collect();
        let mut tlb = Tlb::new(config, &shifts)?;
        tlb.resume_context(Asid::default());
        Ok(Self {
            fmt,
            tlb,
            hardware_ad,
            base: TableBase::Radix,
            root: PhysAddr::default(),
            asid: Asid::default(),
            walk: WalkCounters::default(),
            faults: FaultCounters::default(),
            path: Path::default(),
            plain_x86: PlainX86::Unknown,
            x86_4: false,
            #[cfg(test)]
            generic_only: false,
            #[cfg(test)]
            tail_off: false,
            #[cfg(test)]
            tail_taken: 0,
            #[cfg(test)]
            x86_4_off: false,
            #[cfg(test)]
            x86_4_taken: 0,
            #[cfg(test)]
            store_hits_off: false,
            #[cfg(test)]
            shared_hits_off: false,
            #[cfg(test)]
            shared_hits_taken: 0,
            #[cfg(test)]
            recent_again_taken: 0,
            #[cfg(test)]
            shared_again_off: false,
            #[cfg(test)]
            shared_again_taken: 0,
            #[cfg(test)]
            known_misses_off: false,
        })
    }

    /// `plain_x86` and, with it, `x86_4` (whether it is the preset's
    /// shape, [`X86_4_RESERVED`] and [`X86_4_TAIL`]).
    fn set_plain_x86(&mut self, plain: PlainX86) {
        self.plain_x86 = plain;
        self.x86_4 = plain == PlainX86::Yes(X86_4_RESERVED, X86_4_TAIL);
    }

    /// Whether [`Mmu::walk_x86_4`] is off (tests compare both copies).
    #[inline(always)]
    fn x86_4_walk_off(&self) -> bool {
        #[cfg(test)]
        return self.x86_4_off;
        #[cfg(not(test))]
        false
    }

    /// Whether [`Mmu::walk_tail`] is off, the plain walk taking its walks
    /// (a test compares both).
    #[inline(always)]
    fn tail_walk_off(&self) -> bool {
        #[cfg(test)]
        return self.tail_off;
        #[cfg(not(test))]
        false
    }

    /// Whether the specialised miss routines are off (tests compare both).
    #[inline(always)]
    fn generic_walk_only(&self) -> bool {
        #[cfg(test)]
        return self.generic_only;
        #[cfg(not(test))]
        false
    }

    /// The paging format.
    #[must_use]
    pub fn format(&self) -> &Format {
        &self.fmt
    }

    /// The TLB hierarchy (and its walk caches).
    #[must_use]
    pub fn tlb(&self) -> &Tlb {
        &self.tlb
    }

    /// The TLB hierarchy, mutably (for explicit invalidations in tests and tools).
    pub fn tlb_mut(&mut self) -> &mut Tlb {
        &mut self.tlb
    }

    /// Chooses what a TLB miss walks: the radix tree at the context's root
    /// (the default), or the machine's inverted or hashed table
    /// ([`Kernel::table_base`](crate::kernel::Kernel::table_base)), like
    /// PowerPC's SDR1 register. A change flushes the TLB and walk caches.
    pub fn set_table_base(&mut self, base: TableBase) {
        if self.base != base {
            self.base = base;
            // Worked out again at the next walk: whether the tail's walk
            // serves the MMU depends on the table (`Tail::on`).
            self.set_plain_x86(PlainX86::Unknown);
            let _ = self.tlb.invalidate_all();
        }
    }

    /// What a TLB miss walks.
    #[must_use]
    pub fn table_base(&self) -> &TableBase {
        &self.base
    }

    /// The root table and ASID in use.
    #[must_use]
    pub fn context(&self) -> (PhysAddr, Asid) {
        (self.root, self.asid)
    }

    /// Loads the root register (CR3 / satp) for address space `asid`: a
    /// context switch. Without ASID tags this flushes every non-global entry.
    pub fn set_context(&mut self, root: PhysAddr, asid: Asid) {
        self.root = root;
        self.asid = asid;
        self.tlb.context_switch(asid);
    }

    /// Tells the TLB the address space in use (which it does not save),
    /// with no context switch: for a restored MMU, before it runs, so
    /// that [`Mmu::hit_recent`] finds its recent hits (until then it
    /// finds none, and every lookup takes the usual path).
    pub fn resume_context(&mut self) {
        self.tlb.resume_context(self.asid);
    }

    /// A snapshot of every counter.
    #[must_use]
    pub fn counters(&self) -> Counters {
        Counters {
            tlb: self.tlb.counters(),
            walk_cache: self.tlb.walk_cache().counters().clone(),
            walk: self.walk.clone(),
            faults: self.faults.clone(),
        }
    }

    /// The TLB-hit path of a user load or fetch whose physical address the
    /// caller does not need: true when [`Mmu::translate`] would take its
    /// TLB-hit path (a recent first-level hit holds `va`) and the entry
    /// grants the access; it is then done, and counted as `translate`
    /// counts it. False otherwise: nothing was counted or changed, and the
    /// caller translates (`access.kind()`, `Privilege::User`). See
    /// [`Tlb::hit_recent`].
    #[inline(always)]
    pub fn hit_recent(&mut self, va: VirtAddr, access: LoadOrFetch) -> bool {
        self.tlb.hit_recent(va, access)
    }

    /// The shift of the keys [`Mmu::hit_recent`] looks addresses up by
    /// on `access`'s side (see [`Tlb::recent_shift`]).
    #[inline(always)]
    #[must_use]
    pub fn recent_shift(&self, access: LoadOrFetch) -> u32 {
        self.tlb.recent_shift(access)
    }

    /// A [`Mmu::hit_recent`] of the key of the side's last hit it took,
    /// with nothing since but the other side's recent hits and stores: done
    /// and counted (see [`Tlb::hit_recent_again`]).
    #[inline(always)]
    pub fn hit_recent_again(&mut self, access: LoadOrFetch) {
        #[cfg(test)]
        {
            self.recent_again_taken += 1;
        }
        self.tlb.hit_recent_again(access);
    }

    /// [`Mmu::hit_recent`] for a TLB whose first level is shared by both
    /// sides (the span loop without recent hits): true when
    /// [`Mmu::translate`] would take its TLB-hit path and the entry grants
    /// the access; it is then done, and counted as `translate` counts it.
    /// False otherwise, with nothing counted or changed (always, with a
    /// split first level). See [`Tlb::hit_shared`].
    #[inline(always)]
    pub fn hit_shared(&mut self, va: VirtAddr, access: LoadOrFetch) -> bool {
        #[cfg(test)]
        {
            if self.shared_hits_off {
                return false;
            }
            let hit = self.tlb.hit_shared(va, access);
            self.shared_hits_taken += u64::from(hit);
            hit
        }
        #[cfg(not(test))]
        self.tlb.hit_shared(va, access)
    }

    /// `n` repeats of the last [`Mmu::hit_shared`] that hit, on its side
    /// (loads or fetches): each a `hit_shared` of that hit's key, with
    /// nothing done to the MMU since but these: done and counted (see
    /// [`Tlb::hit_shared_again`]).
    #[inline(always)]
    pub fn hit_shared_again(&mut self, access: LoadOrFetch, n: u64) {
        #[cfg(test)]
        {
            self.shared_again_taken += n;
        }
        self.tlb.hit_shared_again(access, n);
    }

    /// Whether the span loop may take repeats of a [`Mmu::hit_shared`] hit
    /// as [`Mmu::hit_shared_again`]: always, but for tests that turn it off
    /// to compare.
    #[inline(always)]
    #[must_use]
    pub fn shared_repeats_on(&self) -> bool {
        #[cfg(test)]
        {
            !self.shared_again_off
        }
        #[cfg(not(test))]
        true
    }

    /// [`Mmu::store_recent`] for a TLB whose first level is shared by both
    /// sides (the span loop without recent hits): the store's physical
    /// address when [`Mmu::translate`] would return it at once from its
    /// TLB-hit path (the entry grants the store and is already dirty); the
    /// lookup is then done and counted as `translate` counts it. `None`
    /// otherwise (always, with a split first level), with nothing counted
    /// or changed. See [`Tlb::store_shared`].
    #[inline(always)]
    pub fn store_shared(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        #[cfg(test)]
        {
            if self.shared_hits_off {
                return None;
            }
            let pa = self.tlb.store_shared(va);
            self.shared_hits_taken += u64::from(pa.is_some());
            pa
        }
        #[cfg(not(test))]
        self.tlb.store_shared(va)
    }

    /// The TLB-hit path of a user store inside one page: its physical
    /// address when [`Mmu::translate`] would take its TLB-hit path for it
    /// (a recent data-side hit holds `va`) and return that address at once
    /// (the entry grants the store and is already dirty, so nothing is
    /// walked or written in memory); the lookup is then done and counted as
    /// `translate` counts it. `None` otherwise: nothing was counted or
    /// changed, and the caller translates (`AccessKind::Write`,
    /// `Privilege::User`). See [`Tlb::store_recent`].
    #[inline(always)]
    pub fn store_recent(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        #[cfg(test)]
        if self.store_hits_off {
            return None;
        }
        self.tlb.store_recent(va)
    }

    /// [`Mmu::store_recent`]'s look, with nothing changed: the physical
    /// address and the recent way (see [`Tlb::store_recent_hit`]); the
    /// store is then taken by [`Mmu::take_store_at`], or as
    /// [`Mmu::store_needs_touch`] decides by [`Mmu::touch_store`] or
    /// [`Mmu::count_store`].
    #[inline(always)]
    pub fn store_recent_hit(&self, va: VirtAddr) -> Option<(PhysAddr, usize)> {
        #[cfg(test)]
        if self.store_hits_off {
            return None;
        }
        self.tlb.store_recent_hit(va)
    }

    /// Takes a store [`Mmu::store_recent_hit`] found in recent way `way`
    /// (see [`Tlb::take_store_at`]).
    #[inline(always)]
    pub fn take_store_at(&mut self, way: usize) {
        self.tlb.take_store_at(way);
    }

    /// Whether taking a store [`Mmu::store_recent_hit`] found in recent
    /// way `way` touches it (it is not the data side's last).
    #[inline(always)]
    #[must_use]
    pub fn store_needs_touch(&self, way: usize) -> bool {
        self.tlb.store_needs_touch(way)
    }

    /// Takes a store [`Mmu::store_recent_hit`] found that needs a touch
    /// (see [`Tlb::touch_store`]): the way touched, the store counted.
    #[inline(always)]
    pub fn touch_store(&mut self, way: usize) {
        self.tlb.touch_store(way);
    }

    /// Takes a store [`Mmu::store_recent_hit`] found that needs no touch
    /// (see [`Tlb::count_store`]).
    #[inline(always)]
    pub fn count_store(&mut self) {
        self.tlb.count_store();
    }

    /// Per side ([`LoadOrFetch::side`]), the lookups [`Mmu::hit_recent`]
    /// has answered so far, a running total (see [`Tlb::recent_hits`]).
    #[inline(always)]
    #[must_use]
    pub fn recent_hits(&self) -> [u64; 2] {
        self.tlb.recent_hits()
    }

    /// [`Mmu::translate`] of a load or fetch for which [`Mmu::hit_recent`]
    /// just returned false: the TLB-hit path is skipped (its test would
    /// fail again, or, for a recent hit without the rights, `lookup` finds
    /// the same entry, counts and touches it the same, and faults the same),
    /// and with a split first level so is the lookup's recent-hit test
    /// (see `Tlb::lookup_unremembered`). In line in each of its callers
    /// (the span loop's out-of-line load and fetch, one copy each).
    #[inline(always)]
    pub fn translate_unremembered<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        if !self.tlb.has_recent_hits() {
            // A shared first level (whose recent hits `hit_recent` never
            // takes): the ordinary lookup, which defers their touches.
            return self.lookup(mem, va, access, privilege);
        }
        // `Mmu::lookup` in line, with a split first level's TLB lookup in
        // line too (without the recent-hit test `hit_recent` just made):
        // the caller (the span loop's out-of-line reference) is out of line
        // itself, and a walk-heavy run comes here on most references.
        // `Mmu::lookup` is left as it was, for the other callers.
        // (The hit as its address and the entry's flags, in registers: see
        // `PaHit`.)
        let hit = self.probe_unremembered(va, access);
        self.after_probe(mem, va, access, privilege, hit)
    }

    /// Whether the TLB keeps recent hits (a split first level; see
    /// `Tlb::has_recent_hits`).
    #[inline(always)]
    pub(crate) fn has_recent_hits(&self) -> bool {
        self.tlb.has_recent_hits()
    }

    /// The TLB lookup of [`Mmu::translate_unremembered`] with recent hits
    /// (a split first level: only then), its answer as [`PaHit`]. With
    /// [`Mmu::grants`] and [`Mmu::after_probe`] the span loop's load splits
    /// the translation: the hit that grants the access is done at once in
    /// the caller, before it pays for what the rest needs (see
    /// `Simulation::span_load`).
    #[inline(always)]
    pub(crate) fn probe_unremembered(&mut self, va: VirtAddr, access: AccessKind) -> PaHit {
        debug_assert!(self.tlb.has_recent_hits());
        self.tlb.lookup_unremembered(self.asid, va, access)
    }

    /// Whether [`Mmu::after_probe`] of `hit` would return the hit's address
    /// at once, changing and counting nothing more: a hit whose rights
    /// grant the access (and, for a store, whose entry is dirty).
    #[inline(always)]
    pub(crate) fn grants(hit: PaHit, access: AccessKind, privilege: Privilege) -> bool {
        match hit.found() {
            Some((_, flags)) => {
                violation(flags.perms(), access, privilege).is_none()
                    && (access != AccessKind::Write || flags.is_dirty())
            }
            None => false,
        }
    }

    /// The rest of [`Mmu::translate_unremembered`] after
    /// [`Mmu::probe_unremembered`] answered `hit`: the hit's rights used,
    /// or the walk.
    #[inline(always)]
    pub(crate) fn after_probe<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        hit: PaHit,
    ) -> Result<PhysAddr, MmuFault> {
        if let Some((pa, flags)) = hit.found() {
            return self.use_rights(mem, va, access, privilege, flags, pa);
        }
        self.walk(mem, va, access, privilege, false)
    }

    /// [`Mmu::translate`] of a load or fetch for which [`Mmu::hit_shared`]
    /// just returned false: the TLB-hit path is skipped (its test would
    /// fail again, see [`Mmu::translate_unremembered`]), the lookup made
    /// (out of line). A function of its own, not `translate_unremembered`:
    /// a second caller there made it out of line in the split rows' span
    /// loop (+1.6% on the zipf-walks row).
    #[inline(always)]
    pub fn translate_unshared<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        self.lookup(mem, va, access, privilege)
    }

    /// Adds the hits [`Mmu::hit_recent`] counted to the counters they belong
    /// to, and replays the touches a shared first level's hits deferred:
    /// before the MMU is saved (they are kept apart, and not saved).
    pub fn settle_counts(&mut self) {
        self.tlb.settle_counts();
        self.tlb.settle_touches();
    }

    /// Translates `va` for an access of `kind` at `privilege` in the
    /// current context, walking and setting A/D bits as the hardware does.
    #[inline(always)]
    pub fn translate<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        self.translate_as::<false, M>(mem, va, access, privilege)
    }

    /// [`Mmu::translate`]; with `SHARED`, for a caller that knows the first
    /// level is shared by both sides, whose hit path then skips that test
    /// (see [`crate::mmu::Tlb::lookup_repeat_shared`]: the same result on
    /// any TLB).
    #[inline(always)]
    pub fn translate_as<const SHARED: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        let repeat = if SHARED {
            self.tlb.lookup_repeat_shared(va, access)
        } else {
            self.tlb.lookup_repeat(va, access)
        };
        if let Some(e) = repeat {
            // The lookup is counted: decide from this entry, never look up again.
            let (perms, dirty) = (e.perms(), e.is_dirty());
            if !perms.contains(required(access, privilege))
                && let Some(v) = violation(perms, access, privilege)
            {
                return Err(self.protection(va, access, privilege, v));
            }
            if access == AccessKind::Write && !dirty {
                return self.walk(mem, va, AccessKind::Write, privilege, true);
            }
            // Read from the entry only here, so a caller that ignores the
            // address (a load or a fetch) does not compute it.
            return Ok(self.tlb.last_hit(access).translate(va));
        }
        self.lookup(mem, va, access, privilege)
    }

    /// [`Mmu::translate`] of an access retried after the fault it raised
    /// was handled ([`crate::machine::resolve`]): the same result, counts
    /// and state. When the fault came from a walk after a lookup that missed
    /// every level, and nothing was cached in the TLB since (the OS's
    /// handler invalidates but does not fill), the lookup is counted as the
    /// miss it would be and the walk follows at once (see
    /// `Tlb::lookup_known_miss`): on a swap-heavy run, the probe of every
    /// TLB array skipped on each major fault.
    #[inline]
    pub fn translate_retry<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        #[cfg(test)]
        if self.known_misses_off {
            return self.translate(mem, va, access, privilege);
        }
        if self.tlb.lookup_known_miss(self.asid, va, access) {
            // The walk's lookup in the walk caches, too, repeats the
            // faulting walk's (`WalkCache::lookup_again`).
            return self.walk_as::<true, M>(mem, va, access, privilege, false);
        }
        self.translate(mem, va, access, privilege)
    }

    /// The TLB lookup proper, when the entry is not the one used last.
    #[inline(never)]
    fn lookup<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        if let Some(hit) = self.tlb.lookup(self.asid, va, access) {
            return self.use_hit(mem, va, access, privilege, hit);
        }
        self.walk(mem, va, access, privilege, false)
    }

    /// A TLB hit's outcome, shared by [`Mmu::lookup`] and
    /// [`Mmu::translate_unremembered`]: the access faults without the
    /// rights, a write to a clean entry walks to set D, else the hit's
    /// address. Always in line: both callers are hot, and each tests the
    /// lookup's answer itself (handing over the `Option` cost the hit-heavy
    /// rows an instruction per reference).
    #[inline(always)]
    fn use_hit<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        hit: TlbHit,
    ) -> Result<PhysAddr, MmuFault> {
        self.use_rights(mem, va, access, privilege, hit.entry.flags(), hit.pa)
    }

    /// [`Mmu::use_hit`] of a hit at `pa` of an entry of `flags`.
    #[inline(always)]
    fn use_rights<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        flags: EntryFlags,
        pa: PhysAddr,
    ) -> Result<PhysAddr, MmuFault> {
        if let Some(v) = violation(flags.perms(), access, privilege) {
            return Err(self.protection(va, access, privilege, v));
        }
        if access == AccessKind::Write && !flags.is_dirty() {
            return self.dirty_walk(mem, va, privilege);
        }
        Ok(pa)
    }

    #[cold]
    fn protection(
        &mut self,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        v: Violation,
    ) -> MmuFault {
        self.faults.protection += 1;
        MmuFault {
            kind: MmuFaultKind::Protection(v),
            va,
            access,
            privilege,
            level: None,
        }
    }

    /// A store hit a clean cached translation: walk again to set D in the
    /// entry (x86), or fault so the OS sets it (Svade).
    #[cold]
    fn dirty_walk<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        self.walk(mem, va, AccessKind::Write, privilege, true)
    }

    /// A walk (or search) that ended in `f`, counted. A walk made after
    /// the lookup missed every level (not `dirty_only`) cached nothing, so
    /// the TLB learns that the same lookup would miss again: the retry
    /// after the OS handled the fault ([`Mmu::translate_retry`]).
    fn walk_fault(
        &mut self,
        f: WalkFault,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> MmuFault {
        if !dirty_only {
            self.tlb.note_full_miss(self.asid, va, access);
        }
        match f.kind {
            FaultKind::NotPresent => self.faults.not_present += 1,
            FaultKind::NonCanonical => self.faults.non_canonical += 1,
            FaultKind::TooWide => self.faults.too_wide += 1,
            FaultKind::ReservedBits(_) => self.faults.reserved_bits += 1,
            FaultKind::MisalignedSuperpage => self.faults.misaligned_superpage += 1,
            FaultKind::TableOutsideMemory => self.faults.table_outside_memory += 1,
        }
        MmuFault {
            kind: MmuFaultKind::Walk(f.kind),
            va,
            access,
            privilege,
            level: f.level,
        }
    }

    /// The walk after a TLB miss (or, `dirty_only`, a store's hit on a
    /// clean entry): [`Mmu::walk_as`] with the walk caches looked up as
    /// usual.
    #[inline(always)]
    fn walk<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        self.walk_as::<false, M>(mem, va, access, privilege, dirty_only)
    }

    /// The walk; with `AGAIN`, the retry's after a fault
    /// ([`Mmu::translate_retry`]), whose walk-cache lookup first tries
    /// the slot the faulting walk's lookup hit
    /// ([`super::walk_cache::WalkCache::lookup_again`]: the same answer,
    /// counts and state as the lookup). Two copies of one body: the
    /// retry's costs the other walks nothing.
    ///
    /// The default machine's walk (a plain x86-64 format, a radix table,
    /// hardware A/D) is here whole when the walk caches hit one or two
    /// levels above the leaf ([`Mmu::walk_tail`]); everything else goes
    /// on in [`Mmu::walk_rest`] (after the walk-cache lookup) or
    /// [`Mmu::walk_start`] (before it), out of line. Why: with the general
    /// walk in the same function, every walk paid for its registers (a
    /// frame of 0x188 bytes, six saved registers and a dozen spills).
    ///
    /// The default machine's shape (`x86_4`: x86-64 with 4 levels and 52
    /// physical-address bits) takes its own copy, [`Mmu::walk_x86_4`];
    /// every other MMU [`Mmu::walk_general`].
    #[cold]
    #[inline(never)]
    fn walk_as<const AGAIN: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        if self.x86_4 && !self.x86_4_walk_off() {
            return self.walk_x86_4::<AGAIN, M>(mem, va, access, privilege, dirty_only);
        }
        self.walk_general::<AGAIN, M>(mem, va, access, privilege, dirty_only)
    }

    /// [`Mmu::walk_as`] of the default machine's shape (`x86_4`): its
    /// body ([`Mmu::walk_of`]) with the tail's fields and the reserved
    /// address bits as constants, [`X86_4_TAIL`] and [`X86_4_RESERVED`],
    /// which are then exactly what `plain_x86` holds.
    ///
    /// Why: the body is at the limit of the register file (all six saved
    /// registers, a 0x98-byte frame); with the last level's position, the
    /// reserved bits and the canonical test's shift read from `plain_x86`
    /// on every walk, they were kept on the stack and reloaded, and each
    /// count of a level (`refs_by_level[last]`) was worked out from the
    /// position. As constants, the reserved bits' tests (none are
    /// reserved) and the counts' addressing fold away, and the values
    /// left live fit better. The same answers, counts and state as the
    /// general copy (a property test, `x86_4_walk_equals_the_general_one`,
    /// compares the two). In line in `walk_as`, so that its test of
    /// `x86_4` is the one test of the shape a walk makes (as `plain_x86`'s
    /// was), and the general copy is a jump.
    #[inline(always)]
    fn walk_x86_4<const AGAIN: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        debug_assert_eq!(self.plain_x86, PlainX86::Yes(X86_4_RESERVED, X86_4_TAIL));
        #[cfg(test)]
        {
            self.x86_4_taken += 1;
        }
        self.walk_of::<AGAIN, true, M>(mem, va, access, privilege, dirty_only)
    }

    /// [`Mmu::walk_as`] of every MMU but the default machine's shape.
    #[cold]
    #[inline(never)]
    fn walk_general<const AGAIN: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        self.walk_of::<AGAIN, false, M>(mem, va, access, privilege, dirty_only)
    }

    /// The body of [`Mmu::walk_as`]'s copies; `X86_4` when `plain_x86` is
    /// known to be `Yes(X86_4_RESERVED, X86_4_TAIL)` (the caller tested
    /// `x86_4`), whose fields are then taken as constants.
    #[inline(always)]
    fn walk_of<const AGAIN: bool, const X86_4: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        if dirty_only {
            self.walk.dirty_walks += 1;
        } else {
            self.walk.walks += 1;
        }
        // (`on` in the pattern: the variant and the flag are one byte,
        // tested by one compare.)
        let plain = if X86_4 {
            PlainX86::Yes(X86_4_RESERVED, X86_4_TAIL)
        } else {
            self.plain_x86
        };
        if let PlainX86::Yes(reserved, tail @ Tail { on: true, .. }) = plain
            && !self.generic_walk_only()
            && !self.tail_walk_off()
            && tail.canonical(va)
        {
            debug_assert!(self.fmt.check_address(va).is_ok());
            debug_assert!(matches!(self.base, TableBase::Radix) && self.hardware_ad);
            let wc_tag = self.tlb.tag(self.asid);
            let wc = self.tlb.walk_cache_mut();
            // (The lookup's answer given to `walk_rest` anew at each call,
            // not kept: kept, it was written to the stack for the call on
            // every walk, the tail's too.)
            let (hit, done) = if AGAIN {
                let Some(hit) = wc.lookup_again(wc_tag, va) else {
                    return self.walk_rest(mem, va, access, privilege, dirty_only, wc_tag, None);
                };
                let done = self.walk_tail(
                    mem, va, access, privilege, dirty_only, wc_tag, hit, reserved, tail,
                );
                (hit, done)
            } else {
                // The deepest cache's hit or miss tested once, in the
                // search, and each outcome its own path (see
                // `WalkCache::lookup_split`).
                match wc.lookup_split(wc_tag, va) {
                    Looked::Deepest(hit) => {
                        let done = self.walk_tail_at_leaf_table(
                            mem, va, access, privilege, dirty_only, wc_tag, hit, reserved, tail,
                        );
                        (hit, done)
                    }
                    Looked::Shallower(hit) => {
                        let done = self.walk_tail_above(
                            mem, va, access, privilege, dirty_only, wc_tag, hit, reserved, tail,
                        );
                        (hit, done)
                    }
                    Looked::Missed => {
                        return self
                            .walk_rest(mem, va, access, privilege, dirty_only, wc_tag, None);
                    }
                }
            };
            // Each outcome returned on its own: the fault's result made
            // by its own call (see `Mmu::tail_not_present`).
            return match done {
                TailEnd::Done(pa) => Ok(pa),
                TailEnd::NotPresent { up } => {
                    self.tail_not_present(up, va, access, privilege, dirty_only, tail.last)
                }
                TailEnd::Declined => {
                    self.walk_rest(mem, va, access, privilege, dirty_only, wc_tag, Some(hit))
                }
            };
        }
        self.walk_start::<AGAIN, M>(mem, va, access, privilege, dirty_only)
    }

    /// [`Mmu::walk_as`] of a walk it does not take at all (another format
    /// or table structure, software A/D, a fault of the address itself,
    /// the first walk of an MMU), after the walk's count: the address's
    /// test, the search of a hashed or inverted table, or the walk-cache
    /// lookup and [`Mmu::walk_rest`].
    #[cold]
    #[inline(never)]
    fn walk_start<const AGAIN: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        if let Err(f) = self.fmt.check_address(va) {
            self.walk.faulted += 1;
            return Err(self.walk_fault(f.into(), va, access, privilege, dirty_only));
        }
        match self.base {
            TableBase::Radix => {}
            TableBase::Inverted(t) => {
                return self.search(t, mem, va, access, privilege, dirty_only);
            }
            TableBase::Hashed(t) => return self.search(t, mem, va, access, privilege, dirty_only),
        }
        // The walk caches are tagged like the TLB: by the ASID with tags
        // on, by 0 for every address space without (so that invalidations,
        // which use the same tag, reach them).
        let wc_tag = self.tlb.tag(self.asid);
        let wc = self.tlb.walk_cache_mut();
        let found = if AGAIN {
            wc.lookup_again(wc_tag, va)
        } else {
            wc.lookup(wc_tag, va)
        };
        self.walk_rest(mem, va, access, privilege, dirty_only, wc_tag, found)
    }

    /// The walk after the walk-cache lookup (which found `found`), from
    /// the table it gives or the root: the plain x86-64 walk, else
    /// [`walk_from`]; then the walk caches' fills, the rights, the A/D
    /// write-back (or Svade's fault) and the TLB's fill. One copy for both
    /// of [`Mmu::walk_as`]'s.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn walk_rest<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        wc_tag: Asid,
        found: Option<super::walk_cache::WalkCacheHit>,
    ) -> Result<PhysAddr, MmuFault> {
        let (start, table, limits) = match found {
            Some(hit) => (hit.depth, hit.table, flags_of(hit.perms)),
            None => (0, self.root, PteFlags::PERMS),
        };
        let generic_only = self.generic_walk_only();
        let plain_x86 = match self.plain_x86 {
            PlainX86::Unknown => {
                let radix_ad = matches!(self.base, TableBase::Radix) && self.hardware_ad;
                self.set_plain_x86(PlainX86::of(&self.fmt, radix_ad));
                self.plain_x86
            }
            known => known,
        };
        let path = &mut self.path;
        // Nothing read yet (a `Generic` answer takes back the counts of
        // the entries in `path`, and may come before any is read).
        path.len = 0;
        let plain = if let (false, PlainX86::Yes(reserved, _)) = (generic_only, plain_x86) {
            walk_x86_64_plain(
                &self.fmt,
                reserved,
                mem,
                start,
                table,
                limits,
                va,
                path,
                &mut self.walk.refs_by_level,
            )
        } else {
            PlainWalk::Generic
        };
        // Whether the A/D write-back below has nothing to write: only a
        // plain walk knows it without looking at every entry again.
        let mut nothing_to_mark = false;
        let t = match plain {
            PlainWalk::Done(t) => {
                nothing_to_mark = path.all_accessed
                    && (access != AccessKind::Write || t.leaf_raw & X86_DIRTY != 0);
                t
            }
            PlainWalk::NotPresent(f) => {
                self.walk.faulted += 1;
                return Err(self.walk_fault(f, va, access, privilege, dirty_only));
            }
            PlainWalk::Generic => {
                // The plain walk counted the entries it read; walk_from
                // reads and counts them again.
                for &idx in &path.idx[..path.len] {
                    self.walk.refs_by_level[idx.min(MAX_WALK_LEVELS - 1)] -= 1;
                }
                // (Every entry below `len` is written before it is read.)
                path.len = 0;
                let mut acc = limits;
                let refs = &mut self.walk.refs_by_level;
                let result = walk_from(&self.fmt, mem, start, table, limits, va, |s| {
                    refs[s.idx.min(MAX_WALK_LEVELS - 1)] += 1;
                    let i = path.len;
                    path.idx[i] = s.idx;
                    path.addr[i] = s.entry_addr;
                    path.raw[i] = s.raw;
                    if let Entry::Table { addr, limits: l } = s.entry {
                        acc &= l;
                        path.next[i] = addr;
                        path.limits[i] = acc;
                    }
                    path.len += 1;
                });
                match result {
                    Ok(t) => t,
                    Err(f) => {
                        self.walk.faulted += 1;
                        return Err(self.walk_fault(f, va, access, privilege, dirty_only));
                    }
                }
            }
        };
        // Remember the tables reached, for the next walk near here. Every
        // depth filled is deeper than the one the walk started from, so the
        // lookup above just missed it (the deepest hit is taken), and the
        // walk changed no cache since: the fill need not search again.
        // (None without walk caches, tested once: with the fill's body in
        // line, the compiler kept its test in the loop, on each of the
        // FA-64 row's 100K levels.)
        let wc = self.tlb.walk_cache_mut();
        if !wc.is_empty() {
            for i in 0..path.len.saturating_sub(1) {
                let perms = perms_of(path.limits[i]);
                wc.fill_missed(wc_tag, va, path.idx[i] + 1, path.next[i], perms);
            }
        }
        let perms = perms_of(t.flags);
        // The rights tested as one mask first, as the TLB-hit path tests
        // them (`required` is exactly what `violation` checks): the
        // access's tests one by one cost the walk about six instructions.
        if !perms.contains(required(access, privilege))
            && let Some(v) = violation(perms, access, privilege)
        {
            self.walk.faulted += 1;
            return Err(self.protection(va, access, privilege, v));
        }
        let write = access == AccessKind::Write;
        let mut dirty = t.flags.contains(PteFlags::DIRTY);
        let accessed = t.flags.contains(PteFlags::ACCESSED);
        if self.hardware_ad && nothing_to_mark {
            // A plain x86-64 walk whose entries all had A set, and the
            // leaf D on a store: the loop below would write nothing.
            dirty |= write;
        } else if self.hardware_ad {
            // Set A in every entry used (x86: every level; RISC-V Svadu: the
            // leaf), and D in the leaf on a store; each write is a memory reference.
            // The masks are the same at every level: worked out once.
            let width = self.fmt.entry_bytes();
            let (a_table, a_leaf) = self.fmt.accessed_masks();
            let d_leaf = if write { self.fmt.dirty_mask() } else { 0 };
            let last = path.len.saturating_sub(1);
            for i in 0..path.len {
                let set = if i == last { a_leaf | d_leaf } else { a_table };
                let raw = path.raw[i] | set;
                if raw != path.raw[i] {
                    // The entry was just read from memory, so it is in range.
                    let _ = mem.write_le(path.addr[i], width, raw);
                    self.walk.ad_writes_by_level[path.idx[i].min(MAX_WALK_LEVELS - 1)] += 1;
                }
            }
            dirty |= write && self.fmt.dirty_mask() != 0;
        } else if !accessed || (write && !dirty) {
            self.walk.faulted += 1;
            self.faults.accessed_dirty += 1;
            return Err(MmuFault {
                kind: MmuFaultKind::AccessedDirty,
                va,
                access,
                privilege,
                level: self.fmt.levels().get(t.leaf_idx).map(|l| l.number),
            });
        }
        // A format without a dirty bit never needs a dirty walk.
        let dirty = dirty || self.fmt.dirty_mask() == 0;
        Ok(self.fill(&t, perms, dirty, va, access, dirty_only))
    }

    /// The walk after a walk-cache hit at the last level's table or the
    /// one above it (the x86-64 preset's PDE and PDPTE caches: every walk
    /// of the zipf-walks row) on a plain x86-64 format with hardware A/D,
    /// in a straight line: the one or two entries read, tested (present,
    /// no reserved bit, a table pointer above, a 4 KiB leaf below, the
    /// rights as one mask), and only then counted, the PDE cache filled,
    /// A (and D) written back where clear, and the TLB filled. Everything
    /// else (an entry outside memory, a reserved or large-page entry, a
    /// protection fault, another depth) is [`TailEnd::Declined`], nothing
    /// changed: the caller's walk goes on from the same hit, reading the
    /// same entries; a not-present leaf, [`TailEnd::NotPresent`], is
    /// answered as the plain walk answers it ([`Mmu::tail_not_present`]).
    ///
    /// Why: the general walk keeps a path of entries, decodes each into an
    /// `Entry` and a `Translation`, loops over the path for the walk-cache
    /// fills and the A/D write-back, each through the format's runtime
    /// levels; for one or two entries that bookkeeping was most of the
    /// walk's ~430 instructions. The same state results (a property test,
    /// `tail_walk_equals_the_plain_walk`, compares the two).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn walk_tail<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        wc_tag: Asid,
        hit: super::walk_cache::WalkCacheHit,
        reserved: u64,
        tail: Tail,
    ) -> TailEnd {
        if hit.depth == tail.last {
            self.walk_tail_at_leaf_table(
                mem, va, access, privilege, dirty_only, wc_tag, hit, reserved, tail,
            )
        } else {
            self.walk_tail_above(
                mem, va, access, privilege, dirty_only, wc_tag, hit, reserved, tail,
            )
        }
    }

    /// [`Mmu::walk_tail`] of a hit at the last level's table ([`TailEnd::Declined`]
    /// for any other: the general walk takes it).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn walk_tail_at_leaf_table<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        wc_tag: Asid,
        hit: super::walk_cache::WalkCacheHit,
        reserved: u64,
        tail: Tail,
    ) -> TailEnd {
        // Every table a walk cache gives is a frame's, 4 KiB aligned (each
        // fill's is an entry's frame bits); one that is not (a forged
        // checkpoint's) takes the general walk, which reads the same
        // entries. Known aligned, the entries' reads below, whole entries
        // inside one table, skip the memory's test of a read across two of
        // its 4 KiB chunks (three instructions a read, one or two reads
        // on each of the zipf-walks row's walks).
        let hit_table = hit.table.as_u64();
        if hit.depth != tail.last || hit_table & (TAIL_TABLE_BYTES - 1) != 0 {
            return TailEnd::Declined;
        }
        let acc = flags_of(hit.perms).bits();
        self.walk_tail_leaf::<false, M>(
            mem, va, access, privilege, dirty_only, wc_tag, reserved, tail, hit_table, acc, None,
        )
    }

    /// [`Mmu::walk_tail`] of a hit one level above the last level's table:
    /// a present table pointer without reserved bits read there, or [`TailEnd::Declined`]
    /// (as for any other depth: the general walk takes it).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn walk_tail_above<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        wc_tag: Asid,
        hit: super::walk_cache::WalkCacheHit,
        reserved: u64,
        tail: Tail,
    ) -> TailEnd {
        use crate::paging::pte::{X86_64_FRAME, X86_PAGE_SIZE, x86_rights};
        // (The table known aligned, as in `walk_tail_at_leaf_table`.)
        let hit_table = hit.table.as_u64();
        if hit.depth + 1 != tail.last || hit_table & (TAIL_TABLE_BYTES - 1) != 0 {
            return TailEnd::Declined;
        }
        let v = va.as_u64();
        let addr =
            PhysAddr::new_unchecked(hit_table + ((v >> TAIL_UP_SHIFT) & TAIL_INDEX_MASK) * 8);
        let Ok(raw) = mem.read_le(addr, 8) else {
            return TailEnd::Declined;
        };
        if raw & (X86_PRESENT | X86_PAGE_SIZE) != X86_PRESENT || raw & reserved != 0 {
            return TailEnd::Declined;
        }
        let acc = flags_of(hit.perms).bits() & x86_rights(raw);
        self.walk_tail_leaf::<true, M>(
            mem,
            va,
            access,
            privilege,
            dirty_only,
            wc_tag,
            reserved,
            tail,
            raw & X86_64_FRAME,
            acc,
            Some((addr, raw)),
        )
    }

    /// The leaf's part of [`Mmu::walk_tail`], in `table` (the last level's
    /// table, 4 KiB aligned) with the rights `acc` of the levels above;
    /// `UP` when the level above was read here (`up`, its entry's address
    /// and value), so the PDE cache is filled and that entry's A bit set.
    /// `UP` a constant, so that the two paths test it no more (it is the
    /// deepest cache's hit or miss again: see `WalkCache::lookup_split`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn walk_tail_leaf<const UP: bool, M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        wc_tag: Asid,
        reserved: u64,
        tail: Tail,
        table: u64,
        acc: u16,
        up: Option<(PhysAddr, u64)>,
    ) -> TailEnd {
        use crate::paging::pte::{X86_64_FRAME, x86_leaf_status, x86_rights};
        debug_assert_eq!(UP, up.is_some());
        let v = va.as_u64();
        let last = tail.last;
        let leaf_addr =
            PhysAddr::new_unchecked(table + ((v >> TAIL_LEAF_SHIFT) & TAIL_INDEX_MASK) * 8);
        let Ok(raw) = mem.read_le(leaf_addr, 8) else {
            return TailEnd::Declined;
        };
        if raw & X86_PRESENT == 0 {
            return TailEnd::NotPresent { up: UP };
        }
        // (`last < MAX_WALK_LEVELS`: `PlainX86::of` tested the level count.)
        let refs = &mut self.walk.refs_by_level;
        if raw & reserved != 0 {
            return TailEnd::Declined;
        }
        let rights = x86_rights(raw) & acc;
        let perms = Perms::from_bits_truncate(rights as u8);
        if !perms.contains(required(access, privilege)) {
            return TailEnd::Declined;
        }
        let flags = PteFlags::from_bits_retain(rights | x86_leaf_status(raw));
        debug_assert_eq!(
            self.fmt.decode_x86_64_plain_reserved(last, raw, reserved),
            Some(Entry::Leaf {
                addr: PhysAddr::new_unchecked(raw & X86_64_FRAME),
                flags: PteFlags::from_bits_retain(x86_rights(raw) | x86_leaf_status(raw)),
            })
        );
        // Taken: from here on, what the walk below would do, in its order.
        #[cfg(test)]
        {
            self.tail_taken += 1;
        }
        let write = access == AccessKind::Write;
        if UP && let Some((addr, up_raw)) = up {
            refs[(last - 1) & (MAX_WALK_LEVELS - 1)] += 1;
            refs[last & (MAX_WALK_LEVELS - 1)] += 1;
            self.tlb.walk_cache_mut().fill_missed_deepest(
                wc_tag,
                va,
                last,
                PhysAddr::new_unchecked(table),
                perms_of(PteFlags::from_bits_retain(acc)),
            );
            if up_raw & X86_ACCESSED == 0 {
                let _ = mem.write_le(addr, 8, up_raw | X86_ACCESSED);
                self.walk.ad_writes_by_level[(last - 1) & (MAX_WALK_LEVELS - 1)] += 1;
            }
        } else {
            refs[last & (MAX_WALK_LEVELS - 1)] += 1;
        }
        let set = if write {
            X86_ACCESSED | X86_DIRTY
        } else {
            X86_ACCESSED
        };
        if raw & set != set {
            let _ = mem.write_le(leaf_addr, 8, raw | set);
            self.walk.ad_writes_by_level[last & (MAX_WALK_LEVELS - 1)] += 1;
        }
        let frame = PhysAddr::new_unchecked(raw & X86_64_FRAME);
        let size = crate::addr::PageSize::SIZE_4K;
        let t = Translation {
            pa: frame.add(va.page_offset(size)),
            page: va.align_down(size),
            frame,
            size,
            flags,
            leaf_idx: last,
            leaf_addr,
            leaf_raw: raw,
        };
        let dirty = write || raw & X86_DIRTY != 0;
        TailEnd::Done(self.fill_tagged(&t, perms, dirty, va, access, dirty_only, wc_tag))
    }

    /// [`Mmu::walk_tail_leaf`] of a leaf that is not present: the end of
    /// the walk, as in the plain walk (the entries read counted, the level
    /// above's too when `up`, no walk cache filled), and its fault.
    ///
    /// Out of line, answering the walk's whole result, which
    /// [`Mmu::walk_as`] returns as it is (see [`TailEnd`]). Given the last
    /// level's position alone (`Tail::last`): the level's number, which
    /// the fault names, is read here from the format (`Tail::leaf_number`,
    /// given, was copied to the stack on every walk for this call).
    #[cold]
    #[inline(never)]
    fn tail_not_present(
        &mut self,
        up: bool,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
        last: usize,
    ) -> Result<PhysAddr, MmuFault> {
        // (`last < MAX_WALK_LEVELS`: `PlainX86::of` tested the level count.)
        let refs = &mut self.walk.refs_by_level;
        if up {
            refs[(last - 1) & (MAX_WALK_LEVELS - 1)] += 1;
        }
        refs[last & (MAX_WALK_LEVELS - 1)] += 1;
        self.walk.faulted += 1;
        #[cfg(test)]
        {
            self.tail_taken += 1;
        }
        // (The tail's `leaf_number`: `Tail::of` took it from this level.)
        let level = self.fmt.levels().get(last).map(|l| l.number);
        debug_assert!(
            matches!(self.plain_x86, PlainX86::Yes(_, t) if Some(t.leaf_number) == level)
        );
        let f = WalkFault {
            kind: FaultKind::NotPresent,
            level,
            idx: Some(last),
        };
        Err(self.walk_fault(f, va, access, privilege, dirty_only))
    }

    /// Caches translation `t` (after a walk or search) and returns its address.
    #[inline(always)]
    fn fill(
        &mut self,
        t: &Translation,
        perms: Perms,
        dirty: bool,
        va: VirtAddr,
        access: AccessKind,
        dirty_only: bool,
    ) -> PhysAddr {
        let tag = self.tlb.tag(self.asid);
        self.fill_tagged(t, perms, dirty, va, access, dirty_only, tag)
    }

    /// [`Mmu::fill`] with the TLB's tag of the current address space,
    /// `self.tlb.tag(self.asid)`, already known (the tail's walk worked it
    /// out for the walk caches: the TLB's flag read and tested again cost
    /// the zipf-walks row's walks about six instructions each).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fill_tagged(
        &mut self,
        t: &Translation,
        perms: Perms,
        dirty: bool,
        va: VirtAddr,
        access: AccessKind,
        dirty_only: bool,
        tag: Asid,
    ) -> PhysAddr {
        debug_assert_eq!(tag, self.tlb.tag(self.asid));
        let entry = TlbEntry::new(tag, va, t.size, t.frame)
            .with_perms(perms)
            .with_global(t.flags.contains(PteFlags::GLOBAL))
            .with_dirty(dirty)
            .with_pte(t.leaf_addr);
        if dirty_only {
            self.tlb.update(entry, va, access);
        } else {
            self.walk.completed += 1;
            // Only a lookup that missed every level leads here.
            if self.generic_walk_only() {
                self.tlb.fill(entry, va, access);
            } else {
                self.tlb.fill_missed(entry, va, access);
            }
        }
        t.pa
    }

    /// A TLB miss under an inverted or hashed table: one search keyed by
    /// (ASID, VPN), its probes counted as walk references; then the
    /// accessed and dirty bits set in the entry found (one more reference,
    /// as an A/D write-back) or an Svade fault; then a TLB fill.
    fn search<T: TableSearch, M: PhysMemory + ?Sized>(
        &mut self,
        table: T,
        mem: &mut M,
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        dirty_only: bool,
    ) -> Result<PhysAddr, MmuFault> {
        let found = table.translate(mem, self.asid, va);
        self.walk.refs_by_level[0] += u64::from(found.probes);
        self.walk.probes.record(found.probes);
        let t = match found.result {
            Ok(t) => t,
            Err(f) => {
                self.walk.faulted += 1;
                return Err(self.walk_fault(f, va, access, privilege, dirty_only));
            }
        };
        let perms = perms_of(t.flags);
        if let Some(v) = violation(perms, access, privilege) {
            self.walk.faulted += 1;
            return Err(self.protection(va, access, privilege, v));
        }
        let write = access == AccessKind::Write;
        let accessed = t.flags.contains(PteFlags::ACCESSED);
        let dirty = t.flags.contains(PteFlags::DIRTY);
        if self.hardware_ad {
            let mut bits = PteFlags::ACCESSED;
            if write {
                bits |= PteFlags::DIRTY;
            }
            if !t.flags.contains(bits) {
                // The entry was just read, so it is in memory and still maps the page.
                let _ = table.mark(mem, self.asid, t.page.vpn(t.size), t.leaf_addr, bits);
                self.walk.ad_writes_by_level[0] += 1;
            }
        } else if !accessed || (write && !dirty) {
            self.walk.faulted += 1;
            self.faults.accessed_dirty += 1;
            return Err(MmuFault {
                kind: MmuFaultKind::AccessedDirty,
                va,
                access,
                privilege,
                level: None,
            });
        }
        let dirty = dirty || (self.hardware_ad && write);
        Ok(self.fill(&t, perms, dirty, va, access, dirty_only))
    }
}

/// The kernel invalidates through the MMU's TLB.
impl TlbControl for Mmu {
    fn invalidate_page(&mut self, asid: Asid, flush: Flush) {
        self.tlb.invalidate_page(asid, flush.page());
    }

    fn invalidate_unfilled_page(&mut self, asid: Asid, flush: Flush) {
        self.tlb.invalidate_unfilled_page(asid, flush.page());
    }

    fn invalidate_pages(&mut self, pages: &[(Asid, Flush, bool)]) {
        if !pages.is_empty() {
            self.tlb
                .invalidate_pages(pages.iter().map(|&(a, f, u)| (a, f.page(), u)));
        }
    }

    fn invalidate_asid(&mut self, asid: Asid) {
        self.tlb.invalidate_asid(asid);
    }
}

impl Mmu {
    /// Checks an MMU read back from a checkpoint against the one `fresh`
    /// the configuration builds: the same paging format and A/D mode, the
    /// table base the kernel uses, a root register at a page table (or
    /// unset) with an ASID in range, and the TLB hierarchy and walk caches
    /// (see [`Tlb::check_restored`]). `base` is the kernel's table base.
    /// `live`: a process is current. With none the root register is not
    /// read before the next context switch loads it, and it may name the
    /// freed table of a process that was killed: not checked then.
    pub(crate) fn check_restored(
        &self,
        fresh: &Self,
        base: &TableBase,
        limits: &super::RestoreLimits<'_>,
        live: bool,
    ) -> Result<(), String> {
        if self.fmt != fresh.fmt || self.hardware_ad != fresh.hardware_ad {
            return Err(
                "its paging format or accessed/dirty mode is not the configuration's".into(),
            );
        }
        if &self.base != base {
            return Err("its table base is not the kernel's page-table structure".into());
        }
        if live && self.root != PhysAddr::default() && !(limits.is_table)(self.root) {
            return Err(format!(
                "root register {:#x} is not at a page table",
                self.root.as_u64()
            ));
        }
        if u32::from(self.asid.as_u16()) >= limits.asids {
            return Err(format!(
                "ASID register {} is out of range (the kernel has {})",
                self.asid.as_u16(),
                limits.asids
            ));
        }
        self.tlb.check_restored(&fresh.tlb, limits)
    }
}

/// Raw access for tests that forge restored states.
#[cfg(test)]
impl Mmu {
    pub(crate) fn forge_context(&mut self) -> (&mut PhysAddr, &mut Asid) {
        (&mut self.root, &mut self.asid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{PageSize, Pfn};
    use crate::alloc::FirstFit;
    use crate::paging::RadixTable;
    use proptest::prelude::*;

    /// The A/D write-back of a walk, on the plain x86-64 walk and on the
    /// generic one: a load sets A at every level and leaves D clear; a
    /// store whose walk finds every A set (so the loop is skipped for a
    /// load) still sets D in the leaf; an upper entry whose A was cleared
    /// gets it again. Each write is counted at its level.
    #[test]
    fn walks_write_back_accessed_and_dirty_bits() {
        for generic in [false, true] {
            let fmt = Format::x86_64();
            let mut ram = vec![0u8; 64 * 4096];
            let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 62);
            let table = RadixTable::new(&fmt, &mut ram, &mut frames).expect("root");
            let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER;
            let page = VirtAddr::new(0x40_0000);
            let frame = PhysAddr::new(0x3f000).expect("pa");
            table
                .map(
                    &fmt,
                    &mut ram,
                    &mut frames,
                    page,
                    frame,
                    PageSize::SIZE_4K,
                    rw,
                )
                .expect("map")
                .ignore();
            let config = TlbConfig::preset("x86-64").expect("preset");
            let mut mmu = Mmu::new(fmt.clone(), &config, true).expect("mmu");
            mmu.generic_only = generic;
            mmu.set_context(table.root(), Asid::new(1));
            let leaf_flags = |ram: &Vec<u8>| table.translate(&fmt, ram, page).expect("leaf").flags;
            let root_entry =
                table.root().as_u64() as usize + fmt.levels()[0].index(page) as usize * 8;
            let root_raw = |ram: &Vec<u8>| {
                u64::from_le_bytes(ram[root_entry..root_entry + 8].try_into().expect("8 bytes"))
            };
            let (read, write) = (AccessKind::Read, AccessKind::Write);
            let user = Privilege::User;

            // A load: A everywhere (4 levels), D clear.
            mmu.translate(&mut ram, page, read, user).expect("load");
            let flags = leaf_flags(&ram);
            assert!(
                flags.contains(PteFlags::ACCESSED),
                "generic {generic}: A after a load"
            );
            assert!(
                !flags.contains(PteFlags::DIRTY),
                "generic {generic}: D after a load"
            );
            assert_eq!(root_raw(&ram) & X86_ACCESSED, X86_ACCESSED);
            assert_eq!(mmu.counters().walk.ad_writes_by_level[..4], [1, 1, 1, 1]);

            // A store after the TLB forgot the page: every A is set, D is
            // not: the walk writes D in the leaf alone.
            mmu.tlb_mut().invalidate_all();
            mmu.translate(&mut ram, page, write, user).expect("store");
            let flags = leaf_flags(&ram);
            assert!(
                flags.contains(PteFlags::DIRTY),
                "generic {generic}: D after a store"
            );
            assert_eq!(mmu.counters().walk.ad_writes_by_level[..4], [1, 1, 1, 2]);

            // The root entry's A cleared by the OS: the next walk sets it.
            let cleared = root_raw(&ram) & !X86_ACCESSED;
            ram[root_entry..root_entry + 8].copy_from_slice(&cleared.to_le_bytes());
            mmu.tlb_mut().invalidate_all();
            mmu.translate(&mut ram, page, read, user)
                .expect("load again");
            assert_eq!(
                root_raw(&ram) & X86_ACCESSED,
                X86_ACCESSED,
                "generic {generic}"
            );
            assert_eq!(mmu.counters().walk.ad_writes_by_level[..4], [2, 1, 1, 2]);
            // Every entry read is counted once: three walks of 4 levels.
            assert_eq!(mmu.counters().walk.refs_by_level[..4], [3, 3, 3, 3]);
        }
    }

    /// Two address spaces over `fmt` in a plain `Vec` of 256 frames: 4 KiB
    /// pages spread over several tables at every level (so walks start from
    /// every walk-cache depth), large pages where the format has them,
    /// read-only, supervisor and global pages. Unmapped addresses fault.
    fn two_spaces(fmt: &Format) -> (Vec<u8>, [RadixTable; 2]) {
        let mut ram = vec![0u8; 256 * 4096];
        let mut frames = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 200);
        let tables = [(); 2].map(|_| RadixTable::new(fmt, &mut ram, &mut frames).expect("root"));
        let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::EXEC;
        for (s, table) in tables.iter().enumerate() {
            for page in 0..48u64 {
                if (page + s as u64) % 7 == 3 {
                    continue; // left unmapped
                }
                let flags = match page % 11 {
                    4 => PteFlags::READ | PteFlags::USER,
                    5 => PteFlags::READ | PteFlags::WRITE,
                    6 if s == 0 => rw | PteFlags::GLOBAL,
                    _ => rw,
                };
                let frame = PhysAddr::new(0x10_0000 + ((page + 64 * s as u64) << 12)).expect("pa");
                table
                    .map(
                        fmt,
                        &mut ram,
                        &mut frames,
                        page_va(fmt, page),
                        frame,
                        PageSize::SIZE_4K,
                        flags,
                    )
                    .expect("map")
                    .ignore();
            }
            for (i, size) in fmt
                .page_sizes()
                .into_iter()
                .filter(|z| *z > PageSize::SIZE_4K)
                .enumerate()
            {
                let va = VirtAddr::new(
                    0x40_0000_0000 + (i as u64) * 0x8000_0000 + s as u64 * size.bytes(),
                );
                let frame = PhysAddr::new(size.bytes() * (4 + i as u64)).expect("pa");
                if fmt.check_address(va).is_ok() {
                    table
                        .map(fmt, &mut ram, &mut frames, va, frame, size, rw)
                        .expect("map large")
                        .ignore();
                }
            }
        }
        (ram, tables)
    }

    /// Page `page` of the pool: neighbours share a last-level table, groups
    /// of 8 share the next, and so on up, so the walk caches see hits at
    /// every depth and misses.
    fn page_va(fmt: &Format, page: u64) -> VirtAddr {
        let levels = fmt.levels();
        let mut va = 0u64;
        for (i, level) in levels.iter().rev().enumerate() {
            let digit = (page >> (2 * i)) & 3;
            va |= ((digit * 5 + i as u64) & ((1 << level.bits) - 1)) << level.shift;
        }
        // Keep the address inside the (positive half of the) format.
        let va = va & ((1u64 << (fmt.levels()[0].shift + fmt.levels()[0].bits - 1)) - 1);
        VirtAddr::new(va)
    }

    /// The (format, TLB preset) pairings the MMU property tests run over.
    fn pairing_under_test(pairing: usize) -> (Format, TlbConfig) {
        let (fmt, preset) = [
            (Format::x86_64(), "x86-64"),
            (Format::x86_64(), "core-i7"),
            (Format::x86_64_5level(), "x86-64"),
            (Format::x86_64(), "classroom"),
            (Format::sv39(), "riscv-sv39"),
        ][pairing]
            .clone();
        (fmt, TlbConfig::preset(preset).expect("preset"))
    }

    /// Two equal MMUs of `pairing` over two equal memories holding the two
    /// spaces, both started in the first: the setup of the property tests
    /// that run one path against another.
    fn twin_mmus(
        pairing: usize,
        hardware_ad: bool,
    ) -> (Format, [RadixTable; 2], [Mmu; 2], [Vec<u8>; 2]) {
        let (fmt, config) = pairing_under_test(pairing);
        let (ram, tables) = two_spaces(&fmt);
        let mmu = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
        let mut mmus = [mmu.clone(), mmu];
        in_first_space(&mut mmus, &tables);
        (fmt, tables, mmus, [ram.clone(), ram])
    }

    /// The end of a twin property test: the same memory (A/D bits), the
    /// same counters (pending hits added in) and, once settled, the same
    /// serialized MMU (replacement state included).
    fn twins_agree(mmus: &mut [Mmu; 2], rams: &[Vec<u8>; 2]) -> Result<(), TestCaseError> {
        proptest::prop_assert!(rams[0] == rams[1], "the memories (A/D bits) differ");
        proptest::prop_assert_eq!(mmus[0].counters(), mmus[1].counters());
        for mmu in mmus.iter_mut() {
            mmu.settle_counts();
        }
        let saved = mmus
            .each_ref()
            .map(|m| postcard::to_allocvec(m).expect("serialize"));
        proptest::prop_assert!(saved[0] == saved[1], "the MMU states differ");
        Ok(())
    }

    /// Starts every MMU of a property test in the first of the two spaces.
    fn in_first_space(mmus: &mut [Mmu], tables: &[RadixTable; 2]) {
        for mmu in mmus {
            mmu.set_context(tables[0].root(), Asid::new(1));
        }
    }

    /// One random operation of the MMU property tests, applied alike to
    /// every MMU: op 12 switches to one of the two spaces, op 13 drops the
    /// page from the TLBs (both give `None`); any other op is a lookup of
    /// `page` (48 and up: large pages or, where the format has none there,
    /// unmapped) at `offset`, returned for the caller to translate.
    fn step(
        fmt: &Format,
        tables: &[RadixTable; 2],
        mmus: &mut [Mmu; 2],
        page: u64,
        op: u8,
        offset: u16,
    ) -> Option<(VirtAddr, AccessKind, Privilege)> {
        let va = if page >= 48 {
            VirtAddr::new(0x40_0000_0000 + (page % 4) * 0x8000_0000 + u64::from(offset) * 4096)
        } else {
            VirtAddr::new(page_va(fmt, page).as_u64() + u64::from(offset))
        };
        for mmu in mmus.iter_mut() {
            match op {
                12 => {
                    let s = usize::from(offset % 2);
                    mmu.set_context(tables[s].root(), Asid::new(1 + s as u16));
                }
                13 => {
                    let asid = mmu.context().1;
                    mmu.tlb_mut().invalidate_page(asid, va);
                }
                _ => {}
            }
        }
        if op >= 12 {
            return None;
        }
        let access = AccessKind::ALL[usize::from(op % 3)];
        // Supervisor stores (op 10) put supervisor pages in the TLB, so a
        // user load then meets a recent hit without the rights.
        let privilege = if op >= 10 {
            Privilege::Supervisor
        } else {
            Privilege::User
        };
        Some((va, access, privilege))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The specialised miss routines (the plain x86-64 walk, fills that
        /// skip the search for a slot the lookup just missed) leave exactly
        /// the state of the generic ones: same results and faults, same
        /// memory (A/D bits), and the same serialized MMU (every TLB and
        /// walk-cache entry, replacement state and counter), over random
        /// addresses, access kinds, privilege, context switches and
        /// invalidations, for every preset and format pairing.
        #[test]
        fn specialised_miss_path_equals_the_generic_one(
            ops in proptest::collection::vec((0u64..60, 0u8..16, 0u16..4096), 1..300),
            pairing in 0usize..5,
            hardware_ad: bool,
        ) {
            let (fmt, config) = pairing_under_test(pairing);
            let (ram, tables) = two_spaces(&fmt);
            let fast = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
            let mut generic = fast.clone();
            generic.generic_only = true;
            let mut mmus = [fast, generic];
            let mut rams = [ram.clone(), ram];
            in_first_space(&mut mmus, &tables);
            for &(page, op, offset) in &ops {
                let Some((va, access, privilege)) = step(&fmt, &tables, &mut mmus, page, op, offset) else {
                    continue;
                };
                let [a, b] = &mut mmus;
                let [ra, rb] = &mut rams;
                let got = (a.translate(ra, va, access, privilege), b.translate(rb, va, access, privilege));
                prop_assert_eq!(got.0, got.1, "{} {:?}", va, access);
            }
            prop_assert!(rams[0] == rams[1], "the memories (A/D bits) differ");
            let saved = mmus.each_ref().map(|m| postcard::to_allocvec(m).expect("serialize"));
            prop_assert_eq!(mmus[0].counters(), mmus[1].counters());
            prop_assert!(saved[0] == saved[1], "the MMU states differ");
        }

        /// The span loop's hit paths (`hit_recent`, then, when it declines,
        /// `translate_unremembered` for a user load or fetch; `store_recent`,
        /// then `translate`, for a user store) against `translate` alone: same results and faults, same memory, the
        /// same counters at the end (its pending hits added in), and, once
        /// settled, the same serialized MMU, for every preset and format
        /// pairing (the shared first level of `classroom` takes the
        /// translate path throughout), over random addresses, kinds,
        /// privilege, context switches and invalidations.
        #[test]
        fn hit_path_equals_translate(
            ops in proptest::collection::vec((0u64..60, 0u8..16, 0u16..4096), 1..300),
            pairing in 0usize..5,
            hardware_ad: bool,
        ) {
            let (fmt, tables, mut mmus, mut rams) = twin_mmus(pairing, hardware_ad);
            for &(page, op, offset) in &ops {
                let Some((va, access, privilege)) = step(&fmt, &tables, &mut mmus, page, op, offset) else {
                    continue;
                };
                let [a, b] = &mut mmus;
                let [ra, rb] = &mut rams;
                let want = b.translate(rb, va, access, privilege);
                let load_or_fetch = LoadOrFetch::of(access);
                if let (Some(x), Privilege::User) = (load_or_fetch, privilege) {
                    if a.hit_recent(va, x) {
                        prop_assert!(want.is_ok(), "{} {:?}: hit, but {:?}", va, access, want);
                    } else {
                        let got = a.translate_unremembered(ra, va, access, privilege);
                        prop_assert_eq!(got, want, "{} {:?}", va, access);
                    }
                } else if (access, privilege) == (AccessKind::Write, Privilege::User) {
                    // The span loop's store: `store_recent`, else `translate`.
                    let got = match a.store_recent(va) {
                        Some(pa) => Ok(pa),
                        None => a.translate(ra, va, access, privilege),
                    };
                    prop_assert_eq!(got, want, "{} {:?}", va, access);
                } else {
                    prop_assert_eq!(a.translate(ra, va, access, privilege), want, "{} {:?}", va, access);
                }
            }
            twins_agree(&mut mmus, &rams)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The span loop's store path (`store_recent`; `translate` when it
        /// declines) against `translate`
        /// alone, on a few pages so that stores meet recent hits, clean
        /// and dirty, writable or not, other than the side's last or not:
        /// the same addresses and faults, the same memory (no D bit left
        /// unset), the same counters, and once settled the same serialized
        /// MMU (replacement state included).
        #[test]
        fn store_path_equals_translate(
            ops in proptest::collection::vec(
                (proptest::prop_oneof![6 => 0u64..7, 1 => 48u64..50], 0u8..16, 0u16..4096),
                1..300,
            ),
            pairing in 0usize..5,
            hardware_ad: bool,
        ) {
            let (fmt, tables, mut mmus, mut rams) = twin_mmus(pairing, hardware_ad);
            for &(page, op, offset) in &ops {
                // Mostly user stores and loads (`step` takes the kind
                // `AccessKind::ALL[op % 3]`, the privilege from `op >= 10`).
                let op = match op {
                    0..=5 => 1,
                    6..=9 => 0,
                    op => op,
                };
                let Some((va, access, privilege)) = step(&fmt, &tables, &mut mmus, page, op, offset) else {
                    continue;
                };
                let [a, b] = &mut mmus;
                let [ra, rb] = &mut rams;
                let want = b.translate(rb, va, access, privilege);
                let stored = if (access, privilege) == (AccessKind::Write, Privilege::User) {
                    a.store_recent(va)
                } else {
                    None
                };
                let got = match stored {
                    Some(pa) => Ok(pa),
                    None => a.translate(ra, va, access, privilege),
                };
                prop_assert_eq!(got, want, "{} {:?}", va, access);
            }
            twins_agree(&mut mmus, &rams)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// `translate_retry` (what the machine's fault path retries with)
        /// against `translate`: the same results and faults, memory,
        /// counters and, once settled, serialized MMU, when it follows a
        /// fault or not, with pages unmapped and mapped again between (an
        /// OS handling the fault: the leaf's present bit cleared or
        /// restored in both memories, the page invalidated or not), context
        /// switches, invalidations, and other lookups (of the same page
        /// too, which cache it) between a fault and its retry.
        #[test]
        fn retry_after_a_fault_equals_translate(
            ops in proptest::collection::vec(
                (proptest::prop_oneof![4 => 0u64..12, 1 => 0u64..60], 0u8..18, 0u16..4096, any::<bool>()),
                1..300,
            ),
            pairing in 0usize..5,
            hardware_ad: bool,
        ) {
            let (fmt, tables, mut mmus, mut rams) = twin_mmus(pairing, hardware_ad);
            // The leaves cleared: (space, page) -> (address, raw entry).
            let mut cleared = std::collections::BTreeMap::new();
            let mut faulted = None;
            let mut space = 0;
            for &(page, op, offset, retry) in &ops {
                if op >= 16 {
                    // The OS: page `page` of a space (mostly the page that
                    // faulted last, in the space in use) not present, or
                    // present again.
                    let (s, page) = match faulted {
                        Some((p, _, _)) if retry => (space, p % 48),
                        _ => (usize::from(offset % 2), page % 48),
                    };
                    let va = page_va(&fmt, page);
                    if let Some((addr, raw)) = cleared.remove(&(s, page)) {
                        for ram in &mut rams {
                            ram.write_le(addr, 8, raw).expect("leaf");
                        }
                    } else if let Ok(t) = tables[s].translate(&fmt, &rams[0], va) {
                        let raw = rams[0].read_le(t.leaf_addr, 8).expect("leaf");
                        cleared.insert((s, page), (t.leaf_addr, raw));
                        for ram in &mut rams {
                            ram.write_le(t.leaf_addr, 8, raw & !1).expect("leaf");
                        }
                    }
                    if op == 17 {
                        for mmu in &mut mmus {
                            mmu.tlb_mut().invalidate_page(Asid::new(1 + s as u16), va);
                        }
                    }
                    continue;
                }
                // Mostly the access that faulted last, again (retried, or
                // translated: the lookups between a fault and its retry).
                let (page, op, offset) = match faulted {
                    Some(last) if op < 8 => last,
                    _ => (page, op, offset),
                };
                if op == 12 {
                    space = usize::from(offset % 2);
                }
                let Some((va, access, privilege)) = step(&fmt, &tables, &mut mmus, page, op, offset) else {
                    continue;
                };
                let [a, b] = &mut mmus;
                let [ra, rb] = &mut rams;
                let want = b.translate(rb, va, access, privilege);
                let got = if retry {
                    a.translate_retry(ra, va, access, privilege)
                } else {
                    a.translate(ra, va, access, privilege)
                };
                prop_assert_eq!(got, want, "{} {:?}", va, access);
                if want.is_err() {
                    faulted = Some((page, op, offset));
                }
            }
            twins_agree(&mut mmus, &rams)?;
        }
    }

    /// An MMU of the x86-64 preset with hardware A/D bits, in address
    /// space 1 on `table`.
    fn x86_preset_mmu(fmt: &Format, table: &RadixTable) -> Mmu {
        let mut mmu = Mmu::new(
            fmt.clone(),
            &TlbConfig::preset("x86-64").expect("preset"),
            true,
        )
        .expect("mmu");
        mmu.set_context(table.root(), Asid::new(1));
        mmu
    }

    /// A retry after a not-present fault skips the TLB probe and counts the
    /// same miss; a lookup of the page in between (which caches it once
    /// present) makes the retry look up again, and hit.
    /// Tables of random raw entries in 24 frames, from `seeds` (64): four
    /// tables a level (level `l`'s in frames `1 + 4l` to `4 + 4l`), four
    /// entries used in each (a walk's indices are 0 to 3 at every level).
    /// Mostly a plain entry (a pointer to one of the next level's tables,
    /// a 4 KiB leaf in the last level, with random rights and A/D bits),
    /// else a large-page leaf (at a frame aligned to 2 MiB or not), a
    /// not-present entry, a pointer outside memory, a reserved encoding
    /// (x86 reserved address bit, RISC-V W without R) or random bits.
    fn random_tables(fmt: &Format, seeds: &[u64]) -> Vec<u8> {
        let mut ram = vec![0u8; 24 * 4096];
        let x86 = matches!(fmt.encoding(), crate::paging::Encoding::X86_64);
        let levels = fmt.levels().len();
        for (k, &seed) in seeds.iter().enumerate() {
            let (level, entry) = (k / 16, k % 4);
            if level >= levels {
                break;
            }
            let frame = 1 + k / 4;
            let last = level + 1 == levels;
            let bits = seed >> 16;
            // Mostly the rights a user access needs.
            let rights = if bits & 0xf000 == 0 { bits & 6 } else { 6 };
            let next = 1 + 4 * (level as u64 + 1) + (seed >> 8) % 4;
            let page = (seed >> 8) % 24 + if (bits >> 20) & 3 == 0 { 0 } else { 512 };
            let raw = match seed % 16 {
                0..=11 if last && x86 => {
                    page << 12 | 1 | rights | (bits & 0x160) | (bits & 1) << 63
                }
                0..=11 if last => page << 10 | 3 | (bits & 0xfc),
                0..=11 if x86 => next << 12 | 1 | rights | (bits & 0x20),
                0..=11 => next << 10 | 1,
                12 if x86 => page << 12 | 1 | 1 << 7 | rights | (bits & 0x160),
                12 => page << 10 | 3 | (bits & 0xfc),
                13 => bits & !1,
                14 => match (bits % 3, x86) {
                    (0, true) => 1 << 32 | 7,
                    (0, false) => 1 << 30 | 1,
                    (1, true) => next << 12 | 7 | 1 << 51,
                    (1, false) => next << 10 | 1 | 4,
                    (_, true) => next << 12 | 7 | 1 << 7,
                    (_, false) => next << 10 | 1 | (bits & 0xf0),
                },
                _ => bits,
            };
            let width = fmt.entry_bytes() as usize;
            let at = frame * 4096 + entry * width;
            ram[at..at + width].copy_from_slice(&raw.to_le_bytes()[..width]);
        }
        ram
    }

    /// `fmt` with another physical-address width (made through serde:
    /// the fields are the format module's).
    fn with_pa_bits(fmt: Format, bits: u32) -> Format {
        let mut v = serde_json::to_value(fmt).expect("to json");
        v["pa_bits"] = serde_json::Value::from(bits);
        serde_json::from_value(v).expect("from json")
    }

    /// One random operation of the random-table property tests, applied
    /// alike to every MMU. The address has the indices 0 to 3 at each
    /// level, from the root down, from `digits`' low byte; `digits >> 8`
    /// puts it in the upper half (1, sign-extended) or makes it not
    /// canonical (2: its top bit copied but one bit above it). Op 12
    /// switches to one of four roots (and address spaces), op 13 drops
    /// the page from the TLBs (both give `None`); any other op gives the
    /// address, for the caller to translate.
    fn random_table_step(
        fmt: &Format,
        mmus: &mut [Mmu],
        digits: u16,
        op: u8,
        offset: u16,
    ) -> Option<VirtAddr> {
        let mut va = u64::from(offset);
        for (i, level) in fmt.levels().iter().enumerate() {
            va |= u64::from(((digits & 0xff) >> (2 * i)) & 3) << level.shift;
        }
        match digits >> 8 {
            1 => va |= !((1u64 << (fmt.va_bits() - 1)) - 1),
            2 => va |= 1 << 62,
            _ => {}
        }
        let va = VirtAddr::new(va);
        match op {
            12 => {
                let root = PhysAddr::new(4096 * (1 + u64::from(offset % 4))).expect("pa");
                for mmu in mmus {
                    mmu.set_context(root, Asid::new(1 + offset % 4));
                }
                None
            }
            13 => {
                for mmu in mmus {
                    let asid = mmu.context().1;
                    mmu.tlb_mut().invalidate_page(asid, va);
                }
                None
            }
            _ => Some(va),
        }
    }

    /// A translation of the random-table property tests: ops 14 and up
    /// retry after a fault (`Mmu::translate_retry`), the others translate.
    fn translate_op(
        mmu: &mut Mmu,
        ram: &mut [u8],
        va: VirtAddr,
        op: u8,
        privilege: Privilege,
    ) -> Result<PhysAddr, MmuFault> {
        let access = AccessKind::ALL[usize::from(op % 3)];
        if op >= 14 {
            mmu.translate_retry(ram, va, access, privilege)
        } else {
            mmu.translate(ram, va, access, privilege)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The walk through the walk caches (and the plain x86-64 walk)
        /// against the plain walk, over random tables (present and absent
        /// entries, large pages aligned and not, reserved bits, pointers
        /// outside memory), x86-64 and RISC-V Sv39, hardware A/D or not:
        /// three MMUs alike but for the path (the specialised walk with walk
        /// caches, the generic walk with them, the generic walk without
        /// walk caches) give the same results and faults (kind and level);
        /// the first two leave the same memory (A/D bits), counters and
        /// serialized state too. (Not the third: it reads more entries, and
        /// sets A in upper entries a walk cache skips, which a walk that
        /// ended in a protection fault cached with A still clear.)
        /// x86-64 also with 40 physical-address bits (`narrow`), so that
        /// random entries set reserved address bits (bits 40 to 51),
        /// which the plain walk tests with the mask it keeps
        /// (`PlainX86`).
        #[test]
        fn walk_caches_and_plain_walk_agree_over_random_tables(
            seeds in proptest::collection::vec(proptest::num::u64::ANY, 64),
            ops in proptest::collection::vec((0u16..256, 0u8..15, 0u16..4096), 1..200),
            riscv: bool,
            hardware_ad: bool,
            narrow: bool,
        ) {
            let (fmt, config) = if riscv {
                (Format::sv39(), TlbConfig::preset("riscv-sv39").expect("preset"))
            } else if narrow {
                (with_pa_bits(Format::x86_64(), 40), TlbConfig::preset("x86-64").expect("preset"))
            } else {
                (Format::x86_64(), TlbConfig::preset("x86-64").expect("preset"))
            };
            let ram = random_tables(&fmt, &seeds);
            let fast = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
            let mut generic = fast.clone();
            generic.generic_only = true;
            let mut uncached_config = config.clone();
            uncached_config.walk_cache.clear();
            let mut uncached = Mmu::new(fmt.clone(), &uncached_config, hardware_ad).expect("mmu");
            uncached.generic_only = true;
            let mut mmus = [fast, generic, uncached];
            let root = PhysAddr::new(4096).expect("pa");
            for mmu in &mut mmus {
                mmu.set_context(root, Asid::new(1));
            }
            let mut rams = [ram.clone(), ram.clone(), ram];
            for &(digits, op, offset) in &ops {
                // (Ops 13 and 14 both drop the page; `digits` < 256: the
                // lower half.)
                let Some(va) = random_table_step(&fmt, &mut mmus, digits, op.min(13), offset) else {
                    continue;
                };
                let access = AccessKind::ALL[usize::from(op % 3)];
                let privilege = if op >= 10 { Privilege::Supervisor } else { Privilege::User };
                let got: Vec<_> = mmus
                    .iter_mut()
                    .zip(rams.iter_mut())
                    .map(|(m, r)| m.translate(r, va, access, privilege).map_err(|f| (f.kind, f.level)))
                    .collect();
                prop_assert_eq!(&got[0], &got[1], "{} {:?}", va, access);
                prop_assert_eq!(&got[0], &got[2], "{} {:?} (without walk caches)", va, access);
            }
            prop_assert!(rams[0] == rams[1], "the memories (A/D bits) differ");
            prop_assert_eq!(mmus[0].counters(), mmus[1].counters());
            prop_assert_eq!(mmus[0].counters().faults, mmus[2].counters().faults);
            let saved = [&mmus[0], &mmus[1]].map(|m| postcard::to_allocvec(m).expect("serialize"));
            prop_assert!(saved[0] == saved[1], "the MMU states differ");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// The straight-line walk after a walk-cache hit (`Mmu::walk_tail`)
        /// against the plain walk it stands in for (`tail_off`), over
        /// random tables (present and absent entries, large pages, reserved
        /// bits, pointers outside memory, random rights and A/D bits),
        /// x86-64 (4- or 5-level) with 52 or 40 physical-address bits,
        /// hardware A/D or not, addresses in the lower or upper half or not
        /// canonical (the tail's own test of the address): the same results
        /// and faults (kind and level), memory (A/D
        /// bits), counters and serialized state (walk caches, TLBs), through
        /// translations, retries after faults and stores to clean
        /// entries (the dirty walk), context switches and invalidations.
        #[test]
        fn tail_walk_equals_the_plain_walk(
            seeds in proptest::collection::vec(proptest::num::u64::ANY, 64),
            ops in proptest::collection::vec((0u16..1024, 0u8..16, 0u16..4096), 1..300),
            hardware_ad: bool,
            narrow: bool,
            five_level: bool,
        ) {
            let base = if five_level { Format::x86_64_5level() } else { Format::x86_64() };
            let fmt = if narrow { with_pa_bits(base, 40) } else { base };
            let config = TlbConfig::preset("x86-64").expect("preset");
            let ram = random_tables(&fmt, &seeds);
            let tail = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
            let mut plain = tail.clone();
            plain.tail_off = true;
            let mut mmus = [tail, plain];
            let root = PhysAddr::new(4096).expect("pa");
            for mmu in &mut mmus {
                mmu.set_context(root, Asid::new(1));
            }
            let mut rams = [ram.clone(), ram];
            for &(digits, op, offset) in &ops {
                let Some(va) = random_table_step(&fmt, &mut mmus, digits, op, offset) else {
                    continue;
                };
                let privilege = if (10..12).contains(&op) { Privilege::Supervisor } else { Privilege::User };
                let got: Vec<_> = mmus
                    .iter_mut()
                    .zip(rams.iter_mut())
                    .map(|(m, r)| translate_op(m, r, va, op, privilege))
                    .collect();
                prop_assert_eq!(&got[0], &got[1], "{} {:?}", va, op);
            }
            prop_assert_eq!(mmus[1].tail_taken, 0);
            twins_agree(&mut mmus, &rams)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// The default machine's copy of the walk (`Mmu::walk_x86_4`, with
        /// the tail's fields and the reserved bits as constants) against
        /// the general copy (`x86_4_off`), over random tables (present and
        /// absent entries, large pages, reserved bits, pointers outside
        /// memory, random rights and A/D bits), x86-64 4-level with 52
        /// physical-address bits (the copy's shape) or not (40 bits, 5
        /// levels: the copy is then never taken), hardware A/D or not,
        /// addresses in the lower or upper half or not canonical: the
        /// same results and faults (kind, level, address, access,
        /// privilege), memory (A/D bits), counters and serialized state
        /// (walk caches, TLBs), through translations, retries after
        /// faults, stores to clean entries (the dirty walk), context
        /// switches, invalidations and checkpoint round trips (a restored
        /// MMU works `x86_4` out again on its first walk).
        #[test]
        fn x86_4_walk_equals_the_general_one(
            seeds in proptest::collection::vec(proptest::num::u64::ANY, 64),
            ops in proptest::collection::vec((0u16..1024, 0u8..17, 0u16..4096), 1..300),
            hardware_ad in proptest::bool::weighted(0.8),
            shape in 0u8..6,
        ) {
            let (five_level, narrow) = (shape == 4, shape == 5);
            let base = if five_level { Format::x86_64_5level() } else { Format::x86_64() };
            let fmt = if narrow { with_pa_bits(base, 40) } else { base };
            let eligible = hardware_ad && !five_level && !narrow;
            let config = TlbConfig::preset("x86-64").expect("preset");
            let ram = random_tables(&fmt, &seeds);
            let special = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
            let mut general = special.clone();
            general.x86_4_off = true;
            let mut mmus = [special, general];
            let root = PhysAddr::new(4096).expect("pa");
            for mmu in &mut mmus {
                mmu.set_context(root, Asid::new(1));
            }
            let mut rams = [ram.clone(), ram];
            let mut taken = [0u64; 2];
            let mut tails = [0u64; 2];
            let mut walks = 0u64;
            for &(digits, op, offset) in &ops {
                if op == 16 {
                    // A checkpoint's round trip: the derived fields
                    // (`plain_x86`, `x86_4`) start again unknown.
                    for (i, mmu) in mmus.iter_mut().enumerate() {
                        taken[i] += mmu.x86_4_taken;
                        tails[i] += mmu.tail_taken;
                        let bytes = postcard::to_allocvec(&*mmu).expect("serialize");
                        *mmu = postcard::from_bytes(&bytes).expect("deserialize");
                        mmu.resume_context();
                        mmu.x86_4_off = i == 1;
                    }
                    continue;
                }
                let Some(va) = random_table_step(&fmt, &mut mmus, digits, op, offset) else {
                    continue;
                };
                let privilege = if (10..12).contains(&op) { Privilege::Supervisor } else { Privilege::User };
                let before = mmus[0].counters().walk.walks + mmus[0].counters().walk.dirty_walks;
                // (Set once a walk worked `plain_x86` out: the copy takes
                // every walk from then on.)
                let known = mmus[0].x86_4;
                let got: Vec<_> = mmus
                    .iter_mut()
                    .zip(rams.iter_mut())
                    .map(|(m, r)| translate_op(m, r, va, op, privilege))
                    .collect();
                prop_assert_eq!(&got[0], &got[1], "{} {:?}", va, op);
                let after = mmus[0].counters().walk.walks + mmus[0].counters().walk.dirty_walks;
                if known {
                    walks += after - before;
                }
                // (Any walk of a canonical address works it out.)
                let canonical = fmt.check_address(va).is_ok();
                prop_assert_eq!(
                    mmus[0].x86_4,
                    eligible && (known || (after > before && canonical))
                );
            }
            for (i, mmu) in mmus.iter().enumerate() {
                taken[i] += mmu.x86_4_taken;
                tails[i] += mmu.tail_taken;
            }
            // The copy declines no walk the general copy's tail takes (a
            // decline would give the same answer through the general
            // walk, so only this count shows it).
            prop_assert_eq!(tails[0], tails[1]);
            // The copy serves exactly the preset's shape, every walk once
            // `x86_4` is known, and never the general twin.
            prop_assert_eq!(taken[1], 0);
            prop_assert_eq!(taken[0], walks);
            twins_agree(&mut mmus, &rams)?;
        }
    }

    /// `x86_4` (the default machine's copy of the walk) is set for the
    /// x86-64 format with 52 physical-address bits on a radix table with
    /// hardware A/D alone: not for any other built-in format, nor for
    /// x86-64 with software A/D or another physical width, nor after a
    /// change to an inverted table; and only once the MMU's first walk
    /// worked `plain_x86` out.
    #[test]
    fn the_x86_4_walk_serves_the_preset_alone() {
        use crate::paging::inverted::{InvertedConfig, InvertedPageTable, InvertedSearch};
        let cfg = InvertedConfig {
            frames: 4,
            page_size: PageSize::SIZE_4K,
            search: InvertedSearch::Linear,
        };
        let len = cfg.bytes_needed().expect("size");
        let mut table_ram = vec![0u8; 4096 + len as usize];
        let inverted =
            InvertedPageTable::new(&mut table_ram, PhysAddr::new(4096).expect("pa"), len, cfg)
                .expect("table")
                .layout();
        let narrow = with_pa_bits(Format::x86_64(), 48);
        for (fmt, preset) in [
            (Format::x86_64(), "x86-64"),
            (Format::x86_64_5level(), "x86-64"),
            (narrow, "x86-64"),
            (Format::x86_32(), "x86-64"),
            (Format::sv32(), "riscv-sv39"),
            (Format::sv39(), "riscv-sv39"),
            (Format::sv48(), "riscv-sv39"),
            (Format::sv57(), "riscv-sv39"),
        ] {
            for hardware_ad in [true, false] {
                let mut config = TlbConfig::preset(preset).expect("preset");
                if fmt.levels().len() < 4 {
                    config.walk_cache.clear();
                }
                let mut mmu = Mmu::new(fmt.clone(), &config, hardware_ad).expect("mmu");
                mmu.set_context(PhysAddr::new(4096).expect("pa"), Asid::new(1));
                assert!(!mmu.x86_4);
                let mut ram = vec![0u8; 4 * 4096];
                let _ = mmu.translate(
                    &mut ram,
                    VirtAddr::new(0),
                    AccessKind::Read,
                    Privilege::User,
                );
                let want = hardware_ad && fmt == Format::x86_64();
                assert_eq!(mmu.x86_4, want, "{} {}", fmt.name(), hardware_ad);
                let _ = mmu.translate(
                    &mut ram,
                    VirtAddr::new(1 << 21),
                    AccessKind::Read,
                    Privilege::User,
                );
                assert_eq!(
                    mmu.x86_4_taken,
                    u64::from(want),
                    "{} {}",
                    fmt.name(),
                    hardware_ad
                );
                mmu.set_table_base(TableBase::Inverted(inverted));
                assert!(!mmu.x86_4);
            }
        }
    }

    /// The tail's test of the address is the format's (`check_address`)
    /// for every format whose tail is on (x86-64 4- and 5-level), over
    /// addresses around each boundary of the canonical halves; and the tail
    /// is off for every other built-in format and for an x86-64 shape whose
    /// last two levels' shifts are not the constants the tail walks with.
    #[test]
    fn the_tails_address_test_is_the_formats() {
        for fmt in [Format::x86_64(), Format::x86_64_5level()] {
            let PlainX86::Yes(_, tail) = PlainX86::of(&fmt, true) else {
                panic!("{} is not plain", fmt.name());
            };
            assert!(tail.on, "{}", fmt.name());
            // Not for an MMU without a radix table or hardware A/D.
            assert!(matches!(PlainX86::of(&fmt, false), PlainX86::Yes(_, t) if !t.on));
            assert_eq!(tail.last, fmt.levels().len() - 1);
            let top = fmt.va_bits() - 1;
            for base in [0u64, 1 << top, 1 << (top + 1), 1 << 62, 1 << 63, u64::MAX] {
                for delta in [0u64, 1, 2, 4095, 4096] {
                    for va in [base.wrapping_add(delta), base.wrapping_sub(delta)] {
                        let va = VirtAddr::new(va);
                        assert_eq!(
                            tail.canonical(va),
                            fmt.check_address(va).is_ok(),
                            "{} {va}",
                            fmt.name()
                        );
                    }
                }
            }
        }
        for fmt in [
            Format::x86_32(),
            Format::sv32(),
            Format::sv39(),
            Format::sv48(),
            Format::sv57(),
        ] {
            assert!(
                !matches!(PlainX86::of(&fmt, true), PlainX86::Yes(_, t) if t.on),
                "{}",
                fmt.name()
            );
        }
        for (level, field, value) in [
            (3, "shift", 13u32),
            (2, "shift", 22),
            (2, "bits", 8),
            (3, "bits", 10),
        ] {
            let mut v = serde_json::to_value(Format::x86_64()).expect("to json");
            v["levels"][level][field] = serde_json::Value::from(value);
            let fmt: Format = serde_json::from_value(v).expect("from json");
            assert!(
                !matches!(PlainX86::of(&fmt, true), PlainX86::Yes(_, t) if t.on),
                "level {level} {field} {value}"
            );
        }
    }

    /// An MMU whose table changes from the radix tree to an inverted table
    /// after it walked (and so worked out that the tail's walk serves it)
    /// searches the inverted table, as an MMU on that table from the start
    /// does: the change forgets the tail (`set_table_base`). The inverted
    /// table maps nothing, so a walk of the radix tree would give another
    /// answer.
    #[test]
    fn a_change_of_table_turns_the_tail_off() {
        use crate::paging::inverted::{InvertedConfig, InvertedPageTable, InvertedSearch};
        let fmt = Format::x86_64();
        let (mut ram, tables) = two_spaces(&fmt);
        let base = ram.len() as u64;
        ram.resize(ram.len() + 64 * 4096, 0);
        let cfg = InvertedConfig {
            frames: 64,
            page_size: PageSize::SIZE_4K,
            search: InvertedSearch::Linear,
        };
        let len = cfg.bytes_needed().expect("size");
        let ipt = InvertedPageTable::new(&mut ram, PhysAddr::new(base).expect("pa"), len, cfg)
            .expect("table");
        let mut walked = x86_preset_mmu(&fmt, &tables[0]);
        let mut fresh = x86_preset_mmu(&fmt, &tables[0]);
        fresh.set_table_base(TableBase::Inverted(ipt.layout()));
        // Two pages of one 2 MiB region: the second walk takes the tail.
        for page in [0, 1] {
            let got = walked.translate(
                &mut ram,
                page_va(&fmt, page),
                AccessKind::Read,
                Privilege::User,
            );
            assert!(got.is_ok(), "page {page}: {got:?}");
        }
        assert!(walked.tail_taken > 0);
        walked.set_table_base(TableBase::Inverted(ipt.layout()));
        for page in [1, 2] {
            let va = page_va(&fmt, page);
            let want = fresh.translate(&mut ram, va, AccessKind::Read, Privilege::User);
            let got = walked.translate(&mut ram, va, AccessKind::Read, Privilege::User);
            assert!(want.is_err(), "page {page}: {want:?}");
            assert_eq!(got, want, "page {page}");
        }
    }

    /// The preset's MMU takes the tail's walk after its walk caches hit
    /// (so that the property tests above exercise it): on the two spaces'
    /// tables, a walk of each page after the first of its 2 MiB region.
    #[test]
    fn the_preset_takes_the_tail_walk() {
        let fmt = Format::x86_64();
        let (mut ram, tables) = two_spaces(&fmt);
        let mut mmu = x86_preset_mmu(&fmt, &tables[0]);
        for page in 0..48 {
            let _ = mmu.translate(
                &mut ram,
                page_va(&fmt, page),
                AccessKind::Read,
                Privilege::User,
            );
        }
        assert!(mmu.tail_taken > 0, "no walk took the tail");
    }

    /// A walk-cache table that is not a frame's (not 4 KiB aligned: a
    /// forged checkpoint's, no walk fills one) is declined by the tail,
    /// whose reads count on the alignment, and walked from by the general
    /// walk: the same answers, memory, counters and state as an MMU
    /// without the tail.
    #[test]
    fn an_unaligned_cached_table_takes_the_general_walk() {
        let fmt = Format::x86_64();
        let (ram, tables) = two_spaces(&fmt);
        let tail = x86_preset_mmu(&fmt, &tables[0]);
        let mut plain = tail.clone();
        plain.tail_off = true;
        let mut mmus = [tail, plain];
        let mut rams = [ram.clone(), ram];
        let va = page_va(&fmt, 1);
        let leaf = tables[0]
            .translate(&fmt, &rams[0], va)
            .expect("mapped")
            .leaf_addr;
        // The PDE cache's table for `va`, 8 bytes on.
        let forged = PhysAddr::new((leaf.as_u64() & !0xfff) | 8).expect("pa");
        for (mmu, ram) in mmus.iter_mut().zip(rams.iter_mut()) {
            mmu.translate(ram, va, AccessKind::Read, Privilege::User)
                .expect("mapped");
            let tag = mmu.tlb.tag(mmu.asid);
            mmu.tlb_mut().walk_cache_mut().fill(
                tag,
                va,
                fmt.levels().len() - 1,
                forged,
                Perms::all(),
            );
        }
        let taken = mmus[0].tail_taken;
        // The other pages of `va`'s 2 MiB region (TLB misses, PDE hits).
        for k in 1..8u64 {
            let va = VirtAddr::new(va.as_u64() + 0x1000 * k);
            for access in AccessKind::ALL {
                let got: Vec<_> = mmus
                    .iter_mut()
                    .zip(rams.iter_mut())
                    .map(|(m, r)| m.translate(r, va, access, Privilege::User))
                    .collect();
                assert_eq!(got[0], got[1], "{va} {access:?}");
            }
        }
        assert_eq!(
            mmus[0].tail_taken, taken,
            "the tail took an unaligned table"
        );
        twins_agree(&mut mmus, &rams).expect("the twins agree");
    }

    #[test]
    fn a_retry_counts_its_known_miss_and_a_fill_between_forgets_it() {
        let fmt = Format::x86_64();
        let (mut ram, tables) = two_spaces(&fmt);
        let mut mmu = x86_preset_mmu(&fmt, &tables[0]);
        let va = page_va(&fmt, 1);
        let t = tables[0].translate(&fmt, &ram, va).expect("mapped");
        let raw = ram.read_le(t.leaf_addr, 8).expect("leaf");
        ram.write_le(t.leaf_addr, 8, raw & !1).expect("leaf");
        let user = Privilege::User;
        assert!(mmu.translate(&mut ram, va, AccessKind::Read, user).is_err());
        ram.write_le(t.leaf_addr, 8, raw).expect("leaf");
        let before = mmu.counters();
        let pa = mmu
            .translate_retry(&mut ram, va, AccessKind::Read, user)
            .expect("present");
        let after = mmu.counters();
        assert_eq!(after.tlb.full_misses, before.tlb.full_misses + 1);
        assert_eq!(after.walk.walks, before.walk.walks + 1);
        // Again: a fault, then a lookup that caches the page, then the retry.
        ram.write_le(t.leaf_addr, 8, raw & !1).expect("leaf");
        mmu.tlb_mut().invalidate_page(Asid::new(1), va);
        assert!(mmu.translate(&mut ram, va, AccessKind::Read, user).is_err());
        ram.write_le(t.leaf_addr, 8, raw).expect("leaf");
        assert_eq!(mmu.translate(&mut ram, va, AccessKind::Read, user), Ok(pa));
        let before = mmu.counters();
        assert_eq!(
            mmu.translate_retry(&mut ram, va, AccessKind::Read, user),
            Ok(pa)
        );
        let after = mmu.counters();
        assert_eq!(after.tlb.full_misses, before.tlb.full_misses, "a hit");
        assert_eq!(after.walk.walks, before.walk.walks);
    }

    /// The retry's walk-cache lookup (`WalkCache::lookup_again`, which
    /// first tries the slot the faulting walk's lookup hit) leaves what the
    /// lookup leaves: a twin MMU that retries through `translate` ends with
    /// the same answer, memory, counters and state. (The property test
    /// above runs it over random workloads; here the fast answer is known
    /// to be taken.)
    #[test]
    fn a_retrys_walk_cache_lookup_is_the_lookups() {
        let fmt = Format::x86_64();
        let (ram, tables) = two_spaces(&fmt);
        let mut mmus = [
            x86_preset_mmu(&fmt, &tables[0]),
            x86_preset_mmu(&fmt, &tables[0]),
        ];
        let mut rams = [ram.clone(), ram];
        let user = Privilege::User;
        let mapped = page_va(&fmt, 1);
        // An empty entry of the same leaf table.
        let va = VirtAddr::new(mapped.as_u64() + 10 * 4096);
        let t = tables[0].translate(&fmt, &rams[0], mapped).expect("mapped");
        let raw = rams[0].read_le(t.leaf_addr, 8).expect("leaf");
        let entry = PhysAddr::new(t.leaf_addr.as_u64() + 10 * 8).expect("in memory");
        for (mmu, ram) in mmus.iter_mut().zip(rams.iter_mut()) {
            // The walk fills the PDE cache; the next one hits it, and faults.
            mmu.translate(ram, mapped, AccessKind::Read, user)
                .expect("mapped");
            let fault = mmu.translate(ram, va, AccessKind::Write, user);
            assert!(fault.is_err(), "not present");
            // The OS maps the page (A and D clear).
            ram.write_le(entry, 8, raw & !(X86_ACCESSED | X86_DIRTY))
                .expect("leaf");
        }
        let [a, b] = &mut mmus;
        let [ra, rb] = &mut rams;
        let taken = a.tlb().walk_cache().again_taken;
        let got = a.translate_retry(ra, va, AccessKind::Write, user);
        assert_eq!(
            a.tlb().walk_cache().again_taken,
            taken + 1,
            "the retry's lookup took the kept slot"
        );
        assert_eq!(got, b.translate(rb, va, AccessKind::Write, user));
        assert!(got.is_ok());
        twins_agree(&mut mmus, &rams).expect("the twins agree");
    }

    /// `store_recent` declines every store but a user one inside a page
    /// whose recent data-side hit is writable and dirty, and takes those.
    #[test]
    fn store_recent_takes_only_writable_dirty_recent_hits() {
        let fmt = Format::x86_64();
        let (mut ram, tables) = two_spaces(&fmt);
        let mut mmu = x86_preset_mmu(&fmt, &tables[0]);
        let va = page_va(&fmt, 1);
        assert!(mmu.store_recent(va).is_none(), "nothing cached");
        // A load caches the page clean; a second one makes it a recent hit.
        for _ in 0..2 {
            mmu.translate(&mut ram, va, AccessKind::Read, Privilege::User)
                .expect("load");
        }
        assert!(
            mmu.store_recent(va).is_none(),
            "clean: a store walks to set D"
        );
        mmu.translate(&mut ram, va, AccessKind::Write, Privilege::User)
            .expect("store");
        mmu.translate(&mut ram, va, AccessKind::Write, Privilege::User)
            .expect("store");
        let before = mmu.counters();
        let pa = mmu.store_recent(va).expect("writable, dirty, recent");
        let after = mmu.counters();
        assert_eq!(
            after.tlb.lookups_by_kind[AccessKind::Write.index()],
            before.tlb.lookups_by_kind[AccessKind::Write.index()] + 1
        );
        assert_eq!(
            Ok(pa),
            mmu.translate(&mut ram, va, AccessKind::Write, Privilege::User)
        );
    }

    #[test]
    fn required_rights_are_exactly_what_violation_checks() {
        for bits in 0..16u8 {
            let perms = [Perms::READ, Perms::WRITE, Perms::EXECUTE, Perms::USER]
                .into_iter()
                .enumerate()
                .filter(|&(i, _)| bits & (1 << i) != 0)
                .fold(Perms::empty(), |acc, (_, p)| acc | p);
            for access in AccessKind::ALL {
                for privilege in [Privilege::User, Privilege::Supervisor] {
                    assert_eq!(
                        perms.contains(required(access, privilege)),
                        violation(perms, access, privilege).is_none(),
                        "{perms:?} {access:?} {privilege:?}"
                    );
                }
            }
        }
    }
}
