//! The swap device's page cache in host memory: a bounded, write-back cache
//! of slot contents in front of the swap file.
//!
//! Why: a swap-heavy run reads most pages back soon after writing them, and
//! one `pread`/`pwrite` per page (plus the kernel's copy) cost a third of
//! such a run. With the cache a swap-out copies the frame into a cache entry
//! (or hands over the frame's shared buffer, see `shared_page.rs`) and a
//! swap-in lends the entry's buffer to the frame (no copy; the frame copies
//! it before its first write); the file gets the
//! pages later, in batches sorted by slot with consecutive slots coalesced
//! into one write, when entries must make room, at [`SwapCache::flush`]
//! (checkpoints, the device's drop) and never more than once per change.
//!
//! Entries are replaced by CLOCK (a referenced bit per entry). When the
//! victim is dirty, up to [`WRITE_BATCH`] dirty entries from the hand on are
//! cleaned in one go: those are the next victims, so most evictions then
//! drop a clean entry with no I/O. A write that fails leaves every entry it
//! did not complete dirty and cached: nothing is lost, and the error is
//! returned to the caller (the page that was to be written stays in its
//! frame).
//!
//! The cache holds at most `limit` pages (the device's setting,
//! [`super::SwapDevice::set_cache_bytes`]); its memory grows with use up to
//! that bound, not beyond the slots ever written. Each entry's page is a
//! reference-counted buffer ([`Held`]), none for an all-zero page; a
//! buffer is filled again only once the cache is its last holder (a frame
//! that still refers to it keeps it, and the cache takes a new one). A
//! written page usually comes in as the frame's own buffer (`put_held`),
//! taking no spare: the spares then go to memory for its copies on first
//! write ([`SwapCache::take_spare`]), and at most [`SPARE_BUFFERS`] are kept.
//!
//! An entry may be lent to a frame ([`Held::Lent`], `loan.rs`): its buffer
//! is then memory's alone and the entry has no bytes. A lent entry is never
//! written back nor evicted (CLOCK passes over it), at most half the
//! entries are lent at once (so CLOCK always finds a victim), and reading
//! one is an error ([`LentSlot`]), never a fall-through to the file, whose
//! copy may be older.

use std::io;
use std::sync::Arc;

/// No entry / no slot.
const NONE: u32 = u32::MAX;

/// Most dirty entries cleaned by one write-back when a dirty entry must be
/// evicted (4 MiB of 4 KiB pages).
pub(super) const WRITE_BATCH: usize = 1024;

/// Most pages of one coalesced write.
const MAX_RUN: usize = 256;

/// Entries added to the cache's memory at a time (it grows with use).
const GROW: usize = 256;

/// Most spare buffers kept (256 KiB of 4 KiB pages): swap-outs that hand
/// over a frame's own buffer take none, so without a bound they would pile
/// up.
const SPARE_BUFFERS: usize = 64;

/// Writes `data` (whole pages) at the file offset of `first_slot`.
pub(super) type WriteRun<'a> = dyn FnMut(u32, &[u8]) -> io::Result<()> + 'a;

/// A cache entry's page.
#[derive(Debug, Clone, Default)]
pub(super) enum Held {
    /// Every byte is zero (no buffer; also a free entry's state).
    #[default]
    Zero,
    /// The page's bytes, not all zero, possibly shared with frames.
    Bytes(Arc<[u8]>),
    /// The page's buffer is lent to a frame under this loan number: memory
    /// holds it, and the slot's old bytes, until the loan is closed.
    Lent(u64),
}

/// A cached slot's page is lent to a frame: its bytes are not here (a
/// kernel bug if anyone asks: loans are closed before the slot is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LentSlot;

