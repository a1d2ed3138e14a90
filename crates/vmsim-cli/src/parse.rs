//! Parsing of the numbers and sizes users type on the command line.

use anyhow::{Context, bail};

/// Parses an unsigned number: decimal, `0x` hex, `0b` binary or `0o` octal,
/// with `_` allowed as a digit separator.
pub fn parse_u64(text: &str) -> anyhow::Result<u64> {
    let t = text.trim().replace('_', "");
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b, 2)
    } else if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        (o, 8)
    } else {
        (t.as_str(), 10)
    };
    if digits.is_empty() {
        bail!("'{text}' is not a number");
    }
    u64::from_str_radix(digits, radix)
        .with_context(|| format!("'{text}' is not a number that fits in 64 bits (expected decimal, 0x hex, 0b binary or 0o octal)"))
}
