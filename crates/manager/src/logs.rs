//! Task logs as files under the storage root (never rows in SQLite):
//! `<root>/jobs/job-<first 4 of job id>/<job id>/task-<task id>.txt`.
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// How much `tail` returns at most.
pub const TAIL_BYTES: u64 = 2048;

#[derive(Clone, Debug)]
pub struct TaskLogs {
    root: PathBuf,
}

impl TaskLogs {
    pub fn new(storage_root: &Path) -> Self {
        Self {
            root: storage_root.join("jobs"),
        }
    }

    /// The directory holding every job's files; served read-only at `/job-files/`.
    pub fn jobs_root(&self) -> &Path {
        &self.root
    }

    /// A job's directory relative to `jobs_root` (also its URL path under `/job-files/`).
    pub fn job_dir_relative(job_id: &str) -> String {
        let prefix: String = job_id.chars().take(4).collect();
        format!("job-{prefix}/{job_id}")
    }

    /// A task log's path relative to `jobs_root` (also its URL path under `/job-files/`).
    pub fn log_relative(job_id: &str, task_id: &str) -> String {
        format!("{}/task-{task_id}.txt", Self::job_dir_relative(job_id))
    }

    /// Directory of one job's files (logs, previews).
    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.root.join(Self::job_dir_relative(job_id))
    }

    pub fn path(&self, job_id: &str, task_id: &str) -> PathBuf {
        self.root.join(Self::log_relative(job_id, task_id))
    }

    /// Appends text to a task's log; a missing final newline is added.
    pub async fn append(&self, job_id: &str, task_id: &str, text: &str) -> std::io::Result<u64> {
        let path = self.path(job_id, task_id);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        let mut bytes = text.as_bytes().to_vec();
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        // One write call per chunk, so lines appended by the manager and by the worker's
        // stream never interleave mid-line.
        file.write_all(&bytes).await?;
        Ok(bytes.len() as u64)
    }

    /// Appends one line prefixed with the current time, as the manager's own log entries are.
    pub async fn append_manager_line(
        &self,
        job_id: &str,
        task_id: &str,
        line: &str,
    ) -> std::io::Result<u64> {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.append(job_id, task_id, &format!("{stamp} {line}"))
            .await
    }

    /// The whole log, or None when nothing was logged yet.
    pub async fn read(&self, job_id: &str, task_id: &str) -> std::io::Result<Option<String>> {
        match tokio::fs::read(self.path(job_id, task_id)).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Size of the log in bytes, or None when there is none.
    pub async fn size(&self, job_id: &str, task_id: &str) -> std::io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(job_id, task_id)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The last ≤ 2 KiB of the log, starting at a line boundary when cut.
    pub async fn tail(&self, job_id: &str, task_id: &str) -> std::io::Result<Option<String>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path(job_id, task_id);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata().await?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        if start > 0 {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(newline) => bytes.drain(..=newline),
                None => bytes.drain(..0),
            };
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_reads_and_tails_at_a_line_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let logs = TaskLogs::new(dir.path());
        assert_eq!(logs.read("job1", "t1").await.unwrap(), None);
        for i in 0..200 {
            logs.append("job1", "t1", &format!("line {i:03} of the log"))
                .await
                .unwrap();
        }
        let all = logs.read("job1", "t1").await.unwrap().unwrap();
        assert_eq!(all.lines().count(), 200);
        let tail = logs.tail("job1", "t1").await.unwrap().unwrap();
        assert!(tail.len() <= TAIL_BYTES as usize);
        assert!(tail.starts_with("line "), "{tail:?}");
        assert!(tail.ends_with("line 199 of the log\n"));
        assert!(
            logs.path("job1", "t1")
                .starts_with(dir.path().join("jobs/job-job1/job1"))
        );
    }
}
