//! CLOCK-Pro (Jiang, Chen and Zhang, USENIX ATC 2005): LIRS's idea on a
//! clock, using only the accessed bit. An OS can run it.
//!
//! One ring holds hot pages, resident cold pages and non-resident cold pages
//! still in their *test period* (ghosts, at most as many as frames). Three
//! hands move the same way round the ring:
//! - `hand_cold` looks for a resident cold page to evict: A clear -> evict
//!   (it stays as a ghost if in its test period); A set and in test -> the
//!   page turns hot (and the cold target `m_c` grows); A set otherwise -> a
//!   new test period. Either way A is cleared and the page moves to the head.
//! - `hand_hot` runs while there are more hot pages than `frames - m_c`:
//!   a hot page with A set is cleared and passed, the first with A clear
//!   turns cold; cold pages it passes end their test period (ghosts leave).
//! - `hand_test` runs while there are more ghosts than frames: it ends test
//!   periods (shrinking `m_c`) and removes ghosts.
//!
//! A fault on a ghost makes the page hot at once. New pages start cold, in
//! test, at the head, with A cleared. The head is just behind `hand_hot`.
//! `m_c` starts at 1 and stays within `1..=frames-1`. Hands are amortised
//! O(1) per reference: each step clears a bit, ends a test period or
//! removes a ghost, all caused by earlier references or faults (a pass
//! over pages with nothing to do is bounded by one turn of the ring).

use super::{AccessBits, IdLists, Note, NoteValue, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// CLOCK-Pro over `frames` frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockPro {
    ring: IdLists<1>,
    #[serde(with = "crate::serde_sparse")]
    hot: Vec<bool>,
    #[serde(with = "crate::serde_sparse")]
    resident: Vec<bool>,
    #[serde(with = "crate::serde_sparse")]
    test: Vec<bool>,
    hand_hot: Option<u32>,
    hand_cold: Option<u32>,
    hand_test: Option<u32>,
    n_hot: usize,
    n_ghost: usize,
    frames: usize,
    m_c: usize,
}

impl ClockPro {
    /// CLOCK-Pro for `frames` frames and ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, frames: usize) -> Self {
        Self {
            ring: IdLists::new(n_ids),
            hot: vec![false; n_ids],
            resident: vec![false; n_ids],
            test: vec![false; n_ids],
            hand_hot: None,
            hand_cold: None,
            hand_test: None,
            n_hot: 0,
            n_ghost: 0,
            frames,
            m_c: 1,
        }
    }

    fn max_cold(&self) -> usize {
        self.frames.saturating_sub(1).max(1)
    }

    /// The next position round the ring after `id`.
    #[inline]
    fn step(&self, id: u32) -> Option<u32> {
        self.ring.newer(id).or_else(|| self.ring.back(0))
    }

    /// Unlinks `id` from the ring, moving any hand on it forward.
    fn unlink(&mut self, id: u32) {
        let next = if self.ring.len(0) == 1 {
            None
        } else {
            self.step(id)
        };
        for h in [&mut self.hand_hot, &mut self.hand_cold, &mut self.hand_test] {
            if *h == Some(id) {
                *h = next;
            }
        }
        self.ring.remove(id);
    }

    /// Puts `id` (unlinked) at the head: just behind `hand_hot`.
    fn link_at_head(&mut self, id: u32) {
        match self.hand_hot {
            Some(h) => self.ring.insert_older_than(0, h, id),
            None => {
                self.ring.push_front(0, id);
                self.hand_hot = Some(id);
            }
        }
        if self.hand_cold.is_none() {
            self.hand_cold = Some(id);
        }
        if self.hand_test.is_none() {
            self.hand_test = Some(id);
        }
    }

    fn end_test(&mut self, id: u32) {
        if std::mem::replace(&mut self.test[id as usize], false) {
            self.m_c = self.m_c.saturating_sub(1).max(1);
        }
    }

    /// Demotes one hot page to cold (see the module docs).
    fn run_hand_hot<B: AccessBits>(&mut self, bits: &mut B) {
        let mut budget = 2 * self.ring.len(0) + 1;
        while let Some(id) = self.hand_hot {
            budget -= 1;
            if budget == 0 {
                return;
            }
            let next = self.step(id);
            if self.hot[id as usize] {
                if bits.test_and_clear_accessed(id) {
                    self.hand_hot = next;
                } else {
                    self.hot[id as usize] = false;
                    self.n_hot -= 1;
                    self.hand_hot = next;
                    return;
                }
            } else {
                self.end_test(id);
                if self.resident[id as usize] {
                    self.hand_hot = next;
                } else {
                    self.unlink(id);
                    self.n_ghost -= 1;
                }
            }
        }
    }

    /// Removes one ghost, ending the test periods it passes.
    fn run_hand_test(&mut self) {
        let mut budget = 2 * self.ring.len(0) + 1;
        while let Some(id) = self.hand_test {
            budget -= 1;
            if budget == 0 {
                return;
            }
            if self.hot[id as usize] {
                self.hand_test = self.step(id);
                continue;
            }
            self.end_test(id);
            if self.resident[id as usize] {
                self.hand_test = self.step(id);
            } else {
                self.unlink(id);
                self.n_ghost -= 1;
                return;
            }
        }
    }

    fn balance_hot<B: AccessBits>(&mut self, bits: &mut B) {
        while self.n_hot > 0 && self.n_hot > self.frames.saturating_sub(self.m_c) {
            let before = self.n_hot;
            self.run_hand_hot(bits);
            if self.n_hot == before {
                break;
            }
        }
    }
}

