//! `[migrate]` in the config: the link a migration runs over and when
//! pre-copy stops. Simulated time is counted in references (the machine's
//! clock), so the bandwidth is in bytes per reference and the latency in
//! references.
//!
//! Owns the settings and their validation only.

use serde::{Deserialize, Serialize};

/// The three ways a running process moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrateMode {
    /// Pause the process, copy everything, resume at the destination.
    StopAndCopy,
    /// Copy while it runs, then copy what it dirtied meanwhile, round after
    /// round, and pause only for the last (small) set.
    #[default]
    PreCopy,
    /// Pause only to send its execution state and page tables, resume at
    /// the destination at once, and bring pages over on demand (remote
    /// faults) while pushing the rest in the background.
    PostCopy,
}

impl MigrateMode {
    /// The name as written on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::StopAndCopy => "stop-and-copy",
            Self::PreCopy => "pre-copy",
            Self::PostCopy => "post-copy",
        }
    }

    /// Parses a name ([`MigrateMode::name`]).
    ///
    /// # Errors
    /// An unknown name: the message lists the known ones.
    pub fn parse(text: &str) -> Result<Self, UnknownMigrateMode> {
        match text {
            "stop-and-copy" => Ok(Self::StopAndCopy),
            "pre-copy" => Ok(Self::PreCopy),
            "post-copy" => Ok(Self::PostCopy),
            other => Err(UnknownMigrateMode(other.to_owned())),
        }
    }
}

/// A migration mode name [`MigrateMode::parse`] does not know (the name given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown migration mode '{0}': expected stop-and-copy, pre-copy or post-copy")]
pub struct UnknownMigrateMode(pub String);

/// `[migrate]`: the link model and pre-copy's stopping rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrateConfig {
    /// Bytes the link carries per simulated reference (the source keeps
    /// executing references while a round is in flight).
    pub bandwidth: u64,
    /// One-way latency of the link, in references.
    pub latency: u64,
    /// Pre-copy stops when at most this many pages are dirty.
    pub stop_pages: u64,
    /// Pre-copy stops after this many rounds however many pages are dirty.
    pub max_rounds: u32,
}

impl Default for MigrateConfig {
    fn default() -> Self {
        Self {
            bandwidth: 256,
            latency: 1000,
            stop_pages: 16,
            max_rounds: 30,
        }
    }
}

impl MigrateConfig {
    /// Checks the settings; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.bandwidth == 0 {
            return Err((
                "migrate.bandwidth",
                "a link carries at least 1 byte per reference".into(),
            ));
        }
        if self.max_rounds == 0 {
            return Err((
                "migrate.max_rounds",
                "pre-copy needs at least 1 round".into(),
            ));
        }
        Ok(())
    }

    /// References a transfer of `bytes` takes over the link, latency
    /// included.
    #[must_use]
    pub fn transfer(&self, bytes: u64) -> u64 {
        self.latency + bytes.div_ceil(self.bandwidth)
    }
}
