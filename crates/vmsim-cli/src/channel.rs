//! The authenticated, encrypted channel a migration (and the shipping of
//! checkpoint files) runs over: TCP (std::net, blocking, a timeout on every
//! read and write), one length-prefixed message per frame, every frame
//! sealed with AES-256-GCM (the `ring` crate: AES-NI and carry-less
//! multiplication, several GB/s on one core, where HMAC-SHA256 made the
//! MAC the largest cost of moving page data; and page contents, which are
//! a process's private memory, no longer cross the link in clear).
//!
//! Handshake (both sides hold the same pre-shared key file):
//! 1. the listener sends the greeting [`MAGIC`] (it names the protocol
//!    version: a peer of another version is refused with a line that says
//!    so) and a fresh 32-byte nonce `ns`;
//! 2. the connecting side answers its own nonce `nc` and
//!    `HMAC-SHA256(key, "client" | ns | nc)`;
//! 3. the listener checks it (a wrong key is dropped here, with one line in
//!    its log) and proves itself with `HMAC-SHA256(key, "server" | nc | ns)`;
//! 4. both derive the session secret `HMAC-SHA256(key, "session" | ns | nc)`
//!    and from it, with HKDF-SHA256, one AES-256-GCM key per direction.
//!
//! Every frame after that is `len (u32, big endian) | ciphertext | tag`
//! (the ciphertext as long as the payload, a 16-byte tag), sealed under the
//! sender's direction key with the nonce `direction | 0 0 0 | sequence
//! number (u64, little endian)` and `len` as associated data. The receiver
//! counts frames itself, so a replayed, reordered or dropped frame fails to
//! open, as does any change to the length, the ciphertext or the tag; fresh
//! nonces in the handshake make frames of another session useless. A
//! length over [`MAX_MESSAGE`] is refused before anything is allocated.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;
use vmsim::migrate::{MAX_MESSAGE, Message, MigrateError, MsgRecv, MsgSend};

type HmacSha256 = Hmac<Sha256>;

/// The listener's greeting: the protocol and its version (2: frames sealed
/// with AES-256-GCM; 1 was HMAC-SHA256 tags on clear frames).
const MAGIC: &[u8; 16] = b"VMSIM-MIGRATE/2\n";
/// What every version's greeting starts with.
const MAGIC_PREFIX: &[u8] = b"VMSIM-MIGRATE/";
/// The handshake's MACs (HMAC-SHA256).
const MAC: usize = 32;
/// A sealed frame's tag (AES-256-GCM).
const TAG: usize = 16;
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

fn io_err(what: &str, e: std::io::Error, timeout: Duration) -> MigrateError {
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
        _ => MigrateError::Io {
            what: what.to_string(),
            source: e,
        },
    }
}

