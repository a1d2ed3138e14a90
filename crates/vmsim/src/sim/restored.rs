//! Checking a machine state read back from a checkpoint before it runs.
//!
//! A checkpoint's sections carry checksums, which catch corruption but not
//! a forged or buggy MACH section: a state whose fields all decode but do
//! not fit together (a TLB entry for a frame outside memory, an ASID the
//! kernel cannot hand out, a walk-cache entry for a frame that holds no
//! page table, a scheduler turn past the last process) would run and panic
//! later, far from its cause. Restoring therefore checks every piece of
//! machine state that is later used as an index or a shift against the
//! machine it is restored into: the kernel's own invariants
//! ([`Kernel::check_invariants`](crate::kernel::Kernel::check_invariants)),
//! then the MMU against an MMU built fresh from the configuration (its
//! geometry must be the configuration's; its contents must fit the memory
//! and the kernel), then the machine's own fields and the scheduler against
//! the scenario. The error names the field; the caller adds the section.
//! What the run carries only for its report (snapshot, timeline, digests,
//! checkpoint records) is checked last, in `sim/restored_report.rs`.

use vmsim_trace::scenario::Scenario;

use crate::config::MachineSpec;
use crate::kernel::FrameUse;
use crate::mmu::{Mmu, RestoreLimits};

use super::Machine;

/// The largest counter a restored state may hold: 2^56 (7.2e16), far
/// beyond any run (a year of references at a billion per second is
/// 3.2e16), and small enough that adding up to 256 of them cannot
/// overflow a u64.
pub(crate) const COUNTER_LIMIT: u64 = 1 << 56;

pub(crate) fn counter_in_range(what: &str, v: u64) -> Result<(), String> {
    if v > COUNTER_LIMIT {
        return Err(format!(
            "{what} = {v} is beyond any run (at most 2^56 = {COUNTER_LIMIT}): a forged or corrupt state"
        ));
    }
    Ok(())
}

/// Every integer in `v` (a counters struct as JSON) within range, the
/// error naming its path (`mmu counters: walk.refs`).
pub(crate) fn counters_in_range(what: &str, v: &serde_json::Value) -> Result<(), String> {
    fn walk(path: &mut String, v: &serde_json::Value, what: &str) -> Result<(), String> {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(x) = n.as_u64() {
                    let at = if path.is_empty() {
                        what.to_string()
                    } else {
                        format!("{what}: {path}")
                    };
                    counter_in_range(&at, x)?;
                }
                Ok(())
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(path, x, what)?;
                    path.truncate(len);
                }
                Ok(())
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(path, x, what)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(&mut String::new(), v, what)
}

impl Machine {
    /// Checks this restored state against `cfg`, the memory size and the
    /// scenario (after the kernel's invariants hold). `Err` names the field.
    pub(crate) fn check_restored(
        &self,
        cfg: &MachineSpec,
        mem_bytes: u64,
        scenario: &Scenario,
    ) -> Result<(), String> {
        let fmt = cfg.format();
        let hardware_ad = cfg.hardware_ad();
        if self.hardware_ad != hardware_ad
            || self.page_shift != fmt.page_size().shift()
            || self.page_mask != fmt.page_size().mask()
        {
            return Err(
                "machine: page size or accessed/dirty mode is not the configuration's".into(),
            );
        }
        let fresh = Mmu::new(fmt.clone(), cfg.tlb(), hardware_ad)
            .map_err(|e| format!("mmu: the configuration's TLB cannot be built: {e}"))?;
        let frame_bytes = fmt.page_size().bytes();
        let frames = self.kernel.frames().all();
        let is_table = |pa: crate::addr::PhysAddr| {
            pa.as_u64().is_multiple_of(frame_bytes)
                && frames
                    .get((pa.as_u64() / frame_bytes) as usize)
                    .is_some_and(|m| m.use_ == FrameUse::Table)
        };
        let limits = RestoreLimits {
            mem_bytes,
            asids: self.kernel.config().asids,
            table_align: frame_bytes,
            is_table: &is_table,
        };
        self.mmu
            .check_restored(
                &fresh,
                &self.kernel.table_base(),
                &limits,
                self.current.is_some(),
            )
            .map_err(|e| format!("mmu: {e}"))?;
        if let Some(pid) = self.current {
            if self.kernel.process(pid).is_err() {
                return Err(format!("machine: the current process {pid} does not exist"));
            }
            // The MMU runs in the current process's context (a blocked
            // vfork parent has none to compare: its root is checked above).
            if let Ok(ctx) = self.kernel.context(pid)
                && self.mmu.context() != ctx
            {
                return Err(format!(
                    "machine: the MMU's root register and ASID are not those of the current process {pid}"
                ));
            }
        }
        self.kernel.check_restored_geometry(cfg)?;
        self.kernel.check_restored_books(&cfg.config().kernel)?;
        self.kernel.check_restored_pager()?;
        self.check_host_record(mem_bytes)?;
        self.ckpt.check_restored(COUNTER_LIMIT)?;
        self.check_schedule(scenario)?;
        self.check_counters()?;
        self.check_report_state(cfg)?;
        self.check_process_reports(scenario, cfg.frames())
    }

    /// What the run records beside the machine: the host's written chunks
    /// (marked in a bitmap of the memory's chunks on restore: a forged
    /// chunk number far past the memory grew it to that size) and the
    /// timeline's spacing (the next sample is due that many references
    /// on: a forged one near 2^64 overflowed the sum).
    fn check_host_record(&self, mem_bytes: u64) -> Result<(), String> {
        let chunks = mem_bytes.div_ceil(crate::phys::CHUNK_BYTES as u64);
        if let Some(&c) = self.host_dirty.iter().flatten().find(|&&c| c >= chunks) {
            return Err(format!(
                "machine: the host's record names chunk {c}, past the memory's {chunks}"
            ));
        }
        if self.timeline.interval > COUNTER_LIMIT {
            return Err(format!(
                "machine: the timeline's interval {} is beyond any run (at most 2^56)",
                self.timeline.interval
            ));
        }
        Ok(())
    }

    /// The counters: each at most [`COUNTER_LIMIT`]. A run adds to them
    /// one event at a time, so none comes near the limit in practice; a
    /// forged one at `u64::MAX` would overflow at its next event (a panic
    /// in a debug build, a wrapped figure in a release build), and sums of
    /// them in the report could too. Checked: the machine's reference and
    /// translation counts and peaks, every process's report figures and
    /// scheduler counts, the MMU's counters, the kernel's, the pager's and
    /// the swap device's.
    fn check_counters(&self) -> Result<(), String> {
        let scalars = [
            (
                "references",
                self.references.iter().copied().max().unwrap_or(0),
            ),
            ("translations", self.translations),
            ("peak_frames", self.peak_frames),
            ("peak_table_frames", self.peak_table_frames),
        ];
        for (name, v) in scalars {
            counter_in_range(&format!("machine.{name}"), v)?;
        }
        for (pid, p) in &self.processes {
            let mut v = serde_json::to_value(p).map_err(|e| e.to_string())?;
            if let Some(o) = v.as_object_mut() {
                // An address, not a count.
                o.remove("killed");
            }
            counters_in_range(&format!("process {pid}"), &v)?;
        }
        for (i, p) in self.schedule.procs.iter().enumerate() {
            counter_in_range(&format!("scheduler: process {i}: references"), p.refs)?;
            counter_in_range(
                &format!("scheduler: process {i}: accesses read"),
                p.consumed,
            )?;
        }
        let groups = [
            ("mmu counters", serde_json::to_value(self.mmu.counters())),
            ("kernel counters", serde_json::to_value(self.kernel.stats())),
            (
                "paging counters",
                serde_json::to_value(self.kernel.paging_stats()),
            ),
            (
                "swap counters",
                serde_json::to_value(self.kernel.swap_stats()),
            ),
        ];
        for (what, v) in groups {
            counters_in_range(what, &v.map_err(|e| e.to_string())?)?;
        }
        Ok(())
    }

