//! `vmsim alloc`: the course's allocation examples and hand-worked textbook
//! exercises. Every expected value below was worked out by hand from the
//! rules in `vmsim alloc --help` (the working is in the comments), not
//! copied from the program's output.

use serde_json::{Value, json};

use crate::common::{json, one_line_error, text};

/// The free list after each step, as (addr, size) pairs.
fn lists(v: &Value) -> Vec<Vec<(u64, u64)>> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            s["free_list"]
                .as_array()
                .expect("free_list")
                .iter()
                .map(|b| {
                    (
                        b["addr"].as_u64().expect("addr"),
                        b["size"].as_u64().expect("size"),
                    )
                })
                .collect()
        })
        .collect()
}

fn field(v: &Value, key: &str) -> Vec<Value> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s[key].clone())
        .collect()
}

#[test]
fn ostep_question_1_best_fit_address_order() {
    // OSTEP ch. 17 homework, question 1 (malloc.py -n 10 -H 0 -p BEST -s 0):
    // heap of 100 at 1000, best fit, address order, no coalescing.
    let v = json(&[
        "alloc",
        "--heap",
        "100",
        "--base",
        "1000",
        "--fit",
        "best",
        "--ops",
        "+3,-0,+5,-1,+8,-2,+8,-3,+2,+7",
    ]);
    // +3: the only block, 1000; left 1003+97.
    // -0: 1000+3 goes back, address order: [1000+3, 1003+97] (no coalescing).
    // +5: blocks >= 5: only 97 -> 1003; left 1008+92.
    // -1: [1000+3, 1003+5, 1008+92].
    // +8: >= 8: only 92 -> 1008; left 1016+84.
    // -2: [1000+3, 1003+5, 1008+8, 1016+84].
    // +8: the smallest >= 8 is 8 (exact): 1008 leaves the list.
    // -3: 1008+8 back.
    // +2: the smallest >= 2 is 3 at 1000: returns 1000, leaves 1002+1.
    // +7: the smallest >= 7 is 8 at 1008: leaves 1015+1.
    assert_eq!(
        field(&v, "ptr"),
        [1000, 1000, 1003, 1003, 1008, 1008, 1008, 1008, 1000, 1008]
            .iter()
            .map(|&p| json!(p))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lists(&v),
        vec![
            vec![(1003, 97)],
            vec![(1000, 3), (1003, 97)],
            vec![(1000, 3), (1008, 92)],
            vec![(1000, 3), (1003, 5), (1008, 92)],
            vec![(1000, 3), (1003, 5), (1016, 84)],
            vec![(1000, 3), (1003, 5), (1008, 8), (1016, 84)],
            vec![(1000, 3), (1003, 5), (1016, 84)],
            vec![(1000, 3), (1003, 5), (1008, 8), (1016, 84)],
            vec![(1002, 1), (1003, 5), (1008, 8), (1016, 84)],
            vec![(1002, 1), (1003, 5), (1015, 1), (1016, 84)],
        ]
    );
    // Best fit examines every element of the list it searches: +3 sees 1,
    // +5 sees 2 ([1000+3, 1003+97]), the first +8 sees 3, the second +8 4,
    // +2 4, +7 4.
    let searched: Vec<u64> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["op"].as_str().is_some_and(|o| o.starts_with('a')))
        .map(|s| s["searched"].as_u64().expect("searched"))
        .collect();
    assert_eq!(searched, [1, 2, 3, 4, 4, 4]);
    // End: 1 + 5 + 1 + 84 = 91 free, largest 84: external 1 - 84/91 = 0.0769.
    assert_eq!(v["totals"]["end"]["free_bytes"], 91);
    assert_eq!(v["totals"]["end"]["external_fragmentation"], 0.076);
}

