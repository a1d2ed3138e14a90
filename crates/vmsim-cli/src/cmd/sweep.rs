//! `vmsim sweep`: a grid of `vmsim run`s (the cartesian product of lists in
//! a TOML spec), run in parallel, one record file per run, resumable, split
//! across machines with `--shard I/N` (Slurm job arrays), merged into one
//! table with `vmsim sweep merge`.
//!
//! Records: `DIR/run-<id>.json`, where `<id>` is the first 16 hex digits of
//! the SHA-256 of the run's parameters as compact JSON with sorted keys (a
//! stable hash: the same parameters give the same name on every machine and
//! version). Each holds `{"spec_hash", "params", "report"}` and is written
//! atomically (temporary file, then rename), so a killed run leaves no
//! record and a rerun does it again; a complete record is never rewritten.
//! `spec_hash` is the SHA-256 of the expanded spec (inputs, grid, set,
//! config file contents): a record of another spec in the same directory
//! is an error, as is a record that cannot be read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use vmsim::sim::Simulation;

/// Run a grid of simulations: every combination of the spec's lists.
///
/// SPEC.toml:
///   inputs = ["a.lackey.zst", "synth:zipf,pages=5000,refs=1M"]  # one run each
///   # an entry may be a list: several traces run together as processes
///   set = ["run.quantum=1000"]        # optional: --set for every run
///   config = "machine.toml"           # optional: --config for every run
///   [grid]
///   preset = ["x86-64", "classroom"]
///   "memory.frames" = [1024, 4096]    # any key --set accepts
///   "kernel.policy" = ["clock", "fifo"]
/// Paths in the spec are relative to the spec's directory.
///
/// Each run is `vmsim run` in-process (same config layering: preset, config,
/// set, grid keys), single-threaded; -j runs go at once (default: every
/// core). Each writes DIR/run-<id>.json ({spec_hash, params, report}; <id>
/// = first 16 hex digits of SHA-256 of the parameters as compact sorted
/// JSON); records already there are skipped, so a killed sweep resumes.
/// --shard I/N runs the runs whose index in the grid is I modulo N; I and N
/// default to Slurm's array variables: N = SLURM_ARRAY_TASK_COUNT, I =
/// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP
/// (so --array=1-8 or 0-14:2 work as well as 0-7).
///
/// Examples:
///   vmsim sweep grid.toml --out results -j 2
///   vmsim sweep grid.toml --out results --shard 0/4
///   vmsim sweep merge results --csv > table.csv
///   vmsim sweep grid.toml --list
#[derive(Debug, Args)]
#[command(verbatim_doc_comment, args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub merge: Option<SweepCommand>,

    /// The spec (TOML).
    #[arg(value_name = "SPEC.toml")]
    pub spec: Option<PathBuf>,

    /// Directory for the records (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Runs at once (default: every core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Run only share I of N (0-based); defaults from Slurm's array variables.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Print the runs of the grid (index, id, parameters) and stop.
    #[arg(long)]
    pub list: bool,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `vmsim sweep merge`.
#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Merge the records of DIR into one table, one row per run, sorted by
    /// parameters: the same grid gives the same bytes however it was split.
    ///
    /// CSV columns: the parameters, then every number of the report as a
    /// dotted path (tlb_levels.0.hits, kernel.demand_zero, ...; the
    /// timeline left out). JSON: {"schema_version", "runs": [{"params", "report"}...]}.
    Merge(MergeArgs),
}

/// `vmsim sweep merge DIR`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The records' directory.
    pub dir: PathBuf,
    /// Print CSV (the default).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One run of the grid.
#[derive(Debug, Clone)]
struct RunSpec {
    index: usize,
    /// Parameter name -> value, as recorded (sorted by name).
    params: BTreeMap<String, Value>,
    inputs: Vec<String>,
    preset: Option<String>,
    sets: Vec<String>,
}

