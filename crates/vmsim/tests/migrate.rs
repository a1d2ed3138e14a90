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

/// Passes every message from `rx` to `tx` through `forge` (which may
/// change, drop or add messages), re-encoded: what an authenticated peer
/// that lies would send. Ends when either side hangs up.
fn relay(
    mut rx: vmsim::migrate::PipeRecv,
    mut tx: vmsim::migrate::PipeSend,
    mut forge: impl FnMut(Message) -> Vec<Message>,
) {
    while let Ok(payload) = rx.recv_payload() {
        let Ok(msg) = Message::decode(&payload) else {
            if tx.send_payload(&payload).is_err() {
                return;
            }
            continue;
        };
        for m in forge(msg) {
            if tx.send(&m).is_err() {
                return;
            }
        }
    }
}

/// Moves the zipf process of a small run in `mode` with every message
/// from the source passed through `forge`; what the destination made of
/// it: its error (receiving or running), or `Ok` if it ran to the end.
fn migrate_forged(
    mode: MigrateMode,
    forge: impl FnMut(Message) -> Vec<Message> + Send + 'static,
) -> Result<(), String> {
    let scenario = traces(&["synth:zipf,pages=200,refs=60K,write=0.5,seed=5"]);
    let src = config(&["migrate.bandwidth=64", "migrate.latency=100"]);
    let dst = config(&[]);
    // source <-> relays <-> destination
    let ((mut stx, mut srx), (rtx_a, rrx_a)) = pipe();
    let ((rtx_b, rrx_b), (mut dtx, mut drx)) = pipe();
    let forward = std::thread::spawn(move || relay(rrx_a, rtx_b, forge));
    let back = std::thread::spawn(move || relay(rrx_b, rtx_a, |m| vec![m]));
    let dest = std::thread::spawn(move || {
        let offer = read_offer(&mut drx).map_err(|e| e.to_string())?;
        answer(&dst, &offer, &mut dtx).map_err(|e| e.to_string())?;
        let incoming = receive(dst, offer, &mut dtx, &mut drx, &[]).map_err(|e| e.to_string())?;
        incoming
            .run((dtx, drx), &mut ())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut sim = Simulation::new(src).expect("source");
    sim.start(&scenario).expect("start");
    let offer = sim.migration_offer(0, mode, 20_000).expect("offer");
    stx.send(&Message::Offer(offer)).expect("send offer");
    assert!(matches!(srx.recv(), Ok(Message::Accept { .. })));
    sim.advance(20_000, &mut (), None)
        .expect("run to the point");
    let _ = sim.migrate_out(0, mode, &mut stx, &mut srx, &mut ());
    drop((stx, srx));
    let _ = sim.run_to_end(&mut (), None);
    let out = dest.join().expect("destination thread");
    let _ = forward.join();
    let _ = back.join();
    out
}

/// The destination refuses what `forge` makes of the source's messages
/// with one line containing `expect`.
fn refused_migration(
    what: &str,
    mode: MigrateMode,
    expect: &str,
    forge: impl FnMut(Message) -> Vec<Message> + Send + 'static,
) {
    match migrate_forged(mode, forge) {
        Ok(()) => panic!("{what}: the forged stream was accepted (and ran)"),
        Err(e) => {
            assert!(!e.contains('\n'), "{what}: {e}");
            assert!(e.contains(expect), "{what}: expected '{expect}' in: {e}");
        }
    }
}

/// Changes the `State` message's state.
fn state(
    mut f: impl FnMut(&mut vmsim::migrate::ProcessState),
) -> impl FnMut(Message) -> Vec<Message> {
    move |m| match m {
        Message::State { mut state, last } => {
            f(&mut state);
            vec![Message::State { state, last }]
        }
        m => vec![m],
    }
}

/// A stream whose every message passes authentication but whose content
/// lies: each forgery is refused by the destination with an error naming
/// the message and the field, before the process is built (or, for the
/// summaries, before their figures are taken), and the unforged stream
/// runs.
#[test]
fn a_source_whose_messages_lie_is_refused() {
    use MigrateMode::{PostCopy, PreCopy, StopAndCopy};
    for mode in MODES {
        migrate_forged(mode, |m| vec![m]).expect("the unforged stream runs");
    }
    // Page counts: a round's pages, the switch-over's, the pages listed.
    refused_migration(
        "round pages",
        PreCopy,
        "report.rounds[0].pages",
        state(|s| {
            s.report.rounds[0].pages += 1;
            s.report.total_pages += 1;
        }),
    );
    refused_migration(
        "total pages",
        PreCopy,
        "report.total_pages",
        state(|s| {
            s.report.total_pages += 7;
        }),
    );
    refused_migration(
        "pages listed",
        StopAndCopy,
        "report.pages",
        state(|s| {
            s.pages.pop();
        }),
    );
    refused_migration(
        "pause pages",
        StopAndCopy,
        "report.last_pages",
        state(|s| {
            s.report.last_pages -= 1;
            s.report.total_pages -= 1;
        }),
    );
    // Pages dropped from a Pages message: the round's count is short.
    let mut cut = false;
    refused_migration(
        "pages dropped",
        StopAndCopy,
        "came in Pages messages",
        move |m| match m {
            Message::Pages { round, mut pages } if !cut && pages.len() > 1 => {
                cut = true;
                pages.truncate(1);
                vec![Message::Pages { round, pages }]
            }
            m => vec![m],
        },
    );
    // Round numbers.
    refused_migration(
        "a round renumbered",
        PreCopy,
        "numbered",
        state(|s| {
            s.report.rounds[0].round = 5;
        }),
    );
    refused_migration(
        "a Pages message of a later round",
        PreCopy,
        "a Pages message of round",
        |m| match m {
            Message::Pages { pages, .. } => vec![Message::Pages { round: 40, pages }],
            m => vec![m],
        },
    );
    refused_migration(
        "rounds in stop-and-copy",
        StopAndCopy,
        "pre-copy rounds",
        state(|s| {
            s.report.rounds.push(vmsim::migrate::Round {
                round: 1,
                ..Default::default()
            });
        }),
    );
    // The dirty sets: what a round dirtied is what the next one sent.
    refused_migration(
        "dirtied",
        PreCopy,
        "dirtied",
        state(|s| {
            if s.report.rounds.len() < 2 {
                s.report.rounds.push(vmsim::migrate::Round {
                    round: 2,
                    ..Default::default()
                });
            }
            s.report.rounds[0].dirtied += 3;
        }),
    );
    // Names, mode, link, figures, the accesses to come.
    refused_migration(
        "name",
        StopAndCopy,
        "but the offer named",
        state(|s| {
            s.name = "p0\nforged line".into();
        }),
    );
    refused_migration(
        "mode",
        StopAndCopy,
        "report.mode",
        state(|s| {
            s.report.mode = PostCopy;
        }),
    );
    refused_migration(
        "bandwidth 0",
        PostCopy,
        "migrate.bandwidth",
        state(|s| {
            s.report.link.bandwidth = 0;
        }),
    );
    refused_migration(
        "a fault count",
        StopAndCopy,
        "counters: faults.demand_zero",
        state(|s| {
            s.counters.faults.demand_zero = u64::MAX;
        }),
    );
    refused_migration(
        "remote faults",
        PostCopy,
        "report: remote_faults",
        state(|s| {
            s.report.remote_faults = u64::MAX;
        }),
    );
    refused_migration(
        "refs",
        StopAndCopy,
        "counters.references",
        state(|s| {
            s.refs += 1;
        }),
    );
    refused_migration(
        "an access of 0 bytes",
        StopAndCopy,
        "batch: an access of 0 bytes",
        state(|s| match s.batch.first_mut() {
            Some(a) => a.size = 0,
            None => s.batch.push(vmsim_trace::Access {
                va: 0x1000,
                pid: 1,
                size: 0,
                kind: vmsim_trace::AccessKind::Load,
            }),
        }),
    );
    refused_migration(
        "brk",
        StopAndCopy,
        "below the heap's start",
        state(|s| {
            s.brk = vmsim::addr::VirtAddr::new(s.brk_start.as_u64() - 4096);
        }),
    );
    // The summaries: the pause's figures only, adding up.
    refused_migration(
        "summary bytes",
        StopAndCopy,
        "the Summary message",
        |m| match m {
            Message::Summary(mut r) => {
                r.total_bytes += 1;
                vec![Message::Summary(r)]
            }
            m => vec![m],
        },
    );
    refused_migration(
        "summary rounds",
        PreCopy,
        "the Summary message",
        |m| match m {
            Message::Summary(mut r) => {
                r.rounds[0].pages += 1;
                vec![Message::Summary(r)]
            }
            m => vec![m],
        },
    );
    let mut summaries = 0;
    refused_migration(
        "final summary",
        PostCopy,
        "the final Summary message",
        move |m| match m {
            Message::Summary(mut r) => {
                summaries += 1;
                if summaries == 2 {
                    r.remote_faults += 1;
                }
                vec![Message::Summary(r)]
            }
            m => vec![m],
        },
    );
    // Post-copy pages: one never asked for, one with contents the state
    // said is all zero.
    refused_migration(
        "a page not to come",
        PostCopy,
        "not one still to come",
        |m| match m {
            Message::Page(mut p) => {
                p.page = 1 << 46;
                vec![Message::Page(p)]
            }
            m => vec![m],
        },
    );
    refused_migration(
        "a page with contents said to be zero",
        PostCopy,
        "said it is all zero",
        state(|s| {
            let e = s.pages.iter_mut().find(|e| !e.zero).expect("a page");
            e.zero = true;
        }),
    );
}
