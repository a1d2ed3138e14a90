//! Streaming `.vmt` decoder: a block is loaded and its checksum verified
//! before any of its records is handed out, then decoded [`BATCH`] records at
//! a time (so a batch stays cache-sized for the consumer).
//!
//! Owns decoding and validation (header, lengths, CRC-32C, record counts,
//! end block). Every failure is a [`TraceError`], never a panic.

use std::hint::select_unpredictable;
use std::io::{self, Read};
use std::path::PathBuf;

use crate::access::{Access, AccessKind, MAX_ACCESS_BYTES};
use crate::error::TraceError;
use crate::source::{BATCH, TraceSource};
use crate::vmt::format::{
    BLOCK_HEADER_BYTES, END_PAYLOAD_BYTES, FILE_HEADER_BYTES, MAGIC, MAX_BLOCK_PAYLOAD,
    MAX_BLOCK_RECORDS, MIN_RECORD_BYTES, TAG_PID, TAG_SIZE_SHIFT, VERSION, block_crc, get_varint,
    unzigzag,
};

/// Reads `.vmt` from `R` in batches of at most [`BATCH`] accesses.
#[derive(Debug)]
pub struct VmtReader<R> {
    input: R,
    path: PathBuf,
    zstd: bool,
    payload: Vec<u8>,
    cursor: Cursor,
    /// Blocks loaded so far (the index of the next block).
    block: u64,
    /// Records in the blocks loaded so far.
    records: u64,
    allow_empty: bool,
    done: bool,
    /// The pid of every record of the last batch, when they all have the
    /// same one (see [`TraceSource::batch_pid`]).
    batch_pid: Option<u32>,
}

/// Decoding position inside the verified payload of the current block.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    pos: usize,
    remaining: u32,
    prev: [u64; 2],
    pid: u32,
}

/// Fills `buf` completely. `Ok(false)` if the stream ended before the first
/// byte; an end after some bytes is `UnexpectedEof`.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Bytes the fast path of [`decode`] looks at: the tag and an address varint
/// of up to 8 bytes.
const FAST_WINDOW: usize = 9;

/// The size of each common record's tag (no pid, a size in the tag), 0 for
/// any other tag: one load gives both the test of the shape and the size
/// (no shift of the tag a record).
const COMMON_SIZE: [u8; 256] = {
    let mut t = [0; 256];
    let mut tag = 0;
    while tag < 256 {
        if tag as u8 & TAG_PID == 0 {
            t[tag] = tag as u8 >> TAG_SIZE_SHIFT;
        }
        tag += 1;
    }
    t
};

/// The common record, decoded without a bounds check per byte: no pid, a
/// size in the tag, an address varint of at most 8 bytes (deltas below
/// 2^56). Returns the tag, the address delta (unzigzagged) and the record's
/// length, or `None` when the record is of another shape (the careful path
/// decodes it).
///
/// The record as [`decode_common`] reads it, from the same pieces (the
/// [`COMMON_SIZE`] test, the one-byte delta, [`multi_byte_delta`]): the
/// property tests check it against [`careful_record`].
#[cfg(test)]
fn fast_record(w: &[u8; FAST_WINDOW]) -> Option<(u8, i64, usize)> {
    let tag = w[0];
    if COMMON_SIZE[usize::from(tag)] == 0 {
        return None;
    }
    // Most deltas take one byte: that case first, on its own, its delta
    // read from a table.
    if w[1] < 0x80 {
        return Some((tag, UNZIGZAG7[usize::from(w[1])], 2));
    }
    let (delta, len) = multi_byte_delta(w)?;
    Some((tag, delta, len))
}

