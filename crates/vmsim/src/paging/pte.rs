//! Page-table entries: each architecture's real bits, encoded and decoded.
//!
//! Entries live as raw integers in simulated physical memory; this module
//! turns a raw entry into what the hardware makes of it ([`Entry`]) and
//! builds raw entries for the radix-table code. It never reads memory.

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

use crate::addr::PhysAddr;

use super::format::{Encoding, Format, FormatError};

bitflags! {
    /// What an entry grants or records, decoded from any format.
    ///
    /// For a leaf these are the page's permissions and status bits. For a
    /// pointer to the next table they are the limits the entry puts on
    /// everything below it (x86 ANDs R/W and U/S over all levels and ORs
    /// NX; RISC-V pointers limit nothing).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub struct PteFlags: u16 {
        /// Loads are allowed.
        const READ = 1 << 0;
        /// Stores are allowed.
        const WRITE = 1 << 1;
        /// Instruction fetches are allowed.
        const EXEC = 1 << 2;
        /// User mode may access (x86 U/S = 1, RISC-V U = 1).
        const USER = 1 << 3;
        /// Global: survives non-global TLB flushes.
        const GLOBAL = 1 << 4;
        /// The hardware (or OS, under Svade) recorded an access.
        const ACCESSED = 1 << 5;
        /// The page was written.
        const DIRTY = 1 << 6;
        /// x86 PWT: write-through caching.
        const WRITE_THROUGH = 1 << 7;
        /// x86 PCD: caching disabled.
        const CACHE_DISABLE = 1 << 8;
    }
}

impl PteFlags {
    /// The permission bits only (read, write, execute, user).
    pub const PERMS: Self = Self::READ
        .union(Self::WRITE)
        .union(Self::EXEC)
        .union(Self::USER);
}

/// A decoded entry: what the hardware makes of the raw bits at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Present/valid bit clear: the walk stops with a not-present fault.
    Invalid,
    /// A pointer to the next level's table.
    Table {
        /// Physical address of the next table.
        addr: PhysAddr,
        /// Permissions this entry allows below it.
        limits: PteFlags,
    },
    /// A leaf mapping a page (at a non-last level: a superpage).
    Leaf {
        /// Physical address the entry's frame field names (not yet checked for alignment).
        addr: PhysAddr,
        /// Permissions and status bits.
        flags: PteFlags,
    },
    /// Bits set that must be clear, or a reserved encoding: the walk faults.
    Reserved(&'static str),
}

/// Bit positions of a user-defined entry format (classroom formats).
///
/// Flag positions that are `None` mean the format has no such bit: the
/// permission is always granted, the status is never recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBits {
    /// Entry size in bytes: 1, 2, 4 or 8.
    pub entry_bytes: u32,
    /// The valid (present) bit.
    pub valid: u32,
    /// The writable bit.
    #[serde(default)]
    pub writable: Option<u32>,
    /// The user-accessible bit.
    #[serde(default)]
    pub user: Option<u32>,
    /// The executable bit.
    #[serde(default)]
    pub executable: Option<u32>,
    /// The accessed bit.
    #[serde(default)]
    pub accessed: Option<u32>,
    /// The dirty bit.
    #[serde(default)]
    pub dirty: Option<u32>,
    /// Lowest bit of the frame-number field.
    pub frame_lo: u32,
    /// Width of the frame-number field in bits.
    pub frame_bits: u32,
}

impl UserBits {
    /// The smallest classroom entry: a valid bit and a frame field, no flag
    /// bits (every page readable, writable, executable and user-accessible;
    /// no accessed or dirty bits). Set the optional fields to add flags.
    #[must_use]
    pub const fn new(entry_bytes: u32, valid: u32, frame_lo: u32, frame_bits: u32) -> Self {
        Self {
            entry_bytes,
            valid,
            writable: None,
            user: None,
            executable: None,
            accessed: None,
            dirty: None,
            frame_lo,
            frame_bits,
        }
    }

    fn named_bits(&self) -> Vec<(&'static str, u32)> {
        let mut v = vec![("valid", self.valid)];
        for (name, b) in [
            ("writable", self.writable),
            ("user", self.user),
            ("executable", self.executable),
            ("accessed", self.accessed),
            ("dirty", self.dirty),
        ] {
            if let Some(b) = b {
                v.push((name, b));
            }
        }
        v
    }

    /// Checks the fields against each other and the entry size.
    pub fn validate(&self, _offset_bits: u32) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::Inconsistent(m));
        if !matches!(self.entry_bytes, 1 | 2 | 4 | 8) {
            return bad(format!(
                "entry_bytes = {}: expected 1, 2, 4 or 8",
                self.entry_bytes
            ));
        }
        let width = self.entry_bytes * 8;
        if self.frame_bits == 0 {
            return bad("frame_bits = 0: the frame-number field needs at least one bit".into());
        }
        if self.frame_lo + self.frame_bits > width {
            return bad(format!(
                "the frame field (bits {}..{}) does not fit a {}-byte entry ({width} bits)",
                self.frame_lo,
                self.frame_lo + self.frame_bits - 1,
                self.entry_bytes
            ));
        }
        let named = self.named_bits();
        for (i, &(name, bit)) in named.iter().enumerate() {
            if bit >= width {
                return bad(format!(
                    "{name} = {bit} is outside a {}-byte entry (bits 0..{})",
                    self.entry_bytes,
                    width - 1
                ));
            }
            if (self.frame_lo..self.frame_lo + self.frame_bits).contains(&bit) {
                return bad(format!(
                    "{name} = {bit} overlaps the frame field (bits {}..{})",
                    self.frame_lo,
                    self.frame_lo + self.frame_bits - 1
                ));
            }
            if let Some((other, _)) = named[..i].iter().find(|(_, b)| *b == bit) {
                return bad(format!("{name} and {other} are both bit {bit}"));
            }
        }
        Ok(())
    }

    /// Physical-address width the frame field gives with `offset_bits`-bit pages.
    #[must_use]
    pub fn pa_bits(&self, offset_bits: u32) -> u32 {
        self.frame_bits + offset_bits
    }

    fn flag(bit: Option<u32>, raw: u64, absent_means: bool) -> bool {
        bit.map_or(absent_means, |b| raw >> b & 1 == 1)
    }
}

