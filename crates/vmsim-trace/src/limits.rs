//! Reading a file whole, with a size limit: config, scenario, format and
//! sweep files (TOML) and operation lists are read into memory at once, so each
//! kind has a stated maximum, checked before the file is read (from its
//! length) and while it is read (a FIFO, `/dev/zero` or a file that grows
//! has no length to trust). Memory never grows past the limit.
//!
//! Traces are not read whole: they stream (see [`crate::lackey`] for the
//! bounds on a lackey line and [`crate::access::MAX_ACCESS_BYTES`]).

use std::io::{self, Read};
use std::path::Path;

use crate::units::format_size;

/// The largest config, scenario or paging-format file (TOML): 1 MiB. A
/// real one is a few KiB; the limit only stops a wrong or endless file.
pub const MAX_TOML_BYTES: u64 = 1 << 20;

/// The largest list read whole (`vmsim alloc --ops-file`): 1 GiB.
/// (Reference strings and traces stream; they have no such limit.)
pub const MAX_LIST_FILE_BYTES: u64 = 1 << 30;

/// The largest sweep record read back (`vmsim sweep`'s `run-*.json`, one
/// run's report as JSON): 256 MiB. A record is a few KiB to a few MiB (the
/// report's timeline is sampled, its per-process table grows with the
/// scenario); the limit stops a record replaced by something endless
/// (a link to `/dev/zero`) from filling memory.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Reads `path` whole if it holds at most `limit` bytes.
///
/// # Errors
/// The file cannot be read, or it is larger than `limit` (refused from its
/// length before reading, or after `limit + 1` bytes if it has no length);
/// the error says which limit, as `what` (e.g. "a config file").
pub fn read_limited(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let too_big = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "larger than {} ({limit} bytes), the most vmsim reads as {what}",
                format_size(limit)
            ),
        )
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory, not a file",
        ));
    }
    if meta.is_file() && meta.len() > limit {
        return Err(too_big());
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(data)
}

/// [`read_limited`] for UTF-8 text.
///
/// # Errors
/// As [`read_limited`], or the file is not UTF-8.
pub fn read_text_limited(path: &Path, limit: u64, what: &str) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit, what)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_limit_are_refused_before_or_while_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, vec![b'x'; 100]).expect("write");
        assert_eq!(read_limited(&p, 100, "a test").expect("fits").len(), 100);
        let e = read_limited(&p, 99, "a config file").expect_err("too big");
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("a config file"), "{e}");
        // No length to trust: stops after limit + 1 bytes.
        #[cfg(unix)]
        {
            let e = read_limited(Path::new("/dev/zero"), 4096, "a test").expect_err("endless");
            assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        }
        let e = read_limited(dir.path(), 4096, "a test").expect_err("directory");
        assert!(e.to_string().contains("directory"), "{e}");
        std::fs::write(&p, [0xff, 0xfe]).expect("write");
        assert!(read_text_limited(&p, 10, "a test").is_err());
    }
}
