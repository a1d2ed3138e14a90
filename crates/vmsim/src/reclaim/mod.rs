//! Page replacement: which resident page to evict when memory is full.
//!
//! This module owns the replacement policies ([`Policy`], one file per
//! policy), the view of the hardware's accessed and dirty bits a policy may
//! use ([`AccessBits`]), the catalogue of policies ([`PolicyKind`]) and the
//! policy lab ([`lab`]): reference strings without TLB or page tables, for
//! teaching and for comparing policies. It does not touch page tables, the
//! TLB, swap or frames: in the full system the kernel owns those and calls a
//! policy through the same trait.
//!
//! # Keys
//! A policy works on dense `u32` ids (`0..n_ids`, `n_ids` fixed at
//! construction): per-page metadata lives in `Vec`s indexed by id, never in
//! hash maps, and every operation is O(1) or O(log n) (amortised where a
//! clock hand sweeps: each step of a hand clears a bit that a reference set).
//! The lab maps page numbers to ids once, up front. Ghost entries (ARC, LIRS,
//! 2Q, CLOCK-Pro, S3-FIFO, the refault distances of `linux`) are keyed by id
//! too, so ids must name *pages* (not frames) for ghosts to mean anything.
//!
//! # What a policy may see
//! A policy an operating system could run ([`Policy::SEES_EVERY_ACCESS`] is
//! false) decides only from what an OS sees: the faults ([`Policy::on_insert`],
//! [`Policy::victim`]), the accessed and dirty bits ([`AccessBits`]) and a
//! periodic timer ([`Policy::on_tick`]). Its [`Policy::on_hit`] is never
//! called, in the lab or in the full system. Policies that need to see every
//! reference (exact LRU, LFU, ARC, LIRS, 2Q, MRU, S3-FIFO's frequency
//! counters) and those that need the future (OPT, UNOPT) are *oracles*: fine
//! for studying traces, impossible for a real kernel with hardware-managed TLBs.

mod aging;
mod arc;
mod bits;
mod clock;
mod clock_pro;
mod fifo;
mod heap;
mod kind;
pub mod lab;
mod lfu;
mod linux;
mod lirs;
mod lists;
mod lru;
mod nru;
mod opt;
mod random;
mod s3fifo;
mod sieve;
mod ties;
mod timeset;
mod two_q;

pub use aging::Aging;
pub use arc::Arc;
pub use bits::LabBits;
pub use clock::{Clock, ClockInsert};
pub use clock_pro::ClockPro;
pub use fifo::Fifo;
pub use kind::{PolicyConfig, PolicyKind, UnknownPolicy};
pub use lfu::Lfu;
pub use linux::Linux;
pub use lirs::Lirs;
pub use lists::IdLists;
pub use lru::{Lru, Mru, RecencyList};
pub use nru::Nru;
pub use opt::{NextUseHeap, Opt, Unopt};
pub use random::Random;
pub use s3fifo::S3Fifo;
pub use sieve::Sieve;
pub use ties::{Ties, UnknownTies};
pub use two_q::TwoQ;

use std::num::NonZeroU64;

/// "Never used again": the next-use time of a reference with no later use,
/// and the value passed to policies when the future is unknown.
pub const NEVER: u64 = u64::MAX;

/// The hardware's per-page accessed (A, "referenced") and dirty (D) bits as a
/// policy sees them.
///
/// Generic (never `dyn`) so the lab's bit array and the full system's PTEs
/// cost nothing to call. The hardware sets A on every access that goes
/// through a translation (including the access that restarts after a fault,
/// so a freshly loaded page has A set) and D on every write; only the OS
/// clears them.
///
/// Contract for the full system: `test_and_clear_accessed` must also
/// invalidate the page's TLB entry when the kernel is configured to (the
/// default). Otherwise the translation stays cached with A=1 in the TLB, the
/// hardware does not walk, and A is never set again while the entry lives:
/// the page looks unused to CLOCK-like policies however hot it is. The lab
/// models both behaviours ([`LabBits`], [`PolicyConfig::keep_tlb_entry_on_clear`]);
/// the full system must implement the option for real.
pub trait AccessBits {
    /// Reads and clears the accessed bit of `id`.
    fn test_and_clear_accessed(&mut self, id: u32) -> bool;
    /// Reads the accessed bit of `id` without clearing it.
    fn is_accessed(&self, id: u32) -> bool;
    /// Reads the dirty bit of `id` (set by writes, cleared when the page is
    /// written back or evicted).
    fn is_dirty(&self, id: u32) -> bool;
}

/// When a reference happens, and (for policies that need the future) when
/// the same page is referenced next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefTime {
    /// Index of this reference in the reference string (0-based).
    pub now: u64,
    /// Index of the next reference to the same page, or [`NEVER`]. Only
    /// meaningful when the caller computed it (see [`Policy::NEEDS_FUTURE`]);
    /// otherwise [`NEVER`].
    pub next_use: u64,
}

