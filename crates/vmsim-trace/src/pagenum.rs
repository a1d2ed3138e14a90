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
        // The common token fastest, while 16 bytes are left: up to 15
        // decimal digits converted two words at a time, maybe a w or r,
        // then a separator (a newline is taken with the token, so a line of
        // one number costs one pass). Anything else (and the last bytes)
        // takes the paths below, which accept the same and more.
        if let Some(w) = text.get(i..i + 16)
            && let Some((v, len)) = sixteen_digits(w)
        {
            // len <= 15: the byte after the digits is in `w`.
            let c = w[len];
            if c == b'\n' {
                f(v, false)?;
                line += 1;
                i += len + 1;
                continue;
            }
            if is_sep(c) {
                f(v, false)?;
                i += len + 1;
                continue;
            }
            let write = match c | 0x20 {
                b'w' => Some(true),
                b'r' => Some(false),
                _ => None,
            };
            if let Some(write) = write
                && text.get(i + len + 1).is_none_or(|&b| is_sep(b))
            {
                f(v, write)?;
                i += len + 1;
                continue;
            }
        }
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
    let (d, len) = digit_run(word(w));
    if len == 0 {
        return (0, at);
    }
    (digits_value(d, len), at + len)
}

/// The value and number (1 to 15) of the decimal digits the 16 bytes `w`
/// start with, when fewer than 16: `None` when `w` does not start with a
/// digit or is all digits.
#[inline]
fn sixteen_digits(w: &[u8]) -> Option<(u64, usize)> {
    /// 10^n for n in 0..8.
    const POW10: [u64; 8] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];
    let (d, len) = digit_run(word(&w[..8]));
    match len {
        0 => None,
        1..=7 => Some((digits_value(d, len), len)),
        _ => {
            let (d2, len2) = digit_run(word(&w[8..16]));
            let high = digits_value(d, 8);
            match len2 {
                0 => Some((high, 8)),
                // At most 15 digits: below 10^15, no overflow.
                1..=7 => Some((high * POW10[len2] + digits_value(d2, len2), 8 + len2)),
                _ => None,
            }
        }
    }
}

/// The first 8 bytes of `w` as a little-endian word.
#[inline]
fn word(w: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&w[..8]);
    u64::from_le_bytes(b)
}

/// The 8 bytes of `x` less `'0'` each, and the number of leading bytes
/// (lowest first) that are decimal digits.
#[inline]
fn digit_run(x: u64) -> (u64, usize) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below '0' wraps to >= 0x80 when 0x30 is taken away; one above
    // '9' reaches >= 0x80 when 0x46 is added. Borrows and carries only move
    // to later bytes, so every byte before the first non-digit is exact.
    let d = x.wrapping_sub(0x3030_3030_3030_3030);
    let bad = (d | x.wrapping_add(0x4646_4646_4646_4646)) & HIGH;
    (d, (bad.trailing_zeros() / 8) as usize)
}

