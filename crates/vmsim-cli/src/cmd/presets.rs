//! `vmsim presets`: the named machine configurations, with every setting.

use clap::Args;
use vmsim::config::PRESETS;

/// List the presets `vmsim run --preset NAME` accepts, with their settings
/// as TOML (any of these keys can be changed with --set or a --config file).
///
/// Examples:
///   vmsim presets
///   vmsim presets x86-64
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PresetsArgs {
    /// Print only this preset.
    pub name: Option<String>,
}

/// Runs `vmsim presets`.
pub fn run(args: &PresetsArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let mut found = false;
    for p in PRESETS {
        if args.name.as_deref().is_some_and(|n| n != p.name) {
            continue;
        }
        found = true;
        writeln!(out, "# preset {}: {}", p.name, p.summary)?;
        writeln!(out, "{}", p.config()?.to_toml())?;
    }
    if !found {
        anyhow::bail!(
            "unknown preset '{}' (expected one of: {})",
            args.name.as_deref().unwrap_or_default(),
            PRESETS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
