//! docs/json.md documents every key of every JSON document vmsim writes,
//! and nothing else: this module runs each JSON-emitting command on small
//! inputs that reach its optional parts (swap, fork and copy-on-write,
//! checkpoints, a migration over loopback, every policy and allocator, the
//! segmented and paged explanations ...), collects every key path the
//! documents hold, and fails naming
//!
//! - a path the doc does not list (in the section of that document),
//! - a value whose JSON type is not the one the doc gives,
//! - a documented path no document emitted (so the doc cannot go stale).
//!
//! The doc's grammar (stated in docs/json.md itself): each `##`/`###`
//! section may hold one table `| key | type | unit | meaning |`. A key is a
//! path: `a.b` for an object's key, `a[]` for an array's elements, `{name}`
//! for any key of a map whose keys are data. A type is `integer`,
//! `number`, `string`, `boolean`, `object`, `array`, `map`, `any`, `null`,
//! `array of T` / `map of T` (the elements are then documented by the row
//! itself), joined by ` or `; a link `[..](#section)` in the type cell says
//! the value (or, for `array of`/`map of`, each element) is that section's
//! document, whose keys are checked there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{text, vmsim};

const DOC: &str = include_str!("../../../docs/json.md");

/// The header of a table of keys; other tables (the index) are prose.
const KEY_TABLE_HEADER: &str = "| key | type | unit | meaning |";

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    /// An array's element.
    Elem,
    /// Any key of a map (`{name}` in the doc).
    AnyKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Integer,
    Number,
    String,
    Boolean,
    Object,
    Array,
    Null,
    Any,
}

impl Ty {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "integer" => Self::Integer,
            "number" => Self::Number,
            "string" => Self::String,
            "boolean" => Self::Boolean,
            "object" | "map" => Self::Object,
            "array" => Self::Array,
            "null" => Self::Null,
            "any" => Self::Any,
            _ => return None,
        })
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            Self::Integer => v.is_u64() || v.is_i64(),
            Self::Number => v.is_number(),
            Self::String => v.is_string(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::Array => v.is_array(),
            Self::Null => v.is_null(),
            Self::Any => true,
        }
    }
}

/// A documented key path (or the elements a row's `array of`/`map of` implies).
#[derive(Debug)]
struct Entry {
    pattern: Vec<Seg>,
    types: Vec<Ty>,
    /// The section whose document the value is.
    reference: Option<String>,
    /// The table row (index into `Section::rows`) this entry comes from.
    row: usize,
}

#[derive(Debug)]
struct Section {
    title: String,
    /// The key column of each row, and its line in the doc.
    rows: Vec<(String, usize)>,
    entries: Vec<Entry>,
}

