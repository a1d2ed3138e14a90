//! Segmentation as the textbooks teach it (OSTEP chapter 16, "the explicit
//! approach"): the top bits of a virtual address choose the segment, the
//! rest is the offset into it; each segment has a base, a size, a growth
//! direction and protection bits. Base and bounds (a relocation register
//! and a bounds register) is the one-segment case with no selector bits.
//!
//! The rules, exactly:
//!
//! - With a `va_bits`-bit address and `seg_bits` selector bits, the segment
//!   is `va >> (va_bits - seg_bits)` and the offset the low
//!   `va_bits - seg_bits` bits; the *maximum segment size* is
//!   `2^(va_bits - seg_bits)`.
//! - A segment that grows up (code, heap) allows offsets `0 .. size` and
//!   maps offset `o` to `base + o`.
//! - A segment that grows down (the stack) occupies `[base - size, base)`:
//!   its base is where it *ends*, as in OSTEP's figure (stack base 28 KiB,
//!   size 2 KiB, physical 26-28 KiB). Offset `o` is read as the negative
//!   offset `o - max_size`; it is valid when `|o - max_size| <= size`, and
//!   maps to `base + (o - max_size)`.
//! - Sizes are sizes (a segment of size 0x200 allows offsets up to 0x1FF),
//!   unlike the x86 descriptor's last-valid-offset limit
//!   ([`super::SegmentDescriptor`]).
//! - Checks, in order: the address fits `va_bits`; the segment exists; the
//!   offset is within bounds; the segment's permissions allow the access.
//! - Permissions not written are defaulted from the segment's name: `code`
//!   and `text` are `r-x`, `rodata` is `r--`, anything else (heap, stack,
//!   data, an unnamed segment) is `rw-`. Written permissions are exact.
//!
//! This module owns the book-style segment table and its checks; it never
//! touches memory (the physical address is the caller's to use).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::descriptor::SegmentPerms;
use super::fault::{Access, needs};

/// Which way a segment grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Growth {
    /// Towards higher addresses (code, heap): base is the lowest address.
    Up,
    /// Towards lower addresses (the stack): base is one past the highest.
    Down,
}

/// One segment of a book-style table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookSegment {
    /// The segment number (the value of the selector bits).
    pub number: u64,
    /// A name (`code`, `heap`, `stack`, ...), if given.
    pub name: Option<String>,
    /// Physical base: the lowest address (grows up) or one past the highest
    /// (grows down).
    #[serde(serialize_with = "hex")]
    pub base: u64,
    /// Size in bytes.
    #[serde(serialize_with = "hex")]
    pub size: u64,
    /// Growth direction.
    pub growth: Growth,
    /// What accesses it allows.
    pub perms: SegmentPerms,
}

fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:#x}"))
}

#[allow(clippy::ref_option)] // serde's serialize_with hands us `&Option<T>`.
fn opt_hex<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => hex(v, s),
        None => s.serialize_none(),
    }
}

impl BookSegment {
    /// The permissions a segment called `name` gets when none are written.
    #[must_use]
    pub fn default_perms(name: Option<&str>) -> SegmentPerms {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("code" | "text") => SegmentPerms::CODE,
            Some("rodata") => SegmentPerms::READ,
            _ => SegmentPerms::DATA,
        }
    }

    /// `segment 3 (stack)` or `segment 0`.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("segment {} ({n})", self.number),
            None => format!("segment {}", self.number),
        }
    }

    /// The lowest physical address it occupies.
    #[must_use]
    pub fn low(&self) -> u64 {
        match self.growth {
            Growth::Up => self.base,
            Growth::Down => self.base - self.size,
        }
    }
}

impl fmt::Display for BookSegment {
    /// `segment 3 (stack): base 0x7000 (28672), size 0x800 (2048), grows down, rw-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: base {:#x} ({}), size {:#x} ({}), grows {}, {}",
            self.label(),
            self.base,
            self.base,
            self.size,
            self.size,
            match self.growth {
                Growth::Up => "up",
                Growth::Down => "down",
            },
            self.perms
        )
    }
}

