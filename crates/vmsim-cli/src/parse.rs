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

/// The unit suffixes [`parse_size`] accepts, for error messages.
pub const SIZE_SUFFIXES: &str = "B, K, KiB, M, MiB, G, GiB, T, TiB, P, PiB, E, EiB (powers of two)";

/// Parses a size in bytes: a number as [`parse_u64`] reads it, optionally
/// followed by a binary unit (`4KiB`, `4 KiB`, `4K`, `2MiB`, `1G`). Every
/// unit is a power of two: K = KiB = 1024. `KB`, `MB`, ... are refused
/// because they are ambiguous (1000 or 1024?). With a hex number, separate
/// the unit by a space (`0x10 KiB`): `B` and `E` are hex digits.
///
/// Returns a `u128` so the end of a 64-bit address space (`16EiB` = 2^64)
/// can be written.
pub fn parse_size_u128(text: &str) -> anyhow::Result<u128> {
    let t = text.trim();
    let split = number_len(t);
    let (number, suffix) = t.split_at(split);
    let suffix = suffix.trim();
    if number.is_empty() {
        bail!("size '{text}' is not a number (expected e.g. 4096, 4KiB, 0x1000)");
    }
    let value = parse_u64(number).with_context(|| format!("size '{text}'"))?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        "P" | "PIB" => 50,
        "E" | "EIB" => 60,
        "KB" | "MB" | "GB" | "TB" | "PB" | "EB" => bail!(
            "size '{text}': '{suffix}' is ambiguous (1000 or 1024?); write {}iB or {} (powers of two)",
            &suffix[..1].to_ascii_uppercase(),
            &suffix[..1].to_ascii_uppercase()
        ),
        _ => bail!("size '{text}': unknown unit '{suffix}'; accepted units: {SIZE_SUFFIXES}"),
    };
    // value < 2^64 and shift <= 60: the product is below 2^124.
    Ok(u128::from(value) << shift)
}

/// Length of the leading number of `t`: a radix prefix (`0x`, `0b`, `0o`)
/// with its digits, or decimal digits; `_` separators included. A prefix
/// with no digit after it is not a prefix (`0B` is zero bytes).
fn number_len(t: &str) -> usize {
    let lower = t.get(..2).map(str::to_ascii_lowercase);
    let digit: fn(char) -> bool = match lower.as_deref() {
        Some("0x") => |c| c.is_ascii_hexdigit(),
        Some("0b") => |c| c == '0' || c == '1',
        Some("0o") => |c| ('0'..='7').contains(&c),
        _ => |c| c.is_ascii_digit(),
    };
    let prefixed = lower
        .as_deref()
        .is_some_and(|p| matches!(p, "0x" | "0b" | "0o"));
    let run = |from: usize, digit: fn(char) -> bool| {
        from + t[from..]
            .find(|c: char| !(digit(c) || c == '_'))
            .unwrap_or(t.len() - from)
    };
    if prefixed && run(2, digit) > 2 {
        run(2, digit)
    } else {
        run(0, |c| c.is_ascii_digit())
    }
}

/// Parses a size in bytes that must fit in 64 bits; see [`parse_size_u128`].
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let bytes = parse_size_u128(text)?;
    u64::try_from(bytes).with_context(|| format!("size '{text}' does not fit in 64 bits"))
}

/// Parses an address range `START-END` (END exclusive), each side a size as
/// [`parse_size_u128`] reads it: `0-2KiB`, `0x3000-0x4000`, `3KiB-4KiB`.
pub fn parse_range(text: &str) -> anyhow::Result<(u128, u128)> {
    let Some((start, end)) = text.split_once('-') else {
        bail!("range '{text}': expected START-END (END exclusive), e.g. 0-2KiB");
    };
    let start = parse_size_u128(start).with_context(|| format!("range '{text}': start"))?;
    let end = parse_size_u128(end).with_context(|| format!("range '{text}': end"))?;
    Ok((start, end))
}

