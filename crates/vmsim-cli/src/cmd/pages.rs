//! Trace inputs read as pages, shared by `policy` and `mrc`: the page size
//! flag, the refusal of scenario files, and reading into a dense trace.

use std::path::Path;

use anyhow::{Context, bail};
use vmsim::reclaim::lab::DenseTrace;
use vmsim_trace::scenario::Scenario;
use vmsim_trace::source::SYNTH_PREFIX;
use vmsim_trace::{PageSource, open_pages};

/// Parses `--page-size`: a power of two of at least one byte.
pub fn page_size(text: &str) -> anyhow::Result<u64> {
    let v = vmsim::units::parse_size(text).context("--page-size")?;
    if !v.is_power_of_two() {
        bail!("--page-size: {text} is not a power of two (e.g. 4KiB, 2MiB, 64)");
    }
    Ok(v)
}

/// Whether `input` names a scenario file (which has several processes and
/// no single page stream).
pub fn is_scenario(input: &str) -> bool {
    if input.starts_with(SYNTH_PREFIX) || input == "-" || !Path::new(input).is_file() {
        return false;
    }
    use std::io::Read;
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(input)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    Scenario::sniff(&head[..n])
}

/// Opens `input` as page references (`force_numbers`: as a page-number file).
pub fn open(input: &str, page_size: u64, force_numbers: bool) -> anyhow::Result<PageSource> {
    if !force_numbers && is_scenario(input) {
        bail!(
            "{input} is a scenario file (several processes): give its traces, or run it with `vmsim run`"
        );
    }
    Ok(open_pages(input, page_size, force_numbers)?)
}

/// Reads all of `input` as a dense trace; returns it and the number of
/// accesses read.
pub fn read_dense(
    input: &str,
    page_size: u64,
    force_numbers: bool,
) -> anyhow::Result<(DenseTrace, u64)> {
    let mut src = open(input, page_size, force_numbers)?;
    let name = if input == "-" { "<stdin>" } else { input };
    Ok(DenseTrace::read(&mut src, name)?)
}
