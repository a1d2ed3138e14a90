//! The authenticated channel a migration runs over: TCP (std::net,
//! blocking, a timeout on every read and write), one length-prefixed
//! message per frame, every frame authenticated with HMAC-SHA256.
//!
//! Handshake (both sides hold the same pre-shared key file):
//! 1. the listener sends a magic and a fresh 32-byte nonce `ns`;
//! 2. the connecting side answers its own nonce `nc` and
//!    `HMAC(key, "client" | ns | nc)`;
//! 3. the listener checks it (a wrong key is dropped here, with one line in
//!    its log) and proves itself with `HMAC(key, "server" | nc | ns)`;
//! 4. both derive the session key `HMAC(key, "session" | ns | nc)`.
//!
//! Every frame after that is `len (u32, big endian) | payload | tag`, the
//! tag `HMAC(session, direction | sequence number | len | payload)`; the
//! receiver counts frames itself, so a replayed, reordered or dropped frame
//! fails its tag, and fresh nonces make frames of another session useless.
//! A length over [`MAX_MESSAGE`] is refused before anything is allocated.

use std::io::{BufReader, BufWriter, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vmsim::migrate::{MAX_MESSAGE, Message, MigrateError, MsgRecv, MsgSend};

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 16] = b"VMSIM-MIGRATE/1\n";
const TAG: usize = 32;
const NONCE: usize = 32;

/// A pre-shared key, read from a file only its owner can read.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Reads the key in `path`: its bytes, trailing whitespace removed, at
    /// least 16 of them. Refused if the file is readable or writable by
    /// anyone but its owner.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let name = path.display();
        let meta = std::fs::metadata(path).with_context(|| format!("key file {name}"))?;
        if !meta.is_file() {
            bail!("key file {name}: not a regular file");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "key file {name} is readable or writable by others (mode {mode:03o}): run chmod 600 {name}"
                );
            }
        }
        if meta.len() > 4096 {
            bail!(
                "key file {name}: {} bytes; a key file holds at most 4096",
                meta.len()
            );
        }
        let bytes = std::fs::read(path).with_context(|| format!("key file {name}"))?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        if end < 16 {
            bail!(
                "key file {name}: a key needs at least 16 bytes (vmsim migrate keygen makes one)"
            );
        }
        Ok(Self(bytes[..end].to_vec()))
    }

    /// Writes a new random key (64 hex digits) to `path`, readable by its
    /// owner only; never over an existing file.
    pub fn generate(path: &Path) -> anyhow::Result<()> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .with_context(|| format!("key file {}", path.display()))?;
        let r = f
            .write_all(format!("{hex}\n").as_bytes())
            .and_then(|()| f.sync_all());
        if let Err(e) = r {
            let _ = std::fs::remove_file(path);
            return Err(e).with_context(|| format!("key file {}", path.display()));
        }
        Ok(())
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.0, parts)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

fn io_err(what: &str, e: &std::io::Error, timeout: Duration) -> MigrateError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => MigrateError::Link(
            format!("{what}: no answer within {} s (timeout)", timeout.as_secs()),
        ),
        std::io::ErrorKind::UnexpectedEof => {
            MigrateError::Closed(format!("{what}: the stream ended (truncated)"))
        }
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => {
            MigrateError::Closed(format!("{what}: the other side went away ({e})"))
        }
        _ => MigrateError::Link(format!("{what}: {e}")),
    }
}

/// The sending half of an authenticated connection.
#[derive(Debug)]
pub struct Sender {
    out: BufWriter<TcpStream>,
    session: [u8; 32],
    seq: u64,
    dir: u8,
    timeout: Duration,
}

/// The receiving half of an authenticated connection.
#[derive(Debug)]
pub struct Receiver {
    inp: BufReader<TcpStream>,
    session: [u8; 32],
    seq: u64,
    dir: u8,
    timeout: Duration,
    peer: String,
    adopted_at: Option<(Instant, Option<f64>)>,
}

