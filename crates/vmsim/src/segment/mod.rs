//! The segmentation unit: `selector:offset` to a linear address.
//!
//! A [`SegmentTable`] holds descriptors (base, limit, permissions, and the
//! x86 attributes G, E, DPL, P) indexed by selector. Translating a logical
//! address checks, in this order, that the selector names a usable
//! descriptor, that the segment is present, that the access is privileged
//! enough, that every byte lies within the limit, and that the segment
//! permits the access; then the linear address is `base + offset`. The
//! linear address then goes to paging, or is the physical address when
//! paging is off; that step belongs to the MMU, not here.
//!
//! Course example (selectors are indices by default, see [`SelectorMode`]):
//! segment 1 with base `0x2000` and limit `0x1FF` translates `0x1:0xFF` to
//! `0x20FF`; offset `0x200` is a limit fault.
//!
//! [`SegmentTable::flat`] is what Linux runs with on x86-64: every segment has
//! base 0 and the maximum limit, so linear addresses equal offsets.
//!
//! # Example: what `vmsim explain --segment 1:0x2000:0x1ff 0x1:0xff` needs
//!
//! ```
//! use vmsim::segment::{Access, LogicalAddress, Ring, SegmentSpec, SegmentTable, SelectorMode};
//!
//! // Each --segment value, then the positional SEL:OFFSET.
//! let specs: Vec<SegmentSpec> = vec!["1:0x2000:0x1ff".parse()?];
//! let table = SegmentTable::from_specs(SelectorMode::Course, &specs)?;
//! let addr: LogicalAddress = "0x1:0xff".parse()?;
//! let e = table.explain(addr, 1, Access::Read, Ring::USER);
//! assert_eq!(e.linear, Some(0x20ff)); // human output: `print!("{e}")`
//! assert_eq!(serde_json::to_value(&e)?["linear"], "0x20ff"); // --json
//!
//! let e = table.explain("0x1:0x200".parse()?, 1, Access::Read, Ring::USER);
//! assert_eq!(e.fault.map(|f| f.kind()), Some("limit_exceeded"));
//! // The linear address then goes to paging: `vmsim::paging::walk(.., VirtAddr::new(linear), ..)`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This module owns descriptors and their checks. It never touches
//! physical memory (x86 keeps descriptor tables in memory, but their bytes
//! are of no interest to the course or to a trace-driven simulation).

pub mod book;
mod descriptor;
mod explain;
mod fault;
mod selector;
mod spec;

pub use book::{BookError, BookExplanation, BookFault, BookSegment, BookSegments, Growth};
pub use descriptor::{
    DescriptorError, Direction, Granularity, MAX_PAGE_LIMIT, Ring, SegmentDescriptor, SegmentPerms,
};
pub use explain::SegmentExplanation;
pub use fault::{Access, SegmentFault};
pub use selector::{DecodedSelector, Selector, SelectorMode, TableKind};
pub use spec::{LogicalAddress, SegmentSpec, SpecError};

use serde::Serialize;
use thiserror::Error;

/// Linux x86-64's GDT entry 1: 32-bit kernel code (`__KERNEL32_CS`).
pub const LINUX_KERNEL32_CS: Selector = Selector::new(0x08);
/// Linux x86-64's GDT entry 2: 64-bit kernel code (`__KERNEL_CS`).
pub const LINUX_KERNEL_CS: Selector = Selector::new(0x10);
/// Linux x86-64's GDT entry 3: kernel data and stack (`__KERNEL_DS`).
pub const LINUX_KERNEL_DS: Selector = Selector::new(0x18);
/// Linux x86-64's GDT entry 4 at RPL 3: 32-bit user code (`__USER32_CS`).
pub const LINUX_USER32_CS: Selector = Selector::new(0x23);
/// Linux x86-64's GDT entry 5 at RPL 3: user data and stack (`__USER_DS`).
pub const LINUX_USER_DS: Selector = Selector::new(0x2b);
/// Linux x86-64's GDT entry 6 at RPL 3: 64-bit user code (`__USER_CS`).
pub const LINUX_USER_CS: Selector = Selector::new(0x33);

/// A descriptor table that cannot be built as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SegmentTableError {
    /// x86 GDT entry 0 is the null descriptor and cannot hold a segment.
    #[error("selector {0} names GDT entry 0, the null descriptor, which cannot hold a segment")]
    NullDescriptor(Selector),
    /// Two segments were given for the same selector.
    #[error("segment {0} is defined twice")]
    Duplicate(Selector),
}

