//! `vmsim completions SHELL` and `vmsim man [SUBCOMMAND]`: shell completion
//! scripts and manual pages generated from the same clap definitions as the
//! command line itself (clap_complete, clap_mangen), so they can never
//! disagree with it.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use clap_complete::Shell;

/// Print a shell completion script for vmsim.
///
/// Examples:
///   vmsim completions bash > ~/.local/share/bash-completion/completions/vmsim
///   vmsim completions zsh > "${fpath[1]}/_vmsim"
///   vmsim completions fish > ~/.config/fish/completions/vmsim.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print vmsim's manual page (roff) to standard output.
///
/// Examples:
///   vmsim man > vmsim.1 && man ./vmsim.1
///   vmsim man run > vmsim-run.1
///   vmsim man | gzip > ~/.local/share/man/man1/vmsim.1.gz
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {
    /// A subcommand (`run`, `trace convert`, ...): its own page, named vmsim-SUBCOMMAND.
    pub subcommand: Vec<String>,
}

/// Runs `vmsim completions`.
///
/// # Errors
/// Standard output cannot be written.
pub fn completions(
    args: &CompletionsArgs,
    mut cmd: clap::Command,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "vmsim", &mut buf);
    out.write_all(&buf)?;
    Ok(())
}

/// Runs `vmsim man`.
///
/// # Errors
/// An unknown subcommand, or standard output cannot be written.
pub fn man(args: &ManArgs, cmd: clap::Command, out: &mut impl Write) -> anyhow::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    let mut name = vec!["vmsim".to_owned()];
    for s in &args.subcommand {
        let Some(sub) = cmd.find_subcommand(s).cloned() else {
            let known: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
            if known.is_empty() {
                bail!("`{}` has no subcommands", name.join(" "));
            }
            bail!(
                "`{} {s}`: no such subcommand (one of: {})",
                name.join(" "),
                known.join(", ")
            );
        };
        name.push(sub.get_name().to_owned());
        cmd = sub;
    }
    let title = name.join("-");
    let cmd = cmd.name(title.clone()).bin_name(name.join(" "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(title.to_uppercase())
        .section("1")
        .source(format!("vmsim {}", env!("CARGO_PKG_VERSION")))
        .manual("vmsim manual")
        .render(&mut buf)
        .context("cannot render the manual page")?;
    out.write_all(&buf)?;
    Ok(())
}
