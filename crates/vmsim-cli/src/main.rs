//! `vmsim`: the command-line front end of the vmsim engine.
//!
//! Two layers, as in ripgrep: clap structs in `cmd::*` describe the command
//! line; each subcommand validates them into engine configuration and calls
//! the engine. Errors are `anyhow` here and only here; each is printed as one
//! line and the process exits non-zero.
//!
//! Exit statuses (docs/commands.md): 0 success (also when the reader of
//! standard output closed the pipe); 1 an error, usage errors included, as
//! one line `vmsim: ...` on standard error; 3 `vmsim run` finished but a
//! simulated process was killed (see [`EXIT_KILLED`]). Interrupted by
//! SIGINT/SIGTERM/SIGHUP, vmsim removes its temporary files and dies of the
//! signal.

mod channel;
mod cmd;
mod html;
mod made_dir;
mod output;
mod progress;
mod ship;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Out;

/// The exit status of a `vmsim run` whose report is complete but in which a
/// process was killed (out of memory, segmentation fault), unless
/// `--allow-kills`. Distinct from 1 (an error: no report) so scripts can
/// tell a result they must look at from a failure.
pub const EXIT_KILLED: u8 = 3;

/// A virtual-memory system simulator: page tables, MMU, TLBs, kernel memory
/// management, demand paging and replacement, driven by real traces.
#[derive(Debug, Parser)]
#[command(name = "vmsim", version, about, max_term_width = 100)]
#[command(after_help = "Exit status: 0 success, 1 error (one line on stderr), \
3 `vmsim run` finished but a process was killed.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Alloc(cmd::alloc::AllocArgs),
    Calc(Box<cmd::calc::CalcArgs>),
    Completions(cmd::completions::CompletionsArgs),
    Checkpoint(cmd::checkpoint::CheckpointArgs),
    Exercise(cmd::exercise::ExerciseArgs),
    Explain(cmd::explain::ExplainArgs),
    Man(cmd::completions::ManArgs),
    Migrate(cmd::migrate::MigrateArgs),
    Mrc(Box<cmd::mrc::MrcArgs>),
    Policy(cmd::policy::PolicyArgs),
    Presets(cmd::presets::PresetsArgs),
    Replay(cmd::replay::ReplayArgs),
    Restore(cmd::restore::RestoreArgs),
    Run(cmd::run::RunArgs),
    Sweep(cmd::sweep::SweepArgs),
    Trace(cmd::trace::TraceArgs),
}

fn main() -> ExitCode {
    signals::install();
    let mut out = Out::stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e, &mut out),
    };
    if let Err(e) = swap_cache_from_env() {
        return finish(Err(e), &mut out);
    }
    let result = match cli.command {
        Command::Alloc(args) => cmd::alloc::run(&args, &mut out),
        Command::Calc(args) => cmd::calc::run(&args, &mut out),
        Command::Completions(args) => {
            use clap::CommandFactory;
            cmd::completions::completions(&args, Cli::command(), &mut out)
        }
        Command::Man(args) => {
            use clap::CommandFactory;
            cmd::completions::man(&args, Cli::command(), &mut out)
        }
        Command::Checkpoint(args) => cmd::checkpoint::run(&args, &mut out),
        Command::Replay(args) => cmd::replay::run(&args, &mut out),
        Command::Restore(args) => cmd::restore::run(&args, &mut out),
        Command::Exercise(args) => cmd::exercise::run(&args, &mut out),
        Command::Explain(args) => cmd::explain::run(&args, &mut out),
        Command::Migrate(args) => cmd::migrate::run(&args, &mut out),
        Command::Mrc(args) => cmd::mrc::run(&args, &mut out),
        Command::Presets(args) => cmd::presets::run(&args, &mut out),
        Command::Run(args) => cmd::run::run(&args, &mut out),
        Command::Sweep(args) => cmd::sweep::run(&args, &mut out),
        Command::Policy(args) => cmd::policy::run(&args, &mut out),
        Command::Trace(args) => cmd::trace::run(&args, &mut out),
    };
    finish(result, &mut out)
}

