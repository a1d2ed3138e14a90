//! Opening a trace file (or standard input, `-`) as a stream of bytes:
//! plain, or zstd-compressed with decompression overlapped on a second thread.
//!
//! Owns format detection by content (never by file name: magic bytes, then
//! the first meaningful line of text) and the decompression pipeline. It
//! reads ahead only into memory and puts the sniffed bytes back, so a pipe
//! is detected as well as a file. It does not parse records; the lackey,
//! `.vmt` and page-number readers consume the [`Input`] it returns.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use crate::error::TraceError;
use crate::vmt::format::MAGIC as VMT_MAGIC;

/// The first four bytes of a zstd frame (0xFD2FB528, little-endian).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Bytes per buffer passed from the decompression thread to the parser.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight between the decompression thread and the parser.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The buffer of an uncompressed input ([`Input::Plain`]). Small on
/// purpose: a read at least this long finds the buffer empty after its
/// first part and goes to the file straight into the reader's own buffer.
/// A `.vmt` block's payload (about 170 KiB) is read whole into the block
/// buffer; with the buffer as large as [`CHUNK`] every byte of the file was
/// first read into it and then copied out (2.6 instructions a reference on
/// `lsR_linux.vmt`, as `memcpy`); now at most this many bytes a block are.
/// The lackey parser's refills go straight to the file the same way.
const PLAIN_BUFFER: usize = 16 * 1024;

/// The trace argument that means standard input.
pub const STDIN: &str = "-";

/// How standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Decoded bytes looked at to tell lackey text from a page-number file.
const SNIFF: usize = 4096;

/// What the decoded bytes of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// valgrind lackey `--trace-mem=yes` text.
    Lackey,
    /// vmsim's binary `.vmt` format.
    Vmt,
    /// Page numbers as text, the policy lab's reference strings (see
    /// [`crate::pagenum`]): the first line that is not blank or a `#`
    /// comment starts, after blanks, with a decimal digit (a lackey line
    /// starts with `I`, a space then `L`/`S`/`M`, or `==`).
    PageNumbers,
}

/// Bytes taken from trace files so far, shared by the readers that add to
/// it (the parser's thread, or the zstd helper thread) and whoever shows
/// progress: the compressed bytes consumed over the files' sizes is how far
/// a run is through traces whose record count is not known in advance.
/// One relaxed add per read of the file (up to 256 KiB), nothing per record.
#[derive(Debug, Clone, Default)]
pub struct ReadMeter(Arc<AtomicU64>);

impl ReadMeter {
    /// A meter at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes read from the files so far (read ahead of the parser by at
    /// most a few buffers).
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The undecoded bytes: a file or standard input, with the bytes read to
/// sniff the compression put back in front.
#[derive(Debug)]
pub struct Raw {
    head: Vec<u8>,
    pos: usize,
    inner: RawKind,
    /// Counts the bytes read from a file (never standard input's).
    meter: Option<ReadMeter>,
}

#[derive(Debug)]
enum RawKind {
    File(File),
    Stdin(io::Stdin),
}

impl Read for Raw {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = out.len().min(self.head.len() - self.pos);
            out[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        match &mut self.inner {
            RawKind::File(f) => {
                let n = f.read(out)?;
                if let Some(m) = &self.meter {
                    m.add(n);
                }
                Ok(n)
            }
            RawKind::Stdin(s) => s.read(out),
        }
    }
}

/// A zstd stream decompressed on a helper thread into recycled fixed-size
/// buffers, passed through a bounded channel: parsing on one core overlaps
/// decompression on the other, and memory stays at `CHUNKS_IN_FLIGHT` buffers
/// however long the trace.
#[derive(Debug)]
pub struct ZstdPipe {
    full: Option<Receiver<io::Result<Vec<u8>>>>,
    empty: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    worker: Option<JoinHandle<()>>,
}

impl ZstdPipe {
    /// Starts decompressing `file` (positioned at the start of a zstd frame) on a new thread.
    fn spawn(file: Raw) -> io::Result<Self> {
        Self::spawn_decoder(zstd::stream::read::Decoder::new(file)?)
    }