/// How wide linear addresses are: where `base + offset` wraps.
///
/// A 32-bit x86 (protected mode, and compatibility mode on x86-64) forms
/// linear addresses modulo 2^32: a segment at the top of the 4 GiB space
/// wraps around to address 0, exactly as the hardware adds. 64-bit mode
/// adds modulo 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearWidth {
    /// `base + offset` modulo 2^32.
    Bits32,
    /// `base + offset` modulo 2^64.
    #[default]
    Bits64,
}

impl LinearWidth {
    /// The number of bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            Self::Bits32 => 32,
            Self::Bits64 => 64,
        }
    }

    /// The width for a paging format of `va_bits` virtual-address bits:
    /// 32 bits for a 32-bit machine (x86-32, Sv32, classroom formats of at
    /// most 32 bits), else 64.
    #[must_use]
    pub const fn for_va_bits(va_bits: u32) -> Self {
        if va_bits <= 32 {
            Self::Bits32
        } else {
            Self::Bits64
        }
    }

    /// `base + offset` at this width.
    #[inline]
    #[must_use]
    pub const fn add(self, base: u64, offset: u64) -> u64 {
        let sum = base.wrapping_add(offset);
        match self {
            Self::Bits32 => sum & 0xFFFF_FFFF,
            Self::Bits64 => sum,
        }
    }
}

/// A set of segment descriptors indexed by selector: the GDT (and, in x86
/// mode, an LDT) that the segmentation unit consults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentTable {
    mode: SelectorMode,
    width: LinearWidth,
    global: Vec<Option<SegmentDescriptor>>,
    local: Vec<Option<SegmentDescriptor>>,
}

impl SegmentTable {
    /// An empty table whose selectors are read in `mode`.
    #[must_use]
    pub const fn new(mode: SelectorMode) -> Self {
        Self {
            mode,
            width: LinearWidth::Bits64,
            global: Vec::new(),
            local: Vec::new(),
        }
    }

    /// This table forming linear addresses at `width` (a 32-bit table
    /// wraps `base + offset` at 2^32).
    #[must_use]
    pub const fn with_width(mut self, width: LinearWidth) -> Self {
        self.width = width;
        self
    }

    /// Where `base + offset` wraps.
    #[inline]
    #[must_use]
    pub const fn width(&self) -> LinearWidth {
        self.width
    }

    /// The flat model of Linux on x86-64: an x86-mode GDT with the kernel
    /// and user code and data segments at Linux's selectors
    /// ([`LINUX_KERNEL_CS`], [`LINUX_KERNEL_DS`], [`LINUX_USER_CS`],
    /// [`LINUX_USER_DS`], and the 32-bit code segments), each with base 0.
    /// The 64-bit segments have the maximum limit (64-bit mode checks no
    /// limit); the 32-bit code segments have limit `0xFFFFF` in 4 KiB units,
    /// 4 GiB, as their descriptors do. Kernel segments have DPL 0, user
    /// segments DPL 3.
    #[must_use]
    pub fn flat() -> Self {
        let four_gib = |perms, dpl| {
            SegmentDescriptor::new(0, 0xFFFFF, perms)
                .with_dpl(dpl)
                .with_page_granularity()
                .unwrap_or_else(|_| unreachable!("a 20-bit limit fits 4 KiB granularity"))
        };
        let mut t = Self::new(SelectorMode::X86);
        let segments = [
            (
                LINUX_KERNEL32_CS,
                four_gib(SegmentPerms::CODE, Ring::KERNEL),
            ),
            (
                LINUX_KERNEL_CS,
                SegmentDescriptor::flat(SegmentPerms::CODE, Ring::KERNEL),
            ),
            (
                LINUX_KERNEL_DS,
                SegmentDescriptor::flat(SegmentPerms::DATA, Ring::KERNEL),
            ),
            (LINUX_USER32_CS, four_gib(SegmentPerms::CODE, Ring::USER)),
            (
                LINUX_USER_DS,
                SegmentDescriptor::flat(SegmentPerms::DATA, Ring::USER),
            ),
            (
                LINUX_USER_CS,
                SegmentDescriptor::flat(SegmentPerms::CODE, Ring::USER),
            ),
        ];
        for (sel, desc) in segments {
            if t.insert(sel, desc).is_err() {
                unreachable!("Linux's selectors are not the null selector");
            }
        }
        t
    }

