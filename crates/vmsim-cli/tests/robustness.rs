//! Issue 12, across subcommands: output errors, a closed pipe, usage
//! errors, files vmsim must never replace or leave behind, signals.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{one_line_error, vmsim};

const TRUE_TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vmsim-trace/tests/data/true.lackey.zst"
);
const SV39_IMG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sv39.img");
const GRID: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/slurm/grid.toml"
);

/// A checkpoint directory of the built-in trace (checkpoints 0 to 2).
fn checkpoints(dir: &Path, name: &str) -> String {
    let ck = dir.join(name).display().to_string();
    vmsim()
        .args(["run", "-q", "--checkpoint-every", "50K", "--checkpoint-dir"])
        .arg(&ck)
        .assert()
        .success();
    ck
}

/// A sweep spec of two small runs.
fn sweep_spec(dir: &Path) -> String {
    let p = dir.join("grid.toml");
    std::fs::write(
        &p,
        "inputs = [\"synth:scan,bytes=64KiB,stride=4096\"]\n[grid]\n\"memory.frames\" = [16, 64]\n",
    )
    .expect("write");
    p.display().to_string()
}

/// One invocation of every subcommand that prints to standard output.
fn every_printing_command(dir: &Path) -> Vec<Vec<String>> {
    let vmt = dir.join("out.vmt").display().to_string();
    let ck = checkpoints(dir, "ck");
    let ck_run = dir.join("ck-run").display().to_string();
    let spec = sweep_spec(dir);
    let records = dir.join("records").display().to_string();
    let saved = dir.join("exercise").display().to_string();
    let mrc_svg = dir.join("mrc.svg").display().to_string();
    let run_svg = dir.join("restore.svg").display().to_string();
    let watch = "0x1ffefffe48";
    let cmds: Vec<Vec<&str>> = vec![
        vec!["presets"],
        vec!["presets", "classroom"],
        vec!["run", "-q"],
        vec!["run", "-q", "--json"],
        vec!["run", "-q", "synth:scan,bytes=64KiB,stride=4096"],
        vec!["trace", "stats", TRUE_TRACE],
        vec!["trace", "stats", TRUE_TRACE, "--json"],
        vec!["trace", "convert", "synth:scan,bytes=64KiB", &vmt],
        vec!["calc", "--arch", "sv39"],
        vec!["calc", "--arch", "sv39", "--json"],
        vec![
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            "1",
            "--mem-ns",
            "100",
        ],
        vec!["explain", "0x7fffffffe123"],
        vec!["explain", "--json", "0x7fffffffe123"],
        vec![
            "explain",
            "--arch",
            "sv39",
            "--mem",
            SV39_IMG,
            "--root",
            "0x1000",
            "0x40415678",
        ],
        vec!["explain", "--segment", "1:0x2000:0x1ff", "0x1:0xff"],
        vec!["policy", "--list"],
        vec![
            "policy",
            "--policy",
            "fifo",
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1",
        ],
        vec![
            "policy",
            "--policy",
            "lru",
            "--frames",
            "3",
            "--refs",
            "1,2,3,4,1",
            "--json",
        ],
        vec!["alloc", "--heap", "100", "--ops", "a3,a5,f0,a2"],
        vec!["alloc", "--heap", "100", "--ops", "a3,a5,f0,a2", "--json"],
        vec!["exercise", "translate", "--seed", "1"],
        vec!["exercise", "policy", "--seed", "5", "--answers"],
        vec!["mrc", "synth:zipf,pages=300,refs=20K"],
        vec!["mrc", "synth:zipf,pages=300,refs=20K", "--json"],
        vec!["sweep", GRID, "--list"],
        // Writes its records, then fails to print its summary...
        vec!["sweep", &spec, "--out", &records, "-j", "1"],
        // ...which these merge.
        vec!["sweep", "merge", &records],
        vec!["sweep", "merge", &records, "--csv"],
        vec!["sweep", "merge", &records, "--json"],
        vec!["trace", "pages", "synth:scan,bytes=64KiB,stride=4096"],
        vec![
            "exercise",
            "multilevel",
            "--seed",
            "7",
            "--arch",
            "x86-32",
            "--save",
            &saved,
        ],
        vec!["mrc", "synth:zipf,pages=300,refs=20K", "--plot", &mrc_svg],
        vec![
            "run",
            "-q",
            "--checkpoint-every",
            "50K",
            "--checkpoint-dir",
            &ck_run,
        ],
        vec!["checkpoint", "ls", &ck],
        vec!["checkpoint", "ls", &ck, "--json"],
        vec!["checkpoint", "show", &ck],
        vec![
            "checkpoint",
            "show",
            &ck,
            "--at",
            "1",
            "--pid",
            "1",
            "--json",
        ],
        vec!["restore", "-q", &ck],
        vec![
            "restore", "-q", &ck, "--at", "1", "--json", "--plot", &run_svg,
        ],
        vec!["replay", &ck, "--watch", watch],
        vec!["replay", &ck, "--watch", watch, "--json"],
        vec!["replay", &ck, "--watch", watch, "--until", "100000"],
        // Last: it rewrites the newest checkpoint.
        vec!["checkpoint", "merge", &ck],
        vec!["--help"],
        vec!["run", "--help"],
        vec!["--version"],
    ];
    cmds.into_iter()
        .map(|c| c.into_iter().map(str::to_owned).collect())
        .collect()
}

