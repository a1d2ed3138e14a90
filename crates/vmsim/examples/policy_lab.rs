//! The policy lab from code: page-replacement policies over a reference
//! string, with no TLB and no page tables — what `vmsim policy` does.
//!
//! Belady's anomaly on the textbook string 1 2 3 4 1 2 5 1 2 3 4 5: FIFO
//! faults 9 times with 3 frames and 10 times with 4; LRU (a stack
//! algorithm) never faults more with more frames; OPT is the floor. Then
//! every policy on the same string, and FIFO's step-by-step outcomes.
//!
//!   cargo run -p vmsim --example policy_lab

use std::num::NonZeroUsize;

use vmsim::reclaim::lab::{self, DenseTrace, Detail};
use vmsim::reclaim::{PolicyConfig, PolicyKind};

fn misses(kind: PolicyKind, trace: &DenseTrace, frames: usize) -> u64 {
    let frames = NonZeroUsize::new(frames).expect("frames > 0");
    lab::run(
        kind,
        &PolicyConfig::default(),
        trace,
        frames,
        Detail::Totals,
        |_| {},
    )
    .misses
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trace = DenseTrace::parse(b"1 2 3 4 1 2 5 1 2 3 4 5", "belady")?;

    println!("{:<10} {:>8} {:>8}", "policy", "3 frames", "4 frames");
    for kind in PolicyKind::ALL {
        let (three, four) = (misses(kind, &trace, 3), misses(kind, &trace, 4));
        println!("{:<10} {three:>8} {four:>8}", kind.name());
    }

    // Belady's anomaly: more frames, more faults, for FIFO.
    assert_eq!(misses(PolicyKind::Fifo, &trace, 3), 9);
    assert_eq!(misses(PolicyKind::Fifo, &trace, 4), 10);
    // A stack algorithm has no anomaly; OPT is the least any policy can do.
    assert_eq!(misses(PolicyKind::Lru, &trace, 3), 10);
    assert_eq!(misses(PolicyKind::Lru, &trace, 4), 8);
    assert_eq!(misses(PolicyKind::Opt, &trace, 3), 7);
    assert_eq!(misses(PolicyKind::Opt, &trace, 4), 6);
    for kind in PolicyKind::ALL {
        for frames in 1..=5 {
            assert!(misses(kind, &trace, frames) >= misses(PolicyKind::Opt, &trace, frames));
        }
    }

    // FIFO with 3 frames, reference by reference.
    let mut line = String::new();
    let totals = lab::run(
        PolicyKind::Fifo,
        &PolicyConfig::default(),
        &trace,
        NonZeroUsize::new(3).expect("3"),
        Detail::Contents,
        |step| {
            let page = trace.pages()[step.id as usize];
            let resident: Vec<String> = step
                .resident
                .iter()
                .map(|&id| trace.pages()[id as usize].to_string())
                .collect();
            line.push_str(&format!(
                "{page}{} [{}]  ",
                if step.hit { "" } else { "*" },
                resident.join(" ")
            ));
        },
    );
    println!("FIFO, 3 frames (* = fault): {}", line.trim_end());
    assert_eq!((totals.refs, totals.hits, totals.misses), (12, 3, 9));
    Ok(())
}
