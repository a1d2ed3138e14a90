//! One module per subcommand: its clap arguments and its `run` function.

pub mod calc;
pub mod checkpoint;
pub mod explain;
pub mod plot;
pub mod policy;
pub mod presets;
pub mod replay;
pub mod report_text;
pub mod restore;
pub mod run;
pub mod trace;
