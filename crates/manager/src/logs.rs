//! Task logs as files under the storage root (never rows in SQLite):
//! `<root>/jobs/job-<first 4 of job id>/<job id>/task-<task id>.txt`.
use std::collections::{HashMap, VecDeque, hash_map::Entry};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::log_ledger::{LogLedger, overlap_with_tail};

/// How much `tail` returns at most.
pub const TAIL_BYTES: u64 = 2048;

/// Most deferred lines kept; beyond that the oldest are dropped (their tasks wrote
/// nothing for that many later assignments).
const MAX_DEFERRED: usize = 50_000;

/// Locks that serialise the writes to one task log; a task log always maps to the same
/// one. A fixed number keeps memory bounded whatever the number of tasks.
const LOG_LOCKS: usize = 64;

/// How long the outcome of `check_writable` is reused: `/readyz` polls and a flood of
/// submissions should not each create, write and remove a file.
const WRITE_CHECK_REUSE: Duration = Duration::from_secs(1);

/// A write the storage directory refused, as told to a client: `full` (the client should
/// wait for room: 507, RESOURCE_EXHAUSTED) or not, and the words for it.
pub struct StorageRefusal {
    pub full: bool,
    pub message: String,
}

impl StorageRefusal {
    /// `not_stored` says what was lost ("nothing was stored").
    pub fn new(error: &std::io::Error, dir: &Path, not_stored: &str) -> Self {
        let full = error.kind() == std::io::ErrorKind::StorageFull;
        let state = if full { "is full" } else { "is not writable" };
        let dir = dir.display();
        Self {
            full,
            message: format!(
                "the manager's storage directory {state} ({dir}); {not_stored}: {error}"
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TaskLogs {
    root: PathBuf,
    deferred: Arc<Mutex<Deferred>>,
    /// How far each task lease's worker output is stored, so retried chunks land once.
    ledger: Arc<LogLedger>,
    /// Held from reading a log's length or the ledger until the write is recorded: the
    /// undo of a write cut short, and the ledger's "already stored", must not race with
    /// another writer of the same log (a worker's chunk and a manager line, or a retried
    /// upload while the old stream still writes).
    log_locks: Arc<[tokio::sync::Mutex<()>]>,
    last_write_check: Arc<tokio::sync::Mutex<Option<WriteCheck>>>,
}

/// The outcome of the last storage probe (the error kept as kind and text, as
/// `std::io::Error` cannot be cloned).
#[derive(Debug)]
struct WriteCheck {
    at: Instant,
    outcome: Result<(), (std::io::ErrorKind, String)>,
}

/// Manager lines that wait for the task's log to be written or read, so that handing out
/// a task creates no file (an ext4 inode per assignment was a large share of the
/// manager's time). Task id → stamped lines, and the order they came in.
#[derive(Debug, Default)]
struct Deferred {
    lines: HashMap<String, DeferredLines>,
    /// Task ids with the sequence number of their entry; an id whose entry was taken
    /// since (its number no longer matches) is skipped by the trim.
    order: VecDeque<(String, u64)>,
    next_sequence: u64,
}

#[derive(Debug)]
struct DeferredLines {
    text: String,
    sequence: u64,
}

/// Where deferred text goes relative to lines already waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    After,
    Before,
}

impl TaskLogs {
    pub fn new(storage_root: &Path) -> Self {
        Self {
            root: storage_root.join("jobs"),
            deferred: Default::default(),
            ledger: Default::default(),
            log_locks: (0..LOG_LOCKS).map(|_| Default::default()).collect(),
            last_write_check: Default::default(),
        }
    }

    /// The lock of one task's log.
    fn log_lock(&self, task_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        task_id.hash(&mut hasher);
        &self.log_locks[(hasher.finish() % self.log_locks.len() as u64) as usize]
    }

    /// Proves the log directory takes files: makes it, then writes and removes a probe. Logs
    /// that cannot be written leave tasks hanging while their workers retry the upload.
    /// An outcome less than a second old is reused.
    pub async fn check_writable(&self) -> std::io::Result<()> {
        // Held through the probe: callers arriving meanwhile wait and reuse its outcome.
        let mut last = self.last_write_check.lock().await;
        let outcome = match &*last {
            Some(check) if check.at.elapsed() < WRITE_CHECK_REUSE => check.outcome.clone(),
            _ => {
                let outcome = self.probe().await.map_err(|e| (e.kind(), e.to_string()));
                *last = Some(WriteCheck {
                    at: Instant::now(),
                    outcome: outcome.clone(),
                });
                outcome
            }
        };
        outcome.map_err(|(kind, text)| std::io::Error::new(kind, text))
    }

    /// Creates, writes and removes a probe file. The probe is removed even when the write
    /// fails (a full disk still has inodes): each failed check would leave one behind.
    async fn probe(&self) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.root).await?;
        let probe = self
            .root
            .join(format!(".write-check-{}", uuid::Uuid::new_v4()));
        let written = tokio::fs::write(&probe, b"ok").await;
        let removed = match tokio::fs::remove_file(&probe).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            removed => removed,
        };
        written.and(removed)
    }

