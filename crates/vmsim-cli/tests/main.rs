//! Integration tests of the `vmsim` binary, one module per subcommand.

mod policy;
