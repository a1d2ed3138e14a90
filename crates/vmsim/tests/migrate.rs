//! Live migration between two simulations over an in-memory pipe: the
//! migrated process ends with the references, faults and memory (digest
//! per virtual page) of the same run without migration, in every mode;
//! incompatible machines and processes that cannot move are refused.

use vmsim::config::MachineSpec;
use vmsim::migrate::{
    Message, MigrateMode, MigrationReport, MsgRecv, MsgSend, answer, pipe, read_offer, receive,
};
use vmsim::report::{ProcessReport, Report};
use vmsim::sim::Simulation;
use vmsim_trace::scenario::Scenario;

use crate::checkpoint::{config, data, example, traces};

struct Pair {
    source: Report,
    sent: MigrationReport,
    dest: Option<Report>,
    received: Option<MigrationReport>,
}

/// Runs `scenario` on `src`, moving process `spec` at reference `at` in
/// `mode` to a machine configured by `dst`.
fn migrate(
    src: MachineSpec,
    dst: MachineSpec,
    scenario: &Scenario,
    spec: usize,
    at: u64,
    mode: MigrateMode,
) -> Pair {
    let ((mut stx, mut srx), (mut dtx, mut drx)) = pipe();
    let dest = std::thread::spawn(move || {
        let offer = read_offer(&mut drx).expect("offer");
        answer(&dst, &offer, &mut dtx)?;
        let mut incoming = receive(dst, offer, &mut dtx, &mut drx, &[])?;
        incoming.simulation_mut().set_digest_at_exit(true);
        let (r, m) = incoming
            .run((dtx, drx), &mut ())
            .map_err(vmsim::migrate::MigrateError::Sim)?;
        Ok::<_, vmsim::migrate::MigrateError>((r, m))
    });
    let mut sim = Simulation::new(src).expect("source");
    sim.set_digest_at_exit(true);
    sim.start(scenario).expect("start");
    let offer = sim.migration_offer(spec, mode, at).expect("offer");
    stx.send(&Message::Offer(offer)).expect("send offer");
    match srx.recv().expect("answer") {
        Message::Accept { .. } => {}
        other => {
            let source = sim.run_to_end(&mut (), None).expect("run");
            drop(stx);
            let _ = dest.join();
            return Pair {
                source,
                sent: MigrationReport {
                    aborted: Some(format!("{other:?}")),
                    ..MigrationReport::default()
                },
                dest: None,
                received: None,
            };
        }
    }
    sim.advance(at, &mut (), None).expect("run to the point");
    let sent = sim
        .migrate_out(spec, mode, &mut stx, &mut srx, &mut ())
        .expect("migrate");
    let source = sim.run_to_end(&mut (), None).expect("run on");
    drop(stx);
    let (dest, received) = match dest.join().expect("thread") {
        Ok((r, m)) => (Some(r), Some(m)),
        Err(_) => (None, None),
    };
    Pair {
        source,
        sent,
        dest,
        received,
    }
}

fn plain(cfg: MachineSpec, scenario: &Scenario) -> Report {
    let mut sim = Simulation::new(cfg).expect("sim");
    sim.set_digest_at_exit(true);
    sim.start(scenario).expect("start");
    sim.run_to_end(&mut (), None).expect("run")
}

fn process<'a>(r: &'a Report, name: &str) -> &'a ProcessReport {
    r.processes.iter().find(|p| p.name == name).expect(name)
}

fn digest(r: &Report, name: &str) -> (u64, String) {
    let d = r
        .memory_digests
        .iter()
        .find(|d| d.name == name)
        .expect(name);
    (d.pages, d.digest.clone())
}

/// The figures of `name` that do not depend on where its frames were: its
/// references, its memory by virtual page, its faults by kind (a
/// copy-on-write break that copied at the source may reuse at the
/// destination, where nobody shares the page; write-protect faults are the
/// tracker's, added by migration).
fn assert_same_process(migrated: &Report, unmigrated: &Report, name: &str) {
    let (a, b) = (process(migrated, name), process(unmigrated, name));
    assert_eq!(a.references, b.references, "{name}: references");
    assert_eq!(
        digest(migrated, name),
        digest(unmigrated, name),
        "{name}: memory"
    );
    let (fa, fb) = (a.faults, b.faults);
    assert_eq!(fa.demand_zero, fb.demand_zero, "{name}: demand-zero faults");
    assert_eq!(fa.stack_growth, fb.stack_growth, "{name}: stack growth");
    assert_eq!(fa.segfault, fb.segfault, "{name}: segfaults");
    assert_eq!(
        fa.cow_copy + fa.cow_reuse,
        fb.cow_copy + fb.cow_reuse,
        "{name}: copy-on-write breaks"
    );
    assert_eq!(fb.write_protect, 0);
}

const MODES: [MigrateMode; 3] = [
    MigrateMode::StopAndCopy,
    MigrateMode::PreCopy,
    MigrateMode::PostCopy,
];

