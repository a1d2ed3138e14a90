//! Named TLB configurations: [`TLB_PRESETS`] and [`TlbConfig::preset`].
//!
//! Each preset states where its numbers come from. Hardware vendors publish
//! TLB sizes but not paging-structure-cache sizes; where a preset has walk
//! caches, their sizes are the commonly measured ones and are labelled as such.
//!
//! This module owns the preset table only.

use crate::addr::PageSize;

use super::Replacement;
use super::tlb_config::{
    Holds, TlbArrayConfig, TlbConfig, TlbConfigError, TlbLevelConfig, WalkCacheLevelConfig,
};

/// A named configuration.
#[derive(Clone, Copy, Debug)]
pub struct TlbPreset {
    /// The name users type (`--tlb x86-64`).
    pub name: &'static str,
    /// One line saying what it models.
    pub summary: &'static str,
    build: fn() -> TlbConfig,
}

impl TlbPreset {
    /// The configuration.
    #[must_use]
    pub fn config(&self) -> TlbConfig {
        (self.build)()
    }
}

/// Every preset, the default (`x86-64`) first.
pub const TLB_PRESETS: &[TlbPreset] = &[
    TlbPreset {
        name: "x86-64",
        summary: "Skylake-like: L1 dTLB 64x4-way 4K + 32x4-way 2M + 4 1G, L1 iTLB 128x8-way 4K + 8 2M, \
                  L2 1536x12-way 4K/2M + 16x4-way 1G, PCID tags, walk caches 2/4/32",
        build: x86_64,
    },
    TlbPreset {
        name: "core-i7",
        summary: "the course notes' Core i7: 64-entry data and 128-entry instruction TLB (4-way), \
                  512-entry shared L2 (4-way), 4 KiB entries, no walk caches",
        build: core_i7,
    },
    TlbPreset {
        name: "classroom",
        summary: "one 16-entry fully associative LRU TLB holding every page size, ASID-tagged, no walk caches",
        build: classroom,
    },
    TlbPreset {
        name: "riscv-sv39",
        summary: "SiFive U74-like: 40-entry fully associative L1 I and D TLBs, 512-entry direct-mapped L2, \
                  ASID tags, walk caches 2/8",
        build: riscv_sv39,
    },
];

