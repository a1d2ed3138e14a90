//! The last-level page tables a space's faults found, by the region of
//! virtual addresses each covers: where a not-present fault's page would
//! have its leaf entry, without a walk from the root.
//!
//! Why: a first-touch fault looks its page up (a walk of every level from
//! the root, some 300 instructions on x86-64) to learn that it is not
//! mapped and where the map will write its entry. The table that holds the
//! entry is, after a region's first faults, one a walk already reached;
//! while that table's frame keeps its generation
//! ([`super::FrameTable::table_gens`]) it is the same table at the same
//! place in the space's tree (a radix table is unlinked only when it is
//! freed), so a walk from the root for any address of its region reaches
//! it again, and its entry for the page is what the walk would read there.
//!
//! Derived, never saved: a space starts with none, a restored or copied
//! one too (a copy's tables are not its original's), and an answer is
//! used only after its generation is checked. The places are those of one
//! level, the one the space's data pages are mapped at.

use crate::addr::{PhysAddr, VirtAddr};
use crate::memory::PhysMemory;

use super::FoundPlace;
use super::process::SpaceId;

/// A table a walk of the space reached at the data pages' level.
#[derive(Debug, Clone, Copy)]
struct TablePlace {
    /// The region's number (the address shifted right by the bits the
    /// table's entries cover); `u64::MAX`: no table kept in the slot.
    region: u64,
    /// The table's physical address.
    base: u64,
    /// The frame of the table's first byte (the generation's index).
    frame: u64,
    /// That frame's generation when the walk reached the table.
    gen_: u64,
}

impl TablePlace {
    const EMPTY: Self = Self {
        region: u64::MAX,
        base: 0,
        frame: 0,
        gen_: u64::MAX,
    };
}

/// Slots of [`TablePlaces`]: direct-mapped by the region's low bits. 256
/// tables of x86-64's last level cover 512 MiB of addresses (8 KiB a space
/// that faults; nothing for one that never does).
const SLOTS: usize = 256;

/// The level's geometry: where an address's entry is in a table of it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PlaceLevel {
    /// The level's index in the format (root = 0).
    pub idx: usize,
    /// The lowest address bit of the level's index.
    pub shift: u32,
    /// The index's width in bits.
    pub bits: u32,
    /// Bytes of an entry.
    pub width: u32,
}

/// The tables of one space's data-page level that its faults' walks
/// reached (see the module's comment).
#[derive(Debug, Default)]
pub(super) struct TablePlaces {
    slots: Vec<TablePlace>,
    /// The level's geometry, set with the first table kept (the format and
    /// the data page size never change).
    level: PlaceLevel,
}

impl Clone for TablePlaces {
    /// A copy keeps nothing: its space's tables are not the original's
    /// (a fork's child has a tree of its own).
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl TablePlaces {
    /// The level index and address of `va`'s entry in the table kept for
    /// its region, while that table's frame still has the generation
    /// (`gens`: [`super::FrameTable::table_gens`]) it had when kept.
    #[inline(always)]
    pub(super) fn get(&self, va: u64, gens: &[u64]) -> Option<(usize, u64)> {
        let l = self.level;
        let region = va >> (l.shift + l.bits);
        let p = self.slots.get(region as usize % SLOTS)?;
        if p.region != region || gens.get(p.frame as usize).copied() != Some(p.gen_) {
            return None;
        }
        let index = (va >> l.shift) & ((1u64 << l.bits) - 1);
        Some((l.idx, p.base + index * u64::from(l.width)))
    }

    /// The table at `base` (first frame `frame`, of generation `gen_`) is
    /// where a walk of this space for `va` reached the data pages' level,
    /// `level`.
    pub(super) fn note(&mut self, level: PlaceLevel, va: u64, base: u64, frame: u64, gen_: u64) {
        if self.slots.is_empty() {
            self.slots = vec![TablePlace::EMPTY; SLOTS];
            self.level = level;
        }
        debug_assert_eq!(
            (
                self.level.idx,
                self.level.shift,
                self.level.bits,
                self.level.width
            ),
            (level.idx, level.shift, level.bits, level.width),
            "the data pages' level changed"
        );
        let region = va >> (level.shift + level.bits);
        self.slots[region as usize % SLOTS] = TablePlace {
            region,
            base,
            frame,
            gen_,
        };
    }
}

impl super::Kernel {
    /// Where `page`'s leaf entry is in space `sid`, if the table kept for
    /// its region ([`TablePlaces::get`]) holds it and the entry is empty:
    /// what [`crate::paging::PageTables::translate_or_place`] would answer
    /// (`Err(Some(..))`, the page not mapped), as a place to map at
    /// ([`super::Kernel::found_place`]). `None`: walk.
    #[inline]
    pub(super) fn kept_empty_place<M: PhysMemory + ?Sized>(
        &self,
        mem: &M,
        sid: SpaceId,
        page: VirtAddr,
    ) -> Option<FoundPlace> {
        let space = self.space(sid);
        let (idx, addr) = space
            .table_places
            .get(page.as_u64(), self.frames.table_gens())?;
        let addr = PhysAddr::new_unchecked(addr);
        let raw = mem.read_le(addr, self.fmt.entry_bytes()).ok()?;
        if raw & self.fmt.valid_mask() != 0 {
            return None;
        }
        debug_assert_eq!(
            self.tables
                .translate_or_place(&self.fmt, mem, space.asid, page)
                .err(),
            Some(Some((idx, addr))),
            "a kept table's empty entry that a walk would not find"
        );
        self.found_place(Some((idx, addr)))
    }

