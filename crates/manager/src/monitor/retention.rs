//! Housekeeping (`[retention]` config): deletes the task logs of jobs finished more than
//! N days ago, then the oldest finished jobs' logs while all logs together exceed a size
//! cap, and the files of jobs that no longer exist; also removes workers that have been
//! offline too long (see `offline_workers`). Runs every `check_minutes`; the time comes
//! from the monitor's `Clock` so tests move it instead of waiting.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Clock;
use super::offline_workers;
use crate::AppState;
use crate::logs::TaskLogs;
use crate::store::{JobAge, StoreError};

/// The `[retention]` config table. Zero turns a rule off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete the task logs of jobs finished more than this many days ago.
    #[serde(default)]
    pub task_log_days: u64,
    /// Keep all task logs together under this many MiB (oldest finished jobs go first).
    #[serde(default)]
    pub task_log_max_mb: u64,
    /// Delete workers not seen for this many hours.
    #[serde(default)]
    pub remove_offline_workers_after_hours: u64,
    /// Delete audit-log entries older than this many days.
    #[serde(default)]
    pub audit_log_days: u64,
    /// How often the rules are applied.
    #[serde(default = "default_check_minutes")]
    pub check_minutes: u64,
}

fn default_check_minutes() -> u64 {
    60
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            task_log_days: 0,
            task_log_max_mb: 0,
            remove_offline_workers_after_hours: 0,
            audit_log_days: 0,
            check_minutes: default_check_minutes(),
        }
    }
}

impl RetentionConfig {
    /// The table as commented TOML, for the config file the manager writes.
    pub fn commented_toml(&self) -> String {
        format!(
            "\n# Housekeeping, applied every check_minutes; 0 turns a rule off.\n\
             # Task logs of jobs finished more than task_log_days ago are deleted; while all task\n\
             # logs together exceed task_log_max_mb, those of the oldest finished jobs are deleted.\n\
             # Files of deleted jobs are always removed. Workers not seen for\n\
             # remove_offline_workers_after_hours are deleted (they may register again).\n\
             # Audit-log entries older than audit_log_days are deleted.\n\
             [retention]\n\
             task_log_days = {days}\n\
             task_log_max_mb = {mb}\n\
             remove_offline_workers_after_hours = {hours}\n\
             audit_log_days = {audit_days}\n\
             check_minutes = {minutes}\n",
            days = self.task_log_days,
            mb = self.task_log_max_mb,
            hours = self.remove_offline_workers_after_hours,
            audit_days = self.audit_log_days,
            minutes = self.check_minutes,
        )
    }
}

/// The rules in the units the checks use; None means off.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetentionSettings {
    pub task_log_max_age: Option<Duration>,
    pub task_log_max_bytes: Option<u64>,
    pub offline_worker_max_age: Option<Duration>,
    pub audit_log_max_age: Option<Duration>,
    pub interval: Duration,
}