/// The address delta (unzigzagged) of a common record whose varint is
/// longer than one byte, and the record's length; `None` when the varint
/// is longer than 8 bytes. The tag is not looked at (the caller has).
#[inline(always)]
fn multi_byte_delta(w: &[u8; FAST_WINDOW]) -> Option<(i64, usize)> {
    // Two bytes (about a third of the longer deltas on lsR_linux),
    // without the word-wide gather.
    if w[2] < 0x80 {
        let d = u64::from(w[1] & 0x7f) | u64::from(w[2]) << 7;
        return Some((unzigzag(d), 3));
    }
    // Three bytes (483K records of lsR_linux, most of them instruction
    // fetches) the same way: cheaper than the gather, which the longer
    // ones take.
    if w[3] < 0x80 {
        let d = u64::from(w[1] & 0x7f) | u64::from(w[2] & 0x7f) << 7 | u64::from(w[3]) << 14;
        return Some((unzigzag(d), 4));
    }
    // The first three bytes have their top bit set: from here on the
    // varint's bytes are read as one word, those known top bits taken
    // off by a subtraction (no mask).
    // Four bytes (348K records of lsR_linux).
    if w[4] < 0x80 {
        let x = u32::from_le_bytes(*w[1..].first_chunk::<4>()?);
        return Some((unzigzag(u64::from(gather4(x - 0x0080_8080))), 5));
    }
    // Six bytes (750K data records of lsR_linux: a load or store far from
    // the last one, as between the heap and the stack).
    let x = u64::from_le_bytes(*w[1..].first_chunk::<8>()?);
    if x & 0x8080_0000_0000 == 0x0080_0000_0000 {
        return Some((
            unzigzag(gather6((x & 0xffff_ffff_ffff) - 0x0080_8080_8080)),
            7,
        ));
    }
    let (d, len) = long_delta(w)?;
    Some((unzigzag(d), len))
}

/// The value of a four-byte varint whose top bits are cleared, held in
/// `x` (its first byte lowest): the four seven-bit groups packed.
#[inline(always)]
fn gather4(x: u32) -> u32 {
    let v = x - ((x & 0x7f00_7f00) >> 1);
    (v & 0x3fff) | ((v >> 2) & 0x0fff_c000)
}

/// The value of a six-byte varint whose top bits are cleared, held in the
/// low six bytes of `x` (the two above zero): the six seven-bit groups
/// packed, as [`gather7`] packs them, with the steps six bytes need.
#[inline(always)]
fn gather6(x: u64) -> u64 {
    let v = x - ((x & 0x7f00_7f00_7f00) >> 1);
    let v = (v & 0x3fff_0000_3fff) | ((v >> 2) & 0x0fff_c000);
    (v & 0x0fff_ffff) | ((v >> 32) << 28)
}

/// The address varint of a common record when it is 2 to 8 bytes long:
/// the raw (zigzagged) delta and the record's length, or `None` when it is
/// longer than that.
#[inline(always)]
fn long_delta(w: &[u8; FAST_WINDOW]) -> Option<(u64, usize)> {
    // All at once: the eight bytes after the tag as one word, the varint's
    // end at the first byte whose top bit is clear, its seven-bit groups
    // gathered by `gather7`.
    let x = u64::from_le_bytes(*w[1..].first_chunk::<8>()?);
    let ends = !x & 0x8080_8080_8080_8080;
    if ends == 0 {
        return None;
    }
    // The bytes up to and including the varint's last one.
    let mask = ends ^ (ends - 1);
    let len = ends.trailing_zeros() as usize / 8 + 2;
    Some((gather7(x & mask), len))
}

/// The delta of each one-byte address varint (0..128, zigzagged): one load
/// for the records most deltas take, instead of the shifts and masks.
const UNZIGZAG7: [i64; 128] = {
    let mut t = [0i64; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = unzigzag(b as u64);
        b += 1;
    }
    t
};

/// Per tag, whether its record's address is of the data stream (a load,
/// store or modify: kind code not 0) rather than the fetch stream: one
/// load (a `bool`, so indexing the two streams needs no bounds check)
/// where the test of the kind's bits and the flag it sets took three
/// instructions a record.
const DATA_STREAM: [bool; 256] = {
    let mut t = [false; 256];
    let mut tag = 0;
    while tag < 256 {
        t[tag] = tag & 3 != 0;
        tag += 1;
    }
    t
};

