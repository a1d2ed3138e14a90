//! The report of a run: every figure `vmsim run` prints, as one serializable
//! value with stable field names (the JSON keys are documented on each field).
//!
//! Built once, at the end of a run, from the MMU's and kernel's counters;
//! nothing here is on the per-reference path.

use serde::{Deserialize, Serialize};
use vmsim_trace::scenario::Scenario;

use crate::addr::Pid;
use crate::alloc::{FragmentationReport, SlabStats};
use crate::config::Config;
use crate::kernel::{FaultResolution, Kernel, KernelStats, SegvReason};
use crate::mmu::{Counters, Mmu};

/// Faults one process took, by how the kernel resolved them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultsByKind {
    /// Zero-filled pages (allocation on first touch).
    pub demand_zero: u64,
    /// Copy-on-write breaks that copied the page.
    pub cow_copy: u64,
    /// Copy-on-write breaks of a last sharer (no copy).
    pub cow_reuse: u64,
    /// Pages found in a shared object.
    pub shared: u64,
    /// Stack growth.
    pub stack_growth: u64,
    /// Stale TLB entries (the entry was already right).
    pub spurious: u64,
    /// Svade accessed/dirty updates by the kernel.
    pub accessed_dirty: u64,
    /// Inverted page table: a shared frame's entry moved to this mapping.
    pub alias_reload: u64,
    /// Major faults: pages read back from swap.
    pub swap_in: u64,
    /// Minor faults on swapped pages another sharer had already read back.
    pub swap_cache: u64,
    /// The fault that killed it (0 or 1).
    pub segfault: u64,
    /// Write-protect faults of the soft-dirty tracker (checkpoints).
    pub write_protect: u64,
}

/// One process of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Kernel process id.
    pub pid: Pid,
    /// Scenario name.
    pub name: String,
    /// The process that forked it.
    pub parent: Option<Pid>,
    /// References it made.
    pub references: u64,
    /// Faults by kind.
    pub faults: FaultsByKind,
    /// Most data pages it had mapped at once.
    pub resident_peak: u64,
    /// Data pages mapped when it exited.
    pub resident_at_exit: u64,
    /// Frames of its page tables when it exited.
    pub page_table_frames: u64,
    /// Why it was killed, if it was.
    pub killed: Option<SegvReason>,
}

impl ProcessReport {
    /// An empty report for `pid`.
    #[must_use]
    pub fn new(pid: Pid) -> Self {
        Self {
            pid,
            name: String::new(),
            parent: None,
            references: 0,
            faults: FaultsByKind::default(),
            resident_peak: 0,
            resident_at_exit: 0,
            page_table_frames: 0,
            killed: None,
        }
    }

    /// Counts one fault resolution.
    pub fn count(&mut self, r: FaultResolution) {
        let f = &mut self.faults;
        match r {
            FaultResolution::DemandZero => f.demand_zero += 1,
            FaultResolution::CowCopy => f.cow_copy += 1,
            FaultResolution::CowReuse => f.cow_reuse += 1,
            FaultResolution::SharedPage => f.shared += 1,
            FaultResolution::StackGrowth => f.stack_growth += 1,
            FaultResolution::Spurious => f.spurious += 1,
            FaultResolution::AccessedDirtySet => f.accessed_dirty += 1,
            FaultResolution::SwapIn => f.swap_in += 1,
            FaultResolution::SwapCache => f.swap_cache += 1,
            FaultResolution::AliasReload => f.alias_reload += 1,
            FaultResolution::WriteProtect => f.write_protect += 1,
            FaultResolution::Killed(_) => f.segfault += 1,
        }
    }
}

/// One point of the timeline (cumulative counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// References so far.
    pub references: u64,
    /// Page faults resolved so far.
    pub faults: u64,
    /// Translations that missed every TLB level so far.
    pub tlb_misses: u64,
    /// Frames in use at this point.
    pub frames_used: u64,
    /// Resident data pages of each live process at this point, by pid.
    pub resident: std::collections::BTreeMap<u32, u64>,
    /// Major faults (pages read from swap) so far.
    pub major_faults: u64,
}

