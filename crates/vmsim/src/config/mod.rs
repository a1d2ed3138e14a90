//! The whole machine and kernel configuration, named presets, and how a
//! user's TOML file and `--set key=value` overrides are layered on a preset.
//!
//! A config is composed as a TOML table: the preset's table, then the
//! user's file merged over it (tables merge key by key, other values
//! replace), then each override. Only then is it deserialized, with unknown
//! keys rejected, and resolved into a [`MachineSpec`] (the format loaded,
//! sizes and enums checked) once; every error names the key.

mod spec;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kernel::{KernelConfig, PolicyChoiceError, SystemPolicy};
use crate::mmu::TlbConfig;
use crate::units;

pub use spec::MachineSpec;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// No preset has this name.
    #[error("unknown preset '{0}' (expected one of: {names})", names = PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", "))]
    UnknownPreset(String),
    /// A `--set` assignment that is not `KEY=VALUE` with one TOML value.
    #[error("{origin}: {message}")]
    Parse {
        /// The assignment, as `--set ...`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The TOML does not parse or does not fit the config's shape (unknown
    /// key, wrong type): where the text came from, and the TOML error with
    /// its line and column as the source.
    #[error("{origin}: {}", crate::error_line::flat_display(source))]
    Toml {
        /// Where the text came from (a file, `config` for the merged table).
        origin: String,
        /// The TOML error (boxed: it is large, and rare).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A built-in preset that does not serialize (a bug in the preset).
    #[error("preset {name}: {source}")]
    Preset {
        /// The preset.
        name: String,
        /// The TOML error.
        #[source]
        source: Box<toml::ser::Error>,
    },
    /// A value that parses but cannot work.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The paging format named (`paging.arch`) or read
    /// (`paging.format_file`) cannot be used.
    #[error("config key `{key}`: {source}")]
    Format {
        /// The dotted key.
        key: &'static str,
        /// Why the format could not be built or found.
        source: crate::paging::FormatError,
    },
    /// A size or count that does not parse.
    #[error("config key `{key}`: {source}")]
    Number {
        /// The dotted key.
        key: &'static str,
        /// What is wrong with the text.
        source: vmsim_trace::units::NumberError,
    },
    /// The inverted or hashed table described cannot be laid out.
    #[error("config key `{key}`: {source}")]
    Table {
        /// The dotted key.
        key: &'static str,
        /// Why the table cannot be built.
        source: Box<crate::paging::hashed::TableError>,
    },
    /// The TLB hierarchy described cannot be built.
    #[error("config key `tlb`: {0}")]
    Tlb(#[source] crate::mmu::TlbConfigError),
    /// The kernel cannot work with the machine described.
    #[error("config key `kernel`: {0}")]
    Kernel(#[source] crate::kernel::KernelError),
    /// `kernel.policy` names no policy the kernel can run.
    #[error("config key `kernel.policy`: {0}")]
    Policy(#[source] PolicyChoiceError),
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Whether the hardware or the OS sets accessed and dirty bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AdMode {
    /// Follow the architecture: hardware updates on x86, Svade faults on RISC-V.
    #[default]
    Auto,
    /// The MMU sets A on a walk and D on the first write (x86, RISC-V Svadu).
    Hardware,
    /// The MMU faults when A or D would need setting; the kernel sets them (RISC-V Svade).
    Svade,
}

/// The paging format and the size of data pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingConfig {
    /// A built-in format name (`x86-64`, `sv39`, ...).
    pub arch: String,
    /// A user-defined format file instead of `arch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_file: Option<PathBuf>,
    /// The size in bytes of data pages the kernel maps: the format's base
    /// page, or one of its superpage sizes (written `2MiB` or 2097152 on
    /// x86-64; checked against the format by [`MachineSpec`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "units::size_opt"
    )]
    pub page_size: Option<u64>,
    /// Who sets accessed and dirty bits.
    #[serde(default)]
    pub ad_bits: AdMode,
    /// The translation structure: a radix tree per address space (the
    /// format's own), or one inverted or hashed table for the machine.
    #[serde(default)]
    pub structure: StructureKind,
    /// Sizes of the inverted table (used when `structure = "inverted"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted: Option<InvertedSection>,
    /// Sizes of the hashed table (used when `structure = "hashed"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed: Option<HashedSection>,
}

/// Which translation structure the machine uses (`paging.structure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StructureKind {
    /// The format's radix tree, one per address space.
    #[default]
    Radix,
    /// An inverted page table: one entry per frame, searched by (ASID, VPN).
    Inverted,
    /// A hashed page table: buckets of chained (ASID, VPN) -> frame elements.
    Hashed,
}

impl StructureKind {
    /// The name written in a configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Radix => "radix",
            Self::Inverted => "inverted",
            Self::Hashed => "hashed",
        }
    }
}