/// `vmsim presets > /dev/full` used to panic with exit 101: every
/// subcommand now says so in one line and exits 1.
#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_output_is_a_one_line_error_for_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in every_printing_command(dir.path()) {
        let full = File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args(&args)
            .stdout(full)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("vmsim: cannot write to standard output: ")
                && err.contains("No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A reader that stops early (`vmsim ... | head`) is not an error: nothing
/// on stderr, exit 0.
#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refs = dir.path().join("refs.txt");
    let text: String = (0..100_000).map(|i| format!("{}\n", i % 977)).collect();
    std::fs::write(&refs, text).expect("write");
    let refs = refs.display().to_string();
    let runs: [&[&str]; 5] = [
        &[
            "policy", "--policy", "fifo", "--frames", "3", "--file", &refs,
        ],
        &["run", "-q", "--json", "synth:scan,bytes=1MiB,stride=4096"],
        &["presets"],
        &["trace", "pages", "synth:scan,bytes=64MiB,stride=4096"],
        &["mrc", &refs, "--json"],
    ];
    for args in runs {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before (or while) vmsim writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {:?}", out.stderr);
    }
}

/// Usage errors follow the one convention of every error: one line on
/// stderr, prefixed `vmsim: `, exit status 1, and where to read more.
#[test]
fn usage_errors_are_one_line_with_status_1() {
    let cases: [(&[&str], &str, &str); 14] = [
        (&[], "needs a subcommand", "'vmsim --help'"),
        (&["frobnicate"], "unrecognized subcommand", "'vmsim --help'"),
        (
            &["run", "--jsn"],
            "similar argument exists: '--json'",
            "'vmsim run --help'",
        ),
        (
            &["run", "--preset"],
            "a value is required",
            "'vmsim run --help'",
        ),
        (
            &["calc", "eat", "--hit-ratio"],
            "a value is required",
            "'vmsim calc eat --help'",
        ),
        (
            &["explain", "--access", "jump", "0x1"],
            "possible values: read, write, execute",
            "'vmsim explain --help'",
        ),
        (&["trace"], "needs a subcommand", "'vmsim trace --help'"),
        (&["trace", "stats"], "<TRACE>", "'vmsim trace stats --help'"),
        (
            &["policy", "--refs", "1", "--file", "x"],
            "cannot be used with",
            "'vmsim policy --help'",
        ),
        (
            &["checkpoint"],
            "needs a subcommand",
            "'vmsim checkpoint --help'",
        ),
        (
            &["checkpoint", "show"],
            "<DIR>",
            "'vmsim checkpoint show --help'",
        ),
        (&["replay", "ck"], "--watch <VA>", "'vmsim replay --help'"),
        (&["sweep", "merge"], "<DIR>", "'vmsim sweep merge --help'"),
        (
            &["mrc", "--sizes"],
            "a value is required",
            "'vmsim mrc --help'",
        ),
    ];
    for (args, what, see) in cases {
        let err = String::from_utf8(
            vmsim()
                .args(args)
                .assert()
                .code(1)
                .stdout("")
                .get_output()
                .stderr
                .clone(),
        )
        .expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("vmsim: "), "{args:?}: {err}");
        assert!(err.contains(what) && err.contains(see), "{args:?}: {err}");
    }
}

#[cfg(unix)]
fn assert_no_temporaries(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".vmsim-") || n.contains("vmsim-swap"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `--plot` and `trace convert` used to rename their temporary file over
/// whatever the path was: a symbolic link, a device node.
#[cfg(unix)]
#[test]
fn outputs_never_replace_links_directories_or_devices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, b"keep me").expect("write");
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let link_s = link.display().to_string();
    let sub_s = sub.display().to_string();
    let attempts: [(Vec<&str>, &str); 5] = [
        (
            vec!["run", "-q", "synth:scan,bytes=64KiB", "--plot", &link_s],
            "symbolic link",
        ),
        (
            vec!["run", "-q", "synth:scan,bytes=64KiB", "--plot", "/dev/null"],
            "not a regular file",
        ),
        (
            vec!["run", "-q", "synth:scan,bytes=64KiB", "--plot", &sub_s],
            "directory",
        ),
        (
            vec!["trace", "convert", "synth:scan,bytes=64KiB", &link_s],
            "symbolic link",
        ),
        (
            vec!["trace", "convert", "synth:scan,bytes=64KiB", "/dev/null"],
            "not a regular file",
        ),
    ];
    for (args, what) in attempts {
        let err = one_line_error(&args);
        assert!(err.contains(what), "{args:?}: {err}");
        assert!(err.contains("replaces only regular files"), "{err}");
    }
    assert!(std::fs::symlink_metadata(&link).expect("link").is_symlink());
    assert_eq!(std::fs::read(&target).expect("target"), b"keep me");
    assert!(sub.is_dir());
    assert_no_temporaries(dir.path());
    // A regular file is replaced, as before.
    let plot = dir.path().join("plot.svg");
    std::fs::write(&plot, b"old").expect("write");
    vmsim()
        .args(["run", "-q", "synth:scan,bytes=64KiB", "--plot"])
        .arg(&plot)
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(&plot)
            .expect("svg")
            .contains("<svg")
    );
}

