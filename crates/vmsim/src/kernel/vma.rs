//! Virtual memory areas: the ranges of an address space a process may use,
//! with their permissions and what backs them.

use serde::{Deserialize, Serialize};

use crate::addr::VirtAddr;
use crate::paging::PteFlags;

use super::shm::ShmId;

/// What a VMA is, which decides how its faults are served and how fork treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmaKind {
    /// The program break region, grown and shrunk by brk/sbrk.
    Heap,
    /// The stack: grows down on a fault just below it, down to the stack
    /// limit and never within the guard gap above the VMA below.
    Stack,
    /// Private anonymous memory: demand-zero, copy-on-write across fork.
    AnonPrivate,
    /// Shared anonymous memory (mmap MAP_SHARED or a shared-memory segment):
    /// pages belong to a shared object; fork shares them, never copies.
    AnonShared,
}

impl VmaKind {
    /// Whether pages of this area are private to the address space (copy-on-write).
    #[must_use]
    pub fn is_private(self) -> bool {
        !matches!(self, Self::AnonShared)
    }
}

/// Permissions of a VMA, as `PROT_READ | PROT_WRITE | PROT_EXEC` would give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prot {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

impl Prot {
    /// Read and write.
    pub const RW: Self = Self {
        read: true,
        write: true,
        exec: false,
    };
    /// Read, write and execute.
    pub const RWX: Self = Self {
        read: true,
        write: true,
        exec: true,
    };
    /// Read only.
    pub const R: Self = Self {
        read: true,
        write: false,
        exec: false,
    };
    /// No access (a guard region).
    pub const NONE: Self = Self {
        read: false,
        write: false,
        exec: false,
    };

    /// Parses `rwx`-style letters (`rw`, `r-x`, `---`, `rwx`), as a
    /// scenario's `prot` is read.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        text.parse::<vmsim_trace::scenario::MmapProt>()
            .ok()
            .map(Self::from)
    }

    /// The page-table flags a user page with these permissions gets.
    #[must_use]
    pub fn pte_flags(self) -> PteFlags {
        let mut f = PteFlags::USER;
        if self.read {
            f |= PteFlags::READ;
        }
        if self.write {
            f |= PteFlags::WRITE;
        }
        if self.exec {
            f |= PteFlags::EXEC;
        }
        f
    }
}

/// A virtual memory area `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vma {
    /// First address (page aligned).
    pub start: VirtAddr,
    /// One past the last address (page aligned).
    pub end: VirtAddr,
    /// Permissions.
    pub prot: Prot,
    /// What the area is.
    pub kind: VmaKind,
    /// Pages are pinned in memory (mlock): populated at once, never evicted.
    pub locked: bool,
    /// For shared areas: the shared object and the page index in it of `start`.
    pub shm: Option<(ShmId, u64)>,
}

impl Vma {
    /// Whether `va` lies inside.
    #[inline]
    #[must_use]
    pub fn contains(&self, va: VirtAddr) -> bool {
        self.start <= va && va < self.end
    }

    /// Size in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end.as_u64() - self.start.as_u64()
    }

    /// Whether the area is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The part of this area inside `[start, end)`, with the shared-object
    /// offset adjusted, if any.
    #[must_use]
    pub fn clip(&self, start: VirtAddr, end: VirtAddr, page: u64) -> Option<Self> {
        let s = self.start.max(start);
        let e = self.end.min(end);
        (s < e).then(|| Self {
            start: s,
            end: e,
            shm: self
                .shm
                .map(|(id, off)| (id, off + (s.as_u64() - self.start.as_u64()) / page)),
            ..*self
        })
    }
}

/// A scenario's mmap permissions, checked when the scenario was read.
impl From<vmsim_trace::scenario::MmapProt> for Prot {
    fn from(p: vmsim_trace::scenario::MmapProt) -> Self {
        Self {
            read: p.read,
            write: p.write,
            exec: p.exec,
        }
    }
}
