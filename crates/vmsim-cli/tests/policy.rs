//! `vmsim policy`: the replacement-policy lab from the command line.

use std::io::Write;

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{json, one_line_error, text, vmsim};

/// Every policy the CLI must offer, by its `--policy` name.
const POLICIES: [&str; 17] = [
    "fifo",
    "lru",
    "clock",
    "nru",
    "aging",
    "random",
    "opt",
    "unopt",
    "mru",
    "lfu",
    "linux",
    "arc",
    "2q",
    "lirs",
    "clock-pro",
    "sieve",
    "s3-fifo",
];

/// Runs `vmsim policy ARGS --json` and parses its output.
fn policy_json(args: &[&str]) -> Value {
    json(&[&["policy"], args].concat())
}

#[test]
fn lru_quiz_misses_22_of_22() {
    let refs: Vec<String> = (0..=10).chain(0..=10).map(|p: u32| p.to_string()).collect();
    let v = policy_json(&[
        "--policy",
        "lru",
        "--frames",
        "10",
        "--refs",
        &refs.join(","),
        "--quiet",
    ]);
    assert_eq!(v["misses"], 22);
    assert_eq!(v["hits"], 0);
    assert_eq!(v["oracle"], true);
    assert!(v.get("steps").is_none(), "--quiet leaves out the steps");
}

#[test]
fn fifo_belady_anomaly_9_then_10() {
    let refs = "1,2,3,4,1,2,5,1,2,3,4,5";
    assert_eq!(
        policy_json(&["--policy", "fifo", "--frames", "3", "--refs", refs])["misses"],
        9
    );
    assert_eq!(
        policy_json(&["--policy", "fifo", "--frames", "4", "--refs", refs])["misses"],
        10
    );
}

#[test]
fn per_access_lines_show_outcome_victim_and_contents() {
    vmsim()
        .args([
            "policy",
            "--policy",
            "fifo",
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("ref 3: miss, frames [1 2 3]\n"))
        .stdout(predicate::str::contains(
            "ref 4: miss, evicted 1, frames [2 3 4]\n",
        ))
        .stdout(predicate::str::contains(
            "ref 1: miss, evicted 2, frames [3 4 1]\n",
        ))
        .stdout(predicate::str::contains(
            "fifo with 3 frames: 5 references, 0 hits, 5 misses",
        ));
}

#[test]
fn quiet_prints_only_totals() {
    vmsim()
        .args([
            "policy", "-p", "lru", "-f", "2", "--refs", "1 2 1 3", "--quiet",
        ])
        .assert()
        .success()
        .stdout(
            "lru (oracle) with 2 frames: 4 references, 1 hits, 3 misses (75.00%), 1 evictions\n",
        );
}

#[test]
fn json_steps_hold_hit_and_evicted() {
    let v = policy_json(&["--policy", "opt", "--frames", "2", "--refs", "1,2,3,1,2"]);
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0]["hit"], false);
    assert_eq!(steps[0]["evicted"], Value::Null);
    // At 3, OPT evicts 2 (next used at index 4, after 1 at index 3).
    assert_eq!(steps[2]["evicted"], 2);
    assert_eq!(steps[3]["hit"], true);
    assert_eq!(v["hits"], 1);
    assert_eq!(v["misses"], 4);
}

#[test]
fn file_accepts_lines_spaces_and_commas() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    write!(f, "# Belady\n1\n2 3\n4,1,2\n5, 1 ,2\r\n3\n4\n5\n").expect("write");
    let path = f.path().to_str().expect("utf-8 path");
    assert_eq!(
        policy_json(&[
            "--policy", "fifo", "--frames", "4", "--file", path, "--quiet"
        ])["misses"],
        10
    );
}

#[test]
fn bad_token_names_file_and_line() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    write!(f, "1\n2\nthree\n").expect("write");
    let path = f.path().to_str().expect("utf-8 path").to_owned();
    vmsim()
        .args([
            "policy", "--policy", "lru", "--frames", "2", "--file", &path,
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "{path}:3: 'three' is not a page number"
        )));
}

