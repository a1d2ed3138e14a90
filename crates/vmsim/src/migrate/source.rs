//! The sending side: a scenario process leaves a running simulation.
//!
//! Stop-and-copy pauses it and sends everything. Pre-copy arms the
//! soft-dirty tracker for its address space (`kernel/tracking.rs`), sends
//! every page while the machine keeps running for as long as the link
//! needs to carry them, harvests the pages dirtied meanwhile and sends
//! those, round after round, until few enough are dirty (or it does not
//! converge, or `max_rounds`), then pauses it for the last dirty set and
//! its execution state. Post-copy sends the execution state and page list
//! only, and serves the pages afterwards (pushed in address order, a
//! requested one first).
//!
//! The process leaves the source only when the destination says it has
//! adopted it: until then any failure (the destination refuses, dies, the
//! link breaks) aborts the migration and the process runs on here, which
//! the report states.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::addr::{Pid, VirtAddr};
use crate::paging::PteFlags;
use crate::sim::{Observer, SimError, Simulation};

use super::MigrateError;
use super::config::MigrateMode;
use super::message::{
    Message, MsgRecv, MsgSend, Offer, PROTOCOL, PageData, PageEntry, ProcessState,
};
use super::pages::PagesWriter;
use super::report::{MigrationReport, Model, Round};

/// Pages per `Pages` message (a round takes as many messages as it needs).
const PAGES_PER_MESSAGE: usize = 256;

impl Simulation {
    /// The [`Offer`] for moving scenario process `spec` at reference `at`
    /// in `mode`, to send before the run starts. The page size of a
    /// migration is limited by the message size.
    ///
    /// # Errors
    /// No such scenario process, it forks or is multi-process, or pages
    /// too large to migrate.
    pub fn migration_offer(
        &self,
        spec: usize,
        mode: MigrateMode,
        at: u64,
    ) -> Result<Offer, MigrateError> {
        let s = self.scenario.processes.get(spec).ok_or_else(|| {
            MigrateError::Refused(format!(
                "the scenario has {} processes: there is no process {spec}",
                self.scenario.processes.len()
            ))
        })?;
        let page = self.m.kernel.page_size().bytes();
        if page > (super::message::MAX_MESSAGE as u64) / 4 {
            return Err(MigrateError::Refused(format!(
                "pages of {page} bytes are too large to migrate (at most {} bytes)",
                super::message::MAX_MESSAGE / 4
            )));
        }
        Ok(Offer {
            protocol: PROTOCOL,
            format: self.m.kernel.format().name().to_string(),
            page_size: page,
            mode,
            process: s.name.clone(),
            at,
            written_by: concat!("vmsim ", env!("CARGO_PKG_VERSION")).into(),
        })
    }

    /// The pid of scenario process `spec` if it can leave now, or why not.
    fn departure_check(&self, spec: usize) -> Result<Pid, String> {
        let p = &self.m.schedule.procs[spec];
        let name = &self.scenario.processes[spec].name;
        let Some(pid) = p.pid else {
            return Err(format!("process '{name}' has not started yet"));
        };
        if p.done {
            return Err(format!("process '{name}' has already finished"));
        }
        if p.next_fork < self.scenario.processes[spec].forks.len() {
            return Err(format!(
                "process '{name}' forks again later in its scenario: migrate it after its last fork"
            ));
        }
        if !p.extra.is_empty() {
            return Err(format!(
                "process '{name}' reads a multi-process trace: its other processes cannot follow it"
            ));
        }
        if p.waiting_for.is_some() {
            return Err(format!("process '{name}' is waiting for a child"));
        }
        let k = &self.m.kernel;
        let space = k.space_of(pid).map_err(|e| e.to_string())?;
        if space.users > 1 {
            return Err(format!(
                "process '{name}' shares its address space (vfork): it cannot leave alone"
            ));
        }
        if space
            .vmas()
            .any(|v| v.shm.is_some() || !v.kind.is_private())
        {
            return Err(format!(
                "process '{name}' maps shared memory, which does not migrate"
            ));
        }
        Ok(pid)
    }

