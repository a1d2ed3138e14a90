//! Numbers and sizes as users type them, everywhere in vmsim: command-line
//! flags, config and scenario files, TLB configs and `synth:` specs.
//!
//! This module is the one place that owns number syntax; every other crate
//! calls it (the engine re-exports it as `vmsim::units`). It owns spelling
//! only: what a value means (a page size must be a power of two, a ratio
//! belongs to a hit rate) is the caller's business.
//!
//! # The rules
//!
//! - **Numbers** ([`parse_u64`]): decimal, `0x` hex, `0b` binary or `0o`
//!   octal (prefix in either case), `_` allowed as a digit separator
//!   (`1_000_000`), surrounding white space ignored. No sign.
//! - **Sizes in bytes** ([`parse_size`], [`parse_size_u128`]): a number,
//!   then optionally a binary unit, with or without a space: `B`, `K`/`KiB`,
//!   `M`/`MiB`, `G`/`GiB`, `T`/`TiB`, `P`/`PiB`, `E`/`EiB`, case-insensitive.
//!   Every unit is a power of two (K = KiB = 1024), as page and memory
//!   sizes are always meant. `KB`, `MB`, ... are refused as ambiguous (1000
//!   or 1024?) rather than guessed at. `B` and `E` are hex digits, so after a
//!   hex number separate the unit by a space (`0x10 KiB`); `0B` is zero bytes.
//!   [`parse_size_u128`] reaches 2^64 (`16EiB`), the end of a 64-bit address
//!   space, for range ends ([`parse_range`]).
//! - **Counts** ([`parse_count`]: references, pages, repeats): a number,
//!   then optionally `K`, `M`, `G`, `T` = 10^3, 10^6, 10^9, 10^12 (so
//!   `refs=10M` is ten million) or `Ki`/`KiB`, `Mi`/`MiB`, `Gi`/`GiB`,
//!   `Ti`/`TiB` = 2^10 ... 2^40 (`memory.frames=4Ki` is 4096 frames).
//!   `KB`, `MB`, ... are refused here too.
//! - **In config files and `--set`** ([`count`], [`size`] and their
//!   `_opt` forms, for serde's `deserialize_with`): a bare integer, or a
//!   string in the count or size syntax (`frames = "4Ki"`, `stack_limit =
//!   "8MiB"`).
//! - **Decimals** ([`parse_f64`]): a finite floating-point number (`0.3`,
//!   `1e-3`); [`parse_ratio`] also takes a percentage (`98%`) and checks
//!   `[0, 1]`; [`parse_non_negative`] checks `>= 0` (times in nanoseconds).
//!
//! Errors are a [`NumberError`] that quotes the text and says what was
//! expected; callers add the field or flag name.
//!
//! The way back: [`format_size`] writes a byte count in the largest binary
//! unit that divides it (`4 KiB`, `96 B`), which [`parse_size`] reads again.

use std::borrow::Cow;

use serde::Deserialize;
use thiserror::Error;

/// The unit suffixes [`parse_size`] accepts, for error messages and help.
pub const SIZE_UNITS: &str = "B, K, KiB, M, MiB, G, GiB, T, TiB, P, PiB, E, EiB (powers of two)";

/// The unit suffixes [`parse_count`] accepts, for error messages and help.
pub const COUNT_UNITS: &str =
    "K, M, G, T (powers of 1000), Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB (powers of 1024)";

