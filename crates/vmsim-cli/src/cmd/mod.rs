//! One module per subcommand: its clap arguments and its `run` function.

pub mod explain;
pub mod policy;
