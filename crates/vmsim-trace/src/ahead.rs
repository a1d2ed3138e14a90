//! A trace file's reader run on a helper thread, a few batches ahead of
//! the simulation that consumes them.
//!
//! Reading a lackey trace (zstd decompression, then parsing the text) costs
//! more per reference than simulating it. With two cores, [`ReadAhead`]
//! moves the whole reader (decompression and parsing, on the bytes the
//! decompressor wrote, with no copy between them) to a second thread, so the
//! consumer's thread only simulates. Used for lackey files when
//! [`crate::input::overlap_helps`] says so; otherwise the reader runs on the
//! consumer's thread as it is. (A `.vmt` reader is cheap next to the
//! simulation and decodes whole sections at a time, which a pipeline a few
//! batches deep does not overlap: measured no faster, so it stays.)
//!
//! What the consumer sees is exactly what the wrapped reader returns, in the
//! same order: every batch, the records of the last batch before an error
//! together with that error, then nothing. Batches are recycled through two
//! channels (full ones to the consumer, empty ones back), so nothing is
//! allocated per batch and at most `BATCHES_IN_FLIGHT` are ahead.

use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::access::Access;
use crate::error::TraceError;
use crate::source::{BATCH, TraceSource};

/// Batches parsed ahead of the consumer, at most (with the one it holds and
/// the one being filled: 96 KiB each).
const BATCHES_IN_FLIGHT: usize = 4;

/// How long the consumer polls for a batch that is not ready before it
/// sleeps. The reader is usually the slower side, so the consumer waits a
/// little for almost every batch: sleeping each time cost more than the
/// wait (a futex wake-up per batch, and on a busy machine the core given
/// away), while a batch takes about 0.1-0.2 ms to parse.
const POLL: Duration = Duration::from_micros(500);

/// A batch, what the reader's `next_batch` returned for it and the
/// reader's [`TraceSource::batch_pid`] after it.
type Filled = (Vec<Access>, Result<usize, TraceError>, Option<u32>);

/// A [`TraceSource`] read on a helper thread (see the module documentation).
/// The thread starts at the first batch asked for, so the reader can still
/// be configured until then ([`ReadAhead::reader_mut`]).
#[derive(Debug)]
pub struct ReadAhead<S> {
    state: State<S>,
    /// Whether dropping early may wait for the thread (not when it reads
    /// standard input, where a read can block until the writer closes it).
    join_on_drop: bool,
    /// The thread was started (or could not be: then the reader stays `Idle`).
    started: bool,
    /// The reader's [`TraceSource::batch_pid`] for the last batch handed out.
    batch_pid: Option<u32>,
}

#[derive(Debug)]
enum State<S> {
    /// Not started: the reader, still on this thread.
    Idle(S),
    /// The helper thread reads.
    Running(Running),
    /// The reader has returned its end or an error: nothing more comes.
    Done,
    /// Transient, while starting.
    Moved,
}

#[derive(Debug)]
struct Running {
    full: Receiver<Filled>,
    empty: Sender<Vec<Access>>,
    worker: Option<JoinHandle<()>>,
}

impl<S: TraceSource + Send + 'static> ReadAhead<S> {
    /// Wraps `reader`; `stdin` says it reads standard input.
    pub fn new(reader: S, stdin: bool) -> Self {
        Self {
            state: State::Idle(reader),
            join_on_drop: !stdin,
            started: false,
            batch_pid: None,
        }
    }

    /// The reader, until the first batch is asked for (then `None`).
    pub fn reader_mut(&mut self) -> Option<&mut S> {
        match &mut self.state {
            State::Idle(r) if !self.started => Some(r),
            _ => None,
        }
    }

    /// Starts the helper thread on the reader. If the thread cannot be
    /// created, the reader stays on this thread and is used there.
    fn start(&mut self) {
        let State::Idle(reader) = std::mem::replace(&mut self.state, State::Moved) else {
            return;
        };
        let (full_tx, full_rx) = sync_channel::<Filled>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = channel::<Vec<Access>>();
        for _ in 0..BATCHES_IN_FLIGHT {
            // The receiver is alive (held below), so this cannot fail.
            let _ = empty_tx.send(Vec::with_capacity(BATCH));
        }
        // The reader is handed over once the thread exists, so that if it
        // cannot be created the reader is still here.
        let (hand_tx, hand_rx) = channel::<S>();
        let spawned = std::thread::Builder::new()
            .name("vmsim-read".to_owned())
            .spawn(move || {
                if let Ok(reader) = hand_rx.recv() {
                    read_worker(reader, &full_tx, &empty_rx);
                }
            });
        self.state = match spawned {
            Ok(worker) => {
                // The thread holds the receiver until it has the reader.
                let _ = hand_tx.send(reader);
                State::Running(Running {
                    full: full_rx,
                    empty: empty_tx,
                    worker: Some(worker),
                })
            }
            Err(_) => State::Idle(reader),
        };
    }
}

