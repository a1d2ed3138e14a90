//! Streaming reader of valgrind lackey `--trace-mem=yes` text.
//!
//! Owns the lackey grammar (see `/work/shared/traces/README.md`, summarised
//! below) and nothing else: the bytes come from any [`Read`] (a plain file or
//! the zstd pipe of [`crate::input`]).
//!
//! ```text
//! I  0401ab70,3        instruction fetch: "I" SP SP hexaddr "," size
//!  L 1fff000768,8      load:   SP "L" SP hexaddr "," size
//!  S 1fff000760,8      store:  SP "S" SP hexaddr "," size
//!  M 04032e58,8        modify: SP "M" SP hexaddr "," size
//! ==12345== ...        banner (any line whose first byte is not 'I' or ' ' is skipped)
//! ```
//!
//! `hexaddr` is 1 to 16 hex digits, `size` a decimal number from 1 to
//! [`MAX_ACCESS_BYTES`] without leading zeros.
//!
//! Nothing is accepted silently: a text must look like lackey before its
//! other lines are skipped (one of its first [`SNIFF_LINES`] lines is a
//! record or a valgrind line `==PID==`, `--PID--` or `**PID**`), else it is
//! [`TraceError::NotLackey`] (a text file, a scenario TOML, a `.vmt` whose
//! magic is damaged); a trace without a single record is
//! [`TraceError::Empty`] unless allowed ([`LackeyReader::set_allow_empty`]);
//! no line may be longer than [`MAX_LINE_BYTES`].
//!
//! The reader works in one fixed buffer: it finds no line ends
//! up front for records (the grammar bounds a record line to 31 bytes, so it
//! parses in place when 64 bytes are buffered, and otherwise looks for the
//! newline with `memchr` first), allocates nothing per line, and memory stays
//! flat however long the trace.
//!
//! The `pid` of every access is the PID in the first banner line (`==PID==`)
//! that precedes the first record, or 0 if there is none.

use std::io::{self, Read};
use std::path::PathBuf;

use crate::access::{Access, AccessKind, MAX_ACCESS_BYTES};
use crate::error::TraceError;
use crate::source::{BATCH, TraceSource};

/// Bytes of decoded text held at once.
const BUF_BYTES: usize = 1 << 20;
/// The longest line accepted (a banner line; records are at most 32 bytes).
/// valgrind's longest is the `Command:` line, as long as the traced
/// program's command line (Linux allows 2 MiB of arguments by default).
pub const MAX_LINE_BYTES: u64 = 4 << 20;
/// Lines read, at most, before a lackey record or a valgrind line must have
/// been seen (lackey writes its 6-line banner first).
pub const SNIFF_LINES: u64 = 32;
/// With at least this many bytes buffered, any valid record line is complete
/// in the buffer (the longest is `" L " + 16 hex + "," + 10 digits + "\r\n"` = 32).
const FAST_LINE: usize = 64;

/// Hex digit values; 0xff for bytes that are not hex digits.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// One byte of every lane of a `u64` (eight lanes, one per byte).
const LANES: u64 = 0x0101_0101_0101_0101;
/// The top bit of every lane.
const TOP: u64 = LANES * 0x80;

/// The hex digits among the eight bytes of `x` (bytes of text read with
/// `u64::from_be_bytes`, so the first character is the top lane), all lanes
/// at once: returns a mask with the top bit set in each lane that is not a
/// hex digit (`0-9`, `a-f`, `A-F`), and each lane's digit value (meaningful
/// in the hex lanes only). Range tests add `0x80 - bound` to every lane of
/// the bytes' low seven bits (at most `0x7f + 0x76`: no carry leaves a lane)
/// and read the lane's top bit; a byte with its own top bit set is never a
/// digit. The lackey fast path's address parse, checked against
/// [`HEX`] over every byte value by a test.
#[inline(always)]
fn hex_word(x: u64) -> (u64, u64) {
    let low7 = x & !TOP;
    // A digit is 0-9 after `^ 0x30`: adding 0x76 leaves its top bit clear.
    let not_digit = (low7 ^ (LANES * 0x30)) + LANES * 0x76;
    // `| 0x20` maps exactly `A-F` and `a-f` (and nothing else) onto `a-f`:
    // at least 0x61 and not at least 0x67.
    let folded = low7 | (LANES * 0x20);
    let letter = (folded + LANES * 0x1f) & !(folded + LANES * 0x19) & TOP;
    let bad = ((not_digit & !letter) | x) & TOP;
    let values = (x & (LANES * 0x0f)) + (letter >> 7) * 9;
    (bad, values)
}

