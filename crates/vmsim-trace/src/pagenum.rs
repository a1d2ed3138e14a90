//! Page-number files: the policy lab's reference strings, as text.
//!
//! Owns their grammar (used by the engine's lab for `--refs` too) and a
//! streaming reader, so a file of a hundred million page numbers needs no
//! more memory than one buffer.
//!
//! Page numbers as [`crate::units::parse_u64`] reads them (decimal, `0x`
//! hex, `0b`, `0o`, `_` separators), separated by whitespace or commas, `#`
//! to end of line a comment; an optional `w` suffix marks a write (which sets
//! the dirty bit), an `r` suffix is allowed for symmetry.

use std::io::Read;
use std::path::PathBuf;

use crate::error::TraceError;

/// Bytes read at a time (whole lines are tokenised; a longer line is read on).
const CHUNK: usize = 1 << 20;

/// The longest line accepted: a whole reference string may be one line
/// (`1,2,3,...`), but a file that never ends a line (`/dev/zero`, a binary
/// file) must not grow memory without bound.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// A token that is not a page number: its 1-based line and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadToken {
    /// 1-based line number.
    pub line: u64,
    /// The offending token.
    pub token: String,
}

/// Calls `f(page, is_write)` for each reference in `text`, whose first line
/// is line `first_line`. Returns the number of the line after the text's last
/// newline. A bad token is reported through `bad`.
///
/// # Errors
/// The first error of `f`, or `bad`'s error for a token that is not a page number.
pub fn tokens<E, F, B>(text: &[u8], first_line: u64, mut f: F, bad: B) -> Result<u64, E>
where
    F: FnMut(u64, bool) -> Result<(), E>,
    B: Fn(BadToken) -> E,
{
    let mut line = first_line;
    let mut i = 0usize;
    let n = text.len();
    let is_sep = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',');
    while i < n {
        match text[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < n && text[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                let start = i;
                // The common token fast, in one pass: plain decimal digits
                // (at most 19: they fit a u64), maybe a w or r, then a
                // separator or the end. Anything else takes the general
                // path below from the token's start.
                let (mut v, mut j) = match text.get(i..i + 8) {
                    Some(w) => eight_digits(w, i),
                    None => (0, i),
                };
                while j < n && j - start < 20 {
                    let d = text[j].wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    // 20 digits may wrap: such a token is not taken here.
                    v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                    j += 1;
                }
                if j > start && j - start <= 19 {
                    let (write, k) = match text.get(j).map(|&b| b | 0x20) {
                        Some(b'w') => (true, j + 1),
                        Some(b'r') => (false, j + 1),
                        _ => (false, j),
                    };
                    if k == n || is_sep(text[k]) {
                        f(v, write)?;
                        i = k;
                        continue;
                    }
                }
                while i < n && !is_sep(text[i]) && text[i] != b'#' {
                    i += 1;
                }
                let token = &text[start..i];
                let (number, write) = match token.last().map(|&b| b | 0x20) {
                    Some(b'w') => (&token[..token.len() - 1], true),
                    Some(b'r') => (&token[..token.len() - 1], false),
                    _ => (token, false),
                };
                let page = parse_plain_decimal(number).or_else(|| {
                    std::str::from_utf8(number)
                        .ok()
                        .and_then(|t| crate::units::parse_u64(t).ok())
                });
                let Some(page) = page else {
                    let mut end = start;
                    while end < n && !is_sep(text[end]) {
                        end += 1;
                    }
                    return Err(bad(BadToken {
                        line,
                        token: String::from_utf8_lossy(&text[start..end]).into_owned(),
                    }));
                };
                f(page, write)?;
            }
        }
    }
    Ok(line)
}

