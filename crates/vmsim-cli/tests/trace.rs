//! `vmsim trace stats | convert | record`.

use std::path::PathBuf;
use std::process::Command;

use predicates::prelude::*;

use crate::common::{json, vmsim};

/// A trace shipped with the trace crate's tests.
fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vmsim-trace/tests/data")
        .join(name)
}

fn stats_json(trace: &str) -> serde_json::Value {
    json(&["trace", "stats", trace])
}

#[test]
fn stats_json_matches_the_readme_counts() {
    let v = stats_json(data("true.lackey.zst").to_str().unwrap());
    // /work/shared/traces/README.md: true.lackey.zst.
    for (key, want) in [
        ("refs", 167_911),
        ("instr", 128_165),
        ("load", 27_977),
        ("store", 10_265),
        ("modify", 1_504),
        ("pages_4k", 139),
        ("pages_2m", 6),
    ] {
        assert_eq!(v[key], want, "{key}");
    }
    assert_eq!(v["footprint_bytes"], 139 * 4096);
}

#[test]
fn stats_table_and_synth_spec() {
    vmsim()
        .args(["trace", "stats", "synth:scan,bytes=64KiB,stride=4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("references       16384"))
        .stdout(predicate::str::contains("pages 4 KiB      16"));
}

#[test]
fn convert_then_stats_gives_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.vmt");
    let src = data("tinystatic.lackey.zst");
    vmsim()
        .args([
            "trace",
            "convert",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 146435 references"));
    assert_eq!(
        stats_json(out.to_str().unwrap()),
        stats_json(src.to_str().unwrap())
    );
}

#[test]
fn malformed_line_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lackey");
    std::fs::write(&bad, "==1== banner\nI  0401ab70,3\n Q 0401ab70,3\n").unwrap();
    vmsim()
        .args(["trace", "stats", bad.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "bad.lackey:3: malformed lackey line",
        ));
}

#[test]
fn truncated_zstd_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data("true.lackey.zst")).unwrap();
    let cut = dir.path().join("cut.lackey.zst");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    vmsim()
        .args(["trace", "stats", cut.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("truncated"));
}

#[test]
fn bad_synth_key_lists_the_accepted_ones() {
    vmsim()
        .args(["trace", "stats", "synth:zipf,alpha=1"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("unknown key 'alpha'")
                .and(predicate::str::contains("pages, s, shuffle")),
        );
}

#[test]
fn help_documents_the_json_keys() {
    vmsim()
        .args(["trace", "stats", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("footprint_bytes").and(predicate::str::contains("pages_2m")),
        );
}

/// Whether valgrind is not installed, in which case `what` is skipped (said
/// on stderr).
fn valgrind_missing(what: &str) -> bool {
    let missing = Command::new("valgrind").arg("--version").output().is_err();
    if missing {
        eprintln!("note: valgrind is not installed; skipping {what}");
    }
    missing
}

#[test]
fn record_true_under_valgrind() {
    if valgrind_missing("the record test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("true.lackey.zst");
    vmsim()
        .args([
            "trace",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--",
            "/bin/true",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("(pid "));
    let v = stats_json(out.to_str().unwrap());
    // /bin/true is mostly the dynamic loader: about 168k references on the reference machine.
    let refs = v["refs"].as_u64().unwrap();
    assert!(refs > 50_000, "{refs}");
    assert_eq!(
        refs,
        ["instr", "load", "store", "modify"]
            .iter()
            .map(|k| v[*k].as_u64().unwrap())
            .sum::<u64>()
    );
    // Only the output remains: the raw log and temporary directory are gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn record_without_valgrind_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.lackey.zst");
    vmsim()
        .args([
            "trace",
            "record",
            "--valgrind",
            "/nonexistent/valgrind",
            "-o",
            out.to_str().unwrap(),
            "--",
            "/bin/true",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is valgrind installed"));
    assert!(!out.exists());
}

#[test]
fn record_writes_one_trace_per_forked_process() {
    if valgrind_missing("the fork record test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sh.lackey.zst");
    // The shell forks a child for the first /bin/true; valgrind follows the fork.
    let output = vmsim()
        .args([
            "trace",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            "/bin/true; /bin/true; exit 3",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("forked child"), "{stdout}");
    assert!(stdout.contains("exited with exit status: 3"), "{stdout}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    assert!(names.contains(&"sh.lackey.zst".to_owned()));
    for name in &names {
        assert!(
            name.starts_with("sh.") && name.ends_with(".lackey.zst"),
            "{names:?}"
        );
        let v = stats_json(dir.path().join(name).to_str().unwrap());
        assert!(v["refs"].as_u64().unwrap() > 0, "{name}");
    }
}

#[test]
fn convert_concatenates_inputs_and_pages_writes_binary() {
    let dir = tempfile::tempdir().unwrap();
    let t = data("true.lackey.zst");
    let t = t.to_str().unwrap();
    let out = dir.path().join("three.vmt");
    vmsim()
        .args(["trace", "convert", t, "synth:loop,pages=3,repeats=1", t])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 335825 references"));
    assert_eq!(stats_json(out.to_str().unwrap())["refs"], 2 * 167_911 + 3);
    let bin = dir.path().join("p.bin");
    vmsim()
        .args([
            "trace",
            "pages",
            "synth:loop,pages=3,repeats=2",
            "--binary",
            "-o",
        ])
        .arg(&bin)
        .assert()
        .success();
    let bytes = std::fs::read(&bin).unwrap();
    let pages: Vec<u64> = bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let base = 0x1000_0000u64 >> 12;
    assert_eq!(pages, [base, base + 1, base + 2, base, base + 1, base + 2]);
    vmsim()
        .args(["trace", "convert", "/nonexistent/a", t])
        .arg(dir.path().join("x.vmt"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/a"));
    assert!(!dir.path().join("x.vmt").exists());
}