/// [`UNZIGZAG7`], [`COMMON_SIZE`] and [`DATA_STREAM`] in one static, for
/// [`decode_common`]: one base register serves the tables (with two, the
/// one-byte path worked out the second's address again every record).
#[repr(C)]
struct DecodeTables {
    unzigzag7: [i64; 128],
    common_size: [u8; 256],
    data_stream: [bool; 256],
}

static DECODE_TABLES: DecodeTables = DecodeTables {
    unzigzag7: UNZIGZAG7,
    common_size: COMMON_SIZE,
    data_stream: DATA_STREAM,
};

/// The value of a little-endian varint of at most eight bytes held in `x`
/// (its bytes in order from the lowest, the bytes after it zero): the
/// seven low bits of every byte, packed, in three shift-and-mask steps.
/// The first moves each pair's upper byte down one bit as a subtraction
/// (`b << 8` less `b << 7` is `b << 7`): one mask fewer.
#[inline(always)]
fn gather7(x: u64) -> u64 {
    let v = x & 0x7f7f_7f7f_7f7f_7f7f;
    let v = v - ((v & 0x7f00_7f00_7f00_7f00) >> 1);
    let v = (v & 0x0000_3fff_0000_3fff) | ((v & 0x3fff_0000_3fff_0000) >> 2);
    (v & 0x0fff_ffff) | ((v & 0x0fff_ffff_0000_0000) >> 4)
}

/// Decodes one record of any shape at `p[*i..]`, advancing `*i`, updating
/// `pid`. Returns the tag, size and raw delta.
#[inline(never)]
fn careful_record(p: &[u8], i: &mut usize, pid: &mut u32) -> Result<(u8, u32, u64), &'static str> {
    let Some(&tag) = p.get(*i) else {
        return Err("the payload ends before the record count is reached");
    };
    *i += 1;
    if tag & TAG_PID != 0 {
        let v = get_varint(p, i).ok_or("bad pid varint")?;
        *pid = u32::try_from(v).map_err(|_| "pid does not fit in 32 bits")?;
    }
    let inline = u32::from(tag >> TAG_SIZE_SHIFT);
    let size = if inline != 0 {
        inline
    } else {
        let v = get_varint(p, i).ok_or("bad size varint")?;
        match u32::try_from(v) {
            Ok(s @ 1..=MAX_ACCESS_BYTES) => s,
            _ => return Err("a record size outside 1..=4096 bytes (MAX_ACCESS_BYTES)"),
        }
    };
    let d = get_varint(p, i).ok_or("bad address varint")?;
    Ok((tag, size, d))
}

/// Decodes the next `n` records of the block from `p` at `c` into `out`
/// (replacing what it held).
/// When the block's last record is decoded, checks that the payload is used
/// up exactly. On failure, says what is wrong (and `out` holds partly
/// decoded records: the caller clears it).
///
/// `out` becomes `n` records long (the caller's previous batch, grown with
/// placeholder records only if shorter: no `memset` per batch), then each
/// record is written once in place: runs of the common shape by
/// [`decode_common`], each other record (a pid change, a large size, the
/// last bytes of the block) by one [`careful_record`]; both decode the same
/// bytes the same way.
///
/// Returns whether every record decoded has the same pid (only a careful
/// record can change it: one that does after the first record makes the
/// batch mixed).
#[inline]
fn decode(p: &[u8], c: &mut Cursor, n: u32, out: &mut Vec<Access>) -> Result<bool, &'static str> {
    // The caller's last batch is reused: its records are all written over,
    // so only a shorter vector is grown (with a fill).
    out.resize(
        n as usize,
        Access {
            va: 0,
            pid: 0,
            size: 0,
            kind: AccessKind::Instr,
        },
    );
    let dst = &mut out[..];
    let mut i = c.pos;
    let mut prev = c.prev;
    let mut pid = c.pid;
    let mut one_pid = true;
    let mut k = 0;
    while k < dst.len() {
        // The common records, one after the other.
        let (got, at) = decode_common(p, i, &mut prev, pid, &mut dst[k..]);
        k += got;
        i = at;
        if k == dst.len() {
            break;
        }
        // One record of another shape.
        let before = pid;
        let (tag, size, d) = careful_record(p, &mut i, &mut pid)?;
        one_pid &= k == 0 || pid == before;
        let [prev_instr, prev_data] = &mut prev;
        let va = next_address(tag, d, prev_data, prev_instr);
        dst[k] = Access {
            va,
            pid,
            size,
            kind: AccessKind::from_code(tag),
        };
        k += 1;
    }
    *c = Cursor {
        pos: i,
        remaining: c.remaining - n,
        prev,
        pid,
    };
    if c.remaining == 0 && i != p.len() {
        return Err("bytes left in the payload after the last record");
    }
    Ok(one_pid)
}

