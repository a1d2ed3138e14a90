//! S3-FIFO (Yang et al., SOSP 2023): a small FIFO (10% of frames) that
//! filters one-hit wonders, a main FIFO with a 2-bit CLOCK counter, and a
//! ghost FIFO (90% of frames) of pages recently evicted from the small queue.
//!
//! Follows libCacheSim's `S3FIFO` (not the original `S3FIFOv0`): a page
//! leaves the small queue for main only if referenced at least twice there
//! (`move-to-main-threshold=2`); before the first eviction, pages that find
//! the small queue full go straight to main; a ghost hit inserts into main.
//! It counts hits (0..=3), so it must see every access: an oracle here.

use super::{AccessBits, IdLists, Note, NoteValue, Policy, RefTime, nothing_resident};

const SMALL: usize = 0;
const MAIN: usize = 1;
const GHOST: usize = 2;

/// Small share of the frames, as libCacheSim (`small-size-ratio`).
const SMALL_RATIO: f64 = 0.10;
/// Ghost entries per frame, as libCacheSim (`ghost-size-ratio`).
const GHOST_RATIO: f64 = 0.90;
/// References in the small queue needed to move to main.
const MOVE_TO_MAIN: u8 = 2;

/// S3-FIFO over `frames` frames.
#[derive(Debug, Clone)]
pub struct S3Fifo {
    l: IdLists<3>,
    freq: Vec<u8>,
    small_cap: usize,
    main_cap: usize,
    ghost_cap: usize,
    has_evicted: bool,
    ghost_hit: Option<u32>,
}

impl S3Fifo {
    /// S3-FIFO for `frames` frames and ids `0..n_ids`.
    ///
    /// The small queue gets `floor(0.1 * frames)` frames but at least one
    /// (libCacheSim caches nothing below 10 frames; we differ on purpose so
    /// that small teaching examples work), main gets the rest.
    #[must_use]
    pub fn new(n_ids: usize, frames: usize) -> Self {
        let small_cap = ((frames as f64 * SMALL_RATIO) as usize).max(1);
        Self {
            l: IdLists::new(n_ids),
            freq: vec![0; n_ids],
            small_cap,
            main_cap: frames.saturating_sub(small_cap),
            ghost_cap: (frames as f64 * GHOST_RATIO) as usize,
            has_evicted: false,
            ghost_hit: None,
        }
    }

    fn remember_ghost(&mut self, id: u32) {
        if self.ghost_cap == 0 {
            return;
        }
        while self.l.len(GHOST) >= self.ghost_cap {
            self.l.pop_back(GHOST);
        }
        self.l.push_front(GHOST, id);
    }

    fn evict_small(&mut self) -> Option<u32> {
        while let Some(id) = self.l.pop_back(SMALL) {
            if self.freq[id as usize] >= MOVE_TO_MAIN {
                self.freq[id as usize] = 0;
                self.l.push_front(MAIN, id);
            } else {
                self.remember_ghost(id);
                return Some(id);
            }
        }
        None
    }

    fn evict_main(&mut self) -> Option<u32> {
        while let Some(id) = self.l.back(MAIN) {
            let f = &mut self.freq[id as usize];
            if *f >= 1 {
                *f = (*f).min(3) - 1;
                self.l.move_to_front(MAIN, id);
            } else {
                self.l.remove(id);
                return Some(id);
            }
        }
        None
    }
}

impl Policy for S3Fifo {
    const SEES_EVERY_ACCESS: bool = true;

    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        let f = &mut self.freq[id as usize];
        *f = f.saturating_add(1);
    }

    fn on_insert<B: AccessBits>(&mut self, id: u32, _at: RefTime, _bits: &mut B) {
        let ghost_hit = self.ghost_hit.take() == Some(id)
            || (self.l.contains(GHOST, id) && self.l.remove(id).is_some());
        self.freq[id as usize] = 0;
        if ghost_hit || (!self.has_evicted && self.l.len(SMALL) >= self.small_cap) {
            self.l.push_front(MAIN, id);
        } else {
            self.l.push_front(SMALL, id);
        }
    }

    fn victim<B: AccessBits>(&mut self, incoming: u32, _bits: &mut B) -> u32 {
        if self.l.contains(GHOST, incoming) {
            self.l.remove(incoming);
            self.ghost_hit = Some(incoming);
        }
        self.has_evicted = true;
        for _ in 0..3 {
            let v = if self.l.len(MAIN) > self.main_cap || self.l.is_empty(SMALL) {
                self.evict_main()
            } else {
                self.evict_small()
            };
            if let Some(v) = v {
                return v;
            }
        }
        nothing_resident()
    }

    fn on_remove(&mut self, id: u32) {
        if matches!(self.l.list_of(id), Some(SMALL | MAIN)) {
            self.l.remove(id);
        }
    }

    /// The small queue oldest first, then main oldest first.
    fn resident(&self, out: &mut Vec<u32>) {
        self.l.collect_oldest_first(SMALL, out);
        self.l.collect_oldest_first(MAIN, out);
    }

    fn note(&self, id: u32) -> Note {
        Note {
            list: match self.l.list_of(id) {
                Some(SMALL) => Some("small"),
                Some(MAIN) => Some("main"),
                _ => None,
            },
            value: Some(("freq", NoteValue::Count(u64::from(self.freq[id as usize])))),
        }
    }
}
