//! What a translation that fails reports: [`PageFault`], its kind
//! ([`PageFaultKind`], [`Violation`]) and the x86 error code ([`ErrorCode`]).
//!
//! A fault is data, not an error of the simulator: the kernel handles it
//! (see [`crate::kernel`]) and the MMU counts it. This module owns the
//! vocabulary and the encodings the architectures give it (x86 error code,
//! RISC-V exception cause); it does not decide when a fault happens.

use std::fmt;

use bitflags::bitflags;
use serde::Serialize;
use thiserror::Error;

use crate::addr::VirtAddr;
use crate::kernel::FaultCause;
use crate::paging::FaultKind as WalkFaultKind;

use super::{AccessKind, Privilege};

/// Which rule a present mapping broke.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Violation {
    /// A store to a page without write permission.
    WriteToReadOnly,
    /// A user-mode access to a supervisor page.
    UserToSupervisor,
    /// An instruction fetch from a no-execute page.
    ExecuteNoExecute,
    /// A load from a page without read permission (RISC-V R = 0).
    ReadNotAllowed,
    /// A supervisor access to a user page (RISC-V with SUM = 0; any
    /// supervisor fetch from a user page).
    SupervisorToUser,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WriteToReadOnly => "write to a read-only page",
            Self::UserToSupervisor => "user access to a supervisor page",
            Self::ExecuteNoExecute => "instruction fetch from a no-execute page",
            Self::ReadNotAllowed => "read from a page without read permission",
            Self::SupervisorToUser => "supervisor access to a user page",
        })
    }
}

/// Why a translation failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageFaultKind {
    /// An entry on the walk is not present (the level is in [`PageFault::level`]).
    NotPresent,
    /// The page is present but forbids the access.
    Protection(Violation),
    /// The address is not canonical (upper bits do not copy the top bit), or
    /// is wider than the format.
    NonCanonical,
    /// An entry has reserved bits set or a reserved encoding.
    ReservedBits(&'static str),
    /// A superpage entry's frame is not aligned to the superpage size.
    MisalignedSuperpage,
    /// An entry points outside physical memory.
    TableOutsideMemory,
    /// RISC-V Svade: the accessed bit (or, for a store, the dirty bit) is
    /// clear and the hardware leaves setting it to the OS.
    AccessedDirty,
}

impl fmt::Display for PageFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPresent => f.write_str("page not present"),
            Self::Protection(v) => write!(f, "protection fault: {v}"),
            Self::NonCanonical => f.write_str("non-canonical address"),
            Self::ReservedBits(why) => write!(f, "reserved bits: {why}"),
            Self::MisalignedSuperpage => f.write_str("misaligned superpage"),
            Self::TableOutsideMemory => f.write_str("page table outside physical memory"),
            Self::AccessedDirty => f.write_str("accessed/dirty bit must be set by the OS (Svade)"),
        }
    }
}

impl PageFaultKind {
    /// The kind a walker fault becomes.
    #[must_use]
    pub fn from_walk(kind: WalkFaultKind) -> Self {
        match kind {
            WalkFaultKind::NonCanonical | WalkFaultKind::TooWide => Self::NonCanonical,
            WalkFaultKind::NotPresent => Self::NotPresent,
            WalkFaultKind::ReservedBits(why) => Self::ReservedBits(why),
            WalkFaultKind::MisalignedSuperpage => Self::MisalignedSuperpage,
            WalkFaultKind::TableOutsideMemory => Self::TableOutsideMemory,
        }
    }
}

bitflags! {
    /// The x86 page-fault error code pushed on the stack (Intel SDM vol. 3, 4.7).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
    pub struct ErrorCode: u32 {
        /// P: 0 = the page was not present, 1 = a protection violation.
        const PRESENT = 1 << 0;
        /// W/R: the access was a write.
        const WRITE = 1 << 1;
        /// U/S: the access was made in user mode.
        const USER = 1 << 2;
        /// RSVD: a reserved bit was set in some entry.
        const RESERVED = 1 << 3;
        /// I/D: the access was an instruction fetch.
        const FETCH = 1 << 4;
    }
}

impl fmt::Display for ErrorCode {
    /// `0x7 (P W U)`: the value and the names of the bits set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} (", self.bits())?;
        let names = [
            (Self::PRESENT, "P"),
            (Self::WRITE, "W"),
            (Self::USER, "U"),
            (Self::RESERVED, "RSVD"),
            (Self::FETCH, "I"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|&(_, n)| n)
            .collect();
        write!(
            f,
            "{})",
            if set.is_empty() {
                "none".to_owned()
            } else {
                set.join(" ")
            }
        )
    }
}

