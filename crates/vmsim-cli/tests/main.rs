//! Integration tests of the `vmsim` binary: one test binary, one module per subcommand.

mod calc;
mod explain;
mod trace;