/// The AES-256-GCM key of one direction of a session: HKDF-SHA256 of the
/// session secret, the direction in the info.
fn direction_key(session: &[u8; 32], dir: u8) -> LessSafeKey {
    let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, session);
    let info = [b"vmsim-migrate/2 aes-256-gcm ".as_slice(), &[dir]];
    // Expanding 32 bytes from SHA-256 is always within HKDF's limit.
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .expect("32 bytes is within HKDF-SHA256's output limit");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// Frame `seq`'s nonce in direction `dir`: unique per key (one key per
/// direction and session, sequence numbers never reused).
fn frame_nonce(dir: u8, seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = dir;
    n[4..].copy_from_slice(&seq.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The sending half of an authenticated connection.
pub struct Sender {
    out: TcpStream,
    key: LessSafeKey,
    /// The session secret (tests forge frames with it).
    #[cfg(test)]
    session: [u8; 32],
    /// The frame being sent: length, payload sealed in place, tag; reused.
    frame: Vec<u8>,
    seq: u64,
    dir: u8,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("seq", &self.seq)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The receiving half of an authenticated connection.
pub struct Receiver {
    inp: BufReader<TcpStream>,
    key: LessSafeKey,
    seq: u64,
    dir: u8,
    timeout: Duration,
    peer: String,
    adopted_at: Option<(Instant, Option<f64>)>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("seq", &self.seq)
            .field("dir", &self.dir)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Seals and sends raw payload bytes (the message's encoding) as one
    /// frame, in one write: the payload is copied once, into the frame
    /// buffer, and encrypted there.
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<u64, MigrateError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l as usize <= MAX_MESSAGE)
            .ok_or_else(|| MigrateError::Protocol("a message over the size limit".into()))?;
        let seq = self.seq;
        self.seq = seq
            .checked_add(1)
            .ok_or_else(|| MigrateError::Protocol("out of sequence numbers".into()))?;
        let head = len.to_be_bytes();
        let f = &mut self.frame;
        f.clear();
        f.reserve(4 + payload.len() + TAG);
        f.extend_from_slice(&head);
        f.extend_from_slice(payload);
        let tag = self
            .key
            .seal_in_place_separate_tag(frame_nonce(self.dir, seq), Aad::from(head), &mut f[4..])
            .map_err(|_| MigrateError::Protocol("a message too large to seal".into()))?;
        f.extend_from_slice(tag.as_ref());
        let t = self.timeout;
        self.out.write_all(f).map_err(|e| io_err("sending", e, t))?;
        // A large frame's buffer is not kept between messages of other sizes.
        if f.capacity() > 2 * (MAX_MESSAGE.min(4 << 20)) {
            *f = Vec::new();
        }
        Ok(4 + payload.len() as u64 + TAG as u64)
    }
}

impl MsgSend for Sender {
    fn send_payload(&mut self, payload: &[u8]) -> Result<u64, MigrateError> {
        self.send_bytes(payload)
    }
}

impl Receiver {
    /// Receives one frame's payload, opened (authenticated and decrypted
    /// in place: the payload is the frame's own buffer, read into without
    /// being zeroed first).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MigrateError> {
        let t = self.timeout;
        let mut len = [0u8; 4];
        self.inp
            .read_exact(&mut len)
            .map_err(|e| io_err(&format!("reading from {}", self.peer), e, t))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_MESSAGE {
            return Err(MigrateError::Protocol(format!(
                "{} announced a message of {n} bytes, over the {MAX_MESSAGE}-byte limit",
                self.peer
            )));
        }
        let want = n + TAG;
        let mut frame = Vec::with_capacity(want);
        let got = (&mut self.inp)
            .take(want as u64)
            .read_to_end(&mut frame)
            .map_err(|e| io_err(&format!("reading from {}", self.peer), e, t))?;
        if got < want {
            let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
            return Err(io_err(&format!("reading from {}", self.peer), eof, t));
        }
        if self
            .key
            .open_in_place(frame_nonce(self.dir, self.seq), Aad::from(len), &mut frame)
            .is_err()
        {
            return Err(MigrateError::Auth(format!(
                "message {} from {} does not authenticate (tampered, replayed or out of order)",
                self.seq, self.peer
            )));
        }
        frame.truncate(n);
        self.seq += 1;
        Ok(frame)
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
    let read = stream.try_clone().map_err(|source| MigrateError::Io {
        what: peer.to_string(),
        source,
    })?;
    let (send_dir, recv_dir) = if client { (b'c', b's') } else { (b's', b'c') };
    Ok((
        Sender {
            out: stream,
            key: direction_key(&session, send_dir),
            #[cfg(test)]
            session,
            frame: Vec::new(),
            seq: 0,
            dir: send_dir,
            timeout,
        },
        Receiver {
            inp: BufReader::with_capacity(1 << 16, read),
            key: direction_key(&session, recv_dir),
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

/// What a greeting that is not ours says, if it is a vmsim listener of
/// another protocol version.
fn other_version(greeting: &[u8]) -> Option<String> {
    let v = greeting.strip_prefix(MAGIC_PREFIX)?.strip_suffix(b"\n")?;
    let v = std::str::from_utf8(v).ok()?;
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_string())
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
        .map_err(|e| io_err(&format!("handshake with {addr}"), e, t))?;
    if &hello[..16] != MAGIC {
        if let Some(v) = other_version(&hello[..16]) {
            bail!(
                "{addr} speaks migration protocol version {v}, this vmsim version {} (run the same vmsim version on both sides)",
                String::from_utf8_lossy(&MAGIC[MAGIC_PREFIX.len()..15])
            );
        }
        bail!("{addr} is not a vmsim migration listener (wrong greeting)");
    }
    let ns = &hello[16..];
    let mut nc = [0u8; NONCE];
    getrandom::fill(&mut nc).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let proof = key.mac(&[b"client", ns, &nc]);
    s.write_all(&nc)
        .and_then(|()| s.write_all(&proof))
        .map_err(|e| io_err(&format!("handshake with {addr}"), e, t))?;
    let mut theirs = [0u8; MAC];
    if let Err(e) = s.read_exact(&mut theirs) {
        if e.kind() == std::io::ErrorKind::UnexpectedEof
            || e.kind() == std::io::ErrorKind::ConnectionReset
        {
            bail!("authentication failed: {addr} did not accept this key (wrong --key-file?)");
        }
        return Err(io_err(&format!("handshake with {addr}"), e, t).into());
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
    set_timeouts(&s, timeout).map_err(|source| MigrateError::Io {
        what: peer.to_string(),
        source,
    })?;
    let t = timeout;
    let mut ns = [0u8; NONCE];
    getrandom::fill(&mut ns).map_err(|e| MigrateError::Link(format!("no randomness: {e}")))?;
    s.write_all(MAGIC)
        .and_then(|()| s.write_all(&ns))
        .map_err(|e| io_err(&format!("handshake with {peer}"), e, t))?;
    let mut answer = [0u8; NONCE + MAC];
    s.read_exact(&mut answer)
        .map_err(|e| io_err(&format!("handshake with {peer}"), e, t))?;
    let (nc, proof) = answer.split_at(NONCE);
    if !verify(&key.0, &[b"client", &ns, nc], proof) {
        return Err(MigrateError::Auth(format!(
            "{peer} does not hold the key (wrong key or not a vmsim source)"
        )));
    }
    let mine = key.mac(&[b"server", nc, &ns]);
    s.write_all(&mine)
        .map_err(|e| io_err(&format!("handshake with {peer}"), e, t))?;
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

    /// A raw frame the way a sender makes it, to tamper with: `seq`
    /// sealed under the key of direction `dir` of `session`.
    fn frame(session: &[u8; 32], dir: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut v = len.to_vec();
        v.extend_from_slice(payload);
        let tag = direction_key(session, dir)
            .seal_in_place_separate_tag(frame_nonce(dir, seq), Aad::from(len), &mut v[4..])
            .expect("seal");
        v.extend_from_slice(tag.as_ref());
        v
    }

    /// A connected pair with the same key: the client's raw stream and
    /// session secret (to forge frames with), the server's receiver, and
    /// the client's receiver (it holds the socket open too).
    fn raw_pair() -> (TcpStream, [u8; 32], Receiver, Receiver) {
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((ctx, crx), (_stx, srx)) = (c.expect("client"), s.expect("server"));
        (ctx.out, ctx.session, srx, crx)
    }

    #[test]
    fn tampered_replayed_and_oversized_messages_are_refused() {
        let payload = Message::Progress { references: 1 }
            .encode()
            .expect("encode");
        let auth_fails = |bytes: &[u8], what: &str| {
            let (mut raw, _, mut srx, _keep) = raw_pair();
            raw.write_all(bytes).expect("write");
            let e = srx.recv().expect_err(what);
            assert!(matches!(e, MigrateError::Auth(_)), "{what}: {e}");
        };
        // A good frame, then the same frame again (a replay).
        let (mut raw, session, mut srx, _keep) = raw_pair();
        let good = frame(&session, b'c', 0, &payload);
        raw.write_all(&good).expect("write");
        raw.write_all(&good).expect("write");
        assert_eq!(
            srx.recv().expect("the good frame"),
            Message::Progress { references: 1 }
        );
        let e = srx.recv().expect_err("a replay");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        // Out of order: frame 1 where 0 is due.
        let (mut raw, session, mut srx, _keep) = raw_pair();
        raw.write_all(&frame(&session, b'c', 1, &payload))
            .expect("write");
        let e = srx.recv().expect_err("reordered");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        // A flipped bit in the ciphertext, in the tag, a changed length (the
        // frame cut to match it), a frame of the other direction reflected
        // back, and a frame of another session: none opens.
        let (_, session, _, _keep) = raw_pair();
        let mut bad = frame(&session, b'c', 0, &payload);
        bad[5] ^= 1;
        auth_fails(&bad, "a flipped ciphertext bit");
        let mut bad = frame(&session, b'c', 0, &payload);
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        auth_fails(&bad, "a flipped tag bit");
        let (mut raw, session, mut srx, _keep) = raw_pair();
        let mut bad = frame(&session, b'c', 0, &payload);
        let n = payload.len() as u32 - 1;
        bad[..4].copy_from_slice(&n.to_be_bytes());
        bad.pop();
        raw.write_all(&bad).expect("write");
        let e = srx.recv().expect_err("a changed length");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        let (mut raw, session, mut srx, _keep) = raw_pair();
        raw.write_all(&frame(&session, b's', 0, &payload))
            .expect("write");
        let e = srx.recv().expect_err("reflected");
        assert!(matches!(e, MigrateError::Auth(_)), "{e}");
        auth_fails(
            &frame(&session, b'c', 0, &payload),
            "a frame of another session",
        );
        // A length over the limit is refused before allocating.
        let (mut raw, _, mut srx, _keep) = raw_pair();
        raw.write_all(&u32::MAX.to_be_bytes()).expect("write");
        let e = srx.recv().expect_err("oversized");
        assert!(e.to_string().contains("over the"), "{e}");
        // A truncated stream (every handle of the client's socket closed).
        let (mut raw, session, mut srx, keep) = raw_pair();
        let good = frame(&session, b'c', 0, &payload);
        raw.write_all(&good[..good.len() - 5]).expect("write");
        drop(raw);
        drop(keep);
        let e = srx.recv().expect_err("truncated");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    /// Page contents do not cross the link in clear: the bytes on the
    /// socket hold no trace of a recognisable payload, and the receiver
    /// gets it back exactly.
    #[test]
    fn payloads_are_encrypted_on_the_wire() {
        let (c, s) = pair(b"0123456789abcdef-key", b"0123456789abcdef-key");
        let ((mut ctx, _crx), (_stx, srx)) = (c.expect("client"), s.expect("server"));
        let secret: Vec<u8> = b"PRIVATE-PAGE-CONTENTS-"
            .iter()
            .copied()
            .cycle()
            .take(64 << 10)
            .collect();
        let sent = ctx.send_bytes(&secret).expect("send");
        assert_eq!(sent, 4 + secret.len() as u64 + TAG as u64);
        let mut raw = srx.inp.into_inner();
        let mut wire = vec![0u8; sent as usize];
        raw.read_exact(&mut wire).expect("read");
        assert_eq!(&wire[..4], &(secret.len() as u32).to_be_bytes());
        assert!(
            !wire.windows(8).any(|w| w == b"PRIVATE-"),
            "payload bytes visible on the wire"
        );
        // Opened by a receiver with the session's key, the frame is the payload.
        let mut body = wire[4..].to_vec();
        let key = direction_key(&ctx.session, b'c');
        let clear = key
            .open_in_place(frame_nonce(b'c', 0), Aad::from(&wire[..4]), &mut body)
            .expect("opens");
        assert!(clear == &secret[..]);
    }

    /// A listener of another protocol version is named as such.
    #[test]
    fn a_listener_of_another_version_is_refused_by_its_version() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let old = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            s.write_all(b"VMSIM-MIGRATE/1\n").expect("greet");
            s.write_all(&[7u8; NONCE]).expect("nonce");
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        });
        let e = connect(&addr, &key(b"0123456789abcdef-key"), Duration::from_secs(5))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("protocol version 1") && e.contains("version 2"),
            "{e}"
        );
        old.join().expect("thread");
        assert_eq!(other_version(b"VMSIM-MIGRATE/12\n"), Some("12".into()));
        assert_eq!(other_version(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
