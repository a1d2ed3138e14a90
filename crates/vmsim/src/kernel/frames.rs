//! The kernel's frame table: what every physical frame is used for, and how
//! many references a data frame has.
//!
//! Frames come from the buddy allocator. A data page is a block of
//! `2^page_order` frames (one frame for base pages, 512 for 2 MiB pages on a
//! 4 KiB-frame machine); its metadata lives in the entry of its first frame.

use serde::{Deserialize, Serialize};

use crate::addr::{PageSize, Pfn, PhysAddr};
use crate::alloc::{Buddy, FrameAllocator};
use crate::memory::PhysMemory;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameUse {
    /// On the allocator's free lists.
    #[default]
    Free,
    /// A page-table page of some address space.
    Table,
    /// The first frame of a data page; `refs` counts its owners.
    Data,
    /// A frame inside a data page other than the first.
    DataTail,
    /// A slab of kernel objects.
    Slab,
}

/// Per-frame metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FrameMeta {
    /// What the frame holds.
    pub use_: FrameUse,
    /// References to a data page: each page-table entry mapping it, plus one
    /// if a shared object owns it.
    pub refs: u32,
}

/// The frame table over the buddy allocator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameTable {
    buddy: Buddy,
    #[serde(with = "crate::serde_sparse")]
    meta: Vec<FrameMeta>,
    page: PageSize,
    frame: PageSize,
    /// Frames marked [`FrameUse::Table`], kept so reports need no scan.
    tables: u64,
    /// Per frame, how many times it became or stopped being a page table
    /// (grown on first use; derived, not saved): while a frame's count
    /// stays the same it is the same table, at the same place in its tree,
    /// so a leaf entry's address in it that the reclaimer remembered is
    /// still that entry's, whatever other tables came and went.
    #[serde(skip)]
    table_gens: Vec<u64>,
}

impl FrameTable {
    /// A table over `buddy`'s frames; data pages are `page` bytes.
    #[must_use]
    pub fn new(buddy: Buddy, page: PageSize) -> Self {
        let total = buddy.first().as_u64() + buddy.total_frames();
        let frame = buddy.frame_size();
        Self {
            buddy,
            meta: vec![
                FrameMeta {
                    use_: FrameUse::Free,
                    refs: 0
                };
                total as usize
            ],
            page,
            frame,
            tables: 0,
            table_gens: Vec::new(),
        }
    }

    /// Frames holding page tables.
    #[must_use]
    pub fn table_frames(&self) -> u64 {
        self.tables
    }

    /// The size of a frame (page tables take one each).
    #[must_use]
    pub fn frame_size(&self) -> PageSize {
        self.frame
    }

    /// Per frame, a count that changes whenever the frame becomes or stops
    /// being a page table (frames past the end of the slice: never were).
    #[must_use]
    pub fn table_gens(&self) -> &[u64] {
        &self.table_gens
    }

    /// The buddy allocator (for reports and page-table allocation).
    pub fn buddy(&self) -> &Buddy {
        &self.buddy
    }

    /// The buddy allocator, mutably.
    pub fn buddy_mut(&mut self) -> &mut Buddy {
        &mut self.buddy
    }

    /// The data page size.
    #[must_use]
    pub fn page_size(&self) -> PageSize {
        self.page
    }

    /// Order of a data page in frames.
    #[must_use]
    pub fn page_order(&self) -> u32 {
        self.page.shift() - self.frame.shift()
    }

    /// Metadata of a frame.
    #[must_use]
    pub fn meta(&self, pfn: Pfn) -> FrameMeta {
        self.meta[pfn.as_u64() as usize]
    }

    /// Every frame's metadata, indexed by frame number.
    #[must_use]
    pub fn all(&self) -> &[FrameMeta] {
        &self.meta
    }

    /// The frame holding physical address `pa`.
    #[must_use]
    pub fn pfn_of(&self, pa: PhysAddr) -> Pfn {
        pa.pfn(self.frame)
    }

    /// Physical address of a frame.
    #[must_use]
    pub fn addr_of(&self, pfn: Pfn) -> PhysAddr {
        pfn.base(self.frame)
    }

