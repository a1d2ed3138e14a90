//! `vmsim run` and `vmsim presets`: the main job, end to end.

use predicates::prelude::PredicateBooleanExt;
use serde_json::Value;

use crate::common::{json, one_line_error, vmsim};

/// Runs `vmsim run ARGS -q --json` and parses its output.
fn run_json(args: &[&str]) -> Value {
    json(&[&["run"], args, &["-q"]].concat())
}

const TINY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vmsim-trace/tests/data/tinystatic.lackey.zst"
);
const FORK_COW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fork-cow.toml");

/// The report without the parts that name the input.
fn totals(mut v: Value) -> Value {
    v["machine"]["description"] = Value::Null;
    for p in v["processes"].as_array_mut().unwrap() {
        p["name"] = Value::Null;
    }
    v
}

#[test]
fn builtin_default_prints_the_report() {
    vmsim().arg("run").assert().success().stdout(
        predicates::str::contains("references   167911")
            .and(predicates::str::contains("0 frames leaked")),
    );
}

#[test]
fn scan_of_64_mib_walks_once_per_page() {
    let v = run_json(&["synth:scan,bytes=64MiB,stride=4", "--preset", "x86-64"]);
    assert_eq!(v["walks"], 16384);
    assert_eq!(v["references"], 16 << 20);
    let v = run_json(&[
        "synth:scan,bytes=64MiB,stride=4",
        "--preset",
        "x86-64",
        "--set",
        "paging.page_size=2MiB",
    ]);
    assert_eq!(v["walks"], 32);
    assert_eq!(v["frames_leaked"], 0);
}

#[test]
fn fork_cow_example_copies_ten_pages_and_leaks_nothing() {
    let v = run_json(&[FORK_COW]);
    assert_eq!(v["cow_copies"], 10);
    assert_eq!(v["frames_leaked"], 0);
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    assert_eq!(procs[0]["name"], "parent");
    assert_eq!(procs[0]["resident_peak"], 1000);
    assert_eq!(procs[0]["faults"]["demand_zero"], 1000);
    assert_eq!(procs[1]["faults"]["cow_copy"], 10);
    assert!(procs[1]["page_table_frames"].as_u64().unwrap() > 0);
}

#[test]
fn lackey_and_its_vmt_conversion_report_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let vmt = dir.path().join("t.vmt");
    vmsim()
        .args(["trace", "convert", TINY, vmt.to_str().unwrap()])
        .assert()
        .success();
    let a = totals(run_json(&[TINY]));
    let b = totals(run_json(&[vmt.to_str().unwrap()]));
    assert_eq!(a, b);
    assert_eq!(a["references"], 146_435);
}

#[test]
fn same_seed_same_report() {
    let spec = "synth:zipf,pages=5000,s=0.9,refs=200000,write=0.3,seed=7";
    let a = run_json(&[spec, "--set", "memory.frames=4096"]);
    let b = run_json(&[spec, "--set", "memory.frames=4096"]);
    assert_eq!(a, b);
    let c = run_json(&[
        "synth:zipf,pages=5000,s=0.9,refs=200000,write=0.3,seed=8",
        "--set",
        "memory.frames=4096",
    ]);
    assert_ne!(a["tlb_hits"], c["tlb_hits"]);
}

#[test]
fn several_traces_run_as_several_processes() {
    let v = run_json(&[
        TINY,
        "synth:scan,bytes=1MiB,stride=64",
        "--set",
        "run.quantum=1000",
    ]);
    assert_eq!(v["processes"].as_array().unwrap().len(), 2);
    assert!(v["tlb_levels"][0]["lookups"].as_u64().unwrap() > 0);
}

#[test]
fn plot_is_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    vmsim()
        .args(["run", "-q", "--plot", svg.to_str().unwrap()])
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("page faults"));
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lackey");
    std::fs::write(&bad, "I  0401ab70,3\n L 1fff000768,8\n S nothex,8\n").unwrap();
    let trunc = dir.path().join("t.vmt");
    vmsim()
        .args(["trace", "convert", TINY, trunc.to_str().unwrap()])
        .assert()
        .success();
    let bytes = std::fs::read(&trunc).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let zst = dir.path().join("t.zst");
    let z = std::fs::read(TINY).unwrap();
    std::fs::write(&zst, &z[..z.len() / 2]).unwrap();
    let prot = dir.path().join("prot.toml");
    std::fs::write(
        &prot,
        "[[process]]\nname = \"p\"\ntrace = \"synth:scan,bytes=8KiB\"\nmmap = [{ len = \"8KiB\", prot = \"rw+\" }]\n",
    )
    .unwrap();
    let format = dir.path().join("format.toml");
    std::fs::write(&format, "va_bits = 32\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![prot.display().to_string()], "mmap[0].prot = 'rw+'"),
        (
            vec!["--set".into(), "kernel.policy=opt".into()],
            "config key `kernel.policy`",
        ),
        (
            vec![
                "--set".into(),
                format!("paging.format_file={}", format.display()),
            ],
            "config key `paging.format_file`",
        ),
        (vec![bad.display().to_string()], ":3"),
        (vec![trunc.display().to_string()], "truncated"),
        (vec![zst.display().to_string()], "truncated"),
        (vec!["synth:scan,bytez=1".into()], "bytez"),
        (vec!["--preset".into(), "vax".into()], "vax"),
        (vec!["--set".into(), "memory.framez=3".into()], "framez"),
        (
            vec!["--set".into(), "paging.page_size=3KiB".into()],
            "paging.page_size",
        ),
        (vec!["/nonexistent/trace".into()], "/nonexistent/trace"),
    ];
    for (args, needle) in cases {
        let err = one_line_error(&[&["run".to_owned()], &args[..], &["-q".to_owned()]].concat())
            .to_lowercase();
        assert!(err.contains(&needle.to_lowercase()), "{args:?}: {err}");
    }
}

