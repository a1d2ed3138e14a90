//! What an access through a segment can do, and the faults it can raise.
//!
//! A segmentation fault is data, not an error of the simulator: the MMU
//! reports it and the simulated kernel (or `vmsim explain`) says why.

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::descriptor::{Ring, SegmentPerms};
use super::selector::{Selector, TableKind};

/// The kind of memory access made through a segment: the same vocabulary
/// as the MMU's.
pub use crate::mmu::AccessKind as Access;

/// The segment permission an access needs.
#[inline]
#[must_use]
pub const fn needs(access: Access) -> SegmentPerms {
    match access {
        Access::Read => SegmentPerms::READ,
        Access::Write => SegmentPerms::WRITE,
        Access::Execute => SegmentPerms::EXECUTE,
    }
}

/// Serialises a number as a `0x` hex string, as vmsim's JSON writes addresses.
pub(crate) fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:#x}"))
}

/// Why the segmentation unit refused an access (x86 raises #GP, #NP or #SS).
///
/// Serialised with a `kind` tag (`unknown_selector`, `null_selector`,
/// `not_present`, `privilege`, `limit_exceeded`, `permission`) and the
/// fields below, numbers as hex strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SegmentFault {
    /// No descriptor exists at the selector's index.
    #[error("segmentation fault: selector {selector} names {}, but no such segment is defined", entry_name(*table, *index))]
    UnknownSelector {
        /// The selector used.
        selector: Selector,
        /// The x86 table searched; `None` in course mode, where there is one table.
        table: Option<TableKind>,
        /// The index that holds nothing.
        index: u16,
    },
    /// An x86 selector for GDT entry 0, the null descriptor, was used for an access.
    #[error(
        "segmentation fault: selector {selector} is the null selector (GDT entry 0), which cannot be used to access memory"
    )]
    NullSelector {
        /// The selector used.
        selector: Selector,
    },
    /// The descriptor's present bit is clear (the OS has the segment elsewhere).
    #[error("segment not present: selector {selector} names a segment whose present bit is clear")]
    NotPresent {
        /// The selector used.
        selector: Selector,
    },
    /// The access is made from a ring less privileged than the segment allows.
    #[error(
        "segmentation fault: selector {selector} needs privilege {dpl} or better, but the access runs at privilege {effective}"
    )]
    Privilege {
        /// The selector used.
        selector: Selector,
        /// The weaker of the current privilege level and the selector's RPL.
        effective: Ring,
        /// The segment's descriptor privilege level.
        dpl: Ring,
    },
    /// Some byte of the access lies outside the segment's valid offsets.
    #[error("segmentation fault: offset {offset:#x} ({size} byte{s}) is outside segment {selector}, whose limit {limit:#x} allows offsets {first_valid:#x}..={last_valid:#x}", s = if *size == 1 { "" } else { "s" })]
    LimitExceeded {
        /// The selector used.
        selector: Selector,
        /// The first byte of the access.
        #[serde(serialize_with = "hex")]
        offset: u64,
        /// The access size in bytes.
        size: u64,
        /// The limit in bytes (after granularity scaling).
        #[serde(serialize_with = "hex")]
        limit: u64,
        /// The first valid offset (0 unless expand-down).
        #[serde(serialize_with = "hex")]
        first_valid: u64,
        /// The last valid offset.
        #[serde(serialize_with = "hex")]
        last_valid: u64,
    },
    /// The segment does not allow this kind of access.
    #[error(
        "segmentation fault: a {access} through segment {selector} is not allowed; its permissions are {perms}"
    )]
    Permission {
        /// The selector used.
        selector: Selector,
        /// What was attempted.
        access: Access,
        /// What the segment allows.
        perms: SegmentPerms,
    },
}

/// How a student names a descriptor table entry: `segment 2` in course
/// mode, `GDT entry 5` in x86 mode.
pub(crate) fn entry_name(table: Option<TableKind>, index: u16) -> String {
    match table {
        None => format!("segment {index}"),
        Some(t) => format!("{t} entry {index}"),
    }
}

impl SegmentFault {
    /// The `kind` tag of this fault in JSON, for counters and tests.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::UnknownSelector { .. } => "unknown_selector",
            Self::NullSelector { .. } => "null_selector",
            Self::NotPresent { .. } => "not_present",
            Self::Privilege { .. } => "privilege",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::Permission { .. } => "permission",
        }
    }
}
