//! Output files: written under a temporary name next to the destination,
//! renamed over it only when complete, and never over anything but a
//! regular file; and the list of temporary files to remove if the process
//! is interrupted.
//!
//! On Linux the temporary file has no name at all while it is written
//! (`O_TMPFILE`): a process killed with SIGKILL, which no handler sees,
//! leaves nothing behind. The finished file is linked under a temporary
//! name and renamed over the destination at once (a kill in that instant
//! leaves a complete file under the temporary name, never a partial one).
//! Where the file system or platform does not offer `O_TMPFILE`, a named
//! temporary file is used, removed on drop and on SIGINT/SIGTERM.
//!
//! Owns that one discipline for the whole workspace (trace conversion and
//! recording here, memory images in the engine, plots in the CLI), so no
//! writer can leave a half-written file behind or replace a device node, a
//! symbolic link or a directory. A temporary file that is never committed is
//! removed when it is dropped; while it exists it is registered, so the
//! command line's SIGINT/SIGTERM handler can remove it too
//! ([`remove_registered`]). This module installs no signal handler itself: a
//! library must not.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tempfile::NamedTempFile;

/// How [`remove_registered`] takes a path away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// A temporary file, or a directory with everything in it.
    Whole,
    /// A directory made for output: removed only while it is empty, so
    /// nothing written into it (a checkpoint) is ever lost.
    IfEmpty,
}

/// Paths to remove if the process is interrupted, by registration number.
static LIVE: Mutex<BTreeMap<u64, (PathBuf, Removal)>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A path on the interrupt-cleanup list; leaves the list when dropped.
#[derive(Debug)]
#[must_use = "the path leaves the cleanup list as soon as this is dropped"]
pub struct Registered(u64);

/// Puts `path` (a file or a directory) on the list [`remove_registered`]
/// removes, until the returned guard is dropped.
pub fn register(path: &Path) -> Registered {
    register_as(path, Removal::Whole)
}

/// Puts the directory `path` on the list [`remove_registered`] removes,
/// but only if it is empty by then, until the returned guard is dropped.
/// For a directory made for a command's output: interrupted before it
/// wrote anything, the command takes the directory back; with a file in
/// it, the directory and the file stay. The list is removed newest first,
/// so register a directory's parents before it, and a temporary file
/// written into it after it.
pub fn register_if_empty(path: &Path) -> Registered {
    register_as(path, Removal::IfEmpty)
}

fn register_as(path: &Path, how: Removal) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut live) = LIVE.lock() {
        live.insert(id, (path.to_path_buf(), how));
    }
    Registered(id)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.0);
        }
    }
}

/// Removes every registered temporary file and directory (best effort),
/// newest first, and empties the list: what an interrupted process must do
/// before it dies. Returns how many paths were removed.
pub fn remove_registered() -> usize {
    let paths: Vec<(PathBuf, Removal)> = match LIVE.lock() {
        Ok(mut live) => std::mem::take(&mut *live).into_values().rev().collect(),
        Err(_) => return 0,
    };
    remove_paths(paths)
}

fn remove_paths(paths: Vec<(PathBuf, Removal)>) -> usize {
    let mut removed = 0;
    for (p, how) in paths {
        let r = match (std::fs::symlink_metadata(&p), how) {
            (Ok(m), Removal::Whole) if m.is_dir() => std::fs::remove_dir_all(&p),
            (Ok(_), Removal::Whole) => std::fs::remove_file(&p),
            // `remove_dir` refuses a directory that is not empty (and
            // anything that is not a directory).
            (Ok(_), Removal::IfEmpty) => std::fs::remove_dir(&p),
            (Err(e), _) => Err(e),
        };
        removed += usize::from(r.is_ok());
    }
    removed
}

/// What is at `dest` now, if it is something a writer must not replace.
fn not_replaceable(dest: &Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(dest).ok()?;
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    Some(if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file (a device, FIFO or socket)"
    })
}

/// Refuses a destination that exists and is not a regular file.
///
/// # Errors
/// `dest` is a symbolic link, a directory, a device node, a FIFO or a socket.
pub fn check_destination(dest: &Path) -> io::Result<()> {
    match not_replaceable(dest) {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("it is {what}; vmsim replaces only regular files (choose another name)"),
        )),
    }
}

