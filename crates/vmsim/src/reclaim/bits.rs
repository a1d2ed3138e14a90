//! The lab's accessed and dirty bits: one byte per id, set as the hardware
//! would on each reference.

use super::AccessBits;

/// Accessed and dirty bits for ids `0..n`, as the lab's "hardware" sets them.
///
/// The lab has no TLB: clearing A behaves as if the TLB entry were
/// invalidated too, so the next reference sets A again (see the contract on
/// [`AccessBits`]).
#[derive(Debug, Clone)]
pub struct LabBits {
    accessed: Vec<bool>,
    dirty: Vec<bool>,
}

impl LabBits {
    /// All bits clear for ids `0..n`.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            accessed: vec![false; n],
            dirty: vec![false; n],
        }
    }

    /// A reference to `id`: sets A, and D if it is a write.
    #[inline]
    pub fn touch(&mut self, id: u32, write: bool) {
        self.accessed[id as usize] = true;
        if write {
            self.dirty[id as usize] = true;
        }
    }

    /// Page `id` left memory (evicted, written back if dirty): both bits clear.
    #[inline]
    pub fn forget(&mut self, id: u32) {
        self.accessed[id as usize] = false;
        self.dirty[id as usize] = false;
    }
}

impl AccessBits for LabBits {
    #[inline]
    fn test_and_clear_accessed(&mut self, id: u32) -> bool {
        std::mem::replace(&mut self.accessed[id as usize], false)
    }

    #[inline]
    fn is_accessed(&self, id: u32) -> bool {
        self.accessed[id as usize]
    }

    #[inline]
    fn is_dirty(&self, id: u32) -> bool {
        self.dirty[id as usize]
    }
}
