//! Shipping a run's checkpoint files to another machine for disaster
//! recovery: `vmsim run --checkpoint-to HOST:PORT` (the sending side, a
//! [`ChainMirror`]) and `vmsim checkpoint receive DIR` (the store).
//!
//! Both sides talk over the migration's authenticated channel
//! (`channel.rs`: pre-shared key, every frame sealed with AES-256-GCM under
//! a sequence-number nonce, bounded lengths, timeouts), so a frame that is tampered with,
//! replayed, reordered or dropped ends the connection. On top of it, one
//! frame per message, the first byte saying which:
//!
//! | message | bytes |
//! |---|---|
//! | hello | `H` + `vmsim-checkpoints/1` |
//! | begin a file | `B` + seq (u64 LE) + length (u64 LE) + file name |
//! | file data | `C` + up to [`PIECE`] bytes |
//! | end of the file | `E` |
//! | stored (the store's answer to `E` and `D`) | `A` + seq (u64 LE) |
//! | refused (the store's answer) | `X` + one line |
//! | no more files | `D` + count (u64 LE) |
//!
//! The store writes each file under a temporary name in its directory and
//! renames it into place (synced, the directory synced) only once all its
//! bytes are in: a connection lost in the middle of a file leaves no file
//! named like a checkpoint, and every checkpoint before it complete. It
//! acknowledges each stored file; the sender ships checkpoint K only after
//! K-1 was acknowledged (the chain writer has one file in flight).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use vmsim::checkpoint::{ChainMirror, MirrorError, file_name};

use crate::channel::{self, Key, Receiver, Sender};

/// The first message of a shipping connection.
const HELLO: &[u8] = b"Hvmsim-checkpoints/1";

/// File data per message (well under the channel's message limit).
pub const PIECE: usize = 4 << 20;

/// The sending side: ships each finished checkpoint file to a store.
#[derive(Debug)]
pub struct Shipper {
    tx: Sender,
    rx: Receiver,
    addr: String,
    sent: u64,
}

impl Shipper {
    /// Connects to the store at `addr` and says hello.
    pub fn connect(addr: &str, key: &Key, timeout: Duration) -> anyhow::Result<Self> {
        let (mut tx, rx) = channel::connect(addr, key, timeout)
            .with_context(|| format!("--checkpoint-to {addr}"))?;
        tx.send_bytes(HELLO)
            .with_context(|| format!("--checkpoint-to {addr}"))?;
        Ok(Self {
            tx,
            rx,
            addr: addr.to_string(),
            sent: 0,
        })
    }

    /// Waits for the store's answer to a file or to the end.
    fn answer(&mut self, seq: u64) -> Result<(), String> {
        let a = self.rx.recv_bytes().map_err(|e| e.to_string())?;
        match a.split_first() {
            Some((b'A', rest)) if rest == seq.to_le_bytes() => Ok(()),
            Some((b'X', why)) => Err(format!(
                "the store at {} refused it: {}",
                self.addr,
                String::from_utf8_lossy(why)
            )),
            _ => Err(format!("the store at {} answered nonsense", self.addr)),
        }
    }
}

fn seq_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("ckpt-")?.strip_suffix(".vmck")?;
    if digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

