//! `vmsim calc`: golden tests for the arithmetic examples of the course
//! (A1-A13 of the project's course examples and the translation-cost
//! section), printed and as JSON, and the errors for bad input.

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{json, one_line_error, text, vmsim};

/// Runs `vmsim calc ARGS --json` and parses its output.
fn calc_json(args: &[&str]) -> Value {
    json(&[&["calc"], args].concat())
}

/// Runs `vmsim calc ARGS` and returns what it printed.
fn calc_text(args: &[&str]) -> String {
    text(&[&["calc"], args].concat())
}

/// Runs `vmsim calc ARGS`, expects failure with a one-line error, returns it.
fn calc_error(args: &[&str]) -> String {
    one_line_error(&[&["calc"], args].concat())
}

/// The first printed line whose label (first column, followed by the
/// column gap) is `label`.
fn line<'a>(text: &'a str, label: &str) -> &'a str {
    let label = format!("{label}  ");
    text.lines()
        .find(|l| l.trim_start().starts_with(&label))
        .unwrap_or_else(|| panic!("no line '{label}' in:\n{text}"))
}

// ---- A1: address split -------------------------------------------------

#[test]
fn a1_six_bit_address_splits_into_vpn_3_offset_10() {
    let args = [
        "--va-bits",
        "6",
        "--page-size",
        "16",
        "--pte-size",
        "1",
        "--address",
        "0b111010",
    ];
    let j = calc_json(&args);
    assert_eq!(j["vpn_bits"], 2);
    assert_eq!(j["offset_bits"], 4);
    assert_eq!(j["entries"], 4);
    assert_eq!(j["address"]["vpn"], 3);
    assert_eq!(j["address"]["offset"], 10);
    let t = calc_text(&args);
    assert!(line(&t, "VPN").contains("3 = 0x3"), "{t}");
    assert!(line(&t, "offset").contains("10 = 0xa"), "{t}");
    assert!(line(&t, "address").contains("0b111010"), "{t}");
}

#[test]
fn address_split_gives_per_level_indices() {
    let j = calc_json(&[
        "--va-bits",
        "12",
        "--page-size",
        "64",
        "--pte-size",
        "1",
        "--level-bits",
        "2,4",
        "--address",
        "0xc45",
    ]);
    // 0xc45 = 11 0001 000101: outer 3, inner 1, offset 5.
    assert_eq!(j["address"]["indices"], serde_json::json!([3, 1]));
    assert_eq!(j["address"]["offset"], 5);
    assert_eq!(j["address"]["vpn"], 0x31);
}

// ---- A2-A4: flat tables -----------------------------------------------

#[test]
fn a2_32_bit_flat_table_is_4_mib_and_4000_mib_for_1000_processes() {
    let args = [
        "--va-bits",
        "32",
        "--page-size",
        "4KiB",
        "--pte-size",
        "4",
        "--processes",
        "1000",
    ];
    let j = calc_json(&args);
    assert_eq!(j["vpn_bits"], 20);
    assert_eq!(j["entries"], 1_048_576);
    assert_eq!(j["bytes"], 4 << 20);
    assert_eq!(j["bytes_all_processes"], 4000u64 << 20);
    let t = calc_text(&args);
    assert!(
        line(&t, "flat table entries").contains("2^20 (1,048,576)"),
        "{t}"
    );
    assert!(
        line(&t, "flat table size").contains("4 MiB (4,194,304 B)"),
        "{t}"
    );
    assert!(
        line(&t, "flat tables of 1,000 processes").contains("4000 MiB"),
        "{t}"
    );
}

#[test]
fn a3_48_bit_flat_table_is_256_gib() {
    let args = ["--va-bits", "48", "--page-size", "4K", "--pte-size", "4"];
    let j = calc_json(&args);
    assert_eq!(j["entries"], 1u64 << 36);
    assert_eq!(j["bytes"], 256u64 << 30);
    let t = calc_text(&args);
    assert!(line(&t, "flat table entries").contains("2^36"), "{t}");
    assert!(line(&t, "flat table size").contains("256 GiB"), "{t}");
}

