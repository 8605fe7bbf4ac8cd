//! The on-disk spool of task log text the manager has not stored yet. While uploads fail,
//! a task's unconfirmed lines are mirrored into one file per task lease, so a worker that
//! stops (or crashes) during a manager outage still delivers them after it starts again.
//! Uploads that work never touch the disk.
//!
//! File name: `<task id>.<lease epoch>.log` in `log-spool/` of the worker's data directory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The spool directory's name inside the worker's data directory.
pub const SPOOL_DIR: &str = "log-spool";

const SUFFIX: &str = ".log";

/// The spool directory.
#[derive(Clone, Debug)]
pub struct LogSpool {
    dir: PathBuf,
}

/// Log text of an earlier worker run, waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledLog {
    pub task_id: String,
    pub lease_epoch: u64,
    pub path: PathBuf,
}

impl LogSpool {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(SPOOL_DIR),
        }
    }

    /// The spool file of one task lease (nothing is created yet).
    pub fn file(&self, task_id: &str, lease_epoch: u64) -> SpoolFile {
        SpoolFile {
            path: self.dir.join(format!("{task_id}.{lease_epoch}{SUFFIX}")),
            written: false,
        }
    }

    /// The spooled logs found on disk, oldest file first. Files whose names do not parse
    /// are skipped (and left alone).
    pub fn leftovers(&self) -> Vec<SpooledLog> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, SpooledLog)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (task_id, lease_epoch) = parse_name(&name)?;
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                Some((
                    modified,
                    SpooledLog {
                        task_id,
                        lease_epoch,
                        path: entry.path(),
                    },
                ))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        found.into_iter().map(|(_, log)| log).collect()
    }
}

/// `<task id>.<epoch>.log` → (task id, epoch).
fn parse_name(name: &str) -> Option<(String, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (task_id, epoch) = stem.rsplit_once('.')?;
    if task_id.is_empty() {
        return None;
    }
    Some((task_id.to_string(), epoch.parse().ok()?))
}

/// One task lease's spool file, kept equal to the uploader's unconfirmed text while
/// uploads fail. Write errors are logged, not fatal: they only cost the restart guarantee.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    written: bool,
}

impl SpoolFile {
    /// Whether the file mirrors the pending text (uploads are failing).
    pub fn is_active(&self) -> bool {
        self.written
    }

    /// Replaces the file's content with `text` (temp file + rename), or removes the file
    /// when `text` is empty.
    pub fn replace(&mut self, text: &str) {
        if text.is_empty() {
            self.remove();
            return;
        }
        if let Err(e) = write_atomically(&self.path, text.as_bytes()) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot spool task log lines");
        }
        self.written = true;
    }

    /// Appends text (whole lines) to an active spool file.
    pub fn append(&mut self, text: &str) {
        if !self.written {
            return;
        }
        let result = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot spool task log lines");
        }
    }

    /// Deletes the file (everything was stored, or the manager refused the log).
    pub fn remove(&mut self) {
        if !self.written {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a task log spool file")
            }
        }
        self.written = false;
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        // A half-written copy would only hold on to the space a full disk lacks.
        let _ = std::fs::remove_file(&partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_file_mirrors_pending_text_and_is_found_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = LogSpool::new(dir.path());
        let mut file = spool.file("task-a", 3);
        // Not active: appends before the first failure stay in memory only.
        file.append("early\n");
        assert!(spool.leftovers().is_empty());
        file.replace("one\ntwo\n");
        file.append("three\n");
        let found = spool.leftovers();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].task_id, "task-a");
        assert_eq!(found[0].lease_epoch, 3);
        let text = std::fs::read_to_string(&found[0].path).expect("read");
        assert_eq!(text, "one\ntwo\nthree\n");
        file.replace("three\n");
        assert_eq!(
            std::fs::read_to_string(&found[0].path).expect("read"),
            "three\n"
        );
        file.replace("");
        assert!(spool.leftovers().is_empty());
    }

    #[test]
    fn names_that_do_not_parse_are_skipped() {
        assert_eq!(parse_name("t-1.7.log"), Some(("t-1".into(), 7)));
        assert_eq!(parse_name("a.b.2.log"), Some(("a.b".into(), 2)));
        assert_eq!(parse_name("t-1.x.log"), None);
        assert_eq!(parse_name(".7.log"), None);
        assert_eq!(parse_name("t-1.7.partial"), None);
    }
}
