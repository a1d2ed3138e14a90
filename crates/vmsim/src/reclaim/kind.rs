//! The catalogue of policies: names, one-line descriptions, whether each is
//! an oracle, and the options that configure them.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use thiserror::Error;

use super::{ClockInsert, Ties};

/// Every replacement policy, for choosing one by name at run time. The
/// choice is made once per run; the simulation itself is monomorphised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// First in, first out.
    Fifo,
    /// Exact least recently used (oracle).
    Lru,
    /// CLOCK / second chance on the accessed bit.
    Clock,
    /// Enhanced second chance / NRU classes from accessed and dirty bits.
    Nru,
    /// Aging counters shifted on a timer.
    Aging,
    /// Uniform random, seeded.
    Random,
    /// Belady's optimal (oracle, needs the future).
    Opt,
    /// Evict the page needed soonest (oracle, for teaching).
    Unopt,
    /// Most recently used (oracle).
    Mru,
    /// Least frequently used (oracle).
    Lfu,
    /// Linux-style active/inactive lists with refault tracking.
    Linux,
    /// Adaptive Replacement Cache (oracle).
    Arc,
    /// 2Q (oracle).
    TwoQ,
    /// LIRS (oracle).
    Lirs,
    /// CLOCK-Pro.
    ClockPro,
    /// SIEVE.
    Sieve,
    /// S3-FIFO (oracle: counts hits).
    S3Fifo,
}

/// A policy name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown policy '{0}' (expected one of: {names})", names = PolicyKind::names().join(", "))]
pub struct UnknownPolicy(pub String);

impl PolicyKind {
    /// Every policy, in the order `vmsim policy --list` shows them.
    pub const ALL: [PolicyKind; 17] = [
        Self::Fifo,
        Self::Lru,
        Self::Clock,
        Self::Nru,
        Self::Aging,
        Self::Random,
        Self::Opt,
        Self::Unopt,
        Self::Mru,
        Self::Lfu,
        Self::Linux,
        Self::Arc,
        Self::TwoQ,
        Self::Lirs,
        Self::ClockPro,
        Self::Sieve,
        Self::S3Fifo,
    ];

