//! Taking checkpoints during a run: the schedule (every N references), the
//! trackers, the cost model, the records, and writing each checkpoint.
//!
//! At each checkpoint, in order:
//! 1. write-protect mode: the previous checkpoint's background copy is
//!    settled (pages the copier reached by now; the rest are copied in
//!    this pause);
//! 2. the trackers harvest the pages dirtied since the previous checkpoint
//!    and re-arm (dirty bits cleared, pages write-protected): these change
//!    page tables and the TLB, which is their cost, and the state captured
//!    next includes those changes;
//! 3. the pages to save are counted (distinct frames, zero pages and
//!    copy-on-write sharing stored once) and the pause is priced;
//! 4. the state is written (when the run writes files): everything but
//!    memory, plus the memory chunks and swap slots changed since the
//!    previous checkpoint (the host's exact record, so a restore is exact
//!    whichever tracker ran).
//!
//! The schedule and the records are part of the machine state: a restored
//! run takes the same checkpoints at the same references (perturbing the
//! machine exactly as the original did) and reports them all.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::addr::Pid;
use crate::kernel::{DirtyPage, Harvest};
use crate::sim::{Observer, Progress, SimError, Simulation};

use super::chain::ChainWriter;
use super::policy::CheckpointMode;
use super::record::{CheckpointRecord, CheckpointReport};

/// Pages of a write-protect checkpoint not saved yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The record they belong to.
    record: usize,
    /// References when the checkpoint was taken (the copier starts there).
    start: u64,
    /// The pages, by (pid, page address), sorted: the copier's order.
    pages: Vec<(u32, u64)>,
    /// Indices of pages a write-protect fault saved first.
    by_fault: BTreeSet<u32>,
}

impl Pending {
    /// The reference count by which the background copier has saved page `j`.
    fn deadline(&self, j: usize, per_kref: u64) -> u64 {
        self.start + ((j as u64 + 1) * 1000).div_ceil(per_kref.max(1))
    }
}

/// The checkpoint schedule of a run and what it has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CheckpointRun {
    /// Checkpoints taken (the next one's number).
    pub taken: u64,
    /// The chain these checkpoints belong to.
    pub chain: u64,
    /// The id of the last checkpoint (the next one's parent).
    pub last_id: Option<u64>,
    /// Every checkpoint taken.
    pub records: Vec<CheckpointRecord>,
    /// Write-protect mode: pages of the last checkpoint not saved yet.
    pub pending: Option<Pending>,
    /// The kernel's write-protect fault count at the last checkpoint.
    pub wp_faults_before: u64,
}

impl CheckpointRun {
    /// Checks a run's checkpoint books read back from a checkpoint: the
    /// count taken at most `limit` (the next one's number adds one), and
    /// the pages of a write-protect checkpoint not saved yet belong to one
    /// of its records (a write fault indexes the records by it), start at
    /// most `limit` references in (their deadlines add to it) and are
    /// sorted and distinct (the fault finds them by binary search), the
    /// ones a fault saved among them. `Err` names the field.
    pub(crate) fn check_restored(&self, limit: u64) -> Result<(), String> {
        if self.taken > limit {
            return Err(format!(
                "checkpoints: {} taken is beyond any run",
                self.taken
            ));
        }
        if let Some(p) = &self.pending {
            if p.record >= self.records.len() {
                return Err(format!(
                    "checkpoints: the pages still to save belong to record {} of {}",
                    p.record,
                    self.records.len()
                ));
            }
            if p.start > limit
                || !p.pages.is_sorted_by(|a, b| a < b)
                || u32::try_from(p.pages.len()).is_err()
                || p.by_fault
                    .last()
                    .is_some_and(|&j| j as usize >= p.pages.len())
            {
                return Err(
                    "checkpoints: the pages still to save are out of order or range".into(),
                );
            }
        }
        Ok(())
    }