    /// Moves `decoder` (a zstd decoder, possibly part-way through) to a new
    /// thread that decompresses the rest.
    fn spawn_decoder<R: Read + Send + 'static>(decoder: R) -> io::Result<Self> {
        let (full_tx, full_rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let (empty_tx, empty_rx) = channel::<Vec<u8>>();
        for _ in 0..CHUNKS_IN_FLIGHT {
            // The receiver is alive (held below), so this cannot fail.
            let _ = empty_tx.send(Vec::with_capacity(CHUNK));
        }
        let worker = std::thread::Builder::new()
            .name("vmsim-zstd".to_owned())
            .spawn(move || decompress_worker(decoder, &full_tx, &empty_rx))?;
        Ok(Self {
            full: Some(full_rx),
            empty: Some(empty_tx),
            current: Vec::new(),
            pos: 0,
            done: false,
            worker: Some(worker),
        })
    }
}

/// The helper thread: fill a recycled buffer, send it, repeat until end of
/// stream or error (sent as the last message), or until the reader goes away.
fn decompress_worker<R: Read>(
    mut decoder: R,
    full: &SyncSender<io::Result<Vec<u8>>>,
    empty: &Receiver<Vec<u8>>,
) {
    loop {
        let Ok(mut buf) = empty.recv() else { return };
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let result = loop {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == CHUNK {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        match result {
            Ok(eof) => {
                if !buf.is_empty() && full.send(Ok(buf)).is_err() {
                    return;
                }
                if eof {
                    return; // Dropping `full` tells the reader the stream ended.
                }
            }
            Err(e) => {
                if !buf.is_empty() && full.send(Ok(buf)).is_err() {
                    return;
                }
                let _ = full.send(Err(e));
                return;
            }
        }
    }
}

impl Read for ZstdPipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.current.len() {
                let n = out.len().min(self.current.len() - self.pos);
                out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let Some(full) = &self.full else { return Ok(0) };
            // Hand the drained buffer back for reuse before waiting for the next one.
            let drained = std::mem::take(&mut self.current);
            if drained.capacity() > 0
                && let Some(empty) = &self.empty
            {
                let _ = empty.send(drained);
            }
            self.pos = 0;
            match full.recv() {
                Ok(Ok(buf)) => self.current = buf,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
    }
}

impl Drop for ZstdPipe {
    fn drop(&mut self) {
        // Closing both channels makes the worker's next send or recv fail, so it exits.
        self.empty = None;
        if let Some(full) = self.full.take() {
            // Drain what is queued so a worker blocked on `send` wakes up.
            while !matches!(
                full.try_recv(),
                Err(TryRecvError::Disconnected | TryRecvError::Empty)
            ) {}
            drop(full);
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The decoded bytes of a trace file, whatever its compression.
///
/// An enum, not a trait object: one `match` per buffer refill, nothing per record.
pub enum Input {
    /// An uncompressed file or standard input.
    Plain(BufReader<Raw>),
    /// A zstd file decoded on this thread (one core available).
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Raw>>>),
    /// A zstd file decoded on a helper thread.
    ZstdPipe(ZstdPipe),
    /// Bytes already read from the decoded stream (while sniffing the format),
    /// returned before the rest.
    Peeked(Box<Peeked>),
}

/// An [`Input`] with some of its first bytes already taken off and kept.
#[derive(Debug)]
pub struct Peeked {
    head: Vec<u8>,
    pos: usize,
    rest: Input,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Input::Plain"),
            Self::Zstd(_) => f.write_str("Input::Zstd"),
            Self::ZstdPipe(_) => f.write_str("Input::ZstdPipe"),
            Self::Peeked(p) => write!(f, "Input::Peeked({:?})", p.rest),
        }
    }
}

impl Input {
    /// This input with its zstd decoder (if it decodes on this thread) moved
    /// to a helper thread ([`ZstdPipe`]), from where it has got to: for a
    /// reader that stays on this thread once the format is known.
    ///
    /// # Errors
    /// The helper thread cannot be created.
    pub fn into_pipe(self) -> io::Result<Self> {
        Ok(match self {
            Self::Zstd(decoder) => Self::ZstdPipe(ZstdPipe::spawn_decoder(*decoder)?),
            Self::Peeked(mut p) => {
                p.rest = p.rest.into_pipe()?;
                Self::Peeked(p)
            }
            other => other,
        })
    }

    /// True when the bytes come out of a zstd decoder (so an early end is a truncated frame).
    #[must_use]
    pub fn is_zstd(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Zstd(_) | Self::ZstdPipe(_) => true,
            Self::Peeked(p) => p.rest.is_zstd(),
        }
    }
}

impl Read for Input {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(out),
            Self::Zstd(r) => r.read(out),
            Self::ZstdPipe(r) => r.read(out),
            Self::Peeked(p) => {
                if p.pos < p.head.len() {
                    let n = out.len().min(p.head.len() - p.pos);
                    out[..n].copy_from_slice(&p.head[p.pos..p.pos + n]);
                    p.pos += n;
                    Ok(n)
                } else {
                    p.rest.read(out)
                }
            }
        }
    }
}

