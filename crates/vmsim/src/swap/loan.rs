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
/// first old value of each word stored to since the swap-in.
#[derive(Debug, Clone)]
pub(crate) struct LoanRecord {
    /// The memory chunk holding the lent buffer.
    pub(crate) chunk: u64,
    pub(crate) slot: SwapSlot,
    pub(crate) number: u64,
    /// Records in use.
    n: u8,
    /// Word index of each record.
    words: [u16; LOAN_WORDS],
    /// The word's bytes before the first store to it.
    old: [u64; LOAN_WORDS],
}

impl LoanRecord {
    /// A loan with nothing stored yet.
    pub(crate) fn new(chunk: u64, slot: SwapSlot, number: u64) -> Self {
        Self {
            chunk,
            slot,
            number,
            n: 0,
            words: [0; LOAN_WORDS],
            old: [0; LOAN_WORDS],
        }
    }

    /// Nothing stored since the swap-in: the buffer is the slot's page.
    pub(crate) fn is_clean(&self) -> bool {
        self.n == 0
    }

    /// Saves the words of `page` that a store to bytes `off..off + len`
    /// is about to change, each once. False when that needs more than
    /// [`LOAN_WORDS`] records: the loan must then close the old way
    /// (before the store; the words saved so far are still right).
    #[inline]
    pub(crate) fn save(&mut self, page: &[u8], off: usize, len: usize) -> bool {
        debug_assert!(len > 0 && off + len <= page.len());
        for w in off / 8..=(off + len - 1) / 8 {
            let n = self.n as usize;
            if self.words[..n].contains(&(w as u16)) {
                continue;
            }
            if n == LOAN_WORDS {
                return false;
            }
            let mut word = [0u8; 8];
            word.copy_from_slice(&page[w * 8..w * 8 + 8]);
            self.words[n] = w as u16;
            self.old[n] = u64::from_le_bytes(word);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_word_once_and_undoes_to_the_old_page() {
        let old: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 1) as u8).collect();
        let mut page = old.clone();
        let mut r = LoanRecord::new(0, SwapSlot(0), 1);
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
}
