//! A Linux-style pair of LRU lists: active and inactive, each aged by
//! second chance on the accessed bit, with refault tracking (after
//! `mm/vmscan.c` and `mm/workingset.c`). An OS can run it.
//!
//! - A faulted page enters the inactive list (front), unless it is a
//!   refault whose *refault distance* (evictions and activations since it
//!   was evicted) is at most the size of the active list: then it was part
//!   of the working set and goes straight to the active list.
//! - Reclaim keeps the inactive list at least as long as the active list by
//!   deactivating from the active tail (a page with A set is cleared and
//!   rotated instead: second chance).
//! - At the inactive tail: A clear -> evict (remembering the eviction
//!   counter as the page's shadow entry); A set and the software
//!   `referenced` flag set -> activate; A set only -> set `referenced` and
//!   rotate (two references are needed to be activated, as `PG_referenced`).

use super::{AccessBits, IdLists, Note, NoteValue, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

const ACTIVE: usize = 0;
const INACTIVE: usize = 1;

/// Active/inactive lists with second chance and refault tracking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Linux {
    l: IdLists<2>,
    #[serde(with = "crate::serde_sparse")]
    referenced: Vec<bool>,
    /// Eviction counter at eviction + 1, 0 for no shadow entry.
    #[serde(with = "crate::serde_sparse")]
    shadow: Vec<u64>,
    age: u64,
}

impl Linux {
    /// The two-list policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize) -> Self {
        Self {
            l: IdLists::new(n_ids),
            referenced: vec![false; n_ids],
            shadow: vec![0; n_ids],
            age: 0,
        }
    }

    fn activate(&mut self, id: u32) {
        self.referenced[id as usize] = false;
        self.l.move_to_front(ACTIVE, id);
        self.age += 1;
    }
}

impl Policy for Linux {
    const SEES_EVERY_ACCESS: bool = false;

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        let s = std::mem::take(&mut self.shadow[id as usize]);
        self.referenced[id as usize] = false;
        if s != 0 && self.age - (s - 1) <= self.l.len(ACTIVE) as u64 {
            self.l.push_front(ACTIVE, id);
            self.age += 1;
        } else {
            self.l.push_front(INACTIVE, id);
        }
    }

    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        loop {
            while self.l.len(INACTIVE) < self.l.len(ACTIVE) {
                let Some(id) = self.l.back(ACTIVE) else { break };
                if bits.test_and_clear_accessed(id) {
                    self.l.move_to_front(ACTIVE, id);
                } else {
                    self.referenced[id as usize] = false;
                    self.l.move_to_front(INACTIVE, id);
                }
            }
            let Some(id) = self.l.back(INACTIVE) else {
                nothing_resident()
            };
            if bits.test_and_clear_accessed(id) {
                if self.referenced[id as usize] {
                    self.activate(id);
                } else {
                    self.referenced[id as usize] = true;
                    self.l.move_to_front(INACTIVE, id);
                }
            } else {
                self.l.remove(id);
                self.referenced[id as usize] = false;
                self.shadow[id as usize] = self.age + 1;
                self.age += 1;
                return id;
            }
        }
    }

    fn on_remove(&mut self, id: u32) {
        self.l.remove(id);
    }

    /// The inactive list from its tail (next candidate first), then the
    /// active list from its tail.
    fn resident(&self, out: &mut Vec<u32>) {
        self.l.collect_oldest_first(INACTIVE, out);
        self.l.collect_oldest_first(ACTIVE, out);
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: match self.l.list_of(id) {
                Some(ACTIVE) => Some("active"),
                Some(INACTIVE) => Some("inactive"),
                _ => None,
            },
            value: Some(("referenced", NoteValue::Flag(self.referenced[id as usize]))),
        }
    }
}

impl Linux {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.l.check_restored(n_ids)?;
        if self.referenced.len() != n_ids || self.shadow.len() != n_ids {
            return Err(format!("per-id arrays are not of {n_ids} ids"));
        }
        // A refault subtracts its shadow (the age at eviction, plus one,
        // made before the age moves on) from the age: a later one
        // underflowed; an age near 2^64 overflowed at the next activation.
        if self.age > 1 << 56 {
            return Err(format!("the age {} is beyond any run", self.age));
        }
        if let Some(id) = self.shadow.iter().position(|&s| s > self.age) {
            return Err(format!(
                "page id {id}'s shadow entry {} is later than the age {}",
                self.shadow[id], self.age
            ));
        }
        Ok(())
    }

    /// Test hook: the shadow entries and the age (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_shadow(&mut self) -> (&mut Vec<u64>, &mut u64) {
        (&mut self.shadow, &mut self.age)
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.l.list_of(id).is_some()
    }
}
