//! Scenario files: several processes, each with its trace or generator, its
//! address-space setup and its fork points, in one TOML file.
//!
//! ```toml
//! description = "a parent touches 1000 pages, forks, the child writes 10"
//! quantum = 10000            # references per time slice (round robin)
//! preset = "x86-64"          # optional: machine preset to run on
//! set = ["memory.frames=8192"]   # optional: overrides, as with --set
//!
//! [[process]]
//! name = "parent"
//! trace = "synth:scan,bytes=4000KiB,stride=4096,write=1"   # or a path, relative to this file
//! layout = "standard"        # standard (stack + heap) | flat (all of user space valid)
//! brk = "64KiB"              # initial heap
//! mmap = [{ addr = 0x10000000, len = "4000KiB", prot = "rw" }]   # shared = true for MAP_SHARED
//! fork = [{ child = "child", after = 1000, wait = true }]        # or at = 0x4919353; vfork = true
//!
//! [[process]]
//! name = "child"
//! parent = "parent"          # created by the parent's fork, not at the start
//! trace = "synth:scan,bytes=40KiB,stride=4096,write=1"
//! ```
//!
//! A process exits when its trace ends (or after `exit_after` references).
//! A fork point `after = N` forks after the process's N-th reference; `at =
//! ADDR` forks when the process first fetches the instruction at ADDR (with
//! real traces: the address where the child's own trace begins, just after
//! the fork system call returns). `wait = true` blocks the parent until the
//! child exits (fork followed at once by waitpid); `vfork = true` shares the
//! address space and always waits.
//!
//! This module parses and checks the file; running it is the engine's job.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::units::WrittenSize;

/// A scenario file that cannot be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Not valid TOML of the scenario's shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// Valid TOML, but the processes do not make sense together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the process and field.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMmap {
    addr: Option<u64>,
    len: WrittenSize,
    prot: Option<String>,
    #[serde(default)]
    shared: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFork {
    child: String,
    after: Option<u64>,
    at: Option<u64>,
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    vfork: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProcess {
    name: String,
    trace: Option<String>,
    #[serde(default)]
    layout: LayoutKind,
    parent: Option<String>,
    brk: Option<WrittenSize>,
    #[serde(default)]
    mmap: Vec<FileMmap>,
    #[serde(default)]
    fork: Vec<FileFork>,
    exit_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: Option<String>,
    quantum: Option<u64>,
    preset: Option<String>,
    #[serde(default)]
    set: Vec<String>,
    process: Vec<FileProcess>,
}

/// The initial address-space layout of a spawned process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    /// A stack at the top of user space and a heap; other areas from `mmap`.
    #[default]
    Standard,
    /// All of user space is valid, allocated on first touch (for real traces).
    Flat,
}

/// The permissions of an mmap (`prot`), parsed when the scenario is read:
/// the letters `r`, `w`, `x` in any order, `-` for a permission not given
/// (`"rw"`, `"r-x"`, `"---"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MmapProt {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

/// A `prot` with a character other than `r`, `w`, `x` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}': expected letters r, w, x (or -)")]
pub struct BadProt(pub String);

impl MmapProt {
    /// Read and write: the default of a scenario's mmap.
    pub const RW: Self = Self {
        read: true,
        write: true,
        exec: false,
    };
}

impl FromStr for MmapProt {
    type Err = BadProt;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Self::default();
        for c in s.chars() {
            match c {
                'r' => p.read = true,
                'w' => p.write = true,
                'x' => p.exec = true,
                '-' => {}
                _ => return Err(BadProt(s.to_string())),
            }
        }
        Ok(p)
    }
}

/// `rwx` with `-` for each permission not given (`rw-`), which parses back.
impl fmt::Display for MmapProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            letter(self.read, 'r'),
            letter(self.write, 'w'),
            letter(self.exec, 'x')
        )
    }
}