/// A book-style segment or table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    /// Text that is not `[NAME=]NUM:BASE:SIZE[:up|down][:PERMS]`.
    #[error(
        "'{0}': expected [NAME=]NUM:BASE:SIZE[:up|down][:PERMS], e.g. code=0:32K:2K:r-x or stack=3:28K:2K:down"
    )]
    Shape(String),
    /// A field that is not a number.
    #[error(
        "'{text}': {field} '{value}' is not a number (decimal, 0x hex, 0b, 0o; sizes may end in K, M, G)"
    )]
    Number {
        /// The whole spec.
        text: String,
        /// Which field.
        field: &'static str,
        /// The field's text.
        value: String,
    },
    /// A flag that is neither a direction nor permissions.
    #[error("'{text}': '{flag}' is not up, down or permissions made of r, w, x and -")]
    Flag {
        /// The whole spec.
        text: String,
        /// The flag.
        flag: String,
    },
    /// No segment at all.
    #[error("no segments given")]
    Empty,
    /// Two segments with one number.
    #[error("segment {0} is given twice")]
    Duplicate(u64),
    /// An address width outside 1..=64.
    #[error("--va-bits {0}: expected 1 to 64")]
    VaBits(u32),
    /// More selector bits than address bits.
    #[error("{seg_bits} segment-selector bits do not fit a {va_bits}-bit address")]
    SegBits {
        /// Selector bits.
        seg_bits: u32,
        /// Address bits.
        va_bits: u32,
    },
    /// Selector bits without an address width to take them from.
    #[error(
        "segment numbers above 0 need the address width (--va-bits): the top bits of the address choose the segment"
    )]
    NeedVaBits,
    /// A segment number that the selector bits cannot express.
    #[error("segment {number} needs more than the {seg_bits} selector bits")]
    NumberTooLarge {
        /// The number.
        number: u64,
        /// Selector bits.
        seg_bits: u32,
    },
    /// A segment larger than an offset can reach.
    #[error(
        "{segment}: size {size:#x} is larger than the maximum segment size {max:#x} (2^{offset_bits}: {offset_bits} offset bits)"
    )]
    TooLarge {
        /// The segment's label.
        segment: String,
        /// Its size.
        size: u64,
        /// The maximum size.
        max: u128,
        /// Offset bits.
        offset_bits: u32,
    },
    /// A segment that would reach below address 0 or past 2^64.
    #[error("{segment}: base {base:#x} and size {size:#x} reach outside the 64-bit physical space")]
    OutOfSpace {
        /// The segment's label.
        segment: String,
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// A grows-down segment without an address width (the negative offset
    /// is measured from the maximum segment size).
    #[error(
        "{0} grows down: give the address width (--va-bits), from which the maximum segment size follows"
    )]
    DownNeedsVaBits(String),
}

impl FromStr for BookSegment {
    type Err = BookError;

    fn from_str(text: &str) -> Result<Self, BookError> {
        let t = text.trim();
        let (name, rest) = match t.split_once('=') {
            Some((n, r)) if !n.is_empty() => (Some(n.trim().to_owned()), r),
            Some(_) => return Err(BookError::Shape(text.to_owned())),
            None => (None, t),
        };
        let fields: Vec<&str> = rest.split(':').collect();
        if fields.len() < 3 {
            return Err(BookError::Shape(text.to_owned()));
        }
        let num = |field: &'static str, value: &str| {
            crate::units::parse_size(value.trim()).map_err(|_| BookError::Number {
                text: text.to_owned(),
                field,
                value: value.to_owned(),
            })
        };
        let number = num("number", fields[0])?;
        let base = num("base", fields[1])?;
        let size = num("size", fields[2])?;
        let mut growth = Growth::Up;
        let mut perms = None;
        for flag in &fields[3..] {
            let f = flag.trim().to_ascii_lowercase();
            match f.as_str() {
                "up" | "+" => growth = Growth::Up,
                "down" => growth = Growth::Down,
                p if !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'x' | '-')) => {
                    let mut s = SegmentPerms::empty();
                    for c in p.chars() {
                        match c {
                            'r' => s |= SegmentPerms::READ,
                            'w' => s |= SegmentPerms::WRITE,
                            'x' => s |= SegmentPerms::EXECUTE,
                            _ => {}
                        }
                    }
                    perms = Some(s);
                }
                _ => {
                    return Err(BookError::Flag {
                        text: text.to_owned(),
                        flag: (*flag).to_owned(),
                    });
                }
            }
        }
        let perms = perms.unwrap_or_else(|| Self::default_perms(name.as_deref()));
        Ok(Self {
            number,
            name,
            base,
            size,
            growth,
            perms,
        })
    }
}