#[test]
fn a4_64_bit_flat_table_is_32_pib() {
    let args = ["--va-bits", "64", "--page-size", "4KiB", "--pte-size", "8"];
    let j = calc_json(&args);
    assert_eq!(j["entries"], 1u64 << 52);
    assert_eq!(j["bytes"], 32u64 << 50);
    // 2^64 bytes of address space does not fit u64: a decimal string.
    assert_eq!(j["address_space_bytes"], "18446744073709551616");
    let t = calc_text(&args);
    assert!(line(&t, "flat table entries").contains("2^52"), "{t}");
    assert!(line(&t, "flat table size").contains("32 PiB"), "{t}");
    assert!(line(&t, "virtual address space").contains("16 EiB"), "{t}");
}

#[test]
fn values_past_u64_are_reported_exactly_as_strings() {
    let j = calc_json(&["--va-bits", "64", "--page-size", "1", "--pte-size", "16"]);
    assert_eq!(j["entries"], "18446744073709551616");
    assert_eq!(j["bytes"], "295147905179352825856");
    assert_eq!(j["levels"], Value::Null);
}

// ---- A5: Sv39 --------------------------------------------------------------

#[test]
fn a5_sv39_numbers() {
    let args = [
        "--va-bits",
        "39",
        "--page-size",
        "4KiB",
        "--pte-size",
        "8",
        "--pa-bits",
        "56",
    ];
    let j = calc_json(&args);
    assert_eq!(j["address_space_bytes"], 512u64 << 30);
    assert_eq!(j["entries"], 1u64 << 27);
    assert_eq!(j["bytes"], 1u64 << 30);
    assert_eq!(j["entries_per_table"], 512);
    assert_eq!(j["index_bits_per_table"], 9);
    assert_eq!(j["levels"], 3);
    assert_eq!(j["fit_level_bits"], serde_json::json!([9, 9, 9]));
    assert_eq!(j["pa_bits"], 56);
    assert_eq!(j["pfn_bits"], 44);
    let t = calc_text(&args);
    assert!(line(&t, "virtual address space").contains("512 GiB"), "{t}");
    assert!(line(&t, "flat table size").contains("1 GiB"), "{t}");
    assert!(line(&t, "entries per table page").contains("512"), "{t}");
    assert!(line(&t, "levels needed").contains("3 (9+9+9)"), "{t}");
    assert!(line(&t, "levels needed").contains("ceil(27 / 9)"), "{t}");
    assert!(
        line(&t, "physical address space").contains("2^pa_bits = 2^56"),
        "{t}"
    );
}

// ---- A6, A7: 12-bit architecture --------------------------------------------

#[test]
fn a6_a7_12_bit_flat_tables() {
    for (page, entries) in [("32", 128), ("512", 8)] {
        let args = ["--va-bits", "12", "--page-size", page, "--pte-size", "2"];
        assert_eq!(calc_json(&args)["entries"], entries, "page {page}");
        let t = calc_text(&args);
        assert!(
            line(&t, "flat table entries").contains(&format!(" {entries} ")),
            "{t}"
        );
    }
}

// ---- A8: sparse two-level table ------------------------------------------------

const A8: [&str; 12] = [
    "--va-bits",
    "12",
    "--page-size",
    "64",
    "--pte-size",
    "1",
    "--level-bits",
    "2,4",
    "--used",
    "0-2KiB",
    "--used",
    "3KiB-4KiB",
];

#[test]
fn a8_sparse_two_level_has_48_leaf_entries_a_25_percent_saving() {
    let j = calc_json(&A8);
    assert_eq!(j["entries"], 64);
    assert_eq!(j["leaf_table_entries"], 48);
    assert_eq!(j["leaf_tables"], 3);
    assert_eq!(j["used_levels"][1]["tables_full"], 4);
    assert_eq!(j["leaf_saving_percent"], 25.0);
    assert_eq!(j["table_entries"], 52);
    assert_eq!(j["total_saving_percent"], 18.75);
    let t = calc_text(&A8);
    assert!(line(&t, "leaf table entries").contains("48"), "{t}");
    assert!(line(&t, "leaf table entries").contains("3 x 16"), "{t}");
    assert!(line(&t, "saving (leaf tables only)").contains("25%"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.contains("2 (leaf)") && l.contains("3 of 4")),
        "{t}"
    );
}

