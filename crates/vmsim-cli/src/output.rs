//! Standard output and standard error for every subcommand: one buffered
//! writer whose errors say they are standard output's, so `main` can tell a
//! reader that closed the pipe (stop quietly, exit 0) from a failing device
//! (one line, exit 1). Nothing in the CLI uses `print!`, which panics on a
//! write error.

use std::error::Error;
use std::fmt;
use std::io::{self, BufWriter, Stdout, Write};

use serde::Serialize;

/// The version of the shape of every `--json` document vmsim prints, given
/// as the document's top-level `"schema_version"`. One number for all of
/// them (not one per subcommand), so a consumer checks one value whatever
/// it reads: it is raised when any document loses or renames a key or
/// changes a key's type, unit or meaning; adding a key does not raise it.
/// The keys of every document are listed in docs/json.md.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// A `--json` document: `schema_version` first, then the document's own
/// keys (`document` must serialise as an object).
#[derive(Serialize)]
pub struct Versioned<'a, T: ?Sized> {
    schema_version: u32,
    #[serde(flatten)]
    document: &'a T,
}

/// `document` with its `schema_version`.
#[must_use]
pub fn versioned<T: ?Sized + Serialize>(document: &T) -> Versioned<'_, T> {
    Versioned {
        schema_version: JSON_SCHEMA_VERSION,
        document,
    }
}

/// The pretty-printed `--json` document: `document` with its `schema_version`.
pub fn json_pretty<T: ?Sized + Serialize>(document: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&versioned(document))
}

/// A failed write to standard output.
#[derive(Debug)]
pub struct StdoutError(io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl Error for StdoutError {}

/// Standard output, buffered; every error it returns is tagged as a
/// [`StdoutError`]. `main` flushes it once at the end.
#[derive(Debug)]
pub struct Out(BufWriter<Stdout>);

impl Out {
    /// Standard output with a 64 KiB buffer.
    #[must_use]
    pub fn stdout() -> Self {
        Self(BufWriter::with_capacity(1 << 16, io::stdout()))
    }
}

fn tag(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), StdoutError(e))
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(tag)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(tag)
    }
}

/// How a failed write to standard output ended the command, if that is
/// what `err` is.
#[must_use]
pub fn stdout_failure(err: &anyhow::Error) -> Option<io::ErrorKind> {
    err.chain().find_map(|cause| {
        let io = cause.downcast_ref::<io::Error>()?;
        io.get_ref()?.downcast_ref::<StdoutError>()?;
        Some(io.kind())
    })
}

/// Writes one line to standard error.
///
/// # Errors
/// Standard error cannot be written (a full disk, a closed descriptor).
pub fn to_stderr(line: &str) -> anyhow::Result<()> {
    let mut e = io::stderr().lock();
    writeln!(e, "{line}")
        .and_then(|()| e.flush())
        .map_err(|err| anyhow::anyhow!("cannot write to standard error: {err}"))
}
