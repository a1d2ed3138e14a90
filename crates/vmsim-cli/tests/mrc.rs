//! `vmsim mrc`: miss-ratio curves, checked against the policy lab and the
//! full machine.

use serde_json::Value;

use crate::common::{json, one_line_error, vmsim};

fn data(name: &str) -> String {
    format!(
        "{}/../vmsim-trace/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn policy_misses(policy: &str, frames: u64, input: &[&str]) -> u64 {
    let f = frames.to_string();
    let v = json(&[&["policy", "-p", policy, "-f", &f, "-q"], input].concat());
    v["misses"].as_u64().unwrap()
}

/// The curve of `policy` (its first curve) as (size, misses).
fn curve(v: &Value, policy: &str) -> Vec<(u64, u64)> {
    let c = v["inputs"][0]["curves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["policy"] == policy)
        .unwrap();
    c["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["size"].as_u64().unwrap(), p["misses"].as_u64().unwrap()))
        .collect()
}

#[test]
fn exact_lru_equals_the_policy_lab_at_every_size() {
    let t = data("tinystatic.lackey.zst");
    let v = json(&["mrc", &t, "--sizes", "all,89,200"]);
    let lru = curve(&v, "lru");
    assert_eq!(v["inputs"][0]["distinct_pages"], 88);
    assert_eq!(lru.len(), 90);
    for &(size, misses) in &lru {
        assert_eq!(misses, policy_misses("lru", size, &[&t]), "size {size}");
    }
    // 64-byte pages: straddling accesses, more pages; sizes spread out.
    let v = json(&["mrc", &t, "--page-size", "64", "--sizes", "1-5000/12"]);
    for (size, misses) in curve(&v, "lru") {
        assert_eq!(
            misses,
            policy_misses("lru", size, &[&t, "--page-size", "64"]),
            "64-byte pages, size {size}"
        );
    }
}

#[test]
fn opt_in_one_pass_and_simulated_policies_equal_the_lab() {
    let t = data("true.lackey.zst");
    let v = json(&[
        "mrc",
        &t,
        "-p",
        "opt,fifo,arc",
        "--sizes",
        "1,2,3,5,8,13,21,34,55,89,139",
    ]);
    for policy in ["opt", "fifo", "arc"] {
        for (size, misses) in curve(&v, policy) {
            assert_eq!(
                misses,
                policy_misses(policy, size, &[&t]),
                "{policy} {size}"
            );
        }
    }
}

#[test]
fn first_references_and_size_one_by_hand() {
    let out = vmsim()
        .args(["mrc", "-", "-p", "lru,opt", "--sizes", "1,2,3", "--json"])
        .write_stdin("1 1 2 1 3 2\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(curve(&v, "lru"), [(1, 5), (2, 4), (3, 3)]);
    // OPT with 2 frames: at 3, evict 1 (never used again): 2 hits.
    assert_eq!(curve(&v, "opt"), [(1, 5), (2, 3), (3, 3)]);
    let one = json(&["mrc", "synth:loop,pages=1,repeats=1", "--sizes", "1"]);
    assert_eq!(curve(&one, "lru"), [(1, 1)]);
}

#[test]
fn tlb_curve_equals_the_machine_with_one_fully_associative_lru_tlb() {
    let t = data("tinystatic.lackey.zst");
    let dir = tempfile::tempdir().unwrap();
    let v = json(&["mrc", &t, "--tlb", "--sizes", "1,4,16,64"]);
    assert_eq!(v["unit"], "entries");
    for (entries, misses) in curve(&v, "lru") {
        let cfg = dir.path().join(format!("tlb{entries}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[tlb]\nwalk_cache = []\n[[tlb.levels]]\nlatency = 1\n[[tlb.levels.arrays]]\n\
                 name = \"TLB\"\nholds = \"unified\"\nentries = {entries}\nreplacement = \"lru\"\n\
                 page_sizes = [\"4KiB\"]\n"
            ),
        )
        .unwrap();
        let r = json(&["run", &t, "--config", cfg.to_str().unwrap(), "-q"]);
        // Every TLB miss of a translation is one walk that fills the TLB.
        assert_eq!(r["walks"].as_u64().unwrap(), misses, "{entries} entries");
        assert_eq!(r["translations"], v["inputs"][0]["references"]);
    }
}

#[test]
fn shards_estimates_state_their_error() {
    let input = "synth:zipf,pages=20000,s=0.8,refs=400K";
    let v = json(&[
        "mrc",
        input,
        "--shards",
        "100%",
        "--shards-max",
        "4K",
        "-p",
        "lru",
    ]);
    let curves = v["inputs"][0]["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 3);
    let exact = &curves[0]["points"];
    let full = &curves[1];
    assert!(
        full["method"]
            .as_str()
            .unwrap()
            .starts_with("shards rate 100%")
    );
    assert_eq!(full["points"], *exact, "SHARDS at 100% is exact");
    assert_eq!(full["error"]["mean_abs"], 0.0);
    let max = &curves[2];
    let mae = max["error"]["mean_abs"].as_f64().unwrap();
    // A 4000-page sample of a 20000-page zipf stream: noisy, but close.
    assert!(mae < 0.05, "fixed-size SHARDS error {mae}");
    assert!(max["rate"].as_f64().unwrap() < 0.5);
    // A fixed size at least the footprint never lowers the rate: exact.
    let big = json(&["mrc", input, "--shards-max", "20000", "-p", "lru"]);
    let big = &big["inputs"][0]["curves"].as_array().unwrap()[1];
    assert_eq!(big["points"], *exact);
    assert_eq!(big["rate"], 1.0);
    let text = crate::common::text(&["mrc", input, "--shards", "10%", "-p", "lru"]);
    assert!(
        text.contains("error against lru exact: mean absolute"),
        "{text}"
    );
    // SHARDS alone: no exact curve, no error.
    let only = json(&["mrc", input, "--shards", "10%", "--sizes", "100"]);
    assert_eq!(only["inputs"][0]["curves"].as_array().unwrap().len(), 1);
    assert!(only["inputs"][0]["curves"][0]["error"].is_null());
}

#[test]
fn miniature_simulations_state_their_error() {
    let v = json(&[
        "mrc",
        "synth:zipf,pages=5000,s=0.9,refs=200K",
        "-p",
        "clock,fifo",
        "--sample",
        "25%",
        "--compare-full",
        "--sizes",
        "64-4096/4",
    ]);
    for c in v["inputs"][0]["curves"].as_array().unwrap() {
        assert!(c["method"].as_str().unwrap().starts_with("miniature"));
        let e = c["error"]["mean_abs"].as_f64().unwrap();
        assert!(e < 0.05, "{c}");
    }
}

#[test]
fn csv_plot_and_several_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("mrc.svg");
    let a = data("true.lackey.zst");
    let b = data("tinystatic.lackey.zst");
    let out = crate::common::text(&[
        "mrc",
        &a,
        &b,
        "-p",
        "lru,clock",
        "--csv",
        "--plot",
        svg.to_str().unwrap(),
        "--x-axis",
        "bytes",
    ]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("input,policy,method,size,bytes,misses,miss_ratio")
    );
    assert!(out.contains(",clock,simulated at each size,1,4096,"));
    assert!(lines.any(|l| l.contains("tinystatic")));
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg"));
    assert!(plot.contains("miss ratio") && plot.contains("memory in bytes"));
    assert!(plot.contains("true.lackey.zst lru"));
}

#[test]
fn bad_options_are_one_line_errors() {
    let t = data("true.lackey.zst");
    for (args, want) in [
        (vec!["--sizes", "0"], "--sizes"),
        (vec!["--sizes", "9-2"], "backwards"),
        (vec!["--shards", "0"], "--shards"),
        (vec!["--shards", "2"], "--shards"),
        (vec!["-p", "lru,nope"], "--policy"),
        (vec!["-j", "0"], "-j"),
        (vec!["--page-size", "5K"], "power of two"),
        (vec!["--sample", "10%"], "--sample"),
    ] {
        let e = one_line_error(&[&["mrc", &t][..], &args].concat());
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = one_line_error(&["mrc", "-", "-"]);
    assert!(e.contains("only once"), "{e}");
}
