//! One segment descriptor: where a segment starts, which offsets it allows,
//! and what may be done through it.
//!
//! The model follows the x86 descriptor (base, limit, granularity bit G,
//! expansion direction E, privilege level DPL, present bit P) with the
//! course's simpler view as its default: a byte-granular, expand-up segment
//! with read/write/execute permissions that every privilege level may use.

use std::fmt;

use bitflags::bitflags;
use serde::{Serialize, Serializer};
use thiserror::Error;

bitflags! {
    /// What an access through a segment may do.
    ///
    /// x86 encodes these in the descriptor's type field (data segments are
    /// always readable and optionally writable; code segments are always
    /// executable and optionally readable); the course lets a segment have
    /// any combination, and so does this type.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct SegmentPerms: u8 {
        /// Loads through the segment are allowed.
        const READ = 1;
        /// Stores through the segment are allowed.
        const WRITE = 1 << 1;
        /// Instruction fetches through the segment are allowed.
        const EXECUTE = 1 << 2;
    }
}

impl SegmentPerms {
    /// Read and write: a data segment, the default for a segment typed on
    /// the command line without permissions.
    pub const DATA: Self = Self::READ.union(Self::WRITE);
    /// Read and execute: a readable code segment.
    pub const CODE: Self = Self::READ.union(Self::EXECUTE);
}

impl fmt::Display for SegmentPerms {
    /// Writes the `ls -l` style triple students know: `rw-`, `r-x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |flag, c| if self.contains(flag) { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            bit(Self::READ, 'r'),
            bit(Self::WRITE, 'w'),
            bit(Self::EXECUTE, 'x')
        )
    }
}

impl Serialize for SegmentPerms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The unit of a descriptor's limit field (the x86 G bit).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// G = 0: the limit counts bytes; the last valid offset is the limit itself.
    #[default]
    Byte,
    /// G = 1: the limit counts 4 KiB units; the last valid offset is
    /// `limit * 4096 + 4095`, so a 20-bit limit reaches 4 GiB.
    Page4K,
}

/// Which offsets a segment's limit admits (the x86 E bit of data segments).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Offsets `0 ..= limit` are valid: every code segment and ordinary data.
    #[default]
    Up,
    /// Offsets `limit + 1 ..= upper` are valid, so a stack can grow down by
    /// lowering the limit. `big` is the x86 B flag: the upper bound is
    /// `0xFFFF_FFFF` when set, `0xFFFF` when clear.
    Down {
        /// The B flag.
        big: bool,
    },
}

/// An x86 privilege ring, 0 (kernel) to 3 (user).
///
/// Guarantee: at most 3.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize)]
pub struct Ring(u8);

impl Ring {
    /// Ring 0, where a kernel runs.
    pub const KERNEL: Self = Self(0);
    /// Ring 3, where user programs run.
    pub const USER: Self = Self(3);

    /// The ring `level`, or an error above 3.
    pub const fn new(level: u8) -> Result<Self, DescriptorError> {
        if level <= 3 {
            Ok(Self(level))
        } else {
            Err(DescriptorError::BadRing(level))
        }
    }

    /// The level, 0 to 3.
    #[inline]
    #[must_use]
    pub const fn level(self) -> u8 {
        self.0
    }

    /// The less privileged (numerically larger) of two rings: how x86
    /// combines the current privilege level with a selector's RPL.
    #[inline]
    #[must_use]
    pub const fn weaker(self, other: Self) -> Self {
        if self.0 >= other.0 { self } else { other }
    }
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A descriptor that cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DescriptorError {
    /// A privilege level above 3.
    #[error("privilege level {0} is not a ring between 0 and 3")]
    BadRing(u8),
    /// A 4 KiB-granular limit so large that the last valid offset does not fit 64 bits.
    #[error(
        "limit {0:#x} in 4 KiB units reaches past 2^64 bytes (at most {max:#x} with 4 KiB granularity)",
        max = MAX_PAGE_LIMIT
    )]
    LimitTooLarge(u64),
}

/// The largest limit accepted with [`Granularity::Page4K`].
pub const MAX_PAGE_LIMIT: u64 = u64::MAX >> 12;