impl Sample {
    /// The faults a sample counts (its `faults` field) from the kernel's
    /// counters: demand-zero, copy-on-write copies and reuses, shared-page
    /// and accessed/dirty faults. One formula for the sampling and for the
    /// restore's check of samples read back.
    #[must_use]
    pub fn faults_of(s: &KernelStats) -> u64 {
        s.demand_zero + s.cow_copies + s.cow_reuses + s.shared_minor + s.accessed_dirty
    }
}

/// Faults and TLB misses over time: at most about `2 x points` samples,
/// evenly spaced whatever the run's length (the spacing doubles as needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// References between samples.
    pub interval: u64,
    /// The samples.
    pub samples: Vec<Sample>,
    points: u32,
}

/// People (the JSON report) see the interval and the samples; machines
/// (checkpoints) also the target number of points, so a restored run thins
/// its series exactly as the original would.
impl Serialize for Timeline {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let human = s.is_human_readable();
        let mut st = s.serialize_struct("Timeline", if human { 2 } else { 3 })?;
        st.serialize_field("interval", &self.interval)?;
        st.serialize_field("samples", &self.samples)?;
        if !human {
            st.serialize_field("points", &self.points)?;
        }
        st.end()
    }
}

impl<'de> Deserialize<'de> for Timeline {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Machine {
            interval: u64,
            samples: Vec<Sample>,
            points: u32,
        }
        let m = Machine::deserialize(d)?;
        Ok(Self {
            interval: m.interval.max(1),
            samples: m.samples,
            points: m.points.max(2),
        })
    }
}

impl Timeline {
    /// An empty timeline aiming at `points` samples.
    #[must_use]
    pub fn new(points: u32) -> Self {
        Self {
            interval: 1024,
            samples: Vec::new(),
            points: points.max(2),
        }
    }

    /// References until the next sample is due.
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// The number of samples it aims at (it keeps at most twice as many).
    #[must_use]
    pub fn points(&self) -> u32 {
        self.points
    }

    /// Test hook: the number of points aimed at (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge_points(&mut self) -> &mut u32 {
        &mut self.points
    }

    /// Adds a sample; thins the series when it grows past twice the target.
    pub fn push(&mut self, s: Sample) {
        if self
            .samples
            .last()
            .is_some_and(|l| l.references == s.references)
        {
            return;
        }
        self.samples.push(s);
        if self.samples.len() > 2 * self.points as usize {
            let last = self.samples.last().cloned();
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            if let Some(last) = last
                && self.samples.last() != Some(&last)
            {
                self.samples.push(last);
            }
            self.interval *= 2;
        }
    }
}

/// Physical memory at the moment of interest (just before the first process
/// exited): fragmentation, slabs, page tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemorySnapshot {
    /// Frames in use.
    pub frames_used: u64,
    /// Frames free.
    pub frames_free: u64,
    /// Frames holding page tables.
    pub page_table_frames: u64,
    /// Buddy free blocks per order, fragmentation and unusable-space indices.
    pub fragmentation: FragmentationReport,
    /// Slab caches (`/proc/slabinfo`).
    pub slabs: Vec<SlabStats>,
}

impl MemorySnapshot {
    /// The snapshot of `kernel` now.
    #[must_use]
    pub fn of(kernel: &Kernel) -> Self {
        Self {
            frames_used: kernel.frames_in_use(),
            frames_free: kernel.frames().free_frames(),
            page_table_frames: kernel.table_frames(),
            fragmentation: kernel.frames().buddy().fragmentation(),
            slabs: kernel.slab().stats(),
        }
    }
}

