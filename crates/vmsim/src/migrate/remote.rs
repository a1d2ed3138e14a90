//! Post-copy at the destination: the process runs before its pages are
//! here. A page not arrived yet is *remote*: touching it is a remote fault
//! (counted; the process waits a round trip, 2 x latency + the page's time
//! on the link) and the page is asked for at once; meanwhile the source pushes
//! the others in address order, one page per page-time of the link, and
//! each is installed when simulated time reaches its arrival.
//!
//! Simulated time decides which pages are remote, so the figures do not
//! depend on how fast the real socket is; the real socket only supplies
//! the bytes (a request makes the source send that page next).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::addr::{Pid, VirtAddr};
use crate::kernel::{AdoptedPage, Kernel};
use crate::mmu::Mmu;
use crate::phys::{DirtyChunks, PhysMem};
use crate::sim::{SimError, Simulation};

use super::MigrateError;
use super::config::MigrateConfig;
use super::message::{Message, MsgRecv, MsgSend};
use super::report::MigrationReport;

/// Both halves of a connection, owned (post-copy keeps it for the run).
pub trait Duplex: Send {
    /// Sends one message; the bytes it took.
    ///
    /// # Errors
    /// The link failed.
    fn send_msg(&mut self, msg: &Message) -> Result<u64, MigrateError>;
    /// Receives one message.
    ///
    /// # Errors
    /// The link failed, closed or timed out, or the message is bad.
    fn recv_msg(&mut self) -> Result<Message, MigrateError>;
}

impl<S: MsgSend + Send, R: MsgRecv + Send> Duplex for (S, R) {
    fn send_msg(&mut self, msg: &Message) -> Result<u64, MigrateError> {
        self.0.send(msg)
    }
    fn recv_msg(&mut self) -> Result<Message, MigrateError> {
        self.1.recv()
    }
}

/// The remote pages of a post-copy migration and the clock of their arrival.
pub(crate) struct RemotePages {
    pub pid: Pid,
    /// Pages not installed yet, by address (the push order), and whether
    /// each is all zero (it then takes only its address's time on the link).
    pending: BTreeMap<u64, (AdoptedPage, bool)>,
    /// Pages whose bytes are here but not installed (simulated time has
    /// not reached them).
    buffer: HashMap<u64, Option<Vec<u8>>>,
    requested: BTreeSet<u64>,
    link: Box<dyn Duplex>,
    /// References of the run when the process resumed here.
    base: u64,
    /// Simulated time (references since resuming, waits included) at
    /// which the next pushed page arrives.
    next_push_at: f64,
    per_page: f64,
    per_zero: f64,
    latency: f64,
    stall: f64,
    last_arrival: f64,
    pub report: MigrationReport,
    complete: bool,
}

impl RemotePages {
    pub fn new(
        pid: Pid,
        pending: BTreeMap<u64, (AdoptedPage, bool)>,
        link: Box<dyn Duplex>,
        base: u64,
        cfg: MigrateConfig,
        page_bytes: u64,
        report: MigrationReport,
    ) -> Self {
        let per_page = (PAGE_HEADER + page_bytes) as f64 / cfg.bandwidth as f64;
        let per_zero = PAGE_HEADER as f64 / cfg.bandwidth as f64;
        Self {
            pid,
            pending,
            buffer: HashMap::new(),
            requested: BTreeSet::new(),
            link,
            base,
            next_push_at: cfg.latency as f64,
            per_page,
            per_zero,
            latency: cfg.latency as f64,
            stall: 0.0,
            last_arrival: 0.0,
            report,
            complete: false,
        }
    }

    /// The bytes of `page`: from what has arrived, else asked for and read
    /// off the link (installing nothing: pages that come first are kept).
    fn fetch(&mut self, page: u64) -> Result<Option<Vec<u8>>, MigrateError> {
        if let Some(d) = self.buffer.remove(&page) {
            return Ok(d);
        }
        if self.requested.insert(page) {
            self.link.send_msg(&Message::Request { page })?;
        }
        loop {
            match self.link.recv_msg()? {
                Message::Page(p) if p.page == page => return Ok(p.data),
                // Only a page still to come may come first, once (else a
                // source could fill the buffer with pages never asked for).
                Message::Page(p)
                    if self.pending.contains_key(&p.page) && !self.buffer.contains_key(&p.page) =>
                {
                    self.buffer.insert(p.page, p.data);
                }
                Message::Page(p) => {
                    return Err(MigrateError::Protocol(format!(
                        "a Page message for page {:#x}, which is not one still to come",
                        p.page
                    )));
                }
                Message::Progress { .. } => {}
                Message::Abort { reason } => return Err(MigrateError::Aborted(reason)),
                other => {
                    return Err(MigrateError::Protocol(format!(
                        "{} message while pages were due",
                        other.kind()
                    )));
                }
            }
        }
    }
}

/// Bytes a page message takes beyond the page's contents (address,
/// framing, tag), for the push schedule.
const PAGE_HEADER: u64 = 48;

impl RemotePages {
    /// Link time of page `page` (all-zero pages carry no contents).
    fn time_of(&self, page: u64) -> f64 {
        match self.pending.get(&page) {
            Some((_, true)) => self.per_zero,
            _ => self.per_page,
        }
    }
}

/// The source's final account against the one this side sent it in
/// `Complete`: the same but for the pages it pushed and was asked for in
/// all (`total_pages`) and the bytes they took (`total_bytes`, at least
/// the pause's).
fn check_final(mine: &MigrationReport, s: &MigrationReport) -> Result<(), String> {
    super::received::report_in_range("summary", s)?;
    let same = MigrationReport {
        total_pages: mine.pushed_pages.saturating_add(mine.demanded_pages),
        total_bytes: s.total_bytes,
        ..mine.clone()
    };
    if *s != same || s.total_bytes < mine.total_bytes {
        return Err(
            "it is not the account this side sent with its pages and bytes filled in".into(),
        );
    }
    Ok(())
}

