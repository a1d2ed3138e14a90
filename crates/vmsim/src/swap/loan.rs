//! A swap cache page lent to a frame: the frame writes in the cache's own
//! buffer, and the slot's old bytes are kept as undo records.
//!
//! Why: a page swapped in shares the swap cache's buffer
//! (`shared_page.rs`), and its first store used to copy the whole 4 KiB
//! first, because the cache's bytes are the slot's content and must stay.
//! In a swap-heavy run those copies were over half of the last-level cache
//! misses (both ends cold), and nearly every such page was stored to a few
//! times and then evicted dirty to the same slot, which rewrites the slot:
//! the old bytes were never looked at again.
//!
//! So when no swap entry refers to the slot any more (the frame is its
//! page's only copy that counts), the kernel swaps the page in as a
//! [`Loan`]: the cache entry gives up its buffer and records that it is
//! lent (a loan number), memory holds the only reference and writes in
//! place. Each store first saves the 8-byte words it overwrites
//! ([`LoanRecord`], at most [`LOAN_WORDS`]); a store past the bound
//! closes the loan the old way (a copy, the records undone on the copy,
//! the copy back to the cache). A loan ends with no copy when the page
//! goes out dirty to its slot (the slot is rewritten) or out clean (the
//! buffer goes back as it is). Everything else that could look at the
//! slot's bytes closes the loan first, handing the old bytes back as a
//! [`LoanReturn`]: checkpoints and the end of a run
//! (`Kernel::flush_swap`), the release of the frame's chunk (undone in
//! place: the frame no longer needs its bytes). A slot given to another
//! page meanwhile (freed, or taken by a full swap device) is rewritten:
//! its loan number no longer matches, and a late return is refused.
//!
//! Both tokens are `#[must_use]` and neither is `Clone`: a loan taken
//! from the device must reach memory, and a return made by memory must
//! reach the device, or the slot's old bytes are lost.

use super::SwapSlot;
use crate::shared_page::SharedChunk;

/// Most 8-byte words a loan records before it closes the old way (98.8%
/// of the swap row's loans end within it; see docs/speed.md).
pub const LOAN_WORDS: usize = 8;

/// Words of a page.
const PAGE_WORDS: usize = crate::shared_page::SHARED_PAGE_BYTES / 8;

/// A swap cache page lent to a frame (made by `SwapDevice::lend`): the
/// cache's entry is marked lent with `number`, and `page` is its buffer,
/// with no other holder.
#[must_use = "a lent page must be installed in memory (`PhysMemory::write_lent`), or the slot's bytes are lost"]
#[derive(Debug)]
pub struct Loan {
    pub(crate) slot: SwapSlot,
    pub(crate) number: u64,
    pub(crate) page: SharedChunk,
}

impl Loan {
    /// A loan of `page` from slot `slot`, numbered `number`, made by hand
    /// (the device makes the real ones): for memory's tests.
    #[cfg(test)]
    pub(crate) fn for_test(slot: u32, number: u64, page: SharedChunk) -> Self {
        Self {
            slot: SwapSlot(slot),
            number,
            page,
        }
    }

    /// The slot whose page is lent.
    #[must_use]
    pub fn slot(&self) -> SwapSlot {
        self.slot
    }

    /// The loan's page, unchanged, handed straight back (a memory that
    /// cannot hold it copies its bytes).
    pub(crate) fn into_return(self) -> LoanReturn {
        LoanReturn {
            slot: self.slot,
            number: self.number,
            page: self.page,
        }
    }
}

/// The old bytes of a lent slot, handed back by memory when the loan
/// closes (for `SwapDevice::give_back`): the entry becomes this page again
/// if it is still lent under `number`, else the buffer is a spare.
#[must_use = "a closed loan's bytes must go back to the swap device (`SwapDevice::give_back`)"]
#[derive(Debug)]
pub struct LoanReturn {
    pub(crate) slot: SwapSlot,
    pub(crate) number: u64,
    pub(crate) page: SharedChunk,
}

impl LoanReturn {
    /// The slot the bytes belong to.
    #[must_use]
    pub fn slot(&self) -> SwapSlot {
        self.slot
    }

    /// The slot's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.page[..]
    }
}

/// An open loan's undo records, kept by memory beside the lent chunk: the
/// first old value of each word stored to since the swap-in. Made at the
/// loan's first store, not at the swap-in: most loans end clean (the page
/// was only read), and those never need one.
#[derive(Debug, Clone)]
pub(crate) struct LoanRecord {
    /// Records in use.
    n: u8,
    /// Word index of each record (`NO_WORD` past `n`), all compared at
    /// once: no search bounded by `n`.
    words: [u16; LOAN_WORDS],
    /// The word's bytes before the first store to it.
    old: [u64; LOAN_WORDS],
}