/// `--set kernel.swap_file=PATH` used to overwrite an existing file and
/// then delete it.
#[test]
fn the_swap_file_never_destroys_a_users_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precious = dir.path().join("precious.dat");
    std::fs::write(&precious, b"user data").expect("write");
    let swapping = [
        "run",
        "-q",
        "synth:scan,bytes=1MiB,stride=4096,write=1,passes=2",
        "--set",
        "memory.frames=64",
    ];
    let set = |p: &Path| format!("kernel.swap_file={}", p.display());
    let err = one_line_error(&[&swapping[..], &["--set", &set(&precious)]].concat());
    assert!(
        err.contains("kernel.swap_file") && err.contains("swap_file_overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&precious).expect("intact"), b"user data");
    // Allowed explicitly: the file is used, and left where it was.
    let out = vmsim()
        .args(swapping)
        .args(["--set", &set(&precious)])
        .args(["--set", "kernel.swap_file_overwrite=true", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert!(
        v["swap"]["writes"].as_u64().expect("writes") > 0,
        "it swapped"
    );
    assert!(
        precious.exists(),
        "a file vmsim did not create is not deleted"
    );
    // A path vmsim creates is gone after the run.
    let fresh = dir.path().join("fresh.swp");
    vmsim()
        .args(swapping)
        .args(["--set", &set(&fresh)])
        .assert()
        .success();
    assert!(!fresh.exists());
    // Never a directory, even with overwrite.
    let err = one_line_error(
        &[
            &swapping[..],
            &["--set", &set(dir.path())],
            &["--set", "kernel.swap_file_overwrite=true"],
        ]
        .concat(),
    );
    assert!(err.contains("not a regular file"), "{err}");
}

/// Polls until `f` is true or 20 s have passed.
#[cfg(unix)]
fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[cfg(unix)]
fn signal(pid: u32, sig: &str) {
    // The shell's builtin kill: no procps needed.
    let ok = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Killing `trace convert` used to leave a large `.vmsim-*.tmp` beside the
/// output. SIGTERM and SIGINT remove a named temporary file; on Linux the
/// output has no name until it is complete (`O_TMPFILE`), so even SIGKILL,
/// which no handler sees, leaves nothing.
#[cfg(unix)]
#[test]
fn an_interrupted_conversion_leaves_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    let signals: &[(&str, i32)] = if cfg!(target_os = "linux") {
        &[("TERM", 15), ("INT", 2), ("KILL", 9)]
    } else {
        &[("TERM", 15), ("INT", 2)]
    };
    for &(sig, number) in signals {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("big.vmt");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args(["trace", "convert", "synth:random,bytes=1GiB,refs=2000M"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // Writing has started: a named temporary in the directory has data,
        // or (Linux) the process holds an open file in it that has data.
        let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
        let in_dir = dir.path().canonicalize().expect("canonical");
        let tmp_written = || {
            let named = std::fs::read_dir(dir.path())
                .map(|d| {
                    d.filter_map(Result::ok).any(|e| {
                        e.file_name().to_string_lossy().ends_with(".tmp")
                            && e.metadata().is_ok_and(|m| m.len() > 0)
                    })
                })
                .unwrap_or(false);
            let unnamed = std::fs::read_dir(&fds)
                .map(|d| {
                    d.filter_map(Result::ok).any(|e| {
                        std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(&in_dir))
                            && std::fs::metadata(e.path()).is_ok_and(|m| m.len() > 0)
                    })
                })
                .unwrap_or(false);
            named || unnamed
        };
        assert!(wait_for(tmp_written), "the conversion started writing");
        signal(child.id(), sig);
        let status = child.wait().expect("wait");
        assert_eq!(
            status.signal(),
            Some(number),
            "dies of the signal: {status:?}"
        );
        assert_no_temporaries(dir.path());
        assert!(!out.exists());
    }
}

/// SIGTERM during `run` used to leave the swap file (GBs) in the temporary
/// directory: it is now unlinked as soon as it is open.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_run_leaves_no_swap_file() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
        .args([
            "run",
            "-q",
            "synth:zipf,pages=20000,s=0.5,refs=2000M,write=0.5",
            "--set",
            "memory.frames=1024",
            // Room for every page: with the default 4096 slots the run
            // is killed out of memory after ~6,600 references, a race
            // with the signal below that a loaded machine loses.
            "--set",
            "kernel.swap_slots=32768",
        ])
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let swap_open = || {
        std::fs::read_dir(&fds)
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().contains("vmsim-swap"))
                })
            })
            .unwrap_or(false)
    };
    assert!(wait_for(swap_open), "the run opened its swap file");
    assert_no_temporaries(dir.path());
    signal(child.id(), "TERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert_no_temporaries(dir.path());
}