/// One TLB level's figures.
#[derive(Debug, Clone, Serialize)]
pub struct TlbLevelReport {
    /// 1 = first level.
    pub level: usize,
    /// Latency in cycles.
    pub latency_cycles: u32,
    /// Lookups that reached this level.
    pub lookups: u64,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Hits / lookups.
    pub hit_rate: Option<f64>,
    /// Hits by page size (`"4 KiB"`, `"2 MiB"`, ...).
    pub hits_by_page_size: std::collections::BTreeMap<String, u64>,
    /// Misses by the page size of the translation then filled.
    pub misses_by_page_size: std::collections::BTreeMap<String, u64>,
}

/// What a process's memory held when it exited, by virtual page: equal
/// digests mean equal contents at equal addresses, wherever the frames were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryDigest {
    /// The process (kernel pid on this machine).
    pub pid: Pid,
    /// Its scenario name.
    pub name: String,
    /// Its pages, resident or in swap.
    pub pages: u64,
    /// A 64-bit hash over each page's address and contents hash, in
    /// address order (hexadecimal).
    pub digest: String,
}

/// The whole report. JSON keys are the field names.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What ran: the scenario's description, the paging format, page size,
    /// memory, and whether A/D bits are set by hardware.
    pub machine: MachineSummary,
    /// References made (trace records), total.
    pub references: u64,
    /// References by kind: `instr`, `load`, `store`, `modify`.
    pub references_by_kind: std::collections::BTreeMap<&'static str, u64>,
    /// Translations requested (a reference crossing a page boundary needs two;
    /// retries after a fault are counted by the TLB as lookups too).
    pub translations: u64,
    /// TLB lookups (first attempts and retries).
    pub tlb_lookups: u64,
    /// TLB hits at any level.
    pub tlb_hits: u64,
    /// Lookups that missed every TLB level.
    pub tlb_misses: u64,
    /// Per TLB level.
    pub tlb_levels: Vec<TlbLevelReport>,
    /// Page walks that completed a translation and filled the TLB.
    pub walks: u64,
    /// Walks that ended in a fault (the kernel then resolved it and the access retried).
    pub faulting_walks: u64,
    /// Walks made only to set a dirty bit (a store hit a clean cached entry).
    pub dirty_walks: u64,
    /// Page-table entries read by the walker.
    pub walk_memory_references: u64,
    /// Entries read, per level, root first.
    pub walk_references_by_level: Vec<u64>,
    /// Accessed/dirty bits written back by the walker.
    pub ad_writes: u64,
    /// Entries read per walk (walks of every kind).
    pub walk_references_per_walk: Option<f64>,
    /// Inverted or hashed tables: probes per search (min, total, max over
    /// `lookups` searches); absent with radix tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_probes: Option<crate::paging::hashed::ProbeStats>,
    /// Page-walk cache lookups and hits per depth.
    pub walk_cache: crate::mmu::WalkCacheCounters,
    /// Translation faults the MMU raised, by kind.
    pub mmu_faults: crate::mmu::FaultCounters,
    /// How the kernel resolved faults, in total.
    pub kernel: KernelStats,
    /// Pages copied by copy-on-write breaks.
    pub cow_copies: u64,
    /// Minor faults: resolved without reading the swap file (demand-zero,
    /// copy-on-write, shared pages, swap cache, stack growth, Svade A/D).
    pub minor_faults: u64,
    /// Major faults: pages read back from the swap file.
    pub major_faults: u64,
    /// Demand paging: swap-ins and -outs, write-backs, clean drops, pages
    /// scanned by the policy, refaults, page-out daemon runs, direct reclaims.
    pub paging: crate::kernel::PagingStats,
    /// The swap device: pages written and read, slots in use at the end and at the peak.
    pub swap: crate::swap::SwapStats,
    /// Frames still in use after every process exited (should be 0).
    pub frames_leaked: u64,
    /// Most frames in use at once.
    pub peak_frames_used: u64,
    /// Most frames holding page tables at once.
    pub peak_page_table_frames: u64,
    /// Memory just before the first process exited.
    pub memory: Option<MemorySnapshot>,
    /// Every process.
    pub processes: Vec<ProcessReport>,
    /// Measured effective access time in cycles per translation.
    pub eat_cycles: Option<f64>,
    /// Faults and TLB misses over time.
    pub timeline: Timeline,
    /// Things the scenario asked for that did not happen: a fork or exit
    /// point never reached (one sentence each, naming the process).
    pub warnings: Vec<String>,
    /// The checkpoints the run took (with `checkpoint.every`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<crate::checkpoint::CheckpointReport>,
    /// Each process's memory digest when it exited (with
    /// [`Simulation::set_digest_at_exit`](crate::sim::Simulation::set_digest_at_exit)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memory_digests: Vec<MemoryDigest>,
    /// The live migration this run sent or received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<crate::migrate::MigrationReport>,
    /// The raw MMU counters.
    #[serde(skip)]
    pub counters: Counters,
}