/// A record not in use (no page has that many words).
const NO_WORD: u16 = u16::MAX;

impl LoanRecord {
    /// A loan with nothing stored yet.
    pub(crate) fn new() -> Self {
        Self {
            n: 0,
            words: [NO_WORD; LOAN_WORDS],
            old: [0; LOAN_WORDS],
        }
    }

    /// Empty again, for the next loan stored to (the old values need no
    /// clearing: only the first `n` are read).
    #[inline(always)]
    fn reset(&mut self) {
        self.n = 0;
        self.words = [NO_WORD; LOAN_WORDS];
    }

    /// Saves the words of `page` that a store to bytes `off..off + len`
    /// is about to change, each once. False when that needs more than
    /// [`LOAN_WORDS`] records: the loan must then close the old way
    /// (before the store; the words saved so far are still right).
    #[inline(always)]
    pub(crate) fn save(&mut self, page: &[u8], off: usize, len: usize) -> bool {
        debug_assert!(len > 0 && off + len <= page.len());
        for w in off / 8..=(off + len - 1) / 8 {
            // All the records compared, no early exit: one vector compare.
            let saved = self
                .words
                .iter()
                .fold(false, |found, &x| found | (x == w as u16));
            if saved {
                continue;
            }
            let n = self.n as usize;
            if n >= LOAN_WORDS {
                return false;
            }
            let Some(word) = page.get(w * 8..).and_then(<[u8]>::first_chunk::<8>) else {
                return false;
            };
            self.words[n] = w as u16;
            self.old[n] = u64::from_le_bytes(*word);
            self.n += 1;
        }
        true
    }

    /// Puts the saved words back into `page` (the lent buffer's bytes, or
    /// a copy of them): the slot's page as it was lent.
    pub(crate) fn undo(&self, page: &mut [u8]) {
        debug_assert_eq!(page.len(), PAGE_WORDS * 8);
        for k in 0..self.n as usize {
            let w = self.words[k] as usize;
            page[w * 8..w * 8 + 8].copy_from_slice(&self.old[k].to_le_bytes());
        }
    }
}

/// No record, no chunk.
const NONE: u32 = u32::MAX;

/// A chunk's loan in [`LoanBook`]: what the page was lent as, and its
/// record once stored to. `number` 0: the chunk is not lent (loan
/// numbers start at 1).
#[derive(Debug, Clone, Copy)]
struct OpenLoan {
    number: u64,
    slot: SwapSlot,
    /// Index in [`LoanBook::records`], `NONE` while nothing was stored.
    record: u32,
}

const NOT_LENT: OpenLoan = OpenLoan {
    number: 0,
    slot: SwapSlot(0),
    record: NONE,
};

/// Memory's open loans, by chunk: why a table by chunk and not a list of
/// records (the twenty-fifth round's): opening, ending and finding a loan
/// is one indexed load or store, with no record moved and no second index
/// to keep up, and the undo records (the big part) exist only for loans
/// that were stored to, taken from and given back to a free list.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoanBook {
    /// Each chunk's loan (`number` 0: none), as long as the highest chunk
    /// ever lent.
    by_chunk: Vec<OpenLoan>,
    /// Undo records, in use by an open loan or free.
    records: Vec<LoanRecord>,
    /// Records not in use.
    free: Vec<u32>,
    /// Open loans.
    open: usize,
}

/// A loan just ended ([`LoanBook::end`]): what the page was lent as and,
/// if it was stored to, the words to put back for the slot's old page.
pub(crate) struct Ended<'a> {
    pub(crate) slot: SwapSlot,
    pub(crate) number: u64,
    pub(crate) record: Option<&'a LoanRecord>,
}

impl LoanBook {
    /// Open loans.
    #[inline(always)]
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Whether chunk `chunk` is lent (one load of a count when nothing is).
    #[inline(always)]
    pub(crate) fn is_lent(&self, chunk: u64) -> bool {
        self.open != 0
            && self
                .by_chunk
                .get(chunk as usize)
                .is_some_and(|l| l.number != 0)
    }

    /// Chunks the table covers (every lent chunk is below).
    pub(crate) fn chunks(&self) -> u64 {
        self.by_chunk.len() as u64
    }

