//! Bad input is a typed error naming the file and what was expected; nothing panics.

use std::io::Write;

use vmsim_trace::{TraceError, open, open_path, stats};

use crate::data;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

#[test]
fn malformed_lackey_line_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "bad.lackey",
        b"==5== hi\nI  0401ab70,3\n L 1fff000768,8\n S zz,8\n",
    );
    match stats(&mut open_path(&p).unwrap()) {
        Err(e @ TraceError::Malformed { line: 4, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("bad.lackey:4:"), "{msg}");
            assert!(msg.contains("hex address"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_line_inside_zstd_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"I  0401ab70,3\nI  0401ab73,0\n";
    let p = write(
        &dir,
        "bad.txt",
        &zstd::stream::encode_all(&text[..], 3).unwrap(),
    );
    assert!(matches!(
        stats(&mut open_path(&p).unwrap()),
        Err(TraceError::Malformed { line: 2, .. })
    ));
}

#[test]
fn truncated_zstd_trace_is_truncated() {
    let full = std::fs::read(data("true.lackey.zst")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [full.len() / 2, full.len() - 1, 10] {
        let p = write(&dir, "cut.zst", &full[..cut]);
        let r = open_path(&p).and_then(|mut s| stats(&mut s));
        assert!(
            matches!(r, Err(TraceError::Truncated { .. })),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn truncated_vmt_is_truncated_and_corrupt_vmt_is_a_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let vmt = dir.path().join("t.vmt");
    vmsim_trace::vmt::convert(
        &mut open_path(&data("tinystatic.lackey.zst")).unwrap(),
        &vmt,
    )
    .unwrap();
    let full = std::fs::read(&vmt).unwrap();
    for cut in [0, 5, 16, 20, full.len() / 2, full.len() - 1] {
        let p = write(&dir, "cut.vmt", &full[..cut]);
        let r = open_path(&p).and_then(|mut s| stats(&mut s));
        match (cut, r) {
            // An empty file is refused as an empty trace (issue 12).
            (0, Err(TraceError::Empty { .. })) => {}
            (_, Err(TraceError::Truncated { .. })) => {}
            (_, other) => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut bad = full.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    let p = write(&dir, "bad.vmt", &bad);
    let r = stats(&mut open_path(&p).unwrap());
    assert!(matches!(r, Err(TraceError::Checksum { .. })), "{r:?}");
}

#[test]
fn missing_file_and_bad_spec_are_errors() {
    let e = open("/nonexistent/trace.lackey").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/trace.lackey"), "{e}");
    let e = open("synth:scan,strid=4").unwrap_err();
    assert!(e.to_string().contains("unknown key 'strid'"), "{e}");
}

#[test]
fn zstd_garbage_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0x28, 0xb5, 0x2f, 0xfd];
    bytes.extend((0..5000u32).map(|i| (i * 31 % 256) as u8));
    let p = write(&dir, "junk.zst", &bytes);
    assert!(open_path(&p).and_then(|mut s| stats(&mut s)).is_err());
}

mod never_panics {
    use proptest::prelude::*;
    use vmsim_trace::lackey::LackeyReader;
    use vmsim_trace::vmt::{VmtReader, VmtWriter};
    use vmsim_trace::{Access, AccessKind, TraceSource};

    /// Bytes that look like lackey lines, with random damage.
    fn lackeyish() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b"I  0401ab70,3\n".to_vec()),
                Just(b" L 1fff000768,8\n".to_vec()),
                Just(b" M 04032e58,8\n".to_vec()),
                Just(b"==12== banner\n".to_vec()),
                prop::collection::vec(
                    prop_oneof![Just(b' '), Just(b'I'), Just(b','), Just(b'\n'), any::<u8>()],
                    0..40
                ),
            ],
            0..50,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn lackey_reader_returns_ok_or_error(bytes in lackeyish()) {
            let _ = LackeyReader::new(bytes.as_slice(), "fuzz", false).collect_all();
        }

        #[test]
        fn vmt_reader_returns_ok_or_error(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                                          cut in any::<prop::sample::Index>()) {
            let recs: Vec<Access> = (0..500u64)
                .map(|i| Access { va: i * 4099, pid: (i / 200) as u32, size: 1 + (i % 40) as u32, kind: AccessKind::from_code(i as u8) })
                .collect();
            let mut w = VmtWriter::new(Vec::new()).unwrap();
            w.push_all(&recs).unwrap();
            let (mut bytes, _) = w.finish().unwrap();
            for (at, x) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            let end = cut.index(bytes.len() + 1);
            if let Ok(mut r) = VmtReader::new(&bytes[..end], "fuzz.vmt", false) {
                let _ = r.collect_all();
            }
        }

        /// Random payloads with a valid checksum reach the record decoder itself.
        #[test]
        fn vmt_decoder_rejects_garbage_with_valid_crc(count in 0u32..5000, payload in prop::collection::vec(any::<u8>(), 0..9000)) {
            let mut bytes = b"\x89VMT\r\n\x1a\n\x01\0\0\0\0\0\0\0".to_vec();
            let len = payload.len() as u32;
            bytes.extend_from_slice(&count.to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&vmsim_trace::vmt::format::block_crc(count, &payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
            let mut r = VmtReader::new(bytes.as_slice(), "fuzz.vmt", false).unwrap();
            // No end block follows, so this can never succeed.
            prop_assert!(r.collect_all().is_err());
        }
    }
}