impl TlbConfig {
    /// The preset called `name` (see [`TLB_PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, TlbConfigError> {
        TLB_PRESETS
            .iter()
            .find(|p| p.name == name)
            .map(TlbPreset::config)
            .ok_or_else(|| TlbConfigError::UnknownPreset {
                name: name.to_owned(),
                known: TLB_PRESETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl Default for TlbPreset {
    fn default() -> Self {
        TLB_PRESETS[0]
    }
}

fn array(
    name: &str,
    holds: Holds,
    entries: u32,
    ways: Option<u32>,
    sizes: &[PageSize],
) -> TlbArrayConfig {
    TlbArrayConfig {
        name: name.to_owned(),
        holds,
        entries,
        ways,
        replacement: Replacement::Lru,
        page_sizes: sizes.to_vec(),
    }
}

const K4: PageSize = PageSize::SIZE_4K;
const M2: PageSize = PageSize::SIZE_2M;
const M4: PageSize = PageSize::SIZE_4M;
const G1: PageSize = PageSize::SIZE_1G;

/// Intel Skylake client, from the Intel 64 and IA-32 Architectures
/// Optimization Reference Manual (Skylake microarchitecture, TLB table):
/// DTLB 4K 64 entries 4-way, 2M/4M 32 entries 4-way, 1G 4 entries;
/// ITLB 4K 128 entries 8-way, 2M/4M 8 entries; STLB 4K/2M 1536 entries
/// 12-way, 1G 16 entries 4-way. L1 latency 1 cycle, STLB hit 9 cycles.
/// Replacement is modelled as tree-PLRU (Intel does not document it; PLRU is
/// the usual assumption). Paging-structure caches (not published; the usual
/// measured sizes): PML4E 2, PDPTE 4, PDE 32 entries.
fn x86_64() -> TlbConfig {
    let plru = |mut a: TlbArrayConfig| {
        a.replacement = Replacement::TreePlru;
        a
    };
    TlbConfig {
        asid_tags: true,
        seed: 0,
        levels: vec![
            TlbLevelConfig {
                latency: 1,
                arrays: vec![
                    plru(array("L1 dTLB 4K", Holds::Data, 64, Some(4), &[K4])),
                    plru(array("L1 dTLB 2M", Holds::Data, 32, Some(4), &[M2])),
                    plru(array("L1 dTLB 1G", Holds::Data, 4, None, &[G1])),
                    plru(array("L1 iTLB 4K", Holds::Instruction, 128, Some(8), &[K4])),
                    plru(array("L1 iTLB 2M", Holds::Instruction, 8, None, &[M2])),
                ],
            },
            TlbLevelConfig {
                latency: 9,
                arrays: vec![
                    plru(array(
                        "STLB 4K/2M",
                        Holds::Unified,
                        1536,
                        Some(12),
                        &[K4, M2],
                    )),
                    plru(array("STLB 1G", Holds::Unified, 16, Some(4), &[G1])),
                ],
            },
        ],
        walk_cache: vec![
            WalkCacheLevelConfig {
                depth: 1,
                entries: 2,
            },
            WalkCacheLevelConfig {
                depth: 2,
                entries: 4,
            },
            WalkCacheLevelConfig {
                depth: 3,
                entries: 32,
            },
        ],
    }
}

/// The course notes' Intel Core i7 (Nehalem): per core a 64-entry data TLB
/// and a 128-entry instruction TLB, and a 512-entry shared second level,
/// all 4-way and holding 4 KiB entries (larger pages are splintered into
/// 4 KiB entries). Latencies 1 and 7 cycles. The notes give no walk caches.
fn core_i7() -> TlbConfig {
    TlbConfig {
        asid_tags: true,
        seed: 0,
        levels: vec![
            TlbLevelConfig {
                latency: 1,
                arrays: vec![
                    array("L1 dTLB", Holds::Data, 64, Some(4), &[K4]),
                    array("L1 iTLB", Holds::Instruction, 128, Some(4), &[K4]),
                ],
            },
            TlbLevelConfig {
                latency: 7,
                arrays: vec![array("L2 TLB", Holds::Unified, 512, Some(4), &[K4])],
            },
        ],
        walk_cache: Vec::new(),
    }
}

/// The textbook TLB: 16 entries, fully associative, true LRU, every common
/// page size, one cycle, ASID-tagged.
fn classroom() -> TlbConfig {
    TlbConfig {
        asid_tags: true,
        seed: 0,
        levels: vec![TlbLevelConfig {
            latency: 1,
            arrays: vec![array("TLB", Holds::Unified, 16, None, &[K4, M2, M4, G1])],
        }],
        walk_cache: Vec::new(),
    }
}

/// RISC-V leaves TLB organisation to the implementation; this follows the
/// SiFive U74 core manual: 40-entry fully associative L1 instruction and
/// data TLBs and a 512-entry direct-mapped L2 TLB, all holding 4 KiB, 2 MiB
/// and 1 GiB pages. ASID tags (satp.ASID), global entries from the PTE G bit.
/// Walk caches in the style of Rocket's PTE cache: 2 root-level and 8
/// second-level entries. Latencies 1 and 5 cycles (assumed).
fn riscv_sv39() -> TlbConfig {
    TlbConfig {
        asid_tags: true,
        seed: 0,
        levels: vec![
            TlbLevelConfig {
                latency: 1,
                arrays: vec![
                    array("L1 dTLB", Holds::Data, 40, None, &[K4, M2, G1]),
                    array("L1 iTLB", Holds::Instruction, 40, None, &[K4, M2, G1]),
                ],
            },
            TlbLevelConfig {
                latency: 5,
                arrays: vec![array("L2 TLB", Holds::Unified, 512, Some(1), &[K4, M2, G1])],
            },
        ],
        walk_cache: vec![
            WalkCacheLevelConfig {
                depth: 1,
                entries: 2,
            },
            WalkCacheLevelConfig {
                depth: 2,
                entries: 8,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_toml() {
        for preset in TLB_PRESETS {
            let config = preset.config();
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            let text = config.to_toml_string().expect("serialises");
            assert_eq!(
                TlbConfig::from_toml_str(&text).as_ref(),
                Ok(&config),
                "{}",
                preset.name
            );
        }
    }

    #[test]
    fn preset_numbers_match_their_documentation() {
        let i7 = TlbConfig::preset("core-i7").expect("exists");
        let entries: Vec<u32> = i7
            .levels
            .iter()
            .flat_map(|l| l.arrays.iter().map(|a| a.entries))
            .collect();
        assert_eq!(entries, [64, 128, 512]);
        let classroom = TlbConfig::preset("classroom").expect("exists");
        assert_eq!(classroom.levels.len(), 1);
        assert_eq!(
            (
                classroom.levels[0].arrays[0].entries,
                classroom.levels[0].arrays[0].ways()
            ),
            (16, 16)
        );
        let sky = TlbConfig::preset("x86-64").expect("exists");
        let l2 = &sky.levels[1].arrays[0];
        assert_eq!(
            (l2.entries, l2.ways(), sky.levels[1].latency),
            (1536, 12, 9)
        );
        assert!(TlbConfig::preset("riscv-sv39").is_ok());
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = TlbConfig::preset("pentium").expect_err("no such preset");
        assert!(
            err.to_string()
                .contains("x86-64, core-i7, classroom, riscv-sv39"),
            "{err}"
        );
    }
}
