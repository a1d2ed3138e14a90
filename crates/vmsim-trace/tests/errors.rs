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
            // An empty file is an empty trace.
            (0, Ok(s)) => assert_eq!(s.refs, 0),
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
