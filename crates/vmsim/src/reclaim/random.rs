//! RAND: evict a resident page chosen uniformly at random, from a seeded
//! generator so runs repeat bit for bit.

use super::{AccessBits, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// Uniform random replacement (SplitMix64, seeded). Sees only faults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Random {
    ids: Vec<u32>,
    #[serde(with = "crate::serde_sparse")]
    pos: Vec<u32>,
    state: u64,
}

impl Random {
    /// A random policy for ids `0..n_ids`, seeded with `seed`.
    #[must_use]
    pub fn new(n_ids: usize, seed: u64) -> Self {
        Self {
            ids: Vec::new(),
            pos: vec![u32::MAX; n_ids],
            state: seed,
        }
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[inline]
    fn take(&mut self, idx: usize) -> u32 {
        let id = self.ids.swap_remove(idx);
        if let Some(&moved) = self.ids.get(idx) {
            self.pos[moved as usize] = idx as u32;
        }
        self.pos[id as usize] = u32::MAX;
        id
    }
}

impl Policy for Random {
    const SEES_EVERY_ACCESS: bool = false;

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        self.pos[id as usize] = self.ids.len() as u32;
        self.ids.push(id);
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, _bits: &mut B) -> u32 {
        if self.ids.is_empty() {
            nothing_resident();
        }
        // Lemire's multiply-shift: an unbiased-enough index without division.
        let idx = ((u128::from(self.next_u64()) * self.ids.len() as u128) >> 64) as usize;
        self.take(idx)
    }

    fn on_remove(&mut self, id: u32) {
        let p = self.pos[id as usize];
        if p != u32::MAX {
            self.take(p as usize);
        }
    }

    /// In slot order (no meaning beyond being deterministic).
    fn resident(&self, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.ids);
    }
}

impl Random {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        if self.pos.len() != n_ids || self.ids.len() > n_ids {
            return Err(format!("per-id arrays are not of {n_ids} ids"));
        }
        for (i, &id) in self.ids.iter().enumerate() {
            if self.pos.get(id as usize) != Some(&(i as u32)) {
                return Err(format!("entry {i} (id {id}) is not indexed"));
            }
        }
        let indexed = self.pos.iter().filter(|&&p| p != u32::MAX).count();
        if indexed != self.ids.len() {
            return Err(format!("{indexed} ids indexed but {} held", self.ids.len()));
        }
        Ok(())
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.pos[id as usize] != u32::MAX
    }
}