// x86 bit positions (Intel SDM vol. 3, 4.3 and 4.5).
const X86_P: u64 = 1 << 0;
const X86_RW: u64 = 1 << 1;
const X86_US: u64 = 1 << 2;
const X86_PWT: u64 = 1 << 3;
const X86_PCD: u64 = 1 << 4;
const X86_A: u64 = 1 << 5;
const X86_D: u64 = 1 << 6;
const X86_PS: u64 = 1 << 7;
const X86_G: u64 = 1 << 8;
const X86_NX: u64 = 1 << 63;
const X86_64_ADDR: u64 = 0x000f_ffff_ffff_f000;
const X86_32_ADDR: u64 = 0xffff_f000;

/// The page-size bit (PS) of an x86 entry above the last level: a table
/// pointer has it clear (for the MMU's straight-line walk).
pub(crate) const X86_PAGE_SIZE: u64 = X86_PS;

/// The frame (or next table) address bits of an x86-64 entry.
pub(crate) const X86_64_FRAME: u64 = X86_64_ADDR;

/// The rights of a present x86-64 entry as [`PteFlags`] bits: READ always;
/// R/W (bit 1) is WRITE (bit 1); U/S (bit 2) is USER (bit 3); NX clear (bit
/// 63) is EXEC (bit 2). Shared by [`Format::decode_x86_64_plain_reserved`]
/// and the MMU's straight-line walk, so the two cannot differ.
#[inline(always)]
#[must_use]
pub(crate) fn x86_rights(raw: u64) -> u16 {
    PteFlags::READ.bits()
        | (raw & X86_RW) as u16
        | ((raw & X86_US) << 1) as u16
        | (((!raw >> 63) & 1) << 2) as u16
}

/// The status bits of a present x86-64 leaf as [`PteFlags`] bits: A (5) and
/// D (6) keep their places; PWT (3) -> bit 7, PCD (4) -> bit 8, G (8) -> bit
/// 4. Shared as [`x86_rights`] is.
#[inline(always)]
#[must_use]
pub(crate) fn x86_leaf_status(raw: u64) -> u16 {
    (raw & (X86_A | X86_D)) as u16
        | (((raw & (X86_PWT | X86_PCD)) << 4) as u16)
        | (((raw & X86_G) >> 4) as u16)
}

// RISC-V bit positions (privileged spec, Sv32/Sv39 PTE format).
const RV_V: u64 = 1 << 0;
const RV_R: u64 = 1 << 1;
const RV_W: u64 = 1 << 2;
const RV_X: u64 = 1 << 3;
const RV_U: u64 = 1 << 4;
const RV_G: u64 = 1 << 5;
const RV_A: u64 = 1 << 6;
const RV_D: u64 = 1 << 7;
const RV_PPN_SHIFT: u32 = 10;

/// [`Format::plain_leaf_test`]: whether an entry is a present x86-64
/// last-level leaf with no reserved address bit (whose A and D bits
/// [`Format::decode`] reports as they stand), as one level compare and one
/// masked compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainLeafTest {
    /// The last level's index (`usize::MAX`: the format has no plain leaves).
    last_idx: usize,
    /// P and the reserved address bits.
    mask: u64,
    /// P alone.
    value: u64,
}

impl PlainLeafTest {
    /// The accessed bit of a plain leaf.
    pub(crate) const ACCESSED: u64 = X86_A;

    /// The level a plain leaf is at (`usize::MAX` for a format without them).
    #[inline(always)]
    #[must_use]
    pub(crate) fn last_idx(&self) -> usize {
        self.last_idx
    }

    /// The test of a plain leaf's bits as a mask and the value the masked
    /// entry must have (what [`PlainLeafTest::is_plain`] compares, its
    /// level aside): for [`crate::memory::PhysMemory::clear_le_bits_if`].
    #[inline(always)]
    #[must_use]
    pub(crate) fn mask_and_value(&self) -> (u64, u64) {
        (self.mask, self.value)
    }

    /// Whether raw entry `raw` at level `idx` is a plain leaf.
    #[inline(always)]
    #[must_use]
    pub(crate) fn is_plain(&self, idx: usize, raw: u64) -> bool {
        idx == self.last_idx && raw & self.mask == self.value
    }

    /// A plain leaf's accessed and dirty flags, as [`Format::leaf_status`]
    /// gives them.
    #[inline(always)]
    #[must_use]
    pub(crate) fn status(raw: u64) -> PteFlags {
        PteFlags::from_bits_retain((raw & (X86_A | X86_D)) as u16)
    }
}

/// Why an entry could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The physical address does not fit the entry's frame field.
    #[error("physical address {0} does not fit the entry's {1}-bit physical address field")]
    AddressTooWide(PhysAddr, u32),
    /// The physical address is not aligned to the page or table it names.
    #[error("physical address {0} is not aligned to {1}")]
    Misaligned(PhysAddr, crate::addr::PageSize),
    /// This level cannot hold a leaf in this format.
    #[error("level {0} of this format cannot map a page")]
    NoLeafHere(u32),
}

impl Format {
    fn is_last(&self, idx: usize) -> bool {
        idx + 1 == self.levels().len()
    }