/// Written as its letters, as when the field was a string (checkpoints
/// store scenarios with postcard), and read strictly.
impl Serialize for MmapProt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MmapProt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A scenario's quantum on the wire: the number, 0 for "not given" (a
/// quantum is never 0), so a checkpoint's scenario keeps the layout it had
/// when the field was a plain number.
mod quantum_wire {
    use std::num::NonZeroU64;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` passes a reference")]
    pub fn serialize<S: Serializer>(q: &Option<NonZeroU64>, s: S) -> Result<S::Ok, S::Error> {
        q.map_or(0, NonZeroU64::get).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NonZeroU64>, D::Error> {
        Ok(NonZeroU64::new(u64::deserialize(d)?))
    }
}

/// An mmap a process does before its first reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmapSpec {
    /// A fixed address, or `None` to let the kernel choose.
    pub addr: Option<u64>,
    /// Length in bytes.
    pub len: u64,
    /// Permissions.
    pub prot: MmapProt,
    /// MAP_SHARED (shared with children) rather than private.
    pub shared: bool,
}

/// When a fork happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForkPoint {
    /// After the process's N-th reference.
    After(u64),
    /// When the process first fetches the instruction at this address.
    At(u64),
}

/// A fork a process makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkSpec {
    /// Index of the child in [`Scenario::processes`].
    pub child: usize,
    /// When.
    pub point: ForkPoint,
    /// The parent waits for the child to exit.
    pub wait: bool,
    /// vfork instead of fork.
    pub vfork: bool,
}

/// One process of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Its name (unique in the scenario).
    pub name: String,
    /// Its trace: a `synth:` spec or a path (resolved against the scenario's folder).
    pub trace: Option<String>,
    /// Layout when spawned (a forked child inherits its parent's).
    pub layout: LayoutKind,
    /// Index of the parent whose fork creates it, if any.
    pub parent: Option<usize>,
    /// Initial heap size in bytes.
    pub brk: u64,
    /// mmaps done before the first reference.
    pub mmap: Vec<MmapSpec>,
    /// Forks, in the order they happen.
    pub forks: Vec<ForkSpec>,
    /// Exit after this many references even if the trace goes on.
    pub exit_after: Option<u64>,
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// What it shows.
    pub description: String,
    /// References per time slice, if the scenario gives it; `None` runs on
    /// the machine's `run.quantum`. An explicit value is always honoured,
    /// even one equal to the default.
    #[serde(with = "quantum_wire")]
    pub quantum: Option<NonZeroU64>,
    /// A machine preset to run on, if the scenario names one.
    pub preset: Option<String>,
    /// Config overrides (`key=value`), applied before the command line's.
    pub set: Vec<String>,
    /// The processes, in file order.
    pub processes: Vec<ProcessSpec>,
}

impl ProcessSpec {
    /// A process that runs `trace` in a flat address space, nothing else
    /// (what `vmsim run TRACE` makes of each input).
    #[must_use]
    pub fn running(name: impl Into<String>, trace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trace: Some(trace.into()),
            layout: LayoutKind::Flat,
            parent: None,
            brk: 0,
            mmap: Vec::new(),
            forks: Vec::new(),
            exit_after: None,
        }
    }
}

impl Scenario {
    /// One process per input, `p0`, `p1`, ..., each [`ProcessSpec::running`]
    /// its trace, on the machine's quantum and preset.
    #[must_use]
    pub fn of_traces(inputs: &[&str]) -> Self {
        Self {
            description: inputs.join(" "),
            quantum: None,
            preset: None,
            set: Vec::new(),
            processes: inputs
                .iter()
                .enumerate()
                .map(|(i, t)| ProcessSpec::running(format!("p{i}"), *t))
                .collect(),
        }
    }

    /// Whether a file looks like a scenario (TOML with `[[process]]`), by its first bytes.
    #[must_use]
    pub fn sniff(head: &[u8]) -> bool {
        let text = String::from_utf8_lossy(head);
        text.lines()
            .any(|l| l.trim_start().starts_with("[[process]]"))
    }

    /// Reads a scenario file; relative trace paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = crate::limits::read_text_limited(
            path,
            crate::limits::MAX_TOML_BYTES,
            "a scenario file",
        )
        .map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &dir)
    }

    /// Parses scenario text; `origin` names it in errors, `dir` anchors relative paths.
    pub fn parse(text: &str, origin: &str, dir: &Path) -> Result<Self, ScenarioError> {
        let file: File = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let invalid = |message: String| ScenarioError::Invalid {
            path: origin.to_string(),
            message,
        };
        if file.process.is_empty() {
            return Err(invalid(
                "no [[process]]: a scenario needs at least one".into(),
            ));
        }
        let mut names = HashSet::new();
        for p in &file.process {
            if !names.insert(p.name.as_str()) {
                return Err(invalid(format!("two processes are named '{}'", p.name)));
            }
        }
        let index = |name: &str, what: &str, who: &str| {
            file.process
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| {
                    invalid(format!(
                        "process '{who}': {what} '{name}' is not a process of this scenario"
                    ))
                })
        };
        let quantum = match file.quantum {
            None => None,
            Some(q) => Some(NonZeroU64::new(q).ok_or_else(|| {
                invalid("quantum = 0: a time slice needs at least one reference".into())
            })?),
        };
        let mut processes = Vec::with_capacity(file.process.len());
        let mut forked_by: Vec<Option<usize>> = vec![None; file.process.len()];
        for (i, p) in file.process.iter().enumerate() {
            let parent = p
                .parent
                .as_deref()
                .map(|n| index(n, "parent", &p.name))
                .transpose()?;
            let mut forks = Vec::new();
            for f in &p.fork {
                let child = index(&f.child, "fork child", &p.name)?;
                let point = match (f.after, f.at) {
                    (Some(n), None) => ForkPoint::After(n),
                    (None, Some(a)) => ForkPoint::At(a),
                    _ => {
                        return Err(invalid(format!(
                            "process '{}': fork of '{}' needs exactly one of `after` (references) or `at` (instruction address)",
                            p.name, f.child
                        )));
                    }
                };
                if let Some(other) = forked_by[child].replace(i) {
                    return Err(invalid(format!(
                        "process '{}' is forked twice (by '{}' and '{}')",
                        f.child, file.process[other].name, p.name
                    )));
                }
                forks.push(ForkSpec {
                    child,
                    point,
                    wait: f.wait || f.vfork,
                    vfork: f.vfork,
                });
            }
            let brk = match &p.brk {
                Some(b) => b
                    .bytes()
                    .map_err(|e| invalid(format!("process '{}': brk: {e}", p.name)))?,
                None => 0,
            };
            let mut mmap = Vec::new();
            for (k, m) in p.mmap.iter().enumerate() {
                let len = m
                    .len
                    .bytes()
                    .map_err(|e| invalid(format!("process '{}': mmap[{k}].len: {e}", p.name)))?;
                if len == 0 {
                    return Err(invalid(format!(
                        "process '{}': mmap[{k}].len is zero",
                        p.name
                    )));
                }
                let prot = match &m.prot {
                    None => MmapProt::RW,
                    Some(text) => text.parse().map_err(|e: BadProt| {
                        invalid(format!("process '{}': mmap[{k}].prot = {e}", p.name))
                    })?,
                };
                mmap.push(MmapSpec {
                    addr: m.addr,
                    len,
                    prot,
                    shared: m.shared,
                });
            }
            let trace = p.trace.as_ref().map(|t| resolve(t, dir));
            processes.push(ProcessSpec {
                name: p.name.clone(),
                trace,
                layout: p.layout,
                parent,
                brk,
                mmap,
                forks,
                exit_after: p.exit_after,
            });
        }
        for (i, p) in processes.iter().enumerate() {
            match (p.parent, forked_by[i]) {
                (Some(par), Some(by)) if par != by => {
                    return Err(invalid(format!(
                        "process '{}' names parent '{}' but is forked by '{}'",
                        p.name, processes[par].name, processes[by].name
                    )));
                }
                (Some(par), None) => {
                    return Err(invalid(format!(
                        "process '{}' names parent '{}', which has no fork with child = '{}'",
                        p.name, processes[par].name, p.name
                    )));
                }
                _ => {}
            }
        }
        // Every forked child must be reachable from a spawned process (no cycles).
        for (i, p) in processes.iter().enumerate() {
            let mut at = i;
            let mut steps = 0;
            while let Some(by) = forked_by[at] {
                at = by;
                steps += 1;
                if steps > processes.len() {
                    return Err(invalid(format!(
                        "process '{}' is part of a fork cycle",
                        p.name
                    )));
                }
            }
        }
        for (i, by) in forked_by.iter().enumerate() {
            if let Some(by) = by {
                processes[i].parent = Some(*by);
            }
        }
        Ok(Self {
            description: file.description.unwrap_or_default(),
            quantum,
            preset: file.preset,
            set: file.set,
            processes,
        })
    }
}

fn resolve(trace: &str, dir: &Path) -> String {
    if trace.starts_with(crate::source::SYNTH_PREFIX) || Path::new(trace).is_absolute() {
        trace.to_string()
    } else {
        let p: PathBuf = dir.join(trace);
        p.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
quantum = 500
[[process]]
name = "parent"
trace = "synth:scan,bytes=40KiB,stride=4096,write=1"
mmap = [{ addr = 0x10000000, len = "4000KiB" }]
fork = [{ child = "child", after = 10, wait = true }]
[[process]]
name = "child"
parent = "parent"
trace = "child.lackey.zst"
"#;

    #[test]
    fn parses_and_links_processes() {
        let s = Scenario::parse(OK, "s.toml", Path::new("/data")).expect("valid");
        assert_eq!(s.quantum, NonZeroU64::new(500));
        assert_eq!(s.processes[0].mmap[0].prot, MmapProt::RW, "the default");
        assert_eq!(s.processes[0].forks[0].child, 1);
        assert_eq!(s.processes[0].forks[0].point, ForkPoint::After(10));
        assert_eq!(s.processes[1].parent, Some(0));
        assert_eq!(
            s.processes[1].trace.as_deref(),
            Some("/data/child.lackey.zst")
        );
        assert_eq!(s.processes[0].mmap[0].len, 4000 << 10);
        assert!(Scenario::sniff(OK.as_bytes()));
    }

    #[test]
    fn errors_name_the_process_and_field() {
        let bad = OK.replace(
            "child = \"child\", after = 10",
            "child = \"kid\", after = 10",
        );
        let e = Scenario::parse(&bad, "s.toml", Path::new("."))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("'kid'") && e.contains("s.toml"), "{e}");
        let bad = OK.replace("after = 10", "after = 10, at = 5");
        let e = Scenario::parse(&bad, "s.toml", Path::new("."))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let bad = OK.replace("len = \"4000KiB\"", "len = \"lots\"");
        let e = Scenario::parse(&bad, "s.toml", Path::new("."))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("mmap[0].len"), "{e}");
        let bad = OK.replace("quantum = 500", "quantum = 500\ncolour = 1");
        assert!(matches!(
            Scenario::parse(&bad, "s.toml", Path::new(".")),
            Err(ScenarioError::Parse { .. })
        ));
        let bad = OK.replace("parent = \"parent\"\n", "");
        assert!(
            Scenario::parse(&bad, "s.toml", Path::new(".")).is_ok(),
            "parent is implied by the fork"
        );
        let bad = OK.replace(
            "fork = [{ child = \"child\", after = 10, wait = true }]",
            "",
        );
        let e = Scenario::parse(&bad, "s.toml", Path::new("."))
            .expect_err("bad")
            .to_string();
        assert!(e.contains("has no fork"), "{e}");
    }
}