#[test]
fn zero_frames_and_unknown_policy_are_one_line_errors() {
    let err = one_line_error(&["policy", "--policy", "lru", "--frames", "0", "--refs", "1"]);
    assert!(err.contains("--frames"), "{err}");
    let err = one_line_error(&["policy", "--policy", "nope", "--frames", "2", "--refs", "1"]);
    assert!(err.contains("--policy: unknown policy 'nope'"), "{err}");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    vmsim()
        .args([
            "policy",
            "--policy",
            "lru",
            "--frames",
            "2",
            "--file",
            "/nonexistent/refs.txt",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/refs.txt"));
}

#[test]
fn list_shows_every_policy_and_which_are_oracles() {
    let text = text(&["policy", "--list"]);
    for name in POLICIES {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing:\n{text}"
        );
    }
    let lru = text
        .lines()
        .find(|l| l.starts_with("lru "))
        .expect("lru line");
    assert!(lru.contains(" yes "), "{lru}");
    let clock = text
        .lines()
        .find(|l| l.starts_with("clock "))
        .expect("clock line");
    assert!(clock.contains(" no "), "{clock}");
}

#[test]
fn clock_insert_option_is_visible() {
    let refs = "1,2,1,3,1";
    let set = policy_json(&[
        "--policy", "clock", "--frames", "2", "--refs", refs, "--quiet",
    ]);
    let clear = policy_json(&[
        "--policy",
        "clock",
        "--frames",
        "2",
        "--refs",
        refs,
        "--quiet",
        "--clock-insert",
        "clear",
    ]);
    assert_eq!(set["misses"], 4);
    assert_eq!(clear["misses"], 3);
}

#[test]
fn every_policy_runs_from_the_command_line() {
    for name in POLICIES {
        let v = policy_json(&[
            "--policy",
            name,
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1,2,5,1,2,3,4,5",
            "--quiet",
        ]);
        assert_eq!(v["references"], 12, "{name}");
        assert!(
            v["misses"].as_u64().expect("misses") >= 7,
            "{name}: OPT gets 7"
        );
    }
}

#[test]
fn stale_tlb_entries_make_clock_forget_hot_pages() {
    // Page 1 is used between every new page; new pages join with A clear.
    // With invalidation CLOCK keeps 1 (7 misses: each page once); without
    // it, 1's accessed bit is never set again and 1 is evicted as in FIFO.
    let refs = "1,2,1,3,1,4,1,5,1,6,1,7,1";
    let clock = [
        "--policy",
        "clock",
        "--clock-insert",
        "clear",
        "--frames",
        "3",
        "--refs",
        refs,
        "--quiet",
    ];
    let good = policy_json(&clock);
    let stale = policy_json(&[&clock[..], &["--keep-tlb-entry-on-clear"]].concat());
    let fifo = policy_json(&[
        "--policy", "fifo", "--frames", "3", "--refs", refs, "--quiet",
    ]);
    assert_eq!(good["misses"], 7);
    assert!(
        stale["misses"].as_u64() > good["misses"].as_u64(),
        "{stale} vs {good}"
    );
    assert_eq!(stale["misses"], fifo["misses"]);
}

#[test]
fn policy_help_lists_and_missing_flags_are_named() {
    vmsim()
        .args(["policy", "--policy", "help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("clock-pro"));
    vmsim()
        .args(["policy", "--policy", "lru", "--refs", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--frames"));
    vmsim()
        .args(["policy", "--policy", "lru", "--frames", "2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--refs or --file"));
}

/// A real trace shipped with the trace crate's tests.
fn trace_data(name: &str) -> String {
    format!(
        "{}/../vmsim-trace/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The page-number file of a lackey trace, made here independently of
/// vmsim's readers: every page from an access's first to its last byte,
/// `w` for stores and modifies.
fn pages_of_lackey(lackey_zst: &str, shift: u32) -> String {
    let raw = zstd::stream::decode_all(std::fs::File::open(lackey_zst).unwrap()).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let kind = match line.get(..3) {
            Some("I  ") => 'I',
            Some(" L ") => 'L',
            Some(" S ") => 'S',
            Some(" M ") => 'M',
            _ => continue,
        };
        let (addr, size) = line[3..].split_once(',').unwrap();
        let va = u64::from_str_radix(addr, 16).unwrap();
        let size: u64 = size.trim().parse().unwrap();
        let w = if matches!(kind, 'S' | 'M') { "w" } else { "" };
        for page in (va >> shift)..=((va + size - 1) >> shift) {
            out.push_str(&format!("{page}{w}\n"));
        }
    }
    out
}

#[test]
fn a_lackey_trace_and_its_page_number_file_give_the_same_counts() {
    let trace = trace_data("tinystatic.lackey.zst");
    let dir = tempfile::tempdir().unwrap();
    for (shift, size) in [(12, "4KiB"), (6, "64")] {
        let refs = dir.path().join(format!("pages{shift}.txt"));
        let made_here = pages_of_lackey(&trace, shift);
        // `vmsim trace pages` writes the same file.
        assert_eq!(
            text(&["trace", "pages", &trace, "--page-size", size]),
            made_here
        );
        std::fs::write(&refs, made_here).unwrap();
        let refs = refs.to_str().unwrap();
        for policy in ["lru", "fifo", "clock", "nru", "opt", "arc", "sieve"] {
            for frames in ["1", "7", "64"] {
                let common = ["--policy", policy, "--frames", frames, "--quiet"];
                let a = policy_json(&[&common[..], &[&trace, "--page-size", size]].concat());
                let b = policy_json(&[&common[..], &[refs]].concat());
                let c = policy_json(&[&common[..], &["--file", refs]].concat());
                for key in [
                    "references",
                    "distinct_pages",
                    "hits",
                    "misses",
                    "evictions",
                ] {
                    assert_eq!(a[key], b[key], "{policy} {frames} {size}: {key}");
                    assert_eq!(b[key], c[key], "{policy} {frames} {size}: {key}");
                }
            }
        }
    }
}

#[test]
fn standard_input_works_for_every_kind_of_input() {
    let trace = trace_data("true.lackey.zst");
    let zst = std::fs::read(&trace).unwrap();
    let plain = zstd::stream::decode_all(&zst[..]).unwrap();
    let args = [
        "policy", "--policy", "clock", "--frames", "32", "-q", "--json",
    ];
    let from_file = vmsim().args(args).arg(&trace).output().unwrap();
    assert!(from_file.status.success());
    for bytes in [zst.clone(), plain] {
        let out = vmsim()
            .args(args)
            .arg("-")
            .write_stdin(bytes)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, from_file.stdout);
    }
    // Page numbers on a pipe, found by content; a bad token names <stdin>.
    let v: Value = serde_json::from_slice(
        &vmsim()
            .args(["policy", "-p", "fifo", "-f", "3", "-", "--json", "-q"])
            .write_stdin("# belady\n1 2 3 4 1 2 5 1 2 3 4 5\n")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["misses"], 9);
    let err = vmsim()
        .args(["policy", "-p", "fifo", "-f", "3", "-"])
        .write_stdin("1 2\n3 x4\n")
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8_lossy(&err).contains("<stdin>:2: 'x4' is not a page number"),
        "{}",
        String::from_utf8_lossy(&err)
    );
}

#[test]
fn compressed_page_numbers_and_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("refs.zst");
    std::fs::write(
        &z,
        zstd::stream::encode_all(&b"1,2,3,4,1,2,5,1,2,3,4,5"[..], 3).unwrap(),
    )
    .unwrap();
    let v = policy_json(&["-p", "fifo", "-f", "4", z.to_str().unwrap(), "-q"]);
    assert_eq!(v["misses"], 10);
    let scenario = format!(
        "{}/../../examples/fork-cow.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = one_line_error(&["policy", "-p", "lru", "-f", "4", &scenario]);
    assert!(e.contains("scenario file"), "{e}");
    let e = one_line_error(&[
        "policy",
        "-p",
        "lru",
        "-f",
        "4",
        "synth:loop",
        "--page-size",
        "3K",
    ]);
    assert!(
        e.contains("--page-size") && e.contains("power of two"),
        "{e}"
    );
    let e = one_line_error(&["policy", "-p", "lru", "-f", "4", "/nonexistent/trace"]);
    assert!(e.contains("/nonexistent/trace"), "{e}");
    // Straddling accesses touch both pages: 64-byte pages, 8-byte loads at 60.
    let v = policy_json(&[
        "-p",
        "lru",
        "-f",
        "1",
        "synth:loop,pages=1,repeats=3,size=8,base=60",
        "--page-size",
        "64",
        "-q",
    ]);
    assert_eq!(v["references"], 6);
    assert_eq!(v["misses"], 6);
}

/// The page evicted at each step (null where nothing was).
fn evictions(v: &Value) -> Vec<Value> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["evicted"].clone())
        .collect()
}

#[test]
fn opt_ties_among_pages_never_used_again() {
    // 3 frames, 1 2 3 1 4: at 4 (index 4) no resident page is used again.
    // Last uses: 1 at index 3, 2 at 1, 3 at 2; loads: 1 at 0, 2 at 1, 3 at 2.
    // oldest (least recently used): 2; newest: 1; first-loaded: 1; last-loaded: 3.
    let refs = "1,2,3,1,4";
    for (rule, victim) in [
        ("oldest", 2),
        ("newest", 1),
        ("first-loaded", 1),
        ("last-loaded", 3),
    ] {
        let v = policy_json(&[
            "--policy", "opt", "--frames", "3", "--refs", refs, "--ties", rule,
        ]);
        assert_eq!(evictions(&v)[4], victim, "{rule}");
        assert_eq!(v["ties"], rule);
    }
    // The default is oldest, and says so.
    let v = policy_json(&["--policy", "opt", "--frames", "3", "--refs", refs]);
    assert_eq!(evictions(&v)[4], 2);
    assert_eq!(v["ties"], "oldest");
    // Silberschatz's OPT example (3 frames): 9 page faults whatever the rule.
    let s = "7,0,1,2,0,3,0,4,2,3,0,3,2,1,2,0,1,7,0,1";
    for rule in ["oldest", "newest", "first-loaded", "last-loaded"] {
        let v = policy_json(&[
            "--policy", "opt", "--frames", "3", "--refs", s, "--ties", rule, "--quiet",
        ]);
        assert_eq!(v["misses"], 9, "{rule}");
    }
}

#[test]
fn unopt_ties_when_only_useless_pages_are_left() {
    // 3 frames, 1 2 3 4: at 4 all three are never used again.
    // Default newest (most recently used): 3; oldest: 1.
    let v = policy_json(&["--policy", "unopt", "--frames", "3", "--refs", "1,2,3,4"]);
    assert_eq!(evictions(&v)[3], 3);
    assert_eq!(v["ties"], "newest");
    let v = policy_json(&[
        "--policy", "unopt", "--frames", "3", "--refs", "1,2,3,4", "--ties", "oldest",
    ]);
    assert_eq!(evictions(&v)[3], 1);
}

#[test]
fn lfu_ties_between_equal_counts() {
    // 3 frames, 1 2 3 2 1 3 4: at 4 every page was used twice.
    // Last uses: 2 at 3, 1 at 4, 3 at 5; loads 1, 2, 3 in that order.
    // oldest: 2; newest: 3; first-loaded: 1; last-loaded: 3.
    for (rule, victim) in [
        ("oldest", 2),
        ("newest", 3),
        ("first-loaded", 1),
        ("last-loaded", 3),
    ] {
        let v = policy_json(&[
            "--policy",
            "lfu",
            "--frames",
            "3",
            "--refs",
            "1,2,3,2,1,3,4",
            "--ties",
            rule,
        ]);
        assert_eq!(evictions(&v)[6], victim, "{rule}");
    }
}

#[test]
fn aging_ties_between_equal_counters() {
    // 3 frames, tick every 3 references: 1 2 3 load at 0x80 each; the tick
    // after the third shifts all to 0x40 (no reference set A since the
    // loads cleared it). At 4 they tie: first-loaded evicts 1, last-loaded 3.
    let v = policy_json(&["--policy", "aging", "--frames", "3", "--refs", "1,2,3,4"]);
    assert_eq!(evictions(&v)[3], 1);
    assert_eq!(v["ties"], "first-loaded");
    let v = policy_json(&[
        "--policy",
        "aging",
        "--frames",
        "3",
        "--refs",
        "1,2,3,4",
        "--ties",
        "last-loaded",
    ]);
    assert_eq!(evictions(&v)[3], 3);
}

#[test]
fn ties_for_a_policy_without_ties_is_an_error() {
    let e = one_line_error(&[
        "policy", "--policy", "fifo", "--frames", "3", "--refs", "1,2", "--ties", "oldest",
    ]);
    assert!(e.contains("fifo has no ties to break"), "{e}");
    let v = policy_json(&["--policy", "fifo", "--frames", "3", "--refs", "1,2"]);
    assert_eq!(v["ties"], Value::Null);
}