/// Text that is not the number it should be: the text, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberError {
    /// No number where one was expected, or digits of the wrong radix.
    #[error(
        "'{text}' is not a {what} (expected {example}; decimal, 0x hex, 0b binary or 0o octal, `_` between digits)"
    )]
    NotANumber {
        /// What was given.
        text: String,
        /// What was expected: "number", "number of bytes".
        what: &'static str,
        /// A few valid spellings.
        example: &'static str,
    },
    /// A well-formed number too large for its type.
    #[error("'{text}' does not fit in {bits} bits")]
    TooLarge {
        /// What was given.
        text: String,
        /// The width it must fit in.
        bits: u32,
    },
    /// A decimal unit (`KB`, `MB`, ...), which could mean 1000 or 1024.
    #[error(
        "'{text}' is not a {what}: '{unit}' is ambiguous (1000 or 1024?); write {stem}iB or {stem} ({meaning})"
    )]
    AmbiguousUnit {
        /// What was given.
        text: String,
        /// What was expected: "number of bytes", "number".
        what: &'static str,
        /// The unit as written.
        unit: String,
        /// Its first letter, upper case (`K` for `kb`).
        stem: char,
        /// What the accepted spellings mean here.
        meaning: &'static str,
    },
    /// A suffix that is no unit.
    #[error("'{text}': unknown unit '{unit}'; accepted units: {accepted}")]
    UnknownUnit {
        /// What was given.
        text: String,
        /// The suffix as written.
        unit: String,
        /// The accepted units ([`SIZE_UNITS`] or [`COUNT_UNITS`]).
        accepted: &'static str,
    },
    /// Not a finite decimal number.
    #[error("'{text}' is not a decimal number (expected e.g. {example})")]
    NotADecimal {
        /// What was given.
        text: String,
        /// A valid spelling.
        example: &'static str,
    },
    /// A decimal number outside the range the value allows.
    #[error("'{text}' is outside {range} (expected e.g. {example})")]
    OutOfRange {
        /// What was given.
        text: String,
        /// The allowed range, e.g. `[0, 1]`.
        range: &'static str,
        /// A valid spelling.
        example: &'static str,
    },
    /// A range without its `-`.
    #[error("range '{text}': expected START-END (END exclusive), e.g. 0-2KiB")]
    NotARange {
        /// What was given.
        text: String,
    },
    /// One side of a range is not a size.
    #[error("range '{text}': {side}: {source}")]
    RangeSide {
        /// The whole range.
        text: String,
        /// `start` or `end`.
        side: &'static str,
        /// What is wrong with that side.
        source: Box<NumberError>,
    },
    /// One item of a list is not a number.
    #[error("list '{text}': {source}")]
    ListItem {
        /// The whole list.
        text: String,
        /// What is wrong with the item.
        source: Box<NumberError>,
    },
}

/// Splits `t` into its leading number (radix prefix and digits, `_`
/// included) and the rest. A prefix with no digit after it is no prefix:
/// `0B` is the number 0 and the unit `B`.
fn split_number(t: &str) -> (&str, &str) {
    let lower = t.get(..2).map(str::to_ascii_lowercase);
    let digit: fn(char) -> bool = match lower.as_deref() {
        Some("0x") => |c| c.is_ascii_hexdigit(),
        Some("0b") => |c| c == '0' || c == '1',
        Some("0o") => |c| ('0'..='7').contains(&c),
        _ => |c| c.is_ascii_digit(),
    };
    let prefixed = matches!(lower.as_deref(), Some("0x" | "0b" | "0o"));
    let run = |from: usize, digit: fn(char) -> bool| {
        from + t[from..]
            .find(|c: char| !(digit(c) || c == '_'))
            .unwrap_or(t.len() - from)
    };
    let end = if prefixed && run(2, digit) > 2 {
        run(2, digit)
    } else {
        run(0, |c| c.is_ascii_digit())
    };
    t.split_at(end)
}

/// Reads a number (no unit); `what` and `example` go into the error.
fn number(text: &str, what: &'static str, example: &'static str) -> Result<u64, NumberError> {
    // Allocation-free unless `_` separators are present: token readers
    // (the reference-string lab) call this once per reference.
    let trimmed = text.trim();
    let t: Cow<'_, str> = if trimmed.contains('_') {
        Cow::Owned(trimmed.replace('_', ""))
    } else {
        Cow::Borrowed(trimmed)
    };
    let (digits, radix) = match t.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("0x") => (&t[2..], 16),
        Some(p) if p.eq_ignore_ascii_case("0b") => (&t[2..], 2),
        Some(p) if p.eq_ignore_ascii_case("0o") => (&t[2..], 8),
        _ => (&t[..], 10),
    };
    let not_a_number = || NumberError::NotANumber {
        text: text.to_owned(),
        what,
        example,
    };
    // from_str_radix takes a leading `+`; a number here has no sign.
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(not_a_number());
    }
    u64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => NumberError::TooLarge {
            text: text.to_owned(),
            bits: 64,
        },
        _ => not_a_number(),
    })
}

/// Parses an unsigned number: decimal, `0x` hex, `0b` binary or `0o` octal,
/// `_` allowed as a digit separator. For addresses, seeds, entry sizes.
pub fn parse_u64(text: &str) -> Result<u64, NumberError> {
    number(text, "number", "e.g. 4096, 0x1000")
}

