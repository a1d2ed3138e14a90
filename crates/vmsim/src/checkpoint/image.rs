//! What a checkpoint file holds, section by section, and how a simulation
//! is written into one and rebuilt from a chain of them.
//!
//! | section | payload |
//! |---|---|
//! | `HEAD` | [`Header`], postcard |
//! | `CONF` | the configuration, TOML text |
//! | `SCEN` | the scenario and each process's input position, postcard |
//! | `MACH` | the machine state (MMU, kernel, scheduler, counters), postcard, zstd |
//! | `PAGE` | memory chunks: `n_data u64, n_zero u64, data indices [u64], zero indices [u64], n_data × 4096 bytes` |
//! | `SWAP` | swap slots: `page_bytes u64, n u64, slots [u32], n × page_bytes bytes` |
//!
//! A full checkpoint's `PAGE` holds every stored (non-zero) chunk of
//! memory and its `SWAP` every slot in use; an increment's hold the chunks
//! and slots changed since its parent (a chunk that became zero is listed
//! as zero). Restoring applies the chain's `PAGE`/`SWAP` sections oldest
//! first (the newest version of each chunk wins) and takes everything else
//! from the checkpoint restored to.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use vmsim_trace::scenario::Scenario;

use crate::config::{Config, MachineSpec};
use crate::phys::{CHUNK_BYTES, DirtyChunks, PhysMem};
use crate::sim::inputs::{self, InputPosition};
use crate::sim::{Machine, SimError, Simulation};

use super::format::{self, Reader, SectionHeader, Writer, tag};
use super::{CheckpointError, Header};

/// zstd level of the machine-state section: it is mostly zeros and small integers.
const MACH_LEVEL: i32 = 3;

/// The memory chunks and swap slots one checkpoint stores.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    /// Chunks with contents (written as data).
    pub data: Vec<u64>,
    /// Chunks that became zero since the parent.
    pub zero: Vec<u64>,
    /// Swap slots.
    pub swap: Vec<u32>,
}

/// Whether chunk `i` holds a non-zero byte (a stored chunk may be all
/// zero: files record contents, not how the host happens to store them).
fn has_data(mem: &PhysMem<DirtyChunks>, i: u64) -> bool {
    mem.chunk_bytes(i)
        .is_some_and(|c| c.iter().any(|&b| b != 0))
}

/// Every chunk with a non-zero byte, in order.
fn nonzero_chunks(mem: &PhysMem<DirtyChunks>) -> Vec<u64> {
    mem.stored_chunk_indices()
        .filter(|&i| has_data(mem, i))
        .collect()
}

impl Capture {
    /// Everything, without touching the run's change records: a standalone
    /// full checkpoint.
    pub fn everything(sim: &Simulation) -> Self {
        Self {
            data: nonzero_chunks(&sim.mem),
            zero: Vec::new(),
            swap: sim
                .m
                .kernel
                .swap_device()
                .map(|d| d.used_slots().map(|s| s.index()).collect())
                .unwrap_or_default(),
        }
    }

    /// What the next checkpoint of `sim` stores: everything (`full`), or
    /// what changed since the last one. Resets the change records, and
    /// starts them at the first checkpoint.
    pub fn take(sim: &mut Simulation, full: bool) -> Self {
        let mem = &mut sim.mem;
        let (data, zero) = if full {
            let chunks = mem.chunk_count();
            mem.bitmap_mut().track(chunks);
            (nonzero_chunks(mem), Vec::new())
        } else {
            let changed = mem.bitmap_mut().take();
            changed.into_iter().partition(|&i| has_data(mem, i))
        };
        let swap = match sim.m.kernel.swap_device_mut() {
            Some(dev) => {
                let written = dev.take_written();
                if full {
                    dev.used_slots().map(|s| s.index()).collect()
                } else {
                    written
                        .into_iter()
                        .filter(|s| dev.used_slots().any(|u| u == *s))
                        .map(|s| s.index())
                        .collect()
                }
            }
            None => Vec::new(),
        };
        Self { data, zero, swap }
    }

