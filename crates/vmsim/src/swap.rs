//! A swap device backed by a real file.
//!
//! Pages are written and read at slot offsets (`slot * page_bytes`) of an
//! ordinary file, so a simulation that swaps does real I/O and a test can
//! read the bytes back. The file lives in a temporary directory (or at a
//! path the user gives).
//!
//! A user's file is never destroyed: a path that exists is refused unless
//! the caller allows overwriting it, and only a regular file can be
//! overwritten. Nothing big is left behind by a crash or a signal: on Unix a
//! file the device created is unlinked as soon as it is open (the open
//! descriptor keeps the data reachable; the device never needs the path
//! again), unless the user asked to keep it. Elsewhere it is removed when
//! the device is dropped, and is on the interrupt-cleanup list of
//! [`vmsim_trace::output`] meanwhile. A file that existed before is never
//! deleted.
//!
//! A device can be copied ([`Clone`]) and captured in a checkpoint: its
//! bookkeeping serializes, its pages are read with [`SwapDevice::peek`]
//! (which is not swap traffic, and never goes through the path) and the
//! slots written since the last checkpoint are kept in a bitmap
//! ([`SwapDevice::take_written`]). A copy or a restored device holds its
//! pages in host memory until its first write, which creates its own file
//! under the same rules: two devices never share one file.
//!
//! I/O is positioned (`pread`/`pwrite`: no seek per page). Writes to
//! consecutive slots (the page-out daemon's victims, which the next-fit
//! allocator places side by side) are gathered and written with one call
//! ([`SwapDevice::flush`], or when a write does not extend the run); reads
//! and copies see gathered pages that are not in the file yet.
//!
//! This module owns the file and the slot allocator; which page goes to
//! which slot, and when, is the kernel's business.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A slot of the swap device: where one page is kept.
///
/// Guarantee: made only by [`SwapDevice::alloc`], so it is below the
/// device's slot count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SwapSlot(u32);

impl SwapSlot {
    /// The slot's index.
    #[must_use]
    pub fn index(self) -> u32 {
        self.0
    }
}

/// The swap device failed.
#[derive(Debug, Error)]
pub enum SwapError {
    /// The file could not be created, read or written.
    #[error("swap file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The path exists and overwriting it was not allowed.
    #[error(
        "swap file {0} exists: vmsim does not overwrite it (choose another path, or set kernel.swap_file_overwrite = true)"
    )]
    Exists(String),
    /// The path is a directory, a link, a device or anything but a regular file.
    #[error("swap file {0} is not a regular file: vmsim never writes over it")]
    NotRegular(String),
    /// Every slot is in use.
    #[error("swap device full ({0} slots in use)")]
    Full(u32),
    /// A buffer that is not exactly one page.
    #[error("swap I/O of {got} bytes, but a page is {page} bytes")]
    BadLength {
        /// The length given.
        got: usize,
        /// The page size.
        page: usize,
    },
}

/// A page transfer through a caller's closure failed: in the device, or on
/// the caller's side (the memory the page comes from or goes to).
#[derive(Debug, thiserror::Error)]
pub enum PageIoError<E> {
    /// The swap device failed.
    #[error(transparent)]
    Device(#[from] SwapError),
    /// The caller's closure failed.
    #[error("{0}")]
    Page(E),
}

/// Traffic counters of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapStats {
    /// Pages written (swap-outs).
    pub writes: u64,
    /// Pages read (swap-ins).
    pub reads: u64,
    /// Slots in use now.
    pub slots_used: u64,
    /// Most slots ever in use at once.
    pub slots_peak: u64,
}

/// Where a device's pages are.
#[derive(Debug, Default)]
enum Backing {
    /// In its own file.
    File(File),
    /// In host memory, by slot (a copy, or a restored device), until the
    /// first write creates the file.
    #[default]
    Pages,
    /// Reading the original's pages for a copy failed: every use reports it.
    Broken(String),
}