    /// Test hook: pages of record `record` still to save, from reference
    /// `start` (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_pending(&mut self, record: usize, start: u64) {
        self.pending = Some(Pending {
            record,
            start,
            pages: vec![(1, 0x1000)],
            by_fault: BTreeSet::new(),
        });
    }

    /// A write-protect fault of `pid` on `page` at reference `now`: in
    /// write-protect mode, the page is saved first if the checkpoint still
    /// needs it. `page_bytes` is the kernel's data page size.
    pub(crate) fn note_write_fault(
        &mut self,
        cfg: &crate::checkpoint::CheckpointConfig,
        page_bytes: u64,
        pid: Pid,
        page: u64,
        now: u64,
    ) {
        let (per_kref, copy, fault) = (
            cfg.background_pages_per_kref,
            page_copy_cycles(cfg, page_bytes),
            cfg.fault_cycles,
        );
        let Some(last) = self.records.last_mut() else {
            return;
        };
        last.fault_cycles += fault;
        if let Some(p) = self.pending.as_mut()
            && let Ok(j) = p.pages.binary_search(&(pid.as_u32(), page))
            && p.deadline(j, per_kref) > now
            && p.by_fault.insert(j as u32)
        {
            let rec = &mut self.records[p.record];
            rec.saved_by_fault += 1;
            rec.fault_cycles += copy;
        }
    }
}

/// Cycles to copy one data page of `page_bytes` under the cost model.
fn page_copy_cycles(cfg: &crate::checkpoint::CheckpointConfig, page_bytes: u64) -> u64 {
    (cfg.page_copy_cycles * page_bytes).div_ceil(4096)
}

/// A chain id from what a run is (config and scenario): two runs of the
/// same thing make the same checkpoints, so their files are interchangeable.
///
/// Its high half is the CRC-32C of the configuration's text, which every
/// checkpoint of the run carries as its `config_crc` too (the text is the
/// same at every checkpoint: a run's configuration never changes, and a
/// restored one writes back byte for byte, which restore checks):
/// `restored_header.rs` holds a header to that, and a restore recomputes
/// the whole id from the file's configuration and scenario.
pub(crate) fn chain_id(config: &str, scenario: &[u8]) -> u64 {
    let a = crc32c::crc32c(config.as_bytes());
    let b = crc32c::crc32c_append(a, scenario);
    (u64::from(a) << 32) | u64::from(b)
}

/// The id of checkpoint `seq` of `chain` taken at `references`.
pub(crate) fn checkpoint_id(chain: u64, seq: u64, references: u64) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&chain.to_le_bytes());
    bytes[8..16].copy_from_slice(&seq.to_le_bytes());
    bytes[16..].copy_from_slice(&references.to_le_bytes());
    let lo = crc32c::crc32c(&bytes);
    let hi = crc32c::crc32c_append(lo, &bytes);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// How the pages a checkpoint saves count.
#[derive(Debug, Default)]
struct Counted {
    saved: u64,
    zero: u64,
    shared: u64,
    /// The pages actually saved, by (pid, page), for the background copier.
    list: Vec<(u32, u64)>,
}

impl Simulation {
    /// Runs to the end, taking the checkpoints `[checkpoint]` asks for
    /// (writing them with `writer` if given), and reports. A run started
    /// with [`Simulation::start`] or restored from a checkpoint.
    pub fn run_to_end(
        mut self,
        observer: &mut impl Observer,
        writer: Option<&mut ChainWriter>,
    ) -> Result<crate::report::Report, SimError> {
        self.advance(u64::MAX, observer, writer)?;
        self.settle_pending(self.references());
        // The swap device's cached pages reach its file (a kept one is
        // complete; a write error is reported, not lost in a drop).
        self.m
            .kernel
            .flush_swap(&mut self.mem)
            .map_err(|source| SimError::Kernel {
                process: "swap".into(),
                source,
            })?;
        self.finish()
    }

    /// Runs until `stop` references (or the end), taking the checkpoints
    /// `[checkpoint]` schedules on the way (written with `writer` if
    /// given): [`Simulation::run_until`] with the run's checkpoints, so the
    /// machine goes through exactly what the original run went through
    /// (trackers included) wherever it is stopped.
    pub fn advance(
        &mut self,
        stop: u64,
        observer: &mut impl Observer,
        mut writer: Option<&mut ChainWriter>,
    ) -> Result<Progress, SimError> {
        loop {
            let next = self.next_checkpoint();
            match self.run_until(stop.min(next), observer)? {
                Progress::Finished => return Ok(Progress::Finished),
                Progress::Stopped if self.references() >= next => {
                    self.take_checkpoint(writer.as_deref_mut())?;
                }
                Progress::Stopped => return Ok(Progress::Stopped),
            }
        }
    }