    /// Chunks written as data.
    #[must_use]
    pub fn data_chunks(&self) -> u64 {
        self.data.len() as u64
    }

    /// Chunks recorded as zero.
    #[must_use]
    pub fn zero_chunks(&self) -> u64 {
        self.zero.len() as u64
    }

    /// Swap slots stored.
    #[must_use]
    pub fn swap_pages(&self) -> u64 {
        self.swap.len() as u64
    }

    /// About how many bytes a file of this capture takes (page data, swap
    /// pages of `swap_page` bytes, indices, and room for the metadata):
    /// the capacity to reserve for an image encoded in memory, so a large
    /// one is not copied again and again as it grows.
    #[must_use]
    pub fn size_hint(&self, swap_page: usize) -> usize {
        let chunks = self.data.len() + self.zero.len();
        self.data.len() * CHUNK_BYTES + chunks * 8 + self.swap.len() * (swap_page + 4) + (1 << 20)
    }
}

fn io_other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Writes `sim`'s checkpoint (`header`, the state, and `capture`'s memory
/// and swap) into `out`. `page_level`: zstd level for page data, if any.
pub(crate) fn write<W: Write + Seek>(
    sim: &mut Simulation,
    header: &Header,
    capture: &Capture,
    out: W,
    page_level: Option<i32>,
    file: &str,
) -> Result<W, CheckpointError> {
    let positions = sim.input_positions()?;
    // Counts the MMU keeps apart on its hit path are not saved: added in.
    sim.m.mmu.settle_counts();
    let b = sim.mem.bitmap();
    sim.m.host_dirty = b.is_on().then(|| b.marked());
    let result = write_sections(sim, header, capture, out, page_level, &positions);
    sim.m.host_dirty = None;
    result.map_err(|source| CheckpointError::Io {
        file: file.to_string(),
        source,
    })
}

fn write_sections<W: Write + Seek>(
    sim: &Simulation,
    header: &Header,
    capture: &Capture,
    out: W,
    page_level: Option<i32>,
    positions: &[Option<InputPosition>],
) -> io::Result<W> {
    let write = || -> io::Result<W> {
        let mut w = Writer::new(out)?;
        w.section(tag::HEAD, None, |o| {
            o.write_all(&postcard::to_allocvec(header).map_err(io_other)?)
        })?;
        w.section(tag::CONF, None, |o| {
            o.write_all(sim.cfg.to_toml().as_bytes())
        })?;
        w.section(tag::SCEN, None, |o| {
            let bytes = postcard::to_allocvec(&(&*sim.scenario, &positions)).map_err(io_other)?;
            o.write_all(&bytes)
        })?;
        w.section(tag::MACH, Some(MACH_LEVEL), |o| {
            let bytes = postcard::to_allocvec(&sim.m).map_err(io_other)?;
            o.write_all(&bytes)
        })?;
        w.section(tag::PAGE, page_level, |o| write_pages(o, &sim.mem, capture))?;
        if let Some(dev) = sim.m.kernel.swap_device() {
            w.section(tag::SWAP, page_level, |o| {
                o.write_all(&(dev.page_bytes() as u64).to_le_bytes())?;
                o.write_all(&(capture.swap.len() as u64).to_le_bytes())?;
                for s in &capture.swap {
                    o.write_all(&s.to_le_bytes())?;
                }
                let mut buf = vec![0u8; dev.page_bytes()];
                for &s in &capture.swap {
                    let slot = dev
                        .slot(s)
                        .ok_or_else(|| io_other(format!("swap slot {s} out of range")))?;
                    dev.peek(slot, &mut buf).map_err(io_other)?;
                    o.write_all(&buf)?;
                }
                Ok(())
            })?;
        }
        w.finish()
    };
    write()
}