/// A file-backed swap device with a fixed number of slots.
///
/// Serializes its bookkeeping only (slots in use, the allocator's cursor,
/// counters, the slots written since the last checkpoint); a deserialized
/// device has no pages until [`SwapDevice::restore_page`] gives them back.
#[derive(Debug, Serialize, Deserialize)]
pub struct SwapDevice {
    #[serde(skip)]
    backing: Backing,
    /// Pages held in memory (with [`Backing::Pages`]), by slot.
    #[serde(skip)]
    pages: BTreeMap<u32, Box<[u8]>>,
    /// The file's path once it exists (on Unix a file the device created
    /// and does not keep is unlinked as soon as it is open).
    #[serde(skip)]
    path: PathBuf,
    /// Remove the file at `path` when dropped (the device created it, the
    /// user did not ask to keep it, and it could not be unlinked at once).
    #[serde(skip)]
    remove_on_drop: bool,
    /// Keeps a file to remove on drop on the interrupt-cleanup list.
    #[serde(skip)]
    _registered: Option<vmsim_trace::output::Registered>,
    /// Where the user asked the file to be (none: a temporary name).
    configured: Option<PathBuf>,
    /// Keep a file the device creates after it is dropped.
    keep: bool,
    /// A user path that exists may be truncated and used.
    overwrite: bool,
    page: usize,
    used: Vec<bool>,
    cursor: usize,
    stats: SwapStats,
    /// Slots written since the last [`SwapDevice::take_written`], one bit each.
    written: Vec<u64>,
    /// Written pages not yet in the file: consecutive slots from
    /// `pending_first` (only with [`Backing::File`]).
    #[serde(skip)]
    pending: Vec<u8>,
    #[serde(skip)]
    pending_first: u32,
    /// One page, for reads (no allocation per swap-in).
    #[serde(skip)]
    scratch: Vec<u8>,
}

/// The most pages gathered into one write.
const MAX_GATHER: usize = 256;

/// Writes all of `data` at byte `at` of `file`.
fn write_at(file: &File, data: &[u8], at: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, data, at)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = file;
        f.seek(SeekFrom::Start(at)).and_then(|_| f.write_all(data))
    }
}

/// Fills `buf` from byte `at` of `file`.
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(buf))
    }
}

impl Clone for SwapDevice {
    /// A copy with the same slots and pages, in host memory until its first
    /// write gives it a file of its own (a temporary one, removed on drop).
    fn clone(&self) -> Self {
        let mut copy = Self {
            backing: Backing::Pages,
            pages: BTreeMap::new(),
            path: PathBuf::new(),
            remove_on_drop: false,
            _registered: None,
            configured: None,
            keep: false,
            overwrite: false,
            page: self.page,
            used: self.used.clone(),
            cursor: self.cursor,
            stats: self.stats,
            written: self.written.clone(),
            pending: Vec::new(),
            pending_first: 0,
            scratch: Vec::new(),
        };
        let mut buf = vec![0u8; self.page];
        for slot in self.used_slots() {
            match self.peek(slot, &mut buf) {
                Ok(()) => {
                    copy.pages.insert(slot.0, buf.clone().into_boxed_slice());
                }
                Err(e) => {
                    copy.backing = Backing::Broken(e.to_string());
                    break;
                }
            }
        }
        copy
    }
}

impl SwapDevice {
    /// Creates a device of `slots` pages of `page_bytes`. With `path` the
    /// file is created there; otherwise in the system's temporary directory
    /// under a unique name. A `path` that exists is refused unless
    /// `overwrite` (and even then it must be a regular file, which is
    /// truncated, used, and left in place afterwards). With `keep` a file
    /// the device creates stays after the device is dropped; without, it is
    /// gone at once on Unix (unlinked after open) and when the device is
    /// dropped elsewhere.
    ///
    /// # Errors
    /// [`SwapError::Exists`] or [`SwapError::NotRegular`] for a path that
    /// may not be used; [`SwapError::Io`] if the file cannot be created.
    pub fn create(
        path: Option<&Path>,
        slots: u32,
        page_bytes: usize,
        keep: bool,
        overwrite: bool,
    ) -> Result<Self, SwapError> {
        let mut dev = Self {
            backing: Backing::Pages,
            pages: BTreeMap::new(),
            path: PathBuf::new(),
            remove_on_drop: false,
            _registered: None,
            configured: path.map(Path::to_path_buf),
            keep,
            overwrite,
            page: page_bytes,
            used: vec![false; slots as usize],
            cursor: 0,
            stats: SwapStats::default(),
            written: vec![0; (slots as usize).div_ceil(64)],
            pending: Vec::new(),
            pending_first: 0,
            scratch: Vec::new(),
        };
        dev.open_file()?;
        Ok(dev)
    }

