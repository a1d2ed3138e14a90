//! vmsim: a virtual-memory system you can run, inspect and measure.
//!
//! The engine crate: deterministic, no command-line parsing, no printing.
//! See `DESIGN.md` at the repository root for the data flow.

pub mod addr;
pub mod alloc;
pub mod calc;
pub mod checkpoint;
pub mod config;
pub mod exercise;
pub mod kernel;
pub mod memory;
pub mod migrate;
pub mod mmu;
pub mod mrc;
pub mod paging;
pub mod phys;
pub mod reclaim;
pub mod replay;
pub mod report;
pub mod segment;
pub mod serde_arrays;
pub mod serde_sparse;
pub mod sim;
pub mod swap;
pub mod units;
