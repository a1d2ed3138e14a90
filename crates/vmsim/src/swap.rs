//! A swap device backed by a real file.
//!
//! Pages are written and read at slot offsets (`slot * page_bytes`) of an
//! ordinary file, so a simulation that swaps does real I/O and a test can
//! read the bytes back. The file lives in a temporary directory (or at a
//! path the user gives) and is removed when the device is dropped, unless
//! the user asked to keep it.
//!
//! A device can be copied ([`Clone`]) and captured in a checkpoint: its
//! bookkeeping serializes, its pages are read with [`SwapDevice::peek`]
//! (which is not swap traffic) and the slots written since the last
//! checkpoint are kept in a bitmap ([`SwapDevice::take_written`]). A copy or
//! a restored device holds its pages in host memory until its first write,
//! which creates its own file: two devices never share one file.
//!
//! This module owns the file and the slot allocator; which page goes to
//! which slot, and when, is the kernel's business.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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
    /// The file's path once it exists.
    #[serde(skip)]
    path: PathBuf,
    /// Where the user asked the file to be (none: a temporary name).
    configured: Option<PathBuf>,
    keep: bool,
    page: usize,
    used: Vec<bool>,
    cursor: usize,
    stats: SwapStats,
    /// Slots written since the last [`SwapDevice::take_written`], one bit each.
    written: Vec<u64>,
}

impl Clone for SwapDevice {
    /// A copy with the same slots and pages, in host memory until its first
    /// write gives it a file of its own (a temporary one, removed on drop).
    fn clone(&self) -> Self {
        let mut copy = Self {
            backing: Backing::Pages,
            pages: BTreeMap::new(),
            path: PathBuf::new(),
            configured: None,
            keep: false,
            page: self.page,
            used: self.used.clone(),
            cursor: self.cursor,
            stats: self.stats,
            written: self.written.clone(),
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
    /// file is created there (replacing a file of that name); otherwise in
    /// the system's temporary directory under a unique name. With `keep` the
    /// file stays after the device is dropped.
    pub fn create(
        path: Option<&Path>,
        slots: u32,
        page_bytes: usize,
        keep: bool,
    ) -> Result<Self, SwapError> {
        let mut dev = Self {
            backing: Backing::Pages,
            pages: BTreeMap::new(),
            path: PathBuf::new(),
            configured: path.map(Path::to_path_buf),
            keep,
            page: page_bytes,
            used: vec![false; slots as usize],
            cursor: 0,
            stats: SwapStats::default(),
            written: vec![0; (slots as usize).div_ceil(64)],
        };
        dev.open_file()?;
        Ok(dev)
    }

    /// Creates the device's file (at the configured path, or a unique
    /// temporary one) and moves any pages held in memory into it.
    fn open_file(&mut self) -> Result<(), SwapError> {
        if let Backing::Broken(why) = &self.backing {
            return Err(SwapError::Io {
                path: "(copy of a swap device)".into(),
                source: io::Error::other(why.clone()),
            });
        }
        let path = match &self.configured {
            Some(p) => p.clone(),
            None => unique_temp_path(),
        };
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err)?;
        self.path = path;
        for (&slot, data) in &self.pages {
            let at = u64::from(slot) * self.page as u64;
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.write_all(data))
                .map_err(|source| SwapError::Io {
                    path: self.path.display().to_string(),
                    source,
                })?;
        }
        self.pages.clear();
        self.backing = Backing::File(file);
        Ok(())
    }

    /// Where the file is (empty until it exists).
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

    /// Writes one page into `slot`.
    pub fn write(&mut self, slot: SwapSlot, page: &[u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        if !matches!(self.backing, Backing::File(_)) {
            self.open_file()?;
        }
        let Backing::File(file) = &mut self.backing else {
            return Err(self.broken());
        };
        let at = u64::from(slot.0) * self.page as u64;
        let r = file
            .seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(page));
        r.map_err(|source| SwapError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        if let Some(w) = self.written.get_mut(slot.0 as usize / 64) {
            *w |= 1 << (slot.0 % 64);
        }
        self.stats.writes += 1;
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
                let at = u64::from(slot.0) * self.page as u64;
                let mut f = file;
                let r = f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(page));
                r.map_err(|source| SwapError::Io {
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
        match &mut self.backing {
            Backing::File(file) => {
                let at = u64::from(slot.0) * self.page as u64;
                let r = file
                    .seek(SeekFrom::Start(at))
                    .and_then(|_| file.write_all(page));
                r.map_err(|source| SwapError::Io {
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
        if !self.keep && matches!(self.backing, Backing::File(_)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn unique_temp_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("vmsim-swap-{}-{n}.swp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_through_the_file() {
        let mut d = SwapDevice::create(None, 4, 4096, false).expect("create");
        let path = d.path().to_path_buf();
        let a = d.alloc().expect("slot");
        let b = d.alloc().expect("slot");
        d.write(b, &[7u8; 4096]).expect("write");
        d.write(a, &[1u8; 4096]).expect("write");
        let mut buf = [0u8; 4096];
        d.read(b, &mut buf).expect("read");
        assert!(buf.iter().all(|&x| x == 7));
        assert_eq!(
            std::fs::metadata(&path).expect("file exists").len(),
            2 * 4096
        );
        assert_eq!(d.stats().writes, 2);
        drop(d);
        assert!(!path.exists(), "removed at the end");
    }

    #[test]
    fn full_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swap");
        let mut d = SwapDevice::create(Some(&path), 1, 64, true).expect("create");
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
}
