//! `vmsim sweep`: grids of runs, records, shards, merge.

use std::path::Path;

use crate::common::{one_line_error, text, vmsim};

const SPEC: &str = r#"
inputs = ["synth:zipf,pages=300,refs=20K", "synth:loop,pages=40,repeats=50"]
set = ["run.quantum=500"]
[grid]
preset = ["x86-64", "classroom"]
"memory.frames" = [64, 1024]
"kernel.policy" = ["clock", "fifo"]
"#;

fn spec(dir: &Path, body: &str) -> String {
    let p = dir.join("grid.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn records(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("run-"))
        .collect();
    v.sort();
    v
}

#[test]
fn any_split_merges_to_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(d.path(), SPEC);
    let whole = d.path().join("whole");
    let out = text(&["sweep", &s, "--out", whole.to_str().unwrap(), "-j", "2"]);
    assert!(out.contains("16 runs in the grid"), "{out}");
    assert_eq!(records(&whole).len(), 16);
    // Three shards by flag.
    let split = d.path().join("split");
    for i in 0..3 {
        let shard = format!("{i}/3");
        text(&[
            "sweep",
            &s,
            "--out",
            split.to_str().unwrap(),
            "--shard",
            &shard,
            "-j",
            "1",
        ]);
    }
    // Two Slurm array tasks numbered from 5 (--array=5-6).
    let slurm = d.path().join("slurm");
    for id in ["6", "5"] {
        vmsim()
            .args(["sweep", &s, "--out", slurm.to_str().unwrap()])
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .env("SLURM_ARRAY_TASK_MIN", "5")
            .assert()
            .success();
    }
    for fmt in ["--csv", "--json"] {
        let a = text(&["sweep", "merge", whole.to_str().unwrap(), fmt]);
        let b = text(&["sweep", "merge", split.to_str().unwrap(), fmt]);
        let c = text(&["sweep", "merge", slurm.to_str().unwrap(), fmt]);
        assert_eq!(a, b, "{fmt}");
        assert_eq!(a, c, "{fmt}");
    }
    let csv = text(&["sweep", "merge", whole.to_str().unwrap(), "--csv"]);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("input,kernel.policy,memory.frames,preset,"),
        "{header}"
    );
    assert!(header.contains(",tlb_misses,"));
    assert_eq!(lines.count(), 16);
    // The table agrees with `vmsim run` for one of its rows.
    let run = crate::common::json(&[
        "run",
        "synth:loop,pages=40,repeats=50",
        "--preset",
        "classroom",
        "--set",
        "memory.frames=64",
        "--set",
        "kernel.policy=\"fifo\"",
        "--set",
        "run.quantum=500",
        "-q",
    ]);
    let merged: serde_json::Value = serde_json::from_str(&text(&[
        "sweep",
        "merge",
        whole.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let row = merged["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["params"]["input"] == "synth:loop,pages=40,repeats=50"
                && r["params"]["preset"] == "classroom"
                && r["params"]["memory.frames"] == 64
                && r["params"]["kernel.policy"] == "fifo"
        })
        .unwrap();
    for key in [
        "references",
        "tlb_misses",
        "walks",
        "major_faults",
        "peak_frames_used",
    ] {
        assert_eq!(row["report"][key], run[key], "{key}");
    }
}

#[test]
fn reruns_resume_and_never_lose_records() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(d.path(), SPEC);
    let out = d.path().join("r");
    let o = out.to_str().unwrap();
    text(&["sweep", &s, "--out", o, "--shard", "0/2"]);
    let names = records(&out);
    assert_eq!(names.len(), 8);
    let kept = std::fs::read(out.join(&names[0])).unwrap();
    std::fs::remove_file(out.join(&names[1])).unwrap();
    let again = text(&["sweep", &s, "--out", o]);
    assert!(again.contains("9 run now, 7 already done"), "{again}");
    assert_eq!(std::fs::read(out.join(&names[0])).unwrap(), kept);
    // A leftover temporary file of a killed run is not a record.
    std::fs::write(out.join(".vmsim-x.tmp"), b"{half").unwrap();
    text(&["sweep", "merge", o]);
    // A corrupt record is an error that names it, and stays.
    std::fs::write(out.join(&names[2]), b"{\"spec_hash\": ").unwrap();
    let e = one_line_error(&["sweep", &s, "--out", o]);
    assert!(e.contains(&names[2]) && e.contains("corrupt"), "{e}");
    let e = one_line_error(&["sweep", "merge", o]);
    assert!(e.contains(&names[2]) && e.contains("corrupt"), "{e}");
    assert_eq!(
        std::fs::read(out.join(&names[2])).unwrap(),
        b"{\"spec_hash\": "
    );
    std::fs::remove_file(out.join(&names[2])).unwrap();
    // A changed spec is refused in the same directory.
    let changed = spec(
        d.path(),
        &SPEC.replace("run.quantum=500", "run.quantum=700"),
    );
    let e = one_line_error(&["sweep", &changed, "--out", o]);
    assert!(e.contains("another spec"), "{e}");
    assert_eq!(records(&out).len(), 15);
}

#[test]
fn bad_specs_and_shards_name_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let o = d.path().join("o");
    let o = o.to_str().unwrap();
    for (body, want) in [
        (
            "inputs = [\"synth:loop\"]\n[grid]\n\"memory.framez\" = [1]\n",
            "memory.framez",
        ),
        (
            "inputs = [\"synth:loop\"]\n[grid]\n\"kernel.policy\" = []\n",
            "'kernel.policy' is an empty list",
        ),
        ("inputs = []\n", "'inputs' is an empty list"),
        ("inputs = [\"synth:loop\"]\nfoo = 1\n", "unknown key 'foo'"),
        (
            "inputs = [\"synth:loop\"]\n[grid]\npreset = [\"nope\"]\n",
            "nope",
        ),
        (
            "inputs = [\"synth:loop\"]\n[grid]\n\"memory.frames\" = 5\n",
            "must be a list",
        ),
        ("inputs = [", "grid.toml"),
    ] {
        let s = spec(d.path(), body);
        let e = one_line_error(&["sweep", &s, "--out", o]);
        assert!(e.contains(want), "{body}: {e}");
    }
    let s = spec(d.path(), "inputs = [\"synth:loop\"]\n");
    for shard in ["3/3", "1/0", "x/2", "1"] {
        let e = one_line_error(&["sweep", &s, "--out", o, "--shard", shard]);
        assert!(e.contains("--shard"), "{shard}: {e}");
    }
    let out = vmsim()
        .args(["sweep", &s, "--out", o])
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("out of range"));
    let e = one_line_error(&["sweep", "merge", d.path().join("none").to_str().unwrap()]);
    assert!(e.contains("none"), "{e}");
}
