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
        prop_oneof![1u32..=32, any::<u32>()],
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
        prop_assert_eq!(r.collect_all().unwrap(), records);
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
