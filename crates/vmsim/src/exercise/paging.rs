//! Address-translation exercises: page tables built in a physical-memory
//! image with the format's real entries, and virtual addresses to translate
//! (and, optionally, the value a load finds there), as in OSTEP's
//! `paging-linear-translate.py` and `paging-multilevel-translate.py`.
//!
//! The tables are made level by level from the root: at each table some
//! entries are valid (pointing to a new table, or at the last level to a
//! data page), the others are not. In a classroom format an invalid entry
//! holds random bits with the valid bit clear, as OSTEP's dumps do (`0x7f`),
//! so the valid bit must be read; in a real format it is zero. Frames are
//! drawn at random from the image. Addresses are drawn mostly from mapped
//! pages (with a random offset), the rest from anywhere in the (canonical)
//! address space, so some fault. With a load size, the bytes the loads read
//! are random: whole data pages for pages of up to 256 bytes, otherwise the
//! 16-byte lines the loads touch.

use crate::addr::{PhysAddr, VirtAddr};
use crate::paging::{Canonical, Encoding, Format, PteFlags};
use crate::phys::PhysMem;

use super::{ExerciseError, Rng, distinct, percent};

/// OSTEP's multi-level classroom machine (`paging-multilevel-translate.py`):
/// 15-bit addresses, 32-byte pages, a 32-entry page directory and 32-entry
/// page tables of 1-byte entries (valid bit 7, frame number in bits 0-6),
/// 4 KiB of physical memory.
pub const CLASSROOM_15: &str = "name = \"classroom-15\"\nva_bits = 15\npage_size = 32\nlevel_bits = [5, 5]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 7\n";

/// A random one-level classroom format, as TOML: pages of 16 to 256 bytes,
/// 8 to 32 page-table entries of one byte (valid bit 7, the frame number
/// in the low bits), a physical space four times the virtual one.
#[must_use]
pub fn one_level_format(rng: &mut Rng) -> String {
    let offset_bits = 4 + rng.below(5); // 16 B .. 256 B pages
    let vpn_bits = 3 + rng.below(3); // 8 .. 32 entries
    let frame_bits = vpn_bits + 2;
    let va_bits = offset_bits + vpn_bits;
    format!(
        "name = \"classroom-{va_bits}\"\nva_bits = {va_bits}\npage_size = {}\nlevel_bits = [{vpn_bits}]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = {frame_bits}\n",
        1u64 << offset_bits
    )
}

/// What to make.
#[derive(Debug, Clone)]
pub struct PagingSpec {
    /// The paging format (built in or classroom).
    pub format: Format,
    /// Addresses to translate.
    pub questions: usize,
    /// Bytes each question also loads (1, 2, 4, 8), if any.
    pub load_size: Option<u32>,
    /// Bytes of physical memory; `None`: the whole physical space of a
    /// format of at most 16 physical-address bits, else room for the
    /// tables and pages with slack.
    pub memory_bytes: Option<u64>,
}

/// A made exercise.
#[derive(Debug, Clone)]
pub struct PagingExercise {
    /// The physical memory image.
    pub memory: PhysMem,
    /// The root table's physical address (CR3, satp, the PTBR).
    pub root: PhysAddr,
    /// The addresses to translate.
    pub addresses: Vec<VirtAddr>,
    /// The load size asked for, if any.
    pub load_size: Option<u32>,
    /// Every table made: its level index (root = 0) and address.
    pub tables: Vec<(usize, PhysAddr)>,
    /// Every page mapped: virtual page and physical frame.
    pub mappings: Vec<(VirtAddr, PhysAddr)>,
}

/// How many valid entries a table of level `idx` gets: in a classroom
/// format (at most 64 entries per table) half a leaf table (at most 8) and a
/// quarter of a directory (at most 4); in a real format 4 pages per leaf
/// table and 2 tables per directory, so a dump stays readable.
fn valid_entries(fmt: &Format, idx: usize) -> u64 {
    let entries = 1u64 << fmt.levels()[idx].bits;
    let last = idx + 1 == fmt.levels().len();
    let k = match (last, entries <= 64) {
        (true, true) => (entries / 2).min(8),
        (false, true) => (entries / 4).min(4),
        (true, false) => 4,
        (false, false) => 2,
    };
    k.max(1)
}

