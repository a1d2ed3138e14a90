//! A directory a command made for its output, taken back if the command
//! fails before writing anything into it.
//!
//! Why: `vmsim run --checkpoint-dir ck` makes `ck` (and any missing parent)
//! before the simulation starts, so that a directory that cannot be made is
//! an error before any work; but a run that then fails at once (a trace that
//! does not exist, a scenario the kernel refuses) left an empty `ck` behind,
//! which the next run with the same directory met as someone else's.
//! The same holds when the run is interrupted (SIGINT, SIGTERM, SIGHUP):
//! the directories are on the signal handler's list too, removed there
//! only while empty, so an interrupted run keeps every checkpoint it wrote.

use std::path::{Path, PathBuf};

/// The directories made for `path` (the deepest first), removed on drop
/// unless [`MadeDir::keep`] was called. Only empty directories are ever
/// removed (`remove_dir` refuses any other), so a file written into one,
/// or a directory someone else made meanwhile, stays.
#[derive(Debug)]
pub struct MadeDir {
    made: Vec<PathBuf>,
    /// The same directories on the interrupt-cleanup list (removed there
    /// only while empty, deepest first).
    listed: Vec<vmsim_trace::output::Registered>,
}

impl MadeDir {
    /// Notes which of `path` and its ancestors do not exist yet: the ones
    /// that making `path` (`create_dir_all`) will make. Call it just before.
    pub fn before_making(path: &Path) -> Self {
        let made = path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .take_while(|p| std::fs::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect::<Vec<_>>();
        // The list is emptied newest first: parents go on it first.
        let listed = made
            .iter()
            .rev()
            .map(|dir| vmsim_trace::output::register_if_empty(dir))
            .collect();
        Self { made, listed }
    }

    /// The command succeeded: the directories stay.
    pub fn keep(mut self) {
        self.made.clear();
        self.listed.clear();
    }
}

impl Drop for MadeDir {
    fn drop(&mut self) {
        for dir in &self.made {
            if std::fs::remove_dir(dir).is_err() {
                // Not empty (or gone): its parents are not empty either.
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_commands_take_back_only_the_empty_directories_they_made() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let deep = tmp.path().join("a/b/c");
        let made = MadeDir::before_making(&deep);
        std::fs::create_dir_all(&deep).expect("fs");
        drop(made);
        assert!(!tmp.path().join("a").exists());

        // A file written inside keeps its directory and the ones above.
        let made = MadeDir::before_making(&deep);
        std::fs::create_dir_all(&deep).expect("fs");
        std::fs::write(tmp.path().join("a/b/keep.txt"), b"data").expect("fs");
        drop(made);
        assert!(!deep.exists());
        assert!(tmp.path().join("a/b/keep.txt").exists());

        // An existing directory is never removed, even empty.
        let made = MadeDir::before_making(&deep);
        std::fs::create_dir_all(&deep).expect("fs");
        let again = MadeDir::before_making(&deep);
        drop(again);
        assert!(deep.exists());
        made.keep();
        assert!(deep.exists());
    }
}