/// A temporary output file beside its destination: unnamed where the
/// platform allows, else named and on the interrupt-cleanup list while it
/// exists.
#[derive(Debug)]
pub struct TempOutput {
    inner: Inner,
    early: EarlyWriteback,
}

/// Keeps the disk busy while a large output is still being written, so
/// that [`commit`]'s sync finds little left to do: without it, a 1 GiB
/// checkpoint went to the page cache first and only then, in the final
/// sync, to the disk (the sync alone took as long as the writing).
///
/// Once [`SYNC_WINDOW`] bytes have been written, a thread of its own
/// syncs the file's data (`fdatasync`) over and over while the writer goes
/// on: each sync writes out what was written since the one before, one at
/// a time, while the next bytes are produced. (Linux's
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` would only start the writes,
/// but no well-kept crate offers it without `unsafe`, which this workspace
/// forbids; `posix_fadvise(POSIX_FADV_DONTNEED)` also starts them but then
/// drops the written pages from the cache, and a restore that followed read
/// the whole file back from the disk, 5-10x slower.) Durability still
/// comes from [`commit`]: it waits for the thread, reports any error the
/// thread met (a failed background sync is never swallowed: the error may
/// not be reported twice by the kernel), then syncs data and metadata.
#[derive(Debug, Default)]
struct EarlyWriteback {
    /// Bytes written since the thread was last asked to sync.
    since: u64,
    syncer: Option<Syncer>,
}

/// The background syncing thread and the way to wake it.
#[derive(Debug)]
struct Syncer {
    /// A full channel means a sync is already due: the request is merged.
    wake: std::sync::mpsc::SyncSender<()>,
    done: std::thread::JoinHandle<io::Result<()>>,
}

/// How many bytes an output gathers before (and between) asking for a
/// background sync: small outputs never start the thread.
pub const SYNC_WINDOW: u64 = 8 << 20;

impl EarlyWriteback {
    /// `n` more bytes were written to `file`.
    fn wrote(&mut self, file: &File, n: usize) {
        self.since += n as u64;
        if self.since < SYNC_WINDOW {
            return;
        }
        self.since = 0;
        if self.syncer.is_none() {
            self.syncer = Syncer::start(file);
        }
        if let Some(s) = &self.syncer {
            // Full: a sync is already due, and it will cover these bytes.
            let _ = s.wake.try_send(());
        }
    }

    /// Waits for the thread; the first error its syncs met.
    fn finish(&mut self) -> io::Result<()> {
        match self.syncer.take() {
            None => Ok(()),
            Some(Syncer { wake, done }) => {
                drop(wake);
                done.join()
                    .unwrap_or_else(|_| Err(io::Error::other("the background sync thread failed")))
            }
        }
    }
}

impl Syncer {
    /// A thread syncing (a second handle on) `file` on request; `None` if
    /// either cannot be had (the final sync then does all the work).
    fn start(file: &File) -> Option<Self> {
        let f = file.try_clone().ok()?;
        let (wake, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let done = std::thread::Builder::new()
            .name("vmsim-output-sync".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    f.sync_data()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Self { wake, done })
    }
}

#[derive(Debug)]
enum Inner {
    /// `O_TMPFILE` in `dir`: nothing to clean up, ever.
    #[cfg(target_os = "linux")]
    Unnamed { file: File, dir: PathBuf },
    Named {
        file: NamedTempFile,
        _registered: Registered,
    },
}

impl TempOutput {
    /// The open file.
    #[must_use]
    pub fn as_file(&self) -> &File {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Unnamed { file, .. } => file,
            Inner::Named { file, .. } => file.as_file(),
        }
    }

    fn as_file_mut(&mut self) -> &mut File {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Unnamed { file, .. } => file,
            Inner::Named { file, .. } => file.as_file_mut(),
        }
    }

    /// Its temporary path: `None` while it has none (`O_TMPFILE`). Write
    /// through [`TempOutput::as_file`].
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Unnamed { .. } => None,
            Inner::Named { file, .. } => Some(file.path()),
        }
    }
}

impl io::Write for TempOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.as_file_mut().write(buf)?;
        self.wrote(n);
        Ok(n)
    }

    /// One system call for many buffers (`writev`), so page data can go
    /// from simulated memory to the kernel without a copy into a buffer
    /// first. (`std::io::BufWriter` passes a large vectored write through
    /// only to a writer that says it is vectored, which only the standard
    /// library's own writers can say on stable Rust: a writer that wants
    /// the pass-through buffers itself, as the checkpoint writer does.)
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.as_file_mut().write_vectored(bufs)?;
        self.wrote(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.as_file_mut().flush()
    }
}

impl TempOutput {
    fn wrote(&mut self, n: usize) {
        let file = match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Unnamed { file, .. } => file,
            Inner::Named { file, .. } => file.as_file(),
        };
        self.early.wrote(file, n);
    }
}

/// Seekable, for writers that patch a header once the data is written (the
/// checkpoint container's section lengths and checksums).
impl io::Seek for TempOutput {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.as_file_mut().seek(pos)
    }
}

/// A temporary file in the destination's directory (so the final rename stays
/// on one file system), created with the permissions an ordinary new file
/// gets (0666 less the umask), not tempfile's private 0600.
///
/// # Errors
/// The destination exists and is not a regular file (see
/// [`check_destination`]), or the directory is not writable.
pub fn temp_next_to(dest: &Path) -> io::Result<TempOutput> {
    check_destination(dest)?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    #[cfg(target_os = "linux")]
    if let Some(file) = unnamed_in(dir) {
        return Ok(TempOutput {
            inner: Inner::Unnamed {
                file,
                dir: dir.to_path_buf(),
            },
            early: EarlyWriteback::default(),
        });
    }
    let mut b = tempfile::Builder::new();
    b.prefix(".vmsim-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let file = b.tempfile_in(dir)?;
    let registered = register(file.path());
    Ok(TempOutput {
        inner: Inner::Named {
            file,
            _registered: registered,
        },
        early: EarlyWriteback::default(),
    })
}

/// An unnamed file in `dir` (`O_TMPFILE`, 0666 less the umask), if the file
/// system supports it and `/proc/self/fd` is there to give it a name later
/// (linking an unnamed file by its descriptor needs one of the two: the
/// other, `AT_EMPTY_PATH`, needs a privilege).
#[cfg(target_os = "linux")]
fn unnamed_in(dir: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    let fd = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .ok()?;
    Some(File::from(fd))
}

/// Gives the unnamed `file` a fresh temporary name in `dir`; returns it.
#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, dir: &Path) -> io::Result<PathBuf> {
    use rustix::fs::{AtFlags, CWD};
    use std::os::fd::AsRawFd;
    let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    let mut tries = 0;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = dir.join(format!(".vmsim-{}-{n}-{nanos:08x}.tmp", std::process::id()));
        match rustix::fs::linkat(CWD, by_fd.as_str(), CWD, &name, AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => return Ok(name),
            Err(e) if e == rustix::io::Errno::EXIST && tries < 100 => tries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Flushes `tmp` to disk and renames it to `dest`, checking again that
/// `dest` is not something other than a regular file (it may have appeared
/// while the output was written).
///
/// # Errors
/// The destination is not a regular file, or the sync, the link or the
/// rename fails (the temporary file is then removed).
pub fn commit(mut tmp: TempOutput, dest: &Path) -> io::Result<()> {
    check_destination(dest)?;
    tmp.early.finish()?;
    tmp.as_file().sync_all()?;
    match tmp.inner {
        #[cfg(target_os = "linux")]
        Inner::Unnamed { file, dir } => {
            let name = link_unnamed(&file, &dir)?;
            let _registered = register(&name);
            if let Err(e) = std::fs::rename(&name, dest) {
                let _ = std::fs::remove_file(&name);
                return Err(e);
            }
            Ok(())
        }
        Inner::Named { file, _registered } => {
            file.persist(dest).map_err(|e| e.error)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commits_over_a_regular_file_and_cleans_up_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.bin");
        std::fs::write(&dest, b"old").expect("write");
        let tmp = temp_next_to(&dest).expect("temp");
        tmp.as_file().write_all(b"new").expect("write");
        commit(tmp, &dest).expect("commit");
        assert_eq!(std::fs::read(&dest).expect("read"), b"new");
        let tmp = temp_next_to(&dest).expect("temp");
        let p = tmp.path().map(Path::to_path_buf);
        drop(tmp);
        assert!(
            p.is_none_or(|p| !p.exists()),
            "an uncommitted temporary is removed"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    /// Where the file system offers `O_TMPFILE`, nothing of the output is
    /// in the directory until it is committed: a SIGKILL (which no handler
    /// sees) leaves nothing behind. The committed file has the ordinary
    /// permissions of a new file.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_output_appears_only_when_committed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.bin");
        let mut tmp = temp_next_to(&dest).expect("temp");
        tmp.write_all(b"page data").expect("write");
        if tmp.path().is_none() {
            assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        }
        commit(tmp, &dest).expect("commit");
        assert_eq!(std::fs::read(&dest).expect("read"), b"page data");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        let mode = std::fs::metadata(&dest).expect("meta").permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        // Dropped uncommitted: nothing appears at all.
        let other = dir.path().join("other.bin");
        let mut tmp = temp_next_to(&other).expect("temp");
        tmp.write_all(b"x").expect("write");
        drop(tmp);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    /// The directory removed while the output is written (a checkpoint
    /// directory deleted under a run): the commit fails, and no file of
    /// any name is left, half-written or whole; the same directory made
    /// again meanwhile gets the complete file or nothing.
    #[cfg(unix)]
    #[test]
    fn a_directory_removed_mid_write_leaves_no_file() {
        let top = tempfile::tempdir().expect("tempdir");
        let dir = top.path().join("ck");
        std::fs::create_dir(&dir).expect("mkdir");
        let dest = dir.join("ckpt-000001.vmck");
        let mut tmp = temp_next_to(&dest).expect("temp");
        tmp.write_all(&[7u8; 1 << 16]).expect("write");
        std::fs::remove_dir_all(&dir).expect("removed mid-write");
        tmp.write_all(&[7u8; 1 << 16]).ok();
        assert!(
            commit(tmp, &dest).is_err(),
            "committed into a removed directory"
        );
        assert!(!dir.exists() && std::fs::read_dir(top.path()).expect("top").count() == 0);
        // Removed and made again: the whole file or none.
        std::fs::create_dir(&dir).expect("mkdir");
        let mut tmp = temp_next_to(&dest).expect("temp");
        tmp.write_all(&[7u8; 1 << 16]).expect("write");
        std::fs::remove_dir_all(&dir).expect("removed");
        std::fs::create_dir(&dir).expect("made again");
        let r = commit(tmp, &dest);
        let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        match r {
            Ok(()) => {
                assert_eq!(std::fs::read(&dest).expect("read").len(), 1 << 16);
                assert_eq!(left.len(), 1);
            }
            Err(_) => assert!(left.is_empty(), "{left:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn never_replaces_links_directories_or_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for (dest, what) in [
            (link.as_path(), "symbolic link"),
            (sub.as_path(), "directory"),
            (Path::new("/dev/null"), "device"),
        ] {
            let e = temp_next_to(dest).expect_err("refused");
            assert!(e.to_string().contains(what), "{e}");
        }
        // A link that appears while the output is being written is not replaced either.
        let late = dir.path().join("late");
        let tmp = temp_next_to(&late).expect("temp");
        std::os::unix::fs::symlink(&target, &late).expect("symlink");
        let e = commit(tmp, &late).expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(&late).expect("link").is_symlink());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "no temporary left: {left:?}");
    }

    /// A large output, written with plain and vectored writes past
    /// several writeback windows and patched at its start after a seek,
    /// commits exactly the bytes written.
    #[test]
    fn large_outputs_with_early_writeback_commit_every_byte() {
        use std::io::{IoSlice, Seek, SeekFrom};
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("big.bin");
        let mut tmp = temp_next_to(&dest).expect("temp");
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let window = usize::try_from(SYNC_WINDOW).expect("window");
        let mut want = Vec::new();
        tmp.write_all(&[0xAA; 16]).expect("write");
        want.extend_from_slice(&[0xAA; 16]);
        while want.len() < 2 * window + 12345 {
            let parts = [IoSlice::new(&block), IoSlice::new(&block[..777])];
            let n = tmp.write_vectored(&parts).expect("writev");
            let mut left = n;
            for p in &parts {
                let k = p.len().min(left);
                want.extend_from_slice(&p[..k]);
                left -= k;
            }
            tmp.write_all(&block[..4096]).expect("write");
            want.extend_from_slice(&block[..4096]);
        }
        tmp.seek(SeekFrom::Start(4)).expect("seek");
        tmp.write_all(b"head").expect("patch");
        want[4..8].copy_from_slice(b"head");
        tmp.seek(SeekFrom::End(0)).expect("seek");
        tmp.write_all(b"tail").expect("write");
        want.extend_from_slice(b"tail");
        commit(tmp, &dest).expect("commit");
        assert!(std::fs::read(&dest).expect("read") == want);
    }

    /// The background sync starts only past the window, is asked again
    /// every window, and is waited for (its errors reported) by `finish`.
    #[test]
    fn early_writeback_starts_past_the_window_and_is_waited_for() {
        let f = tempfile::tempfile().expect("file");
        let mut e = EarlyWriteback::default();
        let w = usize::try_from(SYNC_WINDOW).expect("window");
        e.wrote(&f, w - 1);
        assert!(e.syncer.is_none(), "a small output starts no thread");
        e.wrote(&f, 1);
        assert!(e.syncer.is_some());
        assert_eq!(e.since, 0);
        for _ in 0..3 {
            e.wrote(&f, w);
        }
        e.finish().expect("synced");
        assert!(e.syncer.is_none());
        e.finish().expect("nothing to wait for");
    }

    #[test]
    fn registered_paths_are_removed_on_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        let d = dir.path().join("d");
        std::fs::write(&f, b"x").expect("write");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("inner"), b"y").expect("write");
        let kept = dir.path().join("kept");
        std::fs::write(&kept, b"z").expect("write");
        let listed = |p: &Path| LIVE.lock().expect("lock").values().any(|(x, _)| x == p);
        let (a, b) = (register(&f), register(&d));
        let unregistered = register(&kept);
        drop(unregistered);
        assert!(listed(&f) && listed(&d) && !listed(&kept));
        // (remove_registered would also remove other tests' temporaries: remove ours.)
        let whole = |p: &PathBuf| (p.clone(), Removal::Whole);
        assert_eq!(remove_paths(vec![whole(&f), whole(&d)]), 2);
        assert!(!f.exists() && !d.exists());
        assert!(kept.exists(), "a path off the list stays");
        drop((a, b));
        assert!(!listed(&f) && !listed(&d));
    }

    #[test]
    fn directories_made_for_output_are_removed_only_while_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (top, deep, full) = (
            dir.path().join("top"),
            dir.path().join("top/deep"),
            dir.path().join("full"),
        );
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::create_dir(&full).expect("mkdir");
        std::fs::write(full.join("checkpoint"), b"data").expect("write");
        let if_empty = |p: &PathBuf| (p.clone(), Removal::IfEmpty);
        // Newest first, as remove_registered orders them: the deeper
        // directory (registered after its parent) goes first, then the
        // parent, now empty. The directory with a file in it stays, and
        // so does its file.
        assert_eq!(
            remove_paths(vec![if_empty(&full), if_empty(&deep), if_empty(&top)]),
            2
        );
        assert!(!top.exists());
        assert_eq!(
            std::fs::read(full.join("checkpoint")).expect("kept"),
            b"data"
        );
        // Registered in that order, the list gives them back newest first.
        let guards = [register_if_empty(&top), register_if_empty(&deep)];
        let order: Vec<PathBuf> = LIVE
            .lock()
            .expect("lock")
            .values()
            .rev()
            .filter(|(p, how)| p.starts_with(dir.path()) && *how == Removal::IfEmpty)
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(order, [deep.clone(), top.clone()]);
        drop(guards);
    }
}
