//! The simplest frame allocator: a bitmap searched first-fit.

use crate::addr::{PageSize, Pfn};

use super::FrameAllocator;

/// A first-fit allocator over a bitmap of frames `[first, first + count)`.
///
/// Good enough for building page tables by hand (memory images, `explain`);
/// the kernel uses the buddy allocator.
#[derive(Debug, Clone)]
pub struct FirstFit {
    frame_size: PageSize,
    first: u64,
    used: Vec<bool>,
    free: u64,
    hint: usize,
}

impl FirstFit {
    /// Manages `count` frames of `frame_size` starting at frame `first`.
    #[must_use]
    pub fn new(frame_size: PageSize, first: Pfn, count: u64) -> Self {
        Self {
            frame_size,
            first: first.as_u64(),
            used: vec![false; count as usize],
            free: count,
            hint: 0,
        }
    }

    /// Marks a frame as used (it holds something put there before this
    /// allocator existed, such as a table in a loaded memory image).
    /// Returns false if it was already used or is not managed here.
    pub fn reserve(&mut self, pfn: Pfn) -> bool {
        let Some(i) = pfn.as_u64().checked_sub(self.first) else {
            return false;
        };
        match self.used.get_mut(i as usize) {
            Some(u) if !*u => {
                *u = true;
                self.free -= 1;
                true
            }
            _ => false,
        }
    }

    /// Whether `pfn` is currently allocated.
    #[must_use]
    pub fn is_used(&self, pfn: Pfn) -> bool {
        pfn.as_u64()
            .checked_sub(self.first)
            .and_then(|i| self.used.get(i as usize).copied())
            .unwrap_or(false)
    }
}

impl FrameAllocator for FirstFit {
    fn frame_size(&self) -> PageSize {
        self.frame_size
    }

    fn total_frames(&self) -> u64 {
        self.used.len() as u64
    }

    fn free_frames(&self) -> u64 {
        self.free
    }

    fn alloc_order(&mut self, order: u32) -> Option<Pfn> {
        let run = 1usize.checked_shl(order)?;
        if (self.free as usize) < run {
            return None;
        }
        let start = if order == 0 { self.hint } else { 0 };
        // Runs are aligned in absolute frame numbers.
        let align = |i: usize| {
            let abs = self.first as usize + i;
            abs.next_multiple_of(run) - self.first as usize
        };
        let mut i = align(start);
        while i + run <= self.used.len() {
            match self.used[i..i + run].iter().rposition(|&u| u) {
                None => {
                    self.used[i..i + run].fill(true);
                    self.free -= run as u64;
                    if order == 0 {
                        self.hint = i + 1;
                    }
                    return Some(Pfn::new(self.first + i as u64));
                }
                Some(k) => i = align(i + k + 1),
            }
        }
        if order == 0 && start != 0 {
            self.hint = 0;
            return self.alloc_order(0);
        }
        None
    }

    fn free_order(&mut self, pfn: Pfn, order: u32) {
        let i = (pfn.as_u64() - self.first) as usize;
        let run = 1usize << order;
        assert!(
            self.used[i..i + run].iter().all(|&u| u),
            "freeing frame {pfn} which is not allocated"
        );
        self.used[i..i + run].fill(false);
        self.free += run as u64;
        self.hint = self.hint.min(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_all_then_none() {
        let mut a = FirstFit::new(PageSize::SIZE_4K, Pfn::new(0), 4);
        let got: Vec<_> = (0..4).filter_map(|_| a.alloc()).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(a.alloc(), None);
        a.free(got[2]);
        assert_eq!(a.alloc(), Some(got[2]));
    }

    #[test]
    fn aligned_runs() {
        let mut a = FirstFit::new(PageSize::SIZE_4K, Pfn::new(1), 16);
        let one = a.alloc().expect("frame");
        assert_eq!(one, Pfn::new(1));
        let run = a.alloc_order(2).expect("run");
        assert_eq!(run.as_u64() % 4, 0);
        assert_eq!(a.free_frames(), 11);
        a.free_order(run, 2);
        assert_eq!(a.free_frames(), 15);
    }
}
