//! The kernel's frame table: what every physical frame is used for, and how
//! many references a data frame has.
//!
//! Frames come from the buddy allocator. A data page is a block of
//! `2^page_order` frames (one frame for base pages, 512 for 2 MiB pages on a
//! 4 KiB-frame machine); its metadata lives in the entry of its first frame.
//!
//! Each frame's [`FrameMeta`] is kept packed in one `u64` (see [`pack`]) in
//! which a free frame with no references is 0, so the table of a whole
//! machine is `vec![0; frames]`: zeroed pages the host hands out lazily,
//! not megabytes written before the first reference (a `Vec<FrameMeta>`
//! cannot be, as `vec!` only recognises zero for primitive elements). A
//! checkpoint still stores the table as a sparse `Vec<FrameMeta>`: the same
//! bytes as before (see [`packed_metas`]).

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

impl FrameUse {
    /// The packed code of a use: `Free` is 0.
    #[inline]
    const fn code(self) -> u64 {
        match self {
            Self::Free => 0,
            Self::Table => 1,
            Self::Data => 2,
            Self::DataTail => 3,
            Self::Slab => 4,
        }
    }

    /// The use of a packed code (only codes made by [`Self::code`] occur).
    #[inline]
    const fn from_code(code: u64) -> Self {
        match code {
            1 => Self::Table,
            2 => Self::Data,
            3 => Self::DataTail,
            4 => Self::Slab,
            _ => Self::Free,
        }
    }
}

/// A frame's metadata as one word: the use's code above bit 32, the
/// references below; the default (free, no references) is 0.
#[inline]
const fn pack(m: FrameMeta) -> u64 {
    (m.use_.code() << 32) | m.refs as u64
}

/// The metadata packed by [`pack`].
#[inline]
const fn unpack(w: u64) -> FrameMeta {
    FrameMeta {
        use_: FrameUse::from_code(w >> 32),
        refs: w as u32,
    }
}

/// The packed code of a use in its place in a word.
const fn use_bits(u: FrameUse) -> u64 {
    u.code() << 32
}

/// Every frame's metadata, indexed by frame number: a read-only view of the
/// packed table.
#[derive(Debug, Clone, Copy)]
pub struct FrameMetas<'a>(&'a [u64]);

impl<'a> FrameMetas<'a> {
    /// Number of frames (including any below the buddy's first).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the table has no frames.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Metadata of frame `i`, or `None` past the end.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<FrameMeta> {
        self.0.get(i).map(|&w| unpack(w))
    }

    /// Each frame's metadata in frame order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = FrameMeta> + 'a {
        self.0.iter().map(|&w| unpack(w))
    }
}

