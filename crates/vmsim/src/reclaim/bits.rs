//! The lab's accessed and dirty bits, and its record of which pages are
//! resident: one byte of flags per id, so a reference touches one byte.
//!
//! The lab has no TLB of limited size, but it models the one effect of the
//! TLB on the accessed bit: a translation cached in the TLB lets accesses
//! through without a walk, so the hardware sets A only when it walks. Every
//! resident page's translation is taken to stay cached until the OS
//! invalidates it. If clearing A invalidates the entry (the default, what a
//! kernel must do), the next access walks and sets A again. If not
//! ([`LabBits::new`]'s `keep_tlb_entry_on_clear`), A stays clear for as long
//! as the page is resident, however often it is used: CLOCK-like policies
//! then see every page as unused and degrade to FIFO.

use super::AccessBits;

const ACCESSED: u8 = 1;
const DIRTY: u8 = 2;
const RESIDENT: u8 = 4;
/// The page's translation is cached (in the modelled TLB).
const CACHED: u8 = 8;

/// Accessed and dirty bits for ids `0..n`, as the lab's "hardware" sets
/// them, plus whether each page is resident (the lab driver's bookkeeping).
///
/// See the module docs for how the TLB's effect on A is modelled.
#[derive(Debug, Clone)]
pub struct LabBits {
    flags: Vec<u8>,
    /// Flags that clearing A also clears: `ACCESSED | CACHED` when clearing
    /// invalidates the TLB entry, `ACCESSED` alone when it does not.
    clear_mask: u8,
}

impl LabBits {
    /// All bits clear, nothing resident, for ids `0..n`.
    /// `keep_tlb_entry_on_clear`: clearing A does not invalidate the cached
    /// translation (the mistake whose effect the lab can show).
    #[must_use]
    pub fn new(n: usize, keep_tlb_entry_on_clear: bool) -> Self {
        let clear_mask = if keep_tlb_entry_on_clear {
            ACCESSED
        } else {
            ACCESSED | CACHED
        };
        Self {
            flags: vec![0; n],
            clear_mask,
        }
    }

    /// Whether `id` is resident.
    #[inline]
    #[must_use]
    pub fn is_resident(&self, id: u32) -> bool {
        self.flags[id as usize] & RESIDENT != 0
    }

    /// A reference to resident `id`: a walk (setting A and caching the
    /// translation) unless the translation is cached; D if it is a write.
    #[inline]
    pub fn touch(&mut self, id: u32, write: bool) {
        let f = &mut self.flags[id as usize];
        if *f & CACHED == 0 {
            *f |= ACCESSED | CACHED;
        }
        if write {
            *f |= DIRTY;
        }
    }

    /// Page `id` was loaded and the faulting access restarted: resident, A
    /// set by the walk, translation cached, D if it is a write.
    #[inline]
    pub fn load(&mut self, id: u32, write: bool) {
        self.flags[id as usize] = RESIDENT | ACCESSED | CACHED | if write { DIRTY } else { 0 };
    }

    /// Page `id` left memory (evicted, written back if dirty): all clear.
    #[inline]
    pub fn forget(&mut self, id: u32) {
        self.flags[id as usize] = 0;
    }
}

impl AccessBits for LabBits {
    #[inline]
    fn test_and_clear_accessed(&mut self, id: u32) -> bool {
        let f = &mut self.flags[id as usize];
        let was = *f & ACCESSED != 0;
        *f &= !self.clear_mask;
        was
    }

    #[inline]
    fn is_accessed(&self, id: u32) -> bool {
        self.flags[id as usize] & ACCESSED != 0
    }

    #[inline]
    fn is_dirty(&self, id: u32) -> bool {
        self.flags[id as usize] & DIRTY != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_a_without_invalidating_leaves_it_clear_while_cached() {
        for keep in [false, true] {
            let mut b = LabBits::new(2, keep);
            b.load(0, false);
            assert!(b.test_and_clear_accessed(0));
            b.touch(0, true);
            assert_eq!(b.is_accessed(0), !keep, "keep_tlb_entry_on_clear = {keep}");
            assert!(b.is_dirty(0));
            b.forget(0);
            b.load(0, false);
            assert!(b.is_accessed(0), "a new load walks again");
        }
    }
}
