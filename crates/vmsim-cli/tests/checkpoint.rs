//! `vmsim run --checkpoint-*`, `vmsim restore`, `vmsim checkpoint`,
//! `vmsim replay`: end to end through the binary.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{json, one_line_error, text};

const TRUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vmsim-trace/tests/data/true.lackey.zst"
);
const FORKCOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/forkcow-real.toml"
);

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

/// `vmsim run INPUT... EXTRA --checkpoint-dir DIR`, then `vmsim restore DIR
/// --at K` for each K given: every report equals the run's.
fn run_then_restore(inputs: &[&str], extra: &[&str], at: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let ck = ck.to_str().unwrap();
    let mut args = vec!["run", "-q"];
    args.extend(inputs);
    args.extend(extra);
    args.extend(["--checkpoint-dir", ck]);
    let want = figures(json(&args));
    assert!(want["checkpoints"]["records"].as_array().unwrap().len() >= 2);
    for k in at {
        let got = figures(json(&["restore", ck, "--at", k, "-q"]));
        assert_eq!(got, want, "restored at {k} from {inputs:?}");
    }
}

#[test]
fn restore_reports_what_the_run_reported_for_lackey_and_vmt() {
    run_then_restore(&[TRUE], &["--checkpoint-every", "40K"], &["0", "2", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let vmt = dir.path().join("true.vmt");
    text(&["trace", "convert", TRUE, vmt.to_str().unwrap()]);
    run_then_restore(
        &[vmt.to_str().unwrap()],
        &[
            "--checkpoint-every",
            "50K",
            "--checkpoint-mode",
            "write-protect",
        ],
        &["1", "2"],
    );
}

#[test]
fn restore_reports_the_same_for_fork_cow_and_swap() {
    run_then_restore(&[FORKCOW], &["--checkpoint-every", "100K"], &["0", "2"]);
    run_then_restore(
        &["synth:zipf,pages=3000,refs=200K,write=0.5,seed=7"],
        &[
            "--set",
            "memory.frames=1024",
            "--checkpoint-every",
            "60K",
            "--checkpoint-tracker",
            "dirty-bit",
        ],
        &["1", "2"],
    );
}

#[test]
fn pause_mode_run_has_the_figures_of_a_run_without_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let mut with = json(&[
        "run",
        "-q",
        FORKCOW,
        "--checkpoint-every",
        "50K",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
    ]);
    let without = json(&["run", "-q", FORKCOW]);
    assert!(
        with.as_object_mut()
            .unwrap()
            .remove("checkpoints")
            .is_some()
    );
    assert_eq!(with, without);
}

#[test]
fn ls_show_merge_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let ck = five(dir.path(), "ck");
    let ck = ck.as_str();
    let ls = text(&["checkpoint", "ls", ck]);
    assert_eq!(ls.lines().count(), 1 + 5, "{ls}");
    assert!(
        ls.contains("ckpt-000000.vmck   full") && ls.contains("incr"),
        "{ls}"
    );
    let lsj = json(&["checkpoint", "ls", ck]);
    assert!(
        lsj["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["chain_ok"] == true)
    );
    let show = text(&["checkpoint", "show", ck, "--at", "2"]);
    assert!(
        show.contains("checkpoint 2 (incremental), taken after 90000 references"),
        "{show}"
    );
    assert!(
        show.contains("MACH") && show.contains("dirty pages  host"),
        "{show}"
    );
    let pages = json(&["checkpoint", "show", ck, "--at", "2", "--pid", "1"]);
    assert!(pages["pages"].as_array().unwrap().len() > 20);
    let merged = text(&["checkpoint", "merge", ck, "--at", "3"]);
    assert!(merged.contains("ckpt-000003.vmck (full"), "{merged}");
    let lsj = json(&["checkpoint", "ls", ck]);
    assert_eq!(lsj["checkpoints"][3]["full"], true);
    assert_eq!(
        lsj["checkpoints"][4]["chain_ok"], true,
        "the increment after a merged one still links"
    );
    // The stack page /bin/true writes last.
    let a = json(&["replay", ck, "--watch", "0x1ffefffe48"]);
    let w = &a["writer"];
    assert!(w["reference"].as_u64().unwrap() > 0, "{a}");
    assert!(w["instruction"].as_u64().is_some(), "{a}");
    assert!(
        a["replayed"].as_u64().unwrap() < a["from_start"].as_u64().unwrap(),
        "{a}"
    );
    let t = text(&["replay", ck, "--watch", "0x1ffefffe48"]);
    assert!(
        t.contains("was last written") && t.contains("a replay from the start would replay"),
        "{t}"
    );
    let u = text(&["replay", ck, "--watch", "0x1ffefffe48", "--until", "100000"]);
    assert!(
        u.contains("after reference 100000") && u.contains("PTE"),
        "{u}"
    );
}

#[test]
fn bad_checkpoint_commands_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let e = one_line_error(&["restore", d]);
    assert!(e.contains("holds no checkpoint"), "{e}");
    let e = one_line_error(&["run", "--checkpoint-dir", d]);
    assert!(e.contains("--checkpoint-every"), "{e}");
    let ck = dir.path().join("ck");
    let ck = ck.to_str().unwrap();
    text(&[
        "run",
        "-q",
        "--checkpoint-every",
        "50K",
        "--checkpoint-dir",
        ck,
    ]);
    let e = one_line_error(&[
        "run",
        "-q",
        "--checkpoint-every",
        "50K",
        "--checkpoint-dir",
        ck,
    ]);
    assert!(e.contains("already holds"), "{e}");
    let f = Path::new(ck).join("ckpt-000001.vmck");
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&f, &b).unwrap();
    let e = one_line_error(&["restore", ck, "--at", "2"]);
    assert!(e.contains("ckpt-000001.vmck") && e.contains("CRC"), "{e}");
    let e = one_line_error(&[
        "run",
        "--checkpoint-every",
        "10K",
        "--checkpoint-mode",
        "sideways",
    ]);
    assert!(
        e.contains("checkpoint.mode") || e.contains("sideways"),
        "{e}"
    );
    let e = one_line_error(&[
        "run",
        "--checkpoint-every",
        "10K",
        "--checkpoint-mode",
        "write-protect",
        "--checkpoint-tracker",
        "host",
    ]);
    assert!(e.contains("checkpoint.tracker"), "{e}");
    let e = one_line_error(&["replay", ck, "--watch", "banana"]);
    assert!(e.contains("--watch"), "{e}");
}