/// The hot loop of `.vmt` reading: decodes records of the common shape
/// (as `fast_record` reads them) from `p` at `i` into `dst`, for `pid`, until `dst` is
/// full or a record of another shape (or the end of the payload's last
/// [`FAST_WINDOW`] bytes) comes. Returns how many it wrote and where it
/// stopped. Its own function, so that the payload, the position, the two
/// address streams and the destination all stay in registers.
#[inline(never)]
fn decode_common(
    p: &[u8],
    mut i: usize,
    prev: &mut [u64; 2],
    pid: u32,
    dst: &mut [Access],
) -> (usize, usize) {
    // A record starting at or before `last` has its whole window in `p`:
    // one comparison a record, not a slice bounds check.
    let Some(last) = p.len().checked_sub(FAST_WINDOW) else {
        return (0, i);
    };
    let n = dst.len();
    let tables = &DECODE_TABLES;
    let mut slots = dst.iter_mut();
    // How many were written is worked out from the slots left when the
    // loop stops (no counter kept a record).
    let got = loop {
        let left = slots.len();
        let Some(slot) = slots.next() else {
            break n;
        };
        if i > last {
            break n - left;
        }
        let Some(w) = p[i..].first_chunk::<FAST_WINDOW>() else {
            break n - left;
        };
        let tag = w[0];
        let size = tables.common_size[usize::from(tag)];
        if size == 0 {
            break n - left;
        }
        let mut put = |delta: i64| {
            // The stream's last address in `prev`, indexed by the stream
            // (0 fetches, 1 data, from the tag's `DATA_STREAM`): a load, an
            // add and a store, where two registers and three selects took
            // more instructions (the add clobbered the flags the selects
            // needed, so they were set twice).
            let stream = usize::from(tables.data_stream[usize::from(tag)]);
            let va = prev[stream].wrapping_add(delta as u64);
            prev[stream] = va;
            *slot = Access {
                va,
                pid,
                size: u32::from(size),
                kind: AccessKind::from_code(tag),
            };
        };
        // Most deltas take one byte: that case on its own (its length a
        // constant), its delta read from a table.
        if w[1] < 0x80 {
            put(tables.unzigzag7[usize::from(w[1])]);
            i += 2;
            continue;
        }
        let Some((delta, len)) = multi_byte_delta(w) else {
            break n - left;
        };
        put(delta);
        i += len;
    };
    (got, i)
}

