//! A swap device backed by a real file.
//!
//! Pages are written and read at slot offsets (`slot * page_bytes`) of an
//! ordinary file, so a simulation that swaps does real I/O and a test can
//! read the bytes back. The file lives in a temporary directory (or at a
//! path the user gives) and is removed when the device is dropped, unless
//! the user asked to keep it.
//!
//! This module owns the file and the slot allocator; which page goes to
//! which slot, and when, is the kernel's business.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// A slot of the swap device: where one page is kept.
///
/// Guarantee: made only by [`SwapDevice::alloc`], so it is below the
/// device's slot count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

/// A file-backed swap device with a fixed number of slots.
#[derive(Debug)]
pub struct SwapDevice {
    file: File,
    path: PathBuf,
    keep: bool,
    page: usize,
    used: Vec<bool>,
    cursor: usize,
    stats: SwapStats,
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
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => unique_temp_path(),
        };
        let io_err = |source| SwapError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err)?;
        Ok(Self {
            file,
            path,
            keep,
            page: page_bytes,
            used: vec![false; slots as usize],
            cursor: 0,
            stats: SwapStats::default(),
        })
    }

    /// Where the file is.
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
        let at = u64::from(slot.0) * self.page as u64;
        let r = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(page));
        r.map_err(|source| SwapError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        self.stats.writes += 1;
        Ok(())
    }

    /// Reads the page in `slot`.
    pub fn read(&mut self, slot: SwapSlot, page: &mut [u8]) -> Result<(), SwapError> {
        self.check(page.len())?;
        let at = u64::from(slot.0) * self.page as u64;
        let r = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(page));
        r.map_err(|source| SwapError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        self.stats.reads += 1;
        Ok(())
    }
}

impl Drop for SwapDevice {
    fn drop(&mut self) {
        if !self.keep {
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