/// A run interrupted before its first checkpoint used to leave the empty
/// checkpoint directory (and parents) it made; interrupted after one, it
/// must keep every checkpoint it wrote.
#[cfg(unix)]
#[test]
fn an_interrupted_run_takes_back_only_an_empty_checkpoint_directory() {
    use std::os::unix::process::ExitStatusExt;
    for (every, sig, number) in [("1000M", "INT", 2), ("20K", "TERM", 15)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = dir.path().join("made");
        let ck = made.join("ck");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args([
                "run",
                "-q",
                "synth:zipf,pages=4096,s=0.8,refs=2000M",
                "--checkpoint-every",
                every,
                "--checkpoint-dir",
            ])
            .arg(&ck)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let files = || std::fs::read_dir(&ck).map_or(0, |d| d.filter_map(Result::ok).count());
        let written = every == "20K";
        assert!(
            wait_for(|| if written { files() > 0 } else { ck.is_dir() }),
            "the run made its checkpoint directory"
        );
        signal(child.id(), sig);
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(number), "{status:?}");
        if written {
            assert!(files() > 0, "the checkpoints written stay");
            assert_no_temporaries(&ck);
        } else {
            assert!(!made.exists(), "the empty directories made are taken back");
        }
    }
}

/// A lackey line with a 4 GiB access used to take 10+ seconds and GBs of
/// swap; sizes above MAX_ACCESS_BYTES are an error naming file:line.
#[test]
fn huge_lackey_sizes_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("big.lackey");
    std::fs::write(&p, "==1== Lackey\nI  00401000,3\n L 00001000,4294967295\n").expect("write");
    let path = p.display().to_string();
    for cmd in [vec!["run", "-q", &path], vec!["trace", "stats", &path]] {
        let err = one_line_error(&cmd);
        assert!(
            err.contains(&format!("{path}:3:")) && err.contains("at most 4096"),
            "{err}"
        );
    }
}

/// Files that are not traces used to run as empty traces and exit 0.
#[test]
fn non_traces_and_empty_traces_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p.display().to_string()
    };
    let text = write("notes.txt", b"Shopping list:\n- milk\n- eggs\n");
    let config = write("machine.toml", b"[memory]\nframes = 4096\n");
    // A .vmt whose magic is damaged is read as text, and refused as such.
    let mut vmt = Vec::new();
    vmsim_trace::vmt::VmtWriter::new(&mut vmt)
        .and_then(|mut w| {
            w.push(&vmsim_trace::Access {
                va: 0x1000,
                pid: 1,
                size: 4,
                kind: vmsim_trace::AccessKind::Load,
            })?;
            w.finish().map(|_| ())
        })
        .expect("vmt");
    vmt[1] = b'X';
    let damaged = write("damaged.vmt", &vmt);
    for f in [&text, &config, &damaged] {
        for cmd in [
            vec!["run", "-q", f.as_str()],
            vec!["trace", "stats", f.as_str()],
        ] {
            let err = one_line_error(&cmd);
            assert!(err.contains("not a lackey trace"), "{cmd:?}: {err}");
        }
    }
    // Empty: an error unless --allow-empty; no output file is left behind.
    let empty = write("empty.lackey", b"");
    let banner = write("banner.lackey", b"==7== Lackey, an example Valgrind tool\n");
    let out = dir.path().join("out.vmt");
    let out_s = out.display().to_string();
    for f in [&empty, &banner] {
        for cmd in [
            vec!["run", "-q", f.as_str()],
            vec!["trace", "stats", f.as_str()],
            vec!["trace", "convert", f.as_str(), &out_s],
        ] {
            let err = one_line_error(&cmd);
            assert!(
                err.contains("the trace has no references"),
                "{cmd:?}: {err}"
            );
            assert!(!out.exists(), "{cmd:?}");
            let mut allowed = cmd.clone();
            allowed.push("--allow-empty");
            vmsim().args(&allowed).assert().success();
            if cmd[1] == "convert" {
                assert!(out.exists(), "--allow-empty converts an empty trace");
                std::fs::remove_file(&out).expect("remove");
            }
        }
    }
}