#[test]
fn course_external_fragmentation_example() {
    // 16 units; alloc(2), alloc(4) x3 packed in order; free the 2; alloc(4)
    // fails: 4 free, but as two holes of 2 (0..2 and 14..16).
    let v = json(&["alloc", "--heap", "16", "--ops", "a2,a4,a4,a4,f0,a4"]);
    assert_eq!(
        field(&v, "outcome"),
        [
            "allocated",
            "allocated",
            "allocated",
            "allocated",
            "freed",
            "failed"
        ]
        .map(Value::from)
        .to_vec()
    );
    assert_eq!(lists(&v)[5], [(0, 2), (14, 2)]);
    // 1 - 2/4 = 0.5.
    assert_eq!(v["totals"]["end"]["external_fragmentation"], 0.5);
    assert_eq!(v["totals"]["failures"], 1);
    // The allocator that leaves a gap after alloc(2): the 4s go to 4, 8, 12;
    // free(2) merges with the gap into 0..4, so alloc(4) gets 0.
    let v = json(&[
        "alloc",
        "--heap",
        "16",
        "--fit",
        "size-aligned",
        "--coalesce=address",
        "--ops",
        "a2,a4,a4,a4,f0,a4",
    ]);
    assert_eq!(
        field(&v, "ptr"),
        [0, 4, 8, 12, 0, 0].map(Value::from).to_vec()
    );
    assert_eq!(v["totals"]["failures"], 0);
}

#[test]
fn headers_and_alignment() {
    // Header 4, align 4, heap 100 at 1000.
    // a3: round 3 up to 4, + 4 = block of 8 at 1000, pointer 1004.
    // a8: 8 + 4 = 12 at 1008, pointer 1012; left 1020+80.
    // f0: 1000+8 back: [1000+8, 1020+80].
    // a1: 4 + 4 = 8: first fit takes 1000+8 whole, pointer 1004.
    // Internal fragmentation of the live ones: (12 - 8) + (8 - 1) = 11.
    let v = json(&[
        "alloc",
        "--heap",
        "100",
        "--base",
        "1000",
        "--header",
        "4",
        "--align",
        "4",
        "--ops",
        "a3,a8,f0,a1",
    ]);
    assert_eq!(
        field(&v, "ptr"),
        [1004, 1012, 1004, 1004].map(Value::from).to_vec()
    );
    assert_eq!(v["steps"][0]["block"], json!({"addr": 1000, "size": 8}));
    assert_eq!(lists(&v)[3], [(1020, 80)]);
    assert_eq!(v["totals"]["end"]["internal_fragmentation"], 11);
}

#[test]
fn worst_and_next_fit() {
    // Heap 100 at 0. a10 a10 a10 f0 f2 with address order, no coalescing:
    // free list [0+10, 20+10, 30+70]... no: f2 frees 20..30, and 30+70 is
    // not merged: [0+10, 20+10, 30+70].
    // Worst fit a5: the largest is 30+70: returns 30 (searched 3).
    let v = json(&[
        "alloc",
        "--heap",
        "100",
        "--fit",
        "worst",
        "--ops",
        "a10,a10,a10,f0,f2,a5",
    ]);
    assert_eq!(lists(&v)[4], [(0, 10), (20, 10), (30, 70)]);
    assert_eq!(v["steps"][5]["ptr"], 30);
    assert_eq!(v["steps"][5]["searched"], 3);
    // Next fit, same ops then a5 a5: the previous allocation (a10 at 20)
    // left 30+70 over, so the search starts there: a5 -> 30 (1 element),
    // and the leftover 35+65 takes the next a5 -> 35. First fit would give 0.
    let v = json(&[
        "alloc",
        "--heap",
        "100",
        "--fit",
        "next",
        "--ops",
        "a10,a10,a10,f0,f2,a5,a5",
    ]);
    assert_eq!(v["steps"][5]["ptr"], 30);
    assert_eq!(v["steps"][5]["searched"], 1);
    assert_eq!(v["steps"][6]["ptr"], 35);
    let v = json(&[
        "alloc",
        "--heap",
        "100",
        "--fit",
        "first",
        "--ops",
        "a10,a10,a10,f0,f2,a5",
    ]);
    assert_eq!(v["steps"][5]["ptr"], 0);
}