/// Parses a size in bytes: a number as [`parse_u64`] reads it, optionally
/// followed by a binary unit (see the module docs). Returns a `u128` so the
/// end of a 64-bit address space (`16EiB` = 2^64) can be written.
pub fn parse_size_u128(text: &str) -> Result<u128, NumberError> {
    const WHAT: &str = "number of bytes";
    let (digits, unit) = split_number(text.trim());
    let value = number(digits, WHAT, "e.g. 4096, 4KiB, 0x1000").map_err(|e| e.quoting(text))?;
    let unit = unit.trim();
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        "P" | "PIB" => 50,
        "E" | "EIB" => 60,
        "KB" | "MB" | "GB" | "TB" | "PB" | "EB" => {
            return Err(ambiguous(text, WHAT, unit, "powers of two"));
        }
        _ => {
            return Err(NumberError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
                accepted: SIZE_UNITS,
            });
        }
    };
    // value < 2^64 and shift <= 60: the product is below 2^124.
    Ok(u128::from(value) << shift)
}

/// Parses a size in bytes that must fit in 64 bits; see [`parse_size_u128`].
pub fn parse_size(text: &str) -> Result<u64, NumberError> {
    let bytes = parse_size_u128(text)?;
    u64::try_from(bytes).map_err(|_| NumberError::TooLarge {
        text: text.to_owned(),
        bits: 64,
    })
}

/// A size as written in a TOML file: a bare integer is a byte count, a
/// string is read by [`parse_size`] (`page_size = 4096` or `"4KiB"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum WrittenSize {
    /// A bare integer: bytes.
    Bytes(u64),
    /// A string in the size syntax.
    Text(String),
}

impl WrittenSize {
    /// The size in bytes.
    pub fn bytes(&self) -> Result<u64, NumberError> {
        match self {
            Self::Bytes(b) => Ok(*b),
            Self::Text(t) => parse_size(t),
        }
    }
}

/// What a config value is read as: a count ([`parse_count`]) or a size
/// ([`parse_size`]).
#[derive(Clone, Copy)]
struct Written {
    size: bool,
}

impl serde::de::Visitor<'_> for Written {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.size {
            write!(
                f,
                "a size in bytes (an integer, or a string such as \"8MiB\")"
            )
        } else {
            write!(
                f,
                "a count (an integer, or a string such as \"4Ki\" or \"10M\")"
            )
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
        let parsed = if self.size {
            parse_size(v)
        } else {
            parse_count(v)
        };
        parsed.map_err(E::custom)
    }
}

fn written<'de, D, T>(d: D, size: bool) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    if !d.is_human_readable() {
        // A binary format (postcard in checkpoints) wrote the number itself.
        return T::deserialize(d);
    }
    let v = d.deserialize_any(Written { size })?;
    T::try_from(v).map_err(|_| {
        serde::de::Error::custom(format!(
            "{v} is too large (at most {} bits)",
            size_of::<T>() * 8
        ))
    })
}

fn written_opt<'de, D, T>(d: D, size: bool) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    if !d.is_human_readable() {
        // Binary formats write the option's tag: read it as written.
        return Option::<T>::deserialize(d);
    }
    // A text format names the key only when it has a value (absent keys
    // take the field's default without calling this).
    written(d, size).map(Some)
}

/// Reads a count from a config file or `--set` (`deserialize_with`): an
/// integer, or a string in the count syntax (`"4Ki"`, `"10M"`). Binary
/// formats (not human-readable, as postcard) read the plain number, so the
/// same struct round-trips through a checkpoint.
///
/// # Errors
/// Not a count, negative, or too large for `T`.
pub fn count<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    written(d, false)
}

/// [`count`] for an optional field (with `#[serde(default)]`).
///
/// # Errors
/// As [`count`].
pub fn count_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    written_opt(d, false)
}

/// Reads a size in bytes from a config file or `--set`: an integer, or a
/// string in the size syntax (`"8MiB"`); the plain number from a binary
/// format.
///
/// # Errors
/// Not a size, negative, or too large for `T`.
pub fn size<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    written(d, true)
}

/// [`size`] for an optional field (with `#[serde(default)]`).
///
/// # Errors
/// As [`size`].
pub fn size_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    written_opt(d, true)
}

/// Binary unit names, each 1024 times the one before. `ZiB` and `YiB` are
/// only reached by [`format_size_u128`] past 2^70 bytes (output only: no
/// 64-bit size needs them, so [`parse_size`] does not read them).
pub const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// `bytes` in the largest binary unit that divides it exactly: the value and
/// the unit's index in [`BINARY_UNITS`] (`3 << 20` -> `(3, 2)`, MiB).
#[must_use]
pub fn exact_unit(bytes: u128) -> (u128, usize) {
    let mut value = bytes;
    let mut unit = 0;
    while unit + 1 < BINARY_UNITS.len() && value >= 1024 && value.is_multiple_of(1024) {
        value /= 1024;
        unit += 1;
    }
    (value, unit)
}