    /// Moves scenario process `spec` out now, over `tx`/`rx`, in `mode`
    /// (the link and stopping rules are `[migrate]`). Pre-copy runs the
    /// machine forward (`observer` sees it) while rounds are in flight.
    /// Returns the source's report; if the migration could not complete
    /// its `aborted` says why and the process is still here, running.
    ///
    /// # Errors
    /// Only a failure of the simulation itself; failures of the link or
    /// the destination abort the migration instead.
    pub fn migrate_out<S: MsgSend, R: MsgRecv + Send>(
        &mut self,
        spec: usize,
        mode: MigrateMode,
        tx: &mut S,
        rx: &mut R,
        observer: &mut impl Observer,
    ) -> Result<MigrationReport, SimError> {
        let link = self.cfg.config().migrate.clone();
        let mut rep = MigrationReport {
            mode,
            process: self
                .scenario
                .processes
                .get(spec)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            start: self.references(),
            link: link.clone(),
            ..MigrationReport::default()
        };
        let pid = match self.departure_check(spec) {
            Ok(p) => p,
            Err(reason) => return Ok(abort(rep, tx, reason)),
        };
        let page_bytes = self.m.kernel.page_size().bytes();
        let mut writer = PagesWriter::new(page_bytes as usize);
        let mut had_write = BTreeSet::new();
        let mut last: Vec<u64> = Vec::new();
        let mut dirtied_bytes = 0u64;
        let mut live_time = 0u64;
        if mode == MigrateMode::PreCopy {
            self.note_writable(pid, &mut had_write)?;
            let first = self.harvest_soft_dirty(Some(pid))?;
            let mut send: Vec<u64> = first.pages.iter().map(|d| d.page.as_u64()).collect();
            let mut round = 1u32;
            loop {
                let start = self.references();
                let bytes = match self.send_pages(&mut writer, pid, round, &send, tx)? {
                    Ok(b) => b,
                    Err(e) => return Ok(abort(rep, tx, e.to_string())),
                };
                let duration = link.transfer(bytes);
                self.advance(start + duration, observer, None)?;
                if self.m.schedule.procs[spec].done {
                    let reason = format!(
                        "process '{}' finished during pre-copy round {round}, before it could move",
                        rep.process
                    );
                    return Ok(abort(rep, tx, reason));
                }
                self.note_writable(pid, &mut had_write)?;
                let dirty = self.harvest_soft_dirty(Some(pid))?;
                let next: Vec<u64> = dirty.pages.iter().map(|d| d.page.as_u64()).collect();
                rep.rounds.push(Round {
                    round,
                    pages: send.len() as u64,
                    bytes,
                    start,
                    duration,
                    dirtied: next.len() as u64,
                });
                live_time += duration;
                let dirty_b = next.len() as u64 * page_bytes;
                dirtied_bytes += dirty_b;
                let rate = dirty_b as f64 / duration.max(1) as f64;
                let shrank = next.len() < send.len();
                send = next;
                if send.len() as u64 <= link.stop_pages {
                    rep.converged = true;
                    rep.stop_reason = format!(
                        "{} dirty pages, at most migrate.stop_pages = {}",
                        send.len(),
                        link.stop_pages
                    );
                    break;
                }
                if rate >= link.bandwidth as f64 {
                    rep.stop_reason = format!(
                        "did not converge: round {round} dirtied {rate:.1} bytes per reference, \
                         at least the link's {} (migrate.bandwidth); stopping to copy",
                        link.bandwidth
                    );
                    break;
                }
                if !shrank {
                    rep.stop_reason = format!(
                        "did not converge: round {round} sent {} pages and {} were dirtied \
                         meanwhile ({rate:.1} bytes per reference over a link of {}); stopping to copy",
                        rep.rounds.last().map_or(0, |r| r.pages),
                        send.len(),
                        link.bandwidth
                    );
                    break;
                }
                if round >= link.max_rounds {
                    rep.stop_reason = format!(
                        "did not converge within migrate.max_rounds = {}: {} pages still dirty",
                        link.max_rounds,
                        send.len()
                    );
                    break;
                }
                round += 1;
            }
            last = send;
        }
        // The switch-over: the process is paused from here on.
        let state = self.departure_state(spec, pid, &had_write)?;
        let pages_now: Vec<u64> = state.pages.iter().map(|p| p.page).collect();
        rep.pages = pages_now.len() as u64;
        let last_pages: Vec<u64> = match mode {
            MigrateMode::StopAndCopy => pages_now.clone(),
            MigrateMode::PreCopy => {
                let present: BTreeSet<u64> = pages_now.iter().copied().collect();
                last.into_iter().filter(|p| present.contains(p)).collect()
            }
            MigrateMode::PostCopy => Vec::new(),
        };
        // Post-copy keeps every page to serve after the process has left.
        let mut store: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
        let mut state = state;
        if mode == MigrateMode::PostCopy {
            for e in &mut state.pages {
                let data = self.page_data(pid, e.page)?;
                e.zero = data.is_none();
                store.insert(e.page, data);
            }
        }
        // The pause's pages go in `Pages` messages of their own before the
        // state (one message holding them all would pass the message size
        // limit for any process over 64 MiB).
        let pause_round = rep.rounds.len() as u32 + 1;
        let pause_bytes = match self.send_pages(&mut writer, pid, pause_round, &last_pages, tx)? {
            Ok(b) => b,
            Err(e) => return Ok(abort(rep, tx, e.to_string())),
        };
        rep.last_pages = last_pages.len() as u64;
        let state_only = Message::State {
            state: Box::new(state.clone()),
            last: Vec::new(),
        };
        rep.state_bytes = state_only.encode().map_or(0, |v| v.len() as u64);
        // The model, from the dirty rate measured by the live rounds.
        let rate = if live_time > 0 {
            dirtied_bytes as f64 / live_time as f64
        } else {
            0.0
        };
        // The first full copy as measured (zero pages cost only their address).
        let full_bytes = match mode {
            MigrateMode::PreCopy => rep.rounds.first().map_or(0, |r| r.bytes),
            MigrateMode::StopAndCopy => pause_bytes,
            MigrateMode::PostCopy => store
                .values()
                .map(|d| 16 + d.as_ref().map_or(0, |d| d.len() as u64))
                .sum(),
        };
        rep.model = Model::predict(
            mode,
            &link,
            rep.pages,
            full_bytes,
            page_bytes,
            rate,
            rep.state_bytes,
        );
        rep.total_pages = rep.rounds.iter().map(|r| r.pages).sum::<u64>() + rep.last_pages;
        // The last bytes are known once sent; the report travels with the
        // state, so it carries the figures up to the pause.
        state.report = rep.clone();
        let msg = Message::State {
            state: Box::new(state),
            last: Vec::new(),
        };
        let sent = match tx.send(&msg) {
            Ok(n) => n + pause_bytes,
            Err(e) => return Ok(abort(rep, tx, e.to_string())),
        };
        rep.last_bytes = sent;
        rep.downtime = link.transfer(sent);
        rep.total_bytes = rep.rounds.iter().map(|r| r.bytes).sum::<u64>() + sent;
        rep.total_time = live_time + rep.downtime;
        match recv_skipping(rx) {
            Ok(Message::Adopted { .. }) => {}
            Ok(Message::Abort { reason } | Message::Refuse { reason }) => {
                return Ok(abort(rep, tx, format!("the destination gave up: {reason}")));
            }
            Ok(other) => {
                let reason = format!(
                    "the destination answered the state with {} message",
                    other.kind()
                );
                return Ok(abort(rep, tx, reason));
            }
            Err(e) => return Ok(abort(rep, tx, e.to_string())),
        }
        // The process lives there now: a lost summary costs only its
        // figures. It goes before the process is torn down here, so the
        // destination does not wait for that.
        let _ = tx.send(&Message::Summary(Box::new(rep.clone())));
        self.depart(spec, pid)?;
        if mode == MigrateMode::PostCopy {
            match serve_post_copy(store, tx, rx) {
                Ok((dest, pushed_bytes)) => {
                    rep.remote_faults = dest.remote_faults;
                    rep.remote_stall = dest.remote_stall;
                    rep.pushed_pages = dest.pushed_pages;
                    rep.demanded_pages = dest.demanded_pages;
                    rep.total_pages = dest.pushed_pages + dest.demanded_pages;
                    rep.total_time = dest.total_time;
                    rep.total_bytes += pushed_bytes;
                }
                Err(e) => {
                    rep.aborted = Some(format!(
                        "the link failed after the switch-over ({e}): with post-copy the process is \
                         now lost on both sides"
                    ));
                }
            }
            let _ = tx.send(&Message::Summary(Box::new(rep.clone())));
        }
        Ok(rep)
    }