impl Sender {
    /// Frames and sends raw payload bytes (the message's encoding).
    /// Small frames gather in the buffer and go in one write; a large one
    /// (page data) goes as one vectored write of length, payload and tag,
    /// straight from the caller's buffer.
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<u64, MigrateError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l as usize <= MAX_MESSAGE)
            .ok_or_else(|| MigrateError::Protocol("a message over the size limit".into()))?;
        let tag = mac(
            &self.session,
            &[
                &[self.dir],
                &self.seq.to_le_bytes(),
                &len.to_be_bytes(),
                payload,
            ],
        );
        self.seq += 1;
        let t = self.timeout;
        let head = len.to_be_bytes();
        let w = &mut self.out;
        let r = if payload.len() >= w.capacity() {
            w.flush()
                .and_then(|()| write_all_vectored(w.get_mut(), &mut [&head[..], payload, &tag]))
        } else {
            w.write_all(&head)
                .and_then(|()| w.write_all(payload))
                .and_then(|()| w.write_all(&tag))
                .and_then(|()| w.flush())
        };
        r.map_err(|e| io_err("sending", &e, t))?;
        Ok(4 + payload.len() as u64 + TAG as u64)
    }
}

/// Writes every byte of `parts`, in order, with as few system calls as the
/// socket allows.
fn write_all_vectored(w: &mut impl Write, parts: &mut [&[u8]]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl MsgSend for Sender {
    fn send_payload(&mut self, payload: &[u8]) -> Result<u64, MigrateError> {
        self.send_bytes(payload)
    }
}

impl Receiver {
    /// Receives one frame's payload, authenticated.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MigrateError> {
        let t = self.timeout;
        let mut len = [0u8; 4];
        self.inp
            .read_exact(&mut len)
            .map_err(|e| io_err(&format!("reading from {}", self.peer), &e, t))?;
        let n = u32::from_be_bytes(len);
        if n as usize > MAX_MESSAGE {
            return Err(MigrateError::Protocol(format!(
                "{} announced a message of {n} bytes, over the {MAX_MESSAGE}-byte limit",
                self.peer
            )));
        }
        let mut payload = vec![0u8; n as usize];
        let mut tag = [0u8; TAG];
        self.inp
            .read_exact(&mut payload)
            .and_then(|()| self.inp.read_exact(&mut tag))
            .map_err(|e| io_err(&format!("reading from {}", self.peer), &e, t))?;
        if !verify(
            &self.session,
            &[&[self.dir], &self.seq.to_le_bytes(), &len, &payload],
            &tag,
        ) {
            return Err(MigrateError::Auth(format!(
                "message {} from {} does not authenticate (tampered, replayed or out of order)",
                self.seq, self.peer
            )));
        }
        self.seq += 1;
        Ok(payload)
    }

    /// The other side's address.
    #[must_use]
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// When an `Adopted` message arrived (the destination has built the
    /// process), and the receiving thread's CPU seconds then: the end of a
    /// migration in host time, for the source's timing line.
    #[must_use]
    pub fn adopted_at(&self) -> Option<(Instant, Option<f64>)> {
        self.adopted_at
    }
}

impl MsgRecv for Receiver {
    fn recv_payload(&mut self) -> Result<Vec<u8>, MigrateError> {
        self.recv_bytes()
    }

    fn recv(&mut self) -> Result<Message, MigrateError> {
        let m = Message::decode(&self.recv_bytes()?)?;
        if matches!(m, Message::Adopted { .. }) {
            self.adopted_at = Some((Instant::now(), crate::cmd::policy::thread_cpu_seconds()));
        }
        Ok(m)
    }
}

