//! `vmsim migrate`: the receiving side of a live migration (`listen`), a
//! key for it (`keygen`), and what both sides print about a migration.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use plotters::prelude::*;
use vmsim::migrate::{MigrateMode, MigrationReport, read_offer, receive};
use vmsim_trace::scenario::Scenario;

use crate::channel::{self, Key};

/// Live migration of a running process between two vmsim processes.
///
/// The destination listens; the source is a `vmsim run` with --migrate-to,
/// which moves one process at a reference by stop-and-copy, pre-copy or
/// post-copy, over TCP authenticated with a pre-shared key (HMAC-SHA256,
/// fresh nonces, every message numbered and tagged). The link is modelled
/// in simulated time by [migrate] (bandwidth in bytes per reference,
/// latency, stop_pages, max_rounds).
///
/// Examples:
///   vmsim migrate keygen --key-file mig.key
///   vmsim migrate listen --key-file mig.key --addr 127.0.0.1:7000
///   vmsim run trace.lackey.zst --migrate-to 127.0.0.1:7000 --migrate-at 1M \
///       --key-file mig.key --migrate-mode pre-copy
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
}

/// The `vmsim migrate` subcommands.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Receive one process and run it to its end on this machine.
    Listen(ListenArgs),
    /// Write a new random key file (mode 600).
    Keygen(KeygenArgs),
}

/// Receive one migrating process and run it to its end here.
///
/// Listens (on loopback unless --addr says otherwise; port 0 picks a free
/// port) and prints `vmsim migrate: listening on ADDR` on stderr. A
/// connection that does not hold the key is dropped with one line on
/// stderr, and listening goes on. The first authenticated source's process
/// is received, built on this machine's own configuration (--preset,
/// --config, --set: other memory sizes are fine; the paging format and page
/// size must be the source's, or the offer is refused), run to its end, and
/// reported: the migration (rounds, bytes, total time, downtime, remote
/// faults, the analytic model) and the run, as `vmsim run` reports.
///
/// The process's trace is reopened at its recorded path, checked by size
/// and CRC-32C; give a copy elsewhere with --input.
///
/// Examples:
///   vmsim migrate listen --key-file mig.key
///   vmsim migrate listen --key-file mig.key --addr 0.0.0.0:7000 --set memory.frames=8192
///   vmsim migrate listen --key-file mig.key --json --plot rounds.svg
///
/// JSON keys: those of `vmsim run --json`, with `migration`: mode,
/// process, start, link, rounds (round, pages, bytes, start, duration,
/// dirtied), last_pages, last_bytes, state_bytes, pages, total_bytes,
/// total_pages, total_time, downtime, converged, stop_reason,
/// remote_faults, remote_stall, pushed_pages, demanded_pages, model
/// (dirty_rate, bandwidth, ratio, converges, round_pages, bytes,
/// total_time, downtime), aborted.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ListenArgs {
    /// The address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    pub addr: String,

    /// The pre-shared key file (readable by its owner only).
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,

    /// This machine's preset (see `vmsim presets`); default x86-64.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// A TOML config merged over the preset.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override one setting (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// A trace file that may be the process's input (repeatable).
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Seconds to wait for any read or write before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Draw the pages sent per round (and the model's) into an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Record the process's memory digest when it exits (compare with
    /// `vmsim run --digest`).
    #[arg(long)]
    pub digest: bool,

    /// No progress bar and no status lines.
    #[arg(long, short)]
    pub quiet: bool,

    /// Exit 0 even if the process is killed.
    #[arg(long)]
    pub allow_kills: bool,
}

/// Write a new random key file.
///
/// 32 random bytes as 64 hex digits, mode 600; an existing file is never
/// overwritten. Copy it to the other machine by a secure channel.
///
/// Example:
///   vmsim migrate keygen --key-file mig.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct KeygenArgs {
    /// The file to create.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
}