    /// Creates the device's file (at the configured path, or a unique
    /// temporary one, under [`SwapDevice::create`]'s rules) and moves any
    /// pages held in memory into it.
    fn open_file(&mut self) -> Result<(), SwapError> {
        if let Backing::Broken(why) = &self.backing {
            return Err(SwapError::Io {
                path: "(copy of a swap device)".into(),
                source: io::Error::other(why.clone()),
            });
        }
        let (path, user_path) = match &self.configured {
            Some(p) => (p.clone(), true),
            None => (unique_temp_path(), false),
        };
        let overwrite = self.overwrite;
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_file() {
                return Err(SwapError::NotRegular(path.display().to_string()));
            }
            if !(user_path && overwrite) {
                return Err(SwapError::Exists(path.display().to_string()));
            }
        }
        // create_new: a file that appears meanwhile is not truncated either.
        let (file, created) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && user_path && overwrite => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_err)?;
                if !f.metadata().map_err(io_err)?.file_type().is_file() {
                    return Err(SwapError::NotRegular(path.display().to_string()));
                }
                f.set_len(0).map_err(io_err)?;
                (f, false)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SwapError::Exists(path.display().to_string()));
            }
            Err(e) => return Err(io_err(e)),
        };
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut remove_on_drop = created && !self.keep;
        // The data stays reachable through `file`: the path is not needed again.
        #[cfg(unix)]
        if remove_on_drop && std::fs::remove_file(&path).is_ok() {
            remove_on_drop = false;
        }
        self._registered = remove_on_drop.then(|| vmsim_trace::output::register(&path));
        self.remove_on_drop = remove_on_drop;
        for (&slot, data) in &self.pages {
            let at = u64::from(slot) * self.page as u64;
            write_at(&file, data, at).map_err(io_err)?;
        }
        self.path = path;
        self.pages.clear();
        self.backing = Backing::File(file);
        Ok(())
    }

    /// Where the file is, or was (on Unix a file the device created and
    /// does not keep is unlinked once open; reads and writes go through the
    /// open file). Empty until the file exists.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> SwapStats {
        self.stats
    }

    /// Total slots.
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.used.len() as u32
    }

    /// Bytes per slot.
    #[must_use]
    pub fn page_bytes(&self) -> usize {
        self.page
    }

    /// The slots in use, in increasing order.
    pub fn used_slots(&self) -> impl Iterator<Item = SwapSlot> + '_ {
        self.used
            .iter()
            .enumerate()
            .filter(|(_, u)| **u)
            .map(|(i, _)| SwapSlot(i as u32))
    }

    /// The slot of index `index`, if the device has it.
    #[must_use]
    pub fn slot(&self, index: u32) -> Option<SwapSlot> {
        ((index as usize) < self.used.len()).then_some(SwapSlot(index))
    }

    /// A free slot, found next-fit from the last one handed out (slots of
    /// pages evicted together end up together in the file, as Linux's
    /// cluster allocator arranges).
    pub fn alloc(&mut self) -> Result<SwapSlot, SwapError> {
        let n = self.used.len();
        // Full: said at once, not after a scan of every slot.
        if self.stats.slots_used >= n as u64 {
            return Err(SwapError::Full(n as u32));
        }
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if !self.used[i] {
                self.used[i] = true;
                self.cursor = i + 1;
                self.stats.slots_used += 1;
                self.stats.slots_peak = self.stats.slots_peak.max(self.stats.slots_used);
                return Ok(SwapSlot(i as u32));
            }
        }
        Err(SwapError::Full(n as u32))
    }

    /// Releases a slot.
    ///
    /// # Panics
    /// If the slot is not in use: a kernel bug (a slot freed twice).
    pub fn free(&mut self, slot: SwapSlot) {
        let u = &mut self.used[slot.0 as usize];
        assert!(*u, "swap slot {} freed twice", slot.0);
        *u = false;
        self.stats.slots_used -= 1;
        self.pages.remove(&slot.0);
    }

    fn check(&self, len: usize) -> Result<(), SwapError> {
        if len == self.page {
            Ok(())
        } else {
            Err(SwapError::BadLength {
                got: len,
                page: self.page,
            })
        }
    }

    /// Number of gathered pages not yet in the file.
    fn pending_pages(&self) -> usize {
        self.pending.len() / self.page.max(1)
    }

    /// Writes one page into `slot`. A write that extends the run of
    /// consecutive slots written before is gathered with it; the run goes
    /// to the file in one call when it is broken, full, or at
    /// [`SwapDevice::flush`]. An I/O error may so surface at a later write
    /// or flush.
    pub fn write(&mut self, slot: SwapSlot, page: &[u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        if !matches!(self.backing, Backing::File(_)) {
            self.open_file()?;
        }
        if !matches!(self.backing, Backing::File(_)) {
            return Err(self.broken());
        }
        let n = self.pending_pages();
        let extends = n > 0
            && n < MAX_GATHER
            && u64::from(slot.0) == u64::from(self.pending_first) + n as u64;
        if !extends {
            self.flush()?;
            self.pending_first = slot.0;
        }
        self.pending.extend_from_slice(page);
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// Writes one page into `slot` as [`SwapDevice::write`] does, the page
    /// filled in place by `fill` (straight into the gathered run: no page
    /// buffer of the caller's, no second copy). If `fill` fails nothing is
    /// written and its error is returned.
    ///
    /// # Errors
    /// The device's error or `fill`'s, told apart ([`PageIoError`]).
    pub fn write_with<E>(
        &mut self,
        slot: SwapSlot,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), PageIoError<E>> {
        if !matches!(self.backing, Backing::File(_)) {
            // A device without its file yet (a copy): through a buffer.
            let mut buf = vec![0u8; self.page];
            fill(&mut buf).map_err(PageIoError::Page)?;
            return Ok(self.write(slot, &buf)?);
        }
        let n = self.pending_pages();
        let extends = n > 0
            && n < MAX_GATHER
            && u64::from(slot.0) == u64::from(self.pending_first) + n as u64;
        if !extends {
            self.flush()?;
            self.pending_first = slot.0;
        }
        let start = self.pending.len();
        self.pending.resize(start + self.page, 0);
        if let Err(e) = fill(&mut self.pending[start..]) {
            self.pending.truncate(start);
            return Err(PageIoError::Page(e));
        }
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// Reads the page in `slot` as [`SwapDevice::read`] does and hands it to
    /// `use_page` (from the device's own buffer: no allocation).
    ///
    /// # Errors
    /// The device's error or `use_page`'s, told apart ([`PageIoError`]).
    pub fn read_with<E>(
        &mut self,
        slot: SwapSlot,
        use_page: impl FnOnce(&[u8]) -> Result<(), E>,
    ) -> Result<(), PageIoError<E>> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(self.page, 0);
        let r = self.peek(slot, &mut buf).map_err(PageIoError::Device);
        let r = r.and_then(|()| use_page(&buf).map_err(PageIoError::Page));
        self.scratch = buf;
        r?;
        self.stats.reads += 1;
        Ok(())
    }

    /// Writes the gathered pages to the file.
    ///
    /// # Errors
    /// The write failed (the pages stay gathered).
    pub fn flush(&mut self) -> Result<(), SwapError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Backing::File(file) = &self.backing else {
            return Err(self.broken());
        };
        let at = u64::from(self.pending_first) * self.page as u64;
        write_at(file, &self.pending, at).map_err(|source| SwapError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        self.pending.clear();
        Ok(())
    }

    /// Reads the page in `slot`.
    pub fn read(&mut self, slot: SwapSlot, page: &mut [u8]) -> Result<(), SwapError> {
        self.peek(slot, page)?;
        self.stats.reads += 1;
        Ok(())
    }

    /// Reads the page in `slot` without counting it as swap traffic: how a
    /// checkpoint or a copy looks at the device.
    pub fn peek(&self, slot: SwapSlot, page: &mut [u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        match &self.backing {
            Backing::File(file) => {
                let k = u64::from(slot.0).wrapping_sub(u64::from(self.pending_first));
                if k < self.pending_pages() as u64 {
                    let k = k as usize * self.page;
                    page.copy_from_slice(&self.pending[k..k + self.page]);
                    return Ok(());
                }
                let at = u64::from(slot.0) * self.page as u64;
                read_at(file, page, at).map_err(|source| SwapError::Io {
                    path: self.path.display().to_string(),
                    source,
                })
            }
            Backing::Pages => {
                match self.pages.get(&slot.0) {
                    Some(data) => page.copy_from_slice(data),
                    None => page.fill(0),
                }
                Ok(())
            }
            Backing::Broken(_) => Err(self.broken()),
        }
    }

    fn broken(&self) -> SwapError {
        let why = match &self.backing {
            Backing::Broken(w) => w.clone(),
            _ => "no swap file".into(),
        };
        SwapError::Io {
            path: "(copy of a swap device)".into(),
            source: io::Error::other(why),
        }
    }

    /// The slots written since the last call (in increasing order); clears the set.
    pub fn take_written(&mut self) -> Vec<SwapSlot> {
        let mut out = Vec::new();
        for (w, bits) in self.written.iter_mut().enumerate() {
            let mut b = std::mem::take(bits);
            while b != 0 {
                out.push(SwapSlot(w as u32 * 64 + b.trailing_zeros()));
                b &= b - 1;
            }
        }
        out
    }

    /// Puts back the contents of `slot` when a device is rebuilt from a
    /// checkpoint: not swap traffic, not a write since the checkpoint.
    pub fn restore_page(&mut self, slot: SwapSlot, page: &[u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        self.flush()?;
        match &mut self.backing {
            Backing::File(file) => {
                let at = u64::from(slot.0) * self.page as u64;
                write_at(file, page, at).map_err(|source| SwapError::Io {
                    path: self.path.display().to_string(),
                    source,
                })
            }
            Backing::Pages => {
                self.pages.insert(slot.0, page.into());
                Ok(())
            }
            Backing::Broken(_) => Err(self.broken()),
        }
    }

    /// Checks a deserialized device against the machine it belongs to.
    pub fn check_restored(&self, page_bytes: usize) -> Result<(), String> {
        if self.page != page_bytes {
            return Err(format!(
                "swap pages of {} bytes, but the machine's pages are {page_bytes}",
                self.page
            ));
        }
        if self.written.len() != self.used.len().div_ceil(64)
            || self.cursor > self.used.len()
            || self.stats.slots_used != self.used.iter().filter(|u| **u).count() as u64
        {
            return Err("swap device bookkeeping is inconsistent".into());
        }
        Ok(())
    }
}

impl Drop for SwapDevice {
    fn drop(&mut self) {
        // A kept file gets every page (the kernel flushes after each
        // reclaim, so this is a last resort).
        let _ = self.flush();
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A name in the temporary directory that no file has yet: the process id
/// and a counter, skipping names a killed run of an earlier process with the
/// same id left behind (such a file is never touched: it is not ours).
fn unique_temp_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vmsim-swap-{}-{n}.swp", std::process::id()));
        if std::fs::symlink_metadata(&path).is_err() {
            return path;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_through_the_file() {
        let mut d = SwapDevice::create(None, 4, 4096, false, false).expect("create");
        let path = d.path().to_path_buf();
        #[cfg(unix)]
        assert!(!path.exists(), "unlinked as soon as it is open");
        let a = d.alloc().expect("slot");
        let b = d.alloc().expect("slot");
        d.write(b, &[7u8; 4096]).expect("write");
        d.write(a, &[1u8; 4096]).expect("write");
        let mut buf = [0u8; 4096];
        d.read(b, &mut buf).expect("read");
        assert!(buf.iter().all(|&x| x == 7));
        let Backing::File(f) = &d.backing else {
            panic!("a device has its file once created")
        };
        assert_eq!(f.metadata().expect("open file").len(), 2 * 4096);
        assert_eq!(d.stats().writes, 2);
        drop(d);
        assert!(!path.exists(), "removed at the end");
    }

    #[test]
    fn consecutive_writes_are_gathered_and_read_back_before_and_after_the_flush() {
        let mut d = SwapDevice::create(None, 8, 64, false, false).expect("create");
        let mut slots: Vec<SwapSlot> = (0..4).map(|_| d.alloc().expect("slot")).collect();
        let len = |d: &SwapDevice| match &d.backing {
            Backing::File(f) => f.metadata().expect("open file").len(),
            _ => panic!("file"),
        };
        for (i, &s) in slots[..4].iter().enumerate() {
            d.write_with(s, |b| {
                b.fill(i as u8 + 1);
                Ok::<(), &str>(())
            })
            .expect("write");
        }
        assert_eq!(len(&d), 0, "slots 0-3 are one gathered run");
        let mut buf = [0u8; 64];
        d.peek(slots[2], &mut buf).expect("peek");
        assert_eq!(buf, [3; 64], "a gathered page reads back");
        d.read_with(slots[3], |p| {
            assert_eq!(p, &[4; 64][..]);
            Ok::<(), &str>(())
        })
        .expect("read");
        // A copy sees gathered pages too.
        let copy = d.clone();
        copy.peek(slots[1], &mut buf).expect("peek");
        assert_eq!(buf, [2; 64]);
        // A fill that fails writes nothing and counts nothing.
        slots.push(d.alloc().expect("slot"));
        let e = d.write_with(slots[4], |_| Err("no"));
        assert!(matches!(e, Err(PageIoError::Page("no"))), "{e:?}");
        assert_eq!(d.stats().writes, 4);
        d.flush().expect("flush");
        assert_eq!(len(&d), 4 * 64, "one write of the whole run");
        d.read(slots[0], &mut buf).expect("read");
        assert_eq!(buf, [1; 64]);
        // A rewrite of a gathered slot wins over the older copy.
        d.write(slots[4], &[9; 64]).expect("write");
        d.write(slots[4], &[8; 64]).expect("write");
        d.flush().expect("flush");
        d.read(slots[4], &mut buf).expect("read");
        assert_eq!(buf, [8; 64]);
        assert_eq!(d.stats().reads, 3);
    }

    #[test]
    fn full_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swap");
        let mut d = SwapDevice::create(Some(&path), 1, 64, true, false).expect("create");
        let s = d.alloc().expect("slot");
        assert!(matches!(d.alloc(), Err(SwapError::Full(1))));
        assert!(matches!(
            d.write(s, &[0; 10]),
            Err(SwapError::BadLength { .. })
        ));
        d.free(s);
        assert_eq!(d.alloc().expect("slot again"), s);
        drop(d);
        assert!(path.exists(), "kept on request");
    }

    #[test]
    fn a_stale_temporary_name_is_skipped_and_left_alone() {
        // A killed run of an earlier process with our pid left its file.
        let next = unique_temp_path();
        let stale = {
            let name = next
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let (stem, n) = name
                .trim_end_matches(".swp")
                .rsplit_once('-')
                .expect("pid-counter");
            let n: u64 = n.parse().expect("counter");
            next.with_file_name(format!("{stem}-{}.swp", n + 1))
        };
        std::fs::write(&stale, b"someone else's").expect("write stale");
        let mut d = SwapDevice::create(None, 4, 64, false, false).expect("create past it");
        let s = d.alloc().expect("slot");
        d.write(s, &[3; 64]).expect("write");
        assert_ne!(d.path(), stale.as_path());
        drop(d);
        assert_eq!(std::fs::read(&stale).expect("kept"), b"someone else's");
        std::fs::remove_file(&stale).expect("clean up");
    }

    #[test]
    fn an_existing_file_is_refused_unless_overwrite_and_never_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("precious");
        std::fs::write(&path, b"user data").expect("write");
        let e = SwapDevice::create(Some(&path), 4, 64, false, false).expect_err("exists");
        assert!(matches!(e, SwapError::Exists(_)), "{e}");
        assert!(e.to_string().contains("swap_file_overwrite"), "{e}");
        assert_eq!(std::fs::read(&path).expect("read"), b"user data");
        // Allowed: it is truncated and used, and left in place (vmsim did not create it).
        let mut d = SwapDevice::create(Some(&path), 4, 64, false, true).expect("overwrite");
        let s = d.alloc().expect("slot");
        d.write(s, &[9; 64]).expect("write");
        drop(d);
        assert_eq!(std::fs::read(&path).expect("read"), vec![9u8; 64]);
        // Never a directory or a link, even with overwrite.
        let e = SwapDevice::create(Some(dir.path()), 4, 64, false, true).expect_err("dir");
        assert!(matches!(e, SwapError::NotRegular(_)), "{e}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&path, &link).expect("symlink");
            let e = SwapDevice::create(Some(&link), 4, 64, false, true).expect_err("link");
            assert!(matches!(e, SwapError::NotRegular(_)), "{e}");
            let e = SwapDevice::create(Some(Path::new("/dev/null")), 4, 64, false, true)
                .expect_err("device");
            assert!(matches!(e, SwapError::NotRegular(_)), "{e}");
        }
    }

    #[test]
    fn a_created_user_path_is_gone_after_the_run_and_slots_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swap");
        let mut d = SwapDevice::create(Some(&path), 2, 64, false, false).expect("create");
        #[cfg(unix)]
        assert!(!path.exists(), "unlinked once open");
        let s = d.alloc().expect("slot");
        d.write(s, &[5; 64]).expect("write");
        let mut back = [0u8; 64];
        d.read(s, &mut back).expect("read through the open file");
        assert_eq!(back, [5; 64]);
        drop(d);
        assert!(!path.exists());
    }

    #[test]
    fn a_copy_has_the_pages_and_its_own_file_and_checkpoints_see_writes() {
        let mut d = SwapDevice::create(None, 8, 64, false, false).expect("create");
        let a = d.alloc().expect("slot");
        let b = d.alloc().expect("slot");
        d.write(a, &[3; 64]).expect("write");
        d.write(b, &[4; 64]).expect("write");
        assert_eq!(d.take_written(), vec![a, b]);
        assert!(d.take_written().is_empty());
        let mut copy = d.clone();
        drop(d);
        let mut buf = [0u8; 64];
        copy.peek(b, &mut buf).expect("peek");
        assert_eq!(buf, [4; 64]);
        assert_eq!(copy.stats().reads, 0, "peek is not traffic");
        copy.write(a, &[5; 64])
            .expect("the copy makes its own file");
        copy.read(b, &mut buf).expect("read");
        assert_eq!(buf, [4; 64]);
        copy.read(a, &mut buf).expect("read");
        assert_eq!(buf, [5; 64]);
        assert_eq!(copy.take_written(), vec![a]);
        // Bookkeeping round-trips; pages come back through restore_page.
        let bytes = postcard::to_allocvec(&copy).expect("serialize");
        let mut back: SwapDevice = postcard::from_bytes(&bytes).expect("deserialize");
        back.check_restored(64).expect("consistent");
        back.restore_page(a, &[5; 64]).expect("restore");
        back.peek(a, &mut buf).expect("peek");
        assert_eq!(buf, [5; 64]);
        assert_eq!(back.stats(), copy.stats());
    }
}
