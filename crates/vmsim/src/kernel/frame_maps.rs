//! One frame's reverse map: the (address space, virtual page) pairs that
//! map it, the one pair a frame nearly always has held in place.
//!
//! Why not a `Vec` per frame: the reclaim policy's scan reads the reverse
//! map of every frame it passes, and a `Vec` keeps its pair in a heap
//! block of its own, one more cache line (a miss: the scan visits
//! thousands of frames between two visits to one) after the frame's entry
//! in the table of reverse maps. Here a frame with one mapping (all of them
//! but pages shared by a fork) has its pair in that entry itself, which is
//! no larger than a `Vec` (24 bytes). Several pairs go to a boxed `Vec`
//! (rare: one more indirection then).
//!
//! It serializes as the `Vec` of its pairs did (a sequence), so checkpoints
//! are unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::process::SpaceId;

/// One mapping of a frame: its address space and virtual page address.
pub(super) type FrameMap = (SpaceId, u64);

/// The mappings of one frame (see the module documentation).
///
/// (`repr(u8)`: a tag byte of its own, read with one compare. Without it
/// the variant is folded into a `Vec`'s capacity word, and decoding it
/// took the scan ten instructions a frame. The `Vec` is boxed so that the
/// entry stays 24 bytes, as many as the `Vec` it replaced: an unboxed one
/// made it 32, and the scan then missed the cache more often.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum FrameMaps {
    /// No mapping.
    #[default]
    None,
    /// One mapping, in place.
    One(FrameMap),
    /// Any number (two or more, or fewer after removals). Boxed, against
    /// the lint, to keep the entry at 24 bytes (see the type's comment).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<FrameMap>>),
}

impl FrameMaps {
    /// The mappings, in the order they were added (as a `Vec`'s would be,
    /// removals aside: see [`FrameMaps::swap_remove`]).
    #[inline]
    pub(super) fn as_slice(&self) -> &[FrameMap] {
        match self {
            Self::None => &[],
            Self::One(m) => std::slice::from_ref(m),
            Self::Many(v) => v,
        }
    }

    /// The mapping, when there is exactly one (what the scan's fast path
    /// asks: one look at the variant in the common case).
    #[inline(always)]
    pub(super) fn sole(&self) -> Option<FrameMap> {
        if let Self::One(m) = self {
            return Some(*m);
        }
        self.sole_of_many()
    }

