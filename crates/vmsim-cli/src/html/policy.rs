//! The `vmsim policy --html` page's data: the report `vmsim policy --json`
//! prints (its `steps` cut to the references shown) plus, per reference,
//! each resident page's accessed and dirty bits, what the policy keeps
//! about it ([`Note`]: CLOCK-Pro's hot/cold, aging's counter, OPT's next
//! use), when it was loaded and last used, and why the victim was chosen,
//! told from the state before the reference.

use std::num::NonZeroUsize;

use serde_json::{Value, json};
use vmsim::reclaim::lab::{self, DenseTrace, Detail, PageState, Step, Totals};
use vmsim::reclaim::{Note, NoteValue, PolicyConfig, PolicyKind, Ties};

/// The most frame cells (references shown x resident pages) a page holds,
/// so a big memory does not make a page of hundreds of megabytes.
const MAX_CELLS: usize = 400_000;

/// A page as the JSON report writes it: its number, or `PID:PAGE` for a
/// multi-process trace.
fn page_value(trace: &DenseTrace, id: u32) -> Value {
    let page = trace.pages()[id as usize];
    match trace.pids().get(id as usize) {
        Some(pid) => json!(format!("{pid}:{page}")),
        None => json!(page),
    }
}

fn page_name(trace: &DenseTrace, id: u32) -> String {
    match page_value(trace, id) {
        Value::String(s) => s,
        v => v.to_string(),
    }
}

/// How the policy lists its frames (next victim first), for the legend.
fn order_text(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Fifo => "oldest load first",
        PolicyKind::Lru => "least recently used first",
        PolicyKind::Mru => "most recently used first",
        PolicyKind::Clock => "from the hand round the ring",
        PolicyKind::Sieve => "from the hand towards the newest, then from the oldest",
        PolicyKind::ClockPro => "round the ring from the cold hand",
        PolicyKind::Nru => "lowest class of (accessed, dirty) first, oldest first in a class",
        PolicyKind::Aging => "smallest counter first",
        PolicyKind::Random => "in slot order (the victim is drawn at random)",
        PolicyKind::Opt => "farthest next use first",
        PolicyKind::Unopt => "soonest next use first",
        PolicyKind::Lfu => "fewest uses first",
        PolicyKind::Linux => "inactive list from its tail, then the active list from its tail",
        PolicyKind::Arc => "T1 from its LRU end, then T2 from its LRU end",
        PolicyKind::TwoQ => "A1in oldest first, then Am least recently used first",
        PolicyKind::Lirs => "the HIR queue from its head, then the LIR pages from the stack bottom",
        PolicyKind::S3Fifo => "the small queue oldest first, then the main queue oldest first",
    }
}

pub(crate) fn note_json(n: &Note) -> Value {
    let (label, value, text) = match n.value {
        None => (None, Value::Null, None),
        Some((label, v)) => match v {
            NoteValue::Count(c) => (Some(label), json!(c), Some(c.to_string())),
            NoteValue::Time(t) => (Some(label), json!(t), Some(format!("step {}", t + 1))),
            NoteValue::Never => (Some(label), Value::Null, Some("never".to_owned())),
            NoteValue::Bits8(b) => (Some(label), json!(b), Some(format!("{b:08b}"))),
            NoteValue::Flag(f) => (
                Some(label),
                json!(f),
                Some(if f { "yes" } else { "no" }.into()),
            ),
        },
    };
    json!({"list": n.list, "label": label, "value": value, "text": text})
}

/// The state the page needs from the step before (after the previous
/// reference = before this one).
#[derive(Default)]
struct Before {
    order: Vec<u32>,
    state: Vec<PageState>,
}

/// What the lab's driver knows about each page: when it was loaded and
/// last used (reference indices).
struct Times {
    loaded: Vec<u64>,
    last: Vec<u64>,
}

fn tie_note(kind: PolicyKind, cfg: &PolicyConfig, equal: usize) -> String {
    if equal < 2 {
        return String::new();
    }
    let rule = cfg.ties.or(kind.default_ties()).unwrap_or(Ties::Oldest);
    format!(" ({equal} pages are equal here; the tie rule `{rule}` picks this one)")
}