    /// The scheduler: one entry per scenario process, in order, each
    /// position inside its batch, every index (turn, slice, waited-for
    /// child, next fork) in range, and every process still to run known to
    /// the kernel.
    fn check_schedule(&self, scenario: &Scenario) -> Result<(), String> {
        let s = &self.schedule;
        let n = s.procs.len();
        if n != scenario.processes.len() {
            return Err(format!(
                "schedule: {n} processes but the scenario has {}",
                scenario.processes.len()
            ));
        }
        if s.quantum == 0 {
            return Err("schedule: quantum is 0".into());
        }
        if s.turn > n {
            return Err(format!(
                "schedule: turn {} is past the {n} processes",
                s.turn
            ));
        }
        if let Some((i, _)) = s.slice
            && (i >= n || s.procs[i].pid.is_none() || s.procs[i].done)
        {
            return Err(format!(
                "schedule: the running slice is of process {i}, which cannot run"
            ));
        }
        for (i, p) in s.procs.iter().enumerate() {
            let bad = |what: String| Err(format!("schedule: process {i}: {what}"));
            if p.spec != i {
                return bad(format!("describes scenario process {}", p.spec));
            }
            if p.pos > p.batch.len() {
                return bad(format!(
                    "position {} is past its batch of {}",
                    p.pos,
                    p.batch.len()
                ));
            }
            // What every trace source guarantees (a larger access touched
            // up to a million pages).
            if let Some(a) = p.batch[p.pos..]
                .iter()
                .find(|a| a.size == 0 || a.size > vmsim_trace::access::MAX_ACCESS_BYTES)
            {
                return bad(format!(
                    "an access of {} bytes is to come (1 to {} expected)",
                    a.size,
                    vmsim_trace::access::MAX_ACCESS_BYTES
                ));
            }
            let forks = &scenario.processes[i].forks;
            if p.next_fork > forks.len() {
                return bad(format!("next fork {} of {}", p.next_fork, forks.len()));
            }
            // A fork still to come starts its child then: it has not started.
            if let Some(f) = forks[p.next_fork..]
                .iter()
                .find(|f| f.child < n && s.procs[f.child].pid.is_some())
            {
                return bad(format!(
                    "its fork of process {} is still to come but that process has started",
                    f.child
                ));
            }
            if let Some(c) = p.waiting_for
                && c >= n
            {
                return bad(format!("waits for process {c} of {n}"));
            }
            if !p.done
                && let Some(pid) = p.pid
                && self.kernel.process(pid).is_err()
            {
                return bad(format!("pid {pid} is still to run but does not exist"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Forged checkpoints: a real checkpoint's MACH section decoded, one
    //! piece of machine state made inconsistent, encoded again with its
    //! lengths and CRC-32Cs right, so only the restore checks can catch it.

    use proptest::prelude::*;
    use vmsim_trace::scenario::Scenario;

    use crate::addr::{Asid, PhysAddr, VirtAddr};
    use crate::checkpoint::Checkpoint;
    use crate::checkpoint::forged::{sections, with_section};
    use crate::config::ConfigBuilder;
    use crate::kernel::PagerForgery;
    use crate::mmu::{AccessKind, Perms, TlbEntry};
    use crate::sim::{Machine, Simulation};

    fn scenario(inputs: &[&str]) -> Scenario {
        Scenario::of_traces(inputs)
    }

    /// A full checkpoint of a two-process run under memory pressure (swap
    /// in use, TLBs and walk caches warm), taken mid-run.
    fn checkpoint_bytes() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| checkpoint_of(None))
    }

    /// The same on the core-i7 preset (true-LRU TLBs).
    fn lru_checkpoint_bytes() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| checkpoint_of(Some("core-i7")))
    }

    fn checkpoint_of(preset: Option<&str>) -> Vec<u8> {
        checkpoint_with(preset, &[])
    }

    /// [`checkpoint_of`] with the settings `extra` too.
    fn checkpoint_with(preset: Option<&str>, extra: &[&str]) -> Vec<u8> {
        {
            let mut b = ConfigBuilder::preset(preset).expect("preset");
            for s in ["memory.frames=128", "kernel.asids=64"].iter().chain(extra) {
                b = b.set(s).expect("set");
            }
            let mut sim = Simulation::new(b.build().expect("config")).expect("machine");
            sim.start(&scenario(&[
                "synth:zipf,pages=300,refs=12K,write=0.5,seed=21",
                "synth:scan,bytes=256KiB,stride=512,write=1,refs=6K",
            ]))
            .expect("start");
            sim.advance(9_000, &mut (), None).expect("run");
            sim.checkpoint().expect("checkpoint").as_bytes().to_vec()
        }
    }

    /// The machine state the checkpoint holds.
    fn machine(bytes: &[u8]) -> Machine {
        let (_, flags, range) = sections(bytes)
            .into_iter()
            .find(|s| &s.0 == b"MACH")
            .expect("MACH");
        assert_eq!(flags & 1, 1, "MACH is compressed");
        let raw = zstd::decode_all(&bytes[range]).expect("zstd");
        postcard::from_bytes(&raw).expect("postcard")
    }

    /// `bytes` with its MACH section replaced by `m`, every length and
    /// CRC-32C right: a file that passes its checksums but lies.
    ///
    /// Its HEAD is made to follow the forged machine (a snapshot's chain,
    /// references and number, its id worked out again), as HEAD is held
    /// to MACH (`checkpoint/restored_header.rs`): the forgery is the
    /// machine's alone.
    fn with_machine(bytes: &[u8], m: &Machine) -> Vec<u8> {
        let (_, _, range) = sections(bytes)
            .into_iter()
            .find(|s| &s.0 == b"HEAD")
            .expect("HEAD");
        let mut h: crate::checkpoint::Header = postcard::from_bytes(&bytes[range]).expect("HEAD");
        // Held to 2^56 as HEAD is: a machine forged past it is refused
        // by the machine's own checks, as it was before HEAD was held.
        let refs = m.references.iter().fold(0u64, |a, &b| a.saturating_add(b));
        h.references = refs.min(super::COUNTER_LIMIT);
        h.seq = m.ckpt.taken.min(super::COUNTER_LIMIT);
        h.chain = m.ckpt.chain;
        h.id = crate::checkpoint::run::checkpoint_id(h.chain, u64::MAX, h.references);
        let bytes = with_section(bytes, b"HEAD", &postcard::to_allocvec(&h).expect("encode"));
        with_section(&bytes, b"MACH", &postcard::to_allocvec(m).expect("encode"))
    }

    /// Restores the checkpoint with `forge` applied to its machine state.
    fn restore_forged(forge: impl FnOnce(&mut Machine)) -> Result<Simulation, String> {
        restore_forged_from(checkpoint_bytes(), forge)
    }

    fn restore_forged_from(
        bytes: &[u8],
        forge: impl FnOnce(&mut Machine),
    ) -> Result<Simulation, String> {
        let mut m = machine(bytes);
        forge(&mut m);
        let ck = Checkpoint::from_bytes(with_machine(bytes, &m), "forged.vmck")
            .map_err(|e| e.to_string())?;
        Simulation::restore(&ck, &[]).map_err(|e| e.to_string())
    }

    /// Restoring the forged state is refused with one line naming the
    /// section and containing `expect`.
    fn refused(what: &str, expect: &str, forge: impl FnOnce(&mut Machine)) {
        refused_from(checkpoint_bytes(), what, expect, forge);
    }

    fn refused_from(bytes: &[u8], what: &str, expect: &str, forge: impl FnOnce(&mut Machine)) {
        match restore_forged_from(bytes, forge) {
            Ok(_) => panic!("{what}: the forged state was accepted"),
            Err(e) => {
                assert!(!e.contains('\n'), "{what}: {e}");
                assert!(e.contains("section MACH"), "{what}: {e}");
                assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
            }
        }
    }

    /// The first valid slot of the first array holding 4 KiB pages.
    fn first_valid(m: &mut Machine) -> (usize, usize, usize) {
        let shape = m.mmu.tlb_mut().forge_shape();
        for (l, &arrays) in shape.iter().enumerate() {
            for a in 0..arrays {
                let array = m.mmu.tlb_mut().forge_array(l, a);
                if let Some(s) = (0..array.capacity()).find(|&s| array.holds_slot(s)) {
                    return (l, a, s);
                }
            }
        }
        panic!("no valid TLB entry in the checkpoint");
    }

    #[test]
    fn counters_beyond_any_run_are_refused() {
        refused("references", "machine.references", |m| {
            m.references[0] = u64::MAX;
        });
        refused("translations", "machine.translations", |m| {
            m.translations = super::COUNTER_LIMIT + 1;
        });
        refused("a process's figure", "faults.demand_zero", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.faults.demand_zero = u64::MAX;
        });
        refused("a process's references", "references", |m| {
            let p = m.processes.values_mut().last().expect("a process");
            p.references = u64::MAX;
        });
        refused("scheduler", "scheduler: process 1: references", |m| {
            m.schedule.procs[1].refs = u64::MAX;
        });
        // At the limit (less what the rest of the run adds) it restores
        // and runs on, in a debug build too.
        let mut sim = restore_forged(|m| {
            m.references[0] = super::COUNTER_LIMIT - 100_000;
            m.translations = super::COUNTER_LIMIT - 100_000;
            for p in m.processes.values_mut() {
                p.references = super::COUNTER_LIMIT - 100_000;
                p.faults.demand_zero = super::COUNTER_LIMIT - 100_000;
            }
        })
        .expect("restore");
        sim.run_until(sim.references() + 2_000, &mut ())
            .expect("run");
    }