/// `--set` used to accept a value with a newline and a new TOML table,
/// silently ignored.
#[test]
fn set_values_with_more_than_one_value_are_refused() {
    for set in [
        "kernel.policy=\"fifo\"\n[memory]\nframes=16",
        "kernel.policy=\"fifo\" extra",
        "kernel.policy=\"fifo",
    ] {
        let err = one_line_error(&["run", "-q", "synth:scan,bytes=64KiB", "--set", set]);
        assert!(err.contains("--set"), "{set:?}: {err}");
        assert!(err.contains("TOML value"), "{set:?}: {err}");
    }
}

fn scenario(dir: &Path, text: &str) -> String {
    let p = dir.join("s.toml");
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// A fork point never reached used to be silently skipped.
#[test]
fn unreached_fork_and_exit_points_are_warnings_or_errors_with_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scenario(
        dir.path(),
        r#"
[[process]]
name = "parent"
trace = "synth:scan,bytes=40KiB,stride=4096"
layout = "flat"
fork = [{ child = "child", after = 5000 }]
exit_after = 20
[[process]]
name = "child"
trace = "synth:scan,bytes=40KiB,stride=4096"
"#,
    );
    let out = vmsim()
        .args(["run", "-q", "--json", &s])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("the fork of 'child' after 5000 references never happened")
            && warnings[0].contains("after 10 references"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("exit_after = 20 was never reached"),
        "{warnings:?}"
    );
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("vmsim: warning: ")),
        "{stderr}"
    );
    let text = crate::common::text(&["run", "-q", &s]);
    assert!(
        text.contains("warning      process 'parent': the fork"),
        "{text}"
    );
    let err = one_line_error(&["run", "-q", "--strict", &s]);
    assert!(
        err.contains("never happened") && err.contains("(--strict)"),
        "{err}"
    );
    // Reached: no warning.
    let ok = scenario(
        dir.path(),
        r#"
[[process]]
name = "parent"
trace = "synth:scan,bytes=40KiB,stride=4096"
layout = "flat"
fork = [{ child = "child", after = 5 }]
exit_after = 8
[[process]]
name = "child"
trace = "synth:scan,bytes=40KiB,stride=4096"
"#,
    );
    let v = crate::common::json(&["run", "-q", "--strict", &ok]);
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0));
}

/// `mmap` at address 0 used to be accepted (the access then killed as a
/// stack-guard hit).
#[test]
fn a_scenario_mmap_at_zero_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scenario(
        dir.path(),
        r#"
[[process]]
name = "p"
trace = "synth:scan,bytes=16KiB,stride=4096,base=0"
mmap = [{ addr = 0, len = "16KiB" }]
"#,
    );
    let err = one_line_error(&["run", "-q", &s]);
    assert!(
        err.contains("process 'p'") && err.contains("mmap_min_addr"),
        "{err}"
    );
}