#[test]
fn a8_flat_format_has_64_entries_and_regions_in_any_order() {
    let j = calc_json(&[
        "--va-bits",
        "12",
        "--page-size",
        "64",
        "--pte-size",
        "1",
        "--level-bits",
        "2+4",
        "--used",
        "0xc00-0x1000",
        "--used",
        "0-0x800",
    ]);
    assert_eq!(j["leaf_table_entries"], 48);
    assert_eq!(j["used_regions"][0]["end"], 2048);
}

#[test]
fn used_without_level_bits_counts_the_page_fitting_tree() {
    // Sv39 with one page at 0 and one at the top: 1 root, 2 middle, 2 leaf tables.
    let j = calc_json(&[
        "--va-bits",
        "39",
        "--page-size",
        "4KiB",
        "--pte-size",
        "8",
        "--used",
        "0-4KiB",
        "--used",
        "0x7ffffff000-512GiB",
    ]);
    assert_eq!(j["used_level_bits"], serde_json::json!([9, 9, 9]));
    assert_eq!(j["leaf_tables"], 2);
    assert_eq!(j["table_bytes"], 5 * 4096);
    assert_eq!(j["used_pages"], 2);
}

// ---- A9: coverage of one inner table ---------------------------------------------

#[test]
fn a9_one_inner_table_covers_1_mib() {
    let args = [
        "--va-bits",
        "32",
        "--page-size",
        "1KiB",
        "--pte-size",
        "4",
        "--level-bits",
        "12,10",
    ];
    let j = calc_json(&args);
    assert_eq!(j["level_detail"][1]["table_covers_bytes"], 1 << 20);
    assert_eq!(j["level_detail"][1]["entry_covers_bytes"], 1 << 10);
    let t = calc_text(&args);
    assert!(line(&t, "2 (leaf)").contains("1 MiB"), "{t}");
}

// ---- A10, A11: larger pages ------------------------------------------------------

#[test]
fn a10_a11_reduction_factors_of_2_mib_and_1_gib_pages() {
    let args = [
        "--va-bits",
        "48",
        "--page-size",
        "4KiB",
        "--pte-size",
        "8",
        "--compare-page-size",
        "2MiB",
        "--compare-page-size",
        "1GiB",
    ];
    let j = calc_json(&args);
    assert_eq!(j["compare"][0]["offset_bits"], 21);
    assert_eq!(j["compare"][0]["reduction_factor"], 512);
    assert_eq!(j["compare"][1]["offset_bits"], 30);
    // 2^18, not the 1024x of the notes.
    assert_eq!(j["compare"][1]["reduction_factor"], 262_144);
    assert_eq!(j["compare"][1]["log2_reduction"], 18);
    let t = calc_text(&args);
    assert!(t.contains("512x fewer entries"), "{t}");
    assert!(t.contains("262,144x fewer entries (2^18)"), "{t}");
}

#[test]
fn smaller_compare_page_gives_a_fractional_factor() {
    let j = calc_json(&[
        "--va-bits",
        "32",
        "--page-size",
        "4KiB",
        "--pte-size",
        "4",
        "--compare-page-size",
        "1KiB",
    ]);
    assert_eq!(j["compare"][0]["reduction_factor"], 0.25);
    assert_eq!(j["compare"][0]["log2_reduction"], -2);
}

// ---- A12: level counts ---------------------------------------------------------

#[test]
fn a12_x86_64_needs_4_levels_of_9_bits_and_57_bits_needs_5() {
    let j = calc_json(&["--va-bits", "48", "--page-size", "4KiB", "--pte-size", "8"]);
    assert_eq!(j["offset_bits"], 12);
    assert_eq!(j["levels"], 4);
    assert_eq!(j["fit_level_bits"], serde_json::json!([9, 9, 9, 9]));
    let j = calc_json(&["--va-bits", "57", "--page-size", "4KiB", "--pte-size", "8"]);
    assert_eq!(j["levels"], 5);
    // Bits that do not divide evenly: the root takes the remainder.
    let j = calc_json(&["--va-bits", "64", "--page-size", "4KiB", "--pte-size", "8"]);
    assert_eq!(j["levels"], 6);
    assert_eq!(j["fit_level_bits"], serde_json::json!([7, 9, 9, 9, 9, 9]));
}

