//! What a migration did, as both sides report it, and the analytic
//! pre-copy model beside it.
//!
//! The model is the usual geometric series: with a memory of V0 bytes, a
//! link of B bytes per reference (latency L) and pages dirtied at r bytes
//! per reference, round i sends V_i bytes in T_i = L + V_i / B, during
//! which r T_i bytes are dirtied: V_{i+1} = r T_i, a ratio of r / B per
//! round once V dominates L. It converges when r < B, and stops at the
//! same rules as the measured run (at most `stop_pages` dirty, or
//! `max_rounds`). Real programs dirty a working set, not a rate: the
//! measured rounds shrink faster than the model once the hot pages are the
//! only dirty ones, and never below the hot set.

use serde::{Deserialize, Serialize};

use super::config::{MigrateConfig, MigrateMode};

/// One pre-copy round (or the final copy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// Its number (1 is the first).
    pub round: u32,
    /// Pages sent.
    pub pages: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    /// When it started, in references of the source's run.
    pub start: u64,
    /// How long it took on the link, in references.
    pub duration: u64,
    /// Pages the process dirtied while it was in flight (sent by the next round).
    pub dirtied: u64,
}

/// The analytic model's prediction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The dirty rate it uses, in bytes per reference (measured).
    pub dirty_rate: f64,
    /// The link's bandwidth, bytes per reference.
    pub bandwidth: u64,
    /// r / B: the ratio of one round's size to the one before.
    pub ratio: f64,
    /// Whether the series converges (r < B).
    pub converges: bool,
    /// Pages per round, the last one being the stop-and-copy.
    pub round_pages: Vec<u64>,
    /// Total bytes.
    pub bytes: u64,
    /// Total time, references.
    pub total_time: u64,
    /// Downtime, references.
    pub downtime: u64,
}

impl Model {
    /// The model for a process of `pages` pages whose full copy is `full_bytes` on the wire
    /// (pages of `page_bytes`; zero pages cost only their address), dirtying
    /// `rate` bytes per reference, over `link`, in `mode`. `state_bytes` is
    /// the size of the execution state sent at the switch-over.
    #[must_use]
    pub fn predict(
        mode: MigrateMode,
        link: &MigrateConfig,
        pages: u64,
        full_bytes: u64,
        page_bytes: u64,
        rate: f64,
        state_bytes: u64,
    ) -> Self {
        let b = link.bandwidth as f64;
        let l = link.latency as f64;
        let v0 = full_bytes as f64;

        let mut m = Self {
            dirty_rate: rate,
            bandwidth: link.bandwidth,
            ratio: rate / b,
            converges: rate < b,
            ..Self::default()
        };
        let to_pages = |v: f64| (v / page_bytes as f64).ceil() as u64;
        match mode {
            MigrateMode::StopAndCopy => {
                m.round_pages = vec![pages];
                m.bytes = v0 as u64 + state_bytes;
                m.downtime = link.transfer(m.bytes);
                m.total_time = m.downtime;
            }
            MigrateMode::PostCopy => {
                // Nothing is copied in the pause; remote faults are not modelled.
                m.round_pages = vec![0];
                m.bytes = v0 as u64 + state_bytes;
                m.downtime = link.transfer(state_bytes);
                m.total_time = m.downtime + link.transfer(v0 as u64);
            }
            MigrateMode::PreCopy => {
                let stop = (link.stop_pages * page_bytes) as f64;
                let (mut v, mut t, mut bytes) = (v0, 0.0f64, 0.0f64);
                let mut rounds = 0u32;
                loop {
                    rounds += 1;
                    m.round_pages
                        .push(if rounds == 1 { pages } else { to_pages(v) });
                    let ti = l + v / b;
                    t += ti;
                    bytes += v;
                    let next = (rate * ti).min(v0);
                    v = next;
                    if next <= stop || rounds >= link.max_rounds || rate >= b {
                        break;
                    }
                }
                m.round_pages.push(to_pages(v));
                let last = v + state_bytes as f64;
                bytes += last;
                let down = l + last / b;
                m.bytes = bytes.ceil() as u64;
                m.downtime = down.ceil() as u64;
                m.total_time = (t + down).ceil() as u64;
            }
        }
        m
    }
}

/// A migration, as one side reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationReport {
    /// `stop-and-copy`, `pre-copy` or `post-copy`.
    pub mode: MigrateMode,
    /// The process's name.
    pub process: String,
    /// The reference of the source's run at which it started.
    pub start: u64,
    /// The link and stopping rules it ran with.
    pub link: MigrateConfig,
    /// Pre-copy rounds (the live ones; the final copy is `last_pages`).
    pub rounds: Vec<Round>,
    /// Pages sent in the pause (stop-and-copy: all; post-copy: none).
    pub last_pages: u64,
    /// Bytes of the pause: the last pages and the execution state.
    pub last_bytes: u64,
    /// Bytes of the execution state and page tables alone.
    pub state_bytes: u64,
    /// Pages of the process at the switch-over.
    pub pages: u64,
    /// Everything sent, bytes.
    pub total_bytes: u64,
    /// Pages sent, all rounds (a page dirtied again is counted again).
    pub total_pages: u64,
    /// From the start to the moment the destination had every page, references.
    pub total_time: u64,
    /// How long the process ran nowhere, references.
    pub downtime: u64,
    /// Pre-copy: whether the dirty set shrank to `stop_pages`.
    pub converged: bool,
    /// Why pre-copy stopped ("at most stop_pages dirty", "did not converge: ...",
    /// "max_rounds reached").
    pub stop_reason: String,
    /// Post-copy: faults on pages not arrived yet (each a round trip).
    pub remote_faults: u64,
    /// Post-copy: references the process waited for them.
    pub remote_stall: u64,
    /// Post-copy: pages pushed in the background.
    pub pushed_pages: u64,
    /// Post-copy: pages brought by a remote fault.
    pub demanded_pages: u64,
    /// The analytic model beside the measured figures.
    pub model: Model,
    /// Set if the migration did not happen: why (the process then ran to
    /// its end where it was).
    pub aborted: Option<String>,
}
