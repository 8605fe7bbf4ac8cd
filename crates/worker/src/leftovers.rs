//! Command processes must never outlive the worker run that started them: a restarted
//! worker would be handed the same tasks again while the old runs still write their
//! frames. Two layers keep that promise (Linux):
//! - each command's main process gets `PR_SET_PDEATHSIG = SIGKILL` (set in
//!   `process.rs`), so it dies the moment the worker dies, however the worker dies;
//! - each command's process group is recorded in `<data dir>/processes/` while it runs.
//!   Processes the main one left behind in its group (a shell's `sleep`, a render
//!   wrapper's real renderer) do not get the parent-death signal, so the next start of
//!   the worker kills every recorded group before it signs on, checked against the
//!   recorded process start time so a reused process id is never hit.
//!
//! A record is a small file: group id, `task id`, leader start time (clock ticks since
//! boot) and the boot id, one per line. It is not fsynced: after a machine crash there are
//! no processes left to kill. A finished command's record is emptied, not deleted, and the
//! file serves the next command: a file created and deleted per task cost a new inode per
//! task, a measurable share of a short task on ext4. (Records of earlier versions are
//! named after the group id and leave it out.)

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::platform;

/// How long a sweep waits for killed groups to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Where the running command groups of this worker are recorded (`default()`: nowhere,
/// for tests).
#[derive(Clone, Debug, Default)]
pub struct ProcessRecords {
    dir: Option<Arc<PathBuf>>,
    /// Emptied record files, ready for the next command.
    free: Arc<Mutex<Vec<PathBuf>>>,
    /// Numbers the record files.
    created: Arc<AtomicUsize>,
}

/// A recorded group; the record is emptied when this is dropped (after the group was
/// killed or found empty).
#[derive(Debug)]
pub struct ProcessRecord {
    path: Option<PathBuf>,
    free: Arc<Mutex<Vec<PathBuf>>>,
}

/// A group from an earlier worker run that was still alive and got killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilledLeftover {
    pub task_id: String,
    pub pgid: u32,
    /// How many live processes the group had.
    pub processes: usize,
}

