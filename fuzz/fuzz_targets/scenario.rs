//! Scenario files (TOML): parsing and checking arbitrary text never panics,
//! and a scenario that is accepted is consistent (forks name processes of
//! the scenario, parents match).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vmsim_trace::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Scenario::sniff(data);
    let Ok(s) = Scenario::parse(text, "fuzz.toml", Path::new("/nonexistent")) else {
        return;
    };
    // A quantum, when given, is non-zero by its type (NonZeroU64).
    assert!(!s.processes.is_empty());
    for (i, p) in s.processes.iter().enumerate() {
        for f in &p.forks {
            assert!(f.child < s.processes.len());
            assert_eq!(s.processes[f.child].parent, Some(i));
        }
        assert!(p.mmap.iter().all(|m| m.len > 0));
    }
});
