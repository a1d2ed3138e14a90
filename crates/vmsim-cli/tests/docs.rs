//! The command examples of README.md and docs/commands.md run as tests, so
//! the documentation cannot drift from the program.
//!
//! Every ```` ```console ```` block is a sequence of commands (`$ ` lines; a
//! line ending in `\` continues on the next) each followed by the output it
//! must print (standard output and standard error together). The expected
//! output follows trycmd's conventions: a line `...` matches any number of
//! lines (none included), and `[..]` within a line matches any text (timings,
//! rates, random ids). Trailing blank lines are not compared. A command shown
//! without output must exit with status 0; its output is not compared.
//!
//! Commands run through `sh -c` (pipes, `| tail -2`, `> /dev/null` work as a
//! reader expects) with the `vmsim` built for this test run first on the PATH,
//! in a temporary directory that links the repository's `crates`, `examples`,
//! `bench` and `docs`: relative paths read the committed data, and files the
//! examples write (`ex7/`, `ck/`, `true.vmt`) go to the temporary directory.
//! The blocks of one markdown file share that directory and run in order (a
//! later block may use what an earlier one wrote).
//!
//! `<!-- docs-test: skip (reason) -->` on the line before a block skips it:
//! for examples that cannot run in a clean clone (valgrind, a Slurm cluster,
//! two processes talking over TCP). A command that needs a program that is
//! not installed (`zstd`, `jq`, valgrind for `trace record`) is not run, with
//! a note on stderr; CI installs them, so there every example runs.
//!
//! `VMSIM_BLESS=1 cargo test -p vmsim-cli --test main docs::` rewrites the
//! expected output of every command whose output differs with what it
//! printed (`...`/`[..]` of those commands are lost: put them back by hand).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (the workspace).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// One `$ ` command of a console block and the output it must print.
#[derive(Debug)]
struct Example {
    /// 1-based line of the `$ ` in the markdown file.
    line: usize,
    /// The shell command (continuation lines kept, `\` and newline included).
    command: String,
    /// The expected output's lines in the file: `[start, end)` (0-based),
    /// trailing blank lines excluded.
    expected: std::ops::Range<usize>,
}

/// One console block.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The reason given in a skip marker before the block.
    skip: Option<String>,
    examples: Vec<Example>,
}

/// The skip marker's prefix.
const SKIP_MARKER: &str = "<!-- docs-test: skip";

/// Splits markdown into its console blocks. Errors name the line: an
/// unterminated block, a console block without a command.
fn parse(text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let info = fence.trim_start_matches('`').trim();
        let open = i;
        let close = (open + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .ok_or_else(|| format!("line {}: code block never closed", open + 1))?;
        i = close + 1;
        if info != "console" {
            continue;
        }
        let skip = lines[..open]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix(SKIP_MARKER))
            .map(|rest| {
                rest.trim_end_matches("-->")
                    .trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .to_string()
            });
        if skip.as_deref() == Some("") {
            return Err(format!(
                "line {open}: a skip marker must give its reason: {SKIP_MARKER} (reason) -->"
            ));
        }
        let mut examples = Vec::new();
        let mut j = open + 1;
        while j < close {
            let Some(first) = lines[j].strip_prefix("$ ") else {
                if examples.is_empty() {
                    return Err(format!(
                        "line {}: a console block starts with `$ COMMAND` (use ```text for output alone)",
                        j + 1
                    ));
                }
                unreachable!("output lines are consumed with their command");
            };
            let line = j + 1;
            let mut command = first.to_string();
            while command.ends_with('\\') && j + 1 < close {
                j += 1;
                command.push('\n');
                command.push_str(lines[j]);
            }
            j += 1;
            let start = j;
            while j < close && !lines[j].starts_with("$ ") {
                j += 1;
            }
            let mut end = j;
            while end > start && lines[end - 1].trim().is_empty() {
                end -= 1;
            }
            examples.push(Example {
                line,
                command,
                expected: start..end,
            });
        }
        if examples.is_empty() {
            return Err(format!(
                "line {}: an empty console block (use ```text for output alone)",
                open + 1
            ));
        }
        blocks.push(Block {
            line: open + 1,
            skip,
            examples,
        });
    }
    Ok(blocks)
}

