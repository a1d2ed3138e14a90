//! Checking what a restored run carries only for its report.
//!
//! A checkpoint restores, beside the machine, figures nothing runs on but
//! the report prints: the peaks, the memory snapshot taken before the first
//! exit (buddy and slab figures), the timeline's samples, the memory
//! digests of processes that exited and the records of the checkpoints
//! taken. A forged one does not crash the machine; it makes the report of
//! the restored run lie (a snapshot before any exit, slab lines no cache
//! could have, samples from the future, a digest of a live process, a
//! checkpoint counted twice), or overflows a figure the text report works
//! out from it. Each is held here to what the run that wrote the
//! checkpoint could have recorded: bounds from the machine as it is now
//! (the figures only grow, and the snapshot and samples are of earlier
//! moments) and the relations the recording code keeps exactly. Restore
//! code only. The error names the field; the caller adds the section.

use std::collections::BTreeSet;

use crate::alloc::FragmentationReport;
use crate::checkpoint::file_name;
use crate::checkpoint::run::checkpoint_id;
use crate::config::MachineSpec;
use crate::report::Sample;

use super::Machine;
use super::restored::{counter_in_range, counters_in_range};

/// The timeline's first spacing (`Timeline::new`); it only doubles.
const FIRST_INTERVAL: u64 = 1024;

impl Machine {
    /// Checks the report-only state against the machine and `cfg`, after
    /// the counters are in range (the sums here cannot overflow).
    pub(super) fn check_report_state(&self, cfg: &MachineSpec) -> Result<(), String> {
        self.check_peaks(cfg.frames())?;
        self.check_snapshot(cfg.frames())?;
        self.check_timeline(cfg.config().run.timeline_points)?;
        self.check_digests()?;
        self.check_checkpoint_records(cfg)
    }

    /// References made so far (each kind's count is at most 2^56).
    fn references_now(&self) -> u64 {
        self.references.iter().sum()
    }

    /// The peaks: frames in use at most the frames the buddy allocator
    /// manages, page-table frames at most the memory's (an inverted or
    /// hashed table's frames are reserved outside the allocator's, so they
    /// are not bounded by the frames in use). The text report multiplies
    /// the page-table peak by the memory's size: a forged 2^56 overflowed.
    fn check_peaks(&self, memory_frames: u64) -> Result<(), String> {
        let total = self.kernel.frames().total_frames();
        if self.peak_frames > total || self.peak_table_frames > memory_frames {
            return Err(format!(
                "machine: peaks of {} frames in use and {} page-table frames (at most the \
                 {total} frames managed and the {memory_frames} of memory)",
                self.peak_frames, self.peak_table_frames
            ));
        }
        Ok(())
    }

    /// The snapshot before the first exit: taken only when a process has
    /// finished, its frames the allocator's (page tables the memory's), at
    /// most the peaks, its buddy
    /// figures free blocks the region can hold with the indices they give,
    /// its slab figures ones the caches could have had.
    fn check_snapshot(&self, memory_frames: u64) -> Result<(), String> {
        let Some(s) = &self.snapshot else {
            return Ok(());
        };
        let bad = |what: String| Err(format!("report snapshot: {what}"));
        if !self.schedule.procs.iter().any(|p| p.done) {
            return bad("taken before the first exit, but no process has finished".into());
        }
        let frames = self.kernel.frames();
        let total = frames.total_frames();
        if s.frames_used.checked_add(s.frames_free) != Some(total)
            || s.page_table_frames > memory_frames
        {
            return bad(format!(
                "{} frames used and {} free, not the {total} frames managed, or {} page-table \
                 frames, more than the {memory_frames} of memory",
                s.frames_used, s.frames_free, s.page_table_frames
            ));
        }
        if s.frames_used > self.peak_frames || s.page_table_frames > self.peak_table_frames {
            return bad(format!(
                "{} frames used and {} page-table frames, past the peaks {} and {}",
                s.frames_used, s.page_table_frames, self.peak_frames, self.peak_table_frames
            ));
        }
        let f = &s.fragmentation;
        let orders = frames.buddy().fragmentation().free_blocks.len();
        if f.free_blocks.len() != orders {
            return bad(format!(
                "buddy free blocks of {} orders, not the allocator's {orders}",
                f.free_blocks.len()
            ));
        }
        // Bounded first: the report's sums of blocks times their frames.
        if let Some((o, n)) = f
            .free_blocks
            .iter()
            .enumerate()
            .find(|&(o, &n)| n > total >> o)
        {
            return bad(format!(
                "{n} free blocks of order {o}, more than {total} frames hold"
            ));
        }
        if *f != FragmentationReport::from_free_blocks(&f.free_blocks)
            || f.free_pages != s.frames_free
        {
            return bad(format!(
                "buddy figures {f:?} are not those of its free blocks and {} free frames",
                s.frames_free
            ));
        }
        self.kernel
            .slab()
            .check_earlier_stats(&s.slabs, s.frames_used)
            .map_err(|e| format!("report snapshot: slabs: {e}"))
    }