    /// Remembers which pages of `pid` are writable before the tracker
    /// takes write permission away, so the destination maps them as the
    /// process would see them without a tracker.
    fn note_writable(&self, pid: Pid, had_write: &mut BTreeSet<u64>) -> Result<(), SimError> {
        let k = &self.m.kernel;
        let err = |source| SimError::Kernel {
            process: pid.to_string(),
            source,
        };
        let space = k.space_of(pid).map_err(err)?;
        let leaves = k
            .tables()
            .leaves(k.format(), &self.mem, space.asid)
            .map_err(|e| err(e.into()))?;
        for l in leaves {
            let va = l.page.as_u64();
            if l.flags.contains(PteFlags::WRITE) {
                had_write.insert(va);
            } else if !space.write_protected.contains(&va) {
                had_write.remove(&va);
            }
        }
        Ok(())
    }

    /// Sends `pages` of `pid` as round `round`; the bytes it took, or the
    /// link's error. Each message is built in `w`'s reused buffer, every
    /// page read from simulated memory straight into it.
    fn send_pages<S: MsgSend>(
        &self,
        w: &mut PagesWriter,
        pid: Pid,
        round: u32,
        pages: &[u64],
        tx: &mut S,
    ) -> Result<Result<u64, MigrateError>, SimError> {
        let mut bytes = 0;
        for chunk in pages.chunks(PAGES_PER_MESSAGE) {
            w.begin(round, chunk.len());
            for &p in chunk {
                w.page(p, |buf| self.read_page(pid, VirtAddr::new(p), buf))?;
            }
            let sent = match w.finish() {
                Ok(payload) => tx.send_payload(payload),
                Err(e) => Err(e),
            };
            match sent {
                Ok(n) => bytes += n,
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(bytes))
    }

    /// The contents of `page` of `pid` (`None`: zeros or not mapped).
    fn page_data(&self, pid: Pid, page: u64) -> Result<Option<Vec<u8>>, SimError> {
        Ok(self
            .page_contents(pid, VirtAddr::new(page))?
            .filter(|d| !super::pages::is_zero(d)))
    }

    /// The execution state of scenario process `spec` (kernel `pid`) at the
    /// switch-over.
    fn departure_state(
        &mut self,
        spec: usize,
        pid: Pid,
        had_write: &BTreeSet<u64>,
    ) -> Result<ProcessState, SimError> {
        let positions = self.input_positions()?;
        let k = &self.m.kernel;
        let err = |source| SimError::Kernel {
            process: pid.to_string(),
            source,
        };
        let space = k.space_of(pid).map_err(err)?;
        let leaves = k
            .tables()
            .leaves(k.format(), &self.mem, space.asid)
            .map_err(|e| err(e.into()))?;
        let mut pages: Vec<PageEntry> = leaves
            .iter()
            .map(|l| {
                let va = l.page.as_u64();
                PageEntry {
                    page: va,
                    writable: l.flags.contains(PteFlags::WRITE)
                        || (space.write_protected.contains(&va) && had_write.contains(&va)),
                    accessed: l.flags.contains(PteFlags::ACCESSED),
                    dirty: l.flags.contains(PteFlags::DIRTY),
                    swapped: false,
                    zero: false,
                }
            })
            .collect();
        pages.extend(space.swapped.keys().map(|va| PageEntry {
            page: va,
            writable: true,
            accessed: false,
            dirty: true,
            swapped: true,
            zero: false,
        }));
        pages.sort_by_key(|p| p.page);
        let p = &self.m.schedule.procs[spec];
        let s = &self.scenario.processes[spec];
        let mut counters = self
            .m
            .processes
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| crate::report::ProcessReport::new(pid));
        counters.references = p.refs;
        Ok(ProcessState {
            name: s.name.clone(),
            vmas: space.vmas().copied().collect(),
            brk_start: space.brk_start,
            brk: space.brk,
            pages,
            input: positions.get(spec).cloned().flatten(),
            batch: p.batch[p.pos..].to_vec(),
            refs: p.refs,
            first_trace_pid: p.first_trace_pid,
            exit_after: s.exit_after,
            last_instr: self.m.schedule.last_instr.get(&pid).copied(),
            counters,
            report: MigrationReport::default(),
        })
    }

