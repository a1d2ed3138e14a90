//! The checkpoint file container: a magic, a version, then sections, each
//! with a header that carries its own CRC-32C and the CRC-32C of its payload,
//! ending with an `END ` section. Normative description: docs/checkpoint-format.md.
//!
//! ```text
//! file    = magic "VMSIMCKP" (8 bytes) | version u32 LE | section* | END section
//! section = tag [u8; 4] | flags u32 | stored u64 | raw u64 | payload_crc u32 | header_crc u32 | payload
//! ```
//!
//! `flags` bit 0: the payload is a zstd frame (`raw` is its decompressed
//! length). `header_crc` covers the 28 bytes before it. Every length is
//! checked against the load-size limit and against what is left of the
//! file before anything is allocated, so a corrupt length is an error, never
//! a huge allocation; a file cut anywhere (even exactly between two
//! sections) lacks its `END ` section and is refused.
//!
//! Owns framing, checksums, compression and limits; what the sections hold
//! is `checkpoint/image.rs`'s business.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::CheckpointError;

/// The first 8 bytes of every checkpoint file.
pub const MAGIC: [u8; 8] = *b"VMSIMCKP";
/// The container and payload version this build writes and reads. Any
/// change to a section's layout or to a serialized engine type bumps it.
pub const VERSION: u32 = 4;
/// Bytes of a section header.
pub const SECTION_HEADER: u64 = 32;
/// The default limit on one section's decompressed size: 64 GiB (a 16 TiB
/// memory is refused before anything is read; raise it with
/// `Reader::with_limit`).
pub const DEFAULT_LOAD_LIMIT: u64 = 64 << 30;

/// The largest HEAD section: 64 KiB (a written one is about a hundred
/// bytes). HEAD is decoded whole to list a directory, so a forged length
/// (a zstd payload claiming gigabytes) must not be able to fill memory.
pub const MAX_HEAD_BYTES: u64 = 64 << 10;

/// Section tags.
pub mod tag {
    /// What the checkpoint is: kind, sequence, chain links, reference count.
    pub const HEAD: [u8; 4] = *b"HEAD";
    /// The machine configuration, as TOML.
    pub const CONF: [u8; 4] = *b"CONF";
    /// The scenario and where each process stands in its input.
    pub const SCEN: [u8; 4] = *b"SCEN";
    /// The machine state (MMU, kernel, scheduler, counters), postcard.
    pub const MACH: [u8; 4] = *b"MACH";
    /// Physical memory chunks (page tables and page contents).
    pub const PAGE: [u8; 4] = *b"PAGE";
    /// Swap slots.
    pub const SWAP: [u8; 4] = *b"SWAP";
    /// The end marker.
    pub const END: [u8; 4] = *b"END ";
}

/// A section's payload is a zstd frame.
pub const FLAG_ZSTD: u32 = 1;

/// A tag as text for messages.
#[must_use]
pub fn tag_name(t: [u8; 4]) -> String {
    String::from_utf8_lossy(&t).trim_end().to_string()
}

/// A section header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// What it holds.
    pub tag: [u8; 4],
    /// [`FLAG_ZSTD`] or 0.
    pub flags: u32,
    /// Payload bytes in the file.
    pub stored: u64,
    /// Payload bytes once decompressed.
    pub raw: u64,
    /// CRC-32C of the stored payload.
    pub crc: u32,
    /// Offset of the header in the file.
    pub offset: u64,
}

impl SectionHeader {
    fn encode(&self) -> [u8; SECTION_HEADER as usize] {
        let mut b = [0u8; SECTION_HEADER as usize];
        b[0..4].copy_from_slice(&self.tag);
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..16].copy_from_slice(&self.stored.to_le_bytes());
        b[16..24].copy_from_slice(&self.raw.to_le_bytes());
        b[24..28].copy_from_slice(&self.crc.to_le_bytes());
        let hcrc = crc32c::crc32c(&b[..28]);
        b[28..32].copy_from_slice(&hcrc.to_le_bytes());
        b
    }
}

