//! Checkpoint files: the container (magic, version, section headers and
//! their CRC-32C, lengths against the file and the load limit, zstd
//! payloads, the END section) and the sections behind it. Never panics. A
//! full checkpoint that reads is restored (its inputs are generators, so
//! nothing is looked up on disk) and must stand at the reference its header
//! names, and run on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsim::checkpoint::Checkpoint;
use vmsim::sim::Simulation;

fuzz_target!(|data: &[u8]| {
    let Ok(ck) = Checkpoint::from_bytes(data.to_vec(), "fuzz.vmck") else {
        return;
    };
    let Ok(mut sim) = Simulation::restore(&ck, &[]) else {
        return;
    };
    assert_eq!(sim.references(), ck.header().references);
    let _ = sim.run_until(ck.header().references + 1000, &mut ());
});