/// The frames a whole tree of tables and pages needs.
fn frames_needed(fmt: &Format) -> u64 {
    let page = fmt.page_size().bytes();
    let mut tables_at_level = 1u64;
    let mut frames = 0u64;
    for idx in 0..fmt.levels().len() {
        frames += tables_at_level * fmt.table_bytes(idx).div_ceil(page);
        tables_at_level *= valid_entries(fmt, idx);
    }
    frames + tables_at_level
}

/// Which frames of the image are taken.
struct Frames {
    used: Vec<bool>,
}

impl Frames {
    /// The first of `n` free contiguous frames, at a random place.
    fn take(&mut self, rng: &mut Rng, n: u64) -> Option<u64> {
        let total = self.used.len() as u64;
        if n == 0 || n > total {
            return None;
        }
        let free = |u: &[bool], s: u64| u[s as usize..(s + n) as usize].iter().all(|&x| !x);
        let start = (0..64)
            .map(|_| rng.below(total - n + 1))
            .find(|&s| free(&self.used, s))
            .or_else(|| (0..=total - n).find(|&s| free(&self.used, s)))?;
        self.used[start as usize..(start + n) as usize].fill(true);
        Some(start)
    }
}

struct Builder<'a> {
    fmt: &'a Format,
    rng: &'a mut Rng,
    mem: PhysMem,
    frames: Frames,
    tables: Vec<(usize, PhysAddr)>,
    mappings: Vec<(VirtAddr, PhysAddr)>,
}

fn no_room(fmt: &Format, mem: u64) -> ExerciseError {
    ExerciseError::NoRoom(format!(
        "{} bytes of physical memory cannot hold the tables and pages of a {} exercise; give more memory",
        mem,
        fmt.name()
    ))
}

fn encode_error(e: impl std::fmt::Display) -> ExerciseError {
    ExerciseError::NoRoom(format!("an entry cannot hold the frame chosen: {e}"))
}

impl Builder<'_> {
    fn write_entry(&mut self, at: u64, raw: u64) -> Result<(), ExerciseError> {
        self.mem
            .write_le(PhysAddr::new_unchecked(at), self.fmt.entry_bytes(), raw)
            .map_err(|_| no_room(self.fmt, self.mem.size()))
    }

    fn table(&mut self, idx: usize) -> Result<PhysAddr, ExerciseError> {
        let page = self.fmt.page_size().bytes();
        let n = self.fmt.table_bytes(idx).div_ceil(page);
        let f = self
            .frames
            .take(self.rng, n)
            .ok_or_else(|| no_room(self.fmt, self.mem.size()))?;
        let pa = PhysAddr::new_unchecked(f * page);
        self.tables.push((idx, pa));
        Ok(pa)
    }

    /// Random bits with the valid bit clear, for an invalid classroom entry.
    fn garbage(&mut self) -> u64 {
        match self.fmt.encoding() {
            Encoding::User(b) => {
                let width = 8 * b.entry_bytes;
                let bits = if width >= 64 {
                    self.rng.next_u64()
                } else {
                    self.rng.below(1 << width)
                };
                bits & !(1 << b.valid)
            }
            _ => 0,
        }
    }

    fn fill(&mut self, idx: usize, table: PhysAddr, prefix: u64) -> Result<(), ExerciseError> {
        let level = self.fmt.levels()[idx];
        let entries = 1u64 << level.bits;
        // Canonical sign-extended formats: stay in the lower half.
        let usable = if idx == 0 && self.fmt.canonical() == Canonical::SignExtend {
            entries / 2
        } else {
            entries
        };
        let k = valid_entries(self.fmt, idx).min(usable);
        let chosen = distinct(self.rng, usable, k);
        let last = idx + 1 == self.fmt.levels().len();
        let eb = u64::from(self.fmt.entry_bytes());
        let page = self.fmt.page_size().bytes();
        for i in 0..entries {
            let at = table.as_u64() + i * eb;
            if !chosen.contains(&i) {
                let g = self.garbage();
                if g != 0 {
                    self.write_entry(at, g)?;
                }
                continue;
            }
            let va = prefix | (i << level.shift);
            let raw = if last {
                let f = self
                    .frames
                    .take(self.rng, 1)
                    .ok_or_else(|| no_room(self.fmt, self.mem.size()))?;
                let frame = PhysAddr::new_unchecked(f * page);
                let mut flags = PteFlags::READ | PteFlags::USER | PteFlags::ACCESSED;
                if percent(self.rng, 50) {
                    flags |= PteFlags::WRITE;
                }
                if percent(self.rng, 25) {
                    flags |= PteFlags::EXEC;
                }
                self.mappings.push((VirtAddr::new(va), frame));
                self.fmt
                    .encode_leaf(idx, frame, flags)
                    .map_err(encode_error)?
            } else {
                let sub = self.table(idx + 1)?;
                let raw = self.fmt.encode_table(idx, sub).map_err(encode_error)?;
                self.fill(idx + 1, sub, va)?;
                raw
            };
            self.write_entry(at, raw)?;
        }
        Ok(())
    }

    fn random_bytes(&mut self, at: u64, len: u64) -> Result<(), ExerciseError> {
        let bytes: Vec<u8> = (0..len).map(|_| self.rng.below(256) as u8).collect();
        self.mem
            .write(PhysAddr::new_unchecked(at), &bytes)
            .map_err(|_| no_room(self.fmt, self.mem.size()))
    }
}

