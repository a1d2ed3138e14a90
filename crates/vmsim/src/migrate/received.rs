//! Checking what a migration's source said before the destination builds
//! and runs the process: the `State` message against the offer and the
//! `Pages` messages that came before it, and the `Summary` against the
//! `State`.
//!
//! The channel authenticates every message, which says who sent it, not
//! that it is true: a source (or a program speaking the protocol) can send
//! a state whose report counts pages no round sent, rounds out of order,
//! a link of no bandwidth (post-copy's clock divided by it), counters at
//! 2^64 - 1 (the destination adds to them), a name other than the
//! offer's. Each relation here is one [`Simulation::migrate_out`] keeps
//! exactly; a message that breaks one is refused before anything is
//! built (or, for the summary, before its figures replace the state's),
//! the error naming the message and the field. Receive code only.
//!
//! [`Simulation::migrate_out`]: crate::sim::Simulation::migrate_out

use super::config::MigrateMode;
use super::message::{Offer, ProcessState};
use super::report::MigrationReport;
use crate::sim::restored::{counter_in_range, counters_in_range};

/// The figures of `report` within any run's (the link's settings are the
/// source's configuration, checked as one; the model's figures are
/// printed beside the measured ones, never added to).
pub(crate) fn report_in_range(what: &str, report: &MigrationReport) -> Result<(), String> {
    let mut v = serde_json::to_value(report).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.remove("link");
        o.remove("model");
    }
    counters_in_range(what, &v)?;
    counter_in_range(&format!("{what}.link.latency"), report.link.latency)
}