/// `VMSIM_SWAP_CACHE` (a size: `64MiB`, `0` for none) bounds the host
/// memory each swap device's write-back cache may hold (default
/// [`vmsim::swap::DEFAULT_CACHE_BYTES`]). Not a configuration key: it
/// changes how fast a run goes, never what it reports.
fn swap_cache_from_env() -> anyhow::Result<()> {
    let Some(v) = std::env::var_os("VMSIM_SWAP_CACHE") else {
        return Ok(());
    };
    let text = v.to_string_lossy();
    let bytes = vmsim::units::parse_size(text.trim()).map_err(|e| {
        anyhow::anyhow!("VMSIM_SWAP_CACHE={text}: {e} (expected a size such as 64MiB, or 0)")
    })?;
    vmsim::swap::set_default_cache_bytes(bytes);
    Ok(())
}

/// Flushes standard output and turns the command's result into the exit
/// status, printing at most one line on standard error.
fn finish(result: anyhow::Result<()>, out: &mut Out) -> ExitCode {
    let flushed = out.flush();
    let result = match (result, flushed) {
        // A report was printed: if it did not reach its reader, say that instead.
        (Err(e), Err(f)) if e.downcast_ref::<cmd::run::Killed>().is_some() => Err(f.into()),
        (Err(e), _) => Err(e),
        (Ok(()), Err(f)) => Err(f.into()),
        (Ok(()), Ok(())) => Ok(()),
    };
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if output::stdout_failure(&err) == Some(std::io::ErrorKind::BrokenPipe) {
        // The reader has what it wanted (`vmsim ... | head`): not an error.
        return ExitCode::SUCCESS;
    }
    let code = if err.downcast_ref::<cmd::run::Killed>().is_some() {
        ExitCode::from(EXIT_KILLED)
    } else {
        ExitCode::FAILURE
    };
    // If even standard error fails there is no one left to tell.
    let _ = output::to_stderr(&format!("vmsim: {}", one_line(&err)));
    code
}

/// `--help` and `--version` go to standard output like any other output;
/// a usage error is one line on standard error, exit status 1, like every
/// other error.
fn clap_exit(e: &clap::Error, out: &mut Out) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let text = e.render().to_string();
            let r = out.write_all(text.as_bytes()).map_err(anyhow::Error::from);
            finish(r, out)
        }
        _ => {
            let _ = output::to_stderr(&format!("vmsim: {}", usage_line(e)));
            ExitCode::FAILURE
        }
    }
}

/// clap's error as one line: the message, its tips and possible values in
/// parentheses, and where to read more (`see 'vmsim run --help'`).
fn usage_line(e: &clap::Error) -> String {
    let command = subcommand_path(std::env::args().skip(1));
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return format!("`{command}` needs a subcommand; see '{command} --help'");
    }
    let text = e.render().to_string();
    let mut lines = text.lines();
    let mut line = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error:")
        .trim()
        .to_owned();
    for l in lines.map(str::trim) {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if let Some(tip) = l.strip_prefix("tip:") {
            line.push_str(&format!(" ({})", tip.trim()));
        } else if let Some(values) = l.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            line.push_str(&format!(" ({values})"));
        } else if !l.is_empty() {
            // The arguments a "required arguments were not provided" names.
            line.push(' ');
            line.push_str(l);
        }
    }
    line.push_str(&format!("; see '{command} --help'"));
    line
}

/// `vmsim` and the subcommands named on the command line (`vmsim calc eat`).
fn subcommand_path(args: impl Iterator<Item = String>) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec!["vmsim".to_owned()];
    for a in args {
        if a.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(&a) {
            Some(sub) => {
                path.push(sub.get_name().to_owned());
                let sub = sub.clone();
                cmd = sub;
            }
            None => break,
        }
    }
    path.join(" ")
}

/// The error and its causes on one line (see [`vmsim::error_line`]).
fn one_line(err: &anyhow::Error) -> String {
    vmsim::error_line::one_line(err.as_ref())
}
