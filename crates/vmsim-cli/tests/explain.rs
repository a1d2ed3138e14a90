//! `vmsim explain`: address splits, walks of memory images, and bad input.

use serde_json::{Value, json};

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

/// A 16 KiB x86-32 image encoded by hand from the Intel SDM (4-byte
/// entries, P = bit 0, R/W = bit 1, U/S = bit 2, frame in bits 12-31):
/// page directory at 0x1000, one page table at 0x2000.
/// - PDE 1 (VA 0x00400000-0x007fffff) at 0x1004 = 0x2007 -> table 0x2000;
/// - PTE 1 (VA page 0x00401) at 0x2004 = 0x3007 -> frame 0x3000;
/// - PTE 2 (VA page 0x00402) at 0x2008 = 0x0007 -> frame 0x0000;
/// - PTE 3 is zero (not present).
///
/// Data: 0x12345678 little-endian at 0x3234; 0x11 0x22 at 0x3ffe; 0xaa 0xbb at 0x0.
fn x86_32_image(dir: &tempfile::TempDir) -> String {
    let mut m = vec![0u8; 0x4000];
    let put32 =
        |m: &mut Vec<u8>, at: usize, v: u32| m[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(&mut m, 0x1004, 0x2007);
    put32(&mut m, 0x2004, 0x3007);
    put32(&mut m, 0x2008, 0x0007);
    put32(&mut m, 0x3234, 0x1234_5678);
    m[0x3ffe] = 0x11;
    m[0x3fff] = 0x22;
    m[0] = 0xaa;
    m[1] = 0xbb;
    let p = dir.path().join("x86_32.img");
    std::fs::write(&p, m).expect("write image");
    p.display().to_string()
}

#[test]
fn load_size_shows_the_value_at_the_physical_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = x86_32_image(&dir);
    let walk = |va: &str, size: &str| {
        json(&[
            "explain",
            "--arch",
            "x86-32",
            "--mem",
            &img,
            "--root",
            "0x1000",
            va,
            "--load-size",
            size,
        ])
    };
    // 0x00401234: PD index 1, PT index 1, offset 0x234 -> 0x3234.
    let v = walk("0x00401234", "4");
    assert_eq!(v["pa"], "0x00003234");
    assert_eq!(v["load"]["value"], "0x12345678");
    let v = walk("0x00401234", "1");
    assert_eq!(v["load"]["value"], "0x78");
    let v = walk("0x00401235", "2");
    assert_eq!(v["load"]["value"], "0x3456");
    // A load that crosses into the next page: bytes 0x3ffe, 0x3fff of frame
    // 0x3000, then 0x0, 0x1 of frame 0 (PTE 2): 0xbbaa2211.
    let v = walk("0x00401ffe", "4");
    assert_eq!(v["load"]["value"], "0xbbaa2211");
    // Into page 0x00403, whose PTE is zero: no value.
    let v = walk("0x00402ffe", "4");
    assert_eq!(v["load"]["value"], Value::Null);
    assert!(
        v["load"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not_present")),
        "{v}"
    );
    let t = crate::common::text(&[
        "explain",
        "--arch",
        "x86-32",
        "--mem",
        &img,
        "--root",
        "0x1000",
        "0x00401234",
        "--load-size",
        "4",
    ]);
    assert!(
        t.contains("load 4 bytes at 0x3234 = 0x12345678 (305419896)"),
        "{t}"
    );
}

#[test]
fn a_32_bit_segment_at_the_top_of_the_space_wraps() {
    // Base 0xfffff000 + offset 0x402234 = 0x1_00401234: a 32-bit machine
    // keeps 32 bits, 0x00401234, which the image maps to 0x3234.
    let dir = tempfile::tempdir().expect("tempdir");
    let img = x86_32_image(&dir);
    let v = json(&[
        "explain",
        "--arch",
        "x86-32",
        "--segment",
        "1:0xfffff000:0xffffffff",
        "--mem",
        &img,
        "--root",
        "0x1000",
        "--load-size",
        "4",
        "1:0x402234",
    ]);
    assert_eq!(v["linear"], "0x401234");
    assert_eq!(v["linear_bits"], 32);
    assert_eq!(v["paging"]["fault"], Value::Null);
    assert_eq!(v["paging"]["pa"], "0x00003234");
    assert_eq!(v["paging"]["load"]["value"], "0x12345678");
    // 64-bit linear addresses do not wrap.
    let v = json(&[
        "explain",
        "--segment",
        "1:0xfffff000:0xffffffff",
        "1:0x402234",
    ]);
    assert_eq!(v["linear"], "0x100401234");
    // Segmentation without paging: the linear address is physical.
    let v = json(&[
        "explain",
        "--arch",
        "x86-32",
        "--segment",
        "1:0x3000:0xfff",
        "--mem",
        &img,
        "--load-size",
        "4",
        "1:0x234",
    ]);
    assert_eq!(v["load"]["value"], "0x12345678");
    // Bases and offsets of a 32-bit machine have 32 bits.
    let e = one_line_error(&[
        "explain",
        "--arch",
        "x86-32",
        "--segment",
        "1:0x100000000:0xfff",
        "1:0",
    ]);
    assert!(e.contains("does not fit the 32-bit"), "{e}");
}

#[test]
fn textbook_segments_as_in_ostep() {
    // OSTEP figure 16.3: 14-bit addresses; code base 32K size 2K, heap base
    // 34K size 3K, stack base 28K size 2K growing down; the top 2 bits
    // select the segment, so the maximum segment size is 2^12 = 4096.
    let segs = "code=0:32K:2K,heap=1:34K:3K,stack=3:28K:2K:down";
    let book = |va: &str, access: &str| {
        json(&[
            "explain",
            "--va-bits",
            "14",
            "--segments",
            segs,
            "--access",
            access,
            va,
        ])
    };
    // 4200 = 0b01_0000_0110_1000: segment 1 (heap), offset 104;
    // 34K + 104 = 34816 + 104 = 34920 = 0x8868.
    let v = book("4200", "read");
    assert_eq!(
        (v["segment"].clone(), v["offset"].clone()),
        (json!(1), json!("0x68"))
    );
    assert_eq!(v["pa"], "0x8868");
    // 15K = 15360 = 0b11_1100_0000_0000: segment 3 (stack), offset 3072;
    // negative offset 3072 - 4096 = -1024; |-1024| <= 2048;
    // 28K - 1K = 27K = 27648 = 0x6c00.
    let v = book("15360", "write");
    assert_eq!(v["negative_offset"], -1024);
    assert_eq!(v["pa"], "0x6c00");
    // The stack's lowest valid byte: offset 4096 - 2048 = 2048 -> 26K.
    let v = book("0x3800", "read");
    assert_eq!(v["pa"], "0x6800");
    // One below it is out of bounds: |2047 - 4096| = 2049 > 2048.
    let v = book("0x37ff", "read");
    assert_eq!(v["fault"]["kind"], "bounds");
    // Heap: size 3K = 3072 allows offsets 0..3071 (a size, not a limit).
    assert_eq!(book("0x1bff", "read")["pa"], "0x93ff");
    assert_eq!(book("0x1c00", "read")["fault"]["kind"], "bounds");
    // Segment 2 does not exist; code (defaulted to r-x by its name) is not writable.
    assert_eq!(book("0x2000", "read")["fault"]["kind"], "no_segment");
    assert_eq!(book("0x10", "write")["fault"]["kind"], "permission");
    assert_eq!(book("0x10", "execute")["pa"], "0x8010");
    assert_eq!(book("0x4000", "read")["fault"]["kind"], "too_wide");
}

#[test]
fn base_and_bounds_is_the_one_segment_case() {
    // Relocation register 0x3000, bounds 0x200 (a size): 0x1ff -> 0x31ff;
    // 0x200 faults.
    let v = json(&["explain", "--segments", "0:0x3000:0x200", "0x1ff"]);
    assert_eq!(v["seg_bits"], 0);
    assert_eq!(v["pa"], "0x31ff");
    let v = json(&["explain", "--segments", "0:0x3000:0x200", "0x200"]);
    assert_eq!(v["fault"]["kind"], "bounds");
    // With the image as physical memory: 0x234 -> 0x3234 holds 0x12345678;
    // a 4-byte load at 0x1fe would end at 0x201, outside the bounds.
    let dir = tempfile::tempdir().expect("tempdir");
    let img = x86_32_image(&dir);
    let v = json(&[
        "explain",
        "--segments",
        "0:0x3000:0x300",
        "--mem",
        &img,
        "--load-size",
        "4",
        "0x234",
    ]);
    assert_eq!(v["load"]["value"], "0x12345678");
    let v = json(&[
        "explain",
        "--segments",
        "0:0x3000:0x200",
        "--mem",
        &img,
        "--load-size",
        "4",
        "0x1fe",
    ]);
    assert_eq!(v["pa"], Value::Null);
    assert_eq!(v["fault"]["kind"], "bounds");
    for bad in [
        vec!["explain", "--segments", "1:0x3000:0x200", "0x1"],
        vec!["explain", "--segments", "0:0x3000", "0x1"],
        vec![
            "explain",
            "--va-bits",
            "8",
            "--segments",
            "0:0:0x200",
            "0x1",
        ],
        vec![
            "explain",
            "--segments",
            "0:0:0x10",
            "--mem",
            "/nonexistent",
            "0x1",
        ],
        vec![
            "explain",
            "--arch",
            "x86-32",
            "--mem",
            "/nonexistent",
            "0x1",
        ],
    ] {
        one_line_error(&bad);
    }
}

#[test]
fn ostep_chapter_20_two_level_example() {
    // OSTEP ch. 20 ("Paging: Smaller Tables"): a 16 KiB address space of
    // 64-byte pages: 14-bit VA = 4-bit PD index, 4-bit PT index, 6-bit
    // offset. Entries here are 4 bytes, valid bit 31, frame number in bits
    // 0-7 (so 14-bit physical addresses). The page directory is at frame 50
    // (0xc80); PD[0] -> page table at frame 100, PD[15] -> frame 101.
    // PT(100): VPN 0 -> 10, VPN 1 -> 23, VPN 4 -> 80, VPN 5 -> 59;
    // PT(101): VPN 254 (index 14) -> 55, VPN 255 (index 15) -> 45.
    let dir = tempfile::tempdir().expect("tempdir");
    let fmt = dir.path().join("ostep20.toml");
    std::fs::write(
        &fmt,
        "va_bits = 14\npage_size = 64\nlevel_bits = [4, 4]\nentry_bytes = 4\nvalid = 31\nframe_lo = 0\nframe_bits = 8\n",
    )
    .expect("format");
    let mut m = vec![0u8; 1 << 14];
    let put = |m: &mut Vec<u8>, at: usize, frame: u32| {
        m[at..at + 4].copy_from_slice(&(frame | 1 << 31).to_le_bytes());
    };
    let (pd, pt0, pt15) = (50 * 64, 100 * 64, 101 * 64);
    put(&mut m, pd, 100);
    put(&mut m, pd + 15 * 4, 101);
    for (vpn, pfn) in [(0, 10), (1, 23), (4, 80), (5, 59)] {
        put(&mut m, pt0 + vpn * 4, pfn);
    }
    put(&mut m, pt15 + 14 * 4, 55);
    put(&mut m, pt15 + 15 * 4, 45);
    let img = dir.path().join("mem.img");
    std::fs::write(&img, m).expect("image");
    let walk = |va: &str| {
        json(&[
            "explain",
            "--format",
            fmt.to_str().expect("utf-8"),
            "--mem",
            img.to_str().expect("utf-8"),
            "--root",
            "0xc80",
            va,
        ])
    };
    // 0x3f80 = 11 1111 1000 0000: PD index 15, PT index 14, offset 0;
    // PFN 55 -> 55 << 6 = 0xdc0 (the book's answer).
    let v = walk("0x3f80");
    assert_eq!(v["indices"], json!([15, 14]));
    assert_eq!(v["pa"], "0x0dc0");
    // 0x3fc4: VPN 255, offset 4 -> 45 << 6 | 4 = 0xb44.
    assert_eq!(walk("0x3fc4")["pa"], "0x0b44");
    // 0x0110: VPN 4 (heap), offset 0x10 -> 80 << 6 | 0x10 = 0x1410.
    assert_eq!(walk("0x0110")["pa"], "0x1410");
    // VPN 2 (PD[0], PT index 2) is not mapped: fault at the last level;
    // PD[1] (VA 0x0400) is not valid: fault at the directory.
    let v = walk("0x0080");
    assert_eq!(v["fault"]["kind"], "not_present");
    assert_eq!(v["fault"]["level"], 0);
    let v = walk("0x0400");
    assert_eq!(v["fault"]["level"], 1);
}
