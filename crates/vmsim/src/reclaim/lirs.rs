//! LIRS (Jiang and Zhang, SIGMETRICS 2002): Low Inter-reference Recency Set.
//!
//! Pages with a short reuse distance (LIR) hold most frames; the rest (HIR)
//! share a small queue Q of resident HIR pages, the eviction candidates. The
//! stack S orders recently referenced pages (LIR, resident HIR and
//! non-resident HIR ghosts) by recency; its bottom is always LIR (pruning).
//! An oracle: S is an exact recency stack.
//!
//! Parameters as libCacheSim's `LIRS`: HIR frames = max(1, 1% of frames);
//! S holds at most 2 x frames entries (the oldest non-resident ghosts are
//! dropped first).

use super::{AccessBits, IdLists, Note, Policy, RefTime, nothing_resident};

/// HIR share of the frames (libCacheSim's `hirs_ratio`).
const HIR_RATIO: f64 = 0.01;

/// LIRS over `frames` frames.
#[derive(Debug, Clone)]
pub struct Lirs {
    /// Stack S, front = top (most recent).
    s: IdLists<1>,
    /// Queue Q of resident HIR pages, back = next victim.
    q: IdLists<1>,
    /// Non-resident HIR pages still in S, back = oldest ghost.
    nh: IdLists<1>,
    lir: Vec<bool>,
    n_lir: usize,
    lir_cap: usize,
    s_cap: usize,
}

impl Lirs {
    /// LIRS for `frames` frames and ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, frames: usize) -> Self {
        let hir_cap = ((frames as f64 * HIR_RATIO) as usize).max(1);
        Self {
            s: IdLists::new(n_ids),
            q: IdLists::new(n_ids),
            nh: IdLists::new(n_ids),
            lir: vec![false; n_ids],
            n_lir: 0,
            lir_cap: frames.saturating_sub(hir_cap),
            s_cap: frames.saturating_mul(2),
        }
    }

    /// Removes HIR entries from the bottom of S until an LIR page is there.
    fn prune(&mut self) {
        while let Some(b) = self.s.back(0) {
            if self.lir[b as usize] {
                break;
            }
            self.s.remove(b);
            self.nh.remove(b);
        }
    }

    /// Turns `x` (at the top of S) into an LIR page; if the LIR set is full,
    /// the LIR page at the bottom of S becomes a resident HIR page in Q.
    fn promote(&mut self, x: u32) {
        self.lir[x as usize] = true;
        self.q.remove(x);
        self.nh.remove(x);
        self.n_lir += 1;
        if self.n_lir > self.lir_cap {
            // x is LIR, so pruning stops at an LIR page at the latest at x.
            self.prune();
            let Some(b) = self.s.back(0) else { return };
            debug_assert!(self.lir[b as usize]);
            self.s.remove(b);
            self.lir[b as usize] = false;
            self.n_lir -= 1;
            self.q.push_front(0, b);
            self.prune();
        }
    }

    /// Keeps S within its bound by dropping the oldest ghosts.
    fn limit_stack(&mut self) {
        while self.s.len(0) > self.s_cap {
            let Some(g) = self.nh.pop_back(0) else { break };
            self.s.remove(g);
        }
    }
}

impl Policy for Lirs {
    const SEES_EVERY_ACCESS: bool = true;

    fn on_hit<B: AccessBits>(&mut self, x: u32, _at: RefTime, _bits: &mut B) {
        let in_s = self.s.contains(0, x);
        self.s.move_to_front(0, x);
        if self.lir[x as usize] {
            self.prune();
        } else if in_s {
            self.promote(x);
        } else {
            self.q.move_to_front(0, x);
            self.limit_stack();
        }
    }

    fn on_insert<B: AccessBits>(&mut self, x: u32, _at: RefTime, _bits: &mut B) {
        let in_s = self.s.contains(0, x);
        self.s.move_to_front(0, x);
        if self.n_lir < self.lir_cap {
            self.lir[x as usize] = true;
            self.nh.remove(x);
            self.n_lir += 1;
        } else if in_s {
            self.promote(x);
        } else {
            self.lir[x as usize] = false;
            self.q.push_front(0, x);
        }
        self.limit_stack();
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        if let Some(y) = self.q.pop_back(0) {
            if self.s.contains(0, y) {
                self.nh.push_front(0, y);
            }
            return y;
        }
        // No resident HIR page (only with one frame): evict the LIR bottom.
        let Some(y) = self.s.back(0) else {
            nothing_resident()
        };
        self.s.remove(y);
        self.lir[y as usize] = false;
        self.n_lir -= 1;
        self.prune();
        y
    }

    fn on_remove(&mut self, x: u32) {
        if self.lir[x as usize] {
            self.lir[x as usize] = false;
            self.n_lir -= 1;
            self.s.remove(x);
            self.prune();
        } else if self.q.contains(0, x) {
            self.q.remove(x);
            self.s.remove(x);
        }
    }

    /// Q from its head (next victim first), then the LIR pages from the
    /// bottom of S.
    fn resident(&self, out: &mut Vec<u32>) {
        self.q.collect_oldest_first(0, out);
        let start = out.len();
        self.s.collect_oldest_first(0, out);
        let mut w = start;
        for r in start..out.len() {
            if self.lir[out[r] as usize] {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: Some(if self.lir[id as usize] { "LIR" } else { "HIR" }),
            value: None,
        }
    }
}