    /// A table in `mode` holding the segments typed on a command line.
    /// Each selector may appear once.
    pub fn from_specs(
        mode: SelectorMode,
        specs: &[SegmentSpec],
    ) -> Result<Self, SegmentTableError> {
        let mut t = Self::new(mode);
        for spec in specs {
            if t.get(spec.selector).is_some() {
                return Err(SegmentTableError::Duplicate(spec.selector));
            }
            t.insert(spec.selector, spec.descriptor)?;
        }
        Ok(t)
    }

    /// How this table reads selectors.
    #[inline]
    #[must_use]
    pub const fn mode(&self) -> SelectorMode {
        self.mode
    }

    /// Puts `descriptor` at the entry `selector` names, returning the
    /// descriptor it replaces. In x86 mode, the RPL bits of `selector` are
    /// ignored (they are part of a selector, not of an entry).
    pub fn insert(
        &mut self,
        selector: Selector,
        descriptor: SegmentDescriptor,
    ) -> Result<Option<SegmentDescriptor>, SegmentTableError> {
        let d = selector.decode(self.mode);
        if self.is_null(d) {
            return Err(SegmentTableError::NullDescriptor(selector));
        }
        let table = self.table_mut(d.table);
        let i = usize::from(d.index);
        if table.len() <= i {
            table.resize(i + 1, None);
        }
        Ok(table[i].replace(descriptor))
    }

    /// Removes the descriptor `selector` names, returning it.
    pub fn remove(&mut self, selector: Selector) -> Option<SegmentDescriptor> {
        let d = selector.decode(self.mode);
        self.table_mut(d.table)
            .get_mut(usize::from(d.index))
            .and_then(Option::take)
    }

    /// The descriptor `selector` names, if any (present or not).
    #[inline]
    #[must_use]
    pub fn get(&self, selector: Selector) -> Option<&SegmentDescriptor> {
        let d = selector.decode(self.mode);
        if self.is_null(d) {
            return None;
        }
        self.table(d.table)
            .get(usize::from(d.index))
            .and_then(Option::as_ref)
    }

