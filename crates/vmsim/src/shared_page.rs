//! A 4 KiB page held read-only by reference count, handed between the swap
//! cache and physical memory without a copy.
//!
//! Why: in a swap-heavy run most of the time went into moving pages between
//! frames and the swap cache (a copy out at each write-back, a copy back at
//! each swap-in, and a zero scan of every page coming back). With a
//! [`SharedPage`] a swap-in makes the frame refer to the cache entry's
//! buffer; the frame gets its own copy only before its first write (copy on
//! first write, inside [`PhysMem`](crate::phys::PhysMem)'s store path), and
//! a clean drop of a page never written since simply lets go of the buffer.
//! That copy is itself a reference-counted buffer with one holder, written
//! in place, so a written page's swap-out hands it to the cache as it is
//! (one copy per round trip, not two).
//! A page that is all zero is no buffer at all ([`SharedPage::Zero`]): a
//! never-written frame goes out and comes back without a byte moved.
//!
//! The buffer is never written while shared (nobody holds it mutably:
//! [`Arc`] hands out `&` only), so every holder reads the same bytes; the
//! swap cache reuses a buffer only once it is the last holder.

use std::sync::Arc;

/// Bytes of a shared page: the sparse memory's chunk size.
pub const SHARED_PAGE_BYTES: usize = crate::phys::CHUNK_BYTES;

/// A page's bytes, shared by reference count.
pub type SharedChunk = Arc<[u8; SHARED_PAGE_BYTES]>;

/// All zero, for [`SharedPage::bytes`] of [`SharedPage::Zero`].
static ZERO_PAGE: [u8; SHARED_PAGE_BYTES] = [0; SHARED_PAGE_BYTES];

/// One page's contents without a copy: all zero, or a shared buffer that
/// holds at least one non-zero byte (so memory stores a
/// [`SharedPage::Bytes`] page as a stored chunk exactly when a copy of its
/// bytes would have stored one).
#[derive(Debug, Clone)]
pub enum SharedPage {
    /// Every byte is zero.
    Zero,
    /// The page's bytes, not all zero.
    Bytes(NonZeroChunk),
}

/// A shared buffer with at least one non-zero byte. Only
/// [`SharedPage::new`] (which looks) and this crate (where the swap cache
/// looked when the page came in) make one, so a [`SharedPage::Bytes`] can
/// be trusted not to be a zero page in disguise. (Memory hands out a
/// written page's buffer through [`SharedPage::new`]: stores may have
/// zeroed it.)
#[derive(Debug, Clone)]
pub struct NonZeroChunk(pub(crate) SharedChunk);

impl NonZeroChunk {
    /// The buffer.
    #[must_use]
    pub fn get(&self) -> &SharedChunk {
        &self.0
    }
}

impl SharedPage {
    /// `chunk` as a page: [`SharedPage::Zero`] if every byte is zero.
    #[must_use]
    pub fn new(chunk: SharedChunk) -> Self {
        if crate::memory::all_zero(&chunk[..]) {
            Self::Zero
        } else {
            Self::Bytes(NonZeroChunk(chunk))
        }
    }

    /// `chunk` as a page, its bytes known not to be all zero (the swap
    /// cache looked when the page came in).
    pub(crate) fn nonzero(chunk: SharedChunk) -> Self {
        debug_assert!(!crate::memory::all_zero(&chunk[..]));
        Self::Bytes(NonZeroChunk(chunk))
    }

    /// The page's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8; SHARED_PAGE_BYTES] {
        match self {
            Self::Zero => &ZERO_PAGE,
            Self::Bytes(c) => &c.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_zero_buffer_is_the_zero_page() {
        let z = SharedPage::new(Arc::new([0; SHARED_PAGE_BYTES]));
        assert!(matches!(z, SharedPage::Zero));
        assert!(z.bytes().iter().all(|&b| b == 0));
        let mut one = [0; SHARED_PAGE_BYTES];
        one[SHARED_PAGE_BYTES - 1] = 1;
        let p = SharedPage::new(Arc::new(one));
        assert!(matches!(p, SharedPage::Bytes(_)));
        assert_eq!(p.bytes()[SHARED_PAGE_BYTES - 1], 1);
    }
}