/// Why a book-style translation refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BookFault {
    /// The address has bits above the address width.
    #[error("{va:#x} is wider than the {va_bits}-bit virtual address")]
    TooWide {
        /// The address.
        #[serde(serialize_with = "hex")]
        va: u64,
        /// The width.
        va_bits: u32,
    },
    /// The selector bits name no segment.
    #[error("segmentation fault: the address selects segment {segment}, which is not defined")]
    NoSegment {
        /// The segment number.
        segment: u64,
    },
    /// The offset is outside the segment.
    #[error("segmentation fault: offset {offset:#x} is outside segment {segment} (size {size:#x})")]
    Bounds {
        /// The segment number.
        segment: u64,
        /// The offset.
        #[serde(serialize_with = "hex")]
        offset: u64,
        /// The segment's size.
        #[serde(serialize_with = "hex")]
        size: u64,
    },
    /// The segment does not allow the access.
    #[error(
        "segmentation fault: a {access} through segment {segment} is not allowed; its permissions are {perms}"
    )]
    Permission {
        /// The segment number.
        segment: u64,
        /// What was attempted.
        access: Access,
        /// What it allows.
        perms: SegmentPerms,
    },
}

impl BookFault {
    /// The `kind` tag of the fault in JSON.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::TooWide { .. } => "too_wide",
            Self::NoSegment { .. } => "no_segment",
            Self::Bounds { .. } => "bounds",
            Self::Permission { .. } => "permission",
        }
    }
}

/// A book-style segment table: the segments and how addresses are split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSegments {
    va_bits: Option<u32>,
    seg_bits: u32,
    segments: Vec<BookSegment>,
}

impl BookSegments {
    /// A table of `segments` for `va_bits`-bit addresses (`None`: base and
    /// bounds over any 64-bit offset) with `seg_bits` selector bits
    /// (`None`: as many as the highest segment number needs, 0 for a single
    /// segment 0). Checks everything (see [`BookError`]).
    pub fn new(
        mut segments: Vec<BookSegment>,
        va_bits: Option<u32>,
        seg_bits: Option<u32>,
    ) -> Result<Self, BookError> {
        if segments.is_empty() {
            return Err(BookError::Empty);
        }
        segments.sort_by_key(|s| s.number);
        if let Some(w) = segments.windows(2).find(|w| w[0].number == w[1].number) {
            return Err(BookError::Duplicate(w[0].number));
        }
        if let Some(v) = va_bits
            && !(1..=64).contains(&v)
        {
            return Err(BookError::VaBits(v));
        }
        let highest = segments.last().map_or(0, |s| s.number);
        let seg_bits = seg_bits.unwrap_or(64 - highest.leading_zeros());
        if seg_bits > 0 && va_bits.is_none() {
            return Err(BookError::NeedVaBits);
        }
        if let Some(v) = va_bits
            && seg_bits > v
        {
            return Err(BookError::SegBits {
                seg_bits,
                va_bits: v,
            });
        }
        if seg_bits < 64 && highest >> seg_bits != 0 {
            return Err(BookError::NumberTooLarge {
                number: highest,
                seg_bits,
            });
        }
        let t = Self {
            va_bits,
            seg_bits,
            segments,
        };
        let max = t.max_size();
        for s in &t.segments {
            if u128::from(s.size) > max {
                return Err(BookError::TooLarge {
                    segment: s.label(),
                    size: s.size,
                    max,
                    offset_bits: t.offset_bits(),
                });
            }
            let fits = match s.growth {
                Growth::Up => s.base.checked_add(s.size).is_some(),
                Growth::Down => s.base >= s.size,
            };
            if !fits {
                return Err(BookError::OutOfSpace {
                    segment: s.label(),
                    base: s.base,
                    size: s.size,
                });
            }
            if s.growth == Growth::Down && va_bits.is_none() {
                return Err(BookError::DownNeedsVaBits(s.label()));
            }
        }
        Ok(t)
    }

    /// The address width, if given.
    #[must_use]
    pub fn va_bits(&self) -> Option<u32> {
        self.va_bits
    }

    /// The selector bits.
    #[must_use]
    pub fn seg_bits(&self) -> u32 {
        self.seg_bits
    }

    /// The offset bits: `va_bits - seg_bits` (64 without an address width).
    #[must_use]
    pub fn offset_bits(&self) -> u32 {
        self.va_bits.unwrap_or(64) - self.seg_bits
    }

