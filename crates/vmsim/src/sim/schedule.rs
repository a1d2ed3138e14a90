//! The scheduler's state: everything the round-robin loop of
//! [`Simulation::run_until`](super::Simulation::run_until) keeps between two
//! references, as a value. A run can stop after any reference, be captured
//! (it serializes with the machine), and continue exactly.
//!
//! Owns the bookkeeping only (whose turn, how much of the slice is left,
//! where each process is in its trace, its fork points, whom it waits for);
//! the decisions are taken by the loop in `sim/mod.rs`, and the open trace
//! readers live beside this state in the simulation (they cannot be
//! serialized: `sim/inputs.rs` describes and reopens them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vmsim_trace::Access;

use crate::addr::Pid;

/// One scenario process during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Proc {
    /// Its index in the scenario.
    pub spec: usize,
    /// Its kernel pid, once started.
    pub pid: Option<Pid>,
    /// The current batch of its trace, from `pos` on still to run.
    pub batch: Vec<Access>,
    pub pos: usize,
    /// References it has made.
    pub refs: u64,
    /// Accesses taken from its trace source so far (the current batch included).
    pub consumed: u64,
    /// Index of its next fork in the scenario.
    pub next_fork: usize,
    /// The child it waits for.
    pub waiting_for: Option<usize>,
    /// Its trace ended, or it was killed.
    pub done: bool,
    /// Other pids seen in its trace (a multi-process `.vmt`), each its own
    /// process, by trace pid (ordered: they exit in this order).
    pub extra: BTreeMap<u32, Pid>,
    /// The trace pid its own references carry (the first one seen).
    pub first_trace_pid: Option<u32>,
}

impl Proc {
    pub fn new(spec: usize) -> Self {
        Self {
            spec,
            pid: None,
            batch: Vec::with_capacity(vmsim_trace::source::BATCH),
            pos: 0,
            refs: 0,
            consumed: 0,
            next_fork: 0,
            waiting_for: None,
            done: false,
            extra: BTreeMap::new(),
            first_trace_pid: None,
        }
    }
}

/// The state of a run between references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Schedule {
    /// References per time slice.
    pub quantum: u64,
    /// The scenario's processes.
    pub procs: Vec<Proc>,
    /// Where the round-robin search for the next process starts.
    pub turn: usize,
    /// The process running and what is left of its slice, if one is running.
    pub slice: Option<(usize, u64)>,
    /// References at which the observer next hears of progress.
    pub next_progress: u64,
    /// References at which the timeline takes its next sample.
    pub next_sample: u64,
    /// The last instruction address each process fetched (by kernel pid),
    /// for rewind-replay's "which instruction wrote this".
    pub last_instr: BTreeMap<Pid, u64>,
    /// Every process has finished.
    pub finished: bool,
}

impl Schedule {
    pub fn new(quantum: u64, processes: usize, first_sample: u64) -> Self {
        Self {
            quantum,
            procs: (0..processes).map(Proc::new).collect(),
            turn: 0,
            slice: None,
            next_progress: super::PROGRESS_EVERY,
            next_sample: first_sample,
            last_instr: BTreeMap::new(),
            finished: false,
        }
    }

    /// The next runnable process, round robin from `turn`.
    pub fn next_runnable(&self) -> Option<usize> {
        let n = self.procs.len();
        (0..n).map(|k| (self.turn + k) % n).find(|&i| {
            let p = &self.procs[i];
            p.pid.is_some() && !p.done && p.waiting_for.is_none_or(|c| self.procs[c].done)
        })
    }
}