#[test]
fn order_and_coalescing_interact_as_in_malloc_py() {
    // Heap 30: three 10-byte blocks fill it. Free 1, then 0, then 2.
    let ops = "a10,a10,a10,f1,f0,f2";
    // Address order + list coalescing merges everything: [0+30].
    let v = json(&["alloc", "--heap", "30", "--coalesce", "--ops", ops]);
    assert_eq!(lists(&v)[5], [(0, 30)]);
    // Head insertion + list coalescing:
    // f1: [10+10]. f0: [0+10, 10+10] -> 0 ends at 10: merged [0+20].
    // f2: [20+10, 0+20]: 20+10 ends at 30 (nothing there), and 0+20 is
    // listed after it, not before: no merge. Two blocks remain.
    let v = json(&[
        "alloc",
        "--heap",
        "30",
        "--order",
        "head",
        "--coalesce",
        "--ops",
        ops,
    ]);
    assert_eq!(lists(&v)[5], [(20, 10), (0, 20)]);
    // Boundary tags merge neighbours in memory wherever they are listed.
    let v = json(&[
        "alloc",
        "--heap",
        "30",
        "--order",
        "head",
        "--coalesce=address",
        "--ops",
        ops,
    ]);
    assert_eq!(lists(&v)[5], [(0, 30)]);
    // Size order, descending, no coalescing: f1 [10+10], f0 [10+10, 0+10]
    // (equal sizes keep their order, the freed one goes after), f2 likewise.
    let v = json(&[
        "alloc",
        "--heap",
        "30",
        "--order",
        "size-desc",
        "--ops",
        ops,
    ]);
    assert_eq!(lists(&v)[5], [(10, 10), (0, 10), (20, 10)]);
}

#[test]
fn course_buddy_example() {
    // A 64-page region. alloc(8): 64 -> 32+32 -> 16+16 -> 8+8, pages 0..8;
    // alloc(8): its buddy 8..16, no split; alloc(4): the other 16 (16..32)
    // -> 8+8 -> 4+4: pages 16..20. free the first 8: its buddy (8..16) is
    // allocated, no merge; free its buddy: 0..8 + 8..16 = a free 16 at 0.
    let v = json(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "64",
        "--ops",
        "a8,a8,a4,f0,f1",
    ]);
    assert_eq!(
        field(&v, "block"),
        [0, 8, 16, 0, 8].map(Value::from).to_vec()
    );
    assert_eq!(
        field(&v, "split_from"),
        [json!(6), json!(3), json!(4), Value::Null, Value::Null]
    );
    assert_eq!(
        field(&v, "merged_to"),
        [Value::Null, Value::Null, Value::Null, json!(3), json!(4)]
    );
    // After the last step: free 4 at 20, 8 at 24, 16 at 0, 32 at 32.
    assert_eq!(
        v["steps"][4]["free_lists"],
        json!([[], [], [20], [24], [0], [32], []])
    );
    assert_eq!(v["steps"][4]["free_pages"], 60);
    let t = text(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "64",
        "--ops",
        "a8,a8,a4,f0,f1",
    ]);
    assert!(t.contains("64 -> 32 -> 16 -> 8"), "{t}");
    // Internal fragmentation: a request of 3 pages takes a block of 4.
    let v = json(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "64",
        "--ops",
        "a3",
    ]);
    assert_eq!(v["totals"]["internal_fragmentation"], 1);
}