impl Policy for ClockPro {
    const SEES_EVERY_ACCESS: bool = false;

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        bits.test_and_clear_accessed(id);
        let i = id as usize;
        self.resident[i] = true;
        if self.ring.contains(0, id) {
            // A ghost in its test period: a short reuse distance.
            self.unlink(id);
            self.n_ghost -= 1;
            self.test[i] = false;
            self.hot[i] = true;
            self.n_hot += 1;
            self.m_c = (self.m_c + 1).min(self.max_cold());
            self.link_at_head(id);
            self.balance_hot(bits);
        } else {
            self.hot[i] = false;
            self.test[i] = true;
            self.link_at_head(id);
        }
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        let mut budget = 4 * self.ring.len(0) + 4;
        loop {
            budget -= 1;
            let Some(id) = self.hand_cold else {
                nothing_resident()
            };
            let i = id as usize;
            if budget == 0 {
                // Every resident page is hot: demote one and go on.
                self.run_hand_hot(bits);
                budget = 4 * self.ring.len(0) + 4;
            }
            if self.hot[i] || !self.resident[i] {
                self.hand_cold = self.step(id);
                continue;
            }
            if bits.test_and_clear_accessed(id) {
                if self.test[i] {
                    self.test[i] = false;
                    self.hot[i] = true;
                    self.n_hot += 1;
                    self.m_c = (self.m_c + 1).min(self.max_cold());
                } else {
                    self.test[i] = true;
                }
                self.unlink(id);
                self.link_at_head(id);
                self.balance_hot(bits);
                continue;
            }
            // Evict.
            self.resident[i] = false;
            if self.test[i] {
                self.hand_cold = self.step(id);
                self.n_ghost += 1;
                while self.n_ghost > self.frames {
                    let before = self.n_ghost;
                    self.run_hand_test();
                    if self.n_ghost == before {
                        break;
                    }
                }
            } else {
                self.unlink(id);
            }
            return id;
        }
    }

    fn on_remove(&mut self, id: u32) {
        let i = id as usize;
        if !self.resident[i] {
            return;
        }
        self.resident[i] = false;
        if self.hot[i] {
            self.hot[i] = false;
            self.n_hot -= 1;
        }
        self.test[i] = false;
        self.unlink(id);
    }

    /// Resident pages round the ring from `hand_cold`.
    fn resident(&self, out: &mut Vec<u32>) {
        let Some(start) = self.hand_cold else { return };
        let mut id = start;
        loop {
            if self.resident[id as usize] {
                out.push(id);
            }
            match self.step(id) {
                Some(n) if n != start => id = n,
                _ => break,
            }
        }
    }

    fn note(&self, id: u32) -> Note {
        let i = id as usize;
        Note {
            list: Some(if self.hot[i] { "hot" } else { "cold" }),
            value: (!self.hot[i]).then_some(("test", NoteValue::Flag(self.test[i]))),
        }
    }
}

impl ClockPro {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.ring.check_restored(n_ids)?;
        if self.hot.len() != n_ids || self.resident.len() != n_ids || self.test.len() != n_ids {
            return Err(format!("per-id arrays are not of {n_ids} ids"));
        }
        for (name, hand) in [
            ("hot", self.hand_hot),
            ("cold", self.hand_cold),
            ("test", self.hand_test),
        ] {
            if let Some(h) = hand
                && (h as usize >= n_ids || self.ring.list_of(h).is_none())
            {
                return Err(format!(
                    "the {name} hand is at id {h}, which is not in the ring"
                ));
            }
        }
        let in_ring = |i: &usize| self.ring.list_of(*i as u32).is_some();
        let hot = (0..n_ids).filter(in_ring).filter(|&i| self.hot[i]).count();
        let ghosts = (0..n_ids)
            .filter(in_ring)
            .filter(|&i| !self.resident[i])
            .count();
        if hot != self.n_hot || ghosts != self.n_ghost {
            return Err(format!(
                "the ring holds {hot} hot pages and {ghosts} ghosts but records {} and {}",
                self.n_hot, self.n_ghost
            ));
        }
        if self.frames == 0 || self.m_c == 0 || self.m_c > self.frames {
            return Err(format!(
                "cold target {} outside 1..={} frames",
                self.m_c, self.frames
            ));
        }
        Ok(())
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.ring.list_of(id).is_some() && self.resident[id as usize]
    }

    /// The frame count, against `fresh` (built from the configuration): it
    /// bounds the cold target and the ghosts kept.
    pub(crate) fn check_settings(&self, fresh: &Self) -> Result<(), String> {
        if self.frames != fresh.frames {
            return Err(format!(
                "{} frames, not the configuration's {}",
                self.frames, fresh.frames
            ));
        }
        Ok(())
    }

    /// Test hook: the frame count (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_frames(&mut self) -> &mut usize {
        &mut self.frames
    }
}