/// The number whose hex digit of weight `16^k` is lane `k` of `v` (the
/// lowest lane `k = 0`; every lane below 16): three shift-and-mask steps.
#[inline(always)]
fn pack_nibbles(v: u64) -> u64 {
    let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    (v | (v >> 16)) & 0xffff_ffff
}

/// [`KIND_BY_SECOND`] of a byte that is no record line's second byte.
const NO_KIND: u8 = 0xff;

/// The kind code (`AccessKind::code`) of a record line by its second byte:
/// `I  `, ` L `, ` S `, ` M ` differ there.
const KIND_BY_SECOND: [u8; 256] = {
    let mut t = [NO_KIND; 256];
    t[b' ' as usize] = AccessKind::Instr.code();
    t[b'L' as usize] = AccessKind::Load.code();
    t[b'S' as usize] = AccessKind::Store.code();
    t[b'M' as usize] = AccessKind::Modify.code();
    t
};

/// The first three bytes of a record line (little-endian, a zero on top), by kind code.
const LINE_START: [u32; 4] = [
    u32::from_le_bytes(*b"I  \0"),
    u32::from_le_bytes(*b" L \0"),
    u32::from_le_bytes(*b" S \0"),
    u32::from_le_bytes(*b" M \0"),
];

/// One parsed record line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    kind: AccessKind,
    va: u64,
    size: u32,
    /// Bytes of the line including its `\n`.
    len: usize,
}

/// Parses the record line at the start of `b` (whose first byte is `I` or a
/// space). On failure, returns what was expected.
#[inline]
fn parse_record(b: &[u8]) -> Result<Record, &'static str> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let kind = match (at(0), at(1), at(2)) {
        (b'I', b' ', b' ') => AccessKind::Instr,
        (b' ', b'L', b' ') => AccessKind::Load,
        (b' ', b'S', b' ') => AccessKind::Store,
        (b' ', b'M', b' ') => AccessKind::Modify,
        (b'I', _, _) => return Err("\"I\" followed by two spaces"),
        _ => {
            return Err(
                "\" L \", \" S \" or \" M \" at the start of a line that begins with a space",
            );
        }
    };
    let mut i = 3;
    let mut va: u64 = 0;
    loop {
        let d = HEX[at(i) as usize];
        if d == 0xff {
            break;
        }
        if i - 3 == 16 {
            return Err("at most 16 hex digits of address");
        }
        va = (va << 4) | u64::from(d);
        i += 1;
    }
    if i == 3 {
        return Err("a hex address after the kind");
    }
    if at(i) != b',' {
        return Err("',' after the address");
    }
    i += 1;
    let first = at(i);
    if !(b'1'..=b'9').contains(&first) {
        return Err("a decimal size >= 1 after ','");
    }
    let mut size: u64 = 0;
    let start = i;
    loop {
        let c = at(i);
        if !c.is_ascii_digit() {
            break;
        }
        if i - start == 10 {
            return Err("a size that fits in 32 bits");
        }
        size = size * 10 + u64::from(c - b'0');
        i += 1;
    }
    let Ok(size) = u32::try_from(size) else {
        return Err("a size that fits in 32 bits");
    };
    if size > MAX_ACCESS_BYTES {
        return Err(
            "an access size of at most 4096 bytes (MAX_ACCESS_BYTES; valgrind lackey emits at most 512)",
        );
    }
    if at(i) == b'\r' {
        i += 1;
    }
    if at(i) != b'\n' {
        return Err("end of line after the size");
    }
    Ok(Record {
        kind,
        va,
        size,
        len: i + 1,
    })
}