/// Makes a paging exercise with `rng` (see the module docs).
pub fn generate(spec: &PagingSpec, rng: &mut Rng) -> Result<PagingExercise, ExerciseError> {
    let fmt = &spec.format;
    if spec.questions == 0 || spec.questions > 100 {
        return Err(ExerciseError::Parameter(format!(
            "{} addresses: ask for 1 to 100",
            spec.questions
        )));
    }
    if let Some(n) = spec.load_size
        && !matches!(n, 1 | 2 | 4 | 8)
    {
        return Err(ExerciseError::Parameter(format!(
            "load size {n}: expected 1, 2, 4 or 8"
        )));
    }
    let page = fmt.page_size().bytes();
    let memory = match spec.memory_bytes {
        Some(m) => m,
        None if fmt.pa_bits() <= 16 => 1 << fmt.pa_bits(),
        None => (frames_needed(fmt) * 4).max(64).next_power_of_two() * page,
    };
    if memory / page > 1 << 20 {
        return Err(ExerciseError::Parameter(format!(
            "{memory} bytes of memory is more than 2^20 pages of {page} bytes: an exercise needs far less"
        )));
    }
    if memory % page != 0 || memory < page {
        return Err(ExerciseError::Parameter(format!(
            "{memory} bytes of memory is not a whole number of {page}-byte pages"
        )));
    }
    let mem = PhysMem::new(memory).map_err(ExerciseError::Memory)?;
    let mut b = Builder {
        fmt,
        rng,
        mem,
        frames: Frames {
            used: vec![false; (memory / page) as usize],
        },
        tables: Vec::new(),
        mappings: Vec::new(),
    };
    let root = b.table(0)?;
    b.fill(0, root, 0)?;

    // The questions.
    let align = u64::from(spec.load_size.unwrap_or(1));
    let space = match fmt.canonical() {
        Canonical::SignExtend => 1u64 << (fmt.va_bits() - 1),
        Canonical::ZeroExtend if fmt.va_bits() >= 64 => u64::MAX,
        Canonical::ZeroExtend => 1u64 << fmt.va_bits(),
    };
    let mut addresses: Vec<VirtAddr> = Vec::with_capacity(spec.questions);
    for _ in 0..spec.questions {
        for _attempt in 0..16 {
            let va = if !b.mappings.is_empty() && percent(b.rng, 70) {
                let (page_va, _) = b.mappings[b.rng.below(b.mappings.len() as u64) as usize];
                page_va.as_u64() + b.rng.below(page) / align * align
            } else {
                b.rng.below(space) / align * align
            };
            let va = VirtAddr::new(va);
            if !addresses.contains(&va) {
                addresses.push(va);
                break;
            }
        }
    }

    // What the loads read.
    if spec.load_size.is_some() {
        if page <= 256 {
            let frames: Vec<u64> = b.mappings.iter().map(|m| m.1.as_u64()).collect();
            for f in frames {
                b.random_bytes(f, page)?;
            }
        } else {
            let mask = page - 1;
            let hits: Vec<u64> = addresses
                .iter()
                .filter_map(|va| {
                    let base = va.as_u64() & !mask;
                    b.mappings
                        .iter()
                        .find(|m| m.0.as_u64() == base)
                        .map(|m| m.1.as_u64() + (va.as_u64() & mask))
                })
                .collect();
            for pa in hits {
                let line = pa & !15;
                let end = (pa + align).next_multiple_of(16);
                b.random_bytes(line, end - line)?;
            }
        }
    }
    Ok(PagingExercise {
        memory: b.mem,
        root,
        addresses,
        load_size: spec.load_size,
        tables: b.tables,
        mappings: b.mappings,
    })
}

