//! Paging formats: how a virtual address is split, how many levels a walk
//! has, and which entry encoding each level uses.
//!
//! A [`Format`] is data, chosen once per run: the walker, the radix-table
//! code and `calc` read its levels; the entry encoding is a small enum
//! matched on the walk path (never on the TLB-hit path).
//!
//! Levels are numbered as each architecture's manual numbers them: x86-64
//! PML4 = 4 ... page table = 1 (PML5 = 5 with 5-level paging); x86 32-bit
//! page directory = 2, page table = 1; RISC-V root = LEVELS-1 ... leaf
//! table = 0. User-defined formats follow the RISC-V convention.

use serde::{Deserialize, Serialize};
use std::fmt;

use thiserror::Error;

use crate::addr::{PageSize, VirtAddr};

use super::pte::UserBits;

/// Why a format could not be built or found.
///
/// The variants about a format file name the file and keep what went wrong
/// underneath as their [`source`](std::error::Error::source) (the I/O
/// error, the TOML error, the size's error), so a caller can still tell a
/// missing file from a syntax error.
#[derive(Debug, Error)]
pub enum FormatError {
    /// No built-in format has this name.
    #[error("unknown architecture '{0}' (expected one of: {names})", names = Format::NAMES.join(", "))]
    UnknownName(String),
    /// A user-defined format whose fields contradict each other: which
    /// fields, and how.
    #[error("{0}")]
    Inconsistent(String),
    /// A format file that could not be read (missing, too large, not UTF-8).
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A format file that is not valid TOML of the expected shape.
    #[error("{origin}: {}", crate::error_line::flat_display(source))]
    Toml {
        /// The file (or other origin) of the text.
        origin: String,
        /// The TOML error (line, column, expected; boxed: it is large).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A format file whose `page_size` is not a size.
    #[error("{origin}: page_size: {source}")]
    PageSize {
        /// The file (or other origin) of the text.
        origin: String,
        /// Why the size does not read (boxed: it is large, and rare).
        #[source]
        source: Box<vmsim_trace::units::NumberError>,
    },
    /// A format file whose fields contradict each other.
    #[error("{origin}: {source}")]
    InFile {
        /// The file (or other origin) of the text.
        origin: String,
        /// The contradiction.
        #[source]
        source: Box<FormatError>,
    },
}

/// Which real entry encoding a format uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// Intel 32-bit paging (no PAE): 4-byte entries, PSE 4 MiB pages.
    X86_32,
    /// Intel 4- and 5-level paging: 8-byte entries, NX in bit 63 (EFER.NXE=1).
    X86_64,
    /// RISC-V Sv32 / Sv39 / Sv48 / Sv57: V R W X U G A D, PPN from bit 10.
    RiscV,
    /// A classroom format typed in by a user.
    User(UserBits),
}

/// How addresses wider than the format's virtual-address bits are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Canonical {
    /// Bits above the top VA bit must copy it (x86-64, RISC-V Sv39+).
    SignExtend,
    /// Bits above the top VA bit must be zero (32-bit and classroom formats).
    ZeroExtend,
}

/// One level of a radix page table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The level's number in the architecture manual's numbering.
    pub number: u32,
    /// The lowest virtual-address bit of this level's index.
    pub shift: u32,
    /// Width of the index in bits.
    pub bits: u32,
    /// The page size of a leaf at this level, if the format allows one here.
    pub leaf: Option<PageSize>,
}

impl Level {
    /// This level's index in `va`.
    #[inline]
    #[must_use]
    pub fn index(&self, va: VirtAddr) -> u64 {
        (va.as_u64() >> self.shift) & ((1u64 << self.bits) - 1)
    }

    /// Bytes of virtual address space one entry of this level covers.
    #[inline]
    #[must_use]
    pub fn entry_span(&self) -> u64 {
        1u64 << self.shift
    }
}

/// A paging format: address split, levels and entry encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    name: String,
    va_bits: u32,
    pa_bits: u32,
    page_size: PageSize,
    entry_bytes: u32,
    levels: Vec<Level>,
    canonical: Canonical,
    encoding: Encoding,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Builds the levels of a format whose base page has `offset` bits and whose
