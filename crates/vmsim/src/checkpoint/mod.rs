//! Checkpoints: the whole simulation captured as a value, written to a file
//! (full, or incremental over its parent), and restored, so that a run can
//! go on from any checkpoint and report exactly what it would have reported
//! without stopping; plus the dirty-page trackers and cost model of the two
//! ways an OS checkpoints a running process (pause and copy;
//! write-protect and keep running), as the course notes describe them.
//!
//! - [`Simulation::checkpoint`] / [`Simulation::restore`]: a full checkpoint
//!   in memory, and a simulation rebuilt from one (an embedding program's
//!   snapshot and rewind).
//! - [`ChainWriter`]: a run's checkpoints in a directory, the first full and
//!   the others incremental (`vmsim run --checkpoint-every N --checkpoint-dir DIR`).
//! - [`Chain`]: a directory read back: list, check, restore at any
//!   checkpoint, merge an increment with its ancestors into a full one.
//! - `checkpoint/run.rs`: taking checkpoints during a run (trackers,
//!   records, costs); `checkpoint/image.rs`: what a file holds;
//!   `checkpoint/format.rs`: the container (sections, CRC-32C, limits).
//! - [`ProcessImage`]: one process's state taken out of the machine-wide
//!   one (VMAs, pages by virtual address, swapped pages, input position,
//!   counters), for migration.
//!
//! The file format is normative in docs/checkpoint-format.md.

mod bufout;
mod chain;
#[cfg(test)]
pub(crate) mod forged;
mod format;
mod image;
mod listed;
mod policy;
mod process;
mod record;
mod restored_header;
mod restored_scenario;
pub(crate) mod run;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use chain::{Chain, ChainEntry, ChainMirror, ChainWriter, MirrorError, file_name};
pub use format::{DEFAULT_LOAD_LIMIT, MAGIC, VERSION};
pub use policy::{CheckpointConfig, CheckpointMode, TrackerKind};
pub use process::{PageImage, ProcessImage, content_hash};
pub use record::{CheckpointRecord, CheckpointReport};

use crate::sim::{SimError, Simulation};

/// A checkpoint could not be written, read or used. Every message starts
/// with the file (or directory) and says what is wrong, on one line.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// A checkpoint file that is not usable: truncated, corrupt, another
    /// version, another machine, not linked to its chain...
    #[error("{file}: {what}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// A checkpoint directory that cannot be used.
    #[error("{dir}: {what}")]
    Chain {
        /// The directory.
        dir: String,
        /// What is wrong.
        what: String,
    },
    /// A checkpoint file (or its directory) could not be read or written:
    /// the file, and the I/O error (kept as the source, so a caller can
    /// tell a full disk from a missing file).
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error while doing one step on a checkpoint file or
    /// directory: the file, the step, and the I/O error (the source).
    #[error("{file}: {what}: {source}")]
    IoIn {
        /// The file or directory.
        file: String,
        /// What was being done ("cannot read the file header",
        /// "section PAGE").
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The restored run could not be set up (its inputs cannot be found).
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl CheckpointError {
    /// A file's error; `what` is kept to one line (a message of a library
    /// below that spans several is joined).
    pub(crate) fn file(file: &str, what: impl Into<String>) -> Self {
        let what: String = what.into();
        let what = if what.contains('\n') {
            what.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            what
        };
        Self::File {
            file: file.into(),
            what,
        }
    }
}

/// What a checkpoint is: the first section of every file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Its number in its chain.
    pub seq: u64,
    /// A full checkpoint (restorable alone) rather than an increment.
    pub full: bool,
    /// References simulated when it was taken.
    pub references: u64,
    /// The chain it belongs to (the same for every checkpoint of one run).
    pub chain: u64,
    /// Its own id.
    pub id: u64,
    /// Its parent's id (increments only).
    pub parent: Option<u64>,
    /// CRC-32C of the configuration's TOML: every link of a chain must have
    /// been taken on the same machine.
    pub config_crc: u32,
    /// The program that wrote it.
    pub written_by: String,
    /// Memory chunks stored with contents.
    pub data_chunks: u64,
    /// Memory chunks recorded as zero.
    pub zero_chunks: u64,
    /// Swap slots stored.
    pub swap_pages: u64,
}

/// A full checkpoint held in memory: the bytes of a checkpoint file.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    bytes: Vec<u8>,
    header: Header,
}

