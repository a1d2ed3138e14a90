//! `vmsim completions` and `vmsim man`: generated from the clap definitions,
//! so every subcommand and option is in them.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{one_line_error, text};

const SUBCOMMANDS: [&str; 10] = [
    "run",
    "explain",
    "policy",
    "alloc",
    "calc",
    "trace",
    "mrc",
    "sweep",
    "completions",
    "man",
];

#[test]
fn completion_scripts_name_every_subcommand_and_parse() {
    let bash = text(&["completions", "bash"]);
    for sub in SUBCOMMANDS {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    assert!(bash.contains("--trace-steps") && bash.contains("--html"));
    // The script is valid bash (bash -n reads it without running it).
    if let Ok(mut child) = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bash.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let zsh = text(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef vmsim"), "{}", &zsh[..40]);
    let fish = text(&["completions", "fish"]);
    assert!(fish.contains("complete -c vmsim") && fish.contains("-l trace-steps"));
    let err = one_line_error(&["completions", "tcsh"]);
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

#[test]
fn man_pages_for_vmsim_and_each_subcommand() {
    let page = text(&["man"]);
    assert!(page.contains(".TH VMSIM 1"), "{}", &page[..200]);
    assert!(page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"));
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "vmsim.1 lacks {sub}");
    }
    let run = text(&["man", "run"]);
    assert!(run.contains(".TH VMSIM-RUN 1"));
    assert!(run.contains("trace\\-steps"), "every option is documented");
    let convert = text(&["man", "trace", "convert"]);
    assert!(convert.contains(".TH VMSIM-TRACE-CONVERT 1"));
    let err = one_line_error(&["man", "nosuch"]);
    assert!(
        err.contains("no such subcommand") && err.contains("run"),
        "{err}"
    );
}