/// Runs `vmsim migrate`.
pub fn run(args: &MigrateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    match &args.command {
        MigrateCommand::Keygen(k) => {
            Key::generate(&k.key_file)?;
            writeln!(out, "wrote a new key to {}", k.key_file.display())?;
            Ok(())
        }
        MigrateCommand::Listen(l) => listen(l, out),
    }
}

fn status(quiet: bool, line: &str) -> anyhow::Result<()> {
    if !quiet {
        crate::output::to_stderr(&format!("vmsim migrate: {line}"))?;
    }
    Ok(())
}

fn listen(args: &ListenArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let key = Key::load(&args.key_file)?;
    let empty = Scenario {
        description: String::new(),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: Vec::new(),
    };
    let cfg = super::run::layered_config(
        args.preset.as_deref(),
        args.config.as_deref(),
        &empty,
        &args.set,
        false,
    )?;
    if args.timeout == 0 {
        bail!("--timeout 0: give at least 1 second");
    }
    let timeout = Duration::from_secs(args.timeout);
    let listener = channel::listen(&args.addr)?;
    let local = listener.local_addr()?;
    // Always said, even with --quiet: it is how a caller learns the port.
    crate::output::to_stderr(&format!("vmsim migrate: listening on {local}"))?;
    let (mut tx, mut rx) = loop {
        let (stream, peer) = listener.accept().context("accepting a connection")?;
        match channel::authenticate(stream, &key, timeout) {
            Ok(halves) => break halves,
            Err(e) => crate::output::to_stderr(&format!(
                "vmsim migrate: dropped a connection from {peer}: {e}"
            ))?,
        }
    };
    let offer = read_offer(&mut rx)?;
    status(
        args.quiet,
        &format!(
            "{} offers process '{}' by {} (at reference {})",
            rx.peer(),
            offer.process,
            offer.mode.name(),
            offer.at
        ),
    )?;
    vmsim::migrate::answer(&cfg, &offer, &mut tx)?;
    status(
        args.quiet,
        &format!("accepted; the source runs to reference {} first", offer.at),
    )?;
    let (inputs, builtin) = super::restore::candidates(&args.inputs)?;
    let mut incoming = receive(cfg, offer, &mut tx, &mut rx, &inputs)?;
    incoming.simulation_mut().set_digest_at_exit(args.digest);
    status(
        args.quiet,
        &format!(
            "process '{}' arrived (pid {} here), running it to its end",
            incoming.offer().process,
            incoming.pid()
        ),
    )?;
    let mut observer = crate::progress::bar(args.quiet);
    let (mut report, migration) = incoming.run((tx, rx), &mut observer)?;
    observer.done();
    drop(builtin);
    if let Some(path) = &args.plot {
        plot_rounds(&migration, path)?;
    }
    report.migration = Some(migration);
    super::run::report_out(
        &report,
        &super::run::Output {
            json: args.json,
            plot: None,
            strict: false,
            allow_kills: args.allow_kills,
        },
        out,
    )
}