/// `calc eat --mem-ns 0` printed `slowdown infx`; huge values `inf` and JSON nulls.
#[test]
fn calc_refuses_non_positive_and_non_finite_inputs() {
    let eat = |tlb: &str, mem: &str| {
        vec![
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            tlb,
            "--mem-ns",
            mem,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    for (tlb, mem, what) in [
        ("1", "0", "positive"),
        ("1", "-5", "[0, inf)"),
        ("1", "inf", "not a decimal"),
        ("1", "nan", "not a decimal"),
        ("1e308", "1e308", "not a finite number"),
        ("1", "1e-320", "not a finite number"),
    ] {
        for json in [false, true] {
            let mut args = eat(tlb, mem);
            if json {
                args.push("--json".into());
            }
            let err = one_line_error(&args);
            assert!(err.contains(what), "{args:?}: {err}");
        }
    }
    let err = one_line_error(&[
        "calc",
        "--va-bits",
        "32",
        "--page-size",
        "4KiB",
        "--pte-size",
        "4",
        "--processes",
        "0",
    ]);
    assert!(err.contains("at least one"), "{err}");
}

/// Endless config, format and reference files used to grow memory without bound.
#[cfg(unix)]
#[test]
fn endless_or_huge_input_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.toml");
    let f = File::create(&big).expect("create");
    f.set_len(2 << 20).expect("sparse 2 MiB");
    let big_s = big.display().to_string();
    let format_key = format!("paging.format_file={big_s}");
    // A sparse file just over the list limit: refused from its length.
    let huge = dir.path().join("ops.txt");
    File::create(&huge)
        .expect("create")
        .set_len((1 << 30) + 1)
        .expect("sparse 1 GiB");
    let huge_s = huge.display().to_string();
    let cases: [Vec<&str>; 10] = [
        vec!["run", "-q", "--config", "/dev/zero"],
        vec!["run", "-q", "--config", &big_s],
        vec!["run", "-q", "--set", &format_key],
        vec!["explain", "--format", "/dev/zero", "0x1"],
        vec!["calc", "--format", &big_s],
        vec![
            "exercise",
            "translate",
            "--seed",
            "1",
            "--format",
            "/dev/zero",
        ],
        vec!["alloc", "--ops-file", &huge_s],
        vec!["sweep", "/dev/zero"],
        // Streamed, with a bounded line.
        vec![
            "policy",
            "--policy",
            "fifo",
            "--frames",
            "2",
            "--file",
            "/dev/zero",
        ],
        vec!["mrc", "--file", "/dev/zero"],
    ];
    for args in cases {
        let start = Instant::now();
        let err = one_line_error(&args);
        assert!(
            err.contains("larger than") || err.contains("a line longer than"),
            "{args:?}: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(30), "{args:?}");
    }
}

/// A run whose process is killed used to exit 0 with nothing on stderr; and
/// the README's demand-paging example ended with its only process killed
/// for lack of swap after 8% of the run. Scaled down here (the same shape:
/// zipf over 4.9 times memory, default swap of 4 times memory).
#[test]
fn kills_are_said_with_status_3_and_demand_paging_fits_memory_plus_swap() {
    let out = vmsim()
        .args([
            "run",
            "-q",
            "--json",
            "synth:zipf,pages=2500,s=0.8,refs=200K,write=0.3",
            "--set",
            "memory.frames=512",
            "--set",
            "kernel.policy=linux",
            "--check",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["processes"][0]["killed"], serde_json::Value::Null);
    assert_eq!(v["processes"][0]["references"], 200_000);
    assert!(out.stderr.is_empty());
    // More pages than memory and swap together: killed, said, status 3.
    let args = [
        "run",
        "-q",
        "synth:zipf,pages=2500,s=0.8,refs=200K,write=0.3",
        "--set",
        "memory.frames=512",
        "--set",
        "kernel.swap_slots=1024",
    ];
    let err = String::from_utf8(
        vmsim()
            .args(args)
            .assert()
            .code(3)
            .stdout(predicates::str::contains("killed (OutOfMemory)"))
            .get_output()
            .stderr
            .clone(),
    )
    .expect("utf-8");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("process 1 'synth:zipf") && err.contains("out of memory"),
        "{err}"
    );
    vmsim()
        .args(args)
        .arg("--allow-kills")
        .assert()
        .success()
        .stderr("");
}

/// The outputs of the commands added since (`mrc --plot`, `restore
/// --plot`, `sweep --out`, `exercise --save`, checkpoint files) go through
/// the same rule: never over a link, a directory or a device.
#[cfg(unix)]
#[test]
fn newer_outputs_never_replace_links_directories_or_devices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, b"keep me").expect("write");
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let link_s = link.display().to_string();
    let ck = checkpoints(dir.path(), "ck");
    for args in [
        vec!["mrc", "synth:zipf,pages=300,refs=20K", "--plot", &link_s],
        vec![
            "mrc",
            "synth:zipf,pages=300,refs=20K",
            "--plot",
            "/dev/null",
        ],
        vec!["restore", "-q", &ck, "--plot", &link_s],
        vec!["restore", "-q", &ck, "--plot", "/dev/null"],
        // Refused before valgrind is looked for.
        vec![
            "trace",
            "record",
            "--valgrind",
            "/nonexistent/valgrind",
            "-o",
            &link_s,
            "--",
            "/bin/true",
        ],
        vec!["trace", "record", "-o", "/dev/null", "--", "/bin/true"],
    ] {
        let err = one_line_error(&args);
        assert!(
            err.contains("replaces only regular files"),
            "{args:?}: {err}"
        );
    }
    // exercise --save: a saved file that is a link stays a link.
    let saved = dir.path().join("ex");
    std::fs::create_dir(&saved).expect("mkdir");
    std::os::unix::fs::symlink(&target, saved.join("memory.img")).expect("symlink");
    let saved_s = saved.display().to_string();
    let err = one_line_error(&[
        "exercise",
        "multilevel",
        "--seed",
        "7",
        "--arch",
        "x86-32",
        "--save",
        &saved_s,
    ]);
    assert!(
        err.contains("memory.img") && err.contains("symbolic link"),
        "{err}"
    );
    // sweep --out: a record that is a dangling link is not written through,
    // one that leads to an endless file is not read without end.
    let spec = sweep_spec(dir.path());
    let list = crate::common::text(&["sweep", &spec, "--list"]);
    let id = list
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("run id")
        .to_owned();
    for (i, (to, what)) in [
        (dir.path().join("missing.json"), "symbolic link"),
        (PathBuf::from("/dev/zero"), "not a regular file"),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("records-{i}"));
        std::fs::create_dir(&out).expect("mkdir");
        let record = out.join(format!("{id}.json"));
        std::os::unix::fs::symlink(&to, &record).expect("symlink");
        let start = Instant::now();
        let err = one_line_error(&["sweep", &spec, "--out", out.to_str().expect("utf-8")]);
        assert!(err.contains(&id) && err.contains(what), "{err}");
        assert!(start.elapsed() < Duration::from_secs(30));
        assert!(
            std::fs::symlink_metadata(&record)
                .expect("link")
                .is_symlink()
        );
        assert_no_temporaries(&out);
    }
    // Checkpoints: merging into a checkpoint file that is a link is refused
    // (the link and the file it leads to stay as they were).
    let last = Path::new(&ck).join("ckpt-000002.vmck");
    let moved = dir.path().join("moved.vmck");
    std::fs::rename(&last, &moved).expect("move");
    std::os::unix::fs::symlink(&moved, &last).expect("symlink");
    let before = std::fs::read(&moved).expect("read");
    let err = one_line_error(&["checkpoint", "merge", &ck, "--at", "2"]);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(std::fs::symlink_metadata(&last).expect("link").is_symlink());
    assert_eq!(std::fs::read(&moved).expect("read"), before);
    assert_no_temporaries(Path::new(&ck));
    // A --checkpoint-dir that is a file is an error, the file untouched.
    let err = one_line_error(&[
        "run",
        "-q",
        "--checkpoint-every",
        "50K",
        "--checkpoint-dir",
        target.to_str().expect("utf-8"),
    ]);
    assert!(err.contains("precious.txt"), "{err}");
    assert_eq!(std::fs::read(&target).expect("target"), b"keep me");
    assert_eq!(std::fs::read(&link).expect("through the link"), b"keep me");
}