/// A spec, expanded.
#[derive(Debug)]
struct Grid {
    hash: String,
    config: Option<PathBuf>,
    runs: Vec<RunSpec>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The record id of a run: first 16 hex digits of SHA-256 of its
/// parameters as compact JSON with sorted keys.
fn run_id(params: &BTreeMap<String, Value>) -> String {
    let text = serde_json::to_string(params).unwrap_or_default();
    sha256_hex(text.as_bytes())[..16].to_owned()
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The `--set` text of a grid value.
fn set_text(key: &str, v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{key}={}", toml::Value::String(s.clone())),
        other => format!("{key}={other}"),
    }
}

fn load(spec_path: &Path) -> anyhow::Result<Grid> {
    let name = spec_path.display().to_string();
    let text = vmsim_trace::limits::read_text_limited(
        spec_path,
        vmsim_trace::limits::MAX_TOML_BYTES,
        "a sweep file",
    )
    .with_context(|| format!("{name}: cannot read"))?;
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{name}: {}", e.to_string().trim().replace('\n', " ")))?;
    let base = spec_path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| -> String {
        if p.starts_with(vmsim_trace::source::SYNTH_PREFIX)
            || p == "-"
            || Path::new(p).is_absolute()
        {
            p.to_owned()
        } else {
            base.join(p).display().to_string()
        }
    };
    for key in doc.keys() {
        if !matches!(key.as_str(), "inputs" | "grid" | "set" | "config") {
            bail!("{name}: unknown key '{key}' (expected inputs, grid, set, config)");
        }
    }
    // inputs: a list of traces or of lists of traces.
    let Some(toml::Value::Array(inputs)) = doc.get("inputs") else {
        bail!("{name}: 'inputs' must be a list of traces, e.g. inputs = [\"a.lackey.zst\"]");
    };
    if inputs.is_empty() {
        bail!("{name}: 'inputs' is an empty list");
    }
    let mut input_sets: Vec<(Value, Vec<String>)> = Vec::new();
    for i in inputs {
        let list: Vec<String> = match i {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(a) if !a.is_empty() => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .with_context(|| {
                    format!("{name}: 'inputs': a list entry must hold only strings")
                })?,
            _ => bail!(
                "{name}: 'inputs': each entry is a trace (string) or a non-empty list of traces"
            ),
        };
        if list.iter().any(|s| s == "-") {
            bail!("{name}: 'inputs': standard input (-) cannot be swept");
        }
        let label = if list.len() == 1 {
            Value::String(list[0].clone())
        } else {
            Value::Array(list.iter().cloned().map(Value::String).collect())
        };
        input_sets.push((label, list.iter().map(|s| resolve(s)).collect()));
    }
    let sets: Vec<String> = match doc.get("set") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{name}: 'set' must be a list of \"key=value\" strings"))?,
        Some(_) => bail!("{name}: 'set' must be a list of \"key=value\" strings"),
    };
    let (config, config_text) = match doc.get("config") {
        None => (None, String::new()),
        Some(toml::Value::String(p)) => {
            let path = PathBuf::from(resolve(p));
            let t = vmsim_trace::limits::read_text_limited(
                &path,
                vmsim_trace::limits::MAX_TOML_BYTES,
                "a config file",
            )
            .with_context(|| format!("{name}: 'config': cannot read {}", path.display()))?;
            (Some(path), t)
        }
        Some(_) => bail!("{name}: 'config' must be a file name"),
    };
    let grid = match doc.get("grid") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => bail!("{name}: [grid] must be a table of lists"),
    };
    let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
    for (key, v) in &grid {
        let toml::Value::Array(values) = v else {
            bail!("{name}: [grid] key '{key}' must be a list of values");
        };
        if values.is_empty() {
            bail!("{name}: [grid] key '{key}' is an empty list");
        }
        if key == "input" || key == "inputs" {
            bail!("{name}: [grid] key '{key}': give the inputs as the top-level 'inputs' list");
        }
        axes.push((key.clone(), values.clone()));
    }
    // Expand: inputs outermost, then the grid keys in sorted order.
    let mut runs = Vec::new();
    let total = axes
        .iter()
        .try_fold(input_sets.len(), |acc, (_, v)| acc.checked_mul(v.len()))
        .filter(|&n| n <= 10_000_000)
        .with_context(|| format!("{name}: the grid has more than 10M runs"))?;
    for index in 0..total {
        let mut rest = index;
        let mut pick = vec![0usize; axes.len()];
        for (k, (_, values)) in axes.iter().enumerate().rev() {
            pick[k] = rest % values.len();
            rest /= values.len();
        }
        let (label, inputs) = &input_sets[rest];
        let mut params = BTreeMap::new();
        params.insert("input".to_owned(), label.clone());
        let mut preset = None;
        let mut run_sets = sets.clone();
        for ((key, values), &p) in axes.iter().zip(&pick) {
            let v = &values[p];
            params.insert(key.clone(), toml_to_json(v));
            if key == "preset" {
                let Some(s) = v.as_str() else {
                    bail!("{name}: [grid] key 'preset': values must be preset names");
                };
                preset = Some(s.to_owned());
            } else {
                run_sets.push(set_text(key, v));
            }
        }
        runs.push(RunSpec {
            index,
            params,
            inputs: inputs.clone(),
            preset,
            sets: run_sets,
        });
    }
    // Check every distinct configuration now, naming the key at fault.
    let mut seen = std::collections::HashSet::new();
    let probe = vmsim_trace::scenario::Scenario {
        description: String::new(),
        quantum: None,
        preset: None,
        set: Vec::new(),
        processes: Vec::new(),
    };
    for r in &runs {
        if !seen.insert((r.preset.clone(), r.sets.clone())) {
            continue;
        }
        if let Err(e) = super::run::layered_config(
            r.preset.as_deref(),
            config.as_deref(),
            &probe,
            &r.sets,
            false,
        ) {
            let mut keys: Vec<&str> = axes.iter().map(|(k, _)| k.as_str()).collect();
            keys.retain(|k| crate::one_line(&e).contains(*k));
            let which = match keys.first() {
                Some(k) => format!("[grid] key '{k}'"),
                None => "the spec's settings".to_owned(),
            };
            let params = serde_json::to_string(&r.params).unwrap_or_default();
            bail!("{name}: {which}: {} (run {params})", crate::one_line(&e));
        }
    }
    let canon = json!({
        "inputs": input_sets.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>(),
        "labels": input_sets.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        "grid": axes.iter().map(|(k, v)| (k.clone(), v.iter().map(toml_to_json).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
        "set": sets,
        "config": config_text,
    });
    Ok(Grid {
        hash: sha256_hex(canon.to_string().as_bytes()),
        config,
        runs,
    })
}

/// `I/N` from the flag, or from Slurm's array variables.
fn shard(flag: Option<&str>) -> anyhow::Result<(usize, usize)> {
    let parse = |t: &str, what: &str| -> anyhow::Result<usize> {
        t.trim()
            .parse::<usize>()
            .with_context(|| format!("{what}: '{t}' is not a whole number"))
    };
    if let Some(text) = flag {
        let (i, n) = text
            .split_once('/')
            .with_context(|| format!("--shard: expected I/N (e.g. 0/4), got '{text}'"))?;
        let (i, n) = (parse(i, "--shard")?, parse(n, "--shard")?);
        if n == 0 || i >= n {
            bail!("--shard {text}: the index must be below the count (0 <= I < N)");
        }
        return Ok((i, n));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
        (Some(id), Some(count)) => {
            let id = parse(&id, "SLURM_ARRAY_TASK_ID")?;
            let n = parse(&count, "SLURM_ARRAY_TASK_COUNT")?;
            let min =
                var("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| parse(&m, "SLURM_ARRAY_TASK_MIN"))?;
            let step = var("SLURM_ARRAY_TASK_STEP")
                .map_or(Ok(1), |s| parse(&s, "SLURM_ARRAY_TASK_STEP"))?
                .max(1);
            let Some(off) = id.checked_sub(min) else {
                bail!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}");
            };
            let i = off / step;
            if n == 0 || i >= n || off % step != 0 {
                bail!(
                    "Slurm array task {id} (min {min}, step {step}) is not one of {n} tasks: shard index out of range"
                );
            }
            Ok((i, n))
        }
        _ => Ok((0, 1)),
    }
}

/// What a record file holds, checked against the grid.
enum Existing {
    Missing,
    Done,
}

/// A record's bytes: a regular file (a record is never a device, a FIFO or
/// a link to one), of at most [`vmsim_trace::limits::MAX_RECORD_BYTES`].
fn read_record(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a record is one; move it away)",
        ));
    }
    vmsim_trace::limits::read_limited(
        path,
        vmsim_trace::limits::MAX_RECORD_BYTES,
        "a sweep record",
    )
}

