//! vmsim's compact binary trace format, `.vmt` (specified in `docs/vmt-format.md`).
//!
//! Owns the format: its layout ([`format`](mod@format)), the streaming [`VmtWriter`] and
//! [`VmtReader`], and [`convert`], which writes any source to a `.vmt` file
//! through a temporary file renamed into place, so a failed conversion never
//! leaves a half-written output.

pub mod format;
mod reader;
mod writer;

use std::io::BufWriter;
use std::path::Path;

pub use reader::VmtReader;
pub use writer::VmtWriter;

use crate::access::Access;
use crate::error::TraceError;
use crate::source::{BATCH, TraceSource};

/// Streams every access of `source` into a new `.vmt` file at `out` and
/// returns the number of records. The data goes to a temporary file in the
/// same directory, renamed over `out` only when everything succeeded.
///
/// # Errors
/// Reading the source fails, or the output cannot be written.
pub fn convert<S: TraceSource>(source: &mut S, out: &Path) -> Result<u64, TraceError> {
    let write_err = |source| TraceError::Write {
        path: out.to_path_buf(),
        source,
    };
    let tmp = crate::output::temp_next_to(out).map_err(write_err)?;
    let mut writer =
        VmtWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file())).map_err(write_err)?;
    let mut batch: Vec<Access> = Vec::with_capacity(BATCH);
    while source.next_batch(&mut batch)? > 0 {
        writer.push_all(&batch).map_err(write_err)?;
    }
    let (buffered, records) = writer.finish().map_err(write_err)?;
    drop(buffered);
    crate::output::commit(tmp, out).map_err(write_err)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessKind;

    fn encode(records: &[Access]) -> Vec<u8> {
        let mut w = VmtWriter::new(Vec::new()).expect("vec");
        w.push_all(records).expect("vec");
        w.finish().expect("vec").0
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Access>, TraceError> {
        VmtReader::new(bytes, "t.vmt", false)?.collect_all()
    }

    fn sample(n: u64) -> Vec<Access> {
        (0..n)
            .map(|i| Access {
                va: 0x40_0000 + i * 5 + (i % 3) * 0x1f_0000_0000,
                pid: (i / 70_000) as u32,
                size: 1 + (i % 40) as u32,
                kind: AccessKind::from_code(i as u8),
            })
            .collect()
    }

    /// The worked example of `docs/vmt-format.md`, byte for byte.
    #[test]
    fn spec_example_bytes() {
        let recs = [
            Access {
                va: 0x40_1000,
                pid: 1,
                size: 3,
                kind: AccessKind::Instr,
            },
            Access {
                va: 0x1f_ff00_0768,
                pid: 1,
                size: 8,
                kind: AccessKind::Load,
            },
        ];
        let bytes = encode(&recs);
        let payload = [
            0x1c, 0x01, 0x80, 0xc0, 0x80, 0x04, 0x41, 0xd0, 0x9d, 0x80, 0xf0, 0xff, 0x07,
        ];
        let mut want = vec![
            0x89, 0x56, 0x4d, 0x54, 0x0d, 0x0a, 0x1a, 0x0a, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        want.extend_from_slice(&[2, 0, 0, 0, 13, 0, 0, 0]);
        want.extend_from_slice(&format::block_crc(2, &payload).to_le_bytes());
        want.extend_from_slice(&payload);
        want.extend_from_slice(&[0, 0, 0, 0, 8, 0, 0, 0]);
        want.extend_from_slice(&format::block_crc(0, &2u64.to_le_bytes()).to_le_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(bytes, want);
        assert_eq!(encode(&[]).len(), 36);
    }

    #[test]
    fn round_trip_across_blocks() {
        let v = sample(150_000);
        assert_eq!(decode(&encode(&v)).expect("valid"), v);
        // An empty trace is refused unless allowed.
        let empty = encode(&[]);
        assert!(matches!(decode(&empty), Err(TraceError::Empty { .. })));
        let mut r = VmtReader::new(&empty[..], "t.vmt", false).expect("header");
        r.set_allow_empty(true);
        assert_eq!(r.collect_all().expect("allowed"), vec![]);
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let bytes = encode(&sample(300));
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]) {
                Err(TraceError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn flipped_payload_bit_is_a_checksum_error() {
        let mut bytes = encode(&sample(300));
        bytes[40] ^= 0x10;
        assert!(matches!(
            decode(&bytes),
            Err(TraceError::Checksum { block: 0, .. })
        ));
    }

    #[test]
    fn bad_header_and_trailing_data_are_invalid() {
        let mut bytes = encode(&sample(10));
        bytes[8] = 2;
        assert!(matches!(decode(&bytes), Err(TraceError::InvalidVmt { .. })));
        let mut bytes = encode(&sample(10));
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(TraceError::InvalidVmt { .. })));
    }
}

/// The record count an uncompressed `.vmt` file states in its end block
/// (its last 20 bytes), read without reading the records: how a progress
/// bar knows a run's length in advance. `None` when the file is not a
/// plain `.vmt` (zstd-compressed, another format, standard input) or its
/// end block is not intact (the reader will say what is wrong when it gets
/// there; this is only a hint).
#[must_use]
pub fn record_count(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let end_bytes = format::BLOCK_HEADER_BYTES as u64 + u64::from(format::END_PAYLOAD_BYTES);
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if !f.metadata().ok()?.is_file() || len < format::FILE_HEADER_BYTES as u64 + end_bytes {
        return None;
    }
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).ok()?;
    if magic != format::MAGIC {
        return None;
    }
    let mut end = [0u8; 20];
    f.seek(SeekFrom::Start(len - end_bytes)).ok()?;
    f.read_exact(&mut end).ok()?;
    let word = |i: usize| u32::from_le_bytes([end[i], end[i + 1], end[i + 2], end[i + 3]]);
    let payload = &end[12..];
    (word(0) == 0
        && word(4) == format::END_PAYLOAD_BYTES
        && word(8) == format::block_crc(0, payload))
    .then(|| u64::from_le_bytes(payload.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod record_count_tests {
    use super::*;

    #[test]
    fn the_end_block_gives_the_count_and_anything_else_gives_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.vmt");
        let mut src = crate::open("synth:loop,pages=10,repeats=7").expect("synth");
        let n = convert(&mut src, &p).expect("convert");
        assert_eq!(n, 70);
        assert_eq!(record_count(&p), Some(70));
        // A damaged end block, a compressed copy, text: no hint.
        let mut bytes = std::fs::read(&p).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let bad = dir.path().join("bad.vmt");
        std::fs::write(&bad, &bytes).expect("write");
        assert_eq!(record_count(&bad), None);
        let z = dir.path().join("t.vmt.zst");
        let plain = std::fs::read(&p).expect("read");
        std::fs::write(&z, zstd::encode_all(plain.as_slice(), 3).expect("zstd")).expect("write");
        assert_eq!(record_count(&z), None);
        let text = dir.path().join("t.lackey");
        std::fs::write(&text, "I  00401000,3\n".repeat(10)).expect("write");
        assert_eq!(record_count(&text), None);
        assert_eq!(record_count(&dir.path().join("missing.vmt")), None);
    }
}