/// The helper thread: fill a recycled batch, send it with the reader's
/// result, until the reader ends or fails (sent as the last message) or the
/// consumer goes away.
fn read_worker<S: TraceSource>(
    mut reader: S,
    full: &SyncSender<Filled>,
    empty: &Receiver<Vec<Access>>,
) {
    loop {
        let Ok(mut batch) = empty.recv() else { return };
        let result = reader.next_batch(&mut batch);
        let last = !matches!(result, Ok(n) if n > 0);
        let pid = reader.batch_pid();
        if full.send((batch, result, pid)).is_err() || last {
            return;
        }
    }
}

/// The next message from the reader: polled for up to [`POLL`], then
/// waited for. `Err` when the thread has gone without its last message.
fn receive(full: &Receiver<Filled>) -> Result<Filled, ()> {
    let start = Instant::now();
    loop {
        match full.try_recv() {
            Ok(filled) => return Ok(filled),
            Err(TryRecvError::Disconnected) => return Err(()),
            Err(TryRecvError::Empty) => {}
        }
        // Gives the core to the reader if they share it (a busy machine).
        std::thread::yield_now();
        if start.elapsed() >= POLL {
            return full.recv().map_err(|_| ());
        }
    }
}

impl<S: TraceSource + Send + 'static> TraceSource for ReadAhead<S> {
    fn next_batch(&mut self, out: &mut Vec<Access>) -> Result<usize, TraceError> {
        if !self.started {
            self.started = true;
            self.start();
        }
        self.batch_pid = None;
        let running = match &mut self.state {
            State::Idle(reader) => {
                let result = reader.next_batch(out);
                self.batch_pid = reader.batch_pid();
                return result;
            }
            State::Running(r) => r,
            State::Done | State::Moved => {
                out.clear();
                return Ok(0);
            }
        };
        let Ok((mut batch, result, pid)) = receive(&running.full) else {
            // The thread ended without its last message: it panicked.
            // Raise its panic here, as if the reader had run on this thread.
            let worker = running.worker.take();
            self.state = State::Done;
            if let Some(Err(panic)) = worker.map(JoinHandle::join) {
                std::panic::resume_unwind(panic);
            }
            out.clear();
            return Ok(0);
        };
        std::mem::swap(out, &mut batch);
        self.batch_pid = pid;
        // The consumer's previous batch goes back to be filled (if the
        // thread has already ended, it is simply dropped).
        let _ = running.empty.send(batch);
        if !matches!(result, Ok(n) if n > 0) {
            self.finish();
        }
        result
    }

    fn batch_pid(&self) -> Option<u32> {
        self.batch_pid
    }
}

impl<S> ReadAhead<S> {
    /// Stops the helper thread (if any) and waits for it when allowed.
    fn finish(&mut self) {
        let State::Running(running) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        let Running {
            full,
            empty,
            worker,
        } = running;
        // Closing both channels makes the thread's next send or recv fail.
        drop(empty);
        // Drain what is queued so a thread blocked on `send` wakes up.
        while !matches!(
            full.try_recv(),
            Err(TryRecvError::Disconnected | TryRecvError::Empty)
        ) {}
        drop(full);
        if self.join_on_drop
            && let Some(worker) = worker
        {
            // A panic of the thread after its last batch changes nothing here.
            let _ = worker.join();
        }
    }
}

