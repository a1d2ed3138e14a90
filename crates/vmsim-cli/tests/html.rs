//! `--html FILE`: the pages are self-contained, embed the command's own
//! JSON (escaped), and are written like every output file. What the pages
//! draw is tested in a real browser (tests/browser/test_pages.py, run by
//! .ci/run); these tests need no browser.

use std::path::Path;

use serde_json::Value;

use crate::common::{json, one_line_error, vmsim};

/// The data a page embeds (the text of `script#vmsim-data`, unescaped by
/// the JSON parser).
fn page_data(path: &Path) -> (String, Value) {
    let page = std::fs::read_to_string(path).expect("page written");
    let start = page
        .find(r#"<script type="application/json" id="vmsim-data">"#)
        .expect("data script")
        + r#"<script type="application/json" id="vmsim-data">"#.len();
    let end = start + page[start..].find("</script>").expect("closed");
    let data = serde_json::from_str(&page[start..end]).expect("the data is JSON");
    (page, data)
}

fn self_contained(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    for bad in [
        "<script src",
        "<link",
        "@import",
        "src=\"http",
        "href=\"http",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!page.contains(bad), "a page must load nothing: found {bad}");
    }
}

/// The report a page embeds: the `--json` document without its
/// `schema_version` (the page's data carries its own).
fn report_of(mut document: Value) -> Value {
    let version = document
        .as_object_mut()
        .and_then(|m| m.remove("schema_version"));
    assert_eq!(version, Some(serde_json::json!(1)), "{document}");
    document
}

#[test]
fn policy_page_embeds_the_json_report_and_each_steps_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.html");
    let args = [
        "policy",
        "-p",
        "clock",
        "-f",
        "3",
        "--refs",
        "1,2,3,4,1,2,5,1,2,3,4,5",
    ];
    let want = report_of(json(&args));
    vmsim()
        .args(args)
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (page, data) = page_data(&path);
    self_contained(&page);
    assert_eq!(data["report"], want, "the page embeds what --json prints");
    assert_eq!(data["page"], "policy");
    assert_eq!(data["schema_version"], 1);
    let state = data["state"].as_array().unwrap();
    assert_eq!(state.len(), 12);
    // Step 4 (ref 4): all three pages had A set; the hand cleared them all
    // and came back to 1, the oldest.
    let why = state[3]["why"].as_str().unwrap();
    assert!(
        why.contains("passed 1, 2, 3") && why.contains("stopped at 1"),
        "{why}"
    );
    // After it, 2 and 3 have A clear (the hand cleared them), 4 has A set.
    let a: Vec<bool> = state[3]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["a"].as_bool().unwrap())
        .collect();
    assert_eq!(a, [false, false, true]);
    // No temporary file is left beside the page.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn policy_page_shows_opt_next_uses_and_aging_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.html");
    vmsim()
        .args([
            "policy",
            "-p",
            "opt",
            "-f",
            "3",
            "--refs",
            "1,2,3,4,1,2",
            "-q",
        ])
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (_, data) = page_data(&path);
    // After ref 3 (step 3): pages 1 and 2 are next used at steps 5 and 6, 3 never.
    let notes: Vec<String> = data["state"][2]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["note"]["text"].as_str().unwrap().to_owned())
        .collect();
    let frames: Vec<u64> = data["report"]["steps"][2]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap())
        .collect();
    assert_eq!(frames, [3, 2, 1], "farthest next use first");
    assert_eq!(notes, ["never", "step 6", "step 5"]);
    let why = data["state"][3]["why"].as_str().unwrap();
    assert!(why.starts_with("3 is never used again"), "{why}");

    let path = dir.path().join("aging.html");
    vmsim()
        .args([
            "policy", "-p", "aging", "-f", "2", "--tick", "1", "--refs", "1,2,1,3",
        ])
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (_, data) = page_data(&path);
    let counters: Vec<&str> = data["state"][2]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["note"]["text"].as_str().unwrap())
        .collect();
    // Ticking after every reference: a load sets the counter to 10000000
    // (A cleared), each tick shifts it right with A entering at the top.
    // 1: loaded, tick (01000000), tick (00100000), used, tick (10010000);
    // 2: loaded, tick (01000000), tick (00100000). Smallest first.
    assert_eq!(counters, ["00100000", "10010000"]);
}