/// A bounded write-back cache of swap slots' pages.
#[derive(Debug, Default)]
pub(super) struct SwapCache {
    /// Bytes of a page.
    page: usize,
    /// Most entries.
    limit: usize,
    /// The entries' pages.
    held: Vec<Held>,
    /// Buffers no one else refers to, for the next pages put.
    spare: Vec<Arc<[u8]>>,
    /// One all-zero page, what a [`Held::Zero`] entry reads as.
    zeros: Box<[u8]>,
    /// The slot each entry holds (`NONE`: free).
    slot: Vec<u32>,
    /// The entry differs from the file.
    dirty: Vec<bool>,
    /// CLOCK's referenced bit.
    referenced: Vec<bool>,
    /// The entry of each slot (`NONE`: not cached), by slot index.
    entry_of: Vec<u32>,
    /// Free entries.
    free: Vec<u32>,
    /// CLOCK's hand.
    hand: usize,
    /// Entries that are dirty.
    dirty_count: usize,
    /// Coalesced pages on their way to the file.
    gather: Vec<u8>,
    /// Entries lent to frames.
    lent: usize,
}

impl SwapCache {
    /// An empty cache for `slots` slots of `page` bytes, holding at most
    /// `limit` pages (0: no cache).
    pub(super) fn new(page: usize, slots: usize, limit: usize) -> Self {
        Self {
            page,
            // Two at least: a rewrite of a cached slot needs a second entry.
            limit: if limit == 0 {
                0
            } else {
                limit.max(2).min(slots.max(2))
            },
            entry_of: if limit > 0 {
                vec![NONE; slots]
            } else {
                Vec::new()
            },
            zeros: if limit > 0 {
                vec![0; page].into_boxed_slice()
            } else {
                Box::default()
            },
            ..Self::default()
        }
    }

    /// Most pages held.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Entries allocated (free or not).
    fn entries(&self) -> usize {
        self.slot.len()
    }

    /// Pages held that the file does not have yet.
    pub(super) fn dirty_pages(&self) -> usize {
        self.dirty_count
    }

    /// Pages held.
    pub(super) fn len(&self) -> usize {
        self.entries() - self.free.len()
    }

    fn entry(&self, slot: u32) -> Option<usize> {
        match self.entry_of.get(slot as usize) {
            Some(&e) if e != NONE => Some(e as usize),
            _ => None,
        }
    }

    fn bytes(&self, e: usize) -> Result<&[u8], LentSlot> {
        match &self.held[e] {
            Held::Zero => Ok(&self.zeros),
            Held::Bytes(b) => Ok(b),
            Held::Lent(_) => Err(LentSlot),
        }
    }

    fn is_lent(&self, e: usize) -> bool {
        matches!(self.held[e], Held::Lent(_))
    }

    /// Lends `slot`'s page to a frame under loan `number`: its buffer,
    /// when the cache is its only holder and fewer than half the entries
    /// are lent (CLOCK needs victims). The entry keeps its dirty state.
    pub(super) fn lend(&mut self, slot: u32, number: u64) -> Option<Arc<[u8]>> {
        if self.lent >= self.limit / 2 {
            return None;
        }
        let e = self.entry(slot)?;
        if !matches!(&self.held[e], Held::Bytes(b) if Arc::strong_count(b) == 1) {
            return None;
        }
        let Held::Bytes(b) = std::mem::replace(&mut self.held[e], Held::Lent(number)) else {
            unreachable!("checked just above")
        };
        self.referenced[e] = true;
        self.lent += 1;
        Some(b)
    }

    /// The old bytes of `slot`'s page lent under loan `number`: the entry
    /// holds them again when it is still that loan's, else (the slot was
    /// rewritten or freed since) the buffer is a spare. Returns whether
    /// the entry took them.
    #[inline]
    pub(super) fn give_back(&mut self, slot: u32, number: u64, page: Arc<[u8]>) -> bool {
        match self.entry(slot) {
            Some(e) if matches!(self.held[e], Held::Lent(n) if n == number) => {
                debug_assert!(!crate::memory::all_zero(&page));
                self.held[e] = Held::Bytes(page);
                self.lent -= 1;
                true
            }
            _ => {
                let mut page = page;
                if self.spare.len() < SPARE_BUFFERS && Arc::get_mut(&mut page).is_some() {
                    self.spare.push(page);
                }
                false
            }
        }
    }

