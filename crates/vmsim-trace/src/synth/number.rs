//! Numbers as users type them in a `synth:` spec: `64MiB`, `4KiB`, `10M`,
//! `0x10000000`, `1_000_000`, `0.3`.
//!
//! Owns number syntax only. Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`) are
//! powers of 1024; bare `K`, `M`, `G`, `T` are powers of 1000, so `refs=10M` is
//! ten million and `bytes=64MiB` is 2^26. Suffixes are case-insensitive.

/// Parses an unsigned integer with an optional size suffix. On failure says what was expected.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16)
            .map_err(|_| format!("'{text}' is not a hex number that fits in 64 bits"));
    }
    const SUFFIXES: [(&str, u64); 8] = [
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("tib", 1 << 40),
        ("k", 1_000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("t", 1_000_000_000_000),
    ];
    let (digits, mult) = SUFFIXES
        .iter()
        .find_map(|&(s, m)| lower.strip_suffix(s).map(|d| (d, m)))
        .unwrap_or((lower.as_str(), 1));
    let bad = || {
        format!(
            "'{text}' is not a number (expected e.g. 4096, 0x1000, 4KiB, 64MiB, 10M; KiB/MiB/GiB/TiB = 1024^n, K/M/G/T = 1000^n)"
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{text}' does not fit in 64 bits"))
}

/// Parses a finite decimal number such as `0.3` or `1`.
pub fn parse_f64(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "'{text}' is not a decimal number (expected e.g. 0.3)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts() {
        assert_eq!(parse_u64("64MiB"), Ok(64 << 20));
        assert_eq!(parse_u64("4KiB"), Ok(4096));
        assert_eq!(parse_u64("4kib"), Ok(4096));
        assert_eq!(parse_u64("10M"), Ok(10_000_000));
        assert_eq!(parse_u64("1_000"), Ok(1000));
        assert_eq!(parse_u64("0x10000000"), Ok(0x1000_0000));
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert!(parse_u64("64MB").is_err());
        assert!(parse_u64("").is_err());
        assert!(parse_u64("-1").is_err());
        assert!(parse_u64("20000000TiB").is_err());
        assert_eq!(parse_f64("0.25"), Ok(0.25));
        assert!(parse_f64("nan").is_err());
    }
}