#[test]
fn course_slab_example() {
    // task_struct of 1.7 KiB = 1741 bytes: slots of 1744 (8-byte words).
    // SLUB: at least 8 objects -> 8 * 1744 = 13952 bytes -> order 2
    // (16 KiB); 16384 mod 1744 = 688 <= 16384/16: order 2, 9 objects per
    // slab. The 10th object needs a second slab (4 more pages).
    let ops = ["a1741"; 10].join(",");
    let v = json(&[
        "alloc",
        "--allocator",
        "slab",
        "--heap",
        "64",
        "--ops",
        &ops,
    ]);
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps[0]["cache_stats"]["objects_per_slab"], 9);
    assert_eq!(steps[0]["cache_stats"]["slab_order"], 2);
    assert_eq!(steps[0]["new_slab"], true);
    assert_eq!(steps[1]["addr"], 1744);
    assert!(steps[1..9].iter().all(|s| s["new_slab"] == false));
    assert_eq!(steps[9]["new_slab"], true);
    assert_eq!(steps[9]["buddy_free_pages"], 56);
    // Per object: 3 bytes of padding and nothing else; the slab tails are
    // 688 bytes each, and the 8 free slots of the second slab 8 * 1744.
    let cache = &v["totals"]["caches"][0];
    assert_eq!(cache["tail_bytes"], 2 * 688);
    assert_eq!(cache["padding_bytes"], 10 * 3);
    assert_eq!(cache["free_slot_bytes"], 8 * 1744);
}

#[test]
fn free_of_a_failed_allocation_is_free_null_and_text_says_so() {
    let t = text(&["alloc", "--heap", "10", "--ops", "a20,f0"]);
    assert!(t.contains("alloc(20) failed: returned NULL"), "{t}");
    assert!(t.contains("ptr[0] is NULL, nothing to do"), "{t}");
}

#[test]
fn quiet_json_has_totals_only() {
    let v = json(&["alloc", "--heap", "10", "--ops", "a2", "--quiet"]);
    assert_eq!(v["steps"], Value::Null);
    assert_eq!(v["allocator"], "free-list");
    assert_eq!(v["config"]["placement"], "first-fit");
}

#[test]
fn bad_input_is_one_line() {
    let e = one_line_error(&["alloc", "--heap", "10", "--ops", "a2,f1"]);
    assert!(e.contains("'f1' frees allocation 1"), "{e}");
    let e = one_line_error(&["alloc", "--heap", "10", "--ops", "a2,q"]);
    assert!(e.contains("--ops:1: 'q' is not an operation"), "{e}");
    let e = one_line_error(&["alloc", "--ops", "a2"]);
    assert!(e.contains("--heap"), "{e}");
    let e = one_line_error(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "64",
        "--fit",
        "best",
        "--ops",
        "a1",
    ]);
    assert!(
        e.contains("--fit does not apply to the buddy allocator"),
        "{e}"
    );
    let e = one_line_error(&["alloc", "--heap", "0", "--ops", "a1"]);
    assert!(e.contains("empty"), "{e}");
    let e = one_line_error(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "64",
        "--ops",
        "a100",
    ]);
    assert!(e.contains("above the largest order 6"), "{e}");
    let e = one_line_error(&["alloc", "--heap", "10", "--ops-file", "/nonexistent/ops"]);
    assert!(e.contains("cannot read"), "{e}");
}

#[test]
fn quiet_runs_keep_no_steps_and_huge_labs_are_refused() {
    // 2000 allocations of 1 byte then their frees: totals only.
    let ops: Vec<String> = (0..2000)
        .map(|_| "a1".to_owned())
        .chain((0..2000).map(|i| format!("f{i}")))
        .collect();
    let v = json(&[
        "alloc",
        "--heap",
        "4K",
        "--quiet",
        "--coalesce",
        "--ops",
        &ops.join(","),
    ]);
    assert_eq!(v["steps"], Value::Null);
    assert_eq!(v["totals"]["frees"], 2000);
    // Freed in allocation order with address order and list coalescing,
    // every block merges back: one free block of 4096.
    assert_eq!(v["totals"]["end"]["free_blocks"], 1);
    let e = one_line_error(&[
        "alloc",
        "--allocator",
        "buddy",
        "--heap",
        "1G",
        "--ops",
        "a1",
    ]);
    assert!(e.contains("at most"), "{e}");
}
