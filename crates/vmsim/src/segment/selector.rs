//! Segment selectors and the two ways of reading them.
//!
//! The course writes `0x1:0xFF` and means "segment 1": the selector *is* the
//! index into the descriptor table ([`SelectorMode::Course`]). An x86
//! selector packs three fields into 16 bits, `index << 3 | TI << 2 | RPL`
//! ([`SelectorMode::X86`]): TI picks the global (GDT) or local (LDT) table,
//! and RPL is the requested privilege level.

use std::fmt;

use serde::{Serialize, Serializer};

use super::descriptor::Ring;

/// A segment selector exactly as written: 16 bits, meaning depends on the
/// table's [`SelectorMode`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Selector(u16);

impl Selector {
    /// Wraps a raw selector.
    #[inline]
    #[must_use]
    pub const fn new(raw: u16) -> Self {
        Self(raw)
    }

    /// The x86 selector for descriptor `index` (below 8192) of `table`, requested at `rpl`.
    #[must_use]
    pub const fn x86(index: u16, table: TableKind, rpl: Ring) -> Self {
        let ti = match table {
            TableKind::Global => 0,
            TableKind::Local => 1,
        };
        Self((index << 3) | (ti << 2) | rpl.level() as u16)
    }

    /// The raw 16 bits.
    #[inline]
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The fields of this selector under `mode`.
    #[inline]
    #[must_use]
    pub const fn decode(self, mode: SelectorMode) -> DecodedSelector {
        match mode {
            SelectorMode::Course => DecodedSelector {
                table: TableKind::Global,
                index: self.0,
                rpl: Ring::KERNEL,
            },
            SelectorMode::X86 => DecodedSelector {
                table: if self.0 & 0b100 == 0 {
                    TableKind::Global
                } else {
                    TableKind::Local
                },
                index: self.0 >> 3,
                // Two bits are always a valid ring.
                rpl: match self.0 & 0b11 {
                    0 => Ring::KERNEL,
                    1 => RING_1,
                    2 => RING_2,
                    _ => Ring::USER,
                },
            },
        }
    }
}

const RING_1: Ring = match Ring::new(1) {
    Ok(r) => r,
    Err(_) => panic!("ring 1 exists"),
};
const RING_2: Ring = match Ring::new(2) {
    Ok(r) => r,
    Err(_) => panic!("ring 2 exists"),
};

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl Serialize for Selector {
    /// Serialised as a hex string, `"0x1"`, like every address in vmsim's JSON.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How a selector names a descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectorMode {
    /// The selector is the index into one descriptor table, as the course
    /// writes `0x1:0xFF` for segment 1. No privilege is requested (RPL 0).
    #[default]
    Course,
    /// The x86 layout `index << 3 | TI << 2 | RPL`; index 0 of the GDT is
    /// the null descriptor and cannot be used.
    X86,
}

impl SelectorMode {
    /// The number of descriptors one table can hold in this mode.
    #[must_use]
    pub const fn table_capacity(self) -> u32 {
        match self {
            Self::Course => 1 << 16,
            Self::X86 => 1 << 13,
        }
    }
}

impl fmt::Display for SelectorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Course => "course",
            Self::X86 => "x86",
        })
    }
}

/// Which descriptor table a selector refers to (the x86 TI bit).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// The global descriptor table (TI = 0), shared by every process.
    Global,
    /// The local descriptor table (TI = 1) of the current process.
    Local,
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Global => "GDT",
            Self::Local => "LDT",
        })
    }
}

/// A selector taken apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DecodedSelector {
    /// The table the descriptor is in.
    pub table: TableKind,
    /// The descriptor's index in that table.
    pub index: u16,
    /// The requested privilege level (ring 0 in course mode).
    pub rpl: Ring,
}

impl fmt::Display for DecodedSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} index {}, RPL {}", self.table, self.index, self.rpl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_selector_is_the_index() {
        let d = Selector::new(0x1).decode(SelectorMode::Course);
        assert_eq!(d.index, 1);
        assert_eq!(d.table, TableKind::Global);
        assert_eq!(d.rpl, Ring::KERNEL);
    }

    #[test]
    fn x86_selector_fields() {
        // Linux's __USER_DS: GDT entry 5, RPL 3.
        let d = Selector::new(0x2b).decode(SelectorMode::X86);
        assert_eq!(
            (d.index, d.table, d.rpl),
            (5, TableKind::Global, Ring::USER)
        );
        let l = Selector::new(0x0f).decode(SelectorMode::X86);
        assert_eq!((l.index, l.table, l.rpl), (1, TableKind::Local, Ring::USER));
        assert_eq!(
            Selector::x86(5, TableKind::Global, Ring::USER),
            Selector::new(0x2b)
        );
        assert_eq!(
            Selector::x86(1, TableKind::Local, Ring::USER),
            Selector::new(0x0f)
        );
    }
}