/// GitHub's anchor for a heading.
fn slug(title: &str) -> String {
    title
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

fn parse_path(key: &str, line: usize) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in key.split('.') {
        let (name, elems) = match part.find("[]") {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        assert!(
            elems.chars().all(|c| c == '[' || c == ']') && elems.len() % 2 == 0,
            "docs/json.md:{line}: `{key}`: `[]` only at the end of a step"
        );
        if name.starts_with('{') && name.ends_with('}') {
            segs.push(Seg::AnyKey);
        } else if !name.is_empty() {
            assert!(
                !name.contains(['{', '}', '[', ']', ' ', '`']),
                "docs/json.md:{line}: `{key}`: not a key path"
            );
            segs.push(Seg::Key(name.to_owned()));
        } else {
            assert!(
                !segs.is_empty() || !elems.is_empty(),
                "docs/json.md:{line}: `{key}`: empty step"
            );
        }
        for _ in 0..elems.len() / 2 {
            segs.push(Seg::Elem);
        }
    }
    segs
}

/// The types of a type cell (without its link), and the element types of
/// `array of T` / `map of T`.
fn parse_types(cell: &str, line: usize) -> (Vec<Ty>, Option<(Seg, Vec<Ty>)>) {
    let mut types = Vec::new();
    let mut elem: Option<(Seg, Vec<Ty>)> = None;
    for alt in cell.split(" or ") {
        let alt = alt.trim();
        if let Some((outer, inner)) = alt.split_once(" of ") {
            let ty = Ty::parse(outer.trim())
                .filter(|t| matches!(t, Ty::Array | Ty::Object))
                .unwrap_or_else(|| panic!("docs/json.md:{line}: `{alt}`: array of / map of"));
            types.push(ty);
            let seg = if ty == Ty::Array {
                Seg::Elem
            } else {
                Seg::AnyKey
            };
            let inner: Vec<Ty> = inner
                .split('/')
                .map(|w| {
                    Ty::parse(w.trim()).unwrap_or_else(|| {
                        panic!("docs/json.md:{line}: unknown type `{w}` in `{cell}`")
                    })
                })
                .collect();
            assert!(
                elem.is_none(),
                "docs/json.md:{line}: one `array of`/`map of` per row"
            );
            elem = Some((seg, inner));
        } else {
            types.push(
                Ty::parse(alt)
                    .unwrap_or_else(|| panic!("docs/json.md:{line}: unknown type `{alt}`")),
            );
        }
    }
    (types, elem)
}

/// The link target `#slug` in a cell, and the cell without the link.
fn split_link(cell: &str) -> (String, Option<String>) {
    let Some(open) = cell.find('[') else {
        return (cell.to_owned(), None);
    };
    let close = cell[open..].find("](#").map(|i| open + i);
    let Some(close) = close else {
        return (cell.to_owned(), None);
    };
    let end = cell[close..]
        .find(')')
        .map(|i| close + i)
        .unwrap_or(cell.len());
    let target = cell[close + 3..end].to_owned();
    let mut rest = cell[..open].to_owned();
    rest.push_str(&cell[(end + 1).min(cell.len())..]);
    let rest = rest
        .trim()
        .trim_end_matches(',')
        .trim_end_matches(", see")
        .trim_end_matches(" see")
        .trim_end_matches(',')
        .trim()
        .to_owned();
    (rest, Some(target))
}

/// The cells of a table row (`\\|` is a `|` inside a cell), trimmed.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_owned()).collect()
}

fn parse_doc(doc: &str) -> BTreeMap<String, Section> {
    let mut sections = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_table = false;
    for (i, line) in doc.lines().enumerate() {
        let n = i + 1;
        if line.trim() == KEY_TABLE_HEADER {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
        }
        if let Some(title) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
        {
            let s = slug(title);
            current = Some(s.clone());
            sections.entry(s).or_insert(Section {
                title: title.to_owned(),
                rows: Vec::new(),
                entries: Vec::new(),
            });
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cells = cells(line);
        assert!(
            cells.len() == 4,
            "docs/json.md:{n}: a key row has four cells: key, type, unit, meaning"
        );
        let key = cells[0]
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
            .unwrap_or_else(|| panic!("docs/json.md:{n}: the key in backquotes first"));
        let sec = current
            .as_ref()
            .and_then(|c| sections.get_mut(c))
            .unwrap_or_else(|| panic!("docs/json.md:{n}: a key row outside any section"));
        let pattern = parse_path(key, n);
        let (types, reference) = split_link(&cells[1]);
        let (types, elem) = parse_types(&types, n);
        let row = sec.rows.len();
        assert!(
            !sec.rows.iter().any(|(k, _)| k == key),
            "docs/json.md:{n}: `{key}` is listed twice in {}",
            sec.title
        );
        sec.rows.push((key.to_owned(), n));
        match elem {
            Some((seg, inner)) => {
                sec.entries.push(Entry {
                    pattern: pattern.clone(),
                    types,
                    reference: None,
                    row,
                });
                let mut child = pattern;
                child.push(seg);
                sec.entries.push(Entry {
                    pattern: child,
                    types: inner,
                    reference,
                    row,
                });
            }
            None => sec.entries.push(Entry {
                pattern,
                types,
                reference,
                row,
            }),
        }
    }
    for (s, sec) in &sections {
        for e in &sec.entries {
            if let Some(r) = &e.reference {
                assert!(
                    sections.contains_key(r),
                    "docs/json.md:{}: link to #{r}, no such section (in {s})",
                    sec.rows[e.row].1
                );
            }
        }
    }
    sections
}

fn seg_matches(p: &Seg, s: &Seg) -> bool {
    match (p, s) {
        (Seg::AnyKey, Seg::Key(_)) => true,
        _ => p == s,
    }
}

fn show(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Elem => out.push_str("[]"),
            Seg::AnyKey => out.push_str(".{}"),
        }
    }
    out
}

