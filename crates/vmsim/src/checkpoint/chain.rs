//! A run's checkpoints in a directory: `ckpt-000000.vmck` (full), then
//! `ckpt-000001.vmck`, ... (increments, each naming its parent's id).
//!
//! Each file is written under a temporary name in the directory, synced,
//! renamed into place and the directory synced, so a run killed while
//! writing checkpoint K leaves 0..K-1 intact and no file named like a
//! checkpoint that is not one. Restoring checkpoint K reads the newest full
//! checkpoint at or before K and every increment after it up to K, checking
//! that each names the previous one as its parent and was taken on the same
//! machine; a missing or foreign link is refused, naming it.
//!
//! Owns the directory (names, atomic writes, links); file contents are
//! `checkpoint/image.rs`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::sim::Simulation;

use super::bufout::BufOut;
use super::format::{self, Reader};
use super::image::{self, Capture};
use super::{CheckpointError, Header};

/// The file name of checkpoint `seq`.
#[must_use]
pub fn file_name(seq: u64) -> String {
    format!("ckpt-{seq:06}.vmck")
}

/// The sequence number in a checkpoint file name.
fn seq_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("ckpt-")?.strip_suffix(".vmck")?;
    if digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// Images up to this size are encoded in memory and written by the
/// background thread; larger ones are streamed to disk in the run's thread.
const BACKGROUND_MAX: usize = 64 << 20;

/// A checkpoint file being written by the background thread.
struct InFlight {
    handle: std::thread::JoinHandle<Result<(), CheckpointError>>,
}

/// Somewhere else each finished checkpoint file is copied to, such as a
/// store on another machine for disaster recovery (`vmsim run
/// --checkpoint-to`). [`ChainWriter`] calls [`ChainMirror::ship`] once per
/// file, in order, after the file is durable in the local directory (on
/// its background thread when the file was written there), and
/// [`ChainMirror::finish`] once when the run is done.
pub trait ChainMirror: Send {
    /// Copies the finished checkpoint file `path` (named `name`) to the
    /// mirror. An error stops the mirroring; the local chain goes on.
    ///
    /// # Errors
    /// The mirror could not take the file, with its cause as the source
    /// (the run reports it on one line, [`crate::error_line::one_line`]).
    fn ship(&mut self, name: &str, path: &Path) -> Result<(), MirrorError>;

    /// Tells the mirror that no file follows.
    ///
    /// # Errors
    /// As for [`ChainMirror::ship`].
    fn finish(&mut self) -> Result<(), MirrorError> {
        Ok(())
    }
}

/// Why a [`ChainMirror`] could not take a file: the mirror's own error
/// (a mirror is the caller's code, so its error type is too).
pub type MirrorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A mirror and what became of it.
struct Mirror {
    sink: Box<dyn ChainMirror>,
    shipped: u64,
    /// The first failure; nothing is shipped after it.
    failed: Option<String>,
}

impl Mirror {
    fn ship(&mut self, name: &str, path: &Path) {
        if self.failed.is_none() {
            match self.sink.ship(name, path) {
                Ok(()) => self.shipped += 1,
                Err(e) => {
                    self.failed = Some(format!("{name}: {}", crate::error_line::one_line(&*e)));
                }
            }
        }
    }
}

type SharedMirror = std::sync::Arc<std::sync::Mutex<Mirror>>;

fn ship_to(mirror: Option<&SharedMirror>, name: &str, path: &Path) {
    if let Some(m) = mirror {
        match m.lock() {
            Ok(mut m) => m.ship(name, path),
            Err(poisoned) => poisoned.into_inner().ship(name, path),
        }
    }
}

/// Writes a run's checkpoints into a directory.
///
/// A checkpoint's bytes are produced in the run's thread, at the
/// checkpoint; writing, syncing and renaming the file happens on a
/// background thread while the run goes on (the fsync of a shared disk can
/// take longer than the simulation between two checkpoints). At most one
/// file is in flight: checkpoint K is handed over only once K-1 is durable,
/// so a run killed at any moment leaves every checkpoint before the one
/// being written complete. [`ChainWriter::finish`] (or dropping the writer)
/// waits for the last one.
pub struct ChainWriter {
    dir: PathBuf,
    page_level: Option<i32>,
    bytes: u64,
    in_flight: Option<InFlight>,
    background: bool,
    mirror: Option<SharedMirror>,
}

