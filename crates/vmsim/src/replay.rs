//! Rewind-replay debugging over a run's checkpoints, as the course notes
//! describe it: to find which reference last wrote an address before
//! reference REF, restore the newest checkpoint before REF and replay
//! forward watching the address; if nothing wrote it in that span, rewind
//! to the checkpoint before and replay that span, older and older, until
//! the writer is found (or the run's start is reached). Also: run to any
//! reference and show the state of an address.
//!
//! Owns the search and the watching; restoring is `crate::checkpoint`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vmsim_trace::Access;

use crate::addr::{Pid, VirtAddr};
use crate::checkpoint::{Chain, CheckpointError};
use crate::paging::PteFlags;
use crate::sim::{Observer, SimError, Simulation};

/// The reference that wrote the watched address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// Its number in the run (the first reference is 1).
    pub reference: u64,
    /// The process.
    pub pid: Pid,
    /// The instruction that made it: the last instruction fetch of the
    /// process before it (lackey traces record one per instruction).
    pub instruction: Option<u64>,
    /// The access itself: address, size and kind.
    pub va: u64,
    /// Bytes written.
    pub size: u32,
    /// `S` (store) or `M` (modify).
    pub kind: char,
}

/// One span replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The checkpoint restored (`None`: the run's start).
    pub checkpoint: Option<u64>,
    /// References from (exclusive) ...
    pub from: u64,
    /// ... to (inclusive).
    pub to: u64,
    /// Whether the writer was found in it.
    pub found: bool,
}

/// What a rewind-replay search found and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The address watched.
    pub va: u64,
    /// Only this process's writes (`None`: any process).
    pub pid: Option<Pid>,
    /// Writes strictly before this reference count.
    pub before: u64,
    /// The last writer, if any wrote the address.
    pub writer: Option<Writer>,
    /// The spans replayed, newest first.
    pub spans: Vec<Span>,
    /// References replayed in all.
    pub replayed: u64,
    /// References a replay from the run's start would have replayed.
    pub from_start: u64,
}

/// Watches writes to one address.
struct Watch {
    va: u64,
    pid: Option<Pid>,
    last_instr: std::collections::BTreeMap<Pid, u64>,
    found: Option<Writer>,
}

impl Observer for Watch {
    fn ran(&mut self, pid: Pid, first: u64, refs: &[Access]) {
        let mine = self.pid.is_none_or(|p| p == pid);
        for (i, a) in refs.iter().enumerate() {
            match a.kind {
                vmsim_trace::AccessKind::Instr => {
                    self.last_instr.insert(pid, a.va);
                }
                k if k.writes()
                    && mine
                    && a.va <= self.va
                    && self.va - a.va < u64::from(a.size) =>
                {
                    self.found = Some(Writer {
                        reference: first + i as u64,
                        pid,
                        instruction: self.last_instr.get(&pid).copied(),
                        va: a.va,
                        size: a.size,
                        kind: k.letter(),
                    });
                }
                _ => {}
            }
        }
    }
}

/// A replay could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The chain could not be read or restored.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The replayed run failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Replays `sim` (stopped at some checkpoint) up to reference `to`
/// (inclusive, or the run's end), watching `va`; returns the last writer
/// in that span and the reference count reached.
fn replay_span(
    mut sim: Simulation,
    va: u64,
    pid: Option<Pid>,
    to: u64,
) -> Result<(Option<Writer>, u64), SimError> {
    // Each process's last instruction fetch before the checkpoint.
    let last_instr = sim
        .kernel()
        .processes()
        .filter_map(|p| sim.last_instruction(p.pid).map(|i| (p.pid, i)))
        .collect();
    let mut watch = Watch {
        va,
        pid,
        last_instr,
        found: None,
    };
    sim.advance(to, &mut watch, None)?;
    Ok((watch.found, sim.references()))
}

/// Which reference last wrote `va` (of process `pid`, or of any process)
/// before reference `before` (`None`: by the end of the run), searched by
/// rewind-replay over the checkpoints in `chain`. `inputs` are candidate
/// trace files, as for a restore.
///
/// # Errors
/// The chain cannot be restored, or a replayed span fails.
pub fn last_writer(
    chain: &Chain,
    inputs: &[PathBuf],
    va: VirtAddr,
    pid: Option<Pid>,
    before: Option<u64>,
) -> Result<Answer, ReplayError> {
    let before = before.unwrap_or(u64::MAX);
    // Checkpoints by the reference count they were taken at, older first.
    let mut points: Vec<(u64, u64)> = chain
        .iter()
        .filter_map(|e| e.header.as_ref().ok().map(|h| (h.references, h.seq)))
        .filter(|&(r, _)| r < before)
        .collect();
    points.sort_unstable();
    let any = chain.last().unwrap_or(0);
    let mut spans = Vec::new();
    let mut to = before.saturating_sub(1);
    let mut covered = None;
    let writer = loop {
        let (sim, from, seq) = match points.pop() {
            Some((r, seq)) => (chain.restore(Some(seq), inputs)?, r, Some(seq)),
            None => (chain.restart(any, inputs)?, 0, None),
        };
        let (found, reached) = replay_span(sim, va.as_u64(), pid, to)?;
        // The first span tells how far the question reaches (the run may
        // end before `before`).
        covered.get_or_insert(reached);
        spans.push(Span {
            checkpoint: seq,
            from,
            to: reached,
            found: found.is_some(),
        });
        if found.is_some() || seq.is_none() {
            break found;
        }
        to = from;
    };
    Ok(Answer {
        va: va.as_u64(),
        pid,
        before,
        writer,
        replayed: spans.iter().map(|s| s.to - s.from).sum(),
        from_start: covered.unwrap_or(0),
        spans,
    })
}