    fn riscv_ppn_mask(&self) -> u64 {
        if self.entry_bytes() == 4 {
            (1 << 22) - 1
        } else {
            (1 << 44) - 1
        }
    }

    /// Decodes the raw entry found at level `idx` (root = 0).
    ///
    /// Plain x86-64 entries (a present table pointer, a present last-level
    /// leaf: nearly every entry the kernel's walks, maps and unmaps read)
    /// are decoded inline (`Format::decode_x86_64_plain`); everything
    /// else goes to the generic decoder.
    #[inline]
    #[must_use]
    pub fn decode(&self, idx: usize, raw: u64) -> Entry {
        match self.decode_x86_64_plain(idx, raw) {
            Some(e) => e,
            None => self.decode_generic(idx, raw),
        }
    }

    /// [`Format::decode`] for every encoding and entry, one case at a time.
    #[inline(never)]
    #[must_use]
    pub(crate) fn decode_generic(&self, idx: usize, raw: u64) -> Entry {
        let last = self.is_last(idx);
        let level = self.levels()[idx];
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => {
                let is64 = matches!(self.encoding(), Encoding::X86_64);
                if raw & X86_P == 0 {
                    return Entry::Invalid;
                }
                let addr_mask = if is64 { X86_64_ADDR } else { X86_32_ADDR };
                let pa_mask = if self.pa_bits() >= 64 {
                    u64::MAX
                } else {
                    (1u64 << self.pa_bits()) - 1
                };
                if is64 && raw & (addr_mask & !pa_mask) != 0 {
                    return Entry::Reserved("address bits above MAXPHYADDR are set");
                }
                let mut flags = PteFlags::READ;
                if raw & X86_RW != 0 {
                    flags |= PteFlags::WRITE;
                }
                if raw & X86_US != 0 {
                    flags |= PteFlags::USER;
                }
                if !is64 || raw & X86_NX == 0 {
                    flags |= PteFlags::EXEC;
                }
                let huge = !last && raw & X86_PS != 0;
                if huge && level.leaf.is_none() {
                    return Entry::Reserved(
                        "PS is set in an entry that cannot map a page (PML4E/PML5E)",
                    );
                }
                if !last && !huge {
                    return Entry::Table {
                        addr: PhysAddr::new_unchecked(raw & addr_mask),
                        limits: flags,
                    };
                }
                for (bit, f) in [
                    (X86_PWT, PteFlags::WRITE_THROUGH),
                    (X86_PCD, PteFlags::CACHE_DISABLE),
                    (X86_A, PteFlags::ACCESSED),
                    (X86_D, PteFlags::DIRTY),
                    (X86_G, PteFlags::GLOBAL),
                ] {
                    if raw & bit != 0 {
                        flags |= f;
                    }
                }
                let mut addr = raw & addr_mask;
                if huge {
                    let size = level.leaf.map_or(12, |s| s.shift());
                    // Bit 12 is PAT in a large-page entry; bits 13..size are reserved.
                    let reserved = ((1u64 << size) - 1) & !((1u64 << 13) - 1);
                    if raw & reserved != 0 {
                        return Entry::Reserved(
                            "reserved address bits of a large-page entry are set",
                        );
                    }
                    addr &= !((1u64 << size) - 1);
                }
                Entry::Leaf {
                    addr: PhysAddr::new_unchecked(addr),
                    flags,
                }
            }
            Encoding::RiscV => {
                if raw & RV_V == 0 {
                    return Entry::Invalid;
                }
                if self.entry_bytes() == 8 && raw >> 54 != 0 {
                    return Entry::Reserved("bits 63:54 (N, PBMT, reserved) must be zero");
                }
                if raw & RV_R == 0 && raw & RV_W != 0 {
                    return Entry::Reserved("W set without R is a reserved encoding");
                }
                let addr =
                    PhysAddr::new_unchecked(((raw >> RV_PPN_SHIFT) & self.riscv_ppn_mask()) << 12);
                if raw & (RV_R | RV_W | RV_X) == 0 {
                    if last {
                        return Entry::Reserved(
                            "a pointer to a next level in the last level's table",
                        );
                    }
                    return Entry::Table {
                        addr,
                        limits: PteFlags::PERMS,
                    };
                }
                let mut flags = PteFlags::empty();
                for (bit, f) in [
                    (RV_R, PteFlags::READ),
                    (RV_W, PteFlags::WRITE),
                    (RV_X, PteFlags::EXEC),
                    (RV_U, PteFlags::USER),
                    (RV_G, PteFlags::GLOBAL),
                    (RV_A, PteFlags::ACCESSED),
                    (RV_D, PteFlags::DIRTY),
                ] {
                    if raw & bit != 0 {
                        flags |= f;
                    }
                }
                Entry::Leaf { addr, flags }
            }
            Encoding::User(bits) => {
                if raw >> bits.valid & 1 == 0 {
                    return Entry::Invalid;
                }
                let frame = (raw >> bits.frame_lo) & ((1u64 << bits.frame_bits) - 1);
                let addr = PhysAddr::new_unchecked(frame << self.page_size().shift());
                if !last {
                    return Entry::Table {
                        addr,
                        limits: PteFlags::PERMS,
                    };
                }
                let mut flags = PteFlags::READ;
                for (bit, absent, f) in [
                    (bits.writable, true, PteFlags::WRITE),
                    (bits.user, true, PteFlags::USER),
                    (bits.executable, true, PteFlags::EXEC),
                    (bits.accessed, false, PteFlags::ACCESSED),
                    (bits.dirty, false, PteFlags::DIRTY),
                ] {
                    if UserBits::flag(bit, raw, absent) {
                        flags |= f;
                    }
                }
                Entry::Leaf { addr, flags }
            }
        }
    }

    /// The bit that makes an entry valid (x86 P, RISC-V V, a classroom
    /// format's valid bit): [`Format::decode`] gives [`Entry::Invalid`] for
    /// an entry at any level exactly when this bit is clear, so a test of
    /// it is the test of an empty entry without decoding it (a property
    /// test checks the two against each other).
    #[inline(always)]
    #[must_use]
    pub(crate) fn valid_mask(&self) -> u64 {
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => X86_P,
            Encoding::RiscV => RV_V,
            Encoding::User(bits) => 1u64 << bits.valid,
        }
    }

    /// Whether the raw entry at level `idx` is a present x86-64 last-level
    /// entry with no reserved address bit set: one whose A and D bits
    /// [`Format::decode`] would report as they stand, so that the
    /// reclaimer's readers ([`Format::leaf_accessed`],
    /// [`Format::leaf_status`]) can take them without decoding.
    #[inline(always)]
    fn is_plain_x86_leaf(&self, idx: usize, raw: u64) -> bool {
        if !(matches!(self.encoding(), Encoding::X86_64) && self.is_last(idx) && raw & X86_P != 0) {
            return false;
        }
        raw & self.x86_reserved_address_bits() == 0
    }

    /// The bits of an x86-64 entry's address field above the format's
    /// physical-address width: reserved, so an entry with any of them set
    /// is not plain ([`Format::is_plain_x86_leaf`],
    /// [`Format::plain_leaf_test`], and the MMU's walk, which keeps them).
    #[inline(always)]
    #[must_use]
    pub(crate) fn x86_reserved_address_bits(&self) -> u64 {
        let pa_mask = if self.pa_bits() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.pa_bits()) - 1
        };
        X86_64_ADDR & !pa_mask
    }

    /// [`Format::is_plain_x86_leaf`] worked out once for this format (its
    /// encoding, last level and reserved address bits depend on nothing
    /// else), so that the reclaimer's scan, which asks it of every page it
    /// passes, pays a compare and a mask, not the format's look-ups. For any
    /// other encoding, or entries that are not 8 bytes, a test that never
    /// passes. A property test checks it against `is_plain_x86_leaf`.
    #[must_use]
    pub(crate) fn plain_leaf_test(&self) -> PlainLeafTest {
        if !matches!(self.encoding(), Encoding::X86_64) || self.entry_bytes() != 8 {
            return PlainLeafTest {
                last_idx: usize::MAX,
                mask: 0,
                value: 1,
            };
        }
        PlainLeafTest {
            // (A format has a level; none would mean no plain leaf.)
            last_idx: self.levels().len().checked_sub(1).unwrap_or(usize::MAX),
            mask: X86_P | self.x86_reserved_address_bits(),
            value: X86_P,
        }
    }

    /// Whether the raw entry at level `idx` is a leaf ([`Format::decode`]
    /// gives [`Entry::Leaf`]) and, if so, whether its accessed bit is set:
    /// `decode`'s answer reduced to what the reclaimer's accessed-bit scan
    /// needs. A present x86-64 last-level entry with no reserved address
    /// bit is answered from its A bit alone (the page's permissions and
    /// other flags, which the scan drops, are not assembled); anything else
    /// is decoded. A property test checks it against `decode`.
    #[inline(always)]
    #[must_use]
    pub(crate) fn leaf_accessed(&self, idx: usize, raw: u64) -> Option<bool> {
        if self.is_plain_x86_leaf(idx, raw) {
            return Some(raw & X86_A != 0);
        }
        match self.decode(idx, raw) {
            Entry::Leaf { flags, .. } => Some(flags.contains(PteFlags::ACCESSED)),
            _ => None,
        }
    }

    /// Whether the raw entry at level `idx` is a leaf and, if so, its
    /// accessed and dirty flags alone (the rest of `decode`'s flags
    /// cleared): what the reclaimer's dirty check needs. A present x86-64
    /// last-level entry with no reserved address bit is answered from its A
    /// and D bits (which keep their places in [`PteFlags`]); anything else
    /// is decoded. A property test checks it against `decode`.
    #[inline(always)]
    #[must_use]
    pub(crate) fn leaf_status(&self, idx: usize, raw: u64) -> Option<PteFlags> {
        if self.is_plain_x86_leaf(idx, raw) {
            return Some(PteFlags::from_bits_retain((raw & (X86_A | X86_D)) as u16));
        }
        match self.decode(idx, raw) {
            Entry::Leaf { flags, .. } => Some(flags & (PteFlags::ACCESSED | PteFlags::DIRTY)),
            _ => None,
        }
    }

    /// [`Format::decode`] for the entries a walk of x86 4- or 5-level paging
    /// meets almost always: a present pointer to the next table, or a present
    /// leaf in the last level, with no reserved bit set. Returns `None` for
    /// everything else (another encoding, a not-present or reserved entry, a
    /// large-page leaf), which [`Format::decode`] then decodes. Written as
    /// straight bit moves without the generic decoder's per-encoding match
    /// and flag loop: the TLB-miss path decodes one or two entries per walk.
    /// Where it answers, the answer equals `decode`'s (a property test
    /// checks every combination of the bits involved).
    #[inline(always)]
    #[must_use]
    pub(crate) fn decode_x86_64_plain(&self, idx: usize, raw: u64) -> Option<Entry> {
        if !matches!(self.encoding(), Encoding::X86_64) {
            return None;
        }
        self.decode_x86_64_plain_reserved(idx, raw, self.x86_reserved_address_bits())
    }

    /// [`Format::decode_x86_64_plain`] of an x86-64 format (the caller
    /// knows the encoding) whose reserved address bits
    /// ([`Format::x86_reserved_address_bits`]) are `reserved`: for the MMU's
    /// walk, which works both out once, not on every walk.
    #[inline(always)]
    #[must_use]
    pub(crate) fn decode_x86_64_plain_reserved(
        &self,
        idx: usize,
        raw: u64,
        reserved: u64,
    ) -> Option<Entry> {
        debug_assert!(matches!(self.encoding(), Encoding::X86_64));
        debug_assert_eq!(reserved, self.x86_reserved_address_bits());
        if raw & X86_P == 0 || raw & reserved != 0 {
            return None;
        }
        let perms = x86_rights(raw);
        let addr = PhysAddr::new_unchecked(raw & X86_64_ADDR);
        if !self.is_last(idx) {
            if raw & X86_PS != 0 {
                return None;
            }
            return Some(Entry::Table {
                addr,
                limits: PteFlags::from_bits_retain(perms),
            });
        }
        let status = x86_leaf_status(raw);
        Some(Entry::Leaf {
            addr,
            flags: PteFlags::from_bits_retain(perms | status),
        })
    }

    fn check_pa(&self, addr: PhysAddr, align: crate::addr::PageSize) -> Result<(), EncodeError> {
        if self.pa_bits() < 64 && addr.as_u64() >> self.pa_bits() != 0 {
            return Err(EncodeError::AddressTooWide(addr, self.pa_bits()));
        }
        if !addr.is_aligned(align) {
            return Err(EncodeError::Misaligned(addr, align));
        }
        Ok(())
    }

    /// A raw entry at level `idx` pointing to the next table at `table`.
    ///
    /// x86 pointers allow everything (R/W = U/S = 1, NX = 0), as Linux sets
    /// them for user space, so the leaf alone decides permissions.
    pub fn encode_table(&self, idx: usize, table: PhysAddr) -> Result<u64, EncodeError> {
        debug_assert!(!self.is_last(idx));
        self.check_pa(table, self.page_size())?;
        let a = table.as_u64();
        Ok(match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => a | X86_P | X86_RW | X86_US,
            Encoding::RiscV => (a >> 12) << RV_PPN_SHIFT | RV_V,
            Encoding::User(b) => (a >> self.page_size().shift()) << b.frame_lo | 1 << b.valid,
        })
    }

    /// A raw leaf entry at level `idx` mapping the page at `frame` with `flags`.
    ///
    /// The entry grants at least the permissions asked for: where the format
    /// cannot deny one (x86 always allows reads, x86-32 always allows
    /// execution, RISC-V W needs R, a classroom format without a writable
    /// bit), it is granted, as a real OS on that hardware would get.
    ///
    /// In line for an x86-64 leaf at the last level (the 4 KiB page every
    /// fault maps): the same checks and bits as the general encoding
    /// (out of line, for everything else), the flags moved to their bits
    /// with a few shifts and masks. A test checks the two against each
    /// other for every flag set.
    #[inline]
    pub fn encode_leaf(
        &self,
        idx: usize,
        frame: PhysAddr,
        flags: PteFlags,
    ) -> Result<u64, EncodeError> {
        self.encode_leaf_inline(idx, frame, flags)
    }

    /// [`Format::encode_leaf`], its x86-64 last-level path always in line:
    /// for [`super::RadixTable::map_at`], which every fault that maps a
    /// page runs (the compiler left `encode_leaf` a call of some 60
    /// instructions there). Other callers keep `encode_leaf` as it was.
    #[inline(always)]
    pub(crate) fn encode_leaf_inline(
        &self,
        idx: usize,
        frame: PhysAddr,
        flags: PteFlags,
    ) -> Result<u64, EncodeError> {
        let a = frame.as_u64();
        if matches!(self.encoding(), Encoding::X86_64)
            && idx + 1 == self.levels().len()
            && let Some(size) = self.levels()[idx].leaf
            && (self.pa_bits() >= 64 || a >> self.pa_bits() == 0)
            && frame.is_aligned(size)
        {
            let f = u64::from(flags.bits());
            // W, A and D sit at the same bits as R/W, A and D; U, PWT and
            // PCD one and four bits higher than U/S, PWT and PCD; G four
            // lower; NX unless executable. No PS at the last level.
            let nx = if flags.contains(PteFlags::EXEC) {
                0
            } else {
                X86_NX
            };
            return Ok(a
                | X86_P
                | (f & (X86_RW | X86_A | X86_D))
                | ((f >> 1) & X86_US)
                | ((f >> 4) & (X86_PWT | X86_PCD))
                | ((f << 4) & X86_G)
                | nx);
        }
        self.encode_leaf_general(idx, frame, flags)
    }

    /// [`Format::encode_leaf`] of any format and level.
    #[inline(never)]
    fn encode_leaf_general(
        &self,
        idx: usize,
        frame: PhysAddr,
        flags: PteFlags,
    ) -> Result<u64, EncodeError> {
        let level = self.levels()[idx];
        let size = level.leaf.ok_or(EncodeError::NoLeafHere(level.number))?;
        self.check_pa(frame, size)?;
        let a = frame.as_u64();
        let last = self.is_last(idx);
        let on = |f: PteFlags, bit: u64| if flags.contains(f) { bit } else { 0 };
        Ok(match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => {
                let mut raw = a | X86_P;
                raw |= on(PteFlags::WRITE, X86_RW) | on(PteFlags::USER, X86_US);
                raw |= on(PteFlags::WRITE_THROUGH, X86_PWT) | on(PteFlags::CACHE_DISABLE, X86_PCD);
                raw |= on(PteFlags::ACCESSED, X86_A)
                    | on(PteFlags::DIRTY, X86_D)
                    | on(PteFlags::GLOBAL, X86_G);
                if !last {
                    raw |= X86_PS;
                }
                if matches!(self.encoding(), Encoding::X86_64) && !flags.contains(PteFlags::EXEC) {
                    raw |= X86_NX;
                }
                raw
            }
            Encoding::RiscV => {
                let mut raw = (a >> 12) << RV_PPN_SHIFT | RV_V;
                let read = flags.intersects(PteFlags::READ | PteFlags::WRITE)
                    || !flags.intersects(PteFlags::EXEC);
                if read {
                    raw |= RV_R;
                }
                raw |=
                    on(PteFlags::WRITE, RV_W) | on(PteFlags::EXEC, RV_X) | on(PteFlags::USER, RV_U);
                raw |= on(PteFlags::GLOBAL, RV_G)
                    | on(PteFlags::ACCESSED, RV_A)
                    | on(PteFlags::DIRTY, RV_D);
                raw
            }
            Encoding::User(b) => {
                let mut raw = (a >> self.page_size().shift()) << b.frame_lo | 1 << b.valid;
                for (bit, f) in [
                    (b.writable, PteFlags::WRITE),
                    (b.user, PteFlags::USER),
                    (b.executable, PteFlags::EXEC),
                    (b.accessed, PteFlags::ACCESSED),
                    (b.dirty, PteFlags::DIRTY),
                ] {
                    if let Some(bit) = bit
                        && flags.contains(f)
                    {
                        raw |= 1 << bit;
                    }
                }
                raw
            }
        })
    }

    /// The accessed bit of an entry at level `idx`, if the hardware keeps one
    /// there (x86 sets A in every entry a walk uses; RISC-V only in leaves).
    #[must_use]
    pub fn accessed_mask(&self, idx: usize, leaf: bool) -> u64 {
        let _ = idx;
        let (table, leaf_mask) = self.accessed_masks();
        if leaf { leaf_mask } else { table }
    }

    /// [`Format::accessed_mask`] of a table entry and of a leaf, as a pair:
    /// the same at every level, so a walk setting A in each entry it read
    /// works them out once, not once an entry.
    #[inline]
    #[must_use]
    pub(crate) fn accessed_masks(&self) -> (u64, u64) {
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => (X86_A, X86_A),
            Encoding::RiscV => (0, RV_A),
            Encoding::User(b) => (0, b.accessed.map_or(0, |x| 1 << x)),
        }
    }

    /// The dirty bit of a leaf entry, if the format has one.
    #[must_use]
    pub fn dirty_mask(&self) -> u64 {
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => X86_D,
            Encoding::RiscV => RV_D,
            Encoding::User(b) => b.dirty.map_or(0, |x| 1 << x),
        }
    }

    /// Replaces a leaf's permission bits with `flags`' (keeping frame, A, D, G).
    pub fn reprotect(&self, idx: usize, raw: u64, flags: PteFlags) -> Result<u64, EncodeError> {
        match self.decode(idx, raw) {
            Entry::Leaf { addr, flags: old } => {
                let keep = old & (PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::GLOBAL);
                self.encode_leaf(
                    idx,
                    addr,
                    (flags & !(PteFlags::ACCESSED | PteFlags::DIRTY)) | keep,
                )
            }
            _ => Ok(raw),
        }
    }

    /// Names of the bits set in a raw entry at level `idx`, in the manual's
    /// words (e.g. `P RW US A PS NX` or `V R W X U A D`), for explanations.
    #[must_use]
    pub fn bit_names(&self, idx: usize, raw: u64) -> Vec<&'static str> {
        let last = self.is_last(idx);
        let mut v = Vec::new();
        match self.encoding() {
            Encoding::X86_32 | Encoding::X86_64 => {
                let pat_or_ps = if last { "PAT" } else { "PS" };
                for (bit, name) in [
                    (X86_P, "P"),
                    (X86_RW, "RW"),
                    (X86_US, "US"),
                    (X86_PWT, "PWT"),
                    (X86_PCD, "PCD"),
                    (X86_A, "A"),
                    (X86_D, "D"),
                    (X86_PS, pat_or_ps),
                    (X86_G, "G"),
                    (X86_NX, "NX"),
                ] {
                    if raw & bit != 0
                        && !(bit == X86_NX && matches!(self.encoding(), Encoding::X86_32))
                    {
                        v.push(name);
                    }
                }
            }
            Encoding::RiscV => {
                for (bit, name) in [
                    (RV_V, "V"),
                    (RV_R, "R"),
                    (RV_W, "W"),
                    (RV_X, "X"),
                    (RV_U, "U"),
                    (RV_G, "G"),
                    (RV_A, "A"),
                    (RV_D, "D"),
                ] {
                    if raw & bit != 0 {
                        v.push(name);
                    }
                }
            }
            Encoding::User(b) => {
                for (name, bit) in b.named_bits() {
                    if raw >> bit & 1 == 1 {
                        v.push(name);
                    }
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;

    fn pa(x: u64) -> PhysAddr {
        PhysAddr::new_unchecked(x)
    }

    /// A drawn entry for the decoders' property tests: for half the draws
    /// (by `mask`'s low bit) only the low flag bits, an address and maybe NX
    /// of `raw`, so that plain entries and present leaves are common; the
    /// reserved high bits come with the other half.
    fn mostly_plain(raw: u64, mask: u64) -> u64 {
        if mask & 1 == 0 {
            raw & (0x1ff | X86_64_ADDR | (mask & X86_NX))
        } else {
            raw
        }
    }

    proptest::proptest! {
        /// The plain x86-64 decoder answers exactly as the generic one
        /// wherever it answers, and answers for every present,
        /// non-reserved table pointer and last-level leaf.
        #[test]
        fn plain_x86_64_decode_equals_the_generic_one(
            raw in proptest::prelude::any::<u64>(),
            mask in proptest::prelude::any::<u64>(),
            idx in 0usize..5,
            five in proptest::prelude::any::<bool>(),
        ) {
            let raw = mostly_plain(raw, mask);
            let f = if five { Format::x86_64_5level() } else { Format::x86_64() };
            let idx = idx % f.levels().len();
            let generic = f.decode_generic(idx, raw);
            proptest::prop_assert_eq!(f.decode(idx, raw), generic);
            match f.decode_x86_64_plain(idx, raw) {
                Some(plain) => proptest::prop_assert_eq!(plain, generic),
                None => {
                    // (52-bit physical addresses: no address bit is reserved.)
                    let last = idx + 1 == f.levels().len();
                    let plain_case = raw & X86_P != 0 && (last || raw & X86_PS == 0);
                    proptest::prop_assert!(!plain_case, "{raw:#x} at {idx} not decoded");
                }
            }
            // Another encoding is never answered.
            proptest::prop_assert_eq!(Format::sv39().decode_x86_64_plain(idx % 3, raw), None);
        }
    }

    proptest::proptest! {
        /// The scan's leaf test answers as `decode` does: `Some` exactly for
        /// a leaf, holding its accessed flag, in x86-64 at 4 and 5 levels,
        /// x86-32 and Sv39.
        #[test]
        fn leaf_accessed_equals_decode(
            raw in proptest::prelude::any::<u64>(),
            mask in proptest::prelude::any::<u64>(),
            idx in 0usize..5,
            which in 0usize..5,
        ) {
            let raw = mostly_plain(raw, mask);
            let f = match which {
                0 | 1 => Format::x86_64(),
                2 => Format::x86_64_5level(),
                3 => Format::x86_32(),
                _ => Format::sv39(),
            };
            let idx = idx % f.levels().len();
            let want = match f.decode(idx, raw) {
                Entry::Leaf { flags, .. } => Some(flags.contains(PteFlags::ACCESSED)),
                _ => None,
            };
            proptest::prop_assert_eq!(f.leaf_accessed(idx, raw), want, "{:#x} at {}", raw, idx);
            let status = match f.decode(idx, raw) {
                Entry::Leaf { flags, .. } => Some(flags & (PteFlags::ACCESSED | PteFlags::DIRTY)),
                _ => None,
            };
            proptest::prop_assert_eq!(f.leaf_status(idx, raw), status, "{:#x} at {}", raw, idx);
            // The test worked out once answers as the one that looks at the
            // format each time, and a plain leaf's flags are its bits.
            let test = f.plain_leaf_test();
            let plain = f.is_plain_x86_leaf(idx, raw);
            proptest::prop_assert_eq!(test.is_plain(idx, raw), plain, "{:#x} at {}", raw, idx);
            if plain {
                proptest::prop_assert_eq!(Some(PlainLeafTest::status(raw)), status);
                proptest::prop_assert_eq!(raw & PlainLeafTest::ACCESSED != 0, want == Some(true));
                proptest::prop_assert_eq!(PlainLeafTest::ACCESSED, f.accessed_mask(idx, true));
            }

        }
    }

    proptest::proptest! {
        /// An entry is empty (`decode` gives `Invalid`) at any level exactly
        /// when its valid bit ([`Format::valid_mask`]) is clear: x86-64 at 4
        /// and 5 levels, x86-32, Sv39 and a classroom format, entries with
        /// random bits around the plain ones.
        #[test]
        fn valid_mask_is_decodes_empty_test(
            raw in proptest::prelude::any::<u64>(),
            mask in proptest::prelude::any::<u64>(),
            idx in 0usize..5,
            which in 0usize..6,
        ) {
            let mut raw = mostly_plain(raw, mask);
            let f = match which {
                0 => Format::x86_64(),
                1 => Format::x86_64_5level(),
                2 => Format::x86_32(),
                3 => Format::sv39(),
                4 => Format::sv32(),
                _ => Format::user(
                    "c15",
                    15,
                    PageSize::from_bytes(32).expect("size"),
                    &[5, 5],
                    UserBits::new(1, 7, 0, 7),
                )
                .expect("ok"),
            };
            if f.entry_bytes() < 8 {
                raw &= (1u64 << (8 * f.entry_bytes())) - 1;
            }
            let idx = idx % f.levels().len();
            for raw in [raw, raw & !f.valid_mask(), raw | f.valid_mask()] {
                proptest::prop_assert_eq!(
                    raw & f.valid_mask() == 0,
                    f.decode(idx, raw) == Entry::Invalid,
                    "{:#x} at {} in {}", raw, idx, f.name()
                );
            }
        }
    }

    proptest::proptest! {
        /// [`Format::plain_leaf_test`] with fewer physical-address bits
        /// (reserved bits in the address field) answers as
        /// `is_plain_x86_leaf`.
        #[test]
        fn plain_leaf_test_with_reserved_address_bits(
            raw in proptest::prelude::any::<u64>(),
            mask in proptest::prelude::any::<u64>(),
            idx in 0usize..4,
            pa_bits in 32u32..53,
        ) {
            let raw = mostly_plain(raw, mask);
            // (Made through serde: the fields are the format module's.)
            let mut v = serde_json::to_value(Format::x86_64()).expect("to json");
            v["pa_bits"] = serde_json::Value::from(pa_bits);
            let f: Format = serde_json::from_value(v).expect("from json");
            proptest::prop_assert_eq!(f.pa_bits(), pa_bits);
            let test = f.plain_leaf_test();
            proptest::prop_assert_eq!(
                test.is_plain(idx, raw),
                f.is_plain_x86_leaf(idx, raw),
                "{:#x} at {} with {} bits", raw, idx, pa_bits
            );
        }
    }

    /// `encode_leaf`'s in-line x86-64 last-level leaf against the general
    /// encoding: every flag set, at every level, with frames aligned,
    /// misaligned and too wide for the format's physical address bits (4-
    /// and 5-level x86-64, one with 40 address bits); other formats go the
    /// general way, answered the same.
    #[test]
    fn the_inline_x86_64_leaf_is_the_general_encoding() {
        let mut v = serde_json::to_value(Format::x86_64()).expect("to json");
        v["pa_bits"] = serde_json::Value::from(40u32);
        let narrow: Format = serde_json::from_value(v).expect("from json");
        let mut cases = 0;
        for f in [
            Format::x86_64(),
            Format::x86_64_5level(),
            narrow,
            Format::x86_32(),
            Format::sv39(),
        ] {
            for idx in 0..f.levels().len() {
                for frame in [0u64, 0x1000, 0x2000_0000, 0x3ff_ffff_f000, 0x1800, 1 << 45] {
                    let frame = PhysAddr::new(frame).expect("address");
                    for bits in 0..=u16::MAX >> 7 {
                        let flags = PteFlags::from_bits_retain(bits);
                        assert_eq!(
                            f.encode_leaf(idx, frame, flags),
                            f.encode_leaf_general(idx, frame, flags),
                            "{:?} level {idx}, {frame}, {flags:?}",
                            f.encoding()
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 10_000, "{cases}");
    }

    #[test]
    fn x86_32_bits_are_the_intel_ones() {
        let f = Format::x86_32();
        let raw = f
            .encode_leaf(
                1,
                pa(0x1234_5000),
                PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::GLOBAL,
            )
            .expect("encode");
        // P(0) R/W(1) U/S(2) G(8), PFN in 12-31.
        assert_eq!(raw, 0x1234_5000 | 0b1_0000_0111);
        assert_eq!(raw >> 12, 0x12345);
        // U/S = 1 means user-accessible (Intel SDM), not supervisor.
        match f.decode(1, raw) {
            Entry::Leaf { addr, flags } => {
                assert_eq!(addr, pa(0x1234_5000));
                assert!(flags.contains(PteFlags::USER | PteFlags::WRITE | PteFlags::EXEC));
            }
            e => panic!("{e:?}"),
        }
        // A 4 MiB PSE page: bit 7 is PS in a directory entry.
        let big = f
            .encode_leaf(0, pa(0x0040_0000), PteFlags::READ)
            .expect("encode");
        assert_eq!(big & (1 << 7), 1 << 7);
        assert!(matches!(f.decode(0, big), Entry::Leaf { .. }));
        assert!(matches!(f.decode(0, big | 1 << 13), Entry::Reserved(_)));
        // Bit 7 in a page-table entry is PAT, not PS.
        assert_eq!(f.bit_names(1, 0x1000 | 1 | 1 << 7), vec!["P", "PAT"]);
    }

    #[test]
    fn x86_64_nx_and_reserved_ps() {
        let f = Format::x86_64();
        let raw = f
            .encode_leaf(3, pa(0x5000), PteFlags::READ)
            .expect("encode");
        assert_eq!(raw >> 63, 1, "no EXEC => NX");
        assert!(matches!(
            f.decode(0, 0x1000 | 1 | 1 << 7),
            Entry::Reserved(_)
        ));
        assert!(
            f.encode_leaf(2, pa(0x5000), PteFlags::READ).is_err(),
            "2 MiB leaf must be aligned"
        );
        assert!(
            f.encode_leaf(0, pa(0), PteFlags::READ).is_err(),
            "no 512 GiB pages"
        );
    }

    #[test]
    fn riscv_encodings() {
        let f = Format::sv39();
        let raw = f
            .encode_leaf(0, pa(0x8000_0000), PteFlags::READ | PteFlags::EXEC)
            .expect("encode");
        assert_eq!(raw, (0x8000_0000 >> 12) << 10 | 0b1011);
        assert!(
            matches!(f.decode(2, 0b101), Entry::Reserved(_)),
            "W without R"
        );
        assert!(matches!(f.decode(2, 1 << 54 | 0b11), Entry::Reserved(_)));
        assert!(matches!(f.decode(0, 0b1), Entry::Table { .. }));
        assert!(
            matches!(f.decode(2, 0b1), Entry::Reserved(_)),
            "pointer in a leaf table"
        );
        // Write-only requests get R as well (W without R is reserved).
        let w = f
            .encode_leaf(2, pa(0x1000), PteFlags::WRITE)
            .expect("encode");
        assert_eq!(w & 0b110, 0b110);
        let t = Format::sv32()
            .encode_table(0, pa(0x3_0000_0000))
            .expect("34-bit PA");
        assert_eq!(t >> 10, 0x30_0000);
    }

    #[test]
    fn user_format_15_bit() {
        let bits = UserBits::new(1, 7, 0, 7);
        let f = Format::user(
            "c15",
            15,
            PageSize::from_bytes(32).expect("size"),
            &[5, 5],
            bits,
        )
        .expect("ok");
        assert_eq!(f.pa_bits(), 12);
        let raw = f
            .encode_leaf(1, pa(0x3 << 5), PteFlags::READ)
            .expect("encode");
        assert_eq!(raw, 0x83);
        assert!(matches!(f.decode(1, 0x03), Entry::Invalid));
    }

    #[test]
    fn user_format_rejects_overlap() {
        let bits = UserBits::new(1, 3, 0, 7);
        let err = Format::user(
            "x",
            15,
            PageSize::from_bytes(32).expect("size"),
            &[5, 5],
            bits,
        );
        assert!(
            matches!(err, Err(FormatError::Inconsistent(m)) if m.contains("valid") && m.contains("frame"))
        );
    }
}