/// Bytes of `mem` from `start` for `len` as hex lines of `width` bytes,
/// `hexdump`-style: a line equal to the one before it is left out, and a
/// `*` line stands for the run left out. Each line is `ADDR: xx xx ...`.
#[must_use]
pub fn hexdump(mem: &PhysMem, start: u64, len: u64, width: u64) -> Vec<String> {
    let end = start.saturating_add(len).min(mem.size());
    let digits = format!("{:x}", mem.size().saturating_sub(1)).len().max(3);
    let mut out = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    let mut starred = false;
    let mut at = start;
    while at < end {
        let n = width.min(end - at) as usize;
        let mut buf = vec![0u8; n];
        if mem.read(PhysAddr::new_unchecked(at), &mut buf).is_err() {
            break;
        }
        if prev.as_ref() == Some(&buf) {
            if !starred {
                out.push("*".to_owned());
                starred = true;
            }
        } else {
            let hex: Vec<String> = buf.iter().map(|b| format!("{b:02x}")).collect();
            out.push(format!("{at:0digits$x}: {}", hex.join(" ")));
            starred = false;
            prev = Some(buf);
        }
        at += n as u64;
    }
    out.push(format!("{end:0digits$x}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::walk;

    fn classroom() -> Format {
        Format::from_toml(CLASSROOM_15, "classroom-15").expect("valid")
    }

    #[test]
    fn same_seed_same_exercise() {
        let spec = PagingSpec {
            format: classroom(),
            questions: 5,
            load_size: Some(1),
            memory_bytes: None,
        };
        let a = generate(&spec, &mut Rng::new(42)).expect("exercise");
        let b = generate(&spec, &mut Rng::new(42)).expect("exercise");
        assert_eq!(a.addresses, b.addresses);
        assert_eq!(a.root, b.root);
        assert_eq!(
            hexdump(&a.memory, 0, 4096, 32),
            hexdump(&b.memory, 0, 4096, 32)
        );
        let c = generate(&spec, &mut Rng::new(43)).expect("exercise");
        assert_ne!(
            hexdump(&a.memory, 0, 4096, 32),
            hexdump(&c.memory, 0, 4096, 32)
        );
    }

    #[test]
    fn every_mapping_walks_to_its_frame() {
        for name in ["x86-32", "x86-64", "sv39", "sv32"] {
            let fmt = Format::by_name(name).expect("format");
            let spec = PagingSpec {
                format: fmt.clone(),
                questions: 8,
                load_size: Some(4),
                memory_bytes: None,
            };
            let e = generate(&spec, &mut Rng::new(9)).expect("exercise");
            assert!(!e.mappings.is_empty());
            for (va, frame) in &e.mappings {
                let t = walk(&fmt, &e.memory, e.root, *va, |_| {}).expect("mapped");
                assert_eq!(t.frame, *frame, "{name} {va}");
            }
            assert_eq!(e.addresses.len(), 8);
        }
        let fmt = classroom();
        let e = generate(
            &PagingSpec {
                format: fmt.clone(),
                questions: 3,
                load_size: None,
                memory_bytes: None,
            },
            &mut Rng::new(1),
        )
        .expect("exercise");
        assert_eq!(e.memory.size(), 4096);
        for (va, frame) in &e.mappings {
            let t = walk(&fmt, &e.memory, e.root, *va, |_| {}).expect("mapped");
            assert_eq!(t.frame, *frame);
        }
    }

    #[test]
    fn hexdump_collapses_repeated_lines() {
        let mut m = PhysMem::new(64).expect("mem");
        m.write(PhysAddr::new_unchecked(48), &[1, 2])
            .expect("write");
        let d = hexdump(&m, 0, 64, 16);
        assert_eq!(
            d,
            [
                "000: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
                "*",
                "030: 01 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
                "040"
            ]
        );
    }

    #[test]
    fn one_level_formats_are_valid() {
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let t = one_level_format(&mut rng);
            let f = Format::from_toml(&t, "t").expect("valid");
            assert_eq!(f.levels().len(), 1);
            assert!(f.pa_bits() <= 15);
        }
    }
}