/// Writes a byte count in the largest binary unit that divides it exactly
/// (`4 KiB`, `2 MiB`, `96 B`), as users write sizes; [`parse_size`] reads it back.
#[must_use]
pub fn format_size(bytes: u64) -> String {
    format_size_u128(u128::from(bytes))
}

/// [`format_size`] for values up to 2^128 (`16 EiB` is the end of a 64-bit
/// address space).
#[must_use]
pub fn format_size_u128(bytes: u128) -> String {
    let (value, unit) = exact_unit(bytes);
    format!("{value} {}", BINARY_UNITS[unit])
}

/// Parses a count (references, pages, repeats): a number as [`parse_u64`]
/// reads it, optionally followed by `K`/`M`/`G`/`T` (powers of 1000: `10M`
/// is ten million) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024).
pub fn parse_count(text: &str) -> Result<u64, NumberError> {
    const WHAT: &str = "number";
    let (digits, unit) = split_number(text.trim());
    let value = number(digits, WHAT, "e.g. 1000, 10M, 4KiB").map_err(|e| e.quoting(text))?;
    let unit = unit.trim();
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "KI" | "KIB" => 1 << 10,
        "MI" | "MIB" => 1 << 20,
        "GI" | "GIB" => 1 << 30,
        "TI" | "TIB" => 1 << 40,
        "KB" | "MB" | "GB" | "TB" => {
            return Err(ambiguous(text, WHAT, unit, "K = 1000, KiB = 1024"));
        }
        _ => {
            return Err(NumberError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
                accepted: COUNT_UNITS,
            });
        }
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| NumberError::TooLarge {
            text: text.to_owned(),
            bits: 64,
        })
}

fn ambiguous(text: &str, what: &'static str, unit: &str, meaning: &'static str) -> NumberError {
    NumberError::AmbiguousUnit {
        text: text.to_owned(),
        what,
        unit: unit.to_owned(),
        stem: unit.chars().next().map_or('K', |c| c.to_ascii_uppercase()),
        meaning,
    }
}

impl NumberError {
    /// The same error about the whole `text` (a unit parser reads the
    /// number part alone, but the user should see what they wrote).
    fn quoting(self, whole: &str) -> Self {
        match self {
            Self::NotANumber { what, example, .. } => Self::NotANumber {
                text: whole.to_owned(),
                what,
                example,
            },
            Self::TooLarge { bits, .. } => Self::TooLarge {
                text: whole.to_owned(),
                bits,
            },
            other => other,
        }
    }
}

/// Parses an address range `START-END` (END exclusive), each side a size as
/// [`parse_size_u128`] reads it: `0-2KiB`, `0x3000-0x4000`, `3KiB - 4KiB`.
pub fn parse_range(text: &str) -> Result<(u128, u128), NumberError> {
    let Some((start, end)) = text.split_once('-') else {
        return Err(NumberError::NotARange {
            text: text.to_owned(),
        });
    };
    let side = |part: &str, side: &'static str| {
        parse_size_u128(part).map_err(|e| NumberError::RangeSide {
            text: text.to_owned(),
            side,
            source: Box::new(e),
        })
    };
    Ok((side(start, "start")?, side(end, "end")?))
}