    /// The reference count of the next scheduled checkpoint (`u64::MAX`: none).
    #[must_use]
    pub fn next_checkpoint(&self) -> u64 {
        let every = self.cfg.config().checkpoint.every;
        if every == 0 {
            return u64::MAX;
        }
        (self.m.ckpt.taken + 1).saturating_mul(every)
    }

    /// The checkpoints taken so far, for the report.
    #[must_use]
    pub fn checkpoint_report(&self) -> Option<CheckpointReport> {
        let c = &self.cfg.config().checkpoint;
        if c.every == 0 && self.m.ckpt.records.is_empty() {
            return None;
        }
        let records = self.m.ckpt.records.clone();
        Some(CheckpointReport {
            mode: c.mode.name().into(),
            tracker: c.tracker().name().into(),
            every: c.every,
            pause_cycles: records.iter().map(|r| r.pause_cycles).sum(),
            fault_cycles: records.iter().map(|r| r.fault_cycles).sum(),
            records,
        })
    }

    /// Cycles to copy one data page under the cost model.
    fn page_copy_cycles(&self) -> u64 {
        page_copy_cycles(
            &self.cfg.config().checkpoint,
            self.m.kernel.page_size().bytes(),
        )
    }

    /// Settles the last write-protect checkpoint's background copy at
    /// reference `now`: returns the pages left for this pause.
    fn settle_pending(&mut self, now: u64) -> u64 {
        let per_kref = self.cfg.config().checkpoint.background_pages_per_kref;
        let Some(p) = self.m.ckpt.pending.take() else {
            return 0;
        };
        let mut background = 0;
        let mut left = 0;
        for j in 0..p.pages.len() {
            if p.by_fault.contains(&(j as u32)) {
                continue;
            }
            if p.deadline(j, per_kref) <= now {
                background += 1;
            } else {
                left += 1;
            }
        }
        if let Some(rec) = self.m.ckpt.records.get_mut(p.record) {
            rec.saved_in_background = background;
            rec.saved_at_next_pause = left;
        }
        left
    }

    /// Counts the pages a checkpoint saves: one per frame with contents
    /// (mappings of a frame already counted are copy-on-write sharing, all
    /// zero frames are not stored), one per swap slot.
    fn count_pages(&self, pages: &[DirtyPage]) -> Counted {
        let k = &self.m.kernel;
        let mut frames = BTreeSet::new();
        let mut slots = BTreeSet::new();
        let mut c = Counted::default();
        let chunks_per_page = (k.page_size().bytes() / crate::phys::CHUNK_BYTES as u64).max(1);
        for d in pages {
            let Ok(space) = k.space_of(d.pid) else {
                continue;
            };
            if !d.resident {
                if let Some(slot) = space.swapped.get(&d.page.as_u64()) {
                    if slots.insert(*slot) {
                        c.saved += 1;
                        c.list.push((d.pid.as_u32(), d.page.as_u64()));
                    } else {
                        c.shared += 1;
                    }
                }
                continue;
            }
            let Ok(t) = k
                .tables()
                .translate(k.format(), &self.mem, space.asid, d.page)
            else {
                continue;
            };
            let first = t.frame.as_u64() / crate::phys::CHUNK_BYTES as u64;
            if !frames.insert(first) {
                c.shared += 1;
                continue;
            }
            if (first..first + chunks_per_page).all(|i| self.mem.chunk_bytes(i).is_none()) {
                c.zero += 1;
            } else {
                c.saved += 1;
                c.list.push((d.pid.as_u32(), d.page.as_u64()));
            }
        }
        c.list.sort_unstable();
        c
    }

    /// The pages (of every process) whose frames the host saw written since
    /// the last checkpoint: the exact dirty set the trackers approximate
    /// through the MMU. Empty before the first checkpoint.
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn host_dirty_pages(&self) -> Result<Vec<DirtyPage>, SimError> {
        let all = self
            .m
            .kernel
            .mapped_pages(&self.mem, None)
            .map_err(|source| SimError::Kernel {
                process: "checkpoint".into(),
                source,
            })?;
        Ok(self.host_dirty(&all))
    }