#[test]
fn every_mode_moves_a_real_trace_with_nothing_lost() {
    let scenario = traces(&[&data("tinystatic.lackey.zst")]);
    let unmigrated = plain(config(&[]), &scenario);
    for mode in MODES {
        // The destination has another memory size: pages land elsewhere.
        let p = migrate(
            config(&["migrate.bandwidth=64", "migrate.latency=100"]),
            config(&["memory.frames=4096"]),
            &scenario,
            0,
            60_000,
            mode,
        );
        assert_eq!(p.sent.aborted, None, "{mode:?}");
        let dest = p.dest.expect("destination report");
        assert_same_process(&dest, &unmigrated, "p0");
        let recv = p.received.expect("destination's migration report");
        // Both sides report the same figures.
        assert_eq!(recv.total_bytes, p.sent.total_bytes, "{mode:?}");
        assert_eq!(recv.downtime, p.sent.downtime, "{mode:?}");
        assert_eq!(recv.total_time, p.sent.total_time, "{mode:?}");
        // Zero pages travel as their address only.
        assert!(
            p.sent.total_bytes > p.sent.state_bytes,
            "{mode:?}: {:?}",
            p.sent
        );
        assert!(p.sent.downtime > 0);
        match mode {
            MigrateMode::StopAndCopy => {
                assert!(p.sent.rounds.is_empty());
                assert_eq!(p.sent.last_pages, p.sent.pages);
            }
            MigrateMode::PreCopy => {
                assert!(!p.sent.rounds.is_empty());
                assert!(p.sent.last_pages < p.sent.pages, "{:?}", p.sent);
                assert_eq!(recv.rounds, p.sent.rounds);
            }
            MigrateMode::PostCopy => {
                assert_eq!(p.sent.last_pages, 0);
                assert!(recv.remote_faults > 0);
                assert_eq!(recv.remote_faults, p.sent.remote_faults);
                assert_eq!(
                    recv.pushed_pages + recv.demanded_pages,
                    p.sent.pages,
                    "{recv:?}"
                );
            }
        }
        // The source ran the process up to the migration point only.
        assert!(process(&p.source, "p0").references < process(&unmigrated, "p0").references);
    }
}

#[test]
fn fork_cow_child_moves_in_every_mode() {
    // The real forkcow traces: the child shares the parent's 1 MiB
    // copy-on-write and writes one byte per page.
    let scenario = Scenario::load(&example("forkcow-real.toml")).expect("scenario");
    let unmigrated = plain(config(&[]), &scenario);
    let total = process(&unmigrated, "child").references;
    // Where the child starts: step until it exists.
    let mut probe = Simulation::new(config(&[])).expect("probe");
    probe.start(&scenario).expect("start");
    let mut at = 0;
    while !probe.scenario_pids().iter().any(|&(i, _, _)| i == 1) {
        at += 1000;
        probe.run_until(at, &mut ()).expect("probe run");
    }
    for mode in MODES {
        let p = migrate(config(&[]), config(&[]), &scenario, 1, at + total / 3, mode);
        assert_eq!(p.sent.aborted, None, "{mode:?}");
        let dest = p.dest.expect("destination");
        assert_same_process(&dest, &unmigrated, "child");
        assert!(process(&p.source, "child").references < total);
        // The parent stays, and ends as it would have.
        assert_same_process(&p.source, &unmigrated, "parent");
    }
}

#[test]
fn another_paging_format_is_refused_and_the_source_runs_on() {
    let scenario = traces(&[&data("true.lackey.zst")]);
    let p = migrate(
        config(&[]),
        config(&["paging.arch=\"sv39\""]),
        &scenario,
        0,
        10_000,
        MigrateMode::PreCopy,
    );
    let why = p.sent.aborted.expect("refused");
    assert!(why.contains("incompatible paging format"), "{why}");
    assert!(p.dest.is_none());
    let unmigrated = plain(config(&[]), &scenario);
    assert_eq!(
        process(&p.source, "p0").references,
        process(&unmigrated, "p0").references
    );
}

#[test]
fn a_dirty_rate_above_the_link_does_not_converge() {
    // 64 pages written over and over, on a slow link.
    let scenario = traces(&["synth:random,bytes=256KiB,write=0.9,refs=400K"]);
    let p = migrate(
        config(&["migrate.bandwidth=4", "migrate.latency=10"]),
        config(&[]),
        &scenario,
        0,
        100_000,
        MigrateMode::PreCopy,
    );
    assert_eq!(p.sent.aborted, None);
    assert!(!p.sent.converged, "{:?}", p.sent);
    assert!(
        p.sent.stop_reason.contains("did not converge"),
        "{}",
        p.sent.stop_reason
    );
    let unmigrated = plain(config(&[]), &scenario);
    assert_same_process(&p.dest.expect("destination"), &unmigrated, "p0");
}