/// Parses a comma- (or `+`-) separated list of small numbers, each as
/// [`parse_u64`] reads it, e.g. level bits `9,9,9` or `2+4`.
pub fn parse_u32_list(text: &str) -> Result<Vec<u32>, NumberError> {
    text.split([',', '+'])
        .map(|part| {
            let value = parse_u64(part)?;
            u32::try_from(value).map_err(|_| NumberError::TooLarge {
                text: part.trim().to_owned(),
                bits: 32,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| NumberError::ListItem {
            text: text.to_owned(),
            source: Box::new(e),
        })
}

/// Parses a finite decimal number such as `0.3`, `1` or `1e-3`.
pub fn parse_f64(text: &str) -> Result<f64, NumberError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(NumberError::NotADecimal {
            text: text.to_owned(),
            example: "0.3",
        }),
    }
}

/// Parses a finite number `>= 0`, such as a time in nanoseconds (`20`, `0.5`).
pub fn parse_non_negative(text: &str) -> Result<f64, NumberError> {
    let value = parse_f64(text)?;
    if value < 0.0 {
        return Err(NumberError::OutOfRange {
            text: text.to_owned(),
            range: "[0, inf)",
            example: "20 or 0.5",
        });
    }
    Ok(value)
}

/// Parses a ratio in `[0, 1]`, written as a fraction (`0.98`) or a
/// percentage (`98%`).
pub fn parse_ratio(text: &str) -> Result<f64, NumberError> {
    const EXAMPLE: &str = "0.98 or 98%";
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(pct) => parse_f64(pct).map(|v| v / 100.0),
        None => parse_f64(t),
    }
    .map_err(|_| NumberError::NotADecimal {
        text: text.to_owned(),
        example: EXAMPLE,
    })?;
    if !(0.0..=1.0).contains(&value) {
        return Err(NumberError::OutOfRange {
            text: text.to_owned(),
            range: "[0, 1]",
            example: EXAMPLE,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_in_every_radix() {
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert_eq!(parse_u64(" 0x1000 "), Ok(4096));
        assert_eq!(parse_u64("0X1000"), Ok(4096));
        assert_eq!(parse_u64("0b101"), Ok(5));
        assert_eq!(parse_u64("0o17"), Ok(15));
        assert_eq!(parse_u64("1_000_000"), Ok(1_000_000));
        for bad in ["", "0x", "-1", "+1", "0x+1", "12ab", "4K"] {
            assert!(
                matches!(parse_u64(bad), Err(NumberError::NotANumber { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_u64("18446744073709551616"),
            Err(NumberError::TooLarge { bits: 64, .. })
        ));
    }

    #[test]
    fn counts_take_ki_as_well_as_kib() {
        assert_eq!(parse_count("4Ki"), Ok(4096));
        assert_eq!(parse_count("4KiB"), Ok(4096));
        assert_eq!(parse_count("2mi"), Ok(2 << 20));
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert!(parse_count("4KB").is_err());
    }

    #[test]
    fn config_values_take_integers_or_unit_strings() {
        #[derive(Debug, Deserialize)]
        struct C {
            #[serde(deserialize_with = "count")]
            frames: u64,
            #[serde(default, deserialize_with = "count_opt")]
            slots: Option<u32>,
            #[serde(deserialize_with = "size")]
            stack: u64,
        }
        let c: C =
            toml::from_str("frames = \"4Ki\"\nslots = 100\nstack = \"8MiB\"").expect("valid");
        assert_eq!((c.frames, c.slots, c.stack), (4096, Some(100), 8 << 20));
        let c: C = toml::from_str("frames = 16\nstack = 4096").expect("valid");
        assert_eq!((c.frames, c.slots, c.stack), (16, None, 4096));
        let e = toml::from_str::<C>("frames = \"4KB\"\nstack = 1").expect_err("ambiguous");
        assert!(e.to_string().contains("ambiguous"), "{e}");
        let e = toml::from_str::<C>("frames = 1\nslots = \"5G\"\nstack = 1").expect_err("too big");
        assert!(e.to_string().contains("too large"), "{e}");
        let e = toml::from_str::<C>("frames = -1\nstack = 1").expect_err("negative");
        assert!(e.to_string().contains("negative"), "{e}");
    }

    #[test]
    fn sizes_with_binary_units() {
        let ok = |t: &str| parse_size(t).expect(t);
        assert_eq!(ok("64"), 64);
        assert_eq!(ok("4KiB"), 4096);
        assert_eq!(ok("4 KiB"), 4096);
        assert_eq!(ok("4k"), 4096);
        assert_eq!(ok("4kib"), 4096);
        assert_eq!(ok("2MiB"), 2 << 20);
        assert_eq!(ok("2M"), 2 << 20);
        assert_eq!(ok("1G"), 1 << 30);
        assert_eq!(ok("1 TiB"), 1 << 40);
        assert_eq!(ok("1P"), 1 << 50);
        assert_eq!(ok("1E"), 1 << 60);
        assert_eq!(ok("0x1000"), 4096);
        assert_eq!(ok("0x10 KiB"), 16 << 10);
        assert_eq!(ok("0b1000000"), 64);
        assert_eq!(ok("0B"), 0);
        assert_eq!(ok("16B"), 16);
        assert_eq!(ok("1_024"), 1024);
        assert_eq!(ok("4000KiB"), 4_096_000);
        assert_eq!(parse_size_u128("16EiB"), Ok(1u128 << 64));
        assert!(matches!(
            parse_size("16EiB"),
            Err(NumberError::TooLarge { .. })
        ));
        assert!(parse_size("99999999999P").is_err());
    }

    #[test]
    fn sizes_refuse_ambiguous_and_unknown_units() {
        let err = |t: &str| parse_size(t).expect_err(t).to_string();
        assert!(err("4KB").contains("ambiguous"), "{}", err("4KB"));
        assert!(err("4KB").contains("write KiB or K"), "{}", err("4KB"));
        assert!(err("64MB").contains("'64MB' is not a number"));
        assert!(err("4 parsecs").contains("accepted units: B, K, KiB"));
        assert!(err("KiB").contains("'KiB' is not a number"));
        assert!(err("1.5KiB").contains("unknown unit '.5KiB'"));
        assert!(err("-4").contains("not a number"));
        assert!(err("").contains("not a number"));
    }

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        assert_eq!(format_size(96), "96 B");
        assert_eq!(format_size(1536), "1536 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(3 << 20), "3 MiB");
        assert_eq!(format_size(u64::MAX), format!("{} B", u64::MAX));
        assert_eq!(format_size_u128(1 << 64), "16 EiB");
        assert_eq!(format_size_u128(1 << 70), "1 ZiB");
        assert_eq!(exact_unit(0), (0, 0));
    }

    #[test]
    fn counts_are_decimal_unless_binary_is_written() {
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("1k"), Ok(1000));
        assert_eq!(parse_count("2G"), Ok(2_000_000_000));
        assert_eq!(parse_count("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_count("4KiB"), Ok(4096));
        assert_eq!(parse_count("64MiB"), Ok(64 << 20));
        assert_eq!(parse_count("1_000"), Ok(1000));
        assert_eq!(parse_count("0x10"), Ok(16));
        assert!(matches!(
            parse_count("64MB"),
            Err(NumberError::AmbiguousUnit { .. })
        ));
        assert!(matches!(
            parse_count("4P"),
            Err(NumberError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_count("20000000TiB"),
            Err(NumberError::TooLarge { .. })
        ));
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn ranges_lists_decimals_ratios() {
        assert_eq!(parse_range("0-2KiB"), Ok((0, 2048)));
        assert_eq!(parse_range("3KiB - 4KiB"), Ok((3072, 4096)));
        assert_eq!(parse_range("0-16EiB"), Ok((0, 1 << 64)));
        assert!(parse_range("3KiB").is_err());
        let e = parse_range("x-4").expect_err("bad start").to_string();
        assert!(e.contains("range 'x-4': start: 'x' is not a number"), "{e}");
        assert_eq!(parse_u32_list("9,9,9"), Ok(vec![9, 9, 9]));
        assert_eq!(parse_u32_list("2+4"), Ok(vec![2, 4]));
        assert!(parse_u32_list("2,,4").is_err());
        assert!(parse_u32_list("4294967296").is_err());
        assert_eq!(parse_f64("0.25"), Ok(0.25));
        assert!(parse_f64("nan").is_err());
        assert!(parse_f64("inf").is_err());
        assert_eq!(parse_ratio("0.98"), Ok(0.98));
        assert_eq!(parse_ratio("50%"), Ok(0.5));
        assert!(parse_ratio("1.01").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("NaN").is_err());
        assert_eq!(parse_non_negative("20"), Ok(20.0));
        assert!(parse_non_negative("-1").is_err());
        assert!(parse_non_negative("inf").is_err());
    }

    proptest! {
        /// Every number reads back in every radix and with every unit.
        #[test]
        fn round_trips(v in any::<u64>(), shift in 0u32..=60) {
            prop_assert_eq!(parse_u64(&v.to_string()), Ok(v));
            prop_assert_eq!(parse_u64(&format!("{v:#x}")), Ok(v));
            prop_assert_eq!(parse_u64(&format!("{v:#b}")), Ok(v));
            prop_assert_eq!(parse_u64(&format!("{v:#o}")), Ok(v));
            let unit = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"][(shift / 10) as usize];
            let exact = u128::from(v) << (shift / 10 * 10);
            prop_assert_eq!(parse_size_u128(&format!("{v} {unit}")), Ok(exact));
            prop_assert_eq!(
                parse_size(&format!("{v}{unit}")).ok(),
                u64::try_from(exact).ok()
            );
            prop_assert_eq!(
                parse_count(&format!("{v}K")).ok(),
                v.checked_mul(1000)
            );
            prop_assert_eq!(parse_size(&format_size(v)), Ok(v));
        }
    }
}
