//! Page streams: any trace input as a stream of page references, and the
//! dense renumbering of pages that lets consumers keep their state in arrays.
//!
//! Owns the meaning of "page reference" for everything that replays pages
//! rather than addresses (the policy lab, miss-ratio curves): an access
//! touches every page from its first to its last byte (one that straddles a
//! boundary touches both, as `vmsim run` translates both), and a page
//! belongs to its process (the same page number in two processes is two
//! pages). Page-number files are already pages: the page size does not
//! apply to them.
//!
//! [`PageSource::for_each`] iterates internally, so the per-reference work of
//! the consumer is inlined into the reader's batch loop. [`DenseMap`] turns
//! `(pid, page)` into ids `0..n` in order of first reference.

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::access::Access;
use crate::error::TraceError;
use crate::input::{self, Format, Input};
use crate::pagenum::PageNumberReader;
use crate::source::{AnySource, SYNTH_PREFIX, TraceSource};
use crate::synth::SynthSource;

/// One reference to one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRef {
    /// The page number (address >> page shift, or the number in a page-number file).
    pub page: u64,
    /// The process (0 for page-number files).
    pub pid: u32,
    /// Whether the reference writes (a store or modify; `w` in a page-number file).
    pub write: bool,
}

/// A trace input read as page references.
#[derive(Debug)]
pub enum PageSource {
    /// Memory accesses (lackey, `.vmt`, `synth:`), split into pages of `1 << shift` bytes.
    Accesses {
        /// The reader.
        source: AnySource,
        /// log2 of the page size.
        shift: u32,
    },
    /// A page-number file.
    Numbers(PageNumberReader<Input>),
}

/// Opens `spec` (a path, `-` for standard input, or `synth:...`) as page
/// references with pages of `page_size` bytes. The format is found from the
/// content (see [`crate::input::open_file`]); `force_numbers` reads any file
/// as page numbers.
///
/// # Errors
/// The page size is not a power of two; the input cannot be opened; a
/// `synth:` spec is invalid.
pub fn open_pages(
    spec: &str,
    page_size: u64,
    force_numbers: bool,
) -> Result<PageSource, TraceError> {
    if !page_size.is_power_of_two() {
        return Err(TraceError::PageSize(page_size));
    }
    let shift = page_size.trailing_zeros();
    if !force_numbers && let Some(rest) = spec.strip_prefix(SYNTH_PREFIX) {
        return Ok(PageSource::Accesses {
            source: AnySource::Synth(SynthSource::parse(rest)?),
            shift,
        });
    }
    let path = Path::new(spec);
    let (input, format) = input::open_file(path, input::overlap_helps())?;
    if force_numbers || format == Format::PageNumbers {
        let zstd = input.is_zstd();
        return Ok(PageSource::Numbers(PageNumberReader::new(
            input,
            input::display_path(path),
            zstd,
        )));
    }
    Ok(PageSource::Accesses {
        source: crate::source::accesses(input, format, path)?,
        shift,
    })
}

impl PageSource {
    /// Whether this is a page-number file (the page size does not apply).
    #[must_use]
    pub fn is_page_numbers(&self) -> bool {
        matches!(self, Self::Numbers(_))
    }

    /// Calls `f` on every page reference, in order, and returns the number of
    /// accesses read (page references can be more: straddling accesses).
    ///
    /// # Errors
    /// The first error of the reader or of `f`.
    pub fn for_each<F>(&mut self, mut f: F) -> Result<u64, TraceError>
    where
        F: FnMut(PageRef) -> Result<(), TraceError>,
    {
        match self {
            Self::Accesses { source, shift } => {
                let shift = *shift;
                let mask = (1u64 << shift) - 1;
                let mut batch: Vec<Access> = Vec::with_capacity(crate::BATCH);
                let mut total = 0u64;
                while source.next_batch(&mut batch)? > 0 {
                    total += batch.len() as u64;
                    for a in &batch {
                        let write = a.kind.writes();
                        if (a.va & mask) + u64::from(a.size) <= mask + 1 {
                            f(PageRef {
                                page: a.va >> shift,
                                pid: a.pid,
                                write,
                            })?;
                        } else {
                            let (first, last) = a.pages(shift);
                            for page in first..=last {
                                f(PageRef {
                                    page,
                                    pid: a.pid,
                                    write,
                                })?;
                            }
                        }
                    }
                }
                Ok(total)
            }
            Self::Numbers(r) => {
                let mut total = 0u64;
                r.for_each(|page, write| {
                    total += 1;
                    f(PageRef {
                        page,
                        pid: 0,
                        write,
                    })
                })?;
                Ok(total)
            }
        }
    }
}

/// Page numbers below this are mapped through a direct table (4 bytes per
/// page number up to it, grown on demand); larger ones through a hash map.
const DIRECT_LIMIT: u64 = 1 << 22;

/// Marks an unused slot of the direct table.
const NO_ID: u32 = u32::MAX;

