//! Atomic output files: written under a temporary name next to the
//! destination, renamed over it only when complete.
//!
//! Owns that one discipline for the whole workspace (trace conversion and
//! recording here, memory images in the engine, plots in the CLI), so no
//! writer can leave a half-written file behind. A temporary file that is
//! never committed is removed when it is dropped.

use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

/// A temporary file in the destination's directory (so the final rename stays
/// on one file system), created with the permissions an ordinary new file
/// gets (0666 less the umask), not tempfile's private 0600.
///
/// # Errors
/// The directory is not writable.
pub fn temp_next_to(dest: &Path) -> io::Result<NamedTempFile> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut b = tempfile::Builder::new();
    b.prefix(".vmsim-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir)
}

/// Flushes `tmp` to disk and renames it to `dest`.
///
/// # Errors
/// The sync or the rename fails (the temporary file is then removed).
pub fn commit(tmp: NamedTempFile, dest: &Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}