    /// A walk of space `sid` for `page` found its entry empty at `found`:
    /// keeps the table holding it if it is at the data pages' level.
    pub(super) fn keep_table_place(
        &mut self,
        sid: SpaceId,
        page: VirtAddr,
        found: Option<FoundPlace>,
    ) {
        let Some(f) = found else {
            return;
        };
        if self.fmt.level_for_size(self.page) != Some(f.idx) {
            return;
        }
        let l = self.fmt.levels()[f.idx];
        let width = self.fmt.entry_bytes();
        let level = PlaceLevel {
            idx: f.idx,
            shift: l.shift,
            bits: l.bits,
            width,
        };
        let base = f.addr.as_u64() - l.index(page) * u64::from(width);
        let shift = self.frames.frame_size().shift();
        let frame = base >> shift;
        // A table of several frames has them all marked at once: its first
        // frame's generation is the table's.
        let Some(&gen_) = self.frames.table_gens().get(frame as usize) else {
            return;
        };
        self.space_mut(sid)
            .table_places
            .note(level, page.as_u64(), base, frame, gen_);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_kept_while_its_generation_holds() {
        // x86-64's last level: 9 bits from bit 12, 8-byte entries.
        let level = PlaceLevel {
            idx: 3,
            shift: 12,
            bits: 9,
            width: 8,
        };
        let region = |r: u64| r << 21;
        let mut p = TablePlaces::default();
        let gens = vec![0u64, 3, 5];
        assert_eq!(p.get(region(7), &gens), None);
        p.note(level, region(7) + 0x5000, 0x2000, 2, 5);
        assert_eq!(p.get(region(7), &gens), Some((3, 0x2000)));
        assert_eq!(p.get(region(7) + 0x3000, &gens), Some((3, 0x2018)));
        assert_eq!(p.get(region(8) - 0x1000, &gens), Some((3, 0x2ff8)));
        // Another region in the same slot, another generation, a frame
        // past the generations: not answered.
        assert_eq!(p.get(region(7 + SLOTS as u64), &gens), None);
        assert_eq!(p.get(region(8), &gens), None);
        assert_eq!(p.get(region(7), &[0, 3, 6]), None);
        assert_eq!(p.get(region(7), &[0, 3]), None);
        // A copy keeps nothing.
        assert_eq!(p.clone().get(region(7), &gens), None);
        p.note(level, region(7 + SLOTS as u64), 0x1000, 1, 3);
        assert_eq!(p.get(region(7), &gens), None);
        assert_eq!(
            p.get(region(7 + SLOTS as u64) + 0x1000, &gens),
            Some((3, 0x1008))
        );
    }
}