impl ProcessRecords {
    /// Records in `<data_dir>/processes`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: Some(Arc::new(data_dir.join("processes"))),
            ..Self::default()
        }
    }

    /// Records the group led by `pid` (just spawned for `task_id`). A record that cannot be
    /// written is logged, not fatal: the parent-death signal still covers the main process.
    pub fn record(&self, pid: u32, task_id: &str) -> ProcessRecord {
        let none = || ProcessRecord {
            path: None,
            free: self.free.clone(),
        };
        let Some(dir) = &self.dir else {
            return none();
        };
        let Some(start) = platform::process_start_time(pid) else {
            // Already gone, or no /proc: nothing to verify a later kill against.
            return none();
        };
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let path = reused.unwrap_or_else(|| {
            let number = self.created.fetch_add(1, Ordering::Relaxed);
            dir.join(format!("record-{number}"))
        });
        let text = format!("{pid}\n{task_id}\n{start}\n{}\n", platform::boot_id());
        let written = std::fs::write(&path, &text).or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                std::fs::create_dir_all(dir.as_path())?;
                std::fs::write(&path, &text)
            } else {
                Err(e)
            }
        });
        match written {
            Ok(()) => ProcessRecord {
                path: Some(path),
                free: self.free.clone(),
            },
            Err(e) => {
                tracing::warn!(pid, path = %path.display(), error = %e, "cannot record a command's process group; a worker crash could leave it running");
                // A full disk leaves an empty record behind, which nothing would remove.
                let _ = std::fs::remove_file(&path);
                none()
            }
        }
    }

    /// Kills every recorded group from an earlier run that still has live processes and
    /// removes all records. Call before signing on, so no task is handed out again while
    /// an old run of it lives.
    pub fn kill_leftovers(&self) -> Vec<KilledLeftover> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir.as_path()) else {
            return Vec::new();
        };
        let boot = platform::boot_id();
        let mut killed = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(leftover) = kill_recorded(&path, &boot) {
                tracing::warn!(
                    task_id = %leftover.task_id,
                    pgid = leftover.pgid,
                    processes = leftover.processes,
                    "killed command processes left running by the previous worker run"
                );
                killed.push(leftover);
            }
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a process record");
            }
        }
        let deadline = Instant::now() + KILL_WAIT;
        for leftover in &killed {
            while !platform::process_tree_members(leftover.pgid).is_empty() {
                if Instant::now() >= deadline {
                    tracing::error!(
                        pgid = leftover.pgid,
                        "killed leftover processes are still alive"
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        killed
    }
}

impl Drop for ProcessRecord {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        match std::fs::write(&path, b"") {
            Ok(()) => self
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(path),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot empty a process record");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Kills the group a record names if it is ours and alive.
fn kill_recorded(path: &Path, boot: &str) -> Option<KilledLeftover> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    // An earlier version's record is named after the group and leaves it out.
    let named: Option<u32> = path.file_name()?.to_str()?.parse().ok();
    let pgid: u32 = match named {
        Some(pgid) => pgid,
        None => lines.next()?.parse().ok()?,
    };
    let task_id = lines.next()?.to_string();
    let recorded_start: u64 = lines.next()?.parse().ok()?;
    if lines.next()? != boot {
        return None; // from before a reboot: long gone
    }
    match platform::process_start_time(pgid) {
        // The leader lives on (it cannot have missed its parent-death signal unless the
        // worker was not its parent any more, but be sure).
        Some(start) if start == recorded_start => {}
        // The id was reused, so our group (which would hold the number) is empty.
        Some(_) => return None,
        // The leader is gone; members left in its group still hold the group id, so any
        // process in group `pgid` is one of ours.
        None => {}
    }
    let processes = platform::process_tree_members(pgid).len();
    if processes == 0 {
        return None;
    }
    platform::kill_process_tree(pgid);
    Some(KilledLeftover {
        task_id,
        pgid,
        processes,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// Two processes in a group of their own (a leader and a background `sleep`), as a
    /// killed worker leaves a command behind.
    fn orphan_like_group() -> std::process::Child {
        let mut command = std::process::Command::new("sh");
        command
            .args(["-c", "sleep 30 & exec sleep 30"])
            .process_group(0);
        command.spawn().expect("sh starts")
    }

    fn wait_for_members(pgid: u32, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while platform::process_tree_members(pgid).len() < count {
            assert!(
                Instant::now() < deadline,
                "the group never had {count} processes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_recorded_group_is_killed_by_the_next_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let records = ProcessRecords::in_data_dir(dir.path());
        let mut child = orphan_like_group();
        let pgid = child.id();
        wait_for_members(pgid, 2);
        let members = platform::process_tree_members(pgid).len();
        // The worker "dies" with the record in place.
        std::mem::forget(records.record(pgid, "task-1"));

        let killed = ProcessRecords::in_data_dir(dir.path()).kill_leftovers();
        assert_eq!(
            killed,
            [KilledLeftover {
                task_id: "task-1".into(),
                pgid,
                processes: members
            }]
        );
        assert!(platform::process_tree_members(pgid).is_empty());
        let _ = child.wait();
        let left = std::fs::read_dir(dir.path().join("processes"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "records are removed");
    }

    /// Record files that name a group (emptied ones wait for reuse).
    fn records_in(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("processes"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn members_left_behind_by_a_dead_leader_are_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let records = ProcessRecords::in_data_dir(dir.path());
        let mut child = orphan_like_group();
        let pgid = child.id();
        wait_for_members(pgid, 2);
        std::mem::forget(records.record(pgid, "task-2"));
        // The leader dies (its parent-death signal), the background sleep stays.
        let _ = child.kill();
        let _ = child.wait();
        let members = platform::process_tree_members(pgid).len();
        assert!(members >= 1, "the background sleep lives on");

        let killed = records.kill_leftovers();
        assert_eq!(killed.len(), 1);
        assert_eq!(killed[0].processes, members);
        assert!(platform::process_tree_members(pgid).is_empty());
    }

    #[test]
    fn records_of_reused_ids_and_other_boots_kill_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let processes = dir.path().join("processes");
        std::fs::create_dir_all(&processes).expect("dir");
        let mut child = orphan_like_group();
        let pgid = child.id();
        wait_for_members(pgid, 2);
        let members = platform::process_tree_members(pgid).len();
        let start = platform::process_start_time(pgid).expect("start time");
        // Same id, another start time: the id was reused by an unrelated process.
        std::fs::write(
            processes.join(pgid.to_string()),
            format!("t\n{}\n{}\n", start + 1, platform::boot_id()),
        )
        .expect("write");
        assert!(
            ProcessRecords::in_data_dir(dir.path())
                .kill_leftovers()
                .is_empty()
        );
        // Another boot.
        std::fs::write(
            processes.join(pgid.to_string()),
            format!("t\n{start}\nanother-boot\n"),
        )
        .expect("write");
        // Garbage is removed, not acted on.
        std::fs::write(processes.join("not-a-pid"), "x").expect("write");
        assert!(
            ProcessRecords::in_data_dir(dir.path())
                .kill_leftovers()
                .is_empty()
        );
        assert_eq!(
            platform::process_tree_members(pgid).len(),
            members,
            "the live group was left alone"
        );
        assert_eq!(
            std::fs::read_dir(&processes)
                .map(|d| d.count())
                .unwrap_or(9),
            0
        );
        // SAFETY: killpg only sends a signal.
        unsafe {
            libc::killpg(pgid as libc::pid_t, libc::SIGKILL);
        }
        let _ = child.wait();
    }

    #[test]
    fn a_finished_command_leaves_no_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let records = ProcessRecords::in_data_dir(dir.path());
        let mut child = orphan_like_group();
        let record = records.record(child.id(), "task-3");
        assert_eq!(records_in(dir.path()), 1);
        // SAFETY: killpg only sends a signal.
        unsafe {
            libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = child.wait();
        drop(record);
        assert_eq!(records_in(dir.path()), 0);
        // The emptied file serves the next command.
        let mut next = orphan_like_group();
        let again = records.record(next.id(), "task-4");
        assert_eq!(
            again.path,
            Some(dir.path().join("processes").join("record-0"))
        );
        // SAFETY: killpg only sends a signal.
        unsafe {
            libc::killpg(next.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = next.wait();
    }
}