    /// The name used on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fifo => "fifo",
            Self::Lru => "lru",
            Self::Clock => "clock",
            Self::Nru => "nru",
            Self::Aging => "aging",
            Self::Random => "random",
            Self::Opt => "opt",
            Self::Unopt => "unopt",
            Self::Mru => "mru",
            Self::Lfu => "lfu",
            Self::Linux => "linux",
            Self::Arc => "arc",
            Self::TwoQ => "2q",
            Self::Lirs => "lirs",
            Self::ClockPro => "clock-pro",
            Self::Sieve => "sieve",
            Self::S3Fifo => "s3-fifo",
        }
    }

    /// Other accepted names.
    #[must_use]
    pub const fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Clock => &["second-chance"],
            Self::Nru => &["esc", "enhanced-second-chance"],
            Self::Random => &["rand"],
            Self::Opt => &["belady", "min"],
            Self::TwoQ => &["twoq"],
            Self::ClockPro => &["clockpro"],
            Self::S3Fifo => &["s3fifo"],
            Self::Linux => &["active-inactive"],
            _ => &[],
        }
    }

    /// One line saying what the policy does.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Fifo => "evict the page loaded longest ago",
            Self::Lru => "evict the page used least recently (exact)",
            Self::Clock => "FIFO ring; a page with the accessed bit set gets a second chance",
            Self::Nru => "enhanced second chance: lowest class of (accessed, dirty) first",
            Self::Aging => "8-bit counters shifted every tick with the accessed bit; smallest goes",
            Self::Random => "evict a resident page at random (seeded)",
            Self::Opt => "Belady: evict the page used farthest in the future",
            Self::Unopt => "evict the page needed soonest (the worst choice, for teaching)",
            Self::Mru => "evict the page used most recently",
            Self::Lfu => "evict the page referenced least often since it was loaded",
            Self::Linux => "active/inactive lists, second chance, refault distance",
            Self::Arc => "adaptive balance of recency (T1) and frequency (T2) with ghosts",
            Self::TwoQ => "FIFO for first use, LRU for reuse, ghost queue in between",
            Self::Lirs => "keep pages with short reuse distance; small HIR queue is evicted",
            Self::ClockPro => "LIRS on a clock: hot/cold pages, test periods, three hands",
            Self::Sieve => "FIFO with a hand that evicts unvisited pages in place",
            Self::S3Fifo => "small FIFO filter, main FIFO with 2-bit clock, ghost FIFO",
        }
    }

    /// Whether an OS could not run it: it needs every reference or the future.
    #[must_use]
    pub const fn is_oracle(self) -> bool {
        self.sees_every_access() || self.needs_future()
    }

    /// Whether it must be told of every hit.
    #[must_use]
    pub const fn sees_every_access(self) -> bool {
        use super::Policy;
        match self {
            Self::Fifo => <super::Fifo as Policy>::SEES_EVERY_ACCESS,
            Self::Lru => <super::Lru as Policy>::SEES_EVERY_ACCESS,
            Self::Clock => <super::Clock as Policy>::SEES_EVERY_ACCESS,
            Self::Nru => <super::Nru as Policy>::SEES_EVERY_ACCESS,
            Self::Aging => <super::Aging as Policy>::SEES_EVERY_ACCESS,
            Self::Random => <super::Random as Policy>::SEES_EVERY_ACCESS,
            Self::Opt => <super::Opt<'static> as Policy>::SEES_EVERY_ACCESS,
            Self::Unopt => <super::Unopt as Policy>::SEES_EVERY_ACCESS,
            Self::Mru => <super::Mru as Policy>::SEES_EVERY_ACCESS,
            Self::Lfu => <super::Lfu as Policy>::SEES_EVERY_ACCESS,
            Self::Linux => <super::Linux as Policy>::SEES_EVERY_ACCESS,
            Self::Arc => <super::Arc as Policy>::SEES_EVERY_ACCESS,
            Self::TwoQ => <super::TwoQ as Policy>::SEES_EVERY_ACCESS,
            Self::Lirs => <super::Lirs as Policy>::SEES_EVERY_ACCESS,
            Self::ClockPro => <super::ClockPro as Policy>::SEES_EVERY_ACCESS,
            Self::Sieve => <super::Sieve as Policy>::SEES_EVERY_ACCESS,
            Self::S3Fifo => <super::S3Fifo as Policy>::SEES_EVERY_ACCESS,
        }
    }

    /// Whether it needs each reference's next use (the future).
    #[must_use]
    pub const fn needs_future(self) -> bool {
        matches!(self, Self::Opt | Self::Unopt)
    }

    /// The tie rule the policy uses when none is given, if it has an open
    /// choice at all (see [`Ties`] for each default's reason): OPT
    /// `oldest`, UNOPT `newest`, LFU `oldest`, aging `first-loaded`.
    #[must_use]
    pub const fn default_ties(self) -> Option<Ties> {
        match self {
            Self::Opt | Self::Lfu => Some(Ties::Oldest),
            Self::Unopt => Some(Ties::Newest),
            Self::Aging => Some(Ties::FirstLoaded),
            _ => None,
        }
    }

    /// Every accepted name.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == t || k.aliases().contains(&t.as_str()))
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

/// Options of the policies that have any. The defaults are the documented
/// behaviour of each policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyConfig {
    /// CLOCK: whether a new page joins the ring with A set (default) or
    /// clear (libCacheSim's variant).
    pub clock_insert: ClockInsert,
    /// RAND: the seed of its generator.
    pub seed: u64,
    /// Aging: references between timer ticks; `None` for one tick per
    /// `frames` references.
    pub tick: Option<NonZeroU64>,
    /// OPT, UNOPT, LFU, aging: how ties are broken; `None` for the
    /// policy's default ([`PolicyKind::default_ties`]).
    pub ties: Option<Ties>,
    /// The lab's hardware, not a policy: clearing A leaves the page's
    /// translation cached, so A is not set again while the page is resident
    /// (see [`super::LabBits`]). Off by default, as a correct kernel
    /// invalidates the TLB entry.
    pub keep_tlb_entry_on_clear: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_round_trip() {
        for k in PolicyKind::ALL {
            assert_eq!(k.name().parse::<PolicyKind>(), Ok(k));
            for a in k.aliases() {
                assert_eq!(a.parse::<PolicyKind>(), Ok(k));
            }
        }
        assert_eq!("Belady".parse::<PolicyKind>(), Ok(PolicyKind::Opt));
        let e = "lruu".parse::<PolicyKind>().expect_err("not a policy");
        assert!(e.to_string().contains("unknown policy 'lruu'"));
    }

    #[test]
    fn oracles_are_the_ones_an_os_cannot_run() {
        use PolicyKind as K;
        for k in [
            K::Fifo,
            K::Clock,
            K::Nru,
            K::Aging,
            K::Random,
            K::Linux,
            K::ClockPro,
            K::Sieve,
        ] {
            assert!(!k.is_oracle(), "{k}");
        }
        for k in [
            K::Lru,
            K::Opt,
            K::Unopt,
            K::Mru,
            K::Lfu,
            K::Arc,
            K::TwoQ,
            K::Lirs,
            K::S3Fifo,
        ] {
            assert!(k.is_oracle(), "{k}");
        }
    }
}
