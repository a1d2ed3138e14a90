//! The one error type of the trace crate.
//!
//! Every variant names the file (or spec) it is about and what was expected, so
//! the command line can print it as one line. Owns no I/O itself.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// `path` as an error shows it: displayed, control characters escaped
/// (see [`printable`]; a path made from damaged or scripted input may hold
/// a line break).
fn shown(path: &std::path::Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// `text` with its control characters (a line break, a tab, NUL) written as
/// escapes (`\n`, `\t`, `\u{0}`), everything else as it is: echoed input
/// must not break an error's one line.
fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// Everything that can go wrong reading, writing, generating or recording a trace.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The operating system refused a read or open.
    #[error("{}: {source}", shown(path))]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing an output file failed.
    #[error("{}: cannot write: {source}", shown(path))]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line of a lackey trace that does not match the grammar.
    #[error(
        "{}:{line}: malformed lackey line: expected {expected}, found {found:?}",
        shown(path)
    )]
    Malformed {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number (banner lines count).
        line: u64,
        /// What the parser expected at the point it failed.
        expected: &'static str,
        /// The offending line (at most 80 bytes of it, lossily decoded).
        found: String,
    },
    /// A file read as lackey text (it is neither zstd nor `.vmt`) that does
    /// not look like lackey in its first lines.
    #[error("{}: not a lackey trace (nor .vmt or zstd): {why}", shown(path))]
    NotLackey {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// A trace without a single reference (refused unless the caller allows it).
    #[error("{}: the trace has no references", shown(path))]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before its format says it does (zstd frame cut short,
    /// `.vmt` without its end block or with a short block).
    #[error("{}: truncated: {what}", shown(path))]
    Truncated {
        /// The trace file.
        path: PathBuf,
        /// Where the data stopped.
        what: String,
    },
    /// A zstd stream that is not valid zstd data.
    #[error("{}: corrupt zstd data: {source}", shown(path))]
    Zstd {
        /// The trace file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// A `.vmt` block whose CRC-32C does not match its contents.
    #[error(
        "{}: .vmt block {block} is corrupt: checksum {stored:#010x} stored, {computed:#010x} computed",
        shown(path)
    )]
    Checksum {
        /// The trace file.
        path: PathBuf,
        /// 0-based block index.
        block: u64,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// A `.vmt` file that breaks the format in a way a checksum cannot explain
    /// (bad header, impossible lengths, records that do not fill their block).
    #[error("{}: invalid .vmt: {what}", shown(path))]
    InvalidVmt {
        /// The trace file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A `synth:` specification that cannot be generated. The spec and what
    /// is said of it echo the user's text, which may hold control characters
    /// (a spec read back from a damaged checkpoint, one passed from a
    /// script): they are shown escaped, so the message stays one line.
    #[error("synthetic workload '{}': {}", printable(spec), printable(what))]
    Synth {
        /// The specification as given.
        spec: String,
        /// What is wrong and what was expected.
        what: String,
    },
    /// A token of a page-number file that is not a page number.
    #[error(
        "{}:{line}: '{}' is not a page number (expected decimal or 0x hex, optionally followed by w for a write)",
        shown(path),
        printable(token)
    )]
    BadPageNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The offending token.
        token: String,
    },
    /// A line longer than a text format allows (a file that never ends a line).
    #[error("{}:{line}: a line longer than {max} bytes: not a {what}", shown(path))]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The longest line accepted.
        max: u64,
        /// The format expected.
        what: &'static str,
    },
    /// A file of page numbers given where memory accesses are needed.
    #[error(
        "{}: a file of page numbers (the policy lab's input), not memory accesses: this command needs a lackey trace, a .vmt file or synth:",
        shown(path)
    )]
    NotAccesses {
        /// The file.
        path: PathBuf,
    },
    /// More distinct pages than dense `u32` ids.
    #[error("{}: more than 2^32 - 2 distinct pages", shown(path))]
    TooManyPages {
        /// The trace.
        path: PathBuf,
    },
    /// A page size that is not a power of two of at least one byte.
    #[error("page size {0} is not a power of two")]
    PageSize(u64),
    /// `vmsim trace record` could not run the program under valgrind.
    #[error("record: {what}")]
    Record {
        /// What failed.
        what: String,
        /// The underlying error, if any.
        #[source]
        source: Option<io::Error>,
    },
}

impl TraceError {
    /// Classifies a read error of a (possibly zstd-compressed) input: an
    /// unexpected end of data is [`TraceError::Truncated`], anything else is
    /// [`TraceError::Io`] (or [`TraceError::Zstd`] when `zstd` says it came from the decoder).
    pub(crate) fn from_read(path: PathBuf, source: io::Error, zstd: bool) -> Self {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            let what = if zstd {
                "the zstd stream ends inside a frame".to_owned()
            } else {
                "unexpected end of file".to_owned()
            };
            Self::Truncated { path, what }
        } else if zstd && source.kind() == io::ErrorKind::Other {
            Self::Zstd { path, source }
        } else {
            Self::Io { path, source }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path or token with a line break in it (a damaged checkpoint's
    /// scenario names a trace file "\nynth:...") is shown escaped: the
    /// message stays one line and still names it.
    #[test]
    fn echoed_paths_and_tokens_stay_on_one_line() {
        let e = TraceError::Io {
            path: PathBuf::from("\nynth:scan"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let m = e.to_string();
        assert!(!m.contains('\n') && m.starts_with("\\nynth:scan: "), "{m}");
        let e = TraceError::BadPageNumber {
            path: PathBuf::from("pages\ttxt"),
            line: 3,
            token: "12\u{0}".into(),
        };
        let m = e.to_string();
        assert!(m.starts_with("pages\\ttxt:3: '12\\u{0}' is not"), "{m}");
        assert_eq!(printable("plain text"), Cow::Borrowed("plain text"));
    }
}