impl std::fmt::Debug for ChainWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainWriter")
            .field("dir", &self.dir)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Writes `bytes` to `path` through a temporary file: written, synced,
/// renamed, the directory synced.
fn write_file(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = vmsim_trace::output::temp_next_to(path)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    vmsim_trace::output::commit(tmp, path)?;
    sync_dir(dir);
    Ok(())
}

impl ChainWriter {
    /// A writer into `dir`, created if missing. A directory that already
    /// holds checkpoints is refused: chains are never mixed or overwritten.
    ///
    /// # Errors
    /// The directory cannot be created or read, or holds checkpoints.
    pub fn create(dir: &Path) -> Result<Self, CheckpointError> {
        let err = |what: String| CheckpointError::Chain {
            dir: dir.display().to_string(),
            what,
        };
        let io = |what: &str, source| CheckpointError::IoIn {
            file: dir.display().to_string(),
            what: what.into(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create", e))?;
        let existing = std::fs::read_dir(dir)
            .map_err(|e| io("cannot read", e))?
            .filter_map(Result::ok)
            .filter(|e| seq_of(&e.file_name().to_string_lossy()).is_some())
            .count();
        if existing > 0 {
            return Err(err(format!(
                "already holds {existing} checkpoint file(s); give an empty or new directory"
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            page_level: None,
            bytes: 0,
            in_flight: None,
            background: true,
            mirror: None,
        })
    }

    /// Compresses page data with zstd at `level` (`None`: stored raw, the default).
    #[must_use]
    pub fn with_page_compression(mut self, level: Option<i32>) -> Self {
        self.page_level = level;
        self
    }

    /// Writes every file in the run's thread (no background writer).
    #[must_use]
    pub fn in_foreground(mut self) -> Self {
        self.background = false;
        self
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies every finished file to `mirror` too (see [`ChainMirror`]).
    #[must_use]
    pub fn with_mirror(mut self, mirror: Box<dyn ChainMirror>) -> Self {
        self.mirror = Some(std::sync::Arc::new(std::sync::Mutex::new(Mirror {
            sink: mirror,
            shipped: 0,
            failed: None,
        })));
        self
    }

    /// How many files the mirror took, and why it stopped if it failed
    /// (`None` without a mirror). Complete after [`ChainWriter::finish`].
    #[must_use]
    pub fn mirror_status(&self) -> Option<(u64, Option<String>)> {
        let m = self.mirror.as_ref()?;
        let m = match m.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some((m.shipped, m.failed.clone()))
    }

    /// Bytes written so far.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Waits for the file in flight; its error, if it failed.
    fn wait(&mut self) -> Result<(), CheckpointError> {
        if let Some(f) = self.in_flight.take() {
            match f.handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(CheckpointError::Chain {
                        dir: self.dir.display().to_string(),
                        what: "the checkpoint writer thread failed".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Waits until every checkpoint handed over is on disk.
    ///
    /// # Errors
    /// The last file could not be written.
    pub fn finish(&mut self) -> Result<(), CheckpointError> {
        self.wait()?;
        if let Some(m) = self.mirror.take() {
            let mut g = match m.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if g.failed.is_none()
                && let Err(e) = g.sink.finish()
            {
                g.failed = Some(crate::error_line::one_line(&*e));
            }
            drop(g);
            self.mirror = Some(m);
        }
        Ok(())
    }

    /// Writes one checkpoint of `sim`; returns its file name and size.
    pub(crate) fn write(
        &mut self,
        sim: &mut Simulation,
        header: &Header,
        capture: &Capture,
    ) -> Result<(String, u64), CheckpointError> {
        let name = file_name(header.seq);
        let path = self.dir.join(&name);
        let err = |source| CheckpointError::Io {
            file: path.display().to_string(),
            source,
        };
        let small =
            (capture.data.len() + capture.swap.len()) * crate::phys::CHUNK_BYTES <= BACKGROUND_MAX;
        if self.background && small {
            // Encode now (the state is this moment's), write in the background.
            let out = image::write(
                sim,
                header,
                capture,
                std::io::Cursor::new(Vec::with_capacity(
                    capture.size_hint(sim.kernel().page_size().bytes() as usize),
                )),
                self.page_level,
                &path.display().to_string(),
            )?;
            let bytes = out.into_inner();
            let len = bytes.len() as u64;
            // The previous file must be durable before this one is handed over.
            self.wait()?;
            let dir = self.dir.clone();
            let p = path.clone();
            let mirror = self.mirror.clone();
            let shipped = name.clone();
            let handle = std::thread::Builder::new()
                .name("vmsim-checkpoint".into())
                .spawn(move || {
                    write_file(&dir, &p, &bytes).map_err(|source| CheckpointError::Io {
                        file: p.display().to_string(),
                        source,
                    })?;
                    drop(bytes);
                    ship_to(mirror.as_ref(), &shipped, &p);
                    Ok(())
                })
                .map_err(err)?;
            self.in_flight = Some(InFlight { handle });
            self.bytes += len;
            return Ok((name, len));
        }
        self.wait()?;
        let tmp = vmsim_trace::output::temp_next_to(&path).map_err(err)?;
        let out = BufOut::with_capacity(1 << 20, tmp);
        let out = image::write(
            sim,
            header,
            capture,
            out,
            self.page_level,
            &path.display().to_string(),
        )?;
        let tmp = out.into_inner().map_err(err)?;
        let bytes = tmp.as_file().metadata().map_err(err)?.len();
        vmsim_trace::output::commit(tmp, &path).map_err(err)?;
        sync_dir(&self.dir);
        self.bytes += bytes;
        ship_to(self.mirror.as_ref(), &name, &path);
        Ok((name, bytes))
    }
}

impl Drop for ChainWriter {
    /// Waits for the file in flight, so a dropped writer's files are complete.
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// Makes a rename in `dir` durable (best effort: not every system can
/// sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// One file of a chain directory.
#[derive(Debug, Clone)]
pub struct ChainEntry {
    /// Its path.
    pub path: PathBuf,
    /// Its number, from its name.
    pub seq: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its header, or why it cannot be read.
    pub header: Result<Header, String>,
    /// Whether the rest of the file holds what its header says, as far as
    /// a listing can tell without reading the page data (the section
    /// table, the configuration's CRC, the page and swap counts and the
    /// lengths they take: `checkpoint/listed.rs`), or the first thing
    /// that does not. `Ok` when the header itself cannot be read (that
    /// is `header`'s error).
    pub verified: Result<(), String>,
}

/// A checkpoint directory, read back.
#[derive(Debug, Clone)]
pub struct Chain {
    dir: PathBuf,
    entries: Vec<ChainEntry>,
    limit: u64,
}

fn open_reader(path: &Path, limit: u64) -> Result<Reader<BufReader<File>>, CheckpointError> {
    let name = path.display().to_string();
    // A FIFO would block the open and a device has no length to check
    // sections against: only regular files (or links to them) are read.
    let io = |source| CheckpointError::Io {
        file: name.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(CheckpointError::file(
            &name,
            "not a regular file (a directory, device, FIFO or socket)",
        ));
    }
    let f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    Ok(Reader::new(BufReader::with_capacity(1 << 20, f), &name, len)?.with_limit(limit))
}

/// Whether `e`'s file is named `name`.
fn is_named(e: &ChainEntry, name: &str) -> bool {
    e.path.file_name().is_some_and(|n| n == name)
}

/// Reads the header of a checkpoint file, and verifies what a listing can
/// of the rest cheaply (`listed.rs`): the second result.
fn read_header(path: &Path, limit: u64) -> Result<(Header, Result<(), String>), CheckpointError> {
    let mut r = open_reader(path, limit)?;
    let name = path.display().to_string();
    let Some(h) = r.next()? else {
        return Err(CheckpointError::file(&name, "no sections"));
    };
    if h.tag != format::tag::HEAD {
        return Err(CheckpointError::file(
            &name,
            "the first section is not HEAD",
        ));
    }
    let header: Header = postcard::from_bytes(&r.payload(&h)?)
        .map_err(|e| CheckpointError::file(&name, format!("section HEAD does not decode ({e})")))?;
    super::restored_header::check_alone(&header)
        .map_err(|e| CheckpointError::file(&name, format!("section HEAD: {e}")))?;
    let verified = super::listed::verify(&mut r, &header);
    Ok((header, verified))
}

impl Chain {
    /// Lists the checkpoints in `dir` (by their names; each header read).
    ///
    /// # Errors
    /// The directory cannot be read or holds no checkpoint.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let err = |what: String| CheckpointError::Chain {
            dir: dir.display().to_string(),
            what,
        };
        let mut entries = Vec::new();
        let io = |source| CheckpointError::IoIn {
            file: dir.display().to_string(),
            what: "cannot read".into(),
            source,
        };
        for e in std::fs::read_dir(dir).map_err(io)? {
            let e = e.map_err(io)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(seq) = seq_of(&name) else { continue };
            let path = e.path();
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            // `ckpt-0000001.vmck` parses as checkpoint 1 too: only the
            // name vmsim writes is checkpoint 1, so which of two files a
            // restore reads never depends on the directory's order.
            let (header, verified) = if name == file_name(seq) {
                match read_header(&path, format::DEFAULT_LOAD_LIMIT) {
                    Ok((h, v)) => (Ok(h), v),
                    Err(e) => (
                        Err(e
                            .to_string()
                            .strip_prefix(&format!("{}: ", path.display()))
                            .map_or_else(|| e.to_string(), str::to_string)),
                        Ok(()),
                    ),
                }
            } else {
                (
                    Err(format!(
                        "named like checkpoint {seq} but not {}, the only name checkpoint {seq} is read from",
                        file_name(seq)
                    )),
                    Ok(()),
                )
            };
            entries.push(ChainEntry {
                path,
                seq,
                bytes,
                header,
                verified,
            });
        }
        if entries.is_empty() {
            return Err(err("holds no checkpoint (ckpt-NNNNNN.vmck)".into()));
        }
        // In number order; of one number, its own name first.
        entries.sort_by_key(|e| (e.seq, !is_named(e, &file_name(e.seq)), e.path.clone()));
        Ok(Self {
            dir: dir.to_path_buf(),
            entries,
            limit: format::DEFAULT_LOAD_LIMIT,
        })
    }

    /// Sets the largest section a restore accepts.
    #[must_use]
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoints, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ChainEntry> {
        self.entries.iter()
    }

    /// The newest checkpoint number.
    #[must_use]
    pub fn last(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    /// Checkpoint `seq`'s file: the one of its own name (not an alias
    /// with more leading zeros).
    fn entry(&self, seq: u64) -> Option<&ChainEntry> {
        let name = file_name(seq);
        self.entries
            .iter()
            .find(|e| e.seq == seq && is_named(e, &name))
    }

    /// The files to read to rebuild checkpoint `at`: the newest full one at
    /// or before it, then every increment up to it, links checked.
    ///
    /// # Errors
    /// A link is missing, unreadable, of another chain or machine, or does
    /// not name the previous one as its parent.
    pub fn links(&self, at: u64) -> Result<Vec<&ChainEntry>, CheckpointError> {
        let dir = self.dir.display().to_string();
        let missing = |seq: u64| CheckpointError::Chain {
            dir: dir.clone(),
            what: format!(
                "{} is missing: checkpoint {at} cannot be rebuilt without it",
                file_name(seq)
            ),
        };
        let target = self.entry(at).ok_or_else(|| missing(at))?;
        let bad = |e: &ChainEntry, what: String| {
            CheckpointError::file(&e.path.display().to_string(), what)
        };
        let mut links = vec![target];
        let mut cur = target;
        loop {
            let h = cur.header.as_ref().map_err(|w| bad(cur, w.clone()))?;
            if h.seq != cur.seq {
                return Err(bad(
                    cur,
                    format!("its header says checkpoint {}, its name {}", h.seq, cur.seq),
                ));
            }
            if h.full {
                break;
            }
            let Some(parent_id) = h.parent else {
                return Err(bad(cur, "an increment without a parent".into()));
            };
            if cur.seq == 0 {
                return Err(bad(cur, "checkpoint 0 is an increment".into()));
            }
            let prev = self
                .entry(cur.seq - 1)
                .ok_or_else(|| missing(cur.seq - 1))?;
            let ph = prev.header.as_ref().map_err(|w| bad(prev, w.clone()))?;
            if ph.id != parent_id || ph.chain != h.chain {
                return Err(bad(
                    cur,
                    format!(
                        "its parent is not {} (that file belongs to another run or was replaced)",
                        prev.path.display()
                    ),
                ));
            }
            // A chain is taken in order: no increment is older than its parent.
            if h.references < ph.references {
                return Err(bad(
                    cur,
                    format!(
                        "taken at {} references, before its parent {} ({})",
                        h.references,
                        prev.path.display(),
                        ph.references
                    ),
                ));
            }
            if ph.config_crc != h.config_crc {
                return Err(bad(
                    cur,
                    format!(
                        "taken on another machine configuration than its parent {}",
                        prev.path.display()
                    ),
                ));
            }
            links.push(prev);
            cur = prev;
        }
        links.reverse();
        Ok(links)
    }

    /// Rebuilds the simulation of checkpoint `at` (default: the newest).
    /// Inputs are found as [`Simulation::restore`] finds them.
    ///
    /// # Errors
    /// A link is missing or bad, a file is corrupt, or an input is not found.
    pub fn restore(
        &self,
        at: Option<u64>,
        inputs: &[PathBuf],
    ) -> Result<Simulation, CheckpointError> {
        self.restore_with(at, Some(inputs))
    }

    /// Rebuilds the state of checkpoint `at` for inspection only: its trace
    /// inputs are not reopened (they need not exist), so it cannot run on.
    ///
    /// # Errors
    /// A link is missing or bad, or a file is corrupt.
    pub fn inspect(&self, at: Option<u64>) -> Result<Simulation, CheckpointError> {
        self.restore_with(at, None)
    }

    fn restore_with(
        &self,
        at: Option<u64>,
        inputs: Option<&[PathBuf]>,
    ) -> Result<Simulation, CheckpointError> {
        let at = self.resolve(at)?;
        let links = self.links(at)?;
        let mut readers = Vec::with_capacity(links.len());
        for e in &links {
            readers.push((
                e.path.display().to_string(),
                open_reader(&e.path, self.limit)?,
            ));
        }
        let mut refs: Vec<(String, &mut Reader<BufReader<File>>)> =
            readers.iter_mut().map(|(n, r)| (n.clone(), r)).collect();
        let mut sim = restore_files(&self.dir.display().to_string(), &mut refs, inputs)?;
        // The state was captured before its own file existed: name it now
        // (the file restored from), as the run that wrote it reported it.
        let size = links
            .last()
            .and_then(|e| std::fs::metadata(&e.path).ok())
            .map(|m| m.len());
        if let Some(r) = sim.m.ckpt.records.iter_mut().find(|r| r.seq == at)
            && r.file.is_none()
        {
            r.file = Some(file_name(at));
            r.file_bytes = size;
        }
        Ok(sim)
    }

    fn resolve(&self, at: Option<u64>) -> Result<u64, CheckpointError> {
        match at {
            Some(k) => Ok(k),
            None => self.last().ok_or_else(|| CheckpointError::Chain {
                dir: self.dir.display().to_string(),
                what: "holds no checkpoint".into(),
            }),
        }
    }

    /// A fresh simulation of the run the chain belongs to, started at its
    /// first reference (before any checkpoint): its configuration and
    /// scenario come from checkpoint `seq`, its traces are found as a
    /// restore finds them.
    ///
    /// # Errors
    /// The file is unreadable, or an input cannot be found.
    pub fn restart(&self, seq: u64, inputs: &[PathBuf]) -> Result<Simulation, CheckpointError> {
        let e = self.entry(seq).ok_or_else(|| CheckpointError::Chain {
            dir: self.dir.display().to_string(),
            what: format!("{} is missing", file_name(seq)),
        })?;
        let mut r = open_reader(&e.path, self.limit)?;
        let (_, meta) = image::read(&mut r, true, None, None)?;
        let name = e.path.display().to_string();
        let meta = meta.ok_or_else(|| CheckpointError::file(&name, "no state"))?;
        // A fresh run on the checkpoint's machine: checked as any new run
        // is (a swap file that exists is refused).
        let cfg = image::parse_config(&meta.config_text, &name)?;
        let cfg = crate::config::MachineSpec::new(cfg).map_err(|e| {
            CheckpointError::file(&name, format!("its configuration cannot be used here: {e}"))
        })?;
        let mut scenario = meta.scenario;
        for (spec, pos) in scenario.processes.iter_mut().zip(&meta.positions) {
            if let Some(pos) = pos {
                spec.trace = Some(
                    crate::sim::inputs::locate(&pos.id, inputs)
                        .map_err(|e| CheckpointError::Sim(e.into()))?,
                );
            }
        }
        let mut sim = Simulation::new(cfg)?;
        sim.start(&scenario)?;
        Ok(sim)
    }

    /// The sections of checkpoint `seq`'s file: tag, bytes stored, bytes
    /// once decompressed, compressed or not (every CRC checked).
    ///
    /// # Errors
    /// The file is missing, unreadable or corrupt.
    pub fn sections(&self, seq: u64) -> Result<Vec<(String, u64, u64, bool)>, CheckpointError> {
        let e = self.entry(seq).ok_or_else(|| CheckpointError::Chain {
            dir: self.dir.display().to_string(),
            what: format!("{} is missing", file_name(seq)),
        })?;
        let mut r = open_reader(&e.path, self.limit)?;
        let mut out = Vec::new();
        while let Some(h) = r.next()? {
            r.skip(&h)?;
            out.push((
                format::tag_name(h.tag),
                h.stored,
                h.raw,
                h.flags & format::FLAG_ZSTD != 0,
            ));
        }
        Ok(out)
    }

    /// Folds checkpoint `at` (default: the newest) and its ancestors into one
    /// full checkpoint that replaces it (same number and id, so the
    /// increments after it still link to it): the background aggregation
    /// of the course notes. Returns the new file's size.
    ///
    /// # Errors
    /// A link is missing or bad, or the new file cannot be written.
    pub fn merge(&self, at: Option<u64>) -> Result<u64, CheckpointError> {
        let at = self.resolve(at)?;
        let links = self.links(at)?;
        let mut mem: Option<image::Rebuilt> = None;
        let mut swap = BTreeMap::new();
        let mut meta = None;
        let last = links.len() - 1;
        for (i, e) in links.iter().enumerate() {
            let mut r = open_reader(&e.path, self.limit)?;
            let (_, m) = image::read(&mut r, i == last, Some(&mut mem), Some(&mut swap))?;
            if i == last {
                meta = m;
            }
        }
        let target = links[last];
        let name = target.path.display().to_string();
        let (Some(mem), Some(meta)) = (mem, meta) else {
            return Err(CheckpointError::file(&name, "nothing to merge"));
        };
        let mut header = meta.header.clone();
        header.full = true;
        header.parent = None;
        let err = |source| CheckpointError::Io {
            file: name.clone(),
            source,
        };
        let tmp = vmsim_trace::output::temp_next_to(&target.path).map_err(err)?;
        let out = BufOut::with_capacity(1 << 20, tmp);
        let out = image::write_merged(&header, &meta, &mem.mem, &swap, out, &name)?;
        let tmp = out.into_inner().map_err(err)?;
        drop((mem, swap, meta));
        // The merged file replaces the checkpoint it folds: it must restore
        // as that checkpoint would, with every check a restore makes (the
        // machine state against the header, the chain id against the
        // configuration and scenario, the pages against the tables), or
        // the chain is left as it was and the temporary file removed.
        let mut r = {
            use std::io::Seek;
            // (The temporary file may have no name: read through a second
            // handle, from the start.)
            let mut f = tmp.as_file().try_clone().map_err(err)?;
            f.rewind().map_err(err)?;
            let len = f.metadata().map_err(err)?.len();
            Reader::new(BufReader::with_capacity(1 << 20, f), &name, len)?.with_limit(self.limit)
        };
        restore_files(&name, &mut [(name.clone(), &mut r)], None).map_err(|e| {
            CheckpointError::file(
                &name,
                format!("not replaced: its chain merged does not restore: {e}"),
            )
        })?;
        drop(r);
        let bytes = tmp.as_file().metadata().map_err(err)?.len();
        vmsim_trace::output::commit(tmp, &target.path).map_err(err)?;
        sync_dir(&self.dir);
        Ok(bytes)
    }
}

/// Rebuilds the simulation of the last of `files` (a full checkpoint and
/// the increments after it, in order).
pub(crate) fn restore_files<R: Read + Seek>(
    what: &str,
    files: &mut [(String, &mut Reader<R>)],
    inputs: Option<&[PathBuf]>,
) -> Result<Simulation, CheckpointError> {
    let mut mem: Option<image::Rebuilt> = None;
    let mut swap = BTreeMap::new();
    let last = files
        .len()
        .checked_sub(1)
        .ok_or_else(|| CheckpointError::Chain {
            dir: what.into(),
            what: "no checkpoint to restore".into(),
        })?;
    let mut meta = None;
    for (i, (_, r)) in files.iter_mut().enumerate() {
        let (_, m) = image::read(r, i == last, Some(&mut mem), Some(&mut swap))?;
        if i == last {
            meta = m;
        }
    }
    let name = files[last].0.clone();
    let (Some(mem), Some(meta)) = (mem, meta) else {
        return Err(CheckpointError::file(&name, "no state to restore"));
    };
    image::build(&name, meta, mem, swap, inputs)
}