/// The state of an address in one process at some reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressState {
    /// The process.
    pub pid: Pid,
    /// The process's scenario name.
    pub name: String,
    /// The VMA holding the address, as `start-end prot kind`, if any.
    pub vma: Option<String>,
    /// Where the page is: `resident`, `swapped` or `unmapped`.
    pub residence: String,
    /// The physical frame's address, if resident.
    pub frame: Option<u64>,
    /// The page-table entry's bits, if resident (`READ | WRITE | ...`).
    pub pte: Option<String>,
    /// Whether the soft-dirty tracker protects the page.
    pub write_protected: bool,
    /// [`content_hash`](crate::checkpoint::content_hash) of the page, if mapped.
    pub page_hash: Option<u64>,
    /// The 8 bytes at the address, if mapped.
    pub bytes: Option<[u8; 8]>,
}

/// What `--until` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntilState {
    /// The reference count reached.
    pub references: u64,
    /// The checkpoint restored to get there (`None`: the run's start).
    pub checkpoint: Option<u64>,
    /// References replayed from it.
    pub replayed: u64,
    /// The address, in each live process (or the one asked for).
    pub states: Vec<AddressState>,
}

/// Runs to reference `until` from the newest checkpoint at or before it and
/// shows `va` in process `pid` (or in every live process).
///
/// # Errors
/// The chain cannot be restored, or the replayed span fails.
pub fn state_at(
    chain: &Chain,
    inputs: &[PathBuf],
    va: VirtAddr,
    pid: Option<Pid>,
    until: u64,
) -> Result<UntilState, ReplayError> {
    let best = chain
        .iter()
        .filter_map(|e| e.header.as_ref().ok().map(|h| (h.references, h.seq)))
        .filter(|&(r, _)| r <= until)
        .max();
    let (mut sim, from, seq) = match best {
        Some((r, seq)) => (chain.restore(Some(seq), inputs)?, r, Some(seq)),
        None => (chain.restart(chain.last().unwrap_or(0), inputs)?, 0, None),
    };
    sim.advance(until, &mut (), None)?;
    let reached = sim.references();
    let pids: Vec<Pid> = match pid {
        Some(p) => vec![p],
        None => sim.kernel().processes().map(|p| p.pid).collect(),
    };
    let mut states = Vec::new();
    for p in pids {
        states.push(address_state(&sim, p, va)?);
    }
    Ok(UntilState {
        references: reached,
        checkpoint: seq,
        replayed: reached - from,
        states,
    })
}

fn flag_names(f: PteFlags) -> String {
    let names: Vec<&str> = f.iter_names().map(|(n, _)| n).collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(" | ")
    }
}

fn address_state(sim: &Simulation, pid: Pid, va: VirtAddr) -> Result<AddressState, SimError> {
    let k = sim.kernel();
    let err = |source| SimError::Kernel {
        process: pid.to_string(),
        source,
    };
    let space = k.space_of(pid).map_err(err)?;
    let size = k.page_size();
    let page = va.align_down(size);
    let vma = space.find(va).map(|v| {
        format!(
            "{:#x}-{:#x} {}{}{} {:?}",
            v.start.as_u64(),
            v.end.as_u64(),
            if v.prot.read { 'r' } else { '-' },
            if v.prot.write { 'w' } else { '-' },
            if v.prot.exec { 'x' } else { '-' },
            v.kind
        )
    });
    let t = k
        .tables()
        .translate(k.format(), sim.memory(), space.asid, page)
        .ok();
    let residence = if t.is_some() {
        "resident"
    } else if space.swapped.contains_key(&page.as_u64()) {
        "swapped"
    } else {
        "unmapped"
    };
    let contents = sim.page_contents(pid, page)?;
    let bytes = contents.as_ref().map(|c| {
        let off = va.page_offset(size) as usize;
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().enumerate() {
            *x = c.get(off + i).copied().unwrap_or(0);
        }
        b
    });
    Ok(AddressState {
        pid,
        name: sim.process_name(pid).unwrap_or_default(),
        vma,
        residence: residence.into(),
        frame: t.map(|t| t.frame.as_u64()),
        pte: t.map(|t| flag_names(t.flags)),
        write_protected: space.write_protected.contains(&page.as_u64()),
        page_hash: contents.as_deref().map(crate::checkpoint::content_hash),
        bytes,
    })
}
