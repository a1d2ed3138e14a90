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
