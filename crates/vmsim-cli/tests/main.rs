//! Integration tests of the `vmsim` binary: one test binary, one module per subcommand.

#![allow(missing_docs, clippy::unwrap_used)]

mod trace;
