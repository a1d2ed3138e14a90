//! What the two sides of a migration say to each other: postcard payloads,
//! each carried as one message by a [`MsgSend`] / [`MsgRecv`] pair (the
//! command line's authenticated TCP channel, or the in-memory [`pipe`] an
//! embedding program or a test uses).
//!
//! Order: `Offer` -> `Accept`/`Refuse`; then the source sends `Progress`
//! while it runs to the migration point, `Pages` per round (the pages
//! copied during the pause too, as one more round), and `State` (the
//! execution state and page tables); the
//! destination answers `Adopted` once the process exists on its side. In
//! post-copy, `Page` messages (pushed or asked for with `Request`) follow
//! until the destination says `Complete`. Either side may send `Abort`.

use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use vmsim_trace::Access;

use crate::addr::VirtAddr;
use crate::kernel::Vma;
use crate::report::ProcessReport;
use crate::sim::inputs::InputPosition;

use super::MigrateError;
use super::config::MigrateMode;
use super::report::MigrationReport;

/// The version of this protocol; both sides must speak the same.
pub const PROTOCOL: u32 = 1;

/// The largest message either side accepts, checked before allocating.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Page data in a message: its bytes as one byte string (not a sequence of
/// numbers), so a 4 KiB page costs 4 KiB and a copy.
mod page_bytes {
    use serde::de::{Deserializer, Error, Visitor};
    use serde::ser::Serializer;

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&serde_bytes_ref(b)),
            None => s.serialize_none(),
        }
    }

    struct Bytes<'a>(&'a [u8]);
    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    fn serde_bytes_ref(b: &[u8]) -> Bytes<'_> {
        Bytes(b)
    }

    struct BufVisitor;
    impl<'de> Visitor<'de> for BufVisitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("page bytes")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    struct OptVisitor;
    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Vec<u8>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("optional page bytes")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_byte_buf(BufVisitor).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        d.deserialize_option(OptVisitor)
    }
}

/// One page on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageData {
    /// Its virtual address.
    pub page: u64,
    /// Its contents; `None` when all zero.
    #[serde(with = "page_bytes")]
    pub data: Option<Vec<u8>>,
}

/// How a page is mapped at the end of the source's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageEntry {
    /// Its virtual address.
    pub page: u64,
    /// Writable now (false: a store faults, copy-on-write for instance).
    pub writable: bool,
    /// Its accessed bit.
    pub accessed: bool,
    /// Its dirty bit.
    pub dirty: bool,
    /// It was in swap at the source (it arrives resident).
    pub swapped: bool,
    /// Its contents are all zero (post-copy: it costs only its address on
    /// the link).
    pub zero: bool,
}

/// What the source proposes, before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// The paging format's name: the destination must use the same one.
    pub format: String,
    /// The page size in bytes: the same too.
    pub page_size: u64,
    /// How it will move.
    pub mode: MigrateMode,
    /// The process's name.
    pub process: String,
    /// The reference of the source's run at which it moves.
    pub at: u64,
    /// The program that speaks (`vmsim VERSION`).
    pub written_by: String,
}

/// The process at the switch-over: everything but page contents (those
/// came in `Pages` rounds, come with it in `last`, or follow in post-copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Its scenario name.
    pub name: String,
    /// Its VMAs, in address order.
    pub vmas: Vec<Vma>,
    /// Where its heap starts.
    pub brk_start: VirtAddr,
    /// The program break.
    pub brk: VirtAddr,
    /// Every page it has, in address order.
    pub pages: Vec<PageEntry>,
    /// Where it stands in its input.
    pub input: Option<InputPosition>,
    /// The accesses it has read from its input and not run yet.
    pub batch: Vec<Access>,
    /// References it has made.
    pub refs: u64,
    /// The trace pid its references carry.
    pub first_trace_pid: Option<u32>,
    /// After how many references it exits (scenario `exit_after`).
    pub exit_after: Option<u64>,
    /// The last instruction address it fetched.
    pub last_instr: Option<u64>,
    /// Its counters so far (faults by kind, peaks).
    pub counters: ProcessReport,
    /// The source's account of the migration so far.
    pub report: MigrationReport,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Source: what is coming.
    Offer(Offer),
    /// Destination: agreed; its machine, for the reports.
    Accept {
        /// Its frames.
        frames: u64,
    },
    /// Destination: cannot take it, and why.
    Refuse {
        /// Why, on one line.
        reason: String,
    },
    /// Source: still running towards the migration point.
    Progress {
        /// References so far.
        references: u64,
    },
    /// Source: pages of one pre-copy round (a round may take several).
    Pages {
        /// The round (1 is the first).
        round: u32,
        /// The pages.
        pages: Vec<PageData>,
    },
    /// Source: the switch-over: the execution state, and the pages dirtied
    /// in the last round.
    State {
        /// The process.
        state: Box<ProcessState>,
        /// Pages sent with the state (vmsim sends none: the pause's pages
        /// go before it in `Pages` messages, so no message grows with the
        /// process; a destination still installs any given here).
        last: Vec<PageData>,
    },
    /// Destination: the process exists here now and will run.
    Adopted {
        /// Its pid here.
        pid: u32,
    },
    /// Source, after `Adopted`: its account of the migration (the
    /// destination reports the same figures).
    Summary(Box<MigrationReport>),
    /// Destination, post-copy: send this page first.
    Request {
        /// The page.
        page: u64,
    },
    /// Source, post-copy: one page, pushed or asked for.
    Page(PageData),
    /// Destination, post-copy: every page is here; its figures.
    Complete(Box<MigrationReport>),
    /// Either side: the migration stops, and why.
    Abort {
        /// Why, on one line.
        reason: String,
    },
}

