//! The machine a configuration describes, resolved once: the paging format
//! loaded (a `paging.format_file` is read from disk here and nowhere else),
//! the data page size, who sets accessed/dirty bits, the translation
//! structure with its sizes, and the TLB hierarchy for the format.
//!
//! [`Config`] is the TOML shape a user writes; a [`MachineSpec`] is what
//! the machine is built from. Every check that needs the format runs here,
//! so nothing downstream re-reads or re-parses the configuration, and a
//! spec that exists is one a machine can be built from.

use crate::addr::PageSize;
use crate::mmu::TlbConfig;
use crate::paging::inverted::InvertedSearch;
use crate::paging::{Encoding, Format, StructureSpec};

use super::{AdMode, Config, ConfigError, InvertedSearchKind, MAX_FRAMES, StructureKind, invalid};

/// A checked configuration and the machine it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    config: Config,
    format: Format,
    page_size: PageSize,
    hardware_ad: bool,
    structure: StructureSpec,
    tlb: TlbConfig,
}

impl MachineSpec {
    /// Resolves and checks `config`, including what it asks of the host
    /// (a `kernel.swap_file` that exists is refused unless
    /// `kernel.swap_file_overwrite`). Errors name the key.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let spec = Self::resolve(config)?;
        spec.check_swap_file()?;
        Ok(spec)
    }

    /// Resolves and checks `config` as a machine, without looking at the
    /// host: for a machine restored from a checkpoint, whose swap file (if
    /// any) is its own.
    pub(crate) fn resolve(config: Config) -> Result<Self, ConfigError> {
        let format = load_format(&config)?;
        let page_size = page_size(&config, &format)?;
        let hardware_ad = match config.paging.ad_bits {
            AdMode::Hardware => true,
            AdMode::Svade => false,
            AdMode::Auto => !matches!(format.encoding(), Encoding::RiscV),
        };
        check_machine(&config, &format, page_size)?;
        let structure = structure(&config, &format, page_size)?;
        let tlb = tlb_for(&config.tlb, &format);
        let shifts: Vec<u32> = format.levels().iter().map(|l| l.shift).collect();
        crate::mmu::Tlb::new(&tlb, &shifts).map_err(ConfigError::Tlb)?;
        Ok(Self {
            config,
            format,
            page_size,
            hardware_ad,
            structure,
            tlb,
        })
    }

    /// The configuration as written (after layering).
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The paging format (`paging.arch`, or the `paging.format_file` as it
    /// was when the spec was built).
    #[must_use]
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The size of data pages: the format's base page or a superpage size.
    #[must_use]
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Whether the MMU sets accessed and dirty bits itself (else Svade faults).
    #[must_use]
    pub fn hardware_ad(&self) -> bool {
        self.hardware_ad
    }

    /// The translation structure with its sizes resolved.
    #[must_use]
    pub fn structure(&self) -> StructureSpec {
        self.structure
    }

    /// The TLB hierarchy for the format: page-walk caches for depths the
    /// format does not have (a PML4-entry cache on a 3-level Sv39 walk) are
    /// left out, so switching `paging.arch` keeps a preset's TLB usable.
    #[must_use]
    pub fn tlb(&self) -> &TlbConfig {
        &self.tlb
    }

    /// Physical memory in frames of the format's base page.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.config.memory.frames
    }

    /// Bytes of physical memory (checked not to overflow when resolved).
    #[must_use]
    pub fn memory_bytes(&self) -> u64 {
        self.config.memory.frames * self.format.page_size().bytes()
    }

    /// The configuration as TOML text (what checkpoints store).
    #[must_use]
    pub fn to_toml(&self) -> String {
        self.config.to_toml()
    }

    fn check_swap_file(&self) -> Result<(), ConfigError> {
        let k = &self.config.kernel;
        if let Some(path) = &k.swap_file
            && let Ok(meta) = std::fs::symlink_metadata(path)
        {
            // Checked again, atomically, when the file is created.
            if !meta.file_type().is_file() {
                return Err(invalid(
                    "kernel.swap_file",
                    format!(
                        "{} is not a regular file: vmsim never writes over it",
                        path.display()
                    ),
                ));
            }
            if !k.swap_file_overwrite {
                return Err(invalid(
                    "kernel.swap_file",
                    format!(
                        "{} exists: vmsim does not overwrite it (choose another path, or set kernel.swap_file_overwrite = true)",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The paging format, read from its file once.
fn load_format(config: &Config) -> Result<Format, ConfigError> {
    match &config.paging.format_file {
        Some(path) => Format::from_toml_file(path).map_err(|source| ConfigError::Format {
            key: "paging.format_file",
            source,
        }),
        None => Format::by_name(&config.paging.arch).map_err(|source| ConfigError::Format {
            key: "paging.arch",
            source,
        }),
    }
}

fn page_size(config: &Config, fmt: &Format) -> Result<PageSize, ConfigError> {
    let Some(bytes) = config.paging.page_size else {
        return Ok(fmt.page_size());
    };
    let size = PageSize::from_bytes(bytes)
        .map_err(|_| invalid("paging.page_size", format!("{bytes} is not a power of two")))?;
    if fmt.level_for_size(size).is_none() {
        let sizes: Vec<String> = fmt.page_sizes().iter().map(ToString::to_string).collect();
        return Err(invalid(
            "paging.page_size",
            format!(
                "{} has no {size} pages (it has {})",
                fmt.name(),
                sizes.join(", ")
            ),
        ));
    }
    Ok(size)
}

/// Values that deserialize but cannot work.
fn check_machine(config: &Config, fmt: &Format, page: PageSize) -> Result<(), ConfigError> {
    let frame = fmt.page_size();
    let frames = config.memory.frames;
    let frames_per_page = page.bytes() / frame.bytes();
    if frames < 16 * frames_per_page {
        return Err(invalid(
            "memory.frames",
            format!(
                "{frames} frames is too small: at least 16 pages of {page} ({} frames) are needed",
                16 * frames_per_page
            ),
        ));
    }
    if frames > MAX_FRAMES {
        return Err(invalid(
            "memory.frames",
            format!(
                "{frames} frames is more than the {MAX_FRAMES} a simulation keeps metadata for on this host"
            ),
        ));
    }
    if config
        .kernel
        .swap_slots
        .is_some_and(|s| u64::from(s) > MAX_FRAMES)
    {
        return Err(invalid(
            "kernel.swap_slots",
            format!("at most {MAX_FRAMES} slots"),
        ));
    }
    let bytes = frames.checked_mul(frame.bytes());
    if bytes.is_none_or(|b| b > crate::phys::MAX_MEM_BYTES) {
        return Err(invalid(
            "memory.frames",
            "more than 16 TiB of memory is not supported",
        ));
    }
    if fmt.pa_bits() < 64 && bytes.is_some_and(|b| b > 1u64 << fmt.pa_bits()) {
        return Err(invalid(
            "memory.frames",
            format!(
                "{} addresses only 2^{} bytes of physical memory",
                fmt.name(),
                fmt.pa_bits()
            ),
        ));
    }
    if config.run.quantum == 0 {
        return Err(invalid(
            "run.quantum",
            "a time slice needs at least one reference",
        ));
    }
    if config.memory.latency == 0 {
        return Err(invalid(
            "memory.latency",
            "a memory reference takes at least one cycle",
        ));
    }
    config
        .checkpoint
        .validate()
        .map_err(|(key, message)| invalid(key, message))?;
    config
        .migrate
        .validate()
        .map_err(|(key, message)| invalid(key, message))?;
    Ok(())
}

/// The translation structure with its sizes resolved (defaults filled in
/// from the memory size) and checked. A section for a structure that is not
/// the one chosen is refused, not ignored: `[paging.hashed]` under
/// `structure = "radix"` would otherwise look like it took effect.
fn structure(config: &Config, fmt: &Format, page: PageSize) -> Result<StructureSpec, ConfigError> {
    let paging = &config.paging;
    let unused = |key: &str, wanted: &str| {
        invalid(
            key,
            format!(
                "only used with paging.structure = \"{wanted}\" (this machine's is \"{}\"): drop it or change the structure",
                paging.structure.name()
            ),
        )
    };
    if paging.inverted.is_some() && paging.structure != StructureKind::Inverted {
        return Err(unused("paging.inverted", "inverted"));
    }
    if paging.hashed.is_some() && paging.structure != StructureKind::Hashed {
        return Err(unused("paging.hashed", "hashed"));
    }
    let frames = config.memory.frames;
    let default_slots = frames
        .checked_next_power_of_two()
        .unwrap_or(1 << 31)
        .min(1 << 31);
    let pow2 = |key: &str, n: u64| {
        if n.is_power_of_two() && n <= 1 << 31 {
            Ok(n)
        } else {
            Err(invalid(
                key,
                format!("{n} is not a power of two between 1 and 2^31"),
            ))
        }
    };
    let spec = match paging.structure {
        StructureKind::Radix => return Ok(StructureSpec::Radix),
        StructureKind::Inverted => {
            let sec = paging.inverted.clone().unwrap_or_default();
            let search = match (sec.search, sec.anchors) {
                (InvertedSearchKind::Linear, Some(_)) => {
                    return Err(invalid(
                        "paging.inverted.anchors",
                        "a linear search has no hash anchor table: drop anchors or use search = \"hashed\"",
                    ));
                }
                (InvertedSearchKind::Linear, None) => InvertedSearch::Linear,
                (InvertedSearchKind::Hashed, a) => InvertedSearch::Hashed {
                    anchors: pow2("paging.inverted.anchors", a.unwrap_or(default_slots))?,
                },
            };
            StructureSpec::Inverted { search }
        }
        StructureKind::Hashed => {
            let sec = paging.hashed.clone().unwrap_or_default();
            let buckets = pow2(
                "paging.hashed.buckets",
                sec.buckets.unwrap_or(default_slots),
            )?;
            let capacity = sec.capacity.unwrap_or(frames.saturating_mul(2));
            if capacity == 0 || capacity > crate::paging::hashed::MAX_ENTRIES {
                return Err(invalid(
                    "paging.hashed.capacity",
                    format!(
                        "{capacity} elements: expected 1 to {}",
                        crate::paging::hashed::MAX_ENTRIES
                    ),
                ));
            }
            StructureSpec::Hashed { buckets, capacity }
        }
    };
    let frame = fmt.page_size();
    if page != frame {
        return Err(invalid(
            "paging.page_size",
            format!(
                "an {} page table maps {frame} pages only (one page size per table)",
                spec.name()
            ),
        ));
    }
    let key = match spec {
        StructureSpec::Hashed { .. } => "paging.hashed.capacity",
        _ => "paging.structure",
    };
    let bytes = spec
        .region_bytes(frames, frame)
        .map_err(|source| ConfigError::Table {
            key,
            source: Box::new(source),
        })?;
    let reserved = bytes.div_ceil(frame.bytes());
    if reserved + 16 > frames {
        return Err(invalid(
            key,
            format!(
                "the {} page table takes {reserved} of the {frames} frames, leaving fewer than 16",
                spec.name()
            ),
        ));
    }
    Ok(spec)
}

fn tlb_for(tlb: &TlbConfig, fmt: &Format) -> TlbConfig {
    let mut tlb = tlb.clone();
    let levels = fmt.levels().len();
    tlb.walk_cache.retain(|w| (w.depth as usize) < levels);
    tlb
}
