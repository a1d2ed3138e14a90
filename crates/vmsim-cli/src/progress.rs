//! The progress bar of a run, and how long the run is: known exactly for
//! synthetic workloads and `.vmt` files (their end block states the record
//! count), estimated for lackey text and zstd files from the bytes read
//! over the files' sizes, unknown for standard input. Drawn on standard
//! error, only on a terminal.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use vmsim::sim::Observer;
use vmsim_trace::input::ReadMeter;
use vmsim_trace::scenario::Scenario;
use vmsim_trace::source::SYNTH_PREFIX;

/// How long a run is, as known before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    /// Exactly this many references: every input is a synthetic workload
    /// (each `exit_after` capping its own) or a `.vmt` file that states its
    /// record count.
    References(u64),
    /// Some inputs are files known only by their size: the run's length is
    /// estimated from how much of `bytes` (all trace files' sizes) has been
    /// read; `known` references come from synthetic workloads.
    Bytes {
        /// References of the synthetic workloads.
        known: u64,
        /// The trace files' sizes, in bytes (compressed files: as stored).
        bytes: u64,
    },
    /// A trace comes from standard input (or a file that cannot be
    /// measured): no length, the bar is a spinner.
    Unknown,
}

impl RunLength {
    /// The length of a run of `scenario`.
    #[must_use]
    pub fn of(scenario: &Scenario) -> Self {
        let (mut refs, mut known, mut bytes, mut files_by_size) = (0u64, 0u64, 0u64, false);
        for p in &scenario.processes {
            let Some(t) = p.trace.as_deref() else {
                continue;
            };
            let cap = |n: u64| p.exit_after.map_or(n, |e| e.min(n));
            if let Some(spec) = t.strip_prefix(SYNTH_PREFIX) {
                let Some(n) = vmsim_trace::synth::SynthSource::parse(spec)
                    .ok()
                    .map(|s| s.total_refs())
                else {
                    return Self::Unknown;
                };
                known = known.saturating_add(cap(n));
                continue;
            }
            if t == vmsim_trace::input::STDIN {
                return Self::Unknown;
            }
            let path = std::path::Path::new(t);
            let Ok(meta) = std::fs::metadata(path) else {
                return Self::Unknown;
            };
            if !meta.is_file() {
                return Self::Unknown;
            }
            // Every file counts in `bytes` (the meter counts every file's
            // bytes); `refs` holds the exact counts in case all files state one.
            bytes = bytes.saturating_add(meta.len());
            match vmsim_trace::vmt::record_count(path) {
                Some(n) => refs = refs.saturating_add(cap(n)),
                None => files_by_size = true,
            }
        }
        if files_by_size {
            Self::Bytes { known, bytes }
        } else {
            Self::References(known.saturating_add(refs))
        }
    }

    /// The run's total references, estimated after `references` ran and
    /// `read` bytes of the trace files were read: `references / (read /
    /// bytes)`, never less than what ran nor than the synthetic workloads'
    /// references. `None` while nothing tells (no byte read yet, or no
    /// length at all).
    #[must_use]
    pub fn estimate(&self, references: u64, read: u64) -> Option<u64> {
        match *self {
            Self::References(n) => Some(n),
            Self::Unknown => None,
            Self::Bytes { known, bytes } => {
                if bytes == 0 {
                    return Some(known.max(references));
                }
                if read == 0 || references == 0 {
                    return None;
                }
                let fraction = (read as f64 / bytes as f64).min(1.0);
                let total = (references as f64 / fraction).round() as u64;
                Some(total.max(known).max(references))
            }
        }
    }
}

/// The progress bar (an observer of the run).
pub struct Bar {
    bar: Option<ProgressBar>,
    length: RunLength,
    meter: ReadMeter,
    /// The bar's style shows the length (set once a length is known).
    counted: bool,
}

