//! CLOCK (second chance): a FIFO ring whose hand skips pages with the
//! accessed bit set, clearing the bit as it passes.

use super::{AccessBits, IdLists, Policy, RefTime, nothing_resident};
use serde::{Deserialize, Serialize};

/// What a newly loaded page's accessed bit is when it joins the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ClockInsert {
    /// Left set, as the hardware leaves it: the access that faulted restarts
    /// and sets A, so the page gets its second chance on the first sweep.
    /// The textbook second-chance algorithm, and the default because it is
    /// what a kernel using the real A bit gets without extra work.
    #[default]
    Referenced,
    /// Cleared by the OS after loading: a new page must be referenced again
    /// to survive the hand. libCacheSim's `Clock` (init-freq 0) does this.
    Clear,
}

/// CLOCK / second chance over the hardware accessed bit; an OS can run it.
///
/// The ring is a list whose back is under the hand: a page with A set is
/// cleared and moved to the front (the hand advances past it); the first page
/// with A clear is the victim. New pages join just behind the hand (front).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clock {
    ring: IdLists<1>,
    insert: ClockInsert,
}

impl Clock {
    /// A CLOCK policy for ids `0..n_ids`.
    #[must_use]
    pub fn new(n_ids: usize, insert: ClockInsert) -> Self {
        Self {
            ring: IdLists::new(n_ids),
            insert,
        }
    }

    /// [`Policy::on_insert`] of `id` if it needs no accessed bits (the
    /// default [`ClockInsert::Referenced`]: the page joins the ring, its
    /// bit left as it is); whether it was done. `false`: nothing done, and
    /// `on_insert` is to be called.
    ///
    /// Why: the kernel builds its view of the page tables (`PteBits`,
    /// thirteen borrowed fields, about 35 instructions) for every page
    /// that joins the policy, a swap-in's each; this insert never looks at
    /// it. The test `insert_without_bits_is_on_insert` holds the two
    /// alike.
    #[inline]
    pub fn insert_without_bits(&mut self, id: u32) -> bool {
        if self.insert != ClockInsert::Referenced {
            return false;
        }
        self.ring.push_front(0, id);
        true
    }
}

impl Policy for Clock {
    const SEES_EVERY_ACCESS: bool = false;

    #[inline]
    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, bits: &mut B) {
        self.ring.push_front(0, id);
        if self.insert == ClockInsert::Clear {
            bits.test_and_clear_accessed(id);
        }
    }

    #[inline]
    fn victim<B: AccessBits>(&mut self, _incoming: u32, bits: &mut B) -> u32 {
        loop {
            let Some(id) = self.ring.back(0) else {
                nothing_resident()
            };
            if bits.test_and_clear_accessed(id) {
                self.ring.move_to_front(0, id);
            } else {
                self.ring.remove(id);
                return id;
            }
        }
    }

    fn on_remove(&mut self, id: u32) {
        self.ring.remove(id);
    }

    /// Starting under the hand, in the order the hand will visit.
    fn resident(&self, out: &mut Vec<u32>) {
        self.ring.collect_oldest_first(0, out);
    }
}

impl Clock {
    /// Checks a state decoded from a checkpoint (which may be forged)
    /// over ids `0..n_ids` before any of it is followed.
    pub(crate) fn check_restored(&self, n_ids: usize) -> Result<(), String> {
        self.ring.check_restored(n_ids)
    }

    /// The insert rule, against `fresh` (built from the configuration).
    pub(crate) fn check_settings(&self, fresh: &Self) -> Result<(), String> {
        if self.insert != fresh.insert {
            return Err(format!(
                "inserts {:?}, not the configuration's {:?}",
                self.insert, fresh.insert
            ));
        }
        Ok(())
    }

    /// Test hook: the insert rule (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_insert(&mut self) -> &mut ClockInsert {
        &mut self.insert
    }

    /// Whether resident page `id` is one this policy may evict (`id` in range).
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.ring.list_of(id).is_some()
    }
}

#[cfg(test)]
mod insert_tests {
    use super::*;
    use crate::reclaim::bits::LabBits;

    const AT: RefTime = RefTime {
        now: 0,
        next_use: crate::reclaim::NEVER,
    };

    /// Accessed bits that count every look.
    struct Counting {
        bits: LabBits,
        looks: u32,
    }

    impl AccessBits for Counting {
        fn test_and_clear_accessed(&mut self, id: u32) -> bool {
            self.looks += 1;
            self.bits.test_and_clear_accessed(id)
        }
        fn is_accessed(&self, id: u32) -> bool {
            self.bits.is_accessed(id)
        }
        fn is_dirty(&self, id: u32) -> bool {
            self.bits.is_dirty(id)
        }
    }

    /// `insert_without_bits` does what `on_insert` does with the default
    /// insert (the same ring, so the same victims and the same saved
    /// form after every step, and no look at a bit), and nothing with the
    /// cleared insert, which `on_insert` must serve. (Broken on purpose
    /// once: the page pushed to the back of the ring; this test failed.)
    #[test]
    fn insert_without_bits_is_on_insert() {
        const N: u32 = 64;
        let mut fast = Clock::new(N as usize, ClockInsert::Referenced);
        let mut slow = Clock::new(N as usize, ClockInsert::Referenced);
        let mut bits = Counting {
            bits: LabBits::new(N as usize, false),
            looks: 0,
        };
        let mut resident = vec![false; N as usize];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut inserts, mut victims) = (0, 0);
        for _ in 0..20_000 {
            let id = next(u64::from(N)) as u32;
            if !resident[id as usize] {
                bits.bits.load(id, next(2) == 0);
                let looks = bits.looks;
                assert!(fast.insert_without_bits(id));
                assert_eq!(bits.looks, looks, "the fast insert looked at a bit");
                slow.on_insert(id, AT, &mut bits);
                assert_eq!(bits.looks, looks, "the default insert looks at no bit");
                resident[id as usize] = true;
                inserts += 1;
            } else if next(3) == 0 {
                bits.bits.touch(id, false);
            } else if next(4) == 0 {
                // Both see the same bits: the slow one's clears are put
                // back for the fast one.
                let saved = bits.bits.clone();
                let v = slow.victim(0, &mut bits);
                bits.bits = saved;
                assert_eq!(fast.victim(0, &mut bits), v);
                resident[v as usize] = false;
                bits.bits.forget(v);
                victims += 1;
            }
            assert_eq!(
                serde_json::to_string(&fast).expect("json"),
                serde_json::to_string(&slow).expect("json")
            );
        }
        assert!(inserts > 500 && victims > 500, "{inserts} {victims}");
        let mut cleared = Clock::new(N as usize, ClockInsert::Clear);
        let before = serde_json::to_string(&cleared).expect("json");
        assert!(!cleared.insert_without_bits(3));
        assert_eq!(serde_json::to_string(&cleared).expect("json"), before);
    }
}
