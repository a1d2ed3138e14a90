//! `vmsim`: the command-line front end of the vmsim engine.
//!
//! Two layers, as in ripgrep: clap structs in `cmd::*` describe the command
//! line; each subcommand validates them into engine configuration and calls
//! the engine. Errors are `anyhow` here and only here; each is printed as one
//! line and the process exits non-zero.

mod cmd;
mod parse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A virtual-memory system simulator: page tables, MMU, TLBs, kernel memory
/// management, demand paging and replacement, driven by real traces.
#[derive(Debug, Parser)]
#[command(name = "vmsim", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Explain(cmd::explain::ExplainArgs),
    Policy(cmd::policy::PolicyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(args) => cmd::explain::run(&args),
        Command::Policy(args) => cmd::policy::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vmsim: {err:#}");
            ExitCode::FAILURE
        }
    }
}
