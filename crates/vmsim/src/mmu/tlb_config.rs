//! The shape of a TLB hierarchy and its page-walk caches, as a user writes
//! it: [`TlbConfig`] (serde, TOML-friendly) and its validation.
//!
//! ```toml
//! asid_tags = true          # false: flush non-global entries on every context switch
//! seed = 0                  # feeds random replacement
//!
//! [[levels]]                # first level first
//! latency = 1               # cycles
//! [[levels.arrays]]
//! name = "L1 dTLB 4K"
//! holds = "data"            # data | instruction | unified
//! entries = 64
//! ways = 4                  # omit for fully associative
//! replacement = "lru"       # lru | tree-plru | random
//! page_sizes = ["4KiB"]
//!
//! [[walk_cache]]
//! depth = 3                 # a hit skips the first 3 levels of the walk
//! entries = 32
//! ```
//!
//! This module owns parsing and checking only; [`Tlb::new`](super::Tlb::new)
//! builds the structures from a checked config. Named presets live in
//! [`tlb_presets`](super::tlb_presets).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::addr::{PageSize, format_size};

use super::Replacement;
use super::counters::MAX_WALK_LEVELS;

/// The most page sizes one array may hold (each one is a probe on every lookup).
pub const MAX_SIZES_PER_ARRAY: usize = 4;

/// The most arrays one level may have.
pub const MAX_ARRAYS_PER_LEVEL: usize = 8;

/// The most entries one array may have: a bound that keeps an impossible
/// config from asking for gigabytes of host memory.
pub const MAX_ARRAY_ENTRIES: u32 = 1 << 22;

/// The most entries one walk-cache level may have (it is searched linearly).
pub const MAX_WALK_CACHE_ENTRIES: u32 = 1024;