fn write_pages(o: &mut dyn Write, mem: &PhysMem<DirtyChunks>, c: &Capture) -> io::Result<()> {
    o.write_all(&(c.data.len() as u64).to_le_bytes())?;
    o.write_all(&(c.zero.len() as u64).to_le_bytes())?;
    let mut idx = Vec::with_capacity((c.data.len() + c.zero.len()) * 8);
    for i in c.data.iter().chain(&c.zero) {
        idx.extend_from_slice(&i.to_le_bytes());
    }
    o.write_all(&idx)?;
    // Chunks go straight from memory to the output, 256 (1 MiB) per
    // vectored write: a buffered output passes a write that large through
    // to one system call, so the bytes are copied once on their way (by
    // the kernel), not into a buffer first.
    const ZERO: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES];
    const BATCH: usize = 256;
    let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(BATCH);
    for batch in c.data.chunks(BATCH) {
        slices.clear();
        slices.extend(
            batch
                .iter()
                .map(|&i| io::IoSlice::new(mem.chunk_bytes(i).unwrap_or(&ZERO))),
        );
        format::write_all_vectored(o, &mut slices)?;
    }
    Ok(())
}

/// What the metadata sections of a checkpoint hold.
pub(crate) struct Meta {
    pub header: Header,
    pub config_text: String,
    pub scenario: Scenario,
    pub positions: Vec<Option<InputPosition>>,
    pub machine: Machine,
}

/// The configuration in a checkpoint's `CONF` section (the error on one
/// line: TOML's own message spans several, with a drawing of the place).
pub(crate) fn parse_config(text: &str, path: &str) -> Result<Config, CheckpointError> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        CheckpointError::file(
            path,
            format!(
                "section CONF is not a configuration{at}: {}",
                e.message().trim()
            ),
        )
    })
}

/// The machine a checkpoint's `CONF` section describes, resolved as a
/// restored machine (its swap file, if any, is its own).
pub(crate) fn restored_spec(text: &str, path: &str) -> Result<MachineSpec, CheckpointError> {
    MachineSpec::resolve(parse_config(text, path)?).map_err(|e| {
        CheckpointError::file(path, format!("its configuration cannot be used here: {e}"))
    })
}

/// The memory of a machine being rebuilt from a chain, with the machine
/// spec it was sized from (resolved once, from the first file's `CONF`;
/// a `paging.format_file` is read once per restore).
pub(crate) struct Rebuilt {
    /// The `CONF` text the spec was resolved from.
    text: String,
    /// The machine it describes.
    spec: MachineSpec,
    /// Its memory, filled in file by file.
    pub mem: PhysMem<DirtyChunks>,
}

impl Rebuilt {
    /// All-zero, untracked memory for a configuration's machine.
    fn new(config_text: &str, path: &str) -> Result<Self, CheckpointError> {
        let spec = restored_spec(config_text, path)?;
        let mut mem: PhysMem<DirtyChunks> = PhysMem::new(spec.memory_bytes())
            .map_err(|e| CheckpointError::file(path, format!("its memory cannot be built: {e}")))?;
        mem.bitmap_mut().off();
        Ok(Self {
            text: config_text.to_owned(),
            spec,
            mem,
        })
    }

    /// The spec of the configuration `text` (the one already resolved, when
    /// it is the same text).
    fn spec_for(
        self,
        text: &str,
        path: &str,
    ) -> Result<(MachineSpec, PhysMem<DirtyChunks>), CheckpointError> {
        let spec = if self.text == text {
            self.spec
        } else {
            restored_spec(text, path)?
        };
        Ok((spec, self.mem))
    }
}

