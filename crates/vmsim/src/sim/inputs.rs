//! The trace inputs of a run, described so a restored run can find them
//! again: an open reader cannot be serialized, so a checkpoint records what
//! each process reads (a file by path, size and CRC-32C of its bytes; a
//! generator by its spec) and how far it got (accesses taken, or the
//! generator's state), and a restore reopens and repositions it.
//!
//! Owns that description and the reopening; the scheduler owns positions.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vmsim_trace::synth::SynthPosition;
use vmsim_trace::{Access, AnySource, TraceError};

/// What a process reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputId {
    /// A trace file: where it was, and what it held.
    File {
        /// The path the run opened.
        path: String,
        /// Its length in bytes.
        bytes: u64,
        /// CRC-32C of its bytes (as stored: compressed files are not decompressed).
        crc32c: u32,
    },
    /// A synthetic workload (`synth:...`): the spec is the whole input.
    Synth {
        /// The spec, with its `synth:` prefix.
        spec: String,
    },
}

impl InputId {
    /// Describes the input named `spec` (a path or a `synth:` spec), reading
    /// a file once to checksum it.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn of(spec: &str) -> io::Result<Self> {
        if spec.starts_with(vmsim_trace::source::SYNTH_PREFIX) {
            return Ok(Self::Synth { spec: spec.into() });
        }
        // A pipe or a device cannot be read twice: checksumming it would
        // take the references the run has not read yet, and a restore could
        // not reopen it.
        if !std::fs::metadata(spec)?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a pipe or a device): a restore reopens its traces, so save the trace to a file and run that",
            ));
        }
        let (bytes, crc32c) = checksum(Path::new(spec))?;
        Ok(Self::File {
            path: spec.into(),
            bytes,
            crc32c,
        })
    }

    /// How a user recognises it in a message.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::File {
                path,
                bytes,
                crc32c,
            } => format!("{path} ({bytes} bytes, CRC-32C {crc32c:08x})"),
            Self::Synth { spec } => spec.clone(),
        }
    }
}

/// Length and CRC-32C of a file's bytes.
///
/// # Errors
/// The file cannot be read.
pub fn checksum(path: &Path) -> io::Result<(u64, u32)> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut n, mut crc) = (0u64, 0u32);
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crc = crc32c::crc32c_append(crc, &buf[..k]);
        n += k as u64;
    }
    Ok((n, crc))
}

/// Where a process stands in its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPosition {
    /// What it reads.
    pub id: InputId,
    /// Accesses taken from it so far.
    pub consumed: u64,
    /// A generator's state (synthetic inputs).
    pub synth: Option<SynthPosition>,
}

/// An input could not be found again or repositioned.
#[derive(Debug, Error)]
pub enum InputError {
    /// No file at the recorded path or among the candidates matches.
    #[error(
        "trace input {0} is not at its recorded path and no --input file has its size and CRC-32C"
    )]
    NotFound(String),
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace ended before the recorded position.
    #[error("trace input {id} ends after {got} accesses, but the checkpoint had read {want}")]
    TooShort {
        /// The input.
        id: String,
        /// Accesses it has.
        got: u64,
        /// Accesses the checkpoint had taken.
        want: u64,
    },
}

/// Finds the file for `id`: its recorded path if that file still has the
/// recorded size and CRC, else the first candidate that has them.
///
/// # Errors
/// [`InputError::NotFound`] when nothing matches.
pub fn locate(id: &InputId, candidates: &[PathBuf]) -> Result<String, InputError> {
    let (path, bytes, crc32c) = match id {
        InputId::Synth { spec } => return Ok(spec.clone()),
        InputId::File {
            path,
            bytes,
            crc32c,
        } => (path, bytes, crc32c),
    };
    let matches = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == *bytes)
            && checksum(p).is_ok_and(|(n, c)| n == *bytes && c == *crc32c)
    };
    if matches(Path::new(path)) {
        return Ok(path.clone());
    }
    candidates
        .iter()
        .find(|c| matches(c))
        .map(|c| c.display().to_string())
        .ok_or_else(|| InputError::NotFound(id.describe()))
}

/// Opens `spec` (found by [`locate`]) and moves it to `at`. Returns the
/// source and the accesses read past the position (they come next).
///
/// # Errors
/// The trace cannot be opened or read, or ends before the position.
pub fn reopen(spec: &str, at: &InputPosition) -> Result<(AnySource, Vec<Access>), InputError> {
    let mut src = vmsim_trace::open(spec)?;
    if let (AnySource::Synth(s), Some(pos)) = (&mut src, &at.synth) {
        s.resume(pos)?;
        return Ok((src, Vec::new()));
    }
    let (got, rest) = src.skip(at.consumed)?;
    if got < at.consumed {
        return Err(InputError::TooShort {
            id: at.id.describe(),
            got,
            want: at.consumed,
        });
    }
    Ok((src, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace that cannot be read twice is never checksummed (which would
    /// take the references the run has not read yet) nor matched.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_described_or_matched() {
        let e = InputId::of("/dev/zero").expect_err("a device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.lackey");
        std::fs::write(&p, b"I  00401000,3\n").expect("write");
        let id = InputId::of(p.to_str().expect("utf-8")).expect("a file");
        let InputId::File { bytes, .. } = &id else {
            panic!("{id:?}")
        };
        assert_eq!(*bytes, 14);
        let moved = dir.path().join("moved.lackey");
        std::fs::rename(&p, &moved).expect("move");
        let found = locate(&id, &[PathBuf::from("/dev/zero"), moved.clone()]).expect("found");
        assert_eq!(found, moved.display().to_string());
        // An empty recorded file: /dev/null has its size (0) but is no file.
        let empty = InputId::File {
            path: "/nonexistent".into(),
            bytes: 0,
            crc32c: 0,
        };
        assert!(locate(&empty, &[PathBuf::from("/dev/null")]).is_err());
    }
}
