//! How a policy breaks a tie between pages it ranks equally: the open
//! choices of OPT, UNOPT, LFU and aging.
//!
//! OPT evicts the page used farthest in the future, but every page that is
//! never used again is equally far; UNOPT meets the same tie once only such
//! pages are left; LFU ties pages referenced equally often; aging ties pages
//! with equal counters. The choice never changes OPT's or UNOPT's miss count
//! (a page not used again is never missed again), but it changes which page
//! is evicted, which is what a hand-worked table shows; for LFU and aging it
//! can change the misses too. Textbooks and courses settle it differently,
//! so the lab lets the user say which:
//!
//! - `oldest`: the page referenced least recently (LRU among the tied);
//! - `newest`: the page referenced most recently;
//! - `first-loaded`: the page loaded first (FIFO among the tied);
//! - `last-loaded`: the page loaded last.
//!
//! Aging sees no individual references (it is a policy an OS can run), so
//! for it `oldest` is `first-loaded` and `newest` is `last-loaded`.
//!
//! Defaults ([`super::PolicyKind::default_ties`]), each the policy's
//! long-standing behaviour here: OPT `oldest` (among pages not needed again,
//! evict the one LRU would: the usual textbook reading, and what Belady's
//! stack-algorithm proofs assume); UNOPT `newest` (its mirror image: it keeps
//! the least recently used of the useless pages); LFU `oldest` (LRU among
//! equally frequent pages, the common "LFU with LRU tie-break");
//! aging `first-loaded` (FIFO among equal counters: the page that has had
//! the longest to earn references goes).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A tie-breaking rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ties {
    /// The page referenced least recently goes first.
    Oldest,
    /// The page referenced most recently goes first.
    Newest,
    /// The page loaded first goes first.
    FirstLoaded,
    /// The page loaded last goes first.
    LastLoaded,
}

/// Times (reference indices, load sequence numbers) stay below this, so
/// `SPAN - t` reverses their order and tie keys stay above every next use.
pub(crate) const SPAN: u64 = 1 << 62;

impl Ties {
    /// Every rule.
    pub const ALL: [Self; 4] = [
        Self::Oldest,
        Self::Newest,
        Self::FirstLoaded,
        Self::LastLoaded,
    ];

    /// The name used on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Oldest => "oldest",
            Self::Newest => "newest",
            Self::FirstLoaded => "first-loaded",
            Self::LastLoaded => "last-loaded",
        }
    }

    /// A rank among tied pages: the smaller goes first. `last_use` is the
    /// time of the page's latest reference, `loaded` when it was loaded.
    #[inline]
    #[must_use]
    pub(crate) const fn rank(self, last_use: u64, loaded: u64) -> u64 {
        match self {
            Self::Oldest => last_use,
            Self::Newest => SPAN - last_use,
            Self::FirstLoaded => loaded,
            Self::LastLoaded => SPAN - loaded,
        }
    }
}

impl fmt::Display for Ties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tie rule name that is not one of [`Ties::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown tie rule '{0}' (expected oldest, newest, first-loaded or last-loaded)")]
pub struct UnknownTies(pub String);

impl FromStr for Ties {
    type Err = UnknownTies;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| UnknownTies(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ranks_order_as_named() {
        for t in Ties::ALL {
            assert_eq!(t.name().parse::<Ties>(), Ok(t));
        }
        assert!("lru".parse::<Ties>().is_err());
        // A page last used at 5 and loaded at 1 against one last used at 3
        // and loaded at 2: smaller rank goes first.
        let first = |t: Ties| t.rank(5, 1) < t.rank(3, 2);
        assert!(!first(Ties::Oldest));
        assert!(first(Ties::Newest));
        assert!(first(Ties::FirstLoaded));
        assert!(!first(Ties::LastLoaded));
    }
}
