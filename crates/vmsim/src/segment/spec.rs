//! The text forms users type: a segment `SEL:BASE:LIMIT[:PERMS]` and a
//! logical address `SEL:OFFSET`.
//!
//! Numbers are decimal, `0x` hex, `0b` binary or `0o` octal, with `_`
//! allowed between digits. PERMS is a string of letters:
//!
//! | letter | meaning |
//! |--------|---------|
//! | `r` `w` `x` | read, write, execute allowed (`-` is a placeholder: `r-x`) |
//! | `g` | the limit counts 4 KiB units (x86 G bit) |
//! | `e` | expand-down data segment with a 4 GiB upper bound (x86 E and B bits) |
//! | `0`..`3` | descriptor privilege level (default 3: every ring may use it) |
//! | `n` | not present (any use faults) |
//!
//! Without PERMS a segment is `rw`: a data segment, like the course's
//! example. With permission letters, exactly the permissions listed are
//! granted, so `1:0x2000:0x1ff:r` is read-only and `1:0x2000:0x1ff:-`
//! allows nothing; a PERMS field of attributes only (`g`, `e`, `n`, `0`-`3`)
//! keeps the default `rw`, so `1:0:0xfffff:g` is a 4 GiB data segment.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::descriptor::{DescriptorError, Ring, SegmentDescriptor, SegmentPerms};
use super::selector::Selector;

/// Text that is not a segment or a logical address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// The wrong number of `:`-separated fields.
    #[error("'{text}': expected {expected}")]
    Shape {
        /// The whole input.
        text: String,
        /// The form expected, with an example.
        expected: &'static str,
    },
    /// A field that is not a number.
    #[error(
        "'{text}': {field} '{value}' is not a number that fits in {bits} bits (expected decimal, 0x hex, 0b binary or 0o octal)"
    )]
    Number {
        /// The whole input.
        text: String,
        /// Which field (`selector`, `base`, `limit`, `offset`).
        field: &'static str,
        /// The field's text.
        value: String,
        /// How many bits the field holds.
        bits: u32,
    },
    /// A letter in PERMS that means nothing.
    #[error(
        "'{text}': permission letter '{letter}' is not one of r, w, x, - (permissions), g (limit in 4 KiB units), e (expand-down), n (not present), 0-3 (privilege level)"
    )]
    PermLetter {
        /// The whole input.
        text: String,
        /// The offending character.
        letter: char,
    },
    /// An empty PERMS field.
    #[error(
        "'{text}': the permissions field is empty; write '-' for a segment that allows nothing"
    )]
    EmptyPerms {
        /// The whole input.
        text: String,
    },
    /// A descriptor that cannot exist (e.g. a 4 KiB-granular limit too large).
    #[error("'{text}': {source}")]
    Descriptor {
        /// The whole input.
        text: String,
        /// What is wrong with it.
        source: DescriptorError,
    },
}

const SEGMENT_FORM: &str =
    "SEL:BASE:LIMIT[:PERMS], e.g. 1:0x2000:0x1ff or 1:0x2000:0x1ff:rw (PERMS letters r, w, x)";
const ADDRESS_FORM: &str = "SEL:OFFSET, e.g. 0x1:0xff";

fn number(text: &str, field: &'static str, value: &str, bits: u32) -> Result<u64, SpecError> {
    crate::units::parse_u64(value)
        .ok()
        .filter(|&v| bits == 64 || v >> bits == 0)
        .ok_or_else(|| SpecError::Number {
            text: text.to_owned(),
            field,
            value: value.to_owned(),
            bits,
        })
}

fn selector(text: &str, value: &str) -> Result<Selector, SpecError> {
    let raw = number(text, "selector", value, 16)?;
    // `number` checked the value fits 16 bits.
    Ok(Selector::new(u16::try_from(raw).unwrap_or(u16::MAX)))
}

/// One segment as typed on the command line: `SEL:BASE:LIMIT[:PERMS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpec {
    /// The selector that will name the segment.
    pub selector: Selector,
    /// The segment.
    pub descriptor: SegmentDescriptor,
}

impl FromStr for SegmentSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let fields: Vec<&str> = text.split(':').collect();
        let shape = || SpecError::Shape {
            text: text.to_owned(),
            expected: SEGMENT_FORM,
        };
        let (sel, base, limit, perms) = match fields.as_slice() {
            [s, b, l] => (*s, *b, *l, None),
            [s, b, l, p] => (*s, *b, *l, Some(*p)),
            _ => return Err(shape()),
        };
        let selector = selector(text, sel)?;
        let base = number(text, "base", base, 64)?;
        let limit = number(text, "limit", limit, 64)?;
        let Some(letters) = perms else {
            return Ok(Self {
                selector,
                descriptor: SegmentDescriptor::new(base, limit, SegmentPerms::DATA),
            });
        };
        if letters.is_empty() {
            return Err(SpecError::EmptyPerms {
                text: text.to_owned(),
            });
        }
        let mut p = SegmentPerms::empty();
        let mut any_perm = false;
        let (mut page, mut down, mut absent, mut dpl) = (false, false, false, Ring::USER);
        for c in letters.chars() {
            match c {
                'r' | 'R' => p |= SegmentPerms::READ,
                'w' | 'W' => p |= SegmentPerms::WRITE,
                'x' | 'X' => p |= SegmentPerms::EXECUTE,
                '-' => {}
                'g' | 'G' => page = true,
                'e' | 'E' => down = true,
                'n' | 'N' => absent = true,
                '0'..='3' => {
                    dpl = Ring::new(c as u8 - b'0')
                        .unwrap_or_else(|_| unreachable!("0..=3 is a ring"));
                }
                letter => {
                    return Err(SpecError::PermLetter {
                        text: text.to_owned(),
                        letter,
                    });
                }
            }
            any_perm |= matches!(c, 'r' | 'R' | 'w' | 'W' | 'x' | 'X' | '-');
        }
        // Only attributes given (`g`, `e`, `n`, a ring): the permissions
        // stay the default, a data segment.
        if !any_perm {
            p = SegmentPerms::DATA;
        }
        let mut d = SegmentDescriptor::new(base, limit, p)
            .with_dpl(dpl)
            .with_present(!absent);
        if page {
            d = d
                .with_page_granularity()
                .map_err(|source| SpecError::Descriptor {
                    text: text.to_owned(),
                    source,
                })?;
        }
        if down {
            d = d.with_expand_down(true);
        }
        Ok(Self {
            selector,
            descriptor: d,
        })
    }
}

