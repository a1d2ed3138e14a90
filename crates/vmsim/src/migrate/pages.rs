//! Page data on the wire without a copy per page: a `Pages` message is
//! encoded straight from simulated memory into one reused buffer, and
//! decoded by borrowing its pages from the received payload.
//!
//! The bytes are exactly those of [`Message::Pages`] as postcard encodes it
//! (variant index, round, page count, then per page its address and its
//! optional bytes), so the report's byte counts and the destination's
//! checks are the same whichever way a message was made; a test holds the
//! two encodings equal. What changes is the cost: a page is read from
//! simulated memory into the message once (no `Vec` per page, no second
//! copy into an encoder), and at the destination it stays in the payload
//! it arrived in until the process is built.

use std::collections::HashMap;

use serde::Deserialize;

use super::MigrateError;
use super::message::{MAX_MESSAGE, Message, PageData};

/// postcard's variant index of [`Message::Pages`] (a one-byte varint).
const PAGES_VARIANT: u8 = 4;

/// Writes `v` as a postcard varint (LEB128) at `at` of `out`, growing
/// it if needed; returns where it ends.
fn varint(out: &mut Vec<u8>, mut at: usize, mut v: u64) -> usize {
    if out.len() < at + 10 {
        out.resize(at + 10, 0);
    }
    while v >= 0x80 {
        out[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    out[at] = v as u8;
    at + 1
}

/// Whether `b` is all zero (a word-wide OR that the compiler vectorizes).
#[must_use]
pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    let mut acc = 0u8;
    for c in &mut chunks {
        acc |= c.iter().fold(0, |a, &x| a | x);
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&x| x == 0)
}

/// Builds `Pages` messages in one buffer that is reused from message to
/// message: it only grows (to the largest message), and its bytes past
/// the message are left as they are, so a page is written once, not
/// zeroed first.
#[derive(Debug, Default)]
pub(crate) struct PagesWriter {
    buf: Vec<u8>,
    len: usize,
    page_bytes: usize,
    left: usize,
}

impl PagesWriter {
    /// A writer for pages of `page_bytes` bytes.
    pub fn new(page_bytes: usize) -> Self {
        Self {
            page_bytes,
            ..Self::default()
        }
    }

    /// Starts a message of round `round` that will hold `count` pages.
    pub fn begin(&mut self, round: u32, count: usize) {
        let most = (16 + count.saturating_mul(self.page_bytes + 12)).min(MAX_MESSAGE + 64);
        if self.buf.len() < most {
            self.buf.resize(most, 0);
        }
        self.buf[0] = PAGES_VARIANT;
        self.len = varint(&mut self.buf, 1, u64::from(round));
        self.len = varint(&mut self.buf, self.len, count as u64);
        self.left = count;
    }

    /// Adds the page at `page`, whose bytes `fill` writes into the slice it
    /// is given (one page long) and says whether anything is mapped there.
    /// A page that is all zero (or not mapped) goes as its address only.
    ///
    /// # Errors
    /// Whatever `fill` fails with.
    pub fn page<E>(
        &mut self,
        page: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        debug_assert!(self.left > 0, "more pages than begin announced");
        self.left = self.left.saturating_sub(1);
        let tag = varint(&mut self.buf, self.len, page);
        self.buf[tag] = 1;
        let at = varint(&mut self.buf, tag + 1, self.page_bytes as u64);
        let end = at + self.page_bytes;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let mapped = fill(&mut self.buf[at..end])?;
        if mapped && !is_zero(&self.buf[at..end]) {
            self.len = end;
        } else {
            self.buf[tag] = 0;
            self.len = tag + 1;
        }
        Ok(())
    }

    /// The message, complete (every announced page added).
    ///
    /// # Errors
    /// It is over [`MAX_MESSAGE`] bytes.
    pub fn finish(&self) -> Result<&[u8], MigrateError> {
        debug_assert_eq!(self.left, 0, "fewer pages than begin announced");
        if self.len > MAX_MESSAGE {
            return Err(MigrateError::Protocol(format!(
                "a message of {} bytes is over the {MAX_MESSAGE}-byte limit",
                self.len
            )));
        }
        Ok(&self.buf[..self.len])
    }
}

/// One page of a received `Pages` message, borrowed from its payload.
#[derive(Deserialize)]
struct PageIn<'a> {
    page: u64,
    #[serde(borrow)]
    data: Option<&'a [u8]>,
}