impl ChainMirror for Shipper {
    fn ship(&mut self, name: &str, path: &Path) -> Result<(), MirrorError> {
        let seq = seq_of(name).ok_or_else(|| format!("{name} is not a checkpoint file name"))?;
        let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
        let len = f
            .metadata()
            .with_context(|| path.display().to_string())?
            .len();
        let mut begin = Vec::with_capacity(17 + name.len());
        begin.push(b'B');
        begin.extend_from_slice(&seq.to_le_bytes());
        begin.extend_from_slice(&len.to_le_bytes());
        begin.extend_from_slice(name.as_bytes());
        self.tx.send_bytes(&begin)?;
        let mut piece = vec![0u8; PIECE + 1];
        piece[0] = b'C';
        let mut left = len;
        while left > 0 {
            let n = (left as usize).min(PIECE);
            f.read_exact(&mut piece[1..=n])
                .with_context(|| path.display().to_string())?;
            self.tx.send_bytes(&piece[..=n])?;
            left -= n as u64;
        }
        self.tx.send_bytes(b"E")?;
        self.answer(seq)?;
        self.sent += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MirrorError> {
        let mut done = vec![b'D'];
        done.extend_from_slice(&self.sent.to_le_bytes());
        self.tx.send_bytes(&done)?;
        Ok(self.answer(self.sent)?)
    }
}

/// What a store received from one source.
#[derive(Debug, Default)]
pub struct Received {
    /// Checkpoint files stored, in order.
    pub files: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
    /// Whether the source said it was done (else the connection was lost).
    pub complete: bool,
}

/// Makes a rename in `dir` durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Receives checkpoint files from one authenticated source into `dir` (new
/// or without checkpoint files) until the source says it is done. Returns
/// what was stored, with `complete` false and the error if the connection
/// was lost or the source misbehaved (the files stored before are complete).
pub fn store(
    dir: &Path,
    tx: &mut Sender,
    rx: &mut Receiver,
    mut stored: impl FnMut(&str, u64),
) -> (Received, Option<anyhow::Error>) {
    let mut got = Received::default();
    let err = store_into(dir, tx, rx, &mut got, &mut stored).err();
    (got, err)
}

fn store_into(
    dir: &Path,
    tx: &mut Sender,
    rx: &mut Receiver,
    got: &mut Received,
    stored: &mut impl FnMut(&str, u64),
) -> anyhow::Result<()> {
    let peer = rx.peer().to_string();
    let hello = rx.recv_bytes()?;
    if hello != HELLO {
        bail!("{peer} is not a vmsim checkpoint source (it did not say hello)");
    }
    let refuse = |tx: &mut Sender, why: String| -> anyhow::Error {
        let mut m = vec![b'X'];
        m.extend_from_slice(why.as_bytes());
        let _ = tx.send_bytes(&m);
        anyhow::anyhow!("{peer}: {why}")
    };
    loop {
        let msg = rx.recv_bytes()?;
        match msg.split_first() {
            Some((b'D', rest)) => {
                let n = rest.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
                if n != got.files.len() as u64 {
                    return Err(refuse(
                        tx,
                        format!("says it sent {n} files, {} arrived", got.files.len()),
                    ));
                }
                let mut ack = vec![b'A'];
                ack.extend_from_slice(&n.to_le_bytes());
                tx.send_bytes(&ack)?;
                got.complete = true;
                return Ok(());
            }
            Some((b'B', rest)) if rest.len() >= 16 => {
                let seq = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
                let len = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
                let name = String::from_utf8_lossy(&rest[16..]).into_owned();
                let expect = got.files.len() as u64;
                // The name is made here, never taken from the wire as a path.
                if seq != expect || name != file_name(seq) {
                    return Err(refuse(
                        tx,
                        format!(
                            "sent {name:?} as checkpoint {seq}; expected {}",
                            file_name(expect)
                        ),
                    ));
                }
                let path = dir.join(file_name(seq));
                let mut tmp = vmsim_trace::output::temp_next_to(&path)
                    .with_context(|| format!("{}", path.display()))?;
                let mut left = len;
                loop {
                    let m = rx.recv_bytes()?;
                    match m.split_first() {
                        Some((b'C', data)) if data.len() as u64 <= left => {
                            tmp.write_all(data)
                                .with_context(|| format!("{}", path.display()))?;
                            left -= data.len() as u64;
                        }
                        Some((b'E', [])) if left == 0 => break,
                        _ => {
                            return Err(refuse(
                                tx,
                                format!(
                                    "{}: the data does not match its announced {len} bytes",
                                    file_name(seq)
                                ),
                            ));
                        }
                    }
                }
                vmsim_trace::output::commit(tmp, &path)
                    .with_context(|| format!("{}", path.display()))?;
                sync_dir(dir);
                got.files.push(file_name(seq));
                got.bytes += len;
                stored(&file_name(seq), len);
                let mut ack = vec![b'A'];
                ack.extend_from_slice(&seq.to_le_bytes());
                tx.send_bytes(&ack)?;
            }
            _ => return Err(refuse(tx, "sent a message out of place".into())),
        }
    }
}

/// The directory a store writes into: created if missing; one that holds
/// checkpoint files already is refused (chains are never mixed).
pub fn store_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let existing = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| seq_of(&e.file_name().to_string_lossy()).is_some())
        .count();
    if existing > 0 {
        bail!(
            "{}: already holds {existing} checkpoint file(s); give an empty or new directory",
            dir.display()
        );
    }
    Ok(dir.to_path_buf())
}
