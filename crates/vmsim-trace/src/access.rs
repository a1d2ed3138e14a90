//! One memory reference: the unit every trace source produces and the engine consumes.
//!
//! Owns [`Access`] and [`AccessKind`] only; how a reference is read from a file or
//! generated lives in the reader and generator modules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a memory reference does.
///
/// `Modify` is valgrind lackey's `M`: one instruction loads and then stores the
/// same bytes (`add %eax,(%rbx)`). It is one access that both reads and writes,
/// so it dirties the page; it is not two accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum AccessKind {
    /// An instruction fetch (lackey `I`).
    Instr = 0,
    /// A data load (lackey `L`).
    Load = 1,
    /// A data store (lackey `S`).
    Store = 2,
    /// A load then a store of the same bytes by one instruction (lackey `M`).
    Modify = 3,
}

impl AccessKind {
    /// All kinds in their numeric order (the order used by `.vmt` and by statistics).
    pub const ALL: [Self; 4] = [Self::Instr, Self::Load, Self::Store, Self::Modify];

    /// The 2-bit code used by `.vmt` (0 = I, 1 = L, 2 = S, 3 = M).
    #[inline]
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The kind for a 2-bit `.vmt` code; only the low two bits are looked at.
    #[inline]
    #[must_use]
    pub const fn from_code(code: u8) -> Self {
        match code & 3 {
            0 => Self::Instr,
            1 => Self::Load,
            2 => Self::Store,
            _ => Self::Modify,
        }
    }

    /// True when the access writes memory (`Store` or `Modify`): it dirties the page.
    #[inline]
    #[must_use]
    pub const fn writes(self) -> bool {
        matches!(self, Self::Store | Self::Modify)
    }

    /// True when the access reads memory (`Instr`, `Load` or `Modify`).
    #[inline]
    #[must_use]
    pub const fn reads(self) -> bool {
        !matches!(self, Self::Store)
    }

    /// The lackey letter for this kind (`I`, `L`, `S`, `M`).
    #[must_use]
    pub const fn letter(self) -> char {
        match self {
            Self::Instr => 'I',
            Self::Load => 'L',
            Self::Store => 'S',
            Self::Modify => 'M',
        }
    }
}

impl fmt::Display for AccessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// The largest access size any trace reader accepts, in bytes.
///
/// Why 4 KiB: valgrind lackey never emits more than 512 bytes in one
/// record (its `lk_main.c` asserts `dsize <= MAX_DSIZE`, 512, for every data
/// access: the largest is an `fxsave`/`fxrstor` area; instruction records are
/// at most 20 bytes, `VG_MAX_INSTR_SZB`, or the 19-byte client-request
/// preamble), and the traces of this project top out at 32 (AVX). A bound
/// of one base page leaves room for other tools that write the format
/// while keeping any record to at most two 4 KiB pages, so one line can no
/// longer make the simulator touch a million pages (a size of 2^32 - 1 did).
pub const MAX_ACCESS_BYTES: u32 = 4096;

/// One memory reference by one process: `size` bytes at virtual address `va`.
///
/// An access that crosses a page boundary is still one `Access`; the consumer
/// splits it by its own page size (see [`Access::pages`]). `size` is 1 to
/// [`MAX_ACCESS_BYTES`] for every source in this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    /// The guest virtual address of the first byte.
    pub va: u64,
    /// The process that made the reference (for lackey, the PID in the file's banner).
    pub pid: u32,
    /// The number of bytes referenced.
    pub size: u32,
    /// What the reference does.
    pub kind: AccessKind,
}

impl Access {
    /// The address of the last byte referenced (`va + size - 1`, saturating at 2^64 - 1).
    #[inline]
    #[must_use]
    pub const fn last_byte(&self) -> u64 {
        self.va.saturating_add((self.size as u64).saturating_sub(1))
    }

    /// The first and last page numbers the access touches, for pages of `1 << shift` bytes.
    #[inline]
    #[must_use]
    pub const fn pages(&self, shift: u32) -> (u64, u64) {
        (self.va >> shift, self.last_byte() >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for k in AccessKind::ALL {
            assert_eq!(AccessKind::from_code(k.code()), k);
        }
        assert!(AccessKind::Modify.writes() && AccessKind::Modify.reads());
        assert!(!AccessKind::Store.reads() && !AccessKind::Load.writes());
    }

    #[test]
    fn crossing_access_spans_two_pages() {
        let a = Access {
            va: 0x1ffe,
            pid: 1,
            size: 4,
            kind: AccessKind::Load,
        };
        assert_eq!(a.pages(12), (1, 2));
        let b = Access {
            va: 0x1ffc,
            pid: 1,
            size: 4,
            kind: AccessKind::Load,
        };
        assert_eq!(b.pages(12), (1, 1));
        let top = Access {
            va: u64::MAX,
            pid: 1,
            size: 8,
            kind: AccessKind::Load,
        };
        assert_eq!(top.last_byte(), u64::MAX);
    }
}
