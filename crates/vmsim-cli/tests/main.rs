//! Integration tests of the `vmsim` binary: one test binary, one module per subcommand.

#![allow(clippy::unwrap_used)]

mod alloc;
mod calc;
mod checkpoint;
mod common;
mod completions;
mod docs;
mod exercise;
mod explain;
mod html;
mod json_keys;
mod json_schema;
mod migrate;
mod mrc;
mod policy;
mod recover;
mod robustness;
mod run;
mod sweep;
mod trace;