fn check_record(path: &Path, grid_hash: &str, run: &RunSpec) -> anyhow::Result<Existing> {
    let bytes = match read_record(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: corrupt record ({e}); it was left as it is: move it away to run it again",
            path.display()
        )
    })?;
    let spec = v.get("spec_hash").and_then(Value::as_str);
    if spec != Some(grid_hash) {
        bail!(
            "{}: a record of another spec (spec hash {}, this spec {grid_hash}): the spec changed since it was written; use another --out directory",
            path.display(),
            spec.unwrap_or("missing")
        );
    }
    let params = serde_json::to_value(&run.params)?;
    if v.get("params") != Some(&params) || !v.get("report").is_some_and(Value::is_object) {
        bail!(
            "{}: corrupt record (its parameters or report do not match its name); it was left as it is: move it away to run it again",
            path.display()
        );
    }
    Ok(Existing::Done)
}

fn run_one(run: &RunSpec, grid: &Grid, dir: &Path) -> anyhow::Result<()> {
    let mut scenario = super::run::scenario_of(&run.inputs)?;
    // The report names the inputs as the spec does, not as resolved from
    // wherever the spec was read, so records agree across machines.
    scenario.description = match &run.params["input"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cfg = super::run::layered_config(
        run.preset.as_deref(),
        grid.config.as_deref(),
        &scenario,
        &run.sets,
        false,
    )?;
    let report = Simulation::new(cfg)?.run(&scenario, &mut NoProgress)?;
    let record = json!({
        "spec_hash": grid.hash,
        "params": run.params,
        "report": report,
    });
    let path = dir.join(format!("run-{}.json", run_id(&run.params)));
    let mut tmp = vmsim_trace::output::temp_next_to(&path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    serde_json::to_writer_pretty(&mut tmp, &record)?;
    tmp.write_all(b"\n")?;
    vmsim_trace::output::commit(tmp, &path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

struct NoProgress;
impl vmsim::sim::Observer for NoProgress {}

/// Runs `vmsim sweep`.
pub fn run(args: &SweepArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(SweepCommand::Merge(m)) = &args.merge {
        return merge(m, out);
    }
    let Some(spec) = &args.spec else {
        bail!("give a SPEC.toml (or `vmsim sweep merge DIR`)");
    };
    let grid = load(spec)?;
    let (si, sn) = shard(args.shard.as_deref())?;
    let mine: Vec<&RunSpec> = grid.runs.iter().filter(|r| r.index % sn == si).collect();
    if args.list {
        for r in &mine {
            writeln!(
                out,
                "{} run-{} {}",
                r.index,
                run_id(&r.params),
                serde_json::to_string(&r.params)?
            )?;
        }
        return Ok(());
    }
    let Some(dir) = &args.out else {
        bail!("--out DIR: required (where the records go)");
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create", dir.display()))?;
    let mut todo = Vec::new();
    for r in &mine {
        let path = dir.join(format!("run-{}.json", run_id(&r.params)));
        if let Existing::Missing = check_record(&path, &grid.hash, r)? {
            todo.push(*r);
        }
    }
    if let Some(j) = args.jobs
        && j == 0
    {
        bail!("-j: must be at least 1");
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Each run is single-threaded: no zstd helper thread.
    vmsim_trace::input::set_overlap(false);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("-j: cannot start the threads")?;
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let b = ProgressBar::new(todo.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs  {elapsed_precise} elapsed, ETA {eta_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let failed = AtomicBool::new(false);
    let errors: Vec<anyhow::Error> = pool.install(|| {
        todo.par_iter()
            .with_max_len(1)
            .filter_map(|r| {
                // After a failure, start nothing new (runs already going finish).
                if failed.load(Ordering::Relaxed) {
                    return None;
                }
                let res = run_one(r, &grid, dir).with_context(|| {
                    format!(
                        "run {} {}",
                        r.index,
                        serde_json::to_string(&r.params).unwrap_or_default()
                    )
                });
                if let Some(b) = &bar {
                    b.inc(1);
                }
                res.err().inspect(|_| failed.store(true, Ordering::Relaxed))
            })
            .collect()
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    writeln!(
        out,
        "sweep {}: {} runs in the grid, {} in shard {si}/{sn}: {} run now, {} already done; records in {}",
        spec.display(),
        grid.runs.len(),
        mine.len(),
        todo.len(),
        mine.len() - todo.len(),
        dir.display()
    )?;
    Ok(())
}

/// Orders parameter values: numbers by value, then strings, then the rest
/// by their JSON text.
fn cmp_value(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(p), Some(q), _, _) => p.cmp(&q),
                (_, _, Some(p), Some(q)) => p.cmp(&q),
                _ => x
                    .as_f64()
                    .unwrap_or(0.0)
                    .partial_cmp(&y.as_f64().unwrap_or(0.0))
                    .unwrap_or(Ordering::Equal),
            }
        }
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if prefix.is_empty() && k == "timeline" {
                    continue;
                }
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), x, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn csv_field(v: &Value) -> String {
    let t = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if t.contains([',', '"', '\n']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t
    }
}

fn merge(args: &MergeArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = &args.dir;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{}: no records (run-*.json)", dir.display());
    }
    let mut records: Vec<(Map<String, Value>, Value)> = Vec::new();
    let mut spec_hash: Option<(String, PathBuf)> = None;
    for path in &names {
        let bytes =
            read_record(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: corrupt record ({e})", path.display()))?;
        let (Some(h), Some(Value::Object(params)), Some(report)) = (
            v.get("spec_hash").and_then(Value::as_str),
            v.get("params"),
            v.get("report").filter(|r| r.is_object()),
        ) else {
            bail!(
                "{}: corrupt record (expected spec_hash, params and report)",
                path.display()
            );
        };
        let want = format!("run-{}.json", run_id(&params.clone().into_iter().collect()));
        if path.file_name().and_then(|n| n.to_str()) != Some(want.as_str()) {
            bail!(
                "{}: corrupt record (its parameters belong to {want})",
                path.display()
            );
        }
        match &spec_hash {
            None => spec_hash = Some((h.to_owned(), path.clone())),
            Some((first, fp)) if first != h => bail!(
                "{}: a record of another spec than {} (spec hash {h} vs {first}): the spec changed between runs",
                path.display(),
                fp.display()
            ),
            Some(_) => {}
        }
        records.push((params.clone(), report.clone()));
    }
    // Parameter names: the union, sorted; rows sorted by their values.
    let mut keys: Vec<String> = records
        .iter()
        .flat_map(|(p, _)| p.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    records.sort_by(|(a, _), (b, _)| {
        for k in &keys {
            let o = cmp_value(
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null),
            );
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    if args.json {
        let rows: Vec<Value> = records
            .iter()
            .map(|(p, r)| json!({"params": p, "report": r}))
            .collect();
        writeln!(
            out,
            "{}",
            crate::output::json_pretty(&json!({ "runs": rows }))?
        )?;
        return Ok(());
    }
    let flat: Vec<Vec<(String, Value)>> = records
        .iter()
        .map(|(_, r)| {
            let mut f = Vec::new();
            flatten("", r, &mut f);
            f
        })
        .collect();
    let mut columns: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &flat {
        for (k, _) in f {
            if seen.insert(k.clone()) {
                columns.push(k.clone());
            }
        }
    }
    let mut line = keys.join(",");
    for c in &columns {
        line.push(',');
        line.push_str(&csv_field(&Value::String(c.clone())));
    }
    writeln!(out, "{line}")?;
    for ((p, _), f) in records.iter().zip(&flat) {
        let map: std::collections::HashMap<&str, &Value> =
            f.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut cells: Vec<String> = keys
            .iter()
            .map(|k| csv_field(p.get(k).unwrap_or(&Value::Null)))
            .collect();
        cells.extend(
            columns
                .iter()
                .map(|c| map.get(c.as_str()).map_or(String::new(), |v| csv_field(v))),
        );
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(out.flush()?)
}