    /// The timeline: the configuration's target, a spacing the doubling
    /// reaches, at most twice the target of samples, in order of
    /// references, cumulative figures that only grow and are at most the
    /// run's now, processes of the run, and the next sample due one spacing
    /// after the last (a forged due point stopped the sampling or moved it).
    fn check_timeline(&self, points: u32) -> Result<(), String> {
        let t = &self.timeline;
        let bad = |what: String| Err(format!("timeline: {what}"));
        if t.points() != points.max(2) {
            return bad(format!(
                "aims at {} points, not the configuration's {}",
                t.points(),
                points.max(2)
            ));
        }
        if t.interval < FIRST_INTERVAL || !t.interval.is_power_of_two() {
            return bad(format!(
                "interval {} is not {FIRST_INTERVAL} doubled",
                t.interval
            ));
        }
        if t.samples.len() > 2 * t.points() as usize {
            return bad(format!(
                "{} samples, more than twice the {} points it keeps",
                t.samples.len(),
                t.points()
            ));
        }
        let total = self.kernel.frames().total_frames();
        let mut prev: Option<&Sample> = None;
        for (i, x) in t.samples.iter().enumerate() {
            let what = format!("timeline sample {i}");
            counters_in_range(&what, &serde_json::to_value(x).map_err(|e| e.to_string())?)?;
            if let Some(p) = prev
                && (x.references <= p.references
                    || x.faults < p.faults
                    || x.tlb_misses < p.tlb_misses
                    || x.major_faults < p.major_faults)
            {
                return bad(format!(
                    "sample {i} (reference {}) goes back on sample {} (reference {})",
                    x.references,
                    i - 1,
                    p.references
                ));
            }
            if x.frames_used > total {
                return bad(format!(
                    "sample {i}: {} frames used of {total}",
                    x.frames_used
                ));
            }
            if let Some(pid) = x
                .resident
                .keys()
                .find(|&&pid| !self.processes.contains_key(&crate::addr::Pid::new(pid)))
            {
                return bad(format!(
                    "sample {i}: resident pages of pid {pid}, no process of the run"
                ));
            }
            prev = Some(x);
        }
        if let Some(last) = prev {
            let now = self.references_now();
            let k = self.kernel.stats();
            let (faults, misses, major) = (
                Sample::faults_of(k),
                self.mmu.counters().tlb.full_misses,
                self.kernel.paging_stats().major_faults,
            );
            if last.references > now
                || last.faults > faults
                || last.tlb_misses > misses
                || last.major_faults > major
            {
                return bad(format!(
                    "the last sample (reference {}, {} faults, {} TLB misses, {} major faults) \
                     is past the run now ({now}, {faults}, {misses}, {major})",
                    last.references, last.faults, last.tlb_misses, last.major_faults
                ));
            }
        }
        let due = prev.map_or(0, |l| l.references) + t.interval;
        if self.schedule.next_sample != due {
            return bad(format!(
                "the next sample is due at reference {}, not one interval after the last ({due})",
                self.schedule.next_sample
            ));
        }
        Ok(())
    }

    /// The per-process report lines: one per process the run started
    /// (each scenario process once started, each extra pid of a
    /// multi-process trace), filed under its own pid, named as the run
    /// names it (the scenario's name; an extra's `NAME[TRACE PID]`), its
    /// parent a process of the run, its page-table frames at most the
    /// memory's. Their figures are each at most 2^56 already
    /// (`check_counters`), and no line sums more than eight of them. A
    /// forged name put a line of the forger's into the text report, a
    /// line under another pid or of a process never started was reported
    /// as it was written.
    pub(super) fn check_process_reports(
        &self,
        scenario: &vmsim_trace::scenario::Scenario,
        memory_frames: u64,
    ) -> Result<(), String> {
        let mut names = std::collections::BTreeMap::new();
        for p in &self.schedule.procs {
            let Some(spec) = scenario.processes.get(p.spec) else {
                continue;
            };
            if let Some(pid) = p.pid {
                names.insert(pid, spec.name.clone());
            }
            for (tp, &pid) in &p.extra {
                names.insert(pid, format!("{}[{tp}]", spec.name));
            }
        }
        for (pid, r) in &self.processes {
            let bad = |what: String| Err(format!("process report {pid}: {what}"));
            if r.pid != *pid {
                return bad(format!("filed under {pid} but of process {}", r.pid));
            }
            match names.get(pid) {
                None => return bad("a process the run never started".into()),
                Some(n) if *n != r.name => {
                    return bad(format!(
                        "named {:?}, but the run named it {n:?}",
                        r.name.chars().take(64).collect::<String>()
                    ));
                }
                Some(_) => {}
            }
            if let Some(q) = r.parent
                && (q == *pid || !self.processes.contains_key(&q))
            {
                return bad(format!("its parent {q} is not another process of the run"));
            }
            if r.page_table_frames > memory_frames {
                return bad(format!(
                    "{} page-table frames, more than the {memory_frames} of memory",
                    r.page_table_frames
                ));
            }
        }
        if let Some(pid) = names.keys().find(|p| !self.processes.contains_key(p)) {
            return Err(format!(
                "process report {pid}: the run started it but it has no report line"
            ));
        }
        Ok(())
    }

