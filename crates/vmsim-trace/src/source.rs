//! The streaming interface every trace source implements, and [`open`], which
//! turns a command-line trace argument into a concrete source.
//!
//! Owns the batch contract and the choice of source; the formats themselves
//! live in `lackey`, `vmt` and `synth`.

use std::path::Path;

use crate::access::Access;
use crate::ahead::ReadAhead;
use crate::error::TraceError;
use crate::input::{self, Format, Input, ReadMeter};
use crate::lackey::LackeyReader;
use crate::synth::SynthSource;
use crate::vmt::VmtReader;

/// The most accesses any source in this crate puts in one batch (24 bytes
/// each: a batch is 96 KiB, small enough to stay in a core's L2 cache).
pub const BATCH: usize = 4096;

/// A stream of memory references, handed out in batches so the consumer's
/// per-access loop is a plain loop over a slice: monomorphic, allocation-free.
pub trait TraceSource {
    /// Clears `out` and fills it with the next accesses, in trace order.
    /// Returns how many (equal to `out.len()`); 0 means the trace has ended.
    /// After an error the source is finished and yields nothing more.
    ///
    /// # Errors
    /// A [`TraceError`] naming the file (and line, for text) when the input is
    /// malformed, truncated, corrupt or unreadable.
    fn next_batch(&mut self, out: &mut Vec<Access>) -> Result<usize, TraceError>;

    /// The pid every access of the last batch [`TraceSource::next_batch`]
    /// returned carries, when the source knows they all carry the same one
    /// (`None`: it does not know, or they differ). A consumer that runs a
    /// batch for one pid then needs no test of each access's pid.
    fn batch_pid(&self) -> Option<u32> {
        None
    }

    /// Calls `f` on every remaining access, batch by batch, and returns how many there were.
    ///
    /// # Errors
    /// The first error of [`TraceSource::next_batch`].
    fn for_each<F: FnMut(&Access)>(&mut self, mut f: F) -> Result<u64, TraceError>
    where
        Self: Sized,
    {
        let mut batch = Vec::with_capacity(BATCH);
        let mut total = 0u64;
        while self.next_batch(&mut batch)? > 0 {
            total += batch.len() as u64;
            for a in &batch {
                f(a);
            }
        }
        Ok(total)
    }

    /// Reads every remaining access into one vector. Memory grows with the
    /// trace: for small traces and tests; everything else streams with
    /// [`next_batch`](Self::next_batch) or [`for_each`](Self::for_each).
    ///
    /// # Errors
    /// The first error of [`TraceSource::next_batch`].
    fn collect_all(&mut self) -> Result<Vec<Access>, TraceError>
    where
        Self: Sized,
    {
        let mut all = Vec::new();
        self.for_each(|a| all.push(*a))?;
        Ok(all)
    }
}

/// Any trace [`open`] can produce. An enum of the concrete readers, so a
/// consumer generic over [`TraceSource`] pays one `match` per batch, not per access.
#[derive(Debug)]
pub enum AnySource {
    /// valgrind lackey text, plain or zstd-compressed.
    Lackey(LackeyReader<Input>),
    /// vmsim binary trace, plain or zstd-compressed.
    Vmt(VmtReader<Input>),
    /// A seeded synthetic workload.
    Synth(SynthSource),
    /// A lackey file's reader run on a helper thread.
    Ahead(Box<ReadAhead<AnySource>>),
}

impl TraceSource for AnySource {
    #[inline]
    fn next_batch(&mut self, out: &mut Vec<Access>) -> Result<usize, TraceError> {
        match self {
            Self::Lackey(r) => r.next_batch(out),
            Self::Vmt(r) => r.next_batch(out),
            Self::Synth(r) => r.next_batch(out),
            Self::Ahead(r) => r.next_batch(out),
        }
    }

    #[inline]
    fn batch_pid(&self) -> Option<u32> {
        match self {
            Self::Vmt(r) => r.batch_pid(),
            Self::Lackey(r) => r.batch_pid(),
            Self::Ahead(r) => r.batch_pid(),
            Self::Synth(r) => r.batch_pid(),
        }
    }
}