/// index widths are `bits` (root first), numbering them `top..`.
fn levels(offset: u32, bits: &[u32], top: u32, leaves: &[Option<PageSize>]) -> Vec<Level> {
    let mut shift = offset + bits.iter().sum::<u32>();
    bits.iter()
        .zip(leaves)
        .enumerate()
        .map(|(i, (&b, &leaf))| {
            shift -= b;
            Level {
                number: top - i as u32,
                shift,
                bits: b,
                leaf,
            }
        })
        .collect()
}

const K4: Option<PageSize> = Some(PageSize::SIZE_4K);
const M2: Option<PageSize> = Some(PageSize::SIZE_2M);
const M4: Option<PageSize> = Some(PageSize::SIZE_4M);
const G1: Option<PageSize> = Some(PageSize::SIZE_1G);

impl Format {
    /// Names accepted by [`Format::by_name`].
    pub const NAMES: &'static [&'static str] = &[
        "x86-32",
        "x86-64",
        "x86-64-5level",
        "sv32",
        "sv39",
        "sv48",
        "sv57",
    ];

    /// A built-in format by name (case-insensitive; `x86_64`, `x86-64-4level`,
    /// `i386` and `riscv-sv39` style aliases are accepted too).
    pub fn by_name(name: &str) -> Result<Self, FormatError> {
        let n = name.to_ascii_lowercase().replace('_', "-");
        let n = n.strip_prefix("riscv-").unwrap_or(&n);
        Ok(match n {
            "x86-32" | "x86" | "i386" | "ia32" => Self::x86_32(),
            "x86-64" | "x86-64-4level" | "amd64" | "x64" => Self::x86_64(),
            "x86-64-5level" | "x86-64-la57" | "la57" => Self::x86_64_5level(),
            "sv32" => Self::sv32(),
            "sv39" => Self::sv39(),
            "sv48" => Self::sv48(),
            "sv57" => Self::sv57(),
            _ => return Err(FormatError::UnknownName(name.to_string())),
        })
    }

    /// Intel 32-bit paging: page directory (level 2, 4 MiB PSE leaves) and page table (level 1).
    #[must_use]
    pub fn x86_32() -> Self {
        Self {
            name: "x86-32".into(),
            va_bits: 32,
            pa_bits: 32,
            page_size: PageSize::SIZE_4K,
            entry_bytes: 4,
            levels: levels(12, &[10, 10], 2, &[M4, K4]),
            canonical: Canonical::ZeroExtend,
            encoding: Encoding::X86_32,
        }
    }

    /// Intel 4-level paging: PML4, PDPT (1 GiB leaves), PD (2 MiB leaves), PT.
    #[must_use]
    pub fn x86_64() -> Self {
        Self {
            name: "x86-64".into(),
            va_bits: 48,
            pa_bits: 52,
            page_size: PageSize::SIZE_4K,
            entry_bytes: 8,
            levels: levels(12, &[9, 9, 9, 9], 4, &[None, G1, M2, K4]),
            canonical: Canonical::SignExtend,
            encoding: Encoding::X86_64,
        }
    }

    /// Intel 5-level paging (LA57): PML5 above the 4-level hierarchy.
    #[must_use]
    pub fn x86_64_5level() -> Self {
        Self {
            name: "x86-64-5level".into(),
            va_bits: 57,
            pa_bits: 52,
            page_size: PageSize::SIZE_4K,
            entry_bytes: 8,
            levels: levels(12, &[9, 9, 9, 9, 9], 5, &[None, None, G1, M2, K4]),
            canonical: Canonical::SignExtend,
            encoding: Encoding::X86_64,
        }
    }

    /// RISC-V Sv32: two levels of 10 bits, 4-byte entries, 4 MiB megapages, 34-bit PA.
    #[must_use]
    pub fn sv32() -> Self {
        Self {
            name: "sv32".into(),
            va_bits: 32,
            pa_bits: 34,
            page_size: PageSize::SIZE_4K,
            entry_bytes: 4,
            levels: levels(12, &[10, 10], 1, &[M4, K4]),
            canonical: Canonical::ZeroExtend,
            encoding: Encoding::RiscV,
        }
    }

    fn riscv64(name: &str, n: usize) -> Self {
        let mut leaves = vec![None; n];
        for (i, leaf) in leaves.iter_mut().enumerate() {
            // A leaf is allowed at every level: level k maps 2^(12 + 9k) bytes.
            let k = (n - 1 - i) as u32;
            *leaf = PageSize::from_shift(12 + 9 * k).ok();
        }
        Self {
            name: name.into(),
            va_bits: 12 + 9 * n as u32,
            pa_bits: 56,
            page_size: PageSize::SIZE_4K,
            entry_bytes: 8,
            levels: levels(12, &vec![9; n], n as u32 - 1, &leaves),
            canonical: Canonical::SignExtend,
            encoding: Encoding::RiscV,
        }
    }

    /// RISC-V Sv39: three levels of 9 bits, leaves at any level, 56-bit PA.
    #[must_use]
    pub fn sv39() -> Self {
        Self::riscv64("sv39", 3)
    }

    /// RISC-V Sv48: four levels of 9 bits.
    #[must_use]
    pub fn sv48() -> Self {
        Self::riscv64("sv48", 4)
    }

    /// RISC-V Sv57: five levels of 9 bits.
    #[must_use]
    pub fn sv57() -> Self {
        Self::riscv64("sv57", 5)
    }

    /// A user-defined format. `level_bits` is root first; the leaf level
    /// maps base pages and no superpages exist. Levels are numbered
    /// `n-1 .. 0` as RISC-V numbers them.
    pub fn user(
        name: &str,
        va_bits: u32,
        page_size: PageSize,
        level_bits: &[u32],
        bits: UserBits,
    ) -> Result<Self, FormatError> {
        let bad = |m: String| Err(FormatError::Inconsistent(m));
        if !(1..=64).contains(&va_bits) {
            return bad(format!("va_bits = {va_bits}: expected 1 to 64"));
        }
        let offset = page_size.shift();
        if offset > va_bits {
            return bad(format!(
                "page_size = {} needs {offset} offset bits but va_bits = {va_bits}",
                page_size.bytes()
            ));
        }
        if level_bits.is_empty() {
            return bad(
                "level_bits is empty: give at least one level (e.g. [6] for a flat table)".into(),
            );
        }
        if level_bits.contains(&0) {
            return bad(format!(
                "level_bits = {level_bits:?}: every level needs at least one index bit"
            ));
        }
        let sum: u32 = level_bits.iter().sum();
        if sum + offset != va_bits {
            let parts: Vec<String> = level_bits.iter().map(u32::to_string).collect();
            return bad(format!(
                "level_bits {} = {sum} index bits, plus {offset} offset bits (page_size = {}) is {}, \
                 but va_bits = {va_bits}",
                parts.join("+"),
                page_size.bytes(),
                sum + offset
            ));
        }
        if level_bits.iter().any(|&b| b > 32) {
            return bad(format!(
                "level_bits = {level_bits:?}: a level of more than 32 index bits is not supported"
            ));
        }
        bits.validate(offset)?;
        let pa_bits = bits.pa_bits(offset);
        if pa_bits > crate::addr::MAX_PHYS_BITS {
            return bad(format!(
                "the frame field ({} bits) with {offset} offset bits gives {pa_bits}-bit physical \
                 addresses; at most {} are supported",
                bits.frame_bits,
                crate::addr::MAX_PHYS_BITS
            ));
        }
        let n = level_bits.len();
        let mut leaves = vec![None; n];
        leaves[n - 1] = Some(page_size);
        Ok(Self {
            name: name.to_string(),
            va_bits,
            pa_bits,
            page_size,
            entry_bytes: bits.entry_bytes,
            levels: levels(offset, level_bits, n as u32 - 1, &leaves),
            canonical: Canonical::ZeroExtend,
            encoding: Encoding::User(bits),
        })
    }

    /// The format's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Significant virtual-address bits.
    #[must_use]
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }

    /// Physical-address bits an entry can express.
    #[must_use]
    pub fn pa_bits(&self) -> u32 {
        self.pa_bits
    }

    /// The base page size.
    #[must_use]
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Bytes per page-table entry.
    #[must_use]
    pub fn entry_bytes(&self) -> u32 {
        self.entry_bytes
    }

    /// The levels, root first.
    #[must_use]
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Index bits per level, root first.
    #[must_use]
    pub fn level_bits(&self) -> Vec<u32> {
        self.levels.iter().map(|l| l.bits).collect()
    }

    /// The entry encoding.
    #[must_use]
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// How out-of-range upper address bits are treated.
    #[must_use]
    pub fn canonical(&self) -> Canonical {
        self.canonical
    }

    /// The manual's name for the table at level `idx` (root = 0): `PML4`,
    /// `PDPT`, `PD`, `PT` on x86; `level 2` ... `level 0` elsewhere.
    #[must_use]
    pub fn table_name(&self, idx: usize) -> String {
        let n = self.levels[idx].number;
        match self.encoding {
            Encoding::X86_64 => ["PT", "PD", "PDPT", "PML4", "PML5"]
                .get(n as usize - 1)
                .map_or_else(|| format!("level {n}"), |s| (*s).to_string()),
            Encoding::X86_32 => if n == 2 { "PD" } else { "PT" }.to_string(),
            _ => format!("level {n}"),
        }
    }

    /// The manual's name for level `idx`'s index field: `PML4 index` on x86,
    /// `VPN[2]` on RISC-V, `level 1 index` in a classroom format.
    #[must_use]
    pub fn index_name(&self, idx: usize) -> String {
        match self.encoding {
            Encoding::RiscV => format!("VPN[{}]", self.levels[idx].number),
            Encoding::User(_) => format!("level {} index", self.levels[idx].number),
            _ => format!("{} index", self.table_name(idx)),
        }
    }

    /// Every page size a leaf can map, smallest first.
    #[must_use]
    pub fn page_sizes(&self) -> Vec<PageSize> {
        let mut v: Vec<PageSize> = self.levels.iter().filter_map(|l| l.leaf).collect();
        v.sort();
        v
    }

    /// The index (root = 0) of the level whose leaves map pages of `size`.
    #[must_use]
    pub fn level_for_size(&self, size: PageSize) -> Option<usize> {
        self.levels.iter().position(|l| l.leaf == Some(size))
    }

    /// Bytes of one table of the level at `idx` (root = 0).
    #[must_use]
    pub fn table_bytes(&self, idx: usize) -> u64 {
        (1u64 << self.levels[idx].bits) * u64::from(self.entry_bytes)
    }

    /// The allocation order (log2 of frames) of one table of level `idx`: a
    /// table smaller than a page still takes one frame, as an OS would give it.
    #[must_use]
    pub fn table_order(&self, idx: usize) -> u32 {
        let frames = self.table_bytes(idx).div_ceil(self.page_size.bytes());
        frames.next_power_of_two().trailing_zeros()
    }

    /// Checks that `va` is an address of this format: canonical (sign-extended)
    /// or within the address width (zero-extended).
    pub fn check_address(&self, va: VirtAddr) -> Result<(), AddressFault> {
        if self.va_bits >= 64 {
            return Ok(());
        }
        let raw = va.as_u64();
        match self.canonical {
            Canonical::SignExtend => {
                // The bits from the top VA bit up, shifted down with the
                // sign: 0 or -1 exactly when they all copy it (one shift,
                // where a mask of ones cost two more on every walk).
                let upper = (raw as i64) >> (self.va_bits - 1);
                if upper == 0 || upper == -1 {
                    Ok(())
                } else {
                    Err(AddressFault::NonCanonical)
                }
            }
            Canonical::ZeroExtend => {
                if raw >> self.va_bits == 0 {
                    Ok(())
                } else {
                    Err(AddressFault::TooWide)
                }
            }
        }
    }
}