/// The value of the decimal digits `w` starts with (up to 8 of the 8
/// bytes, found and converted with word arithmetic: no loop per digit),
/// and `at` plus their number. Bytes after the first non-digit are ignored.
#[inline]
fn eight_digits(w: &[u8], at: usize) -> (u64, usize) {
    let mut b = [0u8; 8];
    b.copy_from_slice(w);
    let x = u64::from_le_bytes(b);
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below '0' wraps to >= 0x80 when 0x30 is taken away; one above
    // '9' reaches >= 0x80 when 0x46 is added. Borrows and carries only move
    // to later bytes, so every byte before the first non-digit is exact.
    let d = x.wrapping_sub(0x3030_3030_3030_3030);
    let bad = (d | x.wrapping_add(0x4646_4646_4646_4646)) & HIGH;
    let len = (bad.trailing_zeros() / 8) as usize;
    if len == 0 {
        return (0, at);
    }
    // The digits at the top of the word (leading zeros below), then pairs,
    // quads and the whole: the usual SWAR conversion.
    let mut v = (d & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - len));
    v = (v.wrapping_mul(10 * 256 + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100 * 65536 + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    v = v.wrapping_mul(10000 * (1 << 32) + 1) >> 32;
    (v, at + len)
}

/// The common case fast: plain decimal digits that fit in a `u64`.
#[inline]
fn parse_plain_decimal(t: &[u8]) -> Option<u64> {
    if t.is_empty() || t.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &c in t {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// Streams the references of a page-number file, whole lines at a time.
#[derive(Debug)]
pub struct PageNumberReader<R> {
    inner: R,
    path: PathBuf,
    zstd: bool,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl<R: Read> PageNumberReader<R> {
    /// Reads page numbers from `inner`; errors name `path`. `zstd` tells that
    /// the bytes come out of a zstd decoder (an early end is then a truncated frame).
    pub fn new(inner: R, path: impl Into<PathBuf>, zstd: bool) -> Self {
        Self {
            inner,
            path: path.into(),
            zstd,
            buf: Vec::with_capacity(CHUNK + 4096),
            line: 1,
            done: false,
        }
    }

    /// Calls `f(page, is_write)` for every remaining reference, in order.
    ///
    /// # Errors
    /// A token that is not a page number ([`TraceError::BadPageNumber`]), a
    /// read error, or the first error `f` returns.
    pub fn for_each<F>(&mut self, mut f: F) -> Result<(), TraceError>
    where
        F: FnMut(u64, bool) -> Result<(), TraceError>,
    {
        while !self.done {
            // Up to CHUNK more bytes, into spare capacity (no zero-filling
            // of a megabyte per read).
            let got = match (&mut self.inner)
                .take(CHUNK as u64)
                .read_to_end(&mut self.buf)
            {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Err(TraceError::from_read(self.path.clone(), e, self.zstd));
                }
            };
            // Tokenise up to the last newline; keep a partial last line for later.
            let end = if got == 0 {
                self.done = true;
                self.buf.len()
            } else {
                match memchr::memrchr(b'\n', &self.buf) {
                    Some(p) => p + 1,
                    None if self.buf.len() > MAX_LINE_BYTES => {
                        self.done = true;
                        return Err(TraceError::LineTooLong {
                            path: self.path.clone(),
                            line: self.line,
                            max: MAX_LINE_BYTES as u64,
                            what: "page-number file",
                        });
                    }
                    None => continue,
                }
            };
            let path = &self.path;
            self.line = tokens(&self.buf[..end], self.line, &mut f, |b| {
                TraceError::BadPageNumber {
                    path: path.clone(),
                    line: b.line,
                    token: b.token,
                }
            })?;
            self.buf.drain(..end);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Result<Vec<(u64, bool)>, TraceError> {
        let mut v = Vec::new();
        PageNumberReader::new(text, "t.txt", false).for_each(|p, w| {
            v.push((p, w));
            Ok(())
        })?;
        Ok(v)
    }

    #[test]
    fn reads_every_spelling_across_chunks() {
        let mut text = Vec::new();
        for i in 0..300_000u64 {
            text.extend_from_slice(
                format!("{i}{}\n", if i % 7 == 0 { "w" } else { "" }).as_bytes(),
            );
        }
        text.extend_from_slice(b"0x10, 0b11 0o17r 1_000 # comment\n12");
        let v = read_all(&text).expect("valid");
        assert_eq!(v.len(), 300_005);
        assert_eq!(v[7], (7, true));
        assert_eq!(v[8], (8, false));
        assert_eq!(
            &v[300_000..],
            [
                (16, false),
                (3, false),
                (15, false),
                (1000, false),
                (12, false)
            ]
        );
    }

    /// Issue 12: a file without line ends (`/dev/zero`) used to grow memory
    /// without bound.
    #[test]
    fn endless_lines_are_refused() {
        let zeros = std::io::repeat(0).take(MAX_LINE_BYTES as u64 + 2 * CHUNK as u64);
        let mut r = PageNumberReader::new(zeros, "zeros", false);
        match r.for_each(|_, _| Ok(())) {
            Err(e @ TraceError::LineTooLong { line: 1, .. }) => {
                assert!(e.to_string().contains("longer than 67108864 bytes"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The word-at-a-time digits agree with a digit loop, for every length
    /// and every kind of byte after the digits.
    #[test]
    fn eight_digits_agree_with_a_loop() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut w = [0u8; 8];
            let digits = (next() % 9) as usize;
            for (k, b) in w.iter_mut().enumerate() {
                *b = if k < digits {
                    b'0' + (next() % 10) as u8
                } else {
                    (next() % 256) as u8
                };
            }
            let mut len = 0;
            let mut v = 0u64;
            while len < 8 && w[len].is_ascii_digit() {
                v = v * 10 + u64::from(w[len] - b'0');
                len += 1;
            }
            assert_eq!(eight_digits(&w, 5), (v, 5 + len), "{w:?}");
        }
        let v = read_all(b"12345678 123456789\n99999999w 7r 00000012\n1").expect("valid");
        assert_eq!(
            v,
            [
                (12_345_678, false),
                (123_456_789, false),
                (99_999_999, true),
                (7, false),
                (12, false),
                (1, false)
            ]
        );
    }

    #[test]
    fn a_bad_token_names_file_and_line() {
        let e = read_all(b"1\n2\n3x 4\n").expect_err("bad");
        assert_eq!(
            e.to_string().split(" (").next(),
            Some("t.txt:3: '3x' is not a page number")
        );
        assert!(read_all(b"99999999999999999999999").is_err());
        assert!(read_all(b"-1").is_err());
    }
}
