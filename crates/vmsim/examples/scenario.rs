//! Run a scenario from code: the machine from a preset and `--set`-style
//! assignments, the processes as values (no TOML file), the report read as
//! a struct.
//!
//! The scenario is the course's fork with copy-on-write
//! (`examples/fork-cow.toml`): a parent maps 1000 pages and writes each,
//! forks, and waits; the child writes 10 of the pages. It runs on two
//! machines (x86-64, 4-level radix tables; RISC-V Sv39, 3 levels): the
//! kernel's work is the same (10 copies, nothing leaked), the walks differ.
//!
//!   cargo run -p vmsim --example scenario

use vmsim::config::ConfigBuilder;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{
    ForkPoint, ForkSpec, LayoutKind, MmapProt, MmapSpec, ProcessSpec, Scenario,
};

const BASE: u64 = 0x1000_0000;

fn process(name: &str, trace: String) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        trace: Some(trace),
        layout: LayoutKind::Standard,
        parent: None,
        brk: 0,
        mmap: Vec::new(),
        forks: Vec::new(),
        exit_after: None,
    }
}

fn fork_cow() -> Scenario {
    let mut parent = process(
        "parent",
        format!("synth:scan,bytes=4000KiB,stride=4096,write=1,base={BASE:#x}"),
    );
    parent.mmap.push(MmapSpec {
        addr: Some(BASE),
        len: 1000 * 4096,
        prot: MmapProt::RW,
        shared: false,
    });
    parent.forks.push(ForkSpec {
        child: 1,
        point: ForkPoint::After(1000),
        wait: true,
        vfork: false,
    });
    let mut child = process(
        "child",
        format!("synth:scan,bytes=40KiB,stride=4096,write=1,base={BASE:#x}"),
    );
    child.parent = Some(0);
    Scenario {
        description: "fork-cow: a parent touches 1000 pages, forks, the child writes 10".into(),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: vec![parent, child],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = fork_cow();
    println!("{}", scenario.description);
    println!(
        "{:<12} {:>10} {:>8} {:>11} {:>10} {:>12} {:>7}",
        "machine", "references", "walks", "walk refs", "COW copies", "demand-zero", "leaked"
    );
    for preset in ["x86-64", "riscv-sv39"] {
        let cfg = ConfigBuilder::preset(Some(preset))?
            .set("memory.frames=4096")?
            .build()?;
        let report = Simulation::new(cfg)?.run(&scenario, &mut ())?;
        let demand_zero: u64 = report.processes.iter().map(|p| p.faults.demand_zero).sum();
        println!(
            "{:<12} {:>10} {:>8} {:>11} {:>10} {:>12} {:>7}",
            preset,
            report.references,
            report.walks,
            report.walk_memory_references,
            report.cow_copies,
            demand_zero,
            report.frames_leaked
        );
        // The kernel's work does not depend on the MMU.
        assert_eq!(report.references, 1010);
        assert_eq!(report.cow_copies, 10, "one copy per page the child wrote");
        assert_eq!(demand_zero, 1000, "one zero page per page the parent wrote");
        assert_eq!(report.frames_leaked, 0);
        let child = &report.processes[1];
        assert_eq!((child.name.as_str(), child.faults.cow_copy), ("child", 10));
    }
    Ok(())
}