#[test]
fn a_run_that_fails_at_once_leaves_no_checkpoint_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("new/ck");
    let missing = dir.path().join("no-such.lackey");
    let run = || {
        let e = one_line_error(&[
            "run".as_ref(),
            "-q".as_ref(),
            "--checkpoint-every".as_ref(),
            "10K".as_ref(),
            "--checkpoint-dir".as_ref(),
            ck.as_os_str(),
            missing.as_os_str(),
        ]);
        assert!(e.contains("no-such.lackey"), "{e}");
    };
    run();
    assert!(
        !dir.path().join("new").exists(),
        "the run made and left new/"
    );
    // A directory that was there before stays, empty or not.
    std::fs::create_dir_all(&ck).unwrap();
    run();
    assert!(ck.is_dir());
}

/// A chain of five files (0 full, 1-4 increments) in `DIR/name`.
fn five(dir: &Path, name: &str) -> String {
    let ck = dir.join(name);
    let ck = ck.to_str().unwrap().to_string();
    text(&[
        "run",
        "-q",
        "--checkpoint-every",
        "30K",
        "--checkpoint-dir",
        ck.as_str(),
    ]);
    ck
}

/// The `ls --json` entries' file and error.
fn listed(ck: &str) -> Vec<(String, Option<String>)> {
    json(&["checkpoint", "ls", ck])["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_string(),
                e["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Asserts that [`listed`]'s entry `k` is marked with an error that
/// says `what`.
fn assert_marked(l: &[(String, Option<String>)], k: usize, what: &str) {
    let e = l[k].1.as_deref();
    assert!(
        e.is_some_and(|e| e.contains(what)),
        "entry {k}, not {what:?}: {l:?}"
    );
}

/// A chain with a member missing, copied under a second name, or two
/// members swapped, or a member cut short: `ls` lists every file and
/// marks the bad ones and those whose restore needs them, and succeeds;
/// `show` and `merge` refuse what needs a bad member, naming it, and
/// work on what does not.
#[test]
fn a_chain_missing_duplicated_reordered_or_cut_is_listed_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = |ck: &str, k: u64| Path::new(ck).join(format!("ckpt-{k:06}.vmck"));
    // Missing.
    let ck = five(dir.path(), "missing");
    let ck = ck.as_str();
    std::fs::remove_file(file(ck, 1)).unwrap();
    let l = listed(ck);
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(l[0].1.is_none(), "{l:?}");
    assert_marked(&l, 1, "ckpt-000001.vmck is missing");
    for cmd in ["show", "merge"] {
        let e = one_line_error(&["checkpoint", cmd, ck, "--at", "2"]);
        assert!(e.contains("ckpt-000001.vmck is missing"), "{cmd}: {e}");
    }
    text(&["checkpoint", "show", ck, "--at", "0"]);
    // Copied under a name with one more leading zero: listed, marked, and
    // never read in place of the file of its number.
    let ck = five(dir.path(), "alias");
    let ck = ck.as_str();
    std::fs::copy(file(ck, 1), Path::new(ck).join("ckpt-0000001.vmck")).unwrap();
    std::fs::copy(file(ck, 3), file(ck, 2)).unwrap();
    let l = listed(ck);
    assert_eq!(l.len(), 6, "{l:?}");
    assert_eq!(l[1].0, "ckpt-000001.vmck", "its own name first: {l:?}");
    assert!(l[1].1.is_none(), "{l:?}");
    assert_marked(&l, 2, "named like checkpoint 1 but not ckpt-000001.vmck");
    let show = text(&["checkpoint", "show", ck, "--at", "1"]);
    assert!(show.contains("checkpoint 1 (incremental)"), "{show}");
    // ... and file 3 copied over file 2: the same member twice.
    assert_marked(&l, 3, "its header says checkpoint 3, its name 2");
    for cmd in ["show", "merge"] {
        let e = one_line_error(&["checkpoint", cmd, ck, "--at", "4"]);
        assert!(
            e.contains("ckpt-000003.vmck") || e.contains("ckpt-000002.vmck"),
            "{cmd}: {e}"
        );
    }
    text(&["checkpoint", "merge", ck, "--at", "1"]);
    // Swapped.
    let ck = five(dir.path(), "swapped");
    let ck = ck.as_str();
    let tmp = Path::new(ck).join("t");
    std::fs::rename(file(ck, 1), &tmp).unwrap();
    std::fs::rename(file(ck, 2), file(ck, 1)).unwrap();
    std::fs::rename(&tmp, file(ck, 2)).unwrap();
    for (cmd, at, expect) in [
        ("show", "1", "its header says checkpoint 2, its name 1"),
        ("merge", "2", "its header says checkpoint 1, its name 2"),
        ("show", "3", "its parent is not"),
    ] {
        let e = one_line_error(&["checkpoint", cmd, ck, "--at", at]);
        assert!(e.contains(expect), "{cmd} {at}: {e}");
    }
    // Cut before its END section: marked, and so is every later file.
    let ck = five(dir.path(), "cut");
    let ck = ck.as_str();
    let b = std::fs::read(file(ck, 1)).unwrap();
    std::fs::write(file(ck, 1), &b[..b.len() - 32]).unwrap();
    let l = listed(ck);
    assert!(l[0].1.is_none(), "{l:?}");
    assert_marked(&l, 1, "truncated");
    for e in &l[2..] {
        let e = e.1.as_deref().unwrap();
        assert!(e.contains("ckpt-000001.vmck: truncated"), "{e}");
    }
    let ls = text(&["checkpoint", "ls", ck]);
    assert!(ls.lines().nth(2).unwrap().contains("truncated"), "{ls}");
}

fn checkpoint_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".vmck"))
            .count()
    })
}