    /// Entries lent to frames now.
    pub(super) fn lent(&self) -> usize {
        self.lent
    }

    /// Whether `slot`'s entry is lent.
    pub(super) fn is_slot_lent(&self, slot: u32) -> bool {
        self.entry(slot).is_some_and(|e| self.is_lent(e))
    }

    /// Lets go of entry `e`'s buffer: kept for the next page put when the
    /// cache was its last holder, else left to the frames that share it.
    fn recycle(&mut self, e: usize) {
        if let Held::Bytes(mut b) = std::mem::take(&mut self.held[e])
            && self.spare.len() < SPARE_BUFFERS
            && Arc::get_mut(&mut b).is_some()
        {
            self.spare.push(b);
        }
    }

    /// A spare buffer (no other holder), for memory's next copy on first
    /// write: a swap-out that hands the cache the frame's own buffer
    /// (`put_held`) takes none of the spares, so they are passed on.
    pub(super) fn take_spare(&mut self) -> Option<Arc<[u8]>> {
        self.spare.pop()
    }

    /// The cached page of `slot`, without marking it used (a checkpoint's
    /// look); `Ok(None)`: not cached.
    pub(super) fn peek(&self, slot: u32) -> Result<Option<&[u8]>, LentSlot> {
        self.entry(slot).map(|e| self.bytes(e)).transpose()
    }

    /// The cached page of `slot`, marked used (a swap-in); `Ok(None)`: not
    /// cached.
    pub(super) fn get(&mut self, slot: u32) -> Result<Option<&[u8]>, LentSlot> {
        let Some(e) = self.entry(slot) else {
            return Ok(None);
        };
        self.referenced[e] = true;
        self.bytes(e).map(Some)
    }

    /// The cached page of `slot` as it is held (to be shared, not copied),
    /// marked used (a swap-in).
    pub(super) fn get_held(&mut self, slot: u32) -> Option<&Held> {
        let e = self.entry(slot)?;
        self.referenced[e] = true;
        Some(&self.held[e])
    }

    /// Forgets `slot` (freed: its contents no longer matter, so a dirty page
    /// is dropped without a write).
    pub(super) fn remove(&mut self, slot: u32) {
        if let Some(e) = self.entry(slot) {
            self.release(e);
        }
    }

    fn release(&mut self, e: usize) {
        let s = self.slot[e];
        if let Some(x) = self.entry_of.get_mut(s as usize) {
            *x = NONE;
        }
        self.slot[e] = NONE;
        if std::mem::take(&mut self.dirty[e]) {
            self.dirty_count -= 1;
        }
        self.referenced[e] = false;
        if self.is_lent(e) {
            self.lent -= 1;
        }
        self.recycle(e);
        self.free.push(e as u32);
    }

    /// Puts a new page for `slot` in the cache, filled by `fill` straight
    /// into its entry (one copy). The slot's older entry is replaced only
    /// once `fill` succeeds, so a failed fill leaves the slot's old contents
    /// as they were. May first write dirty entries back to make room.
    ///
    /// # Errors
    /// `Err(Ok(io))` if making room failed (nothing changed but the
    /// entries that did reach the file), `Err(Err(e))` if `fill` failed.
    pub(super) fn put<E>(
        &mut self,
        slot: u32,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
        write: &mut WriteRun<'_>,
    ) -> Result<(), Result<io::Error, E>> {
        let e = self.take_entry(slot, write).map_err(Ok)?;
        // A spare buffer has no other holder, nor has a new one: filled in
        // place.
        let mut buf = match self.spare.pop() {
            Some(b) => b,
            None => std::iter::repeat_n(0u8, self.page).collect(),
        };
        debug_assert_eq!(Arc::strong_count(&buf), 1);
        // `make_mut` never copies here (no other holder); were one ever
        // there, it would copy rather than fill a buffer a frame reads.
        let filled = fill(Arc::make_mut(&mut buf));
        if let Err(err) = filled {
            self.spare.push(buf);
            self.free.push(e as u32);
            return Err(Err(err));
        }
        self.install_filled(slot, e, buf);
        Ok(())
    }