impl Bar {
    /// The meter the run's trace files must add their bytes to (see
    /// `Simulation::set_read_meter`).
    #[must_use]
    pub fn meter(&self) -> ReadMeter {
        self.meter.clone()
    }

    /// Clears the bar at the end.
    pub fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn progress(&mut self, references: u64) {
        let Some(b) = &self.bar else { return };
        if let Some(total) = self.length.estimate(references, self.meter.bytes()) {
            if !self.counted {
                self.counted = true;
                b.set_style(counted_style(matches!(
                    self.length,
                    RunLength::Bytes { .. }
                )));
            }
            b.set_length(total);
        }
        b.set_position(references);
    }
}

/// The progress bar on stderr of a run whose length is unknown (a spinner),
/// only on a terminal and without `quiet`.
pub fn bar(quiet: bool) -> Bar {
    bar_of(quiet, RunLength::Unknown)
}

/// The progress bar of a run of `length`: a bar with the percentage and the
/// time left once the length is known (`~` before an estimated length),
/// else a spinner; both with human counts and rates (`3.1M refs/s`); drawn
/// only on a terminal and without `quiet`.
pub fn bar_of(quiet: bool, length: RunLength) -> Bar {
    let show = !quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {human_pos} references  {refs_per_sec}  {elapsed_precise}",
            )
            .map(|s| s.with_key("refs_per_sec", rate_key))
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let mut this = Bar {
        bar,
        length,
        meter: ReadMeter::new(),
        counted: false,
    };
    this.progress(0);
    this
}

