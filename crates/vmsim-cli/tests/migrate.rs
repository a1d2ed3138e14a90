//! `vmsim migrate listen` and `vmsim run --migrate-to`: two real processes
//! over loopback (ephemeral ports), every mode ending with the process's
//! references and memory of a run without migration; wrong keys, refused
//! connections, incompatible machines and killed peers are one clear line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::{json, one_line_error, vmsim};

fn trace(name: &str) -> String {
    format!(
        "{}/../vmsim-trace/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    vmsim()
        .args(["migrate", "keygen", "--key-file"])
        .arg(&path)
        .assert()
        .success();
    path
}

/// A listener on an ephemeral port: the child and the address it printed.
struct Listener {
    child: Child,
    addr: String,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Listener {
    fn start(key: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
            .args([
                "migrate",
                "listen",
                "--addr",
                "127.0.0.1:0",
                "--timeout",
                "20",
                "--key-file",
            ])
            .arg(key)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the listener");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr
            .read_line(&mut line)
            .expect("the listener says where it listens");
        let addr = line
            .trim()
            .strip_prefix("vmsim migrate: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Self {
            child,
            addr,
            stderr,
        }
    }

    /// The next line it writes on stderr.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stderr.read_line(&mut line).expect("a line");
        line
    }

    /// Waits for it: (success, stdout, the rest of stderr).
    fn finish(mut self) -> (bool, String, String) {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut rest);
        let out = self.child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            rest,
        )
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn process<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name}"))
}

fn digest<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["memory_digests"]
        .as_array()
        .expect("memory_digests")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no digest for {name}"))
}

#[test]
fn every_mode_between_two_processes_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = key(dir.path(), "mig.key");
    let t = trace("tinystatic.lackey.zst");
    let plain = json(&["run", &t, "--digest", "-q"]);
    let name = "tinystatic.lackey.zst";
    for mode in ["stop-and-copy", "pre-copy", "post-copy"] {
        let l = Listener::start(
            &k,
            &["--json", "--digest", "-q", "--set", "memory.frames=8192"],
        );
        let source = json(&[
            "run",
            &t,
            "-q",
            "--digest",
            "--set",
            "migrate.bandwidth=64",
            "--set",
            "migrate.latency=100",
            "--migrate-to",
            &l.addr,
            "--migrate-at",
            "50K",
            "--migrate-mode",
            mode,
            "--key-file",
            k.to_str().expect("path"),
        ]);
        let (ok, out, err) = l.finish();
        assert!(ok, "{mode}: listener failed: {err}");
        let dest: Value = serde_json::from_str(&out).expect("listener JSON");
        let m = &source["migration"];
        assert_eq!(m["aborted"], Value::Null, "{mode}: {m}");
        assert_eq!(m["mode"], mode);
        assert_eq!(dest["migration"]["mode"], mode);
        assert!(m["downtime"].as_u64().expect("downtime") > 0);
        assert!(m["total_bytes"].as_u64().expect("bytes") > 4096);
        // The process ends at the destination as it ends without migration.
        assert_eq!(
            process(&dest, name)["references"],
            process(&plain, name)["references"],
            "{mode}"
        );
        assert_eq!(
            digest(&dest, name)["digest"],
            digest(&plain, name)["digest"],
            "{mode}"
        );
        assert_eq!(
            process(&dest, name)["faults"]["demand_zero"],
            process(&plain, name)["faults"]["demand_zero"],
            "{mode}"
        );
        if mode == "post-copy" {
            assert!(dest["migration"]["remote_faults"].as_u64().expect("faults") > 0);
            assert_eq!(dest["migration"]["remote_faults"], m["remote_faults"]);
        }
        if mode == "pre-copy" {
            assert!(!m["rounds"].as_array().expect("rounds").is_empty());
        }
    }
}

