//! The same workload through the whole machine (MMU and kernel) on each
//! translation structure: the kernel's behaviour is the same, only the
//! walk's cost and the page-table memory differ.

use vmsim::config::ConfigBuilder;
use vmsim::report::Report;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::Scenario;

const FORK_COW: &str = r#"
description = "a parent writes 300 pages, forks and waits; the child writes 40 of them; the parent writes all 300 again"
quantum = 500

[[process]]
name = "parent"
trace = "synth:scan,bytes=1200KiB,stride=4096,passes=2,write=1"
mmap = [{ addr = 0x10000000, len = "1200KiB", prot = "rw" }]
fork = [{ child = "child", after = 300, wait = true }]

[[process]]
name = "child"
parent = "parent"
trace = "synth:scan,bytes=160KiB,stride=4096,write=1"
"#;

fn run(structure: &str) -> Report {
    let scenario =
        Scenario::parse(FORK_COW, "fork-cow.toml", std::path::Path::new(".")).expect("scenario");
    let cfg = ConfigBuilder::preset(Some("x86-64"))
        .and_then(|b| b.set("memory.frames=8192"))
        .and_then(|b| b.set(&format!("paging.structure={structure}")))
        .and_then(|b| b.set("run.check=true"))
        .and_then(ConfigBuilder::build)
        .expect("config");
    Simulation::new(cfg)
        .expect("machine")
        .run(&scenario, &mut ())
        .expect("run")
}

#[test]
fn every_structure_runs_the_same_workload_the_same_way() {
    let radix = run("radix");
    assert_eq!(radix.machine.structure, "radix");
    assert!(
        radix.table_probes.is_none(),
        "radix walks, it does not probe"
    );
    for structure in ["inverted", "hashed"] {
        let r = run(structure);
        assert_eq!(r.machine.structure, structure);
        assert_eq!(r.references, radix.references, "{structure}");
        assert_eq!(r.frames_leaked, 0, "{structure}");
        let (k, k0) = (&r.kernel, &radix.kernel);
        assert_eq!(
            (
                k.demand_zero,
                k.cow_copies,
                k.cow_reuses,
                k.forks,
                k.exits,
                k.segfaults
            ),
            (
                k0.demand_zero,
                k0.cow_copies,
                k0.cow_reuses,
                k0.forks,
                k0.exits,
                k0.segfaults
            ),
            "{structure}: the kernel did the same work"
        );
        // Every search is a walk of the table; its probes are the walk's reads.
        let p = r.table_probes.expect("probes counted");
        assert_eq!(p.total, r.walk_memory_references, "{structure}");
        assert_eq!(
            p.lookups,
            r.walks + r.faulting_walks + r.dirty_walks,
            "{structure}"
        );
        // The global table is page-table memory for the whole run.
        assert!(
            r.peak_page_table_frames > radix.peak_page_table_frames,
            "{structure}"
        );
        // Only the inverted table must move a shared frame's entry.
        let reloads = k.alias_reloads;
        if structure == "inverted" {
            // The child's first touch of each of its 40 pages takes the
            // frame's entry from the parent; its copy frees the entry, which
            // the parent's next touch takes back.
            assert_eq!(reloads, 2 * k.cow_copies, "{structure}");
            assert_eq!(k.cow_copies, 40);
        } else {
            assert_eq!(reloads, 0, "{structure}");
        }
    }
}