fn link_err(e: MigrateError) -> SimError {
    SimError::Migrate(Box::new(e))
}

impl Simulation {
    /// Simulated time of the post-copy clock now.
    fn remote_clock(&self) -> f64 {
        let refs = self.references();
        self.remote.as_ref().map_or(0.0, |r| r.clock(refs))
    }

    /// The reference count at which the next pushed page arrives
    /// (`u64::MAX`: none left).
    pub(crate) fn next_arrival(&self) -> u64 {
        match &self.remote {
            Some(r) if !r.pending.is_empty() => {
                let first = r.pending.keys().next().map_or(0.0, |&p| r.time_of(p));
                let at = (r.next_push_at + first - r.stall).ceil().max(0.0) as u64;
                (r.base + at).max(self.references())
            }
            _ => u64::MAX,
        }
    }

    /// Installs `page` of the remote set, its bytes read from the link.
    fn install_remote(&mut self, page: u64) -> Result<(), SimError> {
        let Some(r) = self.remote.as_deref_mut() else {
            return Ok(());
        };
        install(r, &mut self.m.kernel, &mut self.mem, &mut self.m.mmu, page)
    }

    /// Installs the pushed pages whose arrival time has come.
    pub(crate) fn install_arrived(&mut self) -> Result<(), SimError> {
        loop {
            let clock = self.remote_clock();
            let next = match &mut self.remote {
                Some(r) => match r.pending.keys().next() {
                    Some(&p) if r.next_push_at + r.time_of(p) <= clock => {
                        r.next_push_at += r.time_of(p);
                        r.last_arrival = r.last_arrival.max(r.next_push_at);
                        r.report.pushed_pages += 1;
                        p
                    }
                    _ => return Ok(()),
                },
                None => return Ok(()),
            };
            self.install_remote(next)?;
        }
    }

    /// Installs every remote page left, pushed in order (the process is
    /// about to exit, or the run ends): nothing of it is left behind.
    pub(crate) fn drain_remote(&mut self) -> Result<(), SimError> {
        loop {
            let next = match &mut self.remote {
                Some(r) => match r.pending.keys().next() {
                    Some(&p) => {
                        r.next_push_at += r.time_of(p);
                        r.last_arrival = r.last_arrival.max(r.next_push_at);
                        r.report.pushed_pages += 1;
                        p
                    }
                    None => return Ok(()),
                },
                None => return Ok(()),
            };
            self.install_remote(next)?;
        }
    }
}

impl RemotePages {
    /// Simulated time of the post-copy clock when the run has simulated
    /// `references` references.
    fn clock(&self, references: u64) -> f64 {
        (references - self.base) as f64 + self.stall
    }
}

/// Installs `page` of `r`'s remote set, its bytes read from the link.
fn install(
    r: &mut RemotePages,
    kernel: &mut Kernel,
    mem: &mut PhysMem<DirtyChunks>,
    mmu: &mut Mmu,
    page: u64,
) -> Result<(), SimError> {
    let Some((entry, zero)) = r.pending.remove(&page) else {
        return Ok(());
    };
    let data = r.fetch(page).map_err(link_err)?;
    if zero && data.is_some() {
        return Err(link_err(MigrateError::Protocol(format!(
            "a Page message: page {page:#x} has contents, but the State said it is all zero"
        ))));
    }
    // An area unmapped meanwhile: the page has nowhere to go.
    if kernel
        .space_of(r.pid)
        .is_ok_and(|s| s.find(VirtAddr::new(page)).is_some())
    {
        kernel
            .adopt_page(mem, mmu, r.pid, entry, data.as_deref())
            .map_err(|source| SimError::Kernel {
                process: r.pid.to_string(),
                source,
            })?;
    }
    if r.pending.is_empty() && !r.complete {
        r.complete = true;
        r.report.remote_stall = r.stall.ceil() as u64;
        r.report.total_time += r.last_arrival.max(0.0).ceil() as u64;
        let msg = Message::Complete(Box::new(r.report.clone()));
        r.link.send_msg(&msg).map_err(link_err)?;
        // The source's final account (its bytes on the wire included).
        if let Ok(Message::Summary(s)) = r.link.recv_msg() {
            check_final(&r.report, &s).map_err(|e| {
                link_err(MigrateError::Protocol(format!(
                    "the final Summary message: {e}"
                )))
            })?;
            r.report = *s;
        }
    }
    Ok(())
}

/// A not-present fault of `pid` at `va` after `references` references of
/// the run: if the page is remote, a remote fault (the process waits a
/// round trip; the page is brought and installed). Returns whether it was
/// (the translation is then retried).
#[cold]
pub(crate) fn remote_fault(
    r: &mut RemotePages,
    kernel: &mut Kernel,
    mem: &mut PhysMem<DirtyChunks>,
    mmu: &mut Mmu,
    references: u64,
    pid: Pid,
    va: VirtAddr,
) -> Result<bool, SimError> {
    let page = va.align_down(kernel.page_size()).as_u64();
    let clock = r.clock(references);
    if r.pid != pid || !r.pending.contains_key(&page) {
        return Ok(false);
    }
    r.report.remote_faults += 1;
    r.report.demanded_pages += 1;
    let t = r.time_of(page);
    let wait = 2.0 * r.latency + t;
    r.stall += wait;
    r.last_arrival = r.last_arrival.max(clock + wait);
    // The page took the link for its own time.
    r.next_push_at += t;
    install(r, kernel, mem, mmu, page)?;
    Ok(true)
}
