//! vmsim-trace: memory-reference traces for vmsim.
//!
//! Reads valgrind lackey `--trace-mem=yes` text (plain or zstd) and vmsim's own
//! binary `.vmt`, generates seeded synthetic workloads (`synth:...`), computes
//! trace statistics and records new traces under valgrind. Everything is
//! streamed: memory stays flat however long the trace.
//!
//! The engine consumes a [`TraceSource`] (usually the [`AnySource`] returned by
//! [`open`]) batch by batch:
//!
//! ```no_run
//! use vmsim_trace::{TraceSource, open};
//! let mut src = open("synth:scan,bytes=64MiB,stride=4")?;
//! let mut batch = Vec::new();
//! while src.next_batch(&mut batch)? > 0 {
//!     for access in &batch { let _ = access.va; }
//! }
//! # Ok::<(), vmsim_trace::TraceError>(())
//! ```
//!
//! This crate does not depend on the engine and never prints.

pub mod access;
pub mod ahead;
pub mod error;
pub mod input;
pub mod lackey;
pub mod limits;
pub mod output;
pub mod pagenum;
pub mod pages;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod source;
pub mod stats;
pub mod synth;
pub mod units;
pub mod vmt;
pub mod zipf;
pub mod zipf_table;

pub use access::{Access, AccessKind};
pub use error::TraceError;
pub use pages::{DenseMap, PageRef, PageSource, open_pages};
pub use source::{AnySource, BATCH, TraceSource, open, open_path};
pub use stats::{StatsBuilder, TraceStats, stats};