/// The common record line, parsed from a fixed window of [`FAST_LINE`]
/// bytes (so no byte is bounds-checked against the buffer): a kind, 1 to 16
/// hex digits, `,`, a size of 1 to 4 digits without a leading zero and at
/// most [`MAX_ACCESS_BYTES`], then `\n` or `\r\n`. `None` for anything
/// else, which [`parse_record`] then parses or explains; where this returns
/// a record, `parse_record` returns the same one (a property test checks it).
#[inline(always)]
fn fast_record(w: &[u8; FAST_LINE]) -> Option<Record> {
    // The kind by the second byte, then the three bytes checked at once
    // (one load): no branch on the kind, which follows no pattern a
    // predictor learns. A second byte that starts no kind ([`NO_KIND`])
    // indexes `" M "`, which that byte then fails.
    let code = KIND_BY_SECOND[usize::from(w[1])];
    let head = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) & 0x00ff_ffff;
    if head != LINE_START[usize::from(code & 3)] {
        return None;
    }
    let kind = AccessKind::from_code(code);
    // The address: 1 to 16 hex digits. The first eight at once
    // ([`hex_word`]), the rest (a data address has 10 or 11) one at a time.
    let a = u64::from_be_bytes(*w[3..].first_chunk::<8>()?);
    let (bad, values) = hex_word(a);
    let (mut va, mut i) = match bad.leading_zeros() / 8 {
        0 => return None,
        8 => {
            let va = pack_nibbles(values);
            // Most lines end right after eight digits (every instruction
            // fetch): no digit loop then.
            if let Some(size) = short_end(w, 11) {
                return Some(Record {
                    kind,
                    va,
                    size,
                    len: 14,
                });
            }
            (va, 11)
        }
        n => (pack_nibbles(values >> (64 - 8 * n)), 3 + n as usize),
    };
    if i == 11 {
        // At most 16 digits: a 17th ends the loop with i == 20 (refused below).
        while i < 20 {
            let d = HEX[usize::from(w[i])];
            if d == 0xff {
                break;
            }
            va = (va << 4) | u64::from(d);
            i += 1;
        }
        if i == 20 {
            return None;
        }
    }
    if let Some(size) = short_end(w, i) {
        return Some(Record {
            kind,
            va,
            size,
            len: i + 3,
        });
    }
    if w[i] != b',' {
        return None;
    }
    i += 1;
    let first = w[i].wrapping_sub(b'0');
    if !(1..=9).contains(&first) {
        return None;
    }
    let mut size = u32::from(first);
    i += 1;
    // Up to three more digits (a valid size has at most four).
    let stop = i + 3;
    while i < stop {
        let d = w[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        size = size * 10 + u32::from(d);
        i += 1;
    }
    if size > MAX_ACCESS_BYTES {
        return None;
    }
    if w[i] == b'\r' {
        i += 1;
    }
    if w[i] != b'\n' {
        return None;
    }
    Some(Record {
        kind,
        va,
        size,
        len: i + 1,
    })
}

/// The common end of a record line at `w[i..]`, four bytes read at once:
/// `,`, a size from 1 to 9, `\n` (the size then; `None` for any other end,
/// which [`fast_record`] then reads a byte at a time). `i` is at most 19.
#[inline(always)]
fn short_end(w: &[u8; FAST_LINE], i: usize) -> Option<u32> {
    let end = u32::from_le_bytes(*w.get(i..)?.first_chunk::<4>()?);
    let digit = ((end >> 8) & 0xff).wrapping_sub(u32::from(b'1'));
    (end & 0x00ff_00ff == u32::from_le_bytes([b',', 0, b'\n', 0]) && digit < 9).then(|| digit + 1)
}

/// The hot loop of lackey reading: parses the common record lines
/// ([`fast_record`]) of `buf` from `pos` into `dst`, for `pid`, until `dst`
/// is full or a line of another shape (or fewer than [`FAST_LINE`] bytes)
/// comes. Returns how many lines it took and where it stopped. Its own
/// function, so that the position and the destination stay in registers (a
/// field of the reader updated per line did not); it writes in place into
/// a slice (a `Vec::push` per line reloaded and stored the length).
#[inline(never)]
fn parse_common(buf: &[u8], mut pos: usize, pid: u32, dst: &mut [Access]) -> (usize, usize) {
    let mut got = 0;
    for slot in dst.iter_mut() {
        let Some(r) = buf
            .get(pos..)
            .and_then(<[u8]>::first_chunk::<FAST_LINE>)
            .and_then(fast_record)
        else {
            break;
        };
        pos += r.len;
        *slot = Access {
            va: r.va,
            pid,
            size: r.size,
            kind: r.kind,
        };
        got += 1;
    }
    (got, pos)
}