/// Reads one checkpoint file: its header always; its metadata sections
/// when `meta` (else they are skipped, CRC still checked); its memory
/// chunks into `mem` (created from the file's configuration if `None`)
/// and its swap slots into `swap` when given (else skipped).
pub(crate) fn read<R: Read + Seek>(
    reader: &mut Reader<R>,
    meta: bool,
    mut mem: Option<&mut Option<Rebuilt>>,
    swap: Option<&mut BTreeMap<u32, Box<[u8]>>>,
) -> Result<(Header, Option<Meta>), CheckpointError> {
    let path = reader.path().to_string();
    let bad = |what: String| CheckpointError::file(&path, what);
    let Some(h) = reader.next()? else {
        return Err(bad("no sections".into()));
    };
    if h.tag != tag::HEAD {
        return Err(bad(format!(
            "the first section is {}, not HEAD",
            format::tag_name(h.tag)
        )));
    }
    let header: Header = decode(&reader.payload(&h)?, "HEAD", &path)?;
    super::restored_header::check_alone(&header).map_err(|e| bad(format!("section HEAD: {e}")))?;
    let mut config_text = None;
    let mut scen = None;
    let mut machine = None;
    let mut swap = swap;
    let mut seen = vec![tag::HEAD];
    while let Some(s) = reader.next()? {
        if seen.contains(&s.tag) {
            return Err(bad(format!(
                "section {} appears twice",
                format::tag_name(s.tag)
            )));
        }
        seen.push(s.tag);
        match s.tag {
            tag::CONF if meta || mem.as_ref().is_some_and(|m| m.is_none()) => {
                let text = String::from_utf8(reader.payload(&s)?)
                    .map_err(|_| bad("section CONF is not UTF-8 text".into()))?;
                // The header's CRC is of this text (links compare the CRCs).
                if crc32c::crc32c(text.as_bytes()) != header.config_crc {
                    return Err(bad(format!(
                        "section CONF: its CRC-32C is not the header's config_crc {:08x}",
                        header.config_crc
                    )));
                }
                if let Some(slot) = mem.as_deref_mut()
                    && slot.is_none()
                {
                    *slot = Some(Rebuilt::new(&text, &path)?);
                }
                config_text = Some(text);
            }
            tag::SCEN if meta => {
                let v: (Scenario, Vec<Option<InputPosition>>) =
                    decode(&reader.payload(&s)?, "SCEN", &path)?;
                super::restored_scenario::check(&v.0)
                    .map_err(|e| bad(format!("section SCEN: {e}")))?;
                scen = Some(v);
            }
            tag::MACH if meta => {
                machine = Some(decode::<Machine>(&reader.payload(&s)?, "MACH", &path)?);
            }
            tag::PAGE => match mem.as_deref_mut().and_then(Option::as_mut) {
                Some(m) => read_pages(reader, &s, &mut m.mem, &header)?,
                None => reader.skip(&s)?,
            },
            tag::SWAP => match swap.as_deref_mut() {
                Some(map) => read_swap(reader, &s, map, header.swap_pages)?,
                None => reader.skip(&s)?,
            },
            tag::CONF | tag::SCEN | tag::MACH => reader.skip(&s)?,
            other => {
                return Err(bad(format!("unknown section {}", format::tag_name(other))));
            }
        }
    }
    for need in [tag::CONF, tag::SCEN, tag::MACH, tag::PAGE] {
        if !seen.contains(&need) {
            return Err(bad(format!(
                "the {} section is missing",
                format::tag_name(need)
            )));
        }
    }
    if header.swap_pages != 0 && !seen.contains(&tag::SWAP) {
        return Err(bad(format!(
            "section HEAD: swap_pages = {} but the file has no SWAP section",
            header.swap_pages
        )));
    }
    if !meta {
        return Ok((header, None));
    }
    let (Some(config_text), Some((scenario, positions)), Some(machine)) =
        (config_text, scen, machine)
    else {
        return Err(bad("a metadata section is missing".into()));
    };
    Ok((
        header.clone(),
        Some(Meta {
            header,
            config_text,
            scenario,
            positions,
            machine,
        }),
    ))
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    section: &str,
    path: &str,
) -> Result<T, CheckpointError> {
    postcard::from_bytes(bytes).map_err(|e| {
        CheckpointError::file(
            path,
            format!("section {section} does not decode ({e}): written by another vmsim?"),
        )
    })
}