/// Does `line` match `pattern`, where `[..]` stands for any text?
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    if !line.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Do the output lines match the expected ones (`...` lines match any
/// number of lines)?
fn output_matches(expected: &[&str], actual: &[&str]) -> bool {
    // Positions in `actual` reachable after matching a prefix of `expected`.
    let mut reach = vec![false; actual.len() + 1];
    reach[0] = true;
    for pattern in expected {
        let mut next = vec![false; actual.len() + 1];
        if pattern.trim() == "..." {
            let mut any = false;
            for k in 0..=actual.len() {
                any |= reach[k];
                next[k] = any;
            }
        } else {
            for k in 0..actual.len() {
                if reach[k] && line_matches(pattern.trim_end(), actual[k].trim_end()) {
                    next[k + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[actual.len()]
}

/// The expected output rewritten to match `actual`, keeping what still
/// holds: the lines of `expected` that match a line of `actual` (in order:
/// a longest common subsequence) stay as written (with their `[..]`), and
/// between two of them the actual lines are written out, unless `expected`
/// elided that stretch with `...`; then `...` stays, with the actual lines
/// that replace a changed line of the stretch (same first word, e.g. a
/// report's `paging` line) around it.
fn blessed(expected: &[&str], actual: &[&str]) -> Vec<String> {
    let is_any = |l: &str| l.trim() == "...";
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the longest common subsequence of expected[i..], actual[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if !is_any(expected[i])
                && line_matches(expected[i].trim_end(), actual[j].trim_end())
            {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut anchors = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if !is_any(expected[i])
            && line_matches(expected[i].trim_end(), actual[j].trim_end())
            && lcs[i][j] == lcs[i + 1][j + 1] + 1
        {
            anchors.push((i, j));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    anchors.push((n, m));
    let first_word = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    let (mut ei, mut aj) = (0, 0);
    for (i, j) in anchors {
        let gap_expected = &expected[ei..i];
        let gap_actual = &actual[aj..j];
        if let Some(any) = gap_expected.iter().find(|l| is_any(l)) {
            let mut from = 0;
            for changed in gap_expected.iter().filter(|l| !is_any(l)) {
                let word = first_word(changed);
                if let Some(k) =
                    (from..gap_actual.len()).find(|&k| first_word(gap_actual[k]) == word)
                {
                    if k > from {
                        out.push(any.to_string());
                    }
                    out.push(gap_actual[k].to_string());
                    from = k + 1;
                }
            }
            if from == 0 || from < gap_actual.len() {
                out.push(any.to_string());
            }
        } else {
            out.extend(gap_actual.iter().map(|l| l.to_string()));
        }
        if i < n {
            out.push(expected[i].to_string());
        }
        ei = i + 1;
        aj = j + 1;
    }
    out.dedup_by(|a, b| is_any(a) && is_any(b));
    out
}

/// The programs other than vmsim and the POSIX tools that examples use, and
/// how a command shows it uses one. A command that needs one that is not
/// installed is not run (a note on stderr): `.ci/run` installs them all.
const TOOLS: &[(&str, &str)] = &[
    ("zstd", "zstd "),
    ("jq", "| jq "),
    ("valgrind", "vmsim trace record "),
];

/// What one example printed, and whether it exited with status 0.
struct Ran {
    output: String,
    success: bool,
}

/// Runs `command` with `sh -c` in `dir`, `bin` first on the PATH, standard
/// error merged into standard output.
fn run(command: &str, dir: &Path, bin: &Path) -> Ran {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    // coreutils' timeout: an example that hangs fails instead of hanging the suite.
    let out = Command::new("timeout")
        .args(["300", "sh", "-c"])
        .arg(format!("exec 2>&1\n{command}"))
        .current_dir(dir)
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env_remove("VMSIM_BLESS")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh runs");
    Ran {
        output: String::from_utf8_lossy(&out.stdout).into_owned(),
        success: out.status.success(),
    }
}

/// A temporary directory holding links to the repository's data and a `bin`
/// directory with this build's `vmsim`.
fn sandbox() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for name in ["crates", "examples", "bench", "docs"] {
        std::os::unix::fs::symlink(root.join(name), dir.path().join(name)).unwrap();
    }
    let bin = dir.path().join(".bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vmsim"), bin.join("vmsim")).unwrap();
    (dir, bin)
}

/// Is `tool` on the PATH?
fn installed(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs every example of the markdown file `name` (relative to the
/// repository), rewrites it with `VMSIM_BLESS=1`, and panics listing every
/// example whose output differs.
fn check_file(name: &str) {
    let path = repo_root().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let blocks = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let bless = std::env::var_os("VMSIM_BLESS").is_some_and(|v| v == "1");
    let (dir, bin) = sandbox();
    let mut failures = String::new();
    let mut rewrites: Vec<(std::ops::Range<usize>, Vec<String>)> = Vec::new();
    for block in &blocks {
        if let Some(reason) = &block.skip {
            eprintln!("{name}:{}: block skipped ({reason})", block.line);
            continue;
        }
        for ex in &block.examples {
            if let Some((tool, _)) = TOOLS
                .iter()
                .find(|(tool, needle)| ex.command.contains(needle) && !installed(tool))
            {
                eprintln!(
                    "{name}:{}: not run: `{}` needs {tool}, which is not installed",
                    ex.line, ex.command
                );
                continue;
            }
            let started = std::time::Instant::now();
            let ran = run(&ex.command, dir.path(), &bin);
            if std::env::var_os("VMSIM_DOCS_TIMES").is_some() {
                eprintln!(
                    "{name}:{}: {:.2} s",
                    ex.line,
                    started.elapsed().as_secs_f64()
                );
            }
            let expected = &lines[ex.expected.clone()];
            let actual: Vec<&str> = ran.output.trim_end().lines().collect();
            let actual = if ran.output.trim().is_empty() {
                Vec::new()
            } else {
                actual
            };
            if expected.is_empty() {
                if !ran.success {
                    let _ = writeln!(
                        failures,
                        "{name}:{}: `{}` failed (shown without output, so it must succeed):\n{}",
                        ex.line, ex.command, ran.output
                    );
                }
                continue;
            }
            if !output_matches(expected, &actual) {
                let _ = writeln!(
                    failures,
                    "{name}:{}: `{}` printed\n{}\n--- where the file shows\n{}\n",
                    ex.line,
                    ex.command,
                    actual.join("\n"),
                    expected.join("\n")
                );
                rewrites.push((ex.expected.clone(), blessed(expected, &actual)));
            }
        }
    }
    if bless && !rewrites.is_empty() {
        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        for (range, new) in rewrites.iter().rev() {
            out.splice(range.clone(), new.iter().cloned());
        }
        let mut joined = out.join("\n");
        if text.ends_with('\n') {
            joined.push('\n');
        }
        std::fs::write(&path, joined).unwrap();
        eprintln!(
            "{name}: rewrote the output of {} example(s)",
            rewrites.len()
        );
        return;
    }
    drop(dir);
    assert!(
        failures.is_empty(),
        "{name}: examples whose output differs (VMSIM_BLESS=1 rewrites them):\n\n{failures}"
    );
}

#[test]
fn readme_examples_print_what_they_show() {
    check_file("README.md");
}

#[test]
fn commands_md_examples_print_what_they_show() {
    check_file("docs/commands.md");
}

/// The subcommands `vmsim --help` lists (and those of each command group,
/// e.g. `trace stats`), as `vmsim NAME ...` prefixes.
fn subcommands() -> BTreeSet<String> {
    fn listed(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            // A description that wraps continues on a deeper indented line.
            .filter(|l| !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(str::to_string)
            .collect()
    }
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vmsim"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let mut all = BTreeSet::new();
    for top in listed(&help(&[])) {
        let nested = listed(&help(&[&top]));
        all.insert(top.clone());
        for sub in nested {
            all.insert(format!("{top} {sub}"));
        }
    }
    all
}

/// The subcommands no example of `file` calls: among its checked blocks,
/// or with `skipped_count`, among its skipped blocks too.
fn without_example(file: &str, skipped_count: bool) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let called: Vec<String> = parse(&text)
        .unwrap()
        .into_iter()
        .filter(|b| skipped_count || b.skip.is_none())
        .flat_map(|b| b.examples.into_iter().map(|e| e.command))
        .collect();
    let subs = subcommands();
    assert!(
        subs.contains("run") && subs.contains("trace stats") && subs.contains("checkpoint receive"),
        "{subs:?}"
    );
    subs.into_iter()
        .filter(|sub| {
            let call = format!("vmsim {sub} ");
            let bare = format!("vmsim {sub}");
            !called
                .iter()
                .any(|c| c.contains(&call) || c.lines().any(|l| l.trim_end().ends_with(&bare)))
        })
        .collect()
}

#[test]
fn every_subcommand_has_a_checked_example_in_commands_md() {
    let missing = without_example("docs/commands.md", false);
    assert!(
        missing.is_empty(),
        "subcommands without a checked example in docs/commands.md: {missing:?}"
    );
}

/// The README shows every subcommand too. Its two examples of processes
/// talking over TCP (migration, shipping checkpoints to a store killed
/// midway) are skipped with their reason, and docs/commands.md runs the
/// same commands for real; every other subcommand's example is checked.
#[test]
fn every_subcommand_has_an_example_in_the_readme() {
    let missing = without_example("README.md", true);
    assert!(
        missing.is_empty(),
        "subcommands without an example in README.md: {missing:?}"
    );
    let unchecked = without_example("README.md", false);
    let over_tcp = [
        "checkpoint receive",
        "migrate",
        "migrate keygen",
        "migrate listen",
    ];
    let other: Vec<&String> = unchecked
        .iter()
        .filter(|s| !over_tcp.contains(&s.as_str()))
        .collect();
    assert!(
        other.is_empty(),
        "subcommands whose README example is not checked: {other:?}"
    );
}

#[test]
fn console_blocks_are_parsed_into_commands_and_outputs() {
    let md = "text\n\n```console\n$ vmsim a \\\n    --b\nout 1\n\nout 2\n\n$ vmsim c\n```\n\n<!-- docs-test: skip (needs valgrind) -->\n```console\n$ vmsim trace record\n```\n```toml\nx = 1\n```\n";
    let blocks = parse(md).unwrap();
    assert_eq!(blocks.len(), 2);
    let ex = &blocks[0].examples;
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].command, "vmsim a \\\n    --b");
    assert_eq!(ex[0].line, 4);
    assert_eq!(ex[0].expected, 5..8, "trailing blank line left out");
    assert_eq!(ex[1].expected, 10..10);
    assert_eq!(blocks[1].skip.as_deref(), Some("needs valgrind"));
    assert!(
        parse("```console\noutput\n```\n")
            .unwrap_err()
            .contains("line 2")
    );
    assert!(
        parse("```console\n$ x\n")
            .unwrap_err()
            .contains("never closed")
    );
    assert!(
        parse("<!-- docs-test: skip -->\n```console\n$ x\n```\n")
            .unwrap_err()
            .contains("reason")
    );
}

#[test]
fn elisions_follow_trycmd() {
    assert!(line_matches("a [..] b", "a xyz b"));
    assert!(line_matches("[..] refs/s", "3.1M refs/s"));
    assert!(line_matches("took [..]", "took 1.2 s"));
    assert!(line_matches("a[..]b[..]c", "a1b2c"));
    assert!(!line_matches("a[..]b[..]c", "a1c2b"));
    assert!(
        !line_matches("ab[..]ba", "aba"),
        "prefix and suffix overlap"
    );
    assert!(!line_matches("exact", "exact!"));
    let out = ["head", "x", "y", "tail"];
    assert!(output_matches(&["head", "...", "tail"], &out));
    assert!(output_matches(&["...", "y", "tail"], &out));
    assert!(
        output_matches(&["head", "x", "...", "y", "tail"], &out),
        "`...` may match no line"
    );
    assert!(output_matches(&["..."], &[]));
    assert!(!output_matches(&["head", "...", "x"], &out));
    assert!(
        !output_matches(&["head", "x"], &out),
        "every line must be matched"
    );
    assert!(
        output_matches(&["head  ", "...", "tail"], &["head", "tail"]),
        "trailing spaces"
    );

    let kept = blessed(
        &["head", "...", "paging 1 [..]", "...", "tail"],
        &["head", "x", "paging 2 swaps", "y", "tail"],
    );
    assert_eq!(kept, ["head", "...", "paging 2 swaps", "...", "tail"]);
    let kept = blessed(&["...", "a 1", "b 1", "..."], &["x", "a 2", "b 2", "y"]);
    assert_eq!(
        kept,
        ["...", "a 2", "b 2", "..."],
        "adjacent lines stay adjacent"
    );
    let kept = blessed(&["a [..]", "b"], &["a 1", "c", "b"]);
    assert_eq!(kept, ["a [..]", "c", "b"], "a new line is written out");
    assert!(output_matches(
        &["head", "...", "paging 2 swaps", "...", "tail"],
        &["head", "x", "paging 2 swaps", "y", "tail"]
    ));
}