impl<R: Read> VmtReader<R> {
    /// Reads and checks the file header of `input`; `path` names it in errors.
    ///
    /// # Errors
    /// Truncated header, wrong magic, unsupported version or flags.
    pub fn new(mut input: R, path: impl Into<PathBuf>, zstd: bool) -> Result<Self, TraceError> {
        let path = path.into();
        let mut header = [0u8; FILE_HEADER_BYTES];
        match fill(&mut input, &mut header) {
            Ok(true) => {}
            Ok(false) => {
                return Err(TraceError::Truncated {
                    path,
                    what: "empty file, expected a .vmt header".to_owned(),
                });
            }
            Err(e) => return Err(TraceError::from_read(path, e, zstd)),
        }
        if header[..8] != MAGIC {
            return Err(TraceError::InvalidVmt {
                path,
                what: "wrong magic bytes".to_owned(),
            });
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        let flags = u16::from_le_bytes([header[10], header[11]]);
        if version != VERSION {
            return Err(TraceError::InvalidVmt {
                path,
                what: format!("version {version}, this build reads version {VERSION}"),
            });
        }
        if flags != 0 || header[12..] != [0; 4] {
            return Err(TraceError::InvalidVmt {
                path,
                what: "unknown flags set in the header".to_owned(),
            });
        }
        Ok(Self {
            input,
            path,
            zstd,
            payload: Vec::new(),
            cursor: Cursor::default(),
            block: 0,
            records: 0,
            allow_empty: false,
            done: false,
            batch_pid: None,
        })
    }

    /// Accept a trace without any record (by default it is [`TraceError::Empty`]).
    pub fn set_allow_empty(&mut self, allow: bool) {
        self.allow_empty = allow;
    }

    /// Records in the blocks read so far (all of the trace once it has ended).
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    fn invalid(&mut self, what: String) -> TraceError {
        self.done = true;
        TraceError::InvalidVmt {
            path: self.path.clone(),
            what,
        }
    }

    fn read_err(&mut self, e: io::Error, what: impl FnOnce() -> String) -> TraceError {
        self.done = true;
        if e.kind() == io::ErrorKind::UnexpectedEof {
            // Whether the zstd frame or the .vmt inside it was cut, the data ends here.
            return TraceError::Truncated {
                path: self.path.clone(),
                what: what(),
            };
        }
        TraceError::from_read(self.path.clone(), e, self.zstd)
    }
}

impl<R: Read> VmtReader<R> {
    /// Loads and verifies the next block into `payload` and resets the
    /// cursor. `Ok(false)` after a valid end block (the trace is over).
    fn load_block(&mut self) -> Result<bool, TraceError> {
        let block = self.block;
        let mut header = [0u8; BLOCK_HEADER_BYTES];
        match fill(&mut self.input, &mut header) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return Err(TraceError::Truncated {
                    path: self.path.clone(),
                    what: format!(
                        "the file ends after {} records without its end block",
                        self.records
                    ),
                });
            }
            Err(e) => {
                return Err(self.read_err(e, || {
                    format!("the file ends inside the header of block {block}")
                }));
            }
        }
        let word =
            |k: usize| u32::from_le_bytes([header[k], header[k + 1], header[k + 2], header[k + 3]]);
        let (count, len, stored) = (word(0), word(4), word(8));
        let end_block = count == 0;
        if end_block && len != END_PAYLOAD_BYTES {
            return Err(self.invalid(format!(
                "end block {block} has a {len}-byte payload, expected 8"
            )));
        }
        if count > MAX_BLOCK_RECORDS {
            return Err(self.invalid(format!(
                "block {block} claims {count} records, at most {MAX_BLOCK_RECORDS} allowed"
            )));
        }
        if !end_block && (len > MAX_BLOCK_PAYLOAD || len < count * MIN_RECORD_BYTES) {
            return Err(self.invalid(format!(
                "block {block} has {count} records in {len} bytes, which is impossible"
            )));
        }
        self.payload.resize(len as usize, 0);
        if let Err(e) = self.input.read_exact(&mut self.payload) {
            return Err(self.read_err(e, || {
                format!("the file ends inside block {block} ({len} payload bytes expected)")
            }));
        }
        let computed = block_crc(count, &self.payload);
        if computed != stored {
            self.done = true;
            return Err(TraceError::Checksum {
                path: self.path.clone(),
                block,
                stored,
                computed,
            });
        }
        self.block += 1;
        if end_block {
            let mut total = [0u8; 8];
            total.copy_from_slice(&self.payload);
            let total = u64::from_le_bytes(total);
            if total != self.records {
                return Err(self.invalid(format!(
                    "the end block says {total} records, the blocks hold {}",
                    self.records
                )));
            }
            let mut extra = [0u8; 1];
            return match fill(&mut self.input, &mut extra) {
                Ok(false) => {
                    self.done = true;
                    Ok(false)
                }
                Ok(true) => Err(self.invalid("data after the end block".to_owned())),
                Err(e) => Err(self.read_err(e, || {
                    "the stream is cut short after the end block".to_owned()
                })),
            };
        }
        self.records += u64::from(count);
        self.cursor = Cursor {
            remaining: count,
            ..Cursor::default()
        };
        Ok(true)
    }
}