/// How an inverted table is searched (`paging.inverted.search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InvertedSearchKind {
    /// Through a hash anchor table, then a chain.
    #[default]
    Hashed,
    /// Every entry in frame order (the textbook search; slow on big memories).
    Linear,
}

/// `[paging.inverted]`: the inverted table's search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InvertedSection {
    /// How lookups search.
    #[serde(default)]
    pub search: InvertedSearchKind,
    /// Hash anchor table slots, a power of two (default: the frame count
    /// rounded up to a power of two). Only with `search = "hashed"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "units::count_opt"
    )]
    pub anchors: Option<u64>,
}

/// `[paging.hashed]`: the hashed table's sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HashedSection {
    /// Buckets, a power of two (default: the frame count rounded up to a
    /// power of two).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "units::count_opt"
    )]
    pub buckets: Option<u64>,
    /// Elements: the most mappings over all processes (default: twice the
    /// frame count, as forked processes share frames).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "units::count_opt"
    )]
    pub capacity: Option<u64>,
}

/// Physical memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Physical memory in frames of the format's base page size.
    #[serde(deserialize_with = "units::count")]
    pub frames: u64,
    /// Cycles of one memory reference (for the effective access time).
    #[serde(deserialize_with = "units::count")]
    pub latency: u32,
}

/// Run settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of every random choice not seeded elsewhere.
    pub seed: u64,
    /// Check the kernel's invariants at every context switch and at the end (slow).
    pub check: bool,
    /// References per time slice when several processes run.
    #[serde(deserialize_with = "units::count")]
    pub quantum: u64,
    /// Samples taken for the timeline (faults and TLB misses over time).
    #[serde(deserialize_with = "units::count")]
    pub timeline_points: u32,
}

/// The whole configuration of a simulated machine and its kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The paging format.
    pub paging: PagingConfig,
    /// Physical memory.
    pub memory: MemoryConfig,
    /// The TLB hierarchy and page-walk caches.
    pub tlb: TlbConfig,
    /// The kernel.
    pub kernel: KernelConfig,
    /// The run.
    pub run: RunConfig,
    /// Checkpoints: how often, which way, which tracker, and the pause cost model.
    #[serde(default)]
    pub checkpoint: crate::checkpoint::CheckpointConfig,
    /// Live migration: the link model and pre-copy's stopping rules.
    #[serde(default)]
    pub migrate: crate::migrate::MigrateConfig,
}

/// A named preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The name (`--preset NAME`).
    pub name: &'static str,
    /// What it models.
    pub summary: &'static str,
    arch: &'static str,
    tlb: &'static str,
    frames: u64,
}

/// Every preset; the first is the default.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "x86-64",
        summary: "x86-64 4-level paging, Skylake-like TLBs with PCIDs and walk caches, 1 GiB of memory",
        arch: "x86-64",
        tlb: "x86-64",
        frames: 1 << 18,
    },
    Preset {
        name: "core-i7",
        summary: "x86-64 4-level paging with the course notes' Core i7 TLBs (64 D + 128 I, 512 L2), 1 GiB",
        arch: "x86-64",
        tlb: "core-i7",
        frames: 1 << 18,
    },
    Preset {
        name: "riscv-sv39",
        summary: "RISC-V Sv39 with SiFive-U74-like TLBs, Svade accessed/dirty faults, 1 GiB",
        arch: "sv39",
        tlb: "riscv-sv39",
        frames: 1 << 18,
    },
    Preset {
        name: "classroom",
        summary: "x86 32-bit two-level paging, one 16-entry fully associative TLB, 4 MiB of memory (1024 frames)",
        arch: "x86-32",
        tlb: "classroom",
        frames: 1 << 10,
    },
];

/// The most frames (and swap slots) a run accepts: 2^25, 128 GiB of 4 KiB
/// frames, whose per-frame bookkeeping stays around a gigabyte of host memory.
pub const MAX_FRAMES: u64 = 1 << 25;

/// The default preset's name.
pub const DEFAULT_PRESET: &str = "x86-64";

