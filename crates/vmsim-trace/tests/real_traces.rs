//! Statistics of the real lackey traces agree with the counts published in
//! their README (`/work/shared/traces/README.md`, the table under "Files").

use std::path::Path;

use vmsim_trace::{TraceStats, open_path, stats};

use crate::data;

/// (file, refs, I, L, S, M, pages 4 KiB, pages 2 MiB), copied from the README
/// table for the files shipped in `tests/data`.
const SHIPPED: [(&str, [u64; 7]); 4] = [
    (
        "true.lackey.zst",
        [167_911, 128_165, 27_977, 10_265, 1_504, 139, 6],
    ),
    (
        "tinystatic.lackey.zst",
        [146_435, 121_375, 6_982, 18_047, 31, 88, 4],
    ),
    (
        "forkcow_1m.parent.lackey.zst",
        [305_302, 238_838, 37_228, 27_741, 1_495, 423, 6],
    ),
    (
        "forkcow_1m.child.lackey.zst",
        [30_764, 24_824, 5_089, 581, 270, 324, 6],
    ),
];

fn row(s: &TraceStats) -> [u64; 7] {
    [
        s.refs, s.instr, s.load, s.store, s.modify, s.pages_4k, s.pages_2m,
    ]
}

fn check(path: &Path, want: [u64; 7]) {
    let s = stats(&mut open_path(path).unwrap()).unwrap();
    assert_eq!(row(&s), want, "{}", path.display());
    // The README: counting every byte spanned gives the same 4 KiB totals.
    assert_eq!(s.spanned_pages_4k, s.pages_4k, "{}", path.display());
    assert_eq!(s.footprint_bytes, s.pages_4k * 4096);
}

#[test]
fn shipped_traces_match_the_readme() {
    for (name, want) in SHIPPED {
        check(&data(name), want);
    }
}

#[test]
fn lackey_pid_comes_from_the_banner() {
    let mut src = open_path(&data("forkcow_1m.child.lackey.zst")).unwrap();
    let mut batch = Vec::new();
    vmsim_trace::TraceSource::next_batch(&mut src, &mut batch).unwrap();
    // The child's raw log was forkcow_1m.10774.lackey; its banner says ==10774==.
    assert!(batch.iter().all(|a| a.pid == 10774));
    // First record of the child, per the README: `I  04919353,6`.
    assert_eq!((batch[0].va, batch[0].size), (0x0491_9353, 6));
}

/// Parses the README's "Files" table: file name -> the seven counts.
fn readme_rows(readme: &str) -> Vec<(String, [u64; 7])> {
    readme
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".lackey.zst"))
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let nums: Vec<u64> = cells
                .get(2..9)?
                .iter()
                .map(|c| c.parse().ok())
                .collect::<Option<_>>()?;
            Some((cells[0].to_owned(), nums.try_into().ok()?))
        })
        .collect()
}

/// Every trace in the shared developer set (skipped when the set is not
/// there, as in a fresh clone).
#[test]
fn all_shared_traces_match_their_readme() {
    let dir = Path::new("/work/shared/traces");
    let Ok(readme) = std::fs::read_to_string(dir.join("README.md")) else {
        eprintln!("note: /work/shared/traces not found; skipping the shared-trace check");
        return;
    };
    let rows = readme_rows(&readme);
    assert!(rows.len() >= 9, "README table not found: {rows:?}");
    for (name, want) in rows {
        check(&dir.join(&name), want);
    }
}