#[test]
fn policy_page_of_a_trace_steps_through_its_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.html");
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vmsim-trace/tests/data/true.lackey.zst"
    );
    vmsim()
        .args([
            "policy",
            "-p",
            "lru",
            "-f",
            "16",
            trace,
            "-q",
            "--trace-steps",
            "25",
        ])
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (_, data) = page_data(&path);
    assert_eq!(data["report"]["steps"].as_array().unwrap().len(), 25);
    assert_eq!(
        data["report"]["references"], 168_044,
        "totals of the whole trace"
    );
}

#[test]
fn explain_page_has_each_entry_split_into_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.html");
    let args = [
        "explain",
        "--arch",
        "sv39",
        "--mem",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sv39.img"),
        "--root",
        "0x1000",
        "0x40415678",
    ];
    let want = report_of(json(&args));
    vmsim()
        .args(args)
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (page, data) = page_data(&path);
    self_contained(&page);
    assert_eq!(data["report"], want);
    let leaf = &data["walk_detail"][1];
    let ppn = leaf["layout"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "PPN")
        .unwrap();
    assert_eq!(ppn["value"].as_u64().unwrap() << 12, 0x8020_0000);
    // The entries around the one read, from the image: index 2 is the leaf.
    let window = leaf["window"].as_array().unwrap();
    let read = window.iter().find(|w| w["index"] == 2).unwrap();
    assert_eq!(read["raw"], want["walk"][1]["raw"]);
    assert_eq!(read["kind"], "leaf");
}

#[test]
fn embedded_strings_cannot_end_the_data_script() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.html");
    let name = r#"</script><script>alert("x")</script><!--"#;
    vmsim()
        .args(["explain", "--segments"])
        .arg(format!("{name}=0:0x3000:0x200"))
        .arg("0x10")
        .arg("--html")
        .arg(&path)
        .assert()
        .success();
    let (page, data) = page_data(&path);
    assert_eq!(data["report"]["name"], name);
    assert_eq!(page.matches("</script>").count(), 2, "only the page's own");
    assert!(!page.contains("<script>alert"));
}

#[test]
fn alloc_page_embeds_the_json_report_and_the_text_lines() {
    let dir = tempfile::tempdir().unwrap();
    for (i, args) in [
        vec!["alloc", "--heap", "100", "--ops", "a10,a20,f0,a5"],
        vec![
            "alloc",
            "--allocator",
            "buddy",
            "--heap",
            "64",
            "--ops",
            "a8,a8,f0",
        ],
        vec![
            "alloc",
            "--allocator",
            "slab",
            "--heap",
            "16",
            "--ops",
            "a100,f0",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("a{i}.html"));
        let want = report_of(json(&args));
        // --quiet leaves the steps out of stdout, not out of the page.
        vmsim()
            .args(&args)
            .args(["--quiet", "--html"])
            .arg(&path)
            .assert()
            .success();
        let (page, data) = page_data(&path);
        self_contained(&page);
        assert_eq!(data["report"], want, "{args:?}");
        assert_eq!(
            data["text"].as_array().unwrap().len(),
            want["steps"].as_array().unwrap().len()
        );
    }
}

#[test]
fn a_page_is_never_written_over_a_directory_or_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let err = one_line_error(&[
        "policy".as_ref(),
        "-p".as_ref(),
        "fifo".as_ref(),
        "-f".as_ref(),
        "2".as_ref(),
        "--refs".as_ref(),
        "1,2".as_ref(),
        "--html".as_ref(),
        sub.as_os_str(),
    ]);
    assert!(err.contains("--html") && err.contains("directory"), "{err}");
    #[cfg(unix)]
    {
        let target = dir.path().join("target.html");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = one_line_error(&[
            "alloc".as_ref(),
            "--heap".as_ref(),
            "10".as_ref(),
            "--ops".as_ref(),
            "a1".as_ref(),
            "--html".as_ref(),
            link.as_os_str(),
        ]);
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}

