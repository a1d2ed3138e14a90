//! The lab's accessed and dirty bits, and its record of which pages are
//! resident: one byte of flags per id, so a reference touches one byte.

use super::AccessBits;

const ACCESSED: u8 = 1;
const DIRTY: u8 = 2;
const RESIDENT: u8 = 4;

/// Accessed and dirty bits for ids `0..n`, as the lab's "hardware" sets
/// them, plus whether each page is resident (the lab driver's bookkeeping).
///
/// The lab has no TLB: clearing A behaves as if the TLB entry were
/// invalidated too, so the next reference sets A again (see the contract on
/// [`AccessBits`]).
#[derive(Debug, Clone)]
pub struct LabBits {
    flags: Vec<u8>,
}

impl LabBits {
    /// All bits clear, nothing resident, for ids `0..n`.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self { flags: vec![0; n] }
    }

    /// Whether `id` is resident.
    #[inline]
    #[must_use]
    pub fn is_resident(&self, id: u32) -> bool {
        self.flags[id as usize] & RESIDENT != 0
    }

    /// A reference to `id`: sets A, and D if it is a write.
    #[inline]
    pub fn touch(&mut self, id: u32, write: bool) {
        self.flags[id as usize] |= ACCESSED | if write { DIRTY } else { 0 };
    }

    /// Page `id` was loaded: resident, and A (and D) as [`Self::touch`].
    #[inline]
    pub fn load(&mut self, id: u32, write: bool) {
        self.flags[id as usize] = RESIDENT | ACCESSED | if write { DIRTY } else { 0 };
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
        *f &= !ACCESSED;
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
