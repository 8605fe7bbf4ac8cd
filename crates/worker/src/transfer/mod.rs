//! Working without shared storage (`--no-shared-storage`). The worker keeps a mirror of the
//! farm's paths in a local directory — the manager expands path variables into it — and:
//!
//! - before a task (`stage_in`), asks the manager for the files the task reads (its job's
//!   Shaman checkout, its .blend, the frames a video is made of), takes those it already
//!   holds from its content-addressed cache (`cache`), downloads the rest (`fetch`: several
//!   at once, resumable, hash-verified) and links them into the mirror;
//! - after the task's commands (`stage_out`), uploads the files they wrote into their output
//!   directories (`upload`: resumable, hash-verified) before the task reports completion.
//!
//! Paths cross the wire as mirror paths (`castanet_protocol::mirror`).
mod cache;
mod fetch;
mod stage;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use castanet_protocol::v1;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::{ManagerClient, unary};

pub use stage::{stage_in, stage_out};

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers")
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

/// A download stream that brings no byte for this long is given up and resumed.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// Deadline of a whole download call (a big file on a slow link takes long).
const STREAM_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// Deadline of a call the manager may answer only after hashing big files (an input list
/// of files it has not hashed yet, the status of an output whose old copy it compares).
const HASHING_CALL_TIMEOUT: Duration = Duration::from_secs(1800);

/// A request for a call that may have to wait for the manager's hashing.
fn long_call<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(HASHING_CALL_TIMEOUT);
    request
}

/// A transfer that makes no progress for this long (the manager unreachable, refusing to
/// answer) fails the task.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// A partial download untouched this long is removed at start.
const STALE_PARTIAL_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Downloads and uploads running at once per task.
const PARALLEL_DOWNLOADS: usize = 4;
const PARALLEL_UPLOADS: usize = 2;

/// Where a worker without shared storage keeps the farm's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSharedStorage {
    /// The mirror of the farm's paths (`/srv/farm/jobs/a.blend` is `<mirror>/srv/farm/jobs/a.blend`).
    pub mirror_dir: PathBuf,
    /// The content-addressed cache of input files.
    pub cache_dir: PathBuf,
    /// The cache's size limit.
    pub cache_limit_bytes: u64,
}

/// Why staging a task's files failed.
#[derive(Debug)]
pub enum StageError {
    Canceled,
    /// The manager refused (a path outside its storage, a lost lease) or a transfer made no
    /// progress for too long.
    Refused(String),
    /// This worker cannot do the task at all without shared storage (a self-check failure).
    Declined(String),
    /// The worker's own disk failed.
    Local(String),
}

impl StageError {
    fn local(path: &Path, e: std::io::Error) -> Self {
        StageError::Local(format!("{}: {e}", path.display()))
    }
}

/// The worker's side of the transfers, shared by its slots.
pub struct Transfers {
    client: ManagerClient,
    mirror: PathBuf,
    cache: cache::Cache,
    totals: Mutex<v1::TransferTotals>,
}

impl Transfers {
    pub fn new(client: ManagerClient, storage: &NoSharedStorage) -> Self {
        let stale = castanet_protocol::disk::remove_files_older_than(
            &storage.cache_dir.join("partial"),
            STALE_PARTIAL_AGE,
        );
        if stale > 0 {
            tracing::info!(
                count = stale,
                "removed downloads no task continued for a week"
            );
        }
        Transfers {
            client,
            mirror: storage.mirror_dir.clone(),
            cache: cache::Cache::new(storage.cache_dir.clone(), storage.cache_limit_bytes),
            totals: Mutex::new(v1::TransferTotals::default()),
        }
    }

    /// The mirror path of a local path under the mirror (None: not a farm path).
    fn mirror_path(&self, local: &Path) -> Option<String> {
        let relative = local.strip_prefix(&self.mirror).ok()?;
        let parts: Vec<String> = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        let joined = parts.join("/");
        castanet_protocol::mirror::parts(&joined).ok()?;
        Some(joined)
    }

    /// Where a mirror path from the manager lives here.
    fn local_path(&self, mirror_path: &str) -> Result<PathBuf, StageError> {
        let parts = castanet_protocol::mirror::parts(mirror_path).map_err(StageError::Refused)?;
        Ok(parts
            .iter()
            .fold(self.mirror.clone(), |path, part| path.join(part)))
    }

    fn totals(&self) -> std::sync::MutexGuard<'_, v1::TransferTotals> {
        // Counters only: a poisoned lock is still usable.
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_download(&self, bytes: u64, took: Duration) {
        let mut totals = self.totals();
        totals.bytes_downloaded += bytes;
        totals.download_seconds += took.as_secs_f64();
    }

    fn count_cache(&self, hits: u64, misses: u64) {
        let mut totals = self.totals();
        totals.cache_hits += hits;
        totals.cache_misses += misses;
    }

    fn count_upload_bytes(&self, bytes: u64) {
        self.totals().bytes_uploaded += bytes;
    }

    fn count_upload_time(&self, took: Duration) {
        self.totals().upload_seconds += took.as_secs_f64();
    }

    fn count_file_uploaded(&self) {
        self.totals().files_uploaded += 1;
    }

    /// Sends the running totals to the manager (best effort: the next report repeats them).
    async fn report_totals(&self) {
        // A walk of the cache directory: quick next to the transfers it follows.
        let cache_bytes = self.cache.size();
        let report = {
            let mut totals = self.totals();
            totals.cache_bytes = cache_bytes;
            totals.cache_limit_bytes = self.cache.limit_bytes();
            *totals
        };
        let mut api = self.client.api();
        if let Err(e) = api.report_transfers(unary(report)).await {
            tracing::debug!("cannot report the transfer totals: {}", e.message());
        }
    }
}

/// Retrying a transfer: waits with backoff, and gives up after [`GIVE_UP_AFTER`] without
/// progress.
struct Retry {
    what: String,
    backoff: Backoff,
    last_progress: Instant,
}

impl Retry {
    fn new(what: &str) -> Self {
        Retry {
            what: what.to_owned(),
            backoff: Backoff::default(),
            last_progress: Instant::now(),
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
        self.backoff.reset();
    }

    async fn wait(&mut self, error: &str, cancel: &CancellationToken) -> Result<(), StageError> {
        if self.last_progress.elapsed() > GIVE_UP_AFTER {
            return Err(StageError::Refused(format!(
                "{}: no progress for {} s (last error: {error})",
                self.what,
                GIVE_UP_AFTER.as_secs()
            )));
        }
        tracing::info!(file = %self.what, "transfer interrupted, retrying: {error}");
        tokio::select! {
            () = cancel.cancelled() => Err(StageError::Canceled),
            () = tokio::time::sleep(self.backoff.next_delay()) => Ok(()),
        }
    }
}
