//! Configuration and scenarios parsed once, at the boundary: the machine
//! spec holds the format it read (the file is not read again), an explicit
//! scenario quantum is honoured even when it equals the default, and a
//! scenario's `prot` is checked when the scenario is read.

use std::path::Path;

use vmsim::config::{ConfigBuilder, ConfigError, MachineSpec};
use vmsim::kernel::SystemPolicy;
use vmsim::report::Report;
use vmsim::sim::Simulation;
use vmsim_trace::scenario::{MmapProt, Scenario, ScenarioError};

/// A 32-bit two-level format with x86-32's bits, written by a user.
const TINY32: &str = r#"
name = "tiny32"
va_bits = 32
page_size = "4KiB"
level_bits = [10, 10]
entry_bytes = 4
valid = 0
writable = 1
user = 2
accessed = 5
dirty = 6
frame_lo = 12
frame_bits = 20
"#;

fn two_processes(quantum: Option<u64>) -> Scenario {
    let q = quantum.map_or(String::new(), |q| format!("quantum = {q}\n"));
    let text = format!(
        r#"{q}
[[process]]
name = "a"
trace = "synth:scan,bytes=160KiB,stride=4096,passes=4,write=1,base=0x10000000"
mmap = [{{ addr = 0x10000000, len = "160KiB", prot = "rw" }}]

[[process]]
name = "b"
trace = "synth:scan,bytes=160KiB,stride=4096,passes=4,base=0x20000000"
mmap = [{{ addr = 0x20000000, len = "160KiB", prot = "r" }}]
"#
    );
    Scenario::parse(&text, "two.toml", Path::new(".")).expect("scenario")
}

fn spec(sets: &[&str]) -> Result<MachineSpec, ConfigError> {
    sets.iter()
        .try_fold(ConfigBuilder::preset(Some("classroom"))?, |b, s| b.set(s))
        .and_then(ConfigBuilder::build)
}

fn run(spec: MachineSpec, scenario: &Scenario) -> Report {
    Simulation::new(spec)
        .expect("machine")
        .run(scenario, &mut ())
        .expect("run")
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).expect("json")
}

/// The format file is read when the spec is built, and never again: the
/// machine is built and runs after the file is gone.
#[test]
fn a_format_file_is_read_once_when_the_spec_is_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny32.toml");
    std::fs::write(&path, TINY32).expect("write");
    let key = format!("paging.format_file={}", path.display());
    let s = spec(&[&key]).expect("spec");
    assert_eq!(s.format().name(), "tiny32");
    std::fs::remove_file(&path).expect("remove");
    let scenario = two_processes(None);
    let r = run(s.clone(), &scenario);
    assert_eq!(r.machine.arch, "tiny32");
    assert_eq!(r.references, 2 * 4 * 40);
    assert_eq!(r.frames_leaked, 0);
    // The same machine from the built-in format gives the same run.
    let builtin = run(spec(&[]).expect("spec"), &scenario);
    assert_eq!(r.references, builtin.references);
    assert_eq!(r.tlb_misses, builtin.tlb_misses);
    assert_eq!(r.kernel.demand_zero, builtin.kernel.demand_zero);
    // Building a spec needs the file: now it is gone, the key is named.
    let e = spec(&[&key]).expect_err("no file");
    assert!(
        e.to_string().starts_with("config key `paging.format_file`"),
        "{e}"
    );
}

/// `quantum = 10000` in a scenario used to be taken for "not given"
/// (it equals the old default) and replaced by `run.quantum`.
#[test]
fn an_explicit_scenario_quantum_is_honoured_even_at_the_default_value() {
    let explicit = two_processes(Some(10_000));
    let unset = two_processes(None);
    assert_eq!(explicit.quantum.map(|q| q.get()), Some(10_000));
    assert_eq!(unset.quantum, None);
    let machine_10k = || spec(&[]).expect("spec");
    let machine_50 = || spec(&["run.quantum=50"]).expect("spec");
    // Without a quantum of its own, the scenario runs on the machine's.
    let on_50 = json(&run(machine_50(), &unset));
    let on_10k = json(&run(machine_10k(), &unset));
    assert_ne!(on_50, on_10k, "the workload is sensitive to the quantum");
    // With one, the machine's does not matter, whatever the value.
    assert_eq!(json(&run(machine_50(), &explicit)), on_10k);
    let explicit_50 = two_processes(Some(50));
    assert_eq!(json(&run(machine_10k(), &explicit_50)), on_50);
}

/// A `prot` that is not `rwx` letters is refused when the scenario is read,
/// naming the process and the field (it used to fall back to read-write).
#[test]
fn a_bad_prot_is_refused_at_load_naming_the_field() {
    let good = r#"
[[process]]
name = "p"
trace = "synth:scan,bytes=8KiB,stride=4096"
mmap = [{ addr = 0x10000000, len = "8KiB", prot = "r-x" }, { len = "4KiB" }]
"#;
    let s = Scenario::parse(good, "s.toml", Path::new(".")).expect("valid");
    let m = &s.processes[0].mmap;
    assert_eq!(
        m[0].prot,
        MmapProt {
            read: true,
            write: false,
            exec: true
        }
    );
    assert_eq!(m[1].prot, MmapProt::RW, "the default");
    for bad in ["rw+", "read", "RW", "r w"] {
        let text = good.replace("\"r-x\"", &format!("{bad:?}"));
        match Scenario::parse(&text, "s.toml", Path::new(".")) {
            Err(e @ ScenarioError::Invalid { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("s.toml: process 'p': mmap[0].prot = ")
                        && msg.contains(bad)
                        && msg.contains("expected letters r, w, x"),
                    "{msg}"
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // A scenario built in code or read back from a checkpoint is typed the same.
    let bytes = postcard::to_allocvec(&s).expect("serialize");
    let back: Scenario = postcard::from_bytes(&bytes).expect("deserialize");
    assert_eq!(back, s);
}

/// The policy is an enum from the moment the configuration is read: an
/// oracle is refused naming the key, never handed to the kernel.
#[test]
fn the_kernel_policy_is_parsed_once_and_oracles_are_refused() {
    let s = spec(&["kernel.policy=second-chance"]).expect("alias");
    assert_eq!(s.config().kernel.policy, SystemPolicy::Clock);
    for (set, says) in [
        ("kernel.policy=lru", "oracle policy"),
        ("kernel.policy=nope", "unknown policy 'nope'"),
    ] {
        let e = spec(&[set]).expect_err(set).to_string();
        assert!(
            e.starts_with("config key `kernel.policy`: ") && e.contains(says),
            "{e}"
        );
    }
}

/// A section for a structure the machine does not use is refused, not
/// silently ignored.
#[test]
fn a_section_for_another_structure_is_refused() {
    for (sets, key) in [
        (&["paging.hashed.buckets=256"][..], "paging.hashed"),
        (
            &["paging.structure=hashed", "paging.inverted.search=linear"][..],
            "paging.inverted",
        ),
    ] {
        let e = spec(sets).expect_err("unused section").to_string();
        assert!(
            e.starts_with(&format!("config key `{key}`: only used with")),
            "{e}"
        );
    }
}