fn counted_style(estimated: bool) -> ProgressStyle {
    let template = if estimated {
        "{bar:30} {percent:>3}%  {human_pos}/~{human_len} references  {refs_per_sec}  ETA {eta}"
    } else {
        "{bar:30} {percent:>3}%  {human_pos}/{human_len} references  {refs_per_sec}  ETA {eta}"
    };
    ProgressStyle::with_template(template)
        .map(|s| s.with_key("refs_per_sec", rate_key))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `3.1M refs/s`: the bar's rate with a decimal prefix.
fn rate_key(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{} refs/s", human_rate(state.per_sec()));
}

/// A rate with a decimal prefix and two or three significant digits.
#[must_use]
pub fn human_rate(per_sec: f64) -> String {
    let (v, unit) = if per_sec >= 1e9 {
        (per_sec / 1e9, "G")
    } else if per_sec >= 1e6 {
        (per_sec / 1e6, "M")
    } else if per_sec >= 1e3 {
        (per_sec / 1e3, "K")
    } else {
        (per_sec, "")
    };
    let mut s = String::new();
    if v >= 100.0 || unit.is_empty() {
        let _ = write!(s, "{v:.0}{unit}");
    } else {
        let _ = write!(s, "{v:.1}{unit}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::run::scenario_of;

    fn data(name: &str) -> String {
        format!(
            "{}/../vmsim-trace/tests/data/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn rates_are_human() {
        assert_eq!(human_rate(3_123_456.0), "3.1M");
        assert_eq!(human_rate(850.0), "850");
        assert_eq!(human_rate(250_000.0), "250K");
        assert_eq!(human_rate(1.5e9), "1.5G");
    }

    #[test]
    fn synthetic_workloads_have_an_exact_length() {
        let s =
            scenario_of(&["synth:scan,bytes=64KiB,stride=4096,passes=3".into()]).expect("synth");
        assert_eq!(RunLength::of(&s), RunLength::References(48));
        let two = scenario_of(&[
            "synth:zipf,pages=10,refs=1K".into(),
            "synth:loop,pages=4,repeats=2".into(),
        ])
        .expect("synth");
        assert_eq!(RunLength::of(&two), RunLength::References(1008));
        assert_eq!(RunLength::References(1008).estimate(10, 0), Some(1008));
    }

    #[test]
    fn a_vmt_file_states_its_length_and_lackey_files_are_measured_in_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vmt = dir.path().join("t.vmt");
        let mut src = vmsim_trace::open("synth:loop,pages=10,repeats=5").expect("synth");
        vmsim_trace::vmt::convert(&mut src, &vmt).expect("convert");
        let vmt = vmt.to_str().expect("utf-8").to_owned();
        let s = scenario_of(std::slice::from_ref(&vmt)).expect("vmt");
        assert_eq!(RunLength::of(&s), RunLength::References(50));
        let s = scenario_of(&[vmt.clone(), "synth:loop,pages=4,repeats=2".into()]).expect("two");
        assert_eq!(RunLength::of(&s), RunLength::References(58));

        let zst = data("tinystatic.lackey.zst");
        let size = std::fs::metadata(&zst).expect("size").len();
        let s = scenario_of(std::slice::from_ref(&zst)).expect("trace");
        assert_eq!(
            RunLength::of(&s),
            RunLength::Bytes {
                known: 0,
                bytes: size
            }
        );
        // With a .vmt and a synthetic workload beside it: every file by
        // size, the workload by its count.
        let vmt_size = std::fs::metadata(&vmt).expect("size").len();
        let s = scenario_of(&[zst, vmt, "synth:loop,pages=4,repeats=2".into()]).expect("three");
        assert_eq!(
            RunLength::of(&s),
            RunLength::Bytes {
                known: 8,
                bytes: size + vmt_size
            }
        );
        let s = scenario_of(&["-".into()]).expect("stdin");
        assert_eq!(RunLength::of(&s), RunLength::Unknown);
        assert_eq!(RunLength::Unknown.estimate(100, 100), None);
    }

    #[test]
    fn the_length_of_a_run_read_by_bytes_is_references_over_the_fraction_read() {
        let l = RunLength::Bytes {
            known: 0,
            bytes: 1000,
        };
        // Nothing read yet: no estimate (a spinner until the first read).
        assert_eq!(l.estimate(0, 0), None);
        assert_eq!(l.estimate(500, 0), None);
        // A quarter of the bytes gave 1M references: 4M in all.
        assert_eq!(l.estimate(1_000_000, 250), Some(4_000_000));
        assert_eq!(l.estimate(3_000_000, 750), Some(4_000_000));
        // Read ahead to the end: never less than what ran.
        assert_eq!(l.estimate(3_900_000, 1000), Some(3_900_000));
        assert_eq!(l.estimate(3_900_000, 5000), Some(3_900_000));
        // Synthetic workloads' references are a floor.
        let mixed = RunLength::Bytes {
            known: 10_000,
            bytes: 1000,
        };
        assert_eq!(mixed.estimate(100, 500), Some(10_000));
        assert_eq!(mixed.estimate(30_000, 500), Some(60_000));
        // Files that are all empty: the synthetic references.
        let empty = RunLength::Bytes { known: 7, bytes: 0 };
        assert_eq!(empty.estimate(3, 0), Some(7));
    }

    #[test]
    fn a_run_fills_the_meter_with_its_files_bytes() {
        let zst = data("tinystatic.lackey.zst");
        let size = std::fs::metadata(&zst).expect("size").len();
        let s = scenario_of(std::slice::from_ref(&zst)).expect("trace");
        let cfg = vmsim::config::ConfigBuilder::preset(None)
            .and_then(|b| b.build())
            .expect("config");
        let mut sim = vmsim::sim::Simulation::new(cfg).expect("sim");
        let meter = ReadMeter::new();
        sim.set_read_meter(meter.clone());
        sim.start(&s).expect("start");
        let report = sim.run_to_end(&mut (), None).expect("run");
        assert!(report.references > 0);
        assert_eq!(meter.bytes(), size);
        let l = RunLength::of(&s);
        assert_eq!(
            l.estimate(report.references, meter.bytes()),
            Some(report.references),
            "at the end the estimate is exact"
        );
    }
}
