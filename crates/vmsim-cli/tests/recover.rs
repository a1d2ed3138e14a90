//! Disaster recovery: `vmsim run --checkpoint-to` ships each checkpoint to
//! a `vmsim checkpoint receive` store; after the source is killed with
//! SIGKILL, `vmsim restore` of the store finishes the run with the report
//! of a run that was never interrupted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{json, vmsim};

fn key(dir: &Path) -> PathBuf {
    let path = dir.join("ship.key");
    vmsim()
        .args(["migrate", "keygen", "--key-file"])
        .arg(&path)
        .assert()
        .success();
    path
}

/// A store on an ephemeral port: the child, the address it printed, its stderr.
fn store(dir: &Path, key: &Path) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(["checkpoint", "receive"])
        .arg(dir)
        .args(["--addr", "127.0.0.1:0", "--timeout", "30", "--key-file"])
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the store");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr
        .read_line(&mut line)
        .expect("the store says where it listens");
    let addr = line
        .trim()
        .strip_prefix("vmsim checkpoint receive: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, addr, stderr)
}

fn checkpoint_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A report without the host facts of its checkpoint records.
fn figures(mut v: Value) -> Value {
    if let Some(recs) = v["checkpoints"]["records"].as_array_mut() {
        for r in recs {
            let o = r.as_object_mut().unwrap();
            o.remove("file");
            o.remove("file_bytes");
        }
    }
    v
}

/// Under memory pressure (swap in use), two processes, both still running
/// at every checkpoint a test restores (a process's memory digest is taken
/// when it exits, and is not part of a checkpoint taken after that).
const INPUTS: [&str; 2] = [
    "synth:zipf,pages=3000,refs=2M,write=0.5,seed=7",
    "synth:scan,bytes=4MiB,stride=256,write=1,passes=40",
];
const SET: [&str; 2] = ["--set", "memory.frames=2048"];

fn uninterrupted() -> Value {
    let mut args = vec!["run", "-q", "--digest"];
    args.extend(INPUTS);
    args.extend(SET);
    args.extend(["--checkpoint-every", "50K"]);
    figures(json(&args))
}

#[test]
fn a_run_killed_with_sigkill_is_finished_from_the_checkpoints_it_shipped() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());
    let stored = tmp.path().join("store");
    let (receiver, addr, mut receiver_err) = store(&stored, &key);
    let local = tmp.path().join("local");
    let mut source = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(["run", "-q", "--json", "--digest"])
        .args(INPUTS)
        .args(SET)
        .args(["--checkpoint-every", "50K", "--checkpoint-dir"])
        .arg(&local)
        .args(["--checkpoint-to", &addr, "--key-file"])
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the source");
    let start = Instant::now();
    while checkpoint_files(&stored)
        .iter()
        .filter(|n| n.ends_with(".vmck"))
        .count()
        < 3
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint arrived"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        source.try_wait().unwrap().is_none(),
        "the source finished before it could be killed: make its run longer"
    );
    source.kill().unwrap(); // SIGKILL
    source.wait().unwrap();

    // The store says it lost its source, names what it holds, exits 1.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut receiver_err, &mut rest).unwrap();
    let out = receiver.wait_with_output().unwrap();
    assert!(!out.status.success(), "{rest}");
    let error = rest.lines().last().unwrap_or_default();
    assert!(
        error.contains("was lost before it was done") && error.contains("vmsim restore"),
        "{rest}"
    );
    // Only complete checkpoint files: no temporary file left behind.
    let files = checkpoint_files(&stored);
    assert!(files.len() >= 3, "{files:?}");
    for (k, f) in files.iter().enumerate() {
        assert_eq!(f, &format!("ckpt-{k:06}.vmck"), "{files:?}");
    }
    let chain = vmsim::checkpoint::Chain::open(&stored).unwrap();
    for e in chain.iter() {
        chain.links(e.seq).unwrap();
    }
    // The run finishes from the last checkpoint the store holds, with the
    // figures (and memory digests) of the run that was never interrupted.
    let restored = figures(json(&[
        "restore",
        stored.to_str().unwrap(),
        "-q",
        "--digest",
    ]));
    assert!(
        restored["memory_digests"]
            .as_array()
            .is_some_and(|d| d.len() == 2)
    );
    assert_eq!(restored, uninterrupted());
}

#[test]
fn a_run_that_ends_ships_every_checkpoint_and_the_store_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());
    let stored = tmp.path().join("store");
    let (receiver, addr, mut receiver_err) = store(&stored, &key);
    // No --checkpoint-dir: the local files go to a temporary directory.
    let mut args = vec!["run", "-q", "--digest"];
    args.extend(INPUTS);
    args.extend(SET);
    args.extend(["--checkpoint-every", "400K", "--checkpoint-to", &addr]);
    args.extend(["--key-file", key.to_str().unwrap()]);
    let run = figures(json(&args));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut receiver_err, &mut rest).unwrap();
    let out = receiver.wait_with_output().unwrap();
    assert!(out.status.success(), "{rest}");
    let records = run["checkpoints"]["records"].as_array().unwrap().len();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("holds {records} checkpoint(s)")),
        "{said}"
    );
    assert_eq!(checkpoint_files(&stored).len(), records);
    assert!(rest.contains("stored ckpt-000000.vmck"), "{rest}");
    // Any checkpoint of the store finishes the run the same way.
    let restored = figures(json(&[
        "restore",
        stored.to_str().unwrap(),
        "--at",
        "1",
        "-q",
        "--digest",
    ]));
    assert_eq!(restored, run);
}

#[test]
fn a_store_refuses_a_wrong_key_and_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());
    let stored = tmp.path().join("store");
    let (mut receiver, addr, mut receiver_err) = store(&stored, &key);
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let wrong = other.join("wrong.key");
    vmsim()
        .args(["migrate", "keygen", "--key-file"])
        .arg(&wrong)
        .assert()
        .success();
    let err = crate::common::one_line_error(&[
        "run",
        "-q",
        INPUTS[1],
        "--checkpoint-every",
        "10K",
        "--checkpoint-to",
        &addr,
        "--key-file",
        wrong.to_str().unwrap(),
    ]);
    assert!(err.contains("authentication failed"), "{err}");
    let mut line = String::new();
    receiver_err.read_line(&mut line).unwrap();
    assert!(line.contains("dropped a connection"), "{line}");
    assert!(checkpoint_files(&stored).is_empty());
    let _ = receiver.kill();
    let _ = receiver.wait();
    // A directory that holds checkpoints already is never mixed into.
    std::fs::write(stored.join("ckpt-000000.vmck"), b"x").unwrap();
    let err = crate::common::one_line_error(&[
        "checkpoint",
        "receive",
        stored.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(err.contains("already holds 1 checkpoint file(s)"), "{err}");
}
