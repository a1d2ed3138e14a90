//! `vmsim explain`: address splits, walks of memory images, and bad input.

use serde_json::Value;

use crate::common::{json, one_line_error, vmsim};

const IMG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sv39.img");

fn sv39_walk(va: &str) -> Value {
    json(&[
        "explain", "--arch", "sv39", "--mem", IMG, "--root", "0x1000", va,
    ])
}

#[test]
fn x86_64_split_of_the_issue_example() {
    let v = json(&["explain", "--arch", "x86-64", "0x00007fffffffe123"]);
    assert_eq!(v["indices"], serde_json::json!([255, 511, 511, 510]));
    assert_eq!(v["offset"], 0x123);
    assert_eq!(v["fault"], Value::Null);
    vmsim()
        .args(["explain", "--arch", "x86-64", "0x00007fffffffe123"])
        .assert()
        .success()
        .stdout(predicates::str::contains("PML4 index").and(predicates::str::contains("510")));
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn non_canonical_is_reported_not_truncated() {
    let v = json(&["explain", "--arch", "x86-64", "0x0000800000000000"]);
    assert_eq!(v["fault"]["kind"], "non_canonical");
    assert_eq!(v["pa"], Value::Null);
    let v = json(&["explain", "--arch", "x86-32", "0x100000000"]);
    assert_eq!(v["fault"]["kind"], "too_wide");
    let v = json(&["explain", "--arch", "sv39", "0x7fffffffff"]);
    assert_eq!(v["fault"]["kind"], "non_canonical");
    let v = json(&["explain", "--arch", "x86-64-5level", "0x00ff800000000000"]);
    assert_eq!(v["fault"], Value::Null, "57-bit canonical address");
}

#[test]
fn sv39_split() {
    let v = json(&["explain", "--arch", "sv39", "0x3fffffffff"]);
    assert_eq!(v["indices"], serde_json::json!([255, 511, 511]));
    assert_eq!(v["offset"], 0xfff);
}

#[test]
fn sv39_image_walks_to_the_page() {
    let v = sv39_walk("0x40201abc");
    assert_eq!(v["pa"], "0x00000080123abc");
    assert_eq!(v["walk"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["page_size"], 4096);
}

#[test]
fn sv39_invalid_entries_fault_at_their_level() {
    let v = sv39_walk("0x40202abc");
    assert_eq!(v["fault"]["kind"], "not_present");
    assert_eq!(v["fault"]["level"], 0);
    assert_eq!(v["pa"], Value::Null);
    let v = sv39_walk("0xc0000000");
    assert_eq!(v["fault"]["level"], 2);
}

#[test]
fn sv39_megapage_passes_low_vpn_bits_through() {
    let v = sv39_walk("0x40415678");
    assert_eq!(v["pa"], "0x00000080215678");
    assert_eq!(v["page_size"], 2 << 20);
    assert_eq!(v["walk"].as_array().map(Vec::len), Some(2));
}

#[test]
fn sv39_misaligned_megapage_and_reserved_encoding_fault() {
    let v = sv39_walk("0x40600000");
    assert_eq!(v["fault"]["kind"], "misaligned_superpage");
    assert_eq!(v["fault"]["level"], 1);
    let v = sv39_walk("0x40800000");
    assert_eq!(v["fault"]["kind"], "reserved_bits");
    assert_eq!(v["fault"]["level"], 1);
}

#[test]
fn user_format_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c15.toml");
    std::fs::write(
        &path,
        "va_bits = 15\npage_size = 32\nlevel_bits = [5, 5]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 7\n",
    )
    .expect("write");
    let p = path.to_str().expect("utf-8 path");
    let v = json(&["explain", "--format", p, "0b101010101010101"]);
    assert_eq!(v["indices"], serde_json::json!([0b10101, 0b01010]));
    assert_eq!(v["offset"], 0b10101);
    std::fs::write(&path, "va_bits = 15\npage_size = 32\nlevel_bits = [5, 4]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 7\n")
        .expect("write");
    vmsim()
        .args(["explain", "--format", p, "1"])
        .assert()
        .failure()
        .stderr(
            predicates::str::contains("level_bits").and(predicates::str::contains("va_bits = 15")),
        );
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    for args in [
        vec!["explain", "--arch", "vax", "0x1"],
        vec!["explain", "--arch", "x86-64", "0xzz"],
        vec![
            "explain", "--arch", "sv39", "--mem", IMG, "--root", "0x4000", "0x1",
        ],
        vec![
            "explain",
            "--arch",
            "sv39",
            "--mem",
            "/nonexistent/mem.img",
            "--root",
            "0",
            "0x1",
        ],
        vec!["explain", "--format", "/nonexistent/f.toml", "0x1"],
    ] {
        one_line_error(&args);
    }
}

#[test]
fn course_segmentation_example() {
    let v = json(&["explain", "--segment", "1:0x2000:0x1ff", "0x1:0xff"]);
    assert_eq!(v["linear"], "0x20ff");
    assert_eq!(v["fault"], Value::Null);
    let v = json(&["explain", "--segment", "1:0x2000:0x1ff", "0x1:0x200"]);
    assert_eq!(v["linear"], Value::Null);
    assert_eq!(v["fault"]["kind"], "limit_exceeded");
    let v = json(&[
        "explain",
        "--segment",
        "1:0x2000:0x1ff:r",
        "--access",
        "write",
        "0x1:0x10",
    ]);
    assert_eq!(v["linear"], Value::Null, "write to a read-only segment");
    vmsim()
        .args(["explain", "--segment", "1:0x2000:0x1ff", "0x1:0xff"])
        .assert()
        .success()
        .stdout(predicates::str::contains("0x20ff"));
}

#[test]
fn segment_then_paging() {
    // Segment 2 based at 0x40200000 puts offset 0x1abc at the Sv39 image's 4 KiB page.
    let v = json(&[
        "explain",
        "--segment",
        "2:0x40200000:0xffff",
        "--arch",
        "sv39",
        "--mem",
        IMG,
        "--root",
        "0x1000",
        "2:0x1abc",
    ]);
    assert_eq!(v["linear"], "0x40201abc");
    assert_eq!(v["paging"]["pa"], "0x00000080123abc");
}

#[test]
fn bad_segment_specs_are_errors() {
    for args in [
        vec!["explain", "--segment", "1:0x2000", "0x1:0x10"],
        vec!["explain", "--segment", "1:0x2000:0x1ff", "0x10"],
        vec!["explain", "--segment", "1:0x2000:0x1ff:q", "0x1:0x10"],
    ] {
        let out = vmsim().args(&args).assert().failure().get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("vmsim: ") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// Regression: errors that name their cause printed it twice
/// (`... (os error 2): No such file ... (os error 2)`).
#[test]
fn error_lines_say_their_cause_once() {
    let out = vmsim()
        .args([
            "explain",
            "--arch",
            "sv39",
            "--mem",
            "/nonexistent/mem.img",
            "--root",
            "0",
            "0x1",
        ])
        .assert()
        .failure()
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}