/// What the check found.
#[derive(Default)]
struct Findings {
    /// "section: path" -> the first document that printed it.
    undocumented: BTreeMap<String, String>,
    /// "section: key (documented types, found value)" -> the first document.
    mistyped: BTreeMap<String, String>,
    /// (section, row) pairs some document used.
    used: BTreeSet<(String, usize)>,
}

/// Looks `path` (with value `v`) up in `section`, following links.
fn check_path(
    doc: &BTreeMap<String, Section>,
    section: &str,
    path: &[Seg],
    v: &Value,
    (what, full): (&str, &str),
    f: &mut Findings,
) {
    let sec = &doc[section];
    // The most literal exact match, else the longest linked prefix.
    let exact = sec
        .entries
        .iter()
        .filter(|e| {
            e.pattern.len() == path.len()
                && e.pattern.iter().zip(path).all(|(p, s)| seg_matches(p, s))
        })
        .min_by_key(|e| e.pattern.iter().filter(|p| **p == Seg::AnyKey).count());
    if let Some(e) = exact {
        f.used.insert((section.to_owned(), e.row));
        if !e.types.iter().any(|t| t.admits(v)) {
            f.mistyped
                .entry(format!(
                    "{}: `{}` is documented as {:?}",
                    sec.title, sec.rows[e.row].0, e.types
                ))
                .or_insert_with(|| format!("found {v}, printed by {what}"));
        }
        return;
    }
    let linked = sec
        .entries
        .iter()
        .filter(|e| {
            e.reference.is_some()
                && e.pattern.len() < path.len()
                && e.pattern.iter().zip(path).all(|(p, s)| seg_matches(p, s))
        })
        .max_by_key(|e| e.pattern.len());
    match linked {
        Some(e) => {
            let target = e.reference.as_deref().unwrap_or_default();
            check_path(doc, target, &path[e.pattern.len()..], v, (what, full), f);
        }
        None => {
            f.undocumented
                .entry(format!(
                    "`{full}` (no row `{}` in {})",
                    show(path),
                    sec.title
                ))
                .or_insert_with(|| format!("printed by {what}"));
        }
    }
}