    /// Starts (or restarts) the host's record of written memory: from now
    /// on [`Simulation::host_dirty_pages`] reports pages written after this
    /// call. Shares that record with the run's own incremental checkpoints:
    /// calling it between two of them makes the next one incomplete, so use
    /// it on runs that do not write checkpoints.
    pub fn reset_host_dirty(&mut self) {
        let chunks = self.mem.chunk_count();
        self.mem.bitmap_mut().track(chunks);
    }

    /// The hardware dirty-bit tracker, for every process or `only`'s
    /// address space: the pages with D set, D cleared (see
    /// [`Kernel::harvest_dirty_bits`](crate::kernel::Kernel::harvest_dirty_bits)).
    /// Repeatable: each call reports the pages dirtied since the previous one.
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn harvest_dirty_bits(&mut self, only: Option<Pid>) -> Result<Harvest, SimError> {
        self.m
            .kernel
            .harvest_dirty_bits(&mut self.mem, &mut self.m.mmu, only)
            .map_err(|source| SimError::Kernel {
                process: "dirty-bit tracker".into(),
                source,
            })
    }

    /// The soft-dirty (write-protect) tracker, for every process or `only`'s
    /// address space: the pages written or mapped since the previous call,
    /// then everything write-protected again (see
    /// [`Kernel::harvest_soft_dirty`](crate::kernel::Kernel::harvest_soft_dirty)).
    ///
    /// # Errors
    /// A page-table entry outside memory (a simulator bug).
    pub fn harvest_soft_dirty(&mut self, only: Option<Pid>) -> Result<Harvest, SimError> {
        self.m
            .kernel
            .harvest_soft_dirty(&mut self.mem, &mut self.m.mmu, only)
            .map_err(|source| SimError::Kernel {
                process: "soft-dirty tracker".into(),
                source,
            })
    }

    /// Data pages whose frames the host saw written since the last checkpoint.
    fn host_dirty(&self, all: &[DirtyPage]) -> Vec<DirtyPage> {
        let k = &self.m.kernel;
        let bitmap = self.mem_bitmap();
        let per_page = (k.page_size().bytes() / crate::phys::CHUNK_BYTES as u64).max(1);
        all.iter()
            .filter(|d| d.resident)
            .filter(|d| {
                k.space_of(d.pid)
                    .ok()
                    .and_then(|s| {
                        k.tables()
                            .translate(k.format(), &self.mem, s.asid, d.page)
                            .ok()
                    })
                    .is_some_and(|t| {
                        let first = t.frame.as_u64() / crate::phys::CHUNK_BYTES as u64;
                        (first..first + per_page).any(|i| bitmap.is_marked(i))
                    })
            })
            .copied()
            .collect()
    }

    fn mem_bitmap(&self) -> &crate::phys::DirtyChunks {
        self.mem.bitmap()
    }