/// A placeholder the batch is grown with before [`parse_common`] writes
/// records over it.
const NO_ACCESS: Access = Access {
    va: 0,
    pid: 0,
    size: 0,
    kind: AccessKind::Instr,
};

/// Reads lackey text from `R` in batches of [`Access`].
#[derive(Debug)]
pub struct LackeyReader<R> {
    input: R,
    path: PathBuf,
    zstd: bool,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Lines started so far (the 1-based number of the line being parsed).
    line: u64,
    pid: u32,
    seen_record: bool,
    /// A valgrind line has been seen (or, with `seen_record`, a record):
    /// the input is lackey.
    recognised: bool,
    records: u64,
    allow_empty: bool,
    failed: bool,
}

/// Whether `line` begins with a valgrind line prefix: `==PID==`,
/// `--PID--` (debug) or `**PID**` (internal errors).
fn is_valgrind_line(line: &[u8]) -> bool {
    let Some(&c) = line.first() else {
        return false;
    };
    if !matches!(c, b'=' | b'-' | b'*') || line.get(1) != Some(&c) {
        return false;
    }
    let digits = line[2..].iter().take_while(|d| d.is_ascii_digit()).count();
    digits > 0 && line.get(2 + digits) == Some(&c) && line.get(3 + digits) == Some(&c)
}

impl<R: Read> LackeyReader<R> {
    /// A reader of the text in `input`; `path` names it in errors; `zstd`
    /// says whether `input` is a decompressor (so an early end is a truncated frame).
    pub fn new(input: R, path: impl Into<PathBuf>, zstd: bool) -> Self {
        Self {
            input,
            path: path.into(),
            zstd,
            buf: vec![0; BUF_BYTES],
            pos: 0,
            end: 0,
            eof: false,
            line: 0,
            pid: 0,
            seen_record: false,
            recognised: false,
            records: 0,
            allow_empty: false,
            failed: false,
        }
    }

    /// Accept a trace without any record (by default it is
    /// [`TraceError::Empty`]: a program under lackey always executes
    /// something, so an empty trace is a broken or wrong file).
    pub fn set_allow_empty(&mut self, allow: bool) {
        self.allow_empty = allow;
    }

    /// The PID taken from the banner (0 until a banner line is seen).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The number of lines read so far.
    #[must_use]
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Moves the unread bytes to the front and reads more after them.
    fn refill(&mut self) -> Result<(), TraceError> {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = true;
                    return Err(TraceError::from_read(self.path.clone(), e, self.zstd));
                }
            }
        }
    }

    /// Skips the rest of the current line, reading more input as needed
    /// (a banner line may be longer than the buffer, up to [`MAX_LINE_BYTES`]).
    fn skip_line(&mut self) -> Result<(), TraceError> {
        let mut skipped = 0u64;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                if skipped + i as u64 > MAX_LINE_BYTES {
                    break;
                }
                self.pos += i + 1;
                return Ok(());
            }
            skipped += (self.end - self.pos) as u64;
            if skipped > MAX_LINE_BYTES {
                break;
            }
            self.pos = self.end;
            if self.eof {
                return Ok(());
            }
            self.refill()?;
        }
        self.failed = true;
        Err(TraceError::Malformed {
            path: self.path.clone(),
            line: self.line,
            expected: "a line of at most 4 MiB (MAX_LINE_BYTES)",
            found: String::new(),
        })
    }

    /// The input is not lackey text.
    fn not_lackey(&mut self, why: String) -> TraceError {
        self.failed = true;
        TraceError::NotLackey {
            path: self.path.clone(),
            why,
        }
    }

    /// Takes the PID from a `==PID==` banner line at the front of the buffer.
    fn banner_pid(&mut self) {
        let b = &self.buf[self.pos..self.end];
        if b.len() > 2 && b[0] == b'=' && b[1] == b'=' {
            let digits = b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && b.get(2 + digits) == Some(&b'=') {
                let text = &b[2..2 + digits];
                if let Some(pid) = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
                    self.pid = pid;
                }
            }
        }
    }

    fn malformed(&mut self, expected: &'static str) -> TraceError {
        self.failed = true;
        let rest = &self.buf[self.pos..self.end];
        let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len()).min(80);
        TraceError::Malformed {
            path: self.path.clone(),
            line: self.line,
            expected,
            found: String::from_utf8_lossy(&rest[..line_end]).into_owned(),
        }
    }
}

