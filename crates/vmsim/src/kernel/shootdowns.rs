//! The TLB invalidations of one reclaim, gathered and made together.
//!
//! Why: a swap-heavy run's reclaim clears the accessed bit of a few pages
//! and evicts one for every fault, and each of those invalidates a page
//! (an x86 `invlpg`): the page-out daemon's run of some sixty evictions
//! made about two hundred separate searches of every TLB array, each
//! paying for the arrays that are empty and for a flush of the walk
//! caches that the first one had already emptied. Nothing translates
//! while the kernel reclaims, so the invalidations can wait until the
//! reclaim ends and be made in one [`TlbControl::invalidate_pages`]: the
//! same pages in the same order, the same outcome.

use crate::addr::Asid;
use crate::paging::Flush;

use super::TlbControl;

/// A [`TlbControl`] that holds page invalidations until [`Shootdowns::finish`]
/// (an ASID flush first makes the ones held, so the order is kept).
pub(super) struct Shootdowns<'t, T: TlbControl> {
    tlb: &'t mut T,
    pages: Vec<(Asid, Flush, bool)>,
}

impl<'t, T: TlbControl> Shootdowns<'t, T> {
    /// Gathers in front of `tlb`, into `pages` (an empty list whose memory
    /// is reused: no allocation per reclaim).
    pub(super) fn new(tlb: &'t mut T, mut pages: Vec<(Asid, Flush, bool)>) -> Self {
        pages.clear();
        Self { tlb, pages }
    }

    /// Makes the invalidations held, in order.
    fn flush(&mut self) {
        if !self.pages.is_empty() {
            self.tlb.invalidate_pages(&self.pages);
            self.pages.clear();
        }
    }

    /// Makes the invalidations held and gives the list back, empty.
    pub(super) fn finish(mut self) -> Vec<(Asid, Flush, bool)> {
        self.flush();
        std::mem::take(&mut self.pages)
    }
}

impl<T: TlbControl> TlbControl for Shootdowns<'_, T> {
    // In line: a push is a few instructions, and the scan holds one for
    // each page whose accessed bit it clears (about 1.2M calls of about
    // 22 instructions, most of them the call's, in a swap-heavy run).
    #[inline(always)]
    fn invalidate_page(&mut self, asid: Asid, flush: Flush) {
        self.pages.push((asid, flush, false));
    }

    #[inline(always)]
    fn invalidate_unfilled_page(&mut self, asid: Asid, flush: Flush) {
        self.pages.push((asid, flush, true));
    }

    fn invalidate_pages(&mut self, pages: &[(Asid, Flush, bool)]) {
        self.pages.extend_from_slice(pages);
    }

    fn invalidate_asid(&mut self, asid: Asid) {
        self.flush();
        self.tlb.invalidate_asid(asid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{PageSize, VirtAddr};

    /// Records what reaches the TLB.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl TlbControl for Log {
        fn invalidate_page(&mut self, asid: Asid, flush: Flush) {
            self.0.push(format!(
                "page {} {:#x}",
                asid.as_u16(),
                flush.page().as_u64()
            ));
        }
        fn invalidate_unfilled_page(&mut self, asid: Asid, flush: Flush) {
            self.0.push(format!(
                "unfilled {} {:#x}",
                asid.as_u16(),
                flush.page().as_u64()
            ));
        }
        fn invalidate_asid(&mut self, asid: Asid) {
            self.0.push(format!("asid {}", asid.as_u16()));
        }
    }

    #[test]
    fn held_until_finish_or_an_asid_flush_in_order() {
        let f = |a: u64| Flush::new(VirtAddr::new(a), PageSize::SIZE_4K);
        let mut log = Log::default();
        let mut s = Shootdowns::new(&mut log, vec![(Asid::new(9), f(0), false)]);
        s.invalidate_page(Asid::new(1), f(0x1000));
        s.invalidate_unfilled_page(Asid::new(1), f(0x2000));
        s.invalidate_asid(Asid::new(2));
        s.invalidate_page(Asid::new(3), f(0x3000));
        let list = s.finish();
        assert!(list.is_empty());
        assert_eq!(
            log.0,
            [
                "page 1 0x1000",
                "unfilled 1 0x2000",
                "asid 2",
                "page 3 0x3000"
            ]
        );
    }
}