impl Message {
    /// What it is, for errors ("a Pages message").
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Offer(_) => "an Offer",
            Self::Accept { .. } => "an Accept",
            Self::Refuse { .. } => "a Refuse",
            Self::Progress { .. } => "a Progress",
            Self::Pages { .. } => "a Pages",
            Self::State { .. } => "a State",
            Self::Adopted { .. } => "an Adopted",
            Self::Summary(_) => "a Summary",
            Self::Request { .. } => "a Request",
            Self::Page(_) => "a Page",
            Self::Complete(_) => "a Complete",
            Self::Abort { .. } => "an Abort",
        }
    }

    /// The message as bytes.
    ///
    /// # Errors
    /// It cannot be encoded (never for these types) or is over [`MAX_MESSAGE`].
    pub fn encode(&self) -> Result<Vec<u8>, MigrateError> {
        let v = postcard::to_allocvec(self).map_err(|source| MigrateError::Codec {
            what: "cannot encode a message",
            source,
        })?;
        if v.len() > MAX_MESSAGE {
            return Err(MigrateError::Protocol(format!(
                "a message of {} bytes is over the {MAX_MESSAGE}-byte limit",
                v.len()
            )));
        }
        Ok(v)
    }

    /// A message from bytes.
    ///
    /// # Errors
    /// Not a message of this protocol.
    pub fn decode(bytes: &[u8]) -> Result<Self, MigrateError> {
        postcard::from_bytes(bytes).map_err(|source| MigrateError::Codec {
            what: "a message that does not decode",
            source,
        })
    }
}

/// The sending half of a connection.
pub trait MsgSend {
    /// Sends one message's encoding (from [`Message::encode`], or a
    /// `Pages` message built in place); returns the bytes it took on the
    /// wire.
    ///
    /// # Errors
    /// The connection failed, or the payload is over [`MAX_MESSAGE`].
    fn send_payload(&mut self, payload: &[u8]) -> Result<u64, MigrateError>;

    /// Sends one message; returns the bytes it took on the wire.
    ///
    /// # Errors
    /// The connection failed.
    fn send(&mut self, msg: &Message) -> Result<u64, MigrateError> {
        self.send_payload(&msg.encode()?)
    }
}

/// The receiving half of a connection.
pub trait MsgRecv {
    /// Receives the next message's encoding, authenticated (blocking, up
    /// to the connection's timeout).
    ///
    /// # Errors
    /// The connection failed, timed out or closed, or the message is bad.
    fn recv_payload(&mut self) -> Result<Vec<u8>, MigrateError>;

    /// Receives the next message (blocking, up to the connection's timeout).
    ///
    /// # Errors
    /// The connection failed, timed out or closed, or the message is bad.
    fn recv(&mut self) -> Result<Message, MigrateError> {
        Message::decode(&self.recv_payload()?)
    }
}

/// One end of an in-memory connection (see [`pipe`]).
#[derive(Debug)]
pub struct PipeSend(mpsc::Sender<Vec<u8>>);

/// The other half of an in-memory connection end.
#[derive(Debug)]
pub struct PipeRecv(mpsc::Receiver<Vec<u8>>);

impl MsgSend for PipeSend {
    fn send_payload(&mut self, payload: &[u8]) -> Result<u64, MigrateError> {
        if payload.len() > MAX_MESSAGE {
            return Err(MigrateError::Protocol(format!(
                "a message of {} bytes is over the {MAX_MESSAGE}-byte limit",
                payload.len()
            )));
        }
        let n = payload.len() as u64;
        self.0
            .send(payload.to_vec())
            .map_err(|_| MigrateError::Closed("the other side hung up".into()))?;
        Ok(n)
    }

    fn send(&mut self, msg: &Message) -> Result<u64, MigrateError> {
        let bytes = msg.encode()?;
        let n = bytes.len() as u64;
        self.0
            .send(bytes)
            .map_err(|_| MigrateError::Closed("the other side hung up".into()))?;
        Ok(n)
    }
}

impl MsgRecv for PipeRecv {
    fn recv_payload(&mut self) -> Result<Vec<u8>, MigrateError> {
        self.0
            .recv()
            .map_err(|_| MigrateError::Closed("the other side hung up".into()))
    }
}

/// An in-memory connection: `(source end, destination end)`, each a
/// sender and a receiver, messages encoded as on a socket (so byte counts
/// are the real ones). For embedding programs and tests.
#[must_use]
pub fn pipe() -> ((PipeSend, PipeRecv), (PipeSend, PipeRecv)) {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    (
        (PipeSend(a_tx), PipeRecv(b_rx)),
        (PipeSend(b_tx), PipeRecv(a_rx)),
    )
}