    /// The maximum segment size, `2^offset_bits`.
    #[must_use]
    pub fn max_size(&self) -> u128 {
        1u128 << self.offset_bits()
    }

    /// The segments, by number.
    #[must_use]
    pub fn segments(&self) -> &[BookSegment] {
        &self.segments
    }

    /// The segment numbered `n`.
    #[must_use]
    pub fn segment(&self, n: u64) -> Option<&BookSegment> {
        self.segments.iter().find(|s| s.number == n)
    }

    /// The segment number and offset of `va` (no checks).
    #[must_use]
    pub fn split(&self, va: u64) -> (u64, u64) {
        let ob = self.offset_bits();
        if ob >= 64 {
            (0, va)
        } else {
            (va >> ob, va & ((1u64 << ob) - 1))
        }
    }

    /// Translates `va` for `access` to its physical address (module docs).
    pub fn translate(&self, va: u64, access: Access) -> Result<u64, BookFault> {
        self.explain(va, access).outcome
    }

    /// Translates `va` and says each step in words, for `vmsim explain`.
    #[must_use]
    pub fn explain(&self, va: u64, access: Access) -> BookExplanation {
        let mut e = BookExplanation {
            mode: "book",
            va,
            va_bits: self.va_bits,
            seg_bits: self.seg_bits,
            access,
            segment: None,
            name: None,
            offset: None,
            max_size: self.max_size().try_into().ok(),
            base: None,
            size: None,
            growth: None,
            perms: None,
            negative_offset: None,
            pa: None,
            outcome: Err(BookFault::NoSegment { segment: 0 }),
            steps: Vec::new(),
        };
        let finish = |mut e: BookExplanation, r: Result<u64, BookFault>| {
            match r {
                Ok(pa) => e.pa = Some(pa),
                Err(f) => e.steps.push(format!("=> {f}")),
            }
            e.outcome = r;
            e
        };
        let width = self.va_bits.map_or_else(
            || "a 64-bit address".to_owned(),
            |b| format!("a {b}-bit address"),
        );
        e.steps.push(format!(
            "virtual address {va:#x} ({va}): {width}, {}",
            match self.seg_bits {
                0 => "one segment (base and bounds): the whole address is the offset".to_owned(),
                1 => "the top bit selects the segment".to_owned(),
                n => format!("the top {n} bits select the segment"),
            }
        ));
        if let Some(b) = self.va_bits
            && b < 64
            && va >> b != 0
        {
            return finish(e, Err(BookFault::TooWide { va, va_bits: b }));
        }
        let (n, offset) = self.split(va);
        let ob = self.offset_bits();
        e.segment = Some(n);
        e.offset = Some(offset);
        if self.seg_bits > 0 {
            let bits = |hi: u32, lo: u32| {
                if hi == lo {
                    format!("bit {hi}")
                } else {
                    format!("bits {hi}-{lo}")
                }
            };
            let seg_label = bits(ob + self.seg_bits - 1, ob);
            e.steps.push(format!("  {seg_label:<12} segment  {n}"));
            if ob > 0 {
                let off_label = bits(ob - 1, 0);
                e.steps
                    .push(format!("  {off_label:<12} offset   {offset:#x} ({offset})"));
            }
        }
        let Some(seg) = self.segment(n) else {
            return finish(e, Err(BookFault::NoSegment { segment: n }));
        };
        e.name.clone_from(&seg.name);
        e.base = Some(seg.base);
        e.size = Some(seg.size);
        e.growth = Some(seg.growth);
        e.perms = Some(seg.perms);
        e.steps.push(seg.to_string());
        let ok = match seg.growth {
            Growth::Up => {
                let ok = offset < seg.size;
                e.steps.push(format!(
                    "bounds check: offset {offset:#x} ({offset}) must be below size {:#x} ({}): {}",
                    seg.size,
                    seg.size,
                    if ok { "ok" } else { "outside the segment" }
                ));
                ok
            }
            Growth::Down => {
                // `new` checked that grows-down segments have an address width,
                // so max_size <= 2^64 and offset < max_size.
                let max = self.max_size();
                let back = max - u128::from(offset);
                let neg = -(i128::try_from(back).unwrap_or(i128::MAX));
                e.negative_offset = i64::try_from(neg).ok();
                e.steps.push(format!(
                    "grows down: negative offset = offset - maximum segment size = {offset} - {max} = {neg}"
                ));
                let ok = back <= u128::from(seg.size);
                e.steps.push(format!(
                    "bounds check: |{neg}| = {back} must be at most size {}: {}",
                    seg.size,
                    if ok { "ok" } else { "outside the segment" }
                ));
                ok
            }
        };
        if !ok {
            return finish(
                e,
                Err(BookFault::Bounds {
                    segment: n,
                    offset,
                    size: seg.size,
                }),
            );
        }
        let allowed = seg.perms.contains(needs(access));
        e.steps.push(format!(
            "permission check: a {access} needs {}, the segment allows {}: {}",
            access.letter(),
            seg.perms,
            if allowed { "ok" } else { "refused" }
        ));
        if !allowed {
            return finish(
                e,
                Err(BookFault::Permission {
                    segment: n,
                    access,
                    perms: seg.perms,
                }),
            );
        }
        let pa = match seg.growth {
            Growth::Up => {
                let pa = seg.base + offset;
                e.steps.push(format!(
                    "physical address = base + offset = {:#x} + {offset:#x} = {pa:#x} ({pa})",
                    seg.base
                ));
                pa
            }
            Growth::Down => {
                let back = (self.max_size() - u128::from(offset)) as u64;
                let pa = seg.base - back;
                e.steps.push(format!(
                    "physical address = base + negative offset = {:#x} - {back:#x} = {pa:#x} ({pa})",
                    seg.base
                ));
                pa
            }
        };
        finish(e, Ok(pa))
    }
}