/// The `State` message against the offer it follows and `rounds`, the
/// (round, pages) of every `Pages` message received before it, in order.
pub(crate) fn check_state(
    offer: &Offer,
    state: &ProcessState,
    rounds: &[(u32, u64)],
) -> Result<(), String> {
    let r = &state.report;
    if state.name != offer.process || r.process != offer.process {
        return Err(format!(
            "the process is named {:?} (its report {:?}), but the offer named {:?}",
            trim(&state.name),
            trim(&r.process),
            trim(&offer.process)
        ));
    }
    if r.mode != offer.mode {
        return Err(format!(
            "report.mode is {}, but the offer said {}",
            r.mode.name(),
            offer.mode.name()
        ));
    }
    r.link
        .validate()
        .map_err(|(key, why)| format!("report.link: {key}: {why}"))?;
    report_in_range("report", r)?;
    let mut counters = serde_json::to_value(&state.counters).map_err(|e| e.to_string())?;
    if let Some(o) = counters.as_object_mut() {
        // An address, not a count.
        o.remove("killed");
    }
    counters_in_range("counters", &counters)?;
    counter_in_range("refs", state.refs)?;
    if state.counters.references != state.refs {
        return Err(format!(
            "counters.references = {} but refs = {}",
            state.counters.references, state.refs
        ));
    }
    if state.brk < state.brk_start {
        return Err(format!(
            "brk {:#x} is below the heap's start {:#x}",
            state.brk.as_u64(),
            state.brk_start.as_u64()
        ));
    }
    if let Some(a) = state
        .batch
        .iter()
        .find(|a| a.size == 0 || a.size > vmsim_trace::access::MAX_ACCESS_BYTES)
    {
        return Err(format!(
            "batch: an access of {} bytes (1 to {} expected)",
            a.size,
            vmsim_trace::access::MAX_ACCESS_BYTES
        ));
    }
    let n = r.rounds.len();
    if offer.mode != MigrateMode::PreCopy && n != 0 {
        return Err(format!(
            "report.rounds: {n} pre-copy rounds in {} mode",
            offer.mode.name()
        ));
    }
    if n > r.link.max_rounds as usize {
        return Err(format!(
            "report.rounds: {n} rounds, more than max_rounds = {}",
            r.link.max_rounds
        ));
    }
    if let Some((i, x)) = r
        .rounds
        .iter()
        .enumerate()
        .find(|(i, x)| x.round as usize != i + 1)
    {
        return Err(format!(
            "report.rounds[{i}] is numbered {}, not {}",
            x.round,
            i + 1
        ));
    }
    if let Some(w) = r.rounds.windows(2).find(|w| w[0].dirtied != w[1].pages) {
        return Err(format!(
            "report.rounds: round {} dirtied {} pages but round {} sent {}",
            w[0].round, w[0].dirtied, w[1].round, w[1].pages
        ));
    }
    let pages = state.pages.len() as u64;
    if r.pages != pages {
        return Err(format!(
            "report.pages = {} but the state lists {pages} pages",
            r.pages
        ));
    }
    let last_ok = match offer.mode {
        MigrateMode::StopAndCopy => r.last_pages == pages,
        MigrateMode::PostCopy => r.last_pages == 0,
        MigrateMode::PreCopy => {
            r.last_pages <= pages && r.rounds.last().is_none_or(|x| r.last_pages <= x.dirtied)
        }
    };
    if !last_ok {
        return Err(format!(
            "report.last_pages = {} does not fit {} pages in {} mode",
            r.last_pages,
            pages,
            offer.mode.name()
        ));
    }
    let sent = r
        .rounds
        .iter()
        .map(|x| x.pages)
        .fold(r.last_pages, u64::saturating_add);
    if r.total_pages != sent {
        return Err(format!(
            "report.total_pages = {} but its rounds and pause sent {sent}",
            r.total_pages
        ));
    }
    // The pages that came, round by round: rounds in order, the pause
    // being round n + 1, each as many pages as the report says it sent.
    let mut got = vec![0u64; n + 1];
    let mut prev = 0u32;
    for &(round, count) in rounds {
        if round < prev || round == 0 || round as usize > n + 1 {
            return Err(format!(
                "a Pages message of round {round} (after round {prev}; the report has {n} rounds and the pause)"
            ));
        }
        prev = round;
        got[round as usize - 1] = got[round as usize - 1].saturating_add(count);
    }
    let said = r.rounds.iter().map(|x| x.pages).chain([r.last_pages]);
    if let Some((i, (g, s))) = got
        .iter()
        .zip(said)
        .enumerate()
        .find(|(_, (g, s))| **g != *s)
    {
        return Err(format!(
            "round {}: {g} pages came in Pages messages, but report.{} says {s}",
            i + 1,
            if i == n {
                "last_pages".to_string()
            } else {
                format!("rounds[{i}].pages")
            }
        ));
    }
    Ok(())
}

/// The `Summary` sent after the process was adopted: the state's report
/// with the pause's figures filled in, and nothing else changed (the
/// bytes of the pause, the downtime they took on the link, the totals
/// they add up to).
pub(crate) fn check_summary(state: &MigrationReport, s: &MigrationReport) -> Result<(), String> {
    report_in_range("summary", s)?;
    let fixed = MigrationReport {
        last_bytes: state.last_bytes,
        downtime: state.downtime,
        total_bytes: state.total_bytes,
        total_time: state.total_time,
        ..s.clone()
    };
    if fixed != *state {
        return Err("it differs from the State's report in more than the pause's figures".into());
    }
    let sum = |f: fn(&super::report::Round) -> u64, start: u64| {
        s.rounds.iter().map(f).fold(start, u64::saturating_add)
    };
    let downtime = s.link.transfer(s.last_bytes);
    if s.downtime != downtime
        || s.total_bytes != sum(|x| x.bytes, s.last_bytes)
        || s.total_time != sum(|x| x.duration, downtime)
    {
        return Err(format!(
            "downtime {}, total_bytes {} and total_time {} are not those of {} bytes in the pause",
            s.downtime, s.total_bytes, s.total_time, s.last_bytes
        ));
    }
    Ok(())
}

/// At most 64 characters of `s`, for messages.
fn trim(s: &str) -> String {
    s.chars().take(64).collect()
}