impl Preset {
    /// The preset as a config.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let tlb = TlbConfig::preset(self.tlb).map_err(ConfigError::Tlb)?;
        Ok(Config {
            paging: PagingConfig {
                arch: self.arch.to_string(),
                format_file: None,
                page_size: None,
                ad_bits: AdMode::Auto,
                structure: StructureKind::Radix,
                inverted: None,
                hashed: None,
            },
            memory: MemoryConfig {
                frames: self.frames,
                latency: 100,
            },
            tlb,
            kernel: KernelConfig::default(),
            run: RunConfig {
                seed: 1,
                check: false,
                quantum: 10_000,
                timeline_points: 200,
            },
            checkpoint: crate::checkpoint::CheckpointConfig::default(),
            migrate: crate::migrate::MigrateConfig::default(),
        })
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Builds a config: a preset (the default if `None`), a TOML file's text
/// over it, then `key=value` overrides.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    table: toml::Table,
}

impl ConfigBuilder {
    /// Starts from a preset.
    pub fn preset(name: Option<&str>) -> Result<Self, ConfigError> {
        let name = name.unwrap_or(DEFAULT_PRESET);
        let preset = PRESETS
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ConfigError::UnknownPreset(name.to_string()))?;
        let table =
            toml::Table::try_from(preset.config()?).map_err(|source| ConfigError::Preset {
                name: name.to_string(),
                source: Box::new(source),
            })?;
        Ok(Self { table })
    }

    /// Merges a TOML file's text over the current table (a file may also
    /// name a `preset` to start from, which must come first).
    pub fn file(mut self, text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut over: toml::Table = toml::from_str(text).map_err(|source| ConfigError::Toml {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
        if let Some(p) = over.remove("preset") {
            let name = p
                .as_str()
                .ok_or_else(|| invalid("preset", "expected a preset name"))?;
            self = Self::preset(Some(name))?;
        }
        merge(&mut self.table, over);
        Ok(self)
    }

    /// Applies `key.path=value`; the value is one TOML value (number, bool,
    /// string, array, inline table), or taken as a string if it is a bare
    /// word that is not TOML (`kernel.policy=fifo`, `paging.page_size=2MiB`).
    /// Anything more is refused, never half-applied: a line break (which
    /// could smuggle in a new table) or text after the value.
    pub fn set(mut self, assignment: &str) -> Result<Self, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            origin: format!("--set {}", assignment.escape_debug()),
            message,
        };
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| parse_err("expected KEY=VALUE, e.g. memory.frames=256".into()))?;
        let key = key.trim();
        let raw = raw.trim();
        if raw.chars().any(char::is_control) {
            return Err(parse_err(
                "the value must be one TOML value on one line (it holds a line break or another control character)".into(),
            ));
        }
        let value: toml::Value = match raw.parse::<toml::Value>() {
            Ok(v) => v,
            // Quoted, bracketed or braced text is meant as TOML: say why it is not.
            Err(e) if raw.starts_with(['"', '\'', '[', '{']) => {
                return Err(parse_err(format!(
                    "not a single TOML value: {}",
                    e.message().trim().replace('\n', " ")
                )));
            }
            Err(_) => toml::Value::String(raw.to_string()),
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid(key, "empty part in the key"));
        }
        let mut at = &mut self.table;
        for p in &parts[..parts.len() - 1] {
            let entry = at
                .entry((*p).to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(invalid(key, format!("`{p}` is a value, not a section"))),
            };
        }
        // Sizes written with units (2MiB) stay strings; numbers where a
        // string is expected (page_size = 4096) become strings too.
        at.insert(parts[parts.len() - 1].to_string(), value);
        Ok(self)
    }

    /// Deserializes, then resolves and checks the machine ([`MachineSpec::new`]).
    pub fn build(self) -> Result<MachineSpec, ConfigError> {
        MachineSpec::new(self.config()?)
    }

    /// Deserializes into the configuration's shape, unknown keys refused;
    /// nothing is resolved or checked against the format yet.
    pub fn config(self) -> Result<Config, ConfigError> {
        let table = self.table;
        // The policy is checked here, not by serde, so that its error names
        // the key the way the machine's checks do.
        if let Some(toml::Value::Table(k)) = table.get("kernel")
            && let Some(toml::Value::String(name)) = k.get("policy")
        {
            name.parse::<SystemPolicy>().map_err(ConfigError::Policy)?;
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|source| ConfigError::Toml {
            origin: "config".into(),
            source: Box::new(source),
        })
    }
}

impl Config {
    /// The config as TOML text (what `vmsim presets` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageSize;
    use crate::paging::StructureSpec;
    use crate::paging::inverted::InvertedSearch;

