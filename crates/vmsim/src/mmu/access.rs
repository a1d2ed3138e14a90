//! The kind of a memory access and the privilege it is made with.
//!
//! These two values travel with every translation: the TLB picks its
//! instruction or data arrays by [`AccessKind`], and the permission check and
//! the x86 error code use both. This module owns only the vocabulary.

use serde::{Deserialize, Serialize};

/// What an access does with the bytes it reaches.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessKind {
    /// A data load.
    Read,
    /// A data store: needs a writable page and sets the dirty bit.
    Write,
    /// An instruction fetch: looked up in the instruction TLB and needs an
    /// executable page.
    Execute,
}

impl AccessKind {
    /// All kinds, in the order of [`AccessKind::index`].
    pub const ALL: [Self; 3] = [Self::Read, Self::Write, Self::Execute];

    /// A dense index (read 0, write 1, execute 2) for per-kind counters.
    #[inline]
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the access is an instruction fetch (served by instruction TLB arrays).
    #[inline]
    #[must_use]
    pub const fn is_fetch(self) -> bool {
        matches!(self, Self::Execute)
    }

    /// The permission letter this access needs: `r`, `w` or `x`.
    #[inline]
    #[must_use]
    pub const fn letter(self) -> char {
        match self {
            Self::Read => 'r',
            Self::Write => 'w',
            Self::Execute => 'x',
        }
    }

    /// The lower-case name used in reports and configs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
        }
    }
}

/// The privilege level an access is made at.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    /// User mode (x86 CPL 3, RISC-V U-mode): may touch only user pages.
    User,
    /// Supervisor mode (x86 CPL 0, RISC-V S-mode).
    Supervisor,
}

/// A user-mode load or instruction fetch: the only accesses the TLB's
/// recent-hit path ([`crate::mmu::Mmu::hit_recent`]) takes. A type of
/// its own, with no store and no privilege, so that a store or a
/// supervisor access cannot be handed to that path: its recent hits are
/// marked, when remembered, only with whether they grant their side's user
/// load or fetch (see `Tlb::hit_recent`), which says nothing of a store's
/// right. Numbered as the TLB numbers its sides (data 0, fetch 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LoadOrFetch {
    /// A user data load ([`AccessKind::Read`]).
    Load = 0,
    /// A user instruction fetch ([`AccessKind::Execute`]).
    Fetch = 1,
}

impl LoadOrFetch {
    /// The access kind it is.
    #[inline]
    #[must_use]
    pub const fn kind(self) -> AccessKind {
        match self {
            Self::Load => AccessKind::Read,
            Self::Fetch => AccessKind::Execute,
        }
    }

    /// The load or fetch `kind` is: `None` for a store.
    #[must_use]
    pub const fn of(kind: AccessKind) -> Option<Self> {
        match kind {
            AccessKind::Read => Some(Self::Load),
            AccessKind::Execute => Some(Self::Fetch),
            AccessKind::Write => None,
        }
    }

    /// The TLB side it looks up: data 0, fetch 1.
    #[inline(always)]
    #[must_use]
    pub const fn side(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for AccessKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_ordered() {
        for (i, kind) in AccessKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
        assert!(AccessKind::Execute.is_fetch());
        assert!(!AccessKind::Write.is_fetch());
    }

    #[test]
    fn loads_and_fetches_take_their_kinds_side() {
        for x in [LoadOrFetch::Load, LoadOrFetch::Fetch] {
            assert_eq!(x.side(), usize::from(x.kind().is_fetch()));
            assert_eq!(LoadOrFetch::of(x.kind()), Some(x));
        }
        assert_eq!(LoadOrFetch::of(AccessKind::Write), None);
        assert_eq!(LoadOrFetch::Load.kind(), AccessKind::Read);
        assert_eq!(LoadOrFetch::Fetch.kind(), AccessKind::Execute);
    }
}
