//! Integration tests of vmsim-trace: one binary, one module per topic.

#![allow(missing_docs, clippy::unwrap_used)]

mod errors;
mod real_traces;
mod round_trip;
mod synth;

use std::path::PathBuf;

use vmsim_trace::{Access, TraceSource};

/// A file in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Every access of a source, or its first error.
pub fn collect<S: TraceSource>(src: &mut S) -> Result<Vec<Access>, vmsim_trace::TraceError> {
    let mut all = Vec::new();
    let mut batch = Vec::new();
    while src.next_batch(&mut batch)? > 0 {
        all.extend_from_slice(&batch);
    }
    Ok(all)
}
