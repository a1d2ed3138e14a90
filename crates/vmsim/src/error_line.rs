//! An error and its causes as one line, the way the command line prints them.
//!
//! The library's errors keep what went wrong underneath as their
//! [`source`](Error::source) (the I/O error under "cannot read f.toml", the
//! TOML error under a format file's name), so a caller can match on the
//! cause. Printing only the top error's `Display` would then say "f.toml"
//! and stop; [`one_line`] walks the chain instead. Some errors already say
//! their cause in their own message (`{path}: {source}`); a cause is added
//! only if the line does not contain it yet, so nothing is said twice.
//! (The library's own errors say their cause in their message too, so that
//! `to_string()` alone is a whole sentence; the chain is for matching.)
//! Multi-line causes (the TOML crate's, with its caret under the column)
//! are flattened.

use std::error::Error;

/// `err` and each of its causes, separated by `": "`, on one line.
///
/// ```
/// let e = vmsim::paging::Format::from_toml("va_bits = 'x'", "f.toml").unwrap_err();
/// let line = vmsim::error_line::one_line(&e);
/// assert!(line.starts_with("f.toml: "), "{line}");
/// assert!(line.contains("va_bits"), "{line}");
/// assert!(!line.contains('\n'));
/// ```
#[must_use]
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut line = flat(&err.to_string());
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = flat(&c.to_string());
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// `text` trimmed, with its line breaks turned into spaces.
fn flat(text: &str) -> String {
    text.trim().replace('\n', " ")
}

/// A cause's message on one line, for an error whose own message says its
/// cause (`{origin}: {cause}`) as well as keeping it as its source: the TOML
/// crate's messages span several lines (the line quoted, a caret under the
/// column).
pub(crate) fn flat_display(cause: &impl std::fmt::Display) -> String {
    flat(&cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Outer {
        what: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn causes_are_added_once() {
        let e = Outer {
            what: "cannot read f.toml",
            source: std::io::Error::other("no such file\n"),
        };
        assert_eq!(one_line(&e), "cannot read f.toml: no such file");
        let e = Outer {
            what: "cannot read f.toml: no such file",
            source: std::io::Error::other("no such file"),
        };
        assert_eq!(one_line(&e), "cannot read f.toml: no such file");
    }
}
