//! One module per subcommand: its clap arguments and its `run` function.

pub mod alloc;
pub mod calc;
pub mod checkpoint;
pub mod completions;
pub mod exercise;
pub mod explain;
pub mod migrate;
pub mod mrc;
pub mod pages;
pub mod plot;
pub mod policy;
pub mod presets;
pub mod replay;
pub mod report_text;
pub mod restore;
pub mod run;
pub mod sweep;
pub mod trace;