    /// Chunk `chunk` holds the page lent as `slot` under `number` (not 0),
    /// with nothing stored yet.
    #[inline(always)]
    pub(crate) fn lend(&mut self, chunk: u64, slot: SwapSlot, number: u64) {
        debug_assert!(number != 0 && !self.is_lent(chunk));
        let i = chunk as usize;
        if i >= self.by_chunk.len() {
            self.grow(i);
        }
        self.by_chunk[i] = OpenLoan {
            number,
            slot,
            record: NONE,
        };
        self.open += 1;
    }

    /// The table covers chunk `i` (once per highest chunk).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, i: usize) {
        self.by_chunk.resize(i + 1, NOT_LENT);
    }

    /// Saves the words of lent chunk `chunk`'s bytes `page` that a store
    /// to `off..off + len` is about to change ([`LoanRecord::save`]; its
    /// record made at the first store). False: past the bound, the loan
    /// must close the old way first.
    #[inline(always)]
    pub(crate) fn save(&mut self, chunk: u64, page: &[u8], off: usize, len: usize) -> bool {
        let Some(l) = self.by_chunk.get_mut(chunk as usize) else {
            return true;
        };
        if l.number == 0 {
            return true;
        }
        if l.record == NONE {
            l.record = match self.free.pop() {
                Some(r) => r,
                None => {
                    self.records.push(LoanRecord::new());
                    (self.records.len() - 1) as u32
                }
            };
            let Some(r) = self.records.get_mut(l.record as usize) else {
                unreachable!("loan record {} past the records", l.record)
            };
            r.reset();
            return r.save(page, off, len);
        }
        let Some(r) = self.records.get_mut(l.record as usize) else {
            unreachable!("loan record {} past the records", l.record)
        };
        r.save(page, off, len)
    }

    /// Ends chunk `chunk`'s loan, if it has one: what it was lent as and
    /// its record (`None`: nothing was stored, the buffer is the slot's
    /// page as it was lent). The record is free from then on (read it
    /// before the next loan is stored to).
    #[inline(always)]
    pub(crate) fn end(&mut self, chunk: u64) -> Option<Ended<'_>> {
        if self.open == 0 {
            return None;
        }
        let l = self.by_chunk.get_mut(chunk as usize)?;
        if l.number == 0 {
            return None;
        }
        let l = std::mem::replace(l, NOT_LENT);
        self.open -= 1;
        let record = if l.record == NONE {
            None
        } else {
            self.free.push(l.record);
            Some(&self.records[l.record as usize])
        };
        Some(Ended {
            slot: l.slot,
            number: l.number,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_word_once_and_undoes_to_the_old_page() {
        let old: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 1) as u8).collect();
        let mut page = old.clone();
        let mut r = LoanRecord::new();
        // A store across two words saves both; a second store to one of
        // them saves nothing more.
        assert!(r.save(&page, 6, 4));
        page[6..10].fill(0xee);
        assert!(r.save(&page, 8, 8));
        page[8..16].fill(0xdd);
        assert_eq!(r.n, 2);
        for k in 0..6 {
            assert!(r.save(&page, 100 * 8 + k * 8, 1));
            page[100 * 8 + k * 8] ^= 0xff;
        }
        assert!(!r.save(&page, 4088, 8), "the ninth word is past the bound");
        let mut back = page.clone();
        r.undo(&mut back);
        assert_eq!(back, old);
    }

    #[test]
    fn a_book_makes_records_at_the_first_store_and_reuses_them_fresh() {
        let page = [0x5au8; 4096];
        let mut b = LoanBook::default();
        assert!(!b.is_lent(3));
        b.lend(3, SwapSlot(7), 1);
        b.lend(9, SwapSlot(8), 2);
        assert!(b.is_lent(3) && b.is_lent(9) && !b.is_lent(4));
        assert_eq!(b.open(), 2);
        // Ended clean: no record was made.
        let e = b.end(9).expect("lent");
        assert!(e.slot == SwapSlot(8) && e.number == 2 && e.record.is_none());
        assert!(b.records.is_empty() && !b.is_lent(9));
        // A store makes the record; the end hands it over and frees it.
        for k in 0..LOAN_WORDS {
            assert!(b.save(3, &page, k * 8, 8));
        }
        assert!(!b.save(3, &page, 4000, 1), "past the bound");
        let e = b.end(3).expect("lent");
        assert_eq!(e.record.map(|r| r.n), Some(LOAN_WORDS as u8));
        assert_eq!(b.open(), 0);
        assert!(b.end(3).is_none());
        // The next loan's record is the freed one, emptied.
        b.lend(3, SwapSlot(7), 3);
        assert!(b.save(3, &page, 0, 1));
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].n, 1);
        assert_eq!(b.records[0].words[1..], [NO_WORD; LOAN_WORDS - 1]);
    }
}