    fn deferred(&self) -> std::sync::MutexGuard<'_, Deferred> {
        // Every mutation is a single insert/remove pair: a poisoned lock is still usable.
        self.deferred.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a manager line (stamped now) for the top of the task's log: it is written
    /// with the log's first write, or when the log is read. A task that never writes
    /// output gets no log file.
    pub fn defer_manager_line(&self, task_id: &str, line: &str) {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.keep_deferred(task_id, &format!("{stamp} {line}\n"), Place::After);
    }

    /// Adds text to the task's deferred lines; a task new to them joins the end of the
    /// order, and the oldest tasks are dropped beyond `MAX_DEFERRED`.
    fn keep_deferred(&self, task_id: &str, text: &str, place: Place) {
        let mut deferred = self.deferred();
        let Deferred {
            lines,
            order,
            next_sequence,
        } = &mut *deferred;
        match lines.entry(task_id.to_string()) {
            Entry::Occupied(mut waiting) if place == Place::Before => {
                waiting.get_mut().text.insert_str(0, text)
            }
            Entry::Occupied(mut waiting) => waiting.get_mut().text.push_str(text),
            Entry::Vacant(new) => {
                *next_sequence += 1;
                new.insert(DeferredLines {
                    text: text.to_string(),
                    sequence: *next_sequence,
                });
                order.push_back((task_id.to_string(), *next_sequence));
            }
        }
        while order.len() > MAX_DEFERRED {
            let Some((oldest, sequence)) = order.pop_front() else {
                break;
            };
            if lines.get(&oldest).is_some_and(|l| l.sequence == sequence) {
                lines.remove(&oldest);
            }
        }
    }

    fn take_deferred(&self, task_id: &str) -> Option<String> {
        let mut deferred = self.deferred();
        deferred.lines.remove(task_id).map(|lines| lines.text)
    }

    /// Puts back deferred lines whose write failed, ahead of any deferred since.
    fn restore_deferred(&self, task_id: &str, text: String) {
        if !text.is_empty() {
            self.keep_deferred(task_id, &text, Place::Before);
        }
    }

