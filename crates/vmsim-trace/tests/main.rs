//! Integration tests of vmsim-trace: one binary, one module per topic.

#![allow(missing_docs, clippy::unwrap_used)]

mod errors;
mod real_traces;
mod round_trip;
mod synth;

use std::path::PathBuf;

/// A file in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}