/// The frame table over the buddy allocator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameTable {
    buddy: Buddy,
    /// Per frame, its [`FrameMeta`] packed by [`pack`].
    #[serde(with = "packed_metas")]
    meta: Vec<u64>,
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
            meta: vec![0; total as usize],
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
        unpack(self.meta[pfn.as_u64() as usize])
    }

    /// Every frame's metadata, indexed by frame number.
    #[must_use]
    pub fn all(&self) -> FrameMetas<'_> {
        FrameMetas(&self.meta)
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
        let pfn = self.alloc_page_unzeroed()?;
        self.zero_page(mem, pfn);
        Some(pfn)
    }

    /// [`FrameTable::alloc_page`] for a page about to be overwritten whole
    /// (a swap-in): zeroed now unless `mem` may leave it as it is
    /// ([`PhysMemory::defers_zero`]). Returns the frame and whether it was
    /// zeroed; one that was not must be zeroed ([`PhysMemory::zero`])
    /// or overwritten whole ([`PhysMemory::write_lent_over`]) before anyone
    /// reads it.
    pub fn alloc_page_for_overwrite<M: PhysMemory + ?Sized>(
        &mut self,
        mem: &mut M,
    ) -> Option<(Pfn, bool)> {
        let pfn = self.alloc_page_unzeroed()?;
        if mem.defers_zero(self.addr_of(pfn), self.page.bytes()) {
            return Some((pfn, false));
        }
        self.zero_page(mem, pfn);
        Some((pfn, true))
    }

    /// Zeroes data page `pfn`: no process ever sees bytes of a previous
    /// owner.
    #[inline]
    fn zero_page<M: PhysMemory + ?Sized>(&self, mem: &mut M, pfn: Pfn) {
        let zeroed = mem.zero(self.addr_of(pfn), self.page.bytes());
        debug_assert!(zeroed.is_ok(), "frames lie inside physical memory");
    }

    /// A data page with no references yet, its bytes as its last owner
    /// left them.
    #[inline]
    fn alloc_page_unzeroed(&mut self) -> Option<Pfn> {
        let order = self.page_order();
        let pfn = self.buddy.alloc_order(order)?;
        let i = pfn.as_u64() as usize;
        self.meta[i] = use_bits(FrameUse::Data);
        // The page's other frames (none with pages of one frame: no loop,
        // and no range to check, on a first-touch fault's path).
        if order > 0 {
            for m in &mut self.meta[i + 1..i + (1 << order)] {
                *m = (*m & u64::from(u32::MAX)) | use_bits(FrameUse::DataTail);
            }
        }
        Some(pfn)
    }

    /// Adds a reference to a data page.
    pub fn get(&mut self, pfn: Pfn) {
        let m = &mut self.meta[pfn.as_u64() as usize];
        debug_assert_eq!(
            unpack(*m).use_,
            FrameUse::Data,
            "reference to a frame that is not a data page"
        );
        debug_assert!(unpack(*m).refs < u32::MAX, "reference count overflow");
        *m += 1;
    }

    /// Drops a reference; frees the page when none is left. Returns whether it was freed.
    pub fn put(&mut self, pfn: Pfn) -> bool {
        let i = pfn.as_u64() as usize;
        let m = &mut self.meta[i];
        // Data with at least one reference: the code of `Data` and refs > 0.
        assert!(
            *m > use_bits(FrameUse::Data) && *m <= use_bits(FrameUse::Data) | u64::from(u32::MAX),
            "put of frame {pfn} with no reference"
        );
        *m -= 1;
        if *m != use_bits(FrameUse::Data) {
            return false;
        }
        *m &= u64::from(u32::MAX);
        // The page's other frames (none with pages of one frame: no loop).
        let order = self.page_order();
        if order > 0 {
            for m in &mut self.meta[i + 1..i + (1 << order)] {
                *m &= u64::from(u32::MAX);
            }
        }
        self.buddy.free_order(pfn, order);
        true
    }

    /// Records that a block was handed out for page tables (or slabs).
    pub fn mark(&mut self, pfn: Pfn, order: u32, use_: FrameUse) {
        let i = pfn.as_u64() as usize;
        for (k, m) in self.meta[i..i + (1 << order)].iter_mut().enumerate() {
            let was = unpack(*m).use_ == FrameUse::Table;
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
            *m = use_bits(use_);
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

/// The checkpoint form of the packed table: exactly what
/// `crate::serde_sparse` writes for the `Vec<FrameMeta>` it unpacks to
/// (checkpoints from before the packing read back, and are written, the same).
mod packed_metas {
    use serde::{Deserializer, Serializer};

    use super::{FrameMeta, pack, unpack};

    /// Writes the packed table as the sparse `Vec<FrameMeta>`.
    pub(super) fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        crate::serde_sparse::serialize_mapped(v, |w| unpack(*w), s)
    }

    /// Reads a sparse `Vec<FrameMeta>` into the packed table.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        crate::serde_sparse::deserialize_mapped(d, |m: FrameMeta| pack(m))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::PhysMem;

    /// The frame table as it was before the packing: its derived form is the
    /// checkpoint format.
    #[derive(Serialize)]
    struct Unpacked<'a> {
        buddy: &'a Buddy,
        #[serde(with = "crate::serde_sparse")]
        meta: Vec<FrameMeta>,
        page: PageSize,
        frame: PageSize,
        tables: u64,
    }

    fn unpacked(t: &FrameTable) -> Unpacked<'_> {
        Unpacked {
            buddy: &t.buddy,
            meta: t.all().iter().collect(),
            page: t.page,
            frame: t.frame,
            tables: t.tables,
        }
    }

    #[test]
    fn the_packed_table_checkpoints_as_the_unpacked_one() {
        let buddy = Buddy::with_default_order(PageSize::SIZE_4K, Pfn::new(2), 3000).expect("buddy");
        let mut mem: PhysMem = PhysMem::new(4096 * 3002).expect("mem");
        let mut t = FrameTable::new(buddy, PageSize::SIZE_4K);
        let empty = postcard::to_allocvec(&t).expect("ser");
        assert_eq!(empty, postcard::to_allocvec(&unpacked(&t)).expect("ser"));
        let a = t.alloc_page(&mut mem).expect("page");
        let b = t.alloc_page(&mut mem).expect("page");
        t.get(a);
        t.get(a);
        t.get(b);
        let tab = t.for_tables().alloc_order(1).expect("tables");
        let slab = t.for_slabs().alloc_order(0).expect("slab");
        assert_eq!(
            t.meta(a),
            FrameMeta {
                use_: FrameUse::Data,
                refs: 2
            }
        );
        assert_eq!(
            t.meta(tab),
            FrameMeta {
                use_: FrameUse::Table,
                refs: 0
            }
        );
        assert_eq!(t.meta(slab).use_, FrameUse::Slab);
        assert!(!t.put(a));
        assert_eq!(t.meta(a).refs, 1);
        let bytes = postcard::to_allocvec(&t).expect("ser");
        assert_eq!(bytes, postcard::to_allocvec(&unpacked(&t)).expect("ser"));
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            serde_json::to_string(&unpacked(&t)).expect("json")
        );
        let back: FrameTable = postcard::from_bytes(&bytes).expect("de");
        assert!(back.all().iter().eq(t.all().iter()));
        assert_eq!(postcard::to_allocvec(&back).expect("ser"), bytes);
        assert!(t.put(b));
        assert_eq!(t.meta(b), FrameMeta::default());
        let mut huge = FrameTable::new(
            Buddy::with_default_order(PageSize::SIZE_4K, Pfn::new(0), 2048).expect("buddy"),
            PageSize::SIZE_2M,
        );
        let mut mem: PhysMem = PhysMem::new(4096 * 2048).expect("mem");
        let h = huge.alloc_page(&mut mem).expect("huge page");
        huge.get(h);
        let tail = Pfn::new(h.as_u64() + 511);
        assert_eq!(
            huge.meta(tail),
            FrameMeta {
                use_: FrameUse::DataTail,
                refs: 0
            }
        );
        assert_eq!(
            postcard::to_allocvec(&huge).expect("ser"),
            postcard::to_allocvec(&unpacked(&huge)).expect("ser")
        );
        assert!(huge.put(h));
        assert!(huge.all().iter().all(|m| m == FrameMeta::default()));
    }
}