fn read_u64(r: &mut dyn Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_pages<R: Read + Seek>(
    reader: &mut Reader<R>,
    h: &SectionHeader,
    mem: &mut PhysMem<DirtyChunks>,
    header: &Header,
) -> Result<(), CheckpointError> {
    let raw = h.raw;
    let chunks = mem.chunk_count();
    reader.stream(h, |r| {
        let n_data = read_u64(r)?;
        let n_zero = read_u64(r)?;
        // What `checkpoint ls` lists of the file is what it holds.
        if (n_data, n_zero) != (header.data_chunks, header.zero_chunks) {
            return Err(io_other(format!(
                "{n_data} data and {n_zero} zero chunks, but the header says {} and {}",
                header.data_chunks, header.zero_chunks
            )));
        }
        let n = n_data
            .checked_add(n_zero)
            .ok_or_else(|| io_other("chunk counts overflow"))?;
        let need = n
            .checked_mul(8)
            .and_then(|x| x.checked_add(n_data.checked_mul(CHUNK_BYTES as u64)?))
            .and_then(|x| x.checked_add(16));
        if need != Some(raw) {
            return Err(io_other(format!(
                "{n_data} data and {n_zero} zero chunks do not fill {raw} bytes"
            )));
        }
        let mut idx = vec![0u8; (n * 8) as usize];
        r.read_exact(&mut idx)?;
        let index = |k: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&idx[k * 8..k * 8 + 8]);
            u64::from_le_bytes(b)
        };
        for k in 0..n as usize {
            if index(k) >= chunks {
                return Err(io_other(format!(
                    "chunk {} is past the end of memory ({chunks} chunks)",
                    index(k)
                )));
            }
        }
        // Chunks are read straight into the allocations memory keeps, 256
        // (1 MiB) per vectored read: a buffered file passes a read that
        // large through to one system call, so the bytes are copied once.
        const BATCH: usize = 256;
        let mut spare: Vec<Box<[u8; CHUNK_BYTES]>> = Vec::new();
        let mut batch: Vec<Box<[u8; CHUNK_BYTES]>> = Vec::with_capacity(BATCH);
        let mut k = 0usize;
        while k < n_data as usize {
            let m = (n_data as usize - k).min(BATCH);
            batch.clear();
            batch.extend((0..m).map(|_| spare.pop().unwrap_or_else(|| Box::new([0; CHUNK_BYTES]))));
            {
                let mut slices: Vec<io::IoSliceMut<'_>> = batch
                    .iter_mut()
                    .map(|c| io::IoSliceMut::new(&mut c[..]))
                    .collect();
                format::read_exact_vectored(r, &mut slices)?;
            }
            for (j, chunk) in batch.drain(..).enumerate() {
                if let Some(back) = mem
                    .restore_chunk_boxed(index(k + j), chunk)
                    .map_err(io_other)?
                {
                    spare.push(back);
                }
            }
            k += m;
        }
        for k in n_data as usize..n as usize {
            mem.restore_chunk(index(k), None).map_err(io_other)?;
        }
        Ok(())
    })
}

fn read_swap<R: Read + Seek>(
    reader: &mut Reader<R>,
    h: &SectionHeader,
    map: &mut BTreeMap<u32, Box<[u8]>>,
    header_pages: u64,
) -> Result<(), CheckpointError> {
    let raw = h.raw;
    reader.stream(h, |r| {
        let page = read_u64(r)?;
        let n = read_u64(r)?;
        if n != header_pages {
            return Err(io_other(format!(
                "{n} swap pages, but the header says {header_pages}"
            )));
        }
        let need = n
            .checked_mul(4)
            .and_then(|x| x.checked_add(n.checked_mul(page)?))
            .and_then(|x| x.checked_add(16));
        if need != Some(raw) || page == 0 || page > 1 << 30 {
            return Err(io_other(format!(
                "{n} swap pages of {page} bytes do not fill {raw} bytes"
            )));
        }
        let mut slots = vec![0u8; (n * 4) as usize];
        r.read_exact(&mut slots)?;
        for k in 0..n as usize {
            let s = u32::from_le_bytes([
                slots[k * 4],
                slots[k * 4 + 1],
                slots[k * 4 + 2],
                slots[k * 4 + 3],
            ]);
            let mut data = vec![0u8; page as usize].into_boxed_slice();
            r.read_exact(&mut data)?;
            map.insert(s, data);
        }
        Ok(())
    })
}