/// A translation that failed: where, what kind of access, and why.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Error, Serialize)]
#[error("{kind} at {va} ({} by {}{}), error code {code}", .access.name(), privilege_name(*.privilege), level_text(*.level))]
pub struct PageFault {
    /// The faulting virtual address (x86 CR2, RISC-V stval).
    pub va: VirtAddr,
    /// What the access was.
    pub access: AccessKind,
    /// Who made it.
    pub privilege: Privilege,
    /// Why it failed.
    pub kind: PageFaultKind,
    /// The level (in the architecture manual's numbering) whose entry stopped
    /// the walk, for entry faults; `None` for address faults and for faults
    /// found on a TLB hit.
    pub level: Option<u32>,
    /// The x86 error code for this fault.
    pub code: ErrorCode,
}

fn privilege_name(p: Privilege) -> &'static str {
    match p {
        Privilege::User => "user",
        Privilege::Supervisor => "supervisor",
    }
}

fn level_text(level: Option<u32>) -> String {
    level.map(|l| format!(", level {l}")).unwrap_or_default()
}

impl PageFault {
    /// A fault with its x86 error code computed from the kind and the access.
    #[must_use]
    pub fn new(
        va: VirtAddr,
        access: AccessKind,
        privilege: Privilege,
        kind: PageFaultKind,
        level: Option<u32>,
    ) -> Self {
        let mut code = ErrorCode::empty();
        if matches!(
            kind,
            PageFaultKind::Protection(_)
                | PageFaultKind::AccessedDirty
                | PageFaultKind::ReservedBits(_)
        ) {
            code |= ErrorCode::PRESENT;
        }
        if matches!(kind, PageFaultKind::ReservedBits(_)) {
            code |= ErrorCode::RESERVED;
        }
        if access == AccessKind::Write {
            code |= ErrorCode::WRITE;
        }
        if privilege == Privilege::User {
            code |= ErrorCode::USER;
        }
        if access == AccessKind::Execute {
            code |= ErrorCode::FETCH;
        }
        Self {
            va,
            access,
            privilege,
            kind,
            level,
            code,
        }
    }

    /// The RISC-V exception cause (`scause`) this fault raises: 12
    /// instruction page fault, 13 load page fault, 15 store/AMO page fault.
    #[must_use]
    pub const fn riscv_cause(&self) -> u32 {
        match self.access {
            AccessKind::Execute => 12,
            AccessKind::Read => 13,
            AccessKind::Write => 15,
        }
    }

    /// What the kernel's fault handler needs to know.
    #[must_use]
    pub const fn cause(&self) -> FaultCause {
        match self.kind {
            PageFaultKind::NotPresent => FaultCause::NotPresent,
            PageFaultKind::Protection(_) => FaultCause::Protection,
            PageFaultKind::AccessedDirty => FaultCause::AccessedDirty,
            PageFaultKind::NonCanonical => FaultCause::BadAddress,
            PageFaultKind::ReservedBits(_)
            | PageFaultKind::MisalignedSuperpage
            | PageFaultKind::TableOutsideMemory => FaultCause::BadEntry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_follow_the_intel_manual() {
        let va = VirtAddr::new(0x1000);
        // User write to a read-only page: P W U = 0x7.
        let f = PageFault::new(
            va,
            AccessKind::Write,
            Privilege::User,
            PageFaultKind::Protection(Violation::WriteToReadOnly),
            None,
        );
        assert_eq!(f.code.bits(), 0x7);
        assert_eq!(f.code.to_string(), "0x7 (P W U)");
        // Supervisor read of a missing page: 0.
        let f = PageFault::new(
            va,
            AccessKind::Read,
            Privilege::Supervisor,
            PageFaultKind::NotPresent,
            Some(1),
        );
        assert_eq!(f.code.bits(), 0);
        assert_eq!(f.cause(), FaultCause::NotPresent);
        assert_eq!(f.riscv_cause(), 13);
        // User fetch from a no-execute page: P U I = 0x15.
        let f = PageFault::new(
            va,
            AccessKind::Execute,
            Privilege::User,
            PageFaultKind::Protection(Violation::ExecuteNoExecute),
            None,
        );
        assert_eq!(f.code.bits(), 0x15);
        // Reserved bit: P RSVD.
        let f = PageFault::new(
            va,
            AccessKind::Read,
            Privilege::Supervisor,
            PageFaultKind::ReservedBits("x"),
            Some(2),
        );
        assert_eq!(f.code.bits(), 0x9);
        assert_eq!(f.cause(), FaultCause::BadEntry);
        assert!(f.to_string().contains("level 2"), "{f}");
    }
}
