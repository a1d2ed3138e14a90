//! How `vmsim calc` writes numbers for people and for JSON: binary units
//! with the exact value beside them, powers of two as `2^n`, and values past
//! `u64` as JSON strings.

use serde_json::Value;
use vmsim::units::{BINARY_UNITS as UNITS, exact_unit};

/// `1234567` -> `1,234,567`.
pub fn group(v: u128) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The exponent `n` when `v == 2^n`.
pub fn log2_exact(v: u128) -> Option<u32> {
    v.is_power_of_two().then(|| v.trailing_zeros())
}

/// A count: `48`, `1,000`, or `2^20 (1,048,576)` for powers of two from 1024 up.
pub fn count(v: u128) -> String {
    match log2_exact(v) {
        Some(n) if n >= 10 => format!("2^{n} ({})", group(v)),
        _ => group(v),
    }
}

/// A byte count with a binary unit and, from 1 KiB up, the exact number of
/// bytes in parentheses: the largest unit that divides it when that reads
/// well (`4 MiB`, `4000 MiB`), else an approximation in the largest unit
/// below it (`~1.00 GiB`).
pub fn bytes(v: u128) -> String {
    let (value, unit) = exact_unit(v);
    if unit == 0 && value < 10_000 {
        return format!("{v} B");
    }
    let short = if value < 10_000 {
        format!("{value} {}", UNITS[unit])
    } else {
        let mut unit = 0;
        while unit + 1 < UNITS.len() && v >> (10 * (unit + 1)) > 0 {
            unit += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let approx = v as f64 / (1u128 << (10 * unit)) as f64;
        format!("~{approx:.2} {}", UNITS[unit])
    };
    format!("{short} ({} B)", group(v))
}

/// A byte count in the largest binary unit that divides it, without the
/// exact value (for page sizes in titles: `4 KiB`, `96 B`).
pub use vmsim::units::format_size_u128 as size;

/// A float with at most `decimals` decimals and no trailing zeros: `25`,
/// `18.75`, `0.999023`.
pub fn float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.');
        if trimmed == "-0" {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        }
    } else {
        s
    }
}

/// A JSON number when the value fits `u64`, else its decimal digits as a
/// JSON string (documented in the long help).
pub fn json_u128(v: u128) -> Value {
    u64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(group(1_048_576), "1,048,576");
        assert_eq!(group(100), "100");
        assert_eq!(count(1 << 20), "2^20 (1,048,576)");
        assert_eq!(count(512), "512");
        assert_eq!(count(48), "48");
        assert_eq!(bytes(48), "48 B");
        assert_eq!(bytes(4 << 20), "4 MiB (4,194,304 B)");
        assert_eq!(bytes(4000 << 20), "4000 MiB (4,194,304,000 B)");
        assert_eq!(bytes((1 << 30) + 8), "~1.00 GiB (1,073,741,832 B)");
        assert_eq!(bytes(32 << 50), "32 PiB (36,028,797,018,963,968 B)");
        assert_eq!(bytes(1536), "1536 B");
        assert_eq!(bytes(1 << 68), "256 EiB (295,147,905,179,352,825,856 B)");
        assert_eq!(size(64), "64 B");
        assert_eq!(size(2 << 20), "2 MiB");
        assert_eq!(float(25.0, 4), "25");
        assert_eq!(float(18.75, 4), "18.75");
        assert_eq!(float(139.999_999_999_999_97, 3), "140");
        assert_eq!(json_u128(5), Value::from(5u64));
        assert_eq!(
            json_u128(1 << 64),
            Value::String("18446744073709551616".into())
        );
    }
}