fn halves(
    stream: TcpStream,
    session: [u8; 32],
    client: bool,
    timeout: Duration,
) -> Result<(Sender, Receiver), MigrateError> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "the other side".into(), |a| a.to_string());
    let read = stream
        .try_clone()
        .map_err(|e| MigrateError::Link(format!("{peer}: {e}")))?;
    let (send_dir, recv_dir) = if client { (b'c', b's') } else { (b's', b'c') };
    Ok((
        Sender {
            out: BufWriter::with_capacity(1 << 16, stream),
            session,
            seq: 0,
            dir: send_dir,
            timeout,
        },
        Receiver {
            inp: BufReader::with_capacity(1 << 16, read),
            session,
            seq: 0,
            dir: recv_dir,
            timeout,
            peer,
            adopted_at: None,
        },
    ))
}

fn set_timeouts(s: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)
}

/// Connects to a listener at `addr` and authenticates both ways.
pub fn connect(addr: &str, key: &Key, timeout: Duration) -> anyhow::Result<(Sender, Receiver)> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("--migrate-to {addr}: expected HOST:PORT"))?
        .collect();
    let Some(first) = addrs.first() else {
        bail!("--migrate-to {addr}: the name has no address");
    };
    let mut s = TcpStream::connect_timeout(first, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    set_timeouts(&s, timeout)?;
    let t = timeout;
    let mut hello = [0u8; 16 + NONCE];
    s.read_exact(&mut hello)
        .map_err(|e| io_err(&format!("handshake with {addr}"), &e, t))?;
    if &hello[..16] != MAGIC {
        bail!("{addr} is not a vmsim migration listener (wrong greeting)");
    }
    let ns = &hello[16..];
    let mut nc = [0u8; NONCE];
    getrandom::fill(&mut nc).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let proof = key.mac(&[b"client", ns, &nc]);
    s.write_all(&nc)
        .and_then(|()| s.write_all(&proof))
        .map_err(|e| io_err(&format!("handshake with {addr}"), &e, t))?;
    let mut theirs = [0u8; TAG];
    if let Err(e) = s.read_exact(&mut theirs) {
        if e.kind() == std::io::ErrorKind::UnexpectedEof
            || e.kind() == std::io::ErrorKind::ConnectionReset
        {
            bail!("authentication failed: {addr} did not accept this key (wrong --key-file?)");
        }
        return Err(io_err(&format!("handshake with {addr}"), &e, t).into());
    }
    if !verify(&key.0, &[b"server", &nc, ns], &theirs) {
        bail!("authentication failed: {addr} does not hold the same key (wrong --key-file?)");
    }
    let session = key.mac(&[b"session", ns, &nc]);
    Ok(halves(s, session, true, timeout)?)
}

/// Authenticates one connection accepted by a listener; an error means
/// the peer is dropped (the caller logs one line and waits for the next).
pub fn authenticate(
    mut s: TcpStream,
    key: &Key,
    timeout: Duration,
) -> Result<(Sender, Receiver), MigrateError> {
    let peer = s.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string());
    set_timeouts(&s, timeout).map_err(|e| MigrateError::Link(format!("{peer}: {e}")))?;
    let t = timeout;
    let mut ns = [0u8; NONCE];
    getrandom::fill(&mut ns).map_err(|e| MigrateError::Link(format!("no randomness: {e}")))?;
    s.write_all(MAGIC)
        .and_then(|()| s.write_all(&ns))
        .map_err(|e| io_err(&format!("handshake with {peer}"), &e, t))?;
    let mut answer = [0u8; NONCE + TAG];
    s.read_exact(&mut answer)
        .map_err(|e| io_err(&format!("handshake with {peer}"), &e, t))?;
    let (nc, proof) = answer.split_at(NONCE);
    if !verify(&key.0, &[b"client", &ns, nc], proof) {
        return Err(MigrateError::Auth(format!(
            "{peer} does not hold the key (wrong key or not a vmsim source)"
        )));
    }
    let mine = key.mac(&[b"server", nc, &ns]);
    s.write_all(&mine)
        .map_err(|e| io_err(&format!("handshake with {peer}"), &e, t))?;
    let session = key.mac(&[b"session", &ns, nc]);
    halves(s, session, false, timeout)
}

