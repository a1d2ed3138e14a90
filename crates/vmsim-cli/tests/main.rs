//! Integration tests of the `vmsim` binary: one test binary, one module per subcommand.

#![allow(clippy::unwrap_used)]

mod calc;
mod common;
mod explain;
mod policy;
mod robustness;
mod run;
mod trace;