impl<R: Read> TraceSource for LackeyReader<R> {
    fn next_batch(&mut self, out: &mut Vec<Access>) -> Result<usize, TraceError> {
        if self.failed {
            out.clear();
            return Ok(0);
        }
        // The batch is written in place (`n` records so far) over a full-size
        // vector (the caller's last batch: grown, with a fill, only when it
        // was shorter); whatever happens, it ends holding those `n`.
        out.resize(BATCH, NO_ACCESS);
        let mut n = 0;
        let result = self.fill_batch(out, &mut n);
        out.truncate(n);
        result
    }

    /// Always the banner's pid: the pid changes only at a banner line
    /// before the first record, so every record of the trace carries it.
    fn batch_pid(&self) -> Option<u32> {
        Some(self.pid)
    }
}

impl<R: Read> LackeyReader<R> {
    /// The body of [`TraceSource::next_batch`]: parses records into
    /// `out[*n..]` until `out` is full or the trace ends.
    fn fill_batch(&mut self, out: &mut [Access], n: &mut usize) -> Result<usize, TraceError> {
        while *n < BATCH {
            // The hot path: whole record lines in the buffer, parsed in place.
            let (got, pos) =
                parse_common(&self.buf[..self.end], self.pos, self.pid, &mut out[*n..]);
            *n += got;
            if got > 0 {
                self.line += got as u64;
                self.pos = pos;
                self.seen_record = true;
                continue;
            }
            if self.end - self.pos < FAST_LINE
                && memchr::memchr(b'\n', &self.buf[self.pos..self.end]).is_none()
            {
                if !self.eof {
                    self.refill()?;
                    continue;
                }
                if self.pos == self.end {
                    if self.records == 0 && *n == 0 {
                        return self.end_without_records();
                    }
                    break;
                }
                // The last line has no newline: give it one (the buffer has room
                // because a refill just compacted it).
                if self.end == self.buf.len() {
                    self.buf.copy_within(self.pos..self.end, 0);
                    self.end -= self.pos;
                    self.pos = 0;
                }
                self.buf[self.end] = b'\n';
                self.end += 1;
            }
            self.line += 1;
            let first = self.buf[self.pos];
            if first != b'I' && first != b' ' {
                if !self.recognised && !self.seen_record {
                    if is_valgrind_line(&self.buf[self.pos..self.end]) {
                        self.recognised = true;
                    } else if self.line >= SNIFF_LINES {
                        return Err(self.not_lackey(format!(
                            "none of its first {SNIFF_LINES} lines is a lackey record or a valgrind line (==PID==)"
                        )));
                    }
                }
                if !self.seen_record && first == b'=' {
                    self.banner_pid();
                }
                self.skip_line()?;
                continue;
            }
            match parse_record(&self.buf[self.pos..self.end]) {
                Ok(r) => {
                    self.pos += r.len;
                    self.seen_record = true;
                    out[*n] = Access {
                        va: r.va,
                        pid: self.pid,
                        size: r.size,
                        kind: r.kind,
                    };
                    *n += 1;
                }
                // A line that does not even begin like a record, before
                // anything lackey-like: the input is something else.
                Err(expected)
                    if !self.recognised
                        && !self.seen_record
                        && !matches!(
                            self.buf.get(self.pos..self.pos + 3),
                            Some(b"I  " | b" L " | b" S " | b" M ")
                        ) =>
                {
                    let line = self.line;
                    return Err(self.not_lackey(format!(
                        "line {line} is not a lackey record (expected {expected}) and no valgrind banner came before it"
                    )));
                }
                Err(expected) => return Err(self.malformed(expected)),
            }
        }
        self.records += *n as u64;
        Ok(*n)
    }
}