/// What a finished run hands [`Report::build`]: the machine as configured,
/// its hardware and kernel (for their counters), and the run's own books.
#[derive(Debug)]
pub struct RunEnd<'a> {
    /// The configuration the machine was built from.
    pub cfg: &'a Config,
    /// The scenario that ran (its description, its fork and exit points).
    pub scenario: &'a Scenario,
    /// References simulated, by trace kind (instr, load, store, modify).
    pub references: [u64; 4],
    /// Address translations done (a reference crossing a page makes two).
    pub translations: u64,
    /// The MMU, for its counters and format.
    pub mmu: &'a Mmu,
    /// The kernel, for its statistics and what is still allocated.
    pub kernel: &'a Kernel,
    /// Each process's report, by pid.
    pub processes: std::collections::BTreeMap<Pid, ProcessReport>,
    /// The sampled timeline.
    pub timeline: Timeline,
    /// The most frames in use at once.
    pub peak_frames: u64,
    /// The most page-table frames in use at once.
    pub peak_table_frames: u64,
    /// The memory snapshot, if one was taken.
    pub memory: Option<MemorySnapshot>,
    /// Whether the hardware set accessed and dirty bits.
    pub hardware_ad: bool,
}

/// What machine ran.
#[derive(Debug, Clone, Serialize)]
pub struct MachineSummary {
    /// The scenario's description.
    pub description: String,
    /// The paging format.
    pub arch: String,
    /// The translation structure: `radix`, `inverted` or `hashed`.
    pub structure: String,
    /// Data page size in bytes.
    pub page_size: u64,
    /// Physical memory in frames.
    pub frames: u64,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// Whether the hardware sets A/D bits (else Svade).
    pub hardware_ad: bool,
    /// Whether TLB entries carry ASID tags.
    pub asid_tags: bool,
    /// Memory latency in cycles.
    pub memory_latency_cycles: u32,
}