/// A TLB config that cannot be built, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlbConfigError {
    /// A field holds an impossible value.
    #[error("TLB config field `{field}`: {problem}")]
    Field {
        /// The path of the field, as in the TOML (`levels[0].arrays[1].ways`).
        field: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The text is not a TLB config at all (TOML syntax, unknown key, wrong
    /// type): the TOML error, with its line and column.
    #[error("TLB config: {}", crate::error_line::flat_display(.0))]
    Parse(#[source] Box<toml::de::Error>),
    /// The config could not be written as TOML (a value TOML cannot hold).
    #[error("TLB config as TOML: {0}")]
    Write(#[source] Box<toml::ser::Error>),
    /// No preset has this name.
    #[error("unknown TLB preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> TlbConfigError {
    TlbConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Which accesses an array serves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holds {
    /// Loads and stores only (a split L1 data TLB).
    Data,
    /// Instruction fetches only (a split L1 instruction TLB).
    Instruction,
    /// Both (a unified or shared TLB).
    #[default]
    Unified,
}

impl Holds {
    /// Whether the array serves data accesses.
    #[must_use]
    pub const fn serves_data(self) -> bool {
        matches!(self, Self::Data | Self::Unified)
    }

    /// Whether the array serves instruction fetches.
    #[must_use]
    pub const fn serves_fetch(self) -> bool {
        matches!(self, Self::Instruction | Self::Unified)
    }
}

/// One set-associative array: the unit that has entries, ways and a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlbArrayConfig {
    /// A label for reports (`"L1 dTLB 4K"`); may be empty.
    #[serde(default)]
    pub name: String,
    /// Which accesses it serves.
    #[serde(default)]
    pub holds: Holds,
    /// Total entries (sets x ways).
    #[serde(deserialize_with = "crate::units::count")]
    pub entries: u32,
    /// Ways per set; `None` (omitted) means fully associative (`ways = entries`).
    /// The set count `entries / ways` need not be a power of two.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::units::count_opt"
    )]
    pub ways: Option<u32>,
    /// Which way a fill evicts.
    #[serde(default)]
    pub replacement: Replacement,
    /// The page sizes it holds, probed in the order given. A page larger than
    /// every size an array holds is cached in it *splintered* into pieces of
    /// the largest size it holds that is smaller, as x86 cores do.
    #[serde(with = "page_size_list")]
    pub page_sizes: Vec<PageSize>,
}

impl TlbArrayConfig {
    /// An array with no name, unified, true LRU.
    #[must_use]
    pub fn new(entries: u32, ways: Option<u32>, page_sizes: &[PageSize]) -> Self {
        Self {
            name: String::new(),
            holds: Holds::Unified,
            entries,
            ways,
            replacement: Replacement::Lru,
            page_sizes: page_sizes.to_vec(),
        }
    }

    /// The way count, resolving "fully associative".
    #[must_use]
    pub fn ways(&self) -> u32 {
        self.ways.unwrap_or(self.entries)
    }

    fn validate(&self, field: &str) -> Result<(), TlbConfigError> {
        if self.entries == 0 || self.entries > MAX_ARRAY_ENTRIES {
            return Err(field_error(
                format!("{field}.entries"),
                format!(
                    "{} entries: expected 1 to {MAX_ARRAY_ENTRIES}",
                    self.entries
                ),
            ));
        }
        let ways = self.ways();
        if ways == 0 || ways > self.entries {
            return Err(field_error(
                format!("{field}.ways"),
                format!(
                    "{ways} ways: expected 1 to the entry count {} (omit for fully associative)",
                    self.entries
                ),
            ));
        }
        if !self.entries.is_multiple_of(ways) {
            return Err(field_error(
                format!("{field}.ways"),
                format!("{} entries are not divisible by {ways} ways", self.entries),
            ));
        }
        if self.page_sizes.is_empty() || self.page_sizes.len() > MAX_SIZES_PER_ARRAY {
            return Err(field_error(
                format!("{field}.page_sizes"),
                format!(
                    "{} page sizes: expected 1 to {MAX_SIZES_PER_ARRAY}",
                    self.page_sizes.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for size in &self.page_sizes {
            if !seen.insert(*size) {
                return Err(field_error(
                    format!("{field}.page_sizes"),
                    format!("{size} is listed twice"),
                ));
            }
        }
        Ok(())
    }
}

/// One level of the hierarchy: the arrays probed together, and their latency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlbLevelConfig {
    /// Cycles a lookup of this level costs (paid by every access that probes it).
    #[serde(deserialize_with = "crate::units::count")]
    pub latency: u32,
    /// The arrays of the level. For each kind of access (data, instruction),
    /// each page size may be held by at most one array of the level.
    pub arrays: Vec<TlbArrayConfig>,
}

impl TlbLevelConfig {
    fn validate(&self, field: &str) -> Result<(), TlbConfigError> {
        if self.arrays.is_empty() {
            return Err(field_error(
                format!("{field}.arrays"),
                "a level needs at least one array",
            ));
        }
        for (i, array) in self.arrays.iter().enumerate() {
            array.validate(&format!("{field}.arrays[{i}]"))?;
        }
        for (side, serves) in [
            ("data", Holds::serves_data as fn(Holds) -> bool),
            ("instruction", Holds::serves_fetch),
        ] {
            let mut holder = std::collections::BTreeMap::new();
            for (i, array) in self
                .arrays
                .iter()
                .enumerate()
                .filter(|(_, a)| serves(a.holds))
            {
                for size in &array.page_sizes {
                    if let Some(first) = holder.insert(*size, i) {
                        return Err(field_error(
                            format!("{field}.arrays[{i}].page_sizes"),
                            format!(
                                "{size} {side} pages are already held by arrays[{first}] of this level"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One page-walk cache: entries for the first `depth` levels of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkCacheLevelConfig {
    /// How many levels of the walk a hit skips: 1 caches root-level entries
    /// (x86 PML4E cache), 2 the next (PDPTE cache), 3 on x86-64 the PDE cache.
    /// Must be less than the format's level count.
    pub depth: u32,
    /// Entries (fully associative, true LRU); 0 disables the cache.
    #[serde(deserialize_with = "crate::units::count")]
    pub entries: u32,
}

/// The TLB hierarchy and page-walk caches of one core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlbConfig {
    /// Whether entries carry ASID (PCID) tags. Without tags the TLB is flushed
    /// of non-global entries at every context switch, as x86 does without PCIDs.
    #[serde(default = "default_true")]
    pub asid_tags: bool,
    /// Seed for random replacement; each array derives its own stream from it.
    #[serde(default)]
    pub seed: u64,
    /// The TLB levels, first level first. None at all is allowed: every
    /// access then walks.
    #[serde(default)]
    pub levels: Vec<TlbLevelConfig>,
    /// The page-walk caches, any order; none means every walk starts at the root.
    #[serde(default)]
    pub walk_cache: Vec<WalkCacheLevelConfig>,
}

fn default_true() -> bool {
    true
}

impl Default for TlbConfig {
    /// No TLB and no walk cache: every access walks.
    fn default() -> Self {
        Self {
            asid_tags: true,
            seed: 0,
            levels: Vec::new(),
            walk_cache: Vec::new(),
        }
    }
}

impl TlbConfig {
    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), TlbConfigError> {
        for (i, level) in self.levels.iter().enumerate() {
            level.validate(&format!("levels[{i}]"))?;
        }
        let mut depths = BTreeSet::new();
        for (i, cache) in self.walk_cache.iter().enumerate() {
            if cache.depth == 0 || cache.depth as usize >= MAX_WALK_LEVELS {
                return Err(field_error(
                    format!("walk_cache[{i}].depth"),
                    format!(
                        "depth {}: expected 1 to {}",
                        cache.depth,
                        MAX_WALK_LEVELS - 1
                    ),
                ));
            }
            if !depths.insert(cache.depth) {
                return Err(field_error(
                    format!("walk_cache[{i}].depth"),
                    format!("depth {} is configured twice", cache.depth),
                ));
            }
            if cache.entries > MAX_WALK_CACHE_ENTRIES {
                return Err(field_error(
                    format!("walk_cache[{i}].entries"),
                    format!(
                        "{} entries: expected 0 to {MAX_WALK_CACHE_ENTRIES}",
                        cache.entries
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Parses and validates a TOML config.
    pub fn from_toml_str(text: &str) -> Result<Self, TlbConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| TlbConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML (what `vmsim presets` prints).
    pub fn to_toml_string(&self) -> Result<String, TlbConfigError> {
        toml::to_string(self).map_err(|e| TlbConfigError::Write(Box::new(e)))
    }

    /// Every page size some array holds, smallest first.
    #[must_use]
    pub fn page_sizes(&self) -> Vec<PageSize> {
        let sizes: BTreeSet<PageSize> = self
            .levels
            .iter()
            .flat_map(|l| &l.arrays)
            .flat_map(|a| a.page_sizes.iter().copied())
            .collect();
        sizes.into_iter().collect()
    }
}

/// Parses a page size as users write it: `4KiB`, `4 KiB`, `4K`, `4k`, `2MiB`,
/// `1G`, `4096` (bytes), `16B`, `0x1000` ([`crate::units::parse_size`]). It
/// must be a power of two.
pub fn parse_page_size(text: &str) -> Result<PageSize, PageSizeError> {
    let bytes = crate::units::parse_size(text).map_err(|source| PageSizeError::Number {
        text: text.to_owned(),
        source,
    })?;
    PageSize::from_bytes(bytes).map_err(|source| PageSizeError::Size {
        text: text.to_owned(),
        source,
    })
}

/// Why [`parse_page_size`] refused a text; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PageSizeError {
    /// Not a size at all.
    #[error(
        "unknown page size {text:?}: {source}; expected a power of two such as \"4KiB\", \"2MiB\", \"1GiB\" or a byte count"
    )]
    Number {
        /// The text given.
        text: String,
        /// Why it is not a size.
        source: crate::units::NumberError,
    },
    /// A size, but not one a page can have.
    #[error(
        "unknown page size {text:?}: expected a power of two such as \"4KiB\", \"2MiB\", \"1GiB\" or a byte count"
    )]
    Size {
        /// The text given.
        text: String,
        /// Why the size is not a page size.
        source: crate::addr::AddrError,
    },
}

/// Serde for a list of page sizes written as strings (`["4KiB", "2MiB"]`);
/// bare integers are read as byte counts.
mod page_size_list {
    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::{SerializeSeq, Serializer};

    use super::{PageSize, format_size, parse_page_size};
    use crate::units::WrittenSize;

    pub(super) fn serialize<S: Serializer>(
        sizes: &[PageSize],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(sizes.len()))?;
        for size in sizes {
            seq.serialize_element(&format_size(size.bytes()).replace(' ', ""))?;
        }
        seq.end()
    }

    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<PageSize>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of page sizes such as [\"4KiB\", \"2MiB\"]")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut sizes = Vec::new();
            while let Some(written) = seq.next_element::<WrittenSize>()? {
                let size = match written {
                    WrittenSize::Text(text) => parse_page_size(&text).map_err(de::Error::custom)?,
                    WrittenSize::Bytes(bytes) => PageSize::from_bytes(bytes).map_err(|_| {
                        de::Error::custom(format!("page size {bytes} is not a power of two"))
                    })?,
                };
                sizes.push(size);
            }
            Ok(sizes)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<PageSize>, D::Error> {
        deserializer.deserialize_seq(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        asid_tags = false
        seed = 9
        [[levels]]
        latency = 1
        [[levels.arrays]]
        name = "L1 d"
        holds = "data"
        entries = 64
        ways = 4
        page_sizes = ["4KiB", "2M"]
        [[levels.arrays]]
        holds = "instruction"
        entries = 24
        replacement = "tree-plru"
        page_sizes = [4096]
        [[walk_cache]]
        depth = 3
        entries = 32
    "#;

    #[test]
    fn parses_and_round_trips() {
        let config = TlbConfig::from_toml_str(SAMPLE).expect("sample is valid");
        assert!(!config.asid_tags);
        assert_eq!(config.seed, 9);
        let d = &config.levels[0].arrays[0];
        assert_eq!((d.entries, d.ways(), d.holds), (64, 4, Holds::Data));
        assert_eq!(d.page_sizes, vec![PageSize::SIZE_4K, PageSize::SIZE_2M]);
        let i = &config.levels[0].arrays[1];
        assert_eq!((i.ways(), i.replacement), (24, Replacement::TreePlru));
        assert_eq!(
            config.walk_cache,
            vec![WalkCacheLevelConfig {
                depth: 3,
                entries: 32
            }]
        );
        let text = config.to_toml_string().expect("serialises");
        assert_eq!(TlbConfig::from_toml_str(&text), Ok(config));
    }

    fn field_of(err: TlbConfigError) -> String {
        match err {
            TlbConfigError::Field { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn rejects_impossible_geometry_naming_the_field() {
        let mut config = TlbConfig::from_toml_str(SAMPLE).expect("valid");
        config.levels[0].arrays[0].ways = Some(5);
        let err = config.validate().expect_err("64 % 5 != 0");
        assert!(err.to_string().contains("not divisible by 5 ways"), "{err}");
        assert_eq!(field_of(err), "levels[0].arrays[0].ways");

        let mut config = TlbConfig::from_toml_str(SAMPLE).expect("valid");
        config.levels[0].arrays[1].entries = 0;
        assert_eq!(
            field_of(config.validate().expect_err("zero entries")),
            "levels[0].arrays[1].entries"
        );

        let mut config = TlbConfig::from_toml_str(SAMPLE).expect("valid");
        config.levels[0].arrays[0].page_sizes.clear();
        assert_eq!(
            field_of(config.validate().expect_err("no sizes")),
            "levels[0].arrays[0].page_sizes"
        );

        let mut config = TlbConfig::from_toml_str(SAMPLE).expect("valid");
        config.levels[0].arrays[1].holds = Holds::Unified;
        assert_eq!(
            field_of(config.validate().expect_err("4K data held twice")),
            "levels[0].arrays[1].page_sizes"
        );

        let mut config = TlbConfig::from_toml_str(SAMPLE).expect("valid");
        config.walk_cache.push(WalkCacheLevelConfig {
            depth: 3,
            entries: 1,
        });
        assert_eq!(
            field_of(config.validate().expect_err("depth twice")),
            "walk_cache[1].depth"
        );
        config.walk_cache[1].depth = 0;
        assert_eq!(
            field_of(config.validate().expect_err("depth zero")),
            "walk_cache[1].depth"
        );
    }

    #[test]
    fn rejects_unknown_page_size_and_fields() {
        let bad = SAMPLE.replace("\"2M\"", "\"3K\"");
        let err = TlbConfig::from_toml_str(&bad).expect_err("3K is not a power of two");
        let line = crate::error_line::one_line(&err);
        assert!(
            matches!(err, TlbConfigError::Parse(_)) && line.contains("unknown page size \"3K\""),
            "{line}"
        );
        let bad = SAMPLE.replace("\"2M\"", "\"2 parsecs\"");
        assert!(
            crate::error_line::one_line(&TlbConfig::from_toml_str(&bad).expect_err("bad unit"))
                .contains("unknown unit")
        );
        let bad = SAMPLE.replace("seed = 9", "sed = 9");
        assert!(
            crate::error_line::one_line(&TlbConfig::from_toml_str(&bad).expect_err("typo"))
                .contains("sed")
        );
    }

    #[test]
    fn page_size_spellings() {
        for (text, bytes) in [
            ("4KiB", 4096),
            ("4 KiB", 4096),
            ("4k", 4096),
            ("2MiB", 2 << 20),
            ("1G", 1 << 30),
            ("64", 64),
        ] {
            assert_eq!(
                parse_page_size(text).map(PageSize::bytes),
                Ok(bytes),
                "{text}"
            );
        }
        for text in ["", "K", "3K", "4X", "99999999999T"] {
            assert!(parse_page_size(text).is_err(), "{text}");
        }
        // The cause is kept as the source, and the message quotes the text.
        let e = parse_page_size("3K").expect_err("not a power of two");
        assert!(matches!(e, PageSizeError::Size { .. }), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("\"3K\""), "{e}");
        let e = parse_page_size("4X").expect_err("not a size");
        assert!(matches!(e, PageSizeError::Number { .. }), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