#[test]
fn presets_are_listed_with_their_settings() {
    vmsim().arg("presets").assert().success().stdout(
        predicates::str::contains("# preset x86-64")
            .and(predicates::str::contains("# preset core-i7"))
            .and(predicates::str::contains("# preset riscv-sv39"))
            .and(predicates::str::contains("# preset classroom"))
            .and(predicates::str::contains("[memory]")),
    );
    vmsim().args(["presets", "vax"]).assert().failure();
}

#[test]
fn every_preset_runs_the_builtin_trace() {
    for preset in ["x86-64", "core-i7", "riscv-sv39"] {
        let v = run_json(&["--preset", preset]);
        assert_eq!(v["references"], 167_911, "{preset}");
        assert_eq!(v["frames_leaked"], 0, "{preset}");
    }
    // The classroom machine is 32-bit: the trace's stack at 0x1fff000000
    // does not fit. The process is killed: the report is printed in full,
    // the kill is said on stderr and the exit status is 3.
    let out = vmsim()
        .args(["run", "--preset", "classroom", "-q", "--json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("process 1 'true' was killed"))
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).expect("the report is printed");
    assert_eq!(v["processes"][0]["killed"], "bad_address");
    let v = run_json(&["--preset", "classroom", "--allow-kills"]);
    assert_eq!(v["processes"][0]["killed"], "bad_address");
}

/// Issue 5: CLOCK reads the accessed bit; clearing it must also invalidate
/// the TLB entry, or a cached translation never sets A again and CLOCK
/// degrades to FIFO.
#[test]
fn clock_needs_the_tlb_invalidation_when_clearing_accessed_bits() {
    let major = |policy: &str, invalidate: bool| {
        let v = run_json(&[
            "synth:zipf,pages=3000,s=0.9,refs=300000,write=0.2",
            "--set",
            "memory.frames=2048",
            "--set",
            &format!("kernel.policy={policy}"),
            "--set",
            &format!("kernel.clear_accessed_invalidates_tlb={invalidate}"),
        ]);
        assert_eq!(v["frames_leaked"], 0);
        v["major_faults"].as_u64().unwrap()
    };
    let with = major("clock", true);
    let without = major("clock", false);
    let fifo = major("fifo", true);
    assert!(
        with * 10 < without * 9,
        "clock {with} vs clock without invalidation {without}"
    );
    assert!(
        without.abs_diff(fifo) * 20 < fifo,
        "without invalidation clock ({without}) ~ fifo ({fifo})"
    );
}

#[test]
fn a_workload_bigger_than_memory_swaps_and_every_page_comes_back() {
    let v = run_json(&[
        "synth:random,bytes=64MiB,refs=200000,write=0.5",
        "--set",
        "memory.frames=4096",
    ]);
    assert!(v["paging"]["swap_outs"].as_u64().unwrap() > 1000);
    assert!(v["major_faults"].as_u64().unwrap() > 1000);
    assert!(v["swap"]["writes"].as_u64().unwrap() > 0);
    assert_eq!(v["processes"][0]["killed"], Value::Null);
    assert_eq!(v["frames_leaked"], 0);
    assert!(v["timeline"]["samples"][0]["resident"].is_object());
}

/// The swap device's host-memory cache changes how fast a run goes, never
/// what it reports: no cache, a cache far smaller than what is swapped (so
/// pages go through the file), and the default give the same report, and a
/// size that is not one is refused in one line naming the variable.
#[test]
fn the_swap_cache_size_changes_nothing_in_the_report() {
    let args = [
        "run",
        "synth:zipf,pages=3000,s=0.8,refs=60000,write=0.3",
        "--set",
        "memory.frames=1024",
        "--json",
    ];
    let report = |cache: Option<&str>| {
        let mut cmd = vmsim();
        if let Some(c) = cache {
            cmd.env("VMSIM_SWAP_CACHE", c);
        }
        let out = cmd
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).expect("utf-8")
    };
    let default = report(None);
    let v: Value = serde_json::from_str(&default).expect("json");
    assert!(v["paging"]["swap_ins"].as_u64().unwrap() > 1000, "{v}");
    assert_eq!(report(Some("0")), default, "no cache");
    assert_eq!(report(Some("64KiB")), default, "16 pages of cache");
    let out = vmsim()
        .env("VMSIM_SWAP_CACHE", "lots")
        .args(args)
        .assert()
        .failure()
        .stdout("")
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).expect("utf-8");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("VMSIM_SWAP_CACHE=lots"), "{err}");
}