    /// Puts a copy of `bytes` (one page) for `slot` in the cache, as
    /// [`SwapCache::put`] with a fill that copies them would, but a new
    /// buffer is made from the bytes themselves (not zeroed first, then
    /// overwritten). May first write dirty entries back to make room.
    ///
    /// # Errors
    /// Making room failed (nothing changed but the entries that did reach
    /// the file).
    pub(super) fn put_copy(
        &mut self,
        slot: u32,
        bytes: &[u8],
        write: &mut WriteRun<'_>,
    ) -> io::Result<()> {
        debug_assert_eq!(bytes.len(), self.page);
        let e = self.take_entry(slot, write)?;
        // A spare buffer has no other holder: filled in place (`get_mut`,
        // inlined, where `make_mut` was a call per page that looked at the
        // counts the same way). Were one ever held elsewhere, a new buffer.
        let buf = match self.spare.pop() {
            Some(mut b) => {
                debug_assert_eq!(Arc::strong_count(&b), 1);
                match Arc::get_mut(&mut b) {
                    Some(dst) => {
                        dst.copy_from_slice(bytes);
                        b
                    }
                    None => Arc::from(bytes),
                }
            }
            None => Arc::from(bytes),
        };
        self.install_filled(slot, e, buf);
        Ok(())
    }

    /// Entry `e` (taken, empty) holds the freshly filled buffer `buf` for
    /// `slot`. Looked at once here, not at each swap-in: an all-zero page
    /// keeps no buffer (and is stored as nothing when it comes back).
    fn install_filled(&mut self, slot: u32, e: usize, buf: Arc<[u8]>) {
        let held = if crate::memory::all_zero(&buf) {
            self.spare.push(buf);
            Held::Zero
        } else {
            Held::Bytes(buf)
        };
        self.install(slot, e, held);
    }

    /// Puts page `held` for `slot` in the cache without a copy (a buffer
    /// the frame shares, or an all-zero page). May first write dirty
    /// entries back to make room.
    ///
    /// # Errors
    /// Making room failed (nothing changed but the entries that did reach
    /// the file).
    pub(super) fn put_held(
        &mut self,
        slot: u32,
        held: Held,
        write: &mut WriteRun<'_>,
    ) -> io::Result<()> {
        let e = self.take_entry(slot, write)?;
        self.install(slot, e, held);
        Ok(())
    }

    /// Entry `e` (taken, empty) holds `held` for `slot` from now on,
    /// dirty; the slot's older entry is released.
    fn install(&mut self, slot: u32, e: usize, held: Held) {
        self.held[e] = held;
        if let Some(old) = self.entry(slot) {
            self.release(old);
        }
        self.slot[e] = slot;
        self.entry_of[slot as usize] = e as u32;
        self.dirty[e] = true;
        self.dirty_count += 1;
        self.referenced[e] = true;
    }