    /// Every descriptor with the selector (RPL 0) that names it, global
    /// table first, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Selector, &SegmentDescriptor)> + '_ {
        let mode = self.mode;
        let global = self
            .global
            .iter()
            .enumerate()
            .map(|(i, d)| (TableKind::Global, i, d));
        let local = self
            .local
            .iter()
            .enumerate()
            .map(|(i, d)| (TableKind::Local, i, d));
        global.chain(local).filter_map(move |(kind, i, d)| {
            // Indices are below the table capacity, so they fit 16 bits.
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            let sel = match mode {
                SelectorMode::Course => Selector::new(index),
                SelectorMode::X86 => Selector::x86(index, kind, Ring::KERNEL),
            };
            d.as_ref().map(|d| (sel, d))
        })
    }

    /// The usable descriptor `selector` names: it exists, is not the null
    /// descriptor, and is present.
    #[inline]
    pub fn descriptor(&self, selector: Selector) -> Result<&SegmentDescriptor, SegmentFault> {
        let d = selector.decode(self.mode);
        if self.is_null(d) {
            return Err(SegmentFault::NullSelector { selector });
        }
        let desc = self
            .table(d.table)
            .get(usize::from(d.index))
            .and_then(Option::as_ref)
            .ok_or(SegmentFault::UnknownSelector {
                selector,
                table: (self.mode == SelectorMode::X86).then_some(d.table),
                index: d.index,
            })?;
        if !desc.present() {
            return Err(SegmentFault::NotPresent { selector });
        }
        Ok(desc)
    }

    /// Translates one byte at `selector:offset` for `access` made at
    /// privilege `ring`, to its linear address.
    #[inline]
    pub fn translate(
        &self,
        selector: Selector,
        offset: u64,
        access: Access,
        ring: Ring,
    ) -> Result<u64, SegmentFault> {
        self.translate_range(selector, offset, 1, access, ring)
    }

    /// Translates an access of `size` bytes (1 if 0 is given) at
    /// `selector:offset`: every byte must lie within the limit, as x86
    /// checks the last byte of an access too. Returns the linear address of
    /// the first byte, `base + offset` wrapping at the table's
    /// [`LinearWidth`] (2^32 on a 32-bit machine, 2^64 otherwise).
    #[inline]
    pub fn translate_range(
        &self,
        selector: Selector,
        offset: u64,
        size: u64,
        access: Access,
        ring: Ring,
    ) -> Result<u64, SegmentFault> {
        let size = size.max(1);
        let desc = self.descriptor(selector)?;
        let effective = ring.weaker(selector.decode(self.mode).rpl);
        if effective > desc.dpl() {
            return Err(SegmentFault::Privilege {
                selector,
                effective,
                dpl: desc.dpl(),
            });
        }
        if !desc.admits(offset, size) {
            let (first_valid, last_valid) = desc.valid_offsets();
            return Err(SegmentFault::LimitExceeded {
                selector,
                offset,
                size,
                limit: desc.effective_limit(),
                first_valid,
                last_valid,
            });
        }
        if !desc.perms().contains(fault::needs(access)) {
            return Err(SegmentFault::Permission {
                selector,
                access,
                perms: desc.perms(),
            });
        }
        Ok(self.width.add(desc.base(), offset))
    }

    /// Translates `addr` like [`Self::translate_range`] and records each
    /// check in words a student can follow, for `vmsim explain`.
    #[must_use]
    pub fn explain(
        &self,
        addr: LogicalAddress,
        size: u64,
        access: Access,
        ring: Ring,
    ) -> SegmentExplanation {
        explain::explain(self, addr, size, access, ring)
    }

    fn is_null(&self, d: DecodedSelector) -> bool {
        self.mode == SelectorMode::X86 && d.table == TableKind::Global && d.index == 0
    }

    fn table(&self, kind: TableKind) -> &[Option<SegmentDescriptor>] {
        match kind {
            TableKind::Global => &self.global,
            TableKind::Local => &self.local,
        }
    }

    fn table_mut(&mut self, kind: TableKind) -> &mut Vec<Option<SegmentDescriptor>> {
        match kind {
            TableKind::Global => &mut self.global,
            TableKind::Local => &mut self.local,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> SegmentTable {
        let mut t = SegmentTable::new(SelectorMode::Course);
        t.insert(
            Selector::new(1),
            SegmentDescriptor::new(0x2000, 0x1FF, SegmentPerms::DATA),
        )
        .expect("insert");
        t
    }

    #[test]
    fn base_plus_offset_wraps_at_32_bits_on_a_32_bit_machine() {
        // A segment based 4 KiB below the top of the 32-bit space: offset
        // 0x2000 is 0xFFFF_F000 + 0x2000 = 0x1_0000_1000, which a 32-bit
        // machine truncates to 0x1000. In 64-bit mode the sum stands.
        let seg = SegmentDescriptor::new(0xFFFF_F000, 0xFFFF_FFFF, SegmentPerms::DATA);
        let sel = Selector::new(1);
        let mut t32 = SegmentTable::new(SelectorMode::Course).with_width(LinearWidth::Bits32);
        t32.insert(sel, seg).expect("insert");
        assert_eq!(
            t32.translate(sel, 0x2000, Access::Read, Ring::USER),
            Ok(0x1000)
        );
        assert_eq!(
            t32.translate(sel, 0xFFF, Access::Read, Ring::USER),
            Ok(0xFFFF_FFFF)
        );
        let mut t64 = SegmentTable::new(SelectorMode::Course);
        t64.insert(sel, seg).expect("insert");
        assert_eq!(
            t64.translate(sel, 0x2000, Access::Read, Ring::USER),
            Ok(0x1_0000_1000)
        );
        let e = t32.explain(
            LogicalAddress {
                selector: sel,
                offset: 0x2000,
            },
            1,
            Access::Read,
            Ring::USER,
        );
        assert_eq!(e.linear, Some(0x1000));
        assert!(e.to_string().contains("wraps at 2^32"), "{e}");
        assert_eq!(LinearWidth::for_va_bits(32), LinearWidth::Bits32);
        assert_eq!(LinearWidth::for_va_bits(39), LinearWidth::Bits64);
    }

    #[test]
    fn course_example() {
        let t = course();
        let sel = Selector::new(1);
        assert_eq!(t.translate(sel, 0xFF, Access::Read, Ring::USER), Ok(0x20FF));
        assert_eq!(
            t.translate(sel, 0x1FF, Access::Write, Ring::USER),
            Ok(0x21FF)
        );
        let fault = t
            .translate(sel, 0x200, Access::Read, Ring::USER)
            .expect_err("limit");
        assert_eq!(fault.kind(), "limit_exceeded");
        assert!(fault.to_string().contains("limit 0x1ff"), "{fault}");
    }

    #[test]
    fn checks_in_order() {
        let mut t = course();
        let sel = Selector::new(1);
        assert!(matches!(
            t.translate(Selector::new(2), 0, Access::Read, Ring::USER),
            Err(SegmentFault::UnknownSelector { index: 2, .. })
        ));
        assert!(matches!(
            t.translate(sel, 0, Access::Execute, Ring::USER),
            Err(SegmentFault::Permission {
                access: Access::Execute,
                ..
            })
        ));
        // Limit is checked before permission, as the course describes.
        assert!(matches!(
            t.translate(sel, 0x200, Access::Execute, Ring::USER),
            Err(SegmentFault::LimitExceeded { .. })
        ));
        let old = t
            .insert(
                sel,
                SegmentDescriptor::new(0x2000, 0x1FF, SegmentPerms::DATA).with_present(false),
            )
            .expect("insert");
        assert!(old.is_some());
        assert_eq!(
            t.translate(sel, 0, Access::Read, Ring::USER),
            Err(SegmentFault::NotPresent { selector: sel })
        );
        assert!(t.remove(sel).is_some());
        assert!(t.get(sel).is_none());
    }

    #[test]
    fn privilege_uses_weaker_of_cpl_and_rpl() {
        let t = SegmentTable::flat();
        // Kernel data from ring 3 faults.
        assert!(matches!(
            t.translate(LINUX_KERNEL_DS, 0x1000, Access::Read, Ring::USER),
            Err(SegmentFault::Privilege { .. })
        ));
        assert_eq!(
            t.translate(LINUX_KERNEL_DS, 0x1000, Access::Read, Ring::KERNEL),
            Ok(0x1000)
        );
        // RPL 3 on a kernel selector weakens even ring 0.
        let weak = Selector::new(LINUX_KERNEL_DS.as_u16() | 3);
        assert!(matches!(
            t.translate(weak, 0, Access::Read, Ring::KERNEL),
            Err(SegmentFault::Privilege { .. })
        ));
    }

    #[test]
    fn x86_null_selector() {
        let mut t = SegmentTable::new(SelectorMode::X86);
        assert_eq!(
            t.insert(
                Selector::new(3),
                SegmentDescriptor::new(0, 1, SegmentPerms::DATA)
            ),
            Err(SegmentTableError::NullDescriptor(Selector::new(3)))
        );
        assert_eq!(
            t.translate(Selector::new(0), 0, Access::Read, Ring::KERNEL),
            Err(SegmentFault::NullSelector {
                selector: Selector::new(0)
            })
        );
        // LDT entry 0 is an ordinary entry.
        t.insert(
            Selector::new(0b100),
            SegmentDescriptor::new(0x100, 0xF, SegmentPerms::DATA),
        )
        .expect("ldt 0");
        assert_eq!(
            t.translate(Selector::new(0b111), 4, Access::Read, Ring::USER),
            Ok(0x104)
        );
    }

    #[test]
    fn flat_user32_code_reaches_4_gib() {
        let t = SegmentTable::flat();
        assert_eq!(
            t.translate(LINUX_USER32_CS, 0xFFFF_FFFF, Access::Execute, Ring::USER),
            Ok(0xFFFF_FFFF)
        );
        assert!(matches!(
            t.translate(LINUX_USER32_CS, 0x1_0000_0000, Access::Execute, Ring::USER),
            Err(SegmentFault::LimitExceeded { .. })
        ));
        assert!(matches!(
            t.translate(LINUX_USER_CS, 0x1000, Access::Write, Ring::USER),
            Err(SegmentFault::Permission { .. })
        ));
        let listed: Vec<_> = t.iter().map(|(s, _)| s.as_u16()).collect();
        assert_eq!(listed, vec![0x08, 0x10, 0x18, 0x20, 0x28, 0x30]);
    }
}