impl RetentionSettings {
    pub fn from_config(config: &RetentionConfig) -> Self {
        let nonzero = |n: u64| (n > 0).then_some(n);
        Self {
            task_log_max_age: nonzero(config.task_log_days)
                .map(|d| Duration::from_secs(d * 24 * 3600)),
            task_log_max_bytes: nonzero(config.task_log_max_mb).map(|mb| mb * 1024 * 1024),
            offline_worker_max_age: nonzero(config.remove_offline_workers_after_hours)
                .map(|h| Duration::from_secs(h * 3600)),
            audit_log_max_age: nonzero(config.audit_log_days)
                .map(|d| Duration::from_secs(d * 24 * 3600)),
            interval: Duration::from_secs(config.check_minutes.max(1) * 60),
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Jobs whose task logs were deleted (age or size cap).
    pub jobs_with_logs_deleted: Vec<String>,
    /// Job directories removed because their job no longer exists.
    pub deleted_job_dirs: Vec<String>,
    pub bytes_freed: u64,
    /// Workers removed for being offline too long.
    pub workers_removed: Vec<String>,
    /// Audit-log entries deleted for their age.
    pub audit_entries_deleted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot read or delete task logs under {path}: {source}")]
    Files {
        path: String,
        source: std::io::Error,
    },
}

/// One job's directory and the task logs in it.
#[derive(Clone, Debug)]
struct JobFiles {
    job_id: String,
    dir: PathBuf,
    logs: Vec<PathBuf>,
    log_bytes: u64,
}

fn files_error(path: &Path) -> impl FnOnce(std::io::Error) -> RetentionError + '_ {
    move |source| RetentionError::Files {
        path: path.display().to_string(),
        source,
    }
}

/// Every `<jobs root>/job-xxxx/<job id>/` directory with its `task-*.txt` files.
fn scan(jobs_root: &Path) -> Result<Vec<JobFiles>, RetentionError> {
    let mut jobs = Vec::new();
    let groups = match std::fs::read_dir(jobs_root) {
        Ok(groups) => groups,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(jobs),
        Err(e) => return Err(files_error(jobs_root)(e)),
    };
    for group in groups {
        let group = group.map_err(files_error(jobs_root))?.path();
        let Some(group_name) = group.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !group.is_dir() {
            continue;
        }
        for job in std::fs::read_dir(&group).map_err(files_error(&group))? {
            let dir = job.map_err(files_error(&group))?.path();
            let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Only the folders the manager makes for jobs: whatever else is there (someone
            // else's files, an uppercase or braced UUID) may be removed as a vanished job's.
            let Some(job_id) = TaskLogs::job_of_dir(group_name, name) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            let mut files = JobFiles {
                job_id,
                dir: dir.clone(),
                logs: Vec::new(),
                log_bytes: 0,
            };
            for entry in std::fs::read_dir(&dir).map_err(files_error(&dir))? {
                let entry = entry.map_err(files_error(&dir))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("task-") && name.ends_with(".txt") {
                    files.log_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                    files.logs.push(entry.path());
                }
            }
            jobs.push(files);
        }
    }
    Ok(jobs)
}

/// What to delete: (indexes of directories of vanished jobs, indexes of jobs whose logs go).
fn plan(
    jobs: &[JobFiles],
    ages: &HashMap<String, JobAge>,
    cutoff: Option<&str>,
    max_bytes: Option<u64>,
) -> (Vec<usize>, Vec<usize>) {
    let mut vanished = Vec::new();
    let mut expired = Vec::new();
    // Finished jobs that keep their logs for now, oldest first, for the size cap.
    let mut kept: Vec<(&str, usize)> = Vec::new();
    let mut total: u64 = 0;
    for (i, job) in jobs.iter().enumerate() {
        match ages.get(&job.job_id) {
            None => vanished.push(i),
            Some(_) if job.logs.is_empty() => {}
            Some(age) => {
                if age.is_finished() && cutoff.is_some_and(|c| age.updated_at.as_str() < c) {
                    expired.push(i);
                    continue;
                }
                total += job.log_bytes;
                if age.is_finished() {
                    kept.push((age.updated_at.as_str(), i));
                }
            }
        }
    }
    if let Some(max_bytes) = max_bytes {
        kept.sort();
        for (_, i) in kept {
            if total <= max_bytes {
                break;
            }
            total -= jobs[i].log_bytes;
            expired.push(i);
        }
    }
    (vanished, expired)
}

/// Applies the task-log rules once, as of `now`.
pub async fn delete_old_logs(
    state: &AppState,
    settings: &RetentionSettings,
    now: chrono::DateTime<chrono::Utc>,
    report: &mut RetentionReport,
) -> Result<(), RetentionError> {
    let jobs_root = state.logs.jobs_root().to_path_buf();
    let jobs = {
        let root = jobs_root.clone();
        tokio::task::spawn_blocking(move || scan(&root))
            .await
            .map_err(|e| files_error(&jobs_root)(std::io::Error::other(e.to_string())))??
    };
    if jobs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let ages = state.store.job_ages(&ids).await?;
    let cutoff = settings
        .task_log_max_age
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| crate::store::format_time(now - age));
    let (vanished, expired) = plan(&jobs, &ages, cutoff.as_deref(), settings.task_log_max_bytes);
    for i in vanished {
        let job = &jobs[i];
        match tokio::fs::remove_dir_all(&job.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(files_error(&job.dir)(e)),
        }
        report.bytes_freed += job.log_bytes;
        report.deleted_job_dirs.push(job.job_id.clone());
        // The `job-xxxx` group directory goes too once empty; failing means it is not.
        if let Some(group) = job.dir.parent() {
            let _ = tokio::fs::remove_dir(group).await;
        }
    }
    for i in expired {
        let job = &jobs[i];
        for log in &job.logs {
            match tokio::fs::remove_file(log).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(files_error(log)(e)),
            }
        }
        report.bytes_freed += job.log_bytes;
        report.jobs_with_logs_deleted.push(job.job_id.clone());
    }
    Ok(())
}