/// A run killed with SIGKILL while it writes checkpoints leaves every
/// checkpoint file it completed usable: killed at several points (each
/// after a different number of checkpoints, at a different moment of the
/// next one).
#[test]
fn sigkill_while_checkpointing_leaves_the_finished_checkpoints_usable() {
    let bin = env!("CARGO_BIN_EXE_vmsim");
    for (after, extra_ms) in [(1usize, 0u64), (2, 3), (3, 11), (5, 1), (6, 17)] {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let mut child = std::process::Command::new(bin)
            .args([
                "run",
                "-q",
                "synth:zipf,pages=3000,refs=20M,write=0.5,seed=1",
                "--set",
                "memory.frames=2048",
                "--checkpoint-every",
                "40K",
                "--checkpoint-dir",
            ])
            .arg(&ck)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while checkpoint_files(&ck) < after && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(extra_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let chain = vmsim::checkpoint::Chain::open(&ck).unwrap();
        assert!(chain.iter().count() >= after);
        // Every file named like a checkpoint is a complete one, and the
        // newest restores (through every link before it).
        for e in chain.iter() {
            assert!(e.header.is_ok(), "{}: {:?}", e.path.display(), e.header);
            chain.links(e.seq).unwrap();
        }
        let last = chain.last().unwrap();
        let sim = chain.restore(Some(last), &[]).unwrap();
        assert_eq!(sim.references(), (last + 1) * 40_000);
    }
}