/// Why `victim` was evicted at this reference, from the state before it.
fn why(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    trace: &DenseTrace,
    before: &Before,
    times: &Times,
    victim: u32,
) -> String {
    let name = |id: u32| page_name(trace, id);
    let step = |t: u64| format!("step {}", t + 1);
    let v = name(victim);
    let pos = before.order.iter().position(|&x| x == victim);
    let state_of = |id: u32| {
        before
            .order
            .iter()
            .position(|&x| x == id)
            .map(|i| before.state[i])
    };
    let vstate = state_of(victim);
    let value_of = |s: Option<PageState>| s.and_then(|s| s.note.value).map(|(_, v)| v);
    let equal_values = || {
        let mine = value_of(vstate);
        before
            .state
            .iter()
            .filter(|s| s.note.value.map(|(_, v)| v) == mine)
            .count()
    };
    match kind {
        PolicyKind::Fifo => format!(
            "FIFO evicts the page loaded first: {v}, loaded at {}.",
            step(times.loaded[victim as usize])
        ),
        PolicyKind::Lru => format!(
            "LRU evicts the least recently used page: {v}, last used at {}.",
            step(times.last[victim as usize])
        ),
        PolicyKind::Mru => format!(
            "MRU evicts the most recently used page: {v}, used at {}.",
            step(times.last[victim as usize])
        ),
        PolicyKind::Clock | PolicyKind::Sieve => {
            // Replay the hand over the state before the reference.
            let n = before.order.len();
            let mut a: Vec<bool> = before.state.iter().map(|s| s.accessed).collect();
            let mut passed = Vec::new();
            let mut i = 0usize;
            let mut guard = 0usize;
            while n > 0 && guard <= 2 * n {
                let k = i % n;
                if a[k] {
                    a[k] = false;
                    passed.push(before.order[k]);
                    i += 1;
                    guard += 1;
                } else {
                    break;
                }
            }
            let stopped = before.order.get(i % n.max(1)).copied();
            if stopped != Some(victim) {
                return format!("{v} was the policy's first candidate.");
            }
            let what = if kind == PolicyKind::Clock {
                "cleared, the page gets a second chance and the hand moves on"
            } else {
                "visited: the bit is cleared and the page stays where it is"
            };
            if passed.is_empty() {
                format!("The hand points at {v}, whose accessed bit is clear: it is evicted.")
            } else {
                let names: Vec<String> = passed.iter().map(|&p| name(p)).collect();
                let full = if passed.len() >= n {
                    " Every page had its accessed bit set, so the hand went all the way round."
                } else {
                    ""
                };
                format!(
                    "The hand passed {} (accessed bit set: {what}) and stopped at {v}, whose accessed bit was clear.{full}",
                    names.join(", ")
                )
            }
        }
        PolicyKind::Nru => match vstate {
            Some(s) => {
                let none_clear = before.state.iter().all(|s| s.accessed);
                format!(
                    "NRU evicts from the lowest non-empty class of (accessed, dirty): {v} was (A={}, D={}){}.",
                    u8::from(s.accessed),
                    u8::from(s.dirty),
                    if none_clear {
                        "; every page had A set, so NRU first cleared all the accessed bits"
                    } else {
                        ""
                    }
                )
            }
            None => format!("{v} was in the lowest class."),
        },
        PolicyKind::Aging => match value_of(vstate) {
            Some(NoteValue::Bits8(b)) => format!(
                "Aging evicts the page with the smallest counter: {v} ({b:08b}){}.",
                tie_note(kind, cfg, equal_values())
            ),
            _ => format!("{v} had the smallest counter."),
        },
        PolicyKind::Random => format!(
            "RANDOM drew {v} from the resident pages (seeded generator, --seed {}).",
            cfg.seed
        ),
        PolicyKind::Opt | PolicyKind::Unopt => {
            let far = kind == PolicyKind::Opt;
            match value_of(vstate) {
                Some(NoteValue::Never) => format!(
                    "{v} is never used again{}{}.",
                    if far {
                        ": evicting it costs no future miss"
                    } else {
                        ""
                    },
                    tie_note(kind, cfg, equal_values())
                ),
                Some(NoteValue::Time(t)) => format!(
                    "{v} is next used at {}, {} than every other resident page.",
                    step(t),
                    if far { "later" } else { "sooner" }
                ),
                _ => format!("{v} was the first candidate."),
            }
        }
        PolicyKind::Lfu => match value_of(vstate) {
            Some(NoteValue::Count(c)) => format!(
                "LFU evicts the page used least often since it was loaded: {v}, {c} use{}{}.",
                if c == 1 { "" } else { "s" },
                tie_note(kind, cfg, equal_values())
            ),
            _ => format!("{v} had the fewest uses."),
        },
        _ => {
            let list = vstate
                .and_then(|s| s.note.list)
                .map_or_else(String::new, |l| format!(" (on the {l} list)"));
            match pos {
                Some(0) => format!(
                    "{v}{list} was the policy's first candidate ({}).",
                    order_text(kind)
                ),
                _ => format!(
                    "{v}{list} was chosen after the policy moved or aged the pages before it ({}).",
                    order_text(kind)
                ),
            }
        }
    }
}