/// Builds a simulation from the metadata of the checkpoint restored to and
/// the memory and swap pages gathered along its chain. `candidates` are
/// files that may be the trace inputs (found by size and CRC-32C when they
/// are not at their recorded paths).
pub(crate) fn build(
    file: &str,
    meta: Meta,
    rebuilt: Rebuilt,
    swap: BTreeMap<u32, Box<[u8]>>,
    candidates: Option<&[PathBuf]>,
) -> Result<Simulation, CheckpointError> {
    let bad = |what: String| CheckpointError::file(file, what);
    let (cfg, mem) = rebuilt.spec_for(&meta.config_text, file)?;
    let fmt = cfg.format();
    let mut m = meta.machine;
    let expect_mem = cfg.memory_bytes();
    // The rest of the machine (MMU, scheduler, ...) is checked against the
    // configuration and the scenario by `Simulation::from_parts`.
    if mem.size() != expect_mem {
        return Err(bad(format!(
            "section CONF: memory of {} bytes, but the memory rebuilt has {}",
            expect_mem,
            mem.size()
        )));
    }
    if m.kernel.format() != fmt || m.mmu.format() != fmt {
        return Err(bad(
            "section MACH: the kernel's or the MMU's paging format is not the configuration's"
                .into(),
        ));
    }
    if m.kernel.frames().total_frames() > cfg.frames() {
        return Err(bad(format!(
            "section MACH: the kernel manages {} frames, more than memory.frames = {}",
            m.kernel.frames().total_frames(),
            cfg.frames()
        )));
    }
    if meta.positions.len() != meta.scenario.processes.len() {
        return Err(bad(format!(
            "section SCEN: {} input positions for {} processes",
            meta.positions.len(),
            meta.scenario.processes.len()
        )));
    }
    let page_bytes = m.kernel_page_bytes();
    if let Some(dev) = m.kernel.swap_device_mut() {
        dev.check_restored(page_bytes)
            .map_err(|e| bad(format!("section MACH: {e}")))?;
        for slot in dev.used_slots().collect::<Vec<_>>() {
            let data = swap.get(&slot.index()).ok_or_else(|| {
                bad(format!(
                    "swap slot {} is in use but no checkpoint of the chain holds it",
                    slot.index()
                ))
            })?;
            dev.restore_page(slot, data)
                .map_err(|e| bad(format!("swap slot {}: {e}", slot.index())))?;
        }
    }
    let mut sim =
        Simulation::from_parts(cfg, m, mem, Arc::new(meta.scenario)).map_err(|e| match e {
            SimError::Restore(e) => bad(format!("section MACH: {e}")),
            SimError::Invariant(e) => bad(format!(
                "sections MACH and PAGE: the kernel's state is inconsistent: {e}"
            )),
            e => bad(format!("the restored state is inconsistent: {e}")),
        })?;
    // The header against the machine, once the machine is known to hold
    // together (its counters in range, its records one per checkpoint).
    super::restored_header::check_against(&meta.header, &sim.m)
        .map_err(|e| bad(format!("sections HEAD and MACH: {e}")))?;
    super::restored_header::check_chain(
        &sim.m,
        &meta.config_text,
        &sim.cfg.to_toml(),
        &sim.scenario,
    )
    .map_err(bad)?;
    match candidates {
        Some(candidates) => sim
            .reopen_inputs(&meta.positions, candidates)
            .map_err(CheckpointError::Sim)?,
        None => sim.recorded_inputs = meta.positions,
    }
    Ok(sim)
}

