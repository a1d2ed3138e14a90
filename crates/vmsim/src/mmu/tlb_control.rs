//! The TLB operations the operating system asks of the hardware.
//!
//! Defined here, next to the MMU that implements them, and used by the
//! kernel: the kernel depends on the MMU's interface, the MMU knows nothing
//! of the kernel.

use crate::addr::Asid;
use crate::paging::Flush;

/// The TLB operations the kernel needs from the hardware.
///
/// Implemented by the [`Mmu`](super::Mmu); `()` stands for a machine
/// without a TLB (every translation walks), where there is nothing to
/// invalidate.
pub trait TlbControl {
    /// Invalidates the translation of one page (invlpg / sfence.vma with an address).
    fn invalidate_page(&mut self, asid: Asid, flush: Flush);
    /// [`TlbControl::invalidate_page`] for a page whose translation the
    /// caller knows was not filled since its last invalidation (its
    /// accessed bit is clear, and every clearing of it was followed by an
    /// invalidation): the same outcome, and a hardware model may skip the
    /// search. By default the full invalidation.
    fn invalidate_unfilled_page(&mut self, asid: Asid, flush: Flush) {
        self.invalidate_page(asid, flush);
    }
    /// Invalidates pages one after the other, each as
    /// [`TlbControl::invalidate_page`] (or, marked `true`,
    /// [`TlbControl::invalidate_unfilled_page`]) would: the same outcome, and
    /// a hardware model may do the work together.
    fn invalidate_pages(&mut self, pages: &[(Asid, Flush, bool)]) {
        for &(asid, flush, unfilled) in pages {
            if unfilled {
                self.invalidate_unfilled_page(asid, flush);
            } else {
                self.invalidate_page(asid, flush);
            }
        }
    }
    /// Invalidates every non-global translation of one ASID.
    fn invalidate_asid(&mut self, asid: Asid);
}

impl TlbControl for () {
    fn invalidate_page(&mut self, _asid: Asid, flush: Flush) {
        flush.ignore();
    }
    fn invalidate_asid(&mut self, _asid: Asid) {}
}
