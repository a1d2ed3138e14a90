//! The replacement policies an operating system can run (`kernel.policy`),
//! parsed once when the configuration is read.
//!
//! [`PolicyKind`] names every policy of the catalogue, oracles included (they
//! need every access or the future, which a kernel never sees). The kernel
//! takes a [`SystemPolicy`], so an oracle cannot reach it: the name is
//! checked at the configuration's boundary and never parsed again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::reclaim::{PolicyKind, UnknownPolicy};

/// A replacement policy the full system runs: one that needs neither every
/// access nor the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SystemPolicy {
    /// First in, first out.
    Fifo,
    /// CLOCK / second chance on the accessed bit (the default).
    #[default]
    Clock,
    /// Enhanced second chance: classes of (accessed, dirty).
    Nru,
    /// 8-bit aging counters shifted every `kernel.tick` references.
    Aging,
    /// Uniform random, seeded by `kernel.seed`.
    Random,
    /// Linux-style active/inactive lists with refault distances.
    Linux,
    /// CLOCK-Pro.
    ClockPro,
    /// SIEVE.
    Sieve,
}

/// A `kernel.policy` that names no policy the kernel can run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyChoiceError {
    /// Not a policy at all.
    #[error(transparent)]
    Unknown(#[from] UnknownPolicy),
    /// A policy of the catalogue that only a simulator can run.
    #[error(
        "'{0}' is an oracle policy (it must see every access or the future), which an operating \
         system cannot run; the full system runs {names} (oracles run in `vmsim policy`)",
        names = SystemPolicy::names().join(", ")
    )]
    Oracle(PolicyKind),
}

impl SystemPolicy {
    /// Every policy the kernel runs, in the catalogue's order.
    pub const ALL: [SystemPolicy; 8] = [
        Self::Fifo,
        Self::Clock,
        Self::Nru,
        Self::Aging,
        Self::Random,
        Self::Linux,
        Self::ClockPro,
        Self::Sieve,
    ];

    /// The catalogue entry.
    #[must_use]
    pub const fn kind(self) -> PolicyKind {
        match self {
            Self::Fifo => PolicyKind::Fifo,
            Self::Clock => PolicyKind::Clock,
            Self::Nru => PolicyKind::Nru,
            Self::Aging => PolicyKind::Aging,
            Self::Random => PolicyKind::Random,
            Self::Linux => PolicyKind::Linux,
            Self::ClockPro => PolicyKind::ClockPro,
            Self::Sieve => PolicyKind::Sieve,
        }
    }

    /// The name used in configurations and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        self.kind().name()
    }

    /// Every name the kernel accepts (aliases aside).
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|p| p.name()).collect()
    }
}

impl TryFrom<PolicyKind> for SystemPolicy {
    type Error = PolicyChoiceError;

    fn try_from(kind: PolicyKind) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.kind() == kind)
            .ok_or(PolicyChoiceError::Oracle(kind))
    }
}

impl FromStr for SystemPolicy {
    type Err = PolicyChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.parse::<PolicyKind>()?)
    }
}

impl fmt::Display for SystemPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Written as its name, so a configuration's TOML (and a checkpoint's
/// postcard, which stored the name as a string) reads the same as before.
impl Serialize for SystemPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for SystemPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse_and_oracles_are_refused() {
        assert_eq!("clock".parse(), Ok(SystemPolicy::Clock));
        assert_eq!("second-chance".parse(), Ok(SystemPolicy::Clock));
        assert_eq!("Clock_Pro".parse(), Ok(SystemPolicy::ClockPro));
        assert_eq!(
            "lru".parse::<SystemPolicy>(),
            Err(PolicyChoiceError::Oracle(PolicyKind::Lru))
        );
        assert!(matches!(
            "nope".parse::<SystemPolicy>(),
            Err(PolicyChoiceError::Unknown(_))
        ));
        for p in SystemPolicy::ALL {
            assert!(!p.kind().is_oracle(), "{p}");
            assert_eq!(p.name().parse(), Ok(p));
        }
        let runnable = PolicyKind::ALL.iter().filter(|k| !k.is_oracle()).count();
        assert_eq!(
            runnable,
            SystemPolicy::ALL.len(),
            "every runnable policy is here"
        );
    }

    /// The wire form is the name, as when the field was a `String`.
    #[test]
    fn serialized_as_its_name() {
        let bytes = postcard::to_allocvec(&SystemPolicy::Sieve).expect("serialize");
        assert_eq!(bytes, postcard::to_allocvec("sieve").expect("serialize"));
        let back: SystemPolicy = postcard::from_bytes(&bytes).expect("deserialize");
        assert_eq!(back, SystemPolicy::Sieve);
        let bad = postcard::to_allocvec("opt").expect("serialize");
        assert!(postcard::from_bytes::<SystemPolicy>(&bad).is_err());
    }
}