    /// A reverse-map entry naming an address space that does not exist
    /// (one byte of the MACH section changed, found by the checksum-passing
    /// lies property test in tests/checkpoint.rs) is refused at restore,
    /// not left for an eviction to index past the spaces.
    #[test]
    fn a_reverse_map_naming_no_address_space_is_refused() {
        for sid in [3, 101, u32::MAX] {
            let Err(e) = restore_forged(|m| {
                assert!(
                    m.kernel.forge_rmap_space(sid),
                    "the checkpoint maps no frame"
                );
            }) else {
                panic!("the forged reverse map was accepted");
            };
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains("MACH"), "{e}");
            assert!(
                e.contains(&format!("reverse map names address space {sid} ")),
                "{e}"
            );
        }
    }

    /// Restores the forged state and, if it is accepted, runs it on (and
    /// ends the run): what a check that is missing lets happen (a panic,
    /// an overflow in a debug build) happens here, before the test fails.
    fn run_forged(forge: impl FnOnce(&mut Machine)) -> Result<(), String> {
        run_forged_from(checkpoint_bytes(), forge)
    }

    fn run_forged_from(bytes: &[u8], forge: impl FnOnce(&mut Machine)) -> Result<(), String> {
        let mut sim = restore_forged_from(bytes, forge)?;
        let _ = sim.run_until(sim.references() + 3_000, &mut ());
        // A new process and a fork: what hands out pids and ASIDs.
        let k = &mut sim.m.kernel;
        if let Ok(pid) = k.spawn(&mut sim.mem, crate::kernel::Layout::Standard) {
            let _ = k.fork(&mut sim.mem, &mut sim.m.mmu, pid);
        }
        let _ = sim.finish();
        Ok(())
    }

    /// Restoring is refused with one line naming MACH and containing
    /// `expect`; an accepted state is run (see [`run_forged`]) first.
    fn refused_or_shown(what: &str, expect: &str, forge: impl FnOnce(&mut Machine)) {
        refused_or_shown_from(checkpoint_bytes(), what, expect, forge);
    }

    fn refused_or_shown_from(
        bytes: &[u8],
        what: &str,
        expect: &str,
        forge: impl FnOnce(&mut Machine),
    ) {
        match run_forged_from(bytes, forge) {
            Ok(()) => panic!("{what}: the forged state was accepted (and ran)"),
            Err(e) => {
                assert!(!e.contains('\n'), "{what}: {e}");
                assert!(e.contains("section MACH"), "{what}: {e}");
                assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
            }
        }
    }

    /// The kernel's books beside its frames (`check_restored_books`): each
    /// forged value here ran into an overflow, a debug assertion or a
    /// reused ASID before the check.
    #[test]
    fn the_kernels_pids_asids_spaces_and_configuration_are_checked() {
        refused_or_shown("next pid at the end", "next pid", |m| {
            *m.kernel.forge_books().0 = u32::MAX;
        });
        refused_or_shown("next pid of a live process", "below the next pid", |m| {
            *m.kernel.forge_books().0 = 1;
        });
        refused_or_shown("next ASID 0", "next ASID 0", |m| {
            *m.kernel.forge_books().1 = 0;
        });
        refused_or_shown("next ASID past asids", "next ASID 65", |m| {
            *m.kernel.forge_books().1 = 65;
        });
        refused_or_shown("next ASID below a live one", "never handed out", |m| {
            *m.kernel.forge_books().1 = 2;
        });
        refused_or_shown("a free ASID in use", "free ASID", |m| {
            let live = m
                .kernel
                .forge_books()
                .4
                .iter()
                .flatten()
                .next()
                .map(|s| s.asid);
            let live = live.expect("a live space").as_u16();
            m.kernel.forge_books().2.push(live);
        });
        refused_or_shown("a free ASID twice", "free ASID", |m| {
            let (_, next, free, _, _, _) = m.kernel.forge_books();
            let a = u16::try_from(*next).expect("small");
            *next += 1;
            free.extend([a, a]);
        });
        refused_or_shown("a free ASID never handed out", "free ASID 60", |m| {
            m.kernel.forge_books().2.push(60);
        });
        refused_or_shown("space users 0", "0 users but 1 processes", |m| {
            let spaces = m.kernel.forge_books().4;
            spaces.iter_mut().flatten().next().expect("a space").users = 0;
        });
        refused_or_shown("space users 3", "3 users but 1 processes", |m| {
            let spaces = m.kernel.forge_books().4;
            spaces.iter_mut().flatten().next().expect("a space").users = 3;
        });
        refused_or_shown("break below the heap", "below the heap's start", |m| {
            let spaces = m.kernel.forge_books().4;
            let s = spaces.iter_mut().flatten().next().expect("a space");
            s.brk = VirtAddr::new(s.brk_start.as_u64() - 4096);
        });
        refused_or_shown("an empty VMA", "is empty", |m| {
            let spaces = m.kernel.forge_books().4;
            let s = spaces.iter_mut().flatten().next().expect("a space");
            let v = *s.vmas().last().expect("a VMA");
            s.replace(crate::kernel::Vma { start: v.end, ..v });
        });
        refused_or_shown("overlapping VMAs", "overlaps another", |m| {
            let spaces = m.kernel.forge_books().4;
            let s = spaces.iter_mut().flatten().next().expect("a space");
            let v = *s.vmas().next().expect("a VMA");
            let start = VirtAddr::new(v.start.as_u64() + 4096);
            s.replace(crate::kernel::Vma { start, ..v });
        });
        refused_or_shown("a VMA of no shared object", "shared object", |m| {
            let spaces = m.kernel.forge_books().4;
            let s = spaces.iter_mut().flatten().next().expect("a space");
            let mut v = *s.vmas().next().expect("a VMA");
            v.shm = Some((crate::kernel::ShmId::forge(0), u64::MAX));
            s.replace(v);
        });
        refused_or_shown("a task structure twice", "task structure", |m| {
            let procs = m.kernel.forge_books().5;
            let first = procs.values().next().and_then(|p| p.task);
            procs.values_mut().last().expect("two processes").task = first;
        });
        refused_or_shown("a task structure that is none", "task structure", |m| {
            let procs = m.kernel.forge_books().5;
            let p = procs.values_mut().next().expect("a process");
            let t = p.task.expect("a task");
            p.task = Some(crate::alloc::ObjHandle::forge(PhysAddr::new_unchecked(
                t.addr().as_u64() + 8,
            )));
        });
        refused_or_shown("asids", "configuration", |m| {
            m.kernel.forge_books().3.asids = 4096;
        });
        refused_or_shown("tick", "configuration", |m| {
            m.kernel.forge_books().3.tick = 0;
        });
    }

    /// The run's checkpoint books: a forged count taken overflowed at the
    /// next checkpoint's number; pages still to save of a record that
    /// does not exist were indexed past the records at a write fault.
    #[test]
    fn the_runs_checkpoint_books_are_checked() {
        refused_or_shown("taken", "taken is beyond any run", |m| {
            m.ckpt.taken = u64::MAX;
        });
        refused_or_shown("pending record", "belong to record 99 of", |m| {
            m.ckpt.forge_pending(99, 0);
        });
        refused_or_shown("pending start", "out of order or range", |m| {
            m.ckpt
                .records
                .push(m.ckpt.records.last().cloned().unwrap_or_default());
            m.ckpt.forge_pending(0, u64::MAX);
        });
    }

    /// The checkpoint records, restored only for the report: a figure
    /// past any run, the pauses' sum the report takes, and the pages
    /// saved times the page size the text report prints.
    #[test]
    fn the_checkpoint_records_are_checked() {
        // Without the check: "attempt to add with overflow" in the report's sum.
        refused_or_shown("pause sum", "pause_cycles in all", |m| {
            let mut r = m.ckpt.records.last().cloned().unwrap_or_default();
            // Each within range, 300 of them past 2^64 in all.
            r.pause_cycles = super::COUNTER_LIMIT;
            m.ckpt.records.extend(std::iter::repeat_n(r, 300));
        });
        refused_or_shown(
            "a record's wp_faults",
            "checkpoint record 0: wp_faults",
            |m| {
                let mut r = m.ckpt.records.last().cloned().unwrap_or_default();
                r.wp_faults = u64::MAX;
                m.ckpt.records.insert(0, r);
            },
        );
        refused_or_shown("pages saved", "pages_saved in bytes", |m| {
            let mut r = m.ckpt.records.last().cloned().unwrap_or_default();
            r.pages_saved = super::COUNTER_LIMIT;
            m.ckpt.records.push(r);
        });
    }

    /// A checkpoint with every report-only figure filled in: digests on,
    /// checkpoints every 2,000 references (not written), quanta of 1,000,
    /// taken just after the shorter process (6,000 references) exited: a
    /// snapshot, a digest, six checkpoint records or more and timeline
    /// samples.
    fn report_checkpoint_bytes() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let mut b = ConfigBuilder::preset(None).expect("preset");
            for s in [
                "memory.frames=128",
                "kernel.asids=64",
                "run.quantum=1000",
                "checkpoint.every=2000",
            ] {
                b = b.set(s).expect("set");
            }
            let mut sim = Simulation::new(b.build().expect("config")).expect("machine");
            sim.set_digest_at_exit(true);
            sim.start(&scenario(&[
                "synth:zipf,pages=300,refs=12K,write=0.5,seed=21",
                "synth:scan,bytes=256KiB,stride=512,write=1,refs=6K",
            ]))
            .expect("start");
            // Just past the first exit.
            while sim.m.snapshot.is_none() {
                let at = sim.references() + 500;
                sim.advance(at, &mut (), None).expect("run");
            }
            let ck = sim.checkpoint().expect("checkpoint").as_bytes().to_vec();
            let m = machine(&ck);
            assert_eq!(m.digests.len(), 1, "digests");
            assert!(m.ckpt.records.len() >= 6, "records");
            assert!(m.timeline.samples.len() > 8, "samples");
            ck
        })
    }

    /// The report's snapshot before the first exit, and the peaks.
    #[test]
    fn the_reports_snapshot_and_peaks_are_checked() {
        let bytes = report_checkpoint_bytes();
        // Restores as it is, and runs on.
        run_forged_from(bytes, |_| {}).expect("the real checkpoint");
        // A snapshot before any process exited.
        refused_or_shown("early snapshot", "no process has finished", |m| {
            m.snapshot = Some(crate::report::MemorySnapshot::of(&m.kernel));
        });
        type Forge = fn(&mut crate::report::MemorySnapshot);
        let forgeries: [(&str, &str, Forge); 8] = [
            ("frames free", "not the 128 frames", |s| s.frames_free += 1),
            ("page tables", "page-table frames, more than", |s| {
                s.page_table_frames = 129;
            }),
            ("buddy blocks", "free blocks of order 0", |s| {
                s.fragmentation.free_blocks[0] = u64::MAX;
            }),
            ("buddy index", "buddy figures", |s| {
                for x in &mut s.fragmentation.extfrag_index {
                    *x = crate::alloc::Milli::REQUEST_SUCCEEDS;
                }
            }),
            ("buddy free pages", "buddy figures", |s| {
                s.fragmentation.free_pages += 1;
            }),
            ("slab objects", "live objects", |s| {
                let c = s.slabs.iter_mut().find(|c| c.slabs > 0).expect("a slab");
                c.active_objects = c.total_objects + 1;
            }),
            ("slab counts", "do not fit", |s| {
                s.slabs[0].partial_slabs = u64::MAX;
            }),
            ("slab figure", "not those its geometry", |s| {
                let c = s.slabs.iter_mut().find(|c| c.slabs > 0).expect("a slab");
                c.internal_fragmentation_bytes += 8;
            }),
        ];
        for (what, expect, forge) in forgeries {
            refused_or_shown_from(bytes, what, expect, |m| {
                forge(m.snapshot.as_mut().expect("a snapshot"));
            });
        }
        refused_or_shown_from(bytes, "past the peak", "past the peaks", |m| {
            let used = m.snapshot.as_ref().expect("a snapshot").frames_used;
            m.peak_frames = used - 1;
            m.peak_table_frames = m.peak_table_frames.min(used - 1);
        });
        refused_or_shown_from(bytes, "slab caches", "caches, not the kernel's", |m| {
            m.snapshot.as_mut().expect("a snapshot").slabs.pop();
        });
        refused_or_shown_from(bytes, "slabs taken", "slabs taken", |m| {
            let s = m.snapshot.as_mut().expect("a snapshot");
            s.slabs[0].slabs_allocated += 1;
        });
        // The text report multiplies the page-table peak by the memory's bytes.
        refused_or_shown_from(bytes, "page-table peak", "peaks", |m| {
            m.peak_table_frames = super::COUNTER_LIMIT;
        });
        refused_or_shown_from(bytes, "peak", "peaks", |m| {
            m.peak_frames = 129;
        });
    }

    /// The timeline's samples, target, spacing and next sample.
    #[test]
    fn the_timelines_samples_are_checked() {
        let bytes = report_checkpoint_bytes();
        refused_or_shown_from(bytes, "points", "not the configuration's 200", |m| {
            *m.timeline.forge_points() = u32::MAX;
        });
        refused_or_shown_from(bytes, "interval", "not 1024 doubled", |m| {
            m.timeline.interval = 3000;
        });
        refused_or_shown_from(bytes, "too many samples", "more than twice", |m| {
            let early = (1..=400).map(|r| crate::report::Sample {
                references: r,
                ..crate::report::Sample::default()
            });
            m.timeline.samples.splice(0..0, early);
        });
        refused_or_shown_from(bytes, "out of order", "goes back on sample 1", |m| {
            m.timeline.samples.swap(1, 2);
        });
        refused_or_shown_from(bytes, "a later sample", "is past the run now", |m| {
            let s = m.timeline.samples.last_mut().expect("a sample");
            s.faults += 1_000_000;
        });
        refused_or_shown_from(
            bytes,
            "a sample of the future",
            "is past the run now",
            |m| {
                let s = m.timeline.samples.last_mut().expect("a sample");
                s.references += 100_000;
                m.schedule.next_sample = s.references + m.timeline.interval;
            },
        );
        refused_or_shown_from(bytes, "a figure", "timeline sample 0: tlb_misses", |m| {
            m.timeline.samples[0].tlb_misses = u64::MAX;
        });
        refused_or_shown_from(bytes, "frames", "frames used of 128", |m| {
            m.timeline.samples[0].frames_used = 129;
        });
        refused_or_shown_from(bytes, "a pid", "pid 999, no process", |m| {
            m.timeline.samples[0].resident.insert(999, 1);
        });
        // Without the check, a restored run never sampled again.
        refused_or_shown_from(bytes, "next sample", "the next sample is due", |m| {
            m.schedule.next_sample = u64::MAX;
        });
    }

    /// The memory digests of the processes that exited.
    #[test]
    fn the_memory_digests_are_checked() {
        let bytes = report_checkpoint_bytes();
        refused_or_shown_from(bytes, "a live process", "has not exited", |m| {
            let live = m.kernel.processes().next().expect("a process").pid;
            let d = &mut m.digests[0];
            d.pid = live;
            d.name = m.processes[&live].name.clone();
        });
        refused_or_shown_from(bytes, "no such process", "no process of the run", |m| {
            m.digests[0].pid = crate::addr::Pid::new(999);
        });
        refused_or_shown_from(bytes, "twice", "a second digest", |m| {
            let d = m.digests[0].clone();
            m.digests.push(d);
        });
        refused_or_shown_from(bytes, "name", "named 'forged'", |m| {
            m.digests[0].name = "forged".into();
        });
        refused_or_shown_from(bytes, "digest", "16 hexadecimal digits", |m| {
            m.digests[0].digest = "0123456789abcdeX".into();
        });
        refused_or_shown_from(bytes, "killed", "was killed", |m| {
            let pid = m.digests[0].pid;
            m.processes.get_mut(&pid).expect("its report").killed =
                Some(crate::kernel::SegvReason::NoVma);
        });
    }

    /// The checkpoint records against the checkpoints taken, each other,
    /// the run's references and the configuration.
    #[test]
    fn the_checkpoint_records_match_the_checkpoints_taken() {
        let bytes = report_checkpoint_bytes();
        let n = machine(bytes).ckpt.records.len();
        let of = |records: usize, taken: usize| format!("{records} records of {taken} taken");
        refused_or_shown_from(bytes, "one taken more", &of(n, n + 1), |m| {
            m.ckpt.taken += 1;
        });
        refused_or_shown_from(bytes, "a record dropped", &of(n - 1, n), |m| {
            m.ckpt.records.remove(2);
        });
        refused_or_shown_from(bytes, "a record too many", &of(n + 1, n), |m| {
            let r = m.ckpt.records[5].clone();
            m.ckpt.records.push(r);
        });
        type Forge = fn(&mut crate::checkpoint::CheckpointRecord);
        let forgeries: [(usize, &str, Forge); 8] = [
            (2, "numbered 7", |r| r.seq = 7),
            (3, "a full checkpoint after the first", |r| r.full = true),
            (0, "the first checkpoint is not full", |r| r.full = false),
            (3, "before the previous one's", |r| r.references = 10),
            (5, "past the run's", |r| r.references = 1_000_000),
            (1, "bytes saved", |r| r.bytes_saved += 1),
            (1, "the trackers are not", |r| {
                r.soft_dirty = if r.soft_dirty.is_some() {
                    None
                } else {
                    Some(3)
                };
            }),
            (4, "not the chain's", |r| {
                r.file = Some("ckpt-000004.vmck\nforged line".into());
                r.file_bytes = Some(1);
            }),
        ];
        for (i, expect, forge) in forgeries {
            let what = format!("checkpoint record {i}");
            refused_or_shown_from(bytes, &what, expect, |m| {
                forge(&mut m.ckpt.records[i]);
            });
        }
        refused_or_shown_from(bytes, "last id", "the last id", |m| {
            m.ckpt.last_id = m.ckpt.last_id.map(|id| id ^ 1);
        });
    }

    /// The host's record of written chunks and the timeline's spacing.
    #[test]
    fn the_host_record_and_the_timeline_are_checked() {
        refused_or_shown("a chunk past memory", "chunk 18446744073709551615", |m| {
            m.host_dirty = Some(vec![3, u64::MAX]);
        });
        refused_or_shown("a chunk just past memory", "chunk 128, past", |m| {
            m.host_dirty = Some(vec![128]);
        });
        refused_or_shown("timeline interval", "interval", |m| {
            m.timeline.interval = u64::MAX;
        });
    }

    /// A checkpoint of a parent whose fork of its child is still to come
    /// (after 1,000 references; the checkpoint is at 500).
    fn fork_checkpoint_bytes() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| fork_checkpoint_of("flat"))
    }

    /// The fork checkpoint's run with the parent in a `layout` address
    /// space (`standard`: its scan is outside every area, and it is
    /// killed at its first reference).
    fn fork_checkpoint_of(layout: &str) -> Vec<u8> {
        {
            let scenario = Scenario::parse(
                &format!(
                    r#"
                [[process]]
                name = "parent"
                layout = "{layout}"
                trace = "synth:scan,bytes=256KiB,stride=512,write=1,passes=2"
                fork = [{{ child = "child", after = 1000 }}]
                [[process]]
                name = "child"
                trace = "synth:scan,bytes=64KiB,stride=4096"
                "#
                ),
                "fork.toml",
                std::path::Path::new("."),
            )
            .expect("scenario");
            let b = ConfigBuilder::preset(None)
                .and_then(|b| b.set("memory.frames=256"))
                .expect("set");
            let mut sim = Simulation::new(b.build().expect("config")).expect("machine");
            sim.start(&scenario).expect("start");
            sim.advance(500, &mut (), None).expect("run");
            sim.checkpoint().expect("checkpoint").as_bytes().to_vec()
        }
    }

    /// A process killed before the checkpoint leaves the root register at
    /// its freed table (no process is current; the next switch loads the
    /// register): the checkpoint restores and runs. It was refused
    /// ("root register ... is not at a page table") before the check let
    /// a register no one reads be.
    #[test]
    fn a_checkpoint_after_a_process_was_killed_restores() {
        let bytes = fork_checkpoint_of("standard");
        let m = machine(&bytes);
        assert!(
            m.current.is_none() && m.schedule.procs[0].done,
            "the parent was killed"
        );
        let (root, _) = m.mmu.context();
        assert_ne!(root, PhysAddr::default(), "the register names its table");
        let ck = Checkpoint::from_bytes(bytes, "killed.vmck").expect("read");
        let mut sim = Simulation::restore(&ck, &[]).expect("restore");
        sim.run_until(sim.references() + 2_000, &mut ())
            .expect("run");
    }

    /// The fork checkpoint with its scenario forged, restored and (if
    /// accepted) run past the fork and ended.
    fn run_forged_scenario(forge: impl FnOnce(&mut Scenario)) -> Result<(), String> {
        let bytes = fork_checkpoint_bytes();
        let (_, _, range) = sections(bytes)
            .into_iter()
            .find(|s| &s.0 == b"SCEN")
            .expect("SCEN");
        type Scen = (Scenario, Vec<Option<crate::sim::inputs::InputPosition>>);
        let mut scen: Scen = postcard::from_bytes(&bytes[range]).expect("decode");
        forge(&mut scen.0);
        let forged = with_section(
            bytes,
            b"SCEN",
            &postcard::to_allocvec(&scen).expect("encode"),
        );
        let ck = Checkpoint::from_bytes(forged, "forged.vmck").map_err(|e| e.to_string())?;
        let mut sim = Simulation::restore(&ck, &[]).map_err(|e| e.to_string())?;
        let _ = sim.run_until(sim.references() + 3_000, &mut ());
        let _ = sim.finish();
        Ok(())
    }

    /// A forged scenario is refused as a scenario file would be: before
    /// the check, a fork of a process past the scenario's indexed past the
    /// processes when it happened (a panic).
    #[test]
    fn a_forged_scenario_is_refused() {
        run_forged_scenario(|_| {}).expect("the unforged checkpoint restores and runs");
        type Case = (&'static str, &'static str, fn(&mut Scenario));
        let cases: [Case; 6] = [
            ("fork past the processes", "makes process 7", |s| {
                s.processes[0].forks[0].child = 7;
            }),
            ("fork of itself", "makes process 0", |s| {
                s.processes[0].forks[0].child = 0;
            }),
            ("forked twice", "forked twice", |s| {
                let f = s.processes[0].forks[0].clone();
                s.processes[0].forks.push(f);
            }),
            ("vfork not waited for", "vfork", |s| {
                s.processes[0].forks[0].vfork = true;
                s.processes[0].forks[0].wait = false;
            }),
            ("parent", "its parent", |s| s.processes[1].parent = None),
            ("empty mmap", "mmap 0 is empty", |s| {
                s.processes[1].mmap.push(vmsim_trace::scenario::MmapSpec {
                    addr: None,
                    len: 0,
                    prot: vmsim_trace::scenario::MmapProt::RW,
                    shared: false,
                });
            }),
        ];
        for (what, expect, forge) in cases {
            match run_forged_scenario(forge) {
                Ok(()) => panic!("{what}: the forged scenario was accepted (and ran)"),
                Err(e) => {
                    assert!(!e.contains('\n'), "{what}: {e}");
                    assert!(e.contains("section SCEN"), "{what}: {e}");
                    assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
                }
            }
        }
    }

    /// A fork still to come whose child has already started (the fork
    /// would start it again over its running process) is refused.
    #[test]
    fn a_fork_still_to_come_of_a_started_process_is_refused() {
        refused_from(
            fork_checkpoint_bytes(),
            "started child",
            "still to come",
            |m| {
                assert_eq!(m.schedule.procs[0].next_fork, 0, "the fork is to come");
                m.schedule.procs[1].pid = m.schedule.procs[0].pid;
            },
        );
    }

    #[test]
    fn the_unforged_checkpoint_restores_and_runs() {
        let mut sim = restore_forged(|_| {}).expect("restore");
        sim.run_until(sim.references() + 2_000, &mut ())
            .expect("run");
    }

    #[test]
    fn a_tlb_entry_for_a_frame_outside_memory_is_refused() {
        refused("frame outside memory", "not an aligned frame inside", |m| {
            let size = 128 * 4096;
            let e = TlbEntry::new(
                Asid::new(1),
                VirtAddr::new(0x4000_0000),
                crate::addr::PageSize::SIZE_4K,
                PhysAddr::new_unchecked(size),
            )
            .with_perms(Perms::READ | Perms::USER);
            m.mmu
                .tlb_mut()
                .fill(e, VirtAddr::new(0x4000_0000), AccessKind::Read);
        });
        refused(
            "frame far outside memory",
            "not an aligned frame inside",
            |m| {
                let (l, a, s) = first_valid(m);
                let (e, _) = m.mmu.tlb_mut().forge_array(l, a).forge_slot(s);
                *e.forge_fields().1 = PhysAddr::new_unchecked((1 << 52) - 4096);
            },
        );
    }

    #[test]
    fn a_tlb_entry_whose_sizes_do_not_fit_is_refused() {
        refused("granule above page", "above its page shift", |m| {
            let (l, a, s) = first_valid(m);
            let (e, _) = m.mmu.tlb_mut().forge_array(l, a).forge_slot(s);
            *e.forge_fields().5 = 11;
        });
        refused(
            "a size the array does not hold",
            "does not hold that size",
            |m| {
                let (l, a, s) = first_valid(m);
                let (e, tag) = m.mmu.tlb_mut().forge_array(l, a).forge_slot(s);
                let f = e.forge_fields();
                *f.0 >>= 9;
                *f.1 = PhysAddr::new_unchecked(0);
                *f.4 = 21;
                *f.5 = 21;
                *tag = *f.0;
            },
        );
        refused("a shift that is no page size", "is not a page size", |m| {
            let (l, a, s) = first_valid(m);
            let (e, _) = m.mmu.tlb_mut().forge_array(l, a).forge_slot(s);
            *e.forge_fields().5 = 60;
        });
        refused("an entry in the wrong set", "belongs in set", |m| {
            let (l, a, s) = first_valid(m);
            let array = m.mmu.tlb_mut().forge_array(l, a);
            if array.sets() == 1 {
                // Fully associative: every page belongs in set 0; forge the tag instead.
                let (_, tag) = array.forge_slot(s);
                *tag ^= 1;
                return;
            }
            let (e, tag) = array.forge_slot(s);
            *e.forge_fields().0 += 1;
            *tag += 1;
        });
    }

    #[test]
    fn a_tlb_entry_with_an_asid_out_of_range_is_refused() {
        refused("ASID out of range", "ASID 1000 is out of range", |m| {
            let (l, a, s) = first_valid(m);
            let (e, _) = m.mmu.tlb_mut().forge_array(l, a).forge_slot(s);
            *e.forge_fields().3 = Asid::new(1000);
        });
        refused("ASID register", "ASID register 999", |m| {
            *m.mmu.forge_context().1 = Asid::new(999);
        });
    }

    #[test]
    fn tlb_counts_memos_and_replacement_state_must_be_the_slots() {
        refused("per-size counts", "entry counts", |m| {
            let (l, a, _) = first_valid(m);
            m.mmu.tlb_mut().forge_array(l, a).forge_live()[0] += 1;
        });
        refused("memo at the wrong slot", "memo", |m| {
            let (key, array, slot, entry) = m.mmu.tlb_mut().forge_memo(0, 0);
            *key = 0x1234;
            *array = 0;
            *slot = 100_000;
            *entry = TlbEntry::default();
        });
        refused("memo next place", "next place", |m| {
            m.mmu.tlb_mut().forge_ticks().2[0] = 7;
        });
        refused("probe tables", "probe order", |m| {
            m.mmu.tlb_mut().forge_fill_to(0)[0][12] = (200, 12);
        });
        // The first array with true-LRU state (stamps, or a list when it has many ways).
        let lru = |m: &mut Machine| {
            let shape = m.mmu.tlb_mut().forge_shape();
            let mut found = None;
            for (l, &arrays) in shape.iter().enumerate() {
                for a in 0..arrays {
                    let v = m.mmu.tlb_mut().forge_array(l, a).forge_victims();
                    if found.is_none() && !v.forge_stamps().0.is_empty() {
                        found = Some((l, a));
                    }
                }
            }
            found.expect("an LRU array in the preset")
        };
        let lru_bytes = lru_checkpoint_bytes();
        refused_from(lru_bytes, "LRU stamps", "replacement state", |m| {
            let (l, a) = lru(m);
            let v = m.mmu.tlb_mut().forge_array(l, a).forge_victims();
            let (stamps, clock) = v.forge_stamps();
            stamps[0] = *clock + 10;
        });
        restore_forged_from(lru_bytes, |_| {}).expect("the LRU checkpoint restores");
    }

    #[test]
    fn a_walk_cache_entry_for_a_frame_without_a_table_is_refused() {
        // A data page of the first process: inside memory, not a table.
        let bytes = checkpoint_bytes();
        let m = machine(bytes);
        let frames = m.kernel.frames().all();
        let data = frames
            .iter()
            .position(|f| f.use_ == crate::kernel::FrameUse::Data)
            .expect("a data frame") as u64;
        refused(
            "walk cache at a data frame",
            "not a page-table frame",
            |m| {
                let depths = m.mmu.tlb_mut().walk_cache_mut().forge_depths();
                assert!(!depths.is_empty(), "the preset has walk caches");
                let depth = *depths[0];
                m.mmu.tlb_mut().walk_cache_mut().fill(
                    Asid::new(1),
                    VirtAddr::new(0x4000_0000),
                    depth,
                    PhysAddr::new_unchecked(data * 4096),
                    Perms::all(),
                );
            },
        );
        refused("walk cache outside memory", "inside the", |m| {
            let slots = m.mmu.tlb_mut().walk_cache_mut().forge_slots();
            let (_, table, _, _, valid) = slots.into_iter().next().expect("a slot");
            *table = PhysAddr::new_unchecked(1 << 40);
            *valid = true;
        });
        refused("walk cache depth", "depths and sizes", |m| {
            *m.mmu.tlb_mut().walk_cache_mut().forge_depths()[0] = 7;
        });
    }

    #[test]
    fn scheduler_and_machine_fields_are_checked() {
        refused("turn", "turn 9", |m| m.schedule.turn = 9);
        refused("position", "past its batch", |m| {
            m.schedule.procs[0].pos = m.schedule.procs[0].batch.len() + 1;
        });
        refused("waiting", "waits for process 5", |m| {
            m.schedule.procs[0].waiting_for = Some(5);
        });
        refused("slice", "slice", |m| m.schedule.slice = Some((4, 10)));
        refused("quantum", "quantum", |m| m.schedule.quantum = 0);
        refused("forks", "next fork", |m| m.schedule.procs[1].next_fork = 3);
        refused("access size", "an access of 4294967295 bytes", |m| {
            let p = &mut m.schedule.procs[0];
            let at = p.pos;
            p.batch[at].size = u32::MAX;
        });
        refused("current", "current process", |m| {
            m.current = Some(crate::addr::Pid::new(999));
        });
        refused("page mask", "page size", |m| m.page_mask = 0xfff_ffff);
        refused("root register", "root register", |m| {
            *m.mmu.forge_context().0 = PhysAddr::new_unchecked(0x1000 * 100 + 8);
        });
    }

    /// One random edit of decoded machine state: which piece, and values.
    #[derive(Debug, Clone)]
    struct Edit {
        what: u8,
        at: prop::sample::Index,
        field: u8,
        value: u64,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let value = prop_oneof![
            0u64..64,
            Just(128 * 4096),
            Just(128 * 4096 - 4096),
            any::<u64>(),
            any::<u16>().prop_map(u64::from),
        ];
        (0u8..7, any::<prop::sample::Index>(), 0u8..8, value).prop_map(
            |(what, at, field, value)| Edit {
                what,
                at,
                field,
                value,
            },
        )
    }

    /// Physical addresses wider than this do not decode (`PhysAddr`'s guarantee).
    const PHYS: u64 = (1 << crate::addr::MAX_PHYS_BITS) - 1;

    fn apply(m: &mut Machine, e: &Edit) {
        let shape = m.mmu.tlb_mut().forge_shape();
        let arrays: Vec<(usize, usize)> = shape
            .iter()
            .enumerate()
            .flat_map(|(l, &n)| (0..n).map(move |a| (l, a)))
            .collect();
        let v = e.value;
        match e.what {
            0 | 1 if !arrays.is_empty() => {
                let (l, a) = arrays[e.at.index(arrays.len())];
                let array = m.mmu.tlb_mut().forge_array(l, a);
                // Mostly valid slots: that is where the damage is.
                let valid: Vec<usize> = (0..array.capacity())
                    .filter(|&s| array.holds_slot(s))
                    .collect();
                let slot = if e.what == 0 && !valid.is_empty() {
                    valid[e.at.index(valid.len())]
                } else {
                    e.at.index(array.capacity())
                };
                let (entry, tag) = array.forge_slot(slot);
                let f = entry.forge_fields();
                match e.field {
                    0 => *f.0 = v,
                    1 => *f.1 = PhysAddr::new_unchecked(v & PHYS),
                    2 => *f.2 = PhysAddr::new_unchecked(v & PHYS),
                    3 => *f.3 = Asid::new(v as u16),
                    4 => *f.4 = v as u8,
                    5 => *f.5 = v as u8,
                    6 => *f.6 = v as u8,
                    _ => *tag = v,
                }
            }
            6 if !arrays.is_empty() => {
                let (l, a) = arrays[e.at.index(arrays.len())];
                let v32 = v as u32;
                let victims = m.mmu.tlb_mut().forge_array(l, a).forge_victims();
                let (stamps, clock) = victims.forge_stamps();
                if !stamps.is_empty() {
                    let n = stamps.len();
                    match e.field % 2 {
                        0 => stamps[e.at.index(n)] = v,
                        _ => *clock = v,
                    }
                } else if let Some((prev, next, head)) = victims.forge_order() {
                    let list = match e.field % 3 {
                        0 => prev,
                        1 => next,
                        _ => head,
                    };
                    let n = list.len();
                    list[e.at.index(n)] = v32;
                }
            }
            2 => {
                let mut slots = m.mmu.tlb_mut().walk_cache_mut().forge_slots();
                if slots.is_empty() {
                    return;
                }
                let n = slots.len();
                let (prefix, table, stamp, asid, valid) = &mut slots[e.at.index(n)];
                match e.field % 5 {
                    0 => **prefix = v,
                    1 => **table = PhysAddr::new_unchecked(v & PHYS),
                    2 => **stamp = v,
                    3 => **asid = Asid::new(v as u16),
                    _ => **valid = v & 1 == 1,
                }
            }
            3 => {
                let side = usize::from(e.field & 1);
                let i = e.at.index(4);
                let (key, array, slot, entry) = m.mmu.tlb_mut().forge_memo(side, i);
                match e.field / 2 {
                    0 => *key = v,
                    1 => *array = v as u8,
                    2 => *slot = v as u32,
                    _ => *entry.forge_fields().1 = PhysAddr::new_unchecked(v & PHYS),
                }
            }
            4 => {
                let (tick, settled, next) = m.mmu.tlb_mut().forge_ticks();
                match e.field % 3 {
                    0 => *tick = v,
                    1 => *settled = v,
                    _ => next[0] = v as usize,
                }
            }
            5 => {
                let s = &mut m.schedule;
                let n = s.procs.len();
                let p = &mut s.procs[e.at.index(n)];
                match e.field {
                    0 => s.turn = v as usize,
                    1 => s.slice = Some((v as usize % 8, v)),
                    2 => p.pos = v as usize,
                    3 => p.waiting_for = Some(v as usize % 8),
                    4 => p.next_fork = v as usize,
                    5 => p.done = !p.done,
                    6 => m.current = Some(crate::addr::Pid::new(v as u32)),
                    _ => s.quantum = v,
                }
            }
            _ => {}
        }
    }

    /// Restores the checkpoint `bytes` with the pager's `lie` told (it
    /// must have something to tell it about) and runs it on.
    fn pager_refused(bytes: &[u8], lie: PagerForgery, expect: &str) {
        refused_in_mach(bytes, &format!("{lie:?}"), expect, |m| {
            assert!(m.kernel.forge_pager(lie), "{lie:?}: nothing to forge");
        });
    }

    /// As [`refused_or_shown_from`], for what the kernel's invariants may
    /// refuse too (their error names sections MACH and PAGE).
    fn refused_in_mach(bytes: &[u8], what: &str, expect: &str, forge: impl FnOnce(&mut Machine)) {
        let result = run_forged_from(bytes, forge);
        let e = result.expect_err(&format!("{what}: the forged state was accepted (and ran)"));
        assert!(!e.contains('\n'), "{what}: {e}");
        assert!(e.contains("MACH"), "{what}: {e}");
        assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
    }

    /// The pager's ids, frames, reverse map and swap device against each
    /// other and the configuration (`kernel/reclaim/restored.rs`).
    #[test]
    fn the_pagers_ids_frames_and_reverse_map_are_checked() {
        let bytes = checkpoint_bytes();
        for (lie, expect) in [
            (PagerForgery::ShortFrameTable, "frames and"),
            (PagerForgery::FreeIdResident, "free page id"),
            (PagerForgery::ResidentInFreeFrame, "holds no data page"),
            (
                PagerForgery::InPolicyNotResident,
                "in the policy but not resident",
            ),
            (PagerForgery::CacheOtherId, "holds another page"),
            (PagerForgery::RmapOtherPage, "reverse map"),
            (PagerForgery::RmapTwice, "reverse map"),
            (PagerForgery::RmapDropped, "reverse map"),
            (PagerForgery::HighWatermark, "not the configuration's"),
            (PagerForgery::Evictions, "evictions"),
            (PagerForgery::CleanedPastMemory, "recorded as cleaned"),
        ] {
            pager_refused(bytes, lie, expect);
        }
    }

    /// The swap device against the pager: its slots in use, its slot
    /// count, its peak and its file.
    #[test]
    fn the_swap_devices_slots_and_file_are_checked() {
        let bytes = checkpoint_bytes();
        for (lie, expect) in [
            (PagerForgery::CacheSlotRenamed, "slots the kernel tracks"),
            (PagerForgery::DeviceSlots, "the configuration gives"),
            (PagerForgery::DevicePeak, "a peak of 0"),
        ] {
            pager_refused(bytes, lie, expect);
        }
        // A file of the user's that the configuration never named: left
        // as it was (a restored run truncated it at its first swap-out).
        let dir = tempfile::tempdir().expect("dir");
        let path: &'static std::path::Path =
            Box::leak(dir.path().join("precious.txt").into_boxed_path());
        std::fs::write(path, b"the user's data").expect("write");
        let result = run_forged(|m| {
            assert!(m.kernel.forge_pager(PagerForgery::SwapFile(path)));
        });
        let kept = std::fs::read(path).expect("read");
        assert_eq!(kept, b"the user's data", "the user's file was overwritten");
        let e = result.expect_err("a swap file not in the configuration was accepted");
        assert!(
            e.contains("section MACH") && e.contains("precious.txt"),
            "{e}"
        );
    }

    /// The replacement policies' own fields beyond their lists: each
    /// policy's checkpoint with one field forged.
    #[test]
    fn the_policies_counters_and_settings_are_checked() {
        let linux = checkpoint_with(None, &["kernel.policy=linux"]);
        pager_refused(&linux, PagerForgery::LinuxShadowLate, "later than the age");
        pager_refused(&linux, PagerForgery::LinuxAge, "beyond any run");
        let aging = checkpoint_with(None, &["kernel.policy=aging"]);
        pager_refused(&aging, PagerForgery::AgingSeq, "past 2^62");
        pager_refused(
            &aging,
            PagerForgery::AgingInterval,
            "not the configuration's",
        );
        pager_refused(
            checkpoint_bytes(),
            PagerForgery::ClockInsert,
            "inserts Clear",
        );
        let clock_pro = checkpoint_with(None, &["kernel.policy=clock-pro"]);
        pager_refused(&clock_pro, PagerForgery::ClockProFrames, "frames, not the");
    }

    /// The slab allocator's slabs: their free object numbers against
    /// their live objects, and the cache's count.
    #[test]
    fn the_slabs_objects_are_checked() {
        refused_in_mach(
            checkpoint_bytes(),
            "no free object on a partial slab",
            "record",
            |m| {
                let (free, _) = m
                    .kernel
                    .forge_task_cache()
                    .forge_first_slab()
                    .expect("a slab");
                free.clear();
            },
        );
        refused_in_mach(
            checkpoint_bytes(),
            "a live object on the free list",
            "record",
            |m| {
                let (free, _) = m
                    .kernel
                    .forge_task_cache()
                    .forge_first_slab()
                    .expect("a slab");
                // Objects are handed out from the end of the list, lowest
                // number first: object 0 is live.
                if let Some(last) = free.last_mut() {
                    *last = 0;
                }
            },
        );
        refused_in_mach(
            checkpoint_bytes(),
            "a live object counted twice",
            "counted",
            |m| {
                let (_, active) = m
                    .kernel
                    .forge_task_cache()
                    .forge_first_slab()
                    .expect("a slab");
                *active += 1;
            },
        );
    }

    /// The slab caches' geometry against a fresh kernel's
    /// (`kernel/restored_geometry.rs`): each cache's object size, slot,
    /// slab order, objects per slab and empty slabs kept, and the number
    /// of caches.
    #[test]
    fn the_slabs_geometry_is_the_configurations() {
        let bytes = checkpoint_bytes();
        type Shape<'a> = (
            &'a mut u64,
            &'a mut u64,
            &'a mut u32,
            &'a mut u32,
            &'a mut u64,
        );
        type Forge = fn(Shape<'_>);
        // A slab order that its arithmetic accepts, and one object fewer
        // per slab, are refused by the kernel's invariants already (the
        // slabs' blocks are not the buddy allocator's of that order; a
        // free object number past the slab's).
        let forgeries: [(&str, &str, Forge); 5] = [
            ("object size", "not the configuration's", |(size, ..)| {
                *size -= 8;
            }),
            ("slot", "not the configuration's", |(_, slot, ..)| {
                *slot += 8
            }),
            ("order", "order", |(_, _, order, per, _)| {
                *order += 1;
                *per *= 2;
            }),
            ("objects per slab", "geometry", |(_, _, _, per, _)| {
                *per -= 1;
            }),
            (
                "empty slabs kept",
                "not the configuration's",
                |(.., keep)| {
                    *keep = 4;
                },
            ),
        ];
        for (what, expect, forge) in forgeries {
            refused_in_mach(bytes, what, expect, |m| {
                forge(m.kernel.forge_task_cache().forge_shape());
            });
        }
        refused_in_mach(
            bytes,
            "an extra cache",
            "4 caches, not the kernel's 3",
            |m| {
                m.kernel
                    .forge_slab()
                    .create_cache("forged", 64, 8)
                    .expect("a cache");
            },
        );
    }

    /// The buddy allocator's region against a fresh kernel's.
    /// The per-process report lines (figures already at most 2^56 each):
    /// filed under their own pid, named as the run names them, a parent
    /// of the run, one per started process. Without the check each was
    /// accepted, ran and was reported as written (the name with its new
    /// line put a line of the forger's into the text report).
    #[test]
    fn the_per_process_report_lines_are_checked() {
        refused_or_shown("a name with a new line", "named", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.name = "p0\nprocesses    1    forged".into();
        });
        refused_or_shown("another process's name", "named", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.name = "p1".into();
        });
        refused_or_shown("filed under another pid", "filed under", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.pid = crate::addr::Pid::new(77);
        });
        refused_or_shown("a process never started", "never started", |m| {
            let mut r = m.processes.values().next().cloned().expect("a line");
            r.pid = crate::addr::Pid::new(77);
            m.processes.insert(r.pid, r);
        });
        refused_or_shown("a line dropped", "has no report line", |m| {
            let (&pid, _) = m.processes.iter().last().expect("a process");
            m.processes.remove(&pid);
            // Out of the timeline's samples too (they name it).
            for s in &mut m.timeline.samples {
                s.resident.remove(&pid.as_u32());
            }
        });
        refused_or_shown("a parent of no process", "its parent 77", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.parent = Some(crate::addr::Pid::new(77));
        });
        refused_or_shown("its own parent", "is not another process", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.parent = Some(p.pid);
        });
        refused_or_shown("page-table frames", "page-table frames, more than", |m| {
            let p = m.processes.values_mut().next().expect("a process");
            p.page_table_frames = 129;
        });
    }

    #[test]
    fn the_buddy_allocators_region_is_the_configurations() {
        let bytes = checkpoint_bytes();
        refused_in_mach(bytes, "the largest order", "buddy allocator", |m| {
            let (_, _, max_order) = m.kernel.forge_buddy().forge_region();
            *max_order += 1;
        });
        refused_in_mach(bytes, "the first frame", "buddy allocator", |m| {
            let (first, _, _) = m.kernel.forge_buddy().forge_region();
            *first += 1;
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Random edits of decoded machine state (TLB entries and tags,
        /// walk-cache entries, memos, ticks, the scheduler): restoring is
        /// refused with one line naming MACH, or the state restores and
        /// runs on without a panic.
        #[test]
        fn forged_machine_states_are_refused_or_run(
            lru in any::<bool>(),
            edits in proptest::collection::vec(edit(), 1..4),
        ) {
            let bytes = if lru { lru_checkpoint_bytes() } else { checkpoint_bytes() };
            match restore_forged_from(bytes, |m| for e in &edits { apply(m, e) }) {
                Err(e) => {
                    prop_assert!(!e.contains('\n'), "{}", e);
                    prop_assert!(e.starts_with("forged.vmck: ") || e.starts_with("(checkpoint"), "{}", e);
                }
                Ok(mut sim) => {
                    let _ = sim.run_until(sim.references() + 3_000, &mut ());
                }
            }
        }
    }
}