/// A listener bound to `addr` (loopback unless an address is given).
pub fn listen(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> Key {
        Key(bytes.to_vec())
    }

    type Halves = (Sender, Receiver);

    /// A connected, authenticated pair over loopback, the listener's side second.
    fn pair(
        client_key: &[u8],
        server_key: &[u8],
    ) -> (anyhow::Result<Halves>, Result<Halves, MigrateError>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let sk = key(server_key);
        let t = Duration::from_secs(5);
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            authenticate(s, &sk, t)
        });
        let client = connect(&addr, &key(client_key), t);
        let server = server.join().expect("thread");
        (client, server)
    }

    #[test]
    fn same_key_talks_both_ways() {
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((mut ctx, mut crx), (mut stx, mut srx)) = (c.expect("client"), s.expect("server"));
        ctx.send(&Message::Progress { references: 7 })
            .expect("send");
        assert_eq!(
            srx.recv().expect("recv"),
            Message::Progress { references: 7 }
        );
        stx.send(&Message::Accept { frames: 3 }).expect("send");
        assert_eq!(crx.recv().expect("recv"), Message::Accept { frames: 3 });
    }

    #[test]
    fn a_wrong_key_is_refused_on_both_sides() {
        let (c, s) = pair(b"0123456789abcdef-one", b"0123456789abcdef-two");
        let s = s.expect_err("server must refuse");
        assert!(matches!(s, MigrateError::Auth(_)), "{s}");
        let c = c.expect_err("client must fail").to_string();
        assert!(c.contains("authentication failed"), "{c}");
    }

    /// A raw frame the way a sender makes it, to tamper with.
    fn frame(session: &[u8; 32], dir: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let tag = mac(session, &[&[dir], &seq.to_le_bytes(), &len, payload]);
        let mut v = len.to_vec();
        v.extend_from_slice(payload);
        v.extend_from_slice(&tag);
        v
    }

    #[test]
    fn tampered_replayed_and_oversized_messages_are_refused() {
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((ctx, _crx), (_stx, mut srx)) = (c.expect("client"), s.expect("server"));
        let session = ctx.session;
        let mut raw = ctx.out.into_inner().map_err(|_| ()).expect("stream");
        let payload = Message::Progress { references: 1 }
            .encode()
            .expect("encode");
        let good = frame(&session, b'c', 0, &payload);
        // A good frame, then the same frame again (a replay).
        raw.write_all(&good).expect("write");
        raw.write_all(&good).expect("write");
        assert!(srx.recv().is_ok());
        let e = srx.recv().expect_err("a replay");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        // A tampered frame on a fresh connection.
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((ctx, _crx), (_stx, mut srx)) = (c.expect("client"), s.expect("server"));
        let session = ctx.session;
        let mut raw = ctx.out.into_inner().map_err(|_| ()).expect("stream");
        let mut bad = frame(&session, b'c', 0, &payload);
        bad[5] ^= 1;
        raw.write_all(&bad).expect("write");
        let e = srx.recv().expect_err("tampered");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        // A length over the limit is refused before allocating.
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((ctx, _crx), (_stx, mut srx)) = (c.expect("client"), s.expect("server"));
        let mut raw = ctx.out.into_inner().map_err(|_| ()).expect("stream");
        raw.write_all(&u32::MAX.to_be_bytes()).expect("write");
        let e = srx.recv().expect_err("oversized");
        assert!(e.to_string().contains("over the"), "{e}");
        // A truncated stream (both handles of the socket closed).
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((ctx, crx), (_stx, mut srx)) = (c.expect("client"), s.expect("server"));
        let mut raw = ctx.out.into_inner().map_err(|_| ()).expect("stream");
        raw.write_all(&good[..good.len() - 5]).expect("write");
        drop(raw);
        drop(crx);
        let e = srx.recv().expect_err("truncated");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
