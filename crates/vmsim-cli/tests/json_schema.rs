//! Every `--json` document carries `"schema_version"` (the CLI's
//! `JSON_SCHEMA_VERSION`), whatever the subcommand, the mode and the flags.

use crate::common::{text, vmsim};
use serde_json::Value;

/// The version this build's documents must carry (docs/commands.md).
const VERSION: u64 = 1;

fn parse(out: &str, what: &str) -> Value {
    serde_json::from_str(out)
        .unwrap_or_else(|e| panic!("{what}: not one JSON document: {e}\n{out}"))
}

fn check(args: &[&str]) {
    let out = text(args);
    let v = parse(&out, &args.join(" "));
    assert_eq!(
        v["schema_version"],
        VERSION,
        "vmsim {}: {out}",
        args.join(" ")
    );
    // First in the text too, where a reader looks for it.
    let first = out.trim_start_matches(['{', ' ', '\n']);
    assert!(
        first.starts_with("\"schema_version\""),
        "vmsim {}: {out}",
        args.join(" ")
    );
}

#[test]
fn every_json_document_carries_the_schema_version() {
    let img = "tests/data/sv39.img";
    let trace = "../vmsim-trace/tests/data/tinystatic.lackey.zst";
    for args in [
        vec![
            "explain",
            "--arch",
            "sv39",
            "--mem",
            img,
            "--root",
            "0x1000",
            "0x40415678",
            "--json",
        ],
        vec![
            "explain",
            "--segment",
            "1:0x2000:0x1ff",
            "0x1:0xff",
            "--json",
        ],
        vec![
            "explain",
            "--va-bits",
            "14",
            "--segments",
            "code=0:32K:2K,stack=3:28K:2K:down",
            "15360",
            "--json",
        ],
        vec![
            "calc",
            "--va-bits",
            "32",
            "--page-size",
            "4KiB",
            "--pte-size",
            "4",
            "--json",
        ],
        vec![
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            "1",
            "--mem-ns",
            "100",
            "--json",
        ],
        vec![
            "policy",
            "--policy",
            "clock",
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1",
            "--json",
        ],
        vec![
            "policy",
            "--policy",
            "opt",
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1",
            "--json",
            "--quiet",
        ],
        vec!["alloc", "--heap", "100", "--ops", "a3,a5,f0", "--json"],
        vec![
            "alloc", "--heap", "100", "--ops", "a3,a5,f0", "--json", "--quiet",
        ],
        vec![
            "alloc",
            "--allocator",
            "buddy",
            "--heap",
            "64",
            "--ops",
            "a8,f0",
            "--json",
        ],
        vec![
            "alloc",
            "--allocator",
            "slab",
            "--heap",
            "64",
            "--ops",
            "a100,f0",
            "--json",
        ],
        vec!["mrc", trace, "--sizes", "4,16", "--json"],
        vec!["trace", "stats", trace, "--json"],
        vec!["run", "synth:loop,pages=20,repeats=5", "-q", "--json"],
        vec![
            "exercise",
            "translate",
            "--seed",
            "1",
            "--answers",
            "--json",
        ],
        vec!["exercise", "multilevel", "--seed", "1", "--json"],
        vec!["exercise", "segment", "--seed", "1", "--answers", "--json"],
        vec!["exercise", "policy", "--seed", "1", "--answers", "--json"],
        vec!["exercise", "alloc", "--seed", "1", "--answers", "--json"],
    ] {
        check(&args);
    }
}

#[test]
fn checkpoint_restore_replay_and_sweep_documents_carry_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let ck = ck.to_str().unwrap();
    vmsim()
        .args([
            "run",
            "synth:scan,bytes=64KiB,stride=4096,write=1,passes=4",
            "-q",
        ])
        .args(["--checkpoint-every", "20", "--checkpoint-dir", ck])
        .assert()
        .success();
    check(&["checkpoint", "ls", ck, "--json"]);
    check(&["checkpoint", "show", ck, "--at", "1", "--json"]);
    check(&["restore", ck, "--at", "1", "-q", "--json"]);
    check(&["replay", ck, "--watch", "0x0", "--json"]);
    check(&["replay", ck, "--watch", "0x0", "--until", "30", "--json"]);
    let spec = dir.path().join("grid.toml");
    std::fs::write(
        &spec,
        "inputs = [\"synth:loop,pages=20,repeats=2\"]\n[grid]\n\"memory.frames\" = [16, 32]\n",
    )
    .unwrap();
    let out = dir.path().join("results");
    vmsim()
        .args([
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-j",
            "1",
        ])
        .assert()
        .success();
    check(&["sweep", "merge", out.to_str().unwrap(), "--json"]);
}