    /// Writes the task's deferred lines, if any, before its log is read. A log that cannot
    /// be written (a full disk) is still read as it is; the lines wait for the next write.
    async fn write_deferred(&self, job_id: &str, task_id: &str) {
        let _log = self.log_lock(task_id).lock().await;
        let Some(text) = self.take_deferred(task_id) else {
            return;
        };
        if let Err(e) = self.write(job_id, task_id, text.as_bytes().to_vec()).await {
            tracing::warn!(task = %task_id, "cannot write the manager's lines into the task log yet: {e}");
            self.restore_deferred(task_id, text);
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

    /// The job whose directory `<group>/<name>` is, when it is exactly the directory
    /// `job_dir_relative` gives a job id the manager makes (a lowercase hyphenated UUID):
    /// any other folder under the jobs root is not the manager's to remove.
    pub fn job_of_dir(group: &str, name: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(name).ok()?.hyphenated().to_string();
        (id == name && Self::job_dir_relative(&id) == format!("{group}/{name}")).then_some(id)
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

    /// Appends a chunk of worker output for one task lease, starting at `offset` of that
    /// lease's output (None: unknown), leaving out what a retry of it stored already.
    /// Returns the bytes written.
    pub async fn append_chunk(
        &self,
        job_id: &str,
        task_id: &str,
        lease_epoch: u64,
        offset: Option<u64>,
        text: &str,
    ) -> std::io::Result<u64> {
        // From the ledger's answer to its record: an overlapping chunk of another stream
        // must see this one stored, or both would be written.
        let _log = self.log_lock(task_id).lock().await;
        let skip = match self
            .ledger
            .already_stored(task_id, lease_epoch, offset, text.len())
        {
            Some(skip) => skip,
            None => {
                // One byte more, to see that the overlap starts a line.
                let tail = self.read_end(job_id, task_id, text.len() + 1).await?;
                overlap_with_tail(&tail, text)
            }
        };
        // Whole lines were stored, so this is a line start; if not, keep everything.
        let new = text.get(skip..).unwrap_or(text);
        let written = if new.is_empty() {
            0
        } else {
            self.append_holding_lock(job_id, task_id, new).await?
        };
        let end = offset.map(|o| o.saturating_add(text.len() as u64));
        self.ledger.record(task_id, lease_epoch, end);
        Ok(written)
    }

    /// The last `max` bytes of the stored log (lossy UTF-8; empty when there is none).
    async fn read_end(&self, job_id: &str, task_id: &str, max: usize) -> std::io::Result<String> {
        let mut file = match tokio::fs::File::open(self.path(job_id, task_id)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata().await?.len();
        let start = len.saturating_sub(max as u64);
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut bytes).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Appends text to a task's log; a missing final newline is added.
    /// Returns the bytes of `text` written (deferred manager lines written first do not
    /// count).
    pub async fn append(&self, job_id: &str, task_id: &str, text: &str) -> std::io::Result<u64> {
        let _log = self.log_lock(task_id).lock().await;
        self.append_holding_lock(job_id, task_id, text).await
    }

    /// `append`, for a caller holding the log's lock.
    async fn append_holding_lock(
        &self,
        job_id: &str,
        task_id: &str,
        text: &str,
    ) -> std::io::Result<u64> {
        let deferred = self.take_deferred(task_id).unwrap_or_default();
        let mut bytes = deferred.as_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        let written = (bytes.len() - deferred.len()) as u64;
        if let Err(e) = self.write(job_id, task_id, bytes).await {
            self.restore_deferred(task_id, deferred);
            return Err(e);
        }
        Ok(written)
    }

    /// Appends `bytes` in one write call (so lines appended by the manager and by the
    /// worker's stream never interleave mid-line), or not at all: a full disk can cut a
    /// write short, and the part written is taken back, as the worker sends the whole
    /// chunk again (kept, it would be stored twice, after a torn line). The caller holds
    /// the log's lock, so the length read here is not another writer's.
    async fn write(&self, job_id: &str, task_id: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let path = self.path(job_id, task_id);
        let append = move || -> std::io::Result<()> {
            use std::io::Write;
            let open = || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            };
            // The job's directory exists for all but a log's first write.
            let mut file = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    open()?
                }
                opened => opened?,
            };
            let before = file.metadata()?.len();
            let Err(e) = file.write_all(&bytes) else {
                return Ok(());
            };
            if let Err(undo) = file.set_len(before) {
                tracing::error!(path = %path.display(), "a task log write failed ({e}) and its part cannot be taken back: {undo}");
            }
            Err(e)
        };
        tokio::task::spawn_blocking(append)
            .await
            .map_err(std::io::Error::other)?
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
        self.write_deferred(job_id, task_id).await;
        match tokio::fs::read(self.path(job_id, task_id)).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Size of the log in bytes, or None when there is none.
    pub async fn size(&self, job_id: &str, task_id: &str) -> std::io::Result<Option<u64>> {
        self.write_deferred(job_id, task_id).await;
        match tokio::fs::metadata(self.path(job_id, task_id)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The last ≤ 2 KiB of the log, starting at a line boundary when cut.
    pub async fn tail(&self, job_id: &str, task_id: &str) -> std::io::Result<Option<String>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        self.write_deferred(job_id, task_id).await;
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

    #[tokio::test]
    async fn deferred_lines_lead_the_log_and_create_no_file_on_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let logs = TaskLogs::new(dir.path());
        logs.defer_manager_line("t1", "Task assigned to worker w");
        assert!(!logs.path("job1", "t1").exists());
        let written = logs.append("job1", "t1", "output").await.unwrap();
        assert_eq!(written, "output\n".len() as u64);
        let all = logs.read("job1", "t1").await.unwrap().unwrap();
        let lines: Vec<&str> = all.lines().collect();
        assert!(lines[0].ends_with(" Task assigned to worker w"), "{all}");
        assert_eq!(lines[1], "output");

        // Reading a log writes what waits for it first.
        logs.defer_manager_line("t2", "Task assigned to worker v");
        let tail = logs.tail("job1", "t2").await.unwrap().unwrap();
        assert!(tail.contains("Task assigned to worker v"), "{tail}");
        assert_eq!(logs.append("job1", "t2", "x").await.unwrap(), 2);
        let all = logs.read("job1", "t2").await.unwrap().unwrap();
        assert_eq!(all.matches("assigned").count(), 1, "{all}");
    }
}