impl Report {
    /// Assembles the report at the end of a run.
    #[must_use]
    pub fn build(run: RunEnd<'_>) -> Self {
        let RunEnd {
            cfg,
            scenario,
            references,
            translations,
            mmu,
            kernel,
            processes,
            timeline,
            peak_frames,
            peak_table_frames,
            memory,
            hardware_ad,
        } = run;
        let c = mmu.counters();
        let fmt = mmu.format();
        let tlb_levels: Vec<TlbLevelReport> = c
            .tlb
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| TlbLevelReport {
                level: i + 1,
                latency_cycles: l.latency_cycles,
                lookups: l.lookups,
                hits: l.hit_count(),
                misses: l.misses,
                hit_rate: l.hit_rate(),
                hits_by_page_size: l.hits.iter().map(|(s, n)| (s.to_string(), n)).collect(),
                misses_by_page_size: l
                    .misses_by_size
                    .iter()
                    .map(|(s, n)| (s.to_string(), n))
                    .collect(),
            })
            .collect();
        let procs: Vec<ProcessReport> = processes.into_values().collect();
        let warnings = unreached_points(scenario, &procs);
        let levels = fmt.levels().len();
        let tlb_hits = tlb_levels.iter().map(|l| l.hits).sum();
        Self {
            machine: MachineSummary {
                description: scenario.description.clone(),
                arch: fmt.name().to_string(),
                structure: kernel.tables().name().to_string(),
                page_size: kernel.page_size().bytes(),
                frames: cfg.memory.frames,
                memory_bytes: cfg.memory.frames * fmt.page_size().bytes(),
                hardware_ad,
                asid_tags: cfg.tlb.asid_tags,
                memory_latency_cycles: cfg.memory.latency,
            },
            references: references.iter().sum(),
            references_by_kind: [
                ("instr", references[0]),
                ("load", references[1]),
                ("store", references[2]),
                ("modify", references[3]),
            ]
            .into_iter()
            .collect(),
            translations,
            tlb_lookups: c.tlb.lookups(),
            tlb_hits,
            tlb_misses: c.tlb.full_misses,
            tlb_levels,
            walks: c.walk.completed,
            faulting_walks: c.walk.faulted,
            dirty_walks: c.walk.dirty_walks,
            walk_memory_references: c.walk.refs(),
            walk_references_by_level: c.walk.refs_by_level[..levels].to_vec(),
            ad_writes: c.walk.ad_writes(),
            walk_references_per_walk: c.walk.refs_per_walk(),
            table_probes: (c.walk.probes.lookups > 0).then_some(c.walk.probes),
            walk_cache: c.walk_cache.clone(),
            mmu_faults: c.faults.clone(),
            kernel: *kernel.stats(),
            cow_copies: kernel.stats().cow_copies,
            minor_faults: {
                let k = kernel.stats();
                k.demand_zero
                    + k.cow_copies
                    + k.cow_reuses
                    + k.shared_minor
                    + k.stack_growth
                    + k.accessed_dirty
                    + kernel.paging_stats().swap_cache_hits
            },
            major_faults: kernel.paging_stats().major_faults,
            paging: *kernel.paging_stats(),
            swap: kernel.swap_stats(),
            frames_leaked: kernel.frames_in_use(),
            peak_frames_used: peak_frames,
            peak_page_table_frames: peak_table_frames,
            memory,
            processes: procs,
            eat_cycles: c.effective_access_time(f64::from(cfg.memory.latency)),
            timeline,
            warnings,
            checkpoints: None,
            memory_digests: Vec::new(),
            migration: None,
            counters: c,
        }
    }
}

/// The fork and exit points of `scenario` that its processes never
/// reached: a fork whose child never ran, an `exit_after` larger than the
/// references the process made.
fn unreached_points(scenario: &Scenario, procs: &[ProcessReport]) -> Vec<String> {
    use vmsim_trace::scenario::ForkPoint;
    let ran = |name: &str| procs.iter().find(|p| p.name == name);
    let mut warnings = Vec::new();
    for spec in &scenario.processes {
        // A process that never started: its forker's warning says why.
        let Some(p) = ran(&spec.name) else { continue };
        let end = if p.killed.is_some() {
            format!("it was killed after {} references", p.references)
        } else {
            format!("its trace ended after {} references", p.references)
        };
        for f in &spec.forks {
            let child = &scenario.processes[f.child].name;
            if ran(child).is_none() {
                let point = match f.point {
                    ForkPoint::After(n) => format!("after {n} references"),
                    ForkPoint::At(a) => format!("at instruction {a:#x}"),
                };
                warnings.push(format!(
                    "process '{}': the fork of '{child}' {point} never happened: {end}",
                    spec.name
                ));
            }
        }
        if let Some(n) = spec.exit_after
            && p.references < n
            && p.killed.is_none()
        {
            warnings.push(format!(
                "process '{}': exit_after = {n} was never reached: {end}",
                spec.name
            ));
        }
    }
    warnings
}
