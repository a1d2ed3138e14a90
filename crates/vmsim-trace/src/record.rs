//! Recording a new lackey trace: run a program under valgrind lackey and
//! store one zstd-compressed trace per process.
//!
//! Owns the valgrind invocation and the output naming; it does not parse the
//! trace. The approach, and why:
//!
//! valgrind is run as `valgrind --tool=lackey --trace-mem=yes
//! --log-file=DIR/trace.%p.lackey PROGRAM ARGS...`, with `DIR` a private
//! temporary directory next to the output. `%p` is the only faithful way to
//! get one log per process: valgrind follows every `fork()`, and with a
//! single `--log-fd` pipe the parent's and children's lines would interleave
//! with nothing to tell them apart (see the traces README, pitfall 2). A FIFO
//! per process is impossible because the PIDs are not known in advance. When
//! the program has exited, each log is compressed streaming (read in fixed
//! chunks into a zstd encoder, level 9 as in the reference set) to a temporary
//! file renamed into place, then deleted. Memory stays flat; the raw logs
//! occupy the temporary directory (about 15 bytes per reference) only until
//! they are compressed.
//!
//! The process valgrind started (the program itself) is written to the
//! requested output; every other process (a forked child) to the same name
//! with its PID inserted: `out.lackey.zst` -> `out.PID.lackey.zst`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::error::TraceError;

/// The zstd level of recorded traces (the level of the reference set).
pub const ZSTD_LEVEL: i32 = 9;

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The program to run.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Where the program's own trace goes (children get PID-suffixed names).
    pub output: PathBuf,
    /// The valgrind executable (normally `valgrind`, found on `PATH`).
    pub valgrind: OsString,
}

/// One trace file written by [`record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    /// The PID of the traced process.
    pub pid: u32,
    /// True for the process valgrind started; false for forked children.
    pub main: bool,
    /// The compressed trace.
    pub path: PathBuf,
}

/// The result of [`record`].
#[derive(Debug, Clone)]
pub struct Recording {
    /// valgrind's exit status (the program's own, unless valgrind failed).
    pub status: ExitStatus,
    /// The traces written, the main process first, then children by PID.
    pub files: Vec<RecordedFile>,
}

/// `out.lackey.zst` -> `out.PID.lackey.zst`; any other name gets `.PID` appended.
#[must_use]
pub fn child_output(output: &Path, pid: u32) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = match name.strip_suffix(".lackey.zst") {
        Some(stem) => format!("{stem}.{pid}.lackey.zst"),
        None => format!("{name}.{pid}"),
    };
    output.with_file_name(new)
}

fn record_err(what: String, source: io::Error) -> TraceError {
    TraceError::Record {
        what,
        source: Some(source),
    }
}

/// Compresses `raw` into `dest` (temporary file + rename), streaming.
fn compress(raw: &Path, dest: &Path) -> Result<(), TraceError> {
    let write_err = |source| TraceError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut input = BufReader::with_capacity(
        1 << 20,
        File::open(raw).map_err(|source| TraceError::Io {
            path: raw.to_path_buf(),
            source,
        })?,
    );
    let tmp = crate::output::temp_next_to(dest).map_err(write_err)?;
    let mut enc = zstd::stream::write::Encoder::new(BufWriter::new(tmp.as_file()), ZSTD_LEVEL)
        .map_err(write_err)?;
    io::copy(&mut input, &mut enc).map_err(write_err)?;
    let buffered = enc.finish().map_err(write_err)?;
    buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    crate::output::commit(tmp, dest).map_err(write_err)?;
    Ok(())
}

/// Runs the program under valgrind lackey and writes its trace(s); see the
/// module documentation. The program's stdin, stdout and stderr are inherited.
///
/// # Errors
/// valgrind cannot be started or wrote no log, or an output cannot be written.
pub fn record(opts: &RecordOptions) -> Result<Recording, TraceError> {
    let out_dir = match opts.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Refused now rather than after a recording of minutes.
    crate::output::check_destination(&opts.output).map_err(|source| TraceError::Write {
        path: opts.output.clone(),
        source,
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(".vmsim-record-")
        .tempdir_in(&out_dir)
        .map_err(|e| {
            record_err(
                format!(
                    "cannot create a temporary directory in {}",
                    out_dir.display()
                ),
                e,
            )
        })?;
    // The raw logs are large: an interrupted recording removes them.
    let _registered = crate::output::register(tmp.path());
    let mut log_arg = OsString::from("--log-file=");
    log_arg.push(tmp.path().join("trace.%p.lackey"));
    let mut child = Command::new(&opts.valgrind)
        .arg("--tool=lackey")
        .arg("--trace-mem=yes")
        .arg(log_arg)
        .arg(&opts.program)
        .args(&opts.args)
        .spawn()
        .map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                " (is valgrind installed and on PATH?)"
            } else {
                ""
            };
            record_err(
                format!("cannot run {}{hint}", Path::new(&opts.valgrind).display()),
                e,
            )
        })?;
    let main_pid = child.id();
    let status = child
        .wait()
        .map_err(|e| record_err("waiting for valgrind failed".to_owned(), e))?;
    let entries = std::fs::read_dir(tmp.path())
        .map_err(|e| record_err(format!("cannot list {}", tmp.path().display()), e))?;
    let mut logs: Vec<(u32, PathBuf)> = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| record_err(format!("cannot list {}", tmp.path().display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("trace.")
            .and_then(|r| r.strip_suffix(".lackey"))
            .and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            logs.push((pid, entry.path()));
        }
    }
    if logs.is_empty() {
        return Err(TraceError::Record {
            what: format!(
                "valgrind wrote no trace (exit status {status}); is the program path right?"
            ),
            source: None,
        });
    }
    logs.sort_by_key(|&(pid, _)| (pid != main_pid, pid));
    let mut files = Vec::with_capacity(logs.len());
    for (pid, raw) in logs {
        let main = pid == main_pid;
        let path = if main {
            opts.output.clone()
        } else {
            child_output(&opts.output, pid)
        };
        compress(&raw, &path)?;
        std::fs::remove_file(&raw)
            .map_err(|e| record_err(format!("cannot remove {}", raw.display()), e))?;
        files.push(RecordedFile { pid, main, path });
    }
    Ok(Recording { status, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names_insert_the_pid() {
        assert_eq!(
            child_output(Path::new("d/out.lackey.zst"), 12),
            PathBuf::from("d/out.12.lackey.zst")
        );
        assert_eq!(
            child_output(Path::new("out.zst"), 7),
            PathBuf::from("out.zst.7")
        );
    }
}
