//! The bit layout of a raw entry, field by field, for explanations: which
//! bits are flags (and their names in the manual), which hold the address of
//! the next table or page, which are reserved (must be zero, else the walk
//! faults) and which the hardware ignores (free for the OS).
//!
//! Only describes; decoding stays in `pte.rs` ([`Format::decode`]). The
//! layout follows what the entry *is* at its level: an x86 entry with PS set
//! in a directory is a large page (PAT moves to bit 12, the address starts
//! at the page size), an entry whose present bit is clear is all "ignored"
//! above that bit, as the manuals say.

use serde::Serialize;

use super::format::{Encoding, Format};
use super::pte::Entry;

/// What a field of an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A one-bit flag (present, writable, accessed, ...).
    Flag,
    /// The physical address (frame or next table), or its page number.
    Address,
    /// Must be zero: a set bit is a reserved-bit fault.
    Reserved,
    /// Ignored by the hardware (free for the OS).
    Ignored,
}

/// One field of a raw entry: bits `lo..=hi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryField {
    /// The manual's name (`P`, `RW`, `V`, `PPN`, `address`, `ignored`).
    pub name: &'static str,
    /// Highest bit.
    pub hi: u32,
    /// Lowest bit.
    pub lo: u32,
    /// The field's value in `raw` (`(raw >> lo) & mask`).
    pub value: u64,
    /// What the field is.
    pub kind: FieldKind,
}

/// Builds a layout from named pieces, filling the gaps with `ignored`.
struct Fields {
    width: u32,
    raw: u64,
    out: Vec<EntryField>,
}

impl Fields {
    fn new(width: u32, raw: u64) -> Self {
        Self {
            width,
            raw,
            out: Vec::new(),
        }
    }

    fn add(&mut self, name: &'static str, hi: u32, lo: u32, kind: FieldKind) {
        if lo > hi || hi >= self.width {
            return;
        }
        let bits = hi - lo + 1;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        self.out.push(EntryField {
            name,
            hi,
            lo,
            value: (self.raw >> lo) & mask,
            kind,
        });
    }

    fn flag(&mut self, name: &'static str, bit: u32) {
        self.add(name, bit, bit, FieldKind::Flag);
    }

    /// The fields, highest bit first, with every uncovered run of bits
    /// as one `ignored` field.
    fn finish(mut self) -> Vec<EntryField> {
        self.out.sort_by_key(|f| f.lo);
        let mut covered = vec![false; self.width as usize];
        for f in &self.out {
            for b in f.lo..=f.hi {
                covered[b as usize] = true;
            }
        }
        let mut b = 0;
        while b < self.width {
            if covered[b as usize] {
                b += 1;
                continue;
            }
            let lo = b;
            while b < self.width && !covered[b as usize] {
                b += 1;
            }
            self.add("ignored", b - 1, lo, FieldKind::Ignored);
        }
        self.out.sort_by_key(|f| std::cmp::Reverse(f.lo));
        self.out
    }
}

impl Format {
    /// The fields of raw entry `raw` read at level `idx` (root = 0), highest
    /// bit first, covering every bit of the entry.
    #[must_use]
    pub fn entry_layout(&self, idx: usize, raw: u64) -> Vec<EntryField> {
        use FieldKind::{Address, Reserved};
        let width = self.entry_bytes() * 8;
        let mut f = Fields::new(width, raw);
        let last = idx + 1 == self.levels().len();
        let entry = self.decode(idx, raw);
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => {
                let is64 = matches!(self.encoding(), Encoding::X86_64);
                f.flag("P", 0);
                if raw & 1 == 0 {
                    return f.finish();
                }
                for (name, bit) in [("RW", 1), ("US", 2), ("PWT", 3), ("PCD", 4), ("A", 5)] {
                    f.flag(name, bit);
                }
                let huge = !last && raw >> 7 & 1 == 1;
                let top = if is64 { self.pa_bits().min(52) } else { 32 };
                if last || huge {
                    f.flag("D", 6);
                    f.flag(if huge { "PS" } else { "PAT" }, 7);
                    f.flag("G", 8);
                } else {
                    f.flag("PS", 7);
                }
                if huge {
                    f.flag("PAT", 12);
                    let shift = self.levels()[idx].leaf.map_or(12, |s| s.shift());
                    f.add("reserved", shift - 1, 13, Reserved);
                    f.add("address", top - 1, shift, Address);
                } else {
                    f.add("address", top - 1, 12, Address);
                }
                if is64 {
                    f.add("reserved", 51, top, Reserved);
                    if last || huge {
                        f.add("PK", 62, 59, FieldKind::Ignored);
                    }
                    f.flag("NX", 63);
                }
            }
            Encoding::RiscV => {
                for (name, bit) in [("V", 0), ("R", 1), ("W", 2), ("X", 3)] {
                    f.flag(name, bit);
                }
                if raw & 1 == 0 {
                    // Only V matters; the rest is the OS's.
                    let mut g = Fields::new(width, raw);
                    g.flag("V", 0);
                    return g.finish();
                }
                for (name, bit) in [("U", 4), ("G", 5), ("A", 6), ("D", 7)] {
                    f.flag(name, bit);
                }
                f.add("RSW", 9, 8, FieldKind::Ignored);
                if width == 32 {
                    f.add("PPN", 31, 10, Address);
                } else {
                    f.add("PPN", 53, 10, Address);
                    f.add("reserved", 60, 54, Reserved);
                    f.add("PBMT", 62, 61, Reserved);
                    f.flag("N", 63);
                }
            }
            Encoding::User(b) => {
                f.flag("valid", b.valid);
                if !matches!(entry, Entry::Invalid) {
                    for (name, bit) in [
                        ("writable", b.writable),
                        ("user", b.user),
                        ("executable", b.executable),
                        ("accessed", b.accessed),
                        ("dirty", b.dirty),
                    ] {
                        if let Some(bit) = bit {
                            f.flag(name, bit);
                        }
                    }
                    f.add("frame", b.frame_lo + b.frame_bits - 1, b.frame_lo, Address);
                }
            }
        }
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;
    use crate::paging::PteFlags;

