//! The page-table walker: reads entries from physical memory the way the
//! hardware does, level by level, and ends in a translation or a fault.
//!
//! The walker only reads. Setting accessed/dirty bits, checking the access
//! against permissions and caching the result belong to the MMU; building
//! and changing tables belongs to [`super::radix`].

use serde::Serialize;
use thiserror::Error;

use crate::addr::{PageSize, PhysAddr, VirtAddr};
use crate::memory::PhysMemory;

use super::format::{AddressFault, Format};
use super::pte::{Entry, PteFlags};

/// One entry read by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkStep {
    /// The level's number as the architecture manual numbers it.
    pub level: u32,
    /// Position of the level in the format, root = 0.
    pub idx: usize,
    /// Physical address of the table read.
    pub table: PhysAddr,
    /// Index into that table.
    pub index: u64,
    /// Physical address of the entry.
    pub entry_addr: PhysAddr,
    /// The entry's raw bits.
    pub raw: u64,
    /// What the hardware makes of them.
    pub entry: Entry,
}

/// A successful walk: where the address goes and with what rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the byte asked for.
    pub pa: PhysAddr,
    /// Base of the virtual page.
    pub page: VirtAddr,
    /// Base of the physical frame (superpage frames included).
    pub frame: PhysAddr,
    /// Size of the page the leaf maps.
    pub size: PageSize,
    /// Effective permissions (the leaf's, limited by every level above) and
    /// the leaf's status bits (accessed, dirty, global).
    pub flags: PteFlags,
    /// Position of the leaf's level, root = 0.
    pub leaf_idx: usize,
    /// Physical address of the leaf entry (where A and D get set).
    pub leaf_addr: PhysAddr,
    /// The leaf entry's raw bits as read.
    pub leaf_raw: u64,
}

/// Why a walk stopped without a translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The address has non-canonical upper bits.
    #[error("non-canonical address")]
    NonCanonical,
    /// The address has bits set above the format's width.
    #[error("address wider than the format")]
    TooWide,
    /// An entry's present/valid bit is clear.
    #[error("not present")]
    NotPresent,
    /// An entry has reserved bits set or a reserved encoding.
    #[error("reserved bits: {0}")]
    ReservedBits(&'static str),
    /// A superpage leaf whose frame is not aligned to the superpage size.
    #[error("misaligned superpage")]
    MisalignedSuperpage,
    /// An entry points to a table outside physical memory.
    #[error("table outside physical memory")]
    TableOutsideMemory,
}

impl FaultKind {
    /// A short stable name for reports and JSON (`not_present`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::NonCanonical => "non_canonical",
            Self::TooWide => "too_wide",
            Self::NotPresent => "not_present",
            Self::ReservedBits(_) => "reserved_bits",
            Self::MisalignedSuperpage => "misaligned_superpage",
            Self::TableOutsideMemory => "table_outside_memory",
        }
    }
}

/// A walk's fault: what went wrong and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{kind}{}", .level.map(|l| format!(" at level {l}")).unwrap_or_default())]
pub struct WalkFault {
    /// What went wrong.
    pub kind: FaultKind,
    /// The manual's number of the level whose entry stopped the walk
    /// (`None` for address-format faults, found before any read).
    pub level: Option<u32>,
    /// Position of that level, root = 0.
    pub idx: Option<usize>,
}

impl From<AddressFault> for WalkFault {
    fn from(f: AddressFault) -> Self {
        let kind = match f {
            AddressFault::NonCanonical => FaultKind::NonCanonical,
            AddressFault::TooWide => FaultKind::TooWide,
        };
        Self {
            kind,
            level: None,
            idx: None,
        }
    }
}

/// Walks from the root table at `root`. `observe` sees every entry read, in
/// order; it is a generic closure, so a walk allocates nothing.
#[inline]
pub fn walk<M: PhysMemory + ?Sized>(
    fmt: &Format,
    mem: &M,
    root: PhysAddr,
    va: VirtAddr,
    observe: impl FnMut(&WalkStep),
) -> Result<Translation, WalkFault> {
    fmt.check_address(va)?;
    walk_from(fmt, mem, 0, root, PteFlags::PERMS, va, observe)
}

/// Walks starting at level `start` (root = 0) in the table at `table`, with
/// `limits` already imposed by the levels above: how a walk resumes after a
/// page-walk-cache hit. The address must already have passed
/// [`Format::check_address`].
pub fn walk_from<M: PhysMemory + ?Sized>(
    fmt: &Format,
    mem: &M,
    start: usize,
    table: PhysAddr,
    mut limits: PteFlags,
    va: VirtAddr,
    mut observe: impl FnMut(&WalkStep),
) -> Result<Translation, WalkFault> {
    let levels = fmt.levels();
    let width = fmt.entry_bytes();
    let mut table = table;
    for (idx, level) in levels.iter().enumerate().skip(start) {
        let fault = |kind| WalkFault {
            kind,
            level: Some(level.number),
            idx: Some(idx),
        };
        let index = level.index(va);
        let entry_addr = PhysAddr::new_unchecked(table.as_u64() + index * u64::from(width));
        let raw = mem
            .read_le(entry_addr, width)
            .map_err(|_| fault(FaultKind::TableOutsideMemory))?;
        let entry = fmt.decode(idx, raw);
        observe(&WalkStep {
            level: level.number,
            idx,
            table,
            index,
            entry_addr,
            raw,
            entry,
        });
        match entry {
            Entry::Invalid => return Err(fault(FaultKind::NotPresent)),
            Entry::Reserved(why) => return Err(fault(FaultKind::ReservedBits(why))),
            Entry::Table { addr, limits: l } => {
                limits &= l;
                table = addr;
            }
            Entry::Leaf { addr, flags } => {
                let Some(size) = level.leaf else {
                    return Err(fault(FaultKind::ReservedBits(
                        "a leaf at a level that cannot map a page",
                    )));
                };
                if !addr.is_aligned(size) {
                    return Err(fault(FaultKind::MisalignedSuperpage));
                }
                let offset = va.page_offset(size);
                let perms = (flags & PteFlags::PERMS) & limits;
                return Ok(Translation {
                    pa: addr.add(offset),
                    page: va.align_down(size),
                    frame: addr,
                    size,
                    flags: perms | (flags - PteFlags::PERMS),
                    leaf_idx: idx,
                    leaf_addr: entry_addr,
                    leaf_raw: raw,
                });
            }
        }
    }
    unreachable!("the last level of every format decodes to a leaf, invalid or reserved entry")
}

/// A recorded walk, for explanations: every step and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedWalk {
    /// Entries read, root first.
    pub steps: Vec<WalkStep>,
    /// The translation or the fault.
    pub result: Result<Translation, WalkFault>,
}

/// Walks and records every step (allocates; not for the hot path).
pub fn record_walk<M: PhysMemory + ?Sized>(
    fmt: &Format,
    mem: &M,
    root: PhysAddr,
    va: VirtAddr,
) -> RecordedWalk {
    let mut steps = Vec::with_capacity(fmt.levels().len());
    let result = walk(fmt, mem, root, va, |s| steps.push(*s));
    RecordedWalk { steps, result }
}