impl<S> Drop for ReadAhead<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessKind;
    use crate::lackey::LackeyReader;
    use std::io::Write;
    use std::path::PathBuf;

    /// A lackey text of `n` records behind a banner, and what it holds.
    fn lackey_text(n: u64) -> (String, Vec<Access>) {
        let mut text = String::from("==77== Lackey\n");
        let mut want = Vec::new();
        for i in 0..n {
            let va = 0x1000 + i * 0x47;
            let size = 1 + (i % 8) as u32;
            let (tag, kind) = match i % 4 {
                0 => ("I  ", AccessKind::Instr),
                1 => (" L ", AccessKind::Load),
                2 => (" S ", AccessKind::Store),
                _ => (" M ", AccessKind::Modify),
            };
            text.push_str(&format!("{tag}{va:08x},{size}\n"));
            want.push(Access {
                va,
                pid: 77,
                size,
                kind,
            });
        }
        (text, want)
    }

    fn reader(text: &str) -> LackeyReader<std::io::Cursor<Vec<u8>>> {
        LackeyReader::new(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            "t.lackey",
            false,
        )
    }

    /// Every batch, in order, as the reader alone returns them.
    fn batches<S: TraceSource>(s: &mut S) -> (Vec<Vec<Access>>, Option<TraceError>) {
        let mut out = Vec::new();
        let mut batch = Vec::new();
        loop {
            match s.next_batch(&mut batch) {
                Ok(0) => {
                    assert!(batch.is_empty());
                    return (out, None);
                }
                Ok(n) => {
                    assert_eq!(n, batch.len());
                    out.push(batch.clone());
                }
                Err(e) => {
                    out.push(batch.clone());
                    return (out, Some(e));
                }
            }
        }
    }

    #[test]
    fn the_same_batches_in_the_same_order() {
        let (text, want) = lackey_text(50_000);
        let (alone, err) = batches(&mut reader(&text));
        assert!(err.is_none());
        let mut ahead = ReadAhead::new(reader(&text), false);
        let (piped, err) = batches(&mut ahead);
        assert!(err.is_none());
        assert_eq!(piped, alone);
        assert_eq!(piped.concat(), want);
        // After the end, nothing more.
        let mut batch = vec![want[0]];
        assert_eq!(ahead.next_batch(&mut batch).expect("ended"), 0);
        assert!(batch.is_empty());
    }

    /// Each batch comes with the pid the reader claimed for it.
    #[test]
    fn each_batch_comes_with_its_pid() {
        let (text, _) = lackey_text(20_000);
        let mut alone = reader(&text);
        let mut ahead = ReadAhead::new(reader(&text), false);
        let (mut a, mut p) = (Vec::new(), Vec::new());
        loop {
            let n = alone.next_batch(&mut a).expect("valid");
            assert_eq!(ahead.next_batch(&mut p).expect("valid"), n);
            assert_eq!(ahead.batch_pid(), alone.batch_pid());
            if n == 0 {
                break;
            }
            assert_eq!(ahead.batch_pid(), Some(77));
        }
    }

    /// A malformed line: the records before it arrive first, then the
    /// error naming the same line, with the same partial batch.
    #[test]
    fn an_error_comes_after_the_records_before_it() {
        let (mut text, _) = lackey_text(10_000);
        text.push_str(" L 12x4,8\n");
        text.push_str(&lackey_text(100).0);
        let (alone, alone_err) = batches(&mut reader(&text));
        let mut ahead = ReadAhead::new(reader(&text), false);
        let (piped, piped_err) = batches(&mut ahead);
        assert_eq!(piped, alone);
        let (Some(a), Some(p)) = (alone_err, piped_err) else {
            panic!("both fail");
        };
        assert_eq!(a.to_string(), p.to_string());
        assert!(
            matches!(p, TraceError::Malformed { line: 10_002, .. }),
            "{p}"
        );
        let mut batch = Vec::new();
        assert_eq!(ahead.next_batch(&mut batch).expect("ended"), 0);
    }

    /// Configuration before the first batch reaches the reader: an empty
    /// trace is an error unless allowed.
    #[test]
    fn the_reader_is_configured_before_it_starts() {
        let mut ahead = ReadAhead::new(reader("==1== x\n"), false);
        assert!(matches!(
            ahead.next_batch(&mut Vec::new()),
            Err(TraceError::Empty { .. })
        ));
        assert!(ahead.reader_mut().is_none());
        let mut ahead = ReadAhead::new(reader("==1== x\n"), false);
        ahead.reader_mut().expect("idle").set_allow_empty(true);
        assert_eq!(ahead.next_batch(&mut Vec::new()).expect("allowed"), 0);
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        let (text, _) = lackey_text(200_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let p: PathBuf = dir.path().join("t.lackey.zst");
        let mut f = std::fs::File::create(&p).expect("create");
        f.write_all(&zstd::stream::encode_all(text.as_bytes(), 1).expect("encode"))
            .expect("write");
        drop(f);
        let (input, format) = crate::input::open_file(&p, false).expect("open");
        assert_eq!(format, crate::input::Format::Lackey);
        let mut src = ReadAhead::new(LackeyReader::new(input, &p, true), false);
        let mut batch = Vec::new();
        assert!(src.next_batch(&mut batch).expect("a batch") > 0);
        drop(src); // must not hang
    }
}
