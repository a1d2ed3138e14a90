//! Checking a scenario read back from a checkpoint's `SCEN` section.
//!
//! A scenario file is checked as it is parsed ([`Scenario::parse`]); a
//! scenario decoded from a checkpoint skips that, and a forged one (its
//! section's checksums made right) would run into an index past the
//! processes when a fork happens. Both a restore and a restart from the
//! first reference read it through here.

use vmsim_trace::scenario::Scenario;

/// A scenario read back from a checkpoint's `SCEN` section, checked as
/// [`Scenario::parse`] checks a scenario file (a decoded one skips that):
/// at least one process; every fork names another process of the
/// scenario (the run indexes the processes by it when the fork happens),
/// no process is forked twice or by another than its named parent, no
/// fork chain loops, a vfork is waited for, and no mmap is empty. `Err`
/// names the process and what is wrong.
pub(crate) fn check(s: &Scenario) -> Result<(), String> {
    let n = s.processes.len();
    if n == 0 {
        return Err("no process: a scenario needs at least one".into());
    }
    let mut forked_by: Vec<Option<usize>> = vec![None; n];
    for (i, p) in s.processes.iter().enumerate() {
        for (k, f) in p.forks.iter().enumerate() {
            if f.child >= n || f.child == i {
                return Err(format!(
                    "process {i}: fork {k} makes process {} (of {n}), which it cannot",
                    f.child
                ));
            }
            if forked_by[f.child].replace(i).is_some() {
                return Err(format!("process {} is forked twice", f.child));
            }
            if f.vfork && !f.wait {
                return Err(format!(
                    "process {i}: fork {k} is a vfork its parent does not wait for"
                ));
            }
        }
        if let Some(k) = p.mmap.iter().position(|m| m.len == 0) {
            return Err(format!("process {i}: mmap {k} is empty"));
        }
    }
    for (i, p) in s.processes.iter().enumerate() {
        if p.parent != forked_by[i] {
            return Err(format!(
                "process {i}: its parent is {:?} but it is forked by {:?}",
                p.parent, forked_by[i]
            ));
        }
        let (mut at, mut steps) = (i, 0);
        while let Some(by) = forked_by[at] {
            at = by;
            steps += 1;
            if steps > n {
                return Err(format!("process {i} is part of a fork cycle"));
            }
        }
    }
    Ok(())
}