/// A value's JSON type, for telling two values of one path apart.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
    if !path.is_empty() {
        // Containers are recorded without their contents (types only).
        let shallow = match v {
            Value::Object(_) => Value::Object(serde_json::Map::new()),
            Value::Array(_) => Value::Array(Vec::new()),
            other => other.clone(),
        };
        out.push((path.clone(), shallow));
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(Seg::Key(k.clone()));
                walk(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for x in a {
                path.push(Seg::Elem);
                walk(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Every JSON document the commands print, by the doc section that
/// documents it.
struct Documents {
    by_section: Vec<(String, String, Value)>,
}

impl Documents {
    fn add(&mut self, section: &str, what: &str, v: Value) {
        self.by_section
            .push((section.to_owned(), what.to_owned(), v));
    }

    fn run(&mut self, section: &str, args: &[&str]) {
        let out = text(args);
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("vmsim {}: not JSON: {e}\n{out}", args.join(" ")));
        self.add(section, &format!("vmsim {}", args.join(" ")), v);
    }
}

fn trace(name: &str) -> String {
    format!(
        "{}/../vmsim-trace/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A migration over loopback: the listener's report and the source's.
fn migrate(dir: &Path, mode: &str) -> (Value, Value) {
    let key = dir.join(format!("{mode}.key"));
    vmsim()
        .args(["migrate", "keygen", "--key-file", s(&key)])
        .assert()
        .success();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args([
            "migrate",
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--timeout",
            "20",
            "--json",
            "--digest",
            "--key-file",
            s(&key),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the listener");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("the listening line");
    let addr = line
        .trim()
        .strip_prefix("vmsim migrate: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    let source = text(&[
        "run",
        &trace("tinystatic.lackey.zst"),
        "-q",
        "--json",
        "--digest",
        "--set",
        "migrate.bandwidth=64",
        "--set",
        "migrate.latency=100",
        "--migrate-to",
        &addr,
        "--migrate-at",
        "50K",
        "--migrate-mode",
        mode,
        "--key-file",
        s(&key),
    ]);
    let out = child.wait_with_output().expect("the listener ends");
    assert!(out.status.success(), "listener failed");
    (
        serde_json::from_slice(&out.stdout).expect("listener JSON"),
        serde_json::from_str(&source).expect("source JSON"),
    )
}

/// Runs every JSON-emitting command on inputs that reach its optional parts.
fn documents(dir: &Path) -> Documents {
    let mut d = Documents {
        by_section: Vec::new(),
    };
    let tiny = trace("tinystatic.lackey.zst");
    let img = data("sv39.img");

    // run: fork, copy-on-write and swap; inverted and hashed tables; a
    // killed process; checkpoints; digests; both sides of a migration.
    d.run(
        "run-report",
        &[
            "run",
            &data("fork-cow-swap.toml"),
            "-q",
            "--json",
            "--digest",
        ],
    );
    d.run(
        "run-report",
        &[
            "run",
            "synth:zipf,pages=300,refs=20K",
            "-q",
            "--json",
            "--set",
            "memory.frames=256",
            "--set",
            "paging.structure=\"inverted\"",
        ],
    );
    d.run(
        "run-report",
        &[
            "run",
            "synth:loop,pages=64,repeats=3",
            "-q",
            "--json",
            "--set",
            "paging.structure=\"hashed\"",
        ],
    );
    d.run(
        "run-report",
        &[
            "run",
            &tiny,
            "--preset",
            "classroom",
            "--allow-kills",
            "-q",
            "--json",
        ],
    );
    let ck = dir.join("ck");
    d.run(
        "run-report",
        &[
            "run",
            "synth:scan,bytes=64KiB,stride=4096,write=1,passes=4",
            "-q",
            "--json",
            "--checkpoint-every",
            "20",
            "--checkpoint-dir",
            s(&ck),
        ],
    );
    d.run(
        "run-report",
        &["restore", s(&ck), "--at", "1", "-q", "--json"],
    );
    for mode in ["stop-and-copy", "pre-copy", "post-copy"] {
        let (dest, source) = migrate(dir, mode);
        d.add("run-report", &format!("migrate listen ({mode})"), dest);
        d.add("run-report", &format!("run --migrate-to ({mode})"), source);
    }

    // checkpoint ls/show, replay (both questions).
    d.run("checkpoint-ls", &["checkpoint", "ls", s(&ck), "--json"]);
    d.run(
        "checkpoint-show",
        &["checkpoint", "show", s(&ck), "--at", "1", "--json"],
    );
    d.run(
        "checkpoint-show",
        &[
            "checkpoint",
            "show",
            s(&ck),
            "--at",
            "2",
            "--pid",
            "1",
            "--json",
        ],
    );
    let watched = "0x10000000";
    d.run(
        "replay-writes",
        &["replay", s(&ck), "--watch", watched, "--json"],
    );
    d.run(
        "replay-writes",
        &["replay", s(&ck), "--watch", "0x0", "--pid", "1", "--json"],
    );
    d.run(
        "replay-state",
        &[
            "replay",
            s(&ck),
            "--watch",
            watched,
            "--until",
            "30",
            "--json",
        ],
    );

    // sweep: the record files and the merge.
    let spec = dir.join("grid.toml");
    std::fs::write(
        &spec,
        "inputs = [\"synth:loop,pages=20,repeats=2\"]\n[grid]\n\"memory.frames\" = [16, 32]\n\"kernel.policy\" = [\"clock\", \"fifo\"]\n",
    )
    .expect("write the grid");
    let results = dir.join("results");
    vmsim()
        .args(["sweep", s(&spec), "--out", s(&results), "-j", "1", "-q"])
        .assert()
        .success();
    for f in std::fs::read_dir(&results).expect("results") {
        let p = f.expect("entry").path();
        if p.extension().is_some_and(|e| e == "json") {
            let v: Value =
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("a record");
            d.add("sweep-record-files", &p.display().to_string(), v);
        }
    }
    d.run("sweep-merge", &["sweep", "merge", s(&results), "--json"]);

    // trace stats; mrc exact, SHARDS, miniature simulation, TLB.
    d.run("trace-stats", &["trace", "stats", &tiny, "--json"]);
    d.run("mrc", &["mrc", &tiny, "--sizes", "4,16", "--json"]);
    d.run(
        "mrc",
        &[
            "mrc", &tiny, "--sizes", "4,16", "--shards", "10%", "-p", "lru", "--json",
        ],
    );
    d.run(
        "mrc",
        &[
            "mrc",
            &tiny,
            "--sizes",
            "4,16",
            "--sample",
            "10%",
            "-p",
            "lru,fifo",
            "--compare-full",
            "--json",
        ],
    );
    d.run("mrc", &["mrc", &tiny, "--sizes", "4", "--tlb", "--json"]);

    // policy: every policy `--list` names, and --quiet.
    let list = text(&["policy", "--list"]);
    let policies: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(policies.len() > 10, "policy --list: {list}");
    for policy in policies {
        d.run(
            "policy",
            &[
                "policy",
                "--policy",
                policy,
                "--frames",
                "3",
                "--refs",
                "1,2,3,4,1,2w,5,1,2,3,4,5",
                "--json",
            ],
        );
    }
    d.run(
        "policy",
        &[
            "policy",
            "--policy",
            "opt",
            "--frames",
            "3",
            "--refs",
            "1,2,3,1,4,2",
            "--json",
            "--quiet",
        ],
    );

    // alloc: each allocator, a failure, a free, --quiet.
    d.run(
        "alloc",
        &["alloc", "--heap", "100", "--ops", "a3,a5,f0,a200", "--json"],
    );
    d.run(
        "alloc",
        &[
            "alloc", "--heap", "100", "--ops", "a3,a5,f0", "--json", "--quiet",
        ],
    );
    d.run(
        "alloc",
        &[
            "alloc",
            "--allocator",
            "buddy",
            "--heap",
            "64",
            "--ops",
            "a8,a4,f0",
            "--json",
        ],
    );
    d.run(
        "alloc",
        &[
            "alloc",
            "--allocator",
            "slab",
            "--heap",
            "64",
            "--ops",
            "a100,a100,f0",
            "--json",
        ],
    );

    // explain: a walk and its load, walks that fault, an address fault,
    // no memory; segments through paging or to a physical load; faults.
    let sv39 = ["--arch", "sv39", "--mem", img.as_str(), "--root", "0x1000"];
    for (args, section) in [
        (vec!["0x40415678", "--load-size", "4"], "explain-paging"),
        (vec!["0x40800000"], "explain-paging"),
        (vec!["0x0"], "explain-paging"),
    ] {
        let mut all: Vec<&str> = vec!["explain"];
        all.extend(sv39);
        all.extend(args);
        all.push("--json");
        d.run(section, &all);
    }
    d.run("explain-paging", &["explain", "0x800000000000", "--json"]);
    d.run("explain-paging", &["explain", "0x1000", "--json"]);
    d.run(
        "explain-segment",
        &[
            "explain",
            "--arch",
            "sv39",
            "--segment",
            "1:0x40000000:0xfffffff",
            "--mem",
            &img,
            "--root",
            "0x1000",
            "0x1:0x415678",
            "--json",
        ],
    );
    d.run(
        "explain-segment",
        &[
            "explain",
            "--segment",
            "1:0x0:0xffff",
            "--mem",
            &img,
            "--load-size",
            "4",
            "0x1:0x1000",
            "--json",
        ],
    );
    for (segment, address, access) in [
        ("1:0x2000:0x1ff", "0x1:0x2ff", "read"),
        ("1:0x2000:0x1ff:r", "0x1:0xff", "write"),
        ("1:0x2000:0x1ff", "0x2:0x0", "read"),
        ("1:0x2000:0x1ff:rwn", "0x1:0x0", "read"),
        ("1:0x2000:0x1ff:rw0", "0x1:0x0", "read"),
    ] {
        d.run(
            "explain-segment",
            &[
                "explain",
                "--segment",
                segment,
                "--access",
                access,
                address,
                "--json",
            ],
        );
    }
    let book = [
        "--va-bits",
        "14",
        "--segments",
        "code=0:32K:2K,stack=3:28K:2K:down",
    ];
    for (address, access) in [
        ("15360", "read"),
        ("3000", "read"),
        ("0x10000", "read"),
        ("0x1000", "read"),
        ("0x100", "write"),
    ] {
        let mut all: Vec<&str> = vec!["explain"];
        all.extend(book);
        all.extend(["--access", access, address, "--json"]);
        d.run("explain-segments", &all);
    }
    d.run(
        "explain-segments",
        &[
            "explain",
            "--segments",
            "code=0:0:2K",
            "--mem",
            &img,
            "--load-size",
            "8",
            "0x10",
            "--json",
        ],
    );

    // calc: every optional part; more than 64 bits; no level fits; calc eat.
    d.run(
        "calc",
        &[
            "calc",
            "--va-bits",
            "32",
            "--page-size",
            "4KiB",
            "--pte-size",
            "4",
            "--pa-bits",
            "36",
            "--processes",
            "1000",
            "--level-bits",
            "10,10",
            "--used",
            "0-1MiB",
            "--used",
            "3GiB-4GiB",
            "--compare-page-size",
            "4MiB",
            "--address",
            "0x12345678",
            "--element-size",
            "4",
            "--json",
        ],
    );
    d.run("calc", &["calc", "--arch", "x86-64", "--json"]);
    d.run(
        "calc",
        &[
            "calc",
            "--va-bits",
            "64",
            "--page-size",
            "16",
            "--pte-size",
            "16",
            "--compare-page-size",
            "8",
            "--json",
        ],
    );
    d.run(
        "calc-eat",
        &[
            "calc",
            "eat",
            "--hit-ratio",
            "0.9",
            "--tlb-ns",
            "1",
            "--mem-ns",
            "100",
            "--levels",
            "4",
            "--json",
        ],
    );
    d.run(
        "calc-eat",
        &[
            "calc",
            "eat",
            "--hit-ratio",
            "99%",
            "--tlb-ns",
            "1",
            "--mem-ns",
            "100",
            "--arch",
            "sv39",
            "--json",
        ],
    );

    // exercise: every kind, with and without answers, saved, another format.
    let save = dir.join("ex");
    let paging = "exercise-translate-and-multilevel";
    d.run(
        paging,
        &[
            "exercise",
            "translate",
            "--seed",
            "1",
            "--answers",
            "--json",
            "--save",
            s(&save),
        ],
    );
    d.run(
        paging,
        &[
            "exercise",
            "multilevel",
            "--seed",
            "1",
            "--answers",
            "--json",
        ],
    );
    d.run(
        paging,
        &[
            "exercise",
            "multilevel",
            "--seed",
            "7",
            "--arch",
            "x86-32",
            "--count",
            "2",
            "--json",
        ],
    );
    d.run(
        "exercise-segment",
        &["exercise", "segment", "--seed", "1", "--answers", "--json"],
    );
    d.run(
        "exercise-segment",
        &["exercise", "segment", "--seed", "3", "--accesses", "--json"],
    );
    d.run(
        "exercise-policy",
        &["exercise", "policy", "--seed", "1", "--answers", "--json"],
    );
    d.run(
        "exercise-policy",
        &["exercise", "policy", "--seed", "1", "--json"],
    );
    d.run(
        "exercise-alloc",
        &["exercise", "alloc", "--seed", "1", "--answers", "--json"],
    );
    d.run(
        "exercise-alloc",
        &[
            "exercise",
            "alloc",
            "--seed",
            "2",
            "--allocator",
            "buddy",
            "--answers",
            "--json",
        ],
    );
    d.run(
        "exercise-alloc",
        &["exercise", "alloc", "--seed", "2", "--json"],
    );
    d
}

#[test]
fn every_json_key_is_documented_and_every_documented_key_is_emitted() {
    let doc = parse_doc(DOC);
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = documents(dir.path());
    let mut f = Findings::default();
    for (section, what, v) in &docs.by_section {
        assert!(
            doc.contains_key(section),
            "docs/json.md has no section #{section}"
        );
        let mut paths = Vec::new();
        walk(v, &mut Vec::new(), &mut paths);
        let mut seen = BTreeSet::new();
        for (path, value) in paths {
            if !seen.insert((show(&path), kind(&value))) {
                continue;
            }
            check_path(&doc, section, &path, &value, (what, &show(&path)), &mut f);
        }
    }
    let mut stale = Vec::new();
    for (slug, sec) in &doc {
        for (row, (key, line)) in sec.rows.iter().enumerate() {
            if !f.used.contains(&(slug.clone(), row)) {
                stale.push(format!("docs/json.md:{line}: `{key}` ({})", sec.title));
            }
        }
    }
    let list = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, by)| format!("  {k}  ({by})"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut report = String::new();
    if !f.undocumented.is_empty() {
        report += &format!(
            "{} key paths are not in docs/json.md:\n{}\n",
            f.undocumented.len(),
            list(&f.undocumented)
        );
    }
    if !f.mistyped.is_empty() {
        report += &format!(
            "{} values do not have their documented type:\n{}\n",
            f.mistyped.len(),
            list(&f.mistyped)
        );
    }
    if !stale.is_empty() {
        report += &format!(
            "{} documented keys no document emitted (remove them, or make a test input reach them):\n  {}\n",
            stale.len(),
            stale.join("\n  ")
        );
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_doc_grammar_reads_paths_types_and_links() {
    assert_eq!(
        parse_path("processes[].faults.cow_copy", 1),
        vec![
            Seg::Key("processes".into()),
            Seg::Elem,
            Seg::Key("faults".into()),
            Seg::Key("cow_copy".into())
        ]
    );
    assert_eq!(
        parse_path("tlb_levels[].hits_by_page_size.{size}", 1),
        vec![
            Seg::Key("tlb_levels".into()),
            Seg::Elem,
            Seg::Key("hits_by_page_size".into()),
            Seg::AnyKey
        ]
    );
    let (types, elem) = parse_types("integer or null", 1);
    assert_eq!(types, vec![Ty::Integer, Ty::Null]);
    assert!(elem.is_none());
    let (types, elem) = parse_types("array of integer", 1);
    assert_eq!(types, vec![Ty::Array]);
    assert_eq!(elem, Some((Seg::Elem, vec![Ty::Integer])));
    assert_eq!(
        split_link("object, see [Run report](#run-report)"),
        ("object".to_owned(), Some("run-report".to_owned()))
    );
    assert_eq!(
        slug("Run report (`vmsim run --json`)"),
        "run-report-vmsim-run---json"
    );
    let doc = parse_doc(
        "## A\n| key | type | unit | meaning |\n|---|---|---|---|\n| `x` | integer | | x |\n| `m` | map of integer | pages | m |\n| `r` | object, see [B](#b) | | r |\n## B\n| key | type | unit | meaning |\n|---|---|---|---|\n| `y` | string | | y |\n\n| `not` | a key | table | row |\n",
    );
    let mut f = Findings::default();
    let k = |s: &str| Seg::Key(s.into());
    let t = ("test", "");
    check_path(&doc, "a", &[k("x")], &Value::from(3), t, &mut f);
    check_path(&doc, "a", &[k("m"), k("4 KiB")], &Value::from(3), t, &mut f);
    check_path(&doc, "a", &[k("r"), k("y")], &Value::from("s"), t, &mut f);
    assert!(f.undocumented.is_empty() && f.mistyped.is_empty());
    assert_eq!(f.used.len(), 3, "each row used once");
    check_path(&doc, "a", &[k("x")], &Value::from("three"), t, &mut f);
    check_path(
        &doc,
        "a",
        &[k("r"), k("z")],
        &Value::from(1),
        ("test", "r.z"),
        &mut f,
    );
    check_path(
        &doc,
        "a",
        &[k("m"), k("k"), k("deeper")],
        &Value::from(1),
        t,
        &mut f,
    );
    assert_eq!(f.mistyped.len(), 1);
    assert_eq!(f.undocumented.len(), 2);
    assert!(
        f.undocumented
            .keys()
            .any(|k| k.contains("`r.z` (no row `z` in B)")),
        "{:?}",
        f.undocumented
    );
}