    /// [`FrameMaps::sole`] of no mapping or of the `Vec` (rare).
    #[cold]
    #[inline(never)]
    fn sole_of_many(&self) -> Option<FrameMap> {
        match self {
            Self::Many(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// The mappings, writable.
    #[inline]
    pub(super) fn as_mut_slice(&mut self) -> &mut [FrameMap] {
        match self {
            Self::None => &mut [],
            Self::One(m) => std::slice::from_mut(m),
            Self::Many(v) => v,
        }
    }

    /// Adds `m` after the others.
    #[inline]
    pub(super) fn push(&mut self, m: FrameMap) {
        match self {
            Self::None => *self = Self::One(m),
            Self::One(first) => *self = Self::Many(Box::new(vec![*first, m])),
            Self::Many(v) => v.push(m),
        }
    }

    /// Removes the first mapping equal to `m`, if any, the last taking its
    /// place: `position` then [`FrameMaps::swap_remove`]. A frame's one
    /// mapping in place (every page an exit unmaps but a fork's shared
    /// ones) is one compare, with no search loop: the loop's exit, on data
    /// that changes from frame to frame, was two mispredicted branches a
    /// call at the zipf row's exit.
    #[inline]
    pub(super) fn remove(&mut self, m: FrameMap) {
        match self {
            Self::One(x) => {
                if *x == m {
                    *self = Self::None;
                }
            }
            Self::None => {}
            Self::Many(_) => self.remove_of_many(m),
        }
    }

    /// [`FrameMaps::remove`] from the `Vec` (rare).
    #[cold]
    #[inline(never)]
    fn remove_of_many(&mut self, m: FrameMap) {
        if let Some(i) = self.as_slice().iter().position(|&x| x == m) {
            self.swap_remove(i);
        }
    }

    /// Removes the mapping at `i` (which must be one), the last taking its
    /// place, as `Vec::swap_remove` does.
    pub(super) fn swap_remove(&mut self, i: usize) -> FrameMap {
        match self {
            Self::None => panic!("swap_remove index {i} of no mappings"),
            Self::One(m) => {
                assert_eq!(i, 0, "swap_remove index {i} of one mapping");
                let m = *m;
                *self = Self::None;
                m
            }
            Self::Many(v) => v.swap_remove(i),
        }
    }

    /// Forgets every mapping (a `Vec`'s memory is kept for the next ones).
    #[inline]
    pub(super) fn clear(&mut self) {
        match self {
            Self::Many(v) => v.clear(),
            _ => *self = Self::None,
        }
    }
}

impl std::ops::Deref for FrameMaps {
    type Target = [FrameMap];

    #[inline]
    fn deref(&self) -> &[FrameMap] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for FrameMaps {
    #[inline]
    fn deref_mut(&mut self) -> &mut [FrameMap] {
        self.as_mut_slice()
    }
}

impl<'a> IntoIterator for &'a FrameMaps {
    type Item = &'a FrameMap;
    type IntoIter = std::slice::Iter<'a, FrameMap>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a mut FrameMaps {
    type Item = &'a mut FrameMap;
    type IntoIter = std::slice::IterMut<'a, FrameMap>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

impl Serialize for FrameMaps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FrameMaps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<FrameMap>::deserialize(d)?;
        Ok(match v.len() {
            0 => Self::None,
            1 => Self::One(v[0]),
            _ => Self::Many(Box::new(v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(i: u32) -> FrameMap {
        (SpaceId(i), u64::from(i) << 12)
    }

    /// Every operation leaves the same pairs, in the same order, as on a
    /// `Vec` (the representation it replaced), through one, two and more
    /// pairs and back; and the serialized form is the `Vec`'s.
    #[test]
    fn behaves_as_a_vec() {
        let mut f = FrameMaps::default();
        let mut v: Vec<FrameMap> = Vec::new();
        let steps: &[(bool, usize)] = &[
            (true, 1),
            (false, 0),
            (true, 2),
            (true, 3),
            (true, 4),
            (false, 0),
            (false, 1),
            (false, 0),
            (true, 5),
            (true, 6),
            (false, 1),
        ];
        for &(add, x) in steps {
            if add {
                f.push(m(x as u32));
                v.push(m(x as u32));
            } else {
                assert_eq!(f.swap_remove(x), v.swap_remove(x));
            }
            assert_eq!(f.as_slice(), v.as_slice());
            assert_eq!(f.len(), v.len());
            let sole = match v.as_slice() {
                &[m] => Some(m),
                _ => None,
            };
            assert_eq!(f.sole(), sole);
            assert_eq!(
                serde_json::to_string(&f).expect("ser"),
                serde_json::to_string(&v).expect("ser")
            );
            let back: FrameMaps =
                serde_json::from_str(&serde_json::to_string(&v).expect("ser")).expect("de");
            assert_eq!(back.as_slice(), v.as_slice());
        }
        f.clear();
        assert!(f.is_empty());
        f.push(m(7));
        assert_eq!(f.as_slice(), &[m(7)]);
        assert_eq!(f.sole(), Some(m(7)));
        let mut g = FrameMaps::default();
        g.push(m(7));
        assert_eq!(g, FrameMaps::One(m(7)), "one mapping is held in place");
        for e in &mut f {
            e.1 = 9;
        }
        assert_eq!(f.as_slice(), &[(SpaceId(7), 9)]);
    }

    /// `remove` (the reverse map's removal of one mapping) leaves what a
    /// `Vec`'s `position` and `swap_remove` leave, for a mapping that is
    /// there (first of two equal ones included) and one that is not, from
    /// no mapping, one in place and several; random runs of adds and removes.
    #[test]
    fn remove_is_position_then_swap_remove() {
        let mut rng = 0x9e37_79b9_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for _ in 0..200 {
            let mut f = FrameMaps::default();
            let mut v: Vec<FrameMap> = Vec::new();
            for _ in 0..40 {
                let x = m(next(5) as u32);
                if next(2) == 0 {
                    f.push(x);
                    v.push(x);
                } else {
                    f.remove(x);
                    if let Some(i) = v.iter().position(|&y| y == x) {
                        v.swap_remove(i);
                    }
                }
                assert_eq!(f.as_slice(), v.as_slice());
                assert_eq!(f.sole(), (v.len() == 1).then(|| v[0]));
            }
        }
        let mut one = FrameMaps::default();
        one.push(m(3));
        one.remove(m(4));
        assert_eq!(one, FrameMaps::One(m(3)), "another mapping stays");
        one.remove(m(3));
        assert_eq!(one, FrameMaps::None);
    }

    /// The entry is no larger than the `Vec` it replaced (why the `Vec` of
    /// several is boxed).
    #[test]
    fn as_small_as_a_vec() {
        assert!(size_of::<FrameMaps>() <= size_of::<Vec<FrameMap>>());
    }
}