/// The real forkcow traces as a scenario: the fork happens where the child's
/// trace starts, and the child's one store per page of the 1 MiB array copies
/// each of those 256 pages.
#[test]
fn real_forkcow_scenario_copies_the_array_pages() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/forkcow-real.toml"
    );
    let v = run_json(&[path]);
    assert_eq!(v["kernel"]["forks"], 1);
    let copies = v["cow_copies"].as_u64().unwrap();
    assert!((256..300).contains(&copies), "{copies}");
    assert_eq!(v["frames_leaked"], 0);
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs[1]["references"], 30_764);
    assert_eq!(procs[0]["references"], 305_302);
    assert!(procs.iter().all(|p| p["killed"].is_null()));
}

#[test]
fn impossible_sizes_are_refused_before_allocating() {
    for set in [
        "memory.frames=4000000000",
        "kernel.swap_slots=4000000000",
        "kernel.low_watermark=1000000",
        "kernel.policy=lru",
    ] {
        let out = vmsim()
            .args(["run", "-q", "--set", set])
            .assert()
            .failure()
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("vmsim: config key"), "{set}: {err}");
    }
}

#[test]
fn switching_the_architecture_keeps_the_preset_usable() {
    for arch in ["sv39", "sv48", "x86-64-5level"] {
        let v = run_json(&["--set", &format!("paging.arch={arch}")]);
        assert_eq!(v["machine"]["arch"], arch);
        assert_eq!(v["references"], 167_911, "{arch}");
        assert_eq!(v["frames_leaked"], 0, "{arch}");
    }
}

#[test]
fn a_trace_on_standard_input_runs_like_the_file() {
    let from_file = totals(run_json(&[TINY]));
    let out = vmsim()
        .args(["run", "-", "-q", "--json"])
        .write_stdin(std::fs::read(TINY).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_pipe: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(totals(from_pipe), from_file);
    let e = one_line_error(&["run", "-", "-"]);
    assert!(e.contains("only once"), "{e}");
}

/// `--plot FILE.png` writes a real PNG (rendered from the SVG), with the
/// per-process series and human tick labels in the SVG it comes from.
#[test]
fn plot_png_is_a_png_and_svg_ticks_are_human() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("run.png");
    let svg = dir.path().join("run.svg");
    for p in [&png, &svg] {
        vmsim()
            .args([
                "run",
                "-q",
                "synth:scan,bytes=4MiB,passes=2",
                "synth:scan,bytes=2MiB",
                "--set",
                "run.quantum=1000",
                "--plot",
            ])
            .arg(p)
            .assert()
            .success();
    }
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (2000, 1560), "twice the SVG's 1000 x 780");
    let text = std::fs::read_to_string(&svg).unwrap();
    for want in [
        "(pid 1) resident pages",
        "(pid 2) resident pages",
        "major faults (swap-ins)",
        "references (simulated time)",
        "events per 1000 references",
        "pages (frames)",
    ] {
        assert!(text.contains(want), "{want} missing from the plot");
    }
    // 2.6M references: ticks read 500K, 1M, ..., never 1000000.0.
    let labels: Vec<&str> = text.lines().map(str::trim).collect();
    for tick in ["500K", "1M", "2M"] {
        assert!(labels.contains(&tick), "tick {tick} missing");
    }
    assert!(
        !labels
            .iter()
            .any(|l| l.len() > 4 && l.parse::<f64>().is_ok()),
        "raw number tick labels"
    );
}

/// An extension `--plot` cannot write is refused before the run, and no
/// file is made.
#[test]
fn plot_refuses_other_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = dir.path().join("run.jpg");
    let err = one_line_error(&[
        "run",
        "-q",
        "synth:scan,bytes=64KiB",
        "--plot",
        jpg.to_str().unwrap(),
    ]);
    assert!(err.contains(".svg or .png"), "{err}");
    assert!(!jpg.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Every count key takes units, from `--set` and from a config file.
#[test]
fn count_keys_take_units() {
    let v = json(&[
        "run",
        "-q",
        "synth:scan,bytes=64KiB",
        "--set",
        "memory.frames=4Ki",
    ]);
    assert_eq!(v["machine"]["frames"], 4096);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[memory]\nframes = \"2Ki\"\n[kernel]\nstack_limit = \"1MiB\"\nswap_slots = \"1Ki\"\n",
    )
    .unwrap();
    let v = json(&[
        "run",
        "-q",
        "synth:scan,bytes=64KiB",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(v["machine"]["frames"], 2048);
    let err = one_line_error(&[
        "run",
        "-q",
        "synth:scan,bytes=64KiB",
        "--set",
        "memory.frames=4KB",
    ]);
    assert!(
        err.contains("ambiguous") && err.contains("memory.frames"),
        "{err}"
    );
}