/// A book-style translation with its reasoning.
///
/// JSON (stable keys): `mode` (`book`), `va`, `va_bits`, `seg_bits`,
/// `access`, `segment`, `name`, `offset`, `max_size`, `base`, `size`,
/// `growth` (`up`/`down`), `perms`, `negative_offset` (grows down only),
/// `pa`, `fault` (`null` or {`kind`: `too_wide`|`no_segment`|`bounds`|
/// `permission`, its fields, `detail`}), `steps`. Addresses are hex strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookExplanation {
    /// Always `book`.
    pub mode: &'static str,
    /// The virtual address.
    #[serde(serialize_with = "hex")]
    pub va: u64,
    /// The address width.
    pub va_bits: Option<u32>,
    /// The selector bits.
    pub seg_bits: u32,
    /// The access.
    pub access: Access,
    /// The segment number the address selects.
    pub segment: Option<u64>,
    /// Its name.
    pub name: Option<String>,
    /// The offset into it.
    #[serde(serialize_with = "opt_hex")]
    pub offset: Option<u64>,
    /// The maximum segment size (`null` for 2^64).
    #[serde(serialize_with = "opt_hex")]
    pub max_size: Option<u64>,
    /// The segment's base.
    #[serde(serialize_with = "opt_hex")]
    pub base: Option<u64>,
    /// The segment's size.
    #[serde(serialize_with = "opt_hex")]
    pub size: Option<u64>,
    /// Its growth direction.
    pub growth: Option<Growth>,
    /// Its permissions.
    pub perms: Option<SegmentPerms>,
    /// For a segment that grows down: offset - maximum segment size.
    pub negative_offset: Option<i64>,
    /// The physical address, if the access is allowed.
    #[serde(serialize_with = "opt_hex")]
    pub pa: Option<u64>,
    /// The physical address or the fault.
    #[serde(rename = "fault", serialize_with = "outcome_fault")]
    pub outcome: Result<u64, BookFault>,
    /// Each step in words.
    pub steps: Vec<String>,
}

#[derive(Serialize)]
struct FaultJson<'a> {
    #[serde(flatten)]
    fault: &'a BookFault,
    detail: String,
}

fn outcome_fault<S: Serializer>(v: &Result<u64, BookFault>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Ok(_) => s.serialize_none(),
        Err(fault) => FaultJson {
            fault,
            detail: fault.to_string(),
        }
        .serialize(s),
    }
}

impl fmt::Display for BookExplanation {
    /// The steps, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OSTEP's figure 16.3: 14-bit addresses, 2 selector bits; code 32K/2K,
    /// heap 34K/3K, stack base 28K, size 2K, growing down.
    fn ostep() -> BookSegments {
        let specs = ["code=0:32K:2K", "heap=1:34K:3K", "stack=3:28K:2K:down"];
        let segs = specs.iter().map(|s| s.parse().expect("spec")).collect();
        BookSegments::new(segs, Some(14), None).expect("table")
    }

