//! Test-only forgery of checkpoint files: a section's payload replaced
//! with every length and CRC-32C made right, so that only the restore's
//! own checks of what the payload says can refuse the file; and the real
//! chain those forgeries start from. Shared by the unit tests of the
//! restored header (`restored_header.rs`), the listing (`listed.rs`) and
//! the restored machine (`sim/restored.rs`); the integration tests keep
//! their own copy, since they see only the public API.

use std::path::Path;

use vmsim_trace::scenario::Scenario;

use super::{ChainWriter, Header};
use crate::config::ConfigBuilder;
use crate::sim::Simulation;

/// The forgeries' machine, started: 128 frames (so swap is in use),
/// checkpoints every 3,000 references.
pub(crate) fn started() -> Simulation {
    let mut b = ConfigBuilder::preset(None).expect("preset");
    for s in ["memory.frames=128", "checkpoint.every=3000"] {
        b = b.set(s).expect("set");
    }
    let mut sim = Simulation::new(b.build().expect("config")).expect("machine");
    sim.start(&Scenario::of_traces(&[
        "synth:zipf,pages=300,refs=12K,write=0.5,seed=21",
    ]))
    .expect("start");
    sim
}

/// [`started`]'s run to its end, writing its checkpoints into `dir`:
/// files 0 (full) and 1-3 (increments), swap in use.
pub(crate) fn chain_in(dir: &Path) {
    let sim = started();
    let mut w = ChainWriter::create(dir).expect("writer");
    sim.run_to_end(&mut (), Some(&mut w)).expect("run");
    w.finish().expect("written");
}

/// A file's header (its `HEAD` section).
pub(crate) fn header(bytes: &[u8]) -> Header {
    postcard::from_bytes(&payload(bytes, b"HEAD")).expect("HEAD")
}

/// `bytes` with its header replaced by `h` (see [`with_section`]).
pub(crate) fn with_header(bytes: &[u8], h: &Header) -> Vec<u8> {
    with_section(bytes, b"HEAD", &postcard::to_allocvec(h).expect("encode"))
}

/// The sections of a checkpoint file: tag, flags, stored payload range.
pub(crate) fn sections(bytes: &[u8]) -> Vec<([u8; 4], u32, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 12usize;
    while at + 32 <= bytes.len() {
        let tag: [u8; 4] = bytes[at..at + 4].try_into().expect("4");
        let flags = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
        let stored = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8")) as usize;
        out.push((tag, flags, at + 32..at + 32 + stored));
        at += 32 + stored;
    }
    out
}

/// Section `tag`'s payload, decompressed if it is stored compressed.
pub(crate) fn payload(bytes: &[u8], tag: &[u8; 4]) -> Vec<u8> {
    let (_, flags, range) = sections(bytes)
        .into_iter()
        .find(|s| &s.0 == tag)
        .expect("the section");
    if flags & 1 != 0 {
        zstd::decode_all(&bytes[range]).expect("zstd")
    } else {
        bytes[range].to_vec()
    }
}

/// `bytes` with section `tag`'s payload replaced by `payload`
/// (compressed again if the section is), every length and CRC-32C right.
pub(crate) fn with_section(bytes: &[u8], tag: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let (tag, flags, range) = sections(bytes)
        .into_iter()
        .find(|s| &s.0 == tag)
        .expect("the section");
    let stored = if flags & 1 != 0 {
        zstd::encode_all(payload, 1).expect("zstd")
    } else {
        payload.to_vec()
    };
    let mut head = [0u8; 32];
    head[0..4].copy_from_slice(&tag);
    head[4..8].copy_from_slice(&flags.to_le_bytes());
    head[8..16].copy_from_slice(&(stored.len() as u64).to_le_bytes());
    head[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    head[24..28].copy_from_slice(&crc32c::crc32c(&stored).to_le_bytes());
    let hcrc = crc32c::crc32c(&head[..28]);
    head[28..32].copy_from_slice(&hcrc.to_le_bytes());
    let mut out = bytes[..range.start - 32].to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&stored);
    out.extend_from_slice(&bytes[range.end..]);
    out
}