/// Why an address is not an address of a format at all (before any walk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddressFault {
    /// Upper bits do not copy the top VA bit (x86-64, RISC-V Sv39+).
    #[error("non-canonical address")]
    NonCanonical,
    /// Bits set above the format's address width.
    #[error("address wider than the format's virtual-address bits")]
    TooWide,
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `check_address` of a sign-extended format passes exactly when
        /// the bits from the top VA bit up, shifted down, are zero or a
        /// mask of ones (its test before the arithmetic shift).
        #[test]
        fn sign_extension_is_the_shifted_bits(
            raw: u64,
            which in 0usize..3,
            low in 0u32..64,
            top: bool,
        ) {
            let fmt = match which { 0 => Format::x86_64(), 1 => Format::x86_64_5level(), _ => Format::sv39() };
            // Mostly addresses at the edge: every bit from `low` up equal.
            let raw = if top { raw | (u64::MAX << low) } else { raw & !(u64::MAX << low) };
            for raw in [raw, raw ^ (1 << low)] {
                let vb = fmt.va_bits();
                let upper = raw >> (vb - 1);
                let want = upper == 0 || upper == u64::MAX >> (vb - 1);
                proptest::prop_assert_eq!(
                    fmt.check_address(VirtAddr::new(raw)).is_ok(),
                    want,
                    "{:#x} {}",
                    raw,
                    vb
                );
            }
        }
    }

    #[test]
    fn x86_64_levels() {
        let f = Format::x86_64();
        let va = VirtAddr::new(0x0000_7fff_ffff_e123);
        let idx: Vec<u64> = f.levels().iter().map(|l| l.index(va)).collect();
        assert_eq!(idx, vec![255, 511, 511, 510]);
        let nums: Vec<u32> = f.levels().iter().map(|l| l.number).collect();
        assert_eq!(nums, vec![4, 3, 2, 1]);
        assert_eq!(
            f.check_address(VirtAddr::new(0x0000_8000_0000_0000)),
            Err(AddressFault::NonCanonical)
        );
        assert_eq!(
            f.check_address(VirtAddr::new(0xffff_8000_0000_0000)),
            Ok(())
        );
        assert_eq!(
            f.page_sizes(),
            vec![PageSize::SIZE_4K, PageSize::SIZE_2M, PageSize::SIZE_1G]
        );
    }

    #[test]
    fn five_level_is_57_bits() {
        let f = Format::x86_64_5level();
        assert_eq!(f.va_bits(), 57);
        assert_eq!(f.levels()[0].number, 5);
        assert_eq!(f.levels()[0].shift, 48);
    }

    #[test]
    fn sv39_shape() {
        let f = Format::sv39();
        assert_eq!(f.va_bits(), 39);
        assert_eq!(f.pa_bits(), 56);
        assert_eq!(f.levels().len(), 3);
        assert_eq!(f.levels()[0].number, 2);
        assert_eq!(f.levels()[0].leaf, G1);
        assert_eq!(f.check_address(VirtAddr::new(0x3f_ffff_ffff)), Ok(()));
        assert_eq!(
            f.check_address(VirtAddr::new(0x7f_ffff_ffff)),
            Err(AddressFault::NonCanonical)
        );
        assert_eq!(
            f.check_address(VirtAddr::new(0x40_0000_0000 | !((1u64 << 39) - 1))),
            Ok(())
        );
    }

    #[test]
    fn names_and_aliases() {
        for n in Format::NAMES {
            assert_eq!(
                Format::by_name(n).map(|f| f.name().to_string()).ok(),
                Some((*n).to_string())
            );
        }
        assert_eq!(
            Format::by_name("riscv-sv39").map(|f| f.va_bits()).ok(),
            Some(39)
        );
        assert!(matches!(
            Format::by_name("vax"),
            Err(FormatError::UnknownName(_))
        ));
    }

    #[test]
    fn x86_32_too_wide() {
        let f = Format::x86_32();
        assert_eq!(
            f.check_address(VirtAddr::new(1 << 32)),
            Err(AddressFault::TooWide)
        );
        assert_eq!(f.table_order(0), 0);
    }
}
