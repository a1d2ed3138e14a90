//! Helpers every CLI test module uses: run the binary, read its JSON, check
//! that a failure is one prefixed line. Owns no test of its own.

use assert_cmd::Command;
use serde_json::Value;

/// The `vmsim` binary built for this test run.
pub fn vmsim() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("vmsim")
}

/// Runs `vmsim ARGS --json`, expects success and parses what it printed.
pub fn json(args: &[&str]) -> Value {
    let out = vmsim()
        .args(args)
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("--json prints one JSON object")
}

/// Runs `vmsim ARGS`, expects success and returns what it printed.
pub fn text(args: &[&str]) -> String {
    let out = vmsim()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).expect("utf-8 output")
}

/// Runs `vmsim ARGS`, expects failure with nothing on stdout and a one-line
/// error prefixed `vmsim: ` that is no panic; returns the error.
pub fn one_line_error<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = vmsim()
        .args(args)
        .assert()
        .failure()
        .stdout("")
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).expect("utf-8 error");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line error expected, got:\n{err}"
    );
    assert!(err.starts_with("vmsim: "), "error not prefixed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
