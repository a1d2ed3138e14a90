//! `.vmt` round trips: arbitrary accesses, and real lackey traces.

use proptest::prelude::*;
use vmsim_trace::vmt::{VmtReader, VmtWriter, convert};
use vmsim_trace::{Access, AccessKind, TraceSource, open, open_path};

use crate::data;

fn access() -> impl Strategy<Value = Access> {
    (
        prop_oneof![
            any::<u64>(),
            0x40_0000u64..0x40_1000,
            0x1f_ff00_0000u64..0x1f_ff00_1000
        ],
        prop_oneof![Just(1u32), 0u32..4, any::<u32>()],
        prop_oneof![1u32..=32, 1u32..=vmsim_trace::access::MAX_ACCESS_BYTES],
        0u8..4,
    )
        .prop_map(|(va, pid, size, k)| Access {
            va,
            pid,
            size,
            kind: AccessKind::from_code(k),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_accesses_round_trip(records in prop::collection::vec(access(), 0..3000)) {
        let mut w = VmtWriter::new(Vec::new()).unwrap();
        w.push_all(&records).unwrap();
        let (bytes, n) = w.finish().unwrap();
        prop_assert_eq!(n, records.len() as u64);
        let mut r = VmtReader::new(bytes.as_slice(), "p.vmt", false).unwrap();
        // No records is a valid file the writer makes; reading it back is
        // allowed explicitly (an empty trace is otherwise an error).
        r.set_allow_empty(true);
        prop_assert_eq!(r.collect_all().unwrap(), records);
    }
}

/// Sizes a reader refuses are refused by the writer too (issue 12: one
/// lackey line of 4 GiB used to make the simulator write GBs of swap).
#[test]
fn sizes_outside_the_bound_are_refused_both_ways() {
    let max = vmsim_trace::access::MAX_ACCESS_BYTES;
    let a = |size| Access {
        va: 0x1000,
        pid: 1,
        size,
        kind: AccessKind::Load,
    };
    let mut w = VmtWriter::new(Vec::new()).unwrap();
    w.push(&a(max)).unwrap();
    for size in [0, max + 1, u32::MAX] {
        let e = w.push(&a(size)).unwrap_err();
        assert!(e.to_string().contains("1 to 4096"), "{e}");
    }
    // A hand-made record of 4097 bytes (tag L with a size varint, delta 0).
    let mut payload = vec![0x01u8];
    payload.extend_from_slice(&[0x81, 0x20, 0x00]);
    let mut bytes = vmsim_trace::vmt::format::MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&vmsim_trace::vmt::format::block_crc(1, &payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let r = VmtReader::new(bytes.as_slice(), "big.vmt", false)
        .unwrap()
        .collect_all();
    match r {
        Err(vmsim_trace::TraceError::InvalidVmt { what, .. }) => {
            assert!(what.contains("1..=4096"), "{what}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lackey_to_vmt_gives_the_same_stream() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["true.lackey.zst", "forkcow_1m.parent.lackey.zst"] {
        let out = dir.path().join("x.vmt");
        let n = convert(&mut open_path(&data(name)).unwrap(), &out).unwrap();
        let original = open_path(&data(name)).unwrap().collect_all().unwrap();
        let back = open_path(&out).unwrap().collect_all().unwrap();
        assert_eq!(n, original.len() as u64);
        assert!(back == original, "{name}: streams differ");
    }
}

#[test]
fn zstd_compressed_vmt_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.vmt");
    convert(
        &mut open("synth:random,refs=100000,write=0.3").unwrap(),
        &out,
    )
    .unwrap();
    let z = dir.path().join("s.vmt.zst");
    std::fs::write(
        &z,
        zstd::stream::encode_all(std::fs::read(&out).unwrap().as_slice(), 3).unwrap(),
    )
    .unwrap();
    let a = open_path(&out).unwrap().collect_all().unwrap();
    let b = open_path(&z).unwrap().collect_all().unwrap();
    assert_eq!(a.len(), 100_000);
    assert_eq!(a, b);
}

#[test]
fn failed_conversion_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lackey");
    std::fs::write(&bad, "I  0401ab70,3\nI  nope\n").unwrap();
    let out = dir.path().join("out.vmt");
    assert!(convert(&mut open_path(&bad).unwrap(), &out).is_err());
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}