/// A received `Pages` message's body, borrowed from its payload.
#[derive(Deserialize)]
struct PagesIn<'a> {
    round: u32,
    #[serde(borrow)]
    pages: Vec<PageIn<'a>>,
}

/// Where a staged page's bytes are.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// All zero.
    Zero,
    /// In payload `buf`, at `off`, `len` bytes.
    At { buf: u32, off: u32, len: u32 },
}

/// The pages received so far, kept in the payloads they arrived in until
/// the process is built (newest copy of a page wins; a payload is freed as
/// soon as no page it holds is still wanted).
#[derive(Debug, Default)]
pub(crate) struct StagedPages {
    bufs: Vec<Vec<u8>>,
    /// The round and page count of each `Pages` message, in order (held
    /// to the state's report: `migrate/received.rs`).
    pub rounds: Vec<(u32, u64)>,
    /// Pages of each payload still staged.
    live: Vec<u32>,
    index: HashMap<u64, Slot>,
}

impl StagedPages {
    /// Keeps the pages of `payload` if it is a `Pages` message (and
    /// returns `None`); any other message is decoded and returned.
    ///
    /// # Errors
    /// The payload does not decode.
    pub fn take(&mut self, payload: Vec<u8>) -> Result<Option<Message>, MigrateError> {
        if payload.first() != Some(&PAGES_VARIANT) {
            return Message::decode(&payload).map(Some);
        }
        let body: PagesIn<'_> =
            postcard::from_bytes(&payload[1..]).map_err(|source| MigrateError::Codec {
                what: "a message that does not decode",
                source,
            })?;
        let buf = u32::try_from(self.bufs.len())
            .map_err(|_| MigrateError::Protocol("too many Pages messages".into()))?;
        self.rounds.push((body.round, body.pages.len() as u64));
        let base = payload.as_ptr() as usize;
        let mut slots = Vec::with_capacity(body.pages.len());
        for p in &body.pages {
            let slot = match p.data {
                None => Slot::Zero,
                Some(d) => Slot::At {
                    buf,
                    // Inside a payload of at most MAX_MESSAGE bytes.
                    off: (d.as_ptr() as usize - base) as u32,
                    len: d.len() as u32,
                },
            };
            slots.push((p.page, slot));
        }
        drop(body);
        self.bufs.push(payload);
        self.live.push(0);
        for (page, slot) in slots {
            self.put(page, slot);
        }
        self.release_if_unused(buf);
        Ok(None)
    }

    /// Stages the pages a `State` message carried itself.
    pub fn extend_owned(&mut self, pages: Vec<PageData>) {
        for p in pages {
            let slot = match p.data {
                None => Slot::Zero,
                Some(d) => {
                    let buf = self.bufs.len() as u32;
                    let len = d.len() as u32;
                    self.bufs.push(d);
                    self.live.push(0);
                    Slot::At { buf, off: 0, len }
                }
            };
            self.put(p.page, slot);
        }
    }

    fn put(&mut self, page: u64, slot: Slot) {
        if let Slot::At { buf, .. } = slot {
            self.live[buf as usize] += 1;
        }
        if let Some(Slot::At { buf, .. }) = self.index.insert(page, slot) {
            self.live[buf as usize] -= 1;
            self.release_if_unused(buf);
        }
    }

    fn release_if_unused(&mut self, buf: u32) {
        if self.live[buf as usize] == 0 {
            self.bufs[buf as usize] = Vec::new();
        }
    }