/// A `Write` that counts bytes and computes their CRC-32C.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
    crc: u32,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    /// Passed through (page data goes as many chunks per system call,
    /// without a copy into a buffer); the CRC covers what was written.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        let mut left = n;
        for b in bufs {
            if left == 0 {
                break;
            }
            let k = b.len().min(left);
            self.crc = crc32c::crc32c_append(self.crc, &b[..k]);
            left -= k;
        }
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A `Write` that only counts, for the raw length of a compressed section.
struct RawCount<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for RawCount<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes every byte of `bufs`, in order, with as few calls to `w` as it
/// allows (`Write::write_all_vectored` is not stable).
///
/// # Errors
/// The write fails, or `w` accepts nothing.
pub(crate) fn write_all_vectored(
    w: &mut (impl Write + ?Sized),
    mut bufs: &mut [io::IoSlice<'_>],
) -> io::Result<()> {
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills every byte of `bufs`, in order, with as few calls to `r` as it
/// allows.
///
/// # Errors
/// The read fails, or the input ends first (`UnexpectedEof`).
pub(crate) fn read_exact_vectored(
    r: &mut (impl Read + ?Sized),
    mut bufs: &mut [io::IoSliceMut<'_>],
) -> io::Result<()> {
    while !bufs.is_empty() {
        match r.read_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => io::IoSliceMut::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a checkpoint file section by section.
pub struct Writer<W: Write + Seek> {
    out: W,
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a file: the magic and the version.
    ///
    /// # Errors
    /// The write fails.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        Ok(Self { out })
    }

    /// Writes one section whose payload `fill` writes (streamed: the header
    /// is written first with zero lengths and patched afterwards).
    /// `zstd_level`: compress the payload at that level.
    ///
    /// # Errors
    /// The write fails, or `fill` fails.
    pub fn section(
        &mut self,
        tag: [u8; 4],
        zstd_level: Option<i32>,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<u64> {
        let offset = self.out.stream_position()?;
        self.out.write_all(&[0u8; SECTION_HEADER as usize])?;
        let mut counting = Counting {
            inner: &mut self.out,
            bytes: 0,
            crc: 0,
        };
        let (raw, flags) = match zstd_level {
            Some(level) => {
                let enc = zstd::Encoder::new(&mut counting, level)?;
                let mut rc = RawCount {
                    inner: enc,
                    bytes: 0,
                };
                fill(&mut rc)?;
                let raw = rc.bytes;
                rc.inner.finish()?;
                (raw, FLAG_ZSTD)
            }
            None => {
                fill(&mut counting)?;
                (counting.bytes, 0)
            }
        };
        let h = SectionHeader {
            tag,
            flags,
            stored: counting.bytes,
            raw,
            crc: counting.crc,
            offset,
        };
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(offset))?;
        self.out.write_all(&h.encode())?;
        self.out.seek(SeekFrom::Start(end))?;
        Ok(h.stored + SECTION_HEADER)
    }

    /// Writes the `END ` section and returns the output.
    ///
    /// # Errors
    /// The write fails.
    pub fn finish(mut self) -> io::Result<W> {
        self.section(tag::END, None, |_| Ok(()))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A `Read` over a section's stored payload that checks its length and CRC
/// at the end.
struct Payload<'a, R: Read> {
    inner: &'a mut R,
    left: u64,
    crc: u32,
}

impl<R: Read> Read for Payload<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside a section",
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }

    /// Passed through while the section has room for every buffer (page
    /// data is read into memory's chunks with one system call per batch);
    /// otherwise one buffer at a time, as `read`.
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if total == 0 || total > self.left {
            let Some(first) = bufs.iter_mut().find(|b| !b.is_empty()) else {
                return Ok(0);
            };
            return self.read(first);
        }
        let n = self.inner.read_vectored(bufs)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside a section",
            ));
        }
        let mut left = n;
        for b in bufs.iter() {
            if left == 0 {
                break;
            }
            let k = b.len().min(left);
            self.crc = crc32c::crc32c_append(self.crc, &b[..k]);
            left -= k;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads a checkpoint file section by section, checking everything.
pub struct Reader<R: Read + Seek> {
    inr: R,
    path: String,
    len: u64,
    limit: u64,
    ended: bool,
}

impl<R: Read + Seek> Reader<R> {
    /// Checks the magic and the version of `inr`, a file of `len` bytes
    /// named `path` in messages.
    ///
    /// # Errors
    /// Not a checkpoint, another version, or unreadable.
    pub fn new(mut inr: R, path: &str, len: u64) -> Result<Self, CheckpointError> {
        let err = |what: String| CheckpointError::file(path, what);
        let mut head = [0u8; 12];
        read_exact(&mut inr, &mut head).map_err(|source| CheckpointError::IoIn {
            file: path.to_string(),
            what: "cannot read the file header".into(),
            source,
        })?;
        if head[..8] != MAGIC {
            return Err(err(
                "not a vmsim checkpoint (the first 8 bytes are not \"VMSIMCKP\")".into(),
            ));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != VERSION {
            let which = if version < VERSION {
                "written by an older vmsim: run again to write it in this version"
            } else {
                "written by a newer vmsim"
            };
            return Err(err(format!(
                "checkpoint format version {version}, but this vmsim reads version {VERSION} only ({which})"
            )));
        }
        Ok(Self {
            inr,
            path: path.into(),
            len,
            limit: DEFAULT_LOAD_LIMIT,
            ended: false,
        })
    }

    /// Sets the largest decompressed section accepted.
    #[must_use]
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// The file's name in messages.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, what: impl Into<String>) -> CheckpointError {
        CheckpointError::file(&self.path, what.into())
    }

    /// An I/O error of this file while doing `what`.
    fn io_err(&self, what: String, source: io::Error) -> CheckpointError {
        CheckpointError::IoIn {
            file: self.path.clone(),
            what,
            source,
        }
    }

    /// The next section's header; `None` after the `END ` section (and
    /// nothing may follow it).
    ///
    /// # Errors
    /// A truncated or corrupt header, a length past the end of the file or
    /// above the limit, unknown flags, or bytes after `END `.
    pub fn next(&mut self) -> Result<Option<SectionHeader>, CheckpointError> {
        if self.ended {
            return Ok(None);
        }
        let offset = self
            .inr
            .stream_position()
            .map_err(|e| self.io_err("cannot read".into(), e))?;
        let mut b = [0u8; SECTION_HEADER as usize];
        match read_exact(&mut self.inr, &mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(self.err(format!(
                    "truncated at byte {offset}: the file ends before its END section"
                )));
            }
            Err(e) => return Err(self.err(format!("cannot read: {e}"))),
        }
        let hcrc = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
        if crc32c::crc32c(&b[..28]) != hcrc {
            return Err(self.err(format!(
                "corrupt section header at byte {offset} (CRC-32C mismatch)"
            )));
        }
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let h = SectionHeader {
            tag: [b[0], b[1], b[2], b[3]],
            flags: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            stored: u64_at(8),
            raw: u64_at(16),
            crc: u32::from_le_bytes([b[24], b[25], b[26], b[27]]),
            offset,
        };
        let name = tag_name(h.tag);
        if h.flags & !FLAG_ZSTD != 0 {
            return Err(self.err(format!("section {name}: unknown flags {:#x}", h.flags)));
        }
        let left = self.len.saturating_sub(offset + SECTION_HEADER);
        if h.stored > left {
            return Err(self.err(format!(
                "truncated: section {name} declares {} bytes but {left} remain",
                h.stored
            )));
        }
        // Sections read whole as text or a small header have limits of
        // their own, far below the one for memory and machine state.
        let limit = match h.tag {
            tag::HEAD => MAX_HEAD_BYTES,
            tag::CONF => vmsim_trace::limits::MAX_TOML_BYTES,
            _ => u64::MAX,
        }
        .min(self.limit);
        if h.raw > limit || h.stored > limit {
            return Err(self.err(format!(
                "section {name} holds {} bytes, above the load limit of {limit}",
                h.raw.max(h.stored),
            )));
        }
        if h.flags & FLAG_ZSTD == 0 && h.raw != h.stored {
            return Err(self.err(format!(
                "section {name}: an uncompressed payload of {} bytes claims {}",
                h.stored, h.raw
            )));
        }
        if h.tag == tag::END {
            if h.stored != 0 {
                return Err(self.err("the END section has a payload"));
            }
            if offset + SECTION_HEADER != self.len {
                return Err(self.err(format!(
                    "{} bytes follow the END section",
                    self.len - offset - SECTION_HEADER
                )));
            }
            self.ended = true;
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Reads a whole section payload into memory, decompressed and checked.
    ///
    /// # Errors
    /// CRC mismatch, truncation, or a payload that does not decompress to
    /// its declared length.
    pub fn payload(&mut self, h: &SectionHeader) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::with_capacity(h.raw.min(1 << 30) as usize);
        self.stream(h, |r| {
            r.take(h.raw.saturating_add(1)).read_to_end(&mut out)?;
            Ok(())
        })?;
        if out.len() as u64 != h.raw {
            return Err(self.err(format!(
                "section {}: {} bytes once decompressed, {} declared",
                tag_name(h.tag),
                out.len(),
                h.raw
            )));
        }
        Ok(out)
    }

    /// Skips a section's payload (its CRC is still checked).
    ///
    /// # Errors
    /// As for [`Reader::payload`].
    pub fn skip(&mut self, h: &SectionHeader) -> Result<(), CheckpointError> {
        let stored = h.stored;
        let mut p = Payload {
            inner: &mut self.inr,
            left: stored,
            crc: 0,
        };
        let copied = io::copy(&mut p, &mut io::sink());
        let crc = p.crc;
        let name = tag_name(h.tag);
        match copied {
            Ok(_) if crc == h.crc => Ok(()),
            Ok(_) => Err(self.err(format!("section {name}: payload CRC-32C mismatch"))),
            Err(e) => Err(self.err(format!("section {name}: {e}"))),
        }
    }

    /// Moves past a section's payload without reading it (its CRC is not
    /// checked): for `checkpoint ls`, which walks a file's section table
    /// and must not read gigabytes of page data to list it.
    ///
    /// # Errors
    /// The file cannot be sought.
    pub(crate) fn pass(&mut self, h: &SectionHeader) -> Result<(), CheckpointError> {
        let end = h.offset + SECTION_HEADER + h.stored;
        self.inr
            .seek(SeekFrom::Start(end))
            .map(|_| ())
            .map_err(|e| self.io_err(format!("section {}", tag_name(h.tag)), e))
    }

    /// The first `n` bytes of a section's payload, decompressed, then past
    /// the payload (its CRC is not checked: see [`Reader::pass`]). A
    /// payload shorter than `n` bytes is an error.
    ///
    /// # Errors
    /// The payload is shorter, does not decompress, or cannot be read.
    pub(crate) fn peek(&mut self, h: &SectionHeader, n: usize) -> Result<Vec<u8>, CheckpointError> {
        let name = tag_name(h.tag);
        let mut out = vec![0u8; n];
        let read = {
            let body = (&mut self.inr).take(h.stored);
            if h.flags & FLAG_ZSTD != 0 {
                zstd::Decoder::new(body).and_then(|mut d| d.read_exact(&mut out))
            } else {
                let mut body = body;
                body.read_exact(&mut out)
            }
        };
        read.map_err(|e| self.err(format!("section {name}: its first {n} bytes: {e}")))?;
        self.pass(h)?;
        Ok(out)
    }

    /// Streams a section's payload (decompressed) through `f`, then checks
    /// the CRC of the stored bytes. `f` must read the payload to its end
    /// (whatever it leaves is read and checked here). A corrupt payload may
    /// already have been seen by `f`: callers build into something they
    /// drop on error.
    ///
    /// # Errors
    /// `f`'s error (as a corrupt section), or a CRC mismatch.
    pub fn stream(
        &mut self,
        h: &SectionHeader,
        f: impl FnOnce(&mut dyn Read) -> io::Result<()>,
    ) -> Result<(), CheckpointError> {
        let name = tag_name(h.tag);
        let mut p = Payload {
            inner: &mut self.inr,
            left: h.stored,
            crc: 0,
        };
        let r = if h.flags & FLAG_ZSTD != 0 {
            match zstd::Decoder::new(&mut p) {
                Ok(mut dec) => {
                    let r = f(&mut dec);
                    r.and_then(|()| {
                        // Anything the consumer left must still decompress cleanly.
                        io::copy(&mut dec, &mut io::sink()).map(|_| ())
                    })
                }
                Err(e) => Err(e),
            }
        } else {
            f(&mut p)
        };
        // Read what is left of the stored payload so the CRC covers all of it.
        let rest = io::copy(&mut p, &mut io::sink());
        let crc = p.crc;
        if crc != h.crc {
            return Err(self.err(format!("section {name}: payload CRC-32C mismatch")));
        }
        r.map_err(|e| self.io_err(format!("section {name}"), e))?;
        rest.map_err(|e| self.io_err(format!("section {name}"), e))?;
        Ok(())
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Cursor::new(Vec::new())).expect("start");
        w.section(tag::HEAD, None, |o| o.write_all(b"hello"))
            .expect("head");
        w.section(tag::PAGE, Some(1), |o| o.write_all(&[7u8; 100_000]))
            .expect("page");
        w.finish().expect("end").into_inner()
    }

    type Sections = Vec<([u8; 4], Vec<u8>)>;

    fn read_all(bytes: &[u8]) -> Result<Sections, CheckpointError> {
        let mut r = Reader::new(Cursor::new(bytes), "t.vmck", bytes.len() as u64)?;
        let mut out = Vec::new();
        while let Some(h) = r.next()? {
            out.push((h.tag, r.payload(&h)?));
        }
        Ok(out)
    }

    #[test]
    fn sections_round_trip_and_compress() {
        let bytes = sample();
        assert!(bytes.len() < 2000, "100 KB of one byte compresses");
        let s = read_all(&bytes).expect("read");
        assert_eq!(s[0], (tag::HEAD, b"hello".to_vec()));
        assert_eq!(s[1].1.len(), 100_000);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let e = read_all(&bytes[..cut]).expect_err("a cut file is refused");
            assert!(e.to_string().starts_with("t.vmck: "), "{e}");
        }
        for i in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    read_all(&b).is_err(),
                    "flip of bit {bit} of byte {i} passed"
                );
            }
        }
        let mut other = bytes.clone();
        other[8] = (VERSION + 1) as u8;
        let e = read_all(&other).expect_err("other version");
        assert!(
            e.to_string().contains(&format!("version {}", VERSION + 1)),
            "{e}"
        );
    }

    /// Firecracker's load-size limit: a section larger than the limit is
    /// refused from its header, before its payload is read or decompressed.
    #[test]
    fn sections_above_the_load_limit_are_refused_before_reading() {
        let bytes = sample();
        let mut r = Reader::new(Cursor::new(&bytes[..]), "t.vmck", bytes.len() as u64)
            .expect("header")
            .with_limit(50_000);
        let head = r.next().expect("HEAD").expect("a section");
        r.payload(&head).expect("HEAD is small");
        let e = r.next().expect_err("PAGE decompresses to 100000 bytes");
        assert!(
            e.to_string()
                .contains("section PAGE holds 100000 bytes, above the load limit of 50000"),
            "{e}"
        );
        // A HEAD (or CONF) that is small on disk but claims more than its
        // own limit once decompressed: refused under the default limit too.
        for (t, limit) in [
            (tag::HEAD, MAX_HEAD_BYTES),
            (tag::CONF, vmsim_trace::limits::MAX_TOML_BYTES),
        ] {
            let mut w = Writer::new(Cursor::new(Vec::new())).expect("start");
            let big = vec![0u8; usize::try_from(limit).expect("fits") + 1];
            w.section(t, Some(3), |o| o.write_all(&big))
                .expect("section");
            let bytes = w.finish().expect("end").into_inner();
            assert!(bytes.len() < 1000, "compressed: {}", bytes.len());
            let e = read_all(&bytes).expect_err("too big once decompressed");
            assert!(
                e.to_string().contains(&format!(
                    "section {} holds {} bytes, above the load limit of {limit}",
                    tag_name(t),
                    limit + 1
                )),
                "{e}"
            );
        }
    }
}