impl<R: Read> LackeyReader<R> {
    /// The end of a trace that held no record: not lackey at all, or empty.
    fn end_without_records(&mut self) -> Result<usize, TraceError> {
        if !self.recognised && !self.seen_record && self.line > 0 {
            return Err(self.not_lackey(
                "no line of it is a lackey record or a valgrind line (==PID==)".to_owned(),
            ));
        }
        if self.allow_empty {
            return Ok(0);
        }
        self.failed = true;
        Err(TraceError::Empty {
            path: self.path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line of record-like bytes: mostly valid records, with every part
    /// sometimes wrong (kind, digits, separators, sizes, line ends).
    fn record_like() -> impl Strategy<Value = Vec<u8>> {
        let kind = prop_oneof![
            Just(b"I  ".to_vec()),
            Just(b" L ".to_vec()),
            Just(b" S ".to_vec()),
            Just(b" M ".to_vec()),
            proptest::collection::vec(any::<u8>(), 3),
        ];
        let hex_digit = || {
            prop_oneof![
                8 => proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                1 => proptest::sample::select(NEAR_HEX.to_vec()),
                1 => any::<u8>(),
            ]
        };
        // Often the lengths lackey writes (8 digits: every instruction
        // fetch; 10: most data), where the fast path has shortcuts.
        let hex = prop_oneof![
            2 => proptest::collection::vec(hex_digit(), 0..19),
            1 => proptest::collection::vec(hex_digit(), 8),
            1 => proptest::collection::vec(hex_digit(), 10),
        ];
        let size_digit = || {
            prop_oneof![
                8 => proptest::sample::select(b"0123456789".to_vec()),
                1 => any::<u8>(),
            ]
        };
        let size = prop_oneof![
            2 => proptest::collection::vec(size_digit(), 0..7),
            1 => proptest::collection::vec(size_digit(), 1),
        ];
        let sep = prop_oneof![8 => Just(b",".to_vec()), 1 => proptest::collection::vec(any::<u8>(), 0..2)];
        let end = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..3),
        ];
        let tail = proptest::collection::vec(any::<u8>(), 0..64);
        (kind, hex, sep, size, end, tail).prop_map(|(k, h, c, s, e, t)| {
            let mut line = [k, h, c, s, e, t].concat();
            line.resize(line.len().max(FAST_LINE), b'x');
            line
        })
    }

    /// Bytes next to the hex digits' ranges, and those ranges with the top
    /// bit set: where a lane-parallel range test would go wrong first.
    const NEAR_HEX: &[u8] = b"/:@G`g,\x00\x7f\x80\xb0\xb9\xba\xc0\xc1\xc6\xc7\xe0\xe1\xe6\xe7\xff";

    /// The hex digits of `lanes` one byte at a time, as `fast_record` read
    /// them before [`hex_word`]: (how many lead the word, their value).
    fn hex_prefix_bytewise(lanes: [u8; 8]) -> (u32, u64) {
        let mut va = 0u64;
        let mut n = 0;
        for &c in &lanes {
            let d = HEX[usize::from(c)];
            if d == 0xff {
                break;
            }
            va = (va << 4) | u64::from(d);
            n += 1;
        }
        (n, va)
    }

    /// What [`hex_word`] and [`pack_nibbles`] make of `lanes`, as `fast_record` uses them.
    fn hex_prefix_swar(lanes: [u8; 8]) -> (u32, u64) {
        let (bad, values) = hex_word(u64::from_be_bytes(lanes));
        let n = bad.leading_zeros() / 8;
        let va = match n {
            0 => 0,
            8 => pack_nibbles(values),
            n => pack_nibbles(values >> (64 - 8 * n)),
        };
        (n, va)
    }

    #[test]
    fn hex_word_agrees_with_the_table_for_every_byte_in_every_lane() {
        for c in 0..=255u8 {
            for lane in 0..8 {
                for fill in [b'0', b'f', b'A', b'9'] {
                    let mut lanes = [fill; 8];
                    lanes[lane] = c;
                    let (bad, values) = hex_word(u64::from_be_bytes(lanes));
                    let top = 8 * (7 - lane);
                    let d = HEX[usize::from(c)];
                    assert_eq!((bad >> top) & 0x80 != 0, d == 0xff, "{c:#x} lane {lane}");
                    if d != 0xff {
                        assert_eq!((values >> top) & 0xff, u64::from(d), "{c:#x} lane {lane}");
                    }
                    assert_eq!(hex_prefix_swar(lanes), hex_prefix_bytewise(lanes));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The in-place fast path takes exactly the lines the general parser
        /// accepts (every valid record fits its window: at most 16 hex
        /// digits and a size of at most 4 digits), and reads the same record.
        #[test]
        fn fast_record_agrees_with_parse_record(line in record_like()) {
            let w = line.first_chunk::<FAST_LINE>().expect("padded to the window");
            prop_assert_eq!(fast_record(w), parse_record(&line).ok());
        }

        /// Every access of a batch carries the pid the reader claims for it
        /// ([`TraceSource::batch_pid`]), whatever banner lines (`==PID==`,
        /// other pids) come before, between and after the records.
        #[test]
        fn batch_pid_holds_for_every_access_of_its_batch(
            lines in proptest::collection::vec(
                prop_oneof![
                    6 => (0u64..1 << 20).prop_map(|va| format!(" L {va:x},4")),
                    1 => (0u32..5).prop_map(|pid| format!("=={pid}== banner")),
                    1 => (0u32..5).prop_map(|pid| format!("--{pid}-- debug")),
                ],
                0..200,
            ),
            records in 0usize..(2 * BATCH + 10),
        ) {
            let mut text = lines.join("\n");
            text.push('\n');
            for i in 0..records {
                text.push_str(&format!("I  {:x},2\n", 0x1000 + i));
            }
            text.push_str("==9== after\n");
            let mut r = LackeyReader::new(io::Cursor::new(text.into_bytes()), "t", false);
            r.set_allow_empty(true);
            let mut batch = Vec::new();
            let mut seen = 0;
            while r.next_batch(&mut batch).expect("valid") > 0 {
                let pid = r.batch_pid().expect("a lackey reader always claims one");
                prop_assert!(batch.iter().all(|a| a.pid == pid));
                seen += batch.len();
            }
            prop_assert!(seen >= records);
        }

        /// Eight bytes at a time: the same hex digits and value as one at a time.
        #[test]
        fn hex_word_agrees_with_the_bytewise_parse(
            lanes in proptest::array::uniform8(prop_oneof![
                6 => proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                2 => proptest::sample::select(NEAR_HEX.to_vec()),
                1 => any::<u8>(),
            ])
        ) {
            prop_assert_eq!(hex_prefix_swar(lanes), hex_prefix_bytewise(lanes));
        }
    }

    #[test]
    fn fast_record_takes_the_common_lines() {
        for line in [
            "I  0401ab70,3\n",
            "I  0401ab70,9\n",
            "I  0401ab70,1\r\n",
            " L 0401ab70,16\n",
            " L 1fff000768,8\r\n",
            " S 1fff000768,1\n",
            " S ab,2\n",
            " M ffffffffffffffff,4096\n",
        ] {
            let mut b = line.as_bytes().to_vec();
            b.resize(FAST_LINE, b'x');
            let w = b.first_chunk::<FAST_LINE>().expect("64 bytes");
            assert_eq!(fast_record(w), parse_record(&b).ok(), "{line:?}");
            assert!(fast_record(w).is_some(), "{line:?}");
        }
        for line in [
            " S 1,4097\n",
            " S 1,01\n",
            "I  0401ab70,0\n",
            "I  0401ab70,:\n",
            "I  0401ab70;3\n",
            "I  0401ab70,3\r",
            " L 1fff000768,0\n",
            " S 12345678901234567,1\n",
            "I  ,1\n",
            " S 1,1 \n",
        ] {
            let mut b = line.as_bytes().to_vec();
            b.resize(FAST_LINE, b'x');
            let w = b.first_chunk::<FAST_LINE>().expect("64 bytes");
            assert_eq!(fast_record(w), None, "{line:?}");
        }
    }

    fn parse_all(text: &str) -> Result<Vec<Access>, TraceError> {
        LackeyReader::new(text.as_bytes(), "mem.lackey", false).collect_all()
    }

    #[test]
    fn parses_each_kind_and_skips_banners() {
        let text = "==42== Lackey\n--42-- debug\n**42** x\nI  0401ab70,3\n L 1fff000768,8\n S 1fff000760,8\n M 04032e58,8\n\n==42== end\n";
        let v = parse_all(text).expect("valid");
        let want = [
            (AccessKind::Instr, 0x0401_ab70, 3),
            (AccessKind::Load, 0x1f_ff00_0768, 8),
            (AccessKind::Store, 0x1f_ff00_0760, 8),
            (AccessKind::Modify, 0x0403_2e58, 8),
        ];
        assert_eq!(v.len(), 4);
        for (a, (k, va, size)) in v.iter().zip(want) {
            assert_eq!((a.kind, a.va, a.size, a.pid), (k, va, size, 42));
        }
    }

    #[test]
    fn last_line_without_newline_and_full_width_address() {
        let v = parse_all("I  ffffffffffffffff,15").expect("valid");
        assert_eq!(v[0].va, u64::MAX);
        assert_eq!(v[0].size, 15);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let cases = [
            ("==1== x\nI  0401ab70,3\n L 0401ab70;8\n", 3, "','"),
            ("I 0401ab70,3\n", 1, "two spaces"),
            (" X 0401ab70,3\n", 1, "\" L \""),
            ("I  ,3\n", 1, "hex address"),
            ("I  0401ab70,0\n", 1, "size >= 1"),
            ("I  0401ab70,\n", 1, "size >= 1"),
            ("I  0401ab70,3x\n", 1, "end of line"),
            ("I  11112222333344445,3\n", 1, "16 hex"),
            ("I  0401ab70,99999999999\n", 1, "32 bits"),
            ("I  0401ab70,3\nI  0401ab7", 2, "','"),
        ];
        for (text, line, what) in cases {
            // Behind a banner: a first line that is no record is "not lackey".
            let (text, line) = if text.starts_with("==") {
                (text.to_owned(), line)
            } else {
                (format!("==9== lackey\n{text}"), line + 1)
            };
            match parse_all(&text) {
                Err(TraceError::Malformed {
                    line: l,
                    expected,
                    path,
                    ..
                }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(expected.contains(what), "{text:?}: {expected}");
                    assert_eq!(path, PathBuf::from("mem.lackey"));
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn sizes_above_the_bound_name_the_line() {
        let ok = parse_all("I  1000,4096\n").expect("4096 is allowed");
        assert_eq!(ok[0].size, MAX_ACCESS_BYTES);
        for text in ["I  1000,4097\n", "==1== x\n L 1000,4294967295\n"] {
            match parse_all(text) {
                Err(TraceError::Malformed { expected, line, .. }) => {
                    assert!(expected.contains("at most 4096"), "{expected}");
                    assert_eq!(line, text.lines().count() as u64);
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_that_is_not_lackey_is_refused() {
        let toml = "[[process]]\nname = \"a\"\ntrace = \"x\"\n";
        let prose = "Dear reader,\n\nthis is not a trace.\n I am indented.\n";
        let many = "junk\n".repeat(100) + "I  1000,4\n";
        let binary = "\u{1}\u{2}VMT\u{7f}\n\u{0}\u{0}";
        for text in [toml, prose, &many, binary, "\n\n"] {
            match parse_all(text) {
                Err(TraceError::NotLackey { why, .. }) => assert!(!why.is_empty()),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // A banner first, then anything: lackey, and stray lines are skipped.
        let v = parse_all("==5== Lackey\nprogram output\nI  1000,4\n").expect("lackey");
        assert_eq!(v.len(), 1);
        let v = parse_all("--5-- debug\n**5** internal\n L 1000,8\n").expect("lackey");
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn an_empty_trace_is_an_error_unless_allowed() {
        for text in ["", "==5== Lackey, an example Valgrind tool\n==5== \n"] {
            assert!(
                matches!(parse_all(text), Err(TraceError::Empty { .. })),
                "{text:?}"
            );
            let mut r = LackeyReader::new(text.as_bytes(), "e.lackey", false);
            r.set_allow_empty(true);
            assert!(r.collect_all().expect("allowed").is_empty());
        }
    }

    #[test]
    fn lines_longer_than_the_bound_are_refused() {
        let text = format!(
            "==1== {}\nI  1000,4\n",
            "x".repeat(MAX_LINE_BYTES as usize + 1)
        );
        match parse_all(&text) {
            Err(TraceError::Malformed { expected, line, .. }) => {
                assert!(expected.contains("at most 4 MiB"), "{expected}");
                assert_eq!(line, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_across_refills_and_long_banners() {
        // Many records plus a banner line longer than the buffer.
        let mut text = String::new();
        text.push_str("==7== ");
        text.push_str(&"x".repeat(BUF_BYTES + 100));
        text.push('\n');
        for i in 0..200_000u64 {
            text.push_str(&format!("I  {:08x},{}\n", 0x1000 + i * 3, 1 + i % 15));
        }
        let v = parse_all(&text).expect("valid");
        assert_eq!(v.len(), 200_000);
        for (i, a) in v.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                (a.va, u64::from(a.size), a.pid),
                (0x1000 + i * 3, 1 + i % 15, 7)
            );
        }
    }
}