    /// Count and size keys read units from TOML, yet the kernel's copy of
    /// its config must still round-trip through a checkpoint (postcard,
    /// not self-describing).
    #[test]
    fn unit_keys_read_units_and_round_trip_through_postcard() {
        let cfg = ConfigBuilder::preset(None)
            .and_then(|b| b.set("kernel.swap_slots=1Ki"))
            .and_then(|b| b.set("kernel.stack_limit=2MiB"))
            .and_then(|b| b.set("memory.frames=8Ki"))
            .and_then(ConfigBuilder::build)
            .expect("valid");
        assert_eq!(cfg.config().kernel.swap_slots, Some(1024));
        assert_eq!(cfg.config().kernel.stack_limit, 2 << 20);
        assert_eq!(cfg.config().memory.frames, 8192);
        for k in [cfg.config().kernel.clone(), KernelConfig::default()] {
            let bytes = postcard::to_allocvec(&k).expect("serialize");
            let back: KernelConfig = postcard::from_bytes(&bytes).expect("deserialize");
            assert_eq!(back, k);
        }
    }

    #[test]
    fn every_preset_builds_and_round_trips() {
        for p in PRESETS {
            let cfg = ConfigBuilder::preset(Some(p.name))
                .and_then(ConfigBuilder::build)
                .expect(p.name);
            let text = cfg.to_toml();
            let back = ConfigBuilder::preset(Some(p.name))
                .and_then(|b| b.file(&text, "round trip"))
                .and_then(ConfigBuilder::build)
                .expect("round trip");
            assert_eq!(back, cfg, "{}", p.name);
        }
    }

    #[test]
    fn overrides_apply_and_bad_ones_name_the_key() {
        let cfg = ConfigBuilder::preset(None)
            .and_then(|b| b.set("paging.page_size=2MiB"))
            .and_then(|b| b.set("memory.frames=8192"))
            .and_then(ConfigBuilder::build)
            .expect("valid");
        assert_eq!(cfg.page_size(), PageSize::SIZE_2M);
        assert_eq!(cfg.config().memory.frames, 8192);
        let e = ConfigBuilder::preset(None)
            .and_then(|b| b.set("memory.framez=1"))
            .and_then(ConfigBuilder::build);
        assert!(
            matches!(&e, Err(ConfigError::Toml { source, .. }) if source.to_string().contains("framez")),
            "{e:?}"
        );
        let e = ConfigBuilder::preset(None)
            .and_then(|b| b.set("paging.page_size=3KiB"))
            .and_then(ConfigBuilder::build);
        assert!(
            matches!(&e, Err(ConfigError::Invalid { key, .. }) if key == "paging.page_size"),
            "{e:?}"
        );
        let e = ConfigBuilder::preset(None)
            .and_then(|b| b.set("memory.frames=3"))
            .and_then(ConfigBuilder::build);
        assert!(
            matches!(&e, Err(ConfigError::Invalid { key, .. }) if key == "memory.frames"),
            "{e:?}"
        );
        assert!(matches!(
            ConfigBuilder::preset(Some("vax")),
            Err(ConfigError::UnknownPreset(_))
        ));
        let cfg = ConfigBuilder::preset(Some("riscv-sv39"))
            .and_then(ConfigBuilder::build)
            .expect("valid");
        assert!(!cfg.hardware_ad(), "RISC-V follows Svade by default");
    }

