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
//! I/O is positioned (`pread`/`pwrite`: no seek per page). In front of the
//! file is a bounded write-back cache in host memory (`swap/cache.rs`): a
//! swap-out copies the frame into it, a swap-in copies it back out, and the
//! file gets the pages in batches sorted by slot, consecutive slots in one
//! write, when the cache needs room, at [`SwapDevice::flush`] (the kernel
//! flushes before a checkpoint) and when the device is dropped. Reads,
//! copies and checkpoints see cached pages that are not in the file yet.
//! The cache holds at most [`DEFAULT_CACHE_BYTES`] (or what
//! [`set_default_cache_bytes`] / [`SwapDevice::set_cache_bytes`] say; 0
//! turns it off: every page is written and read through the file at once).
//!
//! This module owns the file and the slot allocator; which page goes to
//! which slot, and when, is the kernel's business.

mod cache;
mod loan;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cache::{Held, LentSlot, SwapCache};
pub use loan::{LOAN_WORDS, Loan, LoanReturn};
pub(crate) use loan::{LoanBook, LoanRecord};

use crate::shared_page::{SHARED_PAGE_BYTES, SharedChunk, SharedPage};

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
    /// The slot's page is lent to a frame (`loan.rs`) and was read before
    /// its loan was closed: a kernel bug, reported rather than answered
    /// from the file, whose copy may be older.
    #[error("swap slot {0} is lent to a frame: its loan must be closed before it is read")]
    Lent(u32),
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

/// A page read from the device, as [`SwapDevice::read_shared`] hands it over.
#[derive(Debug)]
pub enum PageIn<'a> {
    /// The cache's page itself, shared (no copy made).
    Shared(SharedPage),
    /// A copy in the device's buffer (read from the file, or pages that
    /// are not [`SHARED_PAGE_BYTES`] long).
    Bytes(&'a [u8]),
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
    /// Pages in host memory in front of the file (write-back; only with
    /// [`Backing::File`]). Not part of a checkpoint: the kernel flushes it
    /// first, and a checkpoint reads pages through [`SwapDevice::peek`].
    #[serde(skip)]
    cache: SwapCache,
    /// Most bytes the cache holds (`None`: [`default_cache_bytes`] when the
    /// file is opened).
    #[serde(skip)]
    cache_bytes: Option<u64>,
    /// One page, for reads and writes that bypass the cache (no allocation
    /// per page).
    #[serde(skip)]
    scratch: Vec<u8>,
    /// Lend pages to frames at all ([`SwapDevice::lend`]; on by default).
    #[serde(skip)]
    no_lending: bool,
}

/// How much host memory a swap device's cache may hold unless told
/// otherwise: 256 MiB (65,536 pages of 4 KiB). A run whose swapped pages
/// fit does no swap I/O until a checkpoint or its end; a bigger one
/// writes and reads the excess through the file.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// The process-wide default for new devices' caches (see
/// [`set_default_cache_bytes`]).
static CACHE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_CACHE_BYTES);

/// Sets how much host memory the cache of each swap device created from now
/// on may hold (0: no cache). The CLI sets it from `VMSIM_SWAP_CACHE`.
pub fn set_default_cache_bytes(bytes: u64) {
    CACHE_BYTES.store(bytes, Ordering::Relaxed);
}

