//! vmsim's compact binary trace format, `.vmt` (specified in `docs/vmt-format.md`).
//!
//! Owns the format: its layout ([`format`]), the streaming [`VmtWriter`] and
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
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".vmsim-")
        .suffix(".vmt.tmp")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let mut writer =
        VmtWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file())).map_err(write_err)?;
    let mut batch: Vec<Access> = Vec::with_capacity(BATCH);
    while source.next_batch(&mut batch)? > 0 {
        writer.push_all(&batch).map_err(write_err)?;
    }
    let (buffered, records) = writer.finish().map_err(write_err)?;
    drop(buffered);
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(out).map_err(|e| write_err(e.error))?;
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
        let mut r = VmtReader::new(bytes, "t.vmt", false)?;
        let mut all = Vec::new();
        let mut b = Vec::new();
        while r.next_batch(&mut b)? > 0 {
            all.extend_from_slice(&b);
        }
        Ok(all)
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

    #[test]
    fn round_trip_across_blocks() {
        let v = sample(150_000);
        assert_eq!(decode(&encode(&v)).expect("valid"), v);
        assert_eq!(decode(&encode(&[])).expect("valid"), vec![]);
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
