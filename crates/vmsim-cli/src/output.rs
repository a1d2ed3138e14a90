//! Standard output and standard error for every subcommand: one buffered
//! writer whose errors say they are standard output's, so `main` can tell a
//! reader that closed the pipe (stop quietly, exit 0) from a failing device
//! (one line, exit 1). Nothing in the CLI uses `print!`, which panics on a
//! write error.

use std::error::Error;
use std::fmt;
use std::io::{self, BufWriter, Stdout, Write};

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