/// The bound new devices' caches get.
#[must_use]
pub fn default_cache_bytes() -> u64 {
    CACHE_BYTES.load(Ordering::Relaxed)
}

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
            cache: SwapCache::default(),
            cache_bytes: self.cache_bytes,
            scratch: Vec::new(),
            no_lending: self.no_lending,
        };
        let mut buf = vec![0u8; self.page];
        for slot in self.used_slots() {
            // A lent slot's old bytes are in memory's undo records, out of
            // this device's reach: the copy says so at its first use (no
            // debug panic: copying is the caller's choice, not a bug here).
            if self.cache.is_slot_lent(slot.0) {
                copy.backing = Backing::Broken(format!(
                    "swap slot {} was lent to a frame when the device was copied \
                     (close loans with Kernel::flush_swap before copying a machine)",
                    slot.0
                ));
                break;
            }
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
            cache: SwapCache::default(),
            cache_bytes: None,
            scratch: Vec::new(),
            no_lending: false,
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
        let (path, file, created) = match &self.configured {
            Some(p) => {
                let (file, created) = open_user_path(p, self.overwrite)?;
                (p.clone(), file, created)
            }
            None => {
                let (path, file) = create_unique_temp()?;
                (path, file, true)
            }
        };
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
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
        let bytes = self.cache_bytes.unwrap_or_else(default_cache_bytes);
        let pages = usize::try_from(bytes / self.page.max(1) as u64).unwrap_or(usize::MAX);
        self.cache = SwapCache::new(self.page, self.used.len(), pages);
        Ok(())
    }

    /// Bounds this device's cache to `bytes` of host memory (0: no cache,
    /// every page goes through the file at once). Writes the cached pages
    /// to the file first when the file exists.
    ///
    /// # Errors
    /// The pages could not be written (the cache stays as it was).
    pub fn set_cache_bytes(&mut self, bytes: u64) -> Result<(), SwapError> {
        self.cache_bytes = Some(bytes);
        if matches!(self.backing, Backing::File(_)) {
            self.flush()?;
            let pages = usize::try_from(bytes / self.page.max(1) as u64).unwrap_or(usize::MAX);
            self.cache = SwapCache::new(self.page, self.used.len(), pages);
        }
        Ok(())
    }

    /// Pages the cache holds, and how many of them the file does not have yet.
    #[must_use]
    pub fn cached_pages(&self) -> (usize, usize) {
        (self.cache.len(), self.cache.dirty_pages())
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
        // A free slot's contents no longer matter: a dirty copy is never written.
        self.cache.remove(slot.0);
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

    /// Opens the file if the device has none yet (a copy, a restored
    /// device).
    fn ensure_file(&mut self) -> Result<(), SwapError> {
        if !matches!(self.backing, Backing::File(_)) {
            self.open_file()?;
        }
        if matches!(self.backing, Backing::File(_)) {
            Ok(())
        } else {
            Err(self.broken())
        }
    }

    /// Writes one page into `slot`: into the cache (the file gets it
    /// later, see [`SwapDevice::flush`]), or straight to the file without
    /// a cache. An I/O error may so surface at a later write or flush.
    ///
    /// The bytes go straight from `page` into the cache entry (a new
    /// entry's buffer is made from them, not zeroed first) or to the file.
    pub fn write(&mut self, slot: SwapSlot, page: &[u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        self.ensure_file()?;
        let Backing::File(file) = &self.backing else {
            return Err(self.broken());
        };
        let (page_len, path) = (self.page, &self.path);
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
        };
        if self.cache.limit() == 0 {
            // No cache: to the file at once.
            write_at(file, page, u64::from(slot.0) * page_len as u64).map_err(io_err)?;
        } else {
            let mut write =
                |first: u32, data: &[u8]| write_at(file, data, u64::from(first) * page_len as u64);
            self.cache
                .put_copy(slot.0, page, &mut write)
                .map_err(io_err)?;
        }
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// Writes one page into `slot` as [`SwapDevice::write`] does, the page
    /// filled in place by `fill` (straight into its cache entry: no page
    /// buffer of the caller's, no second copy). If `fill` fails nothing is
    /// written, the slot keeps its old contents, and `fill`'s error is
    /// returned.
    ///
    /// # Errors
    /// The device's error or `fill`'s, told apart ([`PageIoError`]).
    pub fn write_with<E>(
        &mut self,
        slot: SwapSlot,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), PageIoError<E>> {
        self.ensure_file()?;
        let Backing::File(file) = &self.backing else {
            return Err(self.broken().into());
        };
        let (page, path) = (self.page, &self.path);
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
        };
        if self.cache.limit() == 0 {
            // No cache: through one page buffer, to the file at once.
            let mut buf = std::mem::take(&mut self.scratch);
            buf.resize(page, 0);
            let r = fill(&mut buf).map_err(PageIoError::Page).and_then(|()| {
                write_at(file, &buf, u64::from(slot.0) * page as u64)
                    .map_err(|e| PageIoError::Device(io_err(e)))
            });
            self.scratch = buf;
            r?;
        } else {
            let mut write =
                |first: u32, data: &[u8]| write_at(file, data, u64::from(first) * page as u64);
            self.cache
                .put(slot.0, fill, &mut write)
                .map_err(|e| match e {
                    Ok(io) => PageIoError::Device(io_err(io)),
                    Err(e) => PageIoError::Page(e),
                })?;
        }
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// Writes `page` into `slot` as [`SwapDevice::write`] writes its bytes,
    /// but into the cache without a copy: the cache entry shares the
    /// page's buffer (or holds no buffer for an all-zero page). Without a
    /// cache, or with pages of another size, its bytes are written.
    ///
    /// # Errors
    /// As [`SwapDevice::write`].
    pub fn write_shared(&mut self, slot: SwapSlot, page: SharedPage) -> Result<(), SwapError> {
        self.ensure_file()?;
        if self.page != SHARED_PAGE_BYTES || self.cache.limit() == 0 {
            return self.write(slot, page.bytes());
        }
        let Backing::File(file) = &self.backing else {
            return Err(self.broken());
        };
        let held = match page {
            SharedPage::Zero => Held::Zero,
            SharedPage::Bytes(c) => Held::Bytes(c.0),
        };
        let page_len = self.page;
        let mut write =
            |first: u32, data: &[u8]| write_at(file, data, u64::from(first) * page_len as u64);
        self.cache
            .put_held(slot.0, held, &mut write)
            .map_err(|source| SwapError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// A buffer of [`SHARED_PAGE_BYTES`] the cache holds as a spare (no
    /// other holder), handed over for memory to fill at its next copy on
    /// first write (see `PhysMem::give_spare_page`).
    pub fn take_spare_page(&mut self) -> Option<SharedChunk> {
        if self.page != SHARED_PAGE_BYTES {
            return None;
        }
        SharedChunk::try_from(self.cache.take_spare()?).ok()
    }

    /// Turns lending ([`SwapDevice::lend`]) on or off (on by default): off,
    /// every swap-in shares or copies the cache's page, as before loans.
    pub fn set_lending(&mut self, on: bool) {
        self.no_lending = !on;
    }

    /// Reads the page in `slot` (a swap-in, counted as one) by lending its
    /// cached buffer to the caller (`loan.rs`): the cache entry records the
    /// loan and keeps no bytes until [`SwapDevice::give_back`]. Only a
    /// cached page of [`SHARED_PAGE_BYTES`], not all zero, that no frame
    /// shares; `None` otherwise (nothing done: read it the usual way). The
    /// caller must know that no swap entry refers to the slot any more
    /// (nobody else will read it) and must install the loan in memory.
    pub fn lend(&mut self, slot: SwapSlot) -> Option<Loan> {
        if self.no_lending
            || self.page != SHARED_PAGE_BYTES
            || !matches!(self.backing, Backing::File(_))
        {
            return None;
        }
        // Each loan its own number, in the whole process (a copied or
        // restored device's too): a late return for a slot rewritten or
        // given to another device since is told apart.
        static NEXT_LOAN: AtomicU64 = AtomicU64::new(1);
        let number = NEXT_LOAN.fetch_add(1, Ordering::Relaxed);
        let buf = self.cache.lend(slot.0, number)?;
        match SharedChunk::try_from(buf) {
            Ok(page) => {
                self.stats.reads += 1;
                Some(Loan { slot, number, page })
            }
            Err(buf) => {
                // Not a page's length (never: checked above): back as it was.
                self.cache.give_back(slot.0, number, buf);
                None
            }
        }
    }

    /// Takes back the old bytes of a lent slot (a closed loan): the slot's
    /// cache entry holds them again, unless the slot was rewritten or freed
    /// since (then the buffer is a spare). Not a write.
    #[inline]
    pub fn give_back(&mut self, back: LoanReturn) {
        let _ = self.cache.give_back(back.slot.0, back.number, back.page);
    }

    /// Cache entries lent to frames now.
    #[must_use]
    pub fn lent_pages(&self) -> usize {
        self.cache.lent()
    }

    /// Whether `slot`'s page is lent to a frame now (reading it is then an
    /// error until the loan is closed).
    #[must_use]
    pub fn is_lent(&self, slot: SwapSlot) -> bool {
        self.cache.is_slot_lent(slot.0)
    }

    /// Reads the page in `slot` as [`SwapDevice::read_with`] does, handing
    /// a cached page of [`SHARED_PAGE_BYTES`] over shared
    /// ([`PageIn::Shared`]: no copy) and any other as bytes.
    ///
    /// # Errors
    /// The device's error or `use_page`'s, told apart ([`PageIoError`]).
    pub fn read_shared<E>(
        &mut self,
        slot: SwapSlot,
        use_page: impl FnOnce(PageIn<'_>) -> Result<(), E>,
    ) -> Result<(), PageIoError<E>> {
        let shared = if matches!(self.backing, Backing::File(_)) && self.page == SHARED_PAGE_BYTES {
            match self.cache.get_held(slot.0) {
                Some(Held::Zero) => Some(SharedPage::Zero),
                Some(Held::Bytes(b)) => SharedChunk::try_from(b.clone())
                    .ok()
                    .map(SharedPage::nonzero),
                Some(Held::Lent(_)) => return Err(self.lent_error(slot).into()),
                None => None,
            }
        } else {
            None
        };
        match shared {
            Some(page) => {
                use_page(PageIn::Shared(page)).map_err(PageIoError::Page)?;
                self.stats.reads += 1;
                Ok(())
            }
            None => self.read_with(slot, |bytes| use_page(PageIn::Bytes(bytes))),
        }
    }

    /// Reads the page in `slot` as [`SwapDevice::read`] does and hands it to
    /// `use_page` (from its cache entry, or the device's own buffer: no
    /// allocation, no second copy).
    ///
    /// # Errors
    /// The device's error or `use_page`'s, told apart ([`PageIoError`]).
    pub fn read_with<E>(
        &mut self,
        slot: SwapSlot,
        use_page: impl FnOnce(&[u8]) -> Result<(), E>,
    ) -> Result<(), PageIoError<E>> {
        if matches!(self.backing, Backing::File(_)) {
            match self.cache.get(slot.0) {
                Ok(Some(data)) => {
                    use_page(data).map_err(PageIoError::Page)?;
                    self.stats.reads += 1;
                    return Ok(());
                }
                Ok(None) => {}
                Err(LentSlot) => return Err(self.lent_error(slot).into()),
            }
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(self.page, 0);
        let r = self.peek(slot, &mut buf).map_err(PageIoError::Device);
        let r = r.and_then(|()| use_page(&buf).map_err(PageIoError::Page));
        self.scratch = buf;
        r?;
        self.stats.reads += 1;
        Ok(())
    }

    /// Writes the cached pages the file does not have yet to the file
    /// (sorted by slot, consecutive slots in one write); they stay cached.
    ///
    /// # Errors
    /// A write failed: the pages not written stay in the cache, dirty.
    pub fn flush(&mut self) -> Result<(), SwapError> {
        if self.cache.dirty_pages() == 0 {
            return Ok(());
        }
        let Backing::File(file) = &self.backing else {
            return Err(self.broken());
        };
        let page = self.page;
        let mut write =
            |first: u32, data: &[u8]| write_at(file, data, u64::from(first) * page as u64);
        self.cache
            .flush(&mut write)
            .map_err(|source| SwapError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }

    /// Reads the page in `slot`.
    pub fn read(&mut self, slot: SwapSlot, page: &mut [u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        self.read_with(slot, |data| {
            page.copy_from_slice(data);
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| match e {
            PageIoError::Device(e) => e,
            PageIoError::Page(never) => match never {},
        })
    }

    /// Reads the page in `slot` without counting it as swap traffic: how a
    /// checkpoint or a copy looks at the device (from the cache when it
    /// holds the page, else the file).
    pub fn peek(&self, slot: SwapSlot, page: &mut [u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        match &self.backing {
            Backing::File(file) => {
                match self.cache.peek(slot.0) {
                    Ok(Some(data)) => {
                        page.copy_from_slice(data);
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(LentSlot) => return Err(self.lent_error(slot)),
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

    /// Breaks the device as a failed copy does (every later use reports
    /// `why`): tests of how a run returns an I/O error met mid-span.
    #[cfg(test)]
    pub(crate) fn break_for_test(&mut self, why: &str) {
        self.backing = Backing::Broken(why.to_string());
    }

    /// A lent slot was read: loud in a debug build, an error in any.
    fn lent_error(&self, slot: SwapSlot) -> SwapError {
        if cfg!(debug_assertions) {
            panic!("swap slot {} read while lent to a frame", slot.0);
        }
        SwapError::Lent(slot.0)
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
        // The file's copy is the one: a cached one would hide it.
        self.cache.remove(slot.0);
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

    /// Checks a deserialized device against the pager it belongs to: the
    /// `slots` configured, and its file the pager's (`path`, `keep`,
    /// `overwrite`) or none (a copy's temporary file). A forged path with
    /// `overwrite` would let the restored run truncate a file the
    /// configuration never named; a forged slot count, swap more than
    /// configured; a peak below the slots in use, a report that lies.
    pub(crate) fn check_restored_settings(
        &self,
        slots: u32,
        path: Option<&Path>,
        keep: bool,
        overwrite: bool,
    ) -> Result<(), String> {
        if self.used.len() != slots as usize {
            return Err(format!(
                "{} slots but the configuration gives {slots}",
                self.used.len()
            ));
        }
        let file = (self.configured.as_deref(), self.keep, self.overwrite);
        if file != (path, keep, overwrite) && file != (None, false, false) {
            return Err(format!(
                "its file {:?} (keep {}, overwrite {}) is not the configuration's",
                self.configured, self.keep, self.overwrite
            ));
        }
        if self.stats.slots_peak < self.stats.slots_used
            || self.stats.slots_peak > self.used.len() as u64
        {
            return Err(format!(
                "a peak of {} slots in use, with {} in use of {}",
                self.stats.slots_peak,
                self.stats.slots_used,
                self.used.len()
            ));
        }
        Ok(())
    }

    /// Test hook: `more` slots more than configured.
    #[cfg(test)]
    pub(crate) fn forge_grow(&mut self, more: usize) {
        self.used.resize(self.used.len() + more, false);
        self.written.resize(self.used.len().div_ceil(64), 0);
    }

    /// Test hook: the peak of slots in use.
    #[cfg(test)]
    pub(crate) fn forge_peak(&mut self, peak: u64) {
        self.stats.slots_peak = peak;
    }

    /// Test hook: the file at `path`, to be overwritten.
    #[cfg(test)]
    pub(crate) fn forge_file(&mut self, path: &Path) {
        self.configured = Some(path.to_path_buf());
        self.overwrite = true;
    }
}

impl Drop for SwapDevice {
    fn drop(&mut self) {
        // A kept file gets every page. (Nothing else can be done with an
        // error here; the kernel flushes at checkpoints and at the end of a
        // run, where an error is reported.)
        let _ = self.flush();
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Opens the swap file at the user's `path`: a new file, or (with
/// `overwrite`) an existing regular file cut to nothing; never anything
/// else. Returns the file and whether it was created.
fn open_user_path(path: &Path, overwrite: bool) -> Result<(File, bool), SwapError> {
    let io_err = |source| SwapError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            return Err(SwapError::NotRegular(path.display().to_string()));
        }
        if !overwrite {
            return Err(SwapError::Exists(path.display().to_string()));
        }
    }
    // create_new: a file that appears meanwhile is not truncated either.
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && overwrite => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_err)?;
            if !f.metadata().map_err(io_err)?.file_type().is_file() {
                return Err(SwapError::NotRegular(path.display().to_string()));
            }
            f.set_len(0).map_err(io_err)?;
            Ok((f, false))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(SwapError::Exists(path.display().to_string()))
        }
        Err(e) => Err(io_err(e)),
    }
}

/// How many names [`create_unique_temp`] tries before it gives up.
const TEMP_NAME_TRIES: usize = 1000;

/// Creates a new temporary swap file under a name no file has. The name
/// is free when [`unique_temp_path`] picks it, but another process may
/// take it before the file is created: one with the same process id in
/// another PID namespace sharing this temporary directory (containers,
/// sandboxes), or a leftover of a run that was killed. So a name taken
/// meanwhile is not an error: the next one is tried.
fn create_unique_temp() -> Result<(PathBuf, File), SwapError> {
    create_first_free(unique_temp_path)
}

/// [`create_unique_temp`] with the names drawn from `next`.
fn create_first_free(mut next: impl FnMut() -> PathBuf) -> Result<(PathBuf, File), SwapError> {
    let mut last = PathBuf::new();
    for _ in 0..TEMP_NAME_TRIES {
        let path = next();
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = path,
            Err(e) => {
                return Err(SwapError::Io {
                    path: path.display().to_string(),
                    source: e,
                });
            }
        }
    }
    Err(SwapError::Exists(last.display().to_string()))
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

    /// A temporary name taken between its choice and the file's creation
    /// (another PID namespace's run with the same process id) is passed
    /// over, not reported: the run used to fail with "exists".
    #[test]
    fn a_temporary_name_taken_meanwhile_is_passed_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let taken = dir.path().join("taken.swp");
        std::fs::write(&taken, b"another run's").expect("write");
        let names = [taken.clone(), dir.path().join("free.swp")];
        let mut i = 0;
        let (path, _file) = create_first_free(|| {
            i += 1;
            names[i - 1].clone()
        })
        .expect("the next name");
        assert_eq!(path, dir.path().join("free.swp"));
        assert_eq!(std::fs::read(&taken).expect("read"), b"another run's");
        let e = create_first_free(|| taken.clone()).expect_err("never free");
        assert!(
            matches!(e, SwapError::Exists(ref p) if p.ends_with("taken.swp")),
            "{e}"
        );
    }

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
        let len = |d: &SwapDevice| match &d.backing {
            Backing::File(f) => f.metadata().expect("open file").len(),
            _ => panic!("a device has its file once created"),
        };
        // The pages wait in the cache until a flush writes them (slots 0
        // and 1 in one write).
        assert_eq!(len(&d), 0);
        d.flush().expect("flush");
        assert_eq!(len(&d), 2 * 4096);
        let Backing::File(f) = &d.backing else {
            panic!("a device has its file once created")
        };
        let mut on_disk = [0u8; 4096];
        read_at(f, &mut on_disk, 4096).expect("read the file");
        assert!(
            on_disk.iter().all(|&x| x == 7),
            "slot 1's page is in the file"
        );
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

    /// The file's bytes for `slot` (what a reader of the file sees).
    fn on_disk(d: &SwapDevice, slot: SwapSlot) -> Vec<u8> {
        let Backing::File(f) = &d.backing else {
            panic!("file")
        };
        let mut buf = vec![0u8; d.page];
        read_at(f, &mut buf, u64::from(slot.0) * d.page as u64).expect("read the file");
        buf
    }

    #[test]
    fn a_failing_file_keeps_every_page_cached_and_a_later_flush_writes_them() {
        let mut d = SwapDevice::create(None, 16, 64, false, false).expect("create");
        d.set_cache_bytes(4 * 64).expect("cache of 4 pages");
        let slots: Vec<SwapSlot> = (0..6).map(|_| d.alloc().expect("slot")).collect();
        for (i, &s) in slots[..4].iter().enumerate() {
            d.write(s, &[i as u8 + 1; 64]).expect("write");
        }
        // The file turns read-only: making room for a fifth page fails.
        let Backing::File(f) = std::mem::take(&mut d.backing) else {
            panic!("file")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let ro_path = dir.path().join("ro");
        std::fs::write(&ro_path, b"").expect("create");
        d.backing = Backing::File(File::open(&ro_path).expect("read-only"));
        let e = d
            .write(slots[4], &[5; 64])
            .expect_err("no room without a write");
        assert!(matches!(e, SwapError::Io { .. }), "{e}");
        assert_eq!(d.stats().writes, 4, "the failed write is not counted");
        assert!(d.flush().is_err());
        assert_eq!(d.cached_pages(), (4, 4), "every page still cached, dirty");
        let mut buf = [0u8; 64];
        for (i, &s) in slots[..4].iter().enumerate() {
            d.peek(s, &mut buf).expect("peek");
            assert_eq!(buf, [i as u8 + 1; 64]);
        }
        // The file comes back: the flush writes every page.
        d.backing = Backing::File(f);
        d.flush().expect("flush");
        assert_eq!(d.cached_pages(), (4, 0));
        for (i, &s) in slots[..4].iter().enumerate() {
            assert_eq!(on_disk(&d, s), vec![i as u8 + 1; 64]);
        }
        d.write(slots[4], &[5; 64]).expect("room now");
        d.write(slots[5], &[6; 64]).expect("room now");
        assert_eq!(d.cached_pages().0, 4, "never more than the limit");
        d.read(slots[0], &mut buf)
            .expect("read an evicted page from the file");
        assert_eq!(buf, [1; 64]);
    }

    #[test]
    fn dropping_a_kept_device_writes_the_cached_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swap");
        let mut d = SwapDevice::create(Some(&path), 8, 64, true, false).expect("create");
        let a = d.alloc().expect("slot");
        let b = d.alloc().expect("slot");
        d.write(b, &[2; 64]).expect("write");
        d.write(a, &[1; 64]).expect("write");
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            0,
            "cached so far"
        );
        drop(d);
        let mut want = vec![1u8; 64];
        want.extend([2u8; 64]);
        assert_eq!(std::fs::read(&path).expect("read"), want);
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        /// A slot, written at once.
        Alloc,
        Write(usize, u8),
        Read(usize),
        Free(usize),
        Flush,
        Clone,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            2 => Just(Op::Alloc),
            6 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Op::Write(i, v)),
            5 => any::<usize>().prop_map(Op::Read),
            2 => any::<usize>().prop_map(Op::Free),
            1 => Just(Op::Flush),
            1 => Just(Op::Clone),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]

        /// A device with a small cache reads back exactly what one without a
        /// cache does, counts the same traffic, and after a flush its file
        /// holds the same pages.
        #[test]
        fn a_cached_device_behaves_as_the_uncached_one(
            limit in 0usize..6,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let page = 32;
            let mut cached = SwapDevice::create(None, 12, page, false, false).expect("create");
            cached.set_cache_bytes((limit * page) as u64).expect("limit");
            let mut plain = SwapDevice::create(None, 12, page, false, false).expect("create");
            plain.set_cache_bytes(0).expect("no cache");
            let mut live: Vec<SwapSlot> = Vec::new();
            let mut written: Vec<SwapSlot> = Vec::new();
            let (mut a, mut b) = (vec![0u8; page], vec![0u8; page]);
            for op in ops {
                match op {
                    Op::Alloc => {
                        let (x, y) = (cached.alloc(), plain.alloc());
                        proptest::prop_assert_eq!(x.as_ref().ok(), y.as_ref().ok());
                        // The kernel writes a slot as soon as it has it.
                        if let Ok(s) = x {
                            let data = vec![s.0 as u8; page];
                            cached.write(s, &data).expect("write");
                            plain.write(s, &data).expect("write");
                            live.push(s);
                            written.push(s);
                        }
                    }
                    Op::Write(i, v) if !live.is_empty() => {
                        let s = live[i % live.len()];
                        let data: Vec<u8> = (0..page).map(|k| v.wrapping_add(k as u8)).collect();
                        cached.write(s, &data).expect("write");
                        plain.write(s, &data).expect("write");
                        if !written.contains(&s) {
                            written.push(s);
                        }
                    }
                    Op::Read(i) if !written.is_empty() => {
                        let s = written[i % written.len()];
                        cached.read(s, &mut a).expect("read");
                        plain.read(s, &mut b).expect("read");
                        proptest::prop_assert_eq!(&a, &b);
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let s = live.swap_remove(i % live.len());
                        written.retain(|&w| w != s);
                        cached.free(s);
                        plain.free(s);
                    }
                    Op::Flush => cached.flush().expect("flush"),
                    Op::Clone => {
                        let copy = cached.clone();
                        for &s in &written {
                            copy.peek(s, &mut a).expect("peek");
                            plain.peek(s, &mut b).expect("peek");
                            proptest::prop_assert_eq!(&a, &b);
                        }
                    }
                    _ => {}
                }
                proptest::prop_assert!(cached.cached_pages().0 <= limit.max(2));
            }
            proptest::prop_assert_eq!(cached.stats(), plain.stats());
            proptest::prop_assert_eq!(cached.take_written(), plain.take_written());
            cached.flush().expect("flush");
            proptest::prop_assert_eq!(cached.cached_pages().1, 0);
            for &s in &written {
                proptest::prop_assert_eq!(on_disk(&cached, s), on_disk(&plain, s));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(48))]

        /// Pages put without a copy (shared buffers, all-zero pages) and
        /// lent out again read back, count and reach the file exactly as
        /// copies of their bytes through a device without a cache do, and
        /// no buffer a frame still holds is ever written over by the cache
        /// (small caches: CLOCK victims, written-back and reused entries).
        #[test]
        fn shared_pages_behave_as_copies(
            limit in 2usize..5,
            ops in proptest::collection::vec((0u8..6, proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..80),
        ) {
            use proptest::prelude::*;
            use std::sync::Arc;
            let page = SHARED_PAGE_BYTES;
            let mut cached = SwapDevice::create(None, 8, page, false, false).expect("create");
            cached.set_cache_bytes((limit * page) as u64).expect("limit");
            let mut plain = SwapDevice::create(None, 8, page, false, false).expect("create");
            plain.set_cache_bytes(0).expect("no cache");
            // Pages held by "frames", each with the bytes it must keep.
            let mut held: Vec<(SharedPage, Vec<u8>)> = vec![(SharedPage::Zero, vec![0; page])];
            let mut live: Vec<SwapSlot> = Vec::new();
            let mut b = vec![0u8; page];
            for (kind, i, v) in ops {
                match kind {
                    0 => {
                        if let (Ok(s), Ok(_)) = (cached.alloc(), plain.alloc()) {
                            let data: Vec<u8> = (0..page).map(|k| v ^ k as u8).collect();
                            cached.write(s, &data).expect("write");
                            plain.write(s, &data).expect("write");
                            live.push(s);
                        }
                    }
                    1 | 2 if !live.is_empty() => {
                        let s = live[i % live.len()];
                        let p = if kind == 1 {
                            held[v as usize % held.len()].0.clone()
                        } else {
                            let mut bytes = [0u8; SHARED_PAGE_BYTES];
                            bytes[i % page] = v;
                            let p = SharedPage::new(Arc::new(bytes));
                            held.push((p.clone(), bytes.to_vec()));
                            p
                        };
                        plain.write(s, p.bytes()).expect("write");
                        cached.write_shared(s, p).expect("write");
                    }
                    3 if !live.is_empty() => {
                        let s = live[i % live.len()];
                        let mut got = Vec::new();
                        cached
                            .read_shared(s, |p| {
                                match p {
                                    PageIn::Shared(p) => {
                                        got = p.bytes().to_vec();
                                        held.push((p, got.clone()));
                                    }
                                    PageIn::Bytes(bytes) => got = bytes.to_vec(),
                                }
                                Ok::<(), ()>(())
                            })
                            .expect("read");
                        plain.read(s, &mut b).expect("read");
                        prop_assert_eq!(&got, &b);
                    }
                    4 if !live.is_empty() => {
                        let s = live.swap_remove(i % live.len());
                        cached.free(s);
                        plain.free(s);
                    }
                    5 => {
                        cached.flush().expect("flush");
                        let copy = cached.clone();
                        for &s in &live {
                            copy.peek(s, &mut b).expect("peek");
                            let mut want = vec![0u8; page];
                            plain.peek(s, &mut want).expect("peek");
                            prop_assert_eq!(&b, &want);
                        }
                    }
                    _ => {}
                }
                prop_assert!(cached.cached_pages().0 <= limit);
            }
            for (p, bytes) in &held {
                prop_assert_eq!(&p.bytes()[..], &bytes[..], "a shared buffer changed");
            }
            prop_assert_eq!(cached.stats(), plain.stats());
            prop_assert_eq!(cached.take_written(), plain.take_written());
            cached.flush().expect("flush");
            for &s in &live {
                prop_assert_eq!(on_disk(&cached, s), on_disk(&plain, s));
            }
        }
    }
}
