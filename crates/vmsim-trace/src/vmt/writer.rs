//! Streaming `.vmt` encoder: accesses in, blocks out, one block buffered.
//!
//! Owns encoding only; choosing the file and renaming it into place is
//! [`crate::vmt::convert`]'s job.

use std::io::{self, Write};

use crate::access::{Access, AccessKind, MAX_ACCESS_BYTES};
use crate::vmt::format::{
    FILE_HEADER_BYTES, MAGIC, MAX_BLOCK_RECORDS, TAG_MAX_INLINE_SIZE, TAG_PID, TAG_SIZE_SHIFT,
    VERSION, block_crc, put_varint, zigzag,
};

/// Writes accesses as `.vmt` to `W`. Call [`VmtWriter::finish`] at the end:
/// without its end block the file reads as truncated.
#[derive(Debug)]
pub struct VmtWriter<W: Write> {
    out: W,
    payload: Vec<u8>,
    count: u32,
    total: u64,
    /// Last address of the instruction stream (0) and the data stream (1).
    prev: [u64; 2],
    pid: u32,
}

impl<W: Write> VmtWriter<W> {
    /// Writes the file header to `out` and returns a writer for the records.
    ///
    /// # Errors
    /// Writing the header fails.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; FILE_HEADER_BYTES];
        header[..8].copy_from_slice(&MAGIC);
        header[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self {
            out,
            payload: Vec::with_capacity(MAX_BLOCK_RECORDS as usize * 4),
            count: 0,
            total: 0,
            prev: [0; 2],
            pid: 0,
        })
    }

    /// Appends one access.
    ///
    /// # Errors
    /// Writing a full block fails, or the access's size is outside
    /// 1..=[`MAX_ACCESS_BYTES`] (a reader would refuse the record).
    #[inline]
    pub fn push(&mut self, a: &Access) -> io::Result<()> {
        if !(1..=MAX_ACCESS_BYTES).contains(&a.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "an access of {} bytes: .vmt records hold 1 to {MAX_ACCESS_BYTES}",
                    a.size
                ),
            ));
        }
        let stream = usize::from(a.kind != AccessKind::Instr);
        let mut tag = a.kind.code();
        let pid_changed = a.pid != self.pid;
        if pid_changed {
            tag |= TAG_PID;
        }
        let inline_size = (1..=TAG_MAX_INLINE_SIZE).contains(&a.size);
        if inline_size {
            tag |= (a.size as u8) << TAG_SIZE_SHIFT;
        }
        self.payload.push(tag);
        if pid_changed {
            put_varint(&mut self.payload, u64::from(a.pid));
            self.pid = a.pid;
        }
        if !inline_size {
            put_varint(&mut self.payload, u64::from(a.size));
        }
        let delta = a.va.wrapping_sub(self.prev[stream]) as i64;
        put_varint(&mut self.payload, zigzag(delta));
        self.prev[stream] = a.va;
        self.count += 1;
        if self.count == MAX_BLOCK_RECORDS {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Appends every access in `batch`.
    ///
    /// # Errors
    /// As for [`VmtWriter::push`].
    pub fn push_all(&mut self, batch: &[Access]) -> io::Result<()> {
        batch.iter().try_for_each(|a| self.push(a))
    }

    /// Records written so far.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.total + u64::from(self.count)
    }

    fn write_block(&mut self, count: u32) -> io::Result<()> {
        let len = u32::try_from(self.payload.len()).map_err(io::Error::other)?;
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(&count.to_le_bytes());
        header[4..8].copy_from_slice(&len.to_le_bytes());
        header[8..].copy_from_slice(&block_crc(count, &self.payload).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&self.payload)?;
        self.payload.clear();
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.write_block(self.count)?;
        self.total += u64::from(self.count);
        self.count = 0;
        self.prev = [0; 2];
        self.pid = 0;
        Ok(())
    }

    /// Writes the last data block and the end block, flushes, and returns the
    /// output and the number of records written.
    ///
    /// # Errors
    /// Writing or flushing fails.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_block()?;
        self.payload.extend_from_slice(&self.total.to_le_bytes());
        self.write_block(0)?;
        self.out.flush()?;
        Ok((self.out, self.total))
    }
}