/// Reads up to `want` bytes (fewer only at end of stream).
fn read_up_to<R: Read>(r: &mut R, want: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match r.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// Opens `path` (`-`: standard input), undoes zstd compression if its first
/// bytes are the zstd magic, and tells what the decoded bytes are: `.vmt` (by
/// its magic), page numbers (see [`Format::PageNumbers`]) or lackey text
/// (anything else). `threaded` chooses the overlapped decoder. Nothing is
/// seeked: the bytes looked at are kept and read again, so pipes work.
///
/// # Errors
/// The file cannot be opened or read, or ends inside a magic number.
pub fn open_file(path: &Path, threaded: bool) -> Result<(Input, Format), TraceError> {
    open_metered(path, threaded, None)
}

/// [`open_file`], adding the bytes read from the file (not standard
/// input's) to `meter`.
///
/// # Errors
/// As for [`open_file`].
pub fn open_metered(
    path: &Path,
    threaded: bool,
    meter: Option<&ReadMeter>,
) -> Result<(Input, Format), TraceError> {
    let stdin = path.as_os_str() == STDIN;
    let name = display_path(path);
    let io_err = |source| TraceError::Io {
        path: name.clone(),
        source,
    };
    let mut inner = if stdin {
        RawKind::Stdin(io::stdin())
    } else {
        RawKind::File(File::open(path).map_err(io_err)?)
    };
    let got = match &mut inner {
        RawKind::File(f) => read_up_to(f, 4),
        RawKind::Stdin(s) => read_up_to(s, 4),
    }
    .map_err(io_err)?;
    let zstd = got.len() == 4 && got == ZSTD_MAGIC;
    if !got.is_empty() && got.len() < 4 && ZSTD_MAGIC.starts_with(&got) {
        return Err(TraceError::Truncated {
            path: name,
            what: "the file ends inside the zstd magic".to_owned(),
        });
    }
    let meter = match inner {
        RawKind::File(_) => meter.cloned(),
        RawKind::Stdin(_) => None,
    };
    if let Some(m) = &meter {
        m.add(got.len());
    }
    let raw = Raw {
        head: got,
        pos: 0,
        inner,
        meter,
    };
    let mut input = if !zstd {
        Input::Plain(BufReader::with_capacity(PLAIN_BUFFER, raw))
    } else if threaded {
        Input::ZstdPipe(ZstdPipe::spawn(raw).map_err(io_err)?)
    } else {
        Input::Zstd(Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(CHUNK, raw))
                .map_err(io_err)?,
        ))
    };
    let mut head = read_up_to(&mut input, VMT_MAGIC.len())
        .map_err(|e| TraceError::from_read(name.clone(), e, zstd))?;
    let format = if head.as_slice() == VMT_MAGIC {
        Format::Vmt
    } else {
        if !head.is_empty() && head.len() < VMT_MAGIC.len() && VMT_MAGIC.starts_with(&head) {
            return Err(TraceError::Truncated {
                path: name,
                what: "the file ends inside the .vmt magic".to_owned(),
            });
        }
        if head.len() == VMT_MAGIC.len() {
            let more = read_up_to(&mut input, SNIFF - head.len())
                .map_err(|e| TraceError::from_read(name.clone(), e, zstd))?;
            head.extend_from_slice(&more);
        }
        sniff_text(&head)
    };
    Ok((
        Input::Peeked(Box::new(Peeked {
            head,
            pos: 0,
            rest: input,
        })),
        format,
    ))
}

/// The name of `path` in messages (`<stdin>` for `-`).
#[must_use]
pub fn display_path(path: &Path) -> std::path::PathBuf {
    if path.as_os_str() == STDIN {
        std::path::PathBuf::from(STDIN_NAME)
    } else {
        path.to_path_buf()
    }
}

/// Lackey text or page numbers, from the first bytes of decoded text: the
/// first line that is not blank or a `#` comment decides (a digit after
/// blanks and commas: page numbers).
#[must_use]
pub fn sniff_text(head: &[u8]) -> Format {
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b'#' => {
                while i < head.len() && head[i] != b'\n' {
                    i += 1;
                }
            }
            b'0'..=b'9' => return Format::PageNumbers,
            _ => return Format::Lackey,
        }
    }
    Format::Lackey
}