    /// Hands the bytes of `page` to `f` (`None`: all zero) and forgets
    /// them; `None` if the page never arrived.
    pub fn with_page<T>(&mut self, page: u64, f: impl FnOnce(Option<&[u8]>) -> T) -> Option<T> {
        let slot = self.index.remove(&page)?;
        Some(match slot {
            Slot::Zero => f(None),
            Slot::At { buf, off, len } => {
                let (o, l) = (off as usize, len as usize);
                let v = f(Some(&self.bufs[buf as usize][o..o + l]));
                self.live[buf as usize] -= 1;
                self.release_if_unused(buf);
                v
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(i: u64, fill: u8) -> PageData {
        PageData {
            page: i << 12,
            data: (fill != 0).then(|| {
                let mut v = vec![fill; 4096];
                v[(i as usize * 7) % 4096] = fill.wrapping_add(1);
                v
            }),
        }
    }

    #[test]
    fn the_writer_encodes_what_message_pages_encodes() {
        for (round, pages) in [
            (1u32, vec![]),
            (1, vec![page(1, 0)]),
            (3, vec![page(0, 9), page(5, 0), page(1 << 40, 3)]),
            (300, (0..256).map(|i| page(i * 3, (i % 5) as u8)).collect()),
        ] {
            let mut w = PagesWriter::new(4096);
            w.begin(round, pages.len());
            for p in &pages {
                w.page(p.page, |buf| -> Result<bool, ()> {
                    match &p.data {
                        Some(d) => buf.copy_from_slice(d),
                        None => buf.fill(0),
                    }
                    Ok(true)
                })
                .expect("fill");
            }
            let want = Message::Pages {
                round,
                pages: pages.clone(),
            }
            .encode()
            .expect("encode");
            assert_eq!(w.finish().expect("finish"), &want[..]);
            // Unmapped pages go as zero pages.
            let mut w2 = PagesWriter::new(4096);
            w2.begin(round, pages.len());
            for p in &pages {
                w2.page(p.page, |buf| -> Result<bool, ()> {
                    match &p.data {
                        Some(d) => {
                            buf.copy_from_slice(d);
                            Ok(true)
                        }
                        None => Ok(false),
                    }
                })
                .expect("fill");
            }
            assert_eq!(w2.finish().expect("finish"), &want[..]);
        }
    }

    #[test]
    fn staged_pages_keep_the_newest_copy_and_free_payloads() {
        let mut s = StagedPages::default();
        let first = Message::Pages {
            round: 1,
            pages: vec![page(1, 1), page(2, 2), page(3, 0)],
        };
        let second = Message::Pages {
            round: 2,
            pages: vec![page(1, 7), page(2, 8)],
        };
        assert!(s.take(first.encode().expect("e")).expect("t").is_none());
        assert!(s.take(second.encode().expect("e")).expect("t").is_none());
        // Every page of the first payload was sent again or is zero: freed.
        assert_eq!(s.bufs[0].capacity(), 0);
        let other = Message::Progress { references: 5 };
        assert_eq!(s.take(other.encode().expect("e")).expect("t"), Some(other));
        s.extend_owned(vec![page(9, 4)]);
        assert_eq!(
            s.with_page(1 << 12, |d| d.map(<[u8]>::to_vec)),
            Some(page(1, 7).data)
        );
        assert_eq!(
            s.with_page(2 << 12, |d| d.map(<[u8]>::to_vec)),
            Some(page(2, 8).data)
        );
        assert_eq!(s.bufs[1].capacity(), 0, "both pages taken: freed");
        assert_eq!(s.with_page(3 << 12, |d| d.is_none()), Some(true));
        assert_eq!(
            s.with_page(9 << 12, |d| d.map(<[u8]>::to_vec)),
            Some(page(9, 4).data)
        );
        assert_eq!(s.with_page(1 << 12, |_| ()), None);
    }

    #[test]
    fn a_forged_pages_payload_is_a_protocol_error() {
        let mut s = StagedPages::default();
        let mut bad = Message::Pages {
            round: 1,
            pages: vec![page(1, 1)],
        }
        .encode()
        .expect("e");
        bad.truncate(bad.len() - 100);
        let e = s.take(bad).expect_err("truncated");
        assert!(matches!(e, MigrateError::Codec { .. }), "{e:?}");
        assert!(
            std::error::Error::source(&e)
                .and_then(|c| c.downcast_ref::<postcard::Error>())
                .is_some()
        );
        assert!(s.take(vec![PAGES_VARIANT, 1, 200]).is_err());
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0; 4096]));
        assert!(is_zero(&[0; 70]));
        for i in [0, 63, 64, 4095] {
            let mut b = [0u8; 4096];
            b[i] = 1;
            assert!(!is_zero(&b), "{i}");
        }
        let mut b = [0u8; 70];
        b[69] = 1;
        assert!(!is_zero(&b));
    }
}
