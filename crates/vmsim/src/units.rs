//! Sizes as users write them: `4096`, `4KiB`, `4K`, `2MiB`, `1G`.
//!
//! Units are powers of two (K = KiB = 1024), as page and memory sizes are
//! always meant; decimal kilobytes are rejected rather than guessed at.

use thiserror::Error;

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "'{text}' is not a size: {why} (write e.g. 4096, 4KiB, 4K, 2MiB, 1G; units B, K/KiB, M/MiB, G/GiB, T/TiB, P/PiB are powers of two)"
)]
pub struct SizeError {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses a byte count with an optional binary unit; `0x` hex numbers are accepted without a unit.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let err = |why| SizeError {
        text: text.to_string(),
        why,
    };
    let t = text.trim().replace('_', "");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| err("bad hexadecimal number"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(err("no number"));
    }
    let value: u64 = digits.parse().map_err(|_| err("number too large"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "p" | "pib" => 50,
        "kb" | "mb" | "gb" | "tb" => {
            return Err(err("decimal units are ambiguous; use KiB/MiB/GiB"));
        }
        _ => return Err(err("unknown unit")),
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| err("larger than 2^64 - 1 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert!(parse_size("4KB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999P").is_err());
    }
}