/// Applies every housekeeping rule once, as of the clock's now.
pub async fn check_once(
    state: &AppState,
    clock: &dyn Clock,
    settings: &RetentionSettings,
) -> RetentionReport {
    let now = clock.now();
    let mut report = RetentionReport::default();
    if let Err(e) = delete_old_logs(state, settings, now, &mut report).await {
        tracing::error!("task-log retention failed: {e}");
    }
    if let Some(max_age) = settings.offline_worker_max_age {
        match offline_workers::remove(state, max_age, now).await {
            Ok(removed) => report.workers_removed = removed,
            Err(e) => tracing::error!("removing long-offline workers failed: {e}"),
        }
    }
    if let Some(cutoff) = settings
        .audit_log_max_age
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| crate::store::format_time(now - age))
    {
        match state.store.delete_audit_entries_before(&cutoff).await {
            Ok(0) => {}
            Ok(deleted) => {
                report.audit_entries_deleted = deleted;
                tracing::info!(deleted, before = %cutoff, "deleted old audit-log entries");
            }
            Err(e) => tracing::error!("audit-log retention failed: {e}"),
        }
    }
    if !report.deleted_job_dirs.is_empty() || !report.jobs_with_logs_deleted.is_empty() {
        tracing::info!(
            expired = report.jobs_with_logs_deleted.len(),
            of_deleted_jobs = report.deleted_job_dirs.len(),
            bytes = report.bytes_freed,
            "deleted task logs"
        );
    }
    report
}

/// Applies the rules every `settings.interval` (first after one interval) until `shutdown`.
pub async fn run(
    state: AppState,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    shutdown: CancellationToken,
) {
    let start = tokio::time::Instant::now() + settings.interval;
    let mut ticks = tokio::time::interval_at(start, settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        check_once(&state, clock.as_ref(), &settings).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, bytes: u64) -> JobFiles {
        JobFiles {
            job_id: id.into(),
            dir: PathBuf::from(id),
            logs: vec![PathBuf::from(format!("{id}/task-1.txt"))],
            log_bytes: bytes,
        }
    }

    fn age(status: &str, at: &str) -> JobAge {
        JobAge {
            status: status.into(),
            updated_at: at.into(),
        }
    }

    #[test]
    fn old_finished_jobs_go_first_and_running_jobs_are_never_touched() {
        let jobs = vec![
            job("gone", 10),
            job("old-done", 10),
            job("new-done", 100),
            job("older-done", 50),
            job("running", 1000),
        ];
        let ages = HashMap::from([
            (
                "old-done".to_string(),
                age("completed", "2026-01-01T00:00:00.000Z"),
            ),
            (
                "new-done".to_string(),
                age("failed", "2026-03-01T00:00:00.000Z"),
            ),
            (
                "older-done".to_string(),
                age("canceled", "2026-02-01T00:00:00.000Z"),
            ),
            (
                "running".to_string(),
                age("active", "2025-01-01T00:00:00.000Z"),
            ),
        ]);
        let (vanished, expired) = plan(&jobs, &ages, Some("2026-01-15T00:00:00.000Z"), None);
        assert_eq!(vanished, [0]);
        assert_eq!(expired, [1]);
        // A cap of 1100 bytes with 1160 in all: the two oldest finished jobs' logs go.
        let (_, expired) = plan(&jobs, &ages, None, Some(1100));
        assert_eq!(expired, [1, 3]);
        // The running job alone exceeds a tiny cap: every finished job goes, it stays.
        let (_, expired) = plan(&jobs, &ages, None, Some(1));
        assert_eq!(expired, [1, 3, 2]);
    }
}