#[test]
fn a_wrong_key_is_one_line_and_the_listener_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = key(dir.path(), "good.key");
    let bad = key(dir.path(), "bad.key");
    let mut l = Listener::start(&good, &["-q"]);
    let err = one_line_error(&[
        "run",
        &trace("true.lackey.zst"),
        "-q",
        "--migrate-to",
        &l.addr,
        "--migrate-at",
        "1000",
        "--key-file",
        bad.to_str().expect("path"),
    ]);
    assert!(err.contains("authentication failed"), "{err}");
    let logged = l.line();
    assert!(logged.contains("dropped a connection"), "{logged}");
    // Still listening: the right key gets through.
    let source = json(&[
        "run",
        &trace("true.lackey.zst"),
        "-q",
        "--migrate-to",
        &l.addr,
        "--migrate-at",
        "1000",
        "--migrate-mode",
        "stop-and-copy",
        "--key-file",
        good.to_str().expect("path"),
    ]);
    assert_eq!(source["migration"]["aborted"], Value::Null);
    let (ok, _, err) = l.finish();
    assert!(ok, "{err}");
}

#[test]
fn refused_connections_bad_keys_and_other_formats_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = key(dir.path(), "mig.key");
    let t = trace("true.lackey.zst");
    // Nobody listens.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr").to_string();
    drop(free);
    let err = one_line_error(&[
        "run",
        &t,
        "-q",
        "--migrate-to",
        &addr,
        "--migrate-at",
        "1000",
        "--key-file",
        k.to_str().expect("path"),
    ]);
    assert!(err.contains("cannot connect"), "{err}");
    // A key others can read.
    let open = dir.path().join("open.key");
    std::fs::write(&open, "0123456789abcdef0123456789abcdef\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = one_line_error(&[
            "migrate",
            "listen",
            "--key-file",
            open.to_str().expect("path"),
        ]);
        assert!(err.contains("readable or writable by others"), "{err}");
    }
    // keygen never overwrites.
    let err = one_line_error(&["migrate", "keygen", "--key-file", k.to_str().expect("path")]);
    assert!(err.contains("key file"), "{err}");
    // Another paging format: refused before anything runs, on both sides.
    let l = Listener::start(&k, &["-q", "--preset", "riscv-sv39"]);
    let err = one_line_error(&[
        "run",
        &t,
        "-q",
        "--migrate-to",
        &l.addr,
        "--migrate-at",
        "1000",
        "--key-file",
        k.to_str().expect("path"),
    ]);
    assert!(err.contains("incompatible paging format"), "{err}");
    let (ok, out, err) = l.finish();
    assert!(!ok);
    assert_eq!(out, "");
    assert!(err.contains("incompatible paging format"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_killed_source_leaves_nothing_at_the_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = key(dir.path(), "mig.key");
    let mut l = Listener::start(&k, &[]);
    // A source that would run a long time before migrating.
    let mut source = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args([
            "run",
            "synth:random,bytes=1MiB,refs=2000M",
            "-q",
            "--migrate-to",
            &l.addr,
        ])
        .args(["--migrate-at", "1900M", "--key-file"])
        .arg(&k)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the source");
    let offered = l.line();
    assert!(offered.contains("offers process"), "{offered}");
    let accepted = l.line();
    assert!(accepted.contains("accepted"), "{accepted}");
    source.kill().expect("kill the source");
    let _ = source.wait();
    let (ok, out, err) = l.finish();
    assert!(!ok);
    assert_eq!(out, "", "nothing reported for a process that never arrived");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("connection closed") || err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_killed_destination_leaves_the_source_running_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = key(dir.path(), "mig.key");
    let mut l = Listener::start(&k, &[]);
    // Long enough to the migration point that the destination dies first.
    let t = "synth:random,bytes=256KiB,refs=6M,write=0.3";
    let source = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args([
            "run",
            t,
            "-q",
            "--json",
            "--digest",
            "--migrate-to",
            &l.addr,
        ])
        .args([
            "--migrate-at",
            "5M",
            "--migrate-mode",
            "stop-and-copy",
            "--key-file",
        ])
        .arg(&k)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the source");
    let offered = l.line();
    assert!(offered.contains("offers process"), "{offered}");
    let accepted = l.line();
    assert!(accepted.contains("accepted"), "{accepted}");
    l.kill();
    let out = source.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        report["migration"]["aborted"].is_string(),
        "{}",
        report["migration"]
    );
    let why = report["migration"]["aborted"].as_str().unwrap_or_default();
    assert!(!why.contains("finished"), "{why}");
    let plain = json(&["run", t, "-q", "--digest"]);
    let name = t;
    assert_eq!(
        process(&report, name)["references"],
        process(&plain, name)["references"]
    );
    assert_eq!(
        digest(&report, name)["digest"],
        digest(&plain, name)["digest"]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migration aborted"), "{err}");
}
