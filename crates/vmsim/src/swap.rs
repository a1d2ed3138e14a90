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
    /// Remove the file at `path` when dropped (the device created it, the
    /// user did not ask to keep it, and it could not be unlinked at once).
    remove_on_drop: bool,
    /// Keeps a file to remove on drop on the interrupt-cleanup list.
    _registered: Option<vmsim_trace::output::Registered>,
    page: usize,
    used: Vec<bool>,
    cursor: usize,
    stats: SwapStats,
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
        let (path, user_path) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (unique_temp_path(), false),
        };
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
        let mut remove_on_drop = created && !keep;
        // The data stays reachable through `file`: the path is not needed again.
        #[cfg(unix)]
        if remove_on_drop && std::fs::remove_file(&path).is_ok() {
            remove_on_drop = false;
        }
        let registered = remove_on_drop.then(|| vmsim_trace::output::register(&path));
        Ok(Self {
            file,
            path,
            remove_on_drop,
            _registered: registered,
            page: page_bytes,
            used: vec![false; slots as usize],
            cursor: 0,
            stats: SwapStats::default(),
        })
    }

    /// Where the file is (or was: on Unix a file the device created and
    /// does not keep is unlinked once open; reads and writes go through the
    /// open file).
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
        if self.remove_on_drop {
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
        assert_eq!(d.file.metadata().expect("open file").len(), 2 * 4096);
        assert_eq!(d.stats().writes, 2);
        drop(d);
        assert!(!path.exists(), "removed at the end");
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
}