impl AnySource {
    /// Reads and drops the next `n` accesses (to continue a trace where a
    /// checkpoint left it). Returns the accesses read past `n` in the last
    /// batch, which come next, and how many were skipped (fewer than `n`
    /// only if the trace ended first).
    ///
    /// # Errors
    /// As for [`TraceSource::next_batch`].
    pub fn skip(&mut self, n: u64) -> Result<(u64, Vec<Access>), TraceError> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut left = n;
        while left > 0 {
            let got = self.next_batch(&mut batch)? as u64;
            if got == 0 {
                break;
            }
            if got > left {
                let rest = batch.split_off(left as usize);
                return Ok((n, rest));
            }
            left -= got;
        }
        Ok((n - left, Vec::new()))
    }

    /// Accept a trace file without any reference; by default reading one
    /// ends in [`TraceError::Empty`]. (A `synth:` spec with `refs=0` asks
    /// for nothing explicitly and is always accepted.)
    pub fn set_allow_empty(&mut self, allow: bool) {
        match self {
            Self::Lackey(r) => r.set_allow_empty(allow),
            Self::Vmt(r) => r.set_allow_empty(allow),
            Self::Synth(_) => {}
            Self::Ahead(r) => {
                if let Some(reader) = r.reader_mut() {
                    reader.set_allow_empty(allow);
                }
            }
        }
    }
}

/// The prefix that marks a synthetic workload spec instead of a file path.
pub const SYNTH_PREFIX: &str = "synth:";

/// Opens a trace: `synth:KIND,key=value,...` (see [`crate::synth`]), `-`
/// (standard input) or a file path. A file's format is found from its
/// content, not its name: zstd (0xFD2FB528) is decompressed, then `.vmt` is recognised by
/// its magic, a file of page numbers is refused (it holds no addresses: see
/// [`crate::pages`]), and anything else is read as lackey text. When more
/// than one core is available ([`input::overlap_helps`]), a lackey file is
/// decompressed and parsed on a helper thread ([`ReadAhead`]), a zstd
/// `.vmt` decompressed on one.
///
/// # Errors
/// The file cannot be opened or its first bytes cannot be read (a zstd frame
/// that ends at once is [`TraceError::Truncated`]), or the spec is invalid.
pub fn open(spec: &str) -> Result<AnySource, TraceError> {
    if let Some(rest) = spec.strip_prefix(SYNTH_PREFIX) {
        return Ok(AnySource::Synth(SynthSource::parse(rest)?));
    }
    open_path(Path::new(spec))
}

/// Opens a trace file (never a `synth:` spec; `-` is standard input); see [`open`].
///
/// # Errors
/// As for [`open`].
pub fn open_path(path: &Path) -> Result<AnySource, TraceError> {
    open_file_source(path, None)
}

/// [`open`], adding the bytes it reads from a file to `meter` (see
/// [`ReadMeter`]; a `synth:` spec or standard input adds nothing).
///
/// # Errors
/// As for [`open`].
pub fn open_metered(spec: &str, meter: &ReadMeter) -> Result<AnySource, TraceError> {
    if let Some(rest) = spec.strip_prefix(SYNTH_PREFIX) {
        return Ok(AnySource::Synth(SynthSource::parse(rest)?));
    }
    open_file_source(Path::new(spec), Some(meter))
}

/// Opens a trace file (see [`open`]). When a second core helps
/// ([`input::overlap_helps`]), a lackey file is decompressed (straight into
/// the parser's buffer) and parsed on a helper thread ([`ReadAhead`]); any
/// other zstd file is decompressed on one ([`input::ZstdPipe`]) and read
/// here. Otherwise everything happens on this thread.
fn open_file_source(path: &Path, meter: Option<&ReadMeter>) -> Result<AnySource, TraceError> {
    let (mut input, format) = input::open_metered(path, false, meter)?;
    if !input::overlap_helps() {
        return accesses(input, format, path);
    }
    if format == Format::Lackey {
        let stdin = path.as_os_str() == input::STDIN;
        let reader = accesses(input, format, path)?;
        return Ok(AnySource::Ahead(Box::new(ReadAhead::new(reader, stdin))));
    }
    if format == Format::Vmt {
        input = input.into_pipe().map_err(|source| TraceError::Io {
            path: input::display_path(path),
            source,
        })?;
    }
    accesses(input, format, path)
}

/// The access reader for an opened input of a known format.
pub(crate) fn accesses(input: Input, format: Format, path: &Path) -> Result<AnySource, TraceError> {
    let zstd = input.is_zstd();
    let name = input::display_path(path);
    Ok(match format {
        Format::Lackey => AnySource::Lackey(LackeyReader::new(input, name, zstd)),
        Format::Vmt => AnySource::Vmt(VmtReader::new(input, name, zstd)?),
        Format::PageNumbers => return Err(TraceError::NotAccesses { path: name }),
    })
}