    /// An unused entry (not holding `keep`'s page): a free one, a new one
    /// while below the limit, or CLOCK's victim (written back first if dirty).
    fn take_entry(&mut self, keep: u32, write: &mut WriteRun<'_>) -> io::Result<usize> {
        if let Some(e) = self.free.pop() {
            return Ok(e as usize);
        }
        if self.entries() < self.limit {
            let add = GROW.min(self.limit - self.entries());
            let first = self.entries();
            self.held.resize(first + add, Held::Zero);
            self.slot.resize(first + add, NONE);
            self.dirty.resize(first + add, false);
            self.referenced.resize(first + add, false);
            // Hand out the lowest first.
            self.free
                .extend((first + 1..first + add).rev().map(|e| e as u32));
            return Ok(first);
        }
        // Every entry holds a page: CLOCK. Two sweeps clear every referenced
        // bit; the slot being written is never its own victim, nor is a
        // lent entry (its bytes are memory's; at most half are lent).
        let n = self.entries();
        for _ in 0..3 * n {
            let e = self.hand;
            self.hand = (self.hand + 1) % n;
            if self.slot[e] == keep || self.is_lent(e) {
                continue;
            }
            if std::mem::take(&mut self.referenced[e]) {
                continue;
            }
            if self.dirty[e] {
                self.write_back(e, WRITE_BATCH, write)?;
            }
            let s = self.slot[e];
            self.entry_of[s as usize] = NONE;
            self.slot[e] = NONE;
            self.recycle(e);
            return Ok(e);
        }
        // Unreachable: the limit is at least two entries.
        Err(io::Error::other("swap cache has no entry to spare"))
    }

    /// Writes up to `max` dirty entries to the file, starting from entry
    /// `from` in CLOCK order (the next victims), sorted by slot and with
    /// consecutive slots in one write. Entries stay cached, clean.
    fn write_back(&mut self, from: usize, max: usize, write: &mut WriteRun<'_>) -> io::Result<()> {
        let n = self.entries();
        let mut batch: Vec<(u32, u32)> = Vec::with_capacity(max.min(self.dirty_count));
        for k in 0..n {
            if batch.len() >= max || batch.len() == self.dirty_count {
                break;
            }
            let e = (from + k) % n;
            // A lent entry stays dirty: its loan is closed before a flush.
            if self.dirty[e] && !self.is_lent(e) {
                batch.push((self.slot[e], e as u32));
            }
        }
        batch.sort_unstable();
        let mut i = 0;
        while i < batch.len() {
            let mut j = i + 1;
            while j < batch.len() && j - i < MAX_RUN && batch[j].0 == batch[j - 1].0 + 1 {
                j += 1;
            }
            let first = batch[i].0;
            let lent = |_| io::Error::other("swap cache entry lent while written back");
            if j - i == 1 {
                write(first, self.bytes(batch[i].1 as usize).map_err(lent)?)?;
            } else {
                let mut gather = std::mem::take(&mut self.gather);
                gather.clear();
                for &(_, e) in &batch[i..j] {
                    gather.extend_from_slice(self.bytes(e as usize).map_err(lent)?);
                }
                let r = write(first, &gather);
                self.gather = gather;
                r?;
            }
            for &(_, e) in &batch[i..j] {
                self.dirty[e as usize] = false;
                self.dirty_count -= 1;
            }
            i = j;
        }
        Ok(())
    }