    fn covers_every_bit(fields: &[EntryField], width: u32, raw: u64) {
        let mut seen = vec![0u32; width as usize];
        let mut back = 0u64;
        for f in fields {
            for b in f.lo..=f.hi {
                seen[b as usize] += 1;
            }
            back |= f.value << f.lo;
        }
        assert!(seen.iter().all(|&n| n == 1), "{fields:?}");
        assert_eq!(back, raw, "the fields put back together are the entry");
    }

    #[test]
    fn x86_64_leaf_table_and_large_page() {
        let f = Format::x86_64();
        let pa = PhysAddr::new_unchecked(0x1234_5000);
        let leaf = f
            .encode_leaf(3, pa, PteFlags::READ | PteFlags::WRITE | PteFlags::USER)
            .expect("fits");
        let l = f.entry_layout(3, leaf);
        covers_every_bit(&l, 64, leaf);
        let addr = l.iter().find(|x| x.name == "address").expect("address");
        assert_eq!((addr.hi, addr.lo, addr.value << 12), (51, 12, 0x1234_5000));
        assert!(l.iter().any(|x| x.name == "NX" && x.value == 1));
        assert!(l.iter().any(|x| x.name == "PAT" && x.lo == 7));
        let table = f.encode_table(0, pa).expect("fits");
        let t = f.entry_layout(0, table);
        covers_every_bit(&t, 64, table);
        assert!(t.iter().all(|x| x.name != "D" && x.name != "G"));
        let big = f
            .encode_leaf(2, PhysAddr::new_unchecked(0x4020_0000), PteFlags::READ)
            .expect("fits");
        let b = f.entry_layout(2, big);
        covers_every_bit(&b, 64, big);
        let addr = b.iter().find(|x| x.name == "address").expect("address");
        assert_eq!((addr.lo, addr.value << 21), (21, 0x4020_0000));
        assert!(b.iter().any(|x| x.name == "PS" && x.value == 1));
        assert!(
            b.iter()
                .any(|x| x.name == "reserved" && (x.lo, x.hi) == (13, 20))
        );
        // Not present: P and 63 ignored bits.
        let z = f.entry_layout(1, 0xdead_0000);
        covers_every_bit(&z, 64, 0xdead_0000);
        assert_eq!(z.len(), 2);
    }

    #[test]
    fn riscv_and_classroom_layouts_cover_the_entry() {
        let f = Format::sv39();
        let raw = 0x0000_0000_2008_00c7;
        let l = f.entry_layout(1, raw);
        covers_every_bit(&l, 64, raw);
        let ppn = l.iter().find(|x| x.name == "PPN").expect("PPN");
        assert_eq!(ppn.value << 12, 0x8020_0000);
        let s = Format::sv32();
        covers_every_bit(&s.entry_layout(0, 0x0000_0801), 32, 0x0000_0801);
        let c = Format::x86_32();
        covers_every_bit(&c.entry_layout(0, 0x0040_0083), 32, 0x0040_0083);
        let bits = crate::paging::UserBits::new(1, 7, 0, 7);
        let u = Format::user(
            "c",
            15,
            crate::addr::PageSize::from_shift(5).expect("32 B"),
            &[5, 5],
            bits,
        )
        .expect("valid");
        let l = u.entry_layout(1, 0x89);
        covers_every_bit(&l, 8, 0x89);
        assert!(l.iter().any(|x| x.name == "frame" && x.value == 9));
    }
}