impl<R: Read> TraceSource for VmtReader<R> {
    fn next_batch(&mut self, out: &mut Vec<Access>) -> Result<usize, TraceError> {
        self.batch_pid = None;
        if self.done {
            out.clear();
            return Ok(0);
        }
        if self.cursor.remaining == 0 && !self.load_block().inspect_err(|_| out.clear())? {
            out.clear();
            if self.records == 0 && !self.allow_empty {
                return Err(TraceError::Empty {
                    path: self.path.clone(),
                });
            }
            return Ok(0);
        }
        let n = self.cursor.remaining.min(BATCH as u32);
        match decode(&self.payload, &mut self.cursor, n, out) {
            Ok(one_pid) => {
                self.batch_pid = out.first().filter(|_| one_pid).map(|a| a.pid);
            }
            Err(what) => {
                out.clear();
                let block = self.block - 1;
                return Err(self.invalid(format!("block {block}: {what}")));
            }
        }
        Ok(out.len())
    }

    fn batch_pid(&self) -> Option<u32> {
        self.batch_pid
    }
}

/// The address of a record with `tag` and zigzagged delta `d`: data
/// references (a tag with a load/store/modify code) and instruction fetches
/// are delta-coded against separate streams; the stream's last address
/// advances to it.
#[inline(always)]
fn next_address(tag: u8, d: u64, prev_data: &mut u64, prev_instr: &mut u64) -> u64 {
    step_address(tag, unzigzag(d), prev_data, prev_instr)
}