/// A page-replacement policy over dense ids.
///
/// The caller (the lab driver, later the kernel's reclaimer) keeps track of
/// which ids are resident and calls, for each reference to page `id`:
/// - resident: sets A (hardware), then `on_hit` only if
///   [`Self::SEES_EVERY_ACCESS`];
/// - not resident: if memory is full, `victim(id, ..)` (the policy picks a
///   resident id, forgets it as resident and returns it; the caller frees
///   it), then sets A and calls `on_insert(id, ..)`.
///
/// `on_remove` is for pages that leave memory for another reason (unmap,
/// process exit).
pub trait Policy {
    /// Whether the policy needs to be told of every hit (an oracle in a
    /// system where the TLB serves hits without the OS knowing).
    const SEES_EVERY_ACCESS: bool;
    /// Whether the policy needs [`RefTime::next_use`] (OPT, UNOPT).
    const NEEDS_FUTURE: bool = false;
    /// Whether a hit followed at once by another reference to the same page
    /// may be left out: the second reference's [`Self::on_hit`] alone
    /// leaves the state both would (LRU, MRU and ARC move the page to the
    /// same place either way; OPT and UNOPT re-key it by the later next
    /// use). The lab then calls `on_hit` once per run of references to one
    /// page when nobody looks at the state in between (totals and
    /// outcomes, not the step-through's contents). Not LIRS (a second
    /// reference promotes a HIR page) nor counting policies.
    const ABSORBS_HIT_BEFORE_REPEAT: bool = false;

    /// A reference to resident page `id` (only called if
    /// [`Self::SEES_EVERY_ACCESS`]).
    #[inline]
    fn on_hit<B: AccessBits>(&mut self, id: u32, at: RefTime, bits: &mut B) {
        let _ = (id, at, bits);
    }

    /// Page `id` has just been loaded (its A bit is set, as the restarted
    /// access set it).
    fn on_insert<B: AccessBits>(&mut self, id: u32, at: RefTime, bits: &mut B);

    /// Memory is full and page `incoming` (not resident) must be loaded:
    /// chooses a resident page, removes it from the policy's resident state
    /// (possibly remembering it as a ghost) and returns it.
    ///
    /// Calling this with no resident page is a bug of the caller and panics.
    fn victim<B: AccessBits>(&mut self, incoming: u32, bits: &mut B) -> u32;

    /// Resident page `id` left memory for a reason other than eviction.
    fn on_remove(&mut self, id: u32);

    /// How often (in references, or timer ticks in the full system)
    /// [`Self::on_tick`] wants to run; `None` for never.
    fn tick_interval(&self) -> Option<NonZeroU64> {
        None
    }

    /// The periodic timer (aging's shift, NRU's clearing of A bits).
    fn on_tick<B: AccessBits>(&mut self, bits: &mut B) {
        let _ = bits;
    }

    /// Appends the resident ids to `out` in the policy's natural order (the
    /// order its eviction scan would consider them, first candidate first).
    /// For display; O(resident).
    fn resident(&self, out: &mut Vec<u32>);

    /// For display (the lab's step-through): what the policy keeps about
    /// resident page `id` beyond its place in [`Self::resident`]'s order and
    /// the A/D bits: the list it is on, the number it ranks pages by. The
    /// default is nothing (FIFO, LRU, CLOCK: the order says it all).
    fn note(&self, id: u32) -> Note {
        let _ = id;
        Note::default()
    }
}

/// What a policy keeps about one resident page, for display ([`Policy::note`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Note {
    /// The list or queue the page is on, for policies with several (ARC
    /// `T1`/`T2`, 2Q `A1in`/`Am`, linux `active`/`inactive`, LIRS `LIR`/`HIR`,
    /// CLOCK-Pro `hot`/`cold`, S3-FIFO `small`/`main`).
    pub list: Option<&'static str>,
    /// The number the policy ranks the page by, with its name (aging's
    /// `counter`, LFU's `uses`, OPT's `next use`, S3-FIFO's `freq`).
    pub value: Option<(&'static str, NoteValue)>,
}

/// A value in a [`Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteValue {
    /// A count.
    Count(u64),
    /// A reference index (0-based), e.g. the next use.
    Time(u64),
    /// The page is never referenced again (OPT, UNOPT).
    Never,
    /// An 8-bit shift register (aging's counter), shown in binary.
    Bits8(u8),
    /// A yes/no flag (linux's referenced bit, CLOCK-Pro's test period).
    Flag(bool),
}

/// Panics with a message naming the broken invariant: a victim was requested
/// with nothing resident.
#[cold]
#[track_caller]
fn nothing_resident() -> ! {
    panic!("victim requested with no resident page (caller bug)")
}