/// `(pid, page)` -> dense id `0..n`, assigned in order of first reference.
///
/// The first process seen gets a direct table (page numbers below 2^22) and
/// an `FxHashMap`; other processes share one map keyed by `(pid, page)`. A
/// page already in the direct table costs a compare and a load, inlined into
/// the reader's loop; the rest goes out of line, where the last page looked
/// up is remembered, so runs of references to one hashed page cost a compare.
#[derive(Debug, Default)]
pub struct DenseMap {
    /// The first pid seen; meaningless while `direct` is empty.
    main_pid: u32,
    main_seen: bool,
    direct: Vec<u32>,
    hashed: FxHashMap<u64, u32>,
    others: FxHashMap<(u32, u64), u32>,
    pages: Vec<u64>,
    /// The pid of each id; empty while every page is the main pid's.
    pids: Vec<u32>,
    last: Option<(u32, u64, u32)>,
}

impl DenseMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `(pid, page)`, a new one (`len()` before the call) if it
    /// was never seen. `None` when `u32::MAX - 1` ids are taken.
    #[inline]
    pub fn id(&mut self, pid: u32, page: u64) -> Option<u32> {
        // `direct` is empty until the main pid is known.
        if pid == self.main_pid
            && let Some(&id) = usize::try_from(page).ok().and_then(|i| self.direct.get(i))
            && id != NO_ID
        {
            return Some(id);
        }
        self.id_slow(pid, page)
    }

    /// [`Self::id`] for a page not yet in the direct table.
    #[inline(never)]
    fn id_slow(&mut self, pid: u32, page: u64) -> Option<u32> {
        if let Some((lp, lpage, lid)) = self.last
            && lp == pid
            && lpage == page
        {
            return Some(lid);
        }
        let id = self.lookup(pid, page)?;
        self.last = Some((pid, page, id));
        Some(id)
    }

    fn lookup(&mut self, pid: u32, page: u64) -> Option<u32> {
        let next = u32::try_from(self.pages.len())
            .ok()
            .filter(|&n| n < NO_ID)?;
        if !self.main_seen {
            self.main_seen = true;
            self.main_pid = pid;
        }
        let main = self.main_pid;
        let id = if pid != main {
            *self.others.entry((pid, page)).or_insert(next)
        } else if page < DIRECT_LIMIT {
            let i = page as usize;
            if i >= self.direct.len() {
                let len = (i + 1).next_power_of_two().max(1024);
                self.direct.resize(len, NO_ID);
            }
            let slot = &mut self.direct[i];
            if *slot == NO_ID {
                *slot = next;
            }
            *slot
        } else {
            *self.hashed.entry(page).or_insert(next)
        };
        if id == next {
            if pid != main && self.pids.is_empty() {
                self.pids = vec![main; self.pages.len()];
            }
            if !self.pids.is_empty() {
                self.pids.push(pid);
            }
            self.pages.push(page);
        }
        Some(id)
    }

    /// Number of ids given out.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether no id was given out.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The page number of each id.
    #[must_use]
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// The pid of each id, or an empty slice when every page belongs to one
    /// process.
    #[must_use]
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Gives up the page numbers and pids of the ids.
    #[must_use]
    pub fn into_keys(self) -> (Vec<u64>, Vec<u32>) {
        (self.pages, self.pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessKind;

    #[test]
    fn ids_are_dense_in_first_reference_order_per_process() {
        let mut m = DenseMap::new();
        let refs = [
            (1, 5),
            (1, 1 << 40),
            (1, 5),
            (2, 5),
            (1, 7),
            (2, 5),
            (1, 1 << 40),
        ];
        let ids: Vec<u32> = refs
            .iter()
            .map(|&(p, g)| m.id(p, g).expect("room"))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2, 3, 2, 1]);
        assert_eq!(m.pages(), [5, 1 << 40, 5, 7]);
        assert_eq!(m.pids(), [1, 1, 2, 1]);
    }

    #[test]
    fn straddling_accesses_touch_both_pages() {
        let acc = |va, size, kind| Access {
            va,
            pid: 1,
            size,
            kind,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.vmt");
        let accesses = [
            acc(0x1ffe, 4, AccessKind::Load),
            acc(0x3000, 8, AccessKind::Store),
            acc(0x4fff, 1, AccessKind::Instr),
            acc(0x5fff, 2, AccessKind::Modify),
        ];
        let mut w = crate::vmt::VmtWriter::new(Vec::new()).expect("writer");
        w.push_all(&accesses).expect("push");
        let (bytes, _) = w.finish().expect("finish");
        std::fs::write(&p, bytes).expect("write");
        let mut src = open_pages(&p.display().to_string(), 4096, false).expect("open");
        let mut got = Vec::new();
        let n = src
            .for_each(|r| {
                got.push((r.page, r.write));
                Ok(())
            })
            .expect("read");
        assert_eq!(n, 4);
        assert_eq!(
            got,
            [
                (1, false),
                (2, false),
                (3, true),
                (4, false),
                (5, true),
                (6, true)
            ]
        );
        assert!(matches!(
            open_pages("x", 3000, false),
            Err(TraceError::PageSize(3000))
        ));
    }
}