/// Runs the policy again, keeping the first `shown` references with their
/// state, and returns the page data (with `report`, the JSON totals of the
/// whole run, which must equal `totals`).
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn page_data(
    kind: PolicyKind,
    cfg: &PolicyConfig,
    trace: &DenseTrace,
    frames: NonZeroUsize,
    shown: usize,
    report: Value,
    input: &str,
) -> Value {
    let n_ids = trace.n_ids();
    let mut times = Times {
        loaded: vec![0; n_ids],
        last: vec![0; n_ids],
    };
    let mut before = Before::default();
    let mut steps = Vec::new();
    let mut states = Vec::new();
    let mut cells = 0usize;
    let mut limit = shown;
    let totals: Totals = lab::run_first(
        kind,
        cfg,
        trace,
        frames,
        Detail::State,
        shown,
        |s: &Step<'_>| {
            if s.index >= limit {
                return;
            }
            cells += s.resident.len();
            if cells > MAX_CELLS {
                limit = s.index;
                return;
            }
            let t = s.index as u64;
            let why_text = match s.evicted {
                Some(v) => why(kind, cfg, trace, &before, &times, v),
                None if s.hit => format!("{} is resident: a hit.", page_name(trace, s.id)),
                None => format!(
                    "{} is not resident: a miss, loaded into a free frame ({} of {} in use).",
                    page_name(trace, s.id),
                    s.resident.len(),
                    frames
                ),
            };
            if !s.hit {
                times.loaded[s.id as usize] = t;
            }
            times.last[s.id as usize] = t;
            steps.push(json!({
                "page": page_value(trace, s.id),
                "hit": s.hit,
                "evicted": s.evicted.map(|v| page_value(trace, v)),
                "frames": s.resident.iter().map(|&r| page_value(trace, r)).collect::<Vec<_>>(),
            }));
            let pages: Vec<Value> = s
                .resident
                .iter()
                .zip(s.state)
                .map(|(&r, st)| {
                    json!({
                        "a": st.accessed,
                        "d": st.dirty,
                        "note": note_json(&st.note),
                        "loaded": times.loaded[r as usize],
                        "last": times.last[r as usize],
                    })
                })
                .collect();
            states.push(json!({
                "write": trace.is_write(s.index),
                "why": why_text,
                "pages": pages,
            }));
            before.order.clear();
            before.order.extend_from_slice(s.resident);
            before.state.clear();
            before.state.extend_from_slice(s.state);
        },
    );
    let mut report = report;
    if let Value::Object(m) = &mut report {
        m.insert("steps".into(), Value::Array(steps));
    }
    json!({
        "input": input,
        "description": kind.description(),
        "order": order_text(kind),
        "sees_every_access": kind.sees_every_access(),
        "shown": limit.min(totals.refs as usize),
        "cut_by_size": limit < shown && (limit as u64) < totals.refs,
        "state": states,
        "report": report,
    })
}

/// The page's title.
#[must_use]
pub fn title(kind: PolicyKind, frames: NonZeroUsize) -> String {
    format!("vmsim policy: {} with {frames} frames", kind.name())
}