/// [`next_address`] of the delta itself (unzigzagged).
#[inline(always)]
fn step_address(tag: u8, delta: i64, prev_data: &mut u64, prev_instr: &mut u64) -> u64 {
    // Selects, not branches: fetches and data references interleave with
    // no pattern a branch predictor learns (a branch here mispredicted
    // about one record in four).
    let data = tag & 3 != 0;
    let va = select_unpredictable(data, *prev_data, *prev_instr).wrapping_add(delta as u64);
    *prev_data = select_unpredictable(data, va, *prev_data);
    *prev_instr = select_unpredictable(data, *prev_instr, va);
    va
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_byte_delta_table_is_unzigzag() {
        for b in 0..128u64 {
            assert_eq!(UNZIGZAG7[b as usize], unzigzag(b));
        }
        // `decode_common` reads both tables from one static.
        assert_eq!(DECODE_TABLES.unzigzag7, UNZIGZAG7);
        assert_eq!(DECODE_TABLES.common_size, COMMON_SIZE);
        assert_eq!(DECODE_TABLES.data_stream, DATA_STREAM);
        for tag in 0..=255u8 {
            assert_eq!(
                DATA_STREAM[usize::from(tag)],
                AccessKind::from_code(tag) != AccessKind::Instr
            );
        }
    }

    /// A file of one block holding `count` records in `payload` (its
    /// checksum right), then an end block saying `count`.
    fn one_block_file(count: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&VERSION.to_le_bytes());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&count.to_le_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(&block_crc(count, payload).to_le_bytes());
        f.extend_from_slice(payload);
        let total = u64::from(count).to_le_bytes();
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&END_PAYLOAD_BYTES.to_le_bytes());
        f.extend_from_slice(&block_crc(0, &total).to_le_bytes());
        f.extend_from_slice(&total);
        f
    }

    /// A payload cut anywhere (inside a record's varint, between records)
    /// with a right checksum: the reader fails (or succeeds) exactly as
    /// `careful_record` alone says, at the payload's end too, where the
    /// fast path must stop and leave the last records (whole or cut) to
    /// the careful path.
    #[test]
    fn payload_cut_anywhere_fails_as_the_careful_path_says() {
        let mut payload = Vec::new();
        let mut records = 0u32;
        // Varints of every length the fast path reads (1 to 8 bytes) and
        // longer, both streams, common records only.
        for bits in [0u32, 7, 8, 14, 15, 21, 22, 28, 35, 42, 49, 56, 57, 63, 64] {
            for code in 0..2u8 {
                let d = if bits == 0 {
                    0
                } else {
                    u64::MAX >> (64 - bits)
                };
                payload.push(5 << TAG_SIZE_SHIFT | code);
                crate::vmt::format::put_varint(&mut payload, d);
                records += 1;
            }
        }
        for cut in 0..=payload.len() {
            let p = &payload[..cut];
            for count in [records, 1, 2, 7, 30] {
                // What the careful path says of the cut payload.
                let (mut i, mut pid) = (0, 0);
                let mut want = Ok(());
                for _ in 0..count {
                    if let Err(e) = careful_record(p, &mut i, &mut pid) {
                        want = Err(e);
                        break;
                    }
                }
                if want.is_ok() && i != p.len() {
                    want = Err("bytes left in the payload after the last record");
                }
                // (A block too short for its count is refused before.)
                let want = if count * MIN_RECORD_BYTES > cut as u32 {
                    Err("impossible".to_owned())
                } else {
                    want.map_err(|e| format!("block 0: {e}"))
                };
                let file = one_block_file(count, p);
                let got = VmtReader::new(file.as_slice(), "t.vmt", false)
                    .and_then(|mut r| r.collect_all())
                    .map(|v| assert_eq!(v.len(), count as usize));
                match (got, want) {
                    (Ok(()), Ok(())) => {}
                    (Err(TraceError::InvalidVmt { what, .. }), Err(e)) => {
                        assert!(
                            what == e || (e == "impossible" && what.ends_with("impossible")),
                            "cut {cut}, count {count}: {what} vs {e}"
                        );
                    }
                    (got, want) => panic!("cut {cut}, count {count}: {got:?} vs {want:?}"),
                }
            }
        }
    }

    proptest! {
        /// Wherever the fast path accepts a record, the careful path reads the
        /// same tag, size, delta and length from the same bytes.
        #[test]
        fn fast_record_agrees_with_careful_record(w in proptest::array::uniform9(any::<u8>())) {
            let (mut i, mut pid) = (0, 7);
            let careful = careful_record(&w, &mut i, &mut pid);
            if let Some((tag, delta, len)) = fast_record(&w) {
                let careful = careful.map(|(tag, size, d)| (tag, size, unzigzag(d)));
                prop_assert_eq!(careful, Ok((tag, u32::from(tag >> TAG_SIZE_SHIFT), delta)));
                prop_assert_eq!(i, len);
                prop_assert_eq!(pid, 7);
            } else {
                // The fast path leaves only other shapes to the careful one:
                // a pid, a size varint, an address varint over 8 bytes.
                prop_assert!(
                    COMMON_SIZE[usize::from(w[0])] == 0 || careful.is_err() || i > FAST_WINDOW,
                    "common record refused: {:?} -> {:?}", w, careful
                );
            }
        }

        /// Varints of every length from 1 to 8 bytes (values of every bit
        /// width up to 56), canonical or with redundant zero groups: the
        /// fast path reads what the careful path reads.
        #[test]
        fn fast_record_reads_varints_of_every_length(
            bits in 0u32..=56,
            raw in any::<u64>(),
            pad in 0usize..3,
            size in 1u8..32,
        ) {
            let d = if bits == 0 { 0 } else { raw >> (64 - bits) };
            let mut bytes = vec![size << TAG_SIZE_SHIFT];
            crate::vmt::format::put_varint(&mut bytes, d);
            // A redundant zero group makes the varint one byte longer (if it still fits).
            for _ in 0..pad {
                if bytes.len() < FAST_WINDOW {
                    let last = bytes.len() - 1;
                    bytes[last] |= 0x80;
                    bytes.push(0);
                }
            }
            let len = bytes.len();
            bytes.resize(FAST_WINDOW, 0xa5);
            let w = <[u8; FAST_WINDOW]>::try_from(bytes.as_slice()).expect("9 bytes");
            let (mut i, mut pid) = (0, 0);
            let careful = careful_record(&w, &mut i, &mut pid);
            prop_assert_eq!(careful, Ok((size << TAG_SIZE_SHIFT, u32::from(size), d)));
            prop_assert_eq!(fast_record(&w), Some((size << TAG_SIZE_SHIFT, unzigzag(d), len)));
        }

        /// The batch decoder (runs of common records by `decode_common`,
        /// the rest by `careful_record`) reads every record of a written
        /// trace as decoding each record with `careful_record` alone does:
        /// random pids (changes mid-batch), sizes in and out of the tag,
        /// deltas of every length, forward and back, both streams.
        #[test]
        fn batch_decoder_agrees_with_careful_records(
            recs in proptest::collection::vec(
                (0u8..4, 0u32..3, prop_oneof![4 => 1u32..32, 1 => 1u32..=MAX_ACCESS_BYTES],
                 prop_oneof![6 => -64i64..64, 3 => -70_000i64..70_000, 1 => -(1i64 << 41)..1 << 41, 1 => any::<i64>()]),
                1..6000,
            ),
        ) {
            let mut va = [0x40_0000u64, 0x7fff_0000];
            let accesses: Vec<Access> = recs
                .iter()
                .map(|&(code, pid, size, delta)| {
                    let s = usize::from(code != 0);
                    va[s] = va[s].wrapping_add(delta as u64);
                    Access { va: va[s], pid: 100 + pid, size, kind: AccessKind::from_code(code) }
                })
                .collect();
            let mut w = crate::vmt::VmtWriter::new(Vec::new()).expect("writer");
            w.push_all(&accesses).expect("push");
            let (bytes, _) = w.finish().expect("finish");
            // Reference: every record by `careful_record`.
            let mut want = Vec::new();
            let mut at = FILE_HEADER_BYTES;
            loop {
                let word = |k: usize| u32::from_le_bytes(bytes[at + k..at + k + 4].try_into().expect("4"));
                let (count, len) = (word(0), word(4) as usize);
                at += BLOCK_HEADER_BYTES;
                if count == 0 {
                    break;
                }
                let p = &bytes[at..at + len];
                let (mut i, mut pid, mut prev_instr, mut prev_data) = (0, 0, 0, 0);
                for _ in 0..count {
                    let (tag, size, d) = careful_record(p, &mut i, &mut pid).expect("valid");
                    let va = next_address(tag, d, &mut prev_data, &mut prev_instr);
                    want.push(Access { va, pid, size, kind: AccessKind::from_code(tag) });
                }
                prop_assert_eq!(i, len);
                at += len;
            }
            let mut r = VmtReader::new(bytes.as_slice(), "t.vmt", false).expect("header");
            let mut got = Vec::new();
            let mut batch = Vec::new();
            let mut claimed = 0;
            while r.next_batch(&mut batch).expect("batch") > 0 {
                // A batch said to hold one pid holds only that one.
                if let Some(pid) = r.batch_pid() {
                    prop_assert!(batch.iter().all(|a| a.pid == pid));
                    claimed += 1;
                }
                got.extend_from_slice(&batch);
            }
            prop_assert_eq!(r.batch_pid(), None);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&got, &accesses);
            // With one pid in the whole trace, every batch says so.
            if accesses.iter().all(|a| a.pid == accesses[0].pid) {
                prop_assert_eq!(claimed, accesses.len().div_ceil(BATCH));
            }
        }

        /// Varints of every length the fast path takes (1 to 8 bytes) decode exactly.
        #[test]
        fn fast_record_reads_every_short_varint(d in 0u64..(1 << 56), size in 1u8..32) {
            let mut bytes = vec![size << TAG_SIZE_SHIFT | 1];
            crate::vmt::format::put_varint(&mut bytes, d);
            let len = bytes.len();
            bytes.resize(FAST_WINDOW, 0xff);
            let w = <[u8; FAST_WINDOW]>::try_from(bytes.as_slice()).expect("9 bytes");
            prop_assert_eq!(fast_record(&w), Some((size << TAG_SIZE_SHIFT | 1, unzigzag(d), len)));
        }
    }
}
