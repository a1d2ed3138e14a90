//! The 32-bit tag hints of a [`TlbArray`](super::TlbArray)'s slots:
//! [`Tags`].
//!
//! Per slot, the low 32 bits of its entry's page number, or of the empty
//! tag (its *hint*). A set's search compares the hints: four 32-bit lanes
//! to a 128-bit compare on the baseline x86-64 target (SSE2) and one test
//! of them all, where the 64-bit tags were a compare and a branch a way
//! (twelve for the 12-way second level); and a 12-way set's hints are 48
//! bytes where its tags were 96 (two cache lines, read at random on the
//! walk-heavy rows). A hint match is only a candidate: the slot's entry,
//! whose check compares the whole page number, decides, so two page
//! numbers of the same low 32 bits never change a result (the slot found
//! is the lowest way whose entry matches, as with the full tags).
//!
//! The full tags are not kept: they are the slots' page numbers (or the
//! empty tag), which a checkpoint still holds as the `Vec<u64>` it always
//! held, byte for byte, written from the slots
//! (`TlbArray`'s `Serialize`). Read back, they are kept beside the hints
//! worked out from them, for the restore's check that each is its slot's.

use serde::{Deserialize, Deserializer};

/// The hint of a tag: its low 32 bits. (The set index takes the page
/// number's low bits too, so two pages of a set share a hint only 2^32
/// pages apart.)
#[inline(always)]
#[must_use]
pub(super) const fn hint_of(tag: u64) -> u32 {
    tag as u32
}

/// The slots' hints; after a restore, also the full tags read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tags {
    hints: Vec<u32>,
    /// The tags a checkpoint held (empty in an array never restored):
    /// only for `TlbArray::check_restored`, never updated.
    restored: Vec<u64>,
    /// Tags forged by a test, written in place of the slots' own when the
    /// array is saved (see `TlbArray::forge_slot`).
    #[cfg(test)]
    pub(super) forged: std::collections::BTreeMap<usize, u64>,
}

impl Tags {
    /// `len` slots, each with the hint of `tag`.
    pub(super) fn new(len: usize, tag: u64) -> Self {
        Self {
            hints: vec![hint_of(tag); len],
            ..Self::default()
        }
    }

    /// How many slots.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.hints.len()
    }

    /// Slot `slot`'s tag becomes `tag` (its hint, `tag`'s); a slot out of
    /// range is left alone (the callers index the slots alike).
    #[inline(always)]
    pub(super) fn set(&mut self, slot: usize, tag: u64) {
        if let Some(hint) = self.hints.get_mut(slot) {
            *hint = hint_of(tag);
        }
    }

    /// The hints of slots `from..from + W` (a set of `W` ways), if in range.
    #[inline(always)]
    pub(super) fn hints<const W: usize>(&self, from: usize) -> Option<&[u32; W]> {
        self.hints.get(from..from + W)?.try_into().ok()
    }

    /// The hints of slots `from..to`, if in range.
    #[inline(always)]
    pub(super) fn hint_range(&self, from: usize, to: usize) -> Option<&[u32]> {
        self.hints.get(from..to)
    }

    /// The tags read back from a checkpoint (empty if never restored).
    pub(super) fn restored(&self) -> &[u64] {
        &self.restored
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let restored = Vec::<u64>::deserialize(deserializer)?;
        Ok(Self {
            hints: restored.iter().map(|&t| hint_of(t)).collect(),
            restored,
            ..Self::default()
        })
    }
}

/// Whether any of `hints` is `hint`: every lane compared, the results
/// or-ed together (what the compiler makes four-lane vector compares and
/// one mask test of, without a branch per way).
#[inline(always)]
pub(super) fn any_hint<const W: usize>(hints: &[u32; W], hint: u32) -> bool {
    hints
        .iter()
        .fold(0u32, |seen, &h| seen | u32::from(h == hint))
        != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_back_with_their_hints() {
        let want: Vec<u64> = vec![u64::MAX, 0x1_0000_0005, 5, u64::MAX];
        let bytes = postcard::to_allocvec(&want).expect("serialises");
        let mut back: Tags = postcard::from_bytes(&bytes).expect("deserialises");
        assert_eq!(back.restored(), &want[..]);
        assert_eq!(back.hints::<4>(0), Some(&[u32::MAX, 5, 5, u32::MAX]));
        assert_eq!(back.hints::<4>(1), None);
        back.set(0, 7);
        back.set(9, 7); // out of range: nothing
        assert_eq!(back.hint_range(0, 2), Some(&[7, 5][..]));
        assert_eq!(back.len(), 4);
        assert!(any_hint(&[1, 2, 3, 4], 4));
        assert!(!any_hint(&[1, 2, 3, 4], 5));
    }
}