/// A checkpoint directory whose files are not regular files (a FIFO would
/// block the open forever, `/dev/zero` has no end): a one-line error.
#[cfg(unix)]
#[test]
fn checkpoint_files_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = checkpoints(dir.path(), "ck");
    let first = Path::new(&ck).join("ckpt-000000.vmck");
    std::fs::remove_file(&first).expect("rm");
    let made = std::process::Command::new("mkfifo")
        .arg(&first)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let second = Path::new(&ck).join("ckpt-000001.vmck");
    std::fs::remove_file(&second).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &second).expect("symlink");
    for args in [
        vec!["restore", "-q", &ck],
        vec!["restore", "-q", &ck, "--at", "1"],
    ] {
        let out = vmsim()
            .args(&args)
            .timeout(Duration::from_secs(60))
            .assert()
            .failure()
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("ckpt-00000") && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }
    let ls = vmsim()
        .args(["checkpoint", "ls", &ck, "--json"])
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let ls: serde_json::Value = serde_json::from_slice(&ls).expect("json");
    for i in [0, 1] {
        assert!(
            ls["checkpoints"][i]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a regular file")),
            "{ls}"
        );
    }
}

/// Standard error that cannot be written (a warning, restore's notice) is
/// an error too: exit status 1.
#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_error_ends_with_status_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scenario(
        dir.path(),
        r#"
[[process]]
name = "parent"
trace = "synth:scan,bytes=40KiB,stride=4096"
fork = [{ child = "child", after = 5000 }]
[[process]]
name = "child"
trace = "synth:scan,bytes=40KiB,stride=4096"
"#,
    );
    let ck = checkpoints(dir.path(), "ck");
    for args in [vec!["run", "-q", &s], vec!["restore", &ck]] {
        let full = File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(full)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    }
}

/// An output file that cannot be written to the end (here: a file-size
/// limit, as a full disk would) is a one-line error naming it, and leaves
/// neither the file nor its temporary behind.
#[cfg(target_os = "linux")]
#[test]
fn a_failing_output_file_is_a_one_line_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = sweep_spec(dir.path());
    let vmt = dir.path().join("big.vmt");
    let records = dir.path().join("records");
    let ck = dir.path().join("ck");
    let cases: [(Vec<String>, &Path); 3] = [
        (
            vec![
                "trace".into(),
                "convert".into(),
                "synth:random,bytes=64MiB,refs=1M".into(),
                vmt.display().to_string(),
            ],
            &vmt,
        ),
        (
            vec![
                "sweep".into(),
                spec,
                "--out".into(),
                records.display().to_string(),
            ],
            &records,
        ),
        (
            vec![
                "run".into(),
                "-q".into(),
                "synth:random,bytes=8MiB,refs=200K,write=1".into(),
                "--checkpoint-every".into(),
                "100K".into(),
                "--checkpoint-dir".into(),
                ck.display().to_string(),
            ],
            &ck,
        ),
    ];
    for (args, dest) in cases {
        // SIGXFSZ ignored (as inherited through exec): the write fails with
        // EFBIG instead of killing the process. 4 blocks (2 or 4 KiB) at
        // most per file: less than any of these outputs.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 4; exec \"$0\" \"$@\"")
            .arg(assert_cmd::cargo::cargo_bin!("vmsim"))
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("vmsim: ") && err.contains("File too large"),
            "{args:?}: {err}"
        );
        if dest.is_dir() {
            // No record or checkpoint, complete or not, and no temporary.
            let left: Vec<_> = std::fs::read_dir(dest)
                .expect("dir")
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "{args:?}: {left:?}");
        } else {
            assert!(!dest.exists(), "{args:?}");
        }
        assert_no_temporaries(dir.path());
    }
}

