//! Processes of the simulated kernel.

use serde::{Deserialize, Serialize};

use crate::addr::Pid;
use crate::alloc::ObjHandle;

/// Identifies an address space in the kernel's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpaceId(pub(crate) u32);

/// What a process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcState {
    /// Can run.
    Runnable,
    /// A vfork parent waiting for its child to exit (or exec).
    VforkWait(Pid),
}

/// Why a process was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegvReason {
    /// No VMA contains the address.
    NoVma,
    /// The VMA does not allow this kind of access.
    Permission,
    /// Below the stack but inside the guard gap or past the stack limit.
    StackGuard,
    /// An address the paging format cannot express (non-canonical, too wide).
    BadAddress,
    /// A page table entry was malformed (reserved bits): SIGBUS on real systems.
    BadEntry,
    /// No memory left to serve the fault (the OOM killer's choice).
    OutOfMemory,
}

/// A process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    /// Its id.
    pub pid: Pid,
    /// Its parent, if any.
    pub parent: Option<Pid>,
    /// The address space it runs in.
    pub space: SpaceId,
    /// Running or waiting.
    pub state: ProcState,
    /// Set for a vfork child until it exits or execs: the parent it blocks.
    pub vfork_parent: Option<Pid>,
    /// Its task structure, an object of the slab's task cache.
    pub task: Option<ObjHandle>,
}