impl Checkpoint {
    /// What it is.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Its bytes (a checkpoint file's contents).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A checkpoint from a file's bytes, checked (`name` appears in errors).
    ///
    /// # Errors
    /// Not a checkpoint, another version, corrupt, or an increment (which
    /// needs its chain: see [`Chain`]).
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self, CheckpointError> {
        let len = bytes.len() as u64;
        let mut r = format::Reader::new(Cursor::new(&bytes[..]), name, len)?;
        let (header, _) = image::read(&mut r, false, None, None)?;
        if !header.full {
            return Err(CheckpointError::file(
                name,
                "an incremental checkpoint: restore it through its chain directory",
            ));
        }
        Ok(Self { bytes, header })
    }

    /// Writes it to `path` (a temporary file, synced, renamed).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_to(&self, path: &Path) -> Result<(), CheckpointError> {
        let err = |source| CheckpointError::Io {
            file: path.display().to_string(),
            source,
        };
        let mut tmp = vmsim_trace::output::temp_next_to(path).map_err(err)?;
        std::io::Write::write_all(&mut tmp, &self.bytes).map_err(err)?;
        vmsim_trace::output::commit(tmp, path).map_err(err)
    }

    /// Reads and checks the full checkpoint in `path`.
    ///
    /// # Errors
    /// As for [`Checkpoint::from_bytes`], or the file cannot be read.
    pub fn read_from(path: &Path) -> Result<Self, CheckpointError> {
        let name = path.display().to_string();
        let io = |source| CheckpointError::Io {
            file: name.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(CheckpointError::file(
                &name,
                "not a regular file (a directory, device, FIFO or socket)",
            ));
        }
        // Its length is checked against the load limit before it is read.
        let bytes = vmsim_trace::limits::read_limited(path, DEFAULT_LOAD_LIMIT, "a checkpoint")
            .map_err(io)?;
        Self::from_bytes(bytes, &path.display().to_string())
    }
}

impl Simulation {
    /// Captures the whole simulation now as a full checkpoint in memory.
    /// Taking it changes nothing in the run (no tracker runs, the run's own
    /// checkpoint chain is not affected).
    ///
    /// # Errors
    /// A trace input cannot be checksummed, or the swap device's cached
    /// pages cannot be written to its file.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, CheckpointError> {
        // The swap file gets the pages its cache holds first.
        self.m
            .kernel
            .flush_swap(&mut self.mem)
            .map_err(|source| SimError::Kernel {
                process: "checkpoint".into(),
                source,
            })?;
        let capture = image::Capture::everything(self);
        let references = self.references();
        let chain = self.m.ckpt.chain;
        let header = Header {
            seq: self.m.ckpt.taken,
            full: true,
            references,
            chain,
            id: run::checkpoint_id(chain, u64::MAX, references),
            parent: None,
            config_crc: crc32c::crc32c(self.cfg.to_toml().as_bytes()),
            written_by: concat!("vmsim ", env!("CARGO_PKG_VERSION")).into(),
            data_chunks: capture.data_chunks(),
            zero_chunks: 0,
            swap_pages: capture.swap_pages(),
        };
        let hint = capture.size_hint(self.m.kernel.page_size().bytes() as usize);
        let out = image::write(
            self,
            &header,
            &capture,
            Cursor::new(Vec::with_capacity(hint)),
            None,
            "the checkpoint in memory",
        )?;
        Ok(Checkpoint {
            bytes: out.into_inner(),
            header,
        })
    }

    /// Rebuilds a simulation from a full checkpoint. Trace inputs are
    /// reopened at their recorded paths, or found among `inputs` by size
    /// and CRC-32C; the run continues with [`Simulation::run_until`] or
    /// [`Simulation::run_to_end`].
    ///
    /// # Errors
    /// The checkpoint is inconsistent, or an input cannot be found.
    pub fn restore(ckpt: &Checkpoint, inputs: &[PathBuf]) -> Result<Self, CheckpointError> {
        let name = "(checkpoint in memory)";
        let mut r = format::Reader::new(
            Cursor::new(ckpt.as_bytes()),
            name,
            ckpt.as_bytes().len() as u64,
        )?;
        chain::restore_files(name, &mut [(name.to_string(), &mut r)], Some(inputs))
    }
}
