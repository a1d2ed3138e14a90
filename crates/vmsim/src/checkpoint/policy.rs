//! How a run takes checkpoints (`[checkpoint]` in the config): how often,
//! which way (pause and copy, or write-protect and keep running), which
//! dirty-page tracker finds the pages of an increment, and the cost model
//! that turns what a checkpoint did into the pause a process saw.
//!
//! Owns the settings and their validation only; taking checkpoints is
//! `checkpoint/run.rs`.

use serde::{Deserialize, Serialize};

/// The two ways of the course notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// Stop the process and copy what the checkpoint holds before it runs on.
    #[default]
    Pause,
    /// Write-protect the address space and run on: a store to a page not
    /// saved yet traps and the page is saved first; the rest are saved in
    /// the background.
    WriteProtect,
}

impl CheckpointMode {
    /// The name as written in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::WriteProtect => "write-protect",
        }
    }
}

/// Which dirty-page tracker decides what an incremental checkpoint copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackerKind {
    /// `host` with `pause`, `both` with `write-protect`.
    #[default]
    Auto,
    /// The host's record of changed memory: perturbs nothing in the
    /// simulated machine (a run's figures equal a run without checkpoints).
    Host,
    /// Hardware dirty bits, cleared at each checkpoint and scanned at the next.
    DirtyBit,
    /// Write protection: pages written since trap once (soft-dirty).
    SoftDirty,
    /// Dirty bits and write protection, both counted (soft-dirty decides).
    Both,
}

impl TrackerKind {
    /// The name as written in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Host => "host",
            Self::DirtyBit => "dirty-bit",
            Self::SoftDirty => "soft-dirty",
            Self::Both => "both",
        }
    }
}

/// `[checkpoint]`: when and how a run checkpoints, and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// References between checkpoints; 0 takes none.
    pub every: u64,
    /// `pause` or `write-protect`.
    pub mode: CheckpointMode,
    /// `auto`, `host`, `dirty-bit`, `soft-dirty` or `both`.
    pub tracker: TrackerKind,
    /// Cycles to copy one 4 KiB page (larger pages cost proportionally):
    /// about 4 bytes a cycle.
    pub page_copy_cycles: u64,
    /// Cycles to change one page-table entry (clear D, or clear W).
    pub pte_update_cycles: u64,
    /// Cycles of one TLB invalidation for a changed entry (invlpg on the
    /// one simulated core; a cross-core shootdown costs thousands).
    pub shootdown_cycles: u64,
    /// Cycles of one write-protect fault: trap, handler, return.
    pub fault_cycles: u64,
    /// Write-protect mode: pages the background copier saves per 1000
    /// references while the process runs.
    pub background_pages_per_kref: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 0,
            mode: CheckpointMode::Pause,
            tracker: TrackerKind::Auto,
            page_copy_cycles: 1024,
            pte_update_cycles: 10,
            shootdown_cycles: 250,
            fault_cycles: 1500,
            background_pages_per_kref: 16,
        }
    }
}

impl CheckpointConfig {
    /// The tracker in effect (`auto` resolved by the mode).
    #[must_use]
    pub fn tracker(&self) -> TrackerKind {
        match (self.tracker, self.mode) {
            (TrackerKind::Auto, CheckpointMode::Pause) => TrackerKind::Host,
            (TrackerKind::Auto, CheckpointMode::WriteProtect) => TrackerKind::Both,
            (t, _) => t,
        }
    }

    /// Whether the dirty-bit tracker runs.
    #[must_use]
    pub fn dirty_bits(&self) -> bool {
        matches!(self.tracker(), TrackerKind::DirtyBit | TrackerKind::Both)
    }

    /// Whether the soft-dirty (write-protect) tracker runs.
    #[must_use]
    pub fn soft_dirty(&self) -> bool {
        matches!(self.tracker(), TrackerKind::SoftDirty | TrackerKind::Both)
    }

    /// Checks the combination; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.mode == CheckpointMode::WriteProtect && !self.soft_dirty() {
            return Err((
                "checkpoint.tracker",
                format!(
                    "write-protect mode finds dirty pages by write protection: the tracker must be \
                     soft-dirty or both (or auto), not {}",
                    self.tracker.name()
                ),
            ));
        }
        if self.mode == CheckpointMode::WriteProtect && self.background_pages_per_kref == 0 {
            return Err((
                "checkpoint.background_pages_per_kref",
                "write-protect mode needs a background copier of at least 1 page per 1000 \
                 references"
                    .into(),
            ));
        }
        Ok(())
    }
}
