//! The buffered output a checkpoint file is written through: small writes
//! (headers, indices, the machine state) gather in a buffer; a large
//! vectored write (page data, 256 chunks at a time) goes straight to the
//! file as one `writev`, the buffer flushed first.
//!
//! `std::io::BufWriter` does this only for writers that declare themselves
//! vectored (`Write::is_write_vectored`, which a writer outside the
//! standard library cannot override on stable Rust), so over the engine's
//! temporary output it copied every byte of page data into its buffer
//! before writing it: a needless pass over a 1 GiB image.

use std::io::{self, IoSlice, Seek, SeekFrom, Write};

/// A write buffer that lets large vectored writes through.
#[derive(Debug)]
pub(crate) struct BufOut<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> BufOut<W> {
    /// Buffers up to `capacity` bytes of small writes for `inner`.
    pub fn with_capacity(capacity: usize, inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(capacity),
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// The writer, every buffered byte written to it.
    ///
    /// # Errors
    /// Writing the buffered bytes fails.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_buf()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for BufOut<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.buf.capacity() {
            self.flush_buf()?;
        }
        if data.len() >= self.buf.capacity() {
            return self.inner.write(data);
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total = bufs.iter().fold(0usize, |a, b| a.saturating_add(b.len()));
        if self.buf.len().saturating_add(total) > self.buf.capacity() {
            self.flush_buf()?;
        }
        if total >= self.buf.capacity() {
            return self.inner.write_vectored(bufs);
        }
        for b in bufs {
            self.buf.extend_from_slice(b);
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

impl<W: Write + Seek> Seek for BufOut<W> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.flush_buf()?;
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records each call it gets.
    #[derive(Default)]
    struct Calls {
        data: Vec<u8>,
        calls: Vec<(&'static str, usize)>,
    }

    impl Write for Calls {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.calls.push(("write", b.len()));
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let n = bufs.iter().map(|b| b.len()).sum();
            self.calls.push(("writev", n));
            for b in bufs {
                self.data.extend_from_slice(b);
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Calls {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.calls.push(("seek", 0));
            match pos {
                SeekFrom::Start(p) => Ok(p),
                _ => Ok(self.data.len() as u64),
            }
        }
    }

    #[test]
    fn small_writes_gather_and_large_vectored_writes_pass_through() {
        let mut o = BufOut::with_capacity(64, Calls::default());
        o.write_all(b"head").expect("write");
        o.write_all(&[1; 10]).expect("write");
        assert!(o.inner.calls.is_empty(), "buffered");
        let big = [7u8; 50];
        let n = o
            .write_vectored(&[IoSlice::new(&big), IoSlice::new(&big)])
            .expect("writev");
        assert_eq!(n, 100);
        assert_eq!(o.inner.calls, [("write", 14), ("writev", 100)]);
        let n = o
            .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])
            .expect("writev");
        assert_eq!(n, 4, "small vectored writes are buffered whole");
        o.seek(SeekFrom::Start(0)).expect("seek");
        o.write_all(&[9; 70]).expect("write");
        let inner = o.into_inner().expect("into_inner");
        assert_eq!(
            inner.calls,
            [
                ("write", 14),
                ("writev", 100),
                ("write", 4),
                ("seek", 0),
                ("write", 70)
            ]
        );
        let mut want = b"head".to_vec();
        want.extend_from_slice(&[1; 10]);
        want.extend_from_slice(&[7; 100]);
        want.extend_from_slice(b"abcd");
        want.extend_from_slice(&[9; 70]);
        assert_eq!(inner.data, want);
    }
}