    /// A zeroed data page with no references yet, or `None` if memory is full.
    pub fn alloc_page<M: PhysMemory + ?Sized>(&mut self, mem: &mut M) -> Option<Pfn> {
        let order = self.page_order();
        let pfn = self.buddy.alloc_order(order)?;
        let i = pfn.as_u64() as usize;
        self.meta[i] = FrameMeta {
            use_: FrameUse::Data,
            refs: 0,
        };
        for m in &mut self.meta[i + 1..i + (1 << order)] {
            m.use_ = FrameUse::DataTail;
        }
        // Zero on allocation: no process ever sees bytes of a previous owner.
        let zeroed = mem.zero(self.addr_of(pfn), self.page.bytes());
        debug_assert!(zeroed.is_ok(), "frames lie inside physical memory");
        Some(pfn)
    }

    /// Adds a reference to a data page.
    pub fn get(&mut self, pfn: Pfn) {
        let m = &mut self.meta[pfn.as_u64() as usize];
        debug_assert_eq!(
            m.use_,
            FrameUse::Data,
            "reference to a frame that is not a data page"
        );
        m.refs += 1;
    }

    /// Drops a reference; frees the page when none is left. Returns whether it was freed.
    pub fn put(&mut self, pfn: Pfn) -> bool {
        let i = pfn.as_u64() as usize;
        let m = &mut self.meta[i];
        assert!(
            m.use_ == FrameUse::Data && m.refs > 0,
            "put of frame {pfn} with no reference"
        );
        m.refs -= 1;
        if m.refs > 0 {
            return false;
        }
        let order = self.page_order();
        for m in &mut self.meta[i..i + (1 << order)] {
            m.use_ = FrameUse::Free;
        }
        self.buddy.free_order(pfn, order);
        true
    }

    /// Records that a block was handed out for page tables (or slabs).
    pub fn mark(&mut self, pfn: Pfn, order: u32, use_: FrameUse) {
        let i = pfn.as_u64() as usize;
        for (k, m) in self.meta[i..i + (1 << order)].iter_mut().enumerate() {
            let was = m.use_ == FrameUse::Table;
            if was {
                self.tables -= 1;
            }
            if use_ == FrameUse::Table {
                self.tables += 1;
            }
            if was || use_ == FrameUse::Table {
                if self.table_gens.len() <= i + k {
                    self.table_gens.resize(i + (1 << order), 0);
                }
                self.table_gens[i + k] += 1;
            }
            *m = FrameMeta { use_, refs: 0 };
        }
    }

    /// Free frames.
    #[must_use]
    pub fn free_frames(&self) -> u64 {
        self.buddy.free_frames()
    }

    /// Total frames managed.
    #[must_use]
    pub fn total_frames(&self) -> u64 {
        self.buddy.total_frames()
    }
}

/// A frame allocator over the frame table that records each frame it hands
/// out as `use_` (page tables, slabs), so the invariant checker can account
/// for it. Made by [`FrameTable::for_tables`] and [`FrameTable::for_slabs`].
pub struct TaggedFrames<'a> {
    table: &'a mut FrameTable,
    use_: FrameUse,
}

impl FrameTable {
    /// An allocator of page-table frames.
    pub fn for_tables(&mut self) -> TaggedFrames<'_> {
        TaggedFrames {
            table: self,
            use_: FrameUse::Table,
        }
    }

    /// An allocator of slab frames.
    pub fn for_slabs(&mut self) -> TaggedFrames<'_> {
        TaggedFrames {
            table: self,
            use_: FrameUse::Slab,
        }
    }
}

impl FrameAllocator for TaggedFrames<'_> {
    fn frame_size(&self) -> PageSize {
        self.table.frame
    }

    fn total_frames(&self) -> u64 {
        self.table.buddy.total_frames()
    }

    fn free_frames(&self) -> u64 {
        self.table.buddy.free_frames()
    }

    fn alloc_order(&mut self, order: u32) -> Option<Pfn> {
        let pfn = self.table.buddy.alloc_order(order)?;
        self.table.mark(pfn, order, self.use_);
        Some(pfn)
    }

    fn free_order(&mut self, pfn: Pfn, order: u32) {
        self.table.mark(pfn, order, FrameUse::Free);
        self.table.buddy.free_order(pfn, order);
    }
}