impl Machine {
    fn kernel_page_bytes(&self) -> usize {
        self.kernel.page_size().bytes() as usize
    }
}

/// Reopens each process's input at its recorded position.
impl Simulation {
    pub(crate) fn reopen_inputs(
        &mut self,
        positions: &[Option<InputPosition>],
        candidates: &[PathBuf],
    ) -> Result<(), SimError> {
        let n = positions.len();
        self.sources = (0..n).map(|_| None).collect();
        self.input_ids = vec![None; n];
        for (i, pos) in positions.iter().enumerate() {
            let Some(pos) = pos else { continue };
            let p = &self.m.schedule.procs[i];
            if p.done || p.pid.is_none() {
                continue;
            }
            let spec = inputs::locate(&pos.id, candidates)?;
            let (src, rest) = inputs::reopen(&spec, pos)?;
            let p = &mut self.m.schedule.procs[i];
            // Accesses read past the position come right after the batch.
            p.consumed += rest.len() as u64;
            p.batch.extend(rest);
            if let Some(slot) = self.batch_pid.get_mut(i) {
                *slot = None;
            }
            self.sources[i] = Some(src);
            self.input_ids[i] = Some(pos.id.clone());
        }
        Ok(())
    }
}

/// Writes a full checkpoint from a restored chain's parts (`vmsim
/// checkpoint merge`): the metadata of the checkpoint merged into, every
/// stored chunk of the rebuilt memory, every swap slot its machine uses.
pub(crate) fn write_merged<W: Write + Seek>(
    header: &Header,
    meta: &Meta,
    mem: &PhysMem<DirtyChunks>,
    swap: &BTreeMap<u32, Box<[u8]>>,
    out: W,
    file: &str,
) -> Result<W, CheckpointError> {
    let mut header = header.clone();
    let capture = Capture {
        data: nonzero_chunks(mem),
        zero: Vec::new(),
        swap: meta
            .machine
            .kernel
            .swap_device()
            .map(|d| d.used_slots().map(|s| s.index()).collect())
            .unwrap_or_default(),
    };
    header.data_chunks = capture.data_chunks();
    header.zero_chunks = 0;
    header.swap_pages = capture.swap_pages();
    let write = || -> io::Result<W> {
        let mut w = Writer::new(out)?;
        w.section(tag::HEAD, None, |o| {
            o.write_all(&postcard::to_allocvec(&header).map_err(io_other)?)
        })?;
        w.section(tag::CONF, None, |o| {
            o.write_all(meta.config_text.as_bytes())
        })?;
        w.section(tag::SCEN, None, |o| {
            let bytes =
                postcard::to_allocvec(&(&meta.scenario, &meta.positions)).map_err(io_other)?;
            o.write_all(&bytes)
        })?;
        w.section(tag::MACH, Some(MACH_LEVEL), |o| {
            o.write_all(&postcard::to_allocvec(&meta.machine).map_err(io_other)?)
        })?;
        w.section(tag::PAGE, None, |o| write_pages(o, mem, &capture))?;
        if let Some(dev) = meta.machine.kernel.swap_device() {
            w.section(tag::SWAP, None, |o| {
                let page = dev.page_bytes();
                o.write_all(&(page as u64).to_le_bytes())?;
                o.write_all(&(capture.swap.len() as u64).to_le_bytes())?;
                for s in &capture.swap {
                    o.write_all(&s.to_le_bytes())?;
                }
                for s in &capture.swap {
                    let data = swap
                        .get(s)
                        .ok_or_else(|| io_other(format!("swap slot {s} is in no checkpoint")))?;
                    o.write_all(data)?;
                }
                Ok(())
            })?;
        }
        w.finish()
    };
    write().map_err(|source| CheckpointError::Io {
        file: file.to_string(),
        source,
    })
}