/// The value of the first `len` (1 to 8) digits of `d` (as [`digit_run`]
/// gives them): the digits moved to the top of the word (leading zeros
/// below), then pairs, quads and the whole, the usual SWAR conversion.
#[inline]
fn digits_value(d: u64, len: usize) -> u64 {
    debug_assert!((1..=8).contains(&len));
    let mut v = (d & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - len));
    v = (v.wrapping_mul(10 * 256 + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100 * 65536 + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    v.wrapping_mul(10000 * (1 << 32) + 1) >> 32
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
    /// Zero-filled once; `buf[..filled]` holds the bytes read and not yet
    /// tokenised: part of one line (no newline in it) between reads.
    buf: Vec<u8>,
    filled: usize,
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
            buf: Vec::new(),
            filled: 0,
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
            // What is left is part of one line: refuse it once it is too
            // long, else make room (the buffer grows only for a line
            // longer than it, and at most to MAX_LINE_BYTES + CHUNK).
            if self.filled > MAX_LINE_BYTES {
                self.done = true;
                return Err(TraceError::LineTooLong {
                    path: self.path.clone(),
                    line: self.line,
                    max: MAX_LINE_BYTES as u64,
                    what: "page-number file",
                });
            }
            if self.filled == self.buf.len() {
                grow(&mut self.buf);
            }
            // Read straight into the buffer: no copy through another, no
            // zero-filling per read.
            let got = loop {
                match self.inner.read(&mut self.buf[self.filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.done = true;
                        return Err(TraceError::from_read(self.path.clone(), e, self.zstd));
                    }
                }
            };
            let old = self.filled;
            self.filled += got;
            // Tokenise up to the last newline; keep a partial last line for later.
            let end = if got == 0 {
                self.done = true;
                self.filled
            } else {
                match memchr::memrchr(b'\n', &self.buf[old..self.filled]) {
                    Some(p) => old + p + 1,
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
            self.buf.copy_within(end..self.filled, 0);
            self.filled -= end;
        }
        Ok(())
    }
}

/// Doubles `buf` (at least to `CHUNK`, at most to `MAX_LINE_BYTES` +
/// `CHUNK`), zeroed. The first time, the allocator's zeroed memory: no loop
/// over a megabyte, so a small input (an inline list, a fuzz case) costs
/// next to nothing. Out of line: it runs a few times per file.
#[cold]
#[inline(never)]
fn grow(buf: &mut Vec<u8>) {
    let len = (2 * buf.len()).clamp(CHUNK, MAX_LINE_BYTES + CHUNK);
    if buf.is_empty() {
        *buf = vec![0; len];
    } else {
        buf.resize(len, 0);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    /// The grammar read the simple way, line by line and token by token
    /// with `parse_u64`: what the fast paths must agree with. Returns the
    /// references, or the line and text of the first bad token.
    fn simple(text: &[u8]) -> Result<Vec<(u64, bool)>, (u64, String)> {
        let mut out = Vec::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let words = line
                .split(|&b| matches!(b, b' ' | b'\t' | b'\r' | b','))
                .filter(|w| !w.is_empty());
            for word in words {
                // A `#` ends the token and starts a comment to the line's end.
                let hash = word.iter().position(|&b| b == b'#');
                let token = &word[..hash.unwrap_or(word.len())];
                if !token.is_empty() {
                    let (number, write) = match token.last().map(u8::to_ascii_lowercase) {
                        Some(b'w') => (&token[..token.len() - 1], true),
                        Some(b'r') => (&token[..token.len() - 1], false),
                        _ => (token, false),
                    };
                    let page = std::str::from_utf8(number)
                        .ok()
                        .and_then(|t| crate::units::parse_u64(t).ok());
                    match page {
                        Some(p) => out.push((p, write)),
                        // The message quotes the word up to a separator.
                        None => {
                            return Err((n as u64 + 1, String::from_utf8_lossy(word).into_owned()));
                        }
                    }
                }
                if hash.is_some() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Hands out its bytes a few at a time (the sizes cycle through
    /// `pieces`), as a pipe may: lines are split across reads anywhere.
    struct Dribble<'a> {
        bytes: &'a [u8],
        pieces: Vec<usize>,
        next: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let want = self.pieces[self.next % self.pieces.len()];
            self.next += 1;
            let n = want.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_dribbled(text: &[u8], pieces: Vec<usize>) -> Result<Vec<(u64, bool)>, (u64, String)> {
        let mut v = Vec::new();
        let input = Dribble {
            bytes: text,
            pieces,
            next: 0,
        };
        PageNumberReader::new(input, "t.txt", false)
            .for_each(|p, w| {
                v.push((p, w));
                Ok(())
            })
            .map_err(|e| match e {
                TraceError::BadPageNumber { line, token, .. } => (line, token),
                other => panic!("{other}"),
            })?;
        Ok(v)
    }

    /// Pieces of page-number text, good and bad: numbers of every length
    /// (with leading zeros, past 16 digits, past `u64::MAX`), suffixes,
    /// every separator, CRLF, comments, blank lines, other spellings and
    /// tokens that are not page numbers.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        let digits =
            proptest::collection::vec(proptest::sample::select(b"0123456789".to_vec()), 1..22);
        let line = (
            digits.clone(),
            proptest::sample::select(vec![&b"\n"[..], b" ", b",", b"\r\n"]),
        )
            .prop_map(|(mut d, sep)| {
                d.extend_from_slice(sep);
                d
            });
        prop_oneof![
            12 => line,
            6 => digits,
            4 => (0u64..=u64::MAX).prop_map(|v| v.to_string().into_bytes()),
            3 => proptest::sample::select(vec![b"\n".to_vec(), b"\r\n".to_vec()]),
            3 => proptest::sample::select(vec![
                b" ".to_vec(), b",".to_vec(), b"\t".to_vec(), b"\r".to_vec(), b", ".to_vec(),
            ]),
            2 => proptest::sample::select(vec![b"w".to_vec(), b"W".to_vec(), b"r".to_vec(), b"R".to_vec()]),
            1 => proptest::sample::select(vec![
                b"# a comment, 12 13\n".to_vec(),
                b"#".to_vec(),
                b"\n\n".to_vec(),
                b"0x1F".to_vec(),
                b"0b101".to_vec(),
                b"0o17".to_vec(),
                b"1_000".to_vec(),
                b"18446744073709551615".to_vec(),
                b"18446744073709551616".to_vec(),
            ]),
            1 => proptest::sample::select(vec![
                b"x".to_vec(), b"-1".to_vec(), b"+1".to_vec(), b"abc".to_vec(), b"0x".to_vec(),
                b"_".to_vec(), b"\xff".to_vec(), b"\x0b".to_vec(), b"ww".to_vec(),
            ]),
        ]
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Over random text, mostly valid, the tokenizer (its two-word fast
        /// path, its one-word path, its general path) reads what the simple
        /// reader reads, or stops at the same bad token on the same line.
        #[test]
        fn tokens_agree_with_the_simple_reader(
            pieces in proptest::collection::vec(piece(), 0..200),
        ) {
            let text = pieces.concat();
            let mut v = Vec::new();
            let got = tokens(&text, 1, |p, w| { v.push((p, w)); Ok(()) }, |b| (b.line, b.token))
                .map(|_| v);
            proptest::prop_assert_eq!(got, simple(&text));
        }

        /// The streaming reader agrees too, however the bytes are split
        /// between reads.
        #[test]
        fn the_reader_agrees_across_any_reads(
            pieces in proptest::collection::vec(piece(), 0..200),
            sizes in proptest::collection::vec(1usize..40, 1..8),
        ) {
            let text = pieces.concat();
            proptest::prop_assert_eq!(read_dribbled(&text, sizes), simple(&text));
        }
    }

    /// A line longer than the buffer is read on (the buffer grows), and
    /// what follows it is read as before.
    #[test]
    fn a_line_longer_than_the_buffer_is_read_whole() {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for i in 0..(3 * CHUNK as u64 / 8) {
            text.extend_from_slice(format!("{i},").as_bytes());
            want.push((i, false));
        }
        text.extend_from_slice(b"7w\n8\n");
        want.extend([(7, true), (8, false)]);
        assert_eq!(read_all(&text).expect("valid"), want);
        assert_eq!(read_dribbled(&text, vec![4096, 1, 65536]), Ok(want));
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
