//! vmsim: a virtual-memory system you can run, inspect and measure.
//!
//! The engine crate: deterministic, no command-line parsing, no printing.
//! See `DESIGN.md` at the repository root for the data flow.

pub mod addr;
pub mod alloc;
pub mod phys;
pub mod reclaim;