const FORK_COW_SWAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fork-cow-swap.toml");

/// `run --html`: the page embeds the report `--json` prints (stepping
/// through the first references changes nothing in the run), and each step
/// says what the engine did: the first touch of a page is a demand-zero
/// fault that maps a fresh frame, a COW copy drops the shared frame's
/// reference count and maps a new one, an eviction and a swap-in show in
/// the paging counters.
#[test]
fn run_page_embeds_the_report_and_what_each_reference_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.html");
    let plain = json(&["run", "-q", FORK_COW_SWAP]);
    let with_page = json(&[
        "run",
        "-q",
        FORK_COW_SWAP,
        "--html",
        path.to_str().unwrap(),
        "--trace-steps",
        "30",
    ]);
    assert_eq!(
        plain, with_page,
        "observing the first references changed the run"
    );
    let (page, data) = page_data(&path);
    self_contained(&page);
    assert_eq!(data["page"], "run");
    assert_eq!(data["report"], report_of(plain.clone()));
    let steps = data["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 30);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["n"], i as u64 + 1, "one reference per step");
        let l1 = &s["tlb"][0];
        assert!(
            l1["lookups"].as_u64().unwrap() >= 1,
            "every reference probes L1: {s}"
        );
    }
    // The first reference: a store to an untouched page: L1 and L2 miss, a
    // walk that faults, a demand-zero frame, the retried walk sets A and D.
    let first = &steps[0];
    assert_eq!(first["kind"], "store");
    assert_eq!(first["va"], "0x10000000");
    assert_eq!(first["kernel"]["demand_zero"], 1, "{first}");
    assert_eq!(first["mmu_faults"]["not_present"], 1, "{first}");
    let leaf = first["walk"].as_array().unwrap().last().unwrap();
    assert_eq!(leaf["kind"], "leaf");
    let bits: Vec<&str> = leaf["bits_after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(bits.contains(&"A") && bits.contains(&"D"), "{bits:?}");
    let pfn = first["translation"]["pfn"].as_u64().unwrap();
    assert!(
        first["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["pfn"] == pfn
                && f["use"] == "data"
                && f["refs"] == 1
                && f["was_use"] == "free"),
        "the demand-zero frame: {first}"
    );
    // After the fork, frames are shared (two references each); a COW copy
    // maps the writer's page to a frame of its own, newly taken.
    assert!(
        steps.iter().any(|s| s["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["use"] == "data" && f["refs"] == 2)),
        "a frame shared by parent and child"
    );
    let cow = steps
        .iter()
        .find(|s| s["kernel"]["cow_copies"] == 1)
        .expect("a COW copy in the first 30 references");
    assert_eq!(cow["process"], "child");
    let copy = cow["translation"]["pfn"].clone();
    let page = cow["policy"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pfn"] == copy)
        .expect("the copy is evictable");
    assert_eq!(
        page["maps"],
        serde_json::json!([[2, "0x10000000"]]),
        "the copy is the child's alone: {cow}"
    );
    // Evictions and swap-ins, with the policy's order.
    assert!(
        steps
            .iter()
            .any(|s| s["paging"]["swap_outs"].as_u64() > Some(0)),
        "an eviction"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["paging"]["swap_ins"].as_u64() > Some(0)),
        "a swap-in"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["policy"]["count"].as_u64() > Some(0))
    );
}

/// `--trace-steps` needs `--html`; a page destination that is a directory
/// is refused before the run.
#[test]
fn run_html_is_checked_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = one_line_error(&["run", "-q", "--trace-steps", "5"]);
    assert!(err.contains("--html"), "{err}");
    let err = one_line_error(&["run", "-q", "--html", dir.path().to_str().unwrap()]);
    assert!(err.contains("directory"), "{err}");
}