/// The migration section of a text report.
#[must_use]
pub fn render(m: &MigrationReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nmigration ({}) of process '{}'",
        m.mode.name(),
        m.process
    );
    if let Some(why) = &m.aborted {
        let _ = writeln!(s, "  ABORTED: {why}");
    }
    let _ = writeln!(
        s,
        "  link: {} bytes/reference, latency {} references; started at reference {}",
        m.link.bandwidth, m.link.latency, m.start
    );
    if !m.rounds.is_empty() {
        let _ = writeln!(
            s,
            "  {:>5}  {:>8}  {:>12}  {:>12}  {:>10}  {:>8}  {:>10}",
            "round", "pages", "bytes", "start", "duration", "dirtied", "model"
        );
        for r in &m.rounds {
            let model = m
                .model
                .round_pages
                .get(r.round as usize - 1)
                .map_or_else(|| "-".into(), u64::to_string);
            let _ = writeln!(
                s,
                "  {:>5}  {:>8}  {:>12}  {:>12}  {:>10}  {:>8}  {:>10}",
                r.round, r.pages, r.bytes, r.start, r.duration, r.dirtied, model
            );
        }
        let _ = writeln!(s, "  stopped: {}", m.stop_reason);
    }
    let _ = writeln!(s, "  {:<26} {:>14} {:>14}", "", "measured", "model");
    let model_last = m.model.round_pages.last().copied().unwrap_or(0);
    let rows: [(&str, u64, String); 5] = [
        ("pages at the switch-over", m.pages, "-".into()),
        ("pages in the pause", m.last_pages, model_last.to_string()),
        ("total bytes", m.total_bytes, m.model.bytes.to_string()),
        (
            "total time (references)",
            m.total_time,
            m.model.total_time.to_string(),
        ),
        (
            "downtime (references)",
            m.downtime,
            m.model.downtime.to_string(),
        ),
    ];
    for (name, v, model) in rows {
        let shown = if m.mode == MigrateMode::PostCopy && name == "pages in the pause" {
            "0".to_string()
        } else {
            v.to_string()
        };
        let _ = writeln!(s, "  {name:<26} {shown:>14} {model:>14}");
    }
    if m.mode == MigrateMode::PreCopy {
        let _ = writeln!(
            s,
            "  model: dirty rate {:.2} bytes/reference over {} -> ratio {:.3} per round ({})",
            m.model.dirty_rate,
            m.model.bandwidth,
            m.model.ratio,
            if m.model.converges {
                "converges"
            } else {
                "does not converge"
            }
        );
    }
    if m.mode == MigrateMode::PostCopy {
        let _ = writeln!(
            s,
            "  remote faults {} (waited {} references), pages pushed {}, demanded {}",
            m.remote_faults, m.remote_stall, m.pushed_pages, m.demanded_pages
        );
    }
    s
}

/// Draws pages sent per round, measured and modelled, into `path` (SVG).
pub fn plot_rounds(m: &MigrationReport, path: &Path) -> anyhow::Result<()> {
    let mut measured: Vec<u64> = m.rounds.iter().map(|r| r.pages).collect();
    measured.push(m.last_pages);
    let model = &m.model.round_pages;
    let n = measured.len().max(model.len()).max(1);
    let ymax = measured
        .iter()
        .chain(model)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let tmp = vmsim_trace::output::temp_next_to(path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    // Drawn into memory, then written through the (possibly unnamed) file.
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 450)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "vmsim migrate: {} of '{}' (last bar: the pause)",
                        m.mode.name(),
                        m.process
                    ),
                    ("sans-serif", 20),
                )
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.5f64..n as f64 + 0.5, 0f64..ymax)?;
            chart
                .configure_mesh()
                .x_desc("round")
                .y_desc("pages sent")
                .draw()?;
            chart
                .draw_series(measured.iter().enumerate().map(|(i, &p)| {
                    let x = i as f64 + 1.0;
                    Rectangle::new([(x - 0.3, 0.0), (x + 0.3, p as f64)], BLUE.filled())
                }))?
                .label("measured")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], BLUE.filled()));
            chart
                .draw_series(LineSeries::new(
                    model
                        .iter()
                        .enumerate()
                        .map(|(i, &p)| (i as f64 + 1.0, p as f64)),
                    &RED,
                ))?
                .label("analytic model")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            bail!("{}: cannot draw the plot: {e}", path.display());
        }
    }
    tmp.as_file()
        .write_all(svg.as_bytes())
        .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    vmsim_trace::output::commit(tmp, path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    Ok(())
}