    #[test]
    fn ostep_heap_and_stack_examples() {
        let t = ostep();
        assert_eq!(t.seg_bits(), 2);
        assert_eq!(t.max_size(), 4096);
        // Heap: 4200 = 0x1068: segment 1, offset 104 -> 34K + 104 = 34920.
        assert_eq!(t.translate(4200, Access::Read), Ok(34920));
        // Stack: 15K = 0x3C00: segment 3, offset 3072; negative offset
        // 3072 - 4096 = -1024; 28K - 1K = 27K = 27648.
        assert_eq!(t.translate(15 * 1024, Access::Write), Ok(27 * 1024));
        let e = t.explain(15 * 1024, Access::Read);
        assert_eq!(e.negative_offset, Some(-1024));
        // The stack's lowest valid offset is 4096 - 2048 = 2048.
        assert_eq!(t.translate(0x3000 + 2048, Access::Read), Ok(26 * 1024));
        assert!(matches!(
            t.translate(0x3000 + 2047, Access::Read),
            Err(BookFault::Bounds { segment: 3, .. })
        ));
        // Heap bounds: size 3K allows offsets up to 3071.
        assert_eq!(
            t.translate(0x1000 + 3071, Access::Read),
            Ok(34 * 1024 + 3071)
        );
        assert!(t.translate(0x1000 + 3072, Access::Read).is_err());
        // Segment 2 is not defined; code is not writable by default.
        assert_eq!(
            t.translate(0x2000, Access::Read),
            Err(BookFault::NoSegment { segment: 2 })
        );
        assert!(matches!(
            t.translate(0x10, Access::Write),
            Err(BookFault::Permission { segment: 0, .. })
        ));
        assert!(matches!(
            t.translate(0x4000, Access::Read),
            Err(BookFault::TooWide { .. })
        ));
    }

    #[test]
    fn base_and_bounds_is_one_segment() {
        let s: BookSegment = "0:0x3000:0x200".parse().expect("spec");
        let t = BookSegments::new(vec![s], None, None).expect("table");
        assert_eq!(t.seg_bits(), 0);
        assert_eq!(t.translate(0x1ff, Access::Read), Ok(0x31ff));
        assert!(t.translate(0x200, Access::Read).is_err());
    }

    #[test]
    fn specs_and_defaults() {
        let s: BookSegment = "text=0:0:1K".parse().expect("spec");
        assert_eq!(s.perms, SegmentPerms::CODE);
        let s: BookSegment = "2:0x100:0x10:down:r".parse().expect("spec");
        assert_eq!((s.growth, s.perms), (Growth::Down, SegmentPerms::READ));
        let s: BookSegment = "1:0x100:0x10".parse().expect("spec");
        assert_eq!(s.perms, SegmentPerms::DATA);
        assert!(matches!(
            "1:0x100".parse::<BookSegment>(),
            Err(BookError::Shape(_))
        ));
        assert!(matches!(
            "1:0x100:4:sideways".parse::<BookSegment>(),
            Err(BookError::Flag { .. })
        ));
        assert!(matches!(
            "1:zz:4".parse::<BookSegment>(),
            Err(BookError::Number { field: "base", .. })
        ));
    }

    #[test]
    fn bad_tables() {
        let seg = |t: &str| t.parse::<BookSegment>().expect("spec");
        assert_eq!(
            BookSegments::new(vec![seg("1:0:4")], None, None),
            Err(BookError::NeedVaBits)
        );
        assert!(matches!(
            BookSegments::new(vec![seg("0:0:5K")], Some(14), Some(2)),
            Err(BookError::TooLarge { .. })
        ));
        assert!(matches!(
            BookSegments::new(vec![seg("0:0x100:0x200:down")], Some(14), None),
            Err(BookError::OutOfSpace { .. })
        ));
        assert!(matches!(
            BookSegments::new(vec![seg("0:0:4"), seg("0:8:4")], Some(8), None),
            Err(BookError::Duplicate(0))
        ));
        assert!(matches!(
            BookSegments::new(vec![seg("4:0:4")], Some(8), Some(2)),
            Err(BookError::NumberTooLarge { .. })
        ));
        assert!(matches!(
            BookSegments::new(vec![seg("0:0x1000:0x10:down")], None, None),
            Err(BookError::DownNeedsVaBits(_))
        ));
    }
}