    /// Scenario process `spec` has moved away: it is done here, and its
    /// address space is released.
    fn depart(&mut self, spec: usize, pid: Pid) -> Result<(), SimError> {
        let refs = self.m.schedule.procs[spec].refs;
        self.m.schedule.procs[spec].done = true;
        self.sources[spec] = None;
        if self.m.schedule.slice.is_some_and(|(i, _)| i == spec) {
            self.m.schedule.slice = None;
        }
        if let Some(r) = self.m.processes.get_mut(&pid) {
            r.references = refs;
        }
        self.exit(pid)
    }
}

/// Records `reason` as why the migration stopped, tells the other side
/// (if it still listens), and returns the report.
fn abort<S: MsgSend>(mut rep: MigrationReport, tx: &mut S, reason: String) -> MigrationReport {
    let _ = tx.send(&Message::Abort {
        reason: reason.clone(),
    });
    rep.aborted = Some(reason);
    rep
}

/// The next message that is not a keep-alive.
fn recv_skipping<R: MsgRecv>(rx: &mut R) -> Result<Message, MigrateError> {
    loop {
        match rx.recv()? {
            Message::Progress { .. } => {}
            m => return Ok(m),
        }
    }
}

/// Post-copy after the switch-over: pushes every page in address order,
/// a requested one before the rest, until the destination says it has them
/// all. Returns the destination's figures and the bytes pushed.
fn serve_post_copy<S: MsgSend, R: MsgRecv + Send>(
    mut store: BTreeMap<u64, Option<Vec<u8>>>,
    tx: &mut S,
    rx: &mut R,
) -> Result<(MigrationReport, u64), MigrateError> {
    let (fwd, requests) = mpsc::channel::<Result<Message, MigrateError>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let m = rx.recv();
                let stop = !matches!(m, Ok(Message::Request { .. }));
                if fwd.send(m).is_err() || stop {
                    break;
                }
            }
        });
        let mut bytes = 0u64;
        let handle = |m: Result<Message, MigrateError>,
                      store: &mut BTreeMap<u64, Option<Vec<u8>>>,
                      bytes: &mut u64,
                      tx: &mut S|
         -> Result<Option<MigrationReport>, MigrateError> {
            match m? {
                Message::Request { page } => {
                    if let Some(data) = store.remove(&page) {
                        *bytes += tx.send(&Message::Page(PageData { page, data }))?;
                    }
                    Ok(None)
                }
                Message::Complete(r) => Ok(Some(*r)),
                Message::Abort { reason } => Err(MigrateError::Aborted(reason)),
                other => Err(MigrateError::Protocol(format!(
                    "{} message during post-copy",
                    other.kind()
                ))),
            }
        };
        while let Some((&page, _)) = store.iter().next() {
            while let Ok(m) = requests.try_recv() {
                if let Some(r) = handle(m, &mut store, &mut bytes, tx)? {
                    return Ok((r, bytes));
                }
            }
            if let Some(data) = store.remove(&page) {
                bytes += tx.send(&Message::Page(PageData { page, data }))?;
            }
        }
        loop {
            let m = requests
                .recv()
                .map_err(|_| MigrateError::Closed("the destination hung up".into()))?;
            if let Some(r) = handle(m, &mut store, &mut bytes, tx)? {
                return Ok((r, bytes));
            }
        }
    })
}
