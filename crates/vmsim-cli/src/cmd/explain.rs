//! `vmsim explain`: how the hardware splits and translates one address.

use clap::Args;

/// Show how an address is split and translated.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The virtual address.
    pub address: String,
}

/// Runs `vmsim explain`.
pub fn run(args: &ExplainArgs) -> anyhow::Result<()> {
    let _ = crate::parse::parse_u64(&args.address)?;
    Ok(())
}