/// A logical address, `selector:offset`, as a program names a byte under segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogicalAddress {
    /// Which segment.
    pub selector: Selector,
    /// The byte's offset inside the segment.
    pub offset: u64,
}

impl FromStr for LogicalAddress {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let Some((sel, off)) = text.split_once(':') else {
            return Err(SpecError::Shape {
                text: text.to_owned(),
                expected: ADDRESS_FORM,
            });
        };
        if off.contains(':') {
            return Err(SpecError::Shape {
                text: text.to_owned(),
                expected: ADDRESS_FORM,
            });
        }
        Ok(Self {
            selector: selector(text, sel)?,
            offset: number(text, "offset", off, 64)?,
        })
    }
}

impl fmt::Display for LogicalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:#x}", self.selector, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Direction, Granularity};

    #[test]
    fn course_segment() {
        let s: SegmentSpec = "1:0x2000:0x1ff".parse().expect("parse");
        assert_eq!(s.selector, Selector::new(1));
        assert_eq!(s.descriptor.base(), 0x2000);
        assert_eq!(s.descriptor.limit(), 0x1FF);
        assert_eq!(s.descriptor.perms(), SegmentPerms::DATA);
    }

    #[test]
    fn perm_letters() {
        let s: SegmentSpec = "0x33:0:0xfffff:r-xg0".parse().expect("parse");
        let d = s.descriptor;
        assert_eq!(d.perms(), SegmentPerms::CODE);
        assert_eq!(d.granularity(), Granularity::Page4K);
        assert_eq!(d.dpl(), Ring::KERNEL);
        let s: SegmentSpec = "2:0x8000:0xfff:rwen".parse().expect("parse");
        assert_eq!(s.descriptor.direction(), Direction::Down { big: true });
        assert!(!s.descriptor.present());
        let none: SegmentSpec = "2:0:1:-".parse().expect("parse");
        assert!(none.descriptor.perms().is_empty());
        // Attributes only: permissions stay rw.
        let g: SegmentSpec = "2:0:0xfffff:g".parse().expect("parse");
        assert_eq!(g.descriptor.perms(), SegmentPerms::DATA);
        let k: SegmentSpec = "2:0:0xfff:0n".parse().expect("parse");
        assert_eq!(k.descriptor.perms(), SegmentPerms::DATA);
    }

    #[test]
    fn errors_name_the_field() {
        let e = "1:0x2000".parse::<SegmentSpec>().expect_err("shape");
        assert!(e.to_string().contains("SEL:BASE:LIMIT"), "{e}");
        let e = "1:zz:0x1ff".parse::<SegmentSpec>().expect_err("base");
        assert!(e.to_string().contains("base 'zz'"), "{e}");
        let e = "0x10000:0:1".parse::<SegmentSpec>().expect_err("selector");
        assert!(e.to_string().contains("16 bits"), "{e}");
        let e = "1:0:1:rq".parse::<SegmentSpec>().expect_err("letter");
        assert!(
            matches!(e, SpecError::PermLetter { letter: 'q', .. }),
            "{e}"
        );
        let e = "1:0:1:".parse::<SegmentSpec>().expect_err("empty");
        assert!(matches!(e, SpecError::EmptyPerms { .. }));
        let e = "1:0:0xffffffffffffffff:g"
            .parse::<SegmentSpec>()
            .expect_err("too large");
        assert!(matches!(e, SpecError::Descriptor { .. }));
        let e = "1:-5:1".parse::<SegmentSpec>().expect_err("negative");
        assert!(matches!(e, SpecError::Number { field: "base", .. }));
    }

    #[test]
    fn logical_address() {
        let a: LogicalAddress = "0x1:0xff".parse().expect("parse");
        assert_eq!(a.selector, Selector::new(1));
        assert_eq!(a.offset, 0xFF);
        assert_eq!(a.to_string(), "0x1:0xff");
        let b: LogicalAddress = "1:1_000".parse().expect("parse");
        assert_eq!(b.offset, 1000);
        assert!("0x1".parse::<LogicalAddress>().is_err());
        assert!("1:2:3".parse::<LogicalAddress>().is_err());
        assert!("1:".parse::<LogicalAddress>().is_err());
    }
}
