//! Rewind-replay: the last writer of an address, found by restoring older
//! and older checkpoints, equals a brute-force scan of the real trace; and
//! the state at any reference shows the writer's stamp in memory.

use vmsim::addr::VirtAddr;
use vmsim::checkpoint::Chain;
use vmsim::replay::{last_writer, state_at};
use vmsim_trace::{AccessKind, TraceSource};

use super::checkpoint::{config, data, run_with_chain, traces};

/// The brute-force answer: scan the trace from the start.
fn scan(trace: &[vmsim_trace::Access], va: u64, before: u64) -> Option<(u64, Option<u64>)> {
    let mut last_instr = None;
    let mut found = None;
    for (i, a) in trace.iter().enumerate() {
        let number = i as u64 + 1;
        if number >= before {
            break;
        }
        if a.kind == AccessKind::Instr {
            last_instr = Some(a.va);
        } else if a.kind.writes() && a.va <= va && va - a.va < u64::from(a.size) {
            found = Some((number, last_instr));
        }
    }
    found
}

#[test]
fn replay_finds_the_last_writer_a_forward_scan_finds() {
    let path = data("true.lackey.zst");
    let trace = vmsim_trace::open(&path)
        .expect("trace")
        .collect_all()
        .expect("read");
    let cfg = config(&["checkpoint.every=20000"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_with_chain(&cfg, &traces(&[&path]), dir.path());
    assert_eq!(report.references, trace.len() as u64);
    let chain = Chain::open(dir.path()).expect("chain");
    // Written addresses from every part of the run, and one never written.
    let writes: Vec<(usize, u64)> = trace
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind.writes())
        .map(|(i, a)| (i, a.va))
        .collect();
    let mut cases = Vec::new();
    for k in [3usize, 97, 1000, 4000, 7000, 9000, 11_000] {
        let (i, va) = writes[k.min(writes.len() - 1)];
        cases.push((va, i as u64 + 2)); // just after that write
        cases.push((va, u64::MAX)); // by the end
        cases.push((va, i as u64 + 1)); // just before it: an earlier writer, or none
    }
    cases.push((0x1234_5678_9000, u64::MAX));
    let mut rewound = false;
    for (va, before) in cases {
        let want = scan(&trace, va, before);
        let a = last_writer(
            &chain,
            &[],
            VirtAddr::new(va),
            None,
            (before != u64::MAX).then_some(before),
        )
        .expect("replay");
        let got = a.writer.as_ref().map(|w| (w.reference, w.instruction));
        assert_eq!(got, want, "{va:#x} before {before}");
        assert!(a.replayed <= a.from_start, "{a:?}");
        rewound |= a.spans.len() > 2;
        if let Some(w) = &a.writer {
            // The bytes at the address, right after the writer, are its
            // stamp: the process's reference number (one process here).
            let u = state_at(&chain, &[], VirtAddr::new(va), None, w.reference).expect("until");
            let bytes = u.states[0].bytes.expect("mapped");
            let stamp = w.reference.to_le_bytes();
            assert_eq!(
                bytes[0],
                stamp[((va - w.va) % 8) as usize],
                "{va:#x}: {u:?}"
            );
            assert_eq!(u.states[0].residence, "resident");
        }
    }
    assert!(rewound, "some search rewound past several checkpoints");
}