/// Whether zstd input may be decoded on a helper thread (see [`set_overlap`]).
static OVERLAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allows or forbids the zstd helper thread for inputs opened from now on:
/// a sweep that runs one single-threaded simulation per core turns it off.
pub fn set_overlap(allowed: bool) {
    OVERLAP.store(allowed, Ordering::Relaxed);
}

/// Whether a helper thread is worth it: allowed, and more than one core available.
#[must_use]
pub fn overlap_helps() -> bool {
    OVERLAP.load(Ordering::Relaxed)
        && std::thread::available_parallelism()
            .map(|n| n.get() > 1)
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zstd_bytes(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).expect("encode")
    }

    #[test]
    fn pipe_delivers_every_byte_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.zst");
        std::fs::write(&p, zstd_bytes(&data)).expect("write");
        for threaded in [true, false] {
            let (mut input, fmt) = open_file(&p, threaded).expect("open");
            assert_eq!(fmt, Format::Lackey);
            assert!(input.is_zstd());
            let mut back = Vec::new();
            input.read_to_end(&mut back).expect("read");
            assert_eq!(back, data);
        }
        // Moved to a helper thread after the format was sniffed: the same bytes.
        let (input, _) = open_file(&p, false).expect("open");
        let mut input = input.into_pipe().expect("spawn");
        assert!(format!("{input:?}").contains("ZstdPipe"), "{input:?}");
        let mut back = Vec::new();
        input.read_to_end(&mut back).expect("read");
        assert_eq!(back, data);
    }

    /// The meter counts the file's bytes as the reader takes them: part of
    /// the file after the first buffer, all of it at the end, for plain and
    /// zstd files and both decoders.
    #[test]
    fn the_meter_counts_the_file_bytes_read_so_far() {
        // Incompressible-ish text, so the zstd file is several buffers long.
        let mut data = Vec::new();
        let mut x = 1u64;
        while data.len() < 12 * CHUNK {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            writeln!(data, "S {:016x},8", x >> 8).expect("write");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("t.lackey");
        std::fs::write(&plain, &data).expect("write");
        let packed = dir.path().join("t.lackey.zst");
        std::fs::write(&packed, zstd_bytes(&data)).expect("write");
        for (path, threaded) in [(&plain, false), (&packed, false), (&packed, true)] {
            let size = std::fs::metadata(path).expect("size").len();
            let meter = ReadMeter::new();
            let (mut input, _) = open_metered(path, threaded, Some(&meter)).expect("open");
            let mut first = vec![0u8; 1000];
            input.read_exact(&mut first).expect("read");
            let early = meter.bytes();
            assert!(early > 0 && early < size, "{path:?}: {early} of {size}");
            let mut rest = Vec::new();
            input.read_to_end(&mut rest).expect("read");
            assert_eq!(meter.bytes(), size, "{path:?}");
            // Without a meter nothing is counted anywhere.
            let (mut input, _) = open_metered(path, threaded, None).expect("open");
            input.read_to_end(&mut rest).expect("read");
            assert_eq!(meter.bytes(), size);
        }
    }

    #[test]
    fn text_is_told_apart_by_its_first_meaningful_line() {
        assert_eq!(sniff_text(b"==123== Lackey\nI  0400,3\n"), Format::Lackey);
        assert_eq!(sniff_text(b"I  04001000,3\n"), Format::Lackey);
        assert_eq!(sniff_text(b" L 04001000,8\n"), Format::Lackey);
        assert_eq!(sniff_text(b"1 2 3\n"), Format::PageNumbers);
        assert_eq!(sniff_text(b"# refs\n\n  0x10, 7w\n"), Format::PageNumbers);
        assert_eq!(sniff_text(b""), Format::Lackey);
        assert_eq!(sniff_text(b"hello"), Format::Lackey);
    }

    #[test]
    fn truncated_zstd_is_unexpected_eof() {
        let data = vec![b'x'; 1_000_000];
        let z = zstd_bytes(&data);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.zst");
        let mut f = File::create(&p).expect("create");
        f.write_all(&z[..z.len() - 5]).expect("write");
        drop(f);
        for threaded in [true, false] {
            let (mut input, _) = open_file(&p, threaded).expect("open");
            let mut back = Vec::new();
            let err = input.read_to_end(&mut back).expect_err("truncated");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        let data = vec![b'y'; 10_000_000];
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.zst");
        std::fs::write(&p, zstd_bytes(&data)).expect("write");
        let (mut input, _) = open_file(&p, true).expect("open");
        let mut small = [0u8; 10];
        input.read_exact(&mut small).expect("read");
        drop(input); // must not hang
    }
}
