//! Translation faults as the hardware reports them: what went wrong, at
//! which address and level, and the x86-style error code.

use serde::Serialize;
use thiserror::Error;

use crate::addr::VirtAddr;
use crate::paging::FaultKind;

use super::{AccessKind, Privilege};

/// A permission the page does not grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Violation {
    /// A store to a read-only page.
    Write,
    /// A load from a page that is not readable (RISC-V execute-only).
    Read,
    /// An instruction fetch from a no-execute page.
    Execute,
    /// A user-mode access to a supervisor page.
    User,
}

/// What kind of translation fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "why")]
pub enum MmuFaultKind {
    /// The walk stopped: not present, reserved bits, misaligned superpage,
    /// non-canonical or too-wide address, table outside memory.
    Walk(FaultKind),
    /// A present translation forbids the access.
    Protection(Violation),
    /// RISC-V Svade: the accessed bit is clear, or the dirty bit on a store;
    /// the OS must set it.
    AccessedDirty,
}

/// A translation fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize)]
#[error("{access:?} fault at {va}: {kind:?}{}", .level.map(|l| format!(" (level {l})")).unwrap_or_default())]
pub struct MmuFault {
    /// What went wrong.
    pub kind: MmuFaultKind,
    /// The faulting virtual address (x86 CR2, RISC-V stval).
    pub va: VirtAddr,
    /// The access.
    pub access: AccessKind,
    /// The privilege it was made at.
    pub privilege: Privilege,
    /// The manual's number of the level whose entry stopped the walk.
    pub level: Option<u32>,
}

impl MmuFault {
    /// The x86 page-fault error code: bit 0 P (a protection violation on a
    /// present page, 0 = not present), bit 1 W/R (a write), bit 2 U/S (user
    /// mode), bit 3 RSVD (reserved bit set), bit 4 I/D (instruction fetch).
    #[must_use]
    pub fn error_code(&self) -> u32 {
        let present = match self.kind {
            MmuFaultKind::Protection(_) | MmuFaultKind::AccessedDirty => true,
            MmuFaultKind::Walk(FaultKind::ReservedBits(_) | FaultKind::MisalignedSuperpage) => true,
            MmuFaultKind::Walk(_) => false,
        };
        let reserved = matches!(self.kind, MmuFaultKind::Walk(FaultKind::ReservedBits(_)));
        u32::from(present)
            | u32::from(self.access == AccessKind::Write) << 1
            | u32::from(self.privilege == Privilege::User) << 2
            | u32::from(reserved) << 3
            | u32::from(self.access == AccessKind::Execute) << 4
    }

    /// A short stable name for reports (`not_present`, `protection`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.kind {
            MmuFaultKind::Walk(k) => k.name(),
            MmuFaultKind::Protection(_) => "protection",
            MmuFaultKind::AccessedDirty => "accessed_dirty",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_follow_the_intel_layout() {
        let f = MmuFault {
            kind: MmuFaultKind::Protection(Violation::Write),
            va: VirtAddr::new(0x1000),
            access: AccessKind::Write,
            privilege: Privilege::User,
            level: Some(1),
        };
        assert_eq!(f.error_code(), 0b00111);
        let f = MmuFault {
            kind: MmuFaultKind::Walk(FaultKind::NotPresent),
            access: AccessKind::Execute,
            privilege: Privilege::Supervisor,
            ..f
        };
        assert_eq!(f.error_code(), 0b10000);
        let f = MmuFault {
            kind: MmuFaultKind::Walk(FaultKind::ReservedBits("x")),
            access: AccessKind::Read,
            ..f
        };
        assert_eq!(f.error_code(), 0b01001);
    }
}