/// A segment descriptor: base, limit, permissions, and the x86 attributes
/// that change how they are checked.
///
/// Guarantee: the effective limit (after granularity scaling) fits 64 bits
/// and the privilege level is a ring 0..=3.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SegmentDescriptor {
    base: u64,
    limit: u64,
    perms: SegmentPerms,
    granularity: Granularity,
    direction: Direction,
    dpl: Ring,
    present: bool,
}

impl SegmentDescriptor {
    /// A present, byte-granular, expand-up segment usable from every ring:
    /// offsets `0 ..= limit` map to `base + offset`. This is the course's
    /// segment (limit `0x1FF` allows offset `0x1FF` and faults at `0x200`).
    #[must_use]
    pub const fn new(base: u64, limit: u64, perms: SegmentPerms) -> Self {
        Self {
            base,
            limit,
            perms,
            granularity: Granularity::Byte,
            direction: Direction::Up,
            dpl: Ring::USER,
            present: true,
        }
    }

    /// The flat segment Linux uses everywhere: base 0 and the maximum limit,
    /// so every offset is its own linear address.
    #[must_use]
    pub const fn flat(perms: SegmentPerms, dpl: Ring) -> Self {
        let mut d = Self::new(0, u64::MAX, perms);
        d.dpl = dpl;
        d
    }

    /// This descriptor with the limit counted in 4 KiB units (G = 1).
    pub const fn with_page_granularity(mut self) -> Result<Self, DescriptorError> {
        if self.limit > MAX_PAGE_LIMIT {
            return Err(DescriptorError::LimitTooLarge(self.limit));
        }
        self.granularity = Granularity::Page4K;
        Ok(self)
    }

    /// This descriptor as an expand-down data segment (E = 1) with the B flag `big`.
    #[must_use]
    pub const fn with_expand_down(mut self, big: bool) -> Self {
        self.direction = Direction::Down { big };
        self
    }

    /// This descriptor with descriptor privilege level `dpl`: only code
    /// running at `dpl` or a more privileged ring may use it.
    #[must_use]
    pub const fn with_dpl(mut self, dpl: Ring) -> Self {
        self.dpl = dpl;
        self
    }

    /// This descriptor with the present bit `present` (P). Using a segment
    /// that is not present faults, so an OS can swap whole segments out.
    #[must_use]
    pub const fn with_present(mut self, present: bool) -> Self {
        self.present = present;
        self
    }

    /// The linear address of offset 0.
    #[inline]
    #[must_use]
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The limit field as written, in the unit given by [`Self::granularity`].
    #[inline]
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The limit in bytes: the limit field itself for byte granularity,
    /// `limit * 4096 + 4095` for 4 KiB granularity.
    #[inline]
    #[must_use]
    pub const fn effective_limit(&self) -> u64 {
        match self.granularity {
            Granularity::Byte => self.limit,
            Granularity::Page4K => (self.limit << 12) | 0xFFF,
        }
    }

    /// The first and last valid offsets, inclusive. Empty (first > last)
    /// for an expand-down segment whose limit is at or above its upper bound.
    #[inline]
    #[must_use]
    pub const fn valid_offsets(&self) -> (u64, u64) {
        let limit = self.effective_limit();
        match self.direction {
            Direction::Up => (0, limit),
            Direction::Down { big } => {
                let upper = if big { 0xFFFF_FFFF } else { 0xFFFF };
                (limit.saturating_add(1), upper)
            }
        }
    }

    /// Whether every byte of an access of `size` bytes (at least 1) at
    /// `offset` lies within the valid offsets.
    #[inline]
    #[must_use]
    pub const fn admits(&self, offset: u64, size: u64) -> bool {
        let (first, last) = self.valid_offsets();
        let Some(end) = offset.checked_add(size.saturating_sub(1)) else {
            return false;
        };
        offset >= first && end <= last && first <= last
    }

    /// The permissions.
    #[inline]
    #[must_use]
    pub const fn perms(&self) -> SegmentPerms {
        self.perms
    }