// ---- A13: sequential scan ---------------------------------------------------------

#[test]
fn a13_1024_ints_per_page_one_miss_then_1023_hits() {
    let args = [
        "--va-bits",
        "32",
        "--page-size",
        "4KiB",
        "--pte-size",
        "4",
        "--element-size",
        "4",
    ];
    let j = calc_json(&args);
    assert_eq!(j["scan"]["elements_per_page"], 1024);
    assert_eq!(j["scan"]["tlb_misses_per_page"], 1);
    assert_eq!(j["scan"]["tlb_hits_per_page"], 1023);
    let t = calc_text(&args);
    assert!(line(&t, "elements per page").contains("1,024"), "{t}");
    assert!(line(&t, "TLB hits per page").contains("1,023"), "{t}");
}

// ---- Translation cost ----------------------------------------------------------------

fn eat_json(args: &[&str]) -> Value {
    json(&[&["calc", "eat"], args].concat())
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[test]
fn eat_one_level_is_the_course_formula() {
    for (a, tlb, mem) in [
        (0.8, 20.0, 100.0),
        (0.98, 1.0, 50.0),
        (0.0, 5.0, 60.0),
        (1.0, 5.0, 60.0),
    ] {
        let j = eat_json(&[
            "--hit-ratio",
            &a.to_string(),
            "--tlb-ns",
            &tlb.to_string(),
            "--mem-ns",
            &mem.to_string(),
        ]);
        let want = a * (tlb + mem) + (1.0 - a) * (tlb + 2.0 * mem);
        assert!(close(&j["eat_ns"], want), "{j} vs {want}");
        assert_eq!(j["miss_mem_accesses"], 2);
        assert!(close(&j["hit_ns"], tlb + mem));
        assert!(close(&j["miss_ns"], tlb + 2.0 * mem));
    }
}

#[test]
fn eat_four_level_miss_costs_five_memory_accesses() {
    let j = eat_json(&[
        "--hit-ratio",
        "99%",
        "--tlb-ns",
        "1",
        "--mem-ns",
        "100",
        "--levels",
        "4",
    ]);
    assert_eq!(j["miss_mem_accesses"], 5);
    assert!(close(&j["miss_ns"], 501.0));
    assert!(close(&j["eat_ns"], 0.99 * 101.0 + 0.01 * 501.0));
}

#[test]
fn eat_prints_each_part_with_its_formula() {
    vmsim()
        .args([
            "calc",
            "eat",
            "--hit-ratio",
            "0.8",
            "--tlb-ns",
            "20",
            "--mem-ns",
            "100",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("140 ns"))
        .stdout(predicate::str::contains("0.8 x 120 + 0.2 x 220"));
}

#[test]
fn eat_rejects_a_hit_ratio_outside_0_1() {
    for bad in ["1.5", "-0.1", "150%", "often"] {
        let out = vmsim()
            .args([
                "calc",
                "eat",
                "--hit-ratio",
                bad,
                "--tlb-ns",
                "1",
                "--mem-ns",
                "100",
            ])
            .assert()
            .failure()
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(out).expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--hit-ratio"), "{err}");
    }
}

#[test]
fn eat_rejects_negative_times_and_zero_levels() {
    vmsim()
        .args([
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            "-1",
            "--mem-ns",
            "100",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--tlb-ns"));
    vmsim()
        .args([
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            "1",
            "--mem-ns",
            "100",
            "--levels",
            "0",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("levels 0"));
}

// ---- Errors -----------------------------------------------------------------------

const BASE: [&str; 4] = ["--va-bits", "12", "--page-size", "64"];

fn with_base<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = BASE.to_vec();
    v.extend_from_slice(more);
    v
}

#[test]
fn bad_sizes_are_refused_with_the_accepted_units() {
    let err = calc_error(&["--va-bits", "32", "--page-size", "4KB", "--pte-size", "4"]);
    assert!(
        err.contains("--page-size") && err.contains("ambiguous"),
        "{err}"
    );
    let err = calc_error(&[
        "--va-bits",
        "32",
        "--page-size",
        "4 lumps",
        "--pte-size",
        "4",
    ]);
    assert!(err.contains("B, K, KiB, M, MiB, G, GiB, T, TiB"), "{err}");
}

#[test]
fn page_size_must_be_a_power_of_two_that_fits() {
    let err = calc_error(&["--va-bits", "32", "--page-size", "3000", "--pte-size", "4"]);
    assert!(err.contains("not a power of two"), "{err}");
    let err = calc_error(&["--va-bits", "12", "--page-size", "8KiB", "--pte-size", "4"]);
    assert!(
        err.contains("13 offset bits") && err.contains("12 va bits"),
        "{err}"
    );
}

#[test]
fn va_bits_and_pte_size_are_range_checked() {
    let err = calc_error(&["--va-bits", "65", "--page-size", "4KiB", "--pte-size", "8"]);
    assert!(err.contains("va bits 65"), "{err}");
    let err = calc_error(&with_base(&["--pte-size", "3"]));
    assert!(
        err.contains("pte size 3") && err.contains("1, 2, 4, 8 or 16"),
        "{err}"
    );
    let err = calc_error(&[
        "--va-bits",
        "32",
        "--page-size",
        "4KiB",
        "--pte-size",
        "4",
        "--pa-bits",
        "48",
    ]);
    assert!(err.contains("36 frame-number bits"), "{err}");
}

#[test]
fn level_bits_that_do_not_add_up_name_both_sums() {
    let err = calc_error(&with_base(&["--pte-size", "1", "--level-bits", "2,3"]));
    assert!(
        err.contains("level bits 2+3 = 5 but va bits - offset bits = 12 - 6 = 6"),
        "{err}"
    );
    let err = calc_error(&with_base(&["--pte-size", "1", "--level-bits", "2,x"]));
    assert!(err.contains("--level-bits"), "{err}");
}

#[test]
fn used_regions_must_be_ordered_disjoint_and_inside() {
    let used = |a: &'static str, b: &'static str| {
        calc_error(&with_base(&[
            "--pte-size",
            "1",
            "--level-bits",
            "2,4",
            "--used",
            a,
            "--used",
            b,
        ]))
    };
    let err = used("0-1KiB", "3KiB-2KiB");
    assert!(
        err.contains("used region 2") && err.contains("reversed"),
        "{err}"
    );
    let err = used("0-2KiB", "1KiB-3KiB");
    assert!(
        err.contains("used regions 1") && err.contains("overlap"),
        "{err}"
    );
    let err = used("0-1KiB", "3KiB-5KiB");
    assert!(err.contains("beyond the 12-bit address space"), "{err}");
    let err = used("0-1KiB", "3KiB");
    assert!(err.contains("START-END"), "{err}");
}

#[test]
fn addresses_outside_the_space_are_refused() {
    let err = calc_error(&with_base(&["--pte-size", "1", "--address", "0x1000"]));
    assert!(
        err.contains("does not fit the 12-bit address space"),
        "{err}"
    );
}

#[test]
fn compare_page_larger_than_the_space_is_refused() {
    let err = calc_error(&with_base(&[
        "--pte-size",
        "1",
        "--compare-page-size",
        "2MiB",
    ]));
    assert!(err.contains("--compare-page-size"), "{err}");
}

#[test]
fn element_size_must_divide_the_page() {
    let err = calc_error(&with_base(&["--pte-size", "1", "--element-size", "24"]));
    assert!(err.contains("element size 24"), "{err}");
}

#[test]
fn help_documents_the_json_keys() {
    vmsim()
        .args(["calc", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("leaf_table_entries"))
        .stdout(predicate::str::contains("entries_per_table"));
    vmsim()
        .args(["calc", "eat", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("eat_ns"));
}

// ---- Geometry from a paging format -----------------------------------------------

#[test]
fn a5_from_the_sv39_format() {
    let j = calc_json(&["--arch", "sv39"]);
    assert_eq!(j["arch"], "sv39");
    assert_eq!(j["address_space_bytes"], 512u64 << 30);
    assert_eq!(j["entries"], 1u64 << 27);
    assert_eq!(j["bytes"], 1u64 << 30);
    assert_eq!(j["entries_per_table"], 512);
    assert_eq!(j["levels"], 3);
    assert_eq!(j["level_bits"], serde_json::json!([9, 9, 9]));
    assert_eq!(j["pa_bits"], 56);
}

#[test]
fn a12_from_the_x86_formats() {
    let j = calc_json(&["--arch", "x86-64"]);
    assert_eq!(j["va_bits"], 48);
    assert_eq!(j["offset_bits"], 12);
    assert_eq!(j["level_bits"], serde_json::json!([9, 9, 9, 9]));
    assert_eq!(j["levels"], 4);
    assert_eq!(j["level_detail"][0]["table_name"], "PML4");
    let j = calc_json(&["--arch", "x86-64-5level"]);
    assert_eq!(j["va_bits"], 57);
    assert_eq!(j["levels"], 5);
    let t = calc_text(&["--arch", "x86-64"]);
    assert!(line(&t, "levels needed").contains("4 (9+9+9+9)"), "{t}");
    assert!(t.contains("1 (root) PML4"), "{t}");
    // x86 32-bit: 2 levels of 10 bits with 4-byte entries, 4 MiB flat table (A2).
    let j = calc_json(&["--arch", "x86-32"]);
    assert_eq!(j["level_bits"], serde_json::json!([10, 10]));
    assert_eq!(j["bytes"], 4 << 20);
}

#[test]
fn canonical_upper_half_addresses_split_by_their_low_bits() {
    let j = calc_json(&["--arch", "x86-64", "--address", "0xffff800000001234"]);
    assert_eq!(j["address"]["indices"], serde_json::json!([256, 0, 0, 1]));
    assert_eq!(j["address"]["offset"], 0x234);
    let err = calc_error(&["--arch", "x86-64", "--address", "0x0000800000001234"]);
    assert!(err.contains("non-canonical"), "{err}");
}

#[test]
fn arch_conflicts_with_explicit_geometry_and_unknown_names_fail() {
    vmsim()
        .args(["calc", "--arch", "sv39", "--va-bits", "39"])
        .assert()
        .failure();
    let err = calc_error(&["--arch", "vax"]);
    assert!(
        err.contains("unknown architecture 'vax'") && err.contains("sv39"),
        "{err}"
    );
}

#[test]
fn a8_from_a_user_format_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a8.toml");
    std::fs::write(
        &path,
        "name = \"course-12\"\nva_bits = 12\npage_size = 64\nlevel_bits = [2, 4]\n\
         entry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 6\n",
    )
    .expect("write format");
    let path = path.to_str().expect("utf-8 path");
    let j = calc_json(&["--format", path, "--used", "0-2KiB", "--used", "3KiB-4KiB"]);
    assert_eq!(j["arch"], "course-12");
    assert_eq!(j["entries"], 64);
    assert_eq!(j["leaf_table_entries"], 48);
    let err = calc_error(&["--format", "/nonexistent/format.toml"]);
    assert!(err.contains("--format"), "{err}");
}

#[test]
fn eat_takes_levels_from_a_format() {
    let j = eat_json(&[
        "--hit-ratio",
        "0.5",
        "--tlb-ns",
        "0",
        "--mem-ns",
        "10",
        "--arch",
        "x86-64",
    ]);
    assert_eq!(j["levels"], 4);
    assert_eq!(j["miss_mem_accesses"], 5);
    assert!(close(&j["eat_ns"], 0.5 * 10.0 + 0.5 * 50.0));
    let j = eat_json(&[
        "--hit-ratio",
        "0.5",
        "--tlb-ns",
        "0",
        "--mem-ns",
        "10",
        "--arch",
        "sv39",
    ]);
    assert_eq!(j["miss_mem_accesses"], 4);
}
