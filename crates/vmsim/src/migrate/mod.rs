//! Live migration: a running process moves from one simulation to another
//! (two `vmsim` processes over an authenticated socket, or two
//! simulations in one program over a [`pipe`]), by stop-and-copy, pre-copy
//! or post-copy, against a link model in simulated time, with the figures
//! people judge a migration by (rounds, bytes, total time, downtime,
//! remote faults) and the analytic pre-copy model beside them.
//!
//! - `migrate/config.rs`: `[migrate]` (bandwidth, latency, stop_pages,
//!   max_rounds) and the three modes;
//! - `migrate/message.rs`: what the sides say (postcard messages) and the
//!   [`MsgSend`]/[`MsgRecv`] halves a connection provides;
//! - `migrate/pages.rs`: page data on the wire: `Pages` messages encoded
//!   from simulated memory into a reused buffer, staged at the destination
//!   in the payloads they arrived in;
//! - `migrate/source.rs`: [`Simulation::migrate_out`](crate::sim::Simulation::migrate_out), the rounds;
//! - `migrate/destination.rs`: [`answer`], [`receive`] and [`Incoming::run`]: the
//!   process built from what arrived, and run to its end;
//! - `migrate/remote.rs`: post-copy's remote pages at the destination;
//! - `migrate/received.rs`: the destination's checks of what the source
//!   said (the state against the offer and the pages that came, the
//!   summary against the state);
//! - `migrate/report.rs`: [`MigrationReport`] and the analytic [`Model`];
//! - `kernel/adopt.rs`: the kernel's side of an arriving process.
//!
//! The engine never opens a socket: the command line's channel
//! (authentication, framing, timeouts) implements the two halves.

mod config;
mod destination;
mod message;
mod pages;
mod received;
pub(crate) mod remote;
mod report;
mod source;

use thiserror::Error;

pub use config::{MigrateConfig, MigrateMode, UnknownMigrateMode};
pub use destination::{Incoming, answer, incompatibility, read_offer, receive};
pub use message::{
    MAX_MESSAGE, Message, MsgRecv, MsgSend, Offer, PROTOCOL, PageData, PageEntry, PipeRecv,
    PipeSend, ProcessState, pipe,
};
pub use remote::Duplex;
pub use report::{MigrationReport, Model, Round};

use crate::sim::SimError;

/// A migration that could not be carried out. Every message is one line.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The link failed (I/O error, timeout), with what was going on.
    #[error("{0}")]
    Link(String),
    /// The link failed with an I/O error: what was going on, and the
    /// error (kept as the source).
    #[error("{what}: {source}")]
    Io {
        /// What was going on (the peer, the step).
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A message that cannot be encoded or decoded: which, and the
    /// encoding's error (kept as the source).
    #[error("protocol error: {what}: {source}")]
    Codec {
        /// "cannot encode a message", "a message that does not decode".
        what: &'static str,
        /// The encoding's error.
        #[source]
        source: postcard::Error,
    },
    /// The other side closed the connection.
    #[error("connection closed: {0}")]
    Closed(String),
    /// A message that does not belong here, or does not decode.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The message failed authentication (wrong key, tampered or replayed).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// This side refuses (incompatible machine, process that cannot move).
    #[error("{0}")]
    Refused(String),
    /// The other side gave up, and why.
    #[error("the other side aborted the migration: {0}")]
    Aborted(String),
    /// The simulation failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}