    /// Issue 12: a `--set` value is one TOML value; a line break and a new
    /// table used to be accepted and silently ignored.
    #[test]
    fn set_values_are_single_toml_values() {
        let set = |a: &str| ConfigBuilder::preset(None).and_then(|b| b.set(a));
        let get = |a: &str| set(a).and_then(ConfigBuilder::build).expect(a);
        assert_eq!(get("memory.frames=1_024").config().memory.frames, 1024);
        assert_eq!(
            get("kernel.policy=fifo").config().kernel.policy,
            SystemPolicy::Fifo
        );
        assert_eq!(
            get("kernel.policy=\"sieve\"").config().kernel.policy,
            SystemPolicy::Sieve
        );
        assert!(!get("tlb.asid_tags=false").config().tlb.asid_tags);
        assert_eq!(
            get("kernel.swap_file=/tmp/a b.swp")
                .config()
                .kernel
                .swap_file,
            Some(PathBuf::from("/tmp/a b.swp"))
        );
        for bad in [
            "kernel.policy=\"fifo\"\n[memory]\nframes=16",
            "kernel.policy=fifo\nmemory.frames=16",
            "memory.frames=16\r\n[run]",
            "kernel.policy=\"fifo\" extra",
            "kernel.policy=\"fifo",
            "tlb.levels=[1, 2",
            "run.seed={ a = 1",
        ] {
            match set(bad) {
                Err(ConfigError::Parse { origin, message }) => {
                    assert!(origin.starts_with("--set "), "{origin}");
                    assert!(
                        message.contains("one TOML value") || message.contains("single TOML value"),
                        "{bad:?}: {message}"
                    );
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    /// Issue 12: an existing swap file path is refused before the run
    /// (not overwritten and deleted), unless overwriting is allowed.
    #[test]
    fn an_existing_swap_file_is_refused_unless_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("mine");
        std::fs::write(&f, b"x").expect("write");
        let with = |sets: &[String]| {
            sets.iter()
                .try_fold(ConfigBuilder::preset(None)?, |b, s| b.set(s))
                .and_then(ConfigBuilder::build)
        };
        let file = format!("kernel.swap_file={}", f.display());
        let e = with(std::slice::from_ref(&file)).expect_err("exists");
        assert!(
            matches!(&e, ConfigError::Invalid { key, message } if key == "kernel.swap_file" && message.contains("swap_file_overwrite")),
            "{e:?}"
        );
        with(&[file, "kernel.swap_file_overwrite=true".into()]).expect("allowed");
        let dir_path = format!("kernel.swap_file={}", dir.path().display());
        let e = with(&[dir_path, "kernel.swap_file_overwrite=true".into()]).expect_err("dir");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn structure_is_chosen_and_checked_by_key() {
        let build = |sets: &[&str]| {
            let mut b = ConfigBuilder::preset(Some("classroom"));
            for s in sets {
                b = b.and_then(|b| b.set(s));
            }
            b.and_then(ConfigBuilder::build)
        };
        let key_of = |r: Result<MachineSpec, ConfigError>| match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => format!("{other:?}"),
        };
        let cfg = build(&[]).expect("valid");
        assert_eq!(cfg.structure(), StructureSpec::Radix);
        let cfg = build(&["paging.structure=inverted"]).expect("valid");
        assert_eq!(
            cfg.structure(),
            StructureSpec::Inverted {
                search: InvertedSearch::Hashed { anchors: 1024 }
            }
        );
        let cfg =
            build(&["paging.structure=inverted", "paging.inverted.search=linear"]).expect("valid");
        assert_eq!(
            cfg.structure(),
            StructureSpec::Inverted {
                search: InvertedSearch::Linear
            }
        );
        let cfg = build(&[
            "paging.structure=hashed",
            "paging.hashed.buckets=256",
            "paging.hashed.capacity=500",
        ])
        .expect("valid");
        assert_eq!(
            cfg.structure(),
            StructureSpec::Hashed {
                buckets: 256,
                capacity: 500
            }
        );
        assert_eq!(
            key_of(build(&[
                "paging.structure=hashed",
                "paging.hashed.buckets=100"
            ])),
            "paging.hashed.buckets"
        );
        assert_eq!(
            key_of(build(&[
                "paging.structure=hashed",
                "paging.hashed.capacity=0"
            ])),
            "paging.hashed.capacity"
        );
        // 10^6 elements of 24 bytes do not fit in 4 MiB.
        assert_eq!(
            key_of(build(&[
                "paging.structure=hashed",
                "paging.hashed.capacity=1000000"
            ])),
            "paging.hashed.capacity"
        );
        assert_eq!(
            key_of(build(&[
                "paging.structure=inverted",
                "paging.inverted.search=linear",
                "paging.inverted.anchors=64"
            ])),
            "paging.inverted.anchors"
        );
        assert_eq!(
            key_of(build(&[
                "paging.structure=inverted",
                "paging.inverted.anchors=3"
            ])),
            "paging.inverted.anchors"
        );
        assert_eq!(
            key_of(build(&[
                "paging.structure=inverted",
                "memory.frames=16384",
                "paging.page_size=4MiB"
            ])),
            "paging.page_size"
        );
        let e = build(&["paging.structure=btree"]);
        assert!(
            matches!(&e, Err(ConfigError::Toml { source, .. }) if source.to_string().contains("btree")),
            "{e:?}"
        );
    }

    #[test]
    fn files_merge_over_the_preset() {
        let cfg = ConfigBuilder::preset(None)
            .and_then(|b| {
                b.file(
                    "preset = \"classroom\"\n[memory]\nframes = 2048\n",
                    "f.toml",
                )
            })
            .and_then(ConfigBuilder::build)
            .expect("valid");
        assert_eq!(cfg.config().paging.arch, "x86-32");
        assert_eq!(cfg.config().memory.frames, 2048);
        assert_eq!(cfg.config().memory.latency, 100, "kept from the preset");
    }
}