    /// The memory digests: one per process that exited (in the run, gone
    /// from the kernel, not killed: a killed process leaves none), under
    /// its name, a 64-bit hash in 16 hexadecimal digits.
    fn check_digests(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (i, d) in self.digests.iter().enumerate() {
            let bad = |what: &str| Err(format!("memory digest {i} (pid {}): {what}", d.pid));
            let Some(r) = self.processes.get(&d.pid) else {
                return bad("no process of the run");
            };
            if self.kernel.process(d.pid).is_ok() {
                return bad("the process has not exited");
            }
            if r.killed.is_some() {
                return bad("the process was killed (a killed process leaves no digest)");
            }
            if !seen.insert(d.pid) {
                return bad("a second digest of the process");
            }
            if d.name != r.name {
                return bad(&format!("named '{}', not '{}'", d.name, r.name));
            }
            if d.digest.len() != 16
                || !d
                    .digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return bad(&format!(
                    "digest '{}' is not 16 hexadecimal digits",
                    d.digest
                ));
            }
            counter_in_range(&format!("memory digest {i}: pages"), d.pages)?;
        }
        Ok(())
    }

    /// The run's checkpoint records, restored only to be reported: one per
    /// checkpoint taken, numbered in order, the first full and the others
    /// increments, at references in order and not past the run's, the
    /// trackers the configuration runs, bytes saved the pages saved times
    /// the data page size, a file named as the chain names it, and the
    /// last one's id the one its number and reference give. Each figure at
    /// most [`COUNTER_LIMIT`](super::restored::COUNTER_LIMIT) (a write
    /// fault adds to the last one's), the pauses and fault cycles the
    /// report sums at most that in all (a forged `u64::MAX` beside another
    /// record overflowed the sum at the report).
    ///
    /// Their references are not held to `checkpoint.every`: a program may
    /// take a checkpoint at any reference (`Simulation::take_checkpoint`)
    /// and run past scheduled ones (`Simulation::run_until`).
    fn check_checkpoint_records(&self, cfg: &MachineSpec) -> Result<(), String> {
        let c = &self.ckpt;
        let page_bytes = cfg.page_size().bytes();
        let (mut pauses, mut faults) = (0u64, 0u64);
        for (i, r) in c.records.iter().enumerate() {
            let what = format!("checkpoint record {i}");
            counters_in_range(&what, &serde_json::to_value(r).map_err(|e| e.to_string())?)?;
            pauses = pauses.saturating_add(r.pause_cycles);
            faults = faults.saturating_add(r.fault_cycles);
            counter_in_range(
                &format!("{what}: pages_saved in bytes"),
                r.pages_saved.saturating_mul(page_bytes),
            )?;
        }
        counter_in_range("checkpoint records: pause_cycles in all", pauses)?;
        counter_in_range("checkpoint records: fault_cycles in all", faults)?;
        if c.records.len() as u64 != c.taken {
            return Err(format!(
                "checkpoints: {} records of {} taken",
                c.records.len(),
                c.taken
            ));
        }
        let ck = &cfg.config().checkpoint;
        let now = self.references_now();
        let mut at = 0u64;
        for (i, r) in c.records.iter().enumerate() {
            let bad = |field: &str| Err(format!("checkpoint record {i}: {field}"));
            if r.seq != i as u64 {
                return bad(&format!("numbered {}", r.seq));
            }
            if r.full != (i == 0) {
                return bad(if r.full {
                    "a full checkpoint after the first"
                } else {
                    "the first checkpoint is not full"
                });
            }
            if r.references < at || r.references > now {
                return bad(&format!(
                    "taken at reference {}, before the previous one's {at} or past the run's {now}",
                    r.references
                ));
            }
            at = r.references;
            // In range: pages saved times the page size is checked above.
            if r.bytes_saved != r.pages_saved * page_bytes {
                return bad(&format!(
                    "{} bytes saved for {} pages of {page_bytes} bytes",
                    r.bytes_saved, r.pages_saved
                ));
            }
            if r.dirty_bits.is_some() != ck.dirty_bits()
                || r.soft_dirty.is_some() != ck.soft_dirty()
            {
                return bad("the trackers are not the configuration's");
            }
            if r.file.is_some() != r.file_bytes.is_some()
                || r.file.as_ref().is_some_and(|f| *f != file_name(r.seq))
            {
                return bad(&format!(
                    "file {:?} ({:?} bytes), not the chain's {}",
                    r.file,
                    r.file_bytes,
                    file_name(r.seq)
                ));
            }
        }
        let id = c
            .records
            .last()
            .map(|r| checkpoint_id(c.chain, r.seq, r.references));
        if c.last_id != id {
            return Err(format!(
                "checkpoints: the last id {:?} is not the last record's {id:?}",
                c.last_id
            ));
        }
        Ok(())
    }
}