    /// Takes a checkpoint now (between two references): the trackers, the
    /// record, and the file if `writer` is given. Called by
    /// [`Simulation::run_to_end`] at each scheduled point; an embedding
    /// program may call it at any reference.
    ///
    /// # Errors
    /// The trackers fail (a simulator bug), or the file cannot be written.
    pub fn take_checkpoint(&mut self, writer: Option<&mut ChainWriter>) -> Result<(), SimError> {
        // The chain id is the hash of the scenario at the first checkpoint,
        // which `start` would replace: a restore recomputes it.
        if !self.started {
            return Err(SimError::State("take_checkpoint before start"));
        }
        let now = self.references();
        let cfg = self.cfg.config().checkpoint.clone();
        let copy = self.page_copy_cycles();
        let full = self.m.ckpt.taken == 0;
        if full {
            let conf = self.cfg.to_toml();
            let scen = postcard::to_allocvec(&*self.scenario).unwrap_or_default();
            self.m.ckpt.chain = chain_id(&conf, &scen);
        }
        let leftover = self.settle_pending(now);
        let kerr = |source| SimError::Kernel {
            process: "checkpoint".into(),
            source,
        };
        // What the host saw change, before the trackers touch page tables.
        let all = self.m.kernel.mapped_pages(&self.mem, None).map_err(kerr)?;
        let host = if full {
            all.clone()
        } else {
            self.host_dirty(&all)
        };
        let (mut ptes, mut shootdowns) = (0, 0);
        let mut dirty_bits = None;
        let mut soft = None;
        let mut tracked: Option<Vec<DirtyPage>> = None;
        if cfg.dirty_bits() {
            let h = self
                .m
                .kernel
                .harvest_dirty_bits(&mut self.mem, &mut self.m.mmu, None)
                .map_err(kerr)?;
            ptes += h.ptes_changed;
            shootdowns += h.shootdowns;
            dirty_bits = Some(h.pages.len() as u64);
            tracked = Some(h.pages);
        }
        if cfg.soft_dirty() {
            let h = self
                .m
                .kernel
                .harvest_soft_dirty(&mut self.mem, &mut self.m.mmu, None)
                .map_err(kerr)?;
            ptes += h.ptes_changed;
            shootdowns += h.shootdowns;
            soft = Some(h.pages.len() as u64);
            tracked = Some(h.pages);
        }
        let to_save = if full {
            &all
        } else {
            tracked.as_ref().unwrap_or(&host)
        };
        let counted = self.count_pages(to_save);
        let table_pages = self.m.kernel.table_frames();
        let wp_now = self.m.kernel.stats().write_protect;
        let mut pause = ptes * cfg.pte_update_cycles
            + shootdowns * cfg.shootdown_cycles
            + (table_pages + leftover) * copy;
        if cfg.mode == CheckpointMode::Pause {
            pause += counted.saved * copy;
        }
        let seq = self.m.ckpt.taken;
        let mut rec = CheckpointRecord {
            seq,
            references: now,
            full,
            pages_saved: counted.saved,
            bytes_saved: counted.saved * self.m.kernel.page_size().bytes(),
            zero_pages: counted.zero,
            shared_pages: counted.shared,
            table_pages,
            dirty_host: host.len() as u64,
            dirty_bits,
            soft_dirty: soft,
            wp_faults: wp_now - self.m.ckpt.wp_faults_before,
            ptes_changed: ptes,
            shootdowns,
            pause_cycles: pause,
            ..CheckpointRecord::default()
        };
        self.m.ckpt.wp_faults_before = wp_now;
        // The swap file gets the pages its cache holds first.
        self.m.kernel.flush_swap(&mut self.mem).map_err(kerr)?;
        // The memory and swap changed since the previous checkpoint (host record).
        let capture = super::image::Capture::take(self, full);
        rec.chunks_written = capture.data_chunks();
        rec.zero_chunks_written = capture.zero_chunks();
        rec.swap_pages_written = capture.swap_pages();
        let id = checkpoint_id(self.m.ckpt.chain, seq, now);
        let header = super::Header {
            seq,
            full,
            references: now,
            chain: self.m.ckpt.chain,
            id,
            parent: self.m.ckpt.last_id,
            config_crc: crc32c::crc32c(self.cfg.to_toml().as_bytes()),
            written_by: concat!("vmsim ", env!("CARGO_PKG_VERSION")).into(),
            data_chunks: rec.chunks_written,
            zero_chunks: rec.zero_chunks_written,
            swap_pages: rec.swap_pages_written,
        };
        self.m.ckpt.taken += 1;
        self.m.ckpt.last_id = Some(id);
        if cfg.mode == CheckpointMode::WriteProtect && !counted.list.is_empty() {
            self.m.ckpt.pending = Some(Pending {
                record: self.m.ckpt.records.len(),
                start: now,
                pages: counted.list,
                by_fault: BTreeSet::new(),
            });
        }
        // The record goes in before the state is captured: a restored run
        // reports this checkpoint too.
        self.m.ckpt.records.push(rec);
        if let Some(w) = writer {
            let (file, bytes) = w
                .write(self, &header, &capture)
                .map_err(|e| SimError::Checkpoint(Box::new(e)))?;
            if let Some(r) = self.m.ckpt.records.last_mut() {
                r.file = Some(file);
                r.file_bytes = Some(bytes);
            }
        }
        Ok(())
    }
}