/// The README's demand-paging example, exactly as the README gives it:
/// it runs to the end (the process exits, every reference made) and prints
/// the process line the README shows.
#[test]
fn the_readme_demand_paging_example_runs_to_the_end() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut lines = readme.lines();
    let cmd = lines
        .by_ref()
        .find(|l| l.starts_with("$ vmsim run synth:zipf,pages="))
        .expect("the example");
    let shown: Vec<&str> = lines
        .take_while(|l| !l.starts_with("$ ") && !l.starts_with("```"))
        .collect();
    let args: Vec<&str> = cmd
        .trim_start_matches("$ vmsim ")
        .split(" | ")
        .next()
        .expect("command")
        .split_whitespace()
        .collect();
    let out = vmsim()
        .args(&args)
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).expect("utf-8");
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let process = shown
        .iter()
        .find(|l| l.trim_end().ends_with("exited"))
        .expect("the README shows the process exiting");
    assert!(
        out.lines().any(|l| words(l) == words(process)),
        "README: {process}\nvmsim:\n{out}"
    );
    let paging = shown
        .iter()
        .find(|l| l.starts_with("paging"))
        .expect("the README shows the paging line");
    let got = out
        .lines()
        .find(|l| l.starts_with("paging"))
        .expect("paging line");
    // The README elides parts with "[..]": every part it shows is printed.
    for part in paging.split("[..]") {
        let part = part.trim().trim_matches(';').trim();
        assert!(got.contains(part), "README: {part}\nvmsim: {got}");
    }
}

/// `trace record` (when valgrind is installed) with standard output on
/// /dev/full: the one-line error, and the recorded trace is kept (it was
/// complete before the summary failed to print).
#[cfg(target_os = "linux")]
#[test]
fn trace_record_with_a_full_standard_output() {
    let found = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: valgrind is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("true.lackey.zst");
    let full = File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("vmsim"))
        .args(["trace", "record", "-o"])
        .arg(&rec)
        .args(["--", "/bin/true"])
        .stdout(full)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(rec.is_file());
    assert_no_temporaries(dir.path());
}

/// `mrc --sizes A-B/N` had no bound on N: `1-1T/1G` filled memory (and
/// wrapped the exponent past 2^31) before the first reference was read.
#[test]
fn mrc_size_lists_are_bounded() {
    for sizes in [
        "1-1000000000000/1000000000",
        "1-1000000000000/10000001",
        "1-6000000,6000001-12000000",
        "1-10000001",
    ] {
        let start = Instant::now();
        let err = one_line_error(&[
            "mrc",
            "synth:zipf,pages=300,refs=2K",
            "-p",
            "fifo",
            "--sizes",
            sizes,
        ]);
        assert!(
            err.contains("--sizes") && err.contains("more than"),
            "{sizes}: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(30), "{sizes}");
    }
}

/// A checkpointing run over a pipe (`<(zstdcat ...)`, /dev/stdin) used to
/// checksum the pipe at its first checkpoint, taking the references the
/// run had not read yet ("truncated: the zstd stream ends inside a
/// frame"); it is refused before the run starts, as `-` is. Without
/// checkpoints a pipe is an ordinary input.
#[cfg(target_os = "linux")]
#[test]
fn checkpointing_runs_refuse_traces_that_cannot_be_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = std::fs::read(TRUE_TRACE).expect("trace");
    let ck = dir.path().join("ck");
    let out = vmsim()
        .args(["run", "-q", "/dev/stdin", "--checkpoint-every", "50K"])
        .arg("--checkpoint-dir")
        .arg(&ck)
        .write_stdin(trace.clone())
        .assert()
        .failure()
        .stdout("")
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).expect("utf-8");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/dev/stdin is not a regular file") && err.contains("--checkpoint-dir"),
        "{err}"
    );
    assert!(!ck.join("ckpt-000000.vmck").exists());
    let v: serde_json::Value = serde_json::from_slice(
        &vmsim()
            .args(["run", "-q", "--json", "/dev/stdin"])
            .write_stdin(trace)
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .expect("json");
    assert_eq!(v["processes"][0]["references"], 167_911);
}
