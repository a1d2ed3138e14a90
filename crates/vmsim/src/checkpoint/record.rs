//! What each checkpoint did, for the report: pages saved, dirty pages by
//! each tracker, write-protect faults, and the pause under the cost model.
//!
//! Owns the record types only (they serialize into the JSON report and into
//! the machine state, so a restored run reports the checkpoints before it).

use serde::{Deserialize, Serialize};

/// One checkpoint of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Its number in the chain (0: the full one).
    pub seq: u64,
    /// References simulated when it was taken.
    pub references: u64,
    /// A full checkpoint (everything) rather than an increment.
    pub full: bool,
    /// Data pages it saves (distinct frames with contents, and swapped pages).
    pub pages_saved: u64,
    /// Their bytes.
    pub bytes_saved: u64,
    /// Pages among them found all zero: nothing to store.
    pub zero_pages: u64,
    /// Mappings of a frame already counted (copy-on-write sharing): stored once.
    pub shared_pages: u64,
    /// Page-table pages copied with the state (they change with every walk's A bit).
    pub table_pages: u64,
    /// Data pages whose contents changed since the previous checkpoint, as
    /// the host saw it (exact, perturbs nothing).
    pub dirty_host: u64,
    /// Pages with the dirty bit set (dirty-bit tracker), if it runs.
    pub dirty_bits: Option<u64>,
    /// Pages written or mapped since the last arming (soft-dirty tracker), if it runs.
    pub soft_dirty: Option<u64>,
    /// Write-protect faults since the previous checkpoint.
    pub wp_faults: u64,
    /// Page-table entries the trackers changed (D or W cleared).
    pub ptes_changed: u64,
    /// TLB invalidations those changes required.
    pub shootdowns: u64,
    /// The pause the process saw, in cycles (see `checkpoint.*_cycles`).
    pub pause_cycles: u64,
    /// Write-protect mode: pages saved by a fault (a store to a page not
    /// saved yet), saved by the background copier, and left for the next pause.
    pub saved_by_fault: u64,
    /// See `saved_by_fault`.
    pub saved_in_background: u64,
    /// See `saved_by_fault`.
    pub saved_at_next_pause: u64,
    /// Write-protect mode: cycles the process spent in write-protect faults
    /// (and the copies they made) after this checkpoint.
    pub fault_cycles: u64,
    /// 4 KiB chunks of physical memory in the file (page tables included).
    pub chunks_written: u64,
    /// Chunks recorded as zero since the previous checkpoint.
    pub zero_chunks_written: u64,
    /// Swap slots in the file.
    pub swap_pages_written: u64,
    /// The file written (none when the run writes no files). A host fact,
    /// not a figure of the simulation.
    pub file: Option<String>,
    /// Its size in bytes (a host fact).
    pub file_bytes: Option<u64>,
}

/// The checkpoints of a run, in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// `pause` or `write-protect`.
    pub mode: String,
    /// The tracker in effect.
    pub tracker: String,
    /// References between checkpoints.
    pub every: u64,
    /// Every checkpoint taken.
    pub records: Vec<CheckpointRecord>,
    /// Sum of the pauses, in cycles.
    pub pause_cycles: u64,
    /// Sum of the cycles spent in write-protect faults.
    pub fault_cycles: u64,
}