    /// Writes every dirty entry to the file (entries stay cached, clean).
    ///
    /// # Errors
    /// A write failed: the entries not yet written stay dirty. Or an entry
    /// is lent and dirty (its loan was not closed first: the file would
    /// miss its page; the others are written).
    pub(super) fn flush(&mut self, write: &mut WriteRun<'_>) -> io::Result<()> {
        if self.dirty_count == 0 {
            return Ok(());
        }
        self.write_back(0, usize::MAX, write)?;
        if self.dirty_count != 0 {
            return Err(io::Error::other(format!(
                "{} swap cache entries lent to frames at a flush (their loans must be closed first)",
                self.dirty_count
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A file in memory that can be told to fail.
    #[derive(Default)]
    struct Disk {
        pages: BTreeMap<u32, Vec<u8>>,
        writes: usize,
        fail: bool,
    }

    impl Disk {
        fn writer(&mut self, page: usize) -> impl FnMut(u32, &[u8]) -> io::Result<()> + '_ {
            move |first, data| {
                if self.fail {
                    return Err(io::Error::other("disk full"));
                }
                self.writes += 1;
                for (k, p) in data.chunks(page).enumerate() {
                    self.pages.insert(first + k as u32, p.to_vec());
                }
                Ok(())
            }
        }
    }

    fn put(c: &mut SwapCache, d: &mut Disk, slot: u32, v: u8) -> io::Result<()> {
        let mut w = d.writer(c.page);
        c.put(
            slot,
            |b| {
                b.fill(v);
                Ok::<(), ()>(())
            },
            &mut w,
        )
        .map_err(|e| e.expect("fill does not fail"))
    }

    #[test]
    fn writes_back_in_sorted_coalesced_batches_and_keeps_the_limit() {
        let mut c = SwapCache::new(8, 64, 4);
        let mut d = Disk::default();
        for s in [3, 1, 2, 0] {
            put(&mut c, &mut d, s, s as u8 + 1).expect("put");
        }
        assert_eq!((d.writes, c.len(), c.dirty_pages()), (0, 4, 4));
        // A fifth page evicts: all four dirty pages go out, slots 0-3 in one write.
        put(&mut c, &mut d, 10, 11).expect("put");
        assert_eq!(d.writes, 1, "one coalesced write");
        assert_eq!(c.len(), 4);
        assert_eq!(c.dirty_pages(), 1);
        for s in 0..4u32 {
            assert_eq!(d.pages[&s], vec![s as u8 + 1; 8]);
        }
        // The evicted page is gone from the cache; the others read from it.
        let cached: Vec<u32> = (0..4).filter(|&s| c.peek(s) != Ok(None)).collect();
        assert_eq!(cached.len(), 3);
        assert_eq!(c.get(10), Ok(Some(&[11u8; 8][..])));
        // Freed slots are forgotten without a write.
        c.remove(10);
        c.flush(&mut d.writer(8)).expect("flush");
        assert!(!d.pages.contains_key(&10));
        assert_eq!(c.dirty_pages(), 0);
    }

    #[test]
    fn a_failed_write_back_keeps_every_dirty_page_and_a_failed_fill_keeps_the_old_one() {
        let mut c = SwapCache::new(8, 64, 2);
        let mut d = Disk::default();
        put(&mut c, &mut d, 5, 5).expect("put");
        put(&mut c, &mut d, 6, 6).expect("put");
        d.fail = true;
        let e = put(&mut c, &mut d, 7, 7).expect_err("no room without a write");
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(c.peek(5), Ok(Some(&[5u8; 8][..])));
        assert_eq!(c.peek(6), Ok(Some(&[6u8; 8][..])));
        assert_eq!(c.peek(7), Ok(None));
        assert_eq!(c.dirty_pages(), 2);
        assert!(c.flush(&mut d.writer(8)).is_err());
        d.fail = false;
        // A fill that fails leaves the slot's page as it was.
        let r = c.put(
            6,
            |b| {
                b.fill(99);
                Err("no")
            },
            &mut d.writer(8),
        );
        assert!(matches!(r, Err(Err("no"))));
        assert_eq!(c.peek(6), Ok(Some(&[6u8; 8][..])));
        c.flush(&mut d.writer(8)).expect("flush");
        assert_eq!(d.pages[&5], vec![5; 8]);
        assert_eq!(d.pages[&6], vec![6; 8]);
    }

    #[test]
    fn a_rewritten_slot_is_never_its_own_victim() {
        // A limit of one is raised to two: a rewrite needs a second entry.
        let mut c = SwapCache::new(8, 4, 1);
        assert_eq!(c.limit(), 2);
        let mut d = Disk::default();
        put(&mut c, &mut d, 0, 1).expect("put");
        put(&mut c, &mut d, 1, 2).expect("put");
        // Full: rewriting slot 0 evicts slot 1 (written first), not slot 0.
        put(&mut c, &mut d, 0, 3).expect("rewrite");
        assert_eq!(c.peek(0), Ok(Some(&[3u8; 8][..])));
        assert_eq!(c.peek(1), Ok(None));
        assert_eq!(d.pages[&1], vec![2; 8]);
        assert_eq!(c.dirty_pages(), 1);
    }
}
