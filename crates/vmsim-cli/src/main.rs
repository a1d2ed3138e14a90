//! `vmsim`: the command-line front end of the vmsim engine.
//!
//! Two layers, as in ripgrep: clap structs in `cmd::*` describe the command
//! line; each subcommand validates them into engine configuration and calls
//! the engine. Errors are `anyhow` here and only here; each is printed as one
//! line and the process exits non-zero.

mod cmd;
mod html;

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
    Alloc(cmd::alloc::AllocArgs),
    Calc(Box<cmd::calc::CalcArgs>),
    Exercise(cmd::exercise::ExerciseArgs),
    Explain(cmd::explain::ExplainArgs),
    Mrc(Box<cmd::mrc::MrcArgs>),
    Policy(cmd::policy::PolicyArgs),
    Presets(cmd::presets::PresetsArgs),
    Run(cmd::run::RunArgs),
    Sweep(cmd::sweep::SweepArgs),
    Trace(cmd::trace::TraceArgs),
}

/// A reader that closed the pipe (`vmsim ... | head`) is not an error of
/// vmsim: `println!` panics on EPIPE, so stop quietly instead, with the exit
/// status a shell gives a process killed by SIGPIPE.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Alloc(args) => cmd::alloc::run(&args),
        Command::Calc(args) => cmd::calc::run(&args),
        Command::Exercise(args) => cmd::exercise::run(&args),
        Command::Explain(args) => cmd::explain::run(&args),
        Command::Mrc(args) => cmd::mrc::run(&args),
        Command::Presets(args) => cmd::presets::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Sweep(args) => cmd::sweep::run(&args),
        Command::Policy(args) => cmd::policy::run(&args),
        Command::Trace(args) => cmd::trace::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vmsim: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. Library errors often already say
/// their cause (`{path}: {source}`); a cause is added only if the line does
/// not contain it yet, so nothing is said twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line.replace('\n', " ")
}