    /// The unit of the limit field.
    #[inline]
    #[must_use]
    pub const fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Which side of the limit is valid.
    #[inline]
    #[must_use]
    pub const fn direction(&self) -> Direction {
        self.direction
    }

    /// The descriptor privilege level.
    #[inline]
    #[must_use]
    pub const fn dpl(&self) -> Ring {
        self.dpl
    }

    /// The present bit.
    #[inline]
    #[must_use]
    pub const fn present(&self) -> bool {
        self.present
    }
}

impl fmt::Display for SegmentDescriptor {
    /// `base 0x2000, limit 0x1ff, rw-` plus any non-default attribute.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "base {:#x}, limit {:#x}, {}",
            self.base, self.limit, self.perms
        )?;
        if self.granularity == Granularity::Page4K {
            write!(
                f,
                ", limit in 4 KiB units (last byte {:#x})",
                self.effective_limit()
            )?;
        }
        if let Direction::Down { big } = self.direction {
            let (first, last) = self.valid_offsets();
            write!(
                f,
                ", expand-down{} (valid offsets {first:#x}..={last:#x})",
                if big { " big" } else { "" }
            )?;
        }
        if self.dpl != Ring::USER {
            write!(f, ", DPL {}", self.dpl)?;
        }
        if !self.present {
            f.write_str(", not present")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_limit_is_inclusive() {
        let d = SegmentDescriptor::new(0x2000, 0x1FF, SegmentPerms::DATA);
        assert!(d.admits(0x1FF, 1));
        assert!(!d.admits(0x200, 1));
        assert!(!d.admits(0x1FE, 4));
        assert!(d.admits(0x1FC, 4));
    }

    #[test]
    fn page_granularity_scales_limit() {
        let d = SegmentDescriptor::new(0, 0xFFFFF, SegmentPerms::DATA)
            .with_page_granularity()
            .expect("20-bit limit fits");
        assert_eq!(d.effective_limit(), 0xFFFF_FFFF);
        let small = SegmentDescriptor::new(0, 0, SegmentPerms::DATA)
            .with_page_granularity()
            .expect("fits");
        assert!(small.admits(0xFFF, 1));
        assert!(!small.admits(0x1000, 1));
        assert_eq!(
            SegmentDescriptor::new(0, MAX_PAGE_LIMIT + 1, SegmentPerms::DATA)
                .with_page_granularity(),
            Err(DescriptorError::LimitTooLarge(MAX_PAGE_LIMIT + 1))
        );
    }

    #[test]
    fn expand_down_admits_above_limit() {
        let d = SegmentDescriptor::new(0x10000, 0x0FFF, SegmentPerms::DATA).with_expand_down(false);
        assert_eq!(d.valid_offsets(), (0x1000, 0xFFFF));
        assert!(!d.admits(0xFFF, 1));
        assert!(d.admits(0x1000, 1));
        assert!(d.admits(0xFFFE, 2));
        assert!(!d.admits(0xFFFF, 2));
        let big = d.with_expand_down(true);
        assert!(big.admits(0xFFFF_FFFF, 1));
        let empty = SegmentDescriptor::new(0, 0xFFFF, SegmentPerms::DATA).with_expand_down(false);
        assert!(!empty.admits(0xFFFF, 1));
    }

    #[test]
    fn flat_admits_everything() {
        let d = SegmentDescriptor::flat(SegmentPerms::DATA, Ring::USER);
        assert!(d.admits(0, 1));
        assert!(d.admits(u64::MAX, 1));
        assert!(!d.admits(u64::MAX, 2));
    }

    #[test]
    fn perms_display() {
        assert_eq!(SegmentPerms::DATA.to_string(), "rw-");
        assert_eq!(SegmentPerms::CODE.to_string(), "r-x");
        assert_eq!(SegmentPerms::empty().to_string(), "---");
    }

    #[test]
    fn ring_bounds() {
        assert!(Ring::new(3).is_ok());
        assert_eq!(Ring::new(4), Err(DescriptorError::BadRing(4)));
        assert_eq!(Ring::KERNEL.weaker(Ring::USER), Ring::USER);
    }
}