/// Parses a comma- (or `+`-) separated list of small numbers, e.g. level
/// bits `9,9,9` or `2+4`.
pub fn parse_u32_list(text: &str) -> anyhow::Result<Vec<u32>> {
    text.split([',', '+'])
        .map(|part| {
            let part = part.trim();
            part.parse::<u32>()
                .with_context(|| format!("list '{text}': '{part}' is not a whole number"))
        })
        .collect()
}

/// Parses a ratio in `[0, 1]`, written as a fraction (`0.98`) or a
/// percentage (`98%`).
pub fn parse_ratio(text: &str) -> anyhow::Result<f64> {
    let t = text.trim();
    let value = if let Some(pct) = t.strip_suffix('%') {
        pct.trim()
            .parse::<f64>()
            .with_context(|| format!("'{text}' is not a percentage"))?
            / 100.0
    } else {
        t.parse::<f64>()
            .with_context(|| format!("'{text}' is not a number (expected e.g. 0.98 or 98%)"))?
    };
    if !(0.0..=1.0).contains(&value) {
        bail!("'{text}' is outside [0, 1] (expected e.g. 0.98 or 98%)");
    }
    Ok(value)
}

/// Parses a non-negative, finite number of nanoseconds (`20`, `0.5`).
pub fn parse_ns(text: &str) -> anyhow::Result<f64> {
    let value = text
        .trim()
        .parse::<f64>()
        .with_context(|| format!("'{text}' is not a number of nanoseconds"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("'{text}' is not a finite non-negative number of nanoseconds");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_binary_units() {
        let ok = |t: &str| parse_size(t).expect(t);
        assert_eq!(ok("64"), 64);
        assert_eq!(ok("4KiB"), 4096);
        assert_eq!(ok("4 KiB"), 4096);
        assert_eq!(ok("4k"), 4096);
        assert_eq!(ok("2MiB"), 2 << 20);
        assert_eq!(ok("1G"), 1 << 30);
        assert_eq!(ok("1 TiB"), 1 << 40);
        assert_eq!(ok("0x1000"), 4096);
        assert_eq!(ok("0x10 KiB"), 16 << 10);
        assert_eq!(ok("0b1000000"), 64);
        assert_eq!(ok("0B"), 0);
        assert_eq!(ok("16B"), 16);
        assert_eq!(ok("1_024"), 1024);
        assert_eq!(parse_size_u128("16EiB").expect("2^64"), 1u128 << 64);
        assert!(parse_size("16EiB").is_err());
    }

    #[test]
    fn sizes_refuse_ambiguous_and_unknown_units() {
        let err = |t: &str| format!("{:#}", parse_size(t).expect_err(t));
        assert!(err("4KB").contains("ambiguous"), "{}", err("4KB"));
        assert!(err("4KB").contains("KiB"));
        assert!(err("4 parsecs").contains("accepted units: B, K, KiB"));
        assert!(err("KiB").contains("not a number"));
        assert!(err("1.5KiB").contains("unknown unit '.5KiB'"));
        assert!(err("-4").contains("not a number"));
    }

    #[test]
    fn ranges_lists_ratios_times() {
        assert_eq!(parse_range("0-2KiB").expect("range"), (0, 2048));
        assert_eq!(parse_range("3KiB - 4KiB").expect("range"), (3072, 4096));
        assert!(parse_range("3KiB").is_err());
        assert!(parse_range("x-4").is_err());
        assert_eq!(parse_u32_list("9,9,9").expect("list"), vec![9, 9, 9]);
        assert_eq!(parse_u32_list("2+4").expect("list"), vec![2, 4]);
        assert!(parse_u32_list("2,,4").is_err());
        assert_eq!(parse_ratio("0.98").expect("ratio"), 0.98);
        assert_eq!(parse_ratio("50%").expect("ratio"), 0.5);
        assert!(parse_ratio("1.01").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("NaN").is_err());
        assert_eq!(parse_ns("20").expect("ns"), 20.0);
        assert!(parse_ns("-1").is_err());
        assert!(parse_ns("inf").is_err());
    }
}
