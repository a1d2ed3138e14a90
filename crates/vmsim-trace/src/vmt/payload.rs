//! The payload buffer of the `.vmt` reader: one block's verified bytes in
//! a buffer of a fixed, power-of-two-plus-window size, followed by a
//! sentinel, so that the decoder's hot loop needs no test of its position
//! against the payload's end (see [`Payload`]).

use std::fmt;
use std::io::{self, Read};

use crate::vmt::format::MAX_BLOCK_PAYLOAD;

/// Bytes the decoder's fast path reads at a record's start: the tag and an
/// address varint of up to 8 bytes.
pub(crate) const FAST_WINDOW: usize = 9;

/// Positions of a payload are below this power of two (every payload is
/// at most [`MAX_BLOCK_PAYLOAD`] bytes): a position masked with
/// [`POS_MASK`] is itself, and provably leaves a whole window in the
/// buffer.
const POS_SPAN: usize = (MAX_BLOCK_PAYLOAD as usize).next_power_of_two();

/// The mask that keeps a payload position in `0..POS_SPAN` (a no-op on
/// every real position: it is the decoder's proof, for the compiler, that
/// a window read at the position is inside the buffer).
pub(crate) const POS_MASK: usize = POS_SPAN - 1;

/// The buffer's length: every position below [`POS_SPAN`] and the window
/// after it.
pub(crate) const PAYLOAD_BUF: usize = POS_SPAN + FAST_WINDOW;

/// The byte written after the payload, [`FAST_WINDOW`] of them: as a tag
/// it is of no common shape (its pid bit is set), and as a varint byte it
/// never ends the varint (its top bit is set). So the decoder's fast path
/// stops at the payload's end by itself, and never takes a record whose
/// bytes run past it: such a record, or the end, is left to the careful
/// path, which sees the payload alone.
pub(crate) const SENTINEL: u8 = 0xff;

/// One block's payload: its bytes at the start of a fixed-size buffer,
/// [`SENTINEL`]s after them.
pub(crate) struct Payload {
    buf: Box<[u8; PAYLOAD_BUF]>,
    len: usize,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload").field("len", &self.len).finish()
    }
}

impl Payload {
    /// An empty payload (its buffer allocated zeroed: untouched pages cost
    /// nothing).
    pub(crate) fn new() -> Self {
        let buf = vec![0u8; PAYLOAD_BUF]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("the vector has PAYLOAD_BUF bytes"));
        Self { buf, len: 0 }
    }

    /// Reads `len` bytes from `input` as the payload, the sentinel after
    /// them. A `len` over [`MAX_BLOCK_PAYLOAD`] is refused (`InvalidInput`;
    /// the caller has refused it before).
    pub(crate) fn read_from<R: Read>(&mut self, input: &mut R, len: usize) -> io::Result<()> {
        if len > MAX_BLOCK_PAYLOAD as usize {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        self.len = 0;
        input.read_exact(&mut self.buf[..len])?;
        self.buf[len..len + FAST_WINDOW].fill(SENTINEL);
        self.len = len;
        Ok(())
    }

    /// The payload's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The whole buffer: the payload, then at least [`FAST_WINDOW`]
    /// sentinels.
    pub(crate) fn padded(&self) -> &[u8; PAYLOAD_BUF] {
        &self.buf
    }
}