/// The source's side of `vmsim run --migrate-to`: connects and agrees
/// before anything runs (errors here are the command's), runs to the
/// migration point (telling the destination it is alive), and moves the
/// process. A failure after that is in the returned report's `aborted`.
pub fn send(
    sim: &mut vmsim::sim::Simulation,
    args: &super::run::RunArgs,
    addr: &str,
    scenario: &Scenario,
    observer: &mut crate::progress::Bar,
) -> anyhow::Result<MigrationReport> {
    use vmsim::migrate::{Message, MsgRecv, MsgSend};
    let mode = MigrateMode::parse(&args.migrate_mode)
        .map_err(|e| anyhow::anyhow!("--migrate-mode: {e}"))?;
    let at_text = args.migrate_at.as_deref().unwrap_or("0");
    let at = vmsim::units::parse_count(at_text)
        .with_context(|| format!("--migrate-at {at_text}: expected a number of references"))?;
    let spec = match &args.migrate_process {
        None => 0,
        Some(p) => match scenario.processes.iter().position(|s| &s.name == p) {
            Some(i) => i,
            None => p
                .parse::<usize>()
                .ok()
                .filter(|&i| i < scenario.processes.len())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--migrate-process {p}: no such process (the scenario has {})",
                        scenario
                            .processes
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
        },
    };
    if args.migrate_timeout == 0 {
        bail!("--migrate-timeout 0: give at least 1 second");
    }
    let Some(key_file) = &args.key_file else {
        bail!("--migrate-to needs --key-file");
    };
    let key = Key::load(key_file)?;
    let offer = sim.migration_offer(spec, mode, at)?;
    let (mut tx, mut rx) = channel::connect(addr, &key, Duration::from_secs(args.migrate_timeout))?;
    tx.send(&Message::Offer(offer.clone()))?;
    match rx.recv()? {
        Message::Accept { .. } => {}
        Message::Refuse { reason } => bail!("{addr} refused the migration: {reason}"),
        other => bail!("{addr} answered the offer with {} message", other.kind()),
    }
    // Run to the migration point, saying "still here" about once a second.
    let mut last = std::time::Instant::now();
    let mut broken = None;
    loop {
        let next = at.min(sim.references().saturating_add(1 << 20));
        let progress = sim.advance(next, observer, None)?;
        if sim.references() >= at || progress == vmsim::sim::Progress::Finished {
            break;
        }
        if broken.is_none() && last.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = tx.send(&Message::Progress {
                references: sim.references(),
            }) {
                broken = Some(e.to_string());
            }
            last = std::time::Instant::now();
        }
    }
    let reason = match broken {
        Some(e) => Some(format!(
            "the link to {addr} failed before the migration point: {e}"
        )),
        None if sim.is_finished() || sim.references() < at => Some(format!(
            "the run ended after {} references, before --migrate-at {at}",
            sim.references()
        )),
        None => None,
    };
    if let Some(reason) = reason {
        let _ = tx.send(&Message::Abort {
            reason: reason.clone(),
        });
        return Ok(MigrationReport {
            mode,
            process: offer.process,
            start: sim.references(),
            link: sim.config().migrate.clone(),
            aborted: Some(reason),
            ..MigrationReport::default()
        });
    }
    let start = std::time::Instant::now();
    let cpu_start = super::policy::thread_cpu_seconds();
    let report = sim.migrate_out(spec, mode, &mut tx, &mut rx, observer)?;
    // Post-copy ends when every page is there; the others at adoption
    // (the source's teardown of its copy is not part of the move).
    let end = match mode {
        MigrateMode::PostCopy => Some((
            std::time::Instant::now(),
            super::policy::thread_cpu_seconds(),
        )),
        _ => rx.adopted_at(),
    };
    if !args.quiet
        && report.aborted.is_none()
        && let Some((end, cpu_end)) = end
    {
        // Host time, not a figure of the simulation: how fast this machine
        // moved the process (what bench/migrate-speed.sh reads).
        let secs = end.duration_since(start).as_secs_f64();
        let mbs = |s: f64| report.total_bytes as f64 / s.max(1e-9) / 1e6;
        let cpu = match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => {
                format!(", this side's CPU {:.3} s ({:.0} MB/s)", b - a, mbs(b - a))
            }
            _ => String::new(),
        };
        crate::output::to_stderr(&format!(
            "vmsim: migrated process '{}' in {secs:.3} s of host time: {} bytes ({:.0} MB/s){cpu}",
            report.process,
            report.total_bytes,
            mbs(secs)
        ))?;
    }
    Ok(report)
}
